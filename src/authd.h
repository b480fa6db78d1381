/*
 * authd.h - password checks in a small process beside the smtpd, which
 * never holds the hashes (see authd.c).
 */
#ifndef TERN_AUTHD_H
#define TERN_AUTHD_H

#include <stddef.h>
#include <stdint.h>

struct auth_users;
struct event_base;

/* authd_main - the authd process: answer checks on fd against users
 * until fd closes, then exit */
_Noreturn void authd_main(struct auth_users *users, int fd);

/* the answer to a check: 1 yes, 0 no, -1 not available (temporary) */
typedef void (*authd_cb)(int ok, void *arg);

/* authd_client_start - (smtpd) send checks to authd on fd */
void authd_client_start(struct event_base *base, int fd);
/* authd_check - (smtpd) is pass user's?  cb runs later on the loop, never
 * before this returns; arg must live until then */
void authd_check(const char *user, const char *pass, authd_cb cb,
    void *arg);

#endif

/*
 * smtpd.h - the inbound side: the smtpd process accepts connections on the
 * listening sockets the master bound and runs every SMTP session on one
 * libevent loop.
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include <sys/socket.h>

struct conf;
struct conf_listen;
struct event_base;
struct bufferevent;

/* smtpd_main - run the smtpd process: fds[i] listens for listens[i] */
_Noreturn void smtpd_main(const struct conf *c, const int *fds, size_t nfds);

/* smtp_session_new - take over an accepted connection */
void smtp_session_new(const struct conf *c, struct event_base *base, int fd,
    const struct sockaddr *sa, socklen_t salen, const struct conf_listen *l);
/* smtp_session_count - sessions currently open */
unsigned smtp_session_count(void);

#endif

/*
 * deliverd.h - the delivery process: the small privileged helper that
 * runs local deliveries for the queue process, each in a child of its own
 * switched to the user the mail belongs to.
 */
#ifndef TERN_DELIVERD_H
#define TERN_DELIVERD_H

#include <sys/types.h>

struct conf;
struct deliver_request;
struct passwd;

/* how the delivery process switches users */
struct deliverd_ids {
	int drop;      /* switch users at all (started as root with a
	                * configuration file) */
	uid_t uid;     /* the tern user: virtual users' mail */
	gid_t gid;
};

/*
 * deliverd_main - serve delivery requests arriving on sock (a
 * SOCK_SEQPACKET socket to the queue process) until the queue process
 * closes it; never returns.
 */
_Noreturn void deliverd_main(const struct conf *c, int sock,
    const struct deliverd_ids *ids);

/*
 * deliverd_check - NULL when the configuration allows the request (its
 * method is the user's own, or a pipe or file its alias or .forward names;
 * the user is no system account below min-uid, never root), with the
 * account to deliver as in *pw (NULL: the tern user); else why not.  The
 * aliases must be loaded (alias_table_load).
 */
const char *deliverd_check(const struct conf *c,
    const struct deliver_request *rq, const struct passwd **pw);

/*
 * deliverd_expand_path - a maildir:/mbox: pattern for one delivery: "~/"
 * at the start becomes home, then %u %d %a.  -1 (and a reason in err)
 * when it cannot be expanded.  Pure.
 */
int deliverd_expand_path(const char *pattern, const char *home,
    const char *user, const char *domain, char *out, size_t outlen,
    char *err, size_t errlen);

#endif

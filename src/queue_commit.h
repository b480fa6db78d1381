/*
 * queue_commit.h - the queue process commits, on the smtpd's request, the
 * messages the smtpd wrote in spool/incoming/ (see queue_commit.c).
 */
#ifndef TERN_QUEUE_COMMIT_H
#define TERN_QUEUE_COMMIT_H

#include <sys/types.h>

struct conf;
struct event_base;

/* queue_commit_start - serve commit requests on listen_fd (bound and
 * listening, from the master) from processes of peer_uid, and sweep what
 * ended smtpds left in incoming/ */
void queue_commit_start(const struct conf *c, struct event_base *base,
    int listen_fd, uid_t peer_uid);

#endif

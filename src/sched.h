/*
 * sched.h - the queue process's scheduler: per-recipient state, retry
 * times, delivery.  It rebuilds everything from the spool at start and
 * learns of new messages through a datagram on $home/state/queue.sock
 * (a lost notice costs only latency: the spool is rescanned periodically).
 */
#ifndef TERN_SCHED_H
#define TERN_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "control_proto.h"

struct conf;
struct event_base;

/* sched_start - load the queue and start delivering on this loop */
void sched_start(const struct conf *c, struct event_base *base);

/*
 * sched_drain - start no new delivery or report; leave the event loop once
 * those in flight have finished (a graceful handover to a new queue
 * process: what was not finished is in the spool for it)
 */
void sched_drain(void);
/* sched_add - a message just committed by this process (a local drop,
 * or one the smtpd asked it to commit, queue_commit.c):
 * load and schedule it, as a notice would */
void sched_add(const char *qid);


/* sched_notify_open - (smtpd side) prepare to send notices; -1 on error */
int sched_notify_open(const char *home, struct event_base *base);
/*
 * sched_notify - (smtpd side) tell the queue process about a new message.
 * Notices the queue process cannot take at once are kept (bounded) and
 * sent, many to a datagram, as soon as it reads again.
 */
void sched_notify(const char *qid);

/* control: what tern queue and tern status ask (control.c) */

/* sched_ctl_cb - a change the client waits for is durable (ok=1) or
 * failed */
typedef void (*sched_ctl_cb)(int ok, void *arg);

struct sched_counts {
	size_t messages;    /* in the queue process's memory */
	size_t pending, active, deferred, held, done; /* by state */
	size_t recipients;  /* waiting for delivery */
};

/* sched_env - the envelope of a message in memory and whether an
 * attempt is in flight; NULL when the scheduler has not loaded it */
const struct envelope *sched_env(const char *qid, int *active);
/*
 * sched_flush - make due now: every message (qid NULL), one message, or
 * the recipients of one domain (domain not NULL); held and active
 * messages are left alone.  *n: messages made due.
 */
enum control_err sched_flush(const char *qid, const char *domain,
    size_t *n, char *err, size_t errlen);
/* sched_hold - hold (or release) a message: recorded in its envelope,
 * cb runs once that is durable; any other return: err says why */
enum control_err sched_hold(const char *qid, int hold, sched_ctl_cb cb,
    void *arg, char *err, size_t errlen);
/* sched_delete - remove a message from the queue, no report */
enum control_err sched_delete(const char *qid, char *err, size_t errlen);
/* sched_bounce - give up a message now: its waiting recipients fail and
 * the failure report goes out as at the end of its lifetime; *n: how
 * many recipients */
enum control_err sched_bounce(const char *qid, size_t *n, char *err,
    size_t errlen);
/* sched_counts - the queue's messages by state */
void sched_counts(struct sched_counts *c);

/* sched_backoff_ms - the delay before retry number tries (1 = first
 * retry): first doubling up to max.  Pure. */
int64_t sched_backoff_ms(unsigned tries, int64_t first_ms, int64_t max_ms);

#endif

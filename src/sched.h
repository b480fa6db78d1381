/*
 * sched.h - the queue process's scheduler: per-recipient state, retry
 * times, delivery.  It rebuilds everything from the spool at start and
 * learns of new messages through a datagram on $home/state/queue.sock
 * (a lost notice costs only latency: the spool is rescanned periodically).
 */
#ifndef TERN_SCHED_H
#define TERN_SCHED_H

#include <stdint.h>

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
/* sched_add - a message just committed by this process (a local drop):
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

/* sched_backoff_ms - the delay before retry number tries (1 = first
 * retry): first doubling up to max.  Pure. */
int64_t sched_backoff_ms(unsigned tries, int64_t first_ms, int64_t max_ms);

#endif

/*
 * local.h - local deliveries, queue-process side: requests to the
 * delivery process (deliverd.c) with bounded concurrency, overall and per
 * mailbox, and their replies back on the event loop.  The scheduler says
 * what to deliver; it never waits for a delivery.
 */
#ifndef TERN_LOCAL_H
#define TERN_LOCAL_H

#include <sys/queue.h>

#include "deliver_proto.h"

struct conf;
struct event_base;

struct local_job;
typedef void (*local_done_cb)(struct local_job *job, void *arg);

struct local_job {
	struct deliver_request req; /* strings owned by the job (id set by
	                             * local_submit) */
	char *content_path;         /* queue/ID.msg */
	struct deliver_reply reply; /* the outcome, when done() runs */
	local_done_cb done;
	void *arg;
	/* local.c's */
	char *mbox_key;
	TAILQ_ENTRY(local_job) entry;
};

/* local_init - talk to the delivery process over sock on this loop */
void local_init(const struct conf *c, struct event_base *base, int sock);
/*
 * local_submit - deliver a job (it stays the caller's until done() runs,
 * exactly once, on the loop, never inside local_submit).
 */
void local_submit(struct local_job *job);
/* local_job_free - the strings and reply a job owns, and the job */
void local_job_free(struct local_job *job);

#endif

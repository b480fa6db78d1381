/*
 * mta_session.h - the internal interface between mta.c (destinations:
 * queues, DNS, concurrency, back-off) and mta_session.c (one outbound SMTP
 * connection).  Not for other modules: they use mta.h.
 *
 * Ownership: mta.c creates a session and hands it jobs; a session frees
 * itself.  A session calls back into mta.c only from its own event
 * callbacks (never from inside mta_session_new or mta_session_give), and
 * mta_dest_session_end is the last thing it does before it is freed.
 */
#ifndef TERN_MTA_SESSION_H
#define TERN_MTA_SESSION_H

#include <stddef.h>

#include "dns.h"
#include "mta.h"

struct conf;
struct event_base;
struct mta_dest;
struct mta_session;

/* how a session ended, for the destination's bookkeeping */
struct mta_session_end {
	int ready;         /* it got as far as a transaction at least once */
	int all_failed;    /* every target failed before that, temporarily:
	                    * the destination is down (back-off) */
	char status[16];   /* all_failed: the last error's enhanced status */
	char error[MTA_DIAG_MAX]; /* all_failed: the last error in words */
	struct mta_job *unstarted; /* a job handed over but not tried (the
	                            * connection went away first): back to
	                            * the destination's queue, or NULL */
};

/* mta_session_params - what a session needs to know of its destination */
struct mta_session_params {
	const struct conf *conf;
	struct event_base *base;
	struct mta_dest *dest;
	const struct route *route;
	const struct dns_target *targets; /* copied by the session */
	size_t ntargets;
	int no_tls;        /* opportunistic TLS failed here lately: skip it */
	void *ssl_ctx;     /* SSL_CTX * for STARTTLS */
	void *ca_store;    /* X509_STORE * of the route's ca= file, which
	                    * tls=verify trusts instead of the system's CAs;
	                    * NULL: the system's */
};

/*
 * mta_session_new - open a connection for job (tried on the next loop
 * turn: targets in order until one greets and accepts EHLO/HELO).
 */
struct mta_session *mta_session_new(const struct mta_session_params *p,
    struct mta_job *job);
/*
 * mta_session_give - an idle session's next job (starts on the next turn);
 * -1 when the session is no longer idle (it is closing): the job stays
 * the caller's
 */
int mta_session_give(struct mta_session *s, struct mta_job *job);
/* mta_session_close - end a session now (QUIT when idle), no callbacks */
void mta_session_close(struct mta_session *s);

/* mta_dest_next_job - (session -> mta.c) the next queued job for this
 * destination, or NULL: the session then stays idle for a while */
struct mta_job *mta_dest_next_job(struct mta_dest *d, struct mta_session *s);
/* mta_dest_delivered - (session -> mta.c) a transaction went through: the
 * slow start may open one more connection */
void mta_dest_delivered(struct mta_dest *d);
/* mta_dest_tls_failed - (session -> mta.c) opportunistic TLS failed: use
 * plaintext with this destination for a while */
void mta_dest_tls_failed(struct mta_dest *d);
/* mta_dest_session_end - (session -> mta.c) s is about to be freed */
void mta_dest_session_end(struct mta_dest *d, struct mta_session *s,
    const struct mta_session_end *end);

/* mta_job_set_open - give every recipient without an outcome this one */
void mta_job_set_open(struct mta_job *job, int result, const char *status,
    const char *diag);
/* mta_job_done - the job is finished: report it (on the loop) */
void mta_job_done(struct mta_job *job);

#endif

/*
 * mta.h - outbound delivery over SMTP (RFC 5321), in the queue process;
 * also local delivery over LMTP (RFC 2033), a route of kind ROUTE_LMTP.
 *
 * The scheduler hands over one job per message and destination: the
 * recipients of one message that share a route key (route_key()).  mta
 * resolves the destination, keeps per-destination connections, concurrency
 * (with a slow start) and back-off, reuses a connection for the next job
 * to the same destination, and reports per recipient.  It never touches
 * the spool: the scheduler records the outcome.
 */
#ifndef TERN_MTA_H
#define TERN_MTA_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "route.h"

struct conf;
struct event_base;

#define MTA_DIAG_MAX 512
#define MTA_REMOTE_MAX 320

struct mta_rcpt {
	size_t index;        /* the recipient's index in the envelope */
	const char *addr;    /* local@domain */
	const char *orcpt;   /* DSN ORCPT (xtext) or NULL */
	unsigned notify;     /* DSN_NOTIFY_* bits, 0 = not given */
	/* the outcome, filled in by mta before done() */
	int result;          /* 2 delivered, 4 temporary, 5 permanent */
	char status[16];     /* enhanced status, e.g. "5.1.1" */
	char diag[MTA_DIAG_MAX]; /* sanitised remote reply ("550 5.1.1 ...")
	                          * or our own words for local failures */
};

struct mta_job;
typedef void (*mta_done_cb)(struct mta_job *job, void *arg);

struct mta_job {
	const char *qid;
	const char *content_path; /* spool queue/ID.msg */
	uint64_t size;            /* octets of the content file */
	unsigned body_8bit : 1;
	unsigned smtputf8 : 1;
	const char *sender;       /* "" for <> */
	const char *envid;        /* DSN ENVID (xtext) or NULL */
	enum dsn_ret ret;
	struct route route;
	struct mta_rcpt *rcpts;
	size_t nrcpts;
	/* filled in by mta */
	char remote[MTA_REMOTE_MAX]; /* "host[ip]:port" last talked to,
	                              * "lmtp:unix:PATH" for an LMTP socket,
	                              * or "" when no connection was made */
	char tls[128];            /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
	unsigned tls_verified : 1; /* tls=verify checked the peer's chain
	                            * (system CAs or ca=) and its name */
	unsigned peer_dsn : 1;    /* the peer took DSN parameters (RFC 3461):
	                           * it reports success itself */
	mta_done_cb done;
	void *arg;
};

/* mta_init - prepare outbound delivery on this loop */
void mta_init(const struct conf *c, struct event_base *base);

/*
 * mta_submit - deliver a job.  The job (and what it points to) stays the
 * caller's and must live until done() runs; done() runs exactly once, on
 * the loop, never inside mta_submit().
 */
void mta_submit(struct mta_job *job);

/* mta_shutdown - close idle connections (QUIT) before the process ends */
void mta_shutdown(void);
/* mta_flush - forget every destination's back-off: the next job for it
 * connects at once (tern queue flush) */
void mta_flush(void);

#endif

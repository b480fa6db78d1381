/*
 * mta.c - outbound delivery: destinations, their queues, resolved targets,
 * connections, concurrency and back-off.  One SMTP connection is
 * mta_session.c; this file decides when connections are opened.
 *
 * The one idea, after Postfix's queue manager: a destination (the route
 * key, route_key()) is the unit of scheduling.  Per destination:
 *   - a FIFO of jobs from the scheduler;
 *   - its targets from dns_resolve_targets(), cached MTA_TARGETS_TTL_MS;
 *   - its open sessions, at most `window` of them.  The window starts at
 *     MTA_WINDOW_START, grows by one per delivered transaction up to
 *     destination-concurrency (slow start), and falls back to 1 when a
 *     session could not reach any target;
 *   - back-off: when every target failed to connect, greeted with 4xx or
 *     failed the TLS/AUTH policy, the destination is dead for
 *     MTA_DEAD_FIRST_MS (doubling, at most retry max=) and every job queued
 *     or submitted meanwhile completes at once with that temporary error:
 *     a destination that is down is not hammered once per message;
 *   - opportunistic TLS that failed recently (plaintext for a while).
 * A destination with nothing going on is forgotten after a while.
 *
 * TLS: one client SSL_CTX with the system's CAs for every connection; a
 * route with tls=verify ca=FILE has that file's certificates in an
 * X509_STORE of their own, read at the first connection that needs them
 * and kept by path for the life of the process (SIGHUP starts a new queue
 * process, which reads them again), set on each SSL in place of the
 * system's.  The CA file is part of the route key, so connections with
 * different trust are never shared.
 *
 * done() always runs on the loop, never inside mta_submit(): a submitted
 * job only wakes its destination's run event (a zero timeout).  DNS
 * callbacks may run inside dns_resolve_targets(); they store the answer
 * and wake the run event too, so nothing here is re-entered.
 *
 * LMTP (RFC 2033): a local mailbox reached over LMTP ("mailbox lmtp:")
 * is one more destination, with the same queue, connection reuse,
 * concurrency and back-off; only its targets differ: a UNIX-domain
 * socket is its own single target, found without DNS, and a host is
 * looked up for its addresses, never MX.  The protocol's differences
 * (LHLO, a reply per recipient after the data) are mta_session.c's.
 *
 * RFC 5321 5.1 (targets in order: dns.c), 4.5.4.1 (do not retry too
 * often; back-off per destination).
 */
#include "mta.h"

#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/un.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "dns.h"
#include "mta_session.h"
#include "route.h"
#include "util.h"

/* resolved targets are reused for this long */
#define MTA_TARGETS_TTL_MS (60 * 1000)
/* connections a destination starts with (slow start) */
#define MTA_WINDOW_START 2
/* a destination that is down is left alone this long first (doubling up
 * to the configured retry max=) */
#define MTA_DEAD_FIRST_MS (60 * 1000)
/* after opportunistic TLS failed, plaintext is used this long */
#define MTA_TLS_FAIL_MS (60 * 60 * 1000)
/* an unused destination is forgotten after this (or twice retry max=,
 * whichever is longer, so its back-off keeps doubling) */
#define MTA_DEST_KEEP_MS (10 * 60 * 1000)
/* how often unused destinations are looked for */
#define MTA_GC_MS (60 * 1000)
/* longest route key (it may name an auth file) */
#define MTA_KEY_MAX ROUTE_KEY_MAX

struct mta_task {
	struct mta_job *job;
	TAILQ_ENTRY(mta_task) entry;
};
TAILQ_HEAD(mta_taskq, mta_task);

struct mta_conn {
	struct mta_session *s;
	int idle;          /* waiting for a job */
};

struct mta_dest {
	char key[MTA_KEY_MAX]; /* first member: the tsearch key */
	struct route route;    /* of the first job */
	struct mta_taskq queue;
	size_t nqueued;
	/* targets */
	struct dns_target *targets;
	size_t ntargets;
	int64_t targets_until;  /* monotonic ms; 0: none */
	unsigned next_host;     /* which best-preference host a new
	                         * connection tries first (round robin) */
	int resolving;
	struct dns_query *dnsq;
	int dns_failed;         /* the last lookup failed: fail the queue */
	struct dns_targets dns_res; /* that failure (t, n unused) */
	/* sessions */
	struct mta_conn *conns;
	size_t nconns;
	size_t conn_cap;
	unsigned window;
	/* back-off */
	int64_t dead_until;     /* monotonic ms */
	int64_t dead_ms;        /* the last dead period; 0: none lately */
	char dead_status[16];
	char dead_error[MTA_DIAG_MAX];
	int64_t tls_failed_until;
	X509_STORE *ca_store;   /* of route.ca_file (owned by mta.cas), or
	                         * NULL: the system's CAs */
	int64_t last_used;      /* monotonic ms */
	struct event *run_ev;
	TAILQ_ENTRY(mta_dest) entry;
};
TAILQ_HEAD(mta_destq, mta_dest);

/* the certificates of one ca= file */
struct mta_ca {
	char *path;
	X509_STORE *store;
	struct mta_ca *next;
};

static struct {
	const struct conf *conf;
	struct event_base *base;
	SSL_CTX *ssl_ctx;
	int cas_loaded;          /* the system's CAs are in ssl_ctx */
	struct mta_ca *cas;       /* ca= files read so far (a handful) */
	void *tree;               /* tsearch(3) of struct mta_dest by key */
	struct mta_destq dests;
	struct event *gc_ev;
} mta = { .dests = TAILQ_HEAD_INITIALIZER(mta.dests) };

static void dest_run_cb(evutil_socket_t fd, short what, void *arg);

/* dest_cmp - by key; a struct mta_dest starts with its key */
static int
dest_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static unsigned
conf_concurrency(void)
{
	unsigned n = mta.conf->dest_concurrency;

	return n > 0 ? n : 1;
}

static int64_t
conf_retry_max(void)
{
	int64_t m = mta.conf->retry_max_ms;

	return m > 0 ? m : MTA_DEAD_FIRST_MS;
}

/* dest_kick - run the destination on the next loop turn */
static void
dest_kick(struct mta_dest *d)
{
	struct timeval now = { 0, 0 };

	if (!evtimer_pending(d->run_ev, NULL))
		evtimer_add(d->run_ev, &now);
}

static struct mta_dest *
dest_get(const struct route *r)
{
	char key[MTA_KEY_MAX];
	struct mta_dest *d;
	void *node;
	unsigned start = MTA_WINDOW_START;

	route_key(r, key, sizeof(key));
	node = tfind(key, &mta.tree, dest_cmp);
	if (node != NULL)
		return *(struct mta_dest **)node;
	d = xcalloc(1, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->route = *r;
	TAILQ_INIT(&d->queue);
	d->window = start < conf_concurrency() ? start : conf_concurrency();
	d->run_ev = evtimer_new(mta.base, dest_run_cb, d);
	if (d->run_ev == NULL)
		fatal("mta: cannot create an event");
	if (tsearch(d, &mta.tree, dest_cmp) == NULL)
		fatal("mta: out of memory");
	TAILQ_INSERT_TAIL(&mta.dests, d, entry);
	log_debug("mta: new destination %s", d->key);
	return d;
}

static void
dest_free(struct mta_dest *d)
{
	tdelete(d, &mta.tree, dest_cmp);
	TAILQ_REMOVE(&mta.dests, d, entry);
	if (d->dnsq != NULL)
		dns_cancel(d->dnsq);
	event_free(d->run_ev);
	free(d->targets);
	free(d->conns);
	free(d);
}

/* job bookkeeping */

void
mta_job_set_open(struct mta_job *job, int result, const char *status,
    const char *diag)
{
	struct mta_rcpt *r;
	size_t i;

	for (i = 0; i < job->nrcpts; i++) {
		r = &job->rcpts[i];
		if (r->result != 0)
			continue;
		r->result = result;
		snprintf(r->status, sizeof(r->status), "%s", status);
		util_sanitise(r->diag, sizeof(r->diag) - 1, diag, strlen(diag));
	}
}

void
mta_job_done(struct mta_job *job)
{
	/* every recipient has an outcome; this one means a bug of ours */
	mta_job_set_open(job, 4, "4.3.0", "internal error: no outcome");
	job->done(job, job->arg);
}

static void
job_reset(struct mta_job *job)
{
	size_t i;

	for (i = 0; i < job->nrcpts; i++) {
		job->rcpts[i].result = 0;
		job->rcpts[i].status[0] = '\0';
		job->rcpts[i].diag[0] = '\0';
	}
	job->remote[0] = '\0';
	job->tls[0] = '\0';
	job->tls_verified = 0;
	job->peer_dsn = 0;
}

static void
queue_push(struct mta_dest *d, struct mta_job *job, int head)
{
	struct mta_task *t = xcalloc(1, sizeof(*t));

	t->job = job;
	if (head)
		TAILQ_INSERT_HEAD(&d->queue, t, entry);
	else
		TAILQ_INSERT_TAIL(&d->queue, t, entry);
	d->nqueued++;
}

static struct mta_job *
queue_pop(struct mta_dest *d)
{
	struct mta_task *t = TAILQ_FIRST(&d->queue);
	struct mta_job *job;

	if (t == NULL)
		return NULL;
	TAILQ_REMOVE(&d->queue, t, entry);
	d->nqueued--;
	job = t->job;
	free(t);
	return job;
}

/* queue_fail_all - complete every queued job with one outcome */
static void
queue_fail_all(struct mta_dest *d, int result, const char *status,
    const char *diag)
{
	struct mta_taskq q = TAILQ_HEAD_INITIALIZER(q);
	struct mta_task *t;

	/* done() may submit more jobs: they wait for the next run */
	TAILQ_CONCAT(&q, &d->queue, entry);
	d->nqueued = 0;
	while ((t = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, t, entry);
		mta_job_set_open(t->job, result, status, diag);
		mta_job_done(t->job);
		free(t);
	}
}

/* connections */

static void
conn_add(struct mta_dest *d, struct mta_session *s)
{
	if (d->nconns == d->conn_cap) {
		d->conn_cap = d->conn_cap ? d->conn_cap * 2 : 4;
		d->conns = xreallocarray(d->conns, d->conn_cap,
		    sizeof(*d->conns));
	}
	d->conns[d->nconns].s = s;
	d->conns[d->nconns].idle = 0;
	d->nconns++;
}

static struct mta_conn *
conn_find(struct mta_dest *d, struct mta_session *s)
{
	size_t i;

	for (i = 0; i < d->nconns; i++)
		if (d->conns[i].s == s)
			return &d->conns[i];
	panic("mta: session not found in %s", d->key);
}

static void
conn_remove(struct mta_dest *d, struct mta_session *s)
{
	struct mta_conn *c = conn_find(d, s);

	*c = d->conns[--d->nconns];
}

/* DNS */

static void
targets_cb(const struct dns_targets *res, void *arg)
{
	struct mta_dest *d = arg;
	size_t n = res->status == DNS_OK ? res->n : 0;

	d->resolving = 0;
	d->dnsq = NULL;
	free(d->targets);
	d->targets = NULL;
	d->ntargets = 0;
	d->targets_until = 0;
	d->dns_failed = n == 0;
	d->dns_res = *res;
	d->dns_res.t = NULL;
	d->dns_res.n = 0;
	if (res->status == DNS_OK && n == 0) {
		d->dns_res.status = DNS_TEMP;
		snprintf(d->dns_res.dsn, sizeof(d->dns_res.dsn), "4.4.4");
		snprintf(d->dns_res.error, sizeof(d->dns_res.error),
		    "no address found for %.200s", d->route.host);
	}
	if (n > 0) {
		d->targets = xreallocarray(NULL, n, sizeof(*d->targets));
		memcpy(d->targets, res->t, n * sizeof(*d->targets));
		d->ntargets = n;
		d->targets_until = util_mono_ms() + MTA_TARGETS_TTL_MS;
	}
	dest_kick(d);
}

/* unix_target - an LMTP socket (route_lmtp: an absolute path that fits
 * in sun_path) as the one target, answered at once like an IP address */
static void
unix_target(struct mta_dest *d)
{
	struct dns_target t;
	struct dns_targets res;
	struct sockaddr_un *sun = (struct sockaddr_un *)&t.ss;
	size_t len = strlen(d->route.host);

	if (len >= sizeof(sun->sun_path))
		panic("mta: socket path too long: %s", d->route.host);
	memset(&t, 0, sizeof(t));
	memset(&res, 0, sizeof(res));
	snprintf(t.host, sizeof(t.host), "%s", d->route.host);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, d->route.host, len + 1);
	t.sslen = sizeof(*sun);
	res.status = DNS_OK;
	res.t = &t;
	res.n = 1;
	targets_cb(&res, d);
}

/* dest_resolve - start a lookup unless one runs */
static void
dest_resolve(struct mta_dest *d)
{
	struct dns_query *q;

	if (d->resolving)
		return;
	d->resolving = 1;
	if (d->route.unix_socket) {
		unix_target(d);
		return;
	}
	q = dns_resolve_targets(d->route.host, d->route.port, d->route.mx,
	    targets_cb, d);
	/* an IP address is answered inside the call: q is NULL then */
	if (d->resolving)
		d->dnsq = q;
}

/* dest_fail_dns - the lookup failed: the queue shares the outcome */
static void
dest_fail_dns(struct mta_dest *d)
{
	const struct dns_targets *r = &d->dns_res;
	int result = r->status == DNS_PERM ? 5 : 4;
	const char *dsn = r->dsn[0] ? r->dsn : result == 5 ? "5.4.4" :
	    "4.4.3";

	log_info("mta: %s: %s (%s)", d->key, r->error, dsn);
	d->dns_failed = 0;
	queue_fail_all(d, result, dsn, r->error);
}

/* CA files */

/*
 * ca_load - the certificates (PEM) of path in a new store, or NULL with
 * the reason in err: unreadable, or not one certificate in it
 */
static X509_STORE *
ca_load(const char *path, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();
	unsigned long e;
	const char *why = NULL;
	int sys = 0;

	if (store == NULL)
		fatal("mta: cannot create a certificate store");
	ERR_clear_error();
	if (X509_STORE_load_file(store, path) == 1)
		return store;
	/* an errno ("Permission denied": the file is not readable by the
	 * tern user) says more than OpenSSL's "system lib" around it */
	while ((e = ERR_get_error()) != 0) {
		if (ERR_SYSTEM_ERROR(e))
			sys = ERR_GET_REASON(e);
		else if (why == NULL)
			why = ERR_reason_error_string(e);
	}
	if (sys != 0)
		why = strerror(sys);
	snprintf(err, errlen, "%s", why != NULL ? why : "unreadable");
	X509_STORE_free(store);
	return NULL;
}

/* ca_store - the store of a ca= file, read at its first use and cached */
static X509_STORE *
ca_store(const char *path, char *err, size_t errlen)
{
	struct mta_ca *ca;
	X509_STORE *store;

	for (ca = mta.cas; ca != NULL; ca = ca->next)
		if (strcmp(ca->path, path) == 0)
			return ca->store;
	/* a failure is not cached: the next attempt reads the file again,
	 * so a fixed file is taken without a reload */
	if ((store = ca_load(path, err, errlen)) == NULL)
		return NULL;
	ca = xcalloc(1, sizeof(*ca));
	ca->path = xstrdup(path);
	ca->store = store;
	ca->next = mta.cas;
	mta.cas = ca;
	log_info("mta: CA certificates read from %s", path);
	return store;
}

static void
ca_free_all(void)
{
	struct mta_ca *ca, *next;

	for (ca = mta.cas; ca != NULL; ca = next) {
		next = ca->next;
		X509_STORE_free(ca->store);
		free(ca->path);
		free(ca);
	}
	mta.cas = NULL;
}

/*
 * dest_ca - d's CA store when its route has ca=; -1 when the file cannot
 * be used: every queued job fails temporarily (TLS is required and could
 * not be verified, 4.7.5), and the file is tried again next time
 */
static int
dest_ca(struct mta_dest *d)
{
	char err[256], diag[MTA_DIAG_MAX];

	if (d->route.ca_file == NULL || d->ca_store != NULL)
		return 0;
	d->ca_store = ca_store(d->route.ca_file, err, sizeof(err));
	if (d->ca_store != NULL)
		return 0;
	snprintf(diag, sizeof(diag), "cannot use the CA file %s: %s",
	    d->route.ca_file, err);
	log_err("mta: %s: %s", d->key, diag);
	queue_fail_all(d, 4, "4.7.5", diag);
	return -1;
}

/* the run: hand queued jobs to sessions */

/*
 * rotated_targets - d's targets for a new connection: the hosts of the best
 * preference take turns at the front, so that new connections spread over
 * equal MX hosts (RFC 5321 5.1: the load is shared) even while the
 * resolved list is cached; the order of everything else is kept.
 */
static struct dns_target *
rotated_targets(struct mta_dest *d)
{
	size_t n = d->ntargets, end, i, k, nhosts = 0, off = 0, want;
	struct dns_target *t = xcalloc(n ? n : 1, sizeof(*t));

	for (end = 0; end < n && d->targets[end].pref == d->targets[0].pref;
	    end++)
		nhosts += end == 0 ||
		    strcmp(d->targets[end].host, d->targets[end - 1].host) != 0;
	want = nhosts ? d->next_host++ % nhosts : 0;
	for (i = 0, k = 0; i < end; i++) {
		if (i > 0 && strcmp(d->targets[i].host,
		    d->targets[i - 1].host) != 0)
			k++;
		if (k == want) {
			off = i;
			break;
		}
	}
	memcpy(t, d->targets + off, (end - off) * sizeof(*t));
	memcpy(t + (end - off), d->targets, off * sizeof(*t));
	memcpy(t + end, d->targets + end, (n - end) * sizeof(*t));
	return t;
}

/* system_cas - tls=verify checks chains against the system's CAs (a
 * route's ca= store replaces them on its connections): loaded once, at
 * the first connection that may need them */
static void
system_cas(const struct mta_dest *d)
{
	if (mta.cas_loaded || d->route.tls != TLS_VERIFY ||
	    d->ca_store != NULL)
		return;
	mta.cas_loaded = 1;
	if (SSL_CTX_set_default_verify_paths(mta.ssl_ctx) != 1)
		log_warn("mta: cannot load the system's CA certificates");
}

static void
dest_start_session(struct mta_dest *d, struct mta_job *job)
{
	struct dns_target *t = rotated_targets(d);
	struct mta_session_params p = {
		.conf = mta.conf,
		.base = mta.base,
		.dest = d,
		.route = &d->route,
		.targets = t,
		.ntargets = d->ntargets,
		.no_tls = util_mono_ms() < d->tls_failed_until,
		.ssl_ctx = mta.ssl_ctx,
		.ca_store = d->ca_store,
	};

	system_cas(d);
	conn_add(d, mta_session_new(&p, job));
	free(t); /* the session keeps its own copy */
}

/* dest_dispatch - idle sessions first, then new ones within the window */
static void
dest_dispatch(struct mta_dest *d)
{
	size_t i;

	struct mta_job *job;

	for (i = 0; i < d->nconns && d->nqueued > 0; i++) {
		if (!d->conns[i].idle)
			continue;
		d->conns[i].idle = 0;
		job = queue_pop(d);
		if (mta_session_give(d->conns[i].s, job) == -1)
			queue_push(d, job, 1);
	}
	while (d->nqueued > 0 && d->nconns < d->window)
		dest_start_session(d, queue_pop(d));
}

static void
dest_run_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mta_dest *d = arg;
	int64_t now = util_mono_ms();

	(void)fd;
	(void)what;
	d->last_used = now;
	if (d->nqueued == 0)
		return;
	if (now < d->dead_until) {
		queue_fail_all(d, 4, d->dead_status, d->dead_error);
		return;
	}
	if (d->dns_failed) {
		dest_fail_dns(d);
		return;
	}
	if (dest_ca(d) == -1)
		return;
	if (d->targets == NULL || now >= d->targets_until) {
		/* sessions already open keep their own copy meanwhile; the
		 * answer (perhaps given at once) kicks the run again */
		dest_resolve(d);
		return;
	}
	dest_dispatch(d);
}

/* session -> mta.c */

struct mta_job *
mta_dest_next_job(struct mta_dest *d, struct mta_session *s)
{
	struct mta_conn *c = conn_find(d, s);
	struct mta_job *job;

	/* a working connection takes jobs even while another found the
	 * destination down: it proves otherwise */
	d->last_used = util_mono_ms();
	job = queue_pop(d);
	c->idle = job == NULL;
	return job;
}

void
mta_dest_delivered(struct mta_dest *d)
{
	if (d->window < conf_concurrency())
		d->window++;
	if (d->nqueued > 0)
		dest_kick(d);
}

void
mta_dest_tls_failed(struct mta_dest *d)
{
	d->tls_failed_until = util_mono_ms() + MTA_TLS_FAIL_MS;
}

/* dest_mark_dead - every target failed: leave the destination alone */
static void
dest_mark_dead(struct mta_dest *d, const struct mta_session_end *end)
{
	int64_t max = conf_retry_max();
	int64_t ms;

	/* several sessions of one outage double the period once */
	if (util_mono_ms() < d->dead_until)
		return;
	if (d->dead_ms == 0)
		ms = MTA_DEAD_FIRST_MS;
	else
		ms = d->dead_ms > INT64_MAX / 2 ? max : d->dead_ms * 2;
	if (ms > max)
		ms = max;
	d->dead_ms = ms;
	d->dead_until = util_mono_ms() + ms;
	d->window = 1;
	snprintf(d->dead_status, sizeof(d->dead_status), "%s", end->status);
	snprintf(d->dead_error, sizeof(d->dead_error), "%s", end->error);
	log_warn("mta: %s: no target reachable, destination backed off for "
	    "%lld ms: %s", d->key, (long long)ms, end->error);
}

void
mta_dest_session_end(struct mta_dest *d, struct mta_session *s,
    const struct mta_session_end *end)
{
	conn_remove(d, s);
	d->last_used = util_mono_ms();
	if (end->ready) {
		d->dead_ms = 0;
		d->dead_until = 0;
	}
	if (end->all_failed)
		dest_mark_dead(d, end);
	if (end->unstarted != NULL)
		queue_push(d, end->unstarted, 1);
	if (d->nqueued > 0)
		dest_kick(d);
}

/* the interface */

/* gc_cb - forget destinations with nothing going on */
static void
gc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mta_dest *d, *next;
	int64_t now = util_mono_ms();
	int64_t keep = MTA_DEST_KEEP_MS;

	(void)fd;
	(void)what;
	(void)arg;
	if (conf_retry_max() <= INT64_MAX / 2 && 2 * conf_retry_max() > keep)
		keep = 2 * conf_retry_max();
	for (d = TAILQ_FIRST(&mta.dests); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		if (d->nqueued > 0 || d->nconns > 0 || d->resolving ||
		    now < d->tls_failed_until || now - d->last_used < keep)
			continue;
		log_debug("mta: forgetting destination %s", d->key);
		dest_free(d);
	}
}

static SSL_CTX *
ssl_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		fatal("mta: cannot create a TLS context");
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		fatal("mta: cannot set the TLS minimum version");
	/* the system's CAs are loaded at the first tls=verify connection
	 * (system_cas): most never verify, and loading them costs about as
	 * much CPU as a thousand messages */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

void
mta_init(const struct conf *c, struct event_base *base)
{
	struct timeval tv = { MTA_GC_MS / 1000, 0 };

	mta.conf = c;
	mta.base = base;
	mta.ssl_ctx = ssl_ctx_new();
	mta.cas_loaded = 0;
	mta.gc_ev = event_new(base, -1, EV_PERSIST, gc_cb, NULL);
	if (mta.gc_ev == NULL || event_add(mta.gc_ev, &tv) == -1)
		fatal("mta: cannot create an event");
}

void
mta_submit(struct mta_job *job)
{
	struct mta_dest *d;

	if (mta.base == NULL)
		panic("mta_submit before mta_init");
	job_reset(job);
	d = dest_get(&job->route);
	queue_push(d, job, 0);
	dest_kick(d);
}

void
mta_shutdown(void)
{
	struct mta_dest *d, *next;
	size_t i;

	if (mta.base == NULL)
		return;
	for (d = TAILQ_FIRST(&mta.dests); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		for (i = 0; i < d->nconns; i++)
			mta_session_close(d->conns[i].s);
		d->nconns = 0;
		while (d->nqueued > 0)
			queue_pop(d);
		dest_free(d);
	}
	if (mta.gc_ev != NULL)
		event_free(mta.gc_ev);
	mta.gc_ev = NULL;
	SSL_CTX_free(mta.ssl_ctx);
	mta.ssl_ctx = NULL;
	/* sessions hold their own references to a store (SSL_set1_...) */
	ca_free_all();
	mta.base = NULL;
}

void
mta_flush(void)
{
	struct mta_dest *d;

	TAILQ_FOREACH(d, &mta.dests, entry) {
		d->dead_until = 0;
		d->dead_ms = 0;
	}
}

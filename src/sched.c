/*
 * sched.c - the queue process's scheduler: which recipient of which queued
 * message is tried when, and what its state becomes.
 *
 * The one idea: the spool is the truth, memory is a cache of it.  At start
 * every queued envelope is loaded; new messages are announced by a datagram
 * holding the queue id on $home/state/queue.sock, and the spool is rescanned
 * every SCHED_RESCAN_MS in case a notice was lost.  Each message in memory
 * has one libevent timer for its earliest due recipient (libevent keeps its
 * timers in a min-heap, so we need no heap of our own).  A timer that fires
 * puts the message on a run queue; the run queue is worked off at most
 * SCHED_BATCH messages per loop turn so notices keep being read while a big
 * queue is delivered.
 *
 * Per recipient (DESIGN.md "Scheduling and retry"):
 *   pending/deferred --delivered--> delivered
 *                    --temporary--> deferred until now + backoff, or
 *                                   failed once the queue lifetime is over
 *                    --permanent--> failed
 * Local recipients are expanded through the aliases here, then handed to
 * the delivery process (local.c: a request each, answered later on this
 * loop), or with an lmtp: method to mta.c like remote ones; remote ones
 * go to mta.c as one job per message and destination (route_key), and the
 * message waits, its "inflight" count up, until every job has reported.
 * The envelope's new states are written by the spool's commit worker
 * (spool_update_async), so no delivery and no fsync ever blocks this loop.
 * Then msg_finish queues the reports the message owes (report.c: failures,
 * successes asked for, delay warnings), one at a time and each durable
 * before its recipients are marked, and finally removes the message when
 * nothing is left, or rewrites the envelope durably (spool_update) and arms
 * the timer for the next due recipient.
 */
#include "pickup.h"
#include "sched.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "control_proto.h"
#include "alias_table.h"
#include "deliver.h"
#include "local.h"
#include "envelope.h"
#include "mailbox.h"
#include "mta.h"
#include "report.h"
#include "route.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

/* messages delivered per event-loop turn before notices are read again */
#define SCHED_BATCH 64
/* the safety-net rescan of the spool for lost notices */
#define SCHED_RESCAN_MS 60000
/* never retry sooner than this, whatever the configuration says */
#define SCHED_MIN_RETRY_MS 1000
/* notices read per wake-up (the socket stays readable for the rest) */
#define SCHED_NOTICES_MAX 256
/* a report that could not be queued is tried again after this */
#define SCHED_REPORT_RETRY_MS 60000
/* longest error text kept for a recipient */
#define SCHED_ERR_MAX 400

struct sched_msg {
	char id[QID_SIZE]; /* first member: the tsearch key (see msg_cmp) */
	struct envelope env;
	struct event *timer;
	int check_cur;     /* look in cur/ too: the message may have been
	                    * delivered by an earlier run of the process */
	int queued;        /* on the run queue */
	unsigned inflight; /* outbound jobs and report commits running */
	int changed;       /* states changed since the last spool_update */
	int64_t report_hold; /* unix ms: no report before (after a failure) */
	TAILQ_ENTRY(sched_msg) entry;
};

/* an outbound job and what it points to, freed when it is done */
struct sched_job {
	struct mta_job job;
	struct sched_msg *msg;
	char content[PATH_MAX];
};

TAILQ_HEAD(sched_runq, sched_msg);

static struct {
	const struct conf *conf;
	struct event_base *base;
	void *msgs; /* tsearch(3) tree of struct sched_msg by id */
	size_t nmsgs;
	struct sched_runq runq;
	struct event *runner;
	struct event *rescan;
	struct event *notice;
	unsigned busy;        /* outbound jobs and report commits running */
	int draining;         /* no new attempts: the process is handing over */
	struct event *drain_ev;
	int notice_fd;
} sched = { .notice_fd = -1 };

/* a notice datagram carries up to this many octets of "QID\n" lines */
#define NOTICE_DGRAM_MAX 4096
/* notices kept while the queue process is busy; past this they are
 * dropped and the periodic rescan finds their messages */
#define NOTICE_PENDING_MAX (1024 * 1024)
/* retry sending kept notices after this */
#define NOTICE_RETRY_MS 20

static struct {
	int fd;
	struct sockaddr_un sa;
	struct buf pending;  /* "QID\n" lines not sent yet */
	struct event *retry;
} notify = { .fd = -1 };

static void msg_schedule(struct sched_msg *m);

int64_t
sched_backoff_ms(unsigned tries, int64_t first_ms, int64_t max_ms)
{
	int64_t d;
	unsigned i;

	if (first_ms < 0)
		first_ms = 0;
	if (max_ms < 0)
		max_ms = 0;
	d = first_ms;
	/* d only grows and stops at max: at most 63 doublings */
	for (i = 1; i < tries && d > 0 && d < max_ms; i++)
		d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
	return d < max_ms ? d : max_ms;
}

/* add_sat - a + b for b >= 0, saturating at INT64_MAX */
static int64_t
add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* sec_to_ms - unix seconds to milliseconds, saturating */
static int64_t
sec_to_ms(int64_t s)
{
	if (s <= 0)
		return 0;
	return s > INT64_MAX / 1000 ? INT64_MAX : s * 1000;
}

/* state paths */

/* state_sock_path - "$home/state/queue.sock"; -1 when it does not fit in a
 * socket address */
static int
state_sock_path(const char *home, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path),
	    "%s/state/queue.sock", home);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return -1;
	return 0;
}

/* messages in memory */

/* msg_cmp - order by queue id; a key is a struct sched_msg (whose first
 * member is its id) or a bare id string */
static int
msg_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* msg_find - the message with this id, or NULL */
static struct sched_msg *
msg_find(const char *qid)
{
	void *node = tfind(qid, &sched.msgs, msg_cmp);

	return node ? *(struct sched_msg **)node : NULL;
}

/* msg_forget - drop a message from memory (its files are not touched) */
static void
msg_forget(struct sched_msg *m)
{
	tdelete(m, &sched.msgs, msg_cmp);
	sched.nmsgs--;
	if (m->queued)
		TAILQ_REMOVE(&sched.runq, m, entry);
	event_free(m->timer);
	envelope_free(&m->env);
	free(m);
}

/* runq_kick - make the runner run on the next loop turn */
static void
runq_kick(void)
{
	struct timeval now = { 0, 0 };

	if (!evtimer_pending(sched.runner, NULL))
		evtimer_add(sched.runner, &now);
}

/* runq_push - deliver m soon */
static void
runq_push(struct sched_msg *m)
{
	if (!m->queued) {
		TAILQ_INSERT_TAIL(&sched.runq, m, entry);
		m->queued = 1;
	}
	runq_kick();
}

/* msg_timer_cb - a message's earliest recipient is due */
static void
msg_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	runq_push(arg);
}

/* rcpt_active - 1 when the recipient still waits for delivery */
static int
rcpt_active(const struct env_rcpt *r)
{
	return r->state == RCPT_PENDING || r->state == RCPT_DEFERRED;
}

/* msg_next_due_ms - the earliest next try of an active recipient, in unix
 * milliseconds; INT64_MAX when none is active */
static int64_t
msg_next_due_ms(const struct sched_msg *m)
{
	int64_t due = INT64_MAX, t;
	size_t i;

	if (m->env.hold)
		return INT64_MAX; /* held: nothing is due until released */
	for (i = 0; i < m->env.nrcpts; i++) {
		if (!rcpt_active(&m->env.rcpts[i]))
			continue;
		t = sec_to_ms(m->env.rcpts[i].next_try);
		if (t < due)
			due = t;
	}
	return due;
}

/* msg_schedule - arm the message's timer for its earliest due recipient
 * (or put it on the run queue when that is now) */
static void
msg_schedule(struct sched_msg *m)
{
	int64_t due = msg_next_due_ms(m), now = util_now_ms(), d;
	struct timeval tv;

	if (due == INT64_MAX)
		return;
	if (due <= now) {
		evtimer_del(m->timer);
		runq_push(m);
		return;
	}
	d = due - now;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(m->timer, &tv);
}

/* one recipient */

/* rcpt_dup_of_delivered - 1 when an earlier recipient with the same
 * address (any case) is delivered already */
static int
rcpt_dup_of_delivered(const struct envelope *e, size_t idx)
{
	size_t j;

	for (j = 0; j < idx; j++)
		if (e->rcpts[j].state == RCPT_DELIVERED &&
		    strcasecmp(e->rcpts[j].addr, e->rcpts[idx].addr) == 0)
			return 1;
	return 0;
}

/* rcpt_log - one Postfix-style line per recipient attempt; tls is the
 * outcome of an attempt over SMTP ("TLSv1.3/CIPHER[/verified]" or
 * "none"), NULL for a local one */
static void
rcpt_log(const struct sched_msg *m, size_t idx, const char *relay,
    const char *tls, const char *dsn, const char *status, const char *why,
    int64_t now_ms)
{
	char *to = util_sanitise_dup(m->env.rcpts[idx].addr, 512);
	int64_t delay = now_ms - sec_to_ms(m->env.arrival);
	enum log_level lvl = LOG_LVL_INFO;

	if (delay < 0)
		delay = 0;
	if (strcmp(status, "bounced") == 0)
		lvl = LOG_LVL_WARN;
	stats_add(strcmp(status, "sent") == 0 ? STATS_DELIVERED :
	    strcmp(status, "deferred") == 0 ? STATS_DEFERRED : STATS_BOUNCED,
	    1);
	log_msg(lvl, "%s: to=<%s>, relay=%s%s%s, delay=%lld.%llds, dsn=%s, "
	    "status=%s (%s)", m->id, to, relay, tls ? ", tls=" : "",
	    tls ? tls : "", (long long)(delay / 1000),
	    (long long)(delay % 1000 / 100), dsn, status, why);
	free(to);
}

/* msg_expired - 1 when the message has been queued longer than the
 * configured lifetime */
static int
msg_expired(const struct sched_msg *m, int64_t now_ms)
{
	return now_ms >= add_sat(sec_to_ms(m->env.arrival),
	    sched.conf->retry_lifetime_ms);
}

/* rcpt_next_try - unix seconds of the next attempt after a temporary
 * failure: now + backoff, but not after the lifetime ends, so the final
 * attempt (and the bounce) happens on time */
static int64_t
rcpt_next_try(const struct sched_msg *m, const struct env_rcpt *r,
    int64_t now_ms)
{
	const struct conf *c = sched.conf;
	int64_t wait, at, end;

	wait = sched_backoff_ms(r->tries, c->retry_first_ms, c->retry_max_ms);
	if (wait < SCHED_MIN_RETRY_MS)
		wait = SCHED_MIN_RETRY_MS;
	at = add_sat(now_ms, wait);
	end = add_sat(sec_to_ms(m->env.arrival), c->retry_lifetime_ms);
	if (end > now_ms && end < at)
		at = end;
	return at / 1000 + (at % 1000 != 0);
}

/* rcpt_fail - the recipient will not be delivered */
static void
rcpt_fail(struct sched_msg *m, size_t idx, const char *relay,
    const char *tls, const char *dsn, const char *why, int64_t now_ms)
{
	struct env_rcpt *r = &m->env.rcpts[idx];

	r->state = RCPT_FAILED;
	envelope_set(&r->last_error, why);
	if (r->status == NULL || r->status[0] != '5')
		envelope_set(&r->status, dsn);
	rcpt_log(m, idx, relay, tls, dsn, "bounced", why, now_ms);
}

/*
 * rcpt_outcome - record what one attempt did.  dsn is the enhanced status
 * the attempt gave (NULL: a default for its class), what the text: the
 * remote reply, our error, or for a success what was done; tls as
 * rcpt_log() takes it.
 */
static void
rcpt_outcome(struct sched_msg *m, size_t idx, enum deliver_result res,
    const char *relay, const char *tls, const char *dsn, const char *what,
    int64_t now_ms)
{
	struct env_rcpt *r = &m->env.rcpts[idx];
	char why[SCHED_ERR_MAX + 1], expired[SCHED_ERR_MAX + 32];

	util_sanitise(why, SCHED_ERR_MAX, what, strlen(what));
	m->changed = 1;
	if (res == DELIVER_OK) {
		r->state = RCPT_DELIVERED;
		envelope_set(&r->last_error, NULL);
		envelope_set(&r->status, dsn ? dsn : "2.0.0");
		rcpt_log(m, idx, relay, tls, r->status, "sent", why, now_ms);
		return;
	}
	if (res == DELIVER_PERM) {
		envelope_set(&r->status, dsn ? dsn : "5.0.0");
		rcpt_fail(m, idx, relay, tls, r->status, why, now_ms);
		return;
	}
	envelope_set(&r->status, dsn ? dsn : "4.0.0");
	if (r->tries < UINT_MAX)
		r->tries++;
	if (msg_expired(m, now_ms)) {
		/* the report keeps the last reply and its status, so a reader
		 * sees the remote's words (smtp; 451 ...); the log line says
		 * why the trying stopped */
		r->state = RCPT_FAILED;
		envelope_set(&r->last_error, why);
		snprintf(expired, sizeof(expired), "delivery time expired: %s",
		    why);
		rcpt_log(m, idx, relay, tls, r->status, "bounced", expired,
		    now_ms);
		return;
	}
	r->state = RCPT_DEFERRED;
	r->next_try = rcpt_next_try(m, r, now_ms);
	envelope_set(&r->last_error, why);
	rcpt_log(m, idx, relay, tls, r->status, "deferred", why, now_ms);
}

/* one message */

static void msg_finish(struct sched_msg *m);
static void msg_load(const char *qid, int check_cur);

/* a local delivery of one recipient, in flight */
struct sched_local {
	struct local_job job; /* first: local_job_free frees the whole */
	struct sched_msg *msg;
	size_t idx;
};

/* rcpt_split - local part and domain of addr (bufs of n, at least
 * strlen(addr) + 1); an address without '@' (the bare postmaster) gets an
 * empty domain */
static int
rcpt_split(const char *addr, char *local, char *domain, size_t n)
{
	if (strchr(addr, '@') == NULL) {
		snprintf(local, n, "%s", addr);
		domain[0] = '\0';
		return 0;
	}
	return mailbox_split(addr, local, n, domain, n);
}

/*
 * rcpt_forwarded - a .forward named targets instead of a mailbox: they
 * become recipients of their own (owner: the user, so the delivery
 * process checks them against the same .forward), and this one is done
 */
static void
rcpt_forwarded(struct sched_msg *m, size_t idx, const char *user,
    const struct deliver_reply *rep, int64_t now_ms)
{
	const char *addr = m->env.rcpts[idx].addr, *at = strrchr(addr, '@');
	const char *domain = at ? at + 1 : sched.conf->hostname;
	size_t i, added = 0;
	char *a, why[SCHED_ERR_MAX];

	for (i = 0; i < rep->nforward; i++) {
		const char *t = rep->forward[i];

		if (t[0] == '|' || t[0] == '/') {
			a = xasprintf("%s:%s", t[0] == '|' ? "pipe" : "file",
			    t[0] == '|' ? t + 1 : t);
			added += envelope_add_expanded(&m->env, idx, addr, a,
			    NULL, user);
		} else if (t[0] == '\\') {
			a = xasprintf("%s@%s", t + 1, domain);
			added += envelope_add_expanded(&m->env, idx, a,
			    "mailbox", NULL, user);
		} else {
			a = strchr(t, '@') ? xstrdup(t) :
			    xasprintf("%s@%s", t, domain);
			added += envelope_add_expanded(&m->env, idx, a, NULL,
			    NULL, NULL);
		}
		free(a);
	}
	snprintf(why, sizeof(why), "forwarded by %s's .forward to %zu "
	    "recipient(s)", user, added);
	rcpt_outcome(m, idx, DELIVER_OK, "local", NULL, "2.0.0", why, now_ms);
}

/* local_done - a local delivery finished: record it */
static void
local_done(struct local_job *job, void *arg)
{
	struct sched_local *sl = arg;
	struct sched_msg *m = sl->msg;
	const struct deliver_reply *rep = &job->reply;
	int64_t now_ms = util_now_ms();

	if (rep->result == DELIVER_FORWARDED)
		rcpt_forwarded(m, sl->idx, job->req.user, rep, now_ms);
	else
		rcpt_outcome(m, sl->idx, (enum deliver_result)rep->result,
		    "local", NULL, rep->status[0] ? rep->status : NULL,
		    rep->reason[0] ? rep->reason : "unknown error", now_ms);
	m->check_cur = 0;
	local_job_free(job);
	m->inflight--;
	sched.busy--;
	msg_finish(m);
}

/*
 * rcpt_expand - recipient idx names an alias: its targets become
 * recipients of their own (users: "local", their mailbox and .forward
 * but no alias again; files and pipes with the alias that listed them,
 * so the delivery process can check them; addresses as they are), and
 * this one is done.  A loop or a limit fails it, an unreadable
 * :include: defers it.
 */
static void
rcpt_expand(struct sched_msg *m, size_t idx, const char *name,
    const char *domain, int64_t now_ms)
{
	const char *addr = m->env.rcpts[idx].addr;
	struct aliases_expansion x;
	enum aliases_status st;
	char why[SCHED_ERR_MAX], *a, *t;
	size_t i, added = 0;

	st = alias_table_expand(name, &x);
	if (st != ALIASES_OK) {
		rcpt_outcome(m, idx, st == ALIASES_TEMPFAIL ? DELIVER_TEMP :
		    DELIVER_PERM, "local", NULL, x.status, x.error.data ?
		    x.error.data : "alias expansion failed", now_ms);
		aliases_expansion_free(&x);
		return;
	}
	for (i = 0; i < x.ndests; i++) {
		const struct aliases_dest *d = &x.dests[i];

		a = d->kind == ALIASES_USER ?
		    xasprintf("%s@%s", d->value, domain) :
		    d->kind == ALIASES_ADDRESS ? xstrdup(d->value) :
		    xstrdup(addr);
		t = d->kind == ALIASES_USER ? xstrdup("local") :
		    d->kind == ALIASES_ADDRESS ? NULL :
		    xasprintf("%s:%s", d->kind == ALIASES_PIPE ? "pipe" :
		    "file", d->value);
		added += envelope_add_expanded(&m->env, idx, a, t,
		    t != NULL && d->kind != ALIASES_USER ? d->alias : NULL,
		    NULL);
		free(a);
		free(t);
	}
	snprintf(why, sizeof(why), "expanded by the alias %s to %zu "
	    "recipient(s)", name, added);
	aliases_expansion_free(&x);
	rcpt_outcome(m, idx, DELIVER_OK, "local", NULL, "2.0.0", why, now_ms);
}

/* rcpt_source - how an expanded recipient is delivered (a plain one
 * goes to its user's mailbox) */
static enum deliver_source
rcpt_source(const struct env_rcpt *rc, int *no_forward)
{
	*no_forward = 0;
	if (rc->target == NULL || strcmp(rc->target, "local") == 0)
		return DSRC_MAILBOX;
	if (strcmp(rc->target, "mailbox") == 0) {
		*no_forward = 1;
		return DSRC_MAILBOX;
	}
	return rc->owner != NULL ? DSRC_FORWARD : DSRC_ALIAS;
}

/*
 * rcpt_lmtp - with an lmtp: method the recipient goes to that LMTP server
 * through mta.c, like a remote one: connection reuse, concurrency and a
 * reply per recipient come with it (conf.c checked the address at load).
 * 1 with the route in r.
 */
static int
rcpt_lmtp(const struct sched_msg *m, const char *method, struct route *r)
{
	char err[256];

	if (strncmp(method, "lmtp:", 5) != 0)
		return 0;
	if (route_lmtp(method + 5, r, err, sizeof(err)) == 0)
		return 1;
	log_err("%s: mailbox %s: %s", m->id, method, err);
	return 0;
}

/* local_request - the delivery request for local recipient idx, whose
 * local part is mp and domain domain (lower case) */
static struct sched_local *
local_request(struct sched_msg *m, size_t idx, const struct mailbox_parts *mp,
    const char *domain)
{
	const struct conf *c = sched.conf;
	const struct env_rcpt *rc = &m->env.rcpts[idx];
	struct sched_local *sl = xcalloc(1, sizeof(*sl));
	struct deliver_request *rq = &sl->job.req;
	char content[PATH_MAX];

	sl->msg = m;
	sl->idx = idx;
	rq->qid = xstrdup(m->id);
	rq->index = idx;
	rq->source = rcpt_source(rc, &rq->no_forward);
	rq->method = xstrdup(rq->source == DSRC_MAILBOX ?
	    conf_mailbox_method(c, mp->user) : rc->target);
	if (rq->source == DSRC_FORWARD)
		rq->user = xstrdup(rc->owner);
	else if (rq->source == DSRC_MAILBOX &&
	    c->recipients == RECIPIENTS_SYSTEM)
		rq->user = xstrdup(mp->user);
	else
		rq->user = xstrdup(""); /* the tern user, or alias-user */
	rq->vuser = xstrdup(mp->user);
	rq->local = xstrdup(mp->local);
	rq->ext = xstrdup(mp->ext);
	rq->domain = xstrdup(domain);
	rq->rcpt = xstrdup(rc->addr);
	rq->sender = xstrdup(m->env.sender ? m->env.sender : "");
	rq->alias = rc->alias ? xstrdup(rc->alias) : NULL;
	rq->check_cur = m->check_cur;
	spool_content_path(m->id, content, sizeof(content));
	sl->job.content_path = xstrdup(content);
	sl->job.done = local_done;
	sl->job.arg = sl;
	return sl;
}

/* local_start - hand a request to local.c; local_done continues */
static void
local_start(struct sched_msg *m, struct sched_local *sl)
{
	m->inflight++;
	sched.busy++;
	local_submit(&sl->job);
}

/*
 * rcpt_local - hand local recipient idx to the delivery process (or
 * expand its alias); 1 when it goes by LMTP instead, its route in lmtp
 */
static int
rcpt_local(struct sched_msg *m, size_t idx, int64_t now_ms,
    struct route *lmtp)
{
	const struct conf *c = sched.conf;
	const struct env_rcpt *rc = &m->env.rcpts[idx];
	size_t n = strlen(rc->addr) + strlen(c->hostname) + 1;
	char *local = xmalloc(n), *domain = xmalloc(n);
	struct mailbox_parts mp;
	int lmtp_route = 0;

	if (rc->target == NULL && rcpt_dup_of_delivered(&m->env, idx)) {
		m->env.rcpts[idx].state = RCPT_DELIVERED;
		m->changed = 1;
		rcpt_log(m, idx, "local", NULL, "2.0.0", "sent",
		    "duplicate of a delivered recipient", now_ms);
		goto out;
	}
	if (rcpt_split(rc->addr, local, domain, n) == -1 ||
	    mailbox_parts(local, c->subaddress, &mp) == -1) {
		rcpt_outcome(m, idx, DELIVER_PERM, "local", NULL, "5.1.3",
		    "local part not usable as a mailbox", now_ms);
		goto out;
	}
	if (domain[0] == '\0')
		snprintf(domain, n, "%s", c->hostname);
	util_lower(domain);
	if (rc->target == NULL && alias_table_has(mp.user)) {
		rcpt_expand(m, idx, mp.user, domain, now_ms);
		goto out;
	}
	if ((rc->target == NULL || strcmp(rc->target, "local") == 0) &&
	    rcpt_lmtp(m, conf_mailbox_method(c, mp.user), lmtp)) {
		lmtp_route = 1;
		goto out;
	}
	local_start(m, local_request(m, idx, &mp, domain));
out:
	free(local);
	free(domain);
	return lmtp_route;
}

/* a report being committed for a message */
struct sched_report {
	struct sched_msg *msg;
	struct report r;
};

/* report_done - a report's commit finished: mark, or retry later */
static void
report_done(int ok, int err, const char *qid, void *arg)
{
	struct sched_report *sr = arg;
	struct sched_msg *m = sr->msg;

	(void)err; /* the spool logged it */
	m->inflight--;
	sched.busy--;
	if (ok) {
		report_mark(&m->env, &sr->r);
		m->changed = 1;
		msg_load(qid, 0);
	} else {
		log_err("%s: the report could not be queued; retrying later",
		    m->id);
		m->report_hold = util_now_ms() + SCHED_REPORT_RETRY_MS;
	}
	report_free(&sr->r);
	free(sr);
	msg_finish(m);
}

/* msg_report - queue report r (taken over); 0 when its commit runs */
static int
msg_report(struct sched_msg *m, struct report *r)
{
	struct sched_report *sr = xcalloc(1, sizeof(*sr));
	char content[PATH_MAX];

	sr->msg = m;
	sr->r = *r;
	spool_content_path(m->id, content, sizeof(content));
	if (report_queue(sched.conf, &m->env, content, &sr->r, report_done,
	    sr) == -1) {
		report_free(&sr->r);
		free(sr);
		return -1;
	}
	m->inflight++;
	sched.busy++;
	return 0;
}

/* update_done - the envelope's new states are durable (or, on failure,
 * still right in memory: after a restart the idempotent Maildir names
 * prevent a second copy) */
static void
update_done(int ok, int err, const char *qid, void *arg)
{
	struct sched_msg *m = arg;

	(void)err; /* the spool logged it */
	if (!ok)
		log_err("%s: cannot update the envelope", qid);
	m->inflight--;
	sched.busy--;
	msg_finish(m);
}

/* msg_update - write the envelope's new states, off the loop */
static void
msg_update(struct sched_msg *m)
{
	m->changed = 0;
	m->inflight++;
	sched.busy++;
	spool_update_async(&m->env, update_done, m);
}

/*
 * msg_finish - after an attempt, once nothing is in flight: queue the
 * reports the message owes (one at a time: each continues here when it is
 * durable), then remove the message when nothing is left to do, else record
 * the new states durably and wait for the next due recipient.
 */
static void
msg_finish(struct sched_msg *m)
{
	int64_t now = util_now_ms();
	struct report r;
	int owed;

	if (m->inflight > 0)
		return;
	if (sched.draining) {
		/* what was done is recorded before the successor starts, so
		 * it does not deliver again to an mbox or a pipe */
		if (m->changed)
			msg_update(m);
		return;
	}
	/* a held message owes nothing yet: no delay warning while the
	 * administrator holds it */
	owed = !m->env.hold && report_due(sched.conf, &m->env, now / 1000,
	    &r);
	if (owed && now >= m->report_hold) {
		if (msg_report(m, &r) == 0)
			return;
		m->report_hold = now + SCHED_REPORT_RETRY_MS;
	} else if (owed) {
		report_free(&r);
	}
	if (!owed && envelope_done(&m->env)) {
		if (spool_remove(m->id) == 0) {
			log_info("%s: removed", m->id);
		} else {
			/* keep the states; the rescan retries the removal */
			log_err("%s: cannot remove from the queue", m->id);
			spool_update(&m->env);
		}
		msg_forget(m);
		return;
	}
	if (m->changed) {
		msg_update(m); /* continues in update_done */
		return;
	}
	msg_schedule(m);
	if (owed && !evtimer_pending(m->timer, NULL)) {
		struct timeval tv = { SCHED_REPORT_RETRY_MS / 1000, 0 };

		evtimer_add(m->timer, &tv);
	}
}

/* job_tls - the TLS of an outbound attempt for the log line:
 * "TLSv1.3/TLS_AES_256_GCM_SHA384", "/verified" added when tls=verify
 * checked the certificate, or "none" */
static void
job_tls(const struct mta_job *job, char *out, size_t outlen)
{
	char *sp;

	if (job->tls[0] == '\0') {
		snprintf(out, outlen, "none");
		return;
	}
	snprintf(out, outlen, "%s%s", job->tls,
	    job->tls_verified ? "/verified" : "");
	if ((sp = strchr(out, ' ')) != NULL)
		*sp = '/';
}

/* job_done - an outbound job finished: record every recipient's outcome */
static void
job_done(struct mta_job *job, void *arg)
{
	struct sched_job *sj = arg;
	struct sched_msg *m = sj->msg;
	int64_t now_ms = util_now_ms();
	const char *relay = job->remote[0] ? job->remote : job->route.host;
	char tls[sizeof(job->tls) + 16];
	size_t i;

	job_tls(job, tls, sizeof(tls));
	for (i = 0; i < job->nrcpts; i++) {
		const struct mta_rcpt *mr = &job->rcpts[i];
		struct env_rcpt *r = &m->env.rcpts[mr->index];
		enum deliver_result res = mr->result == 2 ? DELIVER_OK :
		    mr->result == 5 ? DELIVER_PERM : DELIVER_TEMP;
		const char *what = mr->diag[0] ? mr->diag :
		    res == DELIVER_OK ? "delivered" : "unknown error";

		/* an LMTP server stores the mail: a final delivery, not a
		 * relay, for the success report (RFC 3464 "delivered") */
		envelope_set(&r->remote, job->remote[0] &&
		    job->route.kind != ROUTE_LMTP ? job->remote : NULL);
		rcpt_outcome(m, mr->index, res, relay, tls,
		    mr->status[0] ? mr->status : NULL, what, now_ms);
		/* a next hop that took NOTIFY= reports success itself */
		if (res == DELIVER_OK && job->peer_dsn)
			r->notified = 1;
	}
	free(job->rcpts);
	free(sj);
	m->inflight--;
	sched.busy--;
	msg_finish(m);
}

/* job_for - the job of m's attempt that goes to route r, made when new */
static struct sched_job *
job_for(struct sched_msg *m, struct sched_job ***jobs, size_t *njobs,
    const struct route *r)
{
	char key[ROUTE_KEY_MAX], other[ROUTE_KEY_MAX];
	struct sched_job *sj;
	size_t i;

	route_key(r, key, sizeof(key));
	for (i = 0; i < *njobs; i++) {
		route_key(&(*jobs)[i]->job.route, other, sizeof(other));
		if (strcmp(key, other) == 0)
			return (*jobs)[i];
	}
	sj = xcalloc(1, sizeof(*sj));
	sj->msg = m;
	spool_content_path(m->id, sj->content, sizeof(sj->content));
	sj->job.qid = m->id;
	sj->job.content_path = sj->content;
	sj->job.size = m->env.size;
	sj->job.body_8bit = m->env.body_8bit;
	sj->job.smtputf8 = m->env.smtputf8;
	sj->job.sender = m->env.sender ? m->env.sender : "";
	sj->job.envid = m->env.envid;
	sj->job.ret = m->env.ret;
	sj->job.route = *r;
	sj->job.rcpts = xcalloc(m->env.nrcpts, sizeof(*sj->job.rcpts));
	sj->job.done = job_done;
	sj->job.arg = sj;
	*jobs = xreallocarray(*jobs, *njobs + 1, sizeof(**jobs));
	(*jobs)[(*njobs)++] = sj;
	return sj;
}

/* rcpt_route - where recipient idx goes (the bare postmaster is local) */
static void
rcpt_route(const struct sched_msg *m, size_t idx, struct route *r)
{
	const char *addr = m->env.rcpts[idx].addr, *at = strrchr(addr, '@');

	route_for_domain(sched.conf, at ? at + 1 : "", r);
}

/*
 * msg_attempt - try every recipient of m that is due now: local ones at
 * once, remote ones as one outbound job per destination, all recipients
 * for a destination in one job (one SMTP transaction).
 */
static void
msg_attempt(struct sched_msg *m)
{
	int64_t now_ms = util_now_ms(), now_s = now_ms / 1000;
	struct sched_job **jobs = NULL, *sj;
	size_t i, njobs = 0;
	struct route r;

	if (m->inflight > 0 || sched.draining)
		return; /* its jobs' completion reschedules it */
	if (m->env.hold)
		return; /* held while it waited on the run queue */
	for (i = 0; i < m->env.nrcpts; i++) {
		const struct env_rcpt *rc = &m->env.rcpts[i];
		struct mta_rcpt *mr;

		if (!rcpt_active(rc) || rc->next_try > now_s)
			continue;
		rcpt_route(m, i, &r);
		if (r.kind == ROUTE_LOCAL && !rcpt_local(m, i, now_ms, &r))
			continue;
		sj = job_for(m, &jobs, &njobs, &r);
		mr = &sj->job.rcpts[sj->job.nrcpts++];
		mr->index = i;
		mr->addr = rc->addr;
		mr->orcpt = rc->orcpt;
		mr->notify = rc->notify;
	}
	m->inflight += njobs;
	sched.busy += njobs;
	for (i = 0; i < njobs; i++)
		mta_submit(&jobs[i]->job);
	free(jobs);
	msg_finish(m);
}

/* runner_cb - deliver up to SCHED_BATCH messages from the run queue, then
 * let the loop read notices before the next batch */
static void
runner_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched_msg *m;
	int n;

	(void)fd;
	(void)what;
	(void)arg;
	for (n = 0; n < SCHED_BATCH; n++) {
		m = TAILQ_FIRST(&sched.runq);
		if (m == NULL)
			return;
		TAILQ_REMOVE(&sched.runq, m, entry);
		m->queued = 0;
		msg_attempt(m);
	}
	if (!TAILQ_EMPTY(&sched.runq))
		runq_kick();
}

/* msg_load - read a queued message into memory and schedule it; nothing
 * when it is known already */
static void
msg_load(const char *qid, int check_cur)
{
	struct sched_msg *m;

	if (msg_find(qid) != NULL)
		return;
	m = xcalloc(1, sizeof(*m));
	if (spool_load(qid, &m->env) == -1) {
		/* logged by spool_load (and quarantined if unreadable) */
		envelope_free(&m->env);
		free(m);
		return;
	}
	/* spool_load checked that env.id is qid */
	memcpy(m->id, qid, QID_SIZE);
	m->check_cur = check_cur;
	m->timer = evtimer_new(sched.base, msg_timer_cb, m);
	if (m->timer == NULL)
		fatal("cannot create a timer");
	if (tsearch(m, &sched.msgs, msg_cmp) == NULL)
		fatal("out of memory");
	sched.nmsgs++;
	log_debug("%s: loaded, %zu recipients", qid, m->env.nrcpts);
	msg_finish(m);
}

/* scan_cb - spool_scan callback: load a message found on disk.  Messages
 * found by a scan get check_cur: an earlier run of the process may have
 * delivered them already and a reader moved the copy to cur/. */
static void
scan_cb(const char *qid, void *arg)
{
	(void)arg;
	msg_load(qid, 1);
}

/* rescan_cb - the periodic safety net for lost notices */
static void
rescan_cb(evutil_socket_t fd, short what, void *arg)
{
	size_t before = sched.nmsgs;

	(void)fd;
	(void)what;
	(void)arg;
	spool_scan(scan_cb, NULL);
	if (sched.nmsgs > before)
		log_info("rescan found %zu messages without a notice",
		    sched.nmsgs - before);
}

/* sched_add - load a message this process committed */
void
sched_add(const char *qid)
{
	msg_load(qid, 0);
}

/* notices */

/* notice_cb - read queue ids, one per line, from the notice socket */
static void
notice_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[NOTICE_DGRAM_MAX + 1], *line, *next;
	ssize_t n;
	int i;

	(void)what;
	(void)arg;
	for (i = 0; i < SCHED_NOTICES_MAX; i++) {
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return;
		buf[n] = '\0';
		for (line = buf; line != NULL && *line != '\0'; line = next) {
			next = strchr(line, '\n');
			if (next != NULL)
				*next++ = '\0';
			if (!spool_qid_valid(line)) {
				log_debug("ignoring a notice that is not a "
				    "queue id");
				continue;
			}
			msg_load(line, 0);
		}
	}
}

/* notice_bind - bind the notice socket at $home/state/queue.sock */
static int
notice_bind(const char *home)
{
	struct sockaddr_un sa;
	char *state;
	int fd;

	if (state_sock_path(home, &sa) == -1)
		fatal("%s/state/queue.sock: path too long for a socket", home);
	state = xasprintf("%s/state", home);
	if (mkdir(home, 0700) == -1 && errno != EEXIST)
		fatal("cannot create %s: %s", home, strerror(errno));
	if (mkdir(state, 0700) == -1 && errno != EEXIST)
		fatal("cannot create %s: %s", state, strerror(errno));
	free(state);
	fd = util_dgram_bind(sa.sun_path);
	if (fd == -1)
		fatal("cannot bind %s: %s", sa.sun_path, strerror(errno));
	return fd;
}

void
sched_start(const struct conf *c, struct event_base *base)
{
	struct timeval rescan = { SCHED_RESCAN_MS / 1000, 0 };

	sched.conf = c;
	sched.base = base;
	TAILQ_INIT(&sched.runq);
	sched.runner = evtimer_new(base, runner_cb, NULL);
	sched.rescan = event_new(base, -1, EV_PERSIST, rescan_cb, NULL);
	sched.notice_fd = notice_bind(c->home);
	sched.notice = event_new(base, sched.notice_fd, EV_READ | EV_PERSIST,
	    notice_cb, NULL);
	if (sched.runner == NULL || sched.rescan == NULL ||
	    sched.notice == NULL)
		fatal("cannot create scheduler events");
	event_add(sched.notice, NULL);
	event_add(sched.rescan, &rescan);
	spool_scan(scan_cb, NULL);
	log_info("scheduler started: %zu messages in the queue", sched.nmsgs);
}

/* notify_flush - send kept notices, many per datagram, until EAGAIN */
static void
notify_flush(void)
{
	size_t len, cut;
	ssize_t n;
	struct timeval tv = { 0, NOTICE_RETRY_MS * 1000 };

	while (notify.pending.len > 0) {
		len = notify.pending.len;
		if (len > NOTICE_DGRAM_MAX) {
			/* whole lines only */
			for (cut = NOTICE_DGRAM_MAX; cut > 0 &&
			    notify.pending.data[cut - 1] != '\n'; cut--)
				;
			len = cut;
		}
		n = sendto(notify.fd, notify.pending.data, len, MSG_DONTWAIT,
		    (struct sockaddr *)&notify.sa, sizeof(notify.sa));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == ENOBUFS)) {
			/* the queue process is busy: try again shortly */
			evtimer_add(notify.retry, &tv);
			return;
		}
		if (n == -1) {
			/* not running (restarting): its start-up scan and
			 * the periodic rescan find these messages */
			log_debug("queue notice not sent: %s",
			    strerror(errno));
		}
		buf_consume(&notify.pending, len);
	}
}

static void
notify_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_flush();
}

int
sched_notify_open(const char *home, struct event_base *base)
{
	if (state_sock_path(home, &notify.sa) == -1) {
		log_err("%s/state/queue.sock: path too long for a socket",
		    home);
		return -1;
	}
	notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (notify.fd == -1) {
		log_err("socket: %s", strerror(errno));
		return -1;
	}
	buf_init(&notify.pending);
	notify.retry = evtimer_new(base, notify_retry_cb, NULL);
	if (notify.retry == NULL)
		fatal("cannot create the notice timer");
	return 0;
}

void
sched_notify(const char *qid)
{
	if (notify.fd == -1)
		return;
	if (notify.pending.len > NOTICE_PENDING_MAX) {
		log_debug("%s: queue notice dropped (backlog full); the "
		    "rescan finds it", qid);
		return;
	}
	buf_printf(&notify.pending, "%s\n", qid);
	if (!evtimer_pending(notify.retry, NULL))
		notify_flush();
}

static void
drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 200 * 1000 };

	(void)fd;
	(void)what;
	(void)arg;
	if (sched.busy == 0 && !pickup_busy()) {
		log_info("handover done: no delivery in flight");
		event_base_loopexit(sched.base, NULL);
		return;
	}
	evtimer_add(sched.drain_ev, &tv);
}

void
sched_drain(void)
{
	if (sched.draining)
		return;
	sched.draining = 1;
	pickup_drain();
	log_info("handing over: %u delivery job(s) finishing", sched.busy);
	sched.drain_ev = evtimer_new(sched.base, drain_check_cb, NULL);
	drain_check_cb(-1, 0, NULL);
}

/* control: what tern queue and tern status ask of the scheduler */

/* ctl_msg - the message with this id, loaded from the spool when it is
 * there but not in memory yet (its notice not read yet); NULL: none */
static struct sched_msg *
ctl_msg(const char *qid)
{
	struct sched_msg *m = msg_find(qid);

	if (m == NULL && spool_qid_valid(qid)) {
		msg_load(qid, 0);
		m = msg_find(qid);
	}
	return m;
}

/* ctl_usable - CTL_OK when m can be changed now, else why not */
static enum control_err
ctl_usable(const char *qid, struct sched_msg *m, char *err, size_t errlen)
{
	if (m == NULL) {
		snprintf(err, errlen, "There is no message %s in the queue.",
		    qid);
		return CTL_E_NOTFOUND;
	}
	if (m->inflight > 0 || sched.draining) {
		snprintf(err, errlen, "Message %s is being delivered or "
		    "updated right now; try again in a moment.", qid);
		return CTL_E_BUSY;
	}
	return CTL_OK;
}

const struct envelope *
sched_env(const char *qid, int *active)
{
	struct sched_msg *m = msg_find(qid);

	if (m == NULL)
		return NULL;
	*active = m->inflight > 0;
	return &m->env;
}

/* flush_msg - make m's waiting recipients (of domain, when not NULL) due
 * now; 1 when any was */
static int
flush_msg(struct sched_msg *m, const char *domain)
{
	struct env_rcpt *r;
	const char *at;
	size_t i;
	int any = 0;

	if (m->env.hold || m->inflight > 0)
		return 0;
	for (i = 0; i < m->env.nrcpts; i++) {
		r = &m->env.rcpts[i];
		at = strrchr(r->addr, '@');
		if (!rcpt_active(r) || (domain != NULL &&
		    (at == NULL || strcasecmp(at + 1, domain) != 0)))
			continue;
		r->next_try = 0;
		any = 1;
	}
	if (any) {
		m->report_hold = 0;
		msg_schedule(m);
	}
	return any;
}

/* flush_walk - twalk(3) has no argument: the domain of the flush in
 * progress and its count */
static const char *flush_domain;
static size_t flush_count;

static void
flush_walk(const void *node, VISIT v, int depth)
{
	(void)depth;
	if (v == postorder || v == leaf)
		flush_count += (size_t)flush_msg(*(struct sched_msg *const *)
		    node, flush_domain);
}

enum control_err
sched_flush(const char *qid, const char *domain, size_t *n, char *err,
    size_t errlen)
{
	struct sched_msg *m;

	*n = 0;
	/* a destination backing off after failures is tried again too,
	 * as postqueue -f does */
	mta_flush();
	if (qid == NULL) {
		flush_domain = domain;
		flush_count = 0;
		twalk(sched.msgs, flush_walk);
		*n = flush_count;
		log_info("flush%s%s: %zu message(s) due now",
		    domain ? " @" : "", domain ? domain : "", *n);
		return CTL_OK;
	}
	m = ctl_msg(qid);
	if (m == NULL)
		return ctl_usable(qid, m, err, errlen);
	if (m->env.hold) {
		snprintf(err, errlen, "Message %s is held; release it first.",
		    qid);
		return CTL_E_STATE;
	}
	*n = (size_t)flush_msg(m, NULL);
	log_info("%s: flush: due now", qid);
	return CTL_OK;
}

/* a hold or release waiting for its envelope update */
struct sched_hold {
	struct sched_msg *msg;
	int hold;
	sched_ctl_cb cb;
	void *arg;
};

/* hold_done - the envelope with the new hold is durable (or not: then
 * memory goes back to what the disk says) */
static void
hold_done(int ok, int err, const char *qid, void *arg)
{
	struct sched_hold *h = arg;
	struct sched_msg *m = h->msg;

	(void)err; /* the spool logged it */
	m->inflight--;
	sched.busy--;
	if (ok)
		log_info("%s: %s by the administrator", qid,
		    h->hold ? "held" : "released");
	else
		m->env.hold = !h->hold;
	h->cb(ok, h->arg);
	free(h);
	msg_finish(m);
}

enum control_err
sched_hold(const char *qid, int hold, sched_ctl_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct sched_msg *m = ctl_msg(qid);
	struct sched_hold *h;
	enum control_err e = ctl_usable(qid, m, err, errlen);

	if (e != CTL_OK)
		return e;
	m->env.hold = hold ? 1 : 0;
	evtimer_del(m->timer);
	if (m->queued) {
		TAILQ_REMOVE(&sched.runq, m, entry);
		m->queued = 0;
	}
	h = xcalloc(1, sizeof(*h));
	h->msg = m;
	h->hold = hold;
	h->cb = cb;
	h->arg = arg;
	/* the message waits for its update like after an attempt: nothing
	 * else is tried for it meanwhile */
	m->changed = 0;
	m->inflight++;
	sched.busy++;
	spool_update_async(&m->env, hold_done, h);
	return CTL_OK;
}

enum control_err
sched_delete(const char *qid, char *err, size_t errlen)
{
	struct sched_msg *m = ctl_msg(qid);
	enum control_err e = ctl_usable(qid, m, err, errlen);

	if (e != CTL_OK)
		return e;
	/* synced, unlike the removal of a delivered message: what the
	 * administrator deleted must not come back after a crash */
	if (spool_remove(qid) == -1 || spool_sync_queue() == -1) {
		snprintf(err, errlen, "Message %s could not be removed: %s.",
		    qid, strerror(errno));
		return CTL_E_FAILED;
	}
	log_info("%s: deleted by the administrator", qid);
	msg_forget(m);
	return CTL_OK;
}

enum control_err
sched_bounce(const char *qid, size_t *n, char *err, size_t errlen)
{
	struct sched_msg *m = ctl_msg(qid);
	enum control_err e = ctl_usable(qid, m, err, errlen);
	int64_t now_ms = util_now_ms();
	char why[SCHED_ERR_MAX + 64];
	struct env_rcpt *r;
	size_t i;

	*n = 0;
	if (e != CTL_OK)
		return e;
	for (i = 0; i < m->env.nrcpts; i++) {
		r = &m->env.rcpts[i];
		if (!rcpt_active(r))
			continue;
		snprintf(why, sizeof(why), "delivery cancelled by the "
		    "administrator%s%s", r->last_error ? "; last error: " : "",
		    r->last_error ? r->last_error : "");
		/* the status of this decision, not of the last attempt */
		envelope_set(&r->status, "5.0.0");
		rcpt_fail(m, i, "none", NULL, "5.0.0", why, now_ms);
		(*n)++;
	}
	/* a held message is released into its end: the reports follow */
	m->env.hold = 0;
	m->changed = 1;
	m->report_hold = 0;
	evtimer_del(m->timer);
	msg_finish(m); /* queues the failure report, then removes it */
	return CTL_OK;
}

/* count_walk - twalk(3) has no argument: the counts being taken */
static struct sched_counts *count_into;

static void
count_walk(const void *node, VISIT v, int depth)
{
	const struct sched_msg *m = *(struct sched_msg *const *)node;
	struct sched_counts *c = count_into;
	size_t i;

	(void)depth;
	if (v != postorder && v != leaf)
		return;
	c->messages++;
	switch (control_msg_state_of(&m->env, m->inflight > 0,
	    util_now_ms() / 1000)) {
	case CTL_MSG_PENDING:
		c->pending++;
		break;
	case CTL_MSG_ACTIVE:
		c->active++;
		break;
	case CTL_MSG_DEFERRED:
		c->deferred++;
		break;
	case CTL_MSG_HELD:
		c->held++;
		break;
	case CTL_MSG_DONE:
		c->done++;
		break;
	}
	for (i = 0; i < m->env.nrcpts; i++)
		c->recipients += rcpt_active(&m->env.rcpts[i]);
}

void
sched_counts(struct sched_counts *c)
{
	memset(c, 0, sizeof(*c));
	count_into = c;
	twalk(sched.msgs, count_walk);
	count_into = NULL;
}

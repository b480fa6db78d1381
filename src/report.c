/*
 * report.c - the delivery status notifications a message owes, and queuing
 * them (RFC 3461 section 4.1 NOTIFY, RFC 3464 reports built by bounce.c).
 *
 * The one idea: a report is an ordinary queued message from the null
 * sender <>, committed durably before the recipients it reports on are
 * marked, so a crash at any point either sends it again or not at all
 * before the mark -- never loses it.  A bounce is never bounced: a failed
 * report goes to the local postmaster once (a double bounce), and a failed
 * double bounce is logged and dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "report.h"
#include "spool.h"
#include "util.h"

/* the whole original message goes back only up to this size; larger ones
 * come back as their header section */
#define REPORT_FULL_MAX BOUNCE_FULL_MAX
/* the header section returned is cut at this size */
#define REPORT_HEADERS_MAX (256 * 1024)

/* is_postmaster - "postmaster" or "postmaster@anything", any case */
static int
is_postmaster(const char *addr)
{
	return strncasecmp(addr, "postmaster", 10) == 0 &&
	    (addr[10] == '\0' || addr[10] == '@');
}

/* is_double_bounce - from <> to postmaster only: our own double bounce */
static int
is_double_bounce(const struct envelope *env)
{
	size_t i;

	if (env->sender[0] != '\0')
		return 0;
	for (i = 0; i < env->nrcpts; i++)
		if (!is_postmaster(env->rcpts[i].addr))
			return 0;
	return 1;
}

/* wants - 1 when the recipient's NOTIFY asks for this kind of report
 * (no NOTIFY: failures and delays, RFC 3461 4.1) */
static int
wants(const struct env_rcpt *r, unsigned bit)
{
	if (r->notify & DSN_NOTIFY_NEVER)
		return 0;
	if (r->notify == 0)
		return bit != DSN_NOTIFY_SUCCESS;
	return (r->notify & bit) != 0;
}

static void
add(struct report *r, size_t i, size_t n)
{
	if (r->rcpts == NULL)
		r->rcpts = xcalloc(n, sizeof(*r->rcpts));
	r->rcpts[r->nrcpts++] = i;
}

/* due_failed - failed recipients not reported yet */
static void
due_failed(struct envelope *env, struct report *r)
{
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		struct env_rcpt *rc = &env->rcpts[i];

		if (rc->state != RCPT_FAILED || rc->notified ||
		    !wants(rc, DSN_NOTIFY_FAILURE))
			continue;
		if (is_double_bounce(env)) {
			log_warn("%s: double bounce to <%s> failed: dropped",
			    env->id, rc->addr);
			rc->notified = 1;
			continue;
		}
		add(r, i, env->nrcpts);
	}
	r->kind = BOUNCE_FAILED;
	/* a bounce that fails goes to the postmaster, never to <> */
	r->to = env->sender[0] != '\0' ? env->sender : "postmaster";
}

/* due_success - delivered recipients that asked for NOTIFY=SUCCESS; a
 * remote one is "relayed" (its next hop did not take DSN, or the scheduler
 * would have marked it) */
static void
due_success(struct envelope *env, struct report *r)
{
	size_t i;
	int relayed = -1;

	for (i = 0; i < env->nrcpts; i++) {
		const struct env_rcpt *rc = &env->rcpts[i];

		if (rc->state != RCPT_DELIVERED || rc->notified ||
		    !wants(rc, DSN_NOTIFY_SUCCESS))
			continue;
		if (relayed == -1)
			relayed = rc->remote != NULL;
		if ((rc->remote != NULL) == relayed)
			add(r, i, env->nrcpts);
	}
	r->kind = relayed == 1 ? BOUNCE_RELAYED : BOUNCE_DELIVERED;
	r->to = env->sender;
}

/* due_delayed - still deferred after retry warn= and not warned yet */
static void
due_delayed(const struct conf *c, struct envelope *env, int64_t now,
    struct report *r)
{
	size_t i;

	if (c->retry_warn_ms <= 0 || now - env->arrival < c->retry_warn_ms /
	    1000)
		return;
	for (i = 0; i < env->nrcpts; i++) {
		const struct env_rcpt *rc = &env->rcpts[i];

		if (rc->state == RCPT_DEFERRED && !rc->warned &&
		    wants(rc, DSN_NOTIFY_DELAY))
			add(r, i, env->nrcpts);
	}
	r->kind = BOUNCE_DELAYED;
	r->to = env->sender;
}

int
report_due(const struct conf *c, struct envelope *env, int64_t now,
    struct report *r)
{
	memset(r, 0, sizeof(*r));
	due_failed(env, r);
	if (r->nrcpts > 0)
		return 1;
	/* only failures are ever reported about a bounce */
	if (env->sender[0] == '\0')
		return 0;
	due_success(env, r);
	if (r->nrcpts > 0)
		return 1;
	due_delayed(c, env, now, r);
	return r->nrcpts > 0;
}

void
report_mark(struct envelope *env, const struct report *r)
{
	size_t i;

	for (i = 0; i < r->nrcpts; i++) {
		struct env_rcpt *rc = &env->rcpts[r->rcpts[i]];

		if (r->kind == BOUNCE_DELAYED)
			rc->warned = 1;
		else
			rc->notified = 1;
	}
}

void
report_free(struct report *r)
{
	free(r->rcpts);
	r->rcpts = NULL;
	r->nrcpts = 0;
}

/* read_original - the message to return: all of it up to max, else (or
 * when *headers_only) its header section; *headers_only tells which */
static int
read_original(const char *path, uint64_t size, int *headers_only,
    struct buf *out)
{
	char chunk[65536], *end;
	size_t limit;
	ssize_t n = 0;
	int fd;

	if (size > REPORT_FULL_MAX)
		*headers_only = 1;
	limit = *headers_only ? REPORT_HEADERS_MAX : REPORT_FULL_MAX;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	while (out->len < limit) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_append(out, chunk, (size_t)n);
		if (*headers_only && strstr(out->data, "\r\n\r\n") != NULL)
			break;
	}
	close(fd);
	if (n == -1)
		return -1;
	if (*headers_only) {
		end = strstr(out->data, "\r\n\r\n");
		if (end != NULL)
			out->len = (size_t)(end - out->data) + 2;
		if (out->len > limit)
			out->len = limit;
		out->data[out->len] = '\0';
	}
	return 0;
}

int
report_queue(const struct conf *c, const struct envelope *env,
    const char *content_path, const struct report *r, report_queue_cb cb,
    void *arg)
{
	struct bounce_req req;
	struct envelope renv;
	struct spool_tx *tx;
	struct buf orig, text;
	char to_hdr[300];
	int headers_only = r->kind != BOUNCE_FAILED || env->ret == DSN_RET_HDRS;
	int rc = -1;

	buf_init(&orig);
	buf_init(&text);
	if (read_original(content_path, env->size, &headers_only,
	    &orig) == -1) {
		log_err("%s: cannot read the message for its report: %s",
		    env->id, strerror(errno));
		goto out;
	}
	tx = spool_tx_begin();
	if (tx == NULL) {
		log_err("%s: cannot queue a report: %s", env->id,
		    strerror(errno));
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.hostname = c->hostname;
	req.boundary_seed = spool_tx_id(tx);
	req.now = util_now_ms() / 1000;
	req.env = env;
	req.rcpts = r->rcpts;
	req.nrcpts = r->nrcpts;
	req.kind = r->kind;
	req.content = orig.data;
	req.content_len = orig.len;
	req.headers_only = headers_only;
	req.retry_until = env->arrival + c->retry_lifetime_ms / 1000;
	/* the envelope may say the bare postmaster (always local, RFC 5321
	 * 4.5.1); a header field needs a domain */
	if (strchr(r->to, '@') == NULL) {
		snprintf(to_hdr, sizeof(to_hdr), "%s@%s", r->to, c->hostname);
		req.to = to_hdr;
	} else {
		req.to = r->to;
	}
	bounce_build(&req, &text);
	if (spool_tx_write(tx, text.data, text.len) == -1) {
		log_err("%s: cannot write a report: %s", env->id,
		    strerror(errno));
		spool_tx_abort(tx);
		goto out;
	}
	envelope_init(&renv);
	renv.arrival = req.now;
	envelope_set(&renv.sender, "");
	envelope_set(&renv.helo, c->hostname);
	envelope_set(&renv.client_addr, "127.0.0.1");
	envelope_set(&renv.client_name, "localhost");
	envelope_set(&renv.protocol, "local");
	envelope_add_rcpt(&renv, r->to);
	/* an 8-bit original travels inside the report as it is */
	renv.body_8bit = util_has_8bit(text.data, text.len);
	renv.smtputf8 = env->smtputf8;
	log_info("%s: %s report %s for %zu recipient(s) to <%s>", env->id,
	    r->kind == BOUNCE_FAILED ? "failure" :
	    r->kind == BOUNCE_DELAYED ? "delay" : "success",
	    spool_tx_id(tx), r->nrcpts, r->to);
	spool_tx_commit(tx, &renv, cb, arg);
	envelope_free(&renv);
	rc = 0;
out:
	buf_free(&orig);
	buf_free(&text);
	return rc;
}

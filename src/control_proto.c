/*
 * control_proto.c - the control socket's protocol (see control_proto.h):
 * strict request parsing through one verb table, and the answers' text
 * and JSON forms.  Pure: no I/O.  fuzz/fuzz_control.c drives
 * control_parse and control_parse_status.
 */
#include "control_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* what a verb takes after it */
enum ctl_arg {
	ARG_NONE,      /* nothing */
	ARG_JSON,      /* nothing or the word "json" */
	ARG_QID,       /* a queue id */
	ARG_FLUSH      /* nothing, a queue id or @domain */
};

static const struct {
	const char *name;
	enum control_verb verb;
	enum ctl_arg arg;
} verbs[] = {
	{ "list", CTL_LIST, ARG_JSON },
	{ "show", CTL_SHOW, ARG_QID },
	{ "flush", CTL_FLUSH, ARG_FLUSH },
	{ "hold", CTL_HOLD, ARG_QID },
	{ "release", CTL_RELEASE, ARG_QID },
	{ "delete", CTL_DELETE, ARG_QID },
	{ "bounce", CTL_BOUNCE, ARG_QID },
	{ "status", CTL_STATUS, ARG_JSON },
};
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char *const err_names[] = {
	[CTL_OK] = "ok",
	[CTL_E_USAGE] = "usage",
	[CTL_E_NOTFOUND] = "notfound",
	[CTL_E_BUSY] = "busy",
	[CTL_E_DENIED] = "denied",
	[CTL_E_FAILED] = "failed",
	[CTL_E_STATE] = "state",
};
#define NERRS (sizeof(err_names) / sizeof(err_names[0]))

static const char *const msg_state_names[] = {
	[CTL_MSG_PENDING] = "pending",
	[CTL_MSG_ACTIVE] = "active",
	[CTL_MSG_DEFERRED] = "deferred",
	[CTL_MSG_HELD] = "held",
	[CTL_MSG_DONE] = "done",
};

const char *
control_verb_name(enum control_verb v)
{
	size_t i;

	for (i = 0; i < NVERBS; i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "?";
}

const char *
control_err_name(enum control_err e)
{
	return (unsigned)e < NERRS ? err_names[e] : "failed";
}

const char *
control_msg_state_name(enum control_msg_state s)
{
	return msg_state_names[s];
}

/* domain_ok - letters, digits, '-' and '.', not empty, no empty label,
 * at most CONTROL_DOMAIN_MAX: a name, never a pattern */
static int
domain_ok(const char *s, size_t len)
{
	size_t i, label = 0;
	char c;

	if (len == 0 || len > CONTROL_DOMAIN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* parse_arg - the argument of a verb by its rule; -1 with err */
static int
parse_arg(enum ctl_arg rule, const char *name, const char *a, size_t alen,
    int has, struct control_req *req, char *err, size_t errlen)
{
	size_t i;

	switch (rule) {
	case ARG_NONE:
		if (!has)
			return 0;
		break;
	case ARG_JSON:
		if (!has)
			return 0;
		if (alen == 4 && memcmp(a, "json", 4) == 0) {
			req->json = 1;
			return 0;
		}
		snprintf(err, errlen, "%s takes nothing or \"json\".", name);
		return -1;
	case ARG_QID:
		if (has && envelope_qid_ok(a, alen)) {
			memcpy(req->qid, a, alen);
			req->qid[alen] = '\0';
			return 0;
		}
		snprintf(err, errlen, "%s needs a queue id (14 characters, "
		    "0-9 and A-Z).", name);
		return -1;
	case ARG_FLUSH:
		if (!has)
			return 0;
		if (envelope_qid_ok(a, alen)) {
			memcpy(req->qid, a, alen);
			req->qid[alen] = '\0';
			return 0;
		}
		if (a[0] == '@' && domain_ok(a + 1, alen - 1)) {
			for (i = 1; i < alen; i++)
				req->domain[i - 1] = (a[i] >= 'A' &&
				    a[i] <= 'Z') ? (char)(a[i] + 32) : a[i];
			req->domain[alen - 1] = '\0';
			return 0;
		}
		snprintf(err, errlen, "flush takes nothing, a queue id or "
		    "@domain.");
		return -1;
	}
	snprintf(err, errlen, "%s takes no argument.", name);
	return -1;
}

int
control_parse(const char *line, size_t len, struct control_req *req,
    char *err, size_t errlen)
{
	const char *sp, *a = NULL;
	size_t i, vlen, alen = 0;

	memset(req, 0, sizeof(*req));
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len + 1 > CONTROL_LINE_MAX) {
		snprintf(err, errlen, "The request is too long.");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x21 && line[i] != ' ') {
			snprintf(err, errlen, "The request holds a control "
			    "character.");
			return -1;
		}
		if ((unsigned char)line[i] > 0x7e) {
			snprintf(err, errlen, "The request is not printable "
			    "ASCII.");
			return -1;
		}
	}
	sp = memchr(line, ' ', len);
	vlen = sp ? (size_t)(sp - line) : len;
	if (sp != NULL) {
		a = sp + 1;
		alen = len - vlen - 1;
		if (alen == 0 || memchr(a, ' ', alen) != NULL) {
			snprintf(err, errlen, "Words are separated by one "
			    "space and a request has at most two.");
			return -1;
		}
	}
	for (i = 0; i < NVERBS; i++) {
		if (strlen(verbs[i].name) != vlen ||
		    memcmp(verbs[i].name, line, vlen) != 0)
			continue;
		req->verb = verbs[i].verb;
		return parse_arg(verbs[i].arg, verbs[i].name, a, alen,
		    a != NULL, req, err, errlen);
	}
	snprintf(err, errlen, "Unknown request: the verbs are list, show, "
	    "flush, hold, release, delete, bounce and status.");
	return -1;
}

int
control_parse_status(const char *line, enum control_err *err,
    const char **text)
{
	size_t i, n;

	*text = "";
	if (strcmp(line, "ok") == 0) {
		*err = CTL_OK;
		return 0;
	}
	if (strncmp(line, "error ", 6) != 0)
		return -1;
	line += 6;
	for (i = 1; i < NERRS; i++) {
		n = strlen(err_names[i]);
		if (strncmp(line, err_names[i], n) == 0 && line[n] == ' ') {
			*err = (enum control_err)i;
			*text = line + n + 1;
			return 0;
		}
	}
	return -1;
}

void
control_put_line(struct buf *out, const char *s, size_t len)
{
	if (len > 0 && s[0] == '.')
		buf_putc(out, '.');
	buf_append(out, s, len);
	buf_putc(out, '\n');
}

void
control_put_end(struct buf *out)
{
	buf_puts(out, ".\n");
}

void
control_json_str(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL) {
		buf_puts(out, "null");
		return;
	}
	buf_putc(out, '"');
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_printf(out, "\\u%04x", *p);
		} else {
			buf_putc(out, *p);
		}
	}
	buf_putc(out, '"');
}

void
control_iso_time(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "-");
}

/* rcpt_waiting - the recipient still waits for delivery */
static int
rcpt_waiting(const struct env_rcpt *r)
{
	return r->state == RCPT_PENDING || r->state == RCPT_DEFERRED;
}

/* next_try - the earliest next try of a waiting recipient; -1: none */
static int64_t
next_try(const struct envelope *e)
{
	int64_t t = -1;
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (rcpt_waiting(&e->rcpts[i]) &&
		    (t == -1 || e->rcpts[i].next_try < t))
			t = e->rcpts[i].next_try;
	return t;
}

enum control_msg_state
control_msg_state_of(const struct envelope *e, int active, int64_t now)
{
	int64_t t = next_try(e);

	if (e->hold)
		return CTL_MSG_HELD;
	if (active)
		return CTL_MSG_ACTIVE;
	if (t == -1)
		return CTL_MSG_DONE;
	return t <= now ? CTL_MSG_PENDING : CTL_MSG_DEFERRED;
}

/* last_error - the last error of the first waiting recipient that has
 * one, else of any recipient; NULL: none */
static const char *
last_error(const struct envelope *e)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (rcpt_waiting(&e->rcpts[i]) && e->rcpts[i].last_error)
			return e->rcpts[i].last_error;
	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].last_error)
			return e->rcpts[i].last_error;
	return NULL;
}

/* put_text - s sanitised (control characters become '?'); with word,
 * spaces too, so it stays one word of a text line (the JSON form has the
 * exact value) */
static void
put_text(struct buf *out, const char *s, int word)
{
	size_t start = out->len, len = strlen(s), i;

	buf_reserve(out, len + 1);
	out->len += util_sanitise(out->data + out->len, len, s, len);
	for (i = start; word && i < out->len; i++)
		if (out->data[i] == ' ')
			out->data[i] = '?';
}

/* format_text - "ID ARRIVAL SIZE <SENDER> STATE NEXT RCPT=STATE,...
 * ERROR" */
static void
format_text(struct buf *out, const struct envelope *e, int active,
    int64_t now)
{
	char when[32];
	int64_t t = next_try(e);
	const char *err = last_error(e);
	size_t i;

	control_iso_time(e->arrival, when, sizeof(when));
	buf_printf(out, "%s %s %" PRIu64 " <", e->id, when, e->size);
	put_text(out, e->sender ? e->sender : "", 1);
	buf_printf(out, "> %s ", control_msg_state_name(
	    control_msg_state_of(e, active, now)));
	if (t == -1 || e->hold)
		snprintf(when, sizeof(when), "-");
	else if (t <= now)
		snprintf(when, sizeof(when), "now");
	else
		control_iso_time(t, when, sizeof(when));
	buf_printf(out, "%s ", when);
	for (i = 0; i < e->nrcpts; i++) {
		if (i > 0)
			buf_putc(out, ',');
		put_text(out, e->rcpts[i].addr, 1);
		buf_printf(out, "=%s",
		    envelope_state_name(e->rcpts[i].state));
	}
	buf_putc(out, ' ');
	put_text(out, err ? err : "-", 0);
}

/* json_time - unix seconds, or null for -1 */
static void
json_time(struct buf *out, int64_t t)
{
	if (t < 0)
		buf_puts(out, "null");
	else
		buf_printf(out, "%" PRId64, t);
}

/* format_json - the object of one message (schema in tern(8)) */
static void
format_json(struct buf *out, const struct envelope *e, int active,
    int64_t now)
{
	const struct env_rcpt *r;
	size_t i;

	buf_puts(out, "{\"id\":");
	control_json_str(out, e->id);
	buf_printf(out, ",\"arrival\":%" PRId64 ",\"size\":%" PRIu64
	    ",\"sender\":", e->arrival, e->size);
	control_json_str(out, e->sender ? e->sender : "");
	buf_puts(out, ",\"state\":");
	control_json_str(out, control_msg_state_name(
	    control_msg_state_of(e, active, now)));
	buf_printf(out, ",\"held\":%s,\"next_try\":",
	    e->hold ? "true" : "false");
	json_time(out, e->hold ? -1 : next_try(e));
	buf_puts(out, ",\"recipients\":[");
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		buf_puts(out, i > 0 ? ",{\"address\":" : "{\"address\":");
		control_json_str(out, r->addr);
		buf_puts(out, ",\"state\":");
		control_json_str(out, envelope_state_name(r->state));
		buf_printf(out, ",\"tries\":%u,\"next_try\":", r->tries);
		json_time(out, rcpt_waiting(r) ? r->next_try : -1);
		buf_puts(out, ",\"status\":");
		control_json_str(out, r->status);
		buf_puts(out, ",\"last_error\":");
		control_json_str(out, r->last_error);
		buf_putc(out, '}');
	}
	buf_puts(out, "]}");
}

void
control_format_msg(struct buf *out, const struct envelope *e, int active,
    int json, int64_t now)
{
	if (json)
		format_json(out, e, active, now);
	else
		format_text(out, e, active, now);
}

/*
 * envelope.c - the envelope of one queued message and its file form.
 *
 * The file form is plain text, one "key value" per line, LF-terminated, so
 * an administrator can read it with cat:
 *
 *	version 1
 *	id 1KQ3G5HVM2A0B7
 *	arrival 1700000000
 *	sender alice@example.org	(the line is just "sender" for <>)
 *	helo mail.example.org
 *	client-addr 198.51.100.1
 *	client-name mail.example.org
 *	protocol ESMTPS
 *	auth-user alice			(only when authenticated)
 *	uid 1000			(only for mail from the local drop:
 *					 the submitter's real uid)
 *	envid QQ314159			(DSN ENVID= as received, xtext;
 *					 only when given)
 *	ret hdrs			(DSN RET=: full or hdrs; only when
 *					 given)
 *	body 7bit			(or 8bitmime)
 *	smtputf8 0
 *	size 1234
 *	hold 1				(held by the administrator: no
 *					 delivery until released; only when
 *					 held)
 *	rcpt bob@example.net		(one block per recipient)
 *	state deferred			(pending, deferred, delivered, failed)
 *	next-try 1700000300
 *	tries 1
 *	error 451 4.3.0 try later	(only when there was one)
 *	status 4.3.0			(the optional keys below: only when
 *					 set)
 *	remote mx.example.net[198.51.100.7]
 *	orcpt rfc822;bob@example.net	(DSN ORCPT= as received, xtext)
 *	notify success,failure		(DSN NOTIFY=: "never", or a list of
 *					 success, failure, delay)
 *	warned 1			(a delay warning went out)
 *	notified 1			(the final DSN went out)
 *	target pipe:/usr/bin/foo -x	(a recipient made by an alias or a
 *					 .forward: deliver this way; also
 *					 file:/PATH, mailbox (the user's own
 *					 mailbox, no .forward))
 *	alias staff			(the alias that made it)
 *	owner pea			(the user whose .forward made it)
 *	end
 *
 * A value is the rest of the line after the first space, so it may hold
 * spaces (quoted local parts: "john smith"@example.org).  A line cannot hold
 * CR, LF, NUL, any other control character or DEL, and must be UTF-8:
 * envelope_format replaces such bytes with '?' (util_sanitise), so what is
 * written can always be read back, and envelope_parse refuses them.  The
 * parser is strict - unknown or duplicate keys, missing keys, an unknown
 * version, numbers out of range, anything after "end" - because a file we do
 * not fully understand is quarantined, never half-used.  The final "end"
 * line makes a truncated file detectably corrupt.  The DSN keys (RFC 3461),
 * hold, and the recipient's status, remote, warned and notified came later and
 * are optional, written only when set, so files written before them are
 * still read as version 1.  Pure: no I/O.
 */
#include "envelope.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one bit per key, to find missing and duplicate keys */
enum env_key_id {
	K_VERSION,
	K_ID,
	K_ARRIVAL,
	K_SENDER,
	K_HELO,
	K_CLIENT_ADDR,
	K_CLIENT_NAME,
	K_PROTOCOL,
	K_AUTH_USER,
	K_UID,
	K_ENVID,
	K_RET,
	K_BODY,
	K_SMTPUTF8,
	K_SIZE,
	K_HOLD,
	K_RCPT,
	K_STATE,
	K_NEXT_TRY,
	K_TRIES,
	K_ERROR,
	K_STATUS,
	K_REMOTE,
	K_ORCPT,
	K_NOTIFY,
	K_WARNED,
	K_NOTIFIED,
	K_TARGET,
	K_ALIAS,
	K_OWNER,
	K_END
};

#define KBIT(k) (1u << (k))
/* keys that must appear once before the recipients */
#define HEAD_REQUIRED                                                         \
	(KBIT(K_VERSION) | KBIT(K_ID) | KBIT(K_ARRIVAL) | KBIT(K_SENDER) |    \
	    KBIT(K_HELO) | KBIT(K_CLIENT_ADDR) | KBIT(K_CLIENT_NAME) |        \
	    KBIT(K_PROTOCOL) | KBIT(K_BODY) | KBIT(K_SMTPUTF8) | KBIT(K_SIZE))
/* keys that must appear once in every recipient block */
#define RCPT_REQUIRED                                                         \
	(KBIT(K_RCPT) | KBIT(K_STATE) | KBIT(K_NEXT_TRY) | KBIT(K_TRIES))

static const struct {
	const char *name;
	enum env_key_id id;
} env_keys[] = {
	{ "version", K_VERSION },
	{ "id", K_ID },
	{ "arrival", K_ARRIVAL },
	{ "sender", K_SENDER },
	{ "helo", K_HELO },
	{ "client-addr", K_CLIENT_ADDR },
	{ "client-name", K_CLIENT_NAME },
	{ "protocol", K_PROTOCOL },
	{ "auth-user", K_AUTH_USER },
	{ "uid", K_UID },
	{ "envid", K_ENVID },
	{ "ret", K_RET },
	{ "body", K_BODY },
	{ "smtputf8", K_SMTPUTF8 },
	{ "size", K_SIZE },
	{ "hold", K_HOLD },
	{ "rcpt", K_RCPT },
	{ "state", K_STATE },
	{ "next-try", K_NEXT_TRY },
	{ "tries", K_TRIES },
	{ "error", K_ERROR },
	{ "status", K_STATUS },
	{ "remote", K_REMOTE },
	{ "orcpt", K_ORCPT },
	{ "notify", K_NOTIFY },
	{ "warned", K_WARNED },
	{ "notified", K_NOTIFIED },
	{ "target", K_TARGET },
	{ "alias", K_ALIAS },
	{ "owner", K_OWNER },
	{ "end", K_END },
};

static const char *state_names[] = {
	[RCPT_PENDING] = "pending",
	[RCPT_DEFERRED] = "deferred",
	[RCPT_DELIVERED] = "delivered",
	[RCPT_FAILED] = "failed",
};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

/* the words of "notify", in the order they are written */
static const struct {
	const char *name;
	unsigned bit;
} notify_words[] = {
	{ "never", DSN_NOTIFY_NEVER },
	{ "success", DSN_NOTIFY_SUCCESS },
	{ "failure", DSN_NOTIFY_FAILURE },
	{ "delay", DSN_NOTIFY_DELAY },
};
#define NNOTIFY (sizeof(notify_words) / sizeof(notify_words[0]))
#define NOTIFY_ALL                                                            \
	(DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |         \
	    DSN_NOTIFY_DELAY)

/* envelope_init - an empty envelope of the current version */
void
envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
	e->version = ENVELOPE_VERSION;
	e->uid = -1;
}

/* envelope_free - release everything the envelope owns; e is empty after */
void
envelope_free(struct envelope *e)
{
	size_t i;

	free(e->sender);
	free(e->helo);
	free(e->client_addr);
	free(e->client_name);
	free(e->protocol);
	free(e->auth_user);
	free(e->envid);
	for (i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].last_error);
		free(e->rcpts[i].status);
		free(e->rcpts[i].remote);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].target);
		free(e->rcpts[i].alias);
		free(e->rcpts[i].owner);
	}
	free(e->rcpts);
	envelope_init(e);
}

/* envelope_set - replace *field with a copy of value (NULL allowed) */
void
envelope_set(char **field, const char *value)
{
	char *copy = value ? xstrdup(value) : NULL;

	free(*field);
	*field = copy;
}

/* ascii_casecmp - strcasecmp that ignores the locale (ASCII only) */
static int
ascii_casecmp(const char *a, const char *b)
{
	unsigned char ca, cb;

	do {
		ca = (unsigned char)*a++;
		cb = (unsigned char)*b++;
		if (ca >= 'A' && ca <= 'Z')
			ca = (unsigned char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (unsigned char)(cb - 'A' + 'a');
	} while (ca == cb && ca != '\0');
	return ca - cb;
}

/* rcpt_append - a new zeroed recipient at the end of e->rcpts */
static struct env_rcpt *
rcpt_append(struct envelope *e)
{
	struct env_rcpt *r;

	if (e->nrcpts == e->rcpt_cap) {
		e->rcpt_cap = e->rcpt_cap ? e->rcpt_cap * 2 : 4;
		e->rcpts = xreallocarray(e->rcpts, e->rcpt_cap,
		    sizeof(*e->rcpts));
	}
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->state = RCPT_PENDING;
	return r;
}

/* envelope_add_rcpt - append a pending recipient unless already there */
int
envelope_add_rcpt(struct envelope *e, const char *addr)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (ascii_casecmp(e->rcpts[i].addr, addr) == 0)
			return 0;
	rcpt_append(e)->addr = xstrdup(addr);
	return 1;
}

/* str_eq_null - 1 when both are NULL or equal */
static int
str_eq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* envelope_add_expanded - append a recipient made by expanding parent */
int
envelope_add_expanded(struct envelope *e, size_t parent, const char *addr,
    const char *target, const char *alias, const char *owner)
{
	struct env_rcpt *r;
	char *orcpt;
	unsigned notify;
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (ascii_casecmp(e->rcpts[i].addr, addr) == 0 &&
		    str_eq_null(e->rcpts[i].target, target))
			return 0;
	orcpt = e->rcpts[parent].orcpt;
	notify = e->rcpts[parent].notify;
	r = rcpt_append(e); /* may move e->rcpts */
	r->addr = xstrdup(addr);
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
	r->notify = notify;
	r->target = target ? xstrdup(target) : NULL;
	r->alias = alias ? xstrdup(alias) : NULL;
	r->owner = owner ? xstrdup(owner) : NULL;
	return 1;
}

/* envelope_done - 1 when no recipient is pending or deferred */
int
envelope_done(const struct envelope *e)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state == RCPT_PENDING ||
		    e->rcpts[i].state == RCPT_DEFERRED)
			return 0;
	return 1;
}

/* envelope_state_name - the file form of a state; "?" if out of range */
const char *
envelope_state_name(enum rcpt_state s)
{
	if ((unsigned)s >= NSTATES)
		return "?";
	return state_names[s];
}

/* put_value - "key value\n"; "key\n" for an empty or NULL value */
static void
put_value(struct buf *out, const char *key, const char *val, size_t len)
{
	buf_puts(out, key);
	if (val != NULL && len > 0) {
		buf_putc(out, ' ');
		/*
		 * util_sanitise never makes text longer, and with
		 * maxlen == len it never cuts it: bad bytes become '?'.
		 */
		buf_reserve(out, len);
		out->len += util_sanitise(out->data + out->len, len, val, len);
	}
	buf_putc(out, '\n');
}

/* put_str - put_value for a C string */
static void
put_str(struct buf *out, const char *key, const char *val)
{
	put_value(out, key, val, val ? strlen(val) : 0);
}

/* put_num - "key N\n"; negative times are written as 0 ("now", "unknown") */
static void
put_num(struct buf *out, const char *key, int64_t v)
{
	buf_printf(out, "%s %" PRId64 "\n", key, v < 0 ? 0 : v);
}

/*
 * format_notify - "notify never" or "notify success,failure,delay" (the
 * bits set, in that order); nothing when no bit is set.  NEVER excludes
 * the others (RFC 3461 4.1): should a caller combine them, NEVER wins, the
 * choice that sends no unwanted mail.
 */
static void
format_notify(unsigned bits, struct buf *out)
{
	const char *sep = " ";
	size_t i;

	bits &= NOTIFY_ALL;
	if (bits == 0)
		return;
	if (bits & DSN_NOTIFY_NEVER)
		bits = DSN_NOTIFY_NEVER;
	buf_puts(out, "notify");
	for (i = 0; i < NNOTIFY; i++) {
		if (!(bits & notify_words[i].bit))
			continue;
		buf_printf(out, "%s%s", sep, notify_words[i].name);
		sep = ",";
	}
	buf_putc(out, '\n');
}

/* format_rcpt - one recipient block */
static void
format_rcpt(const struct env_rcpt *r, struct buf *out)
{
	if (r->addr == NULL)
		panic("envelope_format: recipient without address");
	if ((unsigned)r->state >= NSTATES)
		panic("envelope_format: bad recipient state %d", (int)r->state);
	put_str(out, "rcpt", r->addr);
	buf_printf(out, "state %s\n", state_names[r->state]);
	put_num(out, "next-try", r->next_try);
	buf_printf(out, "tries %u\n", r->tries);
	if (r->last_error != NULL)
		put_str(out, "error", r->last_error);
	if (r->status != NULL)
		put_str(out, "status", r->status);
	if (r->remote != NULL)
		put_str(out, "remote", r->remote);
	if (r->orcpt != NULL)
		put_str(out, "orcpt", r->orcpt);
	format_notify(r->notify, out);
	if (r->warned)
		buf_puts(out, "warned 1\n");
	if (r->notified)
		buf_puts(out, "notified 1\n");
	if (r->target != NULL)
		put_str(out, "target", r->target);
	if (r->alias != NULL)
		put_str(out, "alias", r->alias);
	if (r->owner != NULL)
		put_str(out, "owner", r->owner);
}

/*
 * envelope_format - the file form, appended to out.  Bad bytes in values
 * become '?'; a recipient without address or with a bad state is a bug.
 */
void
envelope_format(const struct envelope *e, struct buf *out)
{
	size_t i;

	buf_printf(out, "version %d\n", ENVELOPE_VERSION);
	put_value(out, "id", e->id, strnlen(e->id, sizeof(e->id)));
	put_num(out, "arrival", e->arrival);
	put_str(out, "sender", e->sender);
	put_str(out, "helo", e->helo);
	put_str(out, "client-addr", e->client_addr);
	put_str(out, "client-name", e->client_name);
	put_str(out, "protocol", e->protocol);
	if (e->auth_user != NULL)
		put_str(out, "auth-user", e->auth_user);
	if (e->uid >= 0)
		put_num(out, "uid", e->uid);
	if (e->envid != NULL)
		put_str(out, "envid", e->envid);
	if (e->ret == DSN_RET_FULL || e->ret == DSN_RET_HDRS)
		buf_printf(out, "ret %s\n",
		    e->ret == DSN_RET_FULL ? "full" : "hdrs");
	buf_printf(out, "body %s\n", e->body_8bit ? "8bitmime" : "7bit");
	buf_printf(out, "smtputf8 %d\n", e->smtputf8 ? 1 : 0);
	buf_printf(out, "size %" PRIu64 "\n", e->size);
	if (e->hold)
		buf_puts(out, "hold 1\n");
	for (i = 0; i < e->nrcpts; i++)
		format_rcpt(&e->rcpts[i], out);
	buf_puts(out, "end\n");
}

/* parsing */

struct env_parser {
	struct envelope *e;
	struct env_rcpt *rcpt; /* the recipient block being read */
	unsigned seen;         /* KBIT()s of the header keys seen */
	unsigned rseen;        /* KBIT()s seen in the current block */
	size_t lineno;
	char *err;
	size_t errlen;
};

/* perr - "line N: reason" into the caller's err; returns -1 */
TERN_PRINTF(2, 3)
static int
perr(struct env_parser *p, const char *fmt, ...)
{
	char reason[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (p->errlen > 0 && p->lineno > 0)
		snprintf(p->err, p->errlen, "line %zu: %s", p->lineno, reason);
	else if (p->errlen > 0)
		snprintf(p->err, p->errlen, "%s", reason);
	return -1;
}

/* key_name - the name of a key id, for messages */
static const char *
key_name(enum env_key_id k)
{
	size_t i;

	for (i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++)
		if (env_keys[i].id == k)
			return env_keys[i].name;
	return "?";
}

/* key_find - the id of the key s[0..len), or -1 */
static int
key_find(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++)
		if (strlen(env_keys[i].name) == len &&
		    memcmp(env_keys[i].name, s, len) == 0)
			return (int)env_keys[i].id;
	return -1;
}

/* missing_key - the first key of want not in have, or -1 */
static int
missing_key(unsigned want, unsigned have)
{
	int k;

	for (k = 0; k <= K_END; k++)
		if ((want & KBIT(k)) && !(have & KBIT(k)))
			return k;
	return -1;
}

/*
 * parse_u64 - decimal digits, no sign, no leading zero, at most max.
 * Returns 0, or -1 with the reason in p.
 */
static int
parse_u64(struct env_parser *p, const char *s, size_t len, uint64_t max,
    uint64_t *out)
{
	uint64_t v = 0, d;
	size_t i;

	if (len == 0)
		return perr(p, "empty number");
	if (len > 1 && s[0] == '0')
		return perr(p, "number with a leading zero");
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return perr(p, "not a number");
		d = (uint64_t)(s[i] - '0');
		if (v > (max - d) / 10)
			return perr(p, "number out of range");
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* check_line - no control characters, well-formed UTF-8 */
static int
check_line(struct env_parser *p, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return perr(p, "control character 0x%02x", c);
	}
	if (!util_utf8_valid((const unsigned char *)s, len))
		return perr(p, "not UTF-8");
	return 0;
}

int
envelope_qid_ok(const char *s, size_t len)
{
	size_t i;

	if (len != QID_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

/* bad_version - a version this code does not know */
static int
bad_version(struct env_parser *p, const char *v, size_t len)
{
	char safe[17];

	util_sanitise(safe, sizeof(safe) - 1, v, len);
	return perr(p, "unknown version '%s'", safe);
}

/* parse_flag - "0" or "1" */
static int
parse_flag(struct env_parser *p, const char *v, size_t len, const char *key)
{
	if (len != 1 || (v[0] != '0' && v[0] != '1'))
		return perr(p, "%s must be 0 or 1", key);
	return 0;
}

/* head_string - the header field a string key fills, or NULL */
static char **
head_string(struct envelope *e, enum env_key_id k)
{
	switch (k) {
	case K_SENDER:
		return &e->sender;
	case K_HELO:
		return &e->helo;
	case K_CLIENT_ADDR:
		return &e->client_addr;
	case K_CLIENT_NAME:
		return &e->client_name;
	case K_PROTOCOL:
		return &e->protocol;
	case K_AUTH_USER:
		return &e->auth_user;
	case K_ENVID:
		return &e->envid;
	default:
		return NULL;
	}
}

/* set_head - store the value of a header key */
static int
set_head(struct env_parser *p, enum env_key_id k, const char *v, size_t len)
{
	struct envelope *e = p->e;
	char **field = head_string(e, k);
	uint64_t n;

	if (field != NULL) {
		*field = xstrndup(v, len);
		return 0;
	}
	switch (k) {
	case K_VERSION:
		if (parse_u64(p, v, len, UINT_MAX, &n) == -1 ||
		    n != ENVELOPE_VERSION)
			return bad_version(p, v, len);
		e->version = ENVELOPE_VERSION;
		return 0;
	case K_ID:
		if (!envelope_qid_ok(v, len))
			return perr(p, "bad queue id");
		memcpy(e->id, v, len);
		e->id[len] = '\0';
		return 0;
	case K_ARRIVAL:
		if (parse_u64(p, v, len, INT64_MAX, &n) == -1)
			return -1;
		e->arrival = (int64_t)n;
		return 0;
	case K_BODY:
		if (len == 4 && memcmp(v, "7bit", 4) == 0)
			e->body_8bit = 0;
		else if (len == 8 && memcmp(v, "8bitmime", 8) == 0)
			e->body_8bit = 1;
		else
			return perr(p, "body must be 7bit or 8bitmime");
		return 0;
	case K_UID:
		if (parse_u64(p, v, len, UINT32_MAX - 1, &n) == -1)
			return -1;
		e->uid = (int64_t)n;
		return 0;
	case K_SMTPUTF8:
		if (parse_flag(p, v, len, "smtputf8") == -1)
			return -1;
		e->smtputf8 = v[0] == '1';
		return 0;
	case K_RET:
		if (len == 4 && memcmp(v, "full", 4) == 0)
			e->ret = DSN_RET_FULL;
		else if (len == 4 && memcmp(v, "hdrs", 4) == 0)
			e->ret = DSN_RET_HDRS;
		else
			return perr(p, "ret must be full or hdrs");
		return 0;
	case K_HOLD:
		if (parse_flag(p, v, len, "hold") == -1)
			return -1;
		e->hold = v[0] == '1';
		return 0;
	default: /* K_SIZE: the only header key left */
		return parse_u64(p, v, len, UINT64_MAX, &e->size);
	}
}

/* parse_state - a recipient state name */
static int
parse_state(struct env_parser *p, const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < NSTATES; i++) {
		if (strlen(state_names[i]) == len &&
		    memcmp(state_names[i], v, len) == 0) {
			p->rcpt->state = (enum rcpt_state)i;
			return 0;
		}
	}
	return perr(p, "unknown recipient state");
}

/* notify_word - the bit of one word of "notify", or 0 */
static unsigned
notify_word(const char *w, size_t len)
{
	size_t i;

	for (i = 0; i < NNOTIFY; i++)
		if (strlen(notify_words[i].name) == len &&
		    memcmp(notify_words[i].name, w, len) == 0)
			return notify_words[i].bit;
	return 0;
}

/*
 * parse_notify - "never" alone, or a comma list of success, failure and
 * delay, each at most once, in any order
 */
static int
parse_notify(struct env_parser *p, const char *v, size_t len)
{
	unsigned bits = 0, bit;
	const char *comma;
	size_t n;

	for (;;) {
		comma = memchr(v, ',', len);
		n = comma ? (size_t)(comma - v) : len;
		bit = notify_word(v, n);
		if (bit == 0)
			return perr(p, "notify: unknown word");
		if (bits & bit)
			return perr(p, "notify: a word twice");
		bits |= bit;
		if (comma == NULL)
			break;
		v += n + 1;
		len -= n + 1;
	}
	if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
		return perr(p, "notify: never with other words");
	p->rcpt->notify = bits;
	return 0;
}

/* rcpt_string - the recipient field a string key fills, or NULL */
static char **
rcpt_string(struct env_rcpt *r, enum env_key_id k)
{
	switch (k) {
	case K_ERROR:
		return &r->last_error;
	case K_STATUS:
		return &r->status;
	case K_REMOTE:
		return &r->remote;
	case K_ORCPT:
		return &r->orcpt;
	case K_TARGET:
		return &r->target;
	case K_ALIAS:
		return &r->alias;
	case K_OWNER:
		return &r->owner;
	default:
		return NULL;
	}
}

/* set_rcpt - store the value of a key of a recipient block */
static int
set_rcpt(struct env_parser *p, enum env_key_id k, const char *v, size_t len)
{
	struct env_rcpt *r = p->rcpt;
	char **field = rcpt_string(r, k);
	uint64_t n;

	if (field != NULL) {
		*field = xstrndup(v, len);
		return 0;
	}
	switch (k) {
	case K_STATE:
		return parse_state(p, v, len);
	case K_NEXT_TRY:
		if (parse_u64(p, v, len, INT64_MAX, &n) == -1)
			return -1;
		r->next_try = (int64_t)n;
		return 0;
	case K_TRIES:
		if (parse_u64(p, v, len, UINT_MAX, &n) == -1)
			return -1;
		r->tries = (unsigned)n;
		return 0;
	case K_NOTIFY:
		return parse_notify(p, v, len);
	case K_WARNED:
		if (parse_flag(p, v, len, "warned") == -1)
			return -1;
		r->warned = v[0] == '1';
		return 0;
	default: /* K_NOTIFIED: the only recipient key left */
		if (parse_flag(p, v, len, "notified") == -1)
			return -1;
		r->notified = v[0] == '1';
		return 0;
	}
}

/* end_block - check the recipient block being read is complete */
static int
end_block(struct env_parser *p)
{
	int k;

	if (p->rcpt == NULL)
		return 0;
	k = missing_key(RCPT_REQUIRED, p->rseen);
	if (k >= 0)
		return perr(p, "recipient %zu: missing key '%s'",
		    p->e->nrcpts, key_name((enum env_key_id)k));
	return 0;
}

/* start_rcpt - a "rcpt" line: close the block before, open a new one */
static int
start_rcpt(struct env_parser *p, const char *v, size_t len)
{
	int k = missing_key(HEAD_REQUIRED, p->seen);

	if (k >= 0)
		return perr(p, "missing key '%s'",
		    key_name((enum env_key_id)k));
	if (end_block(p) == -1)
		return -1;
	if (len == 0)
		return perr(p, "empty recipient address");
	p->rcpt = rcpt_append(p->e);
	p->rcpt->addr = xstrndup(v, len);
	p->rseen = KBIT(K_RCPT);
	return 0;
}

/* parse_end - the "end" line: everything must be complete */
static int
parse_end(struct env_parser *p, size_t vlen)
{
	if (vlen != 0)
		return perr(p, "text after end");
	if (p->rcpt == NULL) {
		int k = missing_key(HEAD_REQUIRED, p->seen);

		if (k >= 0)
			return perr(p, "missing key '%s'",
			    key_name((enum env_key_id)k));
		return perr(p, "no recipients");
	}
	return end_block(p);
}

/*
 * parse_kv - one "key value" line other than rcpt and end.  Header keys
 * come before the first recipient block, recipient keys inside one.
 */
static int
parse_kv(struct env_parser *p, enum env_key_id k, const char *v, size_t len)
{
	if (k >= K_STATE) {
		if (p->rcpt == NULL)
			return perr(p, "'%s' outside a recipient block",
			    key_name(k));
		if (p->rseen & KBIT(k))
			return perr(p, "duplicate key '%s'", key_name(k));
		p->rseen |= KBIT(k);
		return set_rcpt(p, k, v, len);
	}
	if (p->rcpt != NULL)
		return perr(p, "'%s' after the recipients", key_name(k));
	if (p->seen & KBIT(k))
		return perr(p, "duplicate key '%s'", key_name(k));
	p->seen |= KBIT(k);
	return set_head(p, k, v, len);
}

/*
 * parse_line - one line without its LF.  Returns 1 for "end", 0 for any
 * other good line, -1 on error.
 */
static int
parse_line(struct env_parser *p, const char *s, size_t len)
{
	const char *sp = memchr(s, ' ', len);
	size_t klen = sp ? (size_t)(sp - s) : len;
	const char *v = sp ? sp + 1 : s + len;
	size_t vlen = sp ? len - klen - 1 : 0;
	char safe[33];
	int k;

	if (check_line(p, s, len) == -1)
		return -1;
	k = key_find(s, klen);
	if (k < 0) {
		util_sanitise(safe, sizeof(safe) - 1, s, klen);
		return perr(p, "unknown key '%s'", safe);
	}
	if (p->lineno == 1 && k != K_VERSION)
		return perr(p, "first line is not 'version'");
	if (k == K_END)
		return parse_end(p, vlen) == -1 ? -1 : 1;
	if (k == K_RCPT)
		return start_rcpt(p, v, vlen);
	return parse_kv(p, (enum env_key_id)k, v, vlen);
}

/* parse_lines - every line of data up to and including "end" */
static int
parse_lines(struct env_parser *p, const char *data, size_t len)
{
	size_t pos = 0, n;
	const char *nl;
	int rc;

	while (pos < len) {
		p->lineno++;
		nl = memchr(data + pos, '\n', len - pos);
		if (nl == NULL)
			return perr(p, "truncated (no newline)");
		n = (size_t)(nl - (data + pos));
		rc = parse_line(p, data + pos, n);
		if (rc == -1)
			return -1;
		pos += n + 1;
		if (rc == 1)
			return pos == len ? 0 : perr(p, "data after end");
	}
	p->lineno++;
	return perr(p, "truncated (no end line)");
}

/*
 * envelope_parse - read the file form into e, which is overwritten (give
 * an empty or freed envelope).  On error e is left empty and err says why.
 */
int
envelope_parse(struct envelope *e, const char *data, size_t len, char *err,
    size_t errlen)
{
	struct env_parser p;

	envelope_init(e);
	memset(&p, 0, sizeof(p));
	p.e = e;
	p.err = err;
	p.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	if (len > ENVELOPE_FILE_MAX) {
		perr(&p, "file too large");
		return -1;
	}
	if (parse_lines(&p, data, len) == -1) {
		envelope_free(e);
		return -1;
	}
	return 0;
}

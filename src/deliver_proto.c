/*
 * deliver_proto.c - requests to the delivery process and its replies, as
 * text.  Pure: no I/O.
 *
 * The one idea: the reader is the more privileged side, so it accepts
 * exactly what the writer writes and nothing else - every key known, none
 * twice, every value free of control characters, numbers in range - and a
 * request that does not parse is refused whole.  Values are written
 * through util_sanitise, so whatever is written can be read back.
 */
#include "deliver_proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a value longer than this is refused (a command, a path, an address) */
#define PROTO_VALUE_MAX 4096

enum pkey {
	P_ID, P_QID, P_INDEX, P_SOURCE, P_METHOD, P_USER, P_VUSER, P_LOCAL,
	P_EXT, P_DOMAIN, P_RCPT, P_SENDER, P_ALIAS, P_CHECK_CUR, P_NO_FORWARD,
	P_NKEYS
};

static const char *const pkey_names[P_NKEYS] = {
	"id", "qid", "index", "source", "method", "user", "vuser", "local",
	"ext", "domain", "rcpt", "sender", "alias", "check-cur", "no-forward",
};

/* keys every request has */
#define P_REQUIRED ((1u << P_ID) | (1u << P_QID) | (1u << P_INDEX) | \
	(1u << P_SOURCE) | (1u << P_METHOD) | (1u << P_USER) |        \
	(1u << P_VUSER) | (1u << P_RCPT) | (1u << P_SENDER))

static const char *const source_names[] = { "mailbox", "alias", "forward" };

/* put - one "key value" line, the value sanitised */
static void
put(struct buf *out, const char *key, const char *value)
{
	char *v = util_sanitise_dup(value ? value : "", PROTO_VALUE_MAX);

	buf_printf(out, "%s %s\n", key, v);
	free(v);
}

/* deliver_request_format - the request as text */
void
deliver_request_format(const struct deliver_request *r, struct buf *out)
{
	buf_printf(out, "id %" PRIu64 "\n", r->id);
	put(out, "qid", r->qid);
	buf_printf(out, "index %zu\n", r->index);
	put(out, "source", source_names[r->source]);
	put(out, "method", r->method);
	put(out, "user", r->user);
	put(out, "vuser", r->vuser);
	put(out, "local", r->local);
	put(out, "ext", r->ext);
	put(out, "domain", r->domain);
	put(out, "rcpt", r->rcpt);
	put(out, "sender", r->sender);
	if (r->alias != NULL)
		put(out, "alias", r->alias);
	buf_printf(out, "check-cur %d\nno-forward %d\n", r->check_cur != 0,
	    r->no_forward != 0);
}

/* perr - a parse error into err; returns -1 */
static int TERN_PRINTF(3, 4)
perr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0 && errlen > 0)
		err[0] = '\0';
	va_end(ap);
	return -1;
}

/* parse_num - a decimal number up to max */
static int
parse_num(const char *v, uint64_t max, uint64_t *out)
{
	uint64_t n = 0, d;

	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		d = (uint64_t)(*v - '0');
		if (n > max / 10 || (n == max / 10 && d > max % 10))
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* value_ok - no control characters, not too long, UTF-8 */
static int
value_ok(const char *v, size_t len)
{
	size_t i;

	if (len > PROTO_VALUE_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return util_utf8_valid((const unsigned char *)v, len);
}

/*
 * next_line - the next "key value" line of data[*pos..len): key and value
 * NUL-terminated in a copy (*line, freed by the caller).  0 at the end,
 * 1 with a line, -1 on a malformed one.
 */
static int
next_line(const char *data, size_t len, size_t *pos, char **line,
    char **value)
{
	const char *s = data + *pos, *nl;
	char *sp;
	size_t n;

	if (*pos >= len)
		return 0;
	nl = memchr(s, '\n', len - *pos);
	if (nl == NULL)
		return -1;
	n = (size_t)(nl - s);
	*pos += n + 1;
	if (!value_ok(s, n))
		return -1;
	*line = xstrndup(s, n);
	sp = strchr(*line, ' ');
	if (sp == NULL) {
		free(*line);
		return -1;
	}
	*sp = '\0';
	*value = sp + 1;
	return 1;
}

/* req_field - the string field of key k, or NULL for the others */
static char **
req_field(struct deliver_request *r, enum pkey k)
{
	switch (k) {
	case P_QID: return &r->qid;
	case P_METHOD: return &r->method;
	case P_USER: return &r->user;
	case P_VUSER: return &r->vuser;
	case P_LOCAL: return &r->local;
	case P_EXT: return &r->ext;
	case P_DOMAIN: return &r->domain;
	case P_RCPT: return &r->rcpt;
	case P_SENDER: return &r->sender;
	case P_ALIAS: return &r->alias;
	default: return NULL;
	}
}

/* req_number - the numeric and named keys */
static int
req_number(struct deliver_request *r, enum pkey k, const char *v)
{
	uint64_t n;
	size_t i;

	if (k == P_SOURCE) {
		for (i = 0; i < 3; i++)
			if (strcmp(v, source_names[i]) == 0) {
				r->source = (enum deliver_source)i;
				return 0;
			}
		return -1;
	}
	if (parse_num(v, k == P_ID ? UINT64_MAX : SIZE_MAX, &n) == -1)
		return -1;
	if ((k == P_CHECK_CUR || k == P_NO_FORWARD) && n > 1)
		return -1;
	if (k == P_ID)
		r->id = n;
	else if (k == P_INDEX)
		r->index = (size_t)n;
	else if (k == P_CHECK_CUR)
		r->check_cur = (int)n;
	else
		r->no_forward = (int)n;
	return 0;
}

/* key_of - the key named name, or -1 */
static int
key_of(const char *name)
{
	int k;

	for (k = 0; k < P_NKEYS; k++)
		if (strcmp(pkey_names[k], name) == 0)
			return k;
	return -1;
}

/* req_line - one line of a request */
static int
req_line(struct deliver_request *r, const char *key, const char *v,
    unsigned *seen, char *err, size_t errlen)
{
	int k = key_of(key);
	char **field;

	if (k < 0)
		return perr(err, errlen, "unknown key");
	if (*seen & (1u << k))
		return perr(err, errlen, "key %s twice", pkey_names[k]);
	*seen |= 1u << k;
	field = req_field(r, (enum pkey)k);
	if (field != NULL) {
		*field = xstrdup(v);
		return 0;
	}
	if (req_number(r, (enum pkey)k, v) == -1)
		return perr(err, errlen, "bad value of %s", pkey_names[k]);
	return 0;
}

/* for_lines - fn(arg, key, value) for each line of data: 0, or -1 on a
 * malformed line or when fn says -1 */
static int
for_lines(const char *data, size_t len,
    int (*fn)(void *arg, const char *key, const char *v), void *arg)
{
	size_t pos = 0;
	char *line, *v;
	int rc;

	while ((rc = next_line(data, len, &pos, &line, &v)) == 1) {
		rc = fn(arg, line, v);
		free(line);
		if (rc == -1)
			return -1;
	}
	return rc;
}

struct req_parse {
	struct deliver_request *r;
	unsigned seen;
	char *err;
	size_t errlen;
};

static int
req_line_cb(void *arg, const char *key, const char *v)
{
	struct req_parse *rp = arg;

	return req_line(rp->r, key, v, &rp->seen, rp->err, rp->errlen);
}

/* deliver_request_parse - strict: known keys once each, all required */
int
deliver_request_parse(struct deliver_request *r, const char *data,
    size_t len, char *err, size_t errlen)
{
	struct req_parse rp = { r, 0, err, errlen };

	memset(r, 0, sizeof(*r));
	if (errlen > 0)
		err[0] = '\0';
	if (for_lines(data, len, req_line_cb, &rp) == -1)
		return err[0] ? -1 : perr(err, errlen, "malformed line");
	if ((rp.seen & P_REQUIRED) != P_REQUIRED)
		return perr(err, errlen, "a required key is missing");
	if (r->local == NULL)
		r->local = xstrdup("");
	if (r->ext == NULL)
		r->ext = xstrdup("");
	if (r->domain == NULL)
		r->domain = xstrdup("");
	return 0;
}

/* deliver_request_free - what a parsed request owns */
void
deliver_request_free(struct deliver_request *r)
{
	enum pkey k;
	char **f;

	for (k = 0; k < P_NKEYS; k++)
		if ((f = req_field(r, k)) != NULL)
			free(*f);
	memset(r, 0, sizeof(*r));
}

/* deliver_reply_format - the reply as text */
void
deliver_reply_format(const struct deliver_reply *r, struct buf *out)
{
	size_t i;

	buf_printf(out, "id %" PRIu64 "\nresult %d\n", r->id, r->result);
	put(out, "status", r->status);
	put(out, "reason", r->reason);
	for (i = 0; i < r->nforward; i++)
		put(out, "forward", r->forward[i]);
}

struct reply_parse {
	struct deliver_reply *r;
	unsigned seen;
};

/* reply_line - one line of a reply */
static int
reply_line(void *arg, const char *key, const char *v)
{
	struct reply_parse *rp = arg;
	struct deliver_reply *r = rp->r;
	unsigned *seen = &rp->seen;
	uint64_t n;

	if (strcmp(key, "forward") == 0) {
		if (r->nforward == DELIVER_FORWARD_MAX)
			return -1;
		r->forward = xreallocarray(r->forward, r->nforward + 1,
		    sizeof(*r->forward));
		r->forward[r->nforward++] = xstrdup(v);
		return 0;
	}
	if (strcmp(key, "id") == 0 && !(*seen & 1)) {
		*seen |= 1;
		return parse_num(v, UINT64_MAX, &r->id);
	}
	if (strcmp(key, "result") == 0 && !(*seen & 2)) {
		*seen |= 2;
		if (parse_num(v, DELIVER_FORWARDED, &n) == -1)
			return -1;
		r->result = (int)n;
		return 0;
	}
	if (strcmp(key, "status") == 0 && !(*seen & 4)) {
		*seen |= 4;
		return snprintf(r->status, sizeof(r->status), "%s", v) <
		    (int)sizeof(r->status) ? 0 : -1;
	}
	if (strcmp(key, "reason") == 0 && !(*seen & 8)) {
		*seen |= 8;
		return snprintf(r->reason, sizeof(r->reason), "%s", v) <
		    (int)sizeof(r->reason) ? 0 : -1;
	}
	return -1;
}

/* deliver_reply_parse - strict, as a request */
int
deliver_reply_parse(struct deliver_reply *r, const char *data, size_t len,
    char *err, size_t errlen)
{
	struct reply_parse rp = { r, 0 };

	memset(r, 0, sizeof(*r));
	if (for_lines(data, len, reply_line, &rp) == -1)
		return perr(err, errlen, "bad reply line");
	if (rp.seen != 15)
		return perr(err, errlen, "a reply key is missing");
	return 0;
}

/* deliver_reply_free - the forward targets of a parsed reply */
void
deliver_reply_free(struct deliver_reply *r)
{
	size_t i;

	for (i = 0; i < r->nforward; i++)
		free(r->forward[i]);
	free(r->forward);
	r->forward = NULL;
	r->nforward = 0;
}

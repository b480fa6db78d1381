/*
 * test_bounce.c - delivery status notifications (RFC 3464, RFC 6522) and
 * the DSN parameter syntax (RFC 3461, RFC 6533): each report built here is
 * taken apart again - top header, MIME boundary and parts, the delivery-
 * status groups - and checked field by field; every line of every report
 * is at most 998 octets and ends in CRLF.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bounce.h"

#define HOST "mx.test.example"
#define SEED "0123456789ABCD"
#define TO "sender@example.org"
#define NOW 1700000000
#define ARRIVAL 1699990000
#define MAX_PARTS 4
#define MAX_GROUPS 8

static const char small_msg[] =
    "Received: from a (a [198.51.100.1])\r\n\tby mx (tern) id X;\r\n"
    "\tTue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: <sender@example.org>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "The body.\r\n"
    "..and more\r\n";
/* without the empty line and the body */
#define SMALL_HEADERS_LEN (sizeof(small_msg) - 1 - 25)

/* ---------------------------------------------------------------- parsing
 * A small reader of what bounce_build wrote: enough MIME to find the
 * parts, enough RFC 5322 to unfold a field. */

struct part {
	const char *hdr; /* header section, with the CRLF of its last line */
	size_t hdr_len;
	const char *body;
	size_t body_len;
};

struct report {
	struct buf raw;
	struct part top;
	char boundary[128];
	struct part parts[MAX_PARTS];
	size_t nparts;
};

/* split_part - header and body of s[0..len) at the first empty line */
static void
split_part(const char *s, size_t len, struct part *p)
{
	const char *e = memmem(s, len, "\r\n\r\n", 4);

	assert_non_null(e);
	p->hdr = s;
	p->hdr_len = (size_t)(e - s) + 2;
	p->body = e + 4;
	p->body_len = len - p->hdr_len - 2;
}

/*
 * field - the unfolded value of the first field called name in the header
 * section h[0..len), into out; 0 when there is none
 */
static int
field(const char *h, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), pos = 0, o = 0;

	while (pos < len) {
		const char *eol = memmem(h + pos, len - pos, "\r\n", 2);
		size_t l = eol ? (size_t)(eol - (h + pos)) : len - pos;

		if (l > nlen && strncasecmp(h + pos, name, nlen) == 0 &&
		    h[pos + nlen] == ':') {
			size_t v = pos + nlen + 1;

			while (v < len && h[v] == ' ')
				v++;
			for (; v < len; v++) {
				if (h[v] == '\r' && v + 2 < len &&
				    (h[v + 2] == ' ' || h[v + 2] == '\t')) {
					v++; /* unfold: drop the CRLF */
					continue;
				}
				if (h[v] == '\r')
					break;
				assert_true(o + 1 < outlen);
				out[o++] = h[v];
			}
			out[o] = '\0';
			return 1;
		}
		pos += l + 2;
	}
	return 0;
}

/* check_lines - every line ends in CRLF, none over 998 octets */
static void
check_lines(const char *s, size_t len)
{
	size_t pos = 0, l;

	assert_true(len >= 2);
	assert_memory_equal(s + len - 2, "\r\n", 2);
	while (pos < len) {
		const char *eol = memmem(s + pos, len - pos, "\r\n", 2);

		assert_non_null(eol);
		l = (size_t)(eol - (s + pos));
		if (l > 998)
			fail_msg("line of %zu octets at %zu", l, pos);
		if (memchr(s + pos, '\n', l) || memchr(s + pos, '\r', l))
			fail_msg("bare CR or LF in the line at %zu", pos);
		pos += l + 2;
	}
}

/* parse_report - split raw into its parts; fail on a malformed report */
static void
parse_report(struct report *r)
{
	char ct[1024], delim[160], *b, *q;
	const char *s, *end, *next;
	size_t dlen;

	check_lines(r->raw.data, r->raw.len);
	split_part(r->raw.data, r->raw.len, &r->top);
	assert_true(field(r->top.hdr, r->top.hdr_len, "Content-Type", ct,
	    sizeof(ct)));
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += strlen("boundary=\"");
	q = strchr(b, '"');
	assert_non_null(q);
	*q = '\0';
	assert_true(strlen(b) >= 1 && strlen(b) <= 70); /* RFC 2046 5.1.1 */
	snprintf(r->boundary, sizeof(r->boundary), "%s", b);
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", b);
	s = memmem(r->top.body, r->top.body_len, delim, dlen);
	assert_non_null(s);
	end = r->top.body + r->top.body_len;
	r->nparts = 0;
	for (;;) {
		s += dlen;
		if (end - s >= 4 && memcmp(s, "--\r\n", 4) == 0)
			break;
		assert_memory_equal(s, "\r\n", 2);
		s += 2;
		next = memmem(s, (size_t)(end - s), delim, dlen);
		assert_non_null(next);
		assert_true(r->nparts < MAX_PARTS);
		split_part(s, (size_t)(next - s), &r->parts[r->nparts++]);
		s = next;
	}
	/* the closing delimiter ends the message */
	assert_true(s + 4 == end);
}

/* build_report - bounce_build into r->raw and parse it */
static void
build_report(const struct bounce_req *q, struct report *r)
{
	buf_init(&r->raw);
	bounce_build(q, &r->raw);
	parse_report(r);
}

static void
report_free(struct report *r)
{
	buf_free(&r->raw);
}

/* groups - the delivery-status body split at its empty lines */
static size_t
groups(const struct part *p, struct part *g, size_t max)
{
	const char *s = p->body, *end = p->body + p->body_len, *e;
	size_t n = 0;

	while (s < end && n < max) {
		e = memmem(s, (size_t)(end - s), "\r\n\r\n", 4);
		g[n].hdr = s;
		g[n].hdr_len = e ? (size_t)(e - s) + 2 : (size_t)(end - s);
		n++;
		s = e ? e + 4 : end;
	}
	return n;
}

/* flat - text with every run of white space (CRLF too) made one space */
static char *
flat(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	size_t i, o = 0;

	assert_non_null(d);
	for (i = 0; i < len; i++) {
		int ws = s[i] == ' ' || s[i] == '\r' || s[i] == '\n' ||
		    s[i] == '\t';

		if (ws && o > 0 && d[o - 1] == ' ')
			continue;
		d[o++] = ws ? ' ' : s[i];
	}
	d[o] = '\0';
	return d;
}

/* ---------------------------------------------------------------- cases */

struct rcpt_in {
	const char *addr;
	const char *status;
	const char *remote;
	const char *error;
	const char *orcpt;
	unsigned tries;
};

#define MAX_RCPTS 3
#define MAX_WANT 10

struct report_case {
	const char *what;
	enum bounce_kind kind;
	const char *envid;
	enum dsn_ret ret;
	int headers_only;
	int no_content;
	struct rcpt_in rcpts[MAX_RCPTS];
	size_t report[MAX_RCPTS]; /* indices reported */
	size_t nreport;
	/* what must be there */
	const char *subject;
	const char *orig_type; /* NULL: no third part */
	const char *want[MAX_WANT]; /* "N Name: value": field of group N of
	                             * the delivery-status part (0 is the
	                             * per-message group) */
	const char *absent[MAX_WANT]; /* "N Name": not in group N */
	const char *text[MAX_WANT];   /* in the text part (spaces flattened) */
};

static const struct report_case cases[] = {
	{ .what = "a 5xx from the remote server",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "bob@example.net", "5.1.1", "mx.example.net[198.51.100.7]",
		"550 5.1.1 <bob@example.net>: no such user", NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "0 Reporting-MTA: dns; " HOST,
		"0 X-Tern-Queue-ID: 1ABCDEFGHIJKLM",
		"0 Arrival-Date: ", /* present */
		"1 Final-Recipient: rfc822; bob@example.net",
		"1 Action: failed", "1 Status: 5.1.1",
		"1 Remote-MTA: dns; mx.example.net",
		"1 Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no "
		"such user",
		"1 Last-Attempt-Date: " },
	    .absent = { "1 Original-Recipient", "1 Will-Retry-Until",
		"0 Original-Envelope-Id" },
	    .text = { "This is the mail system at host " HOST ".",
		"<bob@example.net>: your message could not be delivered",
		"The mail server mx.example.net[198.51.100.7] said: 550 5.1.1 "
		"<bob@example.net>: no such user",
		"Your message is attached below." } },
	{ .what = "no status and no error: the defaults of a failure",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 0 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Status: 5.0.0", "1 Action: failed" },
	    .absent = { "1 Remote-MTA", "1 Diagnostic-Code",
		"1 Last-Attempt-Date" } },
	{ .what = "the status taken from the reply when none is stored",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", NULL, "mx[198.51.100.1]",
		"554 5.7.1 go away", NULL, 2 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Status: 5.7.1",
		"1 Diagnostic-Code: smtp; 554 5.7.1 go away",
		"1 Remote-MTA: dns; mx" } },
	{ .what = "a malformed stored status gives way to the default",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", "5.1", NULL, "lost", NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Status: 5.0.0", "1 Diagnostic-Code: X-tern; lost" },
	    .text = { "Reason: lost" } },
	{ .what = "our own words are not an SMTP reply: X-tern, Reason",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", "4.4.7", "mx.example.net[198.51.100.7]",
		"connect to mx.example.net: Connection refused", NULL, 9 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Status: 4.4.7",
		"1 Diagnostic-Code: X-tern; connect to mx.example.net: "
		"Connection refused" },
	    .text = { "Reason: connect to mx.example.net: Connection "
		      "refused" } },
	{ .what = "RET=HDRS: only the header section",
	    .kind = BOUNCE_FAILED, .ret = DSN_RET_HDRS,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "text/rfc822-headers",
	    .text = { "The header of your message is attached below." } },
	{ .what = "RET=FULL is the same as not given",
	    .kind = BOUNCE_FAILED, .ret = DSN_RET_FULL,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822" },
	{ .what = "the caller asks for headers only",
	    .kind = BOUNCE_FAILED, .headers_only = 1,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "text/rfc822-headers" },
	{ .what = "no content: two parts only",
	    .kind = BOUNCE_FAILED, .no_content = 1,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = NULL },
	{ .what = "a delay warning",
	    .kind = BOUNCE_DELAYED,
	    .rcpts = { { "a@example.net", "4.4.1", "mx.example.net[198.51.100.7]",
		"451 4.4.1 try later", NULL, 3 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Delayed Mail (still being retried)",
	    .orig_type = "text/rfc822-headers",
	    .want = { "1 Action: delayed", "1 Status: 4.4.1",
		"1 Will-Retry-Until: ", "1 Last-Attempt-Date: " },
	    .text = { "you do not need to send the message again",
		"will keep trying until" } },
	{ .what = "a delay warning's default status",
	    .kind = BOUNCE_DELAYED,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 0 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Delayed Mail (still being retried)",
	    .orig_type = "text/rfc822-headers",
	    .want = { "1 Status: 4.0.0", "1 Will-Retry-Until: " } },
	{ .what = "NOTIFY=SUCCESS: delivered",
	    .kind = BOUNCE_DELIVERED,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Successful Mail Delivery Report",
	    .orig_type = "text/rfc822-headers",
	    .want = { "1 Action: delivered", "1 Status: 2.0.0" },
	    .absent = { "1 Will-Retry-Until", "1 Diagnostic-Code" },
	    .text = { "<a@example.net>: your message was delivered." } },
	{ .what = "NOTIFY=SUCCESS to a peer without DSN: relayed",
	    .kind = BOUNCE_RELAYED,
	    .rcpts = { { "a@example.net", "2.0.0", "mx.example.net[198.51.100.7]",
		"250 2.0.0 Ok: queued as 4Y", NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Successful Mail Delivery Report",
	    .orig_type = "text/rfc822-headers",
	    .want = { "1 Action: relayed", "1 Status: 2.0.0",
		"1 Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4Y" },
	    .text = { "sends no delivery reports" } },
	{ .what = "only the recipients asked for, in the order asked",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "one@example.net", "5.1.1", NULL, NULL, NULL, 1 },
		{ "two@example.net", "2.0.0", NULL, NULL, NULL, 1 },
		{ "three@example.net", "5.2.2", NULL, NULL, NULL, 1 } },
	    .report = { 2, 0 }, .nreport = 2,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Final-Recipient: rfc822; three@example.net",
		"1 Status: 5.2.2",
		"2 Final-Recipient: rfc822; one@example.net",
		"2 Status: 5.1.1" },
	    .text = { "<three@example.net>: your message",
		"<one@example.net>: your message" } },
	{ .what = "ENVID and ORCPT decoded from xtext",
	    .kind = BOUNCE_FAILED, .envid = "QQ+2B314+3D159",
	    .rcpts = { { "a@example.net", NULL, NULL, NULL,
		"rfc822;A+2Bx@Example.NET", 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "0 Original-Envelope-Id: QQ+314=159",
		"1 Original-Recipient: rfc822;A+x@Example.NET",
		"1 Final-Recipient: rfc822; a@example.net" },
	    .text = { "(The original recipient was A+x@Example.NET.)" } },
	{ .what = "ORCPT of type utf-8 is kept in its 7-bit form",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL,
		"UTF-8;j\\x{F6}ran@example.net", 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Original-Recipient: utf-8;j\\x{F6}ran@example.net" } },
	{ .what = "raw UTF-8 in ORCPT becomes \\x{HEX}",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", NULL, NULL, NULL,
		"utf-8;j\xc3\xb6ran@\xe4\xbe\x8b.net", 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Original-Recipient: "
		      "utf-8;j\\x{F6}ran@\\x{4F8B}.net" } },
	{ .what = "malformed ORCPT and ENVID are left out",
	    .kind = BOUNCE_FAILED, .envid = "bad+zz",
	    .rcpts = { { "a@example.net", NULL, NULL, NULL, "rfc822;a+2", 1 },
		{ "b@example.net", NULL, NULL, NULL, "x400;a", 1 } },
	    .report = { 0, 1 }, .nreport = 2,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .absent = { "0 Original-Envelope-Id", "1 Original-Recipient",
		"2 Original-Recipient" } },
	{ .what = "a UTF-8 recipient: utf-8 address type, 8bit text part",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "j\xc3\xb6ran@\xe4\xbe\x8b.net", NULL, NULL, NULL, NULL,
		1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Final-Recipient: utf-8; j\\x{F6}ran@\\x{4F8B}.net" },
	    .text = { "<j\xc3\xb6ran@\xe4\xbe\x8b.net>: your message" } },
	{ .what = "a quoted local part with a space and a plus",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "\"a b+c\"@example.net", NULL, NULL, NULL, NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Final-Recipient: rfc822; \"a b+c\"@example.net" } },
	{ .what = "runs of spaces are one, none at the ends",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", NULL, "mx[198.51.100.1]",
		"550  5.1.1   no   such user  ", NULL, 1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Diagnostic-Code: smtp; 550 5.1.1 no such user" } },
	{ .what = "a remote MTA known only by its address",
	    .kind = BOUNCE_FAILED,
	    .rcpts = { { "a@example.net", NULL, "[198.51.100.9]", "550 no", NULL,
		1 } },
	    .report = { 0 }, .nreport = 1,
	    .subject = "Undelivered Mail Returned to Sender",
	    .orig_type = "message/rfc822",
	    .want = { "1 Remote-MTA: dns; 198.51.100.9", "1 Status: 5.0.0" } },
};

/* fill - the envelope of a case */
static void
fill(struct envelope *e, const struct report_case *c)
{
	size_t i;

	envelope_init(e);
	strcpy(e->id, "1ABCDEFGHIJKLM");
	e->arrival = ARRIVAL;
	envelope_set(&e->sender, TO);
	envelope_set(&e->envid, c->envid);
	e->ret = c->ret;
	for (i = 0; i < MAX_RCPTS && c->rcpts[i].addr != NULL; i++) {
		struct env_rcpt *r;

		assert_int_equal(envelope_add_rcpt(e, c->rcpts[i].addr), 1);
		r = &e->rcpts[e->nrcpts - 1];
		envelope_set(&r->status, c->rcpts[i].status);
		envelope_set(&r->remote, c->rcpts[i].remote);
		envelope_set(&r->last_error, c->rcpts[i].error);
		envelope_set(&r->orcpt, c->rcpts[i].orcpt);
		r->tries = c->rcpts[i].tries;
	}
}

/* request - a bounce request with the test's constants */
static void
request(struct bounce_req *q, const struct envelope *e,
    const struct report_case *c)
{
	memset(q, 0, sizeof(*q));
	q->hostname = HOST;
	q->boundary_seed = SEED;
	q->now = NOW;
	q->env = e;
	q->rcpts = c->report;
	q->nrcpts = c->nreport;
	q->kind = c->kind;
	q->content = c->no_content ? NULL : small_msg;
	q->content_len = c->no_content ? 0 : sizeof(small_msg) - 1;
	q->headers_only = c->headers_only;
	q->retry_until = NOW + 86400;
	q->to = TO;
}

/* check_top - the header section every report has */
static void
check_top(const struct report *r, const char *subject)
{
	char v[1024];

	assert_true(field(r->top.hdr, r->top.hdr_len, "From", v, sizeof(v)));
	assert_string_equal(v, "MAILER-DAEMON@" HOST " (Mail Delivery System)");
	assert_true(field(r->top.hdr, r->top.hdr_len, "To", v, sizeof(v)));
	assert_string_equal(v, "<" TO ">");
	assert_true(field(r->top.hdr, r->top.hdr_len, "Subject", v,
	    sizeof(v)));
	assert_string_equal(v, subject);
	assert_true(field(r->top.hdr, r->top.hdr_len, "Message-ID", v,
	    sizeof(v)));
	assert_string_equal(v, "<" SEED "@" HOST ">");
	assert_true(field(r->top.hdr, r->top.hdr_len, "Auto-Submitted", v,
	    sizeof(v)));
	assert_string_equal(v, "auto-replied");
	assert_true(field(r->top.hdr, r->top.hdr_len, "MIME-Version", v,
	    sizeof(v)));
	assert_string_equal(v, "1.0");
	assert_true(field(r->top.hdr, r->top.hdr_len, "Date", v, sizeof(v)));
	assert_true(field(r->top.hdr, r->top.hdr_len, "Content-Type", v,
	    sizeof(v)));
	assert_non_null(strstr(v, "multipart/report; "
				  "report-type=delivery-status; boundary=\""));
}

/* check_want - "N Name: value" rows against the delivery-status groups */
static void
check_want(const struct part *g, size_t ng, const char *const *want,
    int present)
{
	char name[64], v[4096];
	const char *row, *colon;
	size_t i, n;

	for (i = 0; i < MAX_WANT && want[i] != NULL; i++) {
		row = want[i];
		n = (size_t)(row[0] - '0');
		assert_true(n < ng);
		colon = strchr(row + 2, ':');
		snprintf(name, sizeof(name), "%.*s",
		    (int)(colon ? colon - (row + 2) : (int)strlen(row + 2)),
		    row + 2);
		if (!present) {
			if (field(g[n].hdr, g[n].hdr_len, name, v, sizeof(v)))
				fail_msg("group %zu has %s: %s", n, name, v);
			continue;
		}
		if (!field(g[n].hdr, g[n].hdr_len, name, v, sizeof(v)))
			fail_msg("group %zu lacks %s", n, name);
		/* "Name: " alone only asks for the field to be there */
		if (colon[2] != '\0' && strcmp(v, colon + 2) != 0)
			fail_msg("group %zu %s: '%s', want '%s'", n, name, v,
			    colon + 2);
	}
}

/* check_case - build the report of one case and check all of it */
static void
check_case(const struct report_case *c)
{
	struct envelope e;
	struct bounce_req q;
	struct report r;
	struct part g[MAX_GROUPS];
	char v[1024], *text;
	size_t ng, i;

	fill(&e, c);
	request(&q, &e, c);
	build_report(&q, &r);
	check_top(&r, c->subject);
	assert_int_equal(r.nparts, c->orig_type ? 3 : 2);
	assert_true(field(r.parts[0].hdr, r.parts[0].hdr_len, "Content-Type",
	    v, sizeof(v)));
	assert_non_null(strstr(v, "text/plain; charset="));
	assert_true(field(r.parts[1].hdr, r.parts[1].hdr_len, "Content-Type",
	    v, sizeof(v)));
	assert_string_equal(v, "message/delivery-status");
	ng = groups(&r.parts[1], g, MAX_GROUPS);
	assert_int_equal(ng, 1 + c->nreport);
	check_want(g, ng, c->want, 1);
	check_want(g, ng, c->absent, 0);
	text = flat(r.parts[0].body, r.parts[0].body_len);
	for (i = 0; i < MAX_WANT && c->text[i] != NULL; i++)
		if (strstr(text, c->text[i]) == NULL)
			fail_msg("text part lacks '%s':\n%s", c->text[i], text);
	free(text);
	if (c->orig_type != NULL) {
		const struct part *o = &r.parts[2];
		size_t want = strcmp(c->orig_type, "message/rfc822") == 0 ?
		    sizeof(small_msg) - 1 : SMALL_HEADERS_LEN;

		assert_true(field(o->hdr, o->hdr_len, "Content-Type", v,
		    sizeof(v)));
		assert_string_equal(v, c->orig_type);
		/* the original as it was, the CRLF before the boundary
		 * belonging to the boundary */
		assert_int_equal(o->body_len, want);
		assert_memory_equal(o->body, small_msg, want);
	}
	report_free(&r);
	envelope_free(&e);
}

static void
test_report_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("report: %s\n", cases[i].what);
		check_case(&cases[i]);
	}
}

/* ---------------------------------------------------------------- limits */

/* one_rcpt - an envelope with one failed recipient and this error */
static void
one_rcpt(struct envelope *e, const char *addr, const char *error)
{
	envelope_init(e);
	strcpy(e->id, "1ABCDEFGHIJKLM");
	e->arrival = ARRIVAL;
	envelope_set(&e->sender, TO);
	envelope_add_rcpt(e, addr);
	envelope_set(&e->rcpts[0].last_error, error);
	envelope_set(&e->rcpts[0].remote, "mx.example.net[198.51.100.7]");
	e->rcpts[0].tries = 1;
}

static const size_t first_rcpt[] = { 0 };

/* simple_req - a failure report of recipient 0 of e */
static void
simple_req(struct bounce_req *q, const struct envelope *e,
    const char *content, size_t len)
{
	memset(q, 0, sizeof(*q));
	q->hostname = HOST;
	q->boundary_seed = SEED;
	q->now = NOW;
	q->env = e;
	q->rcpts = first_rcpt;
	q->nrcpts = 1;
	q->kind = BOUNCE_FAILED;
	q->content = content;
	q->content_len = len;
	q->to = TO;
}

/* max_line - the longest line of s[0..len) */
static size_t
max_line(const char *s, size_t len)
{
	size_t pos = 0, l, max = 0;

	while (pos < len) {
		const char *eol = memmem(s + pos, len - pos, "\r\n", 2);

		l = eol ? (size_t)(eol - (s + pos)) : len - pos;
		if (l > max)
			max = l;
		pos += l + 2;
	}
	return max;
}

/* a long diagnostic: folded at spaces within 78 octets, nothing lost */
static void
test_long_diagnostic_is_folded(void **state)
{
	struct envelope e;
	struct bounce_req q;
	struct report r;
	struct part g[MAX_GROUPS];
	struct buf diag;
	char v[8192], *text;
	int i;

	(void)state;
	buf_init(&diag);
	buf_puts(&diag, "550 5.7.1");
	for (i = 0; i < 300; i++)
		buf_printf(&diag, " word%d", i);
	one_rcpt(&e, "a@example.net", diag.data);
	simple_req(&q, &e, small_msg, sizeof(small_msg) - 1);
	build_report(&q, &r);
	groups(&r.parts[1], g, MAX_GROUPS);
	assert_true(max_line(g[1].hdr, g[1].hdr_len) <= 78);
	assert_true(field(g[1].hdr, g[1].hdr_len, "Diagnostic-Code", v,
	    sizeof(v)));
	assert_string_equal(v + strlen("smtp; "), diag.data);
	/* the text part wraps it too, at 76 */
	assert_true(max_line(r.parts[0].body, r.parts[0].body_len) <= 76);
	text = flat(r.parts[0].body, r.parts[0].body_len);
	assert_non_null(strstr(text, diag.data));
	free(text);
	report_free(&r);
	envelope_free(&e);
	buf_free(&diag);
}

/*
 * Text without spaces longer than a line: broken at 998 (a header field
 * then unfolds with a space in it; the alternative is a line no server
 * takes), never inside a UTF-8 character
 */
static void
test_unbreakable_text_is_cut_at_998(void **state)
{
	static const struct {
		const char *what;
		const char *unit;
		size_t count;
	} rows[] = {
		{ "ASCII", "x", 3000 },
		{ "two-octet UTF-8", "\xc3\xa9", 1500 },
		{ "three-octet UTF-8", "\xe4\xbe\x8b", 1000 },
		{ "four-octet UTF-8", "\xf0\x9f\x93\xa7", 700 },
	};
	struct envelope e;
	struct bounce_req q;
	struct report r;
	struct buf diag;
	size_t i, j, pos;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("unbreakable: %s\n", rows[i].what);
		buf_init(&diag);
		buf_puts(&diag, "550 ");
		for (j = 0; j < rows[i].count; j++)
			buf_puts(&diag, rows[i].unit);
		one_rcpt(&e, "a@example.net", diag.data);
		simple_req(&q, &e, NULL, 0);
		build_report(&q, &r); /* checks every line <= 998 */
		assert_true(max_line(r.raw.data, r.raw.len) >= 990);
		/* every line is whole UTF-8 */
		for (pos = 0; pos < r.raw.len;) {
			const char *eol = memmem(r.raw.data + pos,
			    r.raw.len - pos, "\r\n", 2);
			size_t l = (size_t)(eol - (r.raw.data + pos));

			assert_true(util_utf8_valid(
			    (const unsigned char *)r.raw.data + pos, l));
			pos += l + 2;
		}
		report_free(&r);
		envelope_free(&e);
		buf_free(&diag);
	}
}

/* CR, LF and other controls from outside never make a line of their own */
static void
test_header_injection(void **state)
{
	static const char *evil = "550 no\r\nBcc: victim@example.org\r\n"
				  "\r\n--boundary\nX-Evil: 1\x01\x7f";
	struct envelope e;
	struct bounce_req q;
	struct report r;
	const char *p;

	(void)state;
	one_rcpt(&e, "a@example.net\r\nBcc: v@example.org", evil);
	envelope_set(&e.envid, "x\r\nBcc:");
	envelope_set(&e.rcpts[0].remote, "mx\r\nBcc: v[1.2.3.4]");
	simple_req(&q, &e, small_msg, sizeof(small_msg) - 1);
	q.to = "s@example.org>\r\nBcc: v@example.org";
	q.hostname = "host\r\nBcc: v@example.org";
	build_report(&q, &r); /* no bare CR or LF anywhere */
	for (p = r.raw.data; (p = strstr(p, "\r\n")) != NULL; p += 2) {
		if (strncasecmp(p + 2, "Bcc", 3) == 0 ||
		    strncasecmp(p + 2, "X-Evil", 6) == 0)
			fail_msg("injected line: %.40s", p + 2);
	}
	assert_null(memchr(r.raw.data, '\x01', r.raw.len));
	assert_null(memchr(r.raw.data, '\x7f', r.raw.len));
	report_free(&r);
	envelope_free(&e);
}

/* the boundary is never a line of the original it carries */
static void
test_boundary_avoids_the_original(void **state)
{
	struct envelope e;
	struct bounce_req q;
	struct report r;
	struct buf m;
	int i;

	(void)state;
	one_rcpt(&e, "a@example.net", "550 no");
	buf_init(&m);
	buf_puts(&m, "Subject: x\r\n\r\n--=_" SEED "/" HOST "\r\n"
		     "--=_" SEED "/" HOST ".1--\r\n");
	simple_req(&q, &e, m.data, m.len);
	build_report(&q, &r);
	assert_int_equal(r.nparts, 3);
	assert_null(strstr(m.data, r.boundary));
	assert_int_equal(r.parts[2].body_len, m.len);
	assert_memory_equal(r.parts[2].body, m.data, m.len);
	report_free(&r);

	/* a message holding every boundary tried: it is left out */
	for (i = 2; i < 16; i++)
		buf_printf(&m, "=_" SEED "/" HOST ".%d\r\n", i);
	simple_req(&q, &e, m.data, m.len);
	build_report(&q, &r);
	assert_int_equal(r.nparts, 2);
	report_free(&r);
	envelope_free(&e);
	buf_free(&m);
}

/* a message over BOUNCE_FULL_MAX comes back as its header section */
static void
test_large_message_returns_headers(void **state)
{
	static const char head[] = "Subject: big\r\nX-A: b\r\n\r\n";
	struct envelope e;
	struct bounce_req q;
	struct report r;
	struct buf m;
	char v[256];
	size_t sizes[] = { BOUNCE_FULL_MAX, BOUNCE_FULL_MAX + 1 };
	size_t i;

	(void)state;
	one_rcpt(&e, "a@example.net", "552 5.3.4 too big");
	for (i = 0; i < 2; i++) {
		buf_init(&m);
		buf_puts(&m, head);
		while (m.len + 100 <= sizes[i])
			buf_puts(&m, "0123456789012345678901234567890123456789"
				     "01234567890123456789012345678901234567890"
				     "12345678901234567\r\n");
		while (m.len < sizes[i] - 2)
			buf_putc(&m, 'z');
		buf_puts(&m, "\r\n");
		assert_int_equal(m.len, sizes[i]);
		simple_req(&q, &e, m.data, m.len);
		build_report(&q, &r);
		assert_true(field(r.parts[2].hdr, r.parts[2].hdr_len,
		    "Content-Type", v, sizeof(v)));
		if (i == 0) {
			assert_string_equal(v, "message/rfc822");
			assert_int_equal(r.parts[2].body_len, m.len);
		} else {
			assert_string_equal(v, "text/rfc822-headers");
			assert_int_equal(r.parts[2].body_len,
			    strlen(head) - 2);
		}
		report_free(&r);
		buf_free(&m);
	}
	envelope_free(&e);
}

/* the original's header section, however its end is marked */
static void
test_header_section_bounds(void **state)
{
	static const struct {
		const char *what;
		const char *msg;
		size_t hdr_len; /* what text/rfc822-headers carries of it */
		const char *cte; /* Content-Transfer-Encoding, or NULL */
	} rows[] = {
		{ "CRLF CRLF", "A: 1\r\nB: 2\r\n\r\nbody\r\n", 12, NULL },
		{ "no body", "A: 1\r\nB: 2\r\n", 12, NULL },
		{ "no final CRLF (one is added)", "A: 1", 4, NULL },
		{ "8-bit header", "A: \xc3\xa9\r\n\r\nb\r\n", 7, "8bit" },
		{ "8-bit body only", "A: 1\r\n\r\n\xc3\xa9\r\n", 6, NULL },
	};
	static const char bare_lf[] = "A: 1\n\nbody\r\n";
	struct envelope e;
	struct bounce_req q;
	struct report r;
	char v[64];
	size_t i, want;
	int has_cte;

	(void)state;
	one_rcpt(&e, "a@example.net", "550 no");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("headers: %s\n", rows[i].what);
		simple_req(&q, &e, rows[i].msg, strlen(rows[i].msg));
		q.headers_only = 1;
		build_report(&q, &r);
		want = rows[i].hdr_len;
		if (rows[i].msg[want - 1] != '\n')
			want += 2;
		assert_int_equal(r.parts[2].body_len, want);
		assert_memory_equal(r.parts[2].body, rows[i].msg,
		    rows[i].hdr_len);
		has_cte = field(r.parts[2].hdr, r.parts[2].hdr_len,
		    "Content-Transfer-Encoding", v, sizeof(v));
		assert_int_equal(has_cte, rows[i].cte != NULL);
		if (has_cte)
			assert_string_equal(v, rows[i].cte);
		report_free(&r);
	}
	/* a bare LF empty line ends the header too; the original is kept
	 * as it was (so this report is not all CRLF: checked by hand) */
	simple_req(&q, &e, bare_lf, strlen(bare_lf));
	q.headers_only = 1;
	buf_init(&r.raw);
	bounce_build(&q, &r.raw);
	assert_non_null(memmem(r.raw.data, r.raw.len, "\r\n\r\nA: 1\n\r\n--",
	    13));
	assert_null(memmem(r.raw.data, r.raw.len, "body", 4));
	report_free(&r);
	envelope_free(&e);
}

/* an 8-bit original in full gets Content-Transfer-Encoding: 8bit */
static void
test_8bit_original(void **state)
{
	static const char msg[] = "Subject: caf\xc3\xa9\r\n\r\nb\r\n";
	struct envelope e;
	struct bounce_req q;
	struct report r;
	char v[64];

	(void)state;
	one_rcpt(&e, "a@example.net", "550 no");
	simple_req(&q, &e, msg, sizeof(msg) - 1);
	build_report(&q, &r);
	assert_true(field(r.parts[2].hdr, r.parts[2].hdr_len,
	    "Content-Transfer-Encoding", v, sizeof(v)));
	assert_string_equal(v, "8bit");
	/* the text part is plain ASCII here */
	assert_true(field(r.parts[0].hdr, r.parts[0].hdr_len, "Content-Type",
	    v, sizeof(v)));
	assert_string_equal(v, "text/plain; charset=us-ascii");
	report_free(&r);
	envelope_free(&e);
}

/* ---------------------------------------------------------------- DSN syntax */

static void
test_xtext(void **state)
{
	static const struct {
		const char *what;
		const char *in;
		const char *out; /* NULL: invalid */
	} rows[] = {
		{ "empty", "", "" },
		{ "plain", "abc@example.org", "abc@example.org" },
		{ "plus encoded", "a+2Bb", "a+b" },
		{ "equals encoded", "a+3Db", "a=b" },
		{ "space encoded", "a+20b", "a b" },
		{ "tilde and bang", "!~", "!~" },
		{ "every hexchar at the ends", "+41+5A", "AZ" },
		{ "raw plus", "a+b", NULL },
		{ "raw equals", "a=b", NULL },
		{ "raw space", "a b", NULL },
		{ "lower-case hex", "a+2bb", NULL },
		{ "one hex digit at the end", "a+2", NULL },
		{ "no hex digit at the end", "a+", NULL },
		{ "non-hex digit", "a+G0", NULL },
		{ "control character encoded", "a+0Db", NULL },
		{ "NUL encoded", "a+00", NULL },
		{ "DEL encoded", "+7F", NULL },
		{ "8-bit encoded", "+C3+A9", NULL },
		{ "raw 8-bit", "caf\xc3\xa9", NULL },
		{ "raw control", "a\x01", NULL },
		{ "raw DEL", "a\x7f", NULL },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int want = rows[i].out != NULL;

		print_message("xtext: %s\n", rows[i].what);
		assert_int_equal(xtext_valid(rows[i].in), want);
		memset(out, 'Q', sizeof(out));
		assert_int_equal(xtext_decode(rows[i].in, out, sizeof(out)),
		    want ? 0 : -1);
		if (want)
			assert_string_equal(out, rows[i].out);
	}
	/* out must hold strlen(in) + 1, however short the result */
	assert_int_equal(xtext_decode("a+2Bb", out, 6), 0);
	assert_int_equal(xtext_decode("a+2Bb", out, 5), -1);
}

static void
test_notify(void **state)
{
	static const struct {
		const char *what;
		const char *in;
		int ok;
		unsigned bits;
	} rows[] = {
		{ "never", "NEVER", 1, DSN_NOTIFY_NEVER },
		{ "lower case", "never", 1, DSN_NOTIFY_NEVER },
		{ "success", "SUCCESS", 1, DSN_NOTIFY_SUCCESS },
		{ "all three", "SUCCESS,FAILURE,DELAY", 1,
		    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY },
		{ "any order, mixed case", "Delay,failure", 1,
		    DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE },
		{ "empty", "", 0, 0 },
		{ "unknown word", "ALWAYS", 0, 0 },
		{ "never with another", "NEVER,SUCCESS", 0, 0 },
		{ "another with never", "FAILURE,NEVER", 0, 0 },
		{ "a word twice", "DELAY,DELAY", 0, 0 },
		{ "empty item", "SUCCESS,,DELAY", 0, 0 },
		{ "trailing comma", "SUCCESS,", 0, 0 },
		{ "leading comma", ",SUCCESS", 0, 0 },
		{ "space after comma", "SUCCESS, DELAY", 0, 0 },
		{ "prefix of a word", "SUCC", 0, 0 },
		{ "word with a tail", "SUCCESSFUL", 0, 0 },
	};
	unsigned bits;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("notify: %s\n", rows[i].what);
		bits = 0xdead;
		assert_int_equal(dsn_notify_parse(rows[i].in, &bits),
		    rows[i].ok ? 0 : -1);
		if (rows[i].ok)
			assert_int_equal(bits, rows[i].bits);
	}
}

static void
test_orcpt(void **state)
{
	static const struct {
		const char *what;
		const char *in;
		int utf8_ok;
		int want;
	} rows[] = {
		{ "rfc822", "rfc822;a@example.org", 0, 1 },
		{ "type in upper case", "RFC822;a@example.org", 0, 1 },
		{ "xtext in the address", "rfc822;a+2Bb@example.org", 0, 1 },
		{ "empty address", "rfc822;", 0, 0 },
		{ "no type", "a@example.org", 0, 0 },
		{ "empty type", ";a@example.org", 0, 0 },
		{ "unknown type", "x400;a", 0, 0 },
		{ "bad xtext", "rfc822;a+b@example.org", 0, 0 },
		{ "raw space", "rfc822;a b@example.org", 0, 0 },
		{ "raw UTF-8 in rfc822", "rfc822;caf\xc3\xa9@x", 1, 0 },
		{ "utf-8 type, ASCII", "utf-8;a@example.org", 0, 1 },
		{ "utf-8 type, escape", "utf-8;j\\x{F6}ran@example.org", 0, 1 },
		{ "utf-8 type, long escape", "utf-8;\\x{1F4E7}@x", 0, 1 },
		{ "utf-8 type, raw UTF-8 with SMTPUTF8",
		    "utf-8;j\xc3\xb6ran@example.org", 1, 1 },
		{ "utf-8 type, raw UTF-8 without SMTPUTF8",
		    "utf-8;j\xc3\xb6ran@example.org", 0, 0 },
		{ "utf-8 type, lower-case escape", "utf-8;\\x{f6}@x", 0, 0 },
		{ "utf-8 type, unclosed escape", "utf-8;\\x{F6@x", 0, 0 },
		{ "utf-8 type, empty escape", "utf-8;\\x{}@x", 0, 0 },
		{ "utf-8 type, escape too long", "utf-8;\\x{0000041}@x", 0, 0 },
		{ "utf-8 type, escape beyond Unicode", "utf-8;\\x{110000}", 0,
		    0 },
		{ "utf-8 type, surrogate escape", "utf-8;\\x{D800}", 0, 0 },
		{ "utf-8 type, bare backslash", "utf-8;a\\b", 0, 0 },
		{ "utf-8 type, raw plus", "utf-8;a+b@x", 0, 0 },
		{ "utf-8 type, raw equals", "utf-8;a=b@x", 0, 0 },
		{ "utf-8 type, empty", "utf-8;", 0, 0 },
	};
	char big[DSN_ORCPT_MAX + 2];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("orcpt: %s\n", rows[i].what);
		assert_int_equal(dsn_orcpt_valid(rows[i].in, rows[i].utf8_ok),
		    rows[i].want);
	}
	/* the whole value may be DSN_ORCPT_MAX octets, not one more */
	memcpy(big, "rfc822;", 7);
	memset(big + 7, 'a', DSN_ORCPT_MAX - 7);
	big[DSN_ORCPT_MAX] = '\0';
	assert_int_equal(dsn_orcpt_valid(big, 0), 1);
	big[DSN_ORCPT_MAX] = 'a';
	big[DSN_ORCPT_MAX + 1] = '\0';
	assert_int_equal(dsn_orcpt_valid(big, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_table),
		cmocka_unit_test(test_long_diagnostic_is_folded),
		cmocka_unit_test(test_unbreakable_text_is_cut_at_998),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_boundary_avoids_the_original),
		cmocka_unit_test(test_large_message_returns_headers),
		cmocka_unit_test(test_header_section_bounds),
		cmocka_unit_test(test_8bit_original),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_orcpt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

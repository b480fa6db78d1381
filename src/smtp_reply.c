/*
 * smtp_reply.c - replies from a remote SMTP or LMTP server: line framing,
 * multiline assembly, enhanced status, diagnostic, EHLO keywords.
 *
 * The one idea: everything a remote server sends is bounded before it is
 * kept (a line, the number of lines, the octets of one reply) and checked
 * before it is believed (a continuation must carry the first line's code,
 * an enhanced status must have the code's class).  RFC 5321 4.2 and 4.2.1
 * (reply syntax, multiline replies), 4.5.3.1.5 (line length); RFC 3463 2
 * and RFC 2034 (enhanced status codes); RFC 5321 4.1.1.1 (EHLO keywords).
 *
 * Lines are framed by CRLF only, as RFC 5321 2.3.8 asks: a bare LF inside
 * a line stays in its text (and so splits an EHLO keyword line in two,
 * which is harmless), and a bare CR is sanitised away in the diagnostic.
 */
#include "smtp_reply.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_parse.h"

/* smtp_reply_getline - the first CRLF-terminated line of in[0..n) */
int
smtp_reply_getline(const char *in, size_t n, size_t *linelen, size_t *used)
{
	size_t win = n < SMTP_REPLY_LINE_MAX + 2 ? n : SMTP_REPLY_LINE_MAX + 2;
	size_t i;

	for (i = 0; i + 1 < win; i++) {
		if (in[i] == '\r' && in[i + 1] == '\n') {
			*linelen = i;
			*used = i + 2;
			return 1;
		}
	}
	if (n >= SMTP_REPLY_LINE_MAX + 2)
		return -1;
	/* a line of exactly SMTP_REPLY_LINE_MAX may wait for its LF */
	if (n == SMTP_REPLY_LINE_MAX + 1 && in[SMTP_REPLY_LINE_MAX] != '\r')
		return -1;
	return 0;
}

/* smtp_reply_init - an empty reply */
void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text);
}

/* smtp_reply_free - release its memory */
void
smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
}

/* smtp_reply_reset - empty again; a large text buffer is given back */
void
smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->nlines = 0;
	r->status[0] = '\0';
	r->diag[0] = '\0';
	if (r->text.cap > 4096) {
		buf_free(&r->text);
		buf_init(&r->text);
	}
	buf_reset(&r->text);
}

/* smtp_reply_add_line - one line of a reply */
int
smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len)
{
	int code;

	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[0] < '2' ||
	    line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return -1;
	if (r->nlines >= SMTP_REPLY_LINES_MAX ||
	    r->text.len + len > SMTP_REPLY_MAX)
		return -1;
	r->code = code;
	r->nlines++;
	if (len > 4)
		buf_append(&r->text, line + 4, len - 4);
	buf_putc(&r->text, '\n');
	return len == 3 || line[3] == ' ';
}

/* smtp_reply_class - the first digit of the code */
int
smtp_reply_class(const struct smtp_reply *r)
{
	return r->code / 100;
}

/* smtp_reply_enhanced - "c.s.d" at the start of t, of class cls */
size_t
smtp_reply_enhanced(const char *t, int cls)
{
	size_t i, part, digits;

	if (cls < 0 || cls > 9 || t[0] != '0' + cls || t[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; isdigit((unsigned char)t[i]); i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0 && t[i++] != '.')
			return 0;
	}
	return t[i] == ' ' || t[i] == '\n' ? i : 0;
}

/* smtp_reply_finish - the enhanced status and the diagnostic */
void
smtp_reply_finish(struct smtp_reply *r)
{
	const char *t = r->text.data != NULL ? r->text.data : "";
	size_t n = smtp_reply_enhanced(t, smtp_reply_class(r));
	struct buf d;
	char *p;

	if (n > 0 && n < sizeof(r->status)) {
		memcpy(r->status, t, n);
		r->status[n] = '\0';
	} else {
		r->status[0] = (char)('0' + smtp_reply_class(r) % 10);
		memcpy(r->status + 1, ".0.0", sizeof(".0.0"));
	}
	buf_init(&d);
	buf_printf(&d, "%d", r->code);
	buf_append(&d, " ", 1);
	buf_append(&d, r->text.data, r->text.len);
	/* lines joined by one space; the last newline dropped (memchr:
	 * the text may hold a NUL, which util_sanitise turns into '?') */
	for (p = d.data; (p = memchr(p, '\n', d.len - (size_t)(p - d.data)))
	    != NULL; p++)
		*p = ' ';
	while (d.len > 0 && d.data[d.len - 1] == ' ')
		d.data[--d.len] = '\0';
	util_sanitise(r->diag, sizeof(r->diag) - 1, d.data, d.len);
	buf_free(&d);
}

/* word_is - the len octets at p are the keyword kw, in any case */
static int
word_is(const char *p, size_t len, const char *kw)
{
	return strlen(kw) == len && strncasecmp(p, kw, len) == 0;
}

/* ehlo_auth - the mechanisms of "AUTH PLAIN LOGIN ..." */
static void
ehlo_auth(struct smtp_ext *x, const char *p, size_t len)
{
	size_t i = 0, start;

	while (i < len) {
		while (i < len && p[i] == ' ')
			i++;
		start = i;
		while (i < len && p[i] != ' ')
			i++;
		if (word_is(p + start, i - start, "PLAIN"))
			x->auth_plain = 1;
		else if (word_is(p + start, i - start, "LOGIN"))
			x->auth_login = 1;
	}
}

/* ehlo_size - "SIZE 1000": the limit, 0 when none or unreadable (RFC 1870
 * 4: a SIZE without a number announces no fixed limit) */
static uint64_t
ehlo_size(const char *p, size_t len)
{
	char num[32];
	uint64_t n;

	if (len == 0 || len >= sizeof(num))
		return 0;
	memcpy(num, p, len);
	num[len] = '\0';
	return smtp_parse_size_param(num, &n) == 0 ? n : 0;
}

/* smtp_ehlo_keyword - one line of the EHLO reply (RFC 5321 4.1.1.1) */
void
smtp_ehlo_keyword(struct smtp_ext *x, const char *line, size_t len)
{
	size_t kw, arg, arglen;

	if (memchr(line, '\0', len) != NULL)
		return;
	for (kw = 0; kw < len && line[kw] != ' ' && line[kw] != '='; kw++)
		;
	arg = kw < len ? kw + 1 : len;
	arglen = len - arg;
	if (word_is(line, kw, "PIPELINING"))
		x->pipelining = 1;
	else if (word_is(line, kw, "8BITMIME"))
		x->eightbit = 1;
	else if (word_is(line, kw, "SMTPUTF8"))
		x->smtputf8 = 1;
	else if (word_is(line, kw, "DSN"))
		x->dsn = 1;
	else if (word_is(line, kw, "STARTTLS"))
		x->starttls = 1;
	else if (word_is(line, kw, "ENHANCEDSTATUSCODES"))
		x->enhanced = 1;
	else if (word_is(line, kw, "SIZE")) {
		x->size = 1;
		x->size_max = ehlo_size(line + arg, arglen);
	} else if (word_is(line, kw, "AUTH"))
		ehlo_auth(x, line + arg, arglen);
}

/* smtp_reply_ehlo - every keyword line after the first */
void
smtp_reply_ehlo(const struct smtp_reply *r, struct smtp_ext *x)
{
	const char *p = r->text.data, *end = p + r->text.len, *nl;
	size_t i;

	memset(x, 0, sizeof(*x));
	if (p == NULL)
		return;
	for (i = 0; p < end; p = nl + 1, i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (i > 0 && nl > p)  /* the first line is the server's name */
			smtp_ehlo_keyword(x, p, (size_t)(nl - p));
	}
}

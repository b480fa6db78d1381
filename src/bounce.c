/*
 * bounce.c - delivery status notifications: the report that tells the
 * envelope sender what became of some recipients, and the DSN parameter
 * syntax (xtext, NOTIFY=, ORCPT=) the SMTP server checks.
 *
 * A report is a multipart/report (RFC 6522) of three parts: a few plain
 * words for a person, the message/delivery-status fields for a program
 * (RFC 3464 2.2, 2.3), and the original message (message/rfc822) or only
 * its header section (text/rfc822-headers).  The whole message is returned
 * only in a failure report, and only when RET=HDRS did not ask otherwise
 * and it is at most BOUNCE_FULL_MAX octets; delay and success reports
 * carry the header section, as RFC 3461 4.3 lets them.
 *
 * The one idea: everything that comes from outside (addresses, the remote
 * server's reply, ENVID, ORCPT) goes through util_sanitise and is folded
 * (RFC 5322 2.2.3) so that no line of the report is longer than 998
 * octets.  The original message is included as it is: it already passed
 * our line-length limit when it was received.  Addresses with UTF-8 in the
 * delivery-status part use the utf-8 address type with \x{HEX} escapes
 * (RFC 6533 3), so that part stays 7-bit as RFC 3464 wants.
 *
 * We build the report by hand rather than with GMime: it is a fixed
 * layout of a few known parts, and this file must stay pure (no I/O, no
 * library state) so it is unit-tested as it is.  Pure: no I/O.
 */
#include "bounce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* fold header fields and wrap text lines here when the text allows */
#define BOUNCE_FOLD_AT 78
#define BOUNCE_WRAP_AT 76
/* RFC 5322 2.1.1: never longer, without CRLF */
#define BOUNCE_LINE_MAX 998
/* a value from outside is cut to this many octets before folding */
#define BOUNCE_VALUE_MAX 4096
/* boundaries tried before the original is left out (only a message made
 * to collide with them could hold them all) */
#define BOUNCE_BOUNDARY_TRIES 16
/* the indent of the lines about one recipient in the text part */
#define BOUNCE_INDENT "    "

/* xtext (RFC 3461 4) */

/* hex_value - the value of an upper-case hex digit, or -1 */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * xtext_octet - the octet at s (a character or "+HH"), its length in *n.
 * -1 when malformed.  RFC 3461 4 allows "+HH" for any US-ASCII character;
 * we accept only printable ones (0x20..0x7e): the decoded value goes into
 * header fields, where a control character has no business.
 */
static int
xtext_octet(const char *s, size_t *n)
{
	unsigned char c = (unsigned char)s[0];
	int hi, lo, v;

	if (c == '+') {
		hi = hex_value(s[1]);
		lo = hi < 0 ? -1 : hex_value(s[2]);
		if (lo < 0)
			return -1;
		v = hi * 16 + lo;
		*n = 3;
		return v >= 0x20 && v <= 0x7e ? v : -1;
	}
	*n = 1;
	if (c < 0x21 || c > 0x7e || c == '=')
		return -1;
	return c;
}

/* xtext_valid - 1 when s is well-formed xtext (empty is well-formed) */
int
xtext_valid(const char *s)
{
	size_t n;

	while (*s != '\0') {
		if (xtext_octet(s, &n) < 0)
			return 0;
		s += n;
	}
	return 1;
}

/* xtext_decode - "+HH" to octets; -1 for bad xtext or a short out */
int
xtext_decode(const char *in, char *out, size_t outlen)
{
	size_t n, o = 0;
	int c;

	if (!xtext_valid(in) || outlen < strlen(in) + 1)
		return -1;
	while (*in != '\0') {
		c = xtext_octet(in, &n);
		out[o++] = (char)c;
		in += n;
	}
	out[o] = '\0';
	return 0;
}

/* DSN parameters (RFC 3461 4.1, 4.2; RFC 6533 3) */

/* notify_bit - the bit of one NOTIFY= keyword s[0..len), or 0 */
static unsigned
notify_bit(const char *s, size_t len)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
		{ "NEVER", DSN_NOTIFY_NEVER },
		{ "SUCCESS", DSN_NOTIFY_SUCCESS },
		{ "FAILURE", DSN_NOTIFY_FAILURE },
		{ "DELAY", DSN_NOTIFY_DELAY },
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].name) == len &&
		    strncasecmp(words[i].name, s, len) == 0)
			return words[i].bit;
	return 0;
}

/* dsn_notify_parse - NOTIFY= value to DSN_NOTIFY_* bits */
int
dsn_notify_parse(const char *s, unsigned *bits)
{
	unsigned got = 0, bit;
	size_t n;

	for (;;) {
		n = strcspn(s, ",");
		bit = notify_bit(s, n);
		if (bit == 0 || (got & bit))
			return -1; /* empty, unknown or repeated */
		got |= bit;
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	/* RFC 3461 4.1: NEVER must appear by itself */
	if ((got & DSN_NOTIFY_NEVER) && got != DSN_NOTIFY_NEVER)
		return -1;
	*bits = got;
	return 0;
}

/*
 * embedded_len - length of an EmbeddedUnicodeChar "\x{HEX}" at s (1 to 6
 * upper-case hex digits, a Unicode scalar value), or 0
 */
static size_t
embedded_len(const char *s)
{
	unsigned long v = 0;
	size_t i;

	if (strncmp(s, "\\x{", 3) != 0)
		return 0;
	for (i = 3; i < 9 && hex_value(s[i]) >= 0; i++)
		v = v * 16 + (unsigned long)hex_value(s[i]);
	if (i == 3 || s[i] != '}' || v == 0 || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return i + 1;
}

/*
 * utf8_addr_valid - 1 when s is utf-8-addr-xtext (or, with utf8_ok,
 * utf-8-addr-unitext) of RFC 6533 3: QCHARs (printable US-ASCII but '+',
 * '=' and '\'), \x{HEX} escapes and, with utf8_ok, UTF-8 characters
 */
static int
utf8_addr_valid(const char *s, int utf8_ok)
{
	unsigned char c;
	size_t n;

	if (*s == '\0')
		return 0;
	if (!util_utf8_valid((const unsigned char *)s, strlen(s)))
		return 0;
	for (; *s != '\0'; s += n) {
		c = (unsigned char)*s;
		n = 1;
		if (c == '\\') {
			n = embedded_len(s);
			if (n == 0)
				return 0;
		} else if (c >= 0x80) {
			if (!utf8_ok)
				return 0;
		} else if (c < 0x21 || c > 0x7e || c == '+' || c == '=') {
			return 0;
		}
	}
	return 1;
}

/* dsn_orcpt_valid - 1 when s is an ORCPT= value we accept */
int
dsn_orcpt_valid(const char *s, int utf8_ok)
{
	const char *semi = strchr(s, ';');

	if (semi == NULL || strlen(s) > DSN_ORCPT_MAX)
		return 0;
	if (semi - s == 6 && strncasecmp(s, "rfc822", 6) == 0)
		return semi[1] != '\0' && xtext_valid(semi + 1);
	if (semi - s == 5 && strncasecmp(s, "utf-8", 5) == 0)
		return utf8_addr_valid(semi + 1, utf8_ok);
	return 0;
}

/* text helpers */

/*
 * clean - a value from outside made fit for a header field or a text
 * line: control characters and bad UTF-8 become '?' (util_sanitise), runs
 * of spaces become one (so a folded line is never white space alone), no
 * space at either end, at most BOUNCE_VALUE_MAX octets.  Caller frees.
 */
static char *
clean(const char *s)
{
	char *d = util_sanitise_dup(s ? s : "", BOUNCE_VALUE_MAX);
	size_t i, o = 0;

	for (i = 0; d[i] != '\0'; i++) {
		if (d[i] == ' ' && (o == 0 || d[o - 1] == ' '))
			continue;
		d[o++] = d[i];
	}
	while (o > 0 && d[o - 1] == ' ')
		o--;
	d[o] = '\0';
	return d;
}

/*
 * find_break - where to end the line holding s[start..len) after col
 * octets already on it: len when the rest fits in width; else at the last
 * space that keeps the line within width, or the first one after that
 * keeps it within BOUNCE_LINE_MAX; else (*forced) at BOUNCE_LINE_MAX,
 * between two UTF-8 characters.
 */
static size_t
find_break(const char *s, size_t start, size_t len, size_t col,
    size_t width, int *forced)
{
	size_t room = width - col, hard = BOUNCE_LINE_MAX - col, p;

	*forced = 0;
	if (len - start <= room)
		return len;
	for (p = start + room; p > start; p--)
		if (s[p] == ' ')
			return p;
	for (p = start + room + 1; p < len && p - start <= hard; p++)
		if (s[p] == ' ')
			return p;
	if (len - start <= hard)
		return len;
	*forced = 1;
	p = start + hard;
	while (p > start + 1 && ((unsigned char)s[p] & 0xc0) == 0x80)
		p--;
	return p;
}

/*
 * put_field - "name: value" CRLF, the value cleaned and folded (RFC 5322
 * 2.2.3) before a space.  A run of more than BOUNCE_LINE_MAX octets
 * without a space is broken anyway, which adds a space when the field is
 * unfolded: better than a line no server takes.
 */
static void
put_field(struct buf *out, const char *name, const char *value)
{
	char *v = clean(value);
	char *f = xasprintf("%s: %s", name, v);
	size_t len = strlen(f), start = 0, col = 0, p;
	int forced;

	for (;;) {
		p = find_break(f, start, len, col, BOUNCE_FOLD_AT, &forced);
		buf_append(out, f + start, p - start);
		buf_puts(out, "\r\n");
		if (p == len)
			break;
		if (forced)
			buf_putc(out, ' ');
		col = forced ? 1 : 0;
		start = p;
	}
	free(f);
	free(v);
}

/*
 * put_wrapped - text as lines of at most BOUNCE_WRAP_AT octets where the
 * words allow (BOUNCE_LINE_MAX always), the first opened by indent, the
 * others by hang.  Text from outside is never at the start of a line
 * unless the caller put it there: it cannot fake a MIME boundary.
 */
static void
put_wrapped(struct buf *out, const char *indent, const char *hang,
    const char *text)
{
	char *t = clean(text);
	size_t len = strlen(t), start = 0, p;
	const char *pre = indent;
	int forced;

	for (;;) {
		p = find_break(t, start, len, strlen(pre), BOUNCE_WRAP_AT,
		    &forced);
		buf_puts(out, pre);
		buf_append(out, t + start, p - start);
		buf_puts(out, "\r\n");
		if (p == len)
			break;
		start = forced ? p : p + 1; /* the space becomes the break */
		pre = hang;
	}
	free(t);
}

/* put_date - a date field for unix time t */
static void
put_date(struct buf *out, const char *name, int64_t t)
{
	char date[64];

	util_rfc5322_date(t, date, sizeof(date));
	put_field(out, name, date);
}

/* keep_chars - s with only the characters of allowed, at most max */
static char *
keep_chars(const char *s, const char *allowed, size_t max)
{
	char *d = xmalloc(max + 1);
	size_t o = 0;

	for (; s != NULL && *s != '\0' && o < max; s++)
		if (strchr(allowed, *s) != NULL)
			d[o++] = *s;
	d[o] = '\0';
	return d;
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* addresses in the delivery-status part */

/* is_qchar - RFC 6533 QCHAR: printable US-ASCII but '+', '=', '\' */
static int
is_qchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '+' && c != '=' && c != '\\';
}

/* utf8_decode - the code point of the UTF-8 sequence at s; *n its length */
static unsigned long
utf8_decode(const unsigned char *s, size_t *n)
{
	unsigned long v;
	size_t i;

	if (s[0] < 0x80) {
		*n = 1;
		return s[0];
	}
	*n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	v = s[0] & (0x3f >> (*n - 1));
	for (i = 1; i < *n && (s[i] & 0xc0) == 0x80; i++)
		v = (v << 6) | (s[i] & 0x3f);
	*n = i; /* sanitised text is valid UTF-8; this only guards */
	return v;
}

/*
 * utf8_xtext - s (clean UTF-8) as utf-8-addr-xtext (RFC 6533 3): QCHARs
 * as they are, everything else as \x{HEX}.  With keep_escapes, ASCII
 * other than space passes as it is (a value that already is that form).
 */
static char *
utf8_xtext(const char *s, int keep_escapes)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf b;
	size_t n;
	unsigned long cp;

	buf_init(&b);
	while (*p != '\0') {
		cp = utf8_decode(p, &n);
		if (is_qchar(*p) || (keep_escapes && *p > 0x20 && *p < 0x7f))
			buf_putc(&b, *p);
		else
			buf_printf(&b, "\\x{%lX}", cp);
		p += n;
	}
	buf_putc(&b, '\0');
	return b.data;
}

/* put_addr - "name: rfc822; addr", or utf-8 with escapes when not ASCII */
static void
put_addr(struct buf *out, const char *name, const char *addr)
{
	char *a = clean(addr), *v, *x;

	if (!util_has_8bit(a, strlen(a))) {
		v = xasprintf("rfc822; %s", a);
	} else {
		x = utf8_xtext(a, 0);
		v = xasprintf("utf-8; %s", x);
		free(x);
	}
	put_field(out, name, v);
	free(v);
	free(a);
}

/*
 * orcpt_text - the Original-Recipient value for an ORCPT= as received:
 * "rfc822;" with the xtext decoded (RFC 3464 2.3.1), "utf-8;" in its
 * 7-bit form; NULL when there is none or it is malformed
 */
static char *
orcpt_text(const char *orcpt)
{
	const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
	char *dec, *v, *c, *x;

	if (semi == NULL)
		return NULL;
	if (semi - orcpt == 6 && strncasecmp(orcpt, "rfc822", 6) == 0) {
		dec = xmalloc(strlen(semi + 1) + 1);
		v = xtext_decode(semi + 1, dec, strlen(semi + 1) + 1) == 0 ?
		    xasprintf("rfc822;%s", dec) : NULL;
		free(dec);
		return v;
	}
	if (semi - orcpt == 5 && strncasecmp(orcpt, "utf-8", 5) == 0) {
		c = clean(semi + 1);
		x = utf8_xtext(c, 1);
		v = xasprintf("utf-8;%s", x);
		free(x);
		free(c);
		return v;
	}
	return NULL;
}

/* the report */

struct bounce_ctx {
	const struct bounce_req *req;
	char *host;            /* hostname, cleaned */
	char *boundary;        /* NULL: not chosen yet */
	const char *orig;      /* the part of the original to return */
	size_t orig_len;
	int orig_full;         /* message/rfc822, not text/rfc822-headers */
};

/* status_ok - 1 for an enhanced status code "C.SSS.DDD" (RFC 3463 2) */
static int
status_ok(const char *s, size_t len)
{
	size_t i = 1, n;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	for (n = 0; n < 2; n++) {
		size_t d = 0;

		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			d++;
		if (d < 1 || d > 3 || (n == 0 && (i >= len || s[i] != '.')))
			return 0;
	}
	return i == len;
}

/*
 * rcpt_status - the Status: of a recipient: its own when well-formed,
 * else the enhanced code in its last error ("550 5.1.1 ..."), else the
 * default of the report's kind
 */
static char *
rcpt_status(const struct env_rcpt *r, enum bounce_kind kind)
{
	const char *e = r->last_error;
	size_t n;

	if (r->status != NULL && status_ok(r->status, strlen(r->status)))
		return xstrdup(r->status);
	if (e != NULL && strlen(e) > 4 && e[3] == ' ' && e[4] == e[0]) {
		n = strcspn(e + 4, " ");
		if (status_ok(e + 4, n))
			return xstrndup(e + 4, n);
	}
	if (kind == BOUNCE_FAILED)
		return xstrdup("5.0.0");
	return xstrdup(kind == BOUNCE_DELAYED ? "4.0.0" : "2.0.0");
}

/* is_smtp_reply - 1 when text starts like an SMTP reply: "550 ..." */
static int
is_smtp_reply(const char *t)
{
	return t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' &&
	    t[2] >= '0' && t[2] <= '9' &&
	    (t[3] == ' ' || t[3] == '-' || t[3] == '\0');
}

/* remote_name - the host of "host[ip]"; the ip when there is no name */
static char *
remote_name(const char *remote)
{
	char *c = clean(remote), *br = strchr(c, '['), *end;

	if (br != NULL && br != c) {
		*br = '\0';
		return c;
	}
	if (br != NULL && (end = strchr(br, ']')) != NULL) {
		*end = '\0';
		memmove(c, br + 1, strlen(br + 1) + 1);
	}
	return c;
}

static const char *const subjects[] = {
	[BOUNCE_FAILED] = "Undelivered Mail Returned to Sender",
	[BOUNCE_DELAYED] = "Delayed Mail (still being retried)",
	[BOUNCE_DELIVERED] = "Successful Mail Delivery Report",
	[BOUNCE_RELAYED] = "Successful Mail Delivery Report",
};

static const char *const actions[] = {
	[BOUNCE_FAILED] = "failed",
	[BOUNCE_DELAYED] = "delayed",
	[BOUNCE_DELIVERED] = "delivered",
	[BOUNCE_RELAYED] = "relayed",
};

/* what happened to one recipient, in words */
static const char *const outcomes[] = {
	[BOUNCE_FAILED] = "could not be delivered; the mail system has "
			  "given up.",
	[BOUNCE_DELAYED] = "has not been delivered yet; the mail system is "
			   "still trying.",
	[BOUNCE_DELIVERED] = "was delivered.",
	[BOUNCE_RELAYED] = "was passed on to a mail system that sends no "
			   "delivery reports, so this is the last you will "
			   "hear of it.",
};

/* header_end - the length of the header section of a message */
static size_t
header_end(const char *m, size_t len)
{
	size_t pos = 0;
	const char *nl;

	while (pos < len) {
		if (m[pos] == '\n' ||
		    (m[pos] == '\r' && pos + 1 < len && m[pos + 1] == '\n'))
			return pos; /* the empty line */
		nl = memchr(m + pos, '\n', len - pos);
		if (nl == NULL)
			return len;
		pos = (size_t)(nl - m) + 1;
	}
	return len;
}

/* choose_original - which part of the original goes into the report */
static void
choose_original(struct bounce_ctx *x)
{
	const struct bounce_req *r = x->req;

	x->orig = r->content;
	x->orig_len = r->content ? r->content_len : 0;
	x->orig_full = r->kind == BOUNCE_FAILED && !r->headers_only &&
	    r->env->ret != DSN_RET_HDRS && r->content_len <= BOUNCE_FULL_MAX;
	if (x->orig != NULL && !x->orig_full)
		x->orig_len = header_end(x->orig, x->orig_len);
}

/*
 * choose_boundary - "=_SEED/HOST", with ".N" added while the original
 * holds it; when every try is there, the original is left out
 */
static void
choose_boundary(struct bounce_ctx *x)
{
	char *seed = keep_chars(x->req->boundary_seed, ALNUM, 24);
	char *host = keep_chars(x->host, ALNUM ".-", 36);
	char *b;
	int i;

	for (i = 0; i < BOUNCE_BOUNDARY_TRIES; i++) {
		b = i == 0 ? xasprintf("=_%s/%s", seed, host) :
			     xasprintf("=_%s/%s.%d", seed, host, i);
		if (x->orig == NULL ||
		    memmem(x->orig, x->orig_len, b, strlen(b)) == NULL)
			break;
		free(b);
		b = NULL;
	}
	if (b == NULL) {
		x->orig = NULL;
		b = xasprintf("=_%s/%s", seed, host);
	}
	x->boundary = b;
	free(seed);
	free(host);
}

/* put_headers - the header section of the report */
static void
put_headers(struct bounce_ctx *x, struct buf *out)
{
	const struct bounce_req *r = x->req;
	char *id = keep_chars(r->boundary_seed, ALNUM, 64);
	char *v;

	v = xasprintf("MAILER-DAEMON@%s (Mail Delivery System)", x->host);
	put_field(out, "From", v);
	free(v);
	v = xasprintf("<%s>", r->to);
	put_field(out, "To", v);
	free(v);
	put_field(out, "Subject", subjects[r->kind]);
	put_date(out, "Date", r->now);
	v = xasprintf("<%s@%s>", id[0] ? id : "bounce", x->host);
	put_field(out, "Message-ID", v);
	free(v);
	put_field(out, "Auto-Submitted", "auto-replied");
	put_field(out, "MIME-Version", "1.0");
	v = xasprintf("multipart/report; report-type=delivery-status; "
	    "boundary=\"%s\"", x->boundary);
	put_field(out, "Content-Type", v);
	free(v);
	buf_puts(out, "\r\nThis is a MIME-encapsulated message.\r\n");
	free(id);
}

/* part_start - the boundary line and the first fields of a part */
static void
part_start(struct bounce_ctx *x, struct buf *out, const char *descr,
    const char *type)
{
	buf_printf(out, "\r\n--%s\r\n", x->boundary);
	put_field(out, "Content-Description", descr);
	put_field(out, "Content-Type", type);
}

/* intro - the opening paragraph of the text part */
static void
intro(struct bounce_ctx *x, struct buf *t)
{
	const struct bounce_req *r = x->req;
	char date[64];
	char *s;

	switch (r->kind) {
	case BOUNCE_FAILED:
		put_wrapped(t, "", "", "I'm sorry to have to tell you that "
		    "your message could not be delivered to one or more "
		    "recipients. The reason is given below for each of "
		    "them: either the receiving side refused the message, "
		    "or it could not be delivered before the mail system "
		    "had to give up.");
		break;
	case BOUNCE_DELAYED:
		util_rfc5322_date(r->retry_until, date, sizeof(date));
		s = xasprintf("This is only a warning; you do not need to "
		    "send the message again. Your message could not be "
		    "delivered yet to one or more recipients. The mail "
		    "system will keep trying until %s and will tell you if "
		    "it has to give up.", date);
		put_wrapped(t, "", "", s);
		free(s);
		break;
	case BOUNCE_DELIVERED:
	case BOUNCE_RELAYED:
		put_wrapped(t, "", "", "You asked to be told when your message "
		    "was delivered. This is the report on the recipients "
		    "below.");
		break;
	}
}

/* rcpt_text - the paragraph about one recipient in the text part */
static void
rcpt_text(struct bounce_ctx *x, struct buf *t, const struct env_rcpt *r)
{
	char *orig = orcpt_text(r->orcpt), *s, *host;

	buf_puts(t, "\r\n");
	s = xasprintf("<%s>: your message %s", r->addr,
	    outcomes[x->req->kind]);
	put_wrapped(t, "", BOUNCE_INDENT, s);
	free(s);
	if (orig != NULL) {
		s = xasprintf("(The original recipient was %s.)",
		    strchr(orig, ';') + 1);
		put_wrapped(t, BOUNCE_INDENT, BOUNCE_INDENT, s);
		free(s);
	}
	if (r->last_error == NULL) {
		free(orig);
		return;
	}
	host = r->remote ? clean(r->remote) : NULL;
	if (host != NULL && is_smtp_reply(r->last_error))
		s = xasprintf("The mail server %s said: %s", host,
		    r->last_error);
	else
		s = xasprintf("Reason: %s", r->last_error);
	put_wrapped(t, BOUNCE_INDENT, BOUNCE_INDENT, s);
	free(s);
	free(host);
	free(orig);
}

/* put_text_part - the words for a person (RFC 6522 3, first part) */
static void
put_text_part(struct bounce_ctx *x, struct buf *out)
{
	const struct bounce_req *r = x->req;
	struct buf t;
	char *s;
	size_t i;

	buf_init(&t);
	s = xasprintf("This is the mail system at host %s.", x->host);
	put_wrapped(&t, "", "", s);
	free(s);
	buf_puts(&t, "\r\n");
	intro(x, &t);
	for (i = 0; i < r->nrcpts; i++)
		rcpt_text(x, &t, &r->env->rcpts[r->rcpts[i]]);
	if (x->orig != NULL) {
		buf_puts(&t, "\r\n");
		put_wrapped(&t, "", "", x->orig_full ?
		    "Your message is attached below." :
		    "The header of your message is attached below.");
	}
	if (util_has_8bit(t.data, t.len)) {
		part_start(x, out, "Notification",
		    "text/plain; charset=utf-8");
		put_field(out, "Content-Transfer-Encoding", "8bit");
	} else {
		part_start(x, out, "Notification",
		    "text/plain; charset=us-ascii");
	}
	buf_puts(out, "\r\n");
	buf_append(out, t.data, t.len);
	buf_free(&t);
}

/* put_diagnostic - Diagnostic-Code: smtp for a reply, X-tern for words */
static void
put_diagnostic(struct buf *out, const char *err)
{
	char *v = xasprintf("%s; %s", is_smtp_reply(err) ? "smtp" : "X-tern",
	    err);

	put_field(out, "Diagnostic-Code", v);
	free(v);
}

/* rcpt_fields - the per-recipient fields (RFC 3464 2.3) */
static void
rcpt_fields(struct bounce_ctx *x, struct buf *out, const struct env_rcpt *r)
{
	const struct bounce_req *q = x->req;
	char *orig = orcpt_text(r->orcpt), *status = rcpt_status(r, q->kind);
	char *v;

	buf_puts(out, "\r\n");
	if (orig != NULL)
		put_field(out, "Original-Recipient", orig);
	put_addr(out, "Final-Recipient", r->addr);
	put_field(out, "Action", actions[q->kind]);
	put_field(out, "Status", status);
	if (r->remote != NULL) {
		char *name = remote_name(r->remote);

		v = xasprintf("dns; %s", name);
		put_field(out, "Remote-MTA", v);
		free(v);
		free(name);
	}
	if (r->last_error != NULL)
		put_diagnostic(out, r->last_error);
	if (r->tries > 0)
		put_date(out, "Last-Attempt-Date", q->now);
	if (q->kind == BOUNCE_DELAYED)
		put_date(out, "Will-Retry-Until", q->retry_until);
	free(orig);
	free(status);
}

/* put_status_part - message/delivery-status (RFC 3464 2.2, 2.3) */
static void
put_status_part(struct bounce_ctx *x, struct buf *out)
{
	const struct envelope *e = x->req->env;
	char *v, *dec;
	size_t i;

	part_start(x, out, "Delivery report", "message/delivery-status");
	buf_puts(out, "\r\n");
	v = xasprintf("dns; %s", x->host);
	put_field(out, "Reporting-MTA", v);
	free(v);
	if (e->id[0] != '\0')
		put_field(out, "X-Tern-Queue-ID", e->id);
	if (e->envid != NULL) {
		/* RFC 3461 4.4: the ENVID travels as xtext, the report
		 * carries it decoded */
		dec = xmalloc(strlen(e->envid) + 1);
		if (xtext_decode(e->envid, dec, strlen(e->envid) + 1) == 0)
			put_field(out, "Original-Envelope-Id", dec);
		free(dec);
	}
	put_date(out, "Arrival-Date", e->arrival);
	for (i = 0; i < x->req->nrcpts; i++)
		rcpt_fields(x, out, &e->rcpts[x->req->rcpts[i]]);
}

/* put_original - the original message or its header section */
static void
put_original(struct bounce_ctx *x, struct buf *out)
{
	const char *m = x->orig;
	size_t len = x->orig_len;

	if (x->orig_full)
		part_start(x, out, "Undelivered Message", "message/rfc822");
	else
		part_start(x, out, "Message Headers", "text/rfc822-headers");
	if (util_has_8bit(m, len))
		put_field(out, "Content-Transfer-Encoding", "8bit");
	buf_puts(out, "\r\n");
	buf_append(out, m, len);
	if (len > 0 && m[len - 1] != '\n')
		buf_puts(out, "\r\n");
}

/* check_req - a malformed request is a bug in the caller */
static void
check_req(const struct bounce_req *r)
{
	size_t i;

	if (r->env == NULL || r->hostname == NULL || r->to == NULL ||
	    (unsigned)r->kind > BOUNCE_RELAYED)
		panic("bounce_build: incomplete request");
	for (i = 0; i < r->nrcpts; i++)
		if (r->rcpts[i] >= r->env->nrcpts ||
		    r->env->rcpts[r->rcpts[i]].addr == NULL)
			panic("bounce_build: no recipient %zu", r->rcpts[i]);
}

/* bounce_build - append the report as a complete message to out */
void
bounce_build(const struct bounce_req *req, struct buf *out)
{
	struct bounce_ctx x;

	check_req(req);
	memset(&x, 0, sizeof(x));
	x.req = req;
	x.host = clean(req->hostname);
	choose_original(&x);
	choose_boundary(&x);
	put_headers(&x, out);
	put_text_part(&x, out);
	put_status_part(&x, out);
	if (x.orig != NULL)
		put_original(&x, out);
	buf_printf(out, "\r\n--%s--\r\n", x.boundary);
	free(x.boundary);
	free(x.host);
}

/*
 * smtp_data.c - the DATA byte stream: strict CRLF framing, the end-of-data
 * marker, dot-unstuffing and the accounting of the content (line lengths,
 * bare CR/LF, 8-bit and NUL octets, Received: headers).
 *
 * RFC 5321 4.1.1.4 (DATA), 4.5.2 (transparency), 4.5.3.1.6 (text line
 * length); RFC 3030 (BDAT content gets the same accounting).
 *
 * Two layers.  The framing layer is a state machine over the wire bytes:
 * only a "." at a real line start (after CR LF, or the very first byte,
 * since the 354 reply counts as the line before) is special, and only
 * CR LF "." CR LF ends the message.  Runs of ordinary bytes are found with
 * memchr and appended in one piece.  The accounting layer sees exactly the
 * content bytes appended to the output (unstuffed), so DATA and BDAT share
 * it; for the line-length count any LF ends a line.
 *
 * struct smtp_data has one int of internal state; it holds the framing
 * state in its low bits and three accounting bits above them, so the
 * public struct did not need to grow.
 *
 * The pace of a transfer (struct smtp_pace, at the end) is the minimum
 * rate DATA and BDAT content must arrive at (limits data-rate=): a credit
 * of time that octets buy, so the session needs one deadline, not a
 * reckoning per window.
 */
#include "smtp_data.h"

#include <string.h>

/* framing states, in the low bits of d->state */
enum {
	DS_BOL = 0, /* at a real line start: a '.' here is special */
	DS_TEXT,    /* inside a line */
	DS_CR,	    /* a CR was the last wire byte (already emitted) */
	DS_DOT,	    /* "." at a line start was read (held back) */
	DS_DOT_CR,  /* "." CR at a line start was read (both held back) */
	DS_END	    /* CR LF "." CR LF was read */
};
#define DS_MASK 0x0f

/* accounting bits, above the framing state */
#define DA_CR 0x10	 /* the last content octet was a CR */
#define DA_HDR_DONE 0x20 /* the empty line after the header was seen */
#define DA_HDR_SKIP 0x40 /* the current line is no header we notice */


static int
framing(const struct smtp_data *d)
{
	return d->state & DS_MASK;
}

static void
set_framing(struct smtp_data *d, int s)
{
	d->state = (d->state & ~DS_MASK) | s;
}

static int
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* acct_bare_cr - a CR not followed by LF; a CR ending p is decided later */
static void
acct_bare_cr(struct smtp_data *d, const unsigned char *p, size_t n, int prev_cr)
{
	const unsigned char *cr = p, *end = p + n;

	if (prev_cr && p[0] != '\n') {
		d->flags |= SMTP_DATA_BARE_CR;
		return;
	}
	while ((cr = memchr(cr, '\r', (size_t)(end - cr))) != NULL) {
		if (cr + 1 < end && cr[1] != '\n') {
			d->flags |= SMTP_DATA_BARE_CR;
			return;
		}
		cr++;
		if (cr == end)
			break;
	}
}

/* acct_flags - the flags that do not depend on lines, over a whole run */
static void
acct_flags(struct smtp_data *d, const unsigned char *p, size_t n, int prev_cr)
{
	if (!(d->flags & SMTP_DATA_8BIT) && util_has_8bit(p, n))
		d->flags |= SMTP_DATA_8BIT;
	if (!(d->flags & SMTP_DATA_NUL) && memchr(p, '\0', n) != NULL)
		d->flags |= SMTP_DATA_NUL;
	if (!(d->flags & SMTP_DATA_BARE_CR))
		acct_bare_cr(d, p, n, prev_cr);
}

/* header fields noticed at the top: counted or flagged */
#define DA_CAND_RCVD 0x100
#define DA_CAND_MSGID 0x200
#define DA_CAND_DATE 0x400
#define DA_CAND_ALL (DA_CAND_RCVD | DA_CAND_MSGID | DA_CAND_DATE)

static const struct {
	const char *name; /* lower case, with the colon */
	size_t len;
	int cand;
} header_names[] = {
	{ "received:", 9, DA_CAND_RCVD },
	{ "message-id:", 11, DA_CAND_MSGID },
	{ "date:", 5, DA_CAND_DATE },
};

static void
header_seen(struct smtp_data *d, int cand)
{
	if (cand == DA_CAND_RCVD)
		d->headers_received++;
	else if (cand == DA_CAND_MSGID)
		d->flags |= SMTP_DATA_HAS_MSGID;
	else
		d->flags |= SMTP_DATA_HAS_DATE;
}

/* acct_header - match the start of a header line against the names we
 * notice; every name still possible is a candidate bit in d->state */
static void
acct_header(struct smtp_data *d, const unsigned char *p, size_t n)
{
	size_t pos = d->linelen, i, k;

	if (d->state & (DA_HDR_DONE | DA_HDR_SKIP))
		return;
	if (pos == 0)
		d->state |= DA_CAND_ALL;
	for (i = 0; i < n; i++, pos++) {
		for (k = 0; k < sizeof(header_names) / sizeof(header_names[0]);
		    k++) {
			int cand = header_names[k].cand;

			if (!(d->state & cand))
				continue;
			if (ascii_lower(p[i]) != header_names[k].name[pos])
				d->state &= ~cand;
			else if (pos + 1 == header_names[k].len) {
				header_seen(d, cand);
				d->state &= ~cand;
			}
		}
		if (!(d->state & DA_CAND_ALL)) {
			d->state |= DA_HDR_SKIP;
			return;
		}
	}
}

/*
 * acct_line - p[0..n) is part of one line and ends it when its last octet
 * is LF; prev_cr says whether the octet before p[0] was a CR.
 */
static void
acct_line(struct smtp_data *d, const unsigned char *p, size_t n, int prev_cr,
    uint64_t off)
{
	int crlf;

	acct_header(d, p, n);
	/* saturate: a BDAT stream without LF may be longer than size_t */
	d->linelen = n > SIZE_MAX - d->linelen ? SIZE_MAX : d->linelen + n;
	if (d->linelen > d->maxline)
		d->flags |= SMTP_DATA_LONG_LINE;
	if (p[n - 1] != '\n')
		return;
	crlf = n >= 2 ? p[n - 2] == '\r' : prev_cr;
	if (!crlf)
		d->flags |= SMTP_DATA_BARE_LF;
	/* an empty line ("\r\n" or a bare "\n") ends the header */
	if (!(d->state & DA_HDR_DONE) &&
	    (d->linelen == 1 || (d->linelen == 2 && crlf))) {
		d->state |= DA_HDR_DONE;
		d->header_end = off + n - d->linelen;
	}
	d->state &= ~DA_HDR_SKIP;
	d->linelen = 0;
}

/* data_account - account for content octets, in any split */
static void
data_account(struct smtp_data *d, const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in, *lf;
	int prev_cr = (d->state & DA_CR) != 0;
	size_t i = 0, seg;

	if (len == 0)
		return;
	acct_flags(d, p, len, prev_cr);
	while (i < len) {
		lf = memchr(p + i, '\n', len - i);
		seg = lf != NULL ? (size_t)(lf - (p + i)) + 1 : len - i;
		acct_line(d, p + i, seg, i > 0 ? p[i - 1] == '\r' : prev_cr,
		    d->octets + i);
		i += seg;
	}
	if (p[len - 1] == '\r')
		d->state |= DA_CR;
	else
		d->state &= ~DA_CR;
	d->octets = len > UINT64_MAX - d->octets ? UINT64_MAX : d->octets + len;
}

/* emit - content octets: account for them and append them */
static void
emit(struct smtp_data *d, struct buf *out, const char *p, size_t n)
{
	if (n == 0)
		return;
	data_account(d, p, n);
	buf_append(out, p, n);
}

/*
 * data_text - the longest run of ordinary content from in[0]: it stops
 * after a CR LF that is followed by '.' or by the end of the input, or
 * after a CR that ends the input.  Bare CR and bare LF are content.
 */
static size_t
data_text(struct smtp_data *d, const char *in, size_t len, struct buf *out)
{
	const char *cr;
	size_t i = 0;
	int next = DS_TEXT;

	while ((cr = memchr(in + i, '\r', len - i)) != NULL) {
		i = (size_t)(cr - in) + 1;
		if (i == len) {
			next = DS_CR;
			break;
		}
		if (in[i] != '\n')
			continue;
		i++;
		if (i == len || in[i] == '.') {
			next = DS_BOL;
			break;
		}
	}
	if (cr == NULL)
		i = len;
	emit(d, out, in, i);
	set_framing(d, next);
	return i;
}

/* data_step - one framing step; returns the octets consumed (may be 0) */
static size_t
data_step(struct smtp_data *d, const char *in, size_t len, struct buf *out)
{
	switch (framing(d)) {
	case DS_BOL:
		set_framing(d, in[0] == '.' ? DS_DOT : DS_TEXT);
		return in[0] == '.' ? 1 : 0;
	case DS_DOT:
		/* the dot is dropped either way: end marker or stuffing */
		set_framing(d, in[0] == '\r' ? DS_DOT_CR : DS_TEXT);
		return in[0] == '\r' ? 1 : 0;
	case DS_DOT_CR:
		if (in[0] == '\n') {
			set_framing(d, DS_END);
			return 1;
		}
		emit(d, out, "\r", 1); /* ".\rX": the CR is content */
		set_framing(d, DS_TEXT);
		return 0;
	case DS_CR:
		if (in[0] != '\n') {
			set_framing(d, DS_TEXT);
			return 0;
		}
		emit(d, out, "\n", 1);
		set_framing(d, DS_BOL);
		return 1;
	case DS_TEXT:
		return data_text(d, in, len, out);
	}
	panic("smtp_data: bad state %d", d->state);
}

/* smtp_data_init - ready to read a message body after the 354 reply */
void
smtp_data_init(struct smtp_data *d, size_t maxline)
{
	memset(d, 0, sizeof(*d));
	d->maxline = maxline ? maxline : SMTP_DATA_LINE_MAX;
	d->state = DS_BOL;
	d->header_end = UINT64_MAX;
}

/* smtp_data_feed - consume DATA stream bytes, append unstuffed content */
size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out,
	       int *done)
{
	size_t i = 0;

	while (i < len && framing(d) != DS_END)
		i += data_step(d, in + i, len - i, out);
	*done = framing(d) == DS_END;
	return i;
}

/* smtp_data_chunk - account for raw BDAT content */
void
smtp_data_chunk(struct smtp_data *d, const char *in, size_t len)
{
	data_account(d, in, len);
}

/* smtp_pace_start - a transfer begins at now_ms with a full credit */
void
smtp_pace_start(struct smtp_pace *p, uint64_t rate, int64_t window_ms,
    int64_t now_ms)
{
	if (rate < 1)
		rate = 1;
	if (rate > SMTP_PACE_RATE_MAX)
		rate = SMTP_PACE_RATE_MAX;
	if (window_ms < 0)
		window_ms = 0;
	if (window_ms > SMTP_PACE_WINDOW_MAX)
		window_ms = SMTP_PACE_WINDOW_MAX;
	p->rate = rate;
	p->window_ms = window_ms;
	p->at_ms = now_ms;
	p->credit = window_ms * (int64_t)rate; /* < 2^60 by the bounds */
	p->octets = 0;
}

/* pace_elapse - use up the credit for the time since it was last looked
 * at; once run out, at_ms stays the moment it ran out.  Time going back
 * (it never should) is ignored. */
static void
pace_elapse(struct smtp_pace *p, int64_t now_ms)
{
	int64_t dt = now_ms - p->at_ms, rate = (int64_t)p->rate;

	if (dt <= 0 || p->credit == 0)
		return;
	if (dt > p->window_ms || dt * rate >= p->credit) {
		p->at_ms += (p->credit + rate - 1) / rate;
		p->credit = 0;
		return;
	}
	p->at_ms = now_ms;
	p->credit -= dt * rate;
}

/* smtp_pace_octets - n octets arrived at now_ms */
void
smtp_pace_octets(struct smtp_pace *p, uint64_t n, int64_t now_ms)
{
	int64_t full = p->window_ms * (int64_t)p->rate;

	p->octets += n;
	pace_elapse(p, now_ms);
	if (p->credit == 0)
		return; /* run out: the deadline has passed for good */
	if (n >= (uint64_t)(full / 1000) + 1)
		p->credit = full;
	else
		p->credit += (int64_t)n * 1000;
	if (p->credit > full)
		p->credit = full;
}

/* smtp_pace_deadline - when the credit runs out */
int64_t
smtp_pace_deadline(const struct smtp_pace *p)
{
	return p->at_ms + (p->credit + (int64_t)p->rate - 1) / (int64_t)p->rate;
}

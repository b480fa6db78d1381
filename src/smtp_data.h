/*
 * smtp_data.h - the DATA byte stream: strict CRLF framing, the end-of-data
 * marker, dot-unstuffing and line-length policing (RFC 5321 4.1.1.4, 4.5.2,
 * 4.5.3.1.6).  Pure: no I/O.
 *
 * Only CR LF "." CR LF ends a message.  A bare LF or a bare CR never ends a
 * line for the end-of-data search and never starts a dot-stuffed line (SMTP
 * smuggling, CVE-2023-51764 class); such bytes are kept as data and counted
 * in the flags.  For the line-length limit any LF ends a line, because the
 * delivered form turns a bare LF into a line break.
 *
 * Also the pace of a transfer: the minimum rate its octets must arrive at.
 */
#ifndef TERN_SMTP_DATA_H
#define TERN_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* default limit of a text line, with its CRLF (RFC 5321 4.5.3.1.6) */
#define SMTP_DATA_LINE_MAX 1000

enum smtp_data_flags {
	SMTP_DATA_BARE_LF = 0x01,  /* at least one LF not after CR */
	SMTP_DATA_BARE_CR = 0x02,  /* at least one CR not before LF */
	SMTP_DATA_LONG_LINE = 0x04, /* a line over the limit */
	SMTP_DATA_8BIT = 0x08,     /* an octet >= 0x80 */
	SMTP_DATA_NUL = 0x10,      /* a NUL octet */
	SMTP_DATA_HAS_MSGID = 0x20, /* a Message-ID: header field */
	SMTP_DATA_HAS_DATE = 0x40  /* a Date: header field */
};

struct smtp_data {
	size_t maxline;   /* line limit including CRLF */
	size_t linelen;   /* octets in the current line so far */
	int state;        /* internal */
	unsigned flags;   /* enum smtp_data_flags seen so far */
	uint64_t octets;  /* content octets produced */
	size_t headers_received; /* "Received:" header lines seen at the top */
	uint64_t header_end; /* content offset of the empty line that ends
	                      * the header section; UINT64_MAX until seen */
};

/* smtp_data_init - ready to read a message body after the 354 reply */
void smtp_data_init(struct smtp_data *d, size_t maxline);

/*
 * smtp_data_feed - consume up to len bytes of the DATA stream; the content
 * (unstuffed, CRLF kept as sent, without the final ".CRLF") is appended to
 * out.  Returns the number of bytes consumed; *done becomes 1 when the
 * end-of-data line was consumed, and the bytes after it are left unconsumed
 * (they are the next, pipelined, commands).
 */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    struct buf *out, int *done);

/*
 * smtp_data_chunk - account for raw BDAT content (RFC 3030: no stuffing, no
 * end marker): line lengths and flags only.  The caller copies the bytes.
 */
void smtp_data_chunk(struct smtp_data *d, const char *in, size_t len);

/*
 * The pace of a transfer (DATA, the chunks of BDAT): a minimum rate, kept
 * as a credit of time as Postfix's smtpd_min_data_rate does.  A transfer
 * starts with a full credit of window; time passing uses it up, each octet
 * received adds 1/rate of a second, and it never holds more than window.
 * A client sending at least rate octets a second keeps it full; one that
 * stops runs out after window, one sending r < rate octets a second after
 * window / (1 - r / rate).  Run out is final: later octets add nothing.
 * Kept in rate-milliseconds (a millisecond is rate of them, an octet 1000),
 * so no rounding accumulates.  Pure: the caller passes the time.
 */
struct smtp_pace {
	uint64_t rate;     /* octets a second, at least 1 */
	int64_t window_ms; /* the most credit */
	int64_t at_ms;     /* when credit was last brought up to date */
	int64_t credit;    /* rate-milliseconds; 0: run out */
	uint64_t octets;   /* octets received in this transfer */
};

/* the bounds smtp_pace_start keeps rate and window in (no overflow) */
#define SMTP_PACE_RATE_MAX (UINT64_C(1) << 30)
#define SMTP_PACE_WINDOW_MAX (INT64_C(7) * 24 * 3600 * 1000)

/* smtp_pace_start - a transfer begins at now_ms with a full credit */
void smtp_pace_start(struct smtp_pace *p, uint64_t rate, int64_t window_ms,
    int64_t now_ms);

/* smtp_pace_octets - n octets arrived at now_ms */
void smtp_pace_octets(struct smtp_pace *p, uint64_t n, int64_t now_ms);

/* smtp_pace_deadline - when the credit runs out, in the caller's ms */
int64_t smtp_pace_deadline(const struct smtp_pace *p);

#endif

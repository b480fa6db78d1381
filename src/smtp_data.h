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

#endif

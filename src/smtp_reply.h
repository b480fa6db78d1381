/*
 * smtp_reply.h - replies from a remote SMTP or LMTP server, read as the
 * client reads them: CRLF-framed lines, assembled into one bounded reply
 * (RFC 5321 4.2, 4.2.1), its enhanced status (RFC 3463 2, RFC 2034), a
 * diagnostic safe for a log line, and the extensions an EHLO or LHLO reply
 * announces (RFC 5321 4.1.1.1).
 *
 * Pure: no I/O, no libevent.  The outbound client (mta_session.c) feeds it
 * the bytes of its socket; the unit tests and fuzz/fuzz_reply.c feed it
 * theirs.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* RFC 5321 4.5.3.1.5 allows 512 octets per reply line; real servers send
 * longer ones (long EHLO AUTH lists, verbose errors): we take up to this,
 * without its CRLF */
#define SMTP_REPLY_LINE_MAX 2048
/* a multiline reply of more lines or text octets is malformed */
#define SMTP_REPLY_LINES_MAX 100
#define SMTP_REPLY_MAX (64 * 1024)
/* the diagnostic "CODE text text...", with its NUL */
#define SMTP_REPLY_DIAG_MAX 512
/* "c.sss.ddd" with its NUL, and room to spare */
#define SMTP_REPLY_STATUS_MAX 16

struct smtp_reply {
	int code;                          /* 200..599; 0 before a line */
	char status[SMTP_REPLY_STATUS_MAX]; /* enhanced status: the server's
	                                    * when it gave one of the code's
	                                    * class, else "C.0.0" */
	struct buf text;     /* each line's text after "CODE-", '\n' after each */
	size_t nlines;
	char diag[SMTP_REPLY_DIAG_MAX];    /* sanitised "CODE text text..." */
};

/* the service extensions of an EHLO (LHLO) reply that tern uses */
struct smtp_ext {
	unsigned pipelining : 1;  /* RFC 2920 */
	unsigned size : 1;        /* RFC 1870 */
	unsigned eightbit : 1;    /* RFC 6152 */
	unsigned smtputf8 : 1;    /* RFC 6531 */
	unsigned dsn : 1;         /* RFC 3461 */
	unsigned starttls : 1;    /* RFC 3207 */
	unsigned enhanced : 1;    /* RFC 2034 */
	unsigned auth_plain : 1;  /* RFC 4954, 4616 */
	unsigned auth_login : 1;
	uint64_t size_max;        /* 0: no limit announced (or unreadable) */
};

/*
 * smtp_reply_getline - the first line of in[0..n): 1 with its length
 * (without the CRLF) in *linelen and the octets it takes (with the CRLF)
 * in *used; 0 when more input is needed; -1 when the line is longer than
 * SMTP_REPLY_LINE_MAX.  Only CRLF ends a line: a bare CR or LF is part of
 * it.  Looks at most SMTP_REPLY_LINE_MAX + 2 octets.
 */
int smtp_reply_getline(const char *in, size_t n, size_t *linelen,
    size_t *used);

/* smtp_reply_init - an empty reply */
void smtp_reply_init(struct smtp_reply *r);
/* smtp_reply_free - release its memory */
void smtp_reply_free(struct smtp_reply *r);
/* smtp_reply_reset - empty again, for the next reply */
void smtp_reply_reset(struct smtp_reply *r);
/*
 * smtp_reply_add_line - one line ("250-text", "250 text", "250"): 1 when
 * the reply is complete, 0 when more lines follow, -1 when malformed (no
 * code 2xx-5xx, a code other than the first line's, no ' ' or '-' after
 * the code, more than SMTP_REPLY_LINES_MAX lines or SMTP_REPLY_MAX octets).
 * The line need not be NUL-terminated and may hold any octet.
 */
int smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len);
/* smtp_reply_finish - a complete reply's status and diag */
void smtp_reply_finish(struct smtp_reply *r);
/* smtp_reply_class - 2, 3, 4 or 5 */
int smtp_reply_class(const struct smtp_reply *r);
/*
 * smtp_reply_enhanced - the length of the enhanced status "c.s.d" (each
 * of s and d 1 to 3 digits) at the start of the NUL-terminated t, followed
 * by ' ' or '\n', whose class c is cls; 0 when there is none.
 */
size_t smtp_reply_enhanced(const char *t, int cls);

/*
 * smtp_ehlo_keyword - one line of an EHLO reply's text ("SIZE 1000",
 * "AUTH PLAIN LOGIN"; any case) added to x; a line holding a NUL, or an
 * unknown keyword, is ignored
 */
void smtp_ehlo_keyword(struct smtp_ext *x, const char *line, size_t len);
/* smtp_reply_ehlo - the extensions of a whole EHLO reply (its first line
 * is the server's name and greeting) */
void smtp_reply_ehlo(const struct smtp_reply *r, struct smtp_ext *x);

#endif

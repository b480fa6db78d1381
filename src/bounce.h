/*
 * bounce.h - delivery status notifications (RFC 3464, RFC 3461, RFC 6522):
 * the message that tells the envelope sender what became of recipients.
 * Pure: builds the text; the scheduler queues it.
 */
#ifndef TERN_BOUNCE_H
#define TERN_BOUNCE_H

#include <stddef.h>

#include "envelope.h"
#include "util.h"

enum bounce_kind {
	BOUNCE_FAILED = 0, /* Action: failed */
	BOUNCE_DELAYED,    /* Action: delayed (a warning; still trying) */
	BOUNCE_DELIVERED,  /* Action: delivered (NOTIFY=SUCCESS) */
	BOUNCE_RELAYED     /* Action: relayed (NOTIFY=SUCCESS to a peer
	                    * without DSN) */
};

/*
 * An original message larger than this is returned as its header section
 * only (text/rfc822-headers), even when RET=FULL asked for all of it: a
 * report should reach the sender even where a large message was refused.
 */
#define BOUNCE_FULL_MAX (10 * 1024 * 1024)

struct bounce_req {
	const char *hostname;   /* Reporting-MTA, From: MAILER-DAEMON@ */
	const char *boundary_seed; /* unique text for the MIME boundary and
	                            * Message-ID (e.g. a fresh queue id) */
	int64_t now;            /* unix seconds, for Date: */
	const struct envelope *env; /* the original message's envelope */
	const size_t *rcpts;    /* indices of the recipients to report */
	size_t nrcpts;
	enum bounce_kind kind;
	const char *content;    /* the original message (CRLF), or NULL */
	size_t content_len;
	int headers_only;       /* return only the header section */
	int64_t retry_until;    /* BOUNCE_DELAYED: arrival + lifetime */
	const char *to;         /* the recipient of the report: the envelope
	                         * sender, or postmaster for a double bounce */
};

/*
 * bounce_build - append the report as a complete RFC 5322 message with
 * CRLF line ends to out: multipart/report; report-type=delivery-status
 * with a human-readable part, a message/delivery-status part (Reporting-
 * MTA, Arrival-Date, Original-Envelope-Id; per recipient Original-
 * Recipient, Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code:
 * smtp; ..., Last-Attempt-Date, Will-Retry-Until for delays) and the
 * original message (message/rfc822) or its headers
 * (text/rfc822-headers).  Every line is at most 998 octets.
 */
void bounce_build(const struct bounce_req *req, struct buf *out);

/*
 * xtext_decode - RFC 3461 4: "+HH" to octets.  Returns 0, or -1 for bad
 * xtext.  out needs strlen(in) + 1.
 */
int xtext_decode(const char *in, char *out, size_t outlen);
/* xtext_valid - 1 when s is well-formed xtext */
int xtext_valid(const char *s);

/* RFC 3461 4.4: ENVID= is at most 100 characters */
#define DSN_ENVID_MAX 100
/* RFC 3461 4.2: "The entire ORCPT parameter MAY be up to 500 characters" */
#define DSN_ORCPT_MAX 500

/*
 * dsn_notify_parse - the value of NOTIFY= (RFC 3461 4.1): NEVER alone, or
 * a comma list of SUCCESS, FAILURE and DELAY (any case) to DSN_NOTIFY_*
 * bits.  Returns 0, or -1 when malformed.
 */
int dsn_notify_parse(const char *s, unsigned *bits);
/*
 * dsn_orcpt_valid - 1 when s is an ORCPT= value we accept (RFC 3461 4.2,
 * RFC 6533 3): "rfc822;" xtext, or "utf-8;" utf-8-addr-xtext (with raw
 * UTF-8, utf-8-addr-unitext, only when utf8_ok), at most DSN_ORCPT_MAX
 * octets, the address not empty
 */
int dsn_orcpt_valid(const char *s, int utf8_ok);

#endif

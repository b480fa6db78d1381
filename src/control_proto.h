/*
 * control_proto.h - the control socket's protocol, pure: requests parsed,
 * answers formatted.  The socket ($home/state/control.sock) is a trust
 * boundary (any member of control-group may write to it), so a request is
 * one line of at most CONTROL_LINE_MAX octets, printable ASCII, a verb
 * from one table and at most one argument checked by the verb's rule:
 *
 *   list [json]          the queue, one line (or JSON object) a message
 *   show ID              a message's envelope and header section
 *   flush [ID|@domain]   try now (everything, one message, one domain)
 *   hold ID  release ID  stop / resume a message's delivery
 *   delete ID            remove a message without a report
 *   bounce ID            give up now: failure report to the sender
 *   status [json]        uptime, sessions, queue sizes, counters
 *
 * The answer is a status line, "ok" or "error KIND SENTENCE" (KIND one of
 * usage, notfound, busy, denied, failed, state), and after "ok" lines of data
 * dot-stuffed as in SMTP (a line that starts with "." gets one more) and
 * ended by a line ".", so the client can tell a whole answer from a cut.
 * See tern(8) for the formats of the data.
 */
#ifndef TERN_CONTROL_PROTO_H
#define TERN_CONTROL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "util.h"

/* a request line, LF included */
#define CONTROL_LINE_MAX 512
/* a domain in "flush @domain" (RFC 1035 2.3.4) */
#define CONTROL_DOMAIN_MAX 255

enum control_verb {
	CTL_LIST,
	CTL_SHOW,
	CTL_FLUSH,
	CTL_HOLD,
	CTL_RELEASE,
	CTL_DELETE,
	CTL_BOUNCE,
	CTL_STATUS
};

/* error kinds of a status line; the client's exit status follows them */
enum control_err {
	CTL_OK = 0,
	CTL_E_USAGE,     /* a request we do not understand */
	CTL_E_NOTFOUND,  /* no such message */
	CTL_E_BUSY,      /* being delivered now: try again */
	CTL_E_DENIED,    /* not allowed to use the socket */
	CTL_E_FAILED,    /* the server could not do it */
	CTL_E_STATE      /* not in that state: flush of a held message */
};

struct control_req {
	enum control_verb verb;
	int json;                          /* list json, status json */
	char qid[QID_SIZE];                /* show, hold...: the id; flush:
	                                    * "" for all or the domain's */
	char domain[CONTROL_DOMAIN_MAX + 1]; /* flush @domain, lower case */
};

/*
 * control_parse - one request line (LF included or not; nothing after it).
 * 0 with *req filled, or -1 with a sentence for the client in err.
 */
int control_parse(const char *line, size_t len, struct control_req *req,
    char *err, size_t errlen);
/* control_verb_name - "list", "show", ... */
const char *control_verb_name(enum control_verb v);
/* control_err_name - "usage", "notfound", ...; "ok" for CTL_OK */
const char *control_err_name(enum control_err e);
/*
 * control_parse_status - read a status line: CTL_OK, or the error kind
 * with *text pointing at its sentence inside line.  -1 when the line is
 * not a status line.
 */
int control_parse_status(const char *line, enum control_err *err,
    const char **text);

/* control_put_line - append one data line (no LF in it), dot-stuffed */
void control_put_line(struct buf *out, const char *s, size_t len);
/* control_put_end - append the final "." */
void control_put_end(struct buf *out);

/* control_json_str - s as a JSON string (quotes, escapes); NULL: null */
void control_json_str(struct buf *out, const char *s);
/* control_iso_time - "2026-12-05T16:17:29Z" (UTC) of unix seconds t */
void control_iso_time(int64_t t, char *out, size_t outlen);

/* what the queue process knows of a message besides its envelope */
enum control_msg_state {
	CTL_MSG_PENDING,   /* a recipient is due (or never tried) */
	CTL_MSG_ACTIVE,    /* an attempt or an update is in flight */
	CTL_MSG_DEFERRED,  /* every waiting recipient waits for its time */
	CTL_MSG_HELD,      /* held by the administrator */
	CTL_MSG_DONE       /* nothing to deliver: reports still owed */
};

/* control_msg_state_of - the state a message is listed with, at now */
enum control_msg_state control_msg_state_of(const struct envelope *e,
    int active, int64_t now);
/* control_msg_state_name - "pending", "active", ... */
const char *control_msg_state_name(enum control_msg_state s);
/*
 * control_format_msg - one message of "list": a text line or a JSON
 * object (no LF) appended to out.  active: in delivery now.
 */
void control_format_msg(struct buf *out, const struct envelope *e,
    int active, int json, int64_t now);

#endif

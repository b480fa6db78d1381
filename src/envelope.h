/*
 * envelope.h - the envelope of one queued message and its file form.
 *
 * The envelope is what decides where mail goes (RFC 5321 envelope, never
 * the To:/From: headers): the sender, the recipients with their delivery
 * state, and facts about how the message arrived.  It is stored beside the
 * immutable content file as a small versioned text file, one "key value"
 * per line, so an administrator can read it with cat.  Pure: no I/O.
 */
#ifndef TERN_ENVELOPE_H
#define TERN_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define ENVELOPE_VERSION 1
/* queue ids: 14 characters of [0-9A-Z], sortable by arrival time */
#define QID_LEN 14
#define QID_SIZE (QID_LEN + 1)
/* an envelope file larger than this is refused as corrupt */
#define ENVELOPE_FILE_MAX (64 * 1024 * 1024)

enum rcpt_state {
	RCPT_PENDING = 0, /* not tried yet, or due now */
	RCPT_DEFERRED,    /* temporary failure; retry at next_try */
	RCPT_DELIVERED,
	RCPT_FAILED       /* permanent failure */
};

/* DSN (RFC 3461) NOTIFY= bits; 0 means not given (the default applies:
 * FAILURE and DELAY) */
#define DSN_NOTIFY_NEVER 0x01
#define DSN_NOTIFY_SUCCESS 0x02
#define DSN_NOTIFY_FAILURE 0x04
#define DSN_NOTIFY_DELAY 0x08

/* DSN RET= */
enum dsn_ret {
	DSN_RET_UNSET = 0, /* not given: a bounce returns the full message */
	DSN_RET_FULL,
	DSN_RET_HDRS
};

struct env_rcpt {
	char *addr;          /* mailbox as accepted: local@domain */
	enum rcpt_state state;
	int64_t next_try;    /* unix seconds; 0 = now */
	unsigned tries;
	char *last_error;    /* sanitised text of the last failure, or NULL:
	                      * the remote reply ("550 5.1.1 ...") or our
	                      * own words */
	char *status;        /* enhanced status of the last attempt, "4.4.1" */
	char *remote;        /* remote MTA of the last attempt: "host[ip]" */
	char *orcpt;         /* DSN ORCPT= as received (xtext, "rfc822;..."),
	                      * or NULL */
	unsigned notify;     /* DSN_NOTIFY_* bits */
	/* a recipient made by expanding another (aliases, .forward) */
	char *target;        /* "pipe:COMMAND", "file:/PATH", "mailbox" (the
	                      * user's own mailbox, no .forward), or NULL: the
	                      * address decides */
	char *alias;         /* the alias it came from, or NULL */
	char *owner;         /* the system user whose .forward made it, or
	                      * NULL */
	unsigned warned : 1; /* a delay warning went out for it */
	unsigned notified : 1; /* its final DSN (failure, or success on
	                        * NOTIFY=SUCCESS) went out */
};

struct envelope {
	unsigned version;
	char id[QID_SIZE];
	int64_t arrival;      /* unix seconds */
	char *sender;         /* "" for the null sender <> */
	char *helo;           /* sanitised */
	char *client_addr;    /* "127.0.0.1", "::1" */
	char *client_name;    /* reverse DNS name or "unknown" */
	char *protocol;       /* SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA */
	char *auth_user;      /* NULL when not authenticated */
	int64_t uid;          /* local drop (sendmail): the submitter's real
	                       * uid, from the drop file's owner; -1: none */
	char *envid;          /* DSN ENVID= as received (xtext), or NULL */
	enum dsn_ret ret;     /* DSN RET= */
	unsigned body_8bit : 1; /* BODY=8BITMIME */
	unsigned smtputf8 : 1;  /* SMTPUTF8 */
	unsigned hold : 1;      /* held by the administrator (tern queue
	                         * hold): never tried until released */
	uint64_t size;        /* octets of the content file */
	struct env_rcpt *rcpts;
	size_t nrcpts;
	size_t rcpt_cap;
};

/* envelope_init - an empty envelope of the current version */
void envelope_init(struct envelope *e);
/* envelope_free - release everything the envelope owns */
void envelope_free(struct envelope *e);
/* envelope_set - replace *field with a copy of value (NULL allowed) */
void envelope_set(char **field, const char *value);
/*
 * envelope_add_rcpt - append a pending recipient unless the same address
 * (compared case-insensitively) is already there.  Returns 1 when added,
 * 0 for a duplicate.
 */
int envelope_add_rcpt(struct envelope *e, const char *addr);
/*
 * envelope_add_expanded - append a pending recipient made by expanding
 * another: target, alias and owner as struct env_rcpt holds them (NULL
 * allowed), the DSN wishes of parent copied.  A recipient with the same
 * address and target already there is not added again.  Returns 1 when
 * added, 0 for a duplicate.
 */
int envelope_add_expanded(struct envelope *e, size_t parent, const char *addr,
    const char *target, const char *alias, const char *owner);
/* envelope_done - 1 when no recipient is pending or deferred */
int envelope_done(const struct envelope *e);

/* envelope_format - the file form, appended to out */
void envelope_format(const struct envelope *e, struct buf *out);
/*
 * envelope_parse - read the file form.  Returns 0, or -1 with a short
 * reason in err (unknown version, missing field, bad line...).  Unknown
 * keys are an error: a file we do not fully understand is quarantined,
 * never half-used.
 */
int envelope_parse(struct envelope *e, const char *data, size_t len,
    char *err, size_t errlen);

/* envelope_qid_ok - 1 when s[0..len) is a queue id: QID_LEN characters
 * of [0-9A-Z] */
int envelope_qid_ok(const char *s, size_t len);

/* envelope_state_name - "pending", "deferred", "delivered", "failed" */
const char *envelope_state_name(enum rcpt_state s);

#endif

/*
 * drop.h - the local drop: how `sendmail` hands a message to the queue.
 *
 * A local program's message reaches the spool through a drop file, as
 * Postfix's postdrop does: `tern sendmail` (running as the submitter)
 * writes the file below, the small setgid program tern-drop stores it in
 * $home/spool/drop/ (owned by the submitter's real uid), and the queue
 * process picks it up (pickup.c).  The submitter's identity is the file's
 * owner, never anything the file says; everything in it is untrusted and
 * read strictly here (pure: no I/O, fuzzed by fuzz/fuzz_drop.c).
 *
 * The file form:
 *
 *	tern-drop 1
 *	from <alice@example.org>	(optional, once; "<>": the null sender;
 *					 without it the sender is the
 *					 submitter's login@hostname)
 *	name Alice Liddell		(optional, once: -F, for a From: added)
 *	to <bob@example.net>		(one line per recipient, at least one)
 *					(an empty line)
 *	the message as given, LF or CRLF line ends
 *
 * drop_compose() turns a parsed file into the spool's content: a
 * Received: line naming the uid, CRLF line ends, Bcc: removed, and Date:,
 * Message-ID: and From: added when missing (RFC 5322 3.6).
 */
#ifndef TERN_DROP_H
#define TERN_DROP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define DROP_MAGIC "tern-drop 1"
/* the group tern-drop is setgid to, owner of spool/drop (scripts/
 * ensure-user.sh creates it) */
#define DROP_GROUP "terndrop"
/* tern-drop refuses to store more than this (the queue applies the
 * configured message-size besides) */
#define DROP_FILE_MAX ((uint64_t)1 << 30)
/* an address in a drop file or a header, at most (RFC 5321 4.5.3.1.3:
 * a path is 256 octets; a header's text may be longer before parsing) */
#define DROP_ADDR_MAX 256
/* -F full name, at most */
#define DROP_NAME_MAX 256
/* recipients of one drop file, at most (limits recipients= also applies) */
#define DROP_RCPTS_MAX 10000
/* the envelope lines before the message, at most */
#define DROP_HEAD_MAX ((size_t)DROP_RCPTS_MAX * (DROP_ADDR_MAX + 8) + 1024)

struct drop {
	char *sender;        /* NULL: not given; "" the null sender */
	char *name;          /* -F, or NULL */
	char **rcpts;        /* "local@domain" */
	size_t nrcpts;
	const char *content; /* into the parsed data */
	size_t content_len;
};

/*
 * drop_parse - read a drop file.  Returns 0, or -1 with a short reason in
 * err.  Strict: unknown or repeated keys, a malformed or relaying
 * address, more than max_rcpts recipients, a NUL in the message are all
 * errors.  d->content points into data.
 */
int drop_parse(struct drop *d, const char *data, size_t len, size_t max_rcpts,
    char *err, size_t errlen);
/* drop_free - release what drop_parse allocated */
void drop_free(struct drop *d);

/*
 * drop_addr_ok - 1 when addr ("local@domain", ASCII, no relay tricks) may
 * be a drop file's sender or recipient
 */
int drop_addr_ok(const char *addr);
/* drop_name_ok - 1 when name may be a drop file's full name */
int drop_name_ok(const char *name);

/* drop_format - the file form of a submission, appended to out */
void drop_format(struct buf *out, const char *sender, const char *name,
    char *const *rcpts, size_t nrcpts, const char *content, size_t len);

/* what the queue knows about a drop that the file cannot say */
struct drop_facts {
	long uid;              /* the file's owner */
	const char *sender;    /* the envelope sender chosen ("" for <>) */
	const char *from_addr; /* the address for a From: added */
	const char *hostname;
	const char *qid;
	int64_t now;           /* unix seconds */
};

/*
 * drop_compose - the spool content of a parsed drop, appended to out:
 * "Received: by HOST (tern, from userid UID) id QID; DATE", the header
 * section without Bcc: and with Date:, Message-ID: and From: added when
 * missing, the body; every line end CRLF, a leading mbox "From " line
 * dropped.
 */
void drop_compose(const struct drop *d, const struct drop_facts *f,
    struct buf *out);

/*
 * drop_header_rcpts - sendmail -t: the addresses of the To:, Cc: and Bcc:
 * fields of the message's header section (display names, comments and
 * group names left out), appended to *list (n entries, grown with
 * xreallocarray).  Returns 0, or -1 with a reason in err when there are
 * more than max or one is longer than DROP_ADDR_MAX.
 */
int drop_header_rcpts(const char *content, size_t len, char ***list,
    size_t *n, size_t max, char *err, size_t errlen);

/*
 * drop_addr_list - the addresses of one address list v[0..len) (a header
 * field's value, or a sendmail argument "a@b, Name <c@d>"), appended as
 * drop_header_rcpts does
 */
int drop_addr_list(const char *v, size_t len, char ***list, size_t *n,
    size_t max, char *err, size_t errlen);

#endif

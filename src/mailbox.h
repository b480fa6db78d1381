/*
 * mailbox.h - from a recipient address to a mailbox on disk.  Pure: no I/O.
 *
 * A local part becomes a path component only when it is safe: after case
 * folding and removing a "+subaddress" it must be non-empty, at most
 * MAILBOX_USER_MAX octets, without '/', NUL or control characters, and must
 * not start with '.'.  Anything else is refused at RCPT with 550 5.1.3.
 */
#ifndef TERN_MAILBOX_H
#define TERN_MAILBOX_H

#include <stddef.h>

#define MAILBOX_USER_MAX 64
/* a whole local part with its extension, at most (RFC 5321 4.5.3.1.1
 * says 64; longer subaddresses are seen and kept) */
#define MAILBOX_LOCAL_MAX 256

/*
 * mailbox_user - the %u of an address's local part: unquoted, case-folded
 * (ASCII), subaddress removed.  Returns 0, or -1 when it is not safe as a
 * path component.  out needs MAILBOX_USER_MAX + 1.
 */
int mailbox_user(const char *local, char *out, size_t outlen);

/* the parts of a local part for delivery */
struct mailbox_parts {
	char user[MAILBOX_USER_MAX + 1];  /* %u, USER of a virtual user */
	char ext[MAILBOX_LOCAL_MAX + 1];  /* EXTENSION: after the separator */
	char local[MAILBOX_LOCAL_MAX + 1]; /* LOCAL: folded, extension kept */
};

/*
 * mailbox_parts - a local part unquoted and case-folded, split at the
 * first subaddress separator sep (0: none) into user and extension.
 * Returns 0, or -1 when the user is not safe as a path component or a
 * part is too long.
 */
int mailbox_parts(const char *local, char sep, struct mailbox_parts *out);

/*
 * mailbox_expand - expand a mailbox pattern: %u user, %d domain (lower
 * case), %a user@domain, %% a percent sign.  Returns 0, or -1 when the
 * result would not fit in out.
 */
int mailbox_expand(const char *pattern, const char *user, const char *domain,
    char *out, size_t outlen);

/* mailbox_split - split "local@domain" at its last '@' into the two parts */
int mailbox_split(const char *addr, char *local, size_t locallen,
    char *domain, size_t domainlen);

#endif

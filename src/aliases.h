/*
 * aliases.h - aliases(5) and ~/.forward: parse the text, look a name up,
 * expand a local name into the list of places its mail goes.  Pure: no
 * I/O; the caller reads the files and gives :include: files through a
 * callback.
 *
 * An aliases file is "name: target, target, ..." entries; a line that
 * starts with a space or a tab continues the entry above, a line whose
 * first non-blank character is '#' is a comment.  A target is one of
 *
 *	|command		a pipe: the command as written after '|'
 *	/absolute/path		a file, appended to as an mbox
 *	:include:/abs/path	the targets listed in that file
 *	user@domain		an address
 *	name			a local name: an alias again, or a local user
 *	\name			a local user, never looked up again
 *
 * and may be enclosed in double quotes to hold commas ("|cmd -x a,b"); in
 * quotes a backslash takes the next character as it is.  A ~/.forward or
 * an :include: file is a list of the same targets, separated by commas or
 * newlines, with the same comments.
 */
#ifndef TERN_ALIASES_H
#define TERN_ALIASES_H

#include <stddef.h>

#include "util.h"

/* the longest name on either side of ':' (a local part, RFC 5321) */
#define ALIASES_NAME_MAX 64
/* the longest entry, continuation lines included; also bounds a line */
#define ALIASES_ENTRY_MAX 65536
/* the most targets in one entry, one :include: file or one .forward */
#define ALIASES_TARGETS_MAX 1000
/* the largest :include: file; the reader may stop one octet past it */
#define ALIASES_INCLUDE_MAX (1024 * 1024)
/* the deepest nesting of aliases and :include: files in an expansion */
#define ALIASES_DEPTH_MAX 20
/* the most :include: files one expansion may read */
#define ALIASES_INCLUDES_MAX 100
/* the most final targets one expansion may produce */
#define ALIASES_EXPAND_MAX 1000
/* the most targets one expansion may look at: bounds the work when the
 * same lists are reached along many paths */
#define ALIASES_WORK_MAX (10 * ALIASES_EXPAND_MAX)

enum aliases_kind {
	ALIASES_USER,    /* a local user's own mailbox: \name, or a name
			  * that is no alias */
	ALIASES_ADDRESS, /* local@domain, as written */
	ALIASES_FILE,    /* an absolute path */
	ALIASES_PIPE,    /* a command, as written after '|' */
	ALIASES_NAME,    /* parsed only: a name to look up again */
	ALIASES_INCLUDE  /* parsed only: a file of targets, absolute path */
};

/* struct aliases_target - one parsed target; value is NUL-terminated, and
 * lower case for ALIASES_USER and ALIASES_NAME */
struct aliases_target {
	enum aliases_kind kind;
	char *value;
	size_t line; /* the line of the file it was written on */
};

/*
 * struct aliases_entry - one "name: targets" entry.  broken: the entry had
 * a mistake; it is kept without targets so that expanding it is a
 * temporary error (its mail waits for the fix) rather than delivery to a
 * local user of the same name.
 */
struct aliases_entry {
	char *name; /* lower case */
	struct aliases_target *targets;
	size_t ntargets;
	size_t line; /* where the entry starts */
	int broken;
};

/* struct aliases - a parsed file: entries sorted by name, no duplicates;
 * read only for the caller */
struct aliases {
	struct aliases_entry *entries;
	size_t n;
};

/*
 * aliases_parse - parse the aliases(5) text[0..len); file names it in
 * messages.  Every mistake is appended to errs as one line
 * "file:line: message\n" and reading goes on, so the whole file is
 * checked; the return value is never NULL and *nerrs (when not NULL) is
 * the number of mistakes.  A duplicate name is a mistake: the first entry
 * is kept (as Postfix's postalias does), the later one reported and
 * dropped.  An entry whose name is wrong is dropped; one with a wrong
 * target is kept, broken.  Whether to use a table with mistakes is the
 * caller's choice.
 */
struct aliases *aliases_parse(const char *text, size_t len, const char *file,
    struct buf *errs, size_t *nerrs);

/* aliases_free - free a table from aliases_parse; NULL is fine */
void aliases_free(struct aliases *a);

/* aliases_find - the entry for name (any case), or NULL */
const struct aliases_entry *aliases_find(const struct aliases *a,
    const char *name);

/*
 * aliases_parse_targets - parse a target list (a ~/.forward, an :include:
 * file): targets separated by commas or newlines, '#' comment lines.
 * Mistakes go to errs as in aliases_parse and the wrong targets are left
 * out.  Returns the number of mistakes; *targets and *n hold the rest
 * (free with aliases_targets_free).  More than ALIASES_TARGETS_MAX targets
 * is a mistake and the rest are left out.
 */
size_t aliases_parse_targets(const char *text, size_t len, const char *file,
    struct aliases_target **targets, size_t *n, struct buf *errs);

/* aliases_targets_free - free a list from aliases_parse_targets */
void aliases_targets_free(struct aliases_target *targets, size_t n);

/*
 * struct aliases_ops - what expansion asks of the caller; arg is passed
 * back.  is_local_domain: 1 when mail for domain is delivered here (such
 * an address stands for its local part, when that is a valid name); NULL
 * means no domain is.  read_include: append the file at path to out and
 * return 0, or put the reason in err and return -1 (a temporary error);
 * NULL makes every :include: a temporary error.
 */
struct aliases_ops {
	int (*is_local_domain)(const char *domain, void *arg);
	int (*read_include)(const char *path, struct buf *out, char *err,
	    size_t errlen, void *arg);
	void *arg;
};

/*
 * struct aliases_dest - one final target: kind is ALIASES_USER,
 * ALIASES_ADDRESS, ALIASES_FILE or ALIASES_PIPE.  alias is the alias whose
 * entry listed it (NULL for a starting name that is no alias); include is
 * the :include: file it was listed in, or NULL.  A pipe or a file runs
 * with the rights the caller gives to that alias (or include file).
 */
struct aliases_dest {
	enum aliases_kind kind;
	char *value;
	char *alias;
	char *include;
};

enum aliases_status {
	ALIASES_OK = 0,
	ALIASES_TEMPFAIL, /* try again later: an :include: file could not be
			   * read, a broken entry was reached */
	ALIASES_PERMFAIL  /* bounce: a loop, too deep, too many targets or
			   * :include: files, a mistake in an :include:
			   * file */
};

/*
 * struct aliases_expansion - the result.  On ALIASES_OK, dests holds the
 * final targets in the order met, each once (kind and value; users and
 * addresses compared ignoring case), and status is "2.0.0"; the list may
 * be empty (an alias whose only :include: file lists no one), and then
 * the mail goes nowhere, as in sendmail and Postfix.  Otherwise ndests is
 * 0, status is the enhanced status code for the DSN ("5.4.6" for a loop)
 * and error says why in one line.
 */
struct aliases_expansion {
	struct aliases_dest *dests;
	size_t ndests;
	const char *status;
	struct buf error;
};

/*
 * aliases_expand - expand the local name through a: an alias is expanded
 * again, recursively; an entry that lists its own name ("bob: bob, ann")
 * delivers to that local user; a name reached again through other names
 * (a: b, b: a) is a loop, a permanent error.  Fills out (free with
 * aliases_expansion_free, whatever the result).
 */
enum aliases_status aliases_expand(const struct aliases *a, const char *name,
    const struct aliases_ops *ops, struct aliases_expansion *out);

/*
 * aliases_expand_list - expand a parsed target list as if it were the
 * entry of owner: for the ~/.forward of user owner, where "owner" or
 * "\owner" means owner's own mailbox.  The other names go through a (which
 * may be NULL: then every name is a local user).
 */
enum aliases_status aliases_expand_list(const struct aliases *a,
    const char *owner, const struct aliases_target *targets, size_t n,
    const struct aliases_ops *ops, struct aliases_expansion *out);

/* aliases_expansion_free - free what aliases_expand put in x */
void aliases_expansion_free(struct aliases_expansion *x);

/* aliases_kind_name - "user", "address", "file", "pipe", "name",
 * "include" */
const char *aliases_kind_name(enum aliases_kind k);

#endif

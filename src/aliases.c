/*
 * aliases.c - aliases(5) and ~/.forward: parsing, lookup, expansion.
 *
 * The one idea: parsing turns text into typed targets once, and checks
 * them all then, so that expansion never sees a string it must guess
 * about.  Parsing never stops at a mistake: each one is noted with its
 * line and the whole file is read, as conf.c does for tern.conf.
 * Expansion is a depth-first walk that keeps the path it came by: a name
 * on that path is a loop, unless it is the entry's own name (the usual
 * "bob: \bob, ann" written as "bob: bob, ann"), which sendmail and Postfix
 * both deliver to the local user.  An entry expanded once in a walk is
 * not walked again (its targets are already in the list), and every
 * target looked at counts against ALIASES_WORK_MAX, so a file of lists
 * that share sublists costs its size, not the number of paths through it.
 *
 * Format: sendmail's aliases(5) as Postfix documents it; addresses are
 * RFC 5321 4.1.2 mailboxes (smtp_parse_addr).  Pure: no I/O.
 */
#include "aliases.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_parse.h"
#include "util.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* how much of a wrong name or target a message shows */
#define SHOW_MAX 60

/* a mistake, kept until the end so messages come out in line order */
struct msg {
	size_t line;
	size_t seq;
	char *text;
};

struct parse {
	const char *file;
	struct msg *msgs;
	size_t nmsgs;
};

/* the entry being read: its text with continuation lines joined */
struct pending {
	int active;
	int too_long;
	size_t line;
	struct buf text;
	size_t *offs;  /* where each physical line starts in text ... */
	size_t *lines; /* ... and its line number */
	size_t nlines;
};

/* ---- small helpers -------------------------------------------------- */

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ascii_casecmp - strcmp ignoring ASCII case, whatever the locale */
static int
ascii_casecmp(const char *a, const char *b)
{
	unsigned char ca, cb;

	for (;; a++, b++) {
		ca = (unsigned char)ascii_lower(*a);
		cb = (unsigned char)ascii_lower(*b);
		if (ca != cb || ca == '\0')
			return ca - cb;
	}
}

static char *
lower_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);

	util_lower(d);
	return d;
}

/* trim - drop blanks at both ends of s[0..*n) */
static const char *
trim(const char *s, size_t *n)
{
	while (*n > 0 && is_blank(s[0])) {
		s++;
		(*n)--;
	}
	while (*n > 0 && is_blank(s[*n - 1]))
		(*n)--;
	return s;
}

/* ignorable - 1 for a blank line or a comment line */
static int
ignorable(const char *s, size_t n)
{
	s = trim(s, &n);
	return n == 0 || s[0] == '#';
}

/* show - s[0..n) made safe and short for a message */
static const char *
show(char out[SHOW_MAX + 4], const char *s, size_t n)
{
	size_t k = util_sanitise(out, SHOW_MAX, s, n);

	if (k < n)
		memcpy(out + k, "...", 4);
	return out;
}

/* ---- messages ------------------------------------------------------- */

static void TERN_PRINTF(3, 4)
note(struct parse *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	p->msgs = xreallocarray(p->msgs, p->nmsgs + 1, sizeof(*p->msgs));
	p->msgs[p->nmsgs].line = line;
	p->msgs[p->nmsgs].seq = p->nmsgs;
	va_start(ap, fmt);
	p->msgs[p->nmsgs].text = xvasprintf(fmt, ap);
	va_end(ap);
	p->nmsgs++;
}

static int
msg_cmp(const void *va, const void *vb)
{
	const struct msg *a = va, *b = vb;

	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* msgs_flush - the mistakes, in line order, to errs; returns how many */
static size_t
msgs_flush(struct parse *p, struct buf *errs)
{
	size_t i, n = p->nmsgs;

	if (n > 1)
		qsort(p->msgs, n, sizeof(*p->msgs), msg_cmp);
	for (i = 0; i < n; i++) {
		if (errs != NULL)
			buf_printf(errs, "%s:%zu: %s\n", p->file,
			    p->msgs[i].line, p->msgs[i].text);
		free(p->msgs[i].text);
	}
	free(p->msgs);
	p->msgs = NULL;
	p->nmsgs = 0;
	return n;
}

/* ---- names and targets ---------------------------------------------- */

/* name_check - NULL when s[0..n) can be a name, else what is wrong */
static const char *
name_check(const char *s, size_t n)
{
	size_t i;
	unsigned char c;

	if (n == 0)
		return "is empty";
	if (n > ALIASES_NAME_MAX)
		return "is longer than " STR(ALIASES_NAME_MAX) " octets";
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == ' ' || c == '\t')
			return "holds a space";
		if (c < 0x20 || c == 0x7f)
			return "holds a control character";
		if (c == ':' || c == ',' || c == '"' || c == '\\')
			return "holds ':', ',', '\"' or '\\'";
	}
	if (!util_utf8_valid((const unsigned char *)s, n))
		return "is not valid UTF-8";
	return NULL;
}

/* text_check - NULL when a target's text has no control character
 * (a tab is fine) and is valid UTF-8, else what is wrong */
static const char *
text_check(const char *s, size_t n)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return "holds a control character";
	}
	if (!util_utf8_valid((const unsigned char *)s, n))
		return "is not valid UTF-8";
	return NULL;
}

/*
 * quote_end - s[0] is '"': the index of the closing quote (a backslash
 * takes the next character), or n when there is none.
 */
static size_t
quote_end(const char *s, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i;
	}
	return n;
}

/* unquote - the inside of the quoted string s[0..n), escapes undone */
static char *
unquote(const char *s, size_t n, size_t *outlen)
{
	char *d = xmalloc(n + 1);
	size_t i, o = 0;

	for (i = 1; i + 1 < n; i++) {
		if (s[i] == '\\')
			i++;
		d[o++] = s[i];
	}
	d[o] = '\0';
	*outlen = o;
	return d;
}

/* name_value - a name as a target of kind (a name or a local user) */
static const char *
name_value(const char *s, size_t n, enum aliases_kind kind,
    struct aliases_target *t)
{
	const char *why;

	if ((why = name_check(s, n)) != NULL)
		return why;
	if (kind == ALIASES_USER && memchr(s, '@', n) != NULL)
		return "is a local user and holds '@'";
	t->kind = kind;
	t->value = lower_dup(s, n);
	return NULL;
}

/* path_value - an absolute path, not a directory: a file or an include */
static const char *
path_value(const char *s, size_t n, enum aliases_kind kind,
    struct aliases_target *t)
{
	if (n == 0 || s[0] != '/')
		return "is not an absolute path";
	if (s[n - 1] == '/')
		return "names a directory";
	t->kind = kind;
	t->value = xstrndup(s, n);
	return NULL;
}

/* pipe_value - the command after '|', as written */
static const char *
pipe_value(const char *s, size_t n, struct aliases_target *t)
{
	size_t k = n;

	(void)trim(s, &k);
	if (k == 0)
		return "is an empty command";
	t->kind = ALIASES_PIPE;
	t->value = xstrndup(s, n);
	return NULL;
}

static const char *
address_value(const char *s, size_t n, struct aliases_target *t)
{
	struct smtp_addr ad;

	if (smtp_parse_addr(s, n, &ad) != SMTP_P_OK)
		return "is not a valid address";
	t->kind = ALIASES_ADDRESS;
	t->value = xstrndup(s, n);
	return NULL;
}

/*
 * target_kind - the kind and value of the unquoted text s[0..n), or the
 * reason it is wrong.  The first character decides; then an '@' makes an
 * address; anything else is a name.
 */
static const char *
target_kind(const char *s, size_t n, struct aliases_target *t)
{
	static const char include[] = ":include:";
	size_t k = sizeof(include) - 1;

	if (s[0] == '|')
		return pipe_value(s + 1, n - 1, t);
	if (n >= k && strncasecmp(s, include, k) == 0) {
		n -= k;
		s = trim(s + k, &n);
		return path_value(s, n, ALIASES_INCLUDE, t);
	}
	if (s[0] == '/')
		return path_value(s, n, ALIASES_FILE, t);
	if (s[0] == '\\')
		return name_value(s + 1, n - 1, ALIASES_USER, t);
	if (memchr(s, '@', n) != NULL)
		return address_value(s, n, t);
	return name_value(s, n, ALIASES_NAME, t);
}

/*
 * target_parse - one target from s[0..n) (blanks around it allowed).
 * Returns 1 and fills t, 0 for an empty piece, -1 after noting a mistake.
 */
static int
target_parse(struct parse *p, size_t line, const char *s, size_t n,
    struct aliases_target *t)
{
	char sh[SHOW_MAX + 4];
	const char *why, *text;
	char *uq = NULL;
	size_t len;

	s = trim(s, &n);
	if (n == 0)
		return 0;
	text = s;
	len = n;
	if (s[0] == '"' && quote_end(s, n) == n) {
		note(p, line, "target \"%s\": the quote is not closed",
		    show(sh, s, n));
		return -1;
	}
	/* all in quotes: unquoted; partly ("john doe"@example.com): as is */
	if (s[0] == '"' && quote_end(s, n) == n - 1)
		text = uq = unquote(s, n, &len);
	memset(t, 0, sizeof(*t));
	t->line = line;
	why = text_check(text, len);
	if (why == NULL)
		why = len == 0 ? "is empty" : target_kind(text, len, t);
	if (why != NULL)
		note(p, line, "target \"%s\" %s", show(sh, s, n), why);
	free(uq);
	return why == NULL ? 1 : -1;
}

/*
 * piece_end - the end of the comma-separated piece starting at s[0]: the
 * index of the comma outside quotes, or n.
 */
static size_t
piece_end(const char *s, size_t n)
{
	size_t i;
	int quoted = 0;

	for (i = 0; i < n; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == ',')
			return i;
	}
	return n;
}

static void
targets_push(struct aliases_target **v, size_t *n,
    const struct aliases_target *t)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = *t;
}

/* aliases_targets_free - free a list from aliases_parse_targets */
void
aliases_targets_free(struct aliases_target *targets, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(targets[i].value);
	free(targets);
}

/* ---- aliases(5) entries --------------------------------------------- */

static void
pending_reset(struct pending *e)
{
	e->active = 0;
	e->too_long = 0;
	e->nlines = 0;
	buf_reset(&e->text);
}

/* pending_add - one physical line of the entry, or mark it too long */
static void
pending_add(struct pending *e, const char *s, size_t n, size_t line)
{
	if (n > ALIASES_ENTRY_MAX - e->text.len) {
		e->too_long = 1;
		n = ALIASES_ENTRY_MAX - e->text.len; /* keep its name */
	}
	e->offs = xreallocarray(e->offs, e->nlines + 1, sizeof(*e->offs));
	e->lines = xreallocarray(e->lines, e->nlines + 1, sizeof(*e->lines));
	e->offs[e->nlines] = e->text.len;
	e->lines[e->nlines] = line;
	e->nlines++;
	buf_append(&e->text, s, n);
}

/* pending_line - the line number of offset off in the entry's text */
static size_t
pending_line(const struct pending *e, size_t off)
{
	size_t lo = 0, hi = e->nlines, mid;

	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (e->offs[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return e->lines[lo];
}

/*
 * key_parse - the name before ':' in s[0..n): the name, lower case, and
 * *rest the offset after the ':'; NULL after noting a mistake.
 */
static char *
key_parse(struct parse *p, size_t line, const char *s, size_t n, size_t *rest)
{
	char sh[SHOW_MAX + 4];
	const char *k = s, *why;
	size_t i = 0, kn;

	if (s[0] == '"') {
		k = s + 1;
		for (i = 1; i < n && s[i] != '"'; i++)
			;
		if (i == n) {
			note(p, line, "the name's quote is not closed");
			return NULL;
		}
		kn = i++ - 1;
	} else {
		while (i < n && s[i] != ':' && !is_blank(s[i]))
			i++;
		kn = i;
	}
	while (i < n && is_blank(s[i]))
		i++;
	if (i == n || s[i] != ':') {
		note(p, line, "no ':' after the name \"%s\"",
		    show(sh, k, kn));
		return NULL;
	}
	if ((why = name_check(k, kn)) != NULL) {
		note(p, line, "the name \"%s\" %s", show(sh, k, kn), why);
		return NULL;
	}
	*rest = i + 1;
	return lower_dup(k, kn);
}

/* entry_targets - the targets after the ':'; mistakes make it broken */
static void
entry_targets(struct parse *p, const struct pending *pe, size_t off,
    struct aliases_entry *e)
{
	struct aliases_target t;
	const char *s = pe->text.data;
	size_t n = pe->text.len, end;
	int r;

	for (; off <= n; off = end + 1) {
		end = off + piece_end(s + off, n - off);
		while (off < end && is_blank(s[off]))
			off++; /* the line is where the target starts */
		r = target_parse(p, pending_line(pe, off), s + off, end - off,
		    &t);
		if (r < 0)
			e->broken = 1;
		if (r <= 0)
			continue;
		if (e->ntargets == ALIASES_TARGETS_MAX) {
			free(t.value);
			note(p, t.line, "more than %d targets for %s",
			    ALIASES_TARGETS_MAX, e->name);
			e->broken = 1;
			return;
		}
		targets_push(&e->targets, &e->ntargets, &t);
	}
}

static void
entry_push(struct aliases *a, struct aliases_entry *e)
{
	if (e->broken) {
		aliases_targets_free(e->targets, e->ntargets);
		e->targets = NULL;
		e->ntargets = 0;
	}
	a->entries = xreallocarray(a->entries, a->n + 1, sizeof(*a->entries));
	a->entries[a->n++] = *e;
}

/* entry_finish - the entry read so far, checked, into a */
static void
entry_finish(struct parse *p, struct aliases *a, struct pending *pe)
{
	struct aliases_entry e;
	size_t rest;

	if (!pe->active)
		return;
	memset(&e, 0, sizeof(e));
	e.line = pe->line;
	e.name = key_parse(p, pe->line, pe->text.data, pe->text.len, &rest);
	if (e.name == NULL) {
		pending_reset(pe);
		return;
	}
	if (pe->too_long) {
		note(p, pe->line, "the entry for %s is longer than %d octets",
		    e.name, ALIASES_ENTRY_MAX);
		e.broken = 1;
	} else {
		entry_targets(p, pe, rest, &e);
	}
	if (!e.broken && e.ntargets == 0) {
		note(p, pe->line, "no targets for %s", e.name);
		e.broken = 1;
	}
	entry_push(a, &e);
	pending_reset(pe);
}

/* alias_line - one physical line: starts an entry, continues one, or is
 * ignored */
static void
alias_line(struct parse *p, struct aliases *a, struct pending *pe,
    const char *s, size_t n, size_t line)
{
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (ignorable(s, n))
		return;
	if (!is_blank(s[0])) {
		entry_finish(p, a, pe);
		pe->active = 1;
		pe->line = line;
		pending_add(pe, s, n, line);
		return;
	}
	if (!pe->active) {
		note(p, line, "a continuation line with no entry above it");
		return;
	}
	if (!pe->too_long)
		pending_add(pe, s, n, line);
}

static int
entry_cmp(const void *va, const void *vb)
{
	const struct aliases_entry *a = va, *b = vb;
	int c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return a->line < b->line ? -1 : a->line > b->line;
}

static void
entry_free(struct aliases_entry *e)
{
	free(e->name);
	aliases_targets_free(e->targets, e->ntargets);
}

/* dedup - sort by name; of entries with one name the first in the file
 * stays */
static void
dedup(struct parse *p, struct aliases *a)
{
	size_t i, o = 0;

	if (a->n > 1)
		qsort(a->entries, a->n, sizeof(*a->entries), entry_cmp);
	for (i = 0; i < a->n; i++) {
		if (o > 0 && strcmp(a->entries[o - 1].name,
				 a->entries[i].name) == 0) {
			note(p, a->entries[i].line,
			    "%s is defined again (line %zu is used)",
			    a->entries[i].name, a->entries[o - 1].line);
			entry_free(&a->entries[i]);
			continue;
		}
		a->entries[o++] = a->entries[i];
	}
	a->n = o;
}

/* line_next - the end of the line at text[pos] ('\n' or len) */
static size_t
line_next(const char *text, size_t len, size_t pos)
{
	const char *nl = memchr(text + pos, '\n', len - pos);

	return nl ? (size_t)(nl - text) : len;
}

/* aliases_parse - parse aliases(5) text, noting every mistake */
struct aliases *
aliases_parse(const char *text, size_t len, const char *file,
    struct buf *errs, size_t *nerrs)
{
	struct parse p = { file, NULL, 0 };
	struct aliases *a = xcalloc(1, sizeof(*a));
	struct pending pe;
	size_t pos = 0, end, line = 0, n;

	memset(&pe, 0, sizeof(pe));
	buf_init(&pe.text);
	while (pos < len) {
		end = line_next(text, len, pos);
		alias_line(&p, a, &pe, text + pos, end - pos, ++line);
		pos = end + 1;
	}
	entry_finish(&p, a, &pe);
	buf_free(&pe.text);
	free(pe.offs);
	free(pe.lines);
	dedup(&p, a);
	n = msgs_flush(&p, errs);
	if (nerrs != NULL)
		*nerrs = n;
	return a;
}

/* aliases_free - free a table */
void
aliases_free(struct aliases *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		entry_free(&a->entries[i]);
	free(a->entries);
	free(a);
}

/* aliases_find - binary search; names are stored lower case */
const struct aliases_entry *
aliases_find(const struct aliases *a, const char *name)
{
	size_t lo = 0, hi, mid;
	int c;

	if (a == NULL)
		return NULL;
	hi = a->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = ascii_casecmp(name, a->entries[mid].name);
		if (c == 0)
			return &a->entries[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- target lists: ~/.forward, :include: ----------------------------- */

/* the target list being read */
struct list {
	struct aliases_target *v;
	size_t n;
	int full; /* ALIASES_TARGETS_MAX reached and reported */
};

/* list_line - the comma-separated targets of one line into l */
static void
list_line(struct parse *p, struct list *l, const char *s, size_t n,
    size_t line)
{
	struct aliases_target t;
	size_t off, end;

	for (off = 0; off <= n && !l->full; off = end + 1) {
		end = off + piece_end(s + off, n - off);
		if (target_parse(p, line, s + off, end - off, &t) <= 0)
			continue;
		if (l->n == ALIASES_TARGETS_MAX) {
			free(t.value);
			note(p, line, "more than %d targets",
			    ALIASES_TARGETS_MAX);
			l->full = 1;
			return;
		}
		targets_push(&l->v, &l->n, &t);
	}
}

/* aliases_parse_targets - parse a target list, noting every mistake */
size_t
aliases_parse_targets(const char *text, size_t len, const char *file,
    struct aliases_target **targets, size_t *n, struct buf *errs)
{
	struct parse p = { file, NULL, 0 };
	struct list l = { NULL, 0, 0 };
	size_t pos = 0, end, line = 0, k;
	const char *s;

	while (pos < len) {
		end = line_next(text, len, pos);
		s = text + pos;
		k = end - pos;
		pos = end + 1;
		line++;
		if (k > 0 && s[k - 1] == '\r')
			k--;
		if (ignorable(s, k))
			continue;
		if (k > ALIASES_ENTRY_MAX)
			note(&p, line, "the line is longer than %d octets",
			    ALIASES_ENTRY_MAX);
		else
			list_line(&p, &l, s, k, line);
	}
	*targets = l.v;
	*n = l.n;
	return msgs_flush(&p, errs);
}

/* ---- expansion ------------------------------------------------------ */

/* one step of the path an expansion came by: an alias or an include */
struct step {
	const char *s;
	int include;
};

struct expand {
	const struct aliases *a;
	const struct aliases_ops *ops;
	struct aliases_expansion *out;
	const char *start;
	struct step path[ALIASES_DEPTH_MAX];
	size_t depth;
	unsigned char *done; /* per entry of a: walked already */
	size_t work;
	size_t reads; /* :include: files read */
};

static enum aliases_status expand_targets(struct expand *x, const char *owner,
    const char *include, const struct aliases_target *t, size_t n);

static enum aliases_status TERN_PRINTF(4, 5)
fail(struct expand *x, enum aliases_status st, const char *status,
    const char *fmt, ...)
{
	va_list ap;

	x->out->status = status;
	buf_reset(&x->out->error);
	va_start(ap, fmt);
	buf_vprintf(&x->out->error, fmt, ap);
	va_end(ap);
	return st;
}

/* loop_fail - "alias loop: a -> b -> a", the path and the step back */
static enum aliases_status
loop_fail(struct expand *x, const char *s, int include)
{
	struct buf *b = &x->out->error;
	size_t i;

	fail(x, ALIASES_PERMFAIL, "5.4.6", "alias loop: ");
	for (i = 0; i < x->depth; i++)
		buf_printf(b, "%s%s -> ", x->path[i].include ? ":include:" : "",
		    x->path[i].s);
	buf_printf(b, "%s%s", include ? ":include:" : "", s);
	return ALIASES_PERMFAIL;
}

static int
on_path(const struct expand *x, const char *s, int include)
{
	size_t i;

	for (i = 0; i < x->depth; i++)
		if (x->path[i].include == include &&
		    strcmp(x->path[i].s, s) == 0)
			return 1;
	return 0;
}

static enum aliases_status
push(struct expand *x, const char *s, int include)
{
	if (x->depth == ALIASES_DEPTH_MAX)
		return fail(x, ALIASES_PERMFAIL, "5.4.6",
		    "expanding %s: aliases nested more than %d deep at %s%s",
		    x->start, ALIASES_DEPTH_MAX, include ? ":include:" : "", s);
	x->path[x->depth].s = s;
	x->path[x->depth].include = include;
	x->depth++;
	return ALIASES_OK;
}

static int
dest_same(const struct aliases_dest *d, enum aliases_kind kind,
    const char *value)
{
	if (d->kind != kind)
		return 0;
	if (kind == ALIASES_USER || kind == ALIASES_ADDRESS)
		return ascii_casecmp(d->value, value) == 0;
	return strcmp(d->value, value) == 0;
}

/* add - a final target, unless it is in the list already */
static enum aliases_status
add(struct expand *x, enum aliases_kind kind, const char *value,
    const char *alias, const char *include)
{
	struct aliases_expansion *o = x->out;
	struct aliases_dest *d;
	size_t i;

	for (i = 0; i < o->ndests; i++)
		if (dest_same(&o->dests[i], kind, value))
			return ALIASES_OK;
	if (o->ndests == ALIASES_EXPAND_MAX)
		return fail(x, ALIASES_PERMFAIL, "5.3.5",
		    "expanding %s gives more than %d targets", x->start,
		    ALIASES_EXPAND_MAX);
	o->dests = xreallocarray(o->dests, o->ndests + 1, sizeof(*o->dests));
	d = &o->dests[o->ndests++];
	d->kind = kind;
	d->value = xstrdup(value);
	d->alias = alias ? xstrdup(alias) : NULL;
	d->include = include ? xstrdup(include) : NULL;
	return ALIASES_OK;
}

/* expand_entry - the targets of alias e, once per expansion */
static enum aliases_status
expand_entry(struct expand *x, const struct aliases_entry *e)
{
	size_t i = (size_t)(e - x->a->entries);
	enum aliases_status r;

	if (x->done[i])
		return ALIASES_OK;
	if (e->broken)
		return fail(x, ALIASES_TEMPFAIL, "4.3.5",
		    "the alias %s (line %zu) has a mistake", e->name, e->line);
	if ((r = push(x, e->name, 0)) != ALIASES_OK)
		return r;
	r = expand_targets(x, e->name, NULL, e->targets, e->ntargets);
	x->depth--;
	x->done[i] = 1;
	return r;
}

/* expand_name - a local name listed by owner's entry (lower case) */
static enum aliases_status
expand_name(struct expand *x, const char *owner, const char *include,
    const char *name)
{
	const struct aliases_entry *e;

	if (owner != NULL && strcmp(name, owner) == 0)
		return add(x, ALIASES_USER, name, owner, include);
	if (on_path(x, name, 0))
		return loop_fail(x, name, 0);
	if ((e = aliases_find(x->a, name)) == NULL)
		return add(x, ALIASES_USER, name, owner, include);
	return expand_entry(x, e);
}

/*
 * local_name - 1 when the address value is in a local domain and its
 * local part can be a name: then out holds that name, lower case.  A
 * quoted local part stays an address.
 */
static int
local_name(const struct expand *x, const char *value,
    char out[ALIASES_NAME_MAX + 1])
{
	struct smtp_addr ad;
	size_t n;

	if (x->ops == NULL || x->ops->is_local_domain == NULL)
		return 0;
	if (smtp_parse_addr(value, strlen(value), &ad) != SMTP_P_OK)
		return 0;
	n = strlen(ad.local);
	if (ad.quoted || name_check(ad.local, n) != NULL)
		return 0;
	util_lower(ad.domain);
	if (!x->ops->is_local_domain(ad.domain, x->ops->arg))
		return 0;
	memcpy(out, ad.local, n + 1);
	util_lower(out);
	return 1;
}

static enum aliases_status
expand_address(struct expand *x, const char *owner, const char *include,
    const char *value)
{
	char name[ALIASES_NAME_MAX + 1];

	if (local_name(x, value, name))
		return expand_name(x, owner, include, name);
	return add(x, ALIASES_ADDRESS, value, owner, include);
}

/* include_targets - read and parse the file at path into *t, *n */
static enum aliases_status
include_targets(struct expand *x, const char *path,
    struct aliases_target **t, size_t *n)
{
	char err[256] = "";
	struct buf text, errs;
	enum aliases_status r = ALIASES_OK;

	if (x->ops == NULL || x->ops->read_include == NULL)
		return fail(x, ALIASES_TEMPFAIL, "4.3.0",
		    ":include:%s: include files are not read here", path);
	if (x->reads++ == ALIASES_INCLUDES_MAX)
		return fail(x, ALIASES_PERMFAIL, "5.3.5",
		    "expanding %s reads more than %d :include: files",
		    x->start, ALIASES_INCLUDES_MAX);
	buf_init(&text);
	buf_init(&errs);
	if (x->ops->read_include(path, &text, err, sizeof(err), x->ops->arg)) {
		err[sizeof(err) - 1] = '\0';
		r = fail(x, ALIASES_TEMPFAIL, "4.3.0", ":include:%s: %s", path,
		    err);
	} else if (text.len > ALIASES_INCLUDE_MAX) {
		r = fail(x, ALIASES_PERMFAIL, "5.3.5",
		    ":include:%s: larger than %d octets", path,
		    ALIASES_INCLUDE_MAX);
	} else if (aliases_parse_targets(text.data, text.len, path, t, n,
		       &errs) > 0) {
		/* the first mistake, without its newline */
		r = fail(x, ALIASES_PERMFAIL, "5.3.5", "%.*s",
		    (int)strcspn(errs.data, "\n"), errs.data);
		aliases_targets_free(*t, *n);
	}
	buf_free(&text);
	buf_free(&errs);
	return r;
}

/* expand_include - the targets of an :include: file listed by owner */
static enum aliases_status
expand_include(struct expand *x, const char *owner, const char *path)
{
	struct aliases_target *t = NULL;
	size_t n = 0;
	enum aliases_status r;

	if (on_path(x, path, 1))
		return loop_fail(x, path, 1);
	if ((r = push(x, path, 1)) != ALIASES_OK)
		return r;
	if ((r = include_targets(x, path, &t, &n)) == ALIASES_OK) {
		r = expand_targets(x, owner, path, t, n);
		aliases_targets_free(t, n);
	}
	x->depth--;
	return r;
}

static enum aliases_status
expand_one(struct expand *x, const char *owner, const char *include,
    const struct aliases_target *t)
{
	if (++x->work > ALIASES_WORK_MAX)
		return fail(x, ALIASES_PERMFAIL, "5.3.5",
		    "expanding %s looks at more than %d targets", x->start,
		    ALIASES_WORK_MAX);
	switch (t->kind) {
	case ALIASES_NAME:
		return expand_name(x, owner, include, t->value);
	case ALIASES_ADDRESS:
		return expand_address(x, owner, include, t->value);
	case ALIASES_INCLUDE:
		return expand_include(x, owner, t->value);
	default:
		return add(x, t->kind, t->value, owner, include);
	}
}

static enum aliases_status
expand_targets(struct expand *x, const char *owner, const char *include,
    const struct aliases_target *t, size_t n)
{
	enum aliases_status r;
	size_t i;

	for (i = 0; i < n; i++)
		if ((r = expand_one(x, owner, include, &t[i])) != ALIASES_OK)
			return r;
	return ALIASES_OK;
}

static void
expand_init(struct expand *x, const struct aliases *a,
    const struct aliases_ops *ops, struct aliases_expansion *out,
    const char *start)
{
	memset(x, 0, sizeof(*x));
	x->a = a;
	x->ops = ops;
	x->out = out;
	x->start = start;
	x->done = xcalloc(a != NULL && a->n > 0 ? a->n : 1, 1);
	out->dests = NULL;
	out->ndests = 0;
	out->status = "2.0.0";
	buf_init(&out->error);
}

/* expand_end - a failed expansion leaves no half list behind */
static enum aliases_status
expand_end(struct expand *x, enum aliases_status r)
{
	struct aliases_expansion *o = x->out;
	size_t i;

	free(x->done);
	if (r == ALIASES_OK)
		return r;
	for (i = 0; i < o->ndests; i++) {
		free(o->dests[i].value);
		free(o->dests[i].alias);
		free(o->dests[i].include);
	}
	free(o->dests);
	o->dests = NULL;
	o->ndests = 0;
	return r;
}

/* aliases_expand - expand a local name into its final targets */
enum aliases_status
aliases_expand(const struct aliases *a, const char *name,
    const struct aliases_ops *ops, struct aliases_expansion *out)
{
	struct expand x;
	char *start = lower_dup(name, strlen(name));
	enum aliases_status r;

	expand_init(&x, a, ops, out, start);
	r = expand_end(&x, expand_name(&x, NULL, NULL, start));
	free(start);
	return r;
}

/* aliases_expand_list - expand a target list as owner's own entry */
enum aliases_status
aliases_expand_list(const struct aliases *a, const char *owner,
    const struct aliases_target *targets, size_t n,
    const struct aliases_ops *ops, struct aliases_expansion *out)
{
	struct expand x;
	char *start = lower_dup(owner, strlen(owner));
	enum aliases_status r;

	expand_init(&x, a, ops, out, start);
	r = push(&x, start, 0);
	if (r == ALIASES_OK)
		r = expand_targets(&x, start, NULL, targets, n);
	r = expand_end(&x, r);
	free(start);
	return r;
}

/* aliases_expansion_free - free the list and the message */
void
aliases_expansion_free(struct aliases_expansion *x)
{
	size_t i;

	for (i = 0; i < x->ndests; i++) {
		free(x->dests[i].value);
		free(x->dests[i].alias);
		free(x->dests[i].include);
	}
	free(x->dests);
	x->dests = NULL;
	x->ndests = 0;
	buf_free(&x->error);
}

/* aliases_kind_name - a kind's name for logs and tests */
const char *
aliases_kind_name(enum aliases_kind k)
{
	static const char *const names[] = {
		[ALIASES_USER] = "user",
		[ALIASES_ADDRESS] = "address",
		[ALIASES_FILE] = "file",
		[ALIASES_PIPE] = "pipe",
		[ALIASES_NAME] = "name",
		[ALIASES_INCLUDE] = "include",
	};

	if ((size_t)k >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[k];
}

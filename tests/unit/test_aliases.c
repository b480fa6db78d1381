/*
 * test_aliases.c - tables for src/aliases.c: parsing aliases(5) text
 * (continuations, comments, quoting, every target kind, every mistake
 * with its line), lookup, expansion (nesting, self-reference, loops,
 * limits, duplicates, local domains, :include: files through a fake
 * reader) and ~/.forward target lists.  Each table row says what it tests.
 *
 * Tables compare against a dump: an entry is "name(line): kind value;
 * kind value" (or "name(line): broken"), a final target "kind value
 * (alias, include)".  A failed expansion dumps as "status error".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aliases.h"
#include "util.h"
#include "unit_table.h"

/* ---- dumps ---------------------------------------------------------- */

static void
dump_targets(struct buf *b, const struct aliases_target *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s %s", i ? "; " : "",
		    aliases_kind_name(t[i].kind), t[i].value);
}

static char *
dump_table(const struct aliases *a)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < a->n; i++) {
		const struct aliases_entry *e = &a->entries[i];

		buf_printf(&b, "%s(%zu): ", e->name, e->line);
		if (e->broken)
			buf_puts(&b, "broken");
		dump_targets(&b, e->targets, e->ntargets);
		buf_putc(&b, '\n');
	}
	return b.data;
}

static char *
dump_expansion(enum aliases_status st, const struct aliases_expansion *x)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	if (st != ALIASES_OK) {
		buf_printf(&b, "%s %s", x->status, x->error.data);
		return b.data;
	}
	for (i = 0; i < x->ndests; i++) {
		const struct aliases_dest *d = &x->dests[i];

		buf_printf(&b, "%s%s %s", i ? "; " : "",
		    aliases_kind_name(d->kind), d->value);
		if (d->alias != NULL && d->include != NULL)
			buf_printf(&b, " (%s, %s)", d->alias, d->include);
		else if (d->alias != NULL)
			buf_printf(&b, " (%s)", d->alias);
	}
	return b.data;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* ---- parsing -------------------------------------------------------- */

struct parse_case {
	const char *what;
	const char *text;
	const char *table; /* dump_table of the result */
	const char *errs;  /* every message, "" for none */
};

#define A10 "aaaaaaaaaa"
#define A64 A10 A10 A10 A10 A10 A10 "aaaa"

static const struct parse_case parse_cases[] = {
    {"simple", "root: bob\n", "root(1): name bob\n", ""},
    {"blanks around ':' and targets", "root :bob ,\tann  \n",
     "root(1): name bob; name ann\n", ""},
    {"no newline at the end", "root: bob", "root(1): name bob\n", ""},
    {"CRLF lines", "root: bob,\r\n ann\r\n", "root(1): name bob; name ann\n",
     ""},
    {"continuation lines, space and tab", "staff: a,\n  b,\n\tc\nx: y\n",
     "staff(1): name a; name b; name c\nx(4): name y\n", ""},
    {"comments and blank lines",
     "# aliases\n\n   \nroot: bob\n  # indented comment\nx: y\n",
     "root(4): name bob\nx(6): name y\n", ""},
    {"a comment inside an entry does not end it",
     "staff: a,\n# not b\n  c\n", "staff(1): name a; name c\n", ""},
    {"'#' after a target is part of it", "root: bob # admin\n",
     "root(1): broken\n",
     "aliases:1: target \"bob # admin\" holds a space\n"},
    {"empty pieces and a trailing comma", "staff: a,, b,\n",
     "staff(1): name a; name b\n", ""},
    {"sorted by name", "zed: z\nabc: a\nmid: m\n",
     "abc(2): name a\nmid(3): name m\nzed(1): name z\n", ""},
    {"every target kind",
     "all: |/usr/bin/log, /var/mail/all, :include:/etc/mail/all, "
     "ann@example.com, bob, \\carol\n",
     "all(1): pipe /usr/bin/log; file /var/mail/all; "
     "include /etc/mail/all; address ann@example.com; name bob; "
     "user carol\n",
     ""},
    {"pipe command kept as written", "p: |/bin/foo -x  y\n",
     "p(1): pipe /bin/foo -x  y\n", ""},
    {"quoted target holds commas", "p: \"|/usr/bin/foo -x a,b\", ann\n",
     "p(1): pipe /usr/bin/foo -x a,b; name ann\n", ""},
    {"backslash in quotes takes the next character",
     "p: \"|echo \\\"hi\\\" \\\\ there\"\n",
     "p(1): pipe echo \"hi\" \\ there\n", ""},
    {"quoted \\name is a user", "me: \"\\\\me\"\n", "me(1): user me\n",
     ""},
    {"quoted file with a space", "f: \"/var/mail/a b\"\n",
     "f(1): file /var/mail/a b\n", ""},
    {"quoted local part kept as written",
     "q: \"john doe\"@example.com\n",
     "q(1): address \"john doe\"@example.com\n", ""},
    {":include: in any case, blanks after it",
     "i: :INCLUDE:/a, :include: /b\n", "i(1): include /a; include /b\n",
     ""},
    {"names folded to lower case", "Root: Bob, \\Carol, Ann@Example.COM\n",
     "root(1): name bob; user carol; address Ann@Example.COM\n", ""},
    {"quoted name", "\"owner#List\": ann\n", "owner#list(1): name ann\n",
     ""},
    {"name of 64 octets", A64 ": x\n", A64 "(1): name x\n", ""},
    {"UTF-8 name", "j\xc3\xb6rg: x\n", "j\xc3\xb6rg(1): name x\n", ""},

    /* mistakes: each reported with its line, the reading goes on */
    {"no ':'", "bob alice\nx: y\n", "x(2): name y\n",
     "aliases:1: no ':' after the name \"bob\"\n"},
    {"empty name", ": x\n", "", "aliases:1: the name \"\" is empty\n"},
    {"name of 65 octets", A64 "a: x\n", "",
     "aliases:1: the name \"" A10 A10 A10 A10 A10 A10
     "...\" is longer than 64 octets\n"},
    {"control character in a name", "a\x01"
				      "b: x\n",
     "", "aliases:1: the name \"a?b\" holds a control character\n"},
    {"space in a quoted name", "\"a b\": x\n", "",
     "aliases:1: the name \"a b\" holds a space\n"},
    {"quote of a name not closed", "\"ab: x\n", "",
     "aliases:1: the name's quote is not closed\n"},
    {"backslash in a name", "\\root: x\n", "",
     "aliases:1: the name \"\\root\" holds ':', ',', '\"' or '\\'\n"},
    {"malformed UTF-8 in a name", "a\xc3: x\n", "",
     "aliases:1: the name \"a?\" is not valid UTF-8\n"},
    {"continuation with no entry", "  x\nroot: bob\n",
     "root(2): name bob\n",
     "aliases:1: a continuation line with no entry above it\n"},
    {"no targets", "a:\nb: ,\n", "a(1): broken\nb(2): broken\n",
     "aliases:1: no targets for a\naliases:2: no targets for b\n"},
    {"name target with a space", "a: b c\n", "a(1): broken\n",
     "aliases:1: target \"b c\" holds a space\n"},
    {"bad address", "a: b@, @c, b@c d\n", "a(1): broken\n",
     "aliases:1: target \"b@\" is not a valid address\n"
     "aliases:1: target \"@c\" is not a valid address\n"
     "aliases:1: target \"b@c d\" is not a valid address\n"},
    {"empty command", "a: |, | \n", "a(1): broken\n",
     "aliases:1: target \"|\" is an empty command\n"
     "aliases:1: target \"|\" is an empty command\n"},
    {"include not absolute", "a: :include:etc/x, :include:\n",
     "a(1): broken\n",
     "aliases:1: target \":include:etc/x\" is not an absolute path\n"
     "aliases:1: target \":include:\" is not an absolute path\n"},
    {"file or include naming a directory", "a: /var/mail/, :include:/x/\n",
     "a(1): broken\n",
     "aliases:1: target \"/var/mail/\" names a directory\n"
     "aliases:1: target \":include:/x/\" names a directory\n"},
    {"quote of a target not closed", "a: \"|cmd, b\nc: d\n",
     "a(1): broken\nc(2): name d\n",
     "aliases:1: target \"\"|cmd, b\": the quote is not closed\n"},
    {"empty quoted target", "a: \"\"\n", "a(1): broken\n",
     "aliases:1: target \"\"\"\" is empty\n"},
    {"control character in a target", "a: |x\x7fy, /f\x01\n",
     "a(1): broken\n",
     "aliases:1: target \"|x?y\" holds a control character\n"
     "aliases:1: target \"/f?\" holds a control character\n"},
    {"malformed UTF-8 in a target", "a: /f\xff\n", "a(1): broken\n",
     "aliases:1: target \"/f?\" is not valid UTF-8\n"},
    {"bad \\name", "a: \\, \\b c\n", "a(1): broken\n",
     "aliases:1: target \"\\\" is empty\n"
     "aliases:1: target \"\\b c\" holds a space\n"},
    {"\\name with an address", "a: \\b@example.com\n", "a(1): broken\n",
     "aliases:1: target \"\\b@example.com\" is a local user and holds "
     "'@'\n"},
    {"a mistake on a continuation line has that line",
     "staff: a,\n  b c,\n  d\n", "staff(1): broken\n",
     "aliases:2: target \"b c\" holds a space\n"},
    {"duplicate: the first is kept", "a: x\nb: y\nA: z\n",
     "a(1): name x\nb(2): name y\n",
     "aliases:3: a is defined again (line 1 is used)\n"},
    {"duplicate of a broken entry: still the first",
     "a: b c\na: x\n", "a(1): broken\n",
     "aliases:1: target \"b c\" holds a space\n"
     "aliases:2: a is defined again (line 1 is used)\n"},
    {"every mistake, in line order",
     "b: y\nbad\na: b c\nb: z,\n  \n c d\n", "a(3): broken\nb(1): name y\n",
     "aliases:2: no ':' after the name \"bad\"\n"
     "aliases:3: target \"b c\" holds a space\n"
     "aliases:4: b is defined again (line 1 is used)\n"
     "aliases:6: target \"c d\" holds a space\n"},
};

static void
test_parse(void **state)
{
	struct aliases *a;
	struct buf errs;
	size_t i, nerrs;
	char *dump;

	(void)state;
	for (i = 0; i < NROWS(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];

		buf_init(&errs);
		a = aliases_parse(c->text, strlen(c->text), "aliases", &errs,
		    &nerrs);
		dump = dump_table(a);
		CHECK_STR(c->what, dump, c->table);
		CHECK_STR(c->what, errs.data, c->errs);
		CHECK(c->what, nerrs == count_lines(c->errs));
		free(dump);
		buf_free(&errs);
		aliases_free(a);
	}
}

/* the line of each target, when an entry spans lines */
static void
test_parse_target_lines(void **state)
{
	const char *text = "# x\nstaff: a,\n\n  b, c\n\t,d\n";
	struct aliases *a;
	size_t nerrs;

	(void)state;
	a = aliases_parse(text, strlen(text), "aliases", NULL, &nerrs);
	assert_int_equal(nerrs, 0);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->entries[0].line, 2);
	assert_int_equal(a->entries[0].ntargets, 4);
	assert_int_equal(a->entries[0].targets[0].line, 2);
	assert_int_equal(a->entries[0].targets[1].line, 4);
	assert_int_equal(a->entries[0].targets[2].line, 4);
	assert_int_equal(a->entries[0].targets[3].line, 5);
	aliases_free(a);
}

/* a list of n targets "u1, u2, ..." */
static void
gen_list(struct buf *b, const char *prefix, size_t from, size_t to)
{
	size_t i;

	for (i = from; i <= to; i++)
		buf_printf(b, "%s%s%zu", i > from ? ", " : "", prefix, i);
}

static void
test_parse_limits(void **state)
{
	struct aliases *a;
	struct buf text, errs;
	size_t nerrs;

	(void)state;
	/* ALIASES_TARGETS_MAX targets are fine, one more is a mistake */
	buf_init(&text);
	buf_puts(&text, "ok: ");
	gen_list(&text, "u", 1, ALIASES_TARGETS_MAX);
	buf_puts(&text, "\nover: ");
	gen_list(&text, "u", 1, ALIASES_TARGETS_MAX + 1);
	buf_puts(&text, "\n");
	buf_init(&errs);
	a = aliases_parse(text.data, text.len, "aliases", &errs, &nerrs);
	assert_int_equal(nerrs, 1);
	assert_string_equal(errs.data, "aliases:2: more than 1000 targets "
				       "for over\n");
	assert_int_equal(a->n, 2);
	assert_int_equal(a->entries[0].ntargets, ALIASES_TARGETS_MAX);
	assert_true(a->entries[1].broken);
	aliases_free(a);

	/* an entry longer than ALIASES_ENTRY_MAX: kept by name, broken */
	buf_reset(&text);
	buf_reset(&errs);
	buf_puts(&text, "long: x");
	while (text.len <= ALIASES_ENTRY_MAX + 1000)
		buf_printf(&text, ",\n  /var/mail/%0300d", 0);
	buf_puts(&text, "\nnext: y\n");
	a = aliases_parse(text.data, text.len, "aliases", &errs, &nerrs);
	assert_int_equal(nerrs, 1);
	assert_string_equal(errs.data, "aliases:1: the entry for long is "
				       "longer than 65536 octets\n");
	assert_int_equal(a->n, 2);
	assert_true(a->entries[0].broken);
	assert_string_equal(a->entries[1].name, "next");
	assert_false(a->entries[1].broken);
	aliases_free(a);

	/* a NUL is a control character */
	buf_reset(&errs);
	a = aliases_parse("a: b\0c\n", 7, "aliases", &errs, &nerrs);
	assert_int_equal(nerrs, 1);
	assert_string_equal(errs.data, "aliases:1: target \"b?c\" holds a "
				       "control character\n");
	aliases_free(a);
	buf_free(&text);
	buf_free(&errs);

	/* empty input, NULL errs */
	a = aliases_parse("", 0, "aliases", NULL, NULL);
	assert_int_equal(a->n, 0);
	aliases_free(a);
}

/* ---- lookup --------------------------------------------------------- */

struct find_case {
	const char *what;
	const char *name;
	const char *first; /* its first target, or NULL: not found */
};

static const char find_text[] = "root: bob\nPostmaster: root\n"
				"\"owner#List\": ann\nzed: z\nabc: a\n"
				"bad: b c\n";

static const struct find_case find_cases[] = {
    {"exact", "root", "bob"},
    {"upper case asked", "ROOT", "bob"},
    {"stored folded, asked mixed", "PostMaster", "root"},
    {"quoted name", "OWNER#list", "ann"},
    {"first in order", "abc", "a"},
    {"last in order", "zed", "z"},
    {"a broken entry is found", "bad", ""},
    {"unknown", "nobody", NULL},
    {"prefix of a name", "roo", NULL},
    {"name plus more", "roots", NULL},
    {"empty", "", NULL},
};

static void
test_find(void **state)
{
	const struct aliases_entry *e;
	struct aliases *a;
	size_t i;

	(void)state;
	a = aliases_parse(find_text, strlen(find_text), "aliases", NULL, NULL);
	for (i = 0; i < NROWS(find_cases); i++) {
		const struct find_case *c = &find_cases[i];

		e = aliases_find(a, c->name);
		if (c->first == NULL) {
			CHECK(c->what, e == NULL);
			continue;
		}
		CHECK(c->what, e != NULL);
		CHECK_STR(c->what, e->ntargets ? e->targets[0].value : "",
		    c->first);
	}
	aliases_free(a);
	assert_null(aliases_find(NULL, "root"));
}

/* ---- the fake caller: local domains, include files ------------------ */

static const struct {
	const char *path, *text;
} include_files[] = {
    {"/inc/team", "carol, dave\n# the team\n\"|/usr/bin/log team\"\n"},
    {"/inc/nested", ":include:/inc/team\n/var/spool/x\n"},
    {"/inc/self", ":include:/inc/self\n"},
    {"/inc/bad", "carol\nfoo bar\n"},
    {"/inc/bob", "bob, carol\n"},
    {"/inc/back", "a\n"},
    {"/inc/empty", "# nobody yet\n"},
};

static int reads; /* include files read, for the rows that count */

static int
fake_local(const char *domain, void *arg)
{
	(void)arg;
	return strcmp(domain, "example.org") == 0 ||
	       strcmp(domain, "localhost") == 0;
}

static int
fake_read(const char *path, struct buf *out, char *err, size_t errlen,
    void *arg)
{
	size_t i;

	(void)arg;
	reads++;
	if (strcmp(path, "/inc/huge") == 0) {
		for (i = 0; i <= ALIASES_INCLUDE_MAX; i += 8)
			buf_puts(out, "#######\n");
		return 0;
	}
	for (i = 0; i < NROWS(include_files); i++) {
		if (strcmp(path, include_files[i].path) == 0) {
			buf_puts(out, include_files[i].text);
			return 0;
		}
	}
	if (snprintf(err, errlen, "%s",
		strcmp(path, "/inc/denied") == 0 ? "permission denied"
						 : "no such file") < 0)
		return -1;
	return -1;
}

static const struct aliases_ops fake_ops = {fake_local, fake_read, NULL};

/* ---- expansion ------------------------------------------------------ */

struct expand_case {
	const char *what;
	const char *text; /* the aliases file; NULL: gen makes it */
	void (*gen)(struct buf *);
	const char *name;
	enum aliases_status st;
	const char *want;  /* dump_expansion; NULL: only count */
	size_t ndests;     /* when want is NULL */
};

/* a chain of n aliases a1: a2, ..., an: end */
static void
gen_chain(struct buf *b, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		buf_printf(b, "a%zu: a%zu\n", i, i + 1);
	buf_printf(b, "a%zu: end\n", n);
}

static void
gen_chain_20(struct buf *b)
{
	gen_chain(b, ALIASES_DEPTH_MAX);
}

static void
gen_chain_21(struct buf *b)
{
	gen_chain(b, ALIASES_DEPTH_MAX + 1);
}

/* big: b1, b2 with n users in all */
static void
gen_fanout(struct buf *b, size_t n)
{
	buf_puts(b, "big: b1, b2\nb1: ");
	gen_list(b, "u", 1, n / 2);
	buf_puts(b, "\nb2: ");
	gen_list(b, "u", n / 2 + 1, n);
	buf_puts(b, "\n");
}

static void
gen_fanout_max(struct buf *b)
{
	gen_fanout(b, ALIASES_EXPAND_MAX);
}

static void
gen_fanout_over(struct buf *b)
{
	gen_fanout(b, ALIASES_EXPAND_MAX + 1);
}

/* d: x1, y1; xi, yi: x(i+1), y(i+1): 2^18 paths to "end" */
static void
gen_diamond(struct buf *b)
{
	size_t i;

	buf_puts(b, "d: x1, y1\n");
	for (i = 1; i < 18; i++)
		buf_printf(b, "x%zu: x%zu, y%zu\ny%zu: x%zu, y%zu\n", i, i + 1,
		    i + 1, i, i + 1, i + 1);
	buf_puts(b, "x18: end\ny18: end\n");
}

/* w: b1..b11, each the same 1000 users: 11011 targets to look at */
static void
gen_work(struct buf *b)
{
	size_t i;

	buf_puts(b, "w: ");
	gen_list(b, "b", 1, 11);
	buf_puts(b, "\n");
	for (i = 1; i <= 11; i++) {
		buf_printf(b, "b%zu: ", i);
		gen_list(b, "u", 1, ALIASES_EXPAND_MAX);
		buf_puts(b, "\n");
	}
}

/* i: n times :include:/inc/empty */
static void
gen_includes(struct buf *b, size_t n)
{
	size_t i;

	buf_puts(b, "i: x");
	for (i = 0; i < n; i++)
		buf_puts(b, ",\n  :include:/inc/empty");
	buf_puts(b, "\n");
}

static void
gen_includes_max(struct buf *b)
{
	gen_includes(b, ALIASES_INCLUDES_MAX);
}

static void
gen_includes_over(struct buf *b)
{
	gen_includes(b, ALIASES_INCLUDES_MAX + 1);
}

static const struct expand_case expand_cases[] = {
    {"not an alias: the local user", "root: bob\n", NULL, "ann", ALIASES_OK,
     "user ann", 0},
    {"the name is folded", "root: bob\n", NULL, "ANN", ALIASES_OK,
     "user ann", 0},
    {"one target", "root: bob\n", NULL, "root", ALIASES_OK,
     "user bob (root)", 0},
    {"asked in upper case", "root: bob\n", NULL, "Root", ALIASES_OK,
     "user bob (root)", 0},
    {"fan-out", "staff: ann, bob, carol\n", NULL, "staff", ALIASES_OK,
     "user ann (staff); user bob (staff); user carol (staff)", 0},
    {"nested", "postmaster: root\nroot: admins, ops@example.net\n"
	       "admins: ann, bob\n",
     NULL, "postmaster", ALIASES_OK,
     "user ann (admins); user bob (admins); address ops@example.net (root)",
     0},
    {"self-reference: delivered to the local user", "bob: bob, ann\n", NULL,
     "bob", ALIASES_OK, "user bob (bob); user ann (bob)", 0},
    {"self-reference reached through another alias",
     "team: bob, carol\nbob: bob, ann\n", NULL, "team", ALIASES_OK,
     "user bob (bob); user ann (bob); user carol (team)", 0},
    {"\\name: the local user, not looked up", "bob: \\bob, \\ann\nann: x\n",
     NULL, "bob", ALIASES_OK, "user bob (bob); user ann (bob)", 0},
    {"two-name loop", "a: b\nb: a\n", NULL, "a", ALIASES_PERMFAIL,
     "5.4.6 alias loop: a -> b -> a", 0},
    {"three-name loop", "a: b\nb: c\nc: x, a\n", NULL, "a", ALIASES_PERMFAIL,
     "5.4.6 alias loop: a -> b -> c -> a", 0},
    {"loop entered from outside", "top: a\na: b\nb: a\n", NULL, "top",
     ALIASES_PERMFAIL, "5.4.6 alias loop: top -> a -> b -> a", 0},
    {"loop through a local-domain address", "a: b@example.org\nb: a\n", NULL,
     "a", ALIASES_PERMFAIL, "5.4.6 alias loop: a -> b -> a", 0},
    {"a shared sublist is no loop", "all: a, b\na: s\nb: s\ns: x, y\n", NULL,
     "all", ALIASES_OK, "user x (s); user y (s)", 0},
    {"depth: 20 nested aliases", NULL, gen_chain_20, "a1", ALIASES_OK,
     "user end (a20)", 0},
    {"depth: 21 nested aliases", NULL, gen_chain_21, "a1", ALIASES_PERMFAIL,
     "5.4.6 expanding a1: aliases nested more than 20 deep at a21", 0},
    {"targets: 1000", NULL, gen_fanout_max, "big", ALIASES_OK, NULL,
     ALIASES_EXPAND_MAX},
    {"targets: 1001", NULL, gen_fanout_over, "big", ALIASES_PERMFAIL,
     "5.3.5 expanding big gives more than 1000 targets", 0},
    {"shared sublists walked once", NULL, gen_diamond, "d", ALIASES_OK,
     "user end (x18)", 0},
    {"work: more than 10000 targets looked at", NULL, gen_work, "w",
     ALIASES_PERMFAIL,
     "5.3.5 expanding w looks at more than 10000 targets", 0},
    {"duplicates removed, first kept",
     "a: bob, Bob, \\BOB, b, bob@example.net, BOB@Example.NET\nb: bob, "
     "ann\n",
     NULL, "a", ALIASES_OK,
     "user bob (a); user ann (b); address bob@example.net (a)", 0},
    {"files and pipes compared exactly", "a: /m/A, /m/a, |x, |X, /m/a\n",
     NULL, "a", ALIASES_OK,
     "file /m/A (a); file /m/a (a); pipe x (a); pipe X (a)", 0},
    {"same value, another kind, kept", "a: \\x, x@example.net, |x\n", NULL,
     "a", ALIASES_OK, "user x (a); address x@example.net (a); pipe x (a)",
     0},
    {"local-domain address folded to its name",
     "a: Bob@Example.ORG, root@localhost\nroot: ann\n", NULL, "a",
     ALIASES_OK, "user bob (a); user ann (root)", 0},
    {"local-domain address of the alias itself", "bob: bob@example.org, x\n",
     NULL, "bob", ALIASES_OK, "user bob (bob); user x (bob)", 0},
    {"remote address kept", "a: bob@example.net\nbob: x\n", NULL, "a",
     ALIASES_OK, "address bob@example.net (a)", 0},
    {"quoted local part in a local domain kept",
     "a: \"bob x\"@example.org\n", NULL, "a", ALIASES_OK,
     "address \"bob x\"@example.org (a)", 0},
    {"pipes and files carry their alias",
     "list: owner, |/usr/bin/archive, /var/mail/list\n"
     "owner: |/usr/bin/notify, /var/log/owner\n",
     NULL, "list", ALIASES_OK,
     "pipe /usr/bin/notify (owner); file /var/log/owner (owner); "
     "pipe /usr/bin/archive (list); file /var/mail/list (list)",
     0},
    {":include: through the reader", "team: :include:/inc/team, ann\n", NULL,
     "team", ALIASES_OK,
     "user carol (team, /inc/team); user dave (team, /inc/team); "
     "pipe /usr/bin/log team (team, /inc/team); user ann (team)",
     0},
    {":include: nested", "n: :include:/inc/nested\ndave: \\dave, d2\n", NULL,
     "n", ALIASES_OK,
     "user carol (n, /inc/team); user dave (dave); user d2 (dave); "
     "pipe /usr/bin/log team (n, /inc/team); "
     "file /var/spool/x (n, /inc/nested)",
     0},
    {":include: listing the alias itself", "bob: :include:/inc/bob\n", NULL,
     "bob", ALIASES_OK, "user bob (bob, /inc/bob); user carol (bob, /inc/bob)",
     0},
    {":include: empty", "e: :include:/inc/empty, x\n", NULL, "e", ALIASES_OK,
     "user x (e)", 0},
    {":include: unreadable: temporary", "a: x, :include:/inc/denied\n", NULL,
     "a", ALIASES_TEMPFAIL, "4.3.0 :include:/inc/denied: permission denied",
     0},
    {":include: missing: temporary", "a: :include:/inc/none\n", NULL, "a",
     ALIASES_TEMPFAIL, "4.3.0 :include:/inc/none: no such file", 0},
    {":include: with a mistake: permanent", "a: :include:/inc/bad\n", NULL,
     "a", ALIASES_PERMFAIL,
     "5.3.5 /inc/bad:2: target \"foo bar\" holds a space", 0},
    {":include: too large: permanent", "a: :include:/inc/huge\n", NULL, "a",
     ALIASES_PERMFAIL, "5.3.5 :include:/inc/huge: larger than 1048576 octets",
     0},
    {":include: of itself", "a: :include:/inc/self\n", NULL, "a",
     ALIASES_PERMFAIL,
     "5.4.6 alias loop: a -> :include:/inc/self -> :include:/inc/self", 0},
    {":include: back to an alias on the path",
     "a: b\nb: :include:/inc/back\n", NULL, "a", ALIASES_PERMFAIL,
     "5.4.6 alias loop: a -> b -> :include:/inc/back -> a", 0},
    {":include: 100 files read", NULL, gen_includes_max, "i", ALIASES_OK,
     "user x (i)", 0},
    {":include: 101 files read", NULL, gen_includes_over, "i",
     ALIASES_PERMFAIL,
     "5.3.5 expanding i reads more than 100 :include: files", 0},
    {"broken entry: temporary", "a: b\nb: x y\n", NULL, "a",
     ALIASES_TEMPFAIL, "4.3.5 the alias b (line 2) has a mistake", 0},
    {"a failure leaves no partial list", "a: x, y, b\nb: c\nc: b\n", NULL,
     "a", ALIASES_PERMFAIL, "5.4.6 alias loop: a -> b -> c -> b", 0},
};

static void
test_expand(void **state)
{
	struct aliases_expansion x;
	enum aliases_status st;
	struct aliases *a;
	struct buf text;
	size_t i, nerrs;
	char *dump;

	(void)state;
	for (i = 0; i < NROWS(expand_cases); i++) {
		const struct expand_case *c = &expand_cases[i];

		buf_init(&text);
		if (c->gen != NULL)
			c->gen(&text);
		else
			buf_puts(&text, c->text);
		a = aliases_parse(text.data, text.len, "aliases", NULL, &nerrs);
		CHECK(c->what, nerrs == 0 || strstr(c->what, "broken"));
		st = aliases_expand(a, c->name, &fake_ops, &x);
		CHECK(c->what, st == c->st);
		if (st != ALIASES_OK)
			CHECK(c->what, x.ndests == 0 && x.dests == NULL);
		if (c->want != NULL) {
			dump = dump_expansion(st, &x);
			CHECK_STR(c->what, dump, c->want);
			free(dump);
		} else {
			CHECK(c->what, x.ndests == c->ndests);
		}
		aliases_expansion_free(&x);
		aliases_free(a);
		buf_free(&text);
	}
}

/* the reader is asked once per :include: met, never for a shared alias */
static void
test_expand_reads(void **state)
{
	const char *text = "all: a, b\na: t\nb: t\nt: :include:/inc/team\n";
	struct aliases_expansion x;
	struct aliases *a;

	(void)state;
	a = aliases_parse(text, strlen(text), "aliases", NULL, NULL);
	reads = 0;
	assert_int_equal(aliases_expand(a, "all", &fake_ops, &x), ALIASES_OK);
	assert_int_equal(reads, 1);
	assert_int_equal(x.ndests, 3);
	aliases_expansion_free(&x);
	aliases_free(a);
}

/* without a reader or a local-domain test */
static void
test_expand_no_ops(void **state)
{
	const char *text = "a: b@example.org, :include:/inc/team\n";
	struct aliases_expansion x;
	struct aliases *a;
	char *dump;

	(void)state;
	a = aliases_parse(text, strlen(text), "aliases", NULL, NULL);
	assert_int_equal(aliases_expand(a, "a", NULL, &x), ALIASES_TEMPFAIL);
	dump = dump_expansion(ALIASES_TEMPFAIL, &x);
	assert_string_equal(dump, "4.3.0 :include:/inc/team: include files "
				  "are not read here");
	free(dump);
	aliases_expansion_free(&x);
	aliases_free(a);

	/* no table at all: every name is a local user */
	assert_int_equal(aliases_expand(NULL, "Bob", NULL, &x), ALIASES_OK);
	dump = dump_expansion(ALIASES_OK, &x);
	assert_string_equal(dump, "user bob");
	free(dump);
	aliases_expansion_free(&x);
}

/* ---- ~/.forward ----------------------------------------------------- */

struct forward_case {
	const char *what;
	const char *text;
	const char *targets; /* dump_targets */
	const char *errs;
};

static const struct forward_case forward_cases[] = {
    {"one address", "bob@example.net\n", "address bob@example.net", ""},
    {"own mailbox and a copy", "\\bob, bob@example.net",
     "user bob; address bob@example.net", ""},
    {"one per line", "ann\nbob\r\n\ncarol", "name ann; name bob; name carol",
     ""},
    {"comments", "# forward\n  # more\nann # not a comment\n", "",
     ".forward:3: target \"ann # not a comment\" holds a space\n"},
    {"quoted pipe with commas", "\"|/usr/bin/procmail -a x,y\"\n",
     "pipe /usr/bin/procmail -a x,y", ""},
    {"every kind", "|cmd\n/home/bob/mbox\n:include:/home/bob/list\n\\Bob\n"
		   "Ann\nx@y.example\n",
     "pipe cmd; file /home/bob/mbox; include /home/bob/list; user bob; "
     "name ann; address x@y.example",
     ""},
    {"leading blanks are no continuation", "ann,\n  bob\n",
     "name ann; name bob", ""},
    {"a quote does not span lines", "\"|cmd\nx\"\n", "",
     ".forward:1: target \"\"|cmd\": the quote is not closed\n"
     ".forward:2: target \"x\"\" holds ':', ',', '\"' or '\\'\n"},
    {"mistakes left out, the rest kept", "ann, b c\n:include:x\nbob\n",
     "name ann; name bob",
     ".forward:1: target \"b c\" holds a space\n"
     ".forward:2: target \":include:x\" is not an absolute path\n"},
    {"empty", "", "", ""},
};

static void
test_forward(void **state)
{
	struct aliases_target *t;
	struct buf errs, dump;
	size_t i, n, nerrs;

	(void)state;
	for (i = 0; i < NROWS(forward_cases); i++) {
		const struct forward_case *c = &forward_cases[i];

		buf_init(&errs);
		buf_init(&dump);
		nerrs = aliases_parse_targets(c->text, strlen(c->text),
		    ".forward", &t, &n, &errs);
		dump_targets(&dump, t, n);
		CHECK_STR(c->what, dump.data, c->targets);
		CHECK_STR(c->what, errs.data, c->errs);
		CHECK(c->what, nerrs == count_lines(c->errs));
		aliases_targets_free(t, n);
		buf_free(&dump);
		buf_free(&errs);
	}
}

static void
test_forward_limits(void **state)
{
	struct aliases_target *t;
	struct buf text, errs;
	size_t n, nerrs;

	(void)state;
	buf_init(&text);
	buf_init(&errs);
	gen_list(&text, "u", 1, ALIASES_TARGETS_MAX);
	buf_puts(&text, "\nmore, and more\nstill\n");
	nerrs = aliases_parse_targets(text.data, text.len, ".forward", &t, &n,
	    &errs);
	assert_int_equal(nerrs, 1);
	assert_string_equal(errs.data, ".forward:2: more than 1000 targets\n");
	assert_int_equal(n, ALIASES_TARGETS_MAX);
	aliases_targets_free(t, n);

	buf_reset(&text);
	buf_reset(&errs);
	while (text.len <= ALIASES_ENTRY_MAX)
		buf_puts(&text, "abcdefgh, ");
	buf_puts(&text, "\nann\n");
	nerrs = aliases_parse_targets(text.data, text.len, ".forward", &t, &n,
	    &errs);
	assert_int_equal(nerrs, 1);
	assert_string_equal(errs.data,
	    ".forward:1: the line is longer than 65536 octets\n");
	assert_int_equal(n, 1);
	assert_string_equal(t[0].value, "ann");
	aliases_targets_free(t, n);
	buf_free(&text);
	buf_free(&errs);
}

struct forward_expand_case {
	const char *what;
	const char *aliases;
	const char *owner;
	const char *forward;
	enum aliases_status st;
	const char *want;
};

static const struct forward_expand_case forward_expand_cases[] = {
    {"own name: own mailbox", "", "bob", "bob, bob@example.net", ALIASES_OK,
     "user bob (bob); address bob@example.net (bob)"},
    {"\\own name and a pipe", "", "Bob", "\\bob, \"|/usr/bin/vacation bob\"",
     ALIASES_OK, "user bob (bob); pipe /usr/bin/vacation bob (bob)"},
    {"own address in a local domain", "", "bob", "Bob@localhost",
     ALIASES_OK, "user bob (bob)"},
    {"other names go through the aliases", "staff: ann, carol\n", "bob",
     "staff, dave", ALIASES_OK,
     "user ann (staff); user carol (staff); user dave (bob)"},
    {"back to the owner through an alias: a loop", "x: bob\n", "bob", "x",
     ALIASES_PERMFAIL, "5.4.6 alias loop: bob -> x -> bob"},
    {"an include of the user's", "", "bob", ":include:/inc/team",
     ALIASES_OK,
     "user carol (bob, /inc/team); user dave (bob, /inc/team); "
     "pipe /usr/bin/log team (bob, /inc/team)"},
};

static void
test_forward_expand(void **state)
{
	struct aliases_expansion x;
	struct aliases_target *t;
	struct aliases *a;
	enum aliases_status st;
	size_t i, n;
	char *dump;

	(void)state;
	for (i = 0; i < NROWS(forward_expand_cases); i++) {
		const struct forward_expand_case *c = &forward_expand_cases[i];

		a = aliases_parse(c->aliases, strlen(c->aliases), "aliases",
		    NULL, NULL);
		CHECK(c->what, aliases_parse_targets(c->forward,
				   strlen(c->forward), ".forward", &t, &n,
				   NULL) == 0);
		st = aliases_expand_list(a, c->owner, t, n, &fake_ops, &x);
		CHECK(c->what, st == c->st);
		dump = dump_expansion(st, &x);
		CHECK_STR(c->what, dump, c->want);
		free(dump);
		aliases_expansion_free(&x);
		aliases_targets_free(t, n);
		aliases_free(a);
	}
	/* without a table */
	assert_int_equal(aliases_parse_targets("ann", 3, ".forward", &t, &n,
			     NULL),
	    0);
	assert_int_equal(aliases_expand_list(NULL, "bob", t, n, NULL, &x),
	    ALIASES_OK);
	dump = dump_expansion(ALIASES_OK, &x);
	assert_string_equal(dump, "user ann (bob)");
	free(dump);
	aliases_expansion_free(&x);
	aliases_targets_free(t, n);
}

static void
test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(aliases_kind_name(ALIASES_USER), "user");
	assert_string_equal(aliases_kind_name(ALIASES_ADDRESS), "address");
	assert_string_equal(aliases_kind_name(ALIASES_FILE), "file");
	assert_string_equal(aliases_kind_name(ALIASES_PIPE), "pipe");
	assert_string_equal(aliases_kind_name(ALIASES_NAME), "name");
	assert_string_equal(aliases_kind_name(ALIASES_INCLUDE), "include");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_target_lines),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_expand_reads),
	    cmocka_unit_test(test_expand_no_ops),
	    cmocka_unit_test(test_forward),
	    cmocka_unit_test(test_forward_limits),
	    cmocka_unit_test(test_forward_expand),
	    cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

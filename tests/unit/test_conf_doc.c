/*
 * test_conf_doc.c - tern.conf(5) documents exactly the keys the parser
 * knows: every key of conf_keys() has a .TP entry under KEYS, every entry
 * there is such a key; and every name=value option of a key with a table
 * of them (conf_key_options: listen, limits, timeouts, retry) has an
 * ".IP \fBname=" entry under that key, and no other option is there.
 * The page is $TERN_SRCDIR/docs/tern.conf.5, TERN_SRCDIR defaulting to the
 * current directory (the project root under make).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

/* one .TP entry: the section it is in and the first word of its tag; or
 * one option of it: an .IP entry whose tag is "name=..." (opt: the name) */
struct entry {
	char *section;
	char *key;
	char *opt; /* NULL for the .TP entry of the key itself */
};

struct page {
	struct entry *v;
	size_t n;
};

/*
 * tag_word - the first word of a tag line such as
 * ".BI local\-domains \" domain ...\"": the macro, quotes and font changes
 * dropped, "\-" read as '-'.
 */
static char *
tag_word(const char *s)
{
	struct buf b;

	buf_init(&b);
	if (*s == '.')
		s += strcspn(s, " ");
	s += strspn(s, " \"");
	while (*s != '\0' && *s != ' ' && *s != '"') {
		if (s[0] == '\\' && s[1] == 'f' && s[2] != '\0') {
			s += 3;
			continue;
		}
		if (s[0] == '\\' && s[1] == '-') {
			buf_putc(&b, '-');
			s += 2;
			continue;
		}
		if (s[0] == '\\')
			break;
		buf_putc(&b, *s++);
	}
	return b.data;
}

/* section_name - the title of a ".SH" line, quotes removed */
static char *
section_name(const char *line)
{
	char *s = xstrdup(line + strspn(line + 3, " ") + 3), *q;

	while ((q = strchr(s, '"')) != NULL)
		memmove(q, q + 1, strlen(q));
	return s;
}

/* page_add_opt - note an .IP line of key when its tag is "name=..." */
static void
page_add_opt(struct page *pg, const char *section, const char *key,
    const char *line)
{
	char *w = tag_word(line), *eq = strchr(w, '=');

	if (eq == NULL) {
		free(w);
		return;
	}
	*eq = '\0';
	pg->v = xreallocarray(pg->v, pg->n + 1, sizeof(*pg->v));
	pg->v[pg->n].section = xstrdup(section);
	pg->v[pg->n].key = xstrdup(key);
	pg->v[pg->n++].opt = w;
}

static void
page_load(struct page *pg)
{
	const char *dir = getenv("TERN_SRCDIR");
	char *path = xasprintf("%s/docs/tern.conf.5", dir && *dir ? dir : ".");
	char *line = NULL, *section = xstrdup(""), *key = NULL;
	size_t cap = 0;
	ssize_t len;
	int tag_next = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		fail_msg("cannot open %s (set TERN_SRCDIR)", path);
	memset(pg, 0, sizeof(*pg));
	while ((len = getline(&line, &cap, fp)) != -1) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, ".SH ", 4) == 0) {
			free(section);
			section = section_name(line);
		}
		if (tag_next) {
			pg->v = xreallocarray(pg->v, pg->n + 1, sizeof(*pg->v));
			pg->v[pg->n].section = xstrdup(section);
			pg->v[pg->n].opt = NULL;
			pg->v[pg->n++].key = tag_word(line);
			free(key);
			key = tag_word(line);
		} else if (key != NULL && strncmp(line, ".IP \\fB", 7) == 0) {
			page_add_opt(pg, section, key, line);
		}
		if (strncmp(line, ".SH ", 4) == 0) {
			free(key);
			key = NULL;
		}
		tag_next = strcmp(line, ".TP") == 0;
	}
	free(line);
	free(key);
	free(section);
	free(path);
	fclose(fp);
}

static void
page_free(struct page *pg)
{
	size_t i;

	for (i = 0; i < pg->n; i++) {
		free(pg->v[i].section);
		free(pg->v[i].key);
		free(pg->v[i].opt);
	}
	free(pg->v);
}

/* page_count - how many entries of section have key as first word */
static size_t
page_count(const struct page *pg, const char *section, const char *key)
{
	size_t i, n = 0;

	for (i = 0; i < pg->n; i++)
		if (pg->v[i].opt == NULL &&
		    strcmp(pg->v[i].section, section) == 0 &&
		    strcmp(pg->v[i].key, key) == 0)
			n++;
	return n;
}

/* page_count_opt - how many option entries of key under KEYS name opt */
static size_t
page_count_opt(const struct page *pg, const char *key, const char *opt)
{
	size_t i, n = 0;

	for (i = 0; i < pg->n; i++)
		if (pg->v[i].opt != NULL &&
		    strcmp(pg->v[i].section, "KEYS") == 0 &&
		    strcmp(pg->v[i].key, key) == 0 &&
		    strcmp(pg->v[i].opt, opt) == 0)
			n++;
	return n;
}

static int
in_list(const char *const *list, const char *key)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, key) == 0)
			return 1;
	return 0;
}

/* the sections and the keys each must document, exactly once */
struct section_case {
	const char *section;
	const char *const *(*keys)(void);
};

static const struct section_case section_cases[] = {
	{ "KEYS", conf_keys },
};

static void
test_every_key_documented(void **state)
{
	struct page pg;
	const char *const *k;
	size_t i;

	(void)state;
	page_load(&pg);
	for (i = 0; i < sizeof(section_cases) / sizeof(section_cases[0]); i++)
		for (k = section_cases[i].keys(); *k != NULL; k++)
			if (page_count(&pg, section_cases[i].section, *k) != 1)
				fail_msg("key %s: %zu entries under %s, want 1",
				    *k, page_count(&pg,
				    section_cases[i].section, *k),
				    section_cases[i].section);
	page_free(&pg);
}

/* no entry under KEYS names a key the code lacks */
static void
test_no_stale_entry(void **state)
{
	struct page pg;
	size_t i, j, n = 0;

	(void)state;
	page_load(&pg);
	for (i = 0; i < pg.n; i++) {
		if (pg.v[i].opt != NULL)
			continue;
		for (j = 0; j < sizeof(section_cases) /
		     sizeof(section_cases[0]); j++) {
			if (strcmp(pg.v[i].section,
			    section_cases[j].section) != 0)
				continue;
			n++;
			if (!in_list(section_cases[j].keys(), pg.v[i].key))
				fail_msg("%s documents unknown key \"%s\"",
				    pg.v[i].section, pg.v[i].key);
		}
	}
	assert_true(n > 0);
	page_free(&pg);
}

/* every option of listen, limits, timeouts and retry has one entry */
static void
test_every_option_documented(void **state)
{
	struct page pg;
	const char *const *k, *const *o;
	size_t n = 0;

	(void)state;
	page_load(&pg);
	for (k = conf_keys(); *k != NULL; k++) {
		for (o = conf_key_options(*k); o != NULL && *o != NULL; o++) {
			n++;
			if (page_count_opt(&pg, *k, *o) != 1)
				fail_msg("%s %s=: %zu entries under it, want 1",
				    *k, *o, page_count_opt(&pg, *k, *o));
		}
	}
	assert_true(n > 0);
	page_free(&pg);
}

/* no option entry under those keys names an option the code lacks */
static void
test_no_stale_option(void **state)
{
	struct page pg;
	size_t i;

	(void)state;
	page_load(&pg);
	for (i = 0; i < pg.n; i++) {
		if (pg.v[i].opt == NULL ||
		    strcmp(pg.v[i].section, "KEYS") != 0 ||
		    conf_key_options(pg.v[i].key) == NULL)
			continue;
		if (!in_list(conf_key_options(pg.v[i].key), pg.v[i].opt))
			fail_msg("%s documents unknown option \"%s=\"",
			    pg.v[i].key, pg.v[i].opt);
	}
	page_free(&pg);
}

/* the tag parser itself: the forms the page uses */
struct tag_case {
	const char *line;
	const char *word;
};

static const struct tag_case tag_cases[] = {
	{ ".BI hostname \" name\"", "hostname" },
	{ ".BI local\\-domains \" domain ...\"", "local-domains" },
	{ ".BR recipients \" any | system\"", "recipients" },
	{ ".B tls", "tls" },
	{ "\\fBlog\\fR stderr", "log" },
	{ ".BI listen \" addr\" : port", "listen" },
	{ ".B \"relay\\-domains\"", "relay-domains" },
	{ ".IP \\fBdata\\-rate=\\fIsize\\fR 4", "data-rate=size" },
};

static void
test_tag_word(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tag_cases) / sizeof(tag_cases[0]); i++) {
		char *w = tag_word(tag_cases[i].line);

		assert_string_equal(w, tag_cases[i].word);
		free(w);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_word),
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_no_stale_entry),
		cmocka_unit_test(test_every_option_documented),
		cmocka_unit_test(test_no_stale_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

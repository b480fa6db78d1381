/*
 * test_conf_doc.c - tern.conf(5) documents exactly the keys the parser
 * knows: every key of conf_keys() has a .TP entry under KEYS, every entry
 * there is such a key.  The page is $TERN_SRCDIR/docs/tern.conf.5, TERN_SRCDIR
 * defaulting to the current directory (the project root under make).
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

/* one .TP entry: the section it is in and the first word of its tag */
struct entry {
	char *section;
	char *key;
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

static void
page_load(struct page *pg)
{
	const char *dir = getenv("TERN_SRCDIR");
	char *path = xasprintf("%s/docs/tern.conf.5", dir && *dir ? dir : ".");
	char *line = NULL, *section = xstrdup("");
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
			pg->v[pg->n++].key = tag_word(line);
		}
		tag_next = strcmp(line, ".TP") == 0;
	}
	free(line);
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
	}
	free(pg->v);
}

/* page_count - how many entries of section have key as first word */
static size_t
page_count(const struct page *pg, const char *section, const char *key)
{
	size_t i, n = 0;

	for (i = 0; i < pg->n; i++)
		if (strcmp(pg->v[i].section, section) == 0 &&
		    strcmp(pg->v[i].key, key) == 0)
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

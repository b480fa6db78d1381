/*
 * test_mailbox.c - tables for src/mailbox.c: which local parts may become
 * a path component (quoting, case folding, subaddress, traversal and
 * control characters, length), pattern expansion and splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox.h"
#include "unit_table.h"

#define A10 "aaaaaaaaaa"
#define A60 A10 A10 A10 A10 A10 A10
#define A64 A60 "aaaa"

/* ---- mailbox_user ---- */

struct user_case {
	const char *what;
	const char *local;
	int rc;
	const char *user; /* when rc == 0 */
};

static const struct user_case user_cases[] = {
    {"plain", "bob", 0, "bob"},
    {"case folded", "Bob.Smith", 0, "bob.smith"},
    {"subaddress cut", "bob+lists", 0, "bob"},
    {"cut at the first plus", "bob+a+b", 0, "bob"},
    {"unsafe text after plus is dropped", "bob+../x/y", 0, "bob"},
    {"only a subaddress", "+tag", -1, NULL},
    {"empty", "", -1, NULL},
    {"quoted with space", "\"John Doe\"", 0, "john doe"},
    {"quoted-pair quote", "\"a\\\"b\"", 0, "a\"b"},
    {"quoted-pair backslash", "\"a\\\\b\"", 0, "a\\b"},
    {"quoted-pair of plain char", "\"\\a\"", 0, "a"},
    {"quoted plus cuts too", "\"a+b\"", 0, "a"},
    {"empty quoted", "\"\"", -1, NULL},
    {"unterminated quote", "\"abc", -1, NULL},
    {"lone quote", "\"", -1, NULL},
    {"text after quote", "\"abc\"x", -1, NULL},
    {"backslash at end of quotes", "\"abc\\", -1, NULL},
    {"slash", "a/b", -1, NULL},
    {"quoted slash", "\"a/b\"", -1, NULL},
    {"escaped slash", "\"a\\/b\"", -1, NULL},
    {"leading dot", ".hidden", -1, NULL},
    {"dot dot", "..", -1, NULL},
    {"quoted dot dot", "\"..\"", -1, NULL},
    {"dot dot slash", "../etc", -1, NULL},
    {"dot inside is fine", "a..b", 0, "a..b"},
    {"control char",
     "a\x01"
     "b",
     -1, NULL},
    {"quoted tab", "\"a\tb\"", -1, NULL},
    {"escaped CR", "\"a\\\rb\"", -1, NULL},
    {"newline", "a\nb", -1, NULL},
    {"DEL", "a\x7f", -1, NULL},
    {"length 64", A64, 0, A64},
    {"length 65", A64 "a", -1, NULL},
    {"long but cut to fit", A60 "+" A60, 0, A60},
    {"UTF-8 kept, ASCII folded", "JOS\xc3\x89", 0, "jos\xc3\x89"},
    {"malformed UTF-8", "a\xc3", -1, NULL},
    {"percent stays", "a%b", 0, "a%b"},
};

static void
test_user(void **state)
{
	size_t i;
	char out[MAILBOX_USER_MAX + 1];

	(void)state;
	for (i = 0; i < sizeof(user_cases) / sizeof(user_cases[0]); i++) {
		const struct user_case *c = &user_cases[i];

		strcpy(out, "unchanged");
		CHECK(c->what,
		      mailbox_user(c->local, out, sizeof(out)) == c->rc);
		if (c->rc == 0)
			CHECK(c->what, strcmp(out, c->user) == 0);
	}
}

static void
test_user_out_sizes(void **state)
{
	char out[4], big[256];

	(void)state;
	/* the limit holds whatever room the caller gives */
	assert_int_equal(mailbox_user(A64 "a", big, sizeof(big)), -1);
	assert_int_equal(mailbox_user(A64, big, sizeof(big)), 0);
	assert_int_equal(mailbox_user("abc", out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(mailbox_user("abcd", out, sizeof(out)), -1);
	assert_int_equal(mailbox_user("abcd", out, 0), -1);
}

/* ---- mailbox_expand ---- */

struct expand_case {
	const char *what;
	const char *pattern;
	const char *user;
	const char *domain;
	size_t outlen; /* 0: a large buffer */
	int rc;
	const char *out;
};

static const struct expand_case expand_cases[] = {
    {"user", "/var/mail/%u", "bob", "example.com", 0, 0, "/var/mail/bob"},
    {"domain lower-cased", "%d/%u/Maildir", "bob", "Example.COM", 0, 0,
     "example.com/bob/Maildir"},
    {"address", "/m/%a", "bob", "Example.com", 0, 0, "/m/bob@example.com"},
    {"percent sign", "100%%", "bob", "x", 0, 0, "100%"},
    {"unknown escape kept", "a%xb", "bob", "x", 0, 0, "a%xb"},
    {"trailing percent kept", "a%", "bob", "x", 0, 0, "a%"},
    {"no re-expansion of the user", "%u", "a%u%d", "x", 0, 0, "a%u%d"},
    {"tilde untouched", "~/Maildir", "bob", "x", 0, 0, "~/Maildir"},
    {"several", "%u-%u", "b", "x", 0, 0, "b-b"},
    {"exact fit", "/m/%u", "bob", "x", 7, 0, "/m/bob"},
    {"one short", "/m/%u", "bob", "x", 6, -1, NULL},
    {"no room", "x", "bob", "x", 1, -1, NULL},
    {"empty pattern", "", "bob", "x", 1, 0, ""},
};

static void
test_expand(void **state)
{
	size_t i, len;
	char out[256];

	(void)state;
	for (i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		const struct expand_case *c = &expand_cases[i];

		len = c->outlen ? c->outlen : sizeof(out);
		CHECK(c->what, mailbox_expand(c->pattern, c->user, c->domain,
					      out, len) == c->rc);
		if (c->rc == 0)
			CHECK(c->what, strcmp(out, c->out) == 0);
	}
	assert_int_equal(mailbox_expand("x", "u", "d", out, 0), -1);
}

/* ---- mailbox_split ---- */

struct split_case {
	const char *what;
	const char *addr;
	size_t locallen, domainlen; /* 0: large */
	int rc;
	const char *local, *domain;
};

static const struct split_case split_cases[] = {
    {"plain", "bob@example.com", 0, 0, 0, "bob", "example.com"},
    {"quoted @ splits at the last", "\"a@b\"@example.com", 0, 0, 0, "\"a@b\"",
     "example.com"},
    {"no @", "postmaster", 0, 0, -1, NULL, NULL},
    {"empty domain", "a@", 0, 0, 0, "a", ""},
    {"exact local room", "bob@x", 4, 0, 0, "bob", "x"},
    {"local too small", "bob@x", 3, 0, -1, NULL, NULL},
    {"exact domain room", "bob@xy", 0, 3, 0, "bob", "xy"},
    {"domain too small", "bob@xy", 0, 2, -1, NULL, NULL},
};

static void
test_split(void **state)
{
	size_t i;
	char local[128], domain[128];

	(void)state;
	for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		const struct split_case *c = &split_cases[i];

		CHECK(c->what,
		      mailbox_split(c->addr, local,
				    c->locallen ? c->locallen : sizeof(local),
				    domain,
				    c->domainlen ? c->domainlen
						 : sizeof(domain)) == c->rc);
		if (c->rc != 0)
			continue;
		CHECK(c->what, strcmp(local, c->local) == 0);
		CHECK(c->what, strcmp(domain, c->domain) == 0);
	}
}

/* ---- mailbox_parts: user, extension, local part by separator ---- */

struct parts_case {
	const char *what;
	const char *local;
	char sep;
	int rc;
	const char *user, *ext, *lpart;
};

static const struct parts_case parts_cases[] = {
    {"no subaddress", "Pea", '+', 0, "pea", "", "pea"},
    {"plus", "Pea+Lists", '+', 0, "pea", "lists", "pea+lists"},
    {"only the first separator cuts", "a+b+c", '+', 0, "a", "b+c", "a+b+c"},
    {"minus as separator", "pea-lists", '-', 0, "pea", "lists",
     "pea-lists"},
    {"plus kept with minus as separator", "pea+x", '-', 0, "pea+x", "",
     "pea+x"},
    {"no separator at all", "pea+lists", 0, 0, "pea+lists", "",
     "pea+lists"},
    {"empty user before the separator", "+lists", '+', -1, NULL, NULL,
     NULL},
    {"quoted with a separator", "\"pea+x\"", '+', 0, "pea", "x", "pea+x"},
    {"a slash in the extension is only an extension", "pea+a/b", '+', 0,
     "pea", "a/b", "pea+a/b"},
    {"a slash in the user", "a/b+x", '+', -1, NULL, NULL, NULL},
    {"a long extension", A60 "+" A60 A60 A60, '+', 0, A60, A60 A60 A60,
     A60 "+" A60 A60 A60},
    {"a local part over 256 octets", A64 A64 A64 A64 "a", '+', -1, NULL,
     NULL, NULL},
};

static void
test_parts(void **state)
{
	struct mailbox_parts mp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parts_cases) / sizeof(parts_cases[0]); i++) {
		const struct parts_case *c = &parts_cases[i];
		int rc = mailbox_parts(c->local, c->sep, &mp);

		CHECK(c->what, rc == c->rc);
		if (rc != 0)
			continue;
		CHECK(c->what, strcmp(mp.user, c->user) == 0);
		CHECK(c->what, strcmp(mp.ext, c->ext) == 0);
		CHECK(c->what, strcmp(mp.local, c->lpart) == 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_user),
	    cmocka_unit_test(test_user_out_sizes),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_parts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

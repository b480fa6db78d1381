/*
 * test_smtp_parse.c - tables for src/smtp_parse.c: command split, bare
 * mailboxes, MAIL/RCPT paths with routes and parameters, domains, relay
 * tricks, SIZE values, formatting.  RFC 5321 4.1.1, 4.1.2, 4.5.3.1;
 * RFC 6531.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_parse.h"
#include "unit_table.h"

/* CHECK - like assert_true, but names the table row that failed */

/* building blocks for long names: L63 is one maximal DNS label */
#define A10 "aaaaaaaaaa"
#define A60 A10 A10 A10 A10 A10 A10
#define A64 A60 "aaaa"
#define A65 A64 "a"
#define L63 A60 "bbb"
#define L60 A60
#define L61 A60 "c"
#define L62 A60 "cc"
#define L64 A60 "bbbb"
/* D189/D190: domains of 189 and 190 octets (64 + 1 + 189 + 2 = 256) */
#define D189 L63 "." L63 "." L61
#define D190 L63 "." L63 "." L62
/* D252..D256: domains of that many octets */
#define D252 L63 "." L63 "." L63 "." L60
#define D253 L63 "." L63 "." L63 "." L61
#define D255 L63 "." L63 "." L63 "." L63
#define D257 D255 ".a"

enum {
	F_NULL = 0x01,
	F_QUOTED = 0x02,
	F_UTF8 = 0x04,
	F_LITERAL = 0x08,
	F_ROUTE = 0x10
};

static unsigned
addr_flags(const struct smtp_addr *a)
{
	return (a->is_null ? F_NULL : 0) | (a->quoted ? F_QUOTED : 0) |
	       (a->utf8 ? F_UTF8 : 0) | (a->literal ? F_LITERAL : 0) |
	       (a->source_route ? F_ROUTE : 0);
}

/* ---- smtp_cmd_split ---- */

struct cmd_case {
	const char *what;
	const char *line;
	enum smtp_verb verb;
	const char *name;
	const char *arg;
};

static const struct cmd_case cmd_cases[] = {
    {"MAIL with null path", "MAIL FROM:<>", SMTP_V_MAIL, "MAIL", "FROM:<>"},
    {"verb lower case", "mail FROM:<a@b>", SMTP_V_MAIL, "MAIL", "FROM:<a@b>"},
    {"verb mixed case", "RcPt TO:<a@b>", SMTP_V_RCPT, "RCPT", "TO:<a@b>"},
    {"QUIT alone", "QUIT", SMTP_V_QUIT, "QUIT", ""},
    {"QUIT and a space", "QUIT ", SMTP_V_QUIT, "QUIT", ""},
    {"quit lower", "quit", SMTP_V_QUIT, "QUIT", ""},
    {"EHLO argument", "EHLO client.example", SMTP_V_EHLO, "EHLO",
     "client.example"},
    {"only one SP is eaten", "EHLO  x", SMTP_V_EHLO, "EHLO", " x"},
    {"HELO", "HELO x", SMTP_V_HELO, "HELO", "x"},
    {"DATA", "DATA", SMTP_V_DATA, "DATA", ""},
    {"BDAT", "BDAT 100 LAST", SMTP_V_BDAT, "BDAT", "100 LAST"},
    {"RSET", "RSET", SMTP_V_RSET, "RSET", ""},
    {"NOOP with text", "NOOP hello", SMTP_V_NOOP, "NOOP", "hello"},
    {"VRFY", "VRFY bob", SMTP_V_VRFY, "VRFY", "bob"},
    {"EXPN", "EXPN list", SMTP_V_EXPN, "EXPN", "list"},
    {"HELP", "HELP", SMTP_V_HELP, "HELP", ""},
    {"STARTTLS", "starttls", SMTP_V_STARTTLS, "STARTTLS", ""},
    {"AUTH", "AUTH PLAIN dGVzdA==", SMTP_V_AUTH, "AUTH", "PLAIN dGVzdA=="},
    {"verb glued to text is unknown", "MAILX FROM:<>", SMTP_V_UNKNOWN, "",
     "FROM:<>"},
    {"verb prefix is unknown", "MAI", SMTP_V_UNKNOWN, "", ""},
    {"empty line", "", SMTP_V_UNKNOWN, "", ""},
    {"leading space", " MAIL FROM:<>", SMTP_V_UNKNOWN, "", "MAIL FROM:<>"},
    {"tab is not a separator", "QUIT\t", SMTP_V_UNKNOWN, "", ""},
    {"unknown verb", "XYZZY now", SMTP_V_UNKNOWN, "", "now"},
};

static void
test_cmd_split(void **state)
{
	size_t i;
	char line[128];
	struct smtp_cmd cmd;

	(void)state;
	for (i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];

		snprintf(line, sizeof(line), "%s", c->line);
		CHECK(c->what, smtp_cmd_split(line, &cmd) == 0);
		CHECK(c->what, cmd.verb == c->verb);
		CHECK(c->what, strcmp(cmd.name, c->name) == 0);
		CHECK(c->what, strcmp(cmd.arg, c->arg) == 0);
		CHECK(c->what,
		      cmd.arg >= line && cmd.arg <= line + strlen(line));
	}
}

static void
test_verb_name(void **state)
{
	int v;
	char line[32];
	struct smtp_cmd cmd;

	(void)state;
	assert_string_equal(smtp_verb_name(SMTP_V_UNKNOWN), "");
	assert_string_equal(smtp_verb_name(SMTP_V_COUNT), "");
	/* every verb's name splits back to the verb */
	for (v = SMTP_V_UNKNOWN + 1; v < SMTP_V_COUNT; v++) {
		snprintf(line, sizeof(line), "%s",
			 smtp_verb_name((enum smtp_verb)v));
		assert_true(strlen(line) > 0);
		smtp_cmd_split(line, &cmd);
		assert_int_equal(cmd.verb, v);
	}
}

/* ---- smtp_parse_addr ---- */

struct addr_case {
	const char *what;
	const char *in;
	size_t len; /* 0: strlen(in) */
	enum smtp_perr err;
	const char *local;
	const char *domain;
	unsigned flags;
};

static const struct addr_case addr_cases[] = {
    {"plain", "user@example.com", 0, SMTP_P_OK, "user", "example.com", 0},
    {"dots in local part", "first.last@example.com", 0, SMTP_P_OK, "first.last",
     "example.com", 0},
    {"all atext specials", "a!#$%&'*+-/=?^_`{|}~b@example.com", 0, SMTP_P_OK,
     "a!#$%&'*+-/=?^_`{|}~b", "example.com", 0},
    {"case kept as sent", "User@Example.COM", 0, SMTP_P_OK, "User",
     "Example.COM", 0},
    {"single-label domain", "root@localhost", 0, SMTP_P_OK, "root", "localhost",
     0},
    {"leading dot in local", ".user@example.com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"trailing dot in local", "user.@example.com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"double dot in local", "us..er@example.com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"no @", "userexample.com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"empty local", "@example.com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"empty domain", "user@", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"empty input", "", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"two @", "a@b@example.com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"space in local", "us er@example.com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"trailing space", "user@example.com ", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"angle brackets are not part of a mailbox", "<user@example.com>", 0,
     SMTP_P_SYNTAX, NULL, NULL, 0},
    {"NUL inside", "us\0er@example.com", 17, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"NUL after", "user@example.com\0", 17, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"control char", "us\ter@example.com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    /* domains */
    {"trailing dot in domain", "user@example.com.", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"leading dot in domain", "user@.example.com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"double dot in domain", "user@example..com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"hyphen inside label", "user@ex-am-ple.com", 0, SMTP_P_OK, "user",
     "ex-am-ple.com", 0},
    {"label starts with hyphen", "user@-example.com", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"label ends with hyphen", "user@example-.com", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"underscore in domain", "user@ex_ample.com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"percent in domain", "user@a%b.example", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"label of 63", "u@" L63 ".com", 0, SMTP_P_OK, "u", L63 ".com", 0},
    {"label of 64", "u@" L64 ".com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    /* lengths: local 64, and a mailbox that fits a 256-octet path */
    {"local of 64", A64 "@example.com", 0, SMTP_P_OK, A64, "example.com", 0},
    {"local of 65", A65 "@example.com", 0, SMTP_P_TOO_LONG, NULL, NULL, 0},
    {"mailbox of 254", "a@" D252, 0, SMTP_P_OK, "a", D252, 0},
    {"mailbox of 255", "a@" D253, 0, SMTP_P_TOO_LONG, NULL, NULL, 0},
    {"domain of 255", "a@" D255, 0, SMTP_P_TOO_LONG, NULL, NULL, 0},
    {"domain of 257", "a@" D257, 0, SMTP_P_TOO_LONG, NULL, NULL, 0},
    /* quoted local parts */
    {"quoted with space", "\"john doe\"@example.com", 0, SMTP_P_OK,
     "\"john doe\"", "example.com", F_QUOTED},
    {"quoted-pair quote", "\"a\\\"b\"@example.com", 0, SMTP_P_OK, "\"a\\\"b\"",
     "example.com", F_QUOTED},
    {"quoted-pair backslash", "\"a\\\\b\"@example.com", 0, SMTP_P_OK,
     "\"a\\\\b\"", "example.com", F_QUOTED},
    {"empty quoted string", "\"\"@example.com", 0, SMTP_P_OK, "\"\"",
     "example.com", F_QUOTED},
    {"quoted @", "\"a@b\"@example.com", 0, SMTP_P_OK, "\"a@b\"", "example.com",
     F_QUOTED},
    {"quoted dots anywhere", "\"..a.\"@example.com", 0, SMTP_P_OK, "\"..a.\"",
     "example.com", F_QUOTED},
    {"unterminated quote", "\"abc@example.com", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"text after closing quote", "\"a\"b@example.com", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"quote inside dot-string", "a\"b\"@example.com", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"tab in quotes", "\"a\tb\"@example.com", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"quoted-pair of a tab", "\"a\\\tb\"@example.com", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"quoted-pair of CR", "\"a\\\rb\"@example.com", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"backslash at end of quotes", "\"a\\\"@example.com", 0, SMTP_P_SYNTAX,
     NULL, NULL, 0},
    {"quoted local of 65 with quotes", "\"" A60 "aaa\"@example.com", 0,
     SMTP_P_TOO_LONG, NULL, NULL, 0},
    {"quoted local of 64 with quotes", "\"" A60 "aa\"@example.com", 0,
     SMTP_P_OK, "\"" A60 "aa\"", "example.com", F_QUOTED},
    /* UTF-8 (RFC 6531) */
    {"UTF-8 local", "jos\xc3\xa9@example.com", 0, SMTP_P_OK, "jos\xc3\xa9",
     "example.com", F_UTF8},
    {"UTF-8 domain",
     "user@b\xc3\xbc"
     "cher.example",
     0, SMTP_P_OK, "user",
     "b\xc3\xbc"
     "cher.example",
     F_UTF8},
    {"UTF-8 4-octet", "\xf0\x9f\x93\xa7@example.com", 0, SMTP_P_OK,
     "\xf0\x9f\x93\xa7", "example.com", F_UTF8},
    {"UTF-8 in quotes", "\"j\xc3\xa9 s\"@example.com", 0, SMTP_P_OK,
     "\"j\xc3\xa9 s\"", "example.com", F_QUOTED | F_UTF8},
    {"truncated UTF-8 local", "jos\xc3@example.com", 0, SMTP_P_BAD_UTF8, NULL,
     NULL, 0},
    {"overlong UTF-8 slash",
     "a\xc0\xaf"
     "b@example.com",
     0, SMTP_P_BAD_UTF8, NULL, NULL, 0},
    {"UTF-8 surrogate", "a\xed\xa0\x80@example.com", 0, SMTP_P_BAD_UTF8, NULL,
     NULL, 0},
    {"lone continuation octet", "a\x80@example.com", 0, SMTP_P_BAD_UTF8, NULL,
     NULL, 0},
    {"0xff octet in domain",
     "user@b\xff"
     "cher.example",
     0, SMTP_P_BAD_UTF8, NULL, NULL, 0},
    {"malformed UTF-8 in quotes", "\"j\xc3 s\"@example.com", 0, SMTP_P_BAD_UTF8,
     NULL, NULL, 0},
    {"UTF-8 quoted-pair is refused", "\"a\\\xc3\xa9\"@example.com", 0,
     SMTP_P_SYNTAX, NULL, NULL, 0},
    /* address literals */
    {"IPv4 literal", "user@[198.51.100.1]", 0, SMTP_P_OK, "user", "[198.51.100.1]",
     F_LITERAL},
    {"IPv6 literal", "user@[IPv6:2001:db8::1]", 0, SMTP_P_OK, "user",
     "[IPv6:2001:db8::1]", F_LITERAL},
    {"IPv6 tag any case", "user@[ipv6:::1]", 0, SMTP_P_OK, "user", "[ipv6:::1]",
     F_LITERAL},
    {"IPv4-mapped IPv6", "user@[IPv6:::ffff:198.51.100.1]", 0, SMTP_P_OK, "user",
     "[IPv6:::ffff:198.51.100.1]", F_LITERAL},
    {"IPv4 octet 256", "user@[198.51.100.256]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"IPv4 three parts", "user@[198.51.100]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"IPv4 leading zero", "user@[198.51.100.01]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"IPv6 without tag", "user@[2001:db8::1]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"IPv4 under IPv6 tag", "user@[IPv6:198.51.100.1]", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"IPv6 scope id", "user@[IPv6:fe80::1%eth0]", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"general literal refused", "user@[x-tag:abc]", 0, SMTP_P_SYNTAX, NULL,
     NULL, 0},
    {"unclosed literal", "user@[198.51.100.1", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"text after literal", "user@[198.51.100.1]x", 0, SMTP_P_SYNTAX, NULL, NULL,
     0},
    {"NUL inside a literal (fuzz_addr)", "u@[IPv6:2001:db8::\0]", 20,
     SMTP_P_SYNTAX, NULL, NULL, 0},
    {"empty literal", "user@[]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"empty IPv6 literal", "user@[IPv6:]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    {"space in literal", "user@[ 198.51.100.1]", 0, SMTP_P_SYNTAX, NULL, NULL, 0},
    /* relay tricks parse (they are refused by policy, not syntax) */
    {"percent hack parses", "user%other.example@example.com", 0, SMTP_P_OK,
     "user%other.example", "example.com", 0},
    {"bang path parses", "host!user@example.com", 0, SMTP_P_OK, "host!user",
     "example.com", 0},
};

static void
test_parse_addr(void **state)
{
	size_t i, len;
	struct smtp_addr a;
	enum smtp_perr e;

	(void)state;
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];

		len = c->len ? c->len : strlen(c->in);
		e = smtp_parse_addr(c->in, len, &a);
		if (e != c->err)
			print_error("got %s\n", smtp_perr_str(e));
		CHECK(c->what, e == c->err);
		if (c->err != SMTP_P_OK)
			continue;
		CHECK(c->what, strcmp(a.local, c->local) == 0);
		CHECK(c->what, strcmp(a.domain, c->domain) == 0);
		CHECK(c->what, addr_flags(&a) == c->flags);
	}
}

/* ---- smtp_parse_mail / smtp_parse_rcpt ---- */

struct path_case {
	const char *what;
	int rcpt;
	const char *arg;
	enum smtp_perr err;
	const char *addr; /* smtp_addr_format of the result */
	unsigned flags;
	const char *params; /* "K=V K2", one SP between */
};

#define P16                                                                    \
	" A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 J=10 K=11 L=12 M=13"             \
	" N=14 O=15 P=16"

static const struct path_case path_cases[] = {
    {"MAIL plain", 0, "FROM:<a@example.com>", SMTP_P_OK, "a@example.com", 0,
     ""},
    {"MAIL keyword lower case", 0, "from:<a@example.com>", SMTP_P_OK,
     "a@example.com", 0, ""},
    {"MAIL null path", 0, "FROM:<>", SMTP_P_OK, "", F_NULL, ""},
    {"MAIL null path with SIZE", 0, "FROM:<> SIZE=100", SMTP_P_OK, "", F_NULL,
     "SIZE=100"},
    {"one SP after colon", 0, "FROM: <a@example.com>", SMTP_P_OK,
     "a@example.com", 0, ""},
    {"two SP after colon", 0, "FROM:  <a@example.com>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"SP before colon", 0, "FROM :<a@example.com>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"SP inside brackets at end", 0, "FROM:<a@example.com >", SMTP_P_SYNTAX,
     NULL, 0, NULL},
    {"SP inside brackets at start", 0, "FROM:< a@example.com>", SMTP_P_SYNTAX,
     NULL, 0, NULL},
    {"tab after colon", 0, "FROM:\t<a@example.com>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"no angle brackets", 0, "FROM:a@example.com", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"no closing bracket", 0, "FROM:<a@example.com", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"no opening bracket", 0, "FROM:a@example.com>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"text glued after path", 0, "FROM:<a@example.com>x", SMTP_P_SYNTAX, NULL,
     0, NULL},
    {"two paths", 0, "FROM:<a@example.com><b@example.com>", SMTP_P_SYNTAX, NULL,
     0, NULL},
    {"nothing after colon", 0, "FROM:", SMTP_P_SYNTAX, NULL, 0, NULL},
    {"empty argument", 0, "", SMTP_P_SYNTAX, NULL, 0, NULL},
    {"no colon", 0, "FROM<a@example.com>", SMTP_P_SYNTAX, NULL, 0, NULL},
    {"TO: given to MAIL", 0, "TO:<a@example.com>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"postmaster is RCPT-only", 0, "FROM:<postmaster>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"quoted local part", 0, "FROM:<\"a b\"@example.com>", SMTP_P_OK,
     "\"a b\"@example.com", F_QUOTED, ""},
    {"'>' inside quotes", 0, "FROM:<\"a>b\"@example.com>", SMTP_P_OK,
     "\"a>b\"@example.com", F_QUOTED, ""},
    {"UTF-8 path", 0, "FROM:<j\xc3\xa9@example.com> SMTPUTF8", SMTP_P_OK,
     "j\xc3\xa9@example.com", F_UTF8, "SMTPUTF8"},
    {"malformed UTF-8 path", 0, "FROM:<j\xc3@example.com>", SMTP_P_BAD_UTF8,
     NULL, 0, NULL},
    {"literal path", 0, "FROM:<a@[IPv6:::1]>", SMTP_P_OK, "a@[IPv6:::1]",
     F_LITERAL, ""},
    {"trailing dot domain in path", 0, "FROM:<a@example.com.>", SMTP_P_SYNTAX,
     NULL, 0, NULL},
    /* source routes: accepted, dropped, flagged */
    {"source route of two", 0, "FROM:<@a.example,@b.example:user@c.example>",
     SMTP_P_OK, "user@c.example", F_ROUTE, ""},
    {"source route of one", 0, "FROM:<@a.example:user@c.example>", SMTP_P_OK,
     "user@c.example", F_ROUTE, ""},
    {"route without colon", 0, "FROM:<@a.example user@c.example>",
     SMTP_P_SYNTAX, NULL, 0, NULL},
    {"route with comma before mailbox", 0, "FROM:<@a.example,user@c.example>",
     SMTP_P_SYNTAX, NULL, 0, NULL},
    {"route with empty domain", 0, "FROM:<@:user@c.example>", SMTP_P_SYNTAX,
     NULL, 0, NULL},
    {"route with literal", 0, "FROM:<@[198.51.100.1]:user@c.example>",
     SMTP_P_SYNTAX, NULL, 0, NULL},
    {"route with empty element", 0, "FROM:<@a.example,:user@c.example>",
     SMTP_P_SYNTAX, NULL, 0, NULL},
    {"route and no mailbox", 0, "FROM:<@a.example:>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"route to null path", 0, "FROM:<@a.example:<>>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    /* lengths */
    {"path of 256", 0, "FROM:<" A64 "@" D189 ">", SMTP_P_OK, A64 "@" D189, 0,
     ""},
    {"path of 257", 0, "FROM:<" A64 "@" D190 ">", SMTP_P_TOO_LONG, NULL, 0,
     NULL},
    {"local of 65 in path", 0, "FROM:<" A65 "@example.com>", SMTP_P_TOO_LONG,
     NULL, 0, NULL},
    {"long source route", 0, "FROM:<@" D189 ",@" D189 ":a@example.com>",
     SMTP_P_TOO_LONG, NULL, 0, NULL},
    /* parameters */
    {"two params", 0, "FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", SMTP_P_OK,
     "a@b.example", 0, "SIZE=1000 BODY=8BITMIME"},
    {"keyword without value", 0, "FROM:<a@b.example> SMTPUTF8", SMTP_P_OK,
     "a@b.example", 0, "SMTPUTF8"},
    {"spaces between params and at end", 0,
     "FROM:<a@b.example>  SIZE=1   BODY=7BIT  ", SMTP_P_OK, "a@b.example", 0,
     "SIZE=1 BODY=7BIT"},
    {"trailing space only", 0, "FROM:<a@b.example> ", SMTP_P_OK, "a@b.example",
     0, ""},
    {"hyphen in keyword", 0, "FROM:<a@b.example> X-Y=1", SMTP_P_OK,
     "a@b.example", 0, "X-Y=1"},
    {"value with punctuation", 0, "FROM:<a@b.example> AUTH=<> ENVID=a+2Bb",
     SMTP_P_OK, "a@b.example", 0, "AUTH=<> ENVID=a+2Bb"},
    {"UTF-8 value", 0, "FROM:<a@b.example> ENVID=caf\xc3\xa9", SMTP_P_OK,
     "a@b.example", 0, "ENVID=caf\xc3\xa9"},
    {"malformed UTF-8 value", 0, "FROM:<a@b.example> ENVID=caf\xc3",
     SMTP_P_BAD_UTF8, NULL, 0, NULL},
    {"empty value", 0, "FROM:<a@b.example> SIZE=", SMTP_P_BAD_PARAM, NULL, 0,
     NULL},
    {"empty keyword", 0, "FROM:<a@b.example> =1", SMTP_P_BAD_PARAM, NULL, 0,
     NULL},
    {"keyword starts with hyphen", 0, "FROM:<a@b.example> -X=1",
     SMTP_P_BAD_PARAM, NULL, 0, NULL},
    {"underscore in keyword", 0, "FROM:<a@b.example> K_Y=1", SMTP_P_BAD_PARAM,
     NULL, 0, NULL},
    {"two '=' in value", 0, "FROM:<a@b.example> SIZE=1=2", SMTP_P_BAD_PARAM,
     NULL, 0, NULL},
    {"'==' after keyword", 0, "FROM:<a@b.example> SIZE==1", SMTP_P_BAD_PARAM,
     NULL, 0, NULL},
    {"tab between params", 0, "FROM:<a@b.example> SIZE=1\tBODY=8BITMIME",
     SMTP_P_BAD_PARAM, NULL, 0, NULL},
    {"DEL in value", 0, "FROM:<a@b.example> ENVID=a\x7f", SMTP_P_BAD_PARAM,
     NULL, 0, NULL},
    {"control char in value", 0, "FROM:<a@b.example> ENVID=a\x01",
     SMTP_P_BAD_PARAM, NULL, 0, NULL},
    {"16 params", 0, "FROM:<a@b.example>" P16, SMTP_P_OK, "a@b.example", 0,
     &P16[1]},
    {"17 params", 0, "FROM:<a@b.example>" P16 " Q=17", SMTP_P_TOO_MANY_PARAMS,
     NULL, 0, NULL},
    /* RCPT */
    {"RCPT plain", 1, "TO:<a@example.com>", SMTP_P_OK, "a@example.com", 0, ""},
    {"RCPT one SP after colon", 1, "to: <a@example.com>", SMTP_P_OK,
     "a@example.com", 0, ""},
    {"RCPT null path refused", 1, "TO:<>", SMTP_P_SYNTAX, NULL, 0, NULL},
    {"RCPT bare postmaster", 1, "TO:<postmaster>", SMTP_P_OK, "postmaster", 0,
     ""},
    {"RCPT postmaster any case", 1, "TO:<PostMaster>", SMTP_P_OK, "PostMaster",
     0, ""},
    {"RCPT postmaster with params", 1, "TO:<postmaster> NOTIFY=NEVER",
     SMTP_P_OK, "postmaster", 0, "NOTIFY=NEVER"},
    {"RCPT postmaster at domain", 1, "TO:<Postmaster@example.com>", SMTP_P_OK,
     "Postmaster@example.com", 0, ""},
    {"RCPT postmasterx", 1, "TO:<postmasterx>", SMTP_P_SYNTAX, NULL, 0, NULL},
    {"RCPT routed postmaster", 1, "TO:<@a.example:postmaster>", SMTP_P_SYNTAX,
     NULL, 0, NULL},
    {"RCPT other bare user", 1, "TO:<user>", SMTP_P_SYNTAX, NULL, 0, NULL},
    {"RCPT DSN params", 1,
     "TO:<a@example.com> NOTIFY=SUCCESS,FAILURE "
     "ORCPT=rfc822;a@example.com",
     SMTP_P_OK, "a@example.com", 0,
     "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.com"},
    {"FROM: given to RCPT", 1, "FROM:<a@example.com>", SMTP_P_SYNTAX, NULL, 0,
     NULL},
    {"RCPT source route", 1, "TO:<@relay.example:a@example.com>", SMTP_P_OK,
     "a@example.com", F_ROUTE, ""},
    {"RCPT quoted @", 1, "TO:<\"a@b\"@example.com>", SMTP_P_OK,
     "\"a@b\"@example.com", F_QUOTED, ""},
};

/* join_params - "K=V K2" from the parsed parameters */
static void
join_params(const struct smtp_pathcmd *pc, char *out, size_t outlen)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < pc->nparams; i++) {
		o += (size_t)snprintf(
		    out + o, outlen - o, "%s%s%s%s", i ? " " : "",
		    pc->params[i].key, pc->params[i].value ? "=" : "",
		    pc->params[i].value ? pc->params[i].value : "");
		assert_true(o < outlen);
	}
}

static void
test_parse_path(void **state)
{
	size_t i;
	char arg[1024], got[1024];
	struct smtp_pathcmd pc;
	enum smtp_perr e;

	(void)state;
	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];

		snprintf(arg, sizeof(arg), "%s", c->arg);
		e = c->rcpt ? smtp_parse_rcpt(arg, &pc)
			    : smtp_parse_mail(arg, &pc);
		if (e != c->err)
			print_error("got %s\n", smtp_perr_str(e));
		CHECK(c->what, e == c->err);
		if (c->err != SMTP_P_OK)
			continue;
		CHECK(c->what, smtp_addr_format(&pc.addr, got, sizeof(got)) ==
				   (int)strlen(c->addr));
		CHECK(c->what, strcmp(got, c->addr) == 0);
		CHECK(c->what, addr_flags(&pc.addr) == c->flags);
		join_params(&pc, got, sizeof(got));
		CHECK(c->what, strcmp(got, c->params) == 0);
	}
}

static void
test_param_get(void **state)
{
	char arg[] = "FROM:<a@b.example> SIZE=1000 SMTPUTF8 body=8BITMIME";
	struct smtp_pathcmd pc;
	const struct smtp_param *p;

	(void)state;
	assert_int_equal(smtp_parse_mail(arg, &pc), SMTP_P_OK);
	assert_int_equal(pc.nparams, 3);
	p = smtp_param_get(&pc, "size");
	assert_non_null(p);
	assert_string_equal(p->value, "1000");
	p = smtp_param_get(&pc, "SmtpUtf8");
	assert_non_null(p);
	assert_null(p->value);
	p = smtp_param_get(&pc, "BODY");
	assert_non_null(p);
	assert_string_equal(p->key, "body");
	assert_null(smtp_param_get(&pc, "SIZ"));
	assert_null(smtp_param_get(&pc, "RET"));
}

/* ---- smtp_domain_valid ---- */

struct dom_case {
	const char *what;
	const char *s;
	int utf8_ok;
	int valid;
};

static const struct dom_case dom_cases[] = {
    {"host name", "mail.example.com", 0, 1},
    {"single label", "localhost", 0, 1},
    {"digits and hyphens", "0-1.example", 0, 1},
    {"all-digit labels are LDH", "198.51.100.1", 0, 1},
    {"U-label allowed",
     "b\xc3\xbc"
     "cher.example",
     1, 1},
    {"U-label not allowed",
     "b\xc3\xbc"
     "cher.example",
     0, 0},
    {"malformed UTF-8",
     "b\xc3"
     "cher.example",
     1, 0},
    {"IPv4 literal", "[198.51.100.1]", 0, 1},
    {"IPv6 literal", "[IPv6:2001:db8::1]", 0, 1},
    {"bad IPv4 literal", "[999.0.2.1]", 0, 0},
    {"literal with trailing text", "[198.51.100.1].x", 0, 0},
    {"trailing dot", "example.com.", 0, 0},
    {"empty", "", 0, 0},
    {"only a dot", ".", 0, 0},
    {"leading hyphen", "-a.example", 0, 0},
    {"trailing hyphen", "a-.example", 0, 0},
    {"empty label", "a..example", 0, 0},
    {"space", "a b", 0, 0},
    {"underscore", "a_b.example", 0, 0},
    {"label of 63", L63 ".example", 0, 1},
    {"label of 64", L64 ".example", 0, 0},
    {"domain of 255", D255, 0, 1},
    {"domain of 257", D257, 0, 0},
};

static void
test_domain_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dom_cases) / sizeof(dom_cases[0]); i++) {
		const struct dom_case *c = &dom_cases[i];

		CHECK(c->what, smtp_domain_valid(c->s, c->utf8_ok) == c->valid);
	}
}

/* ---- smtp_addr_relay_trick ---- */

struct trick_case {
	const char *what;
	const char *arg;
	int trick;
};

static const struct trick_case trick_cases[] = {
    {"percent hack", "TO:<a%b.example@example.com>", 1},
    {"bang path", "TO:<b.example!a@example.com>", 1},
    {"quoted @", "TO:<\"a@b.example\"@example.com>", 1},
    {"quoted percent", "TO:<\"a%b\"@example.com>", 1},
    {"escaped @ in quotes", "TO:<\"a\\@b\"@example.com>", 1},
    {"source route", "TO:<@relay.example:a@example.com>", 1},
    {"plain", "TO:<a@example.com>", 0},
    {"subaddress", "TO:<a.b+tag@example.com>", 0},
    {"quoted without trick", "TO:<\"a b\"@example.com>", 0},
    {"postmaster", "TO:<postmaster>", 0},
};

static void
test_relay_trick(void **state)
{
	size_t i;
	char arg[256];
	struct smtp_pathcmd pc;

	(void)state;
	for (i = 0; i < sizeof(trick_cases) / sizeof(trick_cases[0]); i++) {
		const struct trick_case *c = &trick_cases[i];

		snprintf(arg, sizeof(arg), "%s", c->arg);
		CHECK(c->what, smtp_parse_rcpt(arg, &pc) == SMTP_P_OK);
		CHECK(c->what, smtp_addr_relay_trick(&pc.addr) == c->trick);
	}
}

/* ---- smtp_parse_size_param ---- */

struct size_case {
	const char *what;
	const char *s;
	int rc;
	uint64_t v;
};

static const struct size_case size_cases[] = {
    {"zero", "0", 0, 0},
    {"plain", "1000", 0, 1000},
    {"largest", "18446744073709551615", 0, UINT64_MAX},
    {"overflow", "18446744073709551616", -1, 0},
    {"20 digits with zeros", "00000000000000000001", 0, 1},
    {"21 digits", "000000000000000000001", -1, 0},
    {"empty", "", -1, 0},
    {"negative", "-1", -1, 0},
    {"plus sign", "+1", -1, 0},
    {"unit", "1K", -1, 0},
    {"leading space", " 1", -1, 0},
    {"trailing space", "1 ", -1, 0},
    {"hex", "0x10", -1, 0},
};

static void
test_size_param(void **state)
{
	size_t i;
	uint64_t v;

	(void)state;
	for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *c = &size_cases[i];

		v = 12345;
		CHECK(c->what, smtp_parse_size_param(c->s, &v) == c->rc);
		CHECK(c->what, c->rc != 0 || v == c->v);
	}
}

/* ---- smtp_addr_format ---- */

static void
test_addr_format(void **state)
{
	struct smtp_addr a;
	char out[64];

	(void)state;
	assert_int_equal(smtp_parse_addr("bob@example.com", 15, &a), SMTP_P_OK);
	/* exactly enough room, one octet short, none */
	assert_int_equal(smtp_addr_format(&a, out, 16), 15);
	assert_string_equal(out, "bob@example.com");
	assert_int_equal(smtp_addr_format(&a, out, 15), -1);
	assert_int_equal(smtp_addr_format(&a, out, 0), -1);
	memset(&a, 0, sizeof(a));
	a.is_null = 1;
	assert_int_equal(smtp_addr_format(&a, out, 1), 0);
	assert_string_equal(out, "");
	memset(&a, 0, sizeof(a));
	strcpy(a.local, "postmaster");
	assert_int_equal(smtp_addr_format(&a, out, sizeof(out)), 10);
	assert_string_equal(out, "postmaster");
}

static void
test_perr_str(void **state)
{
	int e, f;

	(void)state;
	for (e = SMTP_P_OK; e <= SMTP_P_TOO_MANY_PARAMS; e++)
		for (f = SMTP_P_OK; f < e; f++)
			assert_string_not_equal(
			    smtp_perr_str((enum smtp_perr)e),
			    smtp_perr_str((enum smtp_perr)f));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cmd_split),
	    cmocka_unit_test(test_verb_name),
	    cmocka_unit_test(test_parse_addr),
	    cmocka_unit_test(test_parse_path),
	    cmocka_unit_test(test_param_get),
	    cmocka_unit_test(test_domain_valid),
	    cmocka_unit_test(test_relay_trick),
	    cmocka_unit_test(test_size_param),
	    cmocka_unit_test(test_addr_format),
	    cmocka_unit_test(test_perr_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

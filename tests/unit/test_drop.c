/*
 * test_drop.c - tables for src/drop.c: the drop file reader (every
 * mistake refused with its reason), the content made from a drop
 * (Received: with the uid, Bcc: removed, Date:/Message-ID:/From: added
 * only when missing, CRLF, an mbox From_ line dropped, a message without
 * a header section) and the address lists of sendmail -t.  Each row says
 * what it tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drop.h"
#include "util.h"
#include "unit_table.h"

/* dump - a parsed drop as "from|name|rcpt,rcpt|content" or "ERR reason" */
static char *
dump(const char *file, size_t max_rcpts)
{
	char err[128];
	struct drop d;
	struct buf b;
	size_t i;

	buf_init(&b);
	if (drop_parse(&d, file, strlen(file), max_rcpts, err,
	    sizeof(err)) == -1)
		buf_printf(&b, "ERR %s", err);
	else {
		buf_printf(&b, "%s|%s|", d.sender ? d.sender : "-",
		    d.name ? d.name : "-");
		for (i = 0; i < d.nrcpts; i++)
			buf_printf(&b, "%s%s", i ? "," : "", d.rcpts[i]);
		buf_putc(&b, '|');
		buf_append(&b, d.content, d.content_len);
	}
	drop_free(&d);
	return b.data;
}

static void
test_parse(void **state)
{
	static const struct {
		const char *what, *file, *want;
	} rows[] = {
		{ "minimal", "tern-drop 1\nto <a@b.example>\n\nhi\n",
		    "-|-|a@b.example|hi\n" },
		{ "all keys", "tern-drop 1\nfrom <s@x.example>\nname Ann\n"
		    "to <a@b.example>\nto <c@d.example>\n\n",
		    "s@x.example|Ann|a@b.example,c@d.example|" },
		{ "null sender", "tern-drop 1\nfrom <>\nto <a@b.example>\n\nx",
		    "|-|a@b.example|x" },
		{ "wrong magic", "tern-drop 2\nto <a@b.example>\n\n",
		    "ERR not a tern drop file (version 1)" },
		{ "empty", "", "ERR not a tern drop file (version 1)" },
		{ "no blank line", "tern-drop 1\nto <a@b.example>\n",
		    "ERR truncated envelope" },
		{ "no recipient", "tern-drop 1\nfrom <s@x.example>\n\n",
		    "ERR no recipients" },
		{ "an uid claimed", "tern-drop 1\nuid 0\nto <a@b.example>\n\n",
		    "ERR an unknown key" },
		{ "key without value", "tern-drop 1\nto\n\n",
		    "ERR a line without a value" },
		{ "two senders", "tern-drop 1\nfrom <a@b.example>\n"
		    "from <c@d.example>\nto <a@b.example>\n\n",
		    "ERR two senders" },
		{ "two names", "tern-drop 1\nname a\nname b\n"
		    "to <a@b.example>\n\n", "ERR two names" },
		{ "unbracketed", "tern-drop 1\nto a@b.example\n\n",
		    "ERR a bad recipient address" },
		{ "no domain", "tern-drop 1\nto <root>\n\n",
		    "ERR a bad recipient address" },
		{ "relay trick", "tern-drop 1\nto <a%c@b.example>\n\n",
		    "ERR a bad recipient address" },
		{ "null recipient", "tern-drop 1\nto <>\n\n",
		    "ERR a bad recipient address" },
		{ "8-bit address", "tern-drop 1\nto <\xc3\xa9@b.example>\n\n",
		    "ERR a bad recipient address" },
		{ "control in name", "tern-drop 1\nname a\tb\n"
		    "to <a@b.example>\n\n", "ERR a bad full name" },
		{ "bad sender",
		    "tern-drop 1\nfrom <a b@c>\nto <a@b.example>\n\n",
		    "ERR a bad sender address" },
		{ "too many",
		    "tern-drop 1\nto <a@b.example>\nto <c@b.example>\n"
		    "to <d@b.example>\n\n", "ERR too many recipients" },
	};
	size_t i;
	char *got;

	(void)state;
	for (i = 0; i < NROWS(rows); i++) {
		got = dump(rows[i].file, 2);
		CHECK_STR(rows[i].what, got, rows[i].want);
		free(got);
	}
}

static void
test_parse_nul(void **state)
{
	static const char f[] = "tern-drop 1\nto <a@b.example>\n\na\0b\n";
	char err[128];
	struct drop d;

	(void)state;
	assert_int_equal(drop_parse(&d, f, sizeof(f) - 1, 10, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "a NUL in the message");
	drop_free(&d);
}

static void
test_format_round_trip(void **state)
{
	char *rcpts[] = { "a@b.example", "c@d.example" }, *got;
	struct buf b;

	(void)state;
	buf_init(&b);
	drop_format(&b, "", "N", rcpts, 2, "Subject: x\n\nbody\n", 18);
	got = dump(b.data, 10);
	CHECK_STR("format", got, "|N|a@b.example,c@d.example|"
	    "Subject: x\n\nbody\n");
	free(got);
	buf_free(&b);
}

#define RCVD "Received: by h.example (tern, from userid 1000)\r\n" \
	"\tid QID1; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
#define ADDED "From: s@x.example\r\nDate: Thu, 1 Jan 1970 00:00:00 " \
	"+0000\r\nMessage-ID: <QID1@h.example>\r\n"

static void
test_compose(void **state)
{
	static const struct {
		const char *what, *name, *content, *want;
	} rows[] = {
		{ "all added, LF to CRLF", NULL, "Subject: s\n\nbody\n",
		    RCVD "Subject: s\r\n" ADDED "\r\nbody\r\n" },
		{ "none added", NULL, "From: a@b\nDate: x\nMessage-ID: <m@x>\n"
		    "\nb", RCVD "From: a@b\r\nDate: x\r\nMessage-ID: <m@x>\r\n"
		    "\r\nb\r\n" },
		{ "any case kept", NULL,
		    "fRoM: a@b\ndate: x\nmessage-id: y\n\n",
		    RCVD "fRoM: a@b\r\ndate: x\r\nmessage-id: y\r\n\r\n" },
		{ "Bcc removed with its continuation", NULL,
		    "To: a@b\nBcc: c@d,\n e@f\nbcc:\nSubject: s\n\nx\n",
		    RCVD "To: a@b\r\nSubject: s\r\n" ADDED "\r\nx\r\n" },
		{ "no header section", NULL, "just a body\nline 2\n",
		    RCVD ADDED "\r\njust a body\r\nline 2\r\n" },
		{ "header ends at a non-field line", NULL,
		    "Subject: s\nnot a field\n", RCVD "Subject: s\r\n" ADDED
		    "\r\nnot a field\r\n" },
		{ "leading continuation is body", NULL, " x: y\n",
		    RCVD ADDED "\r\n x: y\r\n" },
		{ "mbox From_ line dropped", NULL,
		    "From s Mon\nSubject: s\n\nb\n",
		    RCVD "Subject: s\r\n" ADDED "\r\nb\r\n" },
		{ "CRLF kept, bare CR kept", NULL, "Subject: s\r\n\r\na\rb\r\n",
		    RCVD "Subject: s\r\n" ADDED "\r\na\rb\r\n" },
		{ "empty message", NULL, "", RCVD ADDED "\r\n" },
		{ "full name quoted", "Ann \"A\" B", "\n",
		    RCVD "From: \"Ann \\\"A\\\" B\" <s@x.example>\r\n"
		    "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"
		    "Message-ID: <QID1@h.example>\r\n\r\n" },
		{ "UTF-8 full name encoded", "J\xc3\xbcrgen", "\n",
		    RCVD "From: =?UTF-8?Q?J=C3=BCrgen?= <s@x.example>\r\n"
		    "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"
		    "Message-ID: <QID1@h.example>\r\n\r\n" },
	};
	struct drop_facts f = { .uid = 1000, .sender = "s@x.example",
		.from_addr = "s@x.example", .hostname = "h.example",
		.qid = "QID1", .now = 0 };
	struct drop d;
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < NROWS(rows); i++) {
		memset(&d, 0, sizeof(d));
		d.name = (char *)rows[i].name;
		d.content = rows[i].content;
		d.content_len = strlen(rows[i].content);
		buf_init(&b);
		drop_compose(&d, &f, &b);
		CHECK_STR(rows[i].what, b.data ? b.data : "", rows[i].want);
		buf_free(&b);
	}
}

static void
test_header_rcpts(void **state)
{
	static const struct {
		const char *what, *content, *want;
	} rows[] = {
		{ "To, Cc, Bcc", "To: a@b\nCc: c@d\nBcc: e@f\nSubject: g@h\n\n"
		    "To: i@j\n", "a@b,c@d,e@f" },
		{ "display names and comments", "To: \"Last, First\" <a@b>, "
		    "c@d (C, D), Name <e@f>\n\n", "a@b,c@d,e@f" },
		{ "groups", "To: list: a@b, c@d; , e@f\nCc: undisclosed:;\n\n",
		    "a@b,c@d,e@f" },
		{ "folded", "To: a@b,\n  c@d\n\n", "a@b,c@d" },
		{ "any case", "tO: a@b\nCC: c@d\nbCC: e@f\n\n", "a@b,c@d,e@f" },
		{ "quoted local part", "To: \"a b\"@c\n\n", "\"a b\"@c" },
		{ "bare names", "To: root, admin\n\n", "root,admin" },
		{ "no header section", "To be or not\n", "" },
		{ "unclosed angle", "To: <a@b\n\n", "ERR bad recipient "
		    "address: an unclosed <" },
		{ "too many", "To: a, b, c, d, e\n\n",
		    "ERR too many recipients" },
	};
	char err[128], **list;
	struct buf b;
	size_t i, k, n;

	(void)state;
	for (i = 0; i < NROWS(rows); i++) {
		list = NULL;
		n = 0;
		buf_init(&b);
		buf_puts(&b, "");
		if (drop_header_rcpts(rows[i].content, strlen(rows[i].content),
		    &list, &n, 4, err, sizeof(err)) == -1)
			buf_printf(&b, "ERR %s", err);
		else
			for (k = 0; k < n; k++)
				buf_printf(&b, "%s%s", k ? "," : "", list[k]);
		for (k = 0; k < n; k++)
			free(list[k]);
		free(list);
		CHECK_STR(rows[i].what, b.data, rows[i].want);
		buf_free(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_nul),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_compose),
		cmocka_unit_test(test_header_rcpts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

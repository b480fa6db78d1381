/*
 * test_control_proto.c - tables for src/control_proto.c: control socket
 * requests (each verb, its argument rule, and the bytes a hostile client
 * may send), status lines, dot-stuffing, JSON strings, and the listing
 * of one message in its text and JSON forms (tern(8) "queue").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_proto.h"
#include "unit_table.h"

#define QID "0123456789ABCD"

/* ---- requests ---------------------------------------------------------- */

struct req_case {
	const char *what;
	const char *in;
	size_t n;
	int rc;
	enum control_verb verb;
	int json;
	const char *qid;    /* "" when none */
	const char *domain; /* "" when none */
	const char *err;    /* part of the sentence when rc is -1 */
};

static const struct req_case req_cases[] = {
    {"list", S("list\n"), 0, CTL_LIST, 0, "", "", NULL},
    {"list without its LF", S("list"), 0, CTL_LIST, 0, "", "", NULL},
    {"list json", S("list json\n"), 0, CTL_LIST, 1, "", "", NULL},
    {"status", S("status\n"), 0, CTL_STATUS, 0, "", "", NULL},
    {"status json", S("status json\n"), 0, CTL_STATUS, 1, "", "", NULL},
    {"show", S("show " QID "\n"), 0, CTL_SHOW, 0, QID, "", NULL},
    {"hold", S("hold " QID "\n"), 0, CTL_HOLD, 0, QID, "", NULL},
    {"release", S("release " QID "\n"), 0, CTL_RELEASE, 0, QID, "", NULL},
    {"delete", S("delete " QID "\n"), 0, CTL_DELETE, 0, QID, "", NULL},
    {"bounce", S("bounce " QID "\n"), 0, CTL_BOUNCE, 0, QID, "", NULL},
    {"flush everything", S("flush\n"), 0, CTL_FLUSH, 0, "", "", NULL},
    {"flush one", S("flush " QID "\n"), 0, CTL_FLUSH, 0, QID, "", NULL},
    {"flush a domain, folded", S("flush @Example.ORG\n"), 0, CTL_FLUSH, 0,
     "", "example.org", NULL},
    {"flush a one-label domain", S("flush @localhost\n"), 0, CTL_FLUSH, 0,
     "", "localhost", NULL},
    /* refused */
    {"empty", S("\n"), -1, 0, 0, "", "", "Unknown request"},
    {"unknown verb", S("frob\n"), -1, 0, 0, "", "", "Unknown request"},
    {"verbs are lower case", S("LIST\n"), -1, 0, 0, "", "", "Unknown"},
    {"a prefix of a verb", S("lis\n"), -1, 0, 0, "", "", "Unknown"},
    {"list with another word", S("list all\n"), -1, 0, 0, "", "",
     "nothing or \"json\""},
    {"show without an id", S("show\n"), -1, 0, 0, "", "", "needs a queue id"},
    {"show with a short id", S("show 0123\n"), -1, 0, 0, "", "",
     "needs a queue id"},
    {"show with a lower-case id", S("show 0123456789abcd\n"), -1, 0, 0, "",
     "", "needs a queue id"},
    {"show with a path", S("show ../../etc/pass\n"), -1, 0, 0, "", "",
     "needs a queue id"},
    {"hold with one character too many", S("hold " QID "E\n"), -1, 0, 0,
     "", "", "needs a queue id"},
    {"two spaces", S("list  json\n"), -1, 0, 0, "", "", "one space"},
    {"a trailing space", S("status \n"), -1, 0, 0, "", "", "one space"},
    {"three words", S("flush " QID " x\n"), -1, 0, 0, "", "", "at most two"},
    {"a tab", S("list\tjson\n"), -1, 0, 0, "", "", "control character"},
    {"CR LF", S("list\r\n"), -1, 0, 0, "", "", "control character"},
    {"NUL", S("list\0\n"), -1, 0, 0, "", "", "control character"},
    {"8-bit", S("list \xc3\xa9\n"), -1, 0, 0, "", "", "printable ASCII"},
    {"DEL", S("list\x7f\n"), -1, 0, 0, "", "", "printable ASCII"},
    {"flush an empty domain", S("flush @\n"), -1, 0, 0, "", "",
     "flush takes"},
    {"flush an empty label", S("flush @a..b\n"), -1, 0, 0, "", "",
     "flush takes"},
    {"flush a trailing dot", S("flush @a.\n"), -1, 0, 0, "", "",
     "flush takes"},
    {"flush a pattern", S("flush @*.org\n"), -1, 0, 0, "", "",
     "flush takes"},
    {"flush an address", S("flush a@b.org\n"), -1, 0, 0, "", "",
     "flush takes"},
    {"a bare id", S(QID "\n"), -1, 0, 0, "", "", "Unknown"},
};

static void
test_requests(void **state)
{
	const struct req_case *c;
	struct control_req rq;
	char err[256];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		c = &req_cases[i];
		err[0] = '\0';
		rc = control_parse(c->in, c->n, &rq, err, sizeof(err));
		CHECK(c->what, rc == c->rc);
		if (rc == -1) {
			CHECK(c->what, strstr(err, c->err) != NULL);
			/* a sentence: capital letter, full stop */
			CHECK(c->what, err[strlen(err) - 1] == '.');
			continue;
		}
		CHECK(c->what, rq.verb == c->verb && rq.json == c->json);
		CHECK(c->what, strcmp(rq.qid, c->qid) == 0);
		CHECK(c->what, strcmp(rq.domain, c->domain) == 0);
	}
}

/* the bounds: a line of CONTROL_LINE_MAX octets with its LF is taken, one
 * more is not; a domain of 255 is taken, 256 not; a label of 63, not 64 */
static void
test_request_bounds(void **state)
{
	char line[CONTROL_LINE_MAX + 8], err[256];
	struct control_req rq;
	size_t n;

	(void)state;
	memset(line, 'a', sizeof(line));
	memcpy(line, "flush @", 7);
	/* labels of 63 with dots: "flush @" + 255 */
	for (n = 7 + 63; n < 7 + 255; n += 64)
		line[n] = '.';
	line[7 + 255] = '\n';
	assert_int_equal(control_parse(line, 7 + 256, &rq, err, sizeof(err)),
	    0);
	assert_int_equal(strlen(rq.domain), 255);
	line[7 + 255] = 'a';
	line[7 + 256] = '\n';
	assert_int_equal(control_parse(line, 7 + 257, &rq, err, sizeof(err)),
	    -1);
	memset(line + 7, 'a', 64);
	line[7 + 64] = '\n';
	assert_int_equal(control_parse(line, 7 + 65, &rq, err, sizeof(err)),
	    -1);
	line[7 + 63] = '\n';
	assert_int_equal(control_parse(line, 7 + 64, &rq, err, sizeof(err)),
	    0);
	memset(line, 'x', sizeof(line));
	line[CONTROL_LINE_MAX - 1] = '\n';
	assert_int_equal(control_parse(line, CONTROL_LINE_MAX, &rq, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "Unknown"));
	line[CONTROL_LINE_MAX] = '\n';
	assert_int_equal(control_parse(line, CONTROL_LINE_MAX + 1, &rq, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

/* ---- status lines ------------------------------------------------------ */

struct status_case {
	const char *what;
	const char *in;
	int rc;
	enum control_err err;
	const char *text;
};

static const struct status_case status_cases[] = {
    {"ok", "ok", 0, CTL_OK, ""},
    {"usage", "error usage Say it again.", 0, CTL_E_USAGE, "Say it again."},
    {"notfound", "error notfound No.", 0, CTL_E_NOTFOUND, "No."},
    {"busy", "error busy Later.", 0, CTL_E_BUSY, "Later."},
    {"denied", "error denied Go.", 0, CTL_E_DENIED, "Go."},
    {"failed", "error failed Oops.", 0, CTL_E_FAILED, "Oops."},
    {"state", "error state Held.", 0, CTL_E_STATE, "Held."},
    {"unknown kind", "error weird x", -1, CTL_OK, ""},
    {"kind without a sentence", "error usage", -1, CTL_OK, ""},
    {"ok with more", "ok then", -1, CTL_OK, ""},
    {"empty", "", -1, CTL_OK, ""},
    {"a data line", "0123456789ABCD x", -1, CTL_OK, ""},
};

static void
test_status_lines(void **state)
{
	const struct status_case *c;
	enum control_err e;
	const char *text;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
		c = &status_cases[i];
		CHECK(c->what, control_parse_status(c->in, &e, &text) == c->rc);
		if (c->rc == 0)
			CHECK(c->what, e == c->err && strcmp(text, c->text) == 0);
	}
	/* every kind the server names is one the client reads */
	for (e = CTL_E_USAGE; e <= CTL_E_STATE; e++) {
		char line[64];
		enum control_err back;

		snprintf(line, sizeof(line), "error %s x.",
		    control_err_name(e));
		assert_int_equal(control_parse_status(line, &back, &text), 0);
		assert_int_equal(back, e);
	}
}

/* ---- data lines and JSON ----------------------------------------------- */

static void
test_dot_stuffing(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	control_put_line(&b, S("plain"));
	control_put_line(&b, S(".starts with a dot"));
	control_put_line(&b, S("."));
	control_put_line(&b, S(""));
	control_put_end(&b);
	assert_string_equal(b.data, "plain\n..starts with a dot\n..\n\n.\n");
	buf_free(&b);
}

struct json_case {
	const char *what;
	const char *in;
	const char *want;
};

static const struct json_case json_cases[] = {
    {"plain", "abc", "\"abc\""},
    {"NULL is null", NULL, "null"},
    {"quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\""},
    {"control characters", "a\nb\x01\x7f", "\"a\\u000ab\\u0001\\u007f\""},
    {"UTF-8 as it is", "caf\xc3\xa9", "\"caf\xc3\xa9\""},
    {"empty", "", "\"\""},
};

static void
test_json_strings(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b);
	for (i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
		buf_reset(&b);
		control_json_str(&b, json_cases[i].in);
		CHECK(json_cases[i].what, strcmp(b.data, json_cases[i].want) ==
		    0);
	}
	buf_free(&b);
}

/* ---- one message listed ------------------------------------------------ */

#define NOW 1800000000

/* two_rcpts - a message with a deferred and a delivered recipient */
static void
two_rcpts(struct envelope *e)
{
	envelope_init(e);
	memcpy(e->id, QID, QID_SIZE);
	e->arrival = 1764950400; /* 2025-12-05T16:00:00Z */
	e->size = 1234;
	envelope_set(&e->sender, "alice@example.org");
	envelope_add_rcpt(e, "bob@example.net");
	envelope_add_rcpt(e, "\"c d\"@example.net");
	e->rcpts[0].state = RCPT_DEFERRED;
	e->rcpts[0].next_try = NOW + 300;
	e->rcpts[0].tries = 2;
	envelope_set(&e->rcpts[0].last_error, "451 4.3.0 \"busy\" now");
	envelope_set(&e->rcpts[0].status, "4.3.0");
	e->rcpts[1].state = RCPT_DELIVERED;
	envelope_set(&e->rcpts[1].status, "2.0.0");
}

static void
test_format_text(void **state)
{
	struct envelope e;
	struct buf b;

	(void)state;
	two_rcpts(&e);
	buf_init(&b);
	control_format_msg(&b, &e, 0, 0, NOW);
	assert_string_equal(b.data, QID " 2025-12-05T16:00:00Z 1234 "
	    "<alice@example.org> deferred 2027-01-15T08:05:00Z "
	    "bob@example.net=deferred,\"c?d\"@example.net=delivered "
	    "451 4.3.0 \"busy\" now");
	/* due now, active, held, the null sender, no error */
	buf_reset(&b);
	e.rcpts[0].next_try = NOW;
	control_format_msg(&b, &e, 0, 0, NOW);
	assert_non_null(strstr(b.data, "> pending now "));
	buf_reset(&b);
	control_format_msg(&b, &e, 1, 0, NOW);
	assert_non_null(strstr(b.data, "> active now "));
	buf_reset(&b);
	e.hold = 1;
	envelope_set(&e.sender, "");
	envelope_set(&e.rcpts[0].last_error, NULL);
	control_format_msg(&b, &e, 1, 0, NOW);
	assert_non_null(strstr(b.data, " <> held - "));
	assert_non_null(strstr(b.data, "=delivered -"));
	envelope_free(&e);
	buf_free(&b);
}

static void
test_format_json(void **state)
{
	struct envelope e;
	struct buf b;

	(void)state;
	two_rcpts(&e);
	buf_init(&b);
	control_format_msg(&b, &e, 0, 1, NOW);
	assert_string_equal(b.data, "{\"id\":\"" QID "\",\"arrival\":"
	    "1764950400,\"size\":1234,\"sender\":\"alice@example.org\","
	    "\"state\":\"deferred\",\"held\":false,\"next_try\":1800000300,"
	    "\"recipients\":[{\"address\":\"bob@example.net\",\"state\":"
	    "\"deferred\",\"tries\":2,\"next_try\":1800000300,\"status\":"
	    "\"4.3.0\",\"last_error\":\"451 4.3.0 \\\"busy\\\" now\"},"
	    "{\"address\":\"\\\"c d\\\"@example.net\",\"state\":"
	    "\"delivered\",\"tries\":0,\"next_try\":null,\"status\":"
	    "\"2.0.0\",\"last_error\":null}]}");
	buf_reset(&b);
	e.hold = 1;
	control_format_msg(&b, &e, 0, 1, NOW);
	assert_non_null(strstr(b.data, "\"state\":\"held\",\"held\":true,"
	    "\"next_try\":null,"));
	envelope_free(&e);
	buf_free(&b);
}

/* a message with nothing left to deliver (reports still owed) is done */
static void
test_state_done(void **state)
{
	struct envelope e;

	(void)state;
	two_rcpts(&e);
	e.rcpts[0].state = RCPT_FAILED;
	assert_int_equal(control_msg_state_of(&e, 0, NOW), CTL_MSG_DONE);
	envelope_free(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_request_bounds),
		cmocka_unit_test(test_status_lines),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_format_text),
		cmocka_unit_test(test_format_json),
		cmocka_unit_test(test_state_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_envelope.c - the envelope file form: round trips, the exact text,
 * sanitising on write, every way a file can be refused, truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

/* a recipient row: what to put in, formatted and parsed back */
struct rcpt_row {
	const char *addr;
	enum rcpt_state state;
	int64_t next_try;
	unsigned tries;
	const char *error;
};

#define MAX_ROW_RCPTS 4

struct env_row {
	const char *what;
	const char *sender;
	const char *helo;
	const char *client_addr;
	const char *client_name;
	const char *protocol;
	const char *auth_user;
	int body_8bit;
	int smtputf8;
	int64_t arrival;
	uint64_t size;
	struct rcpt_row rcpts[MAX_ROW_RCPTS];
};

static const struct env_row round_trips[] = {
	{ "plain message", "alice@example.org", "mail.example.org",
	    "198.51.100.1", "mail.example.org", "ESMTP", NULL, 0, 0,
	    1700000000, 1234,
	    { { "bob@example.net", RCPT_PENDING, 0, 0, NULL } } },
	{ "null sender (a bounce)", "", "mx.example.org", "::1", "unknown",
	    "SMTP", NULL, 0, 0, 1, 0,
	    { { "alice@example.org", RCPT_PENDING, 0, 0, NULL } } },
	{ "quoted local parts with spaces", "\"john smith\"@example.org",
	    "client", "127.0.0.1", "localhost", "ESMTP", NULL, 0, 0, 5, 5,
	    { { "\"a  b\"@example.net", RCPT_PENDING, 0, 0, NULL },
		{ "\" lead and trail \"@example.net", RCPT_PENDING, 0, 0,
		    NULL } } },
	{ "UTF-8 everywhere (SMTPUTF8)", "jöran@exämple.org",
	    "mäil.example.org", "2001:db8::1", "mäil.example.org",
	    "ESMTPSA", "jöran", 1, 1, 1700000000, 99,
	    { { "用户@例子.广告", RCPT_PENDING, 0, 0, NULL },
		{ "θσερ@παράδειγμα.δοκιμή", RCPT_DELIVERED, 0, 1, NULL } } },
	{ "authenticated submission", "alice@example.org", "laptop",
	    "198.51.100.7", "unknown", "ESMTPSA", "alice", 1, 0, 42, 1,
	    { { "bob@example.net", RCPT_PENDING, 0, 0, NULL } } },
	{ "empty auth-user is kept apart from none", "a@b", "h", "c", "n",
	    "ESMTPA", "", 0, 0, 7, 7,
	    { { "b@c", RCPT_PENDING, 0, 0, NULL } } },
	{ "every state, errors with spaces and colons", "a@example.org",
	    "h", "127.0.0.1", "localhost", "ESMTP", NULL, 0, 0, 1000, 10,
	    { { "p@example.net", RCPT_PENDING, 0, 0, NULL },
		{ "d@example.net", RCPT_DEFERRED, 1700000300, 3,
		    "451 4.3.0 mx.example.net: try again: later" },
		{ "x@example.net", RCPT_DELIVERED, 0, 1, NULL },
		{ "f@example.net", RCPT_FAILED, 0, 2,
		    "550 5.1.1 <f@example.net>: no such user" } } },
	{ "largest numbers", "a@b", "h", "c", "n", "SMTP", NULL, 0, 0,
	    INT64_MAX, UINT64_MAX,
	    { { "b@c", RCPT_DEFERRED, INT64_MAX, UINT_MAX, "x" } } },
	{ "values with leading, trailing and inner spaces", " a@b ",
	    "  helo  name  ", " c", "n ", "SMTP", " u ", 0, 0, 3, 3,
	    { { " b@c ", RCPT_DEFERRED, 1, 1, "  spaced  error  " } } },
	{ "empty strings", "", "", "", "", "", NULL, 0, 0, 0, 0,
	    { { "b@c", RCPT_PENDING, 0, 0, "" } } },
};

/* the keys that came later (DSN and the last attempt), per recipient */
struct dsn_rcpt_row {
	const char *status;
	const char *remote;
	const char *orcpt;
	unsigned notify;
	int warned;
	int notified;
};

/* a row of round_trips with the later keys added */
struct dsn_row {
	const char *what;
	size_t base; /* index in round_trips */
	const char *envid;
	enum dsn_ret ret;
	struct dsn_rcpt_row rcpts[MAX_ROW_RCPTS];
};

static const struct dsn_row dsn_trips[] = {
	{ "DSN: every optional key", 6, "QQ314159+2Bx", DSN_RET_HDRS,
	    { { NULL, NULL, "rfc822;p@example.net", DSN_NOTIFY_NEVER, 0, 0 },
		{ "4.3.0", "mx.example.net[198.51.100.7]",
		    "rfc822;D+2Bx@example.net",
		    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |
			DSN_NOTIFY_DELAY, 1, 0 },
		{ "2.0.0", NULL, "utf-8;x\\x{E9}@example.net",
		    DSN_NOTIFY_SUCCESS, 0, 1 },
		{ "5.1.1", "mx[198.51.100.7]", NULL, DSN_NOTIFY_FAILURE, 1,
		    1 } } },
	{ "DSN: RET=FULL, single words of NOTIFY", 3, "x", DSN_RET_FULL,
	    { { NULL, NULL, NULL, DSN_NOTIFY_DELAY, 0, 0 },
		{ NULL, NULL, NULL, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY, 0,
		    0 } } },
	{ "DSN: empty values and the flags alone", 6, "", DSN_RET_UNSET,
	    { { "", "", "", 0, 0, 1 }, { NULL, NULL, NULL, 0, 1, 0 } } },
};

/* build - an envelope from a row */
static void
build(struct envelope *e, const struct env_row *r)
{
	size_t i;

	envelope_init(e);
	strcpy(e->id, "0123456789ABCD");
	envelope_set(&e->sender, r->sender);
	envelope_set(&e->helo, r->helo);
	envelope_set(&e->client_addr, r->client_addr);
	envelope_set(&e->client_name, r->client_name);
	envelope_set(&e->protocol, r->protocol);
	envelope_set(&e->auth_user, r->auth_user);
	e->body_8bit = r->body_8bit ? 1 : 0;
	e->smtputf8 = r->smtputf8 ? 1 : 0;
	e->arrival = r->arrival;
	e->size = r->size;
	for (i = 0; i < MAX_ROW_RCPTS && r->rcpts[i].addr; i++) {
		struct env_rcpt *p;

		assert_int_equal(envelope_add_rcpt(e, r->rcpts[i].addr), 1);
		p = &e->rcpts[e->nrcpts - 1];
		p->state = r->rcpts[i].state;
		p->next_try = r->rcpts[i].next_try;
		p->tries = r->rcpts[i].tries;
		envelope_set(&p->last_error, r->rcpts[i].error);
	}
}

/* build_dsn - an envelope from a row of dsn_trips */
static void
build_dsn(struct envelope *e, const struct dsn_row *d)
{
	const struct dsn_rcpt_row *dr;
	struct env_rcpt *p;
	size_t i;

	build(e, &round_trips[d->base]);
	envelope_set(&e->envid, d->envid);
	e->ret = d->ret;
	for (i = 0; i < e->nrcpts && i < MAX_ROW_RCPTS; i++) {
		dr = &d->rcpts[i];
		p = &e->rcpts[i];
		envelope_set(&p->status, dr->status);
		envelope_set(&p->remote, dr->remote);
		envelope_set(&p->orcpt, dr->orcpt);
		p->notify = dr->notify;
		p->warned = dr->warned ? 1 : 0;
		p->notified = dr->notified ? 1 : 0;
	}
}

/* str_equal - NULL-aware string comparison */
static void
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_string_equal(a, b);
}

/* env_equal - every field of two envelopes */
static void
env_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	assert_int_equal(a->version, b->version);
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->arrival, b->arrival);
	str_equal(a->sender, b->sender);
	str_equal(a->helo, b->helo);
	str_equal(a->client_addr, b->client_addr);
	str_equal(a->client_name, b->client_name);
	str_equal(a->protocol, b->protocol);
	str_equal(a->auth_user, b->auth_user);
	assert_true(a->uid == b->uid);
	assert_int_equal(a->body_8bit, b->body_8bit);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_true(a->size == b->size);
	str_equal(a->envid, b->envid);
	assert_int_equal(a->ret, b->ret);
	assert_int_equal(a->nrcpts, b->nrcpts);
	for (i = 0; i < a->nrcpts; i++) {
		str_equal(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_true(a->rcpts[i].next_try == b->rcpts[i].next_try);
		assert_int_equal(a->rcpts[i].tries, b->rcpts[i].tries);
		str_equal(a->rcpts[i].last_error, b->rcpts[i].last_error);
		str_equal(a->rcpts[i].status, b->rcpts[i].status);
		str_equal(a->rcpts[i].remote, b->rcpts[i].remote);
		str_equal(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_int_equal(a->rcpts[i].warned, b->rcpts[i].warned);
		assert_int_equal(a->rcpts[i].notified, b->rcpts[i].notified);
	}
}

/* round_trip - format, parse, compare, format again: same text */
static void
round_trip(const struct envelope *e)
{
	struct envelope back;
	struct buf a, b;
	char err[200];

	buf_init(&a);
	buf_init(&b);
	envelope_format(e, &a);
	if (envelope_parse(&back, a.data, a.len, err, sizeof(err)) != 0)
		fail_msg("parse of formatted text failed: %s\n%s", err,
		    a.data);
	env_equal(e, &back);
	envelope_format(&back, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	envelope_free(&back);
	buf_free(&a);
	buf_free(&b);
}

static void
test_round_trip_table(void **state)
{
	struct envelope e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(round_trips) / sizeof(round_trips[0]); i++) {
		print_message("round trip: %s\n", round_trips[i].what);
		build(&e, &round_trips[i]);
		round_trip(&e);
		envelope_free(&e);
	}
	for (i = 0; i < sizeof(dsn_trips) / sizeof(dsn_trips[0]); i++) {
		print_message("round trip: %s\n", dsn_trips[i].what);
		build_dsn(&e, &dsn_trips[i]);
		round_trip(&e);
		envelope_free(&e);
	}
}

static void
test_round_trip_many_rcpts(void **state)
{
	struct envelope e;
	char addr[64];
	int i;

	(void)state;
	build(&e, &round_trips[0]);
	for (i = 0; i < 5000; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.net", i);
		assert_int_equal(envelope_add_rcpt(&e, addr), 1);
		e.rcpts[e.nrcpts - 1].state = (enum rcpt_state)(i % 4);
		e.rcpts[e.nrcpts - 1].tries = (unsigned)i;
	}
	assert_int_equal(e.nrcpts, 5001);
	round_trip(&e);
	envelope_free(&e);
}

/* the documented form, byte for byte: what an administrator reads */
static void
test_exact_text(void **state)
{
	static const char want[] =
	    "version 1\n"
	    "id 0123456789ABCD\n"
	    "arrival 1000\n"
	    "sender a@example.org\n"
	    "helo h\n"
	    "client-addr 127.0.0.1\n"
	    "client-name localhost\n"
	    "protocol ESMTP\n"
	    "body 7bit\n"
	    "smtputf8 0\n"
	    "size 10\n"
	    "rcpt p@example.net\n"
	    "state pending\n"
	    "next-try 0\n"
	    "tries 0\n"
	    "rcpt d@example.net\n"
	    "state deferred\n"
	    "next-try 1700000300\n"
	    "tries 3\n"
	    "error 451 4.3.0 mx.example.net: try again: later\n"
	    "rcpt x@example.net\n"
	    "state delivered\n"
	    "next-try 0\n"
	    "tries 1\n"
	    "rcpt f@example.net\n"
	    "state failed\n"
	    "next-try 0\n"
	    "tries 2\n"
	    "error 550 5.1.1 <f@example.net>: no such user\n"
	    "end\n";
	static const char want_null[] =
	    "version 1\n"
	    "id 0123456789ABCD\n"
	    "arrival 1\n"
	    "sender\n"
	    "helo mx.example.org\n"
	    "client-addr ::1\n"
	    "client-name unknown\n"
	    "protocol SMTP\n"
	    "body 7bit\n"
	    "smtputf8 0\n"
	    "size 0\n"
	    "rcpt alice@example.org\n"
	    "state pending\n"
	    "next-try 0\n"
	    "tries 0\n"
	    "end\n";
	struct envelope e;
	struct buf b;

	(void)state;
	build(&e, &round_trips[6]);
	buf_init(&b);
	envelope_format(&e, &b);
	assert_string_equal(b.data, want);
	envelope_free(&e);
	buf_reset(&b);
	build(&e, &round_trips[1]);
	envelope_format(&e, &b);
	assert_string_equal(b.data, want_null);
	envelope_free(&e);
	buf_free(&b);
}

/* the DSN keys, byte for byte, where the documentation puts them */
static void
test_exact_text_dsn(void **state)
{
	static const char want[] =
	    "version 1\n"
	    "id 0123456789ABCD\n"
	    "arrival 1000\n"
	    "sender a@example.org\n"
	    "helo h\n"
	    "client-addr 127.0.0.1\n"
	    "client-name localhost\n"
	    "protocol ESMTP\n"
	    "envid QQ314159+2Bx\n"
	    "ret hdrs\n"
	    "body 7bit\n"
	    "smtputf8 0\n"
	    "size 10\n"
	    "rcpt p@example.net\n"
	    "state pending\n"
	    "next-try 0\n"
	    "tries 0\n"
	    "orcpt rfc822;p@example.net\n"
	    "notify never\n"
	    "rcpt d@example.net\n"
	    "state deferred\n"
	    "next-try 1700000300\n"
	    "tries 3\n"
	    "error 451 4.3.0 mx.example.net: try again: later\n"
	    "status 4.3.0\n"
	    "remote mx.example.net[198.51.100.7]\n"
	    "orcpt rfc822;D+2Bx@example.net\n"
	    "notify success,failure,delay\n"
	    "warned 1\n"
	    "rcpt x@example.net\n"
	    "state delivered\n"
	    "next-try 0\n"
	    "tries 1\n"
	    "status 2.0.0\n"
	    "orcpt utf-8;x\\x{E9}@example.net\n"
	    "notify success\n"
	    "notified 1\n"
	    "rcpt f@example.net\n"
	    "state failed\n"
	    "next-try 0\n"
	    "tries 2\n"
	    "error 550 5.1.1 <f@example.net>: no such user\n"
	    "status 5.1.1\n"
	    "remote mx[198.51.100.7]\n"
	    "notify failure\n"
	    "warned 1\n"
	    "notified 1\n"
	    "end\n";
	struct envelope e;
	struct buf b;

	(void)state;
	build_dsn(&e, &dsn_trips[0]);
	buf_init(&b);
	envelope_format(&e, &b);
	assert_string_equal(b.data, want);
	envelope_free(&e);
	buf_free(&b);
}

/*
 * NOTIFY bits the file cannot hold as they are: NEVER wins over the
 * others (it sends no unwanted mail), unknown bits are dropped
 */
static void
test_format_notify_odd_bits(void **state)
{
	static const struct {
		const char *what;
		unsigned in;
		const char *line; /* NULL: no notify line */
		unsigned back;
	} rows[] = {
		{ "not given", 0, NULL, 0 },
		{ "never with success", DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS,
		    "notify never\n", DSN_NOTIFY_NEVER },
		{ "unknown bit only", 0x100, NULL, 0 },
		{ "unknown bit with delay", 0x100 | DSN_NOTIFY_DELAY,
		    "notify delay\n", DSN_NOTIFY_DELAY },
		{ "failure and delay", DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE,
		    "notify failure,delay\n",
		    DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE },
	};
	struct envelope e, back;
	struct buf b;
	char err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("notify: %s\n", rows[i].what);
		build(&e, &round_trips[0]);
		e.rcpts[0].notify = rows[i].in;
		buf_init(&b);
		envelope_format(&e, &b);
		if (rows[i].line != NULL)
			assert_non_null(strstr(b.data, rows[i].line));
		else
			assert_null(strstr(b.data, "notify"));
		assert_int_equal(envelope_parse(&back, b.data, b.len, err,
				     sizeof(err)), 0);
		assert_int_equal(back.rcpts[0].notify, rows[i].back);
		envelope_free(&back);
		envelope_free(&e);
		buf_free(&b);
	}
}

/* values that cannot be written as they are: format sanitises them */
static const struct {
	const char *what;
	const char *in;
	const char *out;
} sanitise_rows[] = {
	{ "CR LF (header injection)", "a\r\nrcpt evil@x", "a??rcpt evil@x" },
	{ "bare LF", "a\nb", "a?b" },
	{ "tab", "a\tb", "a?b" },
	{ "DEL and ESC", "a\x7f\x1b[0m", "a??[0m" },
	{ "invalid UTF-8", "a\xff\xc3zb", "a??zb" },
	{ "truncated UTF-8 at the end", "ab\xe4\xb8", "ab??" },
	{ "UTF-8 kept", "h\xc3\xa9llo", "h\xc3\xa9llo" },
};

static void
test_format_sanitises(void **state)
{
	struct envelope e, back;
	struct buf b;
	char err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sanitise_rows) / sizeof(sanitise_rows[0]);
	    i++) {
		print_message("sanitise: %s\n", sanitise_rows[i].what);
		build(&e, &round_trips[0]);
		envelope_set(&e.helo, sanitise_rows[i].in);
		envelope_set(&e.sender, sanitise_rows[i].in);
		envelope_set(&e.rcpts[0].addr, sanitise_rows[i].in);
		envelope_set(&e.rcpts[0].last_error, sanitise_rows[i].in);
		envelope_set(&e.envid, sanitise_rows[i].in);
		envelope_set(&e.rcpts[0].orcpt, sanitise_rows[i].in);
		envelope_set(&e.rcpts[0].remote, sanitise_rows[i].in);
		envelope_set(&e.rcpts[0].status, sanitise_rows[i].in);
		buf_init(&b);
		envelope_format(&e, &b);
		assert_int_equal(
		    envelope_parse(&back, b.data, b.len, err, sizeof(err)), 0);
		assert_string_equal(back.helo, sanitise_rows[i].out);
		assert_string_equal(back.sender, sanitise_rows[i].out);
		assert_string_equal(back.rcpts[0].addr, sanitise_rows[i].out);
		assert_string_equal(back.rcpts[0].last_error,
		    sanitise_rows[i].out);
		assert_string_equal(back.envid, sanitise_rows[i].out);
		assert_string_equal(back.rcpts[0].orcpt, sanitise_rows[i].out);
		assert_string_equal(back.rcpts[0].remote,
		    sanitise_rows[i].out);
		assert_string_equal(back.rcpts[0].status,
		    sanitise_rows[i].out);
		assert_int_equal(back.nrcpts, 1);
		envelope_free(&back);
		envelope_free(&e);
		buf_free(&b);
	}
}

/* negative times are written as 0 so the file stays readable */
static void
test_format_negative_times(void **state)
{
	struct envelope e, back;
	struct buf b;
	char err[200];

	(void)state;
	build(&e, &round_trips[0]);
	e.arrival = -5;
	e.rcpts[0].next_try = INT64_MIN;
	buf_init(&b);
	envelope_format(&e, &b);
	assert_int_equal(envelope_parse(&back, b.data, b.len, err,
			     sizeof(err)), 0);
	assert_int_equal(back.arrival, 0);
	assert_int_equal(back.rcpts[0].next_try, 0);
	envelope_free(&back);
	envelope_free(&e);
	buf_free(&b);
}

/*
 * Refused files.  Each row is a whole file built as HEAD + the middle +
 * TAIL unless it says raw; want is a part of the reason.
 */
#define HEAD_AFTER_VERSION                                                  \
	"id 0123456789ABCD\narrival 1\nsender a@b\nhelo h\n"                \
	"client-addr c\nclient-name n\nprotocol SMTP\nbody 7bit\n"         \
	"smtputf8 0\nsize 1\n"
#define GOOD_HEAD "version 1\n" HEAD_AFTER_VERSION
#define GOOD_RCPT "rcpt b@c\nstate pending\nnext-try 0\ntries 0\n"
#define GOOD_FILE GOOD_HEAD GOOD_RCPT "end\n"

static const struct {
	const char *what;
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *want;
} error_rows[] = {
	{ "empty file", "", 0, "no end line" },
	{ "only a version", "version 1\n", 0, "no end line" },
	{ "no final newline", GOOD_HEAD GOOD_RCPT "end", 0, "no newline" },
	{ "data after end", GOOD_FILE "x", 0, "after end" },
	{ "a line after end", GOOD_FILE "end\n", 0, "after end" },
	{ "text on the end line", GOOD_HEAD GOOD_RCPT "end x\n", 0,
	    "text after end" },
	{ "first line not version", HEAD_AFTER_VERSION "version 1\n"
	    GOOD_RCPT "end\n", 0, "first line" },
	{ "version 2", "version 2\n" HEAD_AFTER_VERSION GOOD_RCPT "end\n",
	    0, "unknown version '2'" },
	{ "version 0", "version 0\n" HEAD_AFTER_VERSION GOOD_RCPT "end\n",
	    0, "unknown version" },
	{ "version with garbage", "version 1a\n" HEAD_AFTER_VERSION
	    GOOD_RCPT "end\n", 0, "unknown version" },
	{ "version empty", "version\n" HEAD_AFTER_VERSION GOOD_RCPT "end\n",
	    0, "unknown version" },
	{ "duplicate version", GOOD_HEAD "version 1\n" GOOD_RCPT "end\n", 0,
	    "duplicate key 'version'" },
	{ "unknown key", GOOD_HEAD "colour blue\n" GOOD_RCPT "end\n", 0,
	    "unknown key 'colour'" },
	{ "key case matters", GOOD_HEAD "Rcpt b@c\n" GOOD_RCPT "end\n", 0,
	    "unknown key 'Rcpt'" },
	{ "blank line", GOOD_HEAD "\n" GOOD_RCPT "end\n", 0,
	    "unknown key ''" },
	{ "duplicate header key", GOOD_HEAD "helo again\n" GOOD_RCPT "end\n",
	    0, "duplicate key 'helo'" },
	{ "duplicate sender", GOOD_HEAD "sender\n" GOOD_RCPT "end\n", 0,
	    "duplicate key 'sender'" },
	{ "duplicate auth-user", GOOD_HEAD "auth-user a\nauth-user b\n"
	    GOOD_RCPT "end\n", 0, "duplicate key 'auth-user'" },
	{ "duplicate uid", GOOD_HEAD "uid 1000\nuid 0\n" GOOD_RCPT "end\n", 0,
	    "duplicate key 'uid'" },
	{ "negative uid", GOOD_HEAD "uid -1\n" GOOD_RCPT "end\n", 0, "" },
	{ "uid out of range", GOOD_HEAD "uid 4294967295\n" GOOD_RCPT "end\n",
	    0, "" },
	{ "duplicate recipient key", GOOD_HEAD GOOD_RCPT "tries 1\nend\n", 0,
	    "duplicate key 'tries'" },
	{ "duplicate error", GOOD_HEAD GOOD_RCPT "error a\nerror b\nend\n", 0,
	    "duplicate key 'error'" },
	{ "missing id", "version 1\narrival 1\nsender a@b\nhelo h\n"
	    "client-addr c\nclient-name n\nprotocol SMTP\nbody 7bit\n"
	    "smtputf8 0\nsize 1\n" GOOD_RCPT "end\n", 0, "missing key 'id'" },
	{ "missing helo", "version 1\nid 0123456789ABCD\narrival 1\n"
	    "sender a@b\nclient-addr c\nclient-name n\nprotocol SMTP\n"
	    "body 7bit\nsmtputf8 0\nsize 1\n" GOOD_RCPT "end\n", 0,
	    "missing key 'helo'" },
	{ "missing size", "version 1\nid 0123456789ABCD\narrival 1\n"
	    "sender a@b\nhelo h\nclient-addr c\nclient-name n\n"
	    "protocol SMTP\nbody 7bit\nsmtputf8 0\n" GOOD_RCPT "end\n", 0,
	    "missing key 'size'" },
	{ "missing sender (not the same as <>)", "version 1\n"
	    "id 0123456789ABCD\narrival 1\nhelo h\nclient-addr c\n"
	    "client-name n\nprotocol SMTP\nbody 7bit\nsmtputf8 0\nsize 1\n"
	    GOOD_RCPT "end\n", 0, "missing key 'sender'" },
	{ "missing header key, no recipients", "version 1\nend\n", 0,
	    "missing key 'id'" },
	{ "no recipients", GOOD_HEAD "end\n", 0, "no recipients" },
	{ "missing state", GOOD_HEAD "rcpt b@c\nnext-try 0\ntries 0\nend\n",
	    0, "missing key 'state'" },
	{ "missing tries before next rcpt", GOOD_HEAD
	    "rcpt b@c\nstate pending\nnext-try 0\n" GOOD_RCPT "end\n", 0,
	    "recipient 1: missing key 'tries'" },
	{ "missing next-try", GOOD_HEAD "rcpt b@c\nstate pending\ntries 0\n"
	    "end\n", 0, "missing key 'next-try'" },
	{ "recipient key before a recipient", GOOD_HEAD "state pending\n"
	    GOOD_RCPT "end\n", 0, "outside a recipient block" },
	{ "header key after the recipients", GOOD_HEAD GOOD_RCPT
	    "auth-user x\nend\n", 0, "after the recipients" },
	{ "empty recipient", GOOD_HEAD "rcpt\nstate pending\nnext-try 0\n"
	    "tries 0\nend\n", 0, "empty recipient" },
	{ "empty recipient with space", GOOD_HEAD "rcpt \nstate pending\n"
	    "next-try 0\ntries 0\nend\n", 0, "empty recipient" },
	{ "unknown state", GOOD_HEAD "rcpt b@c\nstate lost\nnext-try 0\n"
	    "tries 0\nend\n", 0, "unknown recipient state" },
	{ "state case matters", GOOD_HEAD "rcpt b@c\nstate Pending\n"
	    "next-try 0\ntries 0\nend\n", 0, "unknown recipient state" },
	{ "bad id: short", "version 1\nid 0123456789ABC\n", 0,
	    "bad queue id" },
	{ "bad id: lower case", "version 1\nid 0123456789abcd\n", 0,
	    "bad queue id" },
	{ "bad id: path", "version 1\nid ../../etc/pass\n", 0,
	    "bad queue id" },
	{ "arrival overflows int64", "version 1\narrival "
	    "9223372036854775808\n", 0, "out of range" },
	{ "arrival negative", "version 1\narrival -1\n", 0, "not a number" },
	{ "arrival with plus", "version 1\narrival +1\n", 0, "not a number" },
	{ "arrival empty", "version 1\narrival\n", 0, "empty number" },
	{ "arrival leading zero", "version 1\narrival 01\n", 0,
	    "leading zero" },
	{ "arrival with space after", "version 1\narrival 1 \n", 0,
	    "not a number" },
	{ "size overflows uint64", "version 1\nsize 18446744073709551616\n",
	    0, "out of range" },
	{ "size far too long", "version 1\nsize "
	    "1000000000000000000000000000000\n", 0, "out of range" },
	{ "size hex", "version 1\nsize 0x10\n", 0, "leading zero" },
	{ "tries overflow unsigned", GOOD_HEAD "rcpt b@c\nstate pending\n"
	    "next-try 0\ntries 4294967296\nend\n", 0, "out of range" },
	{ "next-try overflow", GOOD_HEAD "rcpt b@c\nstate pending\n"
	    "next-try 9223372036854775808\ntries 0\nend\n", 0,
	    "out of range" },
	{ "smtputf8 2", "version 1\nsmtputf8 2\n", 0, "smtputf8 must be" },
	{ "smtputf8 empty", "version 1\nsmtputf8\n", 0, "smtputf8 must be" },
	{ "body 9bit", "version 1\nbody 9bit\n", 0, "body must be" },
	{ "body upper case", "version 1\nbody 8BITMIME\n", 0, "body must be" },
	{ "CR before LF", "version 1\r\n", 0, "control character 0x0d" },
	{ "CR in a value", GOOD_HEAD "rcpt b@c\rrcpt e@f\n", 0,
	    "control character 0x0d" },
	{ "tab in a value", "version 1\nhelo a\tb\n", 0,
	    "control character 0x09" },
	{ "DEL in a value", "version 1\nhelo a\x7f\n", 0,
	    "control character 0x7f" },
	{ "ESC in a value", "version 1\nhelo \x1b[2J\n", 0,
	    "control character 0x1b" },
	{ "NUL in a value", "version 1\nhelo a\0b\n",
	    sizeof("version 1\nhelo a\0b\n") - 1,
	    "control character 0x00" },
	{ "invalid UTF-8", "version 1\nhelo \xff\n", 0, "not UTF-8" },
	{ "overlong UTF-8", "version 1\nhelo \xc0\xaf\n", 0, "not UTF-8" },
	{ "UTF-16 surrogate", "version 1\nhelo \xed\xa0\x80\n", 0,
	    "not UTF-8" },
	{ "line number in the reason", "version 1\nid 0123456789ABCD\nx\n",
	    0, "line 3: unknown key 'x'" },
	{ "binary junk line", "version 1\n\xff\xfe\n", 0, "not UTF-8" },
	{ "a long unknown key is cut in the reason", "version 1\n"
	    "abcdefghijabcdefghijabcdefghijabcdefghij v\n", 0,
	    "unknown key 'abcdefghijabcdefghijabcdefghijab'" },
	/* the DSN keys */
	{ "ret bogus", GOOD_HEAD "ret some\n" GOOD_RCPT "end\n", 0,
	    "ret must be full or hdrs" },
	{ "ret upper case", GOOD_HEAD "ret FULL\n" GOOD_RCPT "end\n", 0,
	    "ret must be full or hdrs" },
	{ "ret empty", GOOD_HEAD "ret\n" GOOD_RCPT "end\n", 0,
	    "ret must be full or hdrs" },
	{ "duplicate ret", GOOD_HEAD "ret full\nret hdrs\n" GOOD_RCPT
	    "end\n", 0, "duplicate key 'ret'" },
	{ "hold other than 0 or 1", GOOD_HEAD "hold yes\n" GOOD_RCPT "end\n",
	    0, "hold must be 0 or 1" },
	{ "duplicate hold", GOOD_HEAD "hold 1\nhold 1\n" GOOD_RCPT "end\n",
	    0, "duplicate key 'hold'" },
	{ "hold after the recipients", GOOD_HEAD GOOD_RCPT "hold 1\nend\n",
	    0, "'hold' after the recipients" },
	{ "duplicate envid", GOOD_HEAD "envid a\nenvid b\n" GOOD_RCPT
	    "end\n", 0, "duplicate key 'envid'" },
	{ "envid after the recipients", GOOD_HEAD GOOD_RCPT "envid a\nend\n",
	    0, "'envid' after the recipients" },
	{ "ret after the recipients", GOOD_HEAD GOOD_RCPT "ret full\nend\n",
	    0, "'ret' after the recipients" },
	{ "orcpt before a recipient", GOOD_HEAD "orcpt rfc822;a@b\n"
	    GOOD_RCPT "end\n", 0, "'orcpt' outside a recipient block" },
	{ "notify before a recipient", GOOD_HEAD "notify never\n"
	    GOOD_RCPT "end\n", 0, "'notify' outside a recipient block" },
	{ "duplicate status", GOOD_HEAD GOOD_RCPT "status 5.0.0\n"
	    "status 5.1.1\nend\n", 0, "duplicate key 'status'" },
	{ "duplicate remote", GOOD_HEAD GOOD_RCPT "remote a\nremote b\n"
	    "end\n", 0, "duplicate key 'remote'" },
	{ "duplicate orcpt", GOOD_HEAD GOOD_RCPT "orcpt a\norcpt b\nend\n", 0,
	    "duplicate key 'orcpt'" },
	{ "duplicate notify", GOOD_HEAD GOOD_RCPT "notify never\n"
	    "notify delay\nend\n", 0, "duplicate key 'notify'" },
	{ "duplicate warned", GOOD_HEAD GOOD_RCPT "warned 1\nwarned 1\n"
	    "end\n", 0, "duplicate key 'warned'" },
	{ "notify empty", GOOD_HEAD GOOD_RCPT "notify\nend\n", 0,
	    "notify: unknown word" },
	{ "notify unknown word", GOOD_HEAD GOOD_RCPT "notify always\nend\n",
	    0, "notify: unknown word" },
	{ "notify upper case", GOOD_HEAD GOOD_RCPT "notify NEVER\nend\n", 0,
	    "notify: unknown word" },
	{ "notify empty item", GOOD_HEAD GOOD_RCPT "notify success,,delay\n"
	    "end\n", 0, "notify: unknown word" },
	{ "notify trailing comma", GOOD_HEAD GOOD_RCPT "notify success,\n"
	    "end\n", 0, "notify: unknown word" },
	{ "notify leading comma", GOOD_HEAD GOOD_RCPT "notify ,success\n"
	    "end\n", 0, "notify: unknown word" },
	{ "notify with a space", GOOD_HEAD GOOD_RCPT "notify success, delay\n"
	    "end\n", 0, "notify: unknown word" },
	{ "notify a word twice", GOOD_HEAD GOOD_RCPT "notify delay,delay\n"
	    "end\n", 0, "notify: a word twice" },
	{ "notify never with others", GOOD_HEAD GOOD_RCPT
	    "notify failure,never\nend\n", 0,
	    "notify: never with other words" },
	{ "warned 2", GOOD_HEAD GOOD_RCPT "warned 2\nend\n", 0,
	    "warned must be 0 or 1" },
	{ "warned empty", GOOD_HEAD GOOD_RCPT "warned\nend\n", 0,
	    "warned must be 0 or 1" },
	{ "notified yes", GOOD_HEAD GOOD_RCPT "notified yes\nend\n", 0,
	    "notified must be 0 or 1" },
};

static void
test_parse_errors(void **state)
{
	struct envelope e;
	char err[200];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(error_rows) / sizeof(error_rows[0]); i++) {
		len = error_rows[i].len ? error_rows[i].len :
					  strlen(error_rows[i].text);
		memset(err, 0, sizeof(err));
		if (envelope_parse(&e, error_rows[i].text, len, err,
			sizeof(err)) != -1)
			fail_msg("accepted: %s", error_rows[i].what);
		if (strstr(err, error_rows[i].want) == NULL)
			fail_msg("%s: reason '%s', want '%s'",
			    error_rows[i].what, err, error_rows[i].want);
		/* a refused file leaves an empty envelope behind */
		assert_null(e.sender);
		assert_null(e.rcpts);
		assert_int_equal(e.nrcpts, 0);
	}
}

/* the control row: the building blocks above make a good file */
static void
test_parse_good_blocks(void **state)
{
	static const char *good[] = {
		GOOD_FILE,
		/* header keys in any order, optional ones present */
		"version 1\nsize 1\nsmtputf8 1\nbody 8bitmime\n"
		"protocol SMTP\nclient-name n\nclient-addr c\nhelo h\n"
		"sender a@b\nauth-user u\nuid 1000\narrival 1\n"
		"id 0123456789ABCD\n"
		"rcpt b@c\ntries 0\nerror e\nnext-try 0\nstate failed\n"
		"end\n",
		/* the DSN keys in any order among the others */
		"version 1\nret hdrs\nid 0123456789ABCD\narrival 1\n"
		"sender a@b\nenvid E\nhelo h\nclient-addr c\n"
		"client-name n\nprotocol SMTP\nbody 7bit\nsmtputf8 0\n"
		"size 1\nrcpt b@c\nnotified 1\nnotify delay,success\n"
		"state failed\nwarned 0\nremote r\nnext-try 0\n"
		"status 5.0.0\ntries 0\norcpt o\nend\n",
	};
	/* "sender " with a space is the null sender too */
	static const char with_space[] = "version 1\nid 0123456789ABCD\n"
	    "arrival 1\nsender \nhelo h\nclient-addr c\nclient-name n\n"
	    "protocol SMTP\nbody 7bit\nsmtputf8 0\nsize 1\n" GOOD_RCPT
	    "end\n";
	struct envelope e;
	char err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (envelope_parse(&e, good[i], strlen(good[i]), err,
			sizeof(err)) != 0)
			fail_msg("row %zu refused: %s", i, err);
		assert_int_equal(e.nrcpts, 1);
		assert_string_equal(e.id, "0123456789ABCD");
		envelope_free(&e);
	}
	assert_int_equal(envelope_parse(&e, with_space, strlen(with_space),
			     err, sizeof(err)), 0);
	assert_string_equal(e.sender, "");
	assert_null(e.auth_user);
	/* no uid line: not from the local drop */
	assert_true(e.uid == -1);
	envelope_free(&e);
}

/* the local drop's uid: kept through a round trip, absent when -1 */
static void
test_uid(void **state)
{
	struct envelope e;
	struct buf b;

	(void)state;
	envelope_init(&e);
	envelope_set(&e.sender, "a@b");
	envelope_set(&e.helo, "localhost");
	envelope_set(&e.client_addr, "local");
	envelope_set(&e.client_name, "localhost");
	envelope_set(&e.protocol, "local");
	memcpy(e.id, "0123456789ABCD", QID_SIZE);
	envelope_add_rcpt(&e, "b@c");
	buf_init(&b);
	envelope_format(&e, &b);
	assert_null(strstr(b.data, "\nuid "));
	buf_free(&b);
	e.uid = 0;
	round_trip(&e);
	e.uid = 4294967294;
	round_trip(&e);
	buf_init(&b);
	envelope_format(&e, &b);
	assert_non_null(strstr(b.data, "\nuid 4294967294\n"));
	buf_free(&b);
	envelope_free(&e);
}

/*
 * A file written before the DSN keys existed reads with all of them unset,
 * and one with them in any order gets each value where it belongs.
 */
static void
test_parse_dsn_keys(void **state)
{
	static const char any_order[] = "version 1\nret hdrs\n"
	    "id 0123456789ABCD\narrival 1\nsender a@b\nenvid E+2B\n"
	    "helo h\nclient-addr c\nclient-name n\nprotocol SMTP\n"
	    "body 7bit\nsmtputf8 0\nsize 1\nrcpt b@c\nnotified 1\n"
	    "notify delay,success\nstate failed\nwarned 0\nremote r[1]\n"
	    "next-try 0\nstatus 5.0.0\ntries 0\norcpt rfc822;o\n"
	    GOOD_RCPT "warned 1\nend\n";
	struct envelope e;
	char err[200];

	(void)state;
	assert_int_equal(envelope_parse(&e, GOOD_FILE, strlen(GOOD_FILE), err,
			     sizeof(err)), 0);
	assert_null(e.envid);
	assert_int_equal(e.ret, DSN_RET_UNSET);
	assert_null(e.rcpts[0].status);
	assert_null(e.rcpts[0].remote);
	assert_null(e.rcpts[0].orcpt);
	assert_int_equal(e.rcpts[0].notify, 0);
	assert_int_equal(e.rcpts[0].warned, 0);
	assert_int_equal(e.rcpts[0].notified, 0);
	envelope_free(&e);

	if (envelope_parse(&e, any_order, strlen(any_order), err,
		sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(e.envid, "E+2B");
	assert_int_equal(e.ret, DSN_RET_HDRS);
	assert_int_equal(e.nrcpts, 2);
	assert_int_equal(e.rcpts[0].state, RCPT_FAILED);
	assert_string_equal(e.rcpts[0].status, "5.0.0");
	assert_string_equal(e.rcpts[0].remote, "r[1]");
	assert_string_equal(e.rcpts[0].orcpt, "rfc822;o");
	assert_int_equal(e.rcpts[0].notify,
	    DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS);
	assert_int_equal(e.rcpts[0].warned, 0);
	assert_int_equal(e.rcpts[0].notified, 1);
	/* the second block's keys stay in the second block */
	assert_null(e.rcpts[1].orcpt);
	assert_int_equal(e.rcpts[1].notify, 0);
	assert_int_equal(e.rcpts[1].warned, 1);
	assert_int_equal(e.rcpts[1].notified, 0);
	envelope_free(&e);
}

/* a file over ENVELOPE_FILE_MAX is refused before it is read */
static void
test_parse_too_large(void **state)
{
	size_t len = (size_t)ENVELOPE_FILE_MAX + 1;
	char *big = calloc(1, len);
	struct envelope e;
	char err[200];

	(void)state;
	assert_non_null(big);
	memcpy(big, GOOD_FILE, strlen(GOOD_FILE));
	assert_int_equal(envelope_parse(&e, big, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too large"));
	free(big);
}

/* a tiny or zero err buffer is never overrun */
static void
test_parse_small_err(void **state)
{
	struct envelope e;
	char err[4] = "xyz";

	(void)state;
	assert_int_equal(envelope_parse(&e, "nope\n", 5, err, 0), -1);
	assert_string_equal(err, "xyz");
	assert_int_equal(envelope_parse(&e, "nope\n", 5, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "lin");
}

/*
 * Truncation at every byte offset of a valid file must be refused (a
 * truncated file is corrupt, never a smaller message), and never crash.
 * The copy is exactly the prefix, so ASan sees any read past it.
 */
static void
truncation_of(struct envelope *e)
{
	struct envelope back;
	struct buf b;
	char err[200], *copy;
	size_t cut;

	buf_init(&b);
	envelope_format(e, &b);
	for (cut = 0; cut < b.len; cut++) {
		copy = malloc(cut ? cut : 1);
		memcpy(copy, b.data, cut);
		if (envelope_parse(&back, copy, cut, err, sizeof(err)) == 0)
			fail_msg("prefix of %zu bytes accepted", cut);
		free(copy);
	}
	copy = malloc(b.len);
	memcpy(copy, b.data, b.len);
	assert_int_equal(envelope_parse(&back, copy, b.len, err, sizeof(err)),
	    0);
	env_equal(e, &back);
	envelope_free(&back);
	free(copy);
	buf_free(&b);
}

static void
test_truncation(void **state)
{
	struct envelope e;

	(void)state;
	build(&e, &round_trips[6]);
	truncation_of(&e);
	envelope_free(&e);
	build_dsn(&e, &dsn_trips[0]);
	truncation_of(&e);
	envelope_free(&e);
}

/*
 * Every single-byte corruption (to LF, NUL, space, x, 0xff, 0, comma, 1)
 * is refused or parses to an envelope that formats again the same way.
 */
static void
corruption_of(const struct envelope *e)
{
	static const char subst[] = { '\n', '\0', ' ', 'x', '\xff', '0',
		',', '1' };
	struct envelope back, again;
	struct buf b, f1, f2;
	char err[200];
	size_t pos, s;

	buf_init(&b);
	envelope_format(e, &b);
	for (pos = 0; pos < b.len; pos++) {
		for (s = 0; s < sizeof(subst); s++) {
			char *copy = malloc(b.len);

			memcpy(copy, b.data, b.len);
			copy[pos] = subst[s];
			if (envelope_parse(&back, copy, b.len, err,
				sizeof(err)) == 0) {
				buf_init(&f1);
				buf_init(&f2);
				envelope_format(&back, &f1);
				assert_int_equal(envelope_parse(&again,
				    f1.data, f1.len, err, sizeof(err)), 0);
				envelope_format(&again, &f2);
				assert_string_equal(f1.data, f2.data);
				envelope_free(&again);
				envelope_free(&back);
				buf_free(&f1);
				buf_free(&f2);
			}
			free(copy);
		}
	}
	buf_free(&b);
}

static void
test_corruption(void **state)
{
	struct envelope e;

	(void)state;
	build(&e, &round_trips[3]);
	corruption_of(&e);
	envelope_free(&e);
	build_dsn(&e, &dsn_trips[0]);
	corruption_of(&e);
	envelope_free(&e);
}

static void
test_add_rcpt(void **state)
{
	static const struct {
		const char *addr;
		int want;
		const char *what;
	} rows[] = {
		{ "bob@example.net", 1, "first" },
		{ "bob@example.net", 0, "same again" },
		{ "BOB@Example.NET", 0, "differs only in ASCII case" },
		{ "bób@example.net", 1, "non-ASCII is not case folded" },
		{ "BÓB@example.net", 1, "so this is another one" },
		{ "\"bob \"@example.net", 1, "quoted, with a space" },
		{ "alice@example.net", 1, "another" },
	};
	struct envelope e;
	size_t i, added = 0;

	(void)state;
	envelope_init(&e);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("add_rcpt: %s\n", rows[i].what);
		assert_int_equal(envelope_add_rcpt(&e, rows[i].addr),
		    rows[i].want);
		added += (size_t)rows[i].want;
		assert_int_equal(e.nrcpts, added);
	}
	assert_string_equal(e.rcpts[0].addr, "bob@example.net");
	assert_int_equal(e.rcpts[0].state, RCPT_PENDING);
	assert_int_equal(e.rcpts[0].tries, 0);
	assert_null(e.rcpts[0].last_error);
	envelope_free(&e);
	assert_int_equal(e.nrcpts, 0);
	assert_null(e.rcpts);
}

static void
test_done(void **state)
{
	static const struct {
		const char *what;
		enum rcpt_state s[3];
		size_t n;
		int want;
	} rows[] = {
		{ "no recipients", { 0 }, 0, 1 },
		{ "one pending", { RCPT_PENDING }, 1, 0 },
		{ "one deferred", { RCPT_DEFERRED }, 1, 0 },
		{ "delivered and failed", { RCPT_DELIVERED, RCPT_FAILED }, 2,
		    1 },
		{ "one still deferred",
		    { RCPT_DELIVERED, RCPT_DEFERRED, RCPT_FAILED }, 3, 0 },
	};
	struct envelope e;
	char addr[16];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		envelope_init(&e);
		for (j = 0; j < rows[i].n; j++) {
			snprintf(addr, sizeof(addr), "r%zu@x", j);
			envelope_add_rcpt(&e, addr);
			e.rcpts[j].state = rows[i].s[j];
		}
		if (envelope_done(&e) != rows[i].want)
			fail_msg("envelope_done: %s", rows[i].what);
		envelope_free(&e);
	}
}

static void
test_set_and_state_name(void **state)
{
	char *f = NULL;

	(void)state;
	envelope_set(&f, "one");
	assert_string_equal(f, "one");
	envelope_set(&f, f); /* from itself: copied before the free */
	assert_string_equal(f, "one");
	envelope_set(&f, NULL);
	assert_null(f);
	assert_string_equal(envelope_state_name(RCPT_PENDING), "pending");
	assert_string_equal(envelope_state_name(RCPT_DEFERRED), "deferred");
	assert_string_equal(envelope_state_name(RCPT_DELIVERED), "delivered");
	assert_string_equal(envelope_state_name(RCPT_FAILED), "failed");
	assert_string_equal(envelope_state_name((enum rcpt_state)9), "?");
}


/* a held message says so in one line, read back as held; a message not
 * held has no such line, so older readers still read it */
static void
test_hold_round_trip(void **state)
{
	struct envelope e, back;
	struct buf b;
	char err[200];

	(void)state;
	assert_int_equal(envelope_parse(&e, GOOD_FILE, sizeof(GOOD_FILE) - 1,
	    err, sizeof(err)), 0);
	assert_int_equal(e.hold, 0);
	buf_init(&b);
	envelope_format(&e, &b);
	assert_null(strstr(b.data, "hold"));
	e.hold = 1;
	buf_reset(&b);
	envelope_format(&e, &b);
	assert_non_null(strstr(b.data, "\nsize 1\nhold 1\nrcpt "));
	assert_int_equal(envelope_parse(&back, b.data, b.len, err,
	    sizeof(err)), 0);
	assert_int_equal(back.hold, 1);
	envelope_free(&back);
	envelope_free(&e);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_table),
		cmocka_unit_test(test_uid),
		cmocka_unit_test(test_round_trip_many_rcpts),
		cmocka_unit_test(test_exact_text),
		cmocka_unit_test(test_exact_text_dsn),
		cmocka_unit_test(test_hold_round_trip),
		cmocka_unit_test(test_format_notify_odd_bits),
		cmocka_unit_test(test_parse_dsn_keys),
		cmocka_unit_test(test_format_sanitises),
		cmocka_unit_test(test_format_negative_times),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_good_blocks),
		cmocka_unit_test(test_parse_too_large),
		cmocka_unit_test(test_parse_small_err),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_corruption),
		cmocka_unit_test(test_add_rcpt),
		cmocka_unit_test(test_done),
		cmocka_unit_test(test_set_and_state_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_smtp_data.c - tables for src/smtp_data.c: the end-of-data marker,
 * dot-unstuffing, SMTP smuggling variants (bare CR / bare LF around the
 * dot), line-length and content flags, Received: counting, pipelined
 * bytes after the end, BDAT accounting, and the pace (minimum rate) of a
 * transfer.  RFC 5321 4.1.1.4, 4.5.2, 4.5.3.1.6; RFC 3030.
 *
 * Every DATA row is checked three ways, which must agree exactly: fed
 * whole, fed byte by byte, and fed in two pieces split at every offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_data.h"
#include "unit_table.h"

#define ALL SIZE_MAX

enum {
	LF_ = SMTP_DATA_BARE_LF,
	CR_ = SMTP_DATA_BARE_CR,
	LONG = SMTP_DATA_LONG_LINE,
	BIT8 = SMTP_DATA_8BIT,
	NUL = SMTP_DATA_NUL
};

struct data_case {
	const char *what;
	const char *in;
	size_t inlen;
	size_t maxline; /* 0: the default */
	int done;
	size_t consumed; /* ALL: the whole input */
	const char *out;
	size_t outlen;
	unsigned flags;
	size_t received;
};

static const struct data_case data_cases[] = {
    /* framing and unstuffing */
    {"simple message", S("Subject: hi\r\n\r\nbody\r\n.\r\n"), 0, 1, ALL,
     S("Subject: hi\r\n\r\nbody\r\n"), 0, 0},
    {"empty message: first line is the end", S(".\r\n"), 0, 1, ALL, S(""), 0,
     0},
    {"one empty line", S("\r\n.\r\n"), 0, 1, ALL, S("\r\n"), 0, 0},
    {"stuffed dot at start", S("..x\r\n.\r\n"), 0, 1, ALL, S(".x\r\n"), 0, 0},
    {"stuffed dot in the middle", S("a\r\n..b\r\n.\r\n"), 0, 1, ALL,
     S("a\r\n.b\r\n"), 0, 0},
    {"single leading dot loses it", S("a\r\n.b\r\n.\r\n"), 0, 1, ALL,
     S("a\r\nb\r\n"), 0, 0},
    {"line of two dots is not the end", S("a\r\n..\r\n.\r\n"), 0, 1, ALL,
     S("a\r\n.\r\n"), 0, 0},
    {"three dots", S("...\r\n.\r\n"), 0, 1, ALL, S("..\r\n"), 0, 0},
    {"dot inside a line is kept", S("a.b\r\nc .\r\n.\r\n"), 0, 1, ALL,
     S("a.b\r\nc .\r\n"), 0, 0},
    {"pipelined command left unconsumed", S("a\r\n.\r\nQUIT\r\n"), 0, 1, 6,
     S("a\r\n"), 0, 0},
    {"second message left unconsumed", S("a\r\n.\r\nb\r\n.\r\n"), 0, 1, 6,
     S("a\r\n"), 0, 0},
    {"no end marker yet", S("a\r\nb\r\n"), 0, 0, ALL, S("a\r\nb\r\n"), 0, 0},
    {"held dot at end of input", S("a\r\n."), 0, 0, ALL, S("a\r\n"), 0, 0},
    {"held dot CR at end of input", S("a\r\n.\r"), 0, 0, ALL, S("a\r\n"), 0, 0},
    {"CR at end of input", S("a\r"), 0, 0, ALL, S("a\r"), 0, 0},
    {"end after CR CR LF", S("a\r\r\n.\r\n"), 0, 1, ALL, S("a\r\r\n"), CR_, 0},
    /* smuggling: only CR LF . CR LF ends; no dot after bare LF/CR */
    {"LF . LF does not end", S("a\n.\nb\r\n.\r\n"), 0, 1, ALL, S("a\n.\nb\r\n"),
     LF_, 0},
    {"CR . CR does not end", S("a\r.\rb\r\n.\r\n"), 0, 1, ALL, S("a\r.\rb\r\n"),
     CR_, 0},
    {"LF . CRLF does not end", S("a\n.\r\nb\r\n.\r\n"), 0, 1, ALL,
     S("a\n.\r\nb\r\n"), LF_, 0},
    {"CR . CRLF does not end", S("a\r.\r\nb\r\n.\r\n"), 0, 1, ALL,
     S("a\r.\r\nb\r\n"), CR_, 0},
    {"CRLF . LF does not end, dot unstuffed", S("a\r\n.\nb\r\n.\r\n"), 0, 1,
     ALL, S("a\r\n\nb\r\n"), LF_, 0},
    {"CRLF . CR does not end, dot unstuffed", S("a\r\n.\rb\r\n.\r\n"), 0, 1,
     ALL, S("a\r\n\rb\r\n"), CR_, 0},
    {"CRLF . CR CR LF does not end", S("a\r\n.\r\r\n.\r\n"), 0, 1, ALL,
     S("a\r\n\r\r\n"), CR_, 0},
    {"LF . CR does not end", S("a\n.\rb\r\n.\r\n"), 0, 1, ALL, S("a\n.\rb\r\n"),
     LF_ | CR_, 0},
    {"LF LF . LF LF never ends", S("a\n\n.\n\n"), 0, 0, ALL, S("a\n\n.\n\n"),
     LF_, 0},
    {"LF . LF alone never ends", S("a\n.\n"), 0, 0, ALL, S("a\n.\n"), LF_, 0},
    {"bare LF then . at start", S("\n.\r\n"), 0, 0, ALL, S("\n.\r\n"), LF_, 0},
    {"dot after bare LF is kept", S("a\n..b\r\n.\r\n"), 0, 1, ALL,
     S("a\n..b\r\n"), LF_, 0},
    {"LF CR . CR LF is not the end", S("a\n\r.\r\nb\r\n.\r\n"), 0, 1, ALL,
     S("a\n\r.\r\nb\r\n"), LF_ | CR_, 0},
    /* content flags */
    {"8-bit octet", S("caf\xc3\xa9\r\n.\r\n"), 0, 1, ALL, S("caf\xc3\xa9\r\n"),
     BIT8, 0},
    {"NUL octet", S("a\0b\r\n.\r\n"), 0, 1, ALL, S("a\0b\r\n"), NUL, 0},
    {"all flags", S("\x80\0\n\r.\r\n"), 0, 0, ALL, S("\x80\0\n\r.\r\n"),
     BIT8 | NUL | LF_ | CR_, 0},
    /* line length: octets with the line ending, any LF ends a line */
    {"line of exactly maxline", S("12345678\r\n.\r\n"), 10, 1, ALL,
     S("12345678\r\n"), 0, 0},
    {"line of maxline + 1", S("123456789\r\n.\r\n"), 10, 1, ALL,
     S("123456789\r\n"), LONG, 0},
    {"long line is still consumed whole",
     S("12345678901234567890\r\nok\r\n.\r\n"), 10, 1, ALL,
     S("12345678901234567890\r\nok\r\n"), LONG, 0},
    {"bare LF ends a line for the count", S("12345\n12345\r\n.\r\n"), 10, 1,
     ALL, S("12345\n12345\r\n"), LF_, 0},
    {"bare CR does not end a line", S("12345\r12345\r\n.\r\n"), 10, 1, ALL,
     S("12345\r12345\r\n"), CR_ | LONG, 0},
    {"unstuffed line is counted without its dot", S("..2345678\r\n.\r\n"), 10,
     1, ALL, S(".2345678\r\n"), 0, 0},
    {"unfinished line counts too", S("12345678901"), 10, 0, ALL,
     S("12345678901"), LONG, 0},
    /* Received: headers at the top */
    {"Received headers counted",
     S("Received: a\r\nreceived: b\r\nRECEIVED:c\r\nX-Received: d\r\n"
       "Subject: x\r\n\r\nReceived: in body\r\n.\r\n"),
     0, 1, ALL,
     S("Received: a\r\nreceived: b\r\nRECEIVED:c\r\nX-Received: d\r\n"
       "Subject: x\r\n\r\nReceived: in body\r\n"),
     0, 3},
    {"Received without colon", S("Received a\r\nReceived\r\n\r\n.\r\n"), 0, 1,
     ALL, S("Received a\r\nReceived\r\n\r\n"), 0, 0},
    {"folded Received counted once",
     S("Received: a\r\n Received: b\r\n\r\n.\r\n"), 0, 1, ALL,
     S("Received: a\r\n Received: b\r\n\r\n"), 0, 1},
    {"bare LF empty line ends the header",
     S("Subject: x\n\nReceived: y\r\n.\r\n"), 0, 1, ALL,
     S("Subject: x\n\nReceived: y\r\n"), LF_, 0},
    {"unstuffed line is a header line", S(".Received: x\r\n.\r\n"), 0, 1, ALL,
     S("Received: x\r\n"), 0, 1},
    {"Received after a bare CR is mid-line", S("X\rReceived: y\r\n.\r\n"), 0, 1,
     ALL, S("X\rReceived: y\r\n"), CR_, 0},
};

struct result {
	struct buf out;
	size_t consumed;
	int done;
	struct smtp_data d;
};

/*
 * run - feed c->in in pieces: cuts[] are the offsets where a new call
 * starts (ncuts of them); stop at done as a caller does.
 */
static void
run(const struct data_case *c, const size_t *cuts, size_t ncuts,
    struct result *r)
{
	size_t start = 0, end, k = 0, n;

	buf_init(&r->out);
	r->consumed = 0;
	r->done = 0;
	smtp_data_init(&r->d, c->maxline);
	while (start < c->inlen && !r->done) {
		end = k < ncuts ? cuts[k++] : c->inlen;
		n = smtp_data_feed(&r->d, c->in + start, end - start, &r->out,
				   &r->done);
		assert_true(n <= end - start);
		r->consumed += n;
		if (n < end - start && !r->done)
			fail_msg("stopped early without done");
		start = end;
	}
}

static void
check_result(const struct data_case *c, const struct result *r)
{
	size_t want = c->consumed == ALL ? c->inlen : c->consumed;

	CHECK(c->what, r->done == c->done);
	CHECK(c->what, r->consumed == want);
	CHECK(c->what, r->out.len == c->outlen);
	CHECK(c->what, memcmp(r->out.data, c->out, c->outlen) == 0);
	CHECK(c->what, r->d.flags == c->flags);
	CHECK(c->what, r->d.headers_received == c->received);
	CHECK(c->what, r->d.octets == c->outlen);
}

static void
check_same(const char *what, const struct result *a, const struct result *b)
{
	CHECK(what, a->done == b->done);
	CHECK(what, a->consumed == b->consumed);
	CHECK(what, a->out.len == b->out.len);
	CHECK(what, memcmp(a->out.data, b->out.data, a->out.len) == 0);
	CHECK(what, a->d.flags == b->d.flags);
	CHECK(what, a->d.octets == b->d.octets);
	CHECK(what, a->d.linelen == b->d.linelen);
	CHECK(what, a->d.headers_received == b->d.headers_received);
	CHECK(what, a->d.header_end == b->d.header_end);
	CHECK(what, a->d.state == b->d.state);
}

static void
test_data_whole(void **state)
{
	size_t i;
	struct result r;

	(void)state;
	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		run(&data_cases[i], NULL, 0, &r);
		check_result(&data_cases[i], &r);
		buf_free(&r.out);
	}
}

static void
test_data_splits(void **state)
{
	size_t i, k, cuts[256];
	struct result whole, r;

	(void)state;
	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *c = &data_cases[i];

		assert_true(c->inlen < sizeof(cuts) / sizeof(cuts[0]));
		run(c, NULL, 0, &whole);
		/* byte by byte */
		for (k = 0; k < c->inlen; k++)
			cuts[k] = k + 1;
		run(c, cuts, c->inlen, &r);
		check_same(c->what, &whole, &r);
		buf_free(&r.out);
		/* two pieces, cut at every offset */
		for (k = 0; k <= c->inlen; k++) {
			cuts[0] = k;
			run(c, cuts, 1, &r);
			check_same(c->what, &whole, &r);
			buf_free(&r.out);
		}
		buf_free(&whole.out);
	}
}

/* after the end, a feed consumes nothing and stays done */
static void
test_data_after_end(void **state)
{
	struct smtp_data d;
	struct buf out;
	int done = 0;

	(void)state;
	buf_init(&out);
	smtp_data_init(&d, 0);
	assert_int_equal(d.maxline, SMTP_DATA_LINE_MAX);
	assert_int_equal(smtp_data_feed(&d, "x\r\n.\r\nMAIL", 10, &out, &done),
			 6);
	assert_int_equal(done, 1);
	assert_int_equal(smtp_data_feed(&d, "MAIL", 4, &out, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(smtp_data_feed(&d, "", 0, &out, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(out.len, 3);
	buf_free(&out);
}

/* an empty feed before the end changes nothing */
static void
test_data_empty_feed(void **state)
{
	struct smtp_data d;
	struct buf out;
	int done = 1;

	(void)state;
	buf_init(&out);
	smtp_data_init(&d, 0);
	assert_int_equal(smtp_data_feed(&d, "", 0, &out, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* the default limit: 998 octets of text and CR LF */
static void
test_data_default_limit(void **state)
{
	static char line[1001 + 5];
	struct smtp_data d;
	struct buf out;
	int done;

	(void)state;
	buf_init(&out);
	memset(line, 'x', 998);
	memcpy(line + 998, "\r\n.\r\n", 5);
	smtp_data_init(&d, 0);
	smtp_data_feed(&d, line, 998 + 5, &out, &done);
	assert_int_equal(done, 1);
	assert_int_equal(d.flags & SMTP_DATA_LONG_LINE, 0);
	memset(line, 'x', 999);
	memcpy(line + 999, "\r\n.\r\n", 5);
	smtp_data_init(&d, 0);
	buf_reset(&out);
	smtp_data_feed(&d, line, 999 + 5, &out, &done);
	assert_int_equal(done, 1);
	assert_int_not_equal(d.flags & SMTP_DATA_LONG_LINE, 0);
	buf_free(&out);
}

/*
 * the content of every DATA row, given to smtp_data_chunk whole and byte
 * by byte, must give the same accounting as the DATA path did
 */
static void
test_chunk_matches_data(void **state)
{
	size_t i, k;
	struct result r;
	struct smtp_data a, b;

	(void)state;
	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *c = &data_cases[i];

		run(c, NULL, 0, &r);
		smtp_data_init(&a, c->maxline);
		smtp_data_chunk(&a, r.out.data, r.out.len);
		smtp_data_init(&b, c->maxline);
		for (k = 0; k < r.out.len; k++)
			smtp_data_chunk(&b, r.out.data + k, 1);
		CHECK(c->what, a.flags == r.d.flags && b.flags == r.d.flags);
		CHECK(c->what, a.octets == r.d.octets && b.octets == a.octets);
		CHECK(c->what,
		      a.linelen == r.d.linelen && b.linelen == a.linelen);
		CHECK(c->what, a.headers_received == r.d.headers_received &&
				   b.headers_received == a.headers_received);
		buf_free(&r.out);
	}
}

struct chunk_case {
	const char *what;
	const char *in;
	size_t inlen;
	size_t maxline;
	unsigned flags;
	size_t received;
};

static const struct chunk_case chunk_cases[] = {
    {"no end marker, no unstuffing", S("a\r\n.\r\n..\r\n"), 0, 0, 0},
    {"Received counted", S("Received: x\r\nSubject: y\r\n\r\n"), 0, 0, 1},
    {"long line", S("123456789\r\n"), 10, LONG, 0},
    {"bare LF", S("a\nb"), 0, LF_, 0},
    {"bare CR", S("a\rb"), 0, CR_, 0},
    {"CR at the very end is not yet bare", S("a\r"), 0, 0, 0},
    {"8-bit and NUL", S("\xff\0"), 0, BIT8 | NUL, 0},
};

static void
test_chunk(void **state)
{
	size_t i;
	struct smtp_data d;

	(void)state;
	for (i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		const struct chunk_case *c = &chunk_cases[i];

		smtp_data_init(&d, c->maxline);
		smtp_data_chunk(&d, c->in, c->inlen);
		CHECK(c->what, d.flags == c->flags);
		CHECK(c->what, d.octets == c->inlen);
		CHECK(c->what, d.headers_received == c->received);
	}
}

/* a CR ending one BDAT chunk is bare when the next does not start with LF */
static void
test_chunk_cr_across_calls(void **state)
{
	struct smtp_data d;

	(void)state;
	smtp_data_init(&d, 0);
	smtp_data_chunk(&d, "a\r", 2);
	smtp_data_chunk(&d, "\nb", 2);
	assert_int_equal(d.flags, 0);
	smtp_data_chunk(&d, "\r", 1);
	smtp_data_chunk(&d, "x", 1);
	assert_int_equal(d.flags, SMTP_DATA_BARE_CR);
	assert_int_equal(d.octets, 6);
}

/* header fields noticed for submission (Message-ID:, Date:) and where the
 * header section ends, fed whole and byte by byte */
static void
test_header_fields(void **state)
{
	static const struct {
		const char *what, *in;
		unsigned flags;        /* HAS_MSGID | HAS_DATE seen */
		uint64_t header_end;
		size_t received;
	} rows[] = {
		{ "both fields, then a body",
		    "Message-ID: <a@b>\r\nDate: x\r\n\r\nbody\r\n.\r\n",
		    SMTP_DATA_HAS_MSGID | SMTP_DATA_HAS_DATE, 28, 0 },
		{ "any case", "message-id: <a@b>\r\nDATE: x\r\n\r\n.\r\n",
		    SMTP_DATA_HAS_MSGID | SMTP_DATA_HAS_DATE, 28, 0 },
		{ "none of them", "Subject: hi\r\n\r\nDate: in the body\r\n"
		    ".\r\n", 0, 13, 0 },
		{ "a name that only starts the same", "Dates: x\r\n"
		    "Message-IDs: y\r\n\r\n.\r\n", 0, 26, 0 },
		{ "a continuation line is not a field", "Subject: a\r\n"
		    " Date: b\r\n\r\n.\r\n", 0, 22, 0 },
		{ "no body separator", "Subject: a\r\n.\r\n", 0, UINT64_MAX,
		    0 },
		{ "Received counted with the others", "Received: a\r\n"
		    "Date: b\r\nReceived: c\r\n\r\n.\r\n", SMTP_DATA_HAS_DATE,
		    35, 2 },
		{ "empty message", ".\r\n", 0, UINT64_MAX, 0 },
		{ "empty header section", "\r\nbody\r\n.\r\n", 0, 0, 0 },
	};
	struct smtp_data d;
	struct buf out;
	size_t i, j, len;
	int done, pass;

	(void)state;
	buf_init(&out);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		len = strlen(rows[i].in);
		for (pass = 0; pass < 2; pass++) {
			smtp_data_init(&d, 1000);
			buf_reset(&out);
			done = 0;
			if (pass == 0)
				smtp_data_feed(&d, rows[i].in, len, &out, &done);
			for (j = 0; pass == 1 && j < len && !done; j++)
				smtp_data_feed(&d, rows[i].in + j, 1, &out,
				    &done);
			CHECK(rows[i].what, done);
			CHECK(rows[i].what, (d.flags & (SMTP_DATA_HAS_MSGID |
			    SMTP_DATA_HAS_DATE)) == rows[i].flags);
			CHECK(rows[i].what, d.header_end == rows[i].header_end);
			CHECK(rows[i].what, d.headers_received ==
			    rows[i].received);
		}
	}
	buf_free(&out);
}

/* the pace of a transfer: a credit of time, octets buy more of it */
struct pace_case {
	const char *what;
	uint64_t rate;
	int64_t window, start;
	struct {
		int64_t t;
		uint64_t n;
	} ev[8];
	size_t nev;
	int64_t deadline;
	uint64_t octets;
};

static const struct pace_case pace_cases[] = {
	{ "idle: the whole window", 100, 3000, 0, { { 0, 0 } }, 0, 3000, 0 },
	{ "idle from a later start", 100, 3000, 5000, { { 0, 0 } }, 0, 8000,
	    0 },
	{ "at the rate the window stays full", 100, 3000, 0,
	    { { 1000, 100 }, { 2000, 100 } }, 2, 5000, 200 },
	{ "half the rate drains half as fast", 100, 3000, 0,
	    { { 1000, 50 } }, 1, 3500, 50 },
	{ "a burst buys no more than the window", 100, 3000, 0,
	    { { 0, 1000000 }, { 2000, 0 } }, 2, 3000, 1000000 },
	{ "2 octets a second against 100 runs out after the window", 100,
	    3000, 0, { { 500, 1 }, { 1000, 1 }, { 1500, 1 }, { 2000, 1 },
	    { 2500, 1 }, { 3000, 1 } }, 6, 3060, 6 },
	{ "run out is final: later octets buy nothing", 100, 3000, 0,
	    { { 3000, 0 }, { 3500, 1000 } }, 2, 3000, 1000 },
	{ "octets after the deadline come too late", 100, 3000, 0,
	    { { 3200, 1000 } }, 1, 3000, 1000 },
	{ "a long silence ends it where it ran out", 100, 3000, 0,
	    { { 1000, 100 }, { 999999, 5 } }, 2, 4000, 105 },
	{ "one octet a millisecond at 1000 a second keeps it full", 1000,
	    1000, 0, { { 1, 1 }, { 2, 1 }, { 3, 1 } }, 3, 1003, 3 },
	{ "a part of a millisecond is rounded up", 3, 1000, 0,
	    { { 500, 0 } }, 1, 1000, 0 },
	{ "an enormous count does not overflow", 100, 3000, 0,
	    { { 100, UINT64_MAX } }, 1, 3100, UINT64_MAX },
	{ "rate 0 is taken as 1: an octet a second keeps it full", 0, 3000,
	    0, { { 1000, 1 } }, 1, 4000, 1 },
	{ "the largest rate and window", SMTP_PACE_RATE_MAX,
	    SMTP_PACE_WINDOW_MAX, 0, { { 1000, 0 } }, 1,
	    SMTP_PACE_WINDOW_MAX, 0 },
	{ "time going back is ignored", 100, 3000, 1000, { { 500, 0 } }, 1,
	    4000, 0 },
};

static void
test_pace(void **state)
{
	struct smtp_pace p;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(pace_cases) / sizeof(pace_cases[0]); i++) {
		const struct pace_case *c = &pace_cases[i];

		smtp_pace_start(&p, c->rate, c->window, c->start);
		for (j = 0; j < c->nev; j++)
			smtp_pace_octets(&p, c->ev[j].n, c->ev[j].t);
		if (smtp_pace_deadline(&p) != c->deadline)
			print_error("row \"%s\": deadline %lld\n", c->what,
			    (long long)smtp_pace_deadline(&p));
		CHECK(c->what, smtp_pace_deadline(&p) == c->deadline);
		CHECK(c->what, p.octets == c->octets);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_fields),
	    cmocka_unit_test(test_data_whole),
	    cmocka_unit_test(test_data_splits),
	    cmocka_unit_test(test_data_after_end),
	    cmocka_unit_test(test_data_empty_feed),
	    cmocka_unit_test(test_data_default_limit),
	    cmocka_unit_test(test_chunk_matches_data),
	    cmocka_unit_test(test_chunk),
	    cmocka_unit_test(test_chunk_cr_across_calls),
	    cmocka_unit_test(test_pace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

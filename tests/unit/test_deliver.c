/*
 * test_deliver.c - deliver_write_message, the writer every local agent
 * shares: CRLF -> LF with bare CR and bare LF kept, Return-Path: and
 * Delivered-To: prepended and sanitised, mboxrd quoting of ">*From " at
 * line starts, END_LF, and the cases where a line start or a CRLF pair
 * straddles the 64 KiB read boundary.  Each case writes into a file in
 * a fresh temporary directory and compares it octet for octet.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "deliver.h"
#include "util.h"
#include "unit_files.h"

#define HDRS "Return-Path: <s@example.org>\nDelivered-To: u@example.com\n"
#define Q DELIVER_WRITE_FROM_QUOTE
#define E DELIVER_WRITE_END_LF
/* the size of deliver.c's reads (DELIVER_COPY_BUF) */
#define READ_SIZE 65536

struct fixture {
	char dir[64];      /* the temporary directory */
	char content[128]; /* dir/content.msg */
	char out[128];     /* dir/out */
	struct deliver_req req;
	char err[512];
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/tern-test-deliver-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->content, sizeof(f->content), "%s/content.msg", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out", f->dir);
	f->req.qid = "0ABCDEFGHIJKLM";
	f->req.content_fd = -1;
	f->req.return_path = "s@example.org";
	f->req.delivered_to = "u@example.com";
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->content);
	unlink(f->out);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* run - write content with flags into f->out; the result of the call */
static int64_t
run(struct fixture *f, const char *content, size_t len, unsigned flags)
{
	int64_t r;
	int out;

	write_file(f->content, content, len);
	f->req.content_fd = open(f->content, O_RDONLY | O_CLOEXEC);
	assert_true(f->req.content_fd >= 0);
	out = open(f->out, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(out >= 0);
	f->err[0] = '\0';
	r = deliver_write_message(out, &f->req, flags, "out", f->err,
	    sizeof(f->err));
	assert_int_equal(close(out), 0);
	close(f->req.content_fd);
	f->req.content_fd = -1;
	return r;
}

/* assert_out - f->out holds exactly expect, and r said so */
static void
assert_out(const struct fixture *f, int64_t r, const char *expect,
    size_t len)
{
	struct buf b;

	read_file(f->out, &b);
	assert_int_equal(r, (int64_t)b.len);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.data, expect, len);
	buf_free(&b);
}

/* content in, the body expected after the two header lines */
struct text_case {
	const char *what;
	unsigned flags;
	const char *in, *expect;
};

static const struct text_case text_cases[] = {
	/* line ends */
	{ "CRLF becomes LF", 0, "Subject: a\r\n\r\nbody\r\n",
	    "Subject: a\n\nbody\n" },
	{ "a bare LF is kept", 0, "a\nb\r\n", "a\nb\n" },
	{ "a bare CR is kept", 0, "a\rb\r\n", "a\rb\n" },
	{ "CR CR LF keeps the first CR", 0, "a\r\r\nb", "a\r\nb" },
	{ "LF CR is not a line end", 0, "a\n\rb", "a\n\rb" },
	{ "a CR at the very end is kept", 0, "a\r\nb\r", "a\nb\r" },
	{ "an empty content: the headers alone", 0, "", "" },
	{ "an empty content quoted with END_LF: the headers alone", Q | E,
	    "", "" },
	/* mboxrd quoting */
	{ "no quoting without the flag", 0, "From x\r\n", "From x\n" },
	{ "From on the first line of the content", Q, "From x\r\n",
	    ">From x\n" },
	{ "From in the header section", Q, "Subject: a\r\nFrom x\r\n\r\nb",
	    "Subject: a\n>From x\n\nb" },
	{ "From as the first line of the body", Q, "S: a\r\n\r\nFrom x\r\n",
	    "S: a\n\n>From x\n" },
	{ ">From gets a second >", Q, "a\r\n>From x\r\n", "a\n>>From x\n" },
	{ ">>>From gets a fourth >", Q, "a\r\n>>>From y\r\n",
	    "a\n>>>>From y\n" },
	{ "Fromage is not a separator", Q, "Fromage\r\n", "Fromage\n" },
	{ "From at a line end (no space) is not", Q, "a\r\nFrom\r\nb",
	    "a\nFrom\nb" },
	{ ">From without a space is not", Q, ">From\r\n", ">From\n" },
	{ "From at the end of the content is not", Q, "a\r\nFrom",
	    "a\nFrom" },
	{ "From and a space at the very end is", Q, "a\r\nFrom ",
	    "a\n>From " },
	{ "From not at a line start is not", Q, "a From x\r\n",
	    "a From x\n" },
	{ "> From (space first) is not", Q, "> From x\r\n", "> From x\n" },
	{ ">F>From is not", Q, ">F>From x\r\n", ">F>From x\n" },
	{ "FROM is not (case matters)", Q, "FROM x\r\n", "FROM x\n" },
	{ "only >s on a line", Q, ">>>\r\n>\r\n", ">>>\n>\n" },
	{ "a bare CR is not a line start", Q, "a\rFrom x\r\n",
	    "a\rFrom x\n" },
	{ "a bare LF is a line start", Q, "a\nFrom x", "a\n>From x" },
	{ "every line start, each line once", Q,
	    "From a\r\nFrom b\r\n\r\nFrom c\r\n",
	    ">From a\n>From b\n\n>From c\n" },
	/* END_LF */
	{ "END_LF adds a missing LF", E, "a\r\nb", "a\nb\n" },
	{ "END_LF adds none after CRLF", E, "a\r\n", "a\n" },
	{ "END_LF adds none after a bare LF", E, "a\n", "a\n" },
	{ "END_LF after a final bare CR", E, "a\r", "a\r\n" },
	{ "END_LF after an unquoted From", Q | E, "a\r\nFrom", "a\nFrom\n" },
	{ "no END_LF: none added", 0, "a\r\nb", "a\nb" },
};

static void
test_text(void **state)
{
	struct fixture *f = *state;
	struct buf expect;
	size_t i;
	int64_t r;

	for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case *c = &text_cases[i];

		print_message("text: %s\n", c->what);
		buf_init(&expect);
		buf_puts(&expect, HDRS);
		buf_puts(&expect, c->expect);
		r = run(f, c->in, strlen(c->in), c->flags);
		assert_out(f, r, expect.data, expect.len);
		buf_free(&expect);
	}
}

/* the two header lines */
struct hdr_case {
	const char *what;
	const char *return_path, *delivered_to;
	const char *headers;
};

static const struct hdr_case hdr_cases[] = {
	{ "plain sender and recipient", "s@example.org", "u@example.com",
	    HDRS },
	{ "the null sender is <>", "", "u@example.com",
	    "Return-Path: <>\nDelivered-To: u@example.com\n" },
	{ "no sender at all is <>", NULL, "u@example.com",
	    "Return-Path: <>\nDelivered-To: u@example.com\n" },
	{ "CR LF in the sender cannot add a header", "a\r\nX-Evil: 1@e.org",
	    "u@example.com",
	    "Return-Path: <a??X-Evil: 1@e.org>\n"
	    "Delivered-To: u@example.com\n" },
	{ "control bytes and DEL in the recipient become ?",
	    "s@example.org", "u\n\x01\x7f@example.com",
	    "Return-Path: <s@example.org>\nDelivered-To: u???@example.com\n" },
	{ "a From-looking sender is not quoted (it is in a header)",
	    "From x", "u@example.com",
	    "Return-Path: <From x>\nDelivered-To: u@example.com\n" },
};

static void
test_headers(void **state)
{
	struct fixture *f = *state;
	struct buf expect;
	size_t i;
	int64_t r;

	for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		const struct hdr_case *c = &hdr_cases[i];

		print_message("headers: %s\n", c->what);
		f->req.return_path = c->return_path;
		f->req.delivered_to = c->delivered_to;
		buf_init(&expect);
		buf_puts(&expect, c->headers);
		buf_puts(&expect, "From x\n");
		r = run(f, "From x\r\n", 8, 0);
		assert_out(f, r, expect.data, expect.len);
		buf_free(&expect);
	}
}

/*
 * Read boundaries: content = 'x' filler, a line end, then a line whose
 * first octet is at content offset READ_SIZE + shift (shift -2: "Fr" in
 * the first read, "om " in the second).  The filler's line end is CRLF
 * (or LF with lf_only), so with shift 1 the CRLF itself straddles the
 * boundary: CR at 65535, LF at 65536.
 */
struct edge_case {
	const char *what;
	int shift;       /* the line starts at READ_SIZE + shift */
	int lf_only;     /* the filler line ends in LF, not CRLF */
	unsigned flags;
	const char *line, *eline; /* the line in the content, as written */
};

static const struct edge_case edge_cases[] = {
	{ "F | rom  split by the boundary", -1, 0, Q, "From a\r\n",
	    ">From a\n" },
	{ "Fr | om  split", -2, 0, Q, "From b\r\n", ">From b\n" },
	{ "Fro | m  split", -3, 0, Q, "From c\r\n", ">From c\n" },
	{ "From | space split", -4, 0, Q, "From d\r\n", ">From d\n" },
	{ "From space | rest split", -5, 0, Q, "From e\r\n", ">From e\n" },
	{ "> | >From split in the >s", -1, 0, Q, ">>From f\r\n",
	    ">>>From f\n" },
	{ ">>Fr | om split after the >s", -4, 0, Q, ">>From g\r\n",
	    ">>>From g\n" },
	{ "From at the boundary exactly", 0, 0, Q, "From h\r\n",
	    ">From h\n" },
	{ "Fromage split stays as it is", -3, 0, Q, "Fromage\r\n",
	    "Fromage\n" },
	{ "From without space split stays", -2, 0, Q, "From\r\nx",
	    "From\nx" },
	{ "CR at 65535, LF at 65536: one LF, then a line start", 1, 0, Q,
	    "From i\r\n", ">From i\n" },
	{ "CR at 65535, LF at 65536, unquoted", 1, 0, 0, "From j\r\n",
	    "From j\n" },
	{ "LF at 65535, From from 65536", 0, 1, Q, "From k\r\n",
	    ">From k\n" },
};

/* edge_build - the content and the expected body of an edge case */
static void
edge_build(const struct edge_case *c, struct buf *in, struct buf *expect)
{
	const char *eol = c->lf_only ? "\n" : "\r\n";
	size_t fill = (size_t)(READ_SIZE + c->shift) - strlen(eol);
	char *x = xmalloc(fill);

	memset(x, 'x', fill);
	buf_append(in, x, fill);
	buf_puts(in, eol);
	buf_puts(in, c->line);
	buf_puts(expect, HDRS);
	buf_append(expect, x, fill);
	buf_puts(expect, "\n");
	buf_puts(expect, c->eline);
	free(x);
}

static void
test_read_boundary(void **state)
{
	struct fixture *f = *state;
	struct buf in, expect;
	size_t i;
	int64_t r;

	for (i = 0; i < sizeof(edge_cases) / sizeof(edge_cases[0]); i++) {
		const struct edge_case *c = &edge_cases[i];

		print_message("boundary: %s\n", c->what);
		buf_init(&in);
		buf_init(&expect);
		edge_build(c, &in, &expect);
		assert_int_equal(in.len - strlen(c->line),
		    (size_t)(READ_SIZE + c->shift));
		r = run(f, in.data, in.len, c->flags);
		assert_out(f, r, expect.data, expect.len);
		buf_free(&in);
		buf_free(&expect);
	}
}

/* a bare CR as the last octet of a read, a non-LF first in the next */
static void
test_bare_cr_at_boundary(void **state)
{
	struct fixture *f = *state;
	struct buf in, expect;
	int64_t r;

	buf_init(&in);
	buf_init(&expect);
	buf_puts(&expect, HDRS);
	while (in.len < READ_SIZE - 1) {
		buf_putc(&in, 'y');
		buf_putc(&expect, 'y');
	}
	buf_puts(&in, "\rFrom z\r\n");
	buf_puts(&expect, "\rFrom z\n");
	r = run(f, in.data, in.len, Q | E);
	assert_out(f, r, expect.data, expect.len);
	buf_free(&in);
	buf_free(&expect);
}

/* many quoted lines: the output grows past the input by one '>' per line,
 * across several reads */
static void
test_many_quoted_lines(void **state)
{
	struct fixture *f = *state;
	struct buf in, expect;
	size_t i;
	int64_t r;

	buf_init(&in);
	buf_init(&expect);
	buf_puts(&expect, HDRS);
	for (i = 0; i < 50000; i++) {
		buf_puts(&in, "From \n>From \r\n");
		buf_puts(&expect, ">From \n>>From \n");
	}
	r = run(f, in.data, in.len, Q);
	assert_out(f, r, expect.data, expect.len);
	buf_free(&in);
	buf_free(&expect);
}

/* a line of many '>' before "From ": held across several reads, then
 * written with one more '>' */
static void
test_long_quote_prefix(void **state)
{
	struct fixture *f = *state;
	struct buf in, expect;
	size_t i;
	int64_t r;

	buf_init(&in);
	buf_init(&expect);
	buf_puts(&in, "a\r\n");
	buf_puts(&expect, HDRS "a\n>");
	for (i = 0; i < 3 * READ_SIZE; i++) {
		buf_putc(&in, '>');
		buf_putc(&expect, '>');
	}
	buf_puts(&in, "From x\r\n>>>\r\n");
	buf_puts(&expect, "From x\n>>>\n");
	r = run(f, in.data, in.len, Q);
	assert_out(f, r, expect.data, expect.len);
	buf_free(&in);
	buf_free(&expect);
}

/* writes that fail part way through a large content */
struct wfail_case {
	const char *what;
	const char *prefix, *pattern; /* content: prefix, pattern repeated */
	size_t repeat;
	const char *suffix;
};

static const struct wfail_case wfail_cases[] = {
	{ "plain lines over five reads", "", "0123456789abcdef\r\n", 18000,
	    "" },
	{ "a held >>>From prefix longer than two write buffers", "a\r\n",
	    ">", 3 * READ_SIZE, "From x\r\n" },
};

/* the failures: -1, the reason, errno, and no endless loop on a buffer
 * that could not be written (the alarm turns a hang into a failure) */
static void
test_write_fails(void **state)
{
	struct fixture *f = *state;
	struct buf in;
	size_t i, k;
	int out;
	int64_t r;

	for (i = 0; i < sizeof(wfail_cases) / sizeof(wfail_cases[0]); i++) {
		const struct wfail_case *c = &wfail_cases[i];

		print_message("write fails: %s\n", c->what);
		buf_init(&in);
		buf_puts(&in, c->prefix);
		for (k = 0; k < c->repeat; k++)
			buf_puts(&in, c->pattern);
		buf_puts(&in, c->suffix);
		write_file(f->content, in.data, in.len);
		f->req.content_fd = open(f->content, O_RDONLY | O_CLOEXEC);
		out = open("/dev/full", O_WRONLY | O_CLOEXEC);
		assert_true(out >= 0);
		alarm(20);
		errno = 0;
		r = deliver_write_message(out, &f->req, Q | E, "the mailbox",
		    f->err, sizeof(f->err));
		assert_int_equal(errno, ENOSPC);
		alarm(0);
		assert_int_equal(r, -1);
		assert_non_null(strstr(f->err, "cannot write the mailbox"));
		assert_non_null(strstr(f->err, strerror(ENOSPC)));
		close(out);
		close(f->req.content_fd);
		buf_free(&in);
	}
}

/* a content that cannot be read: -1 and the queue id in the reason */
static void
test_read_fails(void **state)
{
	struct fixture *f = *state;
	int out;
	int64_t r;

	f->req.content_fd = -1;
	out = open(f->out, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(out >= 0);
	r = deliver_write_message(out, &f->req, 0, "out", f->err,
	    sizeof(f->err));
	assert_int_equal(errno, EBADF);
	assert_int_equal(r, -1);
	assert_non_null(strstr(f->err, "cannot read the queued message"));
	assert_non_null(strstr(f->err, f->req.qid));
	close(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_boundary, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bare_cr_at_boundary,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_quoted_lines, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_long_quote_prefix, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_fails, setup,
		    teardown),
	};

	log_init("test", 0, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

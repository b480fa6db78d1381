/*
 * test_maildir.c - deliver_maildir: the file written (Return-Path,
 * Delivered-To, CRLF -> LF), its deterministic name, idempotent repeats
 * (new/ and, with check_cur, cur/), and failures that must leave no file
 * in tmp/.  Each test works in a fresh temporary directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "deliver.h"
#include "util.h"
#include "unit_files.h"

#define QID "0ABCDEFGHIJKLM"
#define NAME0 QID "." QID "_0.mx.example.org"
#define HDRS "Return-Path: <s@example.org>\nDelivered-To: u@example.com\n"

struct fixture {
	char dir[64];      /* the temporary directory */
	char content[128]; /* dir/content.msg */
	char maildir[128]; /* dir/home/u/Maildir: parents do not exist yet */
	struct deliver_req req;
	char err[512];
};

/* count - entries of maildir/sub, not counting . and .. */
static int
count(const struct fixture *f, const char *sub)
{
	char p[256];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", f->maildir, sub);
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void
md_path(const struct fixture *f, const char *sub, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", f->maildir, sub);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/tern-test-maildir-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->content, sizeof(f->content), "%s/content.msg", f->dir);
	snprintf(f->maildir, sizeof(f->maildir), "%s/home/u/Maildir", f->dir);
	f->req.qid = QID;
	f->req.rcpt_index = 0;
	f->req.content_fd = -1;
	f->req.return_path = "s@example.org";
	f->req.delivered_to = "u@example.com";
	f->req.hostname = "mx.example.org";
	write_file(f->content, "Subject: t\r\n\r\nhello\r\n", 21);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[256];

	/* undo a chmod 0500 so the tree can be removed */
	md_path(f, "new", p, sizeof(p));
	chmod(p, 0700);
	rm_tree(f->dir);
	free(f);
	return 0;
}

/* deliver - deliver_maildir into the fixture's Maildir, the content
 * opened as the delivery child opens it (a content that cannot be opened
 * is given as -1: the agent must fail to read it) */
static enum deliver_result
deliver(struct fixture *f)
{
	struct deliver_outcome out;

	f->req.content_fd = open(f->content, O_RDONLY | O_CLOEXEC);
	deliver_maildir(f->maildir, &f->req, &out);
	if (f->req.content_fd != -1)
		close(f->req.content_fd);
	snprintf(f->err, sizeof(f->err), "%s", out.reason);
	return out.result;
}

/* assert_file - new/name holds exactly expect */
static void
assert_file(const struct fixture *f, const char *sub, const char *name,
    const char *expect, size_t expect_len)
{
	char p[512];
	struct buf b;

	snprintf(p, sizeof(p), "%s/%s/%s", f->maildir, sub, name);
	read_file(p, &b);
	assert_int_equal(b.len, expect_len);
	assert_memory_equal(b.data, expect, expect_len);
	buf_free(&b);
}

/* content conversion: content = prefix + pattern x repeat, and the body
 * expected after the two headers = eprefix + epattern x repeat */
struct conv_case {
	const char *what;
	const char *prefix, *pattern;
	size_t repeat;
	const char *eprefix, *epattern;
};

static const struct conv_case conv_cases[] = {
	{ "CRLF line ends become LF", "Subject: a\r\n\r\nbody\r\n", "", 0,
	    "Subject: a\n\nbody\n", "" },
	{ "a bare LF is kept", "a\nb\r\n", "", 0, "a\nb\n", "" },
	{ "a bare CR is kept", "a\rb\r\n", "", 0, "a\rb\n", "" },
	{ "CR CR LF keeps the first CR", "a\r\r\nb", "", 0, "a\r\nb", "" },
	{ "LF CR is not a line end", "a\n\rb", "", 0, "a\n\rb", "" },
	{ "a CR at the end of the file is kept", "a\r\nb\r", "", 0,
	    "a\nb\r", "" },
	{ "an empty content file gives only the headers", "", "", 0, "",
	    "" },
	{ "CRLF pairs straddle every read-buffer boundary (odd offset)", "a",
	    "\r\n", 300000, "a", "\n" },
	{ "CRs alone across buffer boundaries are kept", "", "\r", 140000,
	    "", "\r" },
	{ "a 1 MB body of long lines", "", "0123456789abcdef\r\n", 60000, "",
	    "0123456789abcdef\n" },
};

static void
build(struct buf *b, const char *prefix, const char *pattern, size_t repeat)
{
	size_t i;

	buf_puts(b, prefix);
	for (i = 0; i < repeat; i++)
		buf_puts(b, pattern);
}

static void
test_conversion(void **state)
{
	struct fixture *f = *state;
	struct buf in, expect;
	size_t i;

	for (i = 0; i < sizeof(conv_cases) / sizeof(conv_cases[0]); i++) {
		const struct conv_case *c = &conv_cases[i];

		print_message("conversion: %s\n", c->what);
		f->req.rcpt_index = i;
		buf_init(&in);
		buf_init(&expect);
		build(&in, c->prefix, c->pattern, c->repeat);
		buf_puts(&expect, HDRS);
		build(&expect, c->eprefix, c->epattern, c->repeat);
		write_file(f->content, in.data, in.len);
		assert_int_equal(deliver(f), DELIVER_OK);
		char name[128];
		snprintf(name, sizeof(name), "%s.%s_%zu.mx.example.org", QID,
		    QID, i);
		assert_file(f, "new", name, expect.data, expect.len);
		buf_free(&in);
		buf_free(&expect);
	}
	assert_int_equal(count(f, "tmp"), 0);
}

/* the name and the two header lines */
struct hdr_case {
	const char *what;
	const char *return_path, *delivered_to, *hostname;
	size_t index;
	const char *name, *headers;
};

static const struct hdr_case hdr_cases[] = {
	{ "plain sender and recipient", "s@example.org", "u@example.com",
	    "mx.example.org", 0, NAME0, HDRS },
	{ "the null sender is <>", "", "u@example.com", "mx.example.org", 0,
	    NAME0, "Return-Path: <>\nDelivered-To: u@example.com\n" },
	{ "CR LF in the sender cannot add a header", "a\r\nX-Evil: 1@e.org",
	    "u@example.com", "mx.example.org", 0, NAME0,
	    "Return-Path: <a??X-Evil: 1@e.org>\n"
	    "Delivered-To: u@example.com\n" },
	{ "control bytes in the recipient become ?", "s@example.org",
	    "u\n\x01@example.com", "mx.example.org", 0, NAME0,
	    "Return-Path: <s@example.org>\nDelivered-To: u??@example.com\n" },
	{ "recipient index is in the name", "s@example.org", "u@example.com",
	    "mx.example.org", 7, QID "." QID "_7.mx.example.org", HDRS },
	{ "'/' and ':' in the host name are \\057 and \\072",
	    "s@example.org", "u@example.com", "a/b:c", 0,
	    QID "." QID "_0.a\\057b\\072c", HDRS },
	{ "an empty host name becomes localhost", "s@example.org",
	    "u@example.com", "", 0, QID "." QID "_0.localhost", HDRS },
};

static void
test_headers_and_name(void **state)
{
	struct fixture *f = *state;
	const char *body = "Subject: t\n\nhello\n";
	char expect[512];
	size_t i;
	int n;

	for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		const struct hdr_case *c = &hdr_cases[i];

		print_message("headers: %s\n", c->what);
		f->req.return_path = c->return_path;
		f->req.delivered_to = c->delivered_to;
		f->req.hostname = c->hostname;
		f->req.rcpt_index = c->index;
		snprintf(f->maildir, sizeof(f->maildir), "%s/md%zu", f->dir,
		    i);
		assert_int_equal(deliver(f), DELIVER_OK);
		assert_int_equal(count(f, "new"), 1);
		n = snprintf(expect, sizeof(expect), "%s%s", c->headers, body);
		assert_file(f, "new", c->name, expect, (size_t)n);
	}
}

/* the Maildir and its parents are made 0700, the message 0600 */
static void
test_modes(void **state)
{
	struct fixture *f = *state;
	static const char *const dirs[] = { "", "/tmp", "/new", "/cur",
		"/.." };
	char p[512];
	struct stat st;
	size_t i;

	assert_int_equal(deliver(f), DELIVER_OK);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->maildir, dirs[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0700);
	}
	snprintf(p, sizeof(p), "%s/new/%s", f->maildir, NAME0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* the same request twice: one file */
static void
test_repeat_is_idempotent(void **state)
{
	struct fixture *f = *state;
	const char *expect = HDRS "Subject: t\n\nhello\n";

	assert_int_equal(deliver(f), DELIVER_OK);
	/* changing the content proves the second call wrote nothing */
	write_file(f->content, "other\r\n", 7);
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(count(f, "new"), 1);
	assert_int_equal(count(f, "tmp"), 0);
	assert_file(f, "new", NAME0, expect, strlen(expect));
}

/* a reader moved the copy to cur/NAME:2,S: check_cur finds it; without
 * check_cur a second copy is written (why the scheduler sets it for
 * messages recovered at start) */
static void
test_check_cur(void **state)
{
	struct fixture *f = *state;
	char from[512], to[512];

	assert_int_equal(deliver(f), DELIVER_OK);
	snprintf(from, sizeof(from), "%s/new/%s", f->maildir, NAME0);
	snprintf(to, sizeof(to), "%s/cur/%s:2,S", f->maildir, NAME0);
	assert_int_equal(rename(from, to), 0);

	f->req.check_cur = 1;
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(count(f, "new"), 0);
	assert_int_equal(count(f, "cur"), 1);

	f->req.check_cur = 0;
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(count(f, "new"), 1);
}

/* a prefix of the name in cur/ is not a copy: NAME0 followed by more
 * name characters belongs to another recipient */
static void
test_check_cur_exact_name(void **state)
{
	struct fixture *f = *state;
	char p[512];

	f->req.check_cur = 1;
	assert_int_equal(deliver(f), DELIVER_OK); /* makes the Maildir */
	snprintf(p, sizeof(p), "%s/new/%s", f->maildir, NAME0);
	assert_int_equal(unlink(p), 0);
	snprintf(p, sizeof(p), "%s/cur/%sx:2,S", f->maildir, NAME0);
	write_file(p, "x", 1);
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(count(f, "new"), 1);
}

/* tmp/NAME left by a crashed attempt is replaced */
static void
test_stale_tmp(void **state)
{
	struct fixture *f = *state;
	const char *expect = HDRS "Subject: t\n\nhello\n";
	char p[512], newp[512];

	assert_int_equal(deliver(f), DELIVER_OK);
	snprintf(newp, sizeof(newp), "%s/new/%s", f->maildir, NAME0);
	assert_int_equal(unlink(newp), 0);
	snprintf(p, sizeof(p), "%s/tmp/%s", f->maildir, NAME0);
	write_file(p, "half a message", 14);
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(count(f, "tmp"), 0);
	assert_file(f, "new", NAME0, expect, strlen(expect));
}

/* failures: a setup step breaks something, the delivery reports TEMP (or
 * PERM), says why, and leaves nothing in tmp/ or new/ */
struct fail_case {
	const char *what;
	void (*breakit)(struct fixture *f);
	enum deliver_result expect;
	const char *err_has;
};

static void
no_content(struct fixture *f)
{
	assert_int_equal(unlink(f->content), 0);
}

static void
content_is_dir(struct fixture *f)
{
	/* open() succeeds, read() fails after tmp/NAME was created */
	assert_int_equal(unlink(f->content), 0);
	assert_int_equal(mkdir(f->content, 0700), 0);
}

static void
new_is_file(struct fixture *f)
{
	char p[512];

	md_path(f, "new", p, sizeof(p));
	assert_int_equal(rmdir(p), 0);
	write_file(p, "", 0);
}

static void
new_name_is_dir(struct fixture *f)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/new/%s", f->maildir, NAME0);
	assert_int_equal(mkdir(p, 0700), 0);
}

static void
new_read_only(struct fixture *f)
{
	char p[512];

	md_path(f, "new", p, sizeof(p));
	assert_int_equal(chmod(p, 0500), 0);
}

static void
parent_is_file(struct fixture *f)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/file", f->dir);
	write_file(p, "", 0);
	snprintf(f->maildir, sizeof(f->maildir), "%s/file/Maildir", f->dir);
}

static void
bad_qid(struct fixture *f)
{
	f->req.qid = "../../etc";
}

static const struct fail_case fail_cases[] = {
	{ "content not open", no_content, DELIVER_TEMP, "cannot read" },
	{ "content unreadable after tmp/ file made", content_is_dir,
	    DELIVER_TEMP, "cannot read" },
	{ "new/ is a file", new_is_file, DELIVER_TEMP, "/new" },
	{ "new/NAME is a directory", new_name_is_dir, DELIVER_TEMP,
	    "not a regular file" },
	{ "new/ read-only (runs only as non-root)", new_read_only, DELIVER_TEMP,
	    "Permission denied" },
	{ "a parent of the Maildir is a file", parent_is_file, DELIVER_TEMP,
	    "cannot create directory" },
	{ "a queue id that is not a file name", bad_qid, DELIVER_PERM,
	    "queue id" },
};

/* make_maildir - an empty Maildir with tmp/ new/ cur/ */
static void
make_maildir(struct fixture *f)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char p[512];
	size_t i;

	snprintf(p, sizeof(p), "%s/home", f->dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/home/u", f->dir);
	mkdir(p, 0700);
	assert_int_equal(mkdir(f->maildir, 0700), 0);
	for (i = 0; i < 3; i++) {
		md_path(f, subs[i], p, sizeof(p));
		assert_int_equal(mkdir(p, 0700), 0);
	}
}

static void
test_failures(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++) {
		const struct fail_case *c = &fail_cases[i];

		if (c->breakit == new_read_only && geteuid() == 0) {
			print_message("failure: %s: skipped\n", c->what);
			continue;
		}
		print_message("failure: %s\n", c->what);
		teardown(state);
		setup(state);
		f = *state;
		make_maildir(f);
		c->breakit(f);
		assert_int_equal(deliver(f), c->expect);
		print_message("  err: %s\n", f->err);
		assert_non_null(strstr(f->err, c->err_has));
		if (c->breakit == parent_is_file)
			continue;
		assert_int_equal(count(f, "tmp"), 0);
		if (c->breakit != new_is_file && c->breakit != new_name_is_dir)
			assert_int_equal(count(f, "new"), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conversion, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_headers_and_name, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_is_idempotent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_cur, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_check_cur_exact_name,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_tmp, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failures, setup,
		    teardown),
	};

	log_init("test", 0, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

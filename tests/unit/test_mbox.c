/*
 * test_mbox.c - deliver_mbox: the From_ line and the message appended,
 * mboxrd quoting, an LF put before a separator when the file lacks one,
 * the files refused (symbolic link, hard link, directory, FIFO), a failed
 * write cut back to the old size, the dot-lock and the fcntl lock waited
 * for (held only for short times: the 60 s bound is never reached), and
 * concurrent deliveries that all end up whole.  Each case works in a
 * fresh temporary directory; dates in From_ lines are checked, then
 * compared as "DATE".
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "deliver.h"
#include "util.h"
#include "unit_files.h"

#define QID "0ABCDEFGHIJKLM"
#define HDRS "Return-Path: <s@example.org>\nDelivered-To: u@example.com\n"
#define CONTENT "Subject: t\r\n\r\nhello\r\n"
#define MSG "From s@example.org DATE\n" HDRS "Subject: t\n\nhello\n\n"
/* an mbox holding one message, as written and as normalised */
#define ONE "From a@example.net Sat Dec  5 13:13:52 2026\n" \
	"Subject: one\n\nfirst\n\n"
#define ONE_N "From a@example.net DATE\nSubject: one\n\nfirst\n\n"
/* a file the refused cases point at: it must never change */
#define VICTIM "victim\n"
/* how long the lock tests hold a lock, and the least wait they expect */
#define HOLD_MS 300
#define HOLD_MIN_MS 250
/* concurrent deliveries, and lines in each message */
#define NPROC 20
#define NLINES 4000

struct fixture {
	char dir[64];      /* the temporary directory */
	char content[128]; /* dir/content.msg */
	char mbox[128];    /* dir/mbox, not there yet */
	char lock[140];    /* dir/mbox.lock */
	char victim[128];  /* dir/victim */
	struct deliver_req req;
	struct deliver_outcome out;
};

static void
assert_file(const char *path, const char *expect, size_t len)
{
	struct buf b;

	read_file(path, &b);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.data, expect, len);
	buf_free(&b);
}

static void
assert_no_lock(const struct fixture *f)
{
	assert_int_equal(access(f->lock, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

/* date_ok - the 24 octets at s are an asctime date ("Sat Dec  5 13:13:52
 * 2026"); when t is not NULL, the time it names */
static int
date_ok(const char *s, time_t *t)
{
	struct tm tm = { 0 };
	const char *end;

	if (s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[13] != ':' ||
	    s[16] != ':' || s[19] != ' ')
		return 0;
	end = strptime(s, "%a %b %e %H:%M:%S %Y", &tm);
	if (end != s + 24)
		return 0;
	tm.tm_isdst = -1;
	if (t != NULL)
		*t = mktime(&tm);
	return 1;
}

/* normalise - the mbox with the date of every From_ line checked and
 * written as DATE; the number of From_ lines */
static size_t
normalise(const struct buf *in, struct buf *out)
{
	const char *p = in->data, *end = in->data + in->len, *nl;
	size_t n = 0, len;

	buf_init(out);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 5 + 25 && strncmp(p, "From ", 5) == 0) {
			assert_true(date_ok(p + len - 24, NULL));
			buf_append(out, p, len - 24);
			buf_puts(out, "DATE");
			n++;
		} else {
			buf_append(out, p, len);
		}
		if (nl != NULL)
			buf_putc(out, '\n');
		p += len + 1;
	}
	return n;
}

/* assert_mbox - the mbox, normalised, is expect */
static void
assert_mbox(const struct fixture *f, const char *expect)
{
	struct buf raw, norm;

	read_file(f->mbox, &raw);
	normalise(&raw, &norm);
	if (norm.len != strlen(expect) || memcmp(norm.data, expect,
	    norm.len) != 0)
		print_message("mbox:\n%s\nexpected:\n%s\n", norm.data, expect);
	assert_int_equal(norm.len, strlen(expect));
	assert_memory_equal(norm.data, expect, norm.len);
	buf_free(&raw);
	buf_free(&norm);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/tern-test-mbox-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->content, sizeof(f->content), "%s/content.msg", f->dir);
	snprintf(f->mbox, sizeof(f->mbox), "%s/mbox", f->dir);
	snprintf(f->lock, sizeof(f->lock), "%s.lock", f->mbox);
	snprintf(f->victim, sizeof(f->victim), "%s/victim", f->dir);
	f->req.qid = QID;
	f->req.content_fd = -1;
	f->req.return_path = "s@example.org";
	f->req.delivered_to = "u@example.com";
	write_file(f->content, CONTENT, strlen(CONTENT));
	write_file(f->victim, VICTIM, strlen(VICTIM));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	rm_tree(f->dir);
	free(f);
	return 0;
}

/* fresh - a new fixture for the next row of a table */
static struct fixture *
fresh(void **state)
{
	teardown(state);
	assert_int_equal(setup(state), 0);
	return *state;
}

/* deliver - deliver_mbox into the fixture's mbox; the result */
static enum deliver_result
deliver(struct fixture *f)
{
	f->req.content_fd = open(f->content, O_RDONLY | O_CLOEXEC);
	assert_true(f->req.content_fd >= 0);
	memset(&f->out, 0, sizeof(f->out));
	deliver_mbox(f->mbox, &f->req, &f->out);
	close(f->req.content_fd);
	f->req.content_fd = -1;
	print_message("  %s %s\n", f->out.status, f->out.reason);
	return f->out.result;
}

/*
 * deliver_in_child - deliver from a forked process, after before(f, arg)
 * ran there (limits, another uid); the outcome comes back through a pipe
 * into f->out
 */
static void
deliver_in_child(struct fixture *f, void (*before)(struct fixture *,
    const void *), const void *arg)
{
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	f->req.content_fd = open(f->content, O_RDONLY | O_CLOEXEC);
	assert_true(f->req.content_fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (before != NULL)
			before(f, arg);
		deliver_mbox(f->mbox, &f->req, &f->out);
		if (write(p[1], &f->out, sizeof(f->out)) != sizeof(f->out))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	memset(&f->out, 0, sizeof(f->out));
	assert_int_equal(read(p[0], &f->out, sizeof(f->out)),
	    sizeof(f->out));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(f->req.content_fd);
	f->req.content_fd = -1;
	print_message("  %s %s\n", f->out.status, f->out.reason);
}

/* preparations of the path before a delivery */
static void
prep_one(struct fixture *f)
{
	write_file(f->mbox, ONE, strlen(ONE));
}

static void
prep_no_lf(struct fixture *f)
{
	const char *s = "From a@example.net Sat Dec  5 13:13:52 2026\n"
	    "Subject: one\n\nno end";

	write_file(f->mbox, s, strlen(s));
}

static void
prep_empty(struct fixture *f)
{
	write_file(f->mbox, "", 0);
}

static void
prep_symlink(struct fixture *f)
{
	assert_int_equal(symlink(f->victim, f->mbox), 0);
}

static void
prep_hardlink(struct fixture *f)
{
	assert_int_equal(link(f->victim, f->mbox), 0);
}

static void
prep_dir(struct fixture *f)
{
	assert_int_equal(mkdir(f->mbox, 0700), 0);
}

static void
prep_fifo(struct fixture *f)
{
	assert_int_equal(mkfifo(f->mbox, 0600), 0);
}

static void
prep_no_parent(struct fixture *f)
{
	snprintf(f->mbox, sizeof(f->mbox), "%s/nodir/mbox", f->dir);
	snprintf(f->lock, sizeof(f->lock), "%s.lock", f->mbox);
}

/* one delivery: the path prepared, the request, what must come of it */
struct mbox_case {
	const char *what;
	void (*prep)(struct fixture *f); /* NULL: no mbox yet */
	const char *return_path;
	const char *content;
	enum deliver_result result;
	const char *status;
	const char *expect;     /* the mbox after (dates as DATE); NULL
	                         * for a refusal: the path is left alone */
	const char *reason_has;
};

static const struct mbox_case mbox_cases[] = {
	{ "a new mbox: the From_ line, the headers, an empty line", NULL,
	    "s@example.org", CONTENT, DELIVER_OK, "2.0.0", MSG,
	    "delivered to mailbox" },
	{ "a second message follows after the empty line", prep_one,
	    "s@example.org", CONTENT, DELIVER_OK, "2.0.0", ONE_N MSG,
	    "delivered" },
	{ "an empty mbox file: the message first, no LF before", prep_empty,
	    "s@example.org", CONTENT, DELIVER_OK, "2.0.0", MSG, "delivered" },
	{ "a file not ending in LF gets one before the From_ line",
	    prep_no_lf, "s@example.org", CONTENT, DELIVER_OK, "2.0.0",
	    "From a@example.net DATE\nSubject: one\n\nno end\n" MSG,
	    "delivered" },
	{ "From lines in the body are quoted (mboxrd)", NULL,
	    "s@example.org",
	    "Subject: q\r\n\r\nFrom here\r\n>From there\r\nFromage\r\n",
	    DELIVER_OK, "2.0.0",
	    "From s@example.org DATE\n" HDRS
	    "Subject: q\n\n>From here\n>>From there\nFromage\n\n",
	    "delivered" },
	{ "a content without a final CRLF ends in LF, then the empty line",
	    NULL, "s@example.org", "Subject: t\r\n\r\nno end", DELIVER_OK,
	    "2.0.0", "From s@example.org DATE\n" HDRS
	    "Subject: t\n\nno end\n\n", "delivered" },
	{ "an empty content: the From_ line and the headers", NULL,
	    "s@example.org", "", DELIVER_OK, "2.0.0",
	    "From s@example.org DATE\n" HDRS "\n", "delivered" },
	{ "the null sender is MAILER-DAEMON", NULL, "", CONTENT, DELIVER_OK,
	    "2.0.0", "From MAILER-DAEMON DATE\nReturn-Path: <>\n"
	    "Delivered-To: u@example.com\nSubject: t\n\nhello\n\n",
	    "delivered" },
	{ "white space and controls in the sender become _", NULL,
	    "a b\tc\r\n@x", CONTENT, DELIVER_OK, "2.0.0",
	    "From a_b_c__@x DATE\nReturn-Path: <a b?c??@x>\n"
	    "Delivered-To: u@example.com\nSubject: t\n\nhello\n\n",
	    "delivered" },
	{ "a symbolic link is refused", prep_symlink, "s@example.org",
	    CONTENT, DELIVER_TEMP, "4.2.0", NULL, "symbolic link" },
	{ "a file with two hard links is refused", prep_hardlink,
	    "s@example.org", CONTENT, DELIVER_TEMP, "4.2.0", NULL,
	    "more than one link" },
	{ "a directory is refused", prep_dir, "s@example.org", CONTENT,
	    DELIVER_TEMP, "4.2.0", NULL, "not a regular file" },
	{ "a FIFO is refused (and does not hang the open)", prep_fifo,
	    "s@example.org", CONTENT, DELIVER_TEMP, "4.2.0", NULL,
	    "not a regular file" },
	{ "a missing directory defers", prep_no_parent, "s@example.org",
	    CONTENT, DELIVER_TEMP, "4.2.0", NULL, "does not exist" },
};

static void
test_deliveries(void **state)
{
	struct fixture *f;
	size_t i;

	for (i = 0; i < sizeof(mbox_cases) / sizeof(mbox_cases[0]); i++) {
		const struct mbox_case *c = &mbox_cases[i];

		print_message("delivery: %s\n", c->what);
		f = fresh(state);
		if (c->prep != NULL)
			c->prep(f);
		f->req.return_path = c->return_path;
		write_file(f->content, c->content, strlen(c->content));
		assert_int_equal(deliver(f), c->result);
		assert_string_equal(f->out.status, c->status);
		assert_non_null(strstr(f->out.reason, c->reason_has));
		assert_no_lock(f);
		assert_file(f->victim, VICTIM, strlen(VICTIM));
		if (c->expect != NULL)
			assert_mbox(f, c->expect);
	}
}

/* a new mbox is 0600 and its From_ line has the time of delivery */
static void
test_new_mbox(void **state)
{
	struct fixture *f = *state;
	const char *from = "From s@example.org ";
	struct buf b;
	struct stat st;
	time_t t, now = time(NULL);

	umask(022);
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(stat(f->mbox, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	read_file(f->mbox, &b);
	assert_true(b.len > strlen(from) + 25);
	assert_memory_equal(b.data, from, strlen(from));
	assert_int_equal(b.data[strlen(from) + 24], '\n');
	assert_true(date_ok(b.data + strlen(from), &t));
	assert_true(t >= now - 60 && t <= now + 60);
	buf_free(&b);
}

/* a write that fails: run with a file size limit just above the mbox,
 * SIGXFSZ ignored, so the write fails with EFBIG */
struct trunc_case {
	const char *what;
	void (*prep)(struct fixture *f);
	off_t room;          /* octets the limit allows past the mbox */
	size_t content_size; /* at least this much content */
};

static const struct trunc_case trunc_cases[] = {
	{ "no room for the LF before the From_ line", prep_no_lf, 0, 100 },
	{ "no room for the From_ line", prep_one, 0, 100 },
	{ "room for part of the From_ line", prep_one, 10, 100 },
	{ "room for part of the headers", prep_one, 60, 100 },
	{ "room for part of a large message", prep_one, 100000, 300000 },
	{ "room for all but the final empty line", prep_one, 1000, 0 },
};

static void
limit_size(struct fixture *f, const void *arg)
{
	const struct trunc_case *c = arg;
	struct stat st;
	struct rlimit rl;

	if (stat(f->mbox, &st) == -1)
		_exit(3);
	rl.rlim_cur = rl.rlim_max = (rlim_t)(st.st_size + c->room);
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		_exit(4);
}

/* big_content - at least n octets of content (n 0: CONTENT) */
static void
big_content(struct fixture *f, size_t n)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "Subject: big\r\n\r\n");
	while (b.len < n)
		buf_puts(&b, "From the body, a line of text\r\n");
	if (n == 0)
		buf_puts(&b, "hello\r\n");
	write_file(f->content, b.data, b.len);
	buf_free(&b);
}

/* content_len - the mbox size a delivery of the fixture's content adds
 * ("room for all but the final empty line" needs it) */
static off_t
content_len(struct fixture *f)
{
	struct stat before, after;

	prep_one(f);
	assert_int_equal(stat(f->mbox, &before), 0);
	assert_int_equal(deliver(f), DELIVER_OK);
	assert_int_equal(stat(f->mbox, &after), 0);
	return after.st_size - before.st_size;
}

static void
test_failed_write_truncated(void **state)
{
	struct fixture *f;
	struct buf before;
	struct trunc_case c;
	size_t i;

	for (i = 0; i < sizeof(trunc_cases) / sizeof(trunc_cases[0]); i++) {
		c = trunc_cases[i];
		print_message("failed write: %s\n", c.what);
		f = fresh(state);
		big_content(f, c.content_size);
		if (c.content_size == 0)
			c.room = content_len(f) - 1;
		c.prep(f);
		read_file(f->mbox, &before);
		deliver_in_child(f, limit_size, &c);
		assert_int_equal(f->out.result, DELIVER_TEMP);
		assert_string_equal(f->out.status, "4.2.2");
		assert_non_null(strstr(f->out.reason, "mailbox full"));
		assert_non_null(strstr(f->out.reason, strerror(EFBIG)));
		assert_file(f->mbox, before.data, before.len);
		assert_no_lock(f);
		buf_free(&before);
		/* and without the limit the same delivery goes through */
		assert_int_equal(deliver(f), DELIVER_OK);
	}
}

/* the locks another process holds */
enum hold {
	HOLD_STALE_DOTLOCK, /* PATH.lock an hour old, nobody behind it */
	HOLD_DOTLOCK,       /* PATH.lock, removed after HOLD_MS */
	HOLD_FCNTL,         /* an fcntl lock, released after HOLD_MS */
	HOLD_FCNTL_REPLACE  /* an fcntl lock; a new mbox renamed over the
	                     * path before it is released */
};

struct lock_case {
	const char *what;
	enum hold hold;
	int64_t min_ms, max_ms; /* how long the delivery may take */
	const char *expect;     /* the mbox after */
};

#define TWO "From b@example.net Sat Dec  5 13:13:52 2026\n" \
	"Subject: two\n\nsecond\n\n"
#define TWO_N "From b@example.net DATE\nSubject: two\n\nsecond\n\n"

static const struct lock_case lock_cases[] = {
	{ "a stale dot-lock is removed", HOLD_STALE_DOTLOCK, 0, 5000,
	    ONE_N MSG },
	{ "a held dot-lock is waited for", HOLD_DOTLOCK, HOLD_MIN_MS, 10000,
	    ONE_N MSG },
	{ "a held fcntl lock is waited for", HOLD_FCNTL, HOLD_MIN_MS, 10000,
	    ONE_N MSG },
	{ "an mbox replaced under the fcntl lock: the new file gets it",
	    HOLD_FCNTL_REPLACE, HOLD_MIN_MS, 10000, TWO_N MSG },
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* holder - the child holding a lock; says "held" through fd ready */
static void
holder(const struct fixture *f, enum hold hold, int ready)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char tmp[160];
	int fd = -1;

	if (hold != HOLD_DOTLOCK) {
		fd = open(f->mbox, O_RDWR);
		if (fd == -1 || fcntl(fd, F_SETLK, &fl) == -1)
			_exit(1);
	}
	if (write(ready, "x", 1) != 1)
		_exit(1);
	sleep_ms(HOLD_MS);
	if (hold == HOLD_DOTLOCK && unlink(f->lock) == -1)
		_exit(1);
	if (hold == HOLD_FCNTL_REPLACE) {
		snprintf(tmp, sizeof(tmp), "%s.new", f->mbox);
		write_file(tmp, TWO, strlen(TWO));
		if (rename(tmp, f->mbox) == -1)
			_exit(1);
		sleep_ms(50);
	}
	_exit(0);
}

/* hold_lock - start the process holding the case's lock; its pid, or 0
 * when nobody holds it */
static pid_t
hold_lock(struct fixture *f, enum hold hold)
{
	struct timeval tv[2] = { { time(NULL) - 3600, 0 },
		{ time(NULL) - 3600, 0 } };
	int p[2];
	char c;
	pid_t pid;

	if (hold == HOLD_STALE_DOTLOCK || hold == HOLD_DOTLOCK)
		write_file(f->lock, "", 0);
	if (hold == HOLD_STALE_DOTLOCK) {
		assert_int_equal(utimes(f->lock, tv), 0);
		return 0;
	}
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		holder(f, hold, p[1]);
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static void
test_locks(void **state)
{
	struct fixture *f;
	int64_t t0, took;
	size_t i;
	int status;
	pid_t pid;

	for (i = 0; i < sizeof(lock_cases) / sizeof(lock_cases[0]); i++) {
		const struct lock_case *c = &lock_cases[i];

		print_message("lock: %s\n", c->what);
		f = fresh(state);
		prep_one(f);
		pid = hold_lock(f, c->hold);
		t0 = util_mono_ms();
		assert_int_equal(deliver(f), DELIVER_OK);
		took = util_mono_ms() - t0;
		print_message("  took %lld ms\n", (long long)took);
		assert_true(took >= c->min_ms && took <= c->max_ms);
		if (pid > 0) {
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0);
		}
		assert_no_lock(f);
		assert_mbox(f, c->expect);
	}
}

/* as another user in a directory that user cannot write (Debian's
 * /var/mail for a process not in group mail): no dot-lock, the fcntl lock
 * alone, and delivery succeeds.  Needs root to switch users. */
static void
become_nobody(struct fixture *f, const void *arg)
{
	(void)f;
	(void)arg;
	if (setgid(65534) == -1 || setuid(65534) == -1)
		_exit(5);
}

static void
test_no_dotlock_directory(void **state)
{
	struct fixture *f = *state;

	if (geteuid() != 0) {
		print_message("skipped: needs root to switch users\n");
		return;
	}
	prep_one(f);
	assert_int_equal(chown(f->mbox, 65534, 65534), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	deliver_in_child(f, become_nobody, NULL);
	assert_int_equal(f->out.result, DELIVER_OK);
	assert_no_lock(f);
	assert_mbox(f, ONE_N MSG);
}

/* concurrent: NPROC processes, each with a message of its own, started
 * together; every message must be in the mbox once and in one piece */

/* conc_message - message i as content (CRLF) or as expected in the mbox */
static void
conc_message(struct buf *b, int i, int in_mbox)
{
	const char *eol = in_mbox ? "\n" : "\r\n";
	int k;

	if (in_mbox)
		buf_puts(b, "From s@example.org DATE\n" HDRS);
	buf_printf(b, "Subject: m%02d%s%s", i, eol, eol);
	for (k = 0; k < NLINES; k++) {
		if (k % 10 == 0 && in_mbox)
			buf_putc(b, '>');
		if (k % 10 == 0)
			buf_printf(b, "From m%02d %04d%s", i, k, eol);
		else
			buf_printf(b, "m%02d line %04d%s", i, k, eol);
	}
	if (in_mbox)
		buf_putc(b, '\n');
}

/* conc_child - wait for the start, deliver content i, exit 0 when done */
static void
conc_child(struct fixture *f, int i, int start)
{
	char c;

	snprintf(f->content, sizeof(f->content), "%s/c%02d", f->dir, i);
	f->req.content_fd = open(f->content, O_RDONLY);
	if (f->req.content_fd == -1 || read(start, &c, 1) != 0)
		_exit(1);
	deliver_mbox(f->mbox, &f->req, &f->out);
	_exit(f->out.result == DELIVER_OK ? 0 : 1);
}

/* conc_check - the mbox is the NPROC messages, each once, whole */
static void
conc_check(const struct fixture *f)
{
	struct buf raw, norm, want[NPROC];
	int seen[NPROC] = { 0 }, i, found;
	size_t off = 0;

	read_file(f->mbox, &raw);
	assert_int_equal(normalise(&raw, &norm), NPROC);
	for (i = 0; i < NPROC; i++) {
		buf_init(&want[i]);
		conc_message(&want[i], i, 1);
	}
	while (off < norm.len) {
		found = -1;
		for (i = 0; i < NPROC && found == -1; i++)
			if (!seen[i] && norm.len - off >= want[i].len &&
			    memcmp(norm.data + off, want[i].data,
			    want[i].len) == 0)
				found = i;
		assert_true(found >= 0);
		seen[found] = 1;
		off += want[found].len;
	}
	for (i = 0; i < NPROC; i++) {
		assert_true(seen[i]);
		buf_free(&want[i]);
	}
	buf_free(&raw);
	buf_free(&norm);
}

static void
test_concurrent(void **state)
{
	struct fixture *f = *state;
	char path[160];
	struct buf b;
	pid_t pids[NPROC];
	int start[2], i, status;

	for (i = 0; i < NPROC; i++) {
		buf_init(&b);
		conc_message(&b, i, 0);
		snprintf(path, sizeof(path), "%s/c%02d", f->dir, i);
		write_file(path, b.data, b.len);
		buf_free(&b);
	}
	assert_int_equal(pipe(start), 0);
	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(start[1]);
			conc_child(f, i, start[0]);
		}
	}
	close(start[0]);
	close(start[1]); /* they all start now */
	for (i = 0; i < NPROC; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_no_lock(f);
	conc_check(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliveries, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_new_mbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_truncated,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_dotlock_directory,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
		    teardown),
	};

	log_init("test", 0, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_spool.c - the queue on disk against a real directory and a real
 * event loop: commit then load, group commit, failures inside a batch,
 * recovery after a crash, atomic updates, queue ids, file modes, the pool
 * of reused files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "spool.h"

static struct event_base *base;
static char home[256];

/* the outcome of one commit, filled in by its callback */
struct result {
	int fired;
	int ok;
	int err; /* errno of a failed commit */
	char qid[QID_SIZE];
	int order; /* n-th callback to run */
};

static int callbacks_run;

/* ids seen by spool_scan */
struct id_list {
	char (*ids)[QID_SIZE];
	size_t n;
};

static void
on_commit(int ok, int err, const char *qid, void *arg)
{
	struct result *r = arg;

	r->fired++;
	r->ok = ok;
	r->err = err;
	snprintf(r->qid, sizeof(r->qid), "%s", qid);
	r->order = callbacks_run++;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/*
 * run_until - run the loop until n callbacks of rs fired (10 s at most).
 * Returns how many loop turns delivered at least one callback.
 */
static int
run_until(struct result *rs, size_t n)
{
	struct timeval tv = { 10, 0 };
	int timed_out = 0, turns = 0, before;
	struct event *t = evtimer_new(base, on_timeout, &timed_out);
	size_t i, fired;

	evtimer_add(t, &tv);
	for (;;) {
		for (fired = 0, i = 0; i < n; i++)
			fired += rs[i].fired ? 1 : 0;
		if (fired == n || timed_out)
			break;
		before = callbacks_run;
		event_base_loop(base, EVLOOP_ONCE);
		turns += callbacks_run != before;
	}
	event_free(t);
	if (timed_out)
		fail_msg("commit callbacks did not run within 10 s");
	return turns;
}

/* path_in - "$home/spool/sub/name" */
static char *
path_in(const char *sub, const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/spool/%s/%s", home, sub, name);
	return p;
}

static int
exists(const char *sub, const char *name)
{
	struct stat st;

	return lstat(path_in(sub, name), &st) == 0;
}

/* list_inodes - the number of entries in spool/sub; the inode numbers of
 * the first max of them into inos */
static size_t
list_inodes(const char *sub, ino_t *inos, size_t max)
{
	char p[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/spool/%s", home, sub);
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n < max)
			inos[n] = de->d_ino;
		n++;
	}
	closedir(d);
	return n;
}

/* published - run the loop until the files spool_remove put in free/
 * are handed out: hidden until queue/ is synced (pool_publish's timer,
 * 100 ms) */
static void
published(void)
{
	struct timeval tv = { 0, 300 * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* count - entries in spool/sub */
static size_t
count(const char *sub)
{
	return list_inodes(sub, NULL, 0);
}

static void
put_file(const char *sub, const char *name, const char *text)
{
	FILE *f = fopen(path_in(sub, name), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* slurp - a whole file, NUL-terminated; length in *len */
static char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	char *p;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	p = malloc((size_t)st.st_size + 1);
	*len = fread(p, 1, (size_t)st.st_size, f);
	p[*len] = '\0';
	fclose(f);
	return p;
}

/* make_env - an envelope with n recipients */
static struct envelope *
make_env(int n)
{
	struct envelope *e = malloc(sizeof(*e));
	char addr[64];
	int i;

	envelope_init(e);
	envelope_set(&e->sender, "alice@example.org");
	envelope_set(&e->helo, "client.example.org");
	envelope_set(&e->client_addr, "127.0.0.1");
	envelope_set(&e->client_name, "localhost");
	envelope_set(&e->protocol, "ESMTP");
	e->arrival = 1700000000;
	for (i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "\"user %d\"@example.net", i);
		envelope_add_rcpt(e, addr);
	}
	return e;
}

static void
env_destroy(struct envelope *e)
{
	envelope_free(e);
	free(e);
}

/* content - deterministic bytes of message i */
static void
content(char *p, size_t len, int i)
{
	size_t j;

	for (j = 0; j < len; j++)
		p[j] = (char)('a' + (j * 7 + (size_t)i) % 26);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(home, sizeof(home), "%s/tern-spool-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(home));
	assert_int_equal(spool_init(home), 0);
	callbacks_run = 0;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static int
group_setup(void **state)
{
	(void)state;
	log_init("test", 0, 0);
	signal(SIGXFSZ, SIG_IGN);
	base = event_base_new();
	assert_non_null(base);
	spool_commit_start(base);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	event_base_free(base);
	return 0;
}

/* commit_one - begin, write len bytes in pieces of piece, commit */
static struct spool_tx *
begin_write(size_t len, size_t piece, int seed)
{
	struct spool_tx *tx = spool_tx_begin();
	char *buf = malloc(len ? len : 1);
	size_t off, n;

	assert_non_null(tx);
	content(buf, len, seed);
	for (off = 0; off < len; off += n) {
		n = len - off < piece ? len - off : piece;
		assert_int_equal(spool_tx_write(tx, buf + off, n), 0);
	}
	assert_true(spool_tx_size(tx) == len);
	free(buf);
	return tx;
}

/* check_content - queue/ID.msg holds exactly message seed's bytes */
static void
check_content(const char *qid, size_t len, int seed)
{
	char path[512], *want = malloc(len ? len : 1), *got;
	size_t glen;

	spool_content_path(qid, path, sizeof(path));
	got = slurp(path, &glen);
	content(want, len, seed);
	assert_int_equal(glen, len);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
}

static void
test_commit_then_load(void **state)
{
	static const struct {
		const char *what;
		size_t len, piece;
	} rows[] = {
		{ "empty message", 0, 1 },
		{ "small, one write", 100, 100 },
		{ "byte by byte", 3000, 1 },
		{ "just over the buffer, in lines", 65 * 1024 + 3, 1000 },
		{ "large pieces written through", 300 * 1024, 100 * 1024 },
		{ "odd pieces around the buffer size", 400 * 1024, 65535 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct result r = { 0 };
		struct envelope *e = make_env(3), back;
		struct spool_tx *tx;
		char qid[QID_SIZE], name[32];

		print_message("commit: %s\n", rows[i].what);
		tx = begin_write(rows[i].len, rows[i].piece, (int)i);
		snprintf(qid, sizeof(qid), "%s", spool_tx_id(tx));
		assert_true(spool_qid_valid(qid));
		snprintf(name, sizeof(name), "%s.msg", qid);
		assert_true(exists("incoming", name));
		spool_tx_commit(tx, e, on_commit, &r);
		/* the envelope is the caller's: free it at once (ASan) */
		assert_string_equal(e->id, qid);
		assert_true(e->size == rows[i].len);
		env_destroy(e);
		run_until(&r, 1);
		assert_int_equal(r.fired, 1);
		assert_int_equal(r.ok, 1);
		assert_string_equal(r.qid, qid);
		assert_int_equal(count("incoming"), 0);
		check_content(qid, rows[i].len, (int)i);
		assert_int_equal(spool_load(qid, &back), 0);
		assert_string_equal(back.id, qid);
		assert_string_equal(back.sender, "alice@example.org");
		assert_int_equal(back.nrcpts, 3);
		assert_string_equal(back.rcpts[2].addr,
		    "\"user 2\"@example.net");
		assert_true(back.size == rows[i].len);
		envelope_free(&back);
	}
	assert_int_equal(count("queue"), 2 * 6);
}

static void
collect(const char *qid, void *arg)
{
	struct id_list *c = arg;

	snprintf(c->ids[c->n++], QID_SIZE, "%s", qid);
}

#define MANY 300

/* many sessions finishing together: all durable, ids unique and sorted */
static void
test_many_commits(void **state)
{
	static struct result rs[MANY];
	static char ids[MANY][QID_SIZE];
	struct id_list c = { ids, 0 };
	struct spool_tx *txs[MANY];
	struct envelope *e;
	int i, turns;

	(void)state;
	memset(rs, 0, sizeof(rs));
	for (i = 0; i < MANY; i++)
		txs[i] = begin_write(1000 + (size_t)i, 512, i);
	for (i = 0; i < MANY; i++) {
		e = make_env(1 + i % 5);
		spool_tx_commit(txs[i], e, on_commit, &rs[i]);
		env_destroy(e);
	}
	turns = run_until(rs, MANY);
	print_message("%d commits came back in %d loop turns\n", MANY, turns);
	for (i = 0; i < MANY; i++) {
		assert_int_equal(rs[i].fired, 1);
		assert_int_equal(rs[i].ok, 1);
		/* callbacks run in commit order */
		assert_int_equal(rs[i].order, i);
		check_content(rs[i].qid, 1000 + (size_t)i, i);
	}
	spool_scan(collect, &c);
	assert_int_equal(c.n, MANY);
	for (i = 0; i < MANY; i++) {
		/* begun in order, so scanned in the same order */
		assert_string_equal(ids[i], rs[i].qid);
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	}
	assert_int_equal(count("incoming"), 0);
	assert_int_equal(count("queue"), 2 * MANY);
}

/*
 * One message of a batch fails (its content vanished, or its writes
 * failed): it alone gets ok=0, with the errno of the failure, and leaves
 * no file; the others succeed.
 */
static void
test_commit_failure_in_batch(void **state)
{
	struct result rs[5] = { 0 };
	struct spool_tx *txs[5];
	struct envelope *e;
	char name[32];
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		txs[i] = begin_write(100, 100, i);
	snprintf(name, sizeof(name), "%s.msg", spool_tx_id(txs[2]));
	assert_int_equal(unlink(path_in("incoming", name)), 0);
	for (i = 0; i < 5; i++) {
		e = make_env(1);
		spool_tx_commit(txs[i], e, on_commit, &rs[i]);
		env_destroy(e);
	}
	run_until(rs, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(rs[i].ok, i != 2);
		assert_int_equal(rs[i].err, i != 2 ? 0 : ENOENT);
	}
	snprintf(name, sizeof(name), "%s.env", rs[2].qid);
	assert_false(exists("queue", name));
	assert_false(exists("incoming", name));
	assert_int_equal(count("incoming"), 0);
	assert_int_equal(count("queue"), 2 * 4);
}

/*
 * A write error (here EFBIG from RLIMIT_FSIZE, as ENOSPC would be) is
 * remembered: later writes fail, and aborting leaves no file behind.
 */
static void
test_write_errors(void **state)
{
	struct rlimit old, small = { 100 * 1024, 0 };
	struct result rs[1] = { 0 };
	struct spool_tx *big, *fine;
	struct envelope *e;
	char *buf = calloc(1, 200 * 1024);
	char name[32];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);

	/* content is written at once: the write that passes the limit
	 * fails, and every later one too */
	big = spool_tx_begin();
	assert_int_equal(spool_tx_write(big, buf, 60 * 1024), 0);
	assert_int_equal(spool_tx_error(big), 0);
	assert_int_equal(spool_tx_write(big, buf, 60 * 1024), -1);
	assert_int_equal(errno, EFBIG);
	errno = 0;
	assert_int_equal(spool_tx_write(big, "x", 1), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(spool_tx_error(big), EFBIG);
	snprintf(name, sizeof(name), "%s.msg", spool_tx_id(big));
	spool_tx_abort(big);
	assert_false(exists("incoming", name));

	/* a message within the limit still commits beside it */
	fine = begin_write(1000, 1000, 1);
	e = make_env(1);
	spool_tx_commit(fine, e, on_commit, &rs[0]);
	env_destroy(e);
	run_until(rs, 1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rs[0].ok, 1);
	assert_int_equal(count("incoming"), 0);
	assert_int_equal(count("queue"), 2);
	free(buf);
}

/* which failures are "out of storage" (452 4.3.1) and which are not (451) */
static void
test_error_full(void **state)
{
	static const struct {
		int err;
		int full;
		const char *why;
	} rows[] = {
		{ ENOSPC, 1, "file system full (ext4 at write, tmpfs at commit)" },
		{ EDQUOT, 1, "the tern user's disk quota" },
		{ EIO, 0, "a failing disk" },
		{ EFBIG, 0, "a file-size limit" },
		{ EROFS, 0, "a file system remounted read-only" },
		{ EMFILE, 0, "out of descriptors" },
		{ ENOENT, 0, "a file gone" },
		{ 0, 0, "no failure" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (spool_error_full(rows[i].err) != rows[i].full)
			fail_msg("spool_error_full(%s): want %d (%s)",
			    strerror(rows[i].err), rows[i].full, rows[i].why);
}

static void
test_abort(void **state)
{
	struct spool_tx *tx = begin_write(100 * 1024, 4096, 0);
	char name[32];

	(void)state;
	snprintf(name, sizeof(name), "%s.msg", spool_tx_id(tx));
	assert_true(exists("incoming", name));
	spool_tx_abort(tx);
	assert_false(exists("incoming", name));
	assert_int_equal(count("incoming"), 0);
	assert_int_equal(count("queue"), 0);
}

/* commit_n - n committed messages; their ids into ids */
static void
commit_n(int n, char ids[][QID_SIZE])
{
	struct result rs[16] = { 0 };
	struct envelope *e;
	int i;

	assert_true(n <= 16);
	for (i = 0; i < n; i++) {
		e = make_env(2);
		spool_tx_commit(begin_write(10, 10, i), e, on_commit, &rs[i]);
		env_destroy(e);
	}
	run_until(rs, (size_t)n);
	for (i = 0; i < n; i++) {
		assert_int_equal(rs[i].ok, 1);
		memcpy(ids[i], rs[i].qid, QID_SIZE);
	}
}

/* a file name for qid with ext */
static char *
fname(const char *qid, const char *ext)
{
	static char n[4][64];
	static int k;

	k = (k + 1) % 4;
	snprintf(n[k], sizeof(n[k]), "%s%s", qid, ext);
	return n[k];
}

/*
 * After a crash: incoming/ is emptied, content without envelope removed,
 * an envelope without content quarantined, a half update dropped, the
 * good message and an unknown file left alone.
 */
static void
test_recover(void **state)
{
	char good[1][QID_SIZE];

	(void)state;
	commit_n(1, good);
	put_file("incoming", "00000000000001.msg", "half a message");
	put_file("incoming", "00000000000001.env", "version 1\n");
	put_file("incoming", "junk", "x");
	put_file("queue", "00000000000002.msg", "orphan content");
	put_file("queue", "00000000000003.env", "version 1\n");
	put_file("queue", fname(good[0], ".env.tmp"), "half an update");
	put_file("queue", "README", "an administrator's note");
	put_file("free", "00000000000004.msg", "");
	spool_recover();
	assert_int_equal(count("incoming"), 0);
	assert_false(exists("queue", "00000000000002.msg"));
	assert_false(exists("queue", "00000000000003.env"));
	assert_true(exists("quarantine", "00000000000003.env"));
	assert_false(exists("queue", fname(good[0], ".env.tmp")));
	assert_true(exists("queue", fname(good[0], ".env")));
	assert_true(exists("queue", fname(good[0], ".msg")));
	assert_true(exists("queue", "README"));
	assert_int_equal(count("queue"), 3);
	assert_int_equal(count("quarantine"), 1);
	/* the pool is no message: left alone */
	assert_true(exists("free", "00000000000004.msg"));
}

/* a corrupt envelope: load fails, both files go to quarantine */
static void
test_load_corrupt(void **state)
{
	static const struct {
		const char *what;
		const char *text;
	} rows[] = {
		{ "garbage", "hello\n" },
		{ "truncated", "version 1\nid 0000" },
		{ "empty", "" },
		{ "id of another message", "version 1\nid 00000000000099\n"
		    "arrival 1\nsender\nhelo h\nclient-addr c\n"
		    "client-name n\nprotocol SMTP\nbody 7bit\nsmtputf8 0\n"
		    "size 1\nrcpt b@c\nstate pending\nnext-try 0\ntries 0\n"
		    "end\n" },
	};
	struct envelope e;
	char qid[QID_SIZE];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("corrupt: %s\n", rows[i].what);
		snprintf(qid, sizeof(qid), "000000000000%02zu", i);
		put_file("queue", fname(qid, ".msg"), "content");
		put_file("queue", fname(qid, ".env"), rows[i].text);
		assert_int_equal(spool_load(qid, &e), -1);
		assert_null(e.rcpts);
		assert_false(exists("queue", fname(qid, ".env")));
		assert_false(exists("queue", fname(qid, ".msg")));
		assert_true(exists("quarantine", fname(qid, ".env")));
		assert_true(exists("quarantine", fname(qid, ".msg")));
	}
	/* missing or invalid: -1, nothing moved */
	assert_int_equal(spool_load("00000000000077", &e), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_load("../../etc/pass", &e), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(count("quarantine"), 2 * 4);
}

static void
test_update_and_remove(void **state)
{
	char ids[2][QID_SIZE];
	struct envelope e, back;
	struct stat st;

	(void)state;
	commit_n(2, ids);
	assert_int_equal(spool_load(ids[0], &e), 0);
	e.rcpts[0].state = RCPT_DEFERRED;
	e.rcpts[0].tries = 1;
	e.rcpts[0].next_try = 1700000300;
	envelope_set(&e.rcpts[0].last_error, "451 4.4.1 no answer");
	e.rcpts[1].state = RCPT_DELIVERED;
	assert_int_equal(spool_update(&e), 0);
	assert_int_equal(spool_load(ids[0], &back), 0);
	assert_int_equal(back.rcpts[0].state, RCPT_DEFERRED);
	assert_int_equal(back.rcpts[0].tries, 1);
	assert_string_equal(back.rcpts[0].last_error, "451 4.4.1 no answer");
	assert_int_equal(back.rcpts[1].state, RCPT_DELIVERED);
	envelope_free(&back);
	assert_false(exists("queue", fname(ids[0], ".env.tmp")));
	assert_int_equal(lstat(path_in("queue", fname(ids[0], ".env")), &st),
	    0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* removed: gone, and an update does not bring it back */
	assert_int_equal(spool_remove(ids[0]), 0);
	assert_false(exists("queue", fname(ids[0], ".env")));
	assert_false(exists("queue", fname(ids[0], ".msg")));
	assert_int_equal(spool_update(&e), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(exists("queue", fname(ids[0], ".env")));
	assert_int_equal(spool_remove(ids[0]), 0); /* again: harmless */
	assert_int_equal(spool_remove("bad/id"), -1);
	assert_int_equal(count("queue"), 2);
	envelope_free(&e);
}

/* an update that fails half way leaves the old envelope untouched */
static void
test_update_failure_keeps_old(void **state)
{
	struct rlimit old, small = { 4096, 0 };
	char ids[1][QID_SIZE], addr[64];
	struct envelope e, back;
	int i;

	(void)state;
	commit_n(1, ids);
	assert_int_equal(spool_load(ids[0], &e), 0);
	for (i = 0; i < 500; i++) {
		snprintf(addr, sizeof(addr), "more%d@example.net", i);
		envelope_add_rcpt(&e, addr);
	}
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	assert_int_equal(spool_update(&e), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_false(exists("queue", fname(ids[0], ".env.tmp")));
	assert_int_equal(spool_load(ids[0], &back), 0);
	assert_int_equal(back.nrcpts, 2);
	envelope_free(&back);
	envelope_free(&e);
}

/*
 * Atomic: a child rewrites the envelope over and over, alternating a
 * small and a large form; every read in the parent parses and is one of
 * the two, never a mix or a partial file.
 */
static void
test_update_atomic(void **state)
{
	char ids[1][QID_SIZE], addr[64];
	struct envelope small, large, got;
	size_t reads = 0, nsmall = 0, nlarge = 0;
	int64_t until;
	pid_t pid;
	int i, st;

	(void)state;
	commit_n(1, ids);
	assert_int_equal(spool_load(ids[0], &small), 0);
	assert_int_equal(spool_load(ids[0], &large), 0);
	for (i = 0; i < 2000; i++) {
		snprintf(addr, sizeof(addr), "large%d@example.net", i);
		envelope_add_rcpt(&large, addr);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (i = 0; i < 300; i++)
			if (spool_update(i % 2 ? &small : &large) == -1)
				_exit(1);
		_exit(0);
	}
	until = util_mono_ms() + 20000;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (util_mono_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("the updating child did not finish in 20 s");
		}
		if (spool_load(ids[0], &got) != 0)
			fail_msg("read %zu: a partial envelope", reads);
		reads++;
		if (got.nrcpts == small.nrcpts)
			nsmall++;
		else if (got.nrcpts == large.nrcpts)
			nlarge++;
		else
			fail_msg("an envelope with %zu recipients", got.nrcpts);
		envelope_free(&got);
	}
	print_message("%zu reads: %zu small, %zu large\n", reads, nsmall,
	    nlarge);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(reads > 0);
	assert_int_equal(count("quarantine"), 0);
	envelope_free(&small);
	envelope_free(&large);
}

static void
scan_count(const char *qid, void *arg)
{
	(void)qid;
	(*(int *)arg)++;
}

static void
test_scan(void **state)
{
	char ids[5][QID_SIZE];
	static char seen[8][QID_SIZE];
	struct id_list c = { seen, 0 };
	int n = 0, i;

	(void)state;
	spool_scan(scan_count, &n);
	assert_int_equal(n, 0);
	commit_n(5, ids);
	/* content alone and junk are not queued messages */
	put_file("queue", "00000000000001.msg", "x");
	put_file("queue", "0000000000000a.env", "x");
	put_file("queue", "00000000000002.env.tmp", "x");
	spool_scan(collect, &c);
	assert_int_equal(c.n, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(seen[i], ids[i]);
}

static void
test_quarantine(void **state)
{
	char ids[2][QID_SIZE];

	(void)state;
	commit_n(2, ids);
	spool_quarantine(ids[0], "operator said so\r\nwith a CRLF");
	assert_false(exists("queue", fname(ids[0], ".env")));
	assert_false(exists("queue", fname(ids[0], ".msg")));
	assert_true(exists("quarantine", fname(ids[0], ".env")));
	assert_true(exists("quarantine", fname(ids[0], ".msg")));
	spool_quarantine("../../x", "bad id: nothing happens");
	assert_int_equal(count("queue"), 2);
	assert_int_equal(count("quarantine"), 2);
}

/* decode - the microseconds in the first 11 characters of a qid */
static uint64_t
decode(const char *qid)
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
	uint64_t v = 0;
	int i;

	for (i = 0; i < 11; i++)
		v = v * 32 + (uint64_t)(strchr(digits, qid[i]) - digits);
	return v;
}

#define NQIDS 100000

static void
test_qid_sorted_unique(void **state)
{
	char (*ids)[QID_SIZE] = malloc(NQIDS * sizeof(*ids));
	char later[QID_SIZE];
	struct timespec pause = { 0, 2000000 };
	uint64_t now_us = (uint64_t)util_now_ms() * 1000;
	int i;

	(void)state;
	for (i = 0; i < NQIDS; i++) {
		spool_qid_new(ids[i]);
		assert_int_equal(strlen(ids[i]), QID_LEN);
		if (!spool_qid_valid(ids[i]))
			fail_msg("invalid id %s", ids[i]);
		/* strictly increasing: sorted and unique at once */
		if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
			fail_msg("%s then %s", ids[i - 1], ids[i]);
	}
	/* the time part is the wall clock (ids may borrow a few ms ahead) */
	assert_true(decode(ids[0]) + 1000000 > now_us);
	assert_true(decode(ids[0]) < now_us + 1000000);
	nanosleep(&pause, NULL);
	spool_qid_new(later);
	assert_true(strcmp(ids[NQIDS - 1], later) < 0);
	free(ids);
}

/* several processes creating messages at once never share an id */
static void
test_qid_unique_across_processes(void **state)
{
	enum { KIDS = 4, EACH = 500 };
	pid_t pids[KIDS];
	int i, j, st;

	(void)state;
	for (i = 0; i < KIDS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] != 0)
			continue;
		for (j = 0; j < EACH; j++)
			if (spool_tx_begin() == NULL)
				_exit(1);
		_exit(0);
	}
	for (i = 0; i < KIDS; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(count("incoming"), KIDS * EACH);
}

static void
test_qid_valid(void **state)
{
	static const struct {
		const char *s;
		int want;
	} rows[] = {
		{ "0123456789ABCD", 1 },
		{ "ZZZZZZZZZZZZZZ", 1 },
		{ "0123456789ABC", 0 },   /* short */
		{ "0123456789ABCDE", 0 }, /* long */
		{ "0123456789abcd", 0 },  /* lower case */
		{ "0123456789ABC/", 0 },  /* path */
		{ "0123456789ABC.", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (spool_qid_valid(rows[i].s) != rows[i].want)
			fail_msg("spool_qid_valid(%s)",
			    rows[i].s ? rows[i].s : "NULL");
}

/* modes do not depend on the umask: spool/ 0711 (crossed on the way to
 * the local drop), the dirs in it 0700, files 0600 */
static void
test_modes(void **state)
{
	static const char *dirs[] = { "", "incoming", "queue", "quarantine" };
	static const mode_t masks[] = { 0, 0777, 0022 };
	char ids[1][QID_SIZE], p[512], sub[300];
	struct stat st;
	size_t m, i;
	mode_t old;

	(void)state;
	for (m = 0; m < sizeof(masks) / sizeof(masks[0]); m++) {
		/* an existing home of our own (mode 0750) is left alone */
		snprintf(sub, sizeof(sub), "%s/h%zu", home, m);
		assert_int_equal(mkdir(sub, 0750), 0);
		assert_int_equal(chmod(sub, 0750), 0);
		old = umask(masks[m]);
		assert_int_equal(spool_init(sub), 0);
		commit_n(1, ids);
		umask(old);
		for (i = 0; i < 4; i++) {
			snprintf(p, sizeof(p), "%s/spool/%s", sub, dirs[i]);
			assert_int_equal(stat(p, &st), 0);
			assert_int_equal(st.st_mode & 07777,
			    i == 0 ? 0711 : 0700);
		}
		assert_int_equal(stat(sub, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0750);
		spool_content_path(ids[0], p, sizeof(p));
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		p[strlen(p) - 3] = 'e';
		p[strlen(p) - 2] = 'n';
		p[strlen(p) - 1] = 'v';
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
}

/* a missing home is created 0711; an existing one is left alone */
static void
test_init_home(void **state)
{
	char sub[300];
	struct stat st;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/newhome", home);
	assert_int_equal(spool_init(sub), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	assert_non_null(strstr(spool_dir(), "/newhome/spool"));
	assert_true(spool_dir()[0] == '/');
	/* a second init on the same home is fine */
	assert_int_equal(spool_init(sub), 0);
	snprintf(sub, sizeof(sub), "%s/no/such/parent", home);
	assert_int_equal(spool_init(sub), -1);
	assert_int_equal(spool_init(home), 0);
}

static void
test_content_path_and_free(void **state)
{
	char p[512], want[512];

	(void)state;
	spool_content_path("0123456789ABCD", p, sizeof(p));
	snprintf(want, sizeof(want), "%s/queue/0123456789ABCD.msg",
	    spool_dir());
	assert_string_equal(p, want);
	assert_int_equal(spool_free_ok(0, 0), 1);
	assert_int_equal(spool_free_ok(UINT64_MAX, 0), 0);
	assert_int_equal(spool_free_ok(1, UINT64_MAX), 0); /* overflow */
	assert_int_equal(spool_free_ok(0, (uint64_t)1 << 62), 0);
}

/* st_ino of spool/sub/name */
static ino_t
inode_of(const char *sub, const char *name)
{
	struct stat st;

	assert_int_equal(lstat(path_in(sub, name), &st), 0);
	return st.st_ino;
}

/*
 * The pool: a finished message's files go to free/ (the content emptied)
 * and are the files of the next messages, which hold exactly their own
 * bytes whatever the pool file held before.
 */
static void
test_pool_reuses_files(void **state)
{
	char ids[3][QID_SIZE], again[2][QID_SIZE], name[32];
	ino_t pooled[8], got;
	size_t n, i, k, len;
	struct result r = { 0 };
	struct spool_tx *tx;
	struct envelope *e;
	int found;

	(void)state;
	commit_n(3, ids);
	for (i = 0; i < 3; i++)
		assert_int_equal(spool_remove(ids[i]), 0);
	assert_int_equal(count("queue"), 0);
	/* not handed out before their removal from queue/ is synced */
	assert_int_equal(count("free"), 0);
	published();
	assert_int_equal(count("free"), 6);
	for (i = 0; i < 3; i++) {
		/* no mail kept in free/: what the content was reads as
		 * zeros (or the file is empty) */
		char *old = slurp(path_in("free", fname(ids[i], ".msg")),
		    &len);

		for (k = 0; k < len; k++)
			assert_int_equal(old[k], 0);
		free(old);
	}
	n = list_inodes("free", pooled, 8);

	/* a stale, longer file in the pool: the new content replaces it */
	put_file("free", "00000000000009.msg", "stale bytes of an older "
	    "message, longer than the new one");
	pooled[n++] = inode_of("free", "00000000000009.msg");
	/* commit_n found free/ empty: it is listed again 10 ms later */
	usleep(150 * 1000);
	tx = begin_write(10, 10, 7);
	snprintf(name, sizeof(name), "%s.msg", spool_tx_id(tx));
	got = inode_of("incoming", name);
	for (found = 0, k = 0; k < n; k++)
		found |= pooled[k] == got;
	assert_true(found);
	e = make_env(1);
	spool_tx_commit(tx, e, on_commit, &r);
	env_destroy(e);
	run_until(&r, 1);
	assert_int_equal(r.ok, 1);
	check_content(r.qid, 10, 7);
	got = inode_of("queue", fname(r.qid, ".env"));
	for (found = 0, k = 0; k < n; k++)
		found |= pooled[k] == got;
	assert_true(found);
	assert_int_equal(count("free"), 7 - 2);

	/* the next messages take the rest of that listing */
	commit_n(2, again);
	assert_int_equal(count("queue"), 2 * 3);
	assert_int_equal(count("free"), 1);
	for (i = 0; i < 2; i++)
		check_content(again[i], 10, (int)i);
}

/* free/ holds at most SPOOL_POOL_MAX files: beyond, finished files are
 * deleted */
static void
test_pool_is_bounded(void **state)
{
	char ids[2][QID_SIZE], name[32];
	int i;

	(void)state;
	commit_n(2, ids);
	for (i = 0; i < SPOOL_POOL_MAX - 1; i++) {
		snprintf(name, sizeof(name), "%014d.msg", i);
		put_file("free", name, "");
	}
	/* the pool counts free/ afresh for each spool */
	assert_int_equal(spool_init(home), 0);
	assert_int_equal(spool_remove(ids[0]), 0);
	published();
	assert_int_equal(count("free"), SPOOL_POOL_MAX);
	assert_true(exists("free", fname(ids[0], ".env")));
	assert_false(exists("free", fname(ids[0], ".msg")));
	assert_int_equal(spool_remove(ids[1]), 0);
	published();
	assert_int_equal(count("free"), SPOOL_POOL_MAX);
	assert_int_equal(count("queue"), 0);
}

/*
 * After a crash free/ may still name a file that holds a queued message
 * (its removal from free/ was not on disk): recovery moves such names,
 * and a second name of one pool file, out of the pool, and removes a file
 * left half way into it.
 */
static void
test_recover_pool_aliases(void **state)
{
	char ids[1][QID_SIZE], p1[512], p2[512];

	(void)state;
	commit_n(1, ids);
	snprintf(p1, sizeof(p1), "%s", path_in("queue", fname(ids[0],
	    ".msg")));
	snprintf(p2, sizeof(p2), "%s", path_in("free",
	    "00000000000001.msg"));
	assert_int_equal(link(p1, p2), 0);
	put_file("free", "00000000000002.msg", "");
	snprintf(p1, sizeof(p1), "%s", path_in("free", "00000000000002.msg"));
	snprintf(p2, sizeof(p2), "%s", path_in("free", "00000000000003.env"));
	assert_int_equal(link(p1, p2), 0);
	put_file("free", "00000000000004.env", "an old envelope");
	/* a content file whose emptying a crash cut short */
	put_file("free", ".00000000000005.msg", "mail not yet zeroed");
	spool_recover();
	assert_false(exists("free", ".00000000000005.msg"));
	/* the alias of the queued content is out of the pool */
	assert_false(exists("free", "00000000000001.msg"));
	assert_true(exists("quarantine", "pool-00000000000001.msg"));
	check_content(ids[0], 10, 0);
	/* of two names for one file, at most one stays */
	assert_int_equal(exists("free", "00000000000002.msg") +
	    exists("free", "00000000000003.env"), 1);
	assert_true(exists("free", "00000000000004.env"));
	assert_int_equal(count("free"), 2);
	assert_int_equal(count("queue"), 2);
}

/* content whose size is not the envelope's is never delivered */
static void
test_load_size_mismatch(void **state)
{
	char ids[1][QID_SIZE];
	struct envelope back;
	FILE *f;

	(void)state;
	commit_n(1, ids);
	f = fopen(path_in("queue", fname(ids[0], ".msg")), "a");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
	assert_int_equal(spool_load(ids[0], &back), -1);
	assert_true(exists("quarantine", fname(ids[0], ".env")));
	assert_true(exists("quarantine", fname(ids[0], ".msg")));
	assert_int_equal(count("queue"), 0);
}

/* adopt - spool_adopt_async of qid, run to its end; 1 when committed */
static int
adopt(const char *qid)
{
	struct result r = { 0 };

	spool_adopt_async(qid, on_commit, &r);
	run_until(&r, 1);
	assert_string_equal(r.qid, qid);
	return r.ok;
}

/* the queue process commits what the smtpd wrote in incoming/, and
 * refuses what a hostile smtpd could use to reach a queued message or a
 * file of the queue's: a symbolic link, a file with a second name, the
 * id of a message already queued */
static void
test_adopt(void **state)
{
	char qid[QID_SIZE], ids[1][QID_SIZE], kept[512];
	const char *m, *e;

	(void)state;
	/* a plain message: moved into queue/ */
	spool_qid_new(qid);
	m = fname(qid, ".msg");
	e = fname(qid, ".env");
	put_file("incoming", m, "content");
	put_file("incoming", e, "envelope");
	assert_int_equal(adopt(qid), 1);
	assert_true(exists("queue", m) && exists("queue", e));
	assert_int_equal(count("incoming"), 0);

	/* a symbolic link as the content: refused, removed */
	spool_qid_new(qid);
	m = fname(qid, ".msg");
	e = fname(qid, ".env");
	assert_int_equal(symlink("/etc/passwd", path_in("incoming", m)), 0);
	put_file("incoming", e, "envelope");
	assert_int_equal(adopt(qid), 0);
	assert_false(exists("queue", m) || exists("queue", e));
	assert_int_equal(count("incoming"), 0);

	/* content with a second name in incoming/: refused */
	spool_qid_new(qid);
	m = fname(qid, ".msg");
	e = fname(qid, ".env");
	put_file("incoming", m, "content");
	put_file("incoming", e, "envelope");
	snprintf(kept, sizeof(kept), "%s", path_in("incoming", "kept"));
	assert_int_equal(link(path_in("incoming", e), kept), 0);
	assert_int_equal(adopt(qid), 0);
	assert_false(exists("queue", m) || exists("queue", e));
	assert_int_equal(unlink(kept), 0);

	/* the id of a queued message: the queued files stay as they were */
	commit_n(1, ids);
	m = fname(ids[0], ".msg");
	e = fname(ids[0], ".env");
	put_file("incoming", m, "other content");
	put_file("incoming", e, "other envelope");
	assert_int_equal(adopt(ids[0]), 0);
	check_content(ids[0], 10, 0);
	assert_true(exists("queue", e));
	assert_int_equal(count("incoming"), 0);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_commit_then_load),
		T(test_many_commits),
		T(test_commit_failure_in_batch),
		T(test_write_errors),
		T(test_error_full),
		T(test_abort),
		T(test_recover),
		T(test_load_corrupt),
		T(test_update_and_remove),
		T(test_update_failure_keeps_old),
		T(test_update_atomic),
		T(test_scan),
		T(test_quarantine),
		T(test_qid_sorted_unique),
		T(test_qid_unique_across_processes),
		T(test_qid_valid),
		T(test_modes),
		T(test_init_home),
		T(test_content_path_and_free),
		T(test_pool_reuses_files),
		T(test_pool_is_bounded),
		T(test_load_size_mismatch),
		T(test_recover_pool_aliases),
		T(test_adopt),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

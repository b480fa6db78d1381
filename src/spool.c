/*
 * spool.c - the queue on disk: write, group commit, read, recover.
 *
 * Layout (see spool.h and docs/ARCHITECTURE.md): $home/spool/incoming/ holds
 * messages being received, queue/ the committed ones (ID.msg content, ID.env
 * envelope), quarantine/ what could not be read, free/ the files of finished
 * messages waiting to be reused (the pool, below).  A message is queued
 * when queue/ID.env exists; its content is renamed into queue/ before it.
 *
 * The one idea: the 250 after DATA waits for stable storage, and sessions
 * finishing together share that wait.  spool_tx_commit hands the message to
 * ONE worker thread which takes every commit waiting as a batch: it makes
 * each content and envelope file durable (a fsync each for a small batch,
 * one syncfs for a larger one), renames them into queue/, fsyncs queue/
 * once for the whole batch, and hands the results back to the event loop
 * through a pipe.  Callbacks run on the event-loop thread, never the worker.
 *
 * Lock discipline: one mutex (commit_lock) guards only the two hand-over
 * lists (pending: loop -> worker, done: worker -> loop) and commit_stop.
 * Nobody does I/O or calls out while holding it.  A transaction belongs to
 * exactly one side at a time: to the loop until it is on the pending list,
 * to the worker from the moment it takes the batch until it puts it on the
 * done list, to the loop again after.  libevent is touched only on the loop
 * thread, so the base need not be created with evthread locking.
 *
 * Queue ids (14 characters): 11 base-32 digits of the wall-clock
 * microseconds (fixed width, so they sort by time), then 3 base-32 digits
 * of a per-process counter mixed with the pid.  Files are created with
 * O_EXCL and a collision simply takes a new id, so ids are unique in the
 * spool even across processes.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

/* ids asked for in one request to the queue process, at most */
#define SPOOL_COMMIT_IDS 256
/* a reply line: "QID ERRNO\n" */
#define SPOOL_COMMIT_LINE (QID_LEN + 16)
/* the smtpd waits this long for the queue process's answer, then fails
 * the batch (451: the client retries; at worst a duplicate) */
#define SPOOL_COMMIT_WAIT_MS 60000
/* attempts at a fresh id when O_EXCL finds the name taken */
#define SPOOL_QID_TRIES 100
/* "ID.env.tmp" and the like */
#define SPOOL_NAME_MAX (QID_LEN + 16)

struct spool_tx {
	char id[QID_SIZE];
	int fd;               /* incoming/ID.msg, -1 once closed */
	int err;              /* first failure (errno), 0 while all is well */
	const char *err_what; /* what failed, for the log line */
	uint64_t size;        /* content octets accepted so far */
	/* commit */
	struct buf env;       /* the envelope file, formatted by the caller */
	spool_commit_cb cb;
	void *arg;
	int ok;
	int msg_queued;       /* worker: queue/ID.msg exists */
	int env_queued;       /* worker: queue/ID.env exists */
	int pooled;           /* incoming/ID.msg came from free/ */
	int env_pooled;       /* so did incoming/ID.env, taken with it */
	int update;           /* an envelope update (spool_update_async):
	                       * queue/ID.env.tmp renamed over queue/ID.env */
	int adopt;            /* queue process: the smtpd's incoming/ID.*,
	                       * written and synced, renamed into queue/
	                       * (spool_adopt_async) */
	struct spool_tx *next;
};

struct tx_list {
	struct spool_tx *head, *tail;
};

static char *spool_path;        /* absolute "$home/spool" */
/* a batch at least this large is synced with one syncfs(2) */
#define SPOOL_SYNCFS_MIN 3

/* how new files are created: 0600, 0660 in a smtpd with its own user */
static mode_t file_mode = 0600;
/* smtpd: commits are done by the queue process, asked on commit_sock */
static int commit_remote;
static char *commit_sock;
static int commit_conn = -1;    /* the commit worker's connection */
/* files in free/ must belong to this user (the smtpd's: it reuses them) */
static uid_t pool_owner;
static int pool_owner_set;

static int incoming_fd = -1;    /* directory fds: *at() calls, fsync */
static int queue_fd = -1;
static int quarantine_fd = -1;
static int free_fd = -1;

/*
 * The pool (free/): the files of finished messages, kept for new ones.
 * Creating a file and deleting it again costs a filesystem far more than
 * renaming one: an inode to find and initialise, later to free, and on
 * ext4 without a journal a scan past every inode freed in the last minutes
 * before a new one is handed out (at thousands of messages a second that
 * scan was a third of tern's CPU time).  So the queue process does not
 * delete a finished message's files but renames them into free/ (the
 * content zeroed first, pool_put; handed out only once their removal from
 * queue/ is synced, pool_publish), and the smtpd renames them back into
 * incoming/ for the next message, with RENAME_NOREPLACE so that a queue id
 * is still never taken twice.  free/ holds at most SPOOL_POOL_MAX files;
 * the queue process deletes what does not fit.  A file in free/ is no
 * message: nothing reads it, and recovery only moves aside a name that a
 * crash left beside a file in use (recover_pool).  Where the
 * filesystem cannot rename without replacing (EINVAL), the pool is off
 * and every file is created and deleted.
 */
/* names the smtpd takes from one listing of free/ */
#define SPOOL_POOL_TAKE 128
/* an empty free/ is listed again only after this long */
#define SPOOL_POOL_RELIST_MS 10
/* a content file up to this size keeps its blocks in free/ (pool_empty) */
#define SPOOL_POOL_KEEP (64 * 1024)
/* the queue process counts free/ again after this many files put there */
#define SPOOL_POOL_RECOUNT (SPOOL_POOL_MAX / 4)
/* files put in free/ are handed out (pool_publish) at most this late */
#define SPOOL_POOL_PUBLISH_MS 100

static struct {
	/* smtpd, loop thread: names listed in free/, not yet taken */
	char names[SPOOL_POOL_TAKE][SPOOL_NAME_MAX];
	size_t n;
	int64_t empty_at;      /* when a listing last found nothing */
	/* queue process: files in free/, as last counted plus put since */
	size_t count;
	size_t put_since;
	int counted;
	int64_t counted_at;
	int off;               /* renameat2 without replacing unsupported */
	/* queue process: hidden names put in free/ since the last
	 * pool_publish, and its timer */
	char (*pending)[SPOOL_NAME_MAX + 1];
	size_t npending;
	struct event *publish_ev;
} pool;

/* the loop of the process that commits (spool_commit_start) */
static struct event_base *loop_base;

static pthread_mutex_t commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t commit_cond = PTHREAD_COND_INITIALIZER;
static struct tx_list commit_pending;  /* guarded by commit_lock */
static struct tx_list commit_done;     /* guarded by commit_lock */
static int commit_pipe[2] = { -1, -1 }; /* worker -> loop wakeup */
static int commit_started;
/* loop thread only */
static struct event *commit_ev;
static size_t commit_outstanding;

/* helpers */

/* file_name - "ID" + ext into out (SPOOL_NAME_MAX bytes) */
static void
file_name(char *out, const char *qid, const char *ext)
{
	int n = snprintf(out, SPOOL_NAME_MAX, "%s%s", qid, ext);

	if (n < 0 || n >= SPOOL_NAME_MAX)
		panic("spool: file name too long");
}

/* check_init - spool functions need spool_init first */
static void
check_init(void)
{
	if (incoming_fd == -1)
		panic("spool used before spool_init");
}

/*
 * create_file - O_CREAT|O_EXCL a file_mode file in dirfd.  The mode is
 * exact: spool_init set the umask to 077 (spool_init_smtpd 077 or 007),
 * which takes no bit of file_mode away.
 */
static int
create_file(int dirfd, const char *name, int excl)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW;

	flags |= excl ? O_EXCL : O_TRUNC;
	return openat(dirfd, name, flags, file_mode);
}

/* unlink_quiet - unlinkat that tolerates a missing file */
static int
unlink_quiet(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

/* exists_at - 1 when dirfd/name exists (without following a symlink) */
static int
exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* an entry of a directory and its inode number (readdir's d_ino) */
struct dir_ent {
	char *name;
	ino_t ino;
};

static int
ent_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dir_ent *)a)->name,
	    ((const struct dir_ent *)b)->name);
}

static int
ent_ino_cmp(const void *a, const void *b)
{
	const struct dir_ent *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * dir_list - the entries of dirfd except "." and "..", sorted by name
 * (by inode number with by_ino); -1 on error.  dir_free releases them.
 */
static int
dir_list(int dirfd, struct dir_ent **ents, size_t *n, int by_ino)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *d;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*ents = NULL;
	*n = 0;
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ents = xreallocarray(*ents, cap, sizeof(**ents));
		}
		(*ents)[*n].ino = de->d_ino;
		(*ents)[(*n)++].name = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(*ents, *n, sizeof(**ents),
		    by_ino ? ent_ino_cmp : ent_name_cmp);
	return 0;
}

static void
dir_free(struct dir_ent *ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

/* split_name - "QID.ext" into qid and the ext ("msg", "env", "env.tmp") */
static const char *
split_name(const char *name, char qid[QID_SIZE])
{
	if (strnlen(name, QID_LEN + 1) <= QID_LEN || name[QID_LEN] != '.')
		return NULL;
	memcpy(qid, name, QID_LEN);
	qid[QID_LEN] = '\0';
	if (!spool_qid_valid(qid))
		return NULL;
	return name + QID_LEN + 1;
}

/* safe_name - a file name fit for a log line */
static const char *
safe_name(char out[64], const char *name)
{
	util_sanitise(out, 63, name, strlen(name));
	return out;
}

/* init */

/*
 * ensure_dir - mkdir (or keep) path with exactly mode.  With keep, an
 * existing directory keeps its mode: spool/, incoming/ and free/ are shared
 * with the smtpd's user when it has its own (the master sets them up, see
 * master.c), and the queue process could not change them anyway.
 */
static int
ensure_dir(const char *path, mode_t mode, int keep)
{
	struct stat st;
	int made = mkdir(path, mode) == 0;

	if (!made && errno != EEXIST)
		return -1;
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	/* mkdir's mode went through the umask; the spool's modes are exact */
	if ((made || !keep) && (st.st_mode & 07777) != mode &&
	    chmod(path, mode) == -1)
		return -1;
	return 0;
}

/* ensure_home - create home 0711 if missing; an existing one is kept */
static int
ensure_home(const char *home)
{
	if (mkdir(home, 0711) == 0)
		return chmod(home, 0711);
	return errno == EEXIST ? 0 : -1;
}

/* open_dir - an O_DIRECTORY fd for spool_path/sub, replacing *fd (keep:
 * see ensure_dir) */
static int
open_dir(const char *sub, int *fd, int keep)
{
	char *path = xasprintf("%s/%s", spool_path, sub);
	int nfd;

	if (ensure_dir(path, 0700, keep) == -1) {
		log_err("spool: %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	nfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nfd == -1) {
		log_err("spool: open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (*fd != -1)
		close(*fd);
	*fd = nfd;
	return 0;
}

/* spool_open - make spool_path "home/spool" (absolute) and check it */
static int
spool_open(const char *home)
{
	char *path, *real;

	if (ensure_home(home) == -1) {
		log_err("spool: %s: %s", home, strerror(errno));
		return -1;
	}
	path = xasprintf("%s/spool", home);
	/* 0711: crossed, never listed, on the way to spool/drop (tern(8),
	 * SENDMAIL) and, for the smtpd's user, to incoming/ and free/;
	 * everything else in it is 0700 */
	if (ensure_dir(path, 0711, 0) == -1) {
		log_err("spool: %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	/* absolute, so content paths handed to deliveries stay valid */
	real = realpath(path, NULL);
	free(path);
	if (real == NULL) {
		log_err("spool: %s/spool: %s", home, strerror(errno));
		return -1;
	}
	free(spool_path);
	spool_path = real;
	return 0;
}

/*
 * spool_init - create and open home/spool.  It may be called again (tests,
 * a new home) but never while commits are in flight.
 */
int
spool_init(const char *home)
{
	/* the spool is the tern user's alone (tern serve sets this too) */
	umask(077);
	file_mode = 0600;
	commit_remote = 0;
	if (spool_open(home) == -1 ||
	    open_dir("incoming", &incoming_fd, 1) == -1 ||
	    open_dir("queue", &queue_fd, 0) == -1 ||
	    open_dir("quarantine", &quarantine_fd, 0) == -1 ||
	    open_dir("free", &free_fd, 1) == -1)
		return -1;
	/* a new spool: its pool is listed and counted afresh */
	pool.n = 0;
	pool.empty_at = 0;
	pool.counted = 0;
	return 0;
}

/*
 * spool_init_smtpd - the smtpd's view of the spool: incoming/ and free/
 * only, which the master prepared (with shared, group-writable by the
 * queue's group and setgid, so that files written here are the queue
 * process's to read and move).  queue/ and quarantine/ are not opened:
 * with a user of its own the smtpd cannot enter them, and its commits are
 * done by the queue process on request (see "The commit" above).
 */
int
spool_init_smtpd(const char *home, int shared)
{
	/* shared: files 0660, group (by the setgid directory) the queue's */
	umask(shared ? 007 : 077);
	file_mode = shared ? 0660 : 0600;
	if (spool_open(home) == -1 ||
	    open_dir("incoming", &incoming_fd, 1) == -1 ||
	    open_dir("free", &free_fd, 1) == -1)
		return -1;
	if (queue_fd != -1)
		close(queue_fd);
	if (quarantine_fd != -1)
		close(quarantine_fd);
	queue_fd = quarantine_fd = -1;
	commit_remote = 1;
	free(commit_sock);
	commit_sock = xasprintf("%s/" SPOOL_COMMIT_SOCK, home);
	pool.n = 0;
	pool.empty_at = 0;
	return 0;
}

/* spool_set_pool_owner - the only owner of files kept in free/ */
void
spool_set_pool_owner(uid_t uid)
{
	pool_owner = uid;
	pool_owner_set = 1;
}

/* spool_dir - "$home/spool" */
const char *
spool_dir(void)
{
	check_init();
	return spool_path;
}

/* queue ids */

static const char qid_digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/* put_base32 - v as exactly n base-32 digits (most significant first) */
static void
put_base32(char *out, size_t n, uint64_t v)
{
	while (n > 0) {
		out[--n] = qid_digits[v & 31];
		v >>= 5;
	}
}

/* spool_qid_new - a fresh queue id: time-sortable, unique in this spool */
void
spool_qid_new(char out[QID_SIZE])
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static uint64_t last_us;
	static uint32_t counter;
	struct timespec ts;
	uint64_t us;
	uint32_t mix;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = ts.tv_sec < 0 ? 0 :
	    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	/* 32^11 us is 1142 years past 1970: the field never overflows */
	pthread_mutex_lock(&lock);
	/*
	 * Never repeat or go back within a process, even when two ids are
	 * asked for in one microsecond or the clock is stepped back: borrow
	 * the next microsecond.  This keeps the ids of one process strictly
	 * increasing; at realistic rates the borrowed time is negligible.
	 */
	if (us <= last_us)
		us = last_us + 1;
	last_us = us;
	/* Knuth's multiplicative hash spreads nearby pids apart */
	mix = counter++ + (uint32_t)util_pid() * 2654435761u;
	pthread_mutex_unlock(&lock);
	put_base32(out, 11, us);
	put_base32(out + 11, 3, mix & 0x7fff);
	out[QID_LEN] = '\0';
}

/* spool_qid_valid - 1 when s looks like a queue id (also a safe filename) */
int
spool_qid_valid(const char *s)
{
	size_t i;

	if (s == NULL || strnlen(s, QID_SIZE) != QID_LEN)
		return 0;
	for (i = 0; i < QID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

/* spool_free_ok - 1 when more than reserve bytes stay free after size */
int
spool_free_ok(uint64_t reserve, uint64_t size)
{
	struct statvfs sv;
	uint64_t avail;

	check_init();
	if (fstatvfs(incoming_fd, &sv) == -1) {
		/* refusing (a 4xx) is safe: the client retries */
		log_warn("spool: statvfs %s: %s", spool_path, strerror(errno));
		return 0;
	}
	if (sv.f_frsize != 0 && sv.f_bavail > UINT64_MAX / sv.f_frsize)
		avail = UINT64_MAX;
	else
		avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (size > UINT64_MAX - reserve)
		return 0;
	return avail > reserve + size;
}

/* the pool */

/* pool_list - the names of the pool (at most max) into pool.names; the
 * number of files in the pool.  A name starting with "." is a file still
 * being emptied (pool_put), not yet the pool's. */
static size_t
pool_list(size_t max)
{
	struct dir_ent *ents;
	size_t n, i, found = 0;

	if (dir_list(free_fd, &ents, &n, 0) == -1)
		return 0;
	for (i = 0; i < n; i++) {
		if (ents[i].name[0] == '.')
			continue;
		if (found < max && strlen(ents[i].name) < SPOOL_NAME_MAX)
			snprintf(pool.names[found], SPOOL_NAME_MAX, "%s",
			    ents[i].name);
		found++;
	}
	dir_free(ents, n);
	return found;
}

/* pool_next - the name of a file listed in free/; -1 when there is none */
static int
pool_next(char out[SPOOL_NAME_MAX])
{
	if (pool.off)
		return -1;
	if (pool.n == 0) {
		int64_t now = util_mono_ms();
		size_t found;

		if (pool.empty_at != 0 &&
		    now - pool.empty_at < SPOOL_POOL_RELIST_MS)
			return -1;
		found = pool_list(SPOOL_POOL_TAKE);
		pool.n = found < SPOOL_POOL_TAKE ? found : SPOOL_POOL_TAKE;
		pool.empty_at = pool.n == 0 ? now : 0;
		if (pool.n == 0)
			return -1;
	}
	memcpy(out, pool.names[--pool.n], SPOOL_NAME_MAX);
	return 0;
}

/*
 * pool_take - move a file of the pool to incoming/name (which must not
 * exist); -1 when the pool has none (the caller creates the file).  The
 * loop thread takes both files of a message at once, so that no name it
 * listed can be listed and taken twice.  Opened later without O_TRUNC:
 * on ext4 a file truncated to nothing is written back at its close
 * (auto_da_alloc), which in the commit worker cost more than the fsync;
 * the writer cuts it to what it wrote instead (pool_fit).
 */
static int
pool_take(const char *name)
{
	char from[SPOOL_NAME_MAX];

	while (pool_next(from) == 0) {
		if (renameat2(free_fd, from, incoming_fd, name,
		    RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EINVAL || errno == ENOSYS) {
			pool.off = 1; /* no RENAME_NOREPLACE here */
			return -1;
		}
		if (errno != ENOENT)
			return -1;
		/* gone meanwhile: the next one */
	}
	return -1;
}

/* pool_fit - cut a file from the pool to the len bytes written into it
 * (the queue process empties content files, not envelopes) */
static int
pool_fit(int fd, uint64_t len)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	if ((uint64_t)st.st_size > len && ftruncate(fd, (off_t)len) == -1)
		return -1;
	return 0;
}

/* pool_has_room - queue process: may one more file go to free/? */
static int
pool_has_room(void)
{
	if (pool.off)
		return 0;
	if (!pool.counted || pool.put_since >= SPOOL_POOL_RECOUNT ||
	    pool.count + pool.put_since >= SPOOL_POOL_MAX) {
		int64_t now = util_mono_ms();

		/* the smtpd takes files out meanwhile: count again, but
		 * not more than once a second when the pool is full */
		if (pool.counted && pool.count + pool.put_since >=
		    SPOOL_POOL_MAX && now - pool.counted_at < 1000)
			return 0;
		pool.counted_at = now;
		pool.count = pool_list(0);
		pool.put_since = 0;
		pool.counted = 1;
	}
	return pool.count + pool.put_since < SPOOL_POOL_MAX;
}

/*
 * pool_empty - make a content file read as nothing but zeros before it
 * goes to free/, so that free/ holds no mail.  Small files keep their
 * blocks (FALLOC_FL_ZERO_RANGE marks them unwritten): freeing them would
 * cost a discard on filesystems mounted with "discard", and the next
 * message writes into them anyway; large ones are cut to nothing.
 */
static int
pool_empty(int fd)
{
	struct stat st;
	off_t blk, len;

	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_size == 0)
		return 0;
	/* whole blocks: a partial one would be zeroed by writing it */
	blk = st.st_blksize > 0 ? st.st_blksize : 4096;
	len = (st.st_size + blk - 1) / blk * blk;
	if (st.st_size <= SPOOL_POOL_KEEP &&
	    fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0,
	    len) == 0)
		return 0;
	return ftruncate(fd, 0);
}

/*
 * pool_publish - queue process: hand out the files put in free/ since the
 * last time.  First queue/ is fsync'd, so that their removal from queue/
 * is on disk before the smtpd can take one and write a new message into
 * it: otherwise a power cut could bring the old name back in queue/
 * (its removal was never synced) over a file already holding the new
 * message's bytes, and the old message would be delivered again, damaged.
 * One fsync covers every file put since; if it fails the files stay
 * hidden (recovery removes hidden names).
 */
static void
pool_publish(void)
{
	char *name;
	size_t i;

	if (pool.npending == 0)
		return;
	if (fsync(queue_fd) == -1) {
		log_warn("spool: cannot sync queue/: %s; %zu file(s) left out "
		    "of the pool", strerror(errno), pool.npending);
		for (i = 0; i < pool.npending; i++)
			unlink_quiet(free_fd, pool.pending[i]);
		pool.npending = 0;
		return;
	}
	for (i = 0; i < pool.npending; i++) {
		name = pool.pending[i];
		if (renameat(free_fd, name, free_fd, name + 1) == -1)
			unlink_quiet(free_fd, name);
	}
	pool.npending = 0;
}

static void
pool_publish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pool_publish();
}

/*
 * pool_pending_add - a hidden name just put in free/, handed out by the
 * next pool_publish: within SPOOL_POOL_PUBLISH_MS on the loop, at once
 * without one (tools and tests that remove messages outside a loop)
 */
static void
pool_pending_add(const char *hidden)
{
	struct timeval tv = { 0, SPOOL_POOL_PUBLISH_MS * 1000 };

	if (pool.pending == NULL)
		pool.pending = xcalloc(SPOOL_POOL_MAX, sizeof(*pool.pending));
	if (pool.npending == SPOOL_POOL_MAX)
		pool_publish();
	snprintf(pool.pending[pool.npending++], sizeof(pool.pending[0]), "%s",
	    hidden);
	if (loop_base == NULL) {
		pool_publish();
		return;
	}
	if (pool.publish_ev == NULL) {
		pool.publish_ev = evtimer_new(loop_base, pool_publish_cb, NULL);
		if (pool.publish_ev == NULL)
			fatal("spool: evtimer_new failed");
	}
	if (!evtimer_pending(pool.publish_ev, NULL))
		evtimer_add(pool.publish_ev, &tv);
}

/*
 * pool_put - queue process: move queue/name to free/; -1 when it was not
 * moved.  It goes there under a hidden name, which the smtpd does not
 * take, until pool_publish has made its removal from queue/ durable; a
 * content file (empty set) is emptied meanwhile: emptied in queue/, a
 * crash that undid the envelope's removal but kept the emptying would
 * deliver the message again as zeros (its size stays, so spool_load could
 * not tell); emptied under its pool name, the smtpd could take it
 * meanwhile and have its new content zeroed.
 */
static int
pool_put(const char *name, int empty)
{
	char hidden[SPOOL_NAME_MAX + 1];
	int fd, rc;

	if (!pool_has_room())
		return -1;
	/* an envelope the queue process rewrote is its own file: the smtpd
	 * could not write it, so it is not kept (content files are always
	 * the smtpd's) */
	if (!empty && pool_owner_set) {
		struct stat st;

		if (fstatat(queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    st.st_uid != pool_owner)
			return -1;
	}
	snprintf(hidden, sizeof(hidden), ".%s", name);
	if (renameat2(queue_fd, name, free_fd, hidden,
	    RENAME_NOREPLACE) == -1) {
		if (errno == EINVAL || errno == ENOSYS)
			pool.off = 1;
		return -1;
	}
	if (empty) {
		fd = openat(free_fd, hidden, O_WRONLY | O_CLOEXEC |
		    O_NOFOLLOW);
		rc = fd == -1 ? -1 : pool_empty(fd);
		if (fd != -1)
			close(fd);
		/* the message is gone from queue/ already: a file that
		 * cannot be emptied is removed, not kept */
		if (rc == -1) {
			unlink_quiet(free_fd, hidden);
			return 0;
		}
	}
	pool_pending_add(hidden);
	pool.put_since++;
	return 0;
}

/* receiving */

/* spool_tx_begin - create incoming/ID.msg; NULL with errno on failure */
struct spool_tx *
spool_tx_begin(void)
{
	char name[SPOOL_NAME_MAX];
	struct spool_tx *tx;
	int i, fd = -1;

	check_init();
	tx = xcalloc(1, sizeof(*tx));
	spool_qid_new(tx->id);
	file_name(name, tx->id, ".msg");
	if (pool_take(name) == 0) {
		fd = openat(incoming_fd, name, O_WRONLY | O_CLOEXEC |
		    O_NOFOLLOW);
		if (fd == -1) {
			unlinkat(incoming_fd, name, 0);
		} else {
			tx->pooled = 1;
			file_name(name, tx->id, ".env");
			tx->env_pooled = pool_take(name) == 0;
		}
	}
	for (i = 0; i < SPOOL_QID_TRIES && fd == -1; i++) {
		spool_qid_new(tx->id);
		file_name(name, tx->id, ".msg");
		fd = create_file(incoming_fd, name, 1);
		if (fd == -1 && errno != EEXIST)
			break;
	}
	if (fd == -1) {
		int saved = errno;

		log_warn("spool: cannot create a message in incoming/: %s",
		    strerror(errno));
		free(tx);
		errno = saved;
		return NULL;
	}
	tx->fd = fd;
	return tx;
}

/* spool_tx_id - the queue id of a transaction */
const char *
spool_tx_id(const struct spool_tx *tx)
{
	return tx->id;
}

/* tx_fail - remember the first failure of tx; returns -1 with errno */
static int
tx_fail(struct spool_tx *tx, const char *what)
{
	if (tx->err == 0) {
		tx->err = errno ? errno : EIO;
		tx->err_what = what;
	}
	errno = tx->err;
	return -1;
}

/* spool_tx_write - append content to the queue file at once */
int
spool_tx_write(struct spool_tx *tx, const void *p, size_t len)
{
	if (tx->err != 0) {
		errno = tx->err;
		return -1;
	}
	if (len > UINT64_MAX - tx->size) {
		errno = EFBIG;
		return tx_fail(tx, "write content");
	}
	/* unbuffered: callers hand over large pieces (a session its 64 KiB
	 * blocks and the rest once), so a copy here would only cost */
	if (util_write_all(tx->fd, p, len) == -1)
		return tx_fail(tx, "write content");
	tx->size += len;
	return 0;
}

/* spool_tx_size - content octets written so far */
uint64_t
spool_tx_size(const struct spool_tx *tx)
{
	return tx->size;
}

/* spool_tx_error - errno of the first failed write of tx, 0 if none */
int
spool_tx_error(const struct spool_tx *tx)
{
	return tx->err;
}

/*
 * spool_error_full - ENOSPC or EDQUOT: out of storage.  Where it shows
 * depends on the file system: ext4 reserves blocks at write(2), so a full
 * disk fails the content write; tmpfs may take the whole content and fail
 * the envelope written at commit; NFS may report it only at fsync.  All
 * of them are the same condition to the client.
 */
int
spool_error_full(int err)
{
	return err == ENOSPC || err == EDQUOT;
}

/* tx_free - release a transaction (its files are the caller's business) */
static void
tx_free(struct spool_tx *tx)
{
	if (tx->fd != -1)
		close(tx->fd);
	if (tx->env.data != NULL)
		buf_free(&tx->env);
	free(tx);
}

/* spool_tx_abort - drop the message: unlink, free */
void
spool_tx_abort(struct spool_tx *tx)
{
	char name[SPOOL_NAME_MAX];

	file_name(name, tx->id, ".msg");
	if (unlink_quiet(incoming_fd, name) == -1)
		log_warn("%s: cannot remove incoming/%s: %s", tx->id, name,
		    strerror(errno));
	file_name(name, tx->id, ".env");
	if (tx->env_pooled && unlink_quiet(incoming_fd, name) == -1)
		log_warn("%s: cannot remove incoming/%s: %s", tx->id, name,
		    strerror(errno));
	tx_free(tx);
}

/* group commit: the worker thread */

static void update_files(struct spool_tx *tx, int each_sync);

/*
 * adopt_check - a file the smtpd asks to commit must be a plain file of
 * the smtpd's with no other name: a symbolic link would make the queue
 * process deliver whatever file it points to, a second name (a hard link
 * kept in incoming/ or free/) would let the smtpd reach the message after
 * its commit, or the pool hand it out again.
 */
static void
adopt_check(struct spool_tx *tx, const char *ext)
{
	char name[SPOOL_NAME_MAX];
	struct stat st;

	if (tx->err != 0)
		return;
	file_name(name, tx->id, ext);
	if (fstatat(incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		tx_fail(tx, "find the incoming files");
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (pool_owner_set && st.st_uid != pool_owner)) {
		errno = EPERM;
		tx_fail(tx, "check the incoming files");
	}
}

/*
 * commit_files - write the envelope beside the content; with each_sync
 * both are fsync'd here, else the caller syncs the whole batch at once
 */
static void
commit_files(struct spool_tx *tx, int each_sync)
{
	char name[SPOOL_NAME_MAX];
	int fd;

	if (tx->err != 0)
		return;
	if (tx->update) {
		update_files(tx, each_sync);
		return;
	}
	if (tx->adopt) {
		adopt_check(tx, ".msg");
		adopt_check(tx, ".env");
		return;
	}
	if (tx->pooled && pool_fit(tx->fd, tx->size) == -1) {
		tx_fail(tx, "cut content");
		return;
	}
	if (each_sync && fsync(tx->fd) == -1) {
		tx_fail(tx, "fsync content");
		return;
	}
	close(tx->fd);
	tx->fd = -1;
	file_name(name, tx->id, ".env");
	if (tx->env_pooled)
		fd = openat(incoming_fd, name, O_WRONLY | O_CLOEXEC |
		    O_NOFOLLOW);
	else
		fd = create_file(incoming_fd, name, 1);
	if (fd == -1) {
		tx_fail(tx, "create envelope");
		return;
	}
	if (util_write_all(fd, tx->env.data, tx->env.len) == -1)
		tx_fail(tx, "write envelope");
	else if (tx->env_pooled && pool_fit(fd, tx->env.len) == -1)
		tx_fail(tx, "cut envelope");
	else if (each_sync && fsync(fd) == -1)
		tx_fail(tx, "fsync envelope");
	close(fd);
}

/* update_files - an envelope update: queue/ID.env.tmp written (and with
 * each_sync fsync'd) */
static void
update_files(struct spool_tx *tx, int each_sync)
{
	char tmp[SPOOL_NAME_MAX];
	int fd;

	file_name(tmp, tx->id, ".env.tmp");
	fd = create_file(queue_fd, tmp, 0);
	if (fd == -1) {
		tx_fail(tx, "create envelope");
		return;
	}
	if (util_write_all(fd, tx->env.data, tx->env.len) == -1)
		tx_fail(tx, "write envelope");
	else if (each_sync && fsync(fd) == -1)
		tx_fail(tx, "fsync envelope");
	close(fd);
}

/* update_rename - queue/ID.env.tmp over queue/ID.env, unless the message
 * is no longer queued */
static void
update_rename(struct spool_tx *tx)
{
	char name[SPOOL_NAME_MAX], tmp[SPOOL_NAME_MAX];

	if (tx->err != 0)
		return;
	file_name(name, tx->id, ".env");
	file_name(tmp, tx->id, ".env.tmp");
	if (!exists_at(queue_fd, name)) {
		errno = ENOENT;
		tx_fail(tx, "find envelope");
		return;
	}
	if (renameat(queue_fd, tmp, queue_fd, name) == -1) {
		tx_fail(tx, "rename envelope");
		return;
	}
	tx->env_queued = 1;
}

/* batch_syncfs - make every file the batch wrote durable with one
 * syncfs(2); on failure each transaction of the batch fails */
static void
batch_syncfs(struct spool_tx *batch)
{
	struct spool_tx *tx;
	int err;

	if (syncfs(incoming_fd) == 0)
		return;
	err = errno;
	for (tx = batch; tx != NULL; tx = tx->next)
		if (tx->err == 0) {
			errno = err;
			tx_fail(tx, "syncfs");
		}
}

/* rename_noreplace - rename that fails with EEXIST rather than replace;
 * link and unlink where the filesystem has no RENAME_NOREPLACE */
static int
rename_noreplace(int from, const char *name, int to)
{
	int saved;

	if (renameat2(from, name, to, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (linkat(from, name, to, name, 0) == -1)
		return -1;
	if (unlinkat(from, name, 0) == -1) {
		saved = errno;
		unlinkat(to, name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/* commit_rename - move incoming/ID.ext to queue/ID.ext.  A commit the
 * smtpd asked for never replaces a queued file: its ids are its own
 * choice, and a queued message is no longer its to change. */
static void
commit_rename(struct spool_tx *tx, const char *ext, int *done)
{
	char name[SPOOL_NAME_MAX];
	int rc;

	if (tx->err != 0)
		return;
	file_name(name, tx->id, ext);
	rc = tx->adopt ? rename_noreplace(incoming_fd, name, queue_fd) :
	    renameat(incoming_fd, name, queue_fd, name);
	if (rc == -1) {
		tx_fail(tx, "rename into queue/");
		return;
	}
	*done = 1;
}

/* commit_cleanup - remove every file of a failed commit (envelope first) */
static void
commit_cleanup(struct spool_tx *tx)
{
	char name[SPOOL_NAME_MAX];

	if (tx->update) {
		/* the envelope in queue/ stays what it was */
		file_name(name, tx->id, ".env.tmp");
		unlink_quiet(queue_fd, name);
		return;
	}

	if (tx->fd != -1) {
		close(tx->fd);
		tx->fd = -1;
	}
	file_name(name, tx->id, ".env");
	if (tx->env_queued)
		unlink_quiet(queue_fd, name);
	unlink_quiet(incoming_fd, name);
	file_name(name, tx->id, ".msg");
	if (tx->msg_queued)
		unlink_quiet(queue_fd, name);
	unlink_quiet(incoming_fd, name);
}

/*
 * The commit, in a smtpd with a user of its own.  The smtpd cannot enter
 * queue/: once its commit worker has written and synced a batch's files in
 * incoming/, it asks the queue process to move them into queue/ (one
 * request on the commit socket, $home/spool/commit.sock: "QID\n" lines),
 * and waits, on the worker thread, for the answer ("QID ERRNO\n" lines in
 * the same order, 0 for committed).  The queue process adopts them with
 * its own commit worker (spool_adopt_async), grouped with its envelope
 * updates under one fsync of queue/.  So the 250 still waits for content,
 * envelope and queue/ on stable storage, and a batch costs the smtpd one
 * round trip more than renaming itself.  A request whose answer does not
 * come (the queue process restarting) fails its messages with 451: they
 * may have been committed, and the client's retry is then a duplicate,
 * never a loss.
 */

/* commit_connect - a connection to the queue process's commit socket */
static int
commit_connect(void)
{
	struct sockaddr_un sa;
	int fd, saved;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(commit_sock) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, commit_sock, strlen(commit_sock) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* commit_send - send one request, on a new connection if the queue
 * process closed the old one (it never read the request then); 0 or an
 * errno */
static int
commit_send(const char *req, size_t len)
{
	ssize_t n;
	int tries, err = EPIPE;

	for (tries = 0; tries < 2; tries++) {
		if (commit_conn == -1 && (commit_conn = commit_connect()) == -1)
			return errno;
		n = send(commit_conn, req, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		err = n == -1 ? errno : EMSGSIZE;
		close(commit_conn);
		commit_conn = -1;
		if (err != EPIPE && err != ECONNRESET && err != ENOTCONN)
			return err;
	}
	return err;
}

/* commit_receive - the answer to the request sent; 0 or an errno */
static int
commit_receive(char *rep, size_t cap, size_t *len)
{
	struct pollfd pfd = { .fd = commit_conn, .events = POLLIN };
	ssize_t n;
	int rc;

	do
		rc = poll(&pfd, 1, SPOOL_COMMIT_WAIT_MS);
	while (rc == -1 && errno == EINTR);
	if (rc == 0)
		errno = ETIMEDOUT;
	n = rc == 1 ? recv(commit_conn, rep, cap - 1, MSG_TRUNC) : -1;
	if (n <= 0 || (size_t)n >= cap) {
		int err = n == 0 ? ECONNRESET : n > 0 ? EPROTO : errno;

		close(commit_conn);
		commit_conn = -1;
		return err;
	}
	rep[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* commit_answer - apply the answer lines in rep to the transactions of
 * [first, end) that were asked for; a line that does not fit fails the
 * rest */
static void
commit_answer(struct spool_tx *first, struct spool_tx *end, char *rep,
    int err)
{
	struct spool_tx *tx;
	char *line = rep, *nl, *stop;
	long e;

	for (tx = first; tx != end; tx = tx->next) {
		if (tx->err != 0)
			continue;
		e = err;
		if (err == 0) {
			nl = strchr(line, '\n');
			e = EPROTO;
			if (nl != NULL && (size_t)(nl - line) > QID_LEN + 1 &&
			    memcmp(line, tx->id, QID_LEN) == 0 &&
			    line[QID_LEN] == ' ') {
				errno = 0;
				e = strtol(line + QID_LEN + 1, &stop, 10);
				if (stop != nl || e < 0 || e > 4095)
					e = EPROTO;
			}
			if (e == EPROTO)
				err = EPROTO;
			else
				line = nl + 1;
		}
		if (e != 0) {
			errno = (int)e;
			tx_fail(tx, "commit by the queue process");
		}
	}
}

/* commit_ask - have the queue process commit the batch (the smtpd's
 * commit worker), SPOOL_COMMIT_IDS ids to a request */
static void
commit_ask(struct spool_tx *batch)
{
	static char req[SPOOL_COMMIT_IDS * (QID_LEN + 1)];
	static char rep[SPOOL_COMMIT_IDS * SPOOL_COMMIT_LINE];
	struct spool_tx *tx = batch, *first;
	size_t len, n, rlen;
	int err;

	while (tx != NULL) {
		first = tx;
		len = n = 0;
		for (; tx != NULL && n < SPOOL_COMMIT_IDS; tx = tx->next) {
			if (tx->err != 0)
				continue;
			memcpy(req + len, tx->id, QID_LEN);
			req[len + QID_LEN] = '\n';
			len += QID_LEN + 1;
			n++;
		}
		if (n == 0)
			continue;
		err = commit_send(req, len);
		if (err == 0)
			err = commit_receive(rep, sizeof(rep), &rlen);
		commit_answer(first, tx, rep, err);
	}
}

/*
 * commit_batch - make a batch durable.  The content files are renamed
 * before any envelope so that a crash never leaves an envelope without
 * content in queue/ on a filesystem that keeps the order of directory
 * operations; where one does not, recovery quarantines the envelope -
 * noisy but safe, and never for an acknowledged message, as the
 * acknowledgement waits for the fsync of queue/ below.
 *
 * incoming/ is not fsync'd: the renames took the names out of it, and
 * whatever a crash leaves behind there is only an extra name that
 * spool_recover removes; the message's durable name is the one in queue/,
 * which the single fsync of queue/ makes stable for the whole batch.
 */
static void
commit_batch(struct spool_tx *batch)
{
	struct spool_tx *tx;
	int renamed = 0, sync_err = 0, each_sync;
	size_t n = 0;

	/* adoptions write nothing: the smtpd synced their files */
	for (tx = batch; tx != NULL; tx = tx->next)
		n += !tx->adopt;
	/*
	 * Group commit: a batch of SPOOL_SYNCFS_MIN or more is made durable
	 * with one syncfs of the spool's filesystem instead of two fsyncs per
	 * message (each a journal commit of its own when they run one after
	 * the other).  Either way every file is durable before any rename,
	 * so a complete envelope is all queue/ ever holds.
	 */
	each_sync = n < SPOOL_SYNCFS_MIN;
	/* (free/ is not synced here: a crash may bring back the name of a
	 * file taken from it, which spool_recover then moves aside) */
	for (tx = batch; tx != NULL; tx = tx->next)
		commit_files(tx, each_sync);
	if (!each_sync)
		batch_syncfs(batch);
	if (commit_remote) {
		/* the smtpd: the queue process renames and syncs queue/ */
		commit_ask(batch);
		for (tx = batch; tx != NULL; tx = tx->next) {
			tx->ok = tx->err == 0;
			if (!tx->ok)
				commit_cleanup(tx);
		}
		return;
	}
	for (tx = batch; tx != NULL; tx = tx->next)
		if (!tx->update)
			commit_rename(tx, ".msg", &tx->msg_queued);
	for (tx = batch; tx != NULL; tx = tx->next) {
		if (tx->update)
			update_rename(tx);
		else
			commit_rename(tx, ".env", &tx->env_queued);
		renamed |= tx->env_queued;
	}
	if (renamed && fsync(queue_fd) == -1)
		sync_err = errno;
	for (tx = batch; tx != NULL; tx = tx->next) {
		if (sync_err != 0 && tx->err == 0) {
			errno = sync_err;
			tx_fail(tx, "fsync queue/");
		}
		tx->ok = tx->err == 0;
		if (!tx->ok)
			commit_cleanup(tx);
	}
}

/* list_append - append the list from to to (both guarded by the caller) */
static void
list_append(struct tx_list *to, struct spool_tx *head, struct spool_tx *tail)
{
	if (head == NULL)
		return;
	if (to->tail != NULL)
		to->tail->next = head;
	else
		to->head = head;
	to->tail = tail;
}

/* commit_worker - take every waiting commit, sync them, hand them back */
static void *
commit_worker(void *unused)
{
	struct spool_tx *batch, *tail;
	ssize_t n;

	(void)unused;
	for (;;) {
		pthread_mutex_lock(&commit_lock);
		while (commit_pending.head == NULL)
			pthread_cond_wait(&commit_cond, &commit_lock);
		batch = commit_pending.head;
		tail = commit_pending.tail;
		commit_pending.head = commit_pending.tail = NULL;
		pthread_mutex_unlock(&commit_lock);

		commit_batch(batch);

		pthread_mutex_lock(&commit_lock);
		list_append(&commit_done, batch, tail);
		pthread_mutex_unlock(&commit_lock);
		/* a full pipe already holds a wakeup: EAGAIN is fine */
		do
			n = write(commit_pipe[1], "", 1);
		while (n == -1 && errno == EINTR);
	}
	return NULL;
}

/* commit_deliver - on the loop: run the callbacks of finished commits */
static void
commit_deliver(evutil_socket_t fd, short what, void *unused)
{
	struct spool_tx *list, *tx;
	char drain[256];

	(void)what;
	(void)unused;
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&commit_lock);
	list = commit_done.head;
	commit_done.head = commit_done.tail = NULL;
	pthread_mutex_unlock(&commit_lock);
	while ((tx = list) != NULL) {
		list = tx->next;
		commit_outstanding--;
		if (!tx->ok)
			log_warn("%s: commit failed: %s: %s", tx->id,
			    tx->err_what, strerror(tx->err));
		tx->cb(tx->ok, tx->ok ? 0 : tx->err, tx->id, tx->arg);
		tx_free(tx);
	}
	/* idle: do not keep the loop alive for nothing */
	if (commit_outstanding == 0)
		event_del(commit_ev);
}

/* commit_thread_start - the pipe and the worker, once per process */
static void
commit_thread_start(void)
{
	sigset_t all, old;
	pthread_t th;
	int rc;

	if (pipe2(commit_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("spool: pipe: %s", strerror(errno));
	/* signals are the loop's business: the worker blocks them all */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, NULL, commit_worker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		fatal("spool: cannot start the commit thread: %s",
		    strerror(rc));
	pthread_detach(th);
	commit_started = 1;
}

/*
 * spool_commit_start - start the group-commit worker for this event loop.
 * Call it in the process that commits, after any fork (threads do not
 * survive fork).  Called again, it moves the wakeup event to a new base;
 * that is only allowed while no commit is in flight.
 */
void
spool_commit_start(struct event_base *base)
{
	if (commit_outstanding != 0)
		panic("spool_commit_start with commits in flight");
	if (!commit_started)
		commit_thread_start();
	if (commit_ev != NULL)
		event_free(commit_ev);
	commit_ev = event_new(base, commit_pipe[0], EV_READ | EV_PERSIST,
	    commit_deliver, NULL);
	pool_publish(); /* nothing waits on the old loop's timer */
	if (pool.publish_ev != NULL)
		event_free(pool.publish_ev);
	pool.publish_ev = NULL;
	loop_base = base;
	if (commit_ev == NULL)
		fatal("spool: event_new failed");
}

/* commit_queue - hand tx to the worker (loop thread) */
static void
commit_queue(struct spool_tx *tx)
{
	tx->next = NULL;
	if (commit_outstanding++ == 0)
		event_add(commit_ev, NULL);
	pthread_mutex_lock(&commit_lock);
	list_append(&commit_pending, tx, tx);
	pthread_cond_signal(&commit_cond);
	pthread_mutex_unlock(&commit_lock);
}

/*
 * spool_tx_commit - queue tx for the worker.  The envelope is formatted
 * here, on the caller's thread, so env may be freed as soon as this
 * returns.  env->id and env->size are set from tx.  Call it on the
 * event-loop thread; cb runs there too, and qid is valid only during cb.
 */
void
spool_tx_commit(struct spool_tx *tx, struct envelope *env,
    spool_commit_cb cb, void *arg)
{
	if (commit_ev == NULL)
		panic("spool_tx_commit before spool_commit_start");
	memcpy(env->id, tx->id, QID_SIZE);
	env->size = tx->size;
	buf_init(&tx->env);
	envelope_format(env, &tx->env);
	tx->cb = cb;
	tx->arg = arg;
	commit_queue(tx);
}

/*
 * spool_update_async - spool_update done by the commit worker: updates
 * finishing together share the syncs and the fsync of queue/ with each
 * other and with new messages.  cb runs on the loop with ok=1 once the new
 * envelope is durable, ok=0 when the old one stays (logged).
 */
void
spool_update_async(const struct envelope *env, spool_commit_cb cb,
    void *arg)
{
	struct spool_tx *tx;

	if (commit_ev == NULL)
		panic("spool_update_async before spool_commit_start");
	tx = xcalloc(1, sizeof(*tx));
	tx->fd = -1;
	tx->update = 1;
	memcpy(tx->id, env->id, QID_SIZE);
	if (!spool_qid_valid(tx->id))
		panic("spool_update_async: bad queue id");
	buf_init(&tx->env);
	envelope_format(env, &tx->env);
	tx->cb = cb;
	tx->arg = arg;
	commit_queue(tx);
}

/* queue side */

/*
 * spool_adopt_async - (queue process) commit the message the smtpd wrote
 * and synced in incoming/ as qid: checked, renamed into queue/ (never over
 * a queued file), queue/ fsync'd with the rest of the worker's batch.
 */
void
spool_adopt_async(const char *qid, spool_commit_cb cb, void *arg)
{
	struct spool_tx *tx;

	if (commit_ev == NULL || queue_fd == -1)
		panic("spool_adopt_async before spool_commit_start");
	if (!spool_qid_valid(qid))
		panic("spool_adopt_async: bad queue id");
	tx = xcalloc(1, sizeof(*tx));
	tx->fd = -1;
	tx->adopt = 1;
	memcpy(tx->id, qid, QID_SIZE);
	tx->cb = cb;
	tx->arg = arg;
	commit_queue(tx);
}

/*
 * sweep_incoming - remove the files in incoming/ last changed before
 * `before` (realtime seconds; 0: every file), and say how many went.
 * Nothing there was ever acknowledged: a message is acknowledged only once
 * its files are in queue/, and a commit that finds its file gone fails
 * with a 451 (commit_cleanup), never with a half-queued message.
 */
static size_t
sweep_incoming(time_t before)
{
	struct dir_ent *ents;
	struct stat st;
	char safe[64];
	size_t n, i, removed = 0;

	if (dir_list(incoming_fd, &ents, &n, 0) == -1) {
		log_err("spool: cannot list incoming/: %s", strerror(errno));
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (before != 0 && (fstatat(incoming_fd, ents[i].name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || st.st_ctim.tv_sec >= before))
			continue;
		if (unlinkat(incoming_fd, ents[i].name, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			log_warn("spool: cannot remove incoming/%s: %s",
			    safe_name(safe, ents[i].name), strerror(errno));
	}
	dir_free(ents, n);
	return removed;
}

/*
 * spool_sweep_incoming - while tern runs: remove the files in incoming/
 * that nothing has changed for max_age_ms.  An smtpd that ends in the
 * middle of messages (killed, or crashed by a client) leaves their files
 * there, and the next one does not know them; without this they would
 * stay until tern restarts, and a client that could crash the smtpd over
 * and over could fill the disk.  The caller chooses an age no session
 * reaches (twice timeouts message=): a session's file is created at DATA
 * and changed by every write of it until the commit.  A clock stepped
 * forward can make a live session's file look old: its commit then fails
 * with a 451, and nothing acknowledged is touched.
 */
size_t
spool_sweep_incoming(int64_t max_age_ms)
{
	check_init();
	return sweep_incoming(time(NULL) - (time_t)(max_age_ms / 1000));
}

/* recover_one - settle one name found in queue/ */
static void
recover_one(const char *name)
{
	char qid[QID_SIZE], other[SPOOL_NAME_MAX], safe[64];
	const char *ext = split_name(name, qid);

	if (ext == NULL) {
		log_warn("spool: unexpected file queue/%s left alone",
		    safe_name(safe, name));
		return;
	}
	if (strcmp(ext, "env.tmp") == 0) {
		/* an update cut short: the old envelope is still in place */
		unlink_quiet(queue_fd, name);
		return;
	}
	if (strcmp(ext, "msg") == 0) {
		file_name(other, qid, ".env");
		if (exists_at(queue_fd, other))
			return;
		log_info("%s: removing content without envelope "
		    "(never acknowledged)", qid);
		unlink_quiet(queue_fd, name);
		return;
	}
	if (strcmp(ext, "env") != 0) {
		log_warn("spool: unexpected file queue/%s left alone",
		    safe_name(safe, name));
		return;
	}
	file_name(other, qid, ".msg");
	if (!exists_at(queue_fd, other))
		spool_quarantine(qid, "envelope without content");
}

/*
 * recover_pool - a commit of one or two messages makes its files and
 * queue/ durable, not free/, so after a crash free/ may still name a file
 * that was taken from it and now holds a queued message (or name one file
 * twice).  Handing it out again would overwrite that message: such names
 * are moved to quarantine/ (as "pool-NAME"; the file stays where it is).
 * A hidden name (".NAME") left by a pool_put cut short is removed.
 */
static void
recover_pool(void)
{
	struct dir_ent *queued, *pooled, key;
	size_t nq, np, i;
	char safe[64], safe_to[64], to[SPOOL_NAME_MAX + 8];

	if (dir_list(queue_fd, &queued, &nq, 1) == -1 ||
	    dir_list(free_fd, &pooled, &np, 1) == -1) {
		log_err("spool: cannot list queue/ and free/: %s",
		    strerror(errno));
		return;
	}
	for (i = 0; i < np; i++) {
		struct stat st;

		/* a file the smtpd could not write (left by a run where the
		 * smtpd shared the queue's user) leaves the pool */
		if (pool_owner_set && (fstatat(free_fd, pooled[i].name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
		    st.st_uid != pool_owner)) {
			unlink_quiet(free_fd, pooled[i].name);
			continue;
		}
		key.ino = pooled[i].ino;
		/* an empty queue/ lists as NULL, which bsearch may not
		 * be given even with no elements */
		if ((nq == 0 || bsearch(&key, queued, nq, sizeof(*queued),
		    ent_ino_cmp) == NULL) && (i == 0 ||
		    pooled[i - 1].ino != pooled[i].ino)) {
			if (pooled[i].name[0] == '.')
				unlink_quiet(free_fd, pooled[i].name);
			continue;
		}
		snprintf(to, sizeof(to), "pool-%s", pooled[i].name);
		log_warn("spool: free/%s is a name of a file in use (a crash "
		    "undid its removal from free/): moved to quarantine/%s",
		    safe_name(safe, pooled[i].name), safe_name(safe_to, to));
		if (renameat(free_fd, pooled[i].name, quarantine_fd, to) == -1)
			log_err("spool: cannot move free/%s: %s",
			    safe_name(safe, pooled[i].name), strerror(errno));
	}
	dir_free(queued, nq);
	dir_free(pooled, np);
}

/*
 * spool_recover - clean up after a crash.  Run it only while no other
 * process writes the spool (before smtpd starts): a commit half way
 * through its renames looks exactly like a crash leftover.  The removals
 * are not fsync'd: if a crash undoes them, the next start does them again.
 */
void
spool_recover(void)
{
	struct dir_ent *ents;
	size_t n, i, removed;

	check_init();
	removed = sweep_incoming(0);
	if (removed > 0)
		log_info("spool: removed %zu unfinished file(s) from incoming/",
		    removed);
	if (dir_list(queue_fd, &ents, &n, 0) == -1) {
		log_err("spool: cannot list queue/: %s", strerror(errno));
		return;
	}
	for (i = 0; i < n; i++)
		recover_one(ents[i].name);
	dir_free(ents, n);
	recover_pool();
}

/* spool_scan - call fn for each queued id (queue/ID.env), in id order */
void
spool_scan(void (*fn)(const char *qid, void *arg), void *arg)
{
	struct dir_ent *ents;
	char qid[QID_SIZE];
	const char *ext;
	size_t n, i;

	check_init();
	if (dir_list(queue_fd, &ents, &n, 0) == -1) {
		log_err("spool: cannot list queue/: %s", strerror(errno));
		return;
	}
	/* "ID.env" names sort like their ids: same length, same suffix */
	for (i = 0; i < n; i++) {
		ext = split_name(ents[i].name, qid);
		if (ext != NULL && strcmp(ext, "env") == 0)
			fn(qid, arg);
	}
	dir_free(ents, n);
}

/* read_env - the bytes of queue/ID.env into b (initialised here) */
static int
read_env(const char *qid, struct buf *b)
{
	char name[SPOOL_NAME_MAX];
	ssize_t n;
	int fd, saved;

	file_name(name, qid, ".env");
	fd = openat(queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -1;
	buf_init(b);
	for (;;) {
		buf_reserve(b, 16384);
		n = read(fd, b->data + b->len, 16384);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len > ENVELOPE_FILE_MAX)
			break; /* envelope_parse refuses it */
	}
	saved = errno;
	close(fd);
	if (n == -1) {
		buf_free(b);
		errno = saved;
		return -1;
	}
	return 0;
}

/* spool_load - read queue/ID.env; quarantine the message if corrupt */
int
spool_load(const char *qid, struct envelope *env)
{
	char err[200], name[SPOOL_NAME_MAX];
	struct stat st;
	struct buf b;

	check_init();
	envelope_init(env);
	if (!spool_qid_valid(qid)) {
		errno = EINVAL;
		return -1;
	}
	if (read_env(qid, &b) == -1) {
		if (errno != ENOENT)
			log_warn("%s: cannot read envelope: %s", qid,
			    strerror(errno));
		return -1;
	}
	if (envelope_parse(env, b.data, b.len, err, sizeof(err)) == -1) {
		buf_free(&b);
		spool_quarantine(qid, err);
		errno = EINVAL;
		return -1;
	}
	buf_free(&b);
	if (strcmp(env->id, qid) != 0) {
		envelope_free(env);
		spool_quarantine(qid, "the id in the envelope is not its name");
		errno = EINVAL;
		return -1;
	}
	/* content is immutable: another size means a crash cut short its
	 * removal (or worse); never deliver a damaged message */
	file_name(name, qid, ".msg");
	if (fstatat(queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (uint64_t)st.st_size != env->size) {
		envelope_free(env);
		spool_quarantine(qid, "the content's size is not the one in "
		    "the envelope");
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* spool_content_path - "$spool/queue/ID.msg" into out */
void
spool_content_path(const char *qid, char *out, size_t outlen)
{
	int n;

	check_init();
	n = snprintf(out, outlen, "%s/queue/%s.msg", spool_path, qid);
	if (n < 0 || (size_t)n >= outlen)
		panic("spool_content_path: buffer too small");
}

/* update_write - write and fsync queue/ID.env.tmp */
static int
update_write(const char *tmp, const struct buf *b)
{
	int fd = create_file(queue_fd, tmp, 0);
	int saved;

	if (fd == -1)
		return -1;
	if (util_write_all(fd, b->data, b->len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/*
 * spool_update - replace queue/ID.env atomically and durably: a reader (or
 * a crash) sees the old file or the new one, never a mix.  A message no
 * longer queued is not brought back (ENOENT).
 */
int
spool_update(const struct envelope *env)
{
	char name[SPOOL_NAME_MAX], tmp[SPOOL_NAME_MAX];
	struct buf b;
	int saved;

	check_init();
	if (!spool_qid_valid(env->id)) {
		errno = EINVAL;
		return -1;
	}
	file_name(name, env->id, ".env");
	file_name(tmp, env->id, ".env.tmp");
	if (!exists_at(queue_fd, name)) {
		errno = ENOENT;
		return -1;
	}
	buf_init(&b);
	envelope_format(env, &b);
	if (update_write(tmp, &b) == -1 ||
	    renameat(queue_fd, tmp, queue_fd, name) == -1 ||
	    fsync(queue_fd) == -1) {
		saved = errno;
		unlink_quiet(queue_fd, tmp);
		log_warn("%s: cannot update envelope: %s", env->id,
		    strerror(saved));
		buf_free(&b);
		errno = saved;
		return -1;
	}
	buf_free(&b);
	return 0;
}

/*
 * spool_remove - remove a finished message.  The envelope goes first: a
 * crash in between leaves content without envelope, which recovery
 * removes as never acknowledged, instead of an envelope without content.
 */
int
spool_remove(const char *qid)
{
	char name[SPOOL_NAME_MAX];

	check_init();
	if (!spool_qid_valid(qid)) {
		errno = EINVAL;
		return -1;
	}
	/* kept for new messages where the pool has room (the content
	 * emptied, so that free/ holds no mail), removed otherwise */
	file_name(name, qid, ".env");
	if (pool_put(name, 0) == -1 && unlink_quiet(queue_fd, name) == -1)
		goto fail;
	file_name(name, qid, ".msg");
	if (pool_put(name, 1) == -1 && unlink_quiet(queue_fd, name) == -1)
		goto fail;
	/*
	 * Not fsync'd (Postfix does not either): a removal that a crash undoes
	 * costs one more delivery attempt of a message already delivered --
	 * local delivery notices its earlier copy by name, a remote one may
	 * see it twice -- while a fsync here would cost one journal commit per
	 * message on the queue's hot path.  Nothing is ever lost this way.
	 */
	return 0;
fail:
	log_warn("%s: cannot remove queue/%s: %s", qid, name, strerror(errno));
	return -1;
}

int
spool_sync_queue(void)
{
	check_init();
	if (fsync(queue_fd) == -1) {
		log_err("spool: cannot sync queue/: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* quarantine_file - rename queue/ID.ext into quarantine/ */
static void
quarantine_file(const char *qid, const char *ext)
{
	char name[SPOOL_NAME_MAX];

	file_name(name, qid, ext);
	if (renameat(queue_fd, name, quarantine_fd, name) == -1 &&
	    errno != ENOENT)
		log_err("%s: cannot move queue/%s to quarantine/: %s", qid,
		    name, strerror(errno));
}

/*
 * spool_quarantine - move a message's files to quarantine/, envelope first
 * so it stops being queued at once.  Not fsync'd: if a crash undoes the
 * move, the next start finds the same bad file and moves it again.
 */
void
spool_quarantine(const char *qid, const char *why)
{
	char safe[256];

	check_init();
	if (!spool_qid_valid(qid)) {
		log_err("spool: refusing to quarantine bad id");
		return;
	}
	util_sanitise(safe, sizeof(safe) - 1, why, strlen(why));
	quarantine_file(qid, ".env");
	quarantine_file(qid, ".msg");
	log_warn("%s: quarantined: %s", qid, safe);
}

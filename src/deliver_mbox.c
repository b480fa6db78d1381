/*
 * deliver_mbox.c - local delivery by appending to an mbox file, the way
 * Postfix's local(8) does and Debian's mail readers (mutt, mailx, Dovecot)
 * expect.
 *
 * The one idea: a message is appended whole or not at all, under every
 * lock a reader may take.  What is appended:
 *
 *	From SENDER Sat Dec  5 13:13:52 2026
 *	Return-Path: <SENDER>
 *	Delivered-To: RECIPIENT
 *	...the message, LF line ends, ">*From " lines quoted...
 *	(an empty line)
 *
 * SENDER is the envelope sender, MAILER-DAEMON for <>, with white space
 * and control characters as '_' so it stays one word.  The date is the
 * delivery time in asctime(3) form and local time, as Postfix writes it
 * and as readers show it (the line has no zone).  Quoting is mboxrd (a '>'
 * before every ">*From " line, deliver.c): a reader can undo it exactly,
 * where mboxo's quoting of "From " alone cannot be told from a line that
 * began with ">From ".  The message always ends in LF, and if the file
 * did not (written by something else), an LF goes first: a separator
 * glued to the end of a line would not be one.
 *
 * Locks, taken in this order (Postfix's and Dovecot's: two writers never
 * hold one each and wait for the other) and released in reverse:
 *   1. a dot-lock, PATH.lock made with O_CREAT|O_EXCL, which mutt, mailx
 *      and liblockfile use; one older than MBOX_DOTLOCK_STALE_SEC was left
 *      by a writer that died and is removed.  In a directory this user
 *      cannot write (Debian's /var/mail is root:mail 2775 and tern is not
 *      setgid mail) there is no dot-lock to take: we go on with the fcntl
 *      lock alone, as a mail reader without a setgid helper does.
 *   2. an fcntl write lock on the whole file, which Dovecot, mutt and
 *      procmail take.
 * Readers differ in the lock they honour, so a writer must take both.
 * Both are tried without blocking every MBOX_LOCK_POLL_MS until
 * MBOX_LOCK_WAIT_MS have passed in all, then the delivery is deferred
 * ("mailbox locked") and the queue retries later.  A poll loop rather than
 * F_SETLKW under alarm(): one deadline covers both locks, and the delivery
 * child's signal handling stays as it is.  Once locked, the path must
 * still name the file we opened (a reader may have removed an empty mbox
 * or renamed a rewritten one in place while we waited); if not, we open
 * it again.
 *
 * The size is remembered once the locks are held; any failure after
 * writing began (disk full, quota, a file size limit, an I/O error) cuts
 * the file back to it, so an mbox never ends in half a message that a
 * reader would run into the next one.  No one else appends while we hold
 * the locks, so the cut removes only what we wrote.
 *
 * The file is opened O_NOFOLLOW and O_NONBLOCK (a FIFO put there must not
 * hang the delivery) and must be a regular file with one link: a symbolic
 * or hard link to another file in a directory the user can write is
 * refused, as Postfix's safe_open() refuses it.
 *
 * Unlike a Maildir delivery this is not idempotent: a crash after the
 * fsync and before the queue records the delivery gives a second copy
 * when the message is retried (the same holds for Postfix).
 */
#include "deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* how long a delivery waits for the two locks together before deferring */
#define MBOX_LOCK_WAIT_MS (60 * 1000)
/* the pause between two tries of a busy lock */
#define MBOX_LOCK_POLL_MS 50
/* a dot-lock older than this (by mtime) was left by a writer that died;
 * writing one message takes far less */
#define MBOX_DOTLOCK_STALE_SEC (5 * 60)
/* times the mbox is opened again when it was replaced while we waited */
#define MBOX_REOPEN_MAX 5
/* the mode of a new mbox */
#define MBOX_MODE 0600
/* the longest sender written in the From_ line (RFC 5321 4.5.3.1.3: 256) */
#define MBOX_SENDER_MAX 512

/* the state of one delivery */
struct mbox {
	const char *path;
	const char *qid;
	char *lock_path;   /* PATH.lock */
	int dotlocked;     /* lock_path is ours to remove */
	int fd;            /* the mbox, fcntl-locked once mbox_lock_open
	                    * succeeded; -1 when closed */
	off_t size;        /* its size before this delivery */
	int64_t deadline;  /* util_mono_ms() when waiting for locks ends */
};

/* sys_err - "what path: strerror(errno)" into err; errno is kept for the
 * caller; returns -1 */
static int
sys_err(char *err, size_t errlen, const char *what, const char *path)
{
	int saved = errno;

	if (snprintf(err, errlen, "%s %s: %s", what, path,
	    strerror(saved)) >= (int)errlen)
		log_debug("cut an error text: %s %s", what, path);
	errno = saved;
	return -1;
}

/* lock_wait - sleep before the next try of a busy lock; -1 once the
 * deadline has passed */
static int
lock_wait(const struct mbox *m)
{
	int64_t left = m->deadline - util_mono_ms();
	struct timespec ts;

	if (left <= 0)
		return -1;
	if (left > MBOX_LOCK_POLL_MS)
		left = MBOX_LOCK_POLL_MS;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)left * 1000000L;
	nanosleep(&ts, NULL); /* woken early by a signal: just try sooner */
	return 0;
}

/*
 * dotlock_stale - 1 when the lock file is gone or was stale and is
 * removed now (try again at once), 0 when it is held.  Two writers may
 * both find the same stale lock; the second may then remove the first's
 * new lock.  Postfix and liblockfile accept this window: it needs a
 * writer that died, and lasts from one stat to one unlink.
 */
static int
dotlock_stale(const struct mbox *m)
{
	struct stat st;

	if (lstat(m->lock_path, &st) == -1)
		return errno == ENOENT;
	if (time(NULL) - st.st_mtime < MBOX_DOTLOCK_STALE_SEC)
		return 0;
	if (unlink(m->lock_path) == -1 && errno != ENOENT) {
		log_warn("%s: cannot remove stale lock file %s: %s", m->qid,
		    m->lock_path, strerror(errno));
		return 0;
	}
	log_warn("%s: removed stale lock file %s", m->qid, m->lock_path);
	return 1;
}

/* dotlock_error - the outcome of a lock file that cannot be made */
static int
dotlock_error(const struct mbox *m, struct deliver_outcome *out)
{
	if (errno == ENOENT) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
		    "cannot deliver to mailbox %s: its directory does not "
		    "exist", m->path);
		return -1;
	}
	deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
	    "cannot create lock file %s: %s", m->lock_path, strerror(errno));
	return -1;
}

/* dotlock_take - make PATH.lock, waiting while another writer holds it;
 * 0 also when the directory does not let us make one */
static int
dotlock_take(struct mbox *m, struct deliver_outcome *out)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd;

	for (;;) {
		fd = open(m->lock_path, flags, 0600);
		if (fd != -1) {
			close(fd);
			m->dotlocked = 1;
			return 0;
		}
		if (errno == EACCES || errno == EROFS) {
			/* a mail spool only group mail may write: the fcntl
			 * lock alone, as readers without a setgid helper */
			log_debug("%s: no lock file %s: %s; fcntl lock only",
			    m->qid, m->lock_path, strerror(errno));
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EEXIST)
			return dotlock_error(m, out);
		if (dotlock_stale(m))
			continue;
		if (lock_wait(m) == -1)
			break;
	}
	deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
	    "mailbox %s locked: lock file %s is held", m->path, m->lock_path);
	return -1;
}

/* mbox_close - close the mbox (which also drops its fcntl lock) */
static void
mbox_close(struct mbox *m)
{
	int saved = errno;

	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
	errno = saved;
}

/* open_error - the outcome of an mbox that cannot be opened */
static int
open_error(const struct mbox *m, struct deliver_outcome *out)
{
	const char *why = NULL;

	if (errno == ELOOP)
		why = "is a symbolic link";
	else if (errno == EISDIR || errno == ENXIO)
		why = "is not a regular file"; /* ENXIO: a FIFO */
	else if (errno == ENOENT)
		why = "is in a directory that does not exist";
	if (why != NULL) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
		    "mailbox %s %s", m->path, why);
		return -1;
	}
	deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
	    "cannot open mailbox %s: %s", m->path, strerror(errno));
	return -1;
}

/* mbox_open - open (or create) the mbox for append: a regular file with
 * one link, never through a symbolic link */
static int
mbox_open(struct mbox *m, struct deliver_outcome *out)
{
	int flags = O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC;
	struct stat st;

	m->fd = open(m->path, flags, MBOX_MODE);
	if (m->fd == -1)
		return open_error(m, out);
	if (fstat(m->fd, &st) == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "cannot stat mailbox %s: %s", m->path, strerror(errno));
		mbox_close(m);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
		    S_ISREG(st.st_mode) ? "mailbox %s has more than one link" :
		    "mailbox %s is not a regular file", m->path);
		mbox_close(m);
		return -1;
	}
	/* O_NONBLOCK was only for the open */
	flags = fcntl(m->fd, F_GETFL);
	if (flags == -1 || fcntl(m->fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "cannot set flags of mailbox %s: %s", m->path,
		    strerror(errno));
		mbox_close(m);
		return -1;
	}
	return 0;
}

/* fcntl_take - an fcntl write lock on the whole mbox, waiting while
 * another process holds one */
static int
fcntl_take(struct mbox *m, struct deliver_outcome *out)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	for (;;) {
		if (fcntl(m->fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EACCES && errno != EAGAIN) {
			deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
			    "cannot lock mailbox %s: %s", m->path,
			    strerror(errno));
			return -1;
		}
		if (lock_wait(m) == -1)
			break;
	}
	deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
	    "mailbox %s locked by another process", m->path);
	return -1;
}

/* same_file - 1 when the path still names the open mbox */
static int
same_file(const struct mbox *m)
{
	struct stat ps, fs;

	if (lstat(m->path, &ps) == -1 || fstat(m->fd, &fs) == -1)
		return 0;
	return ps.st_dev == fs.st_dev && ps.st_ino == fs.st_ino;
}

/* mbox_lock_open - open the mbox and take its fcntl lock, again when it
 * was replaced or removed while we waited for the lock */
static int
mbox_lock_open(struct mbox *m, struct deliver_outcome *out)
{
	int i;

	for (i = 0; i < MBOX_REOPEN_MAX; i++) {
		if (mbox_open(m, out) == -1)
			return -1;
		if (fcntl_take(m, out) == -1) {
			mbox_close(m);
			return -1;
		}
		if (same_file(m))
			return 0;
		log_info("%s: mailbox %s was replaced while locking; again",
		    m->qid, m->path);
		mbox_close(m);
	}
	deliver_outcome_set(out, DELIVER_TEMP, "4.2.0",
	    "mailbox %s keeps being replaced", m->path);
	return -1;
}

/* mbox_release - the locks in reverse order, then forget the lock path */
static void
mbox_release(struct mbox *m)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (m->fd != -1)
		fcntl(m->fd, F_SETLK, &fl);
	mbox_close(m);
	if (m->dotlocked && unlink(m->lock_path) == -1)
		log_err("%s: cannot remove lock file %s: %s", m->qid,
		    m->lock_path, strerror(errno));
	m->dotlocked = 0;
	free(m->lock_path);
	m->lock_path = NULL;
}

/* from_line - "From SENDER DATE\n" (see the top of the file) */
static void
from_line(const struct deliver_req *req, struct buf *b)
{
	static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed",
		"Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	const char *rp = req->return_path;
	char *raw, *p, *sender;
	time_t now = time(NULL);
	struct tm tm;

	raw = xstrdup(rp != NULL && *rp != '\0' ? rp : "MAILER-DAEMON");
	for (p = raw; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			*p = '_';
	/* cut, and invalid UTF-8 as '?' */
	sender = util_sanitise_dup(raw, MBOX_SENDER_MAX);
	/* asctime's form without its locale or its fixed buffer */
	if (localtime_r(&now, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(b, "From %s %s %s %2d %02d:%02d:%02d %d\n", sender,
	    wday[tm.tm_wday % 7], mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	free(sender);
	free(raw);
}

/* put - append n octets; -1 with errno and err set */
static int
put(const struct mbox *m, const void *p, size_t n, char *err, size_t errlen)
{
	if (util_write_all(m->fd, p, n) == -1)
		return sys_err(err, errlen, "cannot write mailbox", m->path);
	return 0;
}

/* end_lf - an LF first when the mbox does not end in one */
static int
end_lf(const struct mbox *m, char *err, size_t errlen)
{
	char c;
	ssize_t n;

	if (m->size == 0)
		return 0;
	do
		n = pread(m->fd, &c, 1, m->size - 1);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return sys_err(err, errlen, "cannot read mailbox", m->path);
	if (n == 1 && c == '\n')
		return 0;
	return put(m, "\n", 1, err, errlen);
}

/*
 * fsync_dir_of - make the mbox's directory entry durable: an mbox that was
 * empty may have been created just now.  A directory we may not open for
 * reading is left as it is (the file's own fsync is all we can do); a
 * failed fsync is an error.
 */
static int
fsync_dir_of(const struct mbox *m, char *err, size_t errlen)
{
	char *dir = xstrdup(m->path), *slash = strrchr(dir, '/');
	int fd, r = 0;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	fd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (fd == -1) {
		log_debug("%s: cannot open %s to fsync it: %s", m->qid, dir,
		    strerror(errno));
	} else {
		if (fsync(fd) == -1)
			r = sys_err(err, errlen, "cannot fsync directory", dir);
		close(fd);
	}
	free(dir);
	return r;
}

/* mbox_write - the separator line, the message and the empty line after
 * it, made durable; -1 with errno and err set */
static int
mbox_write(const struct mbox *m, const struct deliver_req *req, char *err,
    size_t errlen)
{
	unsigned flags = DELIVER_WRITE_FROM_QUOTE | DELIVER_WRITE_END_LF;
	struct buf from;
	char *what;
	int64_t n;
	int r, saved;

	if (end_lf(m, err, errlen) == -1)
		return -1;
	buf_init(&from);
	from_line(req, &from);
	r = put(m, from.data, from.len, err, errlen);
	saved = errno;
	buf_free(&from);
	errno = saved;
	if (r == -1)
		return -1;
	what = xasprintf("mailbox %s", m->path);
	n = deliver_write_message(m->fd, req, flags, what, err, errlen);
	saved = errno;
	free(what);
	errno = saved;
	if (n == -1)
		return -1;
	if (put(m, "\n", 1, err, errlen) == -1)
		return -1;
	if (fsync(m->fd) == -1)
		return sys_err(err, errlen, "cannot fsync mailbox", m->path);
	if (m->size == 0)
		return fsync_dir_of(m, err, errlen);
	return 0;
}

/* write_failed - the outcome of a failed write: a full disk, a quota or a
 * file size limit is a full mailbox */
static void
write_failed(struct deliver_outcome *out, int e, const char *err)
{
	if (e == ENOSPC || e == EDQUOT || e == EFBIG) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.2.2",
		    "mailbox full: %s", err);
		return;
	}
	deliver_outcome_set(out, DELIVER_TEMP, "4.3.0", "%s", err);
}

/* mbox_append - append the message; on failure cut the mbox back to its
 * size before (see the top of the file) */
static int
mbox_append(struct mbox *m, const struct deliver_req *req,
    struct deliver_outcome *out)
{
	char err[DELIVER_REASON_MAX + 1] = "";
	struct stat st;
	int e;

	if (fstat(m->fd, &st) == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "cannot stat mailbox %s: %s", m->path, strerror(errno));
		return -1;
	}
	m->size = st.st_size;
	if (mbox_write(m, req, err, sizeof(err)) == 0)
		return 0;
	e = errno;
	if (ftruncate(m->fd, m->size) == -1 || fsync(m->fd) == -1) {
		e = errno;
		log_err("%s: cannot truncate mailbox %s back to %lld octets: "
		    "%s", m->qid, m->path, (long long)m->size, strerror(e));
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "%s; cannot truncate it back: %s", err, strerror(e));
		return -1;
	}
	write_failed(out, e, err);
	return -1;
}

/* deliver_mbox - append to the mbox file at path, created 0600 when
 * missing, under a dot-lock and an fcntl lock (see the top of the file) */
void
deliver_mbox(const char *path, const struct deliver_req *req,
    struct deliver_outcome *out)
{
	struct mbox m = { .path = path, .fd = -1 };

	m.qid = req->qid != NULL ? req->qid : "-";
	m.lock_path = xasprintf("%s.lock", path);
	m.deadline = util_mono_ms() + MBOX_LOCK_WAIT_MS;
	if (dotlock_take(&m, out) == 0 && mbox_lock_open(&m, out) == 0 &&
	    mbox_append(&m, req, out) == 0)
		deliver_outcome_set(out, DELIVER_OK, "2.0.0",
		    "delivered to mailbox %s", path);
	mbox_release(&m);
}

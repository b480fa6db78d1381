/*
 * pickup.c - the queue process takes local submissions from the drop
 * directory ($home/spool/drop, written by tern-drop, see tern_drop.c and
 * drop.h) into the queue, as Postfix's pickup(8) does.
 *
 * It looks at start, when tern-drop sends a datagram to drop/notice, and
 * every PICKUP_SCAN_MS in case a wake-up was lost (the daemon was down, or
 * the socket busy).  One file at a time: read strictly (drop.c), the
 * submitter's identity taken from the file's owner (never from its
 * content), the content made (Received: naming the uid, missing Date:,
 * Message-ID:, From: added, Bcc: removed), committed through the spool
 * like any message, and the drop file removed only once the commit is
 * durable.  A crash between the commit and the removal queues the message
 * twice (the duplicate is preferred to a loss).  A file that cannot be
 * read is moved to spool/quarantine/drop-NAME with a log line, never
 * silently dropped; a spool that cannot take the message (full disk)
 * leaves the file for a later try.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "drop.h"
#include "envelope.h"
#include "pickup.h"
#include "sched.h"
#include "spool.h"
#include "util.h"

/* the safety-net scan of the drop directory */
#define PICKUP_SCAN_MS 30000
/* drop files taken per scan (the scan runs again until none is left) */
#define PICKUP_BATCH 256
/* a "tmp." file older than this was left by a tern-drop that died */
#define PICKUP_STALE_S (24 * 3600)

static struct {
	const struct conf *conf;
	char *dir;           /* $home/spool/drop */
	int dfd;
	int sock;
	struct event *notice;
	struct event *timer;
	struct event *scan;  /* run a scan from the loop */
	char **names;        /* the current scan's files */
	size_t nnames, next;
	int busy;            /* a commit is in flight */
	int again;           /* scan again when this one is done */
	int draining;        /* handing over: take no more files */
} pk = { .dfd = -1, .sock = -1 };

/* a drop file's name, at most (tern-drop's are about 30 octets) */
#define PICKUP_NAME_MAX 64

struct pickup_job {
	char name[PICKUP_NAME_MAX];
	char qid[QID_SIZE];
};

static void pickup_next(void);

/* quarantine - move a drop file aside (it stays readable by the admin) */
static void
quarantine(const char *name, long uid, const char *why)
{
	char *to = xasprintf("%s/quarantine/drop-%s", spool_dir(), name);

	if (renameat(pk.dfd, name, AT_FDCWD, to) == -1)
		log_err("drop %s (uid %ld): cannot quarantine: %s; %s", name,
		    uid, why, strerror(errno));
	else
		log_warn("drop %s (uid %ld): quarantined: %s", name, uid, why);
	free(to);
}

/* commit_done - the message is durable (or not): remove the drop file */
static void
commit_done(int ok, int err, const char *qid, void *arg)
{
	struct pickup_job *job = arg;

	if (ok) {
		if (unlinkat(pk.dfd, job->name, 0) == -1)
			log_err("%s: cannot remove drop file %s: %s", qid,
			    job->name, strerror(errno));
		sched_add(qid);
	} else
		log_err("drop %s: cannot queue: %s; trying again later",
		    job->name, strerror(err));
	free(job);
	pk.busy = 0;
	if (!ok) {
		pk.next = pk.nnames; /* the periodic scan tries again */
		pk.again = 0;
	}
	pickup_next();
}

/* read_file - the whole of fd (at most max octets) into b; -1 too big */
static int
read_file(int fd, struct buf *b, uint64_t max)
{
	ssize_t n;

	for (;;) {
		buf_reserve(b, 65536);
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -1;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len > max)
			return -1;
	}
}

/* queue_drop - a parsed drop into the spool; 0 when the commit started */
static int
queue_drop(const char *name, const struct drop *d, long uid,
    const char *login)
{
	const struct conf *c = pk.conf;
	struct drop_facts f = { .uid = uid, .hostname = c->hostname,
		.now = time(NULL) };
	char *self = xasprintf("%s@%s", login, c->hostname);
	struct pickup_job *job;
	struct spool_tx *tx;
	struct envelope env;
	struct buf content;
	size_t i;

	f.sender = d->sender != NULL ? d->sender : self;
	f.from_addr = f.sender[0] != '\0' ? f.sender : self;
	tx = spool_tx_begin();
	if (tx == NULL) {
		log_err("drop %s: cannot create a queue file: %s; trying "
		    "again later", name, strerror(errno));
		free(self);
		return -1;
	}
	f.qid = spool_tx_id(tx);
	buf_init(&content);
	drop_compose(d, &f, &content);
	if (spool_tx_write(tx, content.data, content.len) == -1) {
		log_err("drop %s: cannot write the queue file: %s; trying "
		    "again later", name, strerror(spool_tx_error(tx)));
		spool_tx_abort(tx);
		buf_free(&content);
		free(self);
		return -1;
	}
	envelope_init(&env);
	env.arrival = f.now;
	envelope_set(&env.sender, f.sender);
	envelope_set(&env.helo, "localhost");
	envelope_set(&env.client_addr, "local");
	envelope_set(&env.client_name, "localhost");
	envelope_set(&env.protocol, "local");
	env.uid = uid;
	env.body_8bit = util_has_8bit(content.data, content.len);
	for (i = 0; i < d->nrcpts; i++)
		envelope_add_rcpt(&env, d->rcpts[i]);
	job = xcalloc(1, sizeof(*job));
	snprintf(job->name, sizeof(job->name), "%s", name);
	snprintf(job->qid, sizeof(job->qid), "%s", f.qid);
	log_info("%s: uid=%ld, from=<%s>, nrcpt=%zu, size=%zu (local drop)",
	    job->qid, uid, f.sender, env.nrcpts, content.len);
	spool_tx_commit(tx, &env, commit_done, job);
	envelope_free(&env);
	buf_free(&content);
	free(self);
	return 0;
}

/*
 * take - one drop file: 0 when its commit started (pickup_next goes on
 * when it ends), 1 when it is dealt with (gone, quarantined), -1 when it
 * must wait for a later scan
 */
static int
take(const char *name)
{
	uint64_t max = pk.conf->message_size + DROP_HEAD_MAX;
	char err[128], lname[64];
	struct passwd *pw;
	struct stat st;
	struct drop d;
	struct buf b;
	int fd, rc;

	fd = openat(pk.dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT)
		return 1;
	/* out of descriptors or memory: the file is fine, try later */
	if (fd == -1 && (errno == EMFILE || errno == ENFILE ||
	    errno == ENOMEM || errno == EINTR)) {
		log_warn("drop %s: %s; trying again later", name,
		    strerror(errno));
		return -1;
	}
	if (fd == -1 || fstat(fd, &st) == -1) {
		quarantine(name, -1, strerror(errno));
		if (fd != -1)
			close(fd);
		return 1;
	}
	/* a link to someone else's file would carry their uid */
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		quarantine(name, (long)st.st_uid, "not a regular file with "
		    "one link");
		return 1;
	}
	buf_init(&b);
	rc = (uint64_t)st.st_size > max ? -1 : read_file(fd, &b, max);
	close(fd);
	if (rc == -1) {
		buf_free(&b);
		quarantine(name, (long)st.st_uid, "larger than limits "
		    "message-size= allows, or unreadable");
		return 1;
	}
	rc = drop_parse(&d, b.data, b.len, pk.conf->max_rcpts, err,
	    sizeof(err));
	/* the message as sendmail checked it: what we add is not counted */
	if (rc == 0 && d.content_len > pk.conf->message_size) {
		snprintf(err, sizeof(err), "larger than limits message-size=");
		rc = -1;
	}
	if (rc == -1) {
		drop_free(&d);
		buf_free(&b);
		quarantine(name, (long)st.st_uid, err);
		return 1;
	}
	pw = getpwuid(st.st_uid);
	if (pw != NULL && strlen(pw->pw_name) < sizeof(lname) &&
	    drop_name_ok(pw->pw_name))
		snprintf(lname, sizeof(lname), "%s", pw->pw_name);
	else
		snprintf(lname, sizeof(lname), "uid%ld", (long)st.st_uid);
	rc = queue_drop(name, &d, (long)st.st_uid, lname);
	drop_free(&d);
	buf_free(&b);
	return rc;
}

/* names_free - forget the current scan's list */
static void
names_free(void)
{
	size_t i;

	for (i = 0; i < pk.nnames; i++)
		free(pk.names[i]);
	free(pk.names);
	pk.names = NULL;
	pk.nnames = pk.next = 0;
}

/* pickup_next - take the scan's files one after the other */
static void
pickup_next(void)
{
	int rc;

	while (!pk.busy && !pk.draining && pk.next < pk.nnames) {
		rc = take(pk.names[pk.next++]);
		if (rc == 0)
			pk.busy = 1;
		else if (rc == -1)
			pk.next = pk.nnames;
	}
	if (pk.busy)
		return;
	names_free();
	if (pk.again && !pk.draining) {
		pk.again = 0;
		event_active(pk.scan, 0, 0);
	}
}

/* stale - remove a temporary file a dead tern-drop left behind */
static void
stale(const char *name)
{
	struct stat st;

	if (fstatat(pk.dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_mtime < time(NULL) - PICKUP_STALE_S &&
	    unlinkat(pk.dfd, name, 0) == 0)
		log_info("drop %s (uid %ld): removed, left unfinished",
		    name, (long)st.st_uid);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* scan - list the drop directory and take what is there, oldest first */
static void
scan(void)
{
	struct dirent *de;
	DIR *dir;
	int fd;

	if (pk.draining)
		return;
	if (pk.busy || pk.nnames > 0) {
		pk.again = 1;
		return;
	}
	fd = openat(pk.dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd == -1 ? NULL : fdopendir(fd);
	if (dir == NULL) {
		log_err("%s: %s", pk.dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "tmp.", 4) == 0)
			stale(de->d_name);
		if (strncmp(de->d_name, "d.", 2) != 0 ||
		    strlen(de->d_name) >= PICKUP_NAME_MAX)
			continue;
		if (pk.nnames == PICKUP_BATCH) {
			pk.again = 1;
			break;
		}
		pk.names = xreallocarray(pk.names, pk.nnames + 1,
		    sizeof(*pk.names));
		pk.names[pk.nnames++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (pk.nnames > 0)
		qsort(pk.names, pk.nnames, sizeof(*pk.names), name_cmp);
	pickup_next();
}

static void
scan_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	scan();
}

/* notice_cb - tern-drop stored a file: read the wake-ups, then scan */
static void
notice_cb(evutil_socket_t fd, short what, void *arg)
{
	char b[64];
	int i;

	(void)what;
	(void)arg;
	/* many wake-ups, one scan */
	for (i = 0; i < 64 && recv(fd, b, sizeof(b), 0) >= 0; i++)
		;
	scan();
}

/* notice_bind - drop/notice, writable by anyone who can reach it (only
 * tern-drop can: the directory is searchable by its group alone) */
static int
notice_bind(void)
{
	char *path = xasprintf("%s/notice", pk.dir);
	int fd = util_dgram_bind(path);

	if (fd == -1 || chmod(path, 0666) == -1) {
		log_warn("%s: %s; local mail is picked up by the periodic "
		    "scan", path, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/* pickup_start - bind drop/notice, scan now and from time to time */
void
pickup_start(const struct conf *c, struct event_base *base)
{
	struct timeval tv = { PICKUP_SCAN_MS / 1000, 0 };

	pk.conf = c;
	pk.dir = xasprintf("%s/drop", spool_dir());
	pk.dfd = open(pk.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pk.dfd == -1) {
		log_warn("%s: %s; local submission (sendmail) is off", pk.dir,
		    strerror(errno));
		return;
	}
	pk.timer = event_new(base, -1, EV_PERSIST, scan_cb, NULL);
	pk.scan = event_new(base, -1, 0, scan_cb, NULL);
	if (pk.timer == NULL || pk.scan == NULL)
		fatal("cannot create the pickup events");
	pk.sock = notice_bind();
	if (pk.sock != -1) {
		pk.notice = event_new(base, pk.sock, EV_READ | EV_PERSIST,
		    notice_cb, NULL);
		if (pk.notice == NULL)
			fatal("cannot create the pickup events");
		event_add(pk.notice, NULL);
	}
	event_add(pk.timer, &tv);
	scan();
}

/* pickup_drain - take no more drop files (handover) */
void
pickup_drain(void)
{
	pk.draining = 1;
}

/* pickup_busy - 1 while a drop's commit is in flight */
int
pickup_busy(void)
{
	return pk.busy;
}

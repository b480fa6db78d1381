/*
 * deliver_maildir.c - local delivery into a Maildir
 * (https://cr.yp.to/proto/maildir.html).
 *
 * The one idea: a message is written in tmp/, fsync'd, renamed into new/
 * and new/ is fsync'd, so a reader never sees half a message and a message
 * reported delivered survives a power cut.  The file name is derived only
 * from the queue id, the recipient's index in the envelope and our host
 * name, never from the clock or the pid:
 *
 *	<qid>.<qid>_<index>.<host>
 *	e.g. 0H3K2M9QX7A1B2.0H3K2M9QX7A1B2_0.mx.example.org
 *
 * The first part stands where Maildir writers put the time: the queue id
 * is itself sortable by arrival time, so `ls new/` lists mail in arrival
 * order.  The middle part `<qid>_<index>` is unique per recipient of a
 * queued message.  Because the whole name is the same at every attempt, a
 * delivery repeated after a crash (between the rename and the envelope
 * update) finds new/NAME, or cur/NAME:2,FLAGS once a reader has seen it,
 * and reports success without writing a second copy.  The host part has
 * '/' and ':' written as \057 and \072 as the Maildir specification asks
 * (we also escape '\' and non-printable bytes the same way), so the name
 * never contains '/' or ':' and never starts with '.'.
 *
 * The message is written as mail readers expect it, with LF line ends
 * (deliver_write_message).  This runs in a delivery child, off the queue
 * process's loop, so looking through cur/ for an earlier copy may take
 * as long as a large Maildir needs.
 */
#include "deliver.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envelope.h"
#include "util.h"

/* octets of the escaped host name kept in a file name (NAME_MAX is 255) */
#define MAILDIR_HOST_MAX 128

/* set_err - "what path: strerror(errno)" into err; a reason too long is
 * cut (it only goes into a log line and a bounce) */
static void
set_err(char *err, size_t errlen, const char *what, const char *path)
{
	if (snprintf(err, errlen, "%s %s: %s", what, path,
	    strerror(errno)) >= (int)errlen)
		log_debug("cut an error text: %s %s", what, path);
}

/* qid_safe - 1 when the queue id is alphanumeric and of sane length (it
 * becomes part of a file name) */
static int
qid_safe(const char *qid)
{
	size_t len = strlen(qid);
	size_t i;

	if (len == 0 || len > QID_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)qid[i]))
			return 0;
	return 1;
}

/* host_escape - the host name as a Maildir name part: '/', ':', '\' and
 * non-printable bytes as \ooo, cut to at most outlen - 1 octets between
 * escapes.  out needs outlen. */
static void
host_escape(const char *host, char *out, size_t outlen)
{
	const unsigned char *h = (const unsigned char *)host;
	size_t o = 0;

	if (*h == '\0')
		h = (const unsigned char *)"localhost";
	for (; *h != '\0'; h++) {
		int esc = *h == '/' || *h == ':' || *h == '\\' || *h <= 0x20 ||
		    *h >= 0x7f;
		size_t need = esc ? 4 : 1;

		if (o + need >= outlen)
			break;
		if (esc)
			snprintf(out + o, 5, "\\%03o", (unsigned)*h);
		else
			out[o] = (char)*h;
		o += need;
	}
	out[o] = '\0';
}

/* maildir_name - the deterministic file name (see the top of the file);
 * -1 when the queue id is unusable */
static int
maildir_name(const struct deliver_req *req, char *out, size_t outlen)
{
	char host[MAILDIR_HOST_MAX + 1];
	int n;

	if (!qid_safe(req->qid))
		return -1;
	host_escape(req->hostname ? req->hostname : "", host, sizeof(host));
	n = snprintf(out, outlen, "%s.%s_%zu.%s", req->qid, req->qid,
	    req->rcpt_index, host);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}

/* path_join - "dir/sub" or "dir/sub/name" (name may be NULL); -1 with
 * errno ENAMETOOLONG when it does not fit */
static int
path_join(char *out, size_t outlen, const char *dir, const char *sub,
    const char *name)
{
	int n;

	if (name != NULL)
		n = snprintf(out, outlen, "%s/%s/%s", dir, sub, name);
	else
		n = snprintf(out, outlen, "%s/%s", dir, sub);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* fsync_dir - make a directory's entries durable */
static int
fsync_dir(const char *path)
{
	int fd, r, saved;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* fsync_parent - fsync the directory holding path, so a directory just
 * made there survives a crash */
static int
fsync_parent(const char *path)
{
	char parent[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(parent)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(parent, path);
	slash = strrchr(parent, '/');
	if (slash == NULL)
		return fsync_dir(".");
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return fsync_dir(parent);
}

/* mkdir_one - make one directory 0700 unless it is there already */
static int
mkdir_one(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return fsync_parent(path);
	if (errno != EEXIST)
		return -1;
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* mkdir_p - make path and its missing parents, like mkdir -p; on failure
 * path is cut where it failed (for the error text) */
static int
mkdir_p(char *path)
{
	char *p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		if (mkdir_one(path) == -1)
			return -1;
		*p = '/';
	}
	return mkdir_one(path);
}

/* is_dir - 1 when path is a directory */
static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* maildir_prepare - make sure path, path/tmp, path/new, path/cur exist */
static int
maildir_prepare(const char *path, char *err, size_t errlen)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char p[PATH_MAX];
	size_t i;

	for (i = 0; i < 3; i++) {
		if (path_join(p, sizeof(p), path, subs[i], NULL) == -1) {
			set_err(err, errlen, "cannot use maildir", path);
			return -1;
		}
		if (is_dir(p))
			continue;
		/* mkdir_p makes the Maildir and its parents on the way */
		if (mkdir_p(p) == -1) {
			set_err(err, errlen, "cannot create directory", p);
			return -1;
		}
	}
	return 0;
}

/* name_matches - 1 when entry is name itself or name followed by ':'
 * (the Maildir info, "NAME:2,S") or ',' (a size a reader may append,
 * "NAME,S=1234") */
static int
name_matches(const char *entry, const char *name, size_t namelen)
{
	if (strncmp(entry, name, namelen) != 0)
		return 0;
	return entry[namelen] == '\0' || entry[namelen] == ':' ||
	    entry[namelen] == ',';
}

/* find_in_cur - 1 when cur/ holds a copy named name[:info], 0 if not, -1
 * on error */
static int
find_in_cur(const char *path, const char *name, char *err, size_t errlen)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	size_t namelen = strlen(name);
	int found = 0;

	if (path_join(p, sizeof(p), path, "cur", NULL) == -1 ||
	    (d = opendir(p)) == NULL) {
		set_err(err, errlen, "cannot read", p);
		return -1;
	}
	errno = 0;
	while (!found && (de = readdir(d)) != NULL)
		found = name_matches(de->d_name, name, namelen);
	if (!found && errno != 0) {
		set_err(err, errlen, "cannot read", p);
		closedir(d);
		return -1;
	}
	closedir(d);
	return found;
}

/* find_earlier - 1 when an earlier attempt delivered this copy (new/NAME,
 * or with check_cur cur/NAME[:info]), 0 if not, -1 on error */
static int
find_earlier(const char *path, const char *name, int check_cur, char *err,
    size_t errlen)
{
	char p[PATH_MAX];
	struct stat st;

	if (path_join(p, sizeof(p), path, "new", name) == -1) {
		set_err(err, errlen, "cannot use", path);
		return -1;
	}
	if (lstat(p, &st) == 0) {
		if (S_ISREG(st.st_mode))
			return 1;
		errno = EEXIST;
		set_err(err, errlen, "not a regular file:", p);
		return -1;
	}
	if (errno != ENOENT) {
		set_err(err, errlen, "cannot check", p);
		return -1;
	}
	return check_cur ? find_in_cur(path, name, err, errlen) : 0;
}

/* open_tmp - create tmp/NAME 0600; a file left there by a crashed attempt
 * is replaced */
static int
open_tmp(const char *tmp)
{
	int flags = O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC;
	int fd;

	fd = open(tmp, flags, 0600);
	if (fd == -1 && errno == EEXIST) {
		if (unlink(tmp) == -1)
			return -1;
		fd = open(tmp, flags, 0600);
	}
	return fd;
}

/* write_tmp - write the whole file at tmp and make it durable; on failure
 * tmp is removed */
static int
write_tmp(const char *tmp, const struct deliver_req *req, char *err,
    size_t errlen)
{
	int fd;

	fd = open_tmp(tmp);
	if (fd == -1) {
		set_err(err, errlen, "cannot create", tmp);
		return -1;
	}
	if (deliver_write_message(fd, req, 0, tmp, err, errlen) == -1)
		goto fail;
	if (fsync(fd) == -1) {
		set_err(err, errlen, "cannot fsync", tmp);
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		set_err(err, errlen, "cannot close", tmp);
		goto fail;
	}
	return 0;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return -1;
}

/* maildir_write - tmp/NAME -> fsync -> new/NAME -> fsync new/ */
static enum deliver_result
maildir_write(const char *path, const char *name,
    const struct deliver_req *req, char *err, size_t errlen)
{
	char tmp[PATH_MAX], new[PATH_MAX], newdir[PATH_MAX];

	if (path_join(tmp, sizeof(tmp), path, "tmp", name) == -1 ||
	    path_join(new, sizeof(new), path, "new", name) == -1 ||
	    path_join(newdir, sizeof(newdir), path, "new", NULL) == -1) {
		set_err(err, errlen, "cannot use", path);
		return DELIVER_TEMP;
	}
	if (write_tmp(tmp, req, err, errlen) == -1)
		return DELIVER_TEMP;
	/* tmp/ and new/ are siblings on one filesystem: rename is atomic */
	if (rename(tmp, new) == -1) {
		set_err(err, errlen, "cannot rename into", new);
		unlink(tmp);
		return DELIVER_TEMP;
	}
	/* the rename is durable only once new/ itself is synced; if this
	 * fails the retry finds new/NAME and reports it delivered */
	if (fsync_dir(newdir) == -1) {
		set_err(err, errlen, "cannot fsync", newdir);
		return DELIVER_TEMP;
	}
	return DELIVER_OK;
}

/* deliver_maildir - deliver into the Maildir at path (created with tmp/,
 * new/, cur/ when missing), idempotently (see the top of the file) */
void
deliver_maildir(const char *path, const struct deliver_req *req,
    struct deliver_outcome *out)
{
	char name[NAME_MAX + 1], err[DELIVER_REASON_MAX + 1] = "";
	int r;

	if (maildir_name(req, name, sizeof(name)) == -1) {
		deliver_outcome_set(out, DELIVER_PERM, "5.3.0",
		    "unusable queue id for a maildir name");
		return;
	}
	if (maildir_prepare(path, err, sizeof(err)) == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0", "%s", err);
		return;
	}
	r = find_earlier(path, name, req->check_cur, err, sizeof(err));
	if (r == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0", "%s", err);
		return;
	}
	if (r == 1) {
		deliver_outcome_set(out, DELIVER_OK, "2.0.0",
		    "already delivered to maildir %s", path);
		return;
	}
	if (maildir_write(path, name, req, err, sizeof(err)) != DELIVER_OK) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0", "%s", err);
		return;
	}
	deliver_outcome_set(out, DELIVER_OK, "2.0.0", "delivered to maildir");
}

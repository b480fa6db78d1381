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
 * The content is stored with CRLF line ends (as SMTP carries it); mail
 * readers expect LF in a Maildir, so every CRLF becomes LF while bare CR
 * and bare LF are kept as they are.  The content is streamed through a
 * bounded buffer: messages can be tens of megabytes.
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

/* bytes read from the content file at a time */
#define MAILDIR_COPY_BUF (64 * 1024)
/* octets of the escaped host name kept in a file name (NAME_MAX is 255) */
#define MAILDIR_HOST_MAX 128
/* longest Return-Path / Delivered-To value written (RFC 5322 2.1.1: 998) */
#define MAILDIR_HEADER_VALUE_MAX 900

/* set_err - "what path: strerror(errno)" into err */
static void
set_err(char *err, size_t errlen, const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
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
		snprintf(err, errlen, "not a regular file: %s", p);
		return -1;
	}
	if (errno != ENOENT) {
		set_err(err, errlen, "cannot check", p);
		return -1;
	}
	return check_cur ? find_in_cur(path, name, err, errlen) : 0;
}

/*
 * crlf_to_lf - copy n bytes from in to out turning CRLF into LF; a CR at
 * the end of in is held back in *pending_cr until the next call shows
 * whether LF follows (call with n == 0 at the end to flush it).  out needs
 * n + 1 bytes.  Returns the bytes written to out.
 */
static size_t
crlf_to_lf(const char *in, size_t n, char *out, int *pending_cr)
{
	const char *end = in + n, *cr;
	size_t o = 0;

	if (*pending_cr) {
		*pending_cr = 0;
		if (n > 0 && in[0] == '\n') {
			out[o++] = '\n';
			in++;
		} else {
			out[o++] = '\r';
		}
	}
	while (in < end) {
		cr = memchr(in, '\r', (size_t)(end - in));
		if (cr == NULL)
			cr = end;
		memcpy(out + o, in, (size_t)(cr - in));
		o += (size_t)(cr - in);
		in = cr;
		if (in == end)
			break;
		if (in + 1 == end) {
			*pending_cr = 1;
			break;
		}
		if (in[1] == '\n') {
			out[o++] = '\n';
			in += 2;
			continue;
		}
		out[o++] = '\r';
		in++;
	}
	return o;
}

/* write_headers - Return-Path: and Delivered-To:, values sanitised even
 * though they came through the SMTP parser */
static int
write_headers(int fd, const struct deliver_req *req)
{
	char *rp, *dt;
	struct buf b;
	int r;

	rp = util_sanitise_dup(req->return_path ? req->return_path : "",
	    MAILDIR_HEADER_VALUE_MAX);
	dt = util_sanitise_dup(req->delivered_to ? req->delivered_to : "",
	    MAILDIR_HEADER_VALUE_MAX);
	buf_init(&b);
	buf_printf(&b, "Return-Path: <%s>\nDelivered-To: %s\n", rp, dt);
	r = util_write_all(fd, b.data, b.len);
	buf_free(&b);
	free(rp);
	free(dt);
	return r;
}

/* copy_content - stream the content file to out with CRLF -> LF */
static int
copy_content(int in, int out, const char *inpath, const char *outpath,
    char *err, size_t errlen)
{
	char *ibuf = xmalloc(MAILDIR_COPY_BUF);
	char *obuf = xmalloc(MAILDIR_COPY_BUF + 1);
	int pending = 0, r = -1;
	ssize_t n;
	size_t o;

	for (;;) {
		n = read(in, ibuf, MAILDIR_COPY_BUF);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			set_err(err, errlen, "cannot read", inpath);
			goto out;
		}
		o = crlf_to_lf(ibuf, (size_t)n, obuf, &pending);
		if (util_write_all(out, obuf, o) == -1) {
			set_err(err, errlen, "cannot write", outpath);
			goto out;
		}
		if (n == 0)
			break;
	}
	r = 0;
out:
	free(ibuf);
	free(obuf);
	return r;
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
write_tmp(const char *tmp, int in, const struct deliver_req *req, char *err,
    size_t errlen)
{
	int fd;

	fd = open_tmp(tmp);
	if (fd == -1) {
		set_err(err, errlen, "cannot create", tmp);
		return -1;
	}
	if (write_headers(fd, req) == -1) {
		set_err(err, errlen, "cannot write", tmp);
		goto fail;
	}
	if (copy_content(in, fd, req->content_path, tmp, err, errlen) == -1)
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
	int in;

	if (path_join(tmp, sizeof(tmp), path, "tmp", name) == -1 ||
	    path_join(new, sizeof(new), path, "new", name) == -1 ||
	    path_join(newdir, sizeof(newdir), path, "new", NULL) == -1) {
		set_err(err, errlen, "cannot use", path);
		return DELIVER_TEMP;
	}
	in = open(req->content_path, O_RDONLY | O_CLOEXEC);
	if (in == -1) {
		set_err(err, errlen, "cannot open", req->content_path);
		return DELIVER_TEMP;
	}
	if (write_tmp(tmp, in, req, err, errlen) == -1) {
		close(in);
		return DELIVER_TEMP;
	}
	close(in);
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

enum deliver_result
deliver_maildir(const char *path, const struct deliver_req *req, char *err,
    size_t errlen)
{
	char name[NAME_MAX + 1];
	int r;

	if (errlen > 0)
		err[0] = '\0';
	if (maildir_name(req, name, sizeof(name)) == -1) {
		snprintf(err, errlen, "unusable queue id for a maildir name");
		return DELIVER_PERM;
	}
	if (maildir_prepare(path, err, errlen) == -1)
		return DELIVER_TEMP;
	r = find_earlier(path, name, req->check_cur, err, errlen);
	if (r == -1)
		return DELIVER_TEMP;
	if (r == 1) {
		log_info("%s: already delivered to %s as %s", req->qid, path,
		    name);
		return DELIVER_OK;
	}
	return maildir_write(path, name, req, err, errlen);
}

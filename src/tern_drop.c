/*
 * tern_drop.c - tern-drop, the setgid program that stores a local
 * submission in the drop directory (as Postfix's postdrop does).
 *
 *   tern-drop DIR < drop-file
 *
 * Why setgid: local users must be able to queue mail while the daemon is
 * down, yet must not read or touch anyone else's submissions.  The drop
 * directory ($home/spool/drop, mode 1730, owner tern, group terndrop) can
 * be written and searched only by its group, never listed; this program,
 * installed setgid terndrop, is the only way in.  It runs with the
 * submitter's own uid (it is not setuid), so the file it creates belongs to
 * the submitter's real uid: the queue takes the sender's identity from
 * that owner, and nothing the user writes can change it.
 *
 * What it can do with the group: create one new file in a directory that
 * is exactly such a drop directory (a directory of our group, mode 1730:
 * only root or the group can have made it), rename it within that
 * directory, and send an empty wake-up datagram to the queue's socket
 * there.  It reads only its standard input, copies it unparsed (the queue
 * process reads it strictly), bounded by DROP_FILE_MAX, makes it durable
 * (fsync of the file and of the directory) and exits 0 only then.  It
 * links no libevent and no OpenSSL: a few system calls a reviewer can read
 * at once.  Exit codes are sysexits(3)'s.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "drop.h"

#define PROG "tern-drop"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_DROP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(TERN_DROP_ASAN)
const char *__asan_default_options(void);
/* the sanitizer build: LeakSanitizer cannot inspect a setgid process
 * (it is not dumpable) and would fail every run; the rest stays on */
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static int
die(int code, const char *what, int err)
{
	fprintf(stderr, PROG ": %s%s%s\n", what, err ? ": " : "",
	    err ? strerror(err) : "");
	return code;
}

/* copy_in - standard input into fd, at most DROP_FILE_MAX octets */
static int
copy_in(int fd)
{
	char block[65536];
	uint64_t total = 0;
	ssize_t n, w, off;

	for (;;) {
		n = read(STDIN_FILENO, block, sizeof(block));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return die(EX_IOERR, "reading the message", errno);
		if (n == 0)
			return 0;
		total += (uint64_t)n;
		if (total > DROP_FILE_MAX)
			return die(EX_DATAERR, "message too large", 0);
		for (off = 0; off < n; off += w) {
			w = write(fd, block + off, (size_t)(n - off));
			if (w == -1 && errno == EINTR)
				w = 0;
			else if (w == -1)
				return die(EX_CANTCREAT,
				    "writing the drop file", errno);
		}
	}
}

/* wake - tell a running queue process (nothing happens when it is down:
 * it picks the file up when it starts) */
static void
wake(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notice",
	    dir) >= sizeof(sa.sun_path))
		return;
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s == -1)
		return;
	(void)sendto(s, "", 0, 0, (struct sockaddr *)&sa, sizeof(sa));
	close(s);
}

int
main(int argc, char **argv)
{
	char tmp[64], name[64];
	struct timeval tv;
	struct stat st;
	int dfd, fd, rc;

	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit fails the write (and the file is removed) */
	signal(SIGXFSZ, SIG_IGN);
	umask(077);
	if (argc != 2 || argv[1][0] != '/')
		return die(EX_USAGE, "usage: tern-drop /HOME/spool/drop", 0);
	/* O_PATH: the group may search the directory, not read it */
	dfd = open(argv[1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1)
		return die(EX_UNAVAILABLE, argv[1], errno);
	/* only a directory of our group with exactly mode 1730 is a drop
	 * directory: no user outside the group can make one */
	if (fstat(dfd, &st) == -1 || st.st_gid != getegid() ||
	    (st.st_mode & 07777) != 01730)
		return die(EX_NOPERM, "not a tern drop directory (mode 1730, "
		    "the group tern-drop runs with)", 0);
	gettimeofday(&tv, NULL);
	snprintf(tmp, sizeof(tmp), "tmp.%lld.%06ld.%ld", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid());
	/* readable by others, not by the group: the queue process (its
	 * owner's uid, outside the group) reads it; the directory lets no
	 * one else reach it */
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return die(EX_CANTCREAT, "creating the drop file", errno);
	rc = copy_in(fd);
	if (rc == 0 && (fchmod(fd, 0604) == -1 || fsync(fd) == -1))
		rc = die(EX_IOERR, "saving the drop file", errno);
	/* the final name: the queue picks up only "d." names, whole ones */
	snprintf(name, sizeof(name), "d.%s", tmp + 4);
	if (rc == 0 && renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == -1)
		rc = die(EX_CANTCREAT, "naming the drop file", errno);
	/* the rename made durable: the directory cannot be opened for
	 * fsync (the group may not read it), so the file system is synced;
	 * one submission per run, that cost is the submitter's */
	if (rc == 0 && syncfs(fd) == -1)
		rc = die(EX_IOERR, "saving the drop directory", errno);
	close(fd);
	if (rc != 0) {
		unlinkat(dfd, tmp, 0);
		return rc;
	}
	wake(argv[1]);
	return 0;
}

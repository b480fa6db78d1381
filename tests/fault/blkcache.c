/*
 * blkcache.c - a disk with a volatile write cache, for power-cut tests.
 *
 * Usage: blkcache IMAGE MOUNTPOINT
 *
 * Mounts a FUSE file system at MOUNTPOINT (in the foreground) holding one
 * file, MOUNTPOINT/disk, the size of IMAGE.  A write to it goes into a
 * cache in this process's memory, not into IMAGE; fsync (and fdatasync)
 * of the file writes the cache into IMAGE: IMAGE is what a disk keeps
 * through a power cut.  A loop device over MOUNTPOINT/disk turns the
 * block layer's cache flushes (REQ_PREFLUSH, and FUA, which the loop
 * driver emulates by a flush) into fsync of its backing file, so a file
 * system made on that loop device finds on IMAGE exactly what it made
 * durable, and nothing else.
 *
 * SIGUSR1 cuts the power: from then on nothing reaches IMAGE any more.
 * SIGUSR2 cuts it too, but as a disk may: a random half of the pages
 * written since the last flush did reach IMAGE (whole pages, each as last
 * written), the rest are dropped.
 * Reads and writes go on against the cache, so the file system above sees
 * a consistent disk while it is unmounted (its writes at unmount vanish
 * with the cache); when this process ends the cache is gone.  The test
 * then starts a fresh blkcache on the same IMAGE: the disk after the cut.
 * SIGUSR1's model drops every unflushed write at once, as if the cache
 * kept them all until the flush; SIGUSR2's keeps some, in no order, as a
 * real disk's cache may write them out (ext4's journal still replays only
 * whole transactions: a commit block is written after a flush of its
 * transaction's blocks).
 *
 * The file is opened with direct_io so that the kernel keeps no page
 * cache of its own for it: every write of the loop device arrives here.
 *
 * Hand-written because nothing in Debian 12 gives a block device whose
 * unflushed writes a test can drop on this machine: the kernel has no
 * device mapper (dm-flakey, dm-log-writes) and no nbd module (nbdkit's
 * filters); libfuse3 does the FUSE protocol and this file only keeps a
 * page map.  Single-threaded (fuse -s): no locks.
 *
 * At exit (and at the cut) one line of counts goes to stderr: writes,
 * fsyncs, pages made durable, pages dropped.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK_PAGE 4096
#define BLK_NAME "disk"

static int image_fd = -1;
static off_t image_size;
static size_t npages;
static unsigned char **cache;   /* page index -> cached page or NULL */
static size_t *dirty;           /* indices of the cached pages */
static size_t ndirty;
static volatile sig_atomic_t cut;
static volatile sig_atomic_t torn;   /* SIGUSR2: some writes got through */
static int cut_reported;
static struct {
	unsigned long long writes, fsyncs, flushed, dropped, kept;
} stats;

/* report - one line of counts to stderr */
static void
report(const char *when)
{
	fprintf(stderr, "blkcache: %s: writes=%llu fsyncs=%llu "
	    "pages-durable=%llu pages-cached=%zu pages-dropped=%llu "
	    "pages-kept-at-cut=%llu\n", when, stats.writes, stats.fsyncs,
	    stats.flushed, ndirty, stats.dropped, stats.kept);
}

static void
on_cut(int sig)
{
	if (sig == SIGUSR2)
		torn = 1;
	cut = 1;
}

static int write_image(size_t i);

/*
 * check_cut - at the first operation after the cut: a torn cut writes a
 * random half of the cached pages into IMAGE (what the disk had written
 * out when the power went); then say what is lost.  The cache stays, so
 * that the file system above reads back what it wrote until it is gone.
 */
static void
check_cut(void)
{
	size_t k;

	if (!cut || cut_reported)
		return;
	cut_reported = 1;
	for (k = 0; torn && k < ndirty; k++)
		if (random() & 1) {
			if (write_image(dirty[k]) != 0)
				perror("blkcache: torn cut");
			stats.kept++;
		}
	stats.dropped = ndirty - stats.kept;
	report(torn ? "power cut (torn)" : "power cut");
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL) {
		perror("blkcache: calloc");
		exit(1);
	}
	return p;
}

/* read_image - whole page i of IMAGE into out */
static int
read_image(size_t i, unsigned char *out)
{
	size_t done = 0;
	ssize_t n;

	while (done < BLK_PAGE) {
		n = pread(image_fd, out + done, BLK_PAGE - done,
		    (off_t)(i * BLK_PAGE + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0) {
			memset(out + done, 0, BLK_PAGE - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

/* write_image - page i of the cache into IMAGE */
static int
write_image(size_t i)
{
	size_t done = 0;
	ssize_t n;

	while (done < BLK_PAGE) {
		n = pwrite(image_fd, cache[i] + done, BLK_PAGE - done,
		    (off_t)(i * BLK_PAGE + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		done += (size_t)n;
	}
	return 0;
}

static int
bc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/" BLK_NAME) != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = image_size;
	st->st_blocks = image_size / 512;
	return 0;
}

static int
bc_readdir(const char *path, void *out, fuse_fill_dir_t fill, off_t off,
    struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(out, ".", NULL, 0, 0);
	fill(out, "..", NULL, 0, 0);
	fill(out, BLK_NAME, NULL, 0, 0);
	return 0;
}

static int
bc_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/" BLK_NAME) != 0)
		return -ENOENT;
	fi->direct_io = 1;   /* no page cache between the loop device and us */
	fi->keep_cache = 0;
	return 0;
}

/* span - the part of [off, off+len) inside the disk; 0 past its end */
static size_t
span(off_t off, size_t len)
{
	if (off < 0 || off >= image_size)
		return 0;
	if ((off_t)len > image_size - off)
		return (size_t)(image_size - off);
	return len;
}

static int
bc_read(const char *path, char *buf, size_t len, off_t off,
    struct fuse_file_info *fi)
{
	unsigned char page[BLK_PAGE];
	size_t done = 0;
	int r;

	(void)path;
	(void)fi;
	check_cut();
	len = span(off, len);
	while (done < len) {
		size_t i = (size_t)(off + (off_t)done) / BLK_PAGE;
		size_t in = (size_t)(off + (off_t)done) % BLK_PAGE;
		size_t n = BLK_PAGE - in < len - done ? BLK_PAGE - in :
		    len - done;
		const unsigned char *from = cache[i];

		if (from == NULL) {
			if ((r = read_image(i, page)) != 0)
				return r;
			from = page;
		}
		memcpy(buf + done, from + in, n);
		done += n;
	}
	return (int)done;
}

static int
bc_write(const char *path, const char *buf, size_t len, off_t off,
    struct fuse_file_info *fi)
{
	size_t done = 0;
	int r;

	(void)path;
	(void)fi;
	check_cut();
	if (span(off, len) != len)
		return -ENOSPC;
	stats.writes++;
	while (done < len) {
		size_t i = (size_t)(off + (off_t)done) / BLK_PAGE;
		size_t in = (size_t)(off + (off_t)done) % BLK_PAGE;
		size_t n = BLK_PAGE - in < len - done ? BLK_PAGE - in :
		    len - done;

		if (cache[i] == NULL) {
			cache[i] = xcalloc(1, BLK_PAGE);
			/* a partial page starts as what the disk holds */
			if (n < BLK_PAGE && (r = read_image(i, cache[i])) != 0) {
				free(cache[i]);
				cache[i] = NULL;
				return r;
			}
			dirty[ndirty++] = i;
		}
		memcpy(cache[i] + in, buf + done, n);
		done += n;
	}
	return (int)done;
}

/* bc_fsync - the cache flush: every cached page into IMAGE, unless the
 * power is cut */
static int
bc_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	size_t k;
	int r;

	(void)path;
	(void)datasync;
	(void)fi;
	check_cut();
	stats.fsyncs++;
	if (cut)
		return 0;   /* the disk says done; nothing reaches it */
	for (k = 0; k < ndirty; k++) {
		size_t i = dirty[k];

		if ((r = write_image(i)) != 0)
			return r;
		free(cache[i]);
		cache[i] = NULL;
		stats.flushed++;
	}
	ndirty = 0;
	return 0;
}

static int
bc_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;   /* close(2): no durability promised */
}

static void
bc_destroy(void *unused)
{
	(void)unused;
	if (cut && !cut_reported)
		check_cut();
	if (!cut)
		stats.dropped = ndirty;
	report("exit");
}

static const struct fuse_operations ops = {
	.getattr = bc_getattr,
	.readdir = bc_readdir,
	.open = bc_open,
	.read = bc_read,
	.write = bc_write,
	.fsync = bc_fsync,
	.flush = bc_flush,
	.destroy = bc_destroy,
};

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct stat st;

	if (argc != 3) {
		fprintf(stderr, "usage: blkcache IMAGE MOUNTPOINT\n");
		return 2;
	}
	image_fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (image_fd == -1 || fstat(image_fd, &st) == -1) {
		perror(argv[1]);
		return 1;
	}
	if (st.st_size <= 0 || st.st_size % BLK_PAGE != 0) {
		fprintf(stderr, "blkcache: %s: size must be a positive "
		    "multiple of %d\n", argv[1], BLK_PAGE);
		return 1;
	}
	image_size = st.st_size;
	npages = (size_t)(image_size / BLK_PAGE);
	cache = xcalloc(npages, sizeof(*cache));
	dirty = xcalloc(npages, sizeof(*dirty));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cut;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));

	char *fargv[] = { argv[0], "-f", "-s", "-o",
		"fsname=blkcache,subtype=blkcache", argv[2], NULL };
	return fuse_main(6, fargv, &ops, NULL);
}

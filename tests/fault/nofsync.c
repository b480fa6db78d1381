/*
 * nofsync.c - an LD_PRELOAD library that makes every way tern asks for
 * stable storage a no-op that reports success: fsync, fdatasync, syncfs,
 * sync_file_range, sync and msync.  The power-cut test runs tern under it
 * once, as the control that proves the test can see a missing fsync: a
 * tern that never syncs must lose acknowledged mail at a power cut, and
 * the test fails if it does not.
 *
 * (tern calls fsync and syncfs today, see src/spool.c and
 * src/deliver_*.c; the others are covered so that a future change to
 * another call cannot make the control pass silently.  O_SYNC/O_DSYNC at
 * open are not used by tern.)
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <sys/types.h>

int fsync(int fd);
int fdatasync(int fd);
int syncfs(int fd);
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags);
void sync(void);
int msync(void *addr, size_t len, int flags);

int
fsync(int fd)
{
	(void)fd;
	return 0;
}

int
fdatasync(int fd)
{
	(void)fd;
	return 0;
}

int
syncfs(int fd)
{
	(void)fd;
	return 0;
}

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	(void)fd;
	(void)off;
	(void)n;
	(void)flags;
	return 0;
}

void
sync(void)
{
}

int
msync(void *addr, size_t len, int flags)
{
	(void)addr;
	(void)len;
	(void)flags;
	return 0;
}

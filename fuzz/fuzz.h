/*
 * fuzz.h - what every libFuzzer target of tern shares: the entry point
 * libFuzzer calls; FUZZ_ASSERT, a check that stays in every build
 * (assert() would vanish with NDEBUG) and whose abort libFuzzer reports
 * with the input; for the targets whose parser reads files, their
 * directory and fuzz_write_file.
 */
#ifndef TERN_FUZZ_H
#define TERN_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c)                                                         \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

/*
 * fuzz_dir_open - create dir (mode 0700) if it is missing and open it for
 * fuzz_dir_lock.  A target whose parser reads files writes them in a fixed
 * directory (its inputs may name paths in it), so two runs of one target
 * at once, such as `make fuzz` beside `make test`, would read each other's
 * files and report crashes that are not there: each input holds the
 * directory's lock from writing its files to the last check.
 */
static inline int
fuzz_dir_open(const char *dir)
{
	int fd;

	FUZZ_ASSERT(mkdir(dir, 0700) == 0 || errno == EEXIST);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_ASSERT(fd != -1);
	return fd;
}

/* fuzz_dir_lock - take (LOCK_EX) or give up (LOCK_UN) a directory's lock */
static inline void
fuzz_dir_lock(int fd, int op)
{
	FUZZ_ASSERT(flock(fd, op) == 0);
}

/*
 * fuzz_write_file - make path a new file holding p[0..n).  The old file is
 * unlinked rather than truncated: ext4 starts writeback when a file
 * truncated to zero is closed (its guard for programs that rewrite files
 * in place), which on a disk-backed /tmp held these targets to about a
 * hundred runs a second instead of ten thousand.
 */
static inline void
fuzz_write_file(const char *path, const void *p, size_t n)
{
	FILE *fp;

	(void)unlink(path);
	fp = fopen(path, "w");
	FUZZ_ASSERT(fp != NULL);
	FUZZ_ASSERT(n == 0 || fwrite(p, 1, n, fp) == n);
	FUZZ_ASSERT(fclose(fp) == 0);
}

#endif

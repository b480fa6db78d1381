/*
 * fuzz.h - what every libFuzzer target of tern shares: the entry point
 * libFuzzer calls; FUZZ_ASSERT, a check that stays in every build
 * (assert() would vanish with NDEBUG) and whose abort libFuzzer reports
 * with the input; fuzz_write_file for the targets whose parser reads a
 * file.
 */
#ifndef TERN_FUZZ_H
#define TERN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c)                                                         \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

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

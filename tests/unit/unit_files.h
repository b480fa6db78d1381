/*
 * unit_files.h - small file helpers the unit tests of the delivery agents
 * share: write a file whole, read one whole, remove a tree.  Failures end the test
 * (cmocka asserts); include after <cmocka.h> and "util.h".
 */
#ifndef TERN_UNIT_FILES_H
#define TERN_UNIT_FILES_H

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* write_file - path made (0600) to hold exactly data[0..len) */
static inline void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* read_file - the whole file into a buf (buf_init'ed here) */
static inline void
read_file(const char *path, struct buf *b)
{
	char tmp[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	buf_init(b);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(b, tmp, (size_t)n);
	assert_int_equal(n, 0);
	close(fd);
}

static inline int
unit_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(p, 0700); /* a test may have taken the write bit away */
	return remove(p);
}

/* rm_tree - remove dir and everything below it */
static inline void
rm_tree(const char *dir)
{
	nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif

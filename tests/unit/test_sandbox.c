/*
 * test_sandbox.c - the production filters (sandbox.c) applied in a forked
 * child: execve fails, a file outside the allowed trees cannot be opened
 * (where the kernel has Landlock), what is allowed still works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

static char dir[256];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* path - "$dir/rel" in one of two rotating buffers */
static const char *
path(const char *rel)
{
	static char p[2][512];
	static int k;

	k = !k;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, rel);
	return p[k];
}

static int
setup(void **state)
{
	int fd;

	(void)state;
	log_init("test", 0, 0);
	snprintf(dir, sizeof(dir), "%s/tern-sandbox-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(mkdir(path("allowed"), 0700), 0);
	assert_int_equal(mkdir(path("outside"), 0700), 0);
	fd = open(path("outside/secret"), O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "key", 3), 3);
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* the outcomes the child reports, one errno (0: it worked) each */
enum { R_EXEC, R_READ_OUT, R_WRITE_OUT, R_CREATE_IN, R_RENAME_IN,
	R_READ_ETC, R_COUNT };

/* in_child - fork, apply the smtpd's filters with allowed/ as its only
 * writable tree, try each thing, report the errnos through a pipe */
static void
in_child(int res[R_COUNT])
{
	const char *write_trees[] = { path("allowed") };
	char *argv[] = { "/bin/true", NULL }, *envp[] = { NULL };
	int p[2], fd, status;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int out[R_COUNT];

		close(p[0]);
		sandbox_child("test", write_trees, 1, 0);
		execve(argv[0], argv, envp);
		out[R_EXEC] = errno;
		fd = open(path("outside/secret"), O_RDONLY);
		out[R_READ_OUT] = fd == -1 ? errno : 0;
		fd = open(path("outside/new"), O_WRONLY | O_CREAT, 0600);
		out[R_WRITE_OUT] = fd == -1 ? errno : 0;
		fd = open(path("allowed/msg"), O_WRONLY | O_CREAT, 0600);
		out[R_CREATE_IN] = fd == -1 ? errno : 0;
		out[R_RENAME_IN] = rename(path("allowed/msg"),
		    path("allowed/msg2")) == -1 ? errno : 0;
		fd = open("/etc/hosts", O_RDONLY);
		out[R_READ_ETC] = fd == -1 ? errno : 0;
		if (write(p[1], out, sizeof(out)) != (ssize_t)sizeof(out))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], res, sizeof(int) * R_COUNT),
	    (ssize_t)(sizeof(int) * R_COUNT));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_execve_fails(void **state)
{
	int res[R_COUNT];

	(void)state;
	in_child(res);
	/* the syscall filter (EPERM); Landlock alone would say EACCES */
	assert_int_equal(res[R_EXEC], EPERM);
}

static void
test_files_outside_cannot_be_opened(void **state)
{
	int res[R_COUNT];

	(void)state;
	if (sandbox_landlock_abi() <= 0)
		skip(); /* the kernel has no Landlock: nothing to show */
	in_child(res);
	assert_int_equal(res[R_READ_OUT], EACCES);
	assert_int_equal(res[R_WRITE_OUT], EACCES);
	assert_int_equal(res[R_CREATE_IN], 0);
	assert_int_equal(res[R_RENAME_IN], 0);
	assert_int_equal(res[R_READ_ETC], 0);
	/* and the parent, never filtered, still can */
	assert_int_equal(access(path("outside/secret"), R_OK), 0);
	assert_int_equal(access(path("outside/new"), F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_execve_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_files_outside_cannot_be_opened, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_users.c - libFuzzer target for the users file of SMTP AUTH
 * (auth_users_load): "name:hash" lines, '#' comments, blank lines.
 *
 * Checks: a file loads into at most one user per line, or fails with a
 * message that names the file.  auth_check is left out: every call costs
 * a yescrypt hash (tens of milliseconds), which would leave the fuzzer a
 * few runs a second; its table lookup is covered by tests/unit/test_auth.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "auth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DIR_PATH "/tmp/tern-fuzz-users"
#define USERS_PATH DIR_PATH "/users"

static int dir_fd;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	dir_fd = fuzz_dir_open(DIR_PATH);
	return 0;
}

static void
check(const uint8_t *data, size_t size)
{
	struct auth_users *u;
	char err[512];
	size_t i, lines = 1;

	fuzz_write_file(USERS_PATH, data, size);
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';

	err[0] = '\0';
	u = auth_users_load(USERS_PATH, err, sizeof(err));
	if (u == NULL) {
		FUZZ_ASSERT(strncmp(err, USERS_PATH ":", strlen(USERS_PATH) + 1)
			    == 0);
		return;
	}
	FUZZ_ASSERT(auth_users_count(u) <= lines);
	auth_users_free(u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	fuzz_dir_lock(dir_fd, LOCK_EX);
	check(data, size);
	fuzz_dir_lock(dir_fd, LOCK_UN);
	return 0;
}

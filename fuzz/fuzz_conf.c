/*
 * fuzz_conf.c - libFuzzer target for the configuration file (conf_load)
 * and the list files it reads (recipients file:, relay-recipients file:).
 *
 * An input is a configuration, optionally followed by a line "%%" and the
 * text of a list file, written to LIST_PATH so that a configuration can
 * name it ("recipients file:/tmp/tern-fuzz-conf/list").  The other paths
 * a configuration names (tls cert=, users, aliases) are only checked to
 * exist, and paths under /dev, /proc and /sys are refused before loading:
 * the configuration comes from the administrator, and what is fuzzed is
 * the parser, not reading /dev/zero.
 *
 * Checks: a configuration that loads prints (conf_print) as a file that
 * loads again and prints the same text, the promise `tern check-config`
 * makes (but for the first line, a comment naming the file).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "conf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DIR_PATH "/tmp/tern-fuzz-conf"
#define CONF_PATH DIR_PATH "/tern.conf"
#define LIST_PATH DIR_PATH "/list"
#define PRINT_PATH DIR_PATH "/printed.conf"

static int dir_fd;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	dir_fd = fuzz_dir_open(DIR_PATH);
	/* the printed configuration names $TERN_HOME's home: keep it fixed */
	unsetenv("TERN_HOME");
	return 0;
}

/* printed - conf_print of c into a malloc'd string */
static char *
printed(const struct conf *c, size_t *len)
{
	char *out = NULL;
	FILE *fp = open_memstream(&out, len);

	FUZZ_ASSERT(fp != NULL);
	conf_print(c, fp);
	FUZZ_ASSERT(fclose(fp) == 0);
	return out;
}

/* body - the printed text after its first line (which names the file) */
static const char *
body(const char *s)
{
	const char *nl = strchr(s, '\n');

	FUZZ_ASSERT(nl != NULL);
	return nl + 1;
}

static int
names_special_files(const char *p, size_t n)
{
	static const char *const bad[] = { "/dev", "/proc", "/sys" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (memmem(p, n, bad[i], strlen(bad[i])) != NULL)
			return 1;
	return 0;
}

static void
check(const char *p, size_t size)
{
	const char *sep;
	size_t conf_len = size, len1, len2;
	struct conf *c, *again;
	char *out1, *out2;

	sep = memmem(p, size, "\n%%\n", 4);
	if (sep != NULL)
		conf_len = (size_t)(sep - p) + 1;
	fuzz_write_file(CONF_PATH, p, conf_len);
	fuzz_write_file(LIST_PATH, sep != NULL ? sep + 4 : "",
	    sep != NULL ? size - conf_len - 3 : 0);

	c = conf_load(CONF_PATH);
	if (c == NULL)
		return;
	out1 = printed(c, &len1);
	fuzz_write_file(PRINT_PATH, out1, len1);
	again = conf_load(PRINT_PATH);
	FUZZ_ASSERT(again != NULL);
	out2 = printed(again, &len2);
	FUZZ_ASSERT(strcmp(body(out1), body(out2)) == 0);
	free(out1);
	free(out2);
	conf_free(again);
	conf_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	if (size > 8192 || names_special_files(p, size))
		return 0;
	fuzz_dir_lock(dir_fd, LOCK_EX);
	check(p, size);
	fuzz_dir_lock(dir_fd, LOCK_UN);
	return 0;
}

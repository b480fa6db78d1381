/*
 * fuzz_pipe_argv.c - libFuzzer target for deliver_pipe_argv and
 * deliver_pipe_check: a pipe command split into words and expanded.
 *
 * The input is NUL-separated fields: the command, then the user, the
 * local part, the extension and the domain (missing ones are empty).
 * Checks: a refusal says why; an accepted argv is NULL-ended, within the
 * limits, starts with an absolute path; a word gives one argument whatever
 * the values hold (hostile values give as many arguments as empty ones);
 * what the check accepts works with shorter values; and any argv, quoted
 * back into a command ('...', % as %%), splits into the same argv.
 * Links only the pure sources.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "deliver.h"
#include "util.h"

static const struct deliver_req empty_req = {
	.user = "", .local = "", .extension = "", .domain = "",
};

/* values as full of separators and quotes as a local part can be */
static const struct deliver_req hostile_req = {
	.user = " a'b\"c;", .local = "$(x) ", .extension = "\t%u",
	.domain = "`Y`%%",
};

/* argv_ok - the contract of an accepted argv of n arguments */
static void
argv_ok(char **argv, int n)
{
	int i;

	FUZZ_ASSERT(n >= 1 && n <= DELIVER_PIPE_WORDS_MAX);
	FUZZ_ASSERT(argv != NULL && argv[n] == NULL && argv[0][0] == '/');
	for (i = 0; i < n; i++)
		FUZZ_ASSERT(strlen(argv[i]) <= DELIVER_PIPE_ARG_MAX);
}

/* run - deliver_pipe_argv, its contract checked; n or -1 */
static int
run(const char *cmd, const struct deliver_req *req, char ***argv, char *err,
    size_t errlen)
{
	int n;

	err[0] = '\0';
	n = deliver_pipe_argv(cmd, req, argv, err, errlen);
	if (n == -1) {
		FUZZ_ASSERT(*argv == NULL && err[0] != '\0');
		return -1;
	}
	argv_ok(*argv, n);
	return n;
}

/* requote - argv as a command that splits back into it */
static void
requote(char **argv, struct buf *b)
{
	const char *p;
	int i;

	for (i = 0; argv[i] != NULL; i++) {
		buf_puts(b, i > 0 ? " '" : "'");
		for (p = argv[i]; *p != '\0'; p++) {
			if (*p == '\'')
				buf_puts(b, "'\"'\"'");
			else if (*p == '%')
				buf_puts(b, "%%");
			else
				buf_putc(b, *p);
		}
		buf_putc(b, '\'');
	}
}

/* check_round_trip - argv quoted back splits into the same argv */
static void
check_round_trip(char **argv, int n)
{
	char err[256], **again;
	struct buf b;
	int i;

	buf_init(&b);
	requote(argv, &b);
	if (b.len <= DELIVER_PIPE_COMMAND_MAX) {
		FUZZ_ASSERT(run(b.data, &empty_req, &again, err,
		    sizeof(err)) == n);
		for (i = 0; i < n; i++)
			FUZZ_ASSERT(strcmp(argv[i], again[i]) == 0);
		free(again);
	}
	buf_free(&b);
}

/* field - the next NUL-ended field of s[0..len) at *off, "" past the end */
static const char *
field(const char *s, size_t len, size_t *off)
{
	const char *f = s + *off;

	if (*off >= len)
		return "";
	*off += strlen(f) + 1;
	return f;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, err[256], cerr[256], **argv, **a2;
	struct deliver_req req = { 0 };
	size_t off = 0;
	const char *cmd;
	int n, n2, checked;

	if (size > 8192)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	cmd = field(s, size, &off);
	req.user = field(s, size, &off);
	req.local = field(s, size, &off);
	req.extension = field(s, size, &off);
	req.domain = field(s, size, &off);

	cerr[0] = '\0';
	checked = deliver_pipe_check(cmd, cerr, sizeof(cerr)) == 0;
	FUZZ_ASSERT(checked || cerr[0] != '\0');
	n = run(cmd, &req, &argv, err, sizeof(err));
	/* the check refuses only for the command, or for the length its
	 * sample values give */
	FUZZ_ASSERT(n == -1 || checked || strstr(cerr, "longer than"));
	if (n != -1) {
		check_round_trip(argv, n);
		free(argv);
	}
	/* a word is one argument, whatever the values */
	n = run(cmd, &empty_req, &argv, err, sizeof(err));
	FUZZ_ASSERT(!checked || n != -1);
	n2 = run(cmd, &hostile_req, &a2, err, sizeof(err));
	FUZZ_ASSERT(n == -1 || n2 == n || strstr(err, "longer than"));
	free(argv);
	free(a2);
	free(s);
	return 0;
}

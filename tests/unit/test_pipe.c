/*
 * test_pipe.c - delivery to a program: the command split into an argv and
 * expanded (deliver_pipe_argv, deliver_pipe_check), then real programs
 * from /bin and /usr/bin run by deliver_pipe: the message on their input,
 * the environment and process hygiene, exit statuses, output in the
 * reason, timeouts, and nothing left running.  Each run test works in a
 * fresh temporary directory; commands name it as DIR.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "deliver.h"
#include "util.h"
#include "unit_files.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXARGS 8

/* ---- splitting and expansion ---- */

struct argv_case {
	const char *what;
	const char *command;
	const char *user, *domain; /* NULL: "u", "example.org" */
	const char *args[MAXARGS]; /* expected, NULL-ended; none: error */
	const char *err_has;
};

static const struct argv_case argv_cases[] = {
	{ "plain words", "/usr/bin/procmail -d %u", NULL, NULL,
	    { "/usr/bin/procmail", "-d", "u" }, NULL },
	{ "runs of spaces and tabs separate", "  /bin/echo \t a   b \t",
	    NULL, NULL, { "/bin/echo", "a", "b" }, NULL },
	{ "single quotes group literally", "/bin/sh -c 'exec cat >> /tmp/x'",
	    NULL, NULL, { "/bin/sh", "-c", "exec cat >> /tmp/x" }, NULL },
	{ "single quotes keep backslashes and double quotes",
	    "/bin/x 'a\\\"b\\\\c'", NULL, NULL,
	    { "/bin/x", "a\\\"b\\\\c" }, NULL },
	{ "double quotes with \\\" and \\\\", "/bin/x \"a \\\"b\\\" c\\\\d\"",
	    NULL, NULL, { "/bin/x", "a \"b\" c\\d" }, NULL },
	{ "another backslash in double quotes is kept", "/bin/x \"a\\nb\\'\"",
	    NULL, NULL, { "/bin/x", "a\\nb\\'" }, NULL },
	{ "a backslash outside quotes is ordinary", "/bin/x a\\ b", NULL,
	    NULL, { "/bin/x", "a\\", "b" }, NULL },
	{ "quotes join the text around them", "/bin/x a'b c'\"d e\"f", NULL,
	    NULL, { "/bin/x", "ab cd ef" }, NULL },
	{ "empty quotes are an empty argument", "/bin/x '' \"\"", NULL, NULL,
	    { "/bin/x", "", "" }, NULL },
	{ "shell syntax is ordinary text", "/bin/x a|b;c $HOME `id` >f",
	    NULL, NULL, { "/bin/x", "a|b;c", "$HOME", "`id`", ">f" }, NULL },
	{ "%u with spaces, quotes, semicolons stays one argument",
	    "/usr/bin/procmail -d %u", "a b'\"c;rm -rf ~ `id`", NULL,
	    { "/usr/bin/procmail", "-d", "a b'\"c;rm -rf ~ `id`" }, NULL },
	{ "%%, %a, %d (lower case)", "/bin/x %% 100%% %a %d", NULL,
	    "Example.ORG", { "/bin/x", "%", "100%", "u@example.org",
	    "example.org" }, NULL },
	{ "%l and %e", "/bin/x %l %e", NULL, NULL,
	    { "/bin/x", "u+ext", "ext" }, NULL },
	{ "an inserted value is never expanded again", "/bin/x %u", "%d%%",
	    NULL, { "/bin/x", "%d%%" }, NULL },
	{ "escapes expand inside quotes too", "/bin/x '%u x' \"<%a>\"", NULL,
	    NULL, { "/bin/x", "u x", "<u@example.org>" }, NULL },
	{ "%% in the program path", "/opt/100%%/x", NULL, NULL,
	    { "/opt/100%/x" }, NULL },
	{ "a shell's -c string may use $1, with %u after it",
	    "/bin/sh -c 'exec procmail -d \"$1\"' sh %u", NULL, NULL,
	    { "/bin/sh", "-c", "exec procmail -d \"$1\"", "sh", "u" }, NULL },
	{ "a shell running a script may get %u", "/bin/sh /etc/filter %u",
	    NULL, NULL, { "/bin/sh", "/etc/filter", "u" }, NULL },
	{ "-c of a program that is not a shell", "/usr/bin/x -c %u", NULL,
	    NULL, { "/usr/bin/x", "-c", "u" }, NULL },

	{ "unterminated single quote", "/bin/x 'abc", NULL, NULL, { NULL },
	    "unterminated ' quote" },
	{ "unterminated double quote (\\\" does not end it)",
	    "/bin/x \"a\\\"", NULL, NULL, { NULL }, "unterminated \" quote" },
	{ "relative program", "procmail -d %u", NULL, NULL, { NULL },
	    "not an absolute path" },
	{ "quoted relative program", "'bin/x'", NULL, NULL, { NULL },
	    "not an absolute path" },
	{ "empty command", "", NULL, NULL, { NULL }, "empty command" },
	{ "only white space", " \t ", NULL, NULL, { NULL },
	    "empty command" },
	{ "unknown escape", "/bin/x %x", NULL, NULL, { NULL },
	    "unknown escape %x" },
	{ "a % at the end", "/bin/x 50%", NULL, NULL, { NULL },
	    "unknown escape" },
	{ "an escape in the program path", "/home/%u/bin/filter", NULL,
	    NULL, { NULL }, "program path" },
	{ "%u in sh -c's string", "/bin/sh -c 'procmail -d %u'", NULL, NULL,
	    { NULL }, "shell syntax" },
	{ "%l in bash -ec's string", "/usr/bin/bash -ec \"x %l\"", NULL,
	    NULL, { NULL }, "shell syntax" },
	{ "sh -o OPTION before -c", "/bin/sh -o errexit -c 'x %e'", NULL,
	    NULL, { NULL }, "shell syntax" },
};

static const struct deliver_req argv_req = {
	.user = "u",
	.local = "u+ext",
	.extension = "ext",
	.domain = "example.org",
};

static void
test_argv(void **state)
{
	struct deliver_req req;
	char err[256], **argv;
	size_t i, k;
	int n;

	(void)state;
	for (i = 0; i < NELEM(argv_cases); i++) {
		const struct argv_case *c = &argv_cases[i];

		print_message("argv: %s\n", c->what);
		req = argv_req;
		if (c->user != NULL)
			req.user = c->user;
		if (c->domain != NULL)
			req.domain = c->domain;
		err[0] = '\0';
		n = deliver_pipe_argv(c->command, &req, &argv, err,
		    sizeof(err));
		if (c->args[0] == NULL) {
			assert_int_equal(n, -1);
			assert_null(argv);
			print_message("  err: %s\n", err);
			assert_non_null(strstr(err, c->err_has));
			assert_int_equal(deliver_pipe_check(c->command, err,
			    sizeof(err)), -1);
			continue;
		}
		for (k = 0; c->args[k] != NULL; k++) {
			assert_non_null(argv[k]);
			assert_string_equal(argv[k], c->args[k]);
		}
		assert_int_equal(n, (int)k);
		assert_null(argv[k]);
		free(argv);
		assert_int_equal(deliver_pipe_check(c->command, err,
		    sizeof(err)), 0);
	}
}

/* the limits: a command just inside each works, one past it does not.
 * The command: "/bin/x", nwords words "a", a word of pad 'p's, tail. */
struct limit_case {
	const char *what;
	size_t nwords, pad;
	const char *tail;
	size_t user_len; /* the user: this many 'x' */
	int ok;
	const char *err_has;
};

static const struct limit_case limit_cases[] = {
	{ "64 words", 63, 0, NULL, 1, 1, NULL },
	{ "65 words", 64, 0, NULL, 1, 0, "more than 64 words" },
	{ "a command of 4096 octets", 0, 4096 - 7, NULL, 1, 1, NULL },
	{ "a command of 4097 octets", 0, 4097 - 7, NULL, 1, 0,
	    "longer than 4096 octets" },
	{ "an argument of 8192 octets once expanded", 0, 0, "%u%u", 4096, 1,
	    NULL },
	{ "an argument of 8194 octets once expanded", 0, 0, "%u%u", 4097, 0,
	    "longer than 8192 octets" },
};

static void
test_limits(void **state)
{
	struct deliver_req req = argv_req;
	struct buf cmd;
	char err[256], **argv, *user;
	size_t i, k;
	int n;

	(void)state;
	for (i = 0; i < NELEM(limit_cases); i++) {
		const struct limit_case *c = &limit_cases[i];

		print_message("limit: %s\n", c->what);
		buf_init(&cmd);
		buf_puts(&cmd, "/bin/x");
		for (k = 0; k < c->nwords; k++)
			buf_puts(&cmd, " a");
		if (c->pad > 0)
			buf_putc(&cmd, ' ');
		for (k = 0; k < c->pad; k++)
			buf_putc(&cmd, 'p');
		if (c->tail != NULL)
			buf_printf(&cmd, " %s", c->tail);
		user = xmalloc(c->user_len + 1);
		memset(user, 'x', c->user_len);
		user[c->user_len] = '\0';
		req.user = user;
		n = deliver_pipe_argv(cmd.data, &req, &argv, err, sizeof(err));
		if (c->ok) {
			assert_int_equal(n, (int)c->nwords + 1 +
			    (c->pad > 0) + (c->tail != NULL));
			free(argv);
		} else {
			assert_int_equal(n, -1);
			print_message("  err: %s\n", err);
			assert_non_null(strstr(err, c->err_has));
		}
		free(user);
		buf_free(&cmd);
	}
}

/* ---- running programs ---- */

struct fixture {
	char dir[64];      /* the temporary directory */
	char content[128]; /* dir/content.msg */
	struct deliver_req req;
	struct deliver_outcome out;
	int64_t took_ms;
};

/* read_if_there - the whole file into a buf; -1 when it does not exist */
static int
read_if_there(const char *path, struct buf *b)
{
	char tmp[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	buf_init(b);
	if (fd == -1)
		return -1;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(b, tmp, (size_t)n);
	assert_int_equal(n, 0);
	close(fd);
	return 0;
}

/* in_dir - dir/name */
static void
in_dir(const struct fixture *f, const char *name, char *out, size_t len)
{
	assert_true(snprintf(out, len, "%s/%s", f->dir, name) < (int)len);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/tern-test-pipe-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	in_dir(f, "content.msg", f->content, sizeof(f->content));
	write_file(f->content, "Subject: t\r\n\r\nhello\r\n", 21);
	f->req.qid = "0ABCDEFGHIJKLM";
	f->req.content_fd = open(f->content, O_RDONLY | O_CLOEXEC);
	f->req.return_path = "s@example.org";
	f->req.delivered_to = "u+ext@example.org";
	f->req.hostname = "mx.example.org";
	f->req.user = "u";
	f->req.home = f->dir;
	f->req.local = "u+ext";
	f->req.extension = "ext";
	f->req.domain = "example.org";
	f->req.timeout_ms = 10000;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->req.content_fd >= 0)
		close(f->req.content_fd);
	rm_tree(f->dir);
	free(f);
	return 0;
}

/* subst - template with every DIR replaced by the fixture's directory
 * and every FD by fd */
static char *
subst(const struct fixture *f, const char *template, int fd)
{
	struct buf b;
	const char *p;

	buf_init(&b);
	for (p = template; *p != '\0'; p++) {
		if (strncmp(p, "DIR", 3) == 0) {
			buf_puts(&b, f->dir);
			p += 2;
		} else if (strncmp(p, "FD", 2) == 0) {
			buf_printf(&b, "%d", fd);
			p++;
		} else {
			buf_putc(&b, *p);
		}
	}
	return b.data;
}

/* run - deliver_pipe with template (DIR substituted); the outcome in
 * f->out, the time it took in f->took_ms */
static enum deliver_result
run(struct fixture *f, const char *template)
{
	char *cmd = subst(f, template, -1);
	int64_t t0 = util_mono_ms();

	memset(&f->out, 0, sizeof(f->out));
	deliver_pipe(cmd, &f->req, &f->out);
	f->took_ms = util_mono_ms() - t0;
	print_message("  %s -> %d %s %s (%lld ms)\n", cmd, f->out.result,
	    f->out.status, f->out.reason, (long long)f->took_ms);
	free(cmd);
	return f->out.result;
}

/* group_alive - 1 when a process of group pgid is alive (not a zombie),
 * looked up in /proc */
static int
group_alive(pid_t pgid)
{
	char path[64], line[512], *rp, state;
	struct dirent *de;
	DIR *d = opendir("/proc");
	long ppid, pgrp;
	int alive = 0;
	FILE *fp;

	assert_non_null(d);
	while (!alive && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (snprintf(path, sizeof(path), "/proc/%s/stat",
		    de->d_name) >= (int)sizeof(path) ||
		    (fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(line, sizeof(line), fp) != NULL &&
		    (rp = strrchr(line, ')')) != NULL &&
		    sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3)
			alive = pgrp == (long)pgid && state != 'Z' &&
			    state != 'X';
		fclose(fp);
	}
	closedir(d);
	return alive;
}

/* assert_group_gone - the group of the pid in dir/pid has no live
 * process (SIGKILL takes effect asynchronously: up to a second) */
static void
assert_group_gone(const struct fixture *f)
{
	char path[128];
	struct buf b;
	long pid;
	int i;

	in_dir(f, "pid", path, sizeof(path));
	assert_int_equal(read_if_there(path, &b), 0);
	pid = strtol(b.data, NULL, 10);
	buf_free(&b);
	assert_true(pid > 1);
	for (i = 0; i < 100 && group_alive((pid_t)pid); i++)
		usleep(10000);
	assert_false(group_alive((pid_t)pid));
}

/* the message on the program's input */
static void
test_message_on_stdin(void **state)
{
	struct fixture *f = *state;
	const char *expect = "Return-Path: <s@example.org>\n"
			     "Delivered-To: u+ext@example.org\n"
			     "Subject: t\n\nhello\n";
	char path[128], tmp[8];
	struct buf b;
	int i;

	in_dir(f, "got", path, sizeof(path));
	for (i = 0; i < 2; i++) {
		print_message("call %d\n", i + 1);
		assert_int_equal(run(f, "/bin/sh -c 'cat > DIR/got'"),
		    DELIVER_OK);
		assert_string_equal(f->out.status, "2.0.0");
		assert_string_equal(f->out.reason,
		    "delivered to command: /bin/sh");
		assert_int_equal(read_if_there(path, &b), 0);
		assert_string_equal(b.data, expect);
		buf_free(&b);
		/* the fd's offset moved: the next call reads from 0 anyway */
		assert_true(read(f->req.content_fd, tmp, sizeof(tmp)) > 0);
	}
	f->req.return_path = "";
	assert_int_equal(run(f, "/bin/sh -c 'cat > DIR/got'"), DELIVER_OK);
	assert_int_equal(read_if_there(path, &b), 0);
	assert_non_null(strstr(b.data, "Return-Path: <>\n"));
	buf_free(&b);
}

/* the environment: exactly these variables (the shell adds PWD) */
struct env_case {
	const char *what;
	const char *user, *home, *sender;
	const char *expect[12]; /* DIR: the fixture's directory */
};

static const struct env_case env_cases[] = {
	{ "a user with a home", "u", "DIR", "s@example.org",
	    { "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "USER=u", "LOGNAME=u",
	    "HOME=DIR", "SENDER=s@example.org",
	    "RECIPIENT=u+ext@example.org", "LOCAL=u+ext", "EXTENSION=ext",
	    "DOMAIN=example.org", NULL } },
	{ "no home gives /, the null sender an empty SENDER",
	    "a b'c", "", "",
	    { "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "USER=a b'c",
	    "LOGNAME=a b'c", "HOME=/", "SENDER=",
	    "RECIPIENT=u+ext@example.org", "LOCAL=u+ext", "EXTENSION=ext",
	    "DOMAIN=example.org", NULL } },
};

static void
test_environment(void **state)
{
	struct fixture *f = *state;
	char path[128], *want[12], *line, *save;
	int seen[12];
	struct buf b;
	size_t i, k, n;

	assert_int_equal(setenv("TERN_TEST_LEAK", "1", 1), 0);
	in_dir(f, "env", path, sizeof(path));
	for (i = 0; i < NELEM(env_cases); i++) {
		const struct env_case *c = &env_cases[i];
		char *home = subst(f, c->home, -1);

		print_message("environment: %s\n", c->what);
		f->req.user = c->user;
		f->req.home = home;
		f->req.return_path = c->sender;
		for (n = 0; c->expect[n] != NULL; n++) {
			want[n] = subst(f, c->expect[n], -1);
			seen[n] = 0;
		}
		assert_int_equal(run(f, "/bin/sh -c '/usr/bin/env > "
		    "DIR/env'"), DELIVER_OK);
		assert_int_equal(read_if_there(path, &b), 0);
		for (line = strtok_r(b.data, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "PWD=", 4) == 0)
				continue; /* the shell's own */
			for (k = 0; k < n && strcmp(line, want[k]) != 0; k++)
				;
			if (k == n)
				fail_msg("unexpected variable %s", line);
			seen[k]++;
		}
		for (k = 0; k < n; k++) {
			assert_int_equal(seen[k], 1);
			free(want[k]);
		}
		buf_free(&b);
		free(home);
	}
	unsetenv("TERN_TEST_LEAK");
}

/* process hygiene: each command exits 0 when the property holds */
struct hygiene_case {
	const char *what;
	const char *command; /* DIR, FD: a descriptor open in the test */
};

static const struct hygiene_case hygiene_cases[] = {
	{ "no signal blocked (the test blocks SIGUSR1)",
	    "/bin/grep -qE '^SigBlk:[[:space:]]+0+$' /proc/self/status" },
	/* 32 and 33 are glibc's own (make ignores them): its sigaction
	 * cannot reset them, and a glibc program sets them at start */
	{ "no signal 1-31 ignored (the test ignores SIGPIPE)",
	    "/bin/grep -qE '^SigIgn:[[:space:]]+[0-9a-f]{8}[08]0{7}$' "
	    "/proc/self/status" },
	{ "a session and process group of its own",
	    "/bin/sh -c 'set -- $(cut -d\" \" -f5,6 /proc/$$/stat); "
	    "[ \"$1\" = $$ ] && [ \"$2\" = $$ ]'" },
	{ "no inherited descriptor (the test holds one open)",
	    "/bin/sh -c '[ -e /proc/$$/fd/2 ] && [ ! -e /proc/$$/fd/FD ]'" },
	{ "the working directory is HOME",
	    "/bin/sh -c '[ \"$(pwd -P)\" = DIR ]'" },
};

static void
test_hygiene(void **state)
{
	struct fixture *f = *state;
	sigset_t usr1, old;
	char *cmd;
	size_t i;
	int fd = dup(f->req.content_fd); /* no FD_CLOEXEC */

	assert_true(fd > 2);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < NELEM(hygiene_cases); i++) {
		print_message("hygiene: %s\n", hygiene_cases[i].what);
		cmd = subst(f, hygiene_cases[i].command, fd);
		assert_int_equal(run(f, cmd), DELIVER_OK);
		free(cmd);
	}
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(fd);
}

/* exit statuses */
struct exit_case {
	const char *what;
	const char *command;
	enum deliver_result result;
	const char *status;
	const char *reason; /* exactly */
};

#define SH_EXIT(n) "/bin/sh -c 'echo oops; exit " #n "'"
#define SH_REASON(s) "command /bin/sh exited " s ": oops"

static const struct exit_case exit_cases[] = {
	{ "0 delivered", "/bin/sh -c 'echo fine'", DELIVER_OK, "2.0.0",
	    "delivered to command: /bin/sh" },
	{ "75 temporary", SH_EXIT(75), DELIVER_TEMP, "4.3.0",
	    SH_REASON("75 (EX_TEMPFAIL)") },
	{ "71 temporary", SH_EXIT(71), DELIVER_TEMP, "4.3.0",
	    SH_REASON("71 (EX_OSERR)") },
	{ "67 no such user", SH_EXIT(67), DELIVER_PERM, "5.1.1",
	    SH_REASON("67 (EX_NOUSER)") },
	{ "68 no such host", SH_EXIT(68), DELIVER_PERM, "5.1.2",
	    SH_REASON("68 (EX_NOHOST)") },
	{ "65 data error", SH_EXIT(65), DELIVER_PERM, "5.6.0",
	    SH_REASON("65 (EX_DATAERR)") },
	{ "73 cannot create", SH_EXIT(73), DELIVER_PERM, "5.2.0",
	    SH_REASON("73 (EX_CANTCREAT)") },
	{ "76 protocol", SH_EXIT(76), DELIVER_PERM, "5.5.0",
	    SH_REASON("76 (EX_PROTOCOL)") },
	{ "77 no permission", SH_EXIT(77), DELIVER_PERM, "5.7.0",
	    SH_REASON("77 (EX_NOPERM)") },
	{ "78 configuration", SH_EXIT(78), DELIVER_PERM, "5.3.5",
	    SH_REASON("78 (EX_CONFIG)") },
	{ "64 usage", SH_EXIT(64), DELIVER_PERM, "5.3.0",
	    SH_REASON("64 (EX_USAGE)") },
	{ "66 no input", SH_EXIT(66), DELIVER_PERM, "5.3.0",
	    SH_REASON("66 (EX_NOINPUT)") },
	{ "69 unavailable", SH_EXIT(69), DELIVER_PERM, "5.3.0",
	    SH_REASON("69 (EX_UNAVAILABLE)") },
	{ "70 software", SH_EXIT(70), DELIVER_PERM, "5.3.0",
	    SH_REASON("70 (EX_SOFTWARE)") },
	{ "72 OS file", SH_EXIT(72), DELIVER_PERM, "5.3.0",
	    SH_REASON("72 (EX_OSFILE)") },
	{ "74 I/O error", SH_EXIT(74), DELIVER_PERM, "5.3.0",
	    SH_REASON("74 (EX_IOERR)") },
	{ "1 with output", SH_EXIT(1), DELIVER_PERM, "5.3.0",
	    SH_REASON("1") },
	{ "255", SH_EXIT(255), DELIVER_PERM, "5.3.0", SH_REASON("255") },
	{ "killed by a signal", "/bin/sh -c 'echo oops; kill -9 $$'",
	    DELIVER_TEMP, "4.3.0",
	    "command /bin/sh killed by signal 9 (Killed): oops" },
	{ "a missing program", "/nonexistent/prog -x", DELIVER_TEMP, "4.3.0",
	    "cannot run /nonexistent/prog: No such file or directory" },
	{ "a program that is not executable", "DIR/content.msg",
	    DELIVER_TEMP, "4.3.0",
	    "cannot run DIR/content.msg: Permission denied" },
	{ "a bad command", "/bin/x 'a", DELIVER_TEMP, "4.3.0",
	    "bad pipe command: unterminated ' quote" },
	{ "stdout and stderr both reach the reason",
	    "/bin/sh -c 'echo out; echo err >&2; exit 1'", DELIVER_PERM,
	    "5.3.0", "command /bin/sh exited 1: out; err" },
	{ "the first 5 lines, trimmed, blank ones counted, sanitised",
	    "/bin/sh -c 'printf \"  one\\r\\n\\n\\ttwo\\033[1m \\nthree\\n"
	    "four\\nfive\\nsix\\n\"; exit 1'", DELIVER_PERM, "5.3.0",
	    "command /bin/sh exited 1: one; two?[1m; three; four" },
};

static void
test_exit_status(void **state)
{
	struct fixture *f = *state;
	char *reason;
	size_t i;

	for (i = 0; i < NELEM(exit_cases); i++) {
		const struct exit_case *c = &exit_cases[i];

		print_message("exit: %s\n", c->what);
		assert_int_equal(run(f, c->command), c->result);
		assert_string_equal(f->out.status, c->status);
		reason = subst(f, c->reason, -1);
		assert_string_equal(f->out.reason, reason);
		free(reason);
	}
}

/* at most PIPE_OUTPUT_MAX (300) octets of output in the reason */
static void
test_output_bounded(void **state)
{
	struct fixture *f = *state;
	char x300[301], x301[302];

	memset(x300, 'x', 300);
	x300[300] = '\0';
	memset(x301, 'x', 301);
	x301[301] = '\0';
	assert_int_equal(run(f, "/bin/sh -c '/usr/bin/head -c 5000 "
	    "/dev/zero | /usr/bin/tr \"\\0\" x; exit 1'"), DELIVER_PERM);
	assert_non_null(strstr(f->out.reason, x300));
	assert_null(strstr(f->out.reason, x301));
	assert_true(strlen(f->out.reason) <= DELIVER_REASON_MAX);
}

/* timeouts: SIGTERM, and SIGKILL for a program that ignores it */
struct timeout_case {
	const char *what;
	const char *command; /* writes its pid to DIR/pid */
	int64_t timeout_ms, max_ms;
	const char *reason;
};

static const struct timeout_case timeout_cases[] = {
	{ "sleep 10 with 300 ms",
	    "/bin/sh -c 'echo $$ > DIR/pid; /bin/sleep 10; echo'", 300, 1000,
	    "command /bin/sh timed out after 300 ms" },
	{ "a group ignoring SIGTERM is killed",
	    "/bin/sh -c 'trap \"\" TERM; echo $$ > DIR/pid; echo waiting; "
	    "/bin/sleep 10; echo'", 300, 1500,
	    "command /bin/sh timed out after 300 ms: waiting" },
	{ "whole seconds",
	    "/bin/sh -c 'echo $$ > DIR/pid; /bin/sleep 10; echo'", 1000, 1700,
	    "command /bin/sh timed out after 1 s" },
	{ "a program writing without end",
	    "/bin/sh -c 'echo $$ > DIR/pid; /usr/bin/yes'", 300, 1000,
	    "command /bin/sh timed out after 300 ms: y; y; y; y; y" },
};

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < NELEM(timeout_cases); i++) {
		const struct timeout_case *c = &timeout_cases[i];

		print_message("timeout: %s\n", c->what);
		f->req.timeout_ms = c->timeout_ms;
		assert_int_equal(run(f, c->command), DELIVER_TEMP);
		assert_string_equal(f->out.status, "4.3.0");
		assert_string_equal(f->out.reason, c->reason);
		assert_true(f->took_ms >= c->timeout_ms);
		assert_true(f->took_ms < c->max_ms);
		assert_group_gone(f);
	}
}

/* what a command leaves running in its group is killed when it exits,
 * and does not hold the delivery up though it holds the output open */
static void
test_leftovers_killed(void **state)
{
	struct fixture *f = *state;

	f->req.timeout_ms = 0;
	assert_int_equal(run(f, "/bin/sh -c 'echo $$ > DIR/pid; "
	    "/bin/sleep 30 & /bin/sleep 30 & exit 0'"), DELIVER_OK);
	assert_true(f->took_ms < 1000);
	assert_group_gone(f);
}

/* big_content - n octets of "0123456789abcdef\r\n" lines as content */
static void
big_content(struct fixture *f, size_t n)
{
	static const char line[] = "0123456789abcdef\r\n";
	struct buf b;

	buf_init(&b);
	while (b.len + sizeof(line) - 1 <= n)
		buf_puts(&b, line);
	write_file(f->content, b.data, b.len);
	buf_free(&b);
}

/* no deadlock: the program does not read its input, or writes a lot
 * before it reads */
static void
test_no_deadlock(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct buf b;

	big_content(f, 3 << 20);
	f->req.timeout_ms = 20000;
	print_message("3 MiB to a program that reads nothing\n");
	assert_int_equal(run(f, "/bin/true"), DELIVER_OK);
	assert_true(f->took_ms < 5000);
	print_message("1 MiB of output before reading the input\n");
	assert_int_equal(run(f, "/bin/sh -c '/usr/bin/yes | /usr/bin/head "
	    "-c 1048576; /bin/cat > DIR/got'"), DELIVER_OK);
	assert_true(f->took_ms < 10000);
	in_dir(f, "got", path, sizeof(path));
	assert_int_equal(read_if_there(path, &b), 0);
	/* 2 header lines + the content's lines, each one octet shorter */
	assert_int_equal(b.len, 61 + ((3u << 20) / 18) * 17);
	buf_free(&b);
	print_message("a program that reads half and exits 0\n");
	assert_int_equal(run(f, "/bin/sh -c '/usr/bin/head -c 1000 "
	    ">/dev/null'"), DELIVER_OK);
}

/* the content cannot be read: deferred, and the program never sees the
 * end of a truncated message */
static void
test_content_unreadable(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct buf b;

	close(f->req.content_fd);
	f->req.content_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(run(f, "/bin/sh -c '/bin/cat > DIR/got; "
	    "echo done > DIR/done'"), DELIVER_TEMP);
	assert_string_equal(f->out.status, "4.3.0");
	assert_string_equal(f->out.reason,
	    "cannot read the queued message 0ABCDEFGHIJKLM");
	in_dir(f, "done", path, sizeof(path));
	assert_int_equal(read_if_there(path, &b), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_limits),
		cmocka_unit_test_setup_teardown(test_message_on_stdin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_environment, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hygiene, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exit_status, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_output_bounded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_killed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_deadlock, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_content_unreadable,
		    setup, teardown),
	};

	log_init("test", 0, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

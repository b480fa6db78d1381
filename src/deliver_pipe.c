/*
 * deliver_pipe.c - local delivery to a program (procmail, maildrop, any
 * MDA): the message on its standard input, the exit status (sysexits.h)
 * deciding what happened, as Postfix's pipe(8) and local(8) do.
 *
 * The one idea: the program is a guest that must leave nothing behind.
 * It runs with execve and an argv (deliver_pipe_argv.c; a shell only
 * when the command names one), in its own session and process group,
 * with an environment built from scratch, default signal dispositions
 * and no descriptor but 0, 1 and 2.  When it exits, whatever it left
 * running in its group is killed; when it overruns req->timeout_ms, the
 * group gets SIGTERM and, PIPE_KILL_GRACE_MS later, SIGKILL.  Group ids
 * are exact: the leader is reaped only after its group was signalled, so
 * its id cannot have been reused.
 *
 * Feeding and reading: the message is written by deliver_write_message,
 * a blocking streamer (Return-Path:, Delivered-To:, CRLF as LF), from a
 * feeder process of its own, while this process reads the program's
 * output and watches its exit (a pidfd) and the clock in one poll loop.
 * Two processes because the writer blocks: in one process a program that
 * writes a lot before it reads would fill its output pipe while we sit
 * in a write to its input, and neither would move.  The feeder costs a
 * fork but no copy of the message, however large.  A program that exits
 * or closes its input early is not an error by itself (the feeder gets
 * EPIPE and says so); its exit status decides.  A content read error in
 * the feeder kills the program before it can see the end of a truncated
 * message, and the delivery is deferred.
 *
 * The program's first output lines (PIPE_OUTPUT_LINES, PIPE_OUTPUT_MAX
 * octets), sanitised, go into the reason, which may end up in a bounce;
 * the rest is read and thrown away so the program never blocks on it.
 */
#include "deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "util.h"

/* the program's output kept for the reason: lines and octets */
#define PIPE_OUTPUT_LINES 5
#define PIPE_OUTPUT_MAX 300
/* between SIGTERM and SIGKILL; also how long the feeder may take to go
 * once the program is gone */
#define PIPE_KILL_GRACE_MS 500
/* octets read from the program's output at a time */
#define PIPE_READ_BUF 8192
/* the open-file soft limit a program starts with (select(2)'s FD_SETSIZE) */
#define PIPE_NOFILE 1024

/* the feeder's exit codes */
#define FEED_DONE 0   /* the whole message was written */
#define FEED_UNREAD 1 /* the program stopped reading: not an error */
#define FEED_FAILED 2 /* the content could not be read: defer */

/* exit statuses (sysexits.h) and what they mean for the recipient;
 * any other non-zero status is permanent, 5.3.0 */
static const struct pipe_exit {
	int code;
	const char *name;
	enum deliver_result result;
	const char *status;
} pipe_exits[] = {
	{ EX_USAGE, "EX_USAGE", DELIVER_PERM, "5.3.0" },
	{ EX_DATAERR, "EX_DATAERR", DELIVER_PERM, "5.6.0" },
	{ EX_NOINPUT, "EX_NOINPUT", DELIVER_PERM, "5.3.0" },
	{ EX_NOUSER, "EX_NOUSER", DELIVER_PERM, "5.1.1" },
	{ EX_NOHOST, "EX_NOHOST", DELIVER_PERM, "5.1.2" },
	{ EX_UNAVAILABLE, "EX_UNAVAILABLE", DELIVER_PERM, "5.3.0" },
	{ EX_SOFTWARE, "EX_SOFTWARE", DELIVER_PERM, "5.3.0" },
	{ EX_OSERR, "EX_OSERR", DELIVER_TEMP, "4.3.0" },
	{ EX_OSFILE, "EX_OSFILE", DELIVER_PERM, "5.3.0" },
	{ EX_CANTCREAT, "EX_CANTCREAT", DELIVER_PERM, "5.2.0" },
	{ EX_IOERR, "EX_IOERR", DELIVER_PERM, "5.3.0" },
	{ EX_TEMPFAIL, "EX_TEMPFAIL", DELIVER_TEMP, "4.3.0" },
	{ EX_PROTOCOL, "EX_PROTOCOL", DELIVER_PERM, "5.5.0" },
	{ EX_NOPERM, "EX_NOPERM", DELIVER_PERM, "5.7.0" },
	{ EX_CONFIG, "EX_CONFIG", DELIVER_PERM, "5.3.5" },
};

/* the first output of the program */
struct pipe_output {
	char head[PIPE_OUTPUT_MAX];
	size_t len;
	size_t lines;
	int full; /* enough kept: the rest is thrown away */
};

/* what the child needs between fork and execve, prepared before the fork
 * (the child only makes async-signal-safe calls) */
struct pipe_child {
	char **argv;
	char **envp;
	const char *home; /* the working directory, "/" if it fails */
	int in_r, out_w, err_w;
	int open_max;     /* for closing descriptors without close_range */
};

/* one run of the program */
struct pipe_run {
	pid_t pid;        /* the program, leader of its process group */
	int pidfd;
	pid_t feeder;
	int feeder_pidfd;
	int in_w;         /* the program's input, until the feeder has it */
	int out;          /* its output (and error output), -1 at EOF */
	struct pipe_output output;
	int status;       /* waitpid status of the program */
	int timed_out;
	int feed_failed;
	int wait_errno;   /* poll failed: the run was ended */
};

/* ---- the program's process (between fork and execve) ---- */

/* child_fds - the input on 0, the output on 1 and 2, every other
 * descriptor closed at execve (the error pipe still open until then).
 * Copies above 2 first: a pipe may itself be 0, 1 or 2. */
static int
child_fds(struct pipe_child *c)
{
	int in = fcntl(c->in_r, F_DUPFD_CLOEXEC, 3);
	int out = fcntl(c->out_w, F_DUPFD_CLOEXEC, 3);
	int err = fcntl(c->err_w, F_DUPFD_CLOEXEC, 3);
	int fd;

	if (in == -1 || out == -1 || err == -1)
		return -1;
	c->err_w = err;
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(out, 2) == -1)
		return -1;
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	for (fd = 3; fd < c->open_max; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* child_signals - default dispositions (SIGPIPE is ignored in tern's
 * daemons, and an ignored signal stays ignored across execve), and no
 * signal blocked.  glibc's sigaction refuses 32 and 33, its own: they
 * stay as they are, and a glibc program sets them at start anyway. */
static void
child_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* KILL, STOP, 32, 33: EINVAL */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* child_limits - the open-file soft limit tern raised for its sessions
 * goes back to the usual 1024 (a program using select(2) breaks above
 * it), as service managers do for what they start */
static void
child_limits(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > PIPE_NOFILE) {
		rl.rlim_cur = PIPE_NOFILE;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* child_exec - become the program; on failure the errno goes back
 * through the error pipe (closed by a successful execve) */
static _Noreturn void
child_exec(struct pipe_child *c)
{
	int e;

	if (setsid() == -1 || child_fds(c) == -1)
		goto fail;
	child_signals();
	child_limits();
	if (chdir(c->home) == -1 && chdir("/") == -1)
		goto fail;
	execve(c->argv[0], c->argv, c->envp);
fail:
	e = errno;
	while (write(c->err_w, &e, sizeof(e)) == -1 && errno == EINTR)
		;
	_exit(127);
}

/* ---- the feeder process ---- */

/* feeder - write the message to the program's input and exit */
static _Noreturn void
feeder(int fd, pid_t prog, const struct deliver_req *req)
{
	char err[DELIVER_REASON_MAX + 1];
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	signal(SIGPIPE, SIG_IGN); /* EPIPE instead */
	if (deliver_write_message(fd, req, 0, "to the command", err,
	    sizeof(err)) != -1)
		_exit(FEED_DONE);
	/* POLLERR on a pipe's write end: no reader is left */
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))
		_exit(FEED_UNREAD);
	/* a read error: the program must not see the end of a truncated
	 * message (its leader is not reaped before we are: the id is its) */
	killpg(prog, SIGKILL);
	_exit(FEED_FAILED);
}

/* ---- the environment ---- */

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* pipe_home - HOME and the working directory: the user's home, or "/"
 * when there is none (a program may need HOME set; "/" is harmless) */
static const char *
pipe_home(const struct deliver_req *req)
{
	return req->home != NULL && req->home[0] != '\0' ? req->home : "/";
}

/* pipe_env - the program's whole environment; nothing is inherited */
static char **
pipe_env(const struct deliver_req *req)
{
	const char *user = str_or_empty(req->user);
	const struct {
		const char *name, *value;
	} vars[] = {
		{ "PATH", "/usr/bin:/bin" },
		{ "SHELL", "/bin/sh" },
		{ "USER", user },
		{ "LOGNAME", user },
		{ "HOME", pipe_home(req) },
		{ "SENDER", str_or_empty(req->return_path) },
		{ "RECIPIENT", str_or_empty(req->delivered_to) },
		{ "LOCAL", str_or_empty(req->local) },
		{ "EXTENSION", str_or_empty(req->extension) },
		{ "DOMAIN", str_or_empty(req->domain) },
	};
	size_t n = sizeof(vars) / sizeof(vars[0]), i;
	char **env = xcalloc(n + 1, sizeof(*env));

	for (i = 0; i < n; i++)
		env[i] = xasprintf("%s=%s", vars[i].name, vars[i].value);
	return env;
}

static void
env_free(char **env)
{
	size_t i;

	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/* ---- the output ---- */

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* output_keep - keep the first lines of what the program said */
static void
output_keep(struct pipe_output *o, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && !o->full; i++) {
		o->head[o->len++] = p[i];
		if (p[i] == '\n')
			o->lines++;
		o->full = o->len == PIPE_OUTPUT_MAX ||
		    o->lines == PIPE_OUTPUT_LINES;
	}
}

/* output_read - one read of the program's output: 1 when something was
 * read, 0 when nothing was there or at its end (out closed) */
static int
output_read(struct pipe_run *r)
{
	char buf[PIPE_READ_BUF];
	ssize_t n = read(r->out, buf, sizeof(buf));

	if (n > 0) {
		output_keep(&r->output, buf, (size_t)n);
		return 1;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	close(r->out);
	r->out = -1;
	return 0;
}

/* output_summary - the kept lines, trimmed, empty ones left out, joined
 * with "; " and sanitised, into dst (dstlen > 0) */
static void
output_summary(const struct pipe_output *o, char *dst, size_t dstlen)
{
	const char *p = o->head, *end = o->head + o->len, *nl, *e;
	struct buf b;

	buf_init(&b);
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		for (e = nl; e > p && (e[-1] == '\r' || is_blank(e[-1])); e--)
			;
		while (p < e && is_blank(*p))
			p++;
		if (p == e)
			continue;
		if (b.len > 0)
			buf_puts(&b, "; ");
		buf_append(&b, p, (size_t)(e - p));
	}
	util_sanitise(dst, dstlen - 1, b.data, b.len);
	buf_free(&b);
}

/* ---- the run ---- */

static void
close_fd(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}

/* reap - waitpid through EINTR */
static int
reap(pid_t pid, int *status)
{
	pid_t r;

	do
		r = waitpid(pid, status, 0);
	while (r == -1 && errno == EINTR);
	return r == pid ? 0 : -1;
}

/* wait_exit - 1 when the process behind pidfd exits within ms (it is
 * then a zombie, not reaped), else 0 */
static int
wait_exit(int pidfd, int ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int64_t end = util_mono_ms() + ms, left;
	int n;

	for (;;) {
		left = end - util_mono_ms();
		n = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (n == 1)
			return 1;
		if (n == 0 || errno != EINTR)
			return 0;
	}
}

/* exec_errno - the errno the child sent back, 0 when execve worked */
static int
exec_errno(int fd)
{
	ssize_t n;
	int e = 0;

	do
		n = read(fd, &e, sizeof(e));
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

/* start_program - fork and exec the program; its input's write end is
 * left in r->in_w, its output in r->out */
static int
start_program(struct pipe_run *r, struct pipe_child *c, char *err,
    size_t errlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int e;

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(ep, O_CLOEXEC) == -1) {
		e = errno;
		goto fail;
	}
	c->in_r = in[0];
	c->out_w = out[1];
	c->err_w = ep[1];
	r->pid = fork();
	if (r->pid == 0)
		child_exec(c);
	e = errno;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&ep[1]);
	if (r->pid == -1)
		goto fail;
	r->in_w = in[1];
	r->out = out[0];
	e = exec_errno(ep[0]);
	close_fd(&ep[0]);
	if (e != 0) {
		reap(r->pid, &r->status);
		r->pid = -1;
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s", strerror(e));
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&ep[0]);
	close_fd(&ep[1]);
	r->in_w = r->out = -1;
	return -1;
}

/* start_feeder - the feeder process, holding the only write end of the
 * program's input; -1 with errno */
static int
start_feeder(struct pipe_run *r, const struct deliver_req *req)
{
	r->feeder = fork();
	if (r->feeder == 0) {
		close(r->out);
		close(r->pidfd);
		feeder(r->in_w, r->pid, req);
	}
	close_fd(&r->in_w);
	if (r->feeder == -1)
		return -1;
	r->feeder_pidfd = pidfd_open(r->feeder, 0);
	return 0;
}

/* run_start - the program and its feeder; -1 with err ("REASON") when
 * the program cannot be run (nothing is left running then) */
static int
run_start(struct pipe_run *r, struct pipe_child *c,
    const struct deliver_req *req, char *err, size_t errlen)
{
	if (start_program(r, c, err, errlen) == -1)
		return -1;
	fcntl(r->out, F_SETFL, O_NONBLOCK);
	r->pidfd = pidfd_open(r->pid, 0);
	if (r->pidfd == -1 || start_feeder(r, req) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		killpg(r->pid, SIGKILL);
		reap(r->pid, &r->status);
		close_fd(&r->pidfd);
		close_fd(&r->in_w);
		close_fd(&r->out);
		return -1;
	}
	return 0;
}

/* run_terminate - the timeout: SIGTERM to the group, SIGKILL if the
 * leader has not exited PIPE_KILL_GRACE_MS later (run_finish kills the
 * rest of the group) */
static void
run_terminate(struct pipe_run *r)
{
	killpg(r->pid, SIGTERM);
	if (!wait_exit(r->pidfd, PIPE_KILL_GRACE_MS))
		killpg(r->pid, SIGKILL);
}

/* poll_ms - the poll timeout until deadline (0: none): -1 for none, 0
 * once it has passed */
static int
poll_ms(int64_t deadline)
{
	int64_t left;

	if (deadline == 0)
		return -1;
	left = deadline - util_mono_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* run_wait - read the output until the program exits, the time is up
 * (checked before every poll: a program that never stops writing must
 * not keep the timeout away), or poll fails */
static void
run_wait(struct pipe_run *r, int64_t timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? util_mono_ms() + timeout_ms : 0;
	struct pollfd pfd[2];
	int ms, n;

	for (;;) {
		ms = poll_ms(deadline);
		if (ms == 0) {
			r->timed_out = 1;
			run_terminate(r);
			return;
		}
		pfd[0] = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = r->out, .events = POLLIN };
		n = poll(pfd, 2, ms);
		if (n == -1 && errno != EINTR) {
			r->wait_errno = errno;
			return;
		}
		if (n > 0 && pfd[1].revents != 0)
			output_read(r);
		if (n > 0 && pfd[0].revents != 0)
			return;
	}
}

/* feeder_finish - the feeder goes on its own once no one reads; if a
 * process outside the group still holds the input it is killed */
static void
feeder_finish(struct pipe_run *r)
{
	int status;

	if (r->feeder_pidfd == -1 ||
	    !wait_exit(r->feeder_pidfd, PIPE_KILL_GRACE_MS))
		kill(r->feeder, SIGKILL);
	if (reap(r->feeder, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == FEED_FAILED)
		r->feed_failed = 1;
	close_fd(&r->feeder_pidfd);
}

/* run_finish - kill what is left of the group (the leader, a zombie or
 * not, still holds its id), keep what output is waiting, reap */
static void
run_finish(struct pipe_run *r)
{
	killpg(r->pid, SIGKILL);
	while (r->out != -1 && !r->output.full && output_read(r) == 1)
		;
	close_fd(&r->out);
	feeder_finish(r);
	if (reap(r->pid, &r->status) == -1)
		r->wait_errno = errno;
	close_fd(&r->pidfd);
}

/* ---- the outcome ---- */

static const struct pipe_exit *
exit_find(int code)
{
	size_t i;

	for (i = 0; i < sizeof(pipe_exits) / sizeof(pipe_exits[0]); i++)
		if (pipe_exits[i].code == code)
			return &pipe_exits[i];
	return NULL;
}

/* exit_outcome - the program exited with code */
static void
exit_outcome(const char *prog, int code, const char *said,
    struct deliver_outcome *out)
{
	const struct pipe_exit *x = exit_find(code);
	const char *sep = said[0] != '\0' ? ": " : "";

	if (code == 0) {
		deliver_outcome_set(out, DELIVER_OK, "2.0.0",
		    "delivered to command: %s", prog);
		return;
	}
	if (x == NULL) {
		deliver_outcome_set(out, DELIVER_PERM, "5.3.0",
		    "command %s exited %d%s%s", prog, code, sep, said);
		return;
	}
	deliver_outcome_set(out, x->result, x->status,
	    "command %s exited %d (%s)%s%s", prog, code, x->name, sep, said);
}

/* run_outcome - what the run means for the recipient */
static void
run_outcome(const struct pipe_run *r, const char *prog,
    const struct deliver_req *req, struct deliver_outcome *out)
{
	char said[PIPE_OUTPUT_MAX + 1];
	const char *sep;
	int64_t t = req->timeout_ms;
	int sig;

	output_summary(&r->output, said, sizeof(said));
	sep = said[0] != '\0' ? ": " : "";
	if (r->timed_out) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "command %s timed out after %lld %s%s%s", prog,
		    (long long)(t % 1000 == 0 ? t / 1000 : t),
		    t % 1000 == 0 ? "s" : "ms", sep, said);
	} else if (r->feed_failed) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "cannot read the queued message %s", req->qid);
	} else if (r->wait_errno != 0) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "cannot wait for command %s: %s", prog,
		    strerror(r->wait_errno));
	} else if (WIFSIGNALED(r->status)) {
		sig = WTERMSIG(r->status);
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "command %s killed by signal %d (%s)%s%s", prog, sig,
		    strsignal(sig), sep, said);
	} else {
		exit_outcome(prog, WEXITSTATUS(r->status), said, out);
	}
}

/* deliver_pipe - run command with the message on its input */
void
deliver_pipe(const char *command, const struct deliver_req *req,
    struct deliver_outcome *out)
{
	char err[DELIVER_REASON_MAX + 1];
	struct pipe_run r = { .pid = -1, .pidfd = -1, .feeder = -1,
		.feeder_pidfd = -1, .in_w = -1, .out = -1 };
	struct pipe_child c;
	char **argv;
	long max = sysconf(_SC_OPEN_MAX);

	if (deliver_pipe_argv(command, req, &argv, err, sizeof(err)) == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "bad pipe command: %s", err);
		return;
	}
	c = (struct pipe_child){ .argv = argv, .envp = pipe_env(req),
		.home = pipe_home(req),
		.open_max = max > 0 && max < INT_MAX ? (int)max : 65536 };
	if (run_start(&r, &c, req, err, sizeof(err)) == -1) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
		    "cannot run %s: %s", argv[0], err);
	} else {
		run_wait(&r, req->timeout_ms);
		run_finish(&r);
		run_outcome(&r, argv[0], req, out);
	}
	env_free(c.envp);
	free(argv);
}

/*
 * sendmail.c - the sendmail(1), mailq(1) and newaliases(1) commands: how
 * the programs of the host (cron, mutt, PHP's mail()) hand tern mail.
 *
 * Run as the submitter, never with tern's privileges: the message is
 * checked here (so mistakes get a clear message and a sysexits(3) code),
 * written in the drop file form (drop.h) and handed to tern-drop, the
 * setgid program that stores it in $home/spool/drop, owned by the
 * submitter's real uid, durably, before we exit 0.  The queue process
 * picks it up when it runs (at once when it is up, at its start when it
 * is down).  Flags are sendmail's, as Postfix's sendmail(1) takes them:
 * -t -i -oi -f -r -F -bs -bp -bi -bm -v -C, -q (flush), the legacy -o*
 * and the DSN and mode options ignored.
 *
 *   mailq (-bp)        runs `tern queue` (the control socket's listing)
 *   newaliases (-bi)   checks the aliases file and sends SIGHUP to the
 *                      running master ($home/state/tern.pid)
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "aliases.h"
#include "conf.h"
#include "drop.h"
#include "sendmail.h"
#include "smtp_parse.h"
#include "util.h"

/* a -bs command line, at most (RFC 5321 4.5.3.1.4, with room for MAIL
 * parameters as the smtpd allows) */
#define SM_LINE_MAX 2048

struct sm {
	const struct conf *conf;
	const char *conf_path;  /* -C */
	char *sender;           /* -f: NULL not given, "" null sender */
	char *name;             /* -F */
	char **rcpts;
	size_t nrcpts;
	int opt_t, opt_i, verbose;
};

static int
sm_err(int code, const char *fmt, ...) TERN_PRINTF(2, 3);

static int
sm_err(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sendmail: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return code;
}

/* qualify - addr as "local@domain": a bare name gets @hostname; NULL when
 * it is no address we send to */
static char *
qualify(const struct sm *s, const char *addr)
{
	char *a = strchr(addr, '@') != NULL ? xstrdup(addr) :
	    xasprintf("%s@%s", addr, s->conf->hostname);

	if (drop_addr_ok(a))
		return a;
	free(a);
	return NULL;
}

/* rcpts_add - the addresses of a list ("a@b, Name <c@d>") as recipients */
static int
rcpts_add(struct sm *s, const char *list)
{
	char err[128], **found = NULL, *q;
	size_t n = 0, i;
	int rc = 0;

	if (drop_addr_list(list, strlen(list), &found, &n, DROP_RCPTS_MAX,
	    err, sizeof(err)) == -1)
		rc = sm_err(EX_DATAERR, "%s", err);
	for (i = 0; i < n; i++) {
		q = rc == 0 ? qualify(s, found[i]) : NULL;
		if (q == NULL && rc == 0)
			rc = sm_err(EX_DATAERR, "bad recipient address "
			    "\"%s\"", found[i]);
		else if (q != NULL) {
			s->rcpts = xreallocarray(s->rcpts, s->nrcpts + 1,
			    sizeof(*s->rcpts));
			s->rcpts[s->nrcpts++] = q;
		}
		free(found[i]);
	}
	free(found);
	return rc;
}

/* set_sender - -f ADDR: "<>" or "" is the null sender */
static int
set_sender(struct sm *s, const char *v)
{
	size_t len = strlen(v);
	char *bare;

	if (len >= 2 && v[0] == '<' && v[len - 1] == '>')
		bare = xstrndup(v + 1, len - 2);
	else
		bare = xstrdup(v);
	free(s->sender);
	s->sender = bare[0] == '\0' ? xstrdup("") : qualify(s, bare);
	free(bare);
	if (s->sender == NULL)
		return sm_err(EX_USAGE, "bad sender address \"%s\"", v);
	return 0;
}

/* helper_path - tern-drop: $TERN_DROP, else beside our own binary (the
 * setgid copy is what gives access; naming another one gains nothing) */
static char *
helper_path(void)
{
	const char *env = getenv("TERN_DROP");
	char self[PATH_MAX];
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup("/usr/local/sbin/tern-drop");
	self[n] = '\0';
	return xasprintf("%s/tern-drop", dirname(self));
}

/* submit - one message through tern-drop; a sysexits code */
static int
submit(const struct sm *s, const char *sender, char *const *rcpts,
    size_t nrcpts, const char *content, size_t len)
{
	char err[128], *helper, *dir;
	struct drop check;
	struct buf file;
	int p[2], status, rc;
	pid_t pid;

	if (nrcpts == 0)
		return sm_err(EX_USAGE, "no recipients given");
	if (len > s->conf->message_size)
		return sm_err(EX_DATAERR, "message larger than the limit "
		    "(limits message-size=%llu)",
		    (unsigned long long)s->conf->message_size);
	buf_init(&file);
	drop_format(&file, sender, s->name, rcpts, nrcpts, content, len);
	rc = drop_parse(&check, file.data, file.len, s->conf->max_rcpts, err,
	    sizeof(err));
	drop_free(&check);
	if (rc == -1) {
		buf_free(&file);
		return sm_err(EX_DATAERR, "cannot send: %s", err);
	}
	helper = helper_path();
	dir = xasprintf("%s/spool/drop", s->conf->home);
	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		rc = sm_err(EX_OSERR, "cannot start %s: %s", helper,
		    strerror(errno));
		goto out;
	}
	if (pid == 0) {
		dup2(p[0], STDIN_FILENO);
		execl(helper, "tern-drop", dir, (char *)NULL);
		fprintf(stderr, "sendmail: cannot run %s: %s\n", helper,
		    strerror(errno));
		_exit(EX_UNAVAILABLE);
	}
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	rc = util_write_all(p[1], file.data, file.len);
	close(p[1]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(status))
		rc = sm_err(EX_SOFTWARE, "%s died", helper);
	else if (WEXITSTATUS(status) != 0)
		rc = sm_err(WEXITSTATUS(status), "the message was not queued "
		    "(%s exited with %d)", helper, WEXITSTATUS(status));
	else if (rc == -1)
		rc = sm_err(EX_IOERR, "writing to %s failed", helper);
	else if (s->verbose)
		fprintf(stderr, "sendmail: queued for %zu recipient%s (%s)\n",
		    nrcpts, nrcpts == 1 ? "" : "s", dir);
out:
	free(helper);
	free(dir);
	buf_free(&file);
	return rc;
}

/* read_line - one line of stdin into b (with its LF); 0 at the end */
static ssize_t
read_line(struct buf *b)
{
	int c;

	buf_reset(b);
	while ((c = getchar()) != EOF) {
		buf_putc(b, c);
		if (c == '\n')
			break;
	}
	return (ssize_t)b->len;
}

/* is_dot - a line that is just "." (LF or CRLF) */
static int
is_dot(const struct buf *l)
{
	return (l->len == 2 && memcmp(l->data, ".\n", 2) == 0) ||
	    (l->len == 3 && memcmp(l->data, ".\r\n", 3) == 0) ||
	    (l->len == 1 && l->data[0] == '.');
}

/* read_message - stdin, up to a "." line unless -i, at most message-size
 * (+1, so that too much is seen) */
static int
read_message(const struct sm *s, struct buf *msg)
{
	struct buf line;
	int rc = 0;

	buf_init(&line);
	while (read_line(&line) > 0) {
		if (!s->opt_i && is_dot(&line))
			break;
		if (msg->len + line.len > s->conf->message_size) {
			rc = sm_err(EX_DATAERR, "message larger than the "
			    "limit (limits message-size=%llu)",
			    (unsigned long long)s->conf->message_size);
			break;
		}
		buf_append(msg, line.data, line.len);
	}
	if (rc == 0 && ferror(stdin))
		rc = sm_err(EX_IOERR, "reading the message: %s",
		    strerror(errno));
	buf_free(&line);
	return rc;
}

/* send_stdin - the ordinary mode: the message on stdin */
static int
send_stdin(struct sm *s)
{
	char err[128], **found = NULL;
	size_t n = 0, i;
	struct buf msg;
	int rc;

	buf_init(&msg);
	rc = read_message(s, &msg);
	if (rc == 0 && memchr(msg.data, '\0', msg.len) != NULL)
		rc = sm_err(EX_DATAERR, "the message holds a NUL octet");
	if (rc == 0 && s->opt_t) {
		if (drop_header_rcpts(msg.data, msg.len, &found, &n,
		    DROP_RCPTS_MAX, err, sizeof(err)) == -1)
			rc = sm_err(EX_DATAERR, "%s", err);
		for (i = 0; i < n; i++) {
			if (rc == 0)
				rc = rcpts_add(s, found[i]);
			free(found[i]);
		}
		free(found);
	}
	if (rc == 0)
		rc = submit(s, s->sender, s->rcpts, s->nrcpts, msg.data,
		    msg.len);
	buf_free(&msg);
	return rc;
}

/* -bs */

struct bs {
	struct sm *s;
	char *sender;     /* NULL: no MAIL yet */
	char **rcpts;
	size_t nrcpts;
};

static void
bs_reply(const char *fmt, ...) TERN_PRINTF(1, 2);

static void
bs_reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\r\n");
	fflush(stdout);
}

static void
bs_reset(struct bs *b)
{
	size_t i;

	free(b->sender);
	b->sender = NULL;
	for (i = 0; i < b->nrcpts; i++)
		free(b->rcpts[i]);
	free(b->rcpts);
	b->rcpts = NULL;
	b->nrcpts = 0;
}

/* bs_path - MAIL or RCPT: the address, qualified; NULL after a reply */
static char *
bs_path(struct bs *b, char *arg, int mail)
{
	struct smtp_pathcmd pc;
	char addr[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2], *q;

	if ((mail ? smtp_parse_mail(arg, &pc) : smtp_parse_rcpt(arg, &pc)) !=
	    SMTP_P_OK) {
		bs_reply("501 5.5.4 Syntax: %s", mail ? "MAIL FROM:<address>" :
		    "RCPT TO:<address>");
		return NULL;
	}
	if (pc.addr.is_null)
		return xstrdup("");
	if (smtp_addr_format(&pc.addr, addr, sizeof(addr)) == -1)
		addr[0] = '\0';
	q = addr[0] != '\0' ? qualify(b->s, addr) : NULL;
	if (q == NULL)
		bs_reply("553 5.1.%d Bad %s address", mail ? 7 : 3,
		    mail ? "sender" : "recipient");
	return q;
}

/* bs_data - DATA: the message up to ".", undotted, then the drop */
static void
bs_data(struct bs *b)
{
	struct buf msg, line;
	int too_big = 0, rc;

	bs_reply("354 End data with <CR><LF>.<CR><LF>");
	buf_init(&msg);
	buf_init(&line);
	while (read_line(&line) > 0 && !is_dot(&line)) {
		size_t skip = line.data[0] == '.';

		if (msg.len + line.len > b->s->conf->message_size)
			too_big = 1;
		if (!too_big)
			buf_append(&msg, line.data + skip, line.len - skip);
	}
	if (too_big)
		bs_reply("552 5.3.4 Message too big");
	else if (memchr(msg.data, '\0', msg.len) != NULL)
		bs_reply("554 5.6.0 A NUL octet in the message");
	else {
		/* submit's complaints go to stderr; the reply says it all */
		rc = submit(b->s, b->sender, b->rcpts, b->nrcpts, msg.data,
		    msg.len);
		if (rc == 0)
			bs_reply("250 2.0.0 Ok: queued");
		else if (rc == EX_DATAERR)
			bs_reply("554 5.6.0 Message refused");
		else
			bs_reply("451 4.3.0 Cannot queue the message now");
	}
	bs_reset(b);
	buf_free(&msg);
	buf_free(&line);
}

/* bs_command - one command line (without its end); 1 after QUIT */
static int
bs_command(struct bs *b, char *line)
{
	char *arg = strchr(line, ' ');
	char *a;

	if (arg != NULL)
		*arg++ = '\0';
	if (strcasecmp(line, "HELO") == 0)
		bs_reply("250 %s", b->s->conf->hostname);
	else if (strcasecmp(line, "EHLO") == 0)
		bs_reply("250-%s\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
		    "250 ENHANCEDSTATUSCODES", b->s->conf->hostname);
	else if (strcasecmp(line, "MAIL") == 0 && b->sender != NULL)
		bs_reply("503 5.5.1 Error: nested MAIL command");
	else if (strcasecmp(line, "MAIL") == 0 && arg != NULL) {
		if ((b->sender = bs_path(b, arg, 1)) != NULL)
			bs_reply("250 2.1.0 Ok");
	} else if (strcasecmp(line, "RCPT") == 0 && b->sender == NULL)
		bs_reply("503 5.5.1 Error: need MAIL command");
	else if (strcasecmp(line, "RCPT") == 0 && arg != NULL) {
		if (b->nrcpts >= b->s->conf->max_rcpts)
			bs_reply("452 4.5.3 Too many recipients");
		else if ((a = bs_path(b, arg, 0)) != NULL) {
			b->rcpts = xreallocarray(b->rcpts, b->nrcpts + 1,
			    sizeof(*b->rcpts));
			b->rcpts[b->nrcpts++] = a;
			bs_reply("250 2.1.5 Ok");
		}
	} else if (strcasecmp(line, "DATA") == 0 && b->nrcpts == 0)
		bs_reply("503 5.5.1 Error: need RCPT command");
	else if (strcasecmp(line, "DATA") == 0 && arg == NULL)
		bs_data(b);
	else if (strcasecmp(line, "RSET") == 0) {
		bs_reset(b);
		bs_reply("250 2.0.0 Ok");
	} else if (strcasecmp(line, "NOOP") == 0)
		bs_reply("250 2.0.0 Ok");
	else if (strcasecmp(line, "VRFY") == 0)
		bs_reply("252 2.5.0 Send some mail, I will try my best");
	else if (strcasecmp(line, "QUIT") == 0) {
		bs_reply("221 2.0.0 Bye");
		return 1;
	} else if (strcasecmp(line, "MAIL") == 0 ||
	    strcasecmp(line, "RCPT") == 0 || strcasecmp(line, "DATA") == 0)
		bs_reply("501 5.5.4 Syntax error in parameters");
	else
		bs_reply("502 5.5.2 Error: command not recognized");
	return 0;
}

/* smtp_stdio - -bs: an SMTP dialogue on stdin and stdout */
static int
smtp_stdio(struct sm *s)
{
	struct bs b = { .s = s };
	struct buf line;
	int quit = 0;

	buf_init(&line);
	bs_reply("220 %s ESMTP tern (local)", s->conf->hostname);
	while (!quit && read_line(&line) > 0) {
		if (line.len > SM_LINE_MAX) {
			bs_reply("500 5.5.2 Error: line too long");
			continue;
		}
		line.len = strcspn(line.data, "\r\n");
		line.data[line.len] = '\0';
		quit = bs_command(&b, line.data);
	}
	bs_reset(&b);
	buf_free(&line);
	return 0;
}

/* run_self - mailq, -q: this binary with another verb */
static int
run_self(const struct sm *s, const char *verb, const char *arg)
{
	const char *argv[6];
	size_t n = 0;

	argv[n++] = "tern";
	argv[n++] = verb;
	if (arg != NULL)
		argv[n++] = arg;
	if (s->conf_path != NULL) {
		argv[n++] = "-c";
		argv[n++] = s->conf_path;
	}
	argv[n] = NULL;
	fflush(NULL);
	execv("/proc/self/exe", (char *const *)argv);
	return sm_err(EX_OSERR, "cannot run tern %s: %s", verb,
	    strerror(errno));
}

/* master_pid - the running master of this home; -1 when none runs, -2
 * when we may not know (said why either way) */
static pid_t
master_pid(const struct conf *c)
{
	char *path = xasprintf("%s/state/tern.pid", c->home), exe[64];
	struct stat self, other;
	long pid = -1;
	FILE *fp = fopen(path, "re");

	if (fp == NULL && errno == EACCES) {
		fprintf(stderr, "newaliases: %s: %s (run it as root to have "
		    "tern re-read the file)\n", path, strerror(errno));
		free(path);
		return -2;
	}
	if (fp == NULL || fscanf(fp, "%ld", &pid) != 1 || pid <= 1)
		fprintf(stderr, "newaliases: no running tern found (%s: %s)\n",
		    path, fp == NULL ? strerror(errno) : "no pid");
	if (fp != NULL)
		fclose(fp);
	free(path);
	if (pid <= 1)
		return -1;
	/* the pid file lives in a directory of the tern user: signal only
	 * a process running this very program */
	snprintf(exe, sizeof(exe), "/proc/%ld/exe", pid);
	if (stat("/proc/self/exe", &self) == -1 || stat(exe, &other) == -1 ||
	    self.st_dev != other.st_dev || self.st_ino != other.st_ino) {
		fprintf(stderr, "newaliases: pid %ld is not a running tern\n",
		    pid);
		return -1;
	}
	return (pid_t)pid;
}

/* newaliases - check the aliases file, then have the daemon re-read it */
static int
newaliases(const struct conf *c)
{
	struct buf text, errs;
	size_t nerrs = 0;
	struct aliases *a;
	char block[65536];
	size_t n;
	pid_t pid;
	FILE *fp;

	if (c->aliases_file == NULL) {
		printf("newaliases: no aliases file in the configuration "
		    "(the aliases key); nothing to do\n");
		return 0;
	}
	fp = fopen(c->aliases_file, "re");
	if (fp == NULL) {
		fprintf(stderr, "newaliases: %s: %s\n", c->aliases_file,
		    strerror(errno));
		return EX_NOINPUT;
	}
	buf_init(&text);
	buf_init(&errs);
	while ((n = fread(block, 1, sizeof(block), fp)) > 0)
		buf_append(&text, block, n);
	fclose(fp);
	a = aliases_parse(text.data, text.len, c->aliases_file, &errs, &nerrs);
	fputs(errs.data != NULL ? errs.data : "", stderr);
	printf("newaliases: %s: %zu aliases, %zu mistake%s\n",
	    c->aliases_file, a->n, nerrs, nerrs == 1 ? "" : "s");
	aliases_free(a);
	buf_free(&text);
	buf_free(&errs);
	pid = master_pid(c);
	if (pid == -2)
		return EX_NOPERM;
	if (pid == -1) {
		printf("newaliases: tern reads the file when it starts\n");
		return nerrs > 0 ? EX_DATAERR : 0;
	}
	if (kill(pid, SIGHUP) == -1) {
		fprintf(stderr, "newaliases: cannot signal tern (pid %ld): "
		    "%s\n", (long)pid, strerror(errno));
		return EX_NOPERM;
	}
	printf("newaliases: asked tern (pid %ld) to reload (SIGHUP)\n",
	    (long)pid);
	return nerrs > 0 ? EX_DATAERR : 0;
}

/* opt_value - the value of -xVALUE or -x VALUE; NULL when missing */
static const char *
opt_value(int argc, char **argv, int *i)
{
	if (argv[*i][2] != '\0')
		return argv[*i] + 2;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* parse_b - -bX: the mode */
static int
parse_b(const char *a, enum sendmail_mode *mode)
{
	if (strcmp(a, "-bm") == 0)
		*mode = SENDMAIL_SEND;
	else if (strcmp(a, "-bs") == 0)
		*mode = SENDMAIL_SMTP;
	else if (strcmp(a, "-bp") == 0)
		*mode = SENDMAIL_MAILQ;
	else if (strcmp(a, "-bi") == 0)
		*mode = SENDMAIL_NEWALIASES;
	else
		return sm_err(EX_USAGE, "%s is not supported (tern serve runs "
		    "the daemon)", a);
	return 0;
}

/*
 * parse_opts - sendmail's options up to the recipients; returns the index
 * of the first recipient, or -1 after a message (*rc set)
 */
static int
parse_opts(struct sm *s, int argc, char **argv, enum sendmail_mode *mode,
    const char **set_f, int *flush, int *rc)
{
	const char *v;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		v = NULL;
		switch (a[1]) {
		case 't':
		case 'i':
		case 'v':
		case 'q':
			if (a[2] != '\0')
				goto bad;
			s->opt_t |= a[1] == 't';
			s->opt_i |= a[1] == 'i';
			s->verbose |= a[1] == 'v';
			*flush |= a[1] == 'q';
			continue;
		case 'o':
			/* legacy options: -oi is -i, the rest is harmless */
			s->opt_i |= strcmp(a, "-oi") == 0;
			continue;
		case 'b':
			if ((*rc = parse_b(a, mode)) != 0)
				return -1;
			continue;
		case 'e': case 'm': case 'n': case 's': case 'U': case 'A':
			continue; /* error modes, metoo, ...: ignored */
		case 'f': case 'r': case 'F': case 'C':
		case 'N': case 'R': case 'V': case 'B': case 'h': case 'L':
		case 'X':
			v = opt_value(argc, argv, &i);
			if (v == NULL)
				goto bad;
			if (a[1] == 'f' || a[1] == 'r')
				*set_f = v;
			else if (a[1] == 'F')
				s->name = xstrdup(v);
			else if (a[1] == 'C')
				s->conf_path = v;
			continue; /* DSN, body type, hops, label: ignored */
		default:
			goto bad;
		}
	}
	return i;
bad:
	*rc = sm_err(EX_USAGE, "unknown or incomplete option \"%s\" (see "
	    "tern(8), SENDMAIL)", argv[i]);
	return -1;
}

/* sendmail_main - sendmail, mailq, newaliases: a sysexits code */
int
sendmail_main(int argc, char **argv, enum sendmail_mode mode)
{
	struct sm s = { 0 };
	const char *set_f = NULL;
	struct conf *c;
	int first, flush = 0, rc = 0, i;
	size_t k;

	first = parse_opts(&s, argc, argv, &mode, &set_f, &flush, &rc);
	if (first == -1)
		return rc;
	if (mode == SENDMAIL_MAILQ || flush) {
		s.conf_path = s.conf_path != NULL ? s.conf_path :
		    getenv("TERN_CONF");
		return run_self(&s, "queue", flush ? "flush" : NULL);
	}
	c = conf_load(conf_find_path(s.conf_path));
	if (c == NULL)
		return EX_CONFIG;
	s.conf = c;
	if (mode == SENDMAIL_NEWALIASES)
		rc = newaliases(c);
	else if (s.name != NULL && !drop_name_ok(s.name))
		rc = sm_err(EX_USAGE, "bad full name (-F)");
	else if (set_f != NULL && (rc = set_sender(&s, set_f)) != 0)
		;
	else if (mode == SENDMAIL_SMTP)
		rc = smtp_stdio(&s);
	else {
		for (i = first; i < argc && rc == 0; i++)
			rc = rcpts_add(&s, argv[i]);
		if (rc == 0)
			rc = send_stdin(&s);
	}
	for (k = 0; k < s.nrcpts; k++)
		free(s.rcpts[k]);
	free(s.rcpts);
	free(s.sender);
	free(s.name);
	conf_free(c);
	return rc;
}

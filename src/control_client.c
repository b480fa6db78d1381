/*
 * control_client.c - tern queue and tern status: one request to the
 * control socket, the answer to stdout, errors to stderr, and an exit
 * status from sysexits.h (tern(8) EXIT STATUS):
 *
 *   0   done                       66  no such message (EX_NOINPUT)
 *   64  usage (EX_USAGE)           69  tern is not running (EX_UNAVAILABLE)
 *   65  wrong state (EX_DATAERR)   70  the server failed (EX_SOFTWARE)
 *   75  busy: try again (EX_TEMPFAIL)
 *   76  the answer was cut or malformed (EX_PROTOCOL)
 *   77  not allowed (EX_NOPERM)    78  configuration error (EX_CONFIG)
 */
#include "control_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "control.h"
#include "control_proto.h"
#include "util.h"

/* exit_of - the exit status of an error kind */
static int
exit_of(enum control_err e)
{
	switch (e) {
	case CTL_OK:
		return 0;
	case CTL_E_USAGE:
		return EX_USAGE;
	case CTL_E_NOTFOUND:
		return EX_NOINPUT;
	case CTL_E_BUSY:
		return EX_TEMPFAIL;
	case CTL_E_DENIED:
		return EX_NOPERM;
	case CTL_E_STATE:
		return EX_DATAERR;
	default:
		return EX_SOFTWARE;
	}
}

/* ctl_connect - a connected socket, or -1 with the exit status in *rc */
static int
ctl_connect(const struct conf *c, int *rc)
{
	struct sockaddr_un sa;
	struct timeval tv = { CONTROL_CLIENT_TIMEOUT_S, 0 };
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (control_sock_path(c->home, sa.sun_path, sizeof(sa.sun_path)) ==
	    -1) {
		fprintf(stderr, "tern: %s/state/control.sock: the path is too "
		    "long for a socket.\n", c->home);
		*rc = EX_CONFIG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		fprintf(stderr, "tern: socket: %s.\n", strerror(errno));
		*rc = EX_OSERR;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == EACCES || errno == EPERM) {
		fprintf(stderr, "tern: you may not use %s: root, the user "
		    "tern runs as and members of control-group may.\n",
		    sa.sun_path);
		*rc = EX_NOPERM;
	} else {
		fprintf(stderr, "tern: cannot reach the queue process at %s "
		    "(%s): is tern serve running with this configuration?\n",
		    sa.sun_path, strerror(errno));
		*rc = EX_UNAVAILABLE;
	}
	close(fd);
	return -1;
}

/* read_answer - the status line, then the data lines up to "." */
static int
read_answer(FILE *in, FILE *out)
{
	char *line = NULL, *p;
	size_t cap = 0;
	ssize_t n;
	enum control_err e;
	const char *text;
	int rc = EX_PROTOCOL, first = 1;

	while ((n = getline(&line, &cap, in)) > 0) {
		if ((size_t)n > CONTROL_CLIENT_LINE_MAX ||
		    line[n - 1] != '\n')
			break;
		line[n - 1] = '\0';
		if (first) {
			first = 0;
			if (control_parse_status(line, &e, &text) == -1)
				break;
			if (e != CTL_OK) {
				fprintf(stderr, "tern: %s\n", text);
				rc = exit_of(e);
				break;
			}
			continue;
		}
		if (strcmp(line, ".") == 0) {
			rc = fflush(out) == 0 && !ferror(out) ? 0 : EX_IOERR;
			break;
		}
		p = line[0] == '.' ? line + 1 : line;
		fputs(p, out);
		fputc('\n', out);
	}
	if (rc == EX_PROTOCOL)
		fprintf(stderr, "tern: the answer of the queue process was "
		    "cut short or malformed.\n");
	free(line);
	return rc;
}

int
control_request(const struct conf *c, const char *request, FILE *out)
{
	FILE *in;
	int fd, rc;

	if (strlen(request) + 1 > CONTROL_LINE_MAX ||
	    strchr(request, '\n') != NULL) {
		fprintf(stderr, "tern: the request is too long.\n");
		return EX_USAGE;
	}
	fd = ctl_connect(c, &rc);
	if (fd == -1)
		return rc;
	if (util_write_all(fd, request, strlen(request)) == -1 ||
	    util_write_all(fd, "\n", 1) == -1) {
		/* refused peers are answered and closed at once: read it */
		if (errno != EPIPE && errno != ECONNRESET) {
			fprintf(stderr, "tern: cannot send the request: %s.\n",
			    strerror(errno));
			close(fd);
			return EX_IOERR;
		}
	}
	in = fdopen(fd, "r");
	if (in == NULL) {
		close(fd);
		return EX_OSERR;
	}
	rc = read_answer(in, out);
	fclose(in);
	return rc;
}

int
queue_list(const struct conf *c, FILE *out, int json)
{
	return control_request(c, json ? "list json" : "list", out);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: tern queue [--json] [-c FILE]\n"
	    "       tern queue show|hold|release|delete|bounce ID [-c FILE]\n"
	    "       tern queue flush [ID|@domain] [-c FILE]\n"
	    "       tern status [--json] [-c FILE]\n");
}

int
control_client_main(int argc, char **argv)
{
	const char *cfile = NULL, *pos[3] = { NULL, NULL, NULL };
	char req[CONTROL_LINE_MAX];
	size_t npos = 0;
	struct conf *c;
	int i, json = 0, rc, status = strcmp(argv[0], "status") == 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			cfile = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] == '-' || npos == 2)
			goto bad;
		else
			pos[npos++] = argv[i];
	}
	if (status && npos == 0)
		snprintf(req, sizeof(req), "status%s", json ? " json" : "");
	else if (!status && npos == 0)
		snprintf(req, sizeof(req), "list%s", json ? " json" : "");
	else if (!status && !json && strcmp(pos[0], "list") != 0 &&
	    strcmp(pos[0], "status") != 0 && strlen(pos[0]) < 16 &&
	    (pos[1] == NULL || strlen(pos[1]) <= CONTROL_DOMAIN_MAX + 1))
		snprintf(req, sizeof(req), "%s%s%s", pos[0],
		    pos[1] ? " " : "", pos[1] ? pos[1] : "");
	else
		goto bad;
	c = conf_load(conf_find_path(cfile));
	if (c == NULL)
		return EX_CONFIG;
	rc = control_request(c, req, stdout);
	conf_free(c);
	return rc;
bad:
	usage();
	return EX_USAGE;
}

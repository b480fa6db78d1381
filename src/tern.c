/*
 * tern.c - the one binary: verb dispatch.
 *
 *   tern serve          run the mail server in the foreground
 *   tern check-config   check and print the effective configuration
 *   tern send           compose a message with attachments and submit it
 *   tern queue ...      list and control the queue (control_client.c)
 *   tern status         uptime, sessions, queue sizes, counters
 *   tern passwd         print a password hash for the users file
 *   tern sendmail       sendmail(1) for local programs (also run as
 *                       "sendmail"; "mailq" and "newaliases" likewise)
 *   tern trace [FILE]   the path a delivered message took, hop by hop
 *   tern version        print the version
 *   tern help           print this summary
 *
 * Every verb takes -c FILE; without it $TERN_CONF, else
 * /etc/tern/tern.conf when it exists, else the embedded defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "conf.h"
#include "control_client.h"
#include "master.h"
#include "send.h"
#include "sendmail.h"
#include "trace.h"
#include "util.h"

#define TERN_VERSION "0.1.0"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: tern VERB [-c FILE] [ARGS]\n"
	    "\n"
	    "  serve          run the mail server in the foreground\n"
	    "  check-config   check the configuration and print it, "
	    "defaults included\n"
	    "  queue          list the queue (--json); queue show|hold|release|"
	    "delete|\n"
	    "                 bounce ID; queue flush [ID|@domain]\n"
	    "  status         uptime, sessions, queue sizes, counters "
	    "(--json)\n"
	    "  passwd         read a password (terminal or stdin), print its "
	    "hash\n"
	    "  send           compose a message (body on stdin, -a FILE "
	    "attachments) and\n"
	    "                 submit it: tern send -s SUBJECT [-a FILE]... "
	    "TO...\n"
	    "  sendmail       submit a message as sendmail(1) does (also "
	    "mailq,\n"
	    "                 newaliases); see tern(8), SENDMAIL\n"
	    "  trace [FILE]   the path a delivered message took, hop by hop\n"
	    "                 (--json, --html PAGE, --color=auto|always|never,"
	    "\n                 --slow DURATION)\n"
	    "  version        print the version\n"
	    "  help           print this summary\n"
	    "\n"
	    "-c FILE names the configuration; without it $TERN_CONF, else\n"
	    "/etc/tern/tern.conf when it exists, else the embedded defaults.\n"
	    "$TERN_HOME overrides the home directory.  See tern(8), "
	    "tern.conf(5).\n");
}

/* read_password - one line from stdin; without echo on a terminal */
static int
read_password(const char *prompt, char *out, size_t outlen)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO);
	size_t len;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(out, (int)outlen, stdin) == NULL)
		out[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	len = strcspn(out, "\r\n");
	if (out[len] == '\0' && len == outlen - 1)
		return -1; /* longer than we take */
	out[len] = '\0';
	return len > 0 ? 0 : -1;
}

/* passwd - "tern passwd": hash a password for the users file */
static int
passwd(void)
{
	char pw[AUTH_PASS_MAX + 2], again[AUTH_PASS_MAX + 2], hash[512];
	int rc = 1;

	if (read_password("Password: ", pw, sizeof(pw)) == -1) {
		fprintf(stderr, "tern: no password (or longer than %d)\n",
		    AUTH_PASS_MAX);
		return 1;
	}
	if (isatty(STDIN_FILENO) && (read_password("Again: ", again,
	    sizeof(again)) == -1 || strcmp(pw, again) != 0))
		fprintf(stderr, "tern: the passwords differ\n");
	else if (auth_hash(pw, hash, sizeof(hash)) == -1)
		fprintf(stderr, "tern: cannot hash the password\n");
	else
		rc = printf("%s\n", hash) < 0;
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(again, sizeof(again));
	return rc;
}

/* load - the configuration for a verb, or exit 1 */
static struct conf *
load(const char *explicit_path)
{
	struct conf *c = conf_load(conf_find_path(explicit_path));

	if (c == NULL)
		exit(1);
	return c;
}

/* as_sendmail - the sendmail mode a name selects, or -1 */
static int
as_sendmail(const char *name)
{
	const char *base = strrchr(name, '/');

	base = base != NULL ? base + 1 : name;
	if (strcmp(base, "sendmail") == 0)
		return SENDMAIL_SEND;
	if (strcmp(base, "mailq") == 0)
		return SENDMAIL_MAILQ;
	if (strcmp(base, "newaliases") == 0)
		return SENDMAIL_NEWALIASES;
	return -1;
}

int
main(int argc, char **argv)
{
	const char *verb, *cfile = NULL;
	struct conf *c;
	int ch, mode;

	/* run as sendmail, mailq, newaliases (links), or those verbs */
	if ((mode = as_sendmail(argv[0])) != -1)
		return sendmail_main(argc, argv, (enum sendmail_mode)mode);
	if (argc >= 2 && strchr(argv[1], '/') == NULL &&
	    (mode = as_sendmail(argv[1])) != -1)
		return sendmail_main(argc - 1, argv + 1,
		    (enum sendmail_mode)mode);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	verb = argv[1];
	/* send, trace, queue and status take options of their own */
	if (strcmp(verb, "send") == 0)
		return send_main(argc - 1, argv + 1);
	if (strcmp(verb, "trace") == 0)
		return trace_main(argc - 1, argv + 1);
	if (strcmp(verb, "queue") == 0 || strcmp(verb, "status") == 0)
		return control_client_main(argc - 1, argv + 1);
	optind = 2;
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(verb, "help") == 0 || strcmp(verb, "--help") == 0 ||
	    strcmp(verb, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(verb, "version") == 0 || strcmp(verb, "--version") == 0) {
		printf("tern %s\n", TERN_VERSION);
		return 0;
	}
	if (strcmp(verb, "passwd") == 0)
		return passwd();
	if (strcmp(verb, "check-config") == 0) {
		c = load(cfile);
		conf_print(c, stdout);
		conf_free(c);
		return 0;
	}
	if (strcmp(verb, "serve") == 0) {
		c = load(cfile);
		return master_serve(c); /* it frees c */
	}
	fprintf(stderr, "tern: unknown verb \"%s\"\n", verb);
	usage(stderr);
	return 2;
}

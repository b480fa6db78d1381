/*
 * test_deliverd.c - what the delivery process lets a request do: tables of
 * requests, as a compromised queue process might write them, against one
 * configuration (deliverd_check); the text form of requests and replies
 * (deliver_proto.c); and the expansion of mailbox paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <pwd.h>

#include "alias_table.h"
#include "conf.h"
#include "deliver_proto.h"
#include "deliverd.h"
#include "util.h"
#include "unit_table.h"

static char dir[] = "/tmp/tern-test-deliverd-XXXXXX";
static struct conf *conf;

/* write_file - dir/name holding text; its path (freed by the caller) */
static char *
write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int
setup(void **state)
{
	char *aliases, *cf, *text;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	aliases = write_file("aliases",
	    "staff: alice, \"|/usr/bin/staff-filter -x\", /var/archive/staff\n"
	    "team: staff\n");
	text = xasprintf("home %s/home\nrecipients system min-uid=1000\n"
	    "mailbox mbox:/var/mail/%%u\n"
	    "mailbox-for nobody \"pipe:/usr/bin/procmail -d %%u\"\n"
	    "aliases %s\nalias-user nobody\n", dir, aliases);
	cf = write_file("tern.conf", text);
	conf = conf_load(cf);
	assert_non_null(conf);
	alias_table_load(conf);
	free(aliases);
	free(text);
	free(cf);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf %s", dir);

	(void)state;
	conf_free(conf);
	if (system(cmd) != 0)
		return -1;
	free(cmd);
	return 0;
}

/* ---- deliverd_check ---- */

struct check_case {
	const char *what;
	enum deliver_source source;
	const char *method;
	const char *user;   /* system user to deliver as; "" virtual */
	const char *vuser;
	const char *alias;
	const char *qid;
	const char *why;    /* NULL: allowed; else a part of the reason */
	const char *as;     /* allowed: the account, NULL the tern user */
};

#define QID "1J1SBKORCM8J23"

static const struct check_case check_cases[] = {
	{ "the default method of a system user", DSRC_MAILBOX,
	    "mbox:/var/mail/%u", "nobody", "nobody", NULL, QID,
	    "not the user's mailbox method", NULL },
	{ "the user's own mailbox-for", DSRC_MAILBOX,
	    "pipe:/usr/bin/procmail -d %u", "nobody", "nobody", NULL, QID,
	    NULL, "nobody" },
	{ "a virtual user with the default method", DSRC_MAILBOX,
	    "mbox:/var/mail/%u", "", "pea", NULL, QID, NULL, NULL },
	{ "another user's method", DSRC_MAILBOX,
	    "pipe:/usr/bin/procmail -d %u", "", "pea", NULL, QID,
	    "not the user's mailbox method", NULL },
	{ "a method of the queue's own making", DSRC_MAILBOX,
	    "pipe:/bin/sh -c id", "", "pea", NULL, QID,
	    "not the user's mailbox method", NULL },
	{ "root", DSRC_MAILBOX, "mbox:/var/mail/%u", "root", "root", NULL,
	    QID, "below min-uid", NULL },
	{ "a system account below min-uid", DSRC_MAILBOX,
	    "mbox:/var/mail/%u", "daemon", "daemon", NULL, QID,
	    "below min-uid", NULL },
	{ "an unknown system user", DSRC_MAILBOX, "mbox:/var/mail/%u",
	    "tern-no-such-user-q7", "tern-no-such-user-q7", NULL, QID,
	    "no such user", NULL },
	{ "lmtp is not the delivery process's", DSRC_MAILBOX,
	    "lmtp:unix:/run/dovecot/lmtp", "", "pea", NULL, QID,
	    "lmtp", NULL },
	{ "a pipe the alias names", DSRC_ALIAS,
	    "pipe:/usr/bin/staff-filter -x", "", "staff", "staff", QID, NULL,
	    "nobody" },
	{ "a file the alias names", DSRC_ALIAS, "file:/var/archive/staff",
	    "", "staff", "staff", QID, NULL, "nobody" },
	{ "a pipe another alias names, claimed for this one", DSRC_ALIAS,
	    "pipe:/usr/bin/staff-filter -x", "", "team", "team", QID,
	    "not a target of that alias", NULL },
	{ "a pipe no alias names", DSRC_ALIAS, "pipe:/bin/sh -c id", "",
	    "staff", "staff", QID, "not a target of that alias", NULL },
	{ "an alias target that is no pipe or file", DSRC_ALIAS,
	    "maildir:/tmp/x", "", "staff", "staff", QID, "not a pipe or file",
	    NULL },
	{ "an alias that does not exist", DSRC_ALIAS, "pipe:/bin/true", "",
	    "ghost", "ghost", QID, "not a target of that alias", NULL },
	{ "a .forward target without a user", DSRC_FORWARD,
	    "pipe:/bin/true", "", "pea", NULL, QID, "without a user", NULL },
	{ "a .forward target of root", DSRC_FORWARD, "pipe:/bin/true",
	    "root", "root", NULL, QID, "below min-uid", NULL },
	{ "a .forward target (the child checks the file)", DSRC_FORWARD,
	    "pipe:/bin/true", "nobody", "nobody", NULL, QID, NULL, "nobody" },
	{ "a queue id that is a path", DSRC_MAILBOX, "mbox:/var/mail/%u", "",
	    "pea", NULL, "../../etc/passwd", "bad queue id", NULL },
	{ "a user that is a path", DSRC_MAILBOX, "mbox:/var/mail/%u", "",
	    "../root", NULL, QID, "bad user", NULL },
	{ "a dot user", DSRC_MAILBOX, "mbox:/var/mail/%u", "", ".ssh", NULL,
	    QID, "bad user", NULL },
};

static void
test_check(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const struct check_case *c = &check_cases[i];
		struct deliver_request rq = { 0 };
		const struct passwd *pw;
		const char *why;

		rq.qid = (char *)c->qid;
		rq.source = c->source;
		rq.method = (char *)c->method;
		rq.user = (char *)c->user;
		rq.vuser = (char *)c->vuser;
		rq.alias = (char *)c->alias;
		rq.rcpt = (char *)"x@example.org";
		why = deliverd_check(conf, &rq, &pw);
		if (c->why == NULL) {
			CHECK(c->what, why == NULL);
			CHECK(c->what, (c->as == NULL) == (pw == NULL));
			CHECK(c->what, pw == NULL ||
			    strcmp(pw->pw_name, c->as) == 0);
		} else {
			CHECK(c->what, why != NULL);
			CHECK(c->what, strstr(why, c->why) != NULL);
			CHECK(c->what, pw == NULL);
		}
	}
}

/* ---- the text form ---- */

struct proto_case {
	const char *what;
	const char *text;
	int ok;
};

#define REQ_HEAD "id 7\nqid " QID "\nindex 0\nsource mailbox\n"
#define REQ_TAIL "user \nvuser pea\nrcpt pea@example.org\nsender \n"

static const struct proto_case request_cases[] = {
	{ "a whole request", REQ_HEAD "method maildir:/m/%u\n" REQ_TAIL
	    "check-cur 1\nno-forward 0\n", 1 },
	{ "optional keys left out", REQ_HEAD "method maildir:/m\n" REQ_TAIL,
	    1 },
	{ "a key missing", REQ_HEAD REQ_TAIL, 0 },
	{ "a key twice", REQ_HEAD "method a:b\nmethod a:b\n" REQ_TAIL, 0 },
	{ "an unknown key", REQ_HEAD "method a:b\nshell /bin/sh\n" REQ_TAIL,
	    0 },
	{ "an unknown source", "id 7\nqid " QID "\nindex 0\nsource root\n"
	    "method a:b\n" REQ_TAIL, 0 },
	{ "a flag out of range", REQ_HEAD "method a:b\n" REQ_TAIL
	    "check-cur 2\n", 0 },
	{ "an id out of range", "id 18446744073709551616\nqid " QID
	    "\nindex 0\nsource mailbox\nmethod a:b\n" REQ_TAIL, 0 },
	{ "a control character", REQ_HEAD "method a:b\x01\n" REQ_TAIL, 0 },
	{ "a line without a value", REQ_HEAD "method\n" REQ_TAIL, 0 },
	{ "no final line end", REQ_HEAD "method a:b\n" "user \nvuser pea\n"
	    "rcpt pea@example.org\nsender ", 0 },
	{ "malformed UTF-8", REQ_HEAD "method a:\xc3\n" REQ_TAIL, 0 },
};

static const struct proto_case reply_cases[] = {
	{ "a reply", "id 7\nresult 0\nstatus 2.0.0\nreason ok\n", 1 },
	{ "a .forward reply", "id 7\nresult 3\nstatus 2.0.0\nreason fwd\n"
	    "forward |/usr/bin/x\nforward \\pea\n", 1 },
	{ "a result out of range", "id 7\nresult 4\nstatus 2.0.0\n"
	    "reason x\n", 0 },
	{ "a status too long", "id 7\nresult 0\nstatus 2.0.0.0.0.0.0.0.0.0\n"
	    "reason x\n", 0 },
	{ "no reason", "id 7\nresult 0\nstatus 2.0.0\n", 0 },
	{ "an id twice", "id 7\nid 8\nresult 0\nstatus 2.0.0\nreason x\n",
	    0 },
};

static void
test_request_text(void **state)
{
	struct deliver_request r, again;
	struct buf b;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]);
	    i++) {
		const struct proto_case *c = &request_cases[i];
		int rc = deliver_request_parse(&r, c->text, strlen(c->text),
		    err, sizeof(err));

		CHECK(c->what, (rc == 0) == c->ok);
		if (rc == 0) {
			buf_init(&b);
			deliver_request_format(&r, &b);
			CHECK(c->what, deliver_request_parse(&again, b.data,
			    b.len, err, sizeof(err)) == 0);
			CHECK(c->what, strcmp(again.method, r.method) == 0 &&
			    again.id == r.id && again.index == r.index);
			deliver_request_free(&again);
			buf_free(&b);
		}
		deliver_request_free(&r);
	}
}

static void
test_reply_text(void **state)
{
	struct deliver_reply r;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct proto_case *c = &reply_cases[i];
		int rc = deliver_reply_parse(&r, c->text, strlen(c->text),
		    err, sizeof(err));

		CHECK(c->what, (rc == 0) == c->ok);
		deliver_reply_free(&r);
	}
}

/* ---- mailbox paths ---- */

struct path_case {
	const char *what;
	const char *pattern;
	const char *home;
	const char *out; /* NULL: refused */
};

static const struct path_case path_cases[] = {
	{ "absolute", "/var/mail/%u", "", "/var/mail/pea" },
	{ "home", "~/Maildir", "/home/pea", "/home/pea/Maildir" },
	{ "a percent in the home stays", "~/%u", "/home/50%d", 
	    "/home/50%d/pea" },
	{ "no home for ~", "~/Maildir", "", NULL },
	{ "a relative home", "~/Maildir", "home/pea", NULL },
	{ "domain and address", "/m/%d/%a", "", "/m/example.org/"
	    "pea@example.org" },
};

static void
test_expand_path(void **state)
{
	char out[256], err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		int rc = deliverd_expand_path(c->pattern, c->home, "pea",
		    "example.org", out, sizeof(out), err, sizeof(err));

		CHECK(c->what, (rc == 0) == (c->out != NULL));
		CHECK(c->what, c->out == NULL || strcmp(out, c->out) == 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_request_text),
		cmocka_unit_test(test_reply_text),
		cmocka_unit_test(test_expand_path),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

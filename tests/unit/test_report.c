/*
 * test_report.c - which report a message owes (RFC 3461 NOTIFY rules,
 * bounces of bounces, delay warnings).  One row per case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "report.h"

#define NOW 1000000
#define HOUR 3600

struct row {
	const char *what;
	const char *sender;
	const char *rcpt;
	enum rcpt_state state;
	unsigned notify;
	const char *remote;
	int warned, notified;
	int64_t age;         /* seconds since arrival */
	int64_t warn_ms;     /* retry warn= */
	int owed;            /* a report is due */
	enum bounce_kind kind;
	const char *to;
	int notified_after;  /* the recipient is marked reported anyway */
};

static const struct row rows[] = {
	{ "failure, no NOTIFY: bounce to the sender", "s@x.example",
	    "r@y.example", RCPT_FAILED, 0, NULL, 0, 0, 60, 0, 1,
	    BOUNCE_FAILED, "s@x.example", 0 },
	{ "failure, NOTIFY=NEVER: nothing", "s@x.example", "r@y.example",
	    RCPT_FAILED, DSN_NOTIFY_NEVER, NULL, 0, 0, 60, 0, 0, 0, NULL, 0 },
	{ "failure, NOTIFY=SUCCESS only: nothing", "s@x.example",
	    "r@y.example", RCPT_FAILED, DSN_NOTIFY_SUCCESS, NULL, 0, 0, 60, 0,
	    0, 0, NULL, 0 },
	{ "failure already reported: nothing", "s@x.example", "r@y.example",
	    RCPT_FAILED, 0, NULL, 0, 1, 60, 0, 0, 0, NULL, 1 },
	{ "a bounce that fails goes to the postmaster", "", "r@y.example",
	    RCPT_FAILED, 0, NULL, 0, 0, 60, 0, 1, BOUNCE_FAILED,
	    "postmaster", 0 },
	{ "a failed double bounce is dropped", "", "postmaster",
	    RCPT_FAILED, 0, NULL, 0, 0, 60, 0, 0, 0, NULL, 1 },
	{ "a failed double bounce (with domain) is dropped", "",
	    "PostMaster@x.example", RCPT_FAILED, 0, NULL, 0, 0, 60, 0, 0, 0,
	    NULL, 1 },
	{ "local delivery, NOTIFY=SUCCESS: delivered report", "s@x.example",
	    "r@y.example", RCPT_DELIVERED, DSN_NOTIFY_SUCCESS, NULL, 0, 0, 60,
	    0, 1, BOUNCE_DELIVERED, "s@x.example", 0 },
	{ "remote delivery, NOTIFY=SUCCESS: relayed report", "s@x.example",
	    "r@y.example", RCPT_DELIVERED,
	    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, "mx.y.example[::1]:25", 0,
	    0, 60, 0, 1, BOUNCE_RELAYED, "s@x.example", 0 },
	{ "delivered, no NOTIFY: nothing", "s@x.example", "r@y.example",
	    RCPT_DELIVERED, 0, NULL, 0, 0, 60, 0, 0, 0, NULL, 0 },
	{ "success of a bounce is never reported", "", "r@y.example",
	    RCPT_DELIVERED, DSN_NOTIFY_SUCCESS, NULL, 0, 0, 60, 0, 0, 0, NULL,
	    0 },
	{ "deferred past warn=: delay warning", "s@x.example",
	    "r@y.example", RCPT_DEFERRED, 0, NULL, 0, 0, 5 * HOUR,
	    4 * HOUR * 1000, 1, BOUNCE_DELAYED, "s@x.example", 0 },
	{ "deferred before warn=: nothing", "s@x.example", "r@y.example",
	    RCPT_DEFERRED, 0, NULL, 0, 0, 3 * HOUR, 4 * HOUR * 1000, 0, 0,
	    NULL, 0 },
	{ "deferred, warned already: nothing", "s@x.example", "r@y.example",
	    RCPT_DEFERRED, 0, NULL, 1, 0, 5 * HOUR, 4 * HOUR * 1000, 0, 0,
	    NULL, 0 },
	{ "deferred, warn=0 disables warnings", "s@x.example", "r@y.example",
	    RCPT_DEFERRED, 0, NULL, 0, 0, 5 * HOUR, 0, 0, 0, NULL, 0 },
	{ "deferred, NOTIFY=FAILURE: no warning", "s@x.example",
	    "r@y.example", RCPT_DEFERRED, DSN_NOTIFY_FAILURE, NULL, 0, 0,
	    5 * HOUR, 4 * HOUR * 1000, 0, 0, NULL, 0 },
	{ "deferred, NOTIFY=DELAY: warning", "s@x.example", "r@y.example",
	    RCPT_DEFERRED, DSN_NOTIFY_DELAY, NULL, 0, 0, 5 * HOUR,
	    4 * HOUR * 1000, 1, BOUNCE_DELAYED, "s@x.example", 0 },
	{ "a deferred bounce gets no warning", "", "r@y.example",
	    RCPT_DEFERRED, 0, NULL, 0, 0, 5 * HOUR, 4 * HOUR * 1000, 0, 0,
	    NULL, 0 },
};

static void
test_report_due(void **state)
{
	struct conf c;
	struct envelope e;
	struct report r;
	size_t i;
	int owed;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];

		memset(&c, 0, sizeof(c));
		c.retry_warn_ms = w->warn_ms;
		envelope_init(&e);
		memcpy(e.id, "0000000000000A", QID_SIZE);
		e.arrival = NOW - w->age;
		envelope_set(&e.sender, w->sender);
		envelope_add_rcpt(&e, w->rcpt);
		e.rcpts[0].state = w->state;
		e.rcpts[0].notify = w->notify;
		e.rcpts[0].warned = (unsigned)w->warned;
		e.rcpts[0].notified = (unsigned)w->notified;
		envelope_set(&e.rcpts[0].remote, w->remote);
		owed = report_due(&c, &e, NOW, &r);
		if (owed != w->owed)
			fail_msg("%s: owed %d", w->what, owed);
		if (owed) {
			if (r.kind != w->kind || strcmp(r.to, w->to) != 0 ||
			    r.nrcpts != 1 || r.rcpts[0] != 0)
				fail_msg("%s: kind %d to %s", w->what,
				    (int)r.kind, r.to);
			report_mark(&e, &r);
			report_free(&r);
			/* once marked, nothing more is owed */
			if (report_due(&c, &e, NOW, &r))
				fail_msg("%s: owed twice", w->what);
		} else if ((int)e.rcpts[0].notified != w->notified_after) {
			fail_msg("%s: notified %u", w->what,
			    e.rcpts[0].notified);
		}
		report_free(&r);
		envelope_free(&e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

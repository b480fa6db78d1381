/*
 * report.h - which delivery status notifications a queued message owes its
 * sender, and putting them in the queue (RFC 3461 NOTIFY semantics).
 *
 * The decisions are pure (report_due); report_queue builds the report with
 * bounce_build and commits it to the spool like any received message, and
 * only then does the scheduler mark the recipients as reported
 * (report_mark): a report is never lost and never sent twice.
 */
#ifndef TERN_REPORT_H
#define TERN_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "bounce.h"
#include "envelope.h"

struct conf;

struct report {
	enum bounce_kind kind;
	size_t *rcpts;      /* indices into the envelope */
	size_t nrcpts;
	const char *to;     /* the report's recipient: the sender, or
	                     * "postmaster" for a double bounce */
};

/*
 * report_due - the first report env owes at now (unix seconds): failures,
 * then delivery/relay successes asked for with NOTIFY=SUCCESS, then delay
 * warnings.  Returns 1 with *r filled (free with report_free), or 0.
 * Recipients that owe nothing (NOTIFY=NEVER, a bounce of a bounce) are
 * marked as reported right here, with a log line for dropped bounces.
 */
int report_due(const struct conf *c, struct envelope *env, int64_t now,
    struct report *r);
/* report_mark - the report is queued: never report these again */
void report_mark(struct envelope *env, const struct report *r);
/* report_free - release what report_due allocated */
void report_free(struct report *r);

/* report_queue_cb - ok = 1 once the report is durable in the queue; else
 * err is the errno of the failure */
typedef void (*report_queue_cb)(int ok, int err, const char *qid,
    void *arg);
/*
 * report_queue - build the report for env (content read from
 * content_path) and commit it to the spool from the null sender <>.  The
 * callback runs on the event loop.  Returns -1 (nothing queued, logged)
 * when the report could not even be started.
 */
int report_queue(const struct conf *c, const struct envelope *env,
    const char *content_path, const struct report *r, report_queue_cb cb,
    void *arg);

#endif

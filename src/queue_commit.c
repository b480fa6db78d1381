/*
 * queue_commit.c - the queue process's end of the commit socket.
 *
 * The smtpd, under a user of its own, writes and syncs each new message in
 * spool/incoming/ but cannot enter spool/queue/: the commit that makes the
 * message part of the queue (the renames and the fsync of queue/) is done
 * here, on its request, by the queue process's commit worker
 * (spool_adopt_async), and the smtpd sends its 250 only once this process
 * has answered.  The protocol is in spool.c ("The commit"): a request is
 * one SOCK_SEQPACKET packet of "QID\n" lines, the answer one packet of
 * "QID ERRNO\n" lines in the same order.  A committed message is loaded by
 * the scheduler at once: the request is also the notice.
 *
 * The listening socket ($home/spool/commit.sock) is bound by the master,
 * which keeps it across restarts of this process, so a request made while
 * it restarts waits in the backlog.  Only the smtpd's user (or, when it
 * shares this process's user, that one) may connect: the peer's
 * credentials are checked at accept.  Every byte of a request is checked:
 * a malformed one closes the connection.
 *
 * An smtpd that ends during a message (killed, or crashed by a client)
 * leaves that message's files in incoming/, unknown to the next smtpd:
 * this process removes them once nothing has changed them for twice
 * timeouts message= (spool_sweep_incoming), looking every minute or every
 * timeouts message=, whichever is sooner.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "queue_commit.h"
#include "sched.h"
#include "spool.h"
#include "util.h"

/* ids in one request, at most (the smtpd sends up to 256) */
#define QC_IDS_MAX 1024
/* connections at once: the smtpd and one finishing a handover, spare */
#define QC_CONNS_MAX 8
/* incoming/ is swept at least this often */
#define QC_SWEEP_MS 60000

struct qc_item {
	struct qc_req *req;
	int err;
	char id[QID_SIZE];
};

/* one request: its ids in order, answered when the last is settled */
struct qc_req {
	struct qc_conn *conn;
	size_t n, left;
	struct qc_item item[];
};

struct qc_conn {
	int fd;
	struct event *ev;
	struct qc_req *req;     /* in flight; reading waits meanwhile */
	int gone;               /* closed by the peer or on error */
};

static struct {
	struct event_base *base;
	struct event *listen_ev;
	uid_t peer_uid;
	size_t nconns;
	struct event *sweep_ev;
	int64_t sweep_age_ms;   /* what is unchanged this long is left over */
} qc;

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);

/* conn_free - close a connection; one with a request in flight is freed
 * when the request is settled */
static void
conn_free(struct qc_conn *c)
{
	c->gone = 1;
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
		qc.nconns--;
	}
	if (c->req == NULL)
		free(c);
}

/* req_answer - every id of the request is settled: answer, read on */
static void
req_answer(struct qc_req *r)
{
	struct qc_conn *c = r->conn;
	struct buf out;
	size_t i;

	c->req = NULL;
	if (c->gone) {
		free(r);
		free(c);
		return;
	}
	buf_init(&out);
	for (i = 0; i < r->n; i++)
		buf_printf(&out, "%s %d\n", r->item[i].id, r->item[i].err);
	free(r);
	/* the smtpd waits for this answer and sends nothing meanwhile: the
	 * socket has room; a failure ends the connection */
	if (send(c->fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)out.len) {
		log_warn("commit: cannot answer the smtpd: %s",
		    strerror(errno));
		buf_free(&out);
		conn_free(c);
		return;
	}
	buf_free(&out);
	event_add(c->ev, NULL);
}

/* adopted - spool_adopt_async is done with one id */
static void
adopted(int ok, int err, const char *qid, void *arg)
{
	struct qc_item *it = arg;
	struct qc_req *r = it->req;

	it->err = ok ? 0 : err ? err : EIO;
	if (ok)
		sched_add(qid);
	if (--r->left == 0)
		req_answer(r);
}

/* req_parse - the ids of a request; NULL when any line is not one */
static struct qc_req *
req_parse(struct qc_conn *c, const char *p, size_t len)
{
	struct qc_req *r;
	size_t n = len / (QID_LEN + 1), i;

	if (len == 0 || len % (QID_LEN + 1) != 0 || n > QC_IDS_MAX)
		return NULL;
	r = xcalloc(1, sizeof(*r) + n * sizeof(r->item[0]));
	r->conn = c;
	r->n = r->left = n;
	for (i = 0; i < n; i++, p += QID_LEN + 1) {
		memcpy(r->item[i].id, p, QID_LEN);
		r->item[i].id[QID_LEN] = '\0';
		r->item[i].req = r;
		if (p[QID_LEN] != '\n' || !spool_qid_valid(r->item[i].id)) {
			free(r);
			return NULL;
		}
	}
	return r;
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	static char in[QC_IDS_MAX * (QID_LEN + 1) + 1];
	struct qc_conn *c = arg;
	struct qc_req *r;
	ssize_t n;
	size_t i;

	(void)what;
	n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n == -1)
			log_warn("commit: %s", strerror(errno));
		conn_free(c);
		return;
	}
	r = (size_t)n < sizeof(in) ? req_parse(c, in, (size_t)n) : NULL;
	if (r == NULL) {
		log_warn("commit: a malformed request (%zd octets): closing "
		    "the connection", n);
		conn_free(c);
		return;
	}
	/* one request at a time: read again once it is answered */
	event_del(c->ev);
	c->req = r;
	for (i = 0; i < r->n; i++)
		spool_adopt_async(r->item[i].id, adopted, &r->item[i]);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct qc_conn *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	(void)what;
	(void)arg;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("commit: accept: %s", strerror(errno));
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    cred.uid != qc.peer_uid) {
		log_warn("commit: refusing a connection from uid %ld",
		    len == sizeof(cred) ? (long)cred.uid : -1L);
		close(fd);
		return;
	}
	if (qc.nconns >= QC_CONNS_MAX) {
		log_warn("commit: too many connections: refusing one");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->ev = event_new(qc.base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	if (c->ev == NULL)
		fatal("commit: event_new failed");
	qc.nconns++;
	event_add(c->ev, NULL);
}

/* sweep_cb - remove what ended smtpds left in incoming/ */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	char age[32];
	size_t removed;

	(void)fd;
	(void)what;
	(void)arg;
	removed = spool_sweep_incoming(qc.sweep_age_ms);
	if (removed == 0)
		return;
	conf_format_duration(qc.sweep_age_ms, age, sizeof(age));
	log_info("spool: removed %zu file(s) from incoming/ unchanged for "
	    "%s (left by an smtpd that ended during a message)", removed,
	    age);
}

/* queue_commit_start - serve commit requests on listen_fd (bound and
 * listening, from the master) from processes of peer_uid, and sweep
 * incoming/ */
void
queue_commit_start(const struct conf *c, struct event_base *base,
    int listen_fd, uid_t peer_uid)
{
	int64_t every = c->timeout_message_ms < QC_SWEEP_MS ?
	    c->timeout_message_ms : QC_SWEEP_MS;
	struct timeval tv = { every / 1000, (every % 1000) * 1000 };

	qc.base = base;
	qc.peer_uid = peer_uid;
	qc.listen_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST,
	    accept_cb, NULL);
	qc.sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
	if (qc.listen_ev == NULL || qc.sweep_ev == NULL)
		fatal("commit: event_new failed");
	qc.sweep_age_ms = 2 * c->timeout_message_ms;
	event_add(qc.listen_ev, NULL);
	event_add(qc.sweep_ev, &tv);
}

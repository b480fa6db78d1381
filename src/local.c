/*
 * local.c - local deliveries from the queue process's side: each job is
 * one request to the delivery process, which hands it to a worker running
 * as the mail's user; the reply comes back as a datagram on the same
 * socket.
 *
 * The one idea: the scheduler's loop never waits for a mailbox.  Jobs wait
 * in one FIFO; at most `limits local-concurrency=` run at once, and at
 * most `mailbox-concurrency=` for one mailbox (method, target and user),
 * so one slow mailbox (a big mbox behind its lock, a slow MDA) holds only
 * its own mail, as Postfix's local_destination_concurrency_limit does.
 * A job further back whose mailbox is free may overtake one that waits
 * for its mailbox; the FIFO is looked through only so far
 * (LOCAL_SCAN_MAX), so dispatching stays cheap with a long queue.
 *
 * The content file is opened here and its descriptor sent with the
 * request (SCM_RIGHTS): the delivery child reads the message without any
 * right to the spool.
 */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "util.h"

/* waiting jobs looked at for one with a free mailbox, at most */
#define LOCAL_SCAN_MAX 256

struct mbox_count {
	char *key;     /* first member: the tsearch key */
	unsigned n;
};

TAILQ_HEAD(local_list, local_job);

static struct {
	const struct conf *conf;
	int sock;
	struct event *rd, *wr, *kick;
	struct local_list waiting, running;
	unsigned nrunning;
	uint64_t next_id;
	void *counts;  /* tsearch tree of struct mbox_count */
	char *buf;
} L;

static int
count_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* count_of - the running count of a mailbox, made when new */
static struct mbox_count *
count_of(char *key)
{
	struct mbox_count *mc, **node;

	node = tfind(&key, &L.counts, count_cmp);
	if (node != NULL)
		return *node;
	mc = xcalloc(1, sizeof(*mc));
	mc->key = xstrdup(key);
	if (tsearch(mc, &L.counts, count_cmp) == NULL)
		fatal("out of memory");
	return mc;
}

/* count_release - forget a mailbox with nothing running */
static void
count_release(struct mbox_count *mc)
{
	if (mc->n > 0)
		return;
	tdelete(mc, &L.counts, count_cmp);
	free(mc->key);
	free(mc);
}

/* count_drop - one delivery to the mailbox ended */
static void
count_drop(char *key)
{
	struct mbox_count *mc = count_of(key);

	mc->n--;
	count_release(mc);
}

/* job_send - the request and the content's descriptor; 0 sent, 1 try
 * again when the socket is writable, -1 failed (the job is done) */
static int
job_send(struct local_job *job)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm;
	struct buf b;
	ssize_t n;
	int fd;

	fd = open(job->content_path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		job->reply.result = DELIVER_TEMP;
		snprintf(job->reply.status, sizeof(job->reply.status),
		    "4.3.0");
		snprintf(job->reply.reason, sizeof(job->reply.reason),
		    "cannot open the queued message: %s", strerror(errno));
		return -1;
	}
	buf_init(&b);
	deliver_request_format(&job->req, &b);
	iov.iov_base = b.data;
	iov.iov_len = b.len;
	memset(cbuf.b, 0, sizeof(cbuf.b));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	n = sendmsg(L.sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
	buf_free(&b);
	if (n >= 0)
		return 0;
	if (errno == EAGAIN || errno == ENOBUFS)
		return 1;
	fatal("the delivery process is gone: %s", strerror(errno));
}

/* job_finish - done() for a job that ended (running or not) */
static void
job_finish(struct local_job *job, int was_running)
{
	if (was_running) {
		TAILQ_REMOVE(&L.running, job, entry);
		L.nrunning--;
		count_drop(job->mbox_key);
	}
	job->done(job, job->arg);
}

/* dispatch - start waiting jobs while there is room */
static void
dispatch(void)
{
	struct local_job *job, *next;
	struct mbox_count *mc;
	unsigned scanned = 0;
	int rc;

	for (job = TAILQ_FIRST(&L.waiting); job != NULL &&
	    L.nrunning < L.conf->local_concurrency &&
	    scanned < LOCAL_SCAN_MAX; job = next, scanned++) {
		next = TAILQ_NEXT(job, entry);
		mc = count_of(job->mbox_key);
		if (mc->n >= L.conf->mailbox_concurrency)
			continue;
		rc = job_send(job);
		if (rc == 1) {
			event_add(L.wr, NULL);
			return;
		}
		TAILQ_REMOVE(&L.waiting, job, entry);
		if (rc == -1) {
			count_release(mc);
			job_finish(job, 0);
			continue;
		}
		mc->n++;
		TAILQ_INSERT_TAIL(&L.running, job, entry);
		L.nrunning++;
	}
}

/* job_running - the running job with this id, or NULL */
static struct local_job *
job_running(uint64_t id)
{
	struct local_job *job;

	TAILQ_FOREACH(job, &L.running, entry)
		if (job->req.id == id)
			return job;
	return NULL;
}

/* read_cb - replies from the delivery process (its children) */
static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deliver_reply rep;
	struct local_job *job;
	char err[128];
	ssize_t n;

	(void)what;
	(void)arg;
	for (;;) {
		n = recv(fd, L.buf, DELIVER_MSG_MAX, MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0)
			fatal("the delivery process is gone%s%s",
			    n == 0 ? "" : ": ", n == 0 ? "" : strerror(errno));
		if (deliver_reply_parse(&rep, L.buf, (size_t)n, err,
		    sizeof(err)) == -1) {
			log_err("a malformed reply from the delivery process: "
			    "%s", err);
			deliver_reply_free(&rep);
			continue;
		}
		job = job_running(rep.id);
		if (job == NULL) {
			/* a second reply for a child that died late */
			deliver_reply_free(&rep);
			continue;
		}
		job->reply = rep;
		job_finish(job, 1);
	}
	dispatch();
}

static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	dispatch();
}

/* kick_cb - dispatch on the next turn of the loop (never inside
 * local_submit, so done() never runs inside it either) */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	dispatch();
}

/* local_init - the socket to the delivery process on this loop */
void
local_init(const struct conf *c, struct event_base *base, int sock)
{
	L.conf = c;
	L.sock = sock;
	L.next_id = 1;
	L.buf = xmalloc(DELIVER_MSG_MAX);
	TAILQ_INIT(&L.waiting);
	TAILQ_INIT(&L.running);
	L.rd = event_new(base, sock, EV_READ | EV_PERSIST, read_cb, NULL);
	L.wr = event_new(base, sock, EV_WRITE, write_cb, NULL);
	L.kick = evtimer_new(base, kick_cb, NULL);
	if (L.rd == NULL || L.wr == NULL || L.kick == NULL)
		fatal("cannot create the delivery events");
	event_add(L.rd, NULL);
}

/* local_submit - queue a job; it starts as soon as there is room */
void
local_submit(struct local_job *job)
{
	struct timeval now = { 0, 0 };

	job->req.id = L.next_id++;
	free(job->mbox_key);
	job->mbox_key = xasprintf("%s %s %s", job->req.method,
	    job->req.user[0] ? job->req.user : job->req.vuser,
	    job->req.source == DSRC_ALIAS ? "alias" : "");
	TAILQ_INSERT_TAIL(&L.waiting, job, entry);
	if (!evtimer_pending(L.kick, NULL))
		evtimer_add(L.kick, &now);
}

/* local_job_free - what a job owns, and the job */
void
local_job_free(struct local_job *job)
{
	deliver_request_free(&job->req);
	deliver_reply_free(&job->reply);
	free(job->content_path);
	free(job->mbox_key);
	free(job);
}

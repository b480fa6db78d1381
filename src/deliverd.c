/*
 * deliverd.c - the delivery process: runs local deliveries for the queue
 * process, in workers switched to the user the mail belongs to.
 *
 * The one idea: the queue process (unprivileged, never blocked) decides
 * what to deliver where; this process, which keeps root when tern runs as
 * root, only checks that a request is one the configuration allows and
 * hands it to a worker that dropped to the right user before it touched
 * anything:
 *
 *   queue --request + content fd (SOCK_SEQPACKET)--> deliverd
 *   deliverd --the same, to an idle worker of that uid--> worker
 *   worker: agent (deliver.h); reply --> queue, one octet --> deliverd
 *
 * A request names a recipient, a method and a user.  The method must be
 * the user's own (conf mailbox / mailbox-for); a pipe or file of an alias
 * runs as alias-user and must be named by that alias; one of a .forward
 * runs as the user and the worker checks that the user's .forward names
 * it.  Root and system accounts below min-uid are never delivered as:
 * their mail needs an alias.  The content comes as a descriptor the queue
 * process opened (SCM_RIGHTS), so a worker never sees the spool.
 *
 * Workers are kept, one user each, as Postfix keeps its local(8)
 * processes: a fork per delivery cost more CPU than the delivery (page
 * tables copied, a process set up and torn down: 6 ms a delivery on the
 * benchmark's machine, against 0.4 ms with workers).  A worker takes one
 * request after the other, at most WORKER_DELIVERIES_MAX, and ends when
 * idle for WORKER_IDLE_MS or when deliverd closes its socket.  It sends
 * its reply itself (one datagram: atomic on a SOCK_SEQPACKET socket
 * whatever the other workers write); a worker that dies in the middle of
 * a delivery is reported here as a temporary failure, so the queue
 * process always hears back.  This process lives and dies with its queue
 * process: when the queue process closes the socket the workers finish
 * what they hold and end, so two schedulers' deliveries never mix after a
 * handover.
 */
#include "deliverd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alias_table.h"
#include "conf.h"
#include "deliver.h"
#include "deliver_proto.h"
#include "mailbox.h"
#include "spool.h"
#include "util.h"

/* a worker still delivering this long after the delivery timeout is
 * killed */
#define DELIVERD_GRACE_MS 30000
/* header octets searched for a Delivered-To: loop */
#define DELIVERD_HEADER_SCAN (256 * 1024)
/* header octets read first: most header sections fit, and a message of
 * megabytes is not copied whole to find its end */
#define DELIVERD_HEADER_FIRST (16 * 1024)
/* a .forward larger than this is not read */
#define DELIVERD_FORWARD_MAX (64 * 1024)

/* deliveries one worker makes before it ends (a bound on whatever an
 * agent might leak) */
#define WORKER_DELIVERIES_MAX 500
/* an idle worker ends after this */
#define WORKER_IDLE_MS 10000

/* a delivery worker: a child switched to one user for good, which takes
 * one request after the other over its own socket */
struct worker {
	pid_t pid;
	uid_t uid;        /* whom it delivers as */
	int fd;           /* our end of its socket; -1 once closed */
	uint64_t id;      /* the request it works on; 0: idle */
	int64_t since;    /* monotonic ms: busy since, or idle since */
};

static struct {
	const struct conf *conf;
	const struct deliverd_ids *ids;
	int sock;         /* to the queue process */
	int sigfd;
	struct worker *w;
	size_t nw, maxw;
} dd;

/* reply_send - one reply datagram to the queue process */
static void
reply_send(int sock, const struct deliver_reply *r)
{
	struct buf b;

	buf_init(&b);
	deliver_reply_format(r, &b);
	if (send(sock, b.data, b.len, MSG_NOSIGNAL) == -1)
		log_warn("cannot send a delivery reply: %s", strerror(errno));
	buf_free(&b);
}

/* reply_now - a reply that needs no worker */
static void
reply_now(uint64_t id, enum deliver_result res, const char *status,
    const char *why)
{
	struct deliver_reply r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.result = (int)res;
	snprintf(r.status, sizeof(r.status), "%s", status);
	util_sanitise(r.reason, DELIVER_REASON_MAX, why, strlen(why));
	reply_send(dd.sock, &r);
}

/* deliverd_expand_path - ~/ then %u %d %a */
int
deliverd_expand_path(const char *pattern, const char *home,
    const char *user, const char *domain, char *out, size_t outlen,
    char *err, size_t errlen)
{
	struct buf b;
	const char *s;
	int rc = 0;

	buf_init(&b);
	if (strncmp(pattern, "~/", 2) == 0) {
		if (home == NULL || home[0] != '/') {
			snprintf(err, errlen, "no home directory for ~ in %s",
			    pattern);
			buf_free(&b);
			return -1;
		}
		for (s = home; *s != '\0'; s++) {
			if (*s == '%')
				buf_putc(&b, '%');
			buf_putc(&b, *s);
		}
		pattern++;
	}
	buf_puts(&b, pattern);
	if (mailbox_expand(b.data, user, domain, out, outlen) == -1) {
		snprintf(err, errlen, "mailbox path too long");
		rc = -1;
	}
	buf_free(&b);
	return rc;
}

/* run_as - the account a request is delivered as, or NULL with why */
static const struct passwd *
run_as(const struct conf *c, const struct deliver_request *rq,
    const char **why)
{
	const char *name;
	struct passwd *pw;

	if (rq->source == DSRC_ALIAS)
		name = c->alias_user;
	else if (rq->user[0] != '\0')
		name = rq->user;
	else
		return NULL; /* a virtual user: the tern user */
	pw = getpwnam(name);
	if (pw == NULL) {
		*why = "no such user";
		return NULL;
	}
	if (rq->source != DSRC_ALIAS &&
	    (pw->pw_uid == 0 || pw->pw_uid < c->min_uid)) {
		*why = "a system account below min-uid (mail for it needs an "
		    "alias)";
		return NULL;
	}
	if (pw->pw_uid == 0) {
		*why = "alias-user is root";
		return NULL;
	}
	return pw;
}

/* method_allowed - NULL when the request's method is one the
 * configuration gives it, else why not */
static const char *
method_allowed(const struct conf *c, const struct deliver_request *rq)
{
	switch (rq->source) {
	case DSRC_MAILBOX:
		if (strcmp(rq->method, conf_mailbox_method(c,
		    rq->vuser)) != 0)
			return "not the user's mailbox method";
		return NULL;
	case DSRC_ALIAS:
		if (rq->alias == NULL ||
		    !alias_table_allows(rq->alias, rq->method))
			return "not a target of that alias";
		return NULL;
	default:
		/* the worker checks the user's .forward */
		if (rq->user[0] == '\0')
			return "a .forward target without a user";
		return NULL;
	}
}

/* request_check - NULL when rq may be delivered, else why not */
static const char *
request_check(const struct conf *c, const struct deliver_request *rq)
{
	if (!spool_qid_valid(rq->qid))
		return "bad queue id";
	if (rq->vuser[0] == '\0' || rq->vuser[0] == '.' ||
	    strchr(rq->vuser, '/') != NULL)
		return "bad user";
	if (rq->source != DSRC_MAILBOX && strncmp(rq->method, "pipe:", 5) &&
	    strncmp(rq->method, "file:/", 6))
		return "an alias or .forward target that is not a pipe or "
		    "file";
	if (rq->source == DSRC_MAILBOX && strncmp(rq->method, "lmtp:", 5) == 0)
		return "lmtp is not delivered here";
	return method_allowed(c, rq);
}

/* deliverd_check - NULL when the configuration allows rq, with the
 * account to run as in *pw (NULL: the tern user); else why not */
const char *
deliverd_check(const struct conf *c, const struct deliver_request *rq,
    const struct passwd **pw)
{
	const char *why = request_check(c, rq);

	*pw = NULL;
	if (why == NULL)
		*pw = run_as(c, rq, &why);
	return why;
}

/* switch_user - become pw (or the tern user when pw is NULL) for good */
static int
switch_user(const struct passwd *pw)
{
	uid_t uid = pw ? pw->pw_uid : dd.ids->uid;
	gid_t gid = pw ? pw->pw_gid : dd.ids->gid;

	if (!dd.ids->drop)
		return 0;
	if (pw != NULL && initgroups(pw->pw_name, gid) == -1)
		return -1;
	if (pw == NULL && setgroups(1, &gid) == -1)
		return -1;
	if (setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1)
		return -1;
	if (uid != 0 && setuid(0) != -1)
		panic("regained root after switching to uid %ld", (long)uid);
	return 0;
}

/* header_read - the start of the content into h, enough to hold the
 * header section (read again twice as large until its end, a blank
 * line, is in it, up to DELIVERD_HEADER_SCAN); -1 when nothing reads.
 * h belongs to the worker and keeps its room between deliveries. */
static int
header_read(int fd, struct buf *h)
{
	size_t want = DELIVERD_HEADER_FIRST;
	ssize_t n;

	for (;;) {
		buf_reset(h);
		buf_reserve(h, want + 1);
		n = pread(fd, h->data, want, 0);
		if (n <= 0)
			return -1;
		h->len = (size_t)n;
		h->data[h->len] = '\0';
		if (h->len < want || want >= DELIVERD_HEADER_SCAN ||
		    memmem(h->data, h->len, "\r\n\r\n", 4) != NULL)
			return 0;
		want *= 2;
	}
}

/* header_has_delivered_to - 1 when the header section of the content
 * holds "Delivered-To: addr" (a mail loop through this address) */
static int
header_has_delivered_to(int fd, const char *addr)
{
	static struct buf h;
	size_t alen = strlen(addr);
	char *p, *end, *nl;
	int found = 0;

	if (h.data == NULL)
		buf_init(&h);
	if (header_read(fd, &h) == -1)
		return 0;
	end = h.data + h.len;
	for (p = h.data; p < end && !found; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || p[0] == '\r' || p[0] == '\n')
			break; /* the end of the header section */
		if (strncasecmp(p, "Delivered-To:", 13) != 0)
			continue;
		p += 13;
		p += strspn(p, " \t");
		found = strncasecmp(p, addr, alen) == 0 &&
		    strchr("\r\n \t", p[alen]) != NULL;
	}
	return found;
}

/* forward_read - the user's .forward: its targets, 0 when there is none
 * to follow, -1 with why when it is unsafe or unreadable */
static int
forward_read(const struct passwd *pw, char ***targets, size_t *n,
    const char **why)
{
	char path[4096], err[256];
	struct stat st;
	struct buf b;
	int fd, rc;
	ssize_t got;

	*targets = NULL;
	*n = 0;
	if (dd.conf->forward == NULL || pw == NULL)
		return 0;
	if (deliverd_expand_path(dd.conf->forward, pw->pw_dir, pw->pw_name,
	    "", path, sizeof(path), err, sizeof(err)) == -1)
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return errno == ENOENT ? 0 : (*why = "cannot read .forward", -1);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != pw->pw_uid && st.st_uid != 0) ||
	    (st.st_mode & 022) || st.st_size > DELIVERD_FORWARD_MAX) {
		close(fd);
		*why = ".forward is not a regular file owned by the user and "
		    "writable only by it";
		return -1;
	}
	buf_init(&b);
	buf_reserve(&b, (size_t)st.st_size + 1);
	got = read(fd, b.data, (size_t)st.st_size);
	close(fd);
	if (got < 0) {
		buf_free(&b);
		*why = "cannot read .forward";
		return -1;
	}
	b.len = (size_t)got;
	b.data[b.len] = '\0';
	rc = alias_forward_parse(b.data, b.len, targets, n);
	buf_free(&b);
	if (rc == -1)
		*why = ".forward has a syntax error";
	return rc == -1 ? -1 : *n > 0;
}

/* worker_forward - a system user's .forward: reply with its targets
 * instead of delivering (1), or 0 when there is none */
static int
worker_forward(const struct deliver_request *rq, const struct passwd *pw,
    struct deliver_reply *rep)
{
	const char *why = NULL;
	char **t;
	size_t n;
	int rc;

	if (rq->source != DSRC_MAILBOX || rq->no_forward || pw == NULL)
		return 0;
	rc = forward_read(pw, &t, &n, &why);
	if (rc == 0)
		return 0;
	if (rc == -1) {
		rep->result = DELIVER_TEMP;
		snprintf(rep->status, sizeof(rep->status), "4.3.0");
		snprintf(rep->reason, sizeof(rep->reason), "%s", why);
		return 1;
	}
	rep->result = DELIVER_FORWARDED;
	rep->forward = t;
	rep->nforward = n;
	snprintf(rep->status, sizeof(rep->status), "2.0.0");
	snprintf(rep->reason, sizeof(rep->reason), "forwarded by .forward");
	return 1;
}

/* forward_names - 1 when the user's .forward names method (pipe:/file:) */
static int
forward_names(const struct passwd *pw, const char *method)
{
	const char *why;
	char **t;
	size_t n, i;
	int found = 0;

	if (forward_read(pw, &t, &n, &why) != 1)
		return 0;
	for (i = 0; i < n; i++) {
		found |= alias_target_matches(t[i], method);
		free(t[i]);
	}
	free(t);
	return found;
}

/* worker_deliver - the agent for the method */
static void
worker_deliver(const struct deliver_request *rq, const struct passwd *pw,
    int fd, struct deliver_outcome *out)
{
	const char *colon = strchr(rq->method, ':');
	char name[16], path[4096], err[256];
	const struct deliver_agent *agent;
	const char *target = colon + 1;
	struct deliver_req req;
	size_t nlen = (size_t)(colon - rq->method);

	snprintf(name, sizeof(name), "%.*s", (int)(nlen < 15 ? nlen : 15),
	    rq->method);
	agent = deliver_agent_find(strcmp(name, "file") == 0 ? "mbox" : name);
	if (agent == NULL) {
		deliver_outcome_set(out, DELIVER_TEMP, "4.3.5",
		    "unknown delivery method %s", name);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.qid = rq->qid;
	req.rcpt_index = rq->index;
	req.content_fd = fd;
	req.return_path = rq->sender;
	req.delivered_to = rq->rcpt;
	req.hostname = dd.conf->hostname;
	req.check_cur = rq->check_cur;
	req.user = pw ? pw->pw_name : rq->vuser;
	req.home = pw ? pw->pw_dir : "";
	req.local = rq->local;
	req.extension = rq->ext;
	req.domain = rq->domain;
	req.timeout_ms = dd.conf->timeout_delivery_ms;
	if (agent->path_target && strcmp(name, "file") != 0) {
		if (deliverd_expand_path(target, req.home, rq->vuser,
		    rq->domain, path, sizeof(path), err, sizeof(err)) == -1) {
			deliver_outcome_set(out, DELIVER_TEMP, "4.3.5", "%s",
			    err);
			return;
		}
		target = path;
	}
	agent->deliver(target, &req, out);
}

/* deliver_one - one request, in a worker already switched to pw (NULL:
 * the tern user); the reply goes to the queue process */
static void
deliver_one(const struct deliver_request *rq, const struct passwd *pw,
    int fd)
{
	struct deliver_reply rep;
	struct deliver_outcome out;

	memset(&rep, 0, sizeof(rep));
	rep.id = rq->id;
	if (chdir(pw ? pw->pw_dir : "/") == -1 && chdir("/") == -1) {
		deliver_outcome_set(&out, DELIVER_TEMP, "4.3.0",
		    "cannot change directory: %s", strerror(errno));
	} else if (worker_forward(rq, pw, &rep)) {
		reply_send(dd.sock, &rep);
		deliver_reply_free(&rep);
		return;
	} else if (rq->source == DSRC_FORWARD &&
	    !forward_names(pw, rq->method)) {
		deliver_outcome_set(&out, DELIVER_PERM, "5.7.1",
		    "the user's .forward does not name this target");
	} else if (header_has_delivered_to(fd, rq->rcpt)) {
		deliver_outcome_set(&out, DELIVER_PERM, "5.4.6",
		    "mail forwarding loop for %s", rq->rcpt);
	} else {
		worker_deliver(rq, pw, fd, &out);
	}
	rep.result = (int)out.result;
	snprintf(rep.status, sizeof(rep.status), "%s", out.status);
	snprintf(rep.reason, sizeof(rep.reason), "%s", out.reason);
	reply_send(dd.sock, &rep);
}

/* recv_fd - one datagram with a descriptor from fd into buf; its length
 * (0 at the end), the descriptor in *cfd (-1 when none), -1 on error */
static ssize_t
recv_fd(int fd, char *buf, int *cfd, int flags)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { buf, DELIVER_MSG_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm;
	ssize_t n;

	*cfd = -1;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
	if (n <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)) && *cfd == -1)
			memcpy(cfd, CMSG_DATA(cm), sizeof(int));
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (*cfd != -1)
			close(*cfd);
		*cfd = -1;
	}
	return n;
}

/* send_fd - one datagram with a descriptor */
static int
send_fd(int fd, const char *buf, size_t len, int cfd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm;

	memset(cbuf.b, 0, sizeof(cbuf.b));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &cfd, sizeof(int));
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == -1 ? -1 : 0;
}

/*
 * worker_main - a worker: switch to pw for good, then deliver the
 * requests deliverd hands over (already checked), answering the queue
 * process directly and deliverd with one octet, until deliverd closes
 * the socket or WORKER_DELIVERIES_MAX is reached.  Each request's account
 * is looked up again here (its home, its .forward): when tern does not
 * run as root, one worker serves every user.
 */
static _Noreturn void
worker_main(const struct passwd *pw, int fd)
{
	char *buf = xmalloc(DELIVER_MSG_MAX), err[128];
	struct deliver_request rq;
	const char *why = NULL;
	unsigned done;
	sigset_t none;
	ssize_t n;
	int cfd;

	log_set_name("deliver");
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* a worker ends when deliverd closes its socket, after the delivery
	 * in hand: a SIGTERM to the whole process group must not cut an
	 * mbox append in half (SIGKILL still ends it) */
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit must fail a write (mailbox full), not kill */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	if (switch_user(pw) == -1) {
		log_err("cannot switch to user %s: %s", pw ? pw->pw_name :
		    "tern", strerror(errno));
		_exit(1);
	}
	for (done = 0; done < WORKER_DELIVERIES_MAX; done++) {
		do
			n = recv_fd(fd, buf, &cfd, 0);
		while (n == -1 && errno == EINTR);
		if (n <= 0)
			break;
		if (cfd == -1 || deliver_request_parse(&rq, buf, (size_t)n,
		    err, sizeof(err)) == -1)
			_exit(1); /* deliverd wrote it: a bug */
		deliver_one(&rq, run_as(dd.conf, &rq, &why), cfd);
		close(cfd);
		deliver_request_free(&rq);
		if (send(fd, "", 1, MSG_NOSIGNAL) == -1)
			break;
	}
	_exit(0);
}

/* worker_close - stop giving w work: it ends when it reads the end */
static void
worker_close(struct worker *w)
{
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
}

/* worker_start - a new worker for pw (NULL: the tern user); NULL when
 * it cannot be made */
static struct worker *
worker_start(const struct passwd *pw, uid_t uid)
{
	struct worker *w;
	size_t i;
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return NULL;
	pid = fork();
	if (pid == -1) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	if (pid == 0) {
		/* nothing of deliverd's but the queue socket and its own */
		for (i = 0; i < dd.nw; i++)
			worker_close(&dd.w[i]);
		close(dd.sigfd);
		close(sv[0]);
		worker_main(pw, sv[1]);
	}
	close(sv[1]);
	w = &dd.w[dd.nw++];
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->uid = uid;
	w->fd = sv[0];
	w->since = util_mono_ms();
	return w;
}

/* worker_retire_idle - close the longest idle worker to make room; 0
 * when there was one */
static int
worker_retire_idle(void)
{
	struct worker *best = NULL;
	size_t i;

	for (i = 0; i < dd.nw; i++)
		if (dd.w[i].id == 0 && dd.w[i].fd != -1 &&
		    (best == NULL || dd.w[i].since < best->since))
			best = &dd.w[i];
	if (best == NULL)
		return -1;
	worker_close(best);
	return 0;
}

/* worker_for - an idle worker that delivers as pw, started when there
 * is none; NULL when there is no room */
static struct worker *
worker_for(const struct passwd *pw)
{
	uid_t uid = !dd.ids->drop ? geteuid() : pw ? pw->pw_uid : dd.ids->uid;
	size_t i;

	for (i = 0; i < dd.nw; i++)
		if (dd.w[i].id == 0 && dd.w[i].fd != -1 && dd.w[i].uid == uid)
			return &dd.w[i];
	if (dd.nw == dd.maxw && worker_retire_idle() == -1)
		return NULL;
	if (dd.nw == dd.maxw)
		return NULL; /* room comes once the retired one is reaped */
	return worker_start(pw, uid);
}

/* dispatch - hand a checked request (its text in buf) to a worker */
static void
dispatch(const struct deliver_request *rq, const struct passwd *pw,
    const char *buf, size_t len, int cfd)
{
	struct worker *w = worker_for(pw);

	if (w == NULL) {
		reply_now(rq->id, DELIVER_TEMP, "4.3.2",
		    "too many deliveries at once");
		return;
	}
	if (send_fd(w->fd, buf, len, cfd) == -1) {
		worker_close(w);
		reply_now(rq->id, DELIVER_TEMP, "4.3.0",
		    "cannot reach a delivery worker");
		return;
	}
	w->id = rq->id;
	w->since = util_mono_ms();
}

/* handle - one request datagram: 0, or -1 when the queue process has
 * gone */
static int
handle(char *buf)
{
	struct deliver_request rq;
	const struct passwd *pw;
	const char *why;
	char err[128];
	ssize_t n;
	int fd;

	memset(&rq, 0, sizeof(rq));
	n = recv_fd(dd.sock, buf, &fd, MSG_DONTWAIT);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	if (deliver_request_parse(&rq, buf, (size_t)n, err, sizeof(err)) == -1 ||
	    fd == -1) {
		log_err("a malformed delivery request: refused");
		/* its job would wait for ever: answer it when its id was
		 * read (the parser keeps what it read before the error) */
		if (rq.id != 0)
			reply_now(rq.id, DELIVER_TEMP, "4.3.0",
			    "a malformed delivery request");
		if (fd != -1)
			close(fd);
		deliver_request_free(&rq);
		return 0;
	}
	why = deliverd_check(dd.conf, &rq, &pw);
	if (why != NULL) {
		log_warn("%s: delivery to <%s> refused: %s", rq.qid, rq.rcpt,
		    why);
		reply_now(rq.id, DELIVER_PERM, strcmp(why, "no such user") ?
		    "5.7.1" : "5.1.1", why);
	} else {
		dispatch(&rq, pw, buf, (size_t)n, fd);
	}
	close(fd);
	deliver_request_free(&rq);
	return 0;
}

/* worker_read - what a worker said: one octet per finished delivery, or
 * the end of its socket */
static void
worker_read(struct worker *w)
{
	char b[16];
	ssize_t n;

	while ((n = recv(w->fd, b, sizeof(b), MSG_DONTWAIT)) > 0) {
		w->id = 0;
		w->since = util_mono_ms();
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		worker_close(w);
}

/* reap - workers that ended; one that ended in the middle of a delivery
 * never sent its reply: a temporary failure is sent for it */
static void
reap(void)
{
	char why[96];
	struct worker *w;
	pid_t pid;
	size_t i;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < dd.nw && dd.w[i].pid != pid; i++)
			;
		if (i == dd.nw)
			continue;
		w = &dd.w[i];
		if (w->fd != -1)
			worker_read(w); /* a last "done" before it ended */
		if (w->id != 0) {
			if (WIFSIGNALED(st))
				snprintf(why, sizeof(why), "the delivery "
				    "process was killed by signal %d",
				    WTERMSIG(st));
			else
				snprintf(why, sizeof(why), "the delivery "
				    "process exited with %d", WEXITSTATUS(st));
			reply_now(w->id, DELIVER_TEMP, "4.3.0", why);
		}
		worker_close(w);
		dd.w[i] = dd.w[--dd.nw];
	}
}

/* overdue - kill workers far past the delivery timeout (a pipe stops
 * its own program; this is for anything else that hangs), and close
 * those idle too long */
static void
overdue(void)
{
	int64_t limit = dd.conf->timeout_delivery_ms + DELIVERD_GRACE_MS;
	int64_t now = util_mono_ms();
	size_t i;

	for (i = 0; i < dd.nw; i++) {
		if (dd.w[i].id != 0 && now - dd.w[i].since > limit)
			kill(dd.w[i].pid, SIGKILL);
		if (dd.w[i].id == 0 && now - dd.w[i].since > WORKER_IDLE_MS)
			worker_close(&dd.w[i]);
	}
}

/* stop_all - the queue process has gone (its replies have nowhere to
 * go; a successor tries those deliveries again): the workers finish
 * what they do (one killed in the middle of an mbox append would leave
 * half a message), or overdue() stops one that hangs; then the end */
static _Noreturn void
stop_all(void)
{
	size_t i;

	for (i = 0; i < dd.nw; i++)
		worker_close(&dd.w[i]);
	while (dd.nw > 0) {
		usleep(50 * 1000);
		reap();
		overdue();
	}
	exit(0);
}

/* deliverd_main - the loop: requests, workers' words, ended workers */
void
deliverd_main(const struct conf *c, int sock, const struct deliverd_ids *ids)
{
	struct pollfd *pf;
	sigset_t set;
	char *buf = xmalloc(DELIVER_MSG_MAX);
	struct signalfd_siginfo si;
	size_t i, nw;

	log_set_name("deliverd");
	/* what a worker leaves behind when it is killed (a pipe's program,
	 * its feeder) comes to us, not to init, and reap() collects it */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	dd.conf = c;
	dd.ids = ids;
	dd.sock = sock;
	dd.maxw = (size_t)c->local_concurrency * 2 + 8;
	dd.w = xcalloc(dd.maxw, sizeof(*dd.w));
	pf = xcalloc(dd.maxw + 2, sizeof(*pf));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	dd.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (dd.sigfd == -1)
		fatal("signalfd: %s", strerror(errno));
	alias_table_load(c);
	for (;;) {
		pf[0] = (struct pollfd){ .fd = sock, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = dd.sigfd, .events = POLLIN };
		for (i = 0, nw = dd.nw; i < nw; i++)
			pf[2 + i] = (struct pollfd){ .fd = dd.w[i].fd,
				.events = POLLIN };
		if (poll(pf, 2 + nw, 1000) == -1 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		for (i = 0; i < nw; i++)
			if (pf[2 + i].revents && dd.w[i].fd == pf[2 + i].fd)
				worker_read(&dd.w[i]);
		if (pf[1].revents & POLLIN) {
			while (read(dd.sigfd, &si, sizeof(si)) > 0)
				if (si.ssi_signo == SIGTERM)
					stop_all();
			reap();
		}
		if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    handle(buf) == -1)
			stop_all();
		overdue();
	}
}

/*
 * deliverd.c - the delivery process: runs local deliveries for the queue
 * process, each in a child switched to the user the mail belongs to.
 *
 * The one idea: the queue process (unprivileged, never blocked) decides
 * what to deliver where; this process, which keeps root when tern runs as
 * root, only checks that a request is one the configuration allows and
 * forks a child that drops to the right user before it touches anything:
 *
 *   queue --request + content fd (SOCK_SEQPACKET)--> deliverd
 *   deliverd --fork--> child: switch user, agent (deliver.h), reply --> queue
 *
 * A request names a recipient, a method and a user.  The method must be
 * the user's own (conf mailbox / mailbox-for); a pipe or file of an alias
 * runs as alias-user and must be named by that alias; one of a .forward
 * runs as the user and the child checks that the user's .forward names it.
 * Root and system accounts below min-uid are never delivered as: their
 * mail needs an alias.  The content comes as a descriptor the queue
 * process opened (SCM_RIGHTS), so a child never sees the spool.
 *
 * The child sends its reply itself (one datagram: atomic on a
 * SOCK_SEQPACKET socket whatever the other children write) and exits 0;
 * a child that dies or exits otherwise is reported here as a temporary
 * failure, so the queue process always hears back.  This process lives
 * and dies with its queue process: when the queue process closes the
 * socket its children are stopped, so two schedulers' deliveries never
 * mix after a handover.
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

/* a child still running this long after the delivery timeout is killed */
#define DELIVERD_GRACE_MS 30000
/* header octets searched for a Delivered-To: loop */
#define DELIVERD_HEADER_SCAN (256 * 1024)
/* a .forward larger than this is not read */
#define DELIVERD_FORWARD_MAX (64 * 1024)

struct dchild {
	pid_t pid;
	uint64_t id;
	int64_t started;  /* monotonic ms */
};

static struct {
	const struct conf *conf;
	const struct deliverd_ids *ids;
	int sock;
	struct dchild *kids;
	size_t nkids, maxkids;
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

/* reply_now - a reply that needs no child */
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
		/* the child checks the user's .forward */
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

/* header_has_delivered_to - 1 when the header section of the content
 * holds "Delivered-To: addr" (a mail loop through this address) */
static int
header_has_delivered_to(int fd, const char *addr)
{
	char *h = xmalloc(DELIVERD_HEADER_SCAN + 1), *p, *end, *nl;
	ssize_t n = pread(fd, h, DELIVERD_HEADER_SCAN, 0);
	size_t alen = strlen(addr);
	int found = 0;

	if (n <= 0) {
		free(h);
		return 0;
	}
	h[n] = '\0';
	end = h + n;
	for (p = h; p < end && !found; p = nl + 1) {
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
	free(h);
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

/* child_forward - a system user's .forward: reply with its targets
 * instead of delivering (1), or 0 when there is none */
static int
child_forward(const struct deliver_request *rq, const struct passwd *pw,
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

/* child_deliver - the agent for the method */
static void
child_deliver(const struct deliver_request *rq, const struct passwd *pw,
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

/* child_main - one delivery, in its own process */
static _Noreturn void
child_main(const struct deliver_request *rq, const struct passwd *pw,
    int fd)
{
	struct deliver_reply rep;
	struct deliver_outcome out;
	sigset_t none;

	log_set_name("deliver");
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit must fail a write (mailbox full), not kill */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	memset(&rep, 0, sizeof(rep));
	rep.id = rq->id;
	if (switch_user(pw) == -1) {
		deliver_outcome_set(&out, DELIVER_TEMP, "4.3.0",
		    "cannot switch to the user: %s", strerror(errno));
	} else if (chdir(pw ? pw->pw_dir : "/") == -1 && chdir("/") == -1) {
		deliver_outcome_set(&out, DELIVER_TEMP, "4.3.0",
		    "cannot change directory: %s", strerror(errno));
	} else if (child_forward(rq, pw, &rep)) {
		reply_send(dd.sock, &rep);
		_exit(0);
	} else if (rq->source == DSRC_FORWARD &&
	    !forward_names(pw, rq->method)) {
		deliver_outcome_set(&out, DELIVER_PERM, "5.7.1",
		    "the user's .forward does not name this target");
	} else if (header_has_delivered_to(fd, rq->rcpt)) {
		deliver_outcome_set(&out, DELIVER_PERM, "5.4.6",
		    "mail forwarding loop for %s", rq->rcpt);
	} else {
		child_deliver(rq, pw, fd, &out);
	}
	rep.result = (int)out.result;
	snprintf(rep.status, sizeof(rep.status), "%s", out.status);
	snprintf(rep.reason, sizeof(rep.reason), "%s", out.reason);
	reply_send(dd.sock, &rep);
	_exit(0);
}

/* spawn - fork the child of a checked request */
static void
spawn(const struct deliver_request *rq, const struct passwd *pw, int fd,
    int sigfd)
{
	pid_t pid;

	if (dd.nkids == dd.maxkids) {
		reply_now(rq->id, DELIVER_TEMP, "4.3.2",
		    "too many deliveries at once");
		return;
	}
	pid = fork();
	if (pid == -1) {
		reply_now(rq->id, DELIVER_TEMP, "4.3.0", "cannot fork");
		return;
	}
	if (pid == 0) {
		close(sigfd);
		child_main(rq, pw, fd);
	}
	dd.kids[dd.nkids].pid = pid;
	dd.kids[dd.nkids].id = rq->id;
	dd.kids[dd.nkids].started = util_mono_ms();
	dd.nkids++;
}

/* fd_from - the descriptor a message carried, or -1 */
static int
fd_from(struct msghdr *mh)
{
	struct cmsghdr *cm;
	int fd = -1;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)) && fd == -1)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* handle - one request datagram: 0, or -1 when the queue process has
 * gone */
static int
handle(char *buf, int sigfd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { buf, DELIVER_MSG_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b) };
	struct deliver_request rq;
	const struct passwd *pw;
	const char *why = NULL;
	char err[128];
	ssize_t n;
	int fd;

	memset(&rq, 0, sizeof(rq));
	n = recvmsg(dd.sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	fd = fd_from(&mh);
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || fd == -1 ||
	    deliver_request_parse(&rq, buf, (size_t)n, err,
	    sizeof(err)) == -1) {
		log_err("a malformed delivery request: refused");
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
		spawn(&rq, pw, fd, sigfd);
	}
	close(fd);
	deliver_request_free(&rq);
	return 0;
}

/* reap - children that ended; a child that did not exit 0 never sent
 * its reply: a temporary failure is sent for it */
static void
reap(void)
{
	char why[96];
	pid_t pid;
	size_t i;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < dd.nkids && dd.kids[i].pid != pid; i++)
			;
		if (i == dd.nkids)
			continue;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (WIFSIGNALED(st))
				snprintf(why, sizeof(why), "the delivery "
				    "process was killed by signal %d",
				    WTERMSIG(st));
			else
				snprintf(why, sizeof(why), "the delivery "
				    "process exited with %d", WEXITSTATUS(st));
			reply_now(dd.kids[i].id, DELIVER_TEMP, "4.3.0", why);
		}
		dd.kids[i] = dd.kids[--dd.nkids];
	}
}

/* overdue - kill children far past the delivery timeout (a pipe stops
 * its own program; this is for anything else that hangs) */
static void
overdue(void)
{
	int64_t limit = dd.conf->timeout_delivery_ms + DELIVERD_GRACE_MS;
	int64_t now = util_mono_ms();
	size_t i;

	for (i = 0; i < dd.nkids; i++)
		if (now - dd.kids[i].started > limit)
			kill(dd.kids[i].pid, SIGKILL);
}

/* stop_all - the queue process has gone (its replies have nowhere to
 * go; a successor tries those deliveries again): wait for the children,
 * then end */
static _Noreturn void
stop_all(void)
{
	/* a child killed in the middle of an mbox append would leave half a
	 * message: they finish (or overdue() stops one that hangs) */
	while (dd.nkids > 0) {
		usleep(50 * 1000);
		reap();
		overdue();
	}
	exit(0);
}

/* deliverd_main - the loop: requests, ended children, overdue ones */
void
deliverd_main(const struct conf *c, int sock, const struct deliverd_ids *ids)
{
	struct pollfd pf[2];
	sigset_t set;
	char *buf = xmalloc(DELIVER_MSG_MAX);
	struct signalfd_siginfo si;
	int sigfd;

	log_set_name("deliverd");
	dd.conf = c;
	dd.ids = ids;
	dd.sock = sock;
	dd.maxkids = (size_t)c->local_concurrency * 2 + 8;
	dd.kids = xcalloc(dd.maxkids, sizeof(*dd.kids));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd == -1)
		fatal("signalfd: %s", strerror(errno));
	alias_table_load(c);
	for (;;) {
		pf[0] = (struct pollfd){ .fd = sock, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		if (poll(pf, 2, 1000) == -1 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (pf[1].revents & POLLIN) {
			while (read(sigfd, &si, sizeof(si)) > 0)
				if (si.ssi_signo == SIGTERM)
					stop_all();
			reap();
		}
		if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    handle(buf, sigfd) == -1)
			stop_all();
		reap();
		overdue();
	}
}

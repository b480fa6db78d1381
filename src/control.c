/*
 * control.c - the control socket, server side (see control.h).
 *
 * One connection, one request, one answer, then the server closes.  The
 * request is read with a deadline and a bound (CONTROL_LINE_MAX), parsed
 * by control_proto.c, and who may ask is checked twice: by the socket's
 * file mode and group (the master set them), and here by the peer's
 * credentials (SO_PEERCRED, SO_PEERGROUPS): root, the user this process
 * runs as, and members of control-group.  Every request gets an answer;
 * an error is one sentence.
 *
 * "list" is streamed: the queue directory is read as the client reads the
 * answer (bufferevent write low-water mark), so a queue of any size is
 * listed in CONTROL_OUT_HIGH of memory per client.  The order is the
 * directory's, not the arrival's (sort by the id for that).  What the
 * scheduler holds in memory is the truth for a message it knows (states
 * change there first); one it has not loaded yet is read from its file.
 */
#include "control.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "control_proto.h"
#include "envelope.h"
#include "sched.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

/* SO_PEERGROUPS: at most this many supplementary groups are looked at */
#define CONTROL_PEER_GROUPS_MAX 256

struct ctl_conn {
	struct bufferevent *bev;
	uid_t uid;             /* of the peer, for the log */
	int json;
	enum control_verb verb; /* hold or release: of qid */
	char qid[QID_SIZE];
	DIR *list;             /* a listing in progress */
	int waiting;           /* a hold/release waits for the spool */
	int gone;              /* the client left while it waited */
	int closing;           /* the answer is complete: close once sent */
	int lingering;         /* sent: reading what the client still
	                        * sends until it closes (see conn_linger) */
	struct buf out;
};

static struct {
	const struct conf *conf;
	struct event_base *base;
	struct event *accept_ev;
	gid_t group;
	unsigned nconns;
} ctl;

int
control_sock_path(const char *home, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/state/control.sock", home);

	if (n < 0 || (size_t)n >= outlen ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -1;
	return 0;
}

gid_t
control_group_gid(const struct conf *c)
{
	struct group *gr;

	if (c->control_group == NULL)
		return (gid_t)-1;
	gr = getgrnam(c->control_group);
	if (gr == NULL)
		fatal("control-group %s: no such group", c->control_group);
	return gr->gr_gid;
}

int
control_bind(const char *home, int drop, uid_t uid, gid_t gid, gid_t group)
{
	struct sockaddr_un sa;
	char state[PATH_MAX];
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (control_sock_path(home, sa.sun_path, sizeof(sa.sun_path)) == -1)
		fatal("%s/state/control.sock: path too long for a socket",
		    home);
	snprintf(state, sizeof(state), "%s/state", home);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		fatal("socket: %s", strerror(errno));
	if (unlink(sa.sun_path) == -1 && errno != ENOENT)
		fatal("cannot remove %s: %s", sa.sun_path, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fatal("cannot bind %s: %s", sa.sun_path, strerror(errno));
	if (listen(fd, 64) == -1)
		fatal("listen %s: %s", sa.sun_path, strerror(errno));
	/* the mode decides first (connect needs write permission on the
	 * socket and search permission on state/); the peer check in the
	 * queue process decides again */
	if (chown(sa.sun_path, drop ? uid : (uid_t)-1,
	    group != (gid_t)-1 ? group : drop ? gid : (gid_t)-1) == -1 ||
	    chmod(sa.sun_path, group != (gid_t)-1 ? 0660 : 0600) == -1)
		fatal("cannot set the owner and mode of %s: %s", sa.sun_path,
		    strerror(errno));
	/* state/ may be crossed by the control group, and, where the
	 * smtpd has a user of its own, by anyone (the smtpd goes to its
	 * state/smtpd/): the socket's own mode decides who connects.
	 * Otherwise, without a group, it is closed again (a group given
	 * before opened it). */
	if (group != (gid_t)-1 && chown(state, (uid_t)-1, group) == -1)
		fatal("cannot give %s to the control group: %s", state,
		    strerror(errno));
	if (chmod(state, drop ? 0711 : group != (gid_t)-1 ? 0710 : 0700) ==
	    -1)
		fatal("cannot set the mode of %s: %s", state, strerror(errno));
	return fd;
}

/* peer_allowed - 1 when the peer of fd may use the socket */
static int
peer_allowed(int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[CONTROL_PEER_GROUPS_MAX];
	size_t i, n;

	*uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return 0;
	*uid = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return 1;
	if (ctl.group == (gid_t)-1)
		return 0;
	if (cr.gid == ctl.group)
		return 1;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
		return 0; /* more groups than we look at, or an old kernel */
	n = len / sizeof(gid_t);
	for (i = 0; i < n; i++)
		if (groups[i] == ctl.group)
			return 1;
	return 0;
}

/* conn_free - the end of a connection */
static void
conn_free(struct ctl_conn *cc)
{
	if (cc->list != NULL)
		closedir(cc->list);
	if (cc->bev != NULL)
		bufferevent_free(cc->bev);
	buf_free(&cc->out);
	if (ctl.nconns-- == CONTROL_CONNS_MAX)
		event_add(ctl.accept_ev, NULL);
	free(cc);
}

/* conn_send - move what is in cc->out to the socket's buffer */
static void
conn_send(struct ctl_conn *cc)
{
	if (cc->out.len == 0)
		return;
	bufferevent_write(cc->bev, cc->out.data, cc->out.len);
	buf_reset(&cc->out);
}

/*
 * conn_linger - the answer is written: end our side and read (and drop)
 * whatever the client still sends until it closes or the read timeout.
 * Closing at once would lose the answer: a UNIX socket closed with unread
 * input gives its peer ECONNRESET instead of what was sent before.
 */
static void
conn_linger(struct ctl_conn *cc)
{
	cc->lingering = 1;
	shutdown(bufferevent_getfd(cc->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(cc->bev),
	    evbuffer_get_length(bufferevent_get_input(cc->bev)));
	bufferevent_enable(cc->bev, EV_READ);
}

/* conn_finish - the answer is complete: end once it is written */
static void
conn_finish(struct ctl_conn *cc)
{
	conn_send(cc);
	cc->closing = 1;
	bufferevent_setwatermark(cc->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(cc->bev)) == 0)
		conn_linger(cc);
}

/* answer_error - "error KIND SENTENCE" and the end */
static void
answer_error(struct ctl_conn *cc, enum control_err e, const char *text)
{
	buf_printf(&cc->out, "error %s %s\n", control_err_name(e), text);
	conn_finish(cc);
}

/* answer_text - "ok", one line of text, the end */
static void
answer_text(struct ctl_conn *cc, const char *text)
{
	buf_puts(&cc->out, "ok\n");
	control_put_line(&cc->out, text, strlen(text));
	control_put_end(&cc->out);
	conn_finish(cc);
}

/* list_more - add listing lines until HIGH octets wait or the end */
static void
list_more(struct ctl_conn *cc)
{
	struct evbuffer *ob = bufferevent_get_output(cc->bev);
	int64_t now = util_now_ms() / 1000;
	const struct envelope *e;
	struct envelope disk;
	char qid[QID_SIZE];
	struct dirent *de;
	int active;

	while (evbuffer_get_length(ob) + cc->out.len < CONTROL_OUT_HIGH) {
		errno = 0;
		de = readdir(cc->list);
		if (de == NULL)
			break;
		if (strlen(de->d_name) != QID_LEN + 4 ||
		    strcmp(de->d_name + QID_LEN, ".env") != 0)
			continue;
		memcpy(qid, de->d_name, QID_LEN);
		qid[QID_LEN] = '\0';
		if (!spool_qid_valid(qid))
			continue;
		active = 0;
		e = sched_env(qid, &active);
		if (e == NULL) {
			/* not loaded yet (its notice is on the way), or
			 * removed meanwhile: then it is not listed */
			if (spool_load(qid, &disk) == -1)
				continue;
			e = &disk;
		}
		buf_reserve(&cc->out, 1024);
		{
			struct buf line;

			buf_init(&line);
			control_format_msg(&line, e, active, cc->json, now);
			control_put_line(&cc->out, line.data, line.len);
			buf_free(&line);
		}
		if (e == &disk)
			envelope_free(&disk);
		if (cc->out.len >= CONTROL_OUT_LOW)
			conn_send(cc);
	}
	if (de == NULL) {
		closedir(cc->list);
		cc->list = NULL;
		control_put_end(&cc->out);
		conn_finish(cc);
		return;
	}
	conn_send(cc);
}

/* do_list - start streaming the queue */
static void
do_list(struct ctl_conn *cc, int json)
{
	char *dir = xasprintf("%s/queue", spool_dir());

	cc->list = opendir(dir);
	free(dir);
	if (cc->list == NULL) {
		answer_error(cc, CTL_E_FAILED, "The queue directory cannot be "
		    "read.");
		return;
	}
	cc->json = json;
	buf_puts(&cc->out, "ok\n");
	/* the write callback continues below the low-water mark */
	bufferevent_setwatermark(cc->bev, EV_WRITE, CONTROL_OUT_LOW, 0);
	list_more(cc);
}

/* put_header_section - the header of the content file, line by line,
 * tabs as spaces and control characters as '?', at most
 * CONTROL_SHOW_HEADER_MAX octets */
static void
put_header_section(struct ctl_conn *cc, const char *qid)
{
	char path[PATH_MAX], *p, *nl, *end, *clean;
	struct buf b;
	ssize_t n;
	size_t len;
	int fd;

	spool_content_path(qid, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return;
	buf_init(&b);
	buf_reserve(&b, CONTROL_SHOW_HEADER_MAX);
	while (b.len < CONTROL_SHOW_HEADER_MAX) {
		n = read(fd, b.data + b.len, CONTROL_SHOW_HEADER_MAX - b.len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	b.data[b.len] = '\0';
	clean = xmalloc(b.len + 1);
	for (p = b.data, end = b.data + b.len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break; /* the end of the header section */
		for (n = 0; (size_t)n < len; n++)
			if (p[n] == '\t')
				p[n] = ' ';
		len = util_sanitise(clean, len, p, len);
		control_put_line(&cc->out, clean, len);
	}
	free(clean);
	buf_free(&b);
}

/* do_show - the envelope as its file says it, an empty line, the header */
static void
do_show(struct ctl_conn *cc, const char *qid)
{
	const struct envelope *e;
	struct envelope disk;
	struct buf text;
	char *line, *nl, err[160];
	int active, loaded = 0;

	e = sched_env(qid, &active);
	if (e == NULL) {
		if (spool_load(qid, &disk) == -1) {
			snprintf(err, sizeof(err), "There is no message %s in "
			    "the queue.", qid);
			answer_error(cc, CTL_E_NOTFOUND, err);
			return;
		}
		e = &disk;
		loaded = 1;
	}
	buf_init(&text);
	envelope_format(e, &text);
	if (loaded)
		envelope_free(&disk);
	buf_puts(&cc->out, "ok\n");
	for (line = text.data; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;
		control_put_line(&cc->out, line, (size_t)(nl - line));
	}
	buf_free(&text);
	control_put_line(&cc->out, "", 0);
	put_header_section(cc, qid);
	control_put_end(&cc->out);
	conn_finish(cc);
}

/* hold_answer - the hold or release is recorded (or not) */
static void
hold_answer(int ok, void *arg)
{
	struct ctl_conn *cc = arg;
	char text[80];

	cc->waiting = 0;
	if (cc->gone) {
		conn_free(cc);
		return;
	}
	if (!ok) {
		answer_error(cc, CTL_E_FAILED, "The change could not be "
		    "written to the queue; see the log.");
		return;
	}
	snprintf(text, sizeof(text), "Message %s %s.", cc->qid,
	    cc->verb == CTL_HOLD ? "held" : "released");
	answer_text(cc, text);
}

/* do_status - uptime, sessions, the queue by state, counters */
static void
do_status(struct ctl_conn *cc, int json)
{
	struct stats_snapshot st;
	struct sched_counts q;
	int64_t now = util_now_ms() / 1000, up;
	char since[32];
	struct buf l;

	stats_read(&st);
	sched_counts(&q);
	up = st.started > 0 && now > st.started ? now - st.started : 0;
	control_iso_time(st.started, since, sizeof(since));
	buf_init(&l);
	buf_puts(&cc->out, "ok\n");
	if (json) {
		buf_printf(&l, "{\"started\":%" PRId64 ",\"uptime\":%" PRId64
		    ",\"sessions\":{\"open\":%" PRIu64 ",\"total\":%" PRIu64
		    "},\"queue\":{\"messages\":%zu,\"pending\":%zu,"
		    "\"active\":%zu,\"deferred\":%zu,\"held\":%zu,"
		    "\"done\":%zu,\"recipients\":%zu},\"counters\":{"
		    "\"received\":%" PRIu64 ",\"delivered\":%" PRIu64
		    ",\"deferred\":%" PRIu64 ",\"bounced\":%" PRIu64 "}}",
		    st.started, up, st.open_sessions,
		    st.counter[STATS_SESSIONS], q.messages, q.pending,
		    q.active, q.deferred, q.held, q.done, q.recipients,
		    st.counter[STATS_RECEIVED], st.counter[STATS_DELIVERED],
		    st.counter[STATS_DEFERRED], st.counter[STATS_BOUNCED]);
		control_put_line(&cc->out, l.data, l.len);
	} else {
		buf_printf(&l, "uptime: %" PRId64 "s (since %s)", up, since);
		control_put_line(&cc->out, l.data, l.len);
		buf_reset(&l);
		buf_printf(&l, "sessions: %" PRIu64 " open, %" PRIu64
		    " since start", st.open_sessions,
		    st.counter[STATS_SESSIONS]);
		control_put_line(&cc->out, l.data, l.len);
		buf_reset(&l);
		buf_printf(&l, "queue: %zu messages: %zu pending, %zu active, "
		    "%zu deferred, %zu held, %zu done; %zu recipients "
		    "waiting", q.messages, q.pending, q.active, q.deferred,
		    q.held, q.done, q.recipients);
		control_put_line(&cc->out, l.data, l.len);
		buf_reset(&l);
		buf_printf(&l, "since start: %" PRIu64 " received, %" PRIu64
		    " delivered, %" PRIu64 " deferred, %" PRIu64 " bounced",
		    st.counter[STATS_RECEIVED], st.counter[STATS_DELIVERED],
		    st.counter[STATS_DEFERRED], st.counter[STATS_BOUNCED]);
		control_put_line(&cc->out, l.data, l.len);
	}
	buf_free(&l);
	control_put_end(&cc->out);
	conn_finish(cc);
}

/* dispatch - carry out a parsed request */
static void
dispatch(struct ctl_conn *cc, const struct control_req *rq)
{
	char err[256], text[256];
	enum control_err e;
	size_t n = 0;

	switch (rq->verb) {
	case CTL_LIST:
		do_list(cc, rq->json);
		return;
	case CTL_SHOW:
		do_show(cc, rq->qid);
		return;
	case CTL_STATUS:
		do_status(cc, rq->json);
		return;
	case CTL_HOLD:
	case CTL_RELEASE:
		cc->verb = rq->verb;
		memcpy(cc->qid, rq->qid, QID_SIZE);
		cc->waiting = 1;
		e = sched_hold(rq->qid, rq->verb == CTL_HOLD, hold_answer, cc,
		    err, sizeof(err));
		if (e != CTL_OK) {
			cc->waiting = 0;
			answer_error(cc, e, err);
		}
		return;
	case CTL_FLUSH:
		e = sched_flush(rq->qid[0] ? rq->qid : NULL,
		    rq->domain[0] ? rq->domain : NULL, &n, err, sizeof(err));
		snprintf(text, sizeof(text), "%zu message(s) to be tried now.",
		    n);
		break;
	case CTL_DELETE:
		e = sched_delete(rq->qid, err, sizeof(err));
		snprintf(text, sizeof(text), "Message %s deleted.", rq->qid);
		break;
	case CTL_BOUNCE:
		e = sched_bounce(rq->qid, &n, err, sizeof(err));
		snprintf(text, sizeof(text), "Message %s: %zu recipient(s) "
		    "given up; the sender gets a failure report.", rq->qid, n);
		break;
	default:
		e = CTL_E_USAGE;
		snprintf(err, sizeof(err), "Unknown request.");
		break;
	}
	if (e != CTL_OK)
		answer_error(cc, e, err);
	else
		answer_text(cc, text);
}

/* conn_read - the request line, once it is complete */
static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr lf;
	struct control_req rq;
	char line[CONTROL_LINE_MAX + 1], err[256], safe[80];
	size_t len;

	if (cc->closing || cc->waiting || cc->list != NULL) {
		/* nothing more is read as a request */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	lf = evbuffer_search(in, "\n", 1, NULL);
	if (lf.pos < 0) {
		if (evbuffer_get_length(in) >= CONTROL_LINE_MAX)
			answer_error(cc, CTL_E_USAGE, "The request is too "
			    "long.");
		return;
	}
	len = (size_t)lf.pos + 1;
	if (len > CONTROL_LINE_MAX) {
		answer_error(cc, CTL_E_USAGE, "The request is too long.");
		return;
	}
	evbuffer_remove(in, line, len);
	line[len] = '\0';
	bufferevent_disable(bev, EV_READ);
	util_sanitise(safe, sizeof(safe) - 1, line, len - 1);
	if (control_parse(line, len, &rq, err, sizeof(err)) == -1) {
		log_info("control: uid %ld: refused \"%s\": %s",
		    (long)cc->uid, safe, err);
		answer_error(cc, CTL_E_USAGE, err);
		return;
	}
	log_info("control: uid %ld: %s", (long)cc->uid, safe);
	dispatch(cc, &rq);
}

/* conn_write - output drained below the low-water mark */
static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;

	if (cc->list != NULL) {
		list_more(cc);
		return;
	}
	if (cc->closing && !cc->lingering &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_linger(cc);
}

/* conn_event - EOF, an error or a timeout */
static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cc = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_info("control: uid %ld: timed out", (long)cc->uid);
	if (cc->waiting) {
		/* hold_answer frees it once the spool answers */
		bufferevent_free(cc->bev);
		cc->bev = NULL;
		cc->gone = 1;
		return;
	}
	conn_free(cc);
}

/* accept_cb - a new client: check it, read its request */
static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct timeval rt = { CONTROL_READ_TIMEOUT_S, 0 };
	struct timeval wt = { CONTROL_WRITE_TIMEOUT_S, 0 };
	struct ctl_conn *cc;
	uid_t uid;
	int fd;
	char msg[256];

	(void)what;
	(void)arg;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control: accept: %s", strerror(errno));
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	buf_init(&cc->out);
	cc->bev = bufferevent_socket_new(ctl.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cc->bev == NULL)
		fatal("cannot create a bufferevent");
	if (++ctl.nconns == CONTROL_CONNS_MAX)
		event_del(ctl.accept_ev);
	bufferevent_setcb(cc->bev, conn_read, conn_write, conn_event, cc);
	bufferevent_set_timeouts(cc->bev, &rt, &wt);
	if (!peer_allowed(fd, &uid)) {
		cc->uid = uid;
		log_warn("control: uid %ld refused: not root, the tern user "
		    "or in control-group", (long)uid);
		snprintf(msg, sizeof(msg), "You (uid %ld) may not use tern's "
		    "control socket: root, the user tern runs as and members "
		    "of control-group may.", (long)uid);
		bufferevent_enable(cc->bev, EV_WRITE);
		answer_error(cc, CTL_E_DENIED, msg);
		return;
	}
	cc->uid = uid;
	bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
}

void
control_start(const struct conf *c, struct event_base *base, int fd,
    gid_t group)
{
	ctl.conf = c;
	ctl.base = base;
	ctl.group = group;
	ctl.accept_ev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb,
	    NULL);
	if (ctl.accept_ev == NULL)
		fatal("cannot create the control socket's event");
	event_add(ctl.accept_ev, NULL);
}

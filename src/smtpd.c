/*
 * smtpd.c - the smtpd process: accepts connections on the sockets the
 * master bound and hands each to an SMTP session on one event loop.
 *
 * It runs unprivileged, as a user of its own (smtpd-user), and writes only
 * the spool's incoming/ (and takes files from free/): the commit of each
 * message into queue/ is done by the queue process on its request
 * (spool.c, "The commit"; queue_commit.c), which is also how the queue
 * process learns of it.  Certificates were read by the master and arrive
 * in memory without their keys: ca (ca.c) holds those and signs for the
 * handshakes; passwords are checked by authd (authd.c), which alone holds
 * the users' hashes.  On SIGUSR1 (the master's graceful handover
 * after SIGHUP) it closes its listeners and exits when its last session
 * ends, while a new smtpd already takes the new connections.
 *
 * Out of descriptors (EMFILE at the open-file limit, ENFILE), accept(2)
 * fails while the connection stays queued, and a level-triggered listener
 * fires again at once: left alone, the loop spins at full CPU and logs
 * every failure.  So the smtpd keeps one descriptor in reserve (/dev/null)
 * and gives it up to accept the waiting client, answer it 421 4.3.2 and
 * close it (libuv's trick), as it answers 421 beyond limits sessions=.
 * Where that fails (the reserve was taken meanwhile by the spool's commit
 * thread) or cannot help (the kernel is short of memory for sockets), it
 * stops accepting for SMTPD_ACCEPT_PAUSE_MS.  Failures are counted and
 * logged at most once every SMTPD_ACCEPT_LOG_MS.  The master raised the
 * open-file limit toward what limits sessions= needs (master.c,
 * open_files).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "auth.h"
#include "authd.h"
#include "ca.h"
#include "alias_table.h"
#include "client_limits.h"
#include "conf.h"
#include "dns.h"
#include "sandbox.h"
#include "smtpd.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

/* failed-login records kept per smtpd (client addresses) */
#define SMTPD_LIMITER_SLOTS 4096
/* how often a draining smtpd looks whether its sessions are gone */
#define SMTPD_DRAIN_CHECK_MS 200
/* accepting stops this long when accept(2) fails for want of resources
 * and no client could be refused with the reserve descriptor */
#define SMTPD_ACCEPT_PAUSE_MS 250
/* accept failures are summed up in one log line at most this often */
#define SMTPD_ACCEPT_LOG_MS 10000

struct smtpd_listener {
	const struct smtpd_env *env;
	const struct conf_listen *listen;
	struct event_base *base;
	struct evconnlistener *lev;
};

static struct {
	struct smtpd_env env;
	struct event_base *base;
	struct smtpd_listener *ls;
	size_t nls;
	struct event *drain_ev;
	/* accept(2) failures (see the top of the file) */
	int reserve_fd;          /* /dev/null, given up to refuse a client */
	char *busy_reply;        /* "421 4.3.2 ..." with CRLF */
	struct event *resume_ev; /* ends a pause in accepting */
	int accept_failing;      /* since the first failure after a success */
	int64_t accept_logged_at;
	unsigned long accept_fails;   /* since the last log line */
	unsigned long accept_refused; /* of them, clients answered 421 */
} smtpd = { .reserve_fd = -1 };

/* reserve_open - take the reserve descriptor if it is not held */
static void
reserve_open(void)
{
	if (smtpd.reserve_fd == -1)
		smtpd.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* accept_log_due - may a line about accept failures be logged now?  One
 * interval for all of them, so that a server at its limit, where each
 * ending session lets one client in, does not log each time either */
static int
accept_log_due(int64_t now)
{
	return smtpd.accept_logged_at == 0 ||
	    now - smtpd.accept_logged_at >= SMTPD_ACCEPT_LOG_MS;
}

/* accept_report - accept(2) failed with err (counted): log the counts if
 * a line is due */
static void
accept_report(int err)
{
	int64_t now = util_mono_ms();

	smtpd.accept_failing = 1;
	if (!accept_log_due(now))
		return;
	log_warn("accept: %s: %lu failure(s), %lu client(s) answered 421 "
	    "4.3.2 since the last report; %u session(s) open (reported at "
	    "most every %d s)", strerror(err), smtpd.accept_fails,
	    smtpd.accept_refused, smtp_session_count(),
	    SMTPD_ACCEPT_LOG_MS / 1000);
	smtpd.accept_logged_at = now;
	smtpd.accept_fails = smtpd.accept_refused = 0;
}

/* accept_recovered - a connection was accepted after failures; said in
 * the log if a line is due, else the counts wait for the next one */
static void
accept_recovered(void)
{
	int64_t now = util_mono_ms();

	smtpd.accept_failing = 0;
	reserve_open();
	if (!accept_log_due(now))
		return;
	log_info("accept: taking connections again; %lu failure(s), %lu "
	    "client(s) answered 421 4.3.2 since the last report",
	    smtpd.accept_fails, smtpd.accept_refused);
	smtpd.accept_logged_at = now;
	smtpd.accept_fails = smtpd.accept_refused = 0;
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtpd_listener *l = arg;

	(void)lev;
	if (smtpd.accept_failing)
		accept_recovered();
	/* accept4 made fd non-blocking and close-on-exec, and it has the
	 * listener's TCP_NODELAY (listen_all) */
	smtp_session_new(l->env, l->base, fd, sa, (socklen_t)salen,
	    l->listen);
}

/*
 * accept_lost_one - errors of the one connection being accepted (Linux
 * passes the network errors of a pending connection to accept(2)): that
 * connection is gone from the queue, so the next accept may succeed
 */
static int
accept_lost_one(int err)
{
	switch (err) {
	case ECONNABORTED: case EPROTO: case EPERM: case ENOPROTOOPT:
	case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP:
	case ENETDOWN: case ENETUNREACH: case ETIMEDOUT: case ECONNRESET:
		return 1;
	default:
		return 0;
	}
}

/*
 * refuse_one - give up the reserve descriptor to accept the client waiting
 * on l, answer it 421 4.3.2 and close it; 0 when the listener's queue was
 * served (a client refused, or none left), -1 when accepting still fails
 */
static int
refuse_one(struct smtpd_listener *l)
{
	int fd, err;

	if (smtpd.reserve_fd == -1)
		return -1;
	close(smtpd.reserve_fd);
	smtpd.reserve_fd = -1;
	fd = accept4(evconnlistener_get_fd(l->lev), NULL, NULL,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	err = errno;
	if (fd != -1) {
		/* a TLS-first client would read plaintext as a bad record:
		 * it only sees the connection close */
		if (l->listen->role != ROLE_SUBMISSIONS &&
		    send(fd, smtpd.busy_reply, strlen(smtpd.busy_reply),
		    MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
			log_debug("accept: cannot answer a refused client: %s",
			    strerror(errno));
		close(fd);
		smtpd.accept_refused++;
	}
	reserve_open();
	return fd != -1 || err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

/* accept_resume - the pause is over: listen again */
static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	size_t i;

	(void)fd;
	(void)what;
	(void)arg;
	reserve_open();
	for (i = 0; i < smtpd.nls; i++)
		if (smtpd.ls[i].lev != NULL)
			evconnlistener_enable(smtpd.ls[i].lev);
}

/* accept_pause - stop accepting on every listener for a moment: the
 * shortage is the process's or the system's, not one socket's */
static void
accept_pause(void)
{
	struct timeval tv = { 0, SMTPD_ACCEPT_PAUSE_MS * 1000 };
	size_t i;

	for (i = 0; i < smtpd.nls; i++)
		if (smtpd.ls[i].lev != NULL)
			evconnlistener_disable(smtpd.ls[i].lev);
	evtimer_add(smtpd.resume_ev, &tv);
}

/*
 * accept_error_cb - accept(2) failed with something other than EAGAIN,
 * EINTR or ECONNABORTED (libevent retries those itself)
 */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct smtpd_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	if (accept_lost_one(err)) {
		log_debug("accept: %s", strerror(err));
		return;
	}
	smtpd.accept_fails++;
	/* out of descriptors: the reserve makes room for one; ENOBUFS,
	 * ENOMEM and anything unknown: a pause */
	if ((err != EMFILE && err != ENFILE) || refuse_one(l) == -1)
		accept_pause();
	accept_report(err);
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(smtpd.base, NULL);
}

static void
drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, SMTPD_DRAIN_CHECK_MS * 1000 };

	(void)fd;
	(void)what;
	(void)arg;
	if (smtp_session_count() == 0) {
		log_info("handover done: the last session ended");
		event_base_loopexit(smtpd.base, NULL);
		return;
	}
	evtimer_add(smtpd.drain_ev, &tv);
}

/* drain_cb - SIGUSR1: take no new connections, finish the open ones */
static void
drain_cb(evutil_socket_t sig, short what, void *arg)
{
	size_t i;

	(void)sig;
	(void)what;
	(void)arg;
	if (smtpd.drain_ev != NULL)
		return;
	log_info("handing over to a new smtpd; %u session(s) finishing",
	    smtp_session_count());
	client_limits_handover();
	for (i = 0; i < smtpd.nls; i++)
		if (smtpd.ls[i].lev != NULL) {
			evconnlistener_free(smtpd.ls[i].lev);
			smtpd.ls[i].lev = NULL;
		}
	evtimer_del(smtpd.resume_ev);
	smtpd.drain_ev = evtimer_new(smtpd.base, drain_check_cb, NULL);
	drain_check_cb(-1, 0, NULL);
}

/* tls_setup - the server context from the master's certificates */
static void
tls_setup(const struct conf *c, const struct tls_material *tls)
{
	char err[512];

	if (tls == NULL || tls->npairs == 0)
		return;
	smtpd.env.tls = tls_server_ctx(tls, c->tls_ciphers, err, sizeof(err));
	if (smtpd.env.tls == NULL)
		fatal("tls: %s", err);
}

static void
listen_all(const struct conf *c, const int *fds, size_t nfds)
{
	size_t i;

	smtpd.ls = xcalloc(nfds ? nfds : 1, sizeof(*smtpd.ls));
	smtpd.nls = nfds;
	/* for clients beyond the open-file limit */
	reserve_open();
	if (smtpd.reserve_fd == -1)
		log_warn("cannot open /dev/null for a reserve descriptor: %s",
		    strerror(errno));
	smtpd.busy_reply = xasprintf("421 4.3.2 %s Error: too many "
	    "connections, try again later\r\n", c->hostname);
	smtpd.resume_ev = evtimer_new(smtpd.base, accept_resume, NULL);
	if (smtpd.resume_ev == NULL)
		fatal("event_new failed");
	for (i = 0; i < nfds; i++) {
		struct smtpd_listener *l = &smtpd.ls[i];
		int on = 1;

		if (fds[i] < 0)
			continue;
		/* replies are whole lines written at once: no Nagle delay.
		 * Accepted connections inherit the option. */
		if (setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			log_warn("TCP_NODELAY on %s:%d: %s", c->listens[i].addr,
			    c->listens[i].port, strerror(errno));
		l->env = &smtpd.env;
		l->listen = &c->listens[i];
		l->base = smtpd.base;
		/* backlog 0: the master already listened with SOMAXCONN;
		 * libevent would listen again with a backlog of 128 */
		l->lev = evconnlistener_new(smtpd.base, accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fds[i]);
		if (l->lev == NULL)
			fatal("cannot listen on %s:%d", c->listens[i].addr,
			    c->listens[i].port);
		evconnlistener_set_error_cb(l->lev, accept_error_cb);
	}
}

/*
 * sandbox_smtpd - from here on the smtpd can write only in spool/incoming/,
 * spool/free/ and state/smtpd/ (the greet-pass file) and read only the system's trees (sandbox.c); it
 * executes nothing.  Everything else it needs was read before: the
 * configuration, certificates and users by the master, the aliases
 * above; the resolver's and OpenSSL's configuration are in /etc; a SIGHUP
 * starts a new smtpd.
 */
static void
sandbox_smtpd(const struct conf *c)
{
	char *incoming = xasprintf("%s/spool/incoming", c->home);
	char *pool = xasprintf("%s/spool/free", c->home);
	char *state = xasprintf("%s/state/smtpd", c->home);
	const char *write[] = { incoming, pool, state };

	sandbox_child("smtpd", write, 3, 0);
	free(incoming);
	free(pool);
	free(state);
}

void
smtpd_main(const struct conf *c, const int *fds, size_t nfds,
    const struct tls_material *tls, int auth_fd, int ca_fd, int shared)
{
	struct event *sigs[3];
	size_t i;

	log_set_name("smtpd");
	alias_table_load(c);
	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit must fail a write, not kill the process */
	signal(SIGXFSZ, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatal("libevent: no pthreads support");
	smtpd.base = event_base_new();
	if (smtpd.base == NULL)
		fatal("event_base_new failed");
	if (spool_init_smtpd(c->home, shared) == -1)
		fatal("cannot open the spool under %s: %s", c->home,
		    strerror(errno));
	/* before any thread starts: Landlock binds the calling thread and
	 * those it starts afterwards only */
	sandbox_smtpd(c);
	spool_commit_start(smtpd.base);
	if (dns_init(smtpd.base, c->resolver) == -1)
		log_warn("dns: cannot start the resolver; client names will "
		    "be \"unknown\"");
	smtpd.env.conf = c;
	smtpd.env.auth = auth_fd != -1;
	if (auth_fd != -1)
		authd_client_start(smtpd.base, auth_fd);
	smtpd.env.limiter = auth_limiter_new(SMTPD_LIMITER_SLOTS);
	if (ca_fd != -1)
		ca_client_start(ca_fd);
	client_limits_init(c, smtpd.base);
	tls_setup(c, tls);
	listen_all(c, fds, nfds);
	sigs[0] = evsignal_new(smtpd.base, SIGTERM, stop_cb, NULL);
	sigs[1] = evsignal_new(smtpd.base, SIGINT, stop_cb, NULL);
	sigs[2] = evsignal_new(smtpd.base, SIGUSR1, drain_cb, NULL);
	for (i = 0; i < 3; i++)
		evsignal_add(sigs[i], NULL);
	log_info("ready: %zu listener(s), up to %u sessions%s%s", nfds,
	    c->max_sessions, smtpd.env.tls ? ", TLS" : "",
	    auth_fd != -1 ? ", AUTH" : "");
	event_base_dispatch(smtpd.base);
	client_limits_save();
	log_info("stopped with %u session(s) open", smtp_session_count());
	exit(0);
}

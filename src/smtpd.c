/*
 * smtpd.c - the smtpd process: accepts connections on the sockets the
 * master bound and hands each to an SMTP session on one event loop.
 *
 * It runs unprivileged and writes only the spool's incoming/ and queue/
 * directories; the queue process learns of each committed message by a
 * notice (sched_notify).  Certificates and the users file were read by the
 * master and arrive in memory.  On SIGUSR1 (the master's graceful handover
 * after SIGHUP) it closes its listeners and exits when its last session
 * ends, while a new smtpd already takes the new connections.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "auth.h"
#include "alias_table.h"
#include "conf.h"
#include "dns.h"
#include "sched.h"
#include "smtpd.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

/* failed-login records kept per smtpd (client addresses) */
#define SMTPD_LIMITER_SLOTS 4096
/* how often a draining smtpd looks whether its sessions are gone */
#define SMTPD_DRAIN_CHECK_MS 200

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
} smtpd;

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtpd_listener *l = arg;

	/* accept4 made fd non-blocking and close-on-exec, and it has the
	 * listener's TCP_NODELAY (listen_all) */
	(void)lev;
	smtp_session_new(l->env, l->base, fd, sa, (socklen_t)salen,
	    l->listen);
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	(void)arg;
	/* EMFILE and friends: log, keep listening; sessions will end */
	log_warn("accept: %s", evutil_socket_error_to_string(err));
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
	for (i = 0; i < smtpd.nls; i++)
		if (smtpd.ls[i].lev != NULL) {
			evconnlistener_free(smtpd.ls[i].lev);
			smtpd.ls[i].lev = NULL;
		}
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

void
smtpd_main(const struct conf *c, const int *fds, size_t nfds,
    const struct tls_material *tls, const struct auth_users *users)
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
	if (spool_init(c->home) == -1)
		fatal("cannot open the spool under %s: %s", c->home,
		    strerror(errno));
	spool_commit_start(smtpd.base);
	if (dns_init(smtpd.base, c->resolver) == -1)
		log_warn("dns: cannot start the resolver; client names will "
		    "be \"unknown\"");
	if (sched_notify_open(c->home, smtpd.base) == -1)
		log_warn("cannot prepare queue notices: %s", strerror(errno));
	smtpd.env.conf = c;
	smtpd.env.users = users;
	smtpd.env.limiter = auth_limiter_new(SMTPD_LIMITER_SLOTS);
	tls_setup(c, tls);
	listen_all(c, fds, nfds);
	sigs[0] = evsignal_new(smtpd.base, SIGTERM, stop_cb, NULL);
	sigs[1] = evsignal_new(smtpd.base, SIGINT, stop_cb, NULL);
	sigs[2] = evsignal_new(smtpd.base, SIGUSR1, drain_cb, NULL);
	for (i = 0; i < 3; i++)
		evsignal_add(sigs[i], NULL);
	log_info("ready: %zu listener(s), up to %u sessions%s%s", nfds,
	    c->max_sessions, smtpd.env.tls ? ", TLS" : "",
	    users ? ", AUTH" : "");
	event_base_dispatch(smtpd.base);
	log_info("stopped with %u session(s) open", smtp_session_count());
	exit(0);
}

/*
 * smtpd.c - the smtpd process: accepts connections on the sockets the
 * master bound and hands each to an SMTP session on one event loop.
 *
 * It runs unprivileged and writes only the spool's incoming/ and queue/
 * directories; the queue process learns of each committed message by a
 * notice (sched_notify).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "conf.h"
#include "dns.h"
#include "sched.h"
#include "smtpd.h"
#include "spool.h"
#include "util.h"

struct smtpd_listener {
	const struct conf *conf;
	const struct conf_listen *listen;
	struct event_base *base;
};

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtpd_listener *l = arg;

	(void)lev;
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	smtp_session_new(l->conf, l->base, fd, sa, (socklen_t)salen,
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
	struct event_base *base = arg;

	(void)what;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(base, NULL);
}

void
smtpd_main(const struct conf *c, const int *fds, size_t nfds)
{
	struct event_base *base;
	struct smtpd_listener *ls;
	struct event *sigterm, *sigint;
	size_t i;

	log_set_name("smtpd");
	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit must fail a write, not kill the process */
	signal(SIGXFSZ, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatal("libevent: no pthreads support");
	base = event_base_new();
	if (base == NULL)
		fatal("event_base_new failed");
	if (spool_init(c->home) == -1)
		fatal("cannot open the spool under %s: %s", c->home,
		    strerror(errno));
	spool_commit_start(base);
	if (dns_init(base, c->resolver) == -1)
		log_warn("dns: cannot start the resolver; client names will "
		    "be \"unknown\"");
	if (sched_notify_open(c->home, base) == -1)
		log_warn("cannot prepare queue notices: %s", strerror(errno));

	ls = xcalloc(nfds, sizeof(*ls));
	for (i = 0; i < nfds; i++) {
		if (fds[i] < 0)
			continue;
		ls[i].conf = c;
		ls[i].listen = &c->listens[i];
		ls[i].base = base;
		struct evconnlistener *lev = evconnlistener_new(base,
		    accept_cb, &ls[i], LEV_OPT_CLOSE_ON_FREE, -1, fds[i]);
		if (lev == NULL)
			fatal("cannot listen on %s:%d", c->listens[i].addr,
			    c->listens[i].port);
		evconnlistener_set_error_cb(lev, accept_error_cb);
	}
	sigterm = evsignal_new(base, SIGTERM, stop_cb, base);
	sigint = evsignal_new(base, SIGINT, stop_cb, base);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("ready: %zu listener(s), up to %u sessions", nfds,
	    c->max_sessions);
	event_base_dispatch(base);
	log_info("stopped with %u session(s) open", smtp_session_count());
	exit(0);
}

/*
 * authd.c - password checks outside the smtpd.
 *
 * The users' password hashes never reach the smtpd: the master hands them
 * to a small process, authd, forked beside each smtpd before it drops
 * root (its child, living and dying with it), which runs as the queue's
 * user -- not the smtpd's, so the smtpd cannot trace it -- under the same
 * filters (sandbox.c) with no tree to write, and answers one question:
 * is this the password of this user?  crypt(3) takes tens of ms by design
 * (yescrypt); done here, it never stalls the smtpd's event loop, which
 * asks over a SOCK_SEQPACKET socketpair and carries on.
 *
 * Protocol, one packet each way, strictly checked (auth_request_parse in
 * auth.c, pure, with a fuzz target): a request is a 4-byte id (host order: both ends are
 * one binary on one host), the user name, a NUL, the password, a NUL; the
 * answer is the id and one byte, 1 (the password is the user's) or 0.
 * The smtpd frees its copy of the users (cleansed) once authd holds them.
 * If authd is gone, AUTH is answered 454 4.7.0 (temporary) and logged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "authd.h"
#include "util.h"

/* checks waiting for an answer, at most (then 454 at once) */
#define AUTHD_PENDING_MAX 1024

/* authd_main - the authd process: answer checks on fd until it closes */
_Noreturn void
authd_main(struct auth_users *users, int fd)
{
	unsigned char req[AUTH_REQ_MAX + 1], rep[5];
	const char *user, *pass;
	uint32_t id;
	ssize_t n;

	log_set_name("authd");
	for (;;) {
		n = recv(fd, req, sizeof(req), MSG_TRUNC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (auth_request_parse(req, n <= AUTH_REQ_MAX ? (size_t)n :
		    0, &id, &user, &pass) == -1) {
			log_warn("a malformed request (%zd octets): closing",
			    n);
			break;
		}
		memcpy(rep, &id, 4);
		rep[4] = (unsigned char)auth_check(users, user, pass);
		OPENSSL_cleanse(req, sizeof(req));
		if (send(fd, rep, sizeof(rep), MSG_NOSIGNAL) != sizeof(rep))
			break;
	}
	auth_users_free(users);
	exit(0);
}

/* the smtpd's side */

struct authd_wait {
	uint32_t id;
	authd_cb cb;
	void *arg;
};

static struct {
	int fd;
	struct event *ev;
	struct authd_wait *wait; /* in the order asked (answers come so) */
	size_t n, cap;
	uint32_t next_id;
} cl = { .fd = -1 };

/* fail_all - authd is gone: every waiting check is a temporary failure */
static void
fail_all(void)
{
	struct authd_wait *w = cl.wait;
	size_t i, n = cl.n;

	log_err("authd is gone: AUTH answers 454 until the smtpd restarts");
	if (cl.ev != NULL)
		event_del(cl.ev);
	close(cl.fd);
	cl.fd = -1;
	cl.wait = NULL;
	cl.n = cl.cap = 0;
	for (i = 0; i < n; i++)
		w[i].cb(-1, w[i].arg);
	free(w);
}

static void
answer_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned char rep[8];
	struct authd_wait w;
	uint32_t id;
	ssize_t n;

	(void)what;
	(void)arg;
	for (;;) {
		n = recv(fd, rep, sizeof(rep), MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n != 5 || cl.n == 0) {
			fail_all();
			return;
		}
		memcpy(&id, rep, 4);
		if (id != cl.wait[0].id || rep[4] > 1) {
			fail_all();
			return;
		}
		w = cl.wait[0];
		memmove(cl.wait, cl.wait + 1, --cl.n * sizeof(*cl.wait));
		w.cb(rep[4], w.arg);
	}
}

/* authd_client_start - (smtpd) checks go to authd on fd */
void
authd_client_start(struct event_base *base, int fd)
{
	cl.fd = fd;
	cl.ev = event_new(base, fd, EV_READ | EV_PERSIST, answer_cb, NULL);
	if (cl.ev == NULL)
		fatal("authd: event_new failed");
	event_add(cl.ev, NULL);
}

/* authd_late_cb - a check that could not be asked: -1 */
static void
authd_late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct authd_wait *late = arg;

	(void)fd;
	(void)what;
	late->cb(-1, late->arg);
	free(late);
}

/*
 * authd_check - ask whether pass is user's; cb runs later on the loop
 * with 1 (yes), 0 (no) or -1 (authd unavailable: a temporary failure),
 * never before this returns.  A check cannot be cancelled: arg must live
 * until cb.
 */
void
authd_check(const char *user, const char *pass, authd_cb cb, void *arg)
{
	unsigned char req[AUTH_REQ_MAX];
	size_t ul = strlen(user), pl = strlen(pass), len;
	struct authd_wait *w;
	int ok;

	len = 4 + ul + 1 + pl + 1;
	ok = cl.fd != -1 && cl.n < AUTHD_PENDING_MAX && ul > 0 &&
	    ul <= AUTH_NAME_MAX && pl <= AUTH_PASS_MAX;
	if (ok) {
		uint32_t id = cl.next_id++;

		memcpy(req, &id, 4);
		memcpy(req + 4, user, ul + 1);
		memcpy(req + 4 + ul + 1, pass, pl + 1);
		ok = send(cl.fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL) ==
		    (ssize_t)len;
		OPENSSL_cleanse(req, len);
		if (ok) {
			if (cl.n == cl.cap) {
				cl.cap = cl.cap ? cl.cap * 2 : 16;
				cl.wait = xreallocarray(cl.wait, cl.cap,
				    sizeof(*cl.wait));
			}
			w = &cl.wait[cl.n++];
			w->id = id;
			w->cb = cb;
			w->arg = arg;
			return;
		}
	}
	/* no answer can come: a temporary failure, on the next loop turn
	 * like any answer (a zero timer) */
	{
		struct event_base *base = cl.ev ? event_get_base(cl.ev) : NULL;
		struct authd_wait *late = xcalloc(1, sizeof(*late));

		late->cb = cb;
		late->arg = arg;
		if (base == NULL || event_base_once(base, -1, EV_TIMEOUT,
		    authd_late_cb, late, NULL) == -1)
			panic("authd_check without authd_client_start");
	}
}

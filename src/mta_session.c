/*
 * mta_session.c - one outbound SMTP connection: the client side of RFC 5321
 * with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531), DSN (RFC 3461), STARTTLS (RFC 3207), AUTH PLAIN and
 * LOGIN (RFC 4954, 4616), ENHANCEDSTATUSCODES (RFC 2034, 3463); or one
 * LMTP connection (RFC 2033) to a local mail store.
 *
 * The one idea: the connection is an explicit state machine (enum
 * mta_state, changed only by enter_state(), which logs the transition and
 * arms the state's timeout), and every reply goes to the handler its state
 * names in one table.  Before the first transaction a failure of any kind
 * (connect, greeting, EHLO/HELO, TLS or AUTH policy) moves on to the next
 * target (next MX or address, RFC 5321 5.1); when none is left the job
 * fails temporarily and the destination is told it is down.  After that
 * the connection carries transactions, one job after another (connection
 * reuse), until it has been idle for MTA_IDLE_MS.
 *
 * What we send is canonical (RFC 5321 2.3.8, 4.5.2, 4.5.3.1.6): every line
 * ends in CRLF (a bare LF or bare CR becomes CRLF), a '.' opening a line
 * is doubled, the content ends with CRLF, then ".CRLF".  A text line over
 * 998 octets is not folded (that would change the message): its
 * recipients fail with 5.6.0.
 *
 * 8-bit content (BODY=8BITMIME) to a peer without 8BITMIME fails with
 * 5.6.3 and SMTPUTF8 content to a peer without SMTPUTF8 with 5.6.7: tern
 * does not convert (no 8-bit to quoted-printable downgrade, no address
 * downgrade, RFC 6152 3 and RFC 6531 3.2 allow the bounce).
 *
 * LMTP differs in two places, each a state of its own, chosen through
 * the session's protocol row (protos[]): LHLO instead of EHLO, with no
 * HELO to fall back on (RFC 2033 4.1); and after the final dot one reply
 * per accepted recipient, in RCPT order, each that recipient's outcome
 * (4.2).  A 421 or a lost connection among those replies defers the
 * recipients still without one.  The route's policy (tls=none, no auth=)
 * keeps STARTTLS and AUTH off an LMTP connection; MAIL takes the same
 * parameters as over SMTP, as the server offers them.
 *
 * Timeouts are RFC 5321 4.5.3.2's: the greeting and every command reply
 * wait timeout_remote_ms, each data block and the final reply
 * timeout_remote_data_ms.  Replies are read by the pure smtp_reply.c:
 * framed by CRLF only and bounded (SMTP_REPLY_LINE_MAX,
 * SMTP_REPLY_LINES_MAX, SMTP_REPLY_MAX); all remote text is sanitised
 * before it reaches a diagnostic or a log line.
 */
#include "mta_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "smtp_reply.h"
#include "util.h"

/* content read from the queue file per step */
#define MTA_CHUNK (64 * 1024)
/* more content is read once the output is down to this */
#define MTA_WRITE_LOW (16 * 1024)
/* a reply's diagnostic is copied whole into a recipient's */
_Static_assert(SMTP_REPLY_DIAG_MAX <= MTA_DIAG_MAX, "reply diag fits");

/* input is read ahead at most this far (the bounds of a reply are in
 * smtp_reply.h) */
#define MTA_READ_HIGH (SMTP_REPLY_MAX + SMTP_REPLY_LINE_MAX)
/* an idle connection is closed (QUIT) after this */
#define MTA_IDLE_MS 5000
/* the reply to QUIT is awaited at most this long */
#define MTA_QUIT_MS 2000
/* RFC 5321 4.5.3.1.6: 1000 octets with CRLF */
#define MTA_TEXT_LINE_MAX 998
/* the credentials file (auth=) is one short line */
#define MTA_AUTH_FILE_MAX 1024

enum mta_state {
	MTA_S_INIT,      /* created; connects on the next loop turn */
	MTA_S_CONNECT,   /* TCP connect to the current target */
	MTA_S_GREETING,  /* waiting for the 220 (we never talk first) */
	MTA_S_EHLO,      /* EHLO sent */
	MTA_S_HELO,      /* HELO sent after EHLO was refused */
	MTA_S_LHLO,      /* LMTP: LHLO sent */
	MTA_S_STARTTLS,  /* STARTTLS sent */
	MTA_S_HANDSHAKE, /* TLS handshake */
	MTA_S_AUTH,      /* AUTH exchange */
	MTA_S_READY,     /* between transactions: a job starts next, or idle */
	MTA_S_ENVELOPE,  /* MAIL, RCPT, DATA replies outstanding */
	MTA_S_BODY,      /* content on its way */
	MTA_S_DOT,       /* waiting for the reply to the final dot */
	MTA_S_DOT_EACH,  /* LMTP: a reply per accepted recipient */
	MTA_S_RSET,      /* RSET sent after a transaction without data */
	MTA_S_QUIT,      /* QUIT sent */
	MTA_S_CLOSED     /* connection gone; freed on the next loop turn */
};

enum mta_timeout {
	T_NOW,       /* the timer runs on the next loop turn */
	T_NONE,
	T_CONNECT,   /* timeout_connect_ms */
	T_COMMAND,   /* timeout_remote_ms */
	T_DATA,      /* timeout_remote_data_ms */
	T_IDLE,      /* MTA_IDLE_MS, or now when a job waits */
	T_QUIT       /* MTA_QUIT_MS */
};

/* where each recipient of the job is in the transactions */
enum mta_mark {
	RM_OPEN = 0, /* still to be sent */
	RM_SENT,     /* RCPT sent, reply awaited */
	RM_ACCEPTED, /* RCPT accepted: in this transaction's data */
	RM_LATER,    /* 452 too many recipients: the next transaction */
	RM_DONE      /* has its result */
};

enum mta_pend_kind { P_MAIL, P_RCPT, P_DATA };

struct mta_pend {
	enum mta_pend_kind kind;
	size_t rcpt;
};

/* the canonical form of the content, across chunks */
struct mta_canon {
	size_t linelen;  /* octets of the current line so far */
	int cr;          /* the last octet was a CR, its LF not seen yet */
	int bol;         /* at the beginning of a line */
};

enum mta_auth_step { AUTH_PLAIN_SENT, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

/* what differs between SMTP and LMTP: the greeting's command and the
 * states that await its reply and the replies to the final dot */
struct mta_proto {
	const char *hello;         /* "EHLO" or "LHLO" */
	enum mta_state hello_state;
	enum mta_state dot_state;
};

enum { PROTO_SMTP, PROTO_LMTP };

static const struct mta_proto protos[] = {
	[PROTO_SMTP] = { "EHLO", MTA_S_EHLO, MTA_S_DOT },
	/* RFC 2033 4.1 (LHLO, no HELO), 4.2 (a reply per recipient) */
	[PROTO_LMTP] = { "LHLO", MTA_S_LHLO, MTA_S_DOT_EACH },
};

struct mta_session {
	const struct conf *conf;
	struct event_base *base;
	struct mta_dest *dest;
	struct route route;
	const struct mta_proto *proto; /* SMTP, or LMTP for ROUTE_LMTP */
	SSL_CTX *ssl_ctx;
	X509_STORE *ca_store;    /* tls=verify: ca= instead of the system's */
	struct dns_target *targets;
	size_t ntargets;
	size_t ti;               /* the current target */
	enum mta_state state;
	struct bufferevent *bev;
	struct event *timer;
	char remote[MTA_REMOTE_MAX]; /* "host[ip]:port", sanitised */
	int no_tls;              /* do not STARTTLS (opportunistic failed) */
	int tls_active;
	char tls_desc[128];      /* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	int tls_verified;        /* tls=verify checked chain and name */
	int authed;
	enum mta_auth_step auth_step;
	char *auth_user;
	char *auth_pass;
	int ready_once;          /* reached MTA_S_READY at least once */
	int broken;              /* no further transaction on it */
	struct smtp_ext ext;
	struct smtp_reply reply;  /* being read */
	struct mta_session_end end;
	/* the job */
	struct mta_job *job;
	unsigned njobs;          /* jobs carried, this one included */
	unsigned job_replies;    /* replies received for this job */
	int fd;                  /* its content file, or -1 */
	unsigned char *marks;    /* enum mta_mark per recipient */
	struct mta_pend *pend;   /* replies awaited, in order */
	size_t pend_head, pend_n;
	int mail_ok;
	size_t accepted;         /* recipients accepted this transaction */
	int later;               /* a recipient was put off with 452 */
	int data_sent;           /* DATA sent this transaction */
	int dot_ok;              /* the data was taken for a recipient */
	/* the content */
	struct mta_canon canon;
	char *inbuf;
	struct buf outbuf;
};

typedef void (*mta_reply_fn)(struct mta_session *s);

static void on_greeting(struct mta_session *s);
static void on_ehlo(struct mta_session *s);
static void on_helo(struct mta_session *s);
static void on_lhlo(struct mta_session *s);
static void on_starttls(struct mta_session *s);
static void on_auth(struct mta_session *s);
static void on_envelope(struct mta_session *s);
static void on_body_reply(struct mta_session *s);
static void on_dot(struct mta_session *s);
static void on_dot_each(struct mta_session *s);
static void on_rset(struct mta_session *s);
static void on_quit(struct mta_session *s);

/* the state table: name, timeout, reply handler (NULL: a reply there is a
 * protocol error), and what we were doing, for error messages */
static const struct mta_state_info {
	const char *name;
	enum mta_timeout timeout;
	mta_reply_fn on_reply;
	const char *doing;
} states[] = {
	[MTA_S_INIT] = { "INIT", T_NOW, NULL, "before connecting" },
	[MTA_S_CONNECT] = { "CONNECT", T_CONNECT, NULL, "while connecting" },
	[MTA_S_GREETING] = { "GREETING", T_COMMAND, on_greeting,
	    "while waiting for the greeting" },
	[MTA_S_EHLO] = { "EHLO", T_COMMAND, on_ehlo, "after EHLO" },
	[MTA_S_HELO] = { "HELO", T_COMMAND, on_helo, "after HELO" },
	[MTA_S_LHLO] = { "LHLO", T_COMMAND, on_lhlo, "after LHLO" },
	[MTA_S_STARTTLS] = { "STARTTLS", T_COMMAND, on_starttls,
	    "after STARTTLS" },
	[MTA_S_HANDSHAKE] = { "HANDSHAKE", T_COMMAND, NULL,
	    "during the TLS handshake" },
	[MTA_S_AUTH] = { "AUTH", T_COMMAND, on_auth, "after AUTH" },
	[MTA_S_READY] = { "READY", T_IDLE, NULL, "while idle" },
	[MTA_S_ENVELOPE] = { "ENVELOPE", T_COMMAND, on_envelope,
	    "after MAIL/RCPT/DATA" },
	[MTA_S_BODY] = { "BODY", T_DATA, on_body_reply,
	    "while sending the message" },
	[MTA_S_DOT] = { "DOT", T_DATA, on_dot, "after the end of data" },
	[MTA_S_DOT_EACH] = { "DOT_EACH", T_DATA, on_dot_each,
	    "among the replies to the end of data" },
	[MTA_S_RSET] = { "RSET", T_COMMAND, on_rset, "after RSET" },
	[MTA_S_QUIT] = { "QUIT", T_QUIT, on_quit, "after QUIT" },
	[MTA_S_CLOSED] = { "CLOSED", T_NOW, NULL, "after closing" },
};

static void session_fail(struct mta_session *s, const char *status,
    const char *fmt, ...) TERN_PRINTF(3, 4);
static void target_failed(struct mta_session *s, const char *status,
    const char *fmt, ...) TERN_PRINTF(3, 4);
static void connect_target(struct mta_session *s);
static void txn_start(struct mta_session *s);
static void next_job(struct mta_session *s);
static void send_quit(struct mta_session *s);

/* ---- small helpers ----------------------------------------------------- */

/* job_set_tls - the connection's TLS, as the delivery log reports it */
static void
job_set_tls(const struct mta_session *s, struct mta_job *job)
{
	snprintf(job->tls, sizeof(job->tls), "%s", s->tls_desc);
	job->tls_verified = s->tls_verified != 0;
}

/* slog - a log line naming the job's queue id when there is one */
static void slog(struct mta_session *s, enum log_level lvl, const char *fmt,
    ...) TERN_PRINTF(3, 4);

static void
slog(struct mta_session *s, enum log_level lvl, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (s->job != NULL)
		log_msg(lvl, "%s: mta: %s", s->job->qid, b.data);
	else
		log_msg(lvl, "mta: %s", b.data);
	buf_free(&b);
}

static int64_t
timeout_ms(const struct mta_session *s, enum mta_timeout t)
{
	const struct conf *c = s->conf;

	switch (t) {
	case T_CONNECT:
		return c->timeout_connect_ms > 0 ? c->timeout_connect_ms :
		    30000;
	case T_COMMAND:
		return c->timeout_remote_ms > 0 ? c->timeout_remote_ms :
		    300000;
	case T_DATA:
		return c->timeout_remote_data_ms > 0 ?
		    c->timeout_remote_data_ms : 600000;
	case T_IDLE:
		return s->job != NULL ? 0 : MTA_IDLE_MS;
	case T_QUIT:
		return MTA_QUIT_MS;
	case T_NOW:
	case T_NONE:
		break;
	}
	return 0;
}

static void
arm_timer(struct mta_session *s, enum mta_timeout t)
{
	int64_t ms = timeout_ms(s, t);
	struct timeval tv = { .tv_sec = ms / 1000,
		.tv_usec = (ms % 1000) * 1000 };

	if (t == T_NONE) {
		evtimer_del(s->timer);
		return;
	}
	evtimer_add(s->timer, &tv);
}

/* enter_state - the one place the state changes; logs and arms the timer */
static void
enter_state(struct mta_session *s, enum mta_state next)
{
	if (s->state != next)
		slog(s, LOG_LVL_DEBUG, "%s: %s -> %s", s->remote,
		    states[s->state].name, states[next].name);
	s->state = next;
	arm_timer(s, states[next].timeout);
}

static void
send_line(struct mta_session *s, const char *fmt, ...) TERN_PRINTF(2, 3);

static void
send_line(struct mta_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* force_class - the status with its class digit replaced */
static void
force_class(char *status, size_t len, const char *in, char cls)
{
	snprintf(status, len, "%s", in[0] ? in : "4.0.0");
	status[0] = cls;
}

/* result_of - the recipient result a reply means: 2, 4 or 5 (a reply of
 * another class is a protocol error, so temporary) */
static int
result_of(const struct smtp_reply *r)
{
	int c = smtp_reply_class(r);

	return c == 2 || c == 5 ? c : 4;
}

/* rcpt_set - one recipient's outcome from a reply */
static void
rcpt_set(struct mta_session *s, size_t i, const struct smtp_reply *r)
{
	struct mta_rcpt *rc = &s->job->rcpts[i];

	rc->result = result_of(r);
	snprintf(rc->status, sizeof(rc->status), "%s", r->status);
	if (rc->result != smtp_reply_class(r))
		rc->status[0] = (char)('0' + rc->result);
	snprintf(rc->diag, sizeof(rc->diag), "%s", r->diag);
	s->marks[i] = RM_DONE;
}

/* rcpt_fail - one recipient's outcome in our own words */
static void
rcpt_fail(struct mta_session *s, size_t i, int result, const char *status,
    const char *diag)
{
	struct mta_rcpt *rc = &s->job->rcpts[i];

	rc->result = result;
	snprintf(rc->status, sizeof(rc->status), "%s", status);
	util_sanitise(rc->diag, sizeof(rc->diag) - 1, diag, strlen(diag));
	s->marks[i] = RM_DONE;
}

/* param_ok - 1 when an xtext value (ENVID, ORCPT) is safe on a command
 * line: printable ASCII without spaces (it came from our own parser, this
 * is a second line of defence) */
static int
param_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f)
			return 0;
	return 1;
}

/* addr_ok - 1 when an address is safe inside <> on a command line */
static int
addr_ok(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f || *a == '<' ||
		    *a == '>' || *a == ' ')
			return 0;
	return 1;
}

/* ---- replies ----------------------------------------------------------- */

/* ---- the connection ---------------------------------------------------- */

/*
 * tls_goodbye - the close_notify alert (RFC 8446 6.1, RFC 5246 7.2.1)
 * before the connection is freed, so that the server can tell our close
 * from a cut one.  The TLS filter puts the alert in the socket's output
 * buffer, which freeing would drop: it is sent at once.  Best effort:
 * what is still unsent there, or a socket that does not take it now,
 * closes without it;
 * the server's own close_notify is not awaited, as the RFCs allow.
 */
static void
tls_goodbye(struct mta_session *s)
{
	struct evbuffer_iovec v[4];
	struct iovec iov[4];
	struct bufferevent *under;
	struct msghdr msg;
	SSL *ssl;
	int fd, i, nv;

	if (!s->tls_active)
		return;
	ssl = bufferevent_openssl_get_ssl(s->bev);
	under = bufferevent_get_underlying(s->bev);
	if (ssl == NULL || under == NULL || !SSL_is_init_finished(ssl))
		return;
	ERR_clear_error();
	(void)SSL_shutdown(ssl); /* nothing after a fatal alert */
	ERR_clear_error();
	fd = bufferevent_getfd(under);
	/* the output's start is frozen for the socket bufferevent's own
	 * writes (evbuffer_write and _copyout refuse it): peeked and sent */
	nv = evbuffer_peek(bufferevent_get_output(under), -1, NULL, v, 4);
	if (fd == -1 || nv <= 0 || nv > 4)
		return;
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)nv;
	(void)sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void
drop_connection(struct mta_session *s)
{
	if (s->bev != NULL) {
		tls_goodbye(s);
		bufferevent_free(s->bev);
	}
	s->bev = NULL;
	s->tls_active = 0;
	s->tls_desc[0] = '\0';
	s->tls_verified = 0;
	s->authed = 0;
}

static void
job_release(struct mta_session *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
	free(s->marks);
	s->marks = NULL;
	free(s->pend);
	s->pend = NULL;
	s->pend_head = s->pend_n = 0;
	free(s->inbuf);
	s->inbuf = NULL;
	s->job = NULL;
}

/* job_complete - report the job; the session goes on without it */
static void
job_complete(struct mta_session *s)
{
	struct mta_job *job = s->job;

	job_release(s);
	mta_job_done(job);
}

/* session_close - the connection is over; the session is freed next turn */
static void
session_close(struct mta_session *s)
{
	drop_connection(s);
	if (s->job != NULL && s->job_replies == 0 && s->njobs > 1) {
		/* a reused connection went away before this job was tried:
		 * it goes back to the queue, to a fresh connection */
		s->end.unstarted = s->job;
		job_release(s);
	} else if (s->job != NULL) {
		mta_job_set_open(s->job, 4, "4.4.2", "connection closed");
	}
	/* the job, if any, is reported by session_end() */
	enter_state(s, MTA_S_CLOSED);
}

static void
session_free(struct mta_session *s)
{
	drop_connection(s);
	job_release(s);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->auth_pass != NULL)
		explicit_bzero(s->auth_pass, strlen(s->auth_pass));
	free(s->auth_user);
	free(s->auth_pass);
	smtp_reply_free(&s->reply);
	buf_free(&s->outbuf);
	free(s->targets);
	free(s);
}

/* session_end - tell the destination, free, and report the job last (so
 * that the destination already knows whether it is down when done() runs
 * and perhaps submits more) */
static void
session_end(struct mta_session *s)
{
	struct mta_job *job = s->job;

	if (job != NULL)
		job_release(s);
	s->end.ready = s->ready_once;
	mta_dest_session_end(s->dest, s, &s->end);
	session_free(s);
	if (job != NULL)
		mta_job_done(job);
}

/* session_fail - after the first transaction began: the job's recipients
 * without an outcome get this temporary failure, the connection closes */
static void
session_fail(struct mta_session *s, const char *status, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	slog(s, LOG_LVL_INFO, "%s", b.data);
	if (s->job != NULL && (s->job_replies > 0 || s->njobs == 1))
		mta_job_set_open(s->job, 4, status, b.data);
	buf_free(&b);
	session_close(s);
}

/* target_failed - before the first transaction: try the next target, or
 * fail the job temporarily when none is left (the destination is down) */
static void
target_failed(struct mta_session *s, const char *status, const char *fmt,
    ...)
{
	char st[16];
	va_list ap;
	struct buf b;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* a 5xx greeting or a refused EHLO from one host says nothing final
	 * about the destination: the job is retried (Postfix does the same
	 * with smtp_skip_5xx_greeting) */
	force_class(st, sizeof(st), status, '4');
	drop_connection(s);
	s->ti++;
	if (s->ti < s->ntargets) {
		slog(s, LOG_LVL_INFO, "%s; trying the next address", b.data);
		buf_free(&b);
		connect_target(s);
		return;
	}
	slog(s, LOG_LVL_WARN, "%s", b.data);
	s->end.all_failed = 1;
	snprintf(s->end.status, sizeof(s->end.status), "%s", st);
	util_sanitise(s->end.error, sizeof(s->end.error) - 1, b.data, b.len);
	buf_free(&b);
	if (s->job != NULL)
		mta_job_set_open(s->job, 4, st, s->end.error);
	enter_state(s, MTA_S_CLOSED);
}

/* fail_in_state - whichever of the two fits the state; an idle or
 * quitting connection just closes */
static void fail_in_state(struct mta_session *s, const char *status,
    const char *fmt, ...) TERN_PRINTF(3, 4);

static void
fail_in_state(struct mta_session *s, const char *status, const char *fmt,
    ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (s->state < MTA_S_READY && !s->ready_once) {
		target_failed(s, status, "%s", b.data);
	} else if (s->state == MTA_S_READY || s->state == MTA_S_QUIT) {
		slog(s, LOG_LVL_DEBUG, "%s", b.data);
		session_close(s);
	} else {
		session_fail(s, status, "%s", b.data);
	}
	buf_free(&b);
}

/* ---- libevent callbacks ------------------------------------------------ */

static void
handle_reply(struct mta_session *s)
{
	mta_reply_fn fn = states[s->state].on_reply;

	smtp_reply_finish(&s->reply);
	slog(s, LOG_LVL_DEBUG, "%s: <<< %s", s->remote, s->reply.diag);
	if (fn == NULL) {
		fail_in_state(s, "4.5.0", "unexpected reply from %s %s: %s",
		    s->remote, states[s->state].doing, s->reply.diag);
		return;
	}
	if (s->job != NULL && s->state >= MTA_S_ENVELOPE)
		s->job_replies++;
	fn(s);
}

/* malformed - a reply we cannot read: the connection is useless */
static void
malformed(struct mta_session *s, const char *line, size_t len)
{
	char text[81];

	util_sanitise(text, sizeof(text) - 1, line, len);
	fail_in_state(s, "4.5.0", "malformed reply from %s %s: \"%s\"",
	    s->remote, states[s->state].doing, text);
}

/* read_cb - every complete reply in the input to its state's handler; the
 * input is looked at a line (SMTP_REPLY_LINE_MAX + 2 octets) at a time */
static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct mta_session *s = arg;
	struct evbuffer *in;
	const char *line;
	size_t avail, len = 0, used = 0;
	int rc;

	while (s->bev == bev && s->state != MTA_S_HANDSHAKE &&
	    s->state != MTA_S_CLOSED) {
		in = bufferevent_get_input(bev);
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		if (avail > SMTP_REPLY_LINE_MAX + 2)
			avail = SMTP_REPLY_LINE_MAX + 2;
		line = (const char *)evbuffer_pullup(in, (ev_ssize_t)avail);
		rc = smtp_reply_getline(line, avail, &len, &used);
		if (rc == 0)
			return;
		if (rc < 0) {
			malformed(s, line, 0);
			return;
		}
		rc = smtp_reply_add_line(&s->reply, line, len);
		if (rc < 0) {
			malformed(s, line, len);
			return;
		}
		evbuffer_drain(in, used);
		if (rc == 0)
			continue;
		handle_reply(s);
		smtp_reply_reset(&s->reply);
	}
}

static void body_fill(struct mta_session *s);

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct mta_session *s = arg;

	(void)bev;
	if (s->state == MTA_S_BODY)
		body_fill(s);
}

/* tls_error - the reason a handshake failed, in words */
static void
tls_error(struct mta_session *s, char *out, size_t outlen)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	unsigned long e = bufferevent_get_openssl_error(s->bev);
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	char err[256] = "";

	if (e != 0)
		ERR_error_string_n(e, err, sizeof(err));
	if (s->route.tls == TLS_VERIFY && v == X509_V_ERR_HOSTNAME_MISMATCH)
		snprintf(out, outlen, "certificate verify failed: %s (the "
		    "certificate does not name %.100s)",
		    X509_verify_cert_error_string(v), s->targets[s->ti].host);
	else if (s->route.tls == TLS_VERIFY && v != X509_V_OK)
		snprintf(out, outlen, "certificate verify failed: %s",
		    X509_verify_cert_error_string(v));
	else if (err[0])
		snprintf(out, outlen, "%s", err);
	else
		snprintf(out, outlen, "connection closed");
	while (bufferevent_get_openssl_error(s->bev) != 0)
		;
}

static void
handshake_failed(struct mta_session *s, const char *why)
{
	char err[300];

	if (why != NULL)
		snprintf(err, sizeof(err), "%s", why);
	else
		tls_error(s, err, sizeof(err));
	if (s->route.tls == TLS_MAY) {
		/* opportunistic: plaintext is better than nothing; this
		 * connection is spoilt, so connect again without TLS */
		slog(s, LOG_LVL_WARN, "TLS handshake with %s failed: %s; "
		    "trying again without TLS", s->remote, err);
		mta_dest_tls_failed(s->dest);
		s->no_tls = 1;
		drop_connection(s);
		connect_target(s);
		return;
	}
	target_failed(s, "4.7.5", "TLS is required, but the TLS handshake "
	    "with %s failed: %s", s->remote, err);
}

static void
tls_established(struct mta_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls_active = 1;
	snprintf(s->tls_desc, sizeof(s->tls_desc), "%s %s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	/* SSL_VERIFY_PEER ends a handshake that fails the check; asking
	 * again costs nothing and keeps "verified" honest */
	s->tls_verified = s->route.tls == TLS_VERIFY &&
	    SSL_get0_peer_certificate(ssl) != NULL &&
	    SSL_get_verify_result(ssl) == X509_V_OK;
	if (s->job != NULL)
		job_set_tls(s, s->job);
	slog(s, LOG_LVL_INFO, "%sTLS with %s: %s",
	    s->tls_verified ? "verified " : "", s->remote, s->tls_desc);
	/* RFC 3207 4.2: forget what we knew; EHLO again */
	memset(&s->ext, 0, sizeof(s->ext));
	send_line(s, "%s %s", s->proto->hello, s->conf->hostname);
	enter_state(s, s->proto->hello_state);
}

static void
connected(struct mta_session *s)
{
	int on = 1;

	/* each command group and the message's end go out whole; Nagle's
	 * wait for an ACK (delayed by the peer) would stall every
	 * transaction by tens of milliseconds */
	if (!s->route.unix_socket)
		setsockopt(bufferevent_getfd(s->bev), IPPROTO_TCP,
		    TCP_NODELAY, &on, sizeof(on));
	if (s->job != NULL) {
		snprintf(s->job->remote, sizeof(s->job->remote), "%s",
		    s->remote);
		job_set_tls(s, s->job);
	}
	enter_state(s, MTA_S_GREETING);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mta_session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == MTA_S_HANDSHAKE)
			tls_established(s);
		else if (s->state == MTA_S_CONNECT)
			connected(s);
		return;
	}
	if (s->state == MTA_S_CONNECT) {
		target_failed(s, "4.4.1", "connect to %s: %s", s->remote,
		    evutil_socket_error_to_string(err));
		return;
	}
	if (s->state == MTA_S_HANDSHAKE) {
		handshake_failed(s, NULL);
		return;
	}
	fail_in_state(s, "4.4.2", "lost connection with %s %s", s->remote,
	    states[s->state].doing);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mta_session *s = arg;

	(void)fd;
	(void)what;
	switch (s->state) {
	case MTA_S_INIT:
		connect_target(s);
		return;
	case MTA_S_CLOSED:
		session_end(s);
		return;
	case MTA_S_READY:
		if (s->job != NULL)
			txn_start(s);
		else
			send_quit(s);
		return;
	case MTA_S_QUIT:
		session_close(s);
		return;
	case MTA_S_HANDSHAKE:
		handshake_failed(s, "timed out");
		return;
	default:
		break;
	}
	if (s->state == MTA_S_CONNECT)
		target_failed(s, "4.4.1", "connect to %s: timed out",
		    s->remote);
	else
		fail_in_state(s, "4.4.2", "conversation with %s timed out %s",
		    s->remote, states[s->state].doing);
}

/* ---- connecting -------------------------------------------------------- */

static void
format_remote(struct mta_session *s)
{
	const struct dns_target *t = &s->targets[s->ti];
	char ip[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
	char raw[MTA_REMOTE_MAX + 64];

	if (t->ss.ss_family == AF_UNIX) {
		/* an LMTP socket: its path, as the mailbox key names it */
		snprintf(raw, sizeof(raw), "lmtp:unix:%s", t->host);
		util_sanitise(s->remote, sizeof(s->remote) - 1, raw,
		    strlen(raw));
		return;
	}
	getnameinfo((const struct sockaddr *)&t->ss, t->sslen, ip, sizeof(ip),
	    port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(raw, sizeof(raw), "%s[%s]:%s", t->host, ip, port);
	util_sanitise(s->remote, sizeof(s->remote) - 1, raw, strlen(raw));
}

static void
connect_target(struct mta_session *s)
{
	const struct dns_target *t = &s->targets[s->ti];
	int err;

	format_remote(s);
	s->ext = (struct smtp_ext){ 0 };
	smtp_reply_reset(&s->reply);
	s->bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		fatal("mta: cannot create a bufferevent");
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, MTA_READ_HIGH);
	bufferevent_setwatermark(s->bev, EV_WRITE, MTA_WRITE_LOW, 0);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	enter_state(s, MTA_S_CONNECT);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&t->ss,
	    (int)t->sslen) == 0)
		return;
	err = EVUTIL_SOCKET_ERROR();
	target_failed(s, "4.4.1", "connect to %s: %s", s->remote,
	    evutil_socket_error_to_string(err));
}

/* ---- greeting, EHLO, STARTTLS, AUTH ------------------------------------ */

static void
on_greeting(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) != 2) {
		target_failed(s, s->reply.status, "%s greeted with: %s",
		    s->remote, s->reply.diag);
		return;
	}
	send_line(s, "%s %s", s->proto->hello, s->conf->hostname);
	enter_state(s, s->proto->hello_state);
}

static int
tls_wanted(const struct mta_session *s)
{
	if (s->route.tls == TLS_NONE)
		return 0;
	return !(s->route.tls == TLS_MAY && s->no_tls);
}

static int
tls_required(const struct mta_session *s)
{
	return s->route.tls == TLS_ENCRYPT || s->route.tls == TLS_VERIFY;
}

static void auth_begin(struct mta_session *s);

static void
session_ready(struct mta_session *s)
{
	s->ready_once = 1;
	if (s->job != NULL) {
		job_set_tls(s, s->job);
		txn_start(s);
		return;
	}
	next_job(s);
}

/* after_hello - EHLO/HELO accepted: TLS, then AUTH, then mail */
static void
after_hello(struct mta_session *s)
{
	if (!s->tls_active && tls_wanted(s) && s->ext.starttls) {
		send_line(s, "STARTTLS");
		enter_state(s, MTA_S_STARTTLS);
		return;
	}
	if (!s->tls_active && tls_required(s)) {
		target_failed(s, "4.7.5", "TLS is required, but %s does not "
		    "offer STARTTLS", s->remote);
		return;
	}
	if (s->route.auth_file != NULL && !s->authed) {
		auth_begin(s);
		return;
	}
	session_ready(s);
}

static void
on_ehlo(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) == 2) {
		smtp_reply_ehlo(&s->reply, &s->ext);
		after_hello(s);
		return;
	}
	if (smtp_reply_class(&s->reply) == 5) {
		/* RFC 5321 3.2: an old server; HELO has no extensions */
		send_line(s, "HELO %s", s->conf->hostname);
		enter_state(s, MTA_S_HELO);
		return;
	}
	target_failed(s, s->reply.status, "%s refused EHLO: %s", s->remote,
	    s->reply.diag);
}

/* on_lhlo - LMTP: the LHLO reply lists the extensions as EHLO's does; a
 * server that refuses it is no LMTP server (RFC 2033 4.1: no HELO) */
static void
on_lhlo(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) != 2) {
		target_failed(s, s->reply.status, "%s refused LHLO: %s",
		    s->remote, s->reply.diag);
		return;
	}
	smtp_reply_ehlo(&s->reply, &s->ext);
	after_hello(s);
}

static void
on_helo(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) != 2) {
		target_failed(s, s->reply.status, "%s refused HELO: %s",
		    s->remote, s->reply.diag);
		return;
	}
	memset(&s->ext, 0, sizeof(s->ext));
	after_hello(s);
}

/* is_ip - 1 for an IPv4 or IPv6 address (no SNI for those, RFC 6066 3) */
static int
is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

static void
tls_start(struct mta_session *s)
{
	const char *host = s->targets[s->ti].host;
	struct bufferevent *tb;
	SSL *ssl = SSL_new(s->ssl_ctx);

	if (ssl == NULL)
		fatal("mta: SSL_new failed");
	if (s->route.tls == TLS_VERIFY) {
		/* the chain against the system's CAs (or the route's ca=
		 * file's), the name against the MX or relay host name (RFC
		 * 6125 via SSL_set1_host) */
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (s->ca_store != NULL &&
		    SSL_set1_verify_cert_store(ssl, s->ca_store) != 1)
			fatal("mta: cannot set the CA certificates");
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(ssl), host) != 1 :
		    SSL_set1_host(ssl, host) != 1)
			log_warn("mta: cannot check the TLS name %s", host);
	}
	if (smtp_domain_valid(host, 0) && !is_ip(host))
		SSL_set_tlsext_host_name(ssl, host);
	tb = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		target_failed(s, "4.7.5", "cannot start TLS with %s",
		    s->remote);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	s->bev = tb;
	bufferevent_setcb(tb, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(tb, EV_READ, 0, MTA_READ_HIGH);
	bufferevent_setwatermark(tb, EV_WRITE, MTA_WRITE_LOW, 0);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	enter_state(s, MTA_S_HANDSHAKE);
}

static void
on_starttls(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) == 2) {
		/* RFC 3207 5 / CVE-2011-0411: nothing may follow the 220 in
		 * plaintext; such bytes would be taken as TLS-protected */
		if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
			handshake_failed(s, "plaintext after the STARTTLS "
			    "reply");
			return;
		}
		tls_start(s);
		return;
	}
	if (tls_required(s)) {
		target_failed(s, s->reply.status, "TLS is required, but %s "
		    "refused STARTTLS: %s", s->remote, s->reply.diag);
		return;
	}
	slog(s, LOG_LVL_INFO, "%s refused STARTTLS (%s); going on without TLS",
	    s->remote, s->reply.diag);
	s->ext.starttls = 0;
	after_hello(s);
}

/* read_credentials - "user:password" from the first line of path */
static int
read_credentials(struct mta_session *s, const char *path, char *err,
    size_t errlen)
{
	char data[MTA_AUTH_FILE_MAX + 1];
	ssize_t n;
	char *colon;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = read(fd, data, MTA_AUTH_FILE_MAX);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	data[n] = '\0';
	data[strcspn(data, "\r\n")] = '\0';
	colon = strchr(data, ':');
	if (colon == NULL || colon == data) {
		explicit_bzero(data, sizeof(data));
		snprintf(err, errlen, "%s: not \"user:password\"", path);
		return -1;
	}
	*colon = '\0';
	s->auth_user = xstrdup(data);
	s->auth_pass = xstrdup(colon + 1);
	explicit_bzero(data, sizeof(data));
	return 0;
}

/* send_b64 - a line of base64 (RFC 4954 4), prefix first */
static void
send_b64(struct mta_session *s, const char *prefix, const void *p, size_t n)
{
	size_t olen = 4 * ((n + 2) / 3) + 1;
	unsigned char *o = xmalloc(olen);

	EVP_EncodeBlock(o, p, (int)n);
	send_line(s, "%s%s", prefix, (char *)o);
	explicit_bzero(o, olen);
	free(o);
}

static void
auth_plain(struct mta_session *s)
{
	size_t ul = strlen(s->auth_user), pl = strlen(s->auth_pass);
	char *msg = xmalloc(ul + pl + 2);

	/* RFC 4616: authzid NUL authcid NUL passwd, authzid empty */
	msg[0] = '\0';
	memcpy(msg + 1, s->auth_user, ul);
	msg[ul + 1] = '\0';
	memcpy(msg + ul + 2, s->auth_pass, pl);
	send_b64(s, "AUTH PLAIN ", msg, ul + pl + 2);
	explicit_bzero(msg, ul + pl + 2);
	free(msg);
	s->auth_step = AUTH_PLAIN_SENT;
}

static void
auth_begin(struct mta_session *s)
{
	char err[400];

	if (!s->tls_active) {
		/* never send a password in the clear */
		target_failed(s, "4.7.0", "AUTH is configured, but the "
		    "connection to %s is not encrypted", s->remote);
		return;
	}
	if (s->auth_user == NULL &&
	    read_credentials(s, s->route.auth_file, err, sizeof(err)) == -1) {
		target_failed(s, "4.7.0", "credentials for %s: %s", s->remote,
		    err);
		return;
	}
	if (s->ext.auth_plain) {
		auth_plain(s);
	} else if (s->ext.auth_login) {
		send_line(s, "AUTH LOGIN");
		s->auth_step = AUTH_LOGIN_USER;
	} else {
		target_failed(s, "4.7.0", "%s offers no AUTH mechanism tern "
		    "supports (PLAIN, LOGIN)", s->remote);
		return;
	}
	enter_state(s, MTA_S_AUTH);
}

static void
on_auth(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) == 2) {
		s->authed = 1;
		slog(s, LOG_LVL_INFO, "authenticated to %s as %s", s->remote,
		    s->auth_user);
		session_ready(s);
		return;
	}
	if (s->reply.code == 334 && s->auth_step == AUTH_LOGIN_USER) {
		send_b64(s, "", s->auth_user, strlen(s->auth_user));
		s->auth_step = AUTH_LOGIN_PASS;
		arm_timer(s, T_COMMAND);
		return;
	}
	if (s->reply.code == 334 && s->auth_step == AUTH_LOGIN_PASS) {
		send_b64(s, "", s->auth_pass, strlen(s->auth_pass));
		s->auth_step = AUTH_PLAIN_SENT;
		arm_timer(s, T_COMMAND);
		return;
	}
	target_failed(s, s->reply.status, "authentication to %s failed: %s",
	    s->remote, s->reply.diag);
}

/* ---- the transaction --------------------------------------------------- */

static void
pend_push(struct mta_session *s, enum mta_pend_kind kind, size_t rcpt)
{
	/* room for MAIL, every RCPT and DATA was made in txn_start */
	s->pend[s->pend_head + s->pend_n].kind = kind;
	s->pend[s->pend_head + s->pend_n].rcpt = rcpt;
	s->pend_n++;
}

/* txn_precheck - what the peer cannot take, before anything is sent;
 * 0 to go on, -1 when the job is finished */
static int
txn_precheck(struct mta_session *s)
{
	const struct mta_job *job = s->job;
	char diag[MTA_DIAG_MAX];
	const char *st = NULL;

	if (s->ext.size && s->ext.size_max > 0 && job->size > s->ext.size_max) {
		st = "5.3.4";
		snprintf(diag, sizeof(diag), "message size %llu exceeds the "
		    "limit of %s (%llu)", (unsigned long long)job->size,
		    s->remote, (unsigned long long)s->ext.size_max);
	} else if (job->body_8bit && !s->ext.eightbit) {
		st = "5.6.3";
		snprintf(diag, sizeof(diag), "%s does not support 8BITMIME; "
		    "tern does not convert 8-bit content", s->remote);
	} else if (job->smtputf8 && !s->ext.smtputf8) {
		st = "5.6.7";
		snprintf(diag, sizeof(diag), "%s does not support SMTPUTF8; "
		    "the message needs it", s->remote);
	} else if (!addr_ok(job->sender)) {
		st = "5.1.7";
		snprintf(diag, sizeof(diag), "bad sender address");
	}
	if (st == NULL)
		return 0;
	slog(s, LOG_LVL_INFO, "%s: %s", st, diag);
	mta_job_set_open(s->job, 5, st, diag);
	job_complete(s);
	return -1;
}

static int
open_content(struct mta_session *s)
{
	char diag[MTA_DIAG_MAX];

	if (s->fd != -1)
		return 0;
	s->fd = open(s->job->content_path, O_RDONLY | O_CLOEXEC);
	if (s->fd != -1)
		return 0;
	snprintf(diag, sizeof(diag), "cannot open %s: %s",
	    s->job->content_path, strerror(errno));
	slog(s, LOG_LVL_ERR, "%s", diag);
	mta_job_set_open(s->job, 4, "4.3.0", diag);
	job_complete(s);
	return -1;
}

static void
send_mail(struct mta_session *s)
{
	struct mta_job *job = s->job;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	evbuffer_add_printf(out, "MAIL FROM:<%s>", job->sender);
	if (s->ext.size)
		evbuffer_add_printf(out, " SIZE=%llu",
		    (unsigned long long)job->size);
	if (job->body_8bit)
		evbuffer_add_printf(out, " BODY=8BITMIME");
	if (job->smtputf8)
		evbuffer_add_printf(out, " SMTPUTF8");
	if (s->ext.dsn && job->ret != DSN_RET_UNSET)
		evbuffer_add_printf(out, " RET=%s",
		    job->ret == DSN_RET_HDRS ? "HDRS" : "FULL");
	if (s->ext.dsn && job->envid != NULL && param_ok(job->envid))
		evbuffer_add_printf(out, " ENVID=%s", job->envid);
	evbuffer_add(out, "\r\n", 2);
	/* NOTIFY= goes on with the RCPTs: the peer reports from here on */
	job->peer_dsn = s->ext.dsn;
	pend_push(s, P_MAIL, 0);
}

/* notify_list - the NOTIFY= value of DSN_NOTIFY_* bits (RFC 3461 4.1) */
static void
notify_list(unsigned bits, char *out, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} words[] = { { DSN_NOTIFY_SUCCESS, "SUCCESS" },
		{ DSN_NOTIFY_FAILURE, "FAILURE" }, { DSN_NOTIFY_DELAY, "DELAY" } };
	size_t i, o = 0;

	out[0] = '\0';
	if (bits & DSN_NOTIFY_NEVER) {
		snprintf(out, len, "NEVER");
		return;
	}
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!(bits & words[i].bit) || o >= len)
			continue;
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "",
		    words[i].name);
	}
}

static void
send_rcpt(struct mta_session *s, size_t i)
{
	const struct mta_rcpt *r = &s->job->rcpts[i];
	struct evbuffer *out = bufferevent_get_output(s->bev);

	char notify[32];

	evbuffer_add_printf(out, "RCPT TO:<%s>", r->addr);
	if (s->ext.dsn && r->notify != 0) {
		notify_list(r->notify, notify, sizeof(notify));
		evbuffer_add_printf(out, " NOTIFY=%s", notify);
	}
	if (s->ext.dsn && r->orcpt != NULL && param_ok(r->orcpt))
		evbuffer_add_printf(out, " ORCPT=%s", r->orcpt);
	evbuffer_add(out, "\r\n", 2);
	s->marks[i] = RM_SENT;
	pend_push(s, P_RCPT, i);
}

/* next_open_rcpt - the first recipient still to be sent, or nrcpts;
 * unsafe addresses are failed on the way */
static size_t
next_open_rcpt(struct mta_session *s, size_t from)
{
	size_t i;

	for (i = from; i < s->job->nrcpts; i++) {
		if (s->marks[i] != RM_OPEN)
			continue;
		if (addr_ok(s->job->rcpts[i].addr))
			return i;
		rcpt_fail(s, i, 5, "5.1.3", "bad recipient address");
	}
	return i;
}

/* send_data_cmd - DATA, its reply awaited */
static void
send_data_cmd(struct mta_session *s)
{
	send_line(s, "DATA");
	pend_push(s, P_DATA, 0);
	s->data_sent = 1;
}

/* txn_start - a transaction for the job's open recipients: MAIL, and with
 * PIPELINING every RCPT and DATA in the same write (RFC 2920 3.1) */
static void
txn_start(struct mta_session *s)
{
	size_t i;

	if (s->marks == NULL) {
		s->marks = xcalloc(s->job->nrcpts, 1);
		for (i = 0; i < s->job->nrcpts; i++)
			if (s->job->rcpts[i].result != 0)
				s->marks[i] = RM_DONE;
		if (open_content(s) == -1 || txn_precheck(s) == -1) {
			next_job(s);
			return;
		}
	}
	free(s->pend);
	s->pend = xreallocarray(NULL, s->job->nrcpts + 2, sizeof(*s->pend));
	s->pend_head = s->pend_n = 0;
	s->mail_ok = 0;
	s->accepted = 0;
	s->later = 0;
	s->data_sent = 0;
	s->dot_ok = 0;
	if (next_open_rcpt(s, 0) == s->job->nrcpts) {
		job_complete(s);
		next_job(s);
		return;
	}
	send_mail(s);
	if (s->ext.pipelining) {
		for (i = next_open_rcpt(s, 0); i < s->job->nrcpts;
		    i = next_open_rcpt(s, i + 1))
			send_rcpt(s, i);
		send_data_cmd(s);
	}
	enter_state(s, MTA_S_ENVELOPE);
}

/* txn_end - the transaction is over: another for recipients put off with
 * 452, or the job is done and the connection takes the next */
static void
txn_end(struct mta_session *s)
{
	size_t i;
	int again = 0;

	for (i = 0; i < s->job->nrcpts; i++) {
		if (s->marks[i] != RM_LATER)
			continue;
		/* RFC 5321 4.5.3.1.10: the rest in a later transaction */
		s->marks[i] = RM_OPEN;
		again = 1;
	}
	if (again && !s->broken) {
		txn_start(s);
		return;
	}
	job_complete(s);
	next_job(s);
}

/* take_job - the connection's next job; it starts on the next loop turn
 * (READY's timeout with a job), so a run of jobs that fail at once does
 * not recurse */
static void
take_job(struct mta_session *s, struct mta_job *job)
{
	s->job = job;
	s->njobs++;
	s->job_replies = 0;
	snprintf(job->remote, sizeof(job->remote), "%s", s->remote);
	job_set_tls(s, job);
	enter_state(s, MTA_S_READY);
}

static void
next_job(struct mta_session *s)
{
	struct mta_job *job;

	if (s->broken) {
		send_quit(s);
		return;
	}
	job = mta_dest_next_job(s->dest, s);
	if (job == NULL) {
		enter_state(s, MTA_S_READY);
		return;
	}
	take_job(s, job);
}

static void
send_quit(struct mta_session *s)
{
	send_line(s, "QUIT");
	enter_state(s, MTA_S_QUIT);
}

/* envelope_over - every reply of MAIL/RCPT(/DATA) is in, no data sent */
static void
envelope_over(struct mta_session *s)
{
	if (!s->mail_ok) {
		txn_end(s);
		return;
	}
	/* no recipient accepted, or DATA refused: end the transaction */
	send_line(s, "RSET");
	enter_state(s, MTA_S_RSET);
}

/* send_more - without PIPELINING, the next command after a reply */
static void
send_more(struct mta_session *s)
{
	size_t i = next_open_rcpt(s, 0);

	if (s->mail_ok && !s->later && i < s->job->nrcpts) {
		send_rcpt(s, i);
		arm_timer(s, T_COMMAND);
		return;
	}
	if (s->mail_ok && s->accepted > 0 && !s->data_sent) {
		send_data_cmd(s);
		arm_timer(s, T_COMMAND);
	}
}

static void
mail_refused(struct mta_session *s)
{
	size_t i;

	for (i = 0; i < s->job->nrcpts; i++)
		if (s->marks[i] != RM_DONE)
			rcpt_set(s, i, &s->reply);
}

static void
rcpt_reply(struct mta_session *s, size_t i)
{
	if (!s->mail_ok)
		return;  /* its outcome came with the MAIL reply */
	if (smtp_reply_class(&s->reply) == 2) {
		s->marks[i] = RM_ACCEPTED;
		s->accepted++;
	} else if (s->reply.code == 452 && s->accepted > 0) {
		s->marks[i] = RM_LATER;
		s->later = 1;
	} else {
		rcpt_set(s, i, &s->reply);
	}
}

static void body_start(struct mta_session *s);

static void
data_reply(struct mta_session *s)
{
	size_t i;

	if (s->reply.code == 354 && s->mail_ok && s->accepted > 0) {
		body_start(s);
		return;
	}
	if (s->reply.code == 354) {
		/* RFC 2920 3.1: DATA must fail without a valid recipient */
		session_fail(s, "4.5.0", "%s accepted DATA without a "
		    "recipient", s->remote);
		return;
	}
	if (!s->mail_ok)
		return;
	for (i = 0; i < s->job->nrcpts; i++)
		if (s->marks[i] == RM_ACCEPTED)
			rcpt_set(s, i, &s->reply);
}

static void
on_envelope(struct mta_session *s)
{
	struct mta_pend p;

	if (s->pend_n == 0) {
		session_fail(s, "4.5.0", "unexpected reply from %s: %s",
		    s->remote, s->reply.diag);
		return;
	}
	p = s->pend[s->pend_head];
	s->pend_head++;
	s->pend_n--;
	switch (p.kind) {
	case P_MAIL:
		s->mail_ok = smtp_reply_class(&s->reply) == 2;
		if (!s->mail_ok)
			mail_refused(s);
		break;
	case P_RCPT:
		rcpt_reply(s, p.rcpt);
		break;
	case P_DATA:
		data_reply(s);
		if (s->state != MTA_S_ENVELOPE)
			return;
		break;
	}
	if (!s->ext.pipelining && s->pend_n == 0)
		send_more(s);
	if (s->pend_n == 0)
		envelope_over(s);
}

static void
on_rset(struct mta_session *s)
{
	if (smtp_reply_class(&s->reply) != 2)
		s->broken = 1;
	txn_end(s);
}

static void
on_quit(struct mta_session *s)
{
	session_close(s);
}

/* ---- the content ------------------------------------------------------- */

/* canon_feed - n octets of content into their canonical form at the end of
 * out (CRLF line ends, dot-stuffed); -1 when a line is over
 * MTA_TEXT_LINE_MAX */
static int
canon_feed(struct mta_canon *c, const unsigned char *p, size_t n,
    struct buf *out)
{
	char *o;
	size_t i, k = 0;

	/* each octet gives at most 2, a pending CR 2 more */
	if (n > (SIZE_MAX - 8) / 2)
		panic("mta: chunk too large");
	buf_reserve(out, 2 * n + 4);
	o = out->data + out->len;
	for (i = 0; i < n; i++) {
		if (c->cr) {
			c->cr = 0;
			o[k++] = '\r';
			o[k++] = '\n';
			c->bol = 1;
			c->linelen = 0;
			if (p[i] == '\n')
				continue;
		}
		if (p[i] == '\r') {
			c->cr = 1;
			continue;
		}
		if (p[i] == '\n') {
			o[k++] = '\r';
			o[k++] = '\n';
			c->bol = 1;
			c->linelen = 0;
			continue;
		}
		if (c->linelen >= MTA_TEXT_LINE_MAX)
			return -1;
		if (c->bol && p[i] == '.')
			o[k++] = '.';
		o[k++] = (char)p[i];
		c->bol = 0;
		c->linelen++;
	}
	out->len += k;
	out->data[out->len] = '\0';
	return 0;
}

/* canon_end - the last line end if missing, and the end of data */
static void
canon_end(struct mta_canon *c, struct buf *out)
{
	if (c->cr || !c->bol)
		buf_append(out, "\r\n", 2);
	c->cr = 0;
	c->bol = 1;
	buf_append(out, ".\r\n", 3);
}

static void
body_start(struct mta_session *s)
{
	if (lseek(s->fd, 0, SEEK_SET) == -1) {
		session_fail(s, "4.3.0", "cannot read %s: %s",
		    s->job->content_path, strerror(errno));
		return;
	}
	memset(&s->canon, 0, sizeof(s->canon));
	s->canon.bol = 1;
	if (s->inbuf == NULL)
		s->inbuf = xmalloc(MTA_CHUNK);
	buf_reset(&s->outbuf);
	enter_state(s, MTA_S_BODY);
	body_fill(s);
}

/* line_too_long - the accepted recipients bounce; the data cannot be
 * ended cleanly, so the connection is dropped without the final dot (the
 * peer discards a message it never saw end, RFC 5321 4.1.1.4) */
static void
line_too_long(struct mta_session *s)
{
	size_t i;

	slog(s, LOG_LVL_WARN, "a line of the message is longer than %d "
	    "octets: not sent to %s", MTA_TEXT_LINE_MAX, s->remote);
	for (i = 0; i < s->job->nrcpts; i++)
		if (s->marks[i] == RM_ACCEPTED)
			rcpt_fail(s, i, 5, "5.6.0", "message has a line longer "
			    "than 998 octets (RFC 5321 4.5.3.1.6); not sent");
	session_close(s);
}

/* body_fill - the next chunk of canonical content, as the output drains
 * (memory stays bounded by MTA_CHUNK and its expansion) */
static void
body_fill(struct mta_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	ssize_t n;

	if (evbuffer_get_length(out) > MTA_WRITE_LOW)
		return;
	do
		n = read(s->fd, s->inbuf, MTA_CHUNK);
	while (n == -1 && errno == EINTR);
	if (n < 0) {
		session_fail(s, "4.3.0", "cannot read %s: %s",
		    s->job->content_path, strerror(errno));
		return;
	}
	buf_reset(&s->outbuf);
	if (n == 0) {
		canon_end(&s->canon, &s->outbuf);
		evbuffer_add(out, s->outbuf.data, s->outbuf.len);
		enter_state(s, s->proto->dot_state);
		return;
	}
	if (canon_feed(&s->canon, (unsigned char *)s->inbuf, (size_t)n,
	    &s->outbuf) == -1) {
		line_too_long(s);
		return;
	}
	evbuffer_add(out, s->outbuf.data, s->outbuf.len);
	arm_timer(s, T_DATA);
}

/* on_body_reply - a reply in the middle of the data (a peer that gives
 * up early): it is the outcome; the connection cannot go on */
static void
on_body_reply(struct mta_session *s)
{
	size_t i;

	for (i = 0; i < s->job->nrcpts; i++)
		if (s->marks[i] == RM_ACCEPTED)
			rcpt_set(s, i, &s->reply);
	session_fail(s, "4.5.0", "%s replied during the data: %s",
	    s->remote, s->reply.diag);
}

static void
on_dot(struct mta_session *s)
{
	size_t i;

	for (i = 0; i < s->job->nrcpts; i++)
		if (s->marks[i] == RM_ACCEPTED)
			rcpt_set(s, i, &s->reply);
	if (smtp_reply_class(&s->reply) == 2)
		mta_dest_delivered(s->dest);
	txn_end(s);
}

/* next_accepted - the first recipient still waiting for its reply to the
 * end of data (LMTP), or nrcpts */
static size_t
next_accepted(const struct mta_session *s)
{
	size_t i;

	for (i = 0; i < s->job->nrcpts; i++)
		if (s->marks[i] == RM_ACCEPTED)
			break;
	return i;
}

/*
 * on_dot_each - LMTP (RFC 2033 4.2): after the final dot a reply for each
 * recipient accepted at RCPT, in RCPT order, each its recipient's outcome.
 * A 421 says the server is going away: it is the outcome (deferred) of
 * every recipient still without a reply, and the connection is over.
 */
static void
on_dot_each(struct mta_session *s)
{
	size_t i = next_accepted(s);

	if (i == s->job->nrcpts) {
		/* cannot be: the state ends with the last recipient's reply */
		session_fail(s, "4.5.0", "unexpected reply from %s: %s",
		    s->remote, s->reply.diag);
		return;
	}
	if (s->reply.code == 421) {
		for (; i < s->job->nrcpts; i++)
			if (s->marks[i] == RM_ACCEPTED)
				rcpt_set(s, i, &s->reply);
		session_fail(s, "4.4.2", "%s is closing the connection %s: %s",
		    s->remote, states[s->state].doing, s->reply.diag);
		return;
	}
	rcpt_set(s, i, &s->reply);
	if (smtp_reply_class(&s->reply) == 2)
		s->dot_ok = 1;
	if (next_accepted(s) < s->job->nrcpts) {
		arm_timer(s, T_DATA);
		return;
	}
	if (s->dot_ok)
		mta_dest_delivered(s->dest);
	txn_end(s);
}

/* ---- the interface ----------------------------------------------------- */

struct mta_session *
mta_session_new(const struct mta_session_params *p, struct mta_job *job)
{
	struct mta_session *s = xcalloc(1, sizeof(*s));

	s->conf = p->conf;
	s->base = p->base;
	s->dest = p->dest;
	s->route = *p->route;
	s->proto = &protos[s->route.kind == ROUTE_LMTP ? PROTO_LMTP :
	    PROTO_SMTP];
	s->ssl_ctx = p->ssl_ctx;
	s->ca_store = p->ca_store;
	s->no_tls = p->no_tls;
	s->targets = xreallocarray(NULL, p->ntargets ? p->ntargets : 1,
	    sizeof(*s->targets));
	memcpy(s->targets, p->targets, p->ntargets * sizeof(*s->targets));
	s->ntargets = p->ntargets;
	s->fd = -1;
	s->job = job;
	s->njobs = 1;
	smtp_reply_init(&s->reply);
	buf_init(&s->outbuf);
	snprintf(s->remote, sizeof(s->remote), "%s", s->route.host);
	s->timer = evtimer_new(s->base, timer_cb, s);
	if (s->timer == NULL)
		fatal("mta: cannot create a timer");
	if (s->ntargets == 0)
		panic("mta: a session without targets");
	/* never act inside the caller: connect on the next loop turn */
	enter_state(s, MTA_S_INIT);
	return s;
}

int
mta_session_give(struct mta_session *s, struct mta_job *job)
{
	/* an idle session may have begun to QUIT meanwhile */
	if (s->state != MTA_S_READY || s->job != NULL)
		return -1;
	take_job(s, job);
	return 0;
}

void
mta_session_close(struct mta_session *s)
{
	int fd;

	if (s->state == MTA_S_READY && s->job == NULL && s->bev != NULL &&
	    !s->tls_active) {
		/* the loop is about to end: QUIT straight to the socket */
		fd = bufferevent_getfd(s->bev);
		if (fd != -1)
			(void)send(fd, "QUIT\r\n", 6, MSG_NOSIGNAL |
			    MSG_DONTWAIT);
	}
	session_free(s);
}

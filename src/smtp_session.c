/*
 * smtp_session.c - one inbound SMTP session: the state machine of RFC 5321
 * with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
 * ENHANCEDSTATUSCODES (RFC 2034, 3463), SMTPUTF8 (RFC 6531),
 * CHUNKING/BDAT (RFC 3030) and DSN (RFC 3461 4: RET, ENVID, NOTIFY, ORCPT,
 * kept in the envelope for the scheduler).
 *
 * The one idea: bytes from the network are framed strictly here (a command
 * ends only in CRLF; DATA ends only in CRLF.CRLF, see smtp_data.c), every
 * command goes through one table that says in which states it is allowed,
 * and a message is acknowledged only from the spool's commit callback, once
 * it is on stable storage.  Sessions never block: all of them share the
 * smtpd process's event loop.  Memory per session is bounded: input is read
 * up to a high-water mark and consumed as it comes.
 *
 * The relay policy is decided at RCPT (rcpt_policy): a local domain is
 * ours; a relay domain (relay-domains) is accepted from anyone, but only
 * for the recipients relay-recipients lists when it is set, so that no
 * bounce of an unknown recipient goes to a forged sender (backscatter);
 * any other domain only from a client in trusted-networks.  Routing tricks
 * (%, !, quoted @, source routes) are refused for every domain.  A message
 * with more than max_received Received: headers is refused as a loop
 * (RFC 5321 6.3).
 *
 * Deadlines, not idle timers (RFC 5321 4.5.3.2): a command must be complete
 * within timeouts command= of the moment the server became ready for it
 * (the greeting, or its reply to the command before); the bytes of an
 * unfinished line do not move it, so a client cannot hold a session by
 * sending one byte now and then.  A message (DATA, or BDAT from its first
 * chunk to its last) must arrive at limits data-rate= at least, measured
 * over timeouts data= (the pace of smtp_data.h), and be complete within
 * timeouts message=.  See deadline_arm.
 *
 * What needs the client's address is done in one place, session_start:
 * at accept on an ordinary listener, and on a proxy-from= listener after
 * the balancer's PROXY header (proxy.c; read here, before any bufferevent
 * exists, see proxy_cb) has put the client's address in s->peer and
 * s->addr.  The DNS lists (dnsbl.c) run during the greet pause; a listed
 * client gets 554 5.7.1 instead of the greeting, an allowlisted one no
 * pause.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bounce.h"
#include "auth.h"
#include "authd.h"
#include "client_limits.h"
#include "conf.h"
#include "dns.h"
#include "dnsbl.h"
#include "envelope.h"
#include "alias_table.h"
#include "mailbox.h"
#include "proxy.h"
#include "sched.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtpd.h"
#include "spool.h"
#include "stats.h"
#include "tls.h"
#include "util.h"

/* input read ahead of processing, per session: bounds memory per client */
#define SESSION_READ_HIGH (64 * 1024)
/* content is handed to the spool in pieces of about this size */
#define SESSION_FLUSH_AT (64 * 1024)
/* a HELO/EHLO name is cut to this length in headers and logs */
#define SESSION_HELO_MAX 128
/* the greeting waits at most this long for the client's name */
#define SESSION_DNS_WAIT_MS 3000
/* header fields are held this long to add Message-ID:/Date: at the end
 * of the header section; a longer header gets them at its top */
#define SESSION_HEADER_HOLD (256 * 1024)
/* a failed AUTH is answered after this, times the session's failures */
#define SESSION_AUTH_DELAY_MS 1000
/* a client that does not read our last reply is dropped after this */
#define SESSION_CLOSE_MS 10000
/* replies waiting for a client that does not read them: beyond this, its
 * further commands wait until they are written (bounds memory per
 * session against a client pipelining without reading) */
#define SESSION_WRITE_HIGH (64 * 1024)

enum smtp_state {
	SMTP_S_GREET,    /* before the 220: the greet pause */
	SMTP_S_INIT,     /* greeted, waiting for EHLO or HELO */
	SMTP_S_HELO,     /* ready for MAIL */
	SMTP_S_MAIL,     /* MAIL accepted: RCPT */
	SMTP_S_RCPT,     /* recipients: more RCPT, DATA or BDAT */
	SMTP_S_DATA,     /* reading DATA content */
	SMTP_S_BDAT,     /* reading the octets of a BDAT chunk */
	SMTP_S_CHUNKING, /* between BDAT chunks */
	SMTP_S_AUTH,     /* an AUTH exchange: reading a SASL response line */
	SMTP_S_HOLD,     /* a reply held back (failed AUTH), input waits */
	SMTP_S_CHECK,    /* waiting for authd's verdict on a password */
	SMTP_S_COMMIT,   /* waiting for the spool to make the message durable */
	SMTP_S_CLOSING,  /* last reply sent; closing when it is written */
	SMTP_S_PROXY     /* a proxy-from= listener: reading the PROXY
	                  * header, before anything else (no bufferevent) */
};

static const char *const state_names[] = { "GREET", "INIT", "HELO", "MAIL",
	"RCPT", "DATA", "BDAT", "CHUNKING", "AUTH", "HOLD", "CHECK", "COMMIT",
	"CLOSING", "PROXY" };

#define ST(x) (1u << (x))
/* the states that read a command line: the command deadline runs */
#define ST_COMMAND (ST(SMTP_S_INIT) | ST(SMTP_S_HELO) | ST(SMTP_S_MAIL) | \
	ST(SMTP_S_RCPT) | ST(SMTP_S_CHUNKING) | ST(SMTP_S_AUTH))
/* the states of a message transfer: its rate and its deadline run (the
 * commands between BDAT chunks count against the rate too) */
#define ST_TRANSFER (ST(SMTP_S_DATA) | ST(SMTP_S_BDAT) | ST(SMTP_S_CHUNKING))

/* what the transaction refuses at its end, if anything */
enum txn_refusal {
	TXN_OK = 0,
	TXN_TOO_BIG,
	TXN_LONG_LINE,
	TXN_TOO_MANY_HOPS,
	TXN_WRITE_ERROR
};

/* the refusals as the log says them */
static const char *const refusal_words[] = {
	[TXN_OK] = "none",
	[TXN_TOO_BIG] = "larger than message-size",
	[TXN_LONG_LINE] = "a line longer than line-length",
	[TXN_TOO_MANY_HOPS] = "too many Received: fields (a mail loop?)",
	[TXN_WRITE_ERROR] = "the queue file could not be written",
};

struct smtp_txn {
	struct envelope env;     /* sender, recipients, flags */
	struct spool_tx *tx;     /* NULL until DATA/BDAT */
	struct smtp_data data;   /* framing state of the content */
	struct buf out;          /* unstuffed content on its way to the spool */
	int bdat_used;           /* BDAT started this transaction */
	enum txn_refusal refusal;
	int fix_headers;         /* submitted mail: add Message-ID:/Date:
	                          * when missing, before the first flush */
	size_t content_at;       /* where the content starts in out (after
	                          * our Received: line) */
};

struct smtp_session {
	const struct conf *conf;
	const struct smtpd_env *env;
	const struct conf_listen *listen;
	struct event_base *base;
	struct bufferevent *bev;
	struct event *greet_ev;
	int64_t connected;  /* monotonic ms */
	/* deadlines (monotonic ms), all on one timer: deadline_arm */
	struct event *deadline_ev;
	int64_t timer_at;   /* when deadline_ev fires; 0: not armed */
	int64_t command_by; /* the next command must be complete by then */
	int64_t message_by; /* the message being transferred */
	struct smtp_pace pace; /* its minimum rate */
	int pause_done;     /* the greet pause is over */
	enum smtp_state state;
	struct sockaddr_storage peer; /* the client, for trusted-networks */
	char addr[INET6_ADDRSTRLEN];
	char sid[QID_SIZE];             /* the session id, in every line
	                                 * about the session */
	char tag[QID_SIZE + INET6_ADDRSTRLEN + 16]; /* "SID client=ADDR" */
	char name[SMTP_DOMAIN_MAX + 1]; /* verified reverse DNS name, or
	                                 * "unknown" (until resolved) */
	struct dns_query *dns;          /* that lookup, while it runs */
	struct dnsbl_check *dnsbl;      /* DNS lists, until the greeting */
	int allowlisted;                /* a dnswl lists the client */
	/* the PROXY header (SMTP_S_PROXY) */
	int fd;                         /* the connection, until the
	                                 * bufferevent owns it */
	struct event *proxy_ev;
	struct buf proxy_in;            /* the header's octets so far */
	char via[INET6_ADDRSTRLEN];     /* the balancer, for logs; "" when
	                                 * the client connected directly */
	char *helo;
	int esmtp;
	int discarding; /* inside an over-long line, dropping it */
	struct client_state client; /* its address's limits, its greet
	                             * pause, its errors (client_limits.h) */
	int dead;       /* client gone while a commit or check was pending */
	char *checking; /* the user name authd is checking (SMTP_S_CHECK) */
	struct smtp_txn *txn;
	/* the BDAT chunk being read */
	uint64_t bdat_left;     /* its octets still to come */
	int bdat_last;          /* it is the LAST one */
	const char *bdat_error; /* reply owed after it (its octets dropped) */
	enum smtp_state bdat_return; /* state to go back to after an error */
	/* TLS and AUTH */
	int tls;                /* the session is encrypted */
	int tls_closed;         /* close_notify sent, or not to be sent */
	char tls_desc[128];     /* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	char *auth_user;        /* after a successful AUTH */
	unsigned auth_fails;    /* failed AUTH attempts in this session */
	struct auth_sasl *sasl; /* an AUTH exchange in progress */
	struct event *hold_ev;  /* sends held_reply */
	char *held_reply;
	int hold_close;         /* close after the held reply */
	enum smtp_state hold_return; /* the state after it */
	/* a plain connection writes its replies itself (reply_flush) */
	int direct;
	int flush_queued;       /* on the flush list */
	int write_wait;         /* input waits for the replies to drain */
	TAILQ_ENTRY(smtp_session) flush_link;
	struct event *linger_ev; /* closing: waits for the last reply */
	int64_t closing_since;
};

/* The one line being handled: sessions run one at a time on this loop, so a
 * single buffer serves all of them and idle sessions hold no line memory. */
static char line_buf[SMTP_AUTH_LINE_MAX + 1];
static unsigned nsessions;

/*
 * Replies on a plain connection are written by the session itself, once
 * per turn of the loop, for all the sessions that replied in it (the flush
 * list): a reply that fits the socket buffer - nearly every one - costs one
 * writev and no epoll_ctl.  Leaving it to the bufferevent would cost two
 * epoll_ctl calls (watch for EPOLLOUT, stop watching) and one more turn of
 * the loop per reply.  The bufferevent writes only what the socket did not
 * take at once; a TLS session leaves all its writing to OpenSSL's
 * bufferevent (under STARTTLS once per turn too, see start_tls).
 */
static TAILQ_HEAD(, smtp_session) flush_list =
    TAILQ_HEAD_INITIALIZER(flush_list);
static struct event *flush_ev;

static void session_input(struct smtp_session *s);
static void reply_flush_later(struct smtp_session *s);
static void content_flush(struct smtp_txn *t, uint64_t limit);
static void session_free(struct smtp_session *s);
static void close_after_reply(struct smtp_session *s);
static void reply(struct smtp_session *s, const char *fmt, ...)
    TERN_PRINTF(2, 3);

unsigned
smtp_session_count(void)
{
	return nsessions;
}

/*
 * Deadlines.  One timer per session, deadline_ev, is armed no later than
 * the earliest deadline that runs in the session's state.  A deadline only
 * moves later while the timer runs (a command restarts it from now), so
 * the timer is re-armed only when a deadline comes earlier or when it
 * fires early: a command costs a clock read, not a timer operation.
 */
enum deadline { DL_NONE, DL_COMMAND, DL_RATE, DL_MESSAGE, DL_CLOSE };

/* earlier - keep (at, which) the earlier of itself and (t, w) */
static void
earlier(int64_t *at, enum deadline *which, int64_t t, enum deadline w)
{
	if (*which == DL_NONE || t < *at) {
		*at = t;
		*which = w;
	}
}

/* deadline_next - the earliest deadline running in this state (0: none;
 * GREET, HOLD and COMMIT wait for the server; a closing session has
 * SESSION_CLOSE_MS to take its last reply), and which it is */
static int64_t
deadline_next(const struct smtp_session *s, enum deadline *which)
{
	int64_t at = 0;

	*which = DL_NONE;
	if (ST(s->state) & ST_COMMAND)
		earlier(&at, which, s->command_by, DL_COMMAND);
	if (ST(s->state) & ST_TRANSFER) {
		earlier(&at, which, smtp_pace_deadline(&s->pace), DL_RATE);
		earlier(&at, which, s->message_by, DL_MESSAGE);
	}
	if (s->state == SMTP_S_CLOSING)
		earlier(&at, which, s->closing_since + SESSION_CLOSE_MS,
		    DL_CLOSE);
	return at;
}

/* deadline_arm - have the timer fire by the earliest deadline */
static void
deadline_arm(struct smtp_session *s)
{
	enum deadline which;
	int64_t at = deadline_next(s, &which), wait;
	struct timeval tv;

	if (at == 0 || (s->timer_at != 0 && s->timer_at <= at))
		return;
	wait = at - util_mono_ms();
	if (wait < 0)
		wait = 0;
	tv.tv_sec = wait / 1000;
	tv.tv_usec = (wait % 1000) * 1000;
	evtimer_add(s->deadline_ev, &tv);
	s->timer_at = at;
}

/* command_ready - the server is ready for the next command: it must be
 * complete within timeouts command= from now */
static void
command_ready(struct smtp_session *s)
{
	s->command_by = util_mono_ms() + s->conf->timeout_command_ms;
	deadline_arm(s);
}

/* transfer_start - a message begins (DATA, a first BDAT): its deadline
 * and its pace start now */
static void
transfer_start(struct smtp_session *s)
{
	const struct conf *c = s->conf;
	int64_t now = util_mono_ms();

	s->message_by = now + c->timeout_message_ms;
	smtp_pace_start(&s->pace, c->data_rate, c->timeout_data_ms, now);
}

/* transfer_octets - n octets of the message arrived (its pace) */
static void
transfer_octets(struct smtp_session *s, uint64_t n)
{
	if (n > 0)
		smtp_pace_octets(&s->pace, n, util_mono_ms());
}

/* tls_handshaking - a TLS session whose handshake is not done: no reply
 * can reach its client */
static int
tls_handshaking(struct smtp_session *s)
{
	SSL *ssl;

	if (!s->tls)
		return 0;
	ssl = bufferevent_openssl_get_ssl(s->bev);
	return ssl != NULL && !SSL_is_init_finished(ssl);
}

/* deadline_passed - tell the client which deadline it missed, and go;
 * the log names the client and the configuration of that deadline.  A
 * session whose TLS handshake is not done, or which did not take its
 * last reply in time, is freed at once (the deadline timer's callback
 * is the only holder of s). */
static void
deadline_passed(struct smtp_session *s, enum deadline which)
{
	const struct conf *c = s->conf;
	const char *st = state_names[s->state];
	char dur[32], rate[32];
	unsigned long long octets = s->pace.octets;

	switch (which) {
	case DL_COMMAND:
		conf_format_duration(c->timeout_command_ms, dur, sizeof(dur));
		if (tls_handshaking(s)) {
			log_info("%s: timeout (command=%s): no TLS handshake "
			    "since the server was ready; disconnecting",
			    s->tag, dur);
			session_free(s);
			return;
		}
		log_info("%s: timeout (command=%s): no complete command since "
		    "the server was ready, in state %s; disconnecting",
		    s->tag, dur, st);
		reply(s, "421 4.4.2 %s Error: timeout exceeded", c->hostname);
		break;
	case DL_RATE:
		conf_format_size(c->data_rate, rate, sizeof(rate));
		conf_format_duration(c->timeout_data_ms, dur, sizeof(dur));
		log_info("%s: timeout (data-rate=%s): the message came slower "
		    "than %s octets a second over data=%s, in state %s after "
		    "%llu octets; disconnecting", s->tag, rate, rate, dur, st,
		    octets);
		reply(s, "421 4.4.2 %s Error: timeout exceeded (data slower "
		    "than %llu octets a second)", c->hostname,
		    (unsigned long long)c->data_rate);
		break;
	case DL_MESSAGE:
		conf_format_duration(c->timeout_message_ms, dur, sizeof(dur));
		log_info("%s: timeout (message=%s): the message was not "
		    "complete in time, in state %s after %llu octets; "
		    "disconnecting", s->tag, dur, st, octets);
		reply(s, "421 4.4.2 %s Error: timeout exceeded (message not "
		    "complete in %s)", c->hostname, dur);
		break;
	case DL_CLOSE:
		log_info("%s: the client did not take the last reply within "
		    "%d s; disconnecting", s->tag, SESSION_CLOSE_MS / 1000);
		session_free(s);
		return;
	case DL_NONE:
		return;
	}
	close_after_reply(s);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	enum deadline which;
	int64_t at;

	(void)fd;
	(void)what;
	s->timer_at = 0;
	at = deadline_next(s, &which);
	if (at == 0)
		return;
	if (at > util_mono_ms()) {
		deadline_arm(s); /* fired early: the deadline moved */
		return;
	}
	deadline_passed(s, which);
}

/* enter_state - the one place the state changes.  A state that reads a
 * command, entered after a reply that answered no command line (the
 * greeting, the end of a message, a held reply), starts the command
 * deadline; the first state of a transfer starts the message's. */
static void
enter_state(struct smtp_session *s, enum smtp_state next)
{
	unsigned was = ST(s->state);

	if (s->state == next)
		return;
	log_debug("%s: %s -> %s", s->tag, state_names[s->state],
	    state_names[next]);
	s->state = next;
	if (next == SMTP_S_CLOSING)
		s->closing_since = util_mono_ms();
	if ((ST(next) & ST_TRANSFER) && !(was & ST_TRANSFER))
		transfer_start(s);
	if ((ST(next) & ST_COMMAND) && !(was & ST_COMMAND))
		command_ready(s);
	else
		deadline_arm(s);
}

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	reply_flush_later(s);
}

/*
 * set_timeout - libevent's timeout for writing, which restarts with every
 * byte written: for a client that does not read our replies.  Reading has
 * deadlines instead (deadline_arm), which bytes do not restart.
 */
static void
set_timeout(struct smtp_session *s, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
		.tv_usec = (ms % 1000) * 1000 };

	bufferevent_set_timeouts(s->bev, NULL, &tv);
}

/* close_after_reply - stop reading; free once the last reply is written */
static void
close_after_reply(struct smtp_session *s)
{
	enter_state(s, SMTP_S_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	/* never freed here: callers still hold s; write_cb or reply_flush
	 * frees it once the reply is out, or event_cb when the client does
	 * not read it */
	set_timeout(s, SESSION_CLOSE_MS);
	reply_flush_later(s);
}

static void
txn_free(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (t == NULL)
		return;
	if (t->tx != NULL)
		spool_tx_abort(t->tx);
	envelope_free(&t->env);
	buf_free(&t->out);
	free(t);
	s->txn = NULL;
}

/* txn_reset - end the mail transaction (RSET, EHLO, after a message) */
static void
txn_reset(struct smtp_session *s)
{
	txn_free(s);
	if (s->state != SMTP_S_INIT && s->state != SMTP_S_GREET)
		enter_state(s, SMTP_S_HELO);
}

static void hold_reply(struct smtp_session *s, int64_t ms, const char *text,
    int close);

/*
 * error_reply - the reply to a bad command: held back longer for each
 * error of the session, and the session ended after limits client-errors=
 * (RFC 5321 7.8), so that a client cannot retry errors as fast as it likes
 */
static void
error_reply(struct smtp_session *s, const char *text)
{
	int64_t delay = client_error(&s->client);

	/* not between BDAT chunks: leaving the transfer for HOLD would
	 * start its deadlines anew */
	if (delay > 0 && !(ST(s->state) & ST_TRANSFER)) {
		hold_reply(s, delay, text, 0);
		return;
	}
	reply(s, "%s", text);
	if (delay >= 0) /* between BDAT chunks: answered at once */
		return;
	reply(s, "421 4.7.0 %s Error: too many errors", s->conf->hostname);
	close_after_reply(s);
}

/* verbs */

static void
cmd_helo(struct smtp_session *s, struct smtp_cmd *cmd, int esmtp)
{
	const struct conf *c = s->conf;

	if (cmd->arg[0] == '\0') {
		reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	free(s->helo);
	/* RFC 5321 4.1.4: the name is not checked against the address, but
	 * it goes into headers and logs, so it is sanitised and bounded */
	s->helo = util_sanitise_dup(cmd->arg, SESSION_HELO_MAX);
	s->esmtp = esmtp;
	txn_free(s);
	enter_state(s, SMTP_S_HELO);
	if (!esmtp) {
		reply(s, "250 %s", c->hostname);
		return;
	}
	reply(s, "250-%s", c->hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)c->message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-CHUNKING");
	reply(s, "250-DSN");
	if (s->env->tls != NULL && !s->tls)
		reply(s, "250-STARTTLS");
	/* AUTH only under TLS: passwords never cross the wire in clear */
	if (s->tls && s->env->auth)
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250 HELP");
}

static void
cmd_ehlo(struct smtp_session *s, struct smtp_cmd *cmd)
{
	cmd_helo(s, cmd, 1);
}

static void
cmd_helo_plain(struct smtp_session *s, struct smtp_cmd *cmd)
{
	cmd_helo(s, cmd, 0);
}

/*
 * MAIL and RCPT parameters: one function per keyword, each checking the
 * value and storing it; -1 after the refusal was sent.  The value is NULL
 * when the parameter had no "=value".
 */
struct param_row {
	const char *key;
	int (*fn)(struct smtp_session *, const char *, void *);
};

/* mp_size - SIZE= (RFC 1870): refused at once when over the limit */
static int
mp_size(struct smtp_session *s, const char *v, void *arg)
{
	uint64_t *size = arg;

	if (v == NULL || smtp_parse_size_param(v, size) == -1) {
		reply(s, "501 5.5.4 Bad SIZE= value");
		return -1;
	}
	if (*size > s->conf->message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu "
		    "octets", (unsigned long long)s->conf->message_size);
		return -1;
	}
	return 0;
}

/* mp_body - BODY=7BIT|8BITMIME (RFC 6152) */
static int
mp_body(struct smtp_session *s, const char *v, void *arg)
{
	(void)arg;
	if (v == NULL || (strcasecmp(v, "7BIT") != 0 &&
	    strcasecmp(v, "8BITMIME") != 0)) {
		reply(s, "501 5.5.4 Bad BODY= value");
		return -1;
	}
	s->txn->env.body_8bit = strcasecmp(v, "8BITMIME") == 0;
	return 0;
}

/* mp_smtputf8 - SMTPUTF8 (RFC 6531 3.4), no value */
static int
mp_smtputf8(struct smtp_session *s, const char *v, void *arg)
{
	(void)arg;
	if (v != NULL) {
		reply(s, "501 5.5.4 SMTPUTF8 takes no value");
		return -1;
	}
	s->txn->env.smtputf8 = 1;
	return 0;
}

/* mp_ret - RET=FULL|HDRS (RFC 3461 4.3) */
static int
mp_ret(struct smtp_session *s, const char *v, void *arg)
{
	(void)arg;
	if (v != NULL && strcasecmp(v, "FULL") == 0) {
		s->txn->env.ret = DSN_RET_FULL;
	} else if (v != NULL && strcasecmp(v, "HDRS") == 0) {
		s->txn->env.ret = DSN_RET_HDRS;
	} else {
		reply(s, "501 5.5.4 Bad RET= value (FULL or HDRS)");
		return -1;
	}
	return 0;
}

/* mp_envid - ENVID=xtext (RFC 3461 4.4), kept as received */
static int
mp_envid(struct smtp_session *s, const char *v, void *arg)
{
	(void)arg;
	if (v == NULL || v[0] == '\0' || strlen(v) > DSN_ENVID_MAX ||
	    !xtext_valid(v)) {
		reply(s, "501 5.5.4 Bad ENVID= value");
		return -1;
	}
	envelope_set(&s->txn->env.envid, v);
	return 0;
}

static const struct param_row mail_param_table[] = {
	{ "SIZE", mp_size },
	{ "BODY", mp_body },
	{ "SMTPUTF8", mp_smtputf8 },
	{ "RET", mp_ret },
	{ "ENVID", mp_envid },
};

/* the DSN parameters of one RCPT, until the recipient is added */
struct rcpt_dsn {
	unsigned notify;
	const char *orcpt;
};

/* rp_notify - NOTIFY=NEVER or a list of SUCCESS,FAILURE,DELAY (4.1) */
static int
rp_notify(struct smtp_session *s, const char *v, void *arg)
{
	struct rcpt_dsn *d = arg;

	if (v == NULL || dsn_notify_parse(v, &d->notify) == -1) {
		reply(s, "501 5.5.4 Bad NOTIFY= value");
		return -1;
	}
	return 0;
}

/* rp_orcpt - ORCPT=addr-type;xtext (4.2): rfc822 or utf-8 (RFC 6533) */
static int
rp_orcpt(struct smtp_session *s, const char *v, void *arg)
{
	struct rcpt_dsn *d = arg;

	if (v == NULL || !dsn_orcpt_valid(v, s->txn->env.smtputf8)) {
		reply(s, "501 5.5.4 Bad ORCPT= value");
		return -1;
	}
	d->orcpt = v;
	return 0;
}

static const struct param_row rcpt_param_table[] = {
	{ "NOTIFY", rp_notify },
	{ "ORCPT", rp_orcpt },
};

/*
 * apply_params - run each parameter of pc through its row of table; an
 * unknown one is 555 (RFC 5321 4.1.1.11), a repeated one 501.  0 when
 * all were good, else -1 and a reply was sent.
 */
static int
apply_params(struct smtp_session *s, const struct smtp_pathcmd *pc,
    const struct param_row *table, size_t nrows, const char *verb,
    void *arg)
{
	unsigned seen = 0;
	size_t i, r;

	for (i = 0; i < pc->nparams; i++) {
		const struct smtp_param *p = &pc->params[i];

		for (r = 0; r < nrows; r++)
			if (strcasecmp(p->key, table[r].key) == 0)
				break;
		if (r == nrows) {
			reply(s, "555 5.5.4 Unsupported %s parameter", verb);
			return -1;
		}
		if (seen & (1u << r)) {
			reply(s, "501 5.5.4 Duplicate %s parameter",
			    table[r].key);
			return -1;
		}
		seen |= 1u << r;
		if (table[r].fn(s, p->value, arg) == -1)
			return -1;
	}
	return 0;
}

/* mail_params - apply MAIL's ESMTP parameters; 0 or a reply was sent */
static int
mail_params(struct smtp_session *s, const struct smtp_pathcmd *pc)
{
	const struct conf *c = s->conf;
	uint64_t size = 0;

	if (apply_params(s, pc, mail_param_table, sizeof(mail_param_table) /
	    sizeof(mail_param_table[0]), "MAIL", &size) == -1)
		return -1;
	if (!spool_free_ok(c->spool_reserve, size)) {
		reply(s, "452 4.3.1 Insufficient system storage");
		log_warn("%s: spool below its free-space reserve, "
		    "refusing mail", s->tag);
		return -1;
	}
	return 0;
}

static int
path_error(struct smtp_session *s, enum smtp_perr err, const char *what)
{
	switch (err) {
	case SMTP_P_BAD_PARAM:
	case SMTP_P_TOO_MANY_PARAMS:
		reply(s, "501 5.5.4 Syntax error in parameters");
		break;
	case SMTP_P_TOO_LONG:
		reply(s, "501 5.1.%c Address too long",
		    what[0] == 'M' ? '7' : '3');
		break;
	default:
		reply(s, "501 5.1.%c Bad %s address syntax",
		    what[0] == 'M' ? '7' : '3',
		    what[0] == 'M' ? "sender" : "recipient");
		break;
	}
	return -1;
}

static void
cmd_mail(struct smtp_session *s, struct smtp_cmd *cmd)
{
	struct smtp_pathcmd pc;
	enum smtp_perr err;
	char addr[SMTP_PATH_MAX + 1];

	if (strncasecmp(cmd->arg, "FROM:", 5) != 0) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (s->listen->role != ROLE_SMTP && s->auth_user == NULL) {
		reply(s, "530 5.7.0 Authentication required");
		return;
	}
	client_behaved(&s->client);
	if (client_message(&s->client, s->auth_user != NULL) == -1) {
		reply(s, "451 4.7.1 Error: too much mail from %s; try again "
		    "later", s->addr);
		return;
	}
	err = smtp_parse_mail(cmd->arg, &pc);
	if (err != SMTP_P_OK) {
		path_error(s, err, "MAIL");
		return;
	}
	s->txn = xcalloc(1, sizeof(*s->txn));
	envelope_init(&s->txn->env);
	buf_init(&s->txn->out);
	if (mail_params(s, &pc) == -1) {
		txn_free(s);
		return;
	}
	if (pc.addr.utf8 && !s->txn->env.smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		txn_free(s);
		return;
	}
	if (smtp_addr_format(&pc.addr, addr, sizeof(addr)) == -1) {
		reply(s, "501 5.1.7 Address too long");
		txn_free(s);
		return;
	}
	if (s->auth_user != NULL &&
	    !conf_sender_allowed(s->conf, s->auth_user, addr)) {
		reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned "
		    "by user %s", addr, s->auth_user);
		log_info("%s: user %s may not send as <%s>", s->tag,
		    s->auth_user, addr);
		txn_free(s);
		return;
	}
	envelope_set(&s->txn->env.sender, addr);
	enter_state(s, SMTP_S_MAIL);
	reply(s, "250 2.1.0 Ok");
}

/* local_policy - a recipient in a local domain: a safe mailbox name of a
 * user the recipients setting knows */
static int
local_policy(struct smtp_session *s, const struct smtp_addr *a,
    char *user, size_t userlen)
{
	struct mailbox_parts mp;

	if (mailbox_parts(a->local, s->conf->subaddress, &mp) == -1 ||
	    strlen(mp.user) >= userlen) {
		reply(s, "550 5.1.3 Bad recipient mailbox name");
		return -1;
	}
	memcpy(user, mp.user, strlen(mp.user) + 1);
	if (strcmp(user, "postmaster") == 0 || alias_table_has(user))
		return 0;
	if (!conf_recipient_known(s->conf, user, a->domain)) {
		if (s->conf->recipients == RECIPIENTS_SYSTEM &&
		    getpwnam(user) != NULL)
			log_info("%s: <%s@%s> refused: a system account below "
			    "min-uid is delivered to only through an alias",
			    s->tag, user, a->domain);
		reply(s, "550 5.1.1 <%s@%s>: Recipient address rejected: "
		    "User unknown", user, a->domain);
		return -1;
	}
	return 0;
}

/* relay_policy - a recipient in a relay domain: from anyone, but only
 * one relay-recipients knows (refused now, never bounced later) */
static int
relay_policy(struct smtp_session *s, const struct smtp_addr *a)
{
	if (conf_relay_recipient_known(s->conf, a->local, a->domain))
		return 0;
	reply(s, "550 5.1.1 <%s@%s>: Recipient address rejected: User "
	    "unknown in relay recipient table", a->local, a->domain);
	return -1;
}

/* rcpt_policy - decide on one recipient; 0 to accept, else a reply went */
static int
rcpt_policy(struct smtp_session *s, const struct smtp_addr *a,
    char *user, size_t userlen)
{
	const struct conf *c = s->conf;

	if (a->domain[0] == '\0') /* <postmaster>, RFC 5321 4.5.1 */
		return 0;
	if (smtp_addr_relay_trick(a)) {
		reply(s, "550 5.7.1 Address routing is not accepted");
		log_info("%s: routing trick refused: %s@%s", s->tag,
		    a->local, a->domain);
		return -1;
	}
	if (conf_is_local_domain(c, a->domain))
		return local_policy(s, a, user, userlen);
	if (conf_is_relay_domain(c, a->domain))
		return relay_policy(s, a);
	if (s->auth_user != NULL ||
	    conf_is_trusted(c, (const struct sockaddr *)&s->peer))
		return 0;
	reply(s, "554 5.7.1 <%s@%s>: Relay access denied", a->local,
	    a->domain);
	log_info("%s: relay refused to domain %s", s->tag, a->domain);
	return -1;
}

static void
cmd_rcpt(struct smtp_session *s, struct smtp_cmd *cmd)
{
	struct envelope *e = &s->txn->env;
	struct smtp_pathcmd pc;
	struct rcpt_dsn dsn = { 0, NULL };
	enum smtp_perr err;
	char addr[SMTP_PATH_MAX + 1];
	char user[MAILBOX_USER_MAX + 1];

	if (strncasecmp(cmd->arg, "TO:", 3) != 0) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (client_recipient(&s->client, s->auth_user != NULL) == -1) {
		reply(s, "452 4.7.1 Error: too many recipients from %s; try "
		    "again later", s->addr);
		return;
	}
	err = smtp_parse_rcpt(cmd->arg, &pc);
	if (err != SMTP_P_OK) {
		path_error(s, err, "RCPT");
		return;
	}
	if (apply_params(s, &pc, rcpt_param_table, sizeof(rcpt_param_table) /
	    sizeof(rcpt_param_table[0]), "RCPT", &dsn) == -1)
		return;
	if (pc.addr.utf8 && !e->smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (e->nrcpts >= s->conf->max_rcpts) {
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (rcpt_policy(s, &pc.addr, user, sizeof(user)) == -1) {
		/* dictionary attacks: 550, and past the bound 421 */
		if (client_invalid_recipient(&s->client,
		    s->auth_user != NULL)) {
			reply(s, "421 4.7.0 %s Error: too many invalid "
			    "recipients", s->conf->hostname);
			close_after_reply(s);
		}
		return;
	}
	if (pc.addr.domain[0] == '\0')
		snprintf(addr, sizeof(addr), "postmaster");
	else if (smtp_addr_format(&pc.addr, addr, sizeof(addr)) == -1) {
		reply(s, "501 5.1.3 Address too long");
		return;
	}
	/* a duplicate is collapsed: the first one's DSN parameters stay */
	if (envelope_add_rcpt(e, addr)) {
		e->rcpts[e->nrcpts - 1].notify = dsn.notify;
		envelope_set(&e->rcpts[e->nrcpts - 1].orcpt, dsn.orcpt);
	}
	enter_state(s, SMTP_S_RCPT);
	reply(s, "250 2.1.5 Ok");
}

/* protocol_name - RFC 3848 "with" keyword: ESMTP, ESMTPS, ESMTPSA... */
static const char *
protocol_name(const struct smtp_session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->tls)
		return s->auth_user ? "ESMTPSA" : "ESMTPS";
	return s->auth_user ? "ESMTPA" : "ESMTP";
}

/* received_header - the trace line of RFC 5321 4.4, first in the content;
 * the TLS parameters in a comment, the authenticated user never */
static void
received_header(struct smtp_session *s, struct buf *b)
{
	const struct envelope *e = &s->txn->env;
	char date[64];

	util_rfc5322_date(util_now_ms() / 1000, date, sizeof(date));
	buf_printf(b, "Received: from %s (%s [%s])\r\n\tby %s (tern) with "
	    "%s", s->helo, s->name, s->addr, s->conf->hostname,
	    protocol_name(s));
	if (s->tls)
		buf_printf(b, " (%s)", s->tls_desc);
	buf_printf(b, " id %s", spool_tx_id(s->txn->tx));
	/* the for clause only with one recipient: it must not reveal Bcc */
	if (e->nrcpts == 1)
		buf_printf(b, "\r\n\tfor <%s>", e->rcpts[0].addr);
	buf_printf(b, ";\r\n\t%s\r\n", date);
}

/* content_begin - open the queue file and write the trace header; -1
 * with errno when the file cannot be created */
static int
content_begin(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	t->tx = spool_tx_begin();
	if (t->tx == NULL) {
		int err = errno;

		log_err("%s: cannot create a queue file: %s", s->tag,
		    strerror(err));
		errno = err; /* for the reply */
		return -1;
	}
	smtp_data_init(&t->data, s->conf->line_length);
	received_header(s, &t->out);
	t->content_at = t->out.len;
	/* RFC 6409 8: a submission server adds what the client left out */
	t->fix_headers = s->auth_user != NULL || s->listen->role != ROLE_SMTP;
	return 0;
}

/* add_headers - insert the missing Message-ID:/Date: at pos of t->out */
static void
add_headers(struct smtp_session *s, size_t pos)
{
	struct smtp_txn *t = s->txn;
	struct buf add;
	char date[64];

	t->fix_headers = 0;
	buf_init(&add);
	if (!(t->data.flags & SMTP_DATA_HAS_MSGID))
		buf_printf(&add, "Message-ID: <%s@%s>\r\n",
		    spool_tx_id(t->tx), s->conf->hostname);
	if (!(t->data.flags & SMTP_DATA_HAS_DATE)) {
		util_rfc5322_date(util_now_ms() / 1000, date, sizeof(date));
		buf_printf(&add, "Date: %s\r\n", date);
	}
	if (add.len > 0) {
		buf_reserve(&t->out, add.len);
		memmove(t->out.data + pos + add.len, t->out.data + pos,
		    t->out.len - pos + 1);
		memcpy(t->out.data + pos, add.data, add.len);
		t->out.len += add.len;
	}
	buf_free(&add);
}

/*
 * content_progress - after content arrived: add the submission headers as
 * soon as the end of the header section is known (holding the content until
 * then, up to SESSION_HEADER_HOLD), and hand full buffers to the spool
 */
static void
content_progress(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (t->fix_headers && t->data.header_end != UINT64_MAX)
		add_headers(s, t->content_at + (size_t)t->data.header_end);
	else if (t->fix_headers && t->out.len >= SESSION_HEADER_HOLD)
		add_headers(s, t->content_at);
	if (!t->fix_headers && t->out.len >= SESSION_FLUSH_AT)
		content_flush(t, s->conf->message_size);
}

/* content_headers_last - a message that ended inside its header section
 * gets the missing fields at its end */
static void
content_headers_last(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (!t->fix_headers)
		return;
	if (t->out.len > t->content_at && t->out.data[t->out.len - 1] != '\n')
		buf_puts(&t->out, "\r\n");
	add_headers(s, t->out.len);
}

/* content_flush - hand t->out to the spool unless the message is refused */
static void
content_flush(struct smtp_txn *t, uint64_t limit)
{
	if (t->refusal == TXN_OK && t->data.octets > limit)
		t->refusal = TXN_TOO_BIG;
	if (t->refusal == TXN_OK &&
	    spool_tx_write(t->tx, t->out.data, t->out.len) == -1)
		t->refusal = TXN_WRITE_ERROR;
	buf_reset(&t->out);
}

/*
 * spool_error_reply - the reply owed for a spool failure err: out of
 * space (ENOSPC, EDQUOT) is 452 4.3.1 whichever step met it - the file
 * system decides whether that is a content write, the envelope or an
 * fsync - and anything else 451 4.3.0.
 */
static const char *
spool_error_reply(int err)
{
	if (spool_error_full(err))
		return "452 4.3.1 Insufficient system storage";
	return "451 4.3.0 Error: queue file write error";
}

static void
commit_done(int ok, int err, const char *qid, void *arg)
{
	struct smtp_session *s = arg;

	/* the queue process committed it and knows it (queue_commit.c) */
	if (ok)
		stats_add(STATS_RECEIVED, 1);
	if (s->dead) {
		if (ok)
			log_info("%s: queued, but the client left before the "
			    "reply", qid);
		session_free(s);
		return;
	}
	if (ok) {
		reply(s, "250 2.0.0 Ok: queued as %s", qid);
	} else {
		reply(s, "%s", spool_error_reply(err));
		log_err("%s: commit failed for a message from session %s: %s",
		    qid, s->sid, strerror(err));
	}
	txn_reset(s);
	set_timeout(s, s->conf->timeout_command_ms);
	session_input(s);
}

/* content_end - the whole message is in: refuse it or commit it */
static void
content_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct envelope *e = &t->env;
	const char *qid;

	content_headers_last(s);
	content_flush(t, s->conf->message_size);
	if (t->refusal == TXN_OK && (t->data.flags & SMTP_DATA_LONG_LINE))
		t->refusal = TXN_LONG_LINE;
	/* RFC 5321 6.3: a message that went round too often is a loop */
	if (t->refusal == TXN_OK &&
	    t->data.headers_received > s->conf->max_received)
		t->refusal = TXN_TOO_MANY_HOPS;
	switch (t->refusal) {
	case TXN_TOO_BIG:
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		break;
	case TXN_LONG_LINE:
		reply(s, "554 5.6.0 Message refused: a line is longer than "
		    "%zu octets", s->conf->line_length);
		break;
	case TXN_TOO_MANY_HOPS:
		reply(s, "554 5.4.6 Too many hops (%zu Received: headers, "
		    "a mail loop?)", t->data.headers_received);
		break;
	case TXN_WRITE_ERROR:
		reply(s, "%s", spool_error_reply(spool_tx_error(t->tx)));
		log_warn("%s: queue file write error: %s", spool_tx_id(t->tx),
		    strerror(spool_tx_error(t->tx)));
		break;
	case TXN_OK:
		break;
	}
	if (t->refusal != TXN_OK) {
		log_info("%s: message refused: %s", s->tag,
		    refusal_words[t->refusal]);
		txn_reset(s);
		set_timeout(s, s->conf->timeout_command_ms);
		return;
	}
	qid = spool_tx_id(t->tx);
	memcpy(e->id, qid, QID_SIZE);
	e->arrival = util_now_ms() / 1000;
	envelope_set(&e->helo, s->helo);
	envelope_set(&e->client_addr, s->addr);
	envelope_set(&e->client_name, s->name);
	envelope_set(&e->protocol, protocol_name(s));
	envelope_set(&e->auth_user, s->auth_user);
	e->size = spool_tx_size(t->tx);
	log_info("%s: session=%s, client=%s[%s], helo=%s, from=<%s>, "
	    "nrcpt=%zu, size=%llu%s%s", qid, s->sid, s->name, s->addr,
	    s->helo, e->sender, e->nrcpts, (unsigned long long)e->size,
	    s->auth_user != NULL ? ", sasl_username=" : "",
	    s->auth_user != NULL ? s->auth_user : "");
	enter_state(s, SMTP_S_COMMIT);
	spool_tx_commit(t->tx, e, commit_done, s);
	t->tx = NULL; /* the spool owns it now */
}

static void
cmd_data(struct smtp_session *s, struct smtp_cmd *cmd)
{
	if (cmd->arg[0] != '\0') {
		reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (content_begin(s) == -1) {
		reply(s, "%s", spool_error_reply(errno));
		return;
	}
	enter_state(s, SMTP_S_DATA);
	set_timeout(s, s->conf->timeout_data_ms);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* parse_bdat - "n" or "n LAST" */
static int
parse_bdat(const char *arg, uint64_t *n, int *last)
{
	char num[32];
	size_t len = strspn(arg, "0123456789");

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, arg, len);
	num[len] = '\0';
	if (smtp_parse_size_param(num, n) == -1)
		return -1;
	*last = 0;
	if (arg[len] == '\0')
		return 0;
	if (strcasecmp(arg + len, " LAST") != 0)
		return -1;
	*last = 1;
	return 0;
}

/*
 * cmd_bdat - RFC 3030: the chunk's octets follow the command at once, so
 * they are read (and dropped when refused) before any reply, even when the
 * command is out of sequence.
 */
static void
cmd_bdat(struct smtp_session *s, struct smtp_cmd *cmd)
{
	uint64_t n;
	int last;

	if (parse_bdat(cmd->arg, &n, &last) == -1) {
		reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return;
	}
	s->bdat_left = n;
	s->bdat_last = last;
	s->bdat_error = NULL;
	s->bdat_return = s->state;
	if (s->state != SMTP_S_RCPT && s->state != SMTP_S_CHUNKING) {
		/* the octets are swallowed, then 503 */
		s->bdat_error = s->state == SMTP_S_INIT ?
		    "503 5.5.1 Error: send HELO/EHLO first" :
		    "503 5.5.1 Error: need RCPT command";
	} else if (!s->txn->bdat_used) {
		if (content_begin(s) == -1)
			s->bdat_error = spool_error_reply(errno);
		s->txn->bdat_used = 1;
	}
	enter_state(s, SMTP_S_BDAT);
	set_timeout(s, s->conf->timeout_data_ms);
}

/* bdat_chunk_done - all octets of a chunk are in */
static void
bdat_chunk_done(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (s->bdat_error != NULL) {
		reply(s, "%s", s->bdat_error);
		enter_state(s, s->bdat_return);
		if (s->bdat_return == SMTP_S_RCPT ||
		    s->bdat_return == SMTP_S_CHUNKING)
			txn_reset(s); /* the transaction itself failed */
		set_timeout(s, s->conf->timeout_command_ms);
		return;
	}
	if (s->bdat_last) {
		content_end(s);
		return;
	}
	if (!t->fix_headers)
		content_flush(t, s->conf->message_size);
	enter_state(s, SMTP_S_CHUNKING);
	set_timeout(s, s->conf->timeout_command_ms);
	reply(s, "250 2.0.0 Ok: %llu octets received",
	    (unsigned long long)t->data.octets);
}

static void
cmd_rset(struct smtp_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	txn_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct smtp_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct smtp_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	client_behaved(&s->client);
	reply(s, "221 2.0.0 Bye");
	close_after_reply(s);
}

/* cmd_vrfy - RFC 5321 3.5.3: 252, never a hint whether the user exists */
static void
cmd_vrfy(struct smtp_session *s, struct smtp_cmd *cmd)
{
	if (cmd->arg[0] == '\0') {
		reply(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	reply(s, "252 2.5.2 Cannot VRFY user; send some mail and we will "
	    "try delivery");
}

static void
cmd_help(struct smtp_session *s, struct smtp_cmd *cmd)
{
	(void)cmd;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET "
	    "NOOP QUIT VRFY HELP");
}

static void
cmd_not_implemented(struct smtp_session *s, struct smtp_cmd *cmd)
{
	reply(s, "502 5.5.1 %s not implemented", cmd->name);
}

/* TLS */

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/* bev_enable - reading, and writing where the bufferevent writes (a new
 * bufferevent starts with writing enabled) */
static void
bev_enable(struct smtp_session *s)
{
	if (s->direct) {
		bufferevent_disable(s->bev, EV_WRITE);
		bufferevent_enable(s->bev, EV_READ);
	} else {
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	}
}

/* setup_bev - callbacks, the read-ahead bound and the command timeout */
static void
setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_READ_HIGH);
	set_timeout(s, s->conf->timeout_command_ms);
	s->direct = !s->tls;
	bev_enable(s);
}

static void
flush_unlink(struct smtp_session *s)
{
	if (s->flush_queued) {
		TAILQ_REMOVE(&flush_list, s, flush_link);
		s->flush_queued = 0;
	}
}

/*
 * reply_flush - write what the session has to say.  What the socket does
 * not take now (or an error) is left to the bufferevent, which writes it
 * when it can, or reports the error to event_cb.
 */
static void
reply_flush(struct smtp_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	int n;

	/* the bufferevent keeps the start of its output frozen so that only
	 * it drains it; this is its own writing, done earlier */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0) {
		n = evbuffer_write(out, bufferevent_getfd(s->bev));
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			break;
		}
	}
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0) {
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	if (s->state == SMTP_S_CLOSING)
		session_free(s);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s;

	(void)fd;
	(void)what;
	(void)arg;
	while ((s = TAILQ_FIRST(&flush_list)) != NULL) {
		flush_unlink(s);
		if (s->direct)
			reply_flush(s);
	}
}

/*
 * output_backlog - 1 when the client has more replies unread than
 * SESSION_WRITE_HIGH: input then waits (write_cb resumes it once they are
 * written).  Under STARTTLS this sees the plaintext in the filter's
 * output; the records under the filter stay below SESSION_WRITE_HIGH of
 * their own (start_tls).  Reading stops by itself when the read-ahead is
 * full.
 */
static int
output_backlog(struct smtp_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (evbuffer_get_length(out) <= SESSION_WRITE_HIGH)
		return 0;
	if (s->direct) {
		flush_unlink(s);
		reply_flush(s); /* not CLOSING here: s stays */
		if (evbuffer_get_length(out) <= SESSION_WRITE_HIGH)
			return 0;
	}
	s->write_wait = 1;
	bufferevent_enable(s->bev, EV_WRITE);
	return 1;
}

/* reply_flush_later - write the session's replies at the end of this turn
 * of the loop, with those of every other session that replied in it */
static void
reply_flush_later(struct smtp_session *s)
{
	if (!s->direct || s->flush_queued)
		return;
	if (flush_ev == NULL) {
		flush_ev = event_new(s->base, -1, 0, flush_cb, NULL);
		if (flush_ev == NULL)
			fatal("event_new failed");
	}
	TAILQ_INSERT_TAIL(&flush_list, s, flush_link);
	s->flush_queued = 1;
	event_active(flush_ev, 0, 0);
}

/*
 * start_tls - put TLS under the session (RFC 3207 4.2).  Whatever the
 * client sent after STARTTLS in plaintext is dropped unread, so it cannot
 * be taken for commands sent under TLS (CVE-2011-0411), and the session
 * starts over: the client must send EHLO again.
 */
static void
start_tls(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *f;
	SSL *ssl = SSL_new(s->env->tls);

	evbuffer_drain(in, evbuffer_get_length(in));
	if (ssl == NULL)
		fatal("SSL_new failed");
	/* the 220 is still on its way: from here on the bufferevent of the
	 * connection underneath writes it and everything after it */
	flush_unlink(s);
	s->direct = 0;
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	/* the filter encrypts only while the connection underneath holds
	 * less than this: what a client does not read waits as plaintext in
	 * the filter's output, where output_backlog sees it and takes no
	 * more commands (without the mark every reply would be encrypted at
	 * once into a buffer that nothing bounds) */
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, SESSION_WRITE_HIGH);
	f = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL)
		fatal("bufferevent_openssl_filter_new failed");
	/* the filter encrypts what reaches its output once per turn of the
	 * loop (a deferred callback), not at every evbuffer_add: the replies
	 * of a turn share a record instead of taking two each (the line and
	 * its CRLF) */
	evbuffer_defer_callbacks(bufferevent_get_output(f), s->base);
	s->bev = f;
	s->tls = 1;
	setup_bev(s);
	txn_free(s);
	free(s->helo);
	s->helo = xstrdup("unknown");
	s->esmtp = 0;
	enter_state(s, SMTP_S_INIT);
}

static void
cmd_starttls(struct smtp_session *s, struct smtp_cmd *cmd)
{
	if (s->env->tls == NULL) {
		reply(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (cmd->arg[0] != '\0') {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->tls) {
		reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	start_tls(s);
}

/* tls_established - the handshake is done: note what was agreed */
static void
tls_established(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	if (ssl == NULL || s->tls_desc[0] != '\0')
		return;
	tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
	log_info("%s: TLS established: %s", s->tag, s->tls_desc);
}

/* AUTH (RFC 4954) */

static void
hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	reply(s, "%s", s->held_reply);
	free(s->held_reply);
	s->held_reply = NULL;
	if (s->hold_close) {
		reply(s, "421 4.7.0 %s Error: too many failed logins",
		    s->conf->hostname);
		close_after_reply(s);
		return;
	}
	enter_state(s, s->hold_return);
	session_input(s);
}

/* hold_reply - answer after ms, reading nothing meanwhile (slows down
 * password guessing and bad commands: each failure of a session waits
 * longer), then go on in the state of now */
static void
hold_reply(struct smtp_session *s, int64_t ms, const char *text, int close)
{
	struct timeval tv = { .tv_sec = ms / 1000,
		.tv_usec = (ms % 1000) * 1000 };

	if (s->hold_ev == NULL)
		s->hold_ev = evtimer_new(s->base, hold_cb, s);
	free(s->held_reply);
	s->held_reply = xstrdup(text);
	s->hold_close = close;
	s->hold_return = s->state;
	enter_state(s, SMTP_S_HOLD);
	evtimer_add(s->hold_ev, &tv);
}

static void
auth_end(struct smtp_session *s)
{
	if (s->sasl != NULL) {
		auth_sasl_clear(s->sasl);
		free(s->sasl);
		s->sasl = NULL;
	}
	if (s->state == SMTP_S_AUTH)
		enter_state(s, SMTP_S_HELO);
}

/* auth_checked - authd's verdict on the credentials of auth_verdict */
static void
auth_checked(int ok, void *arg)
{
	struct smtp_session *s = arg;
	const struct conf *c = s->conf;
	char *user = s->checking;

	s->checking = NULL;
	if (s->dead) {
		free(user);
		session_free(s);
		return;
	}
	enter_state(s, SMTP_S_HELO);
	if (ok == 1) {
		s->auth_user = user;
		log_info("%s: authenticated as %s", s->tag, user);
		reply(s, "235 2.7.0 Authentication successful");
		session_input(s);
		return;
	}
	if (ok == -1) {
		free(user);
		reply(s, "454 4.7.0 Temporary authentication failure");
		session_input(s);
		return;
	}
	s->auth_fails++;
	auth_limiter_fail(s->env->limiter, s->addr, util_now_ms() / 1000);
	log_warn("%s: authentication failed for user %s (%u in this "
	    "session)", s->tag, user, s->auth_fails);
	free(user);
	hold_reply(s, (int64_t)s->auth_fails * SESSION_AUTH_DELAY_MS,
	    "535 5.7.8 Authentication credentials invalid",
	    s->auth_fails >= c->auth_failures);
}

/* auth_verdict - have authd check the credentials the exchange gave
 * (crypt takes tens of ms: the loop goes on meanwhile) */
static void
auth_verdict(struct smtp_session *s)
{
	s->checking = util_sanitise_dup(s->sasl->user, AUTH_NAME_MAX);
	authd_check(s->sasl->user, s->sasl->pass, auth_checked, s);
	auth_end(s);
	enter_state(s, SMTP_S_CHECK);
}

/* auth_step - act on what the SASL exchange says next */
static void
auth_step(struct smtp_session *s, enum auth_step st, const char *challenge)
{
	switch (st) {
	case AUTH_STEP_CHALLENGE:
		enter_state(s, SMTP_S_AUTH);
		reply(s, "334 %s", challenge);
		return;
	case AUTH_STEP_DONE:
		auth_verdict(s);
		return;
	case AUTH_STEP_BAD:
		reply(s, "501 5.5.2 Cannot decode the response");
		break;
	case AUTH_STEP_CANCEL:
		reply(s, "501 5.7.0 Authentication cancelled");
		break;
	case AUTH_STEP_MECH:
		reply(s, "504 5.5.4 Unrecognized authentication mechanism");
		break;
	}
	auth_end(s);
}

static void
cmd_auth(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct conf *c = s->conf;
	const char *challenge = "";

	if (!s->env->auth) {
		reply(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (s->auth_user != NULL) {
		reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (!s->tls) {
		reply(s, "538 5.7.11 Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (auth_limiter_count(s->env->limiter, s->addr,
	    util_now_ms() / 1000) >= c->auth_client_failures) {
		reply(s, "454 4.7.0 Too many failed logins from your address; "
		    "try again later");
		return;
	}
	s->sasl = xcalloc(1, sizeof(*s->sasl));
	auth_step(s, auth_sasl_start(s->sasl, cmd->arg, &challenge),
	    challenge);
}

/* auth_line - a SASL response line during an AUTH exchange */
static void
auth_line(struct smtp_session *s, const char *line)
{
	const char *challenge = "";

	auth_step(s, auth_sasl_next(s->sasl, line, &challenge), challenge);
}

#define ST_SESSION (ST(SMTP_S_INIT) | ST(SMTP_S_HELO) | ST(SMTP_S_MAIL) | \
	ST(SMTP_S_RCPT) | ST(SMTP_S_CHUNKING))

/* The command table: a verb is allowed only in its states, and every line
 * is bounded by its verb's limit before any parsing. */
static const struct verb_row {
	enum smtp_verb verb;
	unsigned states;
	size_t maxline; /* with CRLF */
	const char *need; /* why it is out of sequence */
	void (*fn)(struct smtp_session *, struct smtp_cmd *);
} verb_table[] = {
	{ SMTP_V_EHLO, ST_SESSION & ~ST(SMTP_S_CHUNKING), SMTP_LINE_MAX,
	    "finish the BDAT transfer first", cmd_ehlo },
	{ SMTP_V_HELO, ST_SESSION & ~ST(SMTP_S_CHUNKING), SMTP_LINE_MAX,
	    "finish the BDAT transfer first", cmd_helo_plain },
	{ SMTP_V_MAIL, ST(SMTP_S_HELO), SMTP_PARAM_LINE_MAX,
	    "send EHLO/HELO first, one MAIL per transaction", cmd_mail },
	{ SMTP_V_RCPT, ST(SMTP_S_MAIL) | ST(SMTP_S_RCPT), SMTP_PARAM_LINE_MAX,
	    "need MAIL command", cmd_rcpt },
	{ SMTP_V_DATA, ST(SMTP_S_RCPT), SMTP_LINE_MAX,
	    "need RCPT command (and no BDAT)", cmd_data },
	{ SMTP_V_BDAT, ST_SESSION, SMTP_LINE_MAX, NULL, cmd_bdat },
	{ SMTP_V_RSET, ST_SESSION, SMTP_LINE_MAX, NULL, cmd_rset },
	{ SMTP_V_NOOP, ST_SESSION, SMTP_LINE_MAX, NULL, cmd_noop },
	{ SMTP_V_QUIT, ST_SESSION, SMTP_LINE_MAX, NULL, cmd_quit },
	{ SMTP_V_VRFY, ST_SESSION, SMTP_LINE_MAX, NULL, cmd_vrfy },
	{ SMTP_V_EXPN, ST_SESSION, SMTP_LINE_MAX, NULL,
	    cmd_not_implemented },
	{ SMTP_V_HELP, ST_SESSION, SMTP_LINE_MAX, NULL, cmd_help },
	{ SMTP_V_STARTTLS, ST(SMTP_S_INIT) | ST(SMTP_S_HELO), SMTP_LINE_MAX,
	    "not inside a mail transaction", cmd_starttls },
	{ SMTP_V_AUTH, ST(SMTP_S_HELO), SMTP_AUTH_LINE_MAX,
	    "send EHLO first; not inside a mail transaction", cmd_auth },
};

static const struct verb_row *
verb_lookup(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(verb_table) / sizeof(verb_table[0]); i++)
		if (verb_table[i].verb == v)
			return &verb_table[i];
	return NULL;
}

/* handle_line - one complete command line, CRLF already removed */
static void
handle_line(struct smtp_session *s, char *line, size_t len)
{
	const struct verb_row *row;
	struct smtp_cmd cmd;
	char text[128];

	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) ||
	    memchr(line, '\n', len) != NULL) {
		error_reply(s, "500 5.5.2 Error: bare <CR>, <LF> or NUL in "
		    "command");
		return;
	}
	smtp_cmd_split(line, &cmd);
	row = verb_lookup(cmd.verb);
	if (row == NULL) {
		error_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (len + 2 > row->maxline) {
		error_reply(s, "500 5.5.2 Error: line too long");
		return;
	}
	if (!(row->states & ST(s->state))) {
		snprintf(text, sizeof(text), "503 5.5.1 Error: %s",
		    s->state == SMTP_S_INIT ? "send HELO/EHLO first" :
		    row->need ? row->need : "bad sequence");
		error_reply(s, text);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0 &&
	    client_pipelining_bad(&s->client, s->esmtp, cmd.name)) {
		reply(s, "554 5.5.1 %s Error: improper use of SMTP command "
		    "pipelining", s->conf->hostname);
		close_after_reply(s);
		return;
	}
	row->fn(s, &cmd);
}

/* read_line - take one line off the input; 1 with it, 0 when incomplete */
static int
read_line(struct smtp_session *s, struct evbuffer *in, size_t *lenp)
{
	struct evbuffer_ptr p;
	size_t avail = evbuffer_get_length(in), n;

	/* strict framing: a command ends only in CRLF (RFC 5321 2.3.8); a
	 * bare CR or LF stays inside the line and makes it invalid */
	p = evbuffer_search(in, "\r\n", 2, NULL);
	if (p.pos < 0) {
		if (s->discarding || avail > SMTP_AUTH_LINE_MAX) {
			/* no command is this long: drop it as it comes, but
			 * keep a last CR that may begin the ending CRLF */
			s->discarding = 1;
			evbuffer_drain(in, avail - 1);
		}
		return 0;
	}
	n = (size_t)p.pos + 2;
	if (s->discarding || n > SMTP_AUTH_LINE_MAX) {
		s->discarding = 0;
		evbuffer_drain(in, n);
		*lenp = SIZE_MAX;
		return 1;
	}
	evbuffer_remove(in, line_buf, n);
	line_buf[n] = '\0';
	*lenp = n;
	return 1;
}

static void
command_input(struct smtp_session *s, struct evbuffer *in)
{
	size_t n;

	if (!read_line(s, in, &n))
		return; /* a partial line: the deadline stays */
	command_ready(s); /* for the next one, after this one's reply */
	if (n == SIZE_MAX) {
		error_reply(s, "500 5.5.2 Error: line too long");
		return;
	}
	line_buf[n - 2] = '\0';
	if (s->state == SMTP_S_AUTH) {
		if (memchr(line_buf, '\0', n - 2) != NULL ||
		    strpbrk(line_buf, "\r\n") != NULL)
			auth_step(s, AUTH_STEP_BAD, "");
		else
			auth_line(s, line_buf);
		return;
	}
	handle_line(s, line_buf, n - 2);
}

/*
 * input_chunk - the first contiguous piece of input, without copying; 0
 * when there is none.  A TLS filter's buffer can begin with empty chains,
 * which are skipped (evbuffer_drain counts only real octets).
 */
static int
input_chunk(struct evbuffer *in, struct evbuffer_iovec *out)
{
	struct evbuffer_iovec v[8];
	int n = evbuffer_peek(in, -1, NULL, v, 8), i;
	size_t len = evbuffer_get_length(in);

	for (i = 0; i < n && i < 8; i++) {
		if (v[i].iov_len > 0) {
			*out = v[i];
			return 1;
		}
	}
	if (len == 0)
		return 0;
	/* more empty chains than we looked at: make the front contiguous */
	out->iov_len = len < 4096 ? len : 4096;
	out->iov_base = evbuffer_pullup(in, (ssize_t)out->iov_len);
	return out->iov_base != NULL;
}

/* data_input - feed DATA content; returns 0 when more input is needed */
static int
data_input(struct smtp_session *s, struct evbuffer *in)
{
	struct smtp_txn *t = s->txn;
	struct evbuffer_iovec v;
	size_t used;
	uint64_t octets = 0;
	int done = 0;

	while (!done && input_chunk(in, &v)) {
		used = smtp_data_feed(&t->data, v.iov_base, v.iov_len, &t->out,
		    &done);
		evbuffer_drain(in, used);
		octets += used;
		content_progress(s);
	}
	transfer_octets(s, octets);
	if (!done)
		return 0;
	content_end(s);
	return 1;
}

/* bdat_input - read the octets of the current chunk */
static int
bdat_input(struct smtp_session *s, struct evbuffer *in)
{
	struct smtp_txn *t = s->txn;
	struct evbuffer_iovec v;
	size_t n;
	uint64_t octets = 0;

	while (s->bdat_left > 0 && input_chunk(in, &v)) {
		n = v.iov_len;
		if (n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (s->bdat_error == NULL) {
			smtp_data_chunk(&t->data, v.iov_base, n);
			buf_append(&t->out, v.iov_base, n);
			content_progress(s);
		}
		evbuffer_drain(in, n);
		s->bdat_left -= n;
		octets += n;
	}
	transfer_octets(s, octets);
	if (s->bdat_left > 0)
		return 0;
	bdat_chunk_done(s);
	return 1;
}

/* session_input - process what has arrived, as far as the state allows */
static void
session_input(struct smtp_session *s)
{
	for (;;) {
		/* fetched anew: STARTTLS replaces the bufferevent */
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t before = evbuffer_get_length(in);
		enum smtp_state st = s->state;

		if (st != SMTP_S_CLOSING && output_backlog(s))
			return;
		switch (st) {
		case SMTP_S_GREET:
			/* without a greet pause (none on the listener, a
			 * trusted client, a pass), early input just waits */
			if (before == 0 || s->client.pause_ms <= 0)
				return;
			reply(s, "554 5.5.1 %s Error: talked before the "
			    "greeting", s->conf->hostname);
			log_info("%s: talked before the greeting, dropped",
			    s->tag);
			client_talked_first(&s->client);
			close_after_reply(s);
			return;
		case SMTP_S_COMMIT:
		case SMTP_S_CHECK:
		case SMTP_S_HOLD:
		case SMTP_S_CLOSING:
			return;
		case SMTP_S_DATA:
			if (!data_input(s, in))
				return;
			break;
		case SMTP_S_BDAT:
			if (!bdat_input(s, in))
				return;
			break;
		default:
			if (before == 0)
				return;
			command_input(s, in);
			if (evbuffer_get_length(in) == before &&
			    s->state == st)
				return; /* an incomplete line */
			break;
		}
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_input(arg);
}

/* flushed - 1 when the last reply has left, also through a STARTTLS
 * filter's underlying connection */
static int
flushed(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	    (under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

/*
 * tls_close_notify - once the last reply is in OpenSSL's hands, the
 * close_notify alert after it (RFC 8446 6.1, RFC 5246 7.2.1): without it
 * a client cannot tell our close from a cut connection.  The client's
 * own close_notify is not awaited, as the RFCs allow.  1 when sent (or
 * not to be sent: no TLS, no finished handshake, a fatal alert already
 * went), 0 when it must be tried again: the last reply is still being
 * encrypted, or the connection does not take the alert yet.
 */
static int
tls_close_notify(struct smtp_session *s)
{
	SSL *ssl;
	int r;

	if (!s->tls || s->tls_closed)
		return 1;
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return 0;
	ssl = bufferevent_openssl_get_ssl(s->bev);
	if (ssl == NULL || !SSL_is_init_finished(ssl)) {
		s->tls_closed = 1;
		return 1;
	}
	ERR_clear_error();
	r = SSL_shutdown(ssl);
	if (r < 0 && SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE)
		return 0;
	ERR_clear_error();
	s->tls_closed = 1;
	return 1;
}

/* closed_cleanly - closing: the last reply, and under TLS the
 * close_notify after it, have left */
static int
closed_cleanly(struct smtp_session *s)
{
	return tls_close_notify(s) && flushed(s);
}

static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct timeval tv = { 0, 20 * 1000 };

	(void)fd;
	(void)what;
	if (closed_cleanly(s) ||
	    util_mono_ms() - s->closing_since > SESSION_CLOSE_MS) {
		session_free(s);
		return;
	}
	evtimer_add(s->linger_ev, &tv);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	/* what reply_flush left is out: the next replies go direct again */
	if (s->direct)
		bufferevent_disable(bev, EV_WRITE);
	if (s->write_wait) {
		s->write_wait = 0;
		/* the commands that waited; a session closed meanwhile
		 * (a timeout) goes on to be freed below */
		if (s->state != SMTP_S_CLOSING) {
			session_input(s);
			return;
		}
	}
	if (s->state != SMTP_S_CLOSING)
		return;
	if (closed_cleanly(s)) {
		session_free(s);
		return;
	}
	/* a TLS filter hands its records to the connection underneath,
	 * whose writing we do not see, and the close_notify may have to
	 * wait for room: look again shortly */
	if (s->linger_ev == NULL)
		s->linger_ev = evtimer_new(s->base, linger_cb, s);
	linger_cb(-1, 0, s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->tls && s->state != SMTP_S_COMMIT &&
	    s->state != SMTP_S_CHECK && s->state != SMTP_S_CLOSING) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);
		char buf[256];

		if (e != 0) {
			ERR_error_string_n(e, buf, sizeof(buf));
			log_info("%s: TLS error: %s", s->tag, buf);
		}
		/* the alert OpenSSL wrote must still reach the client, and
		 * no close_notify follows it */
		s->tls_closed = 1;
		enter_state(s, SMTP_S_CLOSING);
		bufferevent_disable(bev, EV_READ);
		write_cb(bev, s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT && s->state != SMTP_S_CLOSING &&
	    s->state != SMTP_S_COMMIT && s->state != SMTP_S_CHECK &&
	    s->state != SMTP_S_HOLD) {
		if (flushed(s)) {
			/* a TLS filter's write timeout runs while its writing
			 * is enabled, also with nothing to write: not the
			 * client's doing (libevent disabled the events) */
			bev_enable(s);
			return;
		}
		log_info("%s: timeout writing to the client (it does not read "
		    "our replies), in state %s", s->tag,
		    state_names[s->state]);
		reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->conf->hostname);
		close_after_reply(s);
		/* the timeout disabled writing: the 421 must still go out
		 * (or the closing timeout end the session) */
		if (!s->direct)
			bufferevent_enable(bev, EV_WRITE);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (s->state == SMTP_S_COMMIT ||
	    s->state == SMTP_S_CHECK || s->state == SMTP_S_HOLD)) {
		bev_enable(s);
		return;
	}
	if (s->state == SMTP_S_COMMIT || s->state == SMTP_S_CHECK) {
		/* the commit or authd callback still holds s: it frees it */
		s->dead = 1;
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		return;
	}
	if (s->state == SMTP_S_DATA || s->state == SMTP_S_BDAT)
		log_info("%s: lost connection in state %s", s->tag,
		    state_names[s->state]);
	session_free(s);
}

/*
 * dnsbl_refuse - a client the blocklists list gets 554 instead of the
 * greeting (RFC 5321 3.1 allows it), naming the lists, as Postfix's
 * postscreen and reject_rbl_client name theirs
 */
static void
dnsbl_refuse(struct smtp_session *s)
{
	const char *names = dnsbl_names(s->dnsbl);

	reply(s, "554 5.7.1 %s Error: client [%s] blocked using %s",
	    s->conf->hostname, s->addr, names);
	log_info("%s: blocked using %s (weight %u, threshold %u)", s->tag,
	    names, dnsbl_score(s->dnsbl), s->conf->dnsbl_threshold);
	dnsbl_free(s->dnsbl);
	s->dnsbl = NULL;
	close_after_reply(s);
}

/*
 * greet - the greeting is due: the DNS lists' verdict from what has
 * answered (a list still silent lists nobody and is forgotten), then 220
 */
static void
greet(struct smtp_session *s)
{
	if (dnsbl_verdict(s->dnsbl) == DNSBL_LISTED) {
		dnsbl_refuse(s);
		return;
	}
	dnsbl_free(s->dnsbl);
	s->dnsbl = NULL;
	enter_state(s, SMTP_S_INIT);
	reply(s, "220 %s ESMTP tern", s->conf->hostname);
	session_input(s); /* what a patient client already sent */
}

static void
arm_greet_timer(struct smtp_session *s, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
		.tv_usec = (ms % 1000) * 1000 };

	evtimer_add(s->greet_ev, &tv);
}

/* greet_ready - the pause is over: greet, unless the client's name or a
 * DNS list may still answer within SESSION_DNS_WAIT_MS of the connection
 * (then greet_cb, name_cb or dnsbl_done greets) */
static void
greet_ready(struct smtp_session *s)
{
	int64_t waited = util_mono_ms() - s->connected;

	s->pause_done = 1;
	if ((s->dns != NULL || dnsbl_pending(s->dnsbl)) &&
	    waited < SESSION_DNS_WAIT_MS) {
		arm_greet_timer(s, SESSION_DNS_WAIT_MS - waited);
		return;
	}
	greet(s);
}

/*
 * greet_cb - the greeting waits for the greet pause, for the client's
 * name (so that the Received: line names it) and for the DNS lists, the
 * latter two at most SESSION_DNS_WAIT_MS from the connection.
 */
static void
greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->state != SMTP_S_GREET)
		return;
	greet_ready(s);
}

static void
session_free(struct smtp_session *s)
{
	if (s->state != SMTP_S_CLOSING || s->txn != NULL)
		log_debug("%s: disconnect in state %s", s->tag,
		    state_names[s->state]);
	/* a connection refused before its PROXY header was read never
	 * started a session: its refusal was logged */
	if (s->state != SMTP_S_PROXY)
		log_info("%s: disconnect from %s[%s]", s->tag, s->name,
		    s->addr);
	stats_session_close();
	flush_unlink(s);
	txn_free(s);
	client_leave(&s->client);
	dns_cancel(s->dns);
	dnsbl_free(s->dnsbl);
	if (s->greet_ev != NULL)
		event_free(s->greet_ev);
	if (s->deadline_ev != NULL)
		event_free(s->deadline_ev);
	if (s->hold_ev != NULL)
		event_free(s->hold_ev);
	if (s->linger_ev != NULL)
		event_free(s->linger_ev);
	if (s->proxy_ev != NULL)
		event_free(s->proxy_ev);
	buf_free(&s->proxy_in);
	free(s->held_reply);
	if (s->sasl != NULL) {
		auth_sasl_clear(s->sasl);
		free(s->sasl);
	}
	free(s->auth_user);
	free(s->checking);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	else
		close(s->fd);
	free(s->helo);
	free(s);
	nsessions--;
}

static void
name_cb(const char *name, void *arg)
{
	struct smtp_session *s = arg;

	s->dns = NULL;
	if (name != NULL) {
		util_sanitise(s->name, sizeof(s->name) - 1, name,
		    strlen(name));
		log_debug("%s: client name %s", s->tag, s->name);
	}
	if (s->state == SMTP_S_GREET && s->pause_done &&
	    !dnsbl_pending(s->dnsbl))
		greet(s);
}

/*
 * dnsbl_done - the DNS lists have their verdict.  Allowed: no greet
 * pause.  Listed: refused now, the pause would only cost us.  Passed:
 * the greeting goes out as it would have.
 */
static void
dnsbl_done(enum dnsbl_verdict v, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state != SMTP_S_GREET)
		return;
	if (v == DNSBL_LISTED) {
		dnsbl_refuse(s);
		return;
	}
	if (v == DNSBL_ALLOWED) {
		s->allowlisted = 1;
		s->client.pause_ms = 0; /* what it sends now is not early */
		log_info("%s: allowed by %s: no greet pause", s->tag,
		    dnsbl_names(s->dnsbl));
		greet_ready(s);
		return;
	}
	if (s->pause_done && s->dns == NULL)
		greet(s);
}

/* dnsbl_begin - ask the DNS lists about the client, unless it is in
 * trusted-networks */
static void
dnsbl_begin(struct smtp_session *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->peer;

	if (s->conf->ndnsbls == 0 || conf_is_trusted(s->conf, sa))
		return;
	s->dnsbl = dnsbl_start(s->conf, sa, dnsbl_done, s);
	if (s->dnsbl != NULL && !dnsbl_pending(s->dnsbl))
		dnsbl_done(dnsbl_verdict(s->dnsbl), s);
}

/* client_addr - printable address; IPv4-mapped IPv6 shown as IPv4 */
static void
client_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)outlen);
	} else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out,
		    (socklen_t)outlen);
	} else {
		inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)outlen);
	}
}

/* session_tag - what begins every line about s: its id and its client's
 * address, "SID client=ADDR" (tern(8), LOGGING) */
static void
session_tag(struct smtp_session *s)
{
	snprintf(s->tag, sizeof(s->tag), "%s client=%s", s->sid, s->addr);
}

/* session_bev - the connection's bufferevent: plain, or TLS from the
 * first byte on a submissions listener (RFC 8314 3.3) */
static struct bufferevent *
session_bev(struct smtp_session *s, int fd)
{
	SSL *ssl;

	if (s->listen->role != ROLE_SUBMISSIONS || s->env->tls == NULL)
		return bufferevent_socket_new(s->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	ssl = SSL_new(s->env->tls);
	if (ssl == NULL)
		fatal("SSL_new failed");
	s->tls = 1;
	return bufferevent_openssl_socket_new(s->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/*
 * session_start - what needs the client's address, once it is known: at
 * accept on an ordinary listener, after a valid PROXY header on a
 * proxy-from= one (s->peer and s->addr are then the client's).  Logs the
 * connection, applies the session limit, starts the client-name lookup
 * and the DNS lists, and arms the greet pause.
 */
static void
session_start(struct smtp_session *s)
{
	const struct conf *c = s->conf;

	if (s->via[0] != '\0')
		log_info("%s: connect from %s (PROXY from %s)", s->tag,
		    s->addr, s->via);
	else
		log_info("%s: connect from %s", s->tag, s->addr);
	if (nsessions > c->max_sessions) {
		reply(s, "421 4.7.0 %s Error: too many sessions",
		    c->hostname);
		log_warn("%s: session limit (%u) reached", s->tag,
		    c->max_sessions);
		close_after_reply(s);
		return;
	}
	if (client_admit(&s->client, c, s->listen,
	    (const struct sockaddr *)&s->peer, s->tag) != CLIENT_OK) {
		reply(s, "421 4.7.0 %s Error: too many connections from %s",
		    c->hostname, s->addr);
		close_after_reply(s);
		return;
	}
	s->greet_ev = evtimer_new(s->base, greet_cb, s);
	if (s->greet_ev == NULL)
		fatal("evtimer_new failed");
	s->dns = dns_client_name((const struct sockaddr *)&s->peer, name_cb,
	    s);
	if (s->state == SMTP_S_GREET)
		dnsbl_begin(s);
	if (s->state == SMTP_S_GREET && !s->pause_done)
		arm_greet_timer(s, s->client.pause_ms);
}

/* session_open - the connection gets its bufferevent (TLS first on a
 * submissions listener) and the session starts */
static void
session_open(struct smtp_session *s)
{
	s->state = SMTP_S_GREET;
	s->bev = session_bev(s, s->fd);
	if (s->bev == NULL)
		fatal("cannot create a bufferevent");
	s->connected = util_mono_ms();
	setup_bev(s);
	session_start(s);
}

/* ---- the PROXY header ---------------------------------------------------- */

static void proxy_cb(evutil_socket_t fd, short what, void *arg);

/* proxy_wait - wait for more of the header, until timeouts proxy= from
 * the connection (a deadline: a trickle of octets does not move it) */
static void
proxy_wait(struct smtp_session *s)
{
	int64_t left = s->connected + s->conf->timeout_proxy_ms -
	    util_mono_ms();
	struct timeval tv;

	if (left < 1)
		left = 1;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (event_add(s->proxy_ev, &tv) == -1)
		fatal("event_add failed");
}

/* proxy_refuse - no valid header: closed without a word (a balancer
 * does not read SMTP, and on a submissions listener TLS would come
 * first), and logged */
static void
proxy_refuse(struct smtp_session *s, const char *why)
{
	log_info("%s: PROXY header refused: %s", s->tag, why);
	session_free(s);
}

/*
 * proxy_apply - the header is read: the client's address replaces the
 * balancer's (LOCAL and UNKNOWN keep the balancer's: its own health
 * check), and the session starts as if the client had connected
 */
static void
proxy_apply(struct smtp_session *s, const struct proxy_header *h)
{
	event_free(s->proxy_ev);
	s->proxy_ev = NULL;
	buf_free(&s->proxy_in);
	snprintf(s->via, sizeof(s->via), "%s", s->addr);
	if (!h->local) {
		memset(&s->peer, 0, sizeof(s->peer));
		memcpy(&s->peer, &h->src, h->srclen);
		client_addr((const struct sockaddr *)&s->peer, s->addr,
		    sizeof(s->addr));
		session_tag(s);
	}
	log_debug("%s: PROXY v%d header from %s%s", s->tag, h->version,
	    s->via, h->local ? " (LOCAL: the balancer itself)" : "");
	session_open(s);
}

/*
 * proxy_cb - read the header out of the socket and not an octet more:
 * peek at what has come, and consume only what belongs to the header
 * (proxy_parse promises that of everything short of a complete one), so
 * the client's first octets - a TLS ClientHello on a submissions
 * listener - stay in the socket for the session.
 */
static void
proxy_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct proxy_header h;
	const char *why;
	size_t have = s->proxy_in.len, used;
	ssize_t n;
	enum proxy_status st;

	if ((what & EV_TIMEOUT) &&
	    util_mono_ms() - s->connected >= s->conf->timeout_proxy_ms) {
		proxy_refuse(s, "none within timeouts proxy= of the "
		    "connection");
		return;
	}
	n = recv(fd, line_buf, PROXY_HEADER_MAX - have, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		proxy_wait(s);
		return;
	}
	if (n <= 0) {
		proxy_refuse(s, n == 0 ? "connection closed first" :
		    strerror(errno));
		return;
	}
	buf_append(&s->proxy_in, line_buf, (size_t)n);
	st = proxy_parse((const unsigned char *)s->proxy_in.data,
	    s->proxy_in.len, &h, &used, &why);
	if (st == PROXY_BAD) {
		proxy_refuse(s, why);
		return;
	}
	/* consume the header's octets: all that came, or up to its end */
	if (st == PROXY_DONE)
		n = (ssize_t)(used - have);
	if (recv(fd, line_buf, (size_t)n, 0) != n) {
		proxy_refuse(s, "cannot read what was there");
		return;
	}
	if (st == PROXY_NEED) {
		proxy_wait(s);
		return;
	}
	proxy_apply(s, &h);
}

/* proxy_begin - a proxy-from= listener: the balancer must be one of
 * those listed, and its header comes before anything else */
static void
proxy_begin(struct smtp_session *s)
{
	const struct conf_listen *l = s->listen;

	if (!conf_net_match(l->proxy_from, l->nproxy_from,
	    (const struct sockaddr *)&s->peer)) {
		proxy_refuse(s, "the connection is not from proxy-from=");
		return;
	}
	s->proxy_ev = event_new(s->base, s->fd, EV_READ, proxy_cb, s);
	if (s->proxy_ev == NULL)
		fatal("event_new failed");
	proxy_wait(s);
}

void
smtp_session_new(const struct smtpd_env *env, struct event_base *base,
    int fd, const struct sockaddr *sa, socklen_t salen,
    const struct conf_listen *l)
{
	struct smtp_session *s;

	s = xcalloc(1, sizeof(*s));
	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	s->conf = env->conf;
	s->env = env;
	s->listen = l;
	s->base = base;
	s->fd = fd;
	buf_init(&s->proxy_in);
	client_addr(sa, s->addr, sizeof(s->addr));
	spool_qid_new(s->sid);
	session_tag(s);
	snprintf(s->name, sizeof(s->name), "unknown");
	s->helo = xstrdup("unknown");
	s->deadline_ev = evtimer_new(base, deadline_cb, s);
	if (s->deadline_ev == NULL)
		fatal("evtimer_new failed");
	nsessions++;
	stats_session_open();
	s->connected = util_mono_ms();
	if (l->nproxy_from > 0) {
		s->state = SMTP_S_PROXY;
		proxy_begin(s);
		return;
	}
	session_open(s);
}

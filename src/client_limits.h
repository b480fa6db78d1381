/*
 * client_limits.h - what tern remembers per client address: the sessions
 * and rates of each address (Postfix's anvil), the per-session error and
 * invalid-recipient bounds, and which clients sat through the greet pause
 * (postscreen's cache), kept in $home/state/smtpd/greet-pass across restarts.
 *
 * A client is its IPv4 address, or its IPv6 address cut to limits
 * client-ipv6-prefix= (a host on the internet gets a /64, not one
 * address).  The smtpd calls client_admit once per connection and the
 * small checks below from its command handlers; the session keeps a
 * struct client_state and hands it back at its end (client_leave).
 */
#ifndef TERN_CLIENT_LIMITS_H
#define TERN_CLIENT_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf;
struct conf_listen;
struct event_base;
struct client_entry;

/* idle addresses remembered besides those with sessions (their rates);
 * beyond it the one idle longest is forgotten */
#define CLIENT_IDLE_MAX 16384
/* an address with no session is forgotten this long after its last
 * event: every rate window it counted in has passed */
#define CLIENT_IDLE_MS (2 * 60 * 1000)
/* the window of the rates (client-connect-rate= ... "per minute") */
#define CLIENT_RATE_MS (60 * 1000)
/* the n-th bad command of a session is answered after n times this */
#define CLIENT_ERROR_DELAY_MS 250
/* clients remembered as having passed the greet pause; beyond it the
 * oldest pass is forgotten (that client waits once more) */
#define CLIENT_PASS_MAX 32768
/* the pass file is rewritten at most this often (and at exit) */
#define CLIENT_PASS_SAVE_MS (60 * 1000)
/* its name under $home/state/ */
#define CLIENT_PASS_FILE "greet-pass"

/* a client: its address family and its address cut to the prefix */
struct client_key {
	uint8_t family;  /* AF_INET or AF_INET6 */
	uint8_t prefix;  /* 32, or client-ipv6-prefix= */
	uint8_t addr[16];
	uint64_t hash;   /* keyed (SipHash): clients cannot aim at a bucket */
};

/* what the limits keep of one session */
struct client_state {
	const struct conf *conf;
	const struct conf_listen *listen;
	const char *addr;            /* the session's printable address */
	struct client_key key;
	struct client_entry *entry;  /* its address's counts; NULL: not
	                              * counted (trusted, or refused) */
	int trusted;                 /* in trusted-networks: exempt */
	int check_pipelining;        /* improper pipelining drops it */
	int earn;                    /* sits through the pause: a pass once
	                              * it behaves */
	int64_t pause_ms;            /* the greet pause it gets */
	unsigned errors;             /* bad commands so far */
	unsigned invalid_rcpts;      /* recipients refused so far */
};

/* the sliding count of one rate (pure; see client_rate_count) */
struct client_rate {
	uint32_t cur, prev; /* events in this window and the one before */
	int64_t start;      /* when this window began (monotonic ms) */
};

enum client_verdict {
	CLIENT_OK = 0,
	CLIENT_SESSIONS,    /* client-sessions= reached: 421 4.7.0 */
	CLIENT_CONNECT_RATE /* client-connect-rate= exceeded: 421 4.7.0 */
};

/*
 * client_limits_init - the tables of this smtpd: sized for limits
 * sessions=, the passes read from $home/state/smtpd/greet-pass (a file that
 * is not tern's, or cannot be read, is logged and left out).  base runs
 * the timer that writes the file back; NULL in unit tests.
 */
void client_limits_init(const struct conf *c, struct event_base *base);
/* client_limits_save - write the pass file now if it changed (at exit) */
void client_limits_save(void);
/* client_limits_handover - a new smtpd takes over (SIGHUP): write the
 * pass file now, and never again from this process */
void client_limits_handover(void);
/* client_limits_reset - forget everything (unit tests) */
void client_limits_reset(void);

/*
 * client_admit - a new connection from sa (printable: addr, kept by
 * the caller for the session) on listener l: counts it against its
 * address, decides its greet pause (none for trusted networks and for a
 * client that passed it within greet-pass=).  Anything but CLIENT_OK is
 * logged, naming the client and the limit; the session is then not
 * counted and must be refused with 421 4.7.0.
 */
enum client_verdict client_admit(struct client_state *cs,
    const struct conf *c, const struct conf_listen *l,
    const struct sockaddr *sa, const char *addr);
/* client_leave - the session ended (also after a refusal) */
void client_leave(struct client_state *cs);

/* client_message - a MAIL command: -1 (logged) over client-message-rate=
 * of its address; authenticated and trusted clients are not counted */
int client_message(struct client_state *cs, int authenticated);
/* client_recipient - a RCPT command: -1 (logged) over
 * client-recipient-rate=; authenticated and trusted are not counted */
int client_recipient(struct client_state *cs, int authenticated);
/* client_invalid_recipient - a recipient was refused: 1 (logged) when
 * that makes client-invalid-recipients= of the session (it must end with
 * 421); authenticated and trusted clients are not counted */
int client_invalid_recipient(struct client_state *cs, int authenticated);
/* client_error - a bad command: how long to hold its reply (ms), or -1
 * (logged) when it is the client-errors=th and the session must end */
int64_t client_error(struct client_state *cs);

/*
 * client_pipelining_bad - a command line was read with more octets
 * behind it: 1 (logged, the pass forgotten) when that is improper on
 * this listener, i.e. the server has not offered PIPELINING (before
 * the reply to EHLO, or after HELO)
 */
int client_pipelining_bad(struct client_state *cs, int pipelining,
    const char *verb);
/* client_talked_first - the client spoke before the greeting: its pass,
 * if any, is forgotten */
void client_talked_first(struct client_state *cs);
/* client_behaved - the client sat through the pause and sent MAIL or
 * QUIT without improper pipelining: remember its pass */
void client_behaved(struct client_state *cs);

/* pure helpers (client_key.c) */

/* the longest line of the pass file: "pass ADDR/128 TIME" */
#define CLIENT_PASS_LINE_MAX 128

/* client_key_make - the key of sa: IPv4 (also IPv4-mapped IPv6) /32,
 * IPv6 cut to v6prefix; -1 for another family.  Its hash is left 0: the
 * tables set it */
int client_key_make(const struct sockaddr *sa, unsigned v6prefix,
    struct client_key *k);
/* client_key_format - "192.0.2.1/32", "2001:db8::/64" */
void client_key_format(const struct client_key *k, char *out, size_t len);
/* client_pass_format - the line (without LF) of the pass file for k,
 * passed at earned (unix seconds): "pass 192.0.2.1/32 1764950000" */
void client_pass_format(const struct client_key *k, int64_t earned,
    char *out, size_t len);
/* client_pass_parse - one line of the pass file (without LF) into k and
 * *earned; -1 unless it is exactly what client_pass_format writes */
int client_pass_parse(const char *line, struct client_key *k,
    int64_t *earned);
/* client_rate_count - events of r within the window before now, the
 * window before it weighted by how much of it still lies in that span
 * (a sliding window in two counters) */
uint32_t client_rate_count(struct client_rate *r, int64_t now);
/* client_rate_add - one more event at now */
void client_rate_add(struct client_rate *r, int64_t now);

#endif

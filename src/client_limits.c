/*
 * client_limits.c - per-client bookkeeping of the smtpd: sessions and
 * rates per address (what Postfix's anvil(8) keeps), the bounds on a
 * session's bad commands and refused recipients, and the memory of the
 * greet pause (what postscreen's cache keeps for its pregreet test).
 *
 * The one idea: two bounded tables keyed by the client (IPv4 address, or
 * IPv6 address cut to client-ipv6-prefix=), each a hash index plus a list
 * in the order entries are to be forgotten, so that every connection costs
 * O(1) and memory never grows past a cap.
 *
 * - Addresses: an entry per address with sessions, and up to
 *   CLIENT_IDLE_MAX more without (kept for their rates, forgotten
 *   CLIENT_IDLE_MS after their last event).  Entries with sessions are
 *   never forgotten; there are at most limits sessions= of them, because
 *   the session limit is checked first.  When the idle ones are at their
 *   cap, the one idle longest is forgotten: its rates start again from
 *   nothing (an attacker with more addresses than the cap could make us
 *   forget its own counts; its sessions still count).
 * - Passes: up to CLIENT_PASS_MAX clients that sat through the greet
 *   pause and behaved, with the time they did; the oldest is forgotten
 *   first.  The pass is not renewed by a connection that skipped the
 *   pause (as postscreen's greet TTL): after greet-pass= the client waits
 *   once more.  The table is written to $home/state/smtpd/greet-pass (a
 *   temporary file, named with the pid, renamed over it, so a reader
 *   sees the old or the new file, never half of one; the last line
 *   counts the entries, so a file cut short is recognised) when it
 *   changed, at most every CLIENT_PASS_SAVE_MS, at exit and at a SIGHUP
 *   handover, and read at start.  It is not fsync'd: after a power cut
 *   the passes of the last minute, or the file, may be gone, and those
 *   clients wait once more; that is all.
 *
 * The buckets are chosen by SipHash with a key drawn at start (OpenSSL's
 * EVP_MAC), so that a client with many addresses cannot pile its
 * entries into one chain.  The tables are hand-written: a hash index of
 * fixed-size keys with one list is some fifty lines, and libevent keeps
 * its own hash table private.
 *
 * Rates are kept as a sliding window in two counters (struct
 * client_rate): the events of this minute plus those of the minute
 * before, weighted by how much of it still lies within the last 60 s.
 * Those, the keys and the lines of the pass file are pure, in
 * client_key.c (unit tests, fuzz/fuzz_client_pass.c).
 */
#include "client_limits.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "conf.h"
#include "util.h"

/* refusals of one client by one limit are logged at most this often (a
 * client hammering at a limit would write a line per attempt), the next
 * line counting those left out */
#define CLIENT_LOG_MS 10000

/* the limits whose refusals are logged per client */
enum refusal { REF_CONNECT, REF_SESSIONS, REF_MESSAGE, REF_RCPT, REF_N };

struct refusal_log {
	int64_t at;      /* last line (monotonic ms); 0: none yet */
	unsigned since;  /* refusals not logged since */
};

/* one entry of a hash index */
struct knode {
	struct knode *next;
	struct client_key key;
};

struct kmap {
	struct knode **v;
	size_t mask; /* buckets - 1, a power of two less one */
};

struct client_entry {
	struct knode node; /* first: the index holds these */
	TAILQ_ENTRY(client_entry) idle; /* on the idle list: no session */
	unsigned sessions;
	int64_t used; /* last event (monotonic ms) */
	struct client_rate connects, messages, rcpts;
	struct refusal_log logged[REF_N];
};

struct pass_entry {
	struct knode node;
	TAILQ_ENTRY(pass_entry) order; /* oldest first */
	int64_t earned; /* unix seconds */
};

static struct {
	const struct conf *conf;
	EVP_MAC_CTX *mac;
	struct kmap clients;
	TAILQ_HEAD(, client_entry) idle;
	size_t nidle;
	struct kmap passes;
	TAILQ_HEAD(, pass_entry) order;
	size_t npasses;
	int64_t pass_ttl_ms; /* the longest greet-pass= of the listeners */
	char *path, *tmp;    /* the pass file and its temporary */
	int dirty;
	int64_t saved_at;    /* monotonic ms */
	struct event *save_ev;
} cl = { .idle = TAILQ_HEAD_INITIALIZER(cl.idle),
	.order = TAILQ_HEAD_INITIALIZER(cl.order) };

/* ---- keys and the hash index ---------------------------------------- */

/* key_hash - SipHash-2-4 of the key's octets under this process's key */
static uint64_t
key_hash(const struct client_key *k)
{
	EVP_MAC_CTX *c;
	unsigned char out[8];
	size_t outlen = 0;
	uint64_t h = 0;

	if (cl.mac == NULL)
		return (uint64_t)k->addr[15] * 31 + k->addr[3]; /* not ready */
	c = EVP_MAC_CTX_dup(cl.mac);
	if (c == NULL || EVP_MAC_update(c, &k->family, 2 + sizeof(k->addr)) !=
	    1 || EVP_MAC_final(c, out, &outlen, sizeof(out)) != 1)
		fatal("SipHash failed");
	EVP_MAC_CTX_free(c);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* mac_init - SipHash with a random key */
static void
mac_init(void)
{
	EVP_MAC *mac;
	unsigned char key[16];
	size_t size = 8;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end()
	};

	if (cl.mac != NULL)
		return;
	mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	if (mac == NULL || RAND_bytes(key, sizeof(key)) != 1)
		fatal("cannot set up SipHash");
	cl.mac = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (cl.mac == NULL || EVP_MAC_init(cl.mac, key, sizeof(key),
	    params) != 1)
		fatal("cannot set up SipHash");
}

static int
key_same(const struct client_key *a, const struct client_key *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static void
kmap_init(struct kmap *m, size_t want)
{
	size_t n = 1024;

	while (n < want && n < ((size_t)1 << 20))
		n <<= 1;
	m->v = xcalloc(n, sizeof(*m->v));
	m->mask = n - 1;
}

/* kmap_link - the link that points at k's node, or the NULL that ends
 * its chain */
static struct knode **
kmap_link(struct kmap *m, const struct client_key *k)
{
	struct knode **pp = &m->v[k->hash & m->mask];

	while (*pp != NULL && !key_same(&(*pp)->key, k))
		pp = &(*pp)->next;
	return pp;
}

static struct knode *
kmap_find(struct kmap *m, const struct client_key *k)
{
	return m->v == NULL ? NULL : *kmap_link(m, k);
}

static void
kmap_add(struct kmap *m, struct knode *n)
{
	struct knode **pp = &m->v[n->key.hash & m->mask];

	n->next = *pp;
	*pp = n;
}

static void
kmap_del(struct kmap *m, struct knode *n)
{
	struct knode **pp = kmap_link(m, &n->key);

	if (*pp == n)
		*pp = n->next;
}

/* rate_over - count one event; 1 when that makes more than limit in the
 * last minute (0: no limit).  Refused events count too, as anvil's: a
 * client that keeps hammering stays refused. */
static int
rate_over(struct client_rate *r, unsigned limit, int64_t now)
{
	client_rate_add(r, now);
	return limit != 0 && client_rate_count(r, now) > limit;
}

/* ---- the address table ---------------------------------------------- */

/* refusal_log_due - may a refusal of e by limit which be logged now?
 * *skipped is then how many were not, since the last line */
static int
refusal_log_due(struct client_entry *e, enum refusal which, int64_t now,
    unsigned *skipped)
{
	struct refusal_log *r = &e->logged[which];

	if (r->at != 0 && now - r->at < CLIENT_LOG_MS) {
		r->since++;
		return 0;
	}
	*skipped = r->since;
	r->since = 0;
	r->at = now;
	return 1;
}

static void
entry_forget(struct client_entry *e)
{
	TAILQ_REMOVE(&cl.idle, e, idle);
	cl.nidle--;
	kmap_del(&cl.clients, &e->node);
	free(e);
}

/* idle_reap - forget idle entries whose rates are all past (a few per
 * call: O(1)), and the one idle longest when the idle ones are at their
 * cap */
static void
idle_reap(int64_t now)
{
	struct client_entry *e;
	int i;

	for (i = 0; i < 2; i++) {
		e = TAILQ_FIRST(&cl.idle);
		if (e == NULL || now - e->used < CLIENT_IDLE_MS)
			break;
		entry_forget(e);
	}
	if (cl.nidle >= CLIENT_IDLE_MAX)
		entry_forget(TAILQ_FIRST(&cl.idle));
}

/* entry_get - the entry of k, made when missing; taken off the idle list
 * (the caller adds a session) */
static struct client_entry *
entry_get(const struct client_key *k, int64_t now)
{
	struct client_entry *e;

	if (cl.clients.v == NULL)
		kmap_init(&cl.clients, CLIENT_IDLE_MAX +
		    (cl.conf ? cl.conf->max_sessions : 0));
	e = (struct client_entry *)kmap_find(&cl.clients, k);
	if (e != NULL && e->sessions == 0) {
		TAILQ_REMOVE(&cl.idle, e, idle);
		cl.nidle--;
	}
	if (e != NULL)
		return e;
	idle_reap(now);
	e = xcalloc(1, sizeof(*e));
	e->node.key = *k;
	e->connects.start = e->messages.start = e->rcpts.start = now;
	kmap_add(&cl.clients, &e->node);
	return e;
}

/* entry_put - done with e (from entry_get): back on the idle list when
 * no session holds it */
static void
entry_put(struct client_entry *e, int64_t now)
{
	e->used = now;
	if (e->sessions > 0)
		return;
	TAILQ_INSERT_TAIL(&cl.idle, e, idle);
	cl.nidle++;
}

/* ---- passes ----------------------------------------------------------- */

static void
pass_forget(struct pass_entry *p)
{
	TAILQ_REMOVE(&cl.order, p, order);
	cl.npasses--;
	kmap_del(&cl.passes, &p->node);
	free(p);
}

/* pass_add - remember k as having passed at earned (unix seconds); the
 * list stays in the order of earned as long as callers add in it */
static void
pass_add(const struct client_key *k, int64_t earned)
{
	struct pass_entry *p;

	if (cl.passes.v == NULL)
		kmap_init(&cl.passes, CLIENT_PASS_MAX);
	p = (struct pass_entry *)kmap_find(&cl.passes, k);
	if (p != NULL)
		pass_forget(p);
	if (cl.npasses >= CLIENT_PASS_MAX)
		pass_forget(TAILQ_FIRST(&cl.order));
	p = xcalloc(1, sizeof(*p));
	p->node.key = *k;
	p->earned = earned;
	kmap_add(&cl.passes, &p->node);
	TAILQ_INSERT_TAIL(&cl.order, p, order);
	cl.npasses++;
}

/* pass_valid - 1 when k passed within ttl_ms before now (unix ms) */
static int
pass_valid(const struct client_key *k, int64_t ttl_ms, int64_t now)
{
	struct pass_entry *p = (struct pass_entry *)kmap_find(&cl.passes, k);

	if (p == NULL || ttl_ms <= 0)
		return 0;
	/* a clock set back makes a pass from the future: not trusted */
	return p->earned * 1000 <= now + CLIENT_PASS_SAVE_MS &&
	    now - p->earned * 1000 < ttl_ms;
}

/* pass_load_fp - read the pass file; -1 with what is wrong in why (the
 * passes read so far are kept: every one of them is a well-formed line) */
static int
pass_load_fp(FILE *fp, const char **why)
{
	char line[CLIENT_PASS_LINE_MAX + 2];
	struct client_key k;
	int64_t earned, last = 0, now = util_now_ms();
	unsigned long long n = 0, end;
	char extra;
	size_t len;

	*why = "no \"version 1\" line";
	if (fgets(line, sizeof(line), fp) == NULL ||
	    strcmp(line, "version 1\n") != 0)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		len = strlen(line);
		*why = "a line too long or not ended";
		if (len == 0 || line[len - 1] != '\n')
			return -1;
		line[len - 1] = '\0';
		if (sscanf(line, "end %llu%c", &end, &extra) == 1) {
			*why = "the end line does not count the entries";
			return end == n && fgetc(fp) == EOF ? 0 : -1;
		}
		*why = "a line that is no pass, or passes out of order";
		if (client_pass_parse(line, &k, &earned) == -1 ||
		    earned < last || ++n > CLIENT_PASS_MAX)
			return -1;
		k.hash = key_hash(&k);
		last = earned;
		/* another client-ipv6-prefix= since: not the same clients */
		if (k.family == AF_INET6 &&
		    k.prefix != cl.conf->client_ipv6_prefix)
			continue;
		if (now - earned * 1000 < cl.pass_ttl_ms)
			pass_add(&k, earned);
	}
	*why = "no end line (cut short)";
	return -1;
}

/* pass_load - the passes of the file, if there is one */
static void
pass_load(void)
{
	FILE *fp = fopen(cl.path, "re");
	const char *why = NULL;

	if (fp == NULL) {
		if (errno != ENOENT)
			log_warn("%s: %s; no client passes the greet pause "
			    "from memory", cl.path, strerror(errno));
		return;
	}
	if (pass_load_fp(fp, &why) == -1) {
		log_warn("%s: not a greet-pass file of tern (%s); its passes "
		    "are not used and it will be rewritten", cl.path, why);
		client_limits_reset();
		cl.dirty = 1;
	}
	fclose(fp);
	log_info("greet-pass: %zu client(s) remembered from %s",
	    cl.npasses, cl.path);
}

/* pass_write - the table into fd: -1 with errno on failure */
static int
pass_write(int fd)
{
	struct pass_entry *p;
	struct buf b;
	char line[CLIENT_PASS_LINE_MAX + 1];
	int64_t now = util_now_ms();
	size_t n = 0;
	int r;

	buf_init(&b);
	buf_puts(&b, "version 1\n");
	TAILQ_FOREACH(p, &cl.order, order) {
		if (now - p->earned * 1000 >= cl.pass_ttl_ms)
			continue;
		client_pass_format(&p->node.key, p->earned, line,
		    sizeof(line));
		buf_printf(&b, "%s\n", line);
		n++;
	}
	buf_printf(&b, "end %zu\n", n);
	r = util_write_all(fd, b.data, b.len);
	buf_free(&b);
	return r;
}

void
client_limits_save(void)
{
	int fd, err;

	if (!cl.dirty || cl.path == NULL)
		return;
	cl.dirty = 0;
	cl.saved_at = util_mono_ms();
	fd = open(cl.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_warn("%s: %s", cl.tmp, strerror(errno));
		return;
	}
	if (pass_write(fd) == -1 || close(fd) == -1) {
		err = errno;
		unlink(cl.tmp);
		log_warn("%s: cannot write: %s", cl.tmp, strerror(err));
		return;
	}
	if (rename(cl.tmp, cl.path) == -1) {
		log_warn("rename %s: %s", cl.tmp, strerror(errno));
		unlink(cl.tmp);
	}
}

void
client_limits_handover(void)
{
	client_limits_save();
	free(cl.path);
	cl.path = NULL; /* the new smtpd writes the file from now on */
}

static void
save_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	client_limits_save();
}

/* pass_changed - write the file soon, at most every CLIENT_PASS_SAVE_MS */
static void
pass_changed(void)
{
	int64_t wait;
	struct timeval tv;

	cl.dirty = 1;
	if (cl.save_ev == NULL || evtimer_pending(cl.save_ev, NULL))
		return;
	wait = cl.saved_at + CLIENT_PASS_SAVE_MS - util_mono_ms();
	if (wait < 0 || cl.saved_at == 0)
		wait = 0;
	tv.tv_sec = wait / 1000;
	tv.tv_usec = (wait % 1000) * 1000;
	evtimer_add(cl.save_ev, &tv);
}

/* ---- the interface ---------------------------------------------------- */

/* tmp_sweep - remove the temporary files a crash in the middle of a save
 * left (a save in flight in the smtpd handing over to this one fails and
 * says so: never a half file) */
static void
tmp_sweep(const char *home)
{
	char *dir = xasprintf("%s/state", home);
	const char *prefix = CLIENT_PASS_FILE ".tmp.";
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	if (d != NULL)
		closedir(d);
	free(dir);
}

void
client_limits_reset(void)
{
	while (!TAILQ_EMPTY(&cl.idle))
		entry_forget(TAILQ_FIRST(&cl.idle));
	while (!TAILQ_EMPTY(&cl.order))
		pass_forget(TAILQ_FIRST(&cl.order));
}

void
client_limits_init(const struct conf *c, struct event_base *base)
{
	size_t i;

	cl.conf = c;
	mac_init();
	cl.pass_ttl_ms = 0;
	for (i = 0; i < c->nlistens; i++)
		if (c->listens[i].greet_pause_ms > 0 &&
		    c->listens[i].greet_pass_ms > cl.pass_ttl_ms)
			cl.pass_ttl_ms = c->listens[i].greet_pass_ms;
	free(cl.path);
	free(cl.tmp);
	cl.path = xasprintf("%s/state/smtpd/%s", c->home, CLIENT_PASS_FILE);
	/* a name of its own: the smtpd it hands over to (SIGHUP) may write
	 * at the same moment */
	cl.tmp = xasprintf("%s.tmp.%ld", cl.path, (long)getpid());
	tmp_sweep(c->home);
	if (base != NULL && cl.save_ev == NULL) {
		cl.save_ev = evtimer_new(base, save_cb, NULL);
		if (cl.save_ev == NULL)
			fatal("evtimer_new failed");
	}
	if (cl.pass_ttl_ms > 0)
		pass_load();
}

/* admit_pause - the greet pause of a client that may be counted */
static void
admit_pause(struct client_state *cs, const struct conf_listen *l,
    const char *key)
{
	cs->pause_ms = l->greet_pause_ms;
	if (cs->pause_ms <= 0)
		return;
	cs->check_pipelining = l->pipelining_drop;
	if (pass_valid(&cs->key, l->greet_pass_ms, util_now_ms())) {
		log_info("%s: passed the greet pause before (%s): greeted at "
		    "once", cs->addr, key);
		cs->pause_ms = 0;
		return;
	}
	cs->earn = l->greet_pass_ms > 0;
}

enum client_verdict
client_admit(struct client_state *cs, const struct conf *c,
    const struct conf_listen *l, const struct sockaddr *sa, const char *addr)
{
	struct client_entry *e;
	int64_t now = util_mono_ms();
	char key[INET6_ADDRSTRLEN + 8];
	uint32_t rate;
	unsigned skipped;

	memset(cs, 0, sizeof(*cs));
	cs->conf = c;
	cs->listen = l;
	cs->addr = addr;
	if (conf_is_trusted(c, sa) || client_key_make(sa,
	    c->client_ipv6_prefix, &cs->key) == -1) {
		cs->trusted = 1; /* never paused, never counted */
		return CLIENT_OK;
	}
	cs->key.hash = key_hash(&cs->key);
	client_key_format(&cs->key, key, sizeof(key));
	e = entry_get(&cs->key, now);
	e->used = now;
	if (rate_over(&e->connects, c->client_connect_rate, now)) {
		rate = client_rate_count(&e->connects, now);
		if (refusal_log_due(e, REF_CONNECT, now, &skipped))
			log_warn("%s: client-connect-rate=%u exceeded (%u "
			    "connections from %s in the last minute); refused "
			    "(and %u more since the last line)", addr,
			    c->client_connect_rate, rate, key, skipped);
		entry_put(e, now);
		return CLIENT_CONNECT_RATE;
	}
	if (c->client_sessions != 0 && e->sessions >= c->client_sessions) {
		if (refusal_log_due(e, REF_SESSIONS, now, &skipped))
			log_warn("%s: client-sessions=%u reached (%u sessions "
			    "from %s); refused (and %u more since the last "
			    "line)", addr, c->client_sessions, e->sessions, key,
			    skipped);
		entry_put(e, now);
		return CLIENT_SESSIONS;
	}
	e->sessions++;
	cs->entry = e;
	admit_pause(cs, l, key);
	return CLIENT_OK;
}

void
client_leave(struct client_state *cs)
{
	if (cs->entry != NULL) {
		cs->entry->sessions--;
		entry_put(cs->entry, util_mono_ms());
	}
	cs->entry = NULL;
}

/* counted_rate - count one event of a limited rate; -1 logged when over */
static int
counted_rate(struct client_state *cs, struct client_rate *r, unsigned limit,
    enum refusal which, const char *name, const char *what)
{
	int64_t now = util_mono_ms();
	char key[INET6_ADDRSTRLEN + 8];
	unsigned skipped;

	cs->entry->used = now;
	if (!rate_over(r, limit, now))
		return 0;
	if (!refusal_log_due(cs->entry, which, now, &skipped))
		return -1;
	client_key_format(&cs->key, key, sizeof(key));
	log_warn("%s: %s=%u exceeded (%u %s from %s in the last minute); "
	    "refused (and %u more since the last line)", cs->addr, name, limit,
	    client_rate_count(r, now), what, key, skipped);
	return -1;
}

int
client_message(struct client_state *cs, int authenticated)
{
	if (cs->entry == NULL || authenticated)
		return 0;
	return counted_rate(cs, &cs->entry->messages,
	    cs->conf->client_message_rate, REF_MESSAGE, "client-message-rate",
	    "messages");
}

int
client_recipient(struct client_state *cs, int authenticated)
{
	if (cs->entry == NULL || authenticated)
		return 0;
	return counted_rate(cs, &cs->entry->rcpts, cs->conf->client_rcpt_rate,
	    REF_RCPT, "client-recipient-rate", "recipients");
}

int
client_invalid_recipient(struct client_state *cs, int authenticated)
{
	if (cs->trusted || authenticated)
		return 0;
	if (++cs->invalid_rcpts < cs->conf->client_invalid_rcpts)
		return 0;
	log_warn("%s: client-invalid-recipients=%u reached: %u recipients "
	    "refused in this session; disconnecting", cs->addr,
	    cs->conf->client_invalid_rcpts, cs->invalid_rcpts);
	return 1;
}

int64_t
client_error(struct client_state *cs)
{
	if (++cs->errors < cs->conf->client_errors)
		return (int64_t)cs->errors * CLIENT_ERROR_DELAY_MS;
	log_warn("%s: client-errors=%u reached: too many bad commands in this "
	    "session; disconnecting", cs->addr, cs->conf->client_errors);
	return -1;
}

/* pass_drop - the client misbehaved: no pass, and the one it had goes */
static void
pass_drop(struct client_state *cs)
{
	struct pass_entry *p;

	cs->earn = 0;
	if (cs->trusted)
		return;
	p = (struct pass_entry *)kmap_find(&cl.passes, &cs->key);
	if (p != NULL) {
		pass_forget(p);
		pass_changed();
	}
}

int
client_pipelining_bad(struct client_state *cs, int pipelining,
    const char *verb)
{
	if (!cs->check_pipelining || pipelining)
		return 0;
	log_info("%s: improper pipelining: more commands sent behind %s "
	    "before its reply, without PIPELINING offered; dropped",
	    cs->addr, verb);
	pass_drop(cs);
	return 1;
}

void
client_talked_first(struct client_state *cs)
{
	pass_drop(cs);
}

void
client_behaved(struct client_state *cs)
{
	char key[INET6_ADDRSTRLEN + 8];
	char dur[32];

	if (!cs->earn)
		return;
	cs->earn = 0;
	pass_add(&cs->key, util_now_ms() / 1000);
	pass_changed();
	client_key_format(&cs->key, key, sizeof(key));
	conf_format_duration(cs->listen->greet_pass_ms, dur, sizeof(dur));
	log_info("%s: passed the greet pause; %s is greeted at once for %s",
	    cs->addr, key, dur);
}

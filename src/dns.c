/*
 * dns.c - libunbound on the libevent loop: forward-confirmed client names
 * and the addresses to deliver a destination's mail to.
 *
 * libunbound resolves in its own thread; ub_fd() becomes readable when
 * answers are ready and ub_process() runs their callbacks on our loop, so
 * every callback here runs on the loop and nothing blocks it.
 *
 * Client names are forward-confirmed (PTR, then A/AAAA of that name must
 * contain the address), as a name that does not map back proves nothing.
 *
 * Destinations follow RFC 5321 5.1: the MX records, sorted by preference
 * with equal preferences shuffled (so equal MX hosts share the load),
 * implicit MX when there is none, null MX (RFC 7505) refused; this host
 * and every host not more preferred than it dropped, nothing left being a
 * loop.  The A and AAAA records of all MX hosts are asked for at once.
 * "This host" is its name or an address of its interfaces, and counts
 * only for port 25: a route to another port of this host is another
 * service (tests deliver to loopback ports that way).
 *
 * libunbound gives up on a dead server only after minutes of retries;
 * every query here has its own timer (DNS_TIMEOUT_MS), after which it is
 * a temporary failure, or, when some MX hosts already have addresses,
 * delivered to those.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <unbound.h>

#include "dns.h"
#include "smtp_parse.h"
#include "util.h"

#define RR_A 1
#define RR_PTR 12
#define RR_MX 15
#define RR_AAAA 28
#define RR_CLASS_IN 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_REFUSED 5

#define DNS_TIMEOUT_MS 30000   /* one query, all its lookups together */
#define DNS_MX_RECORDS_MAX 100 /* MX records read from one answer */
#define DNS_MX_HOSTS_MAX 16    /* MX hosts whose addresses are looked up */
#define DNS_ADDR_MAX 8         /* addresses kept per host and family */
#define DNS_SMTP_PORT 25

enum dns_kind { DNS_Q_NAME, DNS_Q_TARGETS, DNS_Q_A };

/* one libunbound lookup of a query */
struct dns_sub {
	struct dns_query *q;
	size_t host;       /* index into q->mxs and q->addrs */
	int rrtype;
	int async_id;
	int pending;
};

/* what the A and AAAA lookups of one host found */
struct dns_addrs {
	unsigned char a6[DNS_ADDR_MAX][16];
	size_t n6;
	unsigned char a4[DNS_ADDR_MAX][4];
	size_t n4;
	int temp;          /* a lookup failed temporarily or timed out */
	int nxdomain;      /* the name does not exist */
};

struct dns_query {
	enum dns_kind kind;
	int reporting;         /* the callback runs: dns_cancel waits */
	struct event *timer;
	struct dns_sub first;  /* PTR, then A/AAAA; or the MX lookup */
	char name[SMTP_DOMAIN_MAX + 1];
	void *arg;
	/* client names */
	int family;
	unsigned char addr[16];
	dns_name_cb cb;
	/* targets */
	int port;
	int mx;
	int implicit;          /* no MX records: the name itself */
	int timed_out;
	dns_targets_cb tcb;
	/* A records */
	dns_a_cb acb;
	struct dns_mx *mxs;    /* the hosts, in the order to try */
	struct dns_addrs *addrs; /* parallel to mxs */
	size_t nhosts;
	struct dns_sub *subs;  /* 2 per host: AAAA and A */
	size_t nsubs;
	size_t pending;
};

static struct ub_ctx *ctx;
static struct event *ub_ev;
static struct event_base *dns_base;
static int64_t dns_timeout_ms = DNS_TIMEOUT_MS;

/* this host, for MX lists (dns_set_self) */
static char *self_name;
static struct sockaddr_storage *self_addrs;
static size_t nself_addrs;

static void
ub_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (ub_process(ctx) != 0)
		log_warn("dns: processing answers failed");
}

/*
 * libunbound answers some special-use zones itself (RFC 6761, RFC 6303)
 * and never asks the server about them.  tern is a stub in front of a
 * recursive resolver, which knows those zones as well; what it must not
 * hide are the ones a private network or a test lab serves itself: the
 * reverse zones of private and documentation addresses
 * (unblock-lan-zones) and "test." (removed once the context is set up:
 * removing a zone finalizes it).  localhost, onion. and invalid. stay
 * answered here.
 */
static const char *const dns_lab_zones[] = {
	"test.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
	"113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.", NULL,
};

/* unbound_unblock - leave the zones above to the server; 0 or an error */
static int
unbound_unblock(void)
{
	size_t i;
	int err;

	for (i = 0; dns_lab_zones[i] != NULL; i++)
		if ((err = ub_ctx_zone_remove(ctx, dns_lab_zones[i])) != 0)
			return err;
	return 0;
}

/*
 * dns_init - a libunbound context on base.  With resolver ("IP" or
 * "IP@PORT", tern.conf(5) resolver) every question goes there and neither
 * /etc/resolv.conf nor /etc/hosts is read; without, both are.
 */
int
dns_init(struct event_base *base, const char *resolver)
{
	int err;

	if (ctx != NULL)
		return 0;
	if ((ctx = ub_ctx_create()) == NULL)
		return -1;
	dns_base = base;
	if ((err = ub_ctx_async(ctx, 1)) != 0 ||
	    (err = ub_ctx_set_option(ctx, "unblock-lan-zones:", "yes")) != 0 ||
	    (resolver != NULL && (err = ub_ctx_set_fwd(ctx, resolver)) != 0)) {
		log_err("dns: %s%s%s", resolver ? resolver : "",
		    resolver ? ": " : "", ub_strerror(err));
		dns_shutdown();
		return -1;
	}
	/* /etc/resolv.conf may be missing: /etc/hosts still answers */
	if (resolver == NULL && ((err = ub_ctx_hosts(ctx, NULL)) != 0 ||
	    (err = ub_ctx_resolvconf(ctx, NULL)) != 0))
		log_warn("dns: %s", ub_strerror(err));
	if ((err = unbound_unblock()) != 0)
		log_warn("dns: %s", ub_strerror(err));
	ub_ev = event_new(base, ub_fd(ctx), EV_READ | EV_PERSIST, ub_ready,
	    NULL);
	if (ub_ev == NULL || event_add(ub_ev, NULL) == -1) {
		dns_shutdown();
		return -1;
	}
	return 0;
}

/* dns_shutdown - end libunbound; no lookup may be left */
void
dns_shutdown(void)
{
	if (ub_ev != NULL)
		event_free(ub_ev);
	ub_ev = NULL;
	if (ctx != NULL)
		ub_ctx_delete(ctx);
	ctx = NULL;
	dns_base = NULL;
	free(self_name);
	self_name = NULL;
	free(self_addrs);
	self_addrs = NULL;
	nself_addrs = 0;
}

/* dns_set_timeout_ms - the overall limit of one query, for tests */
void
dns_set_timeout_ms(int64_t ms)
{
	dns_timeout_ms = ms > 0 ? ms : DNS_TIMEOUT_MS;
}

/* ---- queries: start, stop, free -------------------------------------- */

static void query_timeout(evutil_socket_t fd, short what, void *arg);

/* query_new - a query with its timer running */
static struct dns_query *
query_new(enum dns_kind kind, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv = { (time_t)(dns_timeout_ms / 1000),
		(suseconds_t)(dns_timeout_ms % 1000) * 1000 };

	q->kind = kind;
	q->arg = arg;
	q->first.q = q;
	q->timer = evtimer_new(dns_base, query_timeout, q);
	if (q->timer == NULL || evtimer_add(q->timer, &tv) == -1)
		fatal("dns: cannot add a timer");
	return q;
}

/* sub_start - one lookup; -1 when libunbound refused it at once */
static int
sub_start(struct dns_sub *sub, const char *name, int rrtype,
    ub_callback_type fn, void *arg)
{
	int err;

	sub->rrtype = rrtype;
	err = ub_resolve_async(ctx, name, rrtype, RR_CLASS_IN, arg, fn,
	    &sub->async_id);
	if (err != 0) {
		log_warn("dns: %s: %s", name, ub_strerror(err));
		return -1;
	}
	sub->pending = 1;
	return 0;
}

static void
sub_cancel(struct dns_sub *sub)
{
	if (!sub->pending)
		return;
	ub_cancel(ctx, sub->async_id);
	sub->pending = 0;
}

/* query_stop - no lookup of q runs on, its timer neither */
static void
query_stop(struct dns_query *q)
{
	size_t i;

	sub_cancel(&q->first);
	for (i = 0; i < q->nsubs; i++)
		sub_cancel(&q->subs[i]);
	q->pending = 0;
	if (q->timer != NULL)
		event_free(q->timer);
	q->timer = NULL;
}

static void
query_free(struct dns_query *q)
{
	query_stop(q);
	free(q->mxs);
	free(q->addrs);
	free(q->subs);
	free(q);
}

/* dns_cancel - forget a lookup; its callback will not run */
void
dns_cancel(struct dns_query *q)
{
	/* inside its own callback the handle is freed once that returns */
	if (q == NULL || q->reporting)
		return;
	query_free(q);
}

/* what an answer says */
enum dns_answer { ANS_DATA, ANS_NODATA, ANS_NXDOMAIN, ANS_TEMP };

/* answer_kind - classify an answer; *why names a temporary failure */
static enum dns_answer
answer_kind(int err, const struct ub_result *res, const char **why)
{
	*why = NULL;
	if (err != 0 || res == NULL) {
		*why = err ? ub_strerror(err) : "no result";
		return ANS_TEMP;
	}
	if (res->bogus) {
		*why = "DNSSEC validation failed";
		return ANS_TEMP;
	}
	if (res->rcode == RCODE_NXDOMAIN || res->nxdomain)
		return ANS_NXDOMAIN;
	if (res->rcode != 0) {
		*why = res->rcode == RCODE_SERVFAIL ? "SERVFAIL" :
		    res->rcode == RCODE_REFUSED ? "REFUSED" : "server error";
		return ANS_TEMP;
	}
	return res->havedata ? ANS_DATA : ANS_NODATA;
}

/* ---- client names ----------------------------------------------------- */

/*
 * A small cache of client names (found or not), by address: a client that
 * connects again within NAME_CACHE_MS costs no lookup (two queries and
 * the resolver thread's wake-ups otherwise, for every connection).
 */
#define NAME_CACHE_SLOTS 256
#define NAME_CACHE_MS (60 * 1000)

struct name_slot {
	int family;            /* 0: empty */
	unsigned char addr[16];
	int64_t until;         /* monotonic ms */
	char name[SMTP_DOMAIN_MAX + 1]; /* "" when there is none */
};

static struct name_slot name_cache[NAME_CACHE_SLOTS];

static struct name_slot *
name_slot(int family, const unsigned char *addr)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i, n = family == AF_INET ? 4 : 16;

	for (i = 0; i < n; i++)
		h = (h ^ addr[i]) * 16777619u;
	return &name_cache[h % NAME_CACHE_SLOTS];
}

/* name_cached - 1 with *name (NULL for none) when addr's name is known */
static int
name_cached(int family, const unsigned char *addr, const char **name)
{
	struct name_slot *e = name_slot(family, addr);

	if (e->family != family || util_mono_ms() >= e->until ||
	    memcmp(e->addr, addr, family == AF_INET ? 4 : 16) != 0)
		return 0;
	*name = e->name[0] != '\0' ? e->name : NULL;
	return 1;
}

static void
name_remember(const struct dns_query *q, const char *name)
{
	struct name_slot *e = name_slot(q->family, q->addr);

	e->family = q->family;
	memcpy(e->addr, q->addr, sizeof(e->addr));
	e->until = util_mono_ms() + NAME_CACHE_MS;
	snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
}

static void
name_finish(struct dns_query *q, const char *name)
{
	name_remember(q, name);
	q->reporting = 1;
	query_stop(q);
	q->cb(name, q->arg);
	query_free(q);
}

static void
forward_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	size_t want = q->family == AF_INET ? 4 : 16;
	int i, ok = 0;

	q->first.pending = 0;
	if (err == 0 && res->havedata) {
		for (i = 0; res->data[i] != NULL; i++)
			if ((size_t)res->len[i] == want &&
			    memcmp(res->data[i], q->addr, want) == 0)
				ok = 1;
	}
	if (res != NULL)
		ub_resolve_free(res);
	name_finish(q, ok ? q->name : NULL);
}

static void
ptr_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;

	q->first.pending = 0;
	if (err != 0 || !res->havedata ||
	    dns_dname_to_str((unsigned char *)res->data[0], (size_t)res->len[0],
	    q->name, sizeof(q->name)) == -1 ||
	    !smtp_domain_valid(q->name, 0)) {
		if (res != NULL)
			ub_resolve_free(res);
		name_finish(q, NULL);
		return;
	}
	ub_resolve_free(res);
	if (sub_start(&q->first, q->name,
	    q->family == AF_INET ? RR_A : RR_AAAA, forward_done, q) == -1)
		name_finish(q, NULL);
}

/* dns_client_name - the forward-confirmed name of a client address */
struct dns_query *
dns_client_name(const struct sockaddr *sa, dns_name_cb cb, void *arg)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	struct dns_query *q;
	const char *known;
	char name[80];

	if (ctx == NULL) {
		cb(NULL, arg);
		return NULL;
	}
	q = query_new(DNS_Q_NAME, arg);
	q->cb = cb;
	if (sa->sa_family == AF_INET) {
		q->family = AF_INET;
		memcpy(q->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		q->family = AF_INET;
		memcpy(q->addr, &s6->sin6_addr.s6_addr[12], 4);
	} else {
		q->family = AF_INET6;
		memcpy(q->addr, &s6->sin6_addr, 16);
	}
	if (name_cached(q->family, q->addr, &known)) {
		query_free(q);
		cb(known, arg);
		return NULL;
	}
	if (dns_reverse_name(q->family, q->addr, q->family == AF_INET ?
	    "in-addr.arpa" : "ip6.arpa", name, sizeof(name)) == -1)
		panic("dns: PTR name does not fit");
	if (sub_start(&q->first, name, RR_PTR, ptr_done, q) == -1) {
		query_free(q);
		cb(NULL, arg);
		return NULL;
	}
	return q;
}

/* ---- this host -------------------------------------------------------- */

/* dns_set_self - this host's name and interface addresses, for MX lists */
void
dns_set_self(const char *hostname)
{
	struct ifaddrs *ifs, *ifa;
	int family;

	free(self_name);
	self_name = hostname ? xstrdup(hostname) : NULL;
	if (self_name != NULL)
		util_lower(self_name);
	free(self_addrs);
	self_addrs = NULL;
	nself_addrs = 0;
	if (getifaddrs(&ifs) == -1) {
		log_warn("dns: cannot list the interface addresses");
		return;
	}
	for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL)
			continue;
		family = ifa->ifa_addr->sa_family;
		if (family != AF_INET && family != AF_INET6)
			continue;
		self_addrs = xreallocarray(self_addrs, nself_addrs + 1,
		    sizeof(*self_addrs));
		memset(&self_addrs[nself_addrs], 0, sizeof(*self_addrs));
		memcpy(&self_addrs[nself_addrs++], ifa->ifa_addr,
		    family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6));
	}
	freeifaddrs(ifs);
}

/* self_has - 1 when the address bytes of family are one of ours */
static int
self_has(int family, const unsigned char *addr)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	size_t i;

	for (i = 0; i < nself_addrs; i++) {
		sin = (const struct sockaddr_in *)&self_addrs[i];
		sin6 = (const struct sockaddr_in6 *)&self_addrs[i];
		if (family != self_addrs[i].ss_family)
			continue;
		if (family == AF_INET && memcmp(&sin->sin_addr, addr, 4) == 0)
			return 1;
		if (family == AF_INET6 &&
		    memcmp(&sin6->sin6_addr, addr, 16) == 0)
			return 1;
	}
	return 0;
}

/* addrs_self - 1 when one of the addresses found is this host's */
static int
addrs_self(const struct dns_addrs *a)
{
	size_t i;

	for (i = 0; i < a->n6; i++)
		if (self_has(AF_INET6, a->a6[i]))
			return 1;
	for (i = 0; i < a->n4; i++)
		if (self_has(AF_INET, a->a4[i]))
			return 1;
	return 0;
}

/* the MX list itself is read and ordered by dns_rr.c */

/* ---- destinations ----------------------------------------------------- */

static void TERN_PRINTF(4, 5)
targets_fail(struct dns_query *q, enum dns_status status, const char *dsn,
    const char *fmt, ...)
{
	struct dns_targets res;
	va_list ap;

	memset(&res, 0, sizeof(res));
	res.status = status;
	snprintf(res.dsn, sizeof(res.dsn), "%s", dsn);
	va_start(ap, fmt);
	vsnprintf(res.error, sizeof(res.error), fmt, ap);
	va_end(ap);
	q->reporting = 1;
	query_stop(q);
	q->tcb(&res, q->arg);
	query_free(q);
}

/* target_add - one address of host i as the next target */
static void
target_add(struct dns_targets *res, const struct dns_query *q, size_t i,
    int family, const unsigned char *addr)
{
	struct dns_target *t = &res->t[res->n++];
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->ss;

	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", q->mxs[i].host);
	t->pref = q->mx && !q->implicit ? q->mxs[i].pref : 0;
	if (family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)q->port);
		memcpy(&sin6->sin6_addr, addr, 16);
		t->sslen = sizeof(*sin6);
		return;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)q->port);
	memcpy(&sin->sin_addr, addr, 4);
	t->sslen = sizeof(*sin);
}

/* targets_none - the failure when n hosts gave no address at all */
static void
targets_none(struct dns_query *q, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (q->addrs[i].temp)
			break;
	if (i < n)
		targets_fail(q, DNS_TEMP, "4.4.3", "address lookup for %s %s",
		    q->name, q->timed_out ? "timed out" :
		    "failed temporarily");
	else if ((!q->mx || q->implicit) && q->addrs[0].nxdomain)
		targets_fail(q, DNS_PERM, "5.1.2", "%s: no such domain",
		    q->name);
	else if (!q->mx || q->implicit)
		targets_fail(q, DNS_PERM, "5.4.4", "%s has no address",
		    q->name);
	else
		targets_fail(q, DNS_PERM, "5.4.4", "no mail host of %s has an "
		    "address", q->name);
}

/*
 * targets_done - every address lookup answered (or timed out): drop this
 * host and the less preferred by address, then report IPv6 before IPv4,
 * host by host.
 */
static void
targets_done(struct dns_query *q)
{
	struct dns_targets res;
	size_t i, j, n = q->nhosts, total = 0;

	for (i = 0; q->mx && q->port == DNS_SMTP_PORT && i < n; i++)
		if (addrs_self(&q->addrs[i]))
			q->mxs[i].self = 1;
	n = q->mx ? dns_mx_drop_self(q->mxs, n) : n;
	if (n == 0) {
		targets_fail(q, DNS_PERM, "5.4.6", "mail for %s loops back to "
		    "myself", q->name);
		return;
	}
	for (i = 0; i < n; i++)
		total += q->addrs[i].n6 + q->addrs[i].n4;
	if (total == 0) {
		targets_none(q, n);
		return;
	}
	memset(&res, 0, sizeof(res));
	res.t = xcalloc(total, sizeof(*res.t));
	for (i = 0; i < n; i++) {
		for (j = 0; j < q->addrs[i].n6; j++)
			target_add(&res, q, i, AF_INET6, q->addrs[i].a6[j]);
		for (j = 0; j < q->addrs[i].n4; j++)
			target_add(&res, q, i, AF_INET, q->addrs[i].a4[j]);
	}
	q->reporting = 1;
	query_stop(q);
	q->tcb(&res, q->arg);
	free(res.t);
	query_free(q);
}

/* addrs_take - the A or AAAA records of an answer into a */
static void
addrs_take(struct dns_addrs *a, int rrtype, const struct ub_result *res)
{
	size_t want = rrtype == RR_AAAA ? 16 : 4;
	int i;

	for (i = 0; res->data[i] != NULL; i++) {
		if ((size_t)res->len[i] != want)
			continue;
		if (want == 16 && a->n6 < DNS_ADDR_MAX)
			memcpy(a->a6[a->n6++], res->data[i], 16);
		if (want == 4 && a->n4 < DNS_ADDR_MAX)
			memcpy(a->a4[a->n4++], res->data[i], 4);
	}
}

static void
addr_done(void *arg, int err, struct ub_result *res)
{
	struct dns_sub *sub = arg;
	struct dns_query *q = sub->q;
	struct dns_addrs *a = &q->addrs[sub->host];
	const char *why;
	enum dns_answer kind = answer_kind(err, res, &why);

	sub->pending = 0;
	q->pending--;
	if (kind == ANS_TEMP) {
		log_debug("dns: %s %s: %s", q->mxs[sub->host].host,
		    sub->rrtype == RR_A ? "A" : "AAAA", why);
		a->temp = 1;
	}
	if (kind == ANS_NXDOMAIN)
		a->nxdomain = 1;
	if (kind == ANS_DATA)
		addrs_take(a, sub->rrtype, res);
	if (res != NULL)
		ub_resolve_free(res);
	if (q->pending == 0)
		targets_done(q);
}

/*
 * addrs_start - the AAAA and A lookups of every host at once.  Returns 1
 * when q is finished already (no lookup could start), 0 when they run.
 */
static int
addrs_start(struct dns_query *q)
{
	static const int types[2] = { RR_AAAA, RR_A };
	struct dns_sub *sub;
	size_t i, k;

	q->addrs = xcalloc(q->nhosts, sizeof(*q->addrs));
	q->subs = xcalloc(q->nhosts * 2, sizeof(*q->subs));
	q->nsubs = q->nhosts * 2;
	for (i = 0; i < q->nhosts; i++) {
		for (k = 0; k < 2; k++) {
			sub = &q->subs[i * 2 + k];
			sub->q = q;
			sub->host = i;
			if (sub_start(sub, q->mxs[i].host, types[k], addr_done,
			    sub) == 0)
				q->pending++;
			else
				q->addrs[i].temp = 1;
		}
	}
	if (q->pending > 0)
		return 0;
	targets_done(q);
	return 1;
}

/* hosts_name - q's only host is the name itself (implicit MX, or no MX
 * lookup at all) */
static void
hosts_name(struct dns_query *q)
{
	q->mxs = xcalloc(1, sizeof(*q->mxs));
	snprintf(q->mxs[0].host, sizeof(q->mxs[0].host), "%s", q->name);
	q->nhosts = 1;
}

static uint32_t
dns_rnd(uint32_t n)
{
	return arc4random_uniform(n);
}

/* mx_list - the MX records of res into q->mxs, ordered */
static enum dns_mx_result
mx_list(struct dns_query *q, const struct ub_result *res)
{
	const char *self = q->port == DNS_SMTP_PORT ? self_name : NULL;
	enum dns_mx_result r;
	size_t n = 0;
	int i;

	q->mxs = xcalloc(DNS_MX_RECORDS_MAX, sizeof(*q->mxs));
	for (i = 0; res->data[i] != NULL && n < DNS_MX_RECORDS_MAX; i++)
		if (dns_mx_parse((const unsigned char *)res->data[i],
		    (size_t)res->len[i], &q->mxs[n]) == 0)
			n++;
	r = dns_mx_order(q->mxs, &n, self, DNS_MX_HOSTS_MAX, dns_rnd);
	q->nhosts = n;
	return r;
}

/* mx_failed - report what makes the MX list unusable; 1 when it did */
static int
mx_failed(struct dns_query *q, enum dns_mx_result r)
{
	if (r == DNS_MX_NULL)
		targets_fail(q, DNS_PERM, "5.1.10", "%s accepts no mail (null "
		    "MX, RFC 7505)", q->name);
	else if (r == DNS_MX_LOOP)
		targets_fail(q, DNS_PERM, "5.4.6", "mail for %s loops back to "
		    "myself", q->name);
	else if (q->nhosts == 0)
		targets_fail(q, DNS_TEMP, "4.4.3", "%s: no usable MX record",
		    q->name);
	else
		return 0;
	return 1;
}

static void
mx_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	const char *why; /* a static string, valid after the result is freed */
	enum dns_answer kind = answer_kind(err, res, &why);
	enum dns_mx_result r = DNS_MX_OK;

	q->first.pending = 0;
	q->implicit = kind == ANS_NODATA;
	if (kind == ANS_DATA)
		r = mx_list(q, res);
	if (res != NULL)
		ub_resolve_free(res);
	if (kind == ANS_TEMP) {
		targets_fail(q, DNS_TEMP, "4.4.3", "MX lookup for %s failed: "
		    "%s", q->name, why);
		return;
	}
	if (kind == ANS_NXDOMAIN) {
		targets_fail(q, DNS_PERM, "5.1.2", "%s: no such domain",
		    q->name);
		return;
	}
	if (kind == ANS_NODATA)
		hosts_name(q);
	else if (mx_failed(q, r))
		return;
	addrs_start(q);
}

/* ---- A records (DNS lists) -------------------------------------------- */

static void
a_finish(struct dns_query *q, enum dns_status st,
    const unsigned char (*addrs)[4], size_t n)
{
	q->reporting = 1;
	query_stop(q);
	q->acb(st, addrs, n, q->arg);
	query_free(q);
}

static void
a_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	const char *why;
	enum dns_answer kind = answer_kind(err, res, &why);
	unsigned char addrs[DNS_ADDR_MAX][4];
	size_t n = 0;
	int i;

	q->first.pending = 0;
	for (i = 0; kind == ANS_DATA && res->data[i] != NULL &&
	    n < DNS_ADDR_MAX; i++)
		if (res->len[i] == 4)
			memcpy(addrs[n++], res->data[i], 4);
	if (res != NULL)
		ub_resolve_free(res);
	if (kind == ANS_TEMP) {
		log_debug("dns: %s A: %s", q->name, why);
		a_finish(q, DNS_TEMP, NULL, 0);
		return;
	}
	a_finish(q, n > 0 ? DNS_OK : DNS_PERM, addrs, n);
}

/* dns_lookup_a - the A records of name */
struct dns_query *
dns_lookup_a(const char *name, dns_a_cb cb, void *arg)
{
	struct dns_query *q;

	if (ctx == NULL || strlen(name) > SMTP_DOMAIN_MAX) {
		cb(DNS_TEMP, NULL, 0, arg);
		return NULL;
	}
	q = query_new(DNS_Q_A, arg);
	q->acb = cb;
	snprintf(q->name, sizeof(q->name), "%s", name);
	if (sub_start(&q->first, q->name, RR_A, a_done, q) == -1) {
		query_free(q);
		cb(DNS_TEMP, NULL, 0, arg);
		return NULL;
	}
	return q;
}

static void
query_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	size_t i;

	(void)fd;
	(void)what;
	event_free(q->timer);
	q->timer = NULL;
	if (q->kind == DNS_Q_NAME) {
		name_finish(q, NULL);
		return;
	}
	if (q->kind == DNS_Q_A) {
		a_finish(q, DNS_TEMP, NULL, 0);
		return;
	}
	if (q->first.pending) {
		targets_fail(q, DNS_TEMP, "4.4.3", "MX lookup for %s timed "
		    "out", q->name);
		return;
	}
	/* the hosts that answered are used; the others count as temporary
	 * failures */
	for (i = 0; i < q->nsubs; i++)
		if (q->subs[i].pending)
			q->addrs[q->subs[i].host].temp = 1;
	q->timed_out = 1;
	query_stop(q);
	targets_done(q);
}

/* targets_ip - name is an IP address: the one target, no lookup */
static int
targets_ip(const char *name, int port, dns_targets_cb cb, void *arg)
{
	struct dns_query q;
	struct dns_addrs a;
	struct dns_mx mx;
	struct dns_target t;
	struct dns_targets res;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET6, name, a.a6[0]) == 1)
		a.n6 = 1;
	else if (inet_pton(AF_INET, name, a.a4[0]) == 1)
		a.n4 = 1;
	else
		return -1;
	memset(&q, 0, sizeof(q));
	memset(&mx, 0, sizeof(mx));
	inet_ntop(a.n6 ? AF_INET6 : AF_INET, a.n6 ? a.a6[0] : a.a4[0],
	    mx.host, sizeof(mx.host));
	q.mxs = &mx;
	q.port = port;
	memset(&res, 0, sizeof(res));
	res.t = &t;
	target_add(&res, &q, 0, a.n6 ? AF_INET6 : AF_INET,
	    a.n6 ? a.a6[0] : a.a4[0]);
	cb(&res, arg);
	return 0;
}

/* targets_now - report a failure before any lookup started */
static void
targets_now(dns_targets_cb cb, void *arg, enum dns_status status,
    const char *dsn, const char *error)
{
	struct dns_targets res;

	memset(&res, 0, sizeof(res));
	res.status = status;
	snprintf(res.dsn, sizeof(res.dsn), "%s", dsn);
	snprintf(res.error, sizeof(res.error), "%s", error);
	cb(&res, arg);
}

/* dns_resolve_targets - the ordered addresses for a destination */
struct dns_query *
dns_resolve_targets(const char *name, int port, int mx, dns_targets_cb cb,
    void *arg)
{
	struct dns_query *q;
	char *why;

	if (targets_ip(name, port, cb, arg) == 0)
		return NULL;
	if (strlen(name) > SMTP_DOMAIN_MAX || !smtp_domain_valid(name, 0) ||
	    name[0] == '[') {
		why = xasprintf("%.*s: not a domain name", 200, name);
		targets_now(cb, arg, DNS_PERM, "5.1.2", why);
		free(why);
		return NULL;
	}
	if (ctx == NULL) {
		targets_now(cb, arg, DNS_TEMP, "4.4.3", "DNS is not set up");
		return NULL;
	}
	q = query_new(DNS_Q_TARGETS, arg);
	q->tcb = cb;
	q->port = port;
	q->mx = mx;
	snprintf(q->name, sizeof(q->name), "%s", name);
	util_lower(q->name);
	if (!mx) {
		hosts_name(q);
		return addrs_start(q) ? NULL : q;
	}
	if (sub_start(&q->first, q->name, RR_MX, mx_done, q) == -1) {
		targets_fail(q, DNS_TEMP, "4.4.3", "MX lookup for %s could not "
		    "start", q->name);
		return NULL;
	}
	return q;
}

/*
 * test_dns.c - the MX list steps of RFC 5321 5.1 and RFC 7505 as tables
 * (parse, sort and shuffle, drop this host and the less preferred, null
 * MX, loops), the destinations that need no resolver (IP addresses, bad
 * names), and real lookups through libunbound against a dnsmasq that the
 * test starts on a free loopback port with a zone of its own (skipped
 * when /usr/sbin/dnsmasq is missing): MX order, implicit MX, null MX,
 * NXDOMAIN, loops by name and by address, IPv6 before IPv4, SERVFAIL, a
 * silent server (the overall timeout), and cancelling in flight.
 * Only 127.0.0.1 is ever sent to; the zone's addresses (203.0.113.0/24,
 * 2001:db8:ffff::/48) are only looked up, never connected to, and must
 * not be this machine's own (they would be "this host").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "dnsbl.h"
#include "util.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

/* ---- dns_mx_parse ------------------------------------------------------ */

struct parse_case {
	const char *what;
	const char *rdata; /* bytes */
	size_t len;
	int rc;
	int pref;
	const char *host;
};

#define R(s) s, sizeof(s) - 1

static const struct parse_case parse_cases[] = {
	{ "preference and name", R("\x00\x0a\x04mail\x07" "example\x03org\x00"),
	    0, 10, "mail.example.org" },
	{ "name lower-cased", R("\x00\x14\x02MX\x01" "A\x00"), 0, 20, "mx.a" },
	{ "highest preference", R("\xff\xff\x01m\x00"), 0, 65535, "m" },
	{ "null MX is the root", R("\x00\x00\x00"), 0, 0, "" },
	{ "no root label", R("\x00\x0a\x01m"), -1, 0, NULL },
	{ "label longer than the data", R("\x00\x0a\x05mx\x00"), -1, 0, NULL },
	{ "label over 63", R("\x00\x0a\x40xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\x00"), -1, 0, NULL },
	{ "too short for a preference", R("\x00\x0a"), -1, 0, NULL },
	{ "empty", R(""), -1, 0, NULL },
	{ "a space is not a host name", R("\x00\x0a\x03" "a b\x00"), -1, 0,
	    NULL },
	{ "a dot inside a label", R("\x00\x0a\x03" "a.b\x00"), -1, 0, NULL },
	{ "leading hyphen", R("\x00\x0a\x02-a\x00"), -1, 0, NULL },
	{ "a NUL inside a label (not cut to \"mail.ex\")",
	    R("\x00\x0a\x04mail\x07" "ex\0mple\x03org\x00"), -1, 0, NULL },
	{ "a label of one NUL", R("\x00\x0a\x01m\x01\x00\x00"), -1, 0, NULL },
};

static void
test_mx_parse(void **state)
{
	struct dns_mx mx;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *pc = &parse_cases[i];

		rc = dns_mx_parse((const unsigned char *)pc->rdata, pc->len,
		    &mx);
		if (rc != pc->rc)
			fail_msg("%s: rc %d, want %d", pc->what, rc, pc->rc);
		if (rc == 0 && (mx.pref != pc->pref ||
		    strcmp(mx.host, pc->host) != 0))
			fail_msg("%s: got %d %s", pc->what, mx.pref, mx.host);
	}
}

/* a name of more than 255 octets does not fit */
static void
test_mx_parse_too_long(void **state)
{
	unsigned char rdata[2 + 5 * 64 + 1];
	struct dns_mx mx;
	size_t i, o = 2;

	(void)state;
	rdata[0] = 0;
	rdata[1] = 10;
	for (i = 0; i < 5; i++) {
		rdata[o++] = 63;
		memset(rdata + o, 'a', 63);
		o += 63;
	}
	rdata[o++] = 0;
	assert_int_equal(dns_mx_parse(rdata, o, &mx), -1);
}

/* ---- MX lists as text: "10 a.example, 20 b.example*" (* = self) -------- */

static size_t
mx_from_text(const char *text, struct dns_mx *mx, size_t max)
{
	char *copy = xstrdup(text), *tok, *save = NULL;
	size_t n = 0, len;

	for (tok = strtok_r(copy, ",", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, ",", &save)) {
		memset(&mx[n], 0, sizeof(mx[n]));
		tok += strspn(tok, " ");
		mx[n].pref = atoi(tok);
		tok += strcspn(tok, " ");
		tok += strspn(tok, " ");
		len = strlen(tok);
		if (len > 0 && tok[len - 1] == '*') {
			mx[n].self = 1;
			tok[--len] = '\0';
		}
		if (strcmp(tok, ".") == 0)
			tok[0] = '\0';
		snprintf(mx[n].host, sizeof(mx[n].host), "%s", tok);
		n++;
	}
	free(copy);
	return n;
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->host, y->host);
}

/*
 * mx_to_text - the list as text; fails when it is not sorted by
 * preference.  Equal preferences are written in name order, so that the
 * text does not depend on the shuffle.
 */
static char *
mx_to_text(const struct dns_mx *mx, size_t n)
{
	struct dns_mx *copy = xcalloc(n + 1, sizeof(*copy));
	struct buf b;
	size_t i;

	for (i = 1; i < n; i++)
		if (mx[i].pref < mx[i - 1].pref)
			fail_msg("not sorted at %zu", i);
	memcpy(copy, mx, n * sizeof(*mx));
	qsort(copy, n, sizeof(*copy), mx_cmp);
	buf_init(&b);
	for (i = 0; i < n; i++)
		buf_printf(&b, "%s%d %s", i ? ", " : "", copy[i].pref,
		    copy[i].host);
	free(copy);
	return b.data;
}

static uint32_t
rnd_real(uint32_t n)
{
	return arc4random_uniform(n);
}

/* j = i - 1 in Fisher-Yates: every element stays */
static uint32_t
rnd_keep(uint32_t n)
{
	return n - 1;
}

static uint32_t
rnd_zero(uint32_t n)
{
	(void)n;
	return 0;
}

/* ---- dns_mx_drop_self ------------------------------------------------- */

struct drop_case {
	const char *what;
	const char *list; /* sorted */
	size_t want;
};

static const struct drop_case drop_cases[] = {
	{ "no self: all kept", "10 a, 20 b, 30 c", 3 },
	{ "self most preferred: none", "10 s*, 20 b", 0 },
	{ "self alone: none", "10 s*", 0 },
	{ "backup: the better kept", "10 a, 20 s*, 30 c", 1 },
	{ "equal preference to self dropped", "10 a, 20 b, 20 s*, 30 c", 1 },
	{ "self last: the others kept", "10 a, 20 b, 30 s*", 2 },
	{ "two self entries: the best counts", "10 a, 20 s*, 30 t*", 1 },
	{ "self equal to the best: none", "10 a, 10 s*", 0 },
	{ "empty list", "", 0 },
};

static void
test_mx_drop_self(void **state)
{
	struct dns_mx mx[16];
	size_t i, n, got;

	(void)state;
	for (i = 0; i < sizeof(drop_cases) / sizeof(drop_cases[0]); i++) {
		n = mx_from_text(drop_cases[i].list, mx, 16);
		got = dns_mx_drop_self(mx, n);
		if (got != drop_cases[i].want)
			fail_msg("%s: %zu kept, want %zu", drop_cases[i].what,
			    got, drop_cases[i].want);
	}
}

/* ---- dns_mx_order ----------------------------------------------------- */

struct order_case {
	const char *what;
	const char *answer;  /* as the records came */
	const char *self;    /* this host's name, NULL: none */
	size_t max;
	enum dns_mx_result result;
	const char *want;    /* when DNS_MX_OK */
};

static const struct order_case order_cases[] = {
	{ "sorted by preference", "20 b.example, 10 a.example, 30 c.example",
	    NULL, 16, DNS_MX_OK, "10 a.example, 20 b.example, 30 c.example" },
	{ "equal preferences all kept", "10 b.example, 5 c.example, "
	    "10 a.example", NULL, 16, DNS_MX_OK,
	    "5 c.example, 10 a.example, 10 b.example" },
	{ "one host", "0 mx.example", NULL, 16, DNS_MX_OK, "0 mx.example" },
	{ "null MX", "0 .", NULL, 16, DNS_MX_NULL, NULL },
	{ "null MX of another preference", "10 .", NULL, 16, DNS_MX_NULL,
	    NULL },
	{ "two null MX records", "0 ., 0 .", NULL, 16, DNS_MX_NULL, NULL },
	{ "a dot among hosts is dropped", "0 ., 10 mx.example", NULL, 16,
	    DNS_MX_OK, "10 mx.example" },
	{ "repeated host keeps its best preference",
	    "20 a.example, 15 b.example, 10 a.example", NULL, 16, DNS_MX_OK,
	    "10 a.example, 15 b.example" },
	{ "this host most preferred: loop", "10 me.example, 20 b.example",
	    "me.example", 16, DNS_MX_LOOP, NULL },
	{ "this host alone: loop", "10 me.example", "me.example", 16,
	    DNS_MX_LOOP, NULL },
	{ "this host by name in any case", "10 me.example, 20 b.example",
	    "ME.Example", 16, DNS_MX_LOOP, NULL },
	{ "backup MX forwards to the better only",
	    "30 c.example, 10 a.example, 20 me.example", "me.example", 16,
	    DNS_MX_OK, "10 a.example" },
	{ "peer of equal preference dropped with this host",
	    "10 a.example, 20 b.example, 20 me.example, 5 z.example",
	    "me.example", 16, DNS_MX_OK, "5 z.example, 10 a.example" },
	{ "equal to the best: loop", "10 a.example, 10 me.example",
	    "me.example", 16, DNS_MX_LOOP, NULL },
	{ "this host listed twice: its best counts",
	    "10 a.example, 30 me.example, 20 me.example, 25 b.example",
	    "me.example", 16, DNS_MX_OK, "10 a.example" },
	{ "this host not in the list", "10 a.example", "me.example", 16,
	    DNS_MX_OK, "10 a.example" },
	{ "no self name", "10 me.example", NULL, 16, DNS_MX_OK,
	    "10 me.example" },
	{ "a subdomain of this host is not this host", "10 x.me.example",
	    "me.example", 16, DNS_MX_OK, "10 x.me.example" },
	{ "at most max kept, the most preferred",
	    "50 e.example, 10 a.example, 40 d.example, 20 b.example, "
	    "30 c.example", NULL, 3, DNS_MX_OK,
	    "10 a.example, 20 b.example, 30 c.example" },
	{ "no records", "", NULL, 16, DNS_MX_OK, "" },
};

static void
test_mx_order(void **state)
{
	struct dns_mx mx[16];
	enum dns_mx_result r;
	size_t i, n;
	char *got;

	(void)state;
	for (i = 0; i < sizeof(order_cases) / sizeof(order_cases[0]); i++) {
		const struct order_case *oc = &order_cases[i];

		n = mx_from_text(oc->answer, mx, 16);
		r = dns_mx_order(mx, &n, oc->self, oc->max, rnd_real);
		if (r != oc->result)
			fail_msg("%s: result %d, want %d", oc->what, r,
			    oc->result);
		if (r != DNS_MX_OK)
			continue;
		got = mx_to_text(mx, n);
		if (strcmp(got, oc->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", oc->what, got,
			    oc->want);
		free(got);
	}
}

/* the order among equal preferences is the shuffle's, and only that */
static void
test_mx_sort_uses_shuffle(void **state)
{
	struct dns_mx mx[8];
	size_t n;

	(void)state;
	n = mx_from_text("10 a, 20 x, 10 b, 10 c", mx, 8);
	dns_mx_sort(mx, n, rnd_keep);
	assert_string_equal(mx[0].host, "a");
	assert_string_equal(mx[1].host, "b");
	assert_string_equal(mx[2].host, "c");
	assert_string_equal(mx[3].host, "x");
	n = mx_from_text("10 a, 20 x, 10 b, 10 c", mx, 8);
	dns_mx_sort(mx, n, rnd_zero);
	/* rnd_zero swaps each last element with the first: a x b c,
	 * c x b a, b x c a, x b c a before the sort, so the equal ones come
	 * as b, c, a */
	assert_string_equal(mx[0].host, "b");
	assert_string_equal(mx[1].host, "c");
	assert_string_equal(mx[2].host, "a");
	assert_string_equal(mx[3].host, "x");
}

/* with the real random source every equal host comes first sometimes */
static void
test_mx_sort_spreads(void **state)
{
	static const char *const hosts[] = { "a", "b", "c" };
	size_t first[3] = { 0, 0, 0 }, round, k, n;
	struct dns_mx mx[8];

	(void)state;
	for (round = 0; round < 300; round++) {
		n = mx_from_text("5 z, 10 a, 10 b, 10 c, 1 y", mx, 8);
		dns_mx_sort(mx, n, rnd_real);
		assert_string_equal(mx[0].host, "y");
		assert_string_equal(mx[1].host, "z");
		for (k = 0; k < 3; k++)
			if (strcmp(mx[2].host, hosts[k]) == 0)
				first[k]++;
	}
	/* each should be first about 100 times; fewer than 30 is a bug
	 * (the chance of it by luck is below 1e-15) */
	for (k = 0; k < 3; k++)
		if (first[k] < 30)
			fail_msg("%s first only %zu of 300 times", hosts[k],
			    first[k]);
}

/* ---- results, collected from the callback ----------------------------- */

struct got {
	int calls;
	enum dns_status status;
	char dsn[16];
	char error[256];
	char *targets; /* "pref:host=addr:port ..." as delivered */
};

static void
got_reset(struct got *g)
{
	free(g->targets);
	memset(g, 0, sizeof(*g));
}

static void
targets_cb(const struct dns_targets *res, void *arg)
{
	struct got *g = arg;
	char addr[INET6_ADDRSTRLEN];
	struct buf b;
	size_t i;
	int port;

	g->calls++;
	g->status = res->status;
	snprintf(g->dsn, sizeof(g->dsn), "%s", res->dsn);
	snprintf(g->error, sizeof(g->error), "%s", res->error);
	buf_init(&b);
	for (i = 0; i < res->n; i++) {
		const struct dns_target *t = &res->t[i];
		const struct sockaddr_in *sin = (const void *)&t->ss;
		const struct sockaddr_in6 *sin6 = (const void *)&t->ss;

		if (t->ss.ss_family == AF_INET6) {
			assert_int_equal(t->sslen, sizeof(*sin6));
			inet_ntop(AF_INET6, &sin6->sin6_addr, addr,
			    sizeof(addr));
			port = ntohs(sin6->sin6_port);
		} else {
			assert_int_equal(t->ss.ss_family, AF_INET);
			assert_int_equal(t->sslen, sizeof(*sin));
			inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
			port = ntohs(sin->sin_port);
		}
		buf_printf(&b, "%s%d:%s=%s:%d", i ? " " : "", t->pref, t->host,
		    addr, port);
	}
	free(g->targets);
	g->targets = b.data;
}

/* ---- no resolver needed ----------------------------------------------- */

struct now_case {
	const char *what;
	const char *name;
	int port;
	int mx;
	enum dns_status status;
	const char *dsn;
	const char *targets;
};

static const struct now_case now_cases[] = {
	{ "IPv4 address", "198.51.100.1", 2525, 0, DNS_OK, "",
	    "0:198.51.100.1=198.51.100.1:2525" },
	{ "IPv4 address, MX asked: none looked up", "198.51.100.1", 25, 1,
	    DNS_OK, "", "0:198.51.100.1=198.51.100.1:25" },
	{ "IPv6 address canonical", "2001:DB8:0::1", 587, 0, DNS_OK, "",
	    "0:2001:db8::1=2001:db8::1:587" },
	{ "loopback is no loop without MX", "127.0.0.1", 25, 0, DNS_OK, "",
	    "0:127.0.0.1=127.0.0.1:25" },
	{ "bad name", "a..example", 25, 1, DNS_PERM, "5.1.2", "" },
	{ "address literal is not a name", "[198.51.100.1]", 25, 1, DNS_PERM,
	    "5.1.2", "" },
	{ "empty name", "", 25, 1, DNS_PERM, "5.1.2", "" },
	{ "name without a resolver", "example.org", 25, 1, DNS_TEMP, "4.4.3",
	    "" },
};

static void
test_targets_without_resolver(void **state)
{
	struct got g;
	size_t i;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (i = 0; i < sizeof(now_cases) / sizeof(now_cases[0]); i++) {
		const struct now_case *nc = &now_cases[i];

		got_reset(&g);
		assert_null(dns_resolve_targets(nc->name, nc->port, nc->mx,
		    targets_cb, &g));
		if (g.calls != 1 || g.status != nc->status ||
		    strcmp(g.dsn, nc->dsn) != 0 ||
		    strcmp(g.targets, nc->targets) != 0)
			fail_msg("%s: calls %d status %d dsn %s targets \"%s\" "
			    "(%s)", nc->what, g.calls, g.status, g.dsn,
			    g.targets ? g.targets : "-", g.error);
	}
	got_reset(&g);
}

/* ---- a dnsmasq of our own --------------------------------------------- */

struct lab {
	pid_t dnsmasq;
	int port;            /* dnsmasq, UDP and TCP */
	int silent_fd;       /* a UDP socket that never answers */
	int silent_port;
	int servfail_fd;     /* a UDP socket that answers SERVFAIL */
	int servfail_port;
	struct event_base *base;
	struct event *servfail_ev;
};

static struct lab lab;

/* udp_socket - a UDP socket on 127.0.0.1 with a free port */
static int
udp_socket(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* servfail_read - answer every query with its own header, SERVFAIL */
static void
servfail_read(evutil_socket_t fd, short what, void *arg)
{
	unsigned char pkt[512];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	(void)what;
	(void)arg;
	n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from,
	    &fromlen);
	if (n < 12)
		return;
	pkt[2] = (unsigned char)(0x80 | (pkt[2] & 0x79)); /* QR, keep RD */
	pkt[3] = 0x82;                                     /* RA, SERVFAIL */
	memset(pkt + 6, 0, 6);                             /* no records */
	sendto(fd, pkt, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
}

/* the zone: names under .test, answered by dnsmasq alone (--local) */
static char *
dnsmasq_args(int port, int silent, char ***argv)
{
	char *s, *tok, *save = NULL;
	size_t n = 0;

	s = xasprintf(
	    "dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll "
	    "--port=%d --listen-address=127.0.0.1 --bind-interfaces "
	    "--pid-file= --log-facility=/dev/null --local=/test/ "
	    "--server=/slow.test/127.0.0.1#%d "
	    "--mx-host=two.test,mx1.two.test,10 "
	    "--mx-host=two.test,mx2.two.test,10 "
	    "--mx-host=two.test,backup.two.test,20 "
	    "--host-record=mx1.two.test,203.0.113.1,2001:db8:ffff::1 "
	    "--host-record=mx2.two.test,203.0.113.2 "
	    "--host-record=backup.two.test,203.0.113.3 "
	    "--host-record=plain.test,203.0.113.10,2001:db8:ffff::10 "
	    "--host-record=v6only.test,2001:db8:ffff::11 "
	    "--dns-rr=null.test,15,000000 "
	    "--host-record=self.test,203.0.113.99 "
	    "--mx-host=selfmx.test,self.test,10 "
	    "--mx-host=selfmx.test,mx2.two.test,20 "
	    "--mx-host=backup.test,mx1.two.test,10 "
	    "--mx-host=backup.test,self.test,20 "
	    "--mx-host=backup.test,mx2.two.test,30 "
	    "--host-record=lo.test,127.0.0.1 "
	    "--mx-host=loopaddr.test,lo.test,10 "
	    "--mx-host=noaddr.test,ghost.test,10 "
	    "--mx-host=someaddr.test,ghost.test,5 "
	    "--mx-host=someaddr.test,mx2.two.test,10 "
	    "--mx-host=slowmx.test,h.slow.test,10 "
	    "--mx-host=slowmx.test,mx2.two.test,20 "
	    "--mx-host=allslow.test,h.slow.test,10",
	    port, silent);
	*argv = NULL;
	for (tok = strtok_r(s, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		*argv = xreallocarray(*argv, n + 2, sizeof(**argv));
		(*argv)[n++] = tok;
		(*argv)[n] = NULL;
	}
	return s;
}

/* tcp_ready - 1 when something accepts TCP on 127.0.0.1:port */
static int
tcp_ready(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* dnsmasq_start - dnsmasq on a free port; 0 when it answers */
static int
dnsmasq_start(void)
{
	char **argv, *text;
	int fd, status, i;

	fd = udp_socket(&lab.port);
	close(fd);
	text = dnsmasq_args(lab.port, lab.silent_port, &argv);
	lab.dnsmasq = fork();
	assert_true(lab.dnsmasq >= 0);
	if (lab.dnsmasq == 0) {
		execv(DNSMASQ, argv);
		_exit(127);
	}
	free(argv);
	free(text);
	for (i = 0; i < 100; i++) {
		if (waitpid(lab.dnsmasq, &status, WNOHANG) == lab.dnsmasq) {
			lab.dnsmasq = 0;
			return -1;
		}
		if (tcp_ready(lab.port))
			return 0;
		usleep(50000);
	}
	return -1;
}

static void
dnsmasq_stop(void)
{
	if (lab.dnsmasq <= 0)
		return;
	kill(lab.dnsmasq, SIGTERM);
	waitpid(lab.dnsmasq, NULL, 0);
	lab.dnsmasq = 0;
}

/* lab_resolver - dns_init afresh on the given port's server */
static void
lab_resolver(int port)
{
	char fwd[64];

	dns_shutdown();
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", port);
	assert_int_equal(dns_init(lab.base, fwd), 0);
	dns_set_self("Self.Test");
	dns_set_timeout_ms(0);
}

/* zone_addrs_foreign - 0 when no zone address is this machine's */
static int
zone_addrs_foreign(void)
{
	struct ifaddrs *ifs, *ifa;
	const unsigned char *a;
	int bad = 0;

	if (getifaddrs(&ifs) == -1)
		return -1;
	for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET) {
			a = (const unsigned char *)&((struct sockaddr_in *)
			    ifa->ifa_addr)->sin_addr;
			bad |= a[0] == 203 && a[1] == 0 && a[2] == 113;
		}
		if (ifa->ifa_addr->sa_family == AF_INET6) {
			a = (const unsigned char *)&((struct sockaddr_in6 *)
			    ifa->ifa_addr)->sin6_addr;
			bad |= memcmp(a, "\x20\x01\x0d\xb8\xff\xff", 6) == 0;
		}
	}
	freeifaddrs(ifs);
	return bad ? -1 : 0;
}

static int
lab_setup(void **state)
{
	int tries;

	(void)state;
	memset(&lab, 0, sizeof(lab));
	if (access(DNSMASQ, X_OK) != 0)
		return 0; /* the tests that need it skip */
	if (zone_addrs_foreign() == -1) {
		fprintf(stderr, "test_dns: this machine has an address in "
		    "203.0.113.0/24 or 2001:db8:ffff::/48, the test zone's\n");
		return -1;
	}
	lab.silent_fd = udp_socket(&lab.silent_port);
	lab.servfail_fd = udp_socket(&lab.servfail_port);
	lab.base = event_base_new();
	assert_non_null(lab.base);
	lab.servfail_ev = event_new(lab.base, lab.servfail_fd,
	    EV_READ | EV_PERSIST, servfail_read, NULL);
	event_add(lab.servfail_ev, NULL);
	/* a port found free may be taken for TCP: try a few */
	for (tries = 0; tries < 5; tries++)
		if (dnsmasq_start() == 0)
			return 0;
	fprintf(stderr, "test_dns: dnsmasq did not start\n");
	return -1;
}

static int
lab_teardown(void **state)
{
	(void)state;
	dns_shutdown();
	dnsmasq_stop();
	if (lab.base == NULL)
		return 0;
	event_free(lab.servfail_ev);
	event_base_free(lab.base);
	close(lab.silent_fd);
	close(lab.servfail_fd);
	return 0;
}

static void
loop_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* run_until - run the loop until *calls is set or ms have passed */
static void
run_until(const int *calls, int ms)
{
	struct timeval tick = { 0, 20000 };
	int64_t end = util_mono_ms() + ms;

	while (*calls == 0 && util_mono_ms() < end) {
		event_base_loopexit(lab.base, &tick);
		event_base_dispatch(lab.base);
	}
}

/* run_for - run the loop for ms, whatever happens */
static void
run_for(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *ev = evtimer_new(lab.base, loop_stop, lab.base);

	evtimer_add(ev, &tv);
	event_base_dispatch(lab.base);
	event_free(ev);
}

/* resolve - one lookup through the lab, waited for */
static void
resolve(const char *name, int port, int mx, struct got *g)
{
	struct dns_query *q;

	got_reset(g);
	q = dns_resolve_targets(name, port, mx, targets_cb, g);
	if (q == NULL && g->calls == 0)
		fail_msg("%s: no handle and no answer", name);
	run_until(&g->calls, 20000);
	if (g->calls != 1)
		fail_msg("%s: %d answers", name, g->calls);
}

/* one target of a result, for canonical() */
struct item {
	char *text;   /* "pref:host=addr:port" */
	int pref;
	size_t hostlen;
	size_t index; /* position in the result: keeps a host's addresses */
};

static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	c = strncmp(x->text, y->text, x->hostlen < y->hostlen ? x->hostlen
							       : y->hostlen);
	if (c == 0 && x->hostlen != y->hostlen)
		c = x->hostlen < y->hostlen ? -1 : 1;
	if (c != 0)
		return c;
	return x->index < y->index ? -1 : 1;
}

/*
 * canonical - the targets with equal preference put in host order, each
 * host's addresses kept in their order, after checking that preferences
 * never go down: the text then does not depend on the shuffle
 */
static char *
canonical(const char *targets)
{
	char *copy = xstrdup(targets), *tok, *save = NULL;
	struct item *v = NULL;
	struct buf b;
	size_t n = 0, i;

	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].text = tok;
		v[n].pref = atoi(tok);
		v[n].hostlen = strcspn(tok, "=");
		v[n].index = n;
		if (n > 0 && v[n].pref < v[n - 1].pref)
			fail_msg("preferences go down: %s", targets);
		n++;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), item_cmp);
	buf_init(&b);
	for (i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i ? " " : "", v[i].text);
	free(v);
	free(copy);
	return b.data;
}

struct lookup_case {
	const char *what;
	const char *name;
	int port;
	int mx;
	enum dns_status status;
	const char *dsn;
	const char *targets; /* canonical() form */
};

static const struct lookup_case lookup_cases[] = {
	{ "MX by preference, equal ones both, IPv6 first", "two.test", 25, 1,
	    DNS_OK, "",
	    "10:mx1.two.test=2001:db8:ffff::1:25 "
	    "10:mx1.two.test=203.0.113.1:25 10:mx2.two.test=203.0.113.2:25 "
	    "20:backup.two.test=203.0.113.3:25" },
	{ "name in any case", "TWO.Test", 25, 1, DNS_OK, "",
	    "10:mx1.two.test=2001:db8:ffff::1:25 "
	    "10:mx1.two.test=203.0.113.1:25 10:mx2.two.test=203.0.113.2:25 "
	    "20:backup.two.test=203.0.113.3:25" },
	{ "the port of a route", "two.test", 2525, 1, DNS_OK, "",
	    "10:mx1.two.test=2001:db8:ffff::1:2525 "
	    "10:mx1.two.test=203.0.113.1:2525 "
	    "10:mx2.two.test=203.0.113.2:2525 "
	    "20:backup.two.test=203.0.113.3:2525" },
	{ "implicit MX", "plain.test", 25, 1, DNS_OK, "",
	    "0:plain.test=2001:db8:ffff::10:25 0:plain.test=203.0.113.10:25" },
	{ "no MX lookup: the host itself", "mx1.two.test", 587, 0, DNS_OK,
	    "", "0:mx1.two.test=2001:db8:ffff::1:587 "
	    "0:mx1.two.test=203.0.113.1:587" },
	{ "no MX lookup of a domain with MX", "two.test", 25, 0, DNS_PERM,
	    "5.4.4", "" },
	{ "IPv6 only", "v6only.test", 25, 0, DNS_OK, "",
	    "0:v6only.test=2001:db8:ffff::11:25" },
	{ "null MX", "null.test", 25, 1, DNS_PERM, "5.1.10", "" },
	{ "no such domain", "nosuch.test", 25, 1, DNS_PERM, "5.1.2", "" },
	{ "no such host", "nosuch.test", 25, 0, DNS_PERM, "5.1.2", "" },
	{ "this host most preferred by name: loop", "selfmx.test", 25, 1,
	    DNS_PERM, "5.4.6", "" },
	{ "this host on another port is another server", "selfmx.test", 2525,
	    1, DNS_OK, "",
	    "10:self.test=203.0.113.99:2525 20:mx2.two.test=203.0.113.2:2525" },
	{ "backup MX: only the better host", "backup.test", 25, 1, DNS_OK, "",
	    "10:mx1.two.test=2001:db8:ffff::1:25 "
	    "10:mx1.two.test=203.0.113.1:25" },
	{ "this host by address: loop", "loopaddr.test", 25, 1, DNS_PERM,
	    "5.4.6", "" },
	{ "this host's address on another port", "loopaddr.test", 2526, 1,
	    DNS_OK, "", "10:lo.test=127.0.0.1:2526" },
	{ "MX host without address", "noaddr.test", 25, 1, DNS_PERM, "5.4.4",
	    "" },
	{ "MX host without address skipped", "someaddr.test", 25, 1, DNS_OK,
	    "", "10:mx2.two.test=203.0.113.2:25" },
};

static void
test_lookups(void **state)
{
	struct got g;
	size_t i;
	char *canon;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.port);
	memset(&g, 0, sizeof(g));
	for (i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *lc = &lookup_cases[i];

		resolve(lc->name, lc->port, lc->mx, &g);
		canon = canonical(g.targets);
		if (g.status != lc->status || strcmp(g.dsn, lc->dsn) != 0 ||
		    strcmp(canon, lc->targets) != 0)
			fail_msg("%s: status %d dsn \"%s\" targets \"%s\" (%s)",
			    lc->what, g.status, g.dsn, canon, g.error);
		if (g.status != DNS_OK && g.error[0] == '\0')
			fail_msg("%s: no error text", lc->what);
		free(canon);
	}
	got_reset(&g);
}

/* two equal MX hosts: each is tried first in some lookups */
static void
test_lookup_spreads(void **state)
{
	struct got g;
	int first1 = 0, first2 = 0, i;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.port);
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 40; i++) {
		resolve("two.test", 25, 1, &g);
		first1 += strncmp(g.targets, "10:mx1.", 7) == 0;
		first2 += strncmp(g.targets, "10:mx2.", 7) == 0;
	}
	got_reset(&g);
	assert_int_equal(first1 + first2, 40);
	assert_true(first1 > 0 && first2 > 0);
}

/* forward-confirmed client names still work */
static void
name_cb(const char *name, void *arg)
{
	struct got *g = arg;

	g->calls++;
	snprintf(g->error, sizeof(g->error), "%s", name ? name : "(none)");
}

static void
test_client_name(void **state)
{
	struct sockaddr_in sin;
	struct got g;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.port);
	memset(&g, 0, sizeof(g));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.1", &sin.sin_addr);
	assert_non_null(dns_client_name((struct sockaddr *)&sin, name_cb,
	    &g));
	run_until(&g.calls, 10000);
	assert_int_equal(g.calls, 1);
	assert_string_equal(g.error, "mx1.two.test");
	/* the same client again: answered from the cache, at once */
	memset(&g, 0, sizeof(g));
	assert_null(dns_client_name((struct sockaddr *)&sin, name_cb, &g));
	assert_int_equal(g.calls, 1);
	assert_string_equal(g.error, "mx1.two.test");
	/* another client, cancelled at once: never called */
	inet_pton(AF_INET, "203.0.113.2", &sin.sin_addr);
	memset(&g, 0, sizeof(g));
	dns_cancel(dns_client_name((struct sockaddr *)&sin, name_cb, &g));
	run_for(500);
	assert_int_equal(g.calls, 0);
}

/* a server that answers SERVFAIL: temporary */
/* ---- A records and DNS lists (RFC 5782) ------------------------------- */

struct reverse_case {
	const char *what;
	const char *addr;
	const char *zone;
	const char *name;
};

static const struct reverse_case reverse_cases[] = {
	{ "IPv4 octets reversed", "198.51.100.99", "bl.example",
	    "99.100.51.198.bl.example" },
	{ "IPv4 PTR", "127.0.0.2", "in-addr.arpa", "2.0.0.127.in-addr.arpa" },
	{ "IPv6 nibbles reversed (RFC 5782 2.4)", "2001:db8:1:2:3:4:567:89ab",
	    "bl.example",
	    "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2."
	    "bl.example" },
	{ "IPv6 PTR of ::1", "::1", "ip6.arpa",
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "ip6.arpa" },
};

static void
test_reverse_name(void **state)
{
	unsigned char addr[16];
	char out[256];
	size_t i;
	int family;

	(void)state;
	for (i = 0; i < sizeof(reverse_cases) / sizeof(reverse_cases[0]);
	    i++) {
		const struct reverse_case *c = &reverse_cases[i];

		family = strchr(c->addr, ':') ? AF_INET6 : AF_INET;
		assert_int_equal(inet_pton(family, c->addr, addr), 1);
		assert_int_equal(dns_reverse_name(family, addr, c->zone, out,
		    sizeof(out)), 0);
		if (strcmp(out, c->name) != 0)
			fail_msg("%s: %s", c->what, out);
	}
	/* too small for the name: refused, never cut */
	assert_int_equal(dns_reverse_name(AF_INET, addr, "bl.example", out,
	    10), -1);
	assert_int_equal(dns_reverse_name(AF_INET6, addr, "bl.example", out,
	    70), -1);
}

struct answer_case {
	const char *what;
	const char *match; /* comma-separated, or "" */
	const char *answers;
	int lists;
};

static const struct answer_case answer_cases[] = {
	{ "no match=: 127.0.0.2 lists", "", "127.0.0.2", 1 },
	{ "no match=: anything in 127/8", "", "127.1.2.3", 1 },
	{ "no match=: an error code lists nobody", "", "127.255.255.254", 0 },
	{ "no match=: outside 127/8 lists nobody", "", "10.0.0.2", 0 },
	{ "no match=: one good answer of several", "", "127.255.255.252,"
	    "127.0.0.4", 1 },
	{ "match=: the address named", "127.0.0.2,127.0.0.4", "127.0.0.4", 1 },
	{ "match=: another lists nobody", "127.0.0.2", "127.0.0.3", 0 },
	{ "match=: may name an error code", "127.255.255.254",
	    "127.255.255.254", 1 },
};

/* parse_addrs - comma-separated IPv4 addresses into a; their count */
static size_t
parse_addrs(const char *text, unsigned char (*a)[4], size_t max)
{
	char *copy = xstrdup(text), *tok, *save = NULL;
	size_t n = 0;

	for (tok = strtok_r(copy, ",", &save); tok != NULL && n < max;
	    tok = strtok_r(NULL, ",", &save))
		assert_int_equal(inet_pton(AF_INET, tok, a[n++]), 1);
	free(copy);
	return n;
}

static void
test_answer_lists(void **state)
{
	unsigned char match[4][4], answers[4][4];
	struct conf_dnsbl b;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(answer_cases) / sizeof(answer_cases[0]); i++) {
		const struct answer_case *c = &answer_cases[i];

		memset(&b, 0, sizeof(b));
		b.zone = (char *)"bl.example";
		b.weight = 1;
		b.match = match;
		b.nmatch = parse_addrs(c->match, match, 4);
		n = parse_addrs(c->answers, answers, 4);
		if (dnsbl_answer_lists(&b, (const unsigned char (*)[4])answers,
		    n) != c->lists)
			fail_msg("%s", c->what);
	}
}

struct got_a {
	int calls;
	enum dns_status st;
	char first[INET_ADDRSTRLEN];
	size_t n;
};

static void
a_cb(enum dns_status st, const unsigned char (*addrs)[4], size_t n,
    void *arg)
{
	struct got_a *g = arg;

	g->calls++;
	g->st = st;
	g->n = n;
	g->first[0] = '\0';
	if (n > 0)
		inet_ntop(AF_INET, addrs[0], g->first, sizeof(g->first));
}

/* dns_lookup_a against the lab: found, no such name, no A record, and a
 * silent server (the overall timeout: temporary) */
static void
test_lookup_a(void **state)
{
	struct got_a g;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.port);
	memset(&g, 0, sizeof(g));
	dns_lookup_a("mx2.two.test", a_cb, &g);
	run_until(&g.calls, 20000);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DNS_OK);
	assert_string_equal(g.first, "203.0.113.2");
	memset(&g, 0, sizeof(g));
	dns_lookup_a("ghost.test", a_cb, &g);
	run_until(&g.calls, 20000);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DNS_PERM);
	memset(&g, 0, sizeof(g));
	dns_lookup_a("v6only.test", a_cb, &g);
	run_until(&g.calls, 20000);
	assert_int_equal(g.st, DNS_PERM);
	assert_int_equal(g.n, 0);
	lab_resolver(lab.silent_port);
	dns_set_timeout_ms(500);
	memset(&g, 0, sizeof(g));
	dns_lookup_a("silent.test", a_cb, &g);
	run_until(&g.calls, 10000);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DNS_TEMP);
	dns_set_timeout_ms(0);
}

static void
test_servfail(void **state)
{
	struct got g;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.servfail_port);
	dns_set_timeout_ms(8000);
	memset(&g, 0, sizeof(g));
	resolve("example.test", 25, 1, &g);
	if (g.status != DNS_TEMP || strcmp(g.dsn, "4.4.3") != 0)
		fail_msg("status %d dsn %s (%s)", g.status, g.dsn, g.error);
	got_reset(&g);
}

/* silence: the overall timeout ends the query, temporarily */
struct slow_case {
	const char *what;
	int lab_port;       /* 0: the silent server itself */
	const char *name;
	int mx;
	enum dns_status status;
	const char *dsn;
	const char *targets;
};

static const struct slow_case slow_cases[] = {
	{ "silent resolver, MX", 0, "example.test", 1, DNS_TEMP, "4.4.3",
	    "" },
	{ "silent resolver, host", 0, "example.test", 0, DNS_TEMP, "4.4.3",
	    "" },
	{ "the only MX host unanswered", 1, "allslow.test", 1, DNS_TEMP,
	    "4.4.3", "" },
	{ "the answered MX host is used", 1, "slowmx.test", 1, DNS_OK, "",
	    "20:mx2.two.test=203.0.113.2:25" },
};

static void
test_timeouts(void **state)
{
	struct got g;
	size_t i;
	int64_t start, took;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	memset(&g, 0, sizeof(g));
	for (i = 0; i < sizeof(slow_cases) / sizeof(slow_cases[0]); i++) {
		const struct slow_case *sc = &slow_cases[i];

		/* a fresh context: libunbound remembers slow servers */
		lab_resolver(sc->lab_port ? lab.port : lab.silent_port);
		dns_set_timeout_ms(1500);
		start = util_mono_ms();
		resolve(sc->name, 25, sc->mx, &g);
		took = util_mono_ms() - start;
		if (g.status != sc->status || strcmp(g.dsn, sc->dsn) != 0 ||
		    strcmp(g.targets, sc->targets) != 0)
			fail_msg("%s: status %d dsn %s targets \"%s\" (%s)",
			    sc->what, g.status, g.dsn, g.targets, g.error);
		if (took < 1400 || took > 5000)
			fail_msg("%s: took %lld ms, want about 1500", sc->what,
			    (long long)took);
	}
	got_reset(&g);
}

/* cancelled while the MX lookup runs, and while address lookups run */
static void
test_cancel_in_flight(void **state)
{
	struct dns_query *q;
	struct got g;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.port);
	dns_set_timeout_ms(1000);
	memset(&g, 0, sizeof(g));
	/* the MX lookup is in flight until the loop runs */
	q = dns_resolve_targets("two.test", 25, 1, targets_cb, &g);
	assert_non_null(q);
	dns_cancel(q);
	run_for(300);
	assert_int_equal(g.calls, 0);
	/* after 300 ms the MX answer is in and h.slow.test's addresses
	 * wait for the silent server: cancel with those in flight; were
	 * the cancel lost, the 1 s timeout would call back */
	q = dns_resolve_targets("allslow.test", 25, 1, targets_cb, &g);
	assert_non_null(q);
	run_for(300);
	assert_int_equal(g.calls, 0);
	dns_cancel(q);
	run_for(1500);
	assert_int_equal(g.calls, 0);
	/* the same query left alone does call back, once */
	lab_resolver(lab.port);
	dns_set_timeout_ms(1000);
	q = dns_resolve_targets("allslow.test", 25, 1, targets_cb, &g);
	assert_non_null(q);
	run_for(2000);
	assert_int_equal(g.calls, 1);
	got_reset(&g);
}

/* cancelling from inside the callback is harmless */
static void
cancel_cb(const struct dns_targets *res, void *arg)
{
	struct dns_query **qp = arg;

	(void)res;
	dns_cancel(*qp);
	*qp = NULL;
}

static void
test_cancel_inside_callback(void **state)
{
	struct dns_query *q;
	int calls = 0;

	(void)state;
	if (lab.dnsmasq <= 0)
		skip();
	lab_resolver(lab.port);
	q = dns_resolve_targets("plain.test", 25, 1, cancel_cb, &q);
	assert_non_null(q);
	while (q != NULL && calls++ < 200)
		run_for(20);
	assert_null(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_parse),
		cmocka_unit_test(test_mx_parse_too_long),
		cmocka_unit_test(test_mx_drop_self),
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_mx_sort_uses_shuffle),
		cmocka_unit_test(test_mx_sort_spreads),
		cmocka_unit_test(test_targets_without_resolver),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_lookup_spreads),
		cmocka_unit_test(test_client_name),
		cmocka_unit_test(test_servfail),
		cmocka_unit_test(test_reverse_name),
		cmocka_unit_test(test_answer_lists),
		cmocka_unit_test(test_lookup_a),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_cancel_in_flight),
		cmocka_unit_test(test_cancel_inside_callback),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, lab_setup, lab_teardown);
}

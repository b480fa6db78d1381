/*
 * dnsbl.c - a client address checked against the DNS lists of the
 * configuration (dnsbl, dnswl; RFC 5782).
 *
 * The one idea: every list is asked at once, and the answer never waits
 * for a slow list: the session takes the verdict of what has answered
 * when its greeting is due (dnsbl_verdict), so a list that does not
 * answer lists nobody.  An allowlist that lists the client settles the
 * check at once (the session then skips its greet pause); otherwise the
 * weights (dnsbl weight=) of the blocklists that list it are summed and
 * the sum compared with limits dnsbl-threshold=, as Postfix's
 * postscreen_dnsbl_sites and postscreen_dnsbl_threshold do.
 *
 * Queries are A records of the address reversed under the zone (IPv4
 * octets, IPv6 nibbles, RFC 5782 2.1 and 2.4); an IPv4-mapped IPv6
 * client is asked as IPv4.  A temporary failure, NXDOMAIN and an answer
 * outside what counts (dnsbl_answer_lists) all list nothing.
 */
#include "dnsbl.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dns.h"
#include "util.h"

/* the reversed IPv6 address (64) and a zone of at most 180 (conf.c) */
#define DNSBL_NAME_MAX 256
/* the listing zones named in replies and logs */
#define DNSBL_NAMES_MAX 256

struct dnsbl_one {
	struct dnsbl_check *k;
	const struct conf_dnsbl *b;
	struct dns_query *q;  /* while it runs */
	int listed;
};

struct dnsbl_check {
	const struct conf *c;
	dnsbl_cb cb;
	void *arg;
	struct dnsbl_one *lists;
	size_t n;
	size_t pending;
	int starting;   /* inside dnsbl_start: the callback waits */
	int reported;
	char names[DNSBL_NAMES_MAX];
};

/* dnsbl_answer_lists - one of the answers counts as a listing */
int
dnsbl_answer_lists(const struct conf_dnsbl *b,
    const unsigned char (*addrs)[4], size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (b->nmatch == 0 && addrs[i][0] == 127 &&
		    !(addrs[i][1] == 255 && addrs[i][2] == 255))
			return 1;
		for (k = 0; k < b->nmatch; k++)
			if (memcmp(b->match[k], addrs[i], 4) == 0)
				return 1;
	}
	return 0;
}

/* dnsbl_verdict - from the answers so far */
enum dnsbl_verdict
dnsbl_verdict(const struct dnsbl_check *k)
{
	size_t i;

	if (k == NULL)
		return DNSBL_PASS;
	for (i = 0; i < k->n; i++)
		if (k->lists[i].listed && k->lists[i].b->allow)
			return DNSBL_ALLOWED;
	return dnsbl_score(k) >= k->c->dnsbl_threshold ? DNSBL_LISTED :
	    DNSBL_PASS;
}

/* dnsbl_score - the weights of the blocklists that list the client */
unsigned
dnsbl_score(const struct dnsbl_check *k)
{
	unsigned sum = 0;
	size_t i;

	for (i = 0; k != NULL && i < k->n; i++)
		if (k->lists[i].listed)
			sum += k->lists[i].b->weight;
	return sum;
}

/* dnsbl_names - the zones that list the client, in configuration order:
 * the allowlists when one does, else the blocklists */
const char *
dnsbl_names(const struct dnsbl_check *k)
{
	struct dnsbl_check *m = (struct dnsbl_check *)k;
	int allow;
	size_t i, len = 0;

	if (k == NULL)
		return "";
	allow = dnsbl_verdict(k) == DNSBL_ALLOWED;
	m->names[0] = '\0';
	for (i = 0; i < k->n && len < sizeof(m->names); i++) {
		if (!k->lists[i].listed || k->lists[i].b->allow != allow)
			continue;
		len += (size_t)snprintf(m->names + len, sizeof(m->names) - len,
		    "%s%s", len ? ", " : "", k->lists[i].b->zone);
	}
	return m->names;
}

/* dnsbl_pending - some list has not answered and it could matter */
int
dnsbl_pending(const struct dnsbl_check *k)
{
	return k != NULL && k->pending > 0 &&
	    dnsbl_verdict(k) != DNSBL_ALLOWED;
}

/* report - the verdict once it is settled */
static void
report(struct dnsbl_check *k)
{
	if (k->reported || k->starting || dnsbl_pending(k))
		return;
	k->reported = 1;
	k->cb(dnsbl_verdict(k), k->arg);
}

static void
answered(enum dns_status st, const unsigned char (*addrs)[4], size_t n,
    void *arg)
{
	struct dnsbl_one *o = arg;

	o->q = NULL;
	o->k->pending--;
	if (st == DNS_OK && dnsbl_answer_lists(o->b, addrs, n))
		o->listed = 1;
	else if (st == DNS_OK)
		log_info("dnsbl: %s answered %u.%u.%u.%u, which lists nobody "
		    "(an error code, or match= leaves it out)", o->b->zone,
		    addrs[0][0], addrs[0][1], addrs[0][2], addrs[0][3]);
	report(o->k);
}

/* client_bytes - the address of sa (IPv4-mapped as IPv4); the family */
static int
client_bytes(const struct sockaddr *sa, unsigned char *addr)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(addr, &s6->sin6_addr.s6_addr[12], 4);
		return AF_INET;
	}
	memcpy(addr, &s6->sin6_addr, 16);
	return AF_INET6;
}

/* dnsbl_start - every list asked about sa */
struct dnsbl_check *
dnsbl_start(const struct conf *c, const struct sockaddr *sa, dnsbl_cb cb,
    void *arg)
{
	struct dnsbl_check *k;
	unsigned char addr[16];
	char name[DNSBL_NAME_MAX];
	int family;
	size_t i;

	if (c->ndnsbls == 0 ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return NULL;
	family = client_bytes(sa, addr);
	k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->cb = cb;
	k->arg = arg;
	k->lists = xcalloc(c->ndnsbls, sizeof(*k->lists));
	k->n = c->ndnsbls;
	k->starting = 1;
	for (i = 0; i < k->n; i++) {
		k->lists[i].k = k;
		k->lists[i].b = &c->dnsbls[i];
		if (dns_reverse_name(family, addr, c->dnsbls[i].zone, name,
		    sizeof(name)) == -1)
			continue; /* conf.c bounds zones: cannot happen */
		k->pending++;
		k->lists[i].q = dns_lookup_a(name, answered, &k->lists[i]);
	}
	k->starting = 0;
	return k;
}

/* dnsbl_free - cancel and forget */
void
dnsbl_free(struct dnsbl_check *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->n; i++)
		dns_cancel(k->lists[i].q);
	free(k->lists);
	free(k);
}

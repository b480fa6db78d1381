/*
 * route.c - which way a recipient goes, in DESIGN.md's order: a local
 * domain (or "", the bare postmaster) is delivered here; a domain named by
 * a route goes to that route; everything else goes to the smarthost when
 * there is one, else to the MX hosts of the domain (RFC 5321 5.1).
 *
 * Pure: the configuration decides, nothing is looked up here (dns.c turns
 * a route into addresses later).  An address literal (RFC 5321 4.1.3,
 * "[198.51.100.1]" or "[IPv6:2001:db8::1]") names its host itself: it takes
 * the place of the MX lookup, so the smarthost still comes first, as it
 * does for every other domain (a host told to use a smarthost usually
 * cannot reach port 25 anywhere else).
 */
#include "route.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define ROUTE_SMTP_PORT 25

static const char *const route_tls_names[] = {
	[TLS_MAY] = "may", [TLS_NONE] = "none", [TLS_ENCRYPT] = "encrypt",
	[TLS_VERIFY] = "verify",
};

/* route_relay - the relay r (a route or the smarthost) into out */
static int
route_relay(struct route *out, const struct conf_relay *r, const char *via)
{
	out->kind = ROUTE_RELAY;
	snprintf(out->host, sizeof(out->host), "%s", r->host);
	out->port = r->port;
	out->mx = r->mx;
	out->tls = r->tls;
	out->auth_file = r->auth_file;
	out->ca_file = r->ca_file;
	out->via = via;
	return 0;
}

/*
 * route_literal - "[a.b.c.d]" or "[IPv6:...]" to its address, written as
 * inet_ntop does; -1 for anything else (a general address literal of
 * another tag, or no address at all).
 */
static int
route_literal(const char *domain, struct route *out)
{
	char inner[SMTP_DOMAIN_MAX + 1];
	unsigned char bin[16];
	size_t len = strlen(domain);
	const char *addr = inner;
	int family = AF_INET;

	if (len < 3 || domain[len - 1] != ']' || len - 2 >= sizeof(inner))
		return -1;
	memcpy(inner, domain + 1, len - 2);
	inner[len - 2] = '\0';
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		family = AF_INET6;
		addr = inner + 5;
	}
	if (inet_pton(family, addr, bin) != 1)
		return -1;
	inet_ntop(family, bin, out->host, sizeof(out->host));
	out->kind = ROUTE_RELAY;
	out->mx = 0;
	out->via = "literal";
	return 0;
}

/* route_lower - domain into out->host in lower case */
static void
route_lower(struct route *out, const char *domain)
{
	snprintf(out->host, sizeof(out->host), "%s", domain);
	util_lower(out->host);
}

/* route_for_domain - local, route, smarthost, literal or MX */
int
route_for_domain(const struct conf *c, const char *domain, struct route *out)
{
	const struct conf_relay *r;

	memset(out, 0, sizeof(*out));
	out->port = ROUTE_SMTP_PORT;
	out->tls = TLS_MAY;
	if (strlen(domain) > SMTP_DOMAIN_MAX)
		return -1;
	if (domain[0] == '\0' || conf_is_local_domain(c, domain)) {
		out->kind = ROUTE_LOCAL;
		route_lower(out, domain);
		out->via = "local";
		return 0;
	}
	if ((r = conf_route_for(c, domain)) != NULL)
		return route_relay(out, r, "route");
	if (c->smarthost != NULL)
		return route_relay(out, c->smarthost, "smarthost");
	if (domain[0] == '[')
		return route_literal(domain, out);
	out->kind = ROUTE_MX;
	route_lower(out, domain);
	out->mx = 1;
	out->via = "mx";
	return 0;
}

/*
 * route_key - "mx:DOMAIN:25", "[HOST]:PORT" or "HOST:PORT", "local" for
 * local delivery.  A TLS policy other than "may" and an auth file are
 * added, then a CA file (" tls=verify auth=/etc/tern/x ca=/etc/ca.pem"):
 * a connection is reused for the next message with the same key, so two
 * routes to one host with different policies, credentials or trust must
 * not share one.
 */
void
route_key(const struct route *r, char *out, size_t outlen)
{
	struct buf b;

	buf_init(&b);
	if (r->kind == ROUTE_LOCAL)
		buf_puts(&b, "local");
	else if (r->kind == ROUTE_MX)
		buf_printf(&b, "mx:%s:%d", r->host, r->port);
	else if (r->mx)
		buf_printf(&b, "%s:%d", r->host, r->port);
	else
		buf_printf(&b, "[%s]:%d", r->host, r->port);
	if (r->kind != ROUTE_LOCAL && r->tls != TLS_MAY)
		buf_printf(&b, " tls=%s", route_tls_names[r->tls]);
	if (r->kind != ROUTE_LOCAL && r->auth_file != NULL)
		buf_printf(&b, " auth=%s", r->auth_file);
	if (r->kind != ROUTE_LOCAL && r->ca_file != NULL)
		buf_printf(&b, " ca=%s", r->ca_file);
	snprintf(out, outlen, "%s", b.data);
	buf_free(&b);
}

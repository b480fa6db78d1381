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
 *
 * LMTP (RFC 2033): "mailbox lmtp:" names a mail store that takes local
 * mail over LMTP; route_lmtp() reads its address and sched.c hands local
 * recipients that way to the outbound client, like a relay without MX.
 */
#include "route.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
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

/* lmtp_fail - the reason spec is not usable, into err; -1 */
static int
lmtp_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* lmtp_unix - "unix:/path": an absolute path that fits in sun_path */
static int
lmtp_unix(const char *path, struct route *out, char *err, size_t errlen)
{
	const char *p;

	if (path[0] != '/')
		return lmtp_fail(err, errlen, "the socket path of unix: is "
		    "not absolute");
	if (strlen(path) > ROUTE_UNIX_PATH_MAX)
		return lmtp_fail(err, errlen, "the socket path of unix: is "
		    "longer than 107 octets");
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return lmtp_fail(err, errlen, "the socket path of unix: "
			    "holds a control character");
	snprintf(out->host, sizeof(out->host), "%s", path);
	out->unix_socket = 1;
	out->port = 0;
	return 0;
}

/* lmtp_port - the decimal port after the host: 1 to 65535, required */
static int
lmtp_port(const char *s, int *port)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* lmtp_host_ok - an IP address, or a domain name (no address literal) */
static int
lmtp_host_ok(const char *host)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1)
		return 1;
	return host[0] != '[' && smtp_domain_valid(host, 0);
}

/* lmtp_inet - "[host]:port" or "host:port" (IPv6 only in brackets) */
static int
lmtp_inet(const char *spec, struct route *out, char *err, size_t errlen)
{
	char host[SMTP_DOMAIN_MAX + 1];
	const char *end, *colon;
	int bracketed = spec[0] == '[';
	size_t len;

	if (bracketed) {
		end = strchr(spec, ']');
		if (end == NULL)
			return lmtp_fail(err, errlen, "no ']' after the host");
		colon = end[1] == ':' ? end + 1 : NULL;
		spec++;
	} else {
		colon = strrchr(spec, ':');
		end = colon;
	}
	if (colon == NULL)
		return lmtp_fail(err, errlen, "no port: LMTP has no standard "
		    "port, write [host]:port or unix:/path");
	len = (size_t)(end - spec);
	if (len == 0 || len >= sizeof(host))
		return lmtp_fail(err, errlen, "no usable host name");
	memcpy(host, spec, len);
	host[len] = '\0';
	if (!bracketed && strchr(host, ':') != NULL)
		return lmtp_fail(err, errlen, "an IPv6 address needs "
		    "brackets: [address]:port");
	if (!lmtp_host_ok(host))
		return lmtp_fail(err, errlen, "the host is neither an IP "
		    "address nor a domain name");
	if (lmtp_port(colon + 1, &out->port) == -1)
		return lmtp_fail(err, errlen, "the port is not a number from "
		    "1 to 65535");
	snprintf(out->host, sizeof(out->host), "%s", host);
	util_lower(out->host);
	return 0;
}

/* route_lmtp - "unix:/path", "[host]:port" or "host:port" */
int
route_lmtp(const char *spec, struct route *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->kind = ROUTE_LMTP;
	out->tls = TLS_NONE;
	out->via = "lmtp";
	if (strncmp(spec, "unix:", 5) == 0)
		return lmtp_unix(spec + 5, out, err, errlen);
	return lmtp_inet(spec, out, err, errlen);
}

/*
 * route_key - "mx:DOMAIN:25", "[HOST]:PORT" or "HOST:PORT", "local" for
 * local delivery, "lmtp:unix:PATH" or "lmtp:[HOST]:PORT" for LMTP (both
 * LMTP forms look up addresses, never MX).  A TLS policy other than "may" and an auth file are
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
	if (r->kind == ROUTE_LMTP) {
		/* the policy is always none, never an auth or CA file */
		if (r->unix_socket)
			buf_printf(&b, "lmtp:unix:%s", r->host);
		else
			buf_printf(&b, "lmtp:[%s]:%d", r->host, r->port);
		snprintf(out, outlen, "%s", b.data);
		buf_free(&b);
		return;
	}
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

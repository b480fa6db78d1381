/*
 * route.h - which way a recipient goes, in DESIGN.md's order: local
 * domains, then explicit routes, then the smarthost, then DNS (MX).
 * Pure: decides from the configuration alone.
 */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H

#include <stddef.h>

#include "conf.h"
#include "smtp_parse.h"

enum route_kind {
	ROUTE_LOCAL = 0, /* a local domain: local delivery */
	ROUTE_RELAY,     /* a route or the smarthost: a named host */
	ROUTE_MX         /* DNS: the MX records of the recipient domain */
};

struct route {
	enum route_kind kind;
	/* ROUTE_RELAY: the relay host (name or IP, no brackets);
	 * ROUTE_MX: the recipient domain (lower case) */
	char host[SMTP_DOMAIN_MAX + 1];
	int port;             /* 25 unless the route says otherwise */
	int mx;               /* look up MX records of host (ROUTE_MX: 1) */
	enum tls_policy tls;
	const char *auth_file; /* credentials for AUTH, or NULL */
	const char *ca_file;  /* tls=verify: CAs instead of the system's,
	                       * or NULL */
	const char *via;      /* "local", "route", "smarthost", "literal"
	                       * or "mx" */
};

/*
 * route_for_domain - decide the route of a recipient domain ("" for the
 * bare postmaster, which is local).  Returns 0.  An address literal
 * ("[198.51.100.1]", "[IPv6:2001:db8::1]") is ROUTE_RELAY to that address,
 * no MX, via "literal", when no route or smarthost takes it first.
 * Returns -1 (out unusable) for a literal that holds no IP address or a
 * domain longer than SMTP_DOMAIN_MAX: input smtp_parse never lets pass.
 */
int route_for_domain(const struct conf *c, const char *domain,
    struct route *out);

/* route_key's output fits in this: a host, a port, a policy and two paths
 * (auth= and ca=), so that two destinations never share a truncated key */
#define ROUTE_KEY_MAX (SMTP_DOMAIN_MAX + 2 * 4096 + 64)

/*
 * route_key - the destination a route names, as a string: recipients with
 * the same key travel in one transaction, share connections and one
 * concurrency limit ("mx:example.org:25", "[relay.example.net]:587",
 * "relay.example.net:25" for an MX-looked-up relay, "local"; a TLS policy
 * other than may, an auth file and a CA file are appended: "[relay]:587
 * tls=verify auth=/etc/tern/relay.secret ca=/etc/tern/ca.pem").
 */
void route_key(const struct route *r, char *out, size_t outlen);

#endif

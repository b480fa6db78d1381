/*
 * route.h - which way a recipient goes, in DESIGN.md's order: local
 * domains, then explicit routes, then the smarthost, then DNS (MX).  A
 * local mailbox reached over LMTP (RFC 2033) is a route too: the outbound
 * client delivers it.  Pure: decides from the configuration alone.
 */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H

#include <stddef.h>

#include "conf.h"
#include "smtp_parse.h"

enum route_kind {
	ROUTE_LOCAL = 0, /* a local domain: local delivery */
	ROUTE_RELAY,     /* a route or the smarthost: a named host */
	ROUTE_MX,        /* DNS: the MX records of the recipient domain */
	ROUTE_LMTP       /* a local mailbox over LMTP (mailbox lmtp:) */
};

struct route {
	enum route_kind kind;
	/* ROUTE_RELAY: the relay host (name or IP, no brackets);
	 * ROUTE_MX: the recipient domain (lower case);
	 * ROUTE_LMTP: the host (lower case), or the socket's path */
	char host[SMTP_DOMAIN_MAX + 1];
	int port;             /* 25 unless the route says otherwise; 0 for
	                       * a UNIX-domain socket */
	int unix_socket;      /* ROUTE_LMTP: host is the absolute path of a
	                       * UNIX-domain socket */
	int mx;               /* look up MX records of host (ROUTE_MX: 1) */
	enum tls_policy tls;
	const char *auth_file; /* credentials for AUTH, or NULL */
	const char *ca_file;  /* tls=verify: CAs instead of the system's,
	                       * or NULL */
	const char *via;      /* "local", "route", "smarthost", "literal",
	                       * "mx" or "lmtp" */
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

/* the longest socket path of lmtp:unix: (sun_path with its NUL) */
#define ROUTE_UNIX_PATH_MAX 107

/*
 * route_lmtp - the route of "mailbox lmtp:SPEC", spec being what follows
 * "lmtp:": "unix:/absolute/path" (a UNIX-domain socket, at most
 * ROUTE_UNIX_PATH_MAX octets), "[host]:port" or "host:port" (an IP
 * address, IPv6 in brackets, or a name whose A/AAAA records are used:
 * LMTP never looks up MX records).  The port is required: LMTP has no
 * standard port (RFC 2033 5 keeps it off 25).  The TLS policy is none:
 * LMTP goes to a mail store on this host or next to it, as Dovecot's
 * lmtp service is usually set up, and tern sends neither STARTTLS nor
 * AUTH there.  Returns 0, or -1 with the reason in err.
 */
int route_lmtp(const char *spec, struct route *out, char *err,
    size_t errlen);

/* route_key's output fits in this: a host, a port, a policy and two paths
 * (auth= and ca=), so that two destinations never share a truncated key */
#define ROUTE_KEY_MAX (SMTP_DOMAIN_MAX + 2 * 4096 + 64)

/*
 * route_key - the destination a route names, as a string: recipients with
 * the same key travel in one transaction, share connections and one
 * concurrency limit ("mx:example.org:25", "[relay.example.net]:587",
 * "relay.example.net:25" for an MX-looked-up relay, "local",
 * "lmtp:unix:/run/dovecot/lmtp" or "lmtp:[127.0.0.1]:24" for LMTP, so
 * that an LMTP connection is never taken for SMTP; a TLS policy
 * other than may, an auth file and a CA file are appended: "[relay]:587
 * tls=verify auth=/etc/tern/relay.secret ca=/etc/tern/ca.pem").
 */
void route_key(const struct route *r, char *out, size_t outlen);

#endif

/*
 * dns.h - asynchronous DNS on the event loop, through libunbound.
 *
 * By default the system's /etc/resolv.conf and /etc/hosts are used.  A
 * lookup never blocks the loop; its callback runs later on the loop, or
 * never once the lookup is cancelled.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns_rr.h"

struct event_base;
struct dns_query;

/*
 * dns_init - prepare lookups on this loop; resolver NULL for the system's
 * (/etc/resolv.conf and /etc/hosts), else "IP" or "IP@PORT" (conf.h
 * resolver), which then answers everything.  Once per process; -1 when
 * libunbound cannot start (lookups then fail at once, temporarily).
 */
int dns_init(struct event_base *base, const char *resolver);
/*
 * dns_shutdown - end libunbound and forget this host; every lookup must
 * have been cancelled or have finished.  dns_init may follow.
 */
void dns_shutdown(void);

/* dns_name_cb - name is the verified name, or NULL ("unknown") */
typedef void (*dns_name_cb)(const char *name, void *arg);

/*
 * dns_client_name - forward-confirmed reverse DNS of a client address: the
 * PTR name is reported only when that name resolves back to the address.
 * Answers (found or not) are kept for a minute: a client that connects
 * again is answered at once.
 * Returns a handle for dns_cancel, or NULL when the callback already ran.
 */
struct dns_query *dns_client_name(const struct sockaddr *sa,
    dns_name_cb cb, void *arg);
/* dns_cancel - forget a lookup; its callback will not run */
void dns_cancel(struct dns_query *q);

/* the addresses to try for a destination, in order */
struct dns_target {
	char host[256];   /* the MX host (or the host itself), for logs and
	                   * TLS name checks */
	int pref;         /* MX preference; 0 for implicit MX or a host */
	struct sockaddr_storage ss; /* address and port */
	socklen_t sslen;
};

enum dns_status {
	DNS_OK = 0,
	DNS_TEMP,   /* SERVFAIL, timeout, no answer yet: retry later */
	DNS_PERM    /* NXDOMAIN, null MX, MX loop, no address at all */
};

struct dns_targets {
	enum dns_status status;
	char dsn[16];      /* enhanced status for a failure: "5.1.2" (no such
	                    * domain), "5.1.10" (null MX, RFC 7505), "5.4.6"
	                    * (MX loop), "5.4.4" (no address), "4.4.3" (DNS
	                    * temporary failure) */
	char error[256];   /* the failure in words, for logs and DSNs */
	struct dns_target *t;
	size_t n;
};

/* dns_targets_cb - res is valid during the call only */
typedef void (*dns_targets_cb)(const struct dns_targets *res, void *arg);

/*
 * dns_set_self - what "this host" means in MX lists: the host name (any
 * case) and every local interface address (getifaddrs), read now.
 */
void dns_set_self(const char *hostname);

/*
 * dns_resolve_targets - the ordered addresses to try for a destination
 * (RFC 5321 5.1).  With mx: the MX records of name, sorted by preference
 * with equal preferences shuffled; no MX records: the name itself
 * (implicit MX); a null MX (RFC 7505): DNS_PERM 5.1.10.  When this host
 * is in the list, it and every less preferred host are dropped; when that
 * leaves nothing, DNS_PERM 5.4.6 (loop).  Without mx: the A/AAAA records
 * of name, or name itself when it is an IP address.  Each host gives its
 * IPv6 and IPv4 addresses (IPv6 first).  NXDOMAIN of name: DNS_PERM 5.1.2;
 * SERVFAIL or timeout: DNS_TEMP 4.4.3.  Every target gets port.  The
 * callback may run before this returns (IP addresses need no lookup); the
 * handle is NULL then.
 */
struct dns_query *dns_resolve_targets(const char *name, int port, int mx,
    dns_targets_cb cb, void *arg);

/*
 * dns_a_cb - the A records of a name: DNS_OK with n (1 to 8) addresses
 * of 4 octets, valid during the call only; DNS_PERM when the name does
 * not exist or has no A record; DNS_TEMP on a failure or a timeout
 */
typedef void (*dns_a_cb)(enum dns_status st, const unsigned char (*addrs)[4],
    size_t n, void *arg);

/*
 * dns_lookup_a - the A records of name (a DNS list query, RFC 5782 2.1).
 * The callback may run before this returns (no resolver); the handle is
 * NULL then.
 */
struct dns_query *dns_lookup_a(const char *name, dns_a_cb cb, void *arg);

/* dns_set_timeout_ms - the overall limit of one query (default 30 s) */
void dns_set_timeout_ms(int64_t ms);

#endif

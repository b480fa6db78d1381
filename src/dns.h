/*
 * dns.h - asynchronous DNS on the event loop, through libunbound.
 *
 * By default the system's /etc/resolv.conf and /etc/hosts are used.  A
 * lookup never blocks the loop; its callback runs later on the loop, or
 * never once the lookup is cancelled.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <sys/socket.h>

struct event_base;
struct dns_query;

/* dns_init - prepare lookups on this loop; resolver NULL for the system's */
int dns_init(struct event_base *base, const char *resolver);

/* dns_name_cb - name is the verified name, or NULL ("unknown") */
typedef void (*dns_name_cb)(const char *name, void *arg);

/*
 * dns_client_name - forward-confirmed reverse DNS of a client address: the
 * PTR name is reported only when that name resolves back to the address.
 * Returns a handle for dns_cancel, or NULL when the callback already ran.
 */
struct dns_query *dns_client_name(const struct sockaddr *sa,
    dns_name_cb cb, void *arg);
/* dns_cancel - forget a lookup; its callback will not run */
void dns_cancel(struct dns_query *q);

#endif

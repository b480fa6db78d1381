/*
 * dns_rr.h - the pure steps of dns_resolve_targets: MX and PTR rdata read
 * from wire form, the MX list ordered, between the answer and the address
 * lookups.  No resolver is needed to call them.
 */
#ifndef TERN_DNS_RR_H
#define TERN_DNS_RR_H

#include <stddef.h>
#include <stdint.h>

/*
 * dns_dname_to_str - a name in wire form (uncompressed) to dotted text
 * without the final dot; the root alone gives "".  -1 when malformed, too
 * long for out (outlen with the NUL), or a label holds a dot or a NUL (the
 * text would name another domain).
 */
int dns_dname_to_str(const unsigned char *d, size_t len, char *out,
    size_t outlen);

/*
 * dns_reverse_name - an address as a name under zone, octets reversed
 * (IPv4: "4.3.2.1.ZONE") or nibbles reversed (IPv6: 32 hex digits),
 * as PTR names (zone "in-addr.arpa", "ip6.arpa") and DNS lists (RFC 5782
 * 2.1, 2.4) are asked.  family AF_INET takes 4 octets of addr,
 * AF_INET6 16.  -1 when out (outlen with the NUL) is too small.
 */
int dns_reverse_name(int family, const unsigned char *addr, const char *zone,
    char *out, size_t outlen);

struct dns_mx {
	char host[256];   /* lower case; "" for the null MX "." */
	int pref;
	int self;         /* this host, by name or by address */
};

enum dns_mx_result {
	DNS_MX_OK = 0,
	DNS_MX_NULL,      /* null MX (RFC 7505): no mail at all */
	DNS_MX_LOOP       /* this host is the most preferred (5.4.6) */
};

/* dns_mx_parse - one MX rdata (preference, name in wire form); -1 bad */
int dns_mx_parse(const unsigned char *rdata, size_t len, struct dns_mx *mx);
/*
 * dns_mx_sort - by preference, equal preferences in random order; rnd(n)
 * returns a number below n (arc4random_uniform outside tests)
 */
void dns_mx_sort(struct dns_mx *mx, size_t n, uint32_t (*rnd)(uint32_t));
/*
 * dns_mx_drop_self - how many hosts of a sorted list remain once every
 * host marked self and every host at or after its preference is dropped
 * (RFC 5321 5.1); 0 with some host kept means a loop
 */
size_t dns_mx_drop_self(const struct dns_mx *mx, size_t n);
/*
 * dns_mx_order - a whole MX answer made ready for address lookups: null
 * MX detected, "." and repeated hosts dropped, sorted and shuffled, hosts
 * named self (any case; NULL: none) dropped with the less preferred, at
 * most max kept.  *n is updated.
 */
enum dns_mx_result dns_mx_order(struct dns_mx *mx, size_t *n,
    const char *self, size_t max, uint32_t (*rnd)(uint32_t));

#endif

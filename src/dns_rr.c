/*
 * dns_rr.c - the DNS data tern decodes itself: names in wire form (PTR and
 * MX rdata, RFC 1035 3.1, 3.3.9, 3.3.12) and MX lists made ready for
 * delivery (RFC 5321 5.1, RFC 7505); and the reversed names addresses are
 * asked under (PTR, RFC 1035 3.5, RFC 3596 2.5; DNS lists, RFC 5782 2).
 *
 * The one idea: libunbound hands over each record's rdata as raw octets;
 * A and AAAA rdata are only length-checked and copied (dns.c), but a name
 * is read here, label by label, every length checked against the rdata
 * and the output before it is used.  libunbound gives names uncompressed;
 * a compression pointer (a label length over 63) is refused, never
 * followed.  Pure: no libunbound, no libevent, so the unit tests and
 * fuzz/fuzz_dns_rr.c link it alone.
 */
#include "dns_rr.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

#include "smtp_parse.h"
#include "util.h"

/*
 * dns_dname_to_str - wire-format name to dotted text without the final dot;
 * the root alone gives "".  -1 when malformed, too long, or a label holds
 * a dot or a NUL (the text would name another domain: "ex\0mple.org"
 * would be read as "ex").
 */
int
dns_dname_to_str(const unsigned char *d, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0, l;

	if (outlen == 0)
		return -1;
	while (i < len && d[i] != 0) {
		l = d[i++];
		if (l > 63 || i + l > len || o + l + 1 >= outlen ||
		    memchr(d + i, '.', l) != NULL ||
		    memchr(d + i, '\0', l) != NULL)
			return -1;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, d + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	return i < len ? 0 : -1; /* the root label must be there */
}

/* dns_mx_parse - preference and host of one MX rdata */
int
dns_mx_parse(const unsigned char *rdata, size_t len, struct dns_mx *mx)
{
	memset(mx, 0, sizeof(*mx));
	if (len < 3)
		return -1;
	mx->pref = rdata[0] << 8 | rdata[1];
	if (dns_dname_to_str(rdata + 2, len - 2, mx->host, sizeof(mx->host)) ==
	    -1)
		return -1;
	util_lower(mx->host);
	if (mx->host[0] != '\0' && !smtp_domain_valid(mx->host, 0))
		return -1;
	return 0;
}

/* dns_mx_sort - shuffle, then a stable sort by preference */
void
dns_mx_sort(struct dns_mx *mx, size_t n, uint32_t (*rnd)(uint32_t))
{
	struct dns_mx tmp;
	size_t i, j;

	/* Fisher-Yates; n is at most DNS_MX_RECORDS_MAX */
	for (i = n; i > 1; i--) {
		j = rnd((uint32_t)i);
		tmp = mx[i - 1];
		mx[i - 1] = mx[j];
		mx[j] = tmp;
	}
	/* insertion sort keeps the shuffled order of equal preferences */
	for (i = 1; i < n; i++) {
		tmp = mx[i];
		for (j = i; j > 0 && mx[j - 1].pref > tmp.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = tmp;
	}
}

/* dns_mx_drop_self - the hosts more preferred than every self host */
size_t
dns_mx_drop_self(const struct dns_mx *mx, size_t n)
{
	size_t i;
	int cut = -1;

	for (i = 0; i < n; i++)
		if (mx[i].self && (cut == -1 || mx[i].pref < cut))
			cut = mx[i].pref;
	if (cut == -1)
		return n;
	for (i = 0; i < n && mx[i].pref < cut; i++)
		;
	return i;
}

/*
 * mx_compact - drop "." and repeated hosts (the most preferred copy is
 * kept); returns how many "." there were
 */
static size_t
mx_compact(struct dns_mx *mx, size_t *n)
{
	size_t i, j, out = 0, roots = 0;

	for (i = 0; i < *n; i++) {
		if (mx[i].host[0] == '\0') {
			roots++;
			continue;
		}
		for (j = 0; j < out; j++)
			if (strcmp(mx[j].host, mx[i].host) == 0)
				break;
		if (j < out) {
			if (mx[i].pref < mx[j].pref)
				mx[j].pref = mx[i].pref;
			continue;
		}
		mx[out++] = mx[i];
	}
	*n = out;
	return roots;
}

/* dns_mx_order - an MX answer made ready for the address lookups */
enum dns_mx_result
dns_mx_order(struct dns_mx *mx, size_t *n, const char *self, size_t max,
    uint32_t (*rnd)(uint32_t))
{
	size_t i, had = *n, roots = mx_compact(mx, n);

	/* RFC 7505: a domain with a null MX has no other MX; a list of
	 * nothing but "." is read as one, a "." among hosts as a mistake */
	if (had > 0 && roots == had)
		return DNS_MX_NULL;
	dns_mx_sort(mx, *n, rnd);
	for (i = 0; i < *n; i++)
		if (self != NULL && strcasecmp(mx[i].host, self) == 0)
			mx[i].self = 1;
	had = *n;
	*n = dns_mx_drop_self(mx, *n);
	if (had > 0 && *n == 0)
		return DNS_MX_LOOP;
	if (*n > max)
		*n = max;
	return DNS_MX_OK;
}

/* dns_reverse_name - addr reversed under zone (PTR names, DNS lists) */
int
dns_reverse_name(int family, const unsigned char *addr, const char *zone,
    char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int i, n;

	if (family == AF_INET) {
		n = snprintf(out, outlen, "%u.%u.%u.%u.%s", addr[3], addr[2],
		    addr[1], addr[0], zone);
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (outlen < 64 + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		out[o++] = hex[addr[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[addr[i] >> 4];
		out[o++] = '.';
	}
	n = snprintf(out + o, outlen - o, "%s", zone);
	return n < 0 || (size_t)n >= outlen - o ? -1 : 0;
}

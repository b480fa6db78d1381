/*
 * fuzz_dns_rr.c - libFuzzer target for the DNS data tern decodes itself
 * (src/dns_rr.c): names in wire form, MX rdata, and whole MX answers put
 * in delivery order.
 *
 * The input is a list of rdata, each one length octet and that many
 * octets.  Besides memory safety it checks that a name read is exactly
 * the one in the wire (encoded again, it gives the octets read), that an
 * MX host is lower case and a valid domain or the root, and that an
 * ordered list is sorted, without the root, repeats or this host, and
 * bounded.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "dns_rr.h"
#include "smtp_parse.h"

#define RDATA_MAX 64
#define HOSTS_MAX 16

/* check_name - the text of a name, encoded again, is the wire's start */
static void
check_name(const unsigned char *d, size_t len, const char *text,
    size_t outlen)
{
	unsigned char wire[300];
	size_t w = 0, tl = strlen(text), i, start;

	FUZZ_ASSERT(tl < outlen);
	for (i = 0, start = 0; i <= tl && tl > 0; i++) {
		if (i < tl && text[i] != '.')
			continue;
		FUZZ_ASSERT(i - start >= 1 && i - start <= 63);
		FUZZ_ASSERT(w + 1 + (i - start) < sizeof(wire));
		wire[w++] = (unsigned char)(i - start);
		memcpy(wire + w, text + start, i - start);
		w += i - start;
		start = i + 1;
	}
	wire[w++] = 0;
	FUZZ_ASSERT(w <= len);
	for (i = 0; i < w; i++)  /* an MX host is lower-cased */
		FUZZ_ASSERT(tolower(wire[i]) == tolower(d[i]));
}

static uint32_t
rnd_first(uint32_t n)
{
	(void)n;
	return 0;
}

static void
check_order(struct dns_mx *mx, size_t n, const char *self)
{
	size_t had = n, roots = 0, i, j;
	enum dns_mx_result r;

	for (i = 0; i < n; i++)
		roots += mx[i].host[0] == '\0';
	r = dns_mx_order(mx, &n, self, HOSTS_MAX, rnd_first);
	FUZZ_ASSERT(n <= had && n <= HOSTS_MAX);
	if (r == DNS_MX_NULL) {
		FUZZ_ASSERT(had > 0 && roots == had);
		return;
	}
	if (r == DNS_MX_LOOP)
		FUZZ_ASSERT(n == 0 && self != NULL);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(mx[i].host[0] != '\0');
		FUZZ_ASSERT(mx[i].self == 0);
		FUZZ_ASSERT(i == 0 || mx[i - 1].pref <= mx[i].pref);
		for (j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(mx[i].host, mx[j].host) != 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_mx *mx = calloc(RDATA_MAX, sizeof(*mx));
	char name[256];
	const char *self = NULL;
	size_t off = 0, len, n = 0, outlen;

	/* the whole input as one name, into outputs of several sizes */
	for (outlen = 1; outlen <= sizeof(name); outlen += 85)
		if (dns_dname_to_str(data, size, name, outlen) == 0)
			check_name(data, size, name, outlen);
	if (dns_dname_to_str(data, size, name, sizeof(name)) == 0)
		check_name(data, size, name, sizeof(name));
	/* the input as a list of MX rdata */
	while (off < size && n < RDATA_MAX) {
		len = data[off++];
		if (len > size - off)
			len = size - off;
		if (dns_mx_parse(data + off, len, &mx[n]) == 0) {
			FUZZ_ASSERT(mx[n].pref == (data[off] << 8 | data[off + 1]));
			check_name(data + off + 2, len - 2, mx[n].host,
			    sizeof(mx[n].host));
			FUZZ_ASSERT(mx[n].host[0] == '\0' ||
			    smtp_domain_valid(mx[n].host, 0));
			FUZZ_ASSERT(strpbrk(mx[n].host,
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL);
			n++;
		}
		off += len;
	}
	/* the last host read is this host, when the input is odd-sized */
	if (n > 0 && size % 2 == 1)
		self = mx[n - 1].host;
	if (self != NULL) {
		strcpy(name, self);
		self = name;
	}
	check_order(mx, n, self);
	free(mx);
	return 0;
}

/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol reader
 * (src/proxy.c), v1 text and v2 binary.
 *
 * Besides memory safety it checks the promise a reader relies on: a
 * complete header's length lies inside the input and every shorter
 * prefix of it asks for more (so reading a header never takes the
 * client's data), input after a complete header changes nothing, a
 * refused input stays refused however it goes on, and an address read
 * is of the family its length says.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proxy.h"

static void
check_header(const struct proxy_header *h)
{
	FUZZ_ASSERT(h->version == 1 || h->version == 2);
	if (h->local)
		return;
	FUZZ_ASSERT(h->src.ss_family == h->dst.ss_family);
	FUZZ_ASSERT(h->src.ss_family == AF_INET ||
	    h->src.ss_family == AF_INET6);
	FUZZ_ASSERT(h->srclen == (h->src.ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header h, h2;
	const char *why;
	size_t used, used2, cut;
	enum proxy_status r, r2;

	r = proxy_parse(data, size, &h, &used, &why);
	if (r == PROXY_BAD) {
		FUZZ_ASSERT(why != NULL);
		return 0;
	}
	if (r == PROXY_NEED) {
		FUZZ_ASSERT(size < PROXY_HEADER_MAX);
		return 0;
	}
	FUZZ_ASSERT(used > 0 && used <= size && used <= PROXY_HEADER_MAX);
	check_header(&h);
	/* the header alone reads the same */
	r2 = proxy_parse(data, used, &h2, &used2, &why);
	FUZZ_ASSERT(r2 == PROXY_DONE && used2 == used);
	FUZZ_ASSERT(h2.local == h.local && h2.version == h.version);
	FUZZ_ASSERT(memcmp(&h2.src, &h.src, sizeof(h.src)) == 0);
	/* shorter: more is needed, never a refusal, never a header */
	for (cut = 0; cut < used; cut += 1 + cut / 8) {
		r2 = proxy_parse(data, cut, &h2, &used2, &why);
		FUZZ_ASSERT(r2 == PROXY_NEED);
	}
	FUZZ_ASSERT(proxy_parse(data, used - 1, &h2, &used2, &why) ==
	    PROXY_NEED);
	return 0;
}

/*
 * client_key.c - pure pieces of the per-client bookkeeping: a client's key
 * (its IPv4 address, or its IPv6 address cut to a prefix), the sliding
 * count of a rate, and one line of the greet-pass file, read and written.
 *
 * No I/O and no event loop: the unit tests and fuzz/fuzz_client_pass.c
 * link it alone; client_limits.c keeps the tables and the file.
 */
#include "client_limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int
client_key_make(const struct sockaddr *sa, unsigned v6prefix,
    struct client_key *k)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	unsigned i;

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->family = AF_INET;
		k->prefix = 32;
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		k->family = AF_INET;
		k->prefix = 32;
		memcpy(k->addr, &s6->sin6_addr.s6_addr[12], 4);
	} else if (sa->sa_family == AF_INET6) {
		k->family = AF_INET6;
		k->prefix = (uint8_t)(v6prefix > 128 ? 128 : v6prefix);
		memcpy(k->addr, &s6->sin6_addr, 16);
		for (i = k->prefix; i < 128; i++)
			k->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
	} else {
		return -1;
	}
	return 0;
}

void
client_key_format(const struct client_key *k, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(k->family, k->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, k->prefix);
}

void
client_pass_format(const struct client_key *k, int64_t earned, char *out,
    size_t len)
{
	char key[INET6_ADDRSTRLEN + 8];

	client_key_format(k, key, sizeof(key));
	snprintf(out, len, "pass %s %lld", key, (long long)earned);
}

int
client_pass_parse(const char *line, struct client_key *k, int64_t *earned)
{
	char addr[INET6_ADDRSTRLEN + 1], extra;
	char again[CLIENT_PASS_LINE_MAX + 1];
	unsigned prefix;
	long long t;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (sscanf(line, "pass %46[0-9a-fA-F:.]/%u %lld%c", addr, &prefix, &t,
	    &extra) != 3 || t < 0 || prefix > 128)
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1 && prefix == 32)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return -1;
	if (client_key_make((struct sockaddr *)&ss, prefix, k) == -1 ||
	    k->prefix != prefix)
		return -1;
	/* strict: only the form client_pass_format writes (no sign, no spaces, no
	 * address with bits past its prefix) */
	client_pass_format(k, t, again, sizeof(again));
	if (strcmp(again, line) != 0)
		return -1;
	*earned = t;
	return 0;
}

/* ---- rates ---------------------------------------------------------- */

/* rate_roll - move the windows on to the one that holds now */
static void
rate_roll(struct client_rate *r, int64_t now)
{
	if (now - r->start >= 2 * CLIENT_RATE_MS) {
		r->prev = r->cur = 0;
		r->start = now;
	} else if (now - r->start >= CLIENT_RATE_MS) {
		r->prev = r->cur;
		r->cur = 0;
		r->start += CLIENT_RATE_MS;
	}
}

uint32_t
client_rate_count(struct client_rate *r, int64_t now)
{
	int64_t into;

	rate_roll(r, now);
	into = now - r->start;
	if (into < 0)
		into = 0;
	return r->cur + (uint32_t)((int64_t)r->prev *
	    (CLIENT_RATE_MS - into) / CLIENT_RATE_MS);
}

void
client_rate_add(struct client_rate *r, int64_t now)
{
	rate_roll(r, now);
	if (r->cur < UINT32_MAX)
		r->cur++;
}

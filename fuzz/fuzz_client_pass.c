/*
 * fuzz_client_pass.c - libFuzzer target for a line of the greet-pass file
 * (src/client_key.c, client_pass_parse): tern writes that file itself,
 * under $home/state/, but reads it back at every start, so the reader
 * must take anything without harm and use only its own form.
 *
 * Besides memory safety it checks, differentially, that a line read is
 * exactly the line client_pass_format writes for what was read (the
 * reader takes no variant: no sign, space, leading zero or address with
 * bits past its prefix), that an IPv4 key is a /32, and that the bits
 * past an IPv6 key's prefix are zero.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "client_limits.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[CLIENT_PASS_LINE_MAX + 64], again[CLIENT_PASS_LINE_MAX + 1];
	struct client_key k;
	int64_t earned;
	unsigned i;

	if (size >= sizeof(line))
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (client_pass_parse(line, &k, &earned) == -1)
		return 0;
	FUZZ_ASSERT(earned >= 0);
	client_pass_format(&k, earned, again, sizeof(again));
	FUZZ_ASSERT(strcmp(again, line) == 0);
	if (k.family == AF_INET) {
		FUZZ_ASSERT(k.prefix == 32);
		return 0;
	}
	FUZZ_ASSERT(k.family == AF_INET6 && k.prefix <= 128);
	for (i = k.prefix; i < 128; i++)
		FUZZ_ASSERT(!(k.addr[i / 8] & (0x80u >> (i % 8))));
	return 0;
}

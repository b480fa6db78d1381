/*
 * fuzz_auth_request.c - libFuzzer target for the password check requests
 * authd reads from the smtpd (auth_request_parse): whatever the smtpd
 * sends, a request accepted has a non-empty user and a password within
 * their limits, both NUL-terminated inside the packet, the password's
 * NUL its last octet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "auth.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *user, *pass;
	uint32_t id;
	size_t ul, pl;

	if (auth_request_parse(data, size, &id, &user, &pass) == -1)
		return 0;
	FUZZ_ASSERT((const uint8_t *)user == data + 4);
	ul = strnlen(user, size - 4);
	FUZZ_ASSERT(ul > 0 && ul <= AUTH_NAME_MAX && ul < size - 4);
	FUZZ_ASSERT(pass == user + ul + 1);
	pl = strnlen(pass, size - 4 - ul - 1);
	FUZZ_ASSERT(pl <= AUTH_PASS_MAX);
	FUZZ_ASSERT(4 + ul + 1 + pl + 1 == size);
	FUZZ_ASSERT(memcmp(&id, data, 4) == 0);
	return 0;
}

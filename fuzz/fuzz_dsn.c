/*
 * fuzz_dsn.c - libFuzzer target for the DSN parameters a client sends
 * (RFC 3461): xtext (ENVID, ORCPT), NOTIFY= lists and ORCPT= values.
 *
 * Checks: valid xtext decodes, and decoded text is never longer than the
 * input; NOTIFY gives only known bits, NEVER alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "bounce.h"
#include "envelope.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *out = malloc(size + 1);
	unsigned bits = 0;

	if (in == NULL || out == NULL)
		goto done;
	memcpy(in, data, size);
	in[size] = '\0';
	if (xtext_decode(in, out, size + 1) == 0)
		FUZZ_ASSERT(strlen(out) <= strlen(in));
	if (xtext_valid(in))
		FUZZ_ASSERT(xtext_decode(in, out, size + 1) == 0);
	if (dsn_notify_parse(in, &bits) == 0) {
		FUZZ_ASSERT((bits & ~(unsigned)(DSN_NOTIFY_NEVER |
		    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |
		    DSN_NOTIFY_DELAY)) == 0);
		FUZZ_ASSERT(!(bits & DSN_NOTIFY_NEVER) ||
		    bits == DSN_NOTIFY_NEVER);
	}
	(void)dsn_orcpt_valid(in, 0);
	(void)dsn_orcpt_valid(in, 1);
done:
	free(in);
	free(out);
	return 0;
}

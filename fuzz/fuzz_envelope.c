/*
 * fuzz_envelope.c - libFuzzer target for the envelope file form.
 *
 * Any bytes go to envelope_parse: it must not crash, and on refusal must
 * say why.  What it accepts must survive a round trip: format it, parse
 * that again (it must be accepted), format again - the two texts must be
 * identical.  Links only src/util.c and src/envelope.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "envelope.h"

/* fuzz_envelope - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e, again;
	struct buf first, second;
	char err[200];

	if (envelope_parse(&e, (const char *)data, size, err, sizeof(err))) {
		if (err[0] == '\0')
			abort(); /* refused without a reason */
		return 0;
	}
	buf_init(&first);
	envelope_format(&e, &first);
	if (envelope_parse(&again, first.data, first.len, err, sizeof(err)))
		abort(); /* we wrote something we cannot read */
	buf_init(&second);
	envelope_format(&again, &second);
	if (first.len != second.len ||
	    memcmp(first.data, second.data, first.len) != 0)
		abort();
	envelope_free(&e);
	envelope_free(&again);
	buf_free(&first);
	buf_free(&second);
	return 0;
}

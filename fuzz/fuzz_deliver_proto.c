/*
 * fuzz_deliver_proto.c - libFuzzer target for the delivery requests the
 * privileged delivery process reads from the queue process, and for the
 * replies the queue process reads back.
 *
 * Any bytes go to deliver_request_parse and deliver_reply_parse: neither
 * may crash, a refusal must say why, and what is accepted must survive a
 * round trip (format, parse again, format again: the same text).  Links
 * only the pure sources.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "deliver_proto.h"

/* same_text - abort unless a and b hold the same bytes */
static void
same_text(const struct buf *a, const struct buf *b)
{
	if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
		abort();
}

/* request - parse, and round-trip what is accepted */
static void
request(const char *data, size_t size)
{
	struct deliver_request r, again;
	struct buf first, second;
	char err[200] = "";

	if (deliver_request_parse(&r, data, size, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		deliver_request_free(&r);
		return;
	}
	buf_init(&first);
	deliver_request_format(&r, &first);
	if (deliver_request_parse(&again, first.data, first.len, err,
	    sizeof(err)) == -1)
		abort();
	buf_init(&second);
	deliver_request_format(&again, &second);
	same_text(&first, &second);
	deliver_request_free(&r);
	deliver_request_free(&again);
	buf_free(&first);
	buf_free(&second);
}

/* reply - parse, and round-trip what is accepted */
static void
reply(const char *data, size_t size)
{
	struct deliver_reply r, again;
	struct buf first, second;
	char err[200] = "";

	if (deliver_reply_parse(&r, data, size, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		deliver_reply_free(&r);
		return;
	}
	buf_init(&first);
	deliver_reply_format(&r, &first);
	if (deliver_reply_parse(&again, first.data, first.len, err,
	    sizeof(err)) == -1)
		abort();
	buf_init(&second);
	deliver_reply_format(&again, &second);
	same_text(&first, &second);
	deliver_reply_free(&r);
	deliver_reply_free(&again);
	buf_free(&first);
	buf_free(&second);
}

/* fuzz_deliver_proto - one input, read as both kinds */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	request((const char *)data, size);
	reply((const char *)data, size);
	return 0;
}

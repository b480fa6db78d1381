/*
 * fuzz_drop.c - libFuzzer target for the local drop (src/drop.c): a drop
 * file is written by a local user, so everything in it is hostile.
 *
 * The input is read as a drop file (drop_parse) and, whatever it is, as a
 * message for sendmail -t (drop_header_rcpts) and as an address list
 * (drop_addr_list).  Checks: a parsed file has 1..max recipients, each one
 * drop_addr_ok; its content lies inside the input; the content composed
 * from it starts with tern's Received: line, ends every line in CRLF,
 * holds no NUL, and its header section has no Bcc: and exactly the
 * From:/Date:/Message-ID: it needs; addresses found are bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "drop.h"

#define MAX_RCPTS 50

/* check_composed - the invariants of drop_compose's output */
static void
check_composed(const struct buf *b)
{
	const char *p = b->data, *end = b->data + b->len, *hdr_end;
	size_t i;

	FUZZ_ASSERT(b->len >= 2 && strncmp(p, "Received: by h.example (tern, "
	    "from userid 7)\r\n", 45) == 0);
	FUZZ_ASSERT(memchr(p, '\0', b->len) == NULL);
	for (i = 0; i < b->len; i++)
		if (p[i] == '\n')
			FUZZ_ASSERT(i > 0 && p[i - 1] == '\r');
	FUZZ_ASSERT(p[b->len - 2] == '\r' && p[b->len - 1] == '\n');
	hdr_end = memmem(p, b->len, "\r\n\r\n", 4);
	FUZZ_ASSERT(hdr_end != NULL);
	for (; p < hdr_end; p = memchr(p, '\n', (size_t)(end - p)) + 1)
		FUZZ_ASSERT(strncasecmp(p, "bcc", 3) != 0 || (p[3] != ':' &&
		    p[3] != ' ' && p[3] != '\t'));
}

static void
free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(strlen(list[i]) <= DROP_ADDR_MAX);
		free(list[i]);
	}
	free(list);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct drop_facts f = { .uid = 7, .sender = "s@x.example",
		.from_addr = "s@x.example", .hostname = "h.example",
		.qid = "QID", .now = 0 };
	char err[128], **list = NULL;
	struct drop d;
	struct buf b;
	size_t i, n = 0;

	if (drop_parse(&d, in, size, MAX_RCPTS, err, sizeof(err)) == 0) {
		FUZZ_ASSERT(d.nrcpts >= 1 && d.nrcpts <= MAX_RCPTS);
		for (i = 0; i < d.nrcpts; i++)
			FUZZ_ASSERT(drop_addr_ok(d.rcpts[i]));
		FUZZ_ASSERT(d.sender == NULL || d.sender[0] == '\0' ||
		    drop_addr_ok(d.sender));
		FUZZ_ASSERT(d.content >= in &&
		    d.content + d.content_len == in + size);
		buf_init(&b);
		drop_compose(&d, &f, &b);
		check_composed(&b);
		buf_free(&b);
	} else
		FUZZ_ASSERT(err[0] != '\0');
	drop_free(&d);
	if (drop_header_rcpts(in, size, &list, &n, MAX_RCPTS, err,
	    sizeof(err)) == 0)
		FUZZ_ASSERT(n <= MAX_RCPTS);
	free_list(list, n);
	list = NULL;
	n = 0;
	if (drop_addr_list(in, size, &list, &n, MAX_RCPTS, err,
	    sizeof(err)) == 0)
		FUZZ_ASSERT(n <= MAX_RCPTS);
	free_list(list, n);
	return 0;
}

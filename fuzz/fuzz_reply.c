/*
 * fuzz_reply.c - libFuzzer target for replies from a remote server: the
 * input is the byte stream the client reads, framed into lines
 * (smtp_reply_getline), assembled into replies (smtp_reply_add_line,
 * smtp_reply_finish), each complete reply read as an EHLO reply too.
 *
 * Besides memory safety it checks the invariants the client relies on:
 * a line is at most SMTP_REPLY_LINE_MAX octets and ends before a CRLF,
 * every proper prefix of a line's input asks for more; a reply has 1 to
 * SMTP_REPLY_LINES_MAX lines and at most SMTP_REPLY_MAX octets of text, a
 * code of 200-599; its status has the code's class and is either the
 * start of the text or "C.0.0"; its diagnostic is bounded, starts with
 * the code and holds no control character.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"

/* check_line - what smtp_reply_getline promised about in[0..used) */
static void
check_line(const char *in, size_t len, size_t used)
{
	size_t l2, u2, k, i;

	FUZZ_ASSERT(len <= SMTP_REPLY_LINE_MAX && used == len + 2);
	FUZZ_ASSERT(in[len] == '\r' && in[len + 1] == '\n');
	for (i = 0; i + 1 < len; i++)
		FUZZ_ASSERT(!(in[i] == '\r' && in[i + 1] == '\n'));
	/* the line arriving in pieces is waited for, never cut short;
	 * a few prefixes are enough (every one would be quadratic) */
	for (k = 0; k < used; k += 1 + used / 8)
		FUZZ_ASSERT(smtp_reply_getline(in, k, &l2, &u2) == 0);
	FUZZ_ASSERT(smtp_reply_getline(in, used - 1, &l2, &u2) == 0);
}

/* check_reply - a complete, finished reply */
static void
check_reply(const struct smtp_reply *r)
{
	char plain[SMTP_REPLY_STATUS_MAX];
	size_t dl = strlen(r->diag), i;
	int cls = smtp_reply_class(r);
	char code[4];
	struct smtp_ext x;

	FUZZ_ASSERT(r->code >= 200 && r->code <= 599);
	FUZZ_ASSERT(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	FUZZ_ASSERT(r->text.len <= SMTP_REPLY_MAX);
	FUZZ_ASSERT(r->text.len >= r->nlines);
	FUZZ_ASSERT(r->text.data[r->text.len - 1] == '\n');
	/* the status: the code's class, the server's own or the default */
	FUZZ_ASSERT(r->status[0] == '0' + cls);
	snprintf(plain, sizeof(plain), "%d.0.0", cls);
	if (strcmp(r->status, plain) != 0) {
		FUZZ_ASSERT(strncmp(r->text.data, r->status,
		    strlen(r->status)) == 0);
		FUZZ_ASSERT(smtp_reply_enhanced(r->text.data, cls) ==
		    strlen(r->status));
	}
	/* the diagnostic */
	FUZZ_ASSERT(dl >= 3 && dl < SMTP_REPLY_DIAG_MAX);
	snprintf(code, sizeof(code), "%d", r->code);
	FUZZ_ASSERT(memcmp(r->diag, code, 3) == 0);
	for (i = 0; i < dl; i++)
		FUZZ_ASSERT((unsigned char)r->diag[i] >= 0x20 &&
		    r->diag[i] != 0x7f);
	/* trailing blanks are trimmed, unless the cut made them */
	if (dl + 4 < SMTP_REPLY_DIAG_MAX - 1)
		FUZZ_ASSERT(dl == 3 || r->diag[dl - 1] != ' ');
	/* as an EHLO reply */
	memset(&x, 0xa5, sizeof(x));
	smtp_reply_ehlo(r, &x);
	FUZZ_ASSERT(x.size || x.size_max == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	char *copy = malloc(size + 1);
	struct smtp_reply r;
	size_t off = 0, len, used;
	int rc;

	/* a copy of exactly size octets (and one for an ASan-visible end) */
	memcpy(copy, data, size);
	copy[size] = '\0';
	in = copy;
	smtp_reply_init(&r);
	while (off < size) {
		rc = smtp_reply_getline(in + off, size - off, &len, &used);
		if (rc == 0)
			break;
		if (rc < 0) {
			FUZZ_ASSERT(size - off > SMTP_REPLY_LINE_MAX);
			break;
		}
		check_line(in + off, len, used);
		rc = smtp_reply_add_line(&r, in + off, len);
		off += used;
		if (rc < 0) {
			/* the client drops the connection; we read on */
			smtp_reply_reset(&r);
			continue;
		}
		FUZZ_ASSERT(r.nlines >= 1 && r.nlines <= SMTP_REPLY_LINES_MAX);
		FUZZ_ASSERT(r.text.len <= SMTP_REPLY_MAX);
		if (rc == 0)
			continue;
		smtp_reply_finish(&r);
		check_reply(&r);
		smtp_reply_reset(&r);
	}
	smtp_reply_free(&r);
	free(copy);
	return 0;
}

/*
 * fuzz_data.c - libFuzzer target for the DATA stream (smtp_data_feed) and
 * BDAT accounting (smtp_data_chunk).
 *
 * Input: byte 0 picks the line limit, byte 1 seeds the piece sizes, the
 * rest is the stream after the 354 reply.  The stream is fed whole, byte
 * by byte and in random pieces; all three must agree with each other and
 * with a deliberately naive byte-at-a-time reference written here from
 * RFC 5321 4.5.2 (and the accounting recomputed from the output).  Also:
 * consumed <= len, done only right after CR LF "." CR LF (or ".\r\n" as
 * the first line), and the output, dot-stuffed again and sent back, gives
 * the same output (nothing in it can end or shorten a message).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp_data.h"

struct result {
	struct buf out;
	size_t consumed;
	int done;
	struct smtp_data d;
};

/* ref_feed - the reference framing: one byte at a time, no cleverness */
static size_t
ref_feed(const char *in, size_t len, struct buf *out, int *done)
{
	enum { BOL, TEXT, DOT, DOTCR } st = BOL;
	int prevcr = 0;
	size_t i;
	char c;

	*done = 0;
	for (i = 0; i < len; i++) {
		c = in[i];
		if (st == BOL && c == '.') {
			st = DOT;
			continue;
		}
		if (st == DOT && c == '\r') {
			st = DOTCR;
			continue;
		}
		if (st == DOTCR && c == '\n') {
			*done = 1;
			return i + 1;
		}
		if (st == DOTCR) {
			buf_putc(out, '\r');
			prevcr = 1;
		}
		buf_putc(out, c);
		st = (c == '\n' && prevcr) ? BOL : TEXT;
		prevcr = c == '\r';
	}
	return len;
}

/* ref_account - flags, line length and Received: count of all content */
static void
ref_account(const char *p, size_t n, size_t maxline, struct smtp_data *r)
{
	size_t i, start = 0, linelen = 0;
	int hdr = 1;
	unsigned char c;

	memset(r, 0, sizeof(*r));
	r->octets = n;
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		r->flags |= c >= 0x80 ? SMTP_DATA_8BIT : 0;
		r->flags |= c == 0 ? SMTP_DATA_NUL : 0;
		if (c == '\n' && (i == 0 || p[i - 1] != '\r'))
			r->flags |= SMTP_DATA_BARE_LF;
		if (c == '\r' && i + 1 < n && p[i + 1] != '\n')
			r->flags |= SMTP_DATA_BARE_CR;
		if (++linelen > maxline)
			r->flags |= SMTP_DATA_LONG_LINE;
		if (hdr && i - start + 1 == 9 &&
		    strncasecmp(p + start, "received:", 9) == 0)
			r->headers_received++;
		if (c != '\n')
			continue;
		if (linelen == 1 || (linelen == 2 && p[i - 1] == '\r'))
			hdr = 0;
		linelen = 0;
		start = i + 1;
	}
	r->linelen = linelen;
}

/* run - feed in pieces; piece k is sizes[k] long (the rest at the end) */
static void
run(const char *in, size_t len, size_t maxline, const size_t *sizes,
    size_t nsizes, struct result *r)
{
	size_t off = 0, k = 0, n, take;

	buf_init(&r->out);
	smtp_data_init(&r->d, maxline);
	r->consumed = 0;
	r->done = 0;
	while (off < len && !r->done) {
		take = k < nsizes ? sizes[k++] : len - off;
		if (take > len - off)
			take = len - off;
		n = smtp_data_feed(&r->d, in + off, take, &r->out, &r->done);
		FUZZ_ASSERT(n <= take);
		FUZZ_ASSERT(n == take || r->done);
		r->consumed += n;
		off += take;
	}
}

static void
same(const struct result *a, const struct result *b)
{
	FUZZ_ASSERT(a->done == b->done && a->consumed == b->consumed);
	FUZZ_ASSERT(a->out.len == b->out.len);
	FUZZ_ASSERT(memcmp(a->out.data, b->out.data, a->out.len) == 0);
	FUZZ_ASSERT(a->d.flags == b->d.flags && a->d.octets == b->d.octets);
	FUZZ_ASSERT(a->d.linelen == b->d.linelen);
	FUZZ_ASSERT(a->d.headers_received == b->d.headers_received);
}

/* same_acct - the accounting fields of two states agree */
static void
same_acct(const struct smtp_data *a, const struct smtp_data *b)
{
	FUZZ_ASSERT(a->flags == b->flags && a->octets == b->octets);
	FUZZ_ASSERT(a->linelen == b->linelen);
	FUZZ_ASSERT(a->headers_received == b->headers_received);
}

/* check_end - done only right after the end-of-data line */
static void
check_end(const char *in, const struct result *r)
{
	size_t c = r->consumed;

	if (!r->done)
		return;
	FUZZ_ASSERT(c >= 3 && memcmp(in + c - 3, ".\r\n", 3) == 0);
	FUZZ_ASSERT(c == 3 || (c >= 5 && memcmp(in + c - 5, "\r\n", 2) == 0));
	FUZZ_ASSERT(r->out.len == 0 ||
		    (r->out.len >= 2 &&
		     memcmp(r->out.data + r->out.len - 2, "\r\n", 2) == 0));
}

/* check_restuff - stuffing the output again and ending it round-trips */
static void
check_restuff(const struct result *r, size_t maxline)
{
	struct buf wire;
	struct result again;
	size_t i;
	int bol = 1;

	buf_init(&wire);
	for (i = 0; i < r->out.len; i++) {
		if (bol && r->out.data[i] == '.')
			buf_putc(&wire, '.');
		buf_putc(&wire, r->out.data[i]);
		bol = r->out.data[i] == '\n' && i > 0 &&
		      r->out.data[i - 1] == '\r';
	}
	buf_append(&wire, ".\r\n", 3);
	run(wire.data, wire.len, maxline, NULL, 0, &again);
	FUZZ_ASSERT(again.done && again.consumed == wire.len);
	FUZZ_ASSERT(again.out.len == r->out.len);
	FUZZ_ASSERT(memcmp(again.out.data, r->out.data, r->out.len) == 0);
	buf_free(&again.out);
	buf_free(&wire);
}

/* check_chunk - BDAT accounting of the content equals the DATA one */
static void
check_chunk(const struct result *r, size_t maxline, uint32_t seed)
{
	struct smtp_data d;
	size_t off = 0, take;

	smtp_data_init(&d, maxline);
	while (off < r->out.len) {
		seed = seed * 1103515245u + 12345u;
		take = 1 + (seed >> 16) % 17;
		if (take > r->out.len - off)
			take = r->out.len - off;
		smtp_data_chunk(&d, r->out.data + off, take);
		off += take;
	}
	same_acct(&d, &r->d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t sizes[4096], ones[4096];
	struct result whole, bytes, pieces, ref;
	struct smtp_data acct;
	const char *in;
	size_t len, maxline, i;
	uint32_t seed;

	if (size < 2 || size - 2 > sizeof(sizes) / sizeof(sizes[0]))
		return 0;
	maxline = data[0] < 128 ? 1 + data[0] % 40 : 0;
	seed = data[1];
	in = (const char *)data + 2;
	len = size - 2;
	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		sizes[i] = (seed >> 16) % 9; /* 0..8, empty pieces too */
		ones[i] = 1;
	}
	run(in, len, maxline, NULL, 0, &whole);
	run(in, len, maxline, ones, len, &bytes);
	run(in, len, maxline, sizes, len, &pieces);
	same(&whole, &bytes);
	same(&whole, &pieces);

	buf_init(&ref.out);
	ref.consumed = ref_feed(in, len, &ref.out, &ref.done);
	FUZZ_ASSERT(ref.done == whole.done && ref.consumed == whole.consumed);
	FUZZ_ASSERT(ref.out.len == whole.out.len);
	FUZZ_ASSERT(memcmp(ref.out.data, whole.out.data, ref.out.len) == 0);
	ref_account(ref.out.data, ref.out.len, whole.d.maxline, &acct);
	/* a CR ending the output is not yet known to be bare: both agree */
	same_acct(&acct, &whole.d);

	check_end(in, &whole);
	if (whole.out.len == 0 ||
	    (whole.out.len >= 2 &&
	     memcmp(whole.out.data + whole.out.len - 2, "\r\n", 2) == 0))
		check_restuff(&whole, maxline);
	check_chunk(&whole, maxline, data[1]);
	buf_free(&whole.out);
	buf_free(&bytes.out);
	buf_free(&pieces.out);
	buf_free(&ref.out);
	return 0;
}

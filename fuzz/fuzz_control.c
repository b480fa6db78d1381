/*
 * fuzz_control.c - libFuzzer target for the control socket's protocol
 * (control_proto.c): the input is read as a request line, as a status
 * line the client reads, and, when it parses as an envelope, listed in
 * both forms.
 *
 * Besides memory safety it checks what the server relies on: a request
 * taken has a known verb, a queue id of 14 characters of [0-9A-Z] or none,
 * a domain of lower-case letters, digits, '-' and '.' or none, and never
 * comes from a line longer than CONTROL_LINE_MAX or holding a byte
 * outside printable ASCII; a refusal always has a sentence.  A listing
 * line holds no LF and no control character (it is one line of the
 * answer), and the JSON form has no raw control character either.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "control_proto.h"
#include "envelope.h"

/* check_request - what control_parse promised about a request it took */
static void
check_request(const char *in, size_t len, const struct control_req *rq)
{
	size_t i, n;

	if (len > 0 && in[len - 1] == '\n')
		len--;
	FUZZ_ASSERT(len + 1 <= CONTROL_LINE_MAX);
	for (i = 0; i < len; i++)
		FUZZ_ASSERT(in[i] >= 0x20 && in[i] <= 0x7e);
	FUZZ_ASSERT(rq->verb <= CTL_STATUS);
	n = strlen(rq->qid);
	FUZZ_ASSERT(n == 0 || n == QID_LEN);
	for (i = 0; i < n; i++)
		FUZZ_ASSERT((rq->qid[i] >= '0' && rq->qid[i] <= '9') ||
		    (rq->qid[i] >= 'A' && rq->qid[i] <= 'Z'));
	for (i = 0; rq->domain[i] != '\0'; i++)
		FUZZ_ASSERT((rq->domain[i] >= 'a' && rq->domain[i] <= 'z') ||
		    (rq->domain[i] >= '0' && rq->domain[i] <= '9') ||
		    rq->domain[i] == '-' || rq->domain[i] == '.');
	FUZZ_ASSERT(i <= CONTROL_DOMAIN_MAX);
	FUZZ_ASSERT(!(n > 0 && i > 0));
}

/* check_listing - env listed in both forms */
static void
check_listing(const struct envelope *env)
{
	struct buf b;
	size_t i;
	int json;

	buf_init(&b);
	for (json = 0; json <= 1; json++) {
		buf_reset(&b);
		control_format_msg(&b, env, json, json, 1800000000);
		FUZZ_ASSERT(strlen(b.data) == b.len);
		for (i = 0; i < b.len; i++)
			FUZZ_ASSERT((unsigned char)b.data[i] >= 0x20 &&
			    b.data[i] != 0x7f);
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), err[256];
	struct control_req rq;
	struct envelope env;
	enum control_err e;
	const char *text;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (control_parse(s, size, &rq, err, sizeof(err)) == 0)
		check_request(s, size, &rq);
	else
		FUZZ_ASSERT(err[0] != '\0');
	if (control_parse_status(s, &e, &text) == 0)
		FUZZ_ASSERT(e <= CTL_E_STATE && (e == CTL_OK ||
		    (text > s && text <= s + strlen(s))));
	if (envelope_parse(&env, s, size, err, sizeof(err)) == 0) {
		check_listing(&env);
		envelope_free(&env);
	}
	free(s);
	return 0;
}

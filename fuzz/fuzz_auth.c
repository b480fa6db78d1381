/*
 * fuzz_auth.c - libFuzzer target for what a client sends during AUTH: the
 * mechanism and initial response, then response lines (auth_sasl_*), and
 * base64 on its own.
 *
 * The input is split at '\n' into lines: the first is the AUTH argument,
 * the others responses.  Checks: credentials handed out are NUL-terminated
 * within their buffers and non-empty; base64 that decodes encodes to text
 * that decodes to the same octets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "auth.h"

static void
check_b64(const char *line)
{
	unsigned char out[4096], again[4096];
	char back[8192];
	size_t n, m;

	if (strlen(line) >= sizeof(out))
		return;
	if (auth_b64_decode(line, out, sizeof(out), &n) == -1)
		return;
	/* non-zero padding bits are tolerated (RFC 4648 3.5 allows it), so
	 * the text may differ; the octets may not */
	auth_b64_encode(out, n, back, sizeof(back));
	FUZZ_ASSERT(auth_b64_decode(back, again, sizeof(again), &m) == 0);
	FUZZ_ASSERT(m == n && memcmp(out, again, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, *next;
	struct auth_sasl a;
	enum auth_step st = AUTH_STEP_BAD;
	const char *ch = "";
	int first = 1;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = buf; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		check_b64(line);
		if (first)
			st = auth_sasl_start(&a, line, &ch);
		else if (st == AUTH_STEP_CHALLENGE)
			st = auth_sasl_next(&a, line, &ch);
		first = 0;
		FUZZ_ASSERT(ch != NULL);
		if (st == AUTH_STEP_DONE) {
			FUZZ_ASSERT(memchr(a.user, '\0', sizeof(a.user)));
			FUZZ_ASSERT(memchr(a.pass, '\0', sizeof(a.pass)));
			FUZZ_ASSERT(a.user[0] != '\0' && a.pass[0] != '\0');
		}
	}
	auth_sasl_clear(&a);
	free(buf);
	return 0;
}

/*
 * fuzz_received.c - libFuzzer target for the Received: parser and the
 * path worked out from header fields (src/received.c,
 * src/trace_path.c).
 *
 * The input is read three ways: as one Received: value, as one date, and
 * as header fields (lines "Name: value"; lines starting "R" are
 * Received: fields) traced as tern trace does.  Besides memory safety it
 * checks that a parse either fills the parts or gives a reason, that no
 * part holds a control character or is longer than RECEIVED_PART_MAX,
 * that a zone is within +-99:59, that a date read again from its own
 * formatting gives the same time, and that every field of a trace has
 * an owner within the hops.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "received.h"
#include "trace_path.h"

/* check_part - bounded, terminated, no control characters */
static void
check_part(const char *s)
{
	size_t n = strnlen(s, RECEIVED_PART_MAX + 1), i;

	FUZZ_ASSERT(n <= RECEIVED_PART_MAX);
	for (i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static void
check_received(const struct received *r)
{
	if (!r->parsed) {
		FUZZ_ASSERT(r->error != NULL);
		FUZZ_ASSERT(r->helo[0] == '\0' && r->by[0] == '\0');
		return;
	}
	FUZZ_ASSERT(r->error == NULL);
	check_part(r->helo);
	check_part(r->rdns);
	check_part(r->ip);
	check_part(r->by);
	check_part(r->by_ip);
	check_part(r->software);
	check_part(r->with);
	check_part(r->id);
	check_part(r->rcpt);
	check_part(r->tls_version);
	check_part(r->tls_cipher);
	FUZZ_ASSERT(r->zone >= -(99 * 60 + 59) && r->zone <= 99 * 60 + 59);
}

/* check_date - a date read, written as RFC 5322 again, reads the same */
static void
check_date(const char *s, size_t len)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char iso[64], again[96];
	int64_t t, t2;
	int zone, known, zone2, known2, y, m, d, hh, mm, ss, zh, zm;

	if (received_date(s, len, &t, &zone, &known) == -1)
		return;
	FUZZ_ASSERT(zone >= -(99 * 60 + 59) && zone <= 99 * 60 + 59);
	trace_fmt_iso(t, zone, iso, sizeof(iso));
	if (sscanf(iso, "%d-%d-%dT%d:%d:%d", &y, &m, &d, &hh, &mm, &ss) != 6)
		return; /* out of gmtime's range */
	FUZZ_ASSERT(m >= 1 && m <= 12);
	zh = (zone < 0 ? -zone : zone) / 60;
	zm = (zone < 0 ? -zone : zone) % 60;
	snprintf(again, sizeof(again), "%d %s %d %02d:%02d:%02d %c%02d%02d", d,
	    mon[m - 1], y, hh, mm, ss, zone < 0 ? '-' : '+', zh, zm);
	if (ss == 60 || y > 9999)
		return; /* a leap second reads as the next minute's :00 */
	FUZZ_ASSERT(received_date(again, strlen(again), &t2, &zone2,
	    &known2) == 0);
	FUZZ_ASSERT(t2 == t && zone2 == zone);
}

/* check_trace - fields from lines, traced */
static void
check_trace(const char *s, size_t len)
{
	struct trace t;
	char *copy = malloc(len + 1), *line, *save = NULL, *colon;
	size_t i;

	if (copy == NULL)
		return;
	memcpy(copy, s, len);
	copy[len] = '\0';
	trace_init(&t, 300);
	for (line = strtok_r(copy, "\n", &save); line != NULL &&
	    t.nfields < 64; line = strtok_r(NULL, "\n", &save)) {
		colon = strchr(line, ':');
		if (line[0] == 'R')
			trace_add_field(&t, "Received", line + 1, line);
		else if (colon != NULL) {
			*colon = '\0';
			trace_add_field(&t, line, colon + 1, line);
		}
	}
	trace_analyse(&t, "a@b.example");
	for (i = 0; i < t.nfields; i++) {
		FUZZ_ASSERT(t.fields[i].owner != TRACE_HOP ||
		    (t.fields[i].hop >= 1 && t.fields[i].hop <= t.nhops));
	}
	for (i = 0; i < t.nhops; i++)
		check_received(&t.hops[i].r);
	for (i = 0; i < t.nchecks; i++)
		FUZZ_ASSERT(t.checks[i].hop <= t.nhops);
	trace_free(&t);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct received r;
	const char *s = (const char *)data;

	memset(&r, 0x55, sizeof(r)); /* the parser must set everything */
	received_parse(s, size, &r);
	check_received(&r);
	check_date(s, size);
	if (memchr(s, '\0', size) == NULL)
		check_trace(s, size);
	return 0;
}

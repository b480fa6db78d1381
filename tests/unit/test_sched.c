/*
 * test_sched.c - the scheduler's pure arithmetic: sched_backoff_ms, the
 * delay before retry number `tries` (first, doubling, capped at max; no
 * overflow however many tries).  DESIGN.md "Scheduling and retry".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "sched.h"

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)

struct backoff_case {
	const char *what;
	unsigned tries;
	int64_t first, max;
	int64_t expect;
};

static const struct backoff_case backoff_cases[] = {
	{ "tries 0 is treated as the first retry", 0, 5 * MIN_MS, HOUR_MS,
	    5 * MIN_MS },
	{ "first retry waits first", 1, 5 * MIN_MS, HOUR_MS, 5 * MIN_MS },
	{ "second retry doubles", 2, 5 * MIN_MS, HOUR_MS, 10 * MIN_MS },
	{ "third retry doubles again", 3, 5 * MIN_MS, HOUR_MS, 20 * MIN_MS },
	{ "fourth retry", 4, 5 * MIN_MS, HOUR_MS, 40 * MIN_MS },
	{ "fifth retry is capped at max", 5, 5 * MIN_MS, HOUR_MS, HOUR_MS },
	{ "sixth retry stays at max", 6, 5 * MIN_MS, HOUR_MS, HOUR_MS },
	{ "a doubling landing exactly on max", 3, 15 * MIN_MS, HOUR_MS,
	    HOUR_MS },
	{ "tries 1000 stays at max (no overflow)", 1000, 5 * MIN_MS,
	    HOUR_MS, HOUR_MS },
	{ "tries UINT_MAX stays at max", 4294967295u, 5 * MIN_MS, HOUR_MS,
	    HOUR_MS },
	{ "max near INT64_MAX: doubling never overflows", 1000, 3,
	    INT64_MAX, INT64_MAX },
	{ "first near INT64_MAX, second retry", 2, INT64_MAX / 2 + 1,
	    INT64_MAX, INT64_MAX },
	{ "first above max: capped at once", 1, 2 * HOUR_MS, HOUR_MS,
	    HOUR_MS },
	{ "first equal to max", 7, HOUR_MS, HOUR_MS, HOUR_MS },
	{ "1 ms first: 2^9 after ten tries", 10, 1, HOUR_MS, 512 },
	{ "first 0: always 0 (the scheduler has its own floor)", 1000, 0,
	    HOUR_MS, 0 },
	{ "negative first is taken as 0", 3, -5, HOUR_MS, 0 },
	{ "negative max is taken as 0", 3, 5 * MIN_MS, -1, 0 },
};

static void
test_backoff(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(backoff_cases) / sizeof(backoff_cases[0]);
	    i++) {
		const struct backoff_case *c = &backoff_cases[i];
		int64_t got = sched_backoff_ms(c->tries, c->first, c->max);

		if (got != c->expect)
			fail_msg("%s: tries=%u first=%lld max=%lld: got %lld, "
			    "want %lld", c->what, c->tries,
			    (long long)c->first, (long long)c->max,
			    (long long)got, (long long)c->expect);
	}
}

/* the sequence with the default retry settings, tries 1..12 */
static void
test_backoff_default_sequence(void **state)
{
	static const int64_t want_min[] = { 5, 10, 20, 40, 60, 60, 60, 60,
		60, 60, 60, 60 };
	unsigned t;

	(void)state;
	for (t = 1; t <= 12; t++)
		assert_int_equal(sched_backoff_ms(t, 5 * MIN_MS, HOUR_MS),
		    want_min[t - 1] * MIN_MS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_backoff_default_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

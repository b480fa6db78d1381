/*
 * test_util.c - the small primitives: sanitising network text, UTF-8
 * validation, durations, sizes, the growable buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static void
test_sanitise(void **state)
{
	static const struct {
		const char *what, *in;
		size_t max;
		const char *out;
	} rows[] = {
		{ "plain text is kept", "mail.example.org", 64,
		    "mail.example.org" },
		{ "CR and LF become ?", "a\r\nReceived: x", 64,
		    "a??Received: x" },
		{ "tab and DEL become ?", "a\tb\x7f", 64, "a?b?" },
		{ "cut at the limit", "abcdefgh", 4, "abcd" },
		{ "valid UTF-8 kept", "h\xc3\xa9llo", 64, "h\xc3\xa9llo" },
		{ "invalid UTF-8 byte becomes ?", "a\xff" "b", 64, "a?b" },
		{ "a UTF-8 sequence is never split", "ab\xc3\xa9", 3, "ab" },
		{ "overlong encoding refused", "\xc0\xaf", 64, "??" },
		{ "surrogate refused", "\xed\xa0\x80", 64, "???" },
	};
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		util_sanitise(out, rows[i].max, rows[i].in,
		    strlen(rows[i].in));
		if (strcmp(out, rows[i].out) != 0)
			fail_msg("%s: got \"%s\"", rows[i].what, out);
	}
}

static void
test_duration(void **state)
{
	static const struct {
		const char *in;
		int ok;
		int64_t ms;
	} rows[] = {
		{ "30", 0, 30000 }, { "30s", 0, 30000 }, { "5m", 0, 300000 },
		{ "1h", 0, 3600000 }, { "5d", 0, 432000000 },
		{ "", -1, 0 }, { "m", -1, 0 }, { "5x", -1, 0 },
		{ "5mm", -1, 0 }, { "-5", -1, 0 },
		{ "99999999999999999999", -1, 0 },
	};
	int64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ms = 0;
		assert_int_equal(util_parse_duration(rows[i].in, &ms),
		    rows[i].ok);
		if (rows[i].ok == 0)
			assert_int_equal(ms, rows[i].ms);
	}
}

static void
test_size(void **state)
{
	static const struct {
		const char *in;
		int ok;
		uint64_t v;
	} rows[] = {
		{ "1000", 0, 1000 }, { "10K", 0, 10240 },
		{ "35M", 0, 35u * 1024 * 1024 }, { "1G", 0, 1073741824u },
		{ "2k", 0, 2048 }, { "K", -1, 0 }, { "10T", -1, 0 },
		{ "18446744073709551615K", -1, 0 },
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		v = 0;
		assert_int_equal(util_parse_size(rows[i].in, &v), rows[i].ok);
		if (rows[i].ok == 0)
			assert_true(v == rows[i].v);
	}
}

static void
test_buf(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b);
	for (i = 0; i < 10000; i++)
		buf_putc(&b, 'a' + (int)(i % 26));
	assert_int_equal(b.len, 10000);
	assert_int_equal(b.data[b.len], '\0');
	buf_consume(&b, 9990);
	assert_int_equal(b.len, 10);
	buf_printf(&b, "%d-%s", 42, "x");
	assert_string_equal(b.data + 10, "42-x");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitise),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_buf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

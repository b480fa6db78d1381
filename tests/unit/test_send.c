/*
 * test_send.c - send_parse_server: what `tern send --server` takes as a
 * host and a port, and what it refuses (anything that could change the
 * smtp:// URL the host goes into).  One row per case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "send.h"

struct row {
	const char *in;
	int rc;
	const char *host;
	int port;
	const char *why;
};

static const struct row rows[] = {
	{ "mail.example.org:587", 0, "mail.example.org", 587, "name, port" },
	{ "127.0.0.1:465", 0, "127.0.0.1", 465, "IPv4, port" },
	{ "[::1]:587", 0, "[::1]", 587, "IPv6 in brackets" },
	{ "[2001:db8::25]", 0, "[2001:db8::25]", 0, "IPv6, no port" },
	{ "smtp.example.net", 0, "smtp.example.net", 0, "no port: default" },
	{ "relay_1.example:1", 0, "relay_1.example", 1, "lowest port" },
	{ "a:65535", 0, "a", 65535, "highest port" },
	{ "a:65536", -1, NULL, 0, "port too high" },
	{ "a:0", -1, NULL, 0, "port zero" },
	{ "a:", -1, NULL, 0, "empty port" },
	{ "a:+25", -1, NULL, 0, "signed port" },
	{ "a:25x", -1, NULL, 0, "junk after the port" },
	{ ":25", -1, NULL, 0, "no host" },
	{ "", -1, NULL, 0, "empty" },
	{ "::1:25", -1, NULL, 0, "IPv6 without brackets" },
	{ "[::1]x", -1, NULL, 0, "junk after the bracket" },
	{ "[::1", -1, NULL, 0, "unclosed bracket" },
	{ "[]:25", -1, NULL, 0, "empty brackets" },
	{ "[fe80::1%eth0]:25", -1, NULL, 0, "zone id" },
	{ "evil@host:25", -1, NULL, 0, "user part in the URL" },
	{ "host/path:25", -1, NULL, 0, "path in the URL" },
	{ "host?q:25", -1, NULL, 0, "query in the URL" },
	{ "ho st:25", -1, NULL, 0, "space" },
	{ "host\r\n:25", -1, NULL, 0, "line break" },
};

static void
test_parse_server(void **state)
{
	char host[64];
	size_t i;
	int port, rc;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		port = -1;
		rc = send_parse_server(rows[i].in, host, sizeof(host), &port);
		if (rc != rows[i].rc)
			fail_msg("%s: \"%s\" gave %d", rows[i].why, rows[i].in,
			    rc);
		if (rc == 0 && (strcmp(host, rows[i].host) != 0 ||
		    port != rows[i].port))
			fail_msg("%s: \"%s\" gave %s port %d", rows[i].why,
			    rows[i].in, host, port);
	}
}

static void
test_parse_server_host_too_long(void **state)
{
	char host[8];
	int port;

	(void)state;
	assert_int_equal(send_parse_server("abcdefg:25", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "abcdefg");
	assert_int_equal(send_parse_server("abcdefgh:25", host, sizeof(host),
	    &port), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_server),
		cmocka_unit_test(test_parse_server_host_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_proxy.c - tables for src/proxy.c: PROXY protocol v1 lines and v2
 * blocks as HAProxy sends them (send-proxy, send-proxy-v2), LOCAL and
 * UNKNOWN health checks, TLVs, and the malformed: wrong signature, bad
 * addresses and ports, no CRLF within 107 octets, a TLV past the end, a
 * header over 4 KiB, UDP and UNIX families.
 *
 * Every row that reads a header is read again one octet at a time: each
 * shorter prefix must ask for more (PROXY_NEED), never be taken for a
 * header or refused, so a reader never consumes the client's data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "proxy.h"
#include "unit_table.h"

#define V2SIG "\r\n\r\n\0\r\nQUIT\n"

struct proxy_case {
	const char *what;
	const char *in;
	size_t n;
	enum proxy_status st;
	size_t used;      /* PROXY_DONE */
	int local;
	const char *src;  /* the client's address, or NULL */
	int port;         /* the client's port */
};

static const struct proxy_case cases[] = {
    /* version 1 */
    {"v1 TCP4", S("PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n"),
	PROXY_DONE, 44, 0, "198.51.100.7", 40000},
    {"v1 TCP4, the client's data after it",
	S("PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\nEHLO x\r\n"),
	PROXY_DONE, 44, 0, "198.51.100.7", 40000},
    {"v1 TCP6", S("PROXY TCP6 2001:db8::7 ::1 1 587\r\n"), PROXY_DONE, 34,
	0, "2001:db8::7", 1},
    {"v1 UNKNOWN alone", S("PROXY UNKNOWN\r\n"), PROXY_DONE, 15, 1, NULL, 0},
    {"v1 UNKNOWN with addresses to ignore",
	S("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), PROXY_DONE, 35, 1, NULL,
	0},
    {"v1 port 0 and 65535", S("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n"),
	PROXY_DONE, 36, 0, "1.2.3.4", 0},
    {"v1 cut short", S("PROXY TCP4 1.2.3.4"), PROXY_NEED, 0, 0, NULL, 0},
    {"v1 CR without its LF yet", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"),
	PROXY_NEED, 0, 0, NULL, 0},
    {"v1 an IPv6 address in TCP4",
	S("PROXY TCP4 ::1 127.0.0.1 40000 25\r\n"), PROXY_BAD, 0, 0, NULL,
	0},
    {"v1 an IPv4 address in TCP6",
	S("PROXY TCP6 1.2.3.4 ::1 40000 25\r\n"), PROXY_BAD, 0, 0, NULL, 0},
    {"v1 port over 65535", S("PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v1 port with a leading zero", S("PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v1 port with a sign", S("PROXY TCP4 1.2.3.4 5.6.7.8 +25 25\r\n"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v1 two spaces", S("PROXY TCP4  1.2.3.4 5.6.7.8 1 25\r\n"), PROXY_BAD,
	0, 0, NULL, 0},
    {"v1 a field missing", S("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), PROXY_BAD,
	0, 0, NULL, 0},
    {"v1 a field too many", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v1 a trailing space", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v1 UDP4", S("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_BAD, 0, 0,
	NULL, 0},
    {"v1 lower case", S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_BAD, 0,
	0, NULL, 0},
    {"v1 an address with a leading zero octet (not dotted decimal)",
	S("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), PROXY_BAD, 0, 0, NULL, 0},
    {"v1 bare LF", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), PROXY_BAD, 0, 0,
	NULL, 0},
    {"v1 CR then text", S("PROXY TCP4 1.2.3.4\rx"), PROXY_BAD, 0, 0, NULL,
	0},
    {"v1 NUL inside", S("PROXY TCP4 1.2.3.4\0"), PROXY_BAD, 0, 0, NULL, 0},
    {"v1 no CRLF within 107 octets",
	S("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	PROXY_BAD, 0, 0, NULL, 0},
    /* neither */
    {"an SMTP command", S("EHLO client.example\r\n"), PROXY_BAD, 0, 0, NULL,
	0},
    {"a TLS ClientHello", S("\x16\x03\x01\x02\x00"), PROXY_BAD, 0, 0, NULL,
	0},
    {"nothing yet", S(""), PROXY_NEED, 0, 0, NULL, 0},
    /* version 2 */
    {"v2 PROXY TCP4",
	S(V2SIG "\x21\x11\x00\x0c\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19"), PROXY_DONE, 28, 0, "198.51.100.7", 40000},
    {"v2 PROXY TCP4, the client's data after it",
	S(V2SIG "\x21\x11\x00\x0c\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19" "\x16\x03\x01"), PROXY_DONE, 28, 0, "198.51.100.7",
	40000},
    {"v2 PROXY TCP6 with a NOOP TLV",
	S(V2SIG "\x21\x21\x00\x27"
	  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"
	  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" "\x9c\x40\x00\x19"
	  "\x04\x00\x00"), PROXY_DONE, 55, 0, "2001:db8::7", 40000},
    {"v2 PROXY TCP4 with TLVs (authority, unique id)",
	S(V2SIG "\x21\x11\x00\x1b\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19" "\x02\x00\x04mail" "\x05\x00\x05" "abcde"), PROXY_DONE,
	43, 0, "198.51.100.7", 40000},
    {"v2 LOCAL (a health check)", S(V2SIG "\x20\x00\x00\x00"), PROXY_DONE,
	16, 1, NULL, 0},
    {"v2 LOCAL with an address block to ignore",
	S(V2SIG "\x20\x11\x00\x0c" "\0\0\0\0\0\0\0\0\0\0\0\0"), PROXY_DONE,
	28, 1, NULL, 0},
    {"v2 PROXY with an unspecified family", S(V2SIG "\x21\x00\x00\x00"),
	PROXY_DONE, 16, 1, NULL, 0},
    {"v2 signature cut short", S("\r\n\r\n\0\r\nQ"), PROXY_NEED, 0, 0, NULL,
	0},
    {"v2 addresses still to come", S(V2SIG "\x21\x11\x00\x0c\xc6\x33"),
	PROXY_NEED, 0, 0, NULL, 0},
    {"v2 wrong signature", S("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v2 version 1 in the binary form", S(V2SIG "\x11\x11\x00\x0c"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v2 unknown command", S(V2SIG "\x22\x11\x00\x0c"), PROXY_BAD, 0, 0, NULL,
	0},
    {"v2 UDP over IPv4",
	S(V2SIG "\x21\x12\x00\x0c\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19"), PROXY_BAD, 0, 0, NULL, 0},
    {"v2 a UNIX socket",
	S(V2SIG "\x21\x31\x00\x00"), PROXY_BAD, 0, 0, NULL, 0},
    {"v2 length shorter than the IPv4 addresses",
	S(V2SIG "\x21\x11\x00\x08\xc6\x33\x64\x07\x7f\x00\x00\x01"),
	PROXY_BAD, 0, 0, NULL, 0},
    {"v2 length shorter than the IPv6 addresses",
	S(V2SIG "\x21\x21\x00\x0c\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19"), PROXY_BAD, 0, 0, NULL, 0},
    {"v2 a TLV runs past the header",
	S(V2SIG "\x21\x11\x00\x10\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19" "\x02\x00\x09x"), PROXY_BAD, 0, 0, NULL, 0},
    {"v2 a TLV header cut in two",
	S(V2SIG "\x21\x11\x00\x0e\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40"
	  "\x00\x19" "\x02\x00"), PROXY_BAD, 0, 0, NULL, 0},
    {"v2 longer than 4096 octets", S(V2SIG "\x21\x11\x10\x00"), PROXY_BAD,
	0, 0, NULL, 0},
};

/* addr_is - the printable address and port of ss */
static int
addr_is(const struct sockaddr_storage *ss, const char *want, int port)
{
	char text[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		return strcmp(text, want) == 0 && ntohs(sin->sin_port) == port;
	}
	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		return strcmp(text, want) == 0 &&
		    ntohs(sin6->sin6_port) == port;
	}
	return 0;
}

static void
test_cases(void **state)
{
	struct proxy_header h;
	const char *why;
	size_t i, used, k;
	enum proxy_status st;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct proxy_case *c = &cases[i];

		st = proxy_parse((const unsigned char *)c->in, c->n, &h, &used,
		    &why);
		CHECK(c->what, st == c->st);
		CHECK(c->what, st != PROXY_BAD || why != NULL);
		if (st != PROXY_DONE)
			continue;
		CHECK(c->what, used == c->used);
		CHECK(c->what, h.local == c->local);
		CHECK(c->what, c->src == NULL || addr_is(&h.src, c->src,
		    c->port));
		/* octet by octet: every shorter prefix asks for more */
		for (k = 0; k < used; k++)
			CHECK(c->what, proxy_parse((const unsigned char *)c->in,
			    k, &h, &used, &why) == PROXY_NEED);
	}
}

/* the longest v1 line the specification allows is read; one more octet
 * is not */
static void
test_v1_bound(void **state)
{
	char line[PROXY_V1_MAX + 2];
	struct proxy_header h;
	const char *why;
	size_t used;

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + PROXY_V1_MAX - 2, "\r\n", 2);
	assert_int_equal(proxy_parse((unsigned char *)line, PROXY_V1_MAX, &h,
	    &used, &why), PROXY_DONE);
	assert_int_equal(used, PROXY_V1_MAX);
	memcpy(line + PROXY_V1_MAX - 2, "x\r\n", 3);
	assert_int_equal(proxy_parse((unsigned char *)line, PROXY_V1_MAX + 1,
	    &h, &used, &why), PROXY_BAD);
}

/* a v2 header of exactly 4096 octets, all NOOP TLVs, is read */
static void
test_v2_bound(void **state)
{
	static unsigned char b[PROXY_V2_MAX + 1];
	struct proxy_header h;
	const char *why;
	size_t used, body = PROXY_V2_MAX - 16, tlv = body - 12 - 3;

	(void)state;
	memset(b, 0, sizeof(b));
	memcpy(b, V2SIG, 12);
	b[12] = 0x21;
	b[13] = 0x11;
	b[14] = (unsigned char)(body >> 8);
	b[15] = (unsigned char)body;
	b[16] = 198;
	b[28] = 0x04; /* NOOP */
	b[29] = (unsigned char)(tlv >> 8);
	b[30] = (unsigned char)tlv;
	assert_int_equal(proxy_parse(b, sizeof(b), &h, &used, &why),
	    PROXY_DONE);
	assert_int_equal(used, PROXY_V2_MAX);
	assert_int_equal(proxy_parse(b, PROXY_V2_MAX - 1, &h, &used, &why),
	    PROXY_NEED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_v1_bound),
		cmocka_unit_test(test_v2_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

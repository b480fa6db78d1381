/*
 * test_route.c - route_for_domain and route_key: the order local, route,
 * smarthost, address literal, MX, and the destination keys.  Each row
 * names a configuration, a recipient domain and the route it must get.
 * route_lmtp: each row an LMTP address ("mailbox lmtp:" without its
 * prefix) and the route and key it must give, or the reason it is
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "route.h"
#include "util.h"

/* "%C" in a configuration or a key: a CA file made for the run (ca=
 * must name a file that exists) */
static char ca_path[] = "/tmp/tern-test-route-ca-XXXXXX";

/* the configurations the rows use */
enum { CONF_ROUTES, CONF_SMART, CONF_BARE, NCONF };

static const char *const conf_texts[NCONF] = {
	[CONF_ROUTES] =
	    "hostname mx.example.org\n"
	    "local-domains example.org mx.example.org localhost\n"
	    "relay-domains dma.org\n"
	    "route dma.org [dmapub.dma.org]:2525 tls=encrypt\n"
	    "route b.example relay.b.example:587 tls=verify "
	    "auth=/etc/tern/b.secret\n"
	    "route v6.example [2001:db8::25]\n"
	    "route v4.example 198.51.100.25\n"
	    "route c.example [relay.c.example] tls=verify ca=%C\n",
	[CONF_SMART] =
	    "hostname relay.canonical.org\n"
	    "local-domains canonical.org\n"
	    "route dma.org [dmapub.dma.org]\n"
	    "smarthost [relay.example.net]:587 tls=verify "
	    "auth=/etc/tern/relay.secret\n",
	[CONF_BARE] = "hostname box.example\n",
};

static struct conf *confs[NCONF];

/* expand_ca - text with every "%C" replaced by ca_path (a new string) */
static char *
expand_ca(const char *text)
{
	struct buf b;
	const char *p;

	buf_init(&b);
	while ((p = strstr(text, "%C")) != NULL) {
		buf_append(&b, text, (size_t)(p - text));
		buf_puts(&b, ca_path);
		text = p + 2;
	}
	buf_puts(&b, text);
	return b.data;
}

static int
setup(void **state)
{
	char tmpl[] = "/tmp/tern-test-route-XXXXXX";
	char *text;
	size_t i;
	int fd;

	(void)state;
	unsetenv("TERN_HOME");
	fd = mkstemp(ca_path);
	assert_true(fd >= 0);
	close(fd);
	for (i = 0; i < NCONF; i++) {
		strcpy(tmpl, "/tmp/tern-test-route-XXXXXX");
		fd = mkstemp(tmpl);
		assert_true(fd >= 0);
		text = expand_ca(conf_texts[i]);
		dprintf(fd, "%s", text);
		free(text);
		close(fd);
		confs[i] = conf_load(tmpl);
		unlink(tmpl);
		if (confs[i] == NULL)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NCONF; i++)
		conf_free(confs[i]);
	unlink(ca_path);
	return 0;
}

struct route_case {
	const char *what;
	int conf;
	const char *domain;
	int rc;
	enum route_kind kind;
	const char *host;
	int port;
	int mx;
	enum tls_policy tls;
	const char *auth;
	const char *via;
	const char *key;
};

static const struct route_case route_cases[] = {
	/* local */
	{ "local domain", CONF_ROUTES, "example.org", 0, ROUTE_LOCAL,
	    "example.org", 25, 0, TLS_MAY, NULL, "local", "local" },
	{ "local domain in any case", CONF_ROUTES, "MX.Example.ORG", 0,
	    ROUTE_LOCAL, "mx.example.org", 25, 0, TLS_MAY, NULL, "local",
	    "local" },
	{ "bare postmaster", CONF_ROUTES, "", 0, ROUTE_LOCAL, "", 25, 0,
	    TLS_MAY, NULL, "local", "local" },
	{ "local before the smarthost", CONF_SMART, "canonical.org", 0,
	    ROUTE_LOCAL, "canonical.org", 25, 0, TLS_MAY, NULL, "local",
	    "local" },
	{ "default local domains", CONF_BARE, "localhost", 0, ROUTE_LOCAL,
	    "localhost", 25, 0, TLS_MAY, NULL, "local", "local" },
	/* routes */
	{ "route of a relay domain", CONF_ROUTES, "dma.org", 0, ROUTE_RELAY,
	    "dmapub.dma.org", 2525, 0, TLS_ENCRYPT, NULL, "route",
	    "[dmapub.dma.org]:2525 tls=encrypt" },
	{ "route in any case", CONF_ROUTES, "DMA.ORG", 0, ROUTE_RELAY,
	    "dmapub.dma.org", 2525, 0, TLS_ENCRYPT, NULL, "route",
	    "[dmapub.dma.org]:2525 tls=encrypt" },
	{ "route by MX with auth", CONF_ROUTES, "b.example", 0, ROUTE_RELAY,
	    "relay.b.example", 587, 1, TLS_VERIFY, "/etc/tern/b.secret",
	    "route", "relay.b.example:587 tls=verify auth=/etc/tern/b.secret" },
	{ "route with a CA file: its own key (trust is not shared)",
	    CONF_ROUTES, "c.example", 0, ROUTE_RELAY, "relay.c.example", 25, 0,
	    TLS_VERIFY, NULL, "route", "[relay.c.example]:25 tls=verify "
	    "ca=%C" },
	{ "route to IPv6", CONF_ROUTES, "v6.example", 0, ROUTE_RELAY,
	    "2001:db8::25", 25, 0, TLS_MAY, NULL, "route",
	    "[2001:db8::25]:25" },
	{ "route to IPv4 without brackets", CONF_ROUTES, "v4.example", 0,
	    ROUTE_RELAY, "198.51.100.25", 25, 0, TLS_MAY, NULL, "route",
	    "[198.51.100.25]:25" },
	{ "route before the smarthost", CONF_SMART, "dma.org", 0,
	    ROUTE_RELAY, "dmapub.dma.org", 25, 0, TLS_MAY, NULL, "route",
	    "[dmapub.dma.org]:25" },
	{ "subdomain of a routed domain is not routed", CONF_ROUTES,
	    "pub.dma.org", 0, ROUTE_MX, "pub.dma.org", 25, 1, TLS_MAY, NULL,
	    "mx", "mx:pub.dma.org:25" },
	/* smarthost */
	{ "smarthost for another domain", CONF_SMART, "Gmail.example", 0,
	    ROUTE_RELAY, "relay.example.net", 587, 0, TLS_VERIFY,
	    "/etc/tern/relay.secret", "smarthost",
	    "[relay.example.net]:587 tls=verify auth=/etc/tern/relay.secret" },
	{ "smarthost takes an address literal too", CONF_SMART,
	    "[198.51.100.1]", 0, ROUTE_RELAY, "relay.example.net", 587, 0,
	    TLS_VERIFY, "/etc/tern/relay.secret", "smarthost",
	    "[relay.example.net]:587 tls=verify auth=/etc/tern/relay.secret" },
	/* MX */
	{ "MX, lower-cased", CONF_ROUTES, "Other.Example", 0, ROUTE_MX,
	    "other.example", 25, 1, TLS_MAY, NULL, "mx",
	    "mx:other.example:25" },
	{ "MX without any route", CONF_BARE, "dma.org", 0, ROUTE_MX,
	    "dma.org", 25, 1, TLS_MAY, NULL, "mx", "mx:dma.org:25" },
	/* address literals */
	{ "IPv4 literal", CONF_ROUTES, "[198.51.100.1]", 0, ROUTE_RELAY,
	    "198.51.100.1", 25, 0, TLS_MAY, NULL, "literal", "[198.51.100.1]:25" },
	{ "IPv6 literal", CONF_BARE, "[IPv6:2001:DB8:0::1]", 0, ROUTE_RELAY,
	    "2001:db8::1", 25, 0, TLS_MAY, NULL, "literal",
	    "[2001:db8::1]:25" },
	{ "IPv6 tag in any case", CONF_BARE, "[ipv6:::1]", 0, ROUTE_RELAY,
	    "::1", 25, 0, TLS_MAY, NULL, "literal", "[::1]:25" },
	{ "IPv6 literal without its tag", CONF_BARE, "[2001:db8::1]", -1, 0,
	    NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "literal that is no address", CONF_BARE, "[198.51.100.256]", -1, 0,
	    NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "general address literal", CONF_BARE, "[x400:c=fr]", -1, 0, NULL, 0,
	    0, 0, NULL, NULL, NULL },
	{ "unclosed literal", CONF_BARE, "[198.51.100.1", -1, 0, NULL, 0, 0, 0,
	    NULL, NULL, NULL },
	{ "empty literal", CONF_BARE, "[]", -1, 0, NULL, 0, 0, 0, NULL, NULL,
	    NULL },
};

/* check_route - one row against route_for_domain and route_key */
static void
check_route(const struct route_case *rc)
{
	struct route r;
	char key[512], *want;
	int rc_got = route_for_domain(confs[rc->conf], rc->domain, &r);

	if (rc_got != rc->rc)
		fail_msg("%s: returned %d, want %d", rc->what, rc_got, rc->rc);
	if (rc->rc != 0)
		return;
	route_key(&r, key, sizeof(key));
	want = expand_ca(rc->key);
	if (r.kind != rc->kind || strcmp(r.host, rc->host) != 0 ||
	    r.port != rc->port || r.mx != rc->mx || r.tls != rc->tls ||
	    strcmp(r.via, rc->via) != 0 || strcmp(key, want) != 0)
		fail_msg("%s: got kind %d host \"%s\" port %d mx %d tls %d "
		    "via %s key \"%s\"", rc->what, r.kind, r.host, r.port,
		    r.mx, r.tls, r.via, key);
	free(want);
	if (rc->auth == NULL ? r.auth_file != NULL
			     : r.auth_file == NULL ||
			       strcmp(r.auth_file, rc->auth) != 0)
		fail_msg("%s: auth %s", rc->what,
		    r.auth_file ? r.auth_file : "none");
}

static void
test_route_for_domain(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++)
		check_route(&route_cases[i]);
}

struct lmtp_case {
	const char *what;
	const char *spec;
	const char *host;   /* NULL: refused, err holds why */
	int port;
	int unix_socket;
	const char *key;    /* or, when refused, a part of the reason */
};

static const struct lmtp_case lmtp_cases[] = {
	/* UNIX-domain sockets */
	{ "Dovecot's socket", "unix:/run/dovecot/lmtp", "/run/dovecot/lmtp",
	    0, 1, "lmtp:unix:/run/dovecot/lmtp" },
	{ "a path keeps its case", "unix:/Srv/LMTP.sock", "/Srv/LMTP.sock",
	    0, 1, "lmtp:unix:/Srv/LMTP.sock" },
	{ "a relative path", "unix:run/lmtp", NULL, 0, 0, "not absolute" },
	{ "an empty path", "unix:", NULL, 0, 0, "not absolute" },
	{ "a control character in the path", "unix:/run/\tlmtp", NULL, 0, 0,
	    "control character" },
	/* hosts */
	{ "IPv4 in brackets", "[127.0.0.1]:24", "127.0.0.1", 24, 0,
	    "lmtp:[127.0.0.1]:24" },
	{ "IPv6 in brackets", "[::1]:2424", "::1", 2424, 0, "lmtp:[::1]:2424" },
	{ "a name in brackets, lower-cased", "[Store.Example.ORG]:24",
	    "store.example.org", 24, 0, "lmtp:[store.example.org]:24" },
	{ "a name without brackets: the same destination",
	    "store.example.org:24", "store.example.org", 24, 0,
	    "lmtp:[store.example.org]:24" },
	{ "IPv4 without brackets", "198.51.100.7:10024", "198.51.100.7",
	    10024, 0, "lmtp:[198.51.100.7]:10024" },
	{ "the highest port", "[127.0.0.1]:65535", "127.0.0.1", 65535, 0,
	    "lmtp:[127.0.0.1]:65535" },
	{ "no port: LMTP has none by default", "[127.0.0.1]", NULL, 0, 0,
	    "no port" },
	{ "no port after a name", "store.example.org", NULL, 0, 0,
	    "no port" },
	{ "an empty port", "[127.0.0.1]:", NULL, 0, 0, "1 to 65535" },
	{ "port 0", "[127.0.0.1]:0", NULL, 0, 0, "1 to 65535" },
	{ "port too high", "[127.0.0.1]:65536", NULL, 0, 0, "1 to 65535" },
	{ "a signed port", "[127.0.0.1]:+24", NULL, 0, 0, "1 to 65535" },
	{ "a service name for a port", "[127.0.0.1]:lmtp", NULL, 0, 0,
	    "1 to 65535" },
	{ "something after the port", "[127.0.0.1]:24x", NULL, 0, 0,
	    "1 to 65535" },
	{ "an unclosed bracket", "[127.0.0.1:24", NULL, 0, 0, "no ']'" },
	{ "text between bracket and port", "[127.0.0.1]x:24", NULL, 0, 0,
	    "no port" },
	{ "empty brackets", "[]:24", NULL, 0, 0, "no usable host" },
	{ "no host", ":24", NULL, 0, 0, "no usable host" },
	{ "IPv6 without brackets", "::1:24", NULL, 0, 0, "needs brackets" },
	{ "a host that is no name", "[bad_host!]:24", NULL, 0, 0,
	    "neither an IP address nor a domain name" },
	{ "a bracket inside the brackets", "[[127.0.0.1]:24", NULL, 0,
	    0, "neither an IP address nor a domain name" },
	{ "an empty address", "", NULL, 0, 0, "no port" },
	{ "a host name too long for a domain",
	    "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "example]:24", NULL, 0, 0, "no usable host" },
};

/* check_lmtp - one row against route_lmtp and route_key */
static void
check_lmtp(const struct lmtp_case *lc)
{
	struct route r;
	char key[512], err[256] = "";
	int rc = route_lmtp(lc->spec, &r, err, sizeof(err));

	if (lc->host == NULL) {
		if (rc != -1 || strstr(err, lc->key) == NULL)
			fail_msg("%s: returned %d with \"%s\", want -1 with "
			    "\"%s\"", lc->what, rc, err, lc->key);
		return;
	}
	if (rc != 0)
		fail_msg("%s: refused: %s", lc->what, err);
	route_key(&r, key, sizeof(key));
	if (r.kind != ROUTE_LMTP || strcmp(r.host, lc->host) != 0 ||
	    r.port != lc->port || r.unix_socket != lc->unix_socket ||
	    r.mx != 0 || r.tls != TLS_NONE || r.auth_file != NULL ||
	    r.ca_file != NULL || strcmp(r.via, "lmtp") != 0 ||
	    strcmp(key, lc->key) != 0)
		fail_msg("%s: got kind %d host \"%s\" port %d unix %d mx %d "
		    "tls %d via %s key \"%s\"", lc->what, r.kind, r.host,
		    r.port, r.unix_socket, r.mx, r.tls, r.via, key);
}

static void
test_route_lmtp(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lmtp_cases) / sizeof(lmtp_cases[0]); i++)
		check_lmtp(&lmtp_cases[i]);
}

/* a socket path fits in sun_path (107 octets and its NUL) or is refused,
 * never cut */
static void
test_route_lmtp_path_length(void **state)
{
	char spec[5 + ROUTE_UNIX_PATH_MAX + 2], key[256], err[256];
	struct route r;

	(void)state;
	memcpy(spec, "unix:/", 6);
	memset(spec + 6, 'a', sizeof(spec) - 7);
	spec[sizeof(spec) - 1] = '\0';
	assert_int_equal(strlen(spec + 5), ROUTE_UNIX_PATH_MAX + 1);
	assert_int_equal(route_lmtp(spec, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than 107 octets"));
	spec[sizeof(spec) - 2] = '\0';
	assert_int_equal(route_lmtp(spec, &r, err, sizeof(err)), 0);
	assert_string_equal(r.host, spec + 5);
	route_key(&r, key, sizeof(key));
	assert_int_equal(strncmp(key, "lmtp:", 5), 0);
	assert_string_equal(key + 5, spec);
}

/* a domain longer than any domain can be is refused, not cut */
static void
test_route_too_long(void **state)
{
	char domain[SMTP_DOMAIN_MAX + 2];
	struct route r;

	(void)state;
	memset(domain, 'a', sizeof(domain) - 1);
	domain[sizeof(domain) - 1] = '\0';
	assert_int_equal(route_for_domain(confs[CONF_BARE], domain, &r), -1);
	domain[SMTP_DOMAIN_MAX] = '\0';
	assert_int_equal(route_for_domain(confs[CONF_BARE], domain, &r), 0);
	assert_int_equal(r.kind, ROUTE_MX);
	assert_int_equal(strlen(r.host), SMTP_DOMAIN_MAX);
}

/* route_key never writes past outlen */
static void
test_route_key_truncated(void **state)
{
	struct route r;
	char key[12];

	(void)state;
	memset(key, 'x', sizeof(key));
	assert_int_equal(route_for_domain(confs[CONF_ROUTES], "dma.org", &r),
	    0);
	route_key(&r, key, 8);
	assert_string_equal(key, "[dmapub");
	assert_int_equal(key[8], 'x');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_for_domain),
		cmocka_unit_test(test_route_too_long),
		cmocka_unit_test(test_route_key_truncated),
		cmocka_unit_test(test_route_lmtp),
		cmocka_unit_test(test_route_lmtp_path_length),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

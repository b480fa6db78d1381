/*
 * test_client_limits.c - the per-client bookkeeping: client keys (IPv6
 * cut to the prefix), the sliding rate, sessions and rates per address,
 * the error and invalid-recipient bounds, and the greet-pass memory with
 * its file (written, read back, refused when broken).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_limits.h"
#include "conf.h"
#include "util.h"
#include "unit_addr.h"
#include "unit_files.h"

/* ---- keys ------------------------------------------------------------ */

static const struct key_case {
	const char *what, *addr;
	unsigned prefix;
	const char *want;
} key_cases[] = {
	{ "IPv4 is the address", "198.51.100.77", 64, "198.51.100.77/32" },
	{ "IPv4-mapped IPv6 is IPv4", "::ffff:198.51.100.1", 64,
	    "198.51.100.1/32" },
	{ "IPv6 cut to /64", "2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64" },
	{ "IPv6 cut to /48", "2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48" },
	{ "IPv6 cut inside a byte", "2001:db8:ffff::1", 36, "2001:db8:f000::/36" },
	{ "IPv6 /128 is the address", "2001:db8::1", 128, "2001:db8::1/128" },
	{ "loopback", "::1", 64, "::/64" },
};

static void
test_keys(void **state)
{
	struct sockaddr_storage ss;
	struct client_key k;
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		const struct key_case *kc = &key_cases[i];

		client_sa(kc->addr, &ss);
		assert_int_equal(client_key_make((struct sockaddr *)&ss,
		    kc->prefix, &k), 0);
		client_key_format(&k, out, sizeof(out));
		if (strcmp(out, kc->want) != 0)
			fail_msg("%s: %s gave %s, want %s", kc->what, kc->addr,
			    out, kc->want);
	}
}

/* two addresses of one /64 are one client; of two /64s, two */
static void
test_keys_same_prefix(void **state)
{
	struct sockaddr_storage a, b, c;
	struct client_key ka, kb, kc;

	(void)state;
	client_sa("2001:db8:1:2::1", &a);
	client_sa("2001:db8:1:2:ffff::9", &b);
	client_sa("2001:db8:1:3::1", &c);
	client_key_make((struct sockaddr *)&a, 64, &ka);
	client_key_make((struct sockaddr *)&b, 64, &kb);
	client_key_make((struct sockaddr *)&c, 64, &kc);
	assert_memory_equal(ka.addr, kb.addr, 16);
	assert_memory_not_equal(ka.addr, kc.addr, 16);
}

/* ---- rates ------------------------------------------------------------ */

/* one row: at time t (ms) add n events, then the count must be want */
static const struct rate_step {
	int64_t t;
	unsigned n;
	uint32_t want;
} rate_steps[] = {
	{ 0, 10, 10 },       /* ten at once */
	{ 30000, 0, 10 },    /* half a minute later: all still counted */
	{ 59999, 5, 15 },
	{ 60000, 0, 15 },    /* the window moved: the old one weighs 100% */
	{ 90000, 0, 7 },     /* half of it lies in the last minute */
	{ 90000, 2, 9 },
	{ 120000, 0, 2 },    /* only this window's two */
	{ 200000, 0, 0 },    /* over two windows later: nothing */
	{ 200000, 1, 1 },
};

static void
test_rate_window(void **state)
{
	struct client_rate r = { 0, 0, 0 };
	size_t i;
	unsigned k;

	(void)state;
	for (i = 0; i < sizeof(rate_steps) / sizeof(rate_steps[0]); i++) {
		for (k = 0; k < rate_steps[i].n; k++)
			client_rate_add(&r, rate_steps[i].t);
		if (client_rate_count(&r, rate_steps[i].t) != rate_steps[i].want)
			fail_msg("step %zu (t=%lld): count %u, want %u", i,
			    (long long)rate_steps[i].t,
			    client_rate_count(&r, rate_steps[i].t),
			    rate_steps[i].want);
	}
}

/* ---- the tables ------------------------------------------------------- */

struct fixture {
	char dir[64];
	struct conf c;
	struct conf_listen l;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char state_dir[96];

	snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-cl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(state_dir, sizeof(state_dir), "%s/state", f->dir);
	assert_int_equal(mkdir(state_dir, 0700), 0);
	snprintf(state_dir, sizeof(state_dir), "%s/state/smtpd", f->dir);
	assert_int_equal(mkdir(state_dir, 0700), 0);
	f->c.home = f->dir;
	f->c.hostname = "test.example";
	f->c.max_sessions = 100;
	f->c.client_sessions = 2;
	f->c.client_connect_rate = 5;
	f->c.client_message_rate = 2;
	f->c.client_rcpt_rate = 3;
	f->c.client_errors = 3;
	f->c.client_invalid_rcpts = 2;
	f->c.client_ipv6_prefix = 64;
	f->l.greet_pause_ms = 5000;
	f->l.greet_pass_ms = 86400 * 1000;
	f->l.pipelining_drop = 1;
	f->c.listens = &f->l;
	f->c.nlistens = 1;
	client_limits_reset();
	client_limits_init(&f->c, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	client_limits_reset();
	rm_tree(f->dir);
	free(f);
	return 0;
}

static enum client_verdict
admit(struct fixture *f, struct client_state *cs, const char *addr)
{
	struct sockaddr_storage ss;

	client_sa(addr, &ss);
	return client_admit(cs, &f->c, &f->l, (struct sockaddr *)&ss, addr);
}

static void
test_sessions_per_client(void **state)
{
	struct fixture *f = *state;
	struct client_state a, b, c, other;

	assert_int_equal(admit(f, &a, "198.51.100.1"), CLIENT_OK);
	assert_int_equal(admit(f, &b, "198.51.100.1"), CLIENT_OK);
	assert_int_equal(admit(f, &c, "198.51.100.1"), CLIENT_SESSIONS);
	assert_null(c.entry);
	client_leave(&c); /* a refused session leaves nothing behind */
	assert_int_equal(admit(f, &other, "198.51.100.2"), CLIENT_OK);
	client_leave(&a);
	assert_int_equal(admit(f, &c, "198.51.100.1"), CLIENT_OK);
	client_leave(&b);
	client_leave(&c);
	client_leave(&other);
}

static void
test_connect_rate(void **state)
{
	struct fixture *f = *state;
	struct client_state cs;
	int i;

	for (i = 0; i < 5; i++) {
		assert_int_equal(admit(f, &cs, "198.51.100.9"), CLIENT_OK);
		client_leave(&cs);
	}
	assert_int_equal(admit(f, &cs, "198.51.100.9"), CLIENT_CONNECT_RATE);
	/* refused attempts count: still refused */
	assert_int_equal(admit(f, &cs, "198.51.100.9"), CLIENT_CONNECT_RATE);
	assert_int_equal(admit(f, &cs, "198.51.100.10"), CLIENT_OK);
	client_leave(&cs);
}

static void
test_message_and_recipient_rates(void **state)
{
	struct fixture *f = *state;
	struct client_state cs;

	assert_int_equal(admit(f, &cs, "2001:db8::1"), CLIENT_OK);
	assert_int_equal(client_message(&cs, 0), 0);
	assert_int_equal(client_message(&cs, 0), 0);
	assert_int_equal(client_message(&cs, 0), -1);
	assert_int_equal(client_message(&cs, 1), 0); /* authenticated */
	assert_int_equal(client_recipient(&cs, 0), 0);
	assert_int_equal(client_recipient(&cs, 0), 0);
	assert_int_equal(client_recipient(&cs, 0), 0);
	assert_int_equal(client_recipient(&cs, 0), -1);
	client_leave(&cs);
	/* another address of the same /64 is the same client */
	assert_int_equal(admit(f, &cs, "2001:db8::2"), CLIENT_OK);
	assert_int_equal(client_message(&cs, 0), -1);
	client_leave(&cs);
}

static void
test_errors_and_invalid_recipients(void **state)
{
	struct fixture *f = *state;
	struct client_state cs;

	assert_int_equal(admit(f, &cs, "198.51.100.3"), CLIENT_OK);
	assert_int_equal(client_error(&cs), CLIENT_ERROR_DELAY_MS);
	assert_int_equal(client_error(&cs), 2 * CLIENT_ERROR_DELAY_MS);
	assert_int_equal(client_error(&cs), -1);
	assert_int_equal(client_invalid_recipient(&cs, 1), 0);
	assert_int_equal(client_invalid_recipient(&cs, 0), 0);
	assert_int_equal(client_invalid_recipient(&cs, 0), 1);
	client_leave(&cs);
}

static void
test_trusted_are_exempt(void **state)
{
	struct fixture *f = *state;
	struct conf_net net = { AF_INET, { 198, 51, 100, 0 }, 24 };
	struct client_state cs[4];
	int i;

	f->c.trusted = &net;
	f->c.ntrusted = 1;
	for (i = 0; i < 4; i++) {
		assert_int_equal(admit(f, &cs[i], "198.51.100.5"), CLIENT_OK);
		assert_int_equal(cs[i].pause_ms, 0);
	}
	assert_int_equal(client_message(&cs[0], 0), 0);
	assert_int_equal(client_message(&cs[0], 0), 0);
	assert_int_equal(client_message(&cs[0], 0), 0);
	assert_int_equal(client_invalid_recipient(&cs[0], 0), 0);
	assert_int_equal(client_invalid_recipient(&cs[0], 0), 0);
	assert_int_equal(client_pipelining_bad(&cs[0], 0, "HELO"), 0);
	for (i = 0; i < 4; i++)
		client_leave(&cs[i]);
	f->c.ntrusted = 0;
}

static void
test_greet_pass(void **state)
{
	struct fixture *f = *state;
	struct client_state cs;
	char path[128];
	struct buf b;

	assert_int_equal(admit(f, &cs, "198.51.100.7"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 5000);
	assert_true(cs.earn);
	client_behaved(&cs);
	client_leave(&cs);
	assert_int_equal(admit(f, &cs, "198.51.100.7"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 0);
	assert_false(cs.earn); /* a skipped pause does not renew the pass */
	client_leave(&cs);
	/* written, forgotten, read again */
	client_limits_save();
	snprintf(path, sizeof(path), "%s/state/smtpd/%s", f->dir, CLIENT_PASS_FILE);
	read_file(path, &b);
	assert_non_null(strstr(b.data, "version 1\npass 198.51.100.7/32 "));
	assert_non_null(strstr(b.data, "\nend 1\n"));
	buf_free(&b);
	client_limits_reset();
	client_limits_init(&f->c, NULL);
	assert_int_equal(admit(f, &cs, "198.51.100.7"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 0);
	/* improper pipelining drops the client and its pass */
	assert_int_equal(client_pipelining_bad(&cs, 1, "EHLO"), 0);
	assert_int_equal(client_pipelining_bad(&cs, 0, "EHLO"), 1);
	client_leave(&cs);
	assert_int_equal(admit(f, &cs, "198.51.100.7"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 5000);
	client_leave(&cs);
}

/* files that are not the pass file tern writes: none of it is used */
static const struct bad_file {
	const char *what, *text;
} bad_files[] = {
	{ "no version", "pass 198.51.100.8/32 %lld\nend 1\n" },
	{ "cut short", "version 1\npass 198.51.100.8/32 %lld\n" },
	{ "count wrong", "version 1\npass 198.51.100.8/32 %lld\nend 2\n" },
	{ "IPv4 with a prefix",
	    "version 1\npass 198.51.100.8/24 %lld\nend 1\n" },
	{ "trailing junk", "version 1\npass 198.51.100.8/32 %lld x\nend 1\n" },
	{ "after the end", "version 1\npass 198.51.100.8/32 %lld\nend 1\nx\n" },
	{ "no address", "version 1\npass /32 %lld\nend 1\n" },
	{ "NUL inside", "version 1\npass 198.51.100.8\0/32 %lld\nend 1\n" },
	{ "a sign", "version 1\npass 198.51.100.8/+32 %lld\nend 1\n" },
	{ "two spaces", "version 1\npass 198.51.100.8/32  %lld\nend 1\n" },
	{ "not canonical", "version 1\npass 198.51.100.008/32 %lld\nend 1\n" },
	{ "bits past the prefix", "version 1\npass 198.51.100.8/32 %lld\n"
	    "pass 2001:db8::1/64 %lld\nend 2\n" },
};

static void
test_broken_pass_files(void **state)
{
	struct fixture *f = *state;
	struct client_state cs;
	char path[128], text[256];
	size_t i;
	int n;

	snprintf(path, sizeof(path), "%s/state/smtpd/%s", f->dir, CLIENT_PASS_FILE);
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		/* the time twice: for the rows with two passes */
		n = snprintf(text, sizeof(text), bad_files[i].text,
		    (long long)(util_now_ms() / 1000),
		    (long long)(util_now_ms() / 1000));
		if (strcmp(bad_files[i].what, "NUL inside") == 0)
			n = (int)(strlen(text) + 1 + strlen(text +
			    strlen(text) + 1));
		write_file(path, text, (size_t)n);
		client_limits_reset();
		client_limits_init(&f->c, NULL);
		assert_int_equal(admit(f, &cs, "198.51.100.8"), CLIENT_OK);
		if (cs.pause_ms != 5000)
			fail_msg("%s: the pass was used", bad_files[i].what);
		client_leave(&cs);
	}
	/* and a good one is */
	n = snprintf(text, sizeof(text),
	    "version 1\npass 198.51.100.8/32 %lld\n"
	    "pass 2001:db8:5::/48 %lld\nend 2\n",
	    (long long)(util_now_ms() / 1000),
	    (long long)(util_now_ms() / 1000));
	write_file(path, text, (size_t)n);
	client_limits_reset();
	client_limits_init(&f->c, NULL);
	assert_int_equal(admit(f, &cs, "198.51.100.8"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 0);
	client_leave(&cs);
	/* a pass made with another client-ipv6-prefix= is not this one's */
	assert_int_equal(admit(f, &cs, "2001:db8:5::1"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 5000);
	client_leave(&cs);
}

/* an expired pass is not used, nor written again */
static void
test_expired_pass(void **state)
{
	struct fixture *f = *state;
	struct client_state cs;
	char path[128], text[128];
	int n;
	struct buf b;

	snprintf(path, sizeof(path), "%s/state/smtpd/%s", f->dir, CLIENT_PASS_FILE);
	n = snprintf(text, sizeof(text),
	    "version 1\npass 198.51.100.9/32 %lld\nend 1\n",
	    (long long)(util_now_ms() / 1000 - 2 * 86400));
	write_file(path, text, (size_t)n);
	client_limits_reset();
	client_limits_init(&f->c, NULL);
	assert_int_equal(admit(f, &cs, "198.51.100.9"), CLIENT_OK);
	assert_int_equal(cs.pause_ms, 5000);
	client_behaved(&cs);
	client_leave(&cs);
	client_limits_save();
	read_file(path, &b);
	assert_non_null(strstr(b.data, "\nend 1\n"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_keys_same_prefix),
		cmocka_unit_test(test_rate_window),
		cmocka_unit_test_setup_teardown(test_sessions_per_client,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_rate, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_message_and_recipient_rates, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_errors_and_invalid_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trusted_are_exempt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_greet_pass, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_broken_pass_files, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expired_pass, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

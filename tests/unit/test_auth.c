/*
 * test_auth.c - password hashes, the users file, SASL PLAIN decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

static void
test_hash_and_check(void **state)
{
	char hash[512], path[] = "/tmp/tern-users-XXXXXX", err[256];
	struct auth_users *u;
	FILE *fp;
	int fd;

	(void)state;
	assert_int_equal(auth_hash("s3cret pass", hash, sizeof(hash)), 0);
	assert_true(strncmp(hash, "$y$", 3) == 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fprintf(fp, "# users\n\npaulv:%s\npea@dma.org:%s\n", hash,
	    /* sha512-crypt of "pea" */
	    "$6$saltsalt$lolqa0HQXaKtXjkzRib6bGfoYReP7iqVKXUj3npP4vk5SgJbBui"
	    "uYvQaMFa.7aRPjxMu6kEUz5WPmD4Rqrep41");
	fclose(fp);
	u = auth_users_load(path, err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(auth_users_count(u), 2);
	assert_int_equal(auth_check(u, "paulv", "s3cret pass"), 1);
	assert_int_equal(auth_check(u, "PaulV", "s3cret pass"), 1);
	assert_int_equal(auth_check(u, "paulv", "s3cret pas"), 0);
	assert_int_equal(auth_check(u, "paulv", ""), 0);
	assert_int_equal(auth_check(u, "nobody", "s3cret pass"), 0);
	assert_int_equal(auth_check(u, "pea@dma.org", "wrong"), 0);
	assert_int_equal(auth_check(u, "pea@dma.org", "pea"), 1);
	auth_users_free(u);

	fp = fopen(path, "w");
	fprintf(fp, "paulv:plaintext\n");
	fclose(fp);
	assert_null(auth_users_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, ":1: not a password hash"));

	/* a NUL byte would hide the rest of its line */
	fp = fopen(path, "w");
	fprintf(fp, "# users\npea@dma.org:%s", "$6$saltsalt$lolqa0HQXaKtXjkz"
	    "Rib6bGfoYReP7iqVKXUj3npP4vk5SgJbBuiuYvQaMFa.7aRPjxMu6kEUz5WPm"
	    "D4Rqrep41");
	fputc('\0', fp);
	fprintf(fp, "junk\n");
	fclose(fp);
	assert_null(auth_users_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: NUL byte in line"));
	unlink(path);
	assert_null(auth_users_load(path, err, sizeof(err)));
}

static void
test_plain_decode(void **state)
{
	static const struct {
		const char *what, *b64;
		int ok;
		const char *user, *pass;
	} rows[] = {
		{ "no authzid", "AHBhdWx2AHNlY3JldA==", 0, "paulv", "secret" },
		{ "authzid equal to the user", "cGF1bHYAcGF1bHYAc2VjcmV0", 0,
		    "paulv", "secret" },
		{ "authzid of another user refused",
		    "cGVhAHBhdWx2AHNlY3JldA==", -1, NULL, NULL },
		{ "empty user refused", "AABzZWNyZXQ=", -1, NULL, NULL },
		{ "empty password refused", "AHBhdWx2AA==", -1, NULL, NULL },
		{ "one NUL only", "cGF1bHYAc2VjcmV0", -1, NULL, NULL },
		{ "NUL inside the password", "AHBhdWx2AHNlYwByZXQ=", -1, NULL,
		    NULL },
		{ "not base64", "!!!!", -1, NULL, NULL },
		{ "bad length", "AHBhdWx2AHNlY3JldA=", -1, NULL, NULL },
		{ "padding in the middle", "AH=hdWx2AHNlY3JldA==", -1, NULL,
		    NULL },
		{ "empty", "", -1, NULL, NULL },
	};
	char user[AUTH_NAME_MAX + 1], pass[AUTH_PASS_MAX + 1];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rc = auth_plain_decode(rows[i].b64, user, sizeof(user), pass,
		    sizeof(pass));
		if (rc != rows[i].ok)
			fail_msg("%s: rc %d", rows[i].what, rc);
		if (rc == 0 && (strcmp(user, rows[i].user) != 0 ||
		    strcmp(pass, rows[i].pass) != 0))
			fail_msg("%s: got %s / %s", rows[i].what, user, pass);
	}
}

static void
test_b64_round_trip(void **state)
{
	unsigned char in[64], out[128];
	char enc[128];
	size_t n, len;

	(void)state;
	for (len = 0; len < sizeof(in); len++) {
		memset(in, (int)(0xa5 ^ len), len);
		auth_b64_encode(in, len, enc, sizeof(enc));
		assert_int_equal(auth_b64_decode(enc, out, sizeof(out), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(in, out, len);
	}
}

/* a SASL dialogue: the AUTH argument, then responses, with the expected
 * step after each */
static void
test_sasl(void **state)
{
	static const struct {
		const char *what, *arg, *resp[3];
		enum auth_step steps[4];
		const char *user, *pass;
	} rows[] = {
		{ "PLAIN with an initial response", "PLAIN AHBhdWx2AHNlY3JldA==",
		    { NULL }, { AUTH_STEP_DONE }, "paulv", "secret" },
		{ "PLAIN after an empty challenge", "plain",
		    { "AHBhdWx2AHNlY3JldA==", NULL },
		    { AUTH_STEP_CHALLENGE, AUTH_STEP_DONE }, "paulv", "secret" },
		{ "PLAIN cancelled", "PLAIN", { "*", NULL },
		    { AUTH_STEP_CHALLENGE, AUTH_STEP_CANCEL }, NULL, NULL },
		{ "PLAIN malformed", "PLAIN", { "not base64!", NULL },
		    { AUTH_STEP_CHALLENGE, AUTH_STEP_BAD }, NULL, NULL },
		{ "PLAIN with an empty initial response", "PLAIN =", { NULL },
		    { AUTH_STEP_BAD }, NULL, NULL },
		{ "LOGIN in two steps", "LOGIN", { "cGF1bHY=", "c2VjcmV0", NULL },
		    { AUTH_STEP_CHALLENGE, AUTH_STEP_CHALLENGE, AUTH_STEP_DONE },
		    "paulv", "secret" },
		{ "LOGIN with the user as initial response", "LOGIN cGF1bHY=",
		    { "c2VjcmV0", NULL }, { AUTH_STEP_CHALLENGE, AUTH_STEP_DONE },
		    "paulv", "secret" },
		{ "LOGIN with an empty password", "LOGIN", { "cGF1bHY=", "",
		    NULL }, { AUTH_STEP_CHALLENGE, AUTH_STEP_CHALLENGE,
		    AUTH_STEP_BAD }, NULL, NULL },
		{ "unknown mechanism", "CRAM-MD5", { NULL }, { AUTH_STEP_MECH },
		    NULL, NULL },
		{ "a mechanism name that only starts right", "PLAINX", { NULL },
		    { AUTH_STEP_MECH }, NULL, NULL },
	};
	struct auth_sasl a;
	const char *ch;
	enum auth_step st;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		st = auth_sasl_start(&a, rows[i].arg, &ch);
		for (k = 0; ; k++) {
			if (st != rows[i].steps[k])
				fail_msg("%s: step %zu is %d", rows[i].what, k,
				    (int)st);
			if (st != AUTH_STEP_CHALLENGE)
				break;
			st = auth_sasl_next(&a, rows[i].resp[k], &ch);
		}
		if (rows[i].user != NULL && (strcmp(a.user, rows[i].user) ||
		    strcmp(a.pass, rows[i].pass)))
			fail_msg("%s: credentials", rows[i].what);
		auth_sasl_clear(&a);
	}
}

static void
test_limiter(void **state)
{
	struct auth_limiter *l = auth_limiter_new(2);

	(void)state;
	assert_int_equal(auth_limiter_count(l, "198.51.100.1", 1000), 0);
	auth_limiter_fail(l, "198.51.100.1", 1000);
	auth_limiter_fail(l, "198.51.100.1", 1001);
	assert_int_equal(auth_limiter_count(l, "198.51.100.1", 1002), 2);
	/* another address is counted on its own */
	auth_limiter_fail(l, "2001:db8::1", 1003);
	assert_int_equal(auth_limiter_count(l, "2001:db8::1", 1003), 1);
	/* an hour after the first failure the window is over */
	assert_int_equal(auth_limiter_count(l, "198.51.100.1", 4600), 0);
	/* a third address takes the slot whose window began first */
	auth_limiter_fail(l, "198.51.100.7", 1004);
	assert_int_equal(auth_limiter_count(l, "198.51.100.7", 1005), 1);
	assert_int_equal(auth_limiter_count(l, "2001:db8::1", 1005), 1);
	auth_limiter_free(l);
}

/* the requests authd reads: id, user, NUL, password, NUL, nothing else */
static void
test_request_parse(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
		int ok;
		const char *user, *pass;
	} rows[] = {
		{ "a request", "\1\0\0\0al\0pw\0", 10, 0, "al", "pw" },
		{ "an empty password", "\1\0\0\0al\0\0", 8, 0, "al", "" },
		{ "an empty user", "\1\0\0\0\0pw\0", 8, -1, NULL, NULL },
		{ "no NUL after the password", "\1\0\0\0al\0pw", 9, -1, NULL,
		    NULL },
		{ "octets after the password", "\1\0\0\0al\0pw\0x", 11, -1,
		    NULL, NULL },
		{ "a third NUL", "\1\0\0\0al\0p\0\0", 10, -1, NULL, NULL },
		{ "only an id", "\1\0\0\0", 4, -1, NULL, NULL },
		{ "nothing", "", 0, -1, NULL, NULL },
	};
	unsigned char big[AUTH_REQ_MAX + 2];
	const char *user, *pass;
	uint32_t id;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = auth_request_parse((const unsigned char *)rows[i].bytes,
		    rows[i].len, &id, &user, &pass);

		if (rc != rows[i].ok)
			fail_msg("%s: %d", rows[i].what, rc);
		if (rc == 0) {
			assert_int_equal(id, 1);
			assert_string_equal(user, rows[i].user);
			assert_string_equal(pass, rows[i].pass);
		}
	}
	/* the longest user and password fit; one octet more does not */
	memset(big, 'a', sizeof(big));
	memset(big, 0, 4);
	big[4 + AUTH_NAME_MAX] = '\0';
	big[AUTH_REQ_MAX - 1] = '\0';
	assert_int_equal(auth_request_parse(big, AUTH_REQ_MAX, &id, &user,
	    &pass), 0);
	big[AUTH_REQ_MAX - 1] = 'a';
	big[AUTH_REQ_MAX] = '\0';
	assert_int_equal(auth_request_parse(big, AUTH_REQ_MAX + 1, &id,
	    &user, &pass), -1);
	big[4 + AUTH_NAME_MAX] = 'a';
	big[4 + AUTH_NAME_MAX + 1] = '\0';
	big[AUTH_REQ_MAX - 1] = '\0';
	assert_int_equal(auth_request_parse(big, AUTH_REQ_MAX, &id, &user,
	    &pass), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_check),
		cmocka_unit_test(test_plain_decode),
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_sasl),
		cmocka_unit_test(test_limiter),
		cmocka_unit_test(test_request_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

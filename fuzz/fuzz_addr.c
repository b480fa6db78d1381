/*
 * fuzz_addr.c - libFuzzer target for bare mailboxes: smtp_parse_addr, the
 * smtp_addr_format round trip, the same mailbox inside an RCPT path, and
 * mailbox_user / mailbox_split / mailbox_expand on what was accepted.
 *
 * Checks: an accepted mailbox formats back to exactly the input and
 * reparses to the same fields; whatever mailbox_user returns is safe as a
 * path component.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mailbox.h"
#include "smtp_parse.h"

static int
has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* check_user - the mailbox_user contract */
static void
check_user(const char *local)
{
	char u[MAILBOX_USER_MAX + 1], path[512];
	size_t i, n;

	if (mailbox_user(local, u, sizeof(u)) != 0)
		return;
	n = strlen(u);
	FUZZ_ASSERT(n > 0 && n <= MAILBOX_USER_MAX && u[0] != '.');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];

		FUZZ_ASSERT(c >= 0x20 && c != 0x7f && c != '/' && c != '+');
		FUZZ_ASSERT(!(c >= 'A' && c <= 'Z'));
	}
	if (mailbox_expand("/m/%d/%u/%a%%", u, "Example.ORG", path,
			   sizeof(path)) == 0)
		FUZZ_ASSERT(strncmp(path, "/m/example.org/", 15) == 0);
}

/* check_in_path - the mailbox inside "TO:<...>" parses the same */
static void
check_in_path(const char *s, size_t len, const struct smtp_addr *a)
{
	char *arg = malloc(len + 6);
	struct smtp_pathcmd pc;

	memcpy(arg, "TO:<", 4);
	memcpy(arg + 4, s, len);
	memcpy(arg + 4 + len, ">", 2);
	FUZZ_ASSERT(smtp_parse_rcpt(arg, &pc) == SMTP_P_OK);
	FUZZ_ASSERT(strcmp(pc.addr.local, a->local) == 0);
	FUZZ_ASSERT(strcmp(pc.addr.domain, a->domain) == 0);
	FUZZ_ASSERT(pc.nparams == 0 && !pc.addr.source_route);
	free(arg);
}

static void
check_accepted(const char *s, size_t len, const struct smtp_addr *a)
{
	char buf[SMTP_PATH_MAX + 1], l[SMTP_LOCAL_MAX + 1],
	    d[SMTP_DOMAIN_MAX + 1];
	struct smtp_addr b;
	int n;

	n = smtp_addr_format(a, buf, sizeof(buf));
	FUZZ_ASSERT(n >= 0 && (size_t)n == len && memcmp(buf, s, len) == 0);
	FUZZ_ASSERT(smtp_parse_addr(buf, (size_t)n, &b) == SMTP_P_OK);
	FUZZ_ASSERT(strcmp(a->local, b.local) == 0);
	FUZZ_ASSERT(strcmp(a->domain, b.domain) == 0);
	FUZZ_ASSERT(a->quoted == b.quoted && a->utf8 == b.utf8 &&
		    a->literal == b.literal && !b.is_null && !b.source_route);
	FUZZ_ASSERT(a->utf8 == (has_8bit(a->local) || has_8bit(a->domain)));
	FUZZ_ASSERT(a->quoted == (a->local[0] == '"'));
	FUZZ_ASSERT(mailbox_split(buf, l, sizeof(l), d, sizeof(d)) == 0);
	FUZZ_ASSERT(strcmp(l, a->local) == 0 && strcmp(d, a->domain) == 0);
	FUZZ_ASSERT(smtp_domain_valid(a->domain, 1));
	FUZZ_ASSERT(smtp_domain_valid(a->domain, 0) == !has_8bit(a->domain));
	FUZZ_ASSERT(!a->literal || a->domain[0] == '[');
	(void)smtp_addr_relay_trick(a);
	check_in_path(s, len, a);
	check_user(a->local);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_addr a;
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (smtp_parse_addr(s, size, &a) == SMTP_P_OK)
		check_accepted(s, size, &a);
	/* mailbox_user must be safe on anything, not only parsed input */
	check_user(s);
	free(s);
	return 0;
}

/*
 * fuzz_cmd.c - libFuzzer target for SMTP command lines: smtp_cmd_split,
 * then MAIL / RCPT parsing and the HELO domain check on the argument.
 *
 * Besides memory safety it checks that a parsed path agrees with the bare
 * mailbox parser, that limits hold on every accepted result, and that the
 * parameters point into the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_parse.h"

/* check_addr - a path's mailbox must reparse alone to the same fields */
static void
check_addr(const struct smtp_addr *a)
{
	char buf[SMTP_PATH_MAX + 1];
	struct smtp_addr b;
	int n;

	FUZZ_ASSERT(strlen(a->local) <= SMTP_LOCAL_MAX);
	FUZZ_ASSERT(strlen(a->domain) <= SMTP_DOMAIN_MAX);
	n = smtp_addr_format(a, buf, sizeof(buf));
	FUZZ_ASSERT(n >= 0 && (size_t)n + 2 <= SMTP_PATH_MAX);
	if (a->is_null) {
		FUZZ_ASSERT(n == 0 && a->local[0] == '\0');
		return;
	}
	if (a->domain[0] == '\0') {
		/* only <postmaster> has no domain */
		FUZZ_ASSERT(strlen(a->local) == 10);
		return;
	}
	FUZZ_ASSERT(smtp_parse_addr(buf, (size_t)n, &b) == SMTP_P_OK);
	FUZZ_ASSERT(strcmp(a->local, b.local) == 0);
	FUZZ_ASSERT(strcmp(a->domain, b.domain) == 0);
	FUZZ_ASSERT(a->quoted == b.quoted && a->utf8 == b.utf8 &&
		    a->literal == b.literal);
	FUZZ_ASSERT(smtp_domain_valid(a->domain, 1));
	(void)smtp_addr_relay_trick(a);
}

/* check_params - keys and values are well-formed and inside the line */
static void
check_params(const struct smtp_pathcmd *pc, const char *line, size_t len)
{
	const struct smtp_param *p;
	uint64_t size;
	size_t i;

	FUZZ_ASSERT(pc->nparams <= SMTP_PARAMS_MAX);
	for (i = 0; i < pc->nparams; i++) {
		p = &pc->params[i];
		FUZZ_ASSERT(p->key >= line && p->key < line + len);
		FUZZ_ASSERT(p->key[0] != '\0' && strchr(p->key, ' ') == NULL);
		FUZZ_ASSERT(strchr(p->key, '=') == NULL);
		if (p->value == NULL)
			continue;
		FUZZ_ASSERT(p->value > p->key && p->value < line + len);
		FUZZ_ASSERT(p->value[0] != '\0');
		FUZZ_ASSERT(strpbrk(p->value, " =") == NULL);
	}
	p = smtp_param_get(pc, "SIZE");
	if (p != NULL && p->value != NULL)
		(void)smtp_parse_size_param(p->value, &size);
}

static void
try_path(const char *arg, int rcpt)
{
	size_t len = strlen(arg);
	char *copy = malloc(len + 1);
	struct smtp_pathcmd pc;
	enum smtp_perr e;

	memcpy(copy, arg, len + 1);
	e = rcpt ? smtp_parse_rcpt(copy, &pc) : smtp_parse_mail(copy, &pc);
	FUZZ_ASSERT(smtp_perr_str(e)[0] != '\0');
	if (e == SMTP_P_OK) {
		FUZZ_ASSERT(!(rcpt && pc.addr.is_null));
		check_addr(&pc.addr);
		check_params(&pc, copy, len);
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;
	struct smtp_cmd cmd;
	int v8, v7;

	if (size > SMTP_AUTH_LINE_MAX)
		return 0;
	line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	FUZZ_ASSERT(smtp_cmd_split(line, &cmd) == 0);
	FUZZ_ASSERT(cmd.arg >= line && cmd.arg <= line + strlen(line));
	FUZZ_ASSERT(strcmp(cmd.name, smtp_verb_name(cmd.verb)) == 0);
	FUZZ_ASSERT((cmd.verb == SMTP_V_UNKNOWN) == (cmd.name[0] == '\0'));
	try_path(cmd.arg, 0);
	try_path(cmd.arg, 1);
	v7 = smtp_domain_valid(cmd.arg, 0);
	v8 = smtp_domain_valid(cmd.arg, 1);
	FUZZ_ASSERT(!v7 || v8); /* ASCII-valid is UTF-8-valid */
	FUZZ_ASSERT(!v8 || strlen(cmd.arg) <= SMTP_DOMAIN_MAX);
	free(line);
	return 0;
}

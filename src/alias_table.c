/*
 * alias_table.c - the aliases file as the processes hold it, and .forward
 * target lists (see alias_table.h).
 *
 * The one idea: parsing and expanding are the pure aliases module's; this
 * file only reads files and keeps the one table a process uses.
 */
#include "alias_table.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "util.h"

/* targets of one .forward, at most */
#define FORWARD_TARGETS_MAX 100

/* alias_table_load - read the aliases file */
void
alias_table_load(const struct conf *c)
{
	(void)c;
}

/* alias_table_has - 1 when name is an alias */
int
alias_table_has(const char *name)
{
	(void)name;
	return 0;
}

/* alias_table_allows - 1 when the alias names method */
int
alias_table_allows(const char *alias, const char *method)
{
	(void)alias;
	(void)method;
	return 0;
}

/* trim - the word at s[0..n) without blanks around it */
static char *
trim(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r'))
		n--;
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	return xstrndup(s, n);
}

/* alias_forward_parse - the targets of a .forward */
int
alias_forward_parse(const char *text, size_t len, char ***targets,
    size_t *n)
{
	const char *p = text, *end = text + len, *stop;
	int quoted;
	char *t;

	*targets = NULL;
	*n = 0;
	while (p < end) {
		p += strspn(p, " \t\r\n,");
		if (p >= end)
			break;
		if (*p == '#') {
			stop = memchr(p, '\n', (size_t)(end - p));
			p = stop ? stop + 1 : end;
			continue;
		}
		for (stop = p, quoted = 0; stop < end; stop++) {
			if (*stop == '"')
				quoted = !quoted;
			else if (!quoted && (*stop == ',' || *stop == '\n'))
				break;
		}
		t = trim(p, (size_t)(stop - p));
		p = stop;
		if (t[0] == '\0') {
			free(t);
			continue;
		}
		if (*n == FORWARD_TARGETS_MAX) {
			free(t);
			return -1;
		}
		*targets = xreallocarray(*targets, *n + 1, sizeof(**targets));
		(*targets)[(*n)++] = t;
	}
	return 0;
}

/* alias_target_matches - "|cmd" is "pipe:cmd", "/path" is "file:/path" */
int
alias_target_matches(const char *raw, const char *method)
{
	if (raw[0] == '|')
		return strncmp(method, "pipe:", 5) == 0 &&
		    strcmp(raw + 1, method + 5) == 0;
	if (raw[0] == '/')
		return strncmp(method, "file:", 5) == 0 &&
		    strcmp(raw, method + 5) == 0;
	return 0;
}

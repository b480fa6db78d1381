/*
 * alias_table.c - the aliases file as the processes hold it, and .forward
 * target lists (see alias_table.h).
 *
 * The one idea: parsing and expanding are the pure aliases module's
 * (aliases.c); this file only reads files and keeps the one table a
 * process uses.  Each of smtpd (alias names are valid recipients), the
 * queue process (expansion) and the delivery process (checking that a pipe
 * or file it is asked to run is one an alias names) loads its own copy at
 * start; SIGHUP starts new processes, so all three read the file again.
 * A file with mistakes is used with its good entries (a broken entry
 * defers its mail rather than delivering it somewhere else), and every
 * mistake is logged.
 */
#include "alias_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "conf.h"
#include "util.h"

static struct {
	const struct conf *conf;
	struct aliases *a;
} T;

/* file_read - the whole file at path into out (appended), at most max
 * octets (one more means "too large"); -1 with errno */
static int
file_read(const char *path, struct buf *out, size_t max)
{
	char tmp[8192];
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return -1;
	while (got <= max) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return n == 0 ? 0 : -1;
		}
		buf_append(out, tmp, (size_t)n);
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

/* alias_table_load - read the configuration's aliases file */
void
alias_table_load(const struct conf *c)
{
	struct buf text, errs;
	size_t nerrs = 0;
	char *line, *next;

	T.conf = c;
	aliases_free(T.a);
	T.a = NULL;
	if (c->aliases_file == NULL)
		return;
	buf_init(&text);
	buf_init(&errs);
	if (file_read(c->aliases_file, &text, ALIASES_ENTRY_MAX * 64) == -1) {
		log_err("aliases: cannot read %s: %s; no aliases in use",
		    c->aliases_file, strerror(errno));
		buf_free(&text);
		return;
	}
	T.a = aliases_parse(text.data, text.len, c->aliases_file, &errs,
	    &nerrs);
	for (line = errs.data; nerrs > 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		log_warn("aliases: %s", line);
	}
	log_debug("aliases: %zu entries from %s", T.a->n, c->aliases_file);
	buf_free(&text);
	buf_free(&errs);
}

/* alias_table_has - 1 when name is an alias */
int
alias_table_has(const char *name)
{
	return T.a != NULL && aliases_find(T.a, name) != NULL;
}

static int
local_domain(const char *domain, void *arg)
{
	(void)arg;
	return T.conf != NULL && conf_is_local_domain(T.conf, domain);
}

static int
read_include(const char *path, struct buf *out, char *err, size_t errlen,
    void *arg)
{
	(void)arg;
	if (file_read(path, out, ALIASES_INCLUDE_MAX) == 0)
		return 0;
	if (snprintf(err, errlen, "cannot read %s: %s", path,
	    strerror(errno)) < 0 && errlen > 0)
		err[0] = '\0';
	return -1;
}

static const struct aliases_ops table_ops = {
	local_domain, read_include, NULL
};

/* alias_table_expand - expand name (see alias_table.h) */
enum aliases_status
alias_table_expand(const char *name, struct aliases_expansion *out)
{
	static const struct aliases empty = { NULL, 0 };

	return aliases_expand(T.a ? T.a : &empty, name, &table_ops, out);
}

/* alias_table_allows - 1 when expanding the alias lists method itself
 * (not through another alias, which would name that one) */
int
alias_table_allows(const char *alias, const char *method)
{
	struct aliases_expansion x;
	int found = 0;
	size_t i;

	if (T.a == NULL || aliases_find(T.a, alias) == NULL)
		return 0;
	if (alias_table_expand(alias, &x) == ALIASES_OK)
		for (i = 0; i < x.ndests && !found; i++)
			found = x.dests[i].alias != NULL &&
			    strcmp(x.dests[i].alias, alias) == 0 &&
			    alias_dest_method(&x.dests[i], method);
	aliases_expansion_free(&x);
	return found;
}

/* alias_dest_method - 1 when a pipe or file dest is method */
int
alias_dest_method(const struct aliases_dest *d, const char *method)
{
	if (d->kind == ALIASES_PIPE)
		return strncmp(method, "pipe:", 5) == 0 &&
		    strcmp(d->value, method + 5) == 0;
	if (d->kind == ALIASES_FILE)
		return strncmp(method, "file:", 5) == 0 &&
		    strcmp(d->value, method + 5) == 0;
	return 0;
}

/* target_raw - a parsed target as written */
static char *
target_raw(const struct aliases_target *t)
{
	switch (t->kind) {
	case ALIASES_PIPE:
		return xasprintf("|%s", t->value);
	case ALIASES_USER:
		return xasprintf("\\%s", t->value);
	case ALIASES_INCLUDE:
		return NULL; /* not followed from a .forward */
	default:
		return xstrdup(t->value);
	}
}

/* alias_forward_parse - the targets of a .forward, as written */
int
alias_forward_parse(const char *text, size_t len, char ***targets,
    size_t *n)
{
	struct aliases_target *t;
	struct buf errs;
	size_t nt, i, bad;
	char *raw;

	*targets = NULL;
	*n = 0;
	buf_init(&errs);
	bad = aliases_parse_targets(text, len, ".forward", &t, &nt, &errs);
	buf_free(&errs);
	for (i = 0; bad == 0 && i < nt; i++) {
		if ((raw = target_raw(&t[i])) == NULL)
			continue;
		*targets = xreallocarray(*targets, *n + 1, sizeof(**targets));
		(*targets)[(*n)++] = raw;
	}
	aliases_targets_free(t, nt);
	if (bad == 0)
		return 0;
	for (i = 0; i < *n; i++)
		free((*targets)[i]);
	free(*targets);
	*targets = NULL;
	*n = 0;
	return -1;
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

/*
 * fuzz_aliases.c - libFuzzer target for aliases(5) and ~/.forward text:
 * aliases_parse, aliases_find, aliases_expand of a few names with a fake
 * :include: reader, aliases_parse_targets and aliases_expand_list.
 *
 * The fake reader answers from the input itself (the text from an offset
 * the path picks), so include files hold the same shapes as the aliases
 * file; "/fail..." paths cannot be read.  Checks: every entry and target
 * obeys what aliases.h promises (sorted, lower-case valid names, absolute
 * paths, bounded counts, one message per mistake); every name finds its
 * own entry in any case; an expansion is a list of final targets without
 * duplicates within the bounds, or a failure with no list, a status of
 * the right class and a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "aliases.h"

struct input {
	const char *p;
	size_t n;
};

static int
fake_local(const char *domain, void *arg)
{
	(void)arg;
	return strcmp(domain, "localhost") == 0 ||
	       strcmp(domain, "example.org") == 0;
}

/* fake_read - the input from an offset the path's length picks */
static int
fake_read(const char *path, struct buf *out, char *err, size_t errlen,
    void *arg)
{
	const struct input *in = arg;
	size_t off;

	if (strncmp(path, "/fail", 5) == 0) {
		if (errlen > 0)
			err[0] = '\0'; /* a reader may say nothing */
		return -1;
	}
	off = in->n > 0 ? strlen(path) % in->n : 0;
	buf_append(out, in->p + off, in->n - off);
	return 0;
}

static int
has_upper(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return 1;
	return 0;
}

static void
check_target(const struct aliases_target *t)
{
	const char *v = t->value;
	size_t i, n = strlen(v);

	FUZZ_ASSERT(n > 0);
	for (i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)v[i] >= 0x20 || v[i] == '\t');
	switch (t->kind) {
	case ALIASES_USER:
	case ALIASES_NAME:
		FUZZ_ASSERT(n <= ALIASES_NAME_MAX && !has_upper(v));
		FUZZ_ASSERT(strpbrk(v, " \t:,\"\\@") == NULL);
		break;
	case ALIASES_FILE:
	case ALIASES_INCLUDE:
		FUZZ_ASSERT(v[0] == '/' && v[n - 1] != '/');
		break;
	case ALIASES_ADDRESS:
		FUZZ_ASSERT(strchr(v, '@') != NULL);
		break;
	case ALIASES_PIPE:
		break;
	default:
		abort();
	}
}

static size_t
count_lines(const struct buf *b)
{
	size_t i, n = 0;

	for (i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

static void
check_table(const struct aliases *a)
{
	const struct aliases_entry *e;
	char upper[ALIASES_NAME_MAX + 1];
	size_t i, j;

	for (i = 0; i < a->n; i++) {
		e = &a->entries[i];
		FUZZ_ASSERT(i == 0 ||
			    strcmp(a->entries[i - 1].name, e->name) < 0);
		FUZZ_ASSERT(strlen(e->name) <= ALIASES_NAME_MAX);
		FUZZ_ASSERT(e->name[0] != '\0' && !has_upper(e->name));
		FUZZ_ASSERT(e->ntargets <= ALIASES_TARGETS_MAX);
		FUZZ_ASSERT(e->broken ? e->ntargets == 0 : e->ntargets > 0);
		for (j = 0; j < e->ntargets; j++)
			check_target(&e->targets[j]);
		FUZZ_ASSERT(aliases_find(a, e->name) == e);
		for (j = 0; e->name[j] != '\0'; j++)
			upper[j] = (e->name[j] >= 'a' && e->name[j] <= 'z')
			    ? (char)(e->name[j] - 'a' + 'A')
			    : e->name[j];
		upper[j] = '\0';
		FUZZ_ASSERT(aliases_find(a, upper) == e);
	}
}

static int
same(const struct aliases_dest *a, const struct aliases_dest *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == ALIASES_USER || a->kind == ALIASES_ADDRESS)
		return strcasecmp(a->value, b->value) == 0;
	return strcmp(a->value, b->value) == 0;
}

static void
check_expansion(enum aliases_status st, const struct aliases_expansion *x)
{
	size_t i, j;

	if (st != ALIASES_OK) {
		FUZZ_ASSERT(x->ndests == 0 && x->dests == NULL);
		FUZZ_ASSERT(x->status[0] ==
			    (st == ALIASES_TEMPFAIL ? '4' : '5'));
		FUZZ_ASSERT(x->error.len > 0);
		return;
	}
	FUZZ_ASSERT(x->ndests <= ALIASES_EXPAND_MAX);
	for (i = 0; i < x->ndests; i++) {
		const struct aliases_dest *d = &x->dests[i];

		FUZZ_ASSERT(d->kind == ALIASES_USER ||
			    d->kind == ALIASES_ADDRESS ||
			    d->kind == ALIASES_FILE || d->kind == ALIASES_PIPE);
		FUZZ_ASSERT(d->include == NULL || d->alias != NULL);
		FUZZ_ASSERT(d->kind == ALIASES_USER || d->alias != NULL);
		for (j = 0; j < i; j++)
			FUZZ_ASSERT(!same(&x->dests[j], d));
	}
}

static void
expand_one(const struct aliases *a, const char *name, struct input *in)
{
	const struct aliases_ops ops = { fake_local, fake_read, in };
	struct aliases_expansion x;
	enum aliases_status st;

	st = aliases_expand(a, name, &ops, &x);
	check_expansion(st, &x);
	aliases_expansion_free(&x);
}

/* fuzz_aliases - one input: an aliases file, then a .forward */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { (const char *)data, size };
	const struct aliases_ops ops = { fake_local, fake_read, &in };
	struct aliases_target *t;
	struct aliases_expansion x;
	struct aliases *a;
	struct buf errs;
	size_t i, n, nerrs;

	if (size > 8192)
		return 0;
	buf_init(&errs);
	a = aliases_parse(in.p, size, "fuzz", &errs, &nerrs);
	FUZZ_ASSERT(count_lines(&errs) == nerrs);
	FUZZ_ASSERT(nerrs == 0 || strncmp(errs.data, "fuzz:", 5) == 0);
	check_table(a);
	for (i = 0; i < a->n && i < 8; i++)
		expand_one(a, a->entries[i].name, &in);
	expand_one(a, "root", &in);
	expand_one(a, "Postmaster", &in);

	buf_reset(&errs);
	nerrs = aliases_parse_targets(in.p, size, ".forward", &t, &n, &errs);
	FUZZ_ASSERT(count_lines(&errs) == nerrs);
	FUZZ_ASSERT(n <= ALIASES_TARGETS_MAX);
	for (i = 0; i < n; i++)
		check_target(&t[i]);
	check_expansion(aliases_expand_list(a, "fuzz", t, n, &ops, &x), &x);
	aliases_expansion_free(&x);
	aliases_targets_free(t, n);
	aliases_free(a);
	buf_free(&errs);
	return 0;
}

/*
 * deliver_pipe_argv.c - a pipe command as the administrator wrote it, made
 * into the argument vector execve gets.  Pure: no I/O, so the
 * configuration checks a command at load time and a fuzzer links it alone.
 *
 * The one idea: no shell is involved unless the command names one, so the
 * grammar is the least that lets a command be written: words separated by
 * white space, '...' taken literally, "..." with \" and \\ as its only
 * escapes; '|', ';', '$', '`', '\' and every other octet are ordinary.
 * Escapes are expanded after splitting, in one pass that never re-reads
 * what it inserted, and a word gives exactly one argument whatever the
 * inserted values hold: a local part is network data and may carry
 * spaces, quotes and semicolons.
 *
 *	%u  the user (req->user)      %l  the local part, with extension
 *	%d  the domain, lower case    %e  the extension (subaddress)
 *	%a  user@domain               %%  a percent sign
 *
 * Two places where a value would choose what runs are refused: argv[0]
 * (an absolute path, no escape but %%), and the command string of a shell
 * started with -c, where a value becomes shell syntax ("sh -c 'procmail
 * -d %u'" with the local part "x;rm -rf ~").  A shell script gets values
 * as positional arguments or from the environment instead:
 * /bin/sh -c 'exec procmail -d "$1"' sh %u.
 */
#include "deliver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* shells whose -c string is shell syntax (basename of argv[0]) */
static const char *const shells[] = { "sh", "bash", "dash", "ash", "ksh",
	"mksh", "zsh", "csh", "tcsh", NULL };

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    TERN_PRINTF(3, 4);

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

/* single_quoted - p just after a ', the text up to the next ' taken as it
 * is; the position after the closing quote, or NULL when there is none */
static const char *
single_quoted(const char *p, struct buf *w)
{
	const char *q = strchr(p, '\'');

	if (q == NULL)
		return NULL;
	buf_append(w, p, (size_t)(q - p));
	return q + 1;
}

/* double_quoted - p just after a ", with \" and \\ as escapes (any other
 * backslash is kept); the position after the closing quote, or NULL */
static const char *
double_quoted(const char *p, struct buf *w)
{
	for (; *p != '"'; p++) {
		if (*p == '\0')
			return NULL;
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		buf_putc(w, *p);
	}
	return p + 1;
}

/* split_word - one word at *pp (not white space) appended to w with its
 * NUL; *pp moved past it */
static int
split_word(const char **pp, struct buf *w, char *err, size_t errlen)
{
	const char *p = *pp, *q;

	while (*p != '\0' && !is_space(*p)) {
		if (*p != '\'' && *p != '"') {
			buf_putc(w, *p++);
			continue;
		}
		if (*p == '\'')
			q = single_quoted(p + 1, w);
		else
			q = double_quoted(p + 1, w);
		if (q == NULL) {
			set_err(err, errlen, "unterminated %c quote", *p);
			return -1;
		}
		p = q;
	}
	buf_putc(w, '\0');
	*pp = p;
	return 0;
}

/* split - the words of command into w, each followed by a NUL; their
 * number, or -1 */
static int
split(const char *command, struct buf *w, char *err, size_t errlen)
{
	const char *p = command;
	int n = 0;

	if (strlen(command) > DELIVER_PIPE_COMMAND_MAX) {
		set_err(err, errlen, "command longer than %d octets",
		    DELIVER_PIPE_COMMAND_MAX);
		return -1;
	}
	for (;;) {
		while (is_space(*p))
			p++;
		if (*p == '\0')
			break;
		if (n == DELIVER_PIPE_WORDS_MAX) {
			set_err(err, errlen, "command of more than %d words",
			    DELIVER_PIPE_WORDS_MAX);
			return -1;
		}
		if (split_word(&p, w, err, errlen) == -1)
			return -1;
		n++;
	}
	if (n == 0)
		set_err(err, errlen, "empty command");
	return n > 0 ? n : -1;
}

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static void
put_lower(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		buf_putc(b, (*s >= 'A' && *s <= 'Z') ? *s - 'A' + 'a' : *s);
}

/* escape_value - append the value of %c; -1 when c is no escape */
static int
escape_value(char c, const struct deliver_req *req, struct buf *out)
{
	switch (c) {
	case 'u':
		buf_puts(out, str_or_empty(req->user));
		return 0;
	case 'd':
		put_lower(out, str_or_empty(req->domain));
		return 0;
	case 'a':
		buf_puts(out, str_or_empty(req->user));
		buf_putc(out, '@');
		put_lower(out, str_or_empty(req->domain));
		return 0;
	case 'l':
		buf_puts(out, str_or_empty(req->local));
		return 0;
	case 'e':
		buf_puts(out, str_or_empty(req->extension));
		return 0;
	case '%':
		buf_putc(out, '%');
		return 0;
	}
	return -1;
}

/* expand - word i expanded into out with its NUL */
static int
expand(const char *word, int i, const struct deliver_req *req,
    struct buf *out, char *err, size_t errlen)
{
	size_t start = out->len;
	const char *p;

	for (p = word; *p != '\0'; p++) {
		if (*p != '%') {
			buf_putc(out, *p);
			continue;
		}
		if (escape_value(p[1], req, out) == -1) {
			set_err(err, errlen, "word %d: unknown escape %%%.1s "
			    "(%%%% is a percent sign)", i + 1, p + 1);
			return -1;
		}
		p++;
	}
	if (out->len - start > DELIVER_PIPE_ARG_MAX) {
		set_err(err, errlen, "word %d: longer than %d octets once "
		    "expanded", i + 1, DELIVER_PIPE_ARG_MAX);
		return -1;
	}
	buf_putc(out, '\0');
	return 0;
}

/* has_escape - 1 when word holds an escape other than %% (one that
 * inserts a value) */
static int
has_escape(const char *word)
{
	const char *p;

	for (p = strchr(word, '%'); p != NULL; p = strchr(p + 2, '%')) {
		if (p[1] != '%')
			return 1;
	}
	return 0;
}

/* is_shell - 1 when path names a shell */
static int
is_shell(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t i;

	base = base != NULL ? base + 1 : path;
	for (i = 0; shells[i] != NULL; i++)
		if (strcmp(base, shells[i]) == 0)
			return 1;
	return 0;
}

/*
 * shell_string - the index of a shell's -c command string among words[]
 * (sh [options] -c string [name [args]]: the first operand once an
 * option word holds 'c'), or -1 when there is none.
 */
static int
shell_string(char **words, int n)
{
	int i, c = 0;

	if (!is_shell(words[0]))
		return -1;
	for (i = 1; i < n; i++) {
		const char *w = words[i];

		if (strcmp(w, "--") == 0)
			return c && i + 1 < n ? i + 1 : -1;
		if (w[0] != '-' && w[0] != '+')
			return c ? i : -1;
		if (w[0] == '-' && strchr(w, 'c') != NULL)
			c = 1;
		if (strcmp(w + 1, "o") == 0)
			i++; /* -o OPTION, +o OPTION */
	}
	return -1;
}

/* check_words - the rules on the split words before expansion */
static int
check_words(char **words, int n, char *err, size_t errlen)
{
	int s;

	if (words[0][0] != '/') {
		set_err(err, errlen, "the program \"%.100s\" is not an "
		    "absolute path", words[0]);
		return -1;
	}
	if (has_escape(words[0])) {
		set_err(err, errlen, "the program path holds an escape (the "
		    "recipient would choose what runs)");
		return -1;
	}
	s = shell_string(words, n);
	if (s != -1 && has_escape(words[s])) {
		set_err(err, errlen, "an escape in the command string of %s "
		    "-c would become shell syntax: pass it as an argument "
		    "after the string (\"$1\") or use the environment "
		    "($USER, $RECIPIENT)", words[0]);
		return -1;
	}
	return 0;
}

/* word_list - pointers to the n NUL-ended words packed in w */
static char **
word_list(const struct buf *w, int n)
{
	char **v = xcalloc((size_t)n + 1, sizeof(*v));
	const char *p = w->data;
	int i;

	for (i = 0; i < n; i++) {
		v[i] = (char *)p;
		p += strlen(p) + 1;
	}
	return v;
}

/* pack - argv and its strings in one allocation */
static char **
pack(const struct buf *args, int n)
{
	size_t head = ((size_t)n + 1) * sizeof(char *);
	char **v = xmalloc(head + args->len);
	char *s = (char *)v + head;
	int i;

	memcpy(s, args->data, args->len);
	for (i = 0; i < n; i++) {
		v[i] = s;
		s += strlen(s) + 1;
	}
	v[n] = NULL;
	return v;
}

/* deliver_pipe_argv - split and expand a pipe command */
int
deliver_pipe_argv(const char *command, const struct deliver_req *req,
    char ***argv, char *err, size_t errlen)
{
	struct buf w, args;
	char **words = NULL;
	int n, i;

	*argv = NULL;
	buf_init(&w);
	buf_init(&args);
	n = split(command, &w, err, errlen);
	if (n == -1)
		goto fail;
	words = word_list(&w, n);
	if (check_words(words, n, err, errlen) == -1)
		goto fail;
	for (i = 0; i < n; i++)
		if (expand(words[i], i, req, &args, err, errlen) == -1)
			goto fail;
	*argv = pack(&args, n);
	free(words);
	buf_free(&w);
	buf_free(&args);
	return n;
fail:
	free(words);
	buf_free(&w);
	buf_free(&args);
	return -1;
}

/* deliver_pipe_check - deliver_pipe_argv with sample values */
int
deliver_pipe_check(const char *command, char *err, size_t errlen)
{
	struct deliver_req req = {
		.user = "user",
		.local = "user+ext",
		.extension = "ext",
		.domain = "example.org",
	};
	char **argv;

	if (deliver_pipe_argv(command, &req, &argv, err, errlen) == -1)
		return -1;
	free(argv);
	return 0;
}

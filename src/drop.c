/*
 * drop.c - the local drop file: its form, its strict reader, and the
 * spool content made from it (see drop.h).  Pure: no I/O.
 *
 * Header fields are found as RFC 5322 2.2 and 3.6 describe them: a name of
 * printable ASCII without ':', a colon, continuation lines starting with
 * white space; the header section ends at the first empty line, or at the
 * first line that is not a field (then the rest is the body, as sendmail
 * and Postfix read such input).  Address lists (RFC 5322 3.4) are read
 * only as far as sendmail -t needs: display names, comments, groups and
 * quoted strings are skipped, what is left is the address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drop.h"
#include "smtp_parse.h"

/* err_set - a reason for the caller */
static int
err_set(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* drop_addr_ok - may addr be a drop file's sender or recipient */
int
drop_addr_ok(const char *addr)
{
	struct smtp_addr a;
	size_t len = strlen(addr);

	if (len == 0 || len > DROP_ADDR_MAX)
		return 0;
	if (smtp_parse_addr(addr, len, &a) != SMTP_P_OK)
		return 0;
	return !a.utf8 && !a.literal && a.domain[0] != '\0' &&
	    !smtp_addr_relay_trick(&a);
}

/* drop_name_ok - may name be a -F full name */
int
drop_name_ok(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > DROP_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return util_utf8_valid((const unsigned char *)name, len);
}

/* drop_format - the file form of a submission, appended to out */
void
drop_format(struct buf *out, const char *sender, const char *name,
    char *const *rcpts, size_t nrcpts, const char *content, size_t len)
{
	size_t i;

	buf_puts(out, DROP_MAGIC "\n");
	if (sender != NULL)
		buf_printf(out, "from <%s>\n", sender);
	if (name != NULL)
		buf_printf(out, "name %s\n", name);
	for (i = 0; i < nrcpts; i++)
		buf_printf(out, "to <%s>\n", rcpts[i]);
	buf_putc(out, '\n');
	buf_append(out, content, len);
}

/* drop_free - release what drop_parse allocated */
void
drop_free(struct drop *d)
{
	size_t i;

	free(d->sender);
	free(d->name);
	for (i = 0; i < d->nrcpts; i++)
		free(d->rcpts[i]);
	free(d->rcpts);
	memset(d, 0, sizeof(*d));
}

/* bracketed - the address inside "<...>" as a new string, or NULL */
static char *
bracketed(const char *v, size_t len, int null_ok)
{
	char *a;

	if (len < 2 || v[0] != '<' || v[len - 1] != '>')
		return NULL;
	a = xstrndup(v + 1, len - 2);
	if ((a[0] == '\0' && null_ok) || (strlen(a) == len - 2 &&
	    drop_addr_ok(a)))
		return a;
	free(a);
	return NULL;
}

/* head_line - one envelope line "key value"; -1 with err on a bad one */
static int
head_line(struct drop *d, const char *line, size_t len, size_t max_rcpts,
    char *err, size_t errlen)
{
	const char *sp = memchr(line, ' ', len), *v;
	size_t klen, vlen;

	if (sp == NULL)
		return err_set(err, errlen, "a line without a value");
	klen = (size_t)(sp - line);
	v = sp + 1;
	vlen = len - klen - 1;
	if (klen == 4 && memcmp(line, "from", 4) == 0) {
		if (d->sender != NULL)
			return err_set(err, errlen, "two senders");
		d->sender = bracketed(v, vlen, 1);
		if (d->sender == NULL)
			return err_set(err, errlen, "a bad sender address");
		return 0;
	}
	if (klen == 4 && memcmp(line, "name", 4) == 0) {
		if (d->name != NULL)
			return err_set(err, errlen, "two names");
		d->name = xstrndup(v, vlen);
		if (strlen(d->name) != vlen || !drop_name_ok(d->name))
			return err_set(err, errlen, "a bad full name");
		return 0;
	}
	if (klen == 2 && memcmp(line, "to", 2) == 0) {
		char *a;

		if (d->nrcpts >= max_rcpts || d->nrcpts >= DROP_RCPTS_MAX)
			return err_set(err, errlen, "too many recipients");
		a = bracketed(v, vlen, 0);
		if (a == NULL)
			return err_set(err, errlen,
			    "a bad recipient address");
		d->rcpts = xreallocarray(d->rcpts, d->nrcpts + 1,
		    sizeof(*d->rcpts));
		d->rcpts[d->nrcpts++] = a;
		return 0;
	}
	return err_set(err, errlen, "an unknown key");
}

/* drop_parse - read a drop file strictly (see drop.h) */
int
drop_parse(struct drop *d, const char *data, size_t len, size_t max_rcpts,
    char *err, size_t errlen)
{
	size_t pos, magic = strlen(DROP_MAGIC);
	const char *nl;

	memset(d, 0, sizeof(*d));
	if (len < magic + 1 || memcmp(data, DROP_MAGIC "\n", magic + 1) != 0)
		return err_set(err, errlen, "not a tern drop file (version 1)");
	for (pos = magic + 1;; pos = (size_t)(nl - data) + 1) {
		if (pos > DROP_HEAD_MAX)
			return err_set(err, errlen, "envelope too long");
		nl = memchr(data + pos, '\n', len - pos);
		if (nl == NULL)
			return err_set(err, errlen, "truncated envelope");
		if (nl == data + pos)
			break;
		if (memchr(data + pos, '\0', (size_t)(nl - data) - pos) != NULL)
			return err_set(err, errlen, "a NUL in the envelope");
		if (head_line(d, data + pos, (size_t)(nl - data) - pos,
		    max_rcpts, err, errlen) == -1)
			return -1;
	}
	if (d->nrcpts == 0)
		return err_set(err, errlen, "no recipients");
	d->content = nl + 1;
	d->content_len = len - (pos + 1);
	if (memchr(d->content, '\0', d->content_len) != NULL)
		return err_set(err, errlen, "a NUL in the message");
	return 0;
}

/* header section */

/* line_next - the line at pos: its text length without the line end, and
 * where the next one starts */
static size_t
line_next(const char *p, size_t len, size_t pos, size_t *next)
{
	const char *nl = memchr(p + pos, '\n', len - pos);
	size_t end = nl != NULL ? (size_t)(nl - p) : len;

	*next = nl != NULL ? end + 1 : len;
	if (end > pos && p[end - 1] == '\r')
		end--;
	return end - pos;
}

/* field_name_len - the length of the field name a line starts with
 * ("Name:" or obsolete "Name :"), 0 when it is not a field */
static size_t
field_name_len(const char *s, size_t n)
{
	size_t i = 0, name;

	while (i < n && s[i] > ' ' && s[i] < 0x7f && s[i] != ':')
		i++;
	name = i;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return name > 0 && i < n && s[i] == ':' ? name : 0;
}

/* skip_mbox_from - past a leading mbox "From " line, which is no field */
static size_t
skip_mbox_from(const char *p, size_t len)
{
	size_t next;

	if (len < 5 || memcmp(p, "From ", 5) != 0)
		return 0;
	line_next(p, len, 0, &next);
	return next;
}

/*
 * field_next - the header field at *pos with its continuation lines:
 * [*start, *end) and its name length; 0 (and *pos left alone) when the
 * header section ends at *pos
 */
static size_t
field_next(const char *p, size_t len, size_t *pos, size_t *start,
    size_t *end)
{
	size_t next, n, name;

	if (*pos >= len)
		return 0;
	n = line_next(p, len, *pos, &next);
	name = field_name_len(p + *pos, n);
	if (name == 0)
		return 0;
	*start = *pos;
	while (next < len && (p[next] == ' ' || p[next] == '\t'))
		line_next(p, len, next, &next);
	*end = next;
	*pos = next;
	return name;
}

/* name_is - the field's name is want (any case) */
static int
name_is(const char *p, size_t namelen, const char *want)
{
	return strlen(want) == namelen && strncasecmp(p, want, namelen) == 0;
}

/* put_crlf - p[0..n) with every line ended by CRLF (a last line without
 * its end gets one too) */
static void
put_crlf(struct buf *out, const char *p, size_t n)
{
	size_t pos = 0, next, tl;

	while (pos < n) {
		tl = line_next(p, n, pos, &next);
		buf_reserve(out, tl + 2);
		buf_append(out, p + pos, tl);
		buf_append(out, "\r\n", 2);
		pos = next;
	}
}

/* put_name - a full name as an RFC 5322 quoted-string (ASCII), or as an
 * RFC 2047 encoded-word when it holds UTF-8 */
static void
put_name(struct buf *out, const char *name)
{
	const unsigned char *s = (const unsigned char *)name;

	if (util_has_8bit(name, strlen(name))) {
		buf_puts(out, "=?UTF-8?Q?");
		for (; *s != '\0'; s++) {
			if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' &&
			    *s <= 'Z') || (*s >= '0' && *s <= '9'))
				buf_putc(out, *s);
			else if (*s == ' ')
				buf_putc(out, '_');
			else
				buf_printf(out, "=%02X", *s);
		}
		buf_puts(out, "?=");
		return;
	}
	buf_putc(out, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf_putc(out, '\\');
		buf_putc(out, *s);
	}
	buf_putc(out, '"');
}

/* drop_compose - the spool content of a parsed drop */
void
drop_compose(const struct drop *d, const struct drop_facts *f,
    struct buf *out)
{
	const char *p = d->content;
	size_t len = d->content_len, pos, start, end, name, next;
	int has_from = 0, has_date = 0, has_msgid = 0;
	char date[64];

	util_rfc5322_date(f->now, date, sizeof(date));
	buf_printf(out, "Received: by %s (tern, from userid %ld)\r\n"
	    "\tid %s; %s\r\n", f->hostname, f->uid, f->qid, date);
	pos = skip_mbox_from(p, len);
	while ((name = field_next(p, len, &pos, &start, &end)) != 0) {
		if (name_is(p + start, name, "bcc"))
			continue;
		has_from |= name_is(p + start, name, "from");
		has_date |= name_is(p + start, name, "date");
		has_msgid |= name_is(p + start, name, "message-id");
		put_crlf(out, p + start, end - start);
	}
	if (!has_from) {
		buf_puts(out, "From: ");
		if (d->name != NULL) {
			put_name(out, d->name);
			buf_printf(out, " <%s>\r\n", f->from_addr);
		} else
			buf_printf(out, "%s\r\n", f->from_addr);
	}
	if (!has_date)
		buf_printf(out, "Date: %s\r\n", date);
	if (!has_msgid)
		buf_printf(out, "Message-ID: <%s@%s>\r\n", f->qid, f->hostname);
	buf_puts(out, "\r\n");
	/* the empty line that ended the header section is the one above */
	if (pos < len && line_next(p, len, pos, &next) == 0)
		pos = next;
	put_crlf(out, p + pos, len - pos);
}

/* address lists (sendmail -t) */

struct alist {
	char ***list;
	size_t *n, max;
	struct buf word;  /* the address being collected */
	int angle;        /* inside <...> */
	int have_angle;   /* this mailbox had <...>: only that counts */
	struct buf angled;
};

/* alist_end - one mailbox (or nothing) ends here */
static int
alist_end(struct alist *a, char *err, size_t errlen)
{
	struct buf *w = a->have_angle ? &a->angled : &a->word;
	int rc = 0;

	if (w->len > 0) {
		if (w->len > DROP_ADDR_MAX)
			rc = err_set(err, errlen, "an address too long");
		else if (*a->n >= a->max)
			rc = err_set(err, errlen, "too many recipients");
		else {
			*a->list = xreallocarray(*a->list, *a->n + 1,
			    sizeof(**a->list));
			(*a->list)[(*a->n)++] = xstrndup(w->data, w->len);
		}
	}
	buf_reset(&a->word);
	buf_reset(&a->angled);
	a->have_angle = 0;
	return rc;
}

/* skip_quoted - past a quoted string starting at v[i] == '"', copying
 * it (quotes included) to w */
static size_t
skip_quoted(const char *v, size_t n, size_t i, struct buf *w)
{
	buf_putc(w, v[i++]);
	while (i < n && v[i] != '"') {
		if (v[i] == '\\' && i + 1 < n)
			buf_putc(w, v[i++]);
		buf_putc(w, v[i++]);
	}
	if (i < n)
		buf_putc(w, v[i++]);
	return i;
}

/* skip_comment - past a (nested) comment starting at v[i] == '(' */
static size_t
skip_comment(const char *v, size_t n, size_t i)
{
	size_t depth = 0;

	for (; i < n; i++) {
		if (v[i] == '\\' && i + 1 < n)
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return n;
}

/* alist_parse - the addresses of one field's value v[0..n) (unfolded) */
static int
alist_parse(struct alist *a, const char *v, size_t n, char *err,
    size_t errlen)
{
	size_t i = 0;
	struct buf *w;

	while (i < n) {
		w = a->angle ? &a->angled : &a->word;
		switch (v[i]) {
		case '"':
			i = skip_quoted(v, n, i, w);
			continue;
		case '(':
			i = skip_comment(v, n, i);
			continue;
		case '<':
			a->angle = a->have_angle = 1;
			buf_reset(&a->angled);
			break;
		case '>':
			a->angle = 0;
			break;
		case ':':
			if (a->angle)
				buf_putc(w, v[i]); /* a source route */
			else
				buf_reset(&a->word); /* a group's name */
			break;
		case ',':
		case ';':
			if (a->angle) {
				buf_putc(w, v[i]);
				break;
			}
			if (alist_end(a, err, errlen) == -1)
				return -1;
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			break;
		default:
			buf_putc(w, v[i]);
		}
		i++;
	}
	if (a->angle) {
		a->angle = 0;
		return err_set(err, errlen, "bad recipient address: an "
		    "unclosed <");
	}
	return alist_end(a, err, errlen);
}

/* drop_header_rcpts - sendmail -t: To:, Cc:, Bcc: addresses */
int
drop_header_rcpts(const char *content, size_t len, char ***list, size_t *n,
    size_t max, char *err, size_t errlen)
{
	struct alist a = { .list = list, .n = n, .max = max };
	size_t pos, start, end, name;
	int rc = 0;

	buf_init(&a.word);
	buf_init(&a.angled);
	pos = skip_mbox_from(content, len);
	while (rc == 0 &&
	    (name = field_next(content, len, &pos, &start, &end)) != 0) {
		const char *v = (const char *)memchr(content + start, ':',
		    end - start) + 1;

		if (!name_is(content + start, name, "to") &&
		    !name_is(content + start, name, "cc") &&
		    !name_is(content + start, name, "bcc"))
			continue;
		rc = alist_parse(&a, v, (size_t)(content + end - v), err,
		    errlen);
	}
	buf_free(&a.word);
	buf_free(&a.angled);
	return rc;
}

/* drop_addr_list - the addresses of one address list */
int
drop_addr_list(const char *v, size_t len, char ***list, size_t *n,
    size_t max, char *err, size_t errlen)
{
	struct alist a = { .list = list, .n = n, .max = max };
	int rc;

	buf_init(&a.word);
	buf_init(&a.angled);
	rc = alist_parse(&a, v, len, err, errlen);
	buf_free(&a.word);
	buf_free(&a.angled);
	return rc;
}

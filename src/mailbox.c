/*
 * mailbox.c - from a recipient address to a mailbox path: the %u of a
 * local part, mailbox pattern expansion, splitting local@domain.
 *
 * The one idea: a local part comes from the network, so it becomes a path
 * component only after it is reduced (unquoted, case-folded, subaddress
 * cut) and then checked against a short list of what a file name must not
 * hold.  Expansion never re-reads what it inserts, so a '%' in a user name
 * stays a '%'.  RFC 5321 2.4 (local parts are case-sensitive on the wire;
 * we fold, as nearly every MTA does for local delivery), RFC 5233
 * (subaddress).  Pure: no I/O.
 */
#include "mailbox.h"

#include <string.h>

#include "util.h"

struct outbuf {
	char *p;
	size_t cap;
	size_t len;
	int overflow;
};

static int
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/*
 * local_next - the next octet of a local part with quoting undone: 1 and
 * *c set, 0 at the end, -1 when the quoted-string is malformed.
 */
static int
local_next(const char **pp, int quoted, unsigned char *c)
{
	const char *p = *pp;

	if (!quoted) {
		if (*p == '\0')
			return 0;
		*c = (unsigned char)*p;
		*pp = p + 1;
		return 1;
	}
	if (*p == '"')
		return p[1] == '\0' ? 0 : -1; /* nothing after the quote */
	if (*p == '\0')
		return -1; /* unterminated */
	if (*p == '\\') {
		if (p[1] == '\0')
			return -1;
		p++;
	}
	*c = (unsigned char)*p;
	*pp = p + 1;
	return 1;
}

/* user_safe - 1 when u[0..n) can be a path component */
static int
user_safe(const char *u, size_t n)
{
	size_t i;
	unsigned char c;

	if (n == 0 || u[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)u[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			return 0;
	}
	return util_utf8_valid((const unsigned char *)u, n);
}

/* mailbox_parts - user, extension and folded local part */
int
mailbox_parts(const char *local, char sep, struct mailbox_parts *out)
{
	const char *p = local;
	int quoted = local[0] == '"', r, cut = 0;
	unsigned char c;
	size_t nu = 0, ne = 0, nl = 0;

	if (quoted)
		p++;
	while ((r = local_next(&p, quoted, &c)) == 1) {
		c = (unsigned char)ascii_lower(c);
		if (nl == MAILBOX_LOCAL_MAX)
			return -1;
		out->local[nl++] = (char)c;
		if (!cut && sep != 0 && c == (unsigned char)sep) {
			cut = 1; /* RFC 5233 subaddress */
			continue;
		}
		if (cut)
			out->ext[ne++] = (char)c;
		else if (nu == MAILBOX_USER_MAX)
			return -1;
		else
			out->user[nu++] = (char)c;
	}
	out->user[nu] = out->ext[ne] = out->local[nl] = '\0';
	if (r < 0 || !user_safe(out->user, nu) ||
	    !util_utf8_valid((const unsigned char *)out->local, nl))
		return -1;
	return 0;
}

/* mailbox_user - the %u of a local part ('+' subaddress), or -1 when
 * unsafe */
int
mailbox_user(const char *local, char *out, size_t outlen)
{
	struct mailbox_parts mp;
	size_t n;

	if (mailbox_parts(local, '+', &mp) == -1)
		return -1;
	n = strlen(mp.user);
	if (n >= outlen)
		return -1;
	memcpy(out, mp.user, n + 1);
	return 0;
}

static void
out_put(struct outbuf *o, const char *s, size_t n, int lower)
{
	size_t i;

	if (n >= o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	for (i = 0; i < n; i++)
		o->p[o->len++] =
		    lower ? (char)ascii_lower((unsigned char)s[i]) : s[i];
	o->p[o->len] = '\0';
}

static void
out_str(struct outbuf *o, const char *s, int lower)
{
	out_put(o, s, strlen(s), lower);
}

/* mailbox_expand - expand %u, %d, %a and %% in a mailbox pattern */
int
mailbox_expand(const char *pattern, const char *user, const char *domain,
	       char *out, size_t outlen)
{
	struct outbuf o = {out, outlen, 0, 0};
	const char *p;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (p = pattern; *p != '\0'; p++) {
		if (*p != '%') {
			out_put(&o, p, 1, 0);
			continue;
		}
		switch (p[1]) {
		case 'u':
			out_str(&o, user, 0);
			break;
		case 'd':
			out_str(&o, domain, 1);
			break;
		case 'a':
			out_str(&o, user, 0);
			out_put(&o, "@", 1, 0);
			out_str(&o, domain, 1);
			break;
		case '%':
			out_put(&o, "%", 1, 0);
			break;
		default:
			/* unknown escape: kept as written; conf checks it */
			out_put(&o, "%", 1, 0);
			continue;
		}
		p++;
	}
	return o.overflow ? -1 : 0;
}

/* mailbox_split - split "local@domain" at its last '@' */
int
mailbox_split(const char *addr, char *local, size_t locallen, char *domain,
	      size_t domainlen)
{
	const char *at = strrchr(addr, '@');
	size_t ll, dl;

	if (at == NULL)
		return -1;
	ll = (size_t)(at - addr);
	dl = strlen(at + 1);
	if (ll >= locallen || dl >= domainlen)
		return -1;
	memcpy(local, addr, ll);
	local[ll] = '\0';
	memcpy(domain, at + 1, dl);
	domain[dl] = '\0';
	return 0;
}

/*
 * smtp_parse.c - pure parsing of SMTP command lines, reverse- and
 * forward-paths, mailboxes, domains and ESMTP parameters.
 *
 * RFC 5321 4.1.1 (verbs), 4.1.2 (Path, Mailbox, Domain, esmtp-param),
 * 4.1.3 (address literals), 4.5.3.1 (size limits); RFC 6531 3.3 (UTF-8 in
 * local parts and domains).
 *
 * The one idea: small scanners over (pointer, length) that never read past
 * the length and report how much they matched; text is copied into the
 * fixed fields of struct smtp_addr only after its length has been checked.
 * Written by hand because no Debian library parses RFC 5321 paths: the
 * RFC 5322 address parsers (GMime and friends) accept a different, looser
 * grammar (comments, display names, obsolete forms) that must not reach
 * the envelope.
 */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>

#include "util.h"

/* flags reported by scan_domain */
#define DOM_UTF8 0x01
#define DOM_LITERAL 0x02

/* clang-format off */
static const char *const verb_names[SMTP_V_COUNT] = {
	[SMTP_V_UNKNOWN] = "",
	[SMTP_V_HELO] = "HELO",
	[SMTP_V_EHLO] = "EHLO",
	[SMTP_V_MAIL] = "MAIL",
	[SMTP_V_RCPT] = "RCPT",
	[SMTP_V_DATA] = "DATA",
	[SMTP_V_BDAT] = "BDAT",
	[SMTP_V_RSET] = "RSET",
	[SMTP_V_NOOP] = "NOOP",
	[SMTP_V_QUIT] = "QUIT",
	[SMTP_V_VRFY] = "VRFY",
	[SMTP_V_EXPN] = "EXPN",
	[SMTP_V_HELP] = "HELP",
	[SMTP_V_STARTTLS] = "STARTTLS",
	[SMTP_V_AUTH] = "AUTH",
};
/* clang-format on */

/* character classes: ASCII only, independent of the locale */

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

/* printable ASCII and SP: what a quoted-pairSMTP may escape */
static int
is_print(unsigned char c)
{
	return c >= 32 && c <= 126;
}

static int
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* RFC 5322 atext, plus UTF8-non-ascii octets (RFC 6531 3.3) */
static int
is_atext(unsigned char c)
{
	if (is_alnum(c) || c >= 0x80)
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5321 qtextSMTP, plus UTF8-non-ascii octets (RFC 6531 3.3) */
static int
is_qtext(unsigned char c)
{
	return (c >= 32 && c <= 126 && c != '"' && c != '\\') || c >= 0x80;
}

/* letters, digits, hyphen, and UTF-8 octets of a U-label */
static int
is_label_char(unsigned char c)
{
	return is_alnum(c) || c == '-' || c >= 0x80;
}

/* RFC 5321 esmtp-value (printable ASCII but '=' and SP) plus UTF-8 */
static int
is_value_char(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != '=') || c >= 0x80;
}

/* ascii_prefix - 1 when s[0..len) starts with word, ignoring ASCII case */
static int
ascii_prefix(const char *s, size_t len, const char *word)
{
	size_t i, n = strlen(word);

	if (len < n)
		return 0;
	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) !=
		    ascii_lower((unsigned char)word[i]))
			return 0;
	return 1;
}

static int
ascii_caseeq(const char *a, const char *b)
{
	size_t n = strlen(b);

	return strlen(a) == n && ascii_prefix(a, n, b);
}

/* smtp_cmd_split - recognise the verb, split off the argument */
int
smtp_cmd_split(char *line, struct smtp_cmd *cmd)
{
	size_t n = strcspn(line, " ");
	int v;

	cmd->verb = SMTP_V_UNKNOWN;
	cmd->name = "";
	cmd->arg = line[n] == ' ' ? line + n + 1 : line + n;
	for (v = SMTP_V_UNKNOWN + 1; v < SMTP_V_COUNT; v++) {
		if (strlen(verb_names[v]) == n &&
		    ascii_prefix(line, n, verb_names[v])) {
			cmd->verb = (enum smtp_verb)v;
			cmd->name = verb_names[v];
			break;
		}
	}
	return 0;
}

/* smtp_verb_name - canonical name of a verb, "" when unknown */
const char *
smtp_verb_name(enum smtp_verb v)
{
	if ((int)v < 0 || v >= SMTP_V_COUNT)
		return "";
	return verb_names[v];
}

/* scan_dotstring - Atom *("." Atom); sets *np to the octets matched */
static enum smtp_perr
scan_dotstring(const char *s, size_t len, size_t *np)
{
	size_t i = 0, start;

	for (;;) {
		start = i;
		while (i < len && is_atext((unsigned char)s[i]))
			i++;
		if (i == start)
			return SMTP_P_SYNTAX; /* leading, double or end dot */
		if (i == len || s[i] != '.')
			break;
		i++;
	}
	*np = i;
	return SMTP_P_OK;
}

/* scan_quoted - DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
static enum smtp_perr
scan_quoted(const char *s, size_t len, size_t *np)
{
	size_t i = 1;
	unsigned char c;

	while (i < len) {
		c = (unsigned char)s[i];
		if (c == '"') {
			*np = i + 1;
			return SMTP_P_OK;
		}
		if (c == '\\') {
			/* quoted-pairSMTP: backslash then %d32-126 */
			if (i + 1 == len || !is_print((unsigned char)s[i + 1]))
				return SMTP_P_SYNTAX;
			i += 2;
			continue;
		}
		if (!is_qtext(c))
			return SMTP_P_SYNTAX;
		i++;
	}
	return SMTP_P_SYNTAX;
}

/* scan_local - a Local-part at s; sets *np, checks length and UTF-8 */
static enum smtp_perr
scan_local(const char *s, size_t len, size_t *np)
{
	enum smtp_perr e;

	if (len > 0 && s[0] == '"')
		e = scan_quoted(s, len, np);
	else
		e = scan_dotstring(s, len, np);
	if (e != SMTP_P_OK)
		return e;
	if (*np > SMTP_LOCAL_MAX)
		return SMTP_P_TOO_LONG;
	if (util_has_8bit(s, *np) &&
	    !util_utf8_valid((const unsigned char *)s, *np))
		return SMTP_P_BAD_UTF8;
	return SMTP_P_OK;
}

/* check_label - 1..63 octets, no hyphen at either end */
static enum smtp_perr
check_label(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return SMTP_P_SYNTAX;
	if (s[0] == '-' || s[len - 1] == '-')
		return SMTP_P_SYNTAX;
	return SMTP_P_OK;
}

/* scan_name - sub-domain *("." sub-domain) at s; sets *np */
static enum smtp_perr
scan_name(const char *s, size_t len, int utf8_ok, size_t *np, unsigned *fl)
{
	size_t i = 0, start;
	enum smtp_perr e;

	for (;;) {
		start = i;
		while (i < len && is_label_char((unsigned char)s[i]))
			i++;
		if ((e = check_label(s + start, i - start)) != SMTP_P_OK)
			return e;
		if (i == len || s[i] != '.')
			break;
		i++; /* a dot must be followed by a label: no trailing dot */
	}
	if (i > SMTP_DOMAIN_MAX)
		return SMTP_P_TOO_LONG;
	if (util_has_8bit(s, i)) {
		if (!utf8_ok)
			return SMTP_P_SYNTAX;
		if (!util_utf8_valid((const unsigned char *)s, i))
			return SMTP_P_BAD_UTF8;
		*fl |= DOM_UTF8;
	}
	*np = i;
	return SMTP_P_OK;
}

/*
 * check_literal - the inside of an address-literal: IPv4 or "IPv6:" and an
 * IPv6 address.  inet_pton does the address syntax (it refuses leading
 * zeros, scope ids and out-of-range octets).  General-address-literals
 * (a standardized tag) are refused: there is nothing we could route to.
 */
static enum smtp_perr
check_literal(const char *s, size_t len)
{
	char tmp[64];
	unsigned char addr[16];
	int af = AF_INET;

	if (ascii_prefix(s, len, "IPv6:")) {
		af = AF_INET6;
		s += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof(tmp))
		return SMTP_P_SYNTAX;
	/* inet_pton stops at a NUL: allow only what an address holds */
	if (strspn(s, "0123456789abcdefABCDEF:.") < len)
		return SMTP_P_SYNTAX;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(af, tmp, addr) != 1)
		return SMTP_P_SYNTAX;
	return SMTP_P_OK;
}

/* scan_domain - a Domain or an address-literal at s; sets *np and *fl */
static enum smtp_perr
scan_domain(const char *s, size_t len, int utf8_ok, size_t *np, unsigned *fl)
{
	const char *close;
	enum smtp_perr e;

	*fl = 0;
	if (len == 0 || s[0] != '[')
		return scan_name(s, len, utf8_ok, np, fl);
	close = memchr(s, ']', len);
	if (close == NULL)
		return SMTP_P_SYNTAX;
	if ((e = check_literal(s + 1, (size_t)(close - s) - 1)) != SMTP_P_OK)
		return e;
	*fl |= DOM_LITERAL;
	*np = (size_t)(close - s) + 1;
	return SMTP_P_OK;
}

/* scan_mailbox - Local-part "@" ( Domain / address-literal ) into a */
static enum smtp_perr
scan_mailbox(const char *s, size_t len, size_t *np, struct smtp_addr *a)
{
	size_t nl, nd;
	unsigned fl;
	enum smtp_perr e;

	if ((e = scan_local(s, len, &nl)) != SMTP_P_OK)
		return e;
	if (nl == len || s[nl] != '@')
		return SMTP_P_SYNTAX;
	e = scan_domain(s + nl + 1, len - nl - 1, 1, &nd, &fl);
	if (e != SMTP_P_OK)
		return e;
	memcpy(a->local, s, nl);
	a->local[nl] = '\0';
	memcpy(a->domain, s + nl + 1, nd);
	a->domain[nd] = '\0';
	a->quoted = s[0] == '"';
	a->utf8 = util_has_8bit(s, nl) || (fl & DOM_UTF8) != 0;
	a->literal = (fl & DOM_LITERAL) != 0;
	*np = nl + 1 + nd;
	return SMTP_P_OK;
}

/* smtp_parse_addr - parse a bare mailbox "local@domain" */
enum smtp_perr
smtp_parse_addr(const char *s, size_t len, struct smtp_addr *out)
{
	size_t n;
	enum smtp_perr e;

	memset(out, 0, sizeof(*out));
	if ((e = scan_mailbox(s, len, &n, out)) != SMTP_P_OK)
		return e;
	if (n != len)
		return SMTP_P_SYNTAX;
	/* the same mailbox in a path must fit its 256 octets with <> */
	if (len > SMTP_PATH_MAX - 2)
		return SMTP_P_TOO_LONG;
	return SMTP_P_OK;
}

/*
 * scan_route - the obsolete A-d-l ":" of RFC 5321 4.1.2:
 * "@" Domain *("," "@" Domain) ":".  RFC 5321 C says servers MUST accept
 * and SHOULD ignore it; we check its syntax and drop it.
 */
static enum smtp_perr
scan_route(const char *s, size_t len, size_t *np)
{
	size_t i = 0, n;
	unsigned fl;
	enum smtp_perr e;

	for (;;) {
		if (i == len || s[i] != '@')
			return SMTP_P_SYNTAX;
		i++;
		if (i < len && s[i] == '[')
			return SMTP_P_SYNTAX; /* At-domain takes no literal */
		if ((e = scan_name(s + i, len - i, 1, &n, &fl)) != SMTP_P_OK)
			return e;
		i += n;
		if (i < len && s[i] == ':') {
			*np = i + 1;
			return SMTP_P_OK;
		}
		if (i == len || s[i] != ',')
			return SMTP_P_SYNTAX;
		i++;
	}
}

/* is_postmaster - "<postmaster>" in any case, the RCPT-only special */
static int
is_postmaster(const char *s, size_t len)
{
	return len >= 12 && ascii_prefix(s, len, "<postmaster>");
}

/* parse_path - "<" [ A-d-l ":" ] Mailbox ">", or "<>"; sets *np */
static enum smtp_perr
parse_path(const char *s, size_t len, int rcpt, struct smtp_addr *a, size_t *np)
{
	size_t i = 1, n;
	enum smtp_perr e;

	memset(a, 0, sizeof(*a));
	if (len < 2 || s[0] != '<')
		return SMTP_P_SYNTAX;
	if (s[1] == '>') {
		if (rcpt)
			return SMTP_P_SYNTAX;
		a->is_null = 1;
		*np = 2;
		return SMTP_P_OK;
	}
	if (rcpt && is_postmaster(s, len)) {
		memcpy(a->local, s + 1, 10);
		a->local[10] = '\0';
		*np = 12;
		return SMTP_P_OK;
	}
	if (s[1] == '@') {
		if ((e = scan_route(s + 1, len - 1, &n)) != SMTP_P_OK)
			return e;
		a->source_route = 1;
		i += n;
	}
	if ((e = scan_mailbox(s + i, len - i, &n, a)) != SMTP_P_OK)
		return e;
	i += n;
	if (i == len || s[i] != '>')
		return SMTP_P_SYNTAX;
	i++;
	if (i > SMTP_PATH_MAX)
		return SMTP_P_TOO_LONG;
	*np = i;
	return SMTP_P_OK;
}

/* parse_param - esmtp-keyword ["=" esmtp-value] at *pp, NUL-terminated */
static enum smtp_perr
parse_param(char **pp, struct smtp_param *prm)
{
	char *p = *pp, *val;

	prm->key = p;
	prm->value = NULL;
	if (!is_alnum((unsigned char)*p))
		return SMTP_P_BAD_PARAM;
	while (is_alnum((unsigned char)*p) || *p == '-')
		p++;
	if (*p == '=') {
		*p++ = '\0';
		val = p;
		while (is_value_char((unsigned char)*p))
			p++;
		if (p == val)
			return SMTP_P_BAD_PARAM;
		if (util_has_8bit(val, (size_t)(p - val)) &&
		    !util_utf8_valid((unsigned char *)val, (size_t)(p - val)))
			return SMTP_P_BAD_UTF8;
		prm->value = val;
	}
	if (*p == ' ')
		*p++ = '\0';
	else if (*p != '\0')
		return SMTP_P_BAD_PARAM;
	*pp = p;
	return SMTP_P_OK;
}

/* parse_params - parameters separated by one or more SP, trailing SP ok */
static enum smtp_perr
parse_params(char *p, struct smtp_pathcmd *out)
{
	enum smtp_perr e;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return SMTP_P_OK;
		if (out->nparams == SMTP_PARAMS_MAX)
			return SMTP_P_TOO_MANY_PARAMS;
		e = parse_param(&p, &out->params[out->nparams]);
		if (e != SMTP_P_OK)
			return e;
		out->nparams++;
	}
}

/* parse_pathcmd - "FROM:" or "TO:", one optional SP, path, parameters */
static enum smtp_perr
parse_pathcmd(char *arg, const char *kw, int rcpt, struct smtp_pathcmd *out)
{
	size_t kwlen = strlen(kw), n;
	char *p;
	enum smtp_perr e;

	out->nparams = 0;
	if (!ascii_prefix(arg, strlen(arg), kw))
		return SMTP_P_SYNTAX;
	p = arg + kwlen;
	if (*p == ' ')
		p++; /* "MAIL FROM: <a@b>": common, tolerated */
	if ((e = parse_path(p, strlen(p), rcpt, &out->addr, &n)) != SMTP_P_OK)
		return e;
	p += n;
	if (*p == '\0')
		return SMTP_P_OK;
	if (*p != ' ')
		return SMTP_P_SYNTAX;
	return parse_params(p, out);
}

/* smtp_parse_mail - parse the argument of MAIL: "FROM:<path> [params]" */
enum smtp_perr
smtp_parse_mail(char *arg, struct smtp_pathcmd *out)
{
	return parse_pathcmd(arg, "FROM:", 0, out);
}

/* smtp_parse_rcpt - parse the argument of RCPT: "TO:<path> [params]" */
enum smtp_perr
smtp_parse_rcpt(char *arg, struct smtp_pathcmd *out)
{
	return parse_pathcmd(arg, "TO:", 1, out);
}

/* smtp_param_get - the parameter named key (case-insensitive), or NULL */
const struct smtp_param *
smtp_param_get(const struct smtp_pathcmd *pc, const char *key)
{
	size_t i;

	for (i = 0; i < pc->nparams; i++)
		if (ascii_caseeq(pc->params[i].key, key))
			return &pc->params[i];
	return NULL;
}

/* smtp_parse_size_param - decimal SIZE= value; -1 on syntax or overflow */
int
smtp_parse_size_param(const char *s, uint64_t *out)
{
	uint64_t v = 0, d;
	size_t n = 0;

	if (!is_digit((unsigned char)*s))
		return -1;
	for (; *s != '\0'; s++, n++) {
		/* RFC 1870: size-value = 1*20DIGIT */
		if (!is_digit((unsigned char)*s) || n == 20)
			return -1;
		d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* smtp_addr_format - "local@domain" into out; length or -1 */
int
smtp_addr_format(const struct smtp_addr *a, char *out, size_t outlen)
{
	size_t ll, dl, need;

	if (outlen == 0)
		return -1;
	if (a->is_null) {
		out[0] = '\0';
		return 0;
	}
	ll = strnlen(a->local, sizeof(a->local));
	dl = strnlen(a->domain, sizeof(a->domain));
	need = ll + (dl ? 1 + dl : 0); /* "postmaster" has no domain */
	if (need >= outlen)
		return -1;
	memcpy(out, a->local, ll);
	if (dl) {
		out[ll] = '@';
		memcpy(out + ll + 1, a->domain, dl);
	}
	out[need] = '\0';
	return (int)need;
}

/* smtp_addr_relay_trick - 1 when a recipient asks for source routing */
int
smtp_addr_relay_trick(const struct smtp_addr *a)
{
	if (a->source_route)
		return 1;
	return strpbrk(a->local, "%!@") != NULL;
}

/* smtp_domain_valid - 1 when s is a valid domain or address literal */
int
smtp_domain_valid(const char *s, int utf8_ok)
{
	size_t len = strlen(s), n;
	unsigned fl;

	if (scan_domain(s, len, utf8_ok, &n, &fl) != SMTP_P_OK)
		return 0;
	return n == len;
}

/* smtp_perr_str - short text for an error, for replies */
const char *
smtp_perr_str(enum smtp_perr e)
{
	switch (e) {
	case SMTP_P_OK:
		return "ok";
	case SMTP_P_SYNTAX:
		return "syntax error";
	case SMTP_P_TOO_LONG:
		return "address too long";
	case SMTP_P_BAD_UTF8:
		return "malformed UTF-8";
	case SMTP_P_BAD_PARAM:
		return "malformed parameter";
	case SMTP_P_TOO_MANY_PARAMS:
		return "too many parameters";
	}
	return "unknown error";
}

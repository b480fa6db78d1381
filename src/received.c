/*
 * received.c - Received: trace fields read into their parts (RFC 5321 4.4
 * "Time-stamp-line", RFC 5322 3.6.7 and 3.3 for the date).
 *
 * The one idea: the grammar of RFC 5321 is a list of clauses (from, by,
 * via, with, id, for) and a date after the last ';', but every MTA puts
 * what matters into comments of its own form: Postfix and Sendmail write
 * "(rdns [ip])", Exim "([ip] helo=name)", qmail "(HELO name) (ip)",
 * Exchange "(ip)" after a host; TLS appears as "(using TLSv1.3 with cipher
 * X)" (Postfix), "(version=TLSv1.3 cipher=X)" (Sendmail, Exchange),
 * "(TLSv1.3:X:256:NO)" (OpenSMTPD), "(TLS1.3) tls X" (Exim) or "(TLSv1.3
 * X)" (tern).  So the value is cut into words and comments first (quoted
 * strings and nested comments respected, every length bounded), the words
 * are sorted into clauses by keyword, and each comment is read by the
 * clause it follows.  What cannot be read is refused as a whole, with a
 * reason, so the caller shows it raw; nothing is guessed from half a line.
 *
 * Hand-written: GMime unfolds and decodes headers but has no grammar for
 * trace fields (nor has any Debian library), and the date is read here
 * too so that this module stays pure (no GLib): unit tests and
 * fuzz/fuzz_received.c link it alone.
 */
#include "received.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* the parts a value is cut into; a Received: line has a dozen or two */
#define RCV_TOKENS_MAX 128
/* comments nest at most this deep (RFC 5322 3.2.2 sets no limit) */
#define RCV_DEPTH_MAX 8

enum tok_kind { TOK_WORD, TOK_COMMENT };

struct tok {
	enum tok_kind kind;
	const char *p; /* a comment without its outer parentheses */
	size_t len;
};

enum clause { CL_NONE, CL_FROM, CL_BY, CL_VIA, CL_WITH, CL_ID, CL_FOR };

/* struct rctx - what the parse has seen so far */
struct rctx {
	int helo_seen;    /* a comment named the HELO (Exim, qmail) */
	int from_literal; /* the from word was an address literal */
	int saw_from;
};

static const char *const clause_words[] = {
	[CL_FROM] = "from", [CL_BY] = "by", [CL_VIA] = "via",
	[CL_WITH] = "with", [CL_ID] = "id", [CL_FOR] = "for",
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* set - copy a part, sanitised and bounded */
static void
set(char *dst, const char *p, size_t len)
{
	util_sanitise(dst, RECEIVED_PART_MAX, p, len);
}

/* word_is - case-insensitive comparison of a counted word */
static int
word_is(const char *p, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(p, w, len) == 0;
}

/* skip_comment - p at '(': the index after its ')', or 0 when it does
 * not end or nests too deep */
static size_t
skip_comment(const char *s, size_t i, size_t len)
{
	int depth = 0;

	for (; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			i++;
		} else if (s[i] == '(') {
			if (++depth > RCV_DEPTH_MAX)
				return 0;
		} else if (s[i] == ')' && --depth == 0) {
			return i + 1;
		}
	}
	return 0;
}

/* tokenize - words and comments of s[0..len); -1 with *why when broken */
static int
tokenize(const char *s, size_t len, struct tok *t, size_t *nt,
    const char **why)
{
	size_t i = 0, n = 0, end, start;
	int quoted;

	while (i < len) {
		if (is_space(s[i])) {
			i++;
			continue;
		}
		if (n == RCV_TOKENS_MAX) {
			*why = "too many parts";
			return -1;
		}
		if (s[i] == '(') {
			if ((end = skip_comment(s, i, len)) == 0) {
				*why = "a comment does not end";
				return -1;
			}
			t[n++] = (struct tok){ TOK_COMMENT, s + i + 1,
			    end - i - 2 };
			i = end;
			continue;
		}
		if (s[i] == ')') {
			*why = "a ')' without its '('";
			return -1;
		}
		start = i;
		quoted = 0;
		for (; i < len; i++) {
			if (s[i] == '"')
				quoted = !quoted;
			else if (quoted && s[i] == '\\' && i + 1 < len)
				i++;
			else if (!quoted && (is_space(s[i]) || s[i] == '(' ||
			    s[i] == ')'))
				break;
		}
		if (quoted) {
			*why = "a quoted string does not end";
			return -1;
		}
		t[n++] = (struct tok){ TOK_WORD, s + start, i - start };
	}
	*nt = n;
	return 0;
}

/* date_split - the index of the ';' before the date: the last one outside
 * comments and quotes; len when there is none */
static size_t
date_split(const char *s, size_t len)
{
	size_t i, semi = len, end;
	int quoted = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '"') {
			quoted = !quoted;
		} else if (quoted) {
			if (s[i] == '\\')
				i++;
		} else if (s[i] == '(') {
			if ((end = skip_comment(s, i, len)) == 0)
				return semi; /* tokenize says why */
			i = end - 1;
		} else if (s[i] == ';') {
			semi = i;
		}
	}
	return semi;
}

/* looks_ip - digits and dots (IPv4) or hex digits and colons (IPv6) */
static int
looks_ip(const char *p, size_t len)
{
	size_t i, colons = 0, dots = 0;

	if (len < 2 || len > 45)
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] == ':')
			colons++;
		else if (p[i] == '.')
			dots++;
		else if (!((p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f') ||
		    (p[i] >= 'A' && p[i] <= 'F')))
			return 0;
	}
	if (colons >= 2)
		return 1;
	if (colons || dots != 3)
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] >= 'A' && p[i] != '.')
			return 0;
	return 1;
}

/* set_host - a host name without the final dot ("a.example." from
 * Gmail); "unknown" (Postfix, qmail) names nothing */
static void
set_host(char *dst, const char *p, size_t len)
{
	if (len > 0 && p[len - 1] == '.')
		len--;
	if (word_is(p, len, "unknown"))
		len = 0;
	set(dst, p, len);
}

/* set_literal - "[192.0.2.1]", "[IPv6:2001:db8::1]" or a bare address,
 * maybe "ident@" before it and ":port" after the bracket (Exim) */
static int
set_literal(char *dst, const char *p, size_t len)
{
	const char *at = memchr(p, '@', len), *close;

	if (at != NULL) {
		len -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	if (len > 0 && p[0] == '[') {
		close = memchr(p, ']', len);
		if (close == NULL)
			return -1;
		len = (size_t)(close - p) - 1;
		p++;
		if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) {
			p += 5;
			len -= 5;
		}
	}
	/* a zone index ("fe80::1%4", Exchange) is not part of the address */
	if ((close = memchr(p, '%', len)) != NULL)
		len = (size_t)(close - p);
	if (!looks_ip(p, len))
		return -1;
	set(dst, p, len);
	return 0;
}

/* is_tls_version - "TLSv1.3", "TLS1.3", "TLS1_2", "SSLv3" */
static int
is_tls_version(const char *p, size_t len)
{
	size_t i = 3;

	if (len < 4 || (strncasecmp(p, "TLS", 3) != 0 &&
	    strncasecmp(p, "SSL", 3) != 0))
		return 0;
	if (p[i] == 'v' || p[i] == 'V')
		i++;
	return i < len && p[i] >= '0' && p[i] <= '9';
}

/* struct cwords - the words of a comment, split at spaces */
#define CWORDS_MAX 32
struct cwords {
	const char *p[CWORDS_MAX];
	size_t len[CWORDS_MAX];
	size_t n;
};

static void
comment_words(const char *s, size_t len, struct cwords *w)
{
	size_t i = 0, start;

	w->n = 0;
	while (i < len && w->n < CWORDS_MAX) {
		while (i < len && (is_space(s[i]) || s[i] == ','))
			i++;
		start = i;
		while (i < len && !is_space(s[i]) && s[i] != ',')
			i++;
		if (i > start) {
			w->p[w->n] = s + start;
			w->len[w->n++] = i - start;
		}
	}
}

/* strip_paren - a word cut at a '(' or ')' that sticks to it */
static size_t
strip_paren(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] == '(' || p[i] == ')')
			return i;
	return len;
}

/* keyval - "key=value" words: the value of key, or NULL */
static const char *
keyval(const struct cwords *w, const char *key, size_t *vlen)
{
	size_t i, kl = strlen(key);

	for (i = 0; i < w->n; i++) {
		if (w->len[i] > kl && strncasecmp(w->p[i], key, kl) == 0) {
			*vlen = strip_paren(w->p[i] + kl, w->len[i] - kl);
			return w->p[i] + kl;
		}
	}
	return NULL;
}

/* comment_tls - whatever a comment says about TLS, in any of the forms of
 * the header comment */
static void
comment_tls(struct received *r, const char *s, size_t len)
{
	struct cwords w;
	const char *v, *colon;
	size_t i, vl;

	if (len >= 25 && memmem(s, len, "Google Transport Security", 25))
		r->tls = 1;
	comment_words(s, len, &w);
	if (w.n == 0)
		return;
	if ((v = keyval(&w, "version=", &vl)) != NULL && is_tls_version(v, vl))
		set(r->tls_version, v, vl);
	if ((v = keyval(&w, "cipher=", &vl)) != NULL && vl > 0)
		set(r->tls_cipher, v, vl);
	for (i = 0; i + 1 < w.n; i++) {
		if (word_is(w.p[i], w.len[i], "using") &&
		    is_tls_version(w.p[i + 1], w.len[i + 1]))
			set(r->tls_version, w.p[i + 1], w.len[i + 1]);
		if (word_is(w.p[i], w.len[i], "cipher"))
			set(r->tls_cipher, w.p[i + 1], w.len[i + 1]);
	}
	if (!is_tls_version(w.p[0], w.len[0]))
		return;
	colon = memchr(w.p[0], ':', w.len[0]);
	if (colon != NULL) { /* OpenSMTPD: version:cipher:bits:verify */
		set(r->tls_version, w.p[0], (size_t)(colon - w.p[0]));
		v = colon + 1;
		vl = w.len[0] - (size_t)(v - w.p[0]);
		colon = memchr(v, ':', vl);
		set(r->tls_cipher, v, colon ? (size_t)(colon - v) : vl);
		return;
	}
	set(r->tls_version, w.p[0], w.len[0]);
	if (w.n == 2) /* tern: "TLSv1.3 TLS_AES_256_GCM_SHA384" */
		set(r->tls_cipher, w.p[1], w.len[1]);
}

/* from_comment - "(rdns [ip])", "([ip] helo=x)", "(HELO x)", "(ip)",
 * "(user@ip)", "(may be forged)" after the from word */
static void
from_comment(struct received *r, const char *s, size_t len, struct rctx *x)
{
	struct cwords w;
	const char *v;
	size_t i, vl;

	comment_words(s, len, &w);
	v = keyval(&w, "helo=", &vl);
	if (v == NULL && w.n == 2 && word_is(w.p[0], w.len[0], "HELO")) {
		v = w.p[1];
		vl = w.len[1];
	}
	if (v != NULL && !x->helo_seen) {
		/* then the from word was the reverse name (Exim, qmail) */
		if (r->rdns[0] == '\0' && !x->from_literal)
			snprintf(r->rdns, sizeof(r->rdns), "%s", r->helo);
		set_host(r->helo, v, vl);
		x->helo_seen = 1;
	}
	if (w.n == 2 && word_is(w.p[0], w.len[0], "HELO"))
		return;
	if (len >= 13 && memmem(s, len, "may be forged", 13))
		r->forged = 1;
	for (i = 0; i < w.n; i++) {
		/* an address in the comment is the one the server saw; the
		 * from word's literal was only what the client said */
		if (w.len[i] == 0 || (r->ip[0] != '\0' && !x->from_literal))
			continue;
		if (w.p[i][0] == '[' || memchr(w.p[i], '@', w.len[i]) ||
		    (w.n == 1 && looks_ip(w.p[i], w.len[i]))) {
			if (set_literal(r->ip, w.p[i], w.len[i]) == -1)
				continue;
			x->from_literal = 0;
			/* the name before the address is the reverse one */
			if (i > 0 && r->rdns[0] == '\0' &&
			    memchr(w.p[i - 1], '=', w.len[i - 1]) == NULL) {
				const char *at = memchr(w.p[i - 1], '@',
				    w.len[i - 1]);
				const char *n = at ? at + 1 : w.p[i - 1];

				set_host(r->rdns, n, w.len[i - 1] -
				    (size_t)(n - w.p[i - 1]));
			}
		}
	}
}

/* by_comment - "(Postfix)", "(8.17.1/8.17.1)", "(ip)" after the by word */
static void
by_comment(struct received *r, const char *s, size_t len)
{
	if (looks_ip(s, len) || (len > 2 && s[0] == '[' &&
	    set_literal(r->by_ip, s, len) == 0)) {
		if (r->by_ip[0] == '\0')
			set(r->by_ip, s, len);
		return;
	}
	/* TLS details and Exim's "(envelope-from <a>)" name no software */
	if (r->software[0] == '\0' && !is_tls_version(s, len) &&
	    memchr(s, '=', len) == NULL && memchr(s, '<', len) == NULL &&
	    !(len > 6 && strncmp(s, "using ", 6) == 0))
		set(r->software, s, len);
}

/* proto_of - the protocol the with word names (RFC 3848, 8314 keywords;
 * "SMTPS" is Gmail's, "local*" Exim's) */
static enum received_proto
proto_of(const char *p, size_t len, int *tls)
{
	static const struct {
		const char *word;
		enum received_proto proto;
		int tls;
	} words[] = {
		{ "SMTP", RECEIVED_PROTO_SMTP, 0 },
		{ "ESMTP", RECEIVED_PROTO_ESMTP, 0 },
		{ "ESMTPA", RECEIVED_PROTO_ESMTPA, 0 },
		{ "ESMTPS", RECEIVED_PROTO_ESMTPS, 1 },
		{ "ESMTPSA", RECEIVED_PROTO_ESMTPSA, 1 },
		{ "SMTPS", RECEIVED_PROTO_ESMTPS, 1 },
		{ "UTF8SMTP", RECEIVED_PROTO_ESMTP, 0 },
		{ "UTF8SMTPA", RECEIVED_PROTO_ESMTPA, 0 },
		{ "UTF8SMTPS", RECEIVED_PROTO_ESMTPS, 1 },
		{ "UTF8SMTPSA", RECEIVED_PROTO_ESMTPSA, 1 },
		{ "LMTP", RECEIVED_PROTO_LMTP, 0 },
		{ "LMTPA", RECEIVED_PROTO_LMTP, 0 },
		{ "LMTPS", RECEIVED_PROTO_LMTP, 1 },
		{ "LMTPSA", RECEIVED_PROTO_LMTP, 1 },
		{ "UTF8LMTP", RECEIVED_PROTO_LMTP, 0 },
		{ "HTTP", RECEIVED_PROTO_HTTP, 0 },
		{ "HTTPS", RECEIVED_PROTO_HTTP, 1 },
		{ "mapi", RECEIVED_PROTO_LOCAL, 0 },
		{ "local", RECEIVED_PROTO_LOCAL, 0 },
		{ "Microsoft", RECEIVED_PROTO_ESMTP, 0 }, /* "SMTP Server" */
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (word_is(p, len, words[i].word)) {
			*tls |= words[i].tls;
			return words[i].proto;
		}
	}
	if (len > 6 && strncasecmp(p, "local-", 6) == 0)
		return RECEIVED_PROTO_LOCAL;
	return RECEIVED_PROTO_UNKNOWN;
}

/* qmail - "(qmail 1234 invoked by uid 1000)", "(qmail 1234 invoked from
 * network)": qmail-queue's line, the whole line one comment */
static int
qmail(struct received *r, const struct tok *t, size_t nt)
{
	struct cwords w;

	if (nt != 1 || t[0].kind != TOK_COMMENT)
		return -1;
	comment_words(t[0].p, t[0].len, &w);
	if (w.n < 4 || !word_is(w.p[0], w.len[0], "qmail") ||
	    !word_is(w.p[2], w.len[2], "invoked"))
		return -1;
	set(r->software, "qmail", 5);
	set(r->id, w.p[1], w.len[1]);
	set(r->with, t[0].p, t[0].len);
	r->proto = RECEIVED_PROTO_LOCAL;
	return 0;
}

/* add_with_word - the with clause is sometimes several words
 * ("Microsoft SMTP Server"); Exim's "tls CIPHER" is kept apart */
static void
add_with_word(struct received *r, const struct tok *t, size_t *i, size_t nt)
{
	size_t have = strlen(r->with);

	if (word_is(t[*i].p, t[*i].len, "tls") && *i + 1 < nt &&
	    t[*i + 1].kind == TOK_WORD) {
		(*i)++;
		set(r->tls_cipher, t[*i].p, t[*i].len);
		return;
	}
	if (have + 1 + t[*i].len > RECEIVED_PART_MAX)
		return;
	r->with[have] = ' ';
	set(r->with + have + 1, t[*i].p, t[*i].len);
}

/* clause_of - the keyword a word is, or CL_NONE */
static enum clause
clause_of(const struct tok *t)
{
	size_t c;

	if (t->kind != TOK_WORD)
		return CL_NONE;
	for (c = CL_FROM; c <= CL_FOR; c++)
		if (word_is(t->p, t->len, clause_words[c]))
			return (enum clause)c;
	return CL_NONE;
}

/* clause_value - the first word after a keyword */
static int
clause_value(struct received *r, enum clause cl, const struct tok *t,
    struct rctx *x)
{
	const char *p = t->p;
	size_t len = t->len;

	switch (cl) {
	case CL_FROM:
		/* "from [ip]": the HELO argument (Gmail, Postfix) or, when
		 * a comment names the HELO, the client's address (Exim) */
		if (p[0] == '[' && set_literal(r->ip, p, len) == 0)
			x->from_literal = 1;
		set_host(r->helo, p, len);
		break;
	case CL_BY:
		set_host(r->by, p, len);
		break;
	case CL_WITH:
		set(r->with, p, len);
		break;
	case CL_ID:
		set(r->id, p, len);
		break;
	case CL_FOR:
		if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
			p++;
			len -= 2;
		}
		set(r->rcpt, p, len);
		break;
	default:
		return -1;
	}
	return 0;
}

/* clauses - sort the words and comments into clauses */
static int
clauses(struct received *r, const struct tok *t, size_t nt, struct rctx *x)
{
	enum clause cl = CL_NONE, next;
	int have_value = 0, seen = 0;
	size_t i;

	for (i = 0; i < nt; i++) {
		if (t[i].kind == TOK_COMMENT) {
			comment_tls(r, t[i].p, t[i].len);
			if (cl == CL_FROM)
				from_comment(r, t[i].p, t[i].len, x);
			else if (cl == CL_BY || (cl == CL_WITH && have_value))
				by_comment(r, t[i].p, t[i].len);
			continue;
		}
		next = clause_of(&t[i]);
		if (next != CL_NONE && (have_value || cl == CL_NONE) &&
		    !(seen & (1 << next))) {
			cl = next;
			seen |= 1 << next;
			have_value = 0;
			continue;
		}
		if (cl == CL_NONE)
			return -1; /* words before any clause */
		if (!have_value) {
			clause_value(r, cl, &t[i], x);
			have_value = 1;
		} else if (cl == CL_WITH) {
			add_with_word(r, t, &i, nt);
		}
		/* other extra words (Gmail's ids, ident names) are kept out */
	}
	x->saw_from = (seen & (1 << CL_FROM)) != 0;
	if (x->helo_seen && x->from_literal)
		r->rdns[0] = '\0';
	if (!(seen & (1 << CL_BY)) && !x->saw_from)
		return -1;
	if (cl != CL_NONE && !have_value)
		return -1; /* a keyword with nothing after it */
	return 0;
}

/* fix_names - who the from word names depends on the writer: the HELO
 * name (Postfix, Sendmail, OpenSMTPD, Exchange, Gmail, Dovecot, tern),
 * or the reverse name when the HELO is in a comment (Exim, qmail; see
 * from_comment).  Exim leaves the HELO out when it is the verified name,
 * and qmail when it equals the reverse name. */
static void
fix_names(struct received *r, const struct rctx *x)
{
	if (x->helo_seen || x->from_literal || r->rdns[0] != '\0' ||
	    r->proto == RECEIVED_PROTO_LOCAL) /* Exim's "from USER" */
		return;
	if (strncasecmp(r->software, "Exim", 4) == 0)
		snprintf(r->rdns, sizeof(r->rdns), "%s", r->helo);
}

/* proto_fix - the protocol, from the with word and what TLS says */
static void
proto_fix(struct received *r, int saw_from)
{
	size_t wl = strcspn(r->with, " ");

	if (r->with[0] != '\0')
		r->proto = proto_of(r->with, wl, &r->tls);
	else if (!saw_from)
		r->proto = RECEIVED_PROTO_LOCAL; /* pickup, sendmail -bs */
	if (r->tls_version[0] != '\0' || r->tls_cipher[0] != '\0')
		r->tls = 1;
	if (!r->tls)
		return;
	if (r->proto == RECEIVED_PROTO_ESMTP || r->proto == RECEIVED_PROTO_SMTP)
		r->proto = RECEIVED_PROTO_ESMTPS;
	else if (r->proto == RECEIVED_PROTO_ESMTPA)
		r->proto = RECEIVED_PROTO_ESMTPSA;
}

int
received_parse(const char *value, size_t len, struct received *r)
{
	struct tok t[RCV_TOKENS_MAX];
	size_t nt, semi;
	struct rctx x = { 0, 0, 0 };

	memset(r, 0, sizeof(*r));
	r->error = "not a Received: line";
	if (len > RECEIVED_MAX) {
		r->error = "longer than tern reads";
		return -1;
	}
	if (memchr(value, '\0', len) != NULL) {
		r->error = "holds a NUL";
		return -1;
	}
	semi = date_split(value, len);
	if (tokenize(value, semi, t, &nt, &r->error) == -1)
		goto fail;
	if (semi < len && received_date(value + semi + 1, len - semi - 1,
	    &r->time, &r->zone, &r->zone_known) == 0)
		r->has_date = 1;
	if (qmail(r, t, nt) == 0) {
		r->parsed = 1;
		r->error = NULL;
		return 0;
	}
	if (clauses(r, t, nt, &x) == -1)
		goto fail;
	proto_fix(r, x.saw_from);
	fix_names(r, &x);
	r->parsed = 1;
	r->error = NULL;
	return 0;
fail:
	{
		const char *why = r->error;

		memset(r, 0, sizeof(*r));
		r->error = why;
		return -1;
	}
}

const char *
received_proto_name(enum received_proto p)
{
	switch (p) {
	case RECEIVED_PROTO_SMTP:
		return "SMTP";
	case RECEIVED_PROTO_ESMTP:
		return "ESMTP";
	case RECEIVED_PROTO_ESMTPA:
		return "ESMTPA";
	case RECEIVED_PROTO_ESMTPS:
		return "ESMTPS";
	case RECEIVED_PROTO_ESMTPSA:
		return "ESMTPSA";
	case RECEIVED_PROTO_LMTP:
		return "LMTP";
	case RECEIVED_PROTO_HTTP:
		return "HTTP";
	case RECEIVED_PROTO_LOCAL:
		return "local";
	case RECEIVED_PROTO_UNKNOWN:
		break;
	}
	return "unknown";
}

/* ------------------------------------------------------------ dates */

/* struct dscan - a cursor over a date, skipping CFWS between atoms */
struct dscan {
	const char *s;
	size_t len, i;
};

static void
d_cfws(struct dscan *d)
{
	size_t end;

	while (d->i < d->len) {
		if (is_space(d->s[d->i])) {
			d->i++;
		} else if (d->s[d->i] == '(') {
			if ((end = skip_comment(d->s, d->i, d->len)) == 0) {
				d->i = d->len + 1; /* broken: fail later */
				return;
			}
			d->i = end;
		} else {
			return;
		}
	}
}

/* d_num - 1 to maxd digits; -1 when none */
static int
d_num(struct dscan *d, int maxd, int *v, int *nd)
{
	int n = 0, x = 0;

	d_cfws(d);
	while (d->i < d->len && n < maxd && d->s[d->i] >= '0' &&
	    d->s[d->i] <= '9') {
		x = x * 10 + (d->s[d->i++] - '0');
		n++;
	}
	if (n == 0)
		return -1;
	if (d->i < d->len && d->s[d->i] >= '0' && d->s[d->i] <= '9')
		return -1; /* too many digits */
	*v = x;
	if (nd != NULL)
		*nd = n;
	return 0;
}

/* d_alpha - a run of letters */
static size_t
d_alpha(struct dscan *d, const char **p)
{
	size_t start;

	d_cfws(d);
	if (d->i > d->len)
		return 0;
	start = d->i;
	while (d->i < d->len && ((d->s[d->i] >= 'a' && d->s[d->i] <= 'z') ||
	    (d->s[d->i] >= 'A' && d->s[d->i] <= 'Z')))
		d->i++;
	*p = d->s + start;
	return d->i - start;
}

static int
d_char(struct dscan *d, char c)
{
	d_cfws(d);
	if (d->i < d->len && d->s[d->i] == c) {
		d->i++;
		return 0;
	}
	return -1;
}

/* days_from_civil - days since 1970-01-01 (H. Hinnant's algorithm) */
static int64_t
days_from_civil(int64_t y, int m, int dd)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* d_zone - "+hhmm", "-hhmm" or an obsolete zone (RFC 5322 4.3) */
static int
d_zone(struct dscan *d, int *zone, int *known)
{
	static const struct {
		const char *name;
		int minutes;
	} names[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
		{ "CDT", -300 }, { "MST", -420 }, { "MDT", -360 },
		{ "PST", -480 }, { "PDT", -420 },
	};
	const char *p;
	size_t n, i;
	int sign, hhmm = 0, nd, k;

	d_cfws(d);
	if (d->i < d->len && (d->s[d->i] == '+' || d->s[d->i] == '-')) {
		sign = d->s[d->i++] == '-' ? -1 : 1;
		if (d->i < d->len && is_space(d->s[d->i]))
			return -1;
		if (d_num(d, 4, &hhmm, &nd) == -1 || nd != 4 ||
		    hhmm % 100 > 59)
			return -1;
		*zone = sign * ((hhmm / 100) * 60 + hhmm % 100);
		/* "-0000": the time is UTC, the local zone unknown (3.3) */
		*known = !(sign == -1 && hhmm == 0);
		return 0;
	}
	if ((n = d_alpha(d, &p)) == 0)
		return -1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (word_is(p, n, names[i].name)) {
			*zone = names[i].minutes;
			*known = 1;
			return 0;
		}
	}
	k = p[0] | 0x20;
	if (n == 1 && k >= 'a' && k <= 'z' && k != 'j') {
		/* military zones: their sign was given wrongly in RFC 822,
		 * so 4.3 says to read them as "-0000" */
		*zone = 0;
		*known = 0;
		return 0;
	}
	return -1;
}

int
received_date(const char *s, size_t len, int64_t *t, int *zone,
    int *zone_known)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	struct dscan d = { s, len, 0 };
	const char *p;
	size_t n, save;
	int day, mon, year, hh, mm, ss = 0, nd, z, known;

	if (len > RECEIVED_MAX || memchr(s, '\0', len) != NULL)
		return -1;
	/* the day of week is optional, and its comma is forgotten often */
	n = d_alpha(&d, &p);
	if (n != 0 && n != 3)
		return -1;
	if (n == 3)
		(void)d_char(&d, ',');
	if (d_num(&d, 2, &day, NULL) == -1)
		return -1;
	if ((n = d_alpha(&d, &p)) != 3)
		return -1;
	for (mon = 0; mon < 12; mon++)
		if (strncasecmp(p, months[mon], 3) == 0)
			break;
	if (mon == 12)
		return -1;
	if (d_num(&d, 4, &year, &nd) == -1 || nd < 2)
		return -1;
	if (nd == 2) /* RFC 5322 4.3 */
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	if (d_num(&d, 2, &hh, NULL) == -1 || d_char(&d, ':') == -1 ||
	    d_num(&d, 2, &mm, NULL) == -1)
		return -1;
	save = d.i;
	if (d_char(&d, ':') == 0) {
		if (d_num(&d, 2, &ss, NULL) == -1)
			return -1;
	} else {
		d.i = save;
	}
	if (day < 1 || day > mdays[mon] || year < 1900 || hh > 23 ||
	    mm > 59 || ss > 60)
		return -1;
	if (mon == 1 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 ||
	    year % 400 == 0)))
		return -1;
	if (d_zone(&d, &z, &known) == -1)
		return -1;
	d_cfws(&d);
	if (d.i != len)
		return -1; /* anything but comments after the zone */
	*t = days_from_civil(year, mon + 1, day) * 86400 + hh * 3600 +
	    mm * 60 + ss - (int64_t)z * 60;
	*zone = z;
	*zone_known = known;
	return 0;
}

/*
 * trace_path.c - the path of a delivered message, worked out from its
 * header fields alone (pure; tern trace's logic, trace.c its I/O).
 *
 * The one idea: every server prepends its Received: field (RFC 5321 4.4)
 * and adds its other fields above what it received, so the fields read
 * bottom up are the journey: the oldest Received: is hop 1, a field
 * between the Received: of hop n (below) and of hop n+1 (above) was added
 * by the receiver of hop n, a field below the oldest one came with the
 * message (author, MUA, or appended by the submission server: the
 * position cannot tell), and a field above the newest was added at the
 * final delivery (Return-Path:, Delivered-To:, RFC 5321 4.4).
 *
 * The checks (each with one word, docs/tern.8): "unparsed", "no-date",
 * "skew" (a hop stamped before the one before it: the clocks disagree),
 * "slow" (a delay of at least --slow: the previous receiver held the
 * mail), "no-tls" (a hop over the network without encryption),
 * "broken-chain" (a hop's sender is not the previous hop's receiver) and
 * "envelope-differs" (Return-Path: is not the From: address: normal for
 * lists and bounces, so information only).
 */
#include "trace_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

/* longest value kept for display; more is cut (never from a Received:,
 * which received.c bounds itself) */
#define TRACE_VALUE_MAX 65536

void
trace_init(struct trace *t, int64_t slow)
{
	memset(t, 0, sizeof(*t));
	t->slow = slow;
}

void
trace_add_field(struct trace *t, const char *name, const char *value,
    const char *raw)
{
	struct trace_field *f;

	if (t->nfields == t->fields_cap) {
		t->fields_cap = t->fields_cap ? t->fields_cap * 2 : 32;
		t->fields = xreallocarray(t->fields, t->fields_cap,
		    sizeof(*t->fields));
	}
	f = &t->fields[t->nfields++];
	memset(f, 0, sizeof(*f));
	f->name = util_sanitise_dup(name, 256);
	f->value = util_sanitise_dup(value, TRACE_VALUE_MAX);
	f->raw = xstrdup(raw);
}

/* add_check - one finding */
static void
add_check(struct trace *t, const char *word, enum trace_level level,
    size_t hop, const char *fmt, ...) TERN_PRINTF(5, 6);

static void
add_check(struct trace *t, const char *word, enum trace_level level,
    size_t hop, const char *fmt, ...)
{
	struct trace_check *c;
	va_list ap;

	t->checks = xreallocarray(t->checks, t->nchecks + 1,
	    sizeof(*t->checks));
	c = &t->checks[t->nchecks++];
	c->word = word;
	c->level = level;
	c->hop = hop;
	va_start(ap, fmt);
	c->text = xvasprintf(fmt, ap);
	va_end(ap);
}

const char *
trace_hop_sender(const struct trace_hop *h)
{
	if (h->r.rdns[0] != '\0')
		return h->r.rdns;
	if (h->r.helo[0] != '\0')
		return h->r.helo;
	if (h->r.ip[0] != '\0')
		return h->r.ip;
	return "(local)";
}

/* same_host - names compared without case and a final dot */
static int
same_host(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la > 0 && la == lb && strncasecmp(a, b, la) == 0;
}

/* chained - hop h came from the receiver of hop p */
static int
chained(const struct received *p, const struct received *h)
{
	return same_host(p->by, h->helo) || same_host(p->by, h->rdns) ||
	    same_host(p->by, h->ip) || same_host(p->by_ip, h->ip);
}

/* is_loopback - 127.0.0.0/8 and ::1 */
static int
is_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0;
}

/* has_sender - the hop names who handed the message over */
static int
has_sender(const struct received *r)
{
	return r->proto != RECEIVED_PROTO_LOCAL && (r->helo[0] != '\0' ||
	    r->rdns[0] != '\0' || r->ip[0] != '\0');
}

/* networked - a hop that crossed a network: from an address that is not
 * loopback (a hop without one came over a local socket, or cannot say) */
static int
networked(const struct received *r)
{
	return has_sender(r) && r->ip[0] != '\0' && !is_loopback(r->ip);
}

/* dated_before - the newest hop before i that is read and dated: the
 * delay is counted from it, over an unreadable hop */
static const struct trace_hop *
dated_before(const struct trace *t, size_t i)
{
	while (i-- > 0)
		if (t->hops[i].r.parsed && t->hops[i].r.has_date)
			return &t->hops[i];
	return NULL;
}

/* owners - who added each field, and the hops oldest first */
static void
owners(struct trace *t)
{
	size_t i, n = 0, seen = 0;

	for (i = 0; i < t->nfields; i++)
		if (strcasecmp(t->fields[i].name, "Received") == 0)
			n++;
	t->hops = xcalloc(n ? n : 1, sizeof(*t->hops));
	t->nhops = n;
	/* top down: before the first Received: is the delivery; after the
	 * k-th (counted from the top) hop n - k + 1's receiver */
	for (i = 0; i < t->nfields; i++) {
		struct trace_field *f = &t->fields[i];

		if (strcasecmp(f->name, "Received") == 0) {
			struct trace_hop *h = &t->hops[n - 1 - seen];

			seen++;
			h->raw = f->value;
			h->field = i;
			received_parse(f->value, strlen(f->value), &h->r);
		}
		if (seen == 0 && n > 0) {
			f->owner = TRACE_DELIVERY;
		} else if (seen == n) {
			f->owner = TRACE_ORIGIN;
		} else {
			f->owner = TRACE_HOP;
			f->hop = n - seen;
		}
		if (n > 0 && strcasecmp(f->name, "Received") == 0) {
			f->owner = TRACE_HOP;
			f->hop = n - seen + 1;
		}
		if (n == 0 && (strcasecmp(f->name, "Return-Path") == 0 ||
		    strcasecmp(f->name, "Delivered-To") == 0))
			f->owner = TRACE_DELIVERY;
	}
}

/* hop_checks - the checks of hop i (0-based) against the one before */
static void
hop_checks(struct trace *t, size_t i)
{
	struct trace_hop *h = &t->hops[i], *p = i > 0 ? &t->hops[i - 1] : NULL;
	const struct trace_hop *dp = dated_before(t, i);
	char d[64];

	if (!h->r.parsed) {
		add_check(t, "unparsed", TRACE_WARNING, i + 1,
		    "hop %zu: Received: line not understood (%s), shown raw",
		    i + 1, h->r.error);
		return;
	}
	if (!h->r.has_date)
		add_check(t, "no-date", TRACE_WARNING, i + 1,
		    "hop %zu: no readable date", i + 1);
	if (dp != NULL && h->r.has_date) {
		h->has_delay = 1;
		h->delay = h->r.time - dp->r.time;
		trace_fmt_delay(h->delay, d, sizeof(d));
		if (h->delay < 0)
			add_check(t, "skew", TRACE_WARNING, i + 1,
			    "hop %zu is stamped %s before hop %zu: the clocks "
			    "of %s and %s disagree", i + 1, d + 1,
			    (size_t)(dp - t->hops) + 1,
			    dp->r.by[0] ? dp->r.by : "?",
			    h->r.by[0] ? h->r.by : "?");
		else if (h->delay >= t->slow)
			add_check(t, "slow", TRACE_WARNING, i + 1,
			    "hop %zu: %s held the mail for %s", i + 1,
			    dp->r.by[0] ? dp->r.by : "the previous receiver",
			    d);
	}
	if (networked(&h->r) && !h->r.tls)
		add_check(t, "no-tls", TRACE_WARNING, i + 1,
		    "hop %zu: %s to %s without TLS", i + 1,
		    trace_hop_sender(h), h->r.by[0] ? h->r.by : "?");
	if (p != NULL && p->r.parsed && p->r.by[0] != '\0' &&
	    has_sender(&h->r) && !chained(&p->r, &h->r))
		add_check(t, "broken-chain", TRACE_WARNING, i + 1,
		    "hop %zu comes from %s, but hop %zu was received by %s",
		    i + 1, trace_hop_sender(h), i, p->r.by);
}

void
trace_addr_bare(const char *s, char *out, size_t outlen)
{
	const char *lt = strrchr(s, '<'), *gt;
	size_t len;

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL) {
		s = lt + 1;
		len = (size_t)(gt - s);
	} else {
		while (*s == ' ' || *s == '\t')
			s++;
		len = strcspn(s, " \t");
	}
	if (outlen == 0)
		return;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, s, len);
	out[len] = '\0';
}

/* last_value - the value of the first field named name (the newest) */
static const char *
first_value(const struct trace *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nfields; i++)
		if (strcasecmp(t->fields[i].name, name) == 0)
			return t->fields[i].value;
	return NULL;
}

void
trace_analyse(struct trace *t, const char *from_addr)
{
	char rp[512];
	size_t i;

	owners(t);
	for (i = 0; i < t->nhops; i++)
		hop_checks(t, i);
	t->return_path = first_value(t, "Return-Path");
	t->delivered_to = first_value(t, "Delivered-To");
	if (t->return_path == NULL || from_addr == NULL)
		return;
	trace_addr_bare(t->return_path, rp, sizeof(rp));
	if (strcasecmp(rp, from_addr) != 0)
		add_check(t, "envelope-differs", TRACE_INFO, 0,
		    "the envelope sender <%s> is not the From: address <%s> "
		    "(normal for lists, forwarding and bounces)", rp,
		    from_addr);
}

void
trace_free(struct trace *t)
{
	size_t i;

	for (i = 0; i < t->nfields; i++) {
		free(t->fields[i].name);
		free(t->fields[i].value);
		free(t->fields[i].raw);
	}
	for (i = 0; i < t->nchecks; i++)
		free(t->checks[i].text);
	free(t->fields);
	free(t->hops);
	free(t->checks);
	memset(t, 0, sizeof(*t));
}

/* broken - gmtime_r of a shifted time; 0 when out of range */
static int
broken(int64_t t, int zone, struct tm *tm)
{
	time_t s = (time_t)(t + (int64_t)zone * 60);

	return gmtime_r(&s, tm) != NULL;
}

/* fmt_zoned - the time in its zone, as fmt says (six fields, then the
 * zone's sign, hours and minutes) */
static void
fmt_zoned(const char *fmt, int64_t t, int zone, char *out, size_t outlen)
{
	struct tm tm;
	int a = zone < 0 ? -zone : zone;

	if (!broken(t, zone, &tm)) {
		snprintf(out, outlen, "?");
		return;
	}
	snprintf(out, outlen, fmt, tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    zone < 0 ? '-' : '+', a / 60, a % 60);
}

void
trace_fmt_time(int64_t t, int zone, char *out, size_t outlen)
{
	fmt_zoned("%04d-%02d-%02d %02d:%02d:%02d %c%02d%02d", t, zone, out,
	    outlen);
}

void
trace_fmt_iso(int64_t t, int zone, char *out, size_t outlen)
{
	fmt_zoned("%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", t, zone, out,
	    outlen);
}

void
trace_fmt_delay(int64_t secs, char *out, size_t outlen)
{
	const char *sign = secs < 0 ? "-" : "";
	uint64_t s = secs < 0 ? (uint64_t)0 - (uint64_t)secs : (uint64_t)secs;

	if (s < 60)
		snprintf(out, outlen, "%s%us", sign, (unsigned)s);
	else if (s < 3600)
		snprintf(out, outlen, "%s%um %02us", sign, (unsigned)(s / 60),
		    (unsigned)(s % 60));
	else if (s < 86400)
		snprintf(out, outlen, "%s%uh %02um", sign,
		    (unsigned)(s / 3600), (unsigned)(s % 3600 / 60));
	else
		snprintf(out, outlen, "%s%llud %02uh", sign,
		    (unsigned long long)(s / 86400),
		    (unsigned)(s % 86400 / 3600));
}

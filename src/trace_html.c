/*
 * trace_html.c - "tern trace --html FILE": the path of a message as one
 * self-contained page, the picture used to teach SMTP.
 *
 * The hosts stand left to right as boxes joined by arrows (inline SVG),
 * each hop in its own colour, and beside them the message as delivered,
 * every header field shaded in the colour of the hop that added it
 * (trace_path.c says which).  Inline CSS and SVG only: no script, no
 * font, no image, nothing fetched from elsewhere, so the page can be
 * mailed or archived as it is.  Every string from the message is escaped
 * (html_text); none reaches an attribute but through it.
 */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "util.h"

/* hop colours (pastel, so the text on them stays readable), then the
 * origin's and the delivery's */
static const char *const hop_fill[] = { "#cde4ff", "#ffe0b3", "#d4f4c4",
	"#f7d0ef", "#fff2a0", "#c9f0ee", "#ffd0cc", "#e1d7ff" };
#define NFILL (sizeof(hop_fill) / sizeof(hop_fill[0]))
#define ORIGIN_FILL "#e6e6e6"
#define DELIVERY_FILL "#e3d3b8"

/* the drawing: box width and height, gap between boxes (the arrow) */
#define BOX_W 220
#define BOX_H 100
#define GAP 130
#define TOP 40
/* characters of a name that fit in a box */
#define BOX_CHARS 30

static const char *
fill_of(enum trace_owner o, size_t hop)
{
	if (o == TRACE_ORIGIN)
		return ORIGIN_FILL;
	if (o == TRACE_DELIVERY)
		return DELIVERY_FILL;
	return hop_fill[(hop - 1) % NFILL];
}

/* html_text - text with &, <, >, " and ' escaped (GLib's escaper) */
static void
html_text(FILE *fp, const char *s)
{
	char *e;

	if (s == NULL)
		return;
	e = g_markup_escape_text(s, -1);
	fputs(e, fp);
	g_free(e);
}

/* html_short - at most BOX_CHARS bytes of s (whole UTF-8 sequences),
 * "..." when cut */
static void
html_short(FILE *fp, const char *s)
{
	char cut[BOX_CHARS + 1];
	size_t n = util_sanitise(cut, BOX_CHARS, s, strlen(s));

	html_text(fp, cut);
	if (n < strlen(s))
		fputs("...", fp);
}

static void
page_head(FILE *fp, const struct trace_msg *m)
{
	size_t i;

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "\n<title>tern trace: ", fp);
	html_text(fp, m->subject ? m->subject : "(no subject)");
	fputs("</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:1.2em;color:#222}\n"
	    "h1{font-size:1.3em}h2{font-size:1.05em;margin:.8em 0 .3em}\n"
	    ".facts td{border:0;padding:0 .8em 0 0}\n"
	    ".path{overflow-x:auto;border:1px solid #bbb;background:#fcfcfc}\n"
	    ".cols{display:flex;gap:1.5em;align-items:flex-start}\n"
	    ".cols>div{flex:1;min-width:0}\n"
	    "table{border-collapse:collapse;font-size:13px}\n"
	    "td,th{border:1px solid #ccc;padding:.2em .4em;text-align:left;"
	    "vertical-align:top;overflow-wrap:anywhere}\n"
	    "th{white-space:nowrap}\n"
	    "pre.raw{font-size:12px;white-space:pre-wrap;word-break:break-all;"
	    "border:1px solid #bbb;padding:.4em;margin:0}\n"
	    "pre.raw span{display:block}\n"
	    ".legend span{display:inline-block;padding:.1em .5em;"
	    "margin:.2em .3em .2em 0;border:1px solid #999;font-size:13px}\n"
	    ".warning{color:#a33}.info{color:#555}\n"
	    ".unparsed{font-family:monospace;color:#a33}\n"
	    ".origin{background:" ORIGIN_FILL "}\n"
	    ".delivery{background:" DELIVERY_FILL "}\n", fp);
	for (i = 0; i < NFILL; i++)
		fprintf(fp, ".hop%zu{background:%s}\n", i + 1, hop_fill[i]);
	fputs("</style></head>\n<body>\n", fp);
}

/* css_class - the class of an owner: origin, hopN, delivery */
static void
css_class(FILE *fp, enum trace_owner o, size_t hop)
{
	if (o == TRACE_HOP)
		fprintf(fp, "hop%zu", (hop - 1) % NFILL + 1);
	else
		fputs(o == TRACE_ORIGIN ? "origin" : "delivery", fp);
}

/* svg_box - one host: a name, an address, a line of role */
static void
svg_box(FILE *fp, size_t i, const char *fill, const char *name,
    const char *ip, const char *role)
{
	int x = 10 + (int)i * (BOX_W + GAP);

	fputs("<g><title>", fp);
	html_text(fp, name);
	fprintf(fp, "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" "
	    "height=\"%d\" rx=\"8\" fill=\"%s\" stroke=\"#555\"/>\n", x, TOP,
	    BOX_W, BOX_H, fill);
	fprintf(fp, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">", x + 10,
	    TOP + 28);
	html_short(fp, name);
	fprintf(fp, "</text>\n<text x=\"%d\" y=\"%d\">", x + 10, TOP + 52);
	html_short(fp, ip);
	fprintf(fp, "</text>\n<text x=\"%d\" y=\"%d\" fill=\"#444\">", x + 10,
	    TOP + 76);
	html_short(fp, role);
	fputs("</text></g>\n", fp);
}

/* svg_arrow - from box i to box i + 1, with up to three labels */
static void
svg_arrow(FILE *fp, size_t i, const char *fill, const char *l1,
    const char *l2, const char *l3, int alert)
{
	int x0 = 10 + (int)i * (BOX_W + GAP) + BOX_W, x1 = x0 + GAP - 4;
	int y = TOP + BOX_H / 2, xm = x0 + GAP / 2;

	fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" "
	    "rx=\"4\" fill=\"%s\"/>\n", x0 + 6, y - 34, GAP - 12, fill);
	fprintf(fp, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#333\" stroke-width=\"2\" marker-end=\"url(#arrow)\"/>\n",
	    x0 + 2, y, x1, y);
	fprintf(fp, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
	    "font-weight=\"bold\">", xm, y - 20);
	html_text(fp, l1);
	fprintf(fp, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
	    xm, y - 6);
	html_text(fp, l2);
	/* a delay that a check names (slow, skew) stands out */
	fprintf(fp, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\""
	    "%s>", xm, y + 20, alert ? " fill=\"#b00\" font-weight=\"bold\"" :
	    "");
	html_text(fp, l3);
	fputs("</text>\n", fp);
}

/* box_ip - the address of hop k's receiver: written by it, or by the
 * next hop when that one came from it */
static const char *
box_ip(const struct trace *t, size_t k)
{
	if (t->hops[k - 1].r.by_ip[0] != '\0')
		return t->hops[k - 1].r.by_ip;
	if (k < t->nhops)
		return t->hops[k].r.ip;
	return "";
}

static void
page_svg(FILE *fp, const struct trace_msg *m)
{
	const struct trace *t = &m->t;
	int delivered = t->delivered_to != NULL || t->return_path != NULL;
	size_t k, nbox = t->nhops + 1 + (size_t)delivered;
	char l1[64], l2[300], l3[64], role[600];

	/* scaled to the page's width (viewBox), so that the whole path is
	 * in view and in a screenshot; never below 150 pixels a box */
	fprintf(fp, "<div class=\"path\"><svg xmlns=\"http://www.w3.org/2000/"
	    "svg\" viewBox=\"0 0 %zu %d\" width=\"100%%\" style=\"min-width:"
	    "%zupx\" font-family=\"sans-serif\" "
	    "font-size=\"13\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 "
	    "10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" "
	    "orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/>"
	    "</marker></defs>\n", nbox * (BOX_W + GAP) - GAP + 20,
	    TOP + BOX_H + 20, nbox * 150);
	if (t->nhops == 0) {
		svg_box(fp, 0, ORIGIN_FILL, "no Received: field", "",
		    "origin");
	} else {
		const struct trace_hop *h = &t->hops[0];

		svg_box(fp, 0, ORIGIN_FILL, h->r.parsed ?
		    trace_hop_sender(h) : "?", h->r.ip, "origin (client)");
	}
	for (k = 1; k <= t->nhops; k++) {
		const struct trace_hop *h = &t->hops[k - 1];
		const char *fill = fill_of(TRACE_HOP, k);

		snprintf(l1, sizeof(l1), "hop %zu", k);
		if (!h->r.parsed) {
			svg_arrow(fp, k - 1, fill, l1, "unparsed", "", 1);
			svg_box(fp, k, fill, "?", "", "Received: unparsed");
			continue;
		}
		snprintf(l2, sizeof(l2), "%s%s%s", received_proto_name(
		    h->r.proto), h->r.tls_version[0] ? " " : "",
		    h->r.tls_version);
		l3[0] = '\0';
		if (h->has_delay) {
			trace_fmt_delay(h->delay, l3 + 1, sizeof(l3) - 1);
			l3[0] = h->delay >= 0 ? '+' : ' ';
		}
		svg_arrow(fp, k - 1, fill, l1, l2, l3, h->has_delay &&
		    (h->delay < 0 || h->delay >= t->slow));
		snprintf(role, sizeof(role), "%s%s%s", h->r.software[0] ?
		    h->r.software : "receiver", h->r.id[0] ? " id " : "",
		    h->r.id);
		svg_box(fp, k, fill, h->r.by[0] ? h->r.by : "?",
		    box_ip(t, k), role);
	}
	if (delivered) {
		char rp[20];

		/* the arrow's label fits the gap: the address cut short */
		util_sanitise(rp, sizeof(rp) - 1, t->return_path ?
		    t->return_path : "", t->return_path ?
		    strlen(t->return_path) : 0);
		svg_arrow(fp, t->nhops, DELIVERY_FILL, "delivery", rp, "", 0);
		svg_box(fp, t->nhops + 1, DELIVERY_FILL, t->delivered_to ?
		    t->delivered_to : "mailbox", "", "mailbox");
	}
	fputs("</svg></div>\n", fp);
}

static void
page_legend(FILE *fp, const struct trace *t)
{
	size_t k;

	fputs("<p class=\"legend\"><span class=\"origin\">origin: the author "
	    "and the client</span>", fp);
	for (k = 1; k <= t->nhops; k++) {
		fprintf(fp, "<span class=\"hop%zu\">hop %zu: ",
		    (k - 1) % NFILL + 1, k);
		html_text(fp, t->hops[k - 1].r.by[0] ? t->hops[k - 1].r.by :
		    "?");
		fputs("</span>", fp);
	}
	fputs("<span class=\"delivery\">delivery</span></p>\n", fp);
}

/* hop_row - one row of the hop table */
static void
hop_row(FILE *fp, const struct trace_hop *h, size_t k)
{
	const struct received *r = &h->r;
	char when[64], d[64];

	fprintf(fp, "<tr class=\"hop%zu\"><td>%zu</td>", (k - 1) % NFILL + 1,
	    k);
	if (!r->parsed) {
		fputs("<td colspan=\"6\" class=\"unparsed\">unparsed (", fp);
		html_text(fp, r->error);
		fputs("): ", fp);
		html_text(fp, h->raw);
		fputs("</td></tr>\n", fp);
		return;
	}
	fputs("<td>", fp);
	html_text(fp, r->helo);
	if (r->rdns[0] || r->ip[0]) {
		fputs("<br>", fp);
		html_text(fp, r->rdns);
		fputs(" [", fp);
		html_text(fp, r->ip);
		fputs("]", fp);
	}
	fputs("</td><td>", fp);
	html_text(fp, r->by);
	fputs("</td><td>", fp);
	html_text(fp, received_proto_name(r->proto));
	if (r->tls_version[0] || r->tls_cipher[0]) {
		fputs("<br>", fp);
		html_text(fp, r->tls_version);
		fputs(" ", fp);
		html_text(fp, r->tls_cipher);
	} else if (!r->tls) {
		fputs("<br>no TLS", fp);
	}
	fputs("</td><td>", fp);
	html_text(fp, r->id);
	if (r->rcpt[0]) {
		fputs("<br>for &lt;", fp);
		html_text(fp, r->rcpt);
		fputs("&gt;", fp);
	}
	when[0] = d[0] = '\0';
	if (r->has_date)
		trace_fmt_time(r->time, r->zone, when, sizeof(when));
	if (h->has_delay)
		trace_fmt_delay(h->delay, d, sizeof(d));
	fprintf(fp, "</td><td>%s</td><td>%s</td></tr>\n", when, d);
}

static void
page_tables(FILE *fp, const struct trace *t)
{
	size_t k;

	fputs("<h2>Hops, oldest first</h2>\n<table><tr><th>hop</th>"
	    "<th>from</th><th>by</th><th>with</th><th>id</th><th>time</th>"
	    "<th>delay</th></tr>\n", fp);
	for (k = 1; k <= t->nhops; k++)
		hop_row(fp, &t->hops[k - 1], k);
	fputs("</table>\n<h2>Delivery</h2>\n<table class=\"delivery\">"
	    "<tr><td>Return-Path</td><td>", fp);
	html_text(fp, t->return_path ? t->return_path : "-");
	fputs("</td></tr><tr><td>Delivered-To</td><td>", fp);
	html_text(fp, t->delivered_to ? t->delivered_to : "-");
	fputs("</td></tr></table>\n<h2>Checks</h2>\n<ul>\n", fp);
	if (t->nchecks == 0)
		fputs("<li>none</li>\n", fp);
	for (k = 0; k < t->nchecks; k++) {
		fprintf(fp, "<li class=\"%s\"><b>%s</b> ",
		    t->checks[k].level == TRACE_WARNING ? "warning" : "info",
		    t->checks[k].word);
		html_text(fp, t->checks[k].text);
		fputs("</li>\n", fp);
	}
	fputs("</ul>\n", fp);
}

/* page_raw - the message as delivered, each field in its hop's colour */
static void
page_raw(FILE *fp, const struct trace_msg *m)
{
	const struct trace *t = &m->t;
	char label[32];
	size_t i, n;

	fputs("<h2>The message as delivered</h2>\n<pre class=\"raw\">", fp);
	for (i = 0; i < t->nfields; i++) {
		const struct trace_field *f = &t->fields[i];
		char *raw = xstrdup(f->raw);

		n = strlen(raw);
		while (n > 0 && raw[n - 1] == '\n')
			raw[--n] = '\0';
		trace_owner_label(f, label, sizeof(label));
		fputs("<span class=\"", fp);
		css_class(fp, f->owner, f->hop);
		fprintf(fp, "\" title=\"added by %s\">", label);
		html_text(fp, raw);
		fputs("</span>", fp);
		free(raw);
	}
	fputs("\n", fp);
	html_text(fp, m->body);
	if (m->body_len > TRACE_BODY_PREVIEW)
		fprintf(fp, "\n[... %zu more octets]",
		    m->body_len - TRACE_BODY_PREVIEW);
	fputs("</pre>\n", fp);
}

int
trace_html(const struct trace_msg *m, FILE *fp)
{
	char when[64];

	page_head(fp, m);
	fputs("<h1>The path of a message</h1>\n<table class=\"facts\">"
	    "<tr><td>Message-ID</td><td>", fp);
	html_text(fp, m->message_id ? m->message_id : "-");
	fputs("</td></tr><tr><td>From</td><td>", fp);
	html_text(fp, m->from ? m->from : "-");
	fputs("</td></tr><tr><td>Subject</td><td>", fp);
	html_text(fp, m->subject ? m->subject : "-");
	when[0] = '\0';
	if (m->has_date)
		trace_fmt_time(m->date, m->date_zone, when, sizeof(when));
	fprintf(fp, "</td></tr><tr><td>Date</td><td>%s</td></tr>"
	    "</table>\n", when[0] ? when : "-");
	page_svg(fp, m);
	page_legend(fp, &m->t);
	fputs("<div class=\"cols\">\n<div>\n", fp);
	page_tables(fp, &m->t);
	fputs("</div>\n<div>\n", fp);
	page_raw(fp, m);
	fputs("</div>\n</div>\n</body></html>\n", fp);
	return ferror(fp) ? -1 : 0;
}

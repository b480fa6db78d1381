/*
 * trace.c - "tern trace [FILE|-]": read one delivered message and print
 * the path it took, oldest hop first (tern(8), TRACE).
 *
 * The one idea: GMime 3 reads the message (a Maildir file, an .eml, the
 * first message of an mbox, or stdin): it splits and unfolds the header
 * fields, keeps their order and offsets, decodes RFC 2047 words and the
 * Date: field.  The Received: grammar and everything worked out from the
 * fields are tern's own pure modules (received.c, trace_path.c); this
 * file only reads and prints: terminal text (coloured on a terminal),
 * JSON (the schema is in tern(8)) or an HTML page (trace_html.c).
 *
 * Not on any server's path: smtpd, queue and deliverd never call GMime;
 * the binary is only linked with it.  The input is untrusted: every
 * string shown is sanitised (no control characters reach a terminal),
 * escaped for JSON and HTML, and the input is bounded (TRACE_INPUT_MAX).
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "util.h"

enum color_mode { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER };

struct trace_opts {
	int json;
	const char *html;
	enum color_mode color;
	int64_t slow;
	const char *file;
};

static void
trace_usage(FILE *fp)
{
	fprintf(fp, "usage: tern trace [--color=auto|always|never] [--json] "
	    "[--html PAGE]\n                  [--slow DURATION] [FILE|-]\n");
}

/* read_all - the whole input, at most TRACE_INPUT_MAX octets */
static int
read_all(int fd, struct buf *b)
{
	ssize_t n;

	for (;;) {
		buf_reserve(b, 65536);
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len > TRACE_INPUT_MAX) {
			errno = EFBIG;
			return -1;
		}
	}
	return 0;
}

/* clean_text - text from the message for display: invalid UTF-8 made
 * valid (U+FFFD, by GLib), CR dropped, other controls but tab and
 * newline shown as '?' */
static char *
clean_text(const char *p, size_t len)
{
	char *v = g_utf8_make_valid(p, (gssize)len), *out, *o;
	const char *s;

	out = xmalloc(strlen(v) + 1);
	for (s = v, o = out; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\r')
			continue;
		*o++ = (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f ?
		    '?' : (char)c;
	}
	*o = '\0';
	g_free(v);
	return out;
}

/* field_value - the value shown: trace fields unfolded only (their
 * comments are not encoded words), others unfolded and decoded */
static char *
field_value(GMimeHeader *h)
{
	const char *name = g_mime_header_get_name(h);
	const char *raw = g_mime_header_get_raw_value(h);
	const char *v = g_mime_header_get_value(h);
	char *u, *out, *o;

	if (raw != NULL && (g_ascii_strcasecmp(name, "Received") == 0 ||
	    g_ascii_strcasecmp(name, "Return-Path") == 0 ||
	    g_ascii_strcasecmp(name, "Delivered-To") == 0 || v == NULL)) {
		u = g_mime_utils_header_unfold(raw);
		out = xstrdup(g_strstrip(u));
		g_free(u);
	} else {
		out = xstrdup(v != NULL ? v : "");
	}
	/* unfolding keeps the white space of the fold: tabs become spaces
	 * here, so that sanitising leaves the value readable */
	for (o = out; *o != '\0'; o++)
		if (*o == '\t' || *o == '\r' || *o == '\n')
			*o = ' ';
	return out;
}

/* add_fields - the header fields in order, each with its lines as
 * written (from the parser's offsets) */
static void
add_fields(struct trace *t, GMimeObject *obj, const struct buf *in,
    gint64 hend)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	int i, n = g_mime_header_list_get_count(hl);
	gint64 off, next;
	char *raw, *value;

	if (n > TRACE_FIELDS_MAX) {
		fprintf(stderr, "tern: %d header fields; only the first %d "
		    "are traced\n", n, TRACE_FIELDS_MAX);
		n = TRACE_FIELDS_MAX;
	}
	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		off = g_mime_header_get_offset(h);
		next = i + 1 < n ? g_mime_header_get_offset(
		    g_mime_header_list_get_header_at(hl, i + 1)) : hend;
		if (off >= 0 && next > off && (guint64)next <= in->len) {
			raw = clean_text(in->data + off, (size_t)(next - off));
		} else {
			char *tmp = xasprintf("%s:%s\n",
			    g_mime_header_get_name(h),
			    g_mime_header_get_raw_value(h));

			raw = clean_text(tmp, strlen(tmp));
			free(tmp);
		}
		value = field_value(h);
		trace_add_field(t, g_mime_header_get_name(h), value, raw);
		free(value);
		free(raw);
	}
}

/* message_facts - Subject, From, Message-ID, Date and the body's start */
static void
message_facts(struct trace_msg *m, GMimeMessage *msg, const struct buf *in,
    gint64 hend, int mbox)
{
	InternetAddressList *from = g_mime_message_get_from(msg);
	GDateTime *date = g_mime_message_get_date(msg);
	const char *s;
	size_t start, n;

	if ((s = g_mime_message_get_subject(msg)) != NULL)
		m->subject = util_sanitise_dup(s, 998);
	if ((s = g_mime_message_get_message_id(msg)) != NULL)
		m->message_id = util_sanitise_dup(s, 998);
	if (from != NULL && internet_address_list_length(from) > 0) {
		InternetAddress *a = internet_address_list_get_address(from, 0);
		char *str = internet_address_list_to_string(from, NULL, FALSE);

		m->from = util_sanitise_dup(str, 998);
		g_free(str);
		if (INTERNET_ADDRESS_IS_MAILBOX(a))
			m->from_addr = util_sanitise_dup(
			    internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(a)), 998);
	}
	if (date != NULL) {
		m->has_date = 1;
		m->date = g_date_time_to_unix(date);
		m->date_zone = (int)(g_date_time_get_utc_offset(date) /
		    G_TIME_SPAN_MINUTE);
	}
	start = hend > 0 && (guint64)hend <= in->len ? (size_t)hend : in->len;
	/* the empty line between header and body */
	if (start < in->len && in->data[start] == '\r')
		start++;
	if (start < in->len && in->data[start] == '\n')
		start++;
	m->body_len = in->len - start;
	/* in an mbox the message ends where the next one's From_ line
	 * starts (a body line "From " is quoted ">From ") */
	if (mbox && start < in->len) {
		const char *next = memmem(in->data + start, in->len - start,
		    "\nFrom ", 6);

		if (next != NULL)
			m->body_len = (size_t)(next - (in->data + start)) + 1;
	}
	n = m->body_len < TRACE_BODY_PREVIEW ? m->body_len :
	    TRACE_BODY_PREVIEW;
	m->body = clean_text(in->data + start, n);
}

/* read_message - parse in into m; -1 when it holds no message */
static int
read_message(struct trace_msg *m, const struct buf *in, int64_t slow)
{
	GMimeStream *st;
	GMimeParser *p;
	GMimeMessage *msg;
	gint64 hend;
	int rc = -1, mbox = in->len > 5 && memcmp(in->data, "From ", 5) == 0;

	st = g_mime_stream_mem_new_with_buffer(in->data, in->len);
	p = g_mime_parser_new_with_stream(st);
	g_object_unref(st);
	if (mbox)
		g_mime_parser_set_format(p, GMIME_FORMAT_MBOX);
	msg = g_mime_parser_construct_message(p, NULL);
	if (msg != NULL) {
		hend = g_mime_parser_get_headers_end(p);
		trace_init(&m->t, slow);
		add_fields(&m->t, GMIME_OBJECT(msg), in, hend);
		if (m->t.nfields > 0) {
			message_facts(m, msg, in, hend, mbox);
			trace_analyse(&m->t, m->from_addr);
			rc = 0;
		}
		g_object_unref(msg);
	}
	g_object_unref(p);
	return rc;
}

static void
msg_free(struct trace_msg *m)
{
	trace_free(&m->t);
	free(m->subject);
	free(m->from);
	free(m->from_addr);
	free(m->message_id);
	free(m->body);
}

void
trace_owner_label(const struct trace_field *f, char *out, size_t len)
{
	if (f->owner == TRACE_HOP)
		snprintf(out, len, "hop %zu", f->hop);
	else
		snprintf(out, len, "%s", f->owner == TRACE_ORIGIN ? "origin" :
		    "delivery");
}

/* ------------------------------------------------------------ text */

/* struct out - where the text goes and whether it is coloured */
struct out {
	FILE *fp;
	int color;
};

/* hop colours on a terminal: cyan, yellow, magenta, green, blue, red */
static const char *const hop_sgr[] = { "36", "33", "35", "32", "34", "31" };

static const char *
owner_sgr(enum trace_owner o, size_t hop)
{
	if (o == TRACE_ORIGIN)
		return "2";
	if (o == TRACE_DELIVERY)
		return "1";
	return hop_sgr[(hop - 1) % (sizeof(hop_sgr) / sizeof(hop_sgr[0]))];
}

static void
sgr(const struct out *o, const char *code)
{
	if (o->color)
		fprintf(o->fp, "\033[%sm", code);
}

/* text_hop - one hop's lines */
static void
text_hop(const struct out *o, const struct trace_hop *h, size_t n)
{
	const struct received *r = &h->r;
	char when[64], d[64];

	sgr(o, owner_sgr(TRACE_HOP, n));
	fprintf(o->fp, "hop %zu", n);
	sgr(o, "0");
	if (!r->parsed) {
		fprintf(o->fp, "  UNPARSED (%s)\n    raw   %s\n\n", r->error,
		    h->raw);
		return;
	}
	if (r->has_date) {
		trace_fmt_time(r->time, r->zone, when, sizeof(when));
		fprintf(o->fp, "  %s", when);
	}
	if (h->has_delay) {
		trace_fmt_delay(h->delay, d, sizeof(d));
		fprintf(o->fp, "  %s%s", h->delay >= 0 ? "+" : "", d);
		if (h->delay < 0)
			fprintf(o->fp, " (clock skew)");
	}
	fprintf(o->fp, "\n    from  %s", r->helo[0] ? r->helo : "-");
	if (r->rdns[0] && r->ip[0])
		fprintf(o->fp, " (%s [%s])", r->rdns, r->ip);
	else if (r->rdns[0] || r->ip[0])
		fprintf(o->fp, r->ip[0] ? " ([%s])" : " (%s)",
		    r->ip[0] ? r->ip : r->rdns);
	fprintf(o->fp, "%s\n    by    %s", r->forged ? " may be forged" : "",
	    r->by[0] ? r->by : "-");
	if (r->by_ip[0])
		fprintf(o->fp, " [%s]", r->by_ip);
	if (r->software[0])
		fprintf(o->fp, " (%s)", r->software);
	fprintf(o->fp, "\n    with  %s", received_proto_name(r->proto));
	if (r->tls_version[0] || r->tls_cipher[0])
		fprintf(o->fp, ", %s %s", r->tls_version, r->tls_cipher);
	else
		fprintf(o->fp, ", %s", r->tls ? "encrypted" : "no TLS");
	if (r->id[0])
		fprintf(o->fp, "\n    id    %s", r->id);
	if (r->rcpt[0])
		fprintf(o->fp, "\n    for   <%s>", r->rcpt);
	fprintf(o->fp, "\n\n");
}

/* text_out - the whole report as text */
static void
text_out(const struct out *o, const struct trace_msg *m)
{
	const struct trace *t = &m->t;
	char when[64], label[32], v[124];
	size_t i;

	if (m->message_id)
		fprintf(o->fp, "Message <%s>\n", m->message_id);
	else
		fprintf(o->fp, "Message without a Message-ID\n");
	if (m->from)
		fprintf(o->fp, "  From:    %s\n", m->from);
	if (m->subject)
		fprintf(o->fp, "  Subject: %s\n", m->subject);
	if (m->has_date) {
		trace_fmt_time(m->date, m->date_zone, when, sizeof(when));
		fprintf(o->fp, "  Date:    %s\n", when);
	}
	fprintf(o->fp, "\nPath: %zu hop%s, oldest first\n\n", t->nhops,
	    t->nhops == 1 ? "" : "s");
	for (i = 0; i < t->nhops; i++)
		text_hop(o, &t->hops[i], i + 1);
	sgr(o, owner_sgr(TRACE_DELIVERY, 0));
	fprintf(o->fp, "delivery");
	sgr(o, "0");
	fprintf(o->fp, "\n    Return-Path   %s\n    Delivered-To  %s\n\n",
	    t->return_path ? t->return_path : "-",
	    t->delivered_to ? t->delivered_to : "-");
	fprintf(o->fp, "Header fields, top down, and who added them\n");
	for (i = 0; i < t->nfields; i++) {
		const struct trace_field *f = &t->fields[i];

		trace_owner_label(f, label, sizeof(label));
		util_sanitise(v, 100, f->value, strlen(f->value));
		sgr(o, owner_sgr(f->owner, f->hop));
		fprintf(o->fp, "  %-9s %s: %s%s\n", label, f->name, v,
		    strlen(f->value) > strlen(v) ? " ..." : "");
		sgr(o, "0");
	}
	fprintf(o->fp, "\nChecks\n");
	if (t->nchecks == 0)
		fprintf(o->fp, "  none\n");
	for (i = 0; i < t->nchecks; i++) {
		sgr(o, t->checks[i].level == TRACE_WARNING ? "1;33" : "2");
		fprintf(o->fp, "  %-16s", t->checks[i].word);
		sgr(o, "0");
		fprintf(o->fp, " %s\n", t->checks[i].text);
	}
}

/* ------------------------------------------------------------ JSON */

/*
 * json_str - a JSON string (RFC 8259 7).  Hand-written: tern writes JSON
 * here only, and these few lines (every string is valid UTF-8 already,
 * clean_text and util_sanitise saw to it) cost less than a library.
 */
static void
json_str(FILE *fp, const char *s)
{
	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c == '\t')
			fputs("\\t", fp);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

/* json_opt - a string, or null when empty */
static void
json_opt(FILE *fp, const char *s)
{
	json_str(fp, s != NULL && s[0] != '\0' ? s : NULL);
}

/* json_kv - PRE "KEY": value (null when absent or empty) */
static void
json_kv(FILE *fp, const char *pre, const char *key, const char *v)
{
	fprintf(fp, "%s\"%s\": ", pre, key);
	json_opt(fp, v);
}

static const char *
json_bool(int b)
{
	return b ? "true" : "false";
}

static void
json_hop(FILE *fp, const struct trace_hop *h, size_t n)
{
	const struct received *r = &h->r;
	char iso[64];

	fprintf(fp, "    {\"hop\": %zu, \"parsed\": %s", n,
	    json_bool(r->parsed));
	json_kv(fp, ", ", "error", r->parsed ? NULL : r->error);
	json_kv(fp, ", ", "raw", h->raw);
	json_kv(fp, ",\n     \"from\": {", "helo", r->helo);
	json_kv(fp, ", ", "rdns", r->rdns);
	json_kv(fp, ", ", "ip", r->ip);
	fprintf(fp, ", \"may_be_forged\": %s}", json_bool(r->forged));
	json_kv(fp, ",\n     \"by\": {", "host", r->by);
	json_kv(fp, ", ", "ip", r->by_ip);
	json_kv(fp, ", ", "software", r->software);
	json_kv(fp, "},\n     ", "with", r->with);
	json_kv(fp, ", ", "protocol", r->parsed ?
	    received_proto_name(r->proto) : NULL);
	fprintf(fp, ", \"tls\": %s", json_bool(r->tls));
	json_kv(fp, ", ", "tls_version", r->tls_version);
	json_kv(fp, ", ", "tls_cipher", r->tls_cipher);
	json_kv(fp, ",\n     ", "id", r->id);
	json_kv(fp, ", ", "for", r->rcpt);
	if (r->has_date)
		trace_fmt_iso(r->time, r->zone, iso, sizeof(iso));
	json_kv(fp, ", ", "time", r->has_date ? iso : NULL);
	if (r->has_date)
		fprintf(fp, ", \"epoch\": %lld", (long long)r->time);
	else
		fputs(", \"epoch\": null", fp);
	if (h->has_delay)
		fprintf(fp, ", \"delay\": %lld}", (long long)h->delay);
	else
		fputs(", \"delay\": null}", fp);
}

static void
json_out(FILE *fp, const struct trace_msg *m)
{
	const struct trace *t = &m->t;
	static const char *const owners[] = { "origin", "hop", "delivery" };
	char iso[64];
	size_t i;

	fputs("{\"schema\": \"tern-trace/1\",", fp);
	json_kv(fp, "\n \"message\": {", "message_id", m->message_id);
	json_kv(fp, ", ", "from", m->from);
	json_kv(fp, ", ", "subject", m->subject);
	if (m->has_date)
		trace_fmt_iso(m->date, m->date_zone, iso, sizeof(iso));
	json_kv(fp, ", ", "date", m->has_date ? iso : NULL);
	fputs("},\n \"hops\": [\n", fp);
	for (i = 0; i < t->nhops; i++) {
		json_hop(fp, &t->hops[i], i + 1);
		fputs(i + 1 < t->nhops ? ",\n" : "\n", fp);
	}
	json_kv(fp, " ],\n \"delivery\": {", "return_path", t->return_path);
	json_kv(fp, ", ", "delivered_to", t->delivered_to);
	fputs("},\n \"headers\": [\n", fp);
	for (i = 0; i < t->nfields; i++) {
		const struct trace_field *f = &t->fields[i];

		fputs("    {\"name\": ", fp);
		json_str(fp, f->name);
		fputs(", \"value\": ", fp);
		json_str(fp, f->value);
		fprintf(fp, ", \"added_by\": \"%s\", \"hop\": %zu}%s\n",
		    owners[f->owner], f->hop, i + 1 < t->nfields ? "," : "");
	}
	fputs(" ],\n \"checks\": [\n", fp);
	for (i = 0; i < t->nchecks; i++) {
		const struct trace_check *c = &t->checks[i];

		fprintf(fp, "    {\"check\": \"%s\", \"level\": \"%s\", "
		    "\"hop\": %zu, \"text\": ", c->word,
		    c->level == TRACE_WARNING ? "warning" : "info", c->hop);
		json_str(fp, c->text);
		fprintf(fp, "}%s\n", i + 1 < t->nchecks ? "," : "");
	}
	fputs(" ]\n}\n", fp);
}

/* ------------------------------------------------------------ verb */

static int
parse_opts(int argc, char **argv, struct trace_opts *o)
{
	static const struct option longs[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "html", required_argument, NULL, 'H' },
		{ "color", required_argument, NULL, 'C' },
		{ "slow", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t ms;
	int ch;

	memset(o, 0, sizeof(*o));
	o->slow = TRACE_SLOW_DEFAULT;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
		switch (ch) {
		case 'c':
			break; /* every verb takes -c; trace reads no config */
		case 'j':
			o->json = 1;
			break;
		case 'H':
			o->html = optarg;
			break;
		case 'C':
			if (strcmp(optarg, "auto") == 0)
				o->color = COLOR_AUTO;
			else if (strcmp(optarg, "always") == 0)
				o->color = COLOR_ALWAYS;
			else if (strcmp(optarg, "never") == 0)
				o->color = COLOR_NEVER;
			else
				return -1;
			break;
		case 's':
			if (util_parse_duration(optarg, &ms) == -1 || ms < 1000)
				return -1;
			o->slow = ms / 1000;
			break;
		case 'h':
			trace_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (argc - optind > 1)
		return -1;
	o->file = optind < argc ? argv[optind] : "-";
	return 0;
}

/* write_html - the page into path, whole or not at all */
static int
write_html(const struct trace_msg *m, const char *path)
{
	char *tmp = xasprintf("%s.tmp%ld", path, (long)getpid());
	FILE *fp = fopen(tmp, "w");
	int rc = -1;

	if (fp != NULL) {
		rc = trace_html(m, fp);
		if (fclose(fp) != 0)
			rc = -1;
		if (rc == 0 && rename(tmp, path) == -1)
			rc = -1;
		if (rc == -1)
			unlink(tmp);
	}
	if (rc == -1)
		fprintf(stderr, "tern: cannot write %s: %s\n", path,
		    strerror(errno));
	free(tmp);
	return rc;
}

int
trace_main(int argc, char **argv)
{
	struct trace_opts o;
	struct trace_msg m;
	struct buf in;
	struct out out;
	int fd, rc = 0;

	if (parse_opts(argc, argv, &o) == -1) {
		trace_usage(stderr);
		return 2;
	}
	fd = strcmp(o.file, "-") == 0 ? STDIN_FILENO :
	    open(o.file, O_RDONLY | O_CLOEXEC);
	buf_init(&in);
	if (fd == -1 || read_all(fd, &in) == -1) {
		fprintf(stderr, "tern: cannot read %s: %s\n", o.file,
		    strerror(errno));
		buf_free(&in);
		return 1;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	memset(&m, 0, sizeof(m));
	g_mime_init();
	if (read_message(&m, &in, o.slow) == -1) {
		fprintf(stderr, "tern: %s holds no message header\n", o.file);
		rc = 1;
		goto done;
	}
	if (o.html != NULL && write_html(&m, o.html) == -1)
		rc = 1;
	out.fp = stdout;
	out.color = o.color == COLOR_ALWAYS ||
	    (o.color == COLOR_AUTO && isatty(STDOUT_FILENO));
	if (o.json)
		json_out(stdout, &m);
	else
		text_out(&out, &m);
	if (fflush(stdout) == EOF || ferror(stdout))
		rc = 1;
	msg_free(&m);
done:
	g_mime_shutdown();
	buf_free(&in);
	return rc;
}

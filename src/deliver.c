/*
 * deliver.c - the table of local delivery agents, and what they share:
 * the message as a mail reader or an MDA expects it.
 *
 * The one idea: the spool keeps a message as SMTP carried it (CRLF), and
 * every local agent hands it on as Unix text: Return-Path: and
 * Delivered-To: first (RFC 5321 4.4, the final delivery's marks), then
 * every CRLF as LF, bare CR and bare LF kept.  An mbox also needs lines
 * that look like a message separator quoted; tern writes mboxrd (a '>'
 * before every line matching ">*From "), which a reader can undo exactly,
 * where the older mboxo quoting of "From " alone cannot be undone.  The
 * content is streamed through a bounded buffer: messages can be tens of
 * megabytes, and a quoted prefix split between two reads is held back
 * until the next read shows how it ends.
 */
#include "deliver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* bytes read from the content at a time */
#define DELIVER_COPY_BUF (64 * 1024)
/* longest Return-Path / Delivered-To value written (RFC 5322 2.1.1: 998) */
#define DELIVER_HEADER_VALUE_MAX 900

static const struct deliver_agent agents[] = {
	{ "maildir", deliver_maildir, 1 },
	{ "mbox", deliver_mbox, 1 },
	{ "pipe", deliver_pipe, 0 },
};

/* deliver_agent_find - the agent of a method name, or NULL */
const struct deliver_agent *
deliver_agent_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
		if (strcmp(agents[i].name, name) == 0)
			return &agents[i];
	return NULL;
}

/* deliver_outcome_set - fill out, the reason cut to one sanitised line */
void
deliver_outcome_set(struct deliver_outcome *out, enum deliver_result r,
    const char *status, const char *fmt, ...)
{
	char raw[DELIVER_REASON_MAX + 1];
	va_list ap;

	out->result = r;
	snprintf(out->status, sizeof(out->status), "%s", status ? status : "");
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	util_sanitise(out->reason, DELIVER_REASON_MAX, raw, strlen(raw));
}

/* the state of one message being written */
struct writer {
	int fd;
	unsigned flags;
	int pending_cr;   /* a CR ended the last read: LF may follow */
	int bol;          /* at the beginning of a line */
	struct buf pend;  /* quoting: ">*From" seen so far at a line start */
	size_t ngt;       /* the '>' at the start of pend */
	int last;         /* the last octet written, -1 before any */
	int64_t total;
	int failed;       /* the errno of a failed write, else 0 */
	char *obuf;       /* output collected before a write */
	size_t olen;
};

/* w_flush - write the collected output; after a failed write, output is
 * dropped (olen must still go back to 0: w_put waits for room in obuf) */
static void
w_flush(struct writer *w)
{
	if (w->olen == 0)
		return;
	if (w->failed) {
		w->olen = 0;
		return;
	}
	if (util_write_all(w->fd, w->obuf, w->olen) == -1)
		w->failed = errno ? errno : EIO;
	w->total += (int64_t)w->olen;
	w->last = (unsigned char)w->obuf[w->olen - 1];
	w->olen = 0;
}

static void
w_put(struct writer *w, const char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		if (w->olen == DELIVER_COPY_BUF)
			w_flush(w);
		k = DELIVER_COPY_BUF - w->olen;
		if (k > n)
			k = n;
		memcpy(w->obuf + w->olen, p, k);
		w->olen += k;
		p += k;
		n -= k;
	}
}

/* quote_flush - the held prefix turned out not to be a separator (or the
 * content ended): write it as it is */
static void
quote_flush(struct writer *w)
{
	w_put(w, w->pend.data, w->pend.len);
	buf_reset(&w->pend);
	w->ngt = 0;
}

/*
 * quote_byte - one octet at the start of a line while quoting: 1 when it
 * was taken into the held prefix (or completed a separator), 0 when the
 * line is not one to quote and the octet must be written as usual.
 */
static int
quote_byte(struct writer *w, char c)
{
	static const char from[] = "From ";
	size_t k = w->pend.len - w->ngt; /* octets of "From " matched */

	if (k == 0 && c == '>') {
		buf_putc(&w->pend, c);
		w->ngt++;
		return 1;
	}
	if (c == from[k]) {
		buf_putc(&w->pend, c);
		if (k + 1 < sizeof(from) - 1)
			return 1;
		w_put(w, ">", 1);
		quote_flush(w);
		w->bol = 0;
		return 1;
	}
	quote_flush(w);
	return 0;
}

/* w_text - LF-ended text: quoted where asked, else as it is */
static void
w_text(struct writer *w, const char *p, size_t n)
{
	const char *end = p + n, *nl;

	if (!(w->flags & DELIVER_WRITE_FROM_QUOTE)) {
		w_put(w, p, n);
		return;
	}
	while (p < end) {
		if (w->bol) {
			if (quote_byte(w, *p)) {
				p++;
				continue;
			}
			w->bol = 0;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			w_put(w, p, (size_t)(end - p));
			return;
		}
		w_put(w, p, (size_t)(nl + 1 - p));
		p = nl + 1;
		w->bol = 1;
	}
}

/* w_content - n octets of content: CRLF as LF, a CR at the end of a read
 * held until the next read shows whether LF follows */
static void
w_content(struct writer *w, const char *in, size_t n)
{
	const char *end = in + n, *cr;

	if (w->pending_cr) {
		w->pending_cr = 0;
		if (n > 0 && in[0] == '\n') {
			w_text(w, "\n", 1);
			in++;
		} else {
			w_text(w, "\r", 1);
		}
	}
	while (in < end) {
		cr = memchr(in, '\r', (size_t)(end - in));
		if (cr == NULL)
			cr = end;
		w_text(w, in, (size_t)(cr - in));
		in = cr;
		if (in == end)
			break;
		if (in + 1 == end) {
			w->pending_cr = 1;
			break;
		}
		if (in[1] == '\n') {
			w_text(w, "\n", 1);
			in += 2;
			continue;
		}
		w_text(w, "\r", 1);
		in++;
	}
}

/* w_headers - Return-Path: and Delivered-To:, values sanitised even
 * though they came through the SMTP parser */
static void
w_headers(struct writer *w, const struct deliver_req *req)
{
	char *rp, *dt;
	struct buf b;

	rp = util_sanitise_dup(req->return_path ? req->return_path : "",
	    DELIVER_HEADER_VALUE_MAX);
	dt = util_sanitise_dup(req->delivered_to ? req->delivered_to : "",
	    DELIVER_HEADER_VALUE_MAX);
	buf_init(&b);
	buf_printf(&b, "Return-Path: <%s>\nDelivered-To: %s\n", rp, dt);
	w_put(w, b.data, b.len);
	buf_free(&b);
	free(rp);
	free(dt);
}

/* deliver_write_message - the message as a mail reader expects it */
int64_t
deliver_write_message(int out, const struct deliver_req *req, unsigned flags,
    const char *what, char *err, size_t errlen)
{
	struct writer w = { .fd = out, .flags = flags, .bol = 1, .last = -1 };
	char *ibuf = xmalloc(DELIVER_COPY_BUF);
	off_t off = 0;
	ssize_t n;
	int64_t r = -1;
	int saved = 0;

	w.obuf = xmalloc(DELIVER_COPY_BUF);
	buf_init(&w.pend);
	w_headers(&w, req);
	for (;;) {
		n = pread(req->content_fd, ibuf, DELIVER_COPY_BUF, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			snprintf(err, errlen, "cannot read the queued message "
			    "%s: %s", req->qid, strerror(saved));
			goto out;
		}
		if (n == 0)
			break;
		off += n;
		w_content(&w, ibuf, (size_t)n);
		if (w.failed)
			break;
	}
	w_content(&w, "", 0); /* a CR held at the very end */
	quote_flush(&w);
	w_flush(&w);
	if (!w.failed && (flags & DELIVER_WRITE_END_LF) && w.last != '\n' &&
	    w.last != -1) {
		w_put(&w, "\n", 1);
		w_flush(&w);
	}
	if (w.failed) {
		saved = w.failed;
		snprintf(err, errlen, "cannot write %s: %s", what,
		    strerror(saved));
		goto out;
	}
	r = w.total;
out:
	buf_free(&w.pend);
	free(w.obuf);
	free(ibuf);
	if (r == -1)
		errno = saved; /* the caller tells a full disk from others */
	return r;
}

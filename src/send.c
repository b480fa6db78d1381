/*
 * send.c - "tern send": compose a message from the command line and hand
 * it over.
 *
 *   tern send -s SUBJECT [-a FILE]... [--from ADDR] TO...   (body on stdin)
 *
 * The one idea: tern builds nothing MIME by hand here.  GMime 3 composes
 * the message (RFC 2045-2049): a text/plain body, quoted-printable or
 * base64 when it is not 7-bit clean; with attachments a multipart/mixed
 * whose parts are base64, their types read from their content by libmagic;
 * a UTF-8 subject encoded per RFC 2047 and UTF-8 file names per RFC 2231.
 * The server processes never link any of this in use: only this verb
 * calls it.
 *
 * Then the message goes one of two ways:
 *  - without --server, to the local drop: this binary executed again as
 *    `tern sendmail -i [-f FROM] -- TO...` with the message on its
 *    standard input, so that local mail takes the one path whose identity
 *    checks are the drop's (the real uid recorded), and its exit status is
 *    ours;
 *  - with --server HOST:PORT, over SMTP submission (RFC 6409) with
 *    STARTTLS (RFC 3207) or implicit TLS (RFC 8314), AUTH PLAIN (RFC 4954,
 *    4616), the certificate checked against the system's authorities or
 *    --ca FILE and the host name, unless --insecure.  The client is
 *    libcurl's (OpenSSL flavour): a one-shot synchronous submission is all
 *    it must do, and libcurl does it with reply parsing, dot-stuffing and
 *    certificate checks that many programs already exercise.  tern's own
 *    outbound client (mta_session.c) is an event-driven state machine
 *    inside the queue process, with no way to run alone.
 *
 * Exit statuses are sysexits(3): 64 usage, 66 an input cannot be read,
 * 69 refused for good (5xx, a certificate that does not verify), 75 worth
 * trying again (no connection, 4xx, a timeout), 77 login refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gmime/gmime.h>
#include <magic.h>
#include <openssl/crypto.h>

#include "send.h"
#include "util.h"

enum send_tls { SEND_TLS_STARTTLS, SEND_TLS_IMPLICIT };

struct send_opts {
	const char *subject;
	const char **attach;
	size_t nattach;
	const char *from;
	const char *server;
	const char *user;
	const char *password_file;
	enum send_tls tls;
	const char *ca;
	int insecure;
	int verbose;
	int print;           /* --print: write the message to stdout */
	const char *conf_file;
	char **to;
	size_t nto;
};

/* what was composed: the message and its envelope */
struct send_msg {
	struct buf data;     /* the message, LF or CRLF line ends */
	char *sender;        /* envelope sender address, or NULL */
	char **rcpts;        /* envelope recipient addresses */
	size_t nrcpts;
};

static void
send_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: tern send -s SUBJECT [-a FILE]... [--from ADDR] "
	    "[-c FILE] TO...\n"
	    "       tern send ... --server HOST:PORT [--user USER "
	    "[--password-file FILE]]\n"
	    "                 [--tls=starttls|implicit] [--ca FILE] "
	    "[--insecure] [-v] TO...\n"
	    "       tern send ... --print TO...   (write the message to "
	    "standard output)\n"
	    "The body is read from standard input.  Without --server the "
	    "message goes\nto the local drop (tern sendmail).  See tern(8).\n");
}

/* has_control - 1 when s holds a control character (a header or an SMTP
 * command built from it would break) */
static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* read_fd - all of fd into b, at most SEND_INPUT_MAX; -1 with errno
 * (EFBIG when longer) */
static int
read_fd(int fd, struct buf *b)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 0;
		if (b->len + (size_t)n > SEND_INPUT_MAX) {
			errno = EFBIG;
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
}

/* read_file - a regular file's contents into b; -1 with a message */
static int
read_file(const char *path, struct buf *b)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "tern send: cannot read %s: %s\n", path,
		    fd == -1 ? strerror(errno) : "not a regular file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	rc = read_fd(fd, b);
	if (rc == -1)
		fprintf(stderr, "tern send: cannot read %s: %s\n", path,
		    errno == EFBIG ? "larger than 64 MiB" : strerror(errno));
	close(fd);
	return rc;
}

/* one_mailbox - the single address in text ("Name <a@b>" or "a@b"), or
 * NULL with a message; the address is added to list when list is set */
static char *
one_mailbox(const char *text, InternetAddressList *list)
{
	InternetAddressList *l = NULL;
	InternetAddress *a;
	const char *addr;
	char *out = NULL;

	if (!has_control(text))
		l = internet_address_list_parse(NULL, text);
	if (l == NULL || internet_address_list_length(l) != 1 ||
	    !INTERNET_ADDRESS_IS_MAILBOX(a =
	    internet_address_list_get_address(l, 0))) {
		fprintf(stderr, "tern send: not one mail address: \"%s\"\n",
		    text);
		goto done;
	}
	addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
	if (addr == NULL || strchr(addr, '@') == NULL || has_control(addr) ||
	    strpbrk(addr, " <>") != NULL) {
		fprintf(stderr, "tern send: not a mail address: \"%s\"\n",
		    text);
		goto done;
	}
	out = xstrdup(addr);
	/* a display name in UTF-8 (RFC 2047), never a legacy charset
	 * GMime would otherwise find smaller */
	internet_address_set_charset(a, "utf-8");
	if (list != NULL)
		internet_address_list_add(list, a);
done:
	if (l != NULL)
		g_object_unref(l);
	return out;
}

/* text_part - the body as text/plain: us-ascii, utf-8, or unknown-8bit
 * (RFC 1428) when it is not UTF-8; quoted-printable or base64 when it is
 * not 7-bit clean, as GMime judges best */
static GMimeObject *
text_part(const struct buf *body)
{
	GMimePart *p = GMIME_PART(g_mime_text_part_new_with_subtype("plain"));
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(body->data,
	    body->len);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	const char *cs = !util_has_8bit(body->data, body->len) ? "us-ascii" :
	    util_utf8_valid((const unsigned char *)body->data, body->len) ?
	    "utf-8" : "unknown-8bit";

	g_mime_part_set_content(p, w);
	g_object_unref(w);
	g_object_unref(s);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(p), "charset",
	    cs);
	g_mime_part_set_content_encoding(p,
	    g_mime_part_get_best_content_encoding(p,
	    GMIME_ENCODING_CONSTRAINT_7BIT));
	return GMIME_OBJECT(p);
}

/*
 * content_type - the MIME type of data as libmagic reads it from the
 * content ("text/plain; charset=utf-8", "image/png; charset=binary"),
 * split into type, subtype and (for text) charset; application/
 * octet-stream when libmagic cannot tell.
 */
static void
content_type(magic_t mg, const struct buf *data, char *type, size_t tlen,
    char *sub, size_t slen, char *cs, size_t clen)
{
	const char *m = mg != NULL ? magic_buffer(mg, data->data, data->len) :
	    NULL;
	size_t n1, n2;
	const char *p;

	snprintf(type, tlen, "application");
	snprintf(sub, slen, "octet-stream");
	cs[0] = '\0';
	if (m == NULL || has_control(m))
		return;
	n1 = strcspn(m, "/;");
	if (m[n1] != '/' || n1 == 0 || n1 >= tlen)
		return;
	n2 = strcspn(m + n1 + 1, "; ");
	if (n2 == 0 || n2 >= slen)
		return;
	snprintf(type, tlen, "%.*s", (int)n1, m);
	snprintf(sub, slen, "%.*s", (int)n2, m + n1 + 1);
	p = strstr(m, "charset=");
	if (strcmp(type, "text") == 0 && p != NULL &&
	    strcmp(p + 8, "binary") != 0)
		snprintf(cs, clen, "%.*s", (int)strcspn(p + 8, " ;"), p + 8);
}

/* utf8_param - a parameter encoded (RFC 2231) as UTF-8 when it must be
 * encoded, not in the smallest charset GMime would find */
static void
utf8_param(GMimeParamList *l, const char *name)
{
	GMimeParam *p = l != NULL ? g_mime_param_list_get_parameter(l, name) :
	    NULL;

	if (p != NULL)
		g_mime_param_set_charset(p, "utf-8");
}

/* attachment - one file as a base64 part named by its base name; NULL
 * with a message when it cannot be read */
static GMimeObject *
attachment(magic_t mg, const char *path, struct buf *data)
{
	char type[64], sub[128], cs[64];
	const char *name = strrchr(path, '/');
	GMimePart *p;
	GMimeStream *s;
	GMimeDataWrapper *w;

	if (read_file(path, data) == -1)
		return NULL;
	name = name != NULL ? name + 1 : path;
	if (*name == '\0' || has_control(name)) {
		fprintf(stderr, "tern send: no usable file name in %s\n",
		    path);
		return NULL;
	}
	content_type(mg, data, type, sizeof(type), sub, sizeof(sub), cs,
	    sizeof(cs));
	p = g_mime_part_new_with_type(type, sub);
	if (cs[0] != '\0')
		g_mime_object_set_content_type_parameter(GMIME_OBJECT(p),
		    "charset", cs);
	g_mime_object_set_disposition(GMIME_OBJECT(p),
	    GMIME_DISPOSITION_ATTACHMENT);
	g_mime_part_set_filename(p, name);
	utf8_param(g_mime_content_type_get_parameters(
	    g_mime_object_get_content_type(GMIME_OBJECT(p))), "name");
	utf8_param(g_mime_content_disposition_get_parameters(
	    g_mime_object_get_content_disposition(GMIME_OBJECT(p))),
	    "filename");
	s = g_mime_stream_mem_new_with_buffer(data->data, data->len);
	w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, w);
	g_object_unref(w);
	g_object_unref(s);
	/* base64 always: the file comes back byte for byte, line ends too */
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	return GMIME_OBJECT(p);
}

/* add_rcpts - the TO arguments into the To: field and the envelope */
static int
add_rcpts(const struct send_opts *o, GMimeMessage *msg, struct send_msg *out)
{
	InternetAddressList *to = g_mime_message_get_to(msg);
	size_t i;

	out->rcpts = xcalloc(o->nto, sizeof(*out->rcpts));
	for (i = 0; i < o->nto; i++) {
		out->rcpts[i] = one_mailbox(o->to[i], to);
		if (out->rcpts[i] == NULL)
			return -1;
		out->nrcpts++;
	}
	return 0;
}

/* add_from - From: and the envelope sender from --from (or --user when it
 * is an address and goes to a server); none: the local drop adds them */
static int
add_from(const struct send_opts *o, GMimeMessage *msg, struct send_msg *out)
{
	const char *from = o->from;

	if (from == NULL && o->server != NULL && o->user != NULL &&
	    strchr(o->user, '@') != NULL)
		from = o->user;
	if (from == NULL) {
		if (o->server == NULL)
			return 0;
		fprintf(stderr, "tern send: --server needs --from (or a "
		    "--user that is a mail address)\n");
		return -1;
	}
	out->sender = one_mailbox(from, g_mime_message_get_from(msg));
	return out->sender != NULL ? 0 : -1;
}

/* compose - the whole message into out; an exit status */
static int
compose(const struct send_opts *o, struct send_msg *out)
{
	GMimeMessage *msg = g_mime_message_new(TRUE);
	GMimeMultipart *mixed = NULL;
	GMimeObject *part;
	GMimeFormatOptions *fo;
	GMimeStream *st;
	GByteArray *ba;
	GDateTime *now;
	struct buf body, *files = xcalloc(o->nattach + 1, sizeof(*files));
	char host[256], *id;
	magic_t mg = NULL;
	size_t i;
	int rc;

	buf_init(&body);
	rc = EX_USAGE;
	if (add_from(o, msg, out) == -1 || add_rcpts(o, msg, out) == -1)
		goto done;
	g_mime_message_set_subject(msg, o->subject, "utf-8");
	now = g_date_time_new_now_local();
	g_mime_message_set_date(msg, now);
	g_date_time_unref(now);
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	id = g_mime_utils_generate_message_id(host);
	g_mime_message_set_message_id(msg, id);
	g_free(id);

	rc = EX_NOINPUT;
	if (read_fd(STDIN_FILENO, &body) == -1) {
		fprintf(stderr, "tern send: cannot read the body: %s\n",
		    errno == EFBIG ? "larger than 64 MiB" : strerror(errno));
		goto done;
	}
	part = text_part(&body);
	if (o->nattach > 0) {
		mg = magic_open(MAGIC_MIME | MAGIC_ERROR);
		if (mg != NULL && magic_load(mg, NULL) == -1) {
			fprintf(stderr, "tern send: cannot load the file type "
			    "database (%s): attachments go as "
			    "application/octet-stream\n", magic_error(mg));
			magic_close(mg);
			mg = NULL;
		}
		mixed = g_mime_multipart_new_with_subtype("mixed");
		g_mime_multipart_add(mixed, part);
		g_object_unref(part);
		part = GMIME_OBJECT(mixed);
	}
	g_mime_message_set_mime_part(msg, part);
	g_object_unref(part);
	for (i = 0; i < o->nattach; i++) {
		buf_init(&files[i]);
		part = attachment(mg, o->attach[i], &files[i]);
		if (part == NULL)
			goto done;
		g_mime_multipart_add(mixed, part);
		g_object_unref(part);
	}

	/* SMTP wants CRLF (and libcurl dot-stuffs only after CRLF); the
	 * local drop takes a Unix text file, as sendmail(1) does */
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, o->server != NULL ?
	    GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);
	st = g_mime_stream_mem_new();
	g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, st);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(st));
	buf_append(&out->data, ba->data, ba->len);
	g_object_unref(st);
	g_mime_format_options_free(fo);
	rc = EX_OK;
done:
	if (mg != NULL)
		magic_close(mg);
	/* the parts' streams point into these: free them after msg */
	g_object_unref(msg);
	for (i = 0; i < o->nattach; i++)
		buf_free(&files[i]);
	free(files);
	buf_free(&body);
	return rc;
}

/* read_secret - one line from fd (the terminal without echo); -1 when
 * empty or longer than SEND_PASSWORD_MAX */
static int
read_secret(int fd, int tty, char *out, size_t outlen)
{
	struct termios old, quiet;
	size_t len = 0;
	ssize_t n;
	char c;

	if (tty) {
		/* echo off before the prompt: what is typed after it is kept
		 * (TCSAFLUSH drops only what came before) */
		tcgetattr(fd, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
		(void)!write(fd, "Password: ", 10);
	}
	while ((n = read(fd, &c, 1)) == 1 && c != '\n' && len < outlen)
		out[len++] = c;
	if (tty) {
		tcsetattr(fd, TCSAFLUSH, &old);
		(void)!write(fd, "\n", 1);
	}
	if (len > 0 && out[len - 1] == '\r')
		len--;
	if (len == 0 || len >= outlen)
		return -1;
	out[len] = '\0';
	return 0;
}

/* password - from --password-file (its first line), else asked on the
 * terminal: standard input is the body */
static int
password(const struct send_opts *o, char *out, size_t outlen)
{
	int fd, rc;

	if (o->password_file != NULL) {
		fd = open(o->password_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd == -1) {
			fprintf(stderr, "tern send: cannot read %s: %s\n",
			    o->password_file, strerror(errno));
			return -1;
		}
		rc = read_secret(fd, 0, out, outlen);
		close(fd);
		if (rc == -1)
			fprintf(stderr, "tern send: no password in %s (or "
			    "longer than %d)\n", o->password_file,
			    SEND_PASSWORD_MAX);
		return rc;
	}
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		fprintf(stderr, "tern send: no terminal to ask the password "
		    "on: give --password-file\n");
		return -1;
	}
	rc = read_secret(fd, 1, out, outlen);
	close(fd);
	if (rc == -1)
		fprintf(stderr, "tern send: no password\n");
	return rc;
}

/* send_parse_server - see send.h */
int
send_parse_server(const char *s, char *host, size_t hostlen, int *port)
{
	const char *end, *colon, *p;
	size_t n;
	char *e;
	long v;

	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL)
			return -1;
		n = (size_t)(end - s + 1);
		if (strspn(s + 1, "0123456789abcdefABCDEF:.") != n - 2 ||
		    n < 4)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(s, ':');
		n = colon != NULL ? (size_t)(colon - s) : strlen(s);
		for (p = s; p < s + n; p++)
			if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' &&
			    *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
			    *p != '.' && *p != '-' && *p != '_')
				return -1;
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = 0;
	if (colon == NULL)
		return 0;
	errno = 0;
	v = strtol(colon + 1, &e, 10);
	if (colon[1] < '0' || colon[1] > '9' || *e != '\0' || errno != 0 ||
	    v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

struct upload {
	const char *p;
	size_t left;
};

static size_t
upload_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb < u->left ? size * nmemb : u->left;

	memcpy(dst, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

/* curl_status - the exit status for how the submission ended */
static int
curl_status(CURLcode cc, long reply)
{
	switch (cc) {
	case CURLE_OK:
		return EX_OK;
	case CURLE_LOGIN_DENIED:
		return EX_NOPERM;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_USE_SSL_FAILED:
		return EX_UNAVAILABLE;
	default:
		break;
	}
	if (reply >= 500 && reply <= 599)
		return EX_UNAVAILABLE;
	return EX_TEMPFAIL;
}

/* submit - the message to --server; an exit status */
static int
submit(const struct send_opts *o, const struct send_msg *m)
{
	char host[256], helo[256], pw[SEND_PASSWORD_MAX + 2];
	char err[CURL_ERROR_SIZE], *url, *from;
	struct curl_slist *rcpts = NULL;
	struct upload up = { m->data.data, m->data.len };
	CURLcode cc;
	CURL *c;
	long reply = 0;
	int port, rc;
	size_t i;

	if (send_parse_server(o->server, host, sizeof(host), &port) == -1) {
		fprintf(stderr, "tern send: --server wants HOST:PORT or "
		    "[IPv6]:PORT, not \"%s\"\n", o->server);
		return EX_USAGE;
	}
	if (port == 0)
		port = o->tls == SEND_TLS_IMPLICIT ? 465 : 587;
	if (o->user != NULL && password(o, pw, sizeof(pw)) == -1)
		return EX_NOINPUT;
	if (gethostname(helo, sizeof(helo)) == -1 || helo[0] == '\0' ||
	    strpbrk(helo, "/?#%@ ") != NULL)
		snprintf(helo, sizeof(helo), "localhost");
	helo[sizeof(helo) - 1] = '\0';
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (c = curl_easy_init()) == NULL) {
		fprintf(stderr, "tern send: cannot start libcurl\n");
		return EX_SOFTWARE;
	}
	url = xasprintf("%s://%s:%d/%s", o->tls == SEND_TLS_IMPLICIT ?
	    "smtps" : "smtp", host, port, helo);
	from = xasprintf("<%s>", m->sender);
	for (i = 0; i < m->nrcpts; i++) {
		char *r = xasprintf("<%s>", m->rcpts[i]);

		rcpts = curl_slist_append(rcpts, r);
		free(r);
		if (rcpts == NULL)
			fatal("out of memory");
	}
	err[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_VERBOSE, (long)o->verbose);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a server that takes nothing for 5 minutes (RFC 5321 4.5.3.2) */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 300L);
	/* STARTTLS required, never plaintext after a refusal */
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca);
	if (o->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (o->user != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, o->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, pw);
		curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, "AUTH=PLAIN");
	}
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
	    (curl_off_t)m->data.len);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
	rc = curl_status(cc, reply);
	if (rc != EX_OK)
		fprintf(stderr, "tern send: %s:%d: %s%s%s\n", host, port,
		    err[0] != '\0' ? err : curl_easy_strerror(cc),
		    o->insecure || (cc != CURLE_PEER_FAILED_VERIFICATION &&
		    cc != CURLE_SSL_CACERT_BADFILE) ? "" :
		    " (give the authority with --ca FILE, or --insecure)",
		    rc == EX_TEMPFAIL ? " (temporary: try again later)" : "");
	OPENSSL_cleanse(pw, sizeof(pw));
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	free(url);
	free(from);
	return rc;
}

/* drop - the message to the local drop: this binary again as
 * `tern sendmail -i [-f FROM] -- TO...`, the message on its standard
 * input (an anonymous file, so no writer must wait for its reader) */
static int
drop(const struct send_opts *o, const struct send_msg *m)
{
	char **argv = xcalloc(m->nrcpts + 7, sizeof(*argv));
	size_t i, k = 0;
	int fd = memfd_create("tern-send", MFD_CLOEXEC);

	if (fd == -1 || util_write_all(fd, m->data.data, m->data.len) == -1 ||
	    lseek(fd, 0, SEEK_SET) == -1 || dup2(fd, STDIN_FILENO) == -1) {
		fprintf(stderr, "tern send: cannot hold the message: %s\n",
		    strerror(errno));
		return EX_OSERR;
	}
	close(fd);
	if (o->conf_file != NULL && setenv("TERN_CONF", o->conf_file, 1))
		return EX_OSERR;
	argv[k++] = "tern";
	argv[k++] = "sendmail";
	argv[k++] = "-i";
	if (m->sender != NULL) {
		argv[k++] = "-f";
		argv[k++] = m->sender;
	}
	argv[k++] = "--";
	for (i = 0; i < m->nrcpts; i++)
		argv[k++] = m->rcpts[i];
	argv[k] = NULL;
	execv("/proc/self/exe", argv);
	fprintf(stderr, "tern send: cannot run tern sendmail: %s\n",
	    strerror(errno));
	return EX_OSERR;
}

/* parse_args - the options into o; an exit status, or -1 to go on */
static int
parse_args(int argc, char **argv, struct send_opts *o)
{
	enum { OPT_FROM = 256, OPT_SERVER, OPT_USER, OPT_PWFILE, OPT_TLS,
		OPT_CA, OPT_INSECURE, OPT_PRINT, OPT_HELP };
	static const struct option longs[] = {
		{ "subject", required_argument, NULL, 's' },
		{ "attach", required_argument, NULL, 'a' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "user", required_argument, NULL, OPT_USER },
		{ "password-file", required_argument, NULL, OPT_PWFILE },
		{ "tls", required_argument, NULL, OPT_TLS },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "print", no_argument, NULL, OPT_PRINT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	o->attach = xcalloc((size_t)argc, sizeof(*o->attach));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:a:c:v", longs, NULL)) != -1) {
		switch (ch) {
		case 's': o->subject = optarg; break;
		case 'a': o->attach[o->nattach++] = optarg; break;
		case 'c': o->conf_file = optarg; break;
		case 'v': o->verbose = 1; break;
		case OPT_FROM: o->from = optarg; break;
		case OPT_SERVER: o->server = optarg; break;
		case OPT_USER: o->user = optarg; break;
		case OPT_PWFILE: o->password_file = optarg; break;
		case OPT_CA: o->ca = optarg; break;
		case OPT_INSECURE: o->insecure = 1; break;
		case OPT_PRINT: o->print = 1; break;
		case OPT_TLS:
			if (strcmp(optarg, "starttls") == 0)
				o->tls = SEND_TLS_STARTTLS;
			else if (strcmp(optarg, "implicit") == 0)
				o->tls = SEND_TLS_IMPLICIT;
			else {
				fprintf(stderr, "tern send: --tls is "
				    "starttls or implicit, not \"%s\"\n",
				    optarg);
				return EX_USAGE;
			}
			break;
		case OPT_HELP:
			send_usage(stdout);
			return EX_OK;
		default:
			send_usage(stderr);
			return EX_USAGE;
		}
	}
	o->to = argv + optind;
	o->nto = (size_t)(argc - optind);
	if (o->subject == NULL || o->nto == 0) {
		fprintf(stderr, "tern send: %s\n", o->subject == NULL ?
		    "no subject: give -s SUBJECT" : "no recipient");
		send_usage(stderr);
		return EX_USAGE;
	}
	if (!util_utf8_valid((const unsigned char *)o->subject,
	    strlen(o->subject)) || has_control(o->subject)) {
		fprintf(stderr, "tern send: the subject must be UTF-8 text "
		    "on one line\n");
		return EX_USAGE;
	}
	if (o->server == NULL && (o->user != NULL || o->ca != NULL ||
	    o->insecure || o->password_file != NULL)) {
		fprintf(stderr, "tern send: --user, --password-file, --ca "
		    "and --insecure go with --server\n");
		return EX_USAGE;
	}
	return -1;
}

int
send_main(int argc, char **argv)
{
	struct send_opts o;
	struct send_msg m;
	size_t i;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&m, 0, sizeof(m));
	buf_init(&m.data);
	rc = parse_args(argc, argv, &o);
	if (rc != -1)
		goto done;
	g_mime_init();
	rc = compose(&o, &m);
	g_mime_shutdown();
	if (rc != EX_OK)
		goto done;
	if (o.print)
		rc = util_write_all(STDOUT_FILENO, m.data.data, m.data.len) ==
		    -1 ? EX_IOERR : EX_OK;
	else
		rc = o.server != NULL ? submit(&o, &m) : drop(&o, &m);
done:
	for (i = 0; i < m.nrcpts; i++)
		free(m.rcpts[i]);
	free(m.rcpts);
	free(m.sender);
	buf_free(&m.data);
	free(o.attach);
	return rc;
}

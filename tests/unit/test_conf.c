/*
 * test_conf.c - tern.conf(5): every key's valid and invalid forms with the
 * exact "file:line: message" text, the defaults, $TERN_HOME and $TERN_CONF,
 * the round trip through conf_print, the trusted-networks matcher, the
 * recipients and relay-recipients lookups, the routes and the resolver's
 * stored form, the tls, users and senders keys and conf_sender_allowed.
 * Each table row says what it tests.
 *
 * In the table texts "%F" stands for the configuration file's name and
 * "%D" for a directory of fixture files made for the run (fixture_names):
 * tls, users and ca= must name files that exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"
#include "unit_addr.h"

/* ---- helpers -------------------------------------------------------- */

/* the fixture directory "%D" and what it holds: files, and one directory */
static char *fixdir;
static const char *const fixture_names[] = {
	"cert.pem", "key.pem", "cert2.pem", "key2.pem", "a b.pem", "users",
	NULL
};

static int
fixtures_make(void **state)
{
	char tmpl[] = "/tmp/tern-test-conf-fix-XXXXXX", *path;
	const char *const *n;
	FILE *fp;

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	fixdir = xstrdup(tmpl);
	for (n = fixture_names; *n != NULL; n++) {
		path = xasprintf("%s/%s", fixdir, *n);
		fp = fopen(path, "w");
		free(path);
		if (fp == NULL)
			return -1;
		fputs("# not read by conf_load\n", fp);
		fclose(fp);
	}
	path = xasprintf("%s/dir", fixdir);
	if (mkdir(path, 0700) == -1)
		return -1;
	free(path);
	return 0;
}

static int
fixtures_remove(void **state)
{
	const char *const *n;
	char *path;

	(void)state;
	for (n = fixture_names; *n != NULL; n++) {
		path = xasprintf("%s/%s", fixdir, *n);
		unlink(path);
		free(path);
	}
	path = xasprintf("%s/dir", fixdir);
	rmdir(path);
	free(path);
	rmdir(fixdir);
	free(fixdir);
	return 0;
}

/* write_tmp - a new file under /tmp holding len bytes of text */
static char *
write_tmp(const char *text, size_t len)
{
	char tmpl[] = "/tmp/tern-test-conf-XXXXXX";
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return xstrdup(tmpl);
}

static char *
write_conf(const char *text)
{
	return write_tmp(text, strlen(text));
}

/* read_fd - everything in fd from the start */
static char *
read_fd(int fd)
{
	struct buf b;
	char chunk[512];
	ssize_t n;

	buf_init(&b);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	return b.data;
}

/* load - conf_load(path) with its stderr captured into *errs */
static struct conf *
load(const char *path, char **errs)
{
	char tmpl[] = "/tmp/tern-test-err-XXXXXX";
	int fd = mkstemp(tmpl), saved;
	struct conf *c;

	assert_true(fd >= 0);
	unlink(tmpl);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	dup2(fd, 2);
	c = conf_load(path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	*errs = read_fd(fd);
	close(fd);
	return c;
}

/* expand_file - text with every "%F" replaced by path (when not NULL)
 * and every "%D" by the fixture directory */
static char *
expand_file(const char *text, const char *path)
{
	struct buf b;
	const char *s;

	buf_init(&b);
	for (s = text; *s; s++) {
		if (s[0] == '%' && s[1] == 'F' && path != NULL) {
			buf_puts(&b, path);
			s++;
			continue;
		}
		if (s[0] == '%' && s[1] == 'D') {
			buf_puts(&b, fixdir);
			s++;
			continue;
		}
		buf_putc(&b, *s);
	}
	return b.data;
}

/* load_text - write text ("%D" expanded) to a file, load it; *path gets
 * the file name */
static struct conf *
load_text(const char *text, char **path, char **errs)
{
	char *full = expand_file(text, NULL);
	struct conf *c;

	*path = write_conf(full);
	free(full);
	c = load(*path, errs);
	return c;
}

/* printed - conf_print's output */
static char *
printed(const struct conf *c)
{
	FILE *fp = tmpfile();
	char *out;

	assert_non_null(fp);
	conf_print(c, fp);
	fflush(fp);
	out = read_fd(fileno(fp));
	fclose(fp);
	return out;
}

/* has_line - 1 when text holds line as a whole line */
static int
has_line(const char *text, const char *line)
{
	char *needle = xasprintf("\n%s\n", line);
	int found = strstr(text, needle) != NULL;

	free(needle);
	return found;
}

static void
done(struct conf *c, char *path, char *errs)
{
	conf_free(c);
	if (path != NULL)
		unlink(path);
	free(path);
	free(errs);
}

static int
setup_env(void **state)
{
	(void)state;
	unsetenv("TERN_HOME");
	unsetenv("TERN_CONF");
	return 0;
}

/* ---- valid forms ------------------------------------------------------ */

struct valid_case {
	const char *what;
	const char *text;
	const char *line; /* expected as a whole line of conf_print */
};

static const struct valid_case valid_cases[] = {
	{ "hostname as given", "hostname mail.example.org\n",
	    "hostname mail.example.org" },
	{ "hostname without a dot", "hostname mybox\n", "hostname mybox" },
	{ "comment after a value", "hostname a.example # the name\n",
	    "hostname a.example" },
	{ "comment touching a value", "hostname a.example#x\n",
	    "hostname a.example" },
	{ "blank, comment and tab lines",
	    "  # comment\n\n\t\n\thostname\tb.example\t\n",
	    "hostname b.example" },
	{ "CRLF line end", "hostname c.example\r\n", "hostname c.example" },
	{ "last line without newline", "hostname d.example",
	    "hostname d.example" },
	{ "home cleaned", "home /srv//tern/./spool/\n",
	    "home /srv/tern/spool" },
	{ "home root", "home /\n", "home /" },
	{ "home quoted with a space", "home \"/tmp/a b\"\n",
	    "home \"/tmp/a b\"" },
	{ "quoted escapes", "home \"/tmp/q\\\"x\\\\y\"\n",
	    "home \"/tmp/q\\\"x\\\\y\"" },
	{ "quoted #", "home \"/tmp/a#b\"\n", "home \"/tmp/a#b\"" },
	{ "quotes inside a word", "home /tmp/\"a b\"/c\n",
	    "home \"/tmp/a b/c\"" },
	{ "user", "user mailer\n", "user mailer" },
	{ "user with dot and digits", "user mail.er-2_x\n",
	    "user mail.er-2_x" },
	{ "listen IPv4, default role", "listen 0.0.0.0:25\n",
	    "listen 0.0.0.0:25 role=smtp" },
	{ "listen IPv6 with greet pause",
	    "listen [::]:25 role=smtp greet-pause=5s\n",
	    "listen [::]:25 role=smtp greet-pause=5s greet-pass=1d "
	    "improper-pipelining=drop" },
	{ "greet-pass and improper-pipelining",
	    "listen 127.0.0.1:25 greet-pass=0 greet-pause=3s "
	    "improper-pipelining=allow\n",
	    "listen 127.0.0.1:25 role=smtp greet-pause=3s greet-pass=0s "
	    "improper-pipelining=allow" },
	{ "greet-pass in days", "listen 127.0.0.1:25 greet-pause=3s "
	    "greet-pass=30d\n",
	    "listen 127.0.0.1:25 role=smtp greet-pause=3s greet-pass=30d "
	    "improper-pipelining=drop" },
	{ "per-client limits",
	    "limits client-sessions=5 client-connect-rate=0 "
	    "client-message-rate=30 client-recipient-rate=100 "
	    "client-errors=3 client-invalid-recipients=7 "
	    "client-ipv6-prefix=48\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=5 client-connect-rate=0 client-message-rate=30 "
	    "client-recipient-rate=100 client-errors=3 "
	    "client-invalid-recipients=7 client-ipv6-prefix=48 "
	    "dnsbl-threshold=1" },
	{ "listen IPv6 canonical form", "listen [0:0:0:0:0:0:0:1]:2525\n",
	    "listen [::1]:2525 role=smtp" },
	{ "listen optional", "listen [::1]:2526 optional\n",
	    "listen [::1]:2526 role=smtp optional" },
	{ "greet-pause 0 is none", "listen 127.0.0.1:25 greet-pause=0\n",
	    "listen 127.0.0.1:25 role=smtp" },
	{ "greet-pause bare seconds", "listen 127.0.0.1:25 greet-pause=120\n",
	    "listen 127.0.0.1:25 role=smtp greet-pause=2m greet-pass=1d "
	    "improper-pipelining=drop" },
	{ "greet-pause at maximum", "listen 127.0.0.1:25 greet-pause=10m\n",
	    "listen 127.0.0.1:25 role=smtp greet-pause=10m greet-pass=1d "
	    "improper-pipelining=drop" },
	{ "listen port 65535", "listen 127.0.0.1:65535\n",
	    "listen 127.0.0.1:65535 role=smtp" },
	{ "local-domains lower-cased, repeated, deduplicated",
	    "local-domains Example.ORG localhost\n"
	    "local-domains example.org b.example\n",
	    "local-domains example.org localhost b.example" },
	{ "recipients any", "recipients any\n", "recipients any" },
	{ "recipients system", "recipients system\n",
	    "recipients system min-uid=1000" },
	{ "mailbox absolute", "mailbox maildir:/var/mail/%u/Maildir\n",
	    "mailbox maildir:/var/mail/%u/Maildir" },
	{ "mailbox all escapes", "mailbox maildir:/m/%d/%u/%a/%%\n",
	    "mailbox maildir:/m/%d/%u/%a/%%" },
	{ "mailbox $home expanded", "home /srv/t\nmailbox maildir:$home/m/%u\n",
	    "mailbox maildir:/srv/t/m/%u" },
	{ "mailbox quoted", "mailbox \"maildir:/var/mail box/%u\"\n",
	    "mailbox \"maildir:/var/mail box/%u\"" },
	{ "mailbox partly quoted", "mailbox maildir:\"/var/mail x/%u\"\n",
	    "mailbox \"maildir:/var/mail x/%u\"" },
	{ "default mailbox follows home", "home /srv/x\n",
	    "mailbox maildir:/srv/x/mail/%u/Maildir" },
	{ "default mailbox keeps % in home literal", "home /srv/50%\n",
	    "mailbox maildir:/srv/50%%/mail/%u/Maildir" },
	{ "mailbox lmtp on Dovecot's socket",
	    "mailbox lmtp:unix:/run/dovecot/lmtp\n",
	    "mailbox lmtp:unix:/run/dovecot/lmtp" },
	{ "mailbox lmtp to an address and port",
	    "mailbox lmtp:[127.0.0.1]:24\n", "mailbox lmtp:[127.0.0.1]:24" },
	{ "mailbox lmtp to IPv6", "mailbox lmtp:[::1]:2424\n",
	    "mailbox lmtp:[::1]:2424" },
	{ "mailbox lmtp to a name, printed as written",
	    "mailbox lmtp:store.example.org:24\n",
	    "mailbox lmtp:store.example.org:24" },
	{ "mailbox lmtp is not moved by home",
	    "home /srv/x\nmailbox lmtp:unix:/srv/x/lmtp\n",
	    "mailbox lmtp:unix:/srv/x/lmtp" },
	{ "trusted networks and bare addresses",
	    "trusted-networks 127.0.0.0/8 ::1 10.1.2.3 2001:db8::/32\n",
	    "trusted-networks 127.0.0.0/8 ::1/128 10.1.2.3/32 2001:db8::/32" },
	{ "trusted networks on several lines",
	    "trusted-networks 10.0.0.0/8\ntrusted-networks 0.0.0.0/0\n",
	    "trusted-networks 10.0.0.0/8 0.0.0.0/0" },
	{ "trusted none", "trusted-networks none\n", "trusted-networks none" },
	{ "dnsbl with its defaults", "dnsbl zen.spamhaus.org\n",
	    "dnsbl zen.spamhaus.org weight=1" },
	{ "dnsbl zone folded, final dot dropped, weight and match",
	    "dnsbl BL.Example. weight=3 match=127.0.0.2,127.0.0.4\n",
	    "dnsbl bl.example weight=3 match=127.0.0.2,127.0.0.4" },
	{ "dnswl with match", "dnswl list.dnswl.org match=127.0.2.3\n",
	    "dnswl list.dnswl.org match=127.0.2.3" },
	{ "dnsbl threshold", "limits dnsbl-threshold=5\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=5" },
	{ "listen behind balancers",
	    "listen 0.0.0.0:25 proxy-from=198.51.100.10,2001:db8::/32\n",
	    "listen 0.0.0.0:25 role=smtp "
	    "proxy-from=198.51.100.10/32,2001:db8::/32" },
	{ "limits subset keeps other defaults",
	    "limits message-size=35M recipients=100\n",
	    "limits message-size=35M recipients=100 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits at their minimums",
	    "limits message-size=1K recipients=1 line-length=80 sessions=1 "
	    "spool-reserve=0\n",
	    "limits message-size=1K recipients=1 line-length=80 sessions=1 "
	    "spool-reserve=0 destination-concurrency=20 received-headers=100 "
	    "auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits at their maximums",
	    "limits line-length=1048576 recipients=1000000 "
	    "sessions=1000000\n",
	    "limits message-size=50M recipients=1000000 line-length=1048576 "
	    "sessions=1000000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits sizes: bytes, lower-case unit, G",
	    "limits message-size=1536 spool-reserve=2g\n",
	    "limits message-size=1536 recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=2G destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "timeouts command only", "timeouts command=30s\n",
	    "timeouts command=30s data=10m message=1h "
	    "connect=30s remote-command=5m "
	    "remote-data=10m "
	    "delivery=10m proxy=10s" },
	{ "timeouts bare seconds", "timeouts data=3600\n",
	    "timeouts command=5m data=1h message=1h "
	    "connect=30s remote-command=5m "
	    "remote-data=10m "
	    "delivery=10m proxy=10s" },
	{ "timeouts at maximum", "timeouts command=1s data=1d\n",
	    "timeouts command=1s data=1d message=1h "
	    "connect=30s remote-command=5m "
	    "remote-data=10m "
	    "delivery=10m proxy=10s" },
	{ "timeouts outbound", "timeouts remote-data=3m connect=1m "
	    "remote-command=2m\n",
	    "timeouts command=5m data=10m message=1h "
	    "connect=1m remote-command=2m "
	    "remote-data=3m delivery=10m proxy=10s" },
	{ "timeouts outbound at the bounds",
	    "timeouts connect=1s remote-command=1d remote-data=1s\n",
	    "timeouts command=5m data=10m message=1h "
	    "connect=1s remote-command=1d "
	    "remote-data=1s delivery=10m proxy=10s" },
	{ "retry all three", "retry first=1m max=2h lifetime=3d\n",
	    "retry first=1m max=2h lifetime=3d warn=4h" },
	{ "retry first equal to default max", "retry first=1h\n",
	    "retry first=1h max=1h lifetime=5d warn=4h" },
	{ "retry max only", "retry max=10m lifetime=90m\n",
	    "retry first=5m max=10m lifetime=90m warn=4h" },
	{ "retry warn", "retry warn=1h\n",
	    "retry first=5m max=1h lifetime=5d warn=1h" },
	{ "retry warn=0 sends none", "retry warn=0\n",
	    "retry first=5m max=1h lifetime=5d warn=0s" },
	{ "retry warn at maximum", "retry warn=365d\n",
	    "retry first=5m max=1h lifetime=5d warn=365d" },
	{ "limits outbound at their minimums",
	    "limits destination-concurrency=1 received-headers=1\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=1 "
	    "received-headers=1 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits outbound at their maximums",
	    "limits received-headers=1000 destination-concurrency=1000\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=1000 "
	    "received-headers=1000 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	/* relay-domains, route, smarthost, resolver */
	{ "relay-domains lower-cased, repeated, deduplicated",
	    "relay-domains Dma.ORG lists.dma.org\n"
	    "relay-domains dma.org b.example\n",
	    "relay-domains dma.org lists.dma.org b.example" },
	{ "no relay-domains printed as a comment", "hostname a.example\n",
	    "# relay-domains: none" },
	{ "no relay-recipients printed as a comment", "hostname a.example\n",
	    "# relay-recipients: not set, every recipient of a relay domain "
	    "is accepted" },
	{ "route [host]:port", "route Dma.org [DMAPUB.dma.org]:2525\n",
	    "route dma.org [dmapub.dma.org]:2525 tls=may" },
	{ "route [host] gets port 25", "route dma.org [dmapub.dma.org]\n",
	    "route dma.org [dmapub.dma.org]:25 tls=may" },
	{ "route host:port looks up MX", "route dma.org relay.example:587\n",
	    "route dma.org relay.example:587 tls=may" },
	{ "route host gets port 25", "route dma.org relay.example\n",
	    "route dma.org relay.example:25 tls=may" },
	{ "route [IPv4]", "route dma.org [198.51.100.1]\n",
	    "route dma.org [198.51.100.1]:25 tls=may" },
	{ "route IPv4 without brackets: no MX either",
	    "route dma.org 198.51.100.1:2525\n",
	    "route dma.org [198.51.100.1]:2525 tls=may" },
	{ "route [IPv6]:port canonical", "route dma.org [2001:DB8:0::1]:25\n",
	    "route dma.org [2001:db8::1]:25 tls=may" },
	{ "route [IPv6] gets port 25", "route dma.org [::1]\n",
	    "route dma.org [::1]:25 tls=may" },
	{ "route port 65535", "route dma.org [a.example]:65535\n",
	    "route dma.org [a.example]:65535 tls=may" },
	{ "route tls and auth", "route dma.org [mx.dma.org] tls=verify "
	    "auth=/etc/tern/dma.secret\n",
	    "route dma.org [mx.dma.org]:25 tls=verify "
	    "auth=/etc/tern/dma.secret" },
	{ "route options in any order",
	    "route dma.org [mx.dma.org] auth=/s tls=encrypt\n",
	    "route dma.org [mx.dma.org]:25 tls=encrypt auth=/s" },
	{ "route tls=none", "route dma.org [mx.dma.org] tls=none\n",
	    "route dma.org [mx.dma.org]:25 tls=none" },
	{ "route auth with tls=may", "route dma.org [mx.dma.org] auth=/s\n",
	    "route dma.org [mx.dma.org]:25 tls=may auth=/s" },
	{ "route auth path with a space",
	    "route dma.org [mx.dma.org] \"auth=/etc/a b\"\n",
	    "route dma.org [mx.dma.org]:25 tls=may \"auth=/etc/a b\"" },
	{ "route tls=verify with a CA file",
	    "route dma.org [mx.dma.org] tls=verify ca=%D/cert.pem\n",
	    "route dma.org [mx.dma.org]:25 tls=verify ca=%D/cert.pem" },
	{ "route ca, auth and tls in any order",
	    "route dma.org [mx.dma.org] ca=%D/cert.pem auth=/s tls=verify\n",
	    "route dma.org [mx.dma.org]:25 tls=verify auth=/s ca=%D/cert.pem" },
	{ "route CA path with a space",
	    "route dma.org [mx.dma.org] tls=verify \"ca=%D/a b.pem\"\n",
	    "route dma.org [mx.dma.org]:25 tls=verify \"ca=%D/a b.pem\"" },
	{ "route for a relay domain",
	    "relay-domains dma.org\nroute dma.org [dmapub.dma.org]:25\n",
	    "route dma.org [dmapub.dma.org]:25 tls=may" },
	{ "second route", "route a.example [x.example]\n"
	    "route b.example y.example\n",
	    "route b.example y.example:25 tls=may" },
	{ "route for a subdomain of a local domain",
	    "local-domains dma.org\nroute pub.dma.org [x.example]\n",
	    "route pub.dma.org [x.example]:25 tls=may" },
	{ "smarthost with everything",
	    "smarthost [relay.example.net]:587 auth=/etc/tern/relay.secret "
	    "tls=verify\n",
	    "smarthost [relay.example.net]:587 tls=verify "
	    "auth=/etc/tern/relay.secret" },
	{ "smarthost with a CA file",
	    "smarthost relay.example.net:587 tls=verify ca=%D/cert2.pem\n",
	    "smarthost relay.example.net:587 tls=verify ca=%D/cert2.pem" },
	{ "smarthost host looks up MX", "smarthost Relay.Example.NET\n",
	    "smarthost relay.example.net:25 tls=may" },
	{ "smarthost [IPv6]:port", "smarthost [2001:db8::25]:2525\n",
	    "smarthost [2001:db8::25]:2525 tls=may" },
	{ "no smarthost printed as a comment", "hostname a.example\n",
	    "# smarthost: none, other domains by MX" },
	{ "resolver IPv4", "resolver 198.51.100.53\n",
	    "resolver 198.51.100.53" },
	{ "resolver IPv4:port", "resolver 127.0.0.1:5353\n",
	    "resolver 127.0.0.1:5353" },
	{ "resolver [IPv6]:port", "resolver [2001:db8:0::53]:53\n",
	    "resolver [2001:db8::53]:53" },
	{ "resolver bare IPv6", "resolver 2001:db8::53\n",
	    "resolver 2001:db8::53" },
	{ "resolver [IPv6] without port", "resolver [::1]\n",
	    "resolver ::1" },
	{ "no resolver printed as a comment", "hostname a.example\n",
	    "# resolver: not set, the system's (/etc/resolv.conf and "
	    "/etc/hosts)" },
	{ "log syslog verbose", "log syslog verbose\n", "log syslog verbose" },
	{ "log stderr", "log stderr\n", "log stderr" },
	/* tls, users, senders, the auth limits, submission roles */
	{ "tls cert and key", "tls cert=%D/cert.pem key=%D/key.pem\n",
	    "tls cert=%D/cert.pem key=%D/key.pem" },
	{ "tls options in any order", "tls key=%D/key.pem cert=%D/cert.pem\n",
	    "tls cert=%D/cert.pem key=%D/key.pem" },
	{ "tls cert and key in one file",
	    "tls cert=%D/cert.pem key=%D/cert.pem\n",
	    "tls cert=%D/cert.pem key=%D/cert.pem" },
	{ "tls second certificate (SNI)",
	    "tls cert=%D/cert.pem key=%D/key.pem\n"
	    "tls cert=%D/cert2.pem key=%D/key2.pem\n",
	    "tls cert=%D/cert2.pem key=%D/key2.pem" },
	{ "tls path with a space, quoted",
	    "tls \"cert=%D/a b.pem\" key=%D/key.pem\n",
	    "tls \"cert=%D/a b.pem\" key=%D/key.pem" },
	{ "no tls printed as a comment", "hostname a.example\n",
	    "# tls: none, STARTTLS is not offered" },
	{ "tls-ciphers modern by default", "hostname a.example\n",
	    "tls-ciphers modern" },
	{ "tls-ciphers modern", "tls-ciphers modern\n", "tls-ciphers modern" },
	{ "tls-ciphers compat for old peers", "tls-ciphers compat\n",
	    "tls-ciphers compat" },
	{ "tls-ciphers with a certificate",
	    "tls cert=%D/cert.pem key=%D/key.pem\ntls-ciphers compat\n",
	    "tls-ciphers compat" },
	{ "users", "users %D/users\n", "users %D/users" },
	{ "no users printed as a comment", "hostname a.example\n",
	    "# users: not set, AUTH is not offered" },
	{ "senders: addresses lower-cased and deduplicated, user as written",
	    "senders PaulV@Canonical.org PaulV@Canonical.ORG "
	    "@Lists.Canonical.org paulv@canonical.org\n",
	    "senders PaulV@Canonical.org paulv@canonical.org "
	    "@lists.canonical.org" },
	{ "senders of a user without a domain",
	    "senders bob bob@example.org bob+x@example.org\n",
	    "senders bob bob@example.org bob+x@example.org" },
	{ "senders of a second user",
	    "senders bob bob@example.org\nsenders carol @example.net\n",
	    "senders carol @example.net" },
	{ "senders user of 255 octets",
	    "senders aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa@x a@example.org\n",
	    "senders aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa@x a@example.org" },
	{ "limits auth at their minimums",
	    "limits auth-failures=1 auth-client-failures=1\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=1 auth-client-failures=1 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits auth at their maximums",
	    "limits auth-client-failures=100000 auth-failures=100\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=100 "
	    "auth-client-failures=100000 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "mailbox mbox", "mailbox mbox:/var/mail/%u\n",
	    "mailbox mbox:/var/mail/%u" },
	{ "mailbox mbox in the home", "mailbox mbox:~/mbox\n",
	    "mailbox mbox:~/mbox" },
	{ "mailbox pipe", "mailbox pipe:\"/usr/bin/procmail -d %u\"\n",
	    "mailbox \"pipe:/usr/bin/procmail -d %u\"" },
	{ "mailbox-for, name folded",
	    "mailbox-for Pea mbox:$home/pea.mbox\nhome /h\n",
	    "mailbox-for pea mbox:/h/pea.mbox" },
	{ "recipients system: the default mailbox is in the home",
	    "recipients system\n", "mailbox maildir:~/Maildir" },
	{ "recipients system min-uid", "recipients system min-uid=500\n",
	    "recipients system min-uid=500" },
	{ "aliases", "aliases /etc/aliases\n", "aliases /etc/aliases" },
	{ "aliases none", "aliases none\n", "aliases none" },
	{ "alias-user", "alias-user mail\n", "alias-user mail" },
	{ "forward none", "forward none\n", "forward none" },
	{ "forward elsewhere in the home", "forward ~/.config/forward\n",
	    "forward ~/.config/forward" },
	{ "subaddress -", "subaddress -\n", "subaddress -" },
	{ "subaddress none", "subaddress none\n", "subaddress none" },
	{ "local concurrency", "limits local-concurrency=5 "
	    "mailbox-concurrency=1\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=5 mailbox-concurrency=1 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits data-rate in K", "limits data-rate=1K\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=1K "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits data-rate at its minimum", "limits data-rate=1\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=1 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits data-rate at its maximum", "limits data-rate=1m\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=1M "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "limits data-rate in octets", "limits data-rate=1536\n",
	    "limits message-size=50M recipients=1000 line-length=1000 "
	    "sessions=10000 spool-reserve=100M destination-concurrency=20 "
	    "received-headers=100 auth-failures=3 auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=1536 "
	    "client-sessions=50 client-connect-rate=600 client-message-rate=0 "
	    "client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1" },
	{ "timeouts message", "timeouts message=2h\n",
	    "timeouts command=5m data=10m message=2h "
	    "connect=30s remote-command=5m "
	    "remote-data=10m delivery=10m proxy=10s" },
	{ "timeouts message at its minimum", "timeouts message=1s\n",
	    "timeouts command=5m data=10m message=1s "
	    "connect=30s remote-command=5m "
	    "remote-data=10m delivery=10m proxy=10s" },
	{ "timeouts message at its maximum", "timeouts message=86400\n",
	    "timeouts command=5m data=10m message=1d "
	    "connect=30s remote-command=5m "
	    "remote-data=10m delivery=10m proxy=10s" },
	{ "timeouts delivery", "timeouts delivery=1h\n",
	    "timeouts command=5m data=10m message=1h "
	    "connect=30s remote-command=5m "
	    "remote-data=10m delivery=1h proxy=10s" },
	{ "role=submission with a tls line after it",
	    "listen 0.0.0.0:587 role=submission\n"
	    "tls cert=%D/cert.pem key=%D/key.pem\n",
	    "listen 0.0.0.0:587 role=submission" },
	{ "role=submissions with a tls line before it",
	    "tls cert=%D/cert.pem key=%D/key.pem\n"
	    "listen [::]:465 role=submissions\n",
	    "listen [::]:465 role=submissions" },
	{ "tls without a submission listener (STARTTLS on port 25)",
	    "listen 0.0.0.0:25\ntls cert=%D/cert.pem key=%D/key.pem\n",
	    "listen 0.0.0.0:25 role=smtp" },
};

static void
test_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *vc = &valid_cases[i];
		char *path, *errs, *out = NULL;
		char *line = expand_file(vc->line, NULL);
		struct conf *c = load_text(vc->text, &path, &errs);

		if (c != NULL)
			out = printed(c);
		if (c == NULL || errs[0] != '\0' || !has_line(out, line))
			fail_msg("%s: want \"%s\"; stderr: %s\nprinted:\n%s",
			    vc->what, line, errs, out ? out : "-");
		free(out);
		free(line);
		done(c, path, errs);
	}
}

/* ---- invalid forms: the exact messages -------------------------------- */

struct invalid_case {
	const char *what;
	const char *text;
	const char *errors; /* all of stderr; %F is the file name */
};

static const struct invalid_case invalid_cases[] = {
	/* syntax */
	{ "unknown key", "colour blue\n", "%F:1: unknown key \"colour\"\n" },
	{ "key is case-sensitive", "Hostname a.example\n",
	    "%F:1: unknown key \"Hostname\"\n" },
	{ "line numbers count comments and blanks", "# c\n\n  \nfoo bar\n",
	    "%F:4: unknown key \"foo\"\n" },
	{ "unterminated quote", "home \"/tmp/x\n",
	    "%F:1: unterminated quoted word\n" },
	{ "bad escape", "home \"/tmp/\\x\"\n",
	    "%F:1: bad escape in quoted word (only \\\" and \\\\)\n" },
	{ "control character", "hostname a\001b\n",
	    "%F:1: control character 0x01 in line\n" },
	{ "lone CR inside a line", "hostname a\rb\n",
	    "%F:1: control character 0x0d in line\n" },
	{ "single-valued key repeated",
	    "hostname a.example\n\nhostname b.example\n",
	    "%F:3: hostname given twice (first at line 1)\n" },
	{ "limits repeated", "limits recipients=5\nlimits sessions=5\n",
	    "%F:2: limits given twice (first at line 1)\n" },
	{ "every error of a file is reported",
	    "colour blue\nhostname\nlimits recipients=0 sessions=x\n"
	    "hostname ok.example\nlog\n",
	    "%F:1: unknown key \"colour\"\n"
	    "%F:2: hostname takes exactly one value\n"
	    "%F:3: limits: recipients=0 is below the minimum 1\n"
	    "%F:3: limits: sessions=x is not a number\n"
	    "%F:4: hostname given twice (first at line 2)\n"
	    "%F:5: log takes stderr or syslog, then optionally verbose\n" },
	/* local delivery */
	{ "mailbox-for without a method", "mailbox-for pea\n",
	    "%F:1: mailbox-for takes a user and a method\n" },
	{ "mailbox-for a bad user", "mailbox-for p/a maildir:/m/%u\n",
	    "%F:1: mailbox-for: \"p/a\" is not a user name\n" },
	{ "mailbox-for an unknown method", "mailbox-for pea smtp:x\n",
	    "%F:1: mailbox-for: \"smtp:x\" is not maildir:, mbox:, pipe: or "
	    "lmtp:\n" },
	{ "mailbox-for twice for one user",
	    "mailbox-for pea mbox:/m/pea\nmailbox-for PEA mbox:/m/x\n",
	    "%F:2: mailbox-for: pea given twice\n" },
	{ "mailbox-for a relative path", "mailbox-for pea mbox:m/pea\n",
	    "%F:1: mailbox-for: mbox:m/pea is not an absolute path or "
	    "~/PATH\n" },
	{ "aliases relative", "aliases etc/aliases\n",
	    "%F:1: aliases: \"etc/aliases\" is not an absolute path or "
	    "none\n" },
	{ "alias-user not a name", "alias-user a:b\n",
	    "%F:1: alias-user: \"a:b\" is not a user name\n" },
	{ "forward outside the home", "forward /etc/forward\n",
	    "%F:1: forward: \"/etc/forward\" is not ~/FILE or none\n" },
	{ "subaddress a letter", "subaddress x\n",
	    "%F:1: subaddress: \"x\" is not one of + - = _ and the like, or "
	    "none\n" },
	{ "subaddress two characters", "subaddress ++\n",
	    "%F:1: subaddress: \"++\" is not one of + - = _ and the like, or "
	    "none\n" },
	{ "recipients system min-uid=0", "recipients system min-uid=0\n",
	    "%F:1: recipients: min-uid=0 is not a uid above 0\n" },
	{ "limits local-concurrency=0", "limits local-concurrency=0\n",
	    "%F:1: limits: local-concurrency=0 is below the minimum 1\n" },
	/* hostname, home, user */
	{ "hostname missing", "hostname\n",
	    "%F:1: hostname takes exactly one value\n" },
	{ "hostname two values", "hostname a.example b.example\n",
	    "%F:1: hostname takes exactly one value\n" },
	{ "hostname empty label", "hostname a..example\n",
	    "%F:1: hostname: \"a..example\" is not a valid domain name\n" },
	{ "hostname leading hyphen", "hostname -a.example\n",
	    "%F:1: hostname: \"-a.example\" is not a valid domain name\n" },
	{ "hostname trailing dot", "hostname a.example.\n",
	    "%F:1: hostname: \"a.example.\" is not a valid domain name\n" },
	{ "hostname address literal", "hostname [127.0.0.1]\n",
	    "%F:1: hostname: \"[127.0.0.1]\" is not a valid domain name\n" },
	{ "hostname empty quoted", "hostname \"\"\n",
	    "%F:1: hostname: \"\" is not a valid domain name\n" },
	{ "home relative", "home var\n",
	    "%F:1: home: \"var\" is not an absolute path\n" },
	{ "home missing", "home\n", "%F:1: home takes exactly one value\n" },
	{ "user with space", "user \"a b\"\n",
	    "%F:1: user: \"a b\" is not a valid user name\n" },
	{ "user leading hyphen", "user -r\n",
	    "%F:1: user: \"-r\" is not a valid user name\n" },
	{ "user too long", "user abcdefghijabcdefghijabcdefghijabc\n",
	    "%F:1: user: \"abcdefghijabcdefghijabcdefghijabc\" is not a valid "
	    "user name\n" },
	/* listen */
	{ "listen without address", "listen\n",
	    "%F:1: listen needs ADDR:PORT\n" },
	{ "listen without port", "listen 127.0.0.1\n",
	    "%F:1: listen: \"127.0.0.1\" is not ADDR:PORT (IPv6 in brackets: "
	    "[::1]:2525)\n" },
	{ "listen IPv6 without brackets", "listen ::1:25\n",
	    "%F:1: listen: \"::1:25\" is not ADDR:PORT (IPv6 in brackets: "
	    "[::1]:2525)\n" },
	{ "listen bracket without port", "listen [::1]\n",
	    "%F:1: listen: \"[::1]\" is not ADDR:PORT (IPv6 in brackets: "
	    "[::1]:2525)\n" },
	{ "listen host name", "listen localhost:25\n",
	    "%F:1: listen: \"localhost\" is not a numeric IPv4 address\n" },
	{ "listen IPv4 in brackets", "listen [127.0.0.1]:25\n",
	    "%F:1: listen: \"127.0.0.1\" is not a numeric IPv6 address\n" },
	{ "listen bad IPv6", "listen [::g]:25\n",
	    "%F:1: listen: \"::g\" is not a numeric IPv6 address\n" },
	{ "listen port 0", "listen 127.0.0.1:0\n",
	    "%F:1: listen: port \"0\" is not a number from 1 to 65535\n" },
	{ "listen port 65536", "listen 127.0.0.1:65536\n",
	    "%F:1: listen: port \"65536\" is not a number from 1 to 65535\n" },
	{ "listen port empty", "listen 127.0.0.1:\n",
	    "%F:1: listen: port \"\" is not a number from 1 to 65535\n" },
	{ "listen port by name", "listen 127.0.0.1:smtp\n",
	    "%F:1: listen: port \"smtp\" is not a number from 1 to 65535\n" },
	{ "role=submission needs a certificate",
	    "listen 0.0.0.0:587 role=submission\n",
	    "%F:1: role=submission needs a tls certificate (tls cert=... "
	    "key=...)\n" },
	{ "role=submissions needs a certificate",
	    "hostname a.example\nlisten [::]:465 role=submissions\n",
	    "%F:2: role=submissions needs a tls certificate (tls cert=... "
	    "key=...)\n" },
	{ "roles checked after the whole file, at each listen line",
	    "listen 0.0.0.0:587 role=submission\nlisten 0.0.0.0:25\n"
	    "colour blue\nlisten 0.0.0.0:465 role=submissions\n",
	    "%F:3: unknown key \"colour\"\n"
	    "%F:1: role=submission needs a tls certificate (tls cert=... "
	    "key=...)\n"
	    "%F:4: role=submissions needs a tls certificate (tls cert=... "
	    "key=...)\n" },
	{ "a wrong tls line still counts for the roles",
	    "listen 0.0.0.0:587 role=submission\ntls cert=c.pem key=k.pem\n",
	    "%F:2: tls: cert=c.pem is not an absolute path\n"
	    "%F:2: tls: key=k.pem is not an absolute path\n" },
	{ "unknown role", "listen 0.0.0.0:24 role=lmtp\n",
	    "%F:1: listen: unknown role \"lmtp\" (smtp, submission or "
	    "submissions)\n" },
	{ "greet-pause not a duration", "listen 0.0.0.0:25 greet-pause=5x\n",
	    "%F:1: listen: greet-pause=5x is not a duration (like 30s, 5m, 1h, "
	    "5d)\n" },
	{ "greet-pause above maximum", "listen 0.0.0.0:25 greet-pause=11m\n",
	    "%F:1: listen: greet-pause=11m is above the maximum 10m\n" },
	{ "greet-pass above maximum", "listen 0.0.0.0:25 greet-pass=366d\n",
	    "%F:1: listen: greet-pass=366d is above the maximum 365d\n" },
	{ "improper-pipelining unknown",
	    "listen 0.0.0.0:25 improper-pipelining=yes\n",
	    "%F:1: listen: improper-pipelining=yes is not drop or allow\n" },
	{ "client-ipv6-prefix too short", "limits client-ipv6-prefix=8\n",
	    "%F:1: limits: client-ipv6-prefix=8 is below the minimum 16\n" },
	{ "client-ipv6-prefix too long", "limits client-ipv6-prefix=129\n",
	    "%F:1: limits: client-ipv6-prefix=129 is above the maximum 128\n" },
	{ "client-errors 0", "limits client-errors=0\n",
	    "%F:1: limits: client-errors=0 is below the minimum 1\n" },
	{ "client-sessions not a number", "limits client-sessions=many\n",
	    "%F:1: limits: client-sessions=many is not a number\n" },
	{ "listen option twice", "listen 0.0.0.0:25 role=smtp role=smtp\n",
	    "%F:1: listen: role=smtp given twice\n" },
	{ "listen unknown option", "listen 0.0.0.0:25 tls=yes\n",
	    "%F:1: listen: unknown option \"tls\" (known: role, "
	    "greet-pause, greet-pass, improper-pipelining, proxy-from)\n" },
	{ "proxy-from not a network",
	    "listen 0.0.0.0:25 proxy-from=10.0.0.1,balancer\n",
	    "%F:1: listen: proxy-from: \"balancer\" is not an address or "
	    "ADDR/PREFIX\n" },
	{ "proxy-from empty", "listen 0.0.0.0:25 proxy-from=\n",
	    "%F:1: listen: proxy-from needs NETWORK,...\n" },
	{ "proxy-from with host bits", "listen 0.0.0.0:25 proxy-from=10.0.0.1/8\n",
	    "%F:1: listen: proxy-from: \"10.0.0.1/8\" has bits set after "
	    "the prefix\n" },
	{ "dnsbl without a zone", "dnsbl\n", "%F:1: dnsbl needs a ZONE\n" },
	{ "dnsbl zone not a name", "dnsbl bl..example\n",
	    "%F:1: dnsbl: \"bl..example\" is not a DNS zone\n" },
	{ "dnsbl weight 0", "dnsbl bl.example weight=0\n",
	    "%F:1: dnsbl: weight=0 is below the minimum 1\n" },
	{ "dnsbl weight over 100", "dnsbl bl.example weight=101\n",
	    "%F:1: dnsbl: weight=101 is above the maximum 100\n" },
	{ "dnsbl match IPv6", "dnsbl bl.example match=::1\n",
	    "%F:1: dnsbl: match: \"::1\" is not an IPv4 address\n" },
	{ "dnsbl match twice", "dnsbl bl.example match=127.0.0.2 match=127.0.0.3\n",
	    "%F:1: dnsbl: match=127.0.0.3 given twice\n" },
	{ "dnswl has no weight", "dnswl wl.example weight=2\n",
	    "%F:1: dnswl: unknown option \"weight=2\" (known: match)\n" },
	{ "the same zone twice", "dnsbl bl.example\ndnswl BL.example\n",
	    "%F:2: dnswl: bl.example given twice\n" },
	{ "dnsbl threshold 0", "limits dnsbl-threshold=0\n",
	    "%F:1: limits: dnsbl-threshold=0 is below the minimum 1\n" },
	{ "timeouts proxy over 5m", "timeouts proxy=6m\n",
	    "%F:1: timeouts: proxy=6m is above the maximum 5m\n" },
	{ "listen bare word", "listen 0.0.0.0:25 fast\n",
	    "%F:1: listen: expected name=value, not \"fast\"\n" },
	{ "listen address twice", "listen 127.0.0.1:25\nlisten 127.0.0.1:25\n",
	    "%F:2: listen: 127.0.0.1:25 given twice\n" },
	{ "listen IPv6 twice, spelled differently",
	    "listen [::1]:25\nlisten [0::1]:25\n",
	    "%F:2: listen: [0::1]:25 given twice\n" },
	/* local-domains, recipients, mailbox */
	{ "local-domains empty", "local-domains\n",
	    "%F:1: local-domains needs at least one domain\n" },
	{ "local-domains bad domain", "local-domains ok.example a..b\n",
	    "%F:1: local-domains: \"a..b\" is not a valid domain name\n" },
	{ "recipients unknown mode", "recipients some\n",
	    "%F:1: recipients: \"some\" is not any, system or "
	    "file:/absolute/path\n" },
	{ "recipients relative file", "recipients file:recips\n",
	    "%F:1: recipients: \"file:recips\" is not any, system or "
	    "file:/absolute/path\n" },
	{ "recipients file missing",
	    "recipients file:/nonexistent/tern-recipients\n",
	    "%F:1: recipients: cannot read /nonexistent/tern-recipients: No "
	    "such file or directory\n" },
	{ "recipients file is a directory", "\nrecipients file:/tmp\n",
	    "%F:2: recipients: cannot read /tmp: Is a directory\n" },
	{ "recipients two values", "recipients any system\n",
	    "%F:1: recipients takes exactly one value\n" },
	{ "mailbox pipe relative", "mailbox pipe:\"procmail -d %u\"\n",
	    "%F:1: mailbox: \"pipe:procmail -d %u\" is refused: the program "
	    "\"procmail\" is not an absolute path\n" },
	{ "mailbox pipe with %u in a shell's string",
	    "mailbox \"pipe:/bin/sh -c 'procmail -d %u'\"\n",
	    "%F:1: mailbox: \"pipe:/bin/sh -c 'procmail -d %u'\" is refused: "
	    "an escape in the command string of /bin/sh -c would become shell "
	    "syntax: pass it as an argument after the string (\"$1\") or use "
	    "the environment ($USER, $RECIPIENT)\n" },
	{ "mailbox lmtp without a port", "mailbox lmtp:[127.0.0.1]\n",
	    "%F:1: mailbox: \"lmtp:[127.0.0.1]\" is refused: no port: LMTP has no standard "
	    "port, write [host]:port or unix:/path\n" },
	{ "mailbox lmtp with port 0", "mailbox lmtp:[127.0.0.1]:0\n",
	    "%F:1: mailbox: \"lmtp:[127.0.0.1]:0\" is refused: the port is not a number from "
	    "1 to 65535\n" },
	{ "mailbox lmtp with a relative socket", "mailbox lmtp:unix:lmtp\n",
	    "%F:1: mailbox: \"lmtp:unix:lmtp\" is refused: the socket path of unix: is not "
	    "absolute\n" },
	{ "mailbox lmtp with a bad host", "mailbox lmtp:[a_b]:24\n",
	    "%F:1: mailbox: \"lmtp:[a_b]:24\" is refused: the host is neither an IP address "
	    "nor a domain name\n" },
	{ "mailbox lmtp with IPv6 unbracketed", "mailbox lmtp:::1:24\n",
	    "%F:1: mailbox: \"lmtp:::1:24\" is refused: an IPv6 address needs brackets: "
	    "[address]:port\n" },
	{ "mailbox lmtp empty, at its own line",
	    "hostname a.example\nmailbox lmtp:\n",
	    "%F:2: mailbox: \"lmtp:\" is refused: no port: LMTP has no standard port, write "
	    "[host]:port or unix:/path\n" },
	{ "mailbox without kind", "mailbox /var/mail/%u\n",
	    "%F:1: mailbox: \"/var/mail/%u\" is not maildir:, mbox:, pipe: or lmtp:\n" },
	{ "mailbox relative, at its own line",
	    "hostname a.example\nmailbox maildir:Maildir\n",
	    "%F:2: mailbox: maildir:Maildir is not an absolute path or "
	    "~/PATH\n" },
	{ "mailbox empty pattern", "mailbox maildir:\n",
	    "%F:1: mailbox: \"maildir:\" has no path\n" },
	{ "mailbox unknown escape", "mailbox maildir:/m/%x\n",
	    "%F:1: mailbox: \"%x\" is not %u, %d, %a or %%\n" },
	{ "mailbox trailing percent", "mailbox maildir:/m/%\n",
	    "%F:1: mailbox: \"%\" is not %u, %d, %a or %%\n" },
	/* relay-domains, relay-recipients */
	{ "relay-domains empty", "relay-domains\n",
	    "%F:1: relay-domains needs at least one domain\n" },
	{ "relay-domains bad domain", "relay-domains ok.example a..b\n",
	    "%F:1: relay-domains: \"a..b\" is not a valid domain name\n" },
	{ "relay-domains address literal", "relay-domains [198.51.100.1]\n",
	    "%F:1: relay-domains: \"[198.51.100.1]\" is not a valid domain "
	    "name\n" },
	{ "relay domain that is local, listed later",
	    "relay-domains x.example dma.org\nlocal-domains DMA.org\n",
	    "%F:1: relay-domains: dma.org is also a local domain\n" },
	{ "relay domain that is the default hostname",
	    "hostname mx.dma.org\n\nrelay-domains MX.dma.org\n",
	    "%F:3: relay-domains: mx.dma.org is also a local domain\n" },
	{ "relay domain localhost (a default local domain)",
	    "relay-domains a.example\nrelay-domains localhost\n",
	    "%F:2: relay-domains: localhost is also a local domain\n" },
	{ "relay-recipients without file:", "relay-recipients /etc/x\n",
	    "%F:1: relay-recipients: \"/etc/x\" is not file:/absolute/path\n" },
	{ "relay-recipients relative", "relay-recipients file:x\n",
	    "%F:1: relay-recipients: \"file:x\" is not file:/absolute/path\n" },
	{ "relay-recipients two values", "relay-recipients file:/a file:/b\n",
	    "%F:1: relay-recipients takes exactly one value\n" },
	{ "relay-recipients missing", "relay-recipients\n",
	    "%F:1: relay-recipients takes exactly one value\n" },
	{ "relay-recipients file missing",
	    "\nrelay-recipients file:/nonexistent/tern-relay\n",
	    "%F:2: relay-recipients: cannot read /nonexistent/tern-relay: No "
	    "such file or directory\n" },
	{ "relay-recipients twice",
	    "relay-recipients file:/nonexistent/a\n"
	    "relay-recipients file:/nonexistent/b\n",
	    "%F:1: relay-recipients: cannot read /nonexistent/a: No such file "
	    "or directory\n"
	    "%F:2: relay-recipients given twice (first at line 1)\n" },
	/* route */
	{ "route without anything", "route\n",
	    "%F:1: route needs a domain and a destination\n" },
	{ "route without destination", "route dma.org\n",
	    "%F:1: route needs a domain and a destination\n" },
	{ "route bad domain", "route a..b [x.example]\n",
	    "%F:1: route: \"a..b\" is not a valid domain name\n" },
	{ "route domain as address literal",
	    "route [198.51.100.1] [x.example]\n",
	    "%F:1: route: \"[198.51.100.1]\" is not a valid domain name\n" },
	{ "route unclosed bracket", "route d.example [x.example\n",
	    "%F:1: route: \"[x.example\" is not [host]:port, [host], host:port "
	    "or host (IPv6 in brackets)\n" },
	{ "route empty brackets", "route d.example []:25\n",
	    "%F:1: route: \"[]:25\" is not [host]:port, [host], host:port or "
	    "host (IPv6 in brackets)\n" },
	{ "route text after brackets", "route d.example [x.example]25\n",
	    "%F:1: route: \"[x.example]25\" is not [host]:port, [host], "
	    "host:port or host (IPv6 in brackets)\n" },
	{ "route IPv6 without brackets", "route d.example 2001:db8::1\n",
	    "%F:1: route: \"2001:db8::1\" is not [host]:port, [host], "
	    "host:port or host (IPv6 in brackets)\n" },
	{ "route port without host", "route d.example :25\n",
	    "%F:1: route: \":25\" is not [host]:port, [host], host:port or "
	    "host (IPv6 in brackets)\n" },
	{ "route empty destination", "route d.example \"\"\n",
	    "%F:1: route: \"\" is not [host]:port, [host], host:port or host "
	    "(IPv6 in brackets)\n" },
	{ "route port 0", "route d.example [x.example]:0\n",
	    "%F:1: route: port \"0\" is not a number from 1 to 65535\n" },
	{ "route port 65536", "route d.example x.example:65536\n",
	    "%F:1: route: port \"65536\" is not a number from 1 to 65535\n" },
	{ "route empty port", "route d.example x.example:\n",
	    "%F:1: route: port \"\" is not a number from 1 to 65535\n" },
	{ "route port by name", "route d.example [x.example]:smtp\n",
	    "%F:1: route: port \"smtp\" is not a number from 1 to 65535\n" },
	{ "route bad host", "route d.example [a..b]:25\n",
	    "%F:1: route: \"a..b\" is not a host name or IP address\n" },
	{ "route host with underscore-free garbage", "route d.example [a/b]\n",
	    "%F:1: route: \"a/b\" is not a host name or IP address\n" },
	{ "route IPv4 out of range is no name either",
	    "route d.example [198.51.100.256]\n",
	    "%F:1: route: \"198.51.100.256\" is not a host name or IP "
	    "address\n" },
	{ "tls-ciphers unknown value", "tls-ciphers weak\n",
	    "%F:1: tls-ciphers: \"weak\" is not modern or compat\n" },
	{ "tls-ciphers is case-sensitive", "tls-ciphers Modern\n",
	    "%F:1: tls-ciphers: \"Modern\" is not modern or compat\n" },
	{ "tls-ciphers without a value", "tls-ciphers\n",
	    "%F:1: tls-ciphers takes exactly one value\n" },
	{ "tls-ciphers with two values", "tls-ciphers modern compat\n",
	    "%F:1: tls-ciphers takes exactly one value\n" },
	{ "tls-ciphers not an OpenSSL cipher string",
	    "tls-ciphers HIGH:!aNULL\n",
	    "%F:1: tls-ciphers: \"HIGH:!aNULL\" is not modern or compat\n" },
	{ "tls-ciphers repeated", "tls-ciphers compat\n\ntls-ciphers modern\n",
	    "%F:3: tls-ciphers given twice (first at line 1)\n" },
	{ "route bad tls", "route d.example [x.example] tls=maybe\n",
	    "%F:1: route: tls=maybe is not none, may, encrypt or verify\n" },
	{ "route tls twice", "route d.example [x.example] tls=may tls=none\n",
	    "%F:1: route: tls given twice\n" },
	{ "route relative auth", "route d.example [x.example] auth=secret\n",
	    "%F:1: route: auth=secret is not an absolute path\n" },
	{ "route empty auth", "route d.example [x.example] auth=\n",
	    "%F:1: route: auth= is not an absolute path\n" },
	{ "route auth without TLS",
	    "route d.example [x.example] auth=/s tls=none\n",
	    "%F:1: route: auth= needs TLS, not tls=none\n" },
	{ "route unknown option", "route d.example [x.example] port=25\n",
	    "%F:1: route: unknown option \"port\" (known: tls, auth, ca)\n" },
	{ "route ca without tls= (may)",
	    "route d.example [x.example] ca=%D/cert.pem\n",
	    "%F:1: route: ca= needs tls=verify, not tls=may\n" },
	{ "route ca with tls=encrypt (nothing would check it)",
	    "route d.example [x.example] tls=encrypt ca=%D/cert.pem\n",
	    "%F:1: route: ca= needs tls=verify, not tls=encrypt\n" },
	{ "route ca with tls=none",
	    "route d.example [x.example] ca=%D/cert.pem tls=none\n",
	    "%F:1: route: ca= needs tls=verify, not tls=none\n" },
	{ "route relative ca",
	    "route d.example [x.example] tls=verify ca=ca.pem\n",
	    "%F:1: route: ca=ca.pem is not an absolute path\n" },
	{ "route empty ca", "route d.example [x.example] tls=verify ca=\n",
	    "%F:1: route: ca= is not an absolute path\n" },
	{ "route ca file missing",
	    "route d.example [x.example] tls=verify ca=%D/none.pem\n",
	    "%F:1: route: ca=%D/none.pem: No such file or directory\n" },
	{ "route ca is a directory",
	    "route d.example [x.example] tls=verify ca=%D/dir\n",
	    "%F:1: route: ca=%D/dir is not a regular file\n" },
	{ "route ca twice",
	    "route d.example [x.example] tls=verify ca=%D/cert.pem "
	    "ca=%D/cert2.pem\n",
	    "%F:1: route: ca given twice\n" },
	{ "route bare word option", "route d.example [x.example] verify\n",
	    "%F:1: route: expected name=value, not \"verify\"\n" },
	{ "route every option error at once",
	    "route d.example [x.example] tls=x auth=y z\n",
	    "%F:1: route: tls=x is not none, may, encrypt or verify\n"
	    "%F:1: route: auth=y is not an absolute path\n"
	    "%F:1: route: expected name=value, not \"z\"\n" },
	{ "route domain twice, any case",
	    "route d.example [x.example]\n# c\nroute D.example [y.example]\n",
	    "%F:3: route: d.example given twice (first at line 1)\n" },
	{ "route for a local domain",
	    "local-domains d.example\nroute d.example [x.example]\n",
	    "%F:2: route: d.example is a local domain, delivered here\n" },
	{ "route for localhost (a default local domain)",
	    "route localhost [x.example]\n",
	    "%F:1: route: localhost is a local domain, delivered here\n" },
	/* smarthost */
	{ "smarthost without destination", "smarthost\n",
	    "%F:1: smarthost needs a destination\n" },
	{ "smarthost twice", "smarthost [a.example]\nsmarthost [b.example]\n",
	    "%F:2: smarthost given twice (first at line 1)\n" },
	{ "smarthost bad tls", "smarthost [x.example] tls=sometimes\n",
	    "%F:1: smarthost: tls=sometimes is not none, may, encrypt or "
	    "verify\n" },
	{ "smarthost bad port", "smarthost x.example:99999\n",
	    "%F:1: smarthost: port \"99999\" is not a number from 1 to "
	    "65535\n" },
	{ "smarthost IPv6 without brackets", "smarthost ::1:25\n",
	    "%F:1: smarthost: \"::1:25\" is not [host]:port, [host], host:port "
	    "or host (IPv6 in brackets)\n" },
	{ "smarthost auth without TLS",
	    "smarthost [x.example] tls=none auth=/s\n",
	    "%F:1: smarthost: auth= needs TLS, not tls=none\n" },
	{ "smarthost ca without tls=verify",
	    "smarthost [x.example] ca=%D/cert.pem\n",
	    "%F:1: smarthost: ca= needs tls=verify, not tls=may\n" },
	{ "smarthost ca file missing",
	    "smarthost [x.example] tls=verify ca=/nonexistent/ca.pem\n",
	    "%F:1: smarthost: ca=/nonexistent/ca.pem: No such file or "
	    "directory\n" },
	/* resolver */
	{ "resolver missing", "resolver\n",
	    "%F:1: resolver takes exactly one value\n" },
	{ "resolver two values", "resolver 198.51.100.1 198.51.100.2\n",
	    "%F:1: resolver takes exactly one value\n" },
	{ "resolver host name", "resolver dns.example\n",
	    "%F:1: resolver: \"dns.example\" is not IP, IP:PORT or "
	    "[IPv6]:PORT\n" },
	{ "resolver host name with port", "resolver dns.example:53\n",
	    "%F:1: resolver: \"dns.example:53\" is not IP, IP:PORT or "
	    "[IPv6]:PORT\n" },
	{ "resolver unclosed bracket", "resolver [::1:53\n",
	    "%F:1: resolver: \"[::1:53\" is not IP, IP:PORT or [IPv6]:PORT\n" },
	{ "resolver empty brackets", "resolver []:53\n",
	    "%F:1: resolver: \"[]:53\" is not IP, IP:PORT or [IPv6]:PORT\n" },
	{ "resolver port 0", "resolver 198.51.100.1:0\n",
	    "%F:1: resolver: port \"0\" is not a number from 1 to 65535\n" },
	{ "resolver empty port", "resolver [::1]:\n",
	    "%F:1: resolver: port \"\" is not a number from 1 to 65535\n" },
	{ "resolver twice", "resolver 198.51.100.1\nresolver 198.51.100.2\n",
	    "%F:2: resolver given twice (first at line 1)\n" },
	/* trusted-networks */
	{ "trusted empty", "trusted-networks\n",
	    "%F:1: trusted-networks needs networks or none\n" },
	{ "trusted host bits", "trusted-networks 10.0.0.1/8\n",
	    "%F:1: trusted-networks: \"10.0.0.1/8\" has bits set after the "
	    "prefix\n" },
	{ "trusted IPv6 host bits", "trusted-networks 2001:db8::1/64\n",
	    "%F:1: trusted-networks: \"2001:db8::1/64\" has bits set after the "
	    "prefix\n" },
	{ "trusted IPv4 prefix too long", "trusted-networks 10.0.0.0/33\n",
	    "%F:1: trusted-networks: \"10.0.0.0/33\" has a prefix that is not "
	    "0 to 32\n" },
	{ "trusted IPv6 prefix too long", "trusted-networks ::/129\n",
	    "%F:1: trusted-networks: \"::/129\" has a prefix that is not 0 to "
	    "128\n" },
	{ "trusted empty prefix", "trusted-networks 10.0.0.0/\n",
	    "%F:1: trusted-networks: \"10.0.0.0/\" has a prefix that is not 0 "
	    "to 32\n" },
	{ "trusted host name", "trusted-networks example.org\n",
	    "%F:1: trusted-networks: \"example.org\" is not an address or "
	    "ADDR/PREFIX\n" },
	{ "trusted none with networks", "trusted-networks none 10.0.0.0/8\n",
	    "%F:1: trusted-networks: none cannot be combined with networks\n" },
	{ "trusted networks after none",
	    "trusted-networks none\ntrusted-networks ::1\n",
	    "%F:2: trusted-networks: none cannot be combined with networks\n" },
	{ "trusted none after networks",
	    "trusted-networks ::1\ntrusted-networks none\n",
	    "%F:2: trusted-networks: none cannot be combined with networks\n" },
	/* limits */
	{ "limits empty", "limits\n",
	    "%F:1: limits needs at least one name=value\n" },
	{ "limits without name", "limits 35M\n",
	    "%F:1: limits: expected name=value, not \"35M\"\n" },
	{ "limits unknown name", "limits foo=1\n",
	    "%F:1: limits: unknown option \"foo\" (known: message-size, "
	    "recipients, line-length, sessions, spool-reserve, "
	    "destination-concurrency, received-headers, auth-failures, "
	    "auth-client-failures, local-concurrency, mailbox-concurrency, "
	    "data-rate, client-sessions, client-connect-rate, "
	    "client-message-rate, client-recipient-rate, client-errors, "
	    "client-invalid-recipients, client-ipv6-prefix, dnsbl-threshold)\n" },
	{ "data-rate 0", "limits data-rate=0\n",
	    "%F:1: limits: data-rate=0 is below the minimum 1\n" },
	{ "data-rate above 1M", "limits data-rate=1025K\n",
	    "%F:1: limits: data-rate=1025K is above the maximum 1M\n" },
	{ "data-rate not a size", "limits data-rate=fast\n",
	    "%F:1: limits: data-rate=fast is not a size (like 512K, 50M, "
	    "1G)\n" },
	{ "data-rate with a unit per second", "limits data-rate=1K/s\n",
	    "%F:1: limits: data-rate=1K/s is not a size (like 512K, 50M, "
	    "1G)\n" },
	{ "auth-failures 0", "limits auth-failures=0\n",
	    "%F:1: limits: auth-failures=0 is below the minimum 1\n" },
	{ "auth-failures above 100", "limits auth-failures=101\n",
	    "%F:1: limits: auth-failures=101 is above the maximum 100\n" },
	{ "auth-failures not a number", "limits auth-failures=3x\n",
	    "%F:1: limits: auth-failures=3x is not a number\n" },
	{ "auth-client-failures 0", "limits auth-client-failures=0\n",
	    "%F:1: limits: auth-client-failures=0 is below the minimum 1\n" },
	{ "auth-client-failures above 100000",
	    "limits auth-client-failures=100001\n",
	    "%F:1: limits: auth-client-failures=100001 is above the maximum "
	    "100000\n" },
	{ "auth-client-failures negative", "limits auth-client-failures=-1\n",
	    "%F:1: limits: auth-client-failures=-1 is not a number\n" },
	{ "limits name twice", "limits recipients=5 recipients=6\n",
	    "%F:1: limits: recipients given twice\n" },
	{ "message-size below 1K", "limits message-size=1000\n",
	    "%F:1: limits: message-size=1000 is below the minimum 1K\n" },
	{ "message-size bad unit", "limits message-size=5X\n",
	    "%F:1: limits: message-size=5X is not a size (like 512K, 50M, "
	    "1G)\n" },
	{ "message-size overflow", "limits message-size=99999999999999999G\n",
	    "%F:1: limits: message-size=99999999999999999G is not a size (like "
	    "512K, 50M, 1G)\n" },
	{ "recipients 0", "limits recipients=0\n",
	    "%F:1: limits: recipients=0 is below the minimum 1\n" },
	{ "recipients negative", "limits recipients=-1\n",
	    "%F:1: limits: recipients=-1 is not a number\n" },
	{ "recipients above maximum", "limits recipients=1000001\n",
	    "%F:1: limits: recipients=1000001 is above the maximum 1000000\n" },
	{ "line-length below 80", "limits line-length=79\n",
	    "%F:1: limits: line-length=79 is below the minimum 80\n" },
	{ "line-length above 1 MiB", "limits line-length=1048577\n",
	    "%F:1: limits: line-length=1048577 is above the maximum "
	    "1048576\n" },
	{ "sessions empty", "limits sessions=\n",
	    "%F:1: limits: sessions= is not a number\n" },
	{ "spool-reserve bad", "limits spool-reserve=lots\n",
	    "%F:1: limits: spool-reserve=lots is not a size (like 512K, 50M, "
	    "1G)\n" },
	{ "destination-concurrency 0", "limits destination-concurrency=0\n",
	    "%F:1: limits: destination-concurrency=0 is below the minimum "
	    "1\n" },
	{ "destination-concurrency above 1000",
	    "limits destination-concurrency=1001\n",
	    "%F:1: limits: destination-concurrency=1001 is above the maximum "
	    "1000\n" },
	{ "received-headers 0", "limits received-headers=0\n",
	    "%F:1: limits: received-headers=0 is below the minimum 1\n" },
	{ "received-headers above 1000", "limits received-headers=1001\n",
	    "%F:1: limits: received-headers=1001 is above the maximum 1000\n" },
	{ "received-headers not a number", "limits received-headers=10K\n",
	    "%F:1: limits: received-headers=10K is not a number\n" },
	/* timeouts, retry, log */
	{ "timeouts zero", "timeouts command=0\n",
	    "%F:1: timeouts: command=0 is below the minimum 1s\n" },
	{ "timeouts above a day", "timeouts data=2d\n",
	    "%F:1: timeouts: data=2d is above the maximum 1d\n" },
	{ "timeouts unit", "timeouts data=5w\n",
	    "%F:1: timeouts: data=5w is not a duration (like 30s, 5m, 1h, "
	    "5d)\n" },
	{ "timeouts unknown", "timeouts idle=5m\n",
	    "%F:1: timeouts: unknown option \"idle\" (known: command, "
	    "data, message, connect, remote-command, remote-data, "
	    "delivery, proxy)\n" },
	{ "timeouts message zero", "timeouts message=0\n",
	    "%F:1: timeouts: message=0 is below the minimum 1s\n" },
	{ "timeouts message above a day", "timeouts message=25h\n",
	    "%F:1: timeouts: message=25h is above the maximum 1d\n" },
	{ "timeouts message not a duration", "timeouts message=forever\n",
	    "%F:1: timeouts: message=forever is not a duration (like 30s, 5m, "
	    "1h, 5d)\n" },
	{ "timeouts message twice", "timeouts message=1h message=2h\n",
	    "%F:1: timeouts: message given twice\n" },
	{ "timeouts connect zero", "timeouts connect=0\n",
	    "%F:1: timeouts: connect=0 is below the minimum 1s\n" },
	{ "timeouts remote-command above a day",
	    "timeouts remote-command=25h\n",
	    "%F:1: timeouts: remote-command=25h is above the maximum 1d\n" },
	{ "timeouts remote-data not a duration", "timeouts remote-data=x\n",
	    "%F:1: timeouts: remote-data=x is not a duration (like 30s, 5m, "
	    "1h, 5d)\n" },
	{ "retry warn above a year", "retry warn=366d\n",
	    "%F:1: retry: warn=366d is above the maximum 365d\n" },
	{ "retry warn not a duration", "retry warn=never\n",
	    "%F:1: retry: warn=never is not a duration (like 30s, 5m, 1h, "
	    "5d)\n" },
	{ "retry unknown", "retry notify=1h\n",
	    "%F:1: retry: unknown option \"notify\" (known: first, max, "
	    "lifetime, warn)\n" },
	{ "retry first above default max", "retry first=2h\n",
	    "%F:1: retry: first=2h is longer than max=1h\n" },
	{ "retry first above max", "retry first=10m max=5m\n",
	    "%F:1: retry: first=10m is longer than max=5m\n" },
	{ "retry lifetime above a year", "retry lifetime=366d\n",
	    "%F:1: retry: lifetime=366d is above the maximum 365d\n" },
	{ "retry first zero", "retry first=0s\n",
	    "%F:1: retry: first=0s is below the minimum 1s\n" },
	{ "log missing", "log\n",
	    "%F:1: log takes stderr or syslog, then optionally verbose\n" },
	{ "log unknown target", "log file\n",
	    "%F:1: log: \"file\" is not stderr or syslog\n" },
	{ "log unknown flag", "log stderr loud\n",
	    "%F:1: log takes stderr or syslog, then optionally verbose\n" },
	/* tls */
	{ "tls without anything", "tls\n",
	    "%F:1: tls needs cert=FILE and key=FILE\n" },
	{ "tls without key", "tls cert=%D/cert.pem\n",
	    "%F:1: tls: key=FILE is missing\n" },
	{ "tls without cert", "\ntls key=%D/key.pem\n",
	    "%F:2: tls: cert=FILE is missing\n" },
	{ "tls relative cert", "tls cert=cert.pem key=%D/key.pem\n",
	    "%F:1: tls: cert=cert.pem is not an absolute path\n" },
	{ "tls empty key", "tls cert=%D/cert.pem key=\n",
	    "%F:1: tls: key= is not an absolute path\n" },
	{ "tls cert file missing",
	    "tls cert=%D/none.pem key=%D/key.pem\n",
	    "%F:1: tls: cert=%D/none.pem: No such file or directory\n" },
	{ "tls key is a directory", "tls cert=%D/cert.pem key=%D/dir\n",
	    "%F:1: tls: key=%D/dir is not a regular file\n" },
	{ "tls cert below a file",
	    "tls cert=%D/cert.pem/x key=%D/key.pem\n",
	    "%F:1: tls: cert=%D/cert.pem/x: Not a directory\n" },
	{ "tls both files wrong, both reported",
	    "tls cert=%D/none.pem key=k.pem\n",
	    "%F:1: tls: cert=%D/none.pem: No such file or directory\n"
	    "%F:1: tls: key=k.pem is not an absolute path\n" },
	{ "tls cert given twice on a line",
	    "tls cert=%D/cert.pem cert=%D/cert2.pem key=%D/key.pem\n",
	    "%F:1: tls: cert given twice\n" },
	{ "tls unknown option",
	    "tls cert=%D/cert.pem key=%D/key.pem chain=/x\n",
	    "%F:1: tls: unknown option \"chain\" (known: cert, key)\n" },
	{ "tls bare path", "tls /etc/ssl/cert.pem\n",
	    "%F:1: tls: expected name=value, not \"/etc/ssl/cert.pem\"\n" },
	{ "tls same certificate on two lines",
	    "tls cert=%D/cert.pem key=%D/key.pem\n# c\n"
	    "tls cert=%D/cert.pem key=%D/key2.pem\n",
	    "%F:3: tls: cert=%D/cert.pem given twice (first at line 1)\n" },
	/* users */
	{ "users missing", "users\n", "%F:1: users takes exactly one value\n" },
	{ "users two files", "users %D/users %D/users\n",
	    "%F:1: users takes exactly one value\n" },
	{ "users relative", "users users.txt\n",
	    "%F:1: users: \"users.txt\" is not an absolute path\n" },
	{ "users file missing", "\nusers /nonexistent/tern-users\n",
	    "%F:2: users: /nonexistent/tern-users: No such file or "
	    "directory\n" },
	{ "users is a directory", "users %D/dir\n",
	    "%F:1: users: %D/dir is not a regular file\n" },
	{ "users twice", "users %D/users\nusers %D/users\n",
	    "%F:2: users given twice (first at line 1)\n" },
	/* senders */
	{ "senders without anything", "senders\n",
	    "%F:1: senders needs a user and at least one address\n" },
	{ "senders without address", "senders paulv\n",
	    "%F:1: senders needs a user and at least one address\n" },
	{ "senders user with ':'", "senders a:b a@example.org\n",
	    "%F:1: senders: \"a:b\" is not a user name (name or "
	    "name@domain)\n" },
	{ "senders user without local part", "senders @example.org "
	    "a@example.org\n",
	    "%F:1: senders: \"@example.org\" is not a user name (name or "
	    "name@domain)\n" },
	{ "senders user with a bad domain", "senders p@a..b p@example.org\n",
	    "%F:1: senders: \"p@a..b\" is not a user name (name or "
	    "name@domain)\n" },
	{ "senders user of 256 octets is too long",
	    "senders aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaa@x a@example.org\n",
	    "%F:1: senders: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaa@x\" is not a user name (name or name@domain)\n" },
	{ "senders address without '@'", "senders paulv paulv\n",
	    "%F:1: senders: \"paulv\" is not an address (local@domain or "
	    "@domain)\n" },
	{ "senders address as written in the message",
	    "senders paulv P@Bad..Dom\n",
	    "%F:1: senders: \"P@Bad..Dom\" is not an address (local@domain "
	    "or @domain)\n" },
	{ "senders every bad address reported",
	    "senders paulv @ ok@example.org @[198.51.100.1] "
	    "\"a b@example.org\"\n",
	    "%F:1: senders: \"@\" is not an address (local@domain or "
	    "@domain)\n"
	    "%F:1: senders: \"@[198.51.100.1]\" is not an address "
	    "(local@domain or @domain)\n"
	    "%F:1: senders: \"a b@example.org\" is not an address "
	    "(local@domain or @domain)\n" },
	{ "senders same user twice, any case",
	    "senders Paulv a@example.org\n\nsenders paulv b@example.org\n",
	    "%F:3: senders: user paulv given twice (first at line 1)\n" },
	{ "senders repeated user noticed after a bad address",
	    "senders bob x\nsenders bob b@example.org\n",
	    "%F:1: senders: \"x\" is not an address (local@domain or "
	    "@domain)\n"
	    "%F:2: senders: user bob given twice (first at line 1)\n" },
};

static void
test_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]);
	     i++) {
		const struct invalid_case *ic = &invalid_cases[i];
		char *path, *errs, *want;
		struct conf *c = load_text(ic->text, &path, &errs);

		want = expand_file(ic->errors, path);
		if (c != NULL || strcmp(errs, want) != 0)
			fail_msg("%s: loaded=%d\nwant: %sgot:  %s", ic->what,
			    c != NULL, want, errs);
		free(want);
		done(c, path, errs);
	}
}

/* a NUL byte cannot sit in a C string table row */
static void
test_nul_byte(void **state)
{
	static const char text[] = "hostname a\0b.example\n";
	char *path = write_tmp(text, sizeof(text) - 1), *errs, *want;
	struct conf *c = load(path, &errs);

	(void)state;
	want = xasprintf("%s:1: NUL byte in line\n", path);
	assert_null(c);
	assert_string_equal(errs, want);
	free(want);
	done(c, path, errs);
}

static void
test_missing_file(void **state)
{
	char *errs;
	struct conf *c = load("/nonexistent/tern.conf", &errs);

	(void)state;
	assert_null(c);
	assert_string_equal(errs, "/nonexistent/tern.conf: cannot open: No "
	    "such file or directory\n");
	free(errs);
}

/* every key conf_keys() names is one the parser knows */
static void
test_keys_known(void **state)
{
	const char *const *k;
	size_t n = 0;

	(void)state;
	for (k = conf_keys(); *k != NULL; k++, n++) {
		char *text = xasprintf("%s\n", *k), *path, *errs;
		struct conf *c = load_text(text, &path, &errs);

		if (c != NULL || strstr(errs, "unknown key") != NULL ||
		    strstr(errs, "not supported") != NULL)
			fail_msg("key %s: %s", *k, c ? "loaded" : errs);
		free(text);
		done(c, path, errs);
	}
	assert_true(n > 0);
}

/* ---- fields and defaults ---------------------------------------------- */

static char *
cwd_join(const char *rel)
{
	char *cwd = getcwd(NULL, 0), *s;

	assert_non_null(cwd);
	s = xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, rel);
	free(cwd);
	return s;
}

static void
check_listen(const struct conf_listen *l, int family, const char *addr,
    int port, int optional)
{
	unsigned char bin[16];

	assert_string_equal(l->addr, addr);
	assert_int_equal(l->port, port);
	assert_int_equal(l->role, ROLE_SMTP);
	assert_int_equal(l->optional, optional);
	assert_int_equal(l->ss.ss_family, family);
	assert_int_equal(inet_pton(family, addr, bin), 1);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&l->ss;

		assert_int_equal(l->sslen, sizeof(*sin));
		assert_int_equal(ntohs(sin->sin_port), port);
		assert_memory_equal(&sin->sin_addr, bin, 4);
		return;
	}
	const struct sockaddr_in6 *sin6 = (const void *)&l->ss;

	assert_int_equal(l->sslen, sizeof(*sin6));
	assert_int_equal(ntohs(sin6->sin6_port), port);
	assert_memory_equal(&sin6->sin6_addr, bin, 16);
}

static void
test_defaults(void **state)
{
	char host[256] = "", *home = cwd_join("var"), *mbox, *errs;
	struct conf *c = load(NULL, &errs);

	(void)state;
	assert_non_null(c);
	assert_string_equal(errs, "");
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_null(c->file);
	assert_string_equal(c->hostname, host);
	assert_string_equal(c->home, home);
	assert_string_equal(c->user, "tern");
	assert_int_equal(c->user_set, 0);
	assert_int_equal(c->nlistens, 2);
	check_listen(&c->listens[0], AF_INET, "127.0.0.1", 2525, 0);
	check_listen(&c->listens[1], AF_INET6, "::1", 2525, 1);
	assert_int_equal(c->listens[0].greet_pause_ms, 0);
	assert_true(c->nlocal_domains >= 1);
	assert_string_equal(c->local_domains[0], "localhost");
	assert_true(conf_is_local_domain(c, host));
	assert_int_equal(c->recipients, RECIPIENTS_ANY);
	mbox = xasprintf("maildir:%s/mail/%%u/Maildir", home);
	assert_string_equal(c->mailbox, mbox);
	assert_int_equal(c->ntrusted, 0);
	assert_int_equal(c->message_size, 50 * 1024 * 1024);
	assert_int_equal(c->max_rcpts, 1000);
	assert_int_equal(c->line_length, 1000);
	assert_int_equal(c->max_sessions, 10000);
	assert_int_equal(c->spool_reserve, 100 * 1024 * 1024);
	assert_int_equal(c->timeout_command_ms, 5 * 60 * 1000);
	assert_int_equal(c->timeout_data_ms, 10 * 60 * 1000);
	assert_int_equal(c->timeout_message_ms, 60 * 60 * 1000);
	assert_int_equal(c->data_rate, 500);
	assert_int_equal(c->retry_first_ms, 5 * 60 * 1000);
	assert_int_equal(c->retry_max_ms, 60 * 60 * 1000);
	assert_int_equal(c->retry_lifetime_ms, 5LL * 24 * 60 * 60 * 1000);
	assert_int_equal(c->retry_warn_ms, 4 * 60 * 60 * 1000);
	assert_int_equal(c->timeout_connect_ms, 30 * 1000);
	assert_int_equal(c->timeout_remote_ms, 5 * 60 * 1000);
	assert_int_equal(c->timeout_remote_data_ms, 10 * 60 * 1000);
	assert_int_equal(c->dest_concurrency, 20);
	assert_int_equal(c->max_received, 100);
	assert_int_equal(c->nrelay_domains, 0);
	assert_null(c->relay_recipients_file);
	assert_int_equal(c->nrelay_recipient_list, 0);
	assert_int_equal(c->nroutes, 0);
	assert_null(c->smarthost);
	assert_null(c->resolver);
	assert_int_equal(conf_relay_recipient_known(c, "any", "x.example"), 1);
	assert_int_equal(conf_is_relay_domain(c, "localhost"), 0);
	assert_null(conf_route_for(c, "x.example"));
	assert_int_equal(c->ncerts, 0);
	assert_null(c->certs);
	assert_null(c->users_file);
	assert_int_equal(c->nsenders, 0);
	assert_int_equal(c->auth_failures, 3);
	assert_int_equal(c->auth_client_failures, 10);
	assert_int_equal(c->log_syslog, 0);
	assert_int_equal(c->verbose, 0);
	free(mbox);
	free(home);
	done(c, NULL, errs);
}

/* the values a file sets reach the struct in the documented units */
static void
test_fields(void **state)
{
	char *path, *errs;
	struct conf *c = load_text("hostname MX.example.org\nuser mailer\n"
	    "listen [::]:25 greet-pause=5s\nlocal-domains A.example\n"
	    "limits message-size=35M line-length=2000 spool-reserve=1G "
	    "destination-concurrency=7 received-headers=8 auth-failures=9 "
	    "auth-client-failures=100000 data-rate=2K\n"
	    "timeouts command=1m data=2m message=3m connect=3s "
	    "remote-command=4s remote-data=5s\n"
	    "retry first=1s max=2s lifetime=3s warn=6s\n"
	    "log syslog\n", &path, &errs);

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->file, path);
	assert_string_equal(c->hostname, "MX.example.org");
	assert_string_equal(c->user, "mailer");
	assert_int_equal(c->user_set, 1);
	assert_int_equal(c->nlistens, 1);
	check_listen(&c->listens[0], AF_INET6, "::", 25, 0);
	assert_int_equal(c->listens[0].greet_pause_ms, 5000);
	assert_int_equal(c->nlocal_domains, 1);
	assert_string_equal(c->local_domains[0], "a.example");
	assert_int_equal(c->message_size, 35 * 1024 * 1024);
	assert_int_equal(c->line_length, 2000);
	assert_int_equal(c->spool_reserve, 1024 * 1024 * 1024);
	assert_int_equal(c->timeout_command_ms, 60000);
	assert_int_equal(c->timeout_data_ms, 120000);
	assert_int_equal(c->timeout_message_ms, 180000);
	assert_int_equal(c->data_rate, 2048);
	assert_int_equal(c->retry_first_ms, 1000);
	assert_int_equal(c->retry_max_ms, 2000);
	assert_int_equal(c->retry_lifetime_ms, 3000);
	assert_int_equal(c->retry_warn_ms, 6000);
	assert_int_equal(c->timeout_connect_ms, 3000);
	assert_int_equal(c->timeout_remote_ms, 4000);
	assert_int_equal(c->timeout_remote_data_ms, 5000);
	assert_int_equal(c->dest_concurrency, 7);
	assert_int_equal(c->max_received, 8);
	assert_int_equal(c->auth_failures, 9);
	assert_int_equal(c->auth_client_failures, 100000);
	assert_int_equal(c->log_syslog, 1);
	assert_int_equal(c->verbose, 0);
	done(c, path, errs);
}

/* ---- $TERN_HOME ------------------------------------------------------- */

struct home_case {
	const char *what;
	const char *text;     /* NULL: embedded defaults */
	const char *env;      /* $TERN_HOME, NULL: unset */
	const char *home;     /* expected; relative: against the cwd */
	const char *mailbox;  /* expected; relative: against the cwd */
};

static const struct home_case home_cases[] = {
	{ "default is ./var", NULL, NULL, "var",
	    "var/mail/%u/Maildir" },
	{ "file sets home", "home /srv/tern\n", NULL, "/srv/tern",
	    "/srv/tern/mail/%u/Maildir" },
	{ "TERN_HOME overrides the default", NULL, "/tmp/th/", "/tmp/th",
	    "/tmp/th/mail/%u/Maildir" },
	{ "TERN_HOME overrides the file", "home /srv/tern\n", "/tmp/th",
	    "/tmp/th", "/tmp/th/mail/%u/Maildir" },
	{ "TERN_HOME relative is made absolute", NULL, "./rel//h", "rel/h",
	    "rel/h/mail/%u/Maildir" },
	{ "empty TERN_HOME is ignored", "home /srv/tern\n", "", "/srv/tern",
	    "/srv/tern/mail/%u/Maildir" },
	{ "TERN_HOME feeds $home in mailbox",
	    "home /srv/tern\nmailbox maildir:$home/box/%u\n", "/tmp/th",
	    "/tmp/th", "/tmp/th/box/%u" },
	{ "explicit mailbox is not moved by TERN_HOME",
	    "mailbox maildir:/var/mail/%u\n", "/tmp/th", "/tmp/th",
	    "/var/mail/%u" },
};

static char *
abs_or_cwd(const char *s)
{
	return s[0] == '/' ? xstrdup(s) : cwd_join(s);
}

static void
test_tern_home(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(home_cases) / sizeof(home_cases[0]); i++) {
		const struct home_case *hc = &home_cases[i];
		char *path = NULL, *errs, *home = abs_or_cwd(hc->home);
		char *mtail = abs_or_cwd(hc->mailbox);
		char *mbox = xasprintf("maildir:%s", mtail);
		struct conf *c;

		if (hc->env != NULL)
			setenv("TERN_HOME", hc->env, 1);
		c = hc->text ? load_text(hc->text, &path, &errs)
			     : load(NULL, &errs);
		unsetenv("TERN_HOME");
		if (c == NULL || strcmp(c->home, home) != 0 ||
		    strcmp(c->mailbox, mbox) != 0)
			fail_msg("%s: home %s mailbox %s; want %s %s", hc->what,
			    c ? c->home : "-", c ? c->mailbox : "-", home,
			    mbox);
		free(home);
		free(mtail);
		free(mbox);
		done(c, path, errs);
	}
}

/* ---- conf_find_path --------------------------------------------------- */

static void
test_find_path(void **state)
{
	const char *sys = access("/etc/tern/tern.conf", F_OK) == 0
	    ? "/etc/tern/tern.conf" : NULL;
	const char *got;

	(void)state;
	assert_string_equal(conf_find_path("/x/explicit.conf"),
	    "/x/explicit.conf");
	setenv("TERN_CONF", "/x/env.conf", 1);
	assert_string_equal(conf_find_path("/x/explicit.conf"),
	    "/x/explicit.conf");
	assert_string_equal(conf_find_path(NULL), "/x/env.conf");
	setenv("TERN_CONF", "", 1);
	got = conf_find_path(NULL);
	if (sys == NULL)
		assert_null(got);
	else
		assert_string_equal(got, sys);
	unsetenv("TERN_CONF");
	got = conf_find_path(NULL);
	if (sys == NULL)
		assert_null(got);
	else
		assert_string_equal(got, sys);
}

/* ---- round trip through conf_print ------------------------------------ */

/* opt_str_equal - both NULL, or the same string */
static void
opt_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_relay_equal(const struct conf_relay *a, const struct conf_relay *b)
{
	opt_str_equal(a->domain, b->domain);
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->port, b->port);
	assert_int_equal(a->mx, b->mx);
	assert_int_equal(a->tls, b->tls);
	opt_str_equal(a->auth_file, b->auth_file);
}

static void
assert_senders_equal(const struct conf_senders *a,
    const struct conf_senders *b)
{
	size_t i;

	assert_string_equal(a->user, b->user);
	assert_int_equal(a->naddrs, b->naddrs);
	for (i = 0; i < a->naddrs; i++)
		assert_string_equal(a->addrs[i], b->addrs[i]);
}

static void
assert_conf_equal(const struct conf *a, const struct conf *b)
{
	size_t i;

	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->home, b->home);
	assert_string_equal(a->user, b->user);
	/* user_set is not compared: printing makes the user explicit */
	assert_int_equal(a->nlistens, b->nlistens);
	for (i = 0; i < a->nlistens; i++) {
		const struct conf_listen *x = &a->listens[i];
		const struct conf_listen *y = &b->listens[i];

		assert_string_equal(x->addr, y->addr);
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->role, y->role);
		assert_int_equal(x->greet_pause_ms, y->greet_pause_ms);
		assert_int_equal(x->optional, y->optional);
		assert_int_equal(x->sslen, y->sslen);
		assert_memory_equal(&x->ss, &y->ss, x->sslen);
	}
	assert_int_equal(a->nlocal_domains, b->nlocal_domains);
	for (i = 0; i < a->nlocal_domains; i++)
		assert_string_equal(a->local_domains[i], b->local_domains[i]);
	assert_int_equal(a->recipients, b->recipients);
	if (a->recipients == RECIPIENTS_FILE)
		assert_string_equal(a->recipients_file, b->recipients_file);
	assert_int_equal(a->nrecipient_list, b->nrecipient_list);
	for (i = 0; i < a->nrecipient_list; i++)
		assert_string_equal(a->recipient_list[i], b->recipient_list[i]);
	assert_string_equal(a->mailbox, b->mailbox);
	assert_int_equal(a->ntrusted, b->ntrusted);
	if (a->ntrusted > 0)
		assert_memory_equal(a->trusted, b->trusted,
		    a->ntrusted * sizeof(*a->trusted));
	assert_int_equal(a->message_size, b->message_size);
	assert_int_equal(a->max_rcpts, b->max_rcpts);
	assert_int_equal(a->line_length, b->line_length);
	assert_int_equal(a->max_sessions, b->max_sessions);
	assert_int_equal(a->spool_reserve, b->spool_reserve);
	assert_int_equal(a->timeout_command_ms, b->timeout_command_ms);
	assert_int_equal(a->timeout_data_ms, b->timeout_data_ms);
	assert_int_equal(a->retry_first_ms, b->retry_first_ms);
	assert_int_equal(a->retry_max_ms, b->retry_max_ms);
	assert_int_equal(a->retry_lifetime_ms, b->retry_lifetime_ms);
	assert_int_equal(a->retry_warn_ms, b->retry_warn_ms);
	assert_int_equal(a->timeout_connect_ms, b->timeout_connect_ms);
	assert_int_equal(a->timeout_remote_ms, b->timeout_remote_ms);
	assert_int_equal(a->timeout_remote_data_ms, b->timeout_remote_data_ms);
	assert_int_equal(a->dest_concurrency, b->dest_concurrency);
	assert_int_equal(a->max_received, b->max_received);
	assert_int_equal(a->nrelay_domains, b->nrelay_domains);
	for (i = 0; i < a->nrelay_domains; i++)
		assert_string_equal(a->relay_domains[i], b->relay_domains[i]);
	assert_int_equal(a->relay_recipients_file == NULL,
	    b->relay_recipients_file == NULL);
	if (a->relay_recipients_file != NULL)
		assert_string_equal(a->relay_recipients_file,
		    b->relay_recipients_file);
	assert_int_equal(a->nrelay_recipient_list, b->nrelay_recipient_list);
	for (i = 0; i < a->nrelay_recipient_list; i++)
		assert_string_equal(a->relay_recipient_list[i],
		    b->relay_recipient_list[i]);
	assert_int_equal(a->nroutes, b->nroutes);
	for (i = 0; i < a->nroutes; i++)
		assert_relay_equal(&a->routes[i], &b->routes[i]);
	assert_int_equal(a->smarthost == NULL, b->smarthost == NULL);
	if (a->smarthost != NULL)
		assert_relay_equal(a->smarthost, b->smarthost);
	assert_int_equal(a->resolver == NULL, b->resolver == NULL);
	if (a->resolver != NULL)
		assert_string_equal(a->resolver, b->resolver);
	assert_int_equal(a->ncerts, b->ncerts);
	for (i = 0; i < a->ncerts; i++) {
		assert_string_equal(a->certs[i].cert, b->certs[i].cert);
		assert_string_equal(a->certs[i].key, b->certs[i].key);
	}
	assert_int_equal(a->tls_ciphers, b->tls_ciphers);
	opt_str_equal(a->users_file, b->users_file);
	assert_int_equal(a->nsenders, b->nsenders);
	for (i = 0; i < a->nsenders; i++)
		assert_senders_equal(&a->senders[i], &b->senders[i]);
	assert_int_equal(a->auth_failures, b->auth_failures);
	assert_int_equal(a->auth_client_failures, b->auth_client_failures);
	assert_int_equal(a->log_syslog, b->log_syslog);
	assert_int_equal(a->verbose, b->verbose);
}

struct trip_case {
	const char *what;
	const char *text; /* NULL: embedded defaults; %R: a recipients file,
	                   * %Q: a relay-recipients file, %D: the fixtures */
	const char *env;  /* $TERN_HOME or NULL */
};

static const struct trip_case trip_cases[] = {
	{ "embedded defaults", NULL, NULL },
	{ "embedded defaults under TERN_HOME", NULL, "/tmp/tern trip/h" },
	{ "every key set",
	    "hostname mx.example.org\nhome /srv/tern\nuser mailer\n"
	    "listen 0.0.0.0:25 greet-pause=5s\nlisten [::]:25\n"
	    "listen [::1]:2526 optional greet-pause=90 greet-pass=2h "
	    "improper-pipelining=allow\n"
	    "local-domains example.org Example.NET\nrecipients file:%R\n"
	    "mailbox \"maildir:/var/mail box/%u/Maildir\"\n"
	    "trusted-networks 127.0.0.0/8 ::1 198.51.100.0/24 2001:db8::/32\n"
	    "limits message-size=1536 recipients=7 line-length=80 sessions=3 "
	    "spool-reserve=0 auth-failures=5 auth-client-failures=20 "
	    "data-rate=1K client-sessions=0 client-ipv6-prefix=56 "
	    "client-errors=1000\n"
	    "timeouts command=90s data=1d message=2h connect=2m "
	    "remote-command=1h "
	    "remote-data=1s\n"
	    "retry first=1s max=365d lifetime=36h warn=0\nlog syslog verbose\n"
	    "relay-domains Dma.org lists.dma.org\nrelay-recipients file:%Q\n"
	    "route dma.org [dmapub.dma.org]:2525 tls=verify auth=/etc/t/s "
	    "ca=%D/cert.pem\n"
	    "route lists.dma.org lists.example\n"
	    "route v6.example [2001:db8::1] tls=none\n"
	    "route v4.example 198.51.100.7:26 \"auth=/a b/c\" tls=encrypt\n"
	    "smarthost relay.example.net:587 tls=encrypt auth=/etc/tern/x\n"
	    "resolver [2001:db8::53]:5353\n"
	    "listen 0.0.0.0:587 role=submission\n"
	    "listen [::]:465 role=submissions greet-pause=1s\n"
	    "tls cert=%D/cert.pem key=%D/key.pem\n"
	    "tls \"cert=%D/a b.pem\" key=%D/key2.pem\n"
	    "tls-ciphers compat\n"
	    "users %D/users\n"
	    "senders PaulV@canonical.org paulv@canonical.org @Lists.example\n"
	    "senders bob bob@example.org\n",
	    NULL },
	{ "outbound forms, second set",
	    "smarthost [198.51.100.25]\nresolver 198.51.100.53\n"
	    "retry warn=90m\n"
	    "limits destination-concurrency=1000 received-headers=1\n",
	    NULL },
	{ "resolver with IPv4 port", "resolver 127.0.0.1:5353\n", NULL },
	{ "mailbox lmtp on a socket",
	    "mailbox lmtp:unix:/run/dovecot/lmtp\nhome /srv/t\n", NULL },
	{ "mailbox lmtp to IPv6", "mailbox lmtp:[::1]:24\n", NULL },
	{ "quotes, backslashes and % in home",
	    "home \"/tmp/50%\\\"q\\\\ x#\"\nrecipients system\nlog stderr\n",
	    NULL },
	{ "trusted none", "trusted-networks none\nhostname box\n", NULL },
};

/* trip_text - text with %R and %Q replaced by the two list files */
static char *
trip_text(const char *text, const char *recfile, const char *relayfile)
{
	struct buf b;
	const char *s;

	buf_init(&b);
	for (s = text; *s; s++) {
		if (s[0] == '%' && (s[1] == 'R' || s[1] == 'Q')) {
			buf_puts(&b, s[1] == 'R' ? recfile : relayfile);
			s++;
			continue;
		}
		buf_putc(&b, *s);
	}
	return b.data;
}

/* trip - load, print, load the print, print again: nothing may change */
static void
trip(const struct trip_case *tc, const char *recfile, const char *relayfile)
{
	char *text, *path = NULL, *path2, *errs, *errs2, *out, *out2;
	struct conf *a, *b;

	if (tc->env != NULL)
		setenv("TERN_HOME", tc->env, 1);
	text = tc->text ? trip_text(tc->text, recfile, relayfile) : NULL;
	a = text ? load_text(text, &path, &errs) : load(NULL, &errs);
	if (a == NULL)
		fail_msg("%s: %s", tc->what, errs);
	out = printed(a);
	b = load_text(out, &path2, &errs2);
	if (b == NULL)
		fail_msg("%s: printed form not accepted: %s\n%s", tc->what,
		    errs2, out);
	out2 = printed(b);
	unsetenv("TERN_HOME");
	assert_string_equal(errs2, "");
	/* the first line names the source, so it differs */
	assert_string_equal(strchr(out, '\n'), strchr(out2, '\n'));
	assert_true(strncmp(out2, "# ", 2) == 0 && strstr(out2, path2) &&
	    strchr(out2, '\n') > strstr(out2, path2));
	assert_conf_equal(a, b);
	free(text);
	free(out);
	free(out2);
	done(a, path, errs);
	done(b, path2, errs2);
}

static void
test_round_trip(void **state)
{
	char *recfile = write_conf("alice\nbob@example.org\n");
	char *relayfile = write_conf("pea@dma.org\n@lists.dma.org\n");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(trip_cases) / sizeof(trip_cases[0]); i++)
		trip(&trip_cases[i], recfile, relayfile);
	unlink(recfile);
	free(recfile);
	unlink(relayfile);
	free(relayfile);
}

static void
test_print_source(void **state)
{
	char *errs, *out;
	struct conf *c = load(NULL, &errs);

	(void)state;
	assert_non_null(c);
	out = printed(c);
	assert_true(strncmp(out, "# tern configuration from embedded "
	    "defaults\n", strlen("# tern configuration from embedded "
	    "defaults\n")) == 0);
	/* one line per key, defaults included */
	assert_true(has_line(out, "listen 127.0.0.1:2525 role=smtp"));
	assert_true(has_line(out, "listen [::1]:2525 role=smtp optional"));
	assert_true(has_line(out, "user tern"));
	assert_true(has_line(out, "recipients any"));
	assert_true(has_line(out, "trusted-networks none"));
	assert_true(has_line(out, "limits message-size=50M recipients=1000 "
	    "line-length=1000 sessions=10000 spool-reserve=100M "
	    "destination-concurrency=20 received-headers=100 auth-failures=3 "
	    "auth-client-failures=10 "
	    "local-concurrency=20 mailbox-concurrency=2 data-rate=500 "
	    "client-sessions=50 client-connect-rate=600 "
	    "client-message-rate=0 client-recipient-rate=0 client-errors=20 "
	    "client-invalid-recipients=20 client-ipv6-prefix=64 "
	    "dnsbl-threshold=1"));
	assert_true(has_line(out, "timeouts command=5m data=10m message=1h "
	    "connect=30s remote-command=5m remote-data=10m delivery=10m proxy=10s"));
	assert_true(has_line(out, "retry first=5m max=1h lifetime=5d "
	    "warn=4h"));
	assert_true(has_line(out, "# relay-domains: none"));
	assert_true(has_line(out, "# smarthost: none, other domains by MX"));
	assert_true(has_line(out, "# tls: none, STARTTLS is not offered"));
	assert_true(has_line(out, "# users: not set, AUTH is not offered"));
	assert_null(strstr(out, "\ntls "));
	assert_null(strstr(out, "\nusers "));
	assert_null(strstr(out, "\nsenders "));
	/* nothing printed without "#" that the defaults do not have */
	assert_null(strstr(out, "\nroute "));
	assert_null(strstr(out, "\nsmarthost "));
	assert_null(strstr(out, "\nresolver "));
	assert_null(strstr(out, "\nrelay-domains "));
	assert_null(strstr(out, "\nrelay-recipients "));
	assert_true(has_line(out, "log stderr"));
	free(out);
	done(c, NULL, errs);
}

/* ---- trusted-networks matcher ----------------------------------------- */

struct trust_case {
	const char *what;
	const char *nets;   /* the trusted-networks value */
	const char *client; /* numeric address */
	int want;
};

static const struct trust_case trust_cases[] = {
	{ "inside /8", "10.0.0.0/8", "10.255.1.2", 1 },
	{ "outside /8", "10.0.0.0/8", "11.0.0.1", 0 },
	{ "first of /25", "192.168.1.128/25", "192.168.1.128", 1 },
	{ "last of /25", "192.168.1.128/25", "192.168.1.255", 1 },
	{ "just below /25", "192.168.1.128/25", "192.168.1.127", 0 },
	{ "bare IPv4 is /32", "127.0.0.1", "127.0.0.1", 1 },
	{ "bare IPv4 neighbour", "127.0.0.1", "127.0.0.2", 0 },
	{ "v4-mapped client in IPv4 net", "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
	{ "v4-mapped client outside", "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
	{ "v4-compatible is not mapped", "10.0.0.0/8", "::10.1.2.3", 0 },
	{ "v4-mapped client in ::/0", "::/0", "::ffff:1.2.3.4", 1 },
	{ "bare IPv6 is /128", "::1", "::1", 1 },
	{ "bare IPv6 neighbour", "::1", "::2", 0 },
	{ "inside /32", "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "outside /32", "2001:db8::/32", "2001:db9::1", 0 },
	{ "inside /33", "2001:db8::/33", "2001:db8:7fff::1", 1 },
	{ "outside /33", "2001:db8::/33", "2001:db8:8000::1", 0 },
	{ "IPv4 /0 takes every IPv4", "0.0.0.0/0", "203.0.113.9", 1 },
	{ "IPv4 /0 takes no IPv6", "0.0.0.0/0", "2001:db8::1", 0 },
	{ "IPv6 /0 takes no IPv4", "::/0", "1.2.3.4", 0 },
	{ "second network of a list", "10.0.0.0/8 ::1 198.51.100.0/24",
	    "198.51.100.77", 1 },
	{ "none", "none", "127.0.0.1", 0 },
};

static void
test_trusted(void **state)
{
	struct sockaddr_storage ss;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(trust_cases) / sizeof(trust_cases[0]); i++) {
		const struct trust_case *tc = &trust_cases[i];
		char *text = xasprintf("trusted-networks %s\n", tc->nets);
		char *path, *errs;
		struct conf *c = load_text(text, &path, &errs);

		assert_non_null(c);
		client_sa(tc->client, &ss);
		if (conf_is_trusted(c, (struct sockaddr *)&ss) != tc->want)
			fail_msg("%s: %s in %s: want %d", tc->what,
			    tc->client, tc->nets, tc->want);
		free(text);
		done(c, path, errs);
	}
}

/* a unix-socket client (tern send) is never "trusted" by address */
static void
test_trusted_unix(void **state)
{
	struct sockaddr_un sun;
	char *path, *errs;
	struct conf *c = load_text("trusted-networks 0.0.0.0/0 ::/0\n", &path,
	    &errs);

	(void)state;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_non_null(c);
	assert_int_equal(conf_is_trusted(c, (struct sockaddr *)&sun), 0);
	done(c, path, errs);
}

/* ---- local domains and recipients ------------------------------------- */

struct domain_case {
	const char *domain;
	int want;
};

static const struct domain_case domain_cases[] = {
	{ "example.org", 1 },
	{ "EXAMPLE.Org", 1 },
	{ "b.example", 1 },
	{ "sub.example.org", 0 },
	{ "example.org.evil", 0 },
	{ "org", 0 },
	{ "localhost", 0 }, /* not in an explicit list */
	{ "", 0 },
};

static void
test_local_domain(void **state)
{
	char *path, *errs;
	struct conf *c = load_text("local-domains Example.org b.example\n",
	    &path, &errs);
	size_t i;

	(void)state;
	assert_non_null(c);
	for (i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++)
		if (conf_is_local_domain(c, domain_cases[i].domain) !=
		    domain_cases[i].want)
			fail_msg("domain \"%s\": want %d",
			    domain_cases[i].domain, domain_cases[i].want);
	done(c, path, errs);
}

struct rcpt_case {
	const char *what;
	const char *local;
	const char *domain;
	int want;
};

static const char recipients_text[] =
	"# who gets mail\n"
	"Alice\n"
	"bob@Example.ORG   # bob only at example.org\n"
	"\n"
	"carol@example.net\n"
	"  dave\t\n"
	"alice\n";

static const struct rcpt_case rcpt_cases[] = {
	{ "bare entry, any domain", "alice", "example.org", 1 },
	{ "bare entry, other domain", "alice", "other.example", 1 },
	{ "entry with domain", "bob", "example.org", 1 },
	{ "domain compared in any case", "bob", "EXAMPLE.org", 1 },
	{ "entry with domain, other domain", "bob", "example.net", 0 },
	{ "second domain entry", "carol", "example.net", 1 },
	{ "second domain entry, other domain", "carol", "example.org", 0 },
	{ "indented entry with tab", "dave", "x.example", 1 },
	{ "not listed", "eve", "example.org", 0 },
	{ "comment is not an entry", "who", "example.org", 0 },
	{ "empty local part", "", "example.org", 0 },
};

static void
test_recipients_file(void **state)
{
	char *rec = write_conf(recipients_text), *text, *path, *errs;
	struct conf *c;
	size_t i;

	(void)state;
	text = xasprintf("recipients file:%s\n", rec);
	c = load_text(text, &path, &errs);
	assert_non_null(c);
	assert_int_equal(c->recipients, RECIPIENTS_FILE);
	assert_string_equal(c->recipients_file, rec);
	/* sorted, lower-cased, the repeated alice dropped */
	assert_int_equal(c->nrecipient_list, 4);
	assert_string_equal(c->recipient_list[0], "alice");
	assert_string_equal(c->recipient_list[1], "bob@example.org");
	assert_string_equal(c->recipient_list[2], "carol@example.net");
	assert_string_equal(c->recipient_list[3], "dave");
	for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++)
		if (conf_recipient_known(c, rcpt_cases[i].local,
		    rcpt_cases[i].domain) != rcpt_cases[i].want)
			fail_msg("%s: want %d", rcpt_cases[i].what,
			    rcpt_cases[i].want);
	unlink(rec);
	free(rec);
	free(text);
	done(c, path, errs);
}

/* bad entries are reported at their own line of the recipients file */
static void
test_recipients_file_errors(void **state)
{
	char *rec = write_conf("ok\nbad entry\n@bad..dom\nx@bad..dom\n"
	    "x@\nq\"x\n@ok.example\n"), *text, *path, *errs, *want;
	struct conf *c;

	(void)state;
	text = xasprintf("# r\nrecipients file:%s\n", rec);
	c = load_text(text, &path, &errs);
	want = xasprintf(
	    "%1$s:2: \"bad entry\" is not a recipient (local, local@domain or "
	    "@domain)\n"
	    "%1$s:3: \"@bad..dom\" is not a recipient (local, local@domain or "
	    "@domain)\n"
	    "%1$s:4: \"x@bad..dom\" is not a recipient (local, local@domain or "
	    "@domain)\n"
	    "%1$s:5: \"x@\" is not a recipient (local, local@domain or "
	    "@domain)\n"
	    "%1$s:6: \"q\"x\" is not a recipient (local, local@domain or "
	    "@domain)\n",
	    rec);
	assert_null(c);
	assert_string_equal(errs, want);
	unlink(rec);
	free(rec);
	free(text);
	free(want);
	done(c, path, errs);
}

static void
test_recipients_modes(void **state)
{
	char *path, *errs;
	struct conf *c = load_text("recipients system\n", &path, &errs);

	(void)state;
	assert_non_null(c);
	/* root and accounts below min-uid get mail only through aliases */
	assert_int_equal(conf_recipient_known(c, "root", "example.org"), 0);
	assert_int_equal(conf_recipient_known(c, "daemon", "example.org"), 0);
	assert_int_equal(conf_recipient_known(c, "nobody", "example.org"), 1);
	assert_int_equal(conf_recipient_known(c, "tern-no-such-user-q7",
	    "example.org"), 0);
	done(c, path, errs);
	c = load_text("recipients system min-uid=1\n", &path, &errs);
	assert_non_null(c);
	assert_int_equal(conf_recipient_known(c, "root", "example.org"), 0);
	assert_int_equal(conf_recipient_known(c, "daemon", "example.org"), 1);
	done(c, path, errs);
	c = load_text("recipients any\n", &path, &errs);
	assert_non_null(c);
	assert_int_equal(conf_recipient_known(c, "tern-no-such-user-q7",
	    "example.org"), 1);
	done(c, path, errs);
}

/* ---- relay domains, relay recipients, routes, resolver ---------------- */

static const struct domain_case relay_domain_cases[] = {
	{ "dma.org", 1 },
	{ "DMA.Org", 1 },
	{ "lists.dma.org", 1 },
	{ "pub.dma.org", 0 },      /* subdomains are not included */
	{ "org", 0 },
	{ "example.org", 0 },      /* a local domain is not a relay domain */
	{ "", 0 },
};

static void
test_relay_domain(void **state)
{
	char *path, *errs;
	struct conf *c = load_text("local-domains example.org\n"
	    "relay-domains Dma.org\nrelay-domains lists.dma.org\n", &path,
	    &errs);
	size_t i;

	(void)state;
	assert_non_null(c);
	for (i = 0; i < sizeof(relay_domain_cases) /
	     sizeof(relay_domain_cases[0]); i++)
		if (conf_is_relay_domain(c, relay_domain_cases[i].domain) !=
		    relay_domain_cases[i].want)
			fail_msg("relay domain \"%s\": want %d",
			    relay_domain_cases[i].domain,
			    relay_domain_cases[i].want);
	done(c, path, errs);
}

static const char relay_recipients_text[] =
	"# dma.org: the users of the mailbox server\n"
	"Pea@DMA.org\n"
	"postmaster@dma.org   # RFC 5321 4.5.1\n"
	"\n"
	"  bob+list@dma.org\t\n"
	"@Lists.dma.org\n"
	"pea@dma.org\n";

static const struct rcpt_case relay_rcpt_cases[] = {
	{ "listed address", "pea", "dma.org", 1 },
	{ "local part in any case", "PEA", "dma.org", 1 },
	{ "domain in any case", "pea", "Dma.ORG", 1 },
	{ "second address", "postmaster", "dma.org", 1 },
	{ "indented entry with a subaddress", "bob+list", "dma.org", 1 },
	{ "subaddress is not removed", "bob", "dma.org", 0 },
	{ "other subaddress", "pea+x", "dma.org", 0 },
	{ "not listed", "eve", "dma.org", 0 },
	{ "address of another domain", "pea", "lists.dma.org", 1 },
	{ "whole domain: any local part", "anything", "lists.dma.org", 1 },
	{ "whole domain: any case", "X", "LISTS.dma.org", 1 },
	{ "whole domain does not cover subdomains", "x", "a.lists.dma.org",
	    0 },
	{ "domain not mentioned", "pea", "other.example", 0 },
	{ "comment is not an entry", "users", "dma.org", 0 },
	{ "empty local part of a listed domain", "", "dma.org", 0 },
};

static void
test_relay_recipients_file(void **state)
{
	char *rec = write_conf(relay_recipients_text), *text, *path, *errs;
	struct conf *c;
	size_t i;

	(void)state;
	text = xasprintf("relay-domains dma.org lists.dma.org\n"
	    "relay-recipients file:%s\n", rec);
	c = load_text(text, &path, &errs);
	assert_non_null(c);
	assert_string_equal(c->relay_recipients_file, rec);
	/* sorted, lower-cased, the repeated pea dropped */
	assert_int_equal(c->nrelay_recipient_list, 4);
	assert_string_equal(c->relay_recipient_list[0], "@lists.dma.org");
	assert_string_equal(c->relay_recipient_list[1], "bob+list@dma.org");
	assert_string_equal(c->relay_recipient_list[2], "pea@dma.org");
	assert_string_equal(c->relay_recipient_list[3], "postmaster@dma.org");
	for (i = 0; i < sizeof(relay_rcpt_cases) /
	     sizeof(relay_rcpt_cases[0]); i++)
		if (conf_relay_recipient_known(c, relay_rcpt_cases[i].local,
		    relay_rcpt_cases[i].domain) != relay_rcpt_cases[i].want)
			fail_msg("%s: want %d", relay_rcpt_cases[i].what,
			    relay_rcpt_cases[i].want);
	/* the local recipients list is a different thing */
	assert_int_equal(conf_recipient_known(c, "eve", "dma.org"), 1);
	unlink(rec);
	free(rec);
	free(text);
	done(c, path, errs);
}

/* an empty file refuses every relay recipient; no key accepts them all */
static void
test_relay_recipients_empty(void **state)
{
	char *rec = write_conf("# nobody yet\n"), *text, *path, *errs;
	struct conf *c;

	(void)state;
	text = xasprintf("relay-domains dma.org\nrelay-recipients file:%s\n",
	    rec);
	c = load_text(text, &path, &errs);
	assert_non_null(c);
	assert_int_equal(c->nrelay_recipient_list, 0);
	assert_int_equal(conf_relay_recipient_known(c, "pea", "dma.org"), 0);
	done(c, path, errs);
	c = load_text("relay-domains dma.org\n", &path, &errs);
	assert_non_null(c);
	assert_int_equal(conf_relay_recipient_known(c, "pea", "dma.org"), 1);
	unlink(rec);
	free(rec);
	free(text);
	done(c, path, errs);
}

/* bad entries are reported at their own line of the relay-recipients file */
static void
test_relay_recipients_file_errors(void **state)
{
	char *rec = write_conf("ok@dma.org\npea\n@\nx@bad..dom\n"
	    "a b@dma.org\n@[198.51.100.1]\nq\"x@dma.org\n");
	char *text, *path, *errs;
	char *want;
	struct conf *c;

	(void)state;
	text = xasprintf("# r\nrelay-recipients file:%s\n", rec);
	c = load_text(text, &path, &errs);
	want = xasprintf(
	    "%1$s:2: \"pea\" is not a relay recipient (local@domain or "
	    "@domain)\n"
	    "%1$s:3: \"@\" is not a relay recipient (local@domain or "
	    "@domain)\n"
	    "%1$s:4: \"x@bad..dom\" is not a relay recipient (local@domain or "
	    "@domain)\n"
	    "%1$s:5: \"a b@dma.org\" is not a relay recipient (local@domain "
	    "or @domain)\n"
	    "%1$s:6: \"@[198.51.100.1]\" is not a relay recipient "
	    "(local@domain or @domain)\n"
	    "%1$s:7: \"q\"x@dma.org\" is not a relay recipient (local@domain "
	    "or @domain)\n",
	    rec);
	assert_null(c);
	assert_string_equal(errs, want);
	unlink(rec);
	free(rec);
	free(text);
	free(want);
	done(c, path, errs);
}

/* the struct conf_relay a route or smarthost line makes */
struct relay_case {
	const char *what;
	const char *text;    /* one route or smarthost line */
	const char *domain;  /* route domain asked for; NULL: smarthost */
	const char *host;
	int port;
	int mx;
	enum tls_policy tls;
	const char *auth;
};

static const struct relay_case relay_cases[] = {
	{ "[host]:port: no MX", "route dma.org [dmapub.dma.org]:25\n",
	    "dma.org", "dmapub.dma.org", 25, 0, TLS_MAY, NULL },
	{ "[host]: port 25", "route dma.org [dmapub.dma.org]\n", "dma.org",
	    "dmapub.dma.org", 25, 0, TLS_MAY, NULL },
	{ "host:port: MX of host", "route dma.org Relay.Example:2525\n",
	    "dma.org", "relay.example", 2525, 1, TLS_MAY, NULL },
	{ "host: MX of host, port 25", "route dma.org relay.example\n",
	    "dma.org", "relay.example", 25, 1, TLS_MAY, NULL },
	{ "IPv4 without brackets: no MX", "route dma.org 198.51.100.1:26\n",
	    "dma.org", "198.51.100.1", 26, 0, TLS_MAY, NULL },
	{ "IPv6 canonical", "route dma.org [2001:DB8::0:1]:27\n", "dma.org",
	    "2001:db8::1", 27, 0, TLS_MAY, NULL },
	{ "domain asked in any case", "route dma.org [x.example]\n",
	    "DMA.ORG", "x.example", 25, 0, TLS_MAY, NULL },
	{ "route domain written in any case", "route DMA.org [x.example]\n",
	    "dma.org", "x.example", 25, 0, TLS_MAY, NULL },
	{ "tls=none", "route dma.org [x.example] tls=none\n", "dma.org",
	    "x.example", 25, 0, TLS_NONE, NULL },
	{ "tls=encrypt", "route dma.org [x.example] tls=encrypt\n", "dma.org",
	    "x.example", 25, 0, TLS_ENCRYPT, NULL },
	{ "tls=verify and auth",
	    "route dma.org [x.example] tls=verify auth=/etc/tern/s\n",
	    "dma.org", "x.example", 25, 0, TLS_VERIFY, "/etc/tern/s" },
	{ "smarthost", "smarthost [relay.example.net]:587 auth=/s\n", NULL,
	    "relay.example.net", 587, 0, TLS_MAY, "/s" },
	{ "smarthost by MX", "smarthost relay.example.net tls=verify\n", NULL,
	    "relay.example.net", 25, 1, TLS_VERIFY, NULL },
};

static void
test_relay_fields(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(relay_cases) / sizeof(relay_cases[0]); i++) {
		const struct relay_case *rc = &relay_cases[i];
		char *path, *errs;
		struct conf *c = load_text(rc->text, &path, &errs);
		const struct conf_relay *r;

		if (c == NULL)
			fail_msg("%s: %s", rc->what, errs);
		r = rc->domain ? conf_route_for(c, rc->domain) : c->smarthost;
		if (r == NULL)
			fail_msg("%s: no relay", rc->what);
		if (rc->domain != NULL)
			assert_string_equal(r->domain, "dma.org");
		else
			assert_null(r->domain);
		if (strcmp(r->host, rc->host) != 0 || r->port != rc->port ||
		    r->mx != rc->mx || r->tls != rc->tls)
			fail_msg("%s: got %s %d mx=%d tls=%d", rc->what,
			    r->host, r->port, r->mx, r->tls);
		opt_str_equal(r->auth_file, rc->auth);
		done(c, path, errs);
	}
}

struct route_for_case {
	const char *domain;
	const char *host; /* the route's host, NULL: no route */
};

static const struct route_for_case route_for_cases[] = {
	{ "dma.org", "dmapub.dma.org" },
	{ "Dma.Org", "dmapub.dma.org" },
	{ "b.example", "relay.b.example" },
	{ "pub.dma.org", NULL },   /* exact match only */
	{ "org", NULL },
	{ "dma.org.evil", NULL },
	{ "other.example", NULL }, /* the smarthost is not a route */
	{ "", NULL },
};

static void
test_route_for(void **state)
{
	char *path, *errs;
	struct conf *c = load_text("route dma.org [dmapub.dma.org]\n"
	    "route B.example relay.b.example:2525\n"
	    "smarthost [smart.example]\n", &path, &errs);
	const struct conf_relay *r;
	size_t i;

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->nroutes, 2);
	for (i = 0; i < sizeof(route_for_cases) / sizeof(route_for_cases[0]);
	     i++) {
		r = conf_route_for(c, route_for_cases[i].domain);
		if (route_for_cases[i].host == NULL && r == NULL)
			continue;
		if (route_for_cases[i].host == NULL || r == NULL ||
		    strcmp(r->host, route_for_cases[i].host) != 0)
			fail_msg("route for \"%s\": want %s, got %s",
			    route_for_cases[i].domain,
			    route_for_cases[i].host ? route_for_cases[i].host
						    : "none",
			    r ? r->host : "none");
	}
	done(c, path, errs);
}

/* resolver is kept in libunbound's forwarder syntax */
struct resolver_case {
	const char *text;
	const char *stored;
};

static const struct resolver_case resolver_cases[] = {
	{ "resolver 198.51.100.53\n", "198.51.100.53" },
	{ "resolver 198.51.100.53:53\n", "198.51.100.53@53" },
	{ "resolver 127.0.0.1:5353\n", "127.0.0.1@5353" },
	{ "resolver [2001:DB8::53]:5353\n", "2001:db8::53@5353" },
	{ "resolver 2001:db8:0:0::53\n", "2001:db8::53" },
	{ "resolver [::1]\n", "::1" },
	{ "resolver [198.51.100.1]:54\n", "198.51.100.1@54" },
};

static void
test_resolver_stored(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(resolver_cases) / sizeof(resolver_cases[0]);
	     i++) {
		char *path, *errs;
		struct conf *c = load_text(resolver_cases[i].text, &path,
		    &errs);

		if (c == NULL || c->resolver == NULL ||
		    strcmp(c->resolver, resolver_cases[i].stored) != 0)
			fail_msg("%s: want %s, got %s", resolver_cases[i].text,
			    resolver_cases[i].stored,
			    c && c->resolver ? c->resolver : "-");
		done(c, path, errs);
	}
}

/* ---- tls, users, senders ---------------------------------------------- */

/* the certificates in file order (the first is the default), paths kept */
static void
test_tls_fields(void **state)
{
	char *path, *errs, *want;
	struct conf *c = load_text("tls cert=%D/cert.pem key=%D/key.pem\n"
	    "listen 127.0.0.1:587 role=submission\n"
	    "tls key=%D/key2.pem cert=%D/cert2.pem\nusers %D/users\n", &path,
	    &errs);
	static const char *const want_files[][2] = {
		{ "cert.pem", "key.pem" }, { "cert2.pem", "key2.pem" },
	};
	size_t i;

	(void)state;
	assert_non_null(c);
	assert_string_equal(errs, "");
	assert_int_equal(c->ncerts, 2);
	for (i = 0; i < 2; i++) {
		want = xasprintf("%s/%s", fixdir, want_files[i][0]);
		assert_string_equal(c->certs[i].cert, want);
		free(want);
		want = xasprintf("%s/%s", fixdir, want_files[i][1]);
		assert_string_equal(c->certs[i].key, want);
		free(want);
	}
	want = xasprintf("%s/users", fixdir);
	assert_string_equal(c->users_file, want);
	free(want);
	assert_int_equal(c->nlistens, 1);
	assert_int_equal(c->listens[0].role, ROLE_SUBMISSION);
	done(c, path, errs);
}

/* the senders lines as stored: user as written, addresses lower-cased,
 * repeated addresses dropped, file order kept */
static void
test_senders_fields(void **state)
{
	char *path, *errs;
	struct conf *c = load_text("senders PaulV@Canonical.ORG "
	    "PaulV@Canonical.ORG @Lists.Example postmaster@canonical.org\n"
	    "senders bob Bob@Example.org\n", &path, &errs);

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->nsenders, 2);
	assert_string_equal(c->senders[0].user, "PaulV@Canonical.ORG");
	assert_int_equal(c->senders[0].naddrs, 3);
	assert_string_equal(c->senders[0].addrs[0], "paulv@canonical.org");
	assert_string_equal(c->senders[0].addrs[1], "@lists.example");
	assert_string_equal(c->senders[0].addrs[2], "postmaster@canonical.org");
	assert_string_equal(c->senders[1].user, "bob");
	assert_int_equal(c->senders[1].naddrs, 1);
	assert_string_equal(c->senders[1].addrs[0], "bob@example.org");
	done(c, path, errs);
}

struct sender_case {
	const char *what;
	const char *user;
	const char *addr;
	int want;
};

/*
 * Against: local-domains canonical.org example.org; senders for
 * "PaulV@canonical.org" and "list"; none for the other users.
 */
static const char sender_conf[] =
	"local-domains Canonical.org example.org\n"
	"senders PaulV@canonical.org paulv@canonical.org @Lists.example "
	"postmaster@example.org\n"
	"senders list list@lists.example\n";

static const struct sender_case sender_cases[] = {
	/* the null sender */
	{ "null sender, user with senders", "paulv@canonical.org", "", 1 },
	{ "null sender, user without senders", "alice", "", 1 },
	{ "null sender, address user without senders", "a@x.example", "",
	    1 },
	/* a senders line */
	{ "senders lists the address", "paulv@canonical.org",
	    "paulv@canonical.org", 1 },
	{ "senders: address in any case", "paulv@canonical.org",
	    "PaulV@Canonical.ORG", 1 },
	{ "senders: user in any case", "PAULV@canonical.org",
	    "paulv@canonical.org", 1 },
	{ "senders: second address", "paulv@canonical.org",
	    "postmaster@example.org", 1 },
	{ "senders: @domain takes any local part", "paulv@canonical.org",
	    "anyone@lists.example", 1 },
	{ "senders: @domain in any case", "paulv@canonical.org",
	    "x@LISTS.Example", 1 },
	{ "senders: @domain is not its subdomains", "paulv@canonical.org",
	    "x@a.lists.example", 0 },
	{ "senders: @domain is not a parent domain", "paulv@canonical.org",
	    "x@example", 0 },
	{ "senders: not listed", "paulv@canonical.org",
	    "alice@canonical.org", 0 },
	{ "senders replace the default (own domain elsewhere)", "list",
	    "list@example.org", 0 },
	{ "senders replace the default (own domain)", "list",
	    "list@canonical.org", 0 },
	{ "senders of a bare name", "list", "list@lists.example", 1 },
	{ "senders: subaddress is another address", "paulv@canonical.org",
	    "paulv+x@canonical.org", 0 },
	/* default, name with '@': that address only */
	{ "address user: its address", "bob@example.org", "bob@example.org",
	    1 },
	{ "address user: any case", "Bob@Example.org", "BOB@example.ORG", 1 },
	{ "address user: other local domain", "bob@example.org",
	    "bob@canonical.org", 0 },
	{ "address user: other local part", "bob@example.org",
	    "rob@example.org", 0 },
	{ "address user: foreign domain is its own", "me@elsewhere.example",
	    "me@elsewhere.example", 1 },
	{ "address user: subaddress", "bob@example.org",
	    "bob+x@example.org", 0 },
	/* default, bare name: name@ each local domain */
	{ "bare user: first local domain", "alice", "alice@canonical.org", 1 },
	{ "bare user: second local domain", "alice", "alice@example.org", 1 },
	{ "bare user: any case", "Alice", "ALICE@Canonical.ORG", 1 },
	{ "bare user: not a local domain", "alice", "alice@elsewhere.example",
	    0 },
	{ "bare user: subdomain of a local domain", "alice",
	    "alice@mail.example.org", 0 },
	{ "bare user: other local part", "alice", "bob@example.org", 0 },
	{ "bare user: longer local part", "alice", "alicex@example.org", 0 },
	{ "bare user: shorter local part", "alice", "alic@example.org", 0 },
	{ "bare user: subaddress", "alice", "alice+tag@example.org", 0 },
	/* addresses that are no address */
	{ "no '@'", "alice", "alice", 0 },
	{ "no local part", "alice", "@example.org", 0 },
	{ "no domain", "alice", "alice@", 0 },
	{ "no local part, @domain sender", "paulv@canonical.org",
	    "@lists.example", 0 },
};

static void
test_sender_allowed(void **state)
{
	char *path, *errs;
	struct conf *c = load_text(sender_conf, &path, &errs);
	size_t i;

	(void)state;
	if (c == NULL)
		fail_msg("%s", errs);
	for (i = 0; i < sizeof(sender_cases) / sizeof(sender_cases[0]); i++) {
		const struct sender_case *sc = &sender_cases[i];

		if (conf_sender_allowed(c, sc->user, sc->addr) != sc->want)
			fail_msg("%s: user %s sender <%s>: want %d", sc->what,
			    sc->user, sc->addr, sc->want);
	}
	done(c, path, errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_valid, setup_env),
		cmocka_unit_test_setup(test_invalid, setup_env),
		cmocka_unit_test_setup(test_nul_byte, setup_env),
		cmocka_unit_test_setup(test_missing_file, setup_env),
		cmocka_unit_test_setup(test_keys_known, setup_env),
		cmocka_unit_test_setup(test_defaults, setup_env),
		cmocka_unit_test_setup(test_fields, setup_env),
		cmocka_unit_test_setup(test_tern_home, setup_env),
		cmocka_unit_test_setup(test_find_path, setup_env),
		cmocka_unit_test_setup(test_round_trip, setup_env),
		cmocka_unit_test_setup(test_print_source, setup_env),
		cmocka_unit_test_setup(test_trusted, setup_env),
		cmocka_unit_test_setup(test_trusted_unix, setup_env),
		cmocka_unit_test_setup(test_local_domain, setup_env),
		cmocka_unit_test_setup(test_recipients_file, setup_env),
		cmocka_unit_test_setup(test_recipients_file_errors, setup_env),
		cmocka_unit_test_setup(test_recipients_modes, setup_env),
		cmocka_unit_test_setup(test_relay_domain, setup_env),
		cmocka_unit_test_setup(test_relay_recipients_file, setup_env),
		cmocka_unit_test_setup(test_relay_recipients_empty, setup_env),
		cmocka_unit_test_setup(test_relay_recipients_file_errors,
		    setup_env),
		cmocka_unit_test_setup(test_relay_fields, setup_env),
		cmocka_unit_test_setup(test_route_for, setup_env),
		cmocka_unit_test_setup(test_resolver_stored, setup_env),
		cmocka_unit_test_setup(test_tls_fields, setup_env),
		cmocka_unit_test_setup(test_senders_fields, setup_env),
		cmocka_unit_test_setup(test_sender_allowed, setup_env),
	};

	return cmocka_run_group_tests(tests, fixtures_make, fixtures_remove);
}

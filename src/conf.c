/*
 * conf.c - the configuration: read tern.conf(5), check every line, fill in
 * the defaults, print the effective result in the file's own syntax.
 *
 * The one idea: a line is split into words (double quotes keep spaces), the
 * first word picks a row of the key table and the row's function checks the
 * rest.  An error never stops the reading: each is printed as
 * "file:line: message" and conf_load returns NULL at the end, so the
 * administrator sees every mistake at once.  Defaults that depend on other
 * settings (local-domains on hostname, mailbox on home) are filled in after
 * the whole file has been read, and $TERN_HOME is applied last of all.
 *
 * Checks that span keys (a relay domain or a route that is also a local
 * domain) run there too, reported at the line of the later key; so does
 * the check that a submission listener has a certificate, which runs even
 * when other lines were wrong (a tls line may follow the listen line).
 *
 * The certificate, key and users files are only checked here (absolute,
 * existing, regular): the master reads them, at start and on SIGHUP, as
 * the one process that may be allowed to (see master.c load_secrets).
 *
 * No RFC governs this file; RFC 5321 4.5.3.1 (size limits), 4.5.3.2
 * (timeouts) and 6.3 (loop detection by counting Received: fields) are
 * what the limits and timeouts keys feed.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "deliver.h"
#include "route.h"
#include "util.h"

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define KIB UINT64_C(1024)
#define MIB (KIB * KIB)

#define CONF_DEFAULT_PATH "/etc/tern/tern.conf"
#define DEF_HOME "./var"
#define DEF_USER "tern"
#define DEF_SMTPD_USER "tern-smtpd"
#define DEF_MAILBOX "maildir:$home/mail/%u/Maildir"
#define DEF_MAILBOX_SYSTEM "maildir:~/Maildir"
#define DEF_ALIAS_USER "nobody"
#define DEF_FORWARD "~/.forward"
#define DEF_SUBADDRESS '+'
#define DEF_MIN_UID 1000
#define DEF_LOCAL_CONCURRENCY 20
#define DEF_MAILBOX_CONCURRENCY 2
#define DEF_TIMEOUT_DELIVERY (10 * MS_M)
#define DEF_PORT 2525
#define DEF_MESSAGE_SIZE (50 * MIB)
#define DEF_MAX_RCPTS 1000
#define DEF_LINE_LENGTH 1000
#define DEF_SESSIONS 10000
#define DEF_SPOOL_RESERVE (100 * MIB)
#define DEF_TIMEOUT_COMMAND (5 * MS_M)
#define DEF_TIMEOUT_DATA (10 * MS_M)
#define DEF_TIMEOUT_MESSAGE (1 * MS_H)
/* the slowest a message may arrive, in octets a second: 4 kbit/s, about
 * half of a 9600 bit/s modem or GSM data call, as Postfix's
 * smtpd_min_data_rate */
#define DEF_DATA_RATE 500
#define DEF_RETRY_FIRST (5 * MS_M)
#define DEF_RETRY_MAX (1 * MS_H)
#define DEF_RETRY_LIFETIME (5 * MS_D)
#define DEF_RETRY_WARN (4 * MS_H)
#define DEF_TIMEOUT_CONNECT (30 * MS_S)
#define DEF_TIMEOUT_REMOTE (5 * MS_M)      /* RFC 5321 4.5.3.2.1-2, 4 */
#define DEF_TIMEOUT_REMOTE_DATA (10 * MS_M) /* RFC 5321 4.5.3.2.3, 5-6 */
#define DEF_DEST_CONCURRENCY 20
#define DEF_MAX_RECEIVED 100               /* RFC 5321 6.3 suggests 100 */
#define DEF_RELAY_PORT 25
#define DEF_AUTH_FAILURES 3         /* per session, then 421 */
#define DEF_AUTH_CLIENT_FAILURES 10 /* per client address and hour */
#define DEF_DNSBL_THRESHOLD 1
#define DEF_TIMEOUT_PROXY (10 * MS_S) /* a balancer sends it at once */
#define DNSBL_ZONES_MAX 32  /* dnsbl and dnswl lines: queries per client */
#define DNSBL_WEIGHT_MAX 100
#define DNSBL_MATCH_MAX 32  /* addresses in one match= */
#define PROXY_FROM_MAX 64   /* networks in one proxy-from= */
/* per-client limits: Postfix's anvil defaults where it has them
 * (smtpd_client_connection_count_limit 50, smtpd_hard_error_limit 20,
 * rates off: they must not regulate legitimate mail); the connection
 * rate catches only flagrant abuse, 10 a second from one address */
#define DEF_CLIENT_SESSIONS 50
#define DEF_CLIENT_CONNECT_RATE 600
#define DEF_CLIENT_MESSAGE_RATE 0
#define DEF_CLIENT_RCPT_RATE 0
#define DEF_CLIENT_ERRORS 20
#define DEF_CLIENT_INVALID_RCPTS 20
#define DEF_CLIENT_IPV6_PREFIX 64
#define DEF_GREET_PASS (1 * MS_D) /* postscreen_greet_ttl */

/* bounds of the checked values (documented in tern.conf(5)) */
#define LINE_LENGTH_MIN 80
#define LINE_LENGTH_MAX MIB
#define COUNT_MAX 1000000
#define GREET_PAUSE_MAX (10 * MS_M)
#define GREET_PASS_MAX (365 * MS_D)
#define CLIENT_ERRORS_MAX 1000
#define IPV6_PREFIX_MIN 16
#define IPV6_PREFIX_MAX 128
#define TIMEOUT_MAX MS_D
#define RETRY_MAX_DURATION (365 * MS_D)
#define USER_NAME_MAX 32
#define DOMAIN_MAX 253
#define LABEL_MAX 63
#define DEST_CONCURRENCY_MAX 1000
#define RECEIVED_MAX 1000
#define PORT_MAX 65535
#define AUTH_FAILURES_MAX 100
#define AUTH_CLIENT_FAILURES_MAX 100000
#define LOCAL_CONCURRENCY_MAX 1000
#define DATA_RATE_MAX MIB

struct parse;
typedef void key_fn(struct parse *p, char **av, size_t ac);

struct conf_key {
	const char *name;
	key_fn *fn;
	int repeat; /* a list: may be given on several lines */
};

/*
 * The implemented keys, in the order conf_print writes them.  One list
 * makes both the parser's table and conf_keys(), so they cannot disagree.
 */
#define CONF_KEY_LIST(X)                                                  \
	X("hostname", key_hostname, 0)                                    \
	X("home", key_home, 0)                                            \
	X("user", key_user, 0)                                            \
	X("smtpd-user", key_smtpd_user, 0)                                \
	X("control-group", key_control_group, 0)                          \
	X("listen", key_listen, 1)                                        \
	X("local-domains", key_local_domains, 1)                          \
	X("relay-domains", key_relay_domains, 1)                          \
	X("relay-recipients", key_relay_recipients, 0)                    \
	X("recipients", key_recipients, 0)                                \
	X("mailbox", key_mailbox, 0)                                      \
	X("mailbox-for", key_mailbox_for, 1)                              \
	X("aliases", key_aliases, 0)                                      \
	X("alias-user", key_alias_user, 0)                                \
	X("forward", key_forward, 0)                                      \
	X("subaddress", key_subaddress, 0)                                \
	X("trusted-networks", key_trusted, 1)                             \
	X("dnsbl", key_dnsbl, 1)                                          \
	X("dnswl", key_dnswl, 1)                                          \
	X("tls", key_tls, 1)                                              \
	X("tls-ciphers", key_tls_ciphers, 0)                              \
	X("users", key_users, 0)                                          \
	X("senders", key_senders, 1)                                      \
	X("route", key_route, 1)                                          \
	X("smarthost", key_smarthost, 0)                                  \
	X("resolver", key_resolver, 0)                                    \
	X("limits", key_limits, 0)                                        \
	X("timeouts", key_timeouts, 0)                                    \
	X("retry", key_retry, 0)                                          \
	X("log", key_log, 0)

#define KEY_DECL(name, fn, rep) static key_fn fn;
#define KEY_ROW(name, fn, rep) { name, fn, rep },
#define KEY_NAME(name, fn, rep) name,
#define KEY_ENUM(name, fn, rep) K_##fn,

CONF_KEY_LIST(KEY_DECL)
enum conf_key_index { CONF_KEY_LIST(KEY_ENUM) NKEYS };

struct parse {
	const char *file;     /* name in messages */
	size_t line;          /* line in messages */
	int errors;
	struct conf *c;
	size_t seen[NKEYS];   /* line where a key first appeared, 0: not */
	char *mailbox;        /* as written: $home is expanded at the end */
	size_t mailbox_line;
	char **mfor_raw;      /* mailbox-for methods as written */
	size_t *mfor_lines;
	size_t trusted_none;  /* line of "trusted-networks none" */
	size_t *relay_lines;  /* line of each c->relay_domains[i] */
	size_t *route_lines;  /* line of each c->routes[i] */
	size_t *listen_lines; /* line of each c->listens[i] */
	size_t *cert_lines;   /* line of each c->certs[i] */
	size_t *sender_lines; /* line of each c->senders[i] */
};

/* words of one line */
struct words {
	char **v;
	size_t n;
	size_t cap;
};

static void TERN_PRINTF(2, 3)
conf_error(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%zu: ", p->file, p->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	p->errors++;
}

/* ---- small checks and conversions ---------------------------------- */

/* parse_count - a decimal number without sign or unit; -1 on overflow */
static int
parse_count(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/*
 * domain_valid - LDH labels of 1..63 octets, at most 253 in all.  Not
 * smtp_domain_valid(): a configured domain is never an address literal
 * nor UTF-8, and conf.c should not need the SMTP parser to link.
 */
static int
domain_valid(const char *s)
{
	size_t len = strlen(s), label = 0, i;

	if (len == 0 || len > DOMAIN_MAX || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
		    !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_')
			return 0;
		if (++label > LABEL_MAX || (label == 1 && ch == '-'))
			return 0;
	}
	return s[len - 1] != '-';
}

/* user_valid - the portable user name set of POSIX, not starting with - */
static int
user_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > USER_NAME_MAX || s[0] == '-')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
	                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/*
 * path_absolute - path made absolute against the current directory, with
 * "." components, repeated and trailing slashes removed.  ".." is kept:
 * resolving it without the file system is wrong across symbolic links.
 */
static char *
path_absolute(const char *path)
{
	struct buf b;
	char *cwd = NULL, *tmp, *comp, *save = NULL;

	if (path[0] != '/') {
		cwd = getcwd(NULL, 0);
		if (cwd == NULL)
			fatal("cannot find the current directory: %s",
			    strerror(errno));
	}
	tmp = xasprintf("%s/%s", cwd ? cwd : "", path);
	free(cwd);
	buf_init(&b);
	for (comp = strtok_r(tmp, "/", &save); comp != NULL;
	     comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, ".") == 0)
			continue;
		buf_putc(&b, '/');
		buf_puts(&b, comp);
	}
	free(tmp);
	if (b.len == 0)
		buf_putc(&b, '/');
	return b.data;
}

/* str_push - append a copy of s to a string array */
static void
str_push(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

/* str_has - 1 when s is one of the n strings of v */
static int
str_has(char **v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static void
str_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* conf_format_size - bytes in the largest exact unit: "50M", "1000" */
void
conf_format_size(uint64_t v, char *out, size_t outlen)
{
	static const char units[] = "GMK";
	static const uint64_t mults[] = { MIB * KIB, MIB, KIB };
	size_t i;

	for (i = 0; i < 3 && v != 0; i++) {
		if (v % mults[i] == 0) {
			snprintf(out, outlen, "%llu%c",
			    (unsigned long long)(v / mults[i]), units[i]);
			return;
		}
	}
	snprintf(out, outlen, "%llu", (unsigned long long)v);
}

/* conf_format_duration - milliseconds in the largest exact unit: "5m",
 * "90s" */
void
conf_format_duration(int64_t ms, char *out, size_t outlen)
{
	static const char units[] = "dhm";
	static const int64_t mults[] = { MS_D, MS_H, MS_M };
	size_t i;

	for (i = 0; i < 3 && ms != 0; i++) {
		if (ms % mults[i] == 0) {
			snprintf(out, outlen, "%lld%c",
			    (long long)(ms / mults[i]), units[i]);
			return;
		}
	}
	/* the parser knows no unit below the second */
	snprintf(out, outlen, "%llds", (long long)(ms / MS_S));
}

/* ---- name=value options of listen, limits, timeouts, retry ---------- */

enum opt_type { OPT_SIZE, OPT_DURATION, OPT_COUNT };

struct opt {
	const char *name;
	enum opt_type type;
	uint64_t min, max; /* bytes, milliseconds or a count */
};

static const char *const opt_what[] = {
	"a size (like 512K, 50M, 1G)",
	"a duration (like 30s, 5m, 1h, 5d)",
	"a number",
};

static int
opt_convert(enum opt_type type, const char *s, uint64_t *v)
{
	int64_t ms;

	if (type == OPT_SIZE)
		return util_parse_size(s, v);
	if (type == OPT_COUNT)
		return parse_count(s, v);
	if (util_parse_duration(s, &ms) == -1)
		return -1;
	*v = (uint64_t)ms;
	return 0;
}

static void
opt_format(enum opt_type type, uint64_t v, char *out, size_t outlen)
{
	if (type == OPT_SIZE)
		conf_format_size(v, out, outlen);
	else if (type == OPT_DURATION)
		conf_format_duration((int64_t)v, out, outlen);
	else
		snprintf(out, outlen, "%llu", (unsigned long long)v);
}

/* opt_value - convert and range-check value of option o; -1 reported */
static int
opt_value(struct parse *p, const char *key, const struct opt *o,
    const char *value, uint64_t *v)
{
	char bound[32];

	if (opt_convert(o->type, value, v) == -1) {
		conf_error(p, "%s: %s=%s is not %s", key, o->name, value,
		    opt_what[o->type]);
		return -1;
	}
	if (*v < o->min) {
		opt_format(o->type, o->min, bound, sizeof(bound));
		conf_error(p, "%s: %s=%s is below the minimum %s", key,
		    o->name, value, bound);
		return -1;
	}
	if (*v > o->max) {
		opt_format(o->type, o->max, bound, sizeof(bound));
		conf_error(p, "%s: %s=%s is above the maximum %s", key,
		    o->name, value, bound);
		return -1;
	}
	return 0;
}

static void
opt_names(const struct opt *opts, size_t n, char *out, size_t outlen)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < n && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s",
		    i ? ", " : "", opts[i].name);
}

/* opt_find - the option named by word (up to '='), or -1 reported */
static int
opt_find(struct parse *p, const char *key, const struct opt *opts,
    size_t n, const char *word)
{
	const char *eq = strchr(word, '=');
	char known[512];
	size_t i;

	if (eq == NULL) {
		conf_error(p, "%s: expected name=value, not \"%s\"", key, word);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (strlen(opts[i].name) == (size_t)(eq - word) &&
		    strncmp(opts[i].name, word, (size_t)(eq - word)) == 0)
			return (int)i;
	opt_names(opts, n, known, sizeof(known));
	conf_error(p, "%s: unknown option \"%.*s\" (known: %s)", key,
	    (int)(eq - word), word, known);
	return -1;
}

/*
 * opts_parse - every word of av as name=value of opts into vals; given[i]
 * says which were there.  Returns -1 when any was wrong (all reported).
 */
static int
opts_parse(struct parse *p, const char *key, char **av, size_t ac,
    const struct opt *opts, size_t n, uint64_t *vals, int *given)
{
	size_t i;
	int k, bad = 0;

	if (ac == 0) {
		conf_error(p, "%s needs at least one name=value", key);
		return -1;
	}
	for (i = 0; i < ac; i++) {
		k = opt_find(p, key, opts, n, av[i]);
		if (k == -1) {
			bad = 1;
			continue;
		}
		if (given[k]) {
			conf_error(p, "%s: %s given twice", key, opts[k].name);
			bad = 1;
			continue;
		}
		given[k] = 1;
		if (opt_value(p, key, &opts[k], strchr(av[i], '=') + 1,
		    &vals[k]) == -1)
			bad = 1;
	}
	return bad ? -1 : 0;
}

/* ---- the keys -------------------------------------------------------- */

/* one_value - report unless there is exactly one value */
static int
one_value(struct parse *p, const char *key, size_t ac)
{
	if (ac == 1)
		return 0;
	conf_error(p, "%s takes exactly one value", key);
	return -1;
}

static void
key_hostname(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "hostname", ac) == -1)
		return;
	if (!domain_valid(av[0])) {
		conf_error(p, "hostname: \"%s\" is not a valid domain name",
		    av[0]);
		return;
	}
	p->c->hostname = xstrdup(av[0]);
}

static void
key_home(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "home", ac) == -1)
		return;
	if (av[0][0] != '/') {
		conf_error(p, "home: \"%s\" is not an absolute path", av[0]);
		return;
	}
	p->c->home = path_absolute(av[0]);
}

static void
key_user(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "user", ac) == -1)
		return;
	if (!user_valid(av[0])) {
		conf_error(p, "user: \"%s\" is not a valid user name", av[0]);
		return;
	}
	p->c->user = xstrdup(av[0]);
	p->c->user_set = 1;
}

static void
key_smtpd_user(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "smtpd-user", ac) == -1)
		return;
	if (!user_valid(av[0])) {
		conf_error(p, "smtpd-user: \"%s\" is not a valid user name",
		    av[0]);
		return;
	}
	free(p->c->smtpd_user);
	p->c->smtpd_user = xstrdup(av[0]);
}

/* control-group NAME|none: who besides root and the user may use the
 * control socket (tern queue, tern status) */
static void
key_control_group(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "control-group", ac) == -1)
		return;
	free(p->c->control_group);
	p->c->control_group = NULL;
	if (strcmp(av[0], "none") == 0)
		return;
	if (!user_valid(av[0])) {
		conf_error(p, "control-group: \"%s\" is not a valid group name",
		    av[0]);
		return;
	}
	p->c->control_group = xstrdup(av[0]);
}

/* listen_split - "1.2.3.4:25" or "[::1]:25" into host, family and port */
static int
listen_split(const char *s, char *host, size_t hostlen, int *family,
    const char **port)
{
	const char *end, *colon;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		s++;
		*family = AF_INET6;
		*port = end + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		end = colon;
		*family = AF_INET;
		*port = colon + 1;
	}
	if ((size_t)(end - s) >= hostlen)
		return -1;
	memcpy(host, s, (size_t)(end - s));
	host[end - s] = '\0';
	return 0;
}

/* listen_fill - the socket address of family/addr/port into l */
static void
listen_fill(struct conf_listen *l, int family, const void *addr, int port)
{
	char text[INET6_ADDRSTRLEN];
	struct sockaddr_in *sin = (struct sockaddr_in *)&l->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->ss;

	memset(&l->ss, 0, sizeof(l->ss));
	l->port = port;
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		l->sslen = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		l->sslen = sizeof(*sin6);
	}
	inet_ntop(family, addr, text, sizeof(text));
	l->addr = xstrdup(text);
}

/* listen_addr - ADDR:PORT into l; -1 reported */
static int
listen_addr(struct parse *p, const char *s, struct conf_listen *l)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	const char *port;
	uint64_t v;
	int family;

	if (listen_split(s, host, sizeof(host), &family, &port) == -1) {
		conf_error(p, "listen: \"%s\" is not ADDR:PORT "
		    "(IPv6 in brackets: [::1]:2525)", s);
		return -1;
	}
	if (inet_pton(family, host, addr) != 1) {
		conf_error(p, "listen: \"%s\" is not a numeric %s address",
		    host, family == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	if (parse_count(port, &v) == -1 || v < 1 || v > 65535) {
		conf_error(p, "listen: port \"%s\" is not a number from 1 "
		    "to 65535", port);
		return -1;
	}
	listen_fill(l, family, addr, (int)v);
	return 0;
}

enum { LST_ROLE, LST_PAUSE, LST_PASS, LST_PIPELINING, LST_PROXY, LST_N };

static const struct opt listen_opts[LST_N] = {
	{ "role", OPT_COUNT, 0, 0 }, /* only the name: listen_role checks */
	{ "greet-pause", OPT_DURATION, 0, GREET_PAUSE_MAX },
	{ "greet-pass", OPT_DURATION, 0, GREET_PASS_MAX },
	/* only the names: listen_pipelining and listen_proxy check */
	{ "improper-pipelining", OPT_COUNT, 0, 0 },
	{ "proxy-from", OPT_COUNT, 0, 0 },
};

static const char *const role_names[] = {
	[ROLE_SMTP] = "smtp", [ROLE_SUBMISSION] = "submission",
	[ROLE_SUBMISSIONS] = "submissions",
};

/*
 * listen_role - role=VALUE into l; -1 reported.  That a submission role
 * has a certificate is checked once the whole file is read (check_roles).
 */
static int
listen_role(struct parse *p, const char *value, struct conf_listen *l)
{
	size_t i;

	for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (strcmp(role_names[i], value) == 0) {
			l->role = (enum listen_role)i;
			return 0;
		}
	}
	conf_error(p, "listen: unknown role \"%s\" (smtp, submission or "
	    "submissions)", value);
	return -1;
}

static const char *net_parse(const char *s, struct conf_net *n);

/* listen_proxy - proxy-from=NETWORK,... into l; -1 reported */
static int
listen_proxy(struct parse *p, const char *value, struct conf_listen *l)
{
	char *list = xstrdup(value), *save = NULL, *w;
	struct conf_net n;
	const char *why;
	int bad = 0;

	for (w = strtok_r(list, ",", &save); w != NULL;
	    w = strtok_r(NULL, ",", &save)) {
		if ((why = net_parse(w, &n)) != NULL) {
			conf_error(p, "listen: proxy-from: \"%s\" %s", w, why);
			bad = 1;
			continue;
		}
		if (l->nproxy_from == PROXY_FROM_MAX) {
			conf_error(p, "listen: proxy-from: more than %d "
			    "networks", PROXY_FROM_MAX);
			bad = 1;
			break;
		}
		l->proxy_from = xreallocarray(l->proxy_from,
		    l->nproxy_from + 1, sizeof(*l->proxy_from));
		l->proxy_from[l->nproxy_from++] = n;
	}
	free(list);
	if (l->nproxy_from == 0 && !bad) {
		conf_error(p, "listen: proxy-from needs NETWORK,...");
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* listen_pipelining - improper-pipelining=drop|allow into l; -1
 * reported */
static int
listen_pipelining(struct parse *p, const char *value, struct conf_listen *l)
{
	if (strcmp(value, "drop") == 0 || strcmp(value, "allow") == 0) {
		l->pipelining_drop = value[0] == 'd';
		return 0;
	}
	conf_error(p, "listen: improper-pipelining=%s is not drop or allow",
	    value);
	return -1;
}

/* listen_option - one name=value word of a listen line; -1 reported */
static int
listen_option(struct parse *p, int k, const char *value,
    struct conf_listen *l)
{
	uint64_t v;

	switch (k) {
	case LST_ROLE:
		return listen_role(p, value, l);
	case LST_PIPELINING:
		return listen_pipelining(p, value, l);
	case LST_PROXY:
		return listen_proxy(p, value, l);
	default:
		if (opt_value(p, "listen", &listen_opts[k], value, &v) == -1)
			return -1;
		if (k == LST_PAUSE)
			l->greet_pause_ms = (int64_t)v;
		else
			l->greet_pass_ms = (int64_t)v;
		return 0;
	}
}

/* listen_options - the words after ADDR:PORT; -1 when any was wrong */
static int
listen_options(struct parse *p, char **av, size_t ac, struct conf_listen *l)
{
	int given[LST_N] = { 0 }, k, bad = 0;
	size_t i;

	for (i = 0; i < ac; i++) {
		if (strcmp(av[i], "optional") == 0) {
			l->optional = 1;
			continue;
		}
		k = opt_find(p, "listen", listen_opts, LST_N, av[i]);
		if (k != -1 && given[k]++) {
			conf_error(p, "listen: %s given twice", av[i]);
			k = -1;
		}
		if (k == -1 || listen_option(p, k, strchr(av[i], '=') + 1,
		    l) == -1)
			bad = 1;
	}
	return bad ? -1 : 0;
}

/* listen_defaults - what a listen line leaves out */
static void
listen_defaults(struct conf_listen *l)
{
	l->greet_pass_ms = DEF_GREET_PASS;
	l->pipelining_drop = 1;
}

/* listen_same - 1 when a and b are the same address and port */
static int
listen_same(const struct conf_listen *a, const struct conf_listen *b)
{
	return a->sslen == b->sslen && a->port == b->port &&
	    strcmp(a->addr, b->addr) == 0;
}

static void
key_listen(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	struct conf_listen l;
	size_t i;

	memset(&l, 0, sizeof(l));
	listen_defaults(&l);
	if (ac == 0) {
		conf_error(p, "listen needs ADDR:PORT");
		return;
	}
	if (listen_addr(p, av[0], &l) == -1)
		return;
	if (listen_options(p, av + 1, ac - 1, &l) == -1) {
		free(l.addr);
		free(l.proxy_from);
		return;
	}
	for (i = 0; i < c->nlistens; i++) {
		if (listen_same(&c->listens[i], &l)) {
			conf_error(p, "listen: %s given twice", av[0]);
			free(l.addr);
			free(l.proxy_from);
			return;
		}
	}
	c->listens = xreallocarray(c->listens, c->nlistens + 1,
	    sizeof(*c->listens));
	p->listen_lines = xreallocarray(p->listen_lines, c->nlistens + 1,
	    sizeof(*p->listen_lines));
	p->listen_lines[c->nlistens] = p->line;
	c->listens[c->nlistens++] = l;
}

static void
key_local_domains(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	size_t i;

	if (ac == 0) {
		conf_error(p, "local-domains needs at least one domain");
		return;
	}
	for (i = 0; i < ac; i++) {
		util_lower(av[i]);
		if (!domain_valid(av[i])) {
			conf_error(p, "local-domains: \"%s\" is not a valid "
			    "domain name", av[i]);
			continue;
		}
		if (!str_has(c->local_domains, c->nlocal_domains, av[i]))
			str_push(&c->local_domains, &c->nlocal_domains, av[i]);
	}
}

/* local_part_valid - the n octets of a local part from a list file */
static int
local_part_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < n; i++)
		if (u[i] <= ' ' || u[i] == 0x7f || u[i] == '"')
			return 0;
	return 1;
}

/* recipient_valid - "local" or "local@domain", lower-cased already */
static int
recipient_valid(const char *s)
{
	const char *at = strchr(s, '@');

	if (s[0] == '\0' || s[0] == '@')
		return 0;
	if (at == NULL)
		return local_part_valid(s, strlen(s));
	return local_part_valid(s, (size_t)(at - s)) && domain_valid(at + 1);
}

/* recipients_entry_valid - a recipients file line: a recipient, or
 * "@domain" (every local part of a local domain: a catch-all) */
static int
recipients_entry_valid(const char *s)
{
	if (s[0] == '@')
		return domain_valid(s + 1);
	return recipient_valid(s);
}

/* relay_recipient_valid - "local@domain" or "@domain", in any case */
static int
relay_recipient_valid(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL)
		return 0;
	return local_part_valid(s, (size_t)(at - s)) && domain_valid(at + 1);
}

/* a file of entries, one a line: recipients and relay-recipients */
struct list_file {
	const char *key;             /* in "cannot read" messages */
	int (*valid)(const char *s); /* an entry, lower-cased already */
	const char *what;            /* "is not WHAT" for a bad entry */
};

static const struct list_file recipients_file = {
	"recipients", recipients_entry_valid,
	"a recipient (local, local@domain or @domain)"
};

static const struct list_file relay_recipients_file = {
	"relay-recipients", relay_recipient_valid,
	"a relay recipient (local@domain or @domain)"
};

/* list_line - one line of a list file into v; -1 reported */
static int
list_line(struct parse *p, const struct list_file *lf, char *line,
    char ***v, size_t *n)
{
	char *end;

	line[strcspn(line, "#\r\n")] = '\0';
	line += strspn(line, " \t");
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*line == '\0')
		return 0;
	util_lower(line);
	if (!lf->valid(line)) {
		conf_error(p, "\"%s\" is not %s", line, lf->what);
		return -1;
	}
	str_push(v, n, line);
	return 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list_sort - sort for bsearch, drop repeated entries */
static void
list_sort(char **v, size_t *nv)
{
	size_t i, n = 0;

	if (*nv == 0)
		return;
	qsort(v, *nv, sizeof(char *), str_cmp);
	for (i = 0; i < *nv; i++) {
		if (n > 0 && strcmp(v[n - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[n++] = v[i];
	}
	*nv = n;
}

/*
 * list_load - read the list file at path into v, sorted.  A file that
 * cannot be read is reported at the line of the key; a bad entry at its
 * own line of the list file.
 */
static void
list_load(struct parse *p, const struct list_file *lf, const char *path,
    char ***v, size_t *n)
{
	const char *file = p->file;
	size_t line = p->line, cap = 0;
	char *buf = NULL;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		conf_error(p, "%s: cannot read %s: %s", lf->key, path,
		    strerror(errno));
		return;
	}
	p->file = path;
	p->line = 0;
	errno = 0;
	while (getline(&buf, &cap, fp) != -1) {
		p->line++;
		list_line(p, lf, buf, v, n);
	}
	p->file = file;
	p->line = line;
	if (ferror(fp))
		conf_error(p, "%s: cannot read %s: %s", lf->key, path,
		    strerror(errno));
	free(buf);
	fclose(fp);
	list_sort(*v, n);
}

static void
key_recipients(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;

	if (ac == 2 && strcmp(av[0], "system") == 0 &&
	    strncmp(av[1], "min-uid=", 8) == 0) {
		uint64_t v;

		if (parse_count(av[1] + 8, &v) == -1 || v == 0 ||
		    v > UINT32_MAX) {
			conf_error(p, "recipients: min-uid=%s is not a uid "
			    "above 0", av[1] + 8);
			return;
		}
		c->min_uid = (unsigned)v;
		ac = 1;
	}
	if (one_value(p, "recipients", ac) == -1)
		return;
	if (strcmp(av[0], "any") == 0) {
		c->recipients = RECIPIENTS_ANY;
	} else if (strcmp(av[0], "system") == 0) {
		c->recipients = RECIPIENTS_SYSTEM;
	} else if (strncmp(av[0], "file:", 5) == 0 && av[0][5] == '/') {
		c->recipients = RECIPIENTS_FILE;
		c->recipients_file = xstrdup(av[0] + 5);
		list_load(p, &recipients_file, c->recipients_file,
		    &c->recipient_list, &c->nrecipient_list);
	} else {
		conf_error(p, "recipients: \"%s\" is not any, system or "
		    "file:/absolute/path", av[0]);
	}
}

static void
key_relay_domains(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	size_t i;

	if (ac == 0) {
		conf_error(p, "relay-domains needs at least one domain");
		return;
	}
	for (i = 0; i < ac; i++) {
		util_lower(av[i]);
		if (!domain_valid(av[i])) {
			conf_error(p, "relay-domains: \"%s\" is not a valid "
			    "domain name", av[i]);
			continue;
		}
		if (str_has(c->relay_domains, c->nrelay_domains, av[i]))
			continue;
		p->relay_lines = xreallocarray(p->relay_lines,
		    c->nrelay_domains + 1, sizeof(*p->relay_lines));
		p->relay_lines[c->nrelay_domains] = p->line;
		str_push(&c->relay_domains, &c->nrelay_domains, av[i]);
	}
}

static void
key_relay_recipients(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;

	if (one_value(p, "relay-recipients", ac) == -1)
		return;
	if (strncmp(av[0], "file:", 5) != 0 || av[0][5] != '/') {
		conf_error(p, "relay-recipients: \"%s\" is not "
		    "file:/absolute/path", av[0]);
		return;
	}
	c->relay_recipients_file = xstrdup(av[0] + 5);
	list_load(p, &relay_recipients_file, c->relay_recipients_file,
	    &c->relay_recipient_list, &c->nrelay_recipient_list);
}

/*
 * method_syntax - check METHOD:ARG as far as it can be checked before the
 * whole file is read; NULL, or what is wrong
 */
static const char *
method_syntax(const char *m)
{
	static char why[320];
	char err[256];

	if (strncmp(m, "maildir:", 8) == 0 || strncmp(m, "mbox:", 5) == 0)
		return strchr(m, ':')[1] == '\0' ? "has no path" : NULL;
	if (strncmp(m, "pipe:", 5) == 0) {
		if (deliver_pipe_check(m + 5, err, sizeof(err)) == 0)
			return NULL;
		if (snprintf(why, sizeof(why), "is refused: %s", err) < 0)
			return "is refused";
		return why;
	}
	if (strncmp(m, "lmtp:", 5) == 0) {
		struct route r;

		if (route_lmtp(m + 5, &r, err, sizeof(err)) == 0)
			return NULL;
		if (snprintf(why, sizeof(why), "is refused: %s", err) < 0)
			return "is refused";
		return why;
	}
	return "is not maildir:, mbox:, pipe: or lmtp:";
}

static void
key_mailbox(struct parse *p, char **av, size_t ac)
{
	const char *why;

	if (one_value(p, "mailbox", ac) == -1)
		return;
	if ((why = method_syntax(av[0])) != NULL) {
		conf_error(p, "mailbox: \"%s\" %s", av[0], why);
		return;
	}
	p->mailbox = xstrdup(av[0]);
	p->mailbox_line = p->line;
}

static void
key_mailbox_for(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	struct conf_mailbox_for *mf;
	const char *why;
	size_t i;

	if (ac != 2) {
		conf_error(p, "mailbox-for takes a user and a method");
		return;
	}
	util_lower(av[0]);
	if (!user_valid(av[0])) {
		conf_error(p, "mailbox-for: \"%s\" is not a user name", av[0]);
		return;
	}
	if ((why = method_syntax(av[1])) != NULL) {
		conf_error(p, "mailbox-for: \"%s\" %s", av[1], why);
		return;
	}
	for (i = 0; i < c->nmailbox_for; i++)
		if (strcmp(c->mailbox_for[i].user, av[0]) == 0) {
			conf_error(p, "mailbox-for: %s given twice", av[0]);
			return;
		}
	c->mailbox_for = xreallocarray(c->mailbox_for, c->nmailbox_for + 1,
	    sizeof(*c->mailbox_for));
	p->mfor_raw = xreallocarray(p->mfor_raw, c->nmailbox_for + 1,
	    sizeof(*p->mfor_raw));
	p->mfor_lines = xreallocarray(p->mfor_lines, c->nmailbox_for + 1,
	    sizeof(*p->mfor_lines));
	p->mfor_raw[c->nmailbox_for] = xstrdup(av[1]);
	p->mfor_lines[c->nmailbox_for] = p->line;
	mf = &c->mailbox_for[c->nmailbox_for++];
	mf->user = xstrdup(av[0]);
	mf->method = NULL; /* finish() expands it */
}

static void
key_aliases(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "aliases", ac) == -1)
		return;
	if (strcmp(av[0], "none") == 0)
		return;
	if (av[0][0] != '/') {
		conf_error(p, "aliases: \"%s\" is not an absolute path or "
		    "none", av[0]);
		return;
	}
	p->c->aliases_file = xstrdup(av[0]);
}

static void
key_alias_user(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "alias-user", ac) == -1)
		return;
	if (!user_valid(av[0])) {
		conf_error(p, "alias-user: \"%s\" is not a user name", av[0]);
		return;
	}
	free(p->c->alias_user);
	p->c->alias_user = xstrdup(av[0]);
}

static void
key_forward(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "forward", ac) == -1)
		return;
	free(p->c->forward);
	p->c->forward = NULL;
	if (strcmp(av[0], "none") == 0)
		return;
	if (strncmp(av[0], "~/", 2) != 0 || av[0][2] == '\0' ||
	    strstr(av[0], "/../") != NULL) {
		conf_error(p, "forward: \"%s\" is not ~/FILE or none", av[0]);
		return;
	}
	p->c->forward = xstrdup(av[0]);
}

static void
key_subaddress(struct parse *p, char **av, size_t ac)
{
	unsigned char ch;

	if (one_value(p, "subaddress", ac) == -1)
		return;
	ch = (unsigned char)av[0][0];
	if (strcmp(av[0], "none") == 0) {
		p->c->subaddress = 0;
		return;
	}
	if (av[0][1] != '\0' || ch <= ' ' || ch >= 0x7f ||
	    strchr("@\"\\()<>[],;:.%!/", ch) != NULL ||
	    (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9')) {
		conf_error(p, "subaddress: \"%s\" is not one of + - = _ "
		    "and the like, or none", av[0]);
		return;
	}
	p->c->subaddress = (char)ch;
}

/*
 * net_parse - "ADDR/PREFIX" or a bare address into n.  Returns NULL, or
 * the reason it is wrong.
 */
static const char *
net_parse(const char *s, struct conf_net *n)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s), i;
	unsigned max;
	uint64_t v;

	if (hlen >= sizeof(host))
		return "is not an address or ADDR/PREFIX";
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(n, 0, sizeof(*n));
	n->family = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(n->family, host, n->addr) != 1)
		return "is not an address or ADDR/PREFIX";
	max = n->family == AF_INET ? 32 : 128;
	v = max;
	if (slash && (parse_count(slash + 1, &v) == -1 || v > max))
		return max == 32 ? "has a prefix that is not 0 to 32"
				 : "has a prefix that is not 0 to 128";
	n->prefix = (unsigned)v;
	for (i = n->prefix; i < max; i++)
		if (n->addr[i / 8] & (0x80 >> (i % 8)))
			return "has bits set after the prefix";
	return NULL;
}

static void
key_trusted(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	struct conf_net n;
	const char *why;
	size_t i;

	if (ac == 0) {
		conf_error(p, "trusted-networks needs networks or none");
		return;
	}
	/* "none" is only allowed alone, on the only trusted-networks line */
	if (strcmp(av[0], "none") == 0 && ac == 1 &&
	    p->seen[K_key_trusted] == p->line) {
		p->trusted_none = p->line;
		return;
	}
	if (p->trusted_none || str_has(av, ac, "none")) {
		conf_error(p, "trusted-networks: none cannot be combined with "
		    "networks");
		return;
	}
	for (i = 0; i < ac; i++) {
		if ((why = net_parse(av[i], &n)) != NULL) {
			conf_error(p, "trusted-networks: \"%s\" %s", av[i],
			    why);
			continue;
		}
		c->trusted = xreallocarray(c->trusted, c->ntrusted + 1,
		    sizeof(*c->trusted));
		c->trusted[c->ntrusted++] = n;
	}
}

/* ---- dnsbl, dnswl: DNS blocklists and allowlists (RFC 5782) --------- */

/* dnsbl_match - match=IP,... (IPv4: what a list answers) into b */
static int
dnsbl_match(struct parse *p, const char *key, const char *value,
    struct conf_dnsbl *b)
{
	char *list = xstrdup(value), *save = NULL, *w;
	unsigned char a[4];
	int bad = 0;

	for (w = strtok_r(list, ",", &save); w != NULL;
	    w = strtok_r(NULL, ",", &save)) {
		if (inet_pton(AF_INET, w, a) != 1) {
			conf_error(p, "%s: match: \"%s\" is not an IPv4 "
			    "address", key, w);
			bad = 1;
			continue;
		}
		if (b->nmatch == DNSBL_MATCH_MAX) {
			conf_error(p, "%s: match: more than %d addresses", key,
			    DNSBL_MATCH_MAX);
			bad = 1;
			break;
		}
		b->match = xreallocarray(b->match, b->nmatch + 1,
		    sizeof(*b->match));
		memcpy(b->match[b->nmatch++], a, 4);
	}
	free(list);
	if (b->nmatch == 0 && !bad) {
		conf_error(p, "%s: match needs IP,...", key);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* dnsbl_option - weight=N (dnsbl only) or match=IP,...; -1 reported */
static int
dnsbl_option(struct parse *p, const char *key, const char *w,
    struct conf_dnsbl *b, int *given)
{
	static const struct opt weight = { "weight", OPT_COUNT, 1,
		DNSBL_WEIGHT_MAX };
	uint64_t v;

	if (strncmp(w, "match=", 6) == 0 && !given[1]++)
		return dnsbl_match(p, key, w + 6, b);
	if (!b->allow && strncmp(w, "weight=", 7) == 0 && !given[0]++) {
		if (opt_value(p, key, &weight, w + 7, &v) == -1)
			return -1;
		b->weight = (unsigned)v;
		return 0;
	}
	if (given[0] > 1 || given[1] > 1)
		conf_error(p, "%s: %s given twice", key, w);
	else
		conf_error(p, "%s: unknown option \"%s\" (known: %s)", key, w,
		    b->allow ? "match" : "weight, match");
	return -1;
}

static void
dnsbl_free(struct conf_dnsbl *b)
{
	free(b->zone);
	free(b->match);
}

/* dnsbl_line - "ZONE [weight=N] [match=IP,...]" of dnsbl or dnswl */
static void
dnsbl_line(struct parse *p, const char *key, int allow, char **av,
    size_t ac)
{
	struct conf *c = p->c;
	struct conf_dnsbl b;
	int given[2] = { 0, 0 }, bad = 0;
	size_t i, zl;

	if (ac == 0) {
		conf_error(p, "%s needs a ZONE", key);
		return;
	}
	memset(&b, 0, sizeof(b));
	b.allow = allow;
	b.weight = allow ? 0 : 1;
	zl = strlen(av[0]);
	b.zone = xstrndup(av[0], zl > 0 && av[0][zl - 1] == '.' ? zl - 1 : zl);
	util_lower(b.zone);
	/* room for a reversed IPv6 address (64 octets) before the zone */
	if (!domain_valid(b.zone) || strlen(b.zone) > 180) {
		conf_error(p, "%s: \"%s\" is not a DNS zone", key, av[0]);
		bad = 1;
	}
	for (i = 1; i < ac; i++)
		if (dnsbl_option(p, key, av[i], &b, given) == -1)
			bad = 1;
	for (i = 0; !bad && i < c->ndnsbls; i++) {
		if (strcmp(c->dnsbls[i].zone, b.zone) == 0) {
			conf_error(p, "%s: %s given twice", key, b.zone);
			bad = 1;
		}
	}
	if (!bad && c->ndnsbls == DNSBL_ZONES_MAX) {
		conf_error(p, "%s: more than %d dnsbl and dnswl zones", key,
		    DNSBL_ZONES_MAX);
		bad = 1;
	}
	if (bad) {
		dnsbl_free(&b);
		return;
	}
	c->dnsbls = xreallocarray(c->dnsbls, c->ndnsbls + 1,
	    sizeof(*c->dnsbls));
	c->dnsbls[c->ndnsbls++] = b;
}

static void
key_dnsbl(struct parse *p, char **av, size_t ac)
{
	dnsbl_line(p, "dnsbl", 0, av, ac);
}

static void
key_dnswl(struct parse *p, char **av, size_t ac)
{
	dnsbl_line(p, "dnswl", 1, av, ac);
}

/* ---- tls, users, senders: inbound TLS and authentication ------------- */

/*
 * file_check - path names an existing regular file; -1 reported as
 * "WHATpath: why".  The file is read later, by the master.
 */
static int
file_check(struct parse *p, const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		conf_error(p, "%s%s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		conf_error(p, "%s%s is not a regular file", what, path);
		return -1;
	}
	return 0;
}

static const struct opt tls_opts[] = {
	{ "cert", OPT_COUNT, 0, 0 }, /* only the names: tls_file checks */
	{ "key", OPT_COUNT, 0, 0 },  /* the values */
};

/* tls_file - the path of "cert=PATH" or "key=PATH", checked; NULL reported */
static char *
tls_file(struct parse *p, const char *word)
{
	const char *path = strchr(word, '=') + 1;
	char *what;
	int rc;

	if (path[0] != '/') {
		conf_error(p, "tls: %s is not an absolute path", word);
		return NULL;
	}
	what = xasprintf("tls: %.*s", (int)(path - word), word);
	rc = file_check(p, what, path);
	free(what);
	return rc == 0 ? xstrdup(path) : NULL;
}

/* tls_add - one certificate; the same certificate file twice is an error */
static void
tls_add(struct parse *p, char *cert, char *key)
{
	struct conf *c = p->c;
	size_t i;

	for (i = 0; i < c->ncerts; i++) {
		if (strcmp(c->certs[i].cert, cert) != 0)
			continue;
		conf_error(p, "tls: cert=%s given twice (first at line %zu)",
		    cert, p->cert_lines[i]);
		free(cert);
		free(key);
		return;
	}
	c->certs = xreallocarray(c->certs, c->ncerts + 1, sizeof(*c->certs));
	p->cert_lines = xreallocarray(p->cert_lines, c->ncerts + 1,
	    sizeof(*p->cert_lines));
	p->cert_lines[c->ncerts] = p->line;
	c->certs[c->ncerts].cert = cert;
	c->certs[c->ncerts++].key = key;
}

static void
key_tls(struct parse *p, char **av, size_t ac)
{
	char *file[2] = { NULL, NULL };
	int given[2] = { 0, 0 }, k, bad = 0;
	size_t i;

	if (ac == 0) {
		conf_error(p, "tls needs cert=FILE and key=FILE");
		return;
	}
	for (i = 0; i < ac; i++) {
		k = opt_find(p, "tls", tls_opts, 2, av[i]);
		if (k != -1 && given[k]++) {
			conf_error(p, "tls: %s given twice", tls_opts[k].name);
			k = -1;
		}
		if (k == -1 || (file[k] = tls_file(p, av[i])) == NULL)
			bad = 1;
	}
	/* a missing half is worth saying only when the rest was right */
	for (k = 0; k < 2 && !bad; k++)
		if (!given[k])
			conf_error(p, "tls: %s=FILE is missing",
			    tls_opts[k].name);
	if (bad || !given[0] || !given[1]) {
		free(file[0]);
		free(file[1]);
		return;
	}
	tls_add(p, file[0], file[1]);
}

static const char *const tls_ciphers_names[] = {
	[TLS_CIPHERS_MODERN] = "modern", [TLS_CIPHERS_COMPAT] = "compat",
};

static void
key_tls_ciphers(struct parse *p, char **av, size_t ac)
{
	size_t i;

	if (one_value(p, "tls-ciphers", ac) == -1)
		return;
	for (i = 0; i < sizeof(tls_ciphers_names) /
	    sizeof(tls_ciphers_names[0]); i++) {
		if (strcmp(av[0], tls_ciphers_names[i]) == 0) {
			p->c->tls_ciphers = (enum tls_ciphers)i;
			return;
		}
	}
	conf_error(p, "tls-ciphers: \"%s\" is not modern or compat", av[0]);
}

static void
key_users(struct parse *p, char **av, size_t ac)
{
	if (one_value(p, "users", ac) == -1)
		return;
	if (av[0][0] != '/') {
		conf_error(p, "users: \"%s\" is not an absolute path", av[0]);
		return;
	}
	if (file_check(p, "users: ", av[0]) == -1)
		return;
	p->c->users_file = xstrdup(av[0]);
}

/*
 * sender_user_valid - a name as the users file has it: a local part or
 * local@domain, without the ':' that ends a name there
 */
static int
sender_user_valid(const char *s)
{
	return strlen(s) <= AUTH_NAME_MAX && strchr(s, ':') == NULL &&
	    recipient_valid(s);
}

/* senders_find - the senders entry of user (any case), or NULL */
static const struct conf_senders *
senders_find(const struct conf *c, const char *user, size_t *index)
{
	size_t i;

	for (i = 0; i < c->nsenders; i++) {
		if (strcasecmp(c->senders[i].user, user) != 0)
			continue;
		if (index != NULL)
			*index = i;
		return &c->senders[i];
	}
	return NULL;
}

/* senders_addrs - the addresses of a senders line into s; -1 reported */
static int
senders_addrs(struct parse *p, char **av, size_t ac, struct conf_senders *s)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < ac; i++) {
		if (!relay_recipient_valid(av[i])) {
			conf_error(p, "senders: \"%s\" is not an address "
			    "(local@domain or @domain)", av[i]);
			bad = 1;
			continue;
		}
		util_lower(av[i]);
		if (!str_has(s->addrs, s->naddrs, av[i]))
			str_push(&s->addrs, &s->naddrs, av[i]);
	}
	return bad ? -1 : 0;
}

static void
key_senders(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	struct conf_senders s;
	size_t first = 0;

	if (ac < 2) {
		conf_error(p, "senders needs a user and at least one address");
		return;
	}
	if (!sender_user_valid(av[0])) {
		conf_error(p, "senders: \"%s\" is not a user name (name or "
		    "name@domain)", av[0]);
		return;
	}
	if (senders_find(c, av[0], &first) != NULL) {
		conf_error(p, "senders: user %s given twice (first at line "
		    "%zu)", av[0], p->sender_lines[first]);
		return;
	}
	memset(&s, 0, sizeof(s));
	s.user = xstrdup(av[0]);
	/* kept even when an address was wrong, so that a repeated user is
	 * still noticed; the configuration is refused anyway */
	senders_addrs(p, av + 1, ac - 1, &s);
	c->senders = xreallocarray(c->senders, c->nsenders + 1,
	    sizeof(*c->senders));
	p->sender_lines = xreallocarray(p->sender_lines, c->nsenders + 1,
	    sizeof(*p->sender_lines));
	p->sender_lines[c->nsenders] = p->line;
	c->senders[c->nsenders++] = s;
}

/*
 * check_roles - a submission listener needs a certificate: a tls line
 * anywhere in the file (even a wrong one, which has its own error).
 * Reported at each such listen line.
 */
static void
check_roles(struct parse *p)
{
	const struct conf *c = p->c;
	size_t i;

	if (p->seen[K_key_tls] != 0)
		return;
	for (i = 0; i < c->nlistens; i++) {
		if (c->listens[i].role == ROLE_SMTP)
			continue;
		p->line = p->listen_lines[i];
		conf_error(p, "role=%s needs a tls certificate (tls cert=... "
		    "key=...)", role_names[c->listens[i].role]);
	}
}

/* ---- route, smarthost, resolver: where mail goes next ---------------- */

/* port_parse - a port number 1..65535 from s; -1 reported */
static int
port_parse(struct parse *p, const char *key, const char *s, int *port)
{
	uint64_t v;

	if (parse_count(s, &v) == -1 || v < 1 || v > PORT_MAX) {
		conf_error(p, "%s: port \"%s\" is not a number from 1 to 65535",
		    key, s);
		return -1;
	}
	*port = (int)v;
	return 0;
}

/* ip_canonical - s as inet_ntop writes it when it is an IP address */
static char *
ip_canonical(const char *s)
{
	unsigned char bin[16];
	char text[INET6_ADDRSTRLEN];
	int family = strchr(s, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(family, s, bin) != 1)
		return NULL;
	inet_ntop(family, bin, text, sizeof(text));
	return xstrdup(text);
}

/*
 * dest_split - "[host]:port", "[host]", "host:port" or "host" into host
 * (a new string) and the port text (NULL: none).  Returns 1 when the host
 * was in brackets, 0 when not, -1 when s has none of the forms (an IPv6
 * address needs the brackets, its colons would read as a port).
 */
static int
dest_split(const char *s, char **host, const char **port)
{
	const char *end, *colon;

	*port = NULL;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || end == s + 1 ||
		    (end[1] != '\0' && end[1] != ':'))
			return -1;
		if (end[1] == ':')
			*port = end + 2;
		*host = xstrndup(s + 1, (size_t)(end - s - 1));
		return 1;
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL)
		return -1;
	if (colon == s || s[0] == '\0')
		return -1;
	if (colon != NULL)
		*port = colon + 1;
	*host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
	return 0;
}

/*
 * host_name_valid - a domain whose last label is not all digits (RFC 3696
 * section 2: no top-level domain is), so that a mistyped IPv4 address
 * such as 192.0.2.256 is refused instead of looked up as a name.
 */
static int
host_name_valid(const char *s)
{
	const char *last = strrchr(s, '.');

	last = last ? last + 1 : s;
	return domain_valid(s) && strspn(last, "0123456789") < strlen(last);
}

/*
 * relay_dest - DEST of route or smarthost into r.  Brackets mean "no MX
 * lookup"; so does an IP address, which has no MX records.  -1 reported.
 */
static int
relay_dest(struct parse *p, const char *key, const char *s,
    struct conf_relay *r)
{
	const char *port;
	char *host, *ip;
	int bracket = dest_split(s, &host, &port);

	if (bracket == -1) {
		conf_error(p, "%s: \"%s\" is not [host]:port, [host], "
		    "host:port or host (IPv6 in brackets)", key, s);
		return -1;
	}
	r->port = DEF_RELAY_PORT;
	if (port != NULL && port_parse(p, key, port, &r->port) == -1) {
		free(host);
		return -1;
	}
	if ((ip = ip_canonical(host)) != NULL) {
		free(host);
		r->host = ip;
		r->mx = 0;
		return 0;
	}
	util_lower(host);
	if (!host_name_valid(host)) {
		conf_error(p, "%s: \"%s\" is not a host name or IP address",
		    key, host);
		free(host);
		return -1;
	}
	r->host = host;
	r->mx = !bracket;
	return 0;
}

static const char *const tls_names[] = {
	[TLS_MAY] = "may", [TLS_NONE] = "none", [TLS_ENCRYPT] = "encrypt",
	[TLS_VERIFY] = "verify",
};

/* relay_tls - tls=VALUE into r; -1 reported */
static int
relay_tls(struct parse *p, const char *key, const char *value,
    struct conf_relay *r)
{
	size_t i;

	for (i = 0; i < sizeof(tls_names) / sizeof(tls_names[0]); i++) {
		if (strcmp(tls_names[i], value) == 0) {
			r->tls = (enum tls_policy)i;
			return 0;
		}
	}
	conf_error(p, "%s: tls=%s is not none, may, encrypt or verify", key,
	    value);
	return -1;
}

/* relay_auth - auth=FILE into r (read later, by the client); -1 reported */
static int
relay_auth(struct parse *p, const char *key, const char *value,
    struct conf_relay *r)
{
	if (value[0] != '/') {
		conf_error(p, "%s: auth=%s is not an absolute path", key,
		    value);
		return -1;
	}
	r->auth_file = xstrdup(value);
	return 0;
}

/*
 * relay_ca - ca=FILE into r: the CA certificates (PEM) that tls=verify
 * trusts for this destination instead of the system's.  It must exist
 * now; the queue process reads it at the first connection.  -1 reported.
 */
static int
relay_ca(struct parse *p, const char *key, const char *value,
    struct conf_relay *r)
{
	char *what;
	int rc;

	if (value[0] != '/') {
		conf_error(p, "%s: ca=%s is not an absolute path", key, value);
		return -1;
	}
	what = xasprintf("%s: ca=", key);
	rc = file_check(p, what, value);
	free(what);
	if (rc == -1)
		return -1;
	r->ca_file = xstrdup(value);
	return 0;
}

static const struct opt relay_opts[] = {
	{ "tls", OPT_COUNT, 0, 0 },  /* only the names: relay_tls, */
	{ "auth", OPT_COUNT, 0, 0 }, /* relay_auth and relay_ca check */
	{ "ca", OPT_COUNT, 0, 0 },   /* the values */
};
#define RELAY_NOPTS (sizeof(relay_opts) / sizeof(relay_opts[0]))

/* relay_option - one word after DEST, its name found as k (-1: none,
 * already reported); -1 reported */
static int
relay_option(struct parse *p, const char *key, int k, const char *word,
    struct conf_relay *r)
{
	const char *value;

	if (k < 0)
		return -1;
	value = strchr(word, '=') + 1; /* opt_find found the '=' */
	switch (k) {
	case 0:
		return relay_tls(p, key, value, r);
	case 1:
		return relay_auth(p, key, value, r);
	case 2:
		return relay_ca(p, key, value, r);
	default:
		return -1;
	}
}

/* relay_options - the words after DEST; -1 when any was wrong */
static int
relay_options(struct parse *p, const char *key, char **av, size_t ac,
    struct conf_relay *r)
{
	int given[RELAY_NOPTS] = { 0 }, k, bad = 0;
	size_t i;

	for (i = 0; i < ac; i++) {
		k = opt_find(p, key, relay_opts, RELAY_NOPTS, av[i]);
		if (k != -1 && given[k]++) {
			conf_error(p, "%s: %s given twice", key,
			    relay_opts[k].name);
			k = -1;
		}
		if (relay_option(p, key, k, av[i], r) == -1)
			bad = 1;
	}
	/* the client sends a password only inside TLS */
	if (!bad && r->auth_file != NULL && r->tls == TLS_NONE) {
		conf_error(p, "%s: auth= needs TLS, not tls=none", key);
		bad = 1;
	}
	/* only verify checks a certificate: a CA file elsewhere would be
	 * a trust the administrator believes in and nothing enforces */
	if (!bad && r->ca_file != NULL && r->tls != TLS_VERIFY) {
		conf_error(p, "%s: ca= needs tls=verify, not tls=%s", key,
		    tls_names[r->tls]);
		bad = 1;
	}
	return bad ? -1 : 0;
}

static void
relay_free(struct conf_relay *r)
{
	free(r->domain);
	free(r->host);
	free(r->auth_file);
	free(r->ca_file);
	memset(r, 0, sizeof(*r));
}

/* relay_parse - "DEST [tls=...] [auth=FILE] [ca=FILE]" into r; -1
 * reported */
static int
relay_parse(struct parse *p, const char *key, char **av, size_t ac,
    struct conf_relay *r)
{
	memset(r, 0, sizeof(*r));
	r->tls = TLS_MAY;
	if (relay_dest(p, key, av[0], r) == -1)
		return -1;
	if (relay_options(p, key, av + 1, ac - 1, r) == -1) {
		relay_free(r);
		return -1;
	}
	return 0;
}

static void
key_route(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	struct conf_relay r;
	size_t i;

	if (ac < 2) {
		conf_error(p, "route needs a domain and a destination");
		return;
	}
	util_lower(av[0]);
	if (!domain_valid(av[0])) {
		conf_error(p, "route: \"%s\" is not a valid domain name",
		    av[0]);
		return;
	}
	for (i = 0; i < c->nroutes; i++) {
		if (strcmp(c->routes[i].domain, av[0]) == 0) {
			conf_error(p, "route: %s given twice (first at line "
			    "%zu)", av[0], p->route_lines[i]);
			return;
		}
	}
	if (relay_parse(p, "route", av + 1, ac - 1, &r) == -1)
		return;
	r.domain = xstrdup(av[0]);
	c->routes = xreallocarray(c->routes, c->nroutes + 1,
	    sizeof(*c->routes));
	p->route_lines = xreallocarray(p->route_lines, c->nroutes + 1,
	    sizeof(*p->route_lines));
	p->route_lines[c->nroutes] = p->line;
	c->routes[c->nroutes++] = r;
}

static void
key_smarthost(struct parse *p, char **av, size_t ac)
{
	struct conf_relay r;

	if (ac == 0) {
		conf_error(p, "smarthost needs a destination");
		return;
	}
	if (relay_parse(p, "smarthost", av, ac, &r) == -1)
		return;
	p->c->smarthost = xmalloc(sizeof(r));
	*p->c->smarthost = r;
}

/*
 * resolver_split - "IP", "IPv6", "IP:PORT" or "[IPv6]:PORT" (brackets
 * also without a port) into host (a new string) and port text (NULL:
 * none); -1 when s has none of the forms.
 */
static int
resolver_split(const char *s, char **host, const char **port)
{
	const char *colon = strchr(s, ':');

	if (s[0] == '[')
		return dest_split(s, host, port) == -1 ? -1 : 0;
	*port = NULL;
	if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		*host = xstrndup(s, (size_t)(colon - s));
		*port = colon + 1;
		return 0;
	}
	*host = xstrdup(s); /* no colon, or a bare IPv6 address */
	return 0;
}

/*
 * key_resolver - stored in libunbound's forwarder syntax, "IP" or
 * "IP@PORT" (ub_ctx_set_fwd()), so dns.c passes it on unchanged.
 */
static void
key_resolver(struct parse *p, char **av, size_t ac)
{
	const char *port;
	char *host = NULL, *ip;
	int n = 0;

	if (one_value(p, "resolver", ac) == -1)
		return;
	if (resolver_split(av[0], &host, &port) == -1 ||
	    (ip = ip_canonical(host)) == NULL) {
		conf_error(p, "resolver: \"%s\" is not IP, IP:PORT or "
		    "[IPv6]:PORT", av[0]);
		free(host);
		return;
	}
	free(host);
	if (port != NULL && port_parse(p, "resolver", port, &n) == -1) {
		free(ip);
		return;
	}
	p->c->resolver = port ? xasprintf("%s@%d", ip, n) : xstrdup(ip);
	free(ip);
}

enum {
	LIM_SIZE, LIM_RCPTS, LIM_LINE, LIM_SESSIONS, LIM_RESERVE, LIM_DEST,
	LIM_RECEIVED, LIM_AUTH, LIM_AUTH_CLIENT, LIM_LOCAL, LIM_MAILBOX,
	LIM_RATE, LIM_CSESSIONS, LIM_CCONNECT, LIM_CMESSAGE, LIM_CRCPT,
	LIM_CERRORS, LIM_CINVALID, LIM_CPREFIX, LIM_DNSBL, LIM_N
};

static const struct opt limit_opts[LIM_N] = {
	{ "message-size", OPT_SIZE, KIB, UINT64_MAX },
	{ "recipients", OPT_COUNT, 1, COUNT_MAX },
	{ "line-length", OPT_COUNT, LINE_LENGTH_MIN, LINE_LENGTH_MAX },
	{ "sessions", OPT_COUNT, 1, COUNT_MAX },
	{ "spool-reserve", OPT_SIZE, 0, UINT64_MAX },
	{ "destination-concurrency", OPT_COUNT, 1, DEST_CONCURRENCY_MAX },
	{ "received-headers", OPT_COUNT, 1, RECEIVED_MAX },
	{ "auth-failures", OPT_COUNT, 1, AUTH_FAILURES_MAX },
	{ "auth-client-failures", OPT_COUNT, 1, AUTH_CLIENT_FAILURES_MAX },
	{ "local-concurrency", OPT_COUNT, 1, LOCAL_CONCURRENCY_MAX },
	{ "mailbox-concurrency", OPT_COUNT, 1, LOCAL_CONCURRENCY_MAX },
	{ "data-rate", OPT_SIZE, 1, DATA_RATE_MAX },
	{ "client-sessions", OPT_COUNT, 0, COUNT_MAX },
	{ "client-connect-rate", OPT_COUNT, 0, COUNT_MAX },
	{ "client-message-rate", OPT_COUNT, 0, COUNT_MAX },
	{ "client-recipient-rate", OPT_COUNT, 0, COUNT_MAX },
	{ "client-errors", OPT_COUNT, 1, CLIENT_ERRORS_MAX },
	{ "client-invalid-recipients", OPT_COUNT, 1, COUNT_MAX },
	{ "client-ipv6-prefix", OPT_COUNT, IPV6_PREFIX_MIN, IPV6_PREFIX_MAX },
	{ "dnsbl-threshold", OPT_COUNT, 1, DNSBL_WEIGHT_MAX * DNSBL_ZONES_MAX },
};

/* key_client_limits - the per-client options of a limits line */
static void
key_client_limits(struct conf *c, const uint64_t *v, const int *given)
{
	unsigned *const to[LIM_N] = {
		[LIM_CSESSIONS] = &c->client_sessions,
		[LIM_CCONNECT] = &c->client_connect_rate,
		[LIM_CMESSAGE] = &c->client_message_rate,
		[LIM_CRCPT] = &c->client_rcpt_rate,
		[LIM_CERRORS] = &c->client_errors,
		[LIM_CINVALID] = &c->client_invalid_rcpts,
		[LIM_CPREFIX] = &c->client_ipv6_prefix,
	};
	int i;

	for (i = LIM_CSESSIONS; i <= LIM_CPREFIX; i++)
		if (given[i])
			*to[i] = (unsigned)v[i];
}

static void
key_limits(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	uint64_t v[LIM_N];
	int given[LIM_N] = { 0 };

	if (opts_parse(p, "limits", av, ac, limit_opts, LIM_N, v, given) == -1)
		return;
	if (given[LIM_SIZE])
		c->message_size = v[LIM_SIZE];
	if (given[LIM_RCPTS])
		c->max_rcpts = (unsigned)v[LIM_RCPTS];
	if (given[LIM_LINE])
		c->line_length = (size_t)v[LIM_LINE];
	if (given[LIM_SESSIONS])
		c->max_sessions = (unsigned)v[LIM_SESSIONS];
	if (given[LIM_RESERVE])
		c->spool_reserve = v[LIM_RESERVE];
	if (given[LIM_DEST])
		c->dest_concurrency = (unsigned)v[LIM_DEST];
	if (given[LIM_RECEIVED])
		c->max_received = (unsigned)v[LIM_RECEIVED];
	if (given[LIM_AUTH])
		c->auth_failures = (unsigned)v[LIM_AUTH];
	if (given[LIM_AUTH_CLIENT])
		c->auth_client_failures = (unsigned)v[LIM_AUTH_CLIENT];
	if (given[LIM_LOCAL])
		c->local_concurrency = (unsigned)v[LIM_LOCAL];
	if (given[LIM_MAILBOX])
		c->mailbox_concurrency = (unsigned)v[LIM_MAILBOX];
	if (given[LIM_RATE])
		c->data_rate = v[LIM_RATE];
	if (given[LIM_DNSBL])
		c->dnsbl_threshold = (unsigned)v[LIM_DNSBL];
	key_client_limits(c, v, given);
}

enum { TMO_COMMAND, TMO_DATA, TMO_MESSAGE, TMO_CONNECT, TMO_REMOTE,
	TMO_REMOTE_DATA, TMO_DELIVERY, TMO_PROXY, TMO_N };

static const struct opt timeout_opts[TMO_N] = {
	{ "command", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "data", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "message", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "connect", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "remote-command", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "remote-data", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "delivery", OPT_DURATION, MS_S, TIMEOUT_MAX },
	{ "proxy", OPT_DURATION, MS_S, 5 * MS_M },
};

static void
key_timeouts(struct parse *p, char **av, size_t ac)
{
	int64_t *field[TMO_N] = {
		&p->c->timeout_command_ms, &p->c->timeout_data_ms,
		&p->c->timeout_message_ms, &p->c->timeout_connect_ms,
		&p->c->timeout_remote_ms, &p->c->timeout_remote_data_ms,
		&p->c->timeout_delivery_ms, &p->c->timeout_proxy_ms,
	};
	uint64_t v[TMO_N];
	int given[TMO_N] = { 0 };
	size_t i;

	if (opts_parse(p, "timeouts", av, ac, timeout_opts, TMO_N, v,
	    given) == -1)
		return;
	for (i = 0; i < TMO_N; i++)
		if (given[i])
			*field[i] = (int64_t)v[i];
}

static const struct opt retry_opts[] = {
	{ "first", OPT_DURATION, MS_S, RETRY_MAX_DURATION },
	{ "max", OPT_DURATION, MS_S, RETRY_MAX_DURATION },
	{ "lifetime", OPT_DURATION, MS_S, RETRY_MAX_DURATION },
	{ "warn", OPT_DURATION, 0, RETRY_MAX_DURATION }, /* 0: no warning */
};

static void
key_retry(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;
	char a[32], b[32];
	uint64_t v[4];
	int given[4] = { 0, 0, 0, 0 };
	int64_t first, max;

	if (opts_parse(p, "retry", av, ac, retry_opts, 4, v, given) == -1)
		return;
	first = given[0] ? (int64_t)v[0] : c->retry_first_ms;
	max = given[1] ? (int64_t)v[1] : c->retry_max_ms;
	if (first > max) {
		conf_format_duration(first, a, sizeof(a));
		conf_format_duration(max, b, sizeof(b));
		conf_error(p, "retry: first=%s is longer than max=%s", a, b);
		return;
	}
	c->retry_first_ms = first;
	c->retry_max_ms = max;
	if (given[2])
		c->retry_lifetime_ms = (int64_t)v[2];
	if (given[3])
		c->retry_warn_ms = (int64_t)v[3];
}

static void
key_log(struct parse *p, char **av, size_t ac)
{
	struct conf *c = p->c;

	if (ac < 1 || ac > 2 || (ac == 2 && strcmp(av[1], "verbose") != 0)) {
		conf_error(p, "log takes stderr or syslog, then optionally "
		    "verbose");
		return;
	}
	if (strcmp(av[0], "stderr") != 0 && strcmp(av[0], "syslog") != 0) {
		conf_error(p, "log: \"%s\" is not stderr or syslog", av[0]);
		return;
	}
	c->log_syslog = strcmp(av[0], "syslog") == 0;
	c->verbose = ac == 2;
}

static const struct conf_key conf_key_table[NKEYS] = {
	CONF_KEY_LIST(KEY_ROW)
};

static const char *const conf_key_names[NKEYS + 1] = {
	CONF_KEY_LIST(KEY_NAME) NULL
};

/* ---- lines and words ------------------------------------------------ */

/* quoted - the quoted part at *sp (after its '"') into b; -1 reported */
static int
quoted(struct parse *p, const char **sp, struct buf *b)
{
	const char *s = *sp;

	for (; *s != '"'; s++) {
		if (*s == '\0') {
			conf_error(p, "unterminated quoted word");
			return -1;
		}
		if (*s != '\\') {
			buf_putc(b, *s);
			continue;
		}
		if (s[1] != '"' && s[1] != '\\') {
			conf_error(p, "bad escape in quoted word (only \\\" "
			    "and \\\\)");
			return -1;
		}
		buf_putc(b, *++s);
	}
	*sp = s + 1;
	return 0;
}

static void
words_push(struct words *w, char *s)
{
	if (w->n + 1 >= w->cap) {
		w->cap = w->cap ? w->cap * 2 : 8;
		w->v = xreallocarray(w->v, w->cap, sizeof(*w->v));
	}
	w->v[w->n++] = s;
	w->v[w->n] = NULL;
}

static void
words_free(struct words *w)
{
	str_free(w->v, w->n);
	memset(w, 0, sizeof(*w));
}

/*
 * split_line - the words of s into w.  Spaces and tabs separate words, '#'
 * outside quotes starts a comment, "..." keeps spaces and may touch
 * unquoted text (file:"/a b" is one word).  Returns -1 reported.
 */
static int
split_line(struct parse *p, const char *s, struct words *w)
{
	struct buf b;

	for (;;) {
		s += strspn(s, " \t");
		if (*s == '\0' || *s == '#')
			return 0;
		buf_init(&b);
		while (*s != '\0' && strchr(" \t#", *s) == NULL) {
			if (*s != '"') {
				buf_putc(&b, *s++);
				continue;
			}
			s++;
			if (quoted(p, &s, &b) == -1) {
				buf_free(&b);
				return -1;
			}
		}
		words_push(w, b.data);
	}
}

/* line_clean - drop the line end; -1 reported on a control character */
static int
line_clean(struct parse *p, char *line, size_t len)
{
	size_t i;

	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if ((ch < ' ' && ch != '\t') || ch == 0x7f) {
			conf_error(p, "control character 0x%02x in line", ch);
			return -1;
		}
	}
	return 0;
}

/* dispatch - hand the words of one line to their key's function */
static void
dispatch(struct parse *p, struct words *w)
{
	size_t k;

	for (k = 0; k < NKEYS; k++)
		if (strcmp(conf_key_table[k].name, w->v[0]) == 0)
			break;
	if (k == NKEYS) {
		conf_error(p, "unknown key \"%s\"", w->v[0]);
		return;
	}
	if (p->seen[k] && !conf_key_table[k].repeat) {
		conf_error(p, "%s given twice (first at line %zu)", w->v[0],
		    p->seen[k]);
		return;
	}
	if (p->seen[k] == 0)
		p->seen[k] = p->line;
	conf_key_table[k].fn(p, w->v + 1, w->n - 1);
}

/* parse_file - every line of path; -1 when the file cannot be read */
static int
parse_file(struct parse *p, const char *path)
{
	struct words w = { NULL, 0, 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	errno = 0;
	while ((len = getline(&line, &cap, fp)) != -1) {
		p->line++;
		if (strlen(line) != (size_t)len) {
			conf_error(p, "NUL byte in line");
			continue;
		}
		if (line_clean(p, line, (size_t)len) == 0 &&
		    split_line(p, line, &w) == 0 && w.n > 0)
			dispatch(p, &w);
		words_free(&w);
	}
	free(line);
	if (ferror(fp)) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

/* ---- defaults, $TERN_HOME, the mailbox pattern ---------------------- */

static char *
default_hostname(void)
{
	char name[256];

	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		return xstrdup("localhost");
	name[sizeof(name) - 1] = '\0';
	return xstrdup(name);
}

static void
default_listen(struct conf *c, int family, const char *addr, int optional)
{
	unsigned char bin[16];
	struct conf_listen *l;

	if (inet_pton(family, addr, bin) != 1)
		panic("bad default listen address %s", addr);
	c->listens = xreallocarray(c->listens, c->nlistens + 1,
	    sizeof(*c->listens));
	l = &c->listens[c->nlistens++];
	memset(l, 0, sizeof(*l));
	listen_defaults(l);
	listen_fill(l, family, bin, DEF_PORT);
	l->optional = optional;
}

/*
 * method_expand - a method as the rest of tern uses it: for maildir: and
 * mbox: "$home" at the start of the path expanded ('%' in home doubled so
 * it stays literal) and the path checked: absolute or ~/ (a system user's
 * home), only %u %d %a %%.  what names the key in messages.
 */
static char *
method_expand(struct parse *p, const char *what, const char *raw,
    const char *home)
{
	const char *colon = strchr(raw, ':'), *s, *rest;
	struct buf b;

	if (strncmp(raw, "maildir:", 8) != 0 && strncmp(raw, "mbox:", 5) != 0)
		return xstrdup(raw);
	rest = colon + 1;
	buf_init(&b);
	buf_append(&b, raw, (size_t)(rest - raw));
	if (strncmp(rest, "$home", 5) == 0 && (rest[5] == '/' || !rest[5])) {
		for (s = home; *s; s++) {
			if (*s == '%')
				buf_putc(&b, '%');
			buf_putc(&b, *s);
		}
		rest += 5;
	}
	buf_puts(&b, rest);
	s = b.data + (colon + 1 - raw);
	if (s[0] != '/' && strncmp(s, "~/", 2) != 0) {
		conf_error(p, "%s: %s is not an absolute path or ~/PATH",
		    what, raw);
		buf_free(&b);
		return NULL;
	}
	for (; (s = strchr(s, '%')) != NULL; s += 2) {
		if (s[1] == '\0' || strchr("uda%", s[1]) == NULL) {
			conf_error(p, "%s: \"%.2s\" is not %%u, %%d, %%a "
			    "or %%%%", what, s);
			buf_free(&b);
			return NULL;
		}
	}
	return b.data;
}

/* finish_local - the methods with $home, and the defaults of local
 * delivery */
static void
finish_local(struct parse *p)
{
	struct conf *c = p->c;
	const char *def = c->recipients == RECIPIENTS_SYSTEM ?
	    DEF_MAILBOX_SYSTEM : DEF_MAILBOX;
	size_t i;

	p->line = p->mailbox_line;
	c->mailbox = method_expand(p, "mailbox", p->mailbox ? p->mailbox :
	    def, c->home);
	for (i = 0; i < c->nmailbox_for; i++) {
		p->line = p->mfor_lines[i];
		c->mailbox_for[i].method = method_expand(p, "mailbox-for",
		    p->mfor_raw[i], c->home);
	}
	if (c->alias_user == NULL)
		c->alias_user = xstrdup(DEF_ALIAS_USER);
}

/*
 * check_local_overlap - a local domain is delivered here, so it can be
 * neither relayed nor routed elsewhere.  Checked once local-domains has
 * its default, reported at the line of the relay-domains or route key.
 */
static void
check_local_overlap(struct parse *p)
{
	const struct conf *c = p->c;
	size_t i;

	for (i = 0; i < c->nrelay_domains; i++) {
		if (!conf_is_local_domain(c, c->relay_domains[i]))
			continue;
		p->line = p->relay_lines[i];
		conf_error(p, "relay-domains: %s is also a local domain",
		    c->relay_domains[i]);
	}
	for (i = 0; i < c->nroutes; i++) {
		if (!conf_is_local_domain(c, c->routes[i].domain))
			continue;
		p->line = p->route_lines[i];
		conf_error(p, "route: %s is a local domain, delivered here",
		    c->routes[i].domain);
	}
}

/* finish - the defaults of what the file left out, then $TERN_HOME */
static void
finish(struct parse *p)
{
	struct conf *c = p->c;
	const char *env = getenv("TERN_HOME");

	if (c->hostname == NULL)
		c->hostname = default_hostname();
	if (env != NULL && env[0] != '\0') {
		free(c->home);
		c->home = path_absolute(env);
	} else if (c->home == NULL) {
		c->home = path_absolute(DEF_HOME);
	}
	if (c->user == NULL)
		c->user = xstrdup(DEF_USER);
	if (c->smtpd_user == NULL)
		c->smtpd_user = xstrdup(DEF_SMTPD_USER);
	if (c->nlistens == 0) {
		default_listen(c, AF_INET, "127.0.0.1", 0);
		default_listen(c, AF_INET6, "::1", 1);
	}
	if (c->nlocal_domains == 0) {
		char *lower = xstrdup(c->hostname);

		util_lower(lower);
		str_push(&c->local_domains, &c->nlocal_domains, "localhost");
		if (strcmp(lower, "localhost") != 0)
			str_push(&c->local_domains, &c->nlocal_domains, lower);
		free(lower);
	}
	check_local_overlap(p);
	finish_local(p);
}

static struct conf *
conf_new(void)
{
	struct conf *c = xcalloc(1, sizeof(*c));

	c->recipients = RECIPIENTS_ANY;
	c->tls_ciphers = TLS_CIPHERS_MODERN;
	c->message_size = DEF_MESSAGE_SIZE;
	c->max_rcpts = DEF_MAX_RCPTS;
	c->line_length = DEF_LINE_LENGTH;
	c->max_sessions = DEF_SESSIONS;
	c->spool_reserve = DEF_SPOOL_RESERVE;
	c->timeout_command_ms = DEF_TIMEOUT_COMMAND;
	c->timeout_data_ms = DEF_TIMEOUT_DATA;
	c->timeout_message_ms = DEF_TIMEOUT_MESSAGE;
	c->data_rate = DEF_DATA_RATE;
	c->retry_first_ms = DEF_RETRY_FIRST;
	c->retry_max_ms = DEF_RETRY_MAX;
	c->retry_lifetime_ms = DEF_RETRY_LIFETIME;
	c->retry_warn_ms = DEF_RETRY_WARN;
	c->timeout_connect_ms = DEF_TIMEOUT_CONNECT;
	c->timeout_remote_ms = DEF_TIMEOUT_REMOTE;
	c->timeout_remote_data_ms = DEF_TIMEOUT_REMOTE_DATA;
	c->dest_concurrency = DEF_DEST_CONCURRENCY;
	c->max_received = DEF_MAX_RECEIVED;
	c->auth_failures = DEF_AUTH_FAILURES;
	c->auth_client_failures = DEF_AUTH_CLIENT_FAILURES;
	c->client_sessions = DEF_CLIENT_SESSIONS;
	c->client_connect_rate = DEF_CLIENT_CONNECT_RATE;
	c->client_message_rate = DEF_CLIENT_MESSAGE_RATE;
	c->client_rcpt_rate = DEF_CLIENT_RCPT_RATE;
	c->client_errors = DEF_CLIENT_ERRORS;
	c->client_invalid_rcpts = DEF_CLIENT_INVALID_RCPTS;
	c->client_ipv6_prefix = DEF_CLIENT_IPV6_PREFIX;
	c->forward = xstrdup(DEF_FORWARD);
	c->subaddress = DEF_SUBADDRESS;
	c->min_uid = DEF_MIN_UID;
	c->local_concurrency = DEF_LOCAL_CONCURRENCY;
	c->mailbox_concurrency = DEF_MAILBOX_CONCURRENCY;
	c->timeout_delivery_ms = DEF_TIMEOUT_DELIVERY;
	c->timeout_proxy_ms = DEF_TIMEOUT_PROXY;
	c->dnsbl_threshold = DEF_DNSBL_THRESHOLD;
	return c;
}

/* conf_load - read path or the embedded defaults; NULL after errors */
struct conf *
conf_load(const char *path)
{
	struct parse p;

	memset(&p, 0, sizeof(p));
	p.c = conf_new();
	p.file = path ? path : "embedded defaults";
	if (path != NULL) {
		p.c->file = xstrdup(path);
		if (parse_file(&p, path) == -1)
			p.errors++;
		else
			check_roles(&p);
	}
	if (p.errors == 0)
		finish(&p);
	free(p.mailbox);
	str_free(p.mfor_raw, p.c ? p.c->nmailbox_for : 0);
	free(p.mfor_lines);
	free(p.relay_lines);
	free(p.route_lines);
	free(p.listen_lines);
	free(p.cert_lines);
	free(p.sender_lines);
	if (p.errors == 0)
		return p.c;
	conf_free(p.c);
	return NULL;
}

/* conf_find_path - -c FILE, else $TERN_CONF, else the system file */
const char *
conf_find_path(const char *explicit_path)
{
	const char *env = getenv("TERN_CONF");

	if (explicit_path != NULL)
		return explicit_path;
	if (env != NULL && env[0] != '\0')
		return env;
	if (access(CONF_DEFAULT_PATH, F_OK) == 0)
		return CONF_DEFAULT_PATH;
	return NULL;
}

/* conf_free - release a configuration */
void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->file);
	free(c->hostname);
	free(c->home);
	free(c->user);
	free(c->smtpd_user);
	for (i = 0; i < c->nlistens; i++) {
		free(c->listens[i].addr);
		free(c->listens[i].proxy_from);
	}
	free(c->listens);
	for (i = 0; i < c->ndnsbls; i++)
		dnsbl_free(&c->dnsbls[i]);
	free(c->dnsbls);
	str_free(c->local_domains, c->nlocal_domains);
	free(c->recipients_file);
	str_free(c->recipient_list, c->nrecipient_list);
	free(c->mailbox);
	for (i = 0; i < c->nmailbox_for; i++) {
		free(c->mailbox_for[i].user);
		free(c->mailbox_for[i].method);
	}
	free(c->mailbox_for);
	free(c->aliases_file);
	free(c->alias_user);
	free(c->control_group);
	free(c->forward);
	free(c->trusted);
	str_free(c->relay_domains, c->nrelay_domains);
	free(c->relay_recipients_file);
	str_free(c->relay_recipient_list, c->nrelay_recipient_list);
	for (i = 0; i < c->nroutes; i++)
		relay_free(&c->routes[i]);
	free(c->routes);
	if (c->smarthost != NULL)
		relay_free(c->smarthost);
	free(c->smarthost);
	free(c->resolver);
	for (i = 0; i < c->ncerts; i++) {
		free(c->certs[i].cert);
		free(c->certs[i].key);
	}
	free(c->certs);
	free(c->users_file);
	for (i = 0; i < c->nsenders; i++) {
		free(c->senders[i].user);
		str_free(c->senders[i].addrs, c->senders[i].naddrs);
	}
	free(c->senders);
	free(c);
}

/* ---- printing ------------------------------------------------------- */

/* print_word - a space and s, quoted when it would not read back as is */
static void
print_word(FILE *fp, const char *s)
{
	fputc(' ', fp);
	if (s[0] != '\0' && strpbrk(s, " \t#\"\\") == NULL) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

/* print_key - "key word word..." from the NULL-terminated words */
static void
print_key(FILE *fp, const char *key, const char *const *words)
{
	fputs(key, fp);
	for (; *words != NULL; words++)
		print_word(fp, *words);
	fputc('\n', fp);
}

/* net_text - ",ADDR/PREFIX" of n (the comma only after the first) */
static void
net_text(struct buf *b, const struct conf_net *n, int first)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(n->family, n->addr, addr, sizeof(addr));
	buf_printf(b, "%s%s/%u", first ? "" : ",", addr, n->prefix);
}

static void
print_listen(FILE *fp, const struct conf_listen *l)
{
	char addr[INET6_ADDRSTRLEN + 16], pause[48], pass[48], dur[32];
	const char *words[8] = { addr, "role=smtp", NULL, NULL, NULL, NULL,
		NULL, NULL };
	struct buf proxy;
	size_t n = 2, i;

	buf_init(&proxy);
	if (strchr(l->addr, ':'))
		snprintf(addr, sizeof(addr), "[%s]:%d", l->addr, l->port);
	else
		snprintf(addr, sizeof(addr), "%s:%d", l->addr, l->port);
	if (l->role == ROLE_SUBMISSION)
		words[1] = "role=submission";
	else if (l->role == ROLE_SUBMISSIONS)
		words[1] = "role=submissions";
	if (l->greet_pause_ms > 0) {
		conf_format_duration(l->greet_pause_ms, dur, sizeof(dur));
		snprintf(pause, sizeof(pause), "greet-pause=%s", dur);
		words[n++] = pause;
		/* these two only act with a greet pause */
		conf_format_duration(l->greet_pass_ms, dur, sizeof(dur));
		snprintf(pass, sizeof(pass), "greet-pass=%s", dur);
		words[n++] = pass;
		words[n++] = l->pipelining_drop ? "improper-pipelining=drop" :
		    "improper-pipelining=allow";
	}
	if (l->nproxy_from > 0) {
		buf_puts(&proxy, "proxy-from=");
		for (i = 0; i < l->nproxy_from; i++)
			net_text(&proxy, &l->proxy_from[i], i == 0);
		words[n++] = proxy.data;
	}
	if (l->optional)
		words[n++] = "optional";
	print_key(fp, "listen", words);
	buf_free(&proxy);
}

/* print_dnsbls - the dnsbl and dnswl lines */
static void
print_dnsbls(FILE *fp, const struct conf *c)
{
	const struct conf_dnsbl *b;
	char ip[INET_ADDRSTRLEN];
	size_t i, k;

	if (c->ndnsbls == 0)
		fputs("# dnsbl, dnswl: none\n", fp);
	for (i = 0; i < c->ndnsbls; i++) {
		b = &c->dnsbls[i];
		fprintf(fp, "%s %s", b->allow ? "dnswl" : "dnsbl", b->zone);
		if (!b->allow)
			fprintf(fp, " weight=%u", b->weight);
		for (k = 0; k < b->nmatch; k++) {
			inet_ntop(AF_INET, b->match[k], ip, sizeof(ip));
			fprintf(fp, "%s%s", k ? "," : " match=", ip);
		}
		fputc('\n', fp);
	}
}

static void
print_list(FILE *fp, const char *key, char **v, size_t n)
{
	size_t i;

	fputs(key, fp);
	for (i = 0; i < n; i++)
		print_word(fp, v[i]);
	fputc('\n', fp);
}

static void
print_recipients(FILE *fp, const struct conf *c)
{
	char *file;

	if (c->recipients == RECIPIENTS_SYSTEM) {
		fprintf(fp, "recipients system min-uid=%u\n", c->min_uid);
		return;
	}
	if (c->recipients != RECIPIENTS_FILE) {
		fputs("recipients any\n", fp);
		return;
	}
	file = xasprintf("file:%s", c->recipients_file);
	print_key(fp, "recipients", (const char *[]){ file, NULL });
	free(file);
}

/* print_local - how local mail is delivered */
static void
print_local(FILE *fp, const struct conf *c)
{
	char sep[2] = { c->subaddress, '\0' };
	size_t i;

	print_key(fp, "mailbox", (const char *[]){ c->mailbox, NULL });
	for (i = 0; i < c->nmailbox_for; i++)
		print_key(fp, "mailbox-for", (const char *[]){
		    c->mailbox_for[i].user, c->mailbox_for[i].method, NULL });
	print_key(fp, "aliases", (const char *[]){
	    c->aliases_file ? c->aliases_file : "none", NULL });
	print_key(fp, "alias-user", (const char *[]){ c->alias_user, NULL });
	print_key(fp, "forward", (const char *[]){
	    c->forward ? c->forward : "none", NULL });
	print_key(fp, "subaddress", (const char *[]){
	    c->subaddress ? sep : "none", NULL });
}

static void
print_trusted(FILE *fp, const struct conf *c)
{
	char addr[INET6_ADDRSTRLEN];
	size_t i;

	fputs("trusted-networks", fp);
	if (c->ntrusted == 0)
		fputs(" none", fp);
	for (i = 0; i < c->ntrusted; i++) {
		inet_ntop(c->trusted[i].family, c->trusted[i].addr, addr,
		    sizeof(addr));
		fprintf(fp, " %s/%u", addr, c->trusted[i].prefix);
	}
	fputc('\n', fp);
}

static void
print_limits(FILE *fp, const struct conf *c)
{
	char size[32], reserve[32], rate[32];

	conf_format_size(c->message_size, size, sizeof(size));
	conf_format_size(c->spool_reserve, reserve, sizeof(reserve));
	conf_format_size(c->data_rate, rate, sizeof(rate));
	fprintf(fp, "limits message-size=%s recipients=%u line-length=%zu "
	    "sessions=%u spool-reserve=%s destination-concurrency=%u "
	    "received-headers=%u auth-failures=%u auth-client-failures=%u "
	    "local-concurrency=%u mailbox-concurrency=%u data-rate=%s",
	    size, c->max_rcpts, c->line_length, c->max_sessions, reserve,
	    c->dest_concurrency, c->max_received, c->auth_failures,
	    c->auth_client_failures, c->local_concurrency,
	    c->mailbox_concurrency, rate);
	fprintf(fp, " client-sessions=%u client-connect-rate=%u "
	    "client-message-rate=%u client-recipient-rate=%u "
	    "client-errors=%u client-invalid-recipients=%u "
	    "client-ipv6-prefix=%u dnsbl-threshold=%u\n", c->client_sessions,
	    c->client_connect_rate, c->client_message_rate,
	    c->client_rcpt_rate, c->client_errors, c->client_invalid_rcpts,
	    c->client_ipv6_prefix, c->dnsbl_threshold);
}

static void
print_timeouts(FILE *fp, const struct conf *c)
{
	const int64_t v[TMO_N] = {
		c->timeout_command_ms, c->timeout_data_ms,
		c->timeout_message_ms, c->timeout_connect_ms,
		c->timeout_remote_ms, c->timeout_remote_data_ms,
		c->timeout_delivery_ms, c->timeout_proxy_ms,
	};
	char dur[32];
	size_t i;

	fputs("timeouts", fp);
	for (i = 0; i < TMO_N; i++) {
		conf_format_duration(v[i], dur, sizeof(dur));
		fprintf(fp, " %s=%s", timeout_opts[i].name, dur);
	}
	fputc('\n', fp);
}

static void
print_retry(FILE *fp, const struct conf *c)
{
	char first[32], max[32], life[32], warn[32];

	conf_format_duration(c->retry_first_ms, first, sizeof(first));
	conf_format_duration(c->retry_max_ms, max, sizeof(max));
	conf_format_duration(c->retry_lifetime_ms, life, sizeof(life));
	conf_format_duration(c->retry_warn_ms, warn, sizeof(warn));
	fprintf(fp, "retry first=%s max=%s lifetime=%s warn=%s\n", first, max,
	    life, warn);
}

static void
print_relay_recipients(FILE *fp, const struct conf *c)
{
	char *file;

	if (c->relay_recipients_file == NULL) {
		fputs("# relay-recipients: not set, every recipient of a relay "
		    "domain is accepted\n", fp);
		return;
	}
	file = xasprintf("file:%s", c->relay_recipients_file);
	print_key(fp, "relay-recipients", (const char *[]){ file, NULL });
	free(file);
}

/* print_relay - "KEY [DOMAIN] DEST tls=POLICY [auth=FILE] [ca=FILE]" */
static void
print_relay(FILE *fp, const char *key, const struct conf_relay *r)
{
	const char *words[6] = { NULL };
	char *dest, *tls, *auth = NULL, *ca = NULL;
	size_t n = 0;

	if (r->mx)
		dest = xasprintf("%s:%d", r->host, r->port);
	else
		dest = xasprintf("[%s]:%d", r->host, r->port);
	tls = xasprintf("tls=%s", tls_names[r->tls]);
	if (r->domain != NULL)
		words[n++] = r->domain;
	words[n++] = dest;
	words[n++] = tls;
	if (r->auth_file != NULL)
		words[n++] = auth = xasprintf("auth=%s", r->auth_file);
	if (r->ca_file != NULL)
		words[n++] = ca = xasprintf("ca=%s", r->ca_file);
	print_key(fp, key, words);
	free(dest);
	free(tls);
	free(auth);
	free(ca);
}

/* print_resolver - "IP@PORT" back in the file's form, "[IPv6]:PORT" */
static void
print_resolver(FILE *fp, const struct conf *c)
{
	const char *at;
	int len;

	if (c->resolver == NULL) {
		fputs("# resolver: not set, the system's (/etc/resolv.conf "
		    "and /etc/hosts)\n", fp);
		return;
	}
	at = strchr(c->resolver, '@');
	if (at == NULL) {
		fprintf(fp, "resolver %s\n", c->resolver);
		return;
	}
	len = (int)(at - c->resolver);
	if (memchr(c->resolver, ':', (size_t)len) != NULL)
		fprintf(fp, "resolver [%.*s]:%s\n", len, c->resolver, at + 1);
	else
		fprintf(fp, "resolver %.*s:%s\n", len, c->resolver, at + 1);
}

/* print_relays - relay-domains and relay-recipients */
static void
print_relays(FILE *fp, const struct conf *c)
{
	if (c->nrelay_domains > 0)
		print_list(fp, "relay-domains", c->relay_domains,
		    c->nrelay_domains);
	else
		fputs("# relay-domains: none\n", fp);
	print_relay_recipients(fp, c);
}

/* print_onward - routes, smarthost, resolver */
static void
print_onward(FILE *fp, const struct conf *c)
{
	size_t i;

	for (i = 0; i < c->nroutes; i++)
		print_relay(fp, "route", &c->routes[i]);
	if (c->smarthost != NULL)
		print_relay(fp, "smarthost", c->smarthost);
	else
		fputs("# smarthost: none, other domains by MX\n", fp);
	print_resolver(fp, c);
}

/* print_auth - tls, tls-ciphers, users and senders */
static void
print_auth(FILE *fp, const struct conf *c)
{
	char *cert, *key;
	size_t i;

	for (i = 0; i < c->ncerts; i++) {
		cert = xasprintf("cert=%s", c->certs[i].cert);
		key = xasprintf("key=%s", c->certs[i].key);
		print_key(fp, "tls", (const char *[]){ cert, key, NULL });
		free(cert);
		free(key);
	}
	if (c->ncerts == 0)
		fputs("# tls: none, STARTTLS is not offered\n", fp);
	print_key(fp, "tls-ciphers",
	    (const char *[]){ tls_ciphers_names[c->tls_ciphers], NULL });
	if (c->users_file != NULL)
		print_key(fp, "users", (const char *[]){ c->users_file, NULL });
	else
		fputs("# users: not set, AUTH is not offered\n", fp);
	for (i = 0; i < c->nsenders; i++) {
		fputs("senders", fp);
		print_word(fp, c->senders[i].user);
		print_list(fp, "", c->senders[i].addrs, c->senders[i].naddrs);
	}
}

/* conf_print - the effective configuration, in the file's own syntax */
void
conf_print(const struct conf *c, FILE *fp)
{
	char *src = util_sanitise_dup(c->file ? c->file : "", 4096);
	size_t i;

	fprintf(fp, "# tern configuration from %s\n",
	    c->file ? src : "embedded defaults");
	free(src);
	print_key(fp, "hostname", (const char *[]){ c->hostname, NULL });
	print_key(fp, "home", (const char *[]){ c->home, NULL });
	print_key(fp, "user", (const char *[]){ c->user, NULL });
	print_key(fp, "smtpd-user", (const char *[]){ c->smtpd_user, NULL });
	print_key(fp, "control-group", (const char *[]){
	    c->control_group ? c->control_group : "none", NULL });
	for (i = 0; i < c->nlistens; i++)
		print_listen(fp, &c->listens[i]);
	print_list(fp, "local-domains", c->local_domains, c->nlocal_domains);
	print_relays(fp, c);
	print_recipients(fp, c);
	print_local(fp, c);
	print_trusted(fp, c);
	print_dnsbls(fp, c);
	print_auth(fp, c);
	print_onward(fp, c);
	print_limits(fp, c);
	print_timeouts(fp, c);
	print_retry(fp, c);
	fprintf(fp, "log %s%s\n", c->log_syslog ? "syslog" : "stderr",
	    c->verbose ? " verbose" : "");
}

/* ---- questions the other modules ask -------------------------------- */

/* conf_is_local_domain - 1 when domain (any case) is one of ours */
int
conf_is_local_domain(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->nlocal_domains; i++)
		if (strcasecmp(c->local_domains[i], domain) == 0)
			return 1;
	return 0;
}

/* net_match - 1 when the address bytes of family lie inside n */
static int
net_match(const struct conf_net *n, int family, const unsigned char *addr)
{
	unsigned whole = n->prefix / 8, bits = n->prefix % 8;
	unsigned char mask;

	if (n->family != family || memcmp(n->addr, addr, whole) != 0)
		return 0;
	if (bits == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - bits));
	return (n->addr[whole] & mask) == (addr[whole] & mask);
}

/* conf_is_trusted - 1 when the client address is in trusted-networks */
int
conf_is_trusted(const struct conf *c, const struct sockaddr *sa)
{
	return conf_net_match(c->trusted, c->ntrusted, sa);
}

/* conf_net_match - 1 when the address lies in one of the networks */
int
conf_net_match(const struct conf_net *nets, size_t n,
    const struct sockaddr *sa)
{
	const unsigned char *v6 = NULL, *v4 = NULL;
	size_t i;

	if (sa->sa_family == AF_INET)
		v4 = (const unsigned char *)&((const struct sockaddr_in *)sa)
		    ->sin_addr;
	if (sa->sa_family == AF_INET6)
		v6 = (const unsigned char *)&((const struct sockaddr_in6 *)sa)
		    ->sin6_addr;
	/* ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket */
	if (v6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)v6))
		v4 = v6 + 12;
	for (i = 0; i < n; i++) {
		if (v4 && net_match(&nets[i], AF_INET, v4))
			return 1;
		if (v6 && net_match(&nets[i], AF_INET6, v6))
			return 1;
	}
	return 0;
}

static int
recipient_has(const struct conf *c, const char *key)
{
	if (c->nrecipient_list == 0)
		return 0; /* bsearch wants a list, even an empty one */
	return bsearch(&key, c->recipient_list, c->nrecipient_list,
	    sizeof(char *), str_cmp) != NULL;
}

/* conf_recipient_known - 1 when "recipients" accepts local@domain */
int
conf_recipient_known(const struct conf *c, const char *local,
    const char *domain)
{
	char *key;
	int found;

	if (c->recipients == RECIPIENTS_ANY)
		return 1;
	if (c->recipients == RECIPIENTS_SYSTEM) {
		/* root and system accounts get mail only through an alias */
		struct passwd *pw = getpwnam(local);

		return pw != NULL && pw->pw_uid != 0 && pw->pw_uid >= c->min_uid;
	}
	key = xasprintf("%s@%s", local, domain);
	util_lower(key);
	found = recipient_has(c, key);
	/* "@domain": every local part of the domain (a catch-all) */
	found = found || recipient_has(c, key + strlen(local));
	key[strlen(local)] = '\0';
	found = found || recipient_has(c, key);
	free(key);
	return found;
}

/* conf_mailbox_method - the user's mailbox-for, else mailbox */
const char *
conf_mailbox_method(const struct conf *c, const char *user)
{
	size_t i;

	for (i = 0; i < c->nmailbox_for; i++)
		if (strcmp(c->mailbox_for[i].user, user) == 0)
			return c->mailbox_for[i].method;
	return c->mailbox;
}

/* conf_is_relay_domain - 1 when domain (any case) is in relay-domains */
int
conf_is_relay_domain(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->nrelay_domains; i++)
		if (strcasecmp(c->relay_domains[i], domain) == 0)
			return 1;
	return 0;
}

static int
relay_recipient_has(const struct conf *c, const char *key)
{
	if (c->nrelay_recipient_list == 0)
		return 0; /* bsearch wants a list, even an empty one */
	return bsearch(&key, c->relay_recipient_list,
	    c->nrelay_recipient_list, sizeof(char *), str_cmp) != NULL;
}

/* conf_relay_recipient_known - relay-recipients unset, or lists it */
int
conf_relay_recipient_known(const struct conf *c, const char *local,
    const char *domain)
{
	char *key;
	int found;

	if (c->relay_recipients_file == NULL)
		return 1;
	key = xasprintf("%s@%s", local, domain);
	util_lower(key);
	found = relay_recipient_has(c, key) ||
	    relay_recipient_has(c, key + strlen(local));
	free(key);
	return found;
}

/* conf_route_for - the route for domain (any case), or NULL */
const struct conf_relay *
conf_route_for(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->nroutes; i++)
		if (strcasecmp(c->routes[i].domain, domain) == 0)
			return &c->routes[i];
	return NULL;
}

/* addr_local_is - 1 when the local part of addr (before domain) is name,
 * in any case */
static int
addr_local_is(const char *addr, const char *domain, const char *name)
{
	size_t len = (size_t)(domain - 1 - addr);

	return strlen(name) == len && strncasecmp(addr, name, len) == 0;
}

/* senders_match - 1 when s lists addr, or "@domain" of its domain */
static int
senders_match(const struct conf_senders *s, const char *addr,
    const char *domain)
{
	size_t i;

	for (i = 0; i < s->naddrs; i++) {
		if (s->addrs[i][0] == '@' &&
		    strcasecmp(s->addrs[i] + 1, domain) == 0)
			return 1;
		if (strcasecmp(s->addrs[i], addr) == 0)
			return 1;
	}
	return 0;
}

/*
 * conf_sender_allowed - "senders USER" when given, else the user's own
 * address: the name itself when it has an '@', else name@ each local
 * domain.  Compared without regard to case, as the users file's names
 * are (auth_check); a subaddress (name+tag@) is not the name's.
 */
int
conf_sender_allowed(const struct conf *c, const char *user, const char *addr)
{
	const struct conf_senders *s;
	const char *at;

	if (addr[0] == '\0')
		return 1; /* <>: bounces and reports, RFC 5321 4.5.5 */
	at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0')
		return 0;
	if ((s = senders_find(c, user, NULL)) != NULL)
		return senders_match(s, addr, at + 1);
	if (strchr(user, '@') != NULL)
		return strcasecmp(user, addr) == 0;
	return addr_local_is(addr, at + 1, user) &&
	    conf_is_local_domain(c, at + 1);
}

/* conf_keys - every key the parser implements, NULL-terminated */
const char *const *
conf_keys(void)
{
	return conf_key_names;
}

/* opt_name_list - the names of n options into out (n + 1 long) */
static const char *const *
opt_name_list(const struct opt *opts, size_t n, const char **out)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = opts[i].name;
	out[n] = NULL;
	return out;
}

/* conf_key_options - the name=value options of a key that has a table of
 * them, NULL-terminated; NULL for any other key */
const char *const *
conf_key_options(const char *key)
{
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
	static const char *listen[NOPTS(listen_opts) + 1];
	static const char *limits[NOPTS(limit_opts) + 1];
	static const char *timeouts[NOPTS(timeout_opts) + 1];
	static const char *retry[NOPTS(retry_opts) + 1];

	if (strcmp(key, "listen") == 0)
		return opt_name_list(listen_opts, NOPTS(listen_opts), listen);
	if (strcmp(key, "limits") == 0)
		return opt_name_list(limit_opts, NOPTS(limit_opts), limits);
	if (strcmp(key, "timeouts") == 0)
		return opt_name_list(timeout_opts, NOPTS(timeout_opts),
		    timeouts);
	if (strcmp(key, "retry") == 0)
		return opt_name_list(retry_opts, NOPTS(retry_opts), retry);
	return NULL;
#undef NOPTS
}

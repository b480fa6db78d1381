/*
 * conf.h - the configuration: one line-oriented file (tern.conf(5)) or the
 * embedded defaults made for trying tern out.
 *
 * Lines are "key value..." or "key name=value...", '#' starts a comment.
 * Every error is reported as "file:line: what is wrong".  The key names and
 * forms are an interface administrators rely on (see docs/tern.conf.5).
 */
#ifndef TERN_CONF_H
#define TERN_CONF_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

enum listen_role {
	ROLE_SMTP = 0,    /* port 25: mail for local domains, relay if trusted */
	ROLE_SUBMISSION,  /* port 587 */
	ROLE_SUBMISSIONS  /* port 465, implicit TLS */
};

struct conf_listen {
	char *addr;                 /* "127.0.0.1", "::1", "0.0.0.0", "::" */
	int port;
	enum listen_role role;
	int64_t greet_pause_ms;     /* 0: none */
	int64_t greet_pass_ms;      /* greet-pass=: a client that sat through
	                             * the pause is spared it this long;
	                             * 0: never */
	int pipelining_drop;        /* improper-pipelining=drop: pipelining
	                             * before EHLO or without PIPELINING
	                             * counts as talking first */
	struct sockaddr_storage ss; /* resolved addr:port */
	socklen_t sslen;
	int optional;               /* skipped with a warning if it cannot
	                             * bind (the default [::1] listener) */
	struct conf_net *proxy_from; /* proxy-from=: a PROXY header is
	                              * required, from these balancers only;
	                              * NULL: none (an ordinary listener) */
	size_t nproxy_from;
};

struct conf_net {
	int family;            /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

/* dnsbl ZONE [weight=N] [match=IP,...] and dnswl ZONE [match=IP,...] */
struct conf_dnsbl {
	char *zone;              /* lower case, no final dot */
	int allow;               /* a dnswl line: listed means allowed */
	unsigned weight;         /* dnsbl weight= (1); 0 for a dnswl */
	unsigned char (*match)[4]; /* match=: the answers that count; none:
	                            * any in 127.0.0.0/8 but 127.255.255.0/24 */
	size_t nmatch;
};

/* outbound TLS policy of a destination (tern.conf(5) "tls=") */
enum tls_policy {
	TLS_MAY = 0,  /* STARTTLS when offered; plaintext otherwise (default) */
	TLS_NONE,     /* never */
	TLS_ENCRYPT,  /* required, certificate not checked */
	TLS_VERIFY    /* required, chain and host name verified */
};

/*
 * struct conf_relay - where a route or the smarthost sends mail:
 * "[host]:port" (brackets: no MX lookup) or "host:port" (MX of host).
 */
struct conf_relay {
	char *domain;     /* route: the recipient domain (lower case);
	                   * smarthost: NULL */
	char *host;       /* name or IP address, without brackets */
	int port;         /* default 25 */
	int mx;           /* 1: look up MX records of host */
	enum tls_policy tls;
	char *auth_file;  /* "auth=FILE": one line "user:password"; NULL */
	char *ca_file;    /* "ca=FILE" (tls=verify only): the CAs trusted
	                   * instead of the system's; NULL */
};

/* tls-ciphers: what inbound TLS 1.2 may agree on (TLS 1.3 suites are all
 * AEAD with forward secrecy, OpenSSL's default list in both) */
enum tls_ciphers {
	TLS_CIPHERS_MODERN = 0, /* ECDHE or DHE, with AES-GCM or
	                         * ChaCha20-Poly1305 (default) */
	TLS_CIPHERS_COMPAT      /* OpenSSL's default list, for old peers */
};

/* tls cert=FILE key=FILE: one certificate for inbound TLS; the first is
 * the default, the others are chosen by SNI */
struct conf_cert {
	char *cert;
	char *key;
};

/* senders USER ADDRESS...: the envelope senders an authenticated user may
 * use; "@domain" allows every address of a domain */
struct conf_senders {
	char *user;
	char **addrs;   /* lower-case */
	size_t naddrs;
};

/* mailbox-for USER METHOD: the method for one user (its %u) */
struct conf_mailbox_for {
	char *user;
	char *method;  /* as struct conf's mailbox */
};

enum recipients_mode {
	RECIPIENTS_ANY = 0, /* every local part of a local domain */
	RECIPIENTS_SYSTEM,  /* local parts that are system users (getpwnam) */
	RECIPIENTS_FILE     /* those listed in a file, one per line */
};

struct conf {
	char *file;            /* path read, or NULL for embedded defaults */
	char *hostname;
	char *home;            /* after $TERN_HOME */
	char *user;            /* unprivileged user after binding */
	int user_set;          /* "user" given explicitly */
	char *smtpd_user;      /* the smtpd's own unprivileged user */
	char *control_group;   /* control-group: may use the control
	                        * socket besides root and user; NULL: none */

	struct conf_listen *listens;
	size_t nlistens;

	char **local_domains;  /* lower-case */
	size_t nlocal_domains;

	enum recipients_mode recipients;
	char *recipients_file;
	char **recipient_list; /* RECIPIENTS_FILE: sorted, lower-case;
	                        * entries are "local" or "local@domain" */
	size_t nrecipient_list;

	char *mailbox;         /* the method of local delivery, METHOD:ARG:
	                        * maildir:PATTERN, mbox:PATTERN ($home
	                        * expanded), pipe:COMMAND, lmtp:SPEC; default
	                        * maildir:$home/mail/%u/Maildir, or
	                        * maildir:~/Maildir with recipients system */
	struct conf_mailbox_for *mailbox_for; /* mailbox-for USER METHOD */
	size_t nmailbox_for;
	char *aliases_file;    /* aliases PATH: aliases(5); NULL: none */
	char *alias_user;      /* alias-user: runs alias pipes, writes alias
	                        * files (default nobody) */
	char *forward;         /* forward PATTERN: a system user's forward
	                        * file (default ~/.forward); NULL: none */
	char subaddress;       /* subaddress: the separator (default '+'),
	                        * 0: none */
	unsigned min_uid;      /* recipients system min-uid=: lowest uid
	                        * delivered to as itself (default 1000) */
	unsigned local_concurrency;   /* limits local-concurrency= */
	unsigned mailbox_concurrency; /* limits mailbox-concurrency= */
	int64_t timeout_delivery_ms;  /* timeouts delivery=: a local delivery
	                               * (a pipe above all) is stopped then */

	struct conf_net *trusted;
	size_t ntrusted;

	struct conf_dnsbl *dnsbls; /* dnsbl and dnswl lines, in order */
	size_t ndnsbls;
	unsigned dnsbl_threshold;  /* limits dnsbl-threshold=: the weight
	                            * that refuses a client */
	int64_t timeout_proxy_ms;  /* timeouts proxy=: the PROXY header */

	uint64_t message_size; /* limits message-size= */
	unsigned max_rcpts;    /* limits recipients= */
	size_t line_length;    /* limits line-length=, text line with CRLF */
	unsigned max_sessions; /* limits sessions= */
	uint64_t spool_reserve; /* limits spool-reserve=: below it, 452 4.3.1 */

	int64_t timeout_command_ms; /* timeouts command= (RFC 5321 4.5.3.2.7) */
	int64_t timeout_data_ms;    /* timeouts data=: between blocks of a
	                             * message, and the window data-rate is
	                             * measured over */
	int64_t timeout_message_ms; /* timeouts message=: a whole message,
	                             * DATA or every BDAT chunk */
	uint64_t data_rate;         /* limits data-rate=: octets a second a
	                             * message must arrive at */

	int64_t retry_first_ms;  /* retry first= */
	int64_t retry_max_ms;    /* retry max= */
	int64_t retry_lifetime_ms; /* retry lifetime= */

	int64_t retry_warn_ms;   /* retry warn=: delay warning; 0 = none */

	/* outbound (relay) */
	char **relay_domains;  /* relay-domains: accepted from anyone and
	                        * forwarded; lower-case */
	size_t nrelay_domains;
	char *relay_recipients_file; /* relay-recipients file:PATH */
	char **relay_recipient_list; /* sorted, lower-case "local@domain"
	                              * or "@domain" (whole domain) */
	size_t nrelay_recipient_list;
	struct conf_relay *routes;   /* route DOMAIN DEST [tls=] [auth=]
	                              * [ca=] */
	size_t nroutes;
	struct conf_relay *smarthost; /* smarthost DEST [tls=] [auth=]
	                               * [ca=] */
	char *resolver;        /* resolver IP[:port]; NULL: resolv.conf */
	int64_t timeout_connect_ms;  /* timeouts connect= */
	int64_t timeout_remote_ms;   /* timeouts remote-command=: waiting for
	                              * a reply (RFC 5321 4.5.3.2: 5m) */
	int64_t timeout_remote_data_ms; /* timeouts remote-data=: data
	                                 * blocks and the final reply (10m) */
	unsigned dest_concurrency;   /* limits destination-concurrency= */
	unsigned max_received;       /* limits received-headers=: loop */

	/* inbound TLS and authentication */
	struct conf_cert *certs;     /* tls cert= key= (repeatable) */
	size_t ncerts;
	enum tls_ciphers tls_ciphers; /* tls-ciphers modern|compat */
	char *users_file;            /* users FILE: name:crypt-hash */
	struct conf_senders *senders; /* senders USER ADDRESS... */
	size_t nsenders;
	unsigned auth_failures;      /* limits auth-failures=: per session,
	                              * then the session ends */
	unsigned auth_client_failures; /* limits auth-client-failures=:
	                                * per client address and hour */
	/* per client address (IPv6: per client-ipv6-prefix), see
	 * client_limits.h; 0 switches a count or rate off */
	unsigned client_sessions;      /* limits client-sessions= */
	unsigned client_connect_rate;  /* limits client-connect-rate=, a
	                                * minute */
	unsigned client_message_rate;  /* limits client-message-rate= */
	unsigned client_rcpt_rate;     /* limits client-recipient-rate= */
	unsigned client_errors;        /* limits client-errors=: per session */
	unsigned client_invalid_rcpts; /* limits client-invalid-recipients= */
	unsigned client_ipv6_prefix;   /* limits client-ipv6-prefix= */

	int log_syslog;        /* log syslog|stderr */
	int verbose;           /* log ... verbose */
};

/*
 * conf_load - read path (or the embedded defaults when path is NULL), apply
 * $TERN_HOME, check.  Returns NULL after printing every error to stderr as
 * "file:line: message".
 */
struct conf *conf_load(const char *path);
/*
 * conf_find_path - the file to read: explicit (-c), else $TERN_CONF, else
 * /etc/tern/tern.conf when it exists, else NULL (embedded defaults).
 */
const char *conf_find_path(const char *explicit_path);
/* conf_free - release a configuration */
void conf_free(struct conf *c);
/* conf_print - the effective configuration, in the file's own syntax */
void conf_print(const struct conf *c, FILE *fp);

/* conf_is_local_domain - 1 when domain (any case) is one of ours */
int conf_is_local_domain(const struct conf *c, const char *domain);
/* conf_is_trusted - 1 when the client address is in trusted-networks */
int conf_is_trusted(const struct conf *c, const struct sockaddr *sa);
/* conf_net_match - 1 when the address lies in one of the n networks (an
 * IPv4-mapped IPv6 address counts as IPv4) */
int conf_net_match(const struct conf_net *nets, size_t n,
    const struct sockaddr *sa);
/*
 * conf_recipient_known - 1 when the local part (already case-folded,
 * subaddress removed) of a local domain is accepted by "recipients".
 */
int conf_recipient_known(const struct conf *c, const char *local,
    const char *domain);
/*
 * conf_mailbox_method - the delivery method (METHOD:ARG) for the user
 * (a %u: folded, subaddress removed): its mailbox-for, else mailbox
 */
const char *conf_mailbox_method(const struct conf *c, const char *user);
/* conf_is_relay_domain - 1 when domain (any case) is in relay-domains */
int conf_is_relay_domain(const struct conf *c, const char *domain);
/*
 * conf_relay_recipient_known - 1 when relay-recipients is not set, or when
 * it lists "local@domain" (case-insensitive) or "@domain"
 */
int conf_relay_recipient_known(const struct conf *c, const char *local,
    const char *domain);
/* conf_route_for - the route for domain (exact, case-insensitive match),
 * or NULL */
const struct conf_relay *conf_route_for(const struct conf *c,
    const char *domain);

/*
 * conf_sender_allowed - 1 when the authenticated user may use addr as the
 * envelope sender: as "senders" says, or by default its own address (a
 * name with '@' is an address; a name without owns name@ each local
 * domain).  The null sender is always allowed.
 */
int conf_sender_allowed(const struct conf *c, const char *user,
    const char *addr);

/* conf_keys - NULL-terminated list of every key the parser knows (for the
 * test that every key is documented) */
const char *const *conf_keys(void);

/* conf_key_options - the name=value options of listen, limits, timeouts
 * and retry, NULL-terminated (for the test that every option is
 * documented); NULL for any other key */
const char *const *conf_key_options(const char *key);

/* conf_format_size - bytes as the configuration writes them: "50M", "500" */
void conf_format_size(uint64_t v, char *out, size_t outlen);

/* conf_format_duration - milliseconds as the configuration writes them:
 * "5m", "90s" */
void conf_format_duration(int64_t ms, char *out, size_t outlen);

#endif

/*
 * smtpd.h - the inbound side: the smtpd process accepts connections on the
 * listening sockets the master bound and runs every SMTP session on one
 * libevent loop.
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include <sys/socket.h>

#include <openssl/ssl.h>

struct conf;
struct conf_listen;
struct event_base;
struct tls_material;
struct auth_users;
struct auth_limiter;

/*
 * Descriptors the smtpd needs, for the open-file limit the master sets
 * (limits sessions=): a session holds its socket and, during DATA or BDAT,
 * its queue file; besides the sessions, listeners, spool directories, the
 * commit thread's envelope, DNS queries in flight, the log, notices.
 */
#define SMTPD_FILES_PER_SESSION 2
#define SMTPD_FILES_SPARE 128

/* what every session of the smtpd process shares */
struct smtpd_env {
	const struct conf *conf;
	SSL_CTX *tls;                   /* NULL without certificates */
	int auth;                       /* AUTH offered: authd checks */
	struct auth_limiter *limiter;   /* failed logins per client */
};

/*
 * smtpd_main - run the smtpd process: fds[i] listens for c->listens[i];
 * tls (certificates read by the master, may be empty) comes from the
 * master too without the keys, ca_fd the socket to ca (ca.c), which
 * signs with them, auth_fd the socket to authd (-1 without a users file),
 * which checks passwords; shared: it runs as a
 * user of its own (spool_init_smtpd).  SIGTERM stops it at
 * once; SIGUSR1 makes it stop accepting and exit once its last session
 * has ended (a graceful handover to a new smtpd after SIGHUP).
 */
_Noreturn void smtpd_main(const struct conf *c, const int *fds, size_t nfds,
    const struct tls_material *tls, int auth_fd, int ca_fd, int shared);

/* smtp_session_new - take over an accepted connection */
void smtp_session_new(const struct smtpd_env *env, struct event_base *base,
    int fd, const struct sockaddr *sa, socklen_t salen,
    const struct conf_listen *l);
/* smtp_session_count - sessions currently open */
unsigned smtp_session_count(void);

#endif

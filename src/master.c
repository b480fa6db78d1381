/*
 * master.c - "tern serve": the master process.
 *
 * The master reads the configuration, prepares $home, recovers the spool
 * (before any session can write to it), binds the listening sockets, then
 * forks two children, as Postfix and OpenSMTPD split by privilege:
 *
 *   smtpd  all inbound sessions on one event loop; writes the spool
 *   queue  the scheduler and local delivery; reads and updates the spool
 *
 * Started as root with a configuration file, both children switch to an
 * unprivileged user before touching the network or the spool: the queue
 * process to "user" (default "tern"), which owns the queue and the
 * virtual users' mail, the smtpd to "smtpd-user" (default "tern-smtpd"),
 * which may only write new messages into spool/incoming/ and asks the
 * queue process to commit them (queue_commit.c) over the commit socket the
 * master binds; the master keeps root only to bind and to supervise.  A child that
 * dies is restarted (after a pause if it keeps dying); the spool is the only
 * state they share, so a restart loses nothing.  Children die with the
 * master (PR_SET_PDEATHSIG).
 *
 * Under systemd (Type=notify) the master tells the service manager through
 * sd_notify(3) when it is ready (sockets bound, children started), when a
 * SIGHUP is being handled and when it stops; without $NOTIFY_SOCKET those
 * calls do nothing.  Only the master speaks: the unit's NotifyAccess= is
 * the default, main.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <systemd/sd-daemon.h>

#include "alias_table.h"
#include "conf.h"
#include "control.h"
#include "deliverd.h"
#include "drop.h"
#include "dns.h"
#include "local.h"
#include "master.h"
#include "mta.h"
#include "queue_commit.h"
#include "sandbox.h"
#include "pickup.h"
#include "auth.h"
#include "authd.h"
#include "ca.h"
#include "tls.h"
#include "sched.h"
#include "smtpd.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

/* a child that dies sooner than this after its start is "crashing" */
#define CHILD_CRASH_MS 5000
#define CHILD_RESTART_MAX_MS 60000
#define STOP_GRACE_MS 10000

enum child_kind { CHILD_SMTPD, CHILD_QUEUE, CHILD_COUNT };

struct child {
	const char *name;
	pid_t pid;
	int handover;        /* asked to hand over: restart it at once */
	int64_t started;     /* monotonic ms */
	int64_t delay_ms;    /* restart delay, grows while it crashes */
	int64_t restart_at;  /* monotonic ms, while pid is 0 */
};

struct master {
	struct conf *conf;
	int *fds;
	int ctl_fd;          /* the control socket (served by the queue) */
	gid_t ctl_group;     /* control-group, or -1 */
	int drop;            /* switch to the unprivileged users */
	uid_t uid;           /* the queue process's ("user") */
	gid_t gid;
	uid_t suid;          /* the smtpd's ("smtpd-user") */
	gid_t sgid;
	int commit_fd;       /* the commit socket, listening */
	int stopping;
	struct child child[CHILD_COUNT];
	int64_t kill_at;     /* stopping: SIGKILL what still runs then */
	struct tls_material tls;  /* certificates and keys, read as root */
	struct auth_users *users; /* the users file, read as root */
	pid_t old_smtpd[8];  /* smtpds finishing their sessions after a
	                      * handover */
};

/* load_secrets - certificates, keys and the users file of c, read by the
 * master (they may be readable by root only); -1 with a log line */
static int
load_secrets(const struct conf *c, struct tls_material *tls,
    struct auth_users **users)
{
	const char **certs = xcalloc(c->ncerts + 1, sizeof(*certs));
	const char **keys = xcalloc(c->ncerts + 1, sizeof(*keys));
	char err[512];
	size_t i;
	int rc = 0;

	for (i = 0; i < c->ncerts; i++) {
		certs[i] = c->certs[i].cert;
		keys[i] = c->certs[i].key;
	}
	*users = NULL;
	if (tls_material_load(tls, certs, keys, c->ncerts, err,
	    sizeof(err)) == -1) {
		log_err("tls: %s", err);
		rc = -1;
	} else if (c->users_file != NULL) {
		*users = auth_users_load(c->users_file, err, sizeof(err));
		if (*users == NULL) {
			log_err("users: %s", err);
			tls_material_free(tls);
			rc = -1;
		}
	}
	free(certs);
	free(keys);
	return rc;
}

/* mkdir_owned - create dir (and parents) if missing; chown it if dropping */
static void
mkdir_owned(const struct master *m, const char *dir, mode_t mode)
{
	char tmp[4096];
	size_t len = strlen(dir), i;

	if (len >= sizeof(tmp))
		fatal("path too long: %s", dir);
	memcpy(tmp, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, i == len ? mode : 0755) == 0) {
			/* the exact mode, whatever the umask */
			if (chmod(tmp, i == len ? mode : 0755) == -1)
				fatal("chmod %s: %s", tmp, strerror(errno));
		} else if (errno != EEXIST) {
			fatal("mkdir %s: %s", tmp, strerror(errno));
		}
		tmp[i] = i == len ? '\0' : '/';
	}
	if (m->drop && chown(dir, m->uid, m->gid) == -1)
		fatal("chown %s: %s", dir, strerror(errno));
}

/*
 * prepare_drop - the local drop (sendmail, tern-drop): $home and spool/
 * crossable by anyone (0711: nothing in them can be listed), spool/drop/
 * writable and searchable by the drop group only, not listable, sticky
 * (1730), as Postfix's maildrop/ is.  Without the group
 * (scripts/ensure-user.sh creates it) only root and the tern user can
 * submit.
 */
static void
prepare_drop(const struct master *m)
{
	struct group *gr = geteuid() == 0 ? getgrnam(DROP_GROUP) : NULL;
	uid_t uid = m->drop ? m->uid : geteuid();
	gid_t gid = gr != NULL ? gr->gr_gid : m->drop ? m->gid : getegid();
	char *spool = xasprintf("%s/spool", m->conf->home);
	char *drop = xasprintf("%s/spool/drop", m->conf->home);
	struct stat st;

	if (geteuid() == 0 && gr == NULL)
		log_warn("group %s does not exist: only root and %s can "
		    "submit local mail (sendmail)", DROP_GROUP,
		    m->conf->user);
	/* tern-drop reaches spool/drop through $home and spool/ */
	if (stat(m->conf->home, &st) == 0 && (st.st_mode & 0011) != 0011 &&
	    chmod(m->conf->home, (st.st_mode & 07777) | 0011) == -1)
		fatal("chmod %s: %s", m->conf->home, strerror(errno));
	if (mkdir(drop, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s: %s", drop, strerror(errno));
	if (geteuid() == 0 && chown(drop, uid, gid) == -1)
		fatal("chown %s: %s", drop, strerror(errno));
	if (chmod(spool, 0711) == -1 || chmod(drop, 01730) == -1)
		fatal("chmod %s: %s", drop, strerror(errno));
	free(spool);
	free(drop);
}

/* set_owner - (root) path owned by uid:gid with exactly mode */
static void
set_owner(const char *home, const char *sub, uid_t uid, gid_t gid,
    mode_t mode)
{
	char *path = xasprintf("%s/%s", home, sub);

	if (chown(path, uid, gid) == -1 || chmod(path, mode) == -1)
		fatal("cannot set the owner of %s: %s", path, strerror(errno));
	free(path);
}

/*
 * prepare_home - $home and what lives in it, owned by the tern user.  When
 * the smtpd has a user of its own (always as root with a configuration),
 * it reaches only what it needs: spool/ it may only cross (0711),
 * incoming/ and free/ are its own, shared with the queue's group (2770:
 * the setgid bit gives its files that group, so the queue process can
 * read, move and empty them), and the commit socket in spool/ is open to
 * its group.  queue/, quarantine/ and mail/ stay the queue user's, 0700;
 * state/smtpd/ (the greet-pass file) is the smtpd's, 0700.
 */
static void
prepare_home(const struct master *m)
{
	const char *home = m->conf->home;
	static const char *const sub[] = { "spool", "spool/incoming",
		"spool/queue", "spool/quarantine", "spool/free", "state",
		"state/smtpd", "mail" };
	char path[4096];
	size_t i;

	mkdir_owned(m, home, 0755);
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", home, sub[i]);
		mkdir_owned(m, path, 0700);
	}
	if (m->drop) {
		struct stat st;

		/* the smtpd crosses home to reach spool/incoming/ */
		if (stat(home, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			log_info("home %s: giving others the right to cross it "
			    "(o+x), for the smtpd's user", home);
			if (chmod(home, (st.st_mode & 07777) | S_IXOTH) == -1)
				fatal("chmod %s: %s", home, strerror(errno));
		}
		set_owner(home, "spool", m->uid, m->gid, 0711);
		set_owner(home, "spool/incoming", m->suid, m->gid, 02770);
		set_owner(home, "spool/free", m->suid, m->gid, 02770);
		/* the smtpd's own state (the greet-pass file); state/ lets
		 * it through (control_bind) */
		set_owner(home, "state/smtpd", m->suid, m->gid, 0700);
		/* the pool's files must be the smtpd's to reuse */
		spool_set_pool_owner(m->suid);
	}
	prepare_drop(m);
	if (spool_init(home) == -1)
		fatal("cannot open the spool under %s: %s", home,
		    strerror(errno));
}

/*
 * commit_listen - bind $home/spool/commit.sock, where the smtpd asks the
 * queue process to commit its messages.  The master keeps it, so a
 * request made while the queue process restarts waits in the backlog.
 */
static int
commit_listen(const struct master *m)
{
	struct sockaddr_un sa;
	char *path = xasprintf("%s/" SPOOL_COMMIT_SOCK, m->conf->home);
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		fatal("%s: path too long for a socket", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		fatal("socket: %s", strerror(errno));
	if (unlink(path) == -1 && errno != ENOENT)
		fatal("cannot remove %s: %s", path, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fatal("cannot bind %s: %s", path, strerror(errno));
	if (m->drop && (chown(path, m->uid, m->sgid) == -1 ||
	    chmod(path, 0660) == -1))
		fatal("cannot set the owner of %s: %s", path, strerror(errno));
	if (listen(fd, SOMAXCONN) == -1)
		fatal("cannot listen on %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

/* pid_file - $home/state/tern.pid, for newaliases (SIGHUP).  Written
 * beside, then renamed: the directory belongs to the tern user, and a
 * link it put there must not be followed by root. */
static void
pid_file(const struct master *m, int create)
{
	char *path = xasprintf("%s/state/tern.pid", m->conf->home);
	char *tmp = xasprintf("%s.new", path);
	char line[32];
	int fd, n;

	if (!create) {
		unlink(path);
		goto out;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (fd == -1 || util_write_all(fd, line, (size_t)n) == -1 ||
	    close(fd) == -1 || rename(tmp, path) == -1)
		log_warn("%s: %s (newaliases cannot signal this tern)", path,
		    strerror(errno));
out:
	free(path);
	free(tmp);
}

/* rlim_text - a limit for a log line ("unlimited" for RLIM_INFINITY) */
static const char *
rlim_text(rlim_t v, char *out, size_t outlen)
{
	int n;

	if (v == RLIM_INFINITY)
		n = snprintf(out, outlen, "unlimited");
	else
		n = snprintf(out, outlen, "%llu", (unsigned long long)v);
	if (n < 0 || (size_t)n >= outlen)
		panic("rlim_text: buffer too small");
	return out;
}

/*
 * open_files - raise the soft open-file limit (RLIMIT_NOFILE) toward what
 * limits sessions= needs, as far as the hard limit allows, and say how
 * many sessions fit.  The children inherit it.  Service managers start
 * daemons with a soft limit of 1024 and a hard one far higher (systemd:
 * 524288), expecting a daemon that needs more to raise its own; the hard
 * limit is the administrator's (LimitNOFILE=, limits.conf), and tern
 * leaves it alone even as root.  A soft limit already higher stays.  The
 * smtpd copes with running out anyway (smtpd.c), but a limit that fits
 * means clients are not refused while sessions= says there is room.
 */
static void
open_files(const struct conf *c)
{
	struct rlimit rl, want;
	rlim_t need = (rlim_t)c->max_sessions * SMTPD_FILES_PER_SESSION +
	    SMTPD_FILES_SPARE;
	unsigned long long fit;
	char soft[32], hard[32];

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("open files: cannot read the limit: %s",
		    strerror(errno));
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		want = rl;
		want.rlim_cur = rl.rlim_max != RLIM_INFINITY &&
		    rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		else
			log_warn("open files: cannot raise the soft limit to "
			    "%llu: %s", (unsigned long long)want.rlim_cur,
			    strerror(errno));
	}
	fit = rl.rlim_cur == RLIM_INFINITY ? ULLONG_MAX :
	    rl.rlim_cur <= SMTPD_FILES_SPARE ? 0 :
	    (rl.rlim_cur - SMTPD_FILES_SPARE) / SMTPD_FILES_PER_SESSION;
	rlim_text(rl.rlim_cur, soft, sizeof(soft));
	rlim_text(rl.rlim_max, hard, sizeof(hard));
	if (fit >= c->max_sessions)
		log_info("open files: soft limit %s (hard %s), enough for "
		    "about %llu sessions (%d descriptors each, %d spare)",
		    soft, hard, fit, SMTPD_FILES_PER_SESSION,
		    SMTPD_FILES_SPARE);
	else
		log_warn("open files: limits sessions=%u needs %llu but the "
		    "hard limit is %s: soft limit %s, enough for about %llu "
		    "sessions (%d descriptors each, %d spare); clients beyond "
		    "are answered 421 (raise the hard limit, e.g. systemd's "
		    "LimitNOFILE=, or lower sessions=)", c->max_sessions,
		    (unsigned long long)need, hard, soft, fit,
		    SMTPD_FILES_PER_SESSION, SMTPD_FILES_SPARE);
}

/* bind_one - a listening socket, or -1 (logged) for an optional one */
static int
bind_one(const struct conf_listen *l)
{
	int fd, on = 1;

	fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (l->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&l->ss, l->sslen) == -1 ||
	    listen(fd, SOMAXCONN) == -1)
		goto fail;
	log_info("listening on %s%s%s:%d role=%s",
	    l->ss.ss_family == AF_INET6 ? "[" : "", l->addr,
	    l->ss.ss_family == AF_INET6 ? "]" : "", l->port,
	    l->role == ROLE_SMTP ? "smtp" : l->role == ROLE_SUBMISSION ?
	    "submission" : "submissions");
	return fd;
fail:
	if (fd != -1)
		close(fd);
	if (l->optional) {
		log_warn("skipping listener %s port %d: %s", l->addr, l->port,
		    strerror(errno));
		return -1;
	}
	fatal("cannot listen on %s port %d: %s", l->addr, l->port,
	    strerror(errno));
}

/* drop_privileges - become user uid:gid for good, unable to gain
 * privileges again */
static void
drop_privileges(const struct master *m, uid_t uid, gid_t gid)
{
	/* smtpd and queue never run another program: no execve of theirs
	 * (or of a parser's bug) can ever gain privileges again.  deliverd
	 * is forked before this and keeps the right, which a setuid MDA
	 * (Debian's procmail) needs. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("cannot set no_new_privs: %s", strerror(errno));
	if (!m->drop)
		return;
	if (setgroups(1, &gid) == -1 ||
	    setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		fatal("cannot switch to uid %ld: %s", (long)uid,
		    strerror(errno));
	if (setuid(0) != -1)
		panic("regained root after dropping privileges");
}

static void
queue_drain_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	sched_drain();
}

static _Noreturn void
queue_main(const struct conf *c, int deliverd_sock, int ctl_fd,
    gid_t ctl_group, int commit_fd, uid_t smtpd_uid)
{
	struct event_base *base;
	struct event *usr1;

	log_set_name("queue");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	/* a file-size limit must fail a write, not kill the process */
	signal(SIGXFSZ, SIG_IGN);
	/* the spool's commit thread (for reports) needs a thread-aware loop */
	if (evthread_use_pthreads() == -1)
		fatal("libevent: no pthreads support");
	base = event_base_new();
	if (base == NULL)
		fatal("event_base_new failed");
	if (spool_init(c->home) == -1)
		fatal("cannot open the spool under %s: %s", c->home,
		    strerror(errno));
	/* it reads certificate stores, routes, aliases and Maildirs wherever
	 * the configuration says, but writes only under home, and executes
	 * nothing (deliverd, forked before, does the deliveries).  Before
	 * any thread starts: Landlock binds only the calling thread and the
	 * threads it starts afterwards. */
	sandbox_child("queue", (const char *[]){ c->home }, 1, 1);
	spool_commit_start(base);
	if (dns_init(base, c->resolver) == -1)
		log_warn("dns: cannot start the resolver; remote delivery "
		    "will be deferred");
	dns_set_self(c->hostname);
	mta_init(c, base);
	alias_table_load(c);
	local_init(c, base, deliverd_sock);
	sched_start(c, base);
	queue_commit_start(c, base, commit_fd, smtpd_uid);
	pickup_start(c, base);
	control_start(c, base, ctl_fd, ctl_group);
	usr1 = evsignal_new(base, SIGUSR1, queue_drain_cb, NULL);
	evsignal_add(usr1, NULL);
	event_base_dispatch(base);
	exit(0);
}

/*
 * start_deliverd - (in the new queue process, before it drops root) fork
 * the delivery process, which keeps the privileges to deliver as each
 * user, and drop them here; returns the queue's end of the socket between
 * the two.  The delivery process lives and dies with this queue process.
 */
static int
start_deliverd(const struct master *m)
{
	static struct deliverd_ids ids;
	pid_t queue = getpid(), pid;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair: %s", strerror(errno));
	pid = fork();
	if (pid == -1)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		close(m->ctl_fd);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != queue)
			_exit(1);
		ids.drop = m->drop;
		ids.uid = m->uid;
		ids.gid = m->gid;
		deliverd_main(m->conf, sv[1], &ids);
	}
	close(sv[1]);
	drop_privileges(m, m->uid, m->gid);
	return sv[0];
}

/*
 * start_helper - (in the new smtpd, before it drops root) fork a helper
 * of the smtpd called name (ca, authd): its child, dying with it, running
 * as the queue's user under the filters, without the listeners.  Returns
 * 1 in the helper, 0 in
 * the smtpd, with *fd its end of the socket between them.
 */
static int
start_helper(struct master *m, const char *name, int *fd)
{
	pid_t smtpd = getpid(), pid;
	char comm[16];
	int sv[2];
	size_t i;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair: %s", strerror(errno));
	pid = fork();
	if (pid == -1)
		fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		close(sv[1]);
		*fd = sv[0];
		return 0;
	}
	close(sv[0]);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != smtpd)
		_exit(1);
	for (i = 0; i < m->conf->nlistens; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	drop_privileges(m, m->uid, m->gid);
	/* "tern-ca", "tern-authd" in ps and /proc/PID/comm */
	snprintf(comm, sizeof(comm), "tern-%s", name);
	prctl(PR_SET_NAME, comm);
	log_set_name(name);
	sandbox_child(name, NULL, 0, 0);
	*fd = sv[1];
	return 1;
}

/*
 * start_authd - (in the new smtpd) fork authd, which alone keeps the
 * users' hashes and checks passwords for this smtpd (authd.c); free the
 * smtpd's copy.  Returns the smtpd's end of the socket between them, -1
 * without a users file.
 */
static int
start_authd(struct master *m)
{
	int fd;

	if (m->users == NULL)
		return -1;
	if (start_helper(m, "authd", &fd)) {
		tls_material_free(&m->tls);
		authd_main(m->users, fd);
	}
	auth_users_free(m->users);
	m->users = NULL;
	return fd;
}

/*
 * start_ca - (in the new smtpd, after start_authd) fork ca, which alone
 * keeps the TLS private keys and signs for this smtpd (ca.c); drop the
 * smtpd's copy of the keys.  Returns the smtpd's end of the socket
 * between them, -1 without TLS.
 */
static int
start_ca(struct master *m, int auth_fd)
{
	int fd;

	if (m->tls.npairs == 0)
		return -1;
	if (start_helper(m, "ca", &fd)) {
		if (auth_fd != -1)
			close(auth_fd); /* the smtpd's line to authd */
		ca_main(&m->tls, fd);
	}
	tls_material_drop_keys(&m->tls);
	return fd;
}

static void
start_child(struct master *m, enum child_kind k)
{
	struct child *ch = &m->child[k];
	pid_t pid, parent = getpid();
	sigset_t all;
	size_t i;
	int auth_fd, ca_fd;

	pid = fork();
	if (pid == -1) {
		log_err("fork: %s", strerror(errno));
		return;
	}
	if (pid > 0) {
		ch->pid = pid;
		ch->handover = 0;
		ch->started = util_mono_ms();
		log_info("started %s (pid %ld)", ch->name, (long)pid);
		return;
	}
	/* the child: die with the master, drop root, become its role */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	if (k == CHILD_QUEUE) {
		for (i = 0; i < m->conf->nlistens; i++)
			if (m->fds[i] >= 0)
				close(m->fds[i]);
		/* deliveries need no certificate nor password */
		tls_material_free(&m->tls);
		auth_users_free(m->users);
		queue_main(m->conf, start_deliverd(m), m->ctl_fd,
		    m->ctl_group, m->commit_fd, m->drop ? m->suid : getuid());
	}
	close(m->ctl_fd);
	close(m->commit_fd);
	auth_fd = start_authd(m);
	ca_fd = start_ca(m, auth_fd);
	drop_privileges(m, m->suid, m->sgid);
	smtpd_main(m->conf, m->fds, m->conf->nlistens, &m->tls, auth_fd,
	    ca_fd, m->drop);
}

/* child_exited - log the end of a child and plan its restart */
static void
child_exited(struct master *m, struct child *ch, int status)
{
	int64_t now = util_mono_ms(), ran = now - ch->started;

	if (m->stopping || ch->handover)
		log_debug("%s (pid %ld) ended", ch->name, (long)ch->pid);
	else if (WIFSIGNALED(status))
		log_warn("%s (pid %ld) killed by signal %d", ch->name,
		    (long)ch->pid, WTERMSIG(status));
	else
		log_warn("%s (pid %ld) exited with status %d", ch->name,
		    (long)ch->pid, WEXITSTATUS(status));
	ch->pid = 0;
	if (m->stopping)
		return;
	if (ch->handover) {
		/* it finished what it had: its successor starts now */
		ch->handover = 0;
		ch->restart_at = now;
		return;
	}
	ch->delay_ms = ran < CHILD_CRASH_MS ?
	    (ch->delay_ms ? ch->delay_ms * 2 : 1000) : 0;
	if (ch->delay_ms > CHILD_RESTART_MAX_MS)
		ch->delay_ms = CHILD_RESTART_MAX_MS;
	ch->restart_at = now + ch->delay_ms;
	log_info("restarting %s in %lld ms", ch->name,
	    (long long)ch->delay_ms);
}

static int
children_alive(const struct master *m)
{
	int k, n = 0;

	size_t i;

	for (k = 0; k < CHILD_COUNT; k++)
		n += m->child[k].pid != 0;
	for (i = 0; i < sizeof(m->old_smtpd) / sizeof(m->old_smtpd[0]); i++)
		n += m->old_smtpd[i] != 0;
	return n;
}

static void
reap(struct master *m)
{
	pid_t pid;
	int status, k;

	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		stats_forget(pid);
		for (k = 0; k < CHILD_COUNT; k++)
			if (m->child[k].pid == pid)
				child_exited(m, &m->child[k], status);
		for (i = 0; i < sizeof(m->old_smtpd) / sizeof(pid); i++)
			if (m->old_smtpd[i] == pid) {
				log_info("the old smtpd (pid %ld) has finished "
				    "its sessions", (long)pid);
				m->old_smtpd[i] = 0;
			}
	}
}

static void
stop(struct master *m, int sig)
{
	int k;

	log_info("signal %d: stopping", sig);
	sd_notify(0, "STOPPING=1");
	m->stopping = 1;
	m->kill_at = util_mono_ms() + STOP_GRACE_MS;
	size_t i;

	for (k = 0; k < CHILD_COUNT; k++)
		if (m->child[k].pid != 0)
			kill(m->child[k].pid, SIGTERM);
	for (i = 0; i < sizeof(m->old_smtpd) / sizeof(m->old_smtpd[0]); i++)
		if (m->old_smtpd[i] != 0)
			kill(m->old_smtpd[i], SIGTERM);
}

/* next_wait_ms - until the next restart or kill deadline; -1: none */
static int64_t
next_wait_ms(const struct master *m)
{
	int64_t now = util_mono_ms(), at = -1;
	int k;

	if (m->stopping)
		at = m->kill_at;
	else
		for (k = 0; k < CHILD_COUNT; k++)
			if (m->child[k].pid == 0 &&
			    (at == -1 || m->child[k].restart_at < at))
				at = m->child[k].restart_at;
	if (at == -1)
		return -1;
	return at > now ? at - now : 0;
}

/* timers - restart children that are due; kill those that will not stop */
static void
timers(struct master *m)
{
	int64_t now = util_mono_ms();
	size_t i;
	int k;

	for (i = 0; m->stopping && now >= m->kill_at &&
	    i < sizeof(m->old_smtpd) / sizeof(m->old_smtpd[0]); i++)
		if (m->old_smtpd[i] != 0)
			kill(m->old_smtpd[i], SIGKILL);

	for (k = 0; k < CHILD_COUNT; k++) {
		struct child *ch = &m->child[k];

		if (m->stopping && ch->pid != 0 && now >= m->kill_at) {
			log_warn("%s did not stop: killing it", ch->name);
			kill(ch->pid, SIGKILL);
		} else if (!m->stopping && ch->pid == 0 &&
		    now >= ch->restart_at) {
			start_child(m, (enum child_kind)k);
		}
	}
}

/* listeners_same - 1 when b listens on exactly the sockets a does */
static int
listeners_same(const struct conf *a, const struct conf *b)
{
	size_t i;

	if (a->nlistens != b->nlistens)
		return 0;
	for (i = 0; i < a->nlistens; i++)
		if (a->listens[i].sslen != b->listens[i].sslen ||
		    memcmp(&a->listens[i].ss, &b->listens[i].ss,
		    a->listens[i].sslen) != 0)
			return 0;
	return 1;
}

/*
 * reload - SIGHUP: read the configuration and the certificates again and
 * hand over to new children without dropping a session: the old smtpd
 * stops accepting and exits after its last session while the new one
 * takes new connections on the same sockets; the queue process finishes
 * the deliveries in flight, then its successor starts.  A configuration
 * with errors, or one that changes what needs a restart (listeners, home,
 * user), is refused with a log line and the running one stays.
 */
static void
reload_conf(struct master *m)
{
	struct conf *nc = conf_load(m->conf->file);
	struct tls_material tls;
	struct auth_users *users;
	struct child *sm = &m->child[CHILD_SMTPD], *q = &m->child[CHILD_QUEUE];
	size_t i;

	if (nc == NULL) {
		log_err("SIGHUP: the configuration has errors; keeping the "
		    "running one");
		return;
	}
	if (!listeners_same(m->conf, nc) || strcmp(m->conf->home, nc->home) ||
	    (m->drop && (strcmp(m->conf->user, nc->user) ||
	    strcmp(m->conf->smtpd_user, nc->smtpd_user))) ||
	    control_group_gid(m->conf) != control_group_gid(nc)) {
		log_err("SIGHUP: listeners, home, users or control-group "
		    "changed: they need a restart; keeping the running "
		    "configuration");
		conf_free(nc);
		return;
	}
	if (load_secrets(nc, &tls, &users) == -1) {
		log_err("SIGHUP: keeping the running configuration");
		conf_free(nc);
		return;
	}
	/* listens[] of the old configuration are still used by m->fds only
	 * through their index, which is the same */
	conf_free(m->conf);
	m->conf = nc;
	tls_material_free(&m->tls);
	auth_users_free(m->users);
	m->tls = tls;
	m->users = users;
	log_info("SIGHUP: configuration and certificates read again");
	/* limits sessions= may have grown: the new children inherit this */
	open_files(m->conf);
	for (i = 0; sm->pid != 0 && i < sizeof(m->old_smtpd) /
	    sizeof(m->old_smtpd[0]); i++) {
		if (m->old_smtpd[i] != 0)
			continue;
		m->old_smtpd[i] = sm->pid;
		kill(sm->pid, SIGUSR1);
		sm->pid = 0;
	}
	if (sm->pid != 0) {
		/* too many handovers at once: this one ends now */
		kill(sm->pid, SIGTERM);
		sm->handover = 1;
	} else {
		start_child(m, CHILD_SMTPD);
	}
	if (q->pid != 0) {
		q->handover = 1;
		kill(q->pid, SIGUSR1);
	}
}

/* reload - SIGHUP, said to the service manager: RELOADING=1 until the
 * new configuration is running, or the old one kept */
static void
reload(struct master *m)
{
	sd_notify(0, "RELOADING=1");
	reload_conf(m);
	sd_notify(0, "READY=1");
}

/*
 * supervise - the master's loop.  The master needs no event loop: it waits
 * for signals (blocked, taken with sigtimedwait) and two kinds of deadline.
 * That also keeps the children free of any inherited event state.
 */
static void
supervise(struct master *m, const sigset_t *set)
{
	struct timespec ts, *tsp;
	int64_t wait;
	int sig;

	while (!m->stopping || children_alive(m) > 0) {
		wait = next_wait_ms(m);
		tsp = NULL;
		if (wait >= 0) {
			ts.tv_sec = wait / 1000;
			ts.tv_nsec = (wait % 1000) * 1000000;
			tsp = &ts;
		}
		sig = sigtimedwait(set, NULL, tsp);
		if (sig == SIGCHLD)
			reap(m);
		else if ((sig == SIGTERM || sig == SIGINT) && !m->stopping)
			stop(m, sig);
		else if (sig == SIGHUP && !m->stopping)
			reload(m);
		else if (sig == -1 && errno != EAGAIN && errno != EINTR)
			fatal("sigtimedwait: %s", strerror(errno));
		reap(m);
		timers(m);
	}
}

/* who_runs - decide and say under which user the children run */
static void
who_runs(struct master *m)
{
	struct passwd *pw;

	m->uid = m->suid = geteuid();
	m->gid = m->sgid = getegid();
	if (geteuid() != 0) {
		log_info("running as uid %ld (not root): not switching users",
		    (long)geteuid());
		return;
	}
	if (m->conf->file == NULL) {
		log_warn("running as root on the embedded defaults: not "
		    "switching users (give a configuration file with a user)");
		return;
	}
	pw = getpwnam(m->conf->user);
	if (pw == NULL)
		fatal("user %s does not exist (create it, or set \"user\")",
		    m->conf->user);
	if (pw->pw_uid == 0)
		fatal("user %s is root: refusing to run sessions as root",
		    m->conf->user);
	m->drop = 1;
	m->uid = pw->pw_uid;
	m->gid = pw->pw_gid;
	pw = getpwnam(m->conf->smtpd_user);
	if (pw == NULL)
		fatal("user %s does not exist (create it, e.g. with "
		    "scripts/ensure-user.sh, or set \"smtpd-user\")",
		    m->conf->smtpd_user);
	if (pw->pw_uid == 0)
		fatal("user %s is root: refusing to run sessions as root",
		    m->conf->smtpd_user);
	m->suid = pw->pw_uid;
	m->sgid = pw->pw_gid;
	log_info("the queue and deliveries run as user %s (uid %ld), "
	    "sessions as user %s (uid %ld)", m->conf->user, (long)m->uid,
	    m->conf->smtpd_user, (long)m->suid);
	if (m->suid == m->uid)
		log_warn("smtpd-user is the queue's user %s: the smtpd can "
		    "read delivered mail and change queued messages (give it "
		    "a user of its own)", m->conf->user);
	else if (m->sgid == m->gid)
		fatal("smtpd-user %s has the group of user %s: give it a "
		    "group of its own", m->conf->smtpd_user, m->conf->user);
}

int
master_serve(struct conf *c)
{
	struct master m;
	sigset_t set;
	size_t i;
	int k, any = 0;

	memset(&m, 0, sizeof(m));
	m.conf = c;
	m.child[CHILD_SMTPD].name = "smtpd";
	m.child[CHILD_QUEUE].name = "queue";
	log_init("master", c->log_syslog, c->verbose);
	log_info("tern starting: hostname %s, home %s%s", c->hostname, c->home,
	    c->file ? "" : " (embedded defaults)");
	who_runs(&m);
	stats_init();
	open_files(c);
	umask(077);
	prepare_home(&m);
	spool_recover();
	m.commit_fd = commit_listen(&m);
	pid_file(&m, 1);
	m.ctl_group = control_group_gid(c);
	m.ctl_fd = control_bind(c->home, m.drop, m.uid, m.gid, m.ctl_group);
	if (load_secrets(c, &m.tls, &m.users) == -1)
		fatal("cannot start without the certificates and users named "
		    "in the configuration");

	m.fds = xcalloc(c->nlistens ? c->nlistens : 1, sizeof(int));
	for (i = 0; i < c->nlistens; i++) {
		m.fds[i] = bind_one(&c->listens[i]);
		any += m.fds[i] >= 0;
	}
	if (!any)
		fatal("no listening socket could be opened");

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (k = 0; k < CHILD_COUNT; k++)
		start_child(&m, (enum child_kind)k);
	/* the sockets take connections from now on (the kernel queues them
	 * until the smtpd accepts) */
	sd_notifyf(0, "READY=1\nSTATUS=accepting mail on %d listening "
	    "socket%s", any, any == 1 ? "" : "s");
	supervise(&m, &set);
	pid_file(&m, 0);
	log_info("stopped");
	for (i = 0; i < m.conf->nlistens; i++)
		if (m.fds[i] >= 0)
			close(m.fds[i]);
	free(m.fds);
	close(m.commit_fd);
	close(m.ctl_fd);
	tls_material_free(&m.tls);
	auth_users_free(m.users);
	conf_free(m.conf);
	return 0;
}

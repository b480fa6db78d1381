/*
 * sandbox.c - what an unprivileged child may still do once it runs: a
 * syscall filter (seccomp, through libseccomp) and a filesystem filter
 * (Landlock), both on top of PR_SET_NO_NEW_PRIVS (master.c), both kept
 * across exec -- which the filter forbids anyway.
 *
 * The syscall filter is a denylist: execve and execveat, ptrace and
 * process_vm_*, the mount family, chroot and pivot_root, namespaces
 * (unshare, setns), kexec, bpf, modules, keyrings, perf, userfaultfd,
 * file handles, reboot, swap, accounting, the clocks, I/O ports.  They fail
 * with EPERM, so that no parser bug can run a program or reach the kernel's
 * more exposed corners.  An allowlist would be stronger, but the smtpd and
 * the queue process run libevent, OpenSSL, libunbound's threads and, in the
 * sanitizer build, ASan's runtime, whose syscalls change with each
 * library version (a call missing from a list kills a process in
 * production on an upgrade); what an attacker needs to escalate or to
 * leave the process is on the denylist.  Calls of another ABI (i386,
 * through int 0x80) are killed by libseccomp's default for a foreign
 * architecture; x32 calls, which share the x86_64 architecture, get the
 * same rules as native ones (the x32 ABI is added to the filter).
 *
 * Landlock limits the paths a process can open, create, rename or
 * remove: a list of trees, each with what it allows (sandbox_path).  It
 * is raw syscalls against <linux/landlock.h>: libc has no wrapper and
 * Debian 12 no library for it.  The ABI is read at run time; a kernel
 * without Landlock (or with it disabled) is logged and the process runs
 * with the syscall filter alone.  What each process is allowed is the
 * caller's (smtpd.c, master.c), so that the unit test applies exactly
 * the production functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"
#include "util.h"

/* ABI 3 (Linux 6.2) handles truncate(2); Debian 12's headers stop at 2 */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

/*
 * In the sanitizer build LeakSanitizer stops the process's threads with
 * ptrace at exit to look for leaks; denied, every exit would end in a
 * sanitizer error.  That build (never installed) keeps ptrace; execve,
 * which ASan only wants for its symbolizer, stays denied (its reports are
 * then unsymbolized).
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/* the syscalls no unprivileged child of tern ever needs */
static const char *const denied[] = {
	"execve", "execveat",
#ifndef SANDBOX_ASAN
	"ptrace",
#endif
	"process_vm_readv",
	"process_vm_writev", "mount", "umount", "umount2", "pivot_root",
	"chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
	"open_tree", "mount_setattr", "unshare", "setns", "kexec_load",
	"kexec_file_load", "bpf", "init_module", "finit_module",
	"delete_module", "create_module", "keyctl", "add_key", "request_key",
	"perf_event_open", "userfaultfd", "open_by_handle_at",
	"name_to_handle_at", "reboot", "swapon", "swapoff", "acct",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "quotactl", "quotactl_fd", "lookup_dcookie",
	"syslog", "vhangup", "personality", "uselib", "nfsservctl",
	"sethostname", "setdomainname",
};

/* sandbox_syscalls - install the syscall filter on every thread of the
 * process; -1 with a message in err */
int
sandbox_syscalls(char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	size_t i;
	int rc, nr;

	/* a filter needs no_new_privs (or root); master.c set it already */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
#if defined(__x86_64__)
	/* the x32 ABI is the x86_64 architecture to the kernel: filter it */
	rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
	if (rc != 0 && rc != -EEXIST) {
		snprintf(err, errlen, "seccomp: x32: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
#endif
	/* threads started before (the spool's commit thread, libunbound's)
	 * are filtered too, or the filter would not hold */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (i = 0; rc == 0 && i < sizeof(denied) / sizeof(denied[0]); i++) {
		nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a syscall on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (rc != 0)
			snprintf(err, errlen, "seccomp: rule for %s: %s",
			    denied[i], strerror(-rc));
	}
	if (rc == 0 && (rc = seccomp_load(ctx)) != 0)
		snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

/* the rights of a path's tree, by the kind sandbox_path gives */
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_WRITE (LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | \
	LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_MAKE_DIR | \
	LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REFER | \
	LANDLOCK_ACCESS_FS_TRUNCATE)

/* sandbox_landlock_abi - the kernel's Landlock ABI version, 0 without */
int
sandbox_landlock_abi(void)
{
	long v = syscall(__NR_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

/* handled - every right of ABI abi (all are denied but for the rules) */
static uint64_t
handled(int abi)
{
	/* ABI 1: execute .. make_sym */
	uint64_t h = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		h |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return h;
}

/*
 * sandbox_paths - allow only the trees of paths[n], each with its kind
 * (read, or read and write), and nothing else on the filesystem; 1 when
 * applied, 0 when the kernel has no Landlock (logged by the caller), -1
 * with a message in err.  A path that does not exist is skipped.  Must
 * follow PR_SET_NO_NEW_PRIVS.
 */
int
sandbox_paths(const struct sandbox_path *paths, size_t n, char *err,
    size_t errlen)
{
	struct landlock_ruleset_attr attr;
	struct landlock_path_beneath_attr rule;
	int abi = sandbox_landlock_abi(), fd, pfd;
	size_t i;

	if (abi <= 0)
		return 0;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = handled(abi);
	fd = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr),
	    0);
	if (fd == -1) {
		snprintf(err, errlen, "landlock: create ruleset: %s",
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		pfd = open(paths[i].path, O_PATH | O_CLOEXEC);
		if (pfd == -1)
			continue;
		memset(&rule, 0, sizeof(rule));
		rule.parent_fd = pfd;
		rule.allowed_access = (paths[i].write ? LL_WRITE : LL_READ) &
		    attr.handled_access_fs;
		if (syscall(__NR_landlock_add_rule, fd,
		    LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == -1) {
			/* a file (not a directory) takes no directory rights */
			rule.allowed_access &= ~(uint64_t)(
			    LANDLOCK_ACCESS_FS_READ_DIR |
			    LANDLOCK_ACCESS_FS_REMOVE_FILE |
			    LANDLOCK_ACCESS_FS_MAKE_REG |
			    LANDLOCK_ACCESS_FS_REMOVE_DIR |
			    LANDLOCK_ACCESS_FS_MAKE_DIR |
			    LANDLOCK_ACCESS_FS_MAKE_SOCK |
			    LANDLOCK_ACCESS_FS_REFER);
			if (syscall(__NR_landlock_add_rule, fd,
			    LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == -1) {
				snprintf(err, errlen, "landlock: rule for %s: "
				    "%s", paths[i].path, strerror(errno));
				close(pfd);
				close(fd);
				return -1;
			}
		}
		close(pfd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(__NR_landlock_restrict_self, fd, 0) == -1) {
		snprintf(err, errlen, "landlock: restrict: %s",
		    strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 1;
}

/* the system trees a child reads: libc's name service, OpenSSL's and
 * libunbound's configuration, time zones, shared objects loaded late,
 * /dev/null and /dev/urandom, /proc/self (the sanitizers) */
static const char *const system_read[] = {
	"/etc", "/usr", "/lib", "/lib64", "/dev", "/proc", "/run",
};

/*
 * sandbox_child - the filters of an unprivileged child: the syscall
 * filter, and Landlock allowing the system trees read-only and write
 * (with read) only under each of write[nwrite]; read_all: read anywhere
 * (the queue process).  Logs what it applied; fatal when a filter cannot
 * be installed on a kernel that has it.
 */
void
sandbox_child(const char *name, const char *const *write, size_t nwrite,
    int read_all)
{
	struct sandbox_path p[16];
	char err[256];
	size_t n = 0, i;
	int rc;

	if (nwrite > 8)
		panic("sandbox_child: too many trees");
	if (read_all) {
		p[n].path = "/";
		p[n++].write = 0;
	} else {
		for (i = 0; i < sizeof(system_read) / sizeof(system_read[0]);
		    i++) {
			p[n].path = system_read[i];
			p[n++].write = 0;
		}
	}
	for (i = 0; i < nwrite; i++) {
		p[n].path = write[i];
		p[n++].write = 1;
	}
	rc = sandbox_paths(p, n, err, sizeof(err));
	if (rc == -1)
		fatal("%s: %s", name, err);
	if (rc == 0)
		log_warn("%s: the kernel has no Landlock (or it is disabled): "
		    "no filesystem filter, the syscall filter only", name);
	if (sandbox_syscalls(err, sizeof(err)) == -1)
		fatal("%s: %s", name, err);
	log_info("%s: sandboxed: syscall filter, %s", name, rc == 1 ?
	    "Landlock" : "no Landlock");
}

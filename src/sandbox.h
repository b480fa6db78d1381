/*
 * sandbox.h - the syscall filter (seccomp) and filesystem filter
 * (Landlock) of the unprivileged children (see sandbox.c).
 */
#ifndef TERN_SANDBOX_H
#define TERN_SANDBOX_H

#include <stddef.h>

/* a tree Landlock allows: read only, or read and write */
struct sandbox_path {
	const char *path;
	int write;
};

/* sandbox_syscalls - deny execve, ptrace, mount, bpf, modules... (EPERM)
 * on every thread; -1 with a message in err */
int sandbox_syscalls(char *err, size_t errlen);
/* sandbox_landlock_abi - the kernel's Landlock ABI, 0 without Landlock */
int sandbox_landlock_abi(void);
/* sandbox_paths - Landlock: only these trees; 1 applied, 0 no Landlock,
 * -1 with a message in err */
int sandbox_paths(const struct sandbox_path *paths, size_t n, char *err,
    size_t errlen);
/* sandbox_child - both filters for a child called name: the system
 * trees (or, with read_all, everything) read-only, write[] read-write */
void sandbox_child(const char *name, const char *const *write,
    size_t nwrite, int read_all);

#endif

/*
 * stats.c - counters since the start of tern serve (see stats.h): one
 * shared anonymous page, relaxed atomics (the numbers need no ordering
 * with anything else).  Without stats_init (unit tests, verbs other than
 * serve) the counters live in this process alone.
 */
#include "stats.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

struct stats_slot {
	_Atomic pid_t pid;          /* 0: free */
	_Atomic uint64_t sessions;  /* open sessions of that smtpd */
};

struct stats_page {
	_Atomic int64_t started;
	_Atomic uint64_t counter[STATS_NCOUNTERS];
	struct stats_slot slot[STATS_SLOTS];
};

static struct stats_page local_page;
static struct stats_page *page = &local_page;
/* this process's slot, claimed at its first session; NULL: none yet */
static struct stats_slot *my_slot;
static pid_t my_slot_pid;

void
stats_init(void)
{
	void *p = mmap(NULL, sizeof(struct stats_page), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fatal("cannot map the counters: %s", strerror(errno));
	memset(p, 0, sizeof(struct stats_page));
	page = p;
	atomic_store(&page->started, util_now_ms() / 1000);
}

void
stats_add(enum stats_counter k, uint64_t n)
{
	if ((unsigned)k < STATS_NCOUNTERS)
		atomic_fetch_add_explicit(&page->counter[k], n,
		    memory_order_relaxed);
}

/* slot_mine - this process's slot (claimed now if need be); NULL when
 * every slot is taken: its sessions are then not counted as open */
static struct stats_slot *
slot_mine(void)
{
	pid_t me = getpid(), none;
	size_t i;

	if (my_slot != NULL && my_slot_pid == me)
		return my_slot;
	my_slot = NULL;
	for (i = 0; i < STATS_SLOTS; i++) {
		none = 0;
		if (atomic_compare_exchange_strong(&page->slot[i].pid, &none,
		    me)) {
			atomic_store(&page->slot[i].sessions, 0);
			my_slot = &page->slot[i];
			my_slot_pid = me;
			break;
		}
	}
	return my_slot;
}

void
stats_session_open(void)
{
	struct stats_slot *s = slot_mine();

	stats_add(STATS_SESSIONS, 1);
	if (s != NULL)
		atomic_fetch_add_explicit(&s->sessions, 1,
		    memory_order_relaxed);
}

void
stats_session_close(void)
{
	struct stats_slot *s = slot_mine();

	if (s != NULL && atomic_load(&s->sessions) > 0)
		atomic_fetch_sub_explicit(&s->sessions, 1,
		    memory_order_relaxed);
}

void
stats_forget(pid_t pid)
{
	size_t i;

	for (i = 0; i < STATS_SLOTS; i++) {
		if (atomic_load(&page->slot[i].pid) != pid)
			continue;
		atomic_store(&page->slot[i].sessions, 0);
		atomic_store(&page->slot[i].pid, 0);
	}
}

void
stats_read(struct stats_snapshot *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	s->started = atomic_load(&page->started);
	for (i = 0; i < STATS_NCOUNTERS; i++)
		s->counter[i] = atomic_load_explicit(&page->counter[i],
		    memory_order_relaxed);
	for (i = 0; i < STATS_SLOTS; i++)
		if (atomic_load(&page->slot[i].pid) != 0)
			s->open_sessions += atomic_load(
			    &page->slot[i].sessions);
}

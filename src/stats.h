/*
 * stats.h - counters since the start of tern serve, for tern status.
 *
 * The one idea: the master maps one page of counters shared with every
 * child it forks (an anonymous MAP_SHARED mapping, inherited by fork), so
 * each process counts its own events where they happen and the queue
 * process reads the sum when the control socket asks; no process has to
 * ask another.  The smtpd counts sessions and received messages, the queue
 * process delivery outcomes.  Open sessions are counted per smtpd process
 * in a slot it claims, and the master clears the slot of a child it
 * reaps, so a crashed smtpd leaves no phantom sessions behind.  The page
 * holds only numbers: a process that wrote nonsense there could make
 * tern status wrong, nothing else.
 */
#ifndef TERN_STATS_H
#define TERN_STATS_H

#include <stdint.h>
#include <sys/types.h>

enum stats_counter {
	STATS_SESSIONS,   /* SMTP sessions accepted */
	STATS_RECEIVED,   /* messages committed to the queue by the smtpd */
	STATS_DELIVERED,  /* recipient attempts that ended delivered */
	STATS_DEFERRED,   /* recipient attempts that ended deferred */
	STATS_BOUNCED,    /* recipients that failed (bounced, given up) */
	STATS_NCOUNTERS
};

/* smtpd processes counted at once (the running one and those finishing
 * their sessions after SIGHUP) */
#define STATS_SLOTS 16

struct stats_snapshot {
	int64_t started;    /* unix seconds: the master's start */
	uint64_t counter[STATS_NCOUNTERS];
	uint64_t open_sessions;
};

/* stats_init - (master, before any fork) map the counters; started is
 * recorded now */
void stats_init(void);
/* stats_add - add n to a counter */
void stats_add(enum stats_counter k, uint64_t n);
/* stats_session_open - (smtpd) one more open session in this process */
void stats_session_open(void);
/* stats_session_close - (smtpd) one less */
void stats_session_close(void);
/* stats_forget - (master) pid ended: its open sessions are gone */
void stats_forget(pid_t pid);
/* stats_read - the counters now */
void stats_read(struct stats_snapshot *s);

#endif

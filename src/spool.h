/*
 * spool.h - the queue on disk, the single source of truth.
 *
 * Layout under $home/spool (all 0700, files 0600, owned by the tern user):
 *   incoming/ID.msg   content being received (never acknowledged)
 *   incoming/ID.env   envelope written at commit time (a file from the
 *                     pool may be there, empty or stale, from the start)
 *   queue/ID.msg      committed content: immutable
 *   queue/ID.env      committed envelope: its presence marks the message
 *                     as queued; state changes replace it atomically
 *   quarantine/       acknowledged files that could not be read
 *   free/             finished messages' files kept for new ones (the
 *                     pool, see spool.c): no message
 *
 * Durability: spool_tx_commit() reports success only after both files are
 * fsync'd, renamed into queue/ (content first, envelope last) and queue/
 * itself is fsync'd.  Commits from many sessions are grouped: one worker
 * thread takes every commit waiting and syncs them together, so sessions
 * finishing together share the directory fsync and the wait.
 */
#ifndef TERN_SPOOL_H
#define TERN_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "envelope.h"

/* the queue process's commit socket, under home (see spool.c, "The
 * commit") */
#define SPOOL_COMMIT_SOCK "spool/commit.sock"

/* files of finished messages kept in free/ for new ones, at most */
#define SPOOL_POOL_MAX 4096

struct event_base;
struct spool_tx;

/* spool_init - create (if missing) and open the spool under home/spool */
int spool_init(const char *home);
/*
 * spool_init_smtpd - the smtpd's spool: incoming/ and free/ only; its
 * commits are asked of the queue process on SPOOL_COMMIT_SOCK.  shared:
 * the smtpd has a user of its own, and its files are made group-readable
 * and -writable (0660) for the queue's group.
 */
int spool_init_smtpd(const char *home, int shared);
/* spool_set_pool_owner - (master, queue process) files in free/ must be
 * this user's (the smtpd's, which reuses them); others are not kept */
void spool_set_pool_owner(uid_t uid);
/* spool_dir - "$home/spool" */
const char *spool_dir(void);

/* spool_qid_new - a fresh queue id: time-sortable, unique in this spool */
void spool_qid_new(char out[QID_SIZE]);
/* spool_qid_valid - 1 when s looks like a queue id (also a safe filename) */
int spool_qid_valid(const char *s);

/*
 * spool_free_ok - 1 when the spool filesystem has more than reserve bytes
 * free (for a new message of about size bytes).
 */
int spool_free_ok(uint64_t reserve, uint64_t size);

/*
 * spool_error_full - 1 when err (from a spool write, create or commit) means
 * the storage is used up: ENOSPC (file system full) or EDQUOT (the tern
 * user's quota).  A client is told 452 4.3.1 for those, 451 4.3.0 for any
 * other failure.
 */
int spool_error_full(int err);

/* receiving (smtpd) */

/* spool_commit_start - start the group-commit worker for this event loop */
void spool_commit_start(struct event_base *base);
/* spool_tx_begin - create incoming/ID.msg; NULL with errno on failure */
struct spool_tx *spool_tx_begin(void);
/* spool_tx_id - the queue id of a transaction */
const char *spool_tx_id(const struct spool_tx *tx);
/* spool_tx_write - append content (written at once: hand over large
 * pieces); -1 with errno on failure,
 * after which only spool_tx_abort is allowed */
int spool_tx_write(struct spool_tx *tx, const void *p, size_t len);
/* spool_tx_size - content octets written so far */
uint64_t spool_tx_size(const struct spool_tx *tx);
/* spool_tx_error - errno of the first failed write of tx, 0 if none */
int spool_tx_error(const struct spool_tx *tx);
/* spool_tx_abort - drop the message: unlink, free */
void spool_tx_abort(struct spool_tx *tx);

typedef void (*spool_commit_cb)(int ok, int err, const char *qid,
    void *arg);
/*
 * spool_tx_commit - make the message durable with this envelope (its id is
 * set from tx).  cb runs later on the event loop with ok=1 (err 0) once
 * durable, or ok=0 (files removed) and err the errno of the first failure
 * if anything failed.  tx is freed by the spool.
 */
void spool_tx_commit(struct spool_tx *tx, struct envelope *env,
    spool_commit_cb cb, void *arg);

/* queue side */

/*
 * spool_recover - at start, before any session: remove what is in incoming/
 * and queue/ID.msg files without an envelope (never acknowledged); move envelopes
 * without content to quarantine with a log line.
 */
void spool_recover(void);
/*
 * spool_sweep_incoming - while tern runs (the queue process): remove the
 * files in incoming/ unchanged for max_age_ms, which an smtpd that ended
 * during a message left there (never acknowledged); how many went
 */
size_t spool_sweep_incoming(int64_t max_age_ms);
/* spool_scan - call fn for each queued id (queue/ID.env), in id order */
void spool_scan(void (*fn)(const char *qid, void *arg), void *arg);
/* spool_load - read queue/ID.env; on a parse error the message's files
 * go to quarantine (logged) and -1 is returned */
int spool_load(const char *qid, struct envelope *env);
/* spool_content_path - "$spool/queue/ID.msg" into out */
void spool_content_path(const char *qid, char *out, size_t outlen);
/* spool_update - replace queue/ID.env atomically and durably */
int spool_update(const struct envelope *env);
/*
 * spool_update_async - the same, off the event loop: the commit worker
 * writes, syncs and renames (grouped with other updates and commits); cb
 * runs on the loop, ok=1 once the new envelope is durable.  env may be
 * changed or freed as soon as this returns.  Needs spool_commit_start.
 */
void spool_update_async(const struct envelope *env, spool_commit_cb cb,
    void *arg);
/*
 * spool_adopt_async - (queue process) commit a message the smtpd wrote and
 * synced in incoming/ under qid: both files checked (plain files with one
 * name), renamed into queue/ without replacing anything, queue/ fsync'd;
 * cb as for spool_tx_commit.  Grouped with updates in the commit worker.
 */
void spool_adopt_async(const char *qid, spool_commit_cb cb, void *arg);
/* spool_remove - remove a finished message (envelope first; not synced:
 * a crash may bring it back for one more, idempotent, attempt) */
int spool_remove(const char *qid);
/* spool_sync_queue - make removals from queue/ durable (fsync of the
 * directory) */
int spool_sync_queue(void);
/* spool_quarantine - move a message's files to quarantine/ */
void spool_quarantine(const char *qid, const char *why);

#endif

/*
 * deliver.h - local delivery agents: one table of methods (maildir, mbox,
 * pipe), each delivering one queued message to one recipient and saying
 * what happened.
 *
 * Agents run in a delivery child (deliver_proc.c), never on the queue
 * process's event loop, already switched to the user the mail belongs to:
 * they may block, sleep on a lock or wait for a program.  They get the
 * content as an open file descriptor (read it with pread from offset 0: a
 * child may deliver the same content to several recipients) and never see
 * the spool.  The content has CRLF line ends, as SMTP carries it; what an
 * agent writes for a mail reader has LF (deliver_write_message).
 *
 * LMTP is the one method that is not a row here: it is a network client,
 * and the queue process's outbound client (mta.c) already is one, with
 * connection reuse and per-destination concurrency (see ARCHITECTURE.md).
 */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

#include <stddef.h>
#include <stdint.h>

enum deliver_result {
	DELIVER_OK = 0,
	DELIVER_TEMP, /* retry later: disk full, permissions, lock busy */
	DELIVER_PERM  /* will never work: bounce */
};

/* the longest reason an agent gives (it goes into logs and bounces) */
#define DELIVER_REASON_MAX 400

struct deliver_req {
	const char *qid;
	size_t rcpt_index;        /* position in the envelope, for the name */
	int content_fd;           /* queue/ID.msg, read-only: use pread */
	const char *return_path;  /* envelope sender, "" for <> */
	const char *delivered_to; /* the recipient address: Delivered-To:,
	                           * RECIPIENT */
	const char *hostname;     /* for Maildir file names */
	int check_cur;            /* also look in cur/ for an earlier copy
	                           * (set for messages recovered at start) */
	/* who the mail is for: a pipe's environment and %u/%d/%a */
	const char *user;         /* USER, %u: the login name or the folded
	                           * local part without subaddress */
	const char *home;         /* HOME: the user's home, "" when none */
	const char *local;        /* LOCAL: the local part, folded, with its
	                           * extension */
	const char *extension;    /* EXTENSION: the subaddress, "" when none */
	const char *domain;       /* DOMAIN, %d: lower case */
	int64_t timeout_ms;       /* a pipe's limit; 0: none */
};

struct deliver_outcome {
	enum deliver_result result;
	char status[16];  /* enhanced status ("5.3.0"), "" for the default of
	                   * the result's class */
	char reason[DELIVER_REASON_MAX + 1]; /* what happened, one line */
};

/* deliver_fn - deliver req to target: the method's argument from the
 * configuration, a path already expanded for maildir and mbox, the
 * command as written for pipe */
typedef void deliver_fn(const char *target, const struct deliver_req *req,
    struct deliver_outcome *out);

struct deliver_agent {
	const char *name;    /* "maildir", "mbox", "pipe" */
	deliver_fn *deliver;
	int path_target;     /* the target is a mailbox path (expanded by the
	                      * caller, ~ included) */
};

/* deliver_agent_find - the agent of a method name, or NULL */
const struct deliver_agent *deliver_agent_find(const char *name);

/* deliver_outcome_set - fill out (reason formatted, one line) */
void deliver_outcome_set(struct deliver_outcome *out, enum deliver_result r,
    const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* flags of deliver_write_message */
#define DELIVER_WRITE_FROM_QUOTE 1 /* mboxrd: '>' before every line that
                                    * matches ">*From " */
#define DELIVER_WRITE_END_LF 2     /* end in LF even when the content
                                    * does not (an mbox needs it) */

/*
 * deliver_write_message - write Return-Path: and Delivered-To: (values
 * sanitised), then the content read from req->content_fd from offset 0,
 * with every CRLF turned into LF (bare CR and bare LF kept), to out.
 * Returns the octets written, or -1 with err set ("cannot write WHAT:
 * ...", or a read error of the content) and errno that of the failed
 * write or read (an mbox tells a full disk from other failures).
 */
int64_t deliver_write_message(int out, const struct deliver_req *req,
    unsigned flags, const char *what, char *err, size_t errlen);

/* the agents */
deliver_fn deliver_maildir;
deliver_fn deliver_mbox;
/* deliver_pipe waits for the processes it starts: the caller must not
 * ignore SIGCHLD nor reap children it did not start (waitpid(-1)) */
deliver_fn deliver_pipe;

/* limits of a pipe command (deliver_pipe_argv.c) */
#define DELIVER_PIPE_COMMAND_MAX 4096 /* octets of the command as written */
#define DELIVER_PIPE_WORDS_MAX 64     /* words of the command */
#define DELIVER_PIPE_ARG_MAX 8192     /* octets of one expanded argument */

/*
 * deliver_pipe_argv - split a pipe command into words ('...' literal,
 * "..." with \" and \\, no other shell syntax) and expand %u %d %a %l %e
 * %% in each from req, every word giving exactly one argument.  argv[0]
 * must be an absolute path without escapes, and a shell's -c string may
 * hold none.  Pure.  Returns the number of arguments and *argv
 * (NULL-terminated, one allocation: free(*argv)), or -1 with err set.
 */
int deliver_pipe_argv(const char *command, const struct deliver_req *req,
    char ***argv, char *err, size_t errlen);

/* deliver_pipe_check - 0 when command is usable (deliver_pipe_argv with
 * sample values), or -1 with err set; for the configuration at load
 * time.  Pure. */
int deliver_pipe_check(const char *command, char *err, size_t errlen);

#endif

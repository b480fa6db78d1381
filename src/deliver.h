/*
 * deliver.h - local delivery agents.  One call delivers one recipient of
 * one queued message and says what happened.
 */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

#include <stddef.h>

enum deliver_result {
	DELIVER_OK = 0,
	DELIVER_TEMP, /* retry later: disk full, permissions, lock busy */
	DELIVER_PERM  /* will never work: bounce */
};

struct deliver_req {
	const char *qid;
	size_t rcpt_index;        /* position in the envelope, for the name */
	const char *content_path; /* queue/ID.msg */
	const char *return_path;  /* envelope sender, "" for <> */
	const char *delivered_to; /* the recipient address */
	const char *hostname;     /* for Maildir file names */
	int check_cur;            /* also look in cur/ for an earlier copy
	                           * (set for messages recovered at start) */
};

/*
 * deliver_maildir - deliver into the Maildir at path (created with tmp/,
 * new/, cur/ when missing): Return-Path: and Delivered-To: are prepended,
 * CRLF becomes LF, the file goes tmp/ -> fsync -> new/, then new/ is
 * fsync'd.  The file name is derived from the queue id and recipient index,
 * so a delivery repeated after a crash finds the earlier copy and reports
 * DELIVER_OK without writing twice.  On failure err says why.
 */
enum deliver_result deliver_maildir(const char *path,
    const struct deliver_req *req, char *err, size_t errlen);

#endif

/*
 * deliver_proto.h - the requests the queue process sends to the delivery
 * process (deliverd.c) and the results that come back.  Pure: no I/O.
 *
 * A request asks for one local delivery: which recipient of which message,
 * how (a method of the configuration, or a target an alias or a .forward
 * named) and as whom.  The delivery process runs as root, and the queue
 * process is less trusted than it, so a request is parsed strictly and
 * everything in it is checked against the configuration before anything
 * is done (deliverd.c); the file form is "key value" lines, as the
 * envelope's, so a request can be read in a log.
 */
#ifndef TERN_DELIVER_PROTO_H
#define TERN_DELIVER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "deliver.h"
#include "util.h"

/* a request or a result is one datagram of at most this */
#define DELIVER_MSG_MAX (64 * 1024)
/* targets a .forward may name, at most */
#define DELIVER_FORWARD_MAX 100

enum deliver_source {
	DSRC_MAILBOX = 0, /* the user's mailbox: conf mailbox / mailbox-for */
	DSRC_ALIAS,       /* a file or pipe an alias names: as alias-user */
	DSRC_FORWARD      /* a file or pipe a user's .forward names: as the
	                   * user */
};

struct deliver_request {
	uint64_t id;
	char *qid;
	size_t index;       /* the recipient's index in the envelope */
	enum deliver_source source;
	char *method;       /* METHOD:ARG (maildir:, mbox:, pipe:, file:) */
	char *user;         /* the system user to deliver as; "" for a
	                     * virtual user (the tern user) */
	char *vuser;        /* %u */
	char *local;        /* LOCAL: the local part with its extension */
	char *ext;          /* EXTENSION */
	char *domain;       /* %d */
	char *rcpt;         /* Delivered-To:, RECIPIENT */
	char *sender;       /* Return-Path:, SENDER */
	char *alias;        /* DSRC_ALIAS: the alias */
	int check_cur;
	int no_forward;     /* the user's own mailbox: no .forward */
};

/* a .forward found: the targets it names instead of a delivery */
#define DELIVER_FORWARDED 3

struct deliver_reply {
	uint64_t id;
	int result;         /* enum deliver_result, or DELIVER_FORWARDED */
	char status[16];
	char reason[DELIVER_REASON_MAX + 1];
	char **forward;     /* DELIVER_FORWARDED: the targets */
	size_t nforward;
};

/* deliver_request_format - the request as text into out */
void deliver_request_format(const struct deliver_request *r, struct buf *out);
/* deliver_request_parse - strict; 0, or -1 with a reason in err */
int deliver_request_parse(struct deliver_request *r, const char *data,
    size_t len, char *err, size_t errlen);
/* deliver_request_free - what a parsed request owns */
void deliver_request_free(struct deliver_request *r);

/* deliver_reply_format - the reply as text into out */
void deliver_reply_format(const struct deliver_reply *r, struct buf *out);
/* deliver_reply_parse - strict; 0, or -1 with a reason in err */
int deliver_reply_parse(struct deliver_reply *r, const char *data,
    size_t len, char *err, size_t errlen);
/* deliver_reply_free - the forward targets of a parsed reply */
void deliver_reply_free(struct deliver_reply *r);

#endif

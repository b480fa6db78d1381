/*
 * trace.h - "tern trace": the path a delivered message took, hop by hop,
 * as terminal text, JSON or one self-contained HTML page (tern(8)).
 */
#ifndef TERN_TRACE_H
#define TERN_TRACE_H

#include <stddef.h>
#include <stdio.h>

#include "trace_path.h"

/* largest message read (a delivered message is at most the size limit
 * of the server that delivered it; 64 MiB is well above common ones) */
#define TRACE_INPUT_MAX (64u * 1024 * 1024)
/* body octets shown on the HTML page */
#define TRACE_BODY_PREVIEW 8192

/* struct trace_msg - a message read for tracing */
struct trace_msg {
	struct trace t;
	char *subject;    /* decoded (RFC 2047), sanitised, or NULL */
	char *from;       /* the From: field, decoded */
	char *from_addr;  /* its first address */
	char *message_id;
	int has_date;     /* the Date: field, read by GMime */
	int64_t date;
	int date_zone;
	char *body;       /* the start of the body, text */
	size_t body_len;  /* the whole body's length */
};

/* trace_main - the verb: argv[0] is "trace" */
int trace_main(int argc, char **argv);

/* trace_html - write the page for m to fp; -1 on a write error */
int trace_html(const struct trace_msg *m, FILE *fp);

/* trace_owner_label - "origin", "hop 3", "delivery" into out */
void trace_owner_label(const struct trace_field *f, char *out, size_t len);

#endif

/*
 * trace_path.h - the path of a delivered message from its header fields
 * (pure): hops oldest first, which hop added each field, and the checks
 * that the message alone allows.  tern trace (trace.c) reads the message
 * with GMime and prints what this module works out.
 */
#ifndef TERN_TRACE_PATH_H
#define TERN_TRACE_PATH_H

#include <stddef.h>
#include <stdint.h>

#include "received.h"

/* default delay that marks the hop which held the mail (--slow) */
#define TRACE_SLOW_DEFAULT 300
/* header fields read; past this the message is refused (a real one has
 * a few dozen, a list message a few hundred) */
#define TRACE_FIELDS_MAX 10000

/* who added a field, by its position between the Received: fields */
enum trace_owner {
	TRACE_ORIGIN,   /* below the oldest Received: the author, the MUA */
	TRACE_HOP,      /* between two Received: the receiver of hop n */
	TRACE_DELIVERY, /* above the newest: the final delivery */
};

/* struct trace_field - one header field, as the reader gives it */
struct trace_field {
	char *name;
	char *value; /* unfolded (and for display, RFC 2047 decoded) */
	char *raw;   /* the field's lines as written, "Name: v\n\tv\n" */
	enum trace_owner owner;
	size_t hop;  /* 1..nhops for TRACE_HOP; 0 else */
};

/* struct trace_hop - one Received: field, oldest is hops[0] (hop 1) */
struct trace_hop {
	struct received r;
	const char *raw;  /* the unfolded value (the field's) */
	size_t field;     /* its index in fields */
	int has_delay;
	int64_t delay;    /* seconds since the previous hop; < 0 is skew */
};

enum trace_level { TRACE_INFO, TRACE_WARNING };

/* struct trace_check - one finding, with its word ("no-tls"...) */
struct trace_check {
	const char *word;
	enum trace_level level;
	size_t hop;       /* 0 when about the message as a whole */
	char *text;
};

struct trace {
	struct trace_field *fields;
	size_t nfields, fields_cap;
	struct trace_hop *hops;
	size_t nhops;
	struct trace_check *checks;
	size_t nchecks;
	const char *return_path;  /* values of fields, or NULL */
	const char *delivered_to;
	int64_t slow;             /* seconds (--slow) */
};

/* trace_init - an empty trace; slow in seconds */
void trace_init(struct trace *t, int64_t slow);
/* trace_add_field - append a field in the message's order (copies) */
void trace_add_field(struct trace *t, const char *name, const char *value,
    const char *raw);
/* trace_analyse - hops, owners, delays and checks; from_addr is the
 * address of the From: field (or NULL) for the envelope check */
void trace_analyse(struct trace *t, const char *from_addr);
/* trace_free - everything the trace holds */
void trace_free(struct trace *t);

/* trace_fmt_time - "2026-12-05 10:00:00 +0100" in the written zone */
void trace_fmt_time(int64_t t, int zone, char *out, size_t outlen);
/* trace_fmt_iso - "2026-12-05T10:00:00+01:00" (RFC 3339) */
void trace_fmt_iso(int64_t t, int zone, char *out, size_t outlen);
/* trace_fmt_delay - "0s", "4m 03s", "2h 01m", "1d 03h", "-12s" */
void trace_fmt_delay(int64_t secs, char *out, size_t outlen);
/* trace_hop_sender - the best name of the host that sent hop h */
const char *trace_hop_sender(const struct trace_hop *h);
/* trace_addr_bare - "<a@b>" or "Name <a@b>" to "a@b" in out */
void trace_addr_bare(const char *s, char *out, size_t outlen);

#endif

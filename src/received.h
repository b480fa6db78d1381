/*
 * received.h - Received: trace fields read into their parts (pure).
 *
 * received_parse takes the unfolded value of one Received: field (RFC 5321
 * 4.4, RFC 5322 3.6.7) as any MTA writes it and fills a struct received;
 * received_date reads an RFC 5322 3.3 date-time, obsolete forms included.
 */
#ifndef TERN_RECEIVED_H
#define TERN_RECEIVED_H

#include <stddef.h>
#include <stdint.h>

/* longest Received: value read; longer ones are not parsed (shown raw) */
#define RECEIVED_MAX 8192
/* longest single part kept (a name, an address, a cipher) */
#define RECEIVED_PART_MAX 255

/* the protocol of a hop, from the "with" word (RFC 3848, RFC 8314) */
enum received_proto {
	RECEIVED_PROTO_UNKNOWN,
	RECEIVED_PROTO_SMTP,
	RECEIVED_PROTO_ESMTP,
	RECEIVED_PROTO_ESMTPA,
	RECEIVED_PROTO_ESMTPS,
	RECEIVED_PROTO_ESMTPSA,
	RECEIVED_PROTO_LMTP,
	RECEIVED_PROTO_HTTP,
	RECEIVED_PROTO_LOCAL,
};

/*
 * struct received - one hop.  Strings are NUL-terminated, sanitised
 * (no control characters), at most RECEIVED_PART_MAX bytes, "" when
 * absent.  parsed is 0 when the value is not a Received: line tern can
 * read: then only error says why and the caller shows the raw line.
 */
struct received {
	int parsed;
	const char *error;               /* static text when !parsed */
	char helo[RECEIVED_PART_MAX + 1]; /* the name the client gave */
	char rdns[RECEIVED_PART_MAX + 1]; /* its reverse DNS name */
	char ip[RECEIVED_PART_MAX + 1];   /* its address, no brackets */
	char by[RECEIVED_PART_MAX + 1];   /* the receiving host */
	char by_ip[RECEIVED_PART_MAX + 1]; /* its address, when written */
	char software[RECEIVED_PART_MAX + 1]; /* "Postfix", "Exim 4.96"... */
	char with[RECEIVED_PART_MAX + 1]; /* the with clause as written */
	char id[RECEIVED_PART_MAX + 1];   /* the receiver's queue id */
	char rcpt[RECEIVED_PART_MAX + 1]; /* the for clause, no brackets */
	char tls_version[RECEIVED_PART_MAX + 1];
	char tls_cipher[RECEIVED_PART_MAX + 1];
	enum received_proto proto;
	int tls;           /* 1 when the hop says it was encrypted */
	int forged;        /* the receiver said "may be forged" */
	int has_date;
	int64_t time;      /* seconds since the epoch, UTC */
	int zone;          /* the written zone, in minutes east of UTC */
	int zone_known;    /* 0 for -0000 and obsolete military zones */
};

/* received_parse - read one unfolded Received: value; 0 when parsed, -1
 * (r->parsed 0, r->error set) when not: never reads past value[len) */
int received_parse(const char *value, size_t len, struct received *r);

/* received_date - RFC 5322 date-time (obsolete forms and comments
 * included) to UTC seconds and the zone in minutes; -1 when not a date */
int received_date(const char *s, size_t len, int64_t *t, int *zone,
    int *zone_known);

/* received_proto_name - "ESMTPS", "LMTP", "local"... */
const char *received_proto_name(enum received_proto p);

#endif

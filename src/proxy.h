/*
 * proxy.h - the PROXY protocol header a load balancer (HAProxy's
 * send-proxy, send-proxy-v2) puts before the client's first byte, so the
 * server sees the client's address and not the balancer's.  Version 1 is
 * a text line, version 2 a binary block; both are read here.  Pure: no
 * I/O, so the unit tests and fuzz/fuzz_proxy.c link it alone.
 */
#ifndef TERN_PROXY_H
#define TERN_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

/* a v1 line, "PROXY" to CRLF (the specification's bound) */
#define PROXY_V1_MAX 107
/* the fixed part of a v2 header: signature, command, family, length */
#define PROXY_V2_FIXED 16
/*
 * a whole v2 header with its TLVs: the protocol allows 16 + 65535; we
 * take 4 KiB, room for every TLV HAProxy sends (SSL facts, a certificate's
 * CN, a unique id, the authority) several times over
 */
#define PROXY_V2_MAX 4096
/* what a reader must be ready to hold: the longer of the two */
#define PROXY_HEADER_MAX PROXY_V2_MAX

enum proxy_status {
	PROXY_NEED = 0, /* a proper start of a header, not complete yet:
	                 * every octet seen so far belongs to it */
	PROXY_DONE,     /* a complete header, its length in *used */
	PROXY_BAD       /* not a header, or a malformed one */
};

struct proxy_header {
	int version;  /* 1 or 2 */
	int local;    /* no client address: v1 "UNKNOWN", v2 LOCAL or an
	               * unspecified family (the balancer's own health
	               * check); the connection's own addresses hold */
	struct sockaddr_storage src; /* the client (local == 0) */
	socklen_t srclen;
	struct sockaddr_storage dst; /* where it connected to */
	socklen_t dstlen;
};

/*
 * proxy_parse - read a PROXY header at the start of buf.  PROXY_NEED
 * means "read more": every octet of buf belongs to the header, so a
 * reader may consume them without taking any of the client's data.
 * PROXY_DONE fills h and *used (the header's length; what follows is the
 * client's).  PROXY_BAD sets *why to the reason, for the log.
 */
enum proxy_status proxy_parse(const unsigned char *buf, size_t len,
    struct proxy_header *h, size_t *used, const char **why);

#endif

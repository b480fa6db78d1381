/*
 * proxy.c - the PROXY protocol, versions 1 and 2 (HAProxy's "The PROXY
 * protocol", 2020/03/05 edition): the header a TCP load balancer sends
 * before the client's data, naming the client's address and port.
 *
 * The one idea: a header is read strictly and never beyond its end.  A
 * v1 header is one line "PROXY TCP4|TCP6 SRC DST SPORT DPORT" or "PROXY
 * UNKNOWN ..." ending in CRLF within 107 octets, single spaces, addresses
 * in the family named, ports decimal without leading zeros; a v2 header
 * is the 12-octet signature, version 2 with the LOCAL or PROXY command,
 * a family (TCP over IPv4 or IPv6, or unspecified), a length, the
 * addresses and TLVs.  The TLVs (SSL facts, unique ids, NOOP padding)
 * are walked, each length checked against the header, and skipped: tern
 * takes nothing but the addresses from the balancer.  The CRC32C TLV is
 * not checked either: the balancer is on a trusted network
 * (listen proxy-from=), the checksum guards against corruption, not
 * forgery, and TCP already does that.  UDP and UNIX-socket families are
 * refused: a mail listener is TCP.
 *
 * Until a header is complete the answer is PROXY_NEED only while every
 * octet so far can still belong to it, so the session reads the header
 * out of the socket and leaves the client's first octets (a TLS
 * ClientHello on a submissions listener) where they are.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static const unsigned char v1_sig[] = "PROXY ";
static const unsigned char v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
	0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

#define V1_SIG_LEN (sizeof(v1_sig) - 1)
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21
#define V2_TLV_HEAD 3   /* type, 16-bit length */

static enum proxy_status
bad(const char **why, const char *reason)
{
	*why = reason;
	return PROXY_BAD;
}

/* ---- version 1: text -------------------------------------------------- */

/* v1_port - a decimal port, 0 to 65535, without leading zeros */
static int
v1_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* v1_addr - a textual address of family with its port into ss */
static int
v1_addr(int family, const char *s, size_t n, const char *p, size_t pn,
    struct sockaddr_storage *ss, socklen_t *sslen)
{
	char text[INET6_ADDRSTRLEN];
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	uint16_t port;

	if (n == 0 || n >= sizeof(text) || v1_port(p, pn, &port) == -1)
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
		return -1;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*sslen = sizeof(*sin6);
	return 0;
}

/* v1_fields - split line (no CRLF) at single spaces into at most max
 * fields; the count, or -1 for an empty field or too many */
static int
v1_fields(const char *line, size_t n, const char **f, size_t *fl, int max)
{
	size_t i, start = 0;
	int k = 0;

	for (i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		if (i == start || k == max)
			return -1;
		f[k] = line + start;
		fl[k++] = i - start;
		start = i + 1;
	}
	return k;
}

static enum proxy_status
v1_line(const char *line, size_t n, struct proxy_header *h,
    const char **why)
{
	const char *f[5];
	size_t fl[5];
	int k, family;

	if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
	    (n == 7 || line[7] == ' ')) {
		h->local = 1; /* the rest of the line is to be ignored */
		return PROXY_DONE;
	}
	k = v1_fields(line, n, f, fl, 5);
	if (k != 5)
		return bad(why, "v1: not PROTO SRC DST SPORT DPORT");
	if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return bad(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (v1_addr(family, f[1], fl[1], f[3], fl[3], &h->src,
	    &h->srclen) == -1 ||
	    v1_addr(family, f[2], fl[2], f[4], fl[4], &h->dst,
	    &h->dstlen) == -1)
		return bad(why, "v1: bad address or port");
	return PROXY_DONE;
}

static enum proxy_status
parse_v1(const unsigned char *buf, size_t len, struct proxy_header *h,
    size_t *used, const char **why)
{
	size_t i, n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;

	if (memcmp(buf, v1_sig, len < V1_SIG_LEN ? len : V1_SIG_LEN) != 0)
		return bad(why, "not a PROXY header");
	for (i = 0; i < n; i++) {
		if (buf[i] == '\r' && i + 1 < n && buf[i + 1] != '\n')
			return bad(why, "v1: CR without LF");
		if (buf[i] == '\n')
			return bad(why, "v1: LF without CR");
		if (buf[i] == '\r' && i + 1 < n)
			break;
		if (buf[i] < 0x20 && buf[i] != '\r')
			return bad(why, "v1: control character");
		if (buf[i] > 0x7e)
			return bad(why, "v1: octet outside ASCII");
	}
	if (i == n && n == PROXY_V1_MAX)
		return bad(why, "v1: no CRLF within 107 octets");
	if (i == n)
		return PROXY_NEED;
	if (i < V1_SIG_LEN)
		return bad(why, "not a PROXY header");
	h->version = 1;
	*used = i + 2;
	return v1_line((const char *)buf + V1_SIG_LEN, i - V1_SIG_LEN, h, why);
}

/* ---- version 2: binary ------------------------------------------------ */

/* v2_tlvs - every TLV of p[0..n) lies inside it; -1 when one does not */
static int
v2_tlvs(const unsigned char *p, size_t n)
{
	size_t i = 0, l;

	while (i < n) {
		if (n - i < V2_TLV_HEAD)
			return -1;
		l = ((size_t)p[i + 1] << 8) | p[i + 2];
		if (l > n - i - V2_TLV_HEAD)
			return -1;
		i += V2_TLV_HEAD + l;
	}
	return 0;
}

/* v2_addr - an address of family (4 or 16 octets at a) and its port
 * (2 octets at port, network order on both sides) into ss */
static void
v2_addr(int family, const unsigned char *a, const unsigned char *port,
    struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		memcpy(&sin->sin_addr, a, 4);
		memcpy(&sin->sin_port, port, 2);
		*sslen = sizeof(*sin);
		return;
	}
	memcpy(&sin6->sin6_addr, a, 16);
	memcpy(&sin6->sin6_port, port, 2);
	*sslen = sizeof(*sin6);
}

/* v2_body - the addresses and TLVs of a PROXY command: source address,
 * destination address, source port, destination port, then TLVs */
static enum proxy_status
v2_body(int fam, const unsigned char *p, size_t n, struct proxy_header *h,
    const char **why)
{
	size_t alen, block;
	int family;

	if (fam == V2_FAM_UNSPEC) {
		h->local = 1; /* the address block is to be ignored */
		return PROXY_DONE;
	}
	if (fam == V2_FAM_TCP4) {
		family = AF_INET;
		alen = 4;
	} else if (fam == V2_FAM_TCP6) {
		family = AF_INET6;
		alen = 16;
	} else {
		return bad(why, "v2: family is not TCP over IPv4 or IPv6");
	}
	block = 2 * alen + 4; /* 12 for IPv4, 36 for IPv6 */
	if (n < block)
		return bad(why, "v2: addresses cut short");
	v2_addr(family, p, p + 2 * alen, &h->src, &h->srclen);
	v2_addr(family, p + alen, p + 2 * alen + 2, &h->dst, &h->dstlen);
	if (v2_tlvs(p + block, n - block) == -1)
		return bad(why, "v2: a TLV runs past the header");
	return PROXY_DONE;
}

static enum proxy_status
parse_v2(const unsigned char *buf, size_t len, struct proxy_header *h,
    size_t *used, const char **why)
{
	size_t total;
	int cmd;

	if (memcmp(buf, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig))
	    != 0)
		return bad(why, "not a PROXY header");
	if (len > sizeof(v2_sig) && (buf[12] >> 4) != 2)
		return bad(why, "v2: version is not 2");
	cmd = len > sizeof(v2_sig) ? (buf[12] & 0xf) : V2_CMD_LOCAL;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return bad(why, "v2: command is not LOCAL or PROXY");
	if (len < PROXY_V2_FIXED)
		return PROXY_NEED;
	total = PROXY_V2_FIXED + (((size_t)buf[14] << 8) | buf[15]);
	if (total > PROXY_V2_MAX)
		return bad(why, "v2: header longer than 4096 octets");
	if (len < total)
		return PROXY_NEED;
	h->version = 2;
	*used = total;
	if (cmd == V2_CMD_LOCAL) {
		h->local = 1; /* addresses and TLVs are to be ignored */
		return PROXY_DONE;
	}
	return v2_body(buf[13], buf + PROXY_V2_FIXED, total - PROXY_V2_FIXED,
	    h, why);
}

/* proxy_parse - a PROXY v1 or v2 header at the start of buf */
enum proxy_status
proxy_parse(const unsigned char *buf, size_t len, struct proxy_header *h,
    size_t *used, const char **why)
{
	memset(h, 0, sizeof(*h));
	*used = 0;
	*why = NULL;
	if (len == 0)
		return PROXY_NEED;
	if (buf[0] == v1_sig[0])
		return parse_v1(buf, len, h, used, why);
	if (buf[0] == v2_sig[0])
		return parse_v2(buf, len, h, used, why);
	return bad(why, "not a PROXY header");
}

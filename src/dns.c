/*
 * dns.c - libunbound on the libevent loop.
 *
 * libunbound resolves in its own thread; ub_fd() becomes readable when
 * answers are ready and ub_process() runs their callbacks on our loop.
 * Client names are forward-confirmed (PTR, then A/AAAA of that name must
 * contain the address), as a name that does not map back proves nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "dns.h"
#include "smtp_parse.h"
#include "util.h"

#define RR_A 1
#define RR_PTR 12
#define RR_AAAA 28
#define RR_CLASS_IN 1

struct dns_query {
	int async_id;
	int family;
	unsigned char addr[16];
	char name[SMTP_DOMAIN_MAX + 1];
	dns_name_cb cb;
	void *arg;
};

static struct ub_ctx *ctx;
static struct event *ub_ev;

static void
ub_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (ub_process(ctx) != 0)
		log_warn("dns: processing answers failed");
}

int
dns_init(struct event_base *base, const char *resolver)
{
	int err;

	ctx = ub_ctx_create();
	if (ctx == NULL)
		return -1;
	if ((err = ub_ctx_async(ctx, 1)) != 0 ||
	    (err = ub_ctx_hosts(ctx, NULL)) != 0 ||
	    (err = resolver ? ub_ctx_set_fwd(ctx, resolver) :
	    ub_ctx_resolvconf(ctx, NULL)) != 0) {
		log_warn("dns: %s", ub_strerror(err));
		/* /etc/resolv.conf may be missing: hosts still answer */
	}
	ub_ev = event_new(base, ub_fd(ctx), EV_READ | EV_PERSIST, ub_ready,
	    NULL);
	if (ub_ev == NULL || event_add(ub_ev, NULL) == -1)
		return -1;
	return 0;
}

static void
finish(struct dns_query *q, const char *name)
{
	q->cb(name, q->arg);
	free(q);
}

/* dname_to_str - wire-format name to dotted text without the final dot */
static int
dname_to_str(const unsigned char *d, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0, l;

	while (i < len && d[i] != 0) {
		l = d[i++];
		if (l > 63 || i + l > len || o + l + 1 >= outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, d + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

static void
forward_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	size_t want = q->family == AF_INET ? 4 : 16;
	int i, ok = 0;

	if (err == 0 && res->havedata) {
		for (i = 0; res->data[i] != NULL; i++)
			if ((size_t)res->len[i] == want &&
			    memcmp(res->data[i], q->addr, want) == 0)
				ok = 1;
	}
	if (res != NULL)
		ub_resolve_free(res);
	finish(q, ok ? q->name : NULL);
}

static void
ptr_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	int rc;

	if (err != 0 || !res->havedata ||
	    dname_to_str((unsigned char *)res->data[0], (size_t)res->len[0],
	    q->name, sizeof(q->name)) == -1 ||
	    !smtp_domain_valid(q->name, 0)) {
		if (res != NULL)
			ub_resolve_free(res);
		finish(q, NULL);
		return;
	}
	ub_resolve_free(res);
	rc = ub_resolve_async(ctx, q->name,
	    q->family == AF_INET ? RR_A : RR_AAAA, RR_CLASS_IN, q,
	    forward_done, &q->async_id);
	if (rc != 0)
		finish(q, NULL);
}

/* ptr_name - "4.3.2.1.in-addr.arpa" or the ip6.arpa nibble form */
static void
ptr_name(const struct dns_query *q, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int i;

	if (q->family == AF_INET) {
		snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", q->addr[3],
		    q->addr[2], q->addr[1], q->addr[0]);
		return;
	}
	for (i = 15; i >= 0 && o + 4 < outlen; i--) {
		out[o++] = hex[q->addr[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[q->addr[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, outlen - o, "ip6.arpa");
}

struct dns_query *
dns_client_name(const struct sockaddr *sa, dns_name_cb cb, void *arg)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	struct dns_query *q;
	char name[80];

	if (ctx == NULL) {
		cb(NULL, arg);
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	q->cb = cb;
	q->arg = arg;
	if (sa->sa_family == AF_INET) {
		q->family = AF_INET;
		memcpy(q->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		q->family = AF_INET;
		memcpy(q->addr, &s6->sin6_addr.s6_addr[12], 4);
	} else {
		q->family = AF_INET6;
		memcpy(q->addr, &s6->sin6_addr, 16);
	}
	ptr_name(q, name, sizeof(name));
	if (ub_resolve_async(ctx, name, RR_PTR, RR_CLASS_IN, q, ptr_done,
	    &q->async_id) != 0) {
		free(q);
		cb(NULL, arg);
		return NULL;
	}
	return q;
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	ub_cancel(ctx, q->async_id);
	free(q);
}

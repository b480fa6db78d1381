/*
 * dnsbl.h - DNS blocklists and allowlists (RFC 5782) for a client
 * address: every dnsbl and dnswl zone of the configuration asked at once
 * through dns.c, the blocklists' weights summed against limits
 * dnsbl-threshold= as Postfix's postscreen_dnsbl_sites does.
 */
#ifndef TERN_DNSBL_H
#define TERN_DNSBL_H

#include <stddef.h>
#include <sys/socket.h>

struct conf;
struct conf_dnsbl;
struct dnsbl_check;

enum dnsbl_verdict {
	DNSBL_PASS = 0, /* below the threshold (or nothing answered) */
	DNSBL_ALLOWED,  /* an allowlist lists the client: it wins */
	DNSBL_LISTED    /* the weights of the lists that list it reach the
	                 * threshold, and no allowlist lists it */
};

/*
 * dnsbl_cb - the check has its verdict: at once when an allowlist lists
 * the client, else when every list has answered (or failed).  Runs once,
 * never from inside dnsbl_start.
 */
typedef void (*dnsbl_cb)(enum dnsbl_verdict v, void *arg);

/*
 * dnsbl_start - ask every list of c about the client sa; NULL when c has
 * none.  The check lives until dnsbl_free, also after its callback.  When
 * no list is pending once it returns (no resolver: every lookup failed at
 * once), the callback never runs: the caller reads dnsbl_verdict.
 */
struct dnsbl_check *dnsbl_start(const struct conf *c,
    const struct sockaddr *sa, dnsbl_cb cb, void *arg);
/* dnsbl_pending - 1 while some list has not answered and the verdict
 * could still change (0 for NULL) */
int dnsbl_pending(const struct dnsbl_check *k);
/* dnsbl_verdict - the verdict from the answers so far: a list that has
 * not answered lists nothing */
enum dnsbl_verdict dnsbl_verdict(const struct dnsbl_check *k);
/* dnsbl_names - the zones that list the client (blocklists, or the
 * allowlist that allowed it), comma-separated; "" for none */
const char *dnsbl_names(const struct dnsbl_check *k);
/* dnsbl_score - the summed weight of the blocklists that list it */
unsigned dnsbl_score(const struct dnsbl_check *k);
/* dnsbl_free - cancel what is still asked and forget the check */
void dnsbl_free(struct dnsbl_check *k);

/*
 * dnsbl_answer_lists - 1 when one of the n A records a zone returned
 * counts as a listing: one of its match= addresses, or, without match=,
 * any address in 127.0.0.0/8 but 127.255.255.0/24 (the codes lists such
 * as Spamhaus return for a refused query, RFC 5782 2.3 puts listings in
 * 127/8)
 */
int dnsbl_answer_lists(const struct conf_dnsbl *b,
    const unsigned char (*addrs)[4], size_t n);

#endif

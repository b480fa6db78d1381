/*
 * unit_addr.h - a client address for the unit tests that need one as a
 * struct sockaddr: numeric IPv4 or IPv6 text into a sockaddr_storage
 * (the test fails on anything else).  Include after <cmocka.h>.
 */
#ifndef TERN_UNIT_ADDR_H
#define TERN_UNIT_ADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* client_sa - addr (numeric IPv4 or IPv6) into ss */
static inline void
client_sa(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
	sin6->sin6_family = AF_INET6;
}

#endif

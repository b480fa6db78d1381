/*
 * test_received.c - Received: fields as real servers write them, read
 * into their parts (src/received.c): one row per form of Postfix, Exim,
 * Sendmail, OpenSMTPD, Exchange/Office 365, Gmail, qmail, Dovecot LMTP
 * and tern, written after each one's documentation (Exim's
 * received_header_text, Sendmail's $_ macro, qmail-header(5), ...);
 * dates in every RFC 5322 zone form; comments and folding; garbage.
 * The addresses are documentation ranges, never connected to.  The
 * Postfix and Dovecot forms are also checked against the real programs
 * in tests/integ/test_trace.py; the path logic (trace_path.c) at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "received.h"
#include "trace_path.h"
#include "util.h"

/* 2026-12-05 10:00:00 UTC */
#define T0 1796464800LL

struct rcase {
	const char *what;
	const char *value;
	int rc;
	const char *helo, *rdns, *ip, *by, *proto;
	const char *version, *cipher, *id, *rcpt;
	int tls;
	int64_t time; /* 0: no date expected */
};

static const struct rcase rcases[] = {
	/* Postfix: "from HELO (RDNS [IP])", TLS in a comment of its own */
	{ "Postfix ESMTPS",
	    "from client.example.com (client.example.com [203.0.113.5])\t"
	    "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
	    "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) "
	    "server-digest SHA256)\t(No client certificate requested)\t"
	    "by mx.example.org (Postfix) with ESMTPS id 4QxYz12AbCz9sT\t"
	    "for <user@example.org>; Sat,  5 Dec 2026 10:00:00 +0000 (UTC)",
	    0, "client.example.com", "client.example.com", "203.0.113.5",
	    "mx.example.org", "ESMTPS", "TLSv1.3", "TLS_AES_256_GCM_SHA384",
	    "4QxYz12AbCz9sT", "user@example.org", 1, T0 },
	{ "Postfix, no reverse name",
	    "from helo.example (unknown [203.0.113.7]) by mx.example.org "
	    "(Postfix) with ESMTP id 4QxYz; Sat, 5 Dec 2026 11:00:00 +0100",
	    0, "helo.example", "", "203.0.113.7", "mx.example.org", "ESMTP",
	    "", "", "4QxYz", "", 0, T0 },
	{ "Postfix pickup (local)",
	    "by host.example.org (Postfix, from userid 1000) id 4ABCD; "
	    "Sat,  5 Dec 2026 09:59:58 +0000 (UTC)",
	    0, "", "", "", "host.example.org", "local", "", "", "4ABCD", "", 0,
	    T0 - 2 },
	{ "Postfix IPv6",
	    "from client.example.com (client.example.com "
	    "[IPv6:2001:db8::25]) by mx.example.org (Postfix) with ESMTPSA id "
	    "4Q1; Sat, 5 Dec 2026 10:00:00 +0000",
	    0, "client.example.com", "client.example.com", "2001:db8::25",
	    "mx.example.org", "ESMTPSA", "", "", "4Q1", "", 1, T0 },
	/* Exim 4.94+: "from RDNS ([IP]:PORT helo=HELO)", "(TLS1.3) tls C" */
	{ "Exim ESMTPS",
	    "from mail.example.com ([203.0.113.9]:41234 "
	    "helo=client.example.com) by mx.example.org with esmtps  (TLS1.3) "
	    "tls TLS_AES_256_GCM_SHA384 (Exim 4.96) (envelope-from "
	    "<a@example.com>) id 1kXyZa-0001Ab-Cd for user@example.org; "
	    "Sat, 05 Dec 2026 10:00:00 +0000",
	    0, "client.example.com", "mail.example.com", "203.0.113.9",
	    "mx.example.org", "ESMTPS", "TLS1.3", "TLS_AES_256_GCM_SHA384",
	    "1kXyZa-0001Ab-Cd", "user@example.org", 1, T0 },
	{ "Exim before 4.94: version:cipher:bits",
	    "from localhost ([127.0.0.1]:55748 helo=test) by host.example "
	    "with esmtps (TLSv1.3:TLS_AES_256_GCM_SHA384:256) (Exim 4.92) "
	    "(envelope-from <x@example.com>) id 1i7Jgy-0002dD-Pb for "
	    "y@example.com; Mon, 09 Sep 2019 13:26:52 +0000",
	    0, "test", "localhost", "127.0.0.1", "host.example", "ESMTPS",
	    "TLSv1.3", "TLS_AES_256_GCM_SHA384", "1i7Jgy-0002dD-Pb",
	    "y@example.com", 1, 1568035612 },
	{ "Exim, no verified name",
	    "from [203.0.113.9] (helo=client.example.com) by mx.example.org "
	    "with esmtp (Exim 4.96) id 1kX-0001-AB; Sat, 05 Dec 2026 "
	    "10:00:00 +0000",
	    0, "client.example.com", "", "203.0.113.9", "mx.example.org",
	    "ESMTP", "", "", "1kX-0001-AB", "", 0, T0 },
	{ "Exim, HELO equal to the verified name",
	    "from mail.example.com ([203.0.113.9]) by mx.example.org with "
	    "esmtp (Exim 4.96) id 1kX; Sat, 05 Dec 2026 10:00:00 +0000",
	    0, "mail.example.com", "mail.example.com", "203.0.113.9",
	    "mx.example.org", "ESMTP", "", "", "1kX", "", 0, T0 },
	{ "Exim local submission",
	    "from user by host.example.org with local (Exim 4.96) "
	    "(envelope-from <user@example.org>) id 1kXyZa-0001Ab-Cd; "
	    "Sat, 05 Dec 2026 10:00:00 +0000",
	    0, "user", "", "", "host.example.org", "local", "", "",
	    "1kXyZa-0001Ab-Cd", "", 0, T0 },
	/* Sendmail: "from HELO ($_)", $_ "RDNS [IP]" or "ident@RDNS [IP]" */
	{ "Sendmail ESMTPS",
	    "from client.example.com (client.example.com [203.0.113.5]) by "
	    "mx.example.org (8.17.1/8.17.1) with ESMTPS id 0B5A0xyz012345 "
	    "(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 "
	    "verify=NOT) for <user@example.org>; Sat, 5 Dec 2026 05:00:00 "
	    "-0500",
	    0, "client.example.com", "client.example.com", "203.0.113.5",
	    "mx.example.org", "ESMTPS", "TLSv1.3", "TLS_AES_256_GCM_SHA384",
	    "0B5A0xyz012345", "user@example.org", 1, T0 },
	{ "Sendmail, may be forged, ident",
	    "from helo.example.com (user@rdns.example.net [203.0.113.5] "
	    "(may be forged)) by mx.example.org (8.17.1/8.17.1) with ESMTP "
	    "id 0B5A; Sat, 5 Dec 2026 10:00:00 GMT",
	    0, "helo.example.com", "rdns.example.net", "203.0.113.5",
	    "mx.example.org", "ESMTP", "", "", "0B5A", "", 0, T0 },
	/* OpenSMTPD: TLS as version:cipher:bits:verify after the id */
	{ "OpenSMTPD ESMTPS",
	    "from client.example.com (client.example.com [203.0.113.5]) by "
	    "mx.example.org (OpenSMTPD) with ESMTPS id 1a2b3c4d "
	    "(TLSv1.3:TLS_AES_256_GCM_SHA384:256:NO) for <user@example.org>;"
	    " Sat, 5 Dec 2026 10:00:00 +0000 (UTC)",
	    0, "client.example.com", "client.example.com", "203.0.113.5",
	    "mx.example.org", "ESMTPS", "TLSv1.3", "TLS_AES_256_GCM_SHA384",
	    "1a2b3c4d", "user@example.org", 1, T0 },
	{ "OpenSMTPD local socket",
	    "from localhost (mx.example.org [local]) by mx.example.org "
	    "(OpenSMTPD) with ESMTPA id 4e5f6a7b for <user@example.org>; "
	    "Sat, 5 Dec 2026 10:00:00 +0000 (UTC)",
	    0, "localhost", "", "", "mx.example.org", "ESMTPA", "", "",
	    "4e5f6a7b", "user@example.org", 0, T0 },
	/* Exchange / Office 365: "(IP)" after each host, several words of
	 * with, the server's build as id */
	{ "Exchange Online between servers",
	    "from AM0PR01MB1234.eurprd01.prod.exchangelabs.com "
	    "(2603:10a6:208:1::1) by AM0PR01MB5678.eurprd01.prod.exchangelabs"
	    ".com (2603:10a6:208:2::2) with Microsoft SMTP Server "
	    "(version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) "
	    "id 15.20.7633.25; Sat, 5 Dec 2026 10:00:00 +0000",
	    0, "AM0PR01MB1234.eurprd01.prod.exchangelabs.com", "",
	    "2603:10a6:208:1::1",
	    "AM0PR01MB5678.eurprd01.prod.exchangelabs.com", "ESMTPS",
	    "TLS1_2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	    "15.20.7633.25", "", 1, T0 },
	{ "Exchange MAPI",
	    "from AM0PR01MB1234.eurprd01.prod.exchangelabs.com "
	    "([fe80::1234:5678:9abc:def0]) by AM0PR01MB1234.eurprd01.prod."
	    "exchangelabs.com ([fe80::1234:5678:9abc:def0%4]) with mapi id "
	    "15.20.7633.25; Sat, 5 Dec 2026 10:00:00 +0000",
	    0, "AM0PR01MB1234.eurprd01.prod.exchangelabs.com", "",
	    "fe80::1234:5678:9abc:def0",
	    "AM0PR01MB1234.eurprd01.prod.exchangelabs.com", "local", "", "",
	    "15.20.7633.25", "", 0, T0 },
	/* Gmail: a dot after the reverse name, "(Google Transport
	 * Security)", "by IPV6 with SMTP" inside Google */
	{ "Gmail inbound",
	    "from mail-sor-f41.google.com (mail-sor-f41.google.com. "
	    "[209.85.220.41]) by mx.google.com with SMTPS id "
	    "a1sor123456wrb.12.2026.12.05.02.00.00 for <user@gmail.com> "
	    "(Google Transport Security); Sat, 05 Dec 2026 02:00:00 -0800 "
	    "(PST)",
	    0, "mail-sor-f41.google.com", "mail-sor-f41.google.com",
	    "209.85.220.41", "mx.google.com", "ESMTPS", "", "",
	    "a1sor123456wrb.12.2026.12.05.02.00.00", "user@gmail.com", 1,
	    T0 },
	{ "Gmail internal",
	    "by 2002:a05:6000:1:b0:123:4567:89ab with SMTP id "
	    "x1csp123456wrb; Sat, 5 Dec 2026 02:00:00 -0800 (PST)",
	    0, "", "", "", "2002:a05:6000:1:b0:123:4567:89ab", "SMTP", "", "",
	    "x1csp123456wrb", "", 0, T0 },
	{ "Gmail submission, literal HELO",
	    "from [10.0.0.5] ([203.0.113.77]) by smtp.gmail.com with ESMTPSA "
	    "id q1sm1234567wrb.1.2026.12.05.01.59.59 for <user@example.org> "
	    "(version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256); "
	    "Sat, 05 Dec 2026 01:59:59 -0800 (PST)",
	    0, "[10.0.0.5]", "", "203.0.113.77", "smtp.gmail.com", "ESMTPSA",
	    "TLS1_3", "TLS_AES_256_GCM_SHA384",
	    "q1sm1234567wrb.1.2026.12.05.01.59.59", "user@example.org", 1,
	    T0 - 1 },
	/* qmail (qmail-header(5)): the from word is the reverse name */
	{ "qmail-queue, local",
	    "(qmail 12345 invoked by uid 1000); 5 Dec 2026 10:00:00 -0000",
	    0, "", "", "", "", "local", "", "", "12345", "", 0, T0 },
	{ "qmail-smtpd",
	    "from client.example.com (HELO helo.example.com) (203.0.113.5) "
	    "by mx.example.org with SMTP; 5 Dec 2026 10:00:00 -0000",
	    0, "helo.example.com", "client.example.com", "203.0.113.5",
	    "mx.example.org", "SMTP", "", "", "", "", 0, T0 },
	{ "qmail-smtpd, unknown name, remote info",
	    "from unknown (HELO helo.example.com) (user@203.0.113.5) by "
	    "mx.example.org with SMTP; 5 Dec 2026 10:00:00 -0000",
	    0, "helo.example.com", "", "203.0.113.5", "mx.example.org",
	    "SMTP", "", "", "", "", 0, T0 },
	/* Dovecot LMTP: "from HELO ([IP])" */
	{ "Dovecot LMTP",
	    "from mx.example.org ([203.0.113.20]) by mail.example.org with "
	    "LMTP id 0K1aBcDeFgHiJk (envelope-from <a@example.com>) for "
	    "<user@example.org>; Sat, 05 Dec 2026 10:00:01 +0000",
	    0, "mx.example.org", "", "203.0.113.20", "mail.example.org",
	    "LMTP", "", "", "0K1aBcDeFgHiJk", "user@example.org", 0, T0 + 1 },
	/* tern (smtp_session.c) */
	{ "tern ESMTPS",
	    "from client.example.org (client.example.org [198.51.100.5]) by "
	    "relay.example.org (tern) with ESMTPS (TLSv1.3 "
	    "TLS_AES_256_GCM_SHA384) id 0ABCDEFGHIJKLM for <pea@example.org>;"
	    " Sat, 05 Dec 2026 10:00:00 +0000",
	    0, "client.example.org", "client.example.org", "198.51.100.5",
	    "relay.example.org", "ESMTPS", "TLSv1.3", "TLS_AES_256_GCM_SHA384",
	    "0ABCDEFGHIJKLM", "pea@example.org", 1, T0 },
	/* comments, folding, odd but readable */
	{ "folded with CRLF and tabs",
	    "from a.example\r\n\t(a.example [198.51.100.1])\r\n\tby b.example "
	    "(tern)\r\n\twith ESMTP id X;\r\n\tSat, 05 Dec 2026 10:00:00 +0000",
	    0, "a.example", "a.example", "198.51.100.1", "b.example", "ESMTP",
	    "", "", "X", "", 0, T0 },
	{ "nested comment and quoted for",
	    "from a.example (a.example [198.51.100.1] (note (deep))) by "
	    "b.example with SMTP for <\"x y\"@b.example>; 5 Dec 2026 10:00 Z",
	    0, "a.example", "a.example", "198.51.100.1", "b.example", "SMTP",
	    "", "", "", "\"x y\"@b.example", 0, T0 },
	{ "a ';' inside a comment is not the date's",
	    "from a.example (x; y) by b.example with SMTP; "
	    "5 Dec 2026 10:00 +0000",
	    0, "a.example", "", "", "b.example", "SMTP", "", "", "", "", 0,
	    T0 },
	{ "unreadable date: parsed, no time",
	    "from a.example by b.example with SMTP; yesterday", 0, "a.example",
	    "", "", "b.example", "SMTP", "", "", "", "", 0, 0 },
	{ "no date at all",
	    "from a.example by b.example with ESMTP id Q", 0, "a.example", "",
	    "", "b.example", "ESMTP", "", "", "Q", "", 0, 0 },
	{ "unknown protocol word",
	    "from a.example by b.example with UUCP; 5 Dec 2026 10:00 +0000", 0,
	    "a.example", "", "", "b.example", "unknown", "", "", "", "", 0,
	    T0 },
	/* garbage */
	{ .what = "empty", .value = "", .rc = -1 },
	{ .what = "only a date",
	    .value = "; Sat, 05 Dec 2026 10:00:00 +0000", .rc = -1 },
	{ .what = "words before any clause",
	    .value = "hello world by b.example; 5 Dec 2026 10:00 +0000",
	    .rc = -1 },
	{ .what = "keyword without a value",
	    .value = "from a.example by", .rc = -1 },
	{ .what = "comment does not end",
	    .value = "from a.example (oops by b.example", .rc = -1 },
	{ .what = "a stray ')'",
	    .value = "from a.example ) by b.example", .rc = -1 },
	{ .what = "quote does not end",
	    .value = "from a.example by b.example for \"x@y", .rc = -1 },
	{ .what = "comments too deep",
	    .value = "from a ((((((((((x))))))))))"
	    " by b; 5 Dec 2026 10:00 +0000", .rc = -1 },
	{ .what = "not a qmail comment",
	    .value = "(just a comment); 5 Dec 2026 10:00 +0000", .rc = -1 },
};

static void
check_str(const char *what, const char *field, const char *want,
    const char *got)
{
	if (strcmp(want, got) != 0)
		fail_msg("%s: %s is \"%s\", want \"%s\"", what, field, got, want);
}

static void
test_formats(void **state)
{
	struct received r;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];

		rc = received_parse(c->value, strlen(c->value), &r);
		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->what, rc, c->rc,
			    r.error ? r.error : "");
		if (rc == -1) {
			assert_int_equal(r.parsed, 0);
			assert_non_null(r.error);
			continue;
		}
		assert_int_equal(r.parsed, 1);
		check_str(c->what, "helo", c->helo, r.helo);
		check_str(c->what, "rdns", c->rdns, r.rdns);
		check_str(c->what, "ip", c->ip, r.ip);
		check_str(c->what, "by", c->by, r.by);
		check_str(c->what, "proto", c->proto,
		    received_proto_name(r.proto));
		check_str(c->what, "tls_version", c->version, r.tls_version);
		check_str(c->what, "tls_cipher", c->cipher, r.tls_cipher);
		check_str(c->what, "id", c->id, r.id);
		check_str(c->what, "for", c->rcpt, r.rcpt);
		if (r.tls != c->tls)
			fail_msg("%s: tls %d, want %d", c->what, r.tls, c->tls);
		if (r.has_date != (c->time != 0) ||
		    (c->time != 0 && r.time != c->time))
			fail_msg("%s: time %lld (has %d), want %lld", c->what,
			    (long long)r.time, r.has_date,
			    (long long)c->time);
	}
}

static void
test_parts(void **state)
{
	struct received r;
	const char *v;

	(void)state;
	v = "from a.example (a.example [198.51.100.1]) by mx.example.org "
	    "(Postfix) with ESMTP id Q; 5 Dec 2026 10:00 +0000";
	assert_int_equal(received_parse(v, strlen(v), &r), 0);
	assert_string_equal(r.software, "Postfix");
	v = "from AM0.example (2603:10a6:208:1::1) by AM1.example "
	    "(2603:10a6:208:2::2) with Microsoft SMTP Server id 15.20; "
	    "5 Dec 2026 10:00 +0000";
	assert_int_equal(received_parse(v, strlen(v), &r), 0);
	assert_string_equal(r.by_ip, "2603:10a6:208:2::2");
	assert_string_equal(r.with, "Microsoft SMTP Server");
	assert_string_equal(r.software, "");
	v = "from x (rdns.example [198.51.100.1] (may be forged)) by y with "
	    "ESMTP; 5 Dec 2026 10:00 +0000";
	assert_int_equal(received_parse(v, strlen(v), &r), 0);
	assert_int_equal(r.forged, 1);
}

static void
test_bounds(void **state)
{
	struct received r;
	char *big = xmalloc(RECEIVED_MAX + 2), name[600];
	const char nul[] = "from a\0b by c; 5 Dec 2026 10:00 +0000";
	const char *v;
	size_t i;

	(void)state;
	/* longer than tern reads: refused, not cut */
	memset(big, 'a', RECEIVED_MAX + 1);
	memcpy(big, "from x by y ", 12);
	big[RECEIVED_MAX + 1] = '\0';
	assert_int_equal(received_parse(big, RECEIVED_MAX + 1, &r), -1);
	/* a part longer than RECEIVED_PART_MAX is cut, never overflows */
	memset(name, 'h', sizeof(name));
	memcpy(name, "from ", 5);
	snprintf(name + 500, sizeof(name) - 500, " by b; 5 Dec 2026 10:00 Z");
	assert_int_equal(received_parse(name, strlen(name), &r), 0);
	assert_int_equal(strlen(r.helo), RECEIVED_PART_MAX);
	/* too many parts */
	big[0] = '\0';
	for (i = 0; i < 200; i++)
		strcat(big, "(c) ");
	assert_int_equal(received_parse(big, strlen(big), &r), -1);
	/* NUL inside */
	assert_int_equal(received_parse(nul, sizeof(nul) - 1, &r), -1);
	/* control characters are never kept */
	v = "from a\033[31m by b";
	assert_int_equal(received_parse(v, strlen(v), &r), 0);
	assert_null(strchr(r.helo, '\033'));
	free(big);
}

struct dcase {
	const char *what;
	const char *date;
	int rc;
	int64_t t;
	int zone, known;
};

static const struct dcase dcases[] = {
	{ "full", "Sat, 05 Dec 2026 10:00:00 +0000", 0, T0, 0, 1 },
	{ "no day of week", "5 Dec 2026 10:00:00 +0000", 0, T0, 0, 1 },
	{ "day name without comma", "Sat 5 Dec 2026 10:00:00 +0000", 0, T0,
	    0, 1 },
	{ "no seconds", "5 Dec 2026 10:00 +0000", 0, T0, 0, 1 },
	{ "east", "5 Dec 2026 15:30:00 +0530", 0, T0, 330, 1 },
	{ "west", "4 Dec 2026 22:30:00 -1130", 0, T0, -690, 1 },
	{ "-0000: UTC, zone unknown", "5 Dec 2026 10:00:00 -0000", 0, T0, 0,
	    0 },
	{ "UT", "5 Dec 2026 10:00:00 UT", 0, T0, 0, 1 },
	{ "GMT", "5 Dec 2026 10:00:00 GMT", 0, T0, 0, 1 },
	{ "EST", "5 Dec 2026 05:00:00 EST", 0, T0, -300, 1 },
	{ "EDT", "5 Dec 2026 06:00:00 EDT", 0, T0, -240, 1 },
	{ "CST", "5 Dec 2026 04:00:00 CST", 0, T0, -360, 1 },
	{ "CDT", "5 Dec 2026 05:00:00 CDT", 0, T0, -300, 1 },
	{ "MST", "5 Dec 2026 03:00:00 MST", 0, T0, -420, 1 },
	{ "MDT", "5 Dec 2026 04:00:00 MDT", 0, T0, -360, 1 },
	{ "PST", "5 Dec 2026 02:00:00 PST", 0, T0, -480, 1 },
	{ "PDT", "5 Dec 2026 03:00:00 PDT", 0, T0, -420, 1 },
	{ "lower-case zone", "5 Dec 2026 02:00:00 pst", 0, T0, -480, 1 },
	{ "military Z", "5 Dec 2026 10:00:00 Z", 0, T0, 0, 1 },
	{ "military A: read as -0000", "5 Dec 2026 10:00:00 A", 0, T0, 0, 0 },
	{ .what = "military J does not exist",
	    .date = "5 Dec 2026 10:00:00 J", .rc = -1 },
	{ "two-digit year below 50", "Sat, 5 Dec 26 10:00:00 +0000", 0, T0,
	    0, 1 },
	{ "three-digit year", "5 Dec 126 10:00:00 +0000", 0, T0, 0, 1 },
	{ "comments everywhere", "Sat (x), 5 (y) Dec 2026 10:00:00 (z) "
	    "+0000 (UTC)", 0, T0, 0, 1 },
	{ "folded", "Sat, 5 Dec\r\n 2026 10:00:00\r\n\t+0000", 0, T0, 0, 1 },
	{ "leap day", "29 Feb 2024 00:00:00 +0000", 0, 1709164800LL, 0, 1 },
	{ "leap second", "5 Dec 2026 09:59:60 +0000", 0, T0, 0, 1 },
	{ .what = "no leap day",
	    .date = "29 Feb 2026 00:00:00 +0000", .rc = -1 },
	{ .what = "day 32", .date = "32 Dec 2026 10:00:00 +0000", .rc = -1 },
	{ .what = "day 0", .date = "0 Dec 2026 10:00:00 +0000", .rc = -1 },
	{ .what = "31 November",
	    .date = "31 Nov 2026 10:00:00 +0000", .rc = -1 },
	{ .what = "month unknown",
	    .date = "5 Foo 2026 10:00:00 +0000", .rc = -1 },
	{ .what = "hour 24", .date = "5 Dec 2026 24:00:00 +0000", .rc = -1 },
	{ .what = "minute 60", .date = "5 Dec 2026 10:60:00 +0000", .rc = -1 },
	{ .what = "zone minutes 60",
	    .date = "5 Dec 2026 10:00:00 +0060", .rc = -1 },
	{ .what = "zone of three digits",
	    .date = "5 Dec 2026 10:00:00 +000", .rc = -1 },
	{ .what = "zone of five digits",
	    .date = "5 Dec 2026 10:00:00 +00000", .rc = -1 },
	{ .what = "no zone", .date = "5 Dec 2026 10:00:00", .rc = -1 },
	{ .what = "unknown zone name",
	    .date = "5 Dec 2026 10:00:00 CET", .rc = -1 },
	{ .what = "text after the zone",
	    .date = "5 Dec 2026 10:00:00 +0000 UTC", .rc = -1 },
	{ .what = "year too long",
	    .date = "5 Dec 20266 10:00:00 +0000", .rc = -1 },
	{ .what = "year before 1900",
	    .date = "5 Dec 1899 10:00:00 +0000", .rc = -1 },
	{ .what = "comment does not end",
	    .date = "5 Dec 2026 10:00:00 +0000 (UTC", .rc = -1 },
	{ .what = "empty", .date = "", .rc = -1 },
	{ .what = "garbage", .date = "yesterday at noon", .rc = -1 },
};

static void
test_dates(void **state)
{
	size_t i;
	int64_t t;
	int zone, known, rc;

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *c = &dcases[i];

		t = 0;
		zone = known = -7;
		rc = received_date(c->date, strlen(c->date), &t, &zone,
		    &known);
		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d", c->what, rc, c->rc);
		if (rc == -1)
			continue;
		if (t != c->t || zone != c->zone || known != c->known)
			fail_msg("%s: %lld %d %d, want %lld %d %d", c->what,
			    (long long)t, zone, known, (long long)c->t,
			    c->zone, c->known);
	}
}

/* ---- trace_path: hops, owners, checks -------------------------------- */

static void
add(struct trace *t, const char *name, const char *value)
{
	trace_add_field(t, name, value, value);
}

static int
has_check(const struct trace *t, const char *word, size_t hop)
{
	size_t i;

	for (i = 0; i < t->nchecks; i++)
		if (strcmp(t->checks[i].word, word) == 0 &&
		    t->checks[i].hop == hop)
			return 1;
	return 0;
}

static void
test_path(void **state)
{
	struct trace t;

	(void)state;
	trace_init(&t, TRACE_SLOW_DEFAULT);
	add(&t, "Return-Path", "<list-bounces@lists.example>");
	add(&t, "Delivered-To", "pea@dma.example");
	add(&t, "Received", "from mx.dma.example (mx.dma.example "
	    "[198.51.100.20]) by mailbox.dma.example (tern) with ESMTPS "
	    "(TLSv1.3 TLS_AES_128_GCM_SHA256) id C; 5 Dec 2026 10:00:00 +0000");
	add(&t, "X-Scanned", "yes");
	add(&t, "Received", "from relay.example (relay.example "
	    "[198.51.100.10]) by mx.dma.example (tern) with ESMTP id B; "
	    "5 Dec 2026 10:00:05 +0000");
	add(&t, "Received", "from client.example (client.example "
	    "[198.51.100.5]) by relay.example (tern) with ESMTP id A; "
	    "5 Dec 2026 09:50:00 +0000");
	add(&t, "From", "Paul <paulv@example.org>");
	add(&t, "Subject", "hi");
	trace_analyse(&t, "paulv@example.org");

	assert_int_equal(t.nhops, 3);
	assert_string_equal(t.hops[0].r.id, "A");
	assert_string_equal(t.hops[2].r.id, "C");
	/* owners by position */
	assert_int_equal(t.fields[0].owner, TRACE_DELIVERY);
	assert_int_equal(t.fields[1].owner, TRACE_DELIVERY);
	assert_int_equal(t.fields[2].owner, TRACE_HOP);
	assert_int_equal(t.fields[2].hop, 3);
	assert_int_equal(t.fields[3].owner, TRACE_HOP); /* X-Scanned */
	assert_int_equal(t.fields[3].hop, 2);
	assert_int_equal(t.fields[4].hop, 2);
	assert_int_equal(t.fields[5].hop, 1);
	assert_int_equal(t.fields[6].owner, TRACE_ORIGIN);
	assert_int_equal(t.fields[7].owner, TRACE_ORIGIN);
	/* delays, skew, slow */
	assert_int_equal(t.hops[0].has_delay, 0);
	assert_int_equal(t.hops[1].delay, 605);
	assert_int_equal(t.hops[2].delay, -5);
	assert_true(has_check(&t, "slow", 2));
	assert_true(has_check(&t, "skew", 3));
	assert_true(has_check(&t, "no-tls", 1));
	assert_true(has_check(&t, "no-tls", 2));
	assert_false(has_check(&t, "no-tls", 3));
	assert_false(has_check(&t, "broken-chain", 2));
	assert_false(has_check(&t, "broken-chain", 3));
	assert_true(has_check(&t, "envelope-differs", 0));
	assert_string_equal(t.delivered_to, "pea@dma.example");
	trace_free(&t);
}

static void
test_path_breaks(void **state)
{
	struct trace t;

	(void)state;
	trace_init(&t, 60);
	add(&t, "Return-Path", "<PaulV@Example.org>");
	add(&t, "Received", "from elsewhere.example (elsewhere.example "
	    "[198.51.100.99]) by mx.example with ESMTPS id B; "
	    "5 Dec 2026 10:00:30 +0000");
	add(&t, "Received", "this is not a Received: line");
	add(&t, "Received", "from a.example (a.example [127.0.0.1]) by "
	    "relay.example with ESMTP id A; 5 Dec 2026 10:00:00 +0000");
	add(&t, "From", "paulv@example.org");
	trace_analyse(&t, "paulv@example.org");
	assert_int_equal(t.nhops, 3);
	assert_true(has_check(&t, "unparsed", 2));
	assert_int_equal(t.hops[1].r.parsed, 0);
	/* hop 3 is not compared with an unreadable hop */
	assert_false(has_check(&t, "broken-chain", 3));
	assert_false(has_check(&t, "no-tls", 1)); /* loopback */
	assert_false(has_check(&t, "envelope-differs", 0)); /* case */
	trace_free(&t);

	trace_init(&t, 60);
	add(&t, "Received", "from evil.example (evil.example "
	    "[198.51.100.66]) by mx.example with ESMTPS id B; "
	    "5 Dec 2026 10:02:00 +0000");
	add(&t, "Received", "from a.example (a.example [198.51.100.1]) by "
	    "relay.example with ESMTPS id A; 5 Dec 2026 10:00:00 +0000");
	trace_analyse(&t, NULL);
	assert_true(has_check(&t, "broken-chain", 2));
	assert_true(has_check(&t, "slow", 2)); /* --slow 60 */
	assert_false(has_check(&t, "no-date", 1));
	trace_free(&t);

	/* no Received: at all: the delivery's fields are still named */
	trace_init(&t, 60);
	add(&t, "Return-Path", "<a@b.example>");
	add(&t, "Subject", "x");
	trace_analyse(&t, NULL);
	assert_int_equal(t.nhops, 0);
	assert_int_equal(t.fields[0].owner, TRACE_DELIVERY);
	assert_int_equal(t.fields[1].owner, TRACE_ORIGIN);
	trace_free(&t);
}

static void
test_formatting(void **state)
{
	struct {
		int64_t s;
		const char *want;
	} d[] = { { 0, "0s" }, { 59, "59s" }, { 60, "1m 00s" },
		{ 243, "4m 03s" }, { 7260, "2h 01m" }, { 97200, "1d 03h" },
		{ -12, "-12s" }, { INT64_MIN, "-106751991167300d 15h" } };
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		trace_fmt_delay(d[i].s, out, sizeof(out));
		assert_string_equal(out, d[i].want);
	}
	trace_fmt_time(T0, 60, out, sizeof(out));
	assert_string_equal(out, "2026-12-05 11:00:00 +0100");
	trace_fmt_iso(T0, -330, out, sizeof(out));
	assert_string_equal(out, "2026-12-05T04:30:00-05:30");
	trace_addr_bare("Paul <paulv@example.org>", out, sizeof(out));
	assert_string_equal(out, "paulv@example.org");
	trace_addr_bare("<>", out, sizeof(out));
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_path_breaks),
		cmocka_unit_test(test_formatting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

"""Scaling out with DNS, as everywhere in mail (DESIGN.md, "Scaling past
one machine"): a domain with two MX hosts of equal preference gets its
mail spread over both, across new connections.

twomx.example has MX 10 mx1.twomx.example and MX 10 mx2.twomx.example,
two tern hosts that are both final destinations.  The relay (tern) gets
50 messages from the client host, in 10 batches of 5.

How new connections are ensured: a relay reuses an open connection for
the next message to the same destination (issue 3), so 50 messages sent
at once could all travel over one or two connections to one host.  The
MX hosts therefore close idle connections after 1 s (`timeouts
command=1s`), and before each batch the test waits until the relay holds
no connection to port 25 any more: each batch starts at least one new
connection, and the relay picks its MX for it anew (equal preferences
shuffled, RFC 5321 5.1).  Both hosts must receive some of the mail; with
a fair choice per connection all 10+ connections go to one host with a
probability of at most 2^-9.
"""

import re

from e2e_harness import NsTern
from tern_harness import (maildir_messages, wait_for, wait_queue_empty)

BATCHES = 10
PER_BATCH = 5
RESOLVER = "198.51.100.53"
FAST_RETRY = "first=1s max=2s"


def test_equal_preference_mx_hosts_share_the_mail(net, dns, rundir):
    client = net.add_host("client", 5, "client.canonical.org")
    relay = net.add_host("relay", 10, "relay.canonical.org")
    mx1 = net.add_host("mx1", 31, "mx1.twomx.example")
    mx2 = net.add_host("mx2", 32, "mx2.twomx.example")
    for h in (dns.host, client, relay, mx1, mx2):
        dns.add_host(h)
    dns.mx("twomx.example", mx1.hostname, 10)
    dns.mx("twomx.example", mx2.hostname, 10)
    dns.start()
    assert sorted(dns.query("twomx.example", "MX", client)) == [
        "10 mx1.twomx.example.", "10 mx2.twomx.example."]

    relay_t = NsTern(relay, rundir, local_domains="canonical.org",
                     trusted_networks="198.51.100.0/24", resolver=RESOLVER,
                     retry=FAST_RETRY).start()
    mx_ts = [NsTern(h, rundir, local_domains="twomx.example",
                    resolver=RESOLVER, retry=FAST_RETRY,
                    timeouts="command=1s").start() for h in (mx1, mx2)]

    def delivered():
        return [m for t in mx_ts for m in maildir_messages(t.home, "user")]

    def relay_idle():
        return not relay.tcp_established(25)

    sent = []
    for batch in range(BATCHES):
        wait_for(relay_idle, 15, what=lambda: "the relay to close its "
                 f"connections to port 25 before batch {batch + 1}: "
                 f"{relay.tcp_established(25)}\n{relay_t.log_tail()}")
        with client.smtp(relay.addr4) as c:
            c.hello(client.hostname)
            for i in range(PER_BATCH):
                n = batch * PER_BATCH + i
                mid = f"<spread.{n}@canonical.org>"
                c.send_mail("paulv@canonical.org", ["user@twomx.example"],
                            (f"Subject: spread {n}\r\nMessage-ID: {mid}\r\n"
                             "\r\nOne of fifty.\r\n").encode())
                sent.append(mid)
            c.quit()
        wait_for(lambda: len(delivered()) >= len(sent), 30,
                 what=lambda: f"batch {batch + 1} delivered "
                 f"({len(delivered())}/{len(sent)})\n{relay_t.log_tail()}")
    wait_queue_empty(relay_t.home)

    got = sorted(m.msg["Message-ID"] for m in delivered())
    assert got == sorted(sent), "every message exactly once"
    counts = [len(maildir_messages(t.home, "user")) for t in mx_ts]
    conns = [connections_from(t, relay) for t in mx_ts]
    assert sum(conns) >= BATCHES, (
        f"each batch should open a new connection: {conns}")
    assert all(counts), (
        f"both MX hosts should receive mail: messages {counts}, "
        f"connections {conns}")


def connections_from(t, host):
    """How many SMTP connections tern t logged from host's addresses."""
    pat = re.compile(r"connect from \[?(%s|%s)\]?\b" % (
        re.escape(host.addr4), re.escape(host.addr6)))
    return sum(1 for line in t.log_text().splitlines() if pat.search(line))

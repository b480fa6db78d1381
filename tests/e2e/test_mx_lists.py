"""MX list handling that only a real network shows (RFC 5321 5.1, issue 3
"DNS"): a backup MX that finds itself in the MX list forwards to the
better host instead of delivering or looping; a domain whose best MX is
this very host (and neither local nor routed) is a loop, bounced with
5.4.6; a target whose IPv6 address refuses is reached over IPv4.

dma.org has MX 10 mx.dma.org (final: local-domains dma.org) and MX 20
backup.dma.org (relay-domains dma.org, no route: it looks the MX up and
must drop itself and every less preferred host).  loop.example has MX 10
relay.canonical.org, which knows nothing of it.  "This host" is told by
the host name and by the addresses of the namespace's interfaces.
"""

from types import SimpleNamespace

import pytest

from e2e_harness import NsTern, delivery_status, log_lines
from tern_harness import (maildir_messages, queue_files, wait_for,
                          wait_for_mail, wait_queue_empty)

RESOLVER = "198.51.100.53"
FAST_RETRY = "first=1s max=2s"
TIMEOUT = 30.0


@pytest.fixture
def world(net, dns, rundir):
    """client, relay (canonical.org), mx and backup of dma.org, DNS; the
    terns are made but not started (tests start what they need)."""
    w = SimpleNamespace(net=net, dns=dns, rundir=rundir)
    w.client = net.add_host("client", 5, "client.canonical.org")
    w.relay = net.add_host("relay", 10, "relay.canonical.org")
    w.mx = net.add_host("mx", 20, "mx.dma.org")
    w.backup = net.add_host("backup", 22, "backup.dma.org")
    for h in (dns.host, w.client, w.relay, w.mx, w.backup):
        dns.add_host(h)
    dns.mx("canonical.org", "relay.canonical.org", 10)
    dns.mx("dma.org", "mx.dma.org", 10)
    dns.mx("dma.org", "backup.dma.org", 20)
    dns.mx("loop.example", "relay.canonical.org", 10)
    dns.start()
    common = {"resolver": RESOLVER, "retry": FAST_RETRY}
    w.relay_t = NsTern(w.relay, rundir, local_domains="canonical.org",
                       trusted_networks="198.51.100.0/24", **common)
    w.backup_t = NsTern(w.backup, rundir, local_domains="backup.dma.org",
                        relay_domains="dma.org", **common)
    w.common = common
    return w


def send(w, rcpt, subject):
    with w.client.smtp(w.relay.addr4) as c:
        c.hello(w.client.hostname)
        c.send_mail("paulv@canonical.org", [rcpt],
                    (f"Subject: {subject}\r\n\r\nHi.\r\n").encode())
        c.quit()


def test_backup_mx_forwards_to_the_primary(world):
    """The primary is down: the relay falls back to the backup MX, which
    keeps the message (it must not deliver, bounce or send it back to
    itself) until the primary is up, then forwards it there."""
    w = world
    w.relay_t.start()
    w.backup_t.start()
    mx_t = NsTern(w.mx, w.rundir, local_domains="dma.org", **w.common)
    send(w, "pea@dma.org", "via backup")
    wait_queue_empty(w.relay_t.home)
    # deferred for mx.dma.org, the better MX (not itself, not the relay)
    wait_for(lambda: log_lines(w.backup_t, "to=<pea@dma.org>",
                               "status=deferred", "mx.dma.org["),
             TIMEOUT, what=lambda: "the backup MX to defer to mx.dma.org\n"
             f"{w.backup_t.log_tail()}")
    assert queue_files(w.backup_t.home)
    assert not log_lines(w.backup_t, "to=<pea@dma.org>",
                         "relay=backup.dma.org")
    assert maildir_messages(w.relay_t.home, "paulv") == []

    mx_t.start()
    msgs = wait_for_mail(mx_t.home, "pea", timeout=TIMEOUT)
    wait_queue_empty(w.backup_t.home)
    assert [h["by"] for h in msgs[0].received()] == [
        "mx.dma.org", "backup.dma.org", "relay.canonical.org"]


def test_best_mx_is_this_host_is_a_loop(world):
    """loop.example's only MX is the relay itself, which neither receives
    for loop.example nor routes it: a loop, bounced at once with 5.4.6."""
    w = world
    w.relay_t.start()
    send(w, "someone@loop.example", "loop")
    dsns = wait_for_mail(w.relay_t.home, "paulv", timeout=TIMEOUT)
    wait_queue_empty(w.relay_t.home)
    _, rcpts = delivery_status(dsns[0].msg)
    assert [(r["final-recipient"], r["action"], r["status"])
            for r in rcpts] == [
        ("rfc822; someone@loop.example", "failed", "5.4.6")], rcpts


def test_ipv6_refused_then_ipv4(world):
    """mx.dma.org listens on IPv4 only: the relay's connection to its IPv6
    address (tried first) is refused, and the same host's IPv4 address
    takes the message."""
    w = world
    w.relay_t.start()
    mx_t = NsTern(w.mx, w.rundir, ipv6=False, local_domains="dma.org",
                  **w.common).start()
    send(w, "pea@dma.org", "ipv4 only")
    msgs = wait_for_mail(mx_t.home, "pea", timeout=TIMEOUT)
    wait_queue_empty(w.relay_t.home)
    top = msgs[0].received()[0]
    assert top["by"] == "mx.dma.org" and top["ip"] == w.relay.addr4, top
    assert log_lines(w.relay_t, "to=<pea@dma.org>",
                     f"relay=mx.dma.org[{w.mx.addr4}]:25", "status=sent")

"""DNS blocklists and allowlists (dnsbl, dnswl, limits dnsbl-threshold=;
RFC 5782), answered by the test's own dnsmasq (dns_peer.py) through
tern's `resolver`.

Loopback addresses are distinct clients: 127.0.0.2 is on the blocklist
bl.test, 127.0.0.3 on the allowlist wl.test (and on bl.test too: the
allowlist wins), 127.0.0.4 on two lists of weight 1 each, 127.0.0.5 on
one of them only, 127.0.0.6 gets an error code (127.255.255.254) from
bl.test, 127.0.0.7 an answer match= leaves out; 127.0.0.8 is on no list.
A list that never answers (a UDP socket the test holds) must not hold
the session past its greet pause.
"""

import time

import pytest

from dns_peer import DnsServer, SilentServer, dnsmasq_missing
from tern_harness import (CLIENT, SENDER, SMTPClient,
                          ipv6_loopback_available, message)

pytestmark = pytest.mark.skipif(dnsmasq_missing() is not None,
                                reason=dnsmasq_missing() or "")

LISTED, ALLOWED, TWICE, ONCE, ERRCODE, FILTERED, CLEAN = (
    "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6",
    "127.0.0.7", "127.0.0.8")


@pytest.fixture
def dns(rundir):
    d = DnsServer(rundir)
    d.listed(LISTED, "bl.test")
    d.listed(ALLOWED, "bl.test")
    d.listed(ALLOWED, "wl.test", "127.0.10.2")
    d.listed(TWICE, "one.test")
    d.listed(TWICE, "two.test")
    d.listed(ONCE, "one.test")
    d.listed(ERRCODE, "bl.test", "127.255.255.254")
    d.listed(FILTERED, "bl.test", "127.0.0.10")
    d.listed("::1", "bl.test")
    silent = SilentServer()
    d.silent_zone("silent.test", silent)
    d.start()
    yield d
    d.stop()
    silent.close()


def start(tern_factory, dns, pause="1s", lists=(), **keys):
    lines = list(lists) or ["dnsbl bl.test match=127.0.0.2",
                            "dnswl wl.test"]
    return tern_factory(listen_opts=f"greet-pause={pause}",
                        resolver=f"127.0.0.1:{dns.port}",
                        extra=lines, **keys)


def greeting_from(t, source, timeout=20.0):
    """Connect from source; (the first reply, seconds it took, client)."""
    c = SMTPClient("127.0.0.1", t.port, timeout=timeout, source=source)
    t0 = time.monotonic()
    r = c.reply(enhanced=False)
    return r, time.monotonic() - t0, c


def assert_served(c):
    """After the greeting the session goes on: a whole message is
    accepted."""
    c.cmd(f"EHLO {CLIENT}").expect(250)
    c.send_mail(SENDER, ["user@test.example"], message())
    c.quit()


def test_listed_client_refused_naming_the_list(tern_factory, dns):
    t = start(tern_factory, dns)
    r, _, c = greeting_from(t, LISTED)
    r.expect(554, "5.7.1")
    assert "bl.test" in r.text and f"[{LISTED}]" in r.text, r
    c.assert_closed()
    assert f"{LISTED}: blocked using bl.test" in t.log_text()
    # the server goes on: an unlisted client is greeted and served
    r, _, c = greeting_from(t, CLEAN)
    r.expect(220)
    assert_served(c)


def test_allowlisted_client_skips_the_pause(tern_factory, dns):
    t = start(tern_factory, dns, pause="6s")
    r, took, c = greeting_from(t, ALLOWED)
    r.expect(220)
    # on bl.test too, and greeted long before the 6 s pause ends
    assert took < 4.5, f"greeting after {took:.1f}s"
    assert_served(c)
    assert f"{ALLOWED}: allowed by wl.test" in t.log_text()
    # an unlisted client still waits the whole pause
    r, took, c = greeting_from(t, CLEAN)
    r.expect(220)
    assert took >= 5.5, f"greeting after {took:.1f}s"
    c.quit()


def test_weights_threshold_error_codes_and_match(tern_factory, dns):
    t = start(tern_factory, dns, lists=[
        "dnsbl one.test weight=1", "dnsbl two.test weight=1",
        "dnsbl bl.test weight=2 match=127.0.0.2"],
        limits="dnsbl-threshold=2")
    r, _, c = greeting_from(t, TWICE)
    r.expect(554, "5.7.1")
    assert "one.test, two.test" in r.text, r
    c.assert_closed()
    r, _, c = greeting_from(t, LISTED)
    r.expect(554, "5.7.1")
    assert "bl.test" in r.text, r
    # one list of weight 1 is below the threshold of 2
    for source in (ONCE, ERRCODE, FILTERED):
        r, _, c = greeting_from(t, source)
        r.expect(220)
        assert_served(c)
    log = t.log_text()
    assert "blocked using one.test, two.test (weight 2, threshold 2)" in log
    assert "127.255.255.254, which lists nobody" in log


def test_silent_list_does_not_hold_the_session(tern_factory, dns):
    t = start(tern_factory, dns, lists=[
        "dnsbl silent.test", "dnsbl bl.test match=127.0.0.2"])
    r, took, c = greeting_from(t, CLEAN)
    r.expect(220)
    # the greet pause (1 s) and the wait for the lists (3 s at most)
    assert took < 10, f"greeting after {took:.1f}s"
    assert_served(c)
    # a list that answered still counts
    r, took, c = greeting_from(t, LISTED)
    r.expect(554, "5.7.1")
    assert "bl.test" in r.text and "silent.test" not in r.text, r


def test_no_greet_pause_still_refuses_listed(tern_factory, dns):
    t = start(tern_factory, dns, pause="0s")
    r, took, c = greeting_from(t, LISTED)
    r.expect(554, "5.7.1")
    r, took, c = greeting_from(t, CLEAN)
    r.expect(220)
    assert took < 10, f"greeting after {took:.1f}s"
    assert_served(c)


def test_trusted_network_is_never_checked(tern_factory, dns):
    t = start(tern_factory, dns, trusted_networks=f"{LISTED}/32")
    r, _, c = greeting_from(t, LISTED)
    r.expect(220)
    assert_served(c)
    assert "blocked using" not in t.log_text()


def test_talking_first_is_still_dropped(tern_factory, dns):
    t = start(tern_factory, dns, pause="3s")
    c = SMTPClient("127.0.0.1", t.port, source=CLEAN)
    c.send("EHLO early.example\r\n")
    c.reply().expect(554, "5.5.1")
    c.assert_closed()


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no ::1")
def test_ipv6_client_asked_by_nibbles(tern_factory, dns):
    t = start(tern_factory, dns, ipv6=True)
    c = t.connect("::1")
    r = c.reply(enhanced=False)
    r.expect(554, "5.7.1")
    assert "[::1]" in r.text and "bl.test" in r.text, r

"""Per-client limits and the remembered greet pause (tern.conf(5) limits
client-*=, listen greet-pass= and improper-pipelining=).  Loopback
addresses 127.0.0.2, 127.0.0.3 ... are distinct clients as far as tern
can tell: one of them over its limit is refused while the others are
served.  Timing is asserted as generous bounds only."""

import os
import resource
import signal
import socket
import time

import pytest

import tls_fixtures
from tern_harness import (ASAN, SENDER, ConnectionClosed, SMTPClient,
                          ipv6_loopback_available, mail_users, message,
                          proc_status, queue_id, wait_for, wait_for_mail,
                          wait_queue_empty)
from test_tls_auth import login, start_tern, tls_session

# the certificates and users of the TLS tests, a fixture
tls_files = tls_fixtures.tls_files

# the greet pause of these tests, and how soon a client with a pass (or a
# trusted one) is greeted: at once, but the greeting may wait up to 3 s
# for the client's name in DNS
PAUSE = 5.0
AT_ONCE = 3.6


def client(tern, source, timeout=15.0):
    """A raw SMTP connection to tern from the loopback address source."""
    return SMTPClient("127.0.0.1", tern.port, timeout, source=source)


def greeting_after(c):
    """Read the 220 and return how long it took from now."""
    t0 = time.monotonic()
    c.reply(timeout=PAUSE + 10, enhanced=False).expect(220)
    return time.monotonic() - t0


def deliver_one(c, rcpt="alice@test.example"):
    c.cmd("EHLO client.example").expect(250)
    qid = c.send_mail(SENDER, [rcpt], message())
    c.quit()
    return qid


def served(tern, source):
    """A whole session from source: greeting, one message, QUIT."""
    with client(tern, source) as c:
        c.greeting()
        deliver_one(c)


def paused(tern_factory, opts="", **kw):
    return tern_factory(listen_opts=f"greet-pause={PAUSE:g}s {opts}".strip(),
                        **kw)


def assert_refused_421(c, what):
    replies = c.replies_until_close(timeout=10)
    assert [(r.code, r.enhanced) for r in replies] == [(421, "4.7.0")], \
        (what, replies)


# ---------------------------------------------------------------- greet pass

def test_a_pass_lets_the_next_connection_in_at_once_and_survives_restart(
        tern_factory):
    tern = paused(tern_factory)
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) >= PAUSE - 0.5
        deliver_one(c)
    assert "127.0.0.2: passed the greet pause" in tern.log_text()
    # the same client again: no pause
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) < AT_ONCE
        deliver_one(c)
    # another client has no pass
    with client(tern, "127.0.0.3") as c:
        assert greeting_after(c) >= PAUSE - 0.5
        c.quit()
    # the memory is a file that a restart reads again
    tern.restart()
    passes = (tern.home / "state" / "smtpd" / "greet-pass").read_text()
    assert "pass 127.0.0.2/32 " in passes and "pass 127.0.0.3/32 " in passes
    assert passes.startswith("version 1\n") and passes.endswith("end 2\n")
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) < AT_ONCE
        c.quit()
    wait_for_mail(tern.home, "alice", 2)


def test_passes_are_written_at_once_then_at_most_every_minute(
        tern_factory):
    tern = paused(tern_factory)
    passes = tern.home / "state" / "smtpd" / "greet-pass"
    with client(tern, "127.0.0.2") as c:
        c.greeting()
        c.quit()
    # the first pass is written at once
    wait_for(lambda: passes.exists() and "127.0.0.2/32" in
             passes.read_text(), 10, what="the first pass in the file")
    with client(tern, "127.0.0.3") as c:
        c.greeting()
        c.quit()
    time.sleep(1.0)
    assert "127.0.0.3/32" not in passes.read_text(), "written at once"
    # a configuration reload hands over to a new smtpd: the old one
    # writes what it has
    os.kill(tern.pid, signal.SIGHUP)
    wait_for(lambda: "127.0.0.3/32" in passes.read_text(), 10,
             what="the second pass written at the handover")


def test_a_client_that_talks_first_earns_no_pass(tern_factory):
    tern = paused(tern_factory)
    with client(tern, "127.0.0.2") as c:
        c.send(b"EHLO impatient.example\r\n")
        replies = c.replies_until_close(timeout=PAUSE + 10)
    assert [(r.code, r.enhanced) for r in replies] == [(554, "5.5.1")]
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) >= PAUSE - 0.5
        c.quit()


def test_a_broken_pass_file_is_not_used(tern_factory):
    tern = paused(tern_factory, start=False)
    state = tern.home / "state" / "smtpd"
    state.mkdir(parents=True)
    # a pass for 127.0.0.2, but the file is cut short (no end line)
    (state / "greet-pass").write_text(
        f"version 1\npass 127.0.0.2/32 {int(time.time())}\n")
    tern.start()
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) >= PAUSE - 0.5
        c.quit()
    assert "not a greet-pass file of tern" in tern.log_text()


# ---------------------------------------------------------------- pipelining

def test_several_commands_before_the_ehlo_reply_are_dropped(tern_factory):
    tern = paused(tern_factory)
    with client(tern, "127.0.0.2") as c:
        c.greeting()
        c.send(f"EHLO client.example\r\nMAIL FROM:<{SENDER}>\r\n")
        replies = c.replies_until_close(timeout=10)
    assert [(r.code, r.enhanced) for r in replies] == [(554, "5.5.1")], \
        replies
    assert "127.0.0.2: improper pipelining" in tern.log_text()
    # it earned no pass
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) >= PAUSE - 0.5
        c.quit()


def test_pipelining_after_helo_is_dropped_and_loses_the_pass(tern_factory):
    tern = paused(tern_factory)
    served(tern, "127.0.0.2")
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) < AT_ONCE
        c.cmd("HELO client.example").expect(250)
        # HELO offers no PIPELINING: MAIL and RCPT in one write
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<alice@test.example>\r\n")
        replies = c.replies_until_close(timeout=10)
    assert [(r.code, r.enhanced) for r in replies] == [(554, "5.5.1")]
    with client(tern, "127.0.0.2") as c:
        assert greeting_after(c) >= PAUSE - 0.5, "the pass was kept"
        c.quit()


def test_pipelining_after_ehlo_is_fine(tern_factory):
    tern = paused(tern_factory)
    with client(tern, "127.0.0.2") as c:
        c.greeting()
        c.cmd("EHLO client.example").expect(250)
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<alice@test.example>\r\n"
               "DATA\r\n")
        c.reply().expect(250, "2.1.0")
        c.reply().expect(250, "2.1.5")
        c.reply().expect(354)
        c.send(message() + b".\r\n")
        queue_id(c.reply().expect(250, "2.0.0"))
        c.quit()
    wait_for_mail(tern.home, "alice")


def test_improper_pipelining_allowed_by_the_listener(tern_factory):
    tern = paused(tern_factory, "improper-pipelining=allow")
    with client(tern, "127.0.0.2") as c:
        c.greeting()
        c.send(f"HELO client.example\r\nMAIL FROM:<{SENDER}>\r\n")
        c.reply(enhanced=False).expect(250)
        c.reply().expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()


def test_trusted_networks_are_never_paused(tern_factory):
    tern = paused(tern_factory, trusted_networks="127.0.0.4/32")
    with client(tern, "127.0.0.4") as c:
        assert greeting_after(c) < AT_ONCE
        # nor checked for pipelining
        c.send(f"HELO client.example\r\nMAIL FROM:<{SENDER}>\r\n")
        c.reply(enhanced=False).expect(250)
        c.reply().expect(250, "2.1.0")
        c.quit()


# ---------------------------------------------------------------- sessions

def test_sessions_per_client(tern_factory):
    tern = tern_factory(limits="client-sessions=3")
    held = [client(tern, "127.0.0.2") for _ in range(3)]
    try:
        for c in held:
            c.greeting()
        with client(tern, "127.0.0.2") as c:
            assert_refused_421(c, "a fourth session from 127.0.0.2")
        # the others are served meanwhile
        served(tern, "127.0.0.3")
        log = tern.log_text()
        assert "127.0.0.2: client-sessions=3 reached" in log, log[-2000:]
        # one session ends: room for the next
        held.pop().quit()
        served(tern, "127.0.0.2")
    finally:
        for c in held:
            c.close()
    wait_for_mail(tern.home, "alice", 2)


def test_an_ipv6_client_is_its_prefix(tern_factory):
    if not ipv6_loopback_available():
        pytest.skip("no ::1 on this host")
    tern = tern_factory(ipv6=True, limits="client-sessions=1")
    with SMTPClient("::1", tern.port6) as first:
        first.greeting()
        with SMTPClient("::1", tern.port6) as c:
            assert_refused_421(c, "a second session from ::1")
        # IPv4 is another client
        served(tern, "127.0.0.2")
        first.quit()
    assert "::1: client-sessions=1 reached (1 sessions from ::/64)" in \
        tern.log_text()


def test_trusted_clients_have_no_session_limit(tern_factory):
    tern = tern_factory(limits="client-sessions=1",
                        trusted_networks="127.0.0.2/32")
    held = [client(tern, "127.0.0.2") for _ in range(3)]
    try:
        for c in held:
            c.greeting()
    finally:
        for c in held:
            c.close()


def test_connection_rate_per_client(tern_factory):
    tern = tern_factory(limits="client-connect-rate=5")
    for _ in range(5):
        with client(tern, "127.0.0.2") as c:
            c.greeting()
            c.quit()
    with client(tern, "127.0.0.2") as c:
        assert_refused_421(c, "a sixth connection within the minute")
    served(tern, "127.0.0.3")
    assert "127.0.0.2: client-connect-rate=5 exceeded" in tern.log_text()
    wait_for_mail(tern.home, "alice")


# ---------------------------------------------------------------- rates

def test_message_rate_per_client(tern_factory):
    tern = tern_factory(limits="client-message-rate=2")
    with client(tern, "127.0.0.2") as c:
        c.hello()
        for _ in range(2):
            c.send_mail(SENDER, ["alice@test.example"], message())
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(451, "4.7.1")
        # a new session does not start the count again
        c.quit()
    with client(tern, "127.0.0.2") as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(451, "4.7.1")
        c.quit()
    with client(tern, "127.0.0.3") as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    assert "127.0.0.2: client-message-rate=2 exceeded" in tern.log_text()
    wait_for_mail(tern.home, "alice", 3)


def test_recipient_rate_per_client(tern_factory):
    tern = tern_factory(limits="client-recipient-rate=3")
    with client(tern, "127.0.0.2") as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        for u in ("a1", "a2", "a3"):
            c.cmd(f"RCPT TO:<{u}@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<a4@test.example>").expect(452, "4.7.1")
        # the recipients accepted so far get the message
        queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    with client(tern, "127.0.0.3") as c:
        c.hello()
        c.send_mail(SENDER, ["b1@test.example"], message())
        c.quit()
    wait_queue_empty(tern.home)
    assert mail_users(tern.home) == ["a1", "a2", "a3", "b1"]
    assert "127.0.0.2: client-recipient-rate=3 exceeded" in tern.log_text()


# ---------------------------------------------------------------- errors

def test_errors_are_answered_ever_later_then_the_session_ends(tern_factory):
    tern = tern_factory(limits="client-errors=4")
    with client(tern, "127.0.0.2") as c:
        c.hello()
        t0 = time.monotonic()
        for _ in range(3):
            c.cmd("XYZZY").expect(500, "5.5.2")
        # 0.25 s + 0.5 s + 0.75 s at least
        assert time.monotonic() - t0 >= 1.4
        # the fourth error ends the session
        c.send(b"XYZZY\r\n")
        replies = c.replies_until_close(timeout=10)
    assert [(r.code, r.enhanced) for r in replies] == [
        (500, "5.5.2"), (421, "4.7.0")], replies
    assert "127.0.0.2: client-errors=4 reached" in tern.log_text()
    # the server is still fine
    served(tern, "127.0.0.2")
    wait_for_mail(tern.home, "alice")


def test_errors_pipelined_wait_their_turn(tern_factory):
    tern = tern_factory(limits="client-errors=5")
    with client(tern, "127.0.0.2") as c:
        c.hello()
        t0 = time.monotonic()
        c.send(b"XYZZY\r\nPLUGH\r\nNOOP\r\n")
        c.reply().expect(500, "5.5.2")
        c.reply().expect(500, "5.5.2")
        c.reply().expect(250, "2.0.0")
        assert time.monotonic() - t0 >= 0.7
        c.quit()


# ---------------------------------------------------------------- dictionary

def test_a_dictionary_attack_is_cut_off(tern_factory, rundir):
    known = rundir / "recipients"
    known.write_text("alice\n")
    known.chmod(0o644)
    tern = tern_factory(recipients=f"file:{known}",
                        limits="client-invalid-recipients=5")
    with client(tern, "127.0.0.2") as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        # pipelined, as an attacker would (EHLO offered PIPELINING)
        c.send(b"".join(b"RCPT TO:<guess%d@test.example>\r\n" % i
                        for i in range(20)))
        replies = c.replies_until_close(timeout=10)
    assert [(r.code, r.enhanced) for r in replies] == \
        [(550, "5.1.1")] * 5 + [(421, "4.7.0")], replies
    assert "127.0.0.2: client-invalid-recipients=5 reached" in \
        tern.log_text()
    # nothing was queued by the cut session; others are served
    with client(tern, "127.0.0.3") as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.received()[0]["ip"] == "127.0.0.3"


def test_refused_relaying_counts_as_invalid(tern_factory):
    tern = tern_factory(limits="client-invalid-recipients=2")
    with client(tern, "127.0.0.2") as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<x@elsewhere.example>").expect(554, "5.7.1")
        c.send(b"RCPT TO:<y@elsewhere.example>\r\n")
        replies = c.replies_until_close(timeout=10)
    assert [(r.code, r.enhanced) for r in replies] == [
        (554, "5.7.1"), (421, "4.7.0")], replies


def test_a_refused_client_does_not_break_the_server(tern_factory):
    """Clients cut off by every limit in turn, then a normal one."""
    tern = tern_factory(limits="client-sessions=1 client-errors=2")
    first = client(tern, "127.0.0.2")
    try:
        first.greeting()
        with client(tern, "127.0.0.2") as c:
            assert_refused_421(c, "a second session")
        first.cmd("EHLO client.example").expect(250)
        first.send(b"BAD\r\nBAD\r\n")
        first.reply().expect(500, "5.5.2")
        replies = first.replies_until_close(timeout=10)
        assert [r.code for r in replies] == [500, 421], replies
    finally:
        first.close()
    # the session that ended gave its place back
    c = wait_for(lambda: try_greeting(tern, "127.0.0.2"), 10,
                 what="a session for 127.0.0.2 again")
    with c:
        deliver_one(c)
    wait_for_mail(tern.home, "alice")


def try_greeting(tern, source):
    """A connection greeted with 220, or None when refused."""
    c = client(tern, source)
    try:
        r = c.reply(enhanced=False)
    except ConnectionClosed:
        c.close()
        return None
    if r.code != 220:
        c.close()
        return None
    return c


def test_zero_switches_a_limit_off(tern_factory):
    # 60 sessions at once: more than the default client-sessions=50
    tern = tern_factory(limits="client-sessions=0 client-connect-rate=0")
    held = []
    try:
        for _ in range(60):
            c = client(tern, "127.0.0.2")
            held.append(c)
            c.greeting()
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------- a crowd

CROWD = 1000 if ASAN else 5000
CROWD_PAUSE = 20.0


def rss_kib(pid):
    """VmRSS of pid in KiB."""
    return int(proc_status(pid)["VmRSS"].split()[0])


@pytest.fixture
def many_files():
    """Room for the crowd's sockets in this process (as root the hard
    limit may be raised too); the limit is put back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CROWD + 1024
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        pytest.skip(f"cannot raise the open-file limit to {want}")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_crowd_held_in_the_greet_pause(tern_factory, many_files):
    """CROWD sessions held in the greet pause at once, 50 from each of
    CROWD/50 addresses (the default client-sessions=): a patient client
    is still served, and the smtpd's memory per held session is measured
    (docs/SECURITY.md)."""
    tern = tern_factory(listen_opts=f"greet-pause={CROWD_PAUSE:g}s",
                        nofile=(4 * CROWD, 4 * CROWD))
    smtpd = wait_for(tern.smtpd_process, 10, what="the smtpd process")
    fds_before = len(os.listdir(f"/proc/{smtpd}/fd"))
    rss_before = rss_kib(smtpd)
    crowd = []
    t0 = time.monotonic()
    try:
        for i in range(CROWD):
            source = f"127.0.1.{1 + i // 50}"
            crowd.append(socket.create_connection(
                ("127.0.0.1", tern.port), timeout=10,
                source_address=(source, 0)))
            assert time.monotonic() - t0 < CROWD_PAUSE / 2, \
                f"only {i} connections in {CROWD_PAUSE / 2:g}s"
        wait_for(lambda: len(os.listdir(f"/proc/{smtpd}/fd")) >=
                 fds_before + CROWD, CROWD_PAUSE / 2,
                 what="the smtpd to accept the crowd")
        rss = rss_kib(smtpd) - rss_before
        held = time.monotonic() - t0
        assert held < CROWD_PAUSE, "the crowd was greeted before it was held"
        per = rss * 1024 / CROWD
        print(f"\n{CROWD} sessions held in the greet pause: smtpd RSS "
              f"+{rss} KiB, {per:.0f} octets per session")
        assert per < 64 * 1024, f"{per:.0f} octets of memory per session"
        assert "refused" not in tern.log_text()
        # a patient client among them is served
        with client(tern, "127.0.0.2", timeout=CROWD_PAUSE + 30) as c:
            c.reply(timeout=CROWD_PAUSE + 30, enhanced=False).expect(220)
            deliver_one(c)
        # the crowd was held, not dropped: each has its greeting now
        for s in crowd[::97]:
            s.settimeout(10)
            assert s.recv(64).startswith(b"220 "), "a held session dropped"
    finally:
        for s in crowd:
            s.close()
    wait_for_mail(tern.home, "alice")
    (tern.dir / "crowd.txt").write_text(
        f"{CROWD} sessions {rss} KiB {per:.0f} octets/session\n")


# ---------------------------------------------------------------- exemptions

def test_authenticated_users_are_exempt_from_the_rates(tern_factory,
                                                      tls_files):
    tern = start_tern(tern_factory, tls_files,
                      limits="client-message-rate=1 client-recipient-rate=1")
    with tls_session(tern.submission, tls_files, source="127.0.0.2") as c:
        login(c, "paulv", "pw-paulv")
        for i in range(3):
            c.send_mail("paulv@test.example",
                        [f"u{i}@test.example", f"v{i}@test.example"],
                        message())
        c.quit()
    # the same address without AUTH is held to them (its first MAIL of
    # the minute is the one it may send)
    with client(tern, "127.0.0.2") as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RSET").expect(250, "2.0.0")
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(451, "4.7.1")
        c.quit()
    wait_queue_empty(tern.home)
    assert len(mail_users(tern.home)) == 6

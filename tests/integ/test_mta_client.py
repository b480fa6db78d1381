"""The outbound SMTP client (src/mta.c, src/mta_session.c): tern relays
mail for remote.test to a scriptable SMTP server on loopback
(smtp_peer.SMTPPeer), reached by an explicit route or the smarthost, and
the tests look at what that server saw: envelopes, ESMTP parameters, the
exact DATA bytes, connections, TLS, AUTH.

RFC 5321 (2.3.8 and 4.5.2 canonical form, 4.5.3.1.10 452 splitting,
4.5.3.2 timeouts, 5.1 next address), RFC 2920 (PIPELINING), RFC 3207
(STARTTLS), RFC 4954 (AUTH), RFC 6152 (8BITMIME).
"""

import re
import socket
import socketserver
import struct
import threading
import time

import pytest

from smtp_peer import SMTPPeer
from tern_harness import (free_port, wait_for, wait_for_mail,
                          wait_queue_empty)

REMOTE = "remote.test"
LOCAL_SENDER = "alice@test.example"
# fast retries and short remote timeouts, so a retry happens within a test
FAST = {
    "retry": "first=1s max=2s lifetime=30s",
    "timeouts": "remote-command=2s remote-data=2s",
}


# ---------------------------------------------------------------- helpers

@pytest.fixture
def peer():
    """The remote side: an SMTPPeer with the default extensions."""
    with SMTPPeer() as p:
        yield p


def relay(tern_factory, peer, *, route=True, **keys):
    """A tern that relays remote.test to peer (route, or smarthost with
    route=False)."""
    cfg = dict(FAST)
    cfg["relay_domains"] = REMOTE
    if route:
        cfg["route"] = f"{REMOTE} [127.0.0.1]:{peer.port}"
    cfg.update(keys)
    return tern_factory(**cfg)


def submit(tern, rcpts, body=b"Subject: test\r\n\r\nHello.\r\n",
           sender=LOCAL_SENDER, params=""):
    """One message into tern over SMTP; the raw DATA bytes are sent as
    given (body must be dot-stuffed and end in CRLF).  Returns the id."""
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{sender}>{params}").expect(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").expect(250)
        c.cmd("DATA").expect(354)
        c.send(body + b".\r\n")
        r = c.reply().expect(250)
        c.quit()
    m = re.search(r"queued as ([0-9A-Z]{14})", r.text)
    return m.group(1)


def log_lines(tern, qid, pattern):
    """Lines of tern's log about qid that match the regex pattern."""
    rx = re.compile(pattern)
    return [line for line in tern.log_text().splitlines()
            if qid in line and rx.search(line)]


def wait_log(tern, qid, pattern, timeout=20.0):
    """Wait for a log line about qid matching pattern; return them all."""
    return wait_for(lambda: log_lines(tern, qid, pattern), timeout,
                    what=lambda: f"a log line /{pattern}/ for {qid}\n"
                    f"{tern.log_tail()}")


def no_bare_line_ends(data):
    """True when every CR and LF in data is part of a CRLF."""
    rest = data.replace(b"\r\n", b"")
    return b"\r" not in rest and b"\n" not in rest


# ---------------------------------------------------------------- success

def test_one_pipelined_transaction_for_two_recipients(tern_factory, peer):
    tern = relay(tern_factory, peer)
    qid = submit(tern, [f"bob@{REMOTE}", f"carol@{REMOTE}"])
    [txn] = peer.wait_delivered(1)
    assert txn.mail_from == LOCAL_SENDER
    assert [a for a, _ in txn.rcpts] == [f"bob@{REMOTE}", f"carol@{REMOTE}"]
    # RFC 2920: MAIL, both RCPTs and DATA in one write
    assert txn.pipelined, txn.chunks
    assert "SIZE" in txn.mail_params
    assert txn.conn.helo == "test.example"
    assert txn.conn.talked_first == b""
    assert b"Received: from client.example" in txn.content
    assert txn.content.endswith(b"\r\n\r\nHello.\r\n")
    wait_queue_empty(tern.home)
    sent = wait_log(tern, qid, r"status=sent")
    assert len(log_lines(tern, qid, r"status=sent")) == 2, sent
    assert any(f"127.0.0.1[127.0.0.1]:{peer.port}" in line for line in sent)


def test_without_pipelining_each_command_waits_for_its_reply(tern_factory):
    with SMTPPeer(ehlo=("8BITMIME", "ENHANCEDSTATUSCODES")) as peer:
        tern = relay(tern_factory, peer)
        submit(tern, [f"bob@{REMOTE}", f"carol@{REMOTE}"])
        [txn] = peer.wait_delivered(1)
        assert len(set(txn.chunks)) == len(txn.chunks) == 4, txn.chunks
        assert "SIZE" not in txn.mail_params   # the peer did not offer it
        wait_queue_empty(tern.home)


def test_helo_when_ehlo_is_refused(tern_factory, peer):
    peer.rule("EHLO", "502 5.5.2 EHLO not implemented")
    tern = relay(tern_factory, peer)
    submit(tern, [f"bob@{REMOTE}"])
    [txn] = peer.wait_delivered(1)
    assert txn.conn.commands[:2] == ["EHLO test.example",
                                     "HELO test.example"]
    assert txn.mail_params == {}


def test_greeting_is_awaited_however_late(tern_factory):
    # a remote greet pause must not catch us talking first
    with SMTPPeer(greet_delay=1.5) as peer:
        tern = relay(tern_factory, peer)
        submit(tern, [f"bob@{REMOTE}"])
        [txn] = peer.wait_delivered(1)
        assert txn.conn.talked_first == b""


# ---------------------------------------------------------------- content

def test_what_tern_sends_is_canonical(tern_factory, peer):
    tern = relay(tern_factory, peer)
    # the DATA stream tern receives: bare LF and bare CR are data to the
    # inbound side (they never end a line there); ".." is a stuffed dot
    wire_in = (b"Subject: canonical\r\n\r\n"
               b"bare LF\nhere\r\n"
               b"..a leading dot\r\n"
               b"bare LF then a dot\n.x\r\n"
               b"bare CR\rhere\r\n"
               b"end\r\n")
    submit(tern, [f"bob@{REMOTE}"], body=wire_in)
    [txn] = peer.wait_delivered(1)
    # every line ends in CRLF, dots opening a line are doubled
    want = (b"\r\n\r\n"
            b"bare LF\r\nhere\r\n"
            b"..a leading dot\r\n"
            b"bare LF then a dot\r\n..x\r\n"
            b"bare CR\r\nhere\r\n"
            b"end\r\n")
    assert txn.data_raw.endswith(want), txn.data_raw
    assert no_bare_line_ends(txn.data_raw)
    head = txn.data_raw[:-len(want)]
    assert head.startswith(b"Received: ") and b"Subject: canonical" in head


def test_8bit_content_to_a_peer_without_8bitmime_fails_with_5_6_3(
        tern_factory):
    # tern does not convert 8-bit content to 7 bits: it bounces (5.6.3)
    with SMTPPeer(ehlo=("PIPELINING", "ENHANCEDSTATUSCODES")) as peer:
        tern = relay(tern_factory, peer)
        body = "Subject: 8bit\r\n\r\nGrüße aus Köln\r\n".encode()
        qid = submit(tern, [f"bob@{REMOTE}"], body=body,
                     params=" BODY=8BITMIME")
        line = wait_log(tern, qid, r"dsn=5\.6\.3")[0]
        assert "status=bounced" in line and "8BITMIME" in line
        assert peer.transactions == []   # not even MAIL was sent


def test_the_8bitmime_bounce_reaches_the_sender(tern_factory):
    with SMTPPeer(ehlo=("PIPELINING", "ENHANCEDSTATUSCODES")) as peer:
        tern = relay(tern_factory, peer)
        body = "Subject: 8bit\r\n\r\nGrüße\r\n".encode()
        submit(tern, [f"bob@{REMOTE}"], body=body, params=" BODY=8BITMIME")
        [dsn] = wait_for_mail(tern.home, "alice")
        assert dsn.msg.get_content_type() == "multipart/report"
        assert b"5.6.3" in dsn.raw


# ---------------------------------------------------------------- recipients

def test_452_splits_the_recipients_over_transactions(tern_factory):
    rcpts = [f"r{i}@{REMOTE}" for i in range(5)]
    with SMTPPeer(max_rcpts=2) as peer:
        tern = relay(tern_factory, peer)
        qid = submit(tern, rcpts)
        got = peer.wait_delivered(3)
        # RFC 5321 4.5.3.1.10: the rest go in the next transaction, on
        # the same connection
        assert [t.accepted for t in got] == [rcpts[0:2], rcpts[2:4],
                                             rcpts[4:5]]
        assert {t.conn.id for t in got} == {1}
        wait_queue_empty(tern.home)
        assert len(log_lines(tern, qid, "status=sent")) == 5
        assert not log_lines(tern, qid, "status=deferred")


def test_a_550_fails_only_its_recipient(tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 <bad@remote.test>: no such user",
              match="bad@")
    tern = relay(tern_factory, peer)
    qid = submit(tern, [f"good@{REMOTE}", f"bad@{REMOTE}"])
    [txn] = peer.wait_delivered(1)
    assert txn.accepted == [f"good@{REMOTE}"]
    bounced = wait_log(tern, qid, r"to=<bad@remote\.test>.*status=bounced")
    assert "dsn=5.1.1" in bounced[0] and "no such user" in bounced[0]
    assert log_lines(tern, qid, r"to=<good@remote\.test>.*status=sent")


def test_a_451_is_retried_and_then_delivered(tern_factory, peer):
    peer.rule("RCPT", "451 4.3.0 greylisted, try again", times=1)
    tern = relay(tern_factory, peer)
    qid = submit(tern, [f"bob@{REMOTE}"])
    wait_log(tern, qid, r"status=deferred.*greylisted")
    [txn] = peer.wait_delivered(1, timeout=20)
    assert txn.accepted == [f"bob@{REMOTE}"]
    wait_log(tern, qid, r"status=sent")
    wait_queue_empty(tern.home)


# ---------------------------------------------------------------- TLS, AUTH

def test_starttls_is_used_when_offered(tern_factory):
    with SMTPPeer(tls=True) as peer:
        tern = relay(tern_factory, peer)
        submit(tern, [f"bob@{REMOTE}"])
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is not None
        assert txn.conn.tls[0] in ("TLSv1.2", "TLSv1.3")
        # RFC 3207 4.2: EHLO again after the handshake
        assert txn.conn.commands[:3] == ["EHLO test.example", "STARTTLS",
                                         "EHLO test.example"]


def test_a_failed_handshake_is_retried_in_plaintext(tern_factory):
    with SMTPPeer(tls_broken=True) as peer:
        tern = relay(tern_factory, peer)
        submit(tern, [f"bob@{REMOTE}"])
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is None
        assert "STARTTLS" not in txn.conn.commands
        assert peer.connections[0].tls_failed
        assert re.search(r"TLS handshake with .* failed", tern.log_text())


def test_tls_encrypt_without_starttls_defers_with_4_7_5(tern_factory, peer):
    tern = relay(tern_factory, peer,
                 route=False,
                 smarthost=f"[127.0.0.1]:{peer.port} tls=encrypt")
    qid = submit(tern, [f"bob@{REMOTE}"])
    line = wait_log(tern, qid, r"status=deferred")[0]
    assert "dsn=4.7.5" in line and "STARTTLS" in line
    assert peer.transactions == []


def test_smarthost_with_auth_over_tls(tern_factory, rundir):
    secret = rundir / "relay.secret"
    secret.write_text("alice:s3cret\n")
    secret.chmod(0o644)
    with SMTPPeer(tls=True, auth={"alice": "s3cret"}) as peer:
        tern = relay(tern_factory, peer, route=False,
                     smarthost=f"[127.0.0.1]:{peer.port} auth={secret}")
        submit(tern, [f"bob@{REMOTE}"])
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is not None
        assert txn.conn.auth_user == "alice"


def test_auth_is_never_sent_in_plaintext(tern_factory, rundir):
    secret = rundir / "relay.secret"
    secret.write_text("alice:s3cret\n")
    secret.chmod(0o644)
    with SMTPPeer(auth={"alice": "s3cret"}, auth_needs_tls=False) as peer:
        tern = relay(tern_factory, peer, route=False,
                     smarthost=f"[127.0.0.1]:{peer.port} auth={secret}")
        qid = submit(tern, [f"bob@{REMOTE}"])
        line = wait_log(tern, qid, r"status=deferred")[0]
        assert "dsn=4.7.0" in line
        assert not any(c.startswith("AUTH") for conn in peer.connections
                       for c in conn.commands)


# ---------------------------------------------------------------- connections

def test_one_connection_carries_several_messages(tern_factory, peer):
    tern = relay(tern_factory, peer,
                 limits="destination-concurrency=1")
    for i in range(3):
        submit(tern, [f"bob@{REMOTE}"],
               body=f"Subject: reuse {i}\r\n\r\nHello.\r\n".encode())
    got = peer.wait_delivered(3)
    assert len(peer.connections) == 1, peer.connections
    assert {t.conn.id for t in got} == {1}
    # after a completed transaction the next MAIL follows directly
    assert "RSET" not in peer.connections[0].commands


def test_an_idle_connection_is_reused_then_closed_with_quit(tern_factory,
                                                            peer):
    tern = relay(tern_factory, peer)
    submit(tern, [f"bob@{REMOTE}"])
    peer.wait_delivered(1)
    time.sleep(1.0)
    submit(tern, [f"carol@{REMOTE}"])
    got = peer.wait_delivered(2)
    assert [t.conn.id for t in got] == [1, 1]
    # idle for a few seconds: QUIT, then the connection is gone
    wait_for(lambda: peer.connections[0].closed, 15,
             what="the idle connection to be closed")
    assert peer.connections[0].quit


def test_a_stall_mid_data_times_out_and_the_retry_delivers(tern_factory,
                                                           peer):
    peer.rule("BODY", "STALL", times=1)
    tern = relay(tern_factory, peer)
    qid = submit(tern, [f"bob@{REMOTE}"])
    line = wait_log(tern, qid, r"status=deferred")[0]
    assert "dsn=4.4.2" in line and "timed out" in line
    [txn] = peer.wait_delivered(1, timeout=20)
    assert txn.conn.id == 2     # a new connection
    wait_log(tern, qid, r"status=sent")
    wait_queue_empty(tern.home)


def test_a_refused_connection_defers(tern_factory):
    port = free_port()   # nothing listens there
    tern = tern_factory(relay_domains=REMOTE,
                        route=f"{REMOTE} [127.0.0.1]:{port}", **FAST)
    qid = submit(tern, [f"bob@{REMOTE}"])
    line = wait_log(tern, qid, r"status=deferred")[0]
    assert "dsn=4.4.1" in line and "Connection refused" in line


# ------------------------------------------- the next MX after a refusal

class MiniDNS:
    """A tiny authoritative-only DNS server over UDP on loopback (stdlib
    only; a real one from Debian is what the end-to-end tests use): it
    answers A and MX from a dict and NOERROR/no data otherwise.  Enough
    for libunbound as a forwarder (tern's `resolver IP:PORT`)."""

    def __init__(self, records):
        # records: {(name, "A"|"MX"): [value, ...]}; MX values (pref, host)
        self.records = {(n.lower(), t): v for (n, t), v in records.items()}
        self.server = socketserver.ThreadingUDPServer(("127.0.0.1", 0),
                                                      self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _name(data, off):
        labels = []
        while data[off]:
            n = data[off]
            labels.append(data[off + 1:off + 1 + n].decode())
            off += 1 + n
        return ".".join(labels), off + 1

    @staticmethod
    def _wire(name):
        return b"".join(bytes([len(p)]) + p.encode()
                        for p in name.split(".") if p) + b"\0"

    def answer(self, data):
        qid, flags = struct.unpack("!HH", data[:4])
        name, off = self._name(data, 12)
        qtype, qclass = struct.unpack("!HH", data[off:off + 4])
        question = data[12:off + 4]
        kind = {1: "A", 15: "MX"}.get(qtype)
        values = self.records.get((name.lower(), kind), [])
        known = any(n == name.lower() for n, _ in self.records)
        rcode = 0 if known else 3
        rrs = b""
        for v in values:
            if kind == "A":
                rdata = socket.inet_aton(v)
            else:
                rdata = struct.pack("!H", v[0]) + self._wire(v[1])
            rrs += struct.pack("!HHHIH", 0xC00C, qtype, 1, 60,
                               len(rdata)) + rdata
        head = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) |
                           0x0080 | rcode, 1, len(values), 0, 0)
        return head + question + rrs

    def _handler(self):
        dns = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                try:
                    sock.sendto(dns.answer(data), self.client_address)
                except (IndexError, struct.error, UnicodeDecodeError):
                    pass
        return H


def test_a_refused_mx_is_skipped_for_the_next(tern_factory, peer):
    # mx1 (preference 10) is 127.0.0.2, where nothing listens on the
    # port; mx2 (20) is the peer on 127.0.0.1 (RFC 5321 5.1)
    dns = MiniDNS({
        ("relay.remote.test", "MX"): [(10, "mx1.remote.test"),
                                      (20, "mx2.remote.test")],
        ("mx1.remote.test", "A"): ["127.0.0.2"],
        ("mx2.remote.test", "A"): ["127.0.0.1"],
    })
    try:
        tern = tern_factory(relay_domains=REMOTE,
                            route=f"{REMOTE} relay.remote.test:{peer.port}",
                            resolver=f"127.0.0.1:{dns.port}", **FAST)
        qid = submit(tern, [f"bob@{REMOTE}"])
        [txn] = peer.wait_delivered(1)
        assert txn.accepted == [f"bob@{REMOTE}"]
        sent = wait_log(tern, qid, r"status=sent")[0]
        assert f"mx2.remote.test[127.0.0.1]:{peer.port}" in sent
        assert re.search(r"connect to mx1\.remote\.test\[127\.0\.0\.2\]"
                         r".*refused", tern.log_text(), re.I)
    finally:
        dns.close()

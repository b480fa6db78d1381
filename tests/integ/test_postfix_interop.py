"""Interoperability with Postfix, the MTA people actually run (Debian's
package, as private instances on loopback: postfix_peer.py).

Postfix as the receiving peer: tern, with `route example.net
[127.0.0.1]:PORT`, hands messages to a real Postfix smtpd that delivers
them into a Maildir; and to smtp-sink with ESMTP features switched off.
Postfix as the sending peer: Postfix, with `relayhost = [127.0.0.1]:PORT`,
relays a message injected with its own sendmail into tern's Maildir.

Postfix must be started as root: as another user these tests are skipped.
"""

import os
import re

import pytest

from postfix_peer import PostfixInstance, SmtpSink, postfix_available
from tern_harness import (CLIENT, RECEIVED_RE, wait_for, wait_for_mail,
                          wait_queue_empty)

_ok, _why = postfix_available()
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="a private Postfix instance needs root"),
    pytest.mark.skipif(not _ok, reason=_why),
]

# what a tern delivering onward needs here: retries in seconds
FAST_RETRY = "first=1s max=2s"
POSTFIX_RECEIVED_RE = re.compile(
    r"from (?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>[^\]]+)\]\)\s+"
    r"by (?P<by>\S+) \(Postfix\) with (?P<proto>[A-Z]+) id (?P<qid>\w+)")


@pytest.fixture
def postfix(rundir):
    """factory(**main_cf) -> a started private Postfix; all stopped at
    the end (postfix stop, then by pid)."""
    made = []

    def factory(**kw):
        p = PostfixInstance(rundir / f"postfix{len(made)}", **kw)
        made.append(p)
        return p.start()
    yield factory
    for p in made:
        p.stop()


@pytest.fixture
def sink(rundir):
    """factory(*flags) -> a started smtp-sink; stopped by pid at the end."""
    made = []

    def factory(*flags):
        s = SmtpSink(rundir / f"sink{len(made)}", *flags)
        made.append(s)
        return s.start()
    yield factory
    for s in made:
        s.stop()


def relay_tern(tern_factory, port, **kw):
    """A tern that relays for 127.0.0.1 and routes example.net to
    [127.0.0.1]:port."""
    kw.setdefault("retry", FAST_RETRY)
    return tern_factory(trusted_networks="127.0.0.0/8",
                        extra=[f"route example.net [127.0.0.1]:{port}"],
                        **kw)


def submit(tern, sender, rcpts, content):
    with tern.connect() as c:
        c.hello(CLIENT)
        qid = c.send_mail(sender, rcpts, content)
        c.quit()
    return qid


def message(subject, body="Hello from tern.\r\n", extra=()):
    head = ["From: <alice@test.example>", "To: <bob@example.net>",
            f"Subject: {subject}",
            f"Message-ID: <{subject.replace(' ', '-')}@test.example>",
            *extra]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode("utf-8")


def lf(content):
    """What a Maildir holds of CRLF content: LF line ends."""
    return content.replace(b"\r\n", b"\n")


# ------------------------------------------------ Postfix receives

def test_postfix_receives_from_tern(tern_factory, postfix):
    """One message, two recipients, one transaction: Postfix queues it
    once with nrcpt=2 and delivers both; its Received: is above tern's,
    and the body arrives byte for byte (dot-stuffing undone)."""
    pf = postfix(domains=["example.net"])
    t = relay_tern(tern_factory, pf.port)
    body = "Line one.\r\n.A line that starts with a dot.\r\n..two dots\r\n"
    content = message("to postfix", body)
    submit(t, "alice@test.example", ["bob@example.net", "carol@example.net"],
           content)
    msgs = wait_for(lambda: len(pf.messages()) >= 2 and pf.messages(), 30,
                    what=lambda: f"2 messages in Postfix's Maildir\n"
                    f"{pf.log_tail()}\n{t.log_tail()}")
    wait_queue_empty(t.home)
    log = pf.log_text()
    assert re.search(r"from=<alice@test\.example>, size=\d+, nrcpt=2 ", log), \
        pf.log_tail()
    for rcpt in ("bob@example.net", "carol@example.net"):
        assert re.search(rf"to=<{re.escape(rcpt)}>, relay=virtual.*"
                         r"status=sent", log), pf.log_tail()
    for m in msgs:
        assert m.body == lf(body.encode())
        received = m.msg.get_all("Received")
        assert len(received) == 2, received
        top = POSTFIX_RECEIVED_RE.search(" ".join(received[0].split()))
        assert top, received[0]
        assert top["helo"] == "test.example" and top["ip"] == "127.0.0.1"
        assert "(tern)" in received[1]


def test_postfix_refuses_one_recipient(tern_factory, postfix):
    """Postfix refuses one of two recipients at RCPT (550 5.1.1): the other
    is delivered, the refused one comes back to the sender as a DSN with
    Postfix's reply as the Diagnostic-Code."""
    pf = postfix(domains=["example.net"],
                 smtpd_recipient_restrictions=(
                     "check_recipient_access inline:{ "
                     "{ nobody@example.net = 550 5.1.1 no such user here } }"
                     ", permit_mynetworks, reject_unauth_destination"))
    t = relay_tern(tern_factory, pf.port)
    submit(t, "alice@test.example", ["bob@example.net", "nobody@example.net"],
           message("one refused"))
    wait_for(lambda: pf.messages(), 30,
             what=lambda: f"bob's message\n{pf.log_tail()}\n{t.log_tail()}")
    dsns = wait_for_mail(t.home, "alice", timeout=30)
    wait_queue_empty(t.home)
    assert len(pf.messages()) == 1
    dsn = dsns[0].msg
    assert dsn["Return-Path"] == "<>"
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    fields = delivery_status(dsn)
    assert len(fields) == 1, fields
    f = fields[0]
    assert f["final-recipient"].lower().endswith("nobody@example.net")
    assert f["action"] == "failed"
    assert f["status"] == "5.1.1"
    assert f["diagnostic-code"].startswith("smtp;")
    assert "550" in f["diagnostic-code"] and \
        "no such user here" in f["diagnostic-code"]


def delivery_status(msg):
    """The per-recipient groups of the message/delivery-status part, as
    dicts of lower-case field name -> value."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        groups = part.get_payload()
        # compat32: a list of Message objects, the first is per-message
        return [{k.lower(): " ".join(str(v).split()) for k, v in g.items()}
                for g in groups[1:]]
    raise AssertionError("no message/delivery-status part")


def test_helo_only_peer(tern_factory, sink):
    """smtp-sink without ESMTP (-e): tern falls back from EHLO to HELO and
    delivers a 7-bit message."""
    s = sink("-e")
    t = relay_tern(tern_factory, s.port)
    submit(t, "alice@test.example", ["bob@example.net"], message("helo"))
    wait_queue_empty(t.home)  # tern had its 250 for the message
    dumps = wait_for(s.dumps, 10, what=lambda: f"a dump\n{t.log_tail()}")
    d = dumps[0]
    assert b"X-Client-Proto: SMTP\n" in d, d[:400]
    assert b"X-Helo-Args: test.example\n" in d, d[:400]
    assert b"Subject: helo\n" in d


def test_peer_without_pipelining(tern_factory, sink):
    """smtp-sink without PIPELINING (-p): three recipients still travel in
    one transaction, command by command."""
    s = sink("-p")
    t = relay_tern(tern_factory, s.port)
    rcpts = ["a@example.net", "b@example.net", "c@example.net"]
    submit(t, "alice@test.example", rcpts, message("no pipelining"))
    wait_queue_empty(t.home)  # tern had its 250 for the message
    dumps = wait_for(s.dumps, 10, what=lambda: f"a dump\n{t.log_tail()}")
    assert len(dumps) == 1
    got = re.findall(rb"X-Rcpt-Args: <([^>]*)>", dumps[0])
    assert sorted(g.decode() for g in got) == rcpts


# ------------------------------------------------ Postfix sends

def test_postfix_sends_to_tern(tern, postfix):
    """Postfix relays a message from its sendmail to tern: it lands in
    tern's Maildir with Return-Path, tern's Received: on top and
    Postfix's (and its pickup's) below."""
    pf = postfix(relayhost=f"[127.0.0.1]:{tern.port}")
    content = (b"From: <root@postfix.test>\nTo: <pea@test.example>\n"
               b"Subject: from postfix\nMessage-ID: <pf1@postfix.test>\n\n"
               b"Hello from Postfix.\n.leading dot\n")
    pf.sendmail("root@postfix.test", ["pea@test.example"], content)
    msgs = wait_for_mail(tern.home, "pea", timeout=30)
    wait_for(pf.queue_empty, 10, what=lambda: pf.log_tail())
    m = msgs[0]
    assert m.msg["Return-Path"] == "<root@postfix.test>"
    assert m.msg["Message-ID"] == "<pf1@postfix.test>"
    assert m.body == b"Hello from Postfix.\n.leading dot\n"
    received = m.msg.get_all("Received")
    top = RECEIVED_RE.search(received[0])  # tern's, in tern's own form
    assert top, received[0]
    assert top["helo"] == "postfix.test" and top["ip"] == "127.0.0.1"
    assert top["by"] == "test.example" and top["proto"].startswith("ESMTP")
    assert top["rcpt"] == "pea@test.example"
    below = received[1:]
    assert below and all("(Postfix" in r for r in below), below
    assert re.search(r"to=<pea@test\.example>, relay=127\.0\.0\.1\[127\.0\.0"
                     rf"\.1\]:{tern.port},.*status=sent \(250 ",
                     pf.log_text()), pf.log_tail()


def test_postfix_sends_8bit_to_tern(tern, postfix):
    """An 8-bit UTF-8 body goes from Postfix to tern (which offers
    8BITMIME) and arrives unchanged, not downgraded."""
    pf = postfix(relayhost=f"[127.0.0.1]:{tern.port}")
    body = "Grüße aus Köln – ça va? ✓\n".encode("utf-8")
    content = (b"From: <root@postfix.test>\nTo: <pea@test.example>\n"
               b"Subject: 8bit\nMIME-Version: 1.0\n"
               b"Content-Type: text/plain; charset=utf-8\n"
               b"Content-Transfer-Encoding: 8bit\n\n" + body)
    pf.sendmail("root@postfix.test", ["pea@test.example"], content)
    msgs = wait_for_mail(tern.home, "pea", timeout=30)
    assert msgs[0].body == body

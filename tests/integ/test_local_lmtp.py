"""Local delivery over LMTP (RFC 2033): `mailbox lmtp:unix:PATH` and
`mailbox lmtp:[host]:port` hand every local recipient to an LMTP server
through tern's outbound client (src/mta_session.c, route.c route_lmtp,
sched.c rcpt_route).

Two peers play the mail store:

- smtp_peer.SMTPPeer in LMTP mode on a UNIX-domain socket in the test's
  directory, scripted per recipient: what tern says (LHLO, one transaction
  for all recipients), what each per-recipient reply after the data does
  to its recipient (2xx delivered, 4xx deferred and retried, 5xx bounced),
  a 421 or a dropped connection among those replies, connection reuse.
- a private Dovecot (dovecot_peer.DovecotInstance), the reference peer:
  what tern delivers arrives in Dovecot's store and Dovecot reads it back.

The sender is a local user, so the failure report tern sends goes over
LMTP to the same store, where the test finds it.

RFC 2033 4.1 (LHLO), 4.2 (a reply per recipient after the data, in RCPT
order); RFC 5321 4.2.2 (421 closes the channel).
"""

import re
import tempfile
from pathlib import Path

import pytest

from smtp_peer import DEFAULT_EHLO, SMTPPeer
from tern_harness import remove_tree, wait_for, wait_queue_empty

DOMAIN = "test.example"          # a local domain of the test configuration
SENDER = f"alice@{DOMAIN}"       # local: reports come back over LMTP
FAST = {
    "retry": "first=1s max=2s lifetime=60s",
    "timeouts": "remote-command=3s remote-data=3s",
}
SOCKET_PATH_MAX = 107


# ---------------------------------------------------------------- helpers

@pytest.fixture
def sock_dir(rundir):
    """A directory for UNIX-domain sockets: the run directory, or when its
    path is too long for a socket (pytest's tmp_path as a normal user) a
    short one in /tmp, removed afterwards."""
    if len(str(rundir)) + 20 <= SOCKET_PATH_MAX:
        yield Path(rundir)
        return
    d = Path(tempfile.mkdtemp(prefix="lmtp-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    remove_tree(d)


@pytest.fixture
def peer(sock_dir):
    """A scripted LMTP server on sock_dir/lmtp.sock."""
    with SMTPPeer(lmtp=True, unix_path=sock_dir / "lmtp.sock") as p:
        yield p


def lmtp_tern(tern_factory, mailbox, **keys):
    """A tern whose mailboxes are behind `mailbox lmtp:...`."""
    cfg = dict(FAST)
    cfg["mailbox"] = mailbox
    cfg.update(keys)
    return tern_factory(**cfg)


def submit(tern, rcpts, subject="lmtp test", sender=SENDER,
           body="Hello over LMTP.\r\n"):
    """One message into tern over SMTP; returns its queue id."""
    data = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject}"
            f"\r\n\r\n{body}").encode()
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(sender, rcpts, data)
        c.quit()
    return qid


def log_lines(tern, qid, pattern):
    """Lines of tern's log about qid matching the regex pattern."""
    rx = re.compile(pattern)
    return [line for line in tern.log_text().splitlines()
            if qid in line and rx.search(line)]


def wait_log(tern, qid, pattern, timeout=20.0):
    """Wait for a log line about qid matching pattern; return them all."""
    return wait_for(lambda: log_lines(tern, qid, pattern), timeout,
                    what=lambda: f"a log line /{pattern}/ for {qid}\n"
                    f"{tern.log_tail()}")


def reports_to(peer, rcpt):
    """The transactions from <> to rcpt that the peer took: reports."""
    return [t for t in peer.delivered()
            if t.mail_from == "" and rcpt in t.delivered_to]


# ------------------------------------------------- the scripted LMTP server

def test_lhlo_one_transaction_and_a_reply_per_recipient(tern_factory, peer):
    # carol's mailbox takes it; bob's does not (RFC 2033 4.2: a reply per
    # recipient after the data, each its recipient's outcome)
    peer.rule("DOT", f"550 5.1.1 <bob@{DOMAIN}> no such mailbox",
              match="bob@")
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    qid = submit(tern, [f"carol@{DOMAIN}", f"bob@{DOMAIN}"])
    txn = peer.wait_delivered(1)[0]
    # LHLO with our name, never EHLO/HELO; MAIL, both RCPTs and DATA in
    # one write (the peer offers PIPELINING), MAIL with SIZE
    assert txn.conn.commands[0] == "LHLO test.example"
    assert not any(c.split()[0] in ("EHLO", "HELO", "STARTTLS", "AUTH")
                   for c in txn.conn.commands)
    assert txn.mail_from == SENDER and "SIZE" in txn.mail_params
    assert txn.accepted == [f"carol@{DOMAIN}", f"bob@{DOMAIN}"]
    assert txn.pipelined, txn.chunks
    assert [a for a, _ in txn.replies] == txn.accepted
    assert txn.delivered_to == [f"carol@{DOMAIN}"]
    assert b"Received: from client.example" in txn.content
    relay = f"relay=lmtp:unix:{re.escape(str(peer.unix_path))}"
    sent = wait_log(tern, qid, rf"to=<carol@{DOMAIN}>.*status=sent")[0]
    assert re.search(relay, sent) and "tls=none" in sent
    bounced = wait_log(tern, qid, rf"to=<bob@{DOMAIN}>.*status=bounced")[0]
    assert "dsn=5.1.1" in bounced and "no such mailbox" in bounced
    assert re.search(relay, bounced)
    # the failure report goes to the sender, a local user: over LMTP too
    wait_for(lambda: reports_to(peer, SENDER), 20,
             what=lambda: f"a report to {SENDER}; have {peer.transactions}")
    [rep] = reports_to(peer, SENDER)
    assert b"multipart/report" in rep.content
    assert b"bob@test.example" in rep.content and b"5.1.1" in rep.content
    wait_queue_empty(tern.home)


def test_a_refusal_at_rcpt_keeps_its_reply(tern_factory, peer):
    peer.rule("RCPT", f"550 5.1.1 <dave@{DOMAIN}> unknown user",
              match="dave@")
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    qid = submit(tern, [f"carol@{DOMAIN}", f"dave@{DOMAIN}",
                        f"erin@{DOMAIN}"])
    txn = peer.wait_delivered(1)[0]
    # after the data a reply for each recipient accepted at RCPT only
    assert txn.accepted == [f"carol@{DOMAIN}", f"erin@{DOMAIN}"]
    assert [a for a, _ in txn.replies] == txn.accepted
    line = wait_log(tern, qid, rf"to=<dave@{DOMAIN}>.*status=bounced")[0]
    assert "unknown user" in line and "dsn=5.1.1" in line
    assert len(log_lines(tern, qid, r"status=sent")) == 2
    wait_queue_empty(tern.home)


def test_a_452_defers_its_recipient_and_the_retry_delivers(tern_factory,
                                                           peer):
    peer.rule("DOT", f"452 4.2.2 <bob@{DOMAIN}> mailbox full", match="bob@",
              times=1)
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    qid = submit(tern, [f"carol@{DOMAIN}", f"bob@{DOMAIN}"])
    line = wait_log(tern, qid, rf"to=<bob@{DOMAIN}>.*status=deferred")[0]
    assert "dsn=4.2.2" in line and "mailbox full" in line
    wait_log(tern, qid, rf"to=<bob@{DOMAIN}>.*status=sent")
    first, second = peer.wait_delivered(2)
    assert first.delivered_to == [f"carol@{DOMAIN}"]
    # only the deferred recipient is tried again: carol has her copy
    assert second.rcpts and [a for a, _ in second.rcpts] == [f"bob@{DOMAIN}"]
    assert second.delivered_to == [f"bob@{DOMAIN}"]
    assert len(log_lines(tern, qid, rf"to=<carol@{DOMAIN}>.*status=sent")) \
        == 1
    wait_queue_empty(tern.home)


def test_one_connection_carries_several_messages(tern_factory, peer):
    # destination-concurrency bounds LMTP connections as it does SMTP ones
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}",
                     limits="destination-concurrency=1")
    for i in range(3):
        submit(tern, [f"carol@{DOMAIN}"], subject=f"reuse {i}")
    got = peer.wait_delivered(3)
    assert len(peer.connections) == 1, peer.connections
    assert {t.conn.id for t in got} == {1}
    cmds = peer.connections[0].commands
    assert [c for c in cmds if c.startswith("LHLO")] == ["LHLO test.example"]
    assert "RSET" not in cmds
    wait_queue_empty(tern.home)


def test_an_idle_connection_is_reused_then_closed_with_quit(tern_factory,
                                                            peer):
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    submit(tern, [f"carol@{DOMAIN}"])
    peer.wait_delivered(1)
    submit(tern, [f"bob@{DOMAIN}"])
    got = peer.wait_delivered(2)
    assert [t.conn.id for t in got] == [1, 1]
    wait_for(lambda: peer.connections[0].closed, 15,
             what="the idle LMTP connection to be closed")
    assert peer.connections[0].quit


def test_a_dropped_connection_defers_the_recipients_without_a_reply(
        tern_factory, peer):
    # the server answers for carol, then goes away before bob's reply
    peer.rule("DOT", "CLOSE", match="bob@", times=1)
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    qid = submit(tern, [f"carol@{DOMAIN}", f"bob@{DOMAIN}"])
    line = wait_log(tern, qid, rf"to=<bob@{DOMAIN}>.*status=deferred")[0]
    assert "dsn=4.4.2" in line
    wait_log(tern, qid, rf"to=<carol@{DOMAIN}>.*status=sent")
    # the retry, on a new connection, is for bob alone
    wait_log(tern, qid, rf"to=<bob@{DOMAIN}>.*status=sent")
    retry = [t for t in peer.delivered() if t.conn.id == 2]
    assert [t.delivered_to for t in retry] == [[f"bob@{DOMAIN}"]]
    assert len(log_lines(tern, qid, rf"to=<carol@{DOMAIN}>")) == 1
    wait_queue_empty(tern.home)


def test_a_421_among_the_replies_defers_the_rest(tern_factory, peer):
    peer.rule("DOT", "421 4.3.2 shutting down|CLOSE", match="bob@",
              times=1)
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    rcpts = [f"carol@{DOMAIN}", f"bob@{DOMAIN}", f"erin@{DOMAIN}"]
    qid = submit(tern, rcpts)
    # bob got the 421, erin no reply at all: both deferred with its words
    for who in ("bob", "erin"):
        line = wait_log(tern, qid,
                        rf"to=<{who}@{DOMAIN}>.*status=deferred")[0]
        assert "dsn=4.3.2" in line and "shutting down" in line, line
    wait_log(tern, qid, rf"to=<erin@{DOMAIN}>.*status=sent")
    wait_log(tern, qid, rf"to=<bob@{DOMAIN}>.*status=sent")
    assert len(log_lines(tern, qid, rf"to=<carol@{DOMAIN}>")) == 1
    retry = [t for t in peer.delivered() if t.conn.id == 2]
    assert [t.delivered_to for t in retry] == [rcpts[1:]]
    wait_queue_empty(tern.home)


def test_lhlo_refused_is_not_answered_with_helo(tern_factory, peer):
    peer.rule("LHLO", "500 5.5.1 unknown command")
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    qid = submit(tern, [f"carol@{DOMAIN}"])
    line = wait_log(tern, qid, r"status=deferred")[0]
    assert "refused LHLO" in line
    assert peer.connections[0].commands[0] == "LHLO test.example"
    assert not any(c.startswith(("HELO", "EHLO"))
                   for conn in peer.connections for c in conn.commands)


def test_no_socket_defers(tern_factory, sock_dir):
    path = sock_dir / "nothing-here.sock"
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{path}")
    qid = submit(tern, [f"carol@{DOMAIN}"])
    line = wait_log(tern, qid, r"status=deferred")[0]
    assert f"relay={path}" in line or f"relay=lmtp:unix:{path}" in line
    assert "No such file or directory" in line


# ---------------------------------------------------------------- Dovecot

def header_names(raw):
    """The field names of a message's header section, in order."""
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    return [line.split(":", 1)[0] for line in head.split("\n")
            if line and not line[0].isspace()]


def test_dovecot_stores_what_tern_delivers(tern_factory, dovecot_factory):
    dc = dovecot_factory()
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{dc.socket}")
    qid = submit(tern, [f"alice@{DOMAIN}"], sender="sender@remote.example",
                 body="First line.\r\n.A leading dot.\r\n")
    [msg] = dc.wait_messages("alice")
    # Dovecot's Return-Path and Delivered-To (a transaction with one
    # recipient), its Received with LMTP, then tern's Received
    names = header_names(msg)
    assert names[:4] == ["Return-Path", "Delivered-To", "Received",
                         "Received"], names
    assert b"Return-Path: <sender@remote.example>" in msg
    assert b"Delivered-To: alice@test.example" in msg
    received = re.findall(rb"Received: [^\n]*(?:\n\t[^\n]*)*", msg)
    assert b"with LMTP" in received[0], received
    assert re.search(rb"by test\.example \(tern\) with ESMTP id " +
                     qid.encode(), received[1]), received
    assert msg.endswith(b"First line.\n.A leading dot.\n")
    line = wait_log(tern, qid, r"status=sent")[0]
    assert f"relay=lmtp:unix:{dc.socket}" in line and "Saved" in line
    wait_queue_empty(tern.home)


def test_dovecot_refuses_an_unknown_user_which_bounces(tern_factory,
                                                        dovecot_factory):
    dc = dovecot_factory()
    # recipients any: tern takes nosuchuser, Dovecot refuses it at RCPT
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{dc.socket}")
    qid = submit(tern, [f"alice@{DOMAIN}", f"nosuchuser@{DOMAIN}"],
                 subject="two recipients")
    line = wait_log(tern, qid, rf"to=<nosuchuser@{DOMAIN}>.*"
                    r"status=bounced")[0]
    assert "dsn=5.1.1" in line
    wait_log(tern, qid, rf"to=<alice@{DOMAIN}>.*status=sent")
    # alice, the sender, has the message and the report on it
    msgs = dc.wait_messages("alice", 2)
    assert len(msgs) == 2
    reports = [m for m in msgs if b"multipart/report" in m]
    original = [m for m in msgs if m not in reports and
                b"Subject: two recipients" in m]
    assert len(original) == 1 and len(reports) == 1, msgs
    assert b"Return-Path: <>" in reports[0]
    assert b"nosuchuser@test.example" in reports[0]
    assert b"Status: 5.1.1" in reports[0]
    assert dc.messages("bob") == []
    wait_queue_empty(tern.home)


def test_dovecot_takes_several_messages_over_one_connection(
        tern_factory, dovecot_factory):
    dc = dovecot_factory()
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{dc.socket}",
                     limits="destination-concurrency=1")
    for i in range(4):
        submit(tern, [f"alice@{DOMAIN}", f"bob@{DOMAIN}"],
               subject=f"message {i}")
    assert len(dc.wait_messages("alice", 4)) == 4
    assert len(dc.wait_messages("bob", 4)) == 4
    wait_queue_empty(tern.home)
    assert dc.lmtp_connections() == 1, dc.log_tail()


def test_dovecot_over_tcp(tern_factory, dovecot_factory):
    dc = dovecot_factory(lmtp_tcp=True)
    tern = lmtp_tern(tern_factory, f"lmtp:[127.0.0.1]:{dc.lmtp_port}")
    qid = submit(tern, [f"bob@{DOMAIN}"])
    [msg] = dc.wait_messages("bob")
    assert b"Delivered-To: bob@test.example" in msg
    assert b"Subject: lmtp test" in msg
    line = wait_log(tern, qid, r"status=sent")[0]
    assert f"relay=127.0.0.1[127.0.0.1]:{dc.lmtp_port}" in line
    assert dc.messages("alice") == []


def test_success_report_says_delivered(tern_factory, sock_dir):
    """NOTIFY=SUCCESS for a recipient an LMTP server without DSN (as
    Dovecot 2.3) stored: tern's report says "delivered" (a final
    delivery), not "relayed"."""
    ehlo = tuple(k for k in DEFAULT_EHLO if k != "DSN")
    with SMTPPeer(lmtp=True, unix_path=sock_dir / "nodsn.sock",
                  ehlo=ehlo) as peer:
        success_report(tern_factory, peer)


def success_report(tern_factory, peer):
    tern = lmtp_tern(tern_factory, f"lmtp:unix:{peer.unix_path}")
    data = (f"From: <{SENDER}>\r\nSubject: tell me\r\n\r\nhi\r\n").encode()
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd(f"RCPT TO:<carol@{DOMAIN}> NOTIFY=SUCCESS").expect(250)
        c.data(data).expect(250)
        c.quit()
    got = wait_for(lambda: reports_to(peer, SENDER), 20,
                   what="the success report")
    text = got[0].content.decode("utf-8", "replace")
    assert re.search(r"(?im)^Action: delivered", text), text
    assert not re.search(r"(?im)^Action: relayed", text)

"""
Logs a person can follow (tern(8), LOGGING): every line about a session
begins with its session id and the client's address ("SID client=ADDR:"),
from connect to disconnect; the line of each message it queued names the
queue id, the session id and the client, helo=, from=, size=; every line
about a message after that begins with its queue id (to=, relay=,
delay=, dsn=, status=); refusals say why in words.
"""
import re
import smtplib

from tern_harness import CLIENT, SENDER, wait_for
from test_local_delivery import log_lines, wait_log

SID_RE = r"[0-9A-Z]{14}"


def test_one_message_followed_by_session_id_and_queue_id(tern_factory):
    tern = tern_factory()
    with smtplib.SMTP("127.0.0.1", tern.port, local_hostname=CLIENT) as s:
        s.sendmail(SENDER, ["alice@localhost"],
                   b"Subject: followed\r\n\r\nby its ids\r\n")
        reply = s.noop()
        assert reply[0] == 250
    # the queue id from the message's line, which names its session
    [line] = wait_log(tern, r": session=\S+, client=")
    m = re.search(rf"({SID_RE}): session=({SID_RE}), client=(\S+), "
                  rf"helo=(\S+), from=<([^>]*)>, nrcpt=1, size=\d+", line)
    assert m, line
    qid, sid, client, helo, sender = m.groups()
    assert client.endswith("[127.0.0.1]") and helo == CLIENT
    assert sender == SENDER

    wait_log(tern, rf"{qid}: to=<alice@localhost>.*status=sent")
    wait_log(tern, rf"{sid} client=127\.0\.0\.1: disconnect from")

    by_sid = log_lines(tern, sid)
    assert re.search(rf"{sid} client=127\.0\.0\.1: connect from 127\.0\.0\.1",
                     by_sid[0]), by_sid
    assert "disconnect from" in by_sid[-1], by_sid
    assert any(qid in line for line in by_sid), by_sid

    by_qid = log_lines(tern, qid)
    assert any("session=" + sid in line for line in by_qid), by_qid
    delivered = [line for line in by_qid if "to=<alice@localhost>" in line]
    assert delivered, by_qid
    for key in ("delay=", "dsn=2.", "status=sent"):
        assert key in delivered[0], delivered[0]
    # every line of the queue process about it begins with the queue id
    for line in by_qid:
        if "tern/queue[" in line:
            assert re.search(rf"(debug|info|warn|error): {qid}: ", line), \
                line


def test_every_smtpd_line_of_a_session_carries_its_id(tern_factory):
    """Between connect and disconnect, what the smtpd says about a session
    (here a refused relay and a bad command) begins with the session's
    tag; the refusal is in words."""
    tern = tern_factory()
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd("RCPT TO:<someone@elsewhere.example>").expect(554)
        c.cmd("BOGUS").expect(500)
        c.quit()
    [refusal] = wait_log(tern, r": relay refused to domain "
                         r"elsewhere\.example")
    sid = re.search(rf"({SID_RE}) client=127\.0\.0\.1: relay", refusal)
    assert sid, refusal
    sid = sid.group(1)
    wait_log(tern, rf"{sid} client=127\.0\.0\.1: disconnect from")
    mine = log_lines(tern, sid)
    assert ": connect from 127.0.0.1" in mine[0], mine
    assert ": disconnect from localhost[127.0.0.1]" in mine[-1], mine
    # no line about a client without the tag of its session (the
    # harness's own probe connection is a session too)
    about_clients = [line for line in tern.log_text().splitlines()
                     if "tern/smtpd[" in line and "127.0.0.1" in line]
    assert all(re.search(rf": {SID_RE} client=127\.0\.0\.1: ", line)
               for line in about_clients), about_clients


def test_a_refused_message_says_why_in_words(tern_factory):
    tern = tern_factory(extra=["limits message-size=1K"])
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd("RCPT TO:<alice@localhost>").expect(250)
        c.cmd("DATA").expect(354)
        c.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 40 +
               b".\r\n")
        c.reply().expect(552)
        c.quit()
    [line] = wait_for(lambda: log_lines(tern, r"message refused: ") or None,
                      10, what="the refusal line")
    assert "larger than message-size" in line, line
    assert not re.search(r"refused \(\d+\)", tern.log_text())

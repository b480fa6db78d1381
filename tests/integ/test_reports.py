"""Delivery reports and the retry lifetime (src/report.c, src/bounce.c,
src/sched.c): tern relays mail for remote.test to a scriptable SMTP peer on
loopback (smtp_peer.SMTPPeer) and the sender is a local user, so every
report tern sends lands in a Maildir, where Python's email package (policy
default) reads it as the program it was written for would.

RFC 3461 (NOTIFY, RET, ENVID, ORCPT and passing them on), RFC 3464 (the
message/delivery-status fields), RFC 6522 (multipart/report), RFC 5321
4.5.5 and 6.1 (reports come from <>, are never sent to <>, a failed report
goes to the postmaster once).

Each test reads as a dialogue: what the peer will answer, what we send
tern, then what the sender's (or the postmaster's) Maildir holds, what the
peer saw and what is left in the queue.  "Nothing arrives" is checked
after the queue is empty: a report is committed to the queue before the
message it reports on leaves it (ARCHITECTURE.md "Reports"), so once
spool/queue is empty every report that was ever queued has been delivered.
"""

import email
import email.policy
import email.utils
import re
import time

import pytest

from smtp_peer import DEFAULT_EHLO, SMTPPeer
from tern_harness import (HOSTNAME, free_port, mail_users, maildir_messages,
                          queue_files, queue_id, wait_for, wait_for_mail,
                          wait_queue_empty)

REMOTE = "remote.test"           # relayed to the peer by a route
SENDER = "sender@test.example"   # a local user: reports land in its Maildir
SENDER_BOX = "sender"
POSTMASTER_BOX = "postmaster"
# fast retries and short remote timeouts; each test sets its lifetime
TIMEOUTS = "remote-command=2s remote-data=2s"
# every Diagnostic-Code, Status and Action below is checked against these
STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
NO_DSN_EHLO = tuple(k for k in DEFAULT_EHLO if k != "DSN")


# ---------------------------------------------------------------- helpers

@pytest.fixture
def peer():
    """The remote side for remote.test: every extension, DSN included."""
    with SMTPPeer() as p:
        yield p


def relay(tern_factory, peer_port, retry="first=1s max=1s lifetime=30s",
          extra=(), start=True, **keys):
    """A tern relaying remote.test to 127.0.0.1:peer_port, with the retry
    settings given (extra: more configuration lines, e.g. routes)."""
    cfg = {"relay_domains": REMOTE,
           "route": f"{REMOTE} [127.0.0.1]:{peer_port}",
           "retry": retry, "timeouts": TIMEOUTS}
    cfg.update(keys)
    return tern_factory(start=start, extra=extra, **cfg)


def content(subject, body="Hello, this is the body.\r\n", sender=SENDER):
    """The message a test sends: a small RFC 5322 message, CRLF bytes."""
    return (f"From: <{sender}>\r\n"
            f"To: <someone@{REMOTE}>\r\n"
            f"Subject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test.example>\r\n"
            f"\r\n{body}").encode()


def submit(tern, mail, rcpts, data):
    """One accepted transaction: MAIL FROM:{mail}, RCPT TO:{r} for each r
    (the text after the colon, parameters included), DATA; its queue id."""
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:{mail}").expect(250, "2.1.0")
        for r in rcpts:
            c.cmd(f"RCPT TO:{r}").expect(250, "2.1.5")
        qid = queue_id(c.data(data).expect(250, "2.0.0"))
        c.quit()
    return qid


def log_lines(tern, pattern, qid=None):
    """tern's log lines matching the regex pattern (about qid if given)."""
    rx = re.compile(pattern)
    return [line for line in tern.log_text().splitlines()
            if (qid is None or qid in line) and rx.search(line)]


def wait_log(tern, pattern, qid=None, count=1, timeout=20.0):
    """Wait until count log lines match; return them all."""
    def enough():
        got = log_lines(tern, pattern, qid)
        return got if len(got) >= count else None
    return wait_for(enough, timeout,
                    what=lambda: f"{count} log line(s) /{pattern}/ "
                    f"{'for ' + qid if qid else ''}\n{tern.log_tail()}")


def report_lines(tern, qid, kind=r"\w+"):
    """The log lines saying a report about qid was queued
    ("QID: failure report RID for N recipient(s) to <...>")."""
    return log_lines(tern, rf"{qid}: {kind} report [0-9A-Z]{{14}} for", qid)


def in_queue(home, qid):
    """True while qid's envelope is in spool/queue."""
    return f"{qid}.env" in queue_files(home)


class Report:
    """A delivery status notification as delivered to a Maildir, parsed
    with email.policy.default.  The constructor checks what every report
    must be (RFC 6522, RFC 3464 2.1): a multipart/report of type
    delivery-status from <> with three parts (or two when the original is
    left out), the second a message/delivery-status whose first block has
    Reporting-MTA: dns; test.example."""

    def __init__(self, mail):
        self.raw = mail.raw
        self.msg = email.message_from_bytes(self.raw,
                                            policy=email.policy.default)
        m = self.msg
        assert m["Return-Path"] == "<>", m["Return-Path"]
        assert m.get_content_type() == "multipart/report", self.raw[:600]
        assert m.get_param("report-type") == "delivery-status"
        assert m["Auto-Submitted"] == "auto-replied"
        assert m["From"].addresses[0].addr_spec == f"MAILER-DAEMON@{HOSTNAME}"
        self.parts = list(m.iter_parts())
        assert len(self.parts) in (2, 3), [p.get_content_type()
                                           for p in self.parts]
        self.text = self.parts[0]
        assert self.text.get_content_type() == "text/plain"
        self.status = self.parts[1]
        assert self.status.get_content_type() == "message/delivery-status"
        # the email package parses each block of fields as a message
        blocks = self.status.get_payload()
        assert len(blocks) >= 2, f"no per-recipient block: {blocks}"
        self.fields = blocks[0]
        self.rcpts = blocks[1:]
        assert self.fields["Reporting-MTA"] == f"dns; {HOSTNAME}"
        self.original = self.parts[2] if len(self.parts) == 3 else None
        for b in self.rcpts:
            assert STATUS_RE.match(b["Status"]), b["Status"]

    def recipients(self):
        """The Final-Recipient addresses, in order."""
        out = []
        for b in self.rcpts:
            kind, _, addr = b["Final-Recipient"].partition(";")
            assert kind.strip().lower() == "rfc822", b["Final-Recipient"]
            out.append(addr.strip())
        return out

    def only(self, addr):
        """The one per-recipient block, which must be about addr."""
        assert self.recipients() == [addr], self.recipients()
        return self.rcpts[0]

    def text_and_status(self):
        """The first two parts as text, for "is X mentioned" checks."""
        return self.text.get_content() + self.status.as_string()

    def __repr__(self):
        return self.raw.decode("utf-8", "replace")


def wait_reports(home, box, count=1, timeout=20.0):
    """Wait until box has count messages, and parse them as reports."""
    return [Report(m) for m in wait_for_mail(home, box, count, timeout)]


def to_postmaster(rep):
    """True when the report is addressed to the postmaster.  Only the local
    part is checked: tern writes the bare RFC 5321 "<postmaster>"."""
    return rep.msg["To"].addresses[0].username.lower() == "postmaster"


def diagnostic(block):
    """(type, text) of a block's Diagnostic-Code."""
    kind, _, text = block["Diagnostic-Code"].partition(";")
    return kind.strip().lower(), text.strip()


def date_of(value):
    return email.utils.parsedate_to_datetime(str(value))


# ---------------------------------------------------------------- failures

def test_550_for_one_of_two_recipients_is_reported_to_the_sender(
        tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 <bad@remote.test>: no such user here",
              match="bad@")
    tern = relay(tern_factory, peer.port)
    qid = submit(tern, f"<{SENDER}>",
                 [f"<good@{REMOTE}>", f"<bad@{REMOTE}>"],
                 content("partly refused", body="Body line one.\r\n"))
    [txn] = peer.wait_delivered(1)
    assert txn.accepted == [f"good@{REMOTE}"]

    [rep] = wait_reports(tern.home, SENDER_BOX)
    assert rep.msg["To"].addresses[0].addr_spec == SENDER
    assert rep.fields["X-Tern-Queue-ID"] == qid
    b = rep.only(f"bad@{REMOTE}")
    assert b["Action"] == "failed"
    assert b["Status"] == "5.1.1"
    assert b["Remote-MTA"] == "dns; 127.0.0.1"
    assert diagnostic(b) == ("smtp", "550 5.1.1 <bad@remote.test>: no such "
                                     "user here")
    assert "good@" not in rep.text_and_status()
    # the whole original comes back (no RET: FULL for a failure)
    assert rep.original.get_content_type() == "message/rfc822"
    orig = rep.original.get_content()
    assert orig["Subject"] == "partly refused"
    assert orig.get_content() == "Body line one.\n"
    wait_queue_empty(tern.home)
    assert len(report_lines(tern, qid)) == 1
    assert mail_users(tern.home) == [SENDER_BOX]


def test_ret_hdrs_returns_the_header_section_only(tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 no such user")
    tern = relay(tern_factory, peer.port)
    submit(tern, f"<{SENDER}> RET=HDRS", [f"<bad@{REMOTE}>"],
           content("headers only", body="SECRET-BODY-TEXT\r\n"))
    [rep] = wait_reports(tern.home, SENDER_BOX)
    rep.only(f"bad@{REMOTE}")
    assert rep.original.get_content_type() == "text/rfc822-headers"
    headers = rep.original.get_content()
    assert "Subject: headers only" in headers
    assert "SECRET-BODY-TEXT" not in headers
    assert b"SECRET-BODY-TEXT" not in rep.raw


def test_envid_and_orcpt_come_back(tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 no such user")
    tern = relay(tern_factory, peer.port)
    # xtext (RFC 3461 4): "+2B" is "+"; the report carries them decoded
    submit(tern, f"<{SENDER}> ENVID=QQ314159+2Bx",
           [f"<bad@{REMOTE}> ORCPT=rfc822;Bad+2Btag@{REMOTE}"],
           content("envid and orcpt"))
    [rep] = wait_reports(tern.home, SENDER_BOX)
    assert rep.fields["Original-Envelope-Id"] == "QQ314159+x"
    b = rep.only(f"bad@{REMOTE}")
    assert b["Original-Recipient"] == f"rfc822;Bad+tag@{REMOTE}"
    # the peer offers DSN: both went on with the attempt
    [txn] = peer.transactions
    assert txn.mail_params.get("ENVID") == "QQ314159+2Bx"
    assert txn.rcpts[0][1].get("ORCPT") == f"rfc822;Bad+2Btag@{REMOTE}"


def test_notify_never_sends_no_report(tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 no such user")
    tern = relay(tern_factory, peer.port)
    qid = submit(tern, f"<{SENDER}>", [f"<bad@{REMOTE}> NOTIFY=NEVER"],
                 content("never tell me"))
    wait_log(tern, r"to=<bad@remote\.test>.*status=bounced", qid)
    wait_queue_empty(tern.home)
    time.sleep(1.0)   # a report would have been queued before the removal
    assert maildir_messages(tern.home, SENDER_BOX) == []
    assert mail_users(tern.home) == []
    assert report_lines(tern, qid) == []
    assert queue_files(tern.home) == []


# ---------------------------------------------------------------- successes

def test_notify_success_to_a_peer_without_dsn_is_relayed(tern_factory):
    with SMTPPeer(ehlo=NO_DSN_EHLO) as peer:
        tern = relay(tern_factory, peer.port)
        qid = submit(tern, f"<{SENDER}>",
                     [f"<bob@{REMOTE}> NOTIFY=SUCCESS"],
                     content("tell me it went"))
        [txn] = peer.wait_delivered(1)
        # the peer did not offer DSN: no DSN parameters went to it
        assert txn.rcpts == [(f"bob@{REMOTE}", {})]
        [rep] = wait_reports(tern.home, SENDER_BOX)
        b = rep.only(f"bob@{REMOTE}")
        assert b["Action"] == "relayed"
        assert b["Status"].startswith("2.")
        assert b["Remote-MTA"] == "dns; 127.0.0.1"
        # a success report returns the header section only (RFC 3461 4.3)
        assert rep.original.get_content_type() == "text/rfc822-headers"
        assert "Subject: tell me it went" in rep.original.get_content()
        wait_queue_empty(tern.home)
        assert len(report_lines(tern, qid, "success")) == 1


def test_notify_success_to_a_peer_with_dsn_is_passed_on(tern_factory, peer):
    tern = relay(tern_factory, peer.port)
    qid = submit(tern, f"<{SENDER}>",
                 [f"<bob@{REMOTE}> NOTIFY=SUCCESS "
                  f"ORCPT=rfc822;bob@{REMOTE}"],
                 content("the next hop tells you"))
    [txn] = peer.wait_delivered(1)
    # RFC 3461 5.2.1: the request goes on with the message; the next
    # hop reports, not us
    [(addr, params)] = txn.rcpts
    assert addr == f"bob@{REMOTE}"
    assert params.get("NOTIFY") == "SUCCESS"
    assert params.get("ORCPT") == f"rfc822;bob@{REMOTE}"
    wait_queue_empty(tern.home)
    assert maildir_messages(tern.home, SENDER_BOX) == []
    assert report_lines(tern, qid) == []


def test_notify_success_for_a_local_recipient_is_delivered(tern_factory,
                                                          peer):
    tern = relay(tern_factory, peer.port)
    qid = submit(tern, f"<{SENDER}>",
                 ["<alice@test.example> NOTIFY=SUCCESS"],
                 content("local success"))
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.msg["Subject"] == "local success"
    [rep] = wait_reports(tern.home, SENDER_BOX)
    b = rep.only("alice@test.example")
    assert b["Action"] == "delivered"
    assert b["Status"].startswith("2.")
    assert "Remote-MTA" not in b
    wait_queue_empty(tern.home)
    assert len(report_lines(tern, qid)) == 1
    assert peer.connections == []


# ---------------------------------------------------------------- lifetime

def test_lifetime_expiry_fails_with_the_last_error(tern_factory, peer):
    peer.rule("RCPT", "451 4.3.0 <bob@remote.test>: try again later")
    tern = relay(tern_factory, peer.port,
                 retry="first=1s max=1s lifetime=4s")
    start = time.monotonic()
    qid = submit(tern, f"<{SENDER}>", [f"<bob@{REMOTE}>"],
                 content("never accepted"))
    wait_log(tern, r"status=deferred.*try again later", qid)
    [rep] = wait_reports(tern.home, SENDER_BOX, timeout=15)
    took = time.monotonic() - start
    b = rep.only(f"bob@{REMOTE}")
    assert b["Action"] == "failed"
    assert b["Status"].startswith("4."), b["Status"]
    assert "451 4.3.0 <bob@remote.test>: try again later" in \
        diagnostic(b)[1]
    assert b["Remote-MTA"] == "dns; 127.0.0.1"
    # not before the lifetime, and not long after it (the last attempt is
    # pulled in to end on time)
    assert 3.0 <= took <= 10.0, took
    wait_queue_empty(tern.home, timeout=10)
    assert len(peer.transactions) >= 3, peer.transactions
    assert len(report_lines(tern, qid)) == 1


def test_a_refused_connection_defers_then_expires_into_a_report(
        tern_factory):
    port = free_port()   # nothing listens there
    tern = relay(tern_factory, port, retry="first=1s max=1s lifetime=4s")
    qid = submit(tern, f"<{SENDER}>", [f"<bob@{REMOTE}>"],
                 content("nobody home"))
    line = wait_log(tern, r"to=<bob@remote\.test>.*status=deferred", qid)[0]
    assert "dsn=4.4.1" in line and "Connection refused" in line
    [rep] = wait_reports(tern.home, SENDER_BOX, timeout=15)
    b = rep.only(f"bob@{REMOTE}")
    assert b["Action"] == "failed"
    assert b["Status"].startswith("4."), b["Status"]
    assert "refused" in diagnostic(b)[1].lower(), b["Diagnostic-Code"]
    wait_queue_empty(tern.home, timeout=10)


def test_one_delay_warning_then_delivery_without_more_reports(tern_factory,
                                                              peer):
    peer.rule("RCPT", "451 4.3.0 busy, come back later")
    greylist = peer.rules[-1]
    tern = relay(tern_factory, peer.port,
                 retry="first=1s max=1s lifetime=60s warn=2s")
    qid = submit(tern, f"<{SENDER}>", [f"<bob@{REMOTE}>"],
                 content("slow going", body="The body stays home.\r\n"))
    [rep] = wait_reports(tern.home, SENDER_BOX, timeout=15)
    b = rep.only(f"bob@{REMOTE}")
    assert b["Action"] == "delayed"
    assert b["Status"] == "4.3.0"
    assert diagnostic(b) == ("smtp", "451 4.3.0 busy, come back later")
    until = date_of(b["Will-Retry-Until"])
    arrival = date_of(rep.fields["Arrival-Date"])
    assert abs((until - arrival).total_seconds() - 60) <= 2, (arrival,
                                                              until)
    assert rep.original.get_content_type() == "text/rfc822-headers"
    assert b"The body stays home." not in rep.raw
    # a few more retries: still queued, and still the one warning
    tries = len(log_lines(tern, r"status=deferred", qid))
    wait_log(tern, r"status=deferred", qid, count=tries + 3, timeout=10)
    assert in_queue(tern.home, qid)
    assert len(report_lines(tern, qid, "delay")) == 1
    assert len(maildir_messages(tern.home, SENDER_BOX)) == 1
    # now the peer takes it: delivered, and nothing more is said
    greylist.times = 0
    [txn] = peer.wait_delivered(1, timeout=10)
    assert txn.accepted == [f"bob@{REMOTE}"]
    wait_queue_empty(tern.home)
    assert len(report_lines(tern, qid)) == 1
    assert len(maildir_messages(tern.home, SENDER_BOX)) == 1


# ---------------------------------------------------------------- bounces

def test_an_undeliverable_bounce_goes_to_the_postmaster_once(tern_factory,
                                                             peer):
    peer.rule("RCPT", "550 5.1.1 no such user")
    with SMTPPeer() as sender_mx:
        # the sender's own domain refuses everything, the report too
        sender_mx.rule("RCPT", "550 5.7.1 we take no mail at all")
        tern = relay(tern_factory, peer.port, extra=[
            f"route bounce.example [127.0.0.1]:{sender_mx.port}"])
        qid = submit(tern, "<sender@bounce.example>", [f"<bad@{REMOTE}>"],
                     content("a bounce that bounces",
                             sender="sender@bounce.example"))
        # the report went to the sender's MX, from <>, and was refused
        wait_for(lambda: sender_mx.transactions, 15,
                 what="the report at the sender's MX")
        [sent] = sender_mx.transactions
        assert sent.mail_from == ""
        assert [a for a, _ in sent.rcpts] == ["sender@bounce.example"]
        # so the local postmaster gets the double bounce
        [dbl] = wait_reports(tern.home, POSTMASTER_BOX)
        assert to_postmaster(dbl)
        b = dbl.only("sender@bounce.example")
        assert b["Action"] == "failed"
        assert b["Status"] == "5.7.1"
        assert diagnostic(b) == ("smtp", "550 5.7.1 we take no mail at all")
        # what came back is the first report, with the message inside
        first = dbl.original.get_content()
        assert first.get_content_type() == "multipart/report"
        assert b"a bounce that bounces" in first.as_bytes()
        wait_queue_empty(tern.home)
        time.sleep(1.0)
        # never bounced again: one try at the sender, one double bounce
        assert len(sender_mx.transactions) == 1
        assert mail_users(tern.home) == [POSTMASTER_BOX]
        assert len(maildir_messages(tern.home, POSTMASTER_BOX)) == 1
        assert len(report_lines(tern, qid)) == 1
        assert queue_files(tern.home) == []


def test_a_bounce_is_never_sent_to_the_null_sender(tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 no such user")
    tern = relay(tern_factory, peer.port)
    qid = submit(tern, "<>", [f"<bad@{REMOTE}>"],
                 content("from the null sender", sender="MAILER-DAEMON@"
                         "elsewhere.example"))
    [dbl] = wait_reports(tern.home, POSTMASTER_BOX)
    assert to_postmaster(dbl)
    b = dbl.only(f"bad@{REMOTE}")
    assert b["Action"] == "failed"
    assert diagnostic(b) == ("smtp", "550 5.1.1 no such user")
    wait_queue_empty(tern.home)
    time.sleep(1.0)
    # the peer saw the one attempt, nothing addressed to <>
    assert len(peer.transactions) == 1
    assert all(a for t in peer.transactions for a, _ in t.rcpts)
    assert mail_users(tern.home) == [POSTMASTER_BOX]
    assert len(maildir_messages(tern.home, POSTMASTER_BOX)) == 1
    assert len(report_lines(tern, qid)) == 1


def test_a_double_bounce_that_fails_is_dropped(tern_factory, peer):
    peer.rule("RCPT", "550 5.1.1 no such user")
    tern = relay(tern_factory, peer.port, start=False,
                 retry="first=1s max=1s lifetime=3s")
    # the postmaster's mailbox cannot be made: a file where its directory
    # would be, so every delivery to it fails (temporarily) until the
    # lifetime is over
    (tern.home / "mail").mkdir(parents=True)
    (tern.home / "mail" / POSTMASTER_BOX).write_text("not a directory\n")
    tern.start()
    qid = submit(tern, "<>", [f"<bad@{REMOTE}>"],
                 content("nobody wants this"))
    [report] = wait_log(tern, r"failure report", qid)
    rid = re.search(r"report ([0-9A-Z]{14}) for", report).group(1)
    wait_log(tern, r"to=<postmaster>.*status=deferred", rid)
    # the double bounce fails in its turn: logged and dropped, never
    # reported on again
    wait_log(tern, r"double bounce to <postmaster> failed: dropped", rid,
             timeout=15)
    wait_queue_empty(tern.home)
    time.sleep(1.0)
    assert report_lines(tern, rid) == []
    assert queue_files(tern.home) == []
    assert len(peer.transactions) == 1
    assert mail_users(tern.home) == [POSTMASTER_BOX]

"""Local delivery through `tern serve`: the methods of `mailbox` and
`mailbox-for` (maildir:, mbox:, pipe:) with real readers and MDAs, the
exit codes of a pipe, and a scheduler that keeps going while an MDA is
slow.  Every delivery runs in a child of the delivery process, as the
user of the mail (here the tern user: virtual users)."""

import mailbox
import os
import pwd
import re
import stat
import threading
import time
from pathlib import Path

import pytest

from smtp_peer import SMTPPeer
from tern_harness import (HOSTNAME, SENDER, maildir_messages,
                          wait_for, wait_for_mail, wait_queue_empty)

REMOTE = "remote.test"
RETRY = "first=1s max=1s lifetime=1h"


# ---------------------------------------------------------------- helpers

def shared_dir(rundir, name):
    """A directory the delivery children (the tern user, as root) may
    write in."""
    d = Path(rundir) / name
    d.mkdir(exist_ok=True)
    d.chmod(0o777)
    return d


def script(rundir, name, body):
    """An executable shell script in the run directory."""
    path = Path(rundir) / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def content(subject, body="Hello.\r\n", sender=SENDER):
    return (f"From: <{sender}>\r\nTo: <someone@test.example>\r\n"
            f"Subject: {subject}\r\n\r\n{body}").encode()


def submit(tern, rcpts, data, sender=SENDER):
    """One accepted transaction; its queue id."""
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(sender, rcpts, data)
        c.quit()
    return qid


def log_lines(tern, pattern):
    rx = re.compile(pattern)
    return [line for line in tern.log_text().splitlines() if rx.search(line)]


def wait_log(tern, pattern, count=1, timeout=20.0):
    def enough():
        got = log_lines(tern, pattern)
        return got if len(got) >= count else None
    return wait_for(enough, timeout, what=lambda: f"/{pattern}/ x{count}\n"
                    f"{tern.log_tail()}")


# ---------------------------------------------------------------- mbox

def test_mbox_concurrent_deliveries_read_back(tern_factory, rundir):
    """20 messages delivered at once to one mbox: Python's mailbox module
    reads 20 whole messages, each with its From_ line, the body lines that
    begin with "From " quoted."""
    boxes = shared_dir(rundir, "boxes")
    tern = tern_factory(mailbox=f"mbox:{boxes}/%u",
                        limits="mailbox-concurrency=20")
    body = ("From the start.\r\nplain line\r\n>From quoted once\r\n"
            "From here on.\r\n")
    errors = []

    def one(i):
        try:
            submit(tern, ["pea@test.example"], content(f"m{i}", body))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    wait_queue_empty(tern.home, timeout=60)
    path = boxes / "pea"
    box = mailbox.mbox(str(path))
    msgs = list(box)
    assert len(msgs) == 20
    assert sorted(m["Subject"] for m in msgs) == sorted(
        f"m{i}" for i in range(20))
    for m in msgs:
        assert m.get_from().startswith(SENDER + " ")
        assert m["Return-Path"] == f"<{SENDER}>"
        assert m["Delivered-To"] == "pea@test.example"
        # mboxrd: every line matching >*From gets one more '>'
        assert m.get_payload() == (">From the start.\nplain line\n"
                                   ">>From quoted once\n>From here on.\n")
    raw = path.read_bytes()
    assert b"\r\n" not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---------------------------------------------------------------- pipe

def test_pipe_gets_message_and_environment(tern_factory, rundir):
    """pipe: runs the program without a shell, %u and %d as single
    arguments, the message on stdin with Return-Path and Delivered-To,
    SENDER RECIPIENT USER HOME EXTENSION DOMAIN LOCAL in its environment
    and nothing else of tern's."""
    out = shared_dir(rundir, "out")
    mda = script(rundir, "mda", f'cat > "{out}/$1.msg"\n'
                 f'env > "{out}/$1.env"\nprintf "%s" "$2" > "{out}/$1.arg"\n'
                 f'ulimit -n > "{out}/$1.nofile"\n')
    tern = tern_factory(mailbox=f'"pipe:{mda} %u %d"',
                        env={"TERN_SECRET_VAR": "leak"})
    submit(tern, ["Pea+Lists@test.example"], content("piped"))
    wait_queue_empty(tern.home)
    msg = (out / "pea.msg").read_bytes()
    assert msg.startswith(f"Return-Path: <{SENDER}>\nDelivered-To: "
                          "Pea+Lists@test.example\n".encode())
    assert b"Subject: piped\n" in msg and b"\r\n" not in msg
    env = dict(line.split("=", 1) for line in
               (out / "pea.env").read_text().splitlines() if "=" in line)
    assert env["SENDER"] == SENDER
    assert env["RECIPIENT"] == "Pea+Lists@test.example"
    assert env["USER"] == "pea"
    assert env["EXTENSION"] == "lists"
    assert env["LOCAL"] == "pea+lists"
    assert env["DOMAIN"] == "test.example"
    assert "HOME" in env and "PATH" in env
    assert "TERN_SECRET_VAR" not in env
    assert (out / "pea.arg").read_text() == "test.example"
    # tern raises its own open-file limit for its sessions; a program
    # starts with the usual one (select(2) breaks above 1024)
    assert int((out / "pea.nofile").read_text()) <= 1024
    [line] = log_lines(tern, r"to=<Pea\+Lists@test.example>.*status=sent")
    assert "relay=local" in line


def test_procmail_files_by_subject(tern_factory, rundir):
    """Debian's procmail as the MDA (-m: a recipe file of ours), filing
    into two Maildirs by subject."""
    mail = shared_dir(rundir, "procmail")
    rc = Path(rundir) / "procmailrc"
    rc.write_text(f"MAILDIR={mail}\nDEFAULT={mail}/inbox/\nLOGFILE={mail}/log\n"
                  ":0\n* ^Subject:.*urgent\nurgent/\n")
    rc.chmod(0o644)
    tern = tern_factory(mailbox=f'"pipe:/usr/bin/procmail -m {rc}"')
    submit(tern, ["pea@test.example"], content("this is urgent"))
    submit(tern, ["pea@test.example"], content("just news"))
    wait_queue_empty(tern.home)
    urgent = list((mail / "urgent" / "new").iterdir())
    inbox = list((mail / "inbox" / "new").iterdir())
    assert len(urgent) == 1 and len(inbox) == 1
    assert b"Subject: this is urgent" in urgent[0].read_bytes()
    assert b"Subject: just news" in inbox[0].read_bytes()
    assert urgent[0].read_bytes().startswith(b"Return-Path: <")


def test_pipe_tempfail_then_delivered_once(tern_factory, rundir):
    """An MDA that exits 75 (EX_TEMPFAIL) defers the recipient; the retry
    delivers it, once."""
    out = shared_dir(rundir, "out")
    mda = script(rundir, "mda", f'n=$(cat "{out}/count" 2>/dev/null || '
                 f'echo 0)\necho $((n + 1)) > "{out}/count"\n'
                 f'if [ "$n" = 0 ]; then echo "try later"; exit 75; fi\n'
                 f'cat >> "{out}/got"\n')
    tern = tern_factory(mailbox=f"pipe:{mda}", retry=RETRY)
    submit(tern, ["pea@test.example"], content("twice"))
    wait_log(tern, r"to=<pea@test.example>.*dsn=4\.3\.0, status=deferred.*"
             r"try later")
    wait_queue_empty(tern.home, timeout=30)
    assert (out / "count").read_text().strip() == "2"
    assert (out / "got").read_bytes().count(b"Subject: twice") == 1


def test_pipe_failure_bounces_with_output(tern_factory, rundir):
    """An MDA that exits 1 fails the recipient: the sender (a local user
    here) gets a report that carries the program's output."""
    mda = script(rundir, "mda", 'echo "mda: mailbox frozen for $USER" >&2\n'
                 "exit 1\n")
    tern = tern_factory(mailbox="maildir:$home/mail/%u/Maildir",
                        extra=[f"mailbox-for pea pipe:{mda}"])
    sender = "owner@test.example"
    submit(tern, ["pea@test.example"], content("doomed", sender=sender),
           sender=sender)
    [report] = wait_for_mail(tern.home, "owner")
    text = report.raw.decode("utf-8", "replace")
    assert "mailbox frozen for pea" in text
    assert "5.3.0" in text
    wait_log(tern, r"to=<pea@test.example>.*status=bounced")


# ---------------------------------------------------------------- the loop

def test_slow_mda_does_not_hold_remote_mail(tern_factory, rundir):
    """While an MDA sleeps 10 s on every message, mail to a remote peer
    keeps flowing: every remote message is delivered before the MDA's
    first one returns.  The delivery times are printed."""
    mda = script(rundir, "mda", "sleep 10\ncat > /dev/null\n")
    with SMTPPeer() as peer:
        tern = tern_factory(
            mailbox=f"pipe:{mda}", relay_domains=REMOTE,
            route=f"{REMOTE} [127.0.0.1]:{peer.port}",
            limits="local-concurrency=2 mailbox-concurrency=2")
        start = time.monotonic()
        for i in range(3):
            submit(tern, ["slow@test.example"], content(f"slow {i}"))
        sent = []
        for i in range(10):
            submit(tern, [f"r{i}@{REMOTE}"], content(f"remote {i}"))
            sent.append(time.monotonic())
        peer.wait_delivered(10, timeout=30)
        done = time.monotonic()
        print(f"10 remote messages delivered {done - start:.2f}s after the "
              "first slow local one was accepted")
        assert not log_lines(tern, r"to=<slow@test.example>.*status=sent"), \
            "the MDA returned before the remote mail was through"
        wait_log(tern, r"to=<slow@test.example>.*status=sent", count=3,
                 timeout=40)
        print(f"slow local deliveries done after "
              f"{time.monotonic() - start:.2f}s")


def test_maildir_default_still_idempotent_after_restart(tern_factory):
    """The Maildir name is the same at every attempt: a restart between
    delivery and the envelope update does not make a second copy (the
    scan at start looks in cur/ too)."""
    tern = tern_factory()
    submit(tern, ["pea@test.example"], content("once"))
    [m] = wait_for_mail(tern.home, "pea")
    wait_queue_empty(tern.home)
    assert len(maildir_messages(tern.home, "pea")) == 1
    assert m.msg["Delivered-To"] == "pea@test.example"
    assert HOSTNAME in m.path.name


# ---------------------------------------------------------------- Dovecot

def mail_owner():
    """(uid, gid) tern's delivery children write virtual users' mail as."""
    pw = pwd.getpwnam("tern") if os.geteuid() == 0 else pwd.getpwuid(
        os.geteuid())
    return pw.pw_uid, pw.pw_gid


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_dovecot_reads_what_tern_wrote(tern_factory, dovecot_factory,
                                       rundir, kind):
    """Dovecot, a real mail store, reads back the Maildir and the mbox
    tern wrote: every message, whole, headers and body, From_ lines in the
    body unquoted by nobody but kept as written."""
    boxes = shared_dir(rundir, "boxes")
    if kind == "maildir":
        method = f"maildir:{boxes}/%u/Maildir"
        location = f"maildir:{boxes}/%n/Maildir"
    else:
        method = f"mbox:{boxes}/%u"
        location = f"mbox:~/mail:INBOX={boxes}/%n"
    tern = tern_factory(mailbox=method)
    body = "first line\r\nFrom the other side\r\n.leading dot\r\n"
    for i in range(3):
        submit(tern, ["alice@test.example"], content(f"{kind} {i}", body))
    wait_queue_empty(tern.home)
    uid, gid = mail_owner()
    dc = dovecot_factory(mail_location=location, uid=uid, gid=gid)
    msgs = dc.wait_messages("alice", 3)
    assert len(msgs) == 3
    # delivered side by side (mailbox-concurrency=2): in any order
    subjects = sorted(re.search(rb"\nSubject: ([^\n]*)\n", raw).group(1)
                      for raw in msgs)
    assert subjects == [f"{kind} {i}".encode() for i in range(3)]
    for raw in msgs:
        assert raw.startswith(f"Return-Path: <{SENDER}>\n".encode())
        assert b"Delivered-To: alice@test.example\n" in raw
        want = (b">From the other side" if kind == "mbox"
                else b"\nFrom the other side")
        assert want in raw and b"\n.leading dot\n" in raw


def test_mailbox_concurrency_bounds_one_mailbox(tern_factory, rundir):
    """mailbox-concurrency=1: deliveries to one mailbox never overlap,
    while another mailbox is delivered to beside them."""
    out = shared_dir(rundir, "out")
    mda = script(rundir, "mda", f'echo "start $(date +%s.%N)" >> '
                 f'"{out}/$1"\nsleep 0.3\ncat > /dev/null\n'
                 f'echo "end $(date +%s.%N)" >> "{out}/$1"\n')
    tern = tern_factory(mailbox=f'"pipe:{mda} %u"',
                        limits="local-concurrency=4 mailbox-concurrency=1")
    with tern.connect() as c:
        c.hello()
        for i in range(4):
            c.send_mail(SENDER, ["pea@test.example", "bob@test.example"],
                        content(f"m{i}"))
        c.quit()
    wait_queue_empty(tern.home, timeout=30)
    for user in ("pea", "bob"):
        events = [line.split() for line in
                  (out / user).read_text().splitlines()]
        assert len(events) == 8
        # start, end, start, end...: never two at once
        assert [e[0] for e in events] == ["start", "end"] * 4
    first = lambda u: float((out / u).read_text().split()[1])  # noqa: E731
    assert abs(first("pea") - first("bob")) < 0.3, \
        "the two mailboxes were not delivered to side by side"

"""Durability: a message that got 250 survives kill -9 of every tern
process and is delivered exactly once after restart; what was never
acknowledged is cleaned up; what cannot be read is quarantined; a full
disk is a 452 and leaves nothing behind.

A kill -9 is a crash of tern, not a power cut: the kernel's page cache
survives it, so these tests pass even with every fsync removed.  The power
cuts, which drop what was not flushed and prove that a missing fsync
fails, are test_powercut.py."""

import collections
import contextlib
import itertools
import os
import re
import signal
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tern_harness import (ASAN, CLIENT, SENDER, all_pids, mail_users,
                          maildir_messages, proc_stat,
                          message, queue_files, spool_files, wait_for,
                          wait_for_mail, wait_queue_empty)

BURST = 300 if ASAN else 1000
SENDERS = 6
MSGID_RE = re.compile(rb"^Message-ID: (<[^>]+>)$", re.M)


def delivered_ids(home, user):
    """Message-IDs of everything in USER's Maildir, with repetitions."""
    out = []
    for mail in maildir_messages(home, user):
        m = MSGID_RE.search(mail.raw)
        assert m, f"no Message-ID in {mail.path}"
        out.append(m.group(1).decode())
    return out


def test_kill9_during_a_burst_loses_nothing(tern_factory):
    tern = tern_factory()
    home = tern.home
    numbers = itertools.count()
    acked = {}          # Message-ID -> queue id, for every 250
    sent = set()        # every Message-ID whose DATA was started
    lock = threading.Lock()
    stop = threading.Event()

    def sender():
        try:
            with smtplib.SMTP("127.0.0.1", tern.port, local_hostname=CLIENT,
                              timeout=30) as s:
                s.ehlo()
                while not stop.is_set():
                    i = next(numbers)
                    if i >= BURST:
                        return
                    msgid = f"<burst-{i}@client.example>"
                    s.mail(SENDER)
                    s.rcpt("burst@test.example")
                    with lock:
                        sent.add(msgid)
                    code, text = s.data(message(subject=f"burst {i}",
                                                msgid=msgid))
                    m = re.search(rb"queued as ([0-9A-Z]{14})", text)
                    if code == 250 and m:
                        with lock:
                            acked[msgid] = m.group(1).decode()
        except (OSError, smtplib.SMTPException):
            return  # the server was killed under us: expected

    threads = [threading.Thread(target=sender, daemon=True)
               for _ in range(SENDERS)]
    for t in threads:
        t.start()
    # kill -9 every tern process after about 30% of the burst (a crash:
    # what tern wrote stays in the page cache, fsync'd or not)
    deadline = time.monotonic() + 30
    while len(acked) < BURST * 0.3 and time.monotonic() < deadline and \
            any(t.is_alive() for t in threads):
        time.sleep(0.002)
    tern.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    with lock:
        acked = dict(acked)
    assert acked, "no message was acknowledged before the kill"
    print(f"kill -9 after {len(acked)} of {BURST} acknowledged, "
          f"{len(sent)} started; queue {len(queue_files(home))} files, "
          f"incoming {len(spool_files(home, 'incoming'))}")

    tern.start()
    want = set(acked)
    wait_for(lambda: want <= set(delivered_ids(home, "burst")), 60,
             what=f"all {len(want)} acknowledged messages in the Maildir")
    wait_queue_empty(home, 60)
    ids = delivered_ids(home, "burst")
    twice = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not twice, f"delivered more than once: {twice[:10]}"
    assert want <= set(ids)
    assert set(ids) <= sent, "delivered something never sent"
    assert spool_files(home, "incoming") == []


def test_restart_delivers_what_was_queued(tern_factory):
    tern = tern_factory()
    rcpts = [f"r{i:02d}@test.example" for i in range(20)]
    # hold the delivery process (deliverd, the queue process's child) so
    # that nothing is delivered before the kill; the queue process itself
    # must run: it commits the message before the 250
    def delivery_processes():
        queue = tern.queue_process()
        return [pid for pid in all_pids()
                if queue and (proc_stat(pid) or (None, None))[1] == queue] \
            or None

    held = wait_for(delivery_processes, 10, what="the delivery process")
    for pid in held:
        os.kill(pid, signal.SIGSTOP)
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(SENDER, rcpts, message(msgid="<queued@x.example>"))
    tern.kill9()
    if held:
        assert f"{qid}.env" in queue_files(tern.home)
        assert mail_users(tern.home) == []
    tern.start()
    wait_queue_empty(tern.home, 30)
    for rcpt in rcpts:
        user = rcpt.split("@")[0]
        assert delivered_ids(tern.home, user) == ["<queued@x.example>"]


def test_start_cleans_up_and_quarantines(tern_factory):
    tern = tern_factory()
    home = tern.home
    # a real message gives a real queue id and a spool made by tern
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(home, "alice")
    wait_queue_empty(home)
    assert tern.stop() == 0

    spool = home / "spool"
    owner = (spool / "queue").stat()
    corrupt = qid[:-3] + ("ZZZ" if qid[-3:] != "ZZZ" else "YYY")
    orphan = qid[:-3] + ("ZZY" if qid[-3:] != "ZZY" else "YYZ")
    halfway = qid[:-3] + ("ZYZ" if qid[-3:] != "ZYZ" else "YZY")
    files = {
        # an envelope tern cannot understand: quarantined, never dropped
        spool / "queue" / f"{corrupt}.env":
            b"version 1\nno-such-key at all\n\x00\xff\n",
        spool / "queue" / f"{corrupt}.msg": b"Subject: corrupt\r\n\r\nx\r\n",
        # content without envelope: never acknowledged, removed
        spool / "queue" / f"{orphan}.msg": b"Subject: orphan\r\n\r\nx\r\n",
        # a message being received when tern died: removed
        spool / "incoming" / f"{halfway}.msg": b"Subject: half\r\n\r\nhal",
    }
    for path, data in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        os.chown(path, owner.st_uid, owner.st_gid)
        path.chmod(0o600)

    tern.start()
    wait_for(lambda: not (spool / "queue" / f"{corrupt}.env").exists(), 10,
             what="the corrupt envelope to leave spool/queue")
    wait_for(lambda: any(n.startswith(corrupt)
                         for n in spool_files(home, "quarantine")), 10,
             what="the corrupt envelope in spool/quarantine")
    wait_for(lambda: corrupt in tern.log_text(), 10,
             what=f"a log line naming {corrupt}")
    assert not (spool / "queue" / f"{orphan}.msg").exists()
    assert spool_files(home, "incoming") == []
    assert queue_files(home) == []
    # and tern works as before
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["bob@test.example"], message())
        c.quit()
    wait_for_mail(home, "bob")
    assert [m.msg["Subject"] for m in maildir_messages(home, "alice")] == \
        ["test"]


# ---------------------------------------------------------------- full disk

@contextlib.contextmanager
def small_tmpfs(path, size="2m"):
    """A tmpfs of size mounted at path (made here) for the block; always
    unmounted at the end, lazily if something still holds it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for tern's home needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                    "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(path)])


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def filler(size):
    """About size octets of message: a header and 72-octet lines."""
    head = message(subject="too big", body="")
    lines = max(0, (size - len(head)) // 72)
    return head + b"x" * 70 + b"\r\n" + (b"y" * 70 + b"\r\n") * lines


def send_data(c, content):
    c.cmd("DATA").expect(354)
    c.send(content + b".\r\n")
    return c.reply()


def send_bdat(c, content):
    c.send(f"BDAT {len(content)} LAST\r\n".encode() + content)
    return c.reply()


@pytest.mark.parametrize("send", [send_data, send_bdat], ids=["DATA", "BDAT"])
@pytest.mark.parametrize("fits", ["content", "envelope"])
def test_full_disk_at_end_of_message_is_452(tern_factory, rundir, send, fits):
    """A spool out of space answers the end of the message 452 4.3.1
    (RFC 3463: insufficient system storage), wherever the file system
    says so: at the content's write, or - tmpfs takes the content to its
    last page - at the envelope written when the message is committed.
    The session and the server go on; nothing of the message stays."""
    with small_tmpfs(Path(rundir) / "small") as home:
        # spool-reserve=0: the check at MAIL must not answer first
        tern = tern_factory(home=home, limits="spool-reserve=0")
        try:
            c = tern.connect()
            c.hello()
            c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
            c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
            free = free_bytes(home)
            if fits == "content":
                content = filler(free + 256 * 1024)
            else:
                # with the Received: line (some 250 octets) the content
                # takes the last free page, and the envelope finds none
                content = filler(free - 1024)
                assert len(content) + 1024 > free - 4096
            send(c, content).expect(452, "4.3.1")
            assert spool_files(home, "incoming") == []
            assert queue_files(home) == []
            c.cmd("RSET").expect(250)
            # the failed message's space is free again: a small one fits
            qid = c.send_mail(SENDER, ["alice@test.example"],
                              message(subject="small"))
            c.quit()
            [mail] = wait_for_mail(home, "alice")
            assert mail.msg["Subject"] == "small"
            assert qid in mail.raw.decode("ascii", "replace")
            wait_queue_empty(home)
            assert spool_files(home, "incoming") == []
        finally:
            tern.stop()


def incoming(home):
    return sorted(os.listdir(Path(home) / "spool" / "incoming"))


def mail_flows(tern, subject):
    """A message to alice, the only one she has, arrives."""
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message(subject=subject))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert subject in mail.raw.decode()


def test_an_smtpd_killed_during_a_message_leaves_nothing_behind(
        tern_factory):
    """An smtpd killed in the middle of a message leaves the message's
    file in incoming/, which the next smtpd does not know: the queue
    process removes it, while tern runs and takes mail, once nothing has
    changed it for twice timeouts message= (here 2 s); not sooner."""
    tern = tern_factory(timeouts="message=2s")
    c = tern.connect()
    c.hello()
    c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
    c.cmd("RCPT TO:<alice@test.example>").expect(250)
    c.cmd("DATA").expect(354)
    c.send(b"Subject: cut short\r\n\r\nthe first li")
    [name] = wait_for(lambda: incoming(tern.home), 5,
                      what="the message's file in incoming/")
    smtpd = wait_for(tern.smtpd_process, 5, what="the smtpd")
    os.kill(smtpd, signal.SIGKILL)
    killed = time.monotonic()
    c.close()
    wait_for(lambda: tern.smtpd_process() not in (None, smtpd), 10,
             what="a new smtpd")
    mail_flows(tern, "meanwhile")
    wait_for(lambda: name not in incoming(tern.home), 20,
             what=f"incoming/{name} removed")
    assert time.monotonic() - killed >= 3, "removed before it was 4 s old"
    assert incoming(tern.home) == []
    assert ("removed 1 file(s) from incoming/ unchanged for 4s"
            in tern.log_text())
    assert queue_files(tern.home) == []


def test_a_crash_while_the_queue_process_commits(tern_factory):
    """The smtpd writes and syncs a message in incoming/, then waits for
    the queue process to commit it (here stopped): no 250 is sent before,
    and after kill -9 of everything the files in incoming/ -- complete,
    never acknowledged -- are removed at start, nothing is queued or
    delivered, and mail flows again."""
    tern = tern_factory()
    queue = wait_for(tern.queue_process, 5, what="the queue process")
    os.kill(queue, signal.SIGSTOP)
    killed = False
    try:
        c = tern.connect(timeout=3)
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd("RCPT TO:<alice@test.example>").expect(250)
        c.cmd("DATA").expect(354)
        c.send(message(subject="never acknowledged") + b".\r\n")
        names = wait_for(lambda: (lambda n: n if len(n) == 2 else None)(
            incoming(tern.home)), 10, what="content and envelope written "
            "in incoming/")
        assert {n.split(".")[1] for n in names} == {"msg", "env"}, names
        with pytest.raises(AssertionError):
            c.reply(timeout=2)  # no answer while the commit waits
        assert queue_files(tern.home) == []
        # kill -9 while it is still stopped: it never commits
        tern.kill9()
        killed = True
    finally:
        if not killed:
            os.kill(queue, signal.SIGCONT)
    c.close()
    tern.start()
    assert incoming(tern.home) == []
    assert queue_files(tern.home) == []
    assert "removed 2 unfinished file(s) from incoming/" in tern.log_text()
    mail_flows(tern, "after the crash")

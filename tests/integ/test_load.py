"""Size and concurrency: a 20 MB message, 100 recipients, 200 clients at
once, and clients that vanish in the middle of a message.  Every loop is
bounded in count and time."""

import os
import random
import re
import smtplib
import socket
import threading
import time

import pytest

from tern_harness import (ASAN, CLIENT, SENDER, mail_users, maildir_messages,
                          message, proc_status, queue_files, spool_files,
                          wait_for, wait_for_mail, wait_queue_empty)

CLIENTS = 100 if ASAN else 200


def big_message(size):
    """About size octets of CRLF text: numbered lines of varied length,
    some starting with a dot (stuffed on the wire), some empty."""
    rnd = random.Random(20)
    pool = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 .,-")
                  for _ in range(rnd.randint(0, 70))) for _ in range(97)]
    lines = [b"From: <sender@remote.example>", b"To: <alice@test.example>",
             b"Subject: big", b"Message-ID: <big@client.example>", b""]
    total = 0
    i = 0
    while total < size:
        if i % 1000 == 999:
            line = b""
        elif i % 500 == 7:
            line = b".%08d dot line" % i
        else:
            line = b"%08d " % i + pool[i % 97]
        lines.append(line)
        total += len(line) + 2
        i += 1
    return b"\r\n".join(lines) + b"\r\n"


def test_20mb_message_arrives_byte_identical(tern_factory):
    tern = tern_factory(limits="message-size=64M")
    content = big_message(20 * 1024 * 1024)
    with tern.smtplib(timeout=120) as s:
        s.mail(SENDER)
        s.rcpt("alice@test.example")
        code, text = s.data(content)
        assert code == 250, text
        qid = re.search(rb"queued as ([0-9A-Z]{14})", text).group(1).decode()
    [mail] = wait_for_mail(tern.home, "alice", timeout=60)
    wait_queue_empty(tern.home, 60)
    want = content.replace(b"\r\n", b"\n")
    head = mail.raw[:len(mail.raw) - len(want)]
    assert re.fullmatch(
        rb"Return-Path: <sender@remote\.example>\n"
        rb"Delivered-To: alice@test\.example\n"
        rb"Received: from [^\n]+\n(?:\t[^\n]+\n)+", head), head[:600]
    assert qid.encode() in head
    if not mail.raw.endswith(want):
        got = mail.raw[len(head):]
        at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                  min(len(got), len(want)))
        pytest.fail(f"content differs at octet {at} (sizes {len(got)} and "
                    f"{len(want)}): got {got[at - 40:at + 40]!r}, want "
                    f"{want[at - 40:at + 40]!r}")


def test_100_recipients_in_one_message(tern):
    rcpts = [f"u{i:03d}@test.example" for i in range(100)]
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(SENDER, rcpts, message(msgid="<many@client.example>"))
        c.quit()
    wait_queue_empty(tern.home, 60)
    assert mail_users(tern.home) == [f"u{i:03d}" for i in range(100)]
    for i in range(100):
        [mail] = maildir_messages(tern.home, f"u{i:03d}")
        assert mail.msg["Message-ID"] == "<many@client.example>"
        assert mail.msg["Delivered-To"] == f"u{i:03d}@test.example"
        [rcv] = mail.received()
        assert rcv["qid"] == qid and rcv["rcpt"] is None


def test_many_clients_at_once(tern_factory):
    # all from 127.0.0.1: one client as far as client-sessions= goes
    tern = tern_factory(limits="sessions=1000 client-sessions=0")
    # everyone connects and says EHLO, then all send together
    barrier = threading.Barrier(CLIENTS, timeout=60)
    errors = []

    def client(i):
        try:
            with smtplib.SMTP("127.0.0.1", tern.port, local_hostname=CLIENT,
                              timeout=60) as s:
                s.ehlo()
                barrier.wait()
                s.sendmail(SENDER, ["crowd@test.example"],
                           message(msgid=f"<crowd-{i}@client.example>"))
        except (OSError, smtplib.SMTPException,
                threading.BrokenBarrierError) as e:
            errors.append(f"client {i}: {e!r}")
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 180
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still running"
    assert not errors, errors[:5]
    # local delivery of small messages: seconds, not minutes
    mails = wait_for_mail(tern.home, "crowd", CLIENTS, timeout=30)
    ids = sorted(m.msg["Message-ID"] for m in mails)
    assert ids == sorted(f"<crowd-{i}@client.example>" for i in range(CLIENTS))


# ---------------------------------------------------------------- vanishing

def drop_mid_data(c):
    c.cmd("DATA").expect(354)
    c.send(b"Subject: half\r\n\r\n" + (b"h" * 70 + b"\r\n") * 700)


def drop_mid_bdat_chunk(c):
    c.send(b"BDAT 100000 LAST\r\nSubject: half\r\n\r\n" + b"h" * 50000)


def drop_between_bdat_chunks(c):
    chunk = b"Subject: half\r\n\r\n" + b"h" * 1000
    c.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
    c.reply().expect(250, "2.0.0")


@pytest.mark.parametrize("drop", [drop_mid_data, drop_mid_bdat_chunk,
                                  drop_between_bdat_chunks],
                         ids=["mid-DATA", "mid-BDAT-chunk",
                              "between-BDAT-chunks"])
def test_client_gone_mid_message_leaves_nothing(tern, drop):
    home = tern.home
    c = tern.connect()
    c.hello()
    c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
    c.cmd("RCPT TO:<dropped@test.example>").expect(250, "2.1.5")
    drop(c)
    # give the message time to reach the spool (a file in incoming/ is
    # an implementation detail: its absence is not an error)
    deadline = time.monotonic() + 2
    while not spool_files(home, "incoming") and time.monotonic() < deadline:
        time.sleep(0.05)
    c.close()
    wait_for(lambda: not spool_files(home, "incoming") and
             not queue_files(home), 10,
             what="spool/incoming and spool/queue to be empty")
    # the server keeps working
    with tern.connect() as c2:
        c2.hello()
        c2.send_mail(SENDER, ["alice@test.example"], message())
        c2.quit()
    wait_for_mail(home, "alice")
    wait_queue_empty(home)
    assert mail_users(home) == ["alice"]


def children_rss_kib(tern):
    """VmRSS of tern's children together, KiB."""
    total = 0
    for pid in tern.children():
        total += int(proc_status(pid).get("VmRSS", "0 kB").split()[0])
    return total


def test_client_that_does_not_read_its_replies_is_held_back(tern):
    """A client pipelining commands without reading the replies: once the
    unread replies pass a bound, tern takes no more of its commands
    instead of buffering replies without limit (what the kernel's socket
    buffers hold is not tern's memory); once the client reads, every reply
    comes, in order, and the session goes on."""
    # 6 MB of NOOPs, 14 MB of replies
    n = 200_000 if ASAN else 1_000_000
    c = tern.connect()
    c.hello()
    before = children_rss_kib(tern)
    sent = [0]
    done = threading.Event()
    chunk = b"NOOP\r\n" * 1000

    def sender():
        try:
            for _ in range(n // 1000):
                c.sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass
        finally:
            done.set()

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    # wait until the sender is done or stalled (nothing sent for 1 s)
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done.is_set():
        if sent[0] != last:
            last, since = sent[0], time.monotonic()
        elif time.monotonic() - since > 1.0:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    grown = children_rss_kib(tern) - before
    # the replies tern made so far beyond what the socket took would be
    # megabytes; the bound is 64 KiB of replies and 64 KiB read ahead
    # (not under AddressSanitizer, whose quarantine keeps freed memory)
    if not ASAN:
        assert grown < 4096, f"tern's memory grew by {grown} KiB"
    # now read: every reply arrives, in order
    got = 0
    c.sock.settimeout(30)
    buf = b""
    while got < n:
        data = c.sock.recv(1 << 20)
        assert data, f"connection closed after {got} replies"
        buf += data
        lines = buf.split(b"\r\n")
        buf = lines.pop()
        for line in lines:
            assert line == b"250 2.0.0 Ok", line
        got += len(lines)
    t.join(30)
    assert done.is_set() and sent[0] == n * 6
    c.cmd("NOOP").expect(250, "2.0.0")
    c.cmd("QUIT").expect(221)
    c.close()


# ---------------------------------------------------------------- open files

# more connections than the smtpd's descriptors hold under a limit of 256
FLOOD = 400
RLIMIT_LINE = re.compile(r"^Max open files\s+(\d+)\s+(\d+)\s+files", re.M)


def cpu_seconds(pid):
    """User and system CPU time of pid (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # utime and stime are fields 14 and 15 of proc(5); the command name,
    # field 2, is in parentheses and may hold spaces
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nofile_limits(pid):
    """(soft, hard) RLIMIT_NOFILE of pid, from /proc/PID/limits."""
    with open(f"/proc/{pid}/limits") as f:
        m = RLIMIT_LINE.search(f.read())
    assert m, f"no open-files line in /proc/{pid}/limits"
    return int(m.group(1)), int(m.group(2))


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def log_lines(tern, start=0):
    """The lines of tern's log from octet start on (read as it is: a
    flooded log is counted, not kept), and the octet where it ended."""
    n = 0
    with open(tern.log_path, "rb") as f:
        f.seek(start)
        for _ in f:
            n += 1
        return n, f.tell()


def first_line(sock, deadline):
    """The first line the server sends on sock (b"" when it closes
    without one, None when nothing came by the deadline)."""
    buf = b""
    while b"\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return buf
        buf += chunk
    return buf.split(b"\r\n", 1)[0]


def test_out_of_descriptors_refuses_without_spinning(tern_factory):
    """At the open-file limit (here 256, soft and hard, so tern cannot
    raise it) accept(2) fails with EMFILE while connections wait: the
    smtpd must neither spin on its listener nor flood the log.  A client
    beyond the limit is answered 421 4.3.2 or waits; once sessions end a
    new client is served as usual."""
    # every client is 127.0.0.1: no client-sessions= here
    tern = tern_factory(nofile=(256, 256), limits="client-sessions=0")
    smtpd = wait_for(tern.smtpd_process, 10, what="the smtpd process")
    assert nofile_limits(smtpd) == (256, 256)
    flood = []
    try:
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", tern.port),
                                                  timeout=10))
        # the smtpd takes what it can: sessions, refusals, then quiet
        time.sleep(1.0)
        _, log_at = log_lines(tern)
        cpu_before = cpu_seconds(smtpd)
        time.sleep(5.0)
        cpu = cpu_seconds(smtpd) - cpu_before
        lines, _ = log_lines(tern, log_at)
        assert cpu < 1.0, f"the smtpd used {cpu:.2f}s of CPU in 5s"
        assert lines < 50, f"{lines} log lines in 5s of waiting clients"
        with open(tern.log_path, "rb") as f:
            about = sum(1 for line in f if b"accept" in line)
        assert about < 50, f"{about} log lines about accept"
        # each client beyond the limit was told, or waits its turn
        deadline = time.monotonic() + 10
        firsts = [first_line(s, deadline) for s in flood]
        greeted = sum(1 for f in firsts if f and f.startswith(b"220 "))
        refused = sum(1 for f in firsts if f and f.startswith(b"421 4.3.2"))
        odd = [f for f in firsts if f is not None and
               not f.startswith((b"220 ", b"421 4.3.2 "))]
        assert not odd, odd[:5]
        assert 100 < greeted < 256, (greeted, refused)
    finally:
        for s in flood:
            s.close()
    # the sessions end and their descriptors are free again
    wait_for(lambda: open_fds(smtpd) < 64, 20,
             what=lambda: f"the smtpd to close its sessions "
             f"({open_fds(smtpd)} descriptors open)")
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["after@test.example"], message(subject="after"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "after")
    assert mail.msg["Subject"] == "after"
    assert tern.smtpd_process() == smtpd, "the smtpd was restarted"


def test_open_file_limit_raised_for_sessions(tern_factory):
    """tern raises its soft open-file limit toward what `limits
    sessions=` needs (a socket and a queue file per session, and some to
    spare), as far as the hard limit allows, and says what fits; when the
    hard limit is too low it says so."""
    roomy = tern_factory(nofile=(256, 8192), limits="sessions=1000")
    smtpd = wait_for(roomy.smtpd_process, 10, what="the smtpd process")
    soft, hard = nofile_limits(smtpd)
    assert hard == 8192
    assert 2 * 1000 <= soft <= hard
    m = wait_for(lambda: re.search(
        rf"open files: soft limit {soft}\b.*enough for about (\d+) "
        rf"sessions", roomy.log_text()), 5, what="the open-files line")
    assert int(m.group(1)) >= 1000
    assert "warning: open files" not in roomy.log_text()

    tight = tern_factory(nofile=(256, 600), limits="sessions=1000")
    smtpd = wait_for(tight.smtpd_process, 10, what="the smtpd process")
    assert nofile_limits(smtpd) == (600, 600)
    m = wait_for(lambda: re.search(
        r"warning: open files: .*sessions=1000.* about (\d+) sessions",
        tight.log_text()), 5, what="the open-files warning")
    assert 100 < int(m.group(1)) < 300
    # the queue process has the same limit (the master raised it)
    assert nofile_limits(tight.queue_process()) == (600, 600)

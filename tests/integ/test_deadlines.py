"""Deadlines of an inbound session (tern.conf(5): timeouts command= data=
message=, limits data-rate=): a command must be complete within the
command timeout of the server's previous reply, however its bytes trickle
in; a message must arrive at a minimum rate and within an overall
deadline.  A client past a deadline gets 421 4.4.2 and is disconnected,
nothing of its message is queued, and the server goes on serving others.

Every test here is bounded to a few seconds of trickling."""

import re
import threading
import time

import pytest

from tern_harness import (SENDER, ConnectionClosed, mail_users, message,
                          queue_files, queue_id, spool_files, wait_for,
                          wait_for_mail)

# the 421 must come within about 3-4 s of a 3 s deadline
EARLY, LATE = 2.5, 4.8


def trickle(c, data, interval, limit=10.0):
    """Send data one byte every interval seconds, watching for a reply in
    between; stop at the first byte of a reply, when the server closed, or
    after limit seconds.  Returns the number of bytes sent."""
    deadline = time.monotonic() + limit
    for i in range(len(data)):
        try:
            c.send(data[i:i + 1])
        except OSError:  # closed by the server: what it said is still read
            return i
        if not c.quiet(interval) or time.monotonic() >= deadline:
            return i + 1
    return len(data)


def paced(c, data, block, interval, limit=10.0):
    """Send data in blocks of `block` bytes every interval seconds (a fair
    pace), stopping early when the server says something or closes.
    Returns the bytes sent."""
    deadline = time.monotonic() + limit
    sent = 0
    while sent < len(data) and time.monotonic() < deadline:
        try:
            c.send(data[sent:sent + block])
        except OSError:
            break
        sent += block
        if sent < len(data) and not c.quiet(interval):
            break
    return min(sent, len(data))


def dropped(c, timeout=6.0):
    """Read what the server says until it closes: exactly one 421 4.4.2."""
    replies = c.replies_until_close(timeout=timeout)
    assert [(r.code, r.enhanced) for r in replies] == [(421, "4.4.2")], \
        replies
    assert "timeout" in replies[0].text, replies
    return replies[0]


def assert_nothing_kept(tern):
    """A dropped message leaves nothing: not in incoming/, not queued,
    not delivered."""
    wait_for(lambda: not spool_files(tern.home, "incoming"), 10,
             what="an empty spool/incoming")
    assert queue_files(tern.home) == []
    assert mail_users(tern.home) == []


def log_line(tern, pattern):
    """The server's log has a line matching pattern (waited for)."""
    rx = re.compile(pattern)
    return wait_for(lambda: next((ln for ln in tern.log_text().splitlines()
                                  if rx.search(ln)), None), 5,
                    what=lambda: f"a log line /{pattern}/\n"
                    f"{tern.log_tail(15)}")


def open_data(c):
    c.hello()
    c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
    c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
    c.cmd("DATA").expect(354)


def send_one(tern, user="bob"):
    """Another client's whole transaction, which must succeed."""
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(SENDER, [f"{user}@test.example"], message())
        c.quit()
    return qid


# ---------------------------------------------------------------- commands

@pytest.mark.parametrize("before, line", [
    # completed only after 5 s, two past the deadline
    ("EHLO", b"NOOP\r\n"),
    # never completed at all
    ("EHLO", b"NOOP and then some more words that never end"),
    # the first command is counted from the greeting
    ("greeting", b"EHLO slow.example\r\n"),
], ids=["completed-late", "never-completed", "first-command"])
def test_command_trickled_byte_by_byte_meets_its_deadline(tern_factory,
                                                          before, line):
    tern = tern_factory(timeouts="command=3s")
    with tern.connect() as c:
        if before == "EHLO":
            c.hello()
        else:
            c.greeting()
        t0 = time.monotonic()
        trickle(c, line, 1.0)
        r = dropped(c)
        took = time.monotonic() - t0
    assert EARLY <= took <= LATE, f"421 after {took:.1f}s: {r}"
    log_line(tern, r"127\.0\.0\.1: timeout \(command=3s\)")


def test_commands_each_in_time_keep_the_session(tern_factory):
    # the deadline runs from the previous reply, not from the connection
    tern = tern_factory(timeouts="command=3s")
    with tern.connect() as c:
        c.hello()
        t0 = time.monotonic()
        for _ in range(3):
            assert c.quiet(1.8)
            c.send(b"NO")
            assert c.quiet(0.4)
            c.send(b"OP\r\n")
            c.reply().expect(250, "2.0.0")
        assert time.monotonic() - t0 > 6
        c.quit()


def test_many_tricklers_are_all_dropped_and_others_served(tern_factory):
    """The issue's case in small: a crowd of clients each sending a byte
    now and then are all dropped at their deadline, while a well-behaved
    client is served meanwhile and afterwards."""
    tern = tern_factory(timeouts="command=3s")
    n = 20
    clients = [tern.connect() for _ in range(n)]
    try:
        for c in clients:
            c.hello()
        t0 = time.monotonic()
        outcome = [None] * n

        def run(i):
            c = clients[i]
            trickle(c, b"NOOP and more, never ending", 0.5)
            try:
                outcome[i] = (dropped(c), time.monotonic() - t0)
            except AssertionError as e:
                outcome[i] = (e, time.monotonic() - t0)

        threads = [threading.Thread(target=run, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        send_one(tern, "bob")
        for t in threads:
            t.join(20)
        for i, (r, took) in enumerate(outcome):
            assert not isinstance(r, Exception), f"client {i}: {r}"
            assert EARLY <= took <= LATE + 1, f"client {i}: 421 after {took}"
    finally:
        for c in clients:
            c.close()
    send_one(tern, "carol")
    wait_for_mail(tern.home, "bob")
    wait_for_mail(tern.home, "carol")


# ---------------------------------------------------------------- DATA

def test_data_trickled_below_the_rate_is_dropped(tern_factory):
    # 2 octets a second against a floor of 100, over a 3 s window
    tern = tern_factory(timeouts="command=3s data=3s",
                        limits="data-rate=100")
    with tern.connect() as c:
        open_data(c)
        t0 = time.monotonic()
        trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 40, 0.5)
        r = dropped(c)
        took = time.monotonic() - t0
    assert EARLY <= took <= LATE, f"421 after {took:.1f}s: {r}"
    log_line(tern, r"127\.0\.0\.1: timeout \(data-rate=100\)")
    assert_nothing_kept(tern)
    send_one(tern)
    wait_for_mail(tern.home, "bob")


def test_bdat_chunk_trickled_below_the_rate_is_dropped(tern_factory):
    tern = tern_factory(timeouts="command=3s data=3s",
                        limits="data-rate=100")
    chunk = b"Subject: slow\r\n\r\n" + b"x" * 40
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.send(f"BDAT {len(chunk)} LAST\r\n".encode())
        t0 = time.monotonic()
        trickle(c, chunk, 0.5)
        r = dropped(c)
        took = time.monotonic() - t0
    assert EARLY <= took <= LATE, f"421 after {took:.1f}s: {r}"
    log_line(tern, r"127\.0\.0\.1: timeout \(data-rate=100\)")
    assert_nothing_kept(tern)


def test_tiny_bdat_chunks_each_in_time_are_held_to_the_rate(tern_factory):
    # each BDAT command comes within the command timeout, but the message
    # as a whole crawls: the rate counts over the whole transfer
    tern = tern_factory(timeouts="command=3s data=3s",
                        limits="data-rate=100")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        t0 = time.monotonic()
        replies = []
        try:
            for _ in range(8):
                c.send(b"BDAT 1\r\nx")
                r = c.reply()
                replies.append(r)
                if r.code != 250:
                    break
                if not c.quiet(1.0):
                    break
        except (ConnectionClosed, OSError):
            pass
        rest = c.replies_until_close(timeout=6)
        took = time.monotonic() - t0
    final = (replies + rest)[-1]
    assert (final.code, final.enhanced) == (421, "4.4.2"), replies + rest
    assert EARLY <= took <= LATE, f"421 after {took:.1f}s"
    assert_nothing_kept(tern)


def test_data_at_a_fair_pace_outlasts_the_command_timeout(tern_factory):
    # 5 s of DATA at 800 octets a second: longer than command= and data=,
    # faster than data-rate=
    tern = tern_factory(timeouts="command=2s data=2s",
                        limits="data-rate=100")
    body = ("".join(f"line {i:04d} of a message sent at a fair pace\r\n"
                    for i in range(80)))
    content = message(subject="paced", body=body)
    with tern.connect() as c:
        open_data(c)
        t0 = time.monotonic()
        assert paced(c, content, 200, 0.25, limit=15) == len(content)
        c.send(b".\r\n")
        qid = queue_id(c.reply().expect(250, "2.0.0"))
        assert time.monotonic() - t0 > 4
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.msg["Subject"] == "paced" and qid


def test_message_past_its_overall_deadline_is_dropped(tern_factory):
    # a fair pace, but the message takes longer than message=
    tern = tern_factory(timeouts="command=3s data=3s message=4s",
                        limits="data-rate=100")
    content = message(subject="long", body=("z" * 70 + "\r\n") * 56)
    with tern.connect() as c:
        open_data(c)
        t0 = time.monotonic()
        paced(c, content, 200, 0.25, limit=10)
        r = dropped(c)
        took = time.monotonic() - t0
    assert 3.5 <= took <= 5.8, f"421 after {took:.1f}s: {r}"
    log_line(tern, r"127\.0\.0\.1: timeout \(message=4s\)")
    assert_nothing_kept(tern)

"""Deadlines of an inbound session (tern.conf(5): timeouts command=): a
command must be complete within the command timeout of the server's
previous reply, however its bytes trickle in.  A client past a deadline
gets 421 4.4.2 and is disconnected, and the server goes on serving others.

Every test here is bounded to a few seconds of trickling."""

import re
import threading
import time

import pytest

from tern_harness import SENDER, message, wait_for, wait_for_mail

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


def dropped(c, timeout=6.0):
    """Read what the server says until it closes: exactly one 421 4.4.2."""
    replies = c.replies_until_close(timeout=timeout)
    assert [(r.code, r.enhanced) for r in replies] == [(421, "4.4.2")], \
        replies
    assert "timeout" in replies[0].text, replies
    return replies[0]


def log_line(tern, pattern):
    """The server's log has a line matching pattern (waited for)."""
    rx = re.compile(pattern)
    return wait_for(lambda: next((ln for ln in tern.log_text().splitlines()
                                  if rx.search(ln)), None), 5,
                    what=lambda: f"a log line /{pattern}/\n"
                    f"{tern.log_tail(15)}")


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

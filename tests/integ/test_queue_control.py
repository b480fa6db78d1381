"""Queue control (src/control.c, src/control_client.c, src/control_proto.c,
tern(8) "queue" and "status"): a real queue whose mail for remote.test is
held by a scriptable SMTP peer that answers 451, and the effect of every
verb checked where it shows: the peer gets the mail (flush, release), gets
nothing more (hold, delete), the sender's Maildir gets the report (bounce),
the spool's files (delete, hold in the envelope), and `--json` parsed and
checked against the schema tern(8) documents.  Bad requests get a
sentence and an exit status from sysexits.h, and the server goes on.
"""

import json
import os
import pwd
import signal
import socket
import subprocess
import time

import pytest

from smtp_peer import SMTPPeer
from tern_harness import (TERN_BIN, clean_env, queue_files, wait_for,
                          wait_queue_empty)
from test_reports import (REMOTE, SENDER, SENDER_BOX, content, diagnostic,
                          relay, submit, wait_log, wait_reports)

# sysexits.h
EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE = 64, 65, 66, 69
EX_TEMPFAIL, EX_NOPERM = 75, 77

# a retry far away: only the verbs make anything happen
SLOW = "first=1h max=1h lifetime=5d"
# retries every second: hold must stop them
FAST = "first=1s max=1s lifetime=1h"

# the documented schema of `tern queue --json` (tern(8)): key -> types
MSG_SCHEMA = {"id": (str,), "arrival": (int,), "size": (int,),
              "sender": (str,), "state": (str,), "held": (bool,),
              "next_try": (int, type(None)), "recipients": (list,)}
RCPT_SCHEMA = {"address": (str,), "state": (str,), "tries": (int,),
               "next_try": (int, type(None)), "status": (str, type(None)),
               "last_error": (str, type(None))}
MSG_STATES = {"pending", "active", "deferred", "held", "done"}
RCPT_STATES = {"pending", "deferred", "delivered", "failed"}
STATUS_SCHEMA = {
    "started": int, "uptime": int,
    "sessions": {"open": int, "total": int},
    "queue": {"messages": int, "pending": int, "active": int,
              "deferred": int, "held": int, "done": int, "recipients": int},
    "counters": {"received": int, "delivered": int, "deferred": int,
                 "bounced": int},
}


# ---------------------------------------------------------------- helpers

@pytest.fixture
def peer():
    """The remote side for remote.test: 451 to every recipient until the
    test clears its rules."""
    with SMTPPeer() as p:
        p.rule("RCPT", "451 4.3.0 <rcpt>: mailbox busy, try later")
        yield p


def accept_all(peer):
    """From now on the peer takes every recipient."""
    with peer._lock:
        peer.rules.clear()


def ctl(tern, *args, user=None, timeout=60):
    """Run `tern ARGS -c CONF` (as user when given); CompletedProcess."""
    pre = None
    if user is not None:
        pw = pwd.getpwnam(user)

        def pre():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    return subprocess.run([TERN_BIN, *args, "-c", str(tern.conf_path)],
                          capture_output=True, text=True, timeout=timeout,
                          env=clean_env(), stdin=subprocess.DEVNULL,
                          preexec_fn=pre)


def ctl_ok(tern, *args):
    r = ctl(tern, *args)
    assert r.returncode == 0, (args, r.returncode, r.stderr)
    assert r.stderr == "", r.stderr
    return r.stdout


def ctl_retry(tern, *args, tries=40):
    """A verb that is refused while the message is being tried (75): try
    again, a bounded number of times."""
    for _ in range(tries):
        r = ctl(tern, *args)
        if r.returncode != EX_TEMPFAIL:
            return r
        time.sleep(0.25)
    raise AssertionError(f"{args}: still busy: {r.stderr}")


def deferred_queue(tern_factory, peer, n=1, retry=SLOW, rcpts=None):
    """A tern with n messages to remote.test, each deferred once by the
    peer; (tern, [qid...])."""
    tern = relay(tern_factory, peer.port, retry=retry)
    qids = []
    for i in range(n):
        qids.append(submit(tern, f"<{SENDER}>",
                           rcpts or [f"<bob@{REMOTE}>"],
                           content(f"queued {i}")))
    for q in qids:
        wait_log(tern, r"status=deferred", q)
    return tern, qids


def listing(tern):
    """`tern queue` as {qid: fields of its line}."""
    out = {}
    for line in ctl_ok(tern, "queue").splitlines():
        f = line.split(" ", 7)
        assert len(f) == 8, line
        out[f[0]] = f
    return out


def listing_json(tern):
    """`tern queue --json`, every object checked against the schema."""
    out = {}
    for line in ctl_ok(tern, "queue", "--json").splitlines():
        m = json.loads(line)
        check_schema(m, MSG_SCHEMA)
        assert m["state"] in MSG_STATES, m
        for r in m["recipients"]:
            check_schema(r, RCPT_SCHEMA)
            assert r["state"] in RCPT_STATES, r
        out[m["id"]] = m
    return out


def check_schema(obj, schema):
    """obj has exactly the keys of schema, each of its type(s)."""
    assert set(obj) == set(schema), (sorted(obj), sorted(schema))
    for k, t in schema.items():
        if isinstance(t, dict):
            check_schema(obj[k], t)
            continue
        types = t if isinstance(t, tuple) else (t,)
        # bool is an int in Python: keep them apart
        assert isinstance(obj[k], types) and \
            (bool in types or not isinstance(obj[k], bool)), (k, obj[k])


def envelope_text(tern, qid):
    return (tern.home / "spool" / "queue" / f"{qid}.env").read_text()


# ---------------------------------------------------------------- listing

def test_list_shows_each_message_in_one_line(tern_factory, peer):
    tern, qids = deferred_queue(tern_factory, peer, n=2)
    two = submit(tern, f"<{SENDER}>", [f"<bob@{REMOTE}>", f"<carol@{REMOTE}>"],
                 content("two recipients"))
    wait_log(tern, r"status=deferred", two, count=2)
    got = listing(tern)
    assert set(got) == set(qids + [two])
    qid, arrival, size, sender, state, nxt, rcpts, err = got[two]
    assert arrival.endswith("Z") and "T" in arrival
    assert int(size) == (tern.home / "spool" / "queue" /
                         f"{two}.msg").stat().st_size
    assert sender == f"<{SENDER}>"
    assert state == "deferred"
    assert nxt.endswith("Z"), nxt
    assert rcpts == f"bob@{REMOTE}=deferred,carol@{REMOTE}=deferred"
    assert err.startswith("451 4.3.0"), err


def test_list_json_follows_the_schema(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    got = listing_json(tern)
    m = got[qid]
    assert m["sender"] == SENDER and m["state"] == "deferred"
    assert m["held"] is False
    assert abs(m["arrival"] - time.time()) < 600
    [r] = m["recipients"]
    assert r["address"] == f"bob@{REMOTE}" and r["state"] == "deferred"
    assert r["tries"] == 1 and r["status"] == "4.3.0"
    assert r["next_try"] == m["next_try"] and r["next_try"] > time.time()
    assert "mailbox busy" in r["last_error"]


def test_an_empty_queue_lists_nothing(tern):
    assert ctl_ok(tern, "queue") == ""
    assert ctl_ok(tern, "queue", "--json") == ""


def test_show_prints_the_envelope_and_the_header(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    out = ctl_ok(tern, "queue", "show", qid)
    env, _, header = out.partition("\n\n")
    assert env.splitlines()[0] == "version 1"
    assert f"id {qid}" in env.splitlines()
    assert f"rcpt bob@{REMOTE}" in env.splitlines()
    assert "Subject: queued 0" in header.splitlines()
    assert header.splitlines()[0].startswith("Received: ")
    assert "Hello, this is the body." not in out


# ---------------------------------------------------------------- flush

def test_flush_delivers_now(tern_factory, peer):
    tern, qids = deferred_queue(tern_factory, peer, n=3)
    accept_all(peer)
    time.sleep(1.0)
    assert peer.delivered() == []   # nothing is due for an hour
    assert "1 message(s)" in ctl_ok(tern, "queue", "flush", qids[0])
    [t] = peer.wait_delivered(1, timeout=15)
    wait_for(lambda: qids[0] + ".env" not in queue_files(tern.home), 10,
             what="the flushed message to leave the queue")
    assert set(listing(tern)) == set(qids[1:])
    # a domain, then everything (nothing left for it)
    assert "2 message(s)" in ctl_ok(tern, "queue", "flush", f"@{REMOTE}")
    peer.wait_delivered(3, timeout=15)
    wait_queue_empty(tern.home, timeout=10)
    assert "0 message(s)" in ctl_ok(tern, "queue", "flush")


def test_flush_of_another_domain_leaves_the_queue_alone(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    accept_all(peer)
    assert "0 message(s)" in ctl_ok(tern, "queue", "flush", "@other.test")
    time.sleep(1.5)
    assert peer.delivered() == []
    assert qid in listing(tern)


# ---------------------------------------------------------------- hold

def test_hold_stops_retries_survives_a_restart_and_release_resumes(
        tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer, retry=FAST)
    r = ctl_retry(tern, "queue", "hold", qid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Message {qid} held.\n"
    assert "hold 1" in envelope_text(tern, qid).splitlines()
    seen = len(peer.transactions)
    time.sleep(3.0)   # three retries' worth
    assert len(peer.transactions) == seen
    m = listing_json(tern)[qid]
    assert m["held"] is True and m["state"] == "held"
    assert m["next_try"] is None
    assert listing(tern)[qid][4] == "held"
    # flush leaves a held message alone and says so
    r = ctl(tern, "queue", "flush", qid)
    assert r.returncode == EX_DATAERR and "held" in r.stderr
    # the hold is in the envelope: a restart keeps it
    tern.restart()
    time.sleep(2.5)
    assert len(peer.transactions) == seen
    assert listing_json(tern)[qid]["held"] is True
    # release: tried again at once (its time has passed), and delivered
    accept_all(peer)
    assert ctl_ok(tern, "queue", "release", qid) == \
        f"Message {qid} released.\n"
    peer.wait_delivered(1, timeout=15)
    wait_queue_empty(tern.home, timeout=10)


# ---------------------------------------------------------------- delete

def test_delete_removes_the_message_and_its_files(tern_factory, peer):
    tern, [qid, other] = deferred_queue(tern_factory, peer, n=2, retry=FAST)
    r = ctl_retry(tern, "queue", "delete", qid)
    assert r.returncode == 0 and r.stdout == f"Message {qid} deleted.\n"
    files = queue_files(tern.home)
    assert f"{qid}.env" not in files and f"{qid}.msg" not in files
    assert f"{other}.env" in files
    assert qid not in listing(tern)
    r = ctl(tern, "queue", "show", qid)
    assert r.returncode == EX_NOINPUT
    assert r.stderr == f"tern: There is no message {qid} in the queue.\n"
    r = ctl(tern, "queue", "delete", qid)
    assert r.returncode == EX_NOINPUT
    # not tried again, nor brought back by a restart
    accept_all(peer)
    tern.restart()
    ctl_retry(tern, "queue", "flush")
    [t] = peer.wait_delivered(1, timeout=15)
    wait_queue_empty(tern.home, timeout=10)
    time.sleep(1.0)
    assert len(peer.delivered()) == 1
    assert b"queued 1" in t.content


# ---------------------------------------------------------------- bounce

def test_bounce_sends_the_report_now(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    r = ctl_retry(tern, "queue", "bounce", qid)
    assert r.returncode == 0, r.stderr
    assert "1 recipient(s) given up" in r.stdout
    [rep] = wait_reports(tern.home, SENDER_BOX, timeout=15)
    b = rep.only(f"bob@{REMOTE}")
    assert b["Action"] == "failed"
    assert b["Status"] == "5.0.0"
    assert "cancelled by the administrator" in diagnostic(b)[1]
    assert "mailbox busy" in diagnostic(b)[1]
    wait_queue_empty(tern.home, timeout=10)
    assert peer.delivered() == []


def test_bounce_of_a_held_message(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    assert ctl_retry(tern, "queue", "hold", qid).returncode == 0
    assert ctl_retry(tern, "queue", "bounce", qid).returncode == 0
    [rep] = wait_reports(tern.home, SENDER_BOX, timeout=15)
    assert rep.only(f"bob@{REMOTE}")["Action"] == "failed"
    wait_queue_empty(tern.home, timeout=10)


# ---------------------------------------------------------------- status

def test_status_counts_what_happened(tern_factory, peer):
    tern, qids = deferred_queue(tern_factory, peer, n=2)
    assert ctl_retry(tern, "queue", "hold", qids[0]).returncode == 0
    s = json.loads(ctl_ok(tern, "status", "--json"))
    check_schema(s, STATUS_SCHEMA)
    assert 0 <= s["uptime"] < 600
    assert abs(s["started"] + s["uptime"] - time.time()) < 5
    assert s["sessions"]["total"] >= 2 and s["sessions"]["open"] == 0
    assert s["queue"]["messages"] == 2 and s["queue"]["held"] == 1
    assert s["queue"]["deferred"] == 1 and s["queue"]["recipients"] == 2
    assert s["counters"]["received"] == 2
    assert s["counters"]["deferred"] == 2
    assert s["counters"]["delivered"] == 0 and s["counters"]["bounced"] == 0
    # an open session is counted while it lasts
    with tern.connect() as c:
        c.hello()
        s = json.loads(ctl_ok(tern, "status", "--json"))
        assert s["sessions"]["open"] == 1
    text = ctl_ok(tern, "status")
    lines = text.splitlines()
    assert lines[0].startswith("uptime: ")
    assert lines[2].startswith("queue: 2 messages: ") and "1 held" in text
    assert "2 received, 0 delivered, 2 deferred, 0 bounced" in lines[3]


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("args, code, words", [
    (("queue", "show"), EX_USAGE, "needs a queue id"),
    (("queue", "show", "not-an-id"), EX_USAGE, "queue id"),
    (("queue", "hold", "0123456789abcd"), EX_USAGE, "queue id"),
    (("queue", "frobnicate", "X"), EX_USAGE, "Unknown request"),
    (("queue", "flush", "@bad domain"), EX_USAGE, "at most two"),
    (("queue", "flush", "@a..b"), EX_USAGE, "flush takes"),
    (("queue", "hold", "0123456789ABCD"), EX_NOINPUT, "no message"),
    (("queue", "release", "0123456789ABCD"), EX_NOINPUT, "no message"),
    (("queue", "bounce", "0123456789ABCD"), EX_NOINPUT, "no message"),
    (("queue", "--bogus"), EX_USAGE, "usage:"),
    (("status", "extra"), EX_USAGE, "usage:"),
])
def test_bad_requests_are_refused_with_a_sentence(tern, args, code, words):
    r = ctl(tern, *args)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert words in r.stderr, r.stderr
    assert r.stdout == ""
    assert ctl(tern, "status").returncode == 0


def raw_request(tern, data, read=True):
    """Send raw bytes to the control socket; the answer (bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    try:
        s.connect(str(tern.home / "state" / "control.sock"))
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


@pytest.mark.parametrize("data, reason", [
    (b"list\x00\n", b"control character"),
    (b"list \xff\n", b"printable ASCII"),
    (b"list  json\n", b"one space"),
    (b"list json \n", b"one space"),
    (b"LIST\n", b"Unknown request"),
    (b"show ../../etc/passwd\n", b"queue id"),
    (b"x" * 600 + b"\n", b"too long"),
    (b"x" * 100000, b"too long"),
    (b"status\r\n", b"control character"),
], ids=["nul", "8bit", "two-spaces", "trailing-space", "upper-case",
        "path", "600-octets", "100000-octets-no-lf", "crlf"])
def test_hostile_requests_get_an_error_and_the_server_goes_on(tern, data,
                                                              reason):
    out = raw_request(tern, data)
    first, _, rest = out.partition(b"\n")
    assert first.startswith(b"error usage "), out
    assert reason in first, out
    assert rest == b""
    assert ctl(tern, "status").returncode == 0


def test_a_client_that_leaves_is_no_harm(tern_factory, peer):
    tern, qids = deferred_queue(tern_factory, peer, n=3)
    for data in (b"", b"lis", b"list\n", b"status json\n"):
        raw_request(tern, data, read=False)
    assert set(listing(tern)) == set(qids)


def test_the_answer_is_dot_stuffed_and_ends_with_a_dot(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    out = raw_request(tern, b"list\n")
    lines = out.split(b"\n")
    assert lines[0] == b"ok" and lines[-2:] == [b".", b""]
    assert lines[1].startswith(qid.encode())


def test_without_a_running_tern_the_client_says_so(tern_factory):
    tern = tern_factory(start=False)
    tern.write_config()
    r = ctl(tern, "queue")
    assert r.returncode == EX_UNAVAILABLE
    assert "is tern serve running" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_other_users_are_refused_and_control_group_lets_them_in(
        tern_factory):
    tern = tern_factory()
    r = ctl(tern, "status", user="nobody")
    assert r.returncode == EX_NOPERM, (r.returncode, r.stderr)
    assert "may not use" in r.stderr
    tern.stop()
    # nobody's own group (Debian: nogroup) becomes the control group
    group = __import__("grp").getgrgid(pwd.getpwnam("nobody").pw_gid)
    tern = tern_factory(control_group=group.gr_name)
    st = (tern.home / "state" / "control.sock").stat()
    assert st.st_gid == group.gr_gid and st.st_mode & 0o777 == 0o660
    # state/ is crossed by the control group, and, with the smtpd under a
    # user of its own (as root), by anyone: the socket's mode decides
    assert (tern.home / "state").stat().st_mode & 0o777 == 0o711
    r = ctl(tern, "status", user="nobody")
    assert r.returncode == 0, r.stderr
    assert "control: uid %d: status" % pwd.getpwnam("nobody").pw_uid \
        in tern.log_text()
    # the group taken away again: the socket is closed again
    tern.stop()
    tern.keys.pop("control-group")
    tern.start()
    st = (tern.home / "state" / "control.sock").stat()
    assert st.st_mode & 0o777 == 0o600
    assert ctl(tern, "status", user="nobody").returncode == EX_NOPERM


def test_the_socket_is_served_across_a_reload(tern_factory, peer):
    tern, [qid] = deferred_queue(tern_factory, peer)
    old = tern.queue_process()
    tern.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: tern.queue_process() not in (None, old), 20,
             what="a new queue process after SIGHUP")
    assert qid in listing(tern)
    assert json.loads(ctl_ok(tern, "status", "--json"))["counters"][
        "received"] == 1

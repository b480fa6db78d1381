"""The classic hop-by-hop path, end to end (issue 3):

    client.canonical.org ──25──▶ relay.canonical.org ──MX dma.org──▶
    mx.dma.org ──route [mailbox.dma.org]:25──▶ mailbox.dma.org → Maildir,
                                                  or procmail for marion

Five hosts in network namespaces: the DNS server (dnsmasq at
198.51.100.53: MX canonical.org → relay.canonical.org, MX dma.org →
mx.dma.org, A/AAAA/PTR for every host), the submission relay of
canonical.org (tern; also final for canonical.org, so DSNs to paulv land
in its Maildir; relays for the trusted 198.51.100.0/24 — submission with
AUTH comes in a later issue), the outside MX of dma.org (tern,
relay-domains dma.org, an explicit route to the mailbox server), the
mailbox server of dma.org (tern, local-domains dma.org, only pea is a
recipient) and a client host that speaks SMTP from 198.51.100.5.
Every tern retries after 1 s, at most 2 s apart.
"""

import json
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from e2e_harness import NsTern, delivery_status, log_lines, returned_headers
from tern_harness import (TERN_BIN, queue_files, wait_for, wait_for_mail,
                          wait_queue_empty, maildir_messages)

FAST_RETRY = "first=1s max=2s"
RESOLVER = "198.51.100.53"
TIMEOUT = 30.0   # a few retry rounds at most


def tern_keys(**kw):
    """Configuration every tern of this network shares, plus kw."""
    keys = {"resolver": RESOLVER, "retry": FAST_RETRY}
    keys.update(kw)
    return keys


@pytest.fixture
def world(net, dns, rundir):
    """The five hosts, DNS records and three ternS, all started."""
    w = SimpleNamespace(net=net, dns=dns, rundir=rundir)
    w.client = net.add_host("client", 5, "client.canonical.org")
    w.relay = net.add_host("relay", 10, "relay.canonical.org")
    w.mx = net.add_host("mx", 20, "mx.dma.org")
    w.mailbox = net.add_host("mailbox", 21, "mailbox.dma.org")
    for h in (dns.host, w.client, w.relay, w.mx, w.mailbox):
        dns.add_host(h)
    dns.mx("canonical.org", "relay.canonical.org", 10)
    dns.mx("dma.org", "mx.dma.org", 10)
    dns.start()

    recipients = rundir / "mailbox-recipients"
    recipients.write_text("pea\nmarion\n")
    recipients.chmod(0o644)
    # marion's mail goes through procmail, as in the talk: a recipe files
    # it by subject into Maildirs the delivery child (the tern user) owns
    w.procmail = rundir / "procmail"
    w.procmail.mkdir()
    w.procmail.chmod(0o777)
    rc = rundir / "procmailrc"
    rc.write_text(f"MAILDIR={w.procmail}\nDEFAULT={w.procmail}/inbox/\n"
                  ":0\n* ^Subject:.*talk\ntalks/\n")
    rc.chmod(0o644)
    w.relay_t = NsTern(w.relay, rundir, **tern_keys(
        local_domains="canonical.org",
        trusted_networks="198.51.100.0/24"))
    w.mx_t = NsTern(w.mx, rundir, **tern_keys(
        local_domains="mx.dma.org", relay_domains="dma.org",
        extra=["route dma.org [mailbox.dma.org]:25"]))
    w.mailbox_t = NsTern(w.mailbox, rundir, **tern_keys(
        local_domains="dma.org", recipients=f"file:{recipients}",
        extra=[f'mailbox-for marion "pipe:/usr/bin/procmail -m {rc}"']))
    for t in (w.mailbox_t, w.mx_t, w.relay_t):
        t.start()
    return w


def send(w, rcpts, subject, body="Hello pea.\r\n"):
    """paulv@canonical.org sends from the client host to the relay."""
    content = ("From: Paul V <paulv@canonical.org>\r\n"
               f"To: <{rcpts[0]}>\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject.replace(' ', '.')}@canonical.org>\r\n"
               f"\r\n{body}").encode()
    with w.client.smtp(w.relay.addr4) as c:
        c.hello(w.client.hostname)
        qid = c.send_mail("paulv@canonical.org", rcpts, content)
        c.quit()
    return qid, content


def logs(w):
    return "\n".join(t.log_tail(15) for t in (w.relay_t, w.mx_t,
                                              w.mailbox_t))


def test_message_crosses_three_hops(world):
    """paulv@canonical.org → pea@dma.org: in pea's Maildir on the mailbox
    server with Return-Path <paulv@canonical.org> and three Received:
    lines, newest first, each naming the previous hop by its HELO and its
    address."""
    w = world
    qid, content = send(w, ["pea@dma.org"], "three hops")
    msgs = wait_for_mail(w.mailbox_t.home, "pea", timeout=TIMEOUT)
    for t in (w.relay_t, w.mx_t, w.mailbox_t):
        wait_queue_empty(t.home)
    assert len(msgs) == 1
    m = msgs[0]
    assert m.msg["Return-Path"] == "<paulv@canonical.org>"
    assert m.msg["Delivered-To"] == "pea@dma.org"
    assert m.msg["Message-ID"] == "<three.hops@canonical.org>"
    assert m.body == b"Hello pea.\n"

    hops = m.received()
    assert [h["by"] for h in hops] == [
        "mailbox.dma.org", "mx.dma.org", "relay.canonical.org"], hops
    senders = [w.mx, w.relay, w.client]
    for hop, prev in zip(hops, senders):
        assert hop["helo"] == prev.hostname, hop
        assert hop["ip"] in prev.addrs, hop
        assert hop["rcpt"] == "pea@dma.org"
        assert hop["proto"].startswith("ESMTP")
    assert hops[2]["qid"] == qid

    # one log line per delivery attempt, Postfix style (issue 3, Logs)
    sent = log_lines(w.relay_t, "to=<pea@dma.org>", "relay=mx.dma.org[",
                     "status=sent")
    assert len(sent) == 1, log_lines(w.relay_t, "pea@dma.org")
    assert ":25" in sent[0] and "dsn=2." in sent[0]
    sent = log_lines(w.mx_t, "to=<pea@dma.org>", "relay=mailbox.dma.org[",
                     "status=sent")
    assert len(sent) == 1, log_lines(w.mx_t, "pea@dma.org")


def chromium(*args, timeout=120):
    """Headless Debian Chromium on a local page: no sandbox (as root it
    has none), no GPU, a profile of its own, nothing fetched."""
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--window-size=1400,1000",
         *args], capture_output=True, timeout=timeout,
        stdin=subprocess.DEVNULL)


def test_trace_of_three_hops(world, tmp_path):
    """tern trace reads pea's message into three hops in order (relay,
    MX, mailbox server), each from the host before it and chained, with
    the relay's queue id, and draws the HTML page, which headless
    Chromium renders into trace.png in the test's output; the page's text
    (--dump-dom) names every host."""
    w = world
    qid, _ = send(w, ["pea@dma.org"], "traced path")
    msgs = wait_for_mail(w.mailbox_t.home, "pea", timeout=TIMEOUT)
    r = subprocess.run([TERN_BIN, "trace", "--json", str(msgs[0].path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    hops = doc["hops"]
    assert [h["by"]["host"] for h in hops] == [
        "relay.canonical.org", "mx.dma.org", "mailbox.dma.org"], hops
    for hop, prev in zip(hops, (w.client, w.relay, w.mx)):
        assert hop["from"]["helo"] == prev.hostname
        assert hop["from"]["rdns"] == prev.hostname
        assert hop["from"]["ip"] in prev.addrs
        assert hop["protocol"].startswith("ESMTP")
        assert hop["for"] == "pea@dma.org"
    assert hops[0]["id"] == qid
    assert [c for c in doc["checks"] if c["check"] in
            ("broken-chain", "skew", "unparsed", "no-date")] == []
    assert all(0 <= h["delay"] < TIMEOUT for h in hops[1:])
    assert doc["delivery"]["return_path"] == "<paulv@canonical.org>"

    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make deps)")
    page, png = tmp_path / "trace.html", tmp_path / "trace.png"
    r = subprocess.run([TERN_BIN, "trace", "--html", str(page),
                        str(msgs[0].path)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    profile = tmp_path / "chromium-profile"
    shot = chromium(f"--user-data-dir={profile}", f"--screenshot={png}",
                    page.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10000  # a drawing, not an empty page
    dom = chromium(f"--user-data-dir={profile}", "--dump-dom",
                   page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout.decode()
    for host in ("client.canonical.org", "relay.canonical.org",
                 "mx.dma.org", "mailbox.dma.org", qid):
        assert host in text, host


def test_last_hop_through_procmail(world):
    """The mailbox server hands marion's mail to procmail, her local
    delivery agent, which files it by subject: the message in her talks
    Maildir tells its whole path (Return-Path, Delivered-To and three
    Received: lines)."""
    w = world
    send(w, ["marion@dma.org"], "the talk on SMTP")
    wait_for(lambda: list((w.procmail / "talks" / "new").glob("*"))
             if (w.procmail / "talks" / "new").is_dir() else None,
             TIMEOUT, what=lambda: logs(w))
    [path] = (w.procmail / "talks" / "new").iterdir()
    raw = path.read_bytes()
    head = raw.split(b"\n\n", 1)[0].decode()
    assert head.startswith("Return-Path: <paulv@canonical.org>\n"
                           "Delivered-To: marion@dma.org\n")
    assert head.count("Received: from") == 3
    assert "by mailbox.dma.org (tern)" in head
    for t in (w.relay_t, w.mx_t, w.mailbox_t):
        wait_queue_empty(t.home)
    assert not (w.procmail / "inbox").exists()


def test_received_names_come_from_the_configured_resolver(world):
    """Each hop's Received: names the previous hop by its forward-confirmed
    DNS name, looked up through `resolver` (the test DNS holds PTR and
    A/AAAA records for every host)."""
    w = world
    send(w, ["pea@dma.org"], "names")
    msgs = wait_for_mail(w.mailbox_t.home, "pea", timeout=TIMEOUT)
    hops = msgs[0].received()
    got = [(h["by"], h["rdns"]) for h in hops]
    assert got == [("mailbox.dma.org", "mx.dma.org"),
                   ("mx.dma.org", "relay.canonical.org"),
                   ("relay.canonical.org", "client.canonical.org")], hops


@pytest.mark.parametrize("refused_by", ["mailbox", "mx"])
def test_unknown_user_comes_back_as_dsn(world, refused_by):
    """nobody@dma.org does not exist.  Refused by the mailbox server (its
    recipients file lists pea only), the MX bounces; refused at RCPT by
    the MX itself (relay-recipients lists pea only), the relay bounces.
    Either way a DSN from <> reaches paulv's Maildir on the relay host:
    multipart/report with Status 5.1.1 and the remote reply as the
    Diagnostic-Code; pea receives nothing."""
    w = world
    reporter, remote = w.mx, w.mailbox
    if refused_by == "mx":
        listed = w.rundir / "mx-relay-recipients"
        listed.write_text("pea@dma.org\n")
        listed.chmod(0o644)
        w.mx_t.keys["relay-recipients"] = f"file:{listed}"
        w.mx_t.restart()
        reporter, remote = w.relay, w.mx
    send(w, ["nobody@dma.org"], "to nobody")
    dsns = wait_for_mail(w.relay_t.home, "paulv", timeout=TIMEOUT)
    for t in (w.relay_t, w.mx_t, w.mailbox_t):
        wait_queue_empty(t.home)
    assert len(dsns) == 1
    dsn = dsns[0].msg
    assert dsn["Return-Path"] == "<>"
    assert "paulv@canonical.org" in dsn["To"]
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    per_msg, rcpts = delivery_status(dsn)
    assert per_msg["reporting-mta"] == f"dns; {reporter.hostname}"
    assert len(rcpts) == 1, rcpts
    r = rcpts[0]
    assert r["final-recipient"].lower() == "rfc822; nobody@dma.org"
    assert r["action"] == "failed"
    assert r["status"] == "5.1.1"
    assert r["remote-mta"].startswith(f"dns; {remote.hostname}"), r
    assert r["diagnostic-code"].startswith("smtp; 550"), r
    assert "5.1.1" in r["diagnostic-code"]
    returned = returned_headers(dsn)
    assert returned["Subject"] == "to nobody"
    assert maildir_messages(w.mailbox_t.home, "pea") == []
    assert maildir_messages(w.mailbox_t.home, "nobody") == []


def test_mail_waits_at_the_mx_while_the_mailbox_server_is_down(world):
    """The mailbox server is stopped: the relay still hands the message to
    the MX, which keeps it and retries (no bounce); once the mailbox
    server is back the message arrives, with its three Received: lines."""
    w = world
    w.mailbox_t.stop()
    send(w, ["pea@dma.org"], "while down")
    wait_queue_empty(w.relay_t.home)

    def deferrals():
        return log_lines(w.mx_t, "to=<pea@dma.org>", "status=deferred")
    wait_for(lambda: len(deferrals()) >= 2, TIMEOUT,
             what=lambda: f"two deferred attempts at the MX\n{logs(w)}")
    assert queue_files(w.mx_t.home), "the MX must keep the message"
    assert maildir_messages(w.relay_t.home, "paulv") == [], "no bounce"

    w.mailbox_t.start()
    msgs = wait_for_mail(w.mailbox_t.home, "pea", timeout=TIMEOUT)
    wait_queue_empty(w.mx_t.home)
    assert [h["by"] for h in msgs[0].received()] == [
        "mailbox.dma.org", "mx.dma.org", "relay.canonical.org"]
    assert maildir_messages(w.relay_t.home, "paulv") == [], \
        "no DSN to the sender: a delay warning is not due yet"
    assert log_lines(w.mx_t, "to=<pea@dma.org>", "status=sent")

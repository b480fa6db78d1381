"""tern trace (tern(8), TRACE): the path of a delivered message, hop by
hop, read from messages that really travelled, and from messages as other
MTAs deliver them.

A message sent through `tern serve` into a Maildir is traced, and its hop
is the session: the client's address and HELO, the queue id of the 250
reply, ESMTP or (after STARTTLS) ESMTPS with TLS version and cipher.  A
message that a real Postfix relays to tern and tern hands to a real
Dovecot over LMTP is traced into Postfix's pickup, tern's hop and
Dovecot's, chained.  The files in trace_samples/ (Exim, Sendmail,
OpenSMTPD, Exchange Online, Gmail, qmail, ...) are traced hop by hop.
Bad input (nothing, binary, a missing file, hostile header text) gives a
clear error or escaped output, never a crash.
"""

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from postfix_peer import postfix_available
from tern_harness import (CLIENT, HOSTNAME, SENDER, TERN_BIN, message,
                          run_tern, wait_for_mail,
                          wait_queue_empty)
from test_local_lmtp import lmtp_tern
from test_postfix_interop import postfix  # noqa: F401 (a fixture)
from test_tls_auth import start_tern, tls_session
from tls_fixtures import tls_files  # noqa: F401 (a fixture)

SAMPLES = Path(__file__).resolve().parent / "trace_samples"


def trace(*args, stdin=None):
    """tern trace ARGS; the CompletedProcess (text)."""
    return subprocess.run([TERN_BIN, "trace", *map(str, args)],
                          capture_output=True, text=True, timeout=30,
                          input=stdin)


def trace_json(path):
    r = trace("--json", path)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def checks(doc, word):
    """The hops a check names (0: the message)."""
    return [c["hop"] for c in doc["checks"] if c["check"] == word]


def send(tern, subject, helo=CLIENT, rcpt="alice@test.example"):
    with tern.connect() as c:
        c.hello(helo)
        qid = c.send_mail(SENDER, [rcpt], message(
            subject, msgid=f"<{subject.replace(' ', '.')}@remote.example>"))
        c.quit()
    return qid


# ------------------------------------------------ messages tern delivered

def test_served_message_hop_is_the_session(tern):
    """EHLO trace.client.example from 127.0.0.1, one message: one hop,
    from that HELO and address, by tern's hostname, ESMTP without TLS,
    the queue id of the 250 reply, for the one recipient; the final
    delivery's Return-Path and Delivered-To; each field's owner."""
    qid = send(tern, "traced once", helo="trace.client.example")
    [m] = wait_for_mail(tern.home, "alice")
    doc = trace_json(m.path)
    assert doc["schema"] == "tern-trace/1"
    [hop] = doc["hops"]
    assert hop["parsed"] and hop["hop"] == 1
    assert hop["from"]["helo"] == "trace.client.example"
    assert hop["from"]["ip"] == "127.0.0.1"
    assert hop["by"] == {"host": HOSTNAME, "ip": None, "software": "tern"}
    assert hop["protocol"] == "ESMTP" and hop["tls"] is False
    assert hop["id"] == qid
    assert hop["for"] == "alice@test.example"
    assert hop["delay"] is None and isinstance(hop["epoch"], int)
    assert doc["delivery"] == {"return_path": f"<{SENDER}>",
                               "delivered_to": "alice@test.example"}
    assert doc["message"]["message_id"] == "traced.once@remote.example"
    owners = {h["name"]: (h["added_by"], h["hop"]) for h in doc["headers"]}
    assert owners["Return-Path"] == ("delivery", 0)
    assert owners["Delivered-To"] == ("delivery", 0)
    assert owners["Received"] == ("hop", 1)
    assert owners["Subject"] == ("origin", 0)
    # from loopback: no "no-tls"; the envelope is the From: address
    assert doc["checks"] == []
    # the same from the text form, read from stdin
    text = trace("--color=never", "-", stdin=m.path.read_text())
    assert text.returncode == 0, text.stderr
    assert f"id    {qid}" in text.stdout
    assert "from  trace.client.example" in text.stdout
    assert "\033[" not in text.stdout
    assert "Checks\n  none" in text.stdout


def test_served_message_over_starttls(tern_factory, tls_files):  # noqa: F811
    """After STARTTLS the hop says ESMTPS with the TLS version and
    cipher the session used."""
    t = start_tern(tern_factory, tls_files)
    c = tls_session(t.port, tls_files)
    try:
        qid = c.send_mail(SENDER, ["alice@test.example"],
                          message("over tls"))
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        c.quit()
    finally:
        c.close()
    [m] = wait_for_mail(t.home, "alice")
    [hop] = trace_json(m.path)["hops"]
    assert hop["protocol"] == "ESMTPS" and hop["tls"] is True
    assert hop["tls_version"] == version and hop["tls_cipher"] == cipher
    assert hop["id"] == qid


def test_color_only_when_asked_or_on_a_terminal(tern):
    send(tern, "colours")
    [m] = wait_for_mail(tern.home, "alice")
    assert "\033[" in trace("--color=always", m.path).stdout
    assert "\033[" not in trace("--color=auto", m.path).stdout  # a pipe
    assert "\033[" not in trace(m.path).stdout
    bad = trace("--color=sometimes", m.path)
    assert bad.returncode == 2 and "usage: tern trace" in bad.stderr


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="a private Postfix instance needs root")
@pytest.mark.skipif(not postfix_available()[0],
                    reason=postfix_available()[1])
def test_postfix_tern_dovecot_path(tern_factory, postfix,  # noqa: F811
                                   dovecot_factory):
    """Postfix's sendmail → Postfix relays to tern → tern hands it to
    Dovecot over LMTP: the Received: fields the three real programs wrote
    are traced into three hops, oldest first, each chained to the one
    before, with Dovecot's Return-Path and Delivered-To."""
    dc = dovecot_factory()
    t = lmtp_tern(tern_factory, f"lmtp:unix:{dc.socket}")
    pf = postfix(relayhost=f"[127.0.0.1]:{t.port}")
    pf.sendmail("root@postfix.test", ["alice@test.example"],
                b"From: <root@postfix.test>\nTo: <alice@test.example>\n"
                b"Subject: three programs\nMessage-ID: <pf3@postfix.test>\n"
                b"\nHello.\n")
    [raw] = dc.wait_messages("alice", timeout=30)
    wait_queue_empty(t.home)
    f = Path(t.dir) / "delivered.eml"
    f.write_bytes(raw)
    doc = trace_json(f)
    hops = doc["hops"]
    assert [h["parsed"] for h in hops] == [True, True, True], hops
    pickup, relay, lmtp = hops
    assert pickup["by"]["host"] == "postfix.test"
    assert pickup["by"]["software"].startswith("Postfix")
    assert pickup["protocol"] == "local"
    assert relay["from"]["helo"] == "postfix.test"
    assert relay["from"]["ip"] == "127.0.0.1"
    assert relay["by"]["host"] == HOSTNAME
    assert relay["protocol"] == "ESMTP"
    assert lmtp["protocol"] == "LMTP"
    assert lmtp["from"]["helo"] == HOSTNAME  # tern's LHLO
    assert lmtp["for"] == "alice@test.example"
    assert checks(doc, "broken-chain") == [], doc["checks"]
    assert checks(doc, "unparsed") == []
    assert doc["delivery"]["return_path"] == "<root@postfix.test>"
    assert doc["delivery"]["delivered_to"] == "alice@test.example"
    for h in hops[1:]:
        assert h["delay"] is not None and 0 <= h["delay"] < 120


# ------------------------------------------------ other MTAs' forms

# file -> per hop, oldest first: (by, protocol, sender ip, tls version)
SAMPLE_HOPS = {
    "postfix.eml": [
        ("smtp.example.com", "local", None, None),
        ("mx.example.org", "ESMTP", "198.51.100.7", None),
        ("mailbox.example.org", "ESMTPS", "203.0.113.25", "TLSv1.3")],
    "exim.eml": [
        ("mail.example.com", "local", None, None),
        ("mx.example.org", "ESMTPS", "203.0.113.9", "TLS1.3")],
    "sendmail.eml": [
        ("client.example.com", "local", None, None),
        ("mx.example.org", "ESMTPS", "203.0.113.5", "TLSv1.3")],
    "opensmtpd.eml": [
        ("client.example.com", "ESMTPA", None, None),
        ("mx.example.org", "ESMTPS", "203.0.113.5", "TLSv1.3")],
    "exchange.eml": [
        ("AM6PR01CA0001.mail.protection.outlook.com", "ESMTPS",
         "203.0.113.44", "TLS1_3"),
        ("DB8PR01MB5678.eurprd01.prod.exchangelabs.com", "ESMTPS",
         "2603:10a6:20b:1::11", "TLS1_2"),
        ("AM0PR01MB9999.eurprd01.prod.exchangelabs.com", "HTTP",
         "2603:10a6:10:2::2", None)],
    "gmail.eml": [
        ("smtp.gmail.com", "ESMTPSA", "203.0.113.77", "TLS1_3"),
        ("mx.google.com", "ESMTPS", "209.85.220.41", None),
        ("2002:a05:6000:1:b0:123:4567:89ab", "SMTP", None, None)],
    "qmail.eml": [
        (None, "local", None, None),
        ("mx.example.org", "SMTP", "203.0.113.5", None),
        (None, "local", None, None)],
    "dovecot.eml": [
        ("mx.example.org", "ESMTPS", "203.0.113.5", None),
        ("mail.example.org", "LMTP", None, None)],
}


@pytest.mark.parametrize("name", sorted(SAMPLE_HOPS))
def test_other_mtas_forms(name):
    doc = trace_json(SAMPLES / name)
    got = [(h["by"]["host"], h["protocol"], h["from"]["ip"],
            h["tls_version"]) for h in doc["hops"]]
    assert got == SAMPLE_HOPS[name]
    assert all(h["parsed"] for h in doc["hops"])
    assert checks(doc, "skew") == [] and checks(doc, "slow") == []
    # the same message with CRLF line ends (an .eml), from stdin
    crlf = (SAMPLES / name).read_text().replace("\n", "\r\n")
    r = trace("--json", "-", stdin=crlf)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hops"] == doc["hops"]


def test_sample_details():
    """What each form hides in its comments: Exim's HELO and reverse
    name, qmail's, Gmail's chain gap, Postfix's missing TLS."""
    exim = trace_json(SAMPLES / "exim.eml")["hops"][1]
    assert exim["from"] == {"helo": "client.example.com",
                            "rdns": "mail.example.com",
                            "ip": "203.0.113.9", "may_be_forged": False}
    assert exim["tls_cipher"] == "TLS_AES_256_GCM_SHA384"
    assert exim["id"] == "1kXyZa-0001Ab-Cd"
    qmail = trace_json(SAMPLES / "qmail.eml")["hops"][1]
    assert (qmail["from"]["helo"], qmail["from"]["rdns"]) == (
        "client.example.com", "mail.example.com")
    gmail = trace_json(SAMPLES / "gmail.eml")
    assert checks(gmail, "broken-chain") == [2]
    # Gmail's Return-Path sits between two Received: fields
    owners = {h["name"]: h["hop"] for h in gmail["headers"]}
    assert owners["Return-Path"] == 1
    pf = trace_json(SAMPLES / "postfix.eml")
    assert checks(pf, "no-tls") == [2]
    assert pf["hops"][1]["delay"] == 2  # +0100 and +0000 both counted


def test_unreadable_hop_shown_raw_and_flagged():
    """The first message of an mbox: a Received: line no server writes is
    kept as hop 3, raw and flagged; the delay of hop 4 is counted from
    hop 2 (negative: skew), hop 2 held two and a half hours and does not
    come from hop 1's receiver; Return-Path differs from From:."""
    doc = trace_json(SAMPLES / "broken.mbox")
    hops = doc["hops"]
    assert len(hops) == 4
    assert hops[2]["parsed"] is False and hops[2]["error"]
    assert hops[2]["raw"] == "this line is not one any server writes ("
    assert hops[1]["delay"] == 9000 and hops[3]["delay"] == -60
    assert checks(doc, "unparsed") == [3]
    assert checks(doc, "slow") == [2]
    assert checks(doc, "skew") == [4]
    assert checks(doc, "broken-chain") == [2]
    assert checks(doc, "no-tls") == [4]
    assert checks(doc, "envelope-differs") == [0]
    assert [c["level"] for c in doc["checks"]
            if c["check"] == "envelope-differs"] == ["info"]
    assert doc["message"]["subject"] == \
        "échecs <script>alert(1)</script>"
    text = trace(SAMPLES / "broken.mbox").stdout
    assert "hop 3  UNPARSED (" in text
    assert "this line is not one any server writes (" in text
    assert "second message" not in text
    assert "2h 30m" in trace("--slow", "3h", SAMPLES / "broken.mbox").stdout
    assert checks(json.loads(trace("--json", "--slow", "3h",
                                   SAMPLES / "broken.mbox").stdout),
                  "slow") == []


class _Text(HTMLParser):
    """The page's text and the tags it uses."""

    def __init__(self):
        super().__init__()
        self.text, self.tags, self.attrs = [], set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_page_is_self_contained_and_escaped(tmp_path):
    """--html writes one page: SVG boxes for the hosts, the raw message
    with each field shaded, no script and nothing fetched; the hostile
    Subject is text, not markup."""
    page = tmp_path / "trace.html"
    r = trace("--html", page, SAMPLES / "broken.mbox")
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    p = _Text()
    p.feed(html)
    assert "script" not in p.tags and "svg" in p.tags
    assert not [v for k, v in p.attrs if k in ("src", "href")
                and v and not v.startswith("url(#")]
    text = "".join(p.text)
    for name in ("relay.example.com", "lists.example.net", "mx.example.org",
                 "client.example.com", "<script>alert(1)</script>"):
        assert name in text
    assert "&lt;script&gt;" in html and "<script>" not in html
    # the raw message ends where the mbox's next message starts
    assert "Hello list." in text and "second message" not in text
    # the delays that checks name (slow, skew) stand out in the drawing
    assert html.count('fill="#b00"') == 3  # +2h 30m, unparsed, -1m 00s
    for cls in ("hop1", "hop2", "hop4", "origin", "delivery"):
        assert f'class="{cls}"' in html


# ------------------------------------------------ bad input

@pytest.mark.parametrize("data", [b"", b"\x00\xff\xfe garbage \x00\n\n",
                                  b"no header here\n"])
def test_no_message(tmp_path, data):
    f = tmp_path / "bad.eml"
    f.write_bytes(data)
    r = trace(f)
    assert r.returncode in (0, 1), r
    if r.returncode == 1:
        assert "holds no message header" in r.stderr
    else:
        assert "Path: 0 hops" in r.stdout


def test_missing_file_and_usage(tmp_path):
    r = trace(tmp_path / "nothing.eml")
    assert r.returncode == 1 and "cannot read" in r.stderr
    assert trace("a", "b").returncode == 2
    assert trace("--slow", "soon", "x").returncode == 2
    assert "trace" in run_tern("help").stdout


def test_hostile_fields_are_escaped(tmp_path):
    """Control characters and invalid UTF-8 in header fields never reach
    the terminal, and the JSON stays valid."""
    f = tmp_path / "hostile.eml"
    f.write_bytes(b"Received: from evil\x1b[2J.example (x [198.51.100.9]) "
                  b"by mx.example with ESMTP id \xff\xfe; "
                  b"5 Dec 2026 10:00 +0000\n"
                  b"Subject: bell\x07 and \x1b]0;title\x07\n"
                  b"From: a@b.example\n\nbody\n")
    r = trace(f)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    doc = trace_json(f)
    assert "\x1b" not in json.dumps(doc, ensure_ascii=False)
    assert doc["hops"][0]["by"]["host"] == "mx.example"


def test_many_fields_bounded(tmp_path):
    """A header of 5000 Received: fields is traced whole; past 10000
    fields the rest is left out with a warning on standard error."""
    f = tmp_path / "many.eml"
    lines = [f"Received: from h{i}.example (h{i}.example [198.51.100.1]) "
             f"by h{i + 1}.example with ESMTPS id {i}; "
             f"5 Dec 2026 10:00 +0000\n" for i in range(5000, 0, -1)]
    f.write_text("".join(lines) + "From: a@b.example\n\nx\n")
    doc = trace_json(f)
    assert len(doc["hops"]) == 5000
    assert checks(doc, "broken-chain") == []
    # past TRACE_FIELDS_MAX (10000) the rest is left out, and said so
    f.write_text("X-Filler: x\n" * 10005 + "".join(lines[:5]) +
                 "From: a@b.example\n\nx\n")
    r = trace("--json", f)
    assert r.returncode == 0
    assert "only the first 10000 are traced" in r.stderr
    assert json.loads(r.stdout)["hops"] == []

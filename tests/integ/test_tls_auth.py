"""Inbound TLS and authenticated submission (issue 4): STARTTLS (RFC 3207)
on role=smtp and role=submission, implicit TLS on role=submissions (RFC
8314), certificates chosen by SNI and re-read on SIGHUP, the plaintext
injection case (CVE-2011-0411), AUTH PLAIN and LOGIN (RFC 4954, 4616),
the failed-login limits, envelope senders owned by the user, relay for
authenticated users, Message-ID and Date on submitted mail (RFC 6409 8)
and the Received: line (RFC 3848 ESMTPS/ESMTPSA, TLS version and cipher).

Clients: the raw SMTPClient of tern_harness (wrap_tls after the 220),
Python's smtplib, `openssl s_client -starttls smtp` and `swaks --tls
--auth`, against the certificates tls_fixtures makes.
"""

import base64
import email.utils
import os
import re
import signal
import smtplib
import subprocess
import time

import pytest

from tern_harness import (CLIENT, SENDER, SMTPClient, free_port, message,
                          queue_files, queue_id, run_tern, wait_for,
                          wait_for_mail)
from tls_fixtures import MAIL_NAME, OTHER_NAME, USERS, tls_files  # noqa

HOST = "127.0.0.1"
PAULV = ("paulv", USERS["paulv"])
PEA = ("pea@dma.example", USERS["pea@dma.example"])

# tern's Received: line with the TLS comment:
#   by HOST (tern) with ESMTPSA (TLSv1.3 TLS_AES_256_GCM_SHA384) id QID
TLS_RECEIVED_RE = re.compile(
    r"\bby (?P<by>\S+) \(tern\) with (?P<proto>[A-Z]+)"
    r"(?: \((?P<tls>[^)]*)\))? id (?P<qid>[0-9A-Z]{14})\b")


# ---------------------------------------------------------------- helpers

def b64(text):
    return base64.b64encode(text.encode()).decode()


def plain(user, password, authzid=""):
    """The RFC 4616 PLAIN response: authzid NUL authcid NUL passwd."""
    return b64(f"{authzid}\0{user}\0{password}")


def keywords(ehlo):
    """The EHLO keywords (upper case) of a 250 reply."""
    return [line.split()[0].upper() for line in ehlo.lines[1:] if line]


def auth_line(ehlo):
    """The AUTH line of an EHLO reply, or None."""
    for line in ehlo.lines[1:]:
        if line.upper().startswith("AUTH"):
            return line
    return None


def start_tern(tern_factory, tls, *, pairs=None, users=True, senders=(),
               extra=(), **keys):
    """A tern with `tls` lines (default: mail.test.example first, then
    other.test.example), a users file, and besides its role=smtp port a
    role=submission port (.submission) and a role=submissions port
    (.submissions)."""
    pairs = [tls.mail, tls.other] if pairs is None else pairs
    sub, subs = free_port(), free_port()
    lines = [p.tls_line() for p in pairs]
    lines += [f"listen {HOST}:{sub} role=submission",
              f"listen {HOST}:{subs} role=submissions"]
    if users:
        lines.append(f"users {tls.users}")
    lines += [f"senders {s}" for s in senders]
    t = tern_factory(extra=lines + list(extra), **keys)
    t.submission, t.submissions = sub, subs
    return t


@pytest.fixture
def tern_tls(tern_factory, tls_files):
    return start_tern(tern_factory, tls_files)


def starttls(c, tls, server_hostname=MAIL_NAME):
    """STARTTLS -> 220, then the handshake (CA and host name checked)."""
    r = c.cmd("STARTTLS").expect(220, "2.0.0")
    assert "Ready to start TLS" in r.text, r
    c.wrap_tls(tls.client_context(), server_hostname)


def tls_session(port, tls, *, implicit=False, source=None,
                server_hostname=MAIL_NAME):
    """A session encrypted and greeted again: greeting, EHLO, STARTTLS,
    EHLO (or, with implicit, the handshake, greeting, EHLO).  The EHLO
    reply under TLS is in .ehlo."""
    c = SMTPClient(HOST, port, source=source)
    if implicit:
        c.wrap_tls(tls.client_context(), server_hostname)
        c.greeting()
    else:
        c.hello()
        starttls(c, tls, server_hostname)
    c.ehlo = c.cmd(f"EHLO {CLIENT}").expect(250)
    return c


def login(c, user, password):
    """AUTH PLAIN with an initial response -> 235 2.7.0."""
    r = c.cmd(f"AUTH PLAIN {plain(user, password)}").expect(235, "2.7.0")
    assert "Authentication successful" in r.text, r


def timed(c, line):
    """Send a command; its reply and how long it took in seconds."""
    t0 = time.monotonic()
    r = c.cmd(line)
    return r, time.monotonic() - t0


def tls_received(mail):
    """The first (tern's) Received: field, matched by TLS_RECEIVED_RE,
    with the whole text in ["text"]."""
    text = " ".join(str(mail.msg.get_all("Received")[0]).split())
    m = TLS_RECEIVED_RE.search(text)
    assert m, f"Received: not in tern's form: {text!r}"
    return dict(m.groupdict(), text=text)


def openssl_starttls(port, tls, *args):
    """`openssl s_client -starttls smtp` with the test CA; the completed
    process (its -brief summary is on stderr)."""
    argv = ["openssl", "s_client", "-starttls", "smtp", "-name", CLIENT,
            "-connect", f"{HOST}:{port}", "-CAfile", str(tls.ca),
            "-verify_return_error", "-brief", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def peer_certificate(port, tls, server_hostname=None):
    """The DER certificate a new STARTTLS session on port is given (the
    chain checked against the CA, the name not)."""
    with SMTPClient(HOST, port) as c:
        c.hello()
        c.cmd("STARTTLS").expect(220, "2.0.0")
        sock = c.wrap_tls(tls.client_context(check_hostname=False),
                          server_hostname)
        der = sock.getpeercert(binary_form=True)
        c.quit()
    return der


# ---------------------------------------------------------------- STARTTLS

def test_starttls_on_smtp_with_smtplib(tern_tls, tls_files):
    s = smtplib.SMTP(HOST, tern_tls.port, local_hostname=CLIENT, timeout=30)
    s.ehlo()
    assert s.has_extn("starttls")
    assert not s.has_extn("auth"), "AUTH offered before TLS"
    # smtplib checks the certificate against 127.0.0.1 (its IP SAN)
    code, text = s.starttls(context=tls_files.client_context())
    assert code == 220, text
    s.ehlo()
    assert not s.has_extn("starttls"), "STARTTLS offered again under TLS"
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    version, cipher = s.sock.version(), s.sock.cipher()[0]
    assert version in ("TLSv1.2", "TLSv1.3")
    s.sendmail(SENDER, ["alice@test.example"], message("over starttls"))
    s.quit()
    [mail] = wait_for_mail(tern_tls.home, "alice")
    rec = tls_received(mail)
    assert (rec["proto"], rec["tls"]) == ("ESMTPS", f"{version} {cipher}")


@pytest.mark.parametrize("role", ["smtp", "submission"])
@pytest.mark.parametrize("servername, chosen", [
    (MAIL_NAME, MAIL_NAME),
    (OTHER_NAME, OTHER_NAME),
    ("unknown.test.example", MAIL_NAME),  # no match: the default
    (None, MAIL_NAME),                    # no SNI: the default
], ids=["sni-mail", "sni-other", "sni-unknown", "no-sni"])
def test_openssl_starttls_certificate_chosen_by_sni(tern_tls, tls_files,
                                                    role, servername,
                                                    chosen):
    port = tern_tls.port if role == "smtp" else tern_tls.submission
    sni = (["-servername", servername] if servername
           else ["-noservername"])
    run = openssl_starttls(port, tls_files, *sni, "-verify_hostname",
                           chosen)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Peer certificate: CN = {chosen}\n" in run.stderr, run.stderr
    assert "Verification: OK" in run.stderr, run.stderr


def openssl_tls_1_1(port, tls):
    # security level 0 lets this openssl speak TLS 1.1 (it does with a
    # server that allows it); -msg shows the records in both directions
    return openssl_starttls(port, tls, "-tls1_1", "-cipher",
                            "DEFAULT:@SECLEVEL=0", "-msg")


def test_tls_1_1_is_refused_and_1_2_accepted(tern_tls, tls_files):
    old = openssl_tls_1_1(tern_tls.port, tls_files)
    assert old.returncode != 0, old.stderr
    # the client did offer TLS 1.1, and the server did not go on with it
    assert ">>> TLS 1.1, Handshake" in old.stdout and (
        "ClientHello" in old.stdout), old.stdout + old.stderr
    assert "ServerHello" not in old.stdout, old.stdout
    new = openssl_starttls(tern_tls.port, tls_files, "-tls1_2")
    assert new.returncode == 0, new.stderr
    assert "Protocol version: TLSv1.2" in new.stderr, new.stderr


def test_tls_1_1_refusal_is_told_with_an_alert(tern_tls, tls_files):
    # RFC 5246 E.1: a server refusing the client's version answers with a
    # protocol_version alert (70) rather than just hanging up
    old = openssl_tls_1_1(tern_tls.port, tls_files)
    assert old.returncode != 0, old.stderr
    assert "alert protocol version" in old.stderr, old.stderr


def test_pipelined_plaintext_after_starttls_is_discarded(tern_tls,
                                                         tls_files):
    # CVE-2011-0411: RSET rides in the same segment as STARTTLS
    with tern_tls.connect() as c:
        c.hello()
        c.send(b"STARTTLS\r\nRSET\r\n")
        c.reply().expect(220, "2.0.0")
        # wrap_tls asserts that no plaintext reply followed the 220
        c.wrap_tls(tls_files.client_context(), MAIL_NAME)
        assert c.quiet(0.5), "a reply came unasked after the handshake"
        # a leftover RSET would be answered before this EHLO: the first
        # reply must be the EHLO's (multiline, the host name first)
        r = c.cmd(f"EHLO {CLIENT}").expect(250)
        assert len(r.lines) > 1 and r.lines[0].startswith("test.example"), (
            f"the first reply under TLS is not the EHLO's: {r}")
        c.cmd("NOOP").expect(250, "2.0.0")
        assert c.quiet(0.3), "a reply too many"
        c.quit()


def test_starttls_is_not_offered_again_under_tls(tern_tls, tls_files):
    with tern_tls.connect() as c:
        assert "STARTTLS" in keywords(c.hello())
        starttls(c, tls_files)
        assert "STARTTLS" not in keywords(c.cmd(f"EHLO {CLIENT}")
                                          .expect(250))
        c.cmd("STARTTLS").expect(503, "5.5.1")
        c.cmd("NOOP").expect(250, "2.0.0")
        c.quit()


def test_mail_right_after_starttls_needs_a_new_ehlo(tern_tls, tls_files):
    with tern_tls.connect() as c:
        c.hello()
        starttls(c, tls_files)
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(503)
        c.cmd(f"EHLO {CLIENT}").expect(250)
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(tern_tls.home, "alice")


def test_starttls_with_an_argument_or_in_a_transaction(tern_tls):
    with tern_tls.connect() as c:
        c.hello()
        c.cmd("STARTTLS now").expect(501, "5.5.4")
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("STARTTLS").expect(503, "5.5.1")
        c.cmd("RSET").expect(250, "2.0.0")
        c.cmd("STARTTLS").expect(220, "2.0.0")


def test_starttls_without_a_certificate(tern):
    with tern.connect() as c:
        assert "STARTTLS" not in keywords(c.hello())
        c.cmd("STARTTLS").expect(502, "5.5.1")
        c.quit()


def test_submission_needs_a_tls_line(tmp_path, tls_files):
    conf = tmp_path / "tern.conf"
    (tmp_path / "home").mkdir()
    text = (f"home {tmp_path}/home\nhostname test.example\n"
            f"listen {HOST}:{free_port()} role=submission\n")
    conf.write_text(text)
    run = run_tern("check-config", "-c", str(conf))
    assert run.returncode != 0, run.stdout
    assert f"{conf}:3:" in run.stderr, run.stderr
    # the same with a certificate is a good configuration
    conf.write_text(text + tls_files.mail.tls_line() + "\n")
    run = run_tern("check-config", "-c", str(conf))
    assert run.returncode == 0, run.stderr


# ---------------------------------------------------------------- implicit TLS

def test_implicit_tls_on_submissions_with_smtplib(tern_tls, tls_files):
    user, password = PAULV
    s = smtplib.SMTP_SSL(HOST, tern_tls.submissions, local_hostname=CLIENT,
                         context=tls_files.client_context(), timeout=30)
    s.ehlo()
    assert not s.has_extn("starttls")
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    s.login(user, password)
    s.sendmail("paulv@test.example", ["alice@test.example"],
               message("over implicit tls"))
    s.quit()
    [mail] = wait_for_mail(tern_tls.home, "alice")
    assert tls_received(mail)["proto"] == "ESMTPSA"


def test_submissions_greets_only_after_the_handshake(tern_tls):
    with SMTPClient(HOST, tern_tls.submissions) as c:
        assert c.quiet(1.0), "a plaintext greeting on role=submissions"


# ---------------------------------------------------------------- AUTH

@pytest.mark.parametrize("role", ["smtp", "submission"])
def test_auth_is_not_offered_before_tls(tern_tls, role):
    port = tern_tls.port if role == "smtp" else tern_tls.submission
    user, password = PAULV
    with SMTPClient(HOST, port) as c:
        ehlo = c.hello()
        assert "STARTTLS" in keywords(ehlo)
        assert auth_line(ehlo) is None, ehlo
        c.cmd(f"AUTH PLAIN {plain(user, password)}").expect(538, "5.7.11")
        c.cmd("AUTH LOGIN").expect(538, "5.7.11")
        c.quit()


def test_auth_is_not_offered_without_users(tern_factory, tls_files):
    t = start_tern(tern_factory, tls_files, users=False)
    with tls_session(t.port, tls_files) as c:
        assert auth_line(c.ehlo) is None, c.ehlo
        c.quit()


@pytest.mark.parametrize("steps", [
    # each row: the lines the client sends, the last one answered by 235
    [f"AUTH PLAIN {plain('paulv', 'pw-paulv')}"],
    ["AUTH PLAIN", plain("paulv", "pw-paulv")],
    [f"AUTH PLAIN {plain('PaulV', 'pw-paulv')}"],
    [f"AUTH PLAIN {plain('paulv', 'pw-paulv', authzid='paulv')}"],
    [f"AUTH PLAIN {plain('PEA@DMA.example', 'pw-pea')}"],
    ["AUTH LOGIN", b64("paulv"), b64("pw-paulv")],
    ["auth LOGIN", b64("pea@dma.example"), b64("pw-pea")],
], ids=["plain", "plain-challenge", "plain-name-case", "plain-authzid",
        "plain-address-user", "login", "login-address-user"])
def test_auth_success(tern_tls, tls_files, steps):
    with tls_session(tern_tls.submission, tls_files) as c:
        assert auth_line(c.ehlo) == "AUTH PLAIN LOGIN", c.ehlo
        for line in steps[:-1]:
            c.cmd(line).expect(334)
        r = c.cmd(steps[-1]).expect(235, "2.7.0")
        assert "Authentication successful" in r.text, r
        c.cmd(f"AUTH PLAIN {plain('paulv', 'pw-paulv')}").expect(503,
                                                                 "5.5.1")
        c.quit()


def test_auth_exchange_errors(tern_tls, tls_files):
    with tls_session(tern_tls.port, tls_files) as c:
        c.cmd("AUTH CRAM-MD5").expect(504, "5.5.4")
        c.cmd("AUTH PLAIN !!!not-base64").expect(501, "5.5.2")
        c.cmd("AUTH LOGIN").expect(334)
        c.cmd("*").expect(501, "5.7.0")
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd(f"AUTH PLAIN {plain(*PAULV)}").expect(503, "5.5.1")
        c.cmd("RSET").expect(250, "2.0.0")
        login(c, *PAULV)
        c.quit()


def test_wrong_password_is_answered_late(tern_tls, tls_files):
    with tls_session(tern_tls.submission, tls_files) as c:
        r, took = timed(c, f"AUTH PLAIN {plain('paulv', 'wrong')}")
        r.expect(535, "5.7.8")
        assert "Authentication credentials invalid" in r.text, r
        assert 0.9 <= took < 1.8, f"first failure answered after {took:.2f}s"
        # an unknown user is answered the same way, a little later still
        r, took = timed(c, f"AUTH PLAIN {plain('nobody', 'pw-paulv')}")
        r.expect(535, "5.7.8")
        assert 1.9 <= took < 2.8, f"second failure answered after {took:.2f}s"
        c.cmd("MAIL FROM:<paulv@test.example>").expect(530, "5.7.0")
        # two failures are below the limit of three: the right password
        # still works
        login(c, *PAULV)
        c.quit()


def test_third_failed_login_ends_the_session(tern_tls, tls_files):
    with tls_session(tern_tls.submission, tls_files) as c:
        for _ in range(2):
            c.cmd(f"AUTH PLAIN {plain('paulv', 'wrong')}").expect(535,
                                                                  "5.7.8")
        c.send(f"AUTH PLAIN {plain('paulv', 'wrong')}\r\n")
        replies = c.replies_until_close(timeout=8)
    assert replies and (replies[-1].code, replies[-1].enhanced) == (
        421, "4.7.0"), replies
    # the 421 may follow the third 535, or stand for it
    assert all((r.code, r.enhanced) == (535, "5.7.8")
               for r in replies[:-1]) and len(replies) <= 2, replies


def test_client_address_failure_limit(tern_factory, tls_files):
    t = start_tern(tern_factory, tls_files,
                   limits="auth-client-failures=2 auth-failures=1")
    for _ in range(2):
        with tls_session(t.submission, tls_files) as c:
            c.send(f"AUTH PLAIN {plain('paulv', 'wrong')}\r\n")
            replies = c.replies_until_close(timeout=5)
            assert replies[-1].code == 421, replies
    # 127.0.0.1 has had its two failures this hour: the right password
    # is not even checked
    with tls_session(t.submission, tls_files) as c:
        c.cmd(f"AUTH PLAIN {plain(*PAULV)}").expect(454, "4.7.0")
        c.cmd(f"AUTH PLAIN {plain('paulv', 'wrong')}").expect(454, "4.7.0")
        c.cmd("AUTH LOGIN").expect(454, "4.7.0")
        c.quit()
    # another client address is not concerned
    with tls_session(t.submission, tls_files, source="127.0.0.2") as c:
        login(c, *PAULV)
        c.quit()


# ---------------------------------------------------------------- submission

@pytest.mark.parametrize("implicit", [False, True],
                         ids=["submission", "submissions"])
def test_mail_without_auth_on_submission(tern_tls, tls_files, implicit):
    port = tern_tls.submissions if implicit else tern_tls.submission
    with tls_session(port, tls_files, implicit=implicit) as c:
        c.cmd("MAIL FROM:<paulv@test.example>").expect(530, "5.7.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(503)
        c.quit()
    # and in plaintext, before any STARTTLS
    if not implicit:
        with tern_tls.connect(port=port) as c:
            c.hello()
            c.cmd("MAIL FROM:<paulv@test.example>").expect(530, "5.7.0")
            c.quit()


# a senders line: pea@dma.example (the first word) may use the addresses
# after it; its own address is left out, since the list replaces the default
SENDERS_LINE = "pea@dma.example postmaster@test.example @lists.dma.example"
SENDER_ROWS = [
    # (user, envelope sender, allowed, what the row tests)
    (PAULV, "paulv@test.example", True, "own name at a local domain"),
    (PAULV, "paulv@localhost", True, "own name at another local domain"),
    (PAULV, "paulv@TEST.EXAMPLE", True, "domain in another case"),
    (PAULV, "", True, "the null sender"),
    (PAULV, "paulv@dma.example", False, "own name at a foreign domain"),
    (PAULV, "alice@test.example", False, "another local user"),
    (PAULV, "pea@dma.example", False, "another user's address"),
    (PEA, "postmaster@test.example", True, "listed in senders"),
    (PEA, "anyone@lists.dma.example", True, "listed @domain"),
    (PEA, "", True, "the null sender with a senders list"),
    (PEA, "pea@dma.example", False, "own address, not in its list"),
    (PEA, "other@dma.example", False, "a neighbour in its domain"),
    (PEA, "paulv@test.example", False, "another user's address"),
]


@pytest.mark.parametrize("user", [PAULV, PEA], ids=["paulv", "pea"])
def test_envelope_senders_owned_by_the_user(tern_factory, tls_files, user):
    t = start_tern(tern_factory, tls_files, senders=[SENDERS_LINE])
    rows = [r for r in SENDER_ROWS if r[0] == user]
    with tls_session(t.submission, tls_files) as c:
        login(c, *user)
        for _, sender, allowed, why in rows:
            r = c.cmd(f"MAIL FROM:<{sender}>")
            if allowed:
                assert (r.code, r.enhanced) == (250, "2.1.0"), (why, r)
                c.cmd("RSET").expect(250, "2.0.0")
                continue
            assert (r.code, r.enhanced) == (553, "5.7.1"), (why, r)
            assert f"not owned by user {user[0]}" in r.text, (why, r)
        c.send_mail("postmaster@test.example" if user == PEA
                    else "paulv@test.example", ["alice@test.example"],
                    message())
        c.quit()
    wait_for_mail(t.home, "alice")


def test_authenticated_client_may_relay(tern_factory, tls_files):
    closed = free_port()
    t = start_tern(tern_factory, tls_files,
                   extra=[f"route example.net [{HOST}]:{closed}"])
    # without AUTH (TLS is not enough) relaying is refused
    with tls_session(t.port, tls_files) as c:
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.net>").expect(554, "5.7.1")
        c.quit()
    for port in (t.port, t.submission):
        with tls_session(port, tls_files) as c:
            login(c, *PAULV)
            qid = c.send_mail("paulv@test.example", ["bob@example.net"],
                              message("relayed"))
            c.quit()
        # nobody listens on the route's port: the message stays queued
        env = t.home / "spool" / "queue" / f"{qid}.env"
        wait_for(env.exists, 5, what=f"{env}")
        lines = env.read_text().splitlines()
        assert "protocol ESMTPSA" in lines, lines
        assert "auth-user paulv" in lines, lines
        assert "rcpt bob@example.net" in lines, lines
    assert len([f for f in queue_files(t.home) if f.endswith(".env")]) == 2


@pytest.mark.parametrize("msgid, date", [
    (None, None),
    ("<kept.1@client.example>", None),
    (None, "Mon, 01 Jan 2024 10:00:00 +0000"),
    ("<kept.2@client.example>", "Mon, 01 Jan 2024 10:00:00 +0000"),
], ids=["neither", "msgid-only", "date-only", "both"])
def test_submission_adds_message_id_and_date(tern_tls, tls_files, msgid,
                                             date):
    headers = [f"Date: {date}"] if date else []
    with tls_session(tern_tls.submission, tls_files) as c:
        login(c, *PAULV)
        qid = c.send_mail("paulv@test.example", ["alice@test.example"],
                          message("submitted", msgid=msgid,
                                  headers=headers))
        c.quit()
    [mail] = wait_for_mail(tern_tls.home, "alice")
    assert mail.msg.get_all("Message-ID") == [
        msgid or f"<{qid}@test.example>"], mail.raw
    [got] = mail.msg.get_all("Date")
    if date:
        assert got == date
    else:
        then = email.utils.parsedate_to_datetime(got).timestamp()
        assert abs(then - time.time()) < 60, got
    # what was added, was added at the end of the header section
    added = {"Message-ID"} if not msgid else set()
    added |= {"Date"} if not date else set()
    names = list(mail.msg.keys())
    assert set(names[len(names) - len(added):]) == added, names
    assert b"Hello." in mail.body


@pytest.mark.parametrize("authenticated", [False, True],
                         ids=["ESMTPS", "ESMTPSA"])
def test_received_names_protocol_and_cipher(tern_tls, tls_files,
                                            authenticated):
    with tls_session(tern_tls.port, tls_files) as c:
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        sender = SENDER
        if authenticated:
            login(c, *PAULV)
            sender = "paulv@test.example"
        qid = c.send_mail(sender, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern_tls.home, "alice")
    rec = tls_received(mail)
    assert rec["qid"] == qid
    assert rec["proto"] == ("ESMTPSA" if authenticated else "ESMTPS")
    assert rec["tls"] == f"{version} {cipher}", rec["text"]
    assert "paulv" not in rec["text"].lower(), rec["text"]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_submits_with_auth(tern_tls, mech):
    user, password = PAULV
    run = subprocess.run(
        ["swaks", "--server", HOST, "--port", str(tern_tls.submission),
         "--tls", "--auth", mech, "--auth-user", user,
         "--auth-password", password, "--helo", CLIENT,
         "--from", "paulv@test.example", "--to", "alice@test.example",
         "--header", f"Subject: swaks {mech}", "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "235 2.7.0" in run.stdout, run.stdout
    [mail] = wait_for_mail(tern_tls.home, "alice")
    assert mail.msg["Subject"] == f"swaks {mech}"
    assert tls_received(mail)["proto"] == "ESMTPSA"


# ---------------------------------------------------------------- SIGHUP

def replace_pair(pair, cert, key):
    """Put pair's certificate and key in the files cert and key (written
    aside, then renamed over them, as a certificate tool does)."""
    for src, dst in ((pair.cert, cert), (pair.key, key)):
        tmp = dst.with_suffix(".new")
        tmp.write_bytes(src.read_bytes())
        tmp.chmod(0o644)
        os.replace(tmp, dst)


def test_sighup_rereads_certificates_and_keeps_sessions(tern_factory,
                                                        tls_files):
    mail, other = tls_files.mail, tls_files.other
    t = tern_factory(start=False)
    cert, key = t.dir / "cert.pem", t.dir / "key.pem"
    replace_pair(mail, cert, key)
    t.extra = [mail.tls_line(cert, key)]
    t.start()
    assert peer_certificate(t.port, tls_files) == mail.der()

    # an old session, left after RCPT
    old = tls_session(t.port, tls_files)
    old.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
    old.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
    before = t.children()

    replace_pair(other, cert, key)
    os.kill(t.pid, signal.SIGHUP)
    wait_for(lambda: peer_certificate(t.port, tls_files) == other.der(),
             10, what="a new connection to get the new certificate")
    assert old.sock.getpeercert(binary_form=True) == mail.der()

    # the old session was not dropped: it finishes its message
    qid = queue_id(old.data(message("old session")).expect(250, "2.0.0"))
    old.quit()
    with tls_session(t.port, tls_files, server_hostname=OTHER_NAME) as c:
        c.send_mail(SENDER, ["alice@test.example"], message("new session"))
        c.quit()
    mails = wait_for_mail(t.home, "alice", 2)
    assert sorted(m.msg["Subject"] for m in mails) == ["new session",
                                                       "old session"]
    [old_mail] = [m for m in mails if m.msg["Subject"] == "old session"]
    assert tls_received(old_mail)["qid"] == qid
    # the old smtpd leaves once its last session has ended
    wait_for(lambda: len(t.children()) == len(before), 10,
             what=lambda: f"the old smtpd to exit (children before "
             f"{before}, now {t.children()})")
    assert t.running()


def test_sighup_with_a_bad_configuration_keeps_the_old(tern_factory,
                                                       tls_files):
    t = start_tern(tern_factory, tls_files, pairs=[tls_files.mail])
    missing = t.dir / "missing-cert.pem"
    t.extra = [line.replace(str(tls_files.mail.cert), str(missing))
               for line in t.extra]
    t.write_config()
    os.kill(t.pid, signal.SIGHUP)
    wait_for(lambda: str(missing) in t.log_text(), 10,
             what="the log to name the missing certificate")
    assert t.running()
    assert peer_certificate(t.port, tls_files) == tls_files.mail.der()
    with tls_session(t.submission, tls_files) as c:
        login(c, *PAULV)
        c.quit()

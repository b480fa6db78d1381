"""The basic SMTP dialogue (RFC 5321 4.1, 4.2, 4.3.2; RFC 2034 for the
enhanced status codes) and local delivery into Maildirs."""

import email.utils
import os
import re
import signal
import subprocess
from datetime import datetime, timezone

import pytest

from tern_harness import (CLIENT, HOSTNAME, SENDER, mail_users, maildir_path,
                          maildir_messages, message, pid_alive, queue_id,
                          wait_for, wait_for_mail, wait_for_maildir,
                          wait_queue_empty)

ANY = None  # any enhanced code (its presence is always checked)


# ---------------------------------------------------------------- greeting

def test_greeting_names_the_host(tern):
    with tern.connect() as c:
        r = c.greeting()
        assert len(r.lines) == 1
        assert re.match(rf"^{re.escape(HOSTNAME)} ESMTP tern( |$)",
                        r.lines[0]), r


def test_ehlo_lists_the_extensions(tern):
    with tern.connect() as c:
        r = c.hello()
        assert r.lines[0].split()[0] == HOSTNAME, r
        keywords = {line.split()[0].upper(): line.split()[1:]
                    for line in r.lines[1:]}
        for kw in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
                   "SMTPUTF8", "CHUNKING"):
            assert kw in keywords, f"EHLO lacks {kw}: {r}"
        assert len(keywords["SIZE"]) == 1 and \
            int(keywords["SIZE"][0]) > 0, r


def test_helo_answers_with_the_hostname(tern):
    with tern.connect() as c:
        c.greeting()
        r = c.cmd(f"HELO {CLIENT}").expect(250)
        assert r.lines == [r.lines[0]] and \
            r.lines[0].split()[0] == HOSTNAME, r


# ---------------------------------------------------------------- replies

# Each row is one session after the greeting: (command, code, enhanced).
# reply() also checks that every reply after the greeting (but those to
# EHLO/HELO) carries an enhanced status code matching its class.
EHLO = ("EHLO client.example", 250, ANY)
MAIL = ("MAIL FROM:<sender@remote.example>", 250, "2.1.0")
RCPT = ("RCPT TO:<alice@test.example>", 250, "2.1.5")
DIALOGUES = {
    "NOOP": [EHLO, ("NOOP", 250, "2.0.0")],
    "NOOP with an argument": [("NOOP hello", 250, "2.0.0")],
    "NOOP before EHLO": [("NOOP", 250, "2.0.0")],
    "RSET before EHLO": [("RSET", 250, "2.0.0")],
    "lower-case verbs": [("ehlo client.example", 250, ANY),
                         ("mail from:<sender@remote.example>", 250, "2.1.0"),
                         ("rcpt to:<alice@test.example>", 250, "2.1.5")],
    "MAIL FROM: with a space before the path": [
        EHLO, ("MAIL FROM: <sender@remote.example>", 250, "2.1.0")],
    "VRFY never says whether a user exists": [
        EHLO, ("VRFY alice", 252, "2.5.2"),
        ("VRFY no-such-user-at-all", 252, "2.5.2"),
        ("VRFY <alice@test.example>", 252, "2.5.2")],
    "HELP": [("HELP", 214, "2.0.0"), EHLO, ("HELP MAIL", 214, "2.0.0")],
    "RSET clears the transaction": [
        EHLO, MAIL, RCPT, ("RSET", 250, "2.0.0"),
        ("DATA", 503, "5.5.1"), ("RCPT TO:<alice@test.example>", 503, "5.5.1"),
        MAIL, RCPT],
    "MAIL before EHLO": [("MAIL FROM:<sender@remote.example>", 503, "5.5.1")],
    "RCPT before MAIL": [EHLO, ("RCPT TO:<alice@test.example>", 503, "5.5.1")],
    "DATA before MAIL": [EHLO, ("DATA", 503, "5.5.1")],
    "DATA before RCPT": [EHLO, MAIL, ("DATA", 503, "5.5.1")],
    "nested MAIL": [EHLO, MAIL,
                    ("MAIL FROM:<other@remote.example>", 503, "5.5.1")],
    "unknown command": [EHLO, ("FROBNICATE now", 500, "5.5.2")],
    "unknown command before EHLO": [("XYZZY", 500, "5.5.2")],
    "a verb must end at a space": [
        EHLO, ("MAILX FROM:<sender@remote.example>", 500, "5.5.2")],
    "EHLO without a name": [("EHLO", 501, "5.5.4")],
    "HELO without a name": [("HELO", 501, "5.5.4")],
    "MAIL without argument": [EHLO, ("MAIL", 501, "5.5.4")],
    "MAIL FROM: without a path": [EHLO, ("MAIL FROM:", 501, ANY)],
    "MAIL without angle brackets": [
        EHLO, ("MAIL FROM:sender@remote.example", 501, ANY)],
    "MAIL with an unterminated path": [
        EHLO, ("MAIL FROM:<sender@remote.example", 501, ANY)],
    "MAIL with two @": [EHLO, ("MAIL FROM:<a@b@remote.example>", 501, ANY)],
    # RFC 5321 4.1.1.11: 555 for a MAIL/RCPT parameter not recognised
    "MAIL with an unknown parameter": [
        EHLO, ("MAIL FROM:<sender@remote.example> FROB=1", 555, "5.5.4")],
    "RCPT without argument": [EHLO, MAIL, ("RCPT", 501, "5.5.4")],
    "RCPT TO: without a path": [EHLO, MAIL, ("RCPT TO:", 501, ANY)],
    "RCPT to the null path": [EHLO, MAIL, ("RCPT TO:<>", 501, ANY)],
    "RCPT with an unknown parameter": [
        EHLO, MAIL, ("RCPT TO:<alice@test.example> FROB=1", 555, "5.5.4")],
    "a refused RCPT keeps the transaction": [
        EHLO, MAIL, ("RCPT TO:", 501, ANY), RCPT, ("RSET", 250, "2.0.0")],
}


@pytest.mark.parametrize("steps", DIALOGUES.values(), ids=DIALOGUES.keys())
def test_reply_codes(tern, steps):
    with tern.connect() as c:
        c.greeting()
        for line, code, enhanced in steps:
            c.cmd(line).expect(code, enhanced)
        c.quit()


def test_expn_is_refused_or_treated_like_vrfy(tern):
    with tern.connect() as c:
        c.hello()
        r = c.cmd("EXPN staff")
        assert (r.code, r.enhanced) in ((252, "2.5.2"), (502, "5.5.1")), r


def test_quit_says_221_and_closes(tern):
    with tern.connect() as c:
        c.hello()
        c.cmd("QUIT").expect(221, "2.0.0")
        c.assert_closed()


# ---------------------------------------------------------------- delivery

def test_mail_lands_in_the_maildir_with_trace_headers(tern):
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<Alice@test.example>").expect(250, "2.1.5")
        c.cmd("DATA").expect(354)
        c.send(b"Subject: hello\r\nMessage-ID: <basic-1@client.example>\r\n"
               b"\r\nHello Alice.\r\nSecond line.\r\n.\r\n")
        r = c.reply().expect(250, "2.0.0")
        qid = queue_id(r)
        assert r.lines[0].endswith(f"queued as {qid}"), r
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert not list((maildir_path(tern.home, "alice") / "tmp").iterdir())
    assert b"\r" not in mail.raw, "Maildir files use LF line ends"
    # the first three lines, in this order, then the message as sent
    head = re.match(
        rb"Return-Path: <sender@remote\.example>\n"
        rb"Delivered-To: (?P<to>[^\n]+)\n"
        rb"Received: from client\.example \(\S+ \[127\.0\.0\.1\]\)\n"
        rb"\tby test\.example \(tern\) with ESMTP id (?P<qid>[0-9A-Z]{14})\n"
        rb"\tfor <(?P<for>[^>]+)>;\s+(?P<date>[^\n]+)\n"
        rb"Subject: hello\n", mail.raw)
    assert head, f"unexpected start of the delivered file:\n{mail.raw[:400]}"
    assert head["qid"].decode() == qid
    assert head["to"].lower() == b"alice@test.example"
    assert head["for"].lower() == b"alice@test.example"
    when = email.utils.parsedate_to_datetime(head["date"].decode())
    if when.tzinfo is None:  # "-0000": UTC, offset unknown (RFC 5322 3.3)
        when = when.replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 300
    assert len(mail.msg.get_all("Received")) == 1
    assert mail.body == b"Hello Alice.\nSecond line.\n"


def test_received_says_smtp_after_helo(tern):
    with tern.connect() as c:
        c.greeting()
        c.cmd("HELO old.example").expect(250)
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    [rcv] = mail.received()
    assert (rcv["helo"], rcv["proto"], rcv["by"]) == \
        ("old.example", "SMTP", HOSTNAME)


def test_two_recipients_get_one_copy_each_without_for_clause(tern):
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(SENDER, ["alice@test.example", "bob@test.example"],
                          message(msgid="<two@client.example>"))
        c.quit()
    for user in ("alice", "bob"):
        [mail] = wait_for_mail(tern.home, user)
        [rcv] = mail.received()
        assert rcv["qid"] == qid and rcv["rcpt"] is None, rcv
        assert mail.msg["Delivered-To"].lower() == f"{user}@test.example"
        assert mail.msg["Message-ID"] == "<two@client.example>"


def test_a_duplicate_recipient_gets_one_copy(tern):
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example", "alice@test.example",
                             "ALICE@TEST.EXAMPLE"], message())
        c.quit()
    wait_for_mail(tern.home, "alice")
    wait_queue_empty(tern.home)
    assert len(maildir_messages(tern.home, "alice")) == 1


@pytest.mark.parametrize("rcpt", ["postmaster", "POSTMASTER",
                                  "postmaster@test.example",
                                  "PostMaster@TEST.EXAMPLE"])
def test_postmaster_is_always_accepted(tern, rcpt):
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, [rcpt], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "postmaster")
    assert mail.msg["Return-Path"] == f"<{SENDER}>"


def test_null_sender_is_accepted(tern):
    with tern.connect() as c:
        c.hello()
        c.send_mail("", ["alice@test.example"], message(subject="bounce"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.raw.startswith(b"Return-Path: <>\n")


def test_subaddress_goes_to_the_user(tern):
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["bob+lists@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "bob")
    assert mail.msg["Delivered-To"].lower() == "bob+lists@test.example"
    assert "bob+lists" not in mail_users(tern.home)


# Local parts that must never become a path component (550 5.1.3).  The
# rows marked "either" are also invalid RFC 5321 syntax, so 501 is an
# equally right refusal for them.
UNSAFE = [
    ('".hidden"@test.example', "5.1.3"),
    ('"a/b"@test.example', "5.1.3"),
    ("a/b@test.example", "5.1.3"),
    ('"../../etc"@test.example', "5.1.3"),
    (".hidden@test.example", "either"),
    ('"a\x01b"@test.example', "either"),
    ("a\x7fb@test.example", "either"),
    ("x" * 65 + "@test.example", "either"),
]


@pytest.mark.parametrize("rcpt,want", UNSAFE, ids=[repr(r) for r, _ in UNSAFE])
def test_unsafe_local_part_is_refused(tern, rcpt, want):
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        if want == "either" and r.code == 501:
            pass
        else:
            r.expect(550, "5.1.3")
        # the transaction goes on with a good recipient
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    wait_for_mail(tern.home, "alice")
    wait_queue_empty(tern.home)
    assert mail_users(tern.home) == ["alice"]
    # "../../etc" would have climbed from mail/ out of the home
    assert not (tern.dir / "etc").exists() and \
        not (tern.home / "etc").exists()


def test_recipients_file_decides_who_exists(tern_factory, rundir):
    users = rundir / "recipients"
    users.write_text("alice\n")
    users.chmod(0o644)
    tern = tern_factory(recipients=f"file:{users}")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<bob@test.example>").expect(550, "5.1.1")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<Alice+tag@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<postmaster>").expect(250, "2.1.5")
        queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    wait_for_mail(tern.home, "alice")
    wait_for_mail(tern.home, "postmaster")
    wait_queue_empty(tern.home)
    assert mail_users(tern.home) == ["alice", "postmaster"]


def test_recipients_system_knows_the_system_users(tern_factory):
    tern = tern_factory(recipients="system")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        # root and system accounts below min-uid only through an alias
        c.cmd("RCPT TO:<root@test.example>").expect(550, "5.1.1")
        c.cmd("RCPT TO:<daemon@test.example>").expect(550, "5.1.1")
        c.cmd("RCPT TO:<nobody@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<no-such-system-user@test.example>") \
            .expect(550, "5.1.1")
        c.cmd("RCPT TO:<postmaster@test.example>").expect(250, "2.1.5")
        c.cmd("RSET").expect(250, "2.0.0")
        c.quit()


def test_mailbox_pattern(tern_factory, rundir):
    home = rundir / "tern0" / "home"
    tern = tern_factory(home=home,
                        mailbox=f"maildir:{home}/boxes/%d/%u/Maildir")
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["Carol+x@TEST.example"], message())
        c.quit()
    [mail] = wait_for_maildir(home / "boxes" / "test.example" / "carol" /
                              "Maildir")
    assert mail.msg["Subject"] == "test"
    assert mail_users(home) == []


def test_foreign_domain_is_not_relayed(tern):
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<victim@elsewhere.example>").expect(554, "5.7.1")
        c.cmd("RCPT TO:<victim@test.example.elsewhere.example>") \
            .expect(554, "5.7.1")
        c.cmd("DATA").expect(503, "5.5.1")
        c.quit()


RELAY_TRICKS = [
    "victim%elsewhere.example@test.example",
    "elsewhere.example!victim@test.example",
    '"victim@elsewhere.example"@test.example',
    "@test.example:victim@elsewhere.example",
    "@elsewhere.example:alice@test.example",
    "@a.example,@b.example:alice@test.example",
]


@pytest.mark.parametrize("rcpt", RELAY_TRICKS)
def test_relay_tricks_are_refused(tern, rcpt):
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code // 100 == 5 and r.enhanced == "5.7.1", r
        c.quit()
    assert mail_users(tern.home) == []


def test_swaks_sends_a_message(tern):
    run = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(tern.port),
         "--helo", CLIENT, "--from", SENDER, "--to", "alice@test.example",
         "--header", "Subject: from swaks", "--body", "Sent by swaks.",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.msg["Subject"] == "from swaks"
    assert b"Sent by swaks." in mail.body


# ---------------------------------------------------------------- stopping

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_master_stops_everything(tern, sig):
    kids = wait_for(lambda: tern.children() if len(tern.children()) >= 2
                    else None, 5, what="the smtpd and queue children")
    os.kill(tern.pid, sig)
    assert tern.proc.wait(5) == 0
    # the master told its children; nobody had to kill them
    wait_for(lambda: not any(pid_alive(k) for k in kids), 5,
             what="the children to exit")
    assert tern.out_path.read_bytes() == b"", "the master writes no stdout"

"""`tern send` (issue 10, item 6): a message composed on the command line
with two attachments, one binary and one text file with a UTF-8 name,
submitted through tern's own submission port (STARTTLS on role=submission,
implicit TLS on role=submissions, AUTH PLAIN with the password from a
file, the server's certificate checked against the test CA) or handed to
the local drop (`tern sendmail`), then read back from the Maildir by
Python's `email` package and compared byte for byte.

Refusals are checked too: a certificate that does not verify (no CA given,
or a name that does not match) ends the submission before any mail is
sent unless --insecure says otherwise; a wrong password; bad arguments.
Each exit status is the sysexits.h one tern(8) documents.
"""

import email
import email.policy
import fcntl
import gzip
import os
import re
import select
import subprocess
import termios
import time

import pytest

from tern_harness import (TERN_BIN, clean_env, maildir_messages, queue_files,
                          run_tern, wait_for_mail)
from test_sendmail import drop_helper  # noqa: F401 (a fixture)
from test_tls_auth import PAULV, start_tern
from tls_fixtures import tls_files

# pytest finds the session fixture by this module's names
FIXTURES = (tls_files,)

EX_USAGE, EX_NOINPUT, EX_UNAVAILABLE, EX_NOPERM = 64, 66, 69, 77

SUBJECT = "Grüße aus dem Rechenzentrum — tern send"
BODY = "Hallo Alice,\n\nanbei zwei Dateien. Größe egal.\n.\nEin Punkt oben.\n"
TEXT_NAME = "Übersicht März 2026 – 日本.txt"
# CRLF, a bare CR and a line with a dot: base64 keeps them all
TEXT_DATA = "Prüfsumme: ok\r\nZeile zwei\n.\nende\r".encode("utf-8")
# gzip of every octet value: binary, whatever its name says, and a type
# libmagic knows from the content alone
BINARY_DATA = gzip.compress(bytes(range(256)) * 3 + b"\x00\r\n.\r\n",
                            mtime=0)
FROM = "paulv@test.example"
TO = "alice@test.example"


@pytest.fixture
def attachments(rundir):
    """The two files to attach: (binary path, text path)."""
    d = rundir / "files"
    d.mkdir(exist_ok=True)
    binary = d / "blob.bin"
    binary.write_bytes(BINARY_DATA)
    text = d / TEXT_NAME
    text.write_bytes(TEXT_DATA)
    return binary, text


@pytest.fixture
def password_file(rundir):
    path = rundir / "paulv.password"
    path.write_text(PAULV[1] + "\n")
    path.chmod(0o600)
    return path


def tern_send(*args, body=BODY, env=None, timeout=60):
    """Run `tern send ARGS` with body on stdin; the CompletedProcess."""
    return subprocess.run([TERN_BIN, "send", *map(str, args)],
                          input=body.encode("utf-8"), capture_output=True,
                          env=clean_env(env), timeout=timeout)


def submit_args(t, tls, password_file, attachments, *, implicit=False,
                ca=True):
    binary, text = attachments
    port = t.submissions if implicit else t.submission
    args = ["-s", SUBJECT, "-a", binary, "-a", text, "--from", FROM,
            "--server", f"127.0.0.1:{port}", "--user", PAULV[0],
            "--password-file", password_file]
    if implicit:
        args.append("--tls=implicit")
    if ca:
        args += ["--ca", tls.ca]
    return args + [TO]


def check_message(mail):
    """The delivered message is the one composed: subject, body and both
    attachments byte for byte, names and types as sent."""
    msg = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert msg["Subject"] == SUBJECT
    assert msg["From"].addresses[0].addr_spec == FROM
    assert [a.addr_spec for a in msg["To"].addresses] == [TO]
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(preferencelist=("plain",))
    assert body.get_content() == BODY
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["blob.bin", TEXT_NAME]
    blob, text = parts
    assert blob["Content-Transfer-Encoding"] == "base64"
    assert blob.get_content_type() == "application/gzip"
    assert blob.get_payload(decode=True) == BINARY_DATA
    assert text["Content-Transfer-Encoding"] == "base64"
    assert text.get_content_type() == "text/plain"
    assert text.get_payload(decode=True) == TEXT_DATA
    # 7-bit clean: the subject (RFC 2047), the name (RFC 2231, UTF-8),
    # the body (quoted-printable) and the parts (base64) all encoded
    assert not any(b >= 0x80 for b in mail.raw), mail.raw
    assert re.search(rb"\n\tfilename\*(0\*)?=UTF-8''", mail.raw), mail.raw
    assert body["Content-Transfer-Encoding"] == "quoted-printable"
    return msg


@pytest.mark.parametrize("implicit", [False, True],
                         ids=["starttls", "implicit-tls"])
def test_send_two_attachments_through_submission(tern_factory, tls_files,
                                                 password_file, attachments,
                                                 implicit):
    t = start_tern(tern_factory, tls_files)
    run = tern_send(*submit_args(t, tls_files, password_file, attachments,
                                 implicit=implicit))
    assert run.returncode == 0, run.stderr.decode()
    mail, = wait_for_mail(t.home, "alice")
    check_message(mail)
    received = " ".join(str(mail.msg.get_all("Received")[0]).split())
    assert " with ESMTPSA (TLSv1." in received, received


def test_send_refuses_a_certificate_that_does_not_verify(
        tern_factory, tls_files, password_file, attachments):
    t = start_tern(tern_factory, tls_files)
    # the system's authorities do not know the test CA
    run = tern_send(*submit_args(t, tls_files, password_file, attachments,
                                 ca=False))
    assert run.returncode == EX_UNAVAILABLE, run.stderr.decode()
    err = run.stderr.decode()
    assert "certificate" in err.lower() and "--ca" in err, err
    assert not maildir_messages(t.home, "alice") and not queue_files(t.home)
    # told so, it sends all the same
    run = tern_send(*submit_args(t, tls_files, password_file, attachments,
                                 ca=False), "--insecure")
    assert run.returncode == 0, run.stderr.decode()
    check_message(wait_for_mail(t.home, "alice")[0])


def test_send_checks_the_host_name(tern_factory, tls_files, password_file,
                                   attachments):
    # a certificate of the test CA, but for other.test.example only
    t = start_tern(tern_factory, tls_files, pairs=[tls_files.other])
    run = tern_send(*submit_args(t, tls_files, password_file, attachments))
    assert run.returncode == EX_UNAVAILABLE, run.stderr.decode()
    assert "127.0.0.1" in run.stderr.decode()
    assert not queue_files(t.home)


def test_send_wrong_password(tern_factory, tls_files, rundir, attachments):
    t = start_tern(tern_factory, tls_files)
    bad = rundir / "bad.password"
    bad.write_text("not-the-password\n")
    run = tern_send(*submit_args(t, tls_files, bad, attachments))
    assert run.returncode == EX_NOPERM, run.stderr.decode()
    assert not queue_files(t.home)
    # the server goes on: the right password works
    good = rundir / "good.password"
    good.write_text(PAULV[1] + "\n")
    run = tern_send(*submit_args(t, tls_files, good, attachments))
    assert run.returncode == 0, run.stderr.decode()
    check_message(wait_for_mail(t.home, "alice")[0])


def test_send_asks_the_password_on_the_terminal(tern_factory, tls_files,
                                                attachments):
    """Without --password-file the password is read from /dev/tty, not
    from standard input (the body), without echo."""
    t = start_tern(tern_factory, tls_files)
    args = submit_args(t, tls_files, "unused", attachments)
    i = args.index("--password-file")
    del args[i:i + 2]
    master, slave = os.openpty()

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([TERN_BIN, "send", *map(str, args)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env(),
                            preexec_fn=controlling_terminal, pass_fds=(slave,))
    os.close(slave)
    try:
        proc.stdin.write(BODY.encode())
        proc.stdin.close()
        seen = b""
        deadline = time.monotonic() + 30
        while b"Password: " not in seen:
            assert time.monotonic() < deadline, f"no prompt: {seen!r}"
            if select.select([master], [], [], 1)[0]:
                seen += os.read(master, 1024)
        os.write(master, PAULV[1].encode() + b"\n")
        assert proc.wait(30) == 0, proc.stderr.read()
        # what was typed was not echoed back
        time.sleep(0.2)
        if select.select([master], [], [], 0)[0]:
            seen += os.read(master, 1024)
        assert PAULV[1].encode() not in seen, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    check_message(wait_for_mail(t.home, "alice")[0])


def test_send_attachment_over_the_limit(rundir):
    # 64 MiB is read at the most (SEND_INPUT_MAX): a sparse file one
    # octet longer is refused before anything is composed
    big = rundir / "big"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)
    run = tern_send("-s", "x", "-a", big, "--print", TO)
    assert run.returncode == EX_NOINPUT, run.stderr
    assert b"larger than 64 MiB" in run.stderr
    assert run.stdout == b""


def test_send_refused_sender_is_permanent(tern_factory, tls_files,
                                          password_file, attachments):
    # paulv may not send as someone else: 5xx, exit 69, nothing queued
    t = start_tern(tern_factory, tls_files)
    args = submit_args(t, tls_files, password_file, attachments)
    args[args.index("--from") + 1] = "ceo@elsewhere.example"
    run = tern_send(*args)
    assert run.returncode == EX_UNAVAILABLE, run.stderr.decode()
    assert not queue_files(t.home)


@pytest.mark.parametrize("args, status, words", [
    (["alice@test.example"], EX_USAGE, "no subject"),
    (["-s", "x"], EX_USAGE, "no recipient"),
    (["-s", "x", "not an address"], EX_USAGE, "not"),
    (["-s", "x", "a@b.example\r\nBcc: c@d.example"], EX_USAGE, "not"),
    (["-s", "x\nBcc: c@d.example", "a@b.example"], EX_USAGE, "one line"),
    (["-s", "x", "-a", "/nonexistent/file", "a@b.example"], EX_NOINPUT,
     "cannot read"),
    (["-s", "x", "-a", "/", "a@b.example"], EX_NOINPUT, "regular file"),
    (["-s", "x", "--tls=none", "--server", "127.0.0.1:1", "a@b.example"],
     EX_USAGE, "--tls"),
    (["-s", "x", "--from", "a@b.example", "--server", "127.0.0.1:1/x",
      "a@b.example"], EX_USAGE, "--server"),
    (["-s", "x", "--server", "127.0.0.1:1", "a@b.example"], EX_USAGE,
     "--from"),
    (["-s", "x", "--insecure", "a@b.example"], EX_USAGE, "--server"),
], ids=["no-subject", "no-rcpt", "bad-rcpt", "header-injection",
        "subject-injection", "missing-file", "directory", "tls-none",
        "bad-server", "no-from", "insecure-alone"])
def test_send_usage_errors(args, status, words):
    run = tern_send(*args)
    assert run.returncode == status, (run.returncode, run.stderr)
    assert words in run.stderr.decode(), run.stderr
    assert run.stdout == b""


def test_send_no_server_is_a_temporary_failure(rundir, password_file):
    # nothing listens on port 1: worth trying again (EX_TEMPFAIL)
    run = tern_send("-s", "x", "--from", FROM, "--server", "127.0.0.1:1",
                    "--user", PAULV[0], "--password-file", password_file,
                    TO)
    assert run.returncode == 75, run.stderr
    assert "try again" in run.stderr.decode()


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="the setgid tern-drop needs root to set up")
def test_send_two_attachments_through_the_local_drop(tern_factory,
                                                     attachments,
                                                     drop_helper):
    # the drop the way `make install` sets it up: tern-drop setgid
    # terndrop (test_sendmail.drop_helper), named by TERN_DROP
    t = tern_factory()
    binary, text = attachments
    run = tern_send("-c", t.conf_path, "-s", SUBJECT, "-a", binary, "-a",
                    text, "--from", FROM, TO,
                    env={"TERN_DROP": str(drop_helper)})
    assert run.returncode == 0, run.stderr.decode()
    mail, = wait_for_mail(t.home, "alice")
    check_message(mail)


def test_send_print_is_the_message(attachments):
    # --print writes what would be sent: the same MIME, LF line ends
    binary, text = attachments
    run = tern_send("-s", SUBJECT, "-a", binary, "-a", text, "--from", FROM,
                    "--print", TO)
    assert run.returncode == 0, run.stderr
    assert b"\r\n" not in run.stdout.split(b"\n\n", 1)[0]
    msg = email.message_from_bytes(run.stdout, policy=email.policy.default)
    parts = list(msg.iter_attachments())
    assert [p.get_payload(decode=True) for p in parts] == [BINARY_DATA,
                                                           TEXT_DATA]
    assert os.path.basename(str(text)) == parts[1].get_filename()

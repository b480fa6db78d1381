"""Outbound TLS policy (src/mta.c, src/mta_session.c): per destination
`tls=none|may|encrypt|verify`, `ca=FILE` for verify, and the TLS outcome
in the delivery log line.

tern relays example.net by a route to a Python SMTP sink on loopback
(smtp_peer.SMTPPeer) that offers STARTTLS with a self-signed certificate
or with one signed by the test CA (tls_fixtures: mail.test.example with
localhost and 127.0.0.1, other.test.example), and to a private Postfix
with STARTTLS.  The route names the host as [localhost], so tls=verify
checks the name "localhost" (resolved by libunbound from /etc/hosts).

RFC 3207 (STARTTLS), RFC 6125 (the host name in the certificate),
RFC 5321 4.5.4.1 (a temporary failure stays queued and is retried).
"""

import os
import re
import signal
import time

import pytest

from postfix_peer import PostfixInstance, postfix_available
from smtp_peer import SMTPPeer
from tern_harness import queue_files, run_tern, wait_for, wait_queue_empty
from tls_fixtures import tls_files  # noqa: F401 (a fixture)

REMOTE = "example.net"
LOCAL_SENDER = "alice@test.example"
# retries every second or two, so a deferred message is tried again soon;
# a lifetime long enough that nothing bounces during a test
FAST = {
    "retry": "first=1s max=2s lifetime=10m",
    "timeouts": "remote-command=5s remote-data=5s",
}
# "relay=HOST, tls=VALUE, delay=": the TLS field of a delivery log line
TLS_FIELD_RE = re.compile(r", tls=(?P<tls>[^,\s]+), delay=")
# a TLS outcome: protocol/cipher[/verified]
TLS_VALUE_RE = re.compile(
    r"^(?P<version>TLSv1\.[23])/(?P<cipher>[A-Z0-9_-]+)"
    r"(?P<verified>/verified)?$")


# ---------------------------------------------------------------- helpers

def route_line(port, opts="", host="localhost"):
    """The route of example.net to the peer: [HOST]:PORT OPTS."""
    return f"{REMOTE} [{host}]:{port}{' ' + opts if opts else ''}"


def relay(tern_factory, port, opts="", host="localhost"):
    """A tern that relays example.net to port on host."""
    return tern_factory(relay_domains=REMOTE,
                        route=route_line(port, opts, host), **FAST)


def submit(tern, rcpt=f"bob@{REMOTE}"):
    """One message into tern; returns its queue id."""
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(LOCAL_SENDER, [rcpt],
                          b"Subject: tls\r\n\r\nOver TLS, or not.\r\n")
        c.quit()
    return qid


def log_lines(tern, qid, pattern):
    rx = re.compile(pattern)
    return [line for line in tern.log_text().splitlines()
            if qid in line and rx.search(line)]


def wait_log(tern, qid, pattern, timeout=20.0):
    """Wait for a log line about qid matching pattern; return them all."""
    return wait_for(lambda: log_lines(tern, qid, pattern), timeout,
                    what=lambda: f"a log line /{pattern}/ for {qid}\n"
                    f"{tern.log_tail()}")


def tls_of(line):
    """The tls= value of a delivery log line (the field must be there)."""
    m = TLS_FIELD_RE.search(line)
    assert m, f"no tls= field in the delivery log line: {line}"
    return m["tls"]


def envelope_text(tern, qid):
    """The queued envelope of qid (spool/queue/ID.env)."""
    path = tern.home / "spool" / "queue" / f"{qid}.env"
    return path.read_text(errors="replace")


def reload(tern, route):
    """Rewrite tern.conf with another route and send SIGHUP to the master:
    it reads the configuration again and starts a new queue process."""
    tern.keys["route"] = route
    tern.write_config()
    os.kill(tern.pid, signal.SIGHUP)
    wait_for(lambda: "SIGHUP: configuration and certificates read again"
             in tern.log_text(), 10,
             what=lambda: f"the SIGHUP reload\n{tern.log_tail()}")


# ---------------------------------------------------------------- may, none

def test_may_delivers_encrypted_to_a_self_signed_peer(tern_factory):
    """tls=may (the default): STARTTLS when offered, the certificate not
    checked; the log line names protocol and cipher, not "verified"."""
    with SMTPPeer(tls=True) as peer:
        tern = relay(tern_factory, peer.port)
        qid = submit(tern)
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is not None
        version, cipher = txn.conn.tls
        [line] = wait_log(tern, qid, r"status=sent")
        assert tls_of(line) == f"{version}/{cipher}", line
        assert TLS_VALUE_RE.match(tls_of(line))["verified"] is None
        wait_queue_empty(tern.home)


def test_the_client_ends_its_tls_session_with_close_notify(tern_factory):
    """After QUIT under STARTTLS, tern's close_notify alert comes before
    the end of the stream (RFC 8446 6.1), so the server can tell an
    orderly close from a cut connection."""
    with SMTPPeer(tls=True) as peer:
        tern = relay(tern_factory, peer.port)
        submit(tern)
        [txn] = peer.wait_delivered(1)
        conn = txn.conn
        deadline = time.monotonic() + 20  # the idle connection's QUIT
        while not conn.closed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert conn.quit and conn.closed, conn
        assert conn.close_notify is True, \
            "the TLS stream ended without close_notify"


def test_none_never_uses_starttls_even_when_offered(tern_factory):
    with SMTPPeer(tls=True) as peer:
        tern = relay(tern_factory, peer.port, "tls=none")
        qid = submit(tern)
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is None
        assert "STARTTLS" not in txn.conn.commands
        [line] = wait_log(tern, qid, r"status=sent")
        assert tls_of(line) == "none", line


def test_plaintext_peer_under_may_logs_tls_none(tern_factory):
    with SMTPPeer() as peer:
        tern = relay(tern_factory, peer.port)
        qid = submit(tern)
        peer.wait_delivered(1)
        [line] = wait_log(tern, qid, r"status=sent")
        assert tls_of(line) == "none", line


def test_local_delivery_has_no_tls_field(tern_factory):
    tern = tern_factory()
    qid = submit(tern, "carol@test.example")
    [line] = wait_log(tern, qid, r"status=sent")
    assert "relay=local" in line and ", tls=" not in line, line


# ---------------------------------------------------------------- encrypt

def test_encrypt_to_a_peer_without_starttls_defers_with_4_7_5(tern_factory):
    with SMTPPeer() as peer:
        tern = relay(tern_factory, peer.port, "tls=encrypt")
        qid = submit(tern)
        line = wait_log(tern, qid, r"status=deferred")[0]
        assert "dsn=4.7.5" in line and "does not offer STARTTLS" in line
        assert tls_of(line) == "none", line
        assert peer.transactions == []
        assert f"{qid}.env" in queue_files(tern.home)


def test_encrypt_takes_a_self_signed_certificate(tern_factory):
    with SMTPPeer(tls=True) as peer:
        tern = relay(tern_factory, peer.port, "tls=encrypt")
        qid = submit(tern)
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is not None
        [line] = wait_log(tern, qid, r"status=sent")
        assert TLS_VALUE_RE.match(tls_of(line))["verified"] is None, line


# ---------------------------------------------------------------- verify

def test_verify_uses_the_system_cas(tern_factory, tls_files):
    """tls=verify without ca=: the chain is checked against the system's
    CA certificates, read at the first connection that needs them.
    OpenSSL takes the system's file from SSL_CERT_FILE when it is set:
    here the test CA is the system's only one."""
    mail = tls_files.mail
    with SMTPPeer(tls_cert=(mail.cert, mail.key)) as peer:
        tern = tern_factory(relay_domains=REMOTE,
                            route=route_line(peer.port, "tls=verify"),
                            env={"SSL_CERT_FILE": str(tls_files.ca)},
                            **FAST)
        qid = submit(tern)
        [txn] = peer.wait_delivered(1)
        version, cipher = txn.conn.tls
        [sent] = wait_log(tern, qid, r"status=sent")
        assert tls_of(sent) == f"{version}/{cipher}/verified", sent


def test_verify_defers_until_the_ca_is_configured(tern_factory, tls_files):
    """tls=verify against the system CAs: the test CA is not among them, so
    the handshake fails, the message stays queued with the reason in the
    log and in its envelope.  After tern.conf gets ca= and the master a
    SIGHUP, the next retry delivers, and the log line says verified."""
    mail = tls_files.mail
    with SMTPPeer(tls_cert=(mail.cert, mail.key)) as peer:
        tern = relay(tern_factory, peer.port, "tls=verify")
        qid = submit(tern)
        line = wait_log(tern, qid, r"status=deferred")[0]
        why = "certificate verify failed: unable to get local issuer " \
              "certificate"
        assert "dsn=4.7.5" in line and why in line, line
        assert tls_of(line) == "none", line
        assert peer.transactions == []
        # the handshake got as far as the certificate, and no further
        assert any(c.tls_failed for c in peer.connections), peer.connections
        # the log line is written before the envelope is rewritten
        env = wait_for(lambda: "state deferred" in envelope_text(tern, qid)
                       and envelope_text(tern, qid),
                       what=lambda: envelope_text(tern, qid))
        assert why in env and "4.7.5" in env, env

        reload(tern, route_line(peer.port, f"tls=verify ca={tls_files.ca}"))
        [txn] = peer.wait_delivered(1, timeout=30)
        assert txn.conn.tls is not None
        version, cipher = txn.conn.tls
        [sent] = wait_log(tern, qid, r"status=sent", timeout=30)
        assert tls_of(sent) == f"{version}/{cipher}/verified", sent
        assert re.search(r"verified TLS with localhost\[", tern.log_text())
        wait_queue_empty(tern.home)


def test_verify_with_the_ca_delivers_at_once(tern_factory, tls_files):
    mail = tls_files.mail
    with SMTPPeer(tls_cert=(mail.cert, mail.key)) as peer:
        tern = relay(tern_factory, peer.port,
                     f"tls=verify ca={tls_files.ca}")
        qid = submit(tern)
        [txn] = peer.wait_delivered(1)
        assert txn.conn.tls is not None
        [line] = wait_log(tern, qid, r"status=sent")
        assert TLS_VALUE_RE.match(tls_of(line))["verified"], line
        assert not log_lines(tern, qid, r"status=deferred")


def test_verify_with_the_right_ca_but_another_name_defers(tern_factory,
                                                          tls_files):
    """The certificate chains to the CA but names other.test.example, not
    localhost: a name mismatch is a verify failure too."""
    other = tls_files.other
    with SMTPPeer(tls_cert=(other.cert, other.key)) as peer:
        tern = relay(tern_factory, peer.port,
                     f"tls=verify ca={tls_files.ca}")
        qid = submit(tern)
        line = wait_log(tern, qid, r"status=deferred")[0]
        assert "dsn=4.7.5" in line, line
        assert "certificate verify failed: hostname mismatch" in line, line
        assert "localhost" in line
        assert peer.transactions == []
        assert f"{qid}.env" in queue_files(tern.home)


def test_verify_checks_an_ip_address_route_against_the_ip_san(tern_factory,
                                                              tls_files):
    """[127.0.0.1] is checked against the certificate's IP address."""
    mail = tls_files.mail
    with SMTPPeer(tls_cert=(mail.cert, mail.key)) as peer:
        tern = relay(tern_factory, peer.port,
                     f"tls=verify ca={tls_files.ca}", host="127.0.0.1")
        qid = submit(tern)
        peer.wait_delivered(1)
        [line] = wait_log(tern, qid, r"status=sent")
        assert tls_of(line).endswith("/verified"), line


def test_verify_refuses_a_self_signed_peer(tern_factory, tls_files):
    """A CA file that did not sign the peer's certificate."""
    with SMTPPeer(tls=True) as peer:
        tern = relay(tern_factory, peer.port,
                     f"tls=verify ca={tls_files.ca}", host="127.0.0.1")
        qid = submit(tern)
        line = wait_log(tern, qid, r"status=deferred")[0]
        assert "dsn=4.7.5" in line and "certificate verify failed" in line
        assert peer.transactions == []


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs tern to drop to its own user")
def test_a_ca_file_tern_cannot_read_defers_with_the_reason(tern_factory,
                                                           tls_files,
                                                           rundir):
    """The master checks that ca= exists; the queue process, as the tern
    user, reads it: a file only root may read fails each attempt, the mail
    stays queued, and the log says why."""
    ca = rundir / "private-ca.pem"
    ca.write_bytes(tls_files.ca.read_bytes())
    ca.chmod(0o600)
    mail = tls_files.mail
    with SMTPPeer(tls_cert=(mail.cert, mail.key)) as peer:
        tern = relay(tern_factory, peer.port, f"tls=verify ca={ca}")
        qid = submit(tern)
        line = wait_log(tern, qid, r"status=deferred")[0]
        assert "dsn=4.7.5" in line, line
        assert f"cannot use the CA file {ca}: Permission denied" in line
        assert peer.connections == []


def test_ca_without_verify_is_a_configuration_error(tern_factory,
                                                    tls_files):
    tern = tern_factory(start=False, relay_domains=REMOTE,
                        route=route_line(2525, f"ca={tls_files.ca}"))
    tern.write_config()
    r = run_tern("check-config", "-c", str(tern.conf_path))
    assert r.returncode != 0
    assert re.search(r"tern\.conf:\d+: route: ca= needs tls=verify, not "
                     r"tls=may", r.stderr), r.stderr


# ---------------------------------------------------------------- Postfix

_ok, _why = postfix_available()


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="a private Postfix instance needs root")
@pytest.mark.skipif(not _ok, reason=_why)
def test_postfix_receives_from_tern_over_verified_starttls(tern_factory,
                                                           tls_files,
                                                           rundir):
    """tern -> Postfix smtpd with STARTTLS (smtpd_tls_security_level =
    may), tern verifying Postfix's certificate with ca=: Postfix logs the
    TLS session and writes "with ESMTPS" in its Received: header."""
    mail = tls_files.mail
    pf = PostfixInstance(rundir / "postfix", domains=[REMOTE],
                         tls_cert=mail.cert, tls_key=mail.key)
    try:
        pf.start()
        tern = relay(tern_factory, pf.port, f"tls=verify ca={tls_files.ca}")
        qid = submit(tern)
        [msg] = wait_for(lambda: pf.messages(), 30,
                         what=lambda: f"the message in Postfix's Maildir\n"
                         f"{pf.log_tail()}\n{tern.log_tail()}")
        [line] = wait_log(tern, qid, r"status=sent")
        assert tls_of(line).endswith("/verified"), line
        top = " ".join(msg.msg.get_all("Received")[0].split())
        assert re.search(r"by postfix\.test \(Postfix\) with ESMTPS id ",
                         top), top
        assert re.search(r"TLS connection established from "
                         r"\S+\[127\.0\.0\.1\]: TLSv1\.[23] with cipher",
                         pf.log_text()), pf.log_tail()
        wait_queue_empty(tern.home)
    finally:
        pf.stop()

"""How an inbound TLS session behaves at its edges (issue 12): the bound on
replies a client leaves unread holds under STARTTLS and implicit TLS too,
the replies to pipelined commands share TLS records, a session tern
closes ends with a TLS close_notify (RFC 8446 6.1, RFC 5246 7.2.1), and
the TLS 1.2 ciphers offered by default have forward secrecy and
authenticated encryption, with `tls-ciphers compat` for old peers.

The client that never reads runs TLS through ssl.MemoryBIO over a plain
socket, so that one thread can send for as long as tern takes its
commands and read nothing (a blocking SSLSocket shared by two threads
could not).  The other clients are ssl sockets and `openssl s_client`.
"""

import re
import select
import socket
import ssl
import subprocess
import time

import pytest

from tern_harness import (ASAN, CLIENT, SMTPClient, free_port, proc_status,
                          run_tern, wait_for)
from test_deadlines import trickle
from test_tls_auth import HOST, MAIL_NAME, openssl_starttls, start_tern
from tls_fixtures import tls_files  # noqa: F401 (a fixture)

ROLES = ["smtp", "submission", "submissions"]


def role_port(tern, role):
    return {"smtp": tern.port, "submission": tern.submission,
            "submissions": tern.submissions}[role]


def strict_context(tls):
    """The test CA's client context, where an EOF without close_notify is
    an error ("unexpected eof while reading") rather than an end of
    stream."""
    ctx = tls.client_context()
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


# ---------------------------------------------------------------- the smtpd

def smtpd_pid(tern):
    """The smtpd: the master's child that is not the queue process."""
    queue = wait_for(tern.queue_process, 5, what="the queue process")
    [pid] = [p for p in tern.children() if p != queue]
    return pid


def rss_kib(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


# ---------------------------------------------------------------- TLS by hand

class TLSPipe:
    """A TLS client over a non-blocking socket through ssl.MemoryBIO: it
    encrypts and sends without ever reading unless told to."""

    def __init__(self, sock, context, server_hostname=MAIL_NAME):
        self.sock = sock
        self.sock.setblocking(False)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.inc, self.out,
                                    server_hostname=server_hostname)
        self.pending = b""  # ciphertext not yet taken by the socket
        self.plain = b""    # decrypted, not yet consumed
        self.eof = False
        self.received = 0   # octets from the server

    def send_some(self):
        """Send what the socket takes now; the number of octets sent."""
        self.pending += self.out.read()
        sent = 0
        while self.pending:
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                break
            self.pending = self.pending[n:]
            sent += n
        return sent

    def recv_some(self, wait):
        """Wait up to wait seconds for input, decrypt what came."""
        r, _, _ = select.select([self.sock], [], [], wait)
        if not r:
            return
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        self.received += len(data)
        if not data:
            self.eof = True
            self.inc.write_eof()
        else:
            self.inc.write(data)
        self.decrypt()

    def decrypt(self):
        while True:
            try:
                chunk = self.obj.read(1 << 20)
            except ssl.SSLWantReadError:
                return
            if not chunk:
                return
            self.plain += chunk

    def flush(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        self.send_some()
        while self.pending:
            assert time.monotonic() < deadline, "tern took nothing"
            select.select([], [self.sock], [], 0.1)
            self.send_some()

    def handshake(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                assert time.monotonic() < deadline, "no TLS handshake"
                self.recv_some(0.1)

    def write(self, data):
        self.obj.write(data)
        self.flush()

    def line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.plain:
            assert not self.eof, f"closed; have {self.plain[:200]!r}"
            assert time.monotonic() < deadline, (
                f"no reply line; have {self.plain[:200]!r}")
            self.recv_some(0.1)
        line, _, self.plain = self.plain.partition(b"\r\n")
        return line

    def reply(self):
        """The lines of one whole reply."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return lines

    def cmd(self, text):
        self.write(text.encode() + b"\r\n")
        return self.reply()


def encrypted_session(tern, tls, role):
    """Greeted, EHLO'd and encrypted (STARTTLS or implicit), EHLO again:
    a TLSPipe ready for commands."""
    port = role_port(tern, role)
    if role == "submissions":
        sock = socket.create_connection((HOST, port), timeout=10)
        pipe = TLSPipe(sock, tls.client_context())
        pipe.handshake()
        assert pipe.reply()[0].startswith(b"220 ")
    else:
        c = SMTPClient(HOST, port)
        c.hello()
        c.cmd("STARTTLS").expect(220, "2.0.0")
        assert not c.buf
        pipe = TLSPipe(c.sock, tls.client_context())
        pipe.handshake()
    assert pipe.cmd(f"EHLO {CLIENT}")[-1].startswith(b"250 ")
    return pipe


# ---------------------------------------------------------------- unread replies

NOOPS = 200_000 if ASAN else 3_500_000  # 21 MB of commands
CHUNK_LINES = 1000


@pytest.mark.parametrize("role", ROLES)
def test_tls_client_that_does_not_read_is_held_back(tern_factory, tls_files,
                                                    role):
    """A client that pipelines NOOPs under TLS without reading: tern stops
    taking its commands once the replies it has not read pass the bound,
    whether they wait as plaintext or as TLS records (under STARTTLS they
    wait below the TLS filter); others are served meanwhile, and once the
    client reads, every reply comes in order and the session goes on."""
    tern = start_tern(tern_factory, tls_files)
    pipe = encrypted_session(tern, tls_files, role)
    smtpd = smtpd_pid(tern)
    before = rss_kib(smtpd)
    chunk = b"NOOP\r\n" * CHUNK_LINES
    chunks = NOOPS // CHUNK_LINES
    written = 0  # chunks handed to TLS

    # send without reading until everything is sent or tern takes nothing
    # for a second (bounded: 30 s)
    deadline = time.monotonic() + 30
    progress = time.monotonic()
    while written < chunks and time.monotonic() < deadline:
        if not pipe.pending:
            pipe.obj.write(chunk)
            written += 1
        if pipe.send_some() > 0:
            progress = time.monotonic()
        elif time.monotonic() - progress > 1.0:
            break
        else:
            select.select([], [pipe.sock], [], 0.1)
    time.sleep(0.5)
    grown = rss_kib(smtpd) - before
    # the bound is 64 KiB of replies in each buffer and 64 KiB read
    # ahead; megabytes mean the replies pile up (not under ASan, whose
    # quarantine keeps freed memory)
    if not ASAN:
        assert grown < 16 * 1024, (
            f"the smtpd grew by {grown} KiB after {written} of {chunks} "
            f"chunks of NOOPs sent without reading")

    # another client is served meanwhile
    with SMTPClient(HOST, tern.port) as other:
        other.hello()
        other.cmd("NOOP").expect(250, "2.0.0")
        other.quit()

    # now read (and send the rest): every reply, in order (bounded: 120 s)
    want = chunks * CHUNK_LINES
    got = 0
    deadline = time.monotonic() + 120
    while got < want:
        assert time.monotonic() < deadline, f"{got} of {want} replies"
        assert not pipe.eof, f"connection closed after {got} replies"
        if written < chunks and not pipe.pending:
            pipe.obj.write(chunk)
            written += 1
        pipe.send_some()
        pipe.recv_some(0.05)
        end = pipe.plain.rfind(b"\r\n")
        if end < 0:
            continue
        lines = pipe.plain[:end].split(b"\r\n")
        pipe.plain = pipe.plain[end + 2:]
        bad = [x for x in lines if x != b"250 2.0.0 Ok"]
        assert not bad, f"after {got} replies: {bad[:3]}"
        got += len(lines)
    assert got == want and not pipe.plain
    assert pipe.cmd("NOOP") == [b"250 2.0.0 Ok"]
    assert pipe.cmd("QUIT") == [b"221 2.0.0 Bye"]
    pipe.sock.close()


@pytest.mark.parametrize("role", ["smtp", "submissions"])
def test_pipelined_replies_share_tls_records(tern_factory, tls_files, role):
    """The replies to pipelined commands leave in records as full as they
    come, not a record or two per reply: a 14-octet reply in a record of
    its own costs 22 octets more (TLS 1.3), and its own SSL_write."""
    tern = start_tern(tern_factory, tls_files)
    pipe = encrypted_session(tern, tls_files, role)
    n = 10_000
    want = b"250 2.0.0 Ok\r\n" * n
    start = pipe.received
    pipe.write(b"NOOP\r\n" * n)
    deadline = time.monotonic() + 30
    while len(pipe.plain) < len(want):
        assert not pipe.eof, f"closed after {len(pipe.plain)} octets"
        assert time.monotonic() < deadline, (
            f"{len(pipe.plain)} of {len(want)} octets of replies")
        pipe.recv_some(0.1)
    assert pipe.plain == want
    pipe.plain = b""
    wire = pipe.received - start
    assert wire < len(want) * 1.1, (
        f"{wire} octets of TLS for {len(want)} octets of replies")
    assert pipe.cmd("QUIT") == [b"221 2.0.0 Bye"]
    pipe.sock.close()


# ---------------------------------------------------------------- handshakes

def client_hello(tls):
    """The octets of a TLS ClientHello to tern."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls.client_context().wrap_bio(inc, out, server_hostname=MAIL_NAME)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def closed_after(sock, t0, limit):
    """Seconds from t0 until the server closes sock, which must bring
    nothing more (waited for at most limit seconds)."""
    sock.settimeout(limit)
    try:
        assert sock.recv(4096) == b""
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


@pytest.mark.parametrize("role, how", [("smtp", "trickled"),
                                       ("submissions", "silent")])
def test_a_tls_handshake_must_be_done_within_the_command_timeout(
        tern_factory, tls_files, role, how):
    """A client that starts TLS (STARTTLS, or by connecting to the
    implicit-TLS port) and then sends nothing, or its ClientHello a byte
    at a time, is disconnected when the command timeout passes: no reply
    can reach it before the handshake, so none is waited for."""
    tern = start_tern(tern_factory, tls_files, timeouts="command=3s")
    c = SMTPClient(HOST, role_port(tern, role))
    try:
        if role == "smtp":
            c.hello()
            c.cmd("STARTTLS").expect(220, "2.0.0")
        hello = client_hello(tls_files) if how == "trickled" else b""
        t0 = time.monotonic()
        if hello:
            trickle(c, hello, 0.25, limit=15)
        took = closed_after(c.sock, t0, 15)
    finally:
        c.close()
    assert 2.5 <= took <= 5, f"disconnected after {took:.1f} s"
    assert "no TLS handshake since the server was ready" in tern.log_text()
    # and a client that does its handshake is served
    with strict_session(tern, tls_files, role) as c2:
        c2.cmd("NOOP").expect(250, "2.0.0")


def test_a_refusal_at_connect_on_the_implicit_tls_port(tern_factory,
                                                      tls_files):
    """A client refused at connect (here past client-sessions=) on the
    implicit-TLS port gets its 421 encrypted once its handshake is done;
    one that never starts its handshake is disconnected after the 10 s a
    closing session has to take its last reply, not kept for ever."""
    tern = start_tern(tern_factory, tls_files, limits="client-sessions=1")
    # from an address of their own: tern's readiness probe came from HOST
    src = "127.0.0.2"
    with SMTPClient(HOST, tern.port, source=src) as held:
        held.hello()
        c = SMTPClient(HOST, tern.submissions, source=src)
        try:
            c.wrap_tls(strict_context(tls_files), MAIL_NAME)
            rest = read_to_close(c, timeout=10)
        finally:
            c.close()
        assert rest.startswith(b"421 4.7.0 ") and b"too many connections" \
            in rest, rest
        silent = socket.create_connection((HOST, tern.submissions),
                                          source_address=(src, 0))
        try:
            took = closed_after(silent, time.monotonic(), 30)
        finally:
            silent.close()
        assert 9 <= took <= 14, f"disconnected after {took:.1f} s"
        assert "did not take the last reply within 10 s" in tern.log_text()
        held.cmd("NOOP").expect(250, "2.0.0")


# ---------------------------------------------------------------- close_notify

def read_to_close(c, timeout=5.0):
    """Everything c still receives until the server ends the stream: b""
    from recv means a close_notify came; an EOF without one raises
    ssl.SSLError (strict_context)."""
    data, c.buf = c.buf, b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"the server did not close; have {data!r}"
        c.sock.settimeout(left)
        chunk = c.sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def strict_session(tern, tls, role):
    """An encrypted SMTPClient (EHLO'd again) whose context wants a
    close_notify before the end of the stream."""
    port = role_port(tern, role)
    c = SMTPClient(HOST, port)
    if role == "submissions":
        c.wrap_tls(strict_context(tls), MAIL_NAME)
        c.greeting()
    else:
        c.hello()
        c.cmd("STARTTLS").expect(220, "2.0.0")
        c.wrap_tls(strict_context(tls), MAIL_NAME)
    c.cmd(f"EHLO {CLIENT}").expect(250)
    return c


@pytest.mark.parametrize("role", ROLES)
def test_quit_under_tls_ends_with_close_notify(tern_factory, tls_files,
                                               role):
    tern = start_tern(tern_factory, tls_files)
    with strict_session(tern, tls_files, role) as c:
        c.cmd("NOOP").expect(250, "2.0.0")
        c.send("QUIT\r\n")
        try:
            rest = read_to_close(c)
        except ssl.SSLError as e:
            pytest.fail(f"the stream ended without close_notify: {e}")
    assert rest == b"221 2.0.0 Bye\r\n"


@pytest.mark.parametrize("role", ["smtp", "submissions"])
def test_timeout_under_tls_ends_with_close_notify(tern_factory, tls_files,
                                                  role):
    tern = start_tern(tern_factory, tls_files, timeouts="command=1s")
    with strict_session(tern, tls_files, role) as c:
        try:
            rest = read_to_close(c, timeout=10)
        except ssl.SSLError as e:
            pytest.fail(f"the stream ended without close_notify: {e}")
    assert rest.startswith(b"421 4.4.2 ") and rest.endswith(b"\r\n"), rest
    assert rest.count(b"\r\n") == 1, rest


def test_too_many_errors_under_tls_ends_with_close_notify(tern_factory,
                                                          tls_files):
    # each error is answered a quarter second later than the one before:
    # a bound of 5 keeps the wait short (2.5 s)
    tern = start_tern(tern_factory, tls_files, limits="client-errors=5")
    with strict_session(tern, tls_files, "submission") as c:
        c.send(b"BOGUS\r\n" * 5)
        try:
            rest = read_to_close(c, timeout=15.0)
        except ssl.SSLError as e:
            pytest.fail(f"the stream ended without close_notify: {e}")
    # each error answered, the fifth then ends the session
    lines = rest.split(b"\r\n")
    assert lines[-1] == b"" and lines[-2].startswith(b"421 4.7.0 "), rest
    assert lines[:-2] == [b"500 5.5.2 Error: command not recognized"] * 5


# ---------------------------------------------------------------- ciphers

# (openssl s_client options, the cipher agreed or None when the handshake
# must fail, what the row tests); the server's certificate has an RSA key
MODERN_ROWS = [
    (["-tls1_2", "-cipher", "AES128-SHA256"], None,
     "RSA key exchange, CBC"),
    (["-tls1_2", "-cipher", "AES128-GCM-SHA256"], None,
     "RSA key exchange: no forward secrecy"),
    (["-tls1_2", "-cipher", "AES256-SHA"], None,
     "RSA key exchange, CBC with SHA-1"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"], None,
     "forward secrecy, but CBC"),
    (["-tls1_2", "-cipher", "DHE-RSA-AES128-SHA256"], None,
     "DHE, but CBC"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
     "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE with AES-GCM"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
     "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE with AES-256-GCM"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
     "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE with ChaCha20-Poly1305"),
    (["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"],
     "DHE-RSA-AES128-GCM-SHA256", "DHE for a client without ECDHE"),
    (["-tls1_2"], "ECDHE-RSA-AES128-GCM-SHA256",
     "the server's first choice at TLS 1.2"),
    (["-tls1_3"], "TLS_AES_256_GCM_SHA384", "TLS 1.3"),
]

COMPAT_ROWS = [
    # RSA key exchange decrypts with the private key, which ca keeps
    (["-tls1_2", "-cipher", "AES128-SHA256"], None,
     "RSA key exchange, CBC"),
    (["-tls1_2", "-cipher", "AES128-GCM-SHA256"], None,
     "RSA key exchange"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"],
     "ECDHE-RSA-AES128-SHA256", "ECDHE, CBC"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
     "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE with AES-GCM"),
    (["-tls1_3"], "TLS_AES_256_GCM_SHA384", "TLS 1.3"),
    (["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], None,
     "still no TLS 1.1"),
]

CIPHERSUITE_RE = re.compile(r"^Ciphersuite: (\S+)$", re.M)


def s_client(port, tls, args, implicit=False):
    """openssl s_client with args against port, bounded by its timeout:
    the cipher it agreed on, or None when the handshake failed."""
    if implicit:
        argv = ["openssl", "s_client", "-connect", f"{HOST}:{port}",
                "-CAfile", str(tls.ca), "-verify_return_error", "-brief",
                *args]
        run = subprocess.run(argv, capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
    else:
        run = openssl_starttls(port, tls, *args)
    m = CIPHERSUITE_RE.search(run.stderr)
    if run.returncode != 0:
        assert m is None, run.stderr
        return None
    assert m, run.stderr
    return m.group(1)


def check_rows(port, tls, rows, implicit=False):
    wrong = []
    for args, want, why in rows:
        got = s_client(port, tls, args, implicit)
        if got != want:
            wrong.append(f"{why} ({' '.join(args)}): got {got}, "
                         f"want {want}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_default_ciphers_have_forward_secrecy_and_aead(tern_factory,
                                                      tls_files, role):
    tern = start_tern(tern_factory, tls_files, pairs=[tls_files.rsa])
    check_rows(role_port(tern, role), tls_files, MODERN_ROWS,
               implicit=role == "submissions")


def test_default_ciphers_with_an_ecdsa_certificate(tern_factory, tls_files):
    tern = start_tern(tern_factory, tls_files, pairs=[tls_files.mail])
    check_rows(tern.port, tls_files, [
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"], None,
         "forward secrecy, but CBC"),
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
         "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE with AES-GCM"),
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
         "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE with ChaCha20-Poly1305"),
    ])


@pytest.mark.parametrize("role", ["smtp", "submissions"])
def test_compat_ciphers_let_old_peers_in(tern_factory, tls_files, role):
    tern = start_tern(tern_factory, tls_files, pairs=[tls_files.rsa],
                      tls_ciphers="compat")
    check_rows(role_port(tern, role), tls_files, COMPAT_ROWS,
               implicit=role == "submissions")


def test_an_ed25519_key_stops_tern_at_start(tmp_path):
    """ca signs with RSA and ECDSA keys only: an Ed25519 key is refused by
    the master at start, with its path and the reason, not by each smtpd
    it would start."""
    key, cert = tmp_path / "ed.key", tmp_path / "ed.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ed25519",
                    "-keyout", key, "-out", cert, "-days", "2", "-nodes",
                    "-subj", "/CN=" + MAIL_NAME], check=True,
                   capture_output=True)
    conf = tmp_path / "tern.conf"
    conf.write_text(f"home {tmp_path}/home\n"
                    f"listen {HOST}:{free_port()}\n"
                    f"tls cert={cert} key={key}\n")
    run = run_tern("serve", "-c", str(conf), timeout=30)
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert f"{key}: not an RSA or ECDSA key" in run.stderr, run.stderr

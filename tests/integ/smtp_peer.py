"""smtp_peer - a small, scriptable SMTP server on loopback that plays the
remote side for tern's outbound client (src/mta_session.c).

It records every connection (EHLO/HELO name, TLS, AUTH user, whether the
client talked before the greeting, every command line) and every
transaction (envelope, ESMTP parameters, the raw DATA bytes as they came
over the wire and the unstuffed content), and it can be scripted per test:
the EHLO keywords it offers, a reply for a given command or recipient
(for a number of times, so "451 first, 250 later" is one rule), a stall
in the middle of DATA, a late greeting, at most N recipients per
transaction (452), STARTTLS with a self-signed certificate made by
`openssl req` (or a certificate the test gives, tls_cert=), a broken TLS
handshake, AUTH PLAIN/LOGIN.

With lmtp=True it plays an LMTP server (RFC 2033) instead: LHLO in place
of EHLO/HELO (which it refuses), and after the data one reply per
accepted recipient, in RCPT order, each scriptable with a DOT rule
matching the recipient.  unix_path= makes it listen on a UNIX-domain
socket (mode 0666, so tern's unprivileged queue process can connect)
instead of a loopback port.

Why not python3-aiosmtpd (a Debian package): its handlers see the
message after it has normalised line ends and undone dot-stuffing, and it
has no hook for "do not answer this DATA" or "reply 452 from the third
recipient on"; the tests need the exact bytes and exact control, which a
few hundred lines of socketserver give.  Standard library only.
"""

import base64
import os
import select
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_EHLO = ("PIPELINING", "SIZE 52428800", "8BITMIME",
                "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN")
LINE_MAX = 4096
HOSTNAME = "peer.example"

_cert_lock = threading.Lock()
_cert_dir = None


def self_signed_cert():
    """(cert, key) paths of a self-signed certificate for peer.example and
    127.0.0.1, made once per test run with `openssl req`."""
    global _cert_dir
    with _cert_lock:
        if _cert_dir is None:
            d = Path(tempfile.mkdtemp(prefix="smtp-peer-tls-"))
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
                 "-days", "2", "-subj", f"/CN={HOSTNAME}",
                 "-addext", f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1"],
                check=True, capture_output=True, timeout=60)
            _cert_dir = d
        return str(_cert_dir / "cert.pem"), str(_cert_dir / "key.pem")


class Rule:
    """Reply `reply` to `verb` (GREETING, EHLO, HELO, LHLO, MAIL, RCPT,
    DATA, BODY, DOT, RSET, STARTTLS, AUTH, QUIT) when `match` (a
    case-insensitive substring of the argument; None: any) matches, `times`
    times (None: always).  In LMTP mode DOT is asked once per accepted
    recipient with the recipient's address as the argument.  Special replies: "STALL" (never answer; read and drop
    everything until the client closes), "CLOSE" (close at once), and
    "TEXT|CLOSE" (reply TEXT, then close).  For
    BODY the reply is only "STALL": stop in the middle of the data, right
    after the 354."""

    def __init__(self, verb, reply, match=None, times=None):
        self.verb = verb.upper()
        self.reply = reply
        self.match = match.lower() if match else None
        self.times = times

    def applies(self, verb, arg):
        if self.verb != verb or self.times == 0:
            return False
        return self.match is None or self.match in arg.lower()


class Transaction:
    """One MAIL transaction as the peer saw it."""

    def __init__(self, conn, mail_from, mail_params, chunk):
        self.conn = conn
        self.mail_from = mail_from
        self.mail_params = mail_params   # dict, keys upper-case
        self.rcpts = []                  # [(addr, params dict)]
        self.accepted = []               # addresses answered 2xx
        self.chunks = [chunk]            # recv() numbers of MAIL/RCPT/DATA
        self.data_raw = None             # bytes on the wire, dot-stuffed,
        #                                  without the final ".\r\n"
        self.content = None              # unstuffed
        self.final = None                # our reply to the final dot
        self.replies = None              # LMTP: [(rcpt, our reply)] after
        #                                  the dot, in RCPT order

    @property
    def delivered(self):
        if self.replies is not None:
            return any(t.startswith("2") for _, t in self.replies)
        return self.final is not None and self.final.startswith("2")

    @property
    def delivered_to(self):
        """The recipients the data was taken for."""
        if self.replies is not None:
            return [a for a, t in self.replies if t.startswith("2")]
        return list(self.accepted) if self.delivered else []

    @property
    def pipelined(self):
        """MAIL, every RCPT and DATA arrived in one read (RFC 2920)."""
        return len(self.chunks) > 2 and len(set(self.chunks)) == 1

    def __repr__(self):
        return (f"<Transaction conn={self.conn.id} from={self.mail_from!r} "
                f"rcpts={[r for r, _ in self.rcpts]} "
                f"accepted={self.accepted} final={self.final!r}>")


class Connection:
    """One client connection as the peer saw it."""

    def __init__(self, cid, addr):
        self.id = cid
        self.addr = addr
        self.helo = None
        self.esmtp = False
        self.tls = None           # (version, cipher) once TLS is up
        self.tls_failed = False
        self.auth_user = None
        self.talked_first = b""   # bytes sent before our greeting
        self.after_starttls = b""  # plaintext after STARTTLS (injection)
        self.commands = []        # command lines as text
        self.quit = False
        self.closed = False
        # under TLS, after QUIT: True when the client's close_notify came
        # before its EOF, False when the stream just ended
        self.close_notify = None

    def __repr__(self):
        return (f"<Connection {self.id} helo={self.helo!r} tls={self.tls} "
                f"commands={self.commands}>")


class _Closed(Exception):
    pass


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        peer = self.server.peer
        self.sock = self.request
        self.buf = b""
        self.chunk = 0
        self.conn = peer._new_connection(self.client_address)
        self.txn = None
        self.ntxn_rcpts = 0
        peer._track(self.sock)
        try:
            self.session()
        except (_Closed, OSError, ssl.SSLError):
            pass
        finally:
            self.conn.closed = True
            peer._untrack(self.sock)

    # ---- bytes

    def recv(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            raise _Closed()
        self.chunk += 1
        return data

    def readline(self):
        """One CRLF-terminated line (strict: bare LF stays in the line)."""
        while b"\r\n" not in self.buf:
            if len(self.buf) > LINE_MAX:
                raise _Closed()
            self.buf += self.recv()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def send(self, text):
        self.sock.sendall(text.encode("utf-8") + b"\r\n")

    def stall(self):
        """Answer nothing more; drop what comes until the client closes."""
        self.buf = b""
        while not self.server.peer._stopping.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if r:
                self.recv()

    def reply(self, verb, arg, default):
        """Send the scripted reply for verb (or default); returns it."""
        return self.act(self.server.peer._scripted(verb, arg) or default)

    def act(self, text):
        """Send text, or do what a special reply says; returns text."""
        if text == "STALL":
            self.stall()
            raise _Closed()
        if text == "CLOSE":
            raise _Closed()
        if text.endswith("|CLOSE"):
            self.send(text[:-len("|CLOSE")])
            raise _Closed()
        self.send(text)
        return text

    # ---- the dialogue

    def session(self):
        peer = self.server.peer
        self.greet(peer)
        while True:
            line = self.readline()
            text = line.decode("utf-8", "replace")
            self.conn.commands.append(text)
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            fn = getattr(self, "cmd_" + verb.lower(), None)
            if fn is None:
                self.reply(verb, arg, "500 5.5.2 unknown command")
                continue
            if fn(arg) == "quit":
                return

    def greet(self, peer):
        if peer.greet_delay:
            r, _, _ = select.select([self.sock], [], [], peer.greet_delay)
            if r:
                data = self.sock.recv(65536)
                self.conn.talked_first = data or b""
                self.buf += data
        kind = "LMTP" if peer.lmtp else "ESMTP"
        self.reply("GREETING", "", f"220 {HOSTNAME} {kind} smtp_peer")

    def ehlo_lines(self):
        peer = self.server.peer
        lines = [HOSTNAME] + list(peer.ehlo)
        if peer.tls and self.conn.tls is None:
            lines.append("STARTTLS")
        if peer.auth and (self.conn.tls or not peer.auth_needs_tls):
            lines.append("AUTH PLAIN LOGIN")
        return lines

    def cmd_ehlo(self, arg, verb="EHLO"):
        peer = self.server.peer
        if peer.lmtp != (verb == "LHLO"):
            # RFC 2033 4.1: an LMTP server takes LHLO only
            self.reply(verb, arg, "500 5.5.1 unknown command")
            return
        text = peer._scripted(verb, arg)
        if text:
            self.send(text)
            return
        lines = self.ehlo_lines()
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            self.send(f"250{sep}{line}")
        self.conn.helo, self.conn.esmtp = arg, True
        self.txn = None

    def cmd_lhlo(self, arg):
        self.cmd_ehlo(arg, "LHLO")

    def cmd_helo(self, arg):
        if self.server.peer.lmtp:
            self.reply("HELO", arg, "500 5.5.1 unknown command")
            return
        if self.reply("HELO", arg, f"250 {HOSTNAME}").startswith("2"):
            self.conn.helo, self.conn.esmtp = arg, False
        self.txn = None

    def cmd_starttls(self, arg):
        peer = self.server.peer
        if not peer.tls or self.conn.tls:
            self.reply("STARTTLS", arg, "502 5.5.1 no STARTTLS here")
            return
        if not self.reply("STARTTLS", arg,
                          "220 2.0.0 ready").startswith("220"):
            return
        self.conn.after_starttls = self.buf
        self.buf = b""
        if peer.tls_broken:
            # wait for the ClientHello, answer with no TLS at all: the
            # client's handshake fails
            self.recv()
            self.sock.sendall(b"this is not TLS\r\n" * 4)
            self.conn.tls_failed = True
            raise _Closed()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # see close_notify
        ctx.load_cert_chain(*(peer.tls_cert or self_signed_cert()))
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True,
                                        suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError):
            self.conn.tls_failed = True
            raise _Closed()
        self.conn.tls = (self.sock.version(), self.sock.cipher()[0])
        self.conn.helo = None
        self.txn = None

    def cmd_auth(self, arg):
        peer = self.server.peer
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech == "PLAIN":
            if not initial:
                self.send("334 ")
                initial = self.readline().decode()
            try:
                _, user, pw = base64.b64decode(initial).decode().split("\0")
            except ValueError:
                user, pw = None, None
        elif mech == "LOGIN":
            self.send("334 VXNlcm5hbWU6")
            user = base64.b64decode(self.readline()).decode()
            self.send("334 UGFzc3dvcmQ6")
            pw = base64.b64decode(self.readline()).decode()
        else:
            self.send("504 5.5.4 unknown mechanism")
            return
        self.conn.auth_mech = mech
        ok = peer.auth.get(user) == pw
        text = self.reply("AUTH", f"{mech} {user}",
                          "235 2.7.0 ok" if ok else
                          "535 5.7.8 authentication failed")
        if text.startswith("2"):
            self.conn.auth_user = user

    def cmd_mail(self, arg):
        addr, params = parse_path(arg, "FROM:")
        peer = self.server.peer
        default = "250 2.1.0 ok"
        if "BODY" in params and params["BODY"].upper() == "8BITMIME" and \
                "8BITMIME" not in peer.ehlo:
            default = "555 5.5.4 BODY=8BITMIME not supported"
        if "SIZE" in params and peer.size_limit and \
                int(params["SIZE"]) > peer.size_limit:
            default = "552 5.3.4 message too big"
        if self.txn is not None:
            default = "503 5.5.1 nested MAIL"
        text = self.reply("MAIL", addr or "", default)
        txn = Transaction(self.conn, addr, params, self.chunk)
        peer._add_transaction(txn)
        self.txn = txn if text.startswith("2") else None
        self.ntxn_rcpts = 0
        if self.txn is None:
            txn.final = "(MAIL refused)"

    def cmd_rcpt(self, arg):
        peer = self.server.peer
        if self.txn is None:
            self.reply("RCPT", arg, "503 5.5.1 need MAIL")
            return
        addr, params = parse_path(arg, "TO:")
        self.txn.chunks.append(self.chunk)
        self.txn.rcpts.append((addr, params))
        default = "250 2.1.5 ok"
        if peer.max_rcpts is not None and self.ntxn_rcpts >= peer.max_rcpts:
            default = "452 4.5.3 too many recipients"
        text = self.reply("RCPT", addr, default)
        if text.startswith("2"):
            self.txn.accepted.append(addr)
            self.ntxn_rcpts += 1

    def cmd_data(self, arg):
        peer = self.server.peer
        txn = self.txn
        if txn is None or not txn.accepted:
            self.reply("DATA", arg, "554 5.5.1 no valid recipients")
            return
        txn.chunks.append(self.chunk)
        if not self.reply("DATA", arg, "354 go ahead").startswith("354"):
            return
        if peer._scripted("BODY", "") == "STALL":
            self.stall()
            raise _Closed()
        raw = []
        while True:
            line = self.readline()
            if line == b".":
                break
            raw.append(line + b"\r\n")
        txn.data_raw = b"".join(raw)
        txn.content = b"".join(
            r[1:] if r.startswith(b".") else r for r in raw)
        self.txn = None
        n = len(peer.transactions)
        if peer.lmtp:
            self.lmtp_replies(txn, n)
            return
        txn.final = self.reply("DOT", "", f"250 2.0.0 ok: queued as P{n}")

    def lmtp_replies(self, txn, n):
        """RFC 2033 4.2: a reply per accepted recipient, in RCPT order;
        each is recorded before it is acted on (a CLOSE among them)."""
        peer = self.server.peer
        txn.replies = []
        for i, addr in enumerate(txn.accepted):
            text = peer._scripted("DOT", addr) or \
                f"250 2.0.0 <{addr}> delivered as P{n}.{i}"
            with peer._lock:
                txn.replies.append((addr, text))
            self.act(text)
        txn.final = " | ".join(t for _, t in txn.replies)

    def cmd_rset(self, arg):
        self.txn = None
        self.reply("RSET", arg, "250 2.0.0 ok")

    def cmd_noop(self, arg):
        self.reply("NOOP", arg, "250 2.0.0 ok")

    def cmd_quit(self, arg):
        self.conn.quit = True
        self.reply("QUIT", arg, "221 2.0.0 bye")
        if self.conn.tls is not None:
            self.await_close_notify()
        return "quit"

    def await_close_notify(self):
        """After the 221 under TLS: the client's end of the stream, with
        its close_notify (a clean end of the TLS stream) or without (an
        SSLError "unexpected eof": the context does not ignore it, and the
        socket is wrapped with suppress_ragged_eofs off)."""
        self.sock.settimeout(5)
        try:
            while self.sock.recv(4096):
                pass
            self.conn.close_notify = True
        except ssl.SSLError:
            self.conn.close_notify = False
        except OSError:
            pass


def parse_path(arg, prefix):
    """("addr", {PARAM: value}) of "FROM:<addr> K=V K"."""
    if not arg.upper().startswith(prefix):
        return None, {}
    rest = arg[len(prefix):].lstrip()
    if not rest.startswith("<") or ">" not in rest:
        return None, {}
    addr, _, tail = rest[1:].partition(">")
    params = {}
    for word in tail.split():
        key, eq, value = word.partition("=")
        params[key.upper()] = value if eq else True
    return addr, params


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class SMTPPeer:
    """The server.  Use as a context manager or start()/stop()."""

    def __init__(self, host="127.0.0.1", port=0, *, ehlo=DEFAULT_EHLO,
                 greet_delay=0.0, max_rcpts=None, tls=False,
                 tls_broken=False, auth=None, auth_needs_tls=True,
                 size_limit=None, tls_cert=None, lmtp=False,
                 unix_path=None):
        self.host = host
        self.lmtp = lmtp
        self.unix_path = str(unix_path) if unix_path else None
        self.want_port = port
        self.ehlo = list(ehlo)
        self.greet_delay = greet_delay
        self.max_rcpts = max_rcpts
        # tls_cert: (cert, key) PEM paths for STARTTLS (it implies tls);
        # None: the self-signed certificate
        self.tls_cert = tuple(str(p) for p in tls_cert) if tls_cert else None
        self.tls = tls or tls_broken or bool(tls_cert)
        self.tls_broken = tls_broken
        self.auth = dict(auth or {})
        self.auth_needs_tls = auth_needs_tls
        self.size_limit = size_limit
        self.rules = []
        self.connections = []
        self.transactions = []
        self._lock = threading.Lock()
        self._socks = set()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        if tls and not tls_cert:
            self_signed_cert()

    # ---- scripting

    def rule(self, verb, reply, match=None, times=None):
        """Add a reply rule (see Rule); earlier rules win."""
        with self._lock:
            self.rules.append(Rule(verb, reply, match, times))
        return self

    def _scripted(self, verb, arg):
        with self._lock:
            for r in self.rules:
                if r.applies(verb, arg):
                    if r.times is not None:
                        r.times -= 1
                    return r.reply
        return None

    # ---- records

    def _new_connection(self, addr):
        with self._lock:
            c = Connection(len(self.connections) + 1, addr)
            self.connections.append(c)
            return c

    def _add_transaction(self, txn):
        with self._lock:
            self.transactions.append(txn)

    def _track(self, sock):
        with self._lock:
            self._socks.add(sock)

    def _untrack(self, sock):
        with self._lock:
            self._socks.discard(sock)

    def delivered(self):
        """The transactions whose data we accepted, in order."""
        with self._lock:
            return [t for t in self.transactions if t.delivered]

    def wait_delivered(self, count=1, timeout=20.0):
        """Wait until count transactions were accepted; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(
            f"smtp_peer: {count} delivered transaction(s) expected within "
            f"{timeout:g}s, have {self.delivered()}; connections "
            f"{self.connections}")

    # ---- life cycle

    @property
    def port(self):
        """The loopback port (None on a UNIX-domain socket)."""
        if self.unix_path:
            return None
        return self._server.server_address[1]

    def start(self):
        if self.unix_path:
            if os.path.exists(self.unix_path):
                os.unlink(self.unix_path)
            self._server = _UnixServer(self.unix_path, _Handler)
            os.chmod(self.unix_path, 0o666)
        else:
            self._server = _Server((self.host, self.want_port), _Handler)
        self._server.peer = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.unix_path and os.path.exists(self.unix_path):
            os.unlink(self.unix_path)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    # a manual run: python3 smtp_peer.py PORT
    import sys
    p = SMTPPeer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                 tls=bool(os.environ.get("PEER_TLS")))
    p.start()
    print(f"listening on 127.0.0.1:{p.port}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        p.stop()

"""tern_harness - the one helper every integration test uses.

It starts `tern serve` as a real process on a free loopback port with a
temporary home, talks SMTP to it byte by byte, and reads what it delivered
(Maildirs) and what it keeps (the spool).  The contract it tests against is
the observable behaviour of `tern serve` (notes/behaviour.md, tern(8)).

Python's smtplib is used where a real client is wanted; the raw-socket
client below exists because smtplib cannot send what a test must send
(bare LF, NUL, over-long lines, pipelined groups, BDAT, half messages) and
hides the exact reply lines a test must check.
"""

import atexit
import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERN_BIN = os.environ.get("TERN_BIN") or str(REPO / "build" / "tern")


def _reachable_by_all(path):
    """True when every directory above path lets any user through."""
    d = Path(path).resolve().parent
    return all(p.stat().st_mode & 0o001 for p in (d, *d.parents))


def _public_binaries(binary):
    """Tests run tern as other users too (sendmail, the control socket,
    privileges): from a checkout they cannot reach (a private home such
    as /root) the binaries are run from a copy any user can reach, made
    once per test run and removed at its end."""
    pub = Path(tempfile.mkdtemp(prefix="tern-bin-", dir="/tmp"))
    pub.chmod(0o755)
    for name in ("tern", "tern-drop"):
        src = Path(binary).parent / name
        if src.exists():
            shutil.copy2(src, pub / name)
    atexit.register(shutil.rmtree, pub, True)
    return str(pub / Path(binary).name)


if os.geteuid() == 0 and os.path.exists(TERN_BIN) and \
        not _reachable_by_all(TERN_BIN):
    TERN_BIN = _public_binaries(TERN_BIN)
# the sanitizer build (make asan-test) runs about 3x slower: only the load
# sizes shrink, never an assertion
ASAN = bool(os.environ.get("TERN_ASAN"))
HOSTNAME = "test.example"
CLIENT = "client.example"
SENDER = "sender@remote.example"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

QID_RE = re.compile(r"queued as ([0-9A-Z]{14})\b")
ENHANCED_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")
# Received: from HELO (RDNS [IP])\n\tby HOST (tern) with PROTO id QID
#           [\n\tfor <RCPT>]; DATE
RECEIVED_RE = re.compile(
    r"from (?P<helo>\S+) \((?P<rdns>\S+) \[(?P<ip>[^\]]+)\]\)\s+"
    r"by (?P<by>\S+) \(tern\) with (?P<proto>[A-Z]+) id (?P<qid>[0-9A-Z]{14})"
    r"(?:\s+for <(?P<rcpt>[^>]*)>)?;\s*(?P<date>.+)$", re.S)


# ---------------------------------------------------------------- waiting

def wait_for(predicate, timeout=10.0, interval=0.05, what=None):
    """Poll predicate until it returns something true; return that value.
    Fails the test after timeout seconds, naming what was awaited (what
    may be a function, called then, to describe the state at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what() if callable(what) else what
            name = name or getattr(predicate, "__name__", "condition")
            pytest.fail(f"timed out after {timeout:g}s waiting for {name}")
        time.sleep(interval)


# ---------------------------------------------------------------- ports

def free_port(host="127.0.0.1"):
    """A TCP port free right now on host (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_busy(host, port):
    """True when host:port cannot be bound (someone listens there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def ipv6_loopback_available():
    """True when ::1 can be bound on this host."""
    if not socket.has_ipv6:
        return False
    try:
        free_port("::1")
    except OSError:
        return False
    return True


# ---------------------------------------------------------------- processes

def clean_env(extra=None):
    """The environment for tern: ours without TERN_CONF/TERN_HOME (they
    would override what the test configures), plus extra."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TERN_CONF", "TERN_HOME")}
    env.update(extra or {})
    return env


def run_tern(*args, env=None, cwd=None, timeout=30):
    """Run a short tern verb (check-config, version, help) and return the
    CompletedProcess with text stdout/stderr."""
    return subprocess.run([TERN_BIN, *args], capture_output=True, text=True,
                          env=clean_env(env), cwd=cwd, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def proc_stat(pid):
    """(state, ppid, pgrp) of pid from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def proc_status(pid):
    """/proc/PID/status as a dict of name -> text."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def stop_process(proc, timeout=5.0):
    """End a peer the test started (a subprocess.Popen) by its pid:
    SIGTERM, then SIGKILL after timeout seconds; reaped either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- spool

def spool_files(home, sub):
    """Sorted names of the files in $home/spool/SUB ([] when missing)."""
    d = Path(home) / "spool" / sub
    try:
        return sorted(p.name for p in d.iterdir() if p.is_file())
    except FileNotFoundError:
        return []


def queue_files(home):
    """Sorted names of the files in $home/spool/queue."""
    return spool_files(home, "queue")


def wait_queue_empty(home, timeout=20.0):
    """Wait until spool/queue holds no file: every message was handled.
    (A message that got 250 is in the queue, so an empty queue after a
    250 means it was delivered.)"""
    wait_for(lambda: not queue_files(home), timeout,
             what=f"an empty spool/queue (left: {queue_files(home)[:6]})")


# ---------------------------------------------------------------- Maildir

class Mail:
    """One delivered Maildir file: its path, bytes and parsed message."""

    def __init__(self, path):
        self.path = Path(path)
        self.raw = self.path.read_bytes()
        self.msg = email.message_from_bytes(self.raw,
                                            policy=email.policy.compat32)

    @property
    def body(self):
        """The bytes after the header block."""
        _, _, body = self.raw.partition(b"\n\n")
        return body

    def received(self):
        """The Received: header fields parsed with RECEIVED_RE (dicts)."""
        out = []
        for value in self.msg.get_all("Received") or []:
            m = RECEIVED_RE.search(str(value))
            assert m, f"Received: header not in tern's form: {value!r}"
            out.append(m.groupdict())
        return out

    def __repr__(self):
        return f"<Mail {self.path}>"


def maildir_path(home, user):
    """The default mailbox of user: $home/mail/USER/Maildir."""
    return Path(home) / "mail" / user / "Maildir"


def read_maildir(path):
    """The files in the Maildir at path, new/ only, parsed, by name."""
    try:
        names = sorted(p for p in (Path(path) / "new").iterdir()
                       if p.is_file())
    except FileNotFoundError:
        return []
    return [Mail(p) for p in names]


def maildir_messages(home, user):
    """The files in USER's Maildir new/ (default mailbox), parsed."""
    return read_maildir(maildir_path(home, user))


def wait_for_maildir(path, count=1, timeout=20.0):
    """Wait until the Maildir at path has at least count messages in new/;
    return them all."""
    def enough():
        msgs = read_maildir(path)
        return msgs if len(msgs) >= count else None
    return wait_for(enough, timeout,
                    what=lambda: f"{count} message(s) in {path} (have "
                    f"{len(read_maildir(path))})")


def wait_for_mail(home, user, count=1, timeout=20.0):
    """Wait until USER has at least count messages; return them all."""
    return wait_for_maildir(maildir_path(home, user), count, timeout)


def mail_users(home):
    """Names of the directories under $home/mail."""
    try:
        return sorted(p.name for p in (Path(home) / "mail").iterdir())
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- SMTP

class ConnectionClosed(AssertionError):
    """The server closed the connection where a reply was expected."""


class Reply:
    """One SMTP reply: the code and the text of every line."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enhanced(self):
        """The enhanced status code (RFC 3463) of the first line, or None."""
        m = ENHANCED_RE.match(self.lines[0]) if self.lines else None
        return ".".join(m.groups()) if m else None

    def expect(self, code, enhanced=None):
        """Assert the code (and the enhanced code when given); return self
        so a test can go on with the reply."""
        assert self.code == code and (enhanced is None
                                      or self.enhanced == enhanced), (
            f"expected {code} {enhanced or ''}, got: {self}")
        return self

    def __str__(self):
        return " | ".join(f"{self.code} {line}" for line in self.lines)

    __repr__ = __str__


def queue_id(reply):
    """The queue id in `250 2.0.0 Ok: queued as ID`."""
    m = QID_RE.search(reply.text)
    assert m, f"no queue id in the reply: {reply}"
    return m.group(1)


def dot_stuff(content):
    """RFC 5321 4.5.2: a '.' opening a line is doubled."""
    return re.sub(rb"(?m)^\.", b"..", content)


class SMTPClient:
    """A raw SMTP client for exact byte control: send bytes, read one whole
    (possibly multiline) reply.  Every reply after the greeting must carry
    an enhanced status code, except the answers to EHLO and HELO (RFC 2034
    3) and the intermediate 354: reply() checks that by default."""

    def __init__(self, host, port, timeout=10.0, source=None):
        self.host = host
        self.port = port
        self.timeout = timeout
        # source: the local address to connect from (127.0.0.2: another
        # client as far as the server can tell)
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.transcript = []

    # bytes in, lines out

    def send(self, data):
        """Send bytes (str is encoded as UTF-8) exactly as given."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.transcript.append(("C", data[:300]))
        self.sock.sendall(data)

    def _recv(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        return chunk

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no CRLF-terminated reply line within {timeout:g}s; "
                    f"have {self.buf[:200]!r}; {self._tail()}")
            self.sock.settimeout(left)
            try:
                chunk = self._recv()
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionClosed(
                    f"connection closed (pending {self.buf[:200]!r}); "
                    f"{self._tail()}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _tail(self):
        return "transcript: " + " ".join(
            f"{who}:{data!r}" for who, data in self.transcript[-8:])

    def reply(self, timeout=None, enhanced=True):
        """Read one whole reply.  With enhanced=True assert that it carries
        an enhanced status code whose class matches the reply code."""
        timeout = self.timeout if timeout is None else timeout
        lines = []
        code = None
        while True:
            raw = self._line(timeout)
            text = raw.decode("utf-8", "replace")
            m = re.match(r"^(\d{3})([ -])(.*)$|^(\d{3})$", text)
            assert m, f"malformed reply line {raw!r}; {self._tail()}"
            this = int(m.group(1) or m.group(4))
            assert code is None or this == code, (
                f"reply code changed inside a multiline reply: {raw!r}")
            code = this
            lines.append(m.group(3) or "")
            if m.group(2) != "-":
                break
        r = Reply(code, lines)
        self.transcript.append(("S", str(r).encode()[:300]))
        if enhanced:
            self._check_enhanced(r)
        return r

    @staticmethod
    def _check_enhanced(r):
        # RFC 3463 has the classes 2, 4 and 5 only: an intermediate 3xx
        # reply (354) may go without one, or carry a 2.x.x
        e = r.enhanced
        if r.code // 100 == 3:
            assert e is None or e[0] == "2", f"odd enhanced code: {r}"
            return
        assert e and e[0] == str(r.code)[0], (
            f"reply without a matching enhanced status code: {r}")

    def cmd(self, line):
        """Send one command line (CRLF added) and read its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        verb = line.split(b" ", 1)[0].upper()
        return self.reply(enhanced=verb not in (b"EHLO", b"HELO"))

    def replies_until_close(self, timeout=None):
        """Read replies until the server closes the connection."""
        timeout = self.timeout if timeout is None else timeout
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                out.append(self.reply(max(0.01,
                                          deadline - time.monotonic())))
            except ConnectionClosed:
                assert not self.buf, f"partial reply line {self.buf!r}"
                return out
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"server did not close within {timeout:g}s; "
                        f"replies so far {out}")
                raise

    def assert_closed(self, timeout=5.0):
        """Assert that nothing more comes and the server closes."""
        assert self.replies_until_close(timeout) == []

    def quiet(self, wait=0.3):
        """True when the server sends nothing for wait seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self._recv()
        except socket.timeout:
            return True
        self.buf += chunk
        return False

    def wrap_tls(self, context, server_hostname=None):
        """Run the TLS handshake on the connection (after a 220 to
        STARTTLS, or at once for implicit TLS); the rest of the dialogue
        is encrypted.  Nothing the server sent in plaintext may be left
        unread: after STARTTLS that would be a reply to a command the
        client pipelined behind it (RFC 3207 6)."""
        assert not self.buf, (
            f"plaintext left before the TLS handshake: {self.buf!r}; "
            f"{self._tail()}")
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock,
                                        server_hostname=server_hostname)
        self.transcript.append(("C", f"<TLS {self.sock.version()} "
                                f"{self.sock.cipher()[0]}>".encode()))
        return self.sock

    # the usual steps

    def greeting(self):
        """Read the 220 greeting."""
        return self.reply(enhanced=False).expect(220)

    def hello(self, name=CLIENT):
        """Greeting, then EHLO name -> 250; returns the EHLO reply."""
        self.greeting()
        return self.cmd(f"EHLO {name}").expect(250)

    def data(self, content):
        """DATA -> 354, then the dot-stuffed content and the end of data;
        returns the final reply (not checked)."""
        self.cmd("DATA").expect(354)
        if not content.endswith(b"\r\n"):
            content += b"\r\n"
        self.send(dot_stuff(content) + b".\r\n")
        return self.reply()

    def send_mail(self, sender, rcpts, content, mail_params=""):
        """One whole transaction that must succeed; returns the queue id."""
        params = f" {mail_params}" if mail_params else ""
        self.cmd(f"MAIL FROM:<{sender}>{params}").expect(250, "2.1.0")
        for rcpt in rcpts:
            self.cmd(f"RCPT TO:<{rcpt}>").expect(250, "2.1.5")
        return queue_id(self.data(content).expect(250, "2.0.0"))

    def quit(self):
        self.cmd("QUIT").expect(221, "2.0.0")
        self.assert_closed()
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def message(subject="test", body="Hello.\r\n", msgid=None, headers=()):
    """A small RFC 5322 message as CRLF bytes."""
    lines = [f"From: <{SENDER}>", "To: <alice@test.example>",
             f"Subject: {subject}"]
    if msgid:
        lines.append(f"Message-ID: {msgid}")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


# ---------------------------------------------------------------- tern

# the configuration every test starts from; keyword arguments override
DEFAULT_KEYS = {
    "hostname": HOSTNAME,
    "local-domains": "test.example localhost",
    # the client is 127.0.0.1: without this it might be a trusted relay
    "trusted-networks": "none",
    "log": "stderr",
}


class Tern:
    """One `tern serve` process with its own directory (config, log,
    stdout) and home.  It can be started, stopped, killed and started
    again on the same home and port."""

    def __init__(self, rundir, name, *, home=None, port=None,
                 listen_opts="", ipv6=False, config=True, env=None,
                 run_as=None, nofile=None, extra=(), **keys):
        self.dir = Path(rundir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.home = Path(home) if home else self.dir / "home"
        self.port = port or free_port()
        self.port6 = free_port("::1") if ipv6 else None
        self.listen_opts = listen_opts
        self.extra = list(extra)
        self.keys = dict(DEFAULT_KEYS)
        for key, value in keys.items():
            key = key.replace("_", "-")
            if value is None:
                self.keys.pop(key, None)
            else:
                self.keys[key] = value
        self.conf_path = self.dir / "tern.conf" if config else None
        self.log_path = self.dir / "tern.log"
        self.out_path = self.dir / "stdout"
        self.env = env or {}
        self.run_as = run_as
        # (soft, hard) RLIMIT_NOFILE tern starts with, as a service
        # manager would set it; None: the test's own
        self.nofile = nofile
        self.proc = None
        self.starts = 0

    # configuration

    def config_text(self):
        """The tern.conf this instance runs with."""
        opts = f" {self.listen_opts}" if self.listen_opts else ""
        lines = ["# written by tests/integ/tern_harness.py",
                 f"home {self.home}",
                 f"listen 127.0.0.1:{self.port}{opts}"]
        if self.port6:
            lines.append(f"listen [::1]:{self.port6}{opts}")
        for key, value in self.keys.items():
            lines.append(f"{key} {value}")
        lines.extend(self.extra)
        return "\n".join(lines) + "\n"

    def write_config(self):
        self.conf_path.write_text(self.config_text())
        self.conf_path.chmod(0o644)

    # life cycle

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _preexec(self):
        if self.run_as is None and self.nofile is None:
            return None
        import pwd
        import resource
        pw = pwd.getpwnam(self.run_as) if self.run_as else None
        nofile = self.nofile

        def setup():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
            if pw is not None:
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
        return setup

    def start(self):
        """Start `tern serve` and wait until the port accepts."""
        assert not self.running(), "tern is already running"
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [TERN_BIN, "serve"]
        if self.conf_path:
            self.write_config()
            argv += ["-c", str(self.conf_path)]
        self.starts += 1
        with open(self.log_path, "ab") as log, \
                open(self.out_path, "ab") as out:
            log.write(f"=== tern_harness: start #{self.starts} ===\n"
                      .encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                cwd=self.dir, env=clean_env(self.env),
                start_new_session=True, preexec_fn=self._preexec())
        self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Poll connect() until the port accepts; fail with the log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"tern exited with {self.proc.returncode} "
                            f"before listening\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"tern did not accept on 127.0.0.1:{self.port} within "
                    f"{timeout:g}s\n{self.log_tail()}")

    def group_pids(self):
        """Every live process of tern's process group."""
        if self.proc is None:
            return []
        out = []
        for pid in all_pids():
            st = proc_stat(pid)
            if st and st[2] == self.proc.pid and st[0] != "Z":
                out.append(pid)
        return out

    def _signal_group(self, sig):
        # only while a member is alive: the group id is ours until then
        if self.group_pids():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, group=True):
        """Send sig to the process group (or to the master only with
        group=False), wait up to timeout, then SIGKILL what is left.
        Returns the master's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if group:
                self._signal_group(sig)
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)
        wait_for(lambda: not self.group_pids(), 5,
                 what="tern's processes to be gone")
        return self.proc.returncode

    def kill9(self):
        """kill -9 every tern process at once: a crash (not a power cut:
        the page cache keeps what they wrote; see test_powercut.py)."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        wait_for(lambda: not self.group_pids(), 5,
                 what="tern's processes to be gone")

    def restart(self):
        self.stop()
        return self.start()

    # the processes

    def children(self):
        """Pids of the master's live children (smtpd, queue, ...)."""
        out = []
        for pid in all_pids():
            st = proc_stat(pid)
            if st and st[1] == self.proc.pid and st[0] != "Z":
                out.append(pid)
        return sorted(out)

    def smtpd_process(self):
        """The master's child that is not the queue process (the smtpd),
        or None while there is not exactly one such child."""
        queue = self.queue_process()
        others = [pid for pid in self.children() if pid != queue]
        return others[0] if queue and len(others) == 1 else None

    def queue_process(self):
        """The child bound to $home/state/queue.sock (the queue process,
        see src/sched.h), or None when it cannot be told apart."""
        paths = {str(self.home / "state" / "queue.sock"),
                 os.path.realpath(self.home / "state" / "queue.sock")}
        inodes = set()
        try:
            with open("/proc/net/unix") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) >= 8 and parts[7] in paths:
                        inodes.add(f"socket:[{parts[6]}]")
        except OSError:
            return None
        for pid in self.children():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
                except OSError:
                    continue
        return None

    # clients

    def connect(self, host="127.0.0.1", port=None, timeout=10.0):
        """A raw SMTP connection to this tern."""
        if port is None:
            port = self.port6 if ":" in host else self.port
        return SMTPClient(host, port, timeout)

    def smtplib(self, timeout=60.0):
        """A connected smtplib.SMTP client, EHLO client.example."""
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname=CLIENT,
                         timeout=timeout)
        s.ehlo()
        return s

    # the log

    def log_text(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()[-n:]
        return f"--- {self.log_path} (last {len(lines)} lines)\n" + \
            "\n".join(lines)

    def sanitizer_report(self):
        """Lines of the log where ASan/UBSan/LSan reported, with context."""
        lines = self.log_text().splitlines()
        hits = [i for i, line in enumerate(lines)
                if any(mark in line for mark in SANITIZER_MARKS)]
        if not hits:
            return []
        first = hits[0]
        report = [lines[i] for i in hits]
        report += ["--- context of the first report:"]
        report += lines[max(0, first - 2):first + 40]
        return [f"{self.log_path}:"] + report


def chown_tree(path, uid, gid):
    """chown -R path."""
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)

"""postfix_peer - Postfix (the Debian package) as a peer of tern in tests.

Two kinds of peer, both on loopback ports chosen free at run time:

- PostfixInstance: a private Postfix instance.  Its own config_directory
  (main.cf, master.cf), queue_directory, data_directory and log file live
  in a temporary directory; nothing of the system's Postfix (which the
  package installs but scripts/deps.sh keeps from starting) is used or
  touched.  It receives on 127.0.0.1:PORT (master.cf's smtp service),
  delivers its virtual domains into one Maildir, and can relay to a
  relayhost (tern).  `postfix -c DIR start` needs root; Postfix then drops
  to its own user.  stop() runs `postfix -c DIR stop` and then kills the
  master by pid when it is still there.
- SmtpSink: Postfix's smtp-sink(1), a receiving SMTP server that accepts
  everything and can dump each message to a file; its ESMTP features can
  be switched off one by one (a peer without PIPELINING, 8BITMIME, ESMTP).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tern_harness import free_port, pid_alive, read_maildir, wait_for

POSTFIX = shutil.which("postfix", path="/usr/sbin:/usr/bin")
SENDMAIL = "/usr/sbin/sendmail"
SMTP_SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0

# Every service a private instance needs (master.cf(5)); chroot is off
# so that nothing must be copied into the queue directory.  The smtp
# listener is added per instance.
MASTER_CF = """\
# written by tests/integ/postfix_peer.py
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_available():
    """(True, "") when Postfix and smtp-sink are installed, else (False,
    why)."""
    if not POSTFIX or not os.access(SENDMAIL, os.X_OK):
        return False, "postfix is not installed (make deps)"
    if not SMTP_SINK:
        return False, "smtp-sink (package postfix) is not installed"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return False, "the user postfix does not exist"
    return True, ""


class PostfixInstance:
    """A private Postfix instance under directory base.

    Mail for the domains in `domains` is delivered by Postfix's virtual(8)
    agent into one Maildir (self.maildir), owned by `nobody`; with
    relayhost="[127.0.0.1]:PORT" everything else goes there.  With
    tls_cert and tls_key (PEM paths) its smtpd offers STARTTLS
    (smtpd_tls_security_level = may), logs each TLS session and names it
    in its Received: header.  Keyword arguments add or override main.cf
    parameters."""

    def __init__(self, base, *, hostname="postfix.test", domains=(),
                 relayhost=None, tls_cert=None, tls_key=None, **params):
        self.base = Path(base)
        self.conf_dir = self.base / "etc"
        self.queue_dir = self.base / "queue"
        self.data_dir = self.base / "data"
        self.mail_dir = self.base / "mail"
        self.maildir = self.mail_dir / "Maildir"
        self.log_path = self.base / "maillog"
        self.port = free_port()
        self.hostname = hostname
        nobody = pwd.getpwnam("nobody")
        self.params = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": hostname,
            "mydomain": "test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.base),
            "biff": "no",
            "alias_maps": "",
            "alias_database": "",
            "append_dot_mydomain": "no",
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            # the peer is a test address: no DNS, /etc/hosts only
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            # short queue times: a test waits seconds, not minutes
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "virtual_mailbox_domains": " ".join(domains),
            "virtual_mailbox_base": str(self.mail_dir),
            # one Maildir for every recipient (a trailing / means Maildir)
            "virtual_mailbox_maps": "static:Maildir/",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "virtual_minimum_uid": "1",
        }
        self._nobody = nobody
        if relayhost:
            self.params["relayhost"] = relayhost
        self.tls = bool(tls_cert and tls_key)
        if self.tls:
            self.params.update({
                "smtpd_tls_cert_file": str(tls_cert),
                "smtpd_tls_key_file": str(tls_key),
                "smtpd_tls_security_level": "may",
                # "Anonymous TLS connection established from ..." and
                # the protocol and cipher in the Received: header
                "smtpd_tls_loglevel": "1",
                "smtpd_tls_received_header": "yes",
            })
        self.params.update(params)
        self.started = False

    def write_config(self):
        # postfix(1) creates what is missing inside the queue directory
        # (post-install create-missing) but not the directories themselves
        for d in (self.conf_dir, self.mail_dir, self.queue_dir,
                  self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        os.chmod(self.base, 0o755)
        owner = pwd.getpwnam("postfix")
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        os.chown(self.mail_dir, self._nobody.pw_uid, self._nobody.pw_gid)
        main = ["# written by tests/integ/postfix_peer.py"]
        main += [f"{k} = {v}" for k, v in self.params.items()]
        (self.conf_dir / "main.cf").write_text("\n".join(main) + "\n")
        services = MASTER_CF
        if self.tls:
            # TLS session cache and PRNG service of smtpd's TLS
            services += "tlsmgr    unix  -       -       n       1000?   1 " \
                        "      tlsmgr\n"
        (self.conf_dir / "master.cf").write_text(
            services + f"127.0.0.1:{self.port} inet n - n - - smtpd\n")

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", str(self.conf_dir), *args],
                              capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def master_pid(self):
        """The pid in queue/pid/master.pid, or None."""
        try:
            text = (self.queue_dir / "pid" / "master.pid").read_text()
            return int(text.strip())
        except (OSError, ValueError):
            return None

    def start(self):
        """Write the configuration, `postfix start`, wait for the port."""
        self.write_config()
        r = self._postfix("start")
        self.started = True
        if r.returncode != 0:
            raise AssertionError(f"postfix start failed ({r.returncode}):\n"
                                 f"{r.stdout}{r.stderr}\n{self.log_tail()}")

        def accepts():
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=0.5).close()
            except OSError:
                return False
            return True
        wait_for(accepts, START_TIMEOUT,
                 what=lambda: f"postfix on 127.0.0.1:{self.port}\n"
                 f"{self.log_tail()}")
        return self

    def stop(self):
        """`postfix stop`, then SIGKILL the master by pid if still there."""
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        try:
            self._postfix("stop", timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            # the master's children exit by themselves once it is gone
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sendmail(self, sender, rcpts, content, timeout=30):
        """Inject a message with Postfix's sendmail -C DIR (through postdrop
        and pickup, the way a local program submits)."""
        r = subprocess.run([SENDMAIL, "-C", str(self.conf_dir), "-i",
                            "-f", sender, "--", *rcpts],
                           input=content, capture_output=True,
                           timeout=timeout)
        assert r.returncode == 0, (
            f"postfix sendmail failed ({r.returncode}): "
            f"{r.stderr.decode(errors='replace')}\n{self.log_tail()}")

    def messages(self):
        """The messages delivered into the instance's Maildir."""
        return read_maildir(self.maildir)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        lines = self.log_text().splitlines()[-n:]
        return f"--- {self.log_path} (last {len(lines)} lines)\n" + \
            "\n".join(lines)

    def queue_empty(self):
        """True when the instance's queue holds no message."""
        for sub in ("incoming", "active", "deferred", "maildrop"):
            d = self.queue_dir / sub
            if d.is_dir() and any(p.is_file() for p in d.rglob("*")):
                return False
        return True


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1:PORT.  Each message is dumped into
    dump_dir (one file per message, the envelope as X- headers then the
    content); flags turn features off: "-p" no PIPELINING, "-8" no
    8BITMIME, "-N" no DSN, "-e" no ESMTP (HELO only)."""

    def __init__(self, base, *flags, backlog=10):
        self.dir = Path(base)
        self.dump_dir = self.dir / "dump"
        self.log_path = self.dir / "smtp-sink.log"
        self.port = free_port()
        self.flags = list(flags)
        self.backlog = backlog
        self.proc = None

    def start(self):
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        # started as root, smtp-sink must drop to a user (-u), who writes
        # the dump files
        nobody = pwd.getpwnam("nobody")
        os.chown(self.dump_dir, nobody.pw_uid, nobody.pw_gid)
        argv = [SMTP_SINK, "-d", str(self.dump_dir) + "/%M.",
                "-u", "nobody", "-h", "sink.test", *self.flags,
                f"127.0.0.1:{self.port}", str(self.backlog)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         start_new_session=True)

        def accepts():
            if self.proc.poll() is not None:
                raise AssertionError(f"smtp-sink exited: "
                                     f"{self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=0.5).close()
            except OSError:
                return False
            return True
        wait_for(accepts, START_TIMEOUT, what="smtp-sink to accept")
        return self

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def dumps(self):
        """The dumped messages' bytes, oldest first.  smtp-sink creates a
        dump file at MAIL and fills it as the transaction goes on: only
        files that end with the empty line that closes a dump count."""
        files = sorted((p for p in self.dump_dir.rglob("*") if p.is_file()),
                       key=lambda p: p.stat().st_mtime_ns)
        data = [p.read_bytes() for p in files]
        return [d for d in data if d.endswith(b"\n\n")]

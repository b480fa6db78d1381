"""dovecot_peer - a private Dovecot (the Debian packages dovecot-core,
dovecot-lmtpd, dovecot-imapd) as the mail store beside tern in tests.

DovecotInstance writes its own dovecot.conf in a temporary directory
(base_dir, state_dir, the log, the users file and the users' homes all
live there), starts `dovecot -F -c CONF` in the background and stops it by
its pid.  Nothing of the system's Dovecot is used or touched: not
/etc/dovecot, not its service, not its sockets.

- LMTP (RFC 2033) on a UNIX-domain socket (`instance.socket`, mode 0666,
  so tern's unprivileged queue process can connect) and, with
  lmtp_tcp=True, on a free 127.0.0.1 port (`instance.lmtp_port`).
- Users from a passwd-file (passdb and userdb): alice and bob by default,
  password "secret", every other name refused at RCPT with 550 5.1.1.
  Logins are by local part (auth_username_format %Ln), so
  alice@any.domain is alice.
- mail_location is a parameter ("maildir:~/Maildir" by default), and so
  are the uid and gid mail is read and written as: point it at the
  Maildirs or mboxes tern wrote ("maildir:/srv/t/mail/%n/Maildir",
  uid=the tern user) and read them back through Dovecot.
- messages(user) reads a mailbox through `doveadm fetch` (Dovecot parses
  it, as a mail reader would); lmtp_connections() counts LMTP sessions in
  Dovecot's log.  With imap=True IMAP listens on a free 127.0.0.1 port
  (`instance.imap_port`) for imaplib.

As root, Dovecot's own users dovecot and dovenull run its internal and
login processes (as the package sets them up), and mail belongs to nobody
unless uid/gid say otherwise (Dovecot never delivers as root).  As
another user everything runs as that user (Dovecot's "rootless" setup:
no chroot, the invoking user for every service), and mail belongs to it.
"""

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tern_harness import (all_pids, free_port, pid_alive, port_busy,
                          proc_stat, wait_for)

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin")
DOVEADM = shutil.which("doveadm", path="/usr/bin:/usr/sbin")
LMTPD = "/usr/lib/dovecot/lmtp"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
DEFAULT_USERS = ("alice", "bob")
PASSWORD = "secret"
# a UNIX-domain socket path has at most 107 octets; Dovecot puts its own
# sockets (the longest about 25 octets) in base_dir
SOCKET_PATH_MAX = 107
BASE_DIR_MAX = SOCKET_PATH_MAX - 30


def dovecot_available():
    """(True, "") when Dovecot with LMTP can be run here, else (False,
    why): the packages, and as root Dovecot's own users."""
    if not DOVECOT or not DOVEADM:
        return False, "dovecot-core is not installed (make deps)"
    if not os.access(LMTPD, os.X_OK):
        return False, "dovecot-lmtpd is not installed (make deps)"
    if os.geteuid() == 0:
        for user in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return False, f"the user {user} (package dovecot-core) " \
                    "does not exist"
    return True, ""


def _default_owner():
    """(uid, gid) mail belongs to: nobody as root, else ourselves."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.geteuid(), os.getegid()


class DovecotInstance:
    """A private Dovecot under directory base (created when missing).

    users: the login names it knows; mail_location: Dovecot's setting (~
    is the user's home, base/home/USER); uid, gid: the owner of the mail
    (default: nobody as root, else the invoking user); lmtp_tcp: also
    LMTP on a free loopback port; imap: IMAP on a free loopback port;
    extra: more dovecot.conf lines (a string), appended as written."""

    def __init__(self, base, *, users=DEFAULT_USERS,
                 mail_location="maildir:~/Maildir", uid=None, gid=None,
                 lmtp_tcp=False, imap=False, extra=""):
        self.base = Path(base)
        self.users = list(users)
        self.mail_location = mail_location
        default_uid, default_gid = _default_owner()
        self.uid = default_uid if uid is None else uid
        self.gid = default_gid if gid is None else gid
        self.lmtp_port = free_port() if lmtp_tcp else None
        self.imap_port = free_port() if imap else None
        self.extra = extra
        self.conf_path = self.base / "dovecot.conf"
        self.users_path = self.base / "users"
        self.log_path = self.base / "dovecot.log"
        self.homes = self.base / "home"
        self.state_dir = self.base / "state"
        # sockets need short paths: base_dir moves to /tmp when base is
        # deep (pytest's tmp_path as a normal user)
        self._own_run = None
        run = self.base / "run"
        if len(str(run)) > BASE_DIR_MAX:
            self._own_run = Path(tempfile.mkdtemp(prefix="dc-", dir="/tmp"))
            run = self._own_run / "run"
        self.run_dir = run
        self.socket = run / "lmtp"
        self.proc = None

    # ---- configuration

    def home(self, user):
        """The home of user (its default Maildir is home/Maildir)."""
        return self.homes / user

    def maildir(self, user):
        """USER's Maildir under the default mail_location."""
        return self.home(user) / "Maildir"

    def _identity(self):
        """The settings that say who Dovecot's processes run as."""
        if os.geteuid() == 0:
            return ["default_login_user = dovenull",
                    "default_internal_user = dovecot"]
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        # rootless: every service as ourselves, no chroot (which needs
        # root), and mail only as ourselves
        return [f"default_login_user = {me}",
                f"default_internal_user = {me}",
                f"default_internal_group = {group}",
                "service anvil {\n  chroot =\n}",
                "service imap-login {\n  chroot =\n}"]

    def config_text(self):
        """The dovecot.conf this instance runs with."""
        lmtp_inet = ""
        if self.lmtp_port:
            lmtp_inet = ("  inet_listener lmtp {\n"
                         "    address = 127.0.0.1\n"
                         f"    port = {self.lmtp_port}\n  }}\n")
        imap_port = self.imap_port or 0
        lines = [
            "# written by tests/integ/dovecot_peer.py",
            f"base_dir = {self.run_dir}",
            f"state_dir = {self.state_dir}",
            f"log_path = {self.log_path}",
            "protocols = lmtp imap",
            "listen = 127.0.0.1",
            "ssl = no",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain",
            "auth_username_format = %Ln",
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            f"mail_location = {self.mail_location}",
            *self._identity(),
            "passdb {\n  driver = passwd-file\n"
            f"  args = {self.users_path}\n}}",
            "userdb {\n  driver = passwd-file\n"
            f"  args = {self.users_path}\n}}",
            # a path without '/' is relative to base_dir
            "service lmtp {\n  unix_listener lmtp {\n    mode = 0666\n  }\n"
            f"{lmtp_inet}}}",
            "service imap-login {\n"
            f"  inet_listener imap {{\n    address = 127.0.0.1\n"
            f"    port = {imap_port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}",
        ]
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"

    def users_text(self):
        """passwd-file lines: user:{PLAIN}password:uid:gid::home::"""
        return "".join(
            f"{u}:{{PLAIN}}{PASSWORD}:{self.uid}:{self.gid}::"
            f"{self.home(u)}::\n" for u in self.users)

    def _prepare(self):
        self.base.mkdir(parents=True, exist_ok=True)
        self.homes.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # Dovecot creates each home as the mail's owner
            os.chown(self.homes, self.uid, self.gid)
            # its internal and login users must reach base_dir
            self.base.chmod(0o755)
        self.users_path.write_text(self.users_text())
        self.users_path.chmod(0o644)
        self.conf_path.write_text(self.config_text())
        self.conf_path.chmod(0o644)

    # ---- life cycle

    def start(self):
        """Start Dovecot; return once its listeners are bound."""
        assert self.proc is None, "dovecot is already running"
        self._prepare()
        with open(self.base / "stdout", "ab") as out:
            self.proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        try:
            wait_for(self._listening, START_TIMEOUT,
                     what=lambda: "Dovecot's LMTP socket "
                     f"{self.socket}\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        return self

    def _listening(self):
        # the master binds every listener before it starts any service,
        # so these say it is ready; no connection is made, which would
        # count in lmtp_connections()
        if self.proc.poll() is not None:
            raise AssertionError(f"dovecot exited with {self.proc.returncode}"
                                 f"\n{self.log_tail()}")
        if self.lmtp_port and not port_busy("127.0.0.1", self.lmtp_port):
            return False
        if self.imap_port and not port_busy("127.0.0.1", self.imap_port):
            return False
        return self.socket.is_socket()

    def group_pids(self):
        """The live processes of Dovecot's process group."""
        if self.proc is None:
            return []
        return [pid for pid in all_pids()
                if (st := proc_stat(pid)) and st[2] == self.proc.pid
                and st[0] != "Z"]

    def stop(self):
        """SIGTERM to the master (by pid), then SIGKILL to what is left of
        its process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.group_pids():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for(lambda: not self.group_pids(), 5,
                     what="Dovecot's processes to be gone")
        self.proc = None
        if self._own_run is not None:
            shutil.rmtree(self._own_run, ignore_errors=True)

    def running(self):
        return self.proc is not None and pid_alive(self.proc.pid)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- what it holds

    def doveadm(self, *args, timeout=30):
        """Run `doveadm -c CONF ARGS`; the CompletedProcess (text)."""
        return subprocess.run([DOVEADM, "-c", str(self.conf_path), *args],
                              capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def messages(self, user, mailbox="INBOX"):
        """The messages in USER's mailbox as Dovecot reads them (bytes,
        LF line ends, in the mailbox's order)."""
        r = subprocess.run(
            [DOVEADM, "-c", str(self.conf_path), "-f", "json", "fetch",
             "-u", user, "text", "mailbox", mailbox],
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (
            f"doveadm fetch for {user} failed ({r.returncode}): "
            f"{r.stderr.decode(errors='replace')}")
        # JSON, so that no text inside a message can look like the next
        # record; 8-bit octets survive the round trip
        out = r.stdout.decode("utf-8", "surrogateescape").strip()
        return [m["text"].encode("utf-8", "surrogateescape")
                for m in json.loads(out or "[]")]

    def wait_messages(self, user, count=1, timeout=20.0, mailbox="INBOX"):
        """Wait until USER's mailbox has at least count messages; return
        them all."""
        def enough():
            got = self.messages(user, mailbox)
            return got if len(got) >= count else None
        return wait_for(enough, timeout,
                        what=lambda: f"{count} message(s) for {user} in "
                        f"Dovecot\n{self.log_tail()}")

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "dovecot log:\n" + "\n".join(self.log_text().splitlines()[-n:])

    def lmtp_connections(self):
        """How many LMTP sessions Dovecot has logged so far ("Connect
        from local" on the socket, "Connect from 127.0.0.1" over TCP)."""
        return sum(1 for line in self.log_text().splitlines()
                   if ": Info: Connect from " in line and "lmtp(" in line)

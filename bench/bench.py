#!/usr/bin/python3
"""bench.py - tern and Postfix side by side (make bench, docs/BENCHMARKS.md).

Both MTAs run in the same role on 127.0.0.1: accept mail from loopback
clients and relay it to a Postfix smtp-sink(1) of their own, or, for the
local load, deliver it to Maildirs.  The same load, Postfix's
smtp-source(1), drives both.  Figures, each the median of --rounds
rounds (every round starts both MTAs afresh, in alternating order):

  accepted msg/s   1 KB at 1, 10 and 50 parallel sessions, 100 KB at 10:
                   messages that got 250, divided by smtp-source's run time
                   (one message per SMTP session, smtp-source's default)
  end-to-end msg/s the 1 KB x 10 load: from its start until the sink has
                   counted every accepted message
  CPU s / 1000 msg the same load: utime+stime of every process of the MTA,
                   from its start until the sink has them all
  KiB / idle sess. total RSS (and PSS) of the MTA's processes with 1000
                   sessions idle after EHLO, minus before, divided by the
                   sessions actually held
  fsync rate       4 KiB appends + fdatasync() per second in the same
                   directory, the physical reference
  10 000 sessions  tern only: total RSS holding 10 000 idle sessions
  delivered msg/s  the local load: 1 KB messages with 100 recipients
                   each (local users, 10 sessions), delivered to 100
                   Maildirs: files in their new/ per second, from the
                   load's start until every Maildir has every message
                   (Postfix: local(8) through aliases naming Maildirs)

After every load the sink's count must equal the count of 250s (for tern
that is the durability check the issue asks for; a difference is
reported, not hidden); after the local load the Maildirs must hold 100
files per 250.  Everything started here is stopped by pid, also on
failure or Ctrl-C.  Needs root: Postfix's private instance starts as
root and drops to its own user, like tern's master.

Python standard library only; run with /usr/bin/python3.
"""

import argparse
import collections
import datetime
import errno
import os
import platform
import pwd
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"
POSTFIX = shutil.which("postfix", path=SBIN)
SMTP_SOURCE = shutil.which("smtp-source", path=SBIN)
SMTP_SINK = shutil.which("smtp-sink", path=SBIN)
CLK_TCK = os.sysconf("SC_CLK_TCK")

SENDER = "sender@client.bench.test"
RCPT = "rcpt@sink.bench.test"        # tern routes sink.bench.test to its sink
HELO = "client.bench.test"
# the local load: both MTAs deliver mail for this domain to Maildirs.
# smtp-source -r N -t user@D sends to user@D, 2user@D, ... Nuser@D.
LOCAL_DOMAIN = "local.bench.test"
LOCAL_RCPT = f"user@{LOCAL_DOMAIN}"
LOCAL_RCPTS = 100

# name, message payload bytes, parallel sessions, messages per round,
# recipients per message and the (first) recipient: a load to
# LOCAL_RCPT is delivered locally, the others are relayed to the sink
Load = collections.namedtuple(
    "Load", "name size sessions count rcpts to", defaults=(1, RCPT))
LOADS = [
    Load("1k-1", 1024, 1, 1000),
    Load("1k-10", 1024, 10, 5000),
    Load("1k-50", 1024, 50, 5000),
    Load("100k-10", 102400, 10, 1000),
    Load("local", 1024, 10, 40, LOCAL_RCPTS, LOCAL_RCPT),
]
E2E_LOAD = "1k-10"          # end to end and CPU are measured on this load
IDLE_SESSIONS = 1000
BIG_IDLE_SESSIONS = 10000

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOAD_TIMEOUT = 180.0        # one smtp-source run at most
DRAIN_STALL = 30.0          # give up when the sink count stands still so long
DRAIN_MAX = 240.0           # and at most this long after the load
# idle sessions: stop opening after this long without progress (longer
# than tern's 3 s wait for the client's name before its greeting)
IDLE_STALL = 6.0
# connections at once between connect and the EHLO reply: below both
# MTAs' listen backlog (Postfix 100; tern's smtpd re-listens with
# libevent's default of 128), so that a burst of connects overflowing the
# accept queue (the kernel then retries the handshake after 1, 2, 4... s)
# does not count as memory not spent
IDLE_INFLIGHT = 100


def log(msg):
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", flush=True)


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """dict of state, ppid, pgrp, cpu (utime+stime) and ccpu
    (cutime+cstime), in clock ticks, of pid; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is stat(5) field 3 (state); utime is field 14
    return {"state": fields[0], "ppid": int(fields[1]),
            "pgrp": int(fields[2]),
            "cpu": int(fields[11]) + int(fields[12]),
            "ccpu": int(fields[13]) + int(fields[14])}


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st["state"] != "Z"


def children_of(pid):
    """Pids whose parent is pid (zombies included)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st["ppid"] == pid:
            out.append(int(name))
    return out


def descendants_of(pid):
    """Pids below pid at any depth (children, their children, ...), from
    one pass over /proc."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st:
            kids.setdefault(st["ppid"], []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), ()):
            out.append(kid)
            todo.append(kid)
    return out


def mem_kib(pid, key):
    """VmRSS from status (key "rss") or Pss from smaps_rollup ("pss"), KiB;
    0 when the process is gone."""
    path, field = ((f"/proc/{pid}/status", "VmRSS:") if key == "rss"
                   else (f"/proc/{pid}/smaps_rollup", "Pss:"))
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def nofile_limit(pid):
    """The soft 'Max open files' of pid, as text."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return line.split()[3]
    except OSError:
        pass
    return "?"


def kill_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout, alive=lambda: True, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited before listening")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept on 127.0.0.1:{port} "
                       f"within {timeout:g}s")


def render(template, path, **values):
    text = (HERE / template).read_text()
    path.write_text(string.Template(text).substitute(values))


def local_users(n=LOCAL_RCPTS, rcpt=LOCAL_RCPT):
    """The local parts smtp-source -r n -t rcpt sends to: the given one,
    then 2 to n prepended to it (checked with smtp-sink -D: Postfix 3.7
    sends nuser@, ..., 2user@, user@)."""
    local = rcpt.split("@")[0]
    return [local] + [f"{i}{local}" for i in range(2, n + 1)]


# ---------------------------------------------------------------- Maildirs

class MaildirCount:
    """Messages in new/ of the users' Maildirs under root (root/USER/
    Maildir/new).  count() lists only the directories that do not yet
    hold what is expected of them, so polling gets cheaper as delivery
    ends; a directory not yet created counts 0."""

    def __init__(self, root, users, per_user):
        self.dirs = {u: root / u / "Maildir" / "new" for u in users}
        self.per_user = per_user
        self.seen = dict.fromkeys(users, 0)

    def count(self):
        for u, d in self.dirs.items():
            if self.seen[u] >= self.per_user:
                continue
            try:
                self.seen[u] = sum(1 for e in os.scandir(d)
                                   if not e.name.startswith("."))
            except OSError:
                pass
        return sum(self.seen.values())

    def short(self):
        """The users whose Maildirs still lack messages, some of them."""
        low = [f"{u}:{n}" for u, n in self.seen.items()
               if n < self.per_user]
        return low[:8] + (["..."] if len(low) > 8 else [])


def wait_count(counter, target, poll=0.01):
    """Wait until counter.count() reaches target; return the monotonic
    time it did, or None when the count stood still for DRAIN_STALL
    seconds (or DRAIN_MAX passed)."""
    start = time.monotonic()
    last, last_change = counter.count(), start
    while True:
        n = counter.count()
        now = time.monotonic()
        if n >= target:
            return now
        if n != last:
            last, last_change = n, now
        if now - last_change > DRAIN_STALL or now - start > DRAIN_MAX:
            return None
        time.sleep(poll)


def log_since(path, offset):
    """The lines of a log file from byte offset on."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def file_size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ---------------------------------------------------------------- the sink

class Sink:
    """smtp-sink -c on 127.0.0.1: a counter of the messages it received.
    -c prints "sess=N quit=N mesg=N" at every event; count() reads the
    last one.  Started as root it must drop to a user (-u postfix)."""

    def __init__(self, base):
        self.base = base
        self.port = free_port()
        self.out_path = base / "sink.out"
        self.proc = None

    def start(self):
        argv = [SMTP_SINK, "-c", "-u", "postfix", "-h", "sink.bench.test",
                f"127.0.0.1:{self.port}", "1024"]
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out,
                                         start_new_session=True)
        wait_port(self.port, START_TIMEOUT,
                  alive=lambda: self.proc.poll() is None, what="smtp-sink")
        return self

    def count(self):
        try:
            with open(self.out_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 256))
                tail = f.read().decode("ascii", "replace")
        except OSError:
            return 0
        found = re.findall(r"mesg=(\d+)", tail)
        return int(found[-1]) if found else 0

    def diagnose(self):
        """Whether the sink still runs, and what it said besides its
        counters."""
        state = ("running" if self.proc and self.proc.poll() is None
                 else f"exited ({self.proc.returncode if self.proc else '-'})")
        try:
            text = self.out_path.read_bytes().decode("ascii", "replace")
        except OSError:
            text = ""
        said = [line for line in text.replace("\r", "\n").splitlines()
                if line and not line.startswith("sess=")]
        return [f"smtp-sink {state}"] + said[-5:]

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- the MTAs

class Mta:
    """What both MTAs share: the pids of the instance (a master and its
    children), their CPU time and their memory."""

    name = "?"

    def master_pid(self):
        raise NotImplementedError

    def pids(self):
        master = self.master_pid()
        if master is None or not pid_alive(master):
            return []
        return [master] + children_of(master)

    def cpu_seconds(self):
        """utime+stime of every process of the instance so far: the live
        ones (and zombies) at any depth below the master, plus the
        children each of them has reaped, which the kernel adds to the
        reaper's cutime/cstime.  The depth matters for tern's local
        deliveries (master -> queue -> delivery process -> one child per
        delivery); Postfix's processes are all the master's children."""
        master = self.master_pid()
        if master is None or not pid_alive(master):
            return 0.0
        total = 0
        for pid in [master] + descendants_of(master):
            st = proc_stat(pid)
            if st:
                total += st["cpu"] + st["ccpu"]
        return total / CLK_TCK

    def diagnose(self, n=8):
        """The last lines of the MTA's log that say something went wrong."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        bad = re.compile(r"warn|error|fatal|panic|defer|refused|timed out",
                         re.I)
        return [line for line in lines if bad.search(line)][-n:]

    def delivery_log(self, offset):
        """Counts of the deliveries logged from offset on: sent to a
        Maildir, bounced, deferred (both MTAs log Postfix's words)."""
        lines = log_since(self.log_path, offset)
        return {"sent": sum("status=sent (delivered to maildir)" in line
                            for line in lines),
                "bounced": sum("status=bounced" in line for line in lines),
                "deferred": sum("status=deferred" in line
                                for line in lines)}

    def memory(self):
        """(RSS, PSS) in KiB summed over the live processes."""
        pids = [p for p in self.pids() if pid_alive(p)]
        return (sum(mem_kib(p, "rss") for p in pids),
                sum(mem_kib(p, "pss") for p in pids))


class Postfix(Mta):
    """A private Postfix instance under base: its own config_directory,
    queue_directory, data_directory and log file, smtpd on
    127.0.0.1:port, relaying to the sink (after tests/integ/postfix_peer)."""

    name = "Postfix"

    def __init__(self, base, sink_port):
        self.base = base
        self.conf_dir = base / "etc"
        self.queue_dir = base / "queue"
        self.data_dir = base / "data"
        self.log_path = base / "maillog"
        # the local load's Maildirs (aliases name them) and its aliases
        self.maildir_root = base / "mail"
        self.aliases = base / "aliases"
        self.port = free_port()
        self.sink_port = sink_port
        self.started = False
        self.known = set()

    def _postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", str(self.conf_dir), *args],
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def master_pid(self):
        try:
            text = (self.queue_dir / "pid" / "master.pid").read_text()
            return int(text.strip())
        except (OSError, ValueError):
            return None

    def pids(self):
        out = super().pids()
        self.known.update(out)
        return out

    def start(self):
        for d in (self.conf_dir, self.queue_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        owner = pwd.getpwnam("postfix")
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        self._local_users()
        render("postfix-main.cf.in", self.conf_dir / "main.cf",
               queue_dir=self.queue_dir, data_dir=self.data_dir,
               sink_port=self.sink_port, log_file=self.log_path,
               base=self.base, local_domain=LOCAL_DOMAIN,
               aliases=self.aliases)
        render("postfix-master.cf.in", self.conf_dir / "master.cf",
               listen=f"127.0.0.1:{self.port}")
        self.started = True
        r = self._postfix("start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix start failed: {r.stdout}{r.stderr}")
        wait_port(self.port, START_TIMEOUT, what="postfix")
        self.pids()
        return self

    def _local_users(self):
        """The local load's users: local(8) delivers only to system users
        and aliases, so each is an alias naming a Maildir (a path ending
        in "/", written as a qmail-style Maildir).  Such a delivery runs
        as default_privs (nobody, the alias file being root's), so the
        Maildirs' parent belongs to nobody; local(8) creates the Maildirs
        in it, as tern creates its own.  texthash: read as it is, no
        postalias."""
        nobody = pwd.getpwnam("nobody")
        self.maildir_root.mkdir(mode=0o755)
        os.chown(self.maildir_root, nobody.pw_uid, nobody.pw_gid)
        self.aliases.write_text("".join(
            f"{u} {self.maildir_root / u / 'Maildir'}/\n"
            for u in local_users()))

    def limits_note(self):
        r = subprocess.run(["postconf", "-c", str(self.conf_dir), "-h",
                            "default_process_limit"], capture_output=True,
                           text=True)
        master = self.master_pid()
        return (f"Postfix: default_process_limit "
                f"{r.stdout.strip() or '?'}, open files "
                f"{nofile_limit(master) if master else '?'}")

    def stop(self):
        if not self.started:
            return
        self.started = False
        self.pids()
        try:
            self._postfix("stop")
        except subprocess.TimeoutExpired:
            pass
        if not wait_gone(list(self.known), STOP_TIMEOUT):
            for pid in self.known:
                if pid_alive(pid):
                    kill_pid(pid, signal.SIGKILL)
            wait_gone(list(self.known), 5)

    def log_tail(self, n=20):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


class Tern(Mta):
    """`tern serve -c` with its home under base, in the same role."""

    name = "tern"

    def __init__(self, base, sink_port, binary, wrapper=()):
        self.base = base
        self.home = base / "home"
        self.conf_path = base / "tern.conf"
        self.log_path = base / "tern.log"
        # the default mailbox, maildir:$home/mail/%u/Maildir
        self.maildir_root = self.home / "mail"
        self.port = free_port()
        self.sink_port = sink_port
        self.binary = binary
        self.wrapper = list(wrapper)
        self.proc = None
        self.master = None

    def master_pid(self):
        return self.master

    def start(self, timeout=START_TIMEOUT):
        self.home.mkdir(parents=True, exist_ok=True)
        render("tern.conf.in", self.conf_path, home=self.home,
               port=self.port, sink_port=self.sink_port,
               local_domain=LOCAL_DOMAIN)
        env = {k: v for k, v in os.environ.items()
               if k not in ("TERN_CONF", "TERN_HOME")}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.wrapper + [self.binary, "serve", "-c",
                                str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                cwd=self.base, env=env, start_new_session=True)
        self.master = self.proc.pid
        wait_port(self.port, timeout,
                  alive=lambda: self.proc.poll() is None, what="tern")
        return self

    def limits_note(self):
        kids = children_of(self.master) if self.master else []
        fds = ", ".join(nofile_limit(p) for p in kids) or "?"
        return (f"tern: limits sessions=10000 (default), open files of "
                f"its children {fds}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            self._kill_group()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group()
            self.proc.wait()
        self._kill_group()

    def _kill_group(self):
        # the master's group: the master and its children (pgid = its pid)
        if self.proc is None:
            return
        left = [int(n) for n in os.listdir("/proc") if n.isdigit()
                and (proc_stat(int(n)) or {}).get("pgrp") == self.proc.pid]
        for pid in left:
            if pid_alive(pid):
                kill_pid(pid, signal.SIGKILL)
        wait_gone(left, 5)

    def log_tail(self, n=20):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


# ---------------------------------------------------------------- load

def run_source(port, size, sessions, count, outdir, tag, rcpts=1,
               to=RCPT):
    """Run smtp-source once; return dict elapsed, accepted, rejected,
    errors (the stderr lines that are not rejections).  -c counts every
    completed DATA, -A goes on after a rejection (each one a warning
    line): accepted = completed DATA minus rejected end of data.  With
    rcpts > 1 every message goes to rcpts recipients (-r, see
    local_users)."""
    argv = [SMTP_SOURCE, "-c", "-A", "-C", "3", "-s", str(sessions),
            "-m", str(count), "-l", str(size), "-M", HELO, "-f", SENDER,
            "-t", to, f"127.0.0.1:{port}"]
    if rcpts > 1:
        argv[1:1] = ["-r", str(rcpts)]
    out_path = outdir / f"source-{tag}.out"
    err_path = outdir / f"source-{tag}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err)
        try:
            proc.wait(LOAD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        elapsed = time.monotonic() - t0
    counts = re.findall(rb"(\d+)", out_path.read_bytes())
    completed = int(counts[-1]) if counts else 0
    errs = err_path.read_text(errors="replace").splitlines()
    rejected = sum("end of data rejected" in line for line in errs)
    other = [line for line in errs if "end of data rejected" not in line]
    return {"t0": t0, "elapsed": elapsed, "accepted": completed - rejected,
            "rejected": rejected, "errors": other,
            "exit": proc.returncode}


def wait_sink(sink, target):
    """Wait until the sink has counted target messages; return the
    monotonic time it did, or None when the count stood still for
    DRAIN_STALL seconds (or DRAIN_MAX passed)."""
    return wait_count(sink, target)


# ---------------------------------------------------------------- idle

class IdleClients:
    """Hold up to n SMTP sessions idle after EHLO, on non-blocking sockets
    in one thread (threads would cost more than the MTA we measure).  At
    most IDLE_INFLIGHT are between connect and the EHLO reply at once;
    opening stops when all are held or nothing progressed for
    IDLE_STALL seconds (Postfix serves at most default_process_limit
    sessions: the others wait in the listen queue)."""

    def __init__(self, port, n, deadline):
        self.port = port
        self.n = n
        self.deadline = deadline
        self.sel = selectors.DefaultSelector()
        self.held = []
        self.failed = 0
        self.started = 0
        self.pending = {}

    def _open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        self.started += 1
        rc = s.connect_ex(("127.0.0.1", self.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.failed += 1
            return
        self.pending[s] = {"state": "connect", "buf": b""}
        self.sel.register(s, selectors.EVENT_WRITE)

    def _fail(self, s):
        self.sel.unregister(s)
        self.pending.pop(s, None)
        s.close()
        self.failed += 1

    def _on_event(self, s):
        st = self.pending[s]
        if st["state"] == "connect":
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return self._fail(s)
            st["state"] = "greeting"
            self.sel.modify(s, selectors.EVENT_READ)
            return None
        try:
            data = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return self._fail(s)
        if not data:
            return self._fail(s)
        st["buf"] += data
        return self._on_lines(s, st)

    def _on_lines(self, s, st):
        # a reply is complete at a line "CODE text" (no "-" after CODE)
        while b"\r\n" in st["buf"]:
            line, _, st["buf"] = st["buf"].partition(b"\r\n")
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            if not line.startswith(b"2"):
                return self._fail(s)
            if st["state"] == "greeting":
                st["state"] = "ehlo"
                s.send(f"EHLO {HELO}\r\n".encode())
            elif st["state"] == "ehlo":
                self.sel.unregister(s)
                del self.pending[s]
                self.held.append(s)
                return None
        return None

    def run(self):
        last_progress = time.monotonic()
        done = lambda: len(self.held) + self.failed  # noqa: E731
        while done() < self.n:
            while (self.started < self.n
                   and len(self.pending) < IDLE_INFLIGHT):
                self._open_one()
            before = done()
            for key, _ in self.sel.select(0.2):
                self._on_event(key.fileobj)
            now = time.monotonic()
            if done() != before:
                last_progress = now
            if now - last_progress > IDLE_STALL or now > self.deadline:
                break
        return self

    def close(self):
        for s in list(self.pending):
            self.sel.unregister(s)
            s.close()
        self.pending.clear()
        for s in self.held:
            s.close()
        self.held = []
        self.sel.close()


def idle_memory(mta, n, timeout):
    """Open n idle sessions to mta; return dict held, failed, rss/pss
    before and with them (KiB), per-session RSS and PSS (KiB)."""
    time.sleep(0.5)
    rss0, pss0 = mta.memory()
    clients = IdleClients(mta.port, n, time.monotonic() + timeout).run()
    try:
        time.sleep(1.0)         # let the MTA settle (process starts, DNS)
        rss1, pss1 = mta.memory()
        held = len(clients.held)
    finally:
        clients.close()
    time.sleep(0.5)
    per = (lambda a, b: (b - a) / held if held else float("nan"))
    return {"held": held, "failed": clients.failed,
            "tried": clients.started, "rss0": rss0, "rss1": rss1,
            "pss0": pss0, "pss1": pss1, "rss_per": per(rss0, rss1),
            "pss_per": per(pss0, pss1)}


# ---------------------------------------------------------------- fsync

def fsync_rate(directory, seconds=3.0):
    """4 KiB appends, each followed by fdatasync(), per second: what one
    durable write costs on this disk (a queue file is new, so its size
    changes: an append, not an overwrite)."""
    path = directory / "fsync-probe"
    block = b"x" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)
        path.unlink()


# ---------------------------------------------------------------- rounds

def log_load(name, count, r):
    rate = r["accepted"] / r["elapsed"] if r["elapsed"] else 0
    msg = (f"  {name}: {r['accepted']}/{count} accepted in "
           f"{r['elapsed']:.2f}s = {rate:.0f}/s")
    msg += (f", e2e {r['accepted'] / r['e2e']:.0f}/s" if r["e2e"]
            else ", the sink did not get them all")
    msg += f", CPU {r['cpu']:.2f}s"
    if r["received"] != r["accepted"]:
        msg += f"; SINK GOT {r['received']} FOR {r['accepted']} 250s"
    if r["errors"]:
        msg += f"; {len(r['errors'])} client errors, first: " + \
            r["errors"][0]
    log(msg)


def log_local(name, count, r):
    rate = r["accepted"] / r["elapsed"] if r["elapsed"] else 0
    msg = (f"  {name}: {r['accepted']}/{count} accepted in "
           f"{r['elapsed']:.2f}s = {rate:.0f}/s, "
           f"{r['delivered']}/{r['expected']} delivered")
    msg += (f" in {r['dlv_time']:.2f}s = "
            f"{r['delivered'] / r['dlv_time']:.0f}/s" if r["dlv_time"]
            else " (not all)")
    msg += f", CPU {r['cpu']:.2f}s"
    lg = r["log"]
    msg += (f"; log: {lg['sent']} delivered to maildir, "
            f"{lg['bounced']} bounced, {lg['deferred']} deferred")
    if r["errors"]:
        msg += f"; {len(r['errors'])} client errors, first: " + \
            r["errors"][0]
    log(msg)


def local_load(mta, base, res, name, size, sessions, count, rcpts):
    """The local load on mta: count messages of size bytes to rcpts
    local users each, over sessions sessions; delivered = the files in
    the users' Maildir/new, polled until every accepted message is in
    every Maildir (or the count stands still).  Checked: delivered ==
    accepted x rcpts."""
    users = local_users(rcpts)
    log_off = file_size(mta.log_path)
    cpu0 = mta.cpu_seconds()
    r = run_source(mta.port, size, sessions, count, base, name,
                   rcpts=rcpts, to=LOCAL_RCPT)
    # a fresh instance: every user gets every accepted message, no more
    counter = MaildirCount(mta.maildir_root, users, r["accepted"])
    r["expected"] = r["accepted"] * len(users)
    t_all = wait_count(counter, r["expected"], poll=0.05)
    time.sleep(0.5)
    r["cpu"] = mta.cpu_seconds() - cpu0
    # every directory once more: a surplus counts too
    counter.per_user = float("inf")
    r["delivered"] = counter.count()
    r["dlv_time"] = (t_all - r["t0"]) if t_all else None
    r["log"] = mta.delivery_log(log_off)
    res["loads"][name] = r
    ok = r["delivered"] == r["expected"]
    res["checks"].append((name, r["expected"], r["delivered"], ok))
    log_local(name, count, r)
    if not ok:
        for line in ([f"Maildirs short: {' '.join(counter.short())}"]
                     + mta.diagnose()):
            log(f"    | {line}")


def measure_mta(kind, base, args, rnd, loads):
    """One round of one MTA: a fresh instance and sink, the idle
    sessions, then every load; stops everything it started."""
    base.mkdir(parents=True)
    os.chmod(base, 0o755)
    sink = Sink(base)
    mta = (Postfix(base, 0) if kind == "Postfix"
           else Tern(base, 0, args.tern, wrapper=args.wrap))
    res = {"loads": {}, "checks": []}
    try:
        sink.start()
        mta.sink_port = sink.port
        mta.start()
        res["limits"] = mta.limits_note()
        log(f"round {rnd}: {mta.name} on 127.0.0.1:{mta.port}, "
            f"sink on {sink.port}")
        if args.idle:
            res["idle"] = idle_memory(mta, args.idle, 60.0)
            i = res["idle"]
            log(f"  idle: held {i['held']}/{args.idle}, "
                f"RSS {i['rss_per']:.1f} KiB/session")
        total, relayed = 0, False
        for name, size, sessions, count, rcpts, to in loads:
            if to == LOCAL_RCPT:
                local_load(mta, base, res, name, size, sessions, count,
                           rcpts)
                continue
            relayed = True
            base_count = sink.count()
            cpu0 = mta.cpu_seconds()
            r = run_source(mta.port, size, sessions, count, base, name)
            total += r["accepted"]
            t_all = wait_sink(sink, base_count + r["accepted"])
            time.sleep(0.5)
            r["cpu"] = mta.cpu_seconds() - cpu0
            r["received"] = sink.count() - base_count
            r["e2e"] = (t_all - r["t0"]) if t_all else None
            res["loads"][name] = r
            ok = r["received"] == r["accepted"]
            res["checks"].append((name, r["accepted"], r["received"], ok))
            log_load(name, count, r)
            if not ok:
                for line in sink.diagnose() + mta.diagnose():
                    log(f"    | {line}")
        # whatever came late counts here: the whole round must match
        if relayed:
            wait_sink(sink, total)
            got = sink.count()
            res["checks"].append(("round", total, got, got == total))
    except Exception as e:        # noqa: BLE001 - reported, round goes on
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"  {mta.name} round {rnd} failed: {res['error']}\n"
            f"{mta.log_tail()}")
    finally:
        mta.stop()
        sink.stop()
    return res


def big_idle(base, args):
    """tern alone holding args.big idle sessions: its total RSS."""
    base.mkdir(parents=True)
    os.chmod(base, 0o755)
    sink = Sink(base)
    tern = Tern(base, 0, args.tern, wrapper=args.wrap)
    try:
        sink.start()
        tern.sink_port = sink.port
        tern.start()
        r = idle_memory(tern, args.big, 240.0)
        r["limits"] = tern.limits_note()
        return r
    except Exception as e:        # noqa: BLE001
        log(f"{args.big} idle sessions failed: {e}\n{tern.log_tail()}")
        return {"error": str(e)}
    finally:
        tern.stop()
        sink.stop()


def median(values):
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else None


def figures(rounds):
    """name -> median over the rounds of one MTA's results."""
    out = {}
    per_round = {}
    for res in rounds:
        vals = {}
        for name, r in res.get("loads", {}).items():
            if r["elapsed"] > 0:
                vals[f"acc-{name}"] = r["accepted"] / r["elapsed"]
            if name == E2E_LOAD and r["accepted"] and r["e2e"]:
                # a load whose delivery stalled gives neither figure
                vals["e2e"] = r["accepted"] / r["e2e"]
                vals["cpu"] = r["cpu"] / r["accepted"] * 1000
            if r.get("dlv_time") and r["delivered"]:
                # nor does a local load whose Maildirs stayed short
                vals[f"dlv-{name}"] = r["delivered"] / r["dlv_time"]
                vals[f"cpu-{name}"] = r["cpu"] / r["delivered"] * 1000
        if "idle" in res:
            vals["rss"] = res["idle"]["rss_per"]
            vals["pss"] = res["idle"]["pss_per"]
            vals["held"] = res["idle"]["held"]
        for k, v in vals.items():
            per_round.setdefault(k, []).append(v)
    for k, v in per_round.items():
        out[k] = median(v)
    return out, per_round


ROWS = [
    # key, label, format, better ("hi"/"lo"), target ratio, aim ratio
    ("acc-1k-1", "accepted msg/s, 1 KB, 1 session", "{:.0f}", "hi",
     None, 5.0),
    ("acc-1k-10", "accepted msg/s, 1 KB, 10 sessions", "{:.0f}", "hi",
     3.0, 5.0),
    ("acc-1k-50", "accepted msg/s, 1 KB, 50 sessions", "{:.0f}", "hi",
     3.0, 5.0),
    ("acc-100k-10", "accepted msg/s, 100 KB, 10 sessions", "{:.0f}", "hi",
     None, 5.0),
    ("e2e", "end-to-end msg/s, 1 KB, 10 sessions", "{:.0f}", "hi",
     2.5, 5.0),
    ("cpu", "CPU s per 1000 msgs (1 KB, 10 sess.)", "{:.2f}", "lo",
     0.33, 0.2),
    ("rss", "RSS KiB per idle session", "{:.1f}", "lo", None, None),
    ("pss", "PSS KiB per idle session", "{:.1f}", "lo", None, None),
    ("held", f"idle sessions held (of {IDLE_SESSIONS})", "{:.0f}", "hi",
     None, None),
    # the local load: messages of 1 KB to 100 users' Maildirs
    ("dlv-local", "delivered msg/s, local Maildir, 100 rcpt", "{:.0f}",
     "hi", 3.0, 5.0),
    ("acc-local", "accepted msg/s, same load (x100 rcpt)", "{:.1f}", "hi",
     None, None),
    ("cpu-local", "CPU s per 1000 local deliveries", "{:.2f}", "lo",
     None, None),
]


def fmt(form, v):
    return "-" if v is None else form.format(v)


def table(tf, pf, fsync, big, args):
    lines = []
    head = (f"{'figure':<40} {'tern':>9} {'Postfix':>9} {'tern/Pf':>8} "
            f"{'target':>7} {'5x aim':>8}")
    lines += [head, "-" * len(head)]
    for key, label, form, better, target, aim in ROWS:
        t, p = tf.get(key), pf.get(key)
        ratio = t / p if t is not None and p else None
        tgt = ""
        if target is not None and ratio is not None:
            met = ratio >= target if better == "hi" else ratio <= target
            tgt = f"{'>=' if better == 'hi' else '<='}{target:g} " + \
                ("ok" if met else "NO")
        elif key == "rss" and t is not None:
            tgt = "<=32K " + ("ok" if t <= 32 else "NO")
        gap = ""
        if aim is not None and ratio:
            gap = f"x{aim / ratio:.2f}" if better == "hi" else \
                f"x{ratio / aim:.2f}"
        rform = "{:.2f}" if ratio is None or ratio >= 0.01 else "{:.1e}"
        lines.append(f"{label:<40} {fmt(form, t):>9} {fmt(form, p):>9} "
                     f"{fmt(rform, ratio):>8} {tgt:>7} {gap:>8}")
    lines.append(f"{'fsync rate of the disk, 4 KiB+fdatasync/s':<40} "
                 f"{fmt('{:.0f}', fsync):>9}")
    if big is not None:
        if "error" in big:
            lines.append(f"tern, {args.big} idle sessions: failed "
                         f"({big['error']})")
        else:
            mib = big["rss1"] / 1024
            lines.append(
                f"{f'tern: total RSS MiB, {args.big} idle sess.':<40} "
                f"{mib:>9.1f}   held {big['held']}/{args.big}, "
                f"target <200 MB: "
                f"{'ok' if big['rss1'] * 1024 < 200e6 else 'NO'}")
    lines.append("'5x aim': the factor still missing to 5x Postfix "
                 "(x1.00 or less: there)")
    return lines


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model


def fs_type(path):
    r = subprocess.run(["df", "-PT", str(path)], capture_output=True,
                       text=True)
    rows = r.stdout.splitlines()
    return rows[1].split()[1] if len(rows) > 1 else "?"


def versions(tern_bin):
    r = subprocess.run(["postconf", "-dh", "mail_version"],
                       capture_output=True, text=True)
    pf = r.stdout.strip() or "?"
    r = subprocess.run([tern_bin, "version"], capture_output=True,
                       text=True)
    tv = (r.stdout.strip() or r.stderr.strip() or "?").splitlines()[0]
    # a binary of this tree was built from its working tree: name the
    # commit, and -dirty when files were changed (git is only read)
    if Path(tern_bin).resolve().is_relative_to(REPO):
        r = subprocess.run(["git", "-C", str(REPO), "describe", "--always",
                            "--dirty"], capture_output=True, text=True)
        if r.returncode == 0:
            tv += f" (tree {r.stdout.strip()})"
    return tv, pf


# ---------------------------------------------------------------- main

def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def check_tools(args):
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root: Postfix's private instance and "
                        "smtp-sink start as root and drop privileges")
    for name, path in (("postfix", POSTFIX), ("smtp-source", SMTP_SOURCE),
                       ("smtp-sink", SMTP_SINK)):
        if not path:
            problems.append(f"{name} is missing (sh scripts/deps.sh)")
    if not os.access(args.tern, os.X_OK):
        problems.append(f"no tern binary at {args.tern} (make)")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        problems.append("the user postfix does not exist")
    return problems


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tern", default=str(REPO / "build" / "tern"),
                   help="the tern binary (default build/tern)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every load's message count")
    p.add_argument("--loads", default=None, type=lambda v: v.split(","),
                   metavar="NAME,...",
                   help="run only these loads (of "
                   + ", ".join(ld.name for ld in LOADS) + "; default all)")
    p.add_argument("--idle", type=int, default=IDLE_SESSIONS,
                   help="idle sessions for the memory figures; 0 skips")
    p.add_argument("--big", type=int, default=BIG_IDLE_SESSIONS,
                   help="tern's many idle sessions; 0 skips")
    p.add_argument("--tmpdir", default=None,
                   help="where the instances live (default $TMPDIR or /tmp)")
    p.add_argument("--out", default=str(HERE / "results-latest.txt"))
    p.add_argument("--only", choices=("tern", "Postfix"), default=None,
                   help="measure one MTA only (for development)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory")
    p.add_argument("--wrap", default="", type=shlex.split,
                   help="a command tern runs under, for experiments: "
                   "--wrap 'env LD_PRELOAD=/tmp/x.so'")
    return p.parse_args()


def main():
    args = parse_args()
    args.tern = os.path.abspath(args.tern)
    problems = check_tools(args)
    if problems:
        for msg in problems:
            print(f"bench: {msg}", file=sys.stderr)
        return 2
    unknown = set(args.loads or ()) - {ld.name for ld in LOADS}
    if unknown:
        print(f"bench: no load named {', '.join(sorted(unknown))}",
              file=sys.stderr)
        return 2
    nofile = raise_nofile(max(args.big, args.idle) * 2 + 1024)
    loads = [ld._replace(count=max(1, int(ld.count * args.scale)))
             for ld in LOADS if not args.loads or ld.name in args.loads]
    top = Path(tempfile.mkdtemp(prefix="tern-bench-", dir=args.tmpdir))
    os.chmod(top, 0o755)
    # Ctrl-C and SIGTERM unwind through the finally blocks that stop
    # every instance
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    when = datetime.datetime.now(datetime.timezone.utc)
    # the benchmark wants the machine to itself: say how busy it was
    load_before = os.getloadavg()
    results = {"tern": [], "Postfix": []}
    fsyncs = []
    big = None
    try:
        log(f"bench: instances under {top} ({fs_type(top)}); "
            f"open files {nofile}")
        kinds = ["Postfix", "tern"] if args.only is None else [args.only]
        for rnd in range(1, args.rounds + 1):
            fsyncs.append(fsync_rate(top))
            log(f"round {rnd}: fsync rate {fsyncs[-1]:.0f}/s")
            order = kinds if rnd % 2 else list(reversed(kinds))
            for kind in order:
                results[kind].append(measure_mta(
                    kind, top / f"r{rnd}-{kind.lower()}", args, rnd, loads))
        if args.big and args.only != "Postfix":
            log(f"tern: {args.big} idle sessions")
            big = big_idle(top / "big", args)
            if "error" not in big:
                log(f"  held {big['held']}, total RSS "
                    f"{big['rss1'] / 1024:.1f} MiB")
    finally:
        if args.keep:
            log(f"kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    tf, tr = figures(results["tern"])
    pf, pr = figures(results["Postfix"])
    tv, pv = versions(args.tern)
    out = [f"tern vs Postfix, {when:%Y-%m-%d %H:%M} UTC, median of "
           f"{args.rounds} round(s), load scale {args.scale:g}"
           + (f", tern under {shlex.join(args.wrap)}" if args.wrap else "")
           + (f", loads {','.join(args.loads)} only" if args.loads else ""),
           f"machine: {len(os.sched_getaffinity(0))} CPUs, {machine()}, "
           f"Linux {platform.release()}, temp dir on {fs_type(top.parent)}; "
           f"load average before the run {load_before[0]:.2f}",
           f"versions: {tv}; Postfix {pv}", ""]
    out += table(tf, pf, median(fsyncs), big, args)
    out += ["", "durability (messages at the sink == messages that got "
            "250, after every load; local: files in the Maildirs == 250s "
            f"x {LOCAL_RCPTS}):"]
    for kind in ("tern", "Postfix"):
        checks = [c for res in results[kind] for c in res.get("checks", [])]
        bad = [c for c in checks if not c[3]]
        errs = [res["error"] for res in results[kind] if "error" in res]
        if not checks and not errs:
            continue
        out.append(f"  {kind}: {len(checks) - len(bad)}/{len(checks)} "
                   f"loads matched"
                   + "".join(f"; {n}: {'Maildirs' if n == 'local' else 'sink'}"
                             f" {got}, expected {exp}"
                             for n, exp, got, _ in bad)
                   + "".join(f"; round failed: {e}" for e in errs))
    out += ["", "limits:"]
    for kind in ("tern", "Postfix"):
        notes = {res["limits"] for res in results[kind] if "limits" in res}
        out += [f"  {n}" for n in sorted(notes)]
    out += ["", "per round:"]
    for kind, per in (("tern", tr), ("Postfix", pr)):
        for key, vals in sorted(per.items()):
            out.append(f"  {kind:<8}{key:<12}" + " ".join(
                "-" if v is None else f"{v:.1f}" for v in vals))
    out.append("  fsync/s     " + " ".join(f"{v:.0f}" for v in fsyncs))
    out.append(f"\nrun time {time.monotonic() - started:.0f}s")
    text = "\n".join(out) + "\n"
    print("\n" + text, end="")
    Path(args.out).write_text(text)
    log(f"written to {args.out}")
    failed = any("error" in res for rs in results.values() for res in rs)
    lost = any(not c[3] and c[2] < c[1] for res in results["tern"]
               for c in res.get("checks", []))
    return 1 if failed or lost else 0


if __name__ == "__main__":
    sys.exit(main())

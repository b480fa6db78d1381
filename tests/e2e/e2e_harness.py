"""e2e_harness - hosts in network namespaces, a DNS server, tern on each.

The end-to-end tests build a small internet of their own: one network
namespace per host, all joined by a bridge that lives in one more
namespace (the "switch"), each host linked to it by a veth pair whose two
ends are created inside namespaces (`ip -n SWITCH link add vN type veth
peer name eth0 netns HOST`).  Nothing is ever added to the root namespace:
Network records the root namespace's links, addresses and routes when it
is made and checks them again when it is closed.

Addresses come from the documentation ranges only: host number N gets
198.51.100.N/24 and 2001:db8::N/64 (the same digits, read as hex in IPv6).
A DNS server (dnsmasq, run by hand with its own options, no system
service) answers MX, A, AAAA and PTR records for the test's names; every
tern points at it with `resolver 198.51.100.53`.

Every process is started by the test and stopped by pid; at the end any
process still inside one of the test's namespaces (only ours can be there)
is killed by pid, then the namespaces are deleted, also when the test
failed.  Code runs "inside" a host by switching the calling thread's
network namespace with setns(2) for the time a socket is created (a
socket stays in the namespace it was made in); child processes enter
their namespace with setns(2) between fork and exec.
"""

import ctypes
import email
import itertools
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integ"))

from tern_harness import (SMTPClient, Tern, pid_alive,  # noqa: E402
                          wait_for)

IP = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin") or "ip"
DNSMASQ = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin")
NETNS_DIR = Path("/run/netns")
NS_PREFIX = "tern-e2e-"
CLONE_NEWNET = 0x40000000
SMTP_PORT = 25
DNS_HOST = 53
START_TIMEOUT = 15.0

_libc = ctypes.CDLL(None, use_errno=True)
_seq = itertools.count()


# ---------------------------------------------------------------- setns

def _setns(fd):
    # Python 3.11 (Debian 12) has no os.setns: call libc's through ctypes
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


@contextmanager
def netns(name):
    """Run the block with this thread in network namespace name; sockets
    made inside stay there after the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def netns_preexec(name, then=None):
    """A preexec_fn that moves the child into namespace name (then runs
    then(), e.g. a privilege drop)."""
    path = str(NETNS_DIR / name)

    def enter():
        fd = os.open(path, os.O_RDONLY)
        _setns(fd)
        os.close(fd)
        if then:
            then()
    return enter


# ---------------------------------------------------------------- ip(8)

def ip(*args, check=True):
    """Run ip(8) with args; returns stdout.  Raises with stderr."""
    r = subprocess.run([IP, *args], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def root_snapshot():
    """The root namespace's links, addresses and routes (v4 and v6), for
    the check that a test added nothing there."""
    links = sorted(x["ifname"] for x in json.loads(ip("-j", "link") or "[]"))
    addrs = []
    for x in json.loads(ip("-j", "addr") or "[]"):
        for a in x.get("addr_info", []):
            addrs.append(f"{x['ifname']} {a['local']}/{a['prefixlen']}")
    routes = []
    for fam in ("-4", "-6"):
        for r in json.loads(ip(fam, "-j", "route", "show", "table", "all")
                            or "[]"):
            routes.append(f"{r.get('dst')} {r.get('dev')} "
                          f"{r.get('gateway', '')} {r.get('table', '')}")
    return {"links": links, "addrs": sorted(addrs), "routes": sorted(routes)}


def netns_list():
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def netns_pids(name):
    """Pids of the processes inside namespace name."""
    out = ip("netns", "pids", name, check=False)
    return [int(x) for x in out.split() if x.isdigit()]


def _kill_in_netns(name, timeout=5.0):
    """Kill, by pid, every process still inside our namespace name (only
    processes the tests started can be there)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in netns_pids(name) if pid_alive(p)]
        if not pids:
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"processes {pids} do not leave netns {name}")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def delete_netns(name):
    _kill_in_netns(name)
    ip("netns", "del", name, check=False)


def remove_stale_namespaces():
    """Delete namespaces a killed earlier run of this suite left behind:
    ours are named tern-e2e-PID-..., and PID is no longer running."""
    for name in netns_list():
        if not name.startswith(NS_PREFIX):
            continue
        owner = name[len(NS_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not pid_alive(int(owner)) \
                and int(owner) != os.getpid():
            delete_netns(name)


# ---------------------------------------------------------------- hosts

def addr4(n):
    return f"198.51.100.{n}"


def addr6(n):
    return f"2001:db8::{n}"


class Host:
    """One host: a network namespace with lo, eth0 (veth to the switch),
    198.51.100.N/24 and 2001:db8::N/64."""

    def __init__(self, net, short, n, hostname):
        self.net = net
        self.short = short
        self.n = n
        self.hostname = hostname
        self.ns = f"{net.prefix}-{short}"
        self.addr4 = addr4(n)
        self.addr6 = addr6(n)

    @property
    def addrs(self):
        return [self.addr4, self.addr6]

    def netns(self):
        """Context manager: this thread inside the host's namespace."""
        return netns(self.ns)

    def popen(self, argv, **kw):
        """Start a process inside the host (registered with the network,
        killed by pid at the end at the latest)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(argv, preexec_fn=netns_preexec(self.ns),
                                **kw)
        self.net.procs.append(proc)
        return proc

    def run(self, argv, timeout=30):
        """Run a short command inside the host; CompletedProcess (text)."""
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              preexec_fn=netns_preexec(self.ns))

    def can_connect(self, addr, port=SMTP_PORT, timeout=0.5):
        """True when a TCP connection from this host to addr:port opens."""
        try:
            with self.netns():
                s = socket.create_connection((addr, port), timeout=timeout)
            s.close()
        except OSError:
            return False
        return True

    def smtp(self, addr, port=SMTP_PORT, timeout=10.0):
        """A raw SMTPClient (tern_harness) connected from this host."""
        with self.netns():
            return SMTPClient(addr, port, timeout)

    def smtplib(self, addr, port=SMTP_PORT, timeout=30.0):
        """A connected smtplib.SMTP from this host, EHLO with its name."""
        with self.netns():
            s = smtplib.SMTP(addr, port, local_hostname=self.hostname,
                             timeout=timeout)
        s.ehlo()
        return s

    def tcp_established(self, port=SMTP_PORT):
        """Established TCP connections of this namespace to remote port
        (read from /proc/net/tcp{,6} as seen from inside)."""
        out = []
        with self.netns():
            # /proc/thread-self/net: the calling thread's namespace
            for fam in ("tcp", "tcp6"):
                with open(f"/proc/thread-self/net/{fam}") as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        rem, state = parts[2], parts[3]
                        if state == "01" and \
                                int(rem.rsplit(":", 1)[1], 16) == port:
                            out.append(rem)
        return out

    def __repr__(self):
        return f"<Host {self.hostname} {self.addr4} {self.addr6}>"


class Network:
    """The switch namespace with bridge br0, and the hosts on it."""

    def __init__(self, rundir):
        self.rundir = Path(rundir)
        self.prefix = f"{NS_PREFIX}{os.getpid()}-{next(_seq)}"
        self.hosts = {}
        self.procs = []       # Popen objects started in our namespaces
        self.stoppers = []    # callables that stop servers by pid
        self.namespaces = []
        self.root_before = root_snapshot()
        self.switch = f"{self.prefix}-sw"
        self._add_ns(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge",
           "stp_state", "0", "mcast_snooping", "0")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_ns(self, name):
        ip("netns", "add", name)
        self.namespaces.append(name)

    def add_host(self, short, n, hostname):
        """A new host number n (1..254) named hostname."""
        assert 1 <= n <= 254 and n not in [h.n for h in self.hosts.values()]
        h = Host(self, short, n, hostname)
        self._add_ns(h.ns)
        port = f"v{n}"
        ip("-n", self.switch, "link", "add", port, "type", "veth",
           "peer", "name", "eth0", "netns", h.ns)
        ip("-n", self.switch, "link", "set", port, "master", "br0")
        ip("-n", self.switch, "link", "set", port, "up")
        ip("-n", h.ns, "link", "set", "lo", "up")
        ip("-n", h.ns, "link", "set", "eth0", "up")
        ip("-n", h.ns, "addr", "add", f"{h.addr4}/24", "dev", "eth0")
        # nodad: the address is usable at once, not "tentative" for a
        # second of duplicate address detection
        ip("-n", h.ns, "addr", "add", f"{h.addr6}/64", "dev", "eth0",
           "nodad")
        self.hosts[short] = h
        return h

    def root_changes(self):
        """What differs in the root namespace since the network was made
        ("" when nothing)."""
        now = root_snapshot()
        diffs = []
        for key, before in self.root_before.items():
            added = sorted(set(now[key]) - set(before))
            if added:
                diffs.append(f"{key} added in the root namespace: {added}")
        return "\n".join(diffs)

    def close(self):
        """Stop every server (by pid), kill what is left inside our
        namespaces, delete them.  Returns the root namespace changes
        seen before the teardown ("" when none)."""
        changes = self.root_changes()
        errors = []
        for stop in reversed(self.stoppers):
            try:
                stop()
            except (Exception, pytest.fail.Exception) as e:
                errors.append(f"{stop}: {e}")  # and go on tearing down
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    proc.kill()
                proc.wait()
        for name in reversed(self.namespaces):
            try:
                delete_netns(name)
            except Exception as e:
                errors.append(f"netns {name}: {e}")
        left = [n for n in self.namespaces if n in netns_list()]
        if left:
            errors.append(f"namespaces not deleted: {left}")
        if errors:
            raise RuntimeError("teardown: " + "; ".join(errors))
        return changes


# ---------------------------------------------------------------- DNS

class DnsServer:
    """dnsmasq on host (its addresses, port 53), answering only from the
    records given here: --no-resolv --no-hosts, and --local for every
    zone, so a name it does not know is NXDOMAIN, not forwarded."""

    def __init__(self, host, rundir):
        self.host = host
        self.dir = Path(rundir) / "dns"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.log_path = self.dir / "dnsmasq.log"
        self.pid_path = self.dir / "dnsmasq.pid"
        self.zones = {"100.51.198.in-addr.arpa",
                      "8.b.d.0.1.0.0.2.ip6.arpa"}
        self.records = []
        self.proc = None

    @staticmethod
    def _zone(name):
        # the last two labels: mx.dma.org -> dma.org, ns.test -> ns.test
        return ".".join(name.split(".")[-2:])

    def host_record(self, name, *addrs):
        """A and AAAA records of name (and their PTR records)."""
        self.records.append(f"--host-record={name},{','.join(addrs)}")
        self.zones.add(self._zone(name))

    def add_host(self, h):
        """A, AAAA and PTR records for a Host."""
        self.host_record(h.hostname, h.addr4, h.addr6)

    def mx(self, domain, target, pref=10):
        """An MX record: domain -> target at preference pref."""
        self.records.append(f"--mx-host={domain},{target},{pref}")
        self.zones.add(domain)

    def argv(self):
        argv = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll",
                "--bind-interfaces",
                f"--listen-address={self.host.addr4}",
                f"--listen-address={self.host.addr6}",
                "--port=53", f"--pid-file={self.pid_path}",
                "--user=root", "--group=root",
                "--log-queries", f"--log-facility={self.log_path}",
                "--local-ttl=0"]
        argv += [f"--local=/{z}/" for z in sorted(self.zones)]
        return argv + self.records

    def start(self):
        out = open(self.dir / "dnsmasq.out", "ab")
        self.proc = self.host.popen(self.argv(), stdout=out, stderr=out)
        out.close()
        self.host.net.stoppers.append(self.stop)
        # the first host record is the probe: answered means ready
        probe = next(r.split("=", 1)[1].split(",")[0]
                     for r in self.records if r.startswith("--host-"))

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dnsmasq exited {self.proc.returncode}: "
                    f"{(self.dir / 'dnsmasq.out').read_text()}")
            return bool(self.query(probe, "A", timeout=0.5))
        wait_for(answers, START_TIMEOUT, what="dnsmasq to answer")
        return self

    def query(self, name, rdtype, from_host=None, timeout=2.0):
        """Ask this server from from_host (default: its own host); the
        answer's records as text, [] for NXDOMAIN/no data/timeout."""
        import dns.exception
        import dns.resolver
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [self.host.addr4]
        r.lifetime = timeout
        r.timeout = timeout
        with (from_host or self.host).netns():
            try:
                ans = r.resolve(name, rdtype, raise_on_no_answer=False)
            except (dns.resolver.NXDOMAIN, dns.exception.Timeout,
                    dns.resolver.NoNameservers):
                return []
        return [rr.to_text() for rr in ans] if ans.rrset else []

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- tern

class NsTern(Tern):
    """tern serve on a Host: listens on the host's addresses, port 25,
    runs inside its namespace (setns before exec; as root it binds port 25
    and then drops to the user tern as usual).  Keyword arguments are
    configuration lines as in tern_harness.Tern."""

    def __init__(self, host, rundir, name=None, ipv4=True, ipv6=True,
                 **keys):
        keys.setdefault("hostname", host.hostname)
        super().__init__(rundir, name or host.short, port=SMTP_PORT, **keys)
        self.host = host
        # the addresses listened on (ipv4=False / ipv6=False leave one out)
        self.listen_addrs = [a for a, on in ((host.addr4, ipv4),
                                             (host.addr6, ipv6)) if on]
        host.net.stoppers.append(self.stop)

    def config_text(self):
        lines = ["# written by tests/e2e/e2e_harness.py",
                 f"home {self.home}"]
        for a in self.listen_addrs:
            a = f"[{a}]" if ":" in a else a
            lines.append(f"listen {a}:{SMTP_PORT}")
        lines += [f"{k} {v}" for k, v in self.keys.items()]
        lines += self.extra
        return "\n".join(lines) + "\n"

    def _preexec(self):
        return netns_preexec(self.host.ns, super()._preexec())

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"tern on {self.host.hostname} exited "
                                     f"with {self.proc.returncode} before "
                                     f"listening\n{self.log_tail()}")
            if all(self.host.can_connect(a) for a in self.listen_addrs):
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"tern on {self.host.hostname} did not accept "
                             f"within {timeout:g}s\n{self.log_tail()}")


# ---------------------------------------------------------------- mail

def log_lines(t, *words):
    """Lines of tern t's log that hold every one of words."""
    return [line for line in t.log_text().splitlines()
            if all(w in line for w in words)]


def delivery_status(msg):
    """(per-message fields, [per-recipient fields]) of the report, as
    dicts of lower-case name -> value with folding undone."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            groups = [{k.lower(): " ".join(str(v).split())
                       for k, v in g.items()} for g in part.get_payload()]
            return groups[0], groups[1:]
    raise AssertionError("no message/delivery-status part")


def returned_headers(msg):
    """The returned message's header (message/rfc822 or
    text/rfc822-headers part)."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            return part.get_payload()[0]
        if ctype == "text/rfc822-headers":
            return email.message_from_string(part.get_payload())
    raise AssertionError("the DSN returns neither message nor headers")

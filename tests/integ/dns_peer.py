"""dns_peer - a private dnsmasq (package dnsmasq-base) on a free loopback
port, answering only from the records a test gives it, for tern's
`resolver 127.0.0.1:PORT`: DNS blocklists and allowlists (RFC 5782) in
test_dnsbl.py and test_proxy.py.

Every zone it serves is `--local`, so a name it does not know is NXDOMAIN
at once, never forwarded; the reverse zones (in-addr.arpa, ip6.arpa) too,
so the client-name lookup of each session is answered quickly.  A zone
can instead be handed to a `SilentServer`: a UDP socket the test holds
and never answers on (a DNS list that does not answer).
"""

import os
import shutil
import socket
import subprocess
from pathlib import Path

from tern_harness import free_port, stop_process, wait_for

DNSMASQ = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin")


def reversed_name(addr, zone):
    """The RFC 5782 query name of addr (IPv4 or IPv6 text) under zone."""
    if ":" in addr:
        packed = socket.inet_pton(socket.AF_INET6, addr)
        nibbles = "".join(f"{b:02x}" for b in packed)[::-1]
        return ".".join(nibbles) + "." + zone
    return ".".join(reversed(addr.split("."))) + "." + zone


def dns_query_a(port, name, timeout=1.0):
    """Ask 127.0.0.1:port for the A records of name (a hand-made query:
    the integration tests need no DNS library); a list of dotted
    addresses, [] for none or no answer."""
    qid = os.getpid() & 0xffff
    wire = b"".join(bytes([len(label)]) + label.encode()
                    for label in name.split(".")) + b"\0"
    query = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00" \
        b"\x00\x00" + wire + b"\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, ("127.0.0.1", port))
        try:
            answer = s.recv(4096)
        except OSError:
            return []
    count = int.from_bytes(answer[6:8], "big")
    # the answers follow the question; each A record ends in 4 octets
    # (dnsmasq compresses the owner name to a 2-octet pointer)
    out, at = [], 12 + len(wire) + 4
    for _ in range(count):
        rdlen = int.from_bytes(answer[at + 10:at + 12], "big")
        if rdlen == 4:
            out.append(".".join(str(b) for b in answer[at + 12:at + 16]))
        at += 12 + rdlen
    return out


class SilentServer:
    """A UDP port that takes DNS queries and never answers them."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class DnsServer:
    """dnsmasq on 127.0.0.1:port with its own records; start() waits until
    it answers, stop() ends it by its pid."""

    def __init__(self, rundir):
        self.dir = Path(rundir) / "dns"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.zones = {"in-addr.arpa", "ip6.arpa"}
        self.records = []
        self.forwards = []
        self.probe = None
        self.proc = None

    def a(self, name, *addrs):
        """A records of name; its zone (the last two labels) is ours."""
        self.records.append(f"--host-record={name},{','.join(addrs)}")
        self.zones.add(".".join(name.split(".")[-2:]))
        self.probe = self.probe or (name, addrs[0])

    def listed(self, addr, zone, answer="127.0.0.2"):
        """addr is on the list zone, which answers answer."""
        self.a(reversed_name(addr, zone), answer)

    def silent_zone(self, zone, server):
        """Queries for zone go to server (a SilentServer): no answer."""
        self.forwards.append(f"--server=/{zone}/127.0.0.1#{server.port}")

    def argv(self):
        return [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll",
                "--bind-interfaces", "--listen-address=127.0.0.1",
                f"--port={self.port}", "--pid-file=",
                "--user=root", "--group=root", "--local-ttl=0",
                "--log-queries", f"--log-facility={self.dir / 'log'}"] + \
            [f"--local=/{z}/" for z in sorted(self.zones)] + \
            self.forwards + self.records

    def start(self):
        assert self.probe, "a DnsServer needs one record at least"
        with open(self.dir / "out", "ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out,
                                         stderr=out,
                                         stdin=subprocess.DEVNULL)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dnsmasq exited {self.proc.returncode}: "
                    f"{(self.dir / 'out').read_text()}")
            return self.probe[1] in dns_query_a(self.port, self.probe[0],
                                                timeout=0.3)
        wait_for(answers, 10, what="dnsmasq to answer")
        return self

    def stop(self):
        stop_process(self.proc)


def dnsmasq_missing():
    """None when dnsmasq can run here, else why not."""
    if DNSMASQ is None:
        return "dnsmasq is not installed (package dnsmasq-base)"
    return None


"""The PROXY protocol (listen ... proxy-from=): HAProxy from Debian in
front of tern with send-proxy (v1) and send-proxy-v2, run as a private
instance with its own configuration; and raw PROXY headers, good and
bad, sent by the test itself.

Through HAProxy, the Received: line, the log and the DNS lists must see
the client's address (127.0.0.5 or 127.0.0.6, the client's source), not
HAProxy's (127.0.0.1).  A header from an address outside proxy-from, a
malformed header, and a plain SMTP client on a PROXY listener are
refused: closed without a greeting, and logged; the server goes on.
"""

import base64
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dns_peer import DnsServer, dnsmasq_missing
from tern_harness import (CLIENT, SENDER, SMTPClient, free_port,
                          ipv6_loopback_available, message,
                          run_tern, stop_process, wait_for,
                          wait_for_mail)
import tls_fixtures

# the session fixture of the TLS tests: certificates and a users file
tls_files = tls_fixtures.tls_files
MAIL_NAME = tls_fixtures.MAIL_NAME
HAPROXY = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
CLIENT_A, CLIENT_B = "127.0.0.5", "127.0.0.6"
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


class HAProxy:
    """A private haproxy in the foreground (-db): frontends on free
    loopback ports, each passing to a tern port with send-proxy or
    send-proxy-v2.  Stopped by its pid."""

    def __init__(self, rundir):
        self.dir = Path(rundir) / "haproxy"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.routes = []   # (front host, port, back port, options)
        self.proc = None

    def route(self, back_port, options, host="127.0.0.1"):
        """A frontend on host for tern's back_port; returns its port."""
        front = free_port(host)
        self.routes.append((host, front, back_port, options))
        return front

    def config(self):
        lines = ["global", "    maxconn 200", "defaults", "    mode tcp",
                 "    timeout connect 5s", "    timeout client 60s",
                 "    timeout server 60s"]
        for i, (host, front, back, opts) in enumerate(self.routes):
            bind = f"[{host}]" if ":" in host else host
            lines += [f"listen route{i}", f"    bind {bind}:{front}",
                      f"    server tern 127.0.0.1:{back} {opts}"]
        return "\n".join(lines) + "\n"

    def start(self):
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(self.config())
        with open(self.dir / "out", "ab") as out:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)],
                                         stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited: "
                                     f"{(self.dir / 'out').read_text()}")
            try:
                for host, front, _, _ in self.routes:
                    socket.create_connection((host, front),
                                             timeout=0.5).close()
            except OSError:
                return False
            return True
        wait_for(listening, 10, what="haproxy to listen")
        return self

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def haproxy(rundir):
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (package haproxy)")
    h = HAProxy(rundir)
    yield h
    h.stop()


def proxy_tern(tern_factory, balancers="127.0.0.1", pause="0s", **kw):
    return tern_factory(listen_opts=f"greet-pause={pause} "
                        f"proxy-from={balancers}",
                        timeouts="proxy=2s", **kw)


def send_through(port, source, rcpt="user@test.example", subject="test"):
    """One message with smtplib from source through port."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=CLIENT, timeout=30,
                      source_address=(source, 0)) as s:
        s.sendmail(SENDER, [rcpt], message(subject=subject))


@pytest.mark.parametrize("option,version",
                         [("send-proxy", 1), ("send-proxy-v2", 2)])
def test_haproxy_passes_the_client_address(tern_factory, haproxy, option,
                                           version):
    t = proxy_tern(tern_factory)
    front = haproxy.route(t.port, option)
    haproxy.start()
    send_through(front, CLIENT_A)
    mail = wait_for_mail(t.home, "user")[0]
    received = mail.received()[0]
    assert received["ip"] == CLIENT_A, received
    log = t.log_text()
    assert f"connect from {CLIENT_A} (PROXY from 127.0.0.1)" in log
    assert f"client=unknown[{CLIENT_A}]" in log


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no ::1")
def test_haproxy_passes_an_ipv6_client(tern_factory, haproxy):
    t = proxy_tern(tern_factory)
    front = haproxy.route(t.port, "send-proxy-v2", host="::1")
    haproxy.start()
    with smtplib.SMTP("::1", front, local_hostname=CLIENT, timeout=30) as s:
        s.sendmail(SENDER, ["user@test.example"], message())
    mail = wait_for_mail(t.home, "user")[0]
    assert mail.received()[0]["ip"] in ("::1", "IPv6:::1"), \
        mail.received()[0]
    assert "connect from ::1 (PROXY from 127.0.0.1)" in t.log_text()


def test_dns_lists_see_the_client_behind_haproxy(tern_factory, haproxy,
                                                 rundir):
    if dnsmasq_missing():
        pytest.skip(dnsmasq_missing())
    dns = DnsServer(rundir)
    dns.listed(CLIENT_A, "bl.test")
    dns.start()
    try:
        t = proxy_tern(tern_factory, resolver=f"127.0.0.1:{dns.port}",
                       extra=["dnsbl bl.test"])
        front = haproxy.route(t.port, "send-proxy-v2")
        haproxy.start()
        c = SMTPClient("127.0.0.1", front, source=CLIENT_A)
        r = c.reply(enhanced=False).expect(554, "5.7.1")
        assert f"[{CLIENT_A}]" in r.text and "bl.test" in r.text, r
        c.close()
        # the balancer's other client is not listed
        send_through(front, CLIENT_B)
        wait_for_mail(t.home, "user")
        assert f"{CLIENT_A}: blocked using bl.test" in t.log_text()
    finally:
        dns.stop()


def test_submissions_tls_after_the_header(tern_factory, haproxy,
                                          tls_files):
    subs = free_port()
    t = tern_factory(extra=[tls_files.mail.tls_line(),
                            f"users {tls_files.users}",
                            f"listen 127.0.0.1:{subs} role=submissions "
                            f"proxy-from=127.0.0.1"])
    front = haproxy.route(subs, "send-proxy-v2")
    haproxy.start()
    ctx = tls_files.client_context()
    raw = socket.create_connection(("127.0.0.1", front), timeout=30,
                                   source_address=(CLIENT_B, 0))
    with ctx.wrap_socket(raw, server_hostname=MAIL_NAME) as s:
        assert s.recv(100).startswith(b"220 ")
        s.sendall(b"QUIT\r\n")
        assert s.recv(100).startswith(b"221 ")
    assert f"connect from {CLIENT_B} (PROXY from 127.0.0.1)" in \
        t.log_text()


def test_per_client_auth_limit_sees_the_client(tern_factory, haproxy,
                                                tls_files):
    """limits auth-client-failures= counts per client address: behind
    HAProxy the client's, so one client's failures do not lock out the
    balancer's other clients."""
    subs = free_port()
    t = tern_factory(extra=[tls_files.mail.tls_line(),
                            f"users {tls_files.users}",
                            f"listen 127.0.0.1:{subs} role=submissions "
                            f"proxy-from=127.0.0.1"],
                     limits="auth-client-failures=1 auth-failures=3")
    front = haproxy.route(subs, "send-proxy")
    haproxy.start()
    ctx = tls_files.client_context()

    def auth(source, password):
        plain = base64.b64encode(f"\0paulv\0{password}".encode()).decode()
        with smtplib.SMTP_SSL("127.0.0.1", front, local_hostname=CLIENT,
                              context=ctx, timeout=30,
                              source_address=(source, 0)) as s:
            s.ehlo()
            return s.docmd("AUTH", f"PLAIN {plain}")[0]

    assert auth(CLIENT_A, "wrong") == 535
    # CLIENT_A has had its failure this hour; CLIENT_B, behind the same
    # balancer, has not
    assert auth(CLIENT_A, tls_fixtures.USERS["paulv"]) == 454
    assert auth(CLIENT_B, tls_fixtures.USERS["paulv"]) == 235
    assert f"{CLIENT_A}: authentication failed for user paulv" in \
        t.log_text()


def v2_header(src, dst="127.0.0.1", sport=40000, dport=25, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + \
        sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + tlvs
    return V2SIG + b"\x21\x11" + len(body).to_bytes(2, "big") + body


def raw(t, data, source="127.0.0.1", pause=0.0):
    """Connect from source and send data (in two halves, pause apart)."""
    c = SMTPClient("127.0.0.1", t.port, source=source)
    half = len(data) // 2 if pause else len(data)
    c.send(data[:half])
    if pause:
        time.sleep(pause)
        c.send(data[half:])
    return c


def test_header_in_pieces_and_pipelined_data(tern_factory):
    t = proxy_tern(tern_factory)
    # v2 with TLVs, in two pieces; EHLO in the same write as the rest:
    # the header is read to its end and not an octet further
    hdr = v2_header("198.51.100.7", tlvs=b"\x04\x00\x02xx" +
                    b"\x05\x00\x03abc")
    c = raw(t, hdr + b"EHLO " + CLIENT.encode() + b"\r\n", pause=0.3)
    c.reply(enhanced=False).expect(220)
    c.reply(enhanced=False).expect(250)
    c.send_mail(SENDER, ["user@test.example"], message())
    c.quit()
    c = raw(t, b"PROXY TCP6 2001:db8::7 ::1 40000 25\r\nQUIT\r\n")
    c.reply(enhanced=False).expect(220)
    c.reply().expect(221, "2.0.0")
    mail = wait_for_mail(t.home, "user")[0]
    assert mail.received()[0]["ip"] == "198.51.100.7"
    log = t.log_text()
    assert "connect from 198.51.100.7 (PROXY from 127.0.0.1)" in log
    assert "connect from 2001:db8::7 (PROXY from 127.0.0.1)" in log


def test_local_command_keeps_the_balancer_address(tern_factory):
    t = proxy_tern(tern_factory)
    c = raw(t, V2SIG + b"\x20\x00\x00\x00")
    c.reply(enhanced=False).expect(220)
    c.quit()
    assert "connect from 127.0.0.1 (PROXY from 127.0.0.1)" in t.log_text()


BAD_HEADERS = [
    ("a plain SMTP client talking first", b"EHLO client.example\r\n",
     "not a PROXY header"),
    ("v1 with an IPv6 address in TCP4",
     b"PROXY TCP4 ::1 127.0.0.1 1 25\r\n", "bad address or port"),
    ("v1 without CRLF in 107 octets", b"PROXY UNKNOWN " + b"x" * 120,
     "no CRLF"),
    ("v1 bare LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 25\n", "LF without CR"),
    ("v2 UDP", V2SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12, "family"),
    ("v2 TLV past the end", v2_header("1.2.3.4", tlvs=b"\x02\x00\x09x"),
     "TLV"),
    ("v2 longer than 4 KiB", V2SIG + b"\x21\x11\xff\xff", "4096"),
]


def test_bad_headers_are_refused(tern_factory):
    t = proxy_tern(tern_factory)
    for what, data, why in BAD_HEADERS:
        c = raw(t, data)
        c.assert_closed()
        c.close()
        wait_for(lambda: why in t.log_text(), 5, what=f"{what}: '{why}'")
    # nothing reached the SMTP side, and the server still serves
    assert ": connect from" not in t.log_text()
    c = raw(t, b"PROXY TCP4 198.51.100.9 127.0.0.1 1 25\r\n")
    c.reply(enhanced=False).expect(220)
    c.quit()


def test_silent_client_times_out(tern_factory):
    t = proxy_tern(tern_factory)
    c = SMTPClient("127.0.0.1", t.port)
    # a plain client waiting for a greeting gets none: closed after
    # timeouts proxy=2s
    c.assert_closed(timeout=15)
    assert "PROXY header refused: none within" in t.log_text()
    # half a header, then silence: the same
    c = raw(t, b"PROXY TCP4 198.51")
    c.assert_closed(timeout=15)


def test_header_from_an_unlisted_address_is_refused(tern_factory):
    t = proxy_tern(tern_factory, balancers="127.0.0.2/32,::1")
    good = b"PROXY TCP4 198.51.100.7 127.0.0.1 1 25\r\n"
    c = raw(t, good, source="127.0.0.3")
    c.assert_closed()
    wait_for(lambda: "127.0.0.3: PROXY header refused: the connection is "
             "not from proxy-from=" in t.log_text(), 5)
    c = raw(t, good, source="127.0.0.2")
    c.reply(enhanced=False).expect(220)
    c.quit()
    assert "connect from 198.51.100.7 (PROXY from 127.0.0.2)" in \
        t.log_text()


def test_sighup_changes_the_balancers(tern_factory):
    t = proxy_tern(tern_factory, balancers="127.0.0.2")
    good = b"PROXY TCP4 198.51.100.7 127.0.0.1 1 25\r\n"
    raw(t, good, source="127.0.0.3").assert_closed()
    t.listen_opts = "greet-pause=0s proxy-from=127.0.0.3"
    t.write_config()
    os.kill(t.pid, signal.SIGHUP)
    wait_for(lambda: "SIGHUP: configuration and certificates read again"
             in t.log_text(), 10, what="the SIGHUP reload")
    # the new smtpd takes the new balancer, and only it

    def served():
        c = raw(t, good, source="127.0.0.3")
        try:
            return c.reply(enhanced=False).code == 220
        except AssertionError:
            return False
        finally:
            c.close()
    wait_for(served, 10, what="127.0.0.3 taken as a balancer")
    raw(t, good, source="127.0.0.2").assert_closed()


def test_ordinary_listener_takes_no_header(tern_factory):
    t = tern_factory()
    c = raw(t, b"PROXY TCP4 198.51.100.7 127.0.0.1 1 25\r\n")
    c.reply(enhanced=False).expect(220)
    c.reply().expect(500)
    c.quit()
    assert "connect from 127.0.0.1" in t.log_text()


def test_check_config_prints_proxy_from(tern_factory):
    t = proxy_tern(tern_factory, balancers="127.0.0.1,10.0.0.0/8",
                   start=False)
    t.write_config()
    r = run_tern("check-config", "-c", str(t.conf_path))
    assert r.returncode == 0, r.stderr
    assert "proxy-from=127.0.0.1/32,10.0.0.0/8" in r.stdout, r.stdout
    assert "proxy=2s" in r.stdout, r.stdout

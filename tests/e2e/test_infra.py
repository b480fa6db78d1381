"""The end-to-end infrastructure itself: hosts in namespaces reach each
other over IPv4 and IPv6 and nothing else; the DNS server answers MX, A,
AAAA and PTR records and NXDOMAIN; tern receives and delivers locally
inside a namespace; the namespaces and processes are gone afterwards and
the root namespace is untouched."""

import socket

from e2e_harness import NsTern, Network, ip, netns_list, netns_pids
from tern_harness import wait_for_mail, wait_queue_empty


def test_hosts_reach_each_other_and_only_each_other(net, rundir):
    a = net.add_host("a", 1, "a.test")
    b = net.add_host("b", 2, "b.test")
    with b.netns():
        srv = socket.create_server(("::", 2500), family=socket.AF_INET6,
                                   dualstack_ipv6=True)
    with srv:
        for addr in b.addrs:
            assert a.can_connect(addr, 2500), f"a cannot reach b at {addr}"
    assert not a.can_connect(b.addr4, 2500), "b's server is closed"
    # a host has no route out of the test network (the test never probes
    # from the root namespace: its traffic would leave the machine)
    for h in (a, b):
        for fam in ("-4", "-6"):
            assert ip("-n", h.ns, fam, "route", "show", "default") == ""


def test_dns_server_answers_mx_a_aaaa_ptr(net, dns, rundir):
    client = net.add_host("client", 5, "client.canonical.org")
    mx = net.add_host("mx", 20, "mx.dma.org")
    dns.add_host(dns.host)
    dns.add_host(mx)
    dns.add_host(client)
    dns.mx("dma.org", "mx.dma.org", 10)
    dns.start()
    q = dns.query
    assert q("dma.org", "MX", client) == ["10 mx.dma.org."]
    assert q("mx.dma.org", "A", client) == ["198.51.100.20"]
    assert q("mx.dma.org", "AAAA", client) == ["2001:db8::20"]
    assert q("20.100.51.198.in-addr.arpa", "PTR", client) == ["mx.dma.org."]
    assert q("0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
             ".ip6.arpa", "PTR", client) == ["mx.dma.org."]
    # a name of its zones it does not hold is NXDOMAIN; other names are
    # refused: nothing is ever forwarded
    assert q("nobody.dma.org", "A", client) == []
    assert q("example.com", "A", client) == []
    assert "config nobody.dma.org is NXDOMAIN" in dns.log_path.read_text()


def test_tern_delivers_locally_inside_a_namespace(net, rundir):
    client = net.add_host("client", 5, "client.canonical.org")
    box = net.add_host("mailbox", 21, "mailbox.dma.org")
    t = NsTern(box, rundir, local_domains="dma.org").start()
    with client.smtp(box.addr4) as c:  # byte-exact, every reply checked
        c.hello(client.hostname)
        c.send_mail("paulv@canonical.org", ["pea@dma.org"],
                    b"Subject: via IPv4\r\n\r\nHi.\r\n")
        c.quit()
    s = client.smtplib(box.addr6)      # a stock client
    s.sendmail("paulv@canonical.org", ["pea@dma.org"],
               b"Subject: via IPv6\r\n\r\nHi.\r\n")
    s.quit()
    msgs = wait_for_mail(t.home, "pea", count=2)
    wait_queue_empty(t.home)
    ips = sorted(m.received()[0]["ip"] for m in msgs)
    assert ips == sorted(client.addrs), ips
    for m in msgs:
        assert m.received()[0]["by"] == "mailbox.dma.org"
        assert m.msg["Return-Path"] == "<paulv@canonical.org>"


def test_teardown_leaves_nothing(rundir):
    """A Network closed while a tern and a listening socket live in it:
    no namespace, no process left, nothing in the root namespace."""
    n = Network(rundir)
    names = []
    try:
        h = n.add_host("h", 7, "h.test")
        names = list(n.namespaces)
        t = NsTern(h, rundir, local_domains="h.test").start()
        pids = t.group_pids()
        assert pids and netns_pids(h.ns)
    finally:
        changes = n.close()
    assert changes == ""
    assert not set(names) & set(netns_list())
    assert not [p for p in pids if _alive(p)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False

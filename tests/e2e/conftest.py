"""Fixtures of the tern end-to-end suite (see README.md): a run directory,
a Network of namespaces torn down after each test whatever happens, and
the DNS server.  Everything here needs root (network namespaces, port 25):
as another user every test is skipped, with the reason."""

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

import e2e_harness
from e2e_harness import DnsServer, Network, remove_stale_namespaces
from tern_harness import ASAN, TERN_BIN, remove_tree

NOT_ROOT = ("the end-to-end tests need root (network namespaces, port 25); "
            "run them as root (make e2e)")


def _missing_tools():
    missing = []
    if not e2e_harness.DNSMASQ:
        missing.append("dnsmasq (package dnsmasq-base)")
    if not shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        missing.append("ip (package iproute2)")
    try:
        import dns.resolver  # noqa: F401
    except ImportError:
        missing.append("python3-dnspython")
    try:
        pwd.getpwnam("tern")
    except KeyError:
        missing.append("the user tern (sh scripts/ensure-user.sh)")
    if not os.access(TERN_BIN, os.X_OK):
        missing.append(f"the tern binary {TERN_BIN} (make all)")
    return missing


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    # this hook sees every collected item, not only this directory's
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=NOT_ROOT)
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def e2e_ready():
    """As root, a missing tool is an error (make deps installs them), not
    a reason to skip; leftovers of a killed earlier run are removed."""
    if os.geteuid() != 0:
        return
    missing = _missing_tools()
    if missing:
        pytest.exit("end-to-end suite: missing " + ", ".join(missing) +
                    " (run make deps)", returncode=4)
    remove_stale_namespaces()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def rundir(tmp_path, request):
    """The test's files (configs, homes, logs) in /tmp/tern-e2e-* (0755:
    tern drops to its own user and must reach its home), linked from
    tmp_path; removed after a passing test, kept after a failing one."""
    d = Path(tempfile.mkdtemp(prefix="tern-e2e-", dir="/tmp"))
    d.chmod(0o755)
    (tmp_path / "run").symlink_to(d)
    yield d
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        remove_tree(d)


@pytest.fixture
def net(rundir):
    """A Network (switch namespace + bridge) for the test's hosts.  At the
    end, every server is stopped by pid and the namespaces deleted, then
    the test fails if anything appeared in the root namespace, or if a
    tern log has a sanitizer report (with $TERN_ASAN)."""
    n = Network(rundir)
    try:
        yield n
    finally:
        changes = n.close()
    if changes:
        pytest.fail(changes, pytrace=False)
    if ASAN:
        reports = []
        for stop in n.stoppers:
            owner = getattr(stop, "__self__", None)
            if hasattr(owner, "sanitizer_report"):
                reports.extend(owner.sanitizer_report())
        if reports:
            pytest.fail("sanitizer reports in tern's log:\n" +
                        "\n".join(reports), pytrace=False)


@pytest.fixture
def dns_host(net):
    """The DNS server's host, ns.test at 198.51.100.53."""
    return net.add_host("dns", e2e_harness.DNS_HOST, "ns.test")


@pytest.fixture
def dns(dns_host, rundir):
    """A DnsServer on dns_host, not started: add records, then start()."""
    return DnsServer(dns_host, rundir)

"""Fixtures of the tern integration suite: a run directory per test and a
factory that starts `tern serve` processes in it (see tern_harness.py)."""

import grp
import os
import pwd
import tempfile
from pathlib import Path

import pytest

from dovecot_peer import DovecotInstance, dovecot_available
from tern_harness import ASAN, TERN_BIN, Tern, remove_tree


def _is_root():
    return os.geteuid() == 0


def _have_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _have_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session", autouse=True)
def tern_binary():
    """Every test needs the binary; as root, tern also needs its users."""
    if not os.access(TERN_BIN, os.X_OK):
        pytest.exit(f"no tern binary at {TERN_BIN}: run `make all` "
                    "or set TERN_BIN", returncode=4)
    for user in ("tern", "tern-smtpd"):
        if _is_root() and not _have_user(user):
            pytest.exit(f"started as root, tern serve drops to the user "
                        f"'{user}', which does not exist: run `sh "
                        "scripts/ensure-user.sh` (make test does)",
                        returncode=4)
    if _is_root() and not _have_group("terndrop"):
        pytest.exit("started as root, tern serve gives its drop directory "
                    "to the group 'terndrop', which does not exist: run "
                    "`sh scripts/ensure-user.sh` (make test does)",
                    returncode=4)
    return TERN_BIN


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # remember each phase's outcome so fixtures can keep a failed run's files
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def rundir(tmp_path, request):
    """Where the test's tern instances keep config, log and home.

    As root the home must be reachable by the unprivileged user tern drops
    to, and pytest's tmp_path lives under a 0700 directory: then the run
    directory is made in /tmp (0755) and linked from tmp_path, and removed
    afterwards unless the test failed."""
    if not _is_root():
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="tern-integ-", dir="/tmp"))
    d.chmod(0o755)
    (tmp_path / "run").symlink_to(d)
    yield d
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        remove_tree(d)


@pytest.fixture
def tern_factory(rundir):
    """factory(**config) -> a started Tern (start=False: not started).

    Keyword arguments become configuration lines (limits="recipients=5",
    timeouts="command=2s"; None removes a default line); listen_opts=
    adds options to the listen line, ipv6=True adds a [::1] listener.
    Every instance is stopped at the end (SIGTERM to its process group,
    SIGKILL after 10 s); with $TERN_ASAN the logs are scanned for
    sanitizer reports, which fail the test."""
    servers = []

    def factory(start=True, **kw):
        t = Tern(rundir, f"tern{len(servers)}", **kw)
        servers.append(t)
        if start:
            t.start()
        return t

    yield factory
    reports = []
    for t in servers:
        t.stop()
        if ASAN:
            reports.extend(t.sanitizer_report())
    if reports:
        pytest.fail("sanitizer reports in tern's log:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture
def tern(tern_factory):
    """A started tern with the default test configuration."""
    return tern_factory()


@pytest.fixture
def dovecot_factory(rundir):
    """factory(**kw) -> a started private Dovecot under the run directory
    (DovecotInstance arguments); every one is stopped at the end."""
    ok, why = dovecot_available()
    if not ok:
        pytest.skip(why)
    started = []

    def factory(**kw):
        d = DovecotInstance(Path(rundir) / f"dovecot{len(started)}", **kw)
        started.append(d)
        return d.start()

    yield factory
    for d in started:
        d.stop()

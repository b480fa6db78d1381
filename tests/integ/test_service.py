"""tern as a service (issue 10, item 5): the systemd unit in the tree
passes `systemd-analyze verify` as `make install` writes it, `make
install` puts the binary, the man pages, the unit and an example
configuration under PREFIX (staged under DESTDIR), and `tern serve` speaks
the sd_notify protocol of Type=notify: READY=1 once it accepts, RELOADING=1
then READY=1 around a SIGHUP, STOPPING=1 at SIGTERM.

The notify test plays the service manager's part: a datagram socket named
by $NOTIFY_SOCKET, as systemd gives a Type=notify service.
"""

import shutil
import signal
import socket
import subprocess
import time

import pytest

from tern_harness import REPO, run_tern

MAKE_TIMEOUT = 300


def make_install(**variables):
    """`make install VAR=value...` in the source tree; the process."""
    args = [f"{k}={v}" for k, v in variables.items()]
    run = subprocess.run(["make", "--no-print-directory", "install", *args],
                         cwd=REPO, capture_output=True, text=True,
                         timeout=MAKE_TIMEOUT, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def unit_lines(path):
    """The key=value lines of a unit file, comments left out."""
    return [line for line in path.read_text().splitlines()
            if line and not line.startswith(("#", "["))]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (the systemd "
                    "package, in debian-packages.txt)")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    # installed for real into a temporary prefix, so that the binary the
    # unit names exists and man finds the pages it documents
    prefix = tmp_path / "usr"
    make_install(PREFIX=prefix, SYSCONFDIR=tmp_path / "etc",
                 SPOOLDIR=tmp_path / "spool")
    unit = prefix / "lib/systemd/system/tern.service"
    assert f"ExecStart={prefix}/sbin/tern serve -c {tmp_path}/etc/tern/"\
           "tern.conf" in unit_lines(unit)
    run = subprocess.run(["systemd-analyze", "verify", str(unit)],
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                              "MANPATH": str(prefix / "share/man")})
    # verify also exits 0 on unknown keys: it must say nothing at all
    assert run.returncode == 0 and run.stdout == "" and run.stderr == "", (
        f"systemd-analyze verify {unit}:\n{run.stdout}{run.stderr}")


def test_make_install_stages_under_destdir(tmp_path):
    stage = tmp_path / "stage"
    run = make_install(DESTDIR=stage, PREFIX="/usr")
    assert "create the tern user" in run.stdout
    for path, mode in [("usr/sbin/tern", 0o755),
                       ("usr/share/man/man8/tern.8", 0o644),
                       ("usr/share/man/man5/tern.conf.5", 0o644),
                       ("usr/lib/systemd/system/tern.service", 0o644),
                       ("etc/tern/tern.conf", 0o644)]:
        st = (stage / path).stat()
        assert st.st_mode & 0o7777 == mode, (path, oct(st.st_mode))
    assert (stage / "var/spool/tern").is_dir()
    lines = unit_lines(stage / "usr/lib/systemd/system/tern.service")
    assert "Type=notify" in lines
    assert "ExecStart=/usr/sbin/tern serve -c /etc/tern/tern.conf" in lines
    assert "ExecReload=/bin/kill -HUP $MAINPID" in lines
    assert "WorkingDirectory=/var/spool/tern" in lines
    assert not [line for line in lines if "@" in line.split("=", 1)[1]]
    # the example configuration is a valid one, with the spool as home
    conf = stage / "etc/tern/tern.conf"
    check = run_tern("check-config", "-c", str(conf))
    assert check.returncode == 0, check.stderr
    assert "home /var/spool/tern" in check.stdout.splitlines()
    assert "user tern" in check.stdout.splitlines()
    # an administrator's configuration is never replaced
    conf.write_text("home /var/spool/tern\n# mine\n")
    run = make_install(DESTDIR=stage, PREFIX="/usr")
    assert conf.read_text() == "home /var/spool/tern\n# mine\n"
    assert "keeping" in run.stdout


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait(self, line, timeout=15.0):
        """Wait for a message holding line; return every message read so
        far."""
        deadline = time.monotonic() + timeout
        while not any(line in m.split("\n") for m in self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {line} from tern within {timeout:g}s; "
                            f"got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
        return self.messages

    def close(self):
        self.sock.close()


def test_sd_notify_ready_reload_stop(tern_factory, rundir):
    ns = NotifySocket(rundir / "notify.sock")
    try:
        t = tern_factory(start=False, env={"NOTIFY_SOCKET": ns.path})
        t.start()
        first = ns.wait("READY=1")[0]
        assert "STATUS=accepting mail on 1 listening socket" in \
            first.split("\n"), first
        # ready means ready: a client is greeted at once
        with t.connect() as c:
            c.greeting()
        ns.messages.clear()
        t.proc.send_signal(signal.SIGHUP)
        got = ns.wait("READY=1")
        assert got[0].split("\n") == ["RELOADING=1"], got
        assert "SIGHUP: configuration and certificates read again" in \
            t.log_text()
        with t.connect() as c:
            c.greeting()
        ns.messages.clear()
        assert t.stop(group=False) == 0
        assert ns.wait("STOPPING=1")
    finally:
        ns.close()


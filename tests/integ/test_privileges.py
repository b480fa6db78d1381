"""Privilege separation: started as root, tern keeps root only in the
master; the queue process runs as the unprivileged user, who owns the
queue and the mail, and the smtpd as a user of its own, which can write
new messages into spool/incoming/ but reach nothing committed or
delivered.  Started as another user, tern stays that user."""

import grp
import os
import pwd
import signal
import ssl
import subprocess

import pytest

from tern_harness import (SENDER, TERN_BIN, SMTPClient, all_pids,
                          chown_tree, message,
                          proc_stat, proc_status, queue_files, wait_for,
                          wait_for_mail)
import tls_fixtures
from test_tls_auth import login, start_tern, tls_session
from tls_fixtures import USERS

# the fixture, for the tests here that ask for it
tls_files = tls_fixtures.tls_files

ROOT = os.geteuid() == 0


def tern_user(name="tern"):
    if not ROOT:
        pytest.skip("needs root")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"no user {name} (sh scripts/ensure-user.sh creates "
                    "it)")


# run with a process's credentials: try to open each path with a mode,
# print one line per path, "ok" or the errno's name
PROBE = r"""
import errno, os, sys
for arg in sys.argv[1:]:
    how, path = arg.split(":", 1)
    flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "x": os.O_RDONLY}[how]
    try:
        if how == "x":
            os.listdir(path)
        else:
            os.close(os.open(path, flags | os.O_NOFOLLOW))
        print("ok")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
"""


def as_process(pid, *checks):
    """Open each (mode, path) of checks -- mode "r", "w" or "x" (list a
    directory) -- with the uids, gids and groups of process pid (setpriv);
    the outcome of each: "ok" or an errno name."""
    uids, gids, groups = ids(pid)
    grp = ",".join(str(g) for g in groups) if groups else None
    argv = ["setpriv", f"--reuid={uids[0]}", f"--regid={gids[0]}"]
    argv += [f"--groups={grp}"] if grp else ["--clear-groups"]
    argv += ["/usr/bin/python3", "-c", PROBE]
    argv += [f"{mode}:{path}" for mode, path in checks]
    out = subprocess.run(argv, capture_output=True, timeout=30, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def ids(pid):
    """(uids, gids, supplementary groups) of a process, from /proc."""
    st = proc_status(pid)
    return ([int(x) for x in st["Uid"].split()],
            [int(x) for x in st["Gid"].split()],
            [int(x) for x in st["Groups"].split()])


def wait_children(tern):
    return wait_for(lambda: tern.children() if len(tern.children()) >= 2
                    else None, 5, what="the smtpd and queue children")


def test_children_run_as_their_users_and_the_master_as_root(tern_factory):
    pw = tern_user()
    spw = tern_user("tern-smtpd")
    tern = tern_factory(user="tern")
    wait_children(tern)
    assert ids(tern.pid)[0] == [0, 0, 0, 0], "the master keeps root"

    def dropped(pid, who):
        uids, gids, groups = ids(pid)
        return uids == [who.pw_uid] * 4 and gids == [who.pw_gid] * 4 and \
            set(groups) <= {who.pw_gid}
    wait_for(lambda: tern.smtpd_process() and tern.queue_process(), 5,
             what="the smtpd and queue processes")
    wait_for(lambda: dropped(tern.queue_process(), pw) and
             dropped(tern.smtpd_process(), spw), 5,
             what=lambda: "queue to drop to tern, smtpd to tern-smtpd "
             f"(uids, gids, groups): queue {ids(tern.queue_process())}, "
             f"smtpd {ids(tern.smtpd_process())}")


def test_spool_and_mail_belong_to_tern(tern_factory):
    pw = tern_user()
    spw = tern_user("tern-smtpd")
    tern = tern_factory(user="tern")
    home = tern.home
    wait_children(tern)
    held = deliverd_of(tern)
    os.kill(held, signal.SIGSTOP)  # keep the message in the queue
    try:
        with tern.connect() as c:
            c.hello()
            qid = c.send_mail(SENDER, ["alice@test.example"], message())
            c.quit()
        names = queue_files(home)
        assert f"{qid}.env" in names and f"{qid}.msg" in names, names
        for name in names:
            # written by the smtpd, for the queue's group to read
            st = (home / "spool" / "queue" / name).stat()
            assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == \
                (spw.pw_uid, pw.pw_gid, 0o660), name
    finally:
        os.kill(held, signal.SIGCONT)
    [mail] = wait_for_mail(home, "alice")
    st = mail.path.stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (pw.pw_uid, 0o600)
    for d in ("spool", "spool/queue", "spool/quarantine", "state", "mail",
              "mail/alice/Maildir/new"):
        st = (home / d).stat()
        assert st.st_uid == pw.pw_uid, d
    for d in ("spool/queue", "spool/quarantine", "mail"):
        assert (home / d).stat().st_mode & 0o077 == 0, d
    # spool/ is only crossed: on the way to incoming/, free/ and the
    # commit socket for the smtpd, to spool/drop for local submission
    assert (home / "spool").stat().st_mode & 0o7777 == 0o711
    for d in ("spool/incoming", "spool/free"):
        st = (home / d).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == \
            (spw.pw_uid, pw.pw_gid, 0o2770), d

    # the drop group (local submission) can neither list nor read
    st = (home / "spool" / "drop").stat()
    assert (st.st_mode & 0o7777, st.st_gid) == \
        (0o1730, grp.getgrnam("terndrop").gr_gid)


def deliverd_of(tern):
    """The delivery process, the queue process's child."""
    queue = wait_for(tern.queue_process, 5, what="the queue process")
    found = wait_for(lambda: [p for p in all_pids()
                              if (proc_stat(p) or (None, None))[1] == queue],
                     5, what="the delivery process")
    return found[0]


def test_smtpd_cannot_reach_committed_or_delivered_mail(tern_factory):
    """From the smtpd's uid and groups: a committed envelope and content
    cannot be opened for writing (nor read), queue/ and the Maildirs
    cannot be listed, a delivered message cannot be read or written;
    what it needs (incoming/, the commit socket) it can reach."""
    tern_user()
    tern_user("tern-smtpd")
    tern = tern_factory(user="tern")
    home = tern.home
    wait_children(tern)
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(home, "alice")
    smtpd = wait_for(tern.smtpd_process, 5, what="the smtpd")
    held = deliverd_of(tern)
    os.kill(held, signal.SIGSTOP)
    try:
        with tern.connect() as c:
            c.hello()
            qid = c.send_mail(SENDER, ["alice@test.example"], message())
            c.quit()
        env = home / "spool" / "queue" / f"{qid}.env"
        msg = home / "spool" / "queue" / f"{qid}.msg"
        assert env.exists() and msg.exists()
        got = as_process(smtpd, ("w", env), ("w", msg), ("r", env),
                         ("x", home / "spool" / "queue"),
                         ("x", home / "spool" / "quarantine"),
                         ("r", mail.path), ("w", mail.path),
                         ("x", home / "mail"),
                         ("x", home / "spool" / "incoming"),
                         ("w", home / "spool" / "commit.sock"))
    finally:
        os.kill(held, signal.SIGCONT)
    assert got[:8] == ["EACCES"] * 8, got
    # incoming/ is its own; the socket is no file to open (ENXIO), but
    # not refused for its permissions (EACCES)
    assert got[8:] == ["ok", "ENXIO"], got


def test_non_root_stays_itself(tern_factory):
    run_as = None
    uid = os.getuid()
    if ROOT:
        # as root, play a user who started tern by hand: nobody
        try:
            pw = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("no user nobody")
        run_as, uid = "nobody", pw.pw_uid
        probe = subprocess.run(
            ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
             "--clear-groups", TERN_BIN, "version"],
            capture_output=True, timeout=20)
        if probe.returncode != 0:
            pytest.skip(f"nobody cannot run {TERN_BIN}")
    tern = tern_factory(start=False, run_as=run_as)
    tern.home.mkdir(parents=True, exist_ok=True)
    if ROOT:
        chown_tree(tern.dir, pw.pw_uid, pw.pw_gid)
    tern.start()
    line = f"running as uid {uid} (not root): not switching users"
    wait_for(lambda: line in tern.log_text(), 10,
             what=f"the log line {line!r}")
    kids = wait_children(tern)
    assert all(ids(pid)[0] == [uid] * 4 for pid in kids + [tern.pid])
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.path.stat().st_uid == uid


def test_smtpd_and_queue_cannot_gain_privileges(tern_factory):
    """smtpd and queue run with no_new_privs: no program they (or a bug
    in one of their parsers) could execute gains privileges; deliverd,
    the queue process's child, keeps root and the right to run a setuid
    MDA, and its workers switch users instead."""
    tern = tern_factory()
    wait_for(lambda: tern.smtpd_process() and tern.queue_process(), 5,
             what="the smtpd and queue processes")
    for pid in (tern.smtpd_process(), tern.queue_process()):
        assert proc_status(pid)["NoNewPrivs"] == "1", pid
    queue = tern.queue_process()
    deliverd = [p for p in all_pids()
                if (proc_stat(p) or (None, None))[1] == queue]
    assert deliverd, "the delivery process beside the queue process"
    assert proc_status(deliverd[0])["NoNewPrivs"] == "0"


# speak to the commit socket: send each argument as one packet, print the
# answer or "closed"
COMMIT_PROBE = r"""
import socket, sys
for req in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(20)
    s.connect(sys.argv[1])
    try:
        s.send(req.encode().decode("unicode_escape").encode("latin-1"))
        got = s.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        got = b""
    print(repr(got.decode()) if got else "closed")
    s.close()
"""


def test_commit_socket_refuses_strangers_and_bad_requests(tern_factory):
    """Only the smtpd's user may ask for a commit; a malformed request
    closes the connection, an id without files is answered with an
    error, nothing is queued, and mail still flows."""
    tern_user()
    tern_user("tern-smtpd")
    tern = tern_factory(user="tern")
    wait_children(tern)
    smtpd = wait_for(tern.smtpd_process, 5, what="the smtpd")
    sock = str(tern.home / "spool" / "commit.sock")
    # root is not the smtpd: refused at accept
    out = subprocess.run(["/usr/bin/python3", "-c", COMMIT_PROBE, sock,
                          "00000000000000\\n"], capture_output=True,
                         text=True, timeout=30)
    assert out.stdout.split() == ["closed"], out
    uids, gids, groups = ids(smtpd)
    out = subprocess.run(
        ["setpriv", f"--reuid={uids[0]}", f"--regid={gids[0]}",
         f"--groups={','.join(map(str, groups))}", "/usr/bin/python3",
         "-c", COMMIT_PROBE, sock, "not an id\\n", "../../etc/passwd\\n",
         "00000000000000", "0000000000000X\\n" * 2000,
         "00000000000000\\n"], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["closed"] * 4 + [
        "'00000000000000 2\\n'"], out
    assert queue_files(tern.home) == []
    assert "refusing a connection from uid 0" in tern.log_text()
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(tern.home, "alice")


def test_smtpd_and_queue_run_under_the_syscall_filter(tern_factory):
    """The smtpd and the queue process run with no_new_privs and a
    seccomp filter (mode 2, on every thread: the spool's commit thread
    too); the filters themselves (execve refused, files outside the
    allowed trees refused) are shown by tests/unit/test_sandbox.c on the
    same functions."""
    tern = tern_factory()
    wait_for(lambda: tern.smtpd_process() and tern.queue_process(), 5,
             what="the smtpd and queue processes")
    for name, pid in (("smtpd", tern.smtpd_process()),
                      ("queue", tern.queue_process())):
        wait_for(lambda: f"{name}: sandboxed" in tern.log_text(), 10,
                 what=f"the {name} to say it is sandboxed")
        tids = os.listdir(f"/proc/{pid}/task")
        assert len(tids) >= 2, (name, tids)  # the commit thread
        for tid in tids:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f
                          if ":\t" in line)
            assert st["NoNewPrivs"] == "1", (name, tid)
            assert st["Seccomp"] == "2", (name, tid)
    # and mail still flows through both
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(tern.home, "alice")


# mappings larger than this are the sanitizer's shadow memory (terabytes,
# reserved, holding no data of the program's): not read
MAP_READ_MAX = 1 << 32
MAP_CHUNK = 64 << 20


def memory_holds(pid, needles):
    """The needles (bytes) found anywhere in the readable memory of
    process pid (as root, through /proc/PID/mem), read in chunks that
    overlap by the longest needle."""
    found = set()
    overlap = max(len(n) for n in needles)
    with open(f"/proc/{pid}/maps") as maps, \
            open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if "r" not in parts[1] or hi - lo > MAP_READ_MAX or (
                    len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
                continue
            at = lo
            while at < hi:
                try:
                    mem.seek(at)
                    chunk = mem.read(min(MAP_CHUNK + overlap, hi - at))
                except (OSError, ValueError, OverflowError):
                    break
                found.update(n for n in needles if n in chunk)
                at += MAP_CHUNK
    return found


def comm(pid):
    """The name of process pid (prctl PR_SET_NAME)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_passwords_are_checked_outside_the_smtpd(tern_factory, tls_files,
                                                 rundir):
    """The users file is read by the master (here: root's alone, 0600)
    and its hashes are held by authd, the smtpd's child running as the
    queue's user: AUTH works, the smtpd's user cannot read the file, and
    no hash is anywhere in the smtpd's memory (while authd's holds them,
    which shows the search finds what is there)."""
    pw = tern_user()
    tern_user("tern-smtpd")
    users = tls_files.users.read_text()
    hashes = [line.split(":", 1)[1].encode() for line in users.splitlines()
              if line and not line.startswith("#")]
    assert hashes
    secret = rundir / "users"
    secret.write_text(users)
    secret.chmod(0o600)
    t = start_tern(tern_factory, tls_files, users=False,
                   extra=[f"users {secret}"], user="tern")
    wait_children(t)
    name, password = next(iter(USERS.items()))
    with tls_session(t.submission, tls_files) as c:
        login(c, name, password)
        c.cmd("QUIT")
    smtpd = wait_for(t.smtpd_process, 5, what="the smtpd")
    authd = [p for p in all_pids() if (proc_stat(p) or (None, None))[1]
             == smtpd]
    authd = [p for p in authd if comm(p) == "tern-authd"]
    assert len(authd) == 1, "authd, the smtpd's child"
    assert ids(authd[0])[0] == [pw.pw_uid] * 4
    assert as_process(smtpd, ("r", secret)) == ["EACCES"]
    assert memory_holds(smtpd, hashes) == set()
    assert memory_holds(authd[0], hashes) == set(hashes)


@pytest.mark.parametrize("kind", ["mail", "rsa"])
def test_private_keys_are_kept_out_of_the_smtpd(tern_factory, tls_files,
                                                rundir, kind):
    """The TLS key (here root's alone, 0600) is read by the master and
    held by ca, the smtpd's child running as the queue's user, which signs
    for the handshakes (ECDSA and RSA, TLS 1.2 and 1.3): the smtpd's user
    cannot read the file, no line of it is in the smtpd's memory (while
    the master's holds it, which shows the search finds what is there),
    and without ca a handshake fails while the smtpd goes on."""
    pw = tern_user()
    tern_user("tern-smtpd")
    pair = getattr(tls_files, kind)
    key = rundir / "key.pem"
    key.write_text(pair.key.read_text())
    key.chmod(0o600)
    lines = [line.encode() for line in pair.key.read_text().splitlines()
             if line and not line.startswith("-----")]
    assert lines
    t = start_tern(tern_factory, tls_files, pairs=[], users=False,
                   extra=[pair.tls_line(key=key)], user="tern")
    wait_children(t)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = tls_files.client_context()
        ctx.minimum_version = ctx.maximum_version = version
        c = SMTPClient("127.0.0.1", t.submission)
        c.hello()
        c.cmd("STARTTLS").expect(220, "2.0.0")
        c.wrap_tls(ctx, "mail.test.example")
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[
                                        version]
        c.cmd("EHLO client.example").expect(250)
        c.cmd("QUIT")
        c.close()
    smtpd = wait_for(t.smtpd_process, 5, what="the smtpd")
    ca = [p for p in all_pids() if (proc_stat(p) or (None, None))[1] ==
          smtpd and comm(p) == "tern-ca"]
    assert len(ca) == 1, "ca, the smtpd's child"
    assert ids(ca[0])[0] == [pw.pw_uid] * 4
    assert as_process(smtpd, ("r", key)) == ["EACCES"]
    assert memory_holds(smtpd, lines) == set()
    assert memory_holds(t.pid, lines) == set(lines)
    # without ca no handshake completes; plaintext sessions go on
    os.kill(ca[0], signal.SIGKILL)
    c = SMTPClient("127.0.0.1", t.submission)
    c.hello()
    c.cmd("STARTTLS").expect(220, "2.0.0")
    with pytest.raises((ssl.SSLError, OSError)):
        c.wrap_tls(tls_files.client_context(), "mail.test.example")
    c.close()
    with t.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    assert t.smtpd_process() == smtpd

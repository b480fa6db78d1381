"""Privilege separation: started as root, tern keeps root only in the
master; smtpd and queue run as the unprivileged user, who owns the spool
and the mail.  Started as another user, tern stays that user."""

import grp
import os
import pwd
import signal
import subprocess

import pytest

from tern_harness import (SENDER, TERN_BIN, all_pids, chown_tree, message,
                          proc_stat, proc_status, queue_files, wait_for,
                          wait_for_mail)

ROOT = os.geteuid() == 0


def tern_user():
    if not ROOT:
        pytest.skip("needs root")
    try:
        return pwd.getpwnam("tern")
    except KeyError:
        pytest.skip("no user tern (sh scripts/ensure-user.sh creates it)")


def ids(pid):
    """(uids, gids, supplementary groups) of a process, from /proc."""
    st = proc_status(pid)
    return ([int(x) for x in st["Uid"].split()],
            [int(x) for x in st["Gid"].split()],
            [int(x) for x in st["Groups"].split()])


def wait_children(tern):
    return wait_for(lambda: tern.children() if len(tern.children()) >= 2
                    else None, 5, what="the smtpd and queue children")


def test_children_run_as_tern_and_the_master_as_root(tern_factory):
    pw = tern_user()
    tern = tern_factory(user="tern")
    kids = wait_children(tern)
    assert ids(tern.pid)[0] == [0, 0, 0, 0], "the master keeps root"

    def dropped(pid):
        uids, gids, groups = ids(pid)
        return uids == [pw.pw_uid] * 4 and gids == [pw.pw_gid] * 4 and \
            set(groups) <= {pw.pw_gid}
    wait_for(lambda: all(dropped(pid) for pid in kids), 5,
             what=lambda: "smtpd and queue to drop to tern (uids, gids, "
             "groups): " + ", ".join(f"{pid}: {ids(pid)}" for pid in kids))


def test_spool_and_mail_belong_to_tern(tern_factory):
    pw = tern_user()
    tern = tern_factory(user="tern")
    home = tern.home
    wait_children(tern)
    held = tern.queue_process()
    if held:
        os.kill(held, signal.SIGSTOP)  # keep the message in the queue
    try:
        with tern.connect() as c:
            c.hello()
            qid = c.send_mail(SENDER, ["alice@test.example"], message())
            c.quit()
        if held:
            names = queue_files(home)
            assert f"{qid}.env" in names and f"{qid}.msg" in names, names
            for name in names:
                st = (home / "spool" / "queue" / name).stat()
                assert (st.st_uid, st.st_mode & 0o7777) == \
                    (pw.pw_uid, 0o600), name
    finally:
        if held:
            os.kill(held, signal.SIGCONT)
    [mail] = wait_for_mail(home, "alice")
    st = mail.path.stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (pw.pw_uid, 0o600)
    for d in ("spool", "spool/queue", "spool/incoming", "spool/free", "mail",
              "mail/alice/Maildir/new"):
        st = (home / d).stat()
        assert st.st_uid == pw.pw_uid, d
    for d in ("spool/queue", "spool/incoming", "spool/free"):
        assert (home / d).stat().st_mode & 0o077 == 0, d
    # spool/ is only crossed, on the way to spool/drop, where the drop
    # group (local submission) can neither list nor read
    assert (home / "spool").stat().st_mode & 0o7777 == 0o711
    st = (home / "spool" / "drop").stat()
    assert (st.st_mode & 0o7777, st.st_gid) == \
        (0o1730, grp.getgrnam("terndrop").gr_gid)


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

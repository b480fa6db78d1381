"""sendmail(1) for local programs (tern(8), SENDMAIL): a user the test
creates submits through `tern sendmail` and the setgid tern-drop, with the
daemon down and then up; -t with To/Cc/Bcc, -i, -f, -F, -bs, mailq and
newaliases; the submitter's uid is recorded and cannot be forged; bad input
gets a clear error and a sysexits code while the server goes on."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from smtp_peer import SMTPPeer
from tern_harness import (REPO, TERN_BIN, wait_for, wait_for_mail,
                          maildir_messages)
import test_local_users
from test_local_users import log_lines, user_name

ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not ROOT, reason="a submitting user and "
                                "the setgid tern-drop need root to set up")

EX_USAGE, EX_DATAERR, EX_NOPERM = 64, 65, 77

# the system users fixture lives with the local delivery tests
users = test_local_users.users


@pytest.fixture
def drop_helper(rundir):
    """build/tern-drop installed as `make install` does: setgid terndrop,
    in a directory every user can reach."""
    subprocess.run(["sh", str(REPO / "scripts" / "ensure-user.sh")],
                   check=True, capture_output=True)
    bindir = Path(rundir) / "bin"
    bindir.mkdir(exist_ok=True)
    bindir.chmod(0o755)
    helper = bindir / "tern-drop"
    shutil.copy(Path(TERN_BIN).parent / "tern-drop", helper)
    shutil.chown(helper, group="terndrop")
    helper.chmod(0o2755)
    return helper


@pytest.fixture
def user(users, drop_helper):
    return users.add(user_name("s"))


def sendmail(tern, pw, args, data=b"", helper=None, verb="sendmail",
             timeout=30):
    """Run `tern VERB ARGS` as the user pw (None: as root) with data on
    stdin; returns the CompletedProcess."""
    env = {"PATH": "/usr/bin:/bin", "TERN_CONF": str(tern.conf_path)}
    if helper is not None:
        env["TERN_DROP"] = str(helper)
    kw = {}
    if pw is not None:
        kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    return subprocess.run([TERN_BIN, verb] + list(args), input=data,
                          capture_output=True, env=env, timeout=timeout,
                          cwd="/", **kw)


def drop_files(tern):
    return sorted((tern.home / "spool" / "drop").glob("d.*"))


def prepared(tern_factory, **kw):
    """A tern started once (it makes $home/spool/drop) and stopped."""
    tern = tern_factory(**kw)
    tern.stop()
    return tern


def test_t_to_cc_bcc_while_down_then_delivered_at_start(
        users, user, tern_factory, drop_helper):
    """-t: recipients from To:, Cc: and Bcc: plus the command line; the
    daemon is down, so the drop file waits, owned by the user; at start it
    is delivered to all four, Bcc: in none of them, Date:, Message-ID:
    and From: added, the uid in Received: and in the log."""
    tern = prepared(tern_factory)
    msg = (b"To: pea@test.example, \"Bob, B.\" <bob@test.example>\n"
           b"Cc: Group: carol@test.example;\n"
           b"Bcc: hidden@test.example\n"
           b"Subject: -t\n\nline one\n.\nafter the dot\n")
    r = sendmail(tern, user, ["-t", "dave"], msg, drop_helper)
    assert r.returncode == 0, r.stderr
    [f] = drop_files(tern)
    assert f.stat().st_uid == user.pw_uid
    assert not maildir_messages(tern.home, "pea")
    tern.start()
    for rcpt in ("pea", "bob", "carol", "hidden", "dave"):
        [m] = wait_for_mail(tern.home, rcpt)
        assert m.msg["Bcc"] is None and b"hidden@" not in m.raw.split(
            b"\n\n")[0].replace(b"Delivered-To: hidden@", b"")
        assert f"from userid {user.pw_uid}" in m.msg["Received"]
        assert m.msg["From"] == f"{user.pw_name}@test.example"
        assert m.msg["Date"] and m.msg["Message-ID"]
        assert m.msg["Return-Path"] == f"<{user.pw_name}@test.example>"
        # without -i a line of one dot ends the message
        assert m.body == b"line one\n"
    assert log_lines(tern, rf"uid={user.pw_uid}, from=<{user.pw_name}@")
    wait_for(lambda: not drop_files(tern), 10, what="the drop file removed")


def test_f_F_i_and_the_tern_send_form(users, user, tern_factory,
                                      drop_helper):
    """`sendmail -i -f FROM -F NAME -- RCPT` (what tern send runs): the
    envelope sender is FROM, a From: is made with the name, a "." line is
    kept with -i, the message's own Date: is kept."""
    tern = tern_factory()
    msg = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: i\n\na\n.\nb\n"
    r = sendmail(tern, user, ["-i", "-f", "list-bounces@remote.example",
                              "-F", "Ann Example", "--", "pea@test.example"],
                 msg, drop_helper)
    assert r.returncode == 0, r.stderr
    [m] = wait_for_mail(tern.home, "pea")
    assert m.msg["Return-Path"] == "<list-bounces@remote.example>"
    assert m.msg["From"] == '"Ann Example" <list-bounces@remote.example>'
    assert m.msg["Date"] == "Mon, 1 Jan 2024 00:00:00 +0000"
    assert m.body == b"a\n.\nb\n"
    assert f"from userid {user.pw_uid}" in m.msg["Received"]


def test_bs_dialogue(users, user, tern_factory, drop_helper):
    """-bs: an SMTP dialogue on stdin/stdout; mistakes get SMTP errors and
    the dialogue goes on; the message (dot-stuffing undone) is queued with
    the user's uid."""
    tern = tern_factory()
    dialogue = (b"EHLO client\r\n"
                b"RCPT TO:<pea@test.example>\r\n"
                b"MAIL FROM:<bad address>\r\n"
                b"MAIL FROM:<me@remote.example>\r\n"
                b"RCPT TO:<pea@test.example>\r\n"
                b"RCPT TO:<a%b@test.example>\r\n"
                b"DATA\r\n"
                b"Subject: bs\r\n\r\n..dotted\r\n.\r\n"
                b"QUIT\r\n")
    r = sendmail(tern, user, ["-bs"], dialogue, drop_helper)
    assert r.returncode == 0, r.stderr
    codes = re.findall(rb"^(\d{3}) ", r.stdout, re.M)
    assert codes == [b"220", b"250", b"503", b"501", b"250", b"250",
                     b"553", b"354", b"250", b"221"], r.stdout
    [m] = wait_for_mail(tern.home, "pea")
    assert m.msg["Return-Path"] == "<me@remote.example>"
    assert m.body == b".dotted\n"
    assert f"from userid {user.pw_uid}" in m.msg["Received"]


def test_bad_input_is_refused_clearly(users, user, tern_factory,
                                      drop_helper):
    """No recipient, a bad address, a bad option, a NUL: a message and a
    sysexits code, nothing queued; the server still takes mail."""
    tern = tern_factory()
    cases = [([], b"Subject: x\n\nx\n", EX_USAGE, "no recipients"),
             (["a@@b"], b"x\n", EX_DATAERR, "bad recipient"),
             (["-t"], b"To: <broken\n\nx\n", EX_DATAERR, "bad recipient"),
             (["-Q", "pea"], b"x\n", EX_USAGE, "unknown"),
             (["-f", "x@"], b"x\n", EX_USAGE, "bad sender"),
             (["pea"], b"a\0b\n", EX_DATAERR, "NUL")]
    for args, data, code, words in cases:
        r = sendmail(tern, user, args, data, drop_helper)
        assert r.returncode == code, (args, r.stderr)
        assert words in r.stderr.decode(), (args, r.stderr)
    assert not drop_files(tern)
    r = sendmail(tern, user, ["pea@test.example"], b"Subject: ok\n\nok\n",
                 drop_helper)
    assert r.returncode == 0, r.stderr
    [m] = wait_for_mail(tern.home, "pea")
    assert m.msg["Subject"] == "ok"


def test_uid_cannot_be_forged(users, user, tern_factory, drop_helper):
    """The user cannot write the drop directory itself, cannot point
    tern-drop at a directory of its own, and a drop file it writes by hand
    that claims another uid is quarantined; a Received: line claiming
    uid 0 in the message does not change the uid recorded."""
    other = users.add(user_name("o"))
    tern = prepared(tern_factory)
    drop = tern.home / "spool" / "drop"
    r = subprocess.run(["sh", "-c", f"echo x > {drop}/d.forged"],
                       user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                       capture_output=True)
    assert r.returncode != 0 and not (drop / "d.forged").exists()
    own = Path(user.pw_dir) / "drop"
    own.mkdir()
    shutil.chown(own, user=user.pw_uid, group=user.pw_gid)
    own.chmod(0o1730)
    r = subprocess.run([str(drop_helper), str(own)], input=b"x",
                       user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                       capture_output=True)
    assert r.returncode == EX_NOPERM, r.stderr
    assert b"not a tern drop directory" in r.stderr
    forged = (b"tern-drop 1\nuid " + str(other.pw_uid).encode() +
              b"\nto <pea@test.example>\n\nSubject: forged\n\nx\n")
    r = subprocess.run([str(drop_helper), str(drop)], input=forged,
                       user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    r = sendmail(tern, user, ["bob@test.example"],
                 b"Received: by test.example (tern, from userid 0)\n"
                 b"Subject: claims root\n\nx\n", drop_helper)
    assert r.returncode == 0, r.stderr
    tern.start()
    [m] = wait_for_mail(tern.home, "bob")
    first = m.msg.get_all("Received")[0]
    assert f"from userid {user.pw_uid}" in first
    wait_for(lambda: list((tern.home / "spool" / "quarantine")
                          .glob("drop-d.*")), 10, what="the quarantine")
    assert log_lines(tern, rf"drop d\..* \(uid {user.pw_uid}\): "
                           r"quarantined: an unknown key")
    assert not maildir_messages(tern.home, "pea")
    assert not drop_files(tern)


def test_mailq_lists_a_held_message(users, user, tern_factory, drop_helper):
    """mailq (-bp) runs `tern queue`: a message deferred by a peer that
    answers 4xx is listed with its id."""
    with SMTPPeer() as peer:
        peer.rule("RCPT", "451 4.3.0 later")
        tern = tern_factory(route=f"remote.test [127.0.0.1]:{peer.port}")
        r = sendmail(tern, user, ["x@remote.test"], b"Subject: q\n\nq\n",
                     drop_helper)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: log_lines(tern, r"to=<x@remote.test>.*deferred"),
                 20, what="a deferral")
        [qid] = [p.stem for p in (tern.home / "spool" / "queue")
                 .glob("*.env")]
        r = sendmail(tern, None, ["-bp"])
        if b'unknown verb "queue"' in r.stderr:
            pytest.skip("tern queue is not in this build")
        assert r.returncode == 0, r.stderr
        assert qid.encode() in r.stdout


def test_newaliases_checks_and_reloads(users, tern_factory, rundir):
    """newaliases (run by that name) checks the aliases file, says how
    many entries and mistakes, and has the running tern re-read it: mail
    to an alias added afterwards reaches its target."""
    aliases = Path(rundir) / "aliases"
    aliases.write_text("postmaster: pea\n")
    aliases.chmod(0o644)
    tern = tern_factory(aliases=str(aliases))
    link = Path(rundir) / "bin" / "newaliases"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(TERN_BIN)
    aliases.write_text("postmaster: pea\nstaff: bob\nbroken: :nope\n")
    env = {"PATH": "/usr/bin:/bin", "TERN_CONF": str(tern.conf_path)}
    r = subprocess.run([str(link)], capture_output=True, env=env,
                       timeout=30)
    assert r.returncode == EX_DATAERR, r.stderr
    out = r.stdout.decode()
    assert "3 aliases, 1 mistake" in out or "2 aliases, 1 mistake" in out
    assert f"asked tern (pid {tern.pid}) to reload" in out
    wait_for(lambda: log_lines(tern, r"SIGHUP: configuration"), 10,
             what="the reload")
    time.sleep(0.5)
    with tern.connect() as c:
        c.hello()
        c.send_mail("a@remote.example", ["staff@test.example"],
                    b"Subject: alias\r\n\r\nx\r\n")
        c.quit()
    [m] = wait_for_mail(tern.home, "bob")
    assert m.msg["Subject"] == "alias"
    # a user may check the file, not signal tern: said so, exit 77
    pw = users.add(user_name("n"))
    r = subprocess.run([str(link)], capture_output=True, env=env,
                       timeout=30, user=pw.pw_uid, group=pw.pw_gid,
                       extra_groups=[])
    assert r.returncode == EX_NOPERM, r.stderr
    assert b"run it as root" in r.stderr
    assert b"1 mistake" in r.stdout


def test_install_sendmail_never_replaces_another_mta(tmp_path):
    """make install-sendmail (into a DESTDIR): links made where there is
    nothing; with another MTA's sendmail there it refuses, says why and
    changes nothing, unless FORCE=1, which keeps the old one."""
    def install(destdir, *extra):
        return subprocess.run(["make", "-s", "-C", str(REPO),
                               "install-sendmail", f"DESTDIR={destdir}",
                               *extra], capture_output=True, timeout=300)

    fresh = tmp_path / "fresh"
    r = install(fresh)
    assert r.returncode == 0, r.stderr
    for link in ("usr/sbin/sendmail", "usr/bin/mailq", "usr/bin/newaliases"):
        assert os.readlink(fresh / link) == "/usr/local/sbin/tern"
    helper = fresh / "usr/local/sbin/tern-drop"
    assert helper.stat().st_mode & 0o2000
    assert install(fresh).returncode == 0    # again: nothing to refuse

    other = tmp_path / "other"
    (other / "usr/sbin").mkdir(parents=True)
    (other / "usr/sbin/sendmail").write_text("another MTA\n")
    r = install(other)
    assert r.returncode != 0
    assert b"/usr/sbin/sendmail exists and is not tern" in r.stderr
    assert (other / "usr/sbin/sendmail").read_text() == "another MTA\n"
    assert not (other / "usr/bin/mailq").exists()
    r = install(other, "FORCE=1")
    assert r.returncode == 0, r.stderr
    assert os.readlink(other / "usr/sbin/sendmail") == "/usr/local/sbin/tern"
    assert (other / "usr/sbin/sendmail.pre-tern").read_text() == \
        "another MTA\n"


def test_a_failed_submission_bounces_to_the_user(users, user, tern_factory,
                                                 drop_helper):
    """Mail a user submitted that a remote server refuses comes back to
    the user's own address (login@hostname, a local mailbox here) as a
    delivery report naming the recipient."""
    with SMTPPeer() as peer:
        peer.rule("RCPT", "550 5.1.1 no such user")
        tern = tern_factory(route=f"remote.test [127.0.0.1]:{peer.port}")
        r = sendmail(tern, user, ["nobody@remote.test"],
                     b"Subject: will bounce\n\nx\n", drop_helper)
        assert r.returncode == 0, r.stderr
        [m] = wait_for_mail(tern.home, user.pw_name)
        assert m.msg["Return-Path"] == "<>"
        assert b"nobody@remote.test" in m.raw
        assert b"5.1.1" in m.raw

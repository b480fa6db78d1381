"""Who local mail is for: aliases(5) (fan-out, :include:, pipes and files
run as alias-user, forwarding to another host with the original sender,
loops), system users delivered to as themselves (their files, their uid,
their ~/.forward) and root, which is never written as."""

import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from smtp_peer import SMTPPeer
from tern_harness import (SENDER, maildir_messages, wait_for,
                          wait_for_mail, wait_for_maildir, wait_queue_empty)

REMOTE = "remote.test"
ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not ROOT, reason="switching users needs root")


def content(subject, sender=SENDER):
    return (f"From: <{sender}>\r\nTo: <list@test.example>\r\n"
            f"Subject: {subject}\r\n\r\nHello.\r\n").encode()


def submit(tern, rcpts, subject, sender=SENDER):
    with tern.connect() as c:
        c.hello()
        qid = c.send_mail(sender, rcpts, content(subject, sender))
        c.quit()
    return qid


def shared_dir(rundir, name):
    d = Path(rundir) / name
    d.mkdir(exist_ok=True)
    d.chmod(0o777)
    return d


def write(path, text, mode=0o644):
    path = Path(path)
    path.write_text(text)
    path.chmod(mode)
    return path


def log_lines(tern, pattern):
    rx = re.compile(pattern)
    return [line for line in tern.log_text().splitlines() if rx.search(line)]


def wait_log(tern, pattern, timeout=20.0):
    return wait_for(lambda: log_lines(tern, pattern), timeout,
                    what=lambda: f"/{pattern}/\n{tern.log_tail()}")


# ---------------------------------------------------------------- aliases

def test_alias_fan_out_include_pipe_and_file(tern_factory, rundir):
    """One alias fans out to two users, an :include: list, a pipe and a
    file; each target is delivered once, the pipe and the file as
    alias-user."""
    out = shared_dir(rundir, "out")
    inc = write(Path(rundir) / "team.inc", "# the team\ncarol,\ndave\n")
    aliases = write(Path(rundir) / "aliases", f"""\
# test aliases
staff: alice, Bob,
  :include:{inc},
  "|/bin/sh -c 'id -un > {out}/pipe.user; cat > {out}/pipe.msg'",
  {out}/archive
""")
    tern = tern_factory(aliases=str(aliases))
    submit(tern, ["staff@test.example"], "fan out")
    wait_queue_empty(tern.home)
    for user in ("alice", "bob", "carol", "dave"):
        [m] = maildir_messages(tern.home, user)
        assert m.msg["Delivered-To"] == f"{user}@test.example"
        assert m.msg["Subject"] == "fan out"
    assert b"Subject: fan out" in (out / "pipe.msg").read_bytes()
    archive = (out / "archive").read_bytes()
    assert archive.startswith(f"From {SENDER} ".encode())
    assert b"Delivered-To: staff@test.example\n" in archive
    if ROOT:
        assert (out / "pipe.user").read_text().strip() == "nobody"
        assert (out / "archive").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    [line] = log_lines(tern, r"to=<staff@test.example>.*expanded by the "
                       r"alias staff")
    assert "6 recipient(s)" in line


def test_alias_names_are_recipients_and_others_are_not(tern_factory,
                                                        rundir):
    """With a recipients file, alias names are still valid at RCPT TO;
    other unknown names are refused there."""
    aliases = write(Path(rundir) / "aliases", "helpdesk: alice\n")
    known = write(Path(rundir) / "recipients", "alice\n")
    tern = tern_factory(aliases=str(aliases), recipients=f"file:{known}")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<HelpDesk@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<nobody-here@test.example>").expect(550, "5.1.1")
        c.cmd("RCPT TO:<alice+tag@test.example>").expect(250, "2.1.5")
        c.cmd("RSET").expect(250)
        c.quit()


def test_alias_forwards_to_another_host_with_the_sender(tern_factory,
                                                        rundir):
    """An alias naming an address of another host forwards the message
    there: a new envelope recipient, the original envelope sender."""
    aliases = write(Path(rundir) / "aliases",
                    f"pea: pea@{REMOTE}, pea-local\npea-local: \\pea\n")
    with SMTPPeer() as peer:
        tern = tern_factory(aliases=str(aliases), relay_domains=REMOTE,
                            route=f"{REMOTE} [127.0.0.1]:{peer.port}")
        submit(tern, ["pea@test.example"], "forwarded")
        [txn] = peer.wait_delivered(1)
        assert txn.mail_from == SENDER
        assert [a for a, _ in txn.rcpts] == [f"pea@{REMOTE}"]
        assert b"Subject: forwarded" in txn.content
        [m] = wait_for_mail(tern.home, "pea")
        assert m.msg["Subject"] == "forwarded"


def test_alias_loop_bounces(tern_factory, rundir):
    """A loop through two aliases fails the recipient with 5.4.6; the
    sender (a local user here) gets the report."""
    aliases = write(Path(rundir) / "aliases", "ping: pong\npong: ping\n")
    tern = tern_factory(aliases=str(aliases))
    sender = "owner@test.example"
    submit(tern, ["ping@test.example"], "loop", sender=sender)
    [report] = wait_for_mail(tern.home, "owner")
    text = report.raw.decode()
    assert "5.4.6" in text and "loop" in text
    wait_log(tern, r"to=<ping@test.example>.*dsn=5\.4\.6, status=bounced")


def test_delivered_to_loop_bounces(tern_factory):
    """A message that already carries Delivered-To: for the recipient has
    been here before: it is bounced as a loop (5.4.6), not delivered."""
    tern = tern_factory()
    data = (f"Delivered-To: pea@test.example\r\nFrom: <{SENDER}>\r\n"
            "Subject: again\r\n\r\nround and round\r\n").encode()
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["pea@test.example"], data)
        c.quit()
    wait_log(tern, r"to=<pea@test.example>.*dsn=5\.4\.6.*forwarding loop")
    assert not maildir_messages(tern.home, "pea")


def test_delivered_to_loop_after_a_long_header(tern_factory):
    """The loop is found past the first 16 KiB of a long header section
    too (the header is read in growing steps, not the whole message)."""
    tern = tern_factory()
    filler = "".join(f"X-Filler-{i}: {'y' * 60}\r\n" for i in range(400))
    data = (f"From: <{SENDER}>\r\n{filler}"
            "Delivered-To: pea@test.example\r\nSubject: long\r\n\r\n"
            + "body line\r\n" * 5000).encode()
    assert len(filler) > 16 * 1024
    with tern.connect() as c:
        c.hello()
        c.send_mail(SENDER, ["pea@test.example"], data)
        c.quit()
    wait_log(tern, r"to=<pea@test.example>.*dsn=5\.4\.6.*forwarding loop")
    assert not maildir_messages(tern.home, "pea")


# ---------------------------------------------------------------- system

class SystemUsers:
    """System users made for one test (uid >= 1000, homes in the run
    directory), removed afterwards."""

    def __init__(self, rundir):
        self.rundir = Path(rundir)
        self.names = []

    def add(self, name):
        home = self.rundir / "home" / name
        home.parent.mkdir(exist_ok=True)
        home.parent.chmod(0o755)
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home),
                        "--shell", "/bin/sh", "-K", "UID_MIN=20000",
                        "-K", "UID_MAX=29999", name], check=True,
                       capture_output=True)
        self.names.append(name)
        home.chmod(0o700)
        return pwd.getpwnam(name)

    def remove(self):
        """userdel each one; a process of a user that is still ending (a
        delivery worker of a stopped tern) makes userdel refuse (exit 8):
        try again for a few seconds."""
        for name in self.names:
            for _ in range(50):
                r = subprocess.run(["userdel", "--remove", name],
                                   check=False, capture_output=True)
                if r.returncode != 8:
                    break
                time.sleep(0.1)


@pytest.fixture
def users(rundir):
    """System users for the test.  A test names this fixture before
    tern_factory, so that it is set up first and torn down last: a user
    is removed only once the test's tern instances (whose delivery
    workers run as it) have stopped."""
    u = SystemUsers(rundir)
    yield u
    u.remove()


_made = [0]


def user_name(i):
    """Short names unlikely to exist (pid-based, a new one each time)."""
    _made[0] += 1
    return f"tu{os.getpid() % 10000}{i}{_made[0]}"


@root_only
def test_system_users_are_delivered_to_as_themselves(users, tern_factory,
                                                     rundir):
    """recipients system: the Maildir in the user's home belongs to the
    user; a pipe runs with the user's uid and home."""
    a = users.add(user_name("a"))
    b = users.add(user_name("b"))
    tern = tern_factory(
        recipients="system",
        extra=[f"mailbox-for {b.pw_name} \"pipe:/bin/sh -c "
               "'id -u > $HOME/uid; echo $HOME > $HOME/home; "
               "cat > $HOME/msg'\""])
    submit(tern, [f"{a.pw_name}@test.example", f"{b.pw_name}@test.example"],
           "as them")
    [m] = wait_for_maildir(Path(a.pw_dir) / "Maildir")
    assert m.path.stat().st_uid == a.pw_uid
    assert (Path(a.pw_dir) / "Maildir").stat().st_uid == a.pw_uid
    wait_queue_empty(tern.home)
    home = Path(b.pw_dir)
    assert (home / "uid").read_text().strip() == str(b.pw_uid)
    assert (home / "home").read_text().strip() == b.pw_dir
    assert (home / "msg").stat().st_uid == b.pw_uid


@root_only
def test_forward_file_is_honoured(users, tern_factory, rundir):
    """A system user's ~/.forward sends the mail to its targets: a pipe
    run as the user and the user's own mailbox (\\user)."""
    a = users.add(user_name("a"))
    home = Path(a.pw_dir)
    fwd = write(home / ".forward",
                f"\\{a.pw_name}, \"|/bin/sh -c 'id -u > $HOME/fwd.uid'\"\n")
    os.chown(fwd, a.pw_uid, a.pw_gid)
    tern = tern_factory(recipients="system")
    submit(tern, [f"{a.pw_name}@test.example"], "forwarded here")
    [m] = wait_for_maildir(home / "Maildir")
    assert m.msg["Subject"] == "forwarded here"
    wait_queue_empty(tern.home)
    assert (home / "fwd.uid").read_text().strip() == str(a.pw_uid)
    wait_log(tern, rf"to=<{a.pw_name}@test.example>.*forwarded by "
             rf"{a.pw_name}'s .forward to 2 recipient")


@root_only
def test_unsafe_forward_file_defers(users, tern_factory, rundir):
    """A group-writable ~/.forward is not followed: the mail waits and the
    log says why."""
    a = users.add(user_name("a"))
    fwd = write(Path(a.pw_dir) / ".forward", "elsewhere@remote.test\n",
                mode=0o664)
    os.chown(fwd, a.pw_uid, a.pw_gid)
    tern = tern_factory(recipients="system")
    submit(tern, [f"{a.pw_name}@test.example"], "not yet")
    wait_log(tern, rf"to=<{a.pw_name}@test.example>.*status=deferred.*"
             r"\.forward is not")


@root_only
def test_root_is_never_written_as(users, tern_factory, rundir):
    """Mail for root goes to root's alias, written as that user; without
    an alias root is refused at RCPT TO with a log line."""
    a = users.add(user_name("a"))
    aliases = write(Path(rundir) / "aliases", f"root: {a.pw_name}\n")
    tern = tern_factory(recipients="system", aliases=str(aliases))
    submit(tern, ["root@test.example"], "for root")
    [m] = wait_for_maildir(Path(a.pw_dir) / "Maildir")
    assert m.path.stat().st_uid == a.pw_uid
    assert m.msg["Delivered-To"] == f"{a.pw_name}@test.example"
    bare = tern_factory(recipients="system")
    with bare.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd("RCPT TO:<root@test.example>").expect(550, "5.1.1")
        c.quit()
    wait_log(bare, r"<root@test.example> refused: a system account")
    # (a request naming root that reached the delivery process would be
    # refused there too: tests/unit/test_deliverd.c)
    assert not log_lines(bare, r"to=<root@")


def test_aliases_read_again_on_sighup(tern_factory, rundir):
    """A new alias is a valid recipient, and expanded, once SIGHUP has
    made tern read the aliases file again; before, it is refused."""
    aliases = write(Path(rundir) / "aliases", "old: alice\n")
    tern = tern_factory(aliases=str(aliases))
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd("RCPT TO:<old@test.example>").expect(250, "2.1.5")
        c.quit()
    write(aliases, "old: alice\nnew: bob\n")
    os.kill(tern.pid, signal.SIGHUP)
    wait_log(tern, r"SIGHUP: configuration and certificates read again")
    wait_log(tern, r"started queue")
    submit(tern, ["new@test.example"], "after the reload")
    [m] = wait_for_mail(tern.home, "bob")
    assert m.msg["Delivered-To"] == "bob@test.example"


def test_catch_all_of_a_domain(tern_factory, rundir):
    """recipients file: "@domain" accepts every local part of that domain,
    and only of that one."""
    known = write(Path(rundir) / "recipients", "@test.example\n")
    tern = tern_factory(recipients=f"file:{known}")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
        c.cmd("RCPT TO:<anything@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<anything@localhost>").expect(550, "5.1.1")
        c.quit()

"""Power cuts: a message that got 250 survives losing every write the disk
had not made durable, and the test proves it would see a missing fsync.

tern's home is on ext4 over a loop device over tests/fault/blkcache: a
FUSE file whose writes stay in a volatile cache until they are fsync'd
(the loop device turns the block layer's flushes into that fsync).  One
round: clients send mail under load, at a random moment every tern
process is killed with SIGKILL and the disk's power is cut (what was not
flushed is dropped), the file system is unmounted, the loop device
detached, the disk brought back as the flushes left it, mounted again
(the journal replayed) and tern restarted.  Mail goes to an SMTP sink
outside the cut disk that defers some recipients with 451 now and then,
so that messages are delivered in parts and their envelopes rewritten,
and finished messages' files go to the spool's pool and are reused.
Every (Message-ID, recipient) that got a 250 must reach the sink,
uncorrupted; duplicates are counted and reported, not failed (a removal
is not fsync'd: a cut can bring back a delivered message, see
docs/SECURITY.md).

The control runs the same rounds with tern's fsync, fdatasync, syncfs,
sync_file_range, sync and msync made no-ops (build/fault/nofsync.so as
LD_PRELOAD) and requires that mail is then lost.  ext4 is mounted with
commit=60, so a write nobody fsyncs stays in the cache for longer than a
round.

A short run is part of `make integ` (and so of `make test`); `make
test-fault` runs many rounds ($TERN_FAULT_ROUNDS).  Each run prints
rounds, acknowledged, lost, duplicated.  Needs root, /dev/fuse, loop
devices and the helpers `make fault` builds; otherwise every test skips
and says which is missing."""

import collections
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from smtp_peer import SMTPPeer
from tern_harness import (ASAN, REPO, SENDER, TERN_BIN, ConnectionClosed,
                          SMTPClient, queue_files, wait_for)

REMOTE = "remote.test"
FAULT_DIRS = [Path(TERN_BIN).resolve().parent / "fault",
              REPO / "build" / "fault"]
# a short run in make test; make test-fault sets TERN_FAULT_ROUNDS
ROUNDS = int(os.environ.get("TERN_FAULT_ROUNDS") or 5)
CONTROL_ROUNDS = 6          # the control stops at its first loss
CLIENTS = 4
PER_CLIENT = 60             # messages per client and round, at most
CUT_AFTER = (0.3, 2.5)      # seconds of load before the cut
DRAIN = 20.0                # seconds a round waits for its queue to empty
FINAL_DRAIN = 90.0
IMAGE_SIZE = 256 * 1024 * 1024
RCPTS = ["now-1", "now-2", "later-3", "later-4"]
MSGID_RE = re.compile(rb"^Message-ID: <([^>]+)>\r?$", re.M)
QID_RE = re.compile(r"queued as ([0-9A-Z]{14})")


def helper(name):
    for d in FAULT_DIRS:
        if (d / name).exists():
            return d / name
    return None


def skip_reason():
    """Why the power-cut tests cannot run here, or None."""
    if ASAN:
        return ("the power-cut tests run on the plain build (make integ, "
                "make test-fault), not the sanitizer build")
    if os.geteuid() != 0:
        return "power cuts need root (loop devices, mounts, FUSE)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse: the cut disk is a FUSE file"
    if not os.path.exists("/dev/loop-control"):
        return "no loop devices (/dev/loop-control)"
    for tool in ("losetup", "mkfs.ext4", "e2fsck", "fusermount3"):
        if shutil.which(tool) is None:
            return f"no {tool} (make deps installs it)"
    for name in ("blkcache", "nofsync.so"):
        if helper(name) is None:
            return (f"no {name} in {FAULT_DIRS[0]}: run `make fault` "
                    "(it needs libfuse3-dev, which make deps installs)")
    return None


pytestmark = pytest.mark.skipif(skip_reason() is not None,
                                reason=skip_reason() or "")


def run(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True,
                          text=True, timeout=60)


# ---------------------------------------------------------------- the disk

class CutDisk:
    """ext4 on a loop device on blkcache's file, mounted at self.mnt."""

    def __init__(self, base):
        self.base = Path(base)
        self.image = self.base / "disk.img"
        self.fuse_dir = self.base / "fuse"
        self.mnt = self.base / "mnt"
        self.log = self.base / "blkcache.log"
        self.proc = None
        self.loop = None
        self.mounted = False
        for d in (self.fuse_dir, self.mnt):
            d.mkdir(parents=True)
        with open(self.image, "wb") as f:
            f.truncate(IMAGE_SIZE)
        run("mkfs.ext4", "-q", "-F", "-E",
            "lazy_itable_init=0,lazy_journal_init=0", str(self.image))

    def attach(self):
        """blkcache on the image, a loop device on it, ext4 mounted."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(helper("blkcache")), str(self.image),
                 str(self.fuse_dir)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)
        disk = self.fuse_dir / "disk"
        wait_for(lambda: disk.exists() or self.proc.poll() is not None, 10,
                 what="blkcache's disk file")
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        self.loop = run("losetup", "-f", "--show", str(disk)).stdout.strip()
        # commit=60: what nobody flushes stays in the cache for a minute
        run("mount", "-t", "ext4", "-o", "commit=60", self.loop,
            str(self.mnt))
        self.mounted = True

    def cut(self, torn=False):
        """The power cut: nothing written from now on reaches the image;
        torn: a random half of what was written since the last flush
        did (the disk's cache wrote it out), the rest is dropped."""
        self.proc.send_signal(signal.SIGUSR2 if torn else signal.SIGUSR1)

    def detach(self, lazy=False):
        """Unmount, detach the loop device, end blkcache: its cache (and
        with it every write after the cut) is gone."""
        if self.mounted:
            ok = False
            for _ in range(50):
                if run("umount", str(self.mnt), check=False).returncode \
                        == 0:
                    ok = True
                    break
                time.sleep(0.1)
            if not ok and lazy:
                run("umount", "-l", str(self.mnt), check=False)
            assert ok or lazy, f"cannot unmount {self.mnt}"
            self.mounted = False
        if self.loop:
            run("losetup", "-d", self.loop, check=False)
            self.loop = None
        if self.proc is not None:
            for _ in range(50):
                if run("fusermount3", "-u", str(self.fuse_dir),
                       check=False).returncode == 0 or \
                        self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                run("fusermount3", "-u", "-z", str(self.fuse_dir),
                    check=False)
            self.proc = None

    def last_report(self, what="exit"):
        """blkcache's last line of counts at what ("exit", "power cut")."""
        lines = [ln for ln in self.log.read_text().splitlines()
                 if ln.startswith(f"blkcache: {what}")]
        return lines[-1] if lines else ""

    def last_cut_dropped(self):
        """Pages the last cut dropped: what was cached at the cut and
        what the kernel wrote after it (unmounting), less what a torn cut
        kept."""
        line = self.last_report("exit")
        cached = re.search(r"pages-cached=(\d+)", line)
        kept = re.search(r"pages-kept-at-cut=(\d+)", line)
        return (int(cached.group(1)) if cached else 0) - \
            (int(kept.group(1)) if kept else 0)

    def fsck(self):
        """e2fsck -fn of the image, cleanly unmounted: 0 when clean."""
        r = run("e2fsck", "-fn", str(self.image), check=False)
        return r.returncode, r.stdout[-2000:] + r.stderr[-500:]


# ---------------------------------------------------------------- the sink

class DeferringSink(SMTPPeer):
    """An SMTPPeer that answers 451 to a recipient named later-* three
    times in ten, so messages are delivered in parts (their envelopes
    rewritten) and retried (after 1 s: few are deferred five times)."""

    def __init__(self, seed):
        super().__init__()
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()

    def _scripted(self, verb, arg):
        if verb == "RCPT" and arg.lower().startswith("later-"):
            with self.rng_lock:
                if self.rng.random() < 0.3:
                    return "451 4.2.0 later, please"
        return super()._scripted(verb, arg)


def body_for(msgid):
    """The body of a message, derived from its id: a delivered copy is
    checked against it.  Sizes vary (a few hundred octets to some 150 KiB)
    so that files from the pool are reused for larger and smaller mail."""
    h = hashlib.sha256(msgid.encode()).hexdigest()
    lines = 1 + int(h[:4], 16) % 40
    if int(h[4:6], 16) < 8:
        lines = 1200 + int(h[6:9], 16) % 300   # now and then a large one
    return "".join(f"{msgid} {i:05d} {h}\r\n" for i in range(lines))


def content_for(msgid, rcpts):
    head = (f"From: <{SENDER}>\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: power cut\r\nMessage-ID: <{msgid}>\r\n\r\n")
    return (head + body_for(msgid)).encode()


class Ledger:
    """What the clients sent and what got a 250."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = set()          # Message-IDs whose data was sent whole
        self.acked = {}            # Message-ID -> (queue id, recipients)
        self.errors = []           # unexpected replies while tern was up


def client(tern_port, ledger, name, round_no, stop, rng):
    """Send up to PER_CLIENT messages until stop is set; record each 250.
    Now and then a client hangs up in the middle of DATA (never
    acknowledged: must never be delivered)."""
    try:
        c = SMTPClient("127.0.0.1", tern_port, timeout=30)
        c.hello()
        for i in range(PER_CLIENT):
            if stop.is_set():
                return
            msgid = f"r{round_no}.{name}.{i}@client.example"
            rcpts = [f"{r}@{REMOTE}" for r in
                     rng.sample(RCPTS, rng.randint(1, len(RCPTS)))]
            c.cmd(f"MAIL FROM:<{SENDER}>").expect(250)
            for r in rcpts:
                c.cmd(f"RCPT TO:<{r}>").expect(250)
            content = content_for(msgid, rcpts)
            if rng.random() < 0.03:
                c.cmd("DATA").expect(354)
                c.send(content[:len(content) // 2])
                c.close()
                c = SMTPClient("127.0.0.1", tern_port, timeout=30)
                c.hello()
                continue
            with ledger.lock:
                ledger.sent.add(msgid)
            reply = c.data(content)
            m = QID_RE.search(reply.text)
            if reply.code == 250 and m:
                with ledger.lock:
                    ledger.acked[msgid] = (m.group(1), rcpts)
            elif not stop.is_set():
                with ledger.lock:
                    ledger.errors.append(f"{msgid}: {reply}")
        c.quit()
    except (OSError, ConnectionClosed, AssertionError) as e:
        if not stop.is_set():
            with ledger.lock:
                ledger.errors.append(f"{name}: {e!r}"[:500])


# ---------------------------------------------------------------- counting

def deliveries(sink):
    """(Message-ID, recipient) -> copies the sink took; corrupt copies."""
    got = collections.Counter()
    corrupt = []
    for t in sink.delivered():
        m = MSGID_RE.search(t.content or b"")
        if not m:
            corrupt.append(repr(t)[:200])
            continue
        msgid = m.group(1).decode()
        if not t.content.endswith(body_for(msgid).encode()):
            corrupt.append(msgid)
            continue
        for rcpt in t.delivered_to:
            got[(msgid, rcpt.lower())] += 1
    return got, corrupt


def wanted(ledger):
    with ledger.lock:
        return {(msgid, r.lower()) for msgid, (_, rcpts) in
                ledger.acked.items() for r in rcpts}


def drained(tern, sink, ledger):
    """Every acknowledged recipient delivered, or nothing left queued."""
    got, _ = deliveries(sink)
    return wanted(ledger) <= set(got) or not queue_files(tern.home)


def count(sink, ledger):
    """(acknowledged, lost, duplicated, corrupt, phantom) over the run;
    lost and duplicated are messages, with their (msgid, rcpt) pairs."""
    got, corrupt = deliveries(sink)
    want = wanted(ledger)
    lost = sorted(want - set(got))
    twice = sorted(k for k, n in got.items() if n > 1)
    with ledger.lock:
        sent = set(ledger.sent)
        acked = len(ledger.acked)
    phantom = sorted({m for m, _ in got} - sent)
    return acked, lost, twice, corrupt, phantom


# ---------------------------------------------------------------- the run

@pytest.fixture
def cut_disk(rundir):
    disk = CutDisk(Path(rundir) / "cut")
    disk.attach()
    try:
        yield disk
    finally:
        disk.detach(lazy=True)


@pytest.fixture
def sink():
    with DeferringSink(random.randrange(1 << 30)) as s:
        yield s


def power_cut_rounds(tern_factory, disk, sink, rounds, *, preload=None,
                     stop_at_loss=False, torn=True):
    """Run rounds of load and cuts against tern on disk, delivering to
    sink; returns the counts and prints them.  With torn, every other cut
    keeps a random part of the unflushed writes instead of none."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ledger = Ledger()
    env = {"LD_PRELOAD": str(helper("nofsync.so"))} if preload else None
    tern = tern_factory(
        start=False, home=disk.mnt / "home", env=env,
        relay_domains=REMOTE, route=f"{REMOTE} [127.0.0.1]:{sink.port}",
        retry="first=1s max=1s lifetime=1h",
        timeouts="remote-command=5s remote-data=5s",
        limits="spool-reserve=8M")
    tern.start()
    # the spool's directories made durable once, so that the control
    # loses messages, not the spool itself
    run("sync", "-f", str(disk.mnt))
    done = unflushed = 0
    try:
        for r in range(rounds):
            stop = threading.Event()
            threads = [threading.Thread(
                target=client, daemon=True,
                args=(tern.port, ledger, f"c{k}", r, stop,
                      random.Random(rng.random())))
                for k in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(*CUT_AFTER))
            stop.set()       # before the kill: errors now are expected
            # SIGKILL first, then the cut: a tern thread in fsync when
            # the cut comes dies on its way back, so every 250 sent
            # rests on a flush made before the cut
            os.killpg(tern.pid, signal.SIGKILL)
            disk.cut(torn=torn and r % 2 == 1)
            tern.kill9()
            for t in threads:
                t.join(40)
            assert not any(t.is_alive() for t in threads)
            disk.detach()
            cache = disk.last_report()
            dropped = disk.last_cut_dropped()
            unflushed += dropped > 0
            disk.attach()
            tern.start()
            done += 1
            waited = wait_drained(tern, sink, ledger, DRAIN)
            acked, lost, twice, _, _ = count(sink, ledger)
            print(f"powercut round {done}: acknowledged {acked}, "
                  f"not (yet) delivered {len(lost)} recipient(s), "
                  f"duplicated {len(twice)}, drained in {waited:.1f}s; "
                  f"{dropped} page(s) dropped; {cache}", flush=True)
            if lost and os.environ.get("PC_DEBUG"):
                print(lost[:3], queue_files(tern.home)[:6])
            if stop_at_loss and lost and not queue_files(tern.home):
                break
        wait_drained(tern, sink, ledger, FINAL_DRAIN)
    finally:
        tern.stop()
    acked, lost, twice, corrupt, phantom = count(sink, ledger)
    lost_msgs = sorted({m for m, _ in lost})
    twice_msgs = sorted({m for m, _ in twice})
    log = tern.log_text()
    print(f"powercut{' (no fsync)' if preload else ''}: seed {seed}, "
          f"rounds {done}, acknowledged {acked} messages "
          f"({len(wanted(ledger))} recipients), lost {len(lost_msgs)} "
          f"({len(lost)} recipients), duplicated {len(twice_msgs)} "
          f"({len(twice)} recipients), corrupt {len(corrupt)}, "
          f"delivered but never sent whole {len(phantom)}; cuts that "
          f"dropped writes {unflushed}; pool names a cut brought back "
          f"{log.count('is a name of a file in use')}, quarantined "
          f"{log.count(': quarantined: ')}, pool {pool_size(tern.home)}",
          flush=True)
    return {"rounds": done, "acked": acked, "lost": lost,
            "lost_msgs": lost_msgs, "twice": twice, "corrupt": corrupt,
            "phantom": phantom, "errors": list(ledger.errors),
            "pool": pool_size(tern.home), "tern": tern}


def wait_drained(tern, sink, ledger, timeout):
    """Wait for drained(), at most timeout seconds; the time waited."""
    start = time.monotonic()
    while time.monotonic() < start + timeout and \
            not drained(tern, sink, ledger):
        time.sleep(0.2)
    return time.monotonic() - start


def pool_size(home):
    """Files in the spool's pool (informational; None without one)."""
    try:
        return len(os.listdir(Path(home) / "spool" / "free"))
    except OSError:
        return None


def test_power_cuts_lose_no_acknowledged_mail(tern_factory, cut_disk, sink):
    res = power_cut_rounds(tern_factory, cut_disk, sink, ROUNDS)
    tern = res["tern"]
    assert res["acked"] > 0, "nothing was acknowledged: no load"
    assert not res["errors"], res["errors"][:10]
    assert not res["corrupt"], f"corrupt deliveries: {res['corrupt'][:10]}"
    assert not res["phantom"], \
        f"delivered, never sent whole: {res['phantom'][:10]}"
    assert not res["lost"], (
        f"{len(res['lost_msgs'])} acknowledged message(s) lost over "
        f"{res['rounds']} power cuts: {res['lost'][:10]}")
    # the pool was in use (finished messages' files kept for new ones;
    # a spool without free/ has no pool to cover)
    assert res["pool"] is None or res["pool"] > 0, "the pool stayed empty"
    # the sink deferred some recipients: deliveries in parts happened
    assert any(t.accepted and len(t.accepted) < len(t.rcpts)
               for t in sink.delivered())
    assert not queue_files(tern.home)
    # tern still takes mail after the cuts; and the file system is clean
    # once unmounted normally
    tern.start()
    try:
        with tern.connect() as c:
            c.hello()
            c.send_mail(SENDER, [f"now-1@{REMOTE}"],
                        content_for("after@client.example", ["now-1"]))
            c.quit()
        wait_for(lambda: ("after@client.example", f"now-1@{REMOTE}") in
                 deliveries(sink)[0], 20,
                 what="a message sent after the cuts at the sink")
    finally:
        tern.stop()
    cut_disk.detach()
    rc, out = cut_disk.fsck()
    assert rc == 0, f"e2fsck after the power cuts: {out}"


def test_without_fsync_power_cuts_lose_mail(tern_factory, cut_disk, sink):
    """The control: the same rounds with every sync call a no-op must
    lose acknowledged mail, or the test above could not see a missing
    fsync."""
    res = power_cut_rounds(tern_factory, cut_disk, sink, CONTROL_ROUNDS,
                           preload=True, stop_at_loss=True, torn=False)
    assert res["acked"] > 0, "nothing was acknowledged: no load"
    assert res["lost"], (
        f"tern without fsync lost nothing over {res['rounds']} power cuts "
        f"({res['acked']} acknowledged): the cut disk does not drop "
        "unflushed writes, so the power-cut test proves nothing")

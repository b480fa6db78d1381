#!/usr/bin/python3
"""profile_tern.py - where tern spends its time under the benchmark's load.

Starts tern and its smtp-sink as bench.py does, drives it with one
smtp-source load (1 KB messages at 10 sessions by default), then stops
everything it started, by pid.  Modes:

  callgrind  tern runs under valgrind --tool=callgrind (which follows the
             master's forks), and callgrind_annotate prints the functions
             with the most instructions, self and inclusive, for the smtpd
             and the queue process separately
  strace     strace -c is attached to the smtpd and to the queue process
             (all their threads) for the load; prints system calls per
             accepted message

perf is the better tool where the CPU's counters are there (`perf stat
-e instructions true` works); in a virtual machine without them these
two are what is left.  docs/BENCHMARKS.md ("Profile") records what they
showed.  Needs root, like bench.py.  Standard library only.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
import bench  # noqa: E402  (bench.py beside this file)


def child_pids(tern):
    """{'smtpd': pid, 'queue': pid} from the master's start lines."""
    text = tern.log_path.read_text(errors="replace")
    out = {}
    for name, pid in re.findall(r"started (smtpd|queue) \(pid (\d+)\)",
                                text):
        out[name] = int(pid)
    return out


def annotate(path, inclusive, top):
    r = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}",
                        "--threshold=99", str(path)],
                       capture_output=True, text=True)
    lines = r.stdout.splitlines()
    # keep the summary and the first `top` function lines
    out, body = [], False
    for line in lines:
        if line.startswith("Ir") and "file:function" in line:
            body = True
            out.append(line)
            continue
        if body:
            if line.strip().startswith("-") or not line.strip():
                continue
            out.append(line)
            if len(out) > top:
                break
        elif "PROGRAM TOTALS" in line:
            out.append(line)
    return out


def run_load(tern, sink, args, base):
    r = bench.run_source(tern.port, args.size, args.sessions,
                         args.messages, base, "profile")
    bench.wait_sink(sink, r["accepted"])
    return r


def callgrind(args, base):
    outdir = base / "callgrind"
    outdir.mkdir()
    # the children write their profile after dropping to the tern user
    os.chmod(outdir, 0o1777)
    sink = bench.Sink(base).start()
    tern = bench.Tern(base, sink.port, args.tern, wrapper=[
        "valgrind", "--tool=callgrind", "--quiet",
        f"--callgrind-out-file={outdir}/callgrind.out.%p"])
    try:
        tern.start(timeout=120.0)
        pids = child_pids(tern)
        r = run_load(tern, sink, args, base)
    finally:
        tern.stop()
        sink.stop()
    print(f"load: {r['accepted']} messages accepted in "
          f"{r['elapsed']:.1f}s under valgrind")
    for name in ("smtpd", "queue"):
        path = outdir / f"callgrind.out.{pids.get(name)}"
        if not path.exists():
            print(f"no profile for {name} ({path})")
            continue
        saved = Path(args.save) / f"callgrind.{name}" if args.save else None
        if saved:
            shutil.copy(path, saved)
        for inclusive in ("no", "yes"):
            kind = "inclusive" if inclusive == "yes" else "self"
            print(f"\n== {name}: instructions, {kind}, top {args.top}")
            print("\n".join(annotate(path, inclusive, args.top)))


def strace(args, base):
    sink = bench.Sink(base).start()
    tern = bench.Tern(base, sink.port, args.tern)
    tracers = []
    try:
        tern.start()
        pids = child_pids(tern)
        for name in ("smtpd", "queue"):
            out = base / f"strace.{name}"
            tracers.append((name, out, subprocess.Popen(
                ["strace", "-f", "-c", "-o", str(out), "-p",
                 str(pids[name])], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        time.sleep(1.0)         # strace attaches to every thread
        r = run_load(tern, sink, args, base)
        time.sleep(0.5)
    finally:
        for _, _, proc in tracers:
            proc.send_signal(2)     # SIGINT: strace detaches and reports
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        tern.stop()
        sink.stop()
    n = max(1, r["accepted"])
    print(f"load: {r['accepted']} messages accepted in {r['elapsed']:.1f}s "
          f"under strace; system calls per message:")
    for name, out, _ in tracers:
        print(f"\n== {name}")
        rows = []
        for line in out.read_text().splitlines():
            # % time, seconds, usecs/call, calls, [errors], syscall
            f = line.split()
            if len(f) < 5 or not f[3].isdigit():
                continue
            if f[-1] == "total":
                print(f"  total {int(f[3]) / n:.1f} calls/message, "
                      f"{float(f[1]) / n * 1e6:.0f} us/message in calls")
            else:
                rows.append((int(f[3]), f[-1], float(f[1])))
        for calls, name_, secs in sorted(rows, reverse=True)[:args.top]:
            print(f"  {calls / n:7.2f}  {name_:<18} "
                  f"{secs / n * 1e6:8.1f} us/message")


def perf(args, base):
    """Whole machine, a software clock: who takes the two cores during
    the load (tern's threads, the load generator, the sink, the kernel's
    softirqs) and, inside tern, which functions, kernel included."""
    sink = bench.Sink(base).start()
    tern = bench.Tern(base, sink.port, args.tern)
    data = base / "perf.data"
    rec = None
    try:
        tern.start()
        rec = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g",
             "-a", "-o", str(data)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        r = run_load(tern, sink, args, base)
    finally:
        if rec is not None:
            rec.send_signal(2)
            try:
                rec.wait(30)
            except subprocess.TimeoutExpired:
                rec.kill()
                rec.wait()
        tern.stop()
        sink.stop()
    print(f"load: {r['accepted']} messages accepted in {r['elapsed']:.1f}s "
          f"= {r['accepted'] / max(r['elapsed'], 1e-9):.0f}/s")
    reports = (("by command (all CPUs)", ["--no-children", "--sort",
                                          "comm"]),
               ("by thread", ["--no-children", "--sort", "pid"]),
               ("tern, by function (self)", ["--comm", "tern",
                                             "--no-children", "--sort",
                                             "sym"]),
               ("tern, by function (inclusive)",
                ["--comm", "tern", "--children", "--sort", "sym"]))
    for title, extra in reports:
        out = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "-g", "none",
             "--percent-limit", "1"] + extra,
            capture_output=True, text=True).stdout
        lines = [ln for ln in out.splitlines()
                 if ln.strip() and not ln.startswith("#")]
        print(f"\n== {title}")
        print("\n".join(lines[:args.top]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("callgrind", "strace", "perf"))
    p.add_argument("--tern", default=str(bench.REPO / "build" / "tern"))
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--save", default=None,
                   help="a directory to copy the callgrind files into")
    args = p.parse_args()
    args.tern = os.path.abspath(args.tern)
    problems = bench.check_tools(args)
    if problems:
        for msg in problems:
            print(f"profile: {msg}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="tern-profile-"))
    os.chmod(base, 0o755)
    try:
        {"callgrind": callgrind, "strace": strace,
         "perf": perf}[args.mode](args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

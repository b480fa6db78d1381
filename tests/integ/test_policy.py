"""Policy and administration: greet pause, spool reserve, recipient and
time limits, HELO sanitising, check-config, the small verbs, the embedded
defaults and the IPv6 listener."""

import os
import re
import signal
import subprocess
import time

import pytest

from tern_harness import (SENDER, TERN_BIN, clean_env,
                          ipv6_loopback_available, mail_users, message,
                          port_busy, queue_files, queue_id, run_tern,
                          spool_files, wait_for, wait_for_mail,
                          wait_queue_empty)


# ---------------------------------------------------------------- greet pause

@pytest.fixture
def paused_tern(tern_factory):
    return tern_factory(listen_opts="greet-pause=2s")


def test_greet_pause_drops_a_client_that_talks_first(paused_tern):
    with paused_tern.connect() as c:
        c.send(b"EHLO impatient.example\r\n")
        replies = c.replies_until_close(timeout=15)
    assert [(r.code, r.enhanced) for r in replies] == [(554, "5.5.1")], \
        replies


def test_greet_pause_lets_a_patient_client_in(paused_tern):
    with paused_tern.connect() as c:
        t0 = time.monotonic()
        c.reply(timeout=15, enhanced=False).expect(220)
        assert time.monotonic() - t0 >= 1.5, "the greeting came too soon"
        c.cmd("EHLO patient.example").expect(250)
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(paused_tern.home, "alice")


# ---------------------------------------------------------------- limits

def test_spool_below_its_reserve_refuses_mail(tern_factory):
    tern = tern_factory(limits="spool-reserve=1000000G")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(452, "4.3.1")
        c.cmd("RCPT TO:<alice@test.example>").expect(503, "5.5.1")
        c.quit()


def test_too_many_recipients(tern_factory):
    tern = tern_factory(limits="recipients=5")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        for i in range(5):
            c.cmd(f"RCPT TO:<u{i}@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<u5@test.example>").expect(452, "4.5.3")
        c.cmd("RCPT TO:<u6@test.example>").expect(452, "4.5.3")
        queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    wait_queue_empty(tern.home)
    assert mail_users(tern.home) == [f"u{i}" for i in range(5)]


def test_message_size_limit_applies_to_bdat(tern_factory):
    tern = tern_factory(limits="message-size=1K")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        chunk = b"Subject: big\r\n\r\n" + (b"b" * 62 + b"\r\n") * 32
        c.send(f"BDAT {len(chunk)} LAST\r\n".encode() + chunk)
        c.reply().expect(552, "5.3.4")
        c.cmd("NOOP").expect(250, "2.0.0")
        c.quit()
    assert queue_files(tern.home) == []
    assert mail_users(tern.home) == []


# ---------------------------------------------------------------- timeouts

def test_idle_client_is_told_and_dropped(tern_factory):
    tern = tern_factory(timeouts="command=2s")
    with tern.connect() as c:
        c.hello()
        t0 = time.monotonic()
        replies = c.replies_until_close(timeout=15)
    assert time.monotonic() - t0 >= 1.5
    assert [(r.code, r.enhanced) for r in replies] == [(421, "4.4.2")], \
        replies


def test_client_idle_in_data_is_dropped_and_leaves_nothing(tern_factory):
    tern = tern_factory(timeouts="command=2s data=2s")
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.cmd("DATA").expect(354)
        c.send(b"Subject: slow\r\n\r\nand then nothing")
        replies = c.replies_until_close(timeout=15)
    assert [(r.code, r.enhanced) for r in replies] == [(421, "4.4.2")], \
        replies
    wait_for(lambda: not spool_files(tern.home, "incoming"), 10,
             what="an empty spool/incoming")
    assert queue_files(tern.home) == []
    assert mail_users(tern.home) == []


# ---------------------------------------------------------------- HELO names

def test_helo_name_with_control_characters_is_sanitised(tern):
    with tern.connect() as c:
        c.greeting()
        c.cmd(b"HELO bad\x01na\x1bme").expect(250)
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    [rcv] = mail.received()
    assert rcv["helo"] == "bad?na?me" and rcv["proto"] == "SMTP", rcv
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", mail.raw)


def test_helo_name_is_bounded(tern):
    name = ".".join(["h" * 60] * 8)  # 487 octets
    with tern.connect() as c:
        c.greeting()
        c.cmd(f"EHLO {name}").expect(250)
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    [rcv] = mail.received()
    assert 0 < len(rcv["helo"]) < len(name), len(rcv["helo"])


# ---------------------------------------------------------------- check-config

def test_check_config_prints_the_effective_configuration(tern_factory,
                                                          rundir):
    tern = tern_factory(start=False, limits="recipients=7")
    tern.write_config()
    run = run_tern("check-config", "-c", str(tern.conf_path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "hostname test.example" in lines
    limits = [ln for ln in lines if ln.startswith("limits ")]
    assert len(limits) == 1 and "recipients=7" in limits[0].split()
    # defaults are printed too
    assert "message-size=" in limits[0]
    for key in ("home", "listen", "local-domains", "recipients", "timeouts",
                "retry"):
        assert any(ln.split()[0] == key for ln in lines if ln.strip()), key
    # what it prints is itself a configuration that means the same
    again = rundir / "printed.conf"
    again.write_text(run.stdout)
    run2 = run_tern("check-config", "-c", str(again))
    assert run2.returncode == 0, run2.stderr

    def settings(text):
        return [ln for ln in text.splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    assert settings(run2.stdout) == settings(run.stdout)


def test_check_config_reports_every_error_with_file_and_line(rundir):
    conf = rundir / "bad.conf"
    (rundir / "home").mkdir()
    conf.write_text("# a broken configuration\n"
                    "hostname test.example\n"
                    "frobnicate yes\n"
                    f"home {rundir / 'home'}\n"
                    "limits message-size=lots\n"
                    "timeouts command=soon\n"
                    "listen 127.0.0.1:99999\n")
    run = run_tern("check-config", "-c", str(conf))
    assert run.returncode == 1, (run.stdout, run.stderr)
    for line in (3, 5, 6, 7):
        assert re.search(rf"^{re.escape(str(conf))}:{line}: \S",
                         run.stderr, re.M), (line, run.stderr)
    assert not re.search(rf"^{re.escape(str(conf))}:(1|2|4):", run.stderr,
                         re.M), run.stderr


def test_serve_refuses_a_broken_configuration(tern_factory):
    tern = tern_factory(start=False, extra=["frobnicate yes"])
    tern.write_config()
    line = tern.config_text().splitlines().index("frobnicate yes") + 1
    proc = subprocess.Popen(
        [TERN_BIN, "serve", "-c", str(tern.conf_path)], env=clean_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("tern serve runs with a broken configuration")
    assert proc.returncode != 0
    assert f"{tern.conf_path}:{line}:" in err, err


# ---------------------------------------------------------------- verbs

def test_version():
    run = run_tern("version")
    assert run.returncode == 0
    assert re.fullmatch(r"tern \d+\.\d+\.\d+\n?", run.stdout), run.stdout


def test_help():
    run = run_tern("help")
    assert run.returncode == 0, run.stderr
    assert re.search(r"usage", run.stdout, re.I) and "serve" in run.stdout


def test_unknown_verb_prints_usage_and_exits_2():
    run = run_tern("frobnicate")
    assert run.returncode == 2
    assert re.search(r"usage", run.stderr, re.I), run.stderr
    assert run.stdout == ""


# ---------------------------------------------------------------- defaults

def test_embedded_defaults(tern_factory, rundir):
    if port_busy("127.0.0.1", 2525):
        pytest.skip("127.0.0.1:2525 is in use")
    if os.path.exists("/etc/tern/tern.conf"):
        pytest.skip("/etc/tern/tern.conf exists: it would be read")
    home = rundir / "default-home"
    tern = tern_factory(config=False, port=2525, home=home,
                        env={"TERN_HOME": str(home)})
    with tern.connect() as c:
        r = c.greeting()
        assert re.search(r" ESMTP tern\b", r.lines[0]), r
        c.cmd("EHLO client.example").expect(250)
        c.send_mail(SENDER, ["someone@localhost"], message())
        c.quit()
    [mail] = wait_for_mail(home, "someone")
    assert mail.msg["Delivered-To"] == "someone@localhost"
    assert not (tern.dir / "var").exists(), "$TERN_HOME overrides ./var"


# ---------------------------------------------------------------- IPv6

def test_ipv6_listener(tern_factory):
    if not ipv6_loopback_available():
        pytest.skip("no ::1 on this host")
    tern = tern_factory(ipv6=True)
    with tern.connect("::1") as c:
        c.hello()
        c.send_mail(SENDER, ["alice@test.example"], message())
        # ::1 is no more trusted than 127.0.0.1 with trusted-networks none
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<x@elsewhere.example>").expect(554, "5.7.1")
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    [rcv] = mail.received()
    assert rcv["ip"] in ("::1", "IPv6:::1"), rcv

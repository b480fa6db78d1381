"""Line framing: dot transparency (RFC 5321 4.5.2), line length limits
(4.5.3.1.4-6), strict CRLF and SMTP smuggling (CVE-2023-51764 class)."""

import pytest

from tern_harness import (SENDER, mail_users, maildir_messages, message,
                          queue_files, queue_id, spool_files, wait_for,
                          wait_for_mail, wait_queue_empty)


def session(tern):
    c = tern.connect()
    c.hello()
    return c


def open_data(c, rcpt="alice@test.example"):
    """MAIL, RCPT, DATA -> 354: ready for content."""
    c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
    c.cmd(f"RCPT TO:<{rcpt}>").expect(250, "2.1.5")
    c.cmd("DATA").expect(354)


def assert_spool_empty(home):
    wait_queue_empty(home)
    wait_for(lambda: not spool_files(home, "incoming"), 10,
             what="an empty spool/incoming")


# ---------------------------------------------------------------- dots

def test_dot_stuffing_is_undone(tern):
    with session(tern) as c:
        open_data(c)
        c.send(b"Subject: dots\r\n\r\n"
               b"..leading dot\r\n"
               b"...\r\n"         # the line ".."
               b"..\r\n"          # the line "."
               b". not the end\r\n"
               b"middle . dot\r\n"
               b".\r\n")
        queue_id(c.reply().expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == b".leading dot\n..\n.\n not the end\nmiddle . dot\n"


def test_smtplib_round_trips_dotted_lines(tern):
    body = ".\r\n..\r\n.x\r\nend\r\n"
    with tern.smtplib() as s:
        s.sendmail(SENDER, ["alice@test.example"], message(body=body))
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == body.replace("\r\n", "\n").encode()


# ---------------------------------------------------------------- commands

@pytest.mark.parametrize("length", [600, 2100, 10000])
def test_overlong_command_line_then_the_session_goes_on(tern, length):
    with session(tern) as c:
        line = b"NOOP " + b"x" * (length - 7) + b"\r\n"
        assert len(line) == length
        c.send(line)
        c.reply().expect(500, "5.5.2")
        # exactly one reply for it: the next one is the NOOP's
        c.cmd("NOOP").expect(250, "2.0.0")
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(tern.home, "alice")


def test_command_line_limit_is_512_with_crlf(tern):
    with session(tern) as c:
        c.cmd(b"NOOP " + b"x" * (512 - 7)).expect(250, "2.0.0")
        c.cmd(b"NOOP " + b"x" * (513 - 7)).expect(500, "5.5.2")
        c.quit()


def test_mail_line_may_carry_parameters_up_to_2048(tern):
    with session(tern) as c:
        # about 2000 octets: parsed (an unknown parameter, 555), not
        # refused as too long (500)
        pad = "X-PAD=" + "p" * (2000 - 50)
        line = f"MAIL FROM:<{SENDER}> SIZE=100 {pad}"
        assert 512 < len(line) + 2 <= 2048
        c.cmd(line).expect(555, "5.5.4")
        # (no transaction now: bad sequence or bad parameter, not 500)
        r = c.cmd(f"RCPT TO:<alice@test.example> {pad}")
        assert r.code in (503, 555), r
        # over 2048: too long
        c.cmd(f"MAIL FROM:<{SENDER}> SIZE=100 {pad}{'p' * 100}") \
            .expect(500, "5.5.2")
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(tern.home, "alice")


@pytest.mark.parametrize("line", [
    b"NOOP\nNOOP",
    b"NOOP\rNOOP",
    b"NO\x00OP",
    b"NOOP \x00",
    b"MAIL FROM:<sender@remote.example>\nRCPT TO:<alice@test.example>",
], ids=["bare LF", "bare CR", "NUL in the verb", "NUL in the argument",
        "bare LF between two commands"])
def test_bare_lf_cr_or_nul_in_a_command_line(tern, line):
    with session(tern) as c:
        c.cmd(line).expect(500, "5.5.2")
        # nothing of that line was executed: no transaction was started
        c.cmd("RCPT TO:<alice@test.example>").expect(503, "5.5.1")
        c.cmd("NOOP").expect(250, "2.0.0")
        c.quit()


# ---------------------------------------------------------------- text lines

def test_data_line_of_1000_octets_is_accepted(tern):
    line = b"x" * 998
    with session(tern) as c:
        open_data(c)
        c.send(b"Subject: long line\r\n\r\n" + line + b"\r\n.\r\n")
        queue_id(c.reply().expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == line + b"\n"


def test_data_line_of_1001_octets_refuses_the_message(tern):
    with session(tern) as c:
        open_data(c, "toolong@test.example")
        c.send(b"Subject: too long\r\n\r\nfirst\r\n" + b"x" * 999
               + b"\r\nlast\r\n.\r\n")
        c.reply().expect(554, "5.6.0")
        # the session stays usable
        c.cmd("NOOP").expect(250, "2.0.0")
        c.send_mail(SENDER, ["alice@test.example"], message())
        c.quit()
    wait_for_mail(tern.home, "alice")
    assert_spool_empty(tern.home)
    assert mail_users(tern.home) == ["alice"]


def test_line_length_limit_is_configurable(tern_factory):
    tern = tern_factory(limits="line-length=100")
    with session(tern) as c:
        open_data(c)
        c.send(b"Subject: short lines\r\n\r\n" + b"y" * 99 + b"\r\n.\r\n")
        c.reply().expect(554, "5.6.0")
        open_data(c)
        c.send(b"Subject: short lines\r\n\r\n" + b"y" * 98 + b"\r\n.\r\n")
        queue_id(c.reply().expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == b"y" * 98 + b"\n"


# ---------------------------------------------------------------- smuggling

SMUGGLE = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
}


@pytest.mark.parametrize("end", SMUGGLE.values(), ids=SMUGGLE.keys())
def test_smuggled_commands_stay_data(tern, end):
    with session(tern) as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nbody" + end
               + b"MAIL FROM:<evil@x>\r\n"
               b"RCPT TO:<victim@test.example>\r\n"
               b"DATA\r\n"
               b"smuggled\r\n"
               + b"\r\n.\r\n")
        qid = queue_id(c.reply().expect(250, "2.0.0"))
        # had the smuggled MAIL run, this reply would be its 250 2.1.0
        c.cmd("NOOP").expect(250, "2.0.0")
        c.send(b"QUIT\r\n")
        assert [r.code for r in c.replies_until_close()] == [221]
    [mail] = wait_for_mail(tern.home, "alice")
    wait_queue_empty(tern.home)
    assert mail.received()[0]["qid"] == qid
    assert b"MAIL FROM:<evil@x>" in mail.raw and b"smuggled" in mail.raw
    assert maildir_messages(tern.home, "victim") == []
    assert mail_users(tern.home) == ["alice"]
    assert queue_files(tern.home) == []

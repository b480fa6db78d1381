"""The ESMTP extensions: PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME
(RFC 6152), SMTPUTF8 (RFC 6531) and CHUNKING/BDAT (RFC 3030)."""

import subprocess

import pytest

from tern_harness import (CLIENT, SENDER, mail_users, maildir_messages,
                          message, queue_files, queue_id, spool_files,
                          wait_for, wait_for_mail, wait_queue_empty)


def session(tern):
    """A connected raw client after the greeting and EHLO."""
    c = tern.connect()
    c.hello()
    return c


# ---------------------------------------------------------------- PIPELINING

def test_pipelined_transaction_is_answered_in_order(tern):
    with session(tern) as c:
        c.send(f"MAIL FROM:<{SENDER}>\r\n"
               "RCPT TO:<alice@test.example>\r\n"
               "RCPT TO:<nobody@elsewhere.example>\r\n"
               "RCPT TO:<bob@test.example>\r\n"
               "DATA\r\n")
        c.reply().expect(250, "2.1.0")
        c.reply().expect(250, "2.1.5")
        c.reply().expect(554, "5.7.1")
        c.reply().expect(250, "2.1.5")
        c.reply().expect(354)
        # the end of data, a second transaction and QUIT in one write
        c.send(b"Subject: pipelined\r\n\r\nfirst\r\n.\r\n"
               b"RSET\r\n"
               b"MAIL FROM:<>\r\nRCPT TO:<carol@test.example>\r\nDATA\r\n")
        first = queue_id(c.reply().expect(250, "2.0.0"))
        c.reply().expect(250, "2.0.0")
        c.reply().expect(250, "2.1.0")
        c.reply().expect(250, "2.1.5")
        c.reply().expect(354)
        c.send(b"Subject: second\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        second = queue_id(c.reply().expect(250, "2.0.0"))
        c.reply().expect(221, "2.0.0")
        c.assert_closed()
    assert first != second
    for user, subject in (("alice", "pipelined"), ("bob", "pipelined"),
                          ("carol", "second")):
        [mail] = wait_for_mail(tern.home, user)
        assert mail.msg["Subject"] == subject


def test_swaks_pipelining(tern):
    run = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(tern.port),
         "--pipeline", "--helo", CLIENT, "--from", SENDER,
         "--to", "alice@test.example,bob@test.example",
         "--header", "Subject: swaks pipeline", "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    for user in ("alice", "bob"):
        [mail] = wait_for_mail(tern.home, user)
        assert mail.msg["Subject"] == "swaks pipeline"


# ---------------------------------------------------------------- SIZE

@pytest.fixture
def small_tern(tern_factory):
    return tern_factory(limits="message-size=100K")


def test_size_is_advertised_from_the_limit(small_tern):
    with session(small_tern) as c:
        r = c.cmd("EHLO client.example").expect(250)
        assert "SIZE 102400" in r.lines[1:], r


def test_declared_size_over_the_limit_is_refused_at_mail(small_tern):
    with session(small_tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}> SIZE=102401").expect(552, "5.3.4")
        # a size that overflows 64 bits is too big or bad syntax
        r = c.cmd(f"MAIL FROM:<{SENDER}> SIZE=99999999999999999999999")
        assert r.code in (501, 552), r
        c.cmd(f"MAIL FROM:<{SENDER}> SIZE=x").expect(501, None)
        c.cmd(f"MAIL FROM:<{SENDER}> SIZE=102400").expect(250, "2.1.0")
        c.quit()


def test_message_over_the_limit_is_refused_at_end_of_data(small_tern):
    home = small_tern.home
    with session(small_tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        big = message(body=("y" * 70 + "\r\n") * 1600)  # about 115 KB
        c.data(big).expect(552, "5.3.4")
        assert queue_files(home) == []
        # the session goes on, and a message within the limit passes
        c.cmd("NOOP").expect(250, "2.0.0")
        c.send_mail(SENDER, ["alice@test.example"],
                    message(body=("z" * 70 + "\r\n") * 500))
        c.quit()
    [mail] = wait_for_mail(home, "alice")
    assert b"z" * 70 in mail.body
    wait_queue_empty(home)
    assert spool_files(home, "incoming") == []


# ---------------------------------------------------------------- 8BITMIME

EIGHT_BIT = bytes(range(0x80, 0x100)) + b"\r\n" + \
    "Grüße, naïve café — ½ €\r\n".encode("utf-8") + b"\xff\xfe latin-1 \xe9\r\n"


@pytest.mark.parametrize("param", ["BODY=8BITMIME", ""],
                         ids=["BODY=8BITMIME", "undeclared"])
def test_8bit_body_is_delivered_byte_exact(tern, param):
    content = b"Subject: 8bit\r\nMIME-Version: 1.0\r\n" \
        b"Content-Type: text/plain; charset=utf-8\r\n" \
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + EIGHT_BIT
    with session(tern) as c:
        c.send_mail(SENDER, ["alice@test.example"], content, param)
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == EIGHT_BIT.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("param,code,enhanced", [
    ("BODY=7BIT", 250, "2.1.0"),
    ("body=8bitmime", 250, "2.1.0"),
    ("BODY=9BIT", 501, None),
    ("BODY", 501, None),
])
def test_body_parameter(tern, param, code, enhanced):
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}> {param}").expect(code, enhanced)


# ---------------------------------------------------------------- SMTPUTF8

def test_utf8_addresses_with_smtputf8(tern):
    sender = "émile@exämple.example"
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8").expect(250, "2.1.0")
        c.cmd("RCPT TO:<jörg@test.example>").expect(250, "2.1.5")
        subject = "Subject: Grüße\r\n\r\nHallo Jörg.\r\n".encode("utf-8")
        queue_id(c.data(subject).expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "jörg")
    assert mail.raw.startswith(f"Return-Path: <{sender}>\n"
                               "Delivered-To: jörg@test.example\n"
                               .encode("utf-8"))
    assert mail.body == "Hallo Jörg.\n".encode("utf-8")


def test_utf8_recipient_without_smtputf8_is_refused(tern):
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<jörg@test.example>").expect(553, "5.6.7")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.quit()


# ---------------------------------------------------------------- BDAT

def bdat(c, chunk, last=False):
    """Send one BDAT chunk and read its reply."""
    c.send(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode()
           + chunk)
    return c.reply()


def test_bdat_chunks_make_one_message_byte_exact(tern):
    chunks = [b"Subject: chunked\r\n\r\n",
              b".this line starts with a dot and is not unstuffed\r\n"
              b"a line cut in the middle of its CR",
              b"\nLF pair, then a line of\r\n.\r\n",
              b"and the end.\r\n"]
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        for chunk in chunks[:-1]:
            bdat(c, chunk).expect(250, "2.0.0")
        qid = queue_id(bdat(c, chunks[-1], last=True).expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.received()[0]["qid"] == qid
    assert mail.body == b"".join(chunks).replace(b"\r\n", b"\n") \
        .partition(b"\n\n")[2]


def test_bdat_0_last_ends_the_message(tern):
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        bdat(c, b"Subject: zero\r\n\r\nall of it\r\n").expect(250, "2.0.0")
        queue_id(bdat(c, b"", last=True).expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == b"all of it\n"


def test_bdat_pipelined_with_its_data(tern):
    content = b"Subject: one write\r\n\r\nMAIL FROM:<not@a.command>\r\n"
    with session(tern) as c:
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<alice@test.example>\r\n"
               f"BDAT {len(content)} LAST\r\n".encode() + content
               + b"NOOP\r\n")
        c.reply().expect(250, "2.1.0")
        c.reply().expect(250, "2.1.5")
        queue_id(c.reply().expect(250, "2.0.0"))
        c.reply().expect(250, "2.0.0")
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.body == b"MAIL FROM:<not@a.command>\n"


def test_data_after_bdat_is_a_bad_sequence(tern):
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        bdat(c, b"Subject: mixed\r\n\r\n").expect(250, "2.0.0")
        c.cmd("DATA").expect(503, "5.5.1")
        c.cmd("RSET").expect(250, "2.0.0")
        c.quit()
    wait_for_empty_spool(tern.home)
    assert mail_users(tern.home) == []


def test_refused_bdat_chunk_is_still_consumed(tern):
    # RFC 3030 2: the chunk's octets follow the command whatever the reply;
    # read as commands they would be an injection
    with session(tern) as c:
        payload = b"RSET\r\nQUIT\r\n"
        c.send(f"BDAT {len(payload)}\r\n".encode() + payload)
        c.reply().expect(503, "5.5.1")
        c.cmd("NOOP").expect(250, "2.0.0")
        c.quit()


def wait_for_empty_spool(home):
    """Wait until the spool holds no message, received or queued."""
    wait_queue_empty(home)
    wait_for(lambda: not spool_files(home, "incoming"), 10,
             what="an empty spool/incoming")


def test_messages_to_utf8_users_stay_apart(tern):
    """Two UTF-8 user names that differ only outside ASCII are two users."""
    with session(tern) as c:
        c.cmd(f"MAIL FROM:<{SENDER}> SMTPUTF8").expect(250, "2.1.0")
        c.cmd("RCPT TO:<jörg@test.example>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<jorg@test.example>").expect(250, "2.1.5")
        queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    wait_for_mail(tern.home, "jörg")
    wait_for_mail(tern.home, "jorg")
    wait_queue_empty(tern.home)
    assert len(maildir_messages(tern.home, "jörg")) == 1

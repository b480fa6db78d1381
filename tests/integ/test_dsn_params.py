"""The receiving side of DSN (RFC 3461: NOTIFY, ORCPT, RET, ENVID) and the
relay policy at RCPT: relay-domains, relay-recipients, trusted-networks,
routing tricks; and loop detection by counting Received: headers.

Where a test must see what tern stored, the recipients are in a relay
domain routed to a closed loopback port: the message stays queued, and its
envelope file ($home/spool/queue/ID.env, written before the 250) is read
as it is."""

import pytest

from tern_harness import (SENDER, free_port, maildir_messages, message,
                          queue_files, queue_id, wait_for, wait_for_mail,
                          wait_queue_empty)

RELAY = "relay.example"      # a relay domain in every configuration here
FOREIGN = "elsewhere.example"  # neither local nor relayed


@pytest.fixture
def relay_tern(tern_factory):
    """tern relaying RELAY to a loopback port nobody listens on."""
    return tern_factory(**{
        "relay-domains": RELAY,
        "route": f"{RELAY} [127.0.0.1]:{free_port()}",
    })


def start(tern, sender=SENDER, mail_params=""):
    """A connection after EHLO and a good MAIL."""
    c = tern.connect()
    c.hello()
    params = f" {mail_params}" if mail_params else ""
    c.cmd(f"MAIL FROM:<{sender}>{params}").expect(250, "2.1.0")
    return c


def read_env(home, qid):
    """The envelope file of qid: (message keys, [recipient blocks]), each
    a dict of key -> value ("" for a key without value)."""
    path = home / "spool" / "queue" / f"{qid}.env"
    text = wait_for(lambda: path.exists() and path.read_text(), 10,
                    what=f"{path}")
    head, rcpts = {}, []
    cur = head
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "end":
            break
        if key == "rcpt":
            cur = {}
            rcpts.append(cur)
        assert key not in cur, f"duplicate {key} in {text}"
        cur[key] = value
    return head, rcpts


# ---------------------------------------------------------------- EHLO

def test_ehlo_offers_dsn(tern):
    with tern.connect() as c:
        r = c.hello()
        keywords = [line.split()[0].upper() for line in r.lines[1:]]
        assert "DSN" in keywords, r
        c.quit()


# ---------------------------------------------------------------- MAIL

MAIL_PARAMS = [
    # (parameters, code, enhanced)
    ("RET=FULL", 250, "2.1.0"),
    ("RET=hdrs", 250, "2.1.0"),
    ("ENVID=QQ314159", 250, "2.1.0"),
    ("ENVID=a+2Bb+3Dc", 250, "2.1.0"),
    ("ENVID=" + "x" * 100, 250, "2.1.0"),
    ("RET=HDRS ENVID=QQ314159 SIZE=100 BODY=8BITMIME", 250, "2.1.0"),
    ("RET", 501, "5.5.4"),
    ("RET=", 501, "5.5.4"),
    ("RET=ALL", 501, "5.5.4"),
    ("RET=FULL RET=HDRS", 501, "5.5.4"),
    ("ENVID", 501, "5.5.4"),
    ("ENVID=", 501, "5.5.4"),
    ("ENVID=a+b", 501, "5.5.4"),
    ("ENVID=a=b", 501, "5.5.4"),
    ("ENVID=a+2b", 501, "5.5.4"),
    ("ENVID=a+0D+0ABcc:x", 501, "5.5.4"),
    ("ENVID=" + "x" * 101, 501, "5.5.4"),
    ("ENVID=a ENVID=b", 501, "5.5.4"),
    ("ENVID=caf\u00e9 SMTPUTF8", 501, "5.5.4"),
    ("FROB=1", 555, "5.5.4"),
]


@pytest.mark.parametrize("params,code,enhanced", MAIL_PARAMS,
                         ids=[p[0][:40] for p in MAIL_PARAMS])
def test_mail_dsn_parameters(tern, params, code, enhanced):
    with tern.connect() as c:
        c.hello()
        c.cmd(f"MAIL FROM:<{SENDER}> {params}").expect(code, enhanced)
        # a refused MAIL leaves no transaction behind
        if code != 250:
            c.cmd("RCPT TO:<alice@test.example>").expect(503, "5.5.1")
        c.quit()


# ---------------------------------------------------------------- RCPT

RCPT_PARAMS = [
    ("NOTIFY=NEVER", 250, "2.1.5"),
    ("NOTIFY=never", 250, "2.1.5"),
    ("NOTIFY=SUCCESS", 250, "2.1.5"),
    ("NOTIFY=SUCCESS,FAILURE,DELAY", 250, "2.1.5"),
    ("NOTIFY=delay,Failure", 250, "2.1.5"),
    ("ORCPT=rfc822;alice@test.example", 250, "2.1.5"),
    ("ORCPT=RFC822;Alice+2Btag@test.example", 250, "2.1.5"),
    ("ORCPT=utf-8;j\\x{F6}ran@test.example", 250, "2.1.5"),
    ("NOTIFY=FAILURE ORCPT=rfc822;alice@test.example", 250, "2.1.5"),
    ("ORCPT=rfc822;" + "a" * 493, 250, "2.1.5"),   # 500 octets in all
    ("NOTIFY", 501, "5.5.4"),
    ("NOTIFY=", 501, "5.5.4"),
    ("NOTIFY=ALWAYS", 501, "5.5.4"),
    ("NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
    ("NOTIFY=SUCCESS,,DELAY", 501, "5.5.4"),
    ("NOTIFY=SUCCESS,", 501, "5.5.4"),
    ("NOTIFY=DELAY,DELAY", 501, "5.5.4"),
    ("NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4"),
    ("ORCPT", 501, "5.5.4"),
    ("ORCPT=alice@test.example", 501, "5.5.4"),
    ("ORCPT=x400;alice", 501, "5.5.4"),
    ("ORCPT=rfc822;", 501, "5.5.4"),
    ("ORCPT=rfc822;a+b@test.example", 501, "5.5.4"),
    ("ORCPT=rfc822;a+0D+0Ax@test.example", 501, "5.5.4"),
    ("ORCPT=rfc822;" + "a" * 494, 501, "5.5.4"),   # 501 octets
    ("ORCPT=utf-8;j\u00f6ran@test.example", 501, "5.5.4"),  # no SMTPUTF8
    ("ORCPT=rfc822;a@b ORCPT=rfc822;a@b", 501, "5.5.4"),
    ("FROB=1", 555, "5.5.4"),
    ("NOTIFY=NEVER FROB=1", 555, "5.5.4"),
]


@pytest.mark.parametrize("params,code,enhanced", RCPT_PARAMS,
                         ids=[p[0][:40] for p in RCPT_PARAMS])
def test_rcpt_dsn_parameters(tern, params, code, enhanced):
    with start(tern) as c:
        c.cmd(f"RCPT TO:<alice@test.example> {params}") \
            .expect(code, enhanced)
        c.cmd("RSET").expect(250, "2.0.0")
        c.quit()


def test_utf8_orcpt_with_smtputf8(tern):
    with start(tern, mail_params="SMTPUTF8") as c:
        c.cmd("RCPT TO:<alice@test.example> "
              "ORCPT=utf-8;j\u00f6ran@test.example").expect(250, "2.1.5")
        c.quit()


# ---------------------------------------------------------------- stored

def test_dsn_parameters_land_in_the_envelope(relay_tern):
    t = relay_tern
    with start(t, mail_params="RET=HDRS ENVID=QQ+2B314") as c:
        c.cmd(f"RCPT TO:<bob@{RELAY}> NOTIFY=SUCCESS,FAILURE "
              f"ORCPT=rfc822;Bob+2Bx@{RELAY}").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<carol@{RELAY}> NOTIFY=never").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<dave@{RELAY}>").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<erin@{RELAY}> NOTIFY=DELAY,FAILURE "
              f"ORCPT=utf-8;erin\\x{{E9}}@{RELAY}").expect(250, "2.1.5")
        # a duplicate is collapsed; the first one's parameters stay
        c.cmd(f"RCPT TO:<BOB@{RELAY}> NOTIFY=NEVER").expect(250, "2.1.5")
        qid = queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    head, rcpts = read_env(t.home, qid)
    assert head["envid"] == "QQ+2B314"
    assert head["ret"] == "hdrs"
    by_addr = {r["rcpt"]: r for r in rcpts}
    assert sorted(by_addr) == [f"{u}@{RELAY}" for u in
                               ("bob", "carol", "dave", "erin")]
    bob = by_addr[f"bob@{RELAY}"]
    assert bob["notify"] == "success,failure"
    assert bob["orcpt"] == f"rfc822;Bob+2Bx@{RELAY}"
    carol = by_addr[f"carol@{RELAY}"]
    assert carol["notify"] == "never" and "orcpt" not in carol
    dave = by_addr[f"dave@{RELAY}"]
    assert "notify" not in dave and "orcpt" not in dave
    erin = by_addr[f"erin@{RELAY}"]
    assert erin["notify"] == "failure,delay"
    assert erin["orcpt"] == f"utf-8;erin\\x{{E9}}@{RELAY}"
    # the message stays queued: nothing listens where the route points;
    # the scheduler's rewrite after the failed attempt keeps every key
    def tried():
        head, rcpts = read_env(t.home, qid)
        return all(r["tries"] != "0" for r in rcpts) and (head, rcpts)
    head2, rcpts2 = wait_for(tried, 20, what="a first delivery attempt")
    assert head2["envid"] == head["envid"] and head2["ret"] == "hdrs"
    for before, after in zip(rcpts, rcpts2):
        assert after["state"] == "deferred", after
        for key in ("rcpt", "notify", "orcpt"):
            assert after.get(key) == before.get(key), (before, after)
    assert f"{qid}.env" in queue_files(t.home)


def test_ret_full_and_no_dsn_parameters(relay_tern):
    t = relay_tern
    with start(t, mail_params="RET=FULL") as c:
        c.cmd(f"RCPT TO:<bob@{RELAY}>").expect(250, "2.1.5")
        qid = queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    head, _ = read_env(t.home, qid)
    assert head["ret"] == "full" and "envid" not in head
    with start(t) as c:
        c.cmd(f"RCPT TO:<bob@{RELAY}>").expect(250, "2.1.5")
        qid = queue_id(c.data(message()).expect(250, "2.0.0"))
        c.quit()
    head, _ = read_env(t.home, qid)
    assert "ret" not in head and "envid" not in head


def test_dsn_parameters_do_not_stop_local_delivery(tern):
    with start(tern, mail_params="RET=HDRS ENVID=x") as c:
        c.cmd("RCPT TO:<alice@test.example> NOTIFY=NEVER "
              "ORCPT=rfc822;alice@test.example").expect(250, "2.1.5")
        queue_id(c.data(message(subject="dsn")).expect(250, "2.0.0"))
        c.quit()
    [mail] = wait_for_mail(tern.home, "alice")
    assert mail.msg["Subject"] == "dsn"
    wait_queue_empty(tern.home)


# ---------------------------------------------------------------- relay

def test_relay_domain_is_accepted_from_anyone(relay_tern):
    # the client, 127.0.0.1, is not trusted (trusted-networks none)
    with start(relay_tern) as c:
        c.cmd(f"RCPT TO:<anyone@{RELAY}>").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<Other@RELAY.Example>").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<victim@{FOREIGN}>").expect(554, "5.7.1")
        c.cmd(f"RCPT TO:<x@sub.{RELAY}>").expect(554, "5.7.1")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.quit()


def test_relay_recipients_refuse_unknown_ones(tern_factory, rundir):
    listed = rundir / "relay-recipients"
    listed.write_text(f"bob@{RELAY}\n@open.example\n")
    listed.chmod(0o644)
    t = tern_factory(**{
        "relay-domains": f"{RELAY} open.example",
        "relay-recipients": f"file:{listed}",
        "route": f"{RELAY} [127.0.0.1]:{free_port()}",
    })
    with start(t) as c:
        c.cmd(f"RCPT TO:<bob@{RELAY}>").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<Bob@Relay.Example>").expect(250, "2.1.5")
        r = c.cmd(f"RCPT TO:<eve@{RELAY}>").expect(550, "5.1.1")
        assert "eve@" in r.text, r
        c.cmd("RCPT TO:<anyone@open.example>").expect(250, "2.1.5")
        # local domains are not the business of relay-recipients
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.cmd(f"RCPT TO:<victim@{FOREIGN}>").expect(554, "5.7.1")
        c.cmd("RSET").expect(250, "2.0.0")
        c.quit()


def test_trusted_network_may_relay_anywhere(tern_factory):
    t = tern_factory(**{"trusted-networks": "127.0.0.0/8",
                        "route": f"{FOREIGN} [127.0.0.1]:{free_port()}"})
    with start(t) as c:
        c.cmd(f"RCPT TO:<victim@{FOREIGN}>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<someone@another.example>").expect(250, "2.1.5")
        # the mailbox-name check is for local domains only
        c.cmd(f"RCPT TO:<a/b@{FOREIGN}>").expect(250, "2.1.5")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.cmd("RSET").expect(250, "2.0.0")
        c.quit()


def test_untrusted_network_may_not_relay(tern_factory):
    # 127.0.0.1 is not in 10.0.0.0/8
    t = tern_factory(**{"trusted-networks": "10.0.0.0/8 ::1"})
    with start(t) as c:
        r = c.cmd(f"RCPT TO:<victim@{FOREIGN}>").expect(554, "5.7.1")
        assert "Relay access denied" in r.text, r
        c.cmd("DATA").expect(503, "5.5.1")
        c.quit()


TRICKS = [
    f"victim%{FOREIGN}@{FOREIGN}",
    f"{FOREIGN}!victim@{FOREIGN}",
    f'"victim@other.example"@{FOREIGN}',
    f"@{FOREIGN}:victim@other.example",
    f"victim%other.example@{RELAY}",
    f'"victim@other.example"@{RELAY}',
    f"@{RELAY}:victim@{RELAY}",
    "victim%other.example@test.example",
]


@pytest.mark.parametrize("rcpt", TRICKS)
def test_relay_tricks_are_refused_for_every_domain(tern_factory, rcpt):
    # even a trusted client may not use them, and even for a relay domain
    t = tern_factory(**{"trusted-networks": "127.0.0.0/8",
                        "relay-domains": RELAY})
    with start(t) as c:
        c.cmd(f"RCPT TO:<{rcpt}>").expect(550, "5.7.1")
        c.quit()


# ---------------------------------------------------------------- loops

def hops(n):
    return [f"Received: from hop{i}.example by hop{i + 1}.example; "
            "Tue, 14 Nov 2023 22:13:20 +0000" for i in range(n)]


@pytest.mark.parametrize("count,code,enhanced", [
    (5, 250, "2.0.0"),
    (6, 554, "5.4.6"),
])
def test_too_many_received_headers_is_a_loop(tern_factory, count, code,
                                             enhanced):
    t = tern_factory(limits="received-headers=5")
    with start(t) as c:
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        r = c.data(message(subject="hops", headers=hops(count)))
        r.expect(code, enhanced)
        # the session goes on
        c.cmd("NOOP").expect(250, "2.0.0")
        c.quit()
    if code == 250:
        wait_for_mail(t.home, "alice")
    wait_queue_empty(t.home)
    assert len(maildir_messages(t.home, "alice")) == (code == 250)


def test_too_many_received_headers_with_bdat(tern_factory):
    t = tern_factory(limits="received-headers=3")
    body = message(headers=hops(4))
    with start(t) as c:
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.send(f"BDAT {len(body)} LAST\r\n".encode() + body)
        c.reply().expect(554, "5.4.6")
        c.quit()
    wait_queue_empty(t.home)
    assert maildir_messages(t.home, "alice") == []


def test_received_in_the_body_does_not_count(tern_factory):
    t = tern_factory(limits="received-headers=2")
    body = "\r\n".join(hops(5)) + "\r\n"
    with start(t) as c:
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.data(message(body=body)).expect(250, "2.0.0")
        c.quit()
    wait_for_mail(t.home, "alice")


def test_default_limit_is_100_received_headers(tern):
    with start(tern) as c:
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.data(message(headers=hops(100))).expect(250, "2.0.0")
        c.cmd(f"MAIL FROM:<{SENDER}>").expect(250, "2.1.0")
        c.cmd("RCPT TO:<alice@test.example>").expect(250, "2.1.5")
        c.data(message(headers=hops(101))).expect(554, "5.4.6")
        c.quit()
    wait_for_mail(tern.home, "alice")
    wait_queue_empty(tern.home)
    assert len(maildir_messages(tern.home, "alice")) == 1

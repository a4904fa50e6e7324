"""Accounting under hostile input (issue 14's adversary), on real daemons:
requests with fields out of every bound, text with control and bidi
characters, SQL metacharacters and LIKE wildcards, a flood of history
queries (some dropped mid-query) while the daemon must go on answering,
grants out of range. Each answer is one clear line (BAD_REQUEST, not an
internal error), nothing changes, and the daemon lives on (under ASan and
UBSan, build/adv-san: a signed overflow aborts it)."""
import socket
import threading

from conftest import frame, hello_env, read_frame, wait_for
from test_accounting import history, network, rpc, submit

import jazari_pb2 as pb

JAN = 1767225600000  # 2026-01-01T00:00:00Z
DAY = 86400000


def error(d, field, msg, body, **kw):
    r = rpc(d, field, msg, body, **kw)
    assert isinstance(r, pb.Error), (msg, r)
    return r


def shown(message):
    """An error's text is printable: no control, no bidi override."""
    return all(ord(ch) >= 0x20 and ch not in "\x7f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
               for ch in message)


def test_hostile_fields_get_one_clear_line(daemon_factory, tmp_path):
    (ctl,), agent = network(daemon_factory, tmp_path)
    job = submit(ctl, "--gpus-per-node", "1", "--account", "lab/a", "--name", "x", "--", "true")
    wait_for(lambda: ctl.jz_json("show", str(job))["state"] == "COMPLETED", what="the job")
    wait_for(lambda: [j.id for j in history(ctl)[0]] == [job], what="the job in the history")
    # A grant starting at the end of time: its default end (a year later)
    # overflowed int64 (an abort under UBSan: the leader died).
    e = error(ctl, "grant_request", pb.GrantRequest(account="lab", gpu_milli_hours=1000, from_ms=2**63 - 1),
              "grant_reply")
    assert e.code == pb.BAD_REQUEST and "9999" in e.message, e
    e = error(ctl, "grant_request", pb.GrantRequest(account="lab", gpu_milli_hours=1000, from_ms=JAN,
                                                    until_ms=2**63 - 1), "grant_reply")
    assert e.code == pb.BAD_REQUEST, e
    # Top-ups of a billion GPU-hours: the grant's sum stays within a billion.
    period = dict(account="lab/b", from_ms=JAN, until_ms=JAN + DAY)
    g = rpc(ctl, "grant_request", pb.GrantRequest(gpu_milli_hours=10**12, **period), "grant_reply")
    assert g.grant.gpu_ms == 10**12 * 3600, g
    e = error(ctl, "grant_request", pb.GrantRequest(gpu_milli_hours=1, **period), "grant_reply")
    assert e.code == pb.BAD_REQUEST and "billion" in e.message, e
    b = rpc(ctl, "balance_request", pb.BalanceRequest(account="lab/b"), "balance_reply")
    assert [x.gpu_ms for x in b.balances[0].grants] == [10**12 * 3600], b
    # What the history query would refuse is the asker's mistake.
    for q in (pb.HistoryRequest(state="BOGUS"), pb.HistoryRequest(job_id=2**64 - 1),
              pb.HistoryRequest(after_id=2**63, after_end_ms=-5, max=2**32 - 1)):
        e = error(ctl, "history_request", q, "history_reply")
        assert e.code == pb.BAD_REQUEST and not e.message.startswith("history: history"), (q, e)
    # Text echoed in an error is printable, and valid UTF-8 (read_frame
    # parses it strictly: a cut multi-byte sequence fails it).
    for field, msg, body in (
            ("usage_request", pb.UsageRequest(by="\x1b[31mred\u202e"), "usage_reply"),
            ("invoice_request", pb.InvoiceRequest(account="lab", month="\x1b[2J-01"), "invoice_reply"),
            ("invoice_request", pb.InvoiceRequest(account="a" + "\u00e9" * 40, month="2026-01"), "invoice_reply"),
            ("grant_request", pb.GrantRequest(account="x" + "\u00e9" * 40, gpu_milli_hours=1), "grant_reply"),
            ("balance_request", pb.BalanceRequest(account="lab\n\u202e"), "balance_reply")):
        e = error(ctl, field, msg, body)
        assert e.code in (pb.BAD_REQUEST, pb.NOT_FOUND) and shown(e.message), (msg, e)
    # SQL metacharacters and LIKE wildcards are only ever values.
    for account in ("lab%", "la_", "%", "' OR 1=1 --", "lab/a' OR '1'='1", "lab\\"):
        r = rpc(ctl, "history_request", pb.HistoryRequest(account=account), "history_reply")
        assert not isinstance(r, pb.Error) and list(r.jobs) == [], (account, r)
        u = rpc(ctl, "usage_request", pb.UsageRequest(account=account), "usage_reply")
        assert not isinstance(u, pb.Error) and list(u.rows) == [], (account, u)
    for user in ("%", "roo_", "' OR user <> '"):
        r = rpc(ctl, "history_request", pb.HistoryRequest(user=user), "history_reply")
        assert list(r.jobs) == [], (user, r)
    # Times at their bounds: nothing, no error.
    for q in (pb.HistoryRequest(since_ms=2**63 - 1), pb.HistoryRequest(after_end_ms=2**63 - 1),
              pb.HistoryRequest(until_ms=1)):
        r = rpc(ctl, "history_request", q, "history_reply")
        assert not isinstance(r, pb.Error) and list(r.jobs) == [], (q, r)
    assert [j.id for j in history(ctl, account="lab")[0]] == [job]
    assert ctl.jz("status").returncode == 0


def ask(d, field, msg, close_early=False):
    """One request on its own connection; its reply envelope (None when
    closed before the reply)."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(d.socket)
        s.sendall(frame(hello_env()))
        read_frame(s)
        env = pb.Envelope(request_id=7, version=1)
        getattr(env, field).CopyFrom(msg)
        s.sendall(frame(env))
        if close_early:
            return None
        return read_frame(s, timeout=30)
    finally:
        s.close()


def test_a_flood_of_history_queries(daemon_factory, tmp_path):
    (ctl,), agent = network(daemon_factory, tmp_path)
    for _ in range(3):
        submit(ctl, "--account", "lab/a", "--", "true")
    wait_for(lambda: len(history(ctl)[0]) == 3, what="three jobs in the history")
    replies, lock = [], threading.Lock()

    def one(i):
        kind = i % 3
        msg = (("history_request", pb.HistoryRequest(account="lab")), ("usage_request", pb.UsageRequest(by="day")),
               ("invoice_request", pb.InvoiceRequest(account="lab", month="2026-01")))[kind]
        r = ask(ctl, *msg, close_early=i % 4 == 0)
        with lock:
            replies.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    # The daemon goes on answering others meanwhile.
    for _ in range(5):
        assert ctl.jz("status").returncode == 0
    for t in threads:
        t.join(60)
    got = [r for r in replies if r is not None]
    assert len(got) == 48
    for r in got:
        assert r.error.code in (pb.OK, pb.UNAVAILABLE), r
        if r.error.code == pb.UNAVAILABLE:
            assert "busy" in r.error.message, r
    # Afterwards every query runs again (none left counted as running).
    for _ in range(8):
        assert len(history(ctl, account="lab")[0]) == 3
    assert rpc(ctl, "usage_request", pb.UsageRequest(by="day"), "usage_reply").rows


def test_root_on_a_node_reads_no_ones_history(daemon_factory, tmp_path):
    """Root on a node, relayed by that node's daemon, is no one of the
    policy (authz.c): it does not own the jobs of the network's root, whose
    name it shares, in the history and usage either."""
    (ctl,), agent = network(daemon_factory, tmp_path)
    job = submit(ctl, "--gpus-per-node", "1", "--account", "lab/a", "--name", "secret", "--", "true")
    wait_for(lambda: [j.id for j in history(ctl)[0]] == [job], what="root's job in the history")
    r = rpc(agent, "history_request", pb.HistoryRequest(), "history_reply")
    assert not isinstance(r, pb.Error) and list(r.jobs) == [], r
    r = rpc(agent, "history_request", pb.HistoryRequest(job_id=job), "history_reply")
    assert list(r.jobs) == [], r
    u = rpc(agent, "usage_request", pb.UsageRequest(by="user"), "usage_reply")
    assert not isinstance(u, pb.Error) and list(u.rows) == [], u
    out = agent.jz("history", "--json")
    assert out.returncode == 0 and "secret" not in out.stdout, out.stdout
    # The controller's root (an admin) still sees it.
    assert [j.name for j in rpc(ctl, "history_request", pb.HistoryRequest(), "history_reply").jobs] == ["secret"]


def test_jz_says_each_refusal_once(daemon_factory, tmp_path):
    """jz names the command before the daemon's reason; a reason that names
    it too was printed "jz invoice: jz invoice: ..."."""
    (ctl,), agent = network(daemon_factory, tmp_path)
    for args in (("invoice", "lab", "--month", "2999-01"), ("invoice", "nosuch", "--month", "2026-01"),
                 ("grant", "nosuch", "--gpu-hours", "1"), ("balance", "nosuch"),
                 ("grant", "lab", "--gpu-hours", "1", "--from", "2026-01-01", "--until", "2040-01-01"),
                 ("history", "--state", "BOGUS")):
        r = ctl.jz(*args)
        lines = r.stderr.splitlines()
        assert r.returncode != 0 and len(lines) == 1, (args, r.stderr)
        assert lines[0].startswith("jz %s: " % args[0]) and lines[0].count("jz %s" % args[0]) == 1, (args, r.stderr)

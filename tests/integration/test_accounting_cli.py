"""The accounting commands of jz (client/cmd_acct.c): jz history, eff,
usage, grant, balance, invoice and sacct over the history.

Bad input: one line naming the option and what it takes, exit 2, and
nothing sent: jz is pointed at a socket of this test's that records any
connection, so a request that slipped out would be seen.

With a real jazarid: jobs with known outcomes, then the history, eff,
usage, grants and balances, and invoices printed twice byte for byte.
Those need the daemon's half of issue 14 (daemon/): on a daemon that
answers the history requests as UNSUPPORTED they are skipped, saying so."""
import csv
import decimal
import io
import json
import os
import re
import socket
import time

import pytest

from conftest import JZ, hwloc_xml, pb, run, wait_for

HIST_KEYS = ["id", "name", "user", "account", "state", "exit_code", "submit_time", "start_time", "end_time",
             "elapsed_s", "nodes", "gpus", "gpu_model", "cpus", "cpu_seconds", "max_rss_bytes", "gpu_seconds",
             "cost"]
USAGE_KEYS = ["key", "jobs", "gpu_seconds", "cpu_seconds", "cost"]


@pytest.fixture
def listener(tmp_path):
    """A Unix socket that no daemon serves: any connection jz makes to it
    is counted (and closed at once)."""
    path = str(tmp_path / "nobody.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    s.setblocking(False)

    def connections():
        n = 0
        while True:
            try:
                c, _ = s.accept()
            except BlockingIOError:
                return n
            c.close()
            n += 1

    yield path, connections
    s.close()


BAD = [
    (["history", "--state", "RUNNING"], "--state"),
    (["history", "--state", "done"], "--state"),
    (["history", "--since", "yesterday"], "--since"),
    (["history", "--until", "2026-13-01"], "--until"),
    (["history", "--since", "2026-02-01", "--until", "2026-01-01"], "--since"),
    (["history", "--json", "--csv"], "--csv"),
    (["history", "--user", ""], "--user"),
    (["history", "--account", "a" * 300], "--account"),
    (["history", "extra"], "extra"),
    (["eff"], "JOB"),
    (["eff", "0"], "job"),
    (["eff", "12x"], "job"),
    (["eff", "40_"], "job"),
    (["eff", "-3"], "-3"),
    (["usage", "--by", "week"], "--by"),
    (["usage", "--since", "@-5"], "--since"),
    (["usage", "--csv", "--json"], "--csv"),
    (["grant"], "ACCOUNT"),
    (["grant", "um6p"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", "1.2345"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", "1e5"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", "0"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", "ten"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", "100000000.001"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", " 5"], "--gpu-hours"),
    (["grant", "um6p", "--gpu-hours", "10", "--from", "soon"], "--from"),
    (["grant", "um6p", "--gpu-hours", "10", "--from", "2026-02-01", "--until", "2026-01-01"], "--until"),
    (["balance", "a", "b"], "'b'"),
    (["invoice", "um6p"], "--month"),
    (["invoice", "--month", "2026-11"], "ACCOUNT"),
    (["invoice", "um6p", "--month", "2026-13"], "--month"),
    (["invoice", "um6p", "--month", "2026-00"], "--month"),
    (["invoice", "um6p", "--month", "2026-1"], "--month"),
    (["invoice", "um6p", "--month", "2026-11-01"], "--month"),
    (["invoice", "um6p", "--month", "Nov 2026"], "--month"),
    (["invoice", "um6p", "--month", "2026-11", "--html", "--csv"], "--html"),
]


@pytest.mark.parametrize("args,names", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_is_one_line_exit_2_and_nothing_sent(listener, args, names):
    path, connections = listener
    r = run([JZ] + args + ["--socket", path])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("jz %s: " % args[0]), r.stderr
    assert names in lines[0], r.stderr
    assert connections() == 0, "jz sent a request for bad input"


def test_good_input_is_sent(listener):
    """The counterpart of the test above: the same socket sees a well-formed
    command's connection (so that seeing none there means something)."""
    path, connections = listener
    for args in (["history", "--state", "completed", "--since", "2026-01-01"], ["eff", "40_3"],
                 ["usage", "--by", "day"], ["grant", "um6p", "--gpu-hours", "-12.5", "--from", "2026-01-01"],
                 ["balance"], ["invoice", "um6p", "--month", "2026-11", "--html"]):
        r = run([JZ] + args + ["--socket", path, "--timeout", "1"])
        assert r.returncode == 1, (args, r.stderr)
        assert connections() == 1, args


def test_help_lists_the_accounting_commands():
    out = run([JZ, "help"]).stdout
    for cmd in ("history", "eff", "usage", "grant", "balance", "invoice"):
        assert re.search(r"^  %s " % cmd, out, re.M), cmd
    opts = run([JZ, "invoice", "--help"]).stdout
    assert "  --month VALUE" in opts and "  --html" in opts and "  --csv" in opts


# --- with a real daemon ------------------------------------------------------------------------------


def solo(daemon_factory):
    d = daemon_factory(name="solo", xml=hwloc_xml("power8gpudistances.xml"),
                       extra=["--election-timeout", "200ms", "--heartbeat-interval", "100ms"])
    wait_for(lambda: d.jz_json("status")["leader"] == "solo", what="solo to lead")
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="its node to register")
    return d


def served(d):
    """Skips the test when this daemon does not keep a history yet."""
    r = d.jz("history")
    if r.returncode != 0 and "not a request this daemon serves" in r.stderr:
        pytest.skip("the daemon's half of accounting (HistoryRequest) is not in this build")
    assert r.returncode == 0, r.stderr


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def history(d, *args):
    return d.jz_json("history", *args)["jobs"]


def in_history(d, job):
    return lambda: [j for j in history(d) if j["id"] == job]


def iso_ms(s):
    return int(time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone) * 1000


def test_history_eff_and_sacct_with_a_real_daemon(daemon_factory):
    d = solo(daemon_factory)
    served(d)
    ok = submit(d, "--name", "=cmd|' /C calc'!A0", "--gpus-per-node", "1", "--", "sh", "-c", "sleep 1")
    bad = submit(d, "--name", "fails, with a comma", "--", "sh", "-c", "exit 3")
    held = submit(d, "--hold", "--name", "waits", "--", "true")
    for job in (ok, bad):
        wait_for(in_history(d, job), timeout=30, what="job %d in the history" % job)
    jobs = {j["id"]: j for j in history(d)}
    assert held not in jobs  # pending: not in the history
    for j in jobs.values():
        assert list(j.keys()) == HIST_KEYS
    j = jobs[ok]
    assert j["state"] == "COMPLETED" and j["exit_code"] == 0 and j["gpus"] == 1 and j["nodes"] == 1
    assert jobs[bad]["state"] == "FAILED" and jobs[bad]["exit_code"] == 3
    # Elapsed to the second, from the times shown; money and seconds as numbers.
    assert abs(j["elapsed_s"] - (iso_ms(j["end_time"]) - iso_ms(j["start_time"])) / 1000) <= 1
    assert j["elapsed_s"] >= 1 and j["gpu_seconds"] >= 1
    assert isinstance(j["cost"], (int, float)) and isinstance(j["cpu_seconds"], (int, float))
    # Filters.
    assert [x["id"] for x in history(d, "--state", "failed")] == [bad]
    assert history(d, "--since", "-1:00:00", "--state", "COMPLETED")[-1]["id"] == ok
    assert history(d, "--until", "2000-01-01") == []
    # CSV: the same keys, the same rows, a formula-like name kept as text.
    r = d.jz("history", "--csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout, newline="")))
    assert rows[0] == HIST_KEYS
    by_id = {int(row[0]): row for row in rows[1:]}
    assert by_id[ok][1] == "'=cmd|' /C calc'!A0"
    assert by_id[bad][1] == "fails, with a comma"
    assert by_id[bad][HIST_KEYS.index("exit_code")] == "3"
    # The table.
    table = d.jz("history").stdout.splitlines()
    assert table[0].split()[:5] == ["ID", "NAME", "USER", "ACCOUNT", "STATE"]
    assert any(line.split()[0] == str(bad) and "FAILED" in line for line in table[1:])
    # jz eff: the finished job, then one not finished.
    e = d.jz_json("eff", str(ok))
    assert e["id"] == ok and e["state"] == "COMPLETED" and e["gpus"] == 1 and e["cpus"] >= 1
    assert e["cost"] == j["cost"]
    text = d.jz("eff", str(ok)).stdout
    assert "Job ID: %d" % ok in text and "State: COMPLETED (exit code 0)" in text and "CPU Efficiency:" in text
    r = d.jz("eff", str(held))
    assert r.returncode == 1 and "not in the history" in r.stderr and r.stderr.count("\n") == 1
    r = d.jz("eff", "999999")
    assert r.returncode == 1 and "not in the history" in r.stderr
    # sacct: the same jobs.
    sacct = os.path.join(os.path.dirname(JZ), "slurm", "sacct")
    r = run([sacct, "-a", "-X", "-P", "-n", "-o", "JobIDRaw,State,ExitCode", "-S",
             "now-1hours"], env=dict(os.environ, JAZARI_SOCKET=d.socket))
    assert r.returncode == 0, r.stderr
    got = {line.split("|")[0]: line.split("|")[1:] for line in r.stdout.splitlines()}
    assert got[str(bad)] == ["FAILED", "3:0"] and got[str(ok)] == ["COMPLETED", "0:0"]


def test_usage_grant_balance_and_invoices_with_a_real_daemon(daemon_factory):
    d = solo(daemon_factory)
    served(d)
    job = submit(d, "--gpus-per-node", "2", "--", "sh", "-c", "sleep 1")
    wait_for(in_history(d, job), timeout=30, what="the job in the history")
    j = [x for x in history(d) if x["id"] == job][0]
    # Usage: its rows sum what the history says.
    u = d.jz_json("usage", "--by", "user")
    assert list(u.keys()) == ["currency", "rows"]
    assert all(list(row.keys()) == USAGE_KEYS for row in u["rows"])
    assert sum(row["jobs"] for row in u["rows"]) >= 1
    assert sum(row["gpu_seconds"] for row in u["rows"]) >= j["gpu_seconds"]
    r = d.jz("usage", "--by", "model", "--csv")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == ",".join(USAGE_KEYS), r.stderr
    # A grant to the job's account, as it stands, then the balance.
    acct = j["account"]
    assert acct
    r = d.jz("grant", acct, "--gpu-hours", "10.5", "--json")
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)
    assert g["account"] == acct and g["gpu_hours"] == 10.5 and g["gpu_ms"] == 10500 * 3600
    b = d.jz_json("balance", acct)["balances"]
    assert len(b) == 1 and b[0]["grant"]["id"] == g["id"] and not b[0]["unlimited"]
    assert b[0]["granted_hours"] == 10.5
    text = d.jz("balance", acct).stdout
    assert re.search(r"^%s\s.*\s10\.50\s" % re.escape(acct), text, re.M), text
    # Invoices: the same bytes twice, in every form; the page stands alone.
    month = time.strftime("%Y-%m", time.gmtime())
    for form in ([], ["--json"], ["--csv"], ["--html"]):
        a = d.jz("invoice", j["account"], "--month", month, *form)
        b2 = d.jz("invoice", j["account"], "--month", month, *form)
        assert a.returncode == 0, a.stderr
        assert a.stdout == b2.stdout and a.stdout, form
    page = d.jz("invoice", j["account"], "--month", month, "--html").stdout
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    r = d.jz("invoice", j["account"], "--month", "2999-01")
    assert r.returncode == 1 and r.stderr.count("\n") == 1  # a month to come: the daemon refuses it


# --- exactly what the daemon's integers say ------------------------------------------------------------

def dec(text):
    return json.loads(text, parse_float=decimal.Decimal)


def milli(v):
    """Thousandths as jz writes them: exact, trailing zeros dropped."""
    d = decimal.Decimal(v) / 1000
    return d.quantize(decimal.Decimal(1)) if d == d.to_integral_value() else d.normalize()


def money(micro, digits=2):
    unit = 10 ** (6 - digits)
    minor = (micro + unit // 2) // unit
    return decimal.Decimal(minor).scaleb(-digits)


@pytest.mark.timeout(240)
def test_figures_are_the_daemons_integers_exactly(daemon_factory, tmp_path):
    """jz's history, eff, usage and invoice against the replies' own
    integers (read here from the same daemon with the protocol): seconds to
    the millisecond, money rounded half up to the centime, the same digits
    in JSON, CSV and text; and sacct over a job the queue has forgotten."""
    from test_accounting import history as raw_history, network, rpc, submit as submit_plain
    (ctl,), agent = network(daemon_factory, tmp_path)
    if "not a request this daemon serves" in ctl.jz("history").stderr:
        pytest.skip("the daemon's half of accounting is not in this build")
    ok = submit_plain(ctl, "--gpus-per-node", "2", "--cpus-per-task", "3", "--account", "lab/a", "--name", "+ok",
                      "--", "sleep", "1")
    bad = submit_plain(ctl, "--gpus-per-node", "1", "--account", "lab/b", "--", "sh", "-c", "exit 3")
    for job in (ok, bad):
        wait_for(in_history(ctl, job), timeout=60, what="job %d in the history" % job)
    raw, rep = raw_history(ctl)
    raw = {h.id: h for h in raw}
    assert rep.currency == "MAD" and rep.minor_digits == 2
    out = ctl.jz("history", "--json")
    assert out.returncode == 0, out.stderr
    shown = {j["id"]: j for j in dec(out.stdout)["jobs"]}
    assert set(shown) == set(raw)
    for jid, h in raw.items():
        j = shown[jid]
        assert j["elapsed_s"] == milli(h.elapsed_ms) and j["gpu_seconds"] == milli(h.usage.gpu_ms)
        assert j["cpu_seconds"] == milli(h.usage.cpu_ms) and j["max_rss_bytes"] == h.usage.max_rss_bytes
        assert j["cost"] == money(h.usage.cost_micro) and j["cost"].as_tuple().exponent == -2
        assert j["gpus"] == h.gpus and j["cpus"] == h.cpus and j["exit_code"] == h.exit_code
    assert raw[ok].usage.cost_micro > 0 and shown[ok]["cost"] > 0  # priced: H100s at 36.00 an hour
    # CSV: the same digits.
    rows = list(csv.DictReader(io.StringIO(ctl.jz("history", "--csv").stdout)))
    for row in rows:
        j = shown[int(row["id"])]
        for k in ("elapsed_s", "gpu_seconds", "cpu_seconds", "cost"):
            assert row[k] == str(j[k]), (k, row[k], j[k])
    assert [r["name"] for r in rows if int(r["id"]) == ok] == ["'+ok"]
    # jz eff: its CPU efficiency from the same integers.
    e = dec(ctl.jz("eff", str(ok), "--json").stdout)
    u = raw[ok].usage
    assert e["cost"] == shown[ok]["cost"] and e["cpu_seconds"] == milli(u.cpu_ms)
    if u.cpu_alloc_ms:
        want = (decimal.Decimal(u.cpu_ms * 10000 + u.cpu_alloc_ms // 2) // u.cpu_alloc_ms).scaleb(-2)
        assert e["cpu_efficiency"] == want
    assert "Cost: %s MAD" % shown[ok]["cost"] in ctl.jz("eff", str(ok)).stdout
    # jz usage against the UsageReply.
    raw_u = rpc(ctl, "usage_request", pb.UsageRequest(by="account"), "usage_reply")
    got_u = dec(ctl.jz("usage", "--by", "account", "--json").stdout)
    assert got_u["currency"] == "MAD"
    assert [(r["key"], r["jobs"], r["gpu_seconds"], r["cpu_seconds"], r["cost"]) for r in got_u["rows"]] == [
        (r.key, r.jobs, milli(r.gpu_ms), milli(r.cpu_ms), money(r.cost_micro)) for r in raw_u.rows]
    # jz invoice against the InvoiceReply, and the same bytes twice.
    month = time.strftime("%Y-%m", time.gmtime(raw[ok].end_ms / 1000))
    raw_i = rpc(ctl, "invoice_request", pb.InvoiceRequest(account="lab", month=month), "invoice_reply")
    got_i = dec(ctl.jz("invoice", "lab", "--month", month, "--json").stdout)
    assert got_i["total"] == decimal.Decimal(raw_i.total_minor).scaleb(-2) and raw_i.total_minor > 0
    assert [(l["item"], l["quantity_ms"], l["amount"]) for l in got_i["lines"]] == [
        (l.item, l.quantity_ms, decimal.Decimal(l.amount_minor).scaleb(-2)) for l in raw_i.lines]
    assert {j["id"] for j in got_i["jobs"]} == {ok, bad}
    text = ctl.jz("invoice", "lab", "--month", month).stdout
    assert re.search(r"^TOTAL\s+%s MAD$" % re.escape(str(got_i["total"])), text, re.M), text
    for form in ([], ["--csv"], ["--html"], ["--json"]):
        assert ctl.jz("invoice", "lab", "--month", month, *form).stdout == \
            ctl.jz("invoice", "lab", "--month", month, *form).stdout
    # A grant and the balance it makes (an H100 hour counts 2).
    r = ctl.jz("grant", "lab", "--gpu-hours", "100.25", "--json")
    assert r.returncode == 0, r.stderr
    g = dec(r.stdout)
    assert g["gpu_ms"] == 100250 * 3600 and g["gpu_hours"] == decimal.Decimal("100.250")
    bal = dec(ctl.jz("balance", "lab", "--json").stdout)["balances"][0]
    raw_b = rpc(ctl, "balance_request", pb.BalanceRequest(account="lab"), "balance_reply").balances[0]
    assert bal["remaining_ms"] == raw_b.remaining_ms and bal["grant"]["id"] == g["id"]
    assert re.search(r"^lab\s.*\s100\.25\s", ctl.jz("balance", "lab").stdout, re.M)
    r = ctl.jz("grant", "nosuch", "--gpu-hours", "1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    # sacct over a job the queue has forgotten (jobs_keep 1m): from the history.
    sacct = os.path.join(os.path.dirname(JZ), "slurm", "sacct")
    env = dict(os.environ, JAZARI_SOCKET=ctl.socket)
    # The state forgets ended jobs when it applies an entry: once jobs_keep
    # has passed, a held job submitted now and then makes one.
    pokes = []

    def forgotten():
        now = time.time()
        if now * 1000 < raw[bad].end_ms + 61000:
            return False
        if not pokes or now - pokes[-1] > 2:
            pokes.append(now)
            submit_plain(ctl, "--hold", "--account", "lab/a", "--", "true")
        return bad not in [j["id"] for j in ctl.jz_json("queue", "--all")["jobs"]]

    wait_for(forgotten, timeout=150, what="the queue to forget job %d" % bad)
    r = run([sacct, "-a", "-X", "-P", "-n", "-o", "JobIDRaw,Account,State,ExitCode", "-S", "now-1hours"], env=env)
    assert r.returncode == 0, r.stderr
    assert "%d|lab/b|FAILED|3:0" % bad in r.stdout.splitlines(), r.stdout
    r = run([sacct, "-j", str(bad), "-X", "-P", "-n", "-o", "JobIDRaw,State"], env=env)
    assert r.stdout.splitlines() == ["%d|FAILED" % bad], r.stdout

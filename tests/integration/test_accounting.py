"""Accounting on real daemons (issue 14): every run charged and priced when
it ends, the history every controller derives from the log (SQLite), GPU-hour
grants enforced (AllocationExhausted), usage and invoices reproducible to the
smallest currency unit, through a failover and a restart of every controller.

The figures are checked exactly: each job's cost is its GPU-milliseconds
(and CPU-milliseconds) at the policy's prices, rounded as the code promises,
from the start and end times the leader stamped; usage and invoice lines are
the sums of those; a balance is its grant less the charges."""
import os
import socket

from conftest import JZ, fixture_xml, frame, hello_env, read_frame
from conftest import wait_for as _wait_for
from test_steps import FAST

import jazari_pb2 as pb


def wait_for(cond, timeout=30.0, what="condition"):
    """conftest's, with room for a loaded machine (a failover, SQLite's fsyncs)."""
    return _wait_for(cond, timeout=max(timeout, 30.0), what=what)

H100 = fixture_xml("hgx-h100-8gpu.xml")

# An H100 GPU-hour costs 36.00 MAD (0.01 a GPU-second: 10,000 micro), a
# CPU-hour 3.60 (1,000 micro a CPU-second); an H100 hour counts 2 GPU-hours
# of a grant.
POLICY = """
account lab 1 users=root
account lab/a 1
account lab/b 1
account startup 1
tenant acme accounts=startup admins=lea
qos normal priority=0
qos high priority=100 preempt=normal grace=1s
currency MAD 2
rate H100 2
price H100 36.00
price cpu 3.60
jobs_keep 1m
"""

GPU_MICRO_PER_MS = 10    # 36.00 MAD / 3,600,000 ms, in millionths
CPU_MICRO_PER_MS = 1


def rpc(d, field, msg, body, user=None, role="researcher"):
    """One request on the daemon's socket (or over TLS as user, with
    credentials of role), its reply's body (or the Error)."""
    s = d.connect(user=user, role=role) if user else socket.socket(socket.AF_UNIX)
    try:
        if not user:
            s.connect(d.socket)
        s.sendall(frame(hello_env()))
        assert read_frame(s).HasField("hello_reply")
        env = pb.Envelope(request_id=2, version=1)
        getattr(env, field).CopyFrom(msg)
        s.sendall(frame(env))
        r = read_frame(s, timeout=20)
        if r.error.code != pb.OK:
            return r.error
        return getattr(r, body)
    finally:
        s.close()


def history(d, **kw):
    jobs, after = [], None
    while True:
        q = pb.HistoryRequest(**kw)
        if after:
            q.after_end_ms, q.after_id = after
        r = rpc(d, "history_request", q, "history_reply")
        assert not isinstance(r, pb.Error), r
        jobs += list(r.jobs)
        if not r.more:
            return jobs, r
        after = (r.jobs[-1].end_ms, r.jobs[-1].id)


def network(daemon_factory, tmp_path, controllers=1):
    from conftest import free_port
    pol = tmp_path / "policy"
    pol.write_text(POLICY)
    names = ["c%d" % i for i in range(1, controllers + 1)]
    ports = [free_port() for _ in names]
    spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(names, ports))
    ctls = []
    for n, p in zip(names, ports):
        (tmp_path / ("tmp-" + n)).mkdir(exist_ok=True)
        os.chmod(str(tmp_path / ("tmp-" + n)), 0o1777)
        ctls.append(daemon_factory(name=n, port=p, extra=[
            "--controllers", spec, "--election-timeout", "300ms", "--gpu-isolation", "off",
            "--policy", str(pol), "--tmp-dir", str(tmp_path / ("tmp-" + n))] + FAST))
    wait_for(lambda: ctls[0].jz_json("status").get("leader") in names, what="a leader")
    (tmp_path / "tmp-gpu1").mkdir(exist_ok=True)
    os.chmod(str(tmp_path / "tmp-gpu1"), 0o1777)
    agent = daemon_factory(name="gpu1", xml=H100, extra=[
        "--controllers", spec, "--gpu-isolation", "off", "--policy", str(pol),
        "--tmp-dir", str(tmp_path / "tmp-gpu1")] + FAST)
    wait_for(lambda: any(n["name"] == "gpu1" and n["state"] == "up" for n in ctls[0].jz_json("nodes")["nodes"]),
             what="gpu1 up")
    return ctls, agent


def submit(d, *args):
    r = d.jz("submit", *args)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().split()[0])


def expected_cost(h):
    """A job's price from its own figures: GPU-ms at the H100 price (its GPUs
    are H100s), CPU-ms at the CPU price, each run rounded half up to micro."""
    u = h.usage
    return u.gpu_ms * GPU_MICRO_PER_MS + u.cpu_alloc_ms * CPU_MICRO_PER_MS


def test_runs_are_priced_and_kept_in_the_history(daemon_factory, tmp_path):
    (ctl,), agent = network(daemon_factory, tmp_path)
    ok = submit(ctl, "--gpus-per-node", "2", "--cpus-per-task", "3", "--account", "lab/a", "--name", "ok", "--",
                "sleep", "1")
    bad = submit(ctl, "--gpus-per-node", "1", "--account", "lab/b", "--name", "bad", "--", "sh", "-c", "exit 3")
    long = submit(ctl, "--gpus-per-node", "1", "--account", "lab/b", "--name", "long", "--", "sleep", "60")
    held = submit(ctl, "--hold", "--account", "lab/a", "--name", "held", "--", "true")
    wait_for(lambda: ctl.jz_json("show", str(long))["state"] == "RUNNING", what="the long job to run")
    assert ctl.jz("cancel", str(long), str(held)).returncode == 0
    for j in (ok, bad, long, held):
        wait_for(lambda: ctl.jz_json("show", str(j))["state"] not in ("PENDING", "RUNNING"), what="job %d ends" % j)
    jobs, rep = history(ctl)
    assert rep.currency == "MAD" and rep.minor_digits == 2
    got = {h.id: h for h in jobs}
    assert set(got) == {ok, bad, long, held}, got.keys()
    h = got[ok]
    assert h.state == pb.JOB_COMPLETED and h.name == "ok" and h.account == "lab/a" and h.gpus == 2 and h.cpus == 3
    assert "H100" in h.gpu_model and h.node_list == "gpu1"
    assert h.elapsed_ms == h.end_ms - h.start_ms >= 1000
    assert h.usage.gpu_ms == 2 * h.elapsed_ms and h.usage.cpu_alloc_ms == 3 * h.elapsed_ms
    assert h.usage.runs == 1
    assert h.usage.cost_micro == expected_cost(h), (h.usage, expected_cost(h))
    assert h.usage.gpu_cost_micro == h.usage.gpu_ms * GPU_MICRO_PER_MS
    assert h.usage.charge_ms == 2 * h.usage.gpu_ms  # an H100 hour counts 2
    assert got[bad].state == pb.JOB_FAILED and got[bad].exit_code == 3
    assert got[long].state == pb.JOB_CANCELLED and got[long].usage.gpu_ms > 0
    assert got[long].usage.cost_micro == expected_cost(got[long])
    assert got[held].state == pb.JOB_CANCELLED and got[held].start_ms == 0 and got[held].usage.gpu_ms == 0
    # Usage by account: the sums of the runs, to the micro.
    r = rpc(ctl, "usage_request", pb.UsageRequest(by="account"), "usage_reply")
    rows = {row.key: row for row in r.rows}
    assert rows["lab/a"].jobs == 1 and rows["lab/a"].gpu_ms == h.usage.gpu_ms
    assert rows["lab/a"].cost_micro == h.usage.cost_micro
    assert rows["lab/b"].jobs == 2
    assert rows["lab/b"].cost_micro == got[bad].usage.cost_micro + got[long].usage.cost_micro
    # Filters: a user's, an account's with its projects, a state.
    assert {j.id for j in history(ctl, account="lab")[0]} == {ok, bad, long, held}
    assert {j.id for j in history(ctl, account="lab/b")[0]} == {bad, long}
    assert {j.id for j in history(ctl, state="FAILED")[0]} == {bad}
    assert [j.id for j in history(ctl, job_id=ok)[0]] == [ok]


def balance(d, account):
    r = rpc(d, "balance_request", pb.BalanceRequest(account=account), "balance_reply")
    assert not isinstance(r, pb.Error), r
    assert len(r.balances) == 1, r
    return r.balances[0]


def test_a_grant_is_enforced_and_says_why(daemon_factory, tmp_path):
    (ctl,), agent = network(daemon_factory, tmp_path)
    # 0.02 GPU-hours = 72 GPU-seconds of charge; an H100 second counts 2.
    g = rpc(ctl, "grant_request", pb.GrantRequest(account="lab/a", gpu_milli_hours=20), "grant_reply")
    assert not isinstance(g, pb.Error), g
    assert g.grant.gpu_ms == 72000 and g.grant.account == "lab/a" and g.grant.used_ms == 0
    assert g.grant.until_ms - g.grant.from_ms == 365 * 86400 * 1000
    # Worst case 1 GPU x 60 s x 2 = 120 s > 72: could never fit, refused now.
    r = ctl.jz("submit", "--gpus-per-node", "1", "--time", "1:00", "--account", "lab/a", "--", "true")
    assert r.returncode != 0 and "worst case" in r.stderr and "lab/a" in r.stderr, r.stderr
    gate = tmp_path / "gate"
    first = submit(ctl, "--gpus-per-node", "1", "--time", "0:30", "--account", "lab/a", "--", "sh", "-c",
                   "while [ ! -e %s ]; do sleep 0.05; done" % gate)
    wait_for(lambda: ctl.jz_json("show", str(first))["state"] == "RUNNING", what="the first job to run")
    # 60 held by the first + 60 > 72: the second waits, and says why.
    second = submit(ctl, "--gpus-per-node", "1", "--time", "0:30", "--account", "lab/a", "--", "true")
    wait_for(lambda: ctl.jz_json("show", str(second))["reason"] == "AllocationExhausted",
             what="the second job to wait for the allocation")
    b = balance(ctl, "lab/a")
    assert b.account == "lab/a" and b.grant.gpu_ms == 72000 and b.held_ms > 0
    assert b.remaining_ms == 72000 - b.grant.used_ms - b.running_ms
    # Another account is not limited.
    free = submit(ctl, "--gpus-per-node", "1", "--account", "lab/b", "--", "true")
    wait_for(lambda: ctl.jz_json("show", str(free))["state"] == "COMPLETED", what="lab/b's job to run")
    gate.write_text("")
    wait_for(lambda: ctl.jz_json("show", str(first))["state"] == "COMPLETED", what="the first job to end")
    wait_for(lambda: ctl.jz_json("show", str(second))["state"] == "COMPLETED", what="the second job to start")
    jobs = {h.id: h for h in history(ctl, account="lab/a")[0]}
    b = balance(ctl, "lab/a")
    assert b.grant.used_ms == jobs[first].usage.charge_ms + jobs[second].usage.charge_ms
    assert jobs[first].usage.charge_ms == 2 * jobs[first].usage.gpu_ms
    assert b.remaining_ms == 72000 - b.grant.used_ms and b.running_ms == 0
    # Bad grants: one clear line, nothing changed.
    for req, words in ((pb.GrantRequest(account="nosuch", gpu_milli_hours=1000), "no account"),
                       (pb.GrantRequest(account="lab/a", gpu_milli_hours=0), "GPU-hours"),
                       (pb.GrantRequest(account="lab/a", gpu_milli_hours=1000, from_ms=g.grant.from_ms + 1000),
                        "already has grant"),
                       (pb.GrantRequest(account="lab/a", gpu_milli_hours=-1000, from_ms=g.grant.from_ms,
                                        until_ms=g.grant.until_ms), "cannot be reduced")):
        e = rpc(ctl, "grant_request", req, "grant_reply")
        assert isinstance(e, pb.Error) and words in e.message, (req, e)
    assert balance(ctl, "lab/a").grant.gpu_ms == 72000
    # A top-up of the same period adds to it.
    t = rpc(ctl, "grant_request", pb.GrantRequest(account="lab/a", gpu_milli_hours=10, from_ms=g.grant.from_ms,
                                                 until_ms=g.grant.until_ms), "grant_reply")
    assert t.grant.id == g.grant.id and t.grant.gpu_ms == 72000 + 36000


def snapshot_of(ctl):
    """What a controller's history says, as bytes: its jobs' records, usage by
    every key, and this month's invoice of each account."""
    import time
    jobs, _ = history(ctl)
    out = [b"".join(j.SerializeToString() for j in jobs)]
    for by in ("user", "account", "model", "site", "day"):
        out.append(rpc(ctl, "usage_request", pb.UsageRequest(by=by), "usage_reply").SerializeToString())
    month = time.strftime("%Y-%m", time.gmtime())
    for account in ("lab", "lab/a", "lab/b", "startup"):
        inv = rpc(ctl, "invoice_request", pb.InvoiceRequest(account=account, month=month), "invoice_reply")
        assert not isinstance(inv, pb.Error), inv
        assert inv.total_minor == sum(line.amount_minor for line in inv.lines)
        out.append(inv.SerializeToString())
    return jobs, out


def test_every_controller_agrees_through_a_failover_and_a_restart(daemon_factory, tmp_path):
    ctls, agent = network(daemon_factory, tmp_path, controllers=3)
    c1 = ctls[0]
    gate = tmp_path / "gate"
    wait_gate = "while [ ! -e %s ]; do sleep 0.05; done" % gate
    arr = submit(c1, "--array", "0-2", "--gpus-per-node", "1", "--account", "lab/a", "--", "sleep", "0.2")
    timed = submit(c1, "--gpus-per-node", "1", "--time", "0:01", "--account", "lab/b", "--", "sleep", "30")
    # A job requeued by request while running: charged for both runs.
    req = submit(c1, "--gpus-per-node", "1", "--account", "startup", "--", "sh", "-c", wait_gate)
    wait_for(lambda: c1.jz_json("show", str(req))["state"] == "RUNNING", what="the job to requeue to run")
    # (Until every controller has said it reads log format 7, requeues wait.)
    wait_for(lambda: c1.jz("requeue", str(req)).returncode == 0, what="the requeue to be taken")
    # It runs again (its second run), on one GPU.
    wait_for(lambda: "Requeued" in (c1.jz_json("show", str(req)).get("reason") or "") or
             c1.jz_json("show", str(req))["state"] == "PENDING", what="the requeue")
    wait_for(lambda: c1.jz_json("show", str(req))["state"] == "RUNNING", what="the requeued job to run again")
    # A normal job preempted by a high one that needs its GPUs (the other 7).
    low = submit(c1, "--gpus-per-node", "7", "--account", "lab/b", "--", "sh", "-c", wait_gate)
    wait_for(lambda: c1.jz_json("show", str(low))["state"] == "RUNNING", what="the low job to run")
    high = submit(c1, "--gpus-per-node", "7", "--qos", "high", "--account", "lab/a", "--", "sleep", "0.3")
    wait_for(lambda: c1.jz_json("show", str(high))["state"] == "COMPLETED", what="the high job to preempt and end")
    # The leader dies in the middle.
    leader = c1.jz_json("status")["leader"]
    dead = [c for c in ctls if c.name == leader][0]
    dead.proc.kill()
    dead.proc.wait()
    alive = [c for c in ctls if c is not dead]
    wait_for(lambda: alive[0].jz_json("status").get("leader") in [c.name for c in alive], timeout=20,
             what="a new leader")
    gate.write_text("")
    for j in [arr, arr + 1, arr + 2, timed, req, low, high]:
        wait_for(lambda: alive[0].jz_json("show", str(j))["state"] not in ("PENDING", "RUNNING"), timeout=30,
                 what="job %d to end" % j)
    wait_for(lambda: all(c.jz_json("status").get("applied", 0) == alive[0].jz_json("status").get("applied", 0)
                         for c in alive), what="both controllers to apply the same log")
    jobs, first = snapshot_of(alive[0])
    got = {h.id: h for h in jobs}
    assert got[timed].state == pb.JOB_TIMEOUT and got[timed].usage.cost_micro == expected_cost(got[timed])
    assert got[req].requeues >= 1 and got[req].usage.runs == 2, got[req]
    assert got[low].usage.runs == 2 and got[low].requeues == 1, got[low]
    assert [got[arr + i].array_index for i in range(3)] == [0, 1, 2]
    for h in jobs:  # every run priced from its own figures
        assert h.usage.cost_micro == expected_cost(h), h
    wait_for(lambda: snapshot_of(alive[1])[1] == first, what="the other controller's history to agree")
    assert snapshot_of(alive[0])[1] == first  # the same invoice twice: the same bytes
    # Every controller restarts (the dead one too): nothing lost, nothing charged twice.
    for c in alive:
        c.stop()
    for c in ctls:
        c.start()
    wait_for(lambda: ctls[0].jz_json("status").get("leader") in [c.name for c in ctls], timeout=20,
             what="a leader after the restart")
    for c in ctls:
        wait_for(lambda: snapshot_of(c)[1] == first, timeout=20, what="%s's history after the restart" % c.name)


def test_a_startups_month_from_reservation_to_invoice(daemon_factory, tmp_path):
    import time
    (ctl,), agent = network(daemon_factory, tmp_path)
    r = ctl.jz("reserve", "acme-r1", "--gpus", "2", "--duration", "0:04", "--account", "startup")
    assert r.returncode == 0, r.stderr
    job = submit(ctl, "--reservation", "acme-r1", "--account", "startup", "--gpus-per-node", "1", "--cpus-per-task",
                 "2", "--time", "0:02", "--", "sleep", "0.3")
    wait_for(lambda: ctl.jz_json("show", str(job))["state"] == "COMPLETED", what="the job in the reservation")
    other = submit(ctl, "--account", "lab/a", "--gpus-per-node", "1", "--", "true")
    # The window ends: the leader charges it, on a quiet network too.
    month = time.strftime("%Y-%m", time.gmtime())

    def charged():
        inv = rpc(ctl, "invoice_request", pb.InvoiceRequest(account="startup", month=month), "invoice_reply")
        return not isinstance(inv, pb.Error) and inv.reservations and inv
    inv = wait_for(charged, timeout=15, what="the reservation's charge")
    res = inv.reservations[0]
    assert res.name == "acme-r1" and res.gpus == 2 and res.account == "startup"
    assert res.gpu_ms == 2 * (res.end_ms - res.start_ms) and res.cost_micro == res.gpu_ms * GPU_MICRO_PER_MS
    h = {j.id: j for j in history(ctl, account="startup")[0]}[job]
    # Its GPUs were paid with the reservation; its CPUs are billed.
    assert h.usage.gpu_cost_micro == 0 and h.usage.cost_micro == h.usage.cpu_alloc_ms * CPU_MICRO_PER_MS > 0
    lines = {line.item: line for line in inv.lines}
    assert lines["reservation acme-r1"].amount_minor == (res.cost_micro + 5000) // 10000
    assert lines["CPU-hours"].quantity_ms == h.usage.cpu_alloc_ms
    assert inv.total_minor == sum(line.amount_minor for line in inv.lines)
    assert inv.tenant == "acme" and inv.currency == "MAD" and inv.month == month
    assert [j.id for j in inv.jobs] == [job]
    # The tenant's admin sees their startup's invoices and usage, nobody else's.
    mine = rpc(ctl, "invoice_request", pb.InvoiceRequest(account="startup", month=month), "invoice_reply",
               user="lea", role="tenant-admin")
    assert mine.SerializeToString() == inv.SerializeToString()
    e = rpc(ctl, "invoice_request", pb.InvoiceRequest(account="lab", month=month), "invoice_reply",
            user="lea", role="tenant-admin")
    assert isinstance(e, pb.Error) and e.code == pb.PERMISSION_DENIED, e
    u = rpc(ctl, "usage_request", pb.UsageRequest(by="account"), "usage_reply", user="lea", role="tenant-admin")
    assert [row.key for row in u.rows] == ["startup"], u
    lea = rpc(ctl, "history_request", pb.HistoryRequest(), "history_reply", user="lea", role="tenant-admin")
    assert {j.account for j in lea.jobs} == {"startup"} and other not in [j.id for j in lea.jobs]
    e = rpc(ctl, "invoice_request", pb.InvoiceRequest(account="startup", month=month), "invoice_reply",
            user="sam", role="researcher")
    assert isinstance(e, pb.Error) and e.code == pb.PERMISSION_DENIED, e
    # Bad input: one clear line.
    for acct, m, words in (("startup", "2026-13", "a month such as"), ("startup", "2026-1", "a month such as"),
                           ("startup", "2999-01", "in the future"), ("nosuch", month, "no account")):
        e = rpc(ctl, "invoice_request", pb.InvoiceRequest(account=acct, month=m), "invoice_reply")
        assert isinstance(e, pb.Error) and words in e.message, (acct, m, e)

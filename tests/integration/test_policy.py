"""The site's policy with real daemons and real jobs: fair share between
institutes, QoS preemption (warning signal, grace, PREEMPTED then
PENDING), QoS GPU limits, advance reservations with scavengers on their
idle GPUs, minimum GPU memory, a bad policy file."""
import json
import os
import pwd
import shutil
import subprocess
import tempfile

from conftest import JAZARID, JZ, fixture_xml, wait_for

FAST = ["--election-timeout", "200ms", "--heartbeat-interval", "100ms", "--kill-grace", "1s"]

POLICY = """
# two institutes, 3:1
weight age 0
weight size 0
half_life 1h
account um6p 3
account um6p/nlp 1
account uir 1
account startup 1
account startup/train 1
account closed 1 users=alice
qos normal priority=0
qos scavenger priority=0 preemptible
qos capped priority=0 max_gpus_per_user=4
qos high priority=100 preempt=normal,scavenger grace=3s
qos vip priority=50 accounts=startup
"""


def node(daemon_factory, tmp_path, policy=POLICY, scheduler="multifactor", extra_args=(), **kw):
    path = os.path.join(str(tmp_path), "policy.conf")
    with open(path, "w") as f:
        f.write(policy)
    d = daemon_factory(name="gpu", xml=fixture_xml("hgx-h100-8gpu.xml"),
                       extra=FAST + ["--policy", path, "--scheduler", scheduler] + list(extra_args), **kw)
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="the node to register")
    return d


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def show(d, jid):
    return d.jz_json("show", str(jid))


def state_is(d, jid, *states):
    return lambda: show(d, jid)["state"] in states


def test_fair_share_puts_the_institute_that_used_less_first(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path)
    try:
        # um6p uses the whole node for a while: usage for um6p/nlp/root.
        used = submit(d, "--account", "um6p/nlp", "--gpus-per-node", "8", "--", "sleep", "2")
        wait_for(state_is(d, used, "COMPLETED"), timeout=20, what="the first job")
        blocker = submit(d, "--account", "startup", "--gpus-per-node", "8", "--", "sleep", "3")
        wait_for(state_is(d, blocker, "RUNNING"), what="the blocker to run")
        # Both wait; um6p's came first, but uir has used nothing.
        first = submit(d, "--account", "um6p/nlp", "--gpus-per-node", "8", "--", "sleep", "1")
        second = submit(d, "--account", "uir", "--gpus-per-node", "8", "--", "sleep", "1")
        a, b = show(d, first), show(d, second)
        assert a["account"] == "um6p/nlp" and b["account"] == "uir" and a["qos"] == "normal", (a, b)
        assert b["priority"] > a["priority"], (a, b)
        shares = {r["path"]: r for r in d.jz_json("shares")["accounts"]}
        assert shares["um6p/nlp/root"]["gpu_seconds"] > 8, shares
        assert shares["um6p"]["fairshare"] < shares["uir"]["fairshare"], shares
        assert abs(shares["um6p"]["norm_shares"] - 3 / 6) < 1e-9, shares  # um6p 3 of 3+1+1+1
        wait_for(state_is(d, first, "COMPLETED"), timeout=20, what="um6p's job")
        a, b = show(d, first), show(d, second)
        assert b["state"] == "COMPLETED" and a["start_time"] >= b["end_time"], (a, b)
        # Text output too.
        r = d.jz("shares")
        assert r.returncode == 0 and "nlp" in r.stdout and "FAIRSHARE" in r.stdout, r.stdout
    finally:
        d.kill_jobs()


def test_a_qos_preempts_a_lower_one_with_its_warning_and_grace(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path)
    try:
        mark = os.path.join(d.dir, "warned")
        ready = os.path.join(d.dir, "ready")
        low = submit(d, "--gpus-per-node", "8", "--signal", "USR1@1", "--time", "10", "--", "sh", "-c",
                     'trap "echo $JAZARI_JOB_ID >> %s" USR1; touch %s; '
                     'if [ -e %s ]; then exit 0; fi; while :; do sleep 0.1; done' % (mark, ready, mark))
        wait_for(lambda: os.path.exists(ready), what="the low job to run, its trap set")
        high = submit(d, "--qos", "high", "--gpus-per-node", "4", "--", "sleep", "1")
        # The low job is told (its --signal, USR1), and shows PREEMPTED while it stops.
        j = wait_for(lambda: (lambda j: j if j["state"] == "PREEMPTED" else None)(show(d, low)),
                     timeout=10, what="the low job to be preempted")
        assert "Preempted by job %d (high)" % high in j["reason"], j
        wait_for(lambda: os.path.exists(mark), timeout=10, what="the warning signal")
        # Its tasks ignore the signal: KILL after the grace, then back to the queue.
        j = wait_for(lambda: (lambda j: j if j["attempt"] == 1 else None)(show(d, low)), timeout=15,
                     what="the low job to be requeued")
        assert j["state"] in ("PENDING", "RUNNING") and j["preemptions"] == 1, j
        wait_for(state_is(d, high, "COMPLETED"), timeout=20, what="the high job")
        # It comes back, sees the mark of its first run, and completes.
        wait_for(state_is(d, low, "COMPLETED"), timeout=20, what="the low job's second run")
        assert show(d, low)["attempt"] == 1
    finally:
        d.kill_jobs()


def test_a_qos_bounds_one_users_gpus(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path)
    try:
        one = submit(d, "--qos", "capped", "--gpus-per-node", "4", "--", "sleep", "30")
        two = submit(d, "--qos", "capped", "--gpus-per-node", "2", "--", "sleep", "30")
        wait_for(state_is(d, one, "RUNNING"), what="the first capped job")
        # Another QoS is not bound by it; the pass that starts it has seen
        # the second capped job too, which must still wait.
        free = submit(d, "--gpus-per-node", "2", "--", "sleep", "30")
        wait_for(state_is(d, free, "RUNNING"), what="a normal job next to it")
        j = show(d, two)
        assert j["state"] == "PENDING" and j["reason"] == "QOSLimit", j
        d.jz("cancel", str(one))
        wait_for(state_is(d, two, "RUNNING"), what="the second capped job once the first is gone")
    finally:
        d.kill_jobs()


def test_reservation_keeps_gpus_for_its_account_and_lends_them_to_scavengers(daemon_factory, tmp_path):
    sockdir = tempfile.mkdtemp(prefix="jazari-sock-", dir="/tmp")  # reachable by nobody
    os.chmod(sockdir, 0o755)
    d = node(daemon_factory, tmp_path, socket=os.path.join(sockdir, "jz.sock"))
    try:
        r = d.jz("reserve", "--json", "r1", "--gpus", "4", "--duration", "10", "--account", "startup")
        assert r.returncode == 0, r.stderr
        resv = json.loads(r.stdout)
        assert resv["gpus"] == 4 and resv["nodes"] == [{"name": "gpu", "gpus": 4}], resv
        listed = d.jz_json("reservations")["reservations"]
        assert [x["name"] for x in listed] == ["r1"] and listed[0]["account"] == "startup", listed
        assert d.jz("reserve", "r1", "--gpus", "1", "--duration", "5", "--account", "uir").returncode == 1
        assert d.jz("reserve", "big", "--gpus", "8", "--duration", "5", "--account", "uir").returncode == 1

        # Others get the 4 GPUs nobody reserved, not more (a job without a
        # time limit would overlap the reservation).
        other = submit(d, "--account", "uir", "--gpus-per-node", "4", "--", "sleep", "30")
        wait_for(state_is(d, other, "RUNNING"), what="a job on the unreserved GPUs")
        more = submit(d, "--account", "uir", "--gpus-per-node", "4", "--", "sleep", "30")
        # A scavenger may use the idle reserved GPUs (backfilled: with a
        # limit, it ends before the waiting job's turn)...
        scav = submit(d, "--qos", "scavenger", "--account", "uir", "--gpus-per-node", "4", "--time", "5",
                      "--", "sleep", "30")
        wait_for(state_is(d, scav, "RUNNING"), what="the scavenger on reserved GPUs")
        assert show(d, more)["state"] == "PENDING", show(d, more)  # seen by that pass, kept out
        # ...until the owner needs them: it is preempted, the owner's job runs.
        r = d.jz("submit", "--account", "startup/train", "--reservation", "r1", "--", "true")
        assert r.returncode == 1 and "needs a --time of at most" in r.stderr, r.stderr
        r = d.jz("submit", "--account", "startup/train", "--reservation", "r1", "--time", "5",
                 "--gpus-per-node", "8", "--", "true")
        assert r.returncode == 1 and "holds 1 nodes with at most 4 GPUs" in r.stderr, r.stderr
        mine = submit(d, "--account", "startup/train", "--reservation", "r1", "--gpus-per-node", "4",
                      "--time", "5", "--", "sleep", "1")
        wait_for(state_is(d, mine, "RUNNING", "COMPLETED"), timeout=15, what="the reservation's job")
        j = show(d, scav)
        assert j["preemptions"] == 1 and j["state"] in ("PENDING", "PREEMPTED"), j
        assert show(d, more)["state"] == "PENDING"

        # Not a member: refused, and the reservation reads as one that does not exist.
        nobody = pwd.getpwnam("nobody")
        r = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                            "--clear-groups", JZ, "submit", "--socket", d.socket, "--account", "uir",
                            "--reservation", "r1", "--workdir", "/tmp", "--", "true"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "no reservation 'r1'" in r.stderr and "startup" not in r.stderr, r.stderr
        # Accounts and QoS that say who may use them.
        for extra, want in ((["--account", "closed"], "nobody may not charge account 'closed'"),
                            (["--account", "uir", "--qos", "vip"], "QoS vip is for the accounts startup")):
            r = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                                "--clear-groups", JZ, "submit", "--socket", d.socket, "--workdir", "/tmp"] + extra +
                               ["--", "true"], capture_output=True, text=True, timeout=30)
            assert r.returncode == 1 and want in r.stderr, (extra, r.stderr)
        r = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                            "--clear-groups", JZ, "reserve", "--socket", d.socket, "x", "--gpus", "1",
                            "--duration", "5", "--account", "uir"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "for admins" in r.stderr, r.stderr
        assert d.jz("submit", "--reservation", "nope", "--", "true").returncode == 1

        # Deleted: its GPUs are everyone's again.
        assert d.jz("unreserve", "r1").returncode == 0
        assert d.jz_json("reservations")["reservations"] == []
        d.jz("cancel", str(other))
        wait_for(state_is(d, more, "RUNNING"), timeout=15, what="the waiting job once r1 is gone")
    finally:
        d.kill_jobs()
        shutil.rmtree(sockdir, ignore_errors=True)


def test_a_future_reservation_lets_jobs_in_that_end_before_it(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path)
    try:
        r = d.jz("reserve", "later", "--nodes", "1", "--start", "+0:30", "--duration", "60", "--account",
                 "startup")
        assert r.returncode == 0, r.stderr
        short = submit(d, "--account", "uir", "--gpus-per-node", "8", "--time", "0:10", "--", "sleep", "30")
        wait_for(state_is(d, short, "RUNNING"), what="a job that ends before the reservation")
        d.jz("cancel", str(short))
        long_ = submit(d, "--account", "uir", "--gpus-per-node", "1", "--time", "5", "--", "true")
        early = submit(d, "--account", "startup", "--reservation", "later", "--time", "10", "--", "true")
        # A short job after them starts: that pass saw both, and kept them.
        probe = submit(d, "--account", "uir", "--gpus-per-node", "1", "--time", "0:05", "--", "true")
        wait_for(state_is(d, probe, "RUNNING", "COMPLETED"), what="a short job before the window")
        assert show(d, long_)["state"] == "PENDING", show(d, long_)
        assert show(d, early)["state"] == "PENDING" and show(d, early)["reason"] == "Reservation"
        # Deleted before it began: its waiting jobs can never run, and end.
        assert d.jz("unreserve", "later").returncode == 0
        j = show(d, early)
        assert j["state"] == "CANCELLED" and j["reason"] == "reservation later was deleted", j
    finally:
        d.kill_jobs()


def test_constraints_gpu_memory_and_labels(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path, extra_args=["--group", "sw1", "--labels", "ib,nvme"])
    try:
        n = d.jz_json("nodes")["nodes"][0]
        assert n["group"] == "sw1" and n["labels"] == ["ib", "nvme"], n
        r = d.jz("submit", "--constraint", "ib,gpudirect", "--", "true")
        assert r.returncode == 1 and "--constraint ib,gpudirect: no node has all these labels" in r.stderr, r.stderr
        lab = submit(d, "--constraint", "nvme", "--", "true")
        wait_for(state_is(d, lab, "COMPLETED"), what="a job on a labelled node")
        assert show(d, lab)["constraint"] == "nvme"
        r = d.jz("submit", "--gpu-mem", "200G", "--", "true")
        assert r.returncode == 1 and "--gpu-mem" in r.stderr, r.stderr
        ok = submit(d, "--gpu-mem", "40G", "--gpus-per-node", "1", "--", "true")
        wait_for(state_is(d, ok, "COMPLETED"), what="a job on 80 GB GPUs")
        assert show(d, ok)["gpu_mem"] == 40 << 30
    finally:
        d.kill_jobs()


def test_bad_policy_files_are_refused_with_their_line(tmp_path):
    cases = [("account a/b 1\n", "comes before its parent"),
             ("qos high preempt=nothing\n", "no such QoS"),
             ("weight age lots\n", "weight 'lots'"),
             ("account a 0\n", "shares 1 to"),
             ("frobnicate\n", "expected weight")]
    for text, want in cases:
        path = os.path.join(str(tmp_path), "bad.conf")
        with open(path, "w") as f:
            f.write("# fine\n" + text)
        r = subprocess.run([JAZARID, "--policy", path, "--state-dir", str(tmp_path / "s")], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 2 and "bad.conf:2:" in r.stderr and want in r.stderr, (text, r.stderr)


def test_bad_group_and_labels_settings_are_refused(tmp_path):
    for flag, value in (("--labels", "ib,"), ("--labels", "has space"), ("--group", "a,b")):
        r = subprocess.run([JAZARID, flag, value, "--state-dir", str(tmp_path / "s")], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 2 and ("for %s" % flag[2:]) in r.stderr, (flag, value, r.stderr)

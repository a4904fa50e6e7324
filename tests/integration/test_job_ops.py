"""Changing jobs in place, with real daemons: jz hold and release, jz
requeue of a running and of an ended job (a new attempt; --hold), jz update
of a pending job (and refusals that change nothing), a running job's time
limit shortened so that it ends TIMEOUT early, jz cancel JOB.STEP while the
job goes on, jz run (srun) interrupted by SIGINT, and the estimated start
of a job blocked behind a running one (jz queue --start)."""
import calendar
import json
import os
import signal
import subprocess
import time

from conftest import JZ, hwloc_xml, wait_for
from test_authz import network, sockdir  # noqa: F401 (fixtures)


def solo(daemon_factory):
    d = daemon_factory(name="solo", xml=hwloc_xml("power8gpudistances.xml"),
                       extra=["--election-timeout", "200ms", "--heartbeat-interval", "100ms",
                              "--kill-grace", "1s"])
    wait_for(lambda: d.jz_json("status")["leader"] == "solo", what="solo to lead")
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="its node to register")
    return d


def gpus(d):
    return d.jz_json("nodes")["nodes"][0]["gpus_total"]


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def show(d, job):
    return d.jz_json("show", str(job))


def state_is(d, job, state, **more):
    def check():
        j = show(d, job)
        return j if j["state"] == state and all(j.get(k) == v for k, v in more.items()) else None
    return wait_for(check, timeout=20, what="job %d %s %s" % (job, state, more))


def blocker(d, *extra):
    """A running job holding every GPU of the node."""
    a = submit(d, "--gpus-per-node", str(gpus(d)), "--time", "10:00", *extra, "--", "sleep", "300")
    state_is(d, a, "RUNNING")
    return a


def test_hold_and_release_and_what_cannot_be_held(daemon_factory):
    d = solo(daemon_factory)
    a = blocker(d)
    b = submit(d, "--gpus-per-node", str(gpus(d)), "--time", "5:00", "--", "true")
    r = d.jz("hold", str(b))
    assert r.returncode == 0 and "held 1 job" in r.stdout, r.stderr
    j = show(d, b)
    assert j["state"] == "PENDING" and j["reason"] == "Held", j
    # A running job, an unknown one: one clear line, exit 1, nothing held.
    r = d.jz("hold", str(a))
    assert r.returncode == 1 and "not pending" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = d.jz("hold", str(b), "999")
    assert r.returncode == 1 and "999" in r.stderr, r.stderr
    assert show(d, a)["state"] == "RUNNING"
    # An array's id: every task of it; the filters as jz cancel's.
    r = d.jz("submit", "--json", "--workdir", d.dir, "--array", "0-2", "--name", "arr", "--gpus-per-node",
             str(gpus(d)), "--time", "1:00", "--", "true")
    arr = json.loads(r.stdout)["id"]
    r = d.jz("hold", str(arr))
    assert r.returncode == 0 and "held 3 jobs" in r.stdout, r.stdout + r.stderr
    assert all(j["reason"] == "Held" for j in d.jz_json("queue", "--name", "arr")["jobs"])
    r = d.jz("release", "--name", "arr")
    assert r.returncode == 0 and "released 3 jobs" in r.stdout, r.stdout + r.stderr
    # The running one is skipped, said on stderr (exit 1); b was held already.
    r = d.jz("hold", "--state", "PD,R")
    assert r.returncode == 1 and "held 3 jobs" in r.stdout and "not pending" in r.stderr, r.stdout + r.stderr
    assert d.jz("cancel", "--name", "arr").returncode == 0
    # Released, it runs once the GPUs are free.
    assert d.jz("release", str(b)).returncode == 0
    assert show(d, b)["reason"] != "Held"
    assert d.jz("cancel", str(a)).returncode == 0
    state_is(d, b, "COMPLETED")


def test_requeue_a_running_and_an_ended_job(daemon_factory):
    d = solo(daemon_factory)
    marks = os.path.join(d.dir, "runs")
    a = submit(d, "--time", "10:00", "--", "sh", "-c", "echo run >> %s; sleep 300" % marks)
    state_is(d, a, "RUNNING")
    wait_for(lambda: os.path.exists(marks), what="the first run")
    r = d.jz("requeue", str(a))
    assert r.returncode == 0 and "requeued 1 job" in r.stdout, r.stderr
    # Stopped and run again, as its next attempt.
    j = state_is(d, a, "RUNNING", attempt=1)
    assert j["preemptions"] == 1, j
    wait_for(lambda: open(marks).read().count("run") == 2, what="the second run")
    # Requeued held while it runs: stopped, then pending and held.
    r = d.jz("requeue", "--hold", str(a))
    assert r.returncode == 0, r.stderr
    j = state_is(d, a, "PENDING", attempt=2)
    assert j["reason"].startswith("Held"), j
    assert open(marks).read().count("run") == 2
    # A pending job: refused.
    b = submit(d, "--hold", "--", "true")
    r = d.jz("requeue", str(b))
    assert r.returncode == 1 and "pending already" in r.stderr, r.stderr
    assert d.jz("cancel", str(a), str(b)).returncode == 0
    # An ended job runs again too; --hold leaves it held.
    c = submit(d, "--", "sh", "-c", "echo done >> %s.c" % marks)
    state_is(d, c, "COMPLETED", attempt=0)
    assert d.jz("requeue", str(c)).returncode == 0
    state_is(d, c, "COMPLETED", attempt=1)
    assert open(marks + ".c").read().count("done") == 2
    r = d.jz("requeue", "--hold", str(c))
    assert r.returncode == 0 and "held" in r.stdout, r.stderr
    j = show(d, c)
    assert j["state"] == "PENDING" and j["attempt"] == 2 and j["reason"].startswith("Held"), j
    assert d.jz("release", str(c)).returncode == 0
    state_is(d, c, "COMPLETED", attempt=2)
    # --no-requeue: never.
    e = submit(d, "--no-requeue", "--", "true")
    state_is(d, e, "COMPLETED")
    r = d.jz("requeue", str(e))
    assert r.returncode == 1 and "--no-requeue" in r.stderr, r.stderr


def test_update_a_pending_job_and_refusals_that_change_nothing(daemon_factory):
    d = solo(daemon_factory)
    a = blocker(d)
    b = submit(d, "--gpus-per-node", "1", "--time", "5:00", "--name", "first", "--", "true")
    assert show(d, b)["state"] == "PENDING"
    r = d.jz("update", str(b), "--time", "2:00", "--job-name", "second")
    assert r.returncode == 0, r.stderr
    assert "TimeLimit 0-00:05:00 -> 0-00:02:00" in r.stdout and "JobName first -> second" in r.stdout, r.stdout
    j = show(d, b)
    assert j["time_limit"] == 120 and j["name"] == "second", j

    def unchanged():
        j = show(d, b)
        assert j["time_limit"] == 120 and j["name"] == "second" and j["gpus_per_node"] == 1, j

    # Refused as a submission would be, whole: nothing changes.
    r = d.jz("update", str(b), "--job-name", "third", "--qos", "nosuch")
    assert r.returncode == 1 and "QoS" in r.stderr, r.stderr
    unchanged()
    r = d.jz("update", str(b), "--nodes", "50")
    assert r.returncode == 1 and "node" in r.stderr, r.stderr
    unchanged()
    r = d.jz("update", str(b), "--gpus-per-node", "999")
    assert r.returncode == 1, r.stderr
    unchanged()
    r = d.jz("update", str(b), "--dependency", "afterok:%d" % b)
    assert r.returncode == 1 and "itself" in r.stderr, r.stderr
    # What jz update does not change, and --nice: usage errors.
    for bad in (["--output", "x"], ["--nice", "5"]):
        r = d.jz("update", str(b), *bad)
        assert r.returncode == 2, r.stderr
    unchanged()
    # A running job: only its --time.
    r = d.jz("update", str(a), "--job-name", "x")
    assert r.returncode == 1 and "only its --time" in r.stderr, r.stderr
    # JSON: what changed.
    out = d.jz_json("update", str(b), "--gpus-per-node", "2")
    assert out["changed"] == ["GpusPerNode 1 -> 2"], out
    assert d.jz("cancel", str(a), str(b)).returncode == 0


def test_a_shorter_time_limit_reaches_a_running_job(daemon_factory):
    d = solo(daemon_factory)
    a = submit(d, "--time", "10:00", "--", "sleep", "300")
    j = state_is(d, a, "RUNNING")
    start = time.time()
    r = d.jz("update", str(a), "--time", "0:04")
    assert r.returncode == 0 and "TimeLimit 0-00:10:00 -> 0-00:00:04" in r.stdout, r.stdout + r.stderr
    j = state_is(d, a, "TIMEOUT")
    assert time.time() - start < 20, j
    assert "time limit of 4 s" in (j["reason"] or ""), j
    assert "time limit now 4 s" in d.log()


def run_step(d, job, *cmd):
    """jz run --jobid JOB -- CMD in the background, its output piped."""
    return subprocess.Popen([JZ, "run", "--socket", d.socket, "--jobid", str(job), "--"] + list(cmd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running_step(d, job, sid):
    def check():
        for s in show(d, job).get("steps") or []:
            if s["id"] == sid and s["state"] == "RUNNING":
                return s
        return None
    return wait_for(check, timeout=20, what="step %d.%d to run" % (job, sid))


def step_state(d, job, sid):
    return next(s for s in show(d, job)["steps"] if s["id"] == sid)


def test_cancel_one_step_and_the_job_goes_on(daemon_factory):
    d = solo(daemon_factory)
    a = submit(d, "--time", "10:00", "--", "sleep", "300")
    state_is(d, a, "RUNNING")
    p = run_step(d, a, "sleep", "300")
    try:
        running_step(d, a, 0)
        r = d.jz("cancel", "%d.0" % a)
        assert r.returncode == 0 and "cancelled 1 step" in r.stdout, r.stderr
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 128 + signal.SIGTERM, (p.returncode, err)
    assert "cancelled" in err, err
    s = step_state(d, a, 0)
    assert s["state"] == "CANCELLED", s
    assert show(d, a)["state"] == "RUNNING"
    # An ended step, a step that never was: refused.
    r = d.jz("cancel", "%d.0" % a)
    assert r.returncode == 1 and "ended already" in r.stderr, r.stderr
    r = d.jz("cancel", "%d.7" % a)
    assert r.returncode == 1 and "no step 7" in r.stderr, r.stderr
    assert d.jz("cancel", str(a)).returncode == 0


def test_srun_interrupted_cancels_its_step(daemon_factory):
    d = solo(daemon_factory)
    a = submit(d, "--time", "10:00", "--", "sleep", "300")
    state_is(d, a, "RUNNING")
    p = run_step(d, a, "sh", "-c", "echo started; exec sleep 301")
    try:
        assert p.stdout.readline().strip() == "started"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 128 + signal.SIGINT, (p.returncode, err)
    assert "interrupted: cancelling step %d.0" % a in err, err
    assert step_state(d, a, 0)["state"] == "CANCELLED"
    assert show(d, a)["state"] == "RUNNING"
    # The step's processes are gone.
    wait_for(lambda: subprocess.run(["pgrep", "-x", "-f", "sleep 301"], capture_output=True).returncode == 1,
             what="the step's task to go")
    assert d.jz("cancel", str(a)).returncode == 0


def unix(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def test_estimated_start_of_a_job_blocked_behind_a_running_one(daemon_factory):
    d = solo(daemon_factory)
    a = blocker(d)
    b = submit(d, "--gpus-per-node", str(gpus(d)), "--time", "5:00", "--name", "later", "--", "true")
    h = submit(d, "--hold", "--", "true")
    started = unix(show(d, a)["start_time"])

    def estimated():
        j = show(d, b)
        return j if j["est_start_time"] else None
    j = wait_for(estimated, what="an estimate")
    # When the running job's time limit frees its GPUs.
    assert abs(unix(j["est_start_time"]) - (started + 600)) <= 2, j
    assert show(d, h)["est_start_time"] is None
    # jz queue --start: the pending jobs, with START_TIME; N/A when unknown.
    r = d.jz("queue", "--start")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "START_TIME" in lines[0], r.stdout
    row_b = next(l for l in lines if l.split()[0] == str(b))
    local = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(unix(j["est_start_time"])))
    assert local in row_b, r.stdout
    row_h = next(l for l in lines if l.split()[0] == str(h))
    assert "N/A" in row_h, r.stdout
    assert not any(l.split()[0] == str(a) for l in lines[1:]), r.stdout  # running: not listed
    # %S in --format, and jz show.
    r = d.jz("queue", "--format", "%i %S", "--noheader")
    assert "%d %s" % (b, local) in r.stdout, r.stdout
    assert "est. start:  %s" % local in d.jz("show", str(b)).stdout
    assert d.jz("cancel", str(a), str(b), str(h)).returncode == 0


def test_who_may_hold_requeue_and_update(network):
    """The owner and their account's coordinator may; a teammate who sees
    the job only briefly may not; only an admin lengthens a running job."""
    from test_authz import COORDINATOR, RESEARCHER, TEAMMATE, Person
    d = network
    owner = Person(d, RESEARCHER, None, tcp=False)
    mate = Person(d, TEAMMATE, None, tcp=False)
    coord = Person(d, COORDINATOR, None, tcp=False)
    r = owner.jz("submit", "--hold", "--account", "lab", "--workdir", "/tmp", "--time", "10:00", "--", "true")
    assert r.returncode == 0, r.stderr
    held = int(r.stdout.strip())
    for args in (["release", str(held)], ["hold", str(held)], ["requeue", str(held)],
                 ["update", str(held), "--time", "1:00"]):
        r = mate.jz(*args)
        assert r.returncode == 1 and "belongs to %s" % RESEARCHER in r.stderr, (args, r.stderr)
    assert show(d, held)["time_limit"] == 600
    r = coord.jz("update", str(held), "--time", "5:00")
    assert r.returncode == 0 and "TimeLimit" in r.stdout, r.stderr
    assert show(d, held)["time_limit"] == 300
    # A running job of theirs: shorter yes, longer only by an admin.
    r = owner.jz("submit", "--json", "--account", "lab", "--workdir", "/tmp", "--time", "10:00", "--",
                 "sleep", "300")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["id"]
    state_is(d, run, "RUNNING")
    r = owner.jz("update", str(run), "--time", "20:00")
    assert r.returncode == 1 and "only an admin may lengthen" in r.stderr, r.stderr
    assert show(d, run)["time_limit"] == 600
    r = owner.jz("update", str(run), "--time", "8:00")
    assert r.returncode == 0, r.stderr
    r = d.jz("update", str(run), "--time", "30:00")  # root on the controller: an admin
    assert r.returncode == 0 and "TimeLimit 0-00:08:00 -> 0-00:30:00" in r.stdout, r.stdout + r.stderr
    assert show(d, run)["time_limit"] == 1800
    assert d.jz("cancel", str(run), str(held)).returncode == 0

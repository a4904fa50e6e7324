"""Execution on a node with real daemons and real processes: ranks and
their environment, CPU binding, cgroup memory limits, time limits and
their signals, cancel of a whole process tree, bad input, jz logs."""
import errno
import json
import os
import subprocess
import time

import pytest

from conftest import JZ, wait_for

FAST = ["--election-timeout", "200ms", "--heartbeat-interval", "100ms", "--kill-grace", "1s"]


def solo(daemon_factory, extra=(), **kw):
    d = daemon_factory(name="solo", extra=FAST + list(extra), **kw)
    wait_for(lambda: d.jz_json("status")["leader"] == "solo", what="solo to lead")
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="its node to register")
    return d


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def ended(d, jid, timeout=20):
    return wait_for(lambda: (lambda j: j if j["state"] not in ("PENDING", "RUNNING") else None)(
        d.jz_json("show", str(jid))), timeout=timeout, what="job %d to end" % jid)


def host_cpus():
    return len(os.sched_getaffinity(0))


def test_ranks_get_the_distributed_environment_and_their_own_cpus(daemon_factory):
    d = solo(daemon_factory)
    n = min(host_cpus(), 4)
    jid = submit(d, "--tasks-per-node", str(n), "--output", "out-%t.txt", "--", "sh", "-c",
                 'echo "R=$RANK L=$LOCAL_RANK W=$WORLD_SIZE NR=$NODE_RANK LW=$LOCAL_WORLD_SIZE '
                 'M=$MASTER_ADDR P=$MASTER_PORT J=$JAZARI_JOB_ID '
                 'C=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"')
    job = ended(d, jid)
    assert job["state"] == "COMPLETED", job
    cpus = set()
    for t in range(n):
        line = open(os.path.join(d.dir, "out-%d.txt" % t)).read().strip()
        f = dict(kv.split("=", 1) for kv in line.split())
        assert f["R"] == f["L"] == str(t) and f["W"] == f["LW"] == str(n) and f["NR"] == "0", line
        assert f["M"] == "127.0.0.1" and f["P"] == str(29500 + jid % 1000) and f["J"] == str(jid), line
        cpus.add(f["C"])
    # Each task bound to a CPU of its own, as the allocation says.
    assert len(cpus) == n, cpus
    assert job["nodes"][0]["cpus"], job

    # jz logs reads every task's file, each line labelled with its source.
    r = d.jz("logs", str(jid))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == n and all(l.startswith("[solo:") and "W=%d" % n in l for l in lines), r.stdout


def test_time_limit_warns_then_terms_then_kills(daemon_factory):
    d = solo(daemon_factory)
    script = os.path.join(d.dir, "stubborn.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n#JZ --time 0:2\n#JZ --signal B:USR1@1\n"
                "trap 'echo warned' USR1\ntrap 'echo term-ignored' TERM\n"
                "echo started\nwhile :; do sleep 0.1; done\n")
    t0 = time.monotonic()
    jid = submit(d, script)
    job = ended(d, jid)
    took = time.monotonic() - t0
    assert job["state"] == "TIMEOUT" and "time limit" in job["reason"], job
    out = open(os.path.join(d.dir, "jazari-%d.out" % jid)).read()
    assert out.index("started") < out.index("warned") < out.index("term-ignored"), out
    assert 2.0 <= took < 10, took  # the limit, plus the 1 s grace before KILL


def test_cancel_kills_the_whole_process_tree(daemon_factory):
    d = solo(daemon_factory)
    pids = os.path.join(d.dir, "pids")
    jid = submit(d, "--", "sh", "-c", "sleep 300 & echo $! > %s; echo $$ >> %s; wait" % (pids, pids))
    wait_for(lambda: os.path.exists(pids) and len(open(pids).read().split()) == 2, what="the job to start")
    procs = [int(p) for p in open(pids).read().split()]
    assert d.jz("cancel", str(jid)).returncode == 0
    job = ended(d, jid)
    assert job["state"] == "CANCELLED"

    def gone(pid):
        try:
            return open("/proc/%d/stat" % pid).read().split()[2] == "Z"
        except OSError:
            return True
    wait_for(lambda: all(gone(p) for p in procs), what="the job's processes, background ones too, to die")


def cgroup_memory_available():
    if os.geteuid() != 0:
        return False
    with open("/proc/self/mountinfo") as f:
        info = f.read()
    return " - cgroup cgroup " in info and "memory" in info or " - cgroup2 " in info


@pytest.mark.skipif(not cgroup_memory_available(), reason="needs root and a cgroup memory controller")
def test_memory_limit_is_enforced_by_the_job_cgroup(daemon_factory):
    d = solo(daemon_factory)
    jid = submit(d, "--mem", "64M", "--", "/usr/bin/python3", "-c",
                 "import sys; x = b'x' * (256 << 20); print('survived', len(x))")
    job = ended(d, jid)
    assert job["state"] == "FAILED" and "out of memory" in job["reason"], job
    small = submit(d, "--mem", "64M", "--", "/usr/bin/python3", "-c", "x = b'x' * (8 << 20); print('fits')")
    assert ended(d, small)["state"] == "COMPLETED"


def test_bad_input_fails_the_job_at_once_and_the_node_stays_healthy(daemon_factory):
    d = solo(daemon_factory)
    bad_out = submit(d, "--output", "/nonexistent/dir/out.txt", "--", "true")
    job = ended(d, bad_out)
    assert job["state"] == "FAILED" and "cannot write the output /nonexistent/dir/out.txt" in job["reason"], job
    not_mine = submit(d, "--workdir", "/proc/1/fdinfo", "--", "true") if os.geteuid() != 0 else None
    if not_mine:
        assert ended(d, not_mine)["state"] == "FAILED"
    good = submit(d, "--", "true")
    assert ended(d, good)["state"] == "COMPLETED"
    assert d.jz_json("nodes")["nodes"][0]["state"] == "up"


def test_logs_follow_streams_until_the_job_ends(daemon_factory):
    d = solo(daemon_factory)
    jid = submit(d, "--", "sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done")
    r = subprocess.run([JZ, "logs", "--socket", d.socket, str(jid), "-f"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join("line %d\n" % i for i in range(1, 6)), r.stdout
    assert d.jz_json("show", str(jid))["state"] == "COMPLETED"
    js = d.jz_json("logs", str(jid))
    assert js["id"] == jid and "".join(c["data"] for c in js["chunks"]).count("line") == 5
    # Somebody else's file is not served, whatever path is asked for.
    r = d.jz("logs", "999")
    assert r.returncode == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to submit as another user")
def test_a_users_job_cannot_use_what_is_not_theirs(daemon_factory, tmp_path):
    """A root daemon runs a user's job as that user: a working directory or
    an output path the user may not use fails the job with the reason."""
    import pwd
    import tempfile
    nobody = pwd.getpwnam("nobody")
    sockdir = tempfile.mkdtemp(prefix="jazari-sock-", dir="/tmp")
    os.chmod(sockdir, 0o755)
    try:
        d = solo(daemon_factory, socket=os.path.join(sockdir, "jz.sock"))
        open_dir = tempfile.mkdtemp(prefix="jazari-open-", dir="/tmp")
        os.chmod(open_dir, 0o777)
        as_nobody = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups",
                     JZ, "submit", "--socket", d.socket, "--json"]

        def submit_as_nobody(*args):
            r = subprocess.run(as_nobody + list(args), capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)["id"]
        private = str(tmp_path)  # root's, mode 0700
        job = ended(d, submit_as_nobody("--workdir", private, "--", "true"))
        assert job["state"] == "FAILED" and "working directory %s" % private in job["reason"] \
            and "Permission denied" in job["reason"], job
        job = ended(d, submit_as_nobody("--workdir", open_dir, "--output", os.path.join(private, "x.out"),
                                        "--", "true"))
        assert job["state"] == "FAILED" and "cannot write the output" in job["reason"], job
        ok = ended(d, submit_as_nobody("--workdir", open_dir, "--", "sh", "-c", "id -u"))
        assert ok["state"] == "COMPLETED" and ok["user"] == "nobody", ok
        out = os.path.join(open_dir, "jazari-%d.out" % ok["id"])
        assert open(out).read().strip() == str(nobody.pw_uid) and os.stat(out).st_uid == nobody.pw_uid
        import shutil
        shutil.rmtree(open_dir)
    finally:
        import shutil
        shutil.rmtree(sockdir, ignore_errors=True)


def test_jobs_sharing_a_first_node_get_different_master_ports(daemon_factory):
    """MASTER_PORT is master_port + id mod 1000 unless another running job
    on the same first node has it: jobs 1 and 1001 both run on solo. (Job 1
    sleeps long enough to outlast 999 submissions under ASan; both are
    cancelled at the end.)"""
    d = solo(daemon_factory)
    first = submit(d, "--", "sh", "-c", "echo $MASTER_PORT; exec sleep 900")
    # Ids 2..1000 are taken by held jobs, cancelled at once.
    held = [submit(d, "--hold", "--", "true") for _ in range(999)]
    assert held[-1] == 1000
    assert d.jz("cancel", *map(str, held)).returncode == 0
    second = submit(d, "--", "sh", "-c", "echo $MASTER_PORT; exec sleep 900")
    assert second == 1001
    ports = []
    for jid in (first, second):
        job = wait_for(lambda: (lambda j: j if j["state"] == "RUNNING" else None)(d.jz_json("show", str(jid))),
                       what="job %d to run" % jid)
        out = os.path.join(d.dir, "jazari-%d.out" % jid)
        wait_for(lambda: os.path.exists(out) and open(out).read().strip(), what="its port")
        assert int(open(out).read()) == job["master_port"]
        ports.append(job["master_port"])
    assert ports == [29501, 29502], ports
    assert d.jz("cancel", str(first), str(second)).returncode == 0


def test_the_leader_backfills_short_jobs_without_delaying_the_head(daemon_factory):
    """FCFS + EASY in the leader (the simulator's own core): with 12 of 16
    GPUs busy for a minute, an 8-GPU job waits at the head; a 4-GPU job
    that ends before then runs at once; one without a time limit waits."""
    from conftest import hwloc_xml
    d = solo(daemon_factory, xml=hwloc_xml("nvidiaDGX2.xml"))
    a = submit(d, "--gpus-per-node", "12", "--time", "1:00", "--", "sleep", "60")
    wait_for(lambda: d.jz_json("show", str(a))["state"] == "RUNNING", what="the big job to run")
    head = submit(d, "--gpus-per-node", "8", "--", "true")
    short = submit(d, "--gpus-per-node", "4", "--time", "0:10", "--", "sleep", "5")
    endless = submit(d, "--gpus-per-node", "4", "--", "true")
    wait_for(lambda: d.jz_json("show", str(short))["state"] == "RUNNING", what="the short job to be backfilled")
    h = d.jz_json("show", str(head))
    assert h["state"] == "PENDING" and h["reason"] == "Resources", h  # it holds the reservation
    e = d.jz_json("show", str(endless))
    assert e["state"] == "PENDING" and e["reason"] == "Priority", e  # it could delay the head
    assert d.jz("cancel", str(a), str(head), str(short), str(endless)).returncode == 0


def test_dependencies_after_ok_and_after_any(daemon_factory):
    d = solo(daemon_factory)
    gate = os.path.join(d.dir, "gate")
    first = submit(d, "--", "sh", "-c", "while [ ! -e %s ]; do sleep 0.05; done; exit 4" % gate)
    ok = submit(d, "--after-ok", str(first), "--", "true")
    anyway = submit(d, "--dependency", "afterany:%d" % first, "--", "true")
    wait_for(lambda: d.jz_json("show", str(first))["state"] == "RUNNING", what="the first job to run")
    assert d.jz_json("show", str(ok))["reason"] == "Dependency"
    assert d.jz_json("show", str(anyway))["reason"] == "Dependency"
    open(gate, "w").close()
    assert ended(d, first)["state"] == "FAILED"
    assert ended(d, anyway)["state"] == "COMPLETED"  # after any end
    never = d.jz_json("show", str(ok))
    assert never["state"] == "PENDING" and never["reason"] == "DependencyNeverSatisfied", never
    assert never["after_ok"] == [first]
    r = d.jz("submit", "--after-ok", "999", "--workdir", d.dir, "--", "true")
    assert r.returncode == 1 and "no such job" in r.stderr
    r = d.jz("submit", "--after-ok", "x1", "--workdir", d.dir, "--", "true")
    assert r.returncode == 2 and "bad dependency" in r.stderr
    assert d.jz("cancel", str(ok)).returncode == 0


def test_job_array_with_a_throttle(daemon_factory):
    """--array 0-5%2: six jobs, never more than two running, each with its
    index; the output patterns name them."""
    from conftest import hwloc_xml
    d = solo(daemon_factory, xml=hwloc_xml("nvidiaDGX2.xml"))
    r = d.jz("submit", "--json", "--array", "0-5%2", "--workdir", d.dir, "--output", "arr-%A_%a.out", "--",
             "sh", "-c", "echo task $JAZARI_ARRAY_TASK_ID of $JAZARI_ARRAY_JOB_ID; sleep 0.5")
    assert r.returncode == 0, r.stderr
    sub = json.loads(r.stdout)
    first, count = sub["id"], sub["count"]
    assert count == 6
    ids = list(range(first, first + count))
    most = 0
    def done():
        nonlocal most
        # One snapshot of the state (jz show per job would mix moments).
        jobs = [j for j in d.jz_json("queue", "--all")["jobs"] if j["id"] in ids]
        most = max(most, sum(j["state"] == "RUNNING" for j in jobs))
        return len(jobs) == count and all(j["state"] == "COMPLETED" for j in jobs) and jobs
    jobs = wait_for(done, timeout=30, what="the array to complete")
    jobs = [d.jz_json("show", str(i)) for i in ids]
    assert most <= 2, most
    assert [j["array_task_id"] for j in jobs] == list(range(6))
    assert all(j["array_job_id"] == first for j in jobs)
    for k in range(6):
        with open(os.path.join(d.dir, "arr-%d_%d.out" % (first, k))) as f:
            assert f.read() == "task %d of %d\n" % (k, first)
    r = d.jz("submit", "--array", "5-1", "--workdir", d.dir, "--", "true")
    assert r.returncode == 2 and "--array" in r.stderr  # jz submit checks it first, with the leader's parser


def test_gpu_model_constraint_picks_the_nodes_that_have_it(daemon_factory):
    """A DGX-2 (V100) and an HGX H100 node: --gpu-model goes by the words of
    the model's name; a model no node has is refused at submit."""
    from conftest import fixture_xml, free_port, hwloc_xml
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port, xml=hwloc_xml("nvidiaDGX2.xml"),
                         extra=["--controllers", spec] + FAST)
    daemon_factory(name="hgx", xml=fixture_xml("hgx-h100-8gpu.xml"), extra=["--controllers", spec] + FAST)
    wait_for(lambda: ctl.jz_json("status")["nodes_up"] == 2, what="both nodes up")
    h100 = submit(ctl, "--gpu-model", "h100", "--gpus-per-node", "2", "--", "true")
    v100 = submit(ctl, "--gpu-model", "V100", "--gpus-per-node", "2", "--", "true")
    assert ended(ctl, h100)["nodes"][0]["name"] == "hgx"
    assert ended(ctl, v100)["nodes"][0]["name"] == "ctl"
    r = ctl.jz("submit", "--gpu-model", "A100", "--workdir", ctl.dir, "--", "true")
    assert r.returncode == 1 and "--gpu-model A100: no node" in r.stderr
    r = ctl.jz("submit", "--gpu-model", "H100", "--gpus-per-node", "12", "--workdir", ctl.dir, "--", "true")
    assert r.returncode == 1  # H100 nodes have 8


PROBE_GPUS = r"""
import errno, json, os, sys
dev, n = sys.argv[1], int(sys.argv[2])
seen = {}
for i in range(n):
    try:
        os.close(os.open("%s/nvidia%d" % (dev, i), os.O_RDWR))
        seen[i] = "opened"
    except OSError as e:
        seen[i] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps({"visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "open": seen}))
"""


def gpu_fence_available():
    if os.geteuid() != 0:
        return False
    with open("/proc/self/mountinfo") as f:
        info = f.read()
    return (" - cgroup cgroup " in info and "devices" in info) or " - cgroup2 " in info


def fake_gpu_devices(tmp_path, n):
    """Device nodes for GPUs 0..n-1 (char 195:N, as NVIDIA's) in a directory
    of the test's: without the driver, opening one that is let through
    fails with ENXIO; one that is fenced off, with EPERM."""
    dev = tmp_path / "dev"
    dev.mkdir()
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(dev), 0o755)
    for i in list(range(n)) + [255]:
        os.mknod(str(dev / ("nvidia%d" % i if i < 255 else "nvidiactl")), 0o20666, os.makedev(195, i))
        os.chmod(str(dev / ("nvidia%d" % i if i < 255 else "nvidiactl")), 0o666)
    return str(dev)


def probe_job(d, dev, gpus, hold=None):
    cmd = PROBE_GPUS if not hold else PROBE_GPUS + "\nimport time\nwhile not os.path.exists(%r): time.sleep(0.05)\n" % hold
    return submit(d, "--gpus-per-node", str(gpus), "--", "/usr/bin/python3", "-c", cmd, dev, "16")


def probe_result(d, jid):
    job = ended(d, jid)
    assert job["state"] == "COMPLETED", job
    out = open(os.path.join(d.dir, "jazari-%d.out" % jid)).read()
    return json.loads(out.splitlines()[0])


@pytest.mark.skipif(not gpu_fence_available(), reason="needs root and a devices cgroup (v1) or cgroup2")
@pytest.mark.parametrize("version", ["auto", "2"])
def test_a_job_opens_only_its_own_gpus(daemon_factory, tmp_path, version):
    """CUDA_VISIBLE_DEVICES is a hint a job may ignore: the devices cgroup
    (v1 devices.deny; v2 a device program) is what keeps two jobs on one
    node off each other's GPUs. Two 4-GPU jobs run at once on a 16-GPU node;
    each opens its own /dev/nvidiaN and nvidiactl, and every other GPU is
    refused (EPERM) while the job runs."""
    from conftest import hwloc_xml
    dev = fake_gpu_devices(tmp_path, 16)
    d = solo(daemon_factory, xml=hwloc_xml("nvidiaDGX2.xml"), extra=["--cgroup-version", version])
    release = str(tmp_path / "release")
    first = probe_job(d, dev, 4, hold=release)
    wait_for(lambda: d.jz_json("show", str(first))["state"] == "RUNNING", what="the first job to run")
    second = probe_job(d, dev, 4)
    two = probe_result(d, second)
    open(release, "w").close()
    one = probe_result(d, first)
    for r in (one, two):
        mine = {int(x) for x in r["visible"].split(",")}
        assert len(mine) == 4, r
        for i, what in r["open"].items():
            assert what == ("ENXIO" if int(i) in mine else "EPERM"), (i, r)
    assert not set(one["visible"].split(",")) & set(two["visible"].split(","))
    # Outside every job nothing is fenced.
    with pytest.raises(OSError) as e:
        os.open(os.path.join(dev, "nvidia0"), os.O_RDWR)
    assert e.value.errno == errno.ENXIO


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make device nodes")
def test_gpu_isolation_off_leaves_every_gpu_open(daemon_factory, tmp_path):
    from conftest import hwloc_xml
    dev = fake_gpu_devices(tmp_path, 16)
    d = solo(daemon_factory, xml=hwloc_xml("nvidiaDGX2.xml"), extra=["--gpu-isolation", "off"])
    r = probe_result(d, probe_job(d, dev, 2))
    assert len(r["visible"].split(",")) == 2 and set(r["open"].values()) == {"ENXIO"}, r


def cgroup2_without_memory():
    """The path of a cgroup2 mount that lacks the memory controller (a v1
    host's "unified"), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if " - cgroup2 " in line:
                mnt = line.split()[4]
                try:
                    if "memory" not in open(os.path.join(mnt, "cgroup.controllers")).read().split():
                        return mnt
                except OSError:
                    pass
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not cgroup2_without_memory(),
                    reason="needs root and a cgroup2 mount without the memory controller")
def test_a_job_whose_group_cannot_be_made_does_not_run_unfenced(daemon_factory, tmp_path):
    """On cgroup v2 without the memory controller a --mem limit cannot be
    kept, so the job's group is not made: on a GPU node the job must then
    not start at all, rather than start seeing every GPU."""
    from conftest import hwloc_xml
    dev = fake_gpu_devices(tmp_path, 16)
    d = solo(daemon_factory, xml=hwloc_xml("nvidiaDGX2.xml"), extra=["--cgroup-version", "2"])
    jid = submit(d, "--gpus-per-node", "2", "--mem", "64M", "--", "/usr/bin/python3", "-c", PROBE_GPUS, dev, "16")
    job = ended(d, jid)
    assert job["state"] == "FAILED" and "GPU isolation cannot be set" in job["reason"], job
    assert not os.path.exists(os.path.join(d.dir, "jazari-%d.out" % jid)) or \
        "opened" not in open(os.path.join(d.dir, "jazari-%d.out" % jid)).read()


def test_sbatch_script_options_and_errors(daemon_factory, tmp_path):
    """A Slurm script's #SBATCH lines (quotes, trailing comments) become the
    job's options; --parsable prints the id alone; an option without effect
    warns once; an unknown one is refused with its line, nothing submitted."""
    d = solo(daemon_factory)
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\n"
                      "#SBATCH --job-name=\"my run\"   # a comment\n"
                      "#SBATCH -o %x-%j.out --mail-type=END\n"
                      "#SBATCH --export=NONE,GREETING=hello\n"
                      "echo \"$GREETING from the batch script\"\n")
    r = d.jz("submit", "--parsable", "-D", d.dir, str(script))
    assert r.returncode == 0, r.stderr
    assert "--mail-type has no effect here" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    job = int(r.stdout)
    shown = ended(d, job)
    assert shown["state"] == "COMPLETED" and shown["name"] == "my run", shown
    with open(os.path.join(d.dir, "my run-%d.out" % job)) as f:
        assert f.read() == "hello from the batch script\n"
    before = d.jz_json("queue", "--all")["jobs"]
    script.write_text("#!/bin/sh\n#SBATCH -N 1\n#SBATCH --frobnicate\ntrue\n")
    r = d.jz("submit", str(script))
    assert r.returncode == 2 and "train.sh line 3: unrecognized option '--frobnicate'" in r.stderr, r.stderr
    r = d.jz("submit", "--nodelist=n1", "--", "true")
    assert r.returncode == 2 and "--nodelist is not supported here" in r.stderr, r.stderr
    assert d.jz_json("queue", "--all")["jobs"] == before

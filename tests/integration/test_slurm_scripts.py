"""Scripts written for Slurm, submitted unchanged with `jz submit SCRIPT`
on a two-node network of real daemons, and judged by what they really
did: the files they wrote (with %x %j %A %a expanded), the array's tasks,
the exit code, the environment they saw.

The scripts, in tests/slurm_scripts/, were written for this project in
the style of universities' cluster documentation (see its README): the
test copies each byte for byte into a fresh submit directory and changes
nothing. A script that needs a command this build does not have yet
(scontrol) is skipped with the reason."""
import hashlib
import json
import os
import re
import shutil
import time

import pytest

from conftest import BUILD, JZ, ROOT, fixture_xml, free_port, run, wait_for

SCRIPTS = os.path.join(ROOT, "tests", "slurm_scripts")
FAST = ["--heartbeat-interval", "100ms", "--node-timeout", "3s", "--kill-grace", "1s"]
HAS_SCONTROL = os.path.exists(os.path.join(BUILD, "slurm", "scontrol"))


def network(daemon_factory):
    """Two GPU nodes (the HGX H100 fixture: 8 GPUs, 32 CPUs each), ctl leading."""
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    xml = fixture_xml("hgx-h100-8gpu.xml")
    ctl = daemon_factory(name="ctl", port=port, xml=xml,
                         extra=["--controllers", spec, "--election-timeout", "200ms",
                                "--cluster-name", "campus"] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    daemon_factory(name="agent", xml=xml, extra=["--controllers", spec] + FAST)
    wait_for(lambda: {n["name"] for n in ctl.jz_json("nodes")["nodes"] if n["state"] == "up"} == {"ctl", "agent"},
             timeout=20, what="both nodes up")
    return ctl


def submit(ctl, work, name, *opts, env=None):
    """Copies script `name` unchanged into work and submits it from there;
    returns (job id, jz's standard error)."""
    src = os.path.join(SCRIPTS, name)
    dst = os.path.join(str(work), name)
    shutil.copyfile(src, dst)
    with open(src, "rb") as a, open(dst, "rb") as b:
        assert a.read() == b.read()
    r = run([JZ, "submit", "--socket", ctl.socket, "--json"] + list(opts) + [dst], cwd=str(work),
            env=dict(os.environ, **(env or {})))
    assert r.returncode == 0, "%s refused: %s" % (name, r.stderr)
    return json.loads(r.stdout)["id"], r.stderr


def ended(ctl, jid, timeout=60):
    """The job once it has ended (jid: an id or ARRAYID_INDEX)."""
    final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "LOST"}
    return wait_for(lambda: (lambda j: j if j["state"] in final else None)(ctl.jz_json("show", str(jid))),
                    timeout=timeout, what="job %s to end" % jid)


def story(ctl, jid, work):
    """What to print when a check fails: the job, and every file it left."""
    parts = [json.dumps(ctl.jz_json("show", str(jid)), indent=1)]
    for root, _, files in os.walk(str(work)):
        for f in sorted(files):
            p = os.path.join(root, f)
            if not f.endswith((".sbatch", ".sh")) and os.path.getsize(p) < 20000:
                parts.append("--- %s\n%s" % (os.path.relpath(p, str(work)), open(p, errors="replace").read()))
    return "\n".join(parts)


def read(work, name):
    p = os.path.join(str(work), name)
    assert os.path.exists(p), "no %s in %s: %s" % (name, work, sorted(os.listdir(str(work))))
    with open(p) as f:
        return f.read()


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "submit-dir"
    d.mkdir()
    return d


def test_every_script_is_here_and_unchanged_by_tests():
    """The dozen, each with its #SBATCH lines; nothing else in the folder but the README."""
    names = sorted(os.listdir(SCRIPTS))
    scripts = [n for n in names if n != "README.md"]
    assert len(scripts) == 12, names
    for n in scripts:
        text = open(os.path.join(SCRIPTS, n)).read()
        assert text.startswith("#!/"), n
        assert "#SBATCH" in text, n


def test_hello_names_its_output_after_the_job_and_warns_of_mail(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, err = submit(ctl, work, "01-hello.sbatch")
    # --mail-type and --mail-user: understood, without effect here: said so.
    assert "mail-type" in err and "mail-user" in err, err
    job = ended(ctl, jid)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED" and job["exit_code"] == 0, s
    out = read(work, "hello-%d.out" % jid)  # -o %x-%j.out
    assert "Job %d (hello) on " % jid in out and "sum=500500" in out, s
    assert "Working directory: %s" % work in out, s  # the submit directory
    assert job["time_limit"] == 300, s  # -t 5: minutes


def test_array_sweep_gives_each_task_its_files_and_index(daemon_factory, work):
    ctl = network(daemon_factory)
    first, _ = submit(ctl, work, "02-array-sweep.sbatch")
    tasks = [ended(ctl, "%d_%d" % (first, i), timeout=120) for i in range(1, 11)]
    s = story(ctl, first, work)
    assert all(t["state"] == "COMPLETED" for t in tasks), s
    assert {t["time_limit"] for t in tasks} == {600} and {t["cpus_per_task"] for t in tasks} == {1}, s
    losses = {}
    for i in range(1, 11):
        out = read(work, "sweep_%d_%d.out" % (first, i))  # %A_%a
        err = read(work, "sweep_%d_%d.err" % (first, i))
        assert "array job %d task %d of 10 (min 1, max 10)" % (first, i) in err, s
        m = re.match(r"task (\d+) lr ([\d.]+) loss (\S+) w", out)
        assert m and int(m.group(1)) == i and abs(float(m.group(2)) - 0.005 * i) < 1e-9, s
        losses[i] = float(m.group(3))
    # A real descent: a larger step converges further in 200 steps.
    assert losses[10] < losses[1], losses
    # --array=1-10%2: never more than two tasks at once.
    spans = sorted((t["start_time"], t["end_time"]) for t in tasks)
    for start, _ in spans:
        assert sum(1 for s2, e2 in spans if s2 <= start < e2) <= 2, spans


def test_checksum_array_reads_its_part_and_writes_beside_it(daemon_factory, work):
    ctl = network(daemon_factory)
    (work / "data").mkdir()
    want = {}
    for i in range(4):
        text = "".join("sample %d line %d\n" % (i, k) for k in range(10 * (i + 1)))
        (work / "data" / ("part-%d.txt" % i)).write_text(text)
        want[i] = hashlib.sha256(text.encode()).hexdigest()
    first, _ = submit(ctl, work, "03-checksum-array.sh")
    tasks = [ended(ctl, "%d_%d" % (first, i)) for i in range(4)]
    s = story(ctl, first, work)
    assert [t["state"] for t in tasks] == ["COMPLETED"] * 4, s
    for i in range(4):
        line = read(work, "data/part-%d.txt.sha256" % i)
        assert line == "%s  data/part-%d.txt\n" % (want[i], i), s
        log = read(work, "checksums_%d_%d.log" % (first, i))  # --output %x_%A_%a.log
        assert log == "task %d: %d lines, %s\n" % (i, 10 * (i + 1), want[i][:16]), s


def test_a_missing_input_fails_the_task_under_set_e(daemon_factory, work):
    ctl = network(daemon_factory)
    (work / "data").mkdir()
    for i in (0, 1, 3):  # part-2 is missing
        (work / "data" / ("part-%d.txt" % i)).write_text("x\n")
    first, _ = submit(ctl, work, "03-checksum-array.sh")
    tasks = [ended(ctl, "%d_%d" % (first, i)) for i in range(4)]
    s = story(ctl, first, work)
    assert [t["state"] for t in tasks] == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"], s
    assert tasks[2]["exit_code"] == 1, s
    assert "missing input data/part-2.txt" in read(work, "checksums_%d_2.log" % first), s


def test_threads_follow_cpus_per_task(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "04-openmp-threads.sbatch")
    job = ended(ctl, jid, timeout=120)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    out = read(work, "primes-%d.out" % jid)
    assert job["time_limit"] == 300 and job["cpus_per_task"] == 2, s  # --time=0-00:05
    assert job["mem"] == 500 << 20, s
    assert re.search(r"^threads: 2 on 2 CPUs of (ctl|agent)$", out, re.M), s
    assert "primes below 50000: 5133" in out, s


def test_mpi_style_ranks_over_two_nodes_add_up_to_pi(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "05-mpi-pi.sbatch")
    job = ended(ctl, jid, timeout=120)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    out = read(work, "pi.%d.out" % jid)  # -o pi.%j.out
    assert job["time_limit"] == 600 and job["nodes_requested"] == 2 and job["tasks_per_node"] == 2, s
    assert "nodes: " in out and "(2), tasks: 4" in out, s
    ranks = re.findall(r"^rank (\d) of 4 on (\S+)$", out, re.M)
    assert sorted(r for r, _ in ranks) == ["0", "1", "2", "3"], s
    assert {n for _, n in ranks} == {"ctl", "agent"}, s
    assert "srun exit: 0" in out and "pi is about 3.14159265" in out, s


@pytest.mark.skipif(not HAS_SCONTROL, reason="needs scontrol show hostnames (build/slurm/scontrol not in this build)")
def test_torch_style_launch_finds_its_master_and_ranks(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "06-torch-ddp-launch.sbatch")
    job = ended(ctl, jid, timeout=120)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    out = read(work, "ddp-check-%d.out" % jid)
    first = job["nodes"][0]["name"]
    assert "MASTER_ADDR=%s " % first in out and "WORLD_SIZE=2" in out, s
    ranks = sorted(re.findall(r"^rank (\d)/2 local 0 gpus 1 master (\S+) allreduce 3$", out, re.M))
    assert [r for r, _ in ranks] == ["0", "1"], s
    # Every rank meets where the script said (a step keeps the MASTER_ADDR
    # and MASTER_PORT srun was called with, as under Slurm).
    assert {m for _, m in ranks} == {first}, s


def test_gres_gpu_gives_one_gpu_and_modules_are_optional(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "07-gpu-gres.sbatch")
    job = ended(ctl, jid)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    out = read(work, "gpu_%d.log" % jid)
    assert job["time_limit"] == 3600 and job["gpus_per_node"] == 1 and job["cpus_per_task"] == 4, s
    assert job["mem"] == 4 * (256 << 20), s  # --mem-per-cpu, times the CPUs
    m = re.search(r"^GPUs given: (\S+) \(SLURM_GPUS_ON_NODE=(\S+)\)$", out, re.M)
    assert m and len(m.group(1).split(",")) == 1 and m.group(2) == "1", s
    assert "CPUs: 4" in out, s
    # trace(A B) of the script's matrices, computed here
    n = 60
    a = [[(i * n + j) % 7 for j in range(n)] for i in range(n)]
    b = [[(i + 2 * j) % 5 for j in range(n)] for i in range(n)]
    trace = sum(a[i][k] * b[k][i] for i in range(n) for k in range(n))
    assert "trace %d" % trace in out, s


def test_gres_gpu_with_the_sites_module_function(daemon_factory, work, tmp_path):
    """A login shell's `module` (Lmod exports it as BASH_FUNC_module%%)
    reaches the batch script with the rest of the environment
    (--export=ALL), as under Slurm."""
    ctl = network(daemon_factory)
    trace = tmp_path / "module-calls"
    shell = ("module() { echo \"module $*\" >> %s; }; export -f module; "
             "exec %s submit --socket %s --json 07-gpu-gres.sbatch") % (trace, JZ, ctl.socket)
    shutil.copyfile(os.path.join(SCRIPTS, "07-gpu-gres.sbatch"), str(work / "07-gpu-gres.sbatch"))
    r = run(["bash", "-c", shell], cwd=str(work))
    assert r.returncode == 0, r.stderr
    jid = json.loads(r.stdout)["id"]
    job = ended(ctl, jid)
    assert job["state"] == "COMPLETED", story(ctl, jid, work)
    assert trace.read_text() == "module purge\nmodule load cuda/12.2\n"


def test_stage_in_and_out_of_the_jobs_tmpdir(daemon_factory, work):
    ctl = network(daemon_factory)
    text = "The cat sat on the mat. The mat was flat; the cat was not.\n" * 3
    (work / "input.txt").write_text(text)
    jid, _ = submit(ctl, work, "08-stage-tmpdir.sbatch")
    job = ended(ctl, jid)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    counts = read(work, "results/word-counts-%d.txt" % jid).split("\n")
    assert counts[0].split() == ["12", "the"] and counts[1].split() == ["6", "cat"], s
    log = read(work, "stage.%d.log" % jid)
    scratch = re.search(r"^scratch: (\S+)$", log, re.M).group(1)
    assert scratch.startswith("/") and not os.path.exists(scratch), s  # removed at the end
    assert "distinct words: 8" in log, s


def test_export_none_starts_from_a_clean_environment(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "09-export-none.sbatch", env={"LOGIN_SHELL_ONLY": "secret-ish"})
    job = ended(ctl, jid)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    assert read(work, "env-%d.txt" % jid).startswith("job %d name clean env\n" % jid), s  # quoted name
    env = dict(line.split("=", 1) for line in read(work, "env-dump-%d.txt" % jid).splitlines() if "=" in line)
    assert "LOGIN_SHELL_ONLY" not in env, s
    assert env["SLURM_JOB_ID"] == str(jid) and env["SLURM_SUBMIT_DIR"] == str(work), s
    assert job["time_limit"] == 120, s  # --time=2:00 (M:S) on a line with another option


def test_postprocessing_waits_for_the_whole_sweep(daemon_factory, work):
    ctl = network(daemon_factory)
    first, _ = submit(ctl, work, "02-array-sweep.sbatch")
    post, _ = submit(ctl, work, "10-postprocess.sbatch", "--dependency=afterok:%d" % first)
    job = ended(ctl, post, timeout=180)
    tasks = [ended(ctl, "%d_%d" % (first, i)) for i in range(1, 11)]
    s = story(ctl, post, work)
    assert job["state"] == "COMPLETED", s
    out = read(work, "best-%d.out" % post)
    assert "results: 10" in out, s  # every task had ended before it began
    assert job["start_time"] >= max(t["end_time"] for t in tasks), s
    best = min(range(1, 11), key=lambda i: float(read(work, "sweep_%d_%d.out" % (first, i)).split()[5]))
    assert "best lr %.3f loss" % (0.005 * best) in out, s


def test_a_failing_program_fails_the_job_with_its_code(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "11-fails-with-signal-trap.sbatch")
    job = ended(ctl, jid)
    s = story(ctl, jid, work)
    assert job["state"] == "FAILED" and job["exit_code"] == 3, s
    assert job["requeue"] is False and job["time_limit"] == 60, s
    w = ctl.jz("wait", str(jid))
    assert w.returncode == 3, w  # jz wait: the job's exit code
    out = read(work, "fragile.%d.out" % jid)
    assert "step 2: train" in out and "never reached" not in out and "USR1" not in out, s
    assert "diverged at epoch 3" in read(work, "fragile.%d.err" % jid), s
    assert json.loads(read(work, "ckpt-%d.json" % jid)) == {"epoch": 0}, s


def test_steps_in_parallel_then_one_over_both_nodes(daemon_factory, work):
    ctl = network(daemon_factory)
    jid, _ = submit(ctl, work, "12-steps-in-parallel.sbatch")
    job = ended(ctl, jid, timeout=120)
    s = story(ctl, jid, work)
    assert job["state"] == "COMPLETED", s
    out = read(work, "two-steps_%d.out" % jid)
    assert job["time_limit"] == 300 and job["nodes_requested"] == 2, s  # --time=5
    first, second = job["nodes"][0]["name"], job["nodes"][1]["name"]
    assert "A on %s: 100000" % first in out, s
    digest = hashlib.sha256("".join("%d\n" % i for i in range(1, 100001)).encode()).hexdigest()[:12]
    assert "B on %s: %s" % (second, digest) in out, s
    # srun -l: each line labelled with its task's rank.
    assert sorted(re.findall(r"^(\d): (\S+)$", out, re.M)) == [("0", os.uname().nodename),
                                                                 ("1", os.uname().nodename)], s
    assert out.rstrip().endswith("steps done"), s
    assert len(job["steps"]) == 3 and all(st["state"] == "COMPLETED" for st in job["steps"]), s

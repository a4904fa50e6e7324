"""Batch jobs as sbatch runs them, with real daemons on two nodes: the
script runs once, on the first node, with Slurm's environment; `srun`
inside it launches steps over the allocation through the daemons, their
output relayed back to the script's, their exit code returned; PyTorch's
gloo all-reduce over srun; a private TMPDIR removed at the end; steps in
`jz show`; what srun may not ask."""
import json
import os
import re
import stat

import pytest

from conftest import RUN_DIR, free_port, wait_for
from test_torch import PYTHON, SCRIPT as TORCH_SCRIPT, torch_missing

FAST = ["--heartbeat-interval", "100ms", "--node-timeout", "3s", "--kill-grace", "1s"]


def two_nodes(daemon_factory):
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms",
                                "--cluster-name", "atlas"] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    agent = daemon_factory(name="agent", extra=["--controllers", spec] + FAST)
    wait_for(lambda: {n["name"] for n in ctl.jz_json("nodes")["nodes"] if n["state"] == "up"} == {"ctl", "agent"},
             timeout=20, what="both nodes up")
    return ctl, agent


def run_script(d, work, text, *args, env=None, timeout=60):
    script = work / "job.sh"
    script.write_text(text)
    r = d.jz("submit", "--json", "--chdir", str(work), str(script), *args)
    assert r.returncode == 0, r.stderr
    jid = json.loads(r.stdout)["id"]
    w = d.jz("wait", str(jid), "--timeout", str(timeout), timeout=timeout + 30)
    job = d.jz_json("show", str(jid))
    out = work / ("jazari-%d.out" % jid)
    text = out.read_text() if out.exists() else "(no output file)"
    return jid, job, text, w


def env_of(text, tag):
    """KEY=VALUE pairs of the output's line that starts with tag."""
    for line in text.splitlines():
        if line.startswith(tag + " "):
            return dict(kv.split("=", 1) for kv in line[len(tag) + 1:].split())
    raise AssertionError("no %r line in:\n%s" % (tag, text))


def test_a_batch_script_runs_once_and_srun_launches_steps(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory)
    work = tmp_path / "work"
    work.mkdir()
    vars_ = ("SLURM_JOB_ID SLURM_JOB_NAME SLURM_JOB_NODELIST SLURM_NODELIST SLURM_NNODES SLURM_NTASKS "
             "SLURM_NTASKS_PER_NODE SLURM_SUBMIT_DIR SLURM_CLUSTER_NAME SLURMD_NODENAME "
             "SLURM_RESTART_COUNT SLURM_PROCID SLURM_JOB_NUM_NODES SLURM_TASKS_PER_NODE").split()
    show = " ".join("%s=$%s" % (v, v) for v in vars_)
    text = ("#!/bin/sh\n"
            "#SBATCH --nodes=2 --ntasks-per-node=2   # two of each\n"
            "#SBATCH --job-name=steps\n"
            "echo BATCH %s ARGS=$1,$(echo $2 | tr ' ' _) FROM_SHELL=$FROM_SHELL TMP=$TMPDIR\n"
            "test -d \"$TMPDIR\" && test -O \"$TMPDIR\" && echo TMPDIR_OK $(stat -c %%a \"$TMPDIR\")\n"
            "srun sh -c 'echo TASK P=$SLURM_PROCID L=$SLURM_LOCALID N=$SLURMD_NODENAME S=$SLURM_STEP_ID "
            "W=$WORLD_SIZE R=$RANK T=$SLURM_NTASKS X=$FROM_SHELL; echo OOPS $SLURM_PROCID >&2'\n"
            "echo FIRST rc=$?\n"
            "srun -n 1 sh -c 'echo ONE on $SLURMD_NODENAME; exit 3'\n"
            "echo SECOND rc=$?\n"
            "srun --nodes 1 --relative 1 sh -c 'echo REL $SLURM_PROCID on $SLURMD_NODENAME'\n"
            "exit 0\n") % show
    ctl_env = {"FROM_SHELL": "venv-on"}
    os.environ.update(ctl_env)
    try:
        jid, job, out, w = run_script(ctl, work, text, "a1", "b 2")
    finally:
        del os.environ["FROM_SHELL"]
    story = "%s\n%s\n%s" % (json.dumps(job), out, w.stderr)
    assert job["state"] == "COMPLETED" and w.returncode == 0, story
    # The script ran once, on the first node, with the job's environment.
    assert out.count("BATCH ") == 1, story
    b = env_of(out, "BATCH")
    assert b["SLURM_JOB_ID"] == str(jid) and b["SLURM_JOB_NAME"] == "steps", story
    assert b["SLURMD_NODENAME"] == job["nodes"][0]["name"], story
    names = sorted(n["name"] for n in job["nodes"])
    assert sorted(b["SLURM_JOB_NODELIST"].split(",")) == names == ["agent", "ctl"], story
    assert b["SLURM_NNODES"] == b["SLURM_JOB_NUM_NODES"] == "2" and b["SLURM_NTASKS"] == "4", story
    assert b["SLURM_NTASKS_PER_NODE"] == "2" and b["SLURM_TASKS_PER_NODE"] == "2(x2)", story
    assert b["SLURM_SUBMIT_DIR"] == RUN_DIR and b["SLURM_CLUSTER_NAME"] == "atlas", story
    assert b["SLURM_RESTART_COUNT"] == "0" and b["SLURM_PROCID"] == "0", story
    assert b["ARGS"] == "a1,b_2", story  # the script's own arguments ("b 2" is one word)
    assert b["FROM_SHELL"] == "venv-on", story  # --export=ALL by default
    assert "TMPDIR_OK 700" in out, story
    assert not os.path.exists(b["TMP"]), "the job's TMPDIR outlived it: " + b["TMP"]
    # The first step: 4 tasks over both nodes, each with its rank.
    tasks = re.findall(r"^TASK (.*)$", out, re.M)
    assert len(tasks) == 4, story
    seen = {}
    for t in tasks:
        f = dict(kv.split("=", 1) for kv in t.split())
        assert f["S"] == "0" and f["T"] == f["W"] == "4" and f["R"] == f["P"] and f["X"] == "venv-on", story
        seen[int(f["P"])] = (f["N"], int(f["L"]))
    first = job["nodes"][0]["name"]
    second = job["nodes"][1]["name"]
    assert seen == {0: (first, 0), 1: (first, 1), 2: (second, 0), 3: (second, 1)}, story
    # Its standard error came back too, and srun returned the step's code.
    assert len(re.findall(r"^OOPS \d$", out, re.M)) == 4, story
    assert "FIRST rc=0" in out and "SECOND rc=3" in out, story
    assert "ONE on %s" % first in out, story
    # -N 1 from the second node: that node's two tasks (the job's per node)
    assert sorted(re.findall(r"^REL (\d) on (\S+)$", out, re.M)) == [("0", second), ("1", second)], story
    # The steps, in jz show.
    steps = job["steps"]
    assert [s["state"] for s in steps] == ["COMPLETED", "FAILED", "COMPLETED"], story
    assert [s["exit_code"] for s in steps] == [0, 3, 0] and steps[0]["ntasks"] == 4, story
    assert steps[0]["step_id"] == "%d.0" % jid and sorted(steps[0]["nodes"]) == names, story
    human = ctl.jz("show", str(jid)).stdout
    assert "step:        %d.1 FAILED sh exit code 3" % jid in human, human

    assert agent.stop() == 0, agent.log()
    assert ctl.stop() == 0, ctl.log()


def test_what_a_step_may_not_ask(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory)
    work = tmp_path / "work"
    work.mkdir()
    text = ("#!/bin/sh\n#SBATCH -N 1 -n 1\n"
            "srun -n 8 true; echo TOO_MANY rc=$?\n"
            "srun --nodes 2 true; echo TOO_WIDE rc=$?\n"
            "srun --gpus-per-node 1 true; echo NO_GPU rc=$?\n"
            "srun --no-such-option true; echo BAD rc=$?\n")
    jid, job, out, w = run_script(ctl, work, text)
    story = "%s\n%s" % (json.dumps(job), out)
    assert job["state"] == "COMPLETED", story
    assert re.search(r"needs 8 CPUs on \S+ \(8 tasks x 1\); the job holds 1 there", out), story
    assert "TOO_MANY rc=1" in out and "TOO_WIDE rc=1" in out and "NO_GPU rc=1" in out, story
    assert "BAD rc=2" in out and "--no-such-option" in out, story
    assert job["steps"] == [], story  # nothing refused was launched
    # Outside a job, srun makes an allocation of its own (test_interactive.py).
    assert agent.stop() == 0
    assert ctl.stop() == 0


def test_torch_all_reduce_through_srun_in_a_batch_script(daemon_factory, tmp_path):
    why = torch_missing()
    if why:
        pytest.skip("%s cannot import torch with gloo: %s" % (PYTHON, why))
    ctl, agent = two_nodes(daemon_factory)
    work = tmp_path / "work"
    work.mkdir()
    text = ("#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=2\n#SBATCH --time=10:00\n"
            "echo starting on $SLURM_JOB_NODELIST\n"
            "srun %s %s\n" % (PYTHON, TORCH_SCRIPT))
    jid, job, out, w = run_script(ctl, work, text, timeout=150)
    story = "%s\n%s" % (json.dumps(job), out)
    assert job["state"] == "COMPLETED" and w.returncode == 0, story
    oks = re.findall(r"^rank (\d+)/(\d+) local (\d+)/(\d+) node (\d+): all_reduce ok \(10\.0\)$", out, re.M)
    assert sorted((int(r), int(n)) for r, _, _, _, n in oks) == [(0, 0), (1, 0), (2, 1), (3, 1)], story
    assert job["steps"][0]["state"] == "COMPLETED", story
    assert agent.stop() == 0
    assert ctl.stop() == 0

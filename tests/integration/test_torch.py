"""A researcher's distributed job end to end: PyTorch's gloo all_reduce over
2 nodes x 2 tasks, each node a real jazarid on this machine (a controller
that is also a node, and an agent), and the job as one would submit it:
`jz submit --nodes 2 --tasks-per-node 2 -- python3 train.py`. The ranks
find each other only through the environment the daemons give each task
(MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE,
NODE_RANK), as under Slurm or torchrun."""
import json
import os
import re
import subprocess

import pytest

from conftest import free_port, wait_for

PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_allreduce.py")


def torch_missing():
    """Why the job's interpreter cannot run the script, or None."""
    try:
        r = subprocess.run([PYTHON, "-c", "import torch.distributed as d; assert d.is_gloo_available()"],
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]


def test_torch_all_reduce_over_two_nodes_of_two_tasks(daemon_factory, tmp_path):
    why = torch_missing()
    if why:
        pytest.skip("%s cannot import torch with gloo (deploy/deps.sh installs python3-torch): %s" % (PYTHON, why))
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    fast = ["--heartbeat-interval", "100ms", "--node-timeout", "2s"]
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms"] + fast)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    agent = daemon_factory(name="agent", extra=["--controllers", spec] + fast)

    def up():
        return {n["name"] for n in ctl.jz_json("nodes")["nodes"] if n["state"] == "up"}
    wait_for(lambda: up() == {"ctl", "agent"}, timeout=20, what="both nodes to be up")

    # Both nodes share this machine's file system: both write to one file.
    work = tmp_path / "work"
    work.mkdir()
    r = ctl.jz("submit", "--json", "--name", "allreduce", "--nodes", "2", "--tasks-per-node", "2",
                 "--workdir", str(work), "--", PYTHON, SCRIPT)
    assert r.returncode == 0, r.stderr
    jid = json.loads(r.stdout)["id"]
    out = work / ("jazari-%d.out" % jid)

    w = ctl.jz("wait", str(jid), "--timeout", "120", timeout=150)
    job = ctl.jz_json("show", str(jid))
    text = out.read_text() if out.exists() else "(no %s)" % out
    story = "jz wait: rc %d %s\njob: %s\noutput:\n%s" % (w.returncode, w.stderr.strip(), json.dumps(job), text)
    assert job["nodes_requested"] == 2 and job["tasks_per_node"] == 2, story
    assert sorted(n["name"] for n in job["nodes"]) == ["agent", "ctl"], story
    assert job["state"] == "COMPLETED" and job["exit_code"] == 0 and w.returncode == 0, story

    # One line per rank, each from the node the rank belongs to.
    oks = re.findall(r"^rank (\d+)/(\d+) local (\d+)/(\d+) node (\d+): all_reduce ok \(10\.0\)$", text, re.M)
    assert len(oks) == 4, story
    ranks = sorted((int(r), int(w), int(lr), int(lw), int(n)) for r, w, lr, lw, n in oks)
    assert ranks == [(0, 4, 0, 2, 0), (1, 4, 1, 2, 0), (2, 4, 0, 2, 1), (3, 4, 1, 2, 1)], story
    assert "all_reduce mismatch" not in text and "failed" not in text, story

    assert agent.stop() == 0, agent.log()
    assert ctl.stop() == 0, ctl.log()

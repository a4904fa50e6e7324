"""Drain and resume (jz drain, jz resume), node states with their reasons,
and the events an admin keeps open (jz events), on real daemons: a
controller and an agent with eight GPUs (a real machine's topology)."""
import json
import os
import select
import subprocess
import time

from conftest import JZ, fixture_xml, wait_for
from test_steps import FAST

H100 = fixture_xml("hgx-h100-8gpu.xml")


def network(daemon_factory, tmp_path, agent_xml=H100):
    from conftest import free_port
    for d in ("tmp-ctl", "tmp-gpu1"):
        (tmp_path / d).mkdir(exist_ok=True)
        os.chmod(str(tmp_path / d), 0o1777)
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms", "--gpu-isolation", "off",
                                "--tmp-dir", str(tmp_path / "tmp-ctl")] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    agent = daemon_factory(name="gpu1", xml=agent_xml,
                           extra=["--controllers", spec, "--gpu-isolation", "off",
                                  "--tmp-dir", str(tmp_path / "tmp-gpu1")] + FAST)
    wait_for(lambda: node(ctl, "gpu1") and node(ctl, "gpu1")["state"] == "up", what="gpu1 up")
    return ctl, agent


def node(ctl, name):
    for n in ctl.jz_json("nodes")["nodes"]:
        if n["name"] == name:
            return n
    return None


def job(ctl, jid):
    return ctl.jz_json("show", str(jid))


def submit(ctl, *args):
    r = ctl.jz("submit", *args)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def events(ctl, *args):
    return ctl.jz_json("events", *args)["events"]


def test_drain_lets_jobs_finish_and_resume_returns_the_node(daemon_factory, tmp_path):
    ctl, agent = network(daemon_factory, tmp_path)
    gate = tmp_path / "gate"
    held = submit(ctl, "--gpus-per-node", "2", "--name", "held", "--",
                  "sh", "-c", "while [ ! -e %s ]; do sleep 0.1; done" % gate)
    wait_for(lambda: job(ctl, held)["state"] == "RUNNING", what="the GPU job to run")
    assert job(ctl, held)["nodes"][0]["name"] == "gpu1"
    r = ctl.jz("drain", "gpu1", "--reason", "fan replacement, ticket 4411")
    assert r.returncode == 0, r.stderr
    assert "draining" in r.stdout and "fan replacement" in r.stdout, r.stdout
    n = node(ctl, "gpu1")
    assert n["state"] == "draining" and n["reason"] == "fan replacement, ticket 4411", n
    assert n["reason_by"] == "root" and n["since"].endswith("Z"), n
    # Nothing new starts there; what runs goes on.
    later = submit(ctl, "--gpus-per-node", "1", "--name", "later", "--", "true")
    wait_for(lambda: job(ctl, later)["reason"], what="a reason for the waiting job")
    assert job(ctl, later)["state"] == "PENDING" and job(ctl, held)["state"] == "RUNNING"
    # The running job ends: drained.
    gate.write_text("")
    wait_for(lambda: job(ctl, held)["state"] == "COMPLETED", what="the held job to finish")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "drained", what="gpu1 drained")
    assert job(ctl, later)["state"] == "PENDING"
    # Resume: the node takes work again.
    r = ctl.jz("resume", "gpu1")
    assert r.returncode == 0 and "node gpu1: up" in r.stdout, r.stdout + r.stderr
    wait_for(lambda: job(ctl, later)["state"] == "COMPLETED", what="the waiting job to run after resume")
    n = node(ctl, "gpu1")
    assert n["state"] == "up" and n["reason"] is None, n
    kinds = [(e["kind"], e["node"]) for e in events(ctl)]
    assert ("node_drain", "gpu1") in kinds and ("node_resume", "gpu1") in kinds, kinds
    assert ("leader", "ctl") in kinds and ("node_up", "gpu1") in kinds, kinds
    drain = [e for e in events(ctl) if e["kind"] == "node_drain"][0]
    assert drain["text"] == "fan replacement, ticket 4411" and drain["by"] == "root", drain


def test_drain_now_requeues_and_a_gpu_drain_keeps_the_rest_working(daemon_factory, tmp_path):
    ctl, agent = network(daemon_factory, tmp_path)
    # Eight GPUs: a job on all of them, drained --now: requeued, not restarted there.
    wide = submit(ctl, "--gpus-per-node", "8", "--name", "wide", "--", "sleep", "300")
    wait_for(lambda: job(ctl, wide)["state"] == "RUNNING", what="the wide job to run")
    r = ctl.jz("drain", "gpu1", "--gpu", "3", "--reason", "XID 79 by hand", "--now")
    assert r.returncode == 0, r.stderr
    assert "GPU 3" in r.stdout, r.stdout
    wait_for(lambda: job(ctl, wide)["state"] == "PENDING", what="the job on the drained GPU requeued")
    j = job(ctl, wide)
    assert j["attempt"] == 1, j
    assert "GPU 3 of node gpu1 drained: XID 79 by hand" in json.dumps(events(ctl)), events(ctl)
    n = node(ctl, "gpu1")
    assert n["state"] == "up" and n["gpus_drained"] == 1, n
    assert n["gpu_drains"][0]["gpu"] == 3 and n["gpu_drains"][0]["reason"] == "XID 79 by hand", n
    wait_for(lambda: node(ctl, "gpu1")["gpu_drains"][0]["state"] == "drained", what="GPU 3 drained")
    # Seven GPUs remain: an eight-GPU job waits, a seven-GPU one runs, never on GPU 3.
    assert node(ctl, "gpu1")["gpus_free"] == 7
    seven = submit(ctl, "--gpus-per-node", "7", "--name", "seven", "--", "sleep", "300")
    wait_for(lambda: job(ctl, seven)["state"] == "RUNNING", what="a seven-GPU job beside the drained GPU")
    assert 3 not in job(ctl, seven)["nodes"][0]["gpus"], job(ctl, seven)
    assert job(ctl, wide)["state"] == "PENDING"
    ev = [e for e in events(ctl) if e["kind"] in ("gpu_drain", "job_requeued")]
    assert [e["kind"] for e in ev][:1] == ["gpu_drain"] and ev[0]["gpu"] == 3, ev
    assert any(e["kind"] == "job_requeued" and e["job"] == wide for e in ev), ev
    # Resume of the GPU alone; then the whole node drained --now requeues the seven.
    assert ctl.jz("resume", "gpu1", "--gpu", "3").returncode == 0
    assert node(ctl, "gpu1")["gpus_drained"] == 0
    r = ctl.jz("drain", "gpu1", "--reason", "rack power work", "--now")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: job(ctl, seven)["state"] == "PENDING", what="the node's jobs requeued")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "drained", what="the node drained")
    assert ctl.jz("cancel", str(wide), str(seven)).returncode == 0


def test_events_follow_and_survive_a_restart(daemon_factory, tmp_path):
    ctl, agent = network(daemon_factory, tmp_path)
    f = subprocess.Popen([JZ, "events", "-f", "--json", "--socket", ctl.socket, "--max", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        assert ctl.jz("drain", "gpu1", "--reason", "followed").returncode == 0
        got, end = b"", time.monotonic() + 20
        while b'"followed"' not in got:
            left = end - time.monotonic()
            assert left > 0 and select.select([f.stdout], [], [], left)[0], got
            got += os.read(f.stdout.fileno(), 4096)
        lines = [json.loads(x) for x in got.decode().splitlines() if x.strip()]
        assert lines[-1]["kind"] == "node_drain" and lines[-1]["node"] == "gpu1", lines
    finally:
        f.kill()
        f.wait()
    before = events(ctl)
    assert agent.stop() == 0
    assert ctl.stop() == 0
    ctl.start()
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead again")
    after = events(ctl, "--max", "10000")
    seqs = {e["seq"]: e for e in after}
    for e in before:
        assert seqs.get(e["seq"]) == e, (e, after)
    # The drain outlived the restart too; --since and --node filter.
    assert node(ctl, "gpu1")["state"] in ("drained", "down") and node(ctl, "gpu1")["reason"]
    assert all(e["node"] == "gpu1" for e in events(ctl, "--node", "gpu1"))
    assert events(ctl, "--since", "+1:00:00") == []
    text = ctl.jz("events")
    assert text.returncode == 0 and "node_drain" in text.stdout and "followed (root)" in text.stdout, text.stdout


def test_drain_bad_input_is_refused_with_one_line(daemon_factory, tmp_path):
    ctl, agent = network(daemon_factory, tmp_path)
    r = ctl.jz("drain", "nosuch", "--reason", "x")
    assert r.returncode == 1 and "no node is named 'nosuch'" in r.stderr, r.stderr
    r = ctl.jz("drain", "gpu1", "--gpu", "8", "--reason", "x")
    assert r.returncode == 1 and "has 8 GPUs (0-7): no GPU 8" in r.stderr, r.stderr
    r = ctl.jz("drain", "gpu1")
    assert r.returncode == 2 and "--reason" in r.stderr, r.stderr
    r = ctl.jz("drain", "gpu1", "--gpu", "x", "--reason", "y")
    assert r.returncode == 2 and "bad --gpu" in r.stderr, r.stderr
    r = ctl.jz("drain", "gpu1", "--reason", "bell\x07")
    assert r.returncode == 1 and "printable" in r.stderr, r.stderr
    r = ctl.jz("drain", "gpu1", "--reason", "x" * 5000)
    assert r.returncode == 1 and "at most" in r.stderr, r.stderr
    r = ctl.jz("resume", "gpu1")
    assert r.returncode == 1 and "is not drained" in r.stderr, r.stderr
    r = ctl.jz("events", "--since", "yesterday-ish")
    assert r.returncode == 2 and "bad --since" in r.stderr, r.stderr
    assert node(ctl, "gpu1")["state"] == "up"


def test_slurm_admins_drain_with_scontrol_and_see_it_in_sinfo(daemon_factory, tmp_path):
    from conftest import BUILD, run
    ctl, agent = network(daemon_factory, tmp_path)
    slurm = lambda prog, *a: run([os.path.join(BUILD, "slurm", prog)] + list(a),
                                 env=dict(os.environ, JAZARI_SOCKET=ctl.socket))
    r = slurm("scontrol", "update", "NodeName=gpu1", "State=DRAIN")
    assert r.returncode == 1 and "Reason=" in r.stderr, r.stderr  # scontrol exits 1, as Slurm
    r = slurm("scontrol", "update", "NodeName=gpu1", "State=DRAIN", "Reason=bad fan")
    assert r.returncode == 0, r.stderr
    assert node(ctl, "gpu1")["state"] == "drained" and node(ctl, "gpu1")["reason"] == "bad fan"
    r = slurm("sinfo", "-h", "-N", "-o", "%N %t")
    assert "gpu1 drain" in r.stdout, r.stdout + r.stderr
    r = slurm("scontrol", "show", "node", "gpu1")
    assert "State=DRAINED" in r.stdout and "Reason=bad fan [root]" in r.stdout, r.stdout
    r = slurm("scontrol", "update", "NodeName=gpu1", "State=RESUME")
    assert r.returncode == 0 and node(ctl, "gpu1")["state"] == "up", r.stderr
    r = slurm("scontrol", "update", "NodeName=gpu1", "State=FUTURE", "Reason=x")
    assert r.returncode == 1 and "DRAIN, DOWN or RESUME" in r.stderr, r.stderr

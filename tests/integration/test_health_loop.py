"""The closed loop of health, end to end on real daemons: a controller and
a GPU node whose NVML is the fake one (tests/unit/fake_nvidia-ml.c: four
A100s, driven by a state file the test rewrites). Injected faults — a
double-bit ECC error, an over-temperature, a failed row remap, XID 79 (a
GPU off the bus), a warning XID, a failing health program — must each do
what the policy's health table says: drain the GPU or the node, requeue
the jobs there or let them finish, leave events, and return to service by
themselves when the policy says so (else wait for jz resume)."""
import os

from conftest import BUILD, wait_for
from test_drain import events, job, node, submit
from test_health import write_state
from test_metrics import fetch, parse, promtool_check, value
from test_steps import FAST


def network(daemon_factory, tmp_path, policy="", program=None):
    from conftest import free_port
    for d in ("tmp-ctl", "tmp-gpu1"):
        (tmp_path / d).mkdir(exist_ok=True)
        os.chmod(str(tmp_path / d), 0o1777)
    pol = tmp_path / "policy"
    pol.write_text(policy)
    state = str(tmp_path / "nvml.state")
    write_state(state, "")
    port, ctl_http, agent_http = free_port(), free_port(), free_port()
    spec = "ctl@127.0.0.1:%d" % port
    common = ["--controllers", spec, "--gpu-isolation", "off", "--policy", str(pol)] + FAST
    ctl = daemon_factory(name="ctl", port=port,
                         extra=common + ["--election-timeout", "200ms", "--tmp-dir", str(tmp_path / "tmp-ctl"),
                                         "--http-listen", "127.0.0.1:%d" % ctl_http])
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    fake = os.path.join(BUILD, "tests", "fake", "libnvidia-ml.so.1")
    extra = common + ["--tmp-dir", str(tmp_path / "tmp-gpu1"), "--gpu-health-interval", "200ms",
                      "--http-listen", "127.0.0.1:%d" % agent_http,
                      "--gpu-xid-hold", "0", "--gpu-temp-limit", "80"]
    if program:
        extra += ["--health-program", program, "--health-interval", "1s", "--health-timeout", "5s"]
    agent = daemon_factory(name="gpu1", extra=extra,
                           env={"JAZARI_NVML_LIB": fake, "JAZARI_CUDA_LIB": "/nonexistent/libcuda.so.1",
                                "FAKE_NVML_STATE": state})
    wait_for(lambda: node(ctl, "gpu1") and node(ctl, "gpu1")["state"] == "up", what="gpu1 up")
    assert node(ctl, "gpu1")["gpus_total"] == 4
    ctl.http, agent.http = ctl_http, agent_http
    return ctl, agent, state


def gpu_drain(ctl, gpu):
    for g in node(ctl, "gpu1")["gpu_drains"]:
        if g["gpu"] == gpu:
            return g
    return None


def run_on_each_gpu(ctl):
    """Two jobs of two GPUs each (this machine has two CPUs: one job per
    CPU): every GPU busy. GPU index -> its job."""
    ids = [submit(ctl, "--gpus-per-node", "2", "--name", "g%d" % i, "--", "sleep", "600") for i in range(2)]
    wait_for(lambda: all(job(ctl, j)["state"] == "RUNNING" for j in ids), what="the jobs on every GPU")
    return {g: j for j in ids for g in job(ctl, j)["nodes"][0]["gpus"]}


def test_gpu_faults_drain_requeue_and_recover_as_the_policy_says(daemon_factory, tmp_path):
    ctl, agent, state = network(daemon_factory, tmp_path)
    on = run_on_each_gpu(ctl)
    # A double-bit ECC error on GPU 1: drained, its job requeued at once
    # (ecc_dbe: drain-gpu jobs=requeue resume=manual); the others run on.
    write_state(state, "gpu 1 dbe_volatile=1 dbe_aggregate=1\n")
    wait_for(lambda: gpu_drain(ctl, 1), what="GPU 1 drained for ecc_dbe")
    g = gpu_drain(ctl, 1)
    assert g["source"] == "health" and g["reason"].startswith("ecc_dbe: "), g
    wait_for(lambda: job(ctl, on[1])["state"] == "PENDING", what="the job on GPU 1 requeued")
    other = [g for g in range(4) if on[g] != on[1]]
    assert all(job(ctl, on[i])["state"] == "RUNNING" for i in other)
    assert node(ctl, "gpu1")["state"] == "up"
    # The metrics say it too: the GPU drained on the controller's page, its
    # ECC count on the node's.
    page = fetch(ctl.http)
    promtool_check(page)
    wait_for(lambda: value(parse(fetch(ctl.http)), "jazari_gpus", state="drained") == 1,
             what="jazari_gpus{state=drained} 1")
    node_page = fetch(agent.http)
    promtool_check(node_page)
    ecc = [v for (name, labels), v in parse(node_page).items()
           if name == "jazari_gpu_ecc_errors_total" and ("gpu", "1") in labels and ("bits", "double") in labels]
    assert ecc and max(ecc) >= 1, node_page
    # An over-temperature on a GPU of the other job (temp_high: drain-gpu
    # jobs=finish resume=auto): its job goes on, nothing new there.
    hot = other[0]
    write_state(state, "gpu 1 dbe_volatile=1 dbe_aggregate=1\ngpu %d temp=92\n" % hot)
    wait_for(lambda: gpu_drain(ctl, hot), what="GPU %d drained for temp_high" % hot)
    assert gpu_drain(ctl, hot)["state"] == "draining" and job(ctl, on[hot])["state"] == "RUNNING"
    # Cooler, and the ECC counts reset (a GPU reset): GPU 2 returns by
    # itself; GPU 1 waits for an admin.
    write_state(state, "gpu 1 dbe_aggregate=1\ngpu %d temp=60\n" % hot)
    wait_for(lambda: gpu_drain(ctl, hot) is None, what="GPU %d back in service" % hot)
    wait_for(lambda: any(e["kind"] == "health_clear" and e["gpu"] == 1 for e in events(ctl)),
             what="ecc_dbe cleared")
    assert gpu_drain(ctl, 1) is not None
    assert ctl.jz("resume", "gpu1", "--gpu", "1").returncode == 0
    wait_for(lambda: job(ctl, on[1])["state"] == "RUNNING", what="the requeued job to run again")
    kinds = [(e["kind"], e["gpu"]) for e in events(ctl, "--max", "1000")]
    for want in [("gpu_drain", 1), ("job_requeued", None), ("gpu_drain", hot), ("gpu_resume", hot),
                 ("health_clear", hot), ("gpu_resume", 1)]:
        assert want in kinds, (want, kinds)
    # A failed row remap on GPU 0: drained and requeued, resume manual.
    write_state(state, "gpu 0 remap_failed=1\n")
    wait_for(lambda: gpu_drain(ctl, 0) and gpu_drain(ctl, 0)["reason"].startswith("row_remap_failed"),
             what="GPU 0 drained for row_remap_failed")
    wait_for(lambda: job(ctl, on[0])["state"] == "PENDING", what="the job on GPU 0 requeued")
    # XID 79 on GPU 3 (off the bus): the whole node drained, every job requeued.
    write_state(state, "gpu 0 remap_failed=1\ngpu 3 lost=1\nxid 3 79 1\n")
    wait_for(lambda: node(ctl, "gpu1")["state"] in ("draining", "drained"), what="the node drained for XID 79")
    n = node(ctl, "gpu1")
    assert n["reason_by"] == "health" and n["reason"].split(":")[0] in ("xid_79", "gpu_lost"), n
    wait_for(lambda: all(job(ctl, j)["state"] == "PENDING" for j in set(on.values())), what="every job requeued")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "drained", what="drained")
    # Back on the bus after a reset: the node returns by itself (resume=auto);
    # GPU 0's failed remap still holds its GPU.
    write_state(state, "gpu 0 remap_failed=1\n")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "up", what="the node back after the reset")
    assert gpu_drain(ctl, 0) is not None
    wait_for(lambda: sum(job(ctl, j)["state"] == "RUNNING" for j in set(on.values())) == 1,
             what="one job running again (three GPUs left), not on GPU 0")
    assert all(0 not in job(ctl, j)["nodes"][0]["gpus"] for j in set(on.values())
               if job(ctl, j)["state"] == "RUNNING")
    for j in set(on.values()):
        ctl.jz("cancel", str(j))


def test_warnings_and_application_xids(daemon_factory, tmp_path):
    ctl, agent, state = network(daemon_factory, tmp_path, policy="health xid_13 warn\nhealth xid_43 drain-gpu\n")
    # XID 63 (a row remapping event): a warning, nothing drained; XID 13
    # made a warning by the site's policy; XID 31 the application's fault.
    write_state(state, "xid 0 63 1\nxid 1 13 2\nxid 2 31 3\n")
    wait_for(lambda: {(e["kind"], e["gpu"]) for e in events(ctl)} >= {("health", 0), ("health", 1)},
             what="the warnings")
    warn = [e for e in events(ctl) if e["kind"] == "health"]
    assert {e["text"].split(":")[0] for e in warn} == {"xid_63", "xid_13"}, warn
    assert all(e["severity"] == "warning" for e in warn)
    assert node(ctl, "gpu1")["gpus_drained"] == 0
    # The site's own line: XID 43 drains (the default would not).
    write_state(state, "xid 0 63 1\nxid 1 13 2\nxid 2 31 3\nxid 3 43 4\n")
    wait_for(lambda: gpu_drain(ctl, 3), what="GPU 3 drained by the site's line")


def test_a_failing_health_program_drains_the_node_until_it_passes(daemon_factory, tmp_path):
    mode = tmp_path / "mode"
    mode.write_text("pass")
    prog = tmp_path / "check.sh"
    prog.write_text("#!/bin/sh\nif [ \"$(cat %s)\" = fail ]; then echo \"/scratch is full\"; exit 1; fi\nexit 0\n"
                    % mode)
    os.chmod(str(prog), 0o755)
    ctl, agent, state = network(daemon_factory, tmp_path, program=str(prog))
    running = submit(ctl, "--gpus-per-node", "1", "--", "sleep", "600")
    wait_for(lambda: job(ctl, running)["state"] == "RUNNING", what="a job")
    mode.write_text("fail")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "draining", what="the node draining for its health program")
    n = node(ctl, "gpu1")
    assert n["reason"] == "health_program: /scratch is full" and n["reason_by"] == "health", n
    assert job(ctl, running)["state"] == "RUNNING"  # jobs=finish
    # An admin's drain over it stays when the program passes again.
    mode.write_text("pass")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "up", what="the node back when the program passes")
    mode.write_text("fail")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "draining", what="draining again")
    assert ctl.jz("drain", "gpu1", "--reason", "checking the disk myself").returncode == 0
    mode.write_text("pass")
    wait_for(lambda: any(e["kind"] == "health_clear" for e in events(ctl)[-3:]), what="the condition cleared")
    assert node(ctl, "gpu1")["reason"] == "checking the disk myself"
    assert ctl.jz("cancel", str(running)).returncode == 0


def test_the_grafana_dashboard_asks_for_metrics_that_exist(daemon_factory, tmp_path):
    """deploy/grafana/jazari.json: every query is valid PromQL (promtool
    check rules) and names only metrics the daemons serve."""
    import json
    import re
    import subprocess
    from conftest import ROOT
    dash = json.load(open(os.path.join(ROOT, "deploy", "grafana", "jazari.json")))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: grafana\n  rules:\n" + "".join(
        "  - record: jazari_grafana_%d\n    expr: %s\n" % (i, json.dumps(e)) for i, e in enumerate(exprs)))
    r = subprocess.run(["/usr/bin/promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    ctl, agent, state = network(daemon_factory, tmp_path)
    write_state(state, "gpu 0 temp=50\n")
    wait_for(lambda: "jazari_gpu_temperature_celsius" in fetch(agent.http), what="the GPU gauges")
    served = {name for page in (fetch(ctl.http), fetch(agent.http)) for (name, _l) in parse(page)}
    served |= {n[:-len(s)] for n in served for s in ("_bucket", "_sum", "_count") if n.endswith(s)}
    asked = {m for e in exprs for m in re.findall(r"\b((?:jazari|process)_[a-z_]+)\b", e)}
    asked = {m[:-len("_bucket")] if m.endswith("_bucket") else m for m in asked}
    assert asked <= served, sorted(asked - served)


def test_a_flapping_condition_cannot_flood_the_events(daemon_factory, tmp_path):
    """A warning that comes and goes with every sample (a broken sensor):
    at most 30 health events of the node a minute reach the replicated
    events, not one per flap."""
    import time
    ctl, agent, state = network(daemon_factory, tmp_path)
    flaps, end = 0, time.monotonic() + 60
    while flaps < 40 and time.monotonic() < end:
        on = flaps % 2 == 0
        write_state(state, "gpu 0 throttle=128\n" if on else "")
        want = ("power_brake", 0)
        # Each state held until the leader heard it (the node's own view
        # changes within a sample; its heartbeat carries it).
        wait_for(lambda: (want in {(c.name, c.gpu) for c in health_of(agent).conditions}) == on,
                 what="the node to see the flap")
        flaps += 1
    mine = [e for e in events(ctl, "--max", "10000") if e["kind"] in ("health", "health_clear")]
    assert 20 <= len(mine) <= 30, (len(mine), mine[-3:])


def health_of(d):
    from test_health import health
    return health(d)

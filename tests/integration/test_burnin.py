"""The burn-in of a new or repaired node on real daemons (daemon/burnin.c):
`jz node check NAME` runs the node's burnin_program (here a script the test
drives through a file: pass, fail with a first line, hang past the
timeout, or wait) relayed through the controller; a failure drains the
node with source burnin and the program's first line, a pass resumes that
drain; refused while a job runs there, or with no program; and the
policy's `burnin on-join` drains a GPU node that joins until its burn-in
passes. The real program (tools/burnin/jazari-burnin.cu) needs a GPU and
nvcc: tools/device-check.sh runs it on a lent GPU machine."""
import os

from conftest import JAZARID, fixture_xml, free_port, wait_for
from test_drain import events, job, node, submit
from test_steps import FAST

FAIL_LINE = "GPU 3 (NVIDIA H100 80GB HBM3): walking ones: first bad address 0x7f3a00001000 (read 0x0, want 0x1)"

SCRIPT = """#!/bin/sh
mode=$(cat %(mode)s)
while [ "$mode" = wait ]; do sleep 0.05; mode=$(cat %(mode)s); done
echo "$JAZARI_NODE budget=$JAZARI_BURNIN_BUDGET_S $$" > %(seen)s
case "$mode" in
pass) echo "burn-in passed on $JAZARI_NODE: 8 GPUs, memory and SGEMM checked"
      echo "GPU 0: memory ok (72 GiB, 4 patterns), sgemm ok (max rel err 1e-6)"; exit 0 ;;
fail) echo "%(fail)s"; echo "GPU 3: sgemm ok"; exit 1 ;;
hang) sleep 600 ;;
esac
exit 3
"""


def burnin_script(tmp_path, mode):
    mode_file, seen = tmp_path / "burnin.mode", tmp_path / "burnin.seen"
    mode_file.write_text(mode)
    prog = tmp_path / "burnin.sh"
    prog.write_text(SCRIPT % {"mode": mode_file, "seen": seen, "fail": FAIL_LINE})
    os.chmod(str(prog), 0o755)
    return str(prog), mode_file, seen


def network(daemon_factory, tmp_path, policy="", mode="pass", program=True, timeout="3s"):
    for d in ("tmp-ctl", "tmp-gpu1"):
        (tmp_path / d).mkdir(exist_ok=True)
        os.chmod(str(tmp_path / d), 0o1777)
    pol = tmp_path / "policy"
    pol.write_text(policy)
    prog, mode_file, seen = burnin_script(tmp_path, mode)
    port = free_port()
    common = ["--controllers", "ctl@127.0.0.1:%d" % port, "--gpu-isolation", "off", "--policy", str(pol),
              "--gpu-health-interval", "0"] + FAST
    ctl = daemon_factory(name="ctl", port=port,
                         extra=common + ["--election-timeout", "200ms", "--tmp-dir", str(tmp_path / "tmp-ctl")])
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    extra = common + ["--tmp-dir", str(tmp_path / "tmp-gpu1"), "--burnin-timeout", timeout]
    if program:
        extra += ["--burnin-program", program if isinstance(program, str) else prog]
    agent = daemon_factory(name="gpu1", xml=fixture_xml("hgx-h100-8gpu.xml"), extra=extra)
    wait_for(lambda: node(ctl, "gpu1") and node(ctl, "gpu1")["state"] != "down", what="gpu1 to join")
    assert node(ctl, "gpu1")["gpus_total"] == 8
    return ctl, agent, mode_file, seen


def check(d, name="gpu1"):
    return d.jz("node", "check", name, timeout=60)


def test_node_check_passes_fails_drains_and_resumes(daemon_factory, tmp_path):
    ctl, agent, mode, seen = network(daemon_factory, tmp_path)
    # A pass, relayed through the controller: exit 0, the program's output shown.
    r = check(ctl)
    assert r.returncode == 0, r.stderr
    assert "burn-in passed on gpu1" in r.stdout and "node gpu1 passed the burn-in" in r.stdout, r.stdout
    assert "burn-in 1 of gpu1 running" in r.stderr
    assert seen.read_text().split()[:2] == ["gpu1", "budget=3"]  # 80% of burnin_timeout, rounded up
    assert node(ctl, "gpu1")["state"] == "up"
    # A failure: exit 1, the node drained by burnin with the first line.
    mode.write_text("fail")
    r = check(ctl)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED the burn-in" in r.stdout and FAIL_LINE in r.stdout, r.stdout
    n = node(ctl, "gpu1")
    assert n["state"] == "drained" and n["reason"] == FAIL_LINE and n["reason_by"] == "burnin", n
    assert any(e["kind"] == "node_drain" and e["text"] == FAIL_LINE for e in events(ctl)), events(ctl)
    # Nothing starts there meanwhile.
    held = submit(ctl, "--gpus-per-node", "1", "--", "true")
    # It passes again (asked on the node's own socket this time): resumed.
    mode.write_text("pass")
    r = check(agent)
    assert r.returncode == 0, r.stderr
    assert "its burn-in drain (%s) is resumed" % FAIL_LINE in r.stdout, r.stdout
    assert node(ctl, "gpu1")["state"] == "up"
    wait_for(lambda: job(ctl, held)["state"] == "COMPLETED", what="the held job to run once resumed")
    # A program that hangs past burnin_timeout: killed, counted as failing.
    mode.write_text("hang")
    r = check(ctl)
    assert r.returncode == 1
    assert "burn-in program timed out after 3 s" in r.stdout, r.stdout
    assert node(ctl, "gpu1")["reason"] == "burn-in program timed out after 3 s"
    assert "burn-in 4 failed" in agent.log()
    # JSON, and a pass again.
    mode.write_text("pass")
    out = ctl.jz_json("node", "check", "gpu1")
    assert out["passed"] is True and out["node"] == "gpu1" and out["run"] == 5, out
    assert "resumed" in out["leader"], out
    assert node(ctl, "gpu1")["state"] == "up"


def test_node_check_refusals(daemon_factory, tmp_path):
    ctl, agent, mode, seen = network(daemon_factory, tmp_path)
    # A job runs on the node, which is not drained: drain it first.
    started = tmp_path / "tmp-gpu1" / "started"
    jid = submit(ctl, "--gpus-per-node", "1", "--", "sh", "-c", "touch %s; sleep 600" % started)
    wait_for(started.exists, what="the job to run on gpu1")
    # Refused by the controller, which knows the job is placed there...
    r = check(ctl)
    assert r.returncode == 1 and "node gpu1 runs jobs: drain it first (jz drain gpu1" in r.stderr, r.stderr
    # ... and by the node, which runs it.
    r = check(agent)
    assert r.returncode == 1 and "runs 1 job part: drain it first (jz drain gpu1" in r.stderr, r.stderr
    # Drained (and the job still running): still refused.
    assert ctl.jz("drain", "gpu1", "--reason", "burn-in").returncode == 0
    r = check(agent)
    assert r.returncode == 1 and "drain it first" in r.stderr, r.stderr
    assert not seen.exists()
    assert ctl.jz("cancel", str(jid)).returncode == 0
    # No such node; a node with no GPU (the controller's own, probed here).
    r = check(ctl, "nosuch")
    assert r.returncode == 1 and "no node is named nosuch" in r.stderr, r.stderr
    if not ctl.jz_json("node", "ctl")["gpus_total"]:
        r = check(ctl, "ctl")
        assert r.returncode == 1 and "node ctl has no GPU" in r.stderr, r.stderr


def test_node_check_without_a_program(daemon_factory, tmp_path):
    ctl, agent, mode, seen = network(daemon_factory, tmp_path, program=str(tmp_path / "missing"))
    r = check(ctl)
    assert r.returncode == 1
    assert "no burn-in program on gpu1: burnin_program %s cannot be run" % (tmp_path / "missing") in r.stderr
    assert node(ctl, "gpu1")["state"] == "up"  # a refusal is no verdict
    # The default, jazari-burnin beside jazarid: built only with nvcc.
    bare = daemon_factory(name="gpu2", xml=fixture_xml("hgx-h100-8gpu.xml"))
    r = bare.jz("node", "check", "gpu2", timeout=60)
    if not os.path.exists(os.path.join(os.path.dirname(JAZARID), "jazari-burnin")):
        assert r.returncode == 1
        assert "no burn-in program on gpu2: build with the CUDA toolkit (nvcc)" in r.stderr, r.stderr
    elif not os.path.exists("/dev/nvidia0"):
        # Built, on a machine with no GPU (its topology emulated): the real
        # program runs and says so (exit 2), which fails the node's check.
        assert r.returncode == 1, r.stdout + r.stderr
        assert "FAILED the burn-in" in r.stdout and "no GPU: " in r.stdout, r.stdout


def test_a_run_in_progress_dies_with_its_daemon(daemon_factory, tmp_path):
    import subprocess
    from conftest import JZ
    ctl, agent, mode, seen = network(daemon_factory, tmp_path, mode="hang", timeout="60s")
    client = subprocess.Popen([JZ, "node", "--socket", agent.socket, "check", "gpu1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: seen.exists() and len(seen.read_text().split()) == 3, what="the burn-in to run")
        pid = int(seen.read_text().split()[2])
        # The daemon stops cleanly (no leak under ASan) and takes the run's
        # process group with it; the client says it lost the daemon.
        assert agent.stop() == 0
        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        wait_for(gone, what="the burn-in program killed")
        out, err = client.communicate(timeout=30)
        assert client.returncode == 1, out + err
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def test_burnin_on_join_drains_until_it_passes(daemon_factory, tmp_path):
    ctl, agent, mode, seen = network(daemon_factory, tmp_path, policy="burnin on-join\n", mode="wait",
                                     timeout="30s")
    # Drained before any job can land there, and asked to run its burn-in.
    n = node(ctl, "gpu1")
    assert n["state"] == "drained" and n["reason"] == "burn-in pending" and n["reason_by"] == "burnin", n
    held = submit(ctl, "--gpus-per-node", "1", "--", "true")
    wait_for(lambda: seen.exists() or "burn-in 1 started by root" in agent.log(), what="the burn-in to start")
    assert job(ctl, held)["state"] == "PENDING"
    # It fails: drained still, with the reason.
    mode.write_text("fail")
    wait_for(lambda: node(ctl, "gpu1")["reason"] == FAIL_LINE, what="the failure's reason")
    assert node(ctl, "gpu1")["state"] == "drained" and node(ctl, "gpu1")["reason_by"] == "burnin"
    assert job(ctl, held)["state"] == "PENDING"
    # Repaired: an admin checks it again, it passes, it takes work.
    mode.write_text("pass")
    r = check(ctl)
    assert r.returncode == 0, r.stderr
    assert node(ctl, "gpu1")["state"] == "up"
    wait_for(lambda: job(ctl, held)["state"] == "COMPLETED", what="the held job to run")
    # A restart of the same node, with the same GPUs, is no new join: no burn-in.
    assert agent.stop() == 0
    wait_for(lambda: node(ctl, "gpu1")["state"] == "down", what="gpu1 down")
    from conftest import Daemon
    again = Daemon(tmp_path, name="gpu1", port=agent.port)
    again.args = agent.args
    again.start()
    try:
        wait_for(lambda: node(ctl, "gpu1")["state"] == "up", what="gpu1 back")
        n = node(ctl, "gpu1")
        assert not n["reason_by"] and "burn-in" not in (n["reason"] or ""), n
        # Repaired with other boards (another set of GPUs): burned in again,
        # and returned to service when it passes.
        assert again.stop() == 0
        wait_for(lambda: node(ctl, "gpu1")["state"] == "down", what="gpu1 down again")
        resumes = len([e for e in events(ctl) if e["kind"] == "node_resume" and e["node"] == "gpu1"])
        other = Daemon(tmp_path, name="gpu1", port=agent.port)
        at = agent.args.index("--topology-xml") + 1
        other.args = agent.args[:at] + [fixture_xml("a100-pcie-nvbridge-4gpu.xml")] + agent.args[at + 1:]
        other.start()
        try:
            wait_for(lambda: node(ctl, "gpu1")["gpus_total"] == 4, what="gpu1 with its new GPUs")
            wait_for(lambda: len([e for e in events(ctl) if e["kind"] == "node_resume" and e["node"] == "gpu1"])
                     > resumes, what="the new boards' burn-in to pass")
            assert ("node_drain", "burn-in pending") in [(e["kind"], e["text"]) for e in events(ctl)
                                                         if e["node"] == "gpu1"][-3:]
            assert node(ctl, "gpu1")["state"] == "up"
        finally:
            other.shutdown()
    finally:
        again.shutdown()


def test_burnin_on_join_passes_by_itself(daemon_factory, tmp_path):
    ctl, agent, mode, seen = network(daemon_factory, tmp_path, policy="burnin on-join\n", mode="pass")
    wait_for(lambda: any(e["kind"] == "node_resume" and e["node"] == "gpu1" for e in events(ctl)),
             what="gpu1's pending drain resumed")
    assert node(ctl, "gpu1")["state"] == "up"
    kinds = [(e["kind"], e["text"]) for e in events(ctl) if e["node"] == "gpu1"]
    assert ("node_drain", "burn-in pending") in kinds, kinds

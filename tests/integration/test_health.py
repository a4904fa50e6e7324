"""A node's own health on a real jazarid (daemon/health.c): the site's
health_program (fails with a first line, hangs past its timeout and is
killed with its children, passes again) and the GPUs' health through the
fake NVML (tests/unit/fake_nvidia-ml.c, driven by the file these tests
write): a double-bit ECC error, an XID, a GPU off the bus, and their
recovery. What the leader does with the conditions is the closed loop's;
here the node's own HealthRequest and its log say what it sees."""
import os
import signal
import socket
import stat
import time

from conftest import BUILD, frame, hello_env, pb, pid_alive as alive, read_frame, wait_for


def health(d):
    """The node's HealthReply, over its local socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(d.socket)
        s.sendall(frame(hello_env()))
        assert read_frame(s).HasField("hello_reply")
        env = pb.Envelope(request_id=2, version=1)
        env.health_request.SetInParent()
        s.sendall(frame(env))
        r = read_frame(s)
        assert r.HasField("health_reply"), r
        return r.health_reply
    finally:
        s.close()


def conditions(d):
    return {(c.name, c.gpu): c for c in health(d).conditions}


def write_program(path, mode_file, pids_file):
    """A health check in the manner of NHC: what it does is read from
    mode_file (fail, hang or pass). Run without a shell by the daemon, with
    only PATH and JAZARI_NODE in its environment."""
    with open(path, "w") as f:
        f.write("""#!/bin/sh
mode=$(cat %(mode)s)
case "$mode" in
fail)
    printf 'disk\t/scratch is 99%%%% full on %%s\n' "$JAZARI_NODE"  # a tab: shown as a space
    echo "second line, not the reason"
    echo "to stderr" >&2
    exit 3 ;;
hang)
    sleep 300 &
    echo "$$ $!" > %(pids)s
    echo "checking ..."
    wait ;;
*)
    echo "all good"
    exit 0 ;;
esac
""" % {"mode": mode_file, "pids": pids_file})
    os.chmod(path, 0o755)


def test_health_program_fails_hangs_and_passes(daemon_factory, tmp_path):
    prog, mode, pids = (str(tmp_path / n) for n in ("check.sh", "mode", "pids"))
    write_program(prog, mode, pids)
    with open(mode, "w") as f:
        f.write("fail\n")
    d = daemon_factory(extra=["--health-program", prog, "--health-interval", "200ms", "--health-timeout", "1s"])

    # A non-zero exit: a node condition with the first line of its output.
    wait_for(lambda: ("health_program", -1) in conditions(d), what="the health_program condition")
    c = conditions(d)[("health_program", -1)]
    assert c.text == "disk /scratch is 99% full on node-a", c.text
    assert c.since_ms > 0
    assert "node condition health_program: disk /scratch is 99% full on node-a" in d.log()
    assert "to stderr" not in d.log()
    since, changes = c.since_ms, health(d).changes
    runs = health(d).program_runs
    wait_for(lambda: health(d).program_runs >= runs + 2, what="two more runs")
    # Failing again the same way changes nothing: same onset, same set.
    c = conditions(d)[("health_program", -1)]
    assert c.since_ms == since and health(d).changes == changes

    # Passing again clears it.
    with open(mode, "w") as f:
        f.write("pass\n")
    wait_for(lambda: ("health_program", -1) not in conditions(d), what="the condition to clear")
    assert "node condition health_program cleared" in d.log()

    # A program that hangs: killed at the timeout with its whole process
    # group (its child too), and counted as failing.
    with open(mode, "w") as f:
        f.write("hang\n")
    wait_for(lambda: os.path.exists(pids) and len(open(pids).read().split()) == 2, what="the hanging run")
    shell, child = (int(x) for x in open(pids).read().split())
    t0 = time.monotonic()
    wait_for(lambda: ("health_program", -1) in conditions(d), timeout=10, what="the timeout")
    assert conditions(d)[("health_program", -1)].text == "health program timed out after 1 s"
    assert time.monotonic() - t0 < 5
    wait_for(lambda: not alive(shell) and not alive(child), what="the hung program and its child to be killed")
    assert "runs past health_timeout" in d.log()

    # And back.
    with open(mode, "w") as f:
        f.write("pass\n")
    wait_for(lambda: ("health_program", -1) not in conditions(d), what="the condition to clear again")


def test_health_program_that_cannot_start(daemon_factory, tmp_path):
    d = daemon_factory(extra=["--health-program", str(tmp_path / "missing"), "--health-interval", "1s"])
    wait_for(lambda: ("health_program", -1) in conditions(d), what="the condition")
    assert "cannot start" in conditions(d)[("health_program", -1)].text


def test_no_nvml_no_sampling(daemon_factory):
    d = daemon_factory(env={"JAZARI_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    h = health(d)
    assert not h.sampling and len(h.gpus) == 0 and len(h.conditions) == 0


def write_state(path, text):
    """Rewrites the fake NVML's state file (a new file renamed into place)."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def test_gpu_health_through_the_fake_nvml(daemon_factory, tmp_path):
    state = str(tmp_path / "nvml.state")
    write_state(state, "gpu 1 temp=55 power=123456 util=87 mem_used=4096 dbe_aggregate=2\n")
    fake = os.path.join(BUILD, "tests", "fake", "libnvidia-ml.so.1")
    d = daemon_factory(env={"JAZARI_NVML_LIB": fake, "JAZARI_CUDA_LIB": "/nonexistent/libcuda.so.1",
                            "FAKE_NVML_STATE": state},
                       extra=["--gpu-health-interval", "200ms", "--gpu-xid-hold", "0", "--gpu-temp-limit", "80"])
    wait_for(lambda: len(health(d).gpus) == 4, what="the first sample")
    h = health(d)
    assert h.sampling
    g = h.gpus[1]
    assert (g.gpu, g.temp_c, g.power_mw, g.util_gpu_pct, g.mem_used) == (1, 55, 123456, 87, 4096)
    assert g.uuid == "GPU-7a1c0e52-0000-4000-8000-000000000001"
    assert "ecc_aggregate" in g.known and "memory" not in h.gpus[3].known
    assert len(h.conditions) == 0  # an old double-bit count is not a new error

    # A double-bit ECC error, an over-temperature, an XID.
    write_state(state, "gpu 1 temp=55 dbe_aggregate=3 dbe_volatile=1\ngpu 0 temp=85\nxid 2 48 1\n")
    wait_for(lambda: {("ecc_dbe", 1), ("xid_48", 2), ("temp_high", 0)} <= set(conditions(d)),
             what="ecc_dbe, xid_48 and temp_high")
    log = d.log()
    assert "GPU 1: condition ecc_dbe: double-bit ECC errors" in log
    assert "GPU 2: XID 48" in log and "GPU 2: condition xid_48: XID 48: double-bit ECC error" in log
    assert health(d).gpus[2].xid_events == 1

    # GPU 3 falls off the bus.
    write_state(state, "gpu 1 temp=55 dbe_aggregate=3 dbe_volatile=1\ngpu 0 temp=85\ngpu 3 lost=1\nxid 2 48 1\n")
    wait_for(lambda: {("gpu_lost", 3), ("xid_79", 3)} <= set(conditions(d)), what="gpu_lost")
    assert health(d).gpus[3].lost

    # Recovery: GPU 3 back after a reset, GPU 1's counts reset, GPU 0
    # cooler (under 80 less the hysteresis); GPU 2's XID stays (held until
    # a reset, gpu_xid_hold 0).
    write_state(state, "gpu 1 temp=55 dbe_aggregate=3\ngpu 0 temp=70\nxid 2 48 1\n")
    wait_for(lambda: set(conditions(d)) == {("xid_48", 2)}, what="all but xid_48 to clear")
    assert "GPU 3: condition gpu_lost cleared" in d.log()


def test_jazarid_health_prints_every_gpu(tmp_path):
    """`jazarid health`: the one-shot view an admin (or the GPU machine's
    check) runs; the same sampling and conditions as the daemon's."""
    import json
    import subprocess
    from conftest import JAZARID
    state = str(tmp_path / "nvml.state")
    write_state(state, "gpu 0 temp=88\ngpu 2 remap_failed=1 remap_unc=3\n")
    env = dict(os.environ, JAZARI_NVML_LIB=os.path.join(BUILD, "tests", "fake", "libnvidia-ml.so.1"),
               FAKE_NVML_STATE=state)
    r = subprocess.run([JAZARID, "health"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "GPU 0: temp_slowdown: 88 C" in r.stdout
    assert "GPU 2: row_remap_failed" in r.stdout
    assert "GPU-7a1c0e52-0000-4000-8000-000000000003" in r.stdout
    # --xids waits for XID events first.
    write_state(state, "gpu 0 temp=40\nxid 1 31 7\n")
    r = subprocess.run([JAZARID, "health", "--json", "--xids", "1"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["gpus"]) == 4 and out["gpus"][0]["temp_c"] == 40
    assert "ecc_dbe_volatile" in out["gpus"][0] and "mem_used" not in out["gpus"][3]
    assert [(c["name"], c["gpu"]) for c in out["conditions"]] == [("xid_31", 1)]
    # Without NVML: exit 1 and why.
    env["JAZARI_NVML_LIB"] = "/nonexistent/libnvidia-ml.so.1"
    r = subprocess.run([JAZARID, "health"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no GPU health" in r.stderr
    r = subprocess.run([JAZARID, "health", "--xids"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2

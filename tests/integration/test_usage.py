"""What a job's part used, measured on its node and committed by the leader
(issue 14): its CPU time and peak memory (the part's cgroup, else the
supervisor's getrusage of its tasks), its GPUs' energy (NVML's counter,
here the fake's, which grows at the power the test sets) and their mean
utilisation over the health sampler's samples. Real daemons: a controller
and a GPU node whose agent reports the end (JobEndRequest.usage), and a
solo node whose leader commits its own part's end."""
import json
import os
import re
import socket
import time

from conftest import BUILD, frame, hello_env, pb, read_frame, wait_for

FAST = ["--election-timeout", "200ms", "--heartbeat-interval", "100ms", "--kill-grace", "1s"]
MB = 1 << 20

# Burns 1.5 s of CPU (or its second argument's) with 100 MB written (so
# resident), and says how long it ran (wall clock) in the file named by its
# first argument; "started" in that file meanwhile.
BURN = r"""
import sys, time
t0 = time.monotonic()
x = b"x" * (100 << 20)
with open(sys.argv[1], "w") as f:
    f.write("started\n")
cpu = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
while time.process_time() < cpu:
    pass
with open(sys.argv[1], "w") as f:
    f.write("%.3f %d\n" % (time.monotonic() - t0, len(x)))
"""


def write_state(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def sampled_gpus(d):
    """How many GPUs the node's health sampler has sampled (HealthRequest)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(d.socket)
        s.sendall(frame(hello_env()))
        assert read_frame(s).HasField("hello_reply")
        env = pb.Envelope(request_id=2, version=1)
        env.health_request.SetInParent()
        s.sendall(frame(env))
        return len(read_frame(s).health_reply.gpus)
    finally:
        s.close()


def hist_usage(d, jid):
    """The job's JobUsage in the controller's history (HistoryRequest), once
    it is there (the history is fed after each apply)."""
    def one():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(d.socket)
            s.sendall(frame(hello_env()))
            assert read_frame(s).HasField("hello_reply")
            env = pb.Envelope(request_id=2, version=1)
            env.history_request.CopyFrom(pb.HistoryRequest(job_id=jid))
            s.sendall(frame(env))
            r = read_frame(s, timeout=20)
            assert r.HasField("history_reply"), r
            jobs = [j for j in r.history_reply.jobs if j.id == jid]
            return jobs[0].usage if jobs else None
        finally:
            s.close()
    return wait_for(one, what="job %d in the history" % jid)


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def ended(d, jid, timeout=30):
    return wait_for(lambda: (lambda j: j if j["state"] not in ("PENDING", "RUNNING") else None)(
        d.jz_json("show", str(jid))), timeout=timeout, what="job %d to end" % jid)


def committed(leader, jid):
    """The usage the leader committed for job jid's own part, from its log
    line (run.c run__propose_end): cpu_ms, max_rss_bytes, energy_mj and the
    utilisation (None: not measured)."""
    pat = re.compile(r"job %d attempt \d+ on (\S+) used (\d+) ms of CPU, (\d+) bytes at most, (\d+) mJ, "
                     r"GPUs (unmeasured )?(\d+)%%" % jid)
    m = wait_for(lambda: pat.search(leader.log()), what="the leader to commit job %d's usage" % jid)
    return {"node": m.group(1), "cpu_ms": int(m.group(2)), "max_rss_bytes": int(m.group(3)),
            "energy_mj": int(m.group(4)), "gpu_util_pct": None if m.group(5) else int(m.group(6))}


def check_cpu_and_memory(u, cpu_s, rss, burn=1.5):
    # 1.5 s of CPU, a little more for Python's start and the 100 MB's pages.
    assert burn - 0.05 <= cpu_s <= burn + 1.5, u
    # 100 MB written: the peak (of the cgroup, or of the largest task) holds it.
    assert 100 * MB <= rss <= 1024 * MB, u


def test_an_agents_part_reports_cpu_memory_and_gpu_energy_and_utilisation(daemon_factory, tmp_path):
    from conftest import free_port
    state = str(tmp_path / "nvml.state")
    # The job's two GPUs: 200 W at 90 % and 100 W at 30 %: 300 W, 60 % on average.
    write_state(state, "gpu 0 power=200000 util=90\ngpu 1 power=100000 util=30\n"
                       "gpu 2 power=400000 util=100\ngpu 3 power=400000 util=100\n")
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port, extra=["--controllers", spec] + FAST,
                         env={"JAZARI_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    fake = os.path.join(BUILD, "tests", "fake", "libnvidia-ml.so.1")
    gpu = daemon_factory(name="gpu", extra=["--controllers", spec, "--gpu-health-interval", "100ms"] + FAST,
                         env={"JAZARI_NVML_LIB": fake, "JAZARI_CUDA_LIB": "/nonexistent/libcuda.so.1",
                              "FAKE_NVML_STATE": state})
    wait_for(lambda: ctl.jz_json("status")["nodes_up"] == 2, what="both nodes up")
    # Its energy counts from a sample taken before it starts.
    wait_for(lambda: sampled_gpus(gpu) == 4, what="the GPU node's first sample")
    out = str(tmp_path / "burn.out")
    t0 = time.monotonic()
    jid = submit(ctl, "--gpus-per-node", "2", "--", "/usr/bin/python3", "-c", BURN, out)
    job = ended(ctl, jid)
    life = time.monotonic() - t0  # the part lived less than this
    assert job["state"] == "COMPLETED", job
    assert job["nodes"][0]["name"] == "gpu", job
    wall = float(open(out).read().split()[0])

    # What the agent sent, as the leader committed it (EndCmd.usage).
    c = committed(ctl, jid)
    assert c["node"] == "gpu"
    check_cpu_and_memory(c, c["cpu_ms"] / 1000, c["max_rss_bytes"])
    # 300 W over the part's life: at least while its Python ran (less the
    # last sample's interval, 100 ms), at most from submit to its end seen.
    assert 300 * (wall - 0.3) * 1000 <= c["energy_mj"] <= 300 * (life + 0.2) * 1000, (c, wall, life)
    # Every sample of its GPUs said 90 % and 30 %: the mean is exact.
    assert c["gpu_util_pct"] == 60, c
    assert "the usage reported is not believed" not in ctl.log()
    # The same in the job's record kept by the controllers (JobUsage).
    h = hist_usage(ctl, jid)
    assert (h.cpu_ms, h.max_rss_bytes, h.energy_mj) == (c["cpu_ms"], c["max_rss_bytes"], c["energy_mj"]), h
    assert h.util_gpu_ms > 0 and h.gpu_util_ms == (h.util_gpu_ms * 60 + 50) // 100, h  # 60 % of the GPUs' time

    # And what the state shows of it (Job.usage, summed by the leader's state machine).
    u = ctl.jz_json("show", str(jid)).get("usage")
    assert u is not None, "jz show --json has no usage object yet"
    check_cpu_and_memory(u, u["cpu_seconds"], u["max_rss_bytes"])
    assert 300 * (wall - 0.3) <= u["energy_j"] <= 300 * (life + 0.2), (u, wall, life)
    # Tenths of a percent, from the state's GPU-ms weighted sum (whole ms,
    # each rounded half up).
    assert 59.9 <= u["gpu_util_pct"] <= 60.0, u
    assert u["gpu_seconds"] >= 2 * wall * 0.9, u  # 2 GPUs held at least as long as it ran


def test_the_leaders_own_part_without_gpus_reports_cpu_and_memory(daemon_factory, tmp_path):
    d = daemon_factory(name="solo", extra=FAST, env={"JAZARI_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    wait_for(lambda: d.jz_json("status")["leader"] == "solo", what="solo to lead")
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="its node to register")
    out = str(tmp_path / "burn.out")
    jid = submit(d, "--", "/usr/bin/python3", "-c", BURN, out)
    assert ended(d, jid)["state"] == "COMPLETED"
    c = committed(d, jid)
    check_cpu_and_memory(c, c["cpu_ms"] / 1000, c["max_rss_bytes"])
    assert c["energy_mj"] == 0 and c["gpu_util_pct"] is None, c  # no GPU, no NVML: nothing claimed
    h = hist_usage(d, jid)
    assert (h.cpu_ms, h.max_rss_bytes, h.energy_mj, h.util_gpu_ms) == (c["cpu_ms"], c["max_rss_bytes"], 0, 0), h

    # A job that did nothing used next to nothing.
    idle = submit(d, "--", "true")
    assert ended(d, idle)["state"] == "COMPLETED"
    c = committed(d, idle)
    assert c["cpu_ms"] < 500 and c["max_rss_bytes"] < 100 * MB, c

    u = d.jz_json("show", str(jid)).get("usage")
    assert u is not None, "jz show --json has no usage object yet"
    check_cpu_and_memory(u, u["cpu_seconds"], u["max_rss_bytes"])
    assert u["energy_j"] == 0 and u["gpu_seconds"] == 0, u
    assert u.get("gpu_util_pct") is None, u  # not measured: not shown as 0 %


def test_a_part_adopted_by_a_restarted_agent_still_reports_its_usage(daemon_factory, tmp_path):
    """The agent restarts while the part runs: the supervisor's end record
    carries the CPU time and memory, the part's directory the GPUs' energy
    counters at its start; the utilisation is the new agent's samples'."""
    from conftest import free_port
    state = str(tmp_path / "nvml.state")
    write_state(state, "gpu 0 power=200000 util=90\ngpu 1 power=100000 util=30\n")
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port, extra=["--controllers", spec] + FAST,
                         env={"JAZARI_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    fake = os.path.join(BUILD, "tests", "fake", "libnvidia-ml.so.1")
    gpu = daemon_factory(name="gpu", extra=["--controllers", spec, "--gpu-health-interval", "100ms"] + FAST,
                         env={"JAZARI_NVML_LIB": fake, "JAZARI_CUDA_LIB": "/nonexistent/libcuda.so.1",
                              "FAKE_NVML_STATE": state})
    wait_for(lambda: ctl.jz_json("status")["nodes_up"] == 2, what="both nodes up")
    wait_for(lambda: sampled_gpus(gpu) == 4, what="the GPU node's first sample")
    out = str(tmp_path / "burn.out")
    t0 = time.monotonic()
    jid = submit(ctl, "--gpus-per-node", "2", "--", "/usr/bin/python3", "-c", BURN, out, "4")
    wait_for(lambda: os.path.exists(out), what="the job to start")
    assert gpu.stop() == 0
    gpu.start()
    job = ended(ctl, jid)
    life = time.monotonic() - t0
    assert job["state"] == "COMPLETED", job
    assert "adopted" in gpu.log()
    wall = float(open(out).read().split()[0])
    c = committed(ctl, jid)
    check_cpu_and_memory(c, c["cpu_ms"] / 1000, c["max_rss_bytes"], burn=4)
    assert 300 * (wall - 0.3) * 1000 <= c["energy_mj"] <= 300 * (life + 0.2) * 1000, (c, wall, life)
    assert c["gpu_util_pct"] == 60, c
    h = hist_usage(ctl, jid)
    assert (h.cpu_ms, h.energy_mj, h.gpu_util_ms) == (c["cpu_ms"], c["energy_mj"], (h.util_gpu_ms * 60 + 50) // 100), h


def test_a_part_shorter_than_the_sampling_interval_still_gets_its_energy(daemon_factory, tmp_path):
    """gpu_health_interval 10 s (the default) and a part of 2 s: one sample
    before it started and none since; its energy is the counter carried on
    at that sample's power, not 0 (nor 10 s of it)."""
    from conftest import free_port
    state = str(tmp_path / "nvml.state")
    write_state(state, "gpu 0 power=200000 util=90\ngpu 1 power=100000 util=30\n")
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port, extra=["--controllers", spec] + FAST,
                         env={"JAZARI_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    fake = os.path.join(BUILD, "tests", "fake", "libnvidia-ml.so.1")
    gpu = daemon_factory(name="gpu", extra=["--controllers", spec, "--gpu-health-interval", "10s"] + FAST,
                         env={"JAZARI_NVML_LIB": fake, "JAZARI_CUDA_LIB": "/nonexistent/libcuda.so.1",
                              "FAKE_NVML_STATE": state})
    wait_for(lambda: ctl.jz_json("status")["nodes_up"] == 2, what="both nodes up")
    wait_for(lambda: sampled_gpus(gpu) == 4, what="the GPU node's first sample")
    out = str(tmp_path / "burn.out")
    t0 = time.monotonic()
    jid = submit(ctl, "--gpus-per-node", "2", "--", "/usr/bin/python3", "-c", BURN, out)
    assert ended(ctl, jid)["state"] == "COMPLETED"
    life = time.monotonic() - t0
    wall = float(open(out).read().split()[0])
    c = committed(ctl, jid)
    assert 300 * (wall - 0.1) * 1000 <= c["energy_mj"] <= 300 * (life + 0.1) * 1000, (c, wall, life)
    # No sample while it ran (unless a slow machine made it last to the next):
    # no utilisation claimed rather than a made-up one.
    assert c["gpu_util_pct"] in (None, 60), c

#!/usr/bin/python3
"""What GPU health sampling costs an agent: the same agent with sampling on
(--gpu-health-interval 1s, ten times the default rate, and the XID thread
waiting on NVML's event set) and off (0), in rounds that alternate, in one
run.

    health_cost.py BUILD [--rounds N] [--seconds S]

Each round starts a network of one controller and one agent afresh (free
127.0.0.1 ports, state under /var/tmp), the agent with the fake NVML of
the tests (four A100s: tests/unit/fake_nvidia-ml.c; its XID wait blocks
as the driver's does, instead of polling for the tests), lets it settle, then
reads the agent's CPU time (every thread's, /proc/PID/task/*/schedstat) over S seconds.
Printed: the median CPU share of each side over the rounds, its spread,
and on / off. The fake library answers at once; a real driver spends more
per call (NVML's calls are ioctls), which the device check measures."""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    """CPU time of every thread of pid, in seconds, to the nanosecond
    (schedstat: /proc/PID/stat counts 10 ms ticks)."""
    total = 0
    task = "/proc/%d/task" % pid
    for t in os.listdir(task):
        try:
            with open(os.path.join(task, t, "schedstat")) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def round_(build, interval, seconds, token):
    jazarid, jz = os.path.join(build, "jazarid"), os.path.join(build, "jz")
    tmp = tempfile.mkdtemp(prefix="jazari-hbench-", dir=os.environ.get("JAZARI_BENCH_DIR", "/var/tmp"))
    p1, p2 = port(), port()
    spec = "ctl@127.0.0.1:%d" % p1
    common = ["--controllers", spec, "--log-level", "warn", "--join-token", token]
    procs = []
    try:
        procs.append(subprocess.Popen([jazarid, "--name", "ctl", "--listen", "127.0.0.1:%d" % p1,
                                       "--state-dir", os.path.join(tmp, "ctl"),
                                       "--socket", os.path.join(tmp, "ctl.sock")] + common,
                                      stderr=subprocess.DEVNULL))
        env = dict(os.environ, JAZARI_NVML_LIB=os.path.join(build, "tests", "fake", "libnvidia-ml.so.1"),
                   JAZARI_CUDA_LIB="/nonexistent/libcuda.so.1", FAKE_NVML_STATE=os.path.join(tmp, "nvml.state"),
                   FAKE_NVML_POLL_MS="1000")
        with open(env["FAKE_NVML_STATE"], "w") as f:
            f.write("gpu 0 temp=50 power=200000 util=90\n")
        agent = subprocess.Popen([jazarid, "--name", "gpu1", "--listen", "127.0.0.1:%d" % p2,
                                  "--state-dir", os.path.join(tmp, "gpu1"), "--socket", os.path.join(tmp, "a.sock"),
                                  "--gpu-health-interval", interval] + common, stderr=subprocess.DEVNULL, env=env)
        procs.append(agent)
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([jz, "nodes", "--json", "--socket", os.path.join(tmp, "ctl.sock")],
                               capture_output=True, text=True)
            if r.returncode == 0 and '"gpu1"' in r.stdout:
                break
            time.sleep(0.2)
        else:
            sys.exit("bench: the agent did not join")
        time.sleep(3)  # settled: registered, first samples taken
        t0, c0 = time.monotonic(), cpu_s(agent.pid)
        time.sleep(seconds)
        return (cpu_s(agent.pid) - c0) / (time.monotonic() - t0)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    token = subprocess.run([os.path.join(a.build, "jazarid"), "token", "generate"], check=True,
                           capture_output=True, text=True).stdout.strip()
    on, off = [], []
    for _ in range(a.rounds):
        on.append(round_(a.build, "1s", a.seconds, token))
        off.append(round_(a.build, "0", a.seconds, token))
    mon, moff = statistics.median(on), statistics.median(off)
    print("agent CPU with GPU health sampling every 1 s (4 GPUs, fake NVML): %.3f%% of a core (%.3f-%.3f) "
          "vs %.3f%% (%.3f-%.3f) with it off = %.2fx, %d rounds of %.0f s"
          % (mon * 100, min(on) * 100, max(on) * 100, moff * 100, min(off) * 100, max(off) * 100,
             mon / moff if moff else float("inf"), a.rounds, a.seconds))


if __name__ == "__main__":
    main()

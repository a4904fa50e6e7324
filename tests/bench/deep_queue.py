"""The front door under a deep queue: durable submissions per second into a
network whose GPUs are all taken, with an empty queue and then with 100,000
jobs pending that cannot start (each asks a GPU for an hour: the leader's pass
walks them all), against the same network, in the same run. Median of
several rounds, with the spread. The aim: no worse than 2x.

    deep_queue.py BUILD [PENDING] [ROUNDS]"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

build = sys.argv[1]
pending = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
xml = os.path.join(here, "tests", "fixtures", "topologies", "hgx-h100-8gpu.xml")
jazarid, jz, bench = (os.path.join(build, x) for x in ("jazarid", "jz", "tests/bench-submit"))
MEASURE = 5000  # jobs a round


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rate(sock, state, jobs):
    r = subprocess.run([bench, sock, state, "16", str(jobs), "64", "1"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("deep queue: bench-submit failed: %s%s" % (r.stdout, r.stderr))
    return float(re.search(r"([0-9.]+) jobs/s", r.stdout).group(1))


tmp = tempfile.mkdtemp(prefix="jazari-deep-", dir=os.environ.get("JAZARI_BENCH_DIR", "/var/tmp"))
names = ["ctl-a", "ctl-b", "ctl-c"]
ports = [port() for _ in names]
spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(names, ports))
# Every daemon of a new network gets the same token (TLS from the first byte).
token = subprocess.run([jazarid, "token", "generate"], check=True, capture_output=True, text=True).stdout.strip()
procs = []
busy = []  # the jobs that hold every GPU: cancelled at the end (their supervisors outlive the daemons)
sock = None
try:
    for n, p in zip(names, ports):
        procs.append(subprocess.Popen(
            [jazarid, "--name", n, "--listen", "127.0.0.1:%d" % p, "--controllers", spec,
             "--state-dir", os.path.join(tmp, n), "--socket", os.path.join(tmp, n + ".sock"),
             "--topology-xml", xml, "--election-timeout", "500ms", "--log-level", "warn", "--join-token", token],
            stderr=subprocess.DEVNULL))
    sock = os.path.join(tmp, "ctl-a.sock")

    def status():
        r = subprocess.run([jz, "status", "--json", "--socket", sock], capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    deadline = time.time() + 30
    while time.time() < deadline and not (status() and status()["leader"] and status()["nodes_up"] == 3):
        time.sleep(0.1)
    leader = status()["leader"]
    sock = os.path.join(tmp, leader + ".sock")
    state = os.path.join(tmp, leader)
    # Every GPU taken by a job that outlasts the benchmark.
    for _ in range(3):
        busy.append(subprocess.run([jz, "submit", "--socket", sock, "--gpus-per-node", "8", "--time", "2:00:00",
                                    "--", "sleep", "7200"], check=True, capture_output=True, text=True).stdout.strip())
    deadline = time.time() + 30
    while time.time() < deadline:
        r = subprocess.run([jz, "queue", "--json", "--socket", sock], capture_output=True, text=True)
        if sum(j["state"] == "RUNNING" for j in json.loads(r.stdout)["jobs"]) == 3:
            break
        time.sleep(0.1)
    shallow = [rate(sock, state, MEASURE) for _ in range(rounds)]  # the queue: 0 to a few thousand
    queued = MEASURE * rounds
    if pending > queued:
        rate(sock, state, pending - queued)
    deep = [rate(sock, state, MEASURE) for _ in range(rounds)]  # the queue: over `pending`
    ms, md = statistics.median(shallow), statistics.median(deep)
    print("durable submissions with %d jobs pending that cannot start: %.0f jobs/s (%.0f-%.0f) vs %.0f (%.0f-%.0f) "
          "with the queue nearly empty = %.2fx slower (aim: at most 2x; median of %d rounds of %d jobs)"
          % (pending, md, min(deep), max(deep), ms, min(shallow), max(shallow), ms / md if md else 0, rounds, MEASURE))
finally:
    if busy and sock:
        subprocess.run([jz, "cancel", "--socket", sock] + busy, capture_output=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            r = subprocess.run([jz, "queue", "--json", "--socket", sock], capture_output=True, text=True)
            if r.returncode != 0 or not any(j["state"] == "RUNNING" for j in json.loads(r.stdout)["jobs"]):
                break
            time.sleep(0.2)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)

#!/usr/bin/python3
"""The same submit load through real client processes against Jazari (three
controllers on loopback) and against Slurm (Debian's slurmctld, slurmd and
munged, started here on loopback), in one run: acknowledged submissions per
second through `jz submit` and through `sbatch`, and their ratio.

    vs_slurm.py BUILD [JOBS] [WORKERS]

Both sides submit held jobs (sbatch -H, jz submit --hold): they measure
accepting and recording a job, not executing it. Needs root (munged
runs as the munge user). Everything lives in a temporary directory and is
stopped at the end."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_local import port, start_slurm, stop, wait  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
JOBS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
WORKERS = int(sys.argv[3]) if len(sys.argv) > 3 else 8


def load(cmd_for, n, workers):
    """Runs n client processes, `workers` at a time; returns (ok, seconds)."""
    t0 = time.time()
    ok = 0
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for r in ex.map(lambda i: subprocess.run(cmd_for(i), stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL).returncode, range(n)):
            ok += r == 0
    return ok, time.time() - t0


def start_jazari(tmp, procs):
    jazarid, jz = os.path.join(BUILD, "jazarid"), os.path.join(BUILD, "jz")
    names = ["ctl-a", "ctl-b", "ctl-c"]
    ports = [port() for _ in names]
    spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(names, ports))
    # Every daemon of a new network gets the same token (TLS from the first byte).
    token = subprocess.run([jazarid, "token", "generate"], check=True, capture_output=True, text=True).stdout.strip()
    for n, p in zip(names, ports):
        procs.append(subprocess.Popen([jazarid, "--name", n, "--listen", "127.0.0.1:%d" % p, "--controllers", spec,
                                       "--state-dir", os.path.join(tmp, n), "--socket", os.path.join(tmp, n + ".sock"),
                                       "--log-level", "warn", "--join-token", token], stderr=subprocess.DEVNULL))

    def leader():
        r = subprocess.run([jz, "status", "--json", "--socket", os.path.join(tmp, "ctl-a.sock")],
                           capture_output=True, text=True)
        return r.returncode == 0 and json.loads(r.stdout)["leader"]
    wait(leader, 20, "a Jazari leader")
    return jz, os.path.join(tmp, leader() + ".sock")


def main():
    if os.geteuid() != 0:
        print("vs Slurm: skipped (needs root to start munged and slurmd)")
        return
    tmp = tempfile.mkdtemp(prefix="jazari-vs-slurm-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        env = start_slurm(tmp, procs)
        os.environ["SLURM_CONF"] = env["SLURM_CONF"]
        s_ok, s_secs = load(lambda i: ["sbatch", "-H", "-Q", "-o", "/dev/null", "--wrap", "true"], JOBS, WORKERS)
        jz, sock = start_jazari(tmp, procs)
        j_ok, j_secs = load(lambda i: [jz, "submit", "--hold", "--socket", sock, "--", "true"], JOBS, WORKERS)
        s_rate, j_rate = s_ok / s_secs, j_ok / j_secs
        print("submit through the client, %d processes at a time: jz %.0f/s (3 controllers, the leader's socket) "
              "vs sbatch %.0f/s (slurmctld); ours / Slurm's = %.2fx%s"
              % (WORKERS, j_rate, s_rate, j_rate / s_rate if s_rate else float("nan"),
                 "" if s_ok == JOBS and j_ok == JOBS else " (refused: jz %d, sbatch %d)" % (JOBS - j_ok, JOBS - s_ok)))
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

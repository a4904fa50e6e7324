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
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
JOBS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
WORKERS = int(sys.argv[3]) if len(sys.argv) > 3 else 8


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    sys.exit("vs_slurm: timed out waiting for " + what)


def load(cmd_for, n, workers):
    """Runs n client processes, `workers` at a time; returns (ok, seconds)."""
    t0 = time.time()
    ok = 0
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for r in ex.map(lambda i: subprocess.run(cmd_for(i), stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL).returncode, range(n)):
            ok += r == 0
    return ok, time.time() - t0


def start_slurm(tmp, procs):
    munge = pwd.getpwnam("munge")
    os.makedirs("/run/munge", exist_ok=True)
    os.chown("/run/munge", munge.pw_uid, munge.pw_gid)
    if not os.path.exists("/etc/munge/munge.key"):
        subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
    mdir = os.path.join(tmp, "munge")
    os.makedirs(mdir)
    os.chown(mdir, munge.pw_uid, munge.pw_gid)
    sock = os.path.join(mdir, "munge.sock")
    procs.append(subprocess.Popen(["runuser", "-u", "munge", "--", "munged", "-F", "--socket", sock,
                                   "--pid-file", os.path.join(mdir, "munged.pid"), "--force"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait(lambda: os.path.exists(sock), 10, "munged")
    ctl, node = port(), port()
    conf = os.path.join(tmp, "slurm.conf")
    with open(conf, "w") as f:
        f.write("""ClusterName=jzbench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
AuthType=auth/munge
AuthInfo=socket=%s
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
ReturnToService=2
MaxJobCount=1000000
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile=%s/slurmctld.log
SlurmdLogFile=%s/slurmd.log
NodeName=jzbench NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=bench Nodes=jzbench Default=YES MaxTime=INFINITE State=UP
""" % (ctl, node, sock, tmp, tmp, tmp, tmp, tmp, tmp))
    for d in ("state", "spool"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    env = dict(os.environ, SLURM_CONF=conf)
    procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", conf], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs.append(subprocess.Popen(["slurmd", "-D", "-N", "jzbench", "-f", conf], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait(lambda: subprocess.run(["sinfo", "-h"], env=env, capture_output=True).returncode == 0, 30, "slurmctld")
    return env


def start_jazari(tmp, procs):
    jazarid, jz = os.path.join(BUILD, "jazarid"), os.path.join(BUILD, "jz")
    names = ["ctl-a", "ctl-b", "ctl-c"]
    ports = [port() for _ in names]
    spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(names, ports))
    for n, p in zip(names, ports):
        procs.append(subprocess.Popen([jazarid, "--name", n, "--listen", "127.0.0.1:%d" % p, "--controllers", spec,
                                       "--state-dir", os.path.join(tmp, n), "--socket", os.path.join(tmp, n + ".sock"),
                                       "--log-level", "warn"], stderr=subprocess.DEVNULL))

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
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

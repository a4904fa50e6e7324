#!/usr/bin/python3
"""Running jobs on one node, Jazari against Slurm, in one run: how many trivial
jobs per second each runs to completion, and how long a job takes from the
submit command to its first instruction.

    exec_vs_slurm.py BUILD [--jobs N] [--workers W] [--latency-jobs M]
                           [--latency-gap S] [--slurm-oversubscribe K]
                           [--slurm-cgroup] [--deadline S]

Jazari: one jazarid that is both the (only) controller and the node that runs
the jobs. Slurm: Debian's munged, slurmctld and slurmd on loopback
(slurm_local.py), one node with this machine's CPU count, tuned for
throughput as an admin would (slurm_local.RUN). Each job takes one CPU on
both sides, so both run as many jobs at once as the machine has CPUs. One
side runs at a time: Slurm is measured and stopped, then Jazari, so neither
competes with the other's idle daemons. Each side first runs one job that
is not counted (warm-up).

1. Throughput: N jobs running `true`, submitted by W client processes at a
   time (`jz submit --workdir DIR -- true`; `sbatch --wrap true`, a /bin/sh
   script), each writing its output to a file in DIR. The clock runs from
   just before the first submit until a poll (every 20 ms) first finds no
   job pending or running (`jz queue --json`; `squeue`, which also lists
   COMPLETING); then every job must be COMPLETED (`jz queue --all --json`;
   `squeue -t all`).
2. Submit-to-start latency: M jobs one at a time; each one's command, the
   same /bin/sh line on both sides, writes `date +%s%N` to a file named by
   its sequence number; the latency is that time minus the client-side time
   taken just before starting the submit command. The next job is submitted
   once the previous one has ended, after a pause drawn uniformly from
   [0, S) seconds (the same draws for both sides), so that submissions do
   not fall in step with Slurm's once-a-second scheduler. p50 and p99
   (nearest rank: with fewer than 100 jobs, p99 is the slowest).

A side that does not run every job before the deadline is a failed
measurement: the script says which side and why, and exits 1. Needs root
(munged, slurmd). Everything lives in a temporary directory under /var/tmp;
every process started here is stopped at the end, whatever happens."""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_local import RUN, port, remove_cgroups, slurm_cgroups, slurm_node_idle, start_slurm, stop  # noqa: E402

PROG = "exec_vs_slurm"
POLL = 0.02


class Failed(Exception):
    """A side did not do what was asked: the measurement failed."""


def until(cond, deadline, what, pause=POLL):
    """Polls cond() until it returns a true value; Failed past the deadline."""
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failed("timed out waiting for " + (what() if callable(what) else what))
        time.sleep(pause)


def submit_all(cmd_for, n, workers):
    """Runs n submit commands, `workers` at a time; returns the job ids
    printed (refused submissions raise Failed after all have run)."""
    def one(i):
        r = subprocess.run(cmd_for(i), capture_output=True, text=True)
        return r.returncode, r.stdout.strip(), r.stderr.strip()
    ids, refused = [], []
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for rc, out, err in ex.map(one, range(n)):
            if rc == 0 and out:
                ids.append(out.split(";")[0])
            else:
                refused.append("exit %d: %s" % (rc, err or out))
    if refused:
        raise Failed("%d of %d submissions refused; first: %s" % (len(refused), n, refused[0]))
    return ids


def pct(values, p):
    """The p-th percentile, nearest rank."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def stamp_cmd(path):
    """The job's command: its start time in ns, written whole (rename)."""
    return "date +%%s%%N > %s.tmp && mv %s.tmp %s" % (path, path, path)


def read_stamp(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


class Side:
    """What the two measurements need from a scheduler."""
    name = ""

    def submit_cmd(self, wrap, workdir):  # the argv that submits `sh -c wrap`
        raise NotImplementedError

    def active(self):  # ids pending or running (or completing)
        raise NotImplementedError

    def states(self):  # {id: state} for every job known
        raise NotImplementedError

    def wait_end(self, job, deadline):
        until(lambda: job not in self.active(), deadline, "%s job %s to end" % (self.name, job))

    def cancel_all(self):
        raise NotImplementedError


def throughput(side, n, workers, workdir, deadline_s):
    os.makedirs(workdir, exist_ok=True)
    cmd = side.submit_cmd("true", workdir)
    deadline = time.monotonic() + deadline_s
    t0 = time.monotonic()
    ids = submit_all(lambda i: cmd, n, workers)
    until(lambda: not side.active(), deadline,
          lambda: "%s to run %d jobs to completion (%d still pending or running)" % (side.name, n, len(side.active())))
    secs = time.monotonic() - t0
    states = side.states()
    bad = [(i, states.get(i, "missing")) for i in ids if states.get(i) != "COMPLETED"]
    if bad:
        raise Failed("%s: %d of %d jobs did not complete; first: job %s %s"
                     % (side.name, len(bad), n, bad[0][0], bad[0][1]))
    return n / secs


def latency(side, m, workdir, deadline_s, gap=0.0):
    """Submit-to-start latencies in seconds, one job at a time, each after a
    pause drawn uniformly from [0, gap) s (the same draws for both sides)."""
    os.makedirs(workdir, exist_ok=True)
    pauses = random.Random(42)
    out = []
    for i in range(m):
        time.sleep(pauses.uniform(0, gap))
        path = os.path.join(workdir, "start-%d" % i)
        if os.path.exists(path):
            raise Failed("%s exists before its job was submitted" % path)
        cmd = side.submit_cmd(stamp_cmd(path), workdir)
        deadline = time.monotonic() + deadline_s
        t0 = time.time_ns()
        r = subprocess.run(cmd, capture_output=True, text=True)
        job = r.stdout.strip().split(";")[0]
        if r.returncode != 0 or not job:
            raise Failed("%s refused job %d (exit %d): %s" % (side.name, i, r.returncode, r.stderr.strip()))
        ts = until(lambda: read_stamp(path), deadline, "%s job %s to start" % (side.name, job), pause=0.001)
        out.append((ts - t0) / 1e9)
        side.wait_end(job, deadline)
    return out


class Slurm(Side):
    name = "slurm"

    def __init__(self, env):
        self.env = env

    def q(self, *args):
        r = subprocess.run(["squeue", "-h"] + list(args), env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise Failed("squeue failed: " + r.stderr.strip())
        return r.stdout.split("\n")

    def submit_cmd(self, wrap, workdir):
        return ["sbatch", "--parsable", "-D", workdir, "-o", os.path.join(workdir, "slurm-%j.out"),
                "--wrap", wrap]

    def active(self):
        return set(x.strip() for x in self.q("-o", "%i") if x.strip())

    def states(self):
        return dict(x.split() for x in self.q("-t", "all", "-o", "%i %T") if x.strip())

    def cancel_all(self):
        subprocess.run(["scancel", "-u", "root"], env=self.env, capture_output=True)


class Jazari(Side):
    name = "jazari"

    def __init__(self, jz, sock):
        self.jz, self.sock = jz, sock

    def q(self, *args):
        r = subprocess.run([self.jz, "queue", "--json", "--socket", self.sock] + list(args),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failed("jz queue failed (exit %d): %s" % (r.returncode, r.stderr.strip()))
        doc = json.loads(r.stdout)
        if doc.get("truncated"):
            raise Failed("jz queue --json answered a truncated list")
        return doc["jobs"]

    def submit_cmd(self, wrap, workdir):
        if wrap == "true":
            return [self.jz, "submit", "--socket", self.sock, "--workdir", workdir, "--", "true"]
        return [self.jz, "submit", "--socket", self.sock, "--workdir", workdir, "--", "sh", "-c", wrap]

    def active(self):
        return set(str(j["id"]) for j in self.q())

    def states(self):
        return dict((str(j["id"]), j["state"]) for j in self.q("--all"))

    def wait_end(self, job, deadline):
        left = max(1, int(deadline - time.monotonic()))
        r = subprocess.run([self.jz, "wait", job, "--socket", self.sock, "--timeout", str(left)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failed("jz wait %s: exit %d: %s" % (job, r.returncode, (r.stderr or r.stdout).strip()))

    def cancel_all(self):
        ids = sorted(self.active())
        if ids:
            subprocess.run([self.jz, "cancel", "--socket", self.sock] + ids, capture_output=True)


def start_jazari(build, tmp, procs, log):
    jazarid, jz = os.path.join(build, "jazarid"), os.path.join(build, "jz")
    p = port()
    sock = os.path.join(tmp, "jazarid.sock")
    procs.append(subprocess.Popen([jazarid, "--name", "solo", "--listen", "127.0.0.1:%d" % p,
                                   "--controllers", "solo@127.0.0.1:%d" % p, "--state-dir", os.path.join(tmp, "state"),
                                   "--socket", sock, "--log-level", "warn"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def up():
        if procs[-1].poll() is not None:
            raise Failed("jazarid exited with status %d" % procs[-1].returncode)
        r = subprocess.run([jz, "status", "--json", "--socket", sock], capture_output=True, text=True)
        return r.returncode == 0 and json.loads(r.stdout).get("nodes_up") == 1
    until(up, time.monotonic() + 20, "jazarid to elect itself and register its node", pause=0.05)
    return Jazari(jz, sock)


def measure(side, args, tmp):
    """Warm-up job, then both measurements; cancels what is left on failure."""
    try:
        latency(side, 1, os.path.join(tmp, "warm"), args.deadline)
        rate = throughput(side, args.jobs, args.workers, os.path.join(tmp, "throughput"), args.deadline)
        lat = latency(side, args.latency_jobs, os.path.join(tmp, "latency"), 30, args.latency_gap)
        return rate, lat
    except Exception:
        try:
            side.cancel_all()
        except Exception:  # the side may be what failed
            pass
        raise


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(description="jobs run on one node: Jazari vs Slurm")
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--jobs", "-n", type=int, default=100, help="jobs for the throughput run [100]")
    ap.add_argument("--workers", "-w", type=int, default=8, help="client processes submitting at a time [8]")
    ap.add_argument("--latency-jobs", "-m", type=int, default=40, help="jobs for the latency run [40]")
    ap.add_argument("--latency-gap", type=float, default=1.0, metavar="S",
                    help="pause before each latency job, uniform in [0, S) seconds [1]")
    ap.add_argument("--slurm-oversubscribe", type=int, default=0, metavar="K",
                    help="let Slurm run K jobs on each CPU (OverSubscribe=FORCE:K) [0: one job per CPU]")
    ap.add_argument("--slurm-cgroup", action="store_true",
                    help="Slurm confines jobs as Jazari does: proctrack/cgroup, task/cgroup,task/affinity "
                         "[proctrack/linuxproc, task/none]")
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds each side has for the throughput run [60 + one per job]")
    args = ap.parse_args()
    if args.deadline is None:
        args.deadline = 60.0 + args.jobs
    if os.geteuid() != 0:
        print("execution vs Slurm: skipped (needs root to start munged and slurmd)")
        return
    tmp = tempfile.mkdtemp(prefix="jazari-exec-vs-slurm-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    procs = []
    current = None
    cgroups_before = slurm_cgroups()
    try:
        # Slurm first, alone.
        current = "slurm"
        stmp = os.path.join(tmp, "slurm")
        os.makedirs(stmp)
        part = "OverSubscribe=FORCE:%d" % args.slurm_oversubscribe if args.slurm_oversubscribe else ""
        env = start_slurm(stmp, procs, tuning=RUN, scheduler="sched/builtin", partition=part,
                          cgroup=args.slurm_cgroup)
        os.environ["SLURM_CONF"] = env["SLURM_CONF"]  # for sbatch, squeue, scancel
        until(lambda: slurm_node_idle(env), time.monotonic() + 30, "slurmd to register its node", pause=0.1)
        s_rate, s_lat = measure(Slurm(env), args, stmp)
        stop(procs)
        procs.clear()

        current = "jazari"
        jtmp = os.path.join(tmp, "jazari")
        os.makedirs(jtmp)
        with open(os.path.join(jtmp, "jazarid.log"), "w") as log:
            j_rate, j_lat = measure(start_jazari(args.build, jtmp, procs, log), args, jtmp)
        stop(procs)
        procs.clear()
        current = None

        variant = ", ".join(x for x in ("OverSubscribe=FORCE:%d" % args.slurm_oversubscribe
                                         if args.slurm_oversubscribe else "",
                                         "cgroup" if args.slurm_cgroup else "") if x)
        print("execution: %d trivial jobs run to completion (1 node, %d CPUs, %d clients): jazari %.1f jobs/s, "
              "slurm %.1f jobs/s%s = %.1fx"
              % (args.jobs, os.cpu_count(), args.workers, j_rate, s_rate,
                 " (%s)" % variant if variant else "", j_rate / s_rate))

        def ms(x):
            return "%.1f ms" % (x * 1e3) if x < 0.1 else "%.0f ms" % (x * 1e3)
        jp50, sp50, jp99, sp99 = pct(j_lat, 50), pct(s_lat, 50), pct(j_lat, 99), pct(s_lat, 99)
        print("submit-to-start latency over %d jobs: p50 jazari %s vs slurm %s = %.1fx faster; "
              "p99 jazari %s vs slurm %s = %.1fx faster"
              % (args.latency_jobs, ms(jp50), ms(sp50), sp50 / jp50, ms(jp99), ms(sp99), sp99 / jp99))
    except Failed as e:
        where = {"slurm": os.path.join(tmp, "slurm", "slurmctld.log"),
                 "jazari": os.path.join(tmp, "jazari", "jazarid.log")}.get(current)
        log = tail(where) if where else ""
        sys.stderr.write("%s: failed measurement (%s): %s\n%s" % (PROG, current or "?", e,
                         ("last lines of its %s:\n%s" % (os.path.basename(where), log)) if log else ""))
        sys.exit(1)
    finally:
        stop(procs)
        if args.slurm_cgroup:
            remove_cgroups(cgroups_before)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""What TLS costs the control plane: the same network with TLS (as it always
runs) and with TLS off (JAZARI_TEST_PLAINTEXT=1, a switch for this
benchmark only), in rounds that alternate, in one run.

    tls_cost.py BUILD [--rounds N] [--connections C] [--jobs J]
                      [--latency-jobs M] [--latency-gap S]

Each round starts a network afresh and stops it at the end: 3 controllers
and 1 agent (a jazarid that is not a controller, this machine's own CPUs,
labelled `bench`), every daemon on its own free 127.0.0.1 port, its state
under a temporary directory in /var/tmp. Both networks are started alike,
with the same arguments (a network token from `jazarid token generate`: the
plaintext daemons ignore it); the plaintext one has JAZARI_TEST_PLAINTEXT=1
in every daemon's environment. Rounds alternate: TLS, plaintext, TLS, ...

Both figures go in through the AGENT's Unix socket, as a person on that node
would: the agent forwards each request to the leader on its one long-lived
connection, the leader replicates the entry to the followers (Raft), and
answers. Root on an agent is not the network's admin (it may not run jobs
through a node), so both figures are measured as the account `nobody`.

1. Durable submissions per second: bench-submit (tests/bench/bench_submit.c)
   on the agent's socket, C connections each keeping 64 requests in flight,
   J held jobs (queued, never run), every one acknowledged once committed.
2. Submit-to-start latency: M jobs, one at a time (`jz submit --constraint
   bench`: they run on the agent, so the start also crosses the agent's long
   poll); each one's command writes `date +%s%N` to a file; the latency is
   that minus the client's clock taken just before starting `jz submit`.
   The next job is submitted once the previous one has ended (`jz wait`),
   after a pause drawn uniformly from [0, S) s (the same draws each round).
   p50 and p99 (nearest rank: with fewer than 100 jobs, p99 is the slowest).
   One job a round before them is not counted (warm-up).

Printed: per figure, the median over the rounds of each side, its spread
(min-max), and TLS / plaintext. The aim: TLS loses at most 20% (throughput
at least 0.8x, latency at most 1.2x). Needs root (to act as `nobody`).
Every process started here is stopped at the end, whatever happens."""
import argparse
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PROG = "tls_cost"
NAMES = ["ctl-a", "ctl-b", "ctl-c"]
AGENT = "node-1"


class Failed(Exception):
    """The measurement could not be made: says why."""


def until(cond, deadline, what, pause=0.02):
    """Polls cond() until it returns a true value; Failed past the deadline."""
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failed("timed out waiting for " + (what() if callable(what) else what))
        time.sleep(pause)


_given = set()


def free_port():
    """A loopback port free now, below the ephemeral range (no outgoing
    connection takes it before the daemon binds it), never given twice."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        p = rng.randrange(20000, 32000)
        if p in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        _given.add(p)
        return p
    raise Failed("no free loopback port in 20000-32000")


def pct(values, p):
    """The p-th percentile, nearest rank."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def tail(path, n=10):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Network:
    """3 controllers and one agent, TLS on or off; stop() ends them all."""

    def __init__(self, build, root, token, tls, nobody):
        self.build, self.tls, self.nobody = build, tls, nobody
        self.jz = os.path.join(build, "jz")
        self.dir = tempfile.mkdtemp(prefix="tls-" if tls else "plain-", dir=root)
        os.chmod(self.dir, 0o755)  # nobody reaches the agent's socket
        self.pub = os.path.join(self.dir, "pub")  # the jobs' directory, and bench-submit's fsync probe
        os.mkdir(self.pub)
        os.chmod(self.pub, 0o1777)
        self.procs, self.logs = [], {}
        ports = [free_port() for _ in NAMES]
        self.spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(NAMES, ports))
        env = dict(os.environ)
        env.pop("JAZARI_TEST_PLAINTEXT", None)
        if not tls:
            env["JAZARI_TEST_PLAINTEXT"] = "1"
        common = ["--controllers", self.spec, "--election-timeout", "500ms", "--log-level", "warn",
                  "--max-jobs-per-user", "10000000", "--join-token", token]
        self.sock = {}
        self.plan = []
        for name, p in list(zip(NAMES, ports)) + [(AGENT, free_port())]:
            self.sock[name] = os.path.join(self.dir, name + ".sock")
            args = [os.path.join(build, "jazarid"), "--name", name, "--listen", "127.0.0.1:%d" % p,
                    "--state-dir", os.path.join(self.dir, name), "--socket", self.sock[name]] + common
            if name == AGENT:
                args += ["--labels", "bench"]
            self.logs[name] = os.path.join(self.dir, name + ".log")
            self.plan.append((name, args))
        self.env = env

    def start(self):
        for name, args in self.plan:
            with open(self.logs[name], "w") as log:
                self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                                   start_new_session=True))

    def check_alive(self):
        for name, p in zip(NAMES + [AGENT], self.procs):
            if p.poll() is not None:
                raise Failed("jazarid %s exited with status %d:\n%s" % (name, p.returncode, tail(self.logs[name])))

    def status(self, name, as_nobody=False):
        self.check_alive()
        r = self.run([self.jz, "status", "--json", "--socket", self.sock[name]], as_nobody)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def run(self, argv, as_nobody=True, **kw):
        if as_nobody:
            kw.update(user=self.nobody.pw_uid, group=self.nobody.pw_gid, extra_groups=[])
        return subprocess.run(argv, capture_output=True, text=True, cwd=self.pub, **kw)

    def wait_ready(self, timeout=60):
        """A leader, every node up, and the agent answering for the network."""
        deadline = time.monotonic() + timeout

        def up():
            s = self.status(NAMES[0])
            if not (s and s.get("leader") and s.get("nodes_up") == 4):
                return None
            a = self.status(AGENT, as_nobody=True)
            return a and a.get("leader") and a.get("nodes_up") == 4
        until(up, deadline, "a leader and 4 nodes up", pause=0.05)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def stamp_cmd(path):
    return "date +%%s%%N > %s.tmp && mv %s.tmp %s" % (path, path, path)


def read_stamp(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def latency(net, m, gap, tag):
    """Submit-to-start latencies (s) of m jobs, one at a time, on the agent."""
    pauses = random.Random(42)
    out = []
    for i in range(m):
        time.sleep(pauses.uniform(0, gap))
        path = os.path.join(net.pub, "%s-%d" % (tag, i))
        cmd = [net.jz, "submit", "--socket", net.sock[AGENT], "--workdir", net.pub, "--constraint", "bench",
               "--", "sh", "-c", stamp_cmd(path)]
        deadline = time.monotonic() + 30
        t0 = time.time_ns()
        r = net.run(cmd)
        job = r.stdout.strip().split(";")[0]
        if r.returncode != 0 or not job:
            raise Failed("the agent refused job %d (exit %d): %s" % (i, r.returncode, r.stderr.strip()))
        ts = until(lambda: read_stamp(path), deadline, lambda: "job %s to start (%s)" % (job, "TLS" if net.tls
                                                                                           else "plaintext"),
                   pause=0.001)
        out.append((ts - t0) / 1e9)
        r = net.run([net.jz, "wait", job, "--socket", net.sock[AGENT], "--timeout", "30"])
        if r.returncode != 0:
            raise Failed("jz wait %s: exit %d: %s" % (job, r.returncode, (r.stderr or r.stdout).strip()))
    return out


def cpu_seconds(pid):
    """User and system time of a process, all its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(net, bench, conns, jobs):
    """Acknowledged jobs/s, and the four daemons' CPU time per job (s)."""
    before = sum(cpu_seconds(p.pid) for p in net.procs)
    r = net.run([bench, net.sock[AGENT], net.pub, str(conns), str(jobs), "64"], timeout=600)
    cpu = sum(cpu_seconds(p.pid) for p in net.procs) - before  # bench-submit's fsync probe: not the daemons'
    m = re.search(r"([0-9.]+) jobs/s acknowledged", r.stdout)
    if r.returncode != 0 or not m:
        raise Failed("bench-submit on the agent's socket failed (exit %d): %s%s"
                     % (r.returncode, r.stdout.strip(), r.stderr.strip()))
    return float(m.group(1)), cpu / jobs


def spread(v, fmt, unit):
    """The median with its unit, then the spread: "12.5 ms (11.0-14.2)"."""
    return (fmt + "%s (" + fmt + "-" + fmt + ")") % (statistics.median(v), unit, min(v), max(v))


def main():
    ap = argparse.ArgumentParser(description="what TLS costs the control plane: TLS vs plaintext, alternating")
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each side [3]")
    ap.add_argument("--connections", type=int, default=32, help="bench-submit's connections [32]")
    ap.add_argument("--jobs", type=int, default=20000, help="held jobs submitted a round [20000]")
    ap.add_argument("--latency-jobs", type=int, default=40, help="jobs one at a time a round [40]")
    ap.add_argument("--latency-gap", type=float, default=0.2, metavar="S",
                    help="pause before each latency job, uniform in [0, S) seconds [0.2]")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("TLS cost: skipped (needs root, to submit as nobody through an agent)")
        return
    build = os.path.abspath(args.build)
    bench = os.path.join(build, "tests", "bench-submit")
    nobody = pwd.getpwnam("nobody")
    root = tempfile.mkdtemp(prefix="jazari-tls-cost-", dir=os.environ.get("JAZARI_BENCH_DIR", "/var/tmp"))
    os.chmod(root, 0o755)
    res = {tls: {"rate": [], "cpu": [], "p50": [], "p99": []} for tls in (True, False)}
    net = None
    try:
        r = subprocess.run([os.path.join(build, "jazarid"), "token", "generate"], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.startswith("jzn1."):
            raise Failed("jazarid token generate: %s" % r.stderr.strip())
        token = r.stdout.strip()
        for rnd in range(args.rounds):
            for tls in (True, False):
                net = Network(build, root, token, tls, nobody)
                net.start()
                net.wait_ready()
                tag = "r%d" % rnd
                latency(net, 1, 0, tag + "-warm")
                lat = latency(net, args.latency_jobs, args.latency_gap, tag)
                rate, cpu = throughput(net, bench, args.connections, args.jobs)
                net.stop()
                net = None
                side = res[tls]
                side["rate"].append(rate)
                side["cpu"].append(cpu * 1e6)
                side["p50"].append(pct(lat, 50) * 1e3)
                side["p99"].append(pct(lat, 99) * 1e3)
                sys.stderr.write("%s: round %d %s: %.0f jobs/s, %.1f us of CPU a job, p50 %.1f ms, p99 %.1f ms\n"
                                 % (PROG, rnd + 1, "TLS" if tls else "plaintext", rate, side["cpu"][-1],
                                    side["p50"][-1], side["p99"][-1]))
        t, p = res[True], res[False]
        md = statistics.median
        print("TLS cost, durable submissions through an agent (3 controllers + 1 agent, %d connections, %d held "
              "jobs a round): TLS %s vs plaintext %s = %.2fx (aim: at least 0.8x; medians of %d rounds each, "
              "alternating); the daemons' CPU time a job: TLS %s vs %s = %.2fx"
              % (args.connections, args.jobs, spread(t["rate"], "%.0f", " jobs/s"), spread(p["rate"], "%.0f", "/s"),
                 md(t["rate"]) / md(p["rate"]), args.rounds, spread(t["cpu"], "%.1f", " us"),
                 spread(p["cpu"], "%.1f", " us"), md(t["cpu"]) / md(p["cpu"])))
        print("TLS cost, submit-to-start latency through an agent (%d jobs one at a time a round): p50 TLS %s vs "
              "plaintext %s = %.2fx; p99 TLS %s vs plaintext %s = %.2fx (aim: at most 1.2x; medians of %d rounds "
              "each)"
              % (args.latency_jobs, spread(t["p50"], "%.1f", " ms"), spread(p["p50"], "%.1f", " ms"),
                 md(t["p50"]) / md(p["p50"]), spread(t["p99"], "%.1f", " ms"), spread(p["p99"], "%.1f", " ms"),
                 md(t["p99"]) / md(p["p99"]), args.rounds))
    except Failed as e:
        where = ""
        if net is not None:
            where = "".join("\n--- %s (%s):\n%s" % (n, "TLS" if net.tls else "plaintext", tail(net.logs[n]))
                            for n in NAMES + [AGENT])
        sys.stderr.write("%s: failed measurement: %s%s\n" % (PROG, e, where))
        sys.exit(1)
    finally:
        if net is not None:
            net.stop()
        if args.keep:
            sys.stderr.write("%s: kept %s\n" % (PROG, root))
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The control plane at scale: three real controllers on loopback and one
`jazarid --emulate-nodes N` (docs/scale.md), at each N:

  * registration storm: the emulator's N nodes all start within one
    heartbeat interval; seconds until every one is up;
  * steady heartbeats: the leader's CPU (every thread, schedstat) as a
    share of one core over W windows of S seconds, its resident memory
    grown per node, the bytes per second per node on the leader's listen
    port (ss's per-socket counters), the emulator's own memory per node;
  * a full queue: twice the GPUs in whole-node jobs (`sleep 600`), the
    scheduler's mean pass time at the leader (jazari_scheduler_pass_seconds
    from /metrics) and the seconds until every node runs one;
  * leader failover under that load: the leader SIGKILLed; seconds until
    another leads, until it runs a scheduling pass, and until it starts a
    job again (a few running jobs are cancelled through a survivor so that
    there is room);
  * a cut site: the emulator silences 30% of its nodes (SIGUSR1), the
    leader marks them down, they come back (SIGUSR2): seconds until every
    node is up again.

The reference, measured in the same run: the same leader's CPU with no
emulated nodes (three controllers only). Also, before the emulator starts,
one real idle agent (a jazarid of the same topology, no jobs): its CPU and
resident memory, which the emulation must not have made heavier. Printed: one table, a row per N,
per-node costs so that their growth shows; median and spread (min..max)
over the windows.

    emulate.py BUILD [--sizes 1000,3000,10000] [--seconds S] [--windows W]

make bench runs it short (one N of 1000, JAZARI_BENCH_EMU=short, the
default), full with JAZARI_BENCH_EMU=full (1,000, 3,000 and 10,000 nodes:
several minutes), not at all with JAZARI_BENCH_EMU=0."""
import argparse
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
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
XML = os.path.join(HERE, "..", "fixtures", "topologies", "hgx-h100-8gpu.xml")  # 8 GPUs a node
GPUS = 8


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    """CPU time of every thread of pid, in seconds (schedstat, ns)."""
    total = 0
    task = "/proc/%d/task" % pid
    for t in os.listdir(task):
        try:
            with open(os.path.join(task, t, "schedstat")) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sock_bytes(listen_port):
    """{(local, peer): bytes sent + received} of the TCP connections to
    listen_port (ss -ti's counters, per socket)."""
    r = subprocess.run(["ss", "-tinH", "state", "established", "( sport = :%d )" % listen_port],
                       capture_output=True, text=True)
    out, key = {}, None
    for line in r.stdout.splitlines():
        if not line.startswith((" ", "\t")):
            f = line.split()
            key = (f[-2], f[-1]) if len(f) >= 2 else None
            continue
        if key:
            sent = re.search(r"bytes_sent:(\d+)", line)
            recv = re.search(r"bytes_received:(\d+)", line)
            out[key] = (int(sent.group(1)) if sent else 0) + (int(recv.group(1)) if recv else 0)
    return out


class Net:
    def __init__(self, build, tmp):
        self.build, self.tmp = build, tmp
        self.jazarid, self.jzb = os.path.join(build, "jazarid"), os.path.join(build, "jz")
        self.names = ["ctl-a", "ctl-b", "ctl-c"]
        self.ports = {n: port() for n in self.names}
        self.http = {n: port() for n in self.names}
        self.spec = ",".join("%s@127.0.0.1:%d" % (n, self.ports[n]) for n in self.names)
        self.token = subprocess.run([self.jazarid, "token", "generate"], check=True, capture_output=True,
                                    text=True).stdout.strip()
        self.procs, self.emu = {}, None
        for n in self.names:
            self.start(n)

    def start(self, n):
        self.procs[n] = subprocess.Popen(
            [self.jazarid, "--name", n, "--listen", "127.0.0.1:%d" % self.ports[n], "--controllers", self.spec,
             "--http-listen", "127.0.0.1:%d" % self.http[n], "--emulated-nodes", "on",
             "--max-jobs-per-user", "100000", "--state-dir", os.path.join(self.tmp, n),
             "--socket", self.sock(n), "--log-level", "warn", "--join-token", self.token],
            stderr=open(os.path.join(self.tmp, n + ".log"), "a"))

    def sock(self, n):
        return os.path.join(self.tmp, n + ".sock")

    def alive(self):
        return [n for n in self.names if self.procs[n].poll() is None]

    def jz(self, *args, via=None, timeout=60):
        self.last_error = None
        for n in [via] if via else self.alive():
            try:
                r = subprocess.run([self.jzb, args[0], "--socket", self.sock(n)] + list(args[1:]),
                                   capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                self.last_error = "%s: no answer in %d s" % (n, timeout)
                continue
            if r.returncode == 0:
                return r.stdout
            self.last_error = "%s: %s" % (n, r.stderr.strip())
        return None

    def status(self, via=None):
        out = self.jz("status", "--json", via=via, timeout=20)
        try:
            return json.loads(out) if out else None
        except ValueError:
            return None

    def leader(self):
        s = self.status()
        return s["leader"] if s and s.get("leader") in self.alive() else None

    def up(self):
        s = self.status()
        return s["nodes_up"] if s else -1

    def busy(self):
        """Emulated nodes with every GPU taken. (Not `jz queue`: its why-pass
        crashes a controller while jobs that fit are not yet started, the
        bug of lib/sched/pass.c this benchmark found; see docs/scale.md.)"""
        out = self.jz("nodes", "--json", timeout=120)
        try:
            nodes = json.loads(out)["nodes"] if out else []
        except ValueError:
            return -1
        return sum(1 for x in nodes if x["name"].startswith("emu-") and x["gpus_total"] and x["gpus_free"] == 0)

    def ended(self, ids):
        out = self.jz("history", "--json", timeout=120)
        try:
            done = {str(j["id"]) for j in json.loads(out)["jobs"]} if out else set()
        except ValueError:
            return False
        return all(i in done for i in ids)

    def passes(self, n):
        """(sum seconds, count) of n's scheduling passes, from /metrics."""
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http[n], timeout=10).read().decode()
        except OSError:
            return (0.0, 0)
        s = re.search(r"^jazari_scheduler_pass_seconds_sum (\S+)", text, re.M)
        c = re.search(r"^jazari_scheduler_pass_seconds_count (\S+)", text, re.M)
        return (float(s.group(1)) if s else 0.0, int(float(c.group(1))) if c else 0)

    def stop(self):
        for p in list(self.procs.values()) + ([self.emu] if self.emu else []):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in list(self.procs.values()) + ([self.emu] if self.emu else []):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


NET = []  # the network being measured, for the messages of a failed wait


def wait(cond, timeout, what):
    if os.environ.get("JAZARI_BENCH_VERBOSE"):
        print("bench emulate: waiting for %s" % what, file=sys.stderr, flush=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        gone = [n for n in NET[-1].names if NET[-1].procs[n].poll() not in (None, -9)] if NET else []
        if gone:
            raise SystemExit("bench emulate: %s stopped (exit %s) while waiting for %s" %
                             (gone, [NET[-1].procs[n].returncode for n in gone], what))
        v = cond()
        if v:
            return v
        time.sleep(0.25)
    raise SystemExit("bench emulate: %s within %d s" % (what, timeout))


def steady(net, leader, n_nodes, seconds, windows):
    pid = net.procs[leader].pid
    cpus, bps = [], []
    for _ in range(windows):
        c0, b0, t0 = cpu_s(pid), sock_bytes(net.ports[leader]), time.time()
        time.sleep(seconds)
        c1, b1, t1 = cpu_s(pid), sock_bytes(net.ports[leader]), time.time()
        cpus.append(100.0 * (c1 - c0) / (t1 - t0))
        moved = sum(b1[k] - b0[k] for k in b1 if k in b0)
        bps.append(moved / (t1 - t0) / max(n_nodes, 1))
    return cpus, bps


def cpu_shares(pid, seconds, windows):
    """pid's CPU as a share of one core (%), over each window."""
    out = []
    for _ in range(windows):
        c0, t0 = cpu_s(pid), time.time()
        time.sleep(seconds)
        out.append(100.0 * (cpu_s(pid) - c0) / (time.time() - t0))
    return out


def idle_agent(net, tmp, seconds, windows):
    """(CPU shares, MiB resident) of one real agent with nothing to do."""
    agent = subprocess.Popen(
        [net.jazarid, "--name", "idle", "--listen", "127.0.0.1:%d" % port(), "--controllers", net.spec,
         "--topology-xml", XML, "--state-dir", os.path.join(tmp, "idle"), "--socket", os.path.join(tmp, "idle.sock"),
         "--log-level", "warn", "--join-token", net.token], stderr=open(os.path.join(tmp, "idle.log"), "w"))
    try:
        wait(lambda: net.up() >= 4, 60, "the idle agent up")
        time.sleep(3)  # past its registration
        cpus = cpu_shares(agent.pid, seconds, windows)
        return cpus, rss_kib(agent.pid) / 1024.0
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def med(xs):
    return "%.3g [%.3g..%.3g]" % (statistics.median(xs), min(xs), max(xs))


def one(build, n, seconds, windows, steady_only=False):
    tmp = tempfile.mkdtemp(prefix="jazari-emu-", dir=os.environ.get("JAZARI_BENCH_DIR", "/var/tmp"))
    net = Net(build, tmp)
    NET.append(net)
    row = {"n": n}
    try:
        leader = wait(net.leader, 60, "a leader")
        ref_cpu, _ = steady(net, leader, 1, seconds, windows)
        row["agent_cpu"], row["agent_mib"] = idle_agent(net, tmp, seconds, windows)
        wait(lambda: 0 <= net.up() <= 3, 60, "the idle agent down")
        rss0 = rss_kib(net.procs[leader].pid)
        # the registration storm
        t0 = time.time()
        net.emu = subprocess.Popen(
            [net.jazarid, "--emulate-nodes", str(n), "--topology-xml", XML, "--name", "emu", "--controllers", net.spec,
             "--state-dir", os.path.join(tmp, "emu"), "--log-level", "warn", "--join-token", net.token],
            stderr=open(os.path.join(tmp, "emu.log"), "w"))
        wait(lambda: net.up() >= n + 3, 600, "%d nodes up" % n)
        row["storm_s"] = time.time() - t0
        time.sleep(5)
        leader = wait(net.leader, 60, "a leader")
        cpus, bps = steady(net, leader, n, seconds, windows)
        row.update(ref=ref_cpu, cpu=cpus, bps=bps, rss_node=(rss_kib(net.procs[leader].pid) - rss0) / n,
                   emu_node=rss_kib(net.emu.pid) / n)
        if steady_only:
            return row
        # a full queue: twice the GPUs, in whole-node jobs
        # eight plain jobs first (they start first), cancelled in the failover
        ids = []
        for _ in range(8):
            out = net.jz("submit", "--gpus", str(GPUS), "--", "sleep", "600", timeout=60)
            ids.append(out.split()[0] if out else "0")
        jobs, first = 2 * n - 8, None
        while jobs > 0:
            k = min(jobs, 10000)
            out = net.jz("submit", "--array", "1-%d" % k, "--gpus", str(GPUS), "--", "sleep", "600", timeout=300)
            if out is None:
                raise SystemExit("bench emulate: the submission was refused: %s" % net.last_error)
            first = first or int(out.split()[0])
            jobs -= k
        p0 = net.passes(leader)
        t0 = time.time()
        wait(lambda: net.busy() >= n, 600, "%d nodes busy" % n)
        row["fill_s"] = time.time() - t0
        p1 = net.passes(leader)
        row["pass_ms"] = 1000.0 * (p1[0] - p0[0]) / max(p1[1] - p0[1], 1)
        # leader failover under that load
        old = leader
        t0 = time.time()
        net.procs[old].kill()
        net.procs[old].wait()
        new = wait(lambda: (lambda l: l if l and l != old else None)(net.leader()), 120, "a new leader")
        row["elect_s"] = time.time() - t0
        base = net.passes(new)[1]
        wait(lambda: net.passes(new)[1] > base, 120, "a pass by the new leader")
        row["pass_s"] = time.time() - t0
        wait(lambda: net.jz("cancel", *ids, timeout=60) is not None, 120, "a cancel through a survivor")
        wait(lambda: net.ended(ids), 120, "the cancelled jobs in the history")
        wait(lambda: net.busy() >= n, 300, "the freed nodes running jobs again")
        row["sched_s"] = time.time() - t0
        net.start(old)  # back, as a follower
        # a cut site: 30% of the nodes silent, then back
        cut = n * 30 // 100
        net.emu.send_signal(signal.SIGUSR1)
        wait(lambda: 0 <= net.up() <= n + 3 - cut, 300, "the cut nodes down")
        t0 = time.time()
        net.emu.send_signal(signal.SIGUSR2)
        wait(lambda: net.up() >= n + 3, 600, "the cut nodes back")
        row["rejoin_s"] = time.time() - t0
    finally:
        net.stop()
        if not os.environ.get("JAZARI_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--sizes", default="1000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--steady-only", action="store_true", help="the storm and steady heartbeats only")
    a = ap.parse_args()
    rows = [one(a.build, int(s), a.seconds, a.windows, a.steady_only) for s in a.sizes.split(",")]
    print("emulated nodes against 3 controllers on loopback (heartbeat 1 s; %d GPUs a node); "
          "leader CPU %% of a core, median [min..max] of %d windows of %g s" % (GPUS, a.windows, a.seconds))
    print("%7s %8s %20s %22s %10s %12s %10s %9s %8s %8s %8s %8s %9s" %
          ("nodes", "storm_s", "leader_cpu%", "cpu%/node", "KiB/node", "B/s/node", "emuKiB/n",
           "pass_ms", "fill_s", "elect_s", "pass_s", "sched_s", "rejoin_s"))
    for r in rows:
        for k in ("pass_ms", "fill_s", "elect_s", "pass_s", "sched_s", "rejoin_s"):
            r.setdefault(k, float("nan"))
        per = [c / r["n"] for c in r["cpu"]]
        print("%7d %8.1f %20s %22s %10.2f %12s %10.2f %9.2f %8.1f %8.1f %8.1f %8.1f %9.1f" %
              (r["n"], r["storm_s"], med(r["cpu"]), "%.2e [%.2e..%.2e]" % (statistics.median(per), min(per), max(per)),
               r["rss_node"], med(r["bps"]), r["emu_node"], r["pass_ms"], r["fill_s"], r["elect_s"], r["pass_s"],
               r["sched_s"], r["rejoin_s"]))
    for r in rows:
        print("  at %d nodes: the leader's steady CPU is %.2fx its own with no nodes (%s%% of a core); target "
              "at 10,000: at most 10%%" % (r["n"], statistics.median(r["cpu"]) / max(statistics.median(r["ref"]), 1e-9),
                                           med(r["ref"])))
        print("  idle agent (a real jazarid of the same machine, no jobs, heartbeat 1 s): %s%% of a core, "
              "%.1f MiB resident" % (med(r["agent_cpu"]), r["agent_mib"]))


if __name__ == "__main__":
    main()

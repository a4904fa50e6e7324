#!/usr/bin/python3
"""Sites over a WAN against the same sites with no delay, in one run.

    wan.py BUILD [--rounds N] [--quiet S] [--timings LIST]

Both networks are built by tests/integration/wan.py alike: three sites,
each a LAN of two hosts (network namespaces), joined through a router
namespace whose userspace shim holds every inter-site packet. "wan": the
links have 15, 27.5 and 40 ms one way (sites 1-2, 1-3, 2-3), 2 ms jitter,
0.5% loss each way (nftables). "ref": the same namespaces and shim with no
delay and no loss (the reference: what the daemons cost on a LAN). In each
site a controller (also a node) and an agent, on their real addresses.

Measured, each N times (after one warm-up that is not counted):
1. submit-to-start at a remote site: `jz submit` at site 1's controller of
   a job for site 3's agent (`--constraint s3,agent`); the job writes
   `time.time()` as it starts; latency = that minus the clock taken just
   before `jz submit` ran (one machine, one clock).
2. a gang of two nodes (`--nodes 2`) in one site (`--constraint s1`: its
   controller and agent) against one spread over two sites (`--constraint
   x`: the controllers of sites 1 and 2, 30 ms apart): submit to all parts
   started, and submit to the end of a run that exchanges 20 round trips
   of 64 bytes between its nodes (rank 1 connects to MASTER_ADDR:MASTER_PORT,
   as torch.distributed does).
3. false elections: the term at a follower over S quiet seconds (nothing
   killed, only heartbeats): every increase is an election nobody needed.
4. failover: the leader controller is killed (SIGKILL); the time until a
   survivor names a new leader, and until a submission at a survivor is
   accepted (committed by the new leader). The killed one is restarted and
   the network settles before the next round.

Timings (--timings, default "default"): each is a set of daemon flags,
a comma list runs each on both networks. "default": the daemon's own;
"lan200" / "lan400": --election-timeout 200ms / 400ms, as a LAN-tuned site
might set; "-fixed" after a name: with --election-timeout-rtts 0, the
election timeout the setting alone, as before the daemon derived it from
measured round trips (the "before" figures). The election timeout each
network's first controller uses is printed beside (jz status --json:
election_timeout_ms).

Printed: a table, per figure the median over the rounds with its spread
(min-max), wan / ref. Needs root (namespaces). Everything started here is
stopped and removed at the end, whatever happens."""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# "-fixed": the election timeout is the setting alone (--election-timeout-rtts
# 0), as before the daemon derived it from round trips: the "before" figures.
TIMINGS = {"default": [], "fixed": ["--election-timeout-rtts", "0"],
           "lan400": ["--election-timeout", "400ms"],
           "lan400-fixed": ["--election-timeout", "400ms", "--election-timeout-rtts", "0"],
           "lan200": ["--election-timeout", "200ms"],
           "lan200-fixed": ["--election-timeout", "200ms", "--election-timeout-rtts", "0"]}

EXCHANGE = r'''
import os, socket, sys, time
out, rounds = sys.argv[1], int(sys.argv[2])
rank = int(os.environ["NODE_RANK"])
open("%s.start.%d" % (out, rank), "w").write(repr(time.time()))
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
def exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise SystemExit("peer closed")
        b += x
    return b
if rank == 0:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); s.settimeout(60)
    c, _ = s.accept()
    for _ in range(rounds):
        c.sendall(exact(c, 64))
else:
    deadline = time.time() + 60
    while True:
        try:
            c = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.01)
    for _ in range(rounds):
        c.sendall(b"x" * 64); exact(c, 64)
c.close()
open("%s.end.%d" % (out, rank), "w").write(repr(time.time()))
'''


class Failed(Exception):
    pass


def wait(cond, timeout, what, step=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failed("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(step)


def status(d):
    if not d.proc or d.proc.poll() is not None:
        return None
    r = d.jz("status", "--json", timeout=10)
    return json.loads(r.stdout) if r.returncode == 0 else None


def read_float(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return float(text) if text else None
    except (OSError, ValueError):
        return None


def submit(d, *args):
    r = d.jz("submit", "--json", *args, timeout=60)
    if r.returncode != 0:
        raise Failed("jz submit: " + r.stderr.strip())
    return json.loads(r.stdout)["id"]


def done(d, jid):
    r = d.jz("wait", str(jid), "--timeout", "60", timeout=90)
    if r.returncode != 0:
        raise Failed("job %d did not complete: %s %s" % (jid, r.stdout.strip(), r.stderr.strip()))


def remote_start(net, work, n):
    c1 = net.ctls[0]
    out = []
    for i in range(n + 1):
        path = os.path.join(work, "remote.%d" % i)
        t0 = time.time()
        jid = submit(c1, "--constraint", "s3,agent", "--workdir", work, "--", "/usr/bin/python3", "-c",
                     "import time; open(%r, 'w').write(repr(time.time()))" % path)
        done(c1, jid)
        t = read_float(path)
        if t is None:
            raise Failed("the remote job wrote no start time")
        if i:
            out.append(t - t0)
    return out


def gang(net, work, where, n, exchange_rounds=20):
    c1 = net.ctls[0]
    script = os.path.join(work, "exchange.py")
    with open(script, "w") as f:
        f.write(EXCHANGE)
    # Where gangs are kept in one site unless asked (jz submit --span-sites,
    # issue 15 item 6), the two-site gang asks.
    span = []
    if where == "x" and "--span-sites" in c1.jz("submit", "--help").stdout + c1.jz("help").stdout:
        span = ["--span-sites"]
    starts, ends = [], []
    for i in range(n + 1):
        base = os.path.join(work, "gang-%s.%d" % (where, i))
        t0 = time.time()
        jid = submit(c1, "--nodes", "2", "--constraint", where, *span, "--workdir", work, "--", "/usr/bin/python3", script,
                     base, str(exchange_rounds))
        done(c1, jid)
        s = [read_float("%s.start.%d" % (base, r)) for r in (0, 1)]
        e = [read_float("%s.end.%d" % (base, r)) for r in (0, 1)]
        if None in s or None in e:
            raise Failed("gang %s: a part wrote no times" % where)
        if i:
            starts.append(max(s) - t0)
            ends.append(max(e) - t0)
    return starts, ends


def settled(net):
    """Every controller names the same leader in the same term; returns (leader, term)."""
    ss = [status(d) for d in net.ctls]
    if any(s is None or not s.get("leader") for s in ss):
        return None
    if len({(s["leader"], s["term"]) for s in ss}) != 1:
        return None
    return ss[0]["leader"], ss[0]["term"]


def quiet(net, seconds):
    leader, term = wait(lambda: settled(net), 60, "the network to settle")
    follower = next(d for d in net.ctls if d.name != leader)
    time.sleep(seconds)  # the measurement itself: nothing happens but heartbeats
    s = status(follower)
    return s["term"] - term if s else None


def failover(net, work, n):
    elect, write = [], []
    for i in range(n):
        leader, term = wait(lambda: settled(net), 90, "the network to settle")
        time.sleep(2)  # the restarted one caught up, heartbeats steady
        old = net.ctl(leader)
        rest = [d for d in net.ctls if d is not old]
        t0 = time.monotonic()
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait()

        def new_leader():
            for d in rest:
                s = status(d)
                if s and s.get("leader") not in (None, "", old.name):
                    return s["leader"]
            return None

        wait(new_leader, 60, "a new leader", step=0.005)
        t1 = time.monotonic()
        wait(lambda: rest[0].jz("submit", "--hold", "--workdir", work, "--timeout", "5", "--", "true",
                                timeout=30).returncode == 0, 60, "a write accepted", step=0.005)
        t2 = time.monotonic()
        elect.append(t1 - t0)
        write.append(t2 - t0)
        old.logf.close()
        old.start()
    return elect, write


def measure(build, zero, flags, rounds, quiet_s):
    os.environ["JAZARI_BUILD"] = os.path.relpath(build, ROOT) if not os.path.isabs(build) else build
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import wan
    tmp = tempfile.mkdtemp(prefix="jazari-bench-wan-", dir=os.environ.get("JAZARI_BENCH_DIR", "/var/tmp"))
    work = os.path.join(tmp, "work")
    os.makedirs(work)
    fig = {}
    with wan.Wan(sites=3, hosts=2, zero=zero) as w:
        net = wan.Network(w, tmp, extra=["--kill-grace", "1s", "--log-level", "warn"] + flags)
        try:
            net.start()
            wait(lambda: settled(net), 90, "a leader")
            wait(lambda: (status(net.ctls[0]) or {}).get("nodes_up") == 6, 90, "six nodes up")
            fig["election_timeout_ms"] = (status(net.ctls[0]) or {}).get("election_timeout_ms")
            fig["remote submit-to-start"] = remote_start(net, work, rounds)
            fig["gang 1 site: all started"], fig["gang 1 site: run done"] = gang(net, work, "s1", rounds)
            fig["gang 2 sites: all started"], fig["gang 2 sites: run done"] = gang(net, work, "x", rounds)
            fig["false elections / %d s quiet" % quiet_s] = [quiet(net, quiet_s)]
            fig["failover: new leader"], fig["failover: write accepted"] = failover(net, work, rounds)
        finally:
            net.shutdown(check=False)
    subprocess.run(["rm", "-rf", tmp])
    return fig


def cell(v, unit):
    if not v or None in v:
        return "n/a"
    if unit == "n":
        return "%d" % sum(v)
    m = statistics.median(v)
    return "%6.0f ms (%.0f-%.0f)" % (m * 1e3, min(v) * 1e3, max(v) * 1e3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quiet", type=int, default=60)
    ap.add_argument("--timings", default="default")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("wan: skipped (network namespaces need root)")
        return 0
    for timing in a.timings.split(","):
        if timing not in TIMINGS:
            sys.exit("wan: --timings: %r is none of %s" % (timing, ", ".join(TIMINGS)))
        try:
            ref = measure(a.build, True, TIMINGS[timing], a.rounds, a.quiet)
            far = measure(a.build, False, TIMINGS[timing], a.rounds, a.quiet)
        except Failed as e:
            print("wan (%s): not measured: %s" % (timing, e))
            return 1
        print("WAN (3 sites, 15/27.5/40 ms one way, 2 ms jitter, 0.5%% loss) vs the same namespaces with no delay; "
              "timings %s (%s); election timeout in use: ref %s ms, wan %s ms; median of %d (min-max)"
              % (timing, " ".join(TIMINGS[timing]) or "the daemon's defaults", ref.pop("election_timeout_ms"),
                 far.pop("election_timeout_ms"), a.rounds))
        print("  %-34s %-24s %-24s %s" % ("figure", "no delay", "WAN", "WAN / no delay"))
        for k in ref:
            unit = "n" if k.startswith("false") else "s"
            ratio = ""
            if unit == "s" and ref[k] and far[k]:
                ratio = "%.2fx" % (statistics.median(far[k]) / statistics.median(ref[k]))
            print("  %-34s %-24s %-24s %s" % (k, cell(ref[k], unit), cell(far[k], unit), ratio))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

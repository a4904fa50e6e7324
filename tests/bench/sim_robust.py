"""Scheduling quality that does not rest on one trace: our default policy
(jazari) against sjf-easy and fcfs-easy, and multifactor's fairness, on every
SWF trace of tests/fixtures/traces, on the protocol's windows and on other
windows (random:SEED), at the trace's load and at denser and lighter ones.
Prints the median ratio of mean bounded slowdowns with its spread, and every
case where ours loses.

    sim_robust.py BUILD [SEEDS] [LOADS]"""
import json
import statistics
import subprocess
import sys
import os

build = sys.argv[1]
seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
loads = [float(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0.7,1,1.5").split(",")]
here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
traces = ["lublin_256.swf", "KTH-SP2-1996-2.1-cln.swf", "NASA-iPSC-1993-3.1-cln.swf"]


def run(trace, windows, load, policy):
    args = [os.path.join(build, "jazari-sim"), "--trace", os.path.join(here, "tests/fixtures/traces", trace),
            "--windows", windows, "--policy", policy, "--json"]
    if load != 1:
        args += ["--load", str(load)]
    return json.loads(subprocess.run(args, check=True, capture_output=True).stdout)


ratios = {"sjf-easy": [], "fcfs-easy": []}
fair = {"multifactor": [], "fcfs-easy": []}
losses = []
for trace in traces:
    for windows in ["rlscheduler"] + ["random:%d" % s for s in range(1, seeds + 1)]:
        for load in loads:
            f = {p: run(trace, windows, load, p) for p in ("jazari", "sjf-easy", "fcfs-easy", "multifactor")}
            ours = f["jazari"]["mean_bounded_slowdown"]
            for ref in ratios:
                r = ours / f[ref]["mean_bounded_slowdown"]
                ratios[ref].append(r)
                if r > 1.0 + 1e-9:
                    losses.append("%s %s load %.1f: ours %.2f vs %s %.2f" % (trace, windows, load, ours, ref,
                                                                        f[ref]["mean_bounded_slowdown"]))
            for p in fair:
                fair[p].append(f[p]["fairness"])
n = len(ratios["sjf-easy"])
for ref, rs in ratios.items():
    print("simulator, robustness over %d cases (3 SWF traces x %d window sets x loads %s): ours / %s mean bounded "
          "slowdown median %.3f (%.3f-%.3f), ours better in %d of %d"
          % (n, seeds + 1, ",".join("%g" % l for l in loads), ref, statistics.median(rs), min(rs), max(rs),
             sum(r <= 1.0 for r in rs), n))
print("simulator, fairness (Jain's index of users' mean bounded slowdowns) over the same cases: multifactor median "
      "%.3f (%.3f-%.3f), fcfs-easy %.3f (%.3f-%.3f)"
      % (statistics.median(fair["multifactor"]), min(fair["multifactor"]), max(fair["multifactor"]),
         statistics.median(fair["fcfs-easy"]), min(fair["fcfs-easy"]), max(fair["fcfs-easy"])))
for l in losses:
    print("  ours loses: " + l)

#!/usr/bin/env python3
"""tests/lint/cycles.py OBJDIR - fails if the daemon's source files call each
other in a cycle. Reads the symbols each object file defines and uses (nm),
draws an edge A -> B when A uses a function B defines, and prints every
cycle of files (strongly connected component of more than one file)."""
import collections
import os
import subprocess
import sys


def symbols(path):
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
    return defined, used


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "build/obj"
    objs = []
    for sub in ("daemon", "common", "lib"):
        for d, _, files in os.walk(os.path.join(root, sub)):
            objs += [os.path.join(d, f) for f in files if f.endswith(".o")]
    owner, uses = {}, {}
    for o in objs:
        name = os.path.relpath(o, root)[:-2] + ".c"
        defined, used = symbols(o)
        for s in defined:
            owner[s] = name
        uses[name] = used
    graph = collections.defaultdict(set)
    for f, used in uses.items():
        for s in used:
            if s in owner and owner[s] != f:
                graph[f].add(owner[s])
    # Tarjan's strongly connected components.
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(uses):
        if v not in index:
            visit(v)
    for c in comps:
        print("call cycle between files: " + ", ".join(c))
        for a in c:
            print("  %s -> %s" % (a, ", ".join(sorted(graph[a] & set(c)))))
    if not objs:
        print("cycles: no objects under %s: build first" % root)
        return 2
    print("cycles: %d files, %d cycles" % (len(uses), len(comps)))
    print("%d passed, %d failed" % (0 if comps else 1, 1 if comps else 0))
    return 1 if comps else 0


if __name__ == "__main__":
    sys.exit(main())

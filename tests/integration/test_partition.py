"""A controller cut off from the others: three controllers, each on its own
host (a network namespace made by this test, joined through a bridge in a
fourth), and one of them partitioned by taking its link down. The cut-off
controller cannot accept writes; the majority goes on; when the link comes
back, the controller catches up. The namespaces and their addresses exist
only inside this machine and are removed whatever happens."""
import json
import os
import subprocess

import pytest

from conftest import Daemon, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

SUBNET = "10.77.0."


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True)


class Hosts:
    """Namespaces jz<pid>-sw (a bridge) and jz<pid>-h1..hN, one veth each."""

    def __init__(self, n):
        self.tag = "jz%d" % os.getpid()
        self.sw = self.tag + "-sw"
        self.hosts = ["%s-h%d" % (self.tag, i) for i in range(1, n + 1)]
        self.made = []

    def __enter__(self):
        sh("ip", "netns", "add", self.sw)
        self.made.append(self.sw)
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.sw, "link", "set", "br0", "up")
        for i, ns in enumerate(self.hosts, start=1):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "p%d" % i,
               "netns", self.sw)
            sh("ip", "-n", ns, "addr", "add", "%s%d/24" % (SUBNET, i), "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", self.sw, "link", "set", "p%d" % i, "master", "br0")
            sh("ip", "-n", self.sw, "link", "set", "p%d" % i, "up")
        return self

    def cut(self, i, up=False):
        sh("ip", "-n", self.sw, "link", "set", "p%d" % i, "up" if up else "down")

    def __exit__(self, *exc):
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def leader_name(d):
    r = d.jz("status", "--json")
    return json.loads(r.stdout)["leader"] if r.returncode == 0 else None


def queue_ids(d):
    return [j["id"] for j in d.jz_json("queue", "--all")["jobs"]]


def submit(d):
    r = d.jz("submit", "--json", "--workdir", d.dir, "--", "true")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def test_partitioned_controller_cannot_write_and_catches_up(tmp_path):
    with Hosts(3) as net:
        ds = [Daemon(tmp_path, name="ctl-%d" % i, netns=net.hosts[i - 1], host=SUBNET + str(i), port=7070,
                     extra=["--election-timeout", "400ms", "--heartbeat-interval", "200ms",
                            "--node-timeout", "2s"]) for i in (1, 2, 3)]
        spec = ",".join("%s@%s:7070" % (d.name, d.host) for d in ds)
        try:
            for d in ds:
                d.args += ["--controllers", spec]
                d.start()
            wait_for(lambda: leader_name(ds[0]) is not None, timeout=20, what="a leader")
            before = [submit(ds[0]) for _ in range(3)]
            for d in ds:
                wait_for(lambda: queue_ids(d) == before, what="replication to %s" % d.name)

            # Cut off the leader: it is the hardest case (it believed it led).
            cut = next(i for i, d in enumerate(ds) if d.name == leader_name(ds[0]))
            net.cut(cut + 1)
            rest = [d for i, d in enumerate(ds) if i != cut]
            wait_for(lambda: leader_name(rest[0]) not in (None, ds[cut].name), timeout=20,
                     what="the majority to elect a new leader")
            r = ds[cut].jz("submit", "--timeout", "15", "--workdir", ds[cut].dir, "--", "true")
            assert r.returncode == 1, "the cut-off controller accepted a write: " + r.stdout
            after = before + [submit(rest[0])]
            assert after[-1] > before[-1]
            wait_for(lambda: queue_ids(rest[1]) == after, what="the majority to agree")
            assert queue_ids(ds[cut]) == before  # it saw nothing of the majority's writes

            net.cut(cut + 1, up=True)
            wait_for(lambda: queue_ids(ds[cut]) == after, timeout=30, what="the old leader to catch up")
            assert leader_name(ds[cut]) == leader_name(rest[0])
        finally:
            for d in ds:
                d.shutdown()

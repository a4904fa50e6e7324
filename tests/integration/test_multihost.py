"""Nodes on hosts of their own (network namespaces made by the test, joined
by a bridge): a gang that loses a node is requeued whole and runs again
elsewhere, the survivors' old processes are killed, and the lost node,
when it comes back, kills its stale part before taking new work. The
policy says `lost_after 0`: the rule of one LAN, where a silent node's jobs
are lost at node_timeout (test_sitecut has the rule of sites: kept, then
lost once). All
addresses live inside this machine; everything is removed at the end."""
import json
import os

import pytest

from conftest import Daemon, pid_alive as alive, wait_for
from test_partition import SUBNET, Hosts

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

FAST = ["--election-timeout", "400ms", "--heartbeat-interval", "200ms", "--node-timeout", "2s",
        "--kill-grace", "1s"]


def pids(dirpath):
    """{(node, attempt): pid} from the files the job writes."""
    out = {}
    for name in os.listdir(dirpath):
        if name.endswith(".pid"):
            node, attempt, _ = name.rsplit(".", 2)
            with open(os.path.join(dirpath, name)) as f:
                text = f.read().strip()
            if text:
                out[(node, int(attempt))] = int(text)
    return out


def test_lost_node_requeues_the_gang_and_returns_clean(tmp_path, public_dir):
    policy = tmp_path / "policy"
    policy.write_text("lost_after 0\n")
    with Hosts(4) as net:
        ctl = Daemon(tmp_path, name="ctl", netns=net.hosts[0], host=SUBNET + "1", port=7070,
                     extra=FAST + ["--policy", str(policy)])
        spec = "ctl@%s1:7070" % SUBNET
        agents = [Daemon(tmp_path, name="n%d" % i, netns=net.hosts[i - 1], host=SUBNET + str(i), port=7070,
                         socket=os.path.join(public_dir, "n%d.sock" % i), extra=FAST + ["--controllers", spec])
                  for i in (2, 3, 4)]
        ctl.args += ["--controllers", spec]
        everyone = [ctl] + agents
        work = os.path.join(str(tmp_path), "work")
        os.makedirs(work)
        try:
            ctl.start()
            for a in agents:
                a.start()
            wait_for(lambda: ctl.jz_json("status")["nodes_up"] == 4, timeout=20, what="four nodes up")
            r = ctl.jz("submit", "--json", "--nodes", "3", "--workdir", work, "--", "sh", "-c",
                       "echo $$ > %s/$JAZARI_NODENAME.$JAZARI_RESTART_COUNT.pid; "
                       "echo $MASTER_ADDR > %s/master.$JAZARI_RESTART_COUNT; exec sleep 300" % (work, work))
            assert r.returncode == 0, r.stderr
            jid = json.loads(r.stdout)["id"]
            wait_for(lambda: len(pids(work)) == 3, timeout=20, what="three parts to start")
            first = ctl.jz_json("show", str(jid))
            nodes = [n["name"] for n in first["nodes"]]
            # MASTER_ADDR is the first node's host, reachable from the others.
            assert open(os.path.join(work, "master.0")).read().strip() == SUBNET + str(1 + ["ctl", "n2", "n3", "n4"]
                                                                                     .index(nodes[0]))
            victim = next(n for n in nodes if n != "ctl")
            idx = ["ctl", "n2", "n3", "n4"].index(victim)
            stale = pids(work)[(victim, 0)]
            net.cut(idx + 1)

            job = wait_for(lambda: (lambda j: j if j["attempt"] == 1 and j["state"] == "RUNNING" else None)(
                ctl.jz_json("show", str(jid))), timeout=30, what="the job to be requeued and to run again")
            again = [n["name"] for n in job["nodes"]]
            assert victim not in again and len(again) == 3
            wait_for(lambda: len([k for k in pids(work) if k[1] == 1]) == 3, timeout=20,
                     what="the second attempt to start on three nodes")
            # The survivors' first-attempt processes are gone: nothing holds their GPUs.
            for (node, attempt), pid in pids(work).items():
                if attempt == 0 and node != victim:
                    wait_for(lambda: not alive(pid), what="%s's stale part to be killed" % node)
            assert alive(stale)  # cut off, the victim cannot know yet
            assert ctl.jz_json("node", victim)["state"] == "down"
            r = ctl.jz("submit", "--json", "--nodes", "4", "--hold", "--workdir", work, "--", "true")
            four = json.loads(r.stdout)["id"]
            assert ctl.jz("release", str(four)).returncode == 0
            assert ctl.jz_json("show", str(four))["reason"] == "NodeDown"  # 4 nodes, 3 up
            assert ctl.jz("cancel", str(four)).returncode == 0

            net.cut(idx + 1, up=True)
            wait_for(lambda: not alive(stale), timeout=30, what="the returning node to kill its stale part")
            wait_for(lambda: ctl.jz_json("node", victim)["state"] == "up", timeout=30,
                     what="the node to be up again")
            assert ctl.jz_json("show", str(jid))["state"] == "RUNNING"
            assert ctl.jz("cancel", str(jid)).returncode == 0
            for (node, attempt), pid in pids(work).items():
                wait_for(lambda: not alive(pid), what="every part to be killed by the cancel")

            # jz logs on an agent: a person's files, each read on its node,
            # relayed through the controller (one file per node: %N).
            r = agents[0].jz_as("nobody", "submit", "--json", "--nodes", "4", "--workdir", public_dir, "--output",
                                "out-%N.txt", "--", "sh", "-c", "echo hello from $JAZARI_NODENAME")
            assert r.returncode == 0, r.stderr
            hid = json.loads(r.stdout)["id"]
            assert agents[0].jz_as("nobody", "wait", str(hid), "--timeout", "30").returncode == 0
            r = agents[0].jz_as("nobody", "logs", str(hid))
            assert r.returncode == 0, r.stderr
            assert sorted(r.stdout.splitlines()) == sorted("[%s] hello from %s" % (n, n)
                                                           for n in ("ctl", "n2", "n3", "n4")), r.stdout

            # All or nothing: one node cannot open its output (its directory
            # is missing there), so the gang fails with that node's reason
            # and the parts that did start are killed.
            for n in ("ctl", "n2", "n3"):
                os.makedirs(os.path.join(work, "per-node", n))
            r = ctl.jz("submit", "--json", "--nodes", "4", "--workdir", work, "--output", "per-node/%N/out",
                       "--", "sh", "-c", "echo $$ > %s/gang.$JAZARI_NODENAME.pid; exec sleep 300" % work)
            assert r.returncode == 0, r.stderr
            gid = json.loads(r.stdout)["id"]
            job = wait_for(lambda: (lambda j: j if j["state"] not in ("PENDING", "RUNNING") else None)(
                ctl.jz_json("show", str(gid))), timeout=20, what="the gang to fail")
            assert job["state"] == "FAILED" and job["reason"].startswith("n4: cannot write the output"), job
            for n in ("ctl", "n2", "n3"):
                f = os.path.join(work, "gang.%s.pid" % n)
                if os.path.exists(f) and open(f).read().strip():
                    pid = int(open(f).read())
                    wait_for(lambda: not alive(pid), what="%s's part of the failed gang to be killed" % n)
        finally:
            for d in everyone:
                d.shutdown()

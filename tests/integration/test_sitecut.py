"""A site cut off (wan.py: three sites, a controller and an agent in each,
links of 15-40 ms and 0.5% loss; cut(s) drops every packet between site s
and the others, its LAN goes on). The rule (docs/national.md, "A site cut
off"), with the policy's lost_after at 15 s:

* a node silent for node_timeout is unreachable: down for new jobs, its
  running jobs kept RUNNING, nothing of theirs started elsewhere;
* back before lost_after, it goes on with them (the same process), and
  what ended meanwhile is recorded as it ended;
* cut for longer, its agent (hearing no leader for lost_after) kills its
  jobs, and only then (node_timeout later at the earliest) the leader
  requeues them: the next attempt starts elsewhere once the first is dead;
  when the site comes back, the node rejoins, the late end of the lost run
  is an event, and nothing runs twice.

Namespaces and processes are removed whatever happens."""
import json
import os
import time

import pytest

from conftest import pid_alive as alive, wait_for
from wan import Network, Wan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

LOST_AFTER = 15  # seconds: the policy's
EXTRA = ["--kill-grace", "1s", "--heartbeat-interval", "500ms", "--node-timeout", "2s"]
FLOOR = ["--election-timeout", "200ms"]


def pids(work, tag):
    """{attempt: (node, pid)} from the files job tag wrote."""
    out = {}
    for name in os.listdir(work):
        if name.startswith(tag + ".") and name.endswith(".pid"):
            _, attempt, node, _ = name.split(".", 3)
            text = open(os.path.join(work, name)).read().strip()
            if text:
                out[int(attempt)] = (node, int(text))
    return out


def submit(d, where, work, tag, body):
    """A job at daemon d for nodes labelled where, writing tag.<attempt>.<node>.pid, then body."""
    r = d.jz("submit", "--json", "--constraint", where, "--workdir", work, "--", "sh", "-c",
             "echo $$ > %s/%s.$JAZARI_RESTART_COUNT.$JAZARI_NODENAME.pid; %s" % (work, tag, body))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def serving(net, among):
    """A controller of among that answers and knows a leader (the majority's side)."""
    for d in among:
        r = d.jz("status", "--json", timeout=10)
        if r.returncode == 0 and json.loads(r.stdout).get("leader") in [c.name for c in among]:
            return d
    return None


@pytest.mark.timeout(400)
def test_a_site_cut_off_keeps_its_jobs_then_loses_them_once(tmp_path):
    work = os.path.join(str(tmp_path), "work")
    os.makedirs(work)
    policy = tmp_path / "policy"
    policy.write_text("lost_after %ds   # the rule under test\n" % LOST_AFTER)
    with Wan(sites=3, hosts=2) as w:
        net = Network(w, tmp_path, extra=EXTRA + ["--policy", str(policy)], ctl_extra=FLOOR)
        try:
            net.start()
            wait_for(lambda: net.leader() is not None, timeout=60, what="a leader across three sites")
            wait_for(lambda: net.ctls[0].jz_json("status")["nodes_up"] == 6, timeout=60, what="six nodes up")
            c1 = net.ctls[0]
            # A long job on some agent: the site it lands at is the one cut.
            long_id = submit(c1, "agent", work, "long", "exec sleep 600")
            wait_for(lambda: 0 in pids(work, "long"), timeout=60, what="the long job to start")
            node, pid0 = pids(work, "long")[0]
            victim = next(a for a in net.agents if a.name == node)
            s = victim.site
            rest = [c for c in net.ctls if c.site != s]
            # A short one at the same site, ending while the site is cut off.
            short_id = submit(c1, "s%d,agent" % s, work, "short", "sleep 6; echo done > %s/short.done" % work)
            wait_for(lambda: 0 in pids(work, "short"), timeout=60, what="the short job to start")

            # --- cut for less than lost_after: kept, and it goes on --------------------------
            w.cut(s)
            d = wait_for(lambda: serving(net, rest), timeout=60, what="the other two sites to serve")
            n = wait_for(lambda: (lambda x: x if x["state"] == "down" else None)(d.jz_json("node", node)),
                         timeout=30, what="%s to be unreachable" % node)
            assert "unreachable" in n["reason"] and "lost_after" in n["reason"], n
            down_at = time.monotonic()
            wait_for(lambda: os.path.exists(os.path.join(work, "short.done")), timeout=30,
                     what="the short job to end while its site is cut off")
            j = d.jz_json("show", str(long_id))
            assert j["state"] == "RUNNING" and j["attempt"] == 0, j  # nothing started elsewhere
            assert d.jz_json("show", str(short_id))["state"] == "RUNNING"  # its end is not known yet
            assert alive(pid0)
            assert time.monotonic() - down_at < LOST_AFTER - 3, "the machine is too slow for this scenario"
            w.heal(s)
            wait_for(lambda: d.jz_json("node", node)["state"] == "up", timeout=60, what="%s back up" % node)
            wait_for(lambda: d.jz_json("show", str(short_id))["state"] == "COMPLETED", timeout=60,
                     what="the short job's end, reported on the way back")
            j = d.jz_json("show", str(long_id))
            assert j["state"] == "RUNNING" and j["attempt"] == 0 and alive(pid0), j
            assert list(pids(work, "long")) == [0]

            # --- cut for longer: stopped there first, then requeued elsewhere --------------
            w.cut(s)
            d = wait_for(lambda: serving(net, rest), timeout=60, what="the other two sites to serve")
            wait_for(lambda: d.jz_json("node", node)["state"] == "down", timeout=30,
                     what="%s to be unreachable again" % node)
            # Its agent stops the job at lost_after, while the leader still
            # holds it RUNNING as attempt 0 (it waits node_timeout more).
            wait_for(lambda: not alive(pid0), timeout=LOST_AFTER + 30, what="the cut-off agent to stop its job")
            j = wait_for(lambda: (lambda x: x if x["attempt"] == 1 and x["state"] == "RUNNING" else None)(
                d.jz_json("show", str(long_id))), timeout=LOST_AFTER + 60, what="the job requeued and run elsewhere")
            wait_for(lambda: 1 in pids(work, "long"), timeout=30, what="the second attempt's process")
            node1, pid1 = pids(work, "long")[1]
            assert node1 != node and alive(pid1)
            assert not alive(pid0)
            assert "NODE_FAIL" in (j.get("reason") or "") or any(
                e["kind"] == "job_requeued" and e.get("job") == long_id for e in d.jz_json("events")["events"])

            # --- back: it rejoins, the lost run's end is on record, nothing twice ---------
            w.heal(s)
            wait_for(lambda: d.jz_json("node", node)["state"] == "up", timeout=60, what="%s back up" % node)
            ev = wait_for(lambda: [e for e in d.jz_json("events")["events"] if e["kind"] == "job_stale_end"],
                          timeout=60, what="the late end of the lost run as an event")
            assert ("job %d attempt 0 ended on %s" % (long_id, node)) in ev[0]["text"], ev
            j = d.jz_json("show", str(long_id))
            assert j["state"] == "RUNNING" and j["attempt"] == 1 and [x["name"] for x in j["nodes"]] == [node1], j
            assert sorted(pids(work, "long")) == [0, 1] and alive(pid1) and not alive(pid0)
            assert d.jz("cancel", str(long_id)).returncode == 0
            wait_for(lambda: not alive(pid1), timeout=30, what="the cancel to stop the second attempt")
        finally:
            net.shutdown()

"""Slurm's partitions and --exclusive with real daemons (issue 12): a
partition that does not exist is refused with the list of those that do, a
job goes only to its partition's nodes, its time defaults to the
partition's default_time and may not pass its max_time; an exclusive job
holds its whole node. (jz submit's --partition is the client's: the jobs
are submitted here as raw requests.)"""
import os

from conftest import fixture_xml, frame, hello_env, pb, read_frame, wait_for
from test_policy import FAST, show, state_is

POLICY = """
account inst 1
account inst/a 1
account inst/b 1
qos normal priority=0
qos high priority=10
partition gpu nodes=gpu,dgx* default_time=1:00:00 max_time=2-00:00:00 accounts=inst/a qos=normal default=yes
partition far nodes=cpu[01-02] max_time=UNLIMITED
"""


def node(daemon_factory, tmp_path):
    path = os.path.join(str(tmp_path), "policy.conf")
    with open(path, "w") as f:
        f.write(POLICY)
    d = daemon_factory(name="gpu", xml=fixture_xml("hgx-h100-8gpu.xml"),
                       extra=FAST + ["--policy", path, "--scheduler", "multifactor"])
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="the node to register")
    return d


def submit(d, **spec):
    """Submits a spec as root; returns the reply envelope."""
    with d.connect() as s:
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
        req = pb.Envelope(request_id=2, version=1)
        js = req.submit_request.spec
        js.workdir = d.dir
        js.argv.extend(spec.pop("argv", ["sleep", "30"]))
        for k, v in spec.items():
            setattr(js, k, v)
        s.sendall(frame(req))
        return read_frame(s)


def test_partitions_refuse_place_and_time_jobs(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path)
    try:
        rep = submit(d, partition="nope", account="inst/a")
        assert rep.error.code == pb.BAD_REQUEST, rep
        assert "invalid partition 'nope'" in rep.error.message and "gpu, far" in rep.error.message, rep
        rep = submit(d, account="inst/b")  # the default partition is inst/a's
        assert rep.error.code == pb.PERMISSION_DENIED and "account 'inst/b'" in rep.error.message, rep
        rep = submit(d, account="inst/a", qos="high")
        assert rep.error.code == pb.PERMISSION_DENIED and "QoS 'high'" in rep.error.message, rep
        rep = submit(d, account="inst/a", time_limit_s=3 * 86400)
        assert rep.error.code == pb.PERMISSION_DENIED and "PartitionTimeLimit" in rep.error.message, rep
        # None asked: the default partition, its default time, its node.
        rep = submit(d, account="inst/a", gpus_per_node=1)
        assert rep.WhichOneof("body") == "submit_reply", rep
        jid = rep.submit_reply.id
        wait_for(state_is(d, jid, "RUNNING"), what="the job in the default partition")
        j = show(d, jid)
        assert j["time_limit"] == 3600 or j.get("time_limit_s") == 3600 or "1:00:00" in str(j), j
        # UNLIMITED: the partition's max_time.
        rep = submit(d, account="inst/a", gpus_per_node=1, time_limit_s=4294967295)
        jid2 = rep.submit_reply.id
        wait_for(state_is(d, jid2, "RUNNING"), what="the unlimited job")
        # A partition whose nodes are not there: it waits, and says why.
        rep = submit(d, partition="far", account="inst/b", gpus_per_node=1)
        far = rep.submit_reply.id
        wait_for(lambda: show(d, far)["reason"] == "PartitionNodeLimit", what="PartitionNodeLimit")
        assert show(d, far)["state"] == "PENDING"
        # The partition a run started in is recorded.
        q = d.jz_json("show", str(jid))
        assert q.get("partition") in (None, "gpu"), q
        d.jz("cancel", str(jid), str(jid2), str(far))
    finally:
        d.shutdown()


def test_an_exclusive_job_holds_its_whole_node(daemon_factory, tmp_path):
    d = node(daemon_factory, tmp_path)
    try:
        rep = submit(d, account="inst/a", gpus_per_node=1, exclusive=True)
        ex = rep.submit_reply.id
        wait_for(state_is(d, ex, "RUNNING"), what="the exclusive job")
        rep = submit(d, account="inst/a", gpus_per_node=1)
        other = rep.submit_reply.id
        wait_for(lambda: show(d, other)["reason"] in ("Resources", "Priority"), what="the other to wait")
        assert show(d, other)["state"] == "PENDING"
        d.jz("cancel", str(ex))
        wait_for(state_is(d, other, "RUNNING"), timeout=20, what="the other once the node is free")
        d.jz("cancel", str(other))
    finally:
        d.shutdown()

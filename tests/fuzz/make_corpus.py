#!/usr/bin/python3
"""Writes the seed corpus of the fuzz drivers (tests/fuzz/corpus/).

Run with Debian's python3 after `make build/py/jazari_pb2.py`:
    /usr/bin/python3 tests/fuzz/make_corpus.py build/py
The seeds are committed; rerun when proto/jazari.proto changes."""
import os
import struct
import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "build/py")
import jazari_pb2 as pb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(env):
    data = env.SerializeToString()
    return struct.pack(">I", len(data)) + data


def topology(n_gpus):
    t = pb.Topology(name="seed", source="seed.xml", cores=8, pus=16)
    t.packages.add(os_index=0, cores=8, pus=16, cpuset="0-15")
    t.numa_nodes.add(os_index=0, package=0, memory_bytes=1 << 34, cpuset="0-15")
    for i in range(n_gpus):
        t.gpus.add(index=i, uuid="GPU-%08x" % i, model="Seed GPU", memory_bytes=1 << 35,
                   pci_bus_id="0000:%02x:00.0" % (i + 1), numa=0, cpuset="0-15")
    for i in range(n_gpus):
        for j in range(n_gpus):
            if i == j:
                t.links.add(kind=pb.LINK_X)
            elif i // 2 == j // 2:
                t.links.add(kind=pb.LINK_NV, nvlinks=12)
            else:
                t.links.add(kind=pb.LINK_SYS)
    return t


def envelopes():
    hello = pb.Envelope(request_id=1, version=1)
    hello.hello.protocol_version = 1
    hello.hello.software_version = "0.1.0"
    hello.hello.kind = pb.PEER_CLIENT
    yield "hello", hello
    old = pb.Envelope(request_id=1, version=9)
    old.hello.protocol_version = 9
    yield "hello-future-version", old
    req = pb.Envelope(request_id=2, version=1)
    req.topology_request.SetInParent()
    yield "topology-request", req
    rep = pb.Envelope(request_id=2, version=1)
    rep.error.code = pb.OK
    rep.topology_reply.topology.CopyFrom(topology(4))
    yield "topology-reply", rep
    node = pb.Envelope(request_id=3, version=1)
    node.node_reply.node.name = "n1"
    node.node_reply.node.state = "up"
    node.node_reply.node.topology.CopyFrom(topology(2))
    yield "node-reply", node
    bad = pb.Envelope(request_id=4, version=1)
    bad.topology_reply.topology.CopyFrom(topology(3))
    del bad.topology_reply.topology.links[-1]
    yield "topology-reply-short-matrix", bad
    err = pb.Envelope(request_id=5, version=1)
    err.error.code = pb.NOT_FOUND
    err.error.message = "node 'x' not found"
    err.node_request.name = "x"
    yield "error-reply", err


def write(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def entry(fmt, t, cmds):
    """A log entry as libraft stores it: length, Entry, zeros to 8 bytes."""
    e = pb.Entry(format=fmt, time_ms=t)
    for c in cmds:
        e.commands.add().CopyFrom(c)
    data = e.SerializeToString()
    raw = struct.pack("<I", len(data)) + data
    return raw + b"\0" * (-len(raw) % 8)


def entries():
    up = pb.Command()
    up.node_up.node.name = "n1"
    up.node_up.node.state = "up"
    up.node_up.node.topology.CopyFrom(topology(2))
    sub = pb.Command()
    job = sub.submit.jobs.add(user="amina", uid=1000)
    job.spec.argv.append("true")
    job.spec.gpus_per_node = 1
    job.spec.time_limit_s = 60
    sub.submit.min_id = 5
    cancel = pb.Command()
    cancel.cancel.ids.append(5)
    cancel.cancel.admin = True
    down = pb.Command()
    down.node_down.name = "n1"
    down.node_down.reason = "seed"
    yield "node-up-submit", entry(4, 1000, [up, sub])
    yield "submit-cancel", entry(4, 2000, [up, sub, sub, cancel])
    yield "node-down", entry(3, 3000, [up, sub, down])
    yield "format-3-min-id", entry(3, 1000, [sub])
    yield "future-format", entry(99, 1000, [sub])
    data = pb.Entry(format=4, time_ms=1000).SerializeToString() + b"\x1a\x03\x90\x03\x01"  # a field-50 command
    raw = struct.pack("<I", len(data)) + data
    yield "unknown-command", raw + b"\0" * (-len(raw) % 8)
    yield "announces-too-much", struct.pack("<I", 1 << 20) + b"\0" * 12


def backups():
    """Backup files (common/bkfile.h): (name, first byte, bytes). First byte
    even: the bytes are a whole file; odd: a state the driver wraps."""
    import hashlib
    snap = pb.Snapshot(format=9, next_job_id=3, time_ms=1000)
    job = snap.jobs.add(id=1, user="amina", state=pb.JOB_PENDING)
    job.spec.argv.append("true")
    snap.jobs.add(id=2, user="omar", state=pb.JOB_COMPLETED)
    snap.nodes.add(name="g1", site="rabat")
    s = snap.SerializeToString()
    head = pb.BackupHead(snapshot_format=9, index=17, term=2, time_ms=1000, cluster_name="jazari",
                         snapshot_len=len(s), jobs=2, nodes=1).SerializeToString()
    body = b"JZBACKUP" + struct.pack(">II", 1, len(head)) + head + s
    whole = body + hashlib.sha256(body).digest()
    yield "whole", 0, whole
    yield "truncated", 0, whole[:-9]
    yield "flipped", 0, whole[:40] + bytes([whole[40] ^ 1]) + whole[41:]
    yield "version-2", 0, whole[:11] + b"\x02" + whole[12:]
    yield "state", 17, s
    yield "state-garbage", 17, b"\x22\xff\xff\xff\xff\x0f"


def main():
    for name, first, raw in backups():
        write("backup", name, bytes([first]) + raw)
    for name, raw in entries():
        for times in (0, 3):
            write("entry", "%s-x%d" % (name, times + 1), bytes([times]) + raw)
    all_frames = b""
    for name, env in envelopes():
        write("envelope", name, env.SerializeToString())
        f = frame(env)
        all_frames += f
        write("frame", name, b"\x00" + f)            # one read of 1 byte
        write("frame", name + "-bulk", b"\xff" + f)  # reads of 256 bytes
    write("frame", "coalesced", b"\x07" + all_frames)
    write("frame", "truncated", b"\x03" + all_frames[:-5])
    write("frame", "too-large", b"\x10" + struct.pack(">I", 1 << 30) + b"x" * 8)
    write("frame", "garbage", b"\x04" + struct.pack(">I", 6) + b"\xff\xff\xff\xff\xff\xff")
    write("frame", "empty-envelope", b"\x04" + struct.pack(">I", 0))
    write("envelope", "garbage", b"\x0a\xff\xff\xff\xff\x0f")


if __name__ == "__main__":
    main()

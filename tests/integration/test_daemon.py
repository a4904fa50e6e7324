"""A real jazarid: serves jz over its Unix socket and peers over TCP, closes
connections that send bad frames and keeps serving the others."""
import json
import os
import signal
import socket
import struct
import subprocess

from conftest import (JAZARID, JZ, Daemon, frame, hello_env, pb, read_frame, run, hwloc_xml,
                      wait_for, fixture_xml)


def test_ping_node_and_nodes(daemon_factory):
    d = daemon_factory(name="gpu-01", xml=hwloc_xml("nvidiaDGX2.xml"), extra=["--site", "rabat"])
    r = d.jz("ping")
    assert r.returncode == 0, r.stderr
    assert "gpu-01" in r.stdout and "rabat" in r.stdout
    p = d.jz_json("ping")
    assert p["name"] == "gpu-01" and p["role"] == "controller" and p["protocol"] == 1

    nodes = d.jz_json("nodes")["nodes"]
    assert nodes == [{"name": "gpu-01", "site": "rabat", "state": "up", "gpus_total": 16, "gpus_free": 16,
                      "group": None, "labels": [], "gpu_model": "Tesla V100-SXM3-32GB-H",
                      "cpus_total": nodes[0]["cpus_total"], "mem_bytes": nodes[0]["mem_bytes"],
                      "alloc_state": "idle", "reason": None, "reason_by": None, "since": nodes[0]["since"],
                      "gpus_drained": 0, "gpu_drains": []}]
    assert nodes[0]["cpus_total"] > 0 and nodes[0]["mem_bytes"] > 0

    node = d.jz_json("node", "gpu-01")
    assert node["name"] == "gpu-01" and node["gpus_total"] == 16
    topo = node["topology"]
    # The client shows exactly what `jazarid topology` prints for that XML.
    r = run([JAZARID, "topology", "--topology-xml", hwloc_xml("nvidiaDGX2.xml"), "--json",
             "--name", "gpu-01"])
    assert json.loads(r.stdout) == topo

    r = d.jz("node", "gpu-01")
    assert r.returncode == 0 and "GPU15" in r.stdout and "NV6" in r.stdout

    r = d.jz("node", "nosuch")
    assert r.returncode == 1 and "node 'nosuch' not found" in r.stderr
    assert d.stop() == 0
    assert not os.path.exists(d.socket)


def test_jz_usage_and_unreachable_daemon(tmp_path):
    r = run([JZ, "--help"])
    assert r.returncode == 0 and "nodes" in r.stdout and "--json" in r.stdout
    r = run([JZ, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("jz ")
    r = run([JZ, "frobnicate"])
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = run([JZ, "nodes", "--bogus"])
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = run([JZ, "node"])
    assert r.returncode == 2
    r = run([JZ, "ping", "--socket", str(tmp_path / "none.sock")])
    assert r.returncode == 1 and "cannot reach jazarid" in r.stderr
    env = dict(os.environ, JAZARI_SOCKET=str(tmp_path / "env.sock"))
    r = run([JZ, "ping"], env=env)
    assert r.returncode == 1 and "env.sock" in r.stderr


def test_google_protobuf_reads_our_frames(daemon_factory):
    d = daemon_factory(xml=hwloc_xml("power8gpudistances.xml"))
    with d.connect() as s:
        s.sendall(frame(hello_env(request_id=7)))
        rep = read_frame(s)
        assert rep.request_id == 7 and rep.error.code == pb.OK
        assert rep.WhichOneof("body") == "hello_reply"
        assert rep.hello_reply.name == "node-a" and rep.hello_reply.protocol_version == 1
        req = pb.Envelope(request_id=8, version=1)
        req.topology_request.SetInParent()
        s.sendall(frame(req))
        rep = read_frame(s)
        t = rep.topology_reply.topology
        assert rep.request_id == 8 and len(t.gpus) == 4
        assert t.links[0 * 4 + 1].kind == pb.LINK_NV and t.links[1].nvlinks == 2


def bad_then_still_serving(d, payload, expect_in_log):
    """Sends payload on a fresh TCP connection: the daemon must close it,
    log why, and keep serving jz."""
    with d.connect() as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        # The daemon may answer (an error reply) but must then close.
        while read_frame(s) is not None:
            pass
    wait_for(lambda: expect_in_log in d.log(), what="log line %r" % expect_in_log)
    r = d.jz("ping")
    assert r.returncode == 0, r.stderr


def test_bad_frames_close_only_that_connection(daemon_factory):
    d = daemon_factory(extra=["--max-frame", "64KiB"])
    # A connection that stays open and healthy through all of it.
    keeper = d.connect()
    keeper.sendall(frame(hello_env(request_id=1)))
    assert read_frame(keeper).WhichOneof("body") == "hello_reply"

    bad_then_still_serving(d, struct.pack(">I", 1 << 20) + b"x" * 100,
                           "frame of 1048576 bytes is over the maximum of 65536")
    bad_then_still_serving(d, struct.pack(">I", 6) + b"\xff" * 6, "does not decode")
    bad_then_still_serving(d, frame(hello_env())[:-3], "truncated frame")
    bad_then_still_serving(d, struct.pack(">I", 0), "has no body")
    bad_then_still_serving(d, os.urandom(4096), "closing connection")
    # Hello must come first.
    req = pb.Envelope(request_id=3, version=1)
    req.topology_request.SetInParent()
    with d.connect() as s:
        s.sendall(frame(req))
        rep = read_frame(s)
        assert rep.error.code == pb.BAD_REQUEST and "must be hello" in rep.error.message
        assert read_frame(s) is None
    # A peer of another protocol version is refused clearly.
    with d.connect() as s:
        s.sendall(frame(hello_env(version=99)))
        rep = read_frame(s)
        assert rep.error.code == pb.UNSUPPORTED_VERSION and "99" in rep.error.message
        assert read_frame(s) is None

    # The first connection never noticed.
    req = pb.Envelope(request_id=2, version=1)
    req.node_request.SetInParent()
    keeper.sendall(frame(req))
    rep = read_frame(keeper)
    assert rep.request_id == 2 and rep.node_reply.node.name == "node-a"
    keeper.close()
    assert d.stop() == 0


def test_many_frames_in_one_write_and_byte_by_byte(daemon_factory):
    d = daemon_factory()
    with d.connect() as s:
        burst = frame(hello_env(request_id=1))
        for i in range(2, 52):
            req = pb.Envelope(request_id=i, version=1)
            req.node_request.SetInParent()
            burst += frame(req)
        s.sendall(burst)
        ids = [read_frame(s).request_id for _ in range(51)]
        assert ids == list(range(1, 52))
    with d.connect() as s:
        for b in frame(hello_env(request_id=9)):
            s.sendall(bytes([b]))
        assert read_frame(s).request_id == 9
    assert d.stop() == 0


def test_bad_settings_exit_2(tmp_path):
    for args, needle in [
        (["--listen", "nowhere"], "flag --listen: bad value 'nowhere'"),
        (["--listen", "localhost:7070"], "a numeric IPv4 or IPv6 address"),
        (["--frobnicate", "1"], "unknown flag '--frobnicate'"),
        (["--config", str(tmp_path / "missing.conf")], "missing.conf"),
    ]:
        r = run([JAZARID] + args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run([JAZARID, "--topology-xml", str(tmp_path / "nope.xml"), "--state-dir", str(tmp_path / "s"),
             "--listen", "127.0.0.1:1"])
    assert r.returncode == 2 and "nope.xml" in r.stderr
    # An address this machine does not have (TEST-NET-1, never local).
    r = run([JAZARID, "--listen", "192.0.2.1:7070", "--state-dir", str(tmp_path / "s")])
    assert r.returncode == 2 and "not an address of this machine" in r.stderr, r.stderr
    r = run([JAZARID, "--help"])
    assert r.returncode == 0 and "--topology-xml" in r.stdout and "--node-timeout" in r.stdout


def test_config_file_and_address_in_use(daemon_factory, tmp_path):
    d = daemon_factory(name="first")
    conf = tmp_path / "j.conf"
    conf.write_text("# second daemon\nname = second\nlisten = 127.0.0.1:%d\nstate_dir = %s\n"
                    % (d.port, tmp_path / "second"))
    r = run([JAZARID, "--config", str(conf)], timeout=30)
    assert r.returncode == 1
    assert "127.0.0.1:%d" % d.port in r.stderr and "address already in use" in r.stderr
    # A second daemon on the same socket is refused, the first keeps it.
    r = run([JAZARID, "--listen", "127.0.0.1:%d" % (d.port + 1 if d.port < 65535 else 1024),
             "--socket", d.socket, "--state-dir", str(tmp_path / "third")], timeout=30)
    assert r.returncode == 1 and "another jazarid" in r.stderr
    assert d.jz("ping").returncode == 0


def test_sigint_stops_cleanly(daemon_factory):
    d = daemon_factory()
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(timeout=10) == 0
    assert "SIGINT received" in d.log()

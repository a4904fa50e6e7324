"""An adversary against the HTTP listener and the dashboard's API: raw
sockets that send what no browser would (malformed request lines, heads
too large, slowloris, pipelining, HTTP/2 prefaces, floods past the
connection cap), forged and altered tokens. After each, the daemon still
serves /metrics and jz status, and stops cleanly on SIGTERM (the fixture
checks that; under SAN=1 ASan/UBSan would fail it)."""
import base64
import json
import os
import socket
import time

import pytest

from conftest import JZ, free_port, run, wait_for
from test_steps import FAST


def controller(daemon_factory, tmp_path, extra=()):
    (tmp_path / "tmp-ctl").mkdir(exist_ok=True)
    os.chmod(str(tmp_path / "tmp-ctl"), 0o1777)
    port, http = free_port(), free_port()
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", "ctl@127.0.0.1:%d" % port, "--election-timeout", "200ms",
                                "--gpu-isolation", "off", "--tmp-dir", str(tmp_path / "tmp-ctl"),
                                "--http-listen", "127.0.0.1:%d" % http] + FAST + list(extra))
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    ctl.http = http
    return ctl


def raw(port, data, timeout=5.0, read=True):
    """Sends data on a fresh connection; what came back before the
    daemon closed it (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        if not read:
            return s
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        if read:
            s.close()


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def get1(port, path, headers=b"", version=b"HTTP/1.1"):
    r = raw(port, b"GET " + path + b" " + version + b"\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
    return status_of(r), r


def healthy(ctl):
    st, r = get1(ctl.http, b"/metrics")
    assert st == 200, r[:300]
    assert ctl.jz("status").returncode == 0


def rss_kib(ctl):
    with open("/proc/%d/status" % ctl.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def web_token(ctl, *args):
    r = run([JZ, "web", "--json", "--socket", ctl.socket] + list(args))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["token"]


def test_a_health_programs_hostile_line_is_a_readable_reason(daemon_factory, tmp_path):
    """A health program that printed bytes that are not UTF-8, an escape
    sequence, or a long line in Arabic (cut inside a character) drained its
    node with the reason "(unprintable text)", and its raw bytes went into
    the agent's log: the line is now printable UTF-8, cut between
    characters."""
    from test_drain import node
    from test_health_loop import network as health_network
    prog = tmp_path / "check.sh"
    prog.write_text("#!/bin/sh\nprintf '\\377\\033[31mdisk\\302\\233 ' ; i=0; "
                    "while [ $i -lt 200 ]; do printf '\\330\\247'; i=$((i+1)); done; echo; exit 1\n")
    os.chmod(str(prog), 0o755)
    ctl, agent, _ = health_network(daemon_factory, tmp_path, program=str(prog))
    wait_for(lambda: node(ctl, "gpu1")["state"] == "drained", what="the node drained by its health program")
    reason = node(ctl, "gpu1")["reason"]
    assert reason.startswith("health_program: ? [31mdisk  "), reason
    assert "\u0627" * 10 in reason and "unprintable" not in reason, reason
    with open(agent.log_path, "rb") as f:
        log = f.read()
    log.decode("utf-8")  # no byte that is not UTF-8
    assert b"\x1b" not in log and b"\xc2\x9b" not in log

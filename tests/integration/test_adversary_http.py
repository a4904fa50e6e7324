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
    mode = tmp_path / "mode"
    mode.write_text("pass")
    prog = tmp_path / "check.sh"
    prog.write_text("#!/bin/sh\n[ \"$(cat %s)\" = pass ] && exit 0\nprintf '\\377\\033[31mdisk\\302\\233 ' ; i=0; "
                    "while [ $i -lt 200 ]; do printf '\\330\\247'; i=$((i+1)); done; echo; exit 1\n" % mode)
    os.chmod(str(prog), 0o755)
    ctl, agent, _ = health_network(daemon_factory, tmp_path, program=str(prog))
    mode.write_text("fail")
    wait_for(lambda: node(ctl, "gpu1")["state"] == "drained", what="the node drained by its health program")
    reason = node(ctl, "gpu1")["reason"]
    assert reason.startswith("health_program: ? [31mdisk  "), reason
    assert "\u0627" * 10 in reason and "unprintable" not in reason, reason
    with open(agent.log_path, "rb") as f:
        log = f.read()
    log.decode("utf-8")  # no byte that is not UTF-8
    assert b"\x1b" not in log and b"\xc2\x9b" not in log


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc",
    b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n",
    b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 500000 + b"\r\n\r\n",
    b"GET /api/status HTTP/1.1\r\nAuthorization: Bearer jzw1.\x00.\r\n\r\n",
]


def test_the_listener_survives_malformed_requests_floods_and_clients_that_do_not_read(daemon_factory, tmp_path):
    """Whatever comes in, the daemon answers or closes, keeps serving
    /metrics and jz, and holds no more memory than its caps allow."""
    ctl = controller(daemon_factory, tmp_path)
    tok = web_token(ctl).encode()
    auth = b"Authorization: Bearer " + tok + b"\r\n"
    for req in MALFORMED:
        r = raw(ctl.http, req, timeout=5)
        assert status_of(r) in (400, 413, 431), (req[:60], r[:200])
    # Odd paths and queries on /api: answered, never served from elsewhere.
    for path, want in ((b"/api/node/..%2f..%2fetc", 404), (b"/api/node/%00", 404), (b"/api/node/\xc0\xaf", 404),
                       (b"/api/node/" + b"a" * 8000, 404), (b"/api/node/ctl/history/history", 404),
                       (b"/api/events?max=%zz", 400), (b"/api/events?max=%4", 400),
                       (b"/api/events?since_seq=" + b"9" * 40, 400), (b"/api/events?" + b"&" * 10000, 200),
                       (b"/api/events?max=99999999999999999999&max=1", 200), (b"/api/node/ctl/history", 200),
                       (b"/%2e%2e/metrics", 200), (b"/metrics%00", 404)):
        st, r = get1(ctl.http, path, auth)
        assert st == want, (path[:60], r[:300])
    # Tokens: altered, truncated, another scheme, a second header.
    for a, want in ((b"bearer " + tok, 200), (b"Bearer  " + tok, 401), (b"Bearer " + tok + b"x", 401),
                    (b"Bearer " + tok[:-1], 401), (b"Basic " + tok, 401), (b"Bearer jzw1..", 401),
                    (b"Bearer " + tok.replace(b".", b".A", 1), 401)):
        st, r = get1(ctl.http, b"/api/status", b"Authorization: " + a + b"\r\n")
        assert st == want, (a[:40], r[:300])
    # Pipelined requests, all answered in order; HTTP/1.0 keep-alive.
    r = raw(ctl.http, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20 +
            b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", timeout=5)
    assert r.count(b"HTTP/1.1 200 OK") == 21
    r = raw(ctl.http, b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n")
    assert r.count(b" 200 OK") == 2
    # Clients that send many requests and read none of the answers: were
    # the answers kept until read, this would hold a gigabyte (ASan's
    # quarantine alone keeps tens of MiB).
    before = rss_kib(ctl)
    hogs = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", ctl.http))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            for _ in range(2000):
                s.send(b"GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n")
        except BlockingIOError:
            pass
        hogs.append(s)
    healthy(ctl)
    assert rss_kib(ctl) - before < 128 << 10, (before, rss_kib(ctl))
    for s in hogs:
        s.close()
    # A flood past the cap of 64: the oldest are closed to make room, jz
    # is not affected, and the listener serves on.
    flood = [socket.create_connection(("127.0.0.1", ctl.http)) for _ in range(100)]
    assert ctl.jz("status").returncode == 0
    for s in flood:
        s.close()
    wait_for(lambda: get1(ctl.http, b"/metrics")[0] == 200, what="/metrics after the flood")
    # Left open at SIGTERM: idle, half-sent and unread connections (the
    # fixture checks the exit).
    keep = [socket.create_connection(("127.0.0.1", ctl.http)) for _ in range(5)]
    keep[0].sendall(b"GET /metrics HTTP/1.1\r\nX: ")
    keep[1].sendall((b"GET /api/utilization HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n") * 50)
    healthy(ctl)
    assert ctl.stop() == 0
    assert "still open at exit" not in ctl.log(), ctl.log()[-2000:]


def test_events_paged_after_a_seq_miss_none(daemon_factory, tmp_path):
    """A page after a seq (the dashboard's since_seq, jz events -f) held
    the newest --max events: when more had come since, the ones between
    were dropped, and the next page, asked after the last of these, never
    showed them. It now holds the oldest after the seq."""
    ctl = controller(daemon_factory, tmp_path)
    tok = web_token(ctl)
    auth = b"Authorization: Bearer " + tok.encode() + b"\r\n"

    def page(after, most):
        st, r = get1(ctl.http, b"/api/events?since_seq=%d&max=%d" % (after, most), auth)
        assert st == 200, r[:300]
        return json.loads(r.split(b"\r\n\r\n", 1)[1])

    start = page(0, 1)["last_seq"]
    for i in range(8):
        assert ctl.jz("drain", "ctl", "--reason", "round %d" % i).returncode == 0
        assert ctl.jz("resume", "ctl").returncode == 0
    last = page(0, 1)["last_seq"]
    assert last >= start + 16
    seen, after = [], start
    while True:
        got = page(after, 5)["events"]
        if not got:
            break
        assert len(got) <= 5
        seen += [e["seq"] for e in got]
        after = got[-1]["seq"]
    assert seen == list(range(start + 1, last + 1)), (start, last, seen)
    # The newest, without a seq, as before.
    assert [e["seq"] for e in page(0, 3)["events"]] == [last - 2, last - 1, last]


def test_connections_holding_every_slot_do_not_keep_metrics_out(daemon_factory, tmp_path):
    """64 connections, each sending a head a byte at a time (or nothing),
    held every slot of the listener until its idle timeout, over and over:
    /metrics and the dashboard were out of reach for as long as anyone
    liked. At the cap the oldest now makes room, as on the daemon's port."""
    ctl = controller(daemon_factory, tmp_path)
    hold = []
    for i in range(64):
        s = socket.create_connection(("127.0.0.1", ctl.http), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: " if i % 2 else b"")
        hold.append(s)
    # Each time, /metrics is served at once; the holder refills the slot.
    for i in range(10):
        if i:
            s = socket.create_connection(("127.0.0.1", ctl.http), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            hold.append(s)
        st, r = get1(ctl.http, b"/metrics")
        assert st == 200, (i, r[:200])
    # The oldest were closed to make room (at least one for each), the
    # newest is open.
    for s in hold[:10]:
        assert s.recv(100) == b""
    hold[-1].settimeout(0.2)
    with pytest.raises(socket.timeout):
        hold[-1].recv(100)
    st, r = get1(ctl.http, b"/metrics")
    refused = [l for l in r.split(b"\n") if l.startswith(b"jazari_http_connections_refused_total")]
    assert refused and int(refused[0].split()[-1]) >= 10, refused
    for s in hold:
        s.close()
    healthy(ctl)

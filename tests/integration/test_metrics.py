"""Prometheus metrics over HTTP (http_listen): real daemons, a controller
and an agent, each with its listener on a free loopback port. Their
/metrics count the network and a job as it goes; Debian's promtool accepts
the text; a real Prometheus server (Debian's) scrapes both daemons and
answers queries on what it scraped. Bad requests get their 4xx or are
closed, and the daemons serve on (their /metrics, jz status)."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import JAZARID, free_port, run, wait_for
from test_steps import FAST

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample, labels sorted."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def fetch(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def two_nodes(daemon_factory):
    """A controller and an agent, each with its HTTP listener."""
    port, ctl_http, agent_http = free_port(), free_port(), free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms",
                                "--http-listen", "127.0.0.1:%d" % ctl_http] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    agent = daemon_factory(name="agent", extra=["--controllers", spec,
                                                "--http-listen", "127.0.0.1:%d" % agent_http] + FAST)
    wait_for(lambda: {n["name"] for n in ctl.jz_json("nodes")["nodes"] if n["state"] == "up"} == {"ctl", "agent"},
             timeout=20, what="both nodes up")
    ctl.http, agent.http = ctl_http, agent_http
    return ctl, agent


def promtool_check(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        "promtool check metrics: %d\n%s%s" % (r.returncode, r.stdout, r.stderr)


def test_metrics_count_the_network_and_a_job(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory)
    before = parse(fetch(ctl.http))
    assert value(before, "jazari_up") == 1
    assert value(before, "jazari_nodes", state="up", site="local") == 2
    for s in ("draining", "drained", "down"):
        assert value(before, "jazari_nodes", state=s, site="local") == 0
    for s in ("pending", "running", "completed", "failed", "cancelled", "timeout", "node_fail", "preempted"):
        assert value(before, "jazari_jobs", state=s) is not None, s
    assert value(before, "jazari_raft_leader") == 1
    assert value(before, "jazari_raft_term") >= 1
    assert value(before, "jazari_raft_applied_index") >= 1
    assert value(before, "jazari_raft_commit_index") >= value(before, "jazari_raft_applied_index") - 1
    assert value(before, "process_resident_memory_bytes") > 1 << 20
    assert any(k[0] == "jazari_build_info" for k in before)

    # The agent: the daemon's own, none of the network's.
    a = parse(fetch(agent.http))
    assert value(a, "jazari_up") == 1
    assert value(a, "jazari_job_parts_running", node="agent") == 0
    assert not any(k[0] == "jazari_nodes" for k in a)

    # A job on both nodes: running, a part on each, counted.
    r = ctl.jz("submit", "--json", "--nodes", "2", "--", "sleep", "300")
    assert r.returncode == 0, r.stderr
    jid = json.loads(r.stdout)["id"]
    wait_for(lambda: value(parse(fetch(ctl.http)), "jazari_jobs", state="running") == 1, timeout=30,
             what="the job running in /metrics")
    for d in (ctl, agent):
        wait_for(lambda: value(parse(fetch(d.http)), "jazari_job_parts_running", node=d.name) == 1, timeout=30,
                 what="a part running on %s" % d.name)
    mid = parse(fetch(ctl.http))
    assert value(mid, "jazari_jobs_submitted_total") == value(before, "jazari_jobs_submitted_total") + 1
    assert value(mid, "jazari_jobs_started_total") == value(before, "jazari_jobs_started_total") + 1
    passes = value(mid, "jazari_scheduler_pass_seconds_count")
    assert passes >= 1
    assert value(mid, "jazari_scheduler_pass_seconds_bucket", le="+Inf") == passes
    assert value(mid, "jazari_scheduler_pass_seconds_sum") > 0

    assert ctl.jz("cancel", str(jid)).returncode == 0
    wait_for(lambda: value(parse(fetch(ctl.http)), "jazari_jobs", state="cancelled") == 1, timeout=30,
             what="the job cancelled in /metrics")
    after = parse(fetch(ctl.http))
    assert value(after, "jazari_jobs", state="running") == 0
    assert value(after, "jazari_raft_applied_index") > value(before, "jazari_raft_applied_index")
    assert value(after, "jazari_http_requests_total") > value(before, "jazari_http_requests_total")
    assert value(after, "process_cpu_seconds_total") >= value(before, "process_cpu_seconds_total")

    # Debian's promtool accepts both pages, its linter included.
    promtool_check(fetch(ctl.http))
    promtool_check(fetch(agent.http))
    # HEAD: the headers alone.
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % ctl.http, method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and r.read() == b""


def query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
    except (urllib.error.URLError, ConnectionError, OSError):
        return None
    return body["data"]["result"] if body.get("status") == "success" else None


@pytest.mark.timeout(240)
def test_a_prometheus_server_scrapes_both_daemons(daemon_factory, tmp_path):
    if not (os.path.exists(PROMETHEUS) and os.access(PROMETHEUS, os.X_OK)):
        pytest.skip("%s is absent: install Debian's prometheus (make deps) for this test" % PROMETHEUS)
    ctl, agent = two_nodes(daemon_factory)
    targets = ["127.0.0.1:%d" % ctl.http, "127.0.0.1:%d" % agent.http]
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                      "scrape_configs:\n  - job_name: jazari\n    static_configs:\n"
                      "      - targets: [%s]\n" % ", ".join("'%s'" % t for t in targets))
    port = free_port()
    log = open(str(tmp_path / "prometheus.log"), "w")
    prom = subprocess.Popen([PROMETHEUS, "--config.file=%s" % config, "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def both_up():
            if prom.poll() is not None:
                raise AssertionError("prometheus exited: %s\n%s" % (prom.returncode,
                                                                    open(str(tmp_path / "prometheus.log")).read()))
            res = query(port, "up")
            return res and sorted((s["metric"]["instance"], s["value"][1]) for s in res) == \
                sorted((t, "1") for t in targets)
        wait_for(both_up, timeout=90, what="prometheus to scrape both daemons (up == 1)")

        def nodes_up():
            res = query(port, 'jazari_nodes{state="up"}')
            return res and [(s["metric"]["instance"], s["metric"]["site"], s["value"][1]) for s in res] == \
                [(targets[0], "local", "2")]
        wait_for(nodes_up, timeout=30, what="jazari_nodes{state=\"up\"} == 2 from the controller")
        res = query(port, "jazari_up")
        assert sorted(s["metric"]["instance"] for s in res) == sorted(targets)
        res = query(port, "jazari_raft_leader")
        assert [(s["metric"]["instance"], s["value"][1]) for s in res] == [(targets[0], "1")]
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def raw(port, data, timeout=10):
    """Sends data on a new connection; returns what comes back until the
    daemon closes it (or the first response's head, when it keeps it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass  # answered (and closed) before the rest was sent: its answer may still be read
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            head, sep, body = got.partition(b"\r\n\r\n")
            m = re.search(rb"content-length: (\d+)", head, re.I)
            if sep and m and len(body) >= int(m.group(1)):
                break
        return got
    finally:
        s.close()


def status_of(reply):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", reply)
    return int(m.group(1)) if m else None


def test_bad_requests_get_a_4xx_and_cost_nothing_else(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory)
    port = ctl.http
    assert status_of(raw(port, b"GARBAGE \x01\x02 nonsense\r\n\r\n")) == 400
    assert status_of(raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")) == 431
    assert status_of(raw(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")) == 405
    assert status_of(raw(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                         b"z" * 100000)) == 413
    assert status_of(raw(port, b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) == 405
    assert status_of(raw(port, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")) == 404
    # A head longer than h2o's own bound (about 400 KiB): refused, not held.
    reply = raw(port, b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 100000, timeout=20)
    assert status_of(reply) in (400, 431, None), reply[:200]

    # 100 connections at once: 64 are served, the 36 oldest closed to make room.
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
    served = closed = 0
    try:
        for s in conns:
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                first = s.recv(64)
            except (ConnectionResetError, BrokenPipeError):
                first = b""
            if first.startswith(b"HTTP/1.1 200"):
                served += 1
            else:
                assert first == b"", first
                closed += 1
    finally:
        for s in conns:
            s.close()
    assert served + closed == 100
    assert served <= 64 and closed >= 36, (served, closed)

    # The daemons serve on: /metrics (which counted all this) and jz status.
    # (Until the daemon has seen the 64 close, a new connection is over the cap.)
    def served_again():
        try:
            return parse(fetch(port))
        except (ConnectionError, urllib.error.URLError):
            return None
    m = wait_for(served_again, what="/metrics after the bad requests")
    assert value(m, "jazari_http_connections_refused_total") >= 36
    assert value(m, "jazari_http_rejected_total") >= 4  # 404, 405 twice, 431 (h2o's own 400 and 413 aside)
    assert value(m, "jazari_nodes", state="up", site="local") == 2
    assert ctl.jz("status").returncode == 0
    assert agent.jz("status").returncode == 0
    promtool_check(fetch(agent.http))


def test_a_bad_http_listen_stops_the_daemon_with_the_setting_named(tmp_path):
    r = run([JAZARID, "--http-listen", "localhost:http", "--state-dir", str(tmp_path / "s")])
    assert r.returncode == 2
    assert "bad value 'localhost:http' for http_listen" in r.stderr, r.stderr
    # Taken: said, with the address, and the daemon stops.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        taken = busy.getsockname()[1]
        r = run([JAZARID, "--name", "x", "--listen", "127.0.0.1:%d" % free_port(),
                 "--http-listen", "127.0.0.1:%d" % taken, "--state-dir", str(tmp_path / "s"),
                 "--socket", str(tmp_path / "s.sock")], timeout=60)
    finally:
        busy.close()
    assert r.returncode == 1, r.stderr
    assert "http_listen 127.0.0.1:%d" % taken in r.stderr and "address already in use" in r.stderr, r.stderr


def test_a_daemon_stops_cleanly_with_http_connections_open(daemon_factory, tmp_path):
    """SIGTERM with connections in every state: idle, half a request sent,
    kept alive after a response, a response not read. The daemon ends
    them, closes its loop (h2o's handles too) and exits 0 at once (under
    ASan: with nothing leaked)."""
    http = free_port()
    d = daemon_factory(name="solo", extra=["--http-listen", "127.0.0.1:%d" % http] + FAST)
    wait_for(lambda: d.jz_json("status")["leader"] == "solo", what="solo to lead")
    idle = socket.create_connection(("127.0.0.1", http), timeout=10)
    half = socket.create_connection(("127.0.0.1", http), timeout=10)
    half.sendall(b"GET /metr")
    kept = socket.create_connection(("127.0.0.1", http), timeout=10)
    kept.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kept.recv(12) == b"HTTP/1.1 200"
    unread = socket.create_connection(("127.0.0.1", http), timeout=10)
    unread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    unread.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
    wait_for(lambda: value(parse(fetch(http)), "jazari_http_requests_total") >= 3, what="the requests served")
    t0 = time.monotonic()
    try:
        assert d.stop(timeout=10) == 0, d.log()
        took = time.monotonic() - t0
        assert took < 5, "stopped in %.1f s" % took
        assert "did not close cleanly" not in d.log()
        for s in (idle, half, kept):
            s.settimeout(5)
            try:
                rest = s.recv(65536)
            except ConnectionResetError:
                rest = b""
            while rest:  # what was in flight, then the end
                try:
                    rest = s.recv(65536)
                except ConnectionResetError:
                    break
    finally:
        for s in (idle, half, kept, unread):
            s.close()

"""The dashboard in a real browser: a controller and an agent with eight GPUs
(a real machine's topology) serve it on http_listen; jz web gives a token;
Debian's headless Chromium, driven by playwright-core (dashboard.js), loads
the page, sees both nodes, sees a node turn draining then drained after jz
drain, opens the node's page with its topology matrix and takes a
screenshot. The JSON API is checked without a browser too: 401 without a
token, a researcher's token refused the events (403), the keys of jz's
--json."""
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import JZ, ROOT, fixture_xml, free_port, run, wait_for
from test_steps import FAST

H100 = fixture_xml("hgx-h100-8gpu.xml")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NODE = shutil.which("node")
PLAYWRIGHT = os.path.join(ROOT, "build", "node", "node_modules", "playwright-core")
DRIVER = os.path.join(ROOT, "tests", "integration", "dashboard.js")


def network(daemon_factory, tmp_path):
    for d in ("tmp-ctl", "tmp-gpu1"):
        (tmp_path / d).mkdir(exist_ok=True)
        os.chmod(str(tmp_path / d), 0o1777)
    port, ctl_http, agent_http = free_port(), free_port(), free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms", "--gpu-isolation", "off",
                                "--tmp-dir", str(tmp_path / "tmp-ctl"),
                                "--http-listen", "127.0.0.1:%d" % ctl_http] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    agent = daemon_factory(name="gpu1", xml=H100,
                           extra=["--controllers", spec, "--gpu-isolation", "off",
                                  "--tmp-dir", str(tmp_path / "tmp-gpu1"),
                                  "--http-listen", "127.0.0.1:%d" % agent_http] + FAST)
    wait_for(lambda: node_of(ctl, "gpu1") and node_of(ctl, "gpu1")["state"] == "up", what="gpu1 up")
    ctl.http, agent.http = ctl_http, agent_http
    return ctl, agent


def node_of(ctl, name):
    for n in ctl.jz_json("nodes")["nodes"]:
        if n["name"] == name:
            return n
    return None


def get(port, path, token=None):
    """(status, headers, parsed JSON or text) of GET path."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, headers, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    text = body.decode()
    if headers.get("Content-Type", "").startswith("application/json"):
        return status, headers, json.loads(text)
    return status, headers, text


def gated_job(ctl, gate, name):
    """A job of two GPUs that runs until gate exists: its id, once running."""
    r = ctl.jz("submit", "--gpus-per-node", "2", "--name", name, "--", "sh", "-c",
               "while [ ! -e %s ]; do sleep 0.1; done" % gate)
    assert r.returncode == 0, r.stderr
    jid = int(r.stdout.strip())
    wait_for(lambda: ctl.jz_json("show", str(jid))["state"] == "RUNNING", what="the job to run")
    return jid


def web_token(ctl, *args):
    r = run([JZ, "web", "--json", "--socket", ctl.socket] + list(args))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_api_needs_a_token_and_answers_with_jz_keys(daemon_factory, tmp_path):
    ctl, agent = network(daemon_factory, tmp_path)
    # No token, a wrong one, a forged one: 401 with a JSON error.
    status, _, body = get(ctl.http, "/api/nodes")
    assert status == 401 and "jz web" in body["error"], body
    status, _, body = get(ctl.http, "/api/nodes", token="jzw1.e30.AAAA")
    assert status == 401 and body["error"], body
    status, _, body = get(ctl.http, "/api/nosuch")
    assert status == 401 and body["error"], body
    admin = web_token(ctl)
    assert admin["user"] == "root" and admin["role"] == "admin", admin
    assert admin["url"] == "http://127.0.0.1:%d/#token=%s" % (ctl.http, admin["token"]), admin
    head, payload, mac = admin["token"].split(".")
    forged = ".".join([head, payload, mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")])
    status, _, body = get(ctl.http, "/api/nodes", token=forged)
    assert status == 401 and "did not sign" in body["error"], body
    # With one: the same keys as jz nodes --json, jz queue --json, jz events --json.
    status, headers, nodes = get(ctl.http, "/api/nodes", token=admin["token"])
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff", headers
    jz_nodes = ctl.jz_json("nodes")
    assert [sorted(n) for n in nodes["nodes"]] == [sorted(n) for n in jz_nodes["nodes"]]
    assert sorted(n["name"] for n in nodes["nodes"]) == ["ctl", "gpu1"]
    gate = tmp_path / "gate"
    jid = gated_job(ctl, gate, "api")
    status, _, q = get(ctl.http, "/api/queue", token=admin["token"])
    assert status == 200 and q["truncated"] is False, q
    mine = [j for j in q["jobs"] if j["id"] == jid]
    assert mine and sorted(mine[0]) == sorted(ctl.jz_json("show", str(jid))), q
    status, _, ev = get(ctl.http, "/api/events?since_seq=0", token=admin["token"])
    jz_ev = ctl.jz_json("events")["events"]
    assert status == 200 and [sorted(e) for e in ev["events"]] == [sorted(e) for e in jz_ev], ev
    status, _, ev2 = get(ctl.http, "/api/events?since_seq=%d" % ev["events"][-1]["seq"], token=admin["token"])
    assert status == 200 and ev2["events"] == [], ev2
    status, _, bad = get(ctl.http, "/api/events?since_seq=x", token=admin["token"])
    assert status == 400, bad
    # A node's page: jz node's keys, its topology, its jobs; its GPUs' history.
    status, _, n = get(ctl.http, "/api/node/gpu1", token=admin["token"])
    jz_n = ctl.jz_json("node", "gpu1")
    assert status == 200 and n["topology"] == jz_n["topology"], n
    assert set(jz_n) <= set(n) and [j["id"] for j in n["jobs"]] == [jid], n
    assert n["topology"]["gpu_links"][0][1].startswith("NV"), n["topology"]["gpu_links"]
    status, _, h = get(ctl.http, "/api/node/gpu1/history", token=admin["token"])
    assert status == 200 and h["node"] == "gpu1" and h["gpus"] == [], h  # relayed; no NVML here
    status, _, h = get(ctl.http, "/api/node/ctl/history", token=admin["token"])
    assert status == 200 and h["node"] == "ctl", h
    status, _, missing = get(ctl.http, "/api/node/nosuch", token=admin["token"])
    assert status == 404, missing
    for path in ("/api/node/", "/api/node/gpu1/history/x", "/api/node/a%2Fb",
                 "/api/node/" + "x" * 200, "/api/nodes/extra"):
        assert get(ctl.http, path, token=admin["token"])[0] == 404, path
    status, _, body = get(ctl.http, "/api/nosuch", token=admin["token"])
    assert status == 404 and "no such page" in body["error"], body
    status, _, bad = get(ctl.http, "/api/events?since_seq=" + "9" * 40, token=admin["token"])
    assert status == 400, bad
    assert get(ctl.http, "/api/events?since_seq=" + "9" * 20000, token=admin["token"])[0] == 431
    status, _, u = get(ctl.http, "/api/utilization", token=admin["token"])
    assert status == 200 and u["interval_s"] == 15 and len(u["time_ms"]) >= 1, u
    site = u["sites"][0]
    assert site["gpus_total"][-1] == 8 and len(site["gpus_used"]) == len(u["time_ms"]), u
    status, _, st = get(ctl.http, "/api/status", token=admin["token"])
    assert status == 200 and st["leader"] == "ctl" and st["admin"] is True and st["user"] == "root", st
    assert set(ctl.jz_json("status")) <= set(st), st
    # A researcher: the nodes, not the events; not root's job.
    creds = ctl.credentials(user="alice", role="researcher")
    r = run([JZ, "web", "--json", "--credentials", creds, "--server", "127.0.0.1:%d" % ctl.port])
    assert r.returncode == 0, r.stderr
    alice = json.loads(r.stdout)
    assert alice["user"] == "alice" and alice["role"] == "researcher", alice
    status, _, body = get(ctl.http, "/api/events", token=alice["token"])
    assert status == 403 and "admins" in body["error"], body
    status, _, nodes = get(ctl.http, "/api/nodes", token=alice["token"])
    assert status == 200 and len(nodes["nodes"]) == 2, nodes
    status, _, q = get(ctl.http, "/api/queue", token=alice["token"])
    assert status == 200 and q["jobs"] == [], q
    # A token lives no longer than the credentials it was made with.
    carol_creds = ctl.credentials(user="carol", role="researcher", ttl="1h")
    r = run([JZ, "web", "--json", "--credentials", carol_creds, "--server", "127.0.0.1:%d" % ctl.port])
    assert r.returncode == 0, r.stderr
    carol = json.loads(r.stdout)
    assert carol["expires_ms"] <= (time.time() + 3600) * 1000, carol
    assert get(ctl.http, "/api/nodes", token=carol["token"])[0] == 200
    assert ctl.jz("token", "revoke", "user:carol").returncode == 0
    status, _, body = get(ctl.http, "/api/nodes", token=carol["token"])
    assert status == 401 and "revoked" in body["error"], body
    # Root on an agent's socket is not the network's admin: nor is its token.
    via = web_token(agent)
    assert via["user"] == "root" and via["role"] == "tenant-admin", via
    assert get(ctl.http, "/api/events", token=via["token"])[0] == 403
    assert get(ctl.http, "/api/nodes", token=via["token"])[0] == 200
    # The agent serves /metrics only, and no token of its own.
    assert get(agent.http, "/api/nodes", token=admin["token"])[0] == 404
    assert get(agent.http, "/metrics")[0] == 200
    r = run([JZ, "web", "--ttl", "30d", "--socket", ctl.socket])
    assert r.returncode == 2 and "at most 7 days" in r.stderr, r.stderr
    # A page's security headers; a static file, no token needed.
    status, headers, html = get(ctl.http, "/")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"], headers
    assert '<script src="/app.js"' in html
    gate.write_text("")
    wait_for(lambda: ctl.jz_json("show", str(jid))["state"] == "COMPLETED", what="the job to end")


class Browser:
    def __init__(self):
        self.p = subprocess.Popen([NODE, DRIVER, PLAYWRIGHT, CHROMIUM], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(DRIVER))
        assert self.answer()["ready"]

    def answer(self):
        line = self.p.stdout.readline()
        assert line, "the browser driver ended (exit %s)" % self.p.poll()
        return json.loads(line)

    def __call__(self, op, **kw):
        kw["op"] = op
        self.p.stdin.write(json.dumps(kw) + "\n")
        self.p.stdin.flush()
        a = self.answer()
        assert a["ok"], "%s: %s" % (kw, a.get("error"))
        return a

    def close(self):
        try:
            self.p.stdin.write('{"op": "quit"}\n')
            self.p.stdin.close()
            self.p.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


def test_dashboard_in_headless_chromium(daemon_factory, tmp_path):
    if not NODE or not os.path.exists(CHROMIUM):
        pytest.skip("needs node and Debian's chromium (deploy/deps.sh installs them)")
    if not os.path.isdir(PLAYWRIGHT):
        pytest.skip("needs playwright-core in build/node (deploy/deps.sh installs it)")
    ctl, agent = network(daemon_factory, tmp_path)
    gate = tmp_path / "gate"
    jid = gated_job(ctl, gate, "web-job")
    url = run([JZ, "web", "--socket", ctl.socket]).stdout.strip()
    assert url.startswith("http://127.0.0.1:%d/#token=jzw1." % ctl.http), url
    b = Browser()
    try:
        b("goto", url=url)
        grid = '#grid [data-node="%s"]'
        b("wait", selector=grid % "ctl")
        b("wait", selector=(grid % "gpu1") + '[data-state="up"]')
        assert b("count", selector=(grid % "gpu1") + " .gpu")["count"] == 8
        assert b("count", selector=(grid % "gpu1") + " .gpu.used")["count"] == 2
        b("wait", selector='#queue tr[data-job="%d"]' % jid)
        b("wait", selector="#utilization svg")
        b("wait", selector="#events")  # root's token: an admin
        r = ctl.jz("drain", "gpu1", "--reason", "dashboard test")
        assert r.returncode == 0, r.stderr
        b("wait", selector=(grid % "gpu1") + '[data-state="draining"]', timeout_ms=30000)
        gate.write_text("")
        b("wait", selector=(grid % "gpu1") + '[data-state="drained"]', timeout_ms=30000)
        assert b("count", selector=(grid % "gpu1") + " .gpu.drained")["count"] == 8
        b("screenshot", path=str(tmp_path / "overview.png"))
        b("click", selector=grid % "gpu1")
        b("wait", selector='#node-title[data-node="gpu1"][data-state="drained"]')
        b("wait", selector="table#topology")
        assert b("count", selector="table#topology tr")["count"] == 9  # a header and eight GPUs
        assert b("text", selector="table#topology tr:nth-child(2) td:nth-child(3)")["text"].startswith("NV")
        b("wait", selector="#history")
        b("wait", selector='#node-jobs tr[data-job="%d"]' % jid)
        shot = tmp_path / "dashboard.png"
        b("screenshot", path=str(shot))
        data = shot.read_bytes()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
        # No CSP violation, no script error.
        assert b("errors")["errors"] == []
        # A researcher's token: the page loads, without the events.
        creds = ctl.credentials(user="alice", role="researcher")
        r = run([JZ, "web", "--credentials", creds, "--server", "127.0.0.1:%d" % ctl.port])
        assert r.returncode == 0, r.stderr
        b("goto", url="about:blank")
        b("goto", url=r.stdout.strip())
        b("wait", selector=(grid % "gpu1") + '[data-state="drained"]')
        assert b("count", selector="#events")["count"] == 0
        # A wrong token: the page says how to get one.
        b("goto", url="about:blank")
        b("goto", url="http://127.0.0.1:%d/#token=jzw1.bad.bad" % ctl.http)
        b("wait", selector="#login")
    finally:
        b.close()


def test_gpu_history_is_relayed_from_the_node_and_charted(daemon_factory, tmp_path):
    """The agent keeps its GPUs' samples (the fake NVML's four A100s, every
    200 ms); the controller relays a dashboard's request for them."""
    import test_health_loop
    ctl, agent, state = test_health_loop.network(daemon_factory, tmp_path)
    token = web_token(ctl)["token"]

    def history():
        status, _, h = get(ctl.http, "/api/node/gpu1/history", token=token)
        assert status == 200, h
        return h if len(h["gpus"]) == 4 and len(h["gpus"][0]["time_ms"]) >= 3 else None

    h = wait_for(history, what="three samples of gpu1's GPUs")
    g = h["gpus"][0]
    assert h["node"] == "gpu1" and g["gpu"] == 0, h
    assert len(g["temp_c"]) == len(g["util_gpu_pct"]) == len(g["power_mw"]) == len(g["time_ms"]), g
    assert g["time_ms"] == sorted(g["time_ms"]) and all(t > 0 for t in g["temp_c"]), g
    assert h["conditions"] == [], h
    # A GPU too hot: a condition the node reports with its history.
    from test_health import write_state
    write_state(state, "gpu 2 temp=92\n")

    def hot():
        h = get(ctl.http, "/api/node/gpu1/history", token=token)[2]
        return [c for c in h["conditions"] if c["gpu"] == 2]

    c = wait_for(hot, what="gpu1's GPU 2 over temperature")[0]
    assert c["text"] and c["since"].endswith("Z"), c
    # Who may not: no token.
    assert get(ctl.http, "/api/node/gpu1/history")[0] == 401
    if not NODE or not os.path.exists(CHROMIUM) or not os.path.isdir(PLAYWRIGHT):
        return
    b = Browser()
    try:
        b("goto", url="http://127.0.0.1:%d/#token=%s" % (ctl.http, token))
        b("click", selector='#grid [data-node="gpu1"]')
        b("wait", selector="#history svg polyline")
        b("wait", selector="#conditions li[data-condition]")
        b("screenshot", path=str(tmp_path / "history.png"))
        assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
        assert b("count", selector="#history svg")["count"] == 3  # temperature, utilisation, power
        assert b("errors")["errors"] == []
    finally:
        b.close()

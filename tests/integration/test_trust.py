"""Trust across institutes: TLS on the one port, join tokens, people's
credentials, revocation, renewal. Real daemons, real TLS (OpenSSL on both
sides: our C client and server, and Python's ssl module as a stranger)."""
import os
import pwd
import shutil
import socket
import ssl
import struct

import pytest

from conftest import JAZARID, JZ, Daemon, fixture_xml, frame, hello_env, pb, read_frame, run, wait_for

FAST = ["--heartbeat-interval", "200ms", "--node-timeout", "2s", "--election-timeout", "500ms"]


def three_controllers(daemon_factory, tmp_path, token=True, extra=()):
    ports = [Daemon(tmp_path, name="probe%d" % i).port for i in range(3)]
    spec = ",".join("c%d@127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(ports))
    ctls = [daemon_factory(name="c%d" % (i + 1), port=ports[i], xml=fixture_xml("hgx-h100-8gpu.xml"),
                           token=token, extra=FAST + ["--controllers", spec] + list(extra)) for i in range(3)]
    wait_for(lambda: leader_of(ctls[0]), timeout=20, what="a leader")
    return ctls, spec


def leader_of(d):
    r = d.jz("status", "--json")
    if r.returncode != 0:
        return None
    import json
    return json.loads(r.stdout).get("leader") or None


def nodes_up(d):
    import json
    r = d.jz("nodes", "--json")
    if r.returncode != 0:
        return {}
    return {n["name"]: n["state"] for n in json.loads(r.stdout)["nodes"]}


def assert_serving(d):
    r = d.jz("ping")
    assert r.returncode == 0, r.stderr


def test_a_stranger_gets_nothing(daemon_factory, tmp_path):
    """Plaintext, no certificate, another network's certificate: each is
    cut off without one byte of our protocol, and the daemon serves on."""
    d = daemon_factory(name="solo")
    # A well-formed frame in plaintext: no TLS, no answer.
    with d.connect(plaintext=True) as s:
        s.sendall(frame(hello_env()))
        s.settimeout(10)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"hello" not in data and b"jazarid" not in data and len(data) < 64
    wait_for(lambda: "TLS handshake failed" in d.log(), what="the plaintext peer logged")
    # TLS with no certificate: the handshake may finish (a joiner's way in)
    # but a hello gets nothing back.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.port), timeout=10)) as s:
        s.sendall(frame(hello_env()))
        assert read_frame(s) is None
    wait_for(lambda: "no certificate, and not a join" in d.log(), what="the anonymous hello logged")
    # A person's credentials of another network (its own CA).
    other = daemon_factory(name="other", token=None)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with d.connect(issuer=other, verify=d.tls_files()[2]) as s:
            s.sendall(frame(hello_env()))
            assert read_frame(s) is None
            raise ConnectionResetError("closed")
    wait_for(lambda: "not from this network's CA" in d.log(), what="the other network's certificate logged")
    # Our own credentials work, and the daemon never noticed the rest.
    with d.connect() as s:
        s.sendall(frame(hello_env(request_id=5)))
        assert read_frame(s).hello_reply.name == "solo"
    assert_serving(d)


def test_a_person_cannot_speak_for_another(daemon_factory):
    """Over TLS with a researcher's credentials: a forged caller in the
    envelope, an agent's hello, a node's registration and a job's end are
    all refused; the person acts as themself only."""
    d = daemon_factory(name="solo")
    with d.connect(user="nobody", role="researcher") as s:
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
        # A submit whose envelope says it comes from root.
        req = pb.Envelope(request_id=2, version=1)
        req.caller.uid = 0
        req.caller.user = "root"
        req.submit_request.spec.argv.extend(["/bin/cat", "/etc/shadow"])
        s.sendall(frame(req))
        rep = read_frame(s)
        assert rep.error.code == pb.PERMISSION_DENIED
        # A heartbeat, a registration and a job end as node "solo".
        for i, body in enumerate(("heartbeat_request", "register_request", "job_end_request")):
            req = pb.Envelope(request_id=10 + i, version=1)
            getattr(req, body).SetInParent()
            if body == "heartbeat_request":
                req.heartbeat_request.name = "solo"
            elif body == "register_request":
                req.register_request.node.name = "solo"
            else:
                req.job_end_request.node = "solo"
                req.job_end_request.id = 1
            s.sendall(frame(req))
            rep = read_frame(s)
            assert rep is None or rep.error.code in (pb.PERMISSION_DENIED, pb.BAD_REQUEST), rep
            if rep is None:
                break
    # An agent's hello from a person's certificate: cut off.
    with d.connect(user="nobody", role="researcher") as s:
        h = hello_env()
        h.hello.kind = pb.PEER_AGENT
        h.hello.name = "solo"
        s.sendall(frame(h))
        assert read_frame(s) is None
    # A Raft hello from a person's certificate: cut off before libraft.
    with d.connect() as s:
        h = hello_env()
        h.hello.kind = pb.PEER_CONTROLLER
        h.hello.raft_id = 1
        h.hello.raft_address = "127.0.0.1:%d" % d.port
        s.sendall(frame(h))
        assert read_frame(s) is None
    # Nothing ran as root, the daemon serves on.
    r = d.jz("queue", "--all", "--json")
    assert r.returncode == 0 and '"/bin/cat"' not in r.stdout
    assert_serving(d)


def test_remote_user_with_credentials(daemon_factory, tmp_path):
    """jz --server --credentials from "another machine": a researcher's
    job runs as their own account; revoked or expired credentials fail."""
    d = daemon_factory(name="solo")
    cred = d.credentials(user="nobody", role="researcher")
    env = dict(os.environ, JAZARI_CREDENTIALS=cred, JAZARI_SERVER="127.0.0.1:%d" % d.port)
    import tempfile
    out = tempfile.mkdtemp(prefix="jazari-nobody-")  # pytest's own tmp is root's alone
    try:
        os.chmod(out, 0o777)
        r = run([JZ, "submit", "--output", os.path.join(out, "%j.out"), "--workdir", out, "--",
                 "/usr/bin/id", "-un"], env=env)
        assert r.returncode == 0, r.stderr
        job = r.stdout.strip()
        r = run([JZ, "wait", job, "--timeout", "30"], env=env)
        assert r.returncode == 0, r.stderr
        assert open(os.path.join(out, "%s.out" % job)).read().strip() == "nobody"
    finally:
        shutil.rmtree(out, ignore_errors=True)
    # Global options before the command, as promised.
    r = run([JZ, "--credentials", cred, "--server", "127.0.0.1:%d" % d.port, "show", job])
    assert r.returncode == 0 and "nobody" in r.stdout, r.stderr
    # A researcher cannot make credentials.
    r = run([JZ, "token", "create", "--user", "root", "--role", "admin"], env=env)
    assert r.returncode == 1 and "admins" in r.stderr
    # Revoked: refused at the next connection, with a line that says so.
    r = d.jz("token", "revoke", "user:nobody")
    assert r.returncode == 0, r.stderr
    r = run([JZ, "queue"], env=env)
    assert r.returncode == 1 and "refused the credentials" in r.stderr
    # Expired credentials (a one-second life): refused by the client itself.
    short = d.credentials(user="nobody", role="researcher", ttl="1s")
    wait_for(lambda: run([JZ, "queue", "--credentials", short]).returncode == 1, timeout=10,
             what="the credentials to expire")
    r = run([JZ, "queue", "--credentials", short])
    assert "expired" in r.stderr or "refused" in r.stderr
    # A file that is not credentials: one line, exit 1.
    bad = tmp_path / "bad.jzcred"
    bad.write_text("server = 127.0.0.1:1\nuser = x\n-----BEGIN CERTIFICATE-----\nnope\n")
    r = run([JZ, "queue", "--credentials", str(bad)])
    assert r.returncode == 1 and "credentials" in r.stderr and len(r.stderr.splitlines()) == 1
    assert_serving(d)


@pytest.mark.timeout(240)
def test_join_revoke_rejoin(daemon_factory, tmp_path):
    """A node joins with a join token (no key copied), runs a job; a wrong
    or expired token fails with one line; a revoked node is dropped and
    cannot come back with its old certificate; with a new token it can."""
    ctls, spec = three_controllers(daemon_factory, tmp_path)
    c1 = ctls[0]
    r = c1.jz("token", "create", "--join")
    assert r.returncode == 0 and r.stdout.startswith("jzj1."), r.stderr
    token = r.stdout.strip()

    # A wrong secret, and an expired token: refused, the daemon says why.
    wrong = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    bad = Daemon(tmp_path, name="bad", extra=FAST + ["--controllers", spec], token=wrong)
    r = run(bad.args, timeout=60)
    assert r.returncode == 1 and "unknown or expired" in r.stderr, r.stderr
    import json
    import time
    r = c1.jz("token", "create", "--join", "--ttl", "1s", "--json")
    short = json.loads(r.stdout)
    wait_for(lambda: time.time() * 1000 > short["expires_ms"] + 200, what="the short token to expire")
    short = short["token"]
    late = Daemon(tmp_path, name="late", extra=FAST + ["--controllers", spec], token=short)
    r = run(late.args, timeout=60)
    assert r.returncode == 1 and "unknown or expired" in r.stderr, r.stderr

    a = daemon_factory(name="a1", xml=fixture_xml("hgx-h100-8gpu.xml"), token=token,
                       extra=FAST + ["--controllers", spec])
    wait_for(lambda: nodes_up(c1).get("a1") == "up", timeout=20, what="a1 up")
    assert not os.path.exists(os.path.join(a.dir, "state", "tls", "ca.key")), "an agent holds no CA key"
    r = c1.jz("submit", "--gpus-per-node", "8", "--", "true")
    assert r.returncode == 0, r.stderr

    r = c1.jz("node", "revoke", "a1")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: nodes_up(c1).get("a1") == "down", timeout=10, what="a1 down")
    wait_for(lambda: "refuses this node's certificate" in a.log(), timeout=10, what="a1 told why")
    # Restarted with its old certificate: still refused, still down.
    a.stop()
    a.start()
    wait_for(lambda: a.log().count("refuses this node's certificate") >= 1, timeout=10, what="refused again")
    assert nodes_up(c1).get("a1") == "down"
    a.stop()
    # A new token, a fresh key: back.
    shutil.rmtree(os.path.join(a.dir, "state", "tls"))
    token2 = c1.jz("token", "create", "--join").stdout.strip()
    a.args[a.args.index("--join-token") + 1] = token2
    a.start()
    wait_for(lambda: nodes_up(c1).get("a1") == "up", timeout=20, what="a1 up again")


@pytest.mark.timeout(240)
def test_certificates_renew_while_jobs_run(daemon_factory, tmp_path):
    """With certificates that live 30 s, a controller and an agent renew
    theirs (the agent through the leader) while a job runs; the network
    never notices."""
    ctls, spec = three_controllers(daemon_factory, tmp_path, extra=["--cert-ttl", "30s"])
    c1 = ctls[0]
    a = daemon_factory(name="a1", xml=fixture_xml("hgx-h100-8gpu.xml"),
                       extra=FAST + ["--controllers", spec, "--cert-ttl", "30s"])
    wait_for(lambda: nodes_up(c1).get("a1") == "up", timeout=20, what="a1 up")
    crt = os.path.join(a.dir, "state", "tls", "node.crt")
    before = open(crt).read()
    r = c1.jz("submit", "--time", "5:00", "--", "sleep", "40")
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip()
    wait_for(lambda: "renewed our certificate through the leader" in a.log(), timeout=60, what="the agent renews")
    wait_for(lambda: any("renewed our certificate" in c.log() for c in ctls), timeout=30, what="a controller renews")
    assert open(crt).read() != before
    # New connections use the new certificate; the job goes on to the end.
    r = c1.jz("wait", job, "--timeout", "90", timeout=100)
    assert r.returncode == 0, r.stderr
    assert nodes_up(c1).get("a1") == "up"


def test_token_generate_and_bad_tokens(tmp_path):
    r = run([JAZARID, "token", "generate"])
    assert r.returncode == 0 and r.stdout.startswith("jzn1.") and len(r.stdout.strip()) == 69
    assert run([JAZARID, "token", "generate"]).stdout != r.stdout
    for bad, needle in [("nope", "not a Jazari token"), ("jzn1." + "Z" * 64, "hex digit")]:
        r = run([JAZARID, "--state-dir", str(tmp_path / "s"), "--listen", "127.0.0.1:1",
                 "--join-token", bad], timeout=30)
        assert r.returncode == 1 and needle in r.stderr, r.stderr
    # An agent with no token and no certificate: one line saying what to do.
    r = run([JAZARID, "--name", "lonely", "--state-dir", str(tmp_path / "t"), "--listen", "127.0.0.1:1",
             "--controllers", "c1@127.0.0.1:2"], timeout=30)
    assert r.returncode == 1 and "--join-token" in r.stderr, r.stderr


@pytest.mark.timeout(180)
def test_what_a_stranger_can_make_us_spend_is_bounded(daemon_factory):
    """Hundreds of idle connections that never finish a handshake, frames
    that never finish, more bytes of them than the budget: the stranger is
    cut off, the local socket and the network's own peers keep working."""
    d = daemon_factory(name="solo", extra=["--max-connections", "200", "--frame-timeout", "3s",
                                           "--max-buffered", "4MiB", "--idle-timeout", "4s"])
    # 400 plain connections that say nothing: at most a quarter of the limit
    # are kept without a certificate (the oldest make room for the newest),
    # and those are dropped at the handshake's deadline.
    idle = []
    for _ in range(400):
        try:
            idle.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
        except OSError:
            break
    assert_serving(d)
    wait_for(lambda: "make room" in d.log(), what="the oldest connections evicted past the limit")
    # A person with credentials still gets in, and so does jz on the socket.
    with d.connect() as s:
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
    wait_for(lambda: d.log().count("no TLS handshake within") + d.log().count("idle for") >= 40, timeout=30,
             what="the silent connections dropped at their deadline")
    for s in idle:
        s.close()
    # A frame announced at 1 MiB that never completes: dropped after 3 s.
    with d.connect() as s:
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
        s.sendall(struct.pack(">I", 1 << 20) + b"x" * 1000)
        assert read_frame(s, timeout=20) is None
    wait_for(lambda: "still incomplete after" in d.log(), what="the slow frame logged")
    # Several incomplete frames past the 4 MiB budget: the one that overflows is cut.
    conns = []
    for _ in range(6):
        s = d.connect()
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
        s.sendall(struct.pack(">I", 8 << 20) + b"y" * (1 << 20))
        conns.append(s)
    wait_for(lambda: "budget for incomplete frames" in d.log(), what="the budget enforced")
    for s in conns:
        s.close()
    # An idle person's connection is closed; the daemon serves on.
    with d.connect() as s:
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
        assert read_frame(s, timeout=20) is None
    wait_for(lambda: "idle for" in d.log(), what="the idle connection logged")
    assert_serving(d)


def test_limits_per_user(daemon_factory):
    """One user cannot fill every controller's memory: jobs and bytes of
    job specs in the queue are bounded per user (root is not)."""
    d = daemon_factory(name="solo", extra=["--max-jobs-per-user", "16", "--max-spec-bytes-per-user", "1MiB"])
    env = dict(os.environ, JAZARI_CREDENTIALS=d.credentials(user="nobody", role="researcher"))
    env.pop("JAZARI_SOCKET", None)
    for i in range(16):
        r = run([JZ, "submit", "--hold", "--workdir", "/tmp", "--", "true"], env=env)
        assert r.returncode == 0, r.stderr
    r = run([JZ, "submit", "--hold", "--workdir", "/tmp", "--", "true"], env=env)
    assert r.returncode == 1 and "max_jobs_per_user" in r.stderr, r.stderr
    # Root is not held to it.
    r = d.jz("submit", "--hold", "--", "true")
    assert r.returncode == 0, r.stderr
    # Cancelling frees the room.
    ids = [j["id"] for j in __import__("json").loads(d.jz("queue", "--json").stdout)["jobs"]
           if j["user"] == "nobody"]
    r = d.jz("cancel", *[str(i) for i in ids])
    assert r.returncode == 0, r.stderr
    big = []  # 600 KiB of environment, in words the kernel passes (each under 128 KiB)
    for i in range(12):
        big += ["--env", "BIG%d=%s" % (i, "X" * (50 << 10))]
    r = run([JZ, "submit", "--hold", "--workdir", "/tmp"] + big + ["--", "true"], env=env)
    assert r.returncode == 0, r.stderr
    r = run([JZ, "submit", "--hold", "--workdir", "/tmp"] + big + ["--", "true"], env=env)
    assert r.returncode == 1 and "max_spec_bytes_per_user" in r.stderr, r.stderr
    assert_serving(d)


@pytest.mark.skipif(not shutil.which("faketime"), reason="needs faketime (make deps)")
def test_a_clock_far_off_is_named(daemon_factory):
    """A machine whose clock is days off cannot check certificates: jz
    says so in one line that names the clocks, and the daemon is unharmed."""
    d = daemon_factory(name="solo")
    cred = d.credentials(user="nobody", role="researcher")
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    for offset in ("-3d", "+400d"):
        r = run(["faketime", "-f", offset, JZ, "--credentials", cred, "--server", "127.0.0.1:%d" % d.port,
                 "queue"], env=env)
        assert r.returncode == 1, (offset, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "clock" in r.stderr, (offset, r.stderr)
    r = run([JZ, "--credentials", cred, "--server", "127.0.0.1:%d" % d.port, "queue"])
    assert r.returncode == 0, r.stderr
    assert_serving(d)


def test_credentials_reach_any_controller(daemon_factory, tmp_path):
    """A credentials file names every controller: jz tries them in turn, so
    fresh credentials work at once (a follower may not have applied them
    yet) and a controller that is down is passed over."""
    ctls, spec = three_controllers(daemon_factory, tmp_path)
    for i in range(3):
        cred = ctls[0].credentials(user="nobody", role="researcher", ttl="%dh" % (i + 1))
        r = run([JZ, "--credentials", cred, "queue"])
        assert r.returncode == 0, r.stderr
    servers = [l for l in open(cred) if l.startswith("server = ")][0]
    assert servers.strip() == "server = " + ",".join(s.split("@")[1] for s in spec.split(",")), servers
    ctls[0].stop()
    r = run([JZ, "--credentials", cred, "queue"])
    assert r.returncode == 0, r.stderr
    # Revoked: every controller refuses, and jz says so once.
    wait_for(lambda: leader_of(ctls[1]) not in (None, "c1"), timeout=20, what="a leader among the others")
    assert ctls[1].jz("token", "revoke", "user:nobody").returncode == 0
    wait_for(lambda: run([JZ, "--credentials", cred, "queue"]).returncode == 1, timeout=10,
             what="the revocation to reach every controller")
    r = run([JZ, "--credentials", cred, "queue"])
    assert len(r.stderr.strip().splitlines()) == 1 and "refused the credentials" in r.stderr, r.stderr


# Run as another account: opens N connections to the socket at argv[1],
# says nothing on any, and prints one JSON line once the daemon has closed
# WANT of them (or 10 s passed): how many it closed, with the first one's
# bytes; then holds the others until its stdin closes.
LOCAL_FLOOD = r"""
import json, os, select, socket, sys, time
path, n, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
poller = select.poll()
for s in socks:
    poller.register(s, select.POLLIN)
by_fd = {s.fileno(): s for s in socks}
refused, first = set(), b""
deadline = time.monotonic() + 10
while time.monotonic() < deadline and len(refused) < want:
    for fd, _ in poller.poll(100):
        data = by_fd[fd].recv(4096)
        first = first or data
        while data:
            data = by_fd[fd].recv(4096)
        poller.unregister(fd)
        refused.add(fd)
print(json.dumps({"refused": len(refused), "first": first.decode("latin-1")}), flush=True)
sys.stdin.read()
for s in socks:
    s.close()
"""


def flood_as(user, sock, n, want):
    """LOCAL_FLOOD as user: (the process, what it printed)."""
    import json
    import subprocess
    import sys
    pw = pwd.getpwnam(user)

    def become():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    p = subprocess.Popen([sys.executable, "-c", LOCAL_FLOOD, sock, str(n), str(want)], preexec_fn=become,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/")
    line = p.stdout.readline()
    assert line, "the flood as %s printed nothing" % user
    return p, json.loads(line)


def end_flood(p):
    p.stdin.close()
    p.stdout.close()
    assert p.wait(timeout=10) == 0


@pytest.mark.timeout(60)
def test_a_local_user_cannot_starve_the_socket(daemon_factory, public_dir):
    """A user of the machine opens 500 connections to the socket and says
    nothing: 64 are kept, the rest refused at once with the reason (which jz
    prints); root's jz works throughout; the silent ones go at the deadline."""
    d = daemon_factory(name="solo", socket=os.path.join(public_dir, "solo.sock"), extra=["--frame-timeout", "5s"])
    lp = pwd.getpwnam("lp").pw_uid
    # The daemon keeps the newest refused connection a moment, to answer
    # its first request: the others are closed at once.
    p, got = flood_as("lp", d.socket, 500, 500 - 64 - 1)
    try:
        assert got["refused"] == 500 - 64 - 1, got
        assert "too many connections from uid %d (at most 64 at once)" % lp in got["first"], got
        assert_serving(d)
        r = d.jz("status")
        assert r.returncode == 0, r.stderr
        r = d.jz_as("lp", "ping")
        assert r.returncode == 1 and "too many connections from uid %d" % lp in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "refusing unix:uid=%d" % lp in d.log()
        # Connections that ask nothing are closed at the deadline
        # (frame_timeout): the user gets in again.
        wait_for(lambda: d.jz_as("lp", "ping").returncode == 0, timeout=15, what="lp's silent connections dropped")
        assert "nothing asked within 5000 ms" in d.log()
    finally:
        end_flood(p)
    assert_serving(d)


@pytest.mark.timeout(90)
def test_local_users_together_leave_the_daemon_its_descriptors(daemon_factory, public_dir):
    """Three users flood the socket of a daemon with 400 descriptors: each
    keeps its share, past the socket's limit the oldest silent connections
    make room, and root still looks, submits and runs a job (the daemon's
    own files, its lookups of accounts, never run out of descriptors)."""
    import json
    import resource
    # The soft limit, which a daemon with max_connections set keeps as it is.
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (400, old[1]))
    try:
        d = daemon_factory(name="solo", socket=os.path.join(public_dir, "solo.sock"),
                           extra=FAST + ["--max-connections", "200"])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    wait_for(lambda: leader_of(d) == "solo", what="solo to lead")
    # 400 descriptors: TCP 200, all connections 336, the socket 136, a user 64.
    floods = []
    try:
        for user in ("lp", "news", "uucp"):
            p, got = flood_as(user, d.socket, 200, 200 - 64 - 1)
            floods.append(p)
            assert got["refused"] >= 200 - 64 - 1 and "too many connections from uid" in got["first"], (user, got)
        wait_for(lambda: "the oldest idle ones make room" in d.log(), what="silent connections evicted")
        assert_serving(d)
        r = d.jz("status")
        assert r.returncode == 0, r.stderr
        r = d.jz("submit", "--json", "--workdir", d.dir, "--", "true")
        assert r.returncode == 0, r.stderr
        jid = json.loads(r.stdout)["id"]
        wait_for(lambda: json.loads(d.jz("show", "--json", str(jid)).stdout)["state"] == "COMPLETED", timeout=30,
                 what="root's job to complete")
    finally:
        for p in floods:
            end_flood(p)
    assert "Too many open files" not in d.log()
    assert_serving(d)


# getpwnam_r failing once with EMFILE for the user named by
# $JZ_TEST_PW_FAIL_USER, while the file $JZ_TEST_PW_FAIL_FILE exists (it is
# removed then): the daemon's lookup fails the way it does when it runs out
# of descriptors.
PW_FAIL_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len, struct passwd **res)
{
    const char *who = getenv("JZ_TEST_PW_FAIL_USER"), *flag = getenv("JZ_TEST_PW_FAIL_FILE");
    if (who && flag && name && strcmp(name, who) == 0 && unlink(flag) == 0) {
        *res = NULL;
        return EMFILE;
    }
    int (*real)(const char *, struct passwd *, char *, size_t, struct passwd **) =
        (int (*)(const char *, struct passwd *, char *, size_t, struct passwd **))dlsym(RTLD_NEXT, "getpwnam_r");
    return real(name, pw, buf, len, res);
}
"""


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler for the getpwnam_r shim")
@pytest.mark.timeout(90)
def test_a_failed_account_lookup_is_not_a_missing_account(daemon_factory, tmp_path, public_dir):
    """The node cannot look the job's user up (EMFILE): the part is lost and
    requeued, and the node is not remembered as lacking the account (it
    would be avoided for that user for ten minutes): the job runs there at
    its next attempt."""
    import json
    import subprocess
    src, shim = str(tmp_path / "pwfail.c"), str(tmp_path / "pwfail.so")
    with open(src, "w") as f:
        f.write(PW_FAIL_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, src, "-ldl"], check=True)
    flag = str(tmp_path / "fail-once")
    open(flag, "w").close()
    env = {"LD_PRELOAD": shim, "JZ_TEST_PW_FAIL_USER": "lp", "JZ_TEST_PW_FAIL_FILE": flag,
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    d = daemon_factory(name="solo", socket=os.path.join(public_dir, "solo.sock"), extra=FAST, env=env)
    wait_for(lambda: nodes_up(d).get("solo") == "up", timeout=20, what="solo up")
    r = d.jz_as("lp", "submit", "--json", "--workdir", public_dir, "--", "true")
    assert r.returncode == 0, r.stderr
    jid = json.loads(r.stdout)["id"]
    job = wait_for(lambda: (lambda j: j if j["state"] not in ("PENDING", "RUNNING") else None)(
        json.loads(d.jz("show", "--json", str(jid)).stdout)), timeout=30, what="lp's job to end")
    assert job["state"] == "COMPLETED", job
    assert not os.path.exists(flag), "the lookup never failed"
    log = d.log()
    assert "cannot look up the account lp on this node: Too many open files" in log, log[-3000:]
    assert "has no account" not in log, log[-3000:]

"""Who may see and do what, with a real daemon and real TLS: every request
about jobs, reservations, fair share and credentials, as each role, against
objects of the caller's own, a teammate's, another tenant's and an admin's,
over the Unix socket and over TCP with credentials. A refusal leaks nothing:
another's private job answers exactly as a job that does not exist."""
import json
import re
import os
import pwd
import shutil
import tempfile

import pytest

from conftest import JZ, JZ_ANYONE, fixture_xml, run, wait_for

# People are this machine's accounts (a remote person must have one on the
# controller): who is who in the policy below.
RESEARCHER, TEAMMATE, COORDINATOR, TENANT_MEMBER, TENANT_ADMIN, OUTSIDER = (
    "daemon", "bin", "sys", "games", "man", "lp")
POLICY = """
account lab 10 users=%s,%s coordinators=%s
account acme 10 users=%s,%s
tenant acme accounts=acme admins=%s
""" % (RESEARCHER, TEAMMATE, COORDINATOR, TENANT_MEMBER, TENANT_ADMIN, TENANT_ADMIN)

# The jobs of each row: (name, owner, account).
OWNERS = [("own", RESEARCHER, "lab"), ("teammate", TEAMMATE, "lab"), ("tenant", TENANT_MEMBER, "acme"),
          ("admin", "root", "default")]
# caller -> (role in credentials, what they see of each job: FULL, BRIEF or NONE).
CALLERS = {
    RESEARCHER: ("researcher", {"own": "FULL", "teammate": "BRIEF", "tenant": "NONE", "admin": "NONE"}),
    COORDINATOR: ("coordinator", {"own": "FULL", "teammate": "FULL", "tenant": "NONE", "admin": "NONE"}),
    TENANT_ADMIN: ("tenant-admin", {"own": "NONE", "teammate": "NONE", "tenant": "FULL", "admin": "NONE"}),
    "root": ("admin", {"own": "FULL", "teammate": "FULL", "tenant": "FULL", "admin": "FULL"}),
    OUTSIDER: ("researcher", {"own": "NONE", "teammate": "NONE", "tenant": "NONE", "admin": "NONE"}),
}


def as_user(name):
    """preexec_fn: become that account (the Unix socket's credentials)."""
    pw = pwd.getpwnam(name)

    def become():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return become


class Person:
    """Runs jz as a person: over the socket (as their Unix account) or over
    TCP (their credentials file, made by the controller)."""

    def __init__(self, d, user, role, tcp):
        self.d, self.user, self.tcp = d, user, tcp
        self.env = dict(os.environ)
        self.env.pop("JAZARI_SOCKET", None)
        if tcp:
            cred = d.credentials(user=user, role=role)
            os.chmod(cred, 0o644)  # readable by the test's other accounts
            self.env["JAZARI_CREDENTIALS"] = cred

    def jz(self, command, *args):
        where = [] if self.tcp else ["--socket", self.d.socket]
        pre = None if self.tcp or self.user == "root" else as_user(self.user)
        return run([JZ_ANYONE if pre else JZ, command] + where + list(args), env=self.env, preexec_fn=pre,
                   timeout=30)


@pytest.fixture
def sockdir():
    """A directory every account may reach a daemon's socket in."""
    path = tempfile.mkdtemp(prefix="jazari-sock-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, True)


@pytest.fixture
def network(daemon_factory, tmp_path, sockdir):
    for u in (RESEARCHER, TEAMMATE, COORDINATOR, TENANT_MEMBER, TENANT_ADMIN, OUTSIDER):
        pwd.getpwnam(u)  # the accounts this test plays with exist on Debian
    path = os.path.join(str(tmp_path), "policy.conf")
    with open(path, "w") as f:
        f.write(POLICY)
    os.chmod(str(tmp_path), 0o755)
    d = daemon_factory(name="solo", xml=fixture_xml("hgx-h100-8gpu.xml"), extra=["--policy", path],
                       socket=os.path.join(sockdir, "solo.sock"))
    os.chmod(d.socket, 0o666)
    from test_trust import nodes_up
    wait_for(lambda: nodes_up(d).get("solo") == "up", timeout=20, what="solo up")
    return d


def submit(d, owner, account, marker):
    """A held job of owner's, with a command and environment that must stay
    private; its id."""
    p = Person(d, owner, None, tcp=False)
    r = p.jz("submit", "--hold", "--account", account, "--workdir", "/tmp", "--env", "SECRET=" + marker,
             "--", "/bin/echo", marker)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def seen(p, job, marker):
    """What p sees of a job: FULL, BRIEF or NONE, from jz show; a NONE must
    read exactly as a job that does not exist."""
    r = p.jz("show", "--json", str(job))
    if r.returncode != 0:
        assert r.returncode == 1, r.stderr
        assert r.stderr.strip() == ("jz: job %d not found" % job) or ("job %d not found" % job) in r.stderr, r.stderr
        return "NONE", r.stderr.replace(str(job), "N")
    assert marker not in r.stdout or ("/bin/echo" in r.stdout), r.stdout
    return ("FULL" if marker in r.stdout else "BRIEF"), None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
def test_jobs_matrix(network, tcp):
    d = network
    absent = 10 ** 9
    for caller, (role, want) in CALLERS.items():
        p = Person(d, caller, role, tcp)
        jobs = {}
        for name, owner, account in OWNERS:
            marker = "m-%s-%s-%s" % (caller, name, "tcp" if tcp else "sock")
            jobs[name] = (submit(d, owner, account, marker), marker)
        # A job that does not exist: the answer a private job must match.
        r = p.jz("show", "--json", str(absent))
        assert r.returncode == 1
        nothing = r.stderr.replace(str(absent), "N")
        r = p.jz("cancel", str(absent))
        no_cancel = r.stderr.replace(str(absent), "N")
        # jz show and jz queue.
        queue = json.loads(p.jz("queue", "--json").stdout)["jobs"]
        in_queue = {j["id"]: j for j in queue}
        for name, (job, marker) in jobs.items():
            got, msg = seen(p, job, marker)
            assert got == want[name], "%s sees %s's job as %s, not %s" % (caller, name, got, want[name])
            if got == "NONE":
                assert msg == nothing, (msg, nothing)
                assert job not in in_queue
            else:
                assert job in in_queue
                assert (marker in json.dumps(in_queue[job])) == (got == "FULL") or got == "FULL"
                assert "SECRET" not in json.dumps(in_queue[job])  # the queue never carries environments
        # No one else's job shows up in their queue either.
        for j in queue:
            owner_ok = j["user"] == caller or caller == "root" or any(
                j["id"] == job for name, (job, _) in jobs.items() if want[name] != "NONE")
            assert owner_ok or j.get("account") in ("lab",) and caller in (RESEARCHER, COORDINATOR) or \
                j.get("account") == "acme" and caller == TENANT_ADMIN, (caller, j)
        # jz cancel: allowed exactly where they see in full.
        for name, (job, marker) in jobs.items():
            r = p.jz("cancel", str(job))
            if want[name] == "FULL":
                assert r.returncode == 0, (caller, name, r.stderr)
            elif want[name] == "BRIEF":
                assert r.returncode == 1 and "belongs to" in r.stderr, (caller, name, r.stderr)
            else:
                assert r.returncode == 1 and r.stderr.replace(str(job), "N") == no_cancel, (caller, name, r.stderr)
        # Whatever was not theirs to cancel is still there.
        for name, (job, marker) in jobs.items():
            if want[name] != "FULL":
                state = json.loads(d.jz("show", "--json", str(job)).stdout)
                assert state["state"] == "PENDING", (caller, name, state)
                d.jz("cancel", str(job))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
def test_logs_matrix(network, tcp, public_dir):
    """jz logs reads a job's output on its node as the job's owner for those
    who may act on the job (a coordinator, the tenant's admin, an admin);
    anyone else gets nothing, and nobody reads a file the job does not write."""
    d = network
    jobs = {}
    for name, owner, account in OWNERS[:3]:
        marker = "out-%s-%s" % (name, "tcp" if tcp else "sock")
        p = Person(d, owner, None, tcp=False)
        r = p.jz("submit", "--account", account, "--workdir", public_dir, "--", "/bin/echo", marker)
        assert r.returncode == 0, r.stderr
        jobs[name] = (int(r.stdout.strip()), marker)
    for job, _ in jobs.values():
        wait_for(lambda: json.loads(d.jz("show", "--json", str(job)).stdout)["state"] == "COMPLETED", timeout=30,
                 what="job %d to complete" % job)
    for caller, (role, want) in CALLERS.items():
        p = Person(d, caller, role, tcp)
        for name, (job, marker) in jobs.items():
            r = p.jz("logs", str(job))
            if want[name] == "FULL":
                assert r.returncode == 0 and r.stdout.strip() == marker, (caller, name, r.stdout, r.stderr)
            else:
                assert r.returncode == 1 and marker not in r.stdout, (caller, name, r.stdout, r.stderr)
    # A coordinator asking, in a job's name, for a file that job does not write
    # (a raw request over TLS with their credentials) gets nothing of it.
    if tcp:
        from conftest import frame, hello_env, pb, read_frame
        job, marker = jobs["teammate"]
        secret = os.path.join(public_dir, "private.txt")
        with open(secret, "w") as f:
            f.write("not the job's")
        os.chown(secret, pwd.getpwnam(TEAMMATE).pw_uid, -1)
        os.chmod(secret, 0o600)
        with d.connect(user=COORDINATOR, role="coordinator") as s:
            s.sendall(frame(hello_env()))
            assert read_frame(s).hello_reply.name == "solo"
            for path in (secret, os.path.join(public_dir, "jazari-%d.out" % job)):
                env = pb.Envelope(request_id=2, version=1)
                env.logs_request.id = job
                env.logs_request.node = "solo"
                env.logs_request.path = path
                s.sendall(frame(env))
                got = read_frame(s)
                if path == secret:
                    assert got.error.code != 0 and b"not the job" not in got.SerializeToString(), got
                else:
                    assert got.logs_reply.data.strip() == marker.encode(), got


@pytest.mark.timeout(240)
@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
def test_reservations_shares_and_tokens_matrix(network, tcp):
    d = network
    submit(d, TEAMMATE, "lab", "m-shares")  # a teammate's row in the fair-share tree
    for acct in ("lab", "acme"):
        wait_for(lambda: d.jz("reserve", "r-" + acct, "--gpus", "1", "--duration", "60", "--account",
                              acct).returncode == 0, what="reservation r-" + acct)
    sees = {RESEARCHER: {"r-lab"}, COORDINATOR: {"r-lab"}, TENANT_ADMIN: {"r-acme"},
            "root": {"r-lab", "r-acme"}, OUTSIDER: set()}
    for caller, (role, _) in CALLERS.items():
        p = Person(d, caller, role, tcp)
        r = p.jz("reservations", "--json")
        assert r.returncode == 0, r.stderr
        names = {x["name"] for x in json.loads(r.stdout)["reservations"]}
        assert names == sees[caller], (caller, names)
        # Removing one they do not see reads as one that does not exist.
        for acct in ("lab", "acme"):
            name = "r-" + acct
            r = p.jz("unreserve", name)
            if caller == "root" or (caller == TENANT_ADMIN and acct == "acme"):
                assert r.returncode == 0, r.stderr
                assert d.jz("reserve", name, "--gpus", "1", "--duration", "60", "--account", acct).returncode == 0
            elif name in sees[caller]:
                assert r.returncode == 1 and "only admins" in r.stderr, (caller, r.stderr)
            else:
                assert r.returncode == 1 and "no reservation" in r.stderr, (caller, r.stderr)
        # Making one: admins, and a tenant's admins for their accounts.
        for acct in ("lab", "acme"):
            name = "new-%s-%s" % (caller, acct)
            r = p.jz("reserve", name, "--gpus", "1", "--duration", "10", "--account", acct)
            allowed = caller == "root" or (caller == TENANT_ADMIN and acct == "acme")
            assert (r.returncode == 0) == allowed, (caller, acct, r.stderr)
            if allowed:
                assert d.jz("unreserve", name).returncode == 0
        # The fair-share tree: their accounts' rows only.
        r = p.jz("shares", "--json")
        assert r.returncode == 0, r.stderr
        rows = {x["path"] for x in json.loads(r.stdout)["accounts"]}
        top = {x.split("/")[0] for x in rows}
        want_top = {"root": {"lab", "acme", "default"}, RESEARCHER: {"lab"}, COORDINATOR: {"lab"},
                    TENANT_ADMIN: {"acme"}, OUTSIDER: set()}[caller]
        assert top <= want_top and (caller != "root" or top >= {"lab", "acme"}), (caller, rows)
        if caller == RESEARCHER:  # of the users' rows, their own alone
            assert all(x.count("/") == 0 or x.rsplit("/", 1)[1] == RESEARCHER for x in rows), rows
        if caller == "root":
            assert "lab/" + TEAMMATE in rows, rows  # the row a researcher must not see exists
        # Join tokens, nodes, others' credentials: admins only (a tenant
        # admin lists their members' credentials: below).
        for args in (["token", "create", "--join"], ["token", "revoke", "user:" + OUTSIDER],
                     ["node", "revoke", "nosuchnode"], ["token", "create", "--user", OUTSIDER]) + \
                (() if caller == TENANT_ADMIN else (["token", "list"],)):
            r = p.jz(*args)
            if caller == "root":
                assert r.returncode in (0, 1) and "for admins" not in r.stderr, (args, r.stderr)
            else:
                assert r.returncode == 1 and "for admins" in r.stderr, (caller, args, r.stderr)


@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
def test_a_tenant_admin_manages_their_members_credentials(network, tcp):
    """A startup's admin makes, lists and revokes researchers' credentials
    for the members of the startup's accounts, and nobody else's."""
    d = network
    boss = Person(d, TENANT_ADMIN, "tenant-admin", tcp)
    r = boss.jz("token", "create", "--user", TENANT_MEMBER, "--json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)["id"]
    for user, role in ((OUTSIDER, "researcher"), (RESEARCHER, "researcher"), (TENANT_MEMBER, "coordinator"),
                       (TENANT_MEMBER, "admin")):
        r = boss.jz("token", "create", "--user", user, "--role", role)
        assert r.returncode == 1 and "for admins" in r.stderr, (user, role, r.stderr)
    assert d.jz("token", "create", "--user", OUTSIDER).returncode == 0  # the admin's
    listed = json.loads(boss.jz("token", "list", "--json").stdout)
    assert {c["user"] for c in listed["credentials"]} == {TENANT_MEMBER}, listed
    assert listed["tokens"] == [] and listed["revoked_nodes"] == []
    outsider = [c["id"] for c in json.loads(d.jz("token", "list", "--json").stdout)["credentials"]
                if c["user"] == OUTSIDER][0]
    r = boss.jz("token", "revoke", outsider)
    assert r.returncode == 1 and "for admins" in r.stderr, r.stderr
    assert boss.jz("token", "revoke", made).returncode == 0
    revoked = [c for c in json.loads(d.jz("token", "list", "--json").stdout)["credentials"] if c["id"] == made]
    assert revoked and revoked[0]["revoked"], revoked


def test_privacy_open_shows_brief_records(daemon_factory, tmp_path, sockdir):
    """`privacy open`: everyone sees every job, never its contents."""
    path = os.path.join(str(tmp_path), "policy.conf")
    with open(path, "w") as f:
        f.write(POLICY + "privacy open\n")
    os.chmod(str(tmp_path), 0o755)
    d = daemon_factory(name="solo", extra=["--policy", path], socket=os.path.join(sockdir, "solo.sock"))
    os.chmod(d.socket, 0o666)
    job = submit(d, TENANT_MEMBER, "acme", "m-open")
    p = Person(d, OUTSIDER, "researcher", tcp=False)
    assert seen(p, job, "m-open")[0] == "BRIEF"
    r = p.jz("cancel", str(job))
    assert r.returncode == 1 and "belongs to" in r.stderr


def test_identities_forwarded_by_a_node(daemon_factory, tmp_path, sockdir):
    """A node vouches for its own people, never for an admin: root on an
    agent's socket is not the network's root."""
    from test_trust import FAST, nodes_up
    c = daemon_factory(name="c1", xml=fixture_xml("hgx-h100-8gpu.xml"), extra=FAST)
    a = daemon_factory(name="a1", xml=fixture_xml("hgx-h100-8gpu.xml"),
                       extra=FAST + ["--controllers", "c1@127.0.0.1:%d" % c.port],
                       socket=os.path.join(sockdir, "a1.sock"))
    wait_for(lambda: nodes_up(c).get("a1") == "up", timeout=20, what="a1 up")
    r = a.jz("submit", "--", "true")
    assert r.returncode == 1 and "root on a node is not the network's admin" in r.stderr, r.stderr
    r = a.jz("token", "create", "--join")
    assert r.returncode == 1 and "for admins" in r.stderr, r.stderr
    # Nor may it see or touch the admin's jobs: root on the node owns nothing.
    r = c.jz("submit", "--hold", "--env", "ADMIN_TOKEN=s3cr3t", "--", "true")
    assert r.returncode == 0, r.stderr
    admins = r.stdout.strip()
    for cmd in ("show", "release", "cancel"):
        r = a.jz(cmd, admins)
        assert r.returncode == 1 and "s3cr3t" not in r.stdout + r.stderr, (cmd, r.stdout, r.stderr)
    assert admins not in a.jz("queue").stdout
    assert json.loads(c.jz("show", "--json", admins).stdout)["state"] == "PENDING"
    c.jz("cancel", admins)
    os.chmod(a.socket, 0o666)
    p = Person(a, "nobody", None, tcp=False)
    r = p.jz("submit", "--hold", "--workdir", "/tmp", "--", "true")
    assert r.returncode == 0, r.stderr
    job = int(r.stdout)
    assert json.loads(c.jz("show", "--json", str(job)).stdout)["user"] == "nobody"


def test_a_coordinator_reads_a_members_logs_on_another_node(daemon_factory, tmp_path, sockdir, public_dir):
    """The member's job ran on an agent; its coordinator asks on that very
    agent (whose daemon cannot tell whose job it is: a controller decides)
    and on the controller (which relays): both read it as the member."""
    from test_trust import FAST, nodes_up
    path = os.path.join(str(tmp_path), "policy.conf")
    with open(path, "w") as f:
        f.write(POLICY)
    os.chmod(str(tmp_path), 0o755)
    c = daemon_factory(name="c1", xml=fixture_xml("hgx-h100-8gpu.xml"), extra=FAST + ["--policy", path],
                       socket=os.path.join(sockdir, "c1.sock"))
    a = daemon_factory(name="a1", xml=fixture_xml("hgx-h100-8gpu.xml"),
                       extra=FAST + ["--controllers", "c1@127.0.0.1:%d" % c.port, "--labels", "far"],
                       socket=os.path.join(sockdir, "a1.sock"))
    wait_for(lambda: nodes_up(c).get("a1") == "up", timeout=20, what="a1 up")
    os.chmod(a.socket, 0o666)
    os.chmod(c.socket, 0o666)
    r = Person(a, TEAMMATE, None, tcp=False).jz("submit", "--account", "lab", "--constraint", "far", "--workdir",
                                                 public_dir, "--", "/bin/echo", "the member's words")
    assert r.returncode == 0, r.stderr
    job = int(r.stdout)
    wait_for(lambda: json.loads(c.jz("show", "--json", str(job)).stdout)["state"] == "COMPLETED", timeout=30,
             what="the job to complete")
    assert [n["name"] for n in json.loads(c.jz("show", "--json", str(job)).stdout)["nodes"]] == ["a1"]
    for d in (a, c):
        r = Person(d, COORDINATOR, None, tcp=False).jz("logs", str(job))
        assert r.returncode == 0 and r.stdout == "the member's words\n", (d.name, r.stdout, r.stderr)
        r = Person(d, OUTSIDER, None, tcp=False).jz("logs", str(job))
        assert r.returncode == 1 and "words" not in r.stdout, (d.name, r.stdout, r.stderr)
    # A member who names their coordinator's own file as the output cannot
    # make the coordinator's jz logs show it (it is read as the member).
    mine = os.path.join(public_dir, "coordinator-only.txt")
    with open(mine, "w") as f:
        f.write("COORDINATOR PRIVATE")
    os.chown(mine, pwd.getpwnam(COORDINATOR).pw_uid, -1)
    os.chmod(mine, 0o600)
    r = Person(a, TEAMMATE, None, tcp=False).jz("submit", "--account", "lab", "--constraint", "far", "--workdir",
                                                 public_dir, "--output", mine, "--", "true")
    assert r.returncode == 0, r.stderr
    bait = int(r.stdout)
    wait_for(lambda: json.loads(c.jz("show", "--json", str(bait)).stdout)["state"] not in ("PENDING", "RUNNING"),
             timeout=30, what="the bait to end")
    for d in (a, c):
        r = Person(d, COORDINATOR, None, tcp=False).jz("logs", str(bait))
        assert "COORDINATOR PRIVATE" not in r.stdout, (d.name, r.stdout, r.stderr)


def test_audit_trail_says_who_from_where_and_survives_a_restart(network):
    """Every change is recorded with who asked, from where, when and what
    came of it; admins read it (jz audit), nobody else; it outlives a
    restart."""
    d = network
    researcher = Person(d, RESEARCHER, "researcher", tcp=True)
    job = int(researcher.jz("submit", "--hold", "--account", "lab", "--workdir", "/tmp", "--", "sleep", "60").stdout)
    assert researcher.jz("release", str(job)).returncode == 0
    assert researcher.jz("cancel", str(job)).returncode == 0
    local = Person(d, TEAMMATE, None, tcp=False)
    assert local.jz("submit", "--hold", "--account", "lab", "--workdir", "/tmp", "--", "true").returncode == 0
    assert d.jz("token", "create", "--join").returncode == 0
    r = TENANT_ADMIN
    boss = Person(d, r, "tenant-admin", tcp=True)
    wait_for(lambda: boss.jz("reserve", "acme-slot", "--gpus", "1", "--duration", "30", "--account",
                             "acme").returncode == 0, what="the tenant's reservation")
    # Refused requests change nothing and are not changes.
    assert researcher.jz("cancel", "999999").returncode == 1

    def trail(*args):
        r = d.jz("audit", "--json", *args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["records"]
    recs = trail()
    mine = [x for x in recs if x["user"] == RESEARCHER]
    assert [x["what"].split()[0].rstrip(":") for x in mine] == ["submit", "release", "cancel"], mine
    assert mine[0]["result"] == "job %d" % job and mine[0]["role"] == "researcher", mine
    assert re.fullmatch(r"127\.0\.0\.1:\d+ \(credentials [0-9a-f]{32}\)", mine[0]["from"]), mine
    assert mine[2]["result"] == "1 changed"
    theirs = [x for x in recs if x["user"] == TEAMMATE]
    assert len(theirs) == 1 and theirs[0]["from"] == "solo (socket)", theirs
    assert any(x["user"] == "root" and x["what"].startswith("join token create") for x in recs), recs
    assert any(x["user"] == TENANT_ADMIN and x["what"].startswith("reserve acme-slot") and x["result"] == "1 changed"
               for x in recs), recs
    seqs = [x["seq"] for x in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [x["seq"] for x in trail("--user", TEAMMATE)] == [theirs[0]["seq"]]
    assert trail("--since", "+60") == []  # nothing from the future
    assert len(trail("--limit", "2")) == 2
    # Not for anyone else.
    for p in (researcher, boss, Person(d, COORDINATOR, None, tcp=False)):
        r = p.jz("audit")
        assert r.returncode == 1 and "for admins" in r.stderr, r.stderr
    # Kept across a restart.
    d.stop()
    d.start()
    wait_for(lambda: d.jz("audit", "--json").returncode == 0, timeout=20, what="the daemon back")
    after = trail()
    assert after[:len(recs)] == recs
    # The text output names the same.
    out = d.jz("audit", "--user", RESEARCHER).stdout
    assert "submit" in out and "credentials" in out and "job %d" % job in out, out


@pytest.mark.timeout(180)
def test_a_name_is_mapped_on_each_node_and_jobs_go_where_it_exists(daemon_factory, tmp_path, public_dir):
    """Institutes do not share uid spaces: a person is a name, which each
    node maps to its own account. A job of a user who has no account on a
    node is not run there: it goes back to the queue, that node is avoided
    for that user, and it runs where the name exists, as that node's uid."""
    from test_trust import FAST, nodes_up
    passwd = os.path.join(str(tmp_path), "passwd")
    with open("/etc/passwd") as f, open(passwd, "w") as out:
        out.write(f.read() + "ghost:x:4242:4242:a user of one site only:/tmp:/bin/sh\n")
    xml = fixture_xml("hgx-h100-8gpu.xml")
    c = daemon_factory(name="c1", xml=xml, extra=FAST)
    a = daemon_factory(name="a1", xml=xml, passwd=passwd, extra=FAST + ["--controllers", "c1@127.0.0.1:%d" % c.port])
    wait_for(lambda: nodes_up(c).get("a1") == "up" and nodes_up(c).get("c1") == "up", timeout=20, what="both up")
    ghost = Person(c, "ghost", "researcher", tcp=True)  # no account on the controller: none needed
    jobs = []
    for i in range(2):  # two whole-node jobs: one lands on c1 first
        r = ghost.jz("submit", "--json", "--gpus-per-node", "8", "--workdir", public_dir, "--output", "g%d.out" % i,
                     "--", "sh", "-c", "id -u; sleep 2")
        assert r.returncode == 0, r.stderr
        jobs.append(json.loads(r.stdout)["id"])
    ends = [json.loads(c.jz("wait", str(j), "--timeout", "90", "--json", timeout=100).stdout) for j in jobs]
    for e in ends:
        assert e["state"] == "COMPLETED" and [n["name"] for n in e["nodes"]] == ["a1"], e
    assert sorted(e["attempt"] for e in ends) == [0, 1], ends
    for i in range(2):
        assert open(os.path.join(public_dir, "g%d.out" % i)).read().split()[0] == "4242"
    assert "ghost has no account on this node" in c.log()


def test_a_dependency_on_a_job_one_may_not_see_reads_as_none(network):
    """--after-ok / --after-any on another tenant's job is refused exactly as
    on an id never issued: the dependent job would otherwise tell whether
    that job exists, and how it ended."""
    d = network
    theirs = submit(d, TENANT_MEMBER, "acme", "m-dep-theirs")
    teammates = submit(d, TEAMMATE, "lab", "m-dep-teammate")
    absent = 10 ** 6  # an id never issued
    p = Person(d, RESEARCHER, None, tcp=False)
    for flag in ("--after-ok", "--after-any"):
        r = p.jz("submit", "--hold", "--account", "lab", flag, str(absent), "--", "true")
        assert r.returncode == 1, r.stdout
        nothing = r.stderr.replace(str(absent), "N")
        r = p.jz("submit", "--hold", "--account", "lab", flag, str(theirs), "--", "true")
        assert r.returncode == 1 and r.stderr.replace(str(theirs), "N") == nothing, (flag, r.stdout, r.stderr)
        # A job they see (their teammate's, briefly) may be waited for.
        r = p.jz("submit", "--hold", "--account", "lab", flag, str(teammates), "--", "true")
        assert r.returncode == 0, (flag, r.stderr)
        p.jz("cancel", r.stdout.strip())
    # Its tenant's people may wait for it.
    r = Person(d, TENANT_ADMIN, None, tcp=False).jz("submit", "--hold", "--account", "acme", "--after-ok",
                                                      str(theirs), "--", "true")
    assert r.returncode == 0, r.stderr
    d.jz("cancel", r.stdout.strip(), str(theirs), str(teammates))


def test_another_tenants_reservation_reads_as_none(network):
    """A reservation the caller may not see: submitting into it answers as
    for one that does not exist, and reserving its name says nothing of it."""
    d = network
    for name, acct in (("r-acme-secret", "acme"), ("r-lab-secret", "lab")):
        wait_for(lambda: d.jz("reserve", name, "--gpus", "1", "--duration", "120", "--account",
                              acct).returncode == 0, what="reservation " + name)
    outsider = Person(d, OUTSIDER, None, tcp=False)
    researcher = Person(d, RESEARCHER, None, tcp=False)
    for p, acct in ((outsider, "default"), (researcher, "lab")):
        args = ["submit", "--hold", "--time", "60", "--account", acct, "--reservation"]
        r = p.jz(*args + ["r-none-such", "--", "true"])
        assert r.returncode == 1, r.stdout
        nothing = r.stderr.replace("r-none-such", "NAME")
        r = p.jz(*args + ["r-acme-secret", "--", "true"])
        assert r.returncode == 1 and r.stderr.replace("r-acme-secret", "NAME") == nothing, (p.user, r.stderr)
    # One they see but may not use still says whose it is.
    r = Person(d, TENANT_MEMBER, None, tcp=False).jz("submit", "--hold", "--time", "60", "--account", "acme",
                                                       "--reservation", "r-lab-secret", "--", "true")
    assert r.returncode == 1 and "no reservation" in r.stderr, r.stderr
    # jz reserve: a tenant's admin taking another tenant's name learns
    # nothing of that reservation; their own name is said to exist.
    boss = Person(d, TENANT_ADMIN, None, tcp=False)
    r = boss.jz("reserve", "r-lab-secret", "--gpus", "1", "--duration", "60", "--account", "acme")
    assert r.returncode == 1 and "cannot be used" in r.stderr, r.stderr
    assert "exists" not in r.stderr and "lab" not in r.stderr.replace("r-lab-secret", ""), r.stderr
    r = boss.jz("reserve", "r-acme-secret", "--gpus", "1", "--duration", "60", "--account", "acme")
    assert r.returncode == 1 and "exists already" in r.stderr, r.stderr
    for name in ("r-acme-secret", "r-lab-secret"):
        assert d.jz("unreserve", name).returncode == 0


@pytest.mark.timeout(120)
def test_a_brief_view_hides_what_a_failed_start_quotes(network, public_dir):
    """A job that could not start has a reason quoting its command or its
    working directory: its owner reads it; a teammate, who sees the job
    briefly, reads its state and no more."""
    d = network
    owner = Person(d, TEAMMATE, None, tcp=False)
    r = owner.jz("submit", "--account", "lab", "--workdir", public_dir, "--", "/opt/secret-tool-x/train")
    assert r.returncode == 0, r.stderr
    bad_cmd = int(r.stdout)
    r = owner.jz("submit", "--account", "lab", "--workdir", "/nonexistent/secret-dir-x", "--", "true")
    assert r.returncode == 0, r.stderr
    bad_dir = int(r.stdout)
    for job, secret in ((bad_cmd, "secret-tool-x"), (bad_dir, "secret-dir-x")):
        wait_for(lambda: json.loads(d.jz("show", "--json", str(job)).stdout)["state"] == "FAILED", timeout=30,
                 what="job %d to fail" % job)
        mine = json.loads(owner.jz("show", "--json", str(job)).stdout)
        assert secret in mine.get("reason", ""), mine
        for viewer in (Person(d, RESEARCHER, None, tcp=False), Person(d, RESEARCHER, "researcher", tcp=True)):
            r = viewer.jz("show", "--json", str(job))
            assert r.returncode == 0, r.stderr
            brief = json.loads(r.stdout)
            assert brief["state"] == "FAILED" and secret not in r.stdout, r.stdout
            r = viewer.jz("queue", "--all", "--json")
            assert r.returncode == 0 and secret not in r.stdout, r.stdout
            assert any(j["id"] == job for j in json.loads(r.stdout)["jobs"])


@pytest.mark.timeout(180)
def test_one_user_may_have_jobs_of_a_bounded_number_of_kinds(network):
    """Each job with other options is a kind the scheduling pass works
    through: one user may have 64 kinds waiting or running, and is told
    so, while more jobs of those kinds are still welcome."""
    d = network
    p = Person(d, RESEARCHER, None, tcp=False)
    ids = []
    for i in range(64):
        r = p.jz("submit", "--hold", "--account", "lab", "--gpu-mem", "%dM" % (i + 1), "--", "true")
        assert r.returncode == 0, (i, r.stderr)
        ids.append(r.stdout.strip())
    r = p.jz("submit", "--hold", "--account", "lab", "--gpu-mem", "65M", "--", "true")
    assert r.returncode == 1 and "64" in r.stderr and "kinds" in r.stderr, r.stderr
    # The same options as one of those: welcome.
    r = p.jz("submit", "--hold", "--account", "lab", "--gpu-mem", "7M", "--", "true")
    assert r.returncode == 0, r.stderr
    ids.append(r.stdout.strip())
    # Another person is not held to this one's count.
    r = Person(d, TEAMMATE, None, tcp=False).jz("submit", "--hold", "--account", "lab", "--gpu-mem", "65M",
                                               "--", "true")
    assert r.returncode == 0, r.stderr
    ids.append(r.stdout.strip())
    # A kind that ends makes room for another.
    assert p.jz("cancel", ids[0]).returncode == 0
    r = p.jz("submit", "--hold", "--account", "lab", "--gpu-mem", "65M", "--", "true")
    assert r.returncode == 0, r.stderr
    ids.append(r.stdout.strip())
    assert d.jz("cancel", *ids).returncode == 0


@pytest.mark.timeout(300)
def test_pipelined_shows_cost_one_pass(network):
    """Why a job waits is one scheduling pass per change of the state, not
    one per request: 200 pipelined jz show of a job waiting among thousands
    of jobs of as many kinds are answered well within the node timeout."""
    import time
    from conftest import frame, hello_env, pb, read_frame
    d = network
    n = 5000
    with d.connect() as s:  # an admin: no bound on kinds
        s.sendall(frame(hello_env()))
        assert read_frame(s).WhichOneof("body") == "hello_reply"
        first = None
        for start in range(0, n, 500):
            for i in range(start, min(n, start + 500)):
                req = pb.Envelope(request_id=100 + i, version=1)
                spec = req.submit_request.spec
                spec.argv.extend(["true"])
                spec.hold = True
                spec.min_gpu_mem = i + 1  # bytes: every job its own kind
                s.sendall(frame(req))
            for i in range(start, min(n, start + 500)):
                rep = read_frame(s, timeout=120)
                assert rep.WhichOneof("body") == "submit_reply", rep
                first = first or rep.submit_reply.id
        began = time.monotonic()
        for i in range(200):
            req = pb.Envelope(request_id=10 ** 6 + i, version=1)
            req.show_request.id = first
            s.sendall(frame(req))
        for i in range(200):
            rep = read_frame(s, timeout=120)
            assert rep.WhichOneof("body") == "show_reply" and rep.show_reply.job.reason == "Held", rep
        took = time.monotonic() - began
    assert took < 3.0, "200 shows took %.1f s" % took

"""The rolling upgrade: the previous release (tests/integration/upgrade_from.txt)
and this tree run in one network while it is upgraded controller by
controller, then agent by agent, with jobs running and waiting throughout.

The previous release is built from this repository's own history, once, into
$JAZARI_BUILD/prev/<commit>/build (only jazarid and jz). A clone that does
not hold that commit (a shallow one) skips these tests and says how to get it.

What the network promises (docs/admin.md, "Upgrading the controllers one by
one"): the leader writes only a log format every voter reads, so the format
rises to this tree's newest only once the last controller runs it; a job
running through the whole upgrade is neither stopped nor requeued; nothing is
lost or run twice. A controller of the previous release started on a log that
holds the newer format stops with one line saying so, and the `log_format`
setting holds the format down."""
import collections
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD, JAZARID, ROOT, Daemon, hwloc_xml, run, wait_for

UPGRADE_FROM = os.path.join(ROOT, "tests", "integration", "upgrade_from.txt")
Release = collections.namedtuple("Release", "tag commit jazarid jz format")


def _codec_format(text):
    m = re.search(r"^#define CODEC_FORMAT (\d+)$", text, re.M)
    assert m, "no CODEC_FORMAT in daemon/raft/codec.h"
    return int(m.group(1))


def current_format():
    """The newest log format this tree writes (daemon/raft/codec.h)."""
    with open(os.path.join(ROOT, "daemon", "raft", "codec.h")) as f:
        return _codec_format(f.read())


def current_version():
    with open(os.path.join(ROOT, "VERSION")) as f:
        return f.read().strip()


def _build_previous(commit, out):
    """git archive of commit, make of jazarid and jz into out/build. A lock
    keeps two test runs from building it at once; a build that fails
    leaves nothing that looks finished."""
    os.makedirs(out, exist_ok=True)
    final = os.path.join(out, "build")
    with open(os.path.join(out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(final, "jazarid")) and os.path.exists(os.path.join(final, "jz")):
            return
        src = tempfile.mkdtemp(prefix="src-", dir=out)
        tmp = os.path.join(out, "build-partial")
        shutil.rmtree(tmp, True)
        log = os.path.join(out, "build.log")
        try:
            archive = subprocess.Popen(["git", "-C", ROOT, "archive", commit], stdout=subprocess.PIPE)
            untar = subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, capture_output=True)
            archive.stdout.close()
            assert archive.wait() == 0 and untar.returncode == 0, "git archive %s failed: %s" % (
                commit, untar.stderr.decode(errors="replace"))
            # Its own make, not the caller's jobserver, and none of the
            # caller's build settings (CI=true would add -Werror to code a
            # newer compiler may warn about; SAN would sanitize it); GIT_REV
            # given, since the unpacked tree sits inside this checkout.
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CI", "SAN", "SANFLAGS", "BUILD", "OPT",
                                "CFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS", "GIT_REV")}
            jobs = os.environ.get("JAZARI_PREV_JOBS", "2")
            with open(log, "w") as f:
                r = subprocess.run(["make", "-C", src, "-j" + jobs, "BUILD=" + tmp, "GIT_REV=" + commit[:7],
                                    os.path.join(tmp, "jazarid"), os.path.join(tmp, "jz")],
                                   stdout=f, stderr=subprocess.STDOUT, env=env, timeout=1800)
            if r.returncode != 0:
                with open(log) as f:
                    pytest.fail("building the previous release (%s) failed; the end of %s:\n%s"
                                % (commit, log, f.read()[-3000:]))
            shutil.rmtree(os.path.join(tmp, "obj"), True)  # only the two programs are kept
            os.rename(tmp, final)
        finally:
            shutil.rmtree(src, True)
            shutil.rmtree(tmp, True)


@pytest.fixture(scope="session")
def prev():
    with open(UPGRADE_FROM) as f:
        tag, commit = next(l.split() for l in f if l.strip() and not l.startswith("#"))[:2]
    assert re.fullmatch(r"[0-9a-f]{40}", commit), "%s: the commit must be 40 hex digits" % UPGRADE_FROM
    if run(["git", "-C", ROOT, "cat-file", "-e", commit + "^{commit}"]).returncode != 0:
        pytest.skip("the previous release %s (commit %s) is not in this clone (a shallow one?): "
                    "`git fetch --unshallow` or `git fetch origin tag %s` to run the upgrade tests"
                    % (tag, commit, tag))
    codec = run(["git", "-C", ROOT, "show", commit + ":daemon/raft/codec.h"])
    assert codec.returncode == 0, codec.stderr
    out = os.path.join(BUILD, "prev", commit)
    _build_previous(commit, out)
    return Release(tag, commit, os.path.join(out, "build", "jazarid"), os.path.join(out, "build", "jz"),
                   _codec_format(codec.stdout))


def use(d, binary):
    """Runs daemon d (stopped) with this jazarid from its next start."""
    assert os.path.basename(d.args[0]) == "jazarid" and (d.proc is None or d.proc.poll() is not None)
    d.args[0] = binary


def restart(d, binary=None, drop=()):
    """Stops d cleanly and starts it again (with another binary, without the
    flags in drop) on the same state directory."""
    assert d.stop(timeout=30) == 0, d.log()
    if binary:
        use(d, binary)
    for flag in drop:
        i = d.args.index(flag)
        del d.args[i:i + 2]
    d.start()


def controllers(tmp_path, binary, extra=()):
    ds = [Daemon(tmp_path, name="ctl-%d" % i,
                 extra=["--election-timeout", "500ms", "--heartbeat-interval", "200ms",
                        # Longer than any restart here: an upgraded node must
                        # never be taken for lost, nor its jobs requeued.
                        "--node-timeout", "120s", "--labels", "ctl"] + list(extra)) for i in range(3)]
    spec = ",".join("%s@127.0.0.1:%d" % (d.name, d.port) for d in ds)
    for d in ds:
        d.args += ["--controllers", spec]
        use(d, binary)
    return ds, spec


def status(d):
    r = d.jz("status", "--json")
    return json.loads(r.stdout) if r.returncode == 0 else None


def leader_of(ds):
    """The running controller every running one names as the leader."""
    names = set()
    for d in ds:
        if d.proc and d.proc.poll() is None:
            st = status(d)
            if not st or not st["leader"]:
                return None
            names.add(st["leader"])
    if len(names) != 1:
        return None
    return next((d for d in ds if d.name in names and d.proc.poll() is None), None)


def submit(d, work, *args):
    r = d.jz("submit", "--json", "--workdir", work, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def jobs_of(d):
    return {j["id"]: j for j in d.jz_json("queue", "--all")["jobs"]}


class Network:
    """Three controllers and three agents (agent-2 of this tree from the
    start: a new agent against the old controllers) with the jobs that must
    live through the upgrade."""

    def __init__(self, tmp_path, prev):
        self.prev = prev
        self.work = str(tmp_path / "work")
        os.makedirs(self.work)
        self.ctls, spec = controllers(tmp_path, prev.jazarid)
        self.agents = []
        for i, (xml, binary) in enumerate([("nvidiaDGX2.xml", prev.jazarid), ("power8gpudistances.xml", prev.jazarid),
                                           ("nvidiaDGX2.xml", JAZARID)]):
            a = Daemon(tmp_path, name="agent-%d" % i, xml=hwloc_xml(xml),
                       extra=["--controllers", spec, "--heartbeat-interval", "200ms", "--labels", "a%d" % i])
            use(a, binary)
            self.agents.append(a)
        self.short = {}  # job id -> (tag, the attempt it was given)
        self.n = 0

    def all(self):
        return self.ctls + self.agents

    def leader(self):
        return wait_for(lambda: leader_of(self.ctls), timeout=60, what="one leader every controller names")

    def run_short(self, where, via):
        """One short job on each node labelled in where, submitted through
        controller via, all COMPLETED: the network serves."""
        ids = []
        for label in where:
            tag = "short-%d" % self.n
            self.n += 1
            jid = submit(via, self.work, "--name", tag, "--constraint", label, "--",
                         "sh", "-c", "echo ran >> %s/%s" % (self.work, tag))
            ids.append(jid)
        leader = self.leader()
        for jid in ids:
            self.short[jid] = leader.jz_json("show", str(jid))["attempt"]
        wait_for(lambda: all(j["state"] == "COMPLETED" for i, j in jobs_of(leader).items() if i in ids),
                 timeout=90, what="short jobs %s to complete" % ids)

    def check_long(self):
        """The long job runs where it started, in its first attempt; the
        job waiting on it waits."""
        jobs = jobs_of(self.leader())
        assert jobs[self.long]["state"] == "RUNNING", jobs[self.long]
        assert jobs[self.long]["attempt"] == self.long_attempt, jobs[self.long]
        assert jobs[self.waiting]["state"] == "PENDING", jobs[self.waiting]

    def formats(self, newest_allowed):
        """Every controller of this tree says a format no newer than
        newest_allowed, and knows this tree's newest."""
        for d in self.ctls:
            if d.args[0] != JAZARID:
                continue
            st = status(d)
            assert st is not None
            assert st["log_format_newest"] == current_format(), st
            assert 0 < st["log_format"] <= newest_allowed, (d.name, st)


def test_rolling_upgrade_from_the_previous_release(tmp_path, prev):
    """Previous release everywhere; then each follower, the leader, each
    agent upgraded in turn, serving throughout."""
    net = Network(tmp_path, prev)
    old, cur = prev.format, current_format()
    assert cur >= old, "this tree writes log format %d, older than %s's %d" % (cur, prev.tag, old)
    try:
        for d in net.all():
            d.start()
        leader = net.leader()
        every = {d.name for d in net.all()}
        wait_for(lambda: {n["name"] for n in leader.jz_json("nodes")["nodes"] if n["state"] == "up"} == every,
                 timeout=60, what="every node to register")

        # A job that lives through the whole upgrade, and one waiting on it.
        release = os.path.join(net.work, "release")
        net.long = submit(leader, net.work, "--name", "long", "--constraint", "a0", "--gpus-per-node", "1",
                          "--", "sh", "-c", "echo start >> %s/long; while [ ! -e %s ]; do sleep 0.2; done"
                          % (net.work, release))
        net.waiting = submit(leader, net.work, "--name", "after-long", "--dependency", "afterok:%d" % net.long,
                             "--", "sh", "-c", "echo ran >> %s/after-long" % net.work)
        wait_for(lambda: jobs_of(leader)[net.long]["state"] == "RUNNING", timeout=60, what="the long job to start")
        net.long_attempt = jobs_of(leader)[net.long]["attempt"]
        # The new agent (agent-2) against the old controllers, and the old ones.
        net.run_short(["a0", "a1", "a2", "ctl"], leader)
        net.check_long()
        # The old jz against the old network, for the record of what it reads.
        assert run([prev.jz, "status", "--socket", leader.socket]).returncode == 0

        # The followers, one at a time; the format stays the previous one.
        for step in range(2):
            leader = net.leader()
            follower = next(d for d in net.ctls if d is not leader and d.args[0] == prev.jazarid)
            restart(follower, JAZARID)
            wait_for(lambda: status(follower) and status(follower)["leader"], timeout=60,
                     what="%s (upgraded) to know the leader" % follower.name)
            leader = net.leader()
            # Through the upgraded follower (it forwards to the leader) and an old controller.
            net.run_short(["a0", "a1", "a2"], follower)
            net.run_short(["ctl"], next(d for d in net.ctls if d.args[0] == prev.jazarid))
            net.check_long()
            net.formats(old)

        # The leader last: a new one takes over, and only when the last
        # voter runs this tree does the format rise to its newest. (An
        # election on a loaded machine may have moved the lead already: the
        # last controller is the one still on the previous release.)
        last = next(d for d in net.ctls if d.args[0] == prev.jazarid)
        net.leader()  # every running controller agrees on one before the stop
        assert last.stop(timeout=30) == 0, last.log()
        survivor = wait_for(lambda: leader_of(net.ctls), timeout=60, what="a leader with %s stopped" % last.name)
        assert survivor.args[0] == JAZARID
        net.formats(old)  # the stopped voter still reads only the previous format
        use(last, JAZARID)
        last.start()
        leader = net.leader()
        wait_for(lambda: (status(leader) or {}).get("log_format") == cur, timeout=60,
                 what="the leader to write log format %d once every controller runs this tree" % cur)
        def every_release_heard():
            st = status(leader)
            return st and all(c["software_version"] == current_version() for c in st["controllers"])
        wait_for(every_release_heard, timeout=60, what="the leader to have heard every controller's release")
        text = leader.jz("status").stdout
        assert "log format:   %d (the newest this release writes)" % cur in text, text
        # The old agents against the new controllers.
        net.run_short(["a0", "a1", "a2", "ctl"], leader)
        net.check_long()
        # The old jz against the new network: the fields it knows, it reads.
        r = run([prev.jz, "status", "--socket", leader.socket])
        assert r.returncode == 0 and "leader:" in r.stdout, r.stderr
        r = run([prev.jz, "queue", "--all", "--json", "--socket", leader.socket])
        assert r.returncode == 0 and net.long in [j["id"] for j in json.loads(r.stdout)["jobs"]], r.stderr

        # The agents, one at a time: the long job's agent adopts it.
        for a in net.agents[:2]:
            restart(a, JAZARID)
            wait_for(lambda: {n["name"]: n["state"] for n in net.leader().jz_json("nodes")["nodes"]}[a.name] == "up",
                     timeout=60, what="%s (upgraded) up" % a.name)
            net.run_short(["a0", "a1", "a2"], leader)
            net.check_long()

        # The long job ends, reported by the upgraded agent; the waiting one runs.
        open(release, "w").close()
        leader = net.leader()
        wait_for(lambda: [jobs_of(leader)[i]["state"] for i in (net.long, net.waiting)] == ["COMPLETED"] * 2,
                 timeout=90, what="the long job and the one after it to complete")

        # Everything that happened is in the state: every job once, each in
        # the attempt it was given, each command run once.
        jobs = jobs_of(leader)
        assert set(jobs) == set(net.short) | {net.long, net.waiting}
        assert jobs[net.long]["attempt"] == net.long_attempt
        for jid, attempt in net.short.items():
            assert jobs[jid]["state"] == "COMPLETED" and jobs[jid]["attempt"] == attempt, jobs[jid]
            with open(os.path.join(net.work, jobs[jid]["name"])) as f:
                assert f.read() == "ran\n", jobs[jid]
        for name, line in (("long", "start\n"), ("after-long", "ran\n")):
            with open(os.path.join(net.work, name)) as f:
                assert f.read() == line, name
        # Every controller holds the same history.
        for d in net.ctls:
            wait_for(lambda: {i: (j["state"], j["attempt"]) for i, j in jobs_of(d).items()}
                     == {i: (j["state"], j["attempt"]) for i, j in jobs.items()},
                     timeout=60, what="%s to hold the same jobs" % d.name)
        for d in net.all():
            assert d.stop(timeout=30) == 0, d.log()
    finally:
        for d in net.all():
            d.shutdown()


def test_log_format_setting_holds_the_format_down(tmp_path):
    """log_format in one controller's config file keeps the network's format
    at it; without it, the format rises to the newest."""
    cur = current_format()
    pin = cur - 1
    ds, _ = controllers(tmp_path, JAZARID)
    conf = os.path.join(str(tmp_path), "pinned.conf")
    with open(conf, "w") as f:
        f.write("log_format = %d\n" % pin)
    ds[2].args += ["--config", conf]
    try:
        for d in ds:
            d.start()
        leader = wait_for(lambda: leader_of(ds), timeout=60, what="a leader")
        wait_for(lambda: (status(leader) or {}).get("log_format") == pin, timeout=60,
                 what="the leader to hold the format at %d" % pin)
        st = status(leader)
        assert st["log_format_newest"] == cur
        text = leader.jz("status").stdout
        assert "log format:   %d (this release writes up to %d:" % (pin, cur) in text, text
        if pin == 8:  # grants are format 9: refused, said why, nothing written
            r = leader.jz("grant", "x", "--gpu-hours", "10")
            assert r.returncode != 0 and "until every controller is upgraded" in r.stderr, r.stderr
        # The network still works at the pinned format.
        work = str(tmp_path)
        jid = submit(leader, work, "--", "true")
        wait_for(lambda: jobs_of(leader)[jid]["state"] == "COMPLETED", timeout=60, what="a job at format %d" % pin)

        # Without the pin the format rises.
        ds[2].stop(timeout=30)
        ds[2].args = [a for a in ds[2].args if a not in ("--config", conf)]
        ds[2].start()
        leader = wait_for(lambda: leader_of(ds), timeout=60, what="a leader")
        wait_for(lambda: (status(leader) or {}).get("log_format") == cur, timeout=60,
                 what="the format to rise to %d" % cur)
        for d in ds:
            assert d.stop(timeout=30) == 0, d.log()
    finally:
        for d in ds:
            d.shutdown()


def test_previous_release_refuses_a_newer_log(tmp_path, prev):
    """A controller downgraded after the format rose stops with one line
    naming the format; started again with this tree, it catches up."""
    old, cur = prev.format, current_format()
    if cur == old:
        pytest.skip("this tree writes log format %d, as %s does: no newer log to refuse" % (cur, prev.tag))
    ds, _ = controllers(tmp_path, JAZARID)
    try:
        for d in ds:
            d.start()
        leader = wait_for(lambda: leader_of(ds), timeout=60, what="a leader")
        wait_for(lambda: (status(leader) or {}).get("log_format") == cur, timeout=60, what="format %d" % cur)
        jid = submit(leader, str(tmp_path), "--", "true")
        wait_for(lambda: all(jobs_of(d).get(jid, {}).get("state") == "COMPLETED" for d in ds), timeout=60,
                 what="every controller to apply job %d (format %d entries)" % (jid, cur))
        follower = next(d for d in ds if d is not leader)
        assert follower.stop(timeout=30) == 0
        use(follower, prev.jazarid)
        prev_log = follower.log_path + "." + prev.tag  # kept apart: the restart below starts a new log
        with open(prev_log, "w") as f:
            follower.proc = subprocess.Popen(follower.args, stdout=f, stderr=subprocess.STDOUT)
            try:
                rc = follower.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                follower.proc.kill()
                follower.proc.wait()
                rc = None
        with open(prev_log) as f:
            text = f.read()
        assert rc not in (None, 0), "%s's jazarid kept running on a log in format %d:\n%s" % (prev.tag, cur, text)
        lines = [l for l in text.splitlines() if "format %d" % cur in l]
        assert lines and "upgrade" in lines[0], text
        # This tree again: it catches up, and the format is back at the newest.
        use(follower, JAZARID)
        follower.start()
        wait_for(lambda: jid in jobs_of(follower), timeout=60, what="the re-upgraded controller to catch up")
        leader = wait_for(lambda: leader_of(ds), timeout=60, what="a leader")
        wait_for(lambda: (status(leader) or {}).get("log_format") == cur, timeout=60, what="format %d again" % cur)
        for d in ds:
            assert d.stop(timeout=30) == 0, d.log()
    finally:
        for d in ds:
            d.shutdown()


def test_previous_release_reads_snapshots_taken_before_the_rise(tmp_path, prev):
    """Until the format rises, what a controller of this tree writes is
    readable by the previous release, snapshots included: such a controller
    can still be taken back, and a new leader's snapshot is one an old
    follower loads."""
    old, cur = prev.format, current_format()
    if cur == old:
        pytest.skip("this tree writes log format %d, as %s does" % (cur, prev.tag))
    ds, _ = controllers(tmp_path, prev.jazarid)
    new = ds[2]
    use(new, JAZARID)
    new.args += ["--snapshot-threshold", "16"]
    try:
        for d in ds:
            d.start()
        wait_for(lambda: leader_of(ds), timeout=60, what="a leader")
        via = next(d for d in ds if d is not new)  # jz forwards to whichever leads
        ids = [submit(via, str(tmp_path), "--", "true") for _ in range(40)]
        wait_for(lambda: all(jobs_of(new).get(i, {}).get("state") == "COMPLETED" for i in ids), timeout=90,
                 what="the controller of this tree to apply every job (and take snapshots)")
        assert status(new)["log_format"] == old
        assert any(f.startswith("snapshot-") for f in os.listdir(os.path.join(new.dir, "state", "raft")))
        restart(new, prev.jazarid)
        wait_for(lambda: set(ids) <= set(jobs_of(new)), timeout=60, what="%s on its snapshot" % prev.tag)
    finally:
        for d in ds:
            d.shutdown()

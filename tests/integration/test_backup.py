"""Backups of a network's state (daemon/backup.c, common/bkfile.c,
client/cmd_backup.c): `jz admin backup FILE` from a live network, and
`jazarid --restore FILE` once every controller is gone.

A controller with a policy, and an agent of its own: jobs that ended, one
held pending, one running on the agent, a person's credentials and a
grant. The backup is taken and checked offline; then the controller is
killed and its state directory deleted, and a fresh one restored from the
file. The jobs, the credentials and the grant come back, the agent (with
the certificate it had) keeps its running job and rejoins, and new jobs get
ids after the old ones. Bad input each gets one line: a researcher's or a
tenant admin's backup, an existing FILE without --force, a damaged or cut
file, a restore into a state directory that holds a log."""
import json
import os
import shutil
import signal

import pytest

from conftest import JAZARID, JZ, Daemon, fixture_xml, free_port, run, stop_all, wait_for as _wait_for
from test_steps import FAST

H100 = fixture_xml("hgx-h100-8gpu.xml")

POLICY = """
account lab 1 users=root
account lab/a 1
account startup 1
tenant acme accounts=startup admins=lea
currency MAD 2
price H100 36.00
"""


def wait_for(cond, timeout=30.0, what="condition"):
    return _wait_for(cond, timeout=max(timeout, 30.0), what=what)


def one_line(r, rc, *words):
    """r failed with exit status rc and one line on stderr holding words."""
    assert r.returncode == rc, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def jobs_of(d):
    return {j["id"]: j for j in d.jz_json("queue", "--all")["jobs"]}


@pytest.fixture
def net(tmp_path):
    """A controller c1 (started by the test: it is killed and restored) and
    an agent gpu1; everything stopped at the end, whatever happened."""
    pol = tmp_path / "policy"
    pol.write_text(POLICY)
    port = free_port()
    spec = "c1@127.0.0.1:%d" % port
    started = []

    def controller(*extra):
        d = Daemon(tmp_path, name="c1", port=port, extra=[
            "--controllers", spec, "--election-timeout", "300ms", "--gpu-isolation", "off",
            "--policy", str(pol)] + FAST + list(extra))
        started.append(d)
        return d

    agent = Daemon(tmp_path, name="gpu1", xml=H100, extra=[
        "--controllers", spec, "--gpu-isolation", "off", "--policy", str(pol)] + FAST)
    started.append(agent)
    yield controller, agent
    bad = stop_all(started)
    assert not bad, "a daemon did not shut down cleanly:\n" + "\n".join(bad)


def grants(d):
    """lab/a's balance, what does not move with the clock: its grant."""
    b = d.jz_json("balance", "lab/a")["balances"]
    assert len(b) == 1 and not b[0]["unlimited"], b
    return [b[0]["grant"], b[0]["granted_hours"], b[0]["used_hours"]]


def up(ctl, name):
    return lambda: any(n["name"] == name and n["state"] == "up" for n in ctl.jz_json("nodes")["nodes"])


def test_backup_then_restore_after_every_controller_is_lost(net, tmp_path):
    controller, agent = net
    c1 = controller().start()
    wait_for(lambda: c1.jz_json("status").get("leader") == "c1", what="c1 to lead")
    agent.start()
    wait_for(up(c1, "gpu1"), what="gpu1 up")

    done = submit(c1, "--name", "done", "--", "true")
    failed = submit(c1, "--name", "failed", "--", "sh", "-c", "exit 3")
    held = submit(c1, "--hold", "--name", "held", "--", "true")
    running = submit(c1, "--name", "running", "--gpus-per-node", "1", "--gpu-model", "H100", "--", "sleep", "600")
    wait_for(lambda: jobs_of(c1)[done]["state"] == "COMPLETED", what="job done")
    wait_for(lambda: jobs_of(c1)[failed]["state"] == "FAILED", what="job failed")
    wait_for(lambda: jobs_of(c1)[running]["state"] == "RUNNING", what="job running")
    alice = c1.credentials("alice", "researcher")
    lea = c1.credentials("lea", "tenant-admin")
    r = c1.jz("grant", "lab/a", "--gpu-hours", "12.5")
    assert r.returncode == 0, r.stderr
    creds = {c["user"] for c in c1.jz_json("token", "list")["credentials"]}
    assert {"alice", "lea"} <= creds
    granted = grants(c1)
    assert float(granted[1]) == 12.5, granted

    # Only the network's admins take backups: not a researcher, not a tenant admin.
    f = str(tmp_path / "net.jzbackup")
    server = "127.0.0.1:%d" % c1.port
    for cred in (alice, lea):
        r = run([JZ, "admin", "backup", f, "--credentials", cred, "--server", server])
        one_line(r, 1, "for the network's admins")
        assert not os.path.exists(f)
    # An admin's credentials, from another machine.
    remote = str(tmp_path / "remote.jzbackup")
    r = run([JZ, "admin", "backup", remote, "--credentials", c1.credentials("root", "admin"), "--server", server])
    assert r.returncode == 0 and "a backup of jazari" in r.stdout, (r.stdout, r.stderr)
    # An admin's, on a controller's socket, while a job that will end
    # after it runs.
    late = submit(c1, "--name", "ends-after-the-backup", "--gpus-per-node", "1", "--gpu-model", "H100", "--",
                  "sleep", "4")
    wait_for(lambda: jobs_of(c1)[late]["state"] == "RUNNING", what="job late running")
    before = jobs_of(c1)
    creds = {c["user"] for c in c1.jz_json("token", "list")["credentials"]}
    assert creds == {"alice", "lea", "root"}
    r = c1.jz("admin", "backup", f)
    assert r.returncode == 0, r.stderr
    assert "log index" in r.stdout and "5 jobs" in r.stdout, r.stdout
    assert os.stat(f).st_mode & 0o777 == 0o600
    assert not [n for n in os.listdir(str(tmp_path)) if ".tmp." in n]
    # Offline: what it holds.
    v = json.loads(run([JZ, "admin", "backup", "--verify", f, "--json"]).stdout)
    assert v["jobs"] == 5 and v["jobs_pending"] == 1 and v["jobs_running"] == 2 and v["jobs_ended"] == 2
    assert v["grants"] == 1 and v["credentials"] >= 2 and v["nodes"] == 2 and v["index"] > 0
    assert v["next_job_id"] == late + 1 and v["cluster_name"] == "jazari" and len(v["ca_hash"]) == 64
    # An existing FILE is kept unless --force.
    f3 = str(tmp_path / "other.jzbackup")
    shutil.copy(f, f3)
    r = c1.jz("admin", "backup", f3)
    one_line(r, 1, f3, "--force")
    assert open(f3, "rb").read() == open(f, "rb").read()
    r = c1.jz("admin", "backup", f3, "--force")
    assert r.returncode == 0, r.stderr
    assert open(f3, "rb").read() != open(f, "rb").read()

    # Damaged, cut and foreign files: one line each, offline and at restore.
    data = open(f, "rb").read()
    bad = {"flipped": data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:],
           "cut": data[:-100], "foreign": b"SQLite format 3\0" + data[16:]}
    words = {"flipped": "checksum", "cut": "truncated", "foreign": "not a Jazari backup"}
    for name, content in bad.items():
        p = str(tmp_path / name)
        with open(p, "wb") as out:
            out.write(content)
        one_line(run([JZ, "admin", "backup", "--verify", p]), 1, p, words[name])

    # A job that ends after the backup (its end reported by the agent and
    # taken): the restored state will think it runs.
    wait_for(lambda: jobs_of(c1)[late]["state"] == "COMPLETED", what="job late done")

    # Every controller lost: killed, its state gone. The agent goes on.
    c1.proc.send_signal(signal.SIGKILL)
    c1.proc.wait()
    c1.logf.close()
    shutil.rmtree(os.path.join(c1.dir, "state"))
    for name in bad:
        r = run(c1.args + ["--restore", str(tmp_path / name)])
        one_line(r, 2, "--restore", words[name])
        assert not os.path.exists(os.path.join(c1.dir, "state", "raft")) or \
            not os.listdir(os.path.join(c1.dir, "state", "raft"))

    # Another network's token makes another CA: its nodes would not be believed.
    other = list(c1.args)
    other[other.index("--join-token") + 1] = run([JAZARID, "token", "generate"]).stdout.strip()
    one_line(run(other + ["--restore", f]), 2, "--restore", "CA", "network token")
    # Only a controller restores.
    one_line(run(agent.args + ["--restore", f]), 2, "--restore", "gpu1 is not in controllers")
    shutil.rmtree(os.path.join(c1.dir, "state"), True)

    c1 = controller("--restore", f).start()
    assert "restored" in c1.log()
    wait_for(lambda: c1.jz_json("status").get("leader") == "c1", what="the restored c1 to lead")
    status = c1.jz_json("status")
    assert status["commit_index"] > 1 << 40  # a new epoch of the log (BACKUP_EPOCH)
    after = jobs_of(c1)
    assert sorted(after) == sorted(before)
    for i in (done, failed, held):
        assert after[i]["state"] == before[i]["state"] and after[i]["name"] == before[i]["name"]
    # The agent, with the certificate it had, rejoins and keeps its job.
    wait_for(up(c1, "gpu1"), what="gpu1 back")
    assert jobs_of(c1)[running]["state"] == "RUNNING"
    # The job that ended after the backup: the agent says so again.
    wait_for(lambda: jobs_of(c1)[late]["state"] == "COMPLETED", what="job late done again")
    assert "its end is reported again" in agent.log()
    assert {c["user"] for c in c1.jz_json("token", "list")["credentials"]} == creds
    assert grants(c1) == granted
    # Alice's credentials are still believed.
    r = run([JZ, "queue", "--credentials", alice, "--server", server])
    assert r.returncode == 0, r.stderr
    # New jobs get ids after the old ones.
    new = submit(c1, "--", "true")
    assert new > late
    wait_for(lambda: jobs_of(c1)[new]["state"] == "COMPLETED", what="a new job done")
    r = c1.jz("cancel", str(running))
    assert r.returncode == 0, r.stderr
    wait_for(lambda: jobs_of(c1)[running]["state"] == "CANCELLED", what="the old running job cancelled")

    # A restored network is backed up as any (and the daemon that held the
    # backup frees it when it stops: checked under ASan).
    f2 = str(tmp_path / "again.jzbackup")
    r = c1.jz("admin", "backup", f2)
    assert r.returncode == 0 and "6 jobs" in r.stdout, (r.stdout, r.stderr)
    v2 = json.loads(run([JZ, "admin", "backup", "--verify", f2, "--json"]).stdout)
    assert v2["index"] > 1 << 40 and v2["next_job_id"] == new + 1

    # A state directory that holds a log is not restored over.
    assert c1.stop() == 0
    r = run(c1.args + ["--restore", f])
    one_line(r, 2, "already holds a Raft log")


def test_three_controllers_restored_from_one_backup(tmp_path):
    """Every controller of three lost: the first is restored from the
    backup, the others start with empty state directories and the same
    settings, and copy the state from it as a controller whose log was
    moved aside does (docs/admin.md, "Backups and restoring")."""
    names = ["c1", "c2", "c3"]
    ports = [free_port() for _ in names]
    spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(names, ports))
    started = []

    def ctl(name, *extra):
        d = Daemon(tmp_path, name=name, port=ports[names.index(name)], extra=[
            "--controllers", spec, "--election-timeout", "300ms", "--gpu-isolation", "off"] + FAST + list(extra))
        started.append(d)
        return d

    try:
        old = [ctl(n).start() for n in names]
        wait_for(lambda: old[0].jz_json("status").get("leader") in names, what="a leader")
        done = submit(old[0], "--", "true")
        held = submit(old[0], "--hold", "--", "true")
        wait_for(lambda: jobs_of(old[0])[done]["state"] == "COMPLETED", what="job done")
        f = str(tmp_path / "net.jzbackup")
        # Asked of a controller that may be a follower: it forwards to the leader.
        r = old[2].jz("admin", "backup", f)
        assert r.returncode == 0, r.stderr
        for d in old:
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            d.logf.close()
            shutil.rmtree(os.path.join(d.dir, "state"))
            d.kill_jobs()
        first = ctl("c1", "--restore", f).start()
        second = ctl("c2").start()
        wait_for(lambda: first.jz_json("status").get("leader") == "c1", what="the restored c1 to lead")
        third = ctl("c3").start()
        for d in (first, second, third):
            # Each answers from its own copy of the state.
            wait_for(lambda: sorted(jobs_of(d)) == [done, held], what="%s to hold the jobs" % d.name)
        assert jobs_of(third)[held]["state"] == "PENDING"
        new = submit(third, "--", "true")
        assert new > held
        bad = stop_all([first, second, third])
        assert not bad, "a daemon did not shut down cleanly:\n" + "\n".join(bad)
    finally:
        for d in started:
            d.shutdown()

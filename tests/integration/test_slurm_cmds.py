"""Slurm's commands as jz's front ends (build/slurm: sbatch, squeue,
scancel, sacct, sinfo, scontrol), with real daemons on two nodes, in the
formats tools parse: `sbatch --parsable`, `squeue -h -o`, `sacct -P -n -o`,
`scontrol show job|hostnames`, `sinfo -o %P`; and Debian's snakemake
(7.x, `--slurm`) running a workflow through them to its end."""
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, wait_for
from test_steps import FAST, free_port

SLURM_DIR = os.path.abspath(os.path.join(BUILD, "slurm"))
POLICY = "partition main nodes=ctl,agent default_time=1:00:00 max_time=2-00:00:00 default=yes\n"


def cluster(daemon_factory, tmp_path):
    path = tmp_path / "policy.conf"
    path.write_text(POLICY)
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms", "--cluster-name", "atlas",
                                "--policy", str(path)] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    daemon_factory(name="agent", extra=["--controllers", spec] + FAST)
    wait_for(lambda: {n["name"] for n in ctl.jz_json("nodes")["nodes"] if n["state"] == "up"} == {"ctl", "agent"},
             timeout=20, what="both nodes up")
    env = dict(os.environ, JAZARI_SOCKET=ctl.socket, PATH=SLURM_DIR + ":" + os.environ.get("PATH", ""))
    return ctl, env


def sl(env, *args, cwd=None, input=None, timeout=30):
    return subprocess.run(list(args), env=env, cwd=cwd, input=input, capture_output=True, text=True,
                          timeout=timeout)


def ok(r):
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def sacct_state(env, jid):
    out = ok(sl(env, "sacct", "-P", "-n", "--format=JobIdRaw,State", "-j", jid))
    return dict(line.split("|") for line in out.strip().splitlines()).get(jid)


def test_front_ends_in_the_formats_tools_parse(daemon_factory, tmp_path):
    ctl, env = cluster(daemon_factory, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    # Ours, not the system's Slurm.
    assert shutil.which("sbatch", path=env["PATH"]) == os.path.join(SLURM_DIR, "sbatch")

    jid = ok(sl(env, "sbatch", "--parsable", "-J", "first", "-D", str(work), "--wrap", "echo hi; sleep 0.5"))
    jid = jid.strip()
    assert jid.isdigit()
    out = ok(sl(env, "sbatch", "-M", "atlas", "--parsable", "-D", str(work), "--wrap", "true")).strip()
    assert out.split(";")[1] == "atlas" and out.split(";")[0].isdigit()
    out = ok(sl(env, "sbatch", "-D", str(work), input="#!/bin/sh\n#SBATCH -J fromstdin\nsleep 30\n"))
    assert out.startswith("Submitted batch job ")
    long_id = out.split()[-1]

    wait_for(lambda: sacct_state(env, jid) == "COMPLETED", timeout=30, what="the first job to complete")
    rows = ok(sl(env, "sacct", "-P", "-n", "-o", "JobID,JobName,State,ExitCode,Partition,NNodes", "-j", jid))
    rows = [r.split("|") for r in rows.strip().splitlines()]
    assert rows[0] == [jid, "first", "COMPLETED", "0:0", "main", "1"], rows
    assert rows[1][0] == jid + ".batch" and rows[1][2] == "COMPLETED", rows
    assert ok(sl(env, "sacct", "-X", "-P", "-n", "-o", "JobID", "-j", jid)).split() == [jid]
    assert (work / ("slurm-%s.out" % jid)).read_text() == "hi\n"  # sbatch's default name

    wait_for(lambda: ok(sl(env, "squeue", "-h", "-o", "%i %j %T", "-j", long_id)).split() ==
             [long_id, "fromstdin", "RUNNING"], timeout=20, what="squeue to show the running job")
    out = ok(sl(env, "squeue", "-o", "%.10i %P %D %R", "--me"))
    assert out.splitlines()[0].split() == ["JOBID", "PARTITION", "NODES", "NODELIST(REASON)"]
    assert ok(sl(env, "squeue", "-h", "-u", "nobody")) == ""
    header = ok(sl(env, "squeue")).splitlines()[0].split()
    assert header == ["JOBID", "PARTITION", "NAME", "USER", "ST", "TIME", "NODES", "NODELIST(REASON)"]
    show = ok(sl(env, "scontrol", "show", "job", long_id))
    for key in ("JobId=%s" % long_id, "JobName=fromstdin", "JobState=RUNNING", "Partition=main", "NumNodes=1",
                "WorkDir=%s" % work, "TimeLimit=01:00:00"):
        assert key in show, show
    ok(sl(env, "scancel", long_id))
    wait_for(lambda: sacct_state(env, long_id) == "CANCELLED", timeout=20, what="the cancel")

    out = ok(sl(env, "sinfo"))
    lines = out.splitlines()
    assert lines[0].split() == ["PARTITION", "AVAIL", "TIMELIMIT", "NODES", "STATE", "NODELIST"]
    assert lines[1].split() == ["main*", "up", "2-00:00:00", "2", "idle", "agent,ctl"], out
    assert ok(sl(env, "sinfo", "-h", "-o", "%P")).split() == ["main*"]
    assert sorted(ok(sl(env, "sinfo", "-h", "-N", "-o", "%N %t")).splitlines()) == ["agent idle", "ctl idle"]
    assert "Nodes=agent,ctl" in ok(sl(env, "scontrol", "show", "partition"))
    assert "Partitions=main" in ok(sl(env, "scontrol", "show", "node", "agent"))
    assert ok(sl(env, "scontrol", "show", "hostnames", "gpu[01-03],cpu5")).split() == \
        ["gpu01", "gpu02", "gpu03", "cpu5"]
    assert ok(sl(env, "scontrol", "show", "hostlist", "n1,n2,n3,m7")).strip() == "n[1-3],m7"

    out = ok(sl(env, "squeue", "-h", "-t", "all", "-O", "JobID:8,State:.12,Partition:6", "-j", jid))
    assert out == "%-8s%12s%-6s\n" % (jid, "COMPLETED", "main"), repr(out)
    out = ok(sl(env, "sacct", "-S", "now-1hours", "-E", "now", "-n", "-X", "-o", "JobID%8,State", "-s", "CA"))
    assert out.split() == [long_id, "CANCELLED"], out
    out = ok(sl(dict(env, SLURM_JOB_NODELIST="n[1-2]"), "scontrol", "show", "hostnames"))
    assert out.split() == ["n1", "n2"]

    for prog in ("sbatch", "srun", "salloc", "sattach", "squeue", "scancel", "sacct", "sinfo", "scontrol"):
        assert ok(sl(env, prog, "--help")).startswith("Usage: %s " % prog)

    # Failures: Slurm's "PROG: error: ..." and exit status 1.
    r = sl(env, "squeue", "-o", "%i %Y")
    assert r.returncode == 1 and r.stderr.startswith("squeue: error: "), r.stderr
    r = sl(env, "sacct", "-o", "Bogus")
    assert r.returncode == 1 and r.stderr.startswith("sacct: error: Invalid field"), r.stderr
    r = sl(env, "scancel", "-s", "USR1", jid)
    assert r.returncode == 1 and "scancel: error: --signal" in r.stderr, r.stderr
    r = sl(env, "sbatch", "--nodelist=x", "--wrap", "true")
    assert r.returncode == 1 and r.stderr.startswith("sbatch: error: "), r.stderr
    r = sl(env, "scontrol", "show", "job", "99999")
    assert r.returncode == 1 and r.stderr.startswith("scontrol: error: "), r.stderr


def test_scontrol_hold_release_update_requeue(daemon_factory, tmp_path):
    ctl, env = cluster(daemon_factory, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    jid = ok(sl(env, "sbatch", "--parsable", "-H", "-t", "30", "-D", str(work), "--wrap", "echo run")).strip()
    assert ok(sl(env, "squeue", "-h", "-o", "%i %T %l", "-j", jid)).split() == [jid, "PENDING", "30:00"]

    # update: what the job asked for changes, while it is pending; nonsense changes nothing.
    ok(sl(env, "scontrol", "update", "JobId=" + jid, "TimeLimit=10", "JobName=renamed"))
    assert ok(sl(env, "squeue", "-h", "-o", "%j %l", "-j", jid)).split() == ["renamed", "10:00"]
    r = sl(env, "scontrol", "update", "JobId=" + jid, "TimeLimit=soon")
    assert r.returncode == 1 and r.stderr.startswith("scontrol: error: "), r.stderr
    r = sl(env, "scontrol", "update", "JobId=" + jid, "Gres=gpu:2")
    assert r.returncode == 1 and "cannot be changed here" in r.stderr, r.stderr
    assert ok(sl(env, "squeue", "-h", "-o", "%j %l", "-j", jid)).split() == ["renamed", "10:00"]

    # release: it runs; requeuehold: it comes back held as a new attempt; release again: it runs again.
    ok(sl(env, "scontrol", "release", jid))
    wait_for(lambda: sacct_state(env, jid) == "COMPLETED", timeout=30, what="the released job to complete")
    ok(sl(env, "scontrol", "requeuehold", jid))
    wait_for(lambda: ok(sl(env, "squeue", "-h", "-o", "%T %r", "-j", jid)).split()[:1] == ["PENDING"],
             timeout=20, what="the requeued job to be pending")
    assert "Reason=JobHeldUser" in ok(sl(env, "scontrol", "show", "job", jid))
    ok(sl(env, "scontrol", "release", jid))
    wait_for(lambda: sacct_state(env, jid) == "COMPLETED", timeout=30, what="the second run to complete")
    show = ok(sl(env, "scontrol", "show", "job", jid))
    assert "Restarts=1" in show and "StdOut=%s/slurm-%s.out" % (work, jid) in show, show
    assert (work / ("slurm-%s.out" % jid)).read_text() == "run\nrun\n"  # appended, as sbatch does

    # hold: only a pending job.
    r = sl(env, "scontrol", "hold", jid)
    assert r.returncode == 1 and r.stderr.startswith("scontrol: error: "), r.stderr


SNAKEFILE = """
rule all:
    input: "c.txt"

rule a:
    output: "a.txt"
    shell: "echo a > {output}"

rule b:
    output: "b.txt"
    shell: "echo b > {output}"

rule c:
    input: "a.txt", "b.txt"
    output: "c.txt"
    shell: "cat {input} > {output}"
"""


def test_snakemake_runs_a_workflow_through_the_front_ends(daemon_factory, tmp_path):
    snakemake = shutil.which("snakemake")
    if not snakemake:
        pytest.skip("snakemake is not installed (apt-get install snakemake; deploy/deps.sh)")
    ctl, env = cluster(daemon_factory, tmp_path)
    work = tmp_path / "flow"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    env = dict(env, USER=os.environ.get("USER", "root"), HOME=str(tmp_path))
    r = sl(env, snakemake, "--slurm", "--jobs", "3", "--default-resources", "runtime=10", "mem_mb=2000",
           "--latency-wait", "5", "--max-status-checks-per-second", "5", cwd=str(work), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (work / "c.txt").read_text() == "a\nb\n"
    # Every rule went through sbatch: jobs of ours, completed.
    out = ok(sl(env, "sacct", "-X", "-P", "-n", "-o", "JobName,State", "-a"))
    states = [line.split("|")[1] for line in out.strip().splitlines()]
    assert len(states) >= 3 and set(states) == {"COMPLETED"}, out

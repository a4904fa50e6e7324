"""Interactive work with real daemons on two nodes: salloc (jz alloc) runs a
command here with an allocation whose steps srun launches, and ends it
COMPLETED when the command exits, with the command's exit status; salloc
interrupted while pending cancels its request; srun from outside a job
makes an allocation of its own for one step; jz attach (sattach) follows a
running step from another terminal; srun --pty gives a terminal on a node,
driven here through a pseudo-terminal of Python's."""
import json
import os
import re
import signal
import subprocess

from conftest import BUILD, JZ, RUN_DIR, free_port, wait_for
from test_steps import FAST

SLURM = os.path.join(BUILD, "slurm")


def two_nodes(daemon_factory, tmp_path):
    """A controller and an agent, each with a private directory for its
    jobs' (a job's dir is named by node and id: tests must not share one)."""
    for d in ("tmp-ctl", "tmp-agent"):
        (tmp_path / d).mkdir()
        os.chmod(str(tmp_path / d), 0o1777)
    port = free_port()
    spec = "ctl@127.0.0.1:%d" % port
    ctl = daemon_factory(name="ctl", port=port,
                         extra=["--controllers", spec, "--election-timeout", "200ms",
                                "--tmp-dir", str(tmp_path / "tmp-ctl")] + FAST)
    wait_for(lambda: ctl.jz_json("status")["leader"] == "ctl", what="ctl to lead")
    agent = daemon_factory(name="agent", extra=["--controllers", spec, "--tmp-dir", str(tmp_path / "tmp-agent")] + FAST)
    wait_for(lambda: {n["name"] for n in ctl.jz_json("nodes")["nodes"] if n["state"] == "up"} == {"ctl", "agent"},
             timeout=20, what="both nodes up")
    return ctl, agent


def slurm_env(d, **extra):
    """Our Slurm commands first on the PATH, the daemon's socket known."""
    env = dict(os.environ, PATH=SLURM + ":" + os.environ.get("PATH", ""), JAZARI_SOCKET=d.socket, **extra)
    for k in [k for k in env if k.startswith("SLURM_") or k.startswith("JAZARI_JOB")]:
        del env[k]
    return env


def slurm(d, prog, *args, timeout=60, **kw):
    return subprocess.run([os.path.join(SLURM, prog)] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=RUN_DIR, env=slurm_env(d), **kw)


def jobs(d):
    return d.jz_json("queue", "--all")["jobs"]


def job_show(d, jid):
    return d.jz_json("show", str(jid))


def test_salloc_runs_a_command_whose_srun_spans_the_allocation(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    body = ("echo ENV JOB=$SLURM_JOB_ID NN=$SLURM_NNODES NT=$SLURM_NTASKS NL=$SLURM_JOB_NODELIST "
            "NAME=$SLURM_JOB_NAME\n"
            "srun sh -c 'echo HOST $SLURMD_NODENAME $SLURM_PROCID $SLURM_STEP_ID'\n"
            "echo SRUN rc=$?\n"
            "exit 3\n")
    r = slurm(ctl, "salloc", "-N", "2", "-J", "inter", "-t", "5", "sh", "-c", body)
    story = "rc=%s\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    assert r.returncode == 3, story  # the command's exit status
    m = re.search(r"^salloc: Pending job allocation (\d+)$", r.stderr, re.M)
    assert m, story
    jid = int(m.group(1))
    assert "salloc: Granted job allocation %d" % jid in r.stderr, story
    assert "salloc: Relinquishing job allocation %d" % jid in r.stderr, story
    env = dict(kv.split("=", 1) for kv in re.search(r"^ENV (.*)$", r.stdout, re.M).group(1).split())
    assert env["JOB"] == str(jid) and env["NN"] == "2" and env["NT"] == "2" and env["NAME"] == "inter", story
    assert sorted(env["NL"].split(",")) == ["agent", "ctl"], story
    hosts = sorted(re.findall(r"^HOST (\S+) (\d) (\d)$", r.stdout, re.M))
    assert [h[0] for h in hosts] == ["agent", "ctl"] and {h[2] for h in hosts} == {"0"}, story
    assert "SRUN rc=0" in r.stdout, story
    # The allocation ended with the command: COMPLETED (its client released it).
    job = job_show(ctl, jid)
    assert job["state"] == "COMPLETED" and job["exit_code"] == 0, json.dumps(job)
    assert [s["state"] for s in job["steps"]] == ["COMPLETED"], json.dumps(job)
    # The nodes hold nothing any more: both free for a job of two nodes.
    r2 = ctl.jz("submit", "--json", "-N", "2", "--", "true")
    jid2 = json.loads(r2.stdout)["id"]
    assert ctl.jz("wait", str(jid2), "--timeout", "30", timeout=60).returncode == 0
    # An allocation runs no command of its own: jz alloc refuses sbatch's script options.
    bad = slurm(ctl, "salloc", "--wrap", "true")
    assert bad.returncode == 2 and "--wrap" in bad.stderr, bad.stderr
    assert agent.stop() == 0, agent.log()
    assert ctl.stop() == 0, ctl.log()


def test_salloc_interrupted_while_pending_cancels_its_request(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    p = subprocess.Popen([os.path.join(SLURM, "salloc"), "--hold", "-N", "1", "true"], stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=RUN_DIR, env=slurm_env(ctl))
    try:
        line = p.stderr.readline()
        m = re.match(r"salloc: Pending job allocation (\d+)$", line.strip())
        assert m, line
        jid = int(m.group(1))
        assert job_show(ctl, jid)["state"] == "PENDING"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, err
    assert "salloc: Job allocation %d has been revoked." % jid in err, err
    assert job_show(ctl, jid)["state"] == "CANCELLED"
    assert "Granted" not in err
    assert agent.stop() == 0
    assert ctl.stop() == 0


def test_srun_outside_a_job_allocates_for_its_step(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    r = slurm(ctl, "srun", "-N", "2", "-l", "-t", "2", "-J", "outside", "sh", "-c",
              "echo OUT $SLURMD_NODENAME $SLURM_NNODES; echo ERR $SLURM_PROCID >&2; exit 4")
    story = "rc=%s\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    assert r.returncode == 4, story
    assert sorted(re.findall(r"^(\d): OUT (\S+) 2$", r.stdout, re.M)) == [("0", "ctl"), ("1", "agent")] or \
        sorted(re.findall(r"^(\d): OUT (\S+) 2$", r.stdout, re.M)) == [("0", "agent"), ("1", "ctl")], story
    assert sorted(re.findall(r"^\d: ERR (\d)$", r.stderr, re.M)) == ["0", "1"], story
    done = [j for j in jobs(ctl) if j["name"] == "outside"]
    assert len(done) == 1, jobs(ctl)
    job = job_show(ctl, done[0]["id"])
    # The allocation ended with its step; the step's failure is the step's.
    assert job["state"] == "COMPLETED" and job["steps"][0]["exit_code"] == 4, json.dumps(job)
    # A command that exits 0, through jz run (its long options).
    ok = ctl.jz("run", "--nodes", "1", "--", "sh", "-c", "echo fine")
    assert ok.returncode == 0 and ok.stdout == "fine\n", ok.stdout + ok.stderr
    # A command that cannot start: 127, and the allocation still released.
    nx = ctl.jz("run", "--", "/no/such/program")
    assert nx.returncode not in (0, 2), nx.stderr
    wait_for(lambda: all(j["state"] not in ("PENDING", "RUNNING") for j in jobs(ctl)), timeout=20,
             what="every allocation released")
    assert agent.stop() == 0, agent.log()
    assert ctl.stop() == 0, ctl.log()


def _lines(proc, n, story, timeout=30):
    """n lines of proc's output within timeout, else a failure that tells
    what came and what the daemons logged (never a read that hangs)."""
    import select
    import time
    fd, got = proc.stdout.fileno(), b""
    end = time.monotonic() + timeout
    while got.count(b"\n") < n:
        left = end - time.monotonic()
        ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            raise AssertionError("%d lines expected, got %r (exit %s)\n%s" % (n, got, proc.poll(), story()))
        got += chunk
    return [l + "\n" for l in got.decode().split("\n")[:n]]


def test_attach_follows_a_running_step(daemon_factory, tmp_path):
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    gate, held = tmp_path / "gate", tmp_path / "held"
    body = "echo START $SLURM_PROCID; while [ ! -e %s ]; do sleep 0.1; done; echo END $SLURM_PROCID" % gate
    # The allocation outlives the step until the test is done reading: a
    # job's step output goes with the job.
    p = subprocess.Popen([os.path.join(SLURM, "salloc"), "-N", "2", "-J", "followed", "sh", "-c",
                          "srun sh -c '%s'; echo SRUN rc=$?; while [ ! -e %s ]; do sleep 0.1; done" % (body, held)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
                         env=slurm_env(ctl))
    att = again = None
    try:
        def running_step():
            js = [j for j in jobs(ctl) if j["name"] == "followed" and j["state"] == "RUNNING"]
            return js and job_show(ctl, js[0]["id"])["steps"] and js[0]["id"]
        jid = wait_for(running_step, timeout=20, what="the step to run")
        story = lambda: "job: %s\n--- ctl\n%s\n--- agent\n%s" % (
            json.dumps(job_show(ctl, jid)), ctl.log()[-4000:], agent.log()[-4000:])
        # Unbuffered bytes: the lines are read with a deadline (select).
        att = subprocess.Popen([os.path.join(SLURM, "sattach"), "--label", "%d.0" % jid], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=RUN_DIR, env=slurm_env(ctl), bufsize=0)
        # Both tasks' first lines come while the step still runs.
        first = _lines(att, 2, story)
        assert sorted(first) == ["0: START 0\n", "1: START 1\n"], first
        # jz attach JOB: its running step, the same lines so far.
        again = subprocess.Popen([JZ, "attach", str(jid), "--socket", ctl.socket], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd=RUN_DIR, bufsize=0)
        assert sorted(_lines(again, 2, story)) == ["START 0\n", "START 1\n"]
        gate.write_text("")
        out, err = (x.decode() for x in att.communicate(timeout=30))
        said = "%s\n%s" % (out, err)
        assert att.returncode == 0, said
        assert sorted(re.findall(r"^(\d): END \1$", out, re.M)) == ["0", "1"], said
        aout, aerr = (x.decode() for x in again.communicate(timeout=30))
        assert again.returncode == 0 and sorted(aout.split("\n")) == ["", "END 0", "END 1"], aout + aerr
        held.write_text("")
        pout, perr = p.communicate(timeout=30)
        assert p.returncode == 0, perr
        assert pout.count("START") == 2 and pout.count("END") == 2 and "SRUN rc=0" in pout, pout
    finally:
        for q in (p, att, again):
            if q and q.poll() is None:
                q.kill()
    # A step that is not there: one line saying so.
    r = ctl.jz("attach", "%d.7" % jid)
    assert r.returncode == 1 and "no step 7" in r.stderr, r.stderr
    r = ctl.jz("attach", str(jid))
    assert r.returncode == 1 and "no running step" in r.stderr, r.stderr
    r = ctl.jz("attach", "x.y")
    assert r.returncode == 2, r.stderr
    assert agent.stop() == 0
    assert ctl.stop() == 0


def _read_until(fd, want, buf, timeout=20):
    """Reads the pty's master until want (a regex) matches what came."""
    import select
    import time
    end = time.monotonic() + timeout
    while not re.search(want, buf[0]):
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r in %r" % (want, buf[0]))
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the other side closed
                data = b""
            if not data:
                raise AssertionError("terminal closed without %r in %r" % (want, buf[0]))
            buf[0] += data.decode("utf-8", "replace")
    return buf[0]


def srun_pty(d, name, rows=30, cols=100):
    """srun --pty sh on a pseudo-terminal of ours (its controlling one):
    (process, master, slave)."""
    import fcntl
    import struct
    import termios
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    srun_pty.before = termios.tcgetattr(slave)

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = slurm_env(d, TERM="dumb", PS1="$ ")
    p = subprocess.Popen([os.path.join(SLURM, "srun"), "--pty", "-J", name, "sh"], stdin=slave, stdout=slave,
                         stderr=slave, cwd=RUN_DIR, env=env, preexec_fn=controlling_tty)
    return p, master, slave


def test_srun_pty_gives_a_terminal_on_a_node(daemon_factory, tmp_path):
    import fcntl
    import struct
    import termios
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    p, master, slave = srun_pty(ctl, "term")
    before = srun_pty.before
    buf = [""]
    try:
        os.write(master, b"echo h''i; stty size\n")
        # Its output, with the size of our window; the remote terminal echoes what we typed.
        _read_until(master, r"hi\r\n30 100\r\n", buf)
        # The client's terminal is raw while it runs.
        assert not termios.tcgetattr(slave)[3] & termios.ICANON
        # A new window size reaches the terminal there (SIGWINCH -> TIOCSWINSZ).
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(p.pid, signal.SIGWINCH)  # as the kernel does for the foreground group

        def resized():
            os.write(master, b"stty size\n")
            try:
                _read_until(master, r"(^|\n|\$ )40 120\r\n", buf, timeout=1)
                return True
            except AssertionError:
                return False
        wait_for(resized, timeout=20, what="the new window size on the node")
        # Ctrl-C goes through as a byte: it interrupts the command there, not us.
        os.write(master, b"sleep 30; echo NOT_INTERRUPTED\n")
        _read_until(master, r"sleep 30; echo NOT_INTERRUPTED\r\n", buf)
        os.write(master, b"\x03")
        os.write(master, b"echo after-$((40+2))\n")
        _read_until(master, r"after-42", buf)
        assert "NOT_INTERRUPTED\r\n" not in buf[0].replace("echo NOT_INTERRUPTED", "")
        os.write(master, b"exit 3\n")
        rc = p.wait(timeout=30)
        after = termios.tcgetattr(slave)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
        os.close(slave)
    assert rc == 3, buf[0]
    # Our terminal is back as it was.
    assert after[3] == before[3] and after[0] == before[0] and after[1] == before[1], (before, after)
    done = [j for j in jobs(ctl) if j["name"] == "term"]
    assert len(done) == 1 and job_show(ctl, done[0]["id"])["state"] == "COMPLETED", jobs(ctl)
    assert job_show(ctl, done[0]["id"])["steps"][0]["exit_code"] == 3
    assert agent.stop() == 0, agent.log()
    assert ctl.stop() == 0, ctl.log()


def test_only_the_owner_types_into_a_terminal(daemon_factory, tmp_path):
    """Keys for root's terminal from another person (over TLS, with their
    credentials) are refused, wherever the terminal's node is; a bad
    request is one line; the terminal is unaffected."""
    from conftest import frame, hello_env, pb, read_frame
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    p, master, slave = srun_pty(ctl, "mine")
    buf = [""]
    try:
        os.write(master, b"echo rea''dy\n")
        _read_until(master, r"ready\r\n", buf)
        job = [j for j in jobs(ctl) if j["name"] == "mine"][0]
        node = job_show(ctl, job["id"])["steps"][0]["nodes"][0]
        with ctl.connect(user="nobody", role="researcher") as s:
            s.sendall(frame(hello_env()))
            assert read_frame(s).WhichOneof("body") == "hello_reply"
            req = pb.Envelope(request_id=2, version=1)
            r = req.pty_input_request
            r.job, r.attempt, r.step, r.node, r.data = job["id"], 0, 1, node, b"echo IN''TRUDER\r"
            s.sendall(frame(req))
            rep = read_frame(s)
            assert rep.error.code == pb.PERMISSION_DENIED, rep
            assert "only the owner" in rep.error.message, rep
            # Too many keys in one request: refused before anything.
            req = pb.Envelope(request_id=3, version=1)
            r = req.pty_input_request
            r.job, r.attempt, r.step, r.node, r.data = job["id"], 0, 1, node, b"x" * 1025
            s.sendall(frame(req))
            rep = read_frame(s)
            assert rep.error.code == pb.BAD_REQUEST and "1024" in rep.error.message, rep
        os.write(master, b"echo do''ne\n")
        _read_until(master, r"done\r\n", buf)
        assert "INTRUDER" not in buf[0], buf[0]
        os.write(master, b"exit\n")
        assert p.wait(timeout=30) == 0, buf[0]
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
        os.close(slave)
    assert agent.stop() == 0, agent.log()
    assert ctl.stop() == 0, ctl.log()


def test_salloc_passes_a_sigterm_on_and_still_releases(daemon_factory, tmp_path):
    """salloc terminated (its terminal gone): the command gets the signal,
    and the allocation is still released, not left to its time limit."""
    ctl, agent = two_nodes(daemon_factory, tmp_path)
    p = subprocess.Popen([os.path.join(SLURM, "salloc"), "-J", "termed", "sh", "-c",
                          "trap 'echo GOT_TERM; exit 7' TERM; echo UP; while :; do sleep 0.1; done"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
                         env=slurm_env(ctl))
    try:
        assert p.stdout.readline() == "UP\n"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 7 and "GOT_TERM" in out, out + err
    jid = [j for j in jobs(ctl) if j["name"] == "termed"][0]["id"]
    assert job_show(ctl, jid)["state"] == "COMPLETED"
    assert agent.stop() == 0
    assert ctl.stop() == 0

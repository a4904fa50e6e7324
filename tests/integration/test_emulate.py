"""jazarid --emulate-nodes (daemon/emu.c): one process plays many agents
against a real controller. The nodes join with the XML's GPUs, a job array
spreads over them and completes with accounting records, the nodes go down
when the emulator stops; a controller that does not allow emulated nodes
refuses them; bad input gets one line and exit status 2."""
import os
import signal
import subprocess

from conftest import JAZARID, fixture_xml, network_token, wait_for

FAST = ["--heartbeat-interval", "200ms", "--node-timeout", "2s", "--election-timeout", "400ms"]
XML = fixture_xml("hgx-h100-8gpu.xml")  # 8 GPUs


class Emulator:
    def __init__(self, tmp, ctl, n, extra=()):
        self.log_path = os.path.join(str(tmp), "emu.log")
        self.args = [JAZARID, "--emulate-nodes", str(n), "--topology-xml", XML, "--name", "emu",
                     "--controllers", "ctl@127.0.0.1:%d" % ctl.port, "--state-dir", os.path.join(str(tmp), "emu"),
                     "--join-token", network_token()] + FAST + list(extra)
        self.proc = None

    def __enter__(self):
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=subprocess.STDOUT)
        return self

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "no exit 30 s after SIGTERM"
        return self.proc.returncode

    def __exit__(self, *exc):
        self.stop()
        self.logf.close()


def emu_nodes(ctl):
    return {n["name"]: n for n in ctl.jz_json("nodes")["nodes"] if n["name"].startswith("emu-")}


def test_emulated_nodes_run_a_job_array_and_go_down(tmp_path, daemon_factory):
    ctl = daemon_factory(name="ctl", extra=FAST + ["--emulated-nodes", "on"])
    with Emulator(tmp_path, ctl, 50) as emu:
        wait_for(lambda: len([n for n in emu_nodes(ctl).values() if n["state"] == "up"]) == 50, timeout=60,
                 what="50 emulated nodes up")
        nodes = emu_nodes(ctl)
        assert sorted(nodes) == ["emu-%05d" % i for i in range(1, 51)]
        assert all(n["gpus_total"] == 8 and n["gpu_model"] for n in nodes.values()), nodes["emu-00001"]
        # 100 jobs of 4 GPUs: two a node, all at once, each "running" 2 s
        r = ctl.jz("submit", "--array", "1-100", "--gpus", "4", "--", "sleep", "2")
        assert r.returncode == 0, r.stderr
        seen = set()

        def running_spread():
            out = ctl.jz("queue", "--state", "running", "--noheader", "-o", "%N").stdout.split()
            seen.update(out)
            return len(seen) >= 45

        wait_for(running_spread, timeout=60, what="the array running over the emulated nodes")
        assert all(s.startswith("emu-") for s in seen), seen

        def finished():
            jobs = ctl.jz_json("history")["jobs"]
            return len(jobs) == 100 and jobs

        jobs = wait_for(finished, timeout=90, what="100 accounting records")
        assert {j["state"] for j in jobs} == {"COMPLETED"}, [j for j in jobs if j["state"] != "COMPLETED"][:3]
        assert all(j["exit_code"] == 0 and j["gpus"] == 4 and j["elapsed_s"] >= 1.5 for j in jobs), jobs[0]
        assert emu.stop() == 0, emu.log()
    wait_for(lambda: all(n["state"] == "down" for n in emu_nodes(ctl).values()), timeout=30,
             what="the emulated nodes down after the emulator stopped")


def test_a_cut_site_goes_down_and_comes_back(tmp_path, daemon_factory):
    ctl = daemon_factory(name="ctl", extra=FAST + ["--emulated-nodes", "on"])
    with Emulator(tmp_path, ctl, 20, extra=["--emulate-cut", "25"]) as emu:
        wait_for(lambda: len([n for n in emu_nodes(ctl).values() if n["state"] == "up"]) == 20, timeout=60,
                 what="20 emulated nodes up")
        emu.proc.send_signal(signal.SIGUSR1)
        cut = ["emu-%05d" % i for i in range(1, 6)]
        wait_for(lambda: sorted(k for k, n in emu_nodes(ctl).items() if n["state"] == "down") == cut, timeout=30,
                 what="the first 5 nodes down")
        emu.proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: all(n["state"] == "up" for n in emu_nodes(ctl).values()), timeout=30,
                 what="the cut nodes back")


def test_a_controller_refuses_emulated_nodes_unless_allowed(tmp_path, daemon_factory):
    ctl = daemon_factory(name="ctl", extra=FAST)
    with Emulator(tmp_path, ctl, 3) as emu:
        wait_for(lambda: "emulated_nodes" in emu.log(), timeout=30, what="the emulator saying why it is refused")
        assert emu_nodes(ctl) == {}
        assert emu.proc.poll() is None


def test_bad_input_gets_one_line_and_status_2(tmp_path):
    bad_xml = os.path.join(str(tmp_path), "bad.xml")
    with open(bad_xml, "w") as f:
        f.write("<topology><object type=")
    base = ["--controllers", "ctl@127.0.0.1:1", "--state-dir", os.path.join(str(tmp_path), "s")]
    cases = [
        (["--emulate-nodes", "0", "--topology-xml", XML], "--emulate-nodes"),
        (["--emulate-nodes", "100001", "--topology-xml", XML], "1 to 100000"),
        (["--emulate-nodes", "ten", "--topology-xml", XML], "whole number"),
        (["--emulate-nodes", "5", "--topology-xml", bad_xml], "bad.xml"),
        (["--emulate-nodes", "5", "--topology-xml", XML, "--name", "bad name"], "name"),
        (["--emulate-nodes", "5", "--topology-xml", XML, "--name", "x" * 60], "shorter --name"),
        (["--emulate-nodes", "5"], "--topology-xml"),
        (["--emulate-nodes", "5", "--topology-xml", XML, "--emulate-cut", "120"], "percentage"),
    ]
    for args, word in cases:
        r = subprocess.run([JAZARID] + args + base, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and word in lines[0], (args, r.stderr)
    r = subprocess.run([JAZARID, "--emulate-nodes", "5", "--topology-xml", XML, "--name", "emu",
                        "--state-dir", os.path.join(str(tmp_path), "s")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--controllers" in r.stderr, r.stderr

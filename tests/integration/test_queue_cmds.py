"""jz's everyday commands with real daemons: jz queue's filters and
--format, array tasks as ARRAYID_INDEX in jz queue, jz show and jz cancel,
jz cancel by filter, jz show's exit code, and jz nodes' columns."""
import json
import os
import pwd

from conftest import hwloc_xml, wait_for


def submit(d, *args):
    r = d.jz("submit", "--json", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["id"]


def solo(daemon_factory):
    d = daemon_factory(name="solo", xml=hwloc_xml("power8gpudistances.xml"),
                       extra=["--election-timeout", "200ms", "--heartbeat-interval", "100ms"])
    wait_for(lambda: d.jz_json("status")["leader"] == "solo", what="solo to lead")
    wait_for(lambda: d.jz_json("status")["nodes_up"] == 1, what="its node to register")
    return d


def ids(d, *args):
    return [j["job_id"] for j in d.jz_json("queue", *args)["jobs"]]


def running(d, job):
    return wait_for(lambda: (lambda j: j if j["state"] == "RUNNING" else None)(d.jz_json("show", str(job))),
                    what="job %d to run" % job)


def test_queue_filters_format_and_array_tasks(daemon_factory):
    d = solo(daemon_factory)
    me = pwd.getpwuid(os.getuid()).pw_name
    a = submit(d, "--hold", "--name", "alpha", "--", "true")
    b = submit(d, "--name", "beta", "--gpus-per-node", "1", "--time", "10", "--", "sleep", "60")
    r = d.jz("submit", "--json", "--workdir", d.dir, "--hold", "--array", "0-2", "--name", "arr", "--", "true")
    assert r.returncode == 0, r.stderr
    arr = json.loads(r.stdout)["id"]
    running(d, b)
    tasks = ["%d_%d" % (arr, i) for i in range(3)]

    # Array tasks are ARRAYID_INDEX in the id column and in the JSON's job_id.
    assert ids(d) == [str(a), str(b)] + tasks
    assert all(j["id"] == arr + i for i, j in enumerate(d.jz_json("queue", "--name", "arr")["jobs"]))
    table = d.jz("queue").stdout
    assert all(t in table for t in tasks), table

    # --state: names and Slurm's short forms, any case, comma lists.
    assert ids(d, "--state", "R") == [str(b)]
    assert ids(d, "--state", "running") == [str(b)]
    assert ids(d, "-t", "pd") == [str(a)] + tasks
    assert ids(d, "--state", "PD,R") == [str(a), str(b)] + tasks
    assert ids(d, "--state", "CD") == []
    r = d.jz("queue", "--state", "sleeping")
    assert r.returncode == 2 and "--state" in r.stderr
    # --name, --user, --me, --account.
    assert ids(d, "--name", "alpha,beta") == [str(a), str(b)]
    assert ids(d, "--name", "alpha", "--name", "arr") == [str(a)] + tasks
    assert ids(d, "-u", me) == ids(d) == ids(d, "--me")
    assert ids(d, "--user", "nobody-here,nor-here") == []
    assert ids(d, "--me", "--state", "R") == [str(b)]
    assert ids(d, "--account", "no-such-account") == []

    # --format, as squeue -o: widths, right (.) and left justified, headers.
    r = d.jz("queue", "--format", "%.10i|%-6j|%t|%T|%D|%b|%l|%u|%C|%R", "--name", "beta,arr")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "     JOBID|NAME  |ST|STATE|NODES|TRES_PER_NODE|TIME_LIMIT|USER|CPUS|NODELIST(REASON)"
    assert lines[1] == "%10d|beta  |R|RUNNING|1|gpu:1|10:00|%s|1|solo" % (b, me)
    assert lines[2].startswith("%10s|arr   |PD|PENDING|1|N/A|-|%s|1|(" % (tasks[0], me)), lines[2]
    assert len(lines) == 5
    r = d.jz("queue", "-o", "%i %M %N", "--noheader", "--state", "R")
    assert r.returncode == 0 and r.stdout.startswith("%d " % b) and r.stdout.rstrip().endswith(" solo"), r.stdout
    r = d.jz("queue", "--format", "%.3j", "--noheader", "--name", "alpha")
    assert r.stdout == "alp\n"  # a field is cut to its width
    r = d.jz("queue", "--format", "%i %Y")
    assert r.returncode == 2 and "--format" in r.stderr

    # jz show ARRAYID_INDEX.
    t = d.jz_json("show", tasks[1])
    assert t["id"] == arr + 1 and t["job_id"] == tasks[1] and t["array_task_id"] == 1
    r = d.jz("show", tasks[1])
    assert r.returncode == 0 and "array task:  %s" % tasks[1] in r.stdout and "exit code:   -" in r.stdout
    r = d.jz("show", "%d_7" % arr)
    assert r.returncode == 1 and "%d_7 not found" % arr in r.stderr
    r = d.jz("show", "%d_x" % arr)
    assert r.returncode == 2

    # jz cancel ARRAYID_INDEX: that task; the array's id: every task left.
    r = d.jz("cancel", "--json", tasks[1])
    assert r.returncode == 0 and json.loads(r.stdout) == {"cancelled": 1}, r.stderr
    assert d.jz_json("show", str(arr + 1))["state"] == "CANCELLED"
    assert d.jz_json("show", str(arr))["state"] == "PENDING"
    r = d.jz("cancel", "--json", str(arr))
    assert r.returncode == 0 and json.loads(r.stdout) == {"cancelled": 2}, r.stderr
    assert [d.jz_json("show", str(arr + i))["state"] for i in range(3)] == ["CANCELLED"] * 3
    assert ids(d, "--state", "CA") == tasks
    assert ids(d, "--state", "ca", "--all") == tasks

    # jz cancel by filters: every matching job the caller sees.
    r = d.jz("cancel", "--name", "nothing-of-that-name")
    assert r.returncode == 0 and r.stdout == "cancelled 0 jobs\n"
    r = d.jz("cancel", "--state", "PD", "--me")
    assert r.returncode == 0 and r.stdout == "cancelled 1 job\n", r.stderr
    assert d.jz_json("show", str(a))["state"] == "CANCELLED"
    r = d.jz("cancel")
    assert r.returncode == 2
    r = d.jz("cancel", "--json", "-u", me, "--name", "beta")
    assert r.returncode == 0 and json.loads(r.stdout) == {"cancelled": 1}, r.stderr
    assert d.jz_json("queue")["jobs"] == []
    r = d.jz("show", str(b))
    assert "exit code:   -" in r.stdout  # cancelled: no code
    assert d.stop() == 0


def test_show_exit_code_and_nodes_columns(daemon_factory):
    d = solo(daemon_factory)
    failed = submit(d, "--", "sh", "-c", "exit 3")
    d.jz("wait", str(failed), "--timeout", "20")
    r = d.jz("show", str(failed))
    assert r.returncode == 0 and "state:       FAILED" in r.stdout and "exit code:   3\n" in r.stdout, r.stdout
    ok = submit(d, "--", "true")
    assert d.jz("wait", str(ok), "--timeout", "20").returncode == 0
    assert "exit code:   0\n" in d.jz("show", str(ok)).stdout
    assert d.jz_json("show", str(ok))["exit_code"] == 0

    node = d.jz_json("nodes")["nodes"][0]
    assert node["alloc_state"] == "idle" and node["state"] == "up"
    assert node["cpus_total"] > 0 and node["gpus_total"] == 4
    assert "gpu_model" in node and "mem_bytes" in node
    half = submit(d, "--gpus-per-node", "2", "--", "sleep", "60")
    running(d, half)
    node = d.jz_json("nodes")["nodes"][0]
    assert node["alloc_state"] == "mixed" and node["gpus_free"] == 2
    full = submit(d, "--gpus-per-node", "2", "--", "sleep", "60")
    running(d, full)
    assert d.jz_json("nodes")["nodes"][0]["alloc_state"] == "allocated"
    text = d.jz("nodes").stdout.splitlines()
    assert text[0].split() == ["NAME", "SITE", "STATE", "ALLOC", "GPUS", "GPU_MODEL", "CPUS", "MEMORY", "REASON"]
    assert text[1].split()[:5] == ["solo", "local", "up", "allocated", "0/4"] and text[1].split()[-1] == "-"
    # Global options before the command, filters after it.
    r = d.jz("cancel", "--state", "running")
    assert r.returncode == 0 and r.stdout == "cancelled 2 jobs\n", r.stderr
    wait_for(lambda: d.jz_json("nodes")["nodes"][0]["alloc_state"] == "idle", what="the node to be idle")
    assert d.stop() == 0

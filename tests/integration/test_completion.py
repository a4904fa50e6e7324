"""Bash completion (deploy/completion/jz.bash), in a real bash against a
live daemon: commands from `jz help`, each command's options from
`jz CMD --help`, job ids for the commands that take one, node names,
subcommands; nothing for an option's value."""
import os
import shlex
import subprocess

from conftest import JZ, ROOT, run, wait_for

SCRIPT = os.path.join(ROOT, "deploy", "completion", "jz.bash")


def complete(line):
    """COMPREPLY for the line (the cursor at its end), as bash would ask."""
    words = line.split(" ")
    words[0] = JZ
    prog = (". %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\nCOMP_LINE=%s\nCOMP_POINT=${#COMP_LINE}\n_jz\n"
            "printf '%%s\\n' \"${COMPREPLY[@]}\"\n") % (
        shlex.quote(SCRIPT), " ".join(shlex.quote(w) for w in words), len(words) - 1, shlex.quote(line))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(w for w in r.stdout.split("\n") if w)


def commands():
    out = run([JZ, "help"]).stdout
    table = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return sorted(line.split()[0] for line in table.splitlines())


def test_commands_and_options_come_from_jz_itself():
    names = commands()
    assert {"submit", "queue", "show", "cancel", "node", "token"} <= set(names)
    assert complete("jz ") == sorted(names + ["help", "version"])
    assert complete("jz qu") == ["queue"]
    assert complete("jz --socket /nowhere que") == ["queue"]
    # Options, from each command's --help.
    assert complete("jz queue --stat") == ["--state"]
    assert complete("jz submit --gpus-p") == ["--gpus-per-node", "--gpus-per-task"]
    assert complete("jz logs --fo") == ["--follow"]
    assert complete("jz alloc --gpus-per-n") == ["--gpus-per-node"]  # sbatch's options
    assert "--array" not in complete("jz alloc --ar")  # refused by jz alloc: not offered
    assert "bash" in complete("jz alloc -N 2 bas") and "bash" in complete("jz run bas")  # a command
    assert "--socket" in complete("jz wait --")
    # Every option --help lists is offered, and nothing else.
    help_opts = [line.split()[0] for line in run([JZ, "cancel", "--help"]).stdout.split("options:\n")[1].splitlines()]
    assert complete("jz cancel -") == sorted(help_opts)
    # Subcommands.
    assert complete("jz token ") == ["create", "list", "revoke"]
    assert complete("jz token create --u") == ["--user"]
    # The value of an option: not a command or an option.
    assert complete("jz queue --format ") == []
    assert complete("jz queue --state --") == []


def test_files_where_a_path_goes(tmp_path):
    (tmp_path / "train.sbatch").write_text("#!/bin/sh\ntrue\n")
    (tmp_path / "notes").mkdir()
    assert complete("jz submit %s/tr" % tmp_path) == [str(tmp_path / "train.sbatch")]
    assert complete("jz submit --output %s/no" % tmp_path) == [str(tmp_path / "notes")]


def test_job_ids_and_node_names_from_the_daemon(daemon_factory):
    d = daemon_factory(name="gpu-node-7")
    sock = d.socket
    held = d.jz("submit", "--hold", "--parsable", "--", "true")
    assert held.returncode == 0, held.stderr
    done = d.jz("submit", "--parsable", "--", "true")
    assert done.returncode == 0, done.stderr
    held, done = held.stdout.strip(), done.stdout.strip()
    wait_for(lambda: d.jz_json("show", done)["state"] == "COMPLETED", what="the job to end")
    # show, logs and wait: every job the caller may see; cancel and release:
    # those still pending or running.
    assert complete("jz show --socket %s " % sock) == sorted([held, done])
    assert complete("jz logs --socket %s " % sock) == sorted([held, done])
    assert complete("jz cancel --socket %s " % sock) == [held]
    assert complete("jz hold --socket %s " % sock) == [held]
    assert complete("jz requeue --socket %s " % sock) == sorted([held, done])  # ended ones too
    assert complete("jz update %s --q" % held) == ["--qos"]
    assert complete("jz release --socket %s %s" % (sock, held[:1])) == [held]
    # attach: running jobs only.
    assert complete("jz attach --socket %s " % sock) == []
    running = d.jz("submit", "--parsable", "--", "sleep", "60")
    assert running.returncode == 0, running.stderr
    running = running.stdout.strip()
    wait_for(lambda: d.jz_json("show", running)["state"] == "RUNNING", what="the job to run")
    assert complete("jz attach --socket %s " % sock) == [running]
    assert d.jz("cancel", running).returncode == 0
    # node: its name, and the subcommand.
    assert complete("jz node --socket %s " % sock) == ["check", "gpu-node-7", "revoke"]
    assert complete("jz node --socket %s revoke g" % sock) == ["gpu-node-7"]
    assert complete("jz node --socket %s check g" % sock) == ["gpu-node-7"]
    # A daemon that does not answer: nothing, quickly, no error.
    assert complete("jz show --socket %s " % (sock + ".gone")) == []
    assert d.jz("cancel", held).returncode == 0


def test_accounting_values_from_their_lists():
    assert complete("jz usage --by ") == ["account", "day", "model", "site", "user"]
    assert complete("jz usage --by mo") == ["model"]
    assert complete("jz history --state C") == ["CANCELLED", "COMPLETED"]
    assert complete("jz history --cs") == ["--csv"]
    assert complete("jz invoice --ht") == ["--html"]
    assert complete("jz grant --gpu") == ["--gpu-hours"]

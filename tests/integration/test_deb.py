"""The Debian package (`make deb`): its metadata and contents, then its
whole life on a fresh machine: install, a network of one started from the
package's own unit, a job, an upgrade over itself keeping the admin's
config, a config the daemon cannot read (one line, nothing lost), removal
and purge (nothing of ours left).

The "fresh machine" is this one seen through an overlay: in new mount,
PID, network and UTS namespaces (unshare), a tmpfs holds the upper layer
of an overlayfs whose lower layer is / (one ext4 file system here: /usr,
/var and /etc are on it), with its own /proc, /run and /tmp, /sys and /dev
bound in; every command runs chrooted there (nsenter into the namespaces).
dpkg -i writes only to the upper layer, so jazari is never installed on
this machine, and the network namespace (its own loopback) keeps the
daemon's port 7070 off the machine's. Killing the namespace's first
process ends every process in it and drops every mount. No systemd runs
there, so the unit's ExecStartPre/ExecStart lines are run as written.
Runs as root; skipped without dpkg-deb, unshare, nsenter or overlayfs."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import JAZARID, ROOT, wait_for

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, dpkg -i in the overlay)"),
    pytest.mark.skipif(not all(shutil.which(p) for p in ("dpkg-deb", "dpkg", "unshare", "nsenter", "chroot")),
                       reason="needs dpkg-deb, dpkg, unshare, nsenter and chroot"),
]

BUILD_REL = os.environ.get("JAZARI_BUILD", "build")
DEB_DEADLINE = 600

# Paths the package must hold (dpkg-deb --contents), and only it.
MUST_HOLD = [
    "usr/sbin/jazarid", "usr/lib/jazari/jazarid", "usr/bin/jz",
    "usr/lib/jazari/slurm/sbatch", "usr/lib/jazari/slurm/srun", "usr/lib/jazari/slurm/squeue",
    "lib/systemd/system/jazari-controller.service", "lib/systemd/system/jazari-agent.service",
    "etc/jazari/controller.conf", "etc/jazari/agent.conf", "etc/profile.d/jazari.sh",
    "usr/share/man/man1/jz.1.gz", "usr/share/man/man8/jazarid.8.gz",
    "usr/share/bash-completion/completions/jz",
    "usr/share/doc/jazari/copyright", "usr/share/doc/jazari/changelog.gz",
    "usr/share/doc/jazari/examples/policy.conf.example",
]
CONFFILES = ["/etc/jazari/agent.conf", "/etc/jazari/controller.conf", "/etc/profile.d/jazari.sh"]

SETUP = r"""
set -e
M=$1
mount -t tmpfs -o mode=0700 jazari-deb-test "$M"
mkdir -p "$M/upper" "$M/work" "$M/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$M/upper,workdir=$M/work" "$M/root"
R=$M/root
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=0755 run "$R/run"
mount -t tmpfs -o mode=1777 tmp "$R/tmp"
hostname "$2"
shift 2
for deb; do cp "$deb" "$R/tmp/"; done
ip link set lo up
echo ready
exec sleep 86400
"""


@pytest.fixture(scope="module")
def deb():
    """The package, made (or found up to date) by `make deb`."""
    r = subprocess.run(["make", "--no-print-directory", "BUILD=" + BUILD_REL, "-j1", "deb"], cwd=ROOT,
                       capture_output=True, text=True, timeout=DEB_DEADLINE)
    assert r.returncode == 0, "make deb failed:\n" + r.stdout[-3000:] + r.stderr[-3000:]
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    path = os.path.join(ROOT, BUILD_REL, "jazari_%s_%s.deb" % (version, arch))
    assert os.path.isfile(path), "make deb made no %s" % path
    return {"path": path, "version": version, "arch": arch}


def info_field(deb_path, field):
    r = subprocess.run(["dpkg-deb", "--field", deb_path, field], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_metadata_names_the_version_arch_and_every_library_the_programs_link(deb):
    assert info_field(deb["path"], "Package") == "jazari"
    assert info_field(deb["path"], "Version") == deb["version"]
    assert info_field(deb["path"], "Architecture") == deb["arch"]
    depends = {d.split()[0]: d for d in info_field(deb["path"], "Depends").split(", ")}
    for lib in ("libc6", "libuv1", "libprotobuf-c1", "libhwloc15", "libssl3", "libsqlite3-0"):
        assert lib in depends, "Depends lacks %s: %s" % (lib, depends)
        assert re.fullmatch(r"\S+ \(>= [0-9][^)]*\)", depends[lib]), depends[lib]
    assert any(d.startswith("libraft") for d in depends), depends
    # Every library jazarid needs by name is some Depends' (dpkg -S of ldd's answer).
    jazarid = os.path.join(ROOT, BUILD_REL, "jazarid")
    ldd = subprocess.run(["ldd", jazarid], capture_output=True, text=True, timeout=60).stdout
    for m in re.finditer(r"^\s*(libuv|libhwloc|libraft|libsqlite3)\S* => (\S+)", ldd, re.M):
        owner = subprocess.run(["dpkg", "-S", m.group(2)], capture_output=True, text=True).stdout
        owner = owner or subprocess.run(["dpkg", "-S", os.path.realpath(m.group(2))], capture_output=True,
                                        text=True).stdout
        assert owner.split(":")[0] in depends, (m.group(2), owner, depends)
    scripts = subprocess.run(["dpkg-deb", "--info", deb["path"]], capture_output=True, text=True).stdout
    for name in ("postinst", "prerm", "postrm", "conffiles", "md5sums"):
        assert re.search(r"\b%s\b" % name, scripts), "no %s in:\n%s" % (name, scripts)


def test_contents_are_ours_in_their_places_and_shadow_no_slurm(deb):
    r = subprocess.run(["dpkg-deb", "--contents", deb["path"]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    entries = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 5)
        name = parts[5].split(" -> ")[0]
        entries[name.lstrip("./").rstrip("/")] = parts
    for path in MUST_HOLD:
        assert path in entries, "the package lacks /%s" % path
    for path, parts in entries.items():
        assert parts[1] == "root/root", "/%s is owned by %s" % (path, parts[1])
        assert not parts[0].startswith("-") or "w" not in parts[0][4:], "/%s is writable by others" % path
    # The Slurm front ends are jz, off every default PATH directory.
    assert entries["usr/lib/jazari/slurm/sbatch"][5].endswith("-> ../../../bin/jz")
    for d in ("usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin"):
        for cmd in ("sbatch", "srun", "squeue", "scancel", "sinfo", "salloc"):
            assert "%s/%s" % (d, cmd) not in entries
    # The daemon finds its slurm directory beside its real path.
    assert entries["usr/sbin/jazarid"][5].endswith("-> ../lib/jazari/jazarid")
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb["path"]], capture_output=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["tar", "-x", "-C", tmp], input=conffiles, check=True)
        assert sorted(open(os.path.join(tmp, "conffiles")).read().split()) == CONFFILES
    if shutil.which("lintian"):
        r = subprocess.run(["lintian", "--no-tag-display-limit", deb["path"]], capture_output=True, text=True,
                           timeout=300)
        errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
        assert not errors, "\n".join(errors)


class FreshMachine:
    """This machine through an overlay, in namespaces of its own (see the
    module's docstring). run() runs a shell command chrooted there."""

    def __init__(self, debs):
        self.tag = "jz-deb-%d" % os.getpid()
        self.dir = tempfile.mkdtemp(prefix="jazari-deb-")
        self.root = os.path.join(self.dir, "root")
        self.holder = None
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--net", "--uts", "--fork", "--kill-child", "--propagation",
             "private", "sh", "-c", SETUP, "sh", self.dir, self.tag] + list(debs),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and self.proc.poll() is None and line != "ready\n":
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                line = self.proc.stdout.readline()
        if line != "ready\n":
            self.close()
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            pytest.skip("no overlay over / in a mount namespace here: " + (err.strip() or "no answer in 60 s"))
        # The namespace's first process: the child unshare forked.
        kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split()
        assert len(kids) == 1, kids
        self.holder = int(kids[0])

    def argv(self, cmd):
        return ["nsenter", "-t", str(self.holder), "-m", "-p", "-n", "-u", "--", "chroot", self.root,
                "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root", "LANG=C", "sh", "-c", cmd]

    def run(self, cmd, timeout=120):
        return subprocess.run(self.argv(cmd), capture_output=True, text=True, timeout=timeout)

    def ok(self, cmd, timeout=120):
        r = self.run(cmd, timeout)
        assert r.returncode == 0, "%s: exit %d\n%s%s" % (cmd, r.returncode, r.stdout[-3000:], r.stderr[-3000:])
        return r.stdout

    def exists(self, path):
        return self.run("test -e %s || test -L %s" % (path, path)).returncode == 0

    def close(self):
        # SIGKILL to the namespace's first process ends all of its processes
        # (the daemon, its jobs) and, with the last of them, its mounts.
        if self.holder:
            try:
                os.kill(self.holder, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        # A job killed there leaves its empty control groups in the machine's
        # hierarchy: named after the node (this namespace's host name).
        for d in (os.path.join(r, "jazari") for r in os.scandir("/sys/fs/cgroup") if r.is_dir()):
            for g in (os.scandir(d) if os.path.isdir(d) else ()):
                if self.tag in g.name:
                    try:
                        os.rmdir(g.path)
                    except OSError:
                        pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def older(deb, tmp_path):
    """The same package as an older release whose own controller.conf
    differs: an upgrade from it to this one meets an edited conffile that
    the package changed too."""
    raw = str(tmp_path / "raw")
    subprocess.run(["dpkg-deb", "-R", deb["path"], raw], check=True, timeout=120)
    control = os.path.join(raw, "DEBIAN", "control")
    text = open(control).read().replace("Version: %s\n" % deb["version"], "Version: %s~older\n" % deb["version"])
    open(control, "w").write(text)
    with open(os.path.join(raw, "etc/jazari/controller.conf"), "a") as f:
        f.write("# (as an older release shipped it)\n")
    sums = subprocess.run(["md5sum", "etc/jazari/controller.conf"], cwd=raw, capture_output=True, text=True,
                          check=True).stdout
    md5 = os.path.join(raw, "DEBIAN", "md5sums")
    lines = [line for line in open(md5) if not line.rstrip().endswith(" etc/jazari/controller.conf")]
    open(md5, "w").write("".join(lines) + sums)
    path = str(tmp_path / ("jazari_%s~older_%s.deb" % (deb["version"], deb["arch"])))
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", raw, path], check=True, capture_output=True,
                   timeout=300)
    return path


@pytest.fixture
def fresh(deb, older):
    m = FreshMachine([deb["path"], older])
    try:
        yield m
    finally:
        m.close()


def unit_lines(fresh, unit, key):
    """The commands of a unit's key (ExecStart...), as systemd would run them."""
    text = fresh.ok("cat /lib/systemd/system/%s" % unit)
    return [line.split("=", 1)[1].lstrip("-@+!:") for line in text.splitlines() if line.startswith(key + "=")]


def state_of(fresh):
    """Every file in /var/lib/jazari with its checksum."""
    return fresh.ok("cd /var/lib/jazari && find . -type f ! -name '*.sock' -exec md5sum {} + | sort")


@pytest.mark.timeout(600)
def test_fresh_machine_installs_runs_upgrades_refuses_a_bad_config_and_purges_clean(deb, older, fresh):
    host_has_it = subprocess.run(["dpkg", "-s", "jazari"], capture_output=True).returncode == 0

    # --- install: files in place, state made, nothing started ------------------------------
    assert not fresh.exists("/usr/sbin/jazarid"), "jazari is already installed on this machine"
    new = "/tmp/" + os.path.basename(deb["path"])
    old = "/tmp/" + os.path.basename(older)
    fresh.ok("dpkg -i " + old)
    assert "install ok installed" in fresh.ok("dpkg-query -W -f '${Status}' jazari")
    assert fresh.ok("dpkg-query -W -f '${Version}' jazari") == deb["version"] + "~older"
    assert deb["version"] in fresh.ok("jz --version; jazarid --version")
    assert fresh.ok("stat -c %a /var/lib/jazari").strip() == "711"
    assert "jazarid" not in fresh.ok("ps -e -o comm="), "the install started a daemon"
    fresh.ok("dpkg --verify jazari")
    if fresh.run("command -v systemd-analyze").returncode == 0:
        r = fresh.run("systemd-analyze verify --man=no /lib/systemd/system/jazari-controller.service "
                      "/lib/systemd/system/jazari-agent.service")
        ours = [line for line in (r.stdout + r.stderr).splitlines() if "jazari-" in line]
        assert not ours, "\n".join(ours)

    # --- a network of one from the unit's own command lines ---------------------------------
    pre = unit_lines(fresh, "jazari-controller.service", "ExecStartPre")
    start = unit_lines(fresh, "jazari-controller.service", "ExecStart")
    assert pre == ["/usr/sbin/jazarid --check-config --config /etc/jazari/controller.conf"], pre
    assert len(start) == 1 and start[0].startswith("/usr/sbin/jazarid "), start
    fresh.ok(pre[0])
    log_path = os.path.join(fresh.dir, "daemon.log")  # on this side of the overlay: removed with it
    logf = open(log_path, "w")
    daemon = subprocess.Popen(fresh.argv("echo $$ > /run/jazarid.pid; exec " + start[0]), stdout=logf,
                              stderr=subprocess.STDOUT)
    try:
        def log():
            return open(log_path).read()[-4000:]

        def up():
            assert daemon.poll() is None, "jazarid exited with %s:\n%s" % (daemon.returncode, log())
            r = fresh.run("jz status --json")
            return r.returncode == 0 and json.loads(r.stdout).get("nodes_up") == 1
        wait_for(up, timeout=60, what="the packaged daemon to serve a network of one")

        # A user's login shell finds the daemon's socket through the profile snippet.
        assert fresh.ok(". /etc/profile.d/jazari.sh; echo $JAZARI_SOCKET").strip() == "/var/lib/jazari/jazarid.sock"
        fresh.ok("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c '. /etc/profile.d/jazari.sh; jz ping'")

        # A job by the packaged jz, which finds the packaged srun on its PATH.
        out = fresh.ok("jz submit --json --workdir /tmp --output /tmp/job.out -- "
                       "sh -c 'echo hello from the package; command -v srun'")
        jid = json.loads(out)["id"]

        def ended():
            r = fresh.run("jz show --json %s" % jid)
            state = json.loads(r.stdout)["state"] if r.returncode == 0 else "PENDING"
            return state not in ("PENDING", "RUNNING") and state
        assert wait_for(ended, timeout=60, what="the job to end") == "COMPLETED", fresh.run(
            "jz show %s; cat /tmp/job.out" % jid).stdout + log()
        assert fresh.ok("cat /tmp/job.out").split() == ["hello", "from", "the", "package",
                                                         "/usr/lib/jazari/slurm/srun"]

        # --- the upgrade keeps the admin's edit of a conffile the package changed too ------
        # (unattended, as apt -o Dpkg::Options::=--force-confold does)
        fresh.ok("sed -i 's/^log_level = info/log_level = debug  # the admin said so/' "
                 "/etc/jazari/controller.conf")
        r = fresh.run("dpkg -i --force-confdef --force-confold %s </dev/null" % new)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "jazari:" not in r.stderr, r.stderr
        assert fresh.ok("dpkg-query -W -f '${Version}' jazari") == deb["version"]
        conf = fresh.ok("cat /etc/jazari/controller.conf")
        assert "# the admin said so" in conf and "older release" in conf, conf
        assert "older release" not in fresh.ok("cat /etc/jazari/controller.conf.dpkg-dist")
        fresh.ok("jz ping")  # the running daemon was left alone (no systemd here to restart it)
        # ... and over itself: the edited conffile is kept without a question.
        r = fresh.run("dpkg -i %s </dev/null" % new)
        assert r.returncode == 0, r.stdout + r.stderr
        assert fresh.ok("cat /etc/jazari/controller.conf") == conf
    finally:
        fresh.run("kill -TERM $(cat /run/jazarid.pid)")
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        logf.close()
    assert daemon.returncode == 0, "jazarid stopped with %s:\n%s" % (daemon.returncode,
                                                                     open(log_path).read()[-4000:])

    # --- a config the new daemon cannot read: one line, nothing lost ------------------------
    state = state_of(fresh)
    assert state.strip(), "the daemon left no state to lose"
    fresh.ok("echo 'bogus_setting = 1' >> /etc/jazari/controller.conf")
    line_no = len(fresh.ok("cat /etc/jazari/controller.conf").splitlines())
    r = fresh.run("dpkg -i %s </dev/null" % new)
    assert r.returncode == 0, r.stdout + r.stderr
    said = [line for line in r.stderr.splitlines() if "controller.conf" in line]
    assert len(said) == 1, r.stderr
    assert "/etc/jazari/controller.conf:%d: unknown setting 'bogus_setting'" % line_no in said[0], said
    assert "jazari-controller" in said[0], said
    r = fresh.run(pre[0])
    assert r.returncode == 2 and r.stderr.count("\n") == 1, (r.returncode, r.stderr)
    assert "/etc/jazari/controller.conf:%d:" % line_no in r.stderr, r.stderr
    r = fresh.run(start[0])  # the daemon itself refuses it the same way, before touching its state
    assert r.returncode == 2 and "/etc/jazari/controller.conf:%d:" % line_no in r.stderr, r.stderr
    assert state_of(fresh) == state, "the state directory changed"
    assert "bogus_setting" in fresh.ok("cat /etc/jazari/controller.conf")

    # --- removal keeps configs and state; purge leaves nothing of ours -----------------------
    fresh.ok("dpkg -r jazari")
    for path in ("/usr/sbin/jazarid", "/usr/bin/jz", "/usr/lib/jazari", "/lib/systemd/system/jazari-agent.service",
                 "/usr/share/man/man8/jazarid.8.gz"):
        assert not fresh.exists(path), "%s is left after dpkg -r" % path
    assert fresh.exists("/etc/jazari/controller.conf") and fresh.exists("/var/lib/jazari")
    assert "config-files" in fresh.ok("dpkg-query -W -f '${Status}' jazari")
    fresh.ok("dpkg -P jazari")
    left = [p for p in ["/" + p for p in MUST_HOLD] + ["/etc/jazari", "/var/lib/jazari", "/usr/lib/jazari",
                                                      "/usr/share/doc/jazari"] if fresh.exists(p)]
    assert not left, "left after dpkg -P: %s" % left
    assert fresh.run("dpkg -s jazari").returncode != 0
    assert "jazarid" not in fresh.ok("ps -e -o comm=")
    # ... and this machine was never changed.
    assert (subprocess.run(["dpkg", "-s", "jazari"], capture_output=True).returncode == 0) == host_has_it
    assert host_has_it or not os.path.exists("/usr/lib/jazari")


def test_check_config_reads_the_policy_file_too_and_says_one_line(tmp_path):
    """The units' ExecStartPre and the postinst rely on it: the settings
    and the policy file they name, checked without starting anything."""
    policy = tmp_path / "policy.conf"
    policy.write_text("weight age 1000\nqos normal priority=0\nfrobnicate everything\n")
    conf = tmp_path / "jazarid.conf"
    conf.write_text("site = here\nstate_dir = %s\npolicy = %s\n" % (tmp_path / "state", policy))
    r = subprocess.run([JAZARID, "--check-config", "--config", str(conf)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert "%s:3" % policy in r.stderr, r.stderr
    assert not (tmp_path / "state").exists(), "checking made the state directory"
    policy.write_text("weight age 1000\nqos normal priority=0\n")
    r = subprocess.run([JAZARID, "--check-config", "--config", str(conf)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == "jazarid: settings good (%s)\n" % conf, (r.stdout, r.stderr)
    assert not (tmp_path / "state").exists(), "checking made the state directory"

"""A throw-away Slurm on loopback for the benchmarks that compare against it:
Debian's munged, slurmctld and slurmd, started in a temporary directory with a
configuration of their own (nothing in /etc/slurm is read or changed) and
stopped at the end, process group by process group.

    procs = []
    try:
        env = start_slurm(tmp, procs)                 # held jobs only (vs_slurm.py)
        env = start_slurm(tmp, procs, tuning=RUN)     # jobs that run (exec_vs_slurm.py)
        ...
    finally:
        stop(procs)

Needs root: munged runs as the munge user, slurmd as root."""
import os
import pwd
import signal
import socket
import subprocess
import sys
import time


def port():
    """A loopback port free right now (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(cond, timeout, what, prog="vs_slurm"):
    """Polls cond() until true, or exits with a message past the deadline."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    sys.exit("%s: timed out waiting for %s" % (prog, what))


# The settings a Slurm admin would use for a high-throughput site
# (https://slurm.schedmd.com/high_throughput.html), on top of the common
# configuration below, for benchmarks where jobs actually run:
#  * SchedulerType=sched/builtin (passed by the caller): plain FIFO, which is
#    what Jazari does today (first come, first served); no backfill thread
#    competing for locks.
#  * SelectTypeParameters=CR_Core: cores are the consumable resource, memory
#    is not (Jazari does not account memory either). The cons_tres default,
#    CR_Core_Memory, with no RealMemory configured gives every job the whole
#    node's memory and so runs one job at a time whatever the CPU count.
#  * SchedulerParameters: no `defer`; batch_sched_delay=0, so the scheduler
#    never postpones batch jobs (default 3 s); default_queue_depth large
#    enough to look at the whole queue each pass. sched_min_interval is left
#    at its default of 2 us (22.05 refuses sched_min_interval=0: "Invalid
#    SchedulerParameters interval: 0"). Slurm never starts a batch job inside the
#    sbatch RPC (a submit only tests the job); its scheduler runs from the
#    controller's background loop about once a second (seen in its log at
#    debug level), and that tick dominates its submit-to-start latency.
#  * Logging at `error` for both daemons, jobacct_gather/none, no accounting
#    and no job-completion log: nothing per job but running it.
#  * EpilogMsgTime=0 (no spreading of epilog-complete messages, meant for
#    thousands of nodes), no prolog or epilog, KillWait=1.
#  * MinJobAge stays 300 s, so finished jobs remain visible to
#    `squeue -t all` for the check that every one of them COMPLETED.
RUN = """SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,default_queue_depth=10000
SlurmctldDebug=error
SlurmdDebug=error
JobAcctGatherType=jobacct_gather/none
EpilogMsgTime=0
KillWait=1
"""


# Jobs confined the way Jazari confines them (a cgroup per job with its CPUs
# and memory, CPU binding): Slurm's own cgroup plugins, cgroup v1 as mounted
# here. Slurm makes /sys/fs/cgroup/<controller>/slurm_<node> for them;
# remove_cgroups() takes away those it left, empty, at the end.
CGROUP = {"proctrack": "proctrack/cgroup", "task": "task/cgroup,task/affinity",
          "cgroup.conf": "CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n"
                         "ConstrainCores=yes\nConstrainRAMSpace=no\n"}


def start_slurm(tmp, procs, cpus=None, tuning="", scheduler="sched/backfill", partition="", cgroup=False):
    """Starts munged, slurmctld and slurmd under tmp; appends their Popen
    objects to procs (each the leader of its own process group) and returns
    the environment (SLURM_CONF) for the Slurm clients. cpus defaults to this
    machine's CPU count; tuning is extra slurm.conf lines; partition extra
    words on the partition line; cgroup: jobs in cgroups (CGROUP) rather
    than proctrack/linuxproc and task/none."""
    cpus = cpus or os.cpu_count()
    proctrack, task = (CGROUP["proctrack"], CGROUP["task"]) if cgroup else ("proctrack/linuxproc", "task/none")
    if cgroup:
        with open(os.path.join(tmp, "cgroup.conf"), "w") as f:
            f.write(CGROUP["cgroup.conf"])
    munge = pwd.getpwnam("munge")
    os.makedirs("/run/munge", exist_ok=True)
    os.chown("/run/munge", munge.pw_uid, munge.pw_gid)
    if not os.path.exists("/etc/munge/munge.key"):
        subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
    mdir = os.path.join(tmp, "munge")
    os.makedirs(mdir)
    os.chown(mdir, munge.pw_uid, munge.pw_gid)
    sock = os.path.join(mdir, "munge.sock")
    procs.append(subprocess.Popen(["runuser", "-u", "munge", "--", "munged", "-F", "--socket", sock,
                                   "--pid-file", os.path.join(mdir, "munged.pid"), "--force"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    wait(lambda: os.path.exists(sock), 10, "munged")
    ctl, node = port(), port()
    conf = os.path.join(tmp, "slurm.conf")
    with open(conf, "w") as f:
        f.write("""ClusterName=jzbench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
AuthType=auth/munge
AuthInfo=socket=%s
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd.pid
ProctrackType=%s
TaskPlugin=%s
SchedulerType=%s
SelectType=select/cons_tres
ReturnToService=2
MaxJobCount=1000000
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile=%s/slurmctld.log
SlurmdLogFile=%s/slurmd.log
%sNodeName=jzbench NodeAddr=127.0.0.1 CPUs=%d State=UNKNOWN
PartitionName=bench Nodes=jzbench Default=YES MaxTime=INFINITE State=UP%s
""" % (ctl, node, sock, tmp, tmp, tmp, tmp, proctrack, task, scheduler, tmp, tmp, tuning, cpus,
       " " + partition if partition else ""))
    for d in ("state", "spool"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    env = dict(os.environ, SLURM_CONF=conf)
    procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", conf], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    procs.append(subprocess.Popen(["slurmd", "-D", "-N", "jzbench", "-f", conf], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    wait(lambda: subprocess.run(["sinfo", "-h"], env=env, capture_output=True).returncode == 0, 30, "slurmctld")
    return env


def slurm_cgroups():
    """The cgroup directories a Slurm node named jzbench would use."""
    return [os.path.join("/sys/fs/cgroup", c, "slurm_jzbench") for c in sorted(os.listdir("/sys/fs/cgroup"))
            if os.path.isdir(os.path.join("/sys/fs/cgroup", c, "slurm_jzbench"))]


def remove_cgroups(before):
    """Removes, deepest first, the empty cgroup directories under each
    slurm_jzbench that did not exist before (the list slurm_cgroups() gave
    then). A directory still holding a process stays."""
    for top in slurm_cgroups():
        if top in before:
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(d)
            except OSError:
                pass


def slurm_node_idle(env):
    """True once the node has registered with slurmctld and can take jobs."""
    r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() in ("idle", "mixed", "allocated")


def stop(procs, timeout=20):
    """SIGTERM to each process group (latest first), then SIGKILL to those
    still there after the deadline. Only the groups of procs are signalled."""
    def signal_group(p, sig):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
    for p in reversed(procs):
        if p.poll() is None:
            signal_group(p, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left in the group (a helper that outlived its leader,
        # or the leader itself) is killed.
        signal_group(p, signal.SIGKILL)
        if p.poll() is None:
            p.wait()

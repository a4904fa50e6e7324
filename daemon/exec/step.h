/* step.h - the supervisor of a job's part on one node, like slurmstepd.
 *
 * The daemon writes the part's StepSpec to DIR/spec and starts
 * `jazarid step DIR` in a session of its own. The supervisor outlives the
 * daemon: it starts the part's tasks (as the job's user, each in its own
 * process group, in the job's cgroup, bound to its CPUs), enforces the time
 * limit (the warning signal, then TERM, then KILL after the grace), and
 * when every task is gone kills what they left behind and writes DIR/end.
 * A restarted daemon finds its running parts by DIR/pid.
 *
 * Signals to the supervisor: SIGTERM stops the part (TERM to the tasks,
 * KILL after the grace); SIGUSR1 kills it at once. The daemon creates
 * DIR/stop first: a SIGTERM without it comes from the system (a shutdown)
 * and the part ends lost, to be requeued. A preemption writes "preempt SIG
 * GRACE" in DIR/stop: the tasks get SIG, then KILL GRACE seconds later. */
#ifndef JZ_STEP_H
#define JZ_STEP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The files of a part's directory. */
#define STEP_SPEC "spec"   /* written by the daemon: an encoded StepSpec */
#define STEP_PID "pid"     /* "PID START BOOT": the supervisor, START from /proc/PID/stat, BOOT the boot id */
#define STEP_TASKS "tasks" /* the tasks' process groups, one per line */
#define STEP_END "end"     /* how the part ended (step_end_write) */
#define STEP_LOG "step.log"  /* the supervisor's own log */
#define STEP_SCRIPT "script" /* a submitted script, owned by the job's user */
#define STEP_CGROUP "cgroup" /* "NAME VERSION" of the part's cgroup (version 0: found), when it has one */
#define STEP_STOP "stop"     /* left by the daemon before it asks the supervisor to stop */
#define STEP_LIMIT                                                                                           \
    "limit"                /* the job's time limit now, in seconds (jz update --time): the daemon writes     \
                              it, then sends SIGUSR2 */
#define STEP_INPUT "input" /* srun --pty: a FIFO of keys for the task's terminal (pty.h) */
#define STEP_SPEC_MAX (8u << 20)

/* How a part ended. exit_code: the first failing task's status, or 128 +
 * its signal; 127 when it could not start. */
typedef struct step_end {
    int exit_code;
    bool failed_to_start; /* never ran: reason says why */
    bool timed_out;       /* stopped at its time limit */
    bool cancelled;       /* stopped on request */
    bool lost;            /* the node lost it: its supervisor vanished, or the system stopped it */
    bool preempted;       /* stopped because it was preempted (not written to DIR/end) */
    bool no_account;      /* never started: the job's user has no account on this node */
    char reason[512];
    /* What the part used (the leader's PartUsage). The supervisor measures
     * its CPU time and peak memory: its cgroup's (cg_usage_read) where it
     * has one of its own, else getrusage(RUSAGE_CHILDREN) of its reaped
     * tasks (ru_maxrss: the largest task's, not their sum). A step's part
     * runs in its job's group: its figures are its tasks', which the job's
     * own part on the node counts too. */
    uint64_t cpu_ms, max_rss_bytes;
    /* The daemon adds its GPUs' (usage.c; never in DIR/end). */
    uint64_t energy_mj;
    uint32_t gpu_util_pct;
    bool has_gpu_util;
    bool gpu_measured; /* the three above are final */
} step_end;

/* The supervisor's process: returns its exit status. */
int step_main(const char *dir);

/* DIR/end, written atomically (a temporary file renamed over it). 0 or -1. */
int step_end_write(const char *dir, const step_end *e);
/* Reads DIR/end: 0, or -1 when there is none (yet) or it is unreadable. */
int step_end_read(const char *dir, step_end *e);
/* The start time of process pid (clock ticks since boot), 0 when none:
 * with the pid, it names one process across pid reuse. */
unsigned long long step_proc_start(pid_t pid);
/* "PID START BOOT\n" for DIR/pid. */
void step_pid_line(pid_t pid, char *out, size_t len);
/* The supervisor recorded in DIR/pid, if it still runs: its pid, else 0. */
pid_t step_alive(const char *dir);
/* Kills the process groups listed in DIR/tasks and what is left in the
 * part's cgroup, and removes the cgroup (a part whose supervisor vanished).
 * Returns how many groups were signalled. */
int step_kill_tasks(const char *dir);

#endif

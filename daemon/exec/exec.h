/* exec.h - the parts of jobs on this node, each run by its own supervisor
 * (`jazarid step DIR`, node/step.h) in <spool>/<id>.<attempt>/, a step's
 * in <spool>/<id>.<attempt>.<step id + 1>/.
 *
 * The supervisors outlive the daemon: a restarted daemon adopts the parts
 * it finds in the spool (running, or ended while it was away) and reports
 * them as usual. A part whose supervisor vanished without writing its end
 * is lost: its tasks are killed and it ends as NODE_FAIL. A part's record
 * stays after its end (exec_forget removes it), so that a stale view of
 * the state can never start the same run twice. */
#ifndef JZ_EXEC_H
#define JZ_EXEC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "jazari.pb-c.h"
#include "step.h"

typedef struct exec exec;

#define EXEC_MAX_GPUS 64 /* of one part (HEALTH_MAX_GPUS) */

/* One GPU's counters at a part's start (usage.c). */
typedef struct exec_gpu_base {
    uint32_t gpu; /* the topology's index */
    bool has_energy;
    uint64_t energy_mj, util_sum, util_n;
} exec_gpu_base;

typedef struct exec_part {
    uint64_t id;
    uint32_t attempt;
    uint32_t step;     /* 0: the job's own part; else a step's, its id + 1 */
    bool running;      /* its supervisor runs */
    step_end end;      /* once !running */
    uint64_t ended_ms; /* uv_now when it ended */
    /* Kept for run.c: the state's index when the part was started, and
     * whether the leader has committed its end. */
    uint64_t start_index;
    bool reported, in_flight, stop_sent;
    bool fenced; /* stopped because no leader was heard for lost_after: its end says lost */
    uint64_t limit_s; /* the time limit its supervisor was last told (0: none) */
    bool limit_known; /* started by this daemon (an adopted one's supervisor may be of an older release,
                         which a SIGUSR2 would kill: it is never signalled) */
    /* Kept for usage.c: its GPUs' counters when it started (none: an
     * adopted part, a step's, a CPU job's). */
    uint32_t n_gpu_base;
    exec_gpu_base gpu_base[EXEC_MAX_GPUS];
    /* private */
    exec *x;
    char dir[PATH_MAX];
    pid_t pid;    /* the supervisor */
    bool child;   /* started by this daemon: proc watches it */
    bool end_set; /* end is known already (it could not start) */
    uv_process_t proc;
    uv_timer_t later; /* a failure to start, reported from the loop */
    struct exec_part *prev, *next;
} exec_part;

/* Called from the loop when a part ends (its end is in p->end). */
typedef void (*exec_end_cb)(void *arg, exec_part *p);

struct exec {
    uv_loop_t *loop;
    char spool[PATH_MAX];
    char exe[PATH_MAX]; /* this program, run as `exe step DIR` */
    exec_end_cb cb;
    void *arg;
    exec_part *parts;
    size_t n_parts;
    int open; /* handles not yet closed */
    bool closing;
    void (*close_cb)(exec *x);
};

/* Adopts the parts in spool (<state_dir>/jobs). Returns 0, or -1 with err. */
int exec_init(exec *x, uv_loop_t *loop, const char *spool, exec_end_cb cb, void *arg, char *err,
              size_t errlen);
exec_part *exec_find(exec *x, uint64_t id, uint32_t attempt, uint32_t step);
/* Starts a part described by spec (its job, this node's rank, CPUs...).
 * Never fails outright: a part that cannot start ends at once, through
 * the callback, with a reason. */
exec_part *exec_start(exec *x, const Jazari__StepSpec *spec);
/* Records a part that will not run (preempted before it started): it
 * ends at once, cancelled, through the callback. */
exec_part *exec_skip(exec *x, uint64_t id, uint32_t attempt, const char *why);
/* Records a part that cannot run here because its user has no account on
 * this node: it ends at once, not started (no_account), through the
 * callback. */
exec_part *exec_no_account(exec *x, uint64_t id, uint32_t attempt, const char *why);
/* Stops a running part: TERM to its tasks, KILL after the grace (now:
 * KILL at once). Its end follows through the callback. */
void exec_stop(exec *x, exec_part *p, bool now);
/* Preempts a running part: its tasks get sig, then KILL grace_s later. */
void exec_preempt(exec *x, exec_part *p, int sig, uint32_t grace_s);
/* The job's time limit is now limit_s (jz update --time): written where
 * the part's supervisor reads it, which is then woken (SIGUSR2). A part
 * this daemon adopted is left as it is (said in the log). */
void exec_set_limit(exec *x, exec_part *p, uint64_t limit_s);
/* Removes an ended part's record. */
void exec_forget(exec *x, exec_part *p);
/* Once a tick: notices adopted parts whose supervisor ended. */
void exec_poll(exec *x);
/* Lets go of every part (their supervisors go on) and closes the handles;
 * cb once they are closed. */
void exec_close(exec *x, void (*cb)(exec *x));

#endif

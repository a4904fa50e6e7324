/* fstep.h - job steps in the replicated state: `srun` (jz run) inside a
 * running job launches a step over its allocation, as Slurm's job steps.
 *
 * A step runs a number of tasks on a run of the job's nodes (from
 * `relative`, `nodes` of them), spread in blocks (the first nodes get one
 * more when they do not divide evenly), each task with its CPUs inside the
 * job's on that node and the job's GPUs there (or some, or none). Steps
 * share the allocation: a step never gets more than the job holds on a
 * node, and several steps may run at once (Slurm's --overlap).
 *
 * Every node of the step reports its part's end (an EndCmd with the step);
 * the step ends with its last part: COMPLETED when every part completed,
 * else as the first that did not, with the first non-zero exit code. A job
 * keeps FSTEP_MAX steps: the running ones and the latest ended (an ended
 * step forgets its environment). A requeue starts again from step 0.
 *
 * Pure: no I/O. The leader checks a request with fstep_validate before it
 * logs it, and every replica checks it again when it applies it. */
#ifndef JZ_FSTEP_H
#define JZ_FSTEP_H

#include <stdbool.h>
#include <stdint.h>

#include "fsm.h"

#define FSTEP_MAX 64                /* steps a job keeps, running or ended */
#define FSTEP_SPEC_MAX (256u << 10) /* bytes of one step's request (its environment included) */
#define FSTEP_ARGV_MAX 4096
#define FSTEP_TASKS_MAX 65536
#define FSTEP_PTY_SIDE_MAX 10000 /* --pty: rows or columns of its window */

/* Whether request s may run inside j now. 0, or -1 with one line in err
 * naming what does not fit and what the job has. */
int fstep_validate(const fsm_job *j, const Jazari__StepRequestSpec *s, char *err, size_t errlen);

/* Applies a launch: j's next step, running from now. Returns it (owned by
 * j), or NULL when s does not fit (fstep_validate) or the job keeps
 * FSTEP_MAX steps that all still run. */
const Jazari__JobStep *fstep_launch(fsm_job *j, int64_t now, const Jazari__StepRequestSpec *s);

/* Step id's part on node ended (state, exit code, reason). Returns whether
 * it changed anything (a part ends once). */
bool fstep_part_end(fsm_job *j, int64_t now, uint32_t id, const char *node, Jazari__JobState state,
                    int32_t exit_code, const char *reason);

/* Step id, running, is cancelled (jz cancel JOB.STEP): it ends CANCELLED
 * now, with reason ("" : "cancelled"); its nodes stop its parts, whose
 * reports then change nothing. Returns whether it was running. */
bool fstep_cancel(fsm_job *j, int64_t now, uint32_t id, const char *reason);

/* The job's run ended: its running steps end CANCELLED. */
void fstep_run_ended(fsm_job *j, int64_t now);
/* A new attempt (or the job's end of life): the steps are forgotten. */
void fstep_clear(fsm_job *j);
/* Takes copies of a message's steps (a snapshot's job). */
void fstep_copy_in(fsm_job *j, Jazari__JobStep *const *steps, size_t n, uint32_t started);

/* A step by id, or NULL. */
const Jazari__JobStep *fstep_find(const fsm_job *j, uint32_t id);

#endif

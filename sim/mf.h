/* mf.h - the simulator under the leader's own scheduling pass (pass.h):
 * multifactor priority with fair share among the trace's groups and
 * users (SWF fields 12 and 13: groups are accounts, each with an equal
 * share, as a policy file without accounts gives), usage charged when a
 * job ends and decayed by the half-life in the same integers the replicated
 * state uses, running jobs counted as they run.
 *
 * The simulator keeps its plan (nodes, running jobs, its GPU bookkeeping);
 * each event, the pending and running jobs become the pass's view, and
 * what the pass starts is started in the plan. */
#ifndef JZ_SIM_MF_H
#define JZ_SIM_MF_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/sched/pass.h"
#include "../lib/sched/plan.h"
#include "../lib/sched/policy.h"

typedef struct mf_entry {
    plan_job *pj;
    char user[16], account[16]; /* "u<id>", "g<id>" */
    bool running;
} mf_entry;

typedef struct mf_usage {
    char user[16], account[16];
    uint64_t gpu_ms; /* slot-milliseconds, decayed to as_of_ms */
    int64_t as_of_ms;
} mf_usage;

typedef struct mf {
    plan_policy policy;
    pass_state st;
    pol pol;
    mf_entry *active; /* pending and running, in submit order */
    size_t n_active, cap;
    mf_usage *usage;
    size_t n_usage, usage_cap;
} mf;

void mf_init(mf *m, const plan_policy *policy);
void mf_free(mf *m);
/* A job arrives; user and group as the trace says (0: unknown). */
void mf_submit(mf *m, plan_job *pj, uint32_t user, uint32_t group);
/* The pass at now: what it starts is added to p's running jobs (where
 * set, the plan's) and reported to started, as plan_pass does. Returns
 * how many started. */
size_t mf_pass(mf *m, plan *p, int64_t now, void (*started)(void *arg, plan_job *j), void *arg);
/* A running job ended at now (before plan_end): its user is charged. */
void mf_ended(mf *m, const plan_job *pj, int64_t now);

#endif

/* sched.h - the scheduler: given the replicated state, which pending jobs
 * start now, and where. Pure: no I/O and no clock; the leader calls it and
 * commits its decisions as StartCmd entries.
 *
 * The decisions are the core's (plan.h, the same code the simulator runs):
 * the policy's order, a sticky reservation for the head, EASY backfilling
 * with the jobs' time limits (a job without one counts as running for a
 * year: it is never backfilled), best-fit nodes. Here they become GPU
 * indexes (the best-connected free set, gpuset.h) and CPUs near the
 * job's first GPU. */
#ifndef JZ_SCHED_H
#define JZ_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "../raft/fsm.h"
#include "plan.h"
#include "policy.h"
#include "prio.h"

#define SCHED_MAX_GPUS_PER_NODE 1024

typedef struct sched_part {
    size_t node; /* index into fsm.nodes */
    uint32_t n_gpus;
    uint32_t *gpus; /* GPU indexes on that node */
    char *cpus;     /* the node's CPUs, list format; "" when it does not say */
} sched_part;

typedef struct sched_start {
    uint64_t id;
    uint32_t master_port; /* filled by the leader (run.c) */
    size_t n_parts;
    sched_part *parts;
} sched_start;

/* A running job to preempt (PreemptCmd). */
typedef struct sched_preempt {
    uint64_t id;
    uint32_t attempt;
    uint32_t grace_s;
    char reason[160];
} sched_preempt;

#define SCHED_MAX_PREEMPTORS 8 /* blocked jobs that may preempt, per pass */

typedef struct sched_plan {
    sched_start *starts;
    size_t n_starts;
    sched_preempt *preempts;
    size_t n_preempts;
    uint64_t blocked; /* the head that waits for resources (its reservation), or 0 */
} sched_plan;

/* What a leader keeps between passes: the policy and the reserved head. */
typedef struct sched_state {
    plan_policy policy;
    const pol *pol; /* accounts, QoS, weights; NULL: the defaults */
    uint64_t head;  /* the job holding the reservation, or 0 */
    int64_t shadow;
    uint64_t preemptor; /* the head that preempted for what it waits (sticky under multifactor too) */
} sched_state;

/* Decides up to max starts at now_ms (wall clock). Returns 0 and fills
 * plan (free it with sched_plan_free); plan->blocked is the reserved head. */
int sched_pass(const fsm *f, sched_state *st, int64_t now_ms, size_t max, sched_plan *plan);
void sched_plan_free(sched_plan *plan);

/* Priorities as the leader computes them at now_ms: the fair-share tree
 * of the usage in f (decayed, running jobs included) and every pending
 * job's user. */
typedef struct sched_prio {
    const pol *pol;
    prio_tree *tree;
    int64_t now_ms;
    uint32_t net_gpus, net_nodes;
} sched_prio;

void sched_prio_init(sched_prio *sp, const fsm *f, const pol *p, int64_t now_ms);
void sched_prio_free(sched_prio *sp);
/* A pending job's priority and its factors (f may be NULL). */
uint32_t sched_prio_job(sched_prio *sp, const fsm_job *j, prio_factors *f);
/* The index of a QoS by name (unknown or "": normal). */
int sched_qos_of(const pol *p, const char *qos);
/* Whether a job of that reservation ("": none) waits for it (not begun,
 * or gone): its reason then, else NULL. */
const char *sched_resv_wait(const fsm *f, const char *reservation, int64_t now_ms);
/* The GPUs each user's running jobs hold in each QoS with a
 * max_gpus_per_user (counted once, for a pass or a listing). */
typedef struct sched_limits {
    const pol *pol;
    struct sched_held *held;
    size_t n;
} sched_limits;

void sched_limits_init(sched_limits *l, const fsm *f, const pol *p);
/* Whether one more job of user in QoS q with `gpus` GPUs stays within the
 * QoS's bound; with take, it is counted as running. */
bool sched_limits_take(sched_limits *l, const char *user, int q, uint64_t gpus, bool take);
void sched_limits_free(sched_limits *l);

#endif

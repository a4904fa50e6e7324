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

typedef struct sched_plan {
    sched_start *starts;
    size_t n_starts;
    uint64_t blocked; /* the head that waits for resources (its reservation), or 0 */
} sched_plan;

/* What a leader keeps between passes: the policy and the reserved head. */
typedef struct sched_state {
    plan_policy policy;
    uint64_t head; /* the job holding the reservation, or 0 */
    int64_t shadow;
} sched_state;

/* Decides up to max starts at now_ms (wall clock). Returns 0 and fills
 * plan (free it with sched_plan_free); plan->blocked is the reserved head. */
int sched_pass(const fsm *f, sched_state *st, int64_t now_ms, size_t max, sched_plan *plan);
void sched_plan_free(sched_plan *plan);

#endif

/* sched.h - the scheduler: given the replicated state, which pending jobs
 * start now, and where. Pure: no I/O and no clock; the leader calls it and
 * commits its decisions as StartCmd entries.
 *
 * This release: first come, first served (the oldest pending job that does
 * not fit blocks the ones behind it), first fit over the nodes that are up,
 * the lowest free GPU indexes of each node. Topology-aware placement,
 * priorities and backfill replace it in the scheduler milestone. */
#ifndef JZ_SCHED_H
#define JZ_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "../raft/fsm.h"

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
    uint64_t blocked; /* the job at the head that waits for resources, or 0 */
} sched_plan;

/* Decides up to max starts. Returns 0 and fills plan (free it with
 * sched_plan_free). */
int sched_pass(const fsm *f, size_t max, sched_plan *plan);
void sched_plan_free(sched_plan *plan);

#endif

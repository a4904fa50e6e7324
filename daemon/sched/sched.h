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

#include "../../common/strmap.h"
#include "../../lib/sched/pass.h"
#include "../../lib/sched/plan.h"
#include "../../lib/sched/policy.h"
#include "../../lib/sched/prio.h"
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
    const char *partition; /* the partition it starts in (the policy's name), or NULL */
    uint32_t master_port;  /* filled by the leader (run.c) */
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

/* The index of a QoS by name (unknown or "": normal). */
int sched_qos_of(const pol *p, const char *qos);
/* Whether a job of that reservation ("": none) waits for it (not begun,
 * or gone): its reason then, else NULL. */
const char *sched_resv_wait(const fsm *f, const char *reservation, int64_t now_ms);

/* Which GPUs and CPUs of each node are taken by running jobs. */
typedef struct sched__cpus {
    bool *exists, *taken; /* by OS index, n entries */
    size_t n;
    uint32_t free; /* UINT32_MAX: the node's CPUs are unknown, not counted */
} sched__cpus;

typedef struct sched__usage {
    bool *taken; /* per node: n_gpus flags, node i at offset[i] */
    size_t *offset;
    uint32_t *free;
    sched__cpus *cpus;
} sched__usage;

/* The nodes each narrowed kind of job may go to (model, memory, labels,
 * and a user some nodes lack), found by their key: a queue may hold
 * thousands of kinds, looked up once per pending job. */
typedef struct sched__masks {
    struct {
        char *key; /* the fields joined: the index's */
        bool *allowed;
        size_t count; /* nodes allowed */
    } * m;
    size_t n, cap;
    strmap index; /* key -> m's index */
    buf scratch;  /* the key being looked up */
} sched__masks;

/* Sites and (site, group) pairs as plan tags. */
typedef struct sched__tags {
    strmap sites, groups;
    buf pairs; /* "site\x1fgroup\0" per node, the groups' keys */
} sched__tags;

/* The state as the pass's view at a time, and what it is made of. */
typedef struct sched_view {
    pass_view v;
    pass_job *jobs;       /* v.jobs */
    const fsm_job **of;   /* the state's job of each */
    uint32_t **where;     /* running jobs' nodes */
    pass_usage *usage;    /* v.usage */
    char **paths;         /* their account/user strings, per f->usage */
    int64_t *resv_end;    /* v.resv_end_s */
    plan_window *windows; /* the nodes' */
    sched__usage u;
    sched__masks masks;
    sched__tags tags;
    /* The policy's round trips between sites, by plan tag (v.rtt_arg);
     * NULL without latency lines. */
    struct sched__rtt {
        const polsite *sites;
        int *index; /* per tag (0..nodes): the site's among the policy's, -1 none */
    } * rtt;
    struct sched__grant {   /* what each account with a grant has left, as the pass began */
        const char *holder; /* into the state */
        const facct_grant *grant;
        int64_t left;
        uint64_t held; /* the running jobs' worst case still to come, and the starts' of this pass */
    } * grants;
    size_t n_grants;
} sched_view;

/* Builds the view of f at now_ms under policy file p (NULL: the
 * defaults): sched_view_free it, with the same f. */
int sched_view_build(const fsm *f, const pol *p, int64_t now_ms, sched_view *sv);
void sched_view_free(sched_view *sv, const fsm *f);

/* Why each job waits and its priority, as the pass says from the state
 * alone (no leader's memory): the same answer on every controller. */
typedef struct sched_why {
    const fsm *f;
    sched_view view;
    pass_out out;
} sched_why;

int sched_why_init(sched_why *w, const fsm *f, const pol *p, const plan_policy *policy, int64_t now_ms);
/* A pending job's reason (NULL: not pending, or its own stored reason
 * stands) and priority; "None" for one the next pass starts. */
const char *sched_why_job(const sched_why *w, uint64_t id, uint32_t *priority);
/* A pending job's expected start (Unix ms) from the plan; 0: not known. */
int64_t sched_why_start(const sched_why *w, uint64_t id);
void sched_why_free(sched_why *w);

/* The same answer, made at most once per state and second: kept with f
 * (fsm_memo_set) until an entry is applied, and reused by every jz show
 * and jz queue in between. A pass over a long queue costs milliseconds
 * on the loop that also keeps the nodes' heartbeats: N requests must
 * cost one pass, not N. The answer is f's at the start of now_ms's
 * second, valid until f changes: the caller does not free it. */
const sched_why *sched_why_get(fsm *f, const pol *p, const plan_policy *policy, int64_t now_ms);
/* Passes sched_why_get made since the start, for tests and status. */
uint64_t sched_why_passes(void);

#endif

/* pass.h - one scheduling pass over a neutral view: the jobs, the nodes
 * (with the reservations' windows), the usage, the policy and the time in;
 * what starts, what is preempted, and why each other job waits, out. The
 * leader builds the view from the replicated state (sched.c), the
 * simulator from a trace (sim/): both run this, so every policy the leader
 * runs (multifactor priority with fair share, QoS limits and preemption,
 * reservations, array throttles) is simulated, and "why a job waits" is
 * the pass's own answer, the same on every controller.
 *
 * Pure: no I/O, no clock, no state between calls but what the caller keeps
 * in pass_state. Placement is plan.h's (the core); GPU indexes and CPUs
 * on the chosen nodes are the caller's business. */
#ifndef JZ_PASS_H
#define JZ_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "policy.h"
#include "prio.h"

/* Why a job is not startable at all this pass, decided by the caller
 * (what only the caller's records say). */
typedef enum pass_gate {
    PASS_READY = 0,
    PASS_HELD,       /* Held */
    PASS_DEPENDENCY, /* Dependency */
    PASS_DEPENDENCY_NEVER /* DependencyNeverSatisfied */,
    PASS_RESV_NOT_BEGUN,  /* Reservation */
    PASS_RESV_GONE,       /* ReservationGone */
    PASS_PARTITION_NODES, /* PartitionNodeLimit: its partitions have fewer nodes than it asks */
    PASS_ALLOCATION, /* AllocationExhausted: its account's grant has too little left for its worst case */
    PASS_RESIDENCY,  /* Residency: its account's sites (the policy's residency) have fewer nodes than it asks */
    PASS_SITE_NODES, /* SiteNodeLimit: a gang no one site can hold, which may not span sites */
} pass_gate;

typedef struct pass_job {
    uint64_t id;
    const char *user;    /* for fair share and QoS limits */
    const char *account; /* "" or NULL: the policy's default account */
    int qos;             /* index in the policy */
    int64_t submit_s;
    int64_t limit_s;   /* > 0 */
    uint32_t nodes;    /* asked for (running: held) */
    uint32_t per_node; /* GPUs (or slots) on each */
    uint32_t cpus_per_node;
    uint32_t tag;        /* site as a plan tag; 0 any */
    const bool *allowed; /* which nodes may take it; NULL any */
    const bool *prefer;  /* of those, which it takes first (its data's sites); NULL none */
    bool span;           /* a gang that may span sites (plan_job.span) */
    uint32_t resv;       /* 1 + the reservation's index, 0 none */
    bool exclusive;      /* whole nodes */
    uint64_t array_id;   /* 0: not an array task */
    uint32_t array_max;  /* its array's throttle; 0 none */
    pass_gate gate;      /* pending jobs only */
    const char *note;    /* a pending job's reason from before (Requeued..., Preempted...), kept */
    bool running;
    bool preempting;       /* running, already asked to stop */
    int64_t stop_by_s;     /* preempting: when its grace ends */
    int64_t start_s;       /* running */
    const uint32_t *where; /* running: its nodes (nodes of them, indexes into the view's) */
    uint32_t attempt;
} pass_job;

/* Fair-share usage: GPU-seconds of user in account, decayed to now. */
typedef struct pass_usage {
    const char *account, *user;
    double gpu_s;
} pass_usage;

typedef struct pass_view {
    plan_node *nodes; /* slots, free slots and CPUs as the running jobs leave them; windows */
    size_t n_nodes;
    pass_job *jobs; /* running and pending, pending in submit order */
    size_t n_jobs;
    const pass_usage *usage;
    size_t n_usage;
    const int64_t *resv_end_s; /* per reservation (resv - 1): when it ends */
    size_t n_resv;
    const pol *pol; /* never NULL: pol_default() for the defaults */
    int64_t now_s;
    bool estimate; /* fill pass_out.est_start_s (jz queue --start) */
    /* The round trips between sites, for gangs that span them
     * (plan.site_rtt, plan.rtt_arg); NULL: none known. */
    uint32_t (*site_rtt)(const void *arg, uint32_t a, uint32_t b);
    const void *rtt_arg;
} pass_view;

/* What the caller keeps between passes (the leader; a simulator too). */
typedef struct pass_state {
    plan_policy policy;
    uint64_t head; /* the job holding the reservation, or 0 */
    int64_t shadow;
    uint64_t preemptor; /* the head that preempted for what it waits */
} pass_state;

typedef struct pass_start {
    size_t job;      /* index into view.jobs */
    uint32_t *where; /* its nodes (job's nodes of them) */
} pass_start;

typedef struct pass_preempt {
    size_t job; /* index into view.jobs */
    uint32_t grace_s;
    char reason[160];
} pass_preempt;

#define PASS_MAX_PREEMPTORS 8 /* blocked jobs that may preempt, per pass */

typedef struct pass_out {
    pass_start *starts;
    size_t n_starts;
    pass_preempt *preempts;
    size_t n_preempts;
    uint64_t blocked;     /* the head that waits for resources, or 0 */
    const char **reasons; /* per job: why a pending job that did not start waits; NULL for the others */
    uint32_t *priority;   /* per job: a pending job's priority (multifactor), else 0 */
    /* With view.estimate, per job: when a pending job that waits for room
     * (Resources, Priority) is expected to start, from the plan: the
     * earliest time the running jobs' limits free enough for it, and not
     * before the head's reservation for a job ranked behind the head.
     * 0: not known (held, dependencies, limits, or never). At most
     * PASS_ESTIMATE_MAX jobs, the first in the queue's order. */
    int64_t *est_start_s;
} pass_out;

#define PASS_ESTIMATE_MAX 2000

/* Decides up to max starts (0: none, only the reasons) at view->now_s.
 * st may be NULL (a fresh state: what a controller that does not lead
 * says of the queue). Fills out: free it with pass_out_free. */
void pass_run(const pass_view *v, pass_state *st, const plan_policy *policy, size_t max, pass_out *out);
void pass_out_free(pass_out *out, size_t n_jobs);

/* The fair-share tree of the view's usage, running jobs included (their
 * GPU-seconds so far), and every pending job's user: prio_tree_free it. */
prio_tree *pass_tree(const pass_view *v);
/* A pending job's priority and its factors (f may be NULL). */
uint32_t pass_priority(const pass_view *v, prio_tree *t, const pass_job *j, prio_factors *f);

/* The GPUs each user's running jobs hold in each QoS with a
 * max_gpus_per_user (counted once, for a pass). */
typedef struct pass_limits {
    const pol *pol;
    struct pass_held *held;
    size_t n;
} pass_limits;

void pass_limits_init(pass_limits *l, const pass_view *v);
/* Whether one more job of user in QoS q with `gpus` GPUs stays within the
 * QoS's bound; with take, it is counted as running. */
bool pass_limits_take(pass_limits *l, const char *user, int q, uint64_t gpus, bool take);
void pass_limits_free(pass_limits *l);

#endif

/* plan.h - the scheduler's core: nodes with slots (GPUs, or processors), a
 * queue, the running jobs with the time they are expected to end; a pass
 * decides what starts now. Pure: no I/O and no clock (the caller gives
 * `now`), so the leader and the simulator (sim/) run the same decisions.
 *
 * A pass: order the queue by the policy's key and take the head. If it
 * fits, start it and take the next. If not, the head is *reserved*: it
 * stays the head until it starts (a later, higher-ranked arrival does not
 * push it back: nothing starves), its reservation is the earliest time enough slots free
 * up, counting running jobs until start + their time limit, and, with
 * backfilling (EASY), every queued job in submit order that fits now and
 * ends (now + its limit) before that time starts now. The head is never
 * delayed by what is backfilled.
 *
 * A job takes `nodes` nodes with `per_node` free slots each; among the
 * nodes that fit, the fullest are taken first (best fit: a 1-GPU job
 * does not break an empty node when a busy one has room). */
#ifndef JZ_PLAN_H
#define JZ_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PLAN_FCFS,     /* first come, first served: submit time */
    PLAN_SJF,      /* shortest (requested) job first, then submit time */
    PLAN_JAZARI,   /* smallest area (limit x nodes) first, aged: area / (1 + wait / limit) */
    PLAN_PRIORITY, /* the caller's priority (plan_job.priority) first, then submit time */
    PLAN_SOONEST,  /* without backfilling: the job expected to end first (see plan_pass) */
} plan_order;

typedef struct plan_policy {
    plan_order order;
    bool backfill; /* EASY */
    /* Backfills in rank order; else in submit order, as RLScheduler's
     * protocol does. */
    bool by_rank;
    bool first_fit; /* placement: the lowest-index nodes that fit, not the fullest */
    /* EASY, exactly: a job that would end after the head's reservation may
     * still backfill if, placed now, it leaves that reservation where it
     * was (it takes slots the head cannot use: another site, a model the
     * head did not ask for, reserved GPUs). Checked for at most
     * PLAN_EXACT_CHECKS jobs a pass. Off in the simulator's published
     * protocols (which backfill by time alone). */
    bool exact;
} plan_policy;

#define PLAN_EXACT_CHECKS 32

/* "fcfs", "fcfs-easy", "sjf", "sjf-easy", "jazari" (aged smallest area
 * first, EASY backfilling in that order) into p; 0, or -1 if unknown.
 * Without backfilling: "jazari-noback" (the same order), "jazari-ect"
 * (PLAN_SOONEST). Sets the order only: p->first_fit is left as it is. */
int plan_policy_parse(const char *name, plan_policy *p);
const char *plan_policy_name(const plan_policy *p);

#define PLAN_UNCOUNTED UINT32_MAX /* a node whose CPUs are not counted */
#define PLAN_NO_FIT UINT64_MAX    /* plan.node_rank: the job does not fit there now */

/* Slots of a node kept for the jobs of one advance reservation from
 * `from` to `until`: others may use them only if they end before `from`
 * (or if they are scavengers, which the owner's jobs may preempt). */
typedef struct plan_window {
    int64_t from, until; /* s */
    uint32_t slots;
    uint32_t used;  /* by the owner's running jobs (kept by the plan) */
    uint32_t owner; /* the reservation: plan_job.resv of its jobs */
} plan_window;

typedef struct plan_node {
    uint32_t slots; /* capacity: GPUs (or processors) */
    uint32_t free;
    uint32_t cpus, cpus_free; /* PLAN_UNCOUNTED: not a constraint */
    uint32_t
        tag; /* its site, 0 or at most the number of nodes; a job asking for a tag gets only such nodes */
    uint32_t index; /* its place in plan.nodes */
    bool up;
    plan_window *windows; /* the caller's; none: NULL */
    uint32_t n_windows;
    uint32_t scav_used; /* slots held by scavengers (kept by the plan): they use reserved ones first */
    uint32_t group; /* its network group (site, switch): a gang stays in one when one can hold it; 0 none */
    uint32_t jobs;  /* running jobs on it (kept by the plan) */
    uint32_t whole; /* of which exclusive: it holds the whole node (kept by the plan) */
} plan_node;

typedef struct plan_job {
    uint64_t id;
    int64_t submit;    /* s */
    int64_t limit;     /* requested time, s (> 0) */
    uint32_t nodes;    /* how many nodes */
    uint32_t per_node; /* slots on each */
    uint32_t cpus_per_node;
    uint32_t tag;        /* 0: any node */
    const bool *allowed; /* NULL: any node; else which nodes may take it (by index), e.g. a GPU model */
    /* NULL: none; else the nodes it takes first among those where it fits
     * now (by index; the sites that hold its data): a gang goes to a group
     * of them when one can hold it, then to any group as before. */
    const bool *prefer;
    /* A gang (nodes > 1) stays within one site (plan_node.tag) when the
     * nodes have several: unless span, it waits until one site can hold
     * it; with span, it takes one site when one can, else the fewest
     * sites: the best-connected such set (plan.site_rtt), else the
     * largest sites first. */
    bool span;
    uint32_t priority; /* PLAN_PRIORITY: higher first */
    uint32_t resv;  /* runs only inside this reservation's windows (plan_window.owner), in a lane of its own;
                       0: none */
    bool scavenger; /* may use reserved slots nobody uses (and is preempted for them); never the head */
    bool exclusive; /* whole nodes: only nodes with no job, and it takes all their slots and CPUs */
    /* Set by a pass when it starts the job: */
    int64_t start;   /* -1 while queued */
    uint32_t *where; /* the nodes (nodes of them), owned by the plan until plan_end */
    void *user;      /* the caller's */
} plan_job;

typedef struct plan {
    plan_policy policy;
    plan_node *nodes;
    size_t n_nodes;
    plan_job **queue; /* pending, in arrival order until a pass sorts them */
    size_t n_queue, queue_cap;
    plan_job **running;
    size_t n_running, running_cap;
    plan_job *head;    /* reserved: stays the head until it starts */
    int64_t shadow;    /* its reservation: the earliest start the running jobs allow */
    size_t max_starts; /* per pass; 0: no bound */
    /* The index of free capacity (rebuilt at each pass, kept as jobs
     * start and end): how many up nodes have each number of free slots.
     * A job that asks for no site, where no node counts CPUs, fits in
     * O(slots) instead of O(nodes). */
    uint32_t *by_free; /* max_slots + 1 counters */
    uint32_t max_slots;
    bool counted; /* by_free is kept (always, but with a caller's node_rank) */
    bool indexed; /* and it alone says whether a job fits (no CPUs, no reservations) */
    uint64_t passes, backfilled;
    int64_t now;         /* of the pass under way */
    bool grouped;        /* nodes are in more than one group */
    uint32_t only_group; /* while placing a gang: the group it goes to (0: any) */
    bool sited;          /* nodes are at more than one site (tag) */
    uint32_t only_tag;   /* while placing a gang: the site it goes to (0: any) */
    plan_job **by_end;   /* running jobs by expected end (for shadows), while by_end_ok */
    bool by_end_ok;
    /* Optional, for what slots cannot say (a fraction of a GPU must fit in
     * what one GPU has left, which the caller tracks): whether j fits on n
     * now (PLAN_NO_FIT if not), and how well: a rank, the lowest taken
     * first (instead of the fullest node). Set, it turns the index off. The
     * reservation's shadow asks it of nodes whose slots it has freed in
     * thought (n->free above what the caller knows): it should say yes when
     * the slots are enough, so that the shadow is never late. */
    uint64_t (*node_rank)(void *arg, const plan_node *n, const plan_job *j);
    void *rank_arg;
    /* Optional: the round trip (ms) between two sites (tags a != b), or
     * PLAN_RTT_UNKNOWN. A gang that spans sites takes, of the sets of the
     * fewest sites that can hold it, the one whose worst pair is the
     * smallest (an unknown pair is worse than any known one; ties: the
     * largest sites first). NULL: every pair unknown, so the largest
     * sites first. Asked O(sites^2 x sites taken) times per spanning gang
     * placed: it should be a lookup. */
    uint32_t (*site_rtt)(const void *arg, uint32_t a, uint32_t b);
    const void *rtt_arg;
} plan;

#define PLAN_RTT_UNKNOWN UINT32_MAX

/* n_nodes nodes of `slots` slots each, all up. */
void plan_init(plan *p, const plan_policy *policy, size_t n_nodes, uint32_t slots);
void plan_free(plan *p);
/* Queues j (its start must be -1). */
void plan_submit(plan *p, plan_job *j);
/* A job already running (j->start, j->where set; where is the plan's to
 * free from now on): its slots are taken. */
void plan_add_running(plan *p, plan_job *j);
/* Starts what may start at `now`, calling started(arg, job) for each, in
 * order. Returns how many started. */
size_t plan_pass(plan *p, int64_t now, void (*started)(void *arg, plan_job *j), void *arg);
/* A running job ended: its slots are free again. */
void plan_end(plan *p, plan_job *j);
/* Whether j could ever run here (enough nodes of enough slots). */
bool plan_feasible(const plan *p, const plan_job *j);
/* The earliest time queued j could start (s), counting each running job
 * as gone at its start + limit (what the head's reservation is made of):
 * now when it fits now; INT64_MAX when the running jobs' ends never make
 * room for it. */
int64_t plan_earliest(plan *p, const plan_job *j, int64_t now);
/* Whether queued j fits now. */
bool plan_fits_now(plan *p, const plan_job *j, int64_t now);
/* Preemption: which of the running candidates (in the order given: the
 * first are released first) must go for queued j to fit now. Releases
 * them in order until j fits, then keeps back any not needed. Returns how
 * many went into out (room for n), 0 if even all of them would not do. */
size_t plan_victims(plan *p, const plan_job *j, int64_t now, plan_job *const *cand, size_t n, plan_job **out);

#endif

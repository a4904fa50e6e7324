/* plan.c - priority order, a sticky head reservation, EASY backfilling,
 * best-fit node choice. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

int plan_policy_parse(const char *name, plan_policy *p)
{
    static const struct {
        const char *name;
        plan_order order;
        bool backfill;
    } known[] = {{"fcfs", PLAN_FCFS, false},
                 {"fcfs-easy", PLAN_FCFS, true},
                 {"sjf", PLAN_SJF, false},
                 {"sjf-easy", PLAN_SJF, true},
                 {"jazari", PLAN_JAZARI, true}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) == 0) {
            p->order = known[i].order;
            p->backfill = known[i].backfill;
            p->by_rank = known[i].order == PLAN_JAZARI;
            return 0;
        }
    }
    return -1;
}

const char *plan_policy_name(const plan_policy *p)
{
    if (p->order == PLAN_JAZARI)
        return "jazari";
    if (p->order == PLAN_SJF)
        return p->backfill ? "sjf-easy" : "sjf";
    return p->backfill ? "fcfs-easy" : "fcfs";
}

void plan_init(plan *p, const plan_policy *policy, size_t n_nodes, uint32_t slots)
{
    memset(p, 0, sizeof *p);
    p->policy = *policy;
    p->n_nodes = n_nodes;
    p->nodes = xcalloc(n_nodes, sizeof *p->nodes);
    for (size_t i = 0; i < n_nodes; i++) {
        p->nodes[i].slots = p->nodes[i].free = slots;
        p->nodes[i].cpus = p->nodes[i].cpus_free = PLAN_UNCOUNTED;
        p->nodes[i].index = (uint32_t)i;
        p->nodes[i].up = true;
    }
}

void plan_free(plan *p)
{
    for (size_t i = 0; i < p->n_running; i++) {
        free(p->running[i]->where);
        p->running[i]->where = NULL;
    }
    free(p->nodes);
    free(p->queue);
    free(p->running);
    free(p->by_free);
    memset(p, 0, sizeof *p);
}

static void plan__push(plan_job ***arr, size_t *n, size_t *cap, plan_job *j)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        plan_job **a = realloc(*arr, *cap * sizeof(plan_job *));
        if (!a)
            abort();
        *arr = a;
    }
    (*arr)[(*n)++] = j;
}

void plan_submit(plan *p, plan_job *j)
{
    j->start = -1;
    plan__push(&p->queue, &p->n_queue, &p->queue_cap, j);
}

static bool plan__node_ok(const plan_node *n, const plan_job *j)
{
    return (!j->tag || n->tag == j->tag) && (!j->allowed || j->allowed[n->index]) &&
           n->slots >= j->per_node && (n->cpus == PLAN_UNCOUNTED || n->cpus >= j->cpus_per_node);
}

static bool plan__node_free(const plan_node *n, const plan_job *j)
{
    return n->up && plan__node_ok(n, j) && n->free >= j->per_node &&
           (n->cpus == PLAN_UNCOUNTED || n->cpus_free >= j->cpus_per_node);
}

static void plan__node_take(plan *p, plan_node *n, const plan_job *j, int sign)
{
    if (p->indexed && n->up && n->free <= p->max_slots)
        p->by_free[n->free]--;
    n->free = (uint32_t)((int64_t)n->free - sign * (int64_t)j->per_node);
    if (p->indexed && n->up && n->free <= p->max_slots)
        p->by_free[n->free]++;
    if (n->cpus != PLAN_UNCOUNTED)
        n->cpus_free = (uint32_t)((int64_t)n->cpus_free - sign * (int64_t)j->cpus_per_node);
}

bool plan_feasible(const plan *p, const plan_job *j)
{
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        n += plan__node_ok(&p->nodes[i], j);
    return n >= j->nodes;
}

void plan_add_running(plan *p, plan_job *j)
{
    for (uint32_t k = 0; k < j->nodes; k++)
        plan__node_take(p, &p->nodes[j->where[k]], j, 1);
    plan__push(&p->running, &p->n_running, &p->running_cap, j);
}

/* --- order ------------------------------------------------------------------------ */

/* Ties go to the earlier job: the order is total, so a pass is the same
 * wherever it runs. */
static int plan__cmp_fcfs(const plan_job *a, const plan_job *b)
{
    if (a->submit != b->submit)
        return a->submit < b->submit ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int plan__cmp_sjf(const plan_job *a, const plan_job *b)
{
    if (a->limit != b->limit)
        return a->limit < b->limit ? -1 : 1;
    return plan__cmp_fcfs(a, b);
}

/* Aged smallest area first: a job's area (limit x nodes) is divided by
 * 1 + its wait counted in its own limits, so short small jobs go first and
 * a big one ranks first after a bounded wait (its limit x (its area / the
 * smallest area - 1)); once first, its reservation holds. */
static int64_t plan__now; /* for the aging key: set by plan__sort */

static double plan__aged_area(const plan_job *j)
{
    double wait = (double)(plan__now > j->submit ? plan__now - j->submit : 0);
    return (double)j->limit * j->nodes / (1.0 + wait / (double)j->limit);
}

static int plan__cmp_jazari(const plan_job *a, const plan_job *b)
{
    double x = plan__aged_area(a), y = plan__aged_area(b);
    if (x != y)
        return x < y ? -1 : 1;
    return plan__cmp_fcfs(a, b);
}

static int plan__qsort_jazari(const void *x, const void *y)
{
    return plan__cmp_jazari(*(plan_job *const *)x, *(plan_job *const *)y);
}

static int plan__qsort_fcfs(const void *x, const void *y)
{
    return plan__cmp_fcfs(*(plan_job *const *)x, *(plan_job *const *)y);
}

static int plan__qsort_sjf(const void *x, const void *y)
{
    return plan__cmp_sjf(*(plan_job *const *)x, *(plan_job *const *)y);
}

static void plan__sort(plan *p, plan_order order, int64_t now)
{
    plan__now = now;
    if (p->n_queue < 2)
        return; /* qsort wants a base even for none */
    qsort(p->queue, p->n_queue, sizeof(plan_job *),
          order == PLAN_SJF      ? plan__qsort_sjf
          : order == PLAN_JAZARI ? plan__qsort_jazari
                                 : plan__qsort_fcfs);
}

/* --- placement ------------------------------------------------------------------- */

/* Whether j fits on the free slots now. */
static bool plan__fits(const plan *p, const plan_job *j)
{
    if (p->indexed && !j->tag && !j->allowed) {
        uint64_t n = 0;
        for (uint32_t l = j->per_node; l <= p->max_slots && n < j->nodes; l++)
            n += p->by_free[l];
        return n >= j->nodes;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_nodes && n < j->nodes; i++)
        n += plan__node_free(&p->nodes[i], j);
    return n >= j->nodes;
}

/* Takes the nodes for j: those with the fewest free slots that fit first
 * (then the lowest index). */
static void plan__take(plan *p, plan_job *j, int64_t now)
{
    j->where = xcalloc(j->nodes, sizeof *j->where);
    for (uint32_t k = 0; k < j->nodes; k++) {
        size_t best = p->n_nodes;
        /* With the index: the fullest level that fits, its first node. */
        for (uint32_t l = j->per_node;
             p->indexed && !j->tag && !j->allowed && l <= p->max_slots && best == p->n_nodes; l++) {
            if (!p->by_free[l])
                continue;
            for (size_t i = 0; i < p->n_nodes && best == p->n_nodes; i++) {
                bool chosen = false;
                for (uint32_t c = 0; c < k && !chosen; c++)
                    chosen = j->where[c] == i;
                if (!chosen && p->nodes[i].up && p->nodes[i].free == l)
                    best = i;
            }
        }
        if (best != p->n_nodes) {
            j->where[k] = (uint32_t)best;
            plan__node_take(p, &p->nodes[best], j, 1);
            continue;
        }
        for (size_t i = 0; i < p->n_nodes; i++) {
            const plan_node *n = &p->nodes[i];
            bool chosen = false; /* a part per node */
            for (uint32_t c = 0; c < k && !chosen; c++)
                chosen = j->where[c] == i;
            if (chosen || !plan__node_free(n, j))
                continue;
            if (best == p->n_nodes || n->free < p->nodes[best].free ||
                (n->free == p->nodes[best].free && n->cpus_free < p->nodes[best].cpus_free))
                best = i;
        }
        j->where[k] = (uint32_t)best;
        plan__node_take(p, &p->nodes[best], j, 1);
    }
    j->start = now;
}

/* Starts queued j (it leaves the queue at the end of the pass). */
static void plan__start(plan *p, plan_job *j, int64_t now, void (*started)(void *, plan_job *), void *arg)
{
    plan__take(p, j, now);
    plan__push(&p->running, &p->n_running, &p->running_cap, j);
    if (j == p->head)
        p->head = NULL;
    if (started)
        started(arg, j);
}

void plan_end(plan *p, plan_job *j)
{
    for (uint32_t k = 0; j->where && k < j->nodes; k++)
        plan__node_take(p, &p->nodes[j->where[k]], j, -1);
    free(j->where);
    j->where = NULL;
    for (size_t i = 0; i < p->n_running; i++) {
        if (p->running[i] == j) {
            p->running[i] = p->running[--p->n_running];
            break;
        }
    }
}

/* --- the reservation ----------------------------------------------------------- */

static int plan__cmp_expected_end(const void *x, const void *y)
{
    const plan_job *a = *(plan_job *const *)x, *b = *(plan_job *const *)y;
    int64_t ea = a->start + a->limit, eb = b->start + b->limit;
    if (ea != eb)
        return ea < eb ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The earliest time j fits, counting each running job as gone at its
 * start + limit: a copy of the free slots, the running jobs released in
 * that order until j fits. */
static int64_t plan__shadow(plan *p, const plan_job *j, int64_t now)
{
    plan_job **order = xcalloc(p->n_running ? p->n_running : 1, sizeof(plan_job *));
    memcpy(order, p->running, p->n_running * sizeof(plan_job *));
    qsort(order, p->n_running, sizeof(plan_job *), plan__cmp_expected_end);
    plan_node *saved = xcalloc(p->n_nodes, sizeof *saved);
    memcpy(saved, p->nodes, p->n_nodes * sizeof *saved);
    uint32_t *saved_index = NULL;
    if (p->indexed) {
        saved_index = xcalloc(p->max_slots + 1, sizeof *saved_index);
        memcpy(saved_index, p->by_free, (p->max_slots + 1) * sizeof *saved_index);
    }
    int64_t t = INT64_MAX;
    for (size_t r = 0; r < p->n_running; r++) {
        const plan_job *x = order[r];
        for (uint32_t k = 0; k < x->nodes; k++)
            plan__node_take(p, &p->nodes[x->where[k]], x, -1);
        if (plan__fits(p, j)) {
            t = x->start + x->limit;
            break;
        }
    }
    memcpy(p->nodes, saved, p->n_nodes * sizeof *saved);
    free(saved);
    if (saved_index) {
        memcpy(p->by_free, saved_index, (p->max_slots + 1) * sizeof *saved_index);
        free(saved_index);
    }
    free(order);
    return t < now ? now : t;
}

/* --- a pass --------------------------------------------------------------------- */

/* Takes the queue back to the jobs still waiting, in their order. */
static void plan__compact(plan *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_queue; i++)
        if (p->queue[i]->start < 0)
            p->queue[k++] = p->queue[i];
    p->n_queue = k;
}

/* One pass: the queue is sorted once (the keys do not change within a
 * pass), walked in order, and compacted at the end: a pass costs a sort
 * and a walk, not a sort per start. */
/* (Re)builds the index from the nodes as the caller left them. */
static void plan__index(plan *p)
{
    uint32_t most = 0;
    bool cpus = false;
    for (size_t i = 0; i < p->n_nodes; i++) {
        most = p->nodes[i].slots > most ? p->nodes[i].slots : most;
        cpus = cpus || p->nodes[i].cpus != PLAN_UNCOUNTED;
    }
    p->indexed = false;
    if (cpus)
        return;
    if (most > p->max_slots || !p->by_free) {
        free(p->by_free);
        p->by_free = xcalloc((size_t)most + 1, sizeof *p->by_free);
        p->max_slots = most;
    }
    memset(p->by_free, 0, ((size_t)p->max_slots + 1) * sizeof *p->by_free);
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].up && p->nodes[i].free <= p->max_slots)
            p->by_free[p->nodes[i].free]++;
    p->indexed = true;
}

size_t plan_pass(plan *p, int64_t now, void (*started)(void *arg, plan_job *j), void *arg)
{
    size_t n = 0;
    p->passes++;
    plan__index(p);
    if (p->head) {
        size_t hi = 0;
        while (hi < p->n_queue && p->queue[hi] != p->head)
            hi++;
        if (hi == p->n_queue)
            p->head = NULL; /* gone (cancelled): choose again */
    }
    /* The reserved head first: it starts as soon as it fits. */
    if (p->head && plan__fits(p, p->head)) {
        plan__start(p, p->head, now, started, arg);
        n++;
    }
    /* Then in rank order, until one does not fit: the new head. */
    bool ranked = false;
    if (!p->head) {
        plan__sort(p, p->policy.order, now);
        ranked = true;
        for (size_t i = 0; i < p->n_queue && (!p->max_starts || n < p->max_starts); i++) {
            plan_job *j = p->queue[i];
            if (j->start >= 0)
                continue;
            if (plan__fits(p, j)) {
                plan__start(p, j, now, started, arg);
                n++;
                continue;
            }
            p->head = j;
            p->shadow = plan__shadow(p, j, now);
            break;
        }
    }
    /* EASY: whatever fits now and is done before the head's reservation,
     * in submit order (or in rank order). */
    if (p->head && p->policy.backfill && (!p->max_starts || n < p->max_starts)) {
        if (!p->policy.by_rank)
            plan__sort(p, PLAN_FCFS, now);
        else if (!ranked)
            plan__sort(p, p->policy.order, now);
        for (size_t i = 0; i < p->n_queue && (!p->max_starts || n < p->max_starts); i++) {
            plan_job *j = p->queue[i];
            if (j->start < 0 && j != p->head && now + j->limit < p->shadow && plan__fits(p, j)) {
                plan__start(p, j, now, started, arg);
                p->backfilled++;
                n++;
            }
        }
    }
    plan__compact(p);
    return n;
}

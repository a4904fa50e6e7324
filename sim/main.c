/* main.c - jazari-sim: replays a trace on a virtual cluster in simulated
 * time with the scheduler's own core (lib/sched/plan.c), and prints
 * what users would feel: waits, bounded slowdowns, utilization.
 *
 * Time moves one event at a time (an arrival, or a job's end; at equal
 * times the arrival first), and after each event the scheduler makes a
 * pass: the event model of the RLScheduler protocol that published
 * figures use (tests/fixtures/traces/README.md), so ours sit beside theirs. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../lib/hw/topo.h"
#include "../lib/sched/dur.h"
#include "../lib/sched/gpuset.h"
#include "../lib/sched/plan.h"
#include "alibaba.h"
#include "gpushare.h"
#include "mf.h"
#include "philly.h"
#include "swf.h"

/* The windows of RLScheduler's protocol: 1,024 jobs from each index. */
static const size_t sim_rl_starts[] = {1981, 2756, 4299, 8850, 3316, 2714, 5228, 7762, 4022, 7085};
#define SIM_RL_WINDOW 1024

typedef struct sim_metrics {
    size_t jobs;
    double utilization, mean_wait, mean_bsld, p95_bsld, makespan, mean_jct;
    double best_connected_share; /* < 0: not measured */
    double fragmentation;        /* < 0: not measured */
    double stranded_share;       /* < 0: not measured */
    double one_site_share;       /* of the multi-node jobs, those inside one site; < 0: not measured */
    double span_rtt_ms;          /* the mean worst round trip of the gangs that spanned sites; < 0: none */
    double fairness;             /* Jain's index of the users' mean bounded slowdowns (1: even) */
    size_t users;
} sim_metrics;

/* Where jobs go: the plan core's nodes, then which GPUs of them. */
typedef enum {
    SIM_JAZARI,    /* what the leader does: the fullest nodes, the best-connected GPUs
                    * (gpuset.c); shared GPUs: least added fragmentation, then fullest */
    SIM_BEST_FIT,  /* the fullest nodes; the lowest-index GPUs, or the fullest GPU for a fraction */
    SIM_FIRST_FIT, /* the lowest-index nodes and GPUs that fit */
} sim_placement;

static const char *const sim_placements[] = {"jazari", "best-fit", "first-fit"};

/* A kind of node: how many of the cluster's nodes (they come in the
 * order of the kinds), their processors or GPUs, their GPUs' links. */
typedef struct sim_type {
    uint32_t nodes, per_node;
    topo *topo;    /* their GPUs and links, or NULL (unknown; processors) */
    char *what;    /* --cluster: the XML's path (beside the config unless absolute), or NULL */
    uint32_t site; /* --cluster's site=NAME: 1 + its index among the sites; 0: none */
} sim_type;

#define SIM_SITES_MAX 64

/* The virtual cluster. */
typedef struct sim_cluster {
    uint32_t nodes, per_node; /* all nodes; the most processors or GPUs a node has (the Alibaba trace: the
                                 most thousandths) */
    bool whole_nodes;         /* SWF: a job takes whole nodes; GPU traces share them */
    const sim_type *types;    /* SWF and Philly: the nodes' kinds (n_types), else NULL */
    size_t n_types;
    bool uniform;       /* every node has per_node processors or GPUs */
    const char *config; /* --cluster FILE, or NULL */
    sim_placement placement;
    /* The Alibaba trace: nodes of their own sizes, GPUs shared in
     * thousandths (gpushare.h); else NULL. */
    const alibaba *ali;
    const uint32_t *ali_nodes; /* which of ali->nodes make the cluster: nodes of them */
    size_t n_sites;            /* --cluster's site= names: a gang stays in one site when one can hold it */
    bool span;                 /* --span-sites: a gang no one site can hold now may span sites */
    /* --cluster's latency lines: round trips (ms) by site number, a row of
     * SIM_SITES_MAX + 1 per site, PLAN_RTT_UNKNOWN where none; NULL: none.
     * They guide where spanning gangs go unless --ignore-latency, and
     * measure span_rtt_ms_mean either way. */
    const uint32_t *rtt;
    bool rtt_ignored; /* --ignore-latency */
} sim_cluster;

typedef struct sim_job {
    plan_job pj;
    const swf_job *t;
    uint64_t seq;   /* start order: ends at the same time go in it */
    uint32_t *gpus; /* with node topologies: its GPU indexes, per_node per node (where the node has one);
                     * shared GPUs: procs of them */
    uint64_t held;  /* the slots it holds: a whole node's all (SWF) */
} sim_job;

/* Running jobs by actual end, then start order: a binary heap. */
typedef struct sim_heap {
    sim_job **a;
    size_t n;
} sim_heap;

static bool sim__before(const sim_job *x, const sim_job *y)
{
    int64_t ex = x->pj.start + x->t->run, ey = y->pj.start + y->t->run;
    return ex != ey ? ex < ey : x->seq < y->seq;
}

static void sim__heap_push(sim_heap *h, sim_job *j)
{
    size_t i = h->n++;
    h->a[i] = j;
    while (i > 0 && sim__before(h->a[i], h->a[(i - 1) / 2])) {
        sim_job *t = h->a[i];
        h->a[i] = h->a[(i - 1) / 2];
        h->a[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static sim_job *sim__heap_pop(sim_heap *h)
{
    sim_job *top = h->a[0];
    h->a[0] = h->a[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && sim__before(h->a[l], h->a[m]))
            m = l;
        if (r < h->n && sim__before(h->a[r], h->a[m]))
            m = r;
        if (m == i)
            break;
        sim_job *t = h->a[i];
        h->a[i] = h->a[m];
        h->a[m] = t;
        i = m;
    }
    return top;
}

typedef struct sim_run {
    sim_heap heap;
    uint64_t seq;
    const sim_cluster *c;
    uint32_t *type_of;       /* SWF and Philly: each node's kind (c->types) */
    bool *taken;             /* the GPU flags of the nodes with a topology, if any has one */
    size_t *row;             /* where each node's flags begin in taken (SIZE_MAX: none) */
    unsigned (*best)[65];    /* per kind: the weakest link of the best set of k GPUs on an empty node */
    size_t multi, connected; /* multi-GPU single-node jobs, and those on a best set */
    gpushare share;          /* the Alibaba trace's GPUs */
    bool *allowed;           /* the Alibaba trace: per gpu_spec, the nodes of its models */
    size_t stranded;         /* jobs that did not start on arrival though enough GPUs were free */
    size_t gangs, one_site;  /* multi-node jobs started, and those inside one site */
    size_t spans;            /* of the others, those whose every pair of sites has a round trip */
    double span_rtt_ms;      /* the sum of their worst round trips */
    mf *mf;                  /* multifactor: the leader's pass decides (mf.h); else NULL */
} sim_run;

/* plan.node_rank for shared GPUs: whether the pod fits in what the node's
 * GPUs have left (a fraction in one GPU), and, placing as the leader
 * would, the node that gains the least fragmentation first, then the
 * fullest (fewest free thousandths, then CPUs). */
static uint64_t sim__node_rank(void *arg, const plan_node *n, const plan_job *pj)
{
    const sim_run *r = arg;
    const swf_job *t = ((const sim_job *)pj->user)->t;
    uint32_t i = n->index;
    if (n->free > r->share.n_free[i])
        return 0; /* the reservation's shadow freed slots in thought: enough is enough */
    if (!gpushare_fits(&r->share, i, t->procs, t->milli))
        return PLAN_NO_FIT;
    uint64_t grows = 0; /* the growth, -65536 to 65535 thousandths, shifted above 0 */
    if (r->share.mode == GPUSHARE_LEAST_FRAG)
        grows = (uint64_t)llround(gpushare_growth(&r->share, i, t->procs, t->milli) + 65536.0);
    return grows << 40 | (uint64_t)n->free << 24 | (n->cpus_free & 0xffffffu);
}

/* The lowest-index free GPUs of a node row (want of them) into set. */
static void sim__first_free(const bool *row, uint32_t per, uint32_t want, uint32_t *set)
{
    uint32_t k = 0;
    for (uint32_t g = 0; g < per && k < want; g++)
        if (!row[g])
            set[k++] = g;
    if (k < want)
        abort(); /* the core counted them free */
}

/* plan.site_rtt: the --cluster's latency lines. */
static uint32_t sim__site_rtt(const void *arg, uint32_t a, uint32_t b)
{
    const uint32_t *rtt = arg;
    return a <= SIM_SITES_MAX && b <= SIM_SITES_MAX ? rtt[a * (SIM_SITES_MAX + 1) + b] : PLAN_RTT_UNKNOWN;
}

/* A gang that spans sites: its worst round trip into the mean, when every
 * pair of its sites has one. */
static void sim__span_rtt(sim_run *r, const plan_job *pj)
{
    bool at[SIM_SITES_MAX + 1] = {false};
    for (uint32_t k = 0; k < pj->nodes; k++)
        at[r->c->types[r->type_of[pj->where[k]]].site] = true;
    uint32_t worst = 0;
    for (uint32_t a = 1; a <= SIM_SITES_MAX; a++)
        for (uint32_t b = a + 1; at[a] && b <= SIM_SITES_MAX; b++)
            if (at[b] && sim__site_rtt(r->c->rtt, a, b) > worst)
                worst = sim__site_rtt(r->c->rtt, a, b);
    if (worst != PLAN_RTT_UNKNOWN) {
        r->spans++;
        r->span_rtt_ms += worst;
    }
}

static void sim__started(void *arg, plan_job *pj)
{
    sim_run *r = arg;
    sim_job *j = pj->user;
    j->seq = r->seq++;
    sim__heap_push(&r->heap, j);
    if (r->c->ali) {
        j->gpus = calloc(j->t->procs, sizeof *j->gpus);
        if (!j->gpus)
            abort();
        gpushare_take(&r->share, pj->where[0], j->t->procs, j->t->milli, j->gpus);
        return;
    }
    if (pj->nodes > 1 && r->c->n_sites) {
        r->gangs++;
        bool one = true;
        for (uint32_t k = 1; k < pj->nodes && one; k++)
            one = r->c->types[r->type_of[pj->where[k]]].site == r->c->types[r->type_of[pj->where[0]]].site;
        r->one_site += one;
        if (!one && r->c->rtt)
            sim__span_rtt(r, pj);
    }
    if (r->c->whole_nodes) { /* whole nodes: all their processors */
        j->held = 0;
        for (uint32_t k = 0; k < pj->nodes; k++)
            j->held += r->c->types[r->type_of[pj->where[k]]].per_node;
    }
    if (!r->taken)
        return;
    /* Which GPUs of each node, as the leader picks them (gpuset.c). */
    j->gpus = calloc((size_t)pj->nodes * pj->per_node + 1, sizeof *j->gpus);
    if (!j->gpus)
        abort();
    for (uint32_t k = 0; k < pj->nodes; k++) {
        const sim_type *y = &r->c->types[r->type_of[pj->where[k]]];
        if (!y->topo)
            continue; /* links unknown: GPUs not tracked */
        bool *row = &r->taken[r->row[pj->where[k]]];
        uint32_t *set = &j->gpus[(size_t)k * pj->per_node];
        if (r->c->placement != SIM_JAZARI)
            sim__first_free(row, y->per_node, pj->per_node, set);
        else if (gpuset_pick(y->topo, row, pj->per_node, set) != 0)
            abort(); /* the core counted them free */
        for (uint32_t g = 0; g < pj->per_node; g++)
            row[set[g]] = true;
    }
    uint32_t t = r->type_of[pj->where[0]];
    if (pj->nodes == 1 && pj->per_node >= 2 && pj->per_node <= 64 && r->c->types[t].topo) {
        r->multi++;
        r->connected +=
            gpuset_weakest(r->c->types[t].topo, j->gpus, pj->per_node) >= r->best[t][pj->per_node];
    }
}

static void sim__ended(sim_run *r, plan *p, sim_job *j, int64_t now)
{
    if (r->mf)
        mf_ended(r->mf, &j->pj, now);
    if (j->gpus && r->c->ali) {
        gpushare_give(&r->share, j->pj.where[0], j->t->procs, j->t->milli, j->gpus);
        free(j->gpus);
        j->gpus = NULL;
    } else if (j->gpus) {
        for (uint32_t k = 0; k < j->pj.nodes; k++)
            for (uint32_t g = 0; g < j->pj.per_node && r->row[j->pj.where[k]] != SIZE_MAX; g++)
                r->taken[r->row[j->pj.where[k]] + j->gpus[(size_t)k * j->pj.per_node + g]] = false;
        free(j->gpus);
        j->gpus = NULL;
    }
    plan_end(p, &j->pj);
}

/* The share of the free slots that sit on partly used nodes (a job that
 * needs a whole node cannot use them). */
static double sim__fragmentation(const plan *p)
{
    uint64_t free_all = 0, scattered = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        free_all += p->nodes[i].free;
        if (p->nodes[i].free < p->nodes[i].slots)
            scattered += p->nodes[i].free;
    }
    return free_all ? (double)scattered / (double)free_all : 0;
}

/* Whether j could start now, order aside: enough nodes with room (for
 * shared GPUs, a GPU with room for a fraction). */
static bool sim__could_start(const sim_run *r, const plan *p, const plan_job *j)
{
    const swf_job *t = ((const sim_job *)j->user)->t;
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_nodes && n < j->nodes; i++) {
        const plan_node *x = &p->nodes[i];
        n += x->up && (!j->allowed || j->allowed[i]) && x->free >= j->per_node &&
             (x->cpus == PLAN_UNCOUNTED || x->cpus_free >= j->cpus_per_node) &&
             (!r->c->ali || gpushare_fits(&r->share, (uint32_t)i, t->procs, t->milli));
    }
    return n >= j->nodes;
}

/* Whether j, just arrived, is stranded: it did not start, the free GPUs
 * summed over the cluster were enough for it, but no nodes could take it
 * (the free capacity is in the wrong places: fragmentation). One that
 * could start but waits its turn is not. */
static bool sim__stranded(const sim_run *r, const plan *p, const plan_job *j)
{
    if (j->start >= 0)
        return false;
    uint64_t free_all = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        free_all += p->nodes[i].up ? p->nodes[i].free : 0;
    return free_all >= (uint64_t)j->nodes * j->per_node && !sim__could_start(r, p, j);
}

/* The Alibaba trace's cluster: each node its GPUs (in thousandths) and
 * CPUs, the GPU-level state and placement (gpushare.c), the fragmentation
 * weighed by the pods of jobs[first, first + n), and which nodes each
 * gpu_spec allows. */
static void sim__ali_setup(plan *p, sim_run *run, const swf *t, size_t first, size_t n)
{
    const sim_cluster *c = run->c;
    const alibaba *a = c->ali;
    uint32_t *gpus = calloc(c->nodes, sizeof *gpus);
    if (!gpus)
        abort();
    for (uint32_t i = 0; i < c->nodes; i++) {
        const alibaba_node *x = &a->nodes[c->ali_nodes[i]];
        gpus[i] = x->gpus;
        p->nodes[i].slots = p->nodes[i].free = x->gpus * GPUSHARE_GPU;
        p->nodes[i].cpus = p->nodes[i].cpus_free = x->cpu_milli;
    }
    static const gpushare_mode modes[] = {[SIM_JAZARI] = GPUSHARE_LEAST_FRAG,
                                          [SIM_BEST_FIT] = GPUSHARE_BEST_FIT,
                                          [SIM_FIRST_FIT] = GPUSHARE_FIRST_FIT};
    gpushare_init(&run->share, modes[c->placement], c->nodes, gpus);
    free(gpus);
    for (size_t i = 0; i < n; i++)
        gpushare_count(&run->share, t->jobs[first + i].procs, t->jobs[first + i].milli);
    gpushare_kinds_done(&run->share);
    p->node_rank = sim__node_rank;
    p->rank_arg = run;
    if (a->n_specs) {
        run->allowed = calloc(a->n_specs * c->nodes, sizeof *run->allowed);
        if (!run->allowed)
            abort();
        for (size_t k = 0; k < a->n_specs; k++)
            for (uint32_t i = 0; i < c->nodes; i++)
                run->allowed[k * c->nodes + i] =
                    alibaba_spec_has(a->specs[k], a->nodes[c->ali_nodes[i]].model);
    }
}

/* The nodes' kinds: each node's slots (a whole node for one job at a time
 * when they differ on a processor trace: its CPUs count 1), which kind it
 * is, where its GPU flags are, and per kind the best sets' links. */
static void sim__types_setup(plan *p, sim_run *run)
{
    const sim_cluster *c = run->c;
    run->type_of = calloc(c->nodes, sizeof *run->type_of);
    run->row = calloc(c->nodes, sizeof *run->row);
    run->best = calloc(c->n_types, sizeof *run->best);
    if (!run->type_of || !run->row || !run->best)
        abort();
    size_t flags = 0;
    uint32_t i = 0;
    for (size_t t = 0; t < c->n_types; t++) {
        const sim_type *y = &c->types[t];
        for (uint32_t k = 0; k < y->nodes && i < c->nodes; k++, i++) {
            run->type_of[i] = (uint32_t)t;
            p->nodes[i].tag = p->nodes[i].group = y->site; /* a gang stays in one site when one can hold it */
            run->row[i] = y->topo ? flags : SIZE_MAX;
            flags += y->topo ? y->per_node : 0;
            if (!c->uniform) {
                p->nodes[i].slots = p->nodes[i].free = y->per_node;
                if (c->whole_nodes)
                    p->nodes[i].cpus = p->nodes[i].cpus_free = 1;
            }
        }
        if (!y->topo)
            continue;
        bool *none = calloc(y->per_node, sizeof *none);
        uint32_t set[64];
        if (!none)
            abort();
        for (uint32_t k = 2; k <= y->per_node && k <= 64; k++)
            run->best[t][k] = gpuset_pick(y->topo, none, k, set) == 0 ? gpuset_weakest(y->topo, set, k) : 0;
        free(none);
    }
    if (i != c->nodes)
        abort(); /* the kinds add up to the nodes */
    if (flags) {
        run->taken = calloc(flags, sizeof *run->taken);
        if (!run->taken)
            abort();
    }
}

/* A size of node, the largest first, and how many nodes have at least it. */
typedef struct sim_level {
    uint32_t size, nodes;
} sim_level;

static int sim__cmp_level(const void *a, const void *b)
{
    uint32_t x = ((const sim_level *)a)->size, y = ((const sim_level *)b)->size;
    return x > y ? -1 : x < y;
}

/* The cluster's sizes of node into lv (room for n_types); returns how many. */
static size_t sim__levels(const sim_cluster *c, sim_level *lv)
{
    size_t n = 0;
    for (size_t t = 0; t < c->n_types; t++) {
        size_t i = 0;
        while (i < n && lv[i].size != c->types[t].per_node)
            i++;
        if (i == n)
            lv[n++] = (sim_level){.size = c->types[t].per_node, .nodes = 0};
    }
    qsort(lv, n, sizeof *lv, sim__cmp_level);
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < c->n_types; t++)
            lv[i].nodes += c->types[t].per_node >= lv[i].size ? c->types[t].nodes : 0;
    return n;
}

/* A job of procs processors or GPUs: the fewest nodes that can hold it
 * with the same share on each (*nodes of *per), the largest nodes first;
 * more than the cluster ever holds at once: the most it can (all nodes of
 * the size that gives the most slots). */
static void sim__shape(const sim_level *lv, size_t n, uint32_t procs, uint32_t *nodes, uint32_t *per)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t k = ((uint64_t)procs + lv[i].size - 1) / lv[i].size;
        if (k <= lv[i].nodes) {
            *nodes = k ? (uint32_t)k : 1;
            *per = (uint32_t)(((uint64_t)procs + *nodes - 1) / *nodes);
            return;
        }
    }
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if ((uint64_t)lv[i].size * lv[i].nodes > (uint64_t)lv[b].size * lv[b].nodes)
            b = i;
    *nodes = lv[b].nodes;
    *per = lv[b].size;
}

static int sim__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int sim__cmp_user(const void *a, const void *b)
{
    const sim_job *x = *(const sim_job *const *)a, *y = *(const sim_job *const *)b;
    return x->t->user < y->t->user ? -1 : x->t->user > y->t->user;
}

/* Jain's fairness index of the users' mean bounded slowdowns:
 * (sum x)^2 / (n sum x^2), 1 when every user fares alike, 1/n when one
 * user takes all the slowdown. Jobs without a user count as one user. */
static void sim__fairness(sim_job *jobs, size_t n, sim_metrics *m)
{
    sim_job **by = calloc(n, sizeof(sim_job *));
    if (!by)
        abort();
    for (size_t i = 0; i < n; i++)
        by[i] = &jobs[i];
    qsort(by, n, sizeof(sim_job *), sim__cmp_user);
    double sum = 0, sq = 0;
    size_t users = 0;
    for (size_t i = 0; i < n;) {
        size_t k = i;
        double b = 0;
        for (; k < n && by[k]->t->user == by[i]->t->user; k++) {
            double w = (double)(by[k]->pj.start - by[k]->pj.submit), r = (double)by[k]->t->run;
            b += fmax(1.0, (w + r) / fmax(r, 10.0));
        }
        double mean = b / (double)(k - i);
        sum += mean;
        sq += mean * mean;
        users++;
        i = k;
    }
    m->users = users;
    m->fairness = sq > 0 ? sum * sum / ((double)users * sq) : 1;
    free(by);
}

/* A job arrives: in the plan's queue, or the multifactor pass's. */
static void sim__submit(sim_run *r, plan *p, sim_job *j)
{
    if (r->mf) {
        j->pj.start = -1;
        mf_submit(r->mf, &j->pj, j->t->user, j->t->group);
    } else {
        plan_submit(p, &j->pj);
    }
}

/* The most nodes one site has with at least per_node processors or GPUs. */
static uint32_t sim__site_most(const sim_cluster *c, uint32_t per_node)
{
    uint32_t count[SIM_SITES_MAX + 1] = {0}, most = 0;
    for (size_t t = 0; t < c->n_types; t++) {
        const sim_type *y = &c->types[t];
        if (y->per_node >= per_node && y->site <= SIM_SITES_MAX && (count[y->site] += y->nodes) > most)
            most = count[y->site];
    }
    return most;
}

/* Replays jobs [first, first + n) of t on the cluster c, from an empty
 * cluster at the first one's submit time. */
static void sim_replay(const swf *t, size_t first, size_t n, const plan_policy *policy, const sim_cluster *c,
                       sim_metrics *m)
{
    uint32_t nodes = c->nodes, per_node = c->per_node;
    if (n == 0 || nodes == 0 || per_node == 0 || (!c->ali && !c->n_types))
        abort(); /* main checks them */
    plan p;
    plan_init(&p, policy, nodes, per_node);
    sim_job *jobs = calloc(n, sizeof *jobs);
    sim_run run = {.heap = {.a = calloc(n, sizeof(sim_job *)), .n = 0}, .seq = 0, .c = c};
    mf fair; /* multifactor: the leader's own pass, with fair share between the trace's users */
    if (policy->order == PLAN_PRIORITY) {
        mf_init(&fair, policy);
        run.mf = &fair;
    }
    if (!jobs || !run.heap.a)
        abort();
    sim_level *lv = calloc(c->n_types + 1, sizeof *lv);
    if (!lv)
        abort();
    size_t n_lv = 0;
    if (c->ali)
        sim__ali_setup(&p, &run, t, first, n);
    else {
        sim__types_setup(&p, &run);
        n_lv = sim__levels(c, lv);
    }
    if (c->rtt && !c->rtt_ignored) { /* as the leader with the policy's latency lines */
        p.site_rtt = sim__site_rtt;
        p.rtt_arg = c->rtt;
    }
    for (size_t i = 0; i < n; i++) {
        const swf_job *s = &t->jobs[first + i];
        sim_job *j = &jobs[i];
        j->t = s;
        j->pj.id = s->id;
        j->pj.submit = s->submit;
        j->pj.limit = s->request;
        /* ceil(procs / per node) nodes of the largest size that has that
         * many, never more than there are: whole ones (SWF; when nodes
         * differ, the job's share of each, one job a node), or that many
         * GPUs of shared ones (GPU traces). */
        if (!c->ali)
            sim__shape(lv, n_lv, s->procs, &j->pj.nodes, &j->pj.per_node);
        if (c->whole_nodes && c->uniform)
            j->pj.per_node = per_node;
        else if (c->whole_nodes)
            j->pj.cpus_per_node = 1;
        if (c->ali) { /* one node: whole GPUs, or a fraction of one */
            j->pj.nodes = 1;
            j->pj.per_node = s->milli ? s->milli : s->procs * GPUSHARE_GPU;
            j->pj.cpus_per_node = s->cpu_milli;
            j->pj.allowed = s->models ? &run.allowed[(size_t)(s->models - 1) * nodes] : NULL;
        }
        j->pj.user = j;
        /* Among sites, a gang stays in one; it may span them with
         * --span-sites, or when no site could ever hold it (it would never
         * run: as a job larger than the cluster shrinks to it). */
        j->pj.span = c->span || (c->n_sites && j->pj.nodes > sim__site_most(c, j->pj.per_node));
        j->held = (uint64_t)j->pj.nodes * j->pj.per_node; /* whole nodes: when started */
    }
    free(lv);
    int64_t now = jobs[0].pj.submit;
    size_t next = 0, started = 0, arrived = 0;
    double frag_area = 0, frag_time = 0, frag = 0;
    sim__submit(&run, &p, &jobs[next++]);
    while (started < n) {
        started +=
            run.mf ? mf_pass(run.mf, &p, now, sim__started, &run) : plan_pass(&p, now, sim__started, &run);
        for (; !c->whole_nodes && arrived < next; arrived++) /* the pass of its arrival */
            run.stranded += sim__stranded(&run, &p, &jobs[arrived].pj);
        if (started == n)
            break;
        if (c->ali)
            frag = gpushare_fragmentation(&run.share);
        else if (!c->whole_nodes)
            frag = sim__fragmentation(&p);
        int64_t arrival = next < n ? jobs[next].pj.submit : INT64_MAX;
        int64_t end = run.heap.n ? run.heap.a[0]->pj.start + run.heap.a[0]->t->run : INT64_MAX;
        if (arrival == INT64_MAX && end == INT64_MAX)
            break; /* nothing can ever start what is left (cannot happen: jobs fit) */
        int64_t then = arrival <= end ? arrival : end;
        if (then > now) { /* time-weighted, while something waits or runs */
            frag_area += frag * (double)(then - now);
            frag_time += (double)(then - now);
        }
        if (arrival <= end) {
            now = arrival > now ? arrival : now;
            sim__submit(&run, &p, &jobs[next++]);
        } else {
            now = end > now ? end : now;
            sim__ended(&run, &p, sim__heap_pop(&run.heap), now);
        }
    }
    while (run.heap.n) { /* what still runs, for the GPU bookkeeping */
        sim_job *j = sim__heap_pop(&run.heap);
        sim__ended(&run, &p, j, j->pj.start + j->t->run);
    }
    /* The figures. */
    double *bsld = calloc(n, sizeof *bsld);
    if (!bsld)
        abort();
    double wait = 0, jct = 0, area = 0, capacity = 0;
    for (size_t i = 0; i < p.n_nodes; i++)
        capacity += p.nodes[i].slots;
    int64_t t0 = jobs[0].pj.submit, t1 = t0;
    for (size_t i = 0; i < n; i++) {
        const sim_job *j = &jobs[i];
        double w = (double)(j->pj.start - j->pj.submit), r = (double)j->t->run;
        wait += w;
        jct += w + r;
        bsld[i] = fmax(1.0, (w + r) / fmax(r, 10.0));
        area += r * (double)j->held;
        if (j->pj.start + j->t->run > t1)
            t1 = j->pj.start + j->t->run;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += bsld[i];
    qsort(bsld, n, sizeof *bsld, sim__cmp_double);
    m->jobs = n;
    m->mean_wait = wait / (double)n;
    m->mean_jct = jct / (double)n;
    m->mean_bsld = sum / (double)n;
    m->p95_bsld = bsld[(size_t)ceil(0.95 * (double)n) - 1];
    m->makespan = (double)(t1 - t0);
    m->utilization = t1 > t0 ? area / ((double)(t1 - t0) * capacity) : 0;
    m->best_connected_share = run.taken && run.multi ? (double)run.connected / (double)run.multi : -1;
    m->fragmentation = c->whole_nodes ? -1 : (frag_time > 0 ? frag_area / frag_time : 0);
    m->stranded_share = c->whole_nodes ? -1 : (double)run.stranded / (double)n;
    m->one_site_share = run.gangs ? (double)run.one_site / (double)run.gangs : -1;
    m->span_rtt_ms = run.spans ? run.span_rtt_ms / (double)run.spans : -1;
    sim__fairness(jobs, n, m);
    free(run.taken);
    free(run.row);
    free(run.type_of);
    free(run.best);
    free(run.allowed);
    if (c->ali)
        gpushare_free(&run.share);
    if (run.mf)
        mf_free(run.mf);
    free(bsld);
    free(run.heap.a);
    plan_free(&p);
    free(jobs);
}

static void sim__metrics_json(json *j, const sim_metrics *m)
{
    json_kv_uint(j, "jobs", m->jobs);
    json_key(j, "utilization");
    json_double(j, m->utilization);
    json_key(j, "mean_wait");
    json_double(j, m->mean_wait);
    json_key(j, "mean_bounded_slowdown");
    json_double(j, m->mean_bsld);
    json_key(j, "p95_bounded_slowdown");
    json_double(j, m->p95_bsld);
    json_key(j, "makespan");
    json_double(j, m->makespan);
    json_key(j, "mean_jct");
    json_double(j, m->mean_jct);
    /* GPU placement figures: null where they do not apply (a processor
     * trace; no node topology given). */
    json_key(j, "best_connected_share");
    if (m->best_connected_share >= 0)
        json_double(j, m->best_connected_share);
    else
        json_null(j);
    json_key(j, "fragmentation");
    if (m->fragmentation >= 0)
        json_double(j, m->fragmentation);
    else
        json_null(j);
    json_key(j, "stranded_share");
    if (m->stranded_share >= 0)
        json_double(j, m->stranded_share);
    else
        json_null(j);
    json_key(j, "gangs_one_site_share");
    if (m->one_site_share >= 0)
        json_double(j, m->one_site_share);
    else
        json_null(j);
    /* 0 when no gang spanned sites (or no latency lines). */
    json_kv_double(j, "span_rtt_ms_mean", m->span_rtt_ms >= 0 ? m->span_rtt_ms : 0);
    json_kv_double(j, "fairness", m->fairness);
    json_kv_uint(j, "users", m->users);
}

static void sim__usage(FILE *f)
{
    fprintf(f, "usage: jazari-sim --trace FILE [--policy NAME] [--placement NAME] [--json]\n"
               "                  [--windows rlscheduler|random:SEED] [--load F] [--cluster CONFIG] "
               "[--span-sites] [--ignore-latency] "
               "[--nodes N] [--procs-per-node P]\n"
               "                  [--vc NAME] [--gpus-per-node G] [--node-xml FILE] [--nodes-csv FILE]\n"
               "Replays a trace with the scheduler's own core, in simulated time.\n"
               "  --policy     jazari (ours, the default: aged smallest area first, EASY), fcfs,\n"
               "               fcfs-easy, sjf, sjf-easy, multifactor (the leader's own pass: age, fair\n"
               "               share between the trace's groups and users, size; EASY); without\n"
               "               backfilling: jazari-noback (our order), jazari-ect (the job expected\n"
               "               to end first, aged)\n"
               "  --placement  jazari (the default, as the leader: the fullest nodes, the\n"
               "               best-connected GPUs; shared GPUs: the least added fragmentation),\n"
               "               best-fit (the fullest nodes, the fullest GPU for a fraction),\n"
               "               first-fit (the lowest-index nodes and GPUs)\n"
               "  --windows    rlscheduler: the 10 windows of 1,024 jobs of RLScheduler's protocol;\n"
               "               random:SEED: 10 other windows of 1,024, drawn from SEED\n"
               "  --load F     arrivals F times as dense (0.1 to 10), the same jobs\n"
               "  --span-sites a multi-node job may span sites when no one site can hold it now\n"
               "  --ignore-latency  the --cluster's latency lines measure span_rtt_ms_mean but\n"
               "               do not guide placement (the largest sites first: for comparison)\n"
               "  A .swf: --nodes, --procs-per-node (default: the trace's MaxNodes and\n"
               "  MaxProcs/MaxNodes).\n"
               "  A .csv is the Philly GPU trace: --vc picks its virtual cluster (default: the\n"
               "  busiest), --gpus-per-node G (8), --nodes (default: an 80%% offered load), and\n"
               "  --node-xml FILE (an hwloc XML) gives each node its GPU links, to measure\n"
               "  the share of multi-GPU jobs on their best-connected set.\n"
               "  A .csv that begins with the Alibaba pod list's header (name,cpu_milli,...) is\n"
               "  the Alibaba GPU trace (FGD): its nodes from --nodes-csv FILE (default: the\n"
               "  openb_node_list_gpu_node.csv beside it), GPUs and CPUs as listed, a GPU\n"
               "  shared in thousandths (a fraction fits in one GPU); --nodes N takes N nodes\n"
               "  spread over the list (default: all). Pods without GPUs, and pods without a\n"
               "  run time (never scheduled), are dropped and counted; run time = deletion -\n"
               "  scheduled time; no limits in the trace: the run time is the limit.\n"
               "  GPU traces also give fragmentation and stranded_share (see the README).\n"
               "  fairness is Jain's index of the users' mean bounded slowdowns (1: all alike).\n"
               "  --cluster CONFIG describes the nodes instead of --nodes, --procs-per-node,\n"
               "  --gpus-per-node and --node-xml (not for the Alibaba trace): a line per kind of\n"
               "  node, COUNT then what each node is; '#' starts a comment:\n"
               "    16 hgx-h100-8gpu.xml   # 16 nodes of this hwloc XML (beside CONFIG, or absolute)\n"
               "    8  gpus=8              # 8 nodes of 8 GPUs, links unknown\n"
               "    4  procs=64            # a .swf trace: 4 nodes of 64 processors\n"
               "  GPU traces take XML and gpus= lines, .swf traces procs= lines; 1 to 100000\n"
               "  nodes in all, gpus= and procs= 1 to 4096, an XML 1 to 64 GPUs. A job takes the\n"
               "  fewest nodes that hold it, the same share on each (the largest nodes first);\n"
               "  on a .swf trace with nodes of several sizes, one job a node.\n"
               "  A line may end with site=NAME (then every line does): a multi-node job stays\n"
               "  in one site, waiting for one that can hold it, unless --span-sites lets it\n"
               "  span the fewest sites when none can now (one larger than every site always\n"
               "  spans); gangs_one_site_share reports the share of multi-node jobs in one site.\n"
               "  'latency A B DURATION' lines (sites named by site= lines above; ms or s, up to\n"
               "  60s; a pair once) give round trips: a spanning gang takes the best-connected\n"
               "  of the fewest sites that hold it, as the leader does with the policy's latency\n"
               "  lines; span_rtt_ms_mean is the mean worst round trip of the gangs that spanned\n"
               "  (those with every pair known; 0 when none did).\n");
}

static int sim__count(const char *flag, const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v == 0 || v > max) {
        fprintf(stderr, "jazari-sim: bad %s '%.40s': a whole number from 1 to %u\n", flag, s, max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

typedef struct sim_opts {
    const char *trace, *windows, *policy, *placement, *vc, *node_xml, *nodes_csv, *cluster;
    bool json;
    bool span;           /* --span-sites */
    bool ignore_latency; /* --ignore-latency */
    uint32_t nodes, ppn, gpn;
    uint64_t seed; /* --windows random:SEED */
    double load;   /* --load F: arrivals F times as dense; 0: as in the trace */
} sim_opts;

/* The command line into o. Returns 0, 1 after --help, or 2 (said why). */
static int sim__args(int argc, char **argv, sim_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sim__usage(stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--span-sites") == 0) {
            o->span = true;
        } else if (strcmp(a, "--ignore-latency") == 0) {
            o->ignore_latency = true;
        } else if (strcmp(a, "--trace") == 0 && has) {
            o->trace = argv[++i];
        } else if (strcmp(a, "--policy") == 0 && has) {
            o->policy = argv[++i];
        } else if (strcmp(a, "--placement") == 0 && has) {
            o->placement = argv[++i];
        } else if (strcmp(a, "--windows") == 0 && has) {
            o->windows = argv[++i];
        } else if (strcmp(a, "--load") == 0 && has) {
            char *end;
            o->load = strtod(argv[++i], &end);
            if (*end || !(o->load >= 0.1 && o->load <= 10)) {
                fprintf(stderr,
                        "jazari-sim: --load '%.40s': a factor from 0.1 to 10 (2: arrivals twice as dense)\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--nodes") == 0 && has) {
            if (sim__count(a, argv[++i], 1u << 20, &o->nodes) != 0)
                return 2;
        } else if (strcmp(a, "--procs-per-node") == 0 && has) {
            if (sim__count(a, argv[++i], 1u << 16, &o->ppn) != 0)
                return 2;
        } else if (strcmp(a, "--gpus-per-node") == 0 && has) {
            if (sim__count(a, argv[++i], 64, &o->gpn) != 0)
                return 2;
        } else if (strcmp(a, "--vc") == 0 && has) {
            o->vc = argv[++i];
        } else if (strcmp(a, "--node-xml") == 0 && has) {
            o->node_xml = argv[++i];
        } else if (strcmp(a, "--nodes-csv") == 0 && has) {
            o->nodes_csv = argv[++i];
        } else if (strcmp(a, "--cluster") == 0 && has) {
            o->cluster = argv[++i];
        } else {
            fprintf(stderr, "jazari-sim: unknown or incomplete argument '%.60s' (try --help)\n", a);
            return 2;
        }
    }
    if (!o->trace) {
        fprintf(stderr, "jazari-sim: which trace? --trace FILE.swf (try --help)\n");
        return 2;
    }
    if (o->cluster && (o->nodes || o->ppn || o->gpn || o->node_xml)) {
        fprintf(stderr,
                "jazari-sim: --cluster describes the nodes: give it without --nodes, --procs-per-node, "
                "--gpus-per-node and --node-xml\n");
        return 2;
    }
    if (o->windows && strncmp(o->windows, "random:", 7) == 0) {
        char *end;
        o->seed = strtoull(o->windows + 7, &end, 10);
        if (*end || !o->windows[7]) {
            fprintf(stderr, "jazari-sim: --windows random:SEED takes a number\n");
            return 2;
        }
    } else if (o->windows && strcmp(o->windows, "rlscheduler") != 0) {
        fprintf(stderr, "jazari-sim: unknown --windows '%.40s': rlscheduler, or random:SEED\n", o->windows);
        return 2;
    }
    return 0;
}

/* What main loaded and built; sim__done frees it. */
typedef struct sim_input {
    swf swf;         /* an SWF or Philly trace */
    alibaba ali;     /* the Alibaba trace (ali.pods the jobs) */
    swf *jobs;       /* &swf or &ali.pods (--load rescales its arrivals) */
    sim_type *types; /* SWF and Philly: the nodes' kinds (--cluster's lines; else one) */
    size_t n_types;
    char *sites[SIM_SITES_MAX]; /* --cluster's site= names, in order of appearance */
    size_t n_sites;
    uint32_t *rtt; /* latency lines: (SIM_SITES_MAX + 1)^2 (sim_cluster.rtt); NULL: none */
    uint32_t *ali_nodes;
    size_t unplaceable; /* Alibaba pods no node of the cluster can ever hold, dropped */
    char vc[64];
} sim_input;

static void sim__done(sim_input *in)
{
    for (size_t i = 0; i < in->n_sites; i++)
        free(in->sites[i]);
    free(in->rtt);
    swf_free(&in->swf);
    alibaba_free(&in->ali);
    for (size_t i = 0; i < in->n_types; i++) {
        topo_free(in->types[i].topo);
        free(in->types[i].what);
    }
    free(in->types);
    free(in->ali_nodes);
}

/* Keeps the pods some node of the cluster could hold (enough GPUs and
 * CPUs, a model of its gpu_spec); counts the others. */
static void sim__ali_placeable(sim_input *in, uint32_t nodes)
{
    swf *t = &in->ali.pods;
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        const swf_job *j = &t->jobs[i];
        bool fits = false;
        for (uint32_t c = 0; c < nodes && !fits; c++) {
            const alibaba_node *x = &in->ali.nodes[in->ali_nodes[c]];
            fits = x->gpus >= j->procs && x->cpu_milli >= j->cpu_milli &&
                   (!j->models || alibaba_spec_has(in->ali.specs[j->models - 1], x->model));
        }
        if (fits)
            t->jobs[k++] = *j;
    }
    in->unplaceable = t->n - k;
    t->n = k;
}

/* The Alibaba trace: its pods and nodes, N of them spread over the list
 * (every list-size/N-th, so the models' mix stays). Returns 0 or 2 (said why). */
static int sim__load_alibaba(const sim_opts *o, sim_input *in, sim_cluster *c)
{
    char err[512], nodes_csv[4096];
    if (o->cluster) {
        fprintf(stderr, "jazari-sim: --cluster is not for the Alibaba trace: its nodes are its node list "
                        "(--nodes-csv, --nodes N of them)\n");
        return 2;
    }
    if (o->vc || o->gpn || o->ppn || o->node_xml) {
        fprintf(stderr, "jazari-sim: --vc, --gpus-per-node, --procs-per-node and --node-xml are not for the "
                        "Alibaba trace (its nodes are in --nodes-csv)\n");
        return 2;
    }
    if (o->nodes_csv) {
        snprintf(nodes_csv, sizeof nodes_csv, "%s", o->nodes_csv);
    } else {
        const char *slash = strrchr(o->trace, '/');
        int dir = slash ? (int)(slash - o->trace + 1) : 0;
        snprintf(nodes_csv, sizeof nodes_csv, "%.*sopenb_node_list_gpu_node.csv", dir, o->trace);
    }
    if (alibaba_load(o->trace, nodes_csv, &in->ali, err, sizeof err) != 0) {
        fprintf(stderr, "jazari-sim: %s%s\n", err,
                o->nodes_csv ? "" : " (give the node list: --nodes-csv FILE)");
        return 2;
    }
    /* All the nodes by default. Its pods use at most 66 GPUs at once of the
     * 6,212 listed, though: on them all no pod waits. */
    uint32_t n = o->nodes ? o->nodes : (uint32_t)in->ali.n_nodes;
    if (n > in->ali.n_nodes) {
        fprintf(stderr, "jazari-sim: --nodes %u but %s lists %zu nodes\n", n, nodes_csv, in->ali.n_nodes);
        return 2;
    }
    in->ali_nodes = calloc(n, sizeof *in->ali_nodes);
    if (!in->ali_nodes)
        abort();
    uint32_t most = 0;
    for (uint32_t i = 0; i < n; i++) {
        in->ali_nodes[i] = (uint32_t)((uint64_t)i * in->ali.n_nodes / n);
        uint32_t g = in->ali.nodes[in->ali_nodes[i]].gpus;
        most = g > most ? g : most;
    }
    sim__ali_placeable(in, n);
    if (in->ali.pods.n == 0) {
        fprintf(stderr, "jazari-sim: no pod of %s fits any of the %u nodes: more --nodes\n", o->trace, n);
        return 2;
    }
    in->jobs = &in->ali.pods;
    c->ali = &in->ali;
    c->ali_nodes = in->ali_nodes;
    c->nodes = n;
    c->per_node = most * GPUSHARE_GPU;
    return 0;
}

/* --node-xml into *out (gpn: its GPUs unless given). Returns 0 or 2 (said why). */
static int sim__load_topology(const sim_opts *o, topo **out, uint32_t *gpn)
{
    char err[512];
    topo_load_opts t = {.xml_path = o->node_xml, .name = NULL, .probe_gpus = false};
    if (topo_load(&t, out, err, sizeof err) != 0 || (*out)->n_gpus == 0 || (*out)->n_gpus > 64) {
        fprintf(stderr, "jazari-sim: --node-xml: %s\n", *out ? "a node of 1 to 64 GPUs is needed" : err);
        return 2;
    }
    if (!*gpn)
        *gpn = (uint32_t)(*out)->n_gpus;
    if (*gpn != (*out)->n_gpus) {
        fprintf(stderr, "jazari-sim: --gpus-per-node %u but %s has %zu GPUs\n", *gpn, o->node_xml,
                (*out)->n_gpus);
        return 2;
    }
    return 0;
}

#define SIM_MAX_NODES 100000u  /* --cluster: nodes of a line, and in all */
#define SIM_MAX_PER_NODE 4096u /* --cluster: gpus= and procs= */

/* A whole number from 1 to max in *out; 0, or -1 if s is not one. */
static int sim__number(const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v == 0 || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* One line of --cluster (its comment cut, not blank) into y; *procs: a
 * procs= line. Returns 0, or -1 with why (the line's problem). */
static int sim__cluster_line(const char *path, char *line, sim_type *y, bool *procs, const char **site,
                             char *why, size_t len)
{
    const char *sep = " \t\r\n\v\f";
    char *save = NULL, *count = strtok_r(line, sep, &save), *spec = strtok_r(NULL, sep, &save);
    char *at = spec ? strtok_r(NULL, sep, &save) : NULL;
    *site = NULL;
    if (at && strncmp(at, "site=", 5) == 0) {
        *site = at + 5;
        size_t l = strlen(*site), ok = l > 0 && l <= 63 && isalnum((unsigned char)(*site)[0]);
        for (size_t i = 0; ok && i < l; i++)
            ok = isalnum((unsigned char)(*site)[i]) || strchr("._-", (*site)[i]);
        if (!ok) {
            snprintf(why, len, "bad site '%.40s': 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
                     *site);
            return -1;
        }
        at = NULL;
    }
    if (!spec || at || strtok_r(NULL, sep, &save)) {
        snprintf(why, len,
                 "expected COUNT and what a node is ('16 node.xml', '8 gpus=8' or '4 procs=64'), "
                 "then site=NAME or nothing");
        return -1;
    }
    if (sim__number(count, SIM_MAX_NODES, &y->nodes) != 0) {
        snprintf(why, len, "bad node count '%.40s': a whole number from 1 to %u", count, SIM_MAX_NODES);
        return -1;
    }
    *procs = strncmp(spec, "procs=", 6) == 0;
    if (*procs || strncmp(spec, "gpus=", 5) == 0) {
        const char *v = spec + (*procs ? 6 : 5);
        if (sim__number(v, SIM_MAX_PER_NODE, &y->per_node) != 0) {
            snprintf(why, len, "bad %s '%.40s': a whole number from 1 to %u", *procs ? "procs=" : "gpus=", v,
                     SIM_MAX_PER_NODE);
            return -1;
        }
        return 0;
    }
    if (strchr(spec, '=') && !strchr(spec, '/')) {
        snprintf(why, len, "unknown '%.40s': gpus=N, procs=N or an hwloc XML file", spec);
        return -1;
    }
    /* An hwloc XML: beside the config unless absolute. */
    const char *slash = strrchr(path, '/');
    int dir = spec[0] != '/' && slash ? (int)(slash - path + 1) : 0;
    size_t n = (size_t)dir + strlen(spec) + 1;
    char *xml = malloc(n), err[512];
    if (!xml)
        abort();
    snprintf(xml, n, "%.*s%s", dir, path, spec);
    topo_load_opts t = {.xml_path = xml, .name = NULL, .probe_gpus = false};
    if (topo_load(&t, &y->topo, err, sizeof err) != 0) {
        snprintf(why, len, "%s", err);
        free(xml);
        return -1;
    }
    y->what = xml;
    if (y->topo->n_gpus == 0 || y->topo->n_gpus > 64) {
        snprintf(why, len, "%.300s has %zu GPUs: a node of 1 to 64 is needed", spec, y->topo->n_gpus);
        return -1;
    }
    y->per_node = (uint32_t)y->topo->n_gpus;
    return 0;
}

/* A site's number (1 + its index), named anew if need be; 0 when there
 * are too many. */
static uint32_t sim__site(sim_input *in, const char *name)
{
    for (size_t i = 0; i < in->n_sites; i++)
        if (strcmp(in->sites[i], name) == 0)
            return (uint32_t)i + 1;
    if (in->n_sites == SIM_SITES_MAX)
        return 0;
    in->sites[in->n_sites] = strdup(name);
    if (!in->sites[in->n_sites])
        abort();
    return (uint32_t)++in->n_sites;
}

/* A line 'latency A B DURATION' (its comment cut) into in->rtt: the round
 * trip between two sites named by site= lines above, as the policy's
 * latency lines. 1: not such a line; 0 taken; -1 with why. */
static int sim__latency_line(sim_input *in, const char *line, char *why, size_t len)
{
    char w[5][80];
    int n = sscanf(line, " %79s %79s %79s %79s %79s", w[0], w[1], w[2], w[3], w[4]);
    if (n < 1 || strcmp(w[0], "latency") != 0)
        return 1;
    int64_t ms = 0;
    if (n != 4 || dur_ms(w[3], &ms) != 0 || ms > 60000) {
        snprintf(why, len,
                 "expected 'latency SITE SITE DURATION': a round trip from 0 to 60s, such as "
                 "'latency casa rabat 30ms'");
        return -1;
    }
    uint32_t at[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < in->n_sites && !at[k]; i++)
            if (strcmp(in->sites[i], w[1 + k]) == 0)
                at[k] = (uint32_t)i + 1;
        if (!at[k]) {
            snprintf(why, len, "latency: site '%.63s' is named by no site= line above", w[1 + k]);
            return -1;
        }
    }
    if (at[0] == at[1]) {
        snprintf(why, len, "latency %.63s %.63s: a site with itself; name two different sites", w[1], w[2]);
        return -1;
    }
    size_t row = SIM_SITES_MAX + 1;
    if (!in->rtt) {
        in->rtt = malloc(row * row * sizeof *in->rtt);
        if (!in->rtt)
            abort();
        for (size_t i = 0; i < row * row; i++)
            in->rtt[i] = i / row == i % row ? 0 : PLAN_RTT_UNKNOWN;
    }
    if (in->rtt[at[0] * row + at[1]] != PLAN_RTT_UNKNOWN) {
        snprintf(why, len, "latency %.63s %.63s: the pair has a latency line already; keep one", w[1], w[2]);
        return -1;
    }
    in->rtt[at[0] * row + at[1]] = in->rtt[at[1] * row + at[0]] = (uint32_t)ms;
    return 0;
}

/* --cluster FILE into in->types: one kind of node a line (gpu_trace: GPU
 * lines, else procs= lines), and latency lines into in->rtt. Returns 0 or
 * 2 (said why, FILE:LINE). */
static int sim__load_cluster(const char *path, bool gpu_trace, sim_input *in)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "jazari-sim: --cluster %s: %s\n", path, strerror(errno));
        return 2;
    }
    char *line = NULL, why[640];
    size_t cap = 0, lineno = 0, cap_types = 0;
    uint64_t total = 0;
    size_t first_right = 0; /* a line of the kind the trace needs */
    int rc = 0;
    for (ssize_t got; rc == 0 && (got = getline(&line, &cap, f)) >= 0;) {
        lineno++;
        if (memchr(line, '\0', (size_t)got)) {
            fprintf(stderr, "jazari-sim: %s:%zu: not text (a NUL byte)\n", path, lineno);
            rc = 2;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        if (line[strspn(line, " \t\r\n\v\f")] == '\0')
            continue;
        int lat = sim__latency_line(in, line, why, sizeof why);
        if (lat < 0) {
            fprintf(stderr, "jazari-sim: %s:%zu: %s\n", path, lineno, why);
            rc = 2;
            break;
        }
        if (lat == 0)
            continue;
        if (in->n_types == cap_types) {
            cap_types = cap_types ? 2 * cap_types : 8;
            sim_type *a = realloc(in->types, cap_types * sizeof *a);
            if (!a)
                abort();
            in->types = a;
        }
        sim_type *y = &in->types[in->n_types++];
        memset(y, 0, sizeof *y);
        bool procs = false;
        const char *site = NULL;
        if (sim__cluster_line(path, line, y, &procs, &site, why, sizeof why) != 0) {
            fprintf(stderr, "jazari-sim: %s:%zu: %s\n", path, lineno, why);
            rc = 2;
        } else if (in->n_types > 1 && (site != NULL) != (in->types[0].site != 0)) {
            fprintf(stderr, "jazari-sim: %s:%zu: site= on every line or on none (line %zu %s)\n", path,
                    lineno, first_right, in->types[0].site ? "has one" : "has none");
            rc = 2;
        } else if (site && !(y->site = sim__site(in, site))) {
            fprintf(stderr, "jazari-sim: %s:%zu: more than %d sites\n", path, lineno, SIM_SITES_MAX);
            rc = 2;
        } else if (procs == gpu_trace) {
            if (first_right)
                fprintf(stderr,
                        "jazari-sim: %s:%zu: procs= lines and GPU lines (gpus= or an XML) cannot be mixed "
                        "(line %zu)\n",
                        path, lineno, first_right);
            else if (procs)
                fprintf(stderr,
                        "jazari-sim: %s:%zu: procs= is for .swf traces; a GPU trace (.csv) needs gpus= or "
                        "hwloc XML lines\n",
                        path, lineno);
            else
                fprintf(stderr,
                        "jazari-sim: %s:%zu: a .swf trace needs procs= lines (gpus= and XML lines are for "
                        "GPU traces)\n",
                        path, lineno);
            rc = 2;
        } else if ((total += y->nodes) > SIM_MAX_NODES) {
            fprintf(stderr, "jazari-sim: %s:%zu: more than %u nodes in all\n", path, lineno, SIM_MAX_NODES);
            rc = 2;
        }
        if (rc == 0 && !first_right)
            first_right = lineno;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "jazari-sim: %s: read error after line %zu\n", path, lineno);
        rc = 2;
    }
    if (rc == 0 && in->n_types == 0) {
        fprintf(stderr, "jazari-sim: %s: no nodes (lines of COUNT and what a node is: see --help)\n", path);
        rc = 2;
    }
    free(line);
    fclose(f);
    return rc;
}

/* The nodes' kinds of in into c. */
static void sim__cluster_of(const sim_input *in, sim_cluster *c)
{
    c->types = in->types;
    c->n_types = in->n_types;
    c->n_sites = in->n_sites;
    c->rtt = in->rtt;
    c->nodes = c->per_node = 0;
    c->uniform = true;
    for (size_t i = 0; i < in->n_types; i++) {
        c->nodes += in->types[i].nodes;
        c->uniform = c->uniform && in->types[i].per_node == in->types[0].per_node;
        c->per_node = in->types[i].per_node > c->per_node ? in->types[i].per_node : c->per_node;
    }
}

/* An SWF or Philly trace, and its cluster. Returns 0 or 2 (said why). */
static int sim__load_jobs(const sim_opts *o, bool gpu_trace, sim_input *in, sim_cluster *c)
{
    char err[512];
    if (o->nodes_csv) {
        fprintf(stderr, "jazari-sim: --nodes-csv is for the Alibaba trace (a pod list)\n");
        return 2;
    }
    if (o->cluster && sim__load_cluster(o->cluster, gpu_trace, in) != 0)
        return 2;
    if (gpu_trace ? philly_load(o->trace, o->vc, &in->swf, in->vc, sizeof in->vc, err, sizeof err) != 0
                  : swf_load(o->trace, &in->swf, err, sizeof err) != 0) {
        fprintf(stderr, "jazari-sim: %s\n", err);
        return 2;
    }
    const swf *t = in->jobs = &in->swf;
    c->whole_nodes = !gpu_trace;
    if (o->cluster) {
        c->config = o->cluster;
        sim__cluster_of(in, c);
        return 0;
    }
    uint32_t nodes = o->nodes, ppn = o->ppn, gpn = o->gpn;
    topo *node_topo = NULL;
    if (o->node_xml && sim__load_topology(o, &node_topo, &gpn) != 0) {
        topo_free(node_topo);
        return 2;
    }
    if (gpu_trace) {
        ppn = gpn ? gpn : 8;
        if (!nodes) {
            /* As many nodes as an 80% offered load needs: the GPU time of the
             * trace over its span. */
            double gpu_s = 0;
            for (size_t i = 0; i < t->n; i++)
                gpu_s += (double)t->jobs[i].run * t->jobs[i].procs;
            double span = (double)(t->jobs[t->n - 1].submit - t->jobs[0].submit) + 1;
            nodes = (uint32_t)(gpu_s / (span * ppn * 0.8)) + 1;
            uint32_t most = 0;
            for (size_t i = 0; i < t->n; i++)
                most = t->jobs[i].procs > most ? t->jobs[i].procs : most;
            if (nodes < (most + ppn - 1) / ppn)
                nodes = (most + ppn - 1) / ppn;
        }
    } else {
        if (!nodes)
            nodes = t->max_nodes ? t->max_nodes : t->max_procs;
        if (!ppn)
            ppn = t->max_nodes && t->max_procs >= t->max_nodes ? t->max_procs / t->max_nodes : 1;
    }
    if (!nodes) {
        fprintf(stderr, "jazari-sim: %s does not say its size (MaxNodes): give --nodes\n", o->trace);
        topo_free(node_topo);
        return 2;
    }
    if (node_topo && ppn != node_topo->n_gpus) {
        fprintf(stderr, "jazari-sim: --node-xml is for GPU traces (.csv)\n");
        topo_free(node_topo);
        return 2;
    }
    in->types = calloc(1, sizeof *in->types);
    if (!in->types)
        abort();
    in->types[0] = (sim_type){.nodes = nodes, .per_node = ppn, .topo = node_topo, .what = NULL};
    in->n_types = 1;
    sim__cluster_of(in, c);
    return 0;
}

static void sim__json(buf *out, const sim_opts *o, const sim_input *in, const sim_cluster *c,
                      const plan_policy *policy, const sim_metrics *avg, const sim_metrics *per, size_t nwin)
{
    json j;
    json_init(&j, out, true);
    json_obj_begin(&j);
    json_kv_str(&j, "trace", o->trace);
    json_kv_str(&j, "policy", plan_policy_name(policy));
    json_kv_str(&j, "placement", sim_placements[c->placement]);
    json_kv_uint(&j, "nodes", c->nodes);
    if (c->ali) {
        uint64_t gpus = 0;
        for (uint32_t i = 0; i < c->nodes; i++)
            gpus += in->ali.nodes[c->ali_nodes[i]].gpus;
        json_kv_uint(&j, "gpus", gpus);
        json_kv_uint(&j, "pods_without_gpus", in->ali.no_gpu);
        json_kv_uint(&j, "pods_without_run_time", in->ali.no_run_time);
        json_kv_uint(&j, "pods_unplaceable", in->unplaceable);
    } else {
        const char *unit = c->whole_nodes ? "procs" : "gpus";
        json_key(&j, c->whole_nodes ? "procs_per_node" : "gpus_per_node");
        if (c->uniform)
            json_uint(&j, c->per_node);
        else
            json_null(&j); /* see node_types */
        if (!c->whole_nodes)
            json_kv_str(&j, "virtual_cluster", in->vc);
        if (c->config) {
            uint64_t all = 0;
            for (size_t i = 0; i < c->n_types; i++)
                all += (uint64_t)c->types[i].nodes * c->types[i].per_node;
            json_kv_str(&j, "cluster", c->config);
            json_kv_uint(&j, unit, all);
            json_key(&j, "node_types");
            json_arr_begin(&j);
            for (size_t i = 0; i < c->n_types; i++) {
                json_obj_begin(&j);
                json_kv_uint(&j, "nodes", c->types[i].nodes);
                json_kv_uint(&j, unit, c->types[i].per_node);
                if (!c->whole_nodes) {
                    json_key(&j, "topology");
                    if (c->types[i].what)
                        json_str(&j, c->types[i].what);
                    else
                        json_null(&j);
                }
                json_obj_end(&j);
            }
            json_arr_end(&j);
        }
    }
    sim__metrics_json(&j, avg);
    if (o->windows) {
        json_key(&j, "windows");
        json_arr_begin(&j);
        for (size_t w = 0; w < nwin; w++) {
            json_obj_begin(&j);
            json_kv_uint(&j, "first", sim_rl_starts[w]);
            sim__metrics_json(&j, &per[w]);
            json_obj_end(&j);
        }
        json_arr_end(&j);
    }
    json_obj_end(&j);
    buf_putc(out, '\n');
}

static void sim__text(buf *out, const sim_opts *o, const sim_input *in, const sim_cluster *c,
                      const plan_policy *policy, const sim_metrics *avg)
{
    if (c->ali) {
        uint64_t gpus = 0;
        for (uint32_t i = 0; i < c->nodes; i++)
            gpus += in->ali.nodes[c->ali_nodes[i]].gpus;
        buf_printf(out,
                   "trace %s: %zu pods (dropped: %zu without GPUs, %zu without a run time, %zu that no node "
                   "here can hold), %u nodes, %llu GPUs shared in thousandths, policy %s, placement %s\n",
                   o->trace, avg->jobs, in->ali.no_gpu, in->ali.no_run_time, in->unplaceable, c->nodes,
                   (unsigned long long)gpus, plan_policy_name(policy), sim_placements[c->placement]);
    } else if (c->n_types == 1) {
        buf_printf(out, "trace %s: %zu jobs%s, %u nodes x %u, policy %s, placement %s\n", o->trace, avg->jobs,
                   o->windows ? " (10 windows of 1,024, RLScheduler's protocol: means over windows)" : "",
                   c->nodes, c->per_node, plan_policy_name(policy), sim_placements[c->placement]);
    } else {
        buf_printf(out, "trace %s: %zu jobs%s, %u nodes (", o->trace, avg->jobs,
                   o->windows ? " (10 windows of 1,024, RLScheduler's protocol: means over windows)" : "",
                   c->nodes);
        for (size_t i = 0; i < c->n_types; i++)
            buf_printf(out, "%s%u x %u%s%s", i ? ", " : "", c->types[i].nodes, c->types[i].per_node,
                       c->types[i].what ? " " : "", c->types[i].what ? c->types[i].what : "");
        buf_printf(out, "), policy %s, placement %s\n", plan_policy_name(policy),
                   sim_placements[c->placement]);
    }
    buf_printf(
        out,
        "mean bounded slowdown  %.2f\np95 bounded slowdown   %.2f\nmean wait              %.0f s\n"
        "mean job completion    %.0f s\nmakespan               %.0f s\nutilization            %.1f%%\n",
        avg->mean_bsld, avg->p95_bsld, avg->mean_wait, avg->mean_jct, avg->makespan, 100 * avg->utilization);
    if (c->ali)
        buf_printf(out, "fragmentation          %.1f%% of free GPU thousandths (FGD's measure)\n",
                   100 * avg->fragmentation);
    else if (!c->whole_nodes)
        buf_printf(
            out,
            "virtual cluster        %s\nfragmentation          %.1f%% of free GPUs on partly used nodes\n",
            in->vc, 100 * avg->fragmentation);
    if (avg->stranded_share >= 0)
        buf_printf(out,
                   "stranded               %.1f%% of jobs could not start on arrival though enough GPUs "
                   "were free\n",
                   100 * avg->stranded_share);
    if (avg->best_connected_share >= 0)
        buf_printf(out, "best-connected share   %.1f%% of multi-GPU jobs on their best-connected set\n",
                   100 * avg->best_connected_share);
    if (avg->one_site_share >= 0)
        buf_printf(out, "gangs in one site      %.1f%% of multi-node jobs (%zu sites%s)\n",
                   100 * avg->one_site_share, c->n_sites, c->span ? ", spanning allowed" : "");
    if (c->rtt)
        buf_printf(out, "spanning round trip    %.1f ms, the mean worst pair of gangs across sites%s\n",
                   avg->span_rtt_ms >= 0 ? avg->span_rtt_ms : 0, c->rtt_ignored ? " (latency ignored)" : "");
}

int main(int argc, char **argv)
{
    sim_opts o = {.policy = "jazari", .placement = "jazari"};
    int rc = sim__args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    plan_policy policy = {.order = PLAN_FCFS}; /* parsed next */
    if (plan_policy_parse(o.policy, &policy) != 0) {
        fprintf(stderr,
                "jazari-sim: unknown --policy '%.40s': jazari, fcfs, fcfs-easy, sjf, sjf-easy, jazari-noback "
                "or jazari-ect\n",
                o.policy);
        return 2;
    }
    sim_cluster cluster = {.placement = SIM_JAZARI};
    cluster.span = o.span;
    cluster.rtt_ignored = o.ignore_latency;
    while (cluster.placement <= SIM_FIRST_FIT && strcmp(sim_placements[cluster.placement], o.placement) != 0)
        cluster.placement++;
    if (cluster.placement > SIM_FIRST_FIT) {
        fprintf(stderr, "jazari-sim: unknown --placement '%.40s': jazari, best-fit or first-fit\n",
                o.placement);
        return 2;
    }
    policy.first_fit = cluster.placement == SIM_FIRST_FIT;
    sim_input in;
    memset(&in, 0, sizeof in);
    size_t tlen = strlen(o.trace);
    bool csv = tlen > 4 && strcmp(o.trace + tlen - 4, ".csv") == 0;
    if (csv && alibaba_is_pod_list(o.trace) ? sim__load_alibaba(&o, &in, &cluster) != 0
                                            : sim__load_jobs(&o, csv, &in, &cluster) != 0) {
        sim__done(&in);
        return 2;
    }
    if (cluster.ali && policy.order == PLAN_PRIORITY) {
        fprintf(stderr, "jazari-sim: --policy multifactor runs SWF and Philly traces; the Alibaba trace's "
                        "shared GPUs need a placement it does not make: use jazari, fcfs-easy or sjf-easy\n");
        sim__done(&in);
        return 2;
    }
    const swf *t = in.jobs;
    if (o.load > 0 && t->n) /* arrivals load times as dense, the same jobs */
        for (size_t i = 0; i < t->n; i++)
            in.jobs->jobs[i].submit =
                t->jobs[0].submit + (int64_t)((double)(t->jobs[i].submit - t->jobs[0].submit) / o.load);
    size_t nwin = o.windows ? sizeof sim_rl_starts / sizeof sim_rl_starts[0] : 1;
    sim_metrics per[sizeof sim_rl_starts / sizeof sim_rl_starts[0]], avg;
    size_t starts[sizeof sim_rl_starts / sizeof sim_rl_starts[0]];
    memcpy(starts, sim_rl_starts, sizeof starts);
    if (o.seed && t->n > SIM_RL_WINDOW) { /* other windows than the protocol's, the same size */
        uint64_t x = o.seed * 6364136223846793005ull + 1442695040888963407ull;
        for (size_t w = 0; w < nwin; w++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            starts[w] = (size_t)((x >> 33) % (t->n - SIM_RL_WINDOW));
        }
    }
    memset(&avg, 0, sizeof avg);
    size_t sited_windows = 0, span_windows = 0; /* with gangs to count, with spanning gangs */
    for (size_t w = 0; w < nwin; w++) {
        size_t first = o.windows ? starts[w] : 0, n = o.windows ? SIM_RL_WINDOW : t->n;
        if (first + n > t->n) {
            fprintf(stderr, "jazari-sim: %s has %zu jobs: window %zu needs jobs %zu to %zu\n", o.trace, t->n,
                    w, first, first + n - 1);
            sim__done(&in);
            return 2;
        }
        sim_replay(t, first, n, &policy, &cluster, &per[w]);
        avg.jobs += per[w].jobs;
        avg.utilization += per[w].utilization / (double)nwin;
        avg.mean_wait += per[w].mean_wait / (double)nwin;
        avg.mean_bsld += per[w].mean_bsld / (double)nwin;
        avg.p95_bsld += per[w].p95_bsld / (double)nwin;
        avg.makespan += per[w].makespan / (double)nwin;
        avg.mean_jct += per[w].mean_jct / (double)nwin;
        avg.best_connected_share = per[w].best_connected_share; /* GPU traces: one run */
        avg.fragmentation = per[w].fragmentation;
        avg.stranded_share = per[w].stranded_share;
        if (per[w].one_site_share >= 0) { /* a mean over the windows that had gangs */
            avg.one_site_share += per[w].one_site_share;
            sited_windows++;
        }
        if (per[w].span_rtt_ms >= 0) { /* over the windows where gangs spanned */
            avg.span_rtt_ms += per[w].span_rtt_ms;
            span_windows++;
        }
        avg.fairness += per[w].fairness / (double)nwin;
        avg.users = per[w].users > avg.users ? per[w].users : avg.users; /* the most in a window */
    }
    avg.one_site_share = sited_windows ? avg.one_site_share / (double)sited_windows : -1;
    avg.span_rtt_ms = span_windows ? avg.span_rtt_ms / (double)span_windows : -1;
    buf out = BUF_INIT;
    if (o.json)
        sim__json(&out, &o, &in, &cluster, &policy, &avg, per, nwin);
    else
        sim__text(&out, &o, &in, &cluster, &policy, &avg);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    sim__done(&in);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* pass.c - the scheduling pass over a neutral view: policy (priorities,
 * QoS limits, array throttles, preemption) around the core's placement. */
#include "pass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

/* --- fair share and priority ------------------------------------------------------ */

static const char *pass__account(const pass_view *v, const pass_job *j)
{
    return j->account && *j->account ? j->account : v->pol->default_account;
}

prio_tree *pass_tree(const pass_view *v)
{
    prio_tree *t = prio_tree_new(v->pol);
    for (size_t i = 0; i < v->n_usage; i++)
        prio_tree_use(t, v->usage[i].account, v->usage[i].user, v->usage[i].gpu_s);
    for (size_t k = 0; k < v->n_jobs; k++) {
        const pass_job *j = &v->jobs[k];
        double used = 0; /* a pending job's user joins the tree too */
        if (j->running && v->now_s > j->start_s) {
            uint64_t slots = (uint64_t)j->nodes * j->per_node;
            double rate = slots ? (double)slots : (double)j->nodes * j->cpus_per_node / 16.0;
            used = rate * (double)(v->now_s - j->start_s);
        }
        prio_tree_use(t, pass__account(v, j), j->user ? j->user : "?", used);
    }
    prio_tree_finish(t);
    return t;
}

static uint32_t pass__net_gpus(const pass_view *v)
{
    uint32_t net_gpus = 0;
    for (size_t i = 0; i < v->n_nodes; i++)
        net_gpus += v->nodes[i].slots;
    return net_gpus;
}

static uint32_t pass__priority(const pass_view *v, prio_tree *t, const pass_job *j, uint32_t net_gpus,
                               prio_factors *out)
{
    double fs = prio_fairshare(t, pass__account(v, j), j->user ? j->user : "?");
    prio_factors pf = prio_factors_of(v->pol, (v->now_s - j->submit_s) * 1000, j->qos, j->nodes * j->per_node,
                                      net_gpus, j->nodes, (uint32_t)v->n_nodes, fs);
    if (out)
        *out = pf;
    return prio_value(v->pol, &pf);
}

uint32_t pass_priority(const pass_view *v, prio_tree *t, const pass_job *j, prio_factors *out)
{
    return pass__priority(v, t, j, pass__net_gpus(v), out);
}

/* --- QoS limits ------------------------------------------------------------------- */

/* GPUs held by one user's running jobs of one QoS. */
struct pass_held {
    const char *user;
    int qos;
    uint64_t gpus;
};

static uint64_t *pass__held_slot(pass_limits *l, const char *user, int qos)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->held[i].qos == qos && strcmp(l->held[i].user, user) == 0)
            return &l->held[i].gpus;
    if ((l->n & (l->n - 1)) == 0) {
        struct pass_held *p = realloc(l->held, (l->n ? l->n * 2 : 8) * sizeof *p);
        if (!p)
            abort();
        l->held = p;
    }
    l->held[l->n].user = user;
    l->held[l->n].qos = qos;
    l->held[l->n].gpus = 0;
    return &l->held[l->n++].gpus;
}

void pass_limits_init(pass_limits *l, const pass_view *v)
{
    memset(l, 0, sizeof *l);
    l->pol = v->pol;
    bool any = false;
    for (size_t q = 0; q < l->pol->n_qos; q++)
        any = any || l->pol->qos[q].max_gpus_user;
    for (size_t k = 0; any && k < v->n_jobs; k++) {
        const pass_job *j = &v->jobs[k];
        if (j->running && j->user)
            *pass__held_slot(l, j->user, j->qos) += (uint64_t)j->nodes * j->per_node;
    }
}

bool pass_limits_take(pass_limits *l, const char *user, int q, uint64_t gpus, bool take)
{
    uint32_t limit = q >= 0 && (size_t)q < l->pol->n_qos ? l->pol->qos[q].max_gpus_user : 0;
    if (!limit)
        return true;
    uint64_t *h = pass__held_slot(l, user ? user : "?", q);
    if (*h + gpus > limit)
        return false;
    if (take)
        *h += gpus;
    return true;
}

void pass_limits_free(pass_limits *l)
{
    free(l->held);
    memset(l, 0, sizeof *l);
}

/* --- array throttles ---------------------------------------------------------------- */

/* Tasks of each array running or queued in this pass (arrays in flight
 * are few: a list). */
typedef struct pass__arrays {
    struct {
        uint64_t id;
        uint32_t n;
    } * a;
    size_t n, cap;
} pass__arrays;

static uint32_t pass__array_slot(const pass__arrays *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->a[i].id == id)
            return s->a[i].n;
    return 0;
}

static void pass__array_count(pass__arrays *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->a[i].id == id) {
            s->a[i].n++;
            return;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        void *p = realloc(s->a, s->cap * sizeof *s->a);
        if (!p)
            abort();
        s->a = p;
    }
    s->a[s->n].id = id;
    s->a[s->n++].n = 1;
}

/* --- preemption ------------------------------------------------------------------------ */

/* The running jobs that the job at index self may preempt, those already
 * stopping first, then the latest started (the least work lost). */
static size_t pass__candidates(const pass_view *v, plan_job *pj, size_t self, plan_job **out)
{
    uint64_t mask = v->pol->qos[v->jobs[self].qos].preempts;
    size_t n = 0;
    for (int round = 0; round < 2; round++) {
        size_t first = n;
        for (size_t k = 0; k < v->n_jobs; k++) {
            const pass_job *j = &v->jobs[k];
            bool eligible = (mask >> j->qos & 1) || (pj[self].resv && pj[k].scavenger);
            if (k == self || !j->running || !pj[k].where || !eligible || j->preempting != (round == 0))
                continue;
            out[n++] = &pj[k];
        }
        /* Latest start first, then the higher id. */
        for (size_t a = first + 1; a < n; a++) {
            plan_job *x = out[a];
            size_t b = a;
            while (b > first && (out[b - 1]->start < x->start ||
                                 (out[b - 1]->start == x->start && out[b - 1]->id < x->id))) {
                out[b] = out[b - 1];
                b--;
            }
            out[b] = x;
        }
    }
    return n;
}

/* After the pass: the first waiting job that may preempt (by its QoS, or
 * a reservation's job kept out by scavengers) and would then fit gets its
 * victims preempted, and becomes the head, so that what they free is its. */
static void pass__preempt(const pass_view *v, pass_state *st, plan *p, plan_job *pj, pass_out *out)
{
    const pol *po = v->pol;
    size_t nj = v->n_jobs;
    plan_job **cand = xcalloc(nj ? nj : 1, sizeof(plan_job *));
    plan_job **victims = xcalloc(nj ? nj : 1, sizeof(plan_job *));
    size_t tried = 0;
    for (size_t i = 0; i < p->n_queue && tried < PASS_MAX_PREEMPTORS; i++) {
        plan_job *q = p->queue[i];
        size_t self = (size_t)(q - pj);
        const pass_job *sj = &v->jobs[self];
        if (q->start >= 0 || (!po->qos[sj->qos].preempts && !q->resv))
            continue;
        tried++;
        size_t nc = pass__candidates(v, pj, self, cand);
        size_t nv = nc ? plan_victims(p, q, v->now_s, cand, nc, victims) : 0;
        if (!nv)
            continue;
        int64_t ready = v->now_s;
        uint32_t grace = po->qos[sj->qos].grace_s;
        out->preempts = xcalloc(nv, sizeof *out->preempts);
        for (size_t x = 0; x < nv; x++) {
            size_t k = (size_t)(victims[x] - pj);
            if (v->jobs[k].preempting) {
                if (v->jobs[k].stop_by_s > ready)
                    ready = v->jobs[k].stop_by_s;
                continue;
            }
            pass_preempt *y = &out->preempts[out->n_preempts++];
            y->job = k;
            y->grace_s = grace;
            snprintf(y->reason, sizeof y->reason, "Preempted by job %llu (%s)", (unsigned long long)q->id,
                     q->resv ? "its reservation" : po->qos[sj->qos].name);
            if (v->now_s + grace > ready)
                ready = v->now_s + grace;
        }
        if (q->resv && q->resv <= v->n_resv && ready + q->limit > v->resv_end_s[q->resv - 1]) {
            /* It could not end by its reservation's end once they are gone:
             * nobody is stopped for nothing. */
            free(out->preempts);
            out->preempts = NULL;
            out->n_preempts = 0;
            continue;
        }
        /* What the victims free is the preemptor's: it is the head, its
         * reservation when the last of them is gone. */
        if (st) {
            st->head = st->preemptor = q->id;
            st->shadow = ready;
        }
        p->head = q;
        p->shadow = ready;
        break;
    }
    free(cand);
    free(victims);
}

/* --- the pass ---------------------------------------------------------------------------- */

static void pass__on_started(void *arg, plan_job *j)
{
    (void)arg;
    (void)j; /* read from the jobs' start after the pass */
}

/* NodeDown: fewer nodes are up that could hold the job than it needs, though
 * enough exist. (Only asked when some node is down.) */
static bool pass__nodes_down(const pass_view *v, const pass_job *j)
{
    uint32_t up = 0, any = 0;
    for (size_t i = 0; i < v->n_nodes; i++) {
        const plan_node *n = &v->nodes[i];
        bool fits =
            n->slots >= j->per_node && (!j->tag || n->tag == j->tag) && (!j->allowed || j->allowed[i]);
        any += fits;
        up += fits && n->up;
    }
    uint32_t want = j->nodes ? j->nodes : 1;
    return up < want && any >= want;
}

/* pass__nodes_down for a pass's many jobs: the answer per kind of job
 * (GPUs per node, site, allowed nodes, nodes), remembered for a few kinds. */
typedef struct pass__downs {
    struct {
        uint32_t per_node, tag, nodes;
        const bool *allowed;
        bool down;
    } k[16];
    size_t n, next;
} pass__downs;

static bool pass__nodes_down_cached(const pass_view *v, const pass_job *j, pass__downs *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->k[i].per_node == j->per_node && c->k[i].tag == j->tag && c->k[i].allowed == j->allowed &&
            c->k[i].nodes == j->nodes)
            return c->k[i].down;
    size_t at = c->n < 16 ? c->n++ : c->next++ % 16;
    c->k[at].per_node = j->per_node;
    c->k[at].tag = j->tag;
    c->k[at].nodes = j->nodes;
    c->k[at].allowed = j->allowed;
    return c->k[at].down = pass__nodes_down(v, j);
}

static const char *pass__gate_reason(pass_gate g)
{
    switch (g) {
    case PASS_HELD:
        return "Held";
    case PASS_DEPENDENCY:
        return "Dependency";
    case PASS_DEPENDENCY_NEVER:
        return "DependencyNeverSatisfied";
    case PASS_RESV_NOT_BEGUN:
        return "Reservation";
    case PASS_RESV_GONE:
        return "ReservationGone";
    case PASS_PARTITION_NODES:
        return "PartitionNodeLimit";
    case PASS_ALLOCATION:
        return "AllocationExhausted";
    case PASS_RESIDENCY:
        return "Residency";
    case PASS_SITE_NODES:
        return "SiteNodeLimit";
    case PASS_READY:
        break;
    }
    return NULL;
}

/* When each job still waiting for room is expected to start: the plan's
 * own shadow (the head's is its reservation), and a job behind the head
 * not before the head's. */
static void pass__estimate(const pass_view *v, plan *p, plan_job *pj, const bool *queued, pass_out *out)
{
    size_t nj = v->n_jobs, done = 0;
    out->est_start_s = xcalloc(nj ? nj : 1, sizeof *out->est_start_s);
    for (size_t k = 0; k < nj && done < PASS_ESTIMATE_MAX; k++) {
        const char *r = out->reasons[k];
        if (!queued[k] || pj[k].start >= 0 || !r ||
            (strcmp(r, "Resources") != 0 && strcmp(r, "Priority") != 0))
            continue;
        done++;
        int64_t at = &pj[k] == p->head ? p->shadow : plan_earliest(p, &pj[k], v->now_s);
        if (at != INT64_MAX && p->head && &pj[k] != p->head && at < p->shadow && strcmp(r, "Priority") == 0)
            at = p->shadow;
        out->est_start_s[k] = at == INT64_MAX ? 0 : at;
    }
}

void pass_run(const pass_view *v, pass_state *st, const plan_policy *policy, size_t max, pass_out *out)
{
    memset(out, 0, sizeof *out);
    size_t nj = v->n_jobs;
    out->reasons = xcalloc(nj ? nj : 1, sizeof *out->reasons);
    out->priority = xcalloc(nj ? nj : 1, sizeof *out->priority);
    plan p;
    plan_init(&p, policy, v->n_nodes, 0);
    for (size_t i = 0; i < v->n_nodes; i++) {
        p.nodes[i] = v->nodes[i];
        p.nodes[i].index = (uint32_t)i;
        if (p.nodes[i].windows) { /* the plan counts in them: its own copy */
            p.nodes[i].windows = xcalloc(v->nodes[i].n_windows, sizeof(plan_window));
            memcpy(p.nodes[i].windows, v->nodes[i].windows, v->nodes[i].n_windows * sizeof(plan_window));
        }
    }
    p.max_starts = max;
    p.site_rtt = v->site_rtt;
    p.rtt_arg = v->rtt_arg;
    const pol *po = v->pol;
    bool ranked = policy->order == PLAN_PRIORITY;
    prio_tree *tree = NULL;
    bool any_pending = false;
    for (size_t k = 0; k < nj && !any_pending; k++)
        any_pending = !v->jobs[k].running;
    if (ranked && any_pending)
        tree = pass_tree(v);
    uint32_t net_gpus = pass__net_gpus(v);
    pass__downs downs = {.n = 0, .next = 0};
    bool any_down = false;
    for (size_t i = 0; i < v->n_nodes && !any_down; i++)
        any_down = !v->nodes[i].up;
    pass__arrays arrays = {NULL, 0, 0};
    pass_limits limits;
    pass_limits_init(&limits, v);
    for (size_t k = 0; k < nj; k++)
        if (v->jobs[k].running && v->jobs[k].array_id)
            pass__array_count(&arrays, v->jobs[k].array_id);
    /* What plan_add_running takes from the nodes the view already left out. */
    uint32_t *free_slots = xcalloc(v->n_nodes ? v->n_nodes : 1, sizeof *free_slots);
    uint32_t *free_cpus = xcalloc(v->n_nodes ? v->n_nodes : 1, sizeof *free_cpus);
    for (size_t i = 0; i < v->n_nodes; i++) {
        free_slots[i] = v->nodes[i].free;
        free_cpus[i] = v->nodes[i].cpus_free;
    }
    plan_job *pj = xcalloc(nj ? nj : 1, sizeof *pj);
    bool *queued = xcalloc(nj ? nj : 1, sizeof *queued);
    for (size_t k = 0; k < nj; k++) {
        const pass_job *j = &v->jobs[k];
        plan_job *q = &pj[k];
        q->id = j->id;
        q->submit = j->submit_s;
        q->limit = j->limit_s > 0 ? j->limit_s : 1;
        q->nodes = j->nodes;
        q->per_node = j->per_node;
        q->cpus_per_node = j->cpus_per_node ? j->cpus_per_node : 1;
        q->resv = j->resv;
        q->exclusive = j->exclusive;
        q->scavenger = po->qos[j->qos].preemptible && !j->resv;
        q->start = -1;
        if (j->running) {
            q->start = j->start_s;
            q->where = xcalloc(j->nodes ? j->nodes : 1, sizeof(uint32_t));
            memcpy(q->where, j->where, j->nodes * sizeof(uint32_t));
            plan_add_running(&p, q);
            continue;
        }
        q->tag = j->tag;
        q->allowed = j->allowed;
        q->prefer = j->prefer;
        q->span = j->span;
        if (ranked)
            out->priority[k] = pass__priority(v, tree, j, net_gpus, NULL);
        q->priority = out->priority[k];
        if (j->gate != PASS_READY) {
            out->reasons[k] = pass__gate_reason(j->gate);
            continue;
        }
        if (j->note) {
            out->reasons[k] = j->note; /* kept until it runs again */
        }
        /* Counted as if it started: the pass never passes the bound. */
        if (!pass_limits_take(&limits, j->user, j->qos, (uint64_t)j->nodes * j->per_node, true)) {
            out->reasons[k] = "QOSLimit";
            continue;
        }
        if (j->array_max && pass__array_slot(&arrays, j->array_id) >= j->array_max) {
            out->reasons[k] = "JobArrayTaskLimit"; /* its array runs as many tasks as it may */
            continue;
        }
        if (j->array_max)
            pass__array_count(&arrays, j->array_id);
        plan_submit(&p, q);
        queued[k] = true;
        /* Multifactor ranks again every pass (the age factor is what keeps
         * a job from starving), as Slurm does; other orders, and a
         * preemptor, keep their head. */
        if (st && q->id == st->head && (policy->order != PLAN_PRIORITY || q->id == st->preemptor)) {
            p.head = q;
            p.shadow = st->shadow;
        }
    }
    /* The view's free counts are the truth (what plan_add_running took
     * is the same, counted per job). */
    for (size_t i = 0; i < v->n_nodes; i++) {
        p.nodes[i].free = free_slots[i];
        p.nodes[i].cpus_free = free_cpus[i];
    }
    plan_pass(&p, v->now_s, pass__on_started, NULL);
    pass__preempt(v, st, &p, pj, out);
    out->starts = xcalloc(nj ? nj : 1, sizeof *out->starts);
    uint64_t head = p.head ? p.head->id : 0;
    for (size_t k = 0; k < nj; k++) {
        if (!queued[k])
            continue;
        if (pj[k].start >= 0) {
            pass_start *s = &out->starts[out->n_starts++];
            s->job = k;
            s->where = pj[k].where; /* the plan's until plan_free: taken below, after the estimates */
            out->reasons[k] = NULL;
        } else if (!out->reasons[k]) {
            out->reasons[k] = any_down && pass__nodes_down_cached(v, &v->jobs[k], &downs) ? "NodeDown"
                              : !head || head == pj[k].id                                 ? "Resources"
                                                                                          : "Priority";
        }
    }
    if (st) {
        st->head = head;
        st->shadow = p.shadow;
    }
    out->blocked = head;
    /* The estimates walk the running jobs, those started in this pass
     * among them: their nodes are taken from the plan only after. */
    if (v->estimate)
        pass__estimate(v, &p, pj, queued, out);
    for (size_t k = 0; k < nj; k++)
        if (queued[k] && pj[k].start >= 0)
            pj[k].where = NULL;
    for (size_t i = 0; i < v->n_nodes; i++)
        free(p.nodes[i].windows);
    plan_free(&p);
    free(pj);
    free(queued);
    free(free_slots);
    free(free_cpus);
    free(arrays.a);
    pass_limits_free(&limits);
    if (tree)
        prio_tree_free(tree);
}

void pass_out_free(pass_out *out, size_t n_jobs)
{
    (void)n_jobs;
    for (size_t i = 0; i < out->n_starts; i++)
        free(out->starts[i].where);
    free(out->starts);
    free(out->preempts);
    free(out->reasons);
    free(out->priority);
    free(out->est_start_s);
    memset(out, 0, sizeof *out);
}

/* sched.c - the leader's scheduling pass: the state as a plan (plan.h), its
 * decisions as GPU indexes and CPUs on the chosen nodes. */
#include "sched.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cpulist.h"
#include "../../common/xmem.h"
#include "gpuset.h"
#include "plan.h"

/* A node's CPUs: which exist (its packages' cpusets) and which are taken. */
typedef struct sched__cpus {
    bool *exists, *taken; /* by OS index, n entries */
    size_t n;
    uint32_t free; /* UINT32_MAX: the node's CPUs are unknown, not counted */
} sched__cpus;

/* Which GPUs and CPUs of each node are taken by running jobs. */
typedef struct sched__usage {
    bool *taken; /* per node: n_gpus flags, node i at offset[i] */
    size_t *offset;
    uint32_t *free;
    sched__cpus *cpus;
} sched__usage;

static long sched__node_index(const fsm *f, const char *name)
{
    const fsm_node *n = name ? fsm_node_get(f, name) : NULL;
    return n ? (long)(n - f->nodes) : -1;
}

static void sched__cpus_init(const topo *t, sched__cpus *c)
{
    int last = -1;
    for (size_t p = 0; p < t->n_packages; p++) {
        int l = cpulist_last(t->packages[p].cpuset);
        if (l > last)
            last = l;
    }
    c->free = UINT32_MAX;
    if (last < 0 || t->pus == 0)
        return;
    c->n = (size_t)last + 1;
    c->exists = xcalloc(c->n, sizeof *c->exists);
    c->taken = xcalloc(c->n, sizeof *c->taken);
    bool *one = xcalloc(c->n, sizeof *one);
    c->free = 0;
    for (size_t p = 0; p < t->n_packages; p++) {
        if (cpulist_parse(t->packages[p].cpuset, one, c->n) < 0)
            continue;
        for (size_t i = 0; i < c->n; i++) {
            if (one[i] && !c->exists[i]) {
                c->exists[i] = true;
                c->free++;
            }
        }
    }
    free(one);
}

/* Marks the CPUs of a running job's part as taken. */
static void sched__cpus_take_list(sched__cpus *c, const char *list)
{
    if (!c->n || !list || !*list)
        return;
    bool *one = xcalloc(c->n, sizeof *one);
    if (cpulist_parse(list, one, c->n) >= 0) {
        for (size_t i = 0; i < c->n; i++) {
            if (one[i] && c->exists[i] && !c->taken[i]) {
                c->taken[i] = true;
                c->free--;
            }
        }
    }
    free(one);
}

/* Takes want free CPUs, those in `near` (a GPU's locality) first; their
 * list into out. */
static void sched__cpus_take(sched__cpus *c, uint32_t want, const bool *near, buf *out)
{
    if (!c->n)
        return;
    bool *got = xcalloc(c->n, sizeof *got);
    for (int pass = near ? 0 : 1; pass < 2 && want; pass++) {
        for (size_t i = 0; i < c->n && want; i++) {
            if (c->exists[i] && !c->taken[i] && (pass == 1 || near[i])) {
                c->taken[i] = got[i] = true;
                c->free--;
                want--;
            }
        }
    }
    cpulist_format(got, c->n, out);
    free(got);
}

static void sched__usage_build(const fsm *f, sched__usage *u)
{
    size_t total = 0;
    u->offset = xcalloc(f->n_nodes, sizeof *u->offset);
    u->free = xcalloc(f->n_nodes, sizeof *u->free);
    for (size_t i = 0; i < f->n_nodes; i++) {
        u->offset[i] = total;
        total += f->nodes[i].topo->n_gpus;
        u->free[i] = (uint32_t)f->nodes[i].topo->n_gpus;
    }
    u->taken = xcalloc(total, sizeof *u->taken);
    u->cpus = xcalloc(f->n_nodes, sizeof *u->cpus);
    for (size_t i = 0; i < f->n_nodes; i++)
        sched__cpus_init(f->nodes[i].topo, &u->cpus[i]);
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            long n = sched__node_index(f, j->allocs[a].node);
            if (n < 0)
                continue;
            sched__cpus_take_list(&u->cpus[n], j->allocs[a].cpus);
            for (uint32_t g = 0; g < j->allocs[a].n_gpus; g++) {
                uint32_t gi = j->allocs[a].gpus[g];
                if (gi < f->nodes[n].topo->n_gpus && !u->taken[u->offset[n] + gi]) {
                    u->taken[u->offset[n] + gi] = true;
                    u->free[n]--;
                }
            }
        }
    }
}

static void sched__usage_free(sched__usage *u, size_t n_nodes)
{
    for (size_t i = 0; i < n_nodes; i++) {
        free(u->cpus[i].exists);
        free(u->cpus[i].taken);
    }
    free(u->cpus);
    free(u->taken);
    free(u->offset);
    free(u->free);
}

/* Tasks of each array running or queued in this pass (arrays in flight
 * are few: a list). */
typedef struct sched__arrays {
    struct {
        uint64_t id;
        uint32_t n;
    } * a;
    size_t n, cap;
} sched__arrays;

static uint32_t sched__array_slot(const sched__arrays *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->a[i].id == id)
            return s->a[i].n;
    return 0;
}

static void sched__array_count(sched__arrays *s, uint64_t id)
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

/* The nodes of each GPU model asked for in this pass (a few models: a
 * list), shared by the jobs that ask for it. */
typedef struct sched__masks {
    struct {
        char *model, *labels;
        uint64_t mem;
        bool *allowed;
    } * m;
    size_t n, cap;
} sched__masks;

/* The nodes with GPUs of that model ("": any) and at least mem bytes
 * each (0: any), and all these labels ("": any). */
static const bool *sched__model_mask(const fsm *f, sched__masks *s, const char *model, uint64_t mem,
                                     const char *labels)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->m[i].model, model) == 0 && s->m[i].mem == mem && strcmp(s->m[i].labels, labels) == 0)
            return s->m[i].allowed;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        void *p = realloc(s->m, s->cap * sizeof *s->m);
        if (!p)
            abort();
        s->m = p;
    }
    bool *allowed = xcalloc(f->n_nodes, sizeof *allowed);
    for (size_t i = 0; i < f->n_nodes; i++)
        allowed[i] = fsm_node_has_model(&f->nodes[i], model) && fsm_node_gpu_mem_ok(&f->nodes[i], mem) &&
                     fsm_node_has_labels(&f->nodes[i], labels);
    s->m[s->n].model = xstrdup(model);
    s->m[s->n].labels = xstrdup(labels);
    s->m[s->n].mem = mem;
    s->m[s->n++].allowed = allowed;
    return allowed;
}

/* Sites and (site, group) pairs as plan tags, for one pass: 1 + the index
 * of the first node with it. */
typedef struct sched__tags {
    strmap sites, groups;
    buf pairs; /* "site\x1fgroup\0" per node, the groups' keys */
} sched__tags;

static void sched__tags_init(sched__tags *t, const fsm *f, plan *p)
{
    strmap_init(&t->sites);
    strmap_init(&t->groups);
    t->pairs = (buf)BUF_INIT;
    size_t *at = xcalloc(f->n_nodes ? f->n_nodes : 1, sizeof *at);
    for (size_t i = 0; i < f->n_nodes; i++) {
        at[i] = t->pairs.len;
        buf_printf(&t->pairs, "%s\x1f%s", f->nodes[i].site ? f->nodes[i].site : "",
                   f->nodes[i].group ? f->nodes[i].group : "");
        buf_putc(&t->pairs, '\0');
    }
    for (size_t i = 0; i < f->n_nodes; i++) {
        size_t first;
        const char *site = f->nodes[i].site ? f->nodes[i].site : "";
        if (!strmap_get(&t->sites, site, &first))
            strmap_put(&t->sites, site, first = i);
        p->nodes[i].tag = (uint32_t)first + 1;
        const char *pair = t->pairs.data + at[i];
        if (!strmap_get(&t->groups, pair, &first))
            strmap_put(&t->groups, pair, first = i);
        p->nodes[i].group = (uint32_t)first + 1;
    }
    free(at);
}

static void sched__tags_free(sched__tags *t)
{
    strmap_free(&t->sites);
    strmap_free(&t->groups);
    buf_free(&t->pairs);
}

/* A job's site as a plan tag: 0 any; UINT32_MAX for a site no node has. */
static uint32_t sched__site_tag(const sched__tags *t, const char *site)
{
    size_t first;
    if (!site || !*site)
        return 0;
    return strmap_get(&t->sites, site, &first) ? (uint32_t)first + 1 : UINT32_MAX;
}

/* --- policy: priorities, QoS, reservations --------------------------------------- */

static const pol *sched__pol(const pol *p)
{
    static pol defaults;
    static bool ready;
    if (p)
        return p;
    if (!ready) {
        pol_init(&defaults);
        ready = true;
    }
    return &defaults;
}

int sched_qos_of(const pol *p, const char *qos)
{
    int q = pol_qos_find(sched__pol(p), qos);
    return q < 0 ? 0 : q;
}

static const char *sched__account(const pol *p, const fsm_job *j)
{
    return *j->cls->account ? j->cls->account : sched__pol(p)->default_account;
}

void sched_prio_init(sched_prio *sp, const fsm *f, const pol *p, int64_t now_ms)
{
    memset(sp, 0, sizeof *sp);
    sp->pol = sched__pol(p);
    sp->now_ms = now_ms;
    sp->tree = prio_tree_new(sp->pol);
    for (size_t i = 0; i < f->n_usage; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s", f->usage[i].path);
        char *slash = strrchr(path, '/');
        if (!slash)
            continue;
        *slash = '\0';
        prio_tree_use(sp->tree, path, slash + 1, (double)fsm_usage_at(f, &f->usage[i], now_ms) / 1000.0);
    }
    for (uint64_t k = 0; f->n_active && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || !fsm_job_active(j))
            continue;
        double used = 0; /* a pending job's user joins the tree too */
        if (j->state == JAZARI__JOB_STATE__JOB_RUNNING)
            used = (double)fsm_job_gpu_ms(j, j->start_ms, now_ms) / 1000.0;
        prio_tree_use(sp->tree, sched__account(p, j), j->user, used);
    }
    prio_tree_finish(sp->tree);
    sp->net_nodes = (uint32_t)f->n_nodes;
    for (size_t i = 0; i < f->n_nodes; i++)
        sp->net_gpus += (uint32_t)f->nodes[i].topo->n_gpus;
}

void sched_prio_free(sched_prio *sp)
{
    prio_tree_free(sp->tree);
    memset(sp, 0, sizeof *sp);
}

uint32_t sched_prio_job(sched_prio *sp, const fsm_job *j, prio_factors *out)
{
    double fs = prio_fairshare(sp->tree, sched__account(sp->pol, j), j->user);
    prio_factors pf = prio_factors_of(sp->pol, sp->now_ms - j->submit_ms, sched_qos_of(sp->pol, j->cls->qos),
                                      j->nodes * j->gpus_per_node, sp->net_gpus, j->nodes, sp->net_nodes, fs);
    if (out)
        *out = pf;
    return prio_value(sp->pol, &pf);
}

const char *sched_resv_wait(const fsm *f, const char *reservation, int64_t now_ms)
{
    if (!reservation || !*reservation)
        return NULL;
    const fsm_resv *r = fsm_resv_get(f, reservation);
    if (!r)
        return "ReservationGone";
    return now_ms < r->start_ms ? "Reservation" : NULL;
}

/* GPUs held by one user's running jobs of one QoS. */
struct sched_held {
    const char *user;
    int qos;
    uint64_t gpus;
};

static uint64_t *sched__held_slot(sched_limits *l, const char *user, int qos)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->held[i].qos == qos && strcmp(l->held[i].user, user) == 0)
            return &l->held[i].gpus;
    if ((l->n & (l->n - 1)) == 0) {
        struct sched_held *p = realloc(l->held, (l->n ? l->n * 2 : 8) * sizeof *p);
        if (!p)
            abort();
        l->held = p;
    }
    l->held[l->n].user = user;
    l->held[l->n].qos = qos;
    l->held[l->n].gpus = 0;
    return &l->held[l->n++].gpus;
}

void sched_limits_init(sched_limits *l, const fsm *f, const pol *p)
{
    memset(l, 0, sizeof *l);
    l->pol = sched__pol(p);
    bool any = false;
    for (size_t q = 0; q < l->pol->n_qos; q++)
        any = any || l->pol->qos[q].max_gpus_user;
    for (uint64_t k = 0; any && f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (j && j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->user)
            *sched__held_slot(l, j->user, sched_qos_of(l->pol, j->cls->qos)) +=
                (uint64_t)j->n_allocs * j->gpus_per_node;
    }
}

bool sched_limits_take(sched_limits *l, const char *user, int q, uint64_t gpus, bool take)
{
    uint32_t limit = q >= 0 && (size_t)q < l->pol->n_qos ? l->pol->qos[q].max_gpus_user : 0;
    if (!limit)
        return true;
    uint64_t *h = sched__held_slot(l, user ? user : "?", q);
    if (*h + gpus > limit)
        return false;
    if (take)
        *h += gpus;
    return true;
}

void sched_limits_free(sched_limits *l)
{
    free(l->held);
    memset(l, 0, sizeof *l);
}

/* Reservation r's tag in the plan: 1 + its index. */
static uint32_t sched__resv_tag(const fsm *f, const char *reservation)
{
    for (size_t i = 0; *reservation && i < f->n_resv; i++)
        if (strcmp(f->resv[i].name, reservation) == 0)
            return (uint32_t)i + 1;
    return 0;
}

/* The reservations' windows on the plan's nodes (one array, each node
 * pointing at its part). */
static plan_window *sched__windows(const fsm *f, plan *p)
{
    size_t total = 0;
    for (size_t r = 0; r < f->n_resv; r++)
        total += f->resv[r].n_parts;
    if (!total)
        return NULL;
    plan_window *w = xcalloc(total, sizeof *w);
    size_t k = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        p->nodes[i].windows = &w[k];
        for (size_t r = 0; r < f->n_resv; r++) {
            const fsm_resv *v = &f->resv[r];
            for (size_t x = 0; x < v->n_parts; x++) {
                if (strcmp(v->parts[x].node, f->nodes[i].name) != 0)
                    continue;
                w[k].from = v->start_ms / 1000;
                w[k].until = (v->end_ms + 999) / 1000;
                w[k].slots = v->parts[x].gpus;
                w[k].owner = (uint32_t)r + 1;
                k++;
                p->nodes[i].n_windows++;
            }
        }
        if (!p->nodes[i].n_windows)
            p->nodes[i].windows = NULL;
    }
    return w;
}

/* What the pass knows of each job beyond the plan's fields. */
typedef struct sched__meta {
    int qos;
    bool running;    /* before this pass (a job started by it is no victim) */
    bool preempting; /* running, being preempted already */
} sched__meta;

/* The running jobs that preemptor pj may preempt, those already stopping
 * first, then the latest started (the least work lost). */
static size_t sched__candidates(const pol *po, plan_job *jobs, const sched__meta *meta, size_t nj,
                                size_t self, plan_job **out)
{
    uint64_t mask = po->qos[meta[self].qos].preempts;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t first = n;
        for (size_t k = 0; k < nj; k++) {
            const plan_job *v = &jobs[k];
            bool eligible = (mask >> meta[k].qos & 1) || (jobs[self].resv && v->scavenger);
            if (k == self || !meta[k].running || !v->where || !eligible || meta[k].preempting != (pass == 0))
                continue;
            out[n++] = &jobs[k];
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
static void sched__preempt(const fsm *f, const pol *po, sched_state *st, plan *p, plan_job *jobs,
                           const sched__meta *meta, size_t nj, int64_t now, sched_plan *out)
{
    plan_job **cand = xcalloc(nj ? nj : 1, sizeof(plan_job *));
    plan_job **victims = xcalloc(nj ? nj : 1, sizeof(plan_job *));
    size_t tried = 0;
    for (size_t i = 0; i < p->n_queue && tried < SCHED_MAX_PREEMPTORS; i++) {
        plan_job *pj = p->queue[i];
        size_t self = (size_t)(pj - jobs);
        if (pj->start >= 0 || (!po->qos[meta[self].qos].preempts && !pj->resv))
            continue;
        tried++;
        size_t nc = sched__candidates(po, jobs, meta, nj, self, cand);
        size_t nv = nc ? plan_victims(p, pj, now, cand, nc, victims) : 0;
        if (!nv)
            continue;
        int64_t ready = now;
        out->preempts = xcalloc(nv, sizeof *out->preempts);
        for (size_t v = 0; v < nv; v++) {
            size_t k = (size_t)(victims[v] - jobs);
            const fsm_job *vj = fsm_job_get(f, victims[v]->id);
            uint32_t grace = po->qos[meta[self].qos].grace_s;
            if (meta[k].preempting) {
                if (vj && vj->preempt_ms / 1000 + vj->preempt_grace_s > ready)
                    ready = vj->preempt_ms / 1000 + vj->preempt_grace_s;
                continue;
            }
            sched_preempt *x = &out->preempts[out->n_preempts++];
            x->id = victims[v]->id;
            x->attempt = vj ? vj->attempt : 0;
            x->grace_s = grace;
            snprintf(x->reason, sizeof x->reason, "Preempted by job %llu (%s)", (unsigned long long)pj->id,
                     pj->resv ? "its reservation" : po->qos[meta[self].qos].name);
            if (now + grace > ready)
                ready = now + grace;
        }
        if (pj->resv && (size_t)pj->resv <= f->n_resv &&
            ready + pj->limit > f->resv[pj->resv - 1].end_ms / 1000) {
            /* It could not end by its reservation's end once they are gone:
             * nobody is stopped for nothing. */
            free(out->preempts);
            out->preempts = NULL;
            out->n_preempts = 0;
            continue;
        }
        /* What the victims free is the preemptor's: it is the head, its
         * reservation when the last of them is gone. */
        st->head = st->preemptor = pj->id;
        st->shadow = ready;
        p->head = pj;
        p->shadow = ready;
        break;
    }
    free(cand);
    free(victims);
}

static int64_t sched__limit(const fsm_job *j)
{
    return j->time_limit_s ? (int64_t)j->time_limit_s : (int64_t)FSM_TIME_MAX_S;
}

static void sched__on_started(void *arg, plan_job *pj)
{
    sched_plan *out = arg;
    out->starts[out->n_starts++].id = pj->id; /* parts filled after the pass */
}

/* The GPU indexes and CPUs of a started job's part on node n. */
static void sched__part(const fsm *f, sched__usage *u, const fsm_job *j, size_t n, sched_part *part)
{
    part->node = n;
    part->n_gpus = j->gpus_per_node;
    part->gpus = xcalloc(j->gpus_per_node ? j->gpus_per_node : 1, sizeof(uint32_t));
    /* The best-connected free GPUs of the node (the core made sure there
     * are enough). */
    if (gpuset_pick(f->nodes[n].topo, &u->taken[u->offset[n]], j->gpus_per_node, part->gpus) != 0)
        part->n_gpus = 0;
    for (uint32_t g = 0; g < part->n_gpus; g++)
        u->taken[u->offset[n] + part->gpus[g]] = true;
    u->free[n] -= part->n_gpus;
    /* CPUs near the first of its GPUs, when that is known. */
    sched__cpus *c = &u->cpus[n];
    bool *near = NULL;
    const topo *t = f->nodes[n].topo;
    if (c->n && part->n_gpus && part->gpus[0] < t->n_gpus && t->gpus[part->gpus[0]].cpuset) {
        near = xcalloc(c->n, sizeof *near);
        if (cpulist_parse(t->gpus[part->gpus[0]].cpuset, near, c->n) < 0) {
            free(near);
            near = NULL;
        }
    }
    buf cl = BUF_INIT;
    sched__cpus_take(c, j->cpus_per_node ? j->cpus_per_node : 1, near, &cl);
    part->cpus = xstrdup(buf_str(&cl));
    buf_free(&cl);
    free(near);
}

int sched_pass(const fsm *f, sched_state *st, int64_t now_ms, size_t max, sched_plan *out)
{
    memset(out, 0, sizeof *out);
    if (f->n_ready == 0 || f->n_nodes == 0)
        return 0;
    sched__usage u;
    sched__usage_build(f, &u);
    plan p;
    plan_init(&p, &st->policy, f->n_nodes, 0);
    p.policy.exact = true; /* the leader checks the head's guarantee itself, not only by time */
    p.max_starts = max;
    for (size_t i = 0; i < f->n_nodes; i++) {
        plan_node *pn = &p.nodes[i];
        pn->slots = pn->free = (uint32_t)f->nodes[i].topo->n_gpus;
        if (u.cpus[i].free != UINT32_MAX) {
            uint32_t exists = 0;
            for (size_t c = 0; c < u.cpus[i].n; c++)
                exists += u.cpus[i].exists[c];
            pn->cpus = pn->cpus_free = exists;
        }
        pn->up = strcmp(f->nodes[i].state, "up") == 0;
    }
    const pol *po = sched__pol(st->pol);
    sched__tags tags;
    sched__tags_init(&tags, f, &p);
    plan_window *windows = sched__windows(f, &p);
    sched_prio prio;
    bool ranked = st->policy.order == PLAN_PRIORITY;
    if (ranked)
        sched_prio_init(&prio, f, po, now_ms);
    /* Every active job as a plan job: the running ones hold their nodes
     * until start + limit, the ready ones queue in id (submit) order. */
    /* The running tasks of each array first: a throttle counts them all;
     * and the GPUs each user's running jobs hold in each QoS. */
    sched__arrays arrays = {NULL, 0, 0};
    sched__masks masks = {NULL, 0, 0};
    sched_limits limits;
    sched_limits_init(&limits, f, po);
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        if (j->array_job_id)
            sched__array_count(&arrays, j->array_job_id);
    }
    plan_job *jobs = xcalloc(f->n_running + f->n_ready, sizeof *jobs);
    sched__meta *meta = xcalloc(f->n_running + f->n_ready, sizeof *meta);
    const fsm_job **of = xcalloc(f->n_running + f->n_ready, sizeof(const fsm_job *));
    size_t nj = 0;
    for (uint64_t k = 0; k < f->jobs_cap && nj < f->n_running + f->n_ready; k++) {
        const fsm_job *j = f->jobs[k];
        bool running = j && j->state == JAZARI__JOB_STATE__JOB_RUNNING;
        bool ready = j && j->state == JAZARI__JOB_STATE__JOB_PENDING && !j->held;
        if (!running && !ready)
            continue;
        plan_job *pj = &jobs[nj];
        pj->id = j->id;
        pj->submit = j->submit_ms / 1000;
        pj->limit = sched__limit(j);
        pj->nodes = running ? j->n_allocs : (j->nodes ? j->nodes : 1);
        pj->per_node = j->gpus_per_node;
        pj->cpus_per_node = j->cpus_per_node ? j->cpus_per_node : 1;
        const fsm_class *cls = j->cls;
        meta[nj].qos = sched_qos_of(po, cls->qos);
        meta[nj].running = running;
        meta[nj].preempting = j->preempt_ms != 0;
        pj->resv = sched__resv_tag(f, cls->reservation);
        pj->scavenger = po->qos[meta[nj].qos].preemptible && !pj->resv;
        if (running) {
            pj->start = j->start_ms / 1000;
            pj->where = xcalloc(pj->nodes ? pj->nodes : 1, sizeof(uint32_t));
            bool known = pj->nodes > 0;
            for (uint32_t a = 0; a < j->n_allocs && known; a++) {
                long n = sched__node_index(f, j->allocs[a].node);
                known = n >= 0;
                pj->where[a] = known ? (uint32_t)n : 0;
            }
            if (!known) {
                free(pj->where);
                continue;
            }
            plan_add_running(&p, pj);
        } else {
            pj->tag = sched__site_tag(&tags, cls->site);
            bool narrowed = *cls->gpu_model || cls->min_gpu_mem || *cls->constraint;
            pj->allowed =
                narrowed ? sched__model_mask(f, &masks, cls->gpu_model, cls->min_gpu_mem, cls->constraint)
                         : NULL;
            bool deps = !sched_resv_wait(f, cls->reservation, now_ms);
            if (deps && j->has_deps) { /* the one case that needs the spec itself */
                Jazari__JobSpec *spec = jazari__job_spec__unpack(NULL, j->spec_len, j->spec);
                deps = fsm_deps_ready(f, spec) == 1;
                jazari__job_spec__free_unpacked(spec, NULL);
            }
            uint32_t array_max = cls->array_max;
            if (ranked && deps)
                pj->priority = sched_prio_job(&prio, j, NULL);
            if (!deps)
                continue; /* waits for its dependencies or its reservation: not in the queue */
            /* Counted as if it started: the pass never passes the bound. */
            if (!sched_limits_take(&limits, j->user, meta[nj].qos, (uint64_t)pj->nodes * pj->per_node, true))
                continue; /* QOSLimit */
            if (array_max && sched__array_slot(&arrays, j->array_job_id) >= array_max)
                continue; /* its array runs (or will) as many tasks as it may */
            if (array_max)
                sched__array_count(&arrays, j->array_job_id);
            plan_submit(&p, pj);
            /* Multifactor ranks again every pass (the age factor is what
             * keeps a job from starving), as Slurm does; other orders, and a
             * preemptor, keep their head. */
            if (pj->id == st->head && (st->policy.order != PLAN_PRIORITY || pj->id == st->preemptor)) {
                p.head = pj;
                p.shadow = st->shadow;
            }
        }
        of[nj++] = j;
    }
    /* Free slots as the allocations' GPU indexes and CPU lists say (what
     * plan_add_running subtracted is the same, counted per job). */
    for (size_t i = 0; i < f->n_nodes; i++) {
        p.nodes[i].free = u.free[i];
        if (p.nodes[i].cpus != PLAN_UNCOUNTED)
            p.nodes[i].cpus_free = u.cpus[i].free;
    }
    out->starts = xcalloc(max ? max : 1, sizeof *out->starts);
    plan_pass(&p, now_ms / 1000, sched__on_started, out);
    sched__preempt(f, po, st, &p, jobs, meta, nj, now_ms / 1000, out);
    for (size_t i = 0; i < out->n_starts; i++) {
        sched_start *s = &out->starts[i];
        const plan_job *pj = NULL;
        const fsm_job *j = NULL;
        for (size_t k = 0; k < nj && !pj; k++) {
            if (jobs[k].id == s->id) {
                pj = &jobs[k];
                j = of[k];
            }
        }
        if (!pj)
            continue; /* cannot be: every start is one of these jobs */
        s->n_parts = pj->nodes;
        s->parts = xcalloc(pj->nodes, sizeof *s->parts);
        for (uint32_t k = 0; k < pj->nodes; k++)
            sched__part(f, &u, j, pj->where[k], &s->parts[k]);
    }
    st->head = p.head ? p.head->id : 0;
    st->shadow = p.shadow;
    out->blocked = st->head;
    plan_free(&p);
    free(jobs);
    free(meta);
    free(of);
    free(arrays.a);
    sched_limits_free(&limits);
    free(windows);
    sched__tags_free(&tags);
    if (ranked)
        sched_prio_free(&prio);
    for (size_t i = 0; i < masks.n; i++) {
        free(masks.m[i].model);
        free(masks.m[i].labels);
        free(masks.m[i].allowed);
    }
    free(masks.m);
    sched__usage_free(&u, f->n_nodes);
    return 0;
}

void sched_plan_free(sched_plan *decided)
{
    for (size_t i = 0; i < decided->n_starts; i++) {
        for (size_t p = 0; p < decided->starts[i].n_parts; p++) {
            free(decided->starts[i].parts[p].gpus);
            free(decided->starts[i].parts[p].cpus);
        }
        free(decided->starts[i].parts);
    }
    free(decided->starts);
    free(decided->preempts);
    memset(decided, 0, sizeof *decided);
}

/* sched.c - the leader's scheduling pass: the state as a plan (plan.h), its
 * decisions as GPU indexes and CPUs on the chosen nodes. */
#include "sched.h"

#include <stdbool.h>
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
    for (size_t i = 0; name && i < f->n_nodes; i++)
        if (strcmp(f->nodes[i].name, name) == 0)
            return (long)i;
    return -1;
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
        char *model;
        bool *allowed;
    } * m;
    size_t n, cap;
} sched__masks;

static const bool *sched__model_mask(const fsm *f, sched__masks *s, const char *model)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->m[i].model, model) == 0)
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
        allowed[i] = fsm_node_has_model(&f->nodes[i], model);
    s->m[s->n].model = xstrdup(model);
    s->m[s->n++].allowed = allowed;
    return allowed;
}

/* The site of a node or a job as a plan tag: 1 + the index of the first
 * node of that site; UINT32_MAX for a site no node has. */
static uint32_t sched__site_tag(const fsm *f, const char *site)
{
    if (!site || !*site)
        return 0;
    for (size_t i = 0; i < f->n_nodes; i++)
        if (f->nodes[i].site && strcmp(f->nodes[i].site, site) == 0)
            return (uint32_t)i + 1;
    return UINT32_MAX;
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
        pn->tag = sched__site_tag(f, f->nodes[i].site);
        pn->up = strcmp(f->nodes[i].state, "up") == 0;
    }
    /* Every active job as a plan job: the running ones hold their nodes
     * until start + limit, the ready ones queue in id (submit) order. */
    /* The running tasks of each array first: a throttle counts them all. */
    sched__arrays arrays = {NULL, 0, 0};
    sched__masks masks = {NULL, 0, 0};
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++)
        if (f->jobs[k] && f->jobs[k]->state == JAZARI__JOB_STATE__JOB_RUNNING && f->jobs[k]->array_job_id)
            sched__array_count(&arrays, f->jobs[k]->array_job_id);
    plan_job *jobs = xcalloc(f->n_running + f->n_ready, sizeof *jobs);
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
            Jazari__JobSpec *spec = j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
            pj->tag = sched__site_tag(f, spec ? spec->site : NULL);
            pj->allowed = spec && spec->gpu_model && *spec->gpu_model
                              ? sched__model_mask(f, &masks, spec->gpu_model)
                              : NULL;
            bool deps = fsm_deps_ready(f, spec) == 1;
            uint32_t array_max = spec && spec->array_task ? spec->array_max : 0;
            jazari__job_spec__free_unpacked(spec, NULL);
            if (!deps)
                continue; /* waits for its dependencies: not in the queue */
            if (array_max && sched__array_slot(&arrays, j->array_job_id) >= array_max)
                continue; /* its array runs (or will) as many tasks as it may */
            if (array_max)
                sched__array_count(&arrays, j->array_job_id);
            plan_submit(&p, pj);
            if (pj->id == st->head) {
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
    free(of);
    free(arrays.a);
    for (size_t i = 0; i < masks.n; i++) {
        free(masks.m[i].model);
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
    memset(decided, 0, sizeof *decided);
}

/* sched.c - first come, first served, first fit. */
#include "sched.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cpulist.h"
#include "../../common/xmem.h"

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

static bool sched__node_usable(const fsm_node *n, const char *site)
{
    if (strcmp(n->state, "up") != 0)
        return false;
    return !site || !*site || (n->site && strcmp(n->site, site) == 0);
}

int sched_pass(const fsm *f, size_t max, sched_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (f->n_ready == 0 || f->n_nodes == 0)
        return 0;
    sched__usage u;
    sched__usage_build(f, &u);
    plan->starts = xcalloc(max, sizeof *plan->starts);
    size_t *chosen = xcalloc(f->n_nodes, sizeof *chosen);
    for (uint64_t k = 0; k < f->jobs_cap && plan->n_starts < max; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_PENDING || j->held)
            continue;
        Jazari__JobSpec *spec = j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
        const char *site = spec ? spec->site : NULL;
        size_t want = j->nodes ? j->nodes : 1, got = 0;
        for (size_t n = 0; n < f->n_nodes && got < want; n++)
            if (sched__node_usable(&f->nodes[n], site) && u.free[n] >= j->gpus_per_node &&
                (u.cpus[n].free == UINT32_MAX || u.cpus[n].free >= j->cpus_per_node))
                chosen[got++] = n;
        jazari__job_spec__free_unpacked(spec, NULL);
        if (got < want) {
            plan->blocked = j->id; /* first come, first served: it holds the line */
            break;
        }
        sched_start *s = &plan->starts[plan->n_starts++];
        s->id = j->id;
        s->n_parts = want;
        s->parts = xcalloc(want, sizeof *s->parts);
        for (size_t p = 0; p < want; p++) {
            size_t n = chosen[p];
            sched_part *part = &s->parts[p];
            part->node = n;
            part->n_gpus = j->gpus_per_node;
            part->gpus = xcalloc(j->gpus_per_node, sizeof(uint32_t));
            uint32_t g = 0;
            for (uint32_t gi = 0; g < j->gpus_per_node && gi < f->nodes[n].topo->n_gpus; gi++) {
                if (!u.taken[u.offset[n] + gi]) {
                    u.taken[u.offset[n] + gi] = true;
                    part->gpus[g++] = gi;
                }
            }
            u.free[n] -= j->gpus_per_node;
            /* CPUs near the first of its GPUs, when that is known. */
            sched__cpus *c = &u.cpus[n];
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
    }
    free(chosen);
    sched__usage_free(&u, f->n_nodes);
    return 0;
}

void sched_plan_free(sched_plan *plan)
{
    for (size_t i = 0; i < plan->n_starts; i++) {
        for (size_t p = 0; p < plan->starts[i].n_parts; p++) {
            free(plan->starts[i].parts[p].gpus);
            free(plan->starts[i].parts[p].cpus);
        }
        free(plan->starts[i].parts);
    }
    free(plan->starts);
    memset(plan, 0, sizeof *plan);
}

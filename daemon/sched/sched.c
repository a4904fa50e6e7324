/* sched.c - first come, first served, first fit. */
#include "sched.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

/* Which GPUs of each node are taken by running jobs. */
typedef struct sched__usage {
    bool *taken; /* per node: n_gpus flags, node i at offset[i] */
    size_t *offset;
    uint32_t *free;
} sched__usage;

static long sched__node_index(const fsm *f, const char *name)
{
    for (size_t i = 0; name && i < f->n_nodes; i++)
        if (strcmp(f->nodes[i].name, name) == 0)
            return (long)i;
    return -1;
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
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            long n = sched__node_index(f, j->allocs[a].node);
            if (n < 0)
                continue;
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

static void sched__usage_free(sched__usage *u)
{
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
            if (sched__node_usable(&f->nodes[n], site) && u.free[n] >= j->gpus_per_node)
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
        }
    }
    free(chosen);
    sched__usage_free(&u);
    return 0;
}

void sched_plan_free(sched_plan *plan)
{
    for (size_t i = 0; i < plan->n_starts; i++) {
        for (size_t p = 0; p < plan->starts[i].n_parts; p++)
            free(plan->starts[i].parts[p].gpus);
        free(plan->starts[i].parts);
    }
    free(plan->starts);
    memset(plan, 0, sizeof *plan);
}

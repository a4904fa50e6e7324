/* resv.c - choosing an advance reservation's nodes. */
#include "resv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

/* GPUs of node n that other reservations keep at some time in [from, to). */
static uint32_t resv__kept(const fsm *f, const char *node, int64_t from, int64_t to)
{
    uint32_t kept = 0;
    for (size_t r = 0; r < f->n_resv; r++) {
        const fsm_resv *v = &f->resv[r];
        if (v->start_ms >= to || v->end_ms <= from)
            continue;
        for (size_t p = 0; p < v->n_parts; p++)
            if (strcmp(v->parts[p].node, node) == 0)
                kept += v->parts[p].gpus;
    }
    return kept;
}

/* GPUs of node held at start by running jobs expected to run past it (no
 * limit: a year). */
static uint32_t resv__busy(const fsm *f, const char *node, int64_t start)
{
    uint32_t busy = 0;
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        int64_t end = j->start_ms + (int64_t)(j->time_limit_s ? j->time_limit_s : FSM_TIME_MAX_S) * 1000;
        if (end <= start)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++)
            if (j->allocs[a].node && strcmp(j->allocs[a].node, node) == 0)
                busy += j->allocs[a].n_gpus;
    }
    return busy;
}

typedef struct resv__cand {
    size_t node;
    uint32_t room, idle; /* GPUs free of reservations; of those, free of jobs at the start */
} resv__cand;

static int resv__cmp(const void *x, const void *y)
{
    const resv__cand *a = x, *b = y;
    if (a->idle != b->idle)
        return a->idle > b->idle ? -1 : 1;
    if (a->room != b->room)
        return a->room > b->room ? -1 : 1;
    return a->node < b->node ? -1 : a->node > b->node;
}

int resv_pick(const fsm *f, const resv_ask *a, resv_part *out, char *err, size_t errlen)
{
    resv__cand *c = xcalloc(f->n_nodes ? f->n_nodes : 1, sizeof *c);
    size_t n = 0;
    uint64_t room_all = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *nd = &f->nodes[i];
        if (!fsm_node_usable(nd))
            continue;
        if (a->site && *a->site && (!nd->site || strcmp(nd->site, a->site) != 0))
            continue;
        if (!fsm_node_has_model(nd, a->gpu_model))
            continue;
        uint32_t total = (uint32_t)nd->topo->n_gpus;
        uint32_t kept = resv__kept(f, nd->name, a->start_ms, a->end_ms);
        uint32_t room = total > kept ? total - kept : 0;
        if (a->nodes && (kept || !total))
            continue; /* whole nodes: nothing else kept on them */
        if (!room && !a->nodes)
            continue;
        uint32_t busy = resv__busy(f, nd->name, a->start_ms);
        c[n].node = i;
        c[n].room = a->nodes ? total : room;
        c[n].idle = c[n].room > busy ? c[n].room - busy : 0;
        room_all += c[n].room;
        n++;
    }
    qsort(c, n, sizeof *c, resv__cmp);
    int k = 0;
    if (a->nodes) {
        if (n < a->nodes) {
            snprintf(err, errlen, "%u whole nodes asked for, %zu up%s%s%s%s with nothing else reserved then",
                     a->nodes, n, a->gpu_model && *a->gpu_model ? " with " : "",
                     a->gpu_model ? a->gpu_model : "", a->site && *a->site ? " at site " : "",
                     a->site ? a->site : "");
            free(c);
            return -1;
        }
        for (; (uint32_t)k < a->nodes; k++) {
            out[k].node = c[k].node;
            out[k].gpus = c[k].room;
        }
    } else {
        if (room_all < a->gpus) {
            snprintf(err, errlen, "%u GPUs asked for, %llu free of other reservations then%s%s%s%s", a->gpus,
                     (unsigned long long)room_all, a->gpu_model && *a->gpu_model ? " of model " : "",
                     a->gpu_model ? a->gpu_model : "", a->site && *a->site ? " at site " : "",
                     a->site ? a->site : "");
            free(c);
            return -1;
        }
        uint32_t left = a->gpus;
        for (size_t i = 0; i < n && left; i++) {
            uint32_t take = c[i].room < left ? c[i].room : left;
            out[k].node = c[i].node;
            out[k++].gpus = take;
            left -= take;
        }
    }
    free(c);
    return k;
}

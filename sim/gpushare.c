/* gpushare.c - GPUs shared in thousandths: which GPUs a pod takes, and the
 * fragmentation it leaves. */
#include "gpushare.h"

#include <stdlib.h>
#include <string.h>

#include "../common/xmem.h"

void gpushare_init(gpushare *s, gpushare_mode mode, uint32_t n_nodes, const uint32_t *gpus)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->n_nodes = n_nodes;
    s->first = xcalloc(n_nodes, sizeof *s->first);
    s->gpus = xcalloc(n_nodes, sizeof *s->gpus);
    s->n_free = xcalloc(n_nodes, sizeof *s->n_free);
    s->frag = xcalloc(n_nodes, sizeof *s->frag);
    uint32_t total = 0;
    for (uint32_t i = 0; i < n_nodes; i++) {
        s->first[i] = total;
        s->gpus[i] = gpus[i] > GPUSHARE_GPUS_MAX ? GPUSHARE_GPUS_MAX : gpus[i];
        s->n_free[i] = s->gpus[i] * GPUSHARE_GPU;
        s->free_sum += s->n_free[i];
        total += s->gpus[i];
    }
    s->left = xcalloc(total, sizeof *s->left);
    for (uint32_t g = 0; g < total; g++)
        s->left[g] = GPUSHARE_GPU;
}

void gpushare_free(gpushare *s)
{
    free(s->first);
    free(s->gpus);
    free(s->left);
    free(s->n_free);
    free(s->frag);
    memset(s, 0, sizeof *s);
}

void gpushare_count(gpushare *s, uint32_t gpus, uint32_t milli)
{
    for (size_t k = 0; k < s->n_kinds; k++) {
        if (s->kinds[k].gpus == gpus && s->kinds[k].milli == milli) {
            s->kinds[k].weight++;
            return;
        }
    }
    if (s->n_kinds < GPUSHARE_KINDS_MAX)
        s->kinds[s->n_kinds++] = (gpushare_kind){.gpus = gpus, .milli = milli, .weight = 1};
}

/* The fragmented thousandths of a node whose g GPUs have left[] free. */
static double gpushare__frag(const gpushare *s, const uint16_t *left, uint32_t g)
{
    uint32_t untouched = 0;
    uint64_t all = 0, partly = 0;
    for (uint32_t i = 0; i < g; i++) {
        all += left[i];
        if (left[i] == GPUSHARE_GPU)
            untouched++;
        else
            partly += left[i];
    }
    double f = 0;
    for (size_t k = 0; k < s->n_kinds; k++) {
        const gpushare_kind *x = &s->kinds[k];
        uint64_t unusable = 0;
        if (x->milli) {
            for (uint32_t i = 0; i < g; i++)
                unusable += left[i] < x->milli ? left[i] : 0;
        } else {
            unusable = untouched >= x->gpus ? partly : all;
        }
        f += x->weight * (double)unusable;
    }
    return f;
}

void gpushare_kinds_done(gpushare *s)
{
    double pods = 0;
    for (size_t k = 0; k < s->n_kinds; k++)
        pods += s->kinds[k].weight;
    for (size_t k = 0; k < s->n_kinds; k++)
        s->kinds[k].weight /= pods;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        s->frag[i] = gpushare__frag(s, &s->left[s->first[i]], s->gpus[i]);
}

/* The GPUs the mode gives the pod on node i, into out, and the node's
 * fragmentation after, into *after. Whole GPUs: the lowest-index untouched
 * ones (any untouched GPUs leave the same fragmentation). A fraction: see
 * gpushare_mode. Returns false if it does not fit. */
static bool gpushare__choose(const gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli, uint32_t *out,
                             double *after)
{
    const uint16_t *left = &s->left[s->first[node]];
    uint32_t g = s->gpus[node];
    uint16_t trial[GPUSHARE_GPUS_MAX];
    memcpy(trial, left, g * sizeof *trial);
    if (!milli) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < g && k < gpus; i++)
            if (left[i] == GPUSHARE_GPU)
                out[k++] = i;
        if (k < gpus)
            return false;
        for (uint32_t c = 0; c < gpus; c++)
            trial[out[c]] = 0;
        *after = gpushare__frag(s, trial, g);
        return true;
    }
    bool found = false;
    uint32_t best = 0;
    double best_after = 0;
    for (uint32_t i = 0; i < g; i++) {
        if (left[i] < milli)
            continue;
        trial[i] = (uint16_t)(left[i] - milli);
        double f = gpushare__frag(s, trial, g);
        trial[i] = left[i];
        bool better = !found;
        if (found && s->mode == GPUSHARE_LEAST_FRAG)
            better = f < best_after - 1e-9 || (f <= best_after + 1e-9 && left[i] < left[best]);
        else if (found && s->mode == GPUSHARE_BEST_FIT)
            better = left[i] < left[best];
        if (better) {
            found = true;
            best = i;
            best_after = f;
        }
    }
    out[0] = best;
    *after = best_after;
    return found;
}

bool gpushare_fits(const gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli)
{
    const uint16_t *left = &s->left[s->first[node]];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->gpus[node]; i++)
        n += milli ? left[i] >= milli : left[i] == GPUSHARE_GPU;
    return n >= (milli ? 1 : gpus);
}

double gpushare_growth(const gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli)
{
    uint32_t set[GPUSHARE_GPUS_MAX];
    double after = 0;
    if (!gpushare__choose(s, node, gpus, milli, set, &after))
        abort(); /* the caller asks only where it fits */
    return after - s->frag[node];
}

/* Adds sign x the pod's thousandths to the GPUs of set on node i. */
static void gpushare__apply(gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli, const uint32_t *set,
                            int sign)
{
    uint16_t *left = &s->left[s->first[node]];
    uint32_t each = milli ? milli : GPUSHARE_GPU, n = milli ? 1 : gpus;
    for (uint32_t c = 0; c < n; c++)
        left[set[c]] = (uint16_t)(left[set[c]] + sign * (int)each);
    s->n_free[node] = (uint32_t)((int64_t)s->n_free[node] + sign * (int64_t)(each * n));
    s->free_sum = (uint64_t)((int64_t)s->free_sum + sign * (int64_t)(each * n));
    s->frag[node] = gpushare__frag(s, left, s->gpus[node]);
}

void gpushare_take(gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli, uint32_t *out)
{
    double after;
    if (!gpushare__choose(s, node, gpus, milli, out, &after))
        abort(); /* the core counted it as fitting */
    gpushare__apply(s, node, gpus, milli, out, -1);
}

void gpushare_give(gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli, const uint32_t *set)
{
    gpushare__apply(s, node, gpus, milli, set, 1);
}

double gpushare_fragmentation(const gpushare *s)
{
    double f = 0;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        f += s->frag[i];
    return s->free_sum ? f / (double)s->free_sum : 0;
}

/* gpuset.c - the best-connected free GPUs of a node. A greedy build from
 * every free GPU as a seed (add the GPU whose weakest link to the set is
 * the best, then whose links sum the most), the best of those sets kept:
 * O(n^3) for n GPUs, exact on the machines we know (NVLink domains,
 * bridged pairs, PCIe switch trees), where an exhaustive search would be
 * C(n, want). */
#include "gpuset.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

unsigned gpuset_link_quality(topo_link l)
{
    switch (l.kind) {
    case TOPO_LINK_X:
        return 1000;
    case TOPO_LINK_NV:
        return 600 + (l.nvlinks > 99 ? 99 : l.nvlinks);
    case TOPO_LINK_PIX:
        return 500;
    case TOPO_LINK_PXB:
        return 400;
    case TOPO_LINK_PHB:
        return 300;
    case TOPO_LINK_NODE:
        return 200;
    default:
        return 100;
    }
}

unsigned gpuset_weakest(const topo *t, const uint32_t *set, uint32_t n)
{
    unsigned w = 1000;
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = a + 1; b < n; b++) {
            unsigned q = gpuset_link_quality(topo_link_get(t, set[a], set[b]));
            if (q < w)
                w = q;
        }
    return w;
}

static unsigned long gpuset__sum(const topo *t, const uint32_t *set, uint32_t n)
{
    unsigned long s = 0;
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = a + 1; b < n; b++)
            s += gpuset_link_quality(topo_link_get(t, set[a], set[b]));
    return s;
}

static int gpuset__cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* How strongly a set (sorted) is tied to the free GPUs it leaves: taking
 * GPUs whose good links go to busy ones keeps whole free domains (a free
 * NVLink board, a free pair) for the jobs that need them. */
static unsigned long gpuset__ties(const topo *t, const bool *taken, const uint32_t *set, uint32_t n)
{
    unsigned long ties = 0;
    for (uint32_t h = 0; h < (uint32_t)t->n_gpus; h++) {
        bool in = false;
        for (uint32_t i = 0; i < n && !in; i++)
            in = set[i] == h;
        for (uint32_t i = 0; i < n && !taken[h] && !in; i++)
            ties += gpuset_link_quality(topo_link_get(t, set[i], h));
    }
    return ties;
}

/* Whether set a (n) is better than set b: weakest pair, sum, the fewest
 * ties to the GPUs left free, then the lower indexes (both sorted). */
static bool gpuset__better(const topo *t, const bool *taken, const uint32_t *a, const uint32_t *b, uint32_t n)
{
    unsigned wa = gpuset_weakest(t, a, n), wb = gpuset_weakest(t, b, n);
    if (wa != wb)
        return wa > wb;
    unsigned long sa = gpuset__sum(t, a, n), sb = gpuset__sum(t, b, n);
    if (sa != sb)
        return sa > sb;
    unsigned long ta = gpuset__ties(t, taken, a, n), tb = gpuset__ties(t, taken, b, n);
    if (ta != tb)
        return ta < tb;
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i];
    return false;
}

int gpuset_pick(const topo *t, const bool *taken, uint32_t want, uint32_t *out)
{
    uint32_t n = (uint32_t)t->n_gpus, nfree = 0;
    for (uint32_t g = 0; g < n; g++)
        nfree += !taken[g];
    if (want == 0)
        return 0;
    if (nfree < want)
        return -1;
    uint32_t *cur = xcalloc(want, sizeof *cur), *best = xcalloc(want, sizeof *best);
    bool *in = xcalloc(n, sizeof *in), have = false;
    for (uint32_t seed = 0; seed < n; seed++) {
        if (taken[seed])
            continue;
        memset(in, 0, n * sizeof *in);
        cur[0] = seed;
        in[seed] = true;
        for (uint32_t k = 1; k < want; k++) {
            uint32_t pick = n;
            unsigned pick_min = 0;
            unsigned long pick_sum = 0;
            for (uint32_t g = 0; g < n; g++) {
                if (taken[g] || in[g])
                    continue;
                unsigned mn = 1000;
                unsigned long sum = 0;
                for (uint32_t c = 0; c < k; c++) {
                    unsigned q = gpuset_link_quality(topo_link_get(t, g, cur[c]));
                    mn = q < mn ? q : mn;
                    sum += q;
                }
                if (pick == n || mn > pick_min || (mn == pick_min && sum > pick_sum)) {
                    pick = g;
                    pick_min = mn;
                    pick_sum = sum;
                }
            }
            cur[k] = pick;
            in[pick] = true;
        }
        qsort(cur, want, sizeof *cur, gpuset__cmp_u32);
        if (!have || gpuset__better(t, taken, cur, best, want)) {
            memcpy(best, cur, want * sizeof *best);
            have = true;
        }
    }
    memcpy(out, best, want * sizeof *out);
    free(cur);
    free(best);
    free(in);
    return 0;
}

/* gpushare.h - GPUs shared in thousandths, as the Alibaba trace asks them
 * (alibaba.h): each GPU of each node has 1000 thousandths; a pod takes
 * whole free GPUs, or a fraction of ONE GPU (never split across two). The
 * scheduler's core (plan.c) counts a node's free thousandths; this says
 * which GPUs, and whether a fraction fits in what one GPU has left.
 *
 * Fragmentation, as FGD (ATC'23) defines it: for a pod size of the
 * workload, the free thousandths of a node that a pod of that size could
 * not use (for a fraction: GPUs with less left than it; for g whole GPUs:
 * the partly used GPUs' free thousandths, or all the node's free ones when
 * it has fewer than g untouched GPUs); averaged over the workload's sizes,
 * weighted by how many pods have each. CPUs are not part of it. Pure. */
#ifndef JZ_GPUSHARE_H
#define JZ_GPUSHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPUSHARE_GPU 1000     /* thousandths in a GPU */
#define GPUSHARE_GPUS_MAX 64  /* per node */
#define GPUSHARE_KINDS_MAX 64 /* distinct pod sizes counted in the fragmentation */

typedef enum {
    GPUSHARE_FIRST_FIT,  /* a fraction on the lowest-index GPU it fits on */
    GPUSHARE_BEST_FIT,   /* ... on the GPU with the least left that it fits on */
    GPUSHARE_LEAST_FRAG, /* ... where it adds the least fragmentation (then best fit) */
} gpushare_mode;

typedef struct gpushare_kind {
    uint32_t gpus, milli; /* milli: 0 for whole GPUs */
    double weight;        /* its share of the pods */
} gpushare_kind;

typedef struct gpushare {
    gpushare_mode mode;
    uint32_t n_nodes;
    uint32_t *first;  /* node i's GPUs are left[first[i] .. first[i] + gpus[i]) */
    uint32_t *gpus;   /* per node */
    uint16_t *left;   /* per GPU: its free thousandths */
    uint32_t *n_free; /* per node: the sum of its GPUs' left */
    gpushare_kind kinds[GPUSHARE_KINDS_MAX];
    size_t n_kinds;
    double *frag;      /* per node: its fragmented thousandths (kept as pods come and go) */
    uint64_t free_sum; /* free thousandths over the nodes */
} gpushare;

/* n_nodes nodes of gpus[i] (at most GPUSHARE_GPUS_MAX) empty GPUs each. */
void gpushare_init(gpushare *s, gpushare_mode mode, uint32_t n_nodes, const uint32_t *gpus);
void gpushare_free(gpushare *s);
/* Counts a pod of the workload (gpus whole GPUs, or milli of one) in the
 * sizes the fragmentation weighs; sizes past GPUSHARE_KINDS_MAX are not
 * counted. Then gpushare_kinds_done, before any pod is placed. */
void gpushare_count(gpushare *s, uint32_t gpus, uint32_t milli);
void gpushare_kinds_done(gpushare *s);
/* Whether the pod fits on node i now. */
bool gpushare_fits(const gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli);
/* How much node i's fragmentation grows if the pod goes there (the mode's
 * choice of GPUs; it may fall); the pod must fit. */
double gpushare_growth(const gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli);
/* Places the pod on node i (it must fit): its GPUs, in the mode's choice,
 * into out (gpus of them). */
void gpushare_take(gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli, uint32_t *out);
/* Frees what gpushare_take took. */
void gpushare_give(gpushare *s, uint32_t node, uint32_t gpus, uint32_t milli, const uint32_t *set);
/* The fragmented share of the free thousandths (0 when none is free). */
double gpushare_fragmentation(const gpushare *s);

#endif

/* gpuset.h - which GPUs of a node a job gets: the best-connected free set
 * by the node's link matrix (NV > PIX > PXB > PHB > NODE > SYS; more
 * NVLinks better), judged first by its weakest pair, then by all its
 * pairs, then by the lowest indexes. Pure. */
#ifndef JZ_GPUSET_H
#define JZ_GPUSET_H

#include <stdbool.h>
#include <stdint.h>

#include "../hw/topo.h"

/* Picks want GPUs of t that are not taken (taken has t->n_gpus flags) into
 * out, in index order. Returns 0, or -1 when fewer than want are free. */
int gpuset_pick(const topo *t, const bool *taken, uint32_t want, uint32_t *out);
/* The quality of a pair's link: higher is better (NV with n links:
 * 600 + n, PIX 500, PXB 400, PHB 300, NODE 200, SYS 100). */
unsigned gpuset_link_quality(topo_link l);
/* The weakest pair of the set (its quality), or 1000 for fewer than two. */
unsigned gpuset_weakest(const topo *t, const uint32_t *set, uint32_t n);

#endif

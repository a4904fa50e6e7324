/* prio.h - multifactor priority, as Slurm's: a pending job's priority is
 * the sum of weight x factor (policy.h), each factor in [0, 1]:
 *
 *   age        its wait / max_age, at most 1
 *   fairshare  2^(-U / S) for its user in its account: S the user's share
 *              of the network (the product of its shares among siblings at
 *              each level: institute, project, user), U its effective usage
 *              (Slurm's classic formula: its share of all usage, pulled
 *              towards its parent's effective usage by its share among
 *              its siblings, so a project that used much lowers all its
 *              users), usage being GPU-seconds decayed by the half-life
 *   qos        its QoS's priority / the largest QoS priority
 *   size       its GPUs / the network's (large jobs rise, as in Slurm, so
 *              that they do not wait forever behind small ones)
 *
 * Pure arithmetic: the caller gives the usage and the clock. */
#ifndef JZ_PRIO_H
#define JZ_PRIO_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

typedef struct prio_tree prio_tree;

/* The configured accounts of p (p must outlive the tree). */
prio_tree *prio_tree_new(const pol *p);
void prio_tree_free(prio_tree *t);
/* Adds usage (GPU-seconds) of user under account ("inst" or
 * "inst/project"); unknown accounts and users join with 1 share. */
void prio_tree_use(prio_tree *t, const char *account, const char *user, double gpu_seconds);
/* Computes every node's factor; after it, prio_fairshare reads them. (Uses
 * after it need another finish.) */
void prio_tree_finish(prio_tree *t);
/* The fair-share factor of user in account: 1 with no usage anywhere. A
 * user or account the tree has not seen counts as one with no usage. */
double prio_fairshare(prio_tree *t, const char *account, const char *user);

typedef struct prio_row {
    const char *path; /* "inst", "inst/project", "inst/project/user" */
    uint32_t shares;
    double norm_shares, usage, norm_usage, effective_usage, fairshare;
} prio_row;
/* The tree in depth-first order (parents first): n rows, valid until the
 * tree changes. */
const prio_row *prio_tree_rows(prio_tree *t, size_t *n);

typedef struct prio_factors {
    double age, fairshare, qos, size;
} prio_factors;

/* A pending job's factors and priority. wait_ms: since it was submitted;
 * gpus: all its GPUs (nodes x per node), net_gpus the network's; a job
 * without GPUs counts nodes against net_nodes. */
prio_factors prio_factors_of(const pol *p, int64_t wait_ms, int qos, uint32_t gpus, uint32_t net_gpus,
                             uint32_t nodes, uint32_t net_nodes, double fairshare);
uint32_t prio_value(const pol *p, const prio_factors *f);

#endif

/* resv.h - where an advance reservation goes: the leader picks its nodes
 * when it is made (as Slurm does), among the nodes of the asked site and
 * GPU model, counting the GPUs other reservations keep in an overlapping
 * window. Pure: the state and the window in, the parts out. */
#ifndef JZ_RESV_H
#define JZ_RESV_H

#include <stddef.h>
#include <stdint.h>

#include "../raft/fsm.h"

typedef struct resv_ask {
    uint32_t gpus;  /* GPUs in all, or */
    uint32_t nodes; /* whole nodes */
    const char *gpu_model, *site;
    int64_t start_ms, end_ms;
} resv_ask;

typedef struct resv_part {
    size_t node; /* index into fsm.nodes */
    uint32_t gpus;
} resv_part;

/* Picks the parts (out has room for f->n_nodes). Nodes that are idle at
 * the start (no running job expected to last past it) come first, then
 * the ones with the most room, so that a GPU reservation takes few nodes.
 * Drained and down nodes are left out. Returns how many parts, or -1 with
 * the reason in err (not enough room: how much there is). */
int resv_pick(const fsm *f, const resv_ask *a, resv_part *out, char *err, size_t errlen);

#endif

/* outpath.h - where a job's output goes: --output/--error patterns with
 * %j (job id), %n (node rank), %N (node name), %t (task rank in the job)
 * and %%, relative to the working directory; jazari-%j.out by default.
 * Shared by the supervisor that writes the files and `jz logs` that reads
 * them. */
#ifndef JZ_OUTPATH_H
#define JZ_OUTPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define OUTPATH_DEFAULT "jazari-%j.out"

/* Appends the path of task `task` (its rank in the job) on node node_rank
 * (named node) to out. pattern NULL or "" means the default. */
void outpath_expand(const char *pattern, const char *workdir, uint64_t id, uint32_t node_rank,
                    const char *node, uint32_t task, buf *out);
/* Whether each task of a node has a file of its own (%t). */
bool outpath_per_task(const char *pattern);

#endif

/* outpath.h - where a job's output goes: --output/--error patterns with
 * %j (job id), %x (job name), %u (user name), %n (node rank), %N (node name),
 * %t (task rank in the job), %A and %a (an array's first job id and the
 * task's index) and %% (as sbatch's --output), relative to the working directory;
 * jazari-%j.out by default. Shared by the supervisor that writes the files and `jz logs` that reads them. */
#ifndef JZ_OUTPATH_H
#define JZ_OUTPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define OUTPATH_DEFAULT "jazari-%j.out"

typedef struct outpath_job {
    uint64_t id;
    uint64_t array_id; /* 0: not an array task (%A is then the job id, %a 0) */
    uint32_t array_index;
    const char *name; /* %x: the job's name (NULL: "") */
    const char *user; /* %u: its owner's name (NULL: "") */
} outpath_job;

/* Appends the path of task `task` (its rank in the job) on node node_rank
 * (named node) to out. pattern NULL or "" means the default. */
void outpath_expand(const char *pattern, const char *workdir, const outpath_job *job, uint32_t node_rank,
                    const char *node, uint32_t task, buf *out);
/* Whether each task of a node has a file of its own (%t). */
bool outpath_per_task(const char *pattern);

/* What a job writes its output with. */
typedef struct outpath_files {
    const char *output, *error; /* patterns; error NULL or "": with the output */
    const char *workdir;
    uint32_t tasks; /* per node; 0 is 1 */
    outpath_job job;
} outpath_files;

/* Calls fn with every file the job writes on node node_rank (named node):
 * the output, each task's when the pattern says %t (per_task), then the
 * error files when they are separate (err). The supervisor writes these,
 * `jz logs` reads them and a node serves no other to anyone but their owner. */
typedef void (*outpath_fn)(void *arg, uint32_t task, bool per_task, bool err, const char *path);
void outpath_each(const outpath_files *f, uint32_t node_rank, const char *node, outpath_fn fn, void *arg);

#endif

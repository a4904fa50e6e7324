/* jobspec.h - what the client and the daemon agree on about a job's
 * request: the limits of a spec and the syntax of an array (--array). */
#ifndef JZ_JOBSPEC_H
#define JZ_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

/* JobSpec.time_limit_s: as long as allowed (--time=UNLIMITED, Slurm's
 * INFINITE): the partition's max_time, else no limit. The leader replaces
 * it at submit. */
#define JOB_TIME_UNLIMITED 4294967295ull

/* The largest script, in bytes (as FSM_SCRIPT_MAX). */
#define JOB_SCRIPT_MAX (1u << 20)

#define JOB_ARRAY_MAX 10000         /* tasks of one array */
#define JOB_ARRAY_INDEX_MAX 1000000 /* the largest task index */

/* An array's indexes, as Slurm writes them: "0-15", "1,3,5", "0-20:5"
 * (a step), with "%N" at the end for at most N tasks at once. The indexes
 * into idx (at most max, in the order given; idx may be NULL to count
 * only), their count into n, the bound after % into throttle (0: none).
 * Returns 0, or -1 with the reason in err. */
int jobspec_array_parse(const char *s, uint32_t *idx, size_t max, size_t *n, uint32_t *throttle, char *err,
                        size_t errlen);

/* A step's tasks spread in blocks over its nodes (Slurm's block
 * distribution): of ntasks over nnodes, the node at index i runs *count,
 * the first of rank *first; the first nodes get one more when the tasks do
 * not divide evenly. */
void jobspec_tasks(uint32_t ntasks, uint32_t nnodes, uint32_t i, uint32_t *count, uint32_t *first);

#endif

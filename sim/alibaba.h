/* alibaba.h - the Alibaba GPU cluster trace of FGD (ATC'23, alibaba/clusterdata
 * cluster-trace-gpu-v2023): a pod list
 *   name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
 *   creation_time,deletion_time,scheduled_time
 * and a node list
 *   sn,cpu_milli,memory_mib,gpu,model
 * A pod asks for num_gpu whole GPUs, or, when gpu_milli < 1000 (num_gpu is
 * then 1), that many thousandths of one GPU; gpu_spec, when not empty,
 * names the GPU models it may run on, separated by '|'. Times are seconds.
 * Read into the simulator's job records (swf.h): procs = num_gpu, milli =
 * gpu_milli for a fraction (0 for whole GPUs), cpu_milli, models. */
#ifndef JZ_ALIBABA_H
#define JZ_ALIBABA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swf.h"

#define ALIBABA_MODEL_MAX 32   /* a GPU model's name, with its NUL */
#define ALIBABA_SPEC_MAX 256   /* a gpu_spec, with its NUL */
#define ALIBABA_SPECS_MAX 1024 /* distinct gpu_spec values */
#define ALIBABA_NODES_MAX 1000000
#define ALIBABA_GPUS_MAX 64 /* per node, and per pod */

typedef struct alibaba_node {
    uint32_t gpus;
    uint32_t cpu_milli;
    char model[ALIBABA_MODEL_MAX];
} alibaba_node;

typedef struct alibaba {
    /* The GPU pods that ran, by creation time (then line), submit times
     * from the first one's; run = deletion_time - scheduled_time (the time
     * it held its GPUs; the original cluster's own queueing is not run
     * time); request = run (the trace has no time limits). */
    swf pods;
    alibaba_node *nodes; /* in the node list's order */
    size_t n_nodes;
    char (*specs)[ALIBABA_SPEC_MAX]; /* distinct non-empty gpu_spec values: pods' models - 1 */
    size_t n_specs;
    size_t no_gpu;      /* pods dropped: num_gpu 0 (CPU only) */
    size_t no_run_time; /* pods dropped: never scheduled, or deleted by then */
} alibaba;

/* Whether path begins with the pod list's header line. */
bool alibaba_is_pod_list(const char *path);
/* Reads the pod list `pods` and the node list `nodes` into out. Returns 0,
 * or -1 with one line in err naming the file, the line and what is wrong
 * (out is then empty). */
int alibaba_load(const char *pods, const char *nodes, alibaba *out, char *err, size_t errlen);
void alibaba_free(alibaba *a);
/* Whether a node of `model` may take a pod of gpu_spec `spec` ('|'-separated names). */
bool alibaba_spec_has(const char *spec, const char *model);

#endif

/* swf.h - traces in the Standard Workload Format (Parallel Workloads
 * Archive): `;` header lines (MaxNodes, MaxProcs), then 18 numbers per job:
 * 1 id, 2 submit, 3 wait, 4 run time, 5 allocated processors, 8 requested
 * processors, 9 requested time, ...; -1 is unknown. */
#ifndef JZ_SWF_H
#define JZ_SWF_H

#include <stddef.h>
#include <stdint.h>

#define SWF_MAX_JOBS 10000000
#define SWF_LINE_MAX 4096

typedef struct swf_job {
    uint64_t id;
    int64_t submit;  /* s */
    int64_t run;     /* actual run time, s */
    int64_t request; /* requested time, s; the run time when the trace says -1 */
    uint32_t procs;  /* max(allocated, requested); GPU traces: GPUs */
    /* GPU traces that share GPUs (alibaba.h); 0 elsewhere: */
    uint32_t milli;       /* a fraction of one GPU in thousandths (procs is then 1); 0: whole GPUs */
    uint32_t cpu_milli;   /* CPUs in thousandths; 0: not counted */
    uint32_t models;      /* the GPU models it may run on (a 1-based index into the trace's list); 0: any */
    uint32_t user, group; /* SWF fields 12 and 13, plus one; 0: unknown */
} swf_job;

typedef struct swf {
    swf_job *jobs; /* run time > 0 only, sorted by id */
    size_t n;
    uint32_t max_nodes, max_procs; /* from the header; 0 when absent */
    size_t skipped;                /* jobs dropped: run time <= 0 or no processors */
} swf;

/* Reads path. Returns 0, or -1 with one line in err naming the file, the
 * line and what is wrong. */
int swf_load(const char *path, swf *out, char *err, size_t errlen);
/* A new record, zeroed, at the end of t->jobs (cap: its room, grown as needed). */
swf_job *swf_add(swf *t, size_t *cap);
void swf_free(swf *t);

#endif

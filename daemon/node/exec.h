/* exec.h - running a job's part on this node: the command (or script) as
 * the submitting user, in its working directory, with its environment and
 * GPUs, its output to files, and its exit reported once.
 *
 * This release runs one task per node as a child of the daemon. The
 * supervisor per job (so that a restarted daemon finds its jobs), cgroups,
 * CPU binding and the gang's ranks arrive with the execution milestone. */
#ifndef JZ_EXEC_H
#define JZ_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct exec_spec {
    uint64_t id;
    const char *name;
    char *const *argv; /* the command; NULL when script is set */
    size_t argc;
    const char *script; /* a script's text, run with /bin/sh */
    const char *workdir;
    const char *output; /* NULL: <workdir>/jazari-<id>.out */
    const char *error;  /* NULL: with the output */
    char *const *env;   /* the job's own KEY=VALUE settings */
    size_t n_env;
    uid_t uid;
    gid_t gid;
    const uint32_t *gpus;
    uint32_t n_gpus;
    const char *nodelist; /* comma list of the job's nodes */
    uint32_t nnodes, node_rank;
    const char *spool; /* where scripts are written: <state_dir>/jobs */
} exec_spec;

/* How a part ended: exit_code is the status, or 128 + the signal; when
 * failed_to_start, reason says why (it never ran). */
typedef void (*exec_done_cb)(void *arg, uint64_t id, int exit_code, bool failed_to_start, const char *reason);

typedef struct exec_job exec_job;

typedef struct exec {
    uv_loop_t *loop;
    exec_job *jobs;
    int running;
    bool closing;
    void (*close_cb)(struct exec *x);
} exec;

void exec_init(exec *x, uv_loop_t *loop);
/* Whether the part of job id runs here (started by this daemon). */
bool exec_has(const exec *x, uint64_t id);
/* Starts a part. cb runs exactly once, from the loop, even when the part
 * cannot start (then failed_to_start and a reason naming the problem). */
void exec_start(exec *x, const exec_spec *s, exec_done_cb cb, void *arg);
/* Whether an earlier run of this daemon started the part of job id (its
 * record is in spool): if so its processes are killed and the record
 * removed, and the part must be reported lost, never started again. */
bool exec_lost(const char *spool, uint64_t id);
/* Kills the part of job id (SIGKILL to its process group), if it runs
 * here; its done callback follows as usual. */
void exec_kill(exec *x, uint64_t id, const char *why);
/* The ids of the parts running here, into ids (at most max); their count. */
size_t exec_ids(const exec *x, uint64_t *ids, size_t max);
/* Kills every part (SIGKILL to their process groups); cb when all exited. */
void exec_close(exec *x, void (*cb)(exec *x));

#endif

/* fsm.h - the replicated state machine: nodes and jobs, changed only by
 * applying log entries (jazari.Entry), saved and restored as snapshots.
 *
 * Pure: no I/O, no clock. The leader stamps each entry's time, so every
 * controller that applies the same entries holds the same state. Raft
 * (daemon/raft/raft.c) feeds it; tests drive it directly. */
#ifndef JZ_FSM_H
#define JZ_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/strmap.h"
#include "../../lib/hw/topo.h"
#include "adb.h"
#include "codec.h"
#include "edb.h"
#include "facct.h"
#include "jazari.pb-c.h"
#include "tdb.h"

/* The formats of entries and snapshots are codec.h's (CODEC_FORMAT).
 * Format 2 (execution): a lost node requeues its jobs, ends name their run
 * (attempt) and node, a job completes with its last part, starts go only
 * to nodes that are up. Entries of format 1 are applied as they were. */

/* Format 3 (policy): preemption (a preempted run goes back to the queue
 * once its parts end), advance reservations, fair-share usage.
 * Format 4: a submission's min_id: job ids are never issued twice. */

/* A job lost this many times fails instead of going back to the queue: a
 * node that cannot start anything must not bounce it forever. */
#define FSM_MAX_ATTEMPTS 10

/* Bounds checked before anything reaches the log. */
#define FSM_NAME_MAX 128
#define FSM_ARGV_MAX 4096       /* arguments */
#define FSM_CMD_BYTES_MAX 65536 /* all arguments together */
#define FSM_SCRIPT_MAX (1u << 20)
#define FSM_ENV_MAX 1024
#define FSM_PATH_MAX 4095
#define FSM_NODES_MAX 4096
#define FSM_TASKS_MAX 1024
#define FSM_TIME_MAX_S (365ull * 24 * 3600)
#define FSM_DEPS_MAX 128
#define FSM_ARRAY_MAX 10000             /* tasks of one array */
#define FSM_ID_JUMP_MAX 10000000        /* a submission's min_id skips at most this many ids */
#define FSM_ARRAY_INDEX_MAX 1000000     /* the largest task index */
#define FSM_ARRAY_BYTES_MAX (64u << 20) /* its specs together, in one entry */

typedef struct fsm_alloc {
    char *node;
    uint32_t *gpus;
    uint32_t n_gpus;
    char *cpus;    /* list format; NULL: not bound */
    char *address; /* the node's daemon when the job was placed */
    bool done;     /* this part completed; the others still run */
} fsm_alloc;

/* What the scheduler needs of a spec beyond its numbers, shared by the
 * jobs that ask alike (a queue of 100,000 jobs has a few dozen of these):
 * a pass reads it instead of decoding every job's spec. */
typedef struct fsm_class {
    char *key; /* the fields joined, for the lookup */
    const char *account, *qos, *site, *gpu_model, *constraint, *reservation; /* into key; "" none */
    const char *partition; /* into key: the partitions asked for, a comma list; "" none */
    const char *data;      /* into key: the dataset it reads (--data); "" none */
    bool exclusive;        /* whole nodes */
    bool span_sites;       /* a gang may span sites (--span-sites) */
    uint64_t min_gpu_mem;
    uint32_t array_max; /* an array's throttle (0: none) */
    uint32_t refs;
    size_t slot; /* in fsm.class_pool */
    /* Whose pending or running jobs are of it, and how many: each user's
     * count of classes (fsm_user.classes) follows from these. */
    struct fsm_class_holder {
        size_t user; /* index into fsm.users */
        uint32_t jobs;
    } * holders;
    size_t n_holders;
} fsm_class;

/* A job, kept small: the spec stays in its encoded form (a pending job
 * costs its few scalar fields plus its encoded spec). */
typedef struct fsm_job {
    uint64_t id;
    int64_t submit_ms, start_ms, end_ms;
    uint32_t uid, gid;
    int32_t exit_code;
    uint32_t nodes, gpus_per_node;
    uint32_t cpus_per_node; /* tasks per node x CPUs per task */
    uint32_t attempt;       /* requeues so far: a run is (id, attempt) */
    uint32_t master_port;   /* of the running attempt; 0: the default */
    uint64_t array_job_id;  /* an array task: the array's first task's id; else 0 */
    int64_t preempt_ms;     /* running: when it was preempted (its parts are stopping); 0: not */
    uint32_t preempt_grace_s;
    uint32_t preemptions; /* requeues that were preemptions, not losses */
    bool no_requeue;      /* a lost node fails it instead */
    bool has_deps; /* --after-ok, --after-any, --after-notok, --after, singleton: its spec says which */
    const fsm_class *cls; /* never NULL */
    uint64_t time_limit_s;
    Jazari__JobState state;
    bool held; /* pending, not to start until released */
    char *user;
    char *reason;    /* NULL: none */
    char *partition; /* the partition its run started in; NULL: none */
    uint8_t *spec;   /* the encoded JobSpec */
    uint32_t spec_len;
    fsm_alloc *allocs;
    uint32_t n_allocs;
    bool batch;              /* the script runs once, on the first node (fstep.h) */
    Jazari__JobStep **steps; /* of the running (or last) attempt, owned: fstep.h */
    uint32_t n_steps;
    uint32_t steps_started; /* in this attempt: the next step's id */
    /* Format 9: what its runs used and cost (NULL: nothing yet), its last
     * runs' charges (at most FSM_RUNS_KEPT), owned. */
    Jazari__JobUsage *usage;
    Jazari__RunCharge **runs;
    uint32_t n_runs;
    uint8_t stop_how; /* running and stopping (preempt_ms): FSM_STOP_* */
} fsm_job;

#define FSM_RUNS_KEPT 16
/* Why a running job is stopping to go back to the queue: what its run
 * ends as, and so whether it is charged (the policy's `charge`). */
#define FSM_STOP_PREEMPTED 0 /* by a QoS: "preempted" */
#define FSM_STOP_REQUEUED 1  /* jz requeue: "requeued", charged as any end */
#define FSM_STOP_DRAINED 2   /* jz drain --now, a health drain: "lost" */

/* Format 8: a node, or one GPU of it, out of service (DrainCmd). */
typedef struct fsm_drain {
    int32_t gpu; /* -1: the whole node */
    char *reason, *by;
    char *source; /* "admin", "health", "burnin": who may resume it besides an admin */
    int64_t since_ms;
} fsm_drain;

#define FSM_DRAIN_SOURCE_MAX 32
#define FSM_DRAIN_TEXT_MAX 400

typedef struct fsm_node {
    char *name;
    char *site;
    char *group;  /* network group, NULL: none */
    char *labels; /* comma list, NULL: none */
    char *address;
    char *state; /* its liveness: "up" or "down" (fsm_node_state: as shown) */
    char *reason;
    int64_t since_ms;
    topo *topo;        /* never NULL: an empty topo when unknown */
    fsm_drain *drains; /* at most one per target (the node, each GPU) */
    uint32_t n_drains;
} fsm_node;

/* Fair share: an account's user's usage, GPU-seconds decayed by the
 * half-life to as_of_ms. */
typedef struct fsm_usage {
    char *path;      /* "account/user" */
    uint64_t gpu_ms; /* GPU-milliseconds: integers, so every replica agrees */
    int64_t as_of_ms;
} fsm_usage;

#define FSM_RESV_MAX 1024
#define FSM_LACKS_MAX 4096             /* (node, user) pairs remembered; the oldest go first */
#define FSM_LACK_MS (10ll * 60 * 1000) /* how long a node is avoided for a user it has no account for */
#define FSM_HALF_LIFE_MIN_MS 1000ll
#define FSM_HALF_LIFE_MAX_MS (3650ll * 86400 * 1000)
#define FSM_CPUS_PER_GPU 16 /* usage: a job without GPUs is charged its CPUs / this */

/* A node where a user has no account, learnt at when_ms. */
typedef struct fsm_lack {
    char *node, *user;
    int64_t at_ms;
} fsm_lack;

typedef struct fsm_resv_part {
    char *node;
    uint32_t gpus;
} fsm_resv_part;

typedef struct fsm_resv {
    char *name;
    char *account; /* whose jobs may use it (a prefix of theirs) */
    char **users;  /* or these */
    size_t n_users;
    int64_t start_ms, end_ms;
    fsm_resv_part *parts;
    size_t n_parts;
    uint8_t *msg; /* the Reservation as applied, for listing and snapshots */
    size_t msg_len;
} fsm_resv;

/* What one user holds in the queue (pending or running), for the limits
 * per user the leader checks at submit. */
typedef struct fsm_user {
    char *name;
    uint32_t active;     /* jobs pending or running */
    uint64_t spec_bytes; /* the bytes of their specs (command, environment, script) */
    uint32_t classes;    /* the classes of those jobs: what a scheduling pass works through */
} fsm_user;

/* The most classes one user's pending and running jobs may be of (checked
 * at submit): a pass works per class, so a user who gives every job other
 * options must not make every pass, and so the leader's loop, slow. */
#define FSM_CLASSES_PER_USER 64

typedef struct fsm {
    uint64_t next_job_id;
    int64_t time_ms; /* the time of the last applied entry */
    fsm_job **jobs;  /* by id - 1 - jobs_base; NULL where purged */
    uint64_t jobs_cap;
    uint64_t jobs_base; /* the ids up to it are all forgotten (format 9): the index starts after them */
    uint64_t jobs_lead; /* slots of jobs known empty from the start (not replicated: derived) */
    uint64_t n_jobs;    /* live entries in jobs */
    uint64_t n_active;  /* pending or running */
    uint64_t n_ready;   /* pending and not held: what a scheduling pass looks at */
    uint64_t n_running; /* running: what the nodes look for */
    fsm_node *nodes;
    size_t n_nodes;
    strmap node_index; /* name -> index into nodes */
    strmap classes;    /* fsm_class.key -> its slot in class_pool */
    fsm_class **class_pool;
    size_t n_class_pool; /* slots used so far (a freed one is NULL until reused) */
    uint64_t applied;    /* entries applied, for tests and status */
    uint64_t changes;    /* bumped by every apply and restore: a view built from the state holds while it is the same */
    uint32_t format;     /* of the entry being applied */
    fsm_usage *usage;
    size_t n_usage, usage_cap;
    int64_t half_life_ms; /* of usage: replicated (PolicyCmd), the default until one is applied */
    fsm_resv *resv;
    size_t n_resv;
    tdb trust;       /* join tokens, credentials, revoked nodes */
    adb audit;       /* who asked for what */
    edb events;      /* what an admin watches */
    fsm_lack *lacks; /* nodes where a user has no account, oldest first */
    size_t n_lacks;
    fsm_user *users; /* every user ever seen (never many: people, not jobs) */
    size_t n_users, users_cap;
    strmap user_index; /* name -> index into users */
    facct acct;        /* format 9: accounting policy, grants, reservation charges */
    /* Ended jobs by end time, oldest first: format 9 forgets each once the
     * policy's jobs_keep has passed (the history keeps it). */
    struct fsm_ended {
        uint64_t id;
        int64_t end_ms;
    } * ended;
    size_t ended_head, n_ended, ended_cap;
    /* What the last fsm_apply (or fsm_restore: everything the state still
     * holds) gave the history: jobs that ended, runs that ended, and the
     * reservation charges from acct.resv[acct.n_resv - out_resv] on. Not
     * replicated; the caller reads it before the next apply. */
    uint64_t *out_jobs;
    size_t n_out_jobs, out_jobs_cap;
    struct fsm_out_run {
        uint64_t id;
        uint32_t attempt;
    } * out_runs;
    size_t n_out_runs, out_runs_cap;
    size_t out_resv;
    /* A reader's memo of the state (fsm_memo_set): not replicated. */
    void *memo;
    void (*memo_free)(void *memo);
} fsm;

/* What applying one entry did, for the requests waiting on it. */
typedef struct fsm_result {
    uint64_t first_id; /* the first job id the entry assigned (ids are consecutive) */
    uint32_t submitted;
    uint32_t cancelled;
    uint32_t nodes_changed;
    uint32_t started;
    uint32_t ended;
    uint32_t trust_changed; /* TrustCmds applied */
    uint32_t n_cmds;
    uint32_t counts[CODEC_ENTRY_MAX_CMDS]; /* per command: jobs submitted or cancelled, nodes changed */
    uint32_t steps[CODEC_ENTRY_MAX_CMDS];  /* per command: the step it launched, its id + 1 (0: none) */
} fsm_result;

void fsm_init(fsm *f);
void fsm_free(fsm *f);

/* Checks a submission before it is logged: bounds, a time limit, more
 * GPUs per node than any known node has, more nodes than exist. Returns 0,
 * or -1 with the reason in err (one line a user can act on). */
int fsm_validate_spec(const fsm *f, const Jazari__JobSpec *spec, char *err, size_t errlen);
/* Whether the person submitting may know of job j (arg: theirs). */
typedef bool (*fsm_job_sees)(void *arg, const fsm_job *j);
/* The same for a person: a dependency (--after-ok, --after-any) on a job
 * sees(arg, job) says is not theirs to know of is refused exactly as one
 * on an id never issued, so that it tells nothing of that job. */
int fsm_validate_spec_for(const fsm *f, const Jazari__JobSpec *spec, fsm_job_sees sees, void *arg, char *err,
                          size_t errlen);

/* Applies one encoded Entry. Returns 0 with what it did in res (may be
 * NULL), or -1 with the reason in err, the state unchanged, when the entry
 * does not decode or holds what this release cannot apply (a newer format
 * or command: codec_entry_decode). The caller must then stop, not skip it:
 * a controller that skips what others apply diverges from them. */
int fsm_apply(fsm *f, const void *data, size_t len, fsm_result *res, char *err, size_t errlen);

/* Appends the whole state, encoded as a Snapshot, to out. */
void fsm_snapshot(const fsm *f, buf *out);
/* Replaces the state with a snapshot's. Returns 0, or -1 with err (the
 * state is then unchanged). */
int fsm_restore(fsm *f, const void *data, size_t len, char *err, size_t errlen);

const fsm_job *fsm_job_get(const fsm *f, uint64_t id);
/* A job's run charge of that attempt, if the state still holds it. */
const Jazari__RunCharge *fsm_job_run(const fsm_job *j, uint32_t attempt);
/* Format 9: what a job's run is charged to its allocation each ms, in
 * thousandths of charge units (GPU-ms x rate): its GPUs at their models'
 * rates and its CPUs at the CPU's; a pending job's at the worst rate of
 * the models it may be placed on. */
uint64_t fsm_job_charge_rate(const fsm *f, const fsm_job *j);
/* The account whose grants a job is charged to (facct_grant_holder), or NULL. */
const char *fsm_job_grant_holder(const fsm *f, const fsm_job *j);
/* What holder's grant in force at now_ms has left: granted - used - the
 * charge so far of the running jobs charged to it; and in *held the
 * running jobs' worst case still to come. INT64_MAX when it holds no grant
 * in force (NULL grant). */
int64_t fsm_grant_left(const fsm *f, const char *holder, int64_t now_ms, uint64_t *running, uint64_t *held,
                       const facct_grant **grant);
/* What a job asks, as far as its allocation goes. */
typedef struct fsm_ask {
    const char *account; /* "default" when none */
    uint32_t nodes, gpus_per_node, cpus_per_node;
    const char *gpu_model; /* "" any */
    uint64_t time_limit_s;
} fsm_ask;
void fsm_job_ask(const fsm_job *j, fsm_ask *ask);
/* Its worst case in charge units: its GPUs at the worst rate of the
 * models it may get, for its time limit, or until grant g ends when
 * sooner (g NULL: the limit). */
uint64_t fsm_ask_worst(const fsm *f, const fsm_ask *ask, int64_t now_ms, const facct_grant *g);
/* Whether it may start now as far as its allocation goes: 0 yes (or its
 * account holds no grant: unlimited); 1 not now ("AllocationExhausted" in
 * why: its worst case is more than what is left); -1 never (more than any
 * grant of its account gives, or none is in force or to come), with why. */
int fsm_allocation_check(const fsm *f, const fsm_ask *ask, int64_t now_ms, char *why, size_t whylen);
/* A usage record's GPU-milliseconds decayed to now_ms by the state's
 * half-life (integer arithmetic: the same on every replica). */
uint64_t fsm_usage_at(const fsm *f, const fsm_usage *u, int64_t now_ms);
/* What a job's run from from_ms to to_ms costs in GPU-milliseconds: its
 * GPUs, or its CPUs / FSM_CPUS_PER_GPU, times the time. */
uint64_t fsm_job_gpu_ms(const fsm_job *j, int64_t from_ms, int64_t to_ms);
const fsm_resv *fsm_resv_get(const fsm *f, const char *name);
/* Whether a job (its spec's account, its user) may use reservation r. */
bool fsm_resv_member(const fsm_resv *r, const char *account, const char *user);
/* GPUs of node held by running jobs. (A scan of the running jobs: the
 * scheduler milestone brings the index of free capacity.) */
uint32_t fsm_node_gpus_used(const fsm *f, const char *node);
/* The same for every node at once, into used (f->n_nodes entries, by the
 * nodes' order): one scan of the running jobs. */
void fsm_gpus_used(const fsm *f, uint32_t *used);
const fsm_node *fsm_node_get(const fsm *f, const char *name);
/* What user holds in the queue; NULL if nothing ever. */
const fsm_user *fsm_user_get(const fsm *f, const char *name);
/* How many classes user's pending and running jobs would be of with one
 * more job of spec (the one a submission makes: its account set). */
uint32_t fsm_user_classes_with(const fsm *f, const char *user, const Jazari__JobSpec *spec);

/* What a reader derives from the state and keeps while the state stays as
 * it is (sched.c: why each job waits, for every jz show and jz queue until
 * the next change). The state drops it, with data_free(data), before it
 * applies an entry or restores a snapshot, and when freed: a memo never
 * outlives what it points into. One at a time: setting one drops the last. */
void fsm_memo_set(fsm *f, void *data, void (*data_free)(void *data));
/* The memo, when it was set with this data_free (its owner's); else NULL. */
void *fsm_memo_get(const fsm *f, void (*data_free)(void *data));

/* The node as shown: "down" (not heard from), "draining" (drained with
 * jobs still on it), "drained", or "up". */
const char *fsm_node_state(const fsm *f, const fsm_node *n);
/* Whether a start may use the node: up and not drained as a whole. */
bool fsm_node_usable(const fsm_node *n);
/* The node's drain of gpu (-1: the whole node), or NULL. */
const fsm_drain *fsm_drain_get(const fsm_node *n, int32_t gpu);
/* "draining" while a running job holds the drained target, else "drained". */
const char *fsm_drain_state(const fsm *f, const fsm_node *n, const fsm_drain *d);
/* Whether a running job's part on node uses gpu (-1: any part there). */
bool fsm_node_busy(const fsm *f, const char *node, int32_t gpu);

/* At most max bytes of UTF-8 without control characters (C1 either:
 * what others' terminals would act on). */
bool fsm_printable(const char *s, size_t max);

bool fsm_job_active(const fsm_job *j);
const char *fsm_state_name(Jazari__JobState s);

/* An array's indexes ("0-99%8", "1,3,5-11:2"; jobspec_array_parse): into idx (at most max, in
 * the order given), their count into n, the bound after % into throttle
 * (0: none). Returns 0, or -1 with the reason in err. */
int fsm_array_parse(const char *s, uint32_t *idx, size_t max, size_t *n, uint32_t *throttle, char *err,
                    size_t errlen);

/* Whether node n has GPUs of this model: the words as they appear in the
 * model's name, in any case ("V100", "h100 80gb"); NULL or "": any. */
bool fsm_node_has_model(const fsm_node *n, const char *model);
/* Whether every GPU of node n has at least min_bytes of memory (0: any
 * node, GPUs or not). */
bool fsm_node_gpu_mem_ok(const fsm_node *n, uint64_t min_bytes);
/* Whether node n has every label of the comma list (NULL or "": yes). */
bool fsm_node_has_labels(const fsm_node *n, const char *constraint);
/* Whether node lacks an account for user, as learnt less than
 * FSM_LACK_MS before now_ms. */
bool fsm_node_lacks(const fsm *f, const char *node, const char *user, int64_t now_ms);

/* Whether a pending job's dependencies (--after-ok, --after-any,
 * --after-notok, --after) allow it to start: 1 yes, 0 not yet, -1 never
 * (an --after-ok job ended otherwise, an --after-notok one COMPLETED). A
 * dependency on an array's first task (its id is its array_job_id) is on
 * every task of the array (their ids follow it). */
int fsm_deps_ready(const fsm *f, const Jazari__JobSpec *spec);
/* fsm_deps_ready, and singleton: not while another job of j's user and
 * name is running, or pending with a lower id (Slurm's rule). */
int fsm_job_deps_ready(const fsm *f, const fsm_job *j, const Jazari__JobSpec *spec);

/* A job as a message for a reply: fills out (caller's storage) and
 * returns the decoded spec, which the caller frees with
 * jazari__job_spec__free_unpacked(spec, NULL) after using out. */
Jazari__JobSpec *fsm_job_to_pb(const fsm_job *j, Jazari__Job *out, Jazari__JobAlloc *allocs,
                               Jazari__JobAlloc **alloc_ptrs);

#endif

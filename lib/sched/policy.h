/* policy.h - the site's scheduling policy, from the file named by the
 * `policy` setting: the accounts and their fair shares, the qualities of
 * service, the weights of the priority factors. Pure text in, a table
 * out; every controller reads the same file (like slurm.conf).
 *
 *   # priority = the sum of weight x factor, each factor in [0, 1]
 *   weight age 1000            # wait / max_age, at most 1
 *   weight fairshare 10000     # 2^(-effective usage / shares)
 *   weight qos 2000            # the QoS's priority / the largest one
 *   weight size 500            # the job's GPUs / the network's
 *   max_age 7d
 *   half_life 7d               # usage decays by half in this time
 *   events_retention 30d       # jz events keeps this long
 *   default_account default
 *   account um6p 40            # an institute and its shares
 *   account um6p/nlp 3 users=amina,omar  # a project, and who may use it
 *   account um6p/nlp/alice 2   # a user in it (others: 1 each)
 *   qos normal priority=0
 *   qos high priority=100 preempt=normal,scavenger grace=60s max_gpus_per_user=32
 *   qos scavenger priority=0 preemptible
 *   account um6p/cv 2 users=sara coordinators=karim  # karim manages its jobs
 *   tenant acme accounts=acme,acme-labs/x admins=lea # a startup and its admins
 *   privacy private            # or open: everyone sees everyone's jobs (briefly)
 *
 *   partition gpu nodes=gpu[01-10],dgx* default_time=1:00:00 max_time=2-00:00:00
 *             accounts=inst/a,inst/b qos=normal,high default=yes
 *   partition cpu site=casa label=cpu max_time=UNLIMITED
 *
 * `preemptible`: its jobs may also run on reserved GPUs nobody uses, and
 * give them back (preempted) when the reservation's owner needs them.
 *
 * A partition (Slurm's): the nodes named by nodes= (a host list; '*' and
 * '?' match any characters), or of a site= or with a label= (any of them;
 * none of the three: every node). A job asks for one or several
 * (--partition a,b); none asked, it goes to the default= one when there is
 * one, else anywhere. Times: MINUTES, MM:SS, HH:MM:SS, D-HH[:MM[:SS]], or
 * 90m, 12h, 7d; UNLIMITED. accounts= and qos=: who may use it (else
 * anyone).
 *
 * GPU health: what each health condition of a node (lib/hw/health.h, and
 * the site's health_program) does, and to the jobs on it:
 *
 *   health CONDITION ACTION [jobs=requeue|finish] [resume=auto|manual]
 *
 *   health xid_63 drain-gpu jobs=finish resume=manual
 *   health temp_high warn
 *   health xid_* none          # any XID not named by a line or a default
 *
 * ACTION: none (nothing), warn (an event, a log line), drain-gpu (that GPU
 * takes no new job; the rest of the node works on), drain-node. jobs=: the
 * jobs on what is drained are requeued now, or let finish (the default).
 * resume=: when the condition clears, the GPU or node returns to service
 * by itself (auto), or waits for `jz resume` (manual, the default).
 * jobs= and resume= go with the drains only. CONDITION: ecc_dbe,
 * row_remap_failed, row_remap_pending, retired_pages_pending,
 * temp_slowdown, temp_high, gpu_lost, power_brake, health_program (a node
 * condition: none, warn or drain-node), xid_N, or xid_* (the XIDs that
 * neither a line nor a default below names). A condition named twice is
 * an error.
 *
 * Defaults (NVIDIA's XID guidance), for what the file does not say:
 *   xid_48 xid_64 xid_95 xid_74 ecc_dbe row_remap_failed
 *                       drain-gpu jobs=requeue resume=manual
 *   xid_79 gpu_lost     drain-node jobs=requeue resume=auto (a GPU off the
 *                       bus takes a node reset; once it answers again the
 *                       node may return)
 *   row_remap_pending retired_pages_pending
 *                       drain-gpu jobs=finish resume=manual (a GPU reset
 *                       applies them; then jz resume)
 *   temp_slowdown temp_high
 *                       drain-gpu jobs=finish resume=auto
 *   health_program      drain-node jobs=finish resume=auto
 *   xid_63 xid_92 power_brake   warn
 *   xid_13 xid_31 xid_43 xid_45 xid_68   none (the application's fault)
 *   xid_* (any other)   warn
 *
 * Burn-in (daemon/burnin.c, the node's burnin_program: a GPU memory test
 * and a matrix multiply checked against the CPU):
 *
 *   burnin on-join             # or manual, the default
 *
 * on-join: a node with GPUs that joins the network for the first time, or
 * comes back with another set of GPUs (by UUID: a repaired node whose
 * boards were replaced), is drained by the leader (source "burnin",
 * reason "burn-in pending") and asked to run its burn-in: a pass resumes
 * it, a failure keeps it drained with the program's first line as the
 * reason. A node that merely restarts or was down, and a node an admin
 * resumes after a health drain, are not burned in again by themselves:
 * `jz node check NAME` runs it by hand (manual: only that).
 *
 * A node cut off (docs/national.md, "A site cut off"):
 *
 *   lost_after 5m              # the default; 0: lost at node_timeout
 *
 * A node silent for the daemon's node_timeout is unreachable: down for
 * new jobs, its running jobs kept RUNNING (nothing of theirs starts
 * elsewhere). Still silent lost_after later, its jobs are lost (requeued,
 * or NODE_FAIL); its agent, hearing no leader for lost_after, has stopped
 * them by then. */
#ifndef JZ_POLICY_H
#define JZ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "polsite.h"

#define POL_NAME_MAX 63
#define POL_PATH_MAX 191 /* institute/project/user */
#define POL_LOST_AFTER_MS (5ll * 60 * 1000)
#define POL_LOST_AFTER_MAX_MS (30ll * 86400 * 1000)
#define POL_ACCOUNTS_MAX 10000
#define POL_QOS_MAX 64
#define POL_SHARES_MAX 1000000
#define POL_WEIGHT_MAX 1000000
#define POL_FILE_MAX (4u << 20)
#define POL_TENANTS_MAX 1000
#define POL_PARTITIONS_MAX 64

typedef struct pol_account {
    char path[POL_PATH_MAX + 1];
    uint32_t shares;
    char *users;        /* users=a,b: who may charge it (and its projects); NULL: not said */
    char *coordinators; /* coordinators=a,b: who manage its jobs (and its projects'); NULL: none */
} pol_account;

/* A startup renting compute: its accounts (and their projects) and the
 * people who administer them. */
typedef struct pol_tenant {
    char name[POL_NAME_MAX + 1];
    char *accounts; /* a,b/c */
    char *admins;   /* user names */
} pol_tenant;

typedef struct pol_qos {
    char name[POL_NAME_MAX + 1];
    uint32_t priority;
    uint64_t preempts;      /* bit i: may preempt jobs of qos[i] */
    uint32_t grace_s;       /* a job it preempts gets this long after its warning */
    uint32_t max_gpus_user; /* GPUs one user's running jobs of this QoS may hold; 0: no bound */
    bool preemptible;       /* may run on idle reserved GPUs */
    char *accounts;         /* accounts=a,b/c: whose jobs may ask for it; NULL: anyone's */
} pol_qos;

typedef struct pol_partition {
    char name[POL_NAME_MAX + 1];
    char **names; /* nodes=: exact names, sorted */
    size_t n_names;
    char **globs; /* nodes=: patterns with '*' or '?' */
    size_t n_globs;
    char *sites;             /* site=a,b; NULL: none */
    char *labels;            /* label=a,b: nodes with any of them; NULL: none */
    uint64_t default_time_s; /* 0: not said */
    uint64_t max_time_s;     /* 0: no bound (UNLIMITED, or not said) */
    char *accounts;          /* accounts=a,b/c: whose jobs may use it; NULL: anyone's */
    char *qos;               /* qos=a,b: the QoS its jobs may ask for; NULL: any */
    bool is_default;
} pol_partition;

#define POL_EVENTS_RETENTION_MS (30ll * 24 * 3600 * 1000)
/* What a health condition does (the `health` lines). */
#define POL_HEALTH_MAX 128
#define POL_HEALTH_NAME_MAX 31
typedef enum pol_health_action {
    POL_HEALTH_NONE,
    POL_HEALTH_WARN,
    POL_HEALTH_DRAIN_GPU,
    POL_HEALTH_DRAIN_NODE,
} pol_health_action;

typedef struct pol_hrule {
    char condition[POL_HEALTH_NAME_MAX + 1]; /* "ecc_dbe", "xid_79", "xid_*" */
    pol_health_action action;
    bool requeue;     /* jobs=requeue: the jobs on it are requeued now; else they finish */
    bool resume_auto; /* resume=auto: back in service when the condition clears */
    bool from_file;   /* a line of the file said so (else a default) */
} pol_hrule;

/* Accounting (daemon/raft/facct.h): what a GPU or CPU hour counts against
 * an allocation and costs, committed by the leader.
 *
 *   currency MAD 2             # its code, and digits after the point (2)
 *   rate H100 2                # an H100 hour counts 2 GPU-hours of a grant
 *   rate * 1                   # any other GPU model (the default: 1)
 *   rate cpu 0.0625            # a CPU-hour (the default: 0, CPUs are free)
 *   price H100 45.00           # per GPU-hour, in the currency
 *   price * 20
 *   price cpu 0.25             # per CPU-hour
 *   charge preempted=yes lost=no   # the defaults: a preempted run is
 *                              # charged for its time, a run lost with
 *                              # its node (or stopped by a drain) is not
 *   jobs_keep 1d               # ended jobs stay in the queue (then: jz history)
 *   history_retention 1830d    # the history keeps records this long
 *
 * A model is matched by its words in the GPU's name (the first line that
 * matches; "H100" matches "NVIDIA H100 80GB HBM3"). */
#define POL_RATES_MAX 64
#define POL_MODEL_MAX 63
typedef struct pol_rate {
    char model[POL_MODEL_MAX + 1]; /* "H100", "*", "cpu" */
    uint32_t charge_milli;         /* thousandths */
    uint64_t price_micro;          /* millionths of the currency's unit an hour */
    bool has_rate, has_price;
} pol_rate;

typedef struct pol {
    uint32_t w_age, w_fairshare, w_qos, w_size;
    int64_t max_age_ms, half_life_ms;
    int64_t events_retention_ms; /* jz events keeps this long */
    char default_account[POL_PATH_MAX + 1];
    pol_account *accounts;
    size_t n_accounts;
    pol_qos qos[POL_QOS_MAX]; /* qos[0] is "normal", always there */
    size_t n_qos;
    bool normal_set; /* "normal" was defined by a line (once only) */
    pol_tenant *tenants;
    size_t n_tenants;
    bool open; /* privacy open: anyone sees every job's brief record */
    pol_partition *partitions;
    size_t n_partitions;
    pol_hrule health[POL_HEALTH_MAX]; /* the file's health lines, in order */
    size_t n_health;
    bool burnin_on_join; /* `burnin on-join`: a GPU node that joins is drained until its burn-in passes */
    bool span_sites;     /* `span_sites yes`: any gang may span sites when no one site can hold it */
    int64_t lost_after_ms; /* an unreachable node's jobs are lost this long after it went down (0: at once) */
    char currency[9];    /* "": none named */
    uint32_t minor_digits;
    pol_rate rates[POL_RATES_MAX]; /* in the file's order */
    size_t n_rates;
    bool free_preempted, charge_lost;
    int64_t jobs_keep_ms, history_retention_ms; /* 0: the defaults */
    polsite sites; /* site, residency and dataset lines (polsite.h) */
} pol;

/* The defaults: weights age 1000, fairshare 10000, qos 2000, size 500,
 * max_age and half_life 7 days, account "default", qos "normal". */
void pol_init(pol *p);
/* Those defaults, read-only (for a caller without a policy file). */
const pol *pol_default(void);
void pol_free(pol *p);
/* Reads the policy text (name: the file, for messages) into p, which
 * pol_init set. Returns 0, or -1 with "FILE:LINE: what is wrong" in err
 * (p then holds what came before that line: pol_free it). */
int pol_parse(pol *p, const char *name, const char *text, size_t len, char *err, size_t errlen);

/* The QoS of that name (NULL or "": normal), or -1. */
int pol_qos_find(const pol *p, const char *name);
/* An account path's configured shares, 0 when not configured. */
uint32_t pol_shares(const pol *p, const char *path);
/* Whether an account is known: configured, or the default; with no
 * accounts configured at all, any valid name is. */
bool pol_account_known(const pol *p, const char *path);
/* Whether user may charge account ("inst" or "inst/project"): it or its
 * institute lists the user (users=, or a row account/user), or neither
 * says who may (an open account). Root may always. */
bool pol_account_allows(const pol *p, const char *account, const char *user, bool root);
/* Whether user is named as a member of account, or of its institute
 * (users=, or a row account/user): a teammate. An open account makes
 * nobody a member. */
bool pol_account_member(const pol *p, const char *account, const char *user);
/* Whether user coordinates account: coordinators= of it or its institute. */
bool pol_account_coordinator(const pol *p, const char *account, const char *user);
/* Whether user administers a tenant that holds account (or its institute). */
bool pol_tenant_admin(const pol *p, const char *account, const char *user);
/* Whether user administers any tenant. */
bool pol_is_tenant_admin(const pol *p, const char *user);
/* Whether a job of that account may ask for QoS q (its accounts=). */
bool pol_qos_allows(const pol *p, int q, const char *account, bool root);
/* The partition of that name, or -1. */
int pol_partition_find(const pol *p, const char *name);
/* The default partition (default=yes), or -1. */
int pol_partition_default(const pol *p);
/* Whether node (its name, site and comma list of labels; NULL: none) is
 * in partition pt. */
bool pol_partition_has_node(const pol_partition *pt, const char *node, const char *site, const char *labels);
/* Whether a job of that account may use pt (its accounts=). */
bool pol_partition_allows_account(const pol_partition *pt, const char *account, bool root);
/* Whether a job of that QoS (NULL or "": normal) may use pt (its qos=). */
bool pol_partition_allows_qos(const pol_partition *pt, const char *qos);
/* A Slurm time ("90", "1:30:00", "2-00:00:00", "UNLIMITED") or a duration
 * (90m, 12h, 7d) in seconds: 0 for UNLIMITED. Returns 0, or -1. */
int pol_time_parse(const char *s, uint64_t *out_s);

/* What the health condition (a name of lib/hw/health.h, "xid_N" or
 * "health_program") does: the file's line for it, else the default for
 * it, else the file's xid_* line (for an XID), else the default (warn).
 * Never fails; an unknown name gets warn. */
pol_hrule pol_health_rule(const pol *p, const char *condition);
/* "none", "warn", "drain-gpu", "drain-node". */
const char *pol_health_action_name(pol_health_action a);

/* A decimal number with at most `places` digits after the point, scaled
 * by 10^places ("2.5", 3 -> 2500), at most max once scaled. 0 or -1. */
int pol_decimal(const char *s, unsigned places, uint64_t max, uint64_t *out);

/* "a", "a/b": 1-2 names of [A-Za-z0-9._-] joined by '/'. */
bool pol_account_valid(const char *path);

#endif

/* views.h - the JSON shapes of the network's objects, shared by jz's
 * --json outputs (client/) and the daemon's /api pages (daemon/web.c), so
 * that both always use the same keys: a node, a node in the list with its
 * hardware and use, a job, an event. From the protocol's messages; pure. */
#ifndef JZ_VIEWS_H
#define JZ_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jazari.pb-c.h"
#include "json.h"

/* ISO 8601 in UTC ("2026-12-05T15:04:05Z") into s, or NULL when ms is not
 * set (<= 0) or does not fit. */
const char *view_utc_time(int64_t ms, char *s, size_t len);

/* A job: "PENDING", "RUNNING", ... (JobState without its JOB_). */
const char *view_job_state(Jazari__JobState s);
/* Whether it has ended (a preempted job comes back: not ended). */
bool view_job_ended(const Jazari__Job *job);
/* Its id as Slurm shows it: "ARRAYID_INDEX" for an array's task. */
const char *view_job_id_str(const Jazari__Job *job, char *s, size_t len);
/* A job as jz show --json and each of jz queue --json's jobs. */
void view_job(json *j, const Jazari__Job *job);

/* An event as jz events --json shows each. */
void view_event(json *j, const Jazari__Event *ev);

/* What jz nodes adds to a node from its brief topology and the jobs. */
typedef struct view_node_hw {
    char model[128];    /* "A100-SXM4-80GB", "A100,V100" for a mix; "" none */
    uint32_t cpus;      /* logical CPUs; 0 unknown */
    uint64_t mem;       /* bytes; 0 unknown */
    uint32_t cpus_used; /* by the running jobs the caller sees */
} view_node_hw;
/* h from n's brief topology (cpus_used 0). */
void view_node_hw_of(const Jazari__NodeInfo *n, view_node_hw *h);
/* Adds a running job's CPUs to the nodes it runs on (hw parallel to nodes). */
void view_node_use_job(Jazari__NodeInfo *const *nodes, size_t n, view_node_hw *hw, const Jazari__Job *job);
/* "idle", "mixed" or "allocated". */
const char *view_node_alloc_state(const Jazari__NodeInfo *n, const view_node_hw *h);
/* A node's keys, inside an object the caller opened (jz node --json adds
 * its topology). */
void view_node_fields(json *j, const Jazari__NodeInfo *n);
/* A node as one object (jz drain's and jz resume's --json). */
void view_node(json *j, const Jazari__NodeInfo *n);
/* A node as each of jz nodes --json's: its keys, its hardware and use. */
void view_nodes_entry(json *j, const Jazari__NodeInfo *n, const view_node_hw *h);

/* The network as jz status --json shows it. */
void view_status(json *j, const Jazari__StatusReply *r);
/* Its keys, inside an object the caller opened. */
void view_status_fields(json *j, const Jazari__StatusReply *r);

#endif

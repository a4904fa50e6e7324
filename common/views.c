/* views.c - the JSON shapes of nodes, jobs and events (views.h). */
#include "views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ISO 8601 in UTC, or NULL when the time is not set. */
const char *view_utc_time(int64_t ms, char *s, size_t len)
{
    if (ms <= 0)
        return NULL;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(s, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return NULL;
    return s;
}

static void view__time(json *j, const char *key, int64_t ms)
{
    char s[32];
    json_kv_str(j, key, view_utc_time(ms, s, sizeof s));
}

const char *view_job_state(Jazari__JobState s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&jazari__job_state__descriptor, (int)s);
    return v ? v->name + 4 : "UNKNOWN"; /* "JOB_PENDING" -> "PENDING" */
}

bool view_job_ended(const Jazari__Job *job)
{
    /* A preempted job comes back: it has not ended. */
    return job->state != JAZARI__JOB_STATE__JOB_PENDING && job->state != JAZARI__JOB_STATE__JOB_RUNNING &&
           job->state != JAZARI__JOB_STATE__JOB_PREEMPTED;
}

/* A job's id as Slurm shows it: "ARRAYID_INDEX" for an array's task. */
const char *view_job_id_str(const Jazari__Job *job, char *s, size_t len)
{
    if (job->array_job_id && job->spec)
        snprintf(s, len, "%llu_%u", (unsigned long long)job->array_job_id, job->spec->array_index);
    else
        snprintf(s, len, "%llu", (unsigned long long)job->id);
    return s;
}

/* The steps of the job's run (to those who may act on it). */
static void view__steps(json *j, const Jazari__Job *job)
{
    json_key(j, "steps");
    json_arr_begin(j);
    for (size_t i = 0; i < job->n_steps; i++) {
        const Jazari__JobStep *st = job->steps[i];
        json_obj_begin(j);
        json_kv_uint(j, "id", st->id);
        char sid[48];
        snprintf(sid, sizeof sid, "%llu.%u", (unsigned long long)job->id, st->id);
        json_kv_str(j, "step_id", sid);
        json_kv_str(j, "name", st->spec && st->spec->name && *st->spec->name ? st->spec->name : NULL);
        json_kv_str(j, "state", view_job_state(st->state));
        json_key(j, "exit_code");
        if (st->state == JAZARI__JOB_STATE__JOB_RUNNING)
            json_null(j);
        else
            json_int(j, st->exit_code);
        json_kv_str(j, "reason", st->reason && *st->reason ? st->reason : NULL);
        json_kv_uint(j, "ntasks", st->spec ? st->spec->ntasks : 0);
        json_key(j, "nodes");
        json_arr_begin(j);
        for (size_t r = 0; r < st->n_ranks; r++)
            json_str(j, st->ranks[r] < job->n_allocs ? job->allocs[st->ranks[r]]->node : "?");
        json_arr_end(j);
        json_key(j, "command");
        json_arr_begin(j);
        for (size_t a = 0; st->spec && a < st->spec->n_argv; a++)
            json_str(j, st->spec->argv[a]);
        json_arr_end(j);
        view__time(j, "start_time", st->start_time_ms);
        view__time(j, "end_time", st->end_time_ms);
        json_obj_end(j);
    }
    json_arr_end(j);
}

void view_job(json *j, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    json_obj_begin(j);
    json_kv_uint(j, "id", job->id);
    char id[48];
    json_kv_str(j, "job_id", view_job_id_str(job, id, sizeof id)); /* "ARRAYID_INDEX" for an array's task */
    json_kv_str(j, "name", s && s->name && *s->name ? s->name : NULL);
    json_kv_str(j, "user", job->user);
    json_kv_str(j, "state", view_job_state(job->state));
    json_kv_str(j, "reason", job->reason && *job->reason ? job->reason : NULL);
    json_key(j, "nodes");
    json_arr_begin(j);
    for (size_t i = 0; i < job->n_allocs; i++) {
        const Jazari__JobAlloc *a = job->allocs[i];
        json_obj_begin(j);
        json_kv_str(j, "name", a->node);
        json_key(j, "gpus");
        json_arr_begin(j);
        for (size_t g = 0; g < a->n_gpus; g++)
            json_uint(j, a->gpus[g]);
        json_arr_end(j);
        json_kv_str(j, "cpus", a->cpus);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "exit_code");
    if (view_job_ended(job) && job->state != JAZARI__JOB_STATE__JOB_CANCELLED)
        json_int(j, job->exit_code);
    else
        json_null(j);
    view__time(j, "submit_time", job->submit_time_ms);
    view__time(j, "start_time", job->start_time_ms);
    view__time(j, "end_time", job->end_time_ms);
    json_kv_uint(j, "attempt", job->attempt);
    json_key(j, "array_job_id");
    if (job->array_job_id)
        json_uint(j, job->array_job_id);
    else
        json_null(j);
    json_key(j, "array_task_id");
    if (job->array_job_id && s)
        json_uint(j, s->array_index);
    else
        json_null(j);
    json_key(j, "priority"); /* the leader's, under multifactor */
    if (job->state == JAZARI__JOB_STATE__JOB_PENDING && job->priority)
        json_uint(j, job->priority);
    else
        json_null(j);
    json_kv_uint(j, "preemptions", job->preemptions);
    /* What its runs used so far (format 9): null before any run ended. */
    json_key(j, "usage");
    if (job->usage) {
        const Jazari__JobUsage *u = job->usage;
        json_obj_begin(j);
        json_kv_fixed(j, "cpu_seconds", u->cpu_ms, 3);
        json_kv_uint(j, "max_rss_bytes", u->max_rss_bytes);
        json_kv_fixed(j, "gpu_seconds", u->gpu_ms, 3);
        json_kv_fixed(j, "energy_j", u->energy_mj, 3);
        json_key(j, "gpu_util_pct");
        if (u->util_gpu_ms)
            json_fixed(j, (u->gpu_util_ms * 1000 + u->util_gpu_ms / 2) / u->util_gpu_ms,
                       1); /* tenths of a percent, rounded */
        else
            json_null(j);
        json_kv_fixed(j, "charged_gpu_hours", u->charge_ms / 3600, 3);
        json_kv_uint(j, "runs", u->runs);
        json_obj_end(j);
    } else {
        json_null(j);
    }
    /* Pending: when the scheduler's plan expects it to start (null: not known). */
    view__time(j, "est_start_time",
               job->state == JAZARI__JOB_STATE__JOB_PENDING ? job->est_start_time_ms : 0);
    json_key(j, "master_port");
    if ((job->state == JAZARI__JOB_STATE__JOB_RUNNING || job->state == JAZARI__JOB_STATE__JOB_PREEMPTED) &&
        job->master_port)
        json_uint(j, job->master_port);
    else
        json_null(j);
    if (s) {
        json_kv_uint(j, "nodes_requested", s->nodes ? s->nodes : 1);
        json_kv_uint(j, "gpus_per_node", s->gpus_per_node);
        json_kv_uint(j, "tasks_per_node", s->tasks_per_node ? s->tasks_per_node : 1);
        json_kv_uint(j, "cpus_per_task", s->cpus_per_task ? s->cpus_per_task : 1);
        json_key(j, "mem");
        if (s->mem_bytes)
            json_uint(j, s->mem_bytes);
        else
            json_null(j);
        json_kv_bool(j, "requeue", !s->no_requeue);
        json_kv_str(j, "account", s->account && *s->account ? s->account : NULL);
        json_kv_str(j, "qos", s->qos && *s->qos ? s->qos : "normal");
        json_kv_str(j, "reservation", s->reservation && *s->reservation ? s->reservation : NULL);
        json_kv_str(j, "constraint", s->constraint && *s->constraint ? s->constraint : NULL);
        json_key(j, "gpu_mem");
        if (s->min_gpu_mem)
            json_uint(j, s->min_gpu_mem);
        else
            json_null(j);
        json_key(j, "after_ok");
        json_arr_begin(j);
        for (size_t i = 0; i < s->n_after_ok; i++)
            json_uint(j, s->after_ok[i]);
        json_arr_end(j);
        json_key(j, "after_any");
        json_arr_begin(j);
        for (size_t i = 0; i < s->n_after_any; i++)
            json_uint(j, s->after_any[i]);
        json_arr_end(j);
        json_key(j, "time_limit");
        if (s->time_limit_s)
            json_uint(j, s->time_limit_s);
        else
            json_null(j);
        json_key(j, "command");
        json_arr_begin(j);
        for (size_t i = 0; i < s->n_argv; i++)
            json_str(j, s->argv[i]);
        json_arr_end(j);
        json_kv_str(j, "workdir", s->workdir && *s->workdir ? s->workdir : NULL);
    }
    view__steps(j, job);
    json_obj_end(j);
}

void view_event(json *j, const Jazari__Event *ev)
{
    char when[40];
    json_obj_begin(j);
    json_kv_uint(j, "seq", ev->seq);
    json_kv_str(j, "time", view_utc_time(ev->time_ms, when, sizeof when));
    json_kv_int(j, "time_ms", ev->time_ms);
    json_kv_str(j, "kind", ev->kind);
    json_kv_str(j, "severity", ev->severity);
    json_kv_str(j, "node", ev->node[0] ? ev->node : NULL);
    json_key(j, "gpu");
    if (ev->gpu >= 0)
        json_uint(j, (uint64_t)ev->gpu);
    else
        json_null(j);
    json_key(j, "job");
    if (ev->job)
        json_uint(j, ev->job);
    else
        json_null(j);
    json_kv_str(j, "text", ev->text);
    json_kv_str(j, "by", ev->by[0] ? ev->by : NULL);
    json_obj_end(j);
}

void view_node_fields(json *j, const Jazari__NodeInfo *n)
{
    char when[40];
    json_kv_str(j, "name", n->name);
    json_kv_str(j, "site", n->site);
    json_kv_str(j, "state", n->state);
    json_kv_str(j, "reason", n->reason && *n->reason ? n->reason : NULL);
    json_kv_str(j, "reason_by", n->by && *n->by ? n->by : NULL);
    json_kv_str(j, "since", view_utc_time(n->since_ms, when, sizeof when));
    json_kv_uint(j, "gpus_total", n->gpus_total);
    json_kv_uint(j, "gpus_free", n->gpus_free);
    json_kv_uint(j, "gpus_drained", n->gpus_drained);
    json_key(j, "gpu_drains");
    json_arr_begin(j);
    for (size_t i = 0; i < n->n_gpu_drains; i++) {
        const Jazari__GpuDrain *g = n->gpu_drains[i];
        if (g->gpu < 0)
            continue;
        json_obj_begin(j);
        json_kv_uint(j, "gpu", (uint64_t)g->gpu);
        json_kv_str(j, "state", g->state);
        json_kv_str(j, "reason", g->reason);
        json_kv_str(j, "by", g->by);
        json_kv_str(j, "source", g->source);
        json_kv_str(j, "since", view_utc_time(g->since_ms, when, sizeof when));
        json_obj_end(j);
    }
    json_arr_end(j);
    json_kv_str(j, "group", n->group && *n->group ? n->group : NULL);
    json_key(j, "labels");
    json_arr_begin(j);
    for (const char *p = n->labels; p && *p;) {
        size_t len = strcspn(p, ",");
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
        json_str(j, one);
        p += len + (p[len] == ',');
    }
    json_arr_end(j);
}

void view_node(json *j, const Jazari__NodeInfo *n)
{
    json_obj_begin(j);
    view_node_fields(j, n);
    json_obj_end(j);
}

void view_node_hw_of(const Jazari__NodeInfo *n, view_node_hw *h)
{
    memset(h, 0, sizeof *h);
    const Jazari__Topology *t = n->topology;
    if (!t)
        return;
    h->cpus = t->pus;
    for (size_t k = 0; k < t->n_numa_nodes; k++)
        h->mem += t->numa_nodes[k]->memory_bytes;
    size_t at = 0;
    for (size_t g = 0; g < t->n_gpus; g++) {
        const char *m = t->gpus[g]->model;
        if (!m || !*m)
            continue;
        bool seen = false;
        for (size_t e = 0; e < g && !seen; e++)
            seen = t->gpus[e]->model && strcmp(t->gpus[e]->model, m) == 0;
        if (!seen && at + strlen(m) + 2 < sizeof h->model)
            at += (size_t)snprintf(h->model + at, sizeof h->model - at, "%s%s", at ? "," : "", m);
    }
}

/* Logical CPUs in a list "0-3,8,10-11". */
static uint32_t view__count_cpus(const char *s)
{
    uint32_t n = 0;
    while (s && *s) {
        char *end;
        unsigned long a = strtoul(s, &end, 10), b = a;
        if (end == s)
            break;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtoul(q, &end, 10);
            if (end == q || b < a)
                break;
        }
        n += (uint32_t)(b - a + 1);
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            break;
    }
    return n;
}

void view_node_use_job(Jazari__NodeInfo *const *nodes, size_t n, view_node_hw *hw, const Jazari__Job *job)
{
    if (job->state != JAZARI__JOB_STATE__JOB_RUNNING && job->state != JAZARI__JOB_STATE__JOB_PREEMPTED)
        return;
    const Jazari__JobSpec *s = job->spec;
    uint32_t per_node =
        (s && s->tasks_per_node ? s->tasks_per_node : 1) * (s && s->cpus_per_task ? s->cpus_per_task : 1);
    for (size_t a = 0; a < job->n_allocs; a++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(nodes[i]->name, job->allocs[a]->node) == 0) {
                const char *cpus = job->allocs[a]->cpus;
                hw[i].cpus_used += cpus && *cpus ? view__count_cpus(cpus) : per_node;
                break;
            }
}

/* idle, mixed or allocated: from free and total GPUs, and the CPUs of the
 * running jobs the caller sees. */
const char *view_node_alloc_state(const Jazari__NodeInfo *n, const view_node_hw *h)
{
    bool gpus_full = n->gpus_total && n->gpus_free == 0;
    bool cpus_full = h->cpus && h->cpus_used >= h->cpus;
    if (gpus_full || cpus_full)
        return "allocated";
    if (n->gpus_free < n->gpus_total || h->cpus_used)
        return "mixed";
    return "idle";
}

void view_nodes_entry(json *j, const Jazari__NodeInfo *n, const view_node_hw *h)
{
    json_obj_begin(j);
    view_node_fields(j, n);
    json_kv_str(j, "gpu_model", h->model[0] ? h->model : NULL);
    json_key(j, "cpus_total");
    if (h->cpus)
        json_uint(j, h->cpus);
    else
        json_null(j);
    json_key(j, "mem_bytes");
    if (h->mem)
        json_uint(j, h->mem);
    else
        json_null(j);
    json_kv_str(j, "alloc_state", view_node_alloc_state(n, h));
    json_obj_end(j);
}

void view_status(json *j, const Jazari__StatusReply *r)
{
    json_obj_begin(j);
    view_status_fields(j, r);
    json_obj_end(j);
}

void view_status_fields(json *j, const Jazari__StatusReply *r)
{
    json_kv_str(j, "leader", r->leader && *r->leader ? r->leader : NULL);
    json_kv_uint(j, "term", r->term);
    json_kv_uint(j, "commit_index", r->commit_index);
    json_kv_uint(j, "election_timeout_ms", r->election_timeout_ms);
    json_kv_uint(j, "peer_rtt_ms", r->peer_rtt_ms);
    json_kv_uint(j, "log_format", r->log_format);
    json_kv_uint(j, "log_format_newest", r->log_format_newest);
    json_key(j, "controllers");
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_controllers; i++) {
        json_obj_begin(j);
        json_kv_str(j, "name", r->controllers[i]->name);
        json_kv_str(j, "address", r->controllers[i]->address);
        json_kv_str(j, "role", r->controllers[i]->role);
        const char *v = r->controllers[i]->software_version;
        json_kv_str(j, "software_version", v && *v ? v : NULL);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_kv_uint(j, "nodes_up", r->nodes_up);
    json_kv_uint(j, "nodes_total", r->nodes_total);
    json_kv_uint(j, "jobs_active", r->jobs_active);
    json_kv_str(j, "problem", r->problem && *r->problem ? r->problem : NULL);
}

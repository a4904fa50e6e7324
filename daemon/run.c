/* run.c - jobs from queue to process: the leader places pending jobs
 * (sched/) and commits StartCmds; every node starts the parts placed on it
 * (node/exec.c) and reports how they ended; the leader commits EndCmds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "sched/sched.h"

#define RUN_MAX_STARTS_PER_PASS 256

static bool run__is_leader(jzd *d)
{
    return d->ctl_running && ctl_is_leader(&d->ctl);
}

/* --- the leader: placing ---------------------------------------------------------- */

static void run__on_started(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    d->starts_in_flight--;
    if (o->code != JAZARI__ERROR_CODE__OK)
        log_warn("run", "a start was not committed: %s", o->message);
    if (d->starts_in_flight == 0) {
        run_sync_local(d);
        if (d->schedule_again)
            run_schedule(d);
    }
}

void run_schedule(jzd *d)
{
    if (d->stopping || !run__is_leader(d))
        return;
    if (d->starts_in_flight > 0) {
        d->schedule_again = true; /* after the starts in flight are applied */
        return;
    }
    d->schedule_again = false;
    const fsm *f = &d->ctl.state;
    sched_plan plan;
    sched_pass(f, RUN_MAX_STARTS_PER_PASS, &plan);
    for (size_t i = 0; i < plan.n_starts; i++) {
        const sched_start *s = &plan.starts[i];
        Jazari__JobAlloc *allocs = xcalloc(s->n_parts, sizeof *allocs);
        Jazari__JobAlloc **ptrs = xcalloc(s->n_parts, sizeof(Jazari__JobAlloc *));
        for (size_t p = 0; p < s->n_parts; p++) {
            jazari__job_alloc__init(&allocs[p]);
            allocs[p].node = f->nodes[s->parts[p].node].name;
            allocs[p].gpus = s->parts[p].gpus;
            allocs[p].n_gpus = s->parts[p].n_gpus;
            allocs[p].cpus = "";
            ptrs[p] = &allocs[p];
        }
        Jazari__StartCmd sc = JAZARI__START_CMD__INIT;
        sc.id = s->id;
        sc.allocs = ptrs;
        sc.n_allocs = s->n_parts;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_START;
        cmd.start = &sc;
        d->starts_in_flight++;
        ctl_propose(&d->ctl, &cmd, run__on_started, d);
        free(allocs);
        free(ptrs);
    }
    /* A full pass may have left ready jobs: go on once these are applied. */
    if (plan.n_starts == RUN_MAX_STARTS_PER_PASS)
        d->schedule_again = true;
    sched_plan_free(&plan);
}

/* --- every node: running the parts placed here -------------------------------------- */

static jzd_ended *run__ended(jzd *d, uint64_t id)
{
    for (size_t i = 0; i < d->n_ended; i++)
        if (d->ended[i].id == id)
            return &d->ended[i];
    return NULL;
}

static void run__report(jzd *d, jzd_ended *e);

static void run__record_end(jzd *d, uint64_t id, int exit_code, bool failed, bool lost, const char *reason)
{
    if (d->n_ended == d->ended_cap) {
        d->ended_cap = d->ended_cap ? d->ended_cap * 2 : 16;
        jzd_ended *p = realloc(d->ended, d->ended_cap * sizeof *p);
        if (!p)
            abort();
        d->ended = p;
    }
    jzd_ended *e = &d->ended[d->n_ended++];
    memset(e, 0, sizeof *e);
    e->id = id;
    e->exit_code = exit_code;
    e->failed_to_start = failed;
    e->lost = lost;
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
    if (!d->stopping)
        run__report(d, e);
}

static void run__on_part_done(void *arg, uint64_t id, int exit_code, bool failed, const char *reason)
{
    run__record_end(arg, id, exit_code, failed, false, reason);
}

static void run__start_part(jzd *d, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    const Jazari__JobAlloc *mine = NULL;
    uint32_t rank = 0;
    buf nodelist = BUF_INIT;
    for (size_t i = 0; i < job->n_allocs; i++) {
        buf_printf(&nodelist, "%s%s", i ? "," : "", job->allocs[i]->node);
        if (strcmp(job->allocs[i]->node, d->cfg->name) == 0) {
            mine = job->allocs[i];
            rank = (uint32_t)i;
        }
    }
    if (!mine || !s) {
        buf_free(&nodelist);
        return;
    }
    char spool[CONFIG_PATH_MAX + 8];
    snprintf(spool, sizeof spool, "%s/jobs", d->cfg->state_dir);
    if (exec_lost(spool, job->id)) {
        /* Runs exactly once: what a crashed daemon started is not run again. */
        buf_free(&nodelist);
        run__record_end(d, job->id, 128 + 9, true, true, "this node's daemon restarted while the job ran");
        return;
    }
    exec_spec es = {
        .id = job->id,
        .name = s->name,
        .argv = s->argv,
        .argc = s->n_argv,
        .script = s->script,
        .workdir = s->workdir,
        .output = s->output,
        .error = s->error,
        .env = s->env,
        .n_env = s->n_env,
        .uid = (uid_t)job->uid,
        .gid = (gid_t)job->gid,
        .gpus = mine->gpus,
        .n_gpus = (uint32_t)mine->n_gpus,
        .nodelist = buf_str(&nodelist),
        .nnodes = (uint32_t)job->n_allocs,
        .node_rank = rank,
        .spool = spool,
    };
    exec_start(&d->ex, &es, run__on_part_done, d);
    buf_free(&nodelist);
}

void run_sync(jzd *d, Jazari__Job *const *jobs, size_t n)
{
    if (d->stopping)
        return;
    for (size_t i = 0; i < n; i++)
        if (!exec_has(&d->ex, jobs[i]->id) && !run__ended(d, jobs[i]->id))
            run__start_part(d, jobs[i]);
    /* A part that runs here but whose job no longer runs (cancelled, or
     * ended elsewhere) is killed: it must not hold the node's GPUs. */
    uint64_t here[256];
    size_t nhere = exec_ids(&d->ex, here, 256);
    for (size_t i = 0; i < nhere; i++) {
        bool still = false;
        for (size_t j = 0; j < n && !still; j++)
            still = jobs[j]->id == here[i];
        if (!still)
            exec_kill(&d->ex, here[i], "the job no longer runs");
    }
    /* An ended part whose job is no longer running here: its end is in
     * the state, forget it. */
    size_t k = 0;
    for (size_t i = 0; i < d->n_ended; i++) {
        bool still = false;
        for (size_t j = 0; j < n && !still; j++)
            still = jobs[j]->id == d->ended[i].id;
        if (still || !d->ended[i].reported)
            d->ended[k++] = d->ended[i];
    }
    d->n_ended = k;
}

Jazari__Job **run_jobs_on(jzd *d, const char *node, size_t *n)
{
    const fsm *f = &d->ctl.state;
    size_t cap = 0;
    Jazari__Job **out = NULL;
    *n = 0;
    /* A scan of the table, unless nothing runs. (The scheduler milestone
     * keeps the running jobs in a list of their own.) */
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        bool here = false;
        for (uint32_t a = 0; a < j->n_allocs && !here; a++)
            here = j->allocs[a].node && strcmp(j->allocs[a].node, node) == 0;
        if (!here)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            Jazari__Job **p = realloc(out, cap * sizeof(Jazari__Job *));
            if (!p)
                abort();
            out = p;
        }
        /* Each job with its own copies of the allocation messages. */
        Jazari__Job *m = xcalloc(1, sizeof *m);
        Jazari__JobAlloc *allocs = xcalloc(j->n_allocs, sizeof *allocs);
        Jazari__JobAlloc **ptrs = xcalloc(j->n_allocs, sizeof(Jazari__JobAlloc *));
        fsm_job_to_pb(j, m, allocs, ptrs);
        out[(*n)++] = m;
    }
    return out;
}

void run_jobs_free(Jazari__Job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jazari__job_spec__free_unpacked(jobs[i]->spec, NULL);
        free(jobs[i]->n_allocs ? jobs[i]->allocs[0] : NULL);
        free(jobs[i]->allocs);
        free(jobs[i]);
    }
    free(jobs);
}

void run_sync_local(jzd *d)
{
    if (!run__is_leader(d))
        return;
    size_t n;
    Jazari__Job **jobs = run_jobs_on(d, d->cfg->name, &n);
    run_sync(d, jobs, n);
    run_jobs_free(jobs, n);
}

/* --- ends: reported by the node, committed by the leader --------------------------------- */

static void run__end_cmd(const jzd_ended *e, Jazari__EndCmd *ec)
{
    jazari__end_cmd__init(ec);
    ec->id = e->id;
    ec->exit_code = e->exit_code;
    ec->state = e->exit_code == 0 && !e->failed_to_start ? JAZARI__JOB_STATE__JOB_COMPLETED
                : e->lost                                ? JAZARI__JOB_STATE__JOB_NODE_FAIL
                                                         : JAZARI__JOB_STATE__JOB_FAILED;
    ec->reason = (char *)(e->reason[0] ? e->reason : "");
}

typedef struct run__end_wait {
    jzd *d;
    uint64_t id;
    jzd_wait *w; /* an agent's request, or NULL for this node's own part */
} run__end_wait;

static void run__on_end_committed(void *arg, const ctl_outcome *o)
{
    run__end_wait *ew = arg;
    jzd *d = ew->d;
    if (ew->w) {
        net_conn *c = api_unwait(ew->w);
        if (c && o->code != JAZARI__ERROR_CODE__OK) {
            jzd_reply_error(c, ew->w->request_id, o->code, false, "%s", o->message);
        } else if (c) {
            wire_reply r;
            Jazari__JobEndReply jr = JAZARI__JOB_END_REPLY__INIT;
            wire_reply_init(&r, ew->w->request_id, JAZARI__ERROR_CODE__OK, NULL);
            r.env.body_case = JAZARI__ENVELOPE__BODY_JOB_END_REPLY;
            r.env.job_end_reply = &jr;
            net_conn_send(c, &r.env);
        }
        free(ew->w);
    } else {
        jzd_ended *e = run__ended(d, ew->id);
        if (e) {
            e->in_flight = false;
            e->reported = o->code == JAZARI__ERROR_CODE__OK;
        }
    }
    free(ew);
    if (o->code == JAZARI__ERROR_CODE__OK)
        run_schedule(d);
}

static void run__propose_end(jzd *d, const jzd_ended *e, jzd_wait *w)
{
    Jazari__EndCmd ec;
    run__end_cmd(e, &ec);
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_END;
    cmd.end = &ec;
    run__end_wait *ew = xcalloc(1, sizeof *ew);
    ew->d = d;
    ew->id = e->id;
    ew->w = w;
    ctl_propose(&d->ctl, &cmd, run__on_end_committed, ew);
}

void run_job_end(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__JobEndRequest *r = e->job_end_request;
    jzd_ended tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.id = r->id;
    tmp.exit_code = r->exit_code;
    tmp.failed_to_start = r->failed_to_start;
    tmp.lost = r->lost;
    snprintf(tmp.reason, sizeof tmp.reason, "%s%s%s", r->node && *r->node ? r->node : "",
             r->reason && *r->reason ? ": " : "", r->reason ? r->reason : "");
    if (!r->reason || !*r->reason)
        tmp.reason[0] = '\0';
    log_info("run", "job %llu ended on %s with %d%s%s", (unsigned long long)r->id, r->node, r->exit_code,
             tmp.reason[0] ? ": " : "", tmp.reason);
    run__propose_end(d, &tmp, api_wait(d, c, e));
}

/* Agents' reports are idempotent (the leader ends a running job once):
 * an unacknowledged one is simply sent again on the next tick. */
typedef struct run__report_arg {
    jzd *d;
    uint64_t id;
} run__report_arg;

static void run__on_report_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    run__report_arg *a = arg;
    jzd_ended *e = run__ended(a->d, a->id);
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (e) {
        e->in_flight = false;
        e->reported = r && r->body_case == JAZARI__ENVELOPE__BODY_JOB_END_REPLY;
    }
    if (!r)
        log_debug("run", "report of job %llu failed: %s", (unsigned long long)a->id, why);
    (void)sent;
    free(a);
    wire_msg_free(reply);
}

static void run__report(jzd *d, jzd_ended *e)
{
    if (e->reported || e->in_flight)
        return;
    e->in_flight = true;
    if (run__is_leader(d)) {
        run__propose_end(d, e, NULL);
        return;
    }
    Jazari__JobEndRequest r = JAZARI__JOB_END_REQUEST__INIT;
    r.id = e->id;
    r.node = (char *)d->cfg->name;
    r.exit_code = e->exit_code;
    r.failed_to_start = e->failed_to_start;
    r.lost = e->lost;
    r.reason = e->reason;
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_JOB_END_REQUEST;
    env.job_end_request = &r;
    run__report_arg *a = xcalloc(1, sizeof *a);
    a->d = d;
    a->id = e->id;
    uplink_request(&d->up, &env, run__on_report_reply, a);
}

void run_tick(jzd *d)
{
    for (size_t i = 0; i < d->n_ended; i++)
        run__report(d, &d->ended[i]);
    if (run__is_leader(d)) {
        run_sync_local(d);
        run_schedule(d);
    }
}

void run_free(jzd *d)
{
    free(d->ended);
    d->ended = NULL;
    d->n_ended = d->ended_cap = 0;
}

/* jobops.c - changing a job in place: jz update (a pending job's request,
 * checked as a submission is; a running job's time limit) and jz cancel
 * JOB.STEP (one step of a running job). The leader's; the state machine
 * applies them (UpdateCmd, StepCancelCmd: log format 7). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/jobspec.h"
#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "raft/fstep.h"

/* A request that waits for its entry, with what its reply will say. */
typedef struct jobops__wait {
    jzd_wait *w;
    char **changed;
    size_t n_changed;
} jobops__wait;

static void jobops__wait_free(jobops__wait *ow)
{
    for (size_t i = 0; i < ow->n_changed; i++)
        free(ow->changed[i]);
    free(ow->changed);
    free(ow);
}

static void jobops__on_committed(void *arg, const ctl_outcome *o)
{
    jobops__wait *ow = arg;
    jzd_wait *w = ow->w;
    jzd *d = w->d;
    net_conn *c = req_unwait(w);
    bool ok = o->code == JAZARI__ERROR_CODE__OK;
    bool changed = ok && o->res->counts[o->index] > 0;
    if (c && !ok) {
        req_error(c, w->request_id, o->code, false, "%s", o->message);
    } else if (c && !changed) {
        req_error(c, w->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "nothing changed: the job %s meanwhile (jz show tells its state now)",
                  w->kind == JAZARI__ENVELOPE__BODY_UPDATE_REQUEST ? "started, ended or was requeued"
                                                                   : "or its step ended");
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_UPDATE_REQUEST) {
        Jazari__UpdateReply r = JAZARI__UPDATE_REPLY__INIT;
        r.changed = ow->changed;
        r.n_changed = ow->n_changed;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_UPDATE_REPLY, &r, o->log_index);
    } else if (c) {
        Jazari__CancelReply r = JAZARI__CANCEL_REPLY__INIT;
        r.cancelled = o->res->counts[o->index];
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &r, o->log_index);
    }
    free(w);
    jobops__wait_free(ow);
    if (changed) {
        run_sync_local(d); /* a step stops, a limit changes, on this node too */
        run_schedule(d);   /* a pending job changed may start */
    }
}

static void jobops__propose(jzd *d, net_conn *c, const Jazari__Envelope *e, Jazari__Command *cmd,
                            jobops__wait *ow)
{
    ow->w = req_wait(d, c, e);
    ctl_propose(&d->ctl, cmd, jobops__on_committed, ow);
}

/* The job of id that w may act on; else c is answered and NULL. */
static const fsm_job *jobops__job(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w, uint64_t id)
{
    const fsm_job *j = fsm_job_get(&d->ctl.state, id);
    authz_level l = j ? authz_job(d->cfg->pol, w, j->user, j->cls->account) : AUTHZ_NONE;
    if (l == AUTHZ_NONE) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                  (unsigned long long)id);
        return NULL;
    }
    if (l != AUTHZ_FULL) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "job %llu belongs to %s, not to %s (coordinators and tenant admins may act on their accounts' "
                  "jobs)",
                  (unsigned long long)id, j->user, w->user);
        return NULL;
    }
    return j;
}

/* --- jz cancel JOB.STEP ------------------------------------------------------------------ */

void jobops_cancel(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__CancelRequest *r = e->cancel_request;
    if (!r->has_step) {
        jobs_cancel(d, c, e);
        return;
    }
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    if (r->n_ids != 1) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "cancel JOB.STEP: one job with its step, as 12.0");
        return;
    }
    const fsm_job *j = jobops__job(d, c, e, &w, r->ids[0]);
    if (!j)
        return;
    const Jazari__JobStep *st = fstep_find(j, r->step);
    if (j->state != JAZARI__JOB_STATE__JOB_RUNNING || !st) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "job %llu has no step %u%s (jz show %llu lists its steps)", (unsigned long long)j->id, r->step,
                  j->state == JAZARI__JOB_STATE__JOB_RUNNING ? "" : " running: the job is not running",
                  (unsigned long long)j->id);
        return;
    }
    if (st->state != JAZARI__JOB_STATE__JOB_RUNNING) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "step %llu.%u has ended already (%s)",
                  (unsigned long long)j->id, r->step, fsm_state_name(st->state));
        return;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "cancelled by %s", w.user);
    Jazari__StepCancelCmd sc = JAZARI__STEP_CANCEL_CMD__INIT;
    sc.id = j->id;
    sc.attempt = j->attempt;
    sc.step = r->step;
    sc.reason = reason;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_STEP_CANCEL;
    cmd.step_cancel = &sc;
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, &w, "cancel step %llu.%u", (unsigned long long)j->id, r->step);
    cmd.audit = &audit;
    jobops__propose(d, c, e, &cmd, xcalloc(1, sizeof(jobops__wait)));
}

/* --- jz update ----------------------------------------------------------------------------- */

/* The fields jz update may change, by the long option that names them. */
enum {
    JOBOPS_TIME,
    JOBOPS_NAME,
    JOBOPS_QOS,
    JOBOPS_ACCOUNT,
    JOBOPS_PARTITION,
    JOBOPS_NODES,
    JOBOPS_GPUS,
    JOBOPS_CPUS,
    JOBOPS_MEM,
    JOBOPS_DEPENDENCY,
    JOBOPS_CONSTRAINT,
    JOBOPS_N_FIELDS
};
static const char *const jobops__fields[JOBOPS_N_FIELDS] = {
    "time",          "job-name", "qos", "account",    "partition", "nodes", "gpus-per-node",
    "cpus-per-task", "mem",      "dependency", "constraint"};

static void jobops__note(jobops__wait *ow, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jobops__note(jobops__wait *ow, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **grown = realloc(ow->changed, (ow->n_changed + 1) * sizeof(char *));
    if (!grown)
        abort();
    ow->changed = grown;
    ow->changed[ow->n_changed++] = xstrdup(line);
}

static const char *jobops__str(const char *s)
{
    return s && *s ? s : "(none)";
}

static void jobops__time_text(uint64_t s, char *out, size_t len)
{
    if (!s)
        snprintf(out, len, "UNLIMITED");
    else
        snprintf(out, len, "%llu-%02llu:%02llu:%02llu", (unsigned long long)(s / 86400),
                 (unsigned long long)(s / 3600 % 24), (unsigned long long)(s / 60 % 60),
                 (unsigned long long)(s % 60));
}

static void jobops__deps_text(const Jazari__JobSpec *s, buf *b)
{
    const uint64_t *lists[4] = {s->after_ok, s->after_any, s->after_notok, s->after};
    const size_t ns[4] = {s->n_after_ok, s->n_after_any, s->n_after_notok, s->n_after};
    static const char *const kinds[4] = {"afterok", "afterany", "afternotok", "after"};
    for (int k = 0; k < 4; k++) {
        if (!ns[k])
            continue;
        buf_printf(b, "%s%s", b->len ? "," : "", kinds[k]);
        for (size_t i = 0; i < ns[k] && i < 16; i++)
            buf_printf(b, ":%llu", (unsigned long long)lists[k][i]);
    }
    if (s->singleton)
        buf_printf(b, "%ssingleton", b->len ? "," : "");
    if (!b->len)
        buf_puts(b, "(none)");
}

/* What changed between old and new, one line each, into ow. */
static void jobops__diff(const Jazari__JobSpec *o, const Jazari__JobSpec *n, jobops__wait *ow)
{
    char a[64], b[64];
    if (o->time_limit_s != n->time_limit_s) {
        jobops__time_text(o->time_limit_s, a, sizeof a);
        jobops__time_text(n->time_limit_s, b, sizeof b);
        jobops__note(ow, "TimeLimit %s -> %s", a, b);
    }
    if (strcmp(jobops__str(o->name), jobops__str(n->name)) != 0)
        jobops__note(ow, "JobName %.128s -> %.128s", jobops__str(o->name), jobops__str(n->name));
    if (strcmp(jobops__str(o->qos), jobops__str(n->qos)) != 0)
        jobops__note(ow, "QOS %.64s -> %.64s", jobops__str(o->qos), jobops__str(n->qos));
    if (strcmp(jobops__str(o->account), jobops__str(n->account)) != 0)
        jobops__note(ow, "Account %.100s -> %.100s", jobops__str(o->account), jobops__str(n->account));
    if (strcmp(jobops__str(o->partition), jobops__str(n->partition)) != 0)
        jobops__note(ow, "Partition %.200s -> %.200s", jobops__str(o->partition), jobops__str(n->partition));
    if ((o->nodes ? o->nodes : 1) != (n->nodes ? n->nodes : 1))
        jobops__note(ow, "NumNodes %u -> %u", o->nodes ? o->nodes : 1, n->nodes ? n->nodes : 1);
    if (o->gpus_per_node != n->gpus_per_node)
        jobops__note(ow, "GpusPerNode %u -> %u", o->gpus_per_node, n->gpus_per_node);
    if ((o->cpus_per_task ? o->cpus_per_task : 1) != (n->cpus_per_task ? n->cpus_per_task : 1))
        jobops__note(ow, "CpusPerTask %u -> %u", o->cpus_per_task ? o->cpus_per_task : 1,
                     n->cpus_per_task ? n->cpus_per_task : 1);
    if (o->mem_bytes != n->mem_bytes || o->mem_all != n->mem_all)
        jobops__note(ow, "MinMemoryNode %lluM -> %lluM%s", (unsigned long long)(o->mem_bytes >> 20),
                     (unsigned long long)(n->mem_bytes >> 20), n->mem_all ? " (all of each node)" : "");
    if (strcmp(jobops__str(o->constraint), jobops__str(n->constraint)) != 0)
        jobops__note(ow, "Features %.200s -> %.200s", jobops__str(o->constraint), jobops__str(n->constraint));
    buf da = BUF_INIT, db = BUF_INIT;
    jobops__deps_text(o, &da);
    jobops__deps_text(n, &db);
    if (strcmp(buf_str(&da), buf_str(&db)) != 0)
        jobops__note(ow, "Dependency %.200s -> %.200s", buf_str(&da), buf_str(&db));
    buf_free(&da);
    buf_free(&db);
}

/* A running job: only its time limit, shorter (an admin's: any). */
static void jobops__update_running(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w,
                                   const fsm_job *j, const bool *given)
{
    const Jazari__UpdateRequest *r = e->update_request;
    for (int k = 0; k < JOBOPS_N_FIELDS; k++) {
        if (given[k] && k != JOBOPS_TIME) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "job %llu is running: only its --time may change (--%s applies to a pending job; jz requeue "
                      "--hold, then update it)",
                      (unsigned long long)j->id, jobops__fields[k]);
            return;
        }
    }
    if (!given[JOBOPS_TIME]) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "update: nothing to change");
        return;
    }
    uint64_t want = r->spec->time_limit_s, have = j->time_limit_s;
    bool admin = authz_time_extend(w);
    if (want == 0 || want == JOB_TIME_UNLIMITED || want > FSM_TIME_MAX_S) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job %llu is running: its --time must be a limit of at most 365 days%s", (unsigned long long)j->id,
                  admin ? "" : ", shorter than its limit now");
        return;
    }
    if (!admin && (have == 0 || want > have)) {
        char a[64], b[64];
        jobops__time_text(have, a, sizeof a);
        jobops__time_text(want, b, sizeof b);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "job %llu is running with a limit of %s: you may shorten it, only an admin may lengthen it to %s",
                  (unsigned long long)j->id, a, b);
        return;
    }
    jobops__wait *ow = xcalloc(1, sizeof *ow);
    if (want == have) {
        Jazari__UpdateReply rep = JAZARI__UPDATE_REPLY__INIT;
        req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_UPDATE_REPLY, &rep);
        jobops__wait_free(ow);
        return;
    }
    char a[64], b[64];
    jobops__time_text(have, a, sizeof a);
    jobops__time_text(want, b, sizeof b);
    jobops__note(ow, "TimeLimit %s -> %s", a, b);
    Jazari__UpdateCmd uc = JAZARI__UPDATE_CMD__INIT;
    uc.id = j->id;
    uc.attempt = j->attempt;
    uc.time_limit_s = want;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_UPDATE;
    cmd.update = &uc;
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, w, "update running job %llu: time %s -> %s", (unsigned long long)j->id,
              a, b);
    cmd.audit = &audit;
    jobops__propose(d, c, e, &cmd, ow);
}

/* A pending job: the fields given replace its own, and the whole is
 * checked as a submission is; nothing changes unless all of it passes. */
static void jobops__update_pending(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w,
                                   const fsm_job *j, const bool *given)
{
    const Jazari__JobSpec *in = e->update_request->spec;
    Jazari__JobSpec *old = j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
    if (!old) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__INTERNAL, false, "job %llu: its request cannot be read",
                  (unsigned long long)j->id);
        return;
    }
    Jazari__JobSpec s = *old;
    if (given[JOBOPS_TIME])
        s.time_limit_s = in->time_limit_s;
    if (given[JOBOPS_NAME])
        s.name = in->name;
    if (given[JOBOPS_QOS])
        s.qos = in->qos;
    if (given[JOBOPS_ACCOUNT])
        s.account = in->account;
    if (given[JOBOPS_PARTITION])
        s.partition = in->partition;
    if (given[JOBOPS_NODES]) {
        s.nodes = in->nodes;
        s.nodes_max = in->nodes_max;
        s.ntasks = 0; /* its tasks follow its nodes */
    }
    if (given[JOBOPS_GPUS]) {
        s.gpus_per_node = in->gpus_per_node;
        s.gpus_per_task = 0;
        if (in->gpu_model && *in->gpu_model)
            s.gpu_model = in->gpu_model;
    }
    if (given[JOBOPS_CPUS]) {
        s.cpus_per_task = in->cpus_per_task;
        s.cpus_per_gpu = 0;
    }
    if (given[JOBOPS_MEM]) {
        s.mem_bytes = in->mem_bytes;
        s.mem_all = in->mem_all;
    }
    if (given[JOBOPS_CONSTRAINT])
        s.constraint = in->constraint;
    if (given[JOBOPS_DEPENDENCY]) {
        s.after_ok = in->after_ok, s.n_after_ok = in->n_after_ok;
        s.after_any = in->after_any, s.n_after_any = in->n_after_any;
        s.after_notok = in->after_notok, s.n_after_notok = in->n_after_notok;
        s.after = in->after, s.n_after = in->n_after;
        s.singleton = in->singleton;
        for (size_t i = 0; i < s.n_after_ok + s.n_after_any + s.n_after_notok + s.n_after; i++) {
            uint64_t dep = i < s.n_after_ok                                    ? s.after_ok[i]
                           : i < s.n_after_ok + s.n_after_any                  ? s.after_any[i - s.n_after_ok]
                           : i < s.n_after_ok + s.n_after_any + s.n_after_notok ? s.after_notok[i - s.n_after_ok - s.n_after_any]
                                                                                : s.after[i - s.n_after_ok - s.n_after_any - s.n_after_notok];
            if (dep == j->id) {
                req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                          "job %llu cannot depend on itself", (unsigned long long)j->id);
                jazari__job_spec__free_unpacked(old, NULL);
                return;
            }
        }
    }
    /* The account as the job has it (the default was filled in at submit). */
    if (given[JOBOPS_ACCOUNT] && (!s.account || !*s.account))
        s.account = d->cfg->pol->default_account;
    /* Held or not is the job's state, not its request. */
    s.hold = false;
    /* Checked for the job's owner, whoever asks: the account must take
     * them, the QoS their account, the reservation them. */
    authz_who owner = *w;
    snprintf(owner.user, sizeof owner.user, "%s", j->user ? j->user : "");
    owner.uid = (uid_t)j->uid;
    owner.gid = (gid_t)j->gid;
    owner.role = AUTHZ_RESEARCHER;
    owner.via_node = false;
    buf partitions = BUF_INIT;
    jobops__wait *ow = NULL;
    if (jobs_check_spec(d, c, e, &s, &owner, &partitions) != 0)
        goto done;
    ow = xcalloc(1, sizeof *ow);
    jobops__diff(old, &s, ow);
    if (ow->n_changed == 0) {
        Jazari__UpdateReply rep = JAZARI__UPDATE_REPLY__INIT;
        req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_UPDATE_REPLY, &rep);
        jobops__wait_free(ow);
        goto done;
    }
    Jazari__UpdateCmd uc = JAZARI__UPDATE_CMD__INIT;
    uc.id = j->id;
    uc.spec = &s;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_UPDATE;
    cmd.update = &uc;
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, w, "update job %llu: %.120s%s", (unsigned long long)j->id, ow->changed[0],
              ow->n_changed > 1 ? ", ..." : "");
    cmd.audit = &audit;
    jobops__propose(d, c, e, &cmd, ow);
done:
    buf_free(&partitions);
    jazari__job_spec__free_unpacked(old, NULL);
}

void jobops_update(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__UpdateRequest *r = e->update_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    bool given[JOBOPS_N_FIELDS] = {false};
    size_t n = 0;
    for (size_t i = 0; i < r->n_fields && i < 64; i++) {
        int k = 0;
        while (k < JOBOPS_N_FIELDS && strcmp(r->fields[i], jobops__fields[k]) != 0)
            k++;
        if (k == JOBOPS_N_FIELDS) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "update: '%.40s' cannot be changed: --time, --job-name, --qos, --account, --partition, "
                      "--nodes, --gpus-per-node, --cpus-per-task, --mem, --dependency, --constraint can",
                      r->fields[i]);
            return;
        }
        n += !given[k];
        given[k] = true;
    }
    if (n == 0 || r->n_fields > 64 || !r->spec) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "update: nothing to change (give --time, --qos, ...)");
        return;
    }
    const fsm_job *j = jobops__job(d, c, e, &w, r->id);
    if (!j)
        return;
    if (j->state == JAZARI__JOB_STATE__JOB_RUNNING)
        jobops__update_running(d, c, e, &w, j, given);
    else if (j->state == JAZARI__JOB_STATE__JOB_PENDING)
        jobops__update_pending(d, c, e, &w, j, given);
    else
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job %llu has ended (%s): only a pending or running job can be updated (jz requeue runs it "
                  "again)",
                  (unsigned long long)j->id, fsm_state_name(j->state));
}

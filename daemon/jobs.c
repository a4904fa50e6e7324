/* jobs.c - the requests about jobs: submit, cancel and release (the
 * leader's), queue and show (any controller's copy of the state). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/jobspec.h"
#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"

/* A request's entry was applied (or could not be): answers it, and
 * starts what may start now. */
void jobs_on_committed(void *arg, const ctl_outcome *o)
{
    jzd_wait *w = arg;
    jzd *d = w->d;
    net_conn *c = req_unwait(w);
    bool ok = o->code == JAZARI__ERROR_CODE__OK;
    if (c && !ok) {
        req_error(c, w->request_id, o->code, false, "%s", o->message);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST) {
        Jazari__SubmitReply r = JAZARI__SUBMIT_REPLY__INIT;
        r.id = o->first_id;
        r.count = o->res->counts[o->index];
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_SUBMIT_REPLY, &r, o->log_index);
    } else if (c && (w->kind == JAZARI__ENVELOPE__BODY_CANCEL_REQUEST ||
                     w->kind == JAZARI__ENVELOPE__BODY_RELEASE_REQUEST ||
                     w->kind == JAZARI__ENVELOPE__BODY_HOLD_REQUEST ||
                     w->kind == JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST)) {
        Jazari__CancelReply r = JAZARI__CANCEL_REPLY__INIT;
        r.cancelled = o->res->counts[o->index];
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &r, o->log_index);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_REGISTER_REQUEST) {
        Jazari__RegisterReply r = JAZARI__REGISTER_REPLY__INIT;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_REGISTER_REPLY, &r, o->log_index);
    }
    /* A requeued run stops here as a cancelled one does. */
    bool cancelled = ok && (w->kind == JAZARI__ENVELOPE__BODY_CANCEL_REQUEST ||
                            w->kind == JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST);
    bool may_start = ok && w->kind != JAZARI__ENVELOPE__BODY_CANCEL_REQUEST;
    free(w);
    /* A cancelled job's processes here go now; a new job, a released one or
     * a new node may start something. */
    if (cancelled)
        run_sync_local(d);
    if (may_start)
        run_schedule(d);
}

/* What w may see of each job, remembered per kind of job (a queue of
 * 100,000 jobs has a few dozen kinds, and the verdict for another's job
 * depends on its account alone). */
typedef struct jobs__seen {
    const authz_who *w;
    const pol *p;
    const fsm_class *cls[32];
    authz_level level[32];
    size_t n;
} jobs__seen;

static authz_level jobs__level(jobs__seen *s, const fsm_job *j)
{
    if (authz_owns(s->w, j->user))
        return AUTHZ_FULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->cls[i] == j->cls)
            return s->level[i];
    authz_level l = authz_others_job(s->p, s->w, j->cls->account);
    size_t at = s->n < 32 ? s->n++ : (size_t)(j->id % 32);
    s->cls[at] = j->cls;
    s->level[at] = l;
    return l;
}

/* The job of that id as w may see it (NULL: none, or not theirs to know
 * of); its level in *level when not NULL. */
static const fsm_job *jobs__visible(jzd *d, const authz_who *w, uint64_t id, authz_level *level)
{
    const fsm_job *j = fsm_job_get(&d->ctl.state, id);
    authz_level l = j ? authz_job(d->cfg->pol, w, j->user, j->cls->account) : AUTHZ_NONE;
    if (level)
        *level = l;
    return l == AUTHZ_NONE ? NULL : j;
}

/* admin.c's rule: whether w may know of reservation r. */

/* The policy's word on a submission: its account, QoS and reservation. */
static int jobs__policy_check(jzd *d, net_conn *c, const Jazari__Envelope *e, const Jazari__JobSpec *spec,
                              const char *account, const authz_who *w)
{
    uid_t uid = w->uid;
    const char *user = w->user;
    const pol *po = d->cfg->pol;
    if (!pol_account_known(po, account)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: account '%.100s' is not in the policy file (jz shares lists the accounts)",
                  account);
        return -1;
    }
    if (!pol_account_allows(po, account, user, uid == 0)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "job refused: %s may not charge account '%.100s' (its users are listed in the policy "
                  "file: ask your admins)",
                  user, account);
        return -1;
    }
    int q = pol_qos_find(po, spec->qos);
    if (q >= 0 && !pol_qos_allows(po, q, account, uid == 0)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "job refused: QoS %s is for the accounts %s, not for '%.100s'", po->qos[q].name,
                  po->qos[q].accounts, account);
        return -1;
    }
    if (q < 0) {
        buf names = BUF_INIT;
        for (size_t i = 0; i < po->n_qos; i++)
            buf_printf(&names, "%s%s", i ? ", " : "", po->qos[i].name);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: no QoS '%.64s': one of %s", spec->qos, buf_str(&names));
        buf_free(&names);
        return -1;
    }
    const char *resident = polsite_residency(&po->sites, account);
    if (resident && spec->site && *spec->site && !polsite_in(resident, spec->site)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "job refused: account '%.100s' is bound to %s by the policy's residency: --site %.64s is "
                  "outside them",
                  account, resident, spec->site);
        return -1;
    }
    if (spec->data && *spec->data && !polsite_dataset(&po->sites, spec->data)) {
        char names[512];
        polsite_dataset_names(&po->sites, names, sizeof names);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: --data %.64s: no dataset is named so in the policy (%s%s)", spec->data,
                  *names ? "its datasets: " : "it declares none", names);
        return -1;
    }
    if (spec->reservation && *spec->reservation) {
        const fsm_resv *r = fsm_resv_get(&d->ctl.state, spec->reservation);
        if (r && !admin_resv_sees(d, w, r))
            r = NULL; /* another tenant's: as if there were none */
        if (!r) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "job refused: no reservation '%.64s' (jz reservations lists them)", spec->reservation);
            return -1;
        }
        if (uid != 0 && !fsm_resv_member(r, account, user)) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                      "job refused: reservation %s is for account '%s'%s, not for %s in '%s'", r->name,
                      r->account ? r->account : "", r->n_users ? " and its listed users" : "", user, account);
            return -1;
        }
        uint32_t most = 0, wide = 0; /* its biggest part; parts as big as the job asks */
        for (size_t i = 0; i < r->n_parts; i++) {
            const fsm_node *n = fsm_node_get(&d->ctl.state, r->parts[i].node);
            if (resident && !polsite_in(resident, n ? n->site : NULL))
                continue; /* where the account's data may not go */
            most = r->parts[i].gpus > most ? r->parts[i].gpus : most;
            wide += r->parts[i].gpus >= spec->gpus_per_node;
        }
        int64_t from = r->start_ms > ctl_now_ms(&d->ctl) ? r->start_ms : ctl_now_ms(&d->ctl);
        const char *bad = NULL;
        char why[200];
        if (!spec->time_limit_s || (int64_t)spec->time_limit_s * 1000 > r->end_ms - from) {
            snprintf(why, sizeof why,
                     "a job in reservation %s needs a --time of at most %lld s (when it ends)", r->name,
                     (long long)((r->end_ms - from) / 1000));
            bad = why;
        } else if (spec->gpus_per_node > most || (spec->nodes ? spec->nodes : 1) > wide) {
            snprintf(why, sizeof why,
                     "reservation %s holds %zu nodes with at most %u GPUs each (%u with %u)%s%s", r->name,
                     r->n_parts, most, wide, spec->gpus_per_node,
                     resident ? " within the account's residency: " : "", resident ? resident : "");
            bad = why;
        }
        if (bad) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", bad);
            return -1;
        }
    }
    return 0;
}

/* The partitions' word on a submission (Slurm's rules, at submit): each
 * named partition must exist; those that refuse the account, the QoS or
 * the time limit are dropped, and the job is refused when none is left,
 * saying why. None named: the default partition, when the policy has one.
 * Sets s->partition (the partitions kept, into keep, which outlives s's
 * use) and s->time_limit_s (the partition's default_time, else its
 * max_time, when none was given; JOB_TIME_UNLIMITED: its max_time, else no
 * limit). */
static int jobs__partition_check(jzd *d, net_conn *c, const Jazari__Envelope *e, Jazari__JobSpec *s,
                                 const char *account, const authz_who *w, buf *keep)
{
    const pol *po = d->cfg->pol;
    (void)w; /* accounts= binds root too, as Slurm's AllowAccounts */
    const char *asked = s->partition && *s->partition ? s->partition : NULL;
    int def = pol_partition_default(po);
    if (!asked && def < 0) { /* no partitions in play: every node, as before */
        if (s->time_limit_s == JOB_TIME_UNLIMITED)
            s->time_limit_s = 0;
        return 0;
    }
    if (!asked)
        asked = po->partitions[def].name;
    if (strlen(asked) > 1024) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: --partition: at most 1024 characters");
        return -1;
    }
    char why[300] = "";
    const pol_partition *first = NULL;
    buf_reset(keep);
    for (const char *p = asked; *p;) {
        size_t l = strcspn(p, ",");
        char name[POL_NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(l < POL_NAME_MAX ? l : POL_NAME_MAX), p);
        p += l + (p[l] == ',');
        int k = l && l <= POL_NAME_MAX ? pol_partition_find(po, name) : -1;
        if (k < 0) {
            buf names = BUF_INIT;
            for (size_t i = 0; i < po->n_partitions; i++)
                buf_printf(&names, "%s%s", i ? ", " : "", po->partitions[i].name);
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "job refused: invalid partition '%.64s': %s%s", name,
                      po->n_partitions ? "the partitions are " : "the policy defines no partitions",
                      buf_str(&names));
            buf_free(&names);
            return -1;
        }
        const pol_partition *pt = &po->partitions[k];
        uint64_t limit = s->time_limit_s;
        if (!pol_partition_allows_account(pt, account, false)) {
            if (!*why)
                snprintf(why, sizeof why, "partition %s does not allow account '%.100s' (only %s)", pt->name,
                         account, pt->accounts);
            continue;
        }
        if (!pol_partition_allows_qos(pt, s->qos)) {
            if (!*why)
                snprintf(why, sizeof why, "partition %s does not allow QoS '%.64s' (only %s)", pt->name,
                         s->qos && *s->qos ? s->qos : "normal", pt->qos);
            continue;
        }
        if (limit && limit != JOB_TIME_UNLIMITED && pt->max_time_s && limit > pt->max_time_s) {
            if (!*why)
                snprintf(why, sizeof why,
                         "PartitionTimeLimit: --time %llu s is over partition %s's max_time of %llu s",
                         (unsigned long long)limit, pt->name, (unsigned long long)pt->max_time_s);
            continue;
        }
        if (!first)
            first = pt;
        buf_printf(keep, "%s%s", keep->len ? "," : "", pt->name);
    }
    if (!first) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false, "job refused: %s", why);
        return -1;
    }
    s->partition = (char *)buf_str(keep);
    if (s->time_limit_s == JOB_TIME_UNLIMITED)
        s->time_limit_s = first->max_time_s; /* 0: no limit */
    else if (!s->time_limit_s)
        s->time_limit_s = first->default_time_s ? first->default_time_s : first->max_time_s;
    return 0;
}

/* A submitter, for the state's checks of what they name. */
typedef struct jobs__who_of {
    jzd *d;
    const authz_who *w;
} jobs__who_of;

/* Whether the submitter may know of job j (a dependency on one they may
 * not must tell nothing of it). */
static bool jobs__sees(void *arg, const fsm_job *j)
{
    const jobs__who_of *o = arg;
    return authz_job(o->d->cfg->pol, o->w, j->user, j->cls->account) != AUTHZ_NONE;
}

/* Task i of a submission: spec with its account, and its array index. */
static void jobs__task_spec(Jazari__JobSpec *out, const Jazari__JobSpec *spec, const char *account,
                            bool array, uint32_t index, uint32_t throttle, const uint32_t *idx, size_t n)
{
    *out = *spec;
    out->account = (char *)account;
    if (array) {
        out->array = "";
        out->array_task = true;
        out->array_index = index;
        out->array_max = throttle;
        /* SLURM_ARRAY_TASK_COUNT, _MIN and _MAX */
        out->array_count = (uint32_t)n;
        out->array_min = out->array_max_index = n ? idx[0] : 0;
        for (size_t i = 1; i < n; i++) {
            out->array_min = idx[i] < out->array_min ? idx[i] : out->array_min;
            out->array_max_index = idx[i] > out->array_max_index ? idx[i] : out->array_max_index;
        }
    }
}

static void jobs__submit_spec(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *wp,
                              Jazari__JobSpec *spec, buf *partitions);

int jobs_check_spec(jzd *d, net_conn *c, const Jazari__Envelope *e, Jazari__JobSpec *spec, const authz_who *w,
                    buf *partitions)
{
    char err[256];
    const char *account = spec->account && *spec->account ? spec->account : d->cfg->pol->default_account;
    if (jobs__partition_check(d, c, e, spec, account, w, partitions) != 0)
        return -1;
    jobs__who_of who = {.d = d, .w = w};
    if (fsm_validate_spec_for(&d->ctl.state, spec, jobs__sees, &who, err, sizeof err) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", err);
        return -1;
    }
    if (jobs__policy_check(d, c, e, spec, account, w) != 0)
        return -1;
    /* One that could never fit its account's allocation is refused now,
     * not left waiting for ever (one that fits later waits:
     * AllocationExhausted). */
    fsm_ask ask = {
        .account = account,
        .nodes = spec->nodes ? spec->nodes : 1,
        .gpus_per_node = spec->gpus_per_node,
        .cpus_per_node = (spec->tasks_per_node ? spec->tasks_per_node : 1) *
                         (spec->cpus_per_task ? spec->cpus_per_task : 1),
        .gpu_model = spec->gpu_model ? spec->gpu_model : "",
        .time_limit_s = spec->time_limit_s,
    };
    if (fsm_allocation_check(&d->ctl.state, &ask, ctl_now_ms(&d->ctl), err, sizeof err) < 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", err);
        return -1;
    }
    return 0;
}

void jobs_submit(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    const Jazari__JobSpec *spec = e->submit_request->spec;
    if (!req_who(d, c, e, &w) || !req_runs_as(c, e, &w, "a job as root"))
        return;
    if (!spec) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "submit without a job");
        return;
    }
    /* The spec as the partitions complete it (its partition, its time). */
    Jazari__JobSpec adjusted = *spec;
    buf partitions = BUF_INIT;
    jobs__submit_spec(d, c, e, &w, &adjusted, &partitions);
    buf_free(&partitions);
}

/* jobs_submit with the spec the caller may complete. */
static void jobs__submit_spec(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *wp,
                              Jazari__JobSpec *spec, buf *partitions)
{
    authz_who w = *wp;
    uid_t uid = w.uid;
    gid_t gid = w.gid;
    const char *user = w.user;
    char err[256];
    /* Jobs run as their user only when the daemons run as root; otherwise
     * they would run as the daemon's user, so only that user may submit. */
    if (geteuid() != 0 && uid != geteuid()) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "jazarid runs as uid %u, not as root: only that user may submit (you are %s)",
                  (unsigned)geteuid(), user);
        return;
    }
    if (jobs_check_spec(d, c, e, spec, &w, partitions) != 0)
        return;
    const char *account = spec->account && *spec->account ? spec->account : d->cfg->pol->default_account;
    /* An array is one job per index, submitted in one command. */
    static uint32_t idx[FSM_ARRAY_MAX];
    size_t n = 1;
    uint32_t throttle = 0;
    bool array = spec->array && *spec->array;
    if (array && fsm_array_parse(spec->array, idx, FSM_ARRAY_MAX, &n, &throttle, err, sizeof err) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", err);
        return;
    }
    if (array && jazari__job_spec__get_packed_size(spec) * n > FSM_ARRAY_BYTES_MAX) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: %zu tasks of this job are over %u MiB: a smaller array, or a script that "
                  "reads its task id",
                  n, FSM_ARRAY_BYTES_MAX >> 20);
        return;
    }
    /* What one user may hold in the queue (a stranger with an account must
     * not grow every controller's memory without bound). */
    const fsm_user *held = fsm_user_get(&d->ctl.state, user);
    uint64_t bytes = (uint64_t)jazari__job_spec__get_packed_size(spec) * n;
    if (uid != 0 && held && held->active + n > d->cfg->max_jobs_per_user) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: %s has %u jobs pending or running, and may have at most %llu "
                  "(setting max_jobs_per_user): wait for some to end, or cancel some",
                  user, held->active, (unsigned long long)d->cfg->max_jobs_per_user);
        return;
    }
    if (uid != 0 && (held ? held->spec_bytes : 0) + bytes > d->cfg->max_spec_bytes_per_user) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: %s's jobs in the queue would hold %llu bytes of commands, environments and "
                  "scripts, over the %llu allowed (setting max_spec_bytes_per_user): send less environment, "
                  "or wait",
                  user, (unsigned long long)(held ? held->spec_bytes : 0) + bytes,
                  (unsigned long long)d->cfg->max_spec_bytes_per_user);
        return;
    }
    /* The kinds of job one user may have waiting (every task of an array
     * is of one kind): a pass works per kind, on the loop that also
     * keeps the nodes' heartbeats. */
    Jazari__JobSpec task;
    jobs__task_spec(&task, spec, account, array, idx[0], throttle, idx, n);
    uint32_t kinds = fsm_user_classes_with(&d->ctl.state, user, &task);
    if (uid != 0 && kinds > FSM_CLASSES_PER_USER) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job refused: %s's jobs pending or running are of %u kinds already (account, QoS, site, "
                  "--gpu-model, --min-gpu-mem, --constraint, reservation, array throttle), the most one "
                  "user may have is %u: give this job the same options as some of those, or wait for some "
                  "to end",
                  user, kinds - 1, FSM_CLASSES_PER_USER);
        return;
    }
    Jazari__Job *jobs = xcalloc(n, sizeof *jobs);
    Jazari__Job **ptrs = xcalloc(n, sizeof(Jazari__Job *));
    Jazari__JobSpec *specs = xcalloc(n, sizeof *specs);
    for (size_t i = 0; i < n; i++) {
        jazari__job__init(&jobs[i]);
        jobs__task_spec(&specs[i], spec, account, array, idx[i], throttle, idx, n);
        jobs[i].spec = &specs[i];
        jobs[i].user = (char *)user;
        jobs[i].uid = (uint32_t)uid;
        jobs[i].gid = (uint32_t)gid;
        ptrs[i] = &jobs[i];
    }
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.min_id = ctl_min_job_id(&d->ctl); /* never an id issued before (format 4) */
    sc.jobs = ptrs;
    sc.n_jobs = n;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    cmd.submit = &sc;
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, &w, "submit%s%s: %u GPUs x %u nodes in %s%s%s",
              array ? " array " : "", array ? spec->array : "", spec->gpus_per_node,
              spec->nodes ? spec->nodes : 1, account, spec->hold ? ", held" : "",
              spec->reservation && *spec->reservation ? ", in a reservation" : "");
    cmd.audit = &audit;
    ctl_propose(&d->ctl, &cmd, jobs_on_committed, req_wait(d, c, e));
    free(jobs);
    free(ptrs);
    free(specs);
}

/* Why a job may not be held or requeued as it is now (NULL: it may). */
static const char *jobs__state_refusal(const fsm_job *j, Jazari__Envelope__BodyCase body, char *why,
                                       size_t len)
{
    bool pending = j->state == JAZARI__JOB_STATE__JOB_PENDING;
    if (body == JAZARI__ENVELOPE__BODY_HOLD_REQUEST && !pending) {
        snprintf(why, len, "job %llu is %s, not pending: only a pending job can be held",
                 (unsigned long long)j->id, fsm_state_name(j->state));
        return why;
    }
    if (body == JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST && pending) {
        snprintf(
            why, len,
            "job %llu is pending already: requeue takes a running or ended job (jz hold keeps a pending one "
            "from starting)",
            (unsigned long long)j->id);
        return why;
    }
    if (body == JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST && j->no_requeue) {
        snprintf(why, len, "job %llu was submitted with --no-requeue: it is never requeued (submit it again)",
                 (unsigned long long)j->id);
        return why;
    }
    return NULL;
}

/* An allocation's client is done with it (jz alloc's command exited, srun
 * from outside a job saw its step end): it ends COMPLETED, as a batch job
 * whose script exited 0 does, through its first node's part (EndCmd). A
 * pending one is cancelled instead. The caller is authorized (FULL). */
static void jobs__complete(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w)
{
    const Jazari__CancelRequest *r = e->cancel_request;
    if (r->n_ids != 1) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "complete: give one allocation's id (%zu given)", r->n_ids);
        return;
    }
    const fsm_job *j = fsm_job_get(&d->ctl.state, r->ids[0]);
    Jazari__JobSpec *js = j && j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
    bool alloc = js && js->alloc;
    jazari__job_spec__free_unpacked(js, NULL);
    if (!j || !alloc) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "job %llu is not an allocation (jz alloc): only an allocation is completed by its client; "
                  "cancel it with jz cancel",
                  (unsigned long long)r->ids[0]);
        return;
    }
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    Jazari__AuditRecord audit;
    char what[200];
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
    if (j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->n_allocs > 0 && j->allocs[0].node) {
        ec.id = j->id;
        ec.state = JAZARI__JOB_STATE__JOB_COMPLETED;
        ec.attempt = j->attempt;
        ec.node = j->allocs[0].node;
        ec.reason = "";
        cmd.cmd_case = JAZARI__COMMAND__CMD_END;
        cmd.end = &ec;
        req_audit(&audit, what, sizeof what, w, "complete allocation %llu", (unsigned long long)j->id);
    } else {
        cc.ids = r->ids;
        cc.n_ids = 1;
        cc.uid = (uint32_t)w->uid;
        cc.admin = true;
        cmd.cmd_case = JAZARI__COMMAND__CMD_CANCEL;
        cmd.cancel = &cc;
        req_audit(&audit, what, sizeof what, w, "cancel job %llu", (unsigned long long)j->id);
    }
    cmd.audit = &audit;
    ctl_propose(&d->ctl, &cmd, jobs_on_committed, req_wait(d, c, e));
}

/* jz cancel, release, hold and requeue: the same checks, four commands. */
void jobs_cancel(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    Jazari__Envelope__BodyCase body = e->body_case;
    size_t n_ids;
    uint64_t *ids;
    const char *verb;
    switch (body) {
    case JAZARI__ENVELOPE__BODY_RELEASE_REQUEST:
        n_ids = e->release_request->n_ids, ids = e->release_request->ids, verb = "release";
        break;
    case JAZARI__ENVELOPE__BODY_HOLD_REQUEST:
        n_ids = e->hold_request->n_ids, ids = e->hold_request->ids, verb = "hold";
        break;
    case JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST:
        n_ids = e->requeue_request->n_ids, ids = e->requeue_request->ids;
        verb = e->requeue_request->hold ? "requeue (held)" : "requeue";
        break;
    default:
        n_ids = e->cancel_request->n_ids, ids = e->cancel_request->ids, verb = "cancel";
        break;
    }
    if (!req_who(d, c, e, &w))
        return;
    if (n_ids == 0 || n_ids > 10000) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "%s: give 1 to 10000 job ids",
                  verb);
        return;
    }
    /* Decided here, for every job (a job is never handed to another owner
     * or account, so the verdict holds when the entry is applied). */
    for (size_t i = 0; i < n_ids; i++) {
        const fsm_job *j = jobs__visible(d, &w, ids[i], NULL);
        if (!j) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                      (unsigned long long)ids[i]);
            return;
        }
        if (authz_job(d->cfg->pol, &w, j->user, j->cls->account) != AUTHZ_FULL) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                      "job %llu belongs to %s, not to %s (coordinators and tenant admins may act on their "
                      "accounts' jobs)",
                      (unsigned long long)j->id, j->user, w.user);
            return;
        }
        char why[300];
        if (jobs__state_refusal(j, body, why, sizeof why)) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "%s", why);
            return;
        }
    }
    if (body == JAZARI__ENVELOPE__BODY_CANCEL_REQUEST && e->cancel_request->complete) {
        jobs__complete(d, c, e, &w);
        return;
    }
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    cc.ids = ids;
    cc.n_ids = n_ids;
    cc.uid = (uint32_t)w.uid;
    cc.admin = true; /* authorized above, job by job */
    Jazari__RequeueCmd rc = JAZARI__REQUEUE_CMD__INIT;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    char ids_text[160] = "";
    size_t at = 0;
    for (size_t i = 0; i < n_ids && at + 24 < sizeof ids_text; i++)
        at += (size_t)snprintf(ids_text + at, sizeof ids_text - at, " %llu", (unsigned long long)ids[i]);
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, &w, "%s job%s%s%s", verb, n_ids > 1 ? "s" : "", ids_text,
              at + 24 >= sizeof ids_text ? " ..." : "");
    cmd.audit = &audit;
    if (body == JAZARI__ENVELOPE__BODY_RELEASE_REQUEST) {
        cmd.cmd_case = JAZARI__COMMAND__CMD_RELEASE;
        cmd.release = &cc;
    } else if (body == JAZARI__ENVELOPE__BODY_HOLD_REQUEST) {
        cmd.cmd_case = JAZARI__COMMAND__CMD_HOLD;
        cmd.hold = &cc;
    } else if (body == JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST) {
        rc.ids = ids;
        rc.n_ids = n_ids;
        rc.hold = e->requeue_request->hold;
        rc.grace_s = (uint32_t)((d->cfg->kill_grace_ms + 999) / 1000); /* as a cancel's */
        cmd.cmd_case = JAZARI__COMMAND__CMD_REQUEUE;
        cmd.requeue = &rc;
    } else {
        cmd.cmd_case = JAZARI__COMMAND__CMD_CANCEL;
        cmd.cancel = &cc;
    }
    ctl_propose(&d->ctl, &cmd, jobs_on_committed, req_wait(d, c, e));
}

/* Jobs as messages: each holds a decoded spec to free afterwards. */
typedef struct jobs__list {
    Jazari__Job *jobs;
    Jazari__JobSpec **specs; /* as decoded, to free */
    Jazari__JobSpec *brief;  /* shallow copies without script and environment */
    Jazari__Job **ptrs;
    Jazari__JobAlloc *allocs;
    Jazari__JobAlloc **alloc_ptrs;
    char **reasons; /* brief views' reasons cut short, to free (NULL where none) */
    void **steps;   /* per job, its steps' copies without their environment (to free) */
    size_t n;
} jobs__list;

/* The job's steps as `jz show` gives them to those who may act on it:
 * without the environment (the state keeps it while a step runs). One
 * block to free, in *block. */
static void jobs__steps_view(Jazari__Job *m, void **block)
{
    size_t n = m->n_steps;
    *block = NULL;
    if (n == 0)
        return;
    char *b = xcalloc(
        1, n * (sizeof(Jazari__JobStep *) + sizeof(Jazari__JobStep) + sizeof(Jazari__StepRequestSpec)));
    Jazari__JobStep **ptrs = (Jazari__JobStep **)b;
    Jazari__JobStep *steps = (Jazari__JobStep *)(b + n * sizeof(Jazari__JobStep *));
    Jazari__StepRequestSpec *specs = (Jazari__StepRequestSpec *)(steps + n);
    for (size_t i = 0; i < n; i++) {
        steps[i] = *m->steps[i];
        if (steps[i].spec) {
            specs[i] = *steps[i].spec;
            specs[i].env = NULL;
            specs[i].n_env = 0;
            steps[i].spec = &specs[i];
        }
        ptrs[i] = &steps[i];
    }
    m->steps = ptrs;
    *block = b;
}

/* What a brief view says of an ended job's reason. */
#define JOBS_REASON_HIDDEN "hidden (for the job's owner)"

/* A job's reason as a brief view gives it (the one rule). The controllers'
 * own words stand: why a job waits (Resources, Priority, Dependency,
 * QOSLimit...), what preempted it, that it was requeued. What a node
 * reported of a run does not: how it ended or why it could not start
 * ("cannot run '/opt/x/train'", "the working directory ... does not
 * exist") quotes the job's command, working directory and output paths.
 * So a waiting or running job's reason stops at its first ": " (after
 * which only a node's report comes: "Requeued after NODE_FAIL: ..."), and
 * an ended job's, always a node's or its end's account, is hidden: its
 * state says how it went. Returns the reason to give; a copy made goes to
 * *copy, to free. */
static const char *jobs__brief_reason(const fsm_job *j, const char *reason, char **copy)
{
    if (!reason || !*reason)
        return reason;
    if (!fsm_job_active(j))
        return JOBS_REASON_HIDDEN;
    const char *colon = strstr(reason, ": ");
    if (!colon)
        return reason;
    size_t len = (size_t)(colon - reason);
    *copy = xcalloc(len + 1, 1);
    memcpy(*copy, reason, len);
    return *copy;
}

/* Jobs as messages. brief leaves out each job's script and environment,
 * which only jz show needs (a queue of scripts could be gigabytes); a job
 * w may see only briefly also loses its command, working directory and
 * output paths. */
static void jobs__fill(jzd *d, const authz_who *w, jobs__list *a, const fsm_job *const *list, size_t n,
                       bool brief)
{
    /* Why each pending job waits, and its priority: the scheduling pass's
     * own answer from the state, the same on every controller; one pass
     * per state and second, whatever the number of requests. */
    bool pending = false;
    for (size_t i = 0; i < n && !pending; i++)
        pending = list[i]->state == JAZARI__JOB_STATE__JOB_PENDING;
    const sched_why *why = NULL;
    if (pending)
        why = sched_why_get(&d->ctl.state, d->cfg->pol, &d->sched.policy, ctl_now_ms(&d->ctl));
    size_t nallocs = 0;
    for (size_t i = 0; i < n; i++)
        nallocs += list[i]->n_allocs;
    jobs__seen vis = {.w = w, .p = d->cfg->pol};
    a->n = n;
    a->jobs = calloc(n ? n : 1, sizeof *a->jobs);
    a->specs = xcalloc(n, sizeof(Jazari__JobSpec *));
    a->brief = xcalloc(n, sizeof *a->brief);
    a->ptrs = calloc(n ? n : 1, sizeof(Jazari__Job *));
    a->allocs = calloc(nallocs ? nallocs : 1, sizeof *a->allocs);
    a->alloc_ptrs = calloc(nallocs ? nallocs : 1, sizeof(Jazari__JobAlloc *));
    a->reasons = xcalloc(n, sizeof(char *));
    a->steps = xcalloc(n, sizeof(void *));
    if (!a->jobs || !a->ptrs || !a->allocs || !a->alloc_ptrs)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        Jazari__JobSpec *spec = fsm_job_to_pb(list[i], &a->jobs[i], &a->allocs[k], &a->alloc_ptrs[k]);
        if (why && list[i]->state == JAZARI__JOB_STATE__JOB_PENDING) {
            const char *reason = sched_why_job(why, list[i]->id, &a->jobs[i].priority);
            if (reason)
                a->jobs[i].reason = (char *)reason;
            a->jobs[i].est_start_time_ms = sched_why_start(why, list[i]->id);
        }
        if (list[i]->preempt_ms) /* stopping, then back to the queue */
            a->jobs[i].state = JAZARI__JOB_STATE__JOB_PREEMPTED;
        a->specs[i] = spec;
        bool private = jobs__level(&vis, list[i]) != AUTHZ_FULL;
        if ((brief || private) && spec) {
            a->brief[i] = *spec;
            a->brief[i].script = "";
            a->brief[i].env = NULL;
            a->brief[i].n_env = 0;
            a->jobs[i].spec = &a->brief[i];
        }
        if (private && spec) {
            a->brief[i].argv = NULL;
            a->brief[i].n_argv = 0;
            a->brief[i].workdir = "";
            a->brief[i].output = "";
            a->brief[i].error = "";
        }
        if (private)
            a->jobs[i].reason = (char *)jobs__brief_reason(list[i], a->jobs[i].reason, &a->reasons[i]);
        if (brief || private) {
            a->jobs[i].steps = NULL; /* what each step runs is for those who may act on the job */
            a->jobs[i].n_steps = 0;
        } else {
            jobs__steps_view(&a->jobs[i], &a->steps[i]);
        }
        k += list[i]->n_allocs;
        a->ptrs[i] = &a->jobs[i];
    }
}

static void jobs__free(jobs__list *a)
{
    for (size_t i = 0; i < a->n; i++) {
        jazari__job_spec__free_unpacked(a->specs[i], NULL);
        free(a->reasons[i]);
        free(a->steps[i]);
    }
    free(a->reasons);
    free(a->steps);
    free(a->specs);
    free(a->brief);
    free(a->jobs);
    free(a->ptrs);
    free(a->allocs);
    free(a->alloc_ptrs);
}

/* A page of the queue: replies are bounded like frames, and must fit an
 * uplink's frame limit when forwarded. jz asks for page after page. */
#define JOBS_PAGE_MAX 10000
#define JOBS_REPLY_BUDGET ((size_t)8 << 20)

void jobs_page_make(jzd *d, const authz_who *w, bool all, int64_t ended_since_ms, uint64_t after_id,
                    size_t limit, jobs_page *pg)
{
    const fsm *f = &d->ctl.state;
    jobs__seen vis = {.w = w, .p = d->cfg->pol};
    size_t want = limit && limit < JOBS_PAGE_MAX ? limit : JOBS_PAGE_MAX;
    size_t cap = 0, n = 0;
    const fsm_job **list = NULL;
    /* jobs[id - 1 - jobs_base] */
    uint64_t i = after_id > f->jobs_base ? after_id - f->jobs_base : 0;
    i = i < f->jobs_cap ? i : f->jobs_cap;
    bool more = false;
    for (; i < f->jobs_cap; i++) {
        const fsm_job *j = f->jobs[i];
        if (!j || (!all && !fsm_job_active(j)) || jobs__level(&vis, j) == AUTHZ_NONE)
            continue;
        if (all && ended_since_ms > 0 && !fsm_job_active(j) && j->end_ms < ended_since_ms)
            continue;
        if (n == want) {
            more = true;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            const fsm_job **p = realloc(list, cap * sizeof(const fsm_job *));
            if (!p)
                abort();
            list = p;
        }
        list[n++] = j;
    }
    jobs__list *a = xcalloc(1, sizeof *a);
    jobs__fill(d, w, a, list, n, true);
    free(list);
    Jazari__QueueReply *r = &pg->r;
    jazari__queue_reply__init(r);
    r->jobs = a->ptrs;
    r->n_jobs = a->n;
    r->truncated = more;
    size_t bytes = 0;
    for (size_t k = 0; k < a->n; k++) {
        bytes += jazari__job__get_packed_size(&a->jobs[k]) + 8;
        if (bytes > JOBS_REPLY_BUDGET && k > 0) {
            r->n_jobs = k;
            r->truncated = true;
            break;
        }
    }
    if (r->truncated)
        r->next_after = r->jobs[r->n_jobs - 1]->id;
    pg->priv = a;
}

void jobs_page_free(jobs_page *pg)
{
    jobs__free(pg->priv);
    free(pg->priv);
    pg->priv = NULL;
}

void jobs_queue(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const Jazari__QueueRequest *q = e->queue_request;
    jobs_page pg;
    jobs_page_make(d, &w, q->all, 0, q->after_id, q->limit, &pg);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_QUEUE_REPLY, &pg.r);
    jobs_page_free(&pg);
}

void jobs_show(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    /* Another's job that is not the caller's to know of: as if none. */
    const fsm_job *j = jobs__visible(d, &w, e->show_request->id, NULL);
    if (!j) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                  (unsigned long long)e->show_request->id);
        return;
    }
    jobs__list a;
    jobs__fill(d, &w, &a, &j, 1, false);
    Jazari__ShowReply r = JAZARI__SHOW_REPLY__INIT;
    r.job = &a.jobs[0];
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_SHOW_REPLY, &r);
    jobs__free(&a);
}

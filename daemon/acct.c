/* acct.c - accounting on the controllers (issue 14): the job history each
 * controller keeps in its own SQLite database (raft/hist.h), written from
 * what the state machine hands over after every entry it applies (so
 * every controller derives the same records from the same log); jz
 * history, usage, balance and invoice answered from it, the queries off
 * the loop; jz grant proposed to the log; the policy file's accounting
 * rules committed by the leader. Who may see or grant what is authz.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "raft/hist.h"

#define ACCT_FLUSH_MS 200       /* a batch of records is committed this soon */
#define ACCT_FLUSH_PENDING 5000 /* or at this many */
#define ACCT_EXPIRE_EVERY_MS (3600ll * 1000)
#define ACCT_EXPIRE_BATCH 100000 /* records dropped at once, at most */
#define ACCT_QUERIES_MAX 4       /* queries running at once */

struct jzd_acct {
    hist *h;
    char path[PATH_MAX];
    uv_timer_t timer;
    bool timer_open;
    bool heal;           /* a flush failed: give the history everything the state holds again */
    int64_t expired_ms;  /* when records were last expired (the state's time) */
    unsigned queries;    /* in flight */
    bool tick_in_flight; /* leader: an entry proposed to let time's effects be applied */
    bool failed_logged;
};

/* --- writing --------------------------------------------------------------------- */

/* A finished job as the history keeps it; its strings point into j, spec
 * and nodes' (spec: the caller frees it). */
static void acct__hist_job(const fsm *f, const fsm_job *j, const Jazari__JobSpec *spec, Jazari__HistJob *h,
                           Jazari__JobUsage *empty)
{
    jazari__hist_job__init(h);
    jazari__job_usage__init(empty);
    h->id = j->id;
    h->array_job_id = j->array_job_id;
    h->array_index = spec && spec->array_task ? spec->array_index : 0;
    h->name = spec && spec->name ? spec->name : "";
    h->user = j->user ? j->user : "";
    h->account = (char *)(*j->cls->account ? j->cls->account : "default");
    h->qos = (char *)(*j->cls->qos ? j->cls->qos : "normal");
    h->partition = j->partition ? j->partition : (char *)j->cls->partition;
    const fsm_node *first = j->n_allocs && j->allocs[0].node ? fsm_node_get(f, j->allocs[0].node) : NULL;
    h->site = first && first->site ? first->site : (char *)j->cls->site;
    h->usage = j->usage ? j->usage : empty;
    h->node_list = h->usage->nodes ? h->usage->nodes : "";
    h->nodes = j->nodes;
    h->gpus = j->nodes * j->gpus_per_node;
    h->gpu_model =
        h->usage->gpu_model && *h->usage->gpu_model ? h->usage->gpu_model : (char *)j->cls->gpu_model;
    h->cpus = j->nodes * j->cpus_per_node;
    h->mem_bytes = spec ? spec->mem_bytes : 0;
    h->submit_ms = j->submit_ms;
    h->start_ms = j->start_ms;
    h->end_ms = j->end_ms;
    h->elapsed_ms = j->start_ms && j->end_ms > j->start_ms ? (uint64_t)(j->end_ms - j->start_ms) : 0;
    h->state = j->state;
    h->exit_code = j->exit_code;
    h->signal = j->exit_code > 128 && j->exit_code < 128 + 65 ? (uint32_t)(j->exit_code - 128) : 0;
    h->requeues = j->attempt;
    h->time_limit_s = j->time_limit_s;
}

static void acct__failed(jzd *d, const char *what, const char *err)
{
    struct jzd_acct *a = d->acct;
    a->heal = true;
    if (!a->failed_logged)
        log_error("acct",
                  "history %s: %s: %s (retried; the state keeps what is not written for jobs_keep)",
                  a->path, what, err);
    a->failed_logged = true;
}

static void acct__put_job(jzd *d, const fsm_job *j)
{
    Jazari__JobSpec *spec = j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
    Jazari__HistJob h;
    Jazari__JobUsage empty;
    acct__hist_job(&d->ctl.state, j, spec, &h, &empty);
    char err[300];
    if (hist_put_job(d->acct->h, &h, err, sizeof err) != 0)
        acct__failed(d, "job", err);
    jazari__job_spec__free_unpacked(spec, NULL);
}

static void acct__put_run(jzd *d, const Jazari__RunCharge *r)
{
    char err[300];
    if (hist_put_run(d->acct->h, r, err, sizeof err) != 0)
        acct__failed(d, "run", err);
}

static void acct__put_resv(jzd *d, const Jazari__ResvCharge *r)
{
    char err[300];
    if (hist_put_resv(d->acct->h, r, err, sizeof err) != 0)
        acct__failed(d, "reservation", err);
}

/* Everything the state still holds: after a failed write. */
static void acct__put_all(jzd *d)
{
    const fsm *f = &d->ctl.state;
    for (uint64_t i = 0; i < f->jobs_cap; i++) {
        const fsm_job *j = f->jobs[i];
        if (!j)
            continue;
        if (!fsm_job_active(j))
            acct__put_job(d, j);
        for (uint32_t r = 0; r < j->n_runs; r++)
            acct__put_run(d, j->runs[r]);
    }
    for (size_t i = 0; i < f->acct.n_resv; i++)
        acct__put_resv(d, f->acct.resv[i]);
}

static void acct__flush(jzd *d)
{
    struct jzd_acct *a = d->acct;
    char err[300];
    if (a->heal) {
        a->heal = false;
        acct__put_all(d);
    }
    if (hist_pending(a->h) && hist_flush(a->h, err, sizeof err) != 0) {
        acct__failed(d, "commit", err);
        return;
    }
    if (!a->heal && a->failed_logged) {
        log_info("acct", "history %s: written again", a->path);
        a->failed_logged = false;
    }
    /* Records older than the retention go, a batch at a time. */
    const fsm *f = &d->ctl.state;
    if (f->time_ms - a->expired_ms >= ACCT_EXPIRE_EVERY_MS) {
        uint64_t gone = 0;
        a->expired_ms = f->time_ms;
        if (hist_expire(a->h, f->time_ms - facct_retention_ms(&f->acct), ACCT_EXPIRE_BATCH, &gone, err,
                        sizeof err) != 0)
            log_warn("acct", "history %s: expiring old records: %s", a->path, err);
        else if (gone)
            log_info("acct", "history: %llu records older than the retention dropped",
                     (unsigned long long)gone);
    }
}

static void acct__on_timer(uv_timer_t *t)
{
    jzd *d = t->data;
    acct__flush(d);
    if (d->acct->heal)
        uv_timer_start(&d->acct->timer, acct__on_timer, 5000, 0); /* retried */
}

void acct_applied(jzd *d)
{
    struct jzd_acct *a = d->acct;
    const fsm *f = &d->ctl.state;
    if (!a || !a->h)
        return;
    for (size_t i = 0; i < f->n_out_jobs; i++) {
        const fsm_job *j = fsm_job_get(f, f->out_jobs[i]);
        if (j && !fsm_job_active(j))
            acct__put_job(d, j);
    }
    for (size_t i = 0; i < f->n_out_runs; i++) {
        const fsm_job *j = fsm_job_get(f, f->out_runs[i].id);
        const Jazari__RunCharge *r = j ? fsm_job_run(j, f->out_runs[i].attempt) : NULL;
        if (r)
            acct__put_run(d, r);
    }
    for (size_t i = f->out_resv <= f->acct.n_resv ? f->acct.n_resv - f->out_resv : 0; i < f->acct.n_resv; i++)
        acct__put_resv(d, f->acct.resv[i]);
    if (hist_pending(a->h) >= ACCT_FLUSH_PENDING || !a->timer_open)
        acct__flush(d);
    else if (hist_pending(a->h) && !uv_is_active((uv_handle_t *)&a->timer))
        uv_timer_start(&a->timer, acct__on_timer, ACCT_FLUSH_MS, 0);
}

int acct_open(jzd *d, char *err, size_t errlen)
{
    struct jzd_acct *a = xcalloc(1, sizeof *a);
    d->acct = a;
    snprintf(a->path, sizeof a->path, "%s/history.db", d->cfg->state_dir);
    if (hist_open(&a->h, a->path, false, err, errlen) != 0)
        return -1;
    uv_timer_init(&d->loop, &a->timer);
    a->timer.data = d;
    a->timer_open = true;
    return 0;
}

void acct_close(jzd *d)
{
    struct jzd_acct *a = d->acct;
    if (!a)
        return;
    if (a->h) {
        char err[300];
        if (hist_pending(a->h) && hist_flush(a->h, err, sizeof err) != 0)
            log_error("acct",
                      "history %s: the last records were not written: %s (the state still holds them)",
                      a->path, err);
    }
    if (a->timer_open) {
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, NULL);
        a->timer_open = false;
    }
}

void acct_free(jzd *d)
{
    struct jzd_acct *a = d->acct;
    if (!a)
        return;
    if (a->h && hist_pending(a->h))
        acct__flush(d); /* entries applied while the controller closed */
    hist_close(a->h);
    free(a);
    d->acct = NULL;
}

/* --- time's effects ----------------------------------------------------------------- */

static void acct__on_ticked(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    (void)o;
    if (d->acct)
        d->acct->tick_in_flight = false;
}

/* The state applies what time does (a reservation's window ends and is
 * charged, ended jobs are forgotten after jobs_keep) only with an entry.
 * On a quiet network the leader makes one when something is due, so that a
 * month's invoice does not wait for the next job to include a reservation
 * that ended in it. */
void acct_tick(jzd *d)
{
    struct jzd_acct *a = d->acct;
    if (!a || a->tick_in_flight || d->stopping || !d->ctl_running || !req_is_leader(d) ||
        ctl_log_format(&d->ctl) < 9)
        return;
    const fsm *f = &d->ctl.state;
    int64_t now = ctl_now_ms(&d->ctl);
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    Jazari__UnreserveCmd uc = JAZARI__UNRESERVE_CMD__INIT;
    Jazari__EventCmd ec = JAZARI__EVENT_CMD__INIT;
    for (size_t i = 0; i < f->n_resv && cmd.cmd_case == JAZARI__COMMAND__CMD__NOT_SET; i++) {
        if (f->resv[i].end_ms <= now) {
            uc.name = f->resv[i].name; /* charged to its end, as the window's end would */
            cmd.cmd_case = JAZARI__COMMAND__CMD_UNRESERVE;
            cmd.unreserve = &uc;
        }
    }
    if (cmd.cmd_case == JAZARI__COMMAND__CMD__NOT_SET && f->ended_head < f->n_ended &&
        f->ended[f->ended_head].end_ms + facct_jobs_keep_ms(&f->acct) <= now) {
        cmd.cmd_case = JAZARI__COMMAND__CMD_EVENT; /* no event: only the time */
        cmd.event = &ec;
    }
    if (cmd.cmd_case == JAZARI__COMMAND__CMD__NOT_SET)
        return;
    a->tick_in_flight = true;
    ctl_propose(&d->ctl, &cmd, acct__on_ticked, d);
}

/* --- who sees what -------------------------------------------------------------------- */

typedef struct acct__scope {
    hist_scope s;
    char user[64];
    char **accounts;
    size_t n;
} acct__scope;

static void acct__scope_add(acct__scope *sc, const char *account, size_t len)
{
    if (len == 0 || len > POL_PATH_MAX || sc->n >= HIST_SCOPE_MAX)
        return;
    for (size_t i = 0; i < sc->n; i++)
        if (strlen(sc->accounts[i]) == len && strncmp(sc->accounts[i], account, len) == 0)
            return;
    sc->accounts = xrealloc_array(sc->accounts, sc->n + 1, sizeof(char *));
    char *copy = xcalloc(len + 1, 1);
    memcpy(copy, account, len);
    sc->accounts[sc->n++] = copy;
}

/* What w may see of the history: an admin everything; anyone else their
 * own jobs and those of the accounts they manage (coordinators, tenant
 * admins: authz_account_manages). */
static void acct__scope_of(jzd *d, const authz_who *w, acct__scope *sc)
{
    memset(sc, 0, sizeof *sc);
    const pol *p = d->cfg->pol;
    if (authz_is_admin(w)) {
        sc->s.all = true;
        return;
    }
    /* Root on a node, relayed by its daemon, owns no jobs (authz_owns):
     * not the network root's, whose name it shares. */
    snprintf(sc->user, sizeof sc->user, "%s", w->user);
    sc->s.user = authz_owns(w, w->user) ? sc->user : NULL;
    for (size_t i = 0; i < p->n_accounts; i++)
        if (authz_account_manages(p, w, p->accounts[i].path))
            acct__scope_add(sc, p->accounts[i].path, strlen(p->accounts[i].path));
    for (size_t i = 0; i < p->n_tenants; i++) {
        const char *list = p->tenants[i].accounts;
        for (const char *at = list; at && *at;) {
            const char *comma = strchr(at, ',');
            size_t len = comma ? (size_t)(comma - at) : strlen(at);
            char one[POL_PATH_MAX + 1];
            snprintf(one, sizeof one, "%.*s", (int)(len < POL_PATH_MAX ? len : POL_PATH_MAX), at);
            if (authz_account_manages(p, w, one))
                acct__scope_add(sc, at, len);
            at = comma ? comma + 1 : at + len;
        }
    }
    sc->s.accounts = (const char *const *)sc->accounts;
    sc->s.n_accounts = sc->n;
}

static void acct__scope_free(acct__scope *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->accounts[i]);
    free(sc->accounts);
}

/* The tenant holding account (or its institute), "" none. */
static const char *acct__tenant(const pol *p, const char *account)
{
    size_t inst = strcspn(account, "/");
    for (size_t i = 0; i < p->n_tenants; i++)
        for (const char *at = p->tenants[i].accounts; at && *at;) {
            size_t len = strcspn(at, ",");
            if ((len == strlen(account) && strncmp(at, account, len) == 0) ||
                (len == inst && strncmp(at, account, inst) == 0))
                return p->tenants[i].name;
            at += len + (at[len] == ',');
        }
    return "";
}

/* --- queries, off the loop ----------------------------------------------------------------- */

typedef enum acct__kind { ACCT_HISTORY, ACCT_USAGE, ACCT_INVOICE } acct__kind;

typedef struct acct__query {
    uv_work_t work;
    jzd *d;
    jzd_wait *w;
    acct__kind kind;
    char path[PATH_MAX];
    acct__scope scope;
    Jazari__HistoryRequest *hq;
    Jazari__UsageRequest *uq;
    char account[POL_PATH_MAX + 1], month[8];
    int64_t from_ms, to_ms;
    uint32_t minor_digits;
    char currency[16];
    char tenant[POL_NAME_MAX + 1];
    Jazari__HistoryReply hr;
    Jazari__UsageReply ur;
    Jazari__InvoiceReply ir;
    int rc;
    char err[300];
} acct__query;

static void acct__on_work(uv_work_t *req)
{
    acct__query *q = req->data;
    hist *h = NULL;
    q->rc = hist_open(&h, q->path, true, q->err, sizeof q->err);
    if (q->rc == 0) {
        switch (q->kind) {
        case ACCT_HISTORY:
            q->rc = hist_query(h, q->hq, &q->scope.s, HIST_PAGE_MAX, &q->hr, q->err, sizeof q->err);
            break;
        case ACCT_USAGE:
            q->rc = hist_usage(h, q->uq, &q->scope.s, &q->ur, q->err, sizeof q->err);
            break;
        case ACCT_INVOICE:
            q->rc = hist_invoice(h, q->account, q->from_ms, q->to_ms, q->minor_digits, 0, &q->ir, q->err,
                                 sizeof q->err);
            break;
        }
    }
    hist_close(h);
}

static void acct__after_work(uv_work_t *req, int status)
{
    acct__query *q = req->data;
    jzd *d = q->d;
    d->acct->queries--;
    net_conn *c = req_unwait(q->w);
    uint64_t id = q->w->request_id;
    if (c && (status != 0 || q->rc != 0)) {
        log_warn("acct", "history query: %s", status ? uv_strerror(status) : q->err);
        req_error(c, id, JAZARI__ERROR_CODE__INTERNAL, false, "%s", status ? uv_strerror(status) : q->err);
    } else if (c && q->kind == ACCT_HISTORY) {
        q->hr.currency = q->currency;
        q->hr.minor_digits = q->minor_digits;
        req_reply(c, id, JAZARI__ENVELOPE__BODY_HISTORY_REPLY, &q->hr);
    } else if (c && q->kind == ACCT_USAGE) {
        q->ur.currency = q->currency;
        q->ur.minor_digits = q->minor_digits;
        req_reply(c, id, JAZARI__ENVELOPE__BODY_USAGE_REPLY, &q->ur);
    } else if (c) {
        q->ir.account = q->account;
        q->ir.month = q->month;
        q->ir.currency = q->currency;
        q->ir.tenant = q->tenant;
        req_reply(c, id, JAZARI__ENVELOPE__BODY_INVOICE_REPLY, &q->ir);
    }
    if (q->rc == 0 && status == 0) {
        if (q->kind == ACCT_HISTORY)
            hist_reply_free(&q->hr);
        else if (q->kind == ACCT_USAGE)
            hist_usage_free(&q->ur);
        else
            hist_invoice_free(&q->ir);
    }
    free(q->w);
    if (q->hq)
        jazari__history_request__free_unpacked(q->hq, NULL);
    if (q->uq)
        jazari__usage_request__free_unpacked(q->uq, NULL);
    acct__scope_free(&q->scope);
    free(q);
}

/* A copy of a request message (the envelope is freed when the handler returns). */
static void *acct__copy(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *tmp = xcalloc(n ? n : 1, 1);
    protobuf_c_message_pack(m, tmp);
    void *copy = protobuf_c_message_unpack(m->descriptor, NULL, n, tmp);
    free(tmp);
    if (!copy)
        abort();
    return copy;
}

static acct__query *acct__query_new(jzd *d, net_conn *c, const Jazari__Envelope *e, acct__kind kind)
{
    struct jzd_acct *a = d->acct;
    if (!a || !a->h) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "this daemon keeps no history (controllers do): ask a controller");
        return NULL;
    }
    if (a->queries >= ACCT_QUERIES_MAX) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "busy: %u history queries are running; try again in a moment", a->queries);
        return NULL;
    }
    acct__query *q = xcalloc(1, sizeof *q);
    q->d = d;
    q->kind = kind;
    snprintf(q->path, sizeof q->path, "%s", a->path);
    const facct *fa = &d->ctl.state.acct;
    snprintf(q->currency, sizeof q->currency, "%s", facct_currency(fa));
    q->minor_digits = facct_minor_digits(fa);
    jazari__history_reply__init(&q->hr);
    jazari__usage_reply__init(&q->ur);
    jazari__invoice_reply__init(&q->ir);
    return q;
}

static void acct__query_start(jzd *d, net_conn *c, const Jazari__Envelope *e, acct__query *q)
{
    /* What the loop wrote is committed first: a query sees every record
     * of what this controller applied. */
    acct__flush(d);
    q->w = req_wait(d, c, e);
    q->work.data = q;
    d->acct->queries++;
    uv_queue_work(&d->loop, &q->work, acct__on_work, acct__after_work);
}

/* What the asker typed, to quote in an error: itself when it is printable
 * text of at most 64 bytes, else a placeholder (raw control characters
 * would reach their terminal, and "%.64s" could cut a UTF-8 sequence,
 * which a strict protobuf reader refuses as a string). */
static const char *acct__shown(const char *s)
{
    return !s ? "" : fsm_printable(s, 64) ? s : "(not printable text of at most 64 bytes)";
}

static bool acct__text_ok(net_conn *c, uint64_t id, const char *what, const char *s)
{
    if (!s || fsm_printable(s, FSM_NAME_MAX + 64))
        return true;
    req_error(c, id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "%s: printable text of at most %d bytes", what,
              FSM_NAME_MAX + 64);
    return false;
}

static bool acct__times_ok(net_conn *c, uint64_t id, int64_t since, int64_t until)
{
    if (since < 0 || until < 0 || (until && since > until)) {
        req_error(c, id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "--since must come before --until (and neither before 1970)");
        return false;
    }
    return true;
}

void acct_history(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__HistoryRequest *r = e->history_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    if (!acct__text_ok(c, e->request_id, "--user", r->user) ||
        !acct__text_ok(c, e->request_id, "--account", r->account) ||
        !acct__text_ok(c, e->request_id, "--state", r->state) ||
        !acct__times_ok(c, e->request_id, r->since_ms, r->until_ms))
        return;
    /* What the query would refuse is the asker's mistake, said here (not
     * an internal error from the worker, and a warning in the log). */
    char err[300];
    int64_t states;
    if (hist_state_mask(r->state, &states, err, sizeof err) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "jz history: --state: %s",
                  err + (strncmp(err, "history: ", 9) == 0 ? 9 : 0));
        return;
    }
    if (r->job_id > (uint64_t)INT64_MAX || r->after_id > (uint64_t)INT64_MAX) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "jz history: no job has id %llu",
                  (unsigned long long)(r->job_id > (uint64_t)INT64_MAX ? r->job_id : r->after_id));
        return;
    }
    acct__query *q = acct__query_new(d, c, e, ACCT_HISTORY);
    if (!q)
        return;
    acct__scope_of(d, &w, &q->scope);
    q->hq = acct__copy(&r->base);
    acct__query_start(d, c, e, q);
}

void acct_usage(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__UsageRequest *r = e->usage_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const char *by = r->by && *r->by ? r->by : "account";
    if (strcmp(by, "user") != 0 && strcmp(by, "account") != 0 && strcmp(by, "model") != 0 &&
        strcmp(by, "site") != 0 && strcmp(by, "day") != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "--by '%s': user, account, model, site or day", acct__shown(by));
        return;
    }
    if (!acct__text_ok(c, e->request_id, "--account", r->account) ||
        !acct__times_ok(c, e->request_id, r->since_ms, r->until_ms))
        return;
    acct__query *q = acct__query_new(d, c, e, ACCT_USAGE);
    if (!q)
        return;
    acct__scope_of(d, &w, &q->scope);
    q->uq = acct__copy(&r->base);
    acct__query_start(d, c, e, q);
}

/* "YYYY-MM" into the month's first ms and the next month's (UTC). */
static int acct__month(const char *s, int64_t *from, int64_t *to)
{
    if (!s || strlen(s) != 7 || s[4] != '-')
        return -1;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    if (y < 1970 || y > 9998 || m < 1 || m > 12)
        return -1;
    struct tm a = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1};
    struct tm b = {.tm_year = (m == 12 ? y + 1 : y) - 1900, .tm_mon = m == 12 ? 0 : m, .tm_mday = 1};
    *from = (int64_t)timegm(&a) * 1000;
    *to = (int64_t)timegm(&b) * 1000;
    return 0;
}

void acct_invoice(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__InvoiceRequest *r = e->invoice_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const pol *p = d->cfg->pol;
    const char *account = r->account ? r->account : "";
    if (!pol_account_valid(account) || !pol_account_known(p, account)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "jz invoice: no account '%s' in the policy (jz shares lists them)", acct__shown(account));
        return;
    }
    if (!authz_account_billing(p, &w, account)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "jz invoice: %s's invoices are for its tenant's admins, its coordinators and the network's "
                  "admins",
                  account);
        return;
    }
    int64_t from, to;
    if (acct__month(r->month, &from, &to) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz invoice: --month '%s': a month such as 2026-11", acct__shown(r->month));
        return;
    }
    if (from > ctl_now_ms(&d->ctl)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz invoice: %s is in the future: nothing to bill yet", r->month);
        return;
    }
    acct__query *q = acct__query_new(d, c, e, ACCT_INVOICE);
    if (!q)
        return;
    snprintf(q->account, sizeof q->account, "%s", account);
    snprintf(q->month, sizeof q->month, "%s", r->month);
    snprintf(q->tenant, sizeof q->tenant, "%s", acct__tenant(p, account));
    q->from_ms = from;
    q->to_ms = to;
    acct__query_start(d, c, e, q);
}

/* --- grants and balances ------------------------------------------------------------------ */

typedef struct acct__grant_wait {
    jzd_wait *w;
    char account[POL_PATH_MAX + 1];
    int64_t from_ms, until_ms;
} acct__grant_wait;

static const facct_grant *acct__grant_find(const fsm *f, const char *account, int64_t from, int64_t until)
{
    for (size_t i = 0; i < f->acct.n_grants; i++) {
        const facct_grant *g = &f->acct.grants[i];
        if (strcmp(g->account, account) == 0 && g->from_ms == from && g->until_ms == until)
            return g;
    }
    return NULL;
}

static void acct__on_granted(void *arg, const ctl_outcome *o)
{
    acct__grant_wait *gw = arg;
    jzd *d = gw->w->d;
    net_conn *c = req_unwait(gw->w);
    const facct_grant *g = acct__grant_find(&d->ctl.state, gw->account, gw->from_ms, gw->until_ms);
    if (c && o->code != JAZARI__ERROR_CODE__OK) {
        req_error(c, gw->w->request_id, o->code, false, "%s", o->message);
    } else if (c && !g) {
        req_error(c, gw->w->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "jz grant: not applied (another grant of %s changed it meanwhile): look with jz balance %s",
                  gw->account, gw->account);
    } else if (c) {
        Jazari__Grant m;
        facct_grant_pb(g, &m);
        Jazari__GrantReply r = JAZARI__GRANT_REPLY__INIT;
        r.grant = &m;
        req_reply_at(c, gw->w->request_id, JAZARI__ENVELOPE__BODY_GRANT_REPLY, &r, o->log_index);
    }
    free(gw->w);
    free(gw);
    if (o->code == JAZARI__ERROR_CODE__OK)
        run_schedule(d); /* jobs waiting for an allocation may start */
}

#define ACCT_YEAR_MS (365ll * 24 * 3600 * 1000)

void acct_grant(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__GrantRequest *r = e->grant_request;
    authz_who w;
    if (!req_admin(d, c, e, &w, "jz grant"))
        return;
    const pol *p = d->cfg->pol;
    const char *account = r->account ? r->account : "";
    if (!pol_account_valid(account) || !pol_account_known(p, account)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "jz grant: no account '%s' in the policy file (add an account line first)",
                  acct__shown(account));
        return;
    }
    if (ctl_log_format(&d->ctl) < 9) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "jz grant: a controller of an older release runs; grants wait until every controller is "
                  "upgraded");
        return;
    }
    int64_t now = ctl_now_ms(&d->ctl);
    Jazari__Grant g = JAZARI__GRANT__INIT;
    g.account = (char *)account;
    g.from_ms = r->from_ms ? r->from_ms : now;
    /* A start past 9999 has no year after it (int64 would overflow): the
     * check below refuses the period. */
    g.until_ms = r->until_ms                                                      ? r->until_ms
                 : g.from_ms > 0 && g.from_ms <= FACCT_TIME_MAX_MS - ACCT_YEAR_MS ? g.from_ms + ACCT_YEAR_MS
                                                                                  : 0;
    /* Thousandths of a GPU-hour: 3600 GPU-ms each. */
    if (r->gpu_milli_hours > FACCT_GRANT_MS_MAX / 3600 || r->gpu_milli_hours < -(FACCT_GRANT_MS_MAX / 3600)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz grant: --gpu-hours: at most a billion");
        return;
    }
    g.gpu_ms = r->gpu_milli_hours * 3600;
    g.by = w.user;
    char err[300];
    if (facct_grant_check(&d->ctl.state.acct, &g, err, sizeof err) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "jz %s", err);
        return;
    }
    Jazari__GrantCmd gc = JAZARI__GRANT_CMD__INIT;
    gc.grant = &g;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_GRANT;
    cmd.grant = &gc;
    Jazari__AuditRecord audit;
    char what[300];
    req_audit(&audit, what, sizeof what, &w, "grant %s %+.3f GPU-hours", account,
              (double)r->gpu_milli_hours / 1000.0);
    cmd.audit = &audit;
    acct__grant_wait *gw = xcalloc(1, sizeof *gw);
    snprintf(gw->account, sizeof gw->account, "%s", account);
    gw->from_ms = g.from_ms;
    gw->until_ms = g.until_ms;
    gw->w = req_wait(d, c, e);
    ctl_propose(&d->ctl, &cmd, acct__on_granted, gw);
}

void acct_balance(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__BalanceRequest *r = e->balance_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const fsm *f = &d->ctl.state;
    const pol *p = d->cfg->pol;
    const char *one = r->account && *r->account ? r->account : NULL;
    if (one && (!pol_account_valid(one) || !pol_account_known(p, one))) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "jz balance: no account '%s' in the policy (jz shares lists them)", acct__shown(one));
        return;
    }
    if (one && !authz_account_balance(p, &w, one)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "jz balance: you are not a member of %s", one);
        return;
    }
    int64_t now = ctl_now_ms(&d->ctl);
    /* The accounts: the one asked (charged to its grants' holder), or
     * every holder of grants the caller may see. */
    const char **holders = xcalloc(f->acct.n_grants + 1, sizeof(char *));
    size_t n = 0;
    if (one) {
        const char *h = facct_grant_holder(&f->acct, one);
        holders[n++] = h ? h : one;
    } else {
        for (size_t i = 0; i < f->acct.n_grants; i++) {
            const char *h = f->acct.grants[i].account;
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++)
                dup = strcmp(holders[k], h) == 0;
            if (!dup && authz_account_balance(p, &w, h))
                holders[n++] = h;
        }
    }
    Jazari__Balance *bs = xcalloc(n ? n : 1, sizeof *bs);
    Jazari__Balance **bp = xcalloc(n ? n : 1, sizeof(Jazari__Balance *));
    Jazari__Grant *gs = xcalloc(f->acct.n_grants + n + 1, sizeof *gs);
    Jazari__Grant **gp = xcalloc(f->acct.n_grants + 1, sizeof(Jazari__Grant *));
    size_t ng = 0, gpi = 0;
    for (size_t i = 0; i < n; i++) {
        Jazari__Balance *b = &bs[i];
        jazari__balance__init(b);
        b->account = (char *)holders[i];
        const facct_grant *g = NULL;
        uint64_t running = 0, held = 0;
        int64_t left = fsm_grant_left(f, holders[i], now, &running, &held, &g);
        if (g) {
            facct_grant_pb(g, &gs[ng]);
            b->grant = &gs[ng++];
            b->running_ms = running;
            b->remaining_ms = left;
            b->held_ms = held;
        }
        b->grants = &gp[gpi];
        for (size_t k = 0; k < f->acct.n_grants; k++) {
            if (strcmp(f->acct.grants[k].account, holders[i]) != 0)
                continue;
            facct_grant_pb(&f->acct.grants[k], &gs[ng]);
            gp[gpi++] = &gs[ng++];
            b->n_grants++;
        }
        bp[i] = b;
    }
    Jazari__BalanceReply rep = JAZARI__BALANCE_REPLY__INIT;
    rep.balances = bp;
    rep.n_balances = n;
    rep.now_ms = now;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_BALANCE_REPLY, &rep);
    free(holders);
    free(bs);
    free(bp);
    free(gs);
    free(gp);
}

/* admin.c - advance reservations (how startups rent compute slots) and the
 * fair-share tree, as requests: jz reserve / unreserve (root), jz
 * reservations, jz shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "sched/resv.h"

#define ADMIN_USERS_MAX 256

/* A request waiting for its reservation entry, with the name it is about. */
typedef struct admin__wait {
    jzd_wait *w;
    char name[CONFIG_NAME_MAX + 1];
} admin__wait;

static admin__wait *admin__wait_new(jzd *d, net_conn *c, const Jazari__Envelope *e, const char *name)
{
    admin__wait *a = xcalloc(1, sizeof *a);
    a->w = req_wait(d, c, e);
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

/* The reservation as applied, or why not. */
static void admin__on_reserved(void *arg, const ctl_outcome *o)
{
    admin__wait *a = arg;
    jzd_wait *w = a->w;
    jzd *d = w->d;
    net_conn *c = req_unwait(w);
    if (c && o->code != JAZARI__ERROR_CODE__OK) {
        req_error(c, w->request_id, o->code, false, "%s", o->message);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_UNRESERVE_REQUEST) {
        Jazari__UnreserveReply r = JAZARI__UNRESERVE_REPLY__INIT;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_UNRESERVE_REPLY, &r, o->log_index);
    } else if (c && o->res->counts[o->index] == 0) {
        req_error(c, w->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "reservation %s was not made: another one took its name or its GPUs meanwhile; try again",
                  a->name);
    } else if (c) {
        Jazari__ReserveReply r = JAZARI__RESERVE_REPLY__INIT;
        const fsm_resv *v = fsm_resv_get(&d->ctl.state, a->name);
        r.reservation = v ? jazari__reservation__unpack(NULL, v->msg_len, v->msg) : NULL;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_RESERVE_REPLY, &r, o->log_index);
        if (r.reservation)
            jazari__reservation__free_unpacked(r.reservation, NULL);
    }
    free(w);
    free(a);
    run_schedule(d); /* a reservation changes what may start where */
}

/* Whether w may know of reservation r: who may see its account, and its
 * listed users. The one rule: jz reservations, unreserve, reserve and
 * submit --reservation (jobs.c) answer of another's as of none. */
bool admin_resv_sees(jzd *d, const authz_who *w, const fsm_resv *r)
{
    if (r->account && *r->account && authz_account_sees(d->cfg->pol, w, r->account))
        return true;
    if (authz_is_admin(w))
        return true;
    return fsm_resv_member(r, NULL, w->user);
}

/* Checks a jz reserve request by w: one line of what is wrong, or NULL. */
static const char *admin__check(jzd *d, const authz_who *w, const Jazari__ReserveRequest *q, char *why,
                                size_t len)
{
    if (!q->name || !config_valid_name(q->name))
        return "a reservation's name: 1-63 of [A-Za-z0-9._-], starting with a letter or digit";
    /* Names are the network's, one of each: another tenant's that w may
     * not know of is refused without a word of it (whose, when, where). */
    const fsm_resv *taken = fsm_resv_get(&d->ctl.state, q->name);
    if (taken && admin_resv_sees(d, w, taken)) {
        snprintf(why, len, "reservation %s exists already (jz unreserve %s first)", q->name, q->name);
        return why;
    }
    if (taken) {
        snprintf(why, len, "the name %s cannot be used: choose another", q->name);
        return why;
    }
    if ((q->gpus == 0) == (q->nodes == 0))
        return "give --gpus N or --nodes N (one of them)";
    if (q->gpus > 1000000 || q->nodes > FSM_NODES_MAX)
        return "--gpus at most 1000000, --nodes at most 4096";
    if (q->duration_s == 0 || q->duration_s > FSM_TIME_MAX_S)
        return "--duration: from a second to 365 days";
    if (q->n_users > ADMIN_USERS_MAX)
        return "--users: at most 256";
    if ((!q->account || !*q->account) && q->n_users == 0)
        return "whose is it? give --account ACCOUNT or --users USER,...";
    if (q->account && *q->account && !pol_account_known(d->cfg->pol, q->account)) {
        snprintf(why, len, "account '%.100s' is not in the policy file (jz shares lists them)", q->account);
        return why;
    }
    for (size_t i = 0; i < q->n_users; i++)
        if (!config_valid_name(q->users[i]))
            return "--users: user names of [A-Za-z0-9._-]";
    int64_t now = ctl_now_ms(&d->ctl);
    if (q->start_ms && q->start_ms < now - 60000)
        return "--start is in the past";
    if (q->start_ms > now + (int64_t)FSM_TIME_MAX_S * 1000)
        return "--start is more than a year ahead";
    const char *strs[] = {q->gpu_model, q->site};
    for (size_t i = 0; i < 2; i++)
        if (strs[i] && strlen(strs[i]) > FSM_NAME_MAX)
            return "--gpu-model and --site: at most 128 characters";
    return NULL;
}

void admin_reserve(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__ReserveRequest *q = e->reserve_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    /* Admins, and a startup's admins for its own accounts. */
    if (!authz_account_admin(d->cfg->pol, &w, q->account) || w.via_node) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "jz reserve is for admins, and for tenant admins with --account one of their startup's "
                  "accounts; not for %s%s%s",
                  w.user, q->account && *q->account ? " in " : "", q->account ? q->account : "");
        return;
    }
    char why[300], err[300];
    const char *bad = admin__check(d, &w, q, why, sizeof why);
    if (bad) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "reservation refused: %s", bad);
        return;
    }
    const fsm *f = &d->ctl.state;
    resv_ask ask = {.gpus = q->gpus, .nodes = q->nodes, .gpu_model = q->gpu_model, .site = q->site};
    ask.start_ms = q->start_ms ? q->start_ms : ctl_now_ms(&d->ctl);
    ask.end_ms = ask.start_ms + (int64_t)q->duration_s * 1000;
    resv_part *parts = xcalloc(f->n_nodes ? f->n_nodes : 1, sizeof *parts);
    int n = resv_pick(f, &ask, parts, err, sizeof err);
    if (n <= 0 || n > FSM_NODES_MAX || f->n_resv >= FSM_RESV_MAX) {
        if (n > FSM_NODES_MAX)
            snprintf(err, sizeof err, "it would span %d nodes: at most %d (ask for fewer GPUs)", n,
                     FSM_NODES_MAX);
        else if (n > 0)
            snprintf(err, sizeof err, "%d reservations exist already: at most %d", FSM_RESV_MAX,
                     FSM_RESV_MAX);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "reservation refused: %s",
                  n == 0 ? "no node fits" : err);
        free(parts);
        return;
    }
    Jazari__ReservationPart *rp = xcalloc((size_t)n, sizeof *rp);
    Jazari__ReservationPart **ptrs = xcalloc((size_t)n, sizeof(Jazari__ReservationPart *));
    uint32_t total = 0;
    for (int i = 0; i < n; i++) {
        jazari__reservation_part__init(&rp[i]);
        rp[i].node = f->nodes[parts[i].node].name;
        rp[i].gpus = parts[i].gpus;
        total += parts[i].gpus;
        ptrs[i] = &rp[i];
    }
    Jazari__Reservation r = JAZARI__RESERVATION__INIT;
    r.name = q->name;
    r.account = q->account;
    r.users = q->users;
    r.n_users = q->n_users;
    r.start_ms = ask.start_ms;
    r.end_ms = ask.end_ms;
    r.parts = ptrs;
    r.n_parts = (size_t)n;
    r.gpu_model = q->gpu_model;
    r.site = q->site;
    r.gpus = total;
    r.nodes = q->nodes;
    r.created_by = w.user;
    Jazari__ReserveCmd rc = JAZARI__RESERVE_CMD__INIT;
    rc.reservation = &r;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_RESERVE;
    cmd.reserve = &rc;
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, &w, "reserve %s: %u GPUs on %d nodes for %s, %llu s", q->name, total,
              n, q->account && *q->account ? q->account : "its users", (unsigned long long)q->duration_s);
    cmd.audit = &audit;
    log_info("admin", "reservation %s: %u GPUs on %d nodes for %s", q->name, total, n,
             q->account && *q->account ? q->account : "its users");
    ctl_propose(&d->ctl, &cmd, admin__on_reserved, admin__wait_new(d, c, e, q->name));
    free(rp);
    free(ptrs);
    free(parts);
}

void admin_unreserve(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *name = e->unreserve_request->name;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const fsm_resv *v = fsm_resv_get(&d->ctl.state, name);
    if (v && !admin_resv_sees(d, &w, v)) /* not theirs to know of */
        v = NULL;
    if (v && (!authz_account_admin(d->cfg->pol, &w, v->account) || w.via_node)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "reservation %s is for %s: only admins and its tenant's admins may remove it", v->name,
                  v->account ? v->account : "its users");
        return;
    }
    if (!v) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "no reservation '%.64s' (jz reservations lists them)", name ? name : "");
        return;
    }
    Jazari__UnreserveCmd uc = JAZARI__UNRESERVE_CMD__INIT;
    uc.name = (char *)name;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_UNRESERVE;
    cmd.unreserve = &uc;
    Jazari__AuditRecord audit;
    char what[100];
    req_audit(&audit, what, sizeof what, &w, "unreserve %s", name);
    cmd.audit = &audit;
    ctl_propose(&d->ctl, &cmd, admin__on_reserved, admin__wait_new(d, c, e, name));
}

void admin_reservations(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const fsm *f = &d->ctl.state;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    Jazari__ReservationsReply r = JAZARI__RESERVATIONS_REPLY__INIT;
    r.reservations = xcalloc(f->n_resv ? f->n_resv : 1, sizeof(Jazari__Reservation *));
    for (size_t i = 0; i < f->n_resv; i++) {
        if (!admin_resv_sees(d, &w, &f->resv[i]))
            continue;
        Jazari__Reservation *m = jazari__reservation__unpack(NULL, f->resv[i].msg_len, f->resv[i].msg);
        if (m)
            r.reservations[r.n_reservations++] = m;
    }
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_RESERVATIONS_REPLY, &r);
    for (size_t i = 0; i < r.n_reservations; i++)
        jazari__reservation__free_unpacked(r.reservations[i], NULL);
    free(r.reservations);
}

/* Whether w may see a row of the fair-share tree: an account they may see
 * (or one above such an account), and of the users' rows their own, or
 * those of accounts whose jobs they see in full. */
static bool admin__row_sees(jzd *d, const authz_who *w, const char *path)
{
    const pol *p = d->cfg->pol;
    if (authz_is_admin(w))
        return true;
    const char *a = strchr(path, '/'), *b = strrchr(path, '/');
    bool account = false;
    for (size_t i = 0; i < p->n_accounts && !account; i++)
        account = strcmp(p->accounts[i].path, path) == 0;
    if (b && !account) { /* account/user, the account of one level or two */
        char acct[POL_PATH_MAX + 1];
        snprintf(acct, sizeof acct, "%.*s", (int)(b - path), path);
        return strcmp(b + 1, w->user) == 0 || authz_others_job(p, w, acct) == AUTHZ_FULL || p->open;
    }
    if (authz_account_sees(p, w, path))
        return true;
    /* An institute is seen by who sees one of its projects. */
    size_t len = strlen(path);
    for (size_t i = 0; !a && i < p->n_accounts; i++)
        if (strncmp(p->accounts[i].path, path, len) == 0 && p->accounts[i].path[len] == '/' &&
            !strchr(p->accounts[i].path + len + 1, '/') && authz_account_sees(p, w, p->accounts[i].path))
            return true;
    return false;
}

void admin_shares(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    sched_view sv; /* the tree the pass ranks by, running jobs included */
    sched_view_build(&d->ctl.state, d->cfg->pol, ctl_now_ms(&d->ctl), &sv);
    prio_tree *tree = pass_tree(&sv.v);
    size_t n;
    const prio_row *rows = prio_tree_rows(tree, &n);
    Jazari__ShareRow *m = xcalloc(n ? n : 1, sizeof *m);
    Jazari__ShareRow **ptrs = xcalloc(n ? n : 1, sizeof(Jazari__ShareRow *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!admin__row_sees(d, &w, rows[i].path))
            continue;
        jazari__share_row__init(&m[k]);
        m[k].path = (char *)rows[i].path;
        m[k].shares = rows[i].shares;
        m[k].norm_shares = rows[i].norm_shares;
        m[k].gpu_seconds = rows[i].usage;
        m[k].norm_usage = rows[i].norm_usage;
        m[k].effective_usage = rows[i].effective_usage;
        m[k].fairshare = rows[i].fairshare;
        ptrs[k] = &m[k];
        k++;
    }
    Jazari__SharesReply r = JAZARI__SHARES_REPLY__INIT;
    r.rows = ptrs;
    r.n_rows = k;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_SHARES_REPLY, &r);
    free(m);
    free(ptrs);
    prio_tree_free(tree);
    sched_view_free(&sv, &d->ctl.state);
}

/* drains.c - the admins' hands on nodes: jz drain and jz resume (DrainCmd,
 * log format 8), the drains the health checks ask for, and jz events (the
 * events the state keeps: raft/edb.h). Who may drain is decided here:
 * admins of the network, and the leader itself for the health checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"

#define EVENTS_PAGE_MAX 10000
#define EVENTS_REPLY_BUDGET ((size_t)4 << 20)

typedef struct drains__wait {
    jzd_wait *w;
    char node[FSM_NAME_MAX + 1];
} drains__wait;

static void drains__on_committed(void *arg, const ctl_outcome *o)
{
    drains__wait *dw = arg;
    jzd *d = dw->w->d;
    net_conn *c = req_unwait(dw->w);
    const fsm_node *n = fsm_node_get(&d->ctl.state, dw->node);
    if (c && o->code != JAZARI__ERROR_CODE__OK) {
        req_error(c, dw->w->request_id, o->code, false, "%s", o->message);
    } else if (c && !n) {
        req_error(c, dw->w->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "node %s is gone", dw->node);
    } else if (c) {
        Jazari__NodeInfo ni;
        nodes_fill_info(&d->ctl.state, n, &ni);
        Jazari__DrainReply r = JAZARI__DRAIN_REPLY__INIT;
        r.node = &ni;
        req_reply_at(c, dw->w->request_id, JAZARI__ENVELOPE__BODY_DRAIN_REPLY, &r, o->log_index);
        nodes_info_free(&ni);
    }
    free(dw->w);
    free(dw);
    if (o->code == JAZARI__ERROR_CODE__OK) {
        run_sync_local(d); /* jobs requeued by --now stop here too */
        run_schedule(d);   /* a resumed node takes work */
    }
}

void drains_request(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__DrainRequest *q = e->drain_request;
    authz_who w;
    const char *verb = q->resume ? "jz resume" : "jz drain";
    if (!req_admin(d, c, e, &w, verb))
        return;
    const fsm_node *n = q->node && *q->node ? fsm_node_get(&d->ctl.state, q->node) : NULL;
    if (!n) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "%s: no node is named '%.64s' (jz nodes lists them)", verb, q->node ? q->node : "");
        return;
    }
    if (q->has_gpu && q->gpu >= n->topo->n_gpus) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "%s: node %s has %zu GPU%s (0-%zu): no GPU %u", verb, n->name, n->topo->n_gpus,
                  n->topo->n_gpus == 1 ? "" : "s", n->topo->n_gpus ? n->topo->n_gpus - 1 : 0, q->gpu);
        return;
    }
    const char *reason = q->reason ? q->reason : "";
    if (!q->resume && !*reason) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz drain: say why with --reason TEXT (others read it in jz nodes)");
        return;
    }
    if (!fsm_printable(reason, FSM_DRAIN_TEXT_MAX)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "%s: the reason must be printable text of at most %d bytes", verb, FSM_DRAIN_TEXT_MAX);
        return;
    }
    int32_t gpu = q->has_gpu ? (int32_t)q->gpu : -1;
    if (q->resume && !(gpu < 0 ? n->n_drains : fsm_drain_get(n, gpu) != NULL)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz resume: %s%s is not drained (state %s)", gpu < 0 ? "node " : "GPU ", n->name,
                  fsm_node_state(&d->ctl.state, n));
        return;
    }
    char by[FSM_NAME_MAX + 16];
    snprintf(by, sizeof by, "%s", w.user);
    Jazari__DrainCmd dc = JAZARI__DRAIN_CMD__INIT;
    dc.node = n->name;
    dc.resume = q->resume;
    dc.gpu = gpu;
    dc.reason = (char *)reason;
    dc.by = by;
    dc.source = "admin";
    dc.now = q->now && !q->resume;
    dc.grace_s = (uint32_t)((d->cfg->kill_grace_ms + 999) / 1000);
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_DRAIN;
    cmd.drain = &dc;
    Jazari__AuditRecord audit;
    char what[FSM_DRAIN_TEXT_MAX + 200], target[FSM_NAME_MAX + 32];
    if (gpu < 0)
        snprintf(target, sizeof target, "node %s", n->name);
    else
        snprintf(target, sizeof target, "GPU %d of node %s", gpu, n->name);
    if (q->resume)
        req_audit(&audit, what, sizeof what, &w, "resume %s", target);
    else
        req_audit(&audit, what, sizeof what, &w, "drain %s%s: %s", target, dc.now ? " now" : "", reason);
    cmd.audit = &audit;
    drains__wait *dw = xcalloc(1, sizeof *dw);
    snprintf(dw->node, sizeof dw->node, "%s", n->name);
    dw->w = req_wait(d, c, e);
    ctl_propose(&d->ctl, &cmd, drains__on_committed, dw);
}

static void drains__on_own(void *arg, const ctl_outcome *o)
{
    (void)arg;
    if (o->code != JAZARI__ERROR_CODE__OK)
        log_warn("health", "not logged: %s", o->message);
}

void drains_propose(jzd *d, const char *node, int32_t gpu, bool resume, bool now, const char *source,
                    const char *reason)
{
    drains_propose_then(d, node, gpu, resume, now, source, reason, drains__on_own, NULL);
}

void drains_propose_then(jzd *d, const char *node, int32_t gpu, bool resume, bool now, const char *source,
                         const char *reason, ctl_done_cb cb, void *arg)
{
    Jazari__DrainCmd dc = JAZARI__DRAIN_CMD__INIT;
    dc.node = (char *)node;
    dc.resume = resume;
    dc.gpu = gpu;
    dc.reason = (char *)reason;
    dc.by = (char *)source;
    dc.source = (char *)source;
    dc.now = now && !resume;
    dc.grace_s = (uint32_t)((d->cfg->kill_grace_ms + 999) / 1000);
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_DRAIN;
    cmd.drain = &dc;
    ctl_propose(&d->ctl, &cmd, cb, arg);
}

static bool drains__event_matches(const Jazari__EventsRequest *q, const Jazari__Event *ev)
{
    return ev->time_ms >= q->since_ms && (!q->node || !*q->node || strcmp(q->node, ev->node) == 0);
}

/* A page after after_seq (jz events -f, the dashboard's since_seq): the
 * oldest `want` that match after it, so that the next page, asked after
 * the last of these, misses none. (The newest `want` would drop the ones
 * between when more than a page came since.) */
static void drains__events_after(const edb *v, const Jazari__EventsRequest *q, size_t want,
                                 Jazari__Event **found, size_t *n)
{
    /* The first event numbered after after_seq: numbered in order. */
    size_t lo = 0, hi = v->ring.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        Jazari__Event *ev = edb_get(v, mid);
        bool after = ev && ev->seq > q->after_seq;
        if (ev)
            jazari__event__free_unpacked(ev, NULL);
        if (after)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t bytes = 0;
    for (size_t i = lo; i < v->ring.n && *n < want; i++) {
        Jazari__Event *ev = edb_get(v, i);
        if (!ev)
            continue;
        if (drains__event_matches(q, ev)) {
            bytes += jazari__event__get_packed_size(ev) + 8;
            if (bytes > EVENTS_REPLY_BUDGET && *n > 0) {
                jazari__event__free_unpacked(ev, NULL);
                return;
            }
            found[(*n)++] = ev;
        } else {
            jazari__event__free_unpacked(ev, NULL);
        }
    }
}

void drains_events_make(jzd *d, const Jazari__EventsRequest *q, Jazari__EventsReply *r)
{
    const edb *v = &d->ctl.state.events;
    size_t want = q->max && q->max < EVENTS_PAGE_MAX ? q->max : EVENTS_PAGE_MAX;
    jazari__events_reply__init(r);
    Jazari__Event *last = v->ring.n ? edb_get(v, v->ring.n - 1) : NULL;
    r->last_seq = last ? last->seq : 0;
    if (last)
        jazari__event__free_unpacked(last, NULL);
    Jazari__Event **found = xcalloc(want, sizeof(Jazari__Event *));
    size_t n = 0, bytes = 0;
    if (q->after_seq) {
        drains__events_after(v, q, want, found, &n);
        r->events = found;
        r->n_events = n;
        return;
    }
    /* The newest `want` that match, oldest first: walked back from the
     * newest. */
    for (size_t i = v->ring.n; i-- > 0 && n < want;) {
        Jazari__Event *ev = edb_get(v, i);
        if (!ev)
            continue;
        if (ev->seq <= q->after_seq || ev->time_ms < q->since_ms) {
            jazari__event__free_unpacked(ev, NULL);
            break; /* numbered and timed in order: none older matches */
        }
        bool match = !q->node || !*q->node || strcmp(q->node, ev->node) == 0;
        bytes += match ? jazari__event__get_packed_size(ev) + 8 : 0;
        if (!match || bytes > EVENTS_REPLY_BUDGET) {
            jazari__event__free_unpacked(ev, NULL);
            if (bytes > EVENTS_REPLY_BUDGET)
                break;
            continue;
        }
        found[n++] = ev;
    }
    r->events = xcalloc(n, sizeof(Jazari__Event *));
    for (size_t i = 0; i < n; i++)
        r->events[i] = found[n - 1 - i];
    r->n_events = n;
    free(found);
}

void drains_events_free(Jazari__EventsReply *r)
{
    for (size_t i = 0; i < r->n_events; i++)
        jazari__event__free_unpacked(r->events[i], NULL);
    free(r->events);
}

void drains_events(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    if (!req_admin(d, c, e, &w, "jz events"))
        return;
    Jazari__EventsReply r;
    drains_events_make(d, e->events_request, &r);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_EVENTS_REPLY, &r);
    drains_events_free(&r);
}

/* routes.c - the one table from a request to its handler, with where it
 * must be served (the leader, any controller, this node) and who may send
 * it; and the dispatch that applies the table before any handler runs.
 * The top of the request modules: it calls them, none calls it back. */
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "jzd.h"

typedef enum route_where {
    ROUTE_HERE,       /* this node answers */
    ROUTE_LEADER,     /* a write: the leader; a local client's is forwarded to it */
    ROUTE_LEADER_NOW, /* agents' traffic: the leader, never forwarded (they retarget) */
    ROUTE_STATE,      /* a read of the state: any controller whose copy is current; else forwarded */
    ROUTE_CONTROLLER, /* about the controllers: any controller, whatever its state; an agent forwards it */
    ROUTE_NODE,       /* about one node: a controller, or the node itself */
} route_where;

typedef enum route_who {
    ROUTE_ANYONE, /* the handler checks the caller where it matters (req_caller) */
    ROUTE_DAEMON, /* only a daemon of the network, speaking as an agent */
} route_who;

typedef struct route {
    Jazari__Envelope__BodyCase body;
    route_where where;
    route_who who;
    void (*fn)(jzd *d, net_conn *c, const Jazari__Envelope *e);
    void (*fn_msg)(jzd *d, net_conn *c, wire_msg *m); /* takes the message */
} route;

static const route routes[] = {
    {JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, jobs_submit, NULL},
    {JAZARI__ENVELOPE__BODY_CANCEL_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, jobops_cancel, NULL},
    {JAZARI__ENVELOPE__BODY_HOLD_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, jobs_cancel, NULL},
    {JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, jobs_cancel, NULL},
    {JAZARI__ENVELOPE__BODY_UPDATE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, jobops_update, NULL},
    {JAZARI__ENVELOPE__BODY_RELEASE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, jobs_cancel, NULL},
    {JAZARI__ENVELOPE__BODY_STEP_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, steps_launch, NULL},
    {JAZARI__ENVELOPE__BODY_RESERVE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, admin_reserve, NULL},
    {JAZARI__ENVELOPE__BODY_UNRESERVE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, admin_unreserve, NULL},
    {JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST, ROUTE_LEADER_NOW, ROUTE_ANYONE, live_heartbeat, NULL},
    {JAZARI__ENVELOPE__BODY_REGISTER_REQUEST, ROUTE_LEADER_NOW, ROUTE_ANYONE, live_register, NULL},
    {JAZARI__ENVELOPE__BODY_JOB_END_REQUEST, ROUTE_LEADER_NOW, ROUTE_DAEMON, run_job_end, NULL},
    {JAZARI__ENVELOPE__BODY_QUEUE_REQUEST, ROUTE_STATE, ROUTE_ANYONE, jobs_queue, NULL},
    {JAZARI__ENVELOPE__BODY_SHOW_REQUEST, ROUTE_STATE, ROUTE_ANYONE, jobs_show, NULL},
    {JAZARI__ENVELOPE__BODY_STATUS_REQUEST, ROUTE_CONTROLLER, ROUTE_ANYONE, nodes_status, NULL},
    {JAZARI__ENVELOPE__BODY_NODES_REQUEST, ROUTE_STATE, ROUTE_ANYONE, nodes_nodes, NULL},
    {JAZARI__ENVELOPE__BODY_RESERVATIONS_REQUEST, ROUTE_STATE, ROUTE_ANYONE, admin_reservations, NULL},
    {JAZARI__ENVELOPE__BODY_SHARES_REQUEST, ROUTE_STATE, ROUTE_ANYONE, admin_shares, NULL},
    {JAZARI__ENVELOPE__BODY_NODE_REQUEST, ROUTE_NODE, ROUTE_ANYONE, nodes_node, NULL},
    {JAZARI__ENVELOPE__BODY_TOPOLOGY_REQUEST, ROUTE_HERE, ROUTE_ANYONE, nodes_topology, NULL},
    {JAZARI__ENVELOPE__BODY_LOGS_REQUEST, ROUTE_HERE, ROUTE_ANYONE, NULL, logs_request},
    {JAZARI__ENVELOPE__BODY_PTY_INPUT_REQUEST, ROUTE_HERE, ROUTE_ANYONE, ptyin_request, NULL},
    {JAZARI__ENVELOPE__BODY_HEALTH_REQUEST, ROUTE_HERE, ROUTE_ANYONE, ghealth_request, NULL},
    {JAZARI__ENVELOPE__BODY_TOKEN_CREATE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, tokens_create, NULL},
    {JAZARI__ENVELOPE__BODY_TOKEN_LIST_REQUEST, ROUTE_STATE, ROUTE_ANYONE, tokens_list, NULL},
    {JAZARI__ENVELOPE__BODY_TOKEN_REVOKE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, tokens_revoke, NULL},
    {JAZARI__ENVELOPE__BODY_NODE_REVOKE_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, tokens_node_revoke, NULL},
    {JAZARI__ENVELOPE__BODY_RENEW_REQUEST, ROUTE_LEADER_NOW, ROUTE_DAEMON, tokens_renew, NULL},
    {JAZARI__ENVELOPE__BODY_AUDIT_REQUEST, ROUTE_STATE, ROUTE_ANYONE, audit_request, NULL},
    {JAZARI__ENVELOPE__BODY_DRAIN_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, drains_request, NULL},
    {JAZARI__ENVELOPE__BODY_EVENTS_REQUEST, ROUTE_STATE, ROUTE_ANYONE, drains_events, NULL},
    {JAZARI__ENVELOPE__BODY_HISTORY_REQUEST, ROUTE_STATE, ROUTE_ANYONE, acct_history, NULL},
    {JAZARI__ENVELOPE__BODY_USAGE_REQUEST, ROUTE_STATE, ROUTE_ANYONE, acct_usage, NULL},
    {JAZARI__ENVELOPE__BODY_INVOICE_REQUEST, ROUTE_STATE, ROUTE_ANYONE, acct_invoice, NULL},
    {JAZARI__ENVELOPE__BODY_BALANCE_REQUEST, ROUTE_STATE, ROUTE_ANYONE, acct_balance, NULL},
    {JAZARI__ENVELOPE__BODY_GRANT_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, acct_grant, NULL},
    /* The state as the leader applied it; the chunks of one backup are
     * read from where it was taken, the leader. */
    {JAZARI__ENVELOPE__BODY_BACKUP_REQUEST, ROUTE_LEADER, ROUTE_ANYONE, backup_request, NULL},
    {JAZARI__ENVELOPE__BODY_BURN_IN_REQUEST, ROUTE_HERE, ROUTE_ANYONE, burnin_request, NULL},
    {JAZARI__ENVELOPE__BODY_BURN_IN_RESULT, ROUTE_LEADER_NOW, ROUTE_DAEMON, burnin_result, NULL},
    /* jz web's token (an agent forwards it), a relayed GPU history */
    {JAZARI__ENVELOPE__BODY_WEB_REQUEST, ROUTE_HERE, ROUTE_ANYONE, NULL, web_request},
};

static const route *routes__find(Jazari__Envelope__BodyCase body)
{
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (routes[i].body == body)
            return &routes[i];
    return NULL;
}

/* Whether this daemon must send the request elsewhere: 1 forward it to
 * the leader, -1 answer NOT_LEADER, 0 serve it here. A request that was
 * itself forwarded is never forwarded again: its sender hears NOT_LEADER
 * and retries at the leader. */
static int routes__elsewhere(jzd *d, const route *r, const Jazari__Envelope *e)
{
    bool forwarded = e->caller != NULL;
    switch (r->where) {
    case ROUTE_LEADER:
        return req_is_leader(d) ? 0 : forwarded ? -1 : 1;
    case ROUTE_LEADER_NOW:
        return req_is_leader(d) ? 0 : -1;
    case ROUTE_STATE: {
        /* A follower whose disk is full may have stopped taking the log:
         * the leader answers for it. */
        bool current = d->ctl_running && !(d->ctl.disk_full && !req_is_leader(d));
        return current ? 0 : forwarded ? -1 : 1;
    }
    case ROUTE_CONTROLLER:
        return d->ctl_running ? 0 : forwarded ? -1 : 1;
    case ROUTE_NODE: {
        const char *want = e->node_request->name;
        bool other = want && *want && strcmp(want, d->cfg->name) != 0;
        return !d->ctl_running && !forwarded && other ? 1 : 0;
    }
    case ROUTE_HERE:
        break;
    }
    return 0;
}

/* The role-change hook: the one place where the leader's soft state is
 * reset when this controller starts leading, stops, or leads a new term
 * (seen.c resets its clocks by the same term). Checked on every request
 * and every tick, before anything uses that state. */
static void routes__role(jzd *d)
{
    uint64_t term = req_is_leader(d) ? d->ctl.raft.current_term : 0;
    if (term == d->led_term)
        return;
    if (term) {
        char what[128];
        snprintf(what, sizeof what, "%s leads (term %llu)", d->cfg->name, (unsigned long long)term);
        log_info("daemon", "%s", what);
        events_note(d, "leader", "info", d->cfg->name, -1, what);
    } else if (d->led_term)
        log_info("daemon", "%s no longer leads", d->cfg->name);
    d->led_term = term;
    run_role_changed(d);
    beat_wake(d); /* held heartbeats are answered (NOT_LEADER, when it stepped down) */
}

void routes_dispatch(jzd *d, net_conn *c, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    routes__role(d);
    log_debug("api", "%s: %s (request %llu)", c->peer, wire_body_name(e), (unsigned long long)e->request_id);
    const route *r = routes__find(e->body_case);
    if (!r) {
        if (e->body_case == JAZARI__ENVELOPE__BODY_HELLO)
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "hello was already exchanged on this connection");
        else
            req_error(c, e->request_id, JAZARI__ERROR_CODE__UNSUPPORTED, false,
                      "%s is not a request this daemon serves", wire_body_name(e));
        wire_msg_free(m);
        return;
    }
    int away = routes__elsewhere(d, r, e);
    if (away > 0) {
        fwd_request(d, c, m);
        return;
    }
    if (away < 0)
        req_not_leader(d, c, e->request_id);
    else if (c->closing)
        ;
    else if (r->who == ROUTE_DAEMON && !req_agent_peer(d, c))
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "%s comes from the nodes' daemons only", wire_body_name(e));
    else if (r->fn_msg) {
        r->fn_msg(d, c, m);
        return;
    } else
        r->fn(d, c, e);
    wire_msg_free(m);
}

void routes_tick(jzd *d)
{
    if (d->stopping)
        return;
    routes__role(d);
    trust_tick(d);
    if (d->ctl_running) {
        ctl_check_disk(&d->ctl);
        ctl_tune_timeouts(&d->ctl);
        ctl_check_ids(&d->ctl);
    }
    run_tick(d);
    web_tick(d);
    fwd_applied(d, false);
    live_check(d);
    agent_tick(d);
    burnin_tick(d);
    backup_tick(d);
}

/* live.c - the leader's side of liveness: heartbeats (answered by beat.c),
 * registrations, and nodes silent past node_timeout committed as down.
 * When each node was last heard of is seen.c's table.
 *
 * A site cut off (docs/national.md): a node silent past node_timeout is
 * unreachable: down for new jobs, its running jobs kept (NodeDown with
 * keep_jobs, log format 10). Still down lost_after (the policy) after
 * that, by the time in the state, its jobs are lost: a second NodeDown,
 * lose_kept (which does nothing to a node up again by the time it
 * applies). Its agent, hearing no leader for lost_after since
 * its last answered heartbeat (sent no later than node_timeout before the
 * node went down here), has stopped them by then (agent.c), so a job
 * never runs twice. Back before that, the node registers again and goes
 * on with them; what ended meanwhile is reported as it ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"

/* The round-trip bound of the connection a node was heard on, in ms. */
static uint32_t live__rtt_ms(net_conn *c)
{
    return (net_conn_rtt_bound_us(c) + 999) / 1000;
}

void live_heartbeat(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *name = e->heartbeat_request->name;
    if (!name || !*name) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "heartbeat without a node name");
        return;
    }
    if (!req_peer_is_node(d, c, name)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "a heartbeat of %s comes from that node's daemon only", name);
        return;
    }
    const fsm_node *n = fsm_node_get(&d->ctl.state, name);
    if (n && strcmp(n->state, "up") == 0) {
        /* Only nodes in the state get a clock: names from a stranger do
         * not grow the table. */
        uint32_t hold = e->heartbeat_request->wait_ms < BEAT_WAIT_MAX_MS ? e->heartbeat_request->wait_ms
                                                                         : BEAT_WAIT_MAX_MS;
        seen_heard(&d->seen, name, uv_now(&d->loop), live__rtt_ms(c), hold);
        if (e->heartbeat_request->health_sent)
            hloop_report(d, name, e->heartbeat_request->health, e->heartbeat_request->n_health);
    }
    beat_answer(d, c, e);
}

void live_register(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    Jazari__NodeRecord *rec = e->register_request->node;
    char err[200];
    topo *t = rec && rec->topology ? topo_from_pb(rec->topology, err, sizeof err) : NULL;
    if (!rec || !rec->name || !config_valid_name(rec->name) || !t) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "register: %s",
                  !t && rec && rec->topology ? err : "a node name and its topology are needed");
        topo_free(t);
        return;
    }
    topo_free(t);
    if (!req_peer_is_node(d, c, rec->name)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "node %s registers itself, with its own certificate", rec->name);
        return;
    }
    if ((rec->site && *rec->site && !config_valid_name(rec->site)) ||
        (rec->group && config_valid_names(rec->group, 1) != 0) ||
        (rec->labels && config_valid_names(rec->labels, CONFIG_LABELS_MAX) != 0)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "register %s: a bad site, group or labels (names of [A-Za-z0-9._-], at most %d labels)",
                  rec->name, CONFIG_LABELS_MAX);
        return;
    }
    const polsite *ps = &d->cfg->pol->sites;
    if (ps->n_sites && !polsite_declared(ps, rec->site)) {
        req_error(
            c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
            "register %s: its site '%s' is not one the policy declares: set the node's site to a declared "
            "one, or add `site %s` to the policy",
            rec->name, rec->site ? rec->site : "", rec->site && *rec->site ? rec->site : "NAME");
        return;
    }
    log_info("api", "node %s (site %s, %zu GPUs) registers from %s", rec->name, rec->site,
             rec->topology->n_gpus, c->peer);
    if (fsm_node_get(&d->ctl.state, rec->name))
        seen_heard(&d->seen, rec->name, uv_now(&d->loop), live__rtt_ms(c), 0);
    bool burn = burnin_wants(d, rec);
    Jazari__NodeRecord copy = *rec;
    copy.state = "up";
    copy.reason = "";
    copy.since_ms = 0;
    Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
    up.node = &copy;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    cmd.node_up = &up;
    ctl_propose(&d->ctl, &cmd, jobs_on_committed, req_wait(d, c, e));
    if (burn)
        burnin_joined(d, rec->name); /* the next entry: no job lands there first */
}

static void live__on_marked_down(void *arg, const ctl_outcome *o)
{
    (void)arg;
    (void)o;
}

static void live__duration(char *out, size_t len, uint64_t ms)
{
    if (ms % 3600000 == 0 && ms)
        snprintf(out, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms)
        snprintf(out, len, "%llum", (unsigned long long)(ms / 60000));
    else
        snprintf(out, len, "%.1fs", (double)ms / 1000.0);
}

/* keep: the node is unreachable, its jobs stay; lose: the jobs it kept
 * are given up (neither: down, jobs lost, the rule before format 10). */
static void live__propose_down(jzd *d, const char *name, const char *reason, bool keep, bool lose)
{
    Jazari__NodeDownCmd down = JAZARI__NODE_DOWN_CMD__INIT;
    down.name = (char *)name;
    down.reason = (char *)reason;
    down.keep_jobs = keep;
    down.lose_kept = lose;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    cmd.node_down = &down;
    ctl_propose(&d->ctl, &cmd, live__on_marked_down, NULL);
}

/* The policy's lost_after, where every voter reads a NodeDown that keeps
 * jobs; 0 (lost at once, as before format 10) otherwise. */
static uint64_t live__lost_after(jzd *d)
{
    d->lost_after_rule_ms = ctl_log_format(&d->ctl) >= 10 ? (uint64_t)d->cfg->pol->lost_after_ms : 0;
    return d->lost_after_rule_ms;
}

static void live__down(void *arg, const char *name, uint64_t silent_ms)
{
    jzd *d = arg;
    char reason[160], after[32];
    uint64_t lost_after = live__lost_after(d);
    live__duration(after, sizeof after, lost_after);
    if (lost_after)
        snprintf(reason, sizeof reason,
                 "unreachable: no heartbeat for %.1f s; its jobs are kept for %s (lost_after)",
                 (double)silent_ms / 1000.0, after);
    else
        snprintf(reason, sizeof reason, "no heartbeat for %.1f s", (double)silent_ms / 1000.0);
    log_warn("live", "node %s is down: %s", name, reason);
    live__propose_down(d, name, reason, lost_after > 0, false);
}

/* The unreachable nodes whose jobs are due to be lost: down for
 * lost_after by the state's clock (a new leader counts from when the node
 * went down, not from its election), still holding a running part. Once a
 * second; a proposal again before the last one applied is harmless (the
 * second finds nothing left to lose). */
static void live__lose_due(jzd *d, uint64_t now)
{
    uint64_t lost_after = live__lost_after(d);
    if (!lost_after || now - d->lose_checked_ms < 1000)
        return;
    d->lose_checked_ms = now;
    const fsm *f = &d->ctl.state;
    int64_t wall = ctl_now_ms(&d->ctl);
    enum { LIVE_LOSE_MAX = 64 }; /* nodes a scan proposes; more wait a second */
    const char *done[LIVE_LOSE_MAX];
    size_t n_done = 0;
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap && n_done < LIVE_LOSE_MAX; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs && n_done < LIVE_LOSE_MAX; a++) {
            const fsm_node *n = j->allocs[a].done ? NULL : fsm_node_get(f, j->allocs[a].node);
            if (!n || strcmp(n->state, "down") != 0 || n->since_ms + (int64_t)lost_after > wall)
                continue;
            bool again = false;
            for (size_t i = 0; i < n_done && !again; i++)
                again = done[i] == n->name;
            if (again)
                continue;
            char reason[160], after[32];
            live__duration(after, sizeof after, lost_after);
            snprintf(reason, sizeof reason, "unreachable for %s (lost_after): its jobs are lost", after);
            log_warn("live", "node %s: %s", n->name, reason);
            live__propose_down(d, n->name, reason, false, true);
            done[n_done++] = n->name;
        }
    }
}

void live_check(jzd *d)
{
    if (!d->ctl_running)
        return;
    uint64_t now = uv_now(&d->loop);
    bool leading = req_is_leader(d);
    const fsm *f = &d->ctl.state;
    const char **up = xcalloc(f->n_nodes + 1, sizeof *up);
    size_t n = 0;
    for (size_t i = 0; leading && i < f->n_nodes; i++)
        if (strcmp(f->nodes[i].state, "up") == 0)
            up[n++] = f->nodes[i].name;
    if (leading)
        seen_heard(&d->seen, d->cfg->name, now, 0, 0); /* the leader hears itself */
    seen_limit limit = {.timeout_ms = d->cfg->node_timeout_ms, .rtts = d->cfg->node_timeout_rtts};
    seen_check(&d->seen, leading ? d->ctl.raft.current_term : 0, now, &limit, up, n, live__down, d);
    free(up);
    if (leading) {
        live__lost_after(d);
        live__lose_due(d, now);
    }
}

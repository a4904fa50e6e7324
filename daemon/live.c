/* live.c - the leader's side of liveness: heartbeats (answered by beat.c),
 * registrations, and nodes silent past node_timeout committed as down.
 * When each node was last heard of is seen.c's table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"

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
        seen_heard(&d->seen, name, uv_now(&d->loop));
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
    log_info("api", "node %s (site %s, %zu GPUs) registers from %s", rec->name, rec->site,
             rec->topology->n_gpus, c->peer);
    if (fsm_node_get(&d->ctl.state, rec->name))
        seen_heard(&d->seen, rec->name, uv_now(&d->loop));
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

static void live__down(void *arg, const char *name, uint64_t silent_ms)
{
    jzd *d = arg;
    char reason[96];
    snprintf(reason, sizeof reason, "no heartbeat for %.1f s", (double)silent_ms / 1000.0);
    log_warn("live", "node %s is down: %s", name, reason);
    Jazari__NodeDownCmd down = JAZARI__NODE_DOWN_CMD__INIT;
    down.name = (char *)name;
    down.reason = reason;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    cmd.node_down = &down;
    ctl_propose(&d->ctl, &cmd, live__on_marked_down, NULL);
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
        seen_heard(&d->seen, d->cfg->name, now); /* the leader hears itself */
    seen_check(&d->seen, leading ? d->ctl.raft.current_term : 0, now, d->cfg->node_timeout_ms, up, n,
               live__down, d);
    free(up);
}

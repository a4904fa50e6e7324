/* agent.c - this node in the state: the leader registers itself in the
 * log; every other daemon is an agent that registers with the leader and
 * heartbeats to it in long polls, and runs what the replies list. */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"

static void agent__on_registered(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    d->registering = false;
    if (o->code == JAZARI__ERROR_CODE__OK)
        log_info("daemon", "node %s registered (%zu GPUs)", d->cfg->name, d->topo->n_gpus);
}

static Jazari__NodeRecord *agent__own_record(jzd *d, Jazari__NodeRecord *rec)
{
    jazari__node_record__init(rec);
    rec->name = d->cfg->name;
    rec->site = d->cfg->site;
    rec->group = d->cfg->group;
    rec->labels = d->cfg->labels;
    rec->address = d->cfg->listen;
    rec->state = "up";
    rec->topology = topo_to_pb(d->topo);
    return rec;
}

static void agent__on_register_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    d->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (!r)
        fwd_rotate(d);
    else if (r->body_case == JAZARI__ENVELOPE__BODY_REGISTER_REPLY)
        log_info("daemon", "node %s registered with the leader at %s", d->cfg->name, d->up.target);
    else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER)
        fwd_retarget(d, r->error->leader);
    else if (r->error)
        log_warn("daemon", "the leader refused to register this node: %s", r->error->message);
    wire_msg_free(reply);
    (void)why;
    (void)sent;
}

static void agent__on_heartbeat_reply(void *arg, wire_msg *reply, const char *why, bool sent);

/* How long the leader may hold our heartbeat: one interval, at most 2 s. */
static uint64_t agent__beat_wait(const jzd *d)
{
    return d->cfg->heartbeat_interval_ms < 2000 ? d->cfg->heartbeat_interval_ms : 2000;
}

static void agent__heartbeat_send(jzd *d)
{
    Jazari__HeartbeatRequest hb = JAZARI__HEARTBEAT_REQUEST__INIT;
    hb.name = (char *)d->cfg->name;
    hb.digest = d->beat_digest;
    hb.wait_ms = (uint32_t)agent__beat_wait(d);
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST;
    env.heartbeat_request = &hb;
    d->beating = true;
    d->beat_sent_ms = uv_now(&d->loop);
    uplink_request(&d->up, &env, agent__on_heartbeat_reply, d);
}

static void agent__on_heartbeat_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    d->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (!r) {
        log_debug("daemon", "heartbeat failed: %s", why);
        fwd_rotate(d);
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        fwd_retarget(d, r->error->leader);
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY && r->heartbeat_reply->known) {
        const Jazari__HeartbeatReply *hr = r->heartbeat_reply;
        run_sync(d, hr->run, hr->n_run, hr->applied);
        /* A long poll: ask again at once, unless the answer came too soon
         * for a held one (a leader that does not hold would spin us). */
        bool changed = hr->digest != d->beat_digest;
        d->beat_digest = hr->digest;
        if (!d->stopping && (changed || uv_now(&d->loop) - d->beat_sent_ms >= agent__beat_wait(d) / 2))
            agent__heartbeat_send(d);
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY && !r->heartbeat_reply->known &&
               !d->stopping) {
        Jazari__NodeRecord rec;
        agent__own_record(d, &rec);
        Jazari__RegisterRequest rr = JAZARI__REGISTER_REQUEST__INIT;
        rr.node = &rec;
        Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
        env.body_case = JAZARI__ENVELOPE__BODY_REGISTER_REQUEST;
        env.register_request = &rr;
        d->beating = true;
        uplink_request(&d->up, &env, agent__on_register_reply, d);
        topo_pb_free(rec.topology);
    }
    wire_msg_free(reply);
}

void agent_tick(jzd *d)
{
    if (d->stopping)
        return;
    if (req_is_leader(d)) {
        if (d->registering)
            return;
        const fsm_node *n = fsm_node_get(&d->ctl.state, d->cfg->name);
        if (n && strcmp(n->state, "up") == 0)
            return;
        Jazari__NodeRecord rec;
        agent__own_record(d, &rec);
        Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
        up.node = &rec;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
        cmd.node_up = &up;
        d->registering = true;
        ctl_propose(&d->ctl, &cmd, agent__on_registered, d);
        topo_pb_free(rec.topology);
        return;
    }
    /* Every other daemon is an agent of the leader. */
    if (d->beating)
        return;
    fwd_retarget(d, NULL);
    agent__heartbeat_send(d);
}

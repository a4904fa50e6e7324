/* agent.c - this node in the state: the leader registers itself in the
 * log; every other daemon is an agent that registers with the leader and
 * heartbeats to it in long polls, and runs what the replies list. */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"

/* Health conditions go whole at least this often (a new leader knows
 * nothing of them). */
#define AGENT_HEALTH_REFRESH_MS 30000

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

/* This node's health conditions as the leader takes them (GPUs by the
 * scheduler's index; one the topology lacks is left out): free with
 * ghealth_pb_free. */
static Jazari__HealthCondition **agent__health(jzd *d, size_t *n)
{
    size_t all;
    Jazari__HealthCondition **p = ghealth_pb(d, &all);
    *n = 0;
    for (size_t i = 0; i < all && *n < HLOOP_CONDS_MAX; i++) {
        int32_t gpu = p[i]->gpu < 0 ? -1 : ghealth_topo_gpu(d, p[i]->gpu);
        if (p[i]->gpu >= 0 && gpu < 0)
            continue;
        p[i]->gpu = gpu;
        p[(*n)++] = p[i];
    }
    return p;
}

/* Whether the conditions go whole with this report: they changed since
 * the leader acknowledged them, or a while passed (a new leader learns
 * them within that). */
static bool agent__health_due(const jzd *d, uint64_t acked, uint64_t now)
{
    return acked != ghealth_changes(d) + 1 || now - d->health_sent_ms >= AGENT_HEALTH_REFRESH_MS;
}

static void agent__heartbeat_send(jzd *d)
{
    Jazari__HeartbeatRequest hb = JAZARI__HEARTBEAT_REQUEST__INIT;
    hb.name = (char *)d->cfg->name;
    hb.digest = d->beat_digest;
    hb.wait_ms = (uint32_t)agent__beat_wait(d);
    uint64_t now = uv_now(&d->loop);
    Jazari__HealthCondition **conds = NULL;
    if (agent__health_due(d, d->health_acked, now)) {
        hb.health_sent = true;
        conds = agent__health(d, &hb.n_health);
        hb.health = conds;
        d->health_sent_ms = now;
        d->health_inflight = ghealth_changes(d) + 1;
    } else {
        d->health_inflight = 0;
    }
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST;
    env.heartbeat_request = &hb;
    d->beating = true;
    d->beat_sent_ms = now;
    uplink_request(&d->up, &env, agent__on_heartbeat_reply, d);
    ghealth_pb_free(conds);
}

/* The leader's own node: its conditions straight into the loop. */
static void agent__health_own(jzd *d)
{
    uint64_t now = uv_now(&d->loop), term = d->ctl.raft.current_term;
    if (d->health_term == term && !agent__health_due(d, d->health_own, now))
        return;
    size_t n;
    Jazari__HealthCondition **conds = agent__health(d, &n);
    d->health_term = term;
    d->health_own = ghealth_changes(d) + 1;
    d->health_sent_ms = now;
    hloop_report(d, d->cfg->name, conds, n);
    ghealth_pb_free(conds);
}

/* The leader's run list: started, stopped, and asked for again. */
static void agent__run_list(jzd *d, const Jazari__HeartbeatReply *hr)
{
    if (d->health_inflight)
        d->health_acked = d->health_inflight;
    run_sync(d, hr->run, hr->n_run, hr->applied);
    /* A long poll: ask again at once, unless the answer came too soon
     * for a held one (a leader that does not hold would spin us). */
    bool changed = hr->digest != d->beat_digest;
    d->beat_digest = hr->digest;
    if (!d->stopping && (changed || uv_now(&d->loop) - d->beat_sent_ms >= agent__beat_wait(d) / 2))
        agent__heartbeat_send(d);
}

/* The leader no longer has this node up: register again. */
static void agent__register_again(jzd *d)
{
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

static void agent__on_heartbeat_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    d->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (!r) {
        log_debug("daemon", "heartbeat failed: %s", why);
        d->health_acked = 0; /* another leader may answer next */
        fwd_rotate(d);
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        d->health_acked = 0;
        fwd_retarget(d, r->error->leader);
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY) {
        /* A leader answered: the fence counts from when this was sent
         * (the leader heard it no sooner). */
        d->leader_heard_ms = d->beat_sent_ms;
        d->lost_after_ms = r->heartbeat_reply->lost_after_ms;
        d->fenced = false;
        if (r->heartbeat_reply->known)
            agent__run_list(d, r->heartbeat_reply);
        else if (!d->stopping)
            agent__register_again(d);
    }
    wire_msg_free(reply);
}

/* An agent that hears no leader for lost_after stops its jobs: the
 * leader requeues them no sooner than node_timeout later (live.c). Until
 * a leader has answered, the local policy's lost_after stands in (an
 * agent restarted during a cut still fences). */
static void agent__fence(jzd *d, uint64_t now)
{
    if (!d->leader_heard_ms) {
        d->leader_heard_ms = now;
        d->lost_after_ms = (uint64_t)d->cfg->pol->lost_after_ms;
    }
    if (d->fenced || !d->lost_after_ms || now - d->leader_heard_ms < d->lost_after_ms)
        return;
    d->fenced = true;
    run_fence(d, now - d->leader_heard_ms);
}

void agent_tick(jzd *d)
{
    if (d->stopping)
        return;
    if (req_is_leader(d)) {
        d->leader_heard_ms = uv_now(&d->loop); /* it hears itself */
        d->fenced = false;
        if (d->registering)
            return;
        const fsm_node *n = fsm_node_get(&d->ctl.state, d->cfg->name);
        if (n && strcmp(n->state, "up") == 0) {
            agent__health_own(d);
            return;
        }
        Jazari__NodeRecord rec;
        agent__own_record(d, &rec);
        Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
        up.node = &rec;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
        cmd.node_up = &up;
        d->registering = true;
        bool burn = burnin_wants(d, &rec);
        ctl_propose(&d->ctl, &cmd, agent__on_registered, d);
        if (burn)
            burnin_joined(d, rec.name);
        topo_pb_free(rec.topology);
        return;
    }
    /* Every other daemon is an agent of the leader. */
    agent__fence(d, uv_now(&d->loop));
    if (d->beating)
        return;
    fwd_retarget(d, NULL);
    agent__heartbeat_send(d);
}

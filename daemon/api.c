/* api.c - the requests of jz and of other daemons, after the hello. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "jzd.h"
#include "node/topo_pb.h"

/* --- waiting for the log -------------------------------------------------------- */

static jzd_wait *api__wait(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    jzd_session *s = c->user;
    jzd_wait *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->d = d;
    w->conn = c;
    w->request_id = e->request_id;
    w->kind = e->body_case;
    w->next = s->waits;
    if (s->waits)
        s->waits->prev = w;
    s->waits = w;
    return w;
}

/* Takes w off its session; returns its connection, or NULL if it closed. */
static net_conn *api__unwait(jzd_wait *w)
{
    net_conn *c = w->conn;
    if (c) {
        jzd_session *s = c->user;
        if (w->prev)
            w->prev->next = w->next;
        else
            s->waits = w->next;
        if (w->next)
            w->next->prev = w->prev;
    }
    return c;
}

void api_session_closed(jzd_session *s)
{
    for (jzd_wait *w = s->waits; w; w = w->next)
        w->conn = NULL;
    s->waits = NULL;
}

static void api__reply(net_conn *c, uint64_t id, Jazari__Envelope__BodyCase body, void *msg)
{
    wire_reply r;
    wire_reply_init(&r, id, JAZARI__ERROR_CODE__OK, NULL);
    r.env.body_case = body;
    /* Every body is a pointer in the same union. */
    r.env.hello = msg;
    net_conn_send(c, &r.env);
}

/* --- who may write ------------------------------------------------------------------ */

/* The caller's identity for a request that changes state: from the Unix
 * socket's peer credentials. */
static bool api__caller(net_conn *c, const Jazari__Envelope *e, uid_t *uid, gid_t *gid, char *user, size_t len)
{
    if (c->kind != NET_UNIX || !c->have_creds) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                        "%s needs the daemon's local socket (remote clients need TLS, not yet served)",
                        wire_body_name(e));
        return false;
    }
    *uid = c->uid;
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    if (getpwuid_r(c->uid, &pw, pwbuf, sizeof pwbuf, &res) == 0 && res) {
        snprintf(user, len, "%s", pw.pw_name);
        *gid = pw.pw_gid;
    } else {
        snprintf(user, len, "uid%u", (unsigned)c->uid);
        *gid = (gid_t)-1;
    }
    return true;
}

/* A write goes to the leader. */
static bool api__leader(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    if (!d->ctl_running) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                        "%s is an agent: run jz on a controller (forwarding from agents is not served yet)",
                        d->cfg->name);
        return false;
    }
    if (!ctl_is_leader(&d->ctl)) {
        const ctl_peer *l = ctl_leader(&d->ctl);
        if (l)
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_LEADER, false,
                            "%s is not the leader: the leader is %s at %s", d->cfg->name, l->name, l->address);
        else
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                            "no leader is elected yet: a majority of the controllers must be up; retry");
        return false;
    }
    return true;
}

/* A read is served from this controller's copy of the state. */
static bool api__state(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    if (d->ctl_running)
        return true;
    jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                    "%s is an agent: run jz on a controller (forwarding from agents is not served yet)",
                    d->cfg->name);
    return false;
}

/* --- jobs -------------------------------------------------------------------------------- */

static void api__on_submitted(void *arg, const ctl_outcome *o)
{
    jzd_wait *w = arg;
    net_conn *c = api__unwait(w);
    if (c) {
        if (o->code != JAZARI__ERROR_CODE__OK) {
            jzd_reply_error(c, w->request_id, o->code, false, "%s", o->message);
        } else {
            Jazari__SubmitReply r = JAZARI__SUBMIT_REPLY__INIT;
            r.id = o->first_id;
            api__reply(c, w->request_id, JAZARI__ENVELOPE__BODY_SUBMIT_REPLY, &r);
        }
    }
    free(w);
}

static void api__submit(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    uid_t uid;
    gid_t gid;
    char user[64];
    const Jazari__JobSpec *spec = e->submit_request->spec;
    if (!api__caller(c, e, &uid, &gid, user, sizeof user) || !api__leader(d, c, e))
        return;
    char err[256];
    if (!spec) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "submit without a job");
        return;
    }
    if (fsm_validate_spec(&d->ctl.state, spec, err, sizeof err) != 0) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", err);
        return;
    }
    Jazari__Job job = JAZARI__JOB__INIT;
    job.spec = (Jazari__JobSpec *)spec;
    job.user = user;
    job.uid = (uint32_t)uid;
    job.gid = (uint32_t)gid;
    Jazari__Job *jobs[] = {&job};
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = jobs;
    sc.n_jobs = 1;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    cmd.submit = &sc;
    ctl_propose(&d->ctl, &cmd, api__on_submitted, api__wait(d, c, e));
}

static void api__on_cancelled(void *arg, const ctl_outcome *o)
{
    jzd_wait *w = arg;
    net_conn *c = api__unwait(w);
    if (c) {
        if (o->code != JAZARI__ERROR_CODE__OK) {
            jzd_reply_error(c, w->request_id, o->code, false, "%s", o->message);
        } else {
            Jazari__CancelReply r = JAZARI__CANCEL_REPLY__INIT;
            r.cancelled = o->res->counts[o->index];
            api__reply(c, w->request_id, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &r);
        }
    }
    free(w);
}

static void api__cancel(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    uid_t uid;
    gid_t gid;
    char user[64];
    const Jazari__CancelRequest *req = e->cancel_request;
    if (!api__caller(c, e, &uid, &gid, user, sizeof user) || !api__leader(d, c, e))
        return;
    if (req->n_ids == 0 || req->n_ids > 10000) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "cancel: give 1 to 10000 job ids");
        return;
    }
    /* Checked here for a clear answer; checked again when applied. */
    for (size_t i = 0; i < req->n_ids; i++) {
        const fsm_job *j = fsm_job_get(&d->ctl.state, req->ids[i]);
        if (!j) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                            (unsigned long long)req->ids[i]);
            return;
        }
        if (uid != 0 && j->uid != uid) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                            "job %llu belongs to %s, not to %s", (unsigned long long)j->id, j->user, user);
            return;
        }
    }
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    cc.ids = req->ids;
    cc.n_ids = req->n_ids;
    cc.uid = (uint32_t)uid;
    cc.admin = uid == 0;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_CANCEL;
    cmd.cancel = &cc;
    ctl_propose(&d->ctl, &cmd, api__on_cancelled, api__wait(d, c, e));
}

/* Jobs as messages: each holds a decoded spec to free afterwards. */
typedef struct api__jobs {
    Jazari__Job *jobs;
    Jazari__Job **ptrs;
    Jazari__JobAlloc *allocs;
    Jazari__JobAlloc **alloc_ptrs;
    size_t n;
} api__jobs;

static void api__jobs_fill(api__jobs *a, const fsm_job *const *list, size_t n)
{
    size_t nallocs = 0;
    for (size_t i = 0; i < n; i++)
        nallocs += list[i]->n_allocs;
    a->n = n;
    a->jobs = calloc(n ? n : 1, sizeof *a->jobs);
    a->ptrs = calloc(n ? n : 1, sizeof *a->ptrs);
    a->allocs = calloc(nallocs ? nallocs : 1, sizeof *a->allocs);
    a->alloc_ptrs = calloc(nallocs ? nallocs : 1, sizeof *a->alloc_ptrs);
    if (!a->jobs || !a->ptrs || !a->allocs || !a->alloc_ptrs)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        fsm_job_to_pb(list[i], &a->jobs[i], &a->allocs[k], &a->alloc_ptrs[k]);
        k += list[i]->n_allocs;
        a->ptrs[i] = &a->jobs[i];
    }
}

static void api__jobs_free(api__jobs *a)
{
    for (size_t i = 0; i < a->n; i++)
        jazari__job_spec__free_unpacked(a->jobs[i].spec, NULL);
    free(a->jobs);
    free(a->ptrs);
    free(a->allocs);
    free(a->alloc_ptrs);
}

/* The largest queue one reply carries (replies are bounded like frames). */
#define API_QUEUE_MAX 50000

static void api__queue(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    if (!api__state(d, c, e))
        return;
    const fsm *f = &d->ctl.state;
    bool all = e->queue_request->all;
    size_t cap = 0, n = 0;
    const fsm_job **list = NULL;
    for (uint64_t i = 0; i < f->jobs_cap && n < API_QUEUE_MAX; i++) {
        const fsm_job *j = f->jobs[i];
        if (!j || (!all && !fsm_job_active(j)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            const fsm_job **p = realloc(list, cap * sizeof *p);
            if (!p)
                abort();
            list = p;
        }
        list[n++] = j;
    }
    api__jobs a;
    api__jobs_fill(&a, list, n);
    Jazari__QueueReply r = JAZARI__QUEUE_REPLY__INIT;
    r.jobs = a.ptrs;
    r.n_jobs = a.n;
    api__reply(c, e->request_id, JAZARI__ENVELOPE__BODY_QUEUE_REPLY, &r);
    api__jobs_free(&a);
    free(list);
}

static void api__show(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    if (!api__state(d, c, e))
        return;
    const fsm_job *j = fsm_job_get(&d->ctl.state, e->show_request->id);
    if (!j) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                        (unsigned long long)e->show_request->id);
        return;
    }
    api__jobs a;
    api__jobs_fill(&a, &j, 1);
    Jazari__ShowReply r = JAZARI__SHOW_REPLY__INIT;
    r.job = &a.jobs[0];
    api__reply(c, e->request_id, JAZARI__ENVELOPE__BODY_SHOW_REPLY, &r);
    api__jobs_free(&a);
}

/* --- nodes and the network ------------------------------------------------------------------ */

static void api__node_info(const fsm_node *n, Jazari__NodeInfo *ni)
{
    jazari__node_info__init(ni);
    ni->name = n->name;
    ni->site = n->site ? n->site : "";
    ni->state = n->state;
    ni->gpus_total = (uint32_t)n->topo->n_gpus;
    ni->gpus_free = (uint32_t)n->topo->n_gpus; /* until jobs hold GPUs */
}

static void api__local_node_info(jzd *d, Jazari__NodeInfo *ni)
{
    jazari__node_info__init(ni);
    ni->name = d->cfg->name;
    ni->site = d->cfg->site;
    ni->state = "up";
    ni->gpus_total = (uint32_t)d->topo->n_gpus;
    ni->gpus_free = (uint32_t)d->topo->n_gpus;
}

static void api__node(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *want = e->node_request->name;
    const fsm_node *n = d->ctl_running && want && *want ? fsm_node_get(&d->ctl.state, want) : NULL;
    Jazari__NodeInfo ni;
    const topo *t;
    if (n) {
        api__node_info(n, &ni);
        t = n->topo;
    } else if (!want || !*want || strcmp(want, d->cfg->name) == 0) {
        api__local_node_info(d, &ni);
        t = d->topo;
    } else {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                        "node '%.64s' not found (jz nodes lists them)", want);
        return;
    }
    ni.topology = topo_to_pb(t);
    Jazari__NodeReply r = JAZARI__NODE_REPLY__INIT;
    r.node = &ni;
    api__reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODE_REPLY, &r);
    topo_pb_free(ni.topology);
}

static void api__nodes(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    size_t n = d->ctl_running ? d->ctl.state.n_nodes : 0;
    Jazari__NodeInfo *infos = calloc(n + 1, sizeof *infos);
    Jazari__NodeInfo **ptrs = calloc(n + 1, sizeof *ptrs);
    if (!infos || !ptrs)
        abort();
    for (size_t i = 0; i < n; i++) {
        api__node_info(&d->ctl.state.nodes[i], &infos[i]);
        ptrs[i] = &infos[i];
    }
    /* An agent (or a controller before its node is registered) knows itself. */
    if (n == 0) {
        api__local_node_info(d, &infos[0]);
        ptrs[0] = &infos[0];
        n = 1;
    }
    Jazari__NodesReply r = JAZARI__NODES_REPLY__INIT;
    r.nodes = ptrs;
    r.n_nodes = n;
    api__reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODES_REPLY, &r);
    free(infos);
    free(ptrs);
}

static void api__status(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    if (!api__state(d, c, e))
        return;
    ctl *k = &d->ctl;
    Jazari__StatusReply r = JAZARI__STATUS_REPLY__INIT;
    Jazari__ControllerInfo infos[CTL_MAX_PEERS], *ptrs[CTL_MAX_PEERS];
    const ctl_peer *leader = ctl_leader(k);
    r.leader = leader ? (char *)leader->name : "";
    r.term = k->raft.current_term;
    r.commit_index = k->raft.commit_index;
    for (unsigned i = 0; i < k->n_peers; i++) {
        jazari__controller_info__init(&infos[i]);
        infos[i].name = k->peers[i].name;
        infos[i].address = k->peers[i].address;
        if (k->peers[i].id == k->id)
            infos[i].role = (char *)ctl_role_name(k);
        else if (leader && leader->id == k->peers[i].id)
            infos[i].role = "leader";
        else
            infos[i].role = "follower";
        ptrs[i] = &infos[i];
    }
    r.controllers = ptrs;
    r.n_controllers = k->n_peers;
    for (size_t i = 0; i < k->state.n_nodes; i++)
        r.nodes_up += strcmp(k->state.nodes[i].state, "up") == 0;
    r.nodes_total = (uint32_t)k->state.n_nodes;
    r.jobs_active = k->state.n_active;
    api__reply(c, e->request_id, JAZARI__ENVELOPE__BODY_STATUS_REPLY, &r);
}

/* --- this node in the state --------------------------------------------------------------------- */

static void api__on_registered(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    d->registering = false;
    if (o->code == JAZARI__ERROR_CODE__OK)
        log_info("daemon", "node %s registered (%zu GPUs)", d->cfg->name, d->topo->n_gpus);
}

void api_tick(jzd *d)
{
    if (!d->ctl_running || d->registering || !ctl_is_leader(&d->ctl))
        return;
    const fsm_node *n = fsm_node_get(&d->ctl.state, d->cfg->name);
    if (n && strcmp(n->state, "up") == 0)
        return;
    Jazari__NodeRecord rec = JAZARI__NODE_RECORD__INIT;
    rec.name = d->cfg->name;
    rec.site = d->cfg->site;
    rec.address = d->cfg->listen;
    rec.state = "up";
    rec.topology = topo_to_pb(d->topo);
    Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
    up.node = &rec;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    cmd.node_up = &up;
    d->registering = true;
    ctl_propose(&d->ctl, &cmd, api__on_registered, d);
    topo_pb_free(rec.topology);
}

/* --- dispatch ---------------------------------------------------------------------------------------- */

void api_dispatch(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    log_debug("api", "%s: %s (request %llu)", c->peer, wire_body_name(e), (unsigned long long)e->request_id);
    switch (e->body_case) {
    case JAZARI__ENVELOPE__BODY_TOPOLOGY_REQUEST: {
        Jazari__TopologyReply r = JAZARI__TOPOLOGY_REPLY__INIT;
        r.topology = topo_to_pb(d->topo);
        api__reply(c, e->request_id, JAZARI__ENVELOPE__BODY_TOPOLOGY_REPLY, &r);
        topo_pb_free(r.topology);
        break;
    }
    case JAZARI__ENVELOPE__BODY_NODE_REQUEST:
        api__node(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_NODES_REQUEST:
        api__nodes(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST:
        api__submit(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_CANCEL_REQUEST:
        api__cancel(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_QUEUE_REQUEST:
        api__queue(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_SHOW_REQUEST:
        api__show(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_STATUS_REQUEST:
        api__status(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_HELLO:
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                        "hello was already exchanged on this connection");
        break;
    default:
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__UNSUPPORTED, false,
                        "%s is not a request this daemon serves", wire_body_name(e));
        break;
    }
}

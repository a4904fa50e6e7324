/* api.c - the requests of jz and of other daemons, after the hello. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "node/topo_pb.h"

/* --- waiting for the log -------------------------------------------------------- */

jzd_wait *api_wait(jzd *d, net_conn *c, const Jazari__Envelope *e)
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
net_conn *api_unwait(jzd_wait *w)
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

void api_reply(net_conn *c, uint64_t id, Jazari__Envelope__BodyCase body, void *msg)
{
    wire_reply r;
    wire_reply_init(&r, id, JAZARI__ERROR_CODE__OK, NULL);
    r.env.body_case = body;
    /* Every body is a pointer in the same union. */
    r.env.hello = msg;
    net_conn_send(c, &r.env);
}

/* --- who may write ------------------------------------------------------------------ */

/* The identity of a local caller, from the Unix socket's peer credentials. */
static void api__local_caller(const net_conn *c, Jazari__Caller *out, char *user, size_t len)
{
    jazari__caller__init(out);
    out->uid = (uint32_t)c->uid;
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    if (getpwuid_r(c->uid, &pw, pwbuf, sizeof pwbuf, &res) == 0 && res) {
        snprintf(user, len, "%s", pw.pw_name);
        out->gid = (uint32_t)pw.pw_gid;
    } else {
        snprintf(user, len, "uid%u", (unsigned)c->uid);
        out->gid = (uint32_t)-1;
    }
    out->user = user;
}

/* Whether host:port names the host that c comes from. */
static bool api__same_host(const net_conn *c, const char *address)
{
    char host[256];
    uint16_t port;
    const char *colon = strrchr(c->peer, ':');
    if (!address || !colon || config_parse_hostport(address, host, sizeof host, &port) != 0)
        return false;
    size_t n = (size_t)(colon - c->peer);
    return strlen(host) == n && strncmp(host, c->peer, n) == 0;
}

/* A daemon peer whose word about a caller is taken: one connecting from
 * the host of a controller or of a registered node. (Until the TLS layer
 * proves that a peer belongs to the network, its address is the proof.) */
static bool api__trusted_peer(jzd *d, const net_conn *c)
{
    for (int i = 0; i < d->n_peers; i++)
        if (api__same_host(c, d->peers[i].address))
            return true;
    for (size_t i = 0; d->ctl_running && i < d->ctl.state.n_nodes; i++)
        if (api__same_host(c, d->ctl.state.nodes[i].address))
            return true;
    return false;
}

/* A daemon of the network speaking as an agent (not a client). */
static bool api__agent_peer(jzd *d, const net_conn *c)
{
    const jzd_session *s = c->user;
    return c->kind != NET_UNIX && s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && api__trusted_peer(d, c);
}

/* The caller's identity for a request that changes state: the Unix
 * socket's peer credentials, or the identity a trusted daemon peer
 * forwarded. */
bool api_caller(jzd *d, net_conn *c, const Jazari__Envelope *e, uid_t *uid, gid_t *gid, char *user,
                size_t len)
{
    const jzd_session *s = c->user;
    if (c->kind == NET_UNIX && c->have_creds) {
        Jazari__Caller k;
        api__local_caller(c, &k, user, len);
        *uid = k.uid;
        *gid = k.gid;
        return true;
    }
    if (e->caller && s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && e->caller->user && *e->caller->user &&
        api__trusted_peer(d, c)) {
        *uid = e->caller->uid;
        *gid = e->caller->gid;
        snprintf(user, len, "%s", e->caller->user);
        return true;
    }
    log_info("api", "%s from %s refused: not a local client, nor a trusted daemon speaking for one%s",
             wire_body_name(e), c->peer, e->caller ? "" : " (no caller)");
    jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                    "%s needs the daemon's local socket (remote clients need TLS, not yet served)",
                    wire_body_name(e));
    return false;
}

bool api_is_leader(jzd *d)
{
    return d->ctl_running && ctl_is_leader(&d->ctl);
}

/* NOT_LEADER, naming the leader when one is known. */
void api_not_leader(jzd *d, net_conn *c, uint64_t id)
{
    const ctl_peer *l = d->ctl_running ? ctl_leader(&d->ctl) : NULL;
    wire_reply r;
    if (l) {
        wire_reply_init(&r, id, JAZARI__ERROR_CODE__NOT_LEADER,
                        "%s is not the leader: the leader is %s at %s", d->cfg->name, l->name, l->address);
        r.error.leader = (char *)l->address;
    } else {
        wire_reply_init(&r, id, JAZARI__ERROR_CODE__UNAVAILABLE,
                        "no leader is elected yet: a majority of the controllers must be up; retry");
    }
    net_conn_send(c, &r.env);
}

/* --- jobs -------------------------------------------------------------------------------- */

/* A request's entry was applied (or could not be): answer it. */
static void api__on_committed(void *arg, const ctl_outcome *o)
{
    jzd_wait *w = arg;
    jzd *d = w->d;
    net_conn *c = api_unwait(w);
    bool ok = o->code == JAZARI__ERROR_CODE__OK;
    if (c && !ok) {
        jzd_reply_error(c, w->request_id, o->code, false, "%s", o->message);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST) {
        Jazari__SubmitReply r = JAZARI__SUBMIT_REPLY__INIT;
        r.id = o->first_id;
        r.count = o->res->counts[o->index];
        api_reply(c, w->request_id, JAZARI__ENVELOPE__BODY_SUBMIT_REPLY, &r);
    } else if (c && (w->kind == JAZARI__ENVELOPE__BODY_CANCEL_REQUEST ||
                     w->kind == JAZARI__ENVELOPE__BODY_RELEASE_REQUEST)) {
        Jazari__CancelReply r = JAZARI__CANCEL_REPLY__INIT;
        r.cancelled = o->res->counts[o->index];
        api_reply(c, w->request_id, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &r);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_REGISTER_REQUEST) {
        Jazari__RegisterReply r = JAZARI__REGISTER_REPLY__INIT;
        api_reply(c, w->request_id, JAZARI__ENVELOPE__BODY_REGISTER_REPLY, &r);
    }
    bool cancelled = ok && w->kind == JAZARI__ENVELOPE__BODY_CANCEL_REQUEST;
    bool may_start = ok && !cancelled;
    free(w);
    /* A cancelled job's processes here go now; a new job, a released one or
     * a new node may start something. */
    if (cancelled)
        run_sync_local(d);
    if (may_start)
        run_schedule(d);
}

static int64_t api__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The policy's word on a submission: its account, QoS and reservation. */
static int api__policy_check(jzd *d, net_conn *c, const Jazari__Envelope *e, const Jazari__JobSpec *spec,
                             const char *account, uid_t uid, const char *user)
{
    const pol *po = d->cfg->pol;
    if (!pol_account_known(po, account)) {
        jzd_reply_error(
            c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
            "job refused: account '%.100s' is not in the policy file (jz shares lists the accounts)",
            account);
        return -1;
    }
    if (!pol_account_allows(po, account, user, uid == 0)) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                        "job refused: %s may not charge account '%.100s' (its users are listed in the policy "
                        "file: ask your admins)",
                        user, account);
        return -1;
    }
    int q = pol_qos_find(po, spec->qos);
    if (q >= 0 && !pol_qos_allows(po, q, account, uid == 0)) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                        "job refused: QoS %s is for the accounts %s, not for '%.100s'", po->qos[q].name,
                        po->qos[q].accounts, account);
        return -1;
    }
    if (q < 0) {
        buf names = BUF_INIT;
        for (size_t i = 0; i < po->n_qos; i++)
            buf_printf(&names, "%s%s", i ? ", " : "", po->qos[i].name);
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                        "job refused: no QoS '%.64s': one of %s", spec->qos, buf_str(&names));
        buf_free(&names);
        return -1;
    }
    if (spec->reservation && *spec->reservation) {
        const fsm_resv *r = fsm_resv_get(&d->ctl.state, spec->reservation);
        if (!r) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                            "job refused: no reservation '%.64s' (jz reservations lists them)",
                            spec->reservation);
            return -1;
        }
        if (uid != 0 && !fsm_resv_member(r, account, user)) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                            "job refused: reservation %s is for account '%s'%s, not for %s in '%s'", r->name,
                            r->account ? r->account : "", r->n_users ? " and its listed users" : "", user,
                            account);
            return -1;
        }
        uint32_t most = 0, wide = 0; /* its biggest part; parts as big as the job asks */
        for (size_t i = 0; i < r->n_parts; i++) {
            most = r->parts[i].gpus > most ? r->parts[i].gpus : most;
            wide += r->parts[i].gpus >= spec->gpus_per_node;
        }
        int64_t from = r->start_ms > api__now_ms() ? r->start_ms : api__now_ms();
        const char *bad = NULL;
        char why[200];
        if (!spec->time_limit_s || (int64_t)spec->time_limit_s * 1000 > r->end_ms - from) {
            snprintf(why, sizeof why,
                     "a job in reservation %s needs a --time of at most %lld s (when it ends)", r->name,
                     (long long)((r->end_ms - from) / 1000));
            bad = why;
        } else if (spec->gpus_per_node > most || (spec->nodes ? spec->nodes : 1) > wide) {
            snprintf(why, sizeof why, "reservation %s holds %zu nodes with at most %u GPUs each (%u with %u)",
                     r->name, r->n_parts, most, wide, spec->gpus_per_node);
            bad = why;
        }
        if (bad) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", bad);
            return -1;
        }
    }
    return 0;
}

static void api__submit(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    uid_t uid;
    gid_t gid;
    char user[64];
    const Jazari__JobSpec *spec = e->submit_request->spec;
    if (!api_caller(d, c, e, &uid, &gid, user, sizeof user))
        return;
    char err[256];
    if (!spec) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "submit without a job");
        return;
    }
    /* Jobs run as their user only when the daemons run as root; otherwise
     * they would run as the daemon's user, so only that user may submit. */
    if (geteuid() != 0 && uid != geteuid()) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                        "jazarid runs as uid %u, not as root: only that user may submit (you are %s)",
                        (unsigned)geteuid(), user);
        return;
    }
    if (fsm_validate_spec(&d->ctl.state, spec, err, sizeof err) != 0) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", err);
        return;
    }
    const char *account = spec->account && *spec->account ? spec->account : d->cfg->pol->default_account;
    if (api__policy_check(d, c, e, spec, account, uid, user) != 0)
        return;
    /* An array is one job per index, submitted in one command. */
    static uint32_t idx[FSM_ARRAY_MAX];
    size_t n = 1;
    uint32_t throttle = 0;
    bool array = spec->array && *spec->array;
    if (array && fsm_array_parse(spec->array, idx, FSM_ARRAY_MAX, &n, &throttle, err, sizeof err) != 0) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "job refused: %s", err);
        return;
    }
    if (array && jazari__job_spec__get_packed_size(spec) * n > FSM_ARRAY_BYTES_MAX) {
        jzd_reply_error(
            c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
            "job refused: %zu tasks of this job are over %u MiB: a smaller array, or a script that "
            "reads its task id",
            n, FSM_ARRAY_BYTES_MAX >> 20);
        return;
    }
    Jazari__Job *jobs = xcalloc(n, sizeof *jobs);
    Jazari__Job **ptrs = xcalloc(n, sizeof(Jazari__Job *));
    Jazari__JobSpec *specs = xcalloc(n, sizeof *specs);
    for (size_t i = 0; i < n; i++) {
        jazari__job__init(&jobs[i]);
        specs[i] = *spec;
        specs[i].account = (char *)account;
        if (array) {
            specs[i].array = "";
            specs[i].array_task = true;
            specs[i].array_index = idx[i];
            specs[i].array_max = throttle;
        }
        jobs[i].spec = &specs[i];
        jobs[i].user = user;
        jobs[i].uid = (uint32_t)uid;
        jobs[i].gid = (uint32_t)gid;
        ptrs[i] = &jobs[i];
    }
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = ptrs;
    sc.n_jobs = n;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    cmd.submit = &sc;
    ctl_propose(&d->ctl, &cmd, api__on_committed, api_wait(d, c, e));
    free(jobs);
    free(ptrs);
    free(specs);
}

/* jz cancel and jz release: the same checks, two commands. */
static void api__cancel(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    uid_t uid;
    gid_t gid;
    char user[64];
    bool release = e->body_case == JAZARI__ENVELOPE__BODY_RELEASE_REQUEST;
    size_t n_ids = release ? e->release_request->n_ids : e->cancel_request->n_ids;
    uint64_t *ids = release ? e->release_request->ids : e->cancel_request->ids;
    if (!api_caller(d, c, e, &uid, &gid, user, sizeof user))
        return;
    if (n_ids == 0 || n_ids > 10000) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                        "cancel: give 1 to 10000 job ids");
        return;
    }
    /* Checked here for a clear answer; checked again when applied. */
    for (size_t i = 0; i < n_ids; i++) {
        const fsm_job *j = fsm_job_get(&d->ctl.state, ids[i]);
        if (!j) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                            (unsigned long long)ids[i]);
            return;
        }
        if (uid != 0 && j->uid != uid) {
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                            "job %llu belongs to %s, not to %s", (unsigned long long)j->id, j->user, user);
            return;
        }
    }
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    cc.ids = ids;
    cc.n_ids = n_ids;
    cc.uid = (uint32_t)uid;
    cc.admin = uid == 0;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    if (release) {
        cmd.cmd_case = JAZARI__COMMAND__CMD_RELEASE;
        cmd.release = &cc;
    } else {
        cmd.cmd_case = JAZARI__COMMAND__CMD_CANCEL;
        cmd.cancel = &cc;
    }
    ctl_propose(&d->ctl, &cmd, api__on_committed, api_wait(d, c, e));
}

/* Jobs as messages: each holds a decoded spec to free afterwards. */
typedef struct api__jobs {
    Jazari__Job *jobs;
    Jazari__JobSpec **specs; /* as decoded, to free */
    Jazari__JobSpec *brief;  /* shallow copies without script and environment */
    Jazari__Job **ptrs;
    Jazari__JobAlloc *allocs;
    Jazari__JobAlloc **alloc_ptrs;
    size_t n;
} api__jobs;

/* Why a ready job waits, computed when asked (not replicated): its nodes
 * are down, it holds the reservation (Resources), or it is behind the job
 * that does (Priority). A requeued job keeps saying why it was. */
static const char *api__why_pending(jzd *d, const fsm_job *j, const Jazari__JobSpec *spec, uint64_t head,
                                    sched_limits *limits)
{
    if (j->state != JAZARI__JOB_STATE__JOB_PENDING || j->held)
        return NULL;
    if (j->reason && (strncmp(j->reason, "Requeued", 8) == 0 || strncmp(j->reason, "Preempted", 9) == 0))
        return NULL;
    if (spec) {
        int deps = fsm_deps_ready(&d->ctl.state, spec);
        if (deps < 0)
            return "DependencyNeverSatisfied";
        if (deps == 0)
            return "Dependency";
        const char *resv = sched_resv_wait(&d->ctl.state, j->cls->reservation, api__now_ms());
        if (resv)
            return resv;
        if (!sched_limits_take(limits, j->user, sched_qos_of(d->cfg->pol, j->cls->qos),
                               (uint64_t)j->nodes * j->gpus_per_node, false))
            return "QOSLimit";
    }
    const fsm *f = &d->ctl.state;
    uint32_t up = 0, any = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        bool fits = f->nodes[i].topo->n_gpus >= j->gpus_per_node;
        any += fits;
        up += fits && strcmp(f->nodes[i].state, "up") == 0;
    }
    uint32_t want = j->nodes ? j->nodes : 1;
    if (up < want && any >= want)
        return "NodeDown";
    return !head || head == j->id ? "Resources" : "Priority";
}

/* The job holding the reservation: the leader's, else the first ready one. */
static uint64_t api__head(jzd *d)
{
    if (api_is_leader(d))
        return d->sched.head;
    const fsm *f = &d->ctl.state;
    for (uint64_t k = 0; f->n_ready && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (j && j->state == JAZARI__JOB_STATE__JOB_PENDING && !j->held)
            return j->id;
    }
    return 0;
}

/* Jobs as messages. brief leaves out each job's script and environment,
 * which only jz show needs (a queue of scripts could be gigabytes). */
static void api__jobs_fill(jzd *d, api__jobs *a, const fsm_job *const *list, size_t n, bool brief)
{
    uint64_t head = api__head(d);
    sched_prio prio;
    bool ranking = false; /* pending jobs get their priority now (multifactor only: else it is not used) */
    for (size_t i = 0; i < n && !ranking && d->sched.policy.order == PLAN_PRIORITY; i++)
        ranking = list[i]->state == JAZARI__JOB_STATE__JOB_PENDING;
    if (ranking)
        sched_prio_init(&prio, &d->ctl.state, d->cfg->pol, api__now_ms());
    sched_limits limits; /* the running jobs counted once for the whole list */
    sched_limits_init(&limits, &d->ctl.state, d->cfg->pol);
    size_t nallocs = 0;
    for (size_t i = 0; i < n; i++)
        nallocs += list[i]->n_allocs;
    a->n = n;
    a->jobs = calloc(n ? n : 1, sizeof *a->jobs);
    a->specs = xcalloc(n, sizeof(Jazari__JobSpec *));
    a->brief = xcalloc(n, sizeof *a->brief);
    a->ptrs = calloc(n ? n : 1, sizeof(Jazari__Job *));
    a->allocs = calloc(nallocs ? nallocs : 1, sizeof *a->allocs);
    a->alloc_ptrs = calloc(nallocs ? nallocs : 1, sizeof(Jazari__JobAlloc *));
    if (!a->jobs || !a->ptrs || !a->allocs || !a->alloc_ptrs)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        Jazari__JobSpec *spec = fsm_job_to_pb(list[i], &a->jobs[i], &a->allocs[k], &a->alloc_ptrs[k]);
        const char *why = api__why_pending(d, list[i], spec, head, &limits);
        if (why)
            a->jobs[i].reason = (char *)why;
        if (ranking && list[i]->state == JAZARI__JOB_STATE__JOB_PENDING)
            a->jobs[i].priority = sched_prio_job(&prio, list[i], NULL);
        if (list[i]->preempt_ms) /* stopping, then back to the queue */
            a->jobs[i].state = JAZARI__JOB_STATE__JOB_PREEMPTED;
        a->specs[i] = spec;
        if (brief && spec) {
            a->brief[i] = *spec;
            a->brief[i].script = "";
            a->brief[i].env = NULL;
            a->brief[i].n_env = 0;
            a->jobs[i].spec = &a->brief[i];
        }
        k += list[i]->n_allocs;
        a->ptrs[i] = &a->jobs[i];
    }
    if (ranking)
        sched_prio_free(&prio);
    sched_limits_free(&limits);
}

static void api__jobs_free(api__jobs *a)
{
    for (size_t i = 0; i < a->n; i++)
        jazari__job_spec__free_unpacked(a->specs[i], NULL);
    free(a->specs);
    free(a->brief);
    free(a->jobs);
    free(a->ptrs);
    free(a->allocs);
    free(a->alloc_ptrs);
}

/* The largest queue one reply carries: replies are bounded like frames,
 * and must fit an uplink's frame limit when forwarded. */
#define API_QUEUE_MAX 50000
#define API_REPLY_BUDGET ((size_t)8 << 20)

static void api__queue(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
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
            const fsm_job **p = realloc(list, cap * sizeof(const fsm_job *));
            if (!p)
                abort();
            list = p;
        }
        list[n++] = j;
    }
    api__jobs a;
    api__jobs_fill(d, &a, list, n, true);
    Jazari__QueueReply r = JAZARI__QUEUE_REPLY__INIT;
    r.jobs = a.ptrs;
    r.n_jobs = a.n;
    r.truncated = n == API_QUEUE_MAX;
    size_t bytes = 0;
    for (size_t i = 0; i < a.n; i++) {
        bytes += jazari__job__get_packed_size(&a.jobs[i]) + 8;
        if (bytes > API_REPLY_BUDGET) {
            r.n_jobs = i;
            r.truncated = true;
            break;
        }
    }
    api_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_QUEUE_REPLY, &r);
    api__jobs_free(&a);
    free(list);
}

static void api__show(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const fsm_job *j = fsm_job_get(&d->ctl.state, e->show_request->id);
    if (!j) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                        (unsigned long long)e->show_request->id);
        return;
    }
    api__jobs a;
    api__jobs_fill(d, &a, &j, 1, false);
    Jazari__ShowReply r = JAZARI__SHOW_REPLY__INIT;
    r.job = &a.jobs[0];
    api_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_SHOW_REPLY, &r);
    api__jobs_free(&a);
}

/* --- nodes and the network ------------------------------------------------------------------ */

static void api__node_info(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni)
{
    jazari__node_info__init(ni);
    ni->name = n->name;
    ni->site = n->site ? n->site : "";
    ni->group = n->group ? n->group : "";
    ni->labels = n->labels ? n->labels : "";
    ni->state = n->state;
    ni->gpus_total = (uint32_t)n->topo->n_gpus;
    uint32_t used = fsm_node_gpus_used(f, n->name);
    ni->gpus_free = used < ni->gpus_total ? ni->gpus_total - used : 0;
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
        api__node_info(&d->ctl.state, n, &ni);
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
    api_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODE_REPLY, &r);
    topo_pb_free(ni.topology);
}

static void api__nodes(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    size_t n = d->ctl_running ? d->ctl.state.n_nodes : 0;
    Jazari__NodeInfo *infos = calloc(n + 1, sizeof *infos);
    Jazari__NodeInfo **ptrs = calloc(n + 1, sizeof(Jazari__NodeInfo *));
    if (!infos || !ptrs)
        abort();
    for (size_t i = 0; i < n; i++) {
        api__node_info(&d->ctl.state, &d->ctl.state.nodes[i], &infos[i]);
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
    api_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODES_REPLY, &r);
    free(infos);
    free(ptrs);
}

static void api__status(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
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
        const fsm_node *n = fsm_node_get(&k->state, k->peers[i].name);
        if (k->peers[i].id == k->id)
            infos[i].role = (char *)ctl_role_name(k);
        else if (leader && leader->id == k->peers[i].id)
            infos[i].role = "leader";
        else if (n && strcmp(n->state, "down") == 0)
            infos[i].role = "unreachable"; /* its node missed its heartbeats */
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
    api_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_STATUS_REPLY, &r);
}

/* --- forwarding to the leader ------------------------------------------------------------------ */

/* A request from a local client that the leader must answer. */
typedef struct api_fwd {
    jzd_wait *w;
    wire_msg *m; /* the request, kept for retries */
    Jazari__Caller caller;
    char user[64];
    bool has_caller;
    int tries;
} api_fwd;

#define API_FORWARD_TRIES 3

static void api__fwd_send(jzd *d, api_fwd *f);

static void api__fwd_finish(api_fwd *f)
{
    wire_msg_free(f->m);
    free(f->w);
    free(f);
}

/* Points the uplink at the leader, or at the next controller to ask. */
static void api__retarget(jzd *d, const char *hint)
{
    if (hint && *hint) {
        /* Remember it, so that the next attempts start from the leader. */
        for (int i = 0; i < d->n_peers; i++)
            if (strcmp(d->peers[i].address, hint) == 0)
                d->target = i;
        uplink_retarget(&d->up, hint);
        return;
    }
    const ctl_peer *l = d->ctl_running ? ctl_leader(&d->ctl) : NULL;
    if (l && l->id != d->ctl.id) {
        uplink_retarget(&d->up, l->address);
        return;
    }
    if (d->n_peers > 0)
        uplink_retarget(&d->up, d->peers[d->target % d->n_peers].address);
}

/* After a failed attempt: try the next controller (agents), or wait for
 * raft to name the leader (followers). */
static void api__rotate(jzd *d)
{
    if (!d->ctl_running && d->n_peers > 0) {
        d->target = (d->target + 1) % d->n_peers;
        uplink_retarget(&d->up, d->peers[d->target].address);
    } else {
        api__retarget(d, NULL);
    }
}

static void api__fwd_done(void *arg, wire_msg *reply, const char *why, bool sent)
{
    api_fwd *f = arg;
    jzd *d = f->w->d;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    bool retry = false;
    if (!r) {
        api__rotate(d);
        /* A write that reached the leader may have been committed: only a
         * request that never left is sent again. */
        retry = !sent;
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        api__retarget(d, r->error->leader);
        retry = true;
    }
    if (retry && ++f->tries < API_FORWARD_TRIES && !d->stopping) {
        wire_msg_free(reply);
        api__fwd_send(d, f);
        return;
    }
    net_conn *c = api_unwait(f->w);
    if (c && r) {
        Jazari__Envelope copy = *r;
        copy.request_id = f->w->request_id;
        copy.caller = NULL;
        net_conn_send(c, &copy);
    } else if (c) {
        jzd_reply_error(c, f->w->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                        "cannot reach the leader: %s", why ? why : "no answer");
    }
    wire_msg_free(reply);
    api__fwd_finish(f);
}

static void api__fwd_send(jzd *d, api_fwd *f)
{
    Jazari__Envelope copy = *wire_msg_env(f->m);
    copy.caller = f->has_caller ? &f->caller : NULL;
    copy.error = NULL;
    uplink_request(&d->up, &copy, api__fwd_done, f);
}

/* Sends a local client's request on to the leader and relays the answer.
 * A request that was itself forwarded is never forwarded again: its sender
 * hears NOT_LEADER and retries at the leader. */
static void api__forward(jzd *d, net_conn *c, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    if (c->kind != NET_UNIX) {
        api_not_leader(d, c, e->request_id);
        wire_msg_free(m);
        return;
    }
    api_fwd *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->w = api_wait(d, c, e);
    f->m = m;
    if (c->have_creds) {
        api__local_caller(c, &f->caller, f->user, sizeof f->user);
        f->caller.node = (char *)d->cfg->name;
        f->has_caller = true;
    }
    api__retarget(d, NULL);
    api__fwd_send(d, f);
}

/* --- liveness: heartbeats to the leader, silent nodes marked down ------------------------------ */

static int api__seen_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const jzd_seen *)elem)->name);
}

/* The leader's record of when it last heard of name (added as now). */
static jzd_seen *api__seen(jzd *d, const char *name)
{
    jzd_seen *s = d->n_seen ? bsearch(name, d->seen, d->n_seen, sizeof *d->seen, api__seen_cmp) : NULL;
    if (s)
        return s;
    if (d->n_seen == d->seen_cap) {
        d->seen_cap = d->seen_cap ? d->seen_cap * 2 : 64;
        jzd_seen *p = realloc(d->seen, d->seen_cap * sizeof *p);
        if (!p)
            abort();
        d->seen = p;
    }
    size_t at = 0;
    while (at < d->n_seen && strcmp(d->seen[at].name, name) < 0)
        at++;
    if (at < d->n_seen)
        memmove(&d->seen[at + 1], &d->seen[at], (d->n_seen - at) * sizeof *d->seen);
    d->n_seen++;
    s = &d->seen[at];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->last_ms = uv_now(&d->loop);
    return s;
}

void api_free(jzd *d)
{
    free(d->seen);
    d->seen = NULL;
    d->n_seen = d->seen_cap = 0;
}

static void api__heartbeat(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *name = e->heartbeat_request->name;
    if (!name || !*name) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                        "heartbeat without a node name");
        return;
    }
    const fsm_node *n = fsm_node_get(&d->ctl.state, name);
    if (n && strcmp(n->state, "up") == 0) {
        /* Only nodes in the state get a clock: names from a stranger do
         * not grow the table. */
        jzd_seen *s = api__seen(d, name);
        s->last_ms = uv_now(&d->loop);
        s->down_proposed = false;
    }
    beat_answer(d, c, e);
}

static void api__register(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    Jazari__NodeRecord *rec = e->register_request->node;
    char err[200];
    topo *t = rec && rec->topology ? topo_from_pb(rec->topology, err, sizeof err) : NULL;
    if (!rec || !rec->name || !config_valid_name(rec->name) || !t) {
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "register: %s",
                        !t && rec && rec->topology ? err : "a node name and its topology are needed");
        topo_free(t);
        return;
    }
    topo_free(t);
    if ((rec->site && *rec->site && !config_valid_name(rec->site)) ||
        (rec->group && config_valid_names(rec->group, 1) != 0) ||
        (rec->labels && config_valid_names(rec->labels, CONFIG_LABELS_MAX) != 0)) {
        jzd_reply_error(
            c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
            "register %s: a bad site, group or labels (names of [A-Za-z0-9._-], at most %d labels)",
            rec->name, CONFIG_LABELS_MAX);
        return;
    }
    log_info("api", "node %s (site %s, %zu GPUs) registers from %s", rec->name, rec->site,
             rec->topology->n_gpus, c->peer);
    api__seen(d, rec->name)->last_ms = uv_now(&d->loop);
    Jazari__NodeRecord copy = *rec;
    copy.state = "up";
    copy.reason = "";
    copy.since_ms = 0;
    Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
    up.node = &copy;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    cmd.node_up = &up;
    ctl_propose(&d->ctl, &cmd, api__on_committed, api_wait(d, c, e));
}

static void api__on_marked_down(void *arg, const ctl_outcome *o)
{
    (void)arg;
    (void)o;
}

/* The leader: nodes silent past node_timeout are committed as down. */
static void api__check_liveness(jzd *d)
{
    uint64_t now = uv_now(&d->loop);
    const fsm *f = &d->ctl.state;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *n = &f->nodes[i];
        if (strcmp(n->state, "up") != 0)
            continue;
        jzd_seen *s = api__seen(d, n->name); /* a new leader starts every clock now */
        if (strcmp(n->name, d->cfg->name) == 0)
            s->last_ms = now;
        if (s->down_proposed || now - s->last_ms <= d->cfg->node_timeout_ms)
            continue;
        char reason[96];
        snprintf(reason, sizeof reason, "no heartbeat for %.1f s", (double)(now - s->last_ms) / 1000.0);
        log_warn("api", "node %s is down: %s", n->name, reason);
        Jazari__NodeDownCmd down = JAZARI__NODE_DOWN_CMD__INIT;
        down.name = n->name;
        down.reason = reason;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
        cmd.node_down = &down;
        s->down_proposed = true;
        ctl_propose(&d->ctl, &cmd, api__on_marked_down, NULL);
    }
}

/* --- this node in the state --------------------------------------------------------------------- */

static void api__on_registered(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    d->registering = false;
    if (o->code == JAZARI__ERROR_CODE__OK)
        log_info("daemon", "node %s registered (%zu GPUs)", d->cfg->name, d->topo->n_gpus);
}

static Jazari__NodeRecord *api__own_record(jzd *d, Jazari__NodeRecord *rec)
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

static void api__on_register_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    d->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (!r)
        api__rotate(d);
    else if (r->body_case == JAZARI__ENVELOPE__BODY_REGISTER_REPLY)
        log_info("daemon", "node %s registered with the leader at %s", d->cfg->name, d->up.target);
    else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER)
        api__retarget(d, r->error->leader);
    else if (r->error)
        log_warn("daemon", "the leader refused to register this node: %s", r->error->message);
    wire_msg_free(reply);
    (void)why;
    (void)sent;
}

static void api__on_heartbeat_reply(void *arg, wire_msg *reply, const char *why, bool sent);

/* How long the leader may hold our heartbeat: one interval, at most 2 s. */
static uint64_t api__beat_wait(const jzd *d)
{
    return d->cfg->heartbeat_interval_ms < 2000 ? d->cfg->heartbeat_interval_ms : 2000;
}

static void api__heartbeat_send(jzd *d)
{
    Jazari__HeartbeatRequest hb = JAZARI__HEARTBEAT_REQUEST__INIT;
    hb.name = (char *)d->cfg->name;
    hb.digest = d->beat_digest;
    hb.wait_ms = (uint32_t)api__beat_wait(d);
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST;
    env.heartbeat_request = &hb;
    d->beating = true;
    d->beat_sent_ms = uv_now(&d->loop);
    uplink_request(&d->up, &env, api__on_heartbeat_reply, d);
}

static void api__on_heartbeat_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    d->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (!r) {
        log_debug("daemon", "heartbeat failed: %s", why);
        api__rotate(d);
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        api__retarget(d, r->error->leader);
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY && r->heartbeat_reply->known) {
        const Jazari__HeartbeatReply *hr = r->heartbeat_reply;
        run_sync(d, hr->run, hr->n_run, hr->applied);
        /* A long poll: ask again at once, unless the answer came too soon
         * for a held one (a leader that does not hold would spin us). */
        bool changed = hr->digest != d->beat_digest;
        d->beat_digest = hr->digest;
        if (!d->stopping && (changed || uv_now(&d->loop) - d->beat_sent_ms >= api__beat_wait(d) / 2))
            api__heartbeat_send(d);
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY && !r->heartbeat_reply->known &&
               !d->stopping) {
        Jazari__NodeRecord rec;
        api__own_record(d, &rec);
        Jazari__RegisterRequest rr = JAZARI__REGISTER_REQUEST__INIT;
        rr.node = &rec;
        Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
        env.body_case = JAZARI__ENVELOPE__BODY_REGISTER_REQUEST;
        env.register_request = &rr;
        d->beating = true;
        uplink_request(&d->up, &env, api__on_register_reply, d);
        topo_pb_free(rec.topology);
    }
    wire_msg_free(reply);
}

void api_tick(jzd *d)
{
    if (d->stopping)
        return;
    run_tick(d);
    if (api_is_leader(d)) {
        api__check_liveness(d);
        if (d->registering)
            return;
        const fsm_node *n = fsm_node_get(&d->ctl.state, d->cfg->name);
        if (n && strcmp(n->state, "up") == 0)
            return;
        Jazari__NodeRecord rec;
        api__own_record(d, &rec);
        Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
        up.node = &rec;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
        cmd.node_up = &up;
        d->registering = true;
        ctl_propose(&d->ctl, &cmd, api__on_registered, d);
        topo_pb_free(rec.topology);
        return;
    }
    /* Every other daemon is an agent of the leader. */
    if (d->beating)
        return;
    api__retarget(d, NULL);
    api__heartbeat_send(d);
}

/* --- dispatch ---------------------------------------------------------------------------------------- */

void api_dispatch(jzd *d, net_conn *c, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    bool leader = api_is_leader(d);
    bool forwarded = e->caller != NULL;
    log_debug("api", "%s: %s (request %llu)", c->peer, wire_body_name(e), (unsigned long long)e->request_id);
    switch (e->body_case) {
    case JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST:
    case JAZARI__ENVELOPE__BODY_CANCEL_REQUEST:
    case JAZARI__ENVELOPE__BODY_RELEASE_REQUEST:
    case JAZARI__ENVELOPE__BODY_RESERVE_REQUEST:
    case JAZARI__ENVELOPE__BODY_UNRESERVE_REQUEST:
    case JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST:
    case JAZARI__ENVELOPE__BODY_REGISTER_REQUEST:
    case JAZARI__ENVELOPE__BODY_JOB_END_REQUEST:
        /* Writes, and liveness, belong to the leader. */
        if (!leader) {
            bool agent_traffic = e->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST ||
                                 e->body_case == JAZARI__ENVELOPE__BODY_REGISTER_REQUEST ||
                                 e->body_case == JAZARI__ENVELOPE__BODY_JOB_END_REQUEST;
            if (forwarded || agent_traffic) {
                api_not_leader(d, c, e->request_id);
                break;
            }
            api__forward(d, c, m);
            return;
        }
        break;
    case JAZARI__ENVELOPE__BODY_QUEUE_REQUEST:
    case JAZARI__ENVELOPE__BODY_SHOW_REQUEST:
    case JAZARI__ENVELOPE__BODY_STATUS_REQUEST:
    case JAZARI__ENVELOPE__BODY_NODES_REQUEST:
    case JAZARI__ENVELOPE__BODY_RESERVATIONS_REQUEST:
    case JAZARI__ENVELOPE__BODY_SHARES_REQUEST:
        /* Reads: any controller's copy of the state; an agent asks one. */
        if (!d->ctl_running) {
            if (forwarded) {
                api_not_leader(d, c, e->request_id);
                break;
            }
            api__forward(d, c, m);
            return;
        }
        break;
    case JAZARI__ENVELOPE__BODY_NODE_REQUEST: {
        const char *want = e->node_request->name;
        if (!d->ctl_running && !forwarded && want && *want && strcmp(want, d->cfg->name) != 0) {
            api__forward(d, c, m);
            return;
        }
        break;
    }
    default:
        break;
    }
    if (c->closing) {
        wire_msg_free(m);
        return;
    }
    switch (e->body_case) {
    case JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST:
    case JAZARI__ENVELOPE__BODY_CANCEL_REQUEST:
    case JAZARI__ENVELOPE__BODY_RELEASE_REQUEST:
    case JAZARI__ENVELOPE__BODY_RESERVE_REQUEST:
    case JAZARI__ENVELOPE__BODY_UNRESERVE_REQUEST:
    case JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST:
    case JAZARI__ENVELOPE__BODY_REGISTER_REQUEST:
    case JAZARI__ENVELOPE__BODY_JOB_END_REQUEST:
        if (!leader)
            break; /* answered above */
        if (e->body_case == JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST)
            api__submit(d, c, e);
        else if (e->body_case == JAZARI__ENVELOPE__BODY_RESERVE_REQUEST)
            admin_reserve(d, c, e);
        else if (e->body_case == JAZARI__ENVELOPE__BODY_UNRESERVE_REQUEST)
            admin_unreserve(d, c, e);
        else if (e->body_case == JAZARI__ENVELOPE__BODY_CANCEL_REQUEST ||
                 e->body_case == JAZARI__ENVELOPE__BODY_RELEASE_REQUEST)
            api__cancel(d, c, e);
        else if (e->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST)
            api__heartbeat(d, c, e);
        else if (e->body_case == JAZARI__ENVELOPE__BODY_JOB_END_REQUEST && !api__agent_peer(d, c))
            jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                            "job ends are reported by the nodes' daemons only");
        else if (e->body_case == JAZARI__ENVELOPE__BODY_JOB_END_REQUEST)
            run_job_end(d, c, e);
        else
            api__register(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_TOPOLOGY_REQUEST: {
        Jazari__TopologyReply r = JAZARI__TOPOLOGY_REPLY__INIT;
        r.topology = topo_to_pb(d->topo);
        api_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_TOPOLOGY_REPLY, &r);
        topo_pb_free(r.topology);
        break;
    }
    case JAZARI__ENVELOPE__BODY_NODE_REQUEST:
        api__node(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_NODES_REQUEST:
        api__nodes(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_QUEUE_REQUEST:
        if (d->ctl_running)
            api__queue(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_SHOW_REQUEST:
        if (d->ctl_running)
            api__show(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_STATUS_REQUEST:
        if (d->ctl_running)
            api__status(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_RESERVATIONS_REQUEST:
        if (d->ctl_running)
            admin_reservations(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_SHARES_REQUEST:
        if (d->ctl_running)
            admin_shares(d, c, e);
        break;
    case JAZARI__ENVELOPE__BODY_LOGS_REQUEST:
        logs_request(d, c, m);
        return;
    case JAZARI__ENVELOPE__BODY_HELLO:
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                        "hello was already exchanged on this connection");
        break;
    default:
        jzd_reply_error(c, e->request_id, JAZARI__ERROR_CODE__UNSUPPORTED, false,
                        "%s is not a request this daemon serves", wire_body_name(e));
        break;
    }
    wire_msg_free(m);
}

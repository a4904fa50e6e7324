/* logs.c - jz logs: a job's output files are read on the node that wrote
 * them. The daemon jz talks to reads its own node's files, and relays a
 * request about another node, with the caller's identity: a controller to
 * that node's daemon, an agent through a controller (one link per peer,
 * kept; at most two hops). A node serves only regular files that belong to
 * the caller (root may read any of its own node's). Someone who may act on
 * a job they do not own (its account's coordinator, its tenant's admin, an
 * admin) reads the files that job writes as its owner: a controller, which
 * knows the job, decides it and relays the request as the owner's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/jobdir.h"
#include "../common/log.h"
#include "../common/outpath.h"
#include "../common/xmem.h"
#include "jzd.h"

#define LOGS_CHUNK_MAX (1u << 20)
#define LOGS_RELAYS_MAX 256

typedef struct jzd_relay {
    char address[256];
    uplink up;
} jzd_relay;

typedef struct logs_relay_req {
    jzd_wait *w;
} logs_relay_req;

/* Opens path for reading on behalf of uid:gid. The name is resolved with
 * the caller's file-system identity (no peeking into directories they
 * cannot search) and only as a path (O_PATH: opening a device has effects);
 * the file is opened for reading only once it is known to be a regular
 * file of theirs. Returns the fd, or -1 with errno (EPERM: not theirs). */
static int logs__open(const char *path, uid_t uid, gid_t gid, struct stat *st)
{
    bool root = geteuid() == 0;
    int old_uid = 0, old_gid = 0;
    if (root) {
        old_gid = setfsgid(gid);
        old_uid = setfsuid(uid);
    }
    int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    if (root) {
        setfsuid((uid_t)old_uid);
        setfsgid((gid_t)old_gid);
    }
    if (pfd < 0) {
        errno = saved;
        return -1;
    }
    if (fstat(pfd, st) != 0 || !S_ISREG(st->st_mode) || (uid != 0 && st->st_uid != uid)) {
        close(pfd);
        errno = EPERM;
        return -1;
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
    int fd = open(proc, O_RDONLY | O_CLOEXEC);
    saved = errno;
    close(pfd);
    errno = saved;
    return fd;
}

/* Answers with what the file holds from the offset asked. Returns 0, or -1
 * without answering when it is not the caller's file (EPERM). */
static int logs__read(net_conn *c, const Jazari__Envelope *e, uid_t uid, gid_t gid)
{
    const Jazari__LogsRequest *r = e->logs_request;
    Jazari__LogsReply rep = JAZARI__LOGS_REPLY__INIT;
    struct stat st;
    int fd = logs__open(r->path, uid, gid, &st);
    if (fd < 0 && errno == ENOENT) {
        rep.missing = true;
    } else if (fd < 0 && (errno == EPERM || errno == EACCES || errno == ELOOP)) {
        errno = EPERM;
        return -1;
    } else if (fd < 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "cannot read %s: %s", r->path,
                  strerror(errno));
        return 0;
    }
    uint8_t *data = NULL;
    if (fd >= 0) {
        size_t want = r->max_bytes && r->max_bytes < LOGS_CHUNK_MAX ? r->max_bytes : LOGS_CHUNK_MAX;
        uint64_t size = (uint64_t)st.st_size;
        if (r->offset >= size)
            want = 0;
        else if (size - r->offset < want)
            want = (size_t)(size - r->offset);
        data = xcalloc(want ? want : 1, 1);
        ssize_t n = want ? pread(fd, data, want, (off_t)r->offset) : 0;
        rep.data.data = data;
        rep.data.len = n > 0 ? (size_t)n : 0;
        rep.size = size;
        close(fd);
    }
    wire_reply out;
    wire_reply_init(&out, e->request_id, JAZARI__ERROR_CODE__OK, NULL);
    out.env.body_case = JAZARI__ENVELOPE__BODY_LOGS_REPLY;
    out.env.logs_reply = &rep;
    net_conn_send(c, &out.env);
    free(data);
    return 0;
}

typedef struct logs_match {
    const char *path;
    bool found;
} logs_match;

static void logs__match(void *arg, uint32_t task, bool per_task, bool err, const char *path)
{
    logs_match *m = arg;
    (void)task, (void)per_task, (void)err;
    m->found = m->found || strcmp(path, m->path) == 0;
}

/* A controller: when w may act on job r->id (a coordinator, a tenant admin,
 * an admin) but does not own it, and r asks for one of the files that job
 * writes on r->node, the file is read as its owner, who is then w. Never
 * for a job of root's. */
static void logs__as_owner(jzd *d, const Jazari__LogsRequest *r, authz_who *w)
{
    const fsm_job *j = d->ctl_running && r->id ? fsm_job_get(&d->ctl.state, r->id) : NULL;
    if (!j || strcmp(j->user, w->user) == 0 || j->uid == 0 || strcmp(j->user, "root") == 0 ||
        authz_job(d->cfg->pol, w, j->user, j->cls->account) != AUTHZ_FULL)
        return;
    uint32_t rank = 0;
    while (rank < j->n_allocs && strcmp(j->allocs[rank].node, r->node) != 0)
        rank++;
    Jazari__JobSpec *s = rank < j->n_allocs ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
    if (!s)
        return;
    outpath_files f = {s->output,
                       s->error,
                       s->workdir,
                       s->tasks_per_node,
                       {j->id, j->array_job_id, s->array_index, s->name, j->user}};
    logs_match m = {r->path, false};
    outpath_each(&f, rank, r->node, logs__match, &m);
    jazari__job_spec__free_unpacked(s, NULL);
    if (!m.found)
        return;
    log_debug("logs", "%s reads %s on %s as %s, the owner of job %llu", w->user, r->path, r->node, j->user,
              (unsigned long long)j->id);
    snprintf(w->user, sizeof w->user, "%s", j->user);
    w->uid = j->uid;
    w->gid = j->gid;
    w->role = AUTHZ_RESEARCHER;
}

/* The link to the daemon at address, which must prove to be node (NULL: a
 * controller). */
static jzd_relay *logs__relay(jzd *d, const char *address, const char *node)
{
    for (size_t i = 0; i < d->n_relays; i++)
        if (strcmp(d->relays[i].address, address) == 0 &&
            strcmp(d->relays[i].up.expect_node, node ? node : "") == 0)
            return &d->relays[i];
    if (!d->relays)
        d->relays = xcalloc(LOGS_RELAYS_MAX, sizeof *d->relays);
    jzd_relay *r;
    if (d->n_relays < LOGS_RELAYS_MAX) {
        r = &d->relays[d->n_relays++];
        uplink_init(&r->up, &d->loop, d->cfg->name, &d->sec);
    } else {
        r = &d->relays[0]; /* full: the oldest link moves (its requests fail) */
    }
    uplink_expect(&r->up, node);
    snprintf(r->address, sizeof r->address, "%s", address);
    uplink_retarget(&r->up, address);
    return r;
}

void logs_caller(const jzd *d, const authz_who *w, Jazari__Caller *out)
{
    jazari__caller__init(out);
    out->uid = (uint32_t)w->uid;
    out->gid = (uint32_t)w->gid;
    out->user = (char *)w->user;
    out->node = (char *)d->cfg->name;
    out->role = (char *)authz_role_name(w->role);
    out->from = (char *)w->from;
}

uplink *logs_link(jzd *d, const char *address, const char *node)
{
    return &logs__relay(d, address, node)->up;
}

static void logs__relayed(void *arg, wire_msg *reply, const char *why, bool sent)
{
    logs_relay_req *q = arg;
    (void)sent;
    net_conn *c = req_unwait(q->w);
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (c && r) {
        Jazari__Envelope copy = *r;
        copy.request_id = q->w->request_id;
        copy.caller = NULL;
        net_conn_send(c, &copy);
    } else if (c) {
        req_error(c, q->w->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "cannot reach the node's daemon: %s", why ? why : "no answer");
    }
    wire_msg_free(reply);
    free(q->w);
    free(q);
}

/* A file of this node, read as w's account here, found by name (root's:
 * root). Returns false when answered; true when a controller must decide
 * first: on an agent, a request about a job's files (r->id), whose owner
 * only a controller knows — read as the caller here, a member could make
 * their coordinator's `jz logs` show the coordinator's own files. */
static bool logs__local(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w)
{
    const Jazari__LogsRequest *r = e->logs_request;
    uid_t uid = 0;
    gid_t gid = 0;
    char why[300];
    if (r->id && r->hops == 0 && !d->ctl_running && d->n_peers > 0)
        return true;
    if (w->uid != 0 && req_account(w->user, w->uid, &uid, &gid, why, sizeof why) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false, "logs: %s", why);
        return false;
    }
    if (logs__read(c, e, uid, gid) == 0)
        return false;
    req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
              "%s is not an output file of yours", r->path);
    return false;
}

/* Relays a request about another node (or about this one, for a
 * controller to decide whose file it is): a controller to the node itself,
 * at the address the state records for it (never one the request names),
 * and only to a daemon whose certificate is that node's; an agent through
 * the controller it talks to. */
void logs_relay(jzd *d, net_conn *c, const Jazari__Envelope *e, Jazari__Envelope *copy, const authz_who *w,
                const char *what, const char *to_node, uint32_t hops)
{
    const char *to = NULL, *node = NULL;
    if (hops > 1 || (hops == 1 && !d->ctl_running)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "%s: this is %s, not %s", what,
                  d->cfg->name, to_node);
        return;
    }
    if (d->ctl_running) {
        const fsm_node *n = fsm_node_get(&d->ctl.state, to_node);
        if (!n || !n->address) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "%s: no node is named %s", what,
                      to_node);
            return;
        }
        to = n->address;
        node = to_node;
    } else if (d->n_peers == 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "%s: no controller known to relay through", what);
        return;
    } else {
        to = d->peers[d->target % d->n_peers].address;
    }
    /* The caller as this daemon decided it, never as it was told. */
    Jazari__Caller caller;
    logs_caller(d, w, &caller);
    copy->caller = &caller;
    copy->error = NULL;
    logs_relay_req *q = xcalloc(1, sizeof *q);
    q->w = req_wait(d, c, e);
    uplink_request(&logs__relay(d, to, node)->up, copy, logs__relayed, q);
}

static void logs__forward(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w)
{
    const Jazari__LogsRequest *r = e->logs_request;
    Jazari__LogsRequest fwd = *r;
    fwd.hops = r->hops + 1;
    Jazari__Envelope copy = *e;
    copy.logs_request = &fwd;
    logs_relay(d, c, e, &copy, w, "logs", r->node, r->hops);
}

/* A controller, before a job's output leaves its node: the policy's
 * residency binds the job's account to sites, and the output is relayed
 * only by daemons there: this controller, and the agent that relayed the
 * request to it (its caller's node). A read that names no job is relayed
 * to another node only while the policy binds no account (what it reads
 * could be a bound job's output). Returns true when it may go on; else
 * it answered. */
static bool logs__resident(jzd *d, net_conn *c, const Jazari__Envelope *e, const Jazari__LogsRequest *r)
{
    const pol *po = d->cfg->pol;
    if (!po->sites.n_residency)
        return true;
    uint64_t id = r->id ? r->id : r->step ? r->step_job : 0;
    const fsm_job *j = id ? fsm_job_get(&d->ctl.state, id) : NULL;
    if (!j) {
        if (strcmp(r->node, d->cfg->name) == 0 && !(e->caller && e->caller->node && *e->caller->node))
            return true; /* this node's own file, to its own caller: nothing is relayed */
        req_error(
            c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
            "logs: name a job the network still holds (jz logs JOB): the policy binds accounts' data to "
            "sites, and output is relayed only for a known job");
        return false;
    }
    const char *account = *j->cls->account ? j->cls->account : po->default_account;
    const char *sites = polsite_residency(&po->sites, account);
    if (!sites)
        return true;
    const char *via = e->caller && e->caller->node && *e->caller->node ? e->caller->node : NULL;
    const fsm_node *vn = via ? fsm_node_get(&d->ctl.state, via) : NULL;
    const char *out = !polsite_in(sites, d->cfg->site)                  ? d->cfg->name
                      : via && !polsite_in(sites, vn ? vn->site : NULL) ? via
                                                                        : NULL;
    if (!out)
        return true;
    req_error(
        c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
        "logs: job %llu's output stays in %s (the policy's residency of account %s), and %s is at %s: ask a "
        "daemon there (jz --server HOST:PORT logs %llu)",
        (unsigned long long)j->id, sites, account, out,
        out == d->cfg->name ? d->cfg->site
        : vn && vn->site    ? vn->site
                            : "no site",
        (unsigned long long)j->id);
    return false;
}

void logs_request(jzd *d, net_conn *c, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    const Jazari__LogsRequest *r = e->logs_request;
    authz_who w;
    buf io = BUF_INIT;
    Jazari__LogsRequest step_req, *orig = e->logs_request;
    if (r->step && r->node && strcmp(r->node, d->cfg->name) == 0) {
        /* A step's relayed output: this node knows where it keeps it. */
        jobdir_step_io(&io, d->cfg->tmp_dir, d->cfg->name, r->step_job, r->step_attempt, r->step - 1,
                       r->step_rank, r->step_err);
        step_req = *r;
        step_req.path = (char *)buf_str(&io);
        step_req.id = 0;
        r = &step_req;
        ((Jazari__Envelope *)e)->logs_request = &step_req;
    }
    if (!r->path || r->path[0] != '/' || strlen(r->path) > 4095 || !r->node || !*r->node) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "logs: a node and an absolute path are needed");
    } else if (req_who(d, c, e, &w) && req_runs_as(c, e, &w, "reading another node's files as root") &&
               (!d->ctl_running || logs__resident(d, c, e, r))) {
        logs__as_owner(d, r, &w);
        if (strcmp(r->node, d->cfg->name) != 0 || logs__local(d, c, e, &w))
            logs__forward(d, c, e, &w);
    }
    ((Jazari__Envelope *)e)->logs_request = orig; /* the message frees what it holds */
    buf_free(&io);
    wire_msg_free(m);
}

static void logs__closed(uplink *l)
{
    (void)l;
}

void logs_close(jzd *d)
{
    for (size_t i = 0; i < d->n_relays; i++)
        uplink_close(&d->relays[i].up, logs__closed);
}

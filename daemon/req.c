/* req.c - the request layer: who the caller is, replies and errors, and
 * requests that wait for their log entry. Every module that serves a
 * request (jobs.c, nodes.c, live.c, admin.c, logs.c, run.c, fwd.c) sits
 * above this one; it calls none of them. */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "jzd.h"

/* --- waiting for the log ------------------------------------------------------------------ */

jzd_wait *req_wait(jzd *d, net_conn *c, const Jazari__Envelope *e)
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
net_conn *req_unwait(jzd_wait *w)
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

void req_session_closed(jzd_session *s)
{
    for (jzd_wait *w = s->waits; w; w = w->next)
        w->conn = NULL;
    s->waits = NULL;
}

void req_reply(net_conn *c, uint64_t id, Jazari__Envelope__BodyCase body, void *msg)
{
    req_reply_at(c, id, body, msg, 0);
}

void req_reply_at(net_conn *c, uint64_t id, Jazari__Envelope__BodyCase body, void *msg,
                  uint64_t applied_index)
{
    wire_reply r;
    wire_reply_init(&r, id, JAZARI__ERROR_CODE__OK, NULL);
    r.env.body_case = body;
    r.env.applied_index = applied_index;
    /* Every body is a pointer in the same union. */
    r.env.hello = msg;
    net_conn_send(c, &r.env);
}

uint64_t req_applied(jzd *d)
{
    return d->ctl_running ? ctl_applied(&d->ctl) : 0;
}
/* --- who may write ------------------------------------------------------------------ */

/* What getpwnam_r or getpwuid_r said (its return, its result): the account,
 * no such account, or a failure to look (EMFILE, ENFILE, EIO, ENOMEM, a
 * directory service that times out), which says nothing about the account
 * and must never be taken for its lack. */
typedef enum { REQ__PW_FOUND, REQ__PW_NONE, REQ__PW_ERROR } req__pw;

static req__pw req__pw_result(int rc, const struct passwd *res)
{
    if (rc != 0)
        return REQ__PW_ERROR;
    return res ? REQ__PW_FOUND : REQ__PW_NONE;
}

/* The identity of a local caller, from the Unix socket's peer credentials:
 * root on a controller is an admin, anyone else what the policy says. An
 * account that cannot be looked up right now leaves user empty: no name is
 * made up for it (req_who refuses; a controller refuses it forwarded). */
void req_local_caller(jzd *d, const net_conn *c, Jazari__Caller *out, char *user, size_t len)
{
    jazari__caller__init(out);
    out->uid = (uint32_t)c->uid;
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    int rc = getpwuid_r(c->uid, &pw, pwbuf, sizeof pwbuf, &res);
    switch (req__pw_result(rc, res)) {
    case REQ__PW_FOUND:
        snprintf(user, len, "%s", pw.pw_name);
        out->gid = (uint32_t)pw.pw_gid;
        break;
    case REQ__PW_NONE:
        snprintf(user, len, "uid%u", (unsigned)c->uid);
        out->gid = (uint32_t)-1;
        break;
    case REQ__PW_ERROR:
        log_warn("api", "cannot look up the account of uid %u (%s): %s; its request is refused",
                 (unsigned)c->uid, c->peer, strerror(rc));
        user[0] = '\0';
        out->gid = (uint32_t)-1;
        break;
    }
    out->user = user;
    out->role = c->uid == 0 ? "admin" : "";
    out->node = (char *)d->cfg->name;
}

/* Whether host:port names the host that c comes from. */
static bool req__same_host(const net_conn *c, const char *address)
{
    char host[256];
    uint16_t port;
    const char *colon = strrchr(c->peer, ':');
    if (!address || !colon || config_parse_hostport(address, host, sizeof host, &port) != 0)
        return false;
    size_t n = (size_t)(colon - c->peer);
    return strlen(host) == n && strncmp(host, c->peer, n) == 0;
}

/* A daemon of the network: its certificate says so (a controller's or a
 * node's). Only when the network runs without TLS (benchmarks) is a peer
 * believed by the host it connects from. */
static bool req__daemon_peer(jzd *d, const net_conn *c)
{
    if (c->kind != NET_TCP)
        return false;
    if (trust_on(d))
        return trust_is_daemon(net_conn_peer_id(c));
    for (int i = 0; i < d->n_peers; i++)
        if (req__same_host(c, d->peers[i].address))
            return true;
    for (size_t i = 0; d->ctl_running && i < d->ctl.state.n_nodes; i++)
        if (req__same_host(c, d->ctl.state.nodes[i].address))
            return true;
    return false;
}

bool req_agent_peer(jzd *d, const net_conn *c)
{
    const jzd_session *s = c->user;
    return s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && req__daemon_peer(d, c);
}

/* Whether node is one of the emulated nodes of the agent `peer`: peer's
 * name, '-', then five or more digits (jazarid --emulate-nodes, emu.c).
 * One emulator speaks for its thousands of nodes over a few shared
 * connections, with its own certificate; only where the controllers allow
 * it (emulated_nodes = on), so a real network is as strict as ever. */
static bool req__emulated_by(jzd *d, const char *peer, const char *node)
{
    if (!d->cfg->emulated_nodes)
        return false;
    size_t n = strlen(peer), k = 0;
    if (strncmp(node, peer, n) != 0 || node[n] != '-')
        return false;
    for (const char *q = node + n + 1; *q; q++, k++)
        if (*q < '0' || *q > '9')
            return false;
    return k >= 5;
}

bool req_peer_is_node(jzd *d, const net_conn *c, const char *node)
{
    if (!req_agent_peer(d, c))
        return false;
    const pki_id *p = net_conn_peer_id(c);
    return !trust_on(d) || (p && node && (strcmp(p->name, node) == 0 || req__emulated_by(d, p->name, node)));
}

/* A person with a credentials file, over TLS: the certificate's name and
 * role. */
static bool req__remote_user(jzd *d, net_conn *c, const Jazari__Envelope *e, const pki_id *p, authz_who *w)
{
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    int role = authz_role_parse(p->kind);
    if (role < 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "these credentials carry no role this network knows ('%s')", p->kind);
        return false;
    }
    int rc = getpwnam_r(p->name, &pw, pwbuf, sizeof pwbuf, &res);
    if (req__pw_result(rc, res) == REQ__PW_ERROR) {
        log_warn("api", "cannot look up the account %s: %s", p->name, strerror(rc));
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "%s cannot look up the account %s right now (%s): retry", d->cfg->name, p->name,
                  strerror(rc));
        return false;
    }
    if (res && res->pw_uid == 0 && role != AUTHZ_ADMIN) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "%s is root here, and root needs admin credentials", p->name);
        return false;
    }
    /* An admin acts as root; the others as their own account, which each
     * node finds by name (a person need not have one on the controller). */
    w->uid = role == AUTHZ_ADMIN ? 0 : res ? res->pw_uid : REQ_UID_NONE;
    w->gid = res ? res->pw_gid : REQ_UID_NONE;
    w->role = (authz_role)role;
    snprintf(w->user, sizeof w->user, "%s", p->name);
    size_t host = strcspn(c->peer, "("); /* the address, without the name the peer proved */
    snprintf(w->from, sizeof w->from, "%.*s (credentials %s)", (int)(host < 64 ? host : 64), c->peer,
             p->serial);
    snprintf(w->serial, sizeof w->serial, "%s", p->serial);
    return true;
}

/* An identity a daemon forwarded. A controller's is believed as it says
 * (root on a controller is an admin); a node's is believed for that node's
 * people only: never an admin, and never root for what runs or reads as
 * root elsewhere (via_node). */
static bool req__forwarded(jzd *d, net_conn *c, const Jazari__Envelope *e, authz_who *w)
{
    const Jazari__Caller *k = e->caller;
    const pki_id *p = net_conn_peer_id(c);
    bool controller = trust_on(d) ? trust_is_controller(p) : true;
    int role = k->role && *k->role ? authz_role_parse(k->role) : AUTHZ_TENANT_ADMIN;
    if (!controller && !d->ctl_running) {
        /* A node takes others' requests from controllers only (relays). */
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "a node takes requests for its people from the controllers only");
        return false;
    }
    if (role < 0 || !config_valid_name(k->user)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "a forwarded caller that does not parse");
        return false;
    }
    w->uid = k->uid;
    w->gid = k->gid;
    w->role = (authz_role)role;
    w->via_node = !controller;
    if (!controller && w->role > AUTHZ_TENANT_ADMIN)
        w->role = AUTHZ_TENANT_ADMIN;
    snprintf(w->user, sizeof w->user, "%s", k->user);
    if (k->from && *k->from)
        snprintf(w->from, sizeof w->from, "%.150s", k->from);
    else
        snprintf(w->from, sizeof w->from, "%.64s (socket)", p ? p->name : k->node ? k->node : c->peer);
    return true;
}

bool req_who(jzd *d, net_conn *c, const Jazari__Envelope *e, authz_who *w)
{
    const jzd_session *s = c->user;
    memset(w, 0, sizeof *w);
    if (c->kind == NET_UNIX && c->have_creds) {
        Jazari__Caller k;
        req_local_caller(d, c, &k, w->user, sizeof w->user);
        if (!w->user[0]) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                      "%s cannot look up your account (uid %u) right now (see its log): retry", d->cfg->name,
                      (unsigned)c->uid);
            return false;
        }
        w->uid = k.uid;
        w->gid = k.gid;
        /* Root on a node's own socket is that node's admin (its files, its
         * topology); for the network, its requests go to a controller, which
         * does not make it an admin. */
        w->role = c->uid == 0 ? AUTHZ_ADMIN : AUTHZ_TENANT_ADMIN;
        snprintf(w->from, sizeof w->from, "%s (socket)", d->cfg->name);
        return true;
    }
    const pki_id *p = net_conn_peer_id(c);
    if (p && !trust_is_daemon(p) && !e->caller && s && s->kind == JAZARI__PEER_KIND__PEER_CLIENT)
        return req__remote_user(d, c, e, p, w);
    if (e->caller && s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && e->caller->user &&
        req__daemon_peer(d, c))
        return req__forwarded(d, c, e, w);
    log_info("api",
             "%s from %s refused: not a local client, a person with credentials, nor a daemon of the "
             "network speaking for one%s",
             wire_body_name(e), c->peer, e->caller ? "" : " (no caller)");
    req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
              "%s needs the daemon's local socket, or credentials (jz --server HOST:PORT --credentials FILE)",
              wire_body_name(e));
    return false;
}

bool req_runs_as(net_conn *c, const Jazari__Envelope *e, const authz_who *w, const char *what)
{
    if (w->uid != 0 || !w->via_node)
        return true;
    req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
              "%s: root on a node is not the network's admin; use admin credentials (jz --server HOST:PORT "
              "--credentials FILE) or a controller's socket, or act as a user",
              what);
    return false;
}

bool req_admin(jzd *d, net_conn *c, const Jazari__Envelope *e, authz_who *w, const char *what)
{
    if (!req_who(d, c, e, w))
        return false;
    if (!authz_is_admin(w) || w->via_node) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "%s is for admins (root on a controller, or admin credentials), not for %s", what, w->user);
        return false;
    }
    return true;
}

/* -1: no such account (or root's, not decided); -2: it could not be looked
 * up (EMFILE, EIO, ...), which says nothing of the account: a failure of
 * this node, not a lack to remember. why names the error. */
int req_account(const char *user, uint32_t decided_uid, uid_t *uid, gid_t *gid, char *why, size_t len)
{
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    int rc = user && *user ? getpwnam_r(user, &pw, pwbuf, sizeof pwbuf, &res) : 0;
    switch (req__pw_result(rc, res)) {
    case REQ__PW_ERROR:
        snprintf(why, len, "cannot look up the account %s on this node: %s", user, strerror(rc));
        return -2;
    case REQ__PW_NONE:
        snprintf(why, len, "user %s has no account on this node", user && *user ? user : "(none)");
        return -1;
    case REQ__PW_FOUND:
        break;
    }
    if (res->pw_uid == 0 && decided_uid != 0) {
        snprintf(why, len, "the account %s is root on this node, and the network did not say this is root",
                 user);
        return -1;
    }
    *uid = res->pw_uid;
    *gid = res->pw_gid;
    return 0;
}

void req_audit(Jazari__AuditRecord *a, char *what, size_t len, const authz_who *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, len, fmt, ap);
    va_end(ap);
    jazari__audit_record__init(a);
    a->user = (char *)w->user;
    a->role = (char *)authz_role_name(w->role);
    a->from = (char *)w->from;
    a->what = what;
    log_info("audit", "%s (%s) from %s asks: %s", w->user, a->role, w->from, what);
}

bool req_is_leader(jzd *d)
{
    return d->ctl_running && ctl_is_leader(&d->ctl);
}

/* NOT_LEADER, naming the leader when one is known. */
void req_not_leader(jzd *d, net_conn *c, uint64_t id)
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

/* --- errors ---------------------------------------------------------------------------------- */

void req_error(net_conn *c, uint64_t id, Jazari__ErrorCode code, bool close, const char *fmt, ...)
{
    wire_reply r;
    va_list ap;
    wire_reply_init(&r, id, code, NULL);
    va_start(ap, fmt);
    vsnprintf(r.message, sizeof r.message, fmt, ap);
    va_end(ap);
    if (close)
        net_conn_send_and_close(c, &r.env);
    else
        net_conn_send(c, &r.env);
}

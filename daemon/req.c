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

/* The identity of a local caller, from the Unix socket's peer credentials. */
void req_local_caller(const net_conn *c, Jazari__Caller *out, char *user, size_t len)
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

bool req_peer_is_node(jzd *d, const net_conn *c, const char *node)
{
    if (!req_agent_peer(d, c))
        return false;
    const pki_id *p = net_conn_peer_id(c);
    return !trust_on(d) || (p && node && strcmp(p->name, node) == 0);
}

/* A person with a credentials file, over TLS: the certificate's name. */
static bool req__remote_user(jzd *d, net_conn *c, const Jazari__Envelope *e, uid_t *uid, gid_t *gid, char *user,
                             size_t len)
{
    const pki_id *p = net_conn_peer_id(c);
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    if (getpwnam_r(p->name, &pw, pwbuf, sizeof pwbuf, &res) != 0 || !res) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "user %s has no account on controller %s: ask an admin to create it", p->name, d->cfg->name);
        return false;
    }
    if (res->pw_uid == 0 && strcmp(p->kind, "admin") != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "%s is root here, and root needs admin credentials", p->name);
        return false;
    }
    /* An admin acts as root; the others as their own account. */
    *uid = strcmp(p->kind, "admin") == 0 ? 0 : res->pw_uid;
    *gid = res->pw_gid;
    snprintf(user, len, "%s", p->name);
    return true;
}

/* The caller's identity for a request that changes state: the Unix
 * socket's peer credentials, a person's certificate, or the identity a
 * daemon of the network forwarded (never a person's word about another). */
bool req_caller(jzd *d, net_conn *c, const Jazari__Envelope *e, uid_t *uid, gid_t *gid, char *user,
                size_t len)
{
    const jzd_session *s = c->user;
    if (c->kind == NET_UNIX && c->have_creds) {
        Jazari__Caller k;
        req_local_caller(c, &k, user, len);
        *uid = k.uid;
        *gid = k.gid;
        return true;
    }
    const pki_id *p = net_conn_peer_id(c);
    if (p && !trust_is_daemon(p) && !e->caller && s && s->kind == JAZARI__PEER_KIND__PEER_CLIENT)
        return req__remote_user(d, c, e, uid, gid, user, len);
    if (e->caller && s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && e->caller->user && *e->caller->user &&
        req__daemon_peer(d, c)) {
        *uid = e->caller->uid;
        *gid = e->caller->gid;
        snprintf(user, len, "%s", e->caller->user);
        return true;
    }
    log_info("api", "%s from %s refused: not a local client, a person with credentials, nor a daemon of the "
                    "network speaking for one%s",
             wire_body_name(e), c->peer, e->caller ? "" : " (no caller)");
    req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
              "%s needs the daemon's local socket, or credentials (jz --server HOST:PORT --credentials FILE)",
              wire_body_name(e));
    return false;
}

bool req_admin(jzd *d, net_conn *c, const Jazari__Envelope *e, char *who, const char *what)
{
    uid_t uid;
    gid_t gid;
    char user[64];
    if (!req_caller(d, c, e, &uid, &gid, user, sizeof user))
        return false;
    if (uid != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "%s is for admins (root, or admin credentials), not for %s", what, user);
        return false;
    }
    if (who)
        snprintf(who, 64, "%s", user);
    return true;
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

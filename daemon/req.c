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

/* A daemon peer whose word about a caller is taken: one connecting from
 * the host of a controller or of a registered node. (Until the TLS layer
 * proves that a peer belongs to the network, its address is the proof.) */
static bool req__trusted_peer(jzd *d, const net_conn *c)
{
    for (int i = 0; i < d->n_peers; i++)
        if (req__same_host(c, d->peers[i].address))
            return true;
    for (size_t i = 0; d->ctl_running && i < d->ctl.state.n_nodes; i++)
        if (req__same_host(c, d->ctl.state.nodes[i].address))
            return true;
    return false;
}

/* A daemon of the network speaking as an agent (not a client). */
bool req_agent_peer(jzd *d, const net_conn *c)
{
    const jzd_session *s = c->user;
    return c->kind != NET_UNIX && s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && req__trusted_peer(d, c);
}

/* The caller's identity for a request that changes state: the Unix
 * socket's peer credentials, or the identity a trusted daemon peer
 * forwarded. */
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
    if (e->caller && s && s->kind == JAZARI__PEER_KIND__PEER_AGENT && e->caller->user && *e->caller->user &&
        req__trusted_peer(d, c)) {
        *uid = e->caller->uid;
        *gid = e->caller->gid;
        snprintf(user, len, "%s", e->caller->user);
        return true;
    }
    log_info("api", "%s from %s refused: not a local client, nor a trusted daemon speaking for one%s",
             wire_body_name(e), c->peer, e->caller ? "" : " (no caller)");
    req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
              "%s needs the daemon's local socket (remote clients need TLS, not yet served)",
              wire_body_name(e));
    return false;
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

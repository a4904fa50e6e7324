/* fwd.c - requests a controller's local client sends that the leader must
 * answer, sent on to it through the uplink; and where the uplink points
 * (the leader when known, else the next controller). */
#include <stdlib.h>
#include <string.h>

#include "jzd.h"

/* A request from a local client that the leader must answer. */
typedef struct fwd__req {
    jzd_wait *w;
    wire_msg *m; /* the request, kept for retries */
    Jazari__Caller caller;
    char user[64];
    bool has_caller;
    int tries;
    /* A write's answer, held until this controller has applied its entry. */
    wire_msg *reply;
    uint64_t index, deadline;
    struct fwd__req *next;
} fwd__req;

/* How long an answer waits for this controller to apply its entry: past
 * it, the client hears the answer anyway (this controller trails). */
#define FWD_READ_WAIT_MS 2000

#define FWD_TRIES 3

static void fwd__send(jzd *d, fwd__req *f);

static void fwd__finish(fwd__req *f)
{
    wire_msg_free(f->m);
    free(f->w);
    free(f);
}

/* Relays the leader's answer (or why there is none) to the client, and
 * ends the forwarded request. Takes reply. */
static void fwd__answer(fwd__req *f, wire_msg *reply, const char *why)
{
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    net_conn *c = req_unwait(f->w);
    if (c && r) {
        Jazari__Envelope copy = *r;
        copy.request_id = f->w->request_id;
        copy.caller = NULL;
        net_conn_send(c, &copy);
    } else if (c) {
        req_error(c, f->w->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false, "cannot reach the leader: %s",
                  why ? why : "no answer");
    }
    wire_msg_free(reply);
    fwd__finish(f);
}

/* Points the uplink at the leader, or at the next controller to ask. */
void fwd_retarget(jzd *d, const char *hint)
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
void fwd_rotate(jzd *d)
{
    if (!d->ctl_running && d->n_peers > 0) {
        d->target = (d->target + 1) % d->n_peers;
        uplink_retarget(&d->up, d->peers[d->target].address);
    } else {
        fwd_retarget(d, NULL);
    }
}

static void fwd__done(void *arg, wire_msg *reply, const char *why, bool sent)
{
    fwd__req *f = arg;
    jzd *d = f->w->d;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    bool retry = false;
    if (!r) {
        fwd_rotate(d);
        /* A write that reached the leader may have been committed: only a
         * request that never left is sent again. */
        retry = !sent;
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        fwd_retarget(d, r->error->leader);
        retry = true;
    }
    if (retry && ++f->tries < FWD_TRIES && !d->stopping) {
        wire_msg_free(reply);
        fwd__send(d, f);
        return;
    }
    if (r && r->applied_index > req_applied(d) && d->ctl_running && !d->stopping) {
        /* The client will read here next: answer once this controller
         * has applied the write (fwd_applied). */
        f->reply = reply;
        f->index = r->applied_index;
        f->deadline = uv_now(&d->loop) + FWD_READ_WAIT_MS;
        f->next = d->parked;
        d->parked = f;
        return;
    }
    fwd__answer(f, reply, why);
}

void fwd_applied(jzd *d, bool all)
{
    uint64_t applied = req_applied(d), now = uv_now(&d->loop);
    for (fwd__req **p = &d->parked; *p;) {
        fwd__req *f = *p;
        if (!all && f->index > applied && now < f->deadline) {
            p = &f->next;
            continue;
        }
        *p = f->next;
        fwd__answer(f, f->reply, NULL);
    }
}

static void fwd__send(jzd *d, fwd__req *f)
{
    Jazari__Envelope copy = *wire_msg_env(f->m);
    copy.caller = f->has_caller ? &f->caller : NULL;
    copy.error = NULL;
    uplink_request(&d->up, &copy, fwd__done, f);
}

/* Sends a local client's request on to the leader and relays the answer.
 * A request that was itself forwarded is never forwarded again: its sender
 * hears NOT_LEADER and retries at the leader. */
void fwd_request(jzd *d, net_conn *c, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    if (c->kind != NET_UNIX) {
        req_not_leader(d, c, e->request_id);
        wire_msg_free(m);
        return;
    }
    fwd__req *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->w = req_wait(d, c, e);
    f->m = m;
    if (c->have_creds) {
        req_local_caller(d, c, &f->caller, f->user, sizeof f->user);
        f->has_caller = true;
    }
    fwd_retarget(d, NULL);
    fwd__send(d, f);
}

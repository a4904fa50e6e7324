/* beat.c - the leader's answers to heartbeats, held as long polls: an
 * agent sends back the digest of the run list it last got, and while its
 * list is unchanged the leader holds the request (at most its wait_ms).
 * When an entry that starts, ends or moves jobs is applied, every held
 * request whose list changed is answered at once: a gang's parts start on
 * all their nodes within milliseconds, and a job's stop reaches them as
 * fast, instead of at the next heartbeat. */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"

#define BEAT_CHECK_MS 100

struct jzd_held {
    jzd_wait *w;
    char name[CONFIG_NAME_MAX + 1];
    uint64_t digest;   /* what the agent has */
    uint64_t deadline; /* uv_now */
    uint64_t applied;  /* the applied index its list was last compared at */
};

static void beat__on_timer(uv_timer_t *t);

/* Answers with node's run list, unless it still has digest `have` and
 * hold is set. Returns whether it answered. */
static bool beat__answer(jzd *d, net_conn *c, uint64_t request_id, const char *name, uint64_t have, bool hold)
{
    const fsm_node *n = fsm_node_get(&d->ctl.state, name);
    Jazari__HeartbeatReply r = JAZARI__HEARTBEAT_REPLY__INIT;
    r.known = n && strcmp(n->state, "up") == 0;
    r.digest = run_digest_on(d, r.known ? name : ""); /* not known: the empty list's */
    if (hold && r.known && r.digest == have)
        return false;
    size_t nrun = 0;
    Jazari__Job **run = r.known ? run_jobs_on(d, name, &nrun) : NULL;
    r.run = run;
    r.n_run = nrun;
    r.applied = raft_last_applied(&d->ctl.raft);
    r.lost_after_ms = d->lost_after_rule_ms;
    wire_reply out;
    wire_reply_init(&out, request_id, JAZARI__ERROR_CODE__OK, NULL);
    out.env.body_case = JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY;
    out.env.heartbeat_reply = &r;
    net_conn_send(c, &out.env);
    run_jobs_free(run, nrun);
    return true;
}

void beat_answer(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__HeartbeatRequest *hb = e->heartbeat_request;
    uint32_t wait = hb->wait_ms < BEAT_WAIT_MAX_MS ? hb->wait_ms : BEAT_WAIT_MAX_MS;
    if (beat__answer(d, c, e->request_id, hb->name, hb->digest, wait > 0 && !d->stopping))
        return;
    if (d->n_held == d->held_cap) {
        d->held_cap = d->held_cap ? d->held_cap * 2 : 16;
        struct jzd_held *p = realloc(d->held, d->held_cap * sizeof *p);
        if (!p)
            abort();
        d->held = p;
    }
    struct jzd_held *h = &d->held[d->n_held++];
    h->w = req_wait(d, c, e);
    snprintf(h->name, sizeof h->name, "%s", hb->name);
    h->digest = hb->digest;
    h->deadline = uv_now(&d->loop) + wait;
    h->applied = raft_last_applied(&d->ctl.raft);
    if (!uv_is_active((uv_handle_t *)&d->beat_timer))
        uv_timer_start(&d->beat_timer, beat__on_timer, BEAT_CHECK_MS, BEAT_CHECK_MS);
}

/* Answers the held requests that are due: all (force), changed lists, or
 * past their deadline. */
static void beat__sweep(jzd *d, bool force)
{
    uint64_t now = uv_now(&d->loop);
    size_t k = 0;
    for (size_t i = 0; i < d->n_held; i++) {
        struct jzd_held *h = &d->held[i];
        bool due = force || now >= h->deadline || !req_is_leader(d);
        net_conn *c = h->w->conn;
        if (!c) { /* the agent went away */
            req_unwait(h->w);
            free(h->w);
            continue;
        }
        if (due && !req_is_leader(d)) {
            req_unwait(h->w);
            req_not_leader(d, c, h->w->request_id);
            free(h->w);
            continue;
        }
        /* A run list changes only with an applied entry: while none was,
         * a held heartbeat that is not due costs a comparison, not a
         * fresh list (10,000 held ones, ten sweeps a second, were most
         * of a leader's steady cost). */
        uint64_t applied = raft_last_applied(&d->ctl.raft);
        if ((due || h->applied != applied) &&
            beat__answer(d, c, h->w->request_id, h->name, h->digest, !due)) {
            req_unwait(h->w);
            free(h->w);
            continue;
        }
        h->applied = applied;
        d->held[k++] = *h;
    }
    d->n_held = k;
    if (k == 0 && uv_is_active((uv_handle_t *)&d->beat_timer))
        uv_timer_stop(&d->beat_timer);
}

static void beat__on_timer(uv_timer_t *t)
{
    beat__sweep(t->data, false);
}

void beat_wake(jzd *d)
{
    /* From the loop, not from inside libraft's apply: by then its applied
     * index counts this entry, and the answers say so. */
    if (d->n_held)
        uv_timer_start(&d->beat_timer, beat__on_timer, 0, BEAT_CHECK_MS);
}

void beat_close(jzd *d)
{
    beat__sweep(d, true);
    free(d->held);
    d->held = NULL;
    d->n_held = d->held_cap = 0;
}

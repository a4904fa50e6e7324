/* hloop.c - the leader's closed loop of health. Each node reports its
 * active health conditions (its GPUs' through NVML, its health_program's)
 * in its heartbeat when they change; the leader's own node reports here
 * directly. What changed is looked up in the policy's health table
 * (pol_health_rule) and becomes, through the log, what an admin would do:
 * an event for a warning, a drain of the GPU or the node (with its jobs
 * requeued at once, or let finish), and, when the condition clears and the
 * policy says so, the resume of what the health checks drained. What the
 * leader remembers of each node's set is soft state: a new leader learns
 * it from the next reports (agents send theirs again to a new leader), and
 * the drains themselves are in the replicated state, so a condition that
 * cleared meanwhile still resumes its drain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"

#define HLOOP_NAME_MAX 31
#define HLOOP_TEXT_MAX 200

typedef struct hloop_cond {
    char name[HLOOP_NAME_MAX + 1];
    int32_t gpu; /* -1: the node */
    char text[HLOOP_TEXT_MAX + 1];
} hloop_cond;

/* A node's health events (warnings, clears) per window, at most: a node
 * whose conditions flap (a broken sensor, a compromised daemon) must not
 * push the network's history out of the events' ring. */
#define HLOOP_EVENTS_PER_WINDOW 30
#define HLOOP_WINDOW_MS 60000

/* What the leader last heard of one node. */
typedef struct hloop_node {
    char *name;
    hloop_cond *c;
    size_t n;
    uint64_t window_ms; /* uv_now when the window began */
    uint32_t events, suppressed;
} hloop_node;

struct hloop {
    hloop_node *nodes;
    size_t n, cap;
    uint64_t term; /* the term they were heard in: a new term forgets them */
};

void hloop_free(jzd *d)
{
    struct hloop *h = d->hloop;
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->nodes[i].name);
        free(h->nodes[i].c);
    }
    free(h->nodes);
    free(h);
    d->hloop = NULL;
}

static hloop_node *hloop__node(jzd *d, const char *name)
{
    uint64_t term = d->ctl.raft.current_term;
    if (d->hloop && d->hloop->term != term)
        hloop_free(d); /* heard by another leader, or in another term: unknown */
    if (!d->hloop) {
        d->hloop = xcalloc(1, sizeof *d->hloop);
        d->hloop->term = term;
    }
    struct hloop *h = d->hloop;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->nodes[i].name, name) == 0)
            return &h->nodes[i];
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->nodes = xrealloc_array(h->nodes, h->cap, sizeof *h->nodes);
    }
    hloop_node *n = &h->nodes[h->n++];
    memset(n, 0, sizeof *n);
    n->name = xstrdup(name);
    n->n = SIZE_MAX; /* nothing heard yet */
    return n;
}

static bool hloop__has(const hloop_cond *c, size_t n, const hloop_cond *x)
{
    for (size_t i = 0; n != SIZE_MAX && i < n; i++)
        if (c[i].gpu == x->gpu && strcmp(c[i].name, x->name) == 0)
            return true;
    return false;
}

/* A condition as reported, checked: a name of [a-z0-9_*], a GPU the node
 * has, printable text (cut). false: dropped. */
static bool hloop__take(const fsm_node *n, const Jazari__HealthCondition *in, hloop_cond *out)
{
    const char *name = in->name ? in->name : "";
    size_t len = strlen(name);
    if (len == 0 || len > HLOOP_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
        return false;
    if (in->gpu < -1 || (in->gpu >= 0 && (size_t)in->gpu >= n->topo->n_gpus))
        return false;
    memcpy(out->name, name, len + 1);
    out->gpu = in->gpu;
    const char *t = in->text ? in->text : "";
    snprintf(out->text, sizeof out->text, "%s", fsm_printable(t, HLOOP_TEXT_MAX) ? t : "(unprintable text)");
    return true;
}

/* What a drain by the health checks says: "CONDITION: text". */
static void hloop__reason(const hloop_cond *c, char *s, size_t len)
{
    snprintf(s, len, "%s: %s", c->name, c->text);
}

/* Whether an active condition still asks for a drain of target (a GPU, or
 * -1 the node). */
static bool hloop__wanted(const pol *po, const hloop_cond *c, size_t n, int32_t target)
{
    for (size_t i = 0; i < n; i++) {
        pol_hrule r = pol_health_rule(po, c[i].name);
        bool node = r.action == POL_HEALTH_DRAIN_NODE || (r.action == POL_HEALTH_DRAIN_GPU && c[i].gpu < 0);
        if ((node && target < 0) || (r.action == POL_HEALTH_DRAIN_GPU && c[i].gpu >= 0 && c[i].gpu == target))
            return true;
    }
    return false;
}

/* A health event of node h, unless its window's share is spent; the
 * first of the next window says how many were left out. */
static void hloop__event(jzd *d, hloop_node *h, const char *kind, const char *severity, int32_t gpu,
                         const char *text)
{
    uint64_t now = uv_now(&d->loop);
    if (now - h->window_ms >= HLOOP_WINDOW_MS) {
        if (h->suppressed) {
            char note[160];
            snprintf(note, sizeof note,
                     "%u health events of this node left out in the last %d s (conditions flapping)",
                     h->suppressed, HLOOP_WINDOW_MS / 1000);
            events_note(d, "health", "warning", h->name, -1, note);
        }
        h->window_ms = now;
        h->events = h->suppressed = 0;
    }
    if (h->events >= HLOOP_EVENTS_PER_WINDOW) {
        h->suppressed++;
        return;
    }
    h->events++;
    events_note(d, kind, severity, h->name, gpu, text);
}

/* A new condition: what the policy says it does. drained: the targets
 * this report drains already (-1 the node, GPUs from 0), at most
 * HLOOP_CONDS_MAX, *nd of them: one drain each, whatever else asks. */
static void hloop__raise(jzd *d, hloop_node *h, const fsm_node *n, const hloop_cond *c, int32_t *drained,
                         size_t *nd)
{
    const pol *po = d->cfg->pol;
    pol_hrule r = pol_health_rule(po, c->name);
    char reason[HLOOP_NAME_MAX + HLOOP_TEXT_MAX + 8];
    hloop__reason(c, reason, sizeof reason);
    if (c->gpu >= 0)
        log_info("health", "%s GPU %d: %s: %s", n->name, c->gpu, reason, pol_health_action_name(r.action));
    else
        log_info("health", "%s: %s: %s", n->name, reason, pol_health_action_name(r.action));
    if (r.action == POL_HEALTH_NONE)
        return;
    if (r.action == POL_HEALTH_WARN) {
        hloop__event(d, h, "health", "warning", c->gpu, reason);
        return;
    }
    int32_t target = r.action == POL_HEALTH_DRAIN_NODE ? -1 : c->gpu;
    for (size_t i = 0; i < *nd; i++)
        if (drained[i] == target || drained[i] == -1) {
            hloop__event(d, h, "health", "warning", c->gpu, reason);
            return;
        }
    const fsm_drain *have = fsm_drain_get(n, target);
    if (have && strcmp(have->source, "health") == 0 && strcmp(have->reason, reason) == 0)
        return; /* its drain is in the state: heard again by a new leader */
    /* Drained already (another condition, an admin): only to requeue what
     * still runs there. */
    if (have && !(r.requeue && fsm_node_busy(&d->ctl.state, n->name, target))) {
        hloop__event(d, h, "health", "warning", c->gpu, reason);
        return;
    }
    drains_propose(d, n->name, target, false, r.requeue, "health", reason);
    if (*nd < HLOOP_CONDS_MAX)
        drained[(*nd)++] = target;
}

void hloop_report(jzd *d, const char *node, Jazari__HealthCondition *const *in, size_t n_in)
{
    const fsm_node *n = fsm_node_get(&d->ctl.state, node);
    if (!n || !req_is_leader(d))
        return;
    size_t cap = n_in < HLOOP_CONDS_MAX ? n_in : HLOOP_CONDS_MAX;
    hloop_cond *now = xcalloc(cap ? cap : 1, sizeof *now);
    size_t k = 0;
    for (size_t i = 0; i < cap; i++)
        if (hloop__take(n, in[i], &now[k]) && !hloop__has(now, k, &now[k]))
            k++;
    if (n_in > cap || k < cap)
        log_warn("health", "%s reported %zu conditions: %zu kept (bad names or GPUs dropped)", node, n_in, k);
    hloop_node *h = hloop__node(d, node);
    bool first = h->n == SIZE_MAX;
    bool changed = first || h->n != k;
    int32_t drained[HLOOP_CONDS_MAX];
    size_t nd = 0;
    /* The node's drains first: a GPU's would be noise beside it. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < k; i++) {
            bool node_wide =
                now[i].gpu < 0 || pol_health_rule(d->cfg->pol, now[i].name).action == POL_HEALTH_DRAIN_NODE;
            if (hloop__has(h->c, h->n, &now[i]) || node_wide != (pass == 0))
                continue;
            changed = true;
            hloop__raise(d, h, n, &now[i], drained, &nd);
        }
    for (size_t i = 0; !first && i < h->n; i++) {
        if (hloop__has(now, k, &h->c[i]))
            continue;
        changed = true;
        pol_hrule r = pol_health_rule(d->cfg->pol, h->c[i].name);
        if (r.action != POL_HEALTH_NONE) {
            char text[HLOOP_NAME_MAX + 64];
            snprintf(text, sizeof text, "%s cleared", h->c[i].name);
            hloop__event(d, h, "health_clear", "info", h->c[i].gpu, text);
        }
    }
    /* The health checks' drains no active condition asks for any more:
     * resumed when the condition that made them resumes by itself. */
    for (uint32_t i = 0; changed && i < n->n_drains; i++) {
        const fsm_drain *dr = &n->drains[i];
        if (strcmp(dr->source, "health") != 0 || hloop__wanted(d->cfg->pol, now, k, dr->gpu))
            continue;
        char cond[HLOOP_NAME_MAX + 1];
        snprintf(cond, sizeof cond, "%.*s", (int)strcspn(dr->reason, ":"), dr->reason);
        if (!pol_health_rule(d->cfg->pol, cond).resume_auto)
            continue; /* it waits for jz resume */
        char why[HLOOP_NAME_MAX + 64];
        snprintf(why, sizeof why, "%s cleared", cond);
        drains_propose(d, node, dr->gpu, true, false, "health", why);
    }
    free(h->c);
    h->c = now;
    h->n = k;
}

/* burnin.c - the burn-in of a new or repaired node: its burnin_program
 * (jazari-burnin: a memory pattern test over most of each GPU's memory and
 * a matrix multiply checked against the CPU) run by `jz node check NAME`,
 * and, when the policy says `burnin on-join`, by the leader's own asking
 * when a node with GPUs joins.
 *
 * On the node: one run at a time, only while no job runs there (a node
 * with jobs is drained first); its output kept (bounded); its verdict sent
 * to the leader (BurnInResult), which drains the node on a failure (source
 * "burnin", the program's first line as the reason) and resumes a drain of
 * source "burnin" on a pass. A run lasts minutes, longer than a relayed
 * request may wait: jz starts it, then asks how it goes (BurnInRequest with
 * start false) until the reply says done.
 *
 * On the leader: `burnin on-join` drains a joining GPU node ("burn-in
 * pending", before any job can land there); every tick, each up node with
 * that drain is asked to run its burn-in (again after burnin_timeout, in
 * case its verdict was lost; sooner after a refusal). What the leader
 * remembers of whom it asked is soft state: the drains are in the log, so
 * a new leader asks again. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "prog.h"

#define BURNIN_SUBSYS "burnin"
#define BURNIN_OUT_MAX 8192   /* bytes of the program's output kept and shown */
#define BURNIN_TELL_TRIES 30  /* the verdict is sent to the leader this many times at most */
#define BURNIN_RETRY_MS 30000 /* leader: a pending node that refused is asked again after this */
#define BURNIN_SLACK_MS 60000 /* leader: and one that took it, after its timeout and this */
#define BURNIN_PENDING "burn-in pending"
#define BURNIN_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Leader: when a pending node may be asked again. */
typedef struct burnin__asked {
    char name[FSM_NAME_MAX + 1];
    uint64_t next; /* uv_now */
} burnin__asked;

struct burnin {
    /* This node's runs. */
    prog *run;        /* the run in progress, NULL when none */
    uint64_t run_id;  /* the last run's number (0: none since the daemon started) */
    uint64_t started; /* uv_now */
    uint64_t elapsed_ms;
    bool ended, passed;
    char reason[FSM_DRAIN_TEXT_MAX + 1];
    char *output; /* BURNIN_OUT_MAX + 1 */
    size_t output_len;
    /* Its verdict, to the leader. */
    bool told, gave_up, telling;
    unsigned tries;
    char note[300];
    /* Leader: the pending nodes asked, in this term. */
    burnin__asked *asked;
    size_t n_asked, cap_asked;
    uint64_t asked_term;
    bool closing;
};

static struct burnin *burnin__get(jzd *d)
{
    if (!d->burnin) {
        d->burnin = xcalloc(1, sizeof *d->burnin);
        d->burnin->output = xcalloc(BURNIN_OUT_MAX + 1, 1);
    }
    return d->burnin;
}

/* burnin_program, or jazari-burnin beside jazarid. */
static void burnin__program(const jzd *d, char *path, size_t len)
{
    const char *set = d->cfg->burnin_program;
    if (set && *set) {
        snprintf(path, len, "%s", set);
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", d->ex.exe);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, len, "%s/jazari-burnin", slash ? dir : ".");
}

/* The parts of jobs running here now. */
static size_t burnin__busy(const jzd *d)
{
    size_t n = 0;
    for (const exec_part *p = d->ex.parts; p; p = p->next)
        n += p->running;
    return n;
}

/* --- the leader: verdicts ------------------------------------------------- */

/* Leader: node may be asked at once the next time it is pending (a
 * verdict came, or it joined anew). */
static void burnin__forget(jzd *d, const char *node)
{
    struct burnin *b = d->burnin;
    for (size_t i = 0; b && i < b->n_asked; i++)
        if (strcmp(b->asked[i].name, node) == 0)
            b->asked[i].next = 0;
}

typedef struct burnin__verdict {
    jzd *d;
    jzd_wait *w; /* a node's BurnInResult; NULL: the leader's own node */
    bool drained, resumed;
    char note[300];
} burnin__verdict;

static void burnin__verdict_end(burnin__verdict *v, Jazari__ErrorCode code, const char *message)
{
    jzd *d = v->d;
    if (v->w) {
        net_conn *c = req_unwait(v->w);
        if (c && code != JAZARI__ERROR_CODE__OK) {
            req_error(c, v->w->request_id, code, false, "%s", message);
        } else if (c) {
            Jazari__BurnInResultReply r = JAZARI__BURN_IN_RESULT_REPLY__INIT;
            r.drained = v->drained;
            r.resumed = v->resumed;
            r.note = v->note;
            req_reply(c, v->w->request_id, JAZARI__ENVELOPE__BODY_BURN_IN_RESULT_REPLY, &r);
        }
        free(v->w);
    } else if (d->burnin && !d->burnin->closing) {
        struct burnin *b = d->burnin;
        b->telling = false;
        if (code == JAZARI__ERROR_CODE__OK) {
            b->told = true;
            snprintf(b->note, sizeof b->note, "%s", v->note);
        } else {
            b->tries++; /* the tick tries again */
            snprintf(b->note, sizeof b->note, "the leader was not told: %s", message);
        }
    }
    if (code == JAZARI__ERROR_CODE__OK && v->resumed)
        run_schedule(d); /* a resumed node takes work */
    free(v);
}

static void burnin__verdict_committed(void *arg, const ctl_outcome *o)
{
    burnin__verdict *v = arg;
    burnin__verdict_end(v, o->code, o->message);
}

/* What a verdict does, on the leader: a failure drains the node (unless
 * another source drained it: then an event says so, and its drain stays
 * theirs), a pass resumes the burn-in's own drain. v is ended (now or
 * once the entry commits). */
static void burnin__decide(jzd *d, const char *node, bool passed, const char *reason, burnin__verdict *v)
{
    const fsm_node *n = fsm_node_get(&d->ctl.state, node);
    if (!n) {
        burnin__verdict_end(v, JAZARI__ERROR_CODE__NOT_FOUND, "the node is not in the state");
        return;
    }
    char text[FSM_DRAIN_TEXT_MAX + 1];
    snprintf(text, sizeof text, "%s",
             reason && fsm_printable(reason, FSM_DRAIN_TEXT_MAX) && *reason ? reason
             : passed                                                       ? "passed"
                                                                            : "failed");
    const fsm_drain *dr = fsm_drain_get(n, -1);
    bool ours = dr && strcmp(dr->source, "burnin") == 0;
    log_info(BURNIN_SUBSYS, "%s %s its burn-in: %s", node, passed ? "passed" : "failed", text);
    burnin__forget(d, node);
    if (passed && ours) {
        v->resumed = true;
        snprintf(v->note, sizeof v->note, "its burn-in drain (%s) is resumed", dr->reason);
        drains_propose_then(d, node, -1, true, false, "burnin", "burn-in passed", burnin__verdict_committed,
                            v);
        return;
    }
    if (!passed && (!dr || ours)) {
        v->drained = true;
        snprintf(v->note, sizeof v->note, "node %s drained (source burnin): %s", node, text);
        drains_propose_then(d, node, -1, false, false, "burnin", text, burnin__verdict_committed, v);
        return;
    }
    char what[FSM_DRAIN_TEXT_MAX + 64];
    snprintf(what, sizeof what, "burn-in %s: %s", passed ? "passed" : "failed", text);
    events_note(d, "burnin", passed ? "info" : "warning", node, -1, what);
    if (dr)
        snprintf(v->note, sizeof v->note, "node %s stays drained by %s (%s): resume it with jz resume", node,
                 dr->source, dr->reason);
    else
        snprintf(v->note, sizeof v->note, "node %s was not drained: nothing to resume", node);
    burnin__verdict_end(v, JAZARI__ERROR_CODE__OK, NULL);
}

void burnin_result(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__BurnInResult *q = e->burn_in_result;
    if (!q->node || !req_peer_is_node(d, c, q->node)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "a node reports its own burn-in only, with its own certificate");
        return;
    }
    burnin__verdict *v = xcalloc(1, sizeof *v);
    v->d = d;
    v->w = req_wait(d, c, e);
    burnin__decide(d, q->node, q->passed, q->reason, v);
}

/* --- the node: its verdict to the leader ------------------------------------ */

static void burnin__told(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    struct burnin *b = d->burnin;
    (void)sent;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    if (b && !b->closing) {
        b->telling = false;
        if (r && r->error && r->error->code == JAZARI__ERROR_CODE__OK &&
            r->body_case == JAZARI__ENVELOPE__BODY_BURN_IN_RESULT_REPLY) {
            b->told = true;
            snprintf(b->note, sizeof b->note, "%s",
                     r->burn_in_result_reply->note ? r->burn_in_result_reply->note : "");
            log_info(BURNIN_SUBSYS, "the leader took the verdict: %s", b->note);
        } else {
            if (r && r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER)
                fwd_retarget(d, r->error->leader);
            snprintf(b->note, sizeof b->note, "the leader was not told: %s",
                     r && r->error && r->error->message ? r->error->message
                     : why                              ? why
                                                        : "no answer");
            if (++b->tries >= BURNIN_TELL_TRIES) {
                b->gave_up = true;
                log_warn(BURNIN_SUBSYS, "%s (gave up after %u tries)", b->note, b->tries);
            }
        }
    }
    wire_msg_free(reply);
}

/* Sends the verdict to the leader (or decides it, on the leader). */
static void burnin__tell(jzd *d)
{
    struct burnin *b = d->burnin;
    if (req_is_leader(d)) {
        burnin__verdict *v = xcalloc(1, sizeof *v);
        v->d = d;
        if (b->tries >= BURNIN_TELL_TRIES) {
            b->gave_up = true;
            free(v);
            return;
        }
        b->telling = true;
        burnin__decide(d, d->cfg->name, b->passed, b->reason, v);
        return;
    }
    if (d->n_peers == 0) {
        b->gave_up = true;
        snprintf(b->note, sizeof b->note, "no controller known: the leader was not told");
        return;
    }
    Jazari__BurnInResult q = JAZARI__BURN_IN_RESULT__INIT;
    q.node = (char *)d->cfg->name;
    q.run = b->run_id;
    q.passed = b->passed;
    q.reason = b->reason;
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_BURN_IN_RESULT;
    env.burn_in_result = &q;
    b->telling = true;
    uplink_request(&d->up, &env, burnin__told, d);
}

/* --- the node: a run ------------------------------------------------------- */

static void burnin__done(void *arg, const prog_result *r)
{
    jzd *d = arg;
    struct burnin *b = d->burnin;
    char path[PATH_MAX];
    burnin__program(d, path, sizeof path);
    b->run = NULL;
    b->ended = true;
    b->passed = prog_passed(r);
    b->elapsed_ms = r->elapsed_ms;
    prog_summary(r, "burn-in program", path, d->cfg->burnin_timeout_ms, b->reason, sizeof b->reason);
    b->output_len = r->out_len < BURNIN_OUT_MAX ? r->out_len : BURNIN_OUT_MAX;
    memcpy(b->output, r->out, b->output_len);
    b->output[b->output_len] = '\0';
    if (b->passed)
        log_info(BURNIN_SUBSYS, "burn-in %llu passed in %.1f s: %s", (unsigned long long)b->run_id,
                 (double)r->elapsed_ms / 1000.0, b->reason);
    else
        log_warn(BURNIN_SUBSYS, "burn-in %llu failed after %.1f s: %s", (unsigned long long)b->run_id,
                 (double)r->elapsed_ms / 1000.0, b->reason);
    burnin__tell(d);
}

/* Starts a run (or joins the one running). 0, or -1 with code and why. */
static int burnin__start(jzd *d, const char *by, Jazari__ErrorCode *code, char *why, size_t len)
{
    struct burnin *b = burnin__get(d);
    const char *me = d->cfg->name;
    if (b->run)
        return 0;
    *code = JAZARI__ERROR_CODE__BAD_REQUEST;
    if (!d->topo || d->topo->n_gpus == 0) {
        snprintf(why, len, "node %s has no GPU: there is nothing to burn in", me);
        return -1;
    }
    char path[PATH_MAX];
    burnin__program(d, path, sizeof path);
    if (access(path, X_OK) != 0) {
        if (d->cfg->burnin_program && *d->cfg->burnin_program)
            snprintf(why, len, "no burn-in program on %s: burnin_program %s cannot be run (%s)", me, path,
                     strerror(errno));
        else
            snprintf(why, len,
                     "no burn-in program on %s: build with the CUDA toolkit (nvcc) to get %s, or set "
                     "burnin_program",
                     me, path);
        return -1;
    }
    size_t busy = burnin__busy(d);
    if (busy) {
        snprintf(
            why, len,
            "node %s runs %zu job part%s: drain it first (jz drain %s --reason TEXT), then check it once "
            "nothing runs there",
            me, busy, busy == 1 ? "" : "s", me);
        return -1;
    }
    char node[CONFIG_NAME_MAX + 16], budget[64];
    snprintf(node, sizeof node, "JAZARI_NODE=%s", me);
    /* The program paces itself to finish well within the timeout. */
    uint64_t budget_s = d->cfg->burnin_timeout_ms / 1000 * 8 / 10 + 1;
    snprintf(budget, sizeof budget, "JAZARI_BURNIN_BUDGET_S=%llu", (unsigned long long)budget_s);
    char *args[] = {path, NULL};
    char *env[] = {BURNIN_PATH, node, budget, NULL};
    b->run_id++;
    b->ended = b->passed = b->told = b->gave_up = false;
    b->tries = 0;
    b->reason[0] = b->note[0] = b->output[0] = '\0';
    b->output_len = 0;
    b->elapsed_ms = 0;
    b->started = uv_now(&d->loop);
    b->run =
        prog_start(&d->loop, path, args, env, d->cfg->burnin_timeout_ms, BURNIN_OUT_MAX, burnin__done, d);
    log_info(BURNIN_SUBSYS, "burn-in %llu started by %s: %s (pid %d, timeout %llu s)",
             (unsigned long long)b->run_id, by, path, prog_pid(b->run),
             (unsigned long long)(d->cfg->burnin_timeout_ms / 1000));
    return 0;
}

static void burnin__reply(jzd *d, net_conn *c, uint64_t request_id)
{
    struct burnin *b = d->burnin;
    Jazari__BurnInReply r = JAZARI__BURN_IN_REPLY__INIT;
    r.node = (char *)d->cfg->name;
    r.run = b->run_id;
    r.running = b->run != NULL;
    r.done = b->ended && (b->told || b->gave_up);
    r.passed = b->ended && b->passed;
    r.reason = b->reason;
    r.output = b->output;
    r.elapsed_ms = b->run ? uv_now(&d->loop) - b->started : b->elapsed_ms;
    r.timeout_ms = d->cfg->burnin_timeout_ms;
    r.leader_note = b->note;
    req_reply(c, request_id, JAZARI__ENVELOPE__BODY_BURN_IN_REPLY, &r);
}

void burnin_request(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__BurnInRequest *q = e->burn_in_request;
    authz_who w;
    if (!q->node || !config_valid_name(q->node)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "jz node check: which node?");
        return;
    }
    if (strcmp(q->node, d->cfg->name) != 0) {
        /* Another node's: a controller decides who may, then relays it to
         * the node; an agent relays it through a controller. */
        if (d->ctl_running ? !req_admin(d, c, e, &w, "jz node check") : !req_who(d, c, e, &w))
            return;
        /* A job placed there that the node has not started yet is as
         * much in the way as one it runs. */
        if (q->start && d->ctl_running && fsm_node_busy(&d->ctl.state, q->node, -1)) {
            req_error(
                c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                "node %s runs jobs: drain it first (jz drain %s --reason TEXT), then check it once nothing "
                "runs there",
                q->node, q->node);
            return;
        }
        Jazari__BurnInRequest fwd = *q;
        fwd.hops = q->hops + 1;
        Jazari__Envelope copy = *e;
        copy.burn_in_request = &fwd;
        logs_relay(d, c, e, &copy, &w, "jz node check", q->node, q->hops);
        return;
    }
    if (!req_admin(d, c, e, &w, "jz node check"))
        return;
    struct burnin *b = burnin__get(d);
    if (q->start) {
        Jazari__ErrorCode code;
        char why[600];
        if (burnin__start(d, w.user, &code, why, sizeof why) != 0) {
            log_info(BURNIN_SUBSYS, "burn-in asked by %s refused: %s", w.user, why);
            req_error(c, e->request_id, code, false, "%s", why);
            return;
        }
    } else if (b->run_id == 0 || (q->run && q->run != b->run_id)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "no burn-in run %llu on %s (its daemon restarted, or another run began)",
                  (unsigned long long)q->run, d->cfg->name);
        return;
    }
    burnin__reply(d, c, e->request_id);
}

/* --- the leader: on join ---------------------------------------------------- */

bool burnin_wants(jzd *d, const Jazari__NodeRecord *rec)
{
    const pol *po = d->cfg->pol;
    if (!po || !po->burnin_on_join || !rec->topology || rec->topology->n_gpus == 0)
        return false;
    const fsm_node *n = fsm_node_get(&d->ctl.state, rec->name);
    if (!n)
        return true; /* new to the network */
    if (n->topo->n_gpus != rec->topology->n_gpus)
        return true;
    /* Another set of boards (a repaired node): by UUID, where known. */
    for (size_t i = 0; i < rec->topology->n_gpus; i++) {
        const char *u = rec->topology->gpus[i]->uuid;
        bool found = !u || !*u;
        for (size_t k = 0; !found && k < n->topo->n_gpus; k++)
            found = n->topo->gpus[k].uuid && strcmp(n->topo->gpus[k].uuid, u) == 0;
        if (!found)
            return true;
    }
    return false;
}

void burnin_joined(jzd *d, const char *node)
{
    log_info(BURNIN_SUBSYS,
             "%s joins with GPUs new to the network: drained until its burn-in passes (burnin "
             "on-join)",
             node);
    drains_propose(d, node, -1, false, false, "burnin", BURNIN_PENDING);
    burnin__forget(d, node);
}

static burnin__asked *burnin__asked_get(struct burnin *b, const char *name)
{
    for (size_t i = 0; i < b->n_asked; i++)
        if (strcmp(b->asked[i].name, name) == 0)
            return &b->asked[i];
    if (b->n_asked == b->cap_asked) {
        b->cap_asked = b->cap_asked ? b->cap_asked * 2 : 8;
        b->asked = xrealloc_array(b->asked, b->cap_asked, sizeof *b->asked);
    }
    burnin__asked *a = &b->asked[b->n_asked++];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->next = 0;
    return a;
}

typedef struct burnin__ask {
    jzd *d;
    char name[FSM_NAME_MAX + 1];
} burnin__ask;

static void burnin__asked_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    burnin__ask *k = arg;
    jzd *d = k->d;
    (void)sent;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    bool ok = r && r->error && r->error->code == JAZARI__ERROR_CODE__OK;
    struct burnin *b = d->burnin;
    if (!ok && b && !b->closing) {
        log_warn(BURNIN_SUBSYS, "%s did not start its burn-in: %s (asked again in %d s)", k->name,
                 r && r->error && r->error->message ? r->error->message
                 : why                              ? why
                                                    : "no answer",
                 BURNIN_RETRY_MS / 1000);
        for (size_t i = 0; i < b->n_asked; i++)
            if (strcmp(b->asked[i].name, k->name) == 0)
                b->asked[i].next = uv_now(&d->loop) + BURNIN_RETRY_MS;
    } else if (ok) {
        log_info(BURNIN_SUBSYS, "%s runs its burn-in (run %llu)", k->name,
                 (unsigned long long)r->burn_in_reply->run);
    }
    wire_msg_free(reply);
    free(k);
}

/* Leader: asks each up node drained "burn-in pending" to run its burn-in. */
static void burnin__ask_pending(jzd *d)
{
    struct burnin *b = burnin__get(d);
    uint64_t term = d->ctl.raft.current_term, now = uv_now(&d->loop);
    if (b->asked_term != term) {
        b->n_asked = 0; /* another term: asked again */
        b->asked_term = term;
    }
    const fsm *f = &d->ctl.state;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *n = &f->nodes[i];
        if (!n->n_drains)
            continue;
        const fsm_drain *dr = fsm_drain_get(n, -1);
        if (!dr || strcmp(dr->source, "burnin") != 0 || strcmp(dr->reason, BURNIN_PENDING) != 0 ||
            strcmp(n->state, "up") != 0)
            continue;
        burnin__asked *a = burnin__asked_get(b, n->name);
        if (now < a->next)
            continue;
        a->next = now + d->cfg->burnin_timeout_ms + BURNIN_SLACK_MS;
        if (strcmp(n->name, d->cfg->name) == 0) {
            Jazari__ErrorCode code;
            char why[600];
            if (burnin__start(d, "the leader (burnin on-join)", &code, why, sizeof why) != 0) {
                log_warn(BURNIN_SUBSYS, "%s (asked again in %d s)", why, BURNIN_RETRY_MS / 1000);
                a->next = now + BURNIN_RETRY_MS;
            }
            continue;
        }
        if (!n->address)
            continue;
        Jazari__Caller caller = JAZARI__CALLER__INIT;
        caller.uid = 0;
        caller.user = "root";
        caller.node = (char *)d->cfg->name;
        caller.role = (char *)authz_role_name(AUTHZ_ADMIN);
        caller.from = "burnin on-join";
        Jazari__BurnInRequest q = JAZARI__BURN_IN_REQUEST__INIT;
        q.node = n->name;
        q.hops = 1;
        q.start = true;
        Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
        env.body_case = JAZARI__ENVELOPE__BODY_BURN_IN_REQUEST;
        env.burn_in_request = &q;
        env.caller = &caller;
        burnin__ask *k = xcalloc(1, sizeof *k);
        k->d = d;
        snprintf(k->name, sizeof k->name, "%s", n->name);
        log_info(BURNIN_SUBSYS, "asking %s to run its burn-in (burnin on-join)", n->name);
        uplink_request(logs_link(d, n->address, n->name), &env, burnin__asked_reply, k);
    }
}

/* --- the module -------------------------------------------------------------- */

void burnin_tick(jzd *d)
{
    struct burnin *b = d->burnin;
    if (d->stopping || (b && b->closing))
        return;
    if (b && b->ended && !b->told && !b->gave_up && !b->telling)
        burnin__tell(d);
    if (req_is_leader(d))
        burnin__ask_pending(d);
}

void burnin_close(jzd *d)
{
    struct burnin *b = d->burnin;
    if (!b || b->closing)
        return;
    b->closing = true;
    prog_cancel(b->run); /* its process group is killed */
    b->run = NULL;
}

void burnin_free(jzd *d)
{
    struct burnin *b = d->burnin;
    if (!b)
        return;
    free(b->output);
    free(b->asked);
    free(b);
    d->burnin = NULL;
}

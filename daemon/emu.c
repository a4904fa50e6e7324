/* emu.c - `jazarid --emulate-nodes N --topology-xml FILE [--name NAME]`:
 * one process plays N agents, NAME-00001..., against real controllers, so
 * that the control plane can be measured at 10,000 nodes on one machine.
 *
 * Each emulated node does what a real agent does on the wire (agent.c,
 * run.c): it registers with the leader, heartbeats to it in long polls
 * carrying the digest of its run list, follows the leader when told
 * NOT_LEADER, starts what its run list lists and reports every end with a
 * JobEndRequest. Nothing is forked: a job "runs" for the time its command
 * says (emu__duration_ms) and then ends with exit status 0, so the
 * controllers' scheduling and accounting see ordinary runs.
 *
 * Connections. One connection per node would cost 10,000 descriptors here
 * and 10,000 on the leader, and a TLS session (tens of KiB) each. Instead
 * the nodes share EMU_NODES_PER_LINK-node uplinks: a few dozen connections
 * at 10,000 nodes. The protocol needs no new message for it (every agent
 * request already names its node, and replies are matched by request id);
 * what changes is who may speak for a node: over TLS a controller believes
 * a node's requests only from that node's certificate, and an emulator has
 * one certificate, its own (NAME). Controllers started with
 * `emulated_nodes = on` also believe NAME's certificate for NAME-<digits>
 * (req.c); without it they refuse, so a real network and a real agent
 * behave exactly as before.
 *
 * Memory. The topology is parsed once and its message built once; a node
 * is an emu_node (about 64 bytes) and its jobs' records; the uplinks'
 * buffers are shared by their nodes.
 *
 * A cut (SIGUSR1) silences the first --emulate-cut percent of the nodes
 * (30 by default): no heartbeats, no reports, as a site behind a broken
 * link; SIGUSR2 brings them back, and they register again as real agents
 * do when the leader has marked them down. */
#include "emu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"

/* Nodes per shared connection: few enough that a connection's requests in
 * flight (one held heartbeat per node) stay a short list to match replies
 * in (uplink.c walks it), many enough that 10,000 nodes need 40. */
#define EMU_NODES_PER_LINK 256
#define EMU_TICK_MS 50          /* the one timer: heartbeats due, ends due */
#define EMU_RETAIN_MS 120000    /* an ended run is remembered this long (run.c's RUN_RETAIN_MS) */
#define EMU_BEAT_WAIT_MAX 2000  /* how long the leader may hold a heartbeat (agent.c) */
#define EMU_SLEEP_MAX_S 3153600 /* a `sleep` longer than a year is not believed */

enum { EMU_RUN, EMU_ENDED, EMU_SENDING, EMU_DONE };

typedef struct emu_job {
    uint64_t id;
    uint64_t start_index; /* the view that started it */
    uint64_t at_ms;       /* RUN: when it ends; DONE: when it is forgotten */
    uint32_t attempt;
    uint8_t state;
    bool timed_out, cancelled;
} emu_job;

typedef struct emu emu;

typedef struct emu_node {
    emu *e;
    uint64_t digest;  /* of the run list last heard */
    uint64_t synced;  /* the applied index of the newest view acted on */
    uint64_t next_ms; /* when the next heartbeat is due */
    uint64_t sent_ms; /* when the one in flight left */
    emu_job *jobs;
    uint32_t index; /* 1-based: the name's number */
    uint16_t n_jobs, cap_jobs;
    bool beating; /* a heartbeat or registration in flight */
} emu_node;

typedef struct emu_link {
    uplink up;
    emu *e;
    int target;        /* which controller, when no leader is known */
    uint64_t moved_ms; /* last retarget: a burst of failures moves it once */
} emu_link;

struct emu {
    const config *cfg;
    jzd *d; /* for trust (certificates, TLS contexts) and the controllers' list */
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sigterm, sigint, sigcut, sigback;
    topo *t;
    Jazari__Topology *topo_pb; /* built once, lent to every registration */
    emu_node *nodes;
    size_t n_nodes, n_cut;
    emu_link *links;
    size_t n_links;
    bool cut, stopping, warned;
    uint64_t rng;
    uint64_t beats, ends, registrations; /* counters, logged at the end */
};

/* A report of an end in flight. */
typedef struct emu_report {
    emu_node *n;
    uint64_t id;
    uint32_t attempt;
} emu_report;

/* --- small helpers ------------------------------------------------------------------------ */

static uint64_t emu__rand(emu *e)
{
    /* xorshift64*: jitter only, nothing secret */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 2685821657736338717ull;
}

static void emu__name(const emu *e, const emu_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s-%05u", e->cfg->name, n->index);
}

static emu_link *emu__link_of(emu *e, const emu_node *n)
{
    return &e->links[(n->index - 1) / EMU_NODES_PER_LINK];
}

static bool emu__silent(const emu *e, const emu_node *n)
{
    return e->cut && n->index <= e->n_cut;
}

static uint64_t emu__interval(const emu *e)
{
    return e->cfg->heartbeat_interval_ms;
}

/* The interval, give or take a tenth: nodes drift apart, never in step. */
static uint64_t emu__jittered(emu *e)
{
    uint64_t iv = emu__interval(e), spread = iv / 5 + 1;
    return iv - iv / 10 + emu__rand(e) % spread;
}

/* The seconds in s ("30", "2.5", "30s"), or -1. */
static double emu__seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0 || v > EMU_SLEEP_MAX_S || (*end && strcmp(end, "s") != 0))
        return -1;
    return v;
}

/* How long an emulated job runs, the rule docs/scale.md states: a command
 * `sleep S` (or a script whose first `sleep S` names it) runs S seconds;
 * anything else ends at once; an allocation (no command) holds until its
 * time limit. A time limit shorter than that ends it there, as TIMEOUT. */
static uint64_t emu__duration_ms(const Jazari__JobSpec *s, bool *timed_out)
{
    double secs = -1;
    *timed_out = false;
    if (!s)
        return 0;
    if (s->n_argv >= 2) {
        const char *prog = strrchr(s->argv[0], '/') ? strrchr(s->argv[0], '/') + 1 : s->argv[0];
        if (strcmp(prog, "sleep") == 0)
            secs = emu__seconds(s->argv[1]);
    } else if (s->n_argv == 0 && s->script && *s->script) {
        /* the first `sleep S` of the script, as a word, outside comments */
        for (const char *line = s->script; line && *line && secs < 0;) {
            const char *eol = strchr(line, '\n');
            size_t len = eol ? (size_t)(eol - line) : strlen(line);
            char one[256];
            snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one - 1 ? len : sizeof one - 1), line);
            char *hash = strchr(one, '#');
            if (hash)
                *hash = '\0';
            for (char *w = strstr(one, "sleep"); w && secs < 0; w = strstr(w + 5, "sleep")) {
                if ((w == one || w[-1] == ' ' || w[-1] == '\t') && (w[5] == ' ' || w[5] == '\t')) {
                    char arg[32];
                    if (sscanf(w + 5, " %31s", arg) == 1)
                        secs = emu__seconds(arg);
                }
            }
            line = eol ? eol + 1 : NULL;
        }
    }
    uint64_t limit_ms = s->time_limit_s * 1000;
    if (secs < 0 && s->n_argv == 0 && (!s->script || !*s->script)) {
        *timed_out = limit_ms > 0;
        return limit_ms ? limit_ms : UINT64_MAX; /* an allocation: until stopped */
    }
    uint64_t ms = secs < 0 ? 0 : (uint64_t)(secs * 1000.0);
    if (limit_ms && ms > limit_ms) {
        *timed_out = true;
        return limit_ms;
    }
    return ms;
}

/* --- where the links point ---------------------------------------------------------------- */

/* At the leader named in a NOT_LEADER answer. */
static void emu__retarget(emu_link *l, const char *hint)
{
    jzd *d = l->e->d;
    if (!hint || !*hint)
        return;
    for (int i = 0; i < d->n_peers; i++)
        if (strcmp(d->peers[i].address, hint) == 0)
            l->target = i;
    l->moved_ms = uv_now(&l->e->loop);
    uplink_retarget(&l->up, hint);
}

/* After a failure: the next controller, once per burst (every request in
 * flight on the link fails together). */
static void emu__rotate(emu_link *l)
{
    jzd *d = l->e->d;
    uint64_t now = uv_now(&l->e->loop);
    if (d->n_peers == 0 || now - l->moved_ms < 1000 || l->e->stopping)
        return;
    l->moved_ms = now;
    l->target = (l->target + 1) % d->n_peers;
    uplink_retarget(&l->up, d->peers[l->target].address);
}

/* --- jobs --------------------------------------------------------------------------------- */

static emu_job *emu__job_find(emu_node *n, uint64_t id, uint32_t attempt)
{
    for (uint16_t i = 0; i < n->n_jobs; i++)
        if (n->jobs[i].id == id && n->jobs[i].attempt == attempt)
            return &n->jobs[i];
    return NULL;
}

static emu_job *emu__job_add(emu_node *n, uint64_t id, uint32_t attempt)
{
    if (n->n_jobs == UINT16_MAX)
        return NULL;
    if (n->n_jobs == n->cap_jobs) {
        n->cap_jobs =
            n->cap_jobs ? (uint16_t)(n->cap_jobs * 2 > UINT16_MAX ? UINT16_MAX : n->cap_jobs * 2) : 2;
        n->jobs = xrealloc_array(n->jobs, n->cap_jobs, sizeof *n->jobs);
    }
    emu_job *j = &n->jobs[n->n_jobs++];
    memset(j, 0, sizeof *j);
    j->id = id;
    j->attempt = attempt;
    return j;
}

static void emu__job_end(emu_job *j, bool cancelled)
{
    j->state = EMU_ENDED;
    j->cancelled = cancelled;
}

/* Acts on a run list, as run_sync does for a real agent: starts what is
 * new, stops what is preempted or no longer listed. */
static void emu__sync(emu_node *n, Jazari__Job *const *jobs, size_t nj, uint64_t index)
{
    emu *e = n->e;
    if (index < n->synced)
        return; /* an older view than one already acted on */
    n->synced = index;
    uint64_t now = uv_now(&e->loop);
    for (size_t i = 0; i < nj; i++) {
        emu_job *j = emu__job_find(n, jobs[i]->id, jobs[i]->attempt);
        if (!j) {
            j = emu__job_add(n, jobs[i]->id, jobs[i]->attempt);
            if (!j)
                continue;
            j->start_index = index;
            if (jobs[i]->preempt_time_ms) {
                emu__job_end(j, true); /* preempted before it started */
                continue;
            }
            bool timed_out;
            uint64_t ms = emu__duration_ms(jobs[i]->spec, &timed_out);
            j->state = EMU_RUN;
            j->timed_out = timed_out;
            j->at_ms = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
        } else if (j->state == EMU_RUN && jobs[i]->preempt_time_ms) {
            emu__job_end(j, true);
        }
    }
    for (uint16_t k = 0; k < n->n_jobs; k++) {
        emu_job *j = &n->jobs[k];
        bool listed = false;
        for (size_t i = 0; i < nj && !listed; i++)
            listed = jobs[i]->id == j->id && jobs[i]->attempt == j->attempt;
        if (!listed && j->state == EMU_RUN && index >= j->start_index)
            emu__job_end(j, true); /* cancelled, requeued, ended elsewhere */
    }
}

static void emu__on_report(void *arg, wire_msg *reply, const char *why, bool sent)
{
    emu_report *r = arg;
    emu *e = r->n->e;
    const Jazari__Envelope *env = reply ? wire_msg_env(reply) : NULL;
    emu_job *j = emu__job_find(r->n, r->id, r->attempt);
    if (j && j->state == EMU_SENDING) {
        bool ok = env && env->body_case == JAZARI__ENVELOPE__BODY_JOB_END_REPLY;
        j->state = ok ? EMU_DONE : EMU_ENDED; /* an end not acknowledged goes again (idempotent) */
        j->at_ms = uv_now(&e->loop) + EMU_RETAIN_MS;
        e->ends += ok;
    }
    if (!env && !e->stopping)
        emu__rotate(emu__link_of(e, r->n));
    else if (env && env->error && env->error->code == JAZARI__ERROR_CODE__NOT_LEADER)
        emu__retarget(emu__link_of(e, r->n), env->error->leader);
    (void)why;
    (void)sent;
    wire_msg_free(reply);
    free(r);
}

static void emu__report(emu_node *n, emu_job *j)
{
    emu *e = n->e;
    char name[CONFIG_NAME_MAX + 8];
    emu__name(e, n, name, sizeof name);
    Jazari__PartUsage usage = JAZARI__PART_USAGE__INIT; /* nothing ran: nothing used */
    Jazari__JobEndRequest r = JAZARI__JOB_END_REQUEST__INIT;
    r.id = j->id;
    r.attempt = j->attempt;
    r.node = name;
    r.exit_code = j->cancelled || j->timed_out ? 128 + SIGTERM : 0;
    r.timed_out = j->timed_out && !j->cancelled;
    r.cancelled = j->cancelled;
    r.reason = "";
    r.usage = &usage;
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_JOB_END_REQUEST;
    env.job_end_request = &r;
    emu_report *rep = xcalloc(1, sizeof *rep);
    rep->n = n;
    rep->id = j->id;
    rep->attempt = j->attempt;
    j->state = EMU_SENDING;
    uplink_request(&emu__link_of(e, n)->up, &env, emu__on_report, rep);
}

/* Ends what is due, reports what ended, forgets what is long done. */
static void emu__jobs_tick(emu_node *n, uint64_t now)
{
    for (uint16_t k = 0; k < n->n_jobs;) {
        emu_job *j = &n->jobs[k];
        if (j->state == EMU_RUN && now >= j->at_ms)
            emu__job_end(j, false);
        if (j->state == EMU_ENDED)
            emu__report(n, j); /* may fail at once: then it is ENDED again, sent next tick */
        if (j->state == EMU_DONE && now >= j->at_ms) {
            n->jobs[k] = n->jobs[--n->n_jobs];
            continue;
        }
        k++;
    }
    if (n->n_jobs == 0 && n->cap_jobs) {
        free(n->jobs);
        n->jobs = NULL;
        n->cap_jobs = 0;
    }
}

/* --- heartbeats and registration ---------------------------------------------------------- */

static void emu__beat(emu_node *n);

static uint64_t emu__beat_wait(const emu *e)
{
    return emu__interval(e) < EMU_BEAT_WAIT_MAX ? emu__interval(e) : EMU_BEAT_WAIT_MAX;
}

static void emu__on_registered(void *arg, wire_msg *reply, const char *why, bool sent)
{
    emu_node *n = arg;
    emu *e = n->e;
    n->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    uint64_t now = uv_now(&e->loop);
    n->next_ms = now + emu__jittered(e);
    if (!r) {
        emu__rotate(emu__link_of(e, n));
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_REGISTER_REPLY) {
        e->registrations++;
        n->next_ms = now; /* its run list at once, as an agent's next tick asks */
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        emu__retarget(emu__link_of(e, n), r->error->leader);
        n->next_ms = now + emu__rand(e) % 200;
    } else if (r->error) {
        char name[CONFIG_NAME_MAX + 8];
        emu__name(e, n, name, sizeof name);
        log_warn("emu", "the leader refused to register %s: %s", name, r->error->message);
    }
    (void)why;
    (void)sent;
    wire_msg_free(reply);
}

static void emu__register(emu_node *n)
{
    emu *e = n->e;
    char name[CONFIG_NAME_MAX + 8];
    emu__name(e, n, name, sizeof name);
    Jazari__NodeRecord rec = JAZARI__NODE_RECORD__INIT;
    rec.name = name;
    rec.site = e->cfg->site;
    rec.group = e->cfg->group;
    rec.labels = e->cfg->labels;
    rec.address = ""; /* nothing listens for it: MASTER_ADDR falls back to its name */
    rec.state = "up";
    rec.topology = e->topo_pb;
    char *keep = e->topo_pb->name;
    e->topo_pb->name = name; /* encoded at once by uplink_request */
    Jazari__RegisterRequest rr = JAZARI__REGISTER_REQUEST__INIT;
    rr.node = &rec;
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_REGISTER_REQUEST;
    env.register_request = &rr;
    n->beating = true;
    uplink_request(&emu__link_of(e, n)->up, &env, emu__on_registered, n);
    e->topo_pb->name = keep;
}

static void emu__on_beat(void *arg, wire_msg *reply, const char *why, bool sent)
{
    emu_node *n = arg;
    emu *e = n->e;
    n->beating = false;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    uint64_t now = uv_now(&e->loop);
    n->next_ms = n->sent_ms + emu__jittered(e);
    if (e->stopping) {
        /* closing: nothing more is sent */
    } else if (!r) {
        emu__rotate(emu__link_of(e, n));
    } else if (r->error && r->error->code == JAZARI__ERROR_CODE__NOT_LEADER) {
        emu__retarget(emu__link_of(e, n), r->error->leader);
        n->next_ms = now + emu__rand(e) % 200;
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY && r->heartbeat_reply->known) {
        const Jazari__HeartbeatReply *hr = r->heartbeat_reply;
        e->beats++;
        if (!emu__silent(e, n))
            emu__sync(n, hr->run, hr->n_run, hr->applied);
        /* A long poll: ask again at once, unless the answer came too soon
         * for a held one (agent.c). */
        bool changed = hr->digest != n->digest;
        n->digest = hr->digest;
        if (!emu__silent(e, n) && (changed || now - n->sent_ms >= emu__beat_wait(e) / 2))
            emu__beat(n);
    } else if (r->body_case == JAZARI__ENVELOPE__BODY_HEARTBEAT_REPLY && !emu__silent(e, n)) {
        n->digest = 0;
        emu__register(n); /* not known, or marked down: register again */
    } else if (r->error && !e->warned) {
        e->warned = true; /* once: every node hears the same */
        log_warn("emu", "the leader refuses the emulated nodes' heartbeats: %s%s", r->error->message,
                 r->error->code == JAZARI__ERROR_CODE__PERMISSION_DENIED
                     ? " (the controllers need emulated_nodes = on to take an emulator's nodes)"
                     : "");
    }
    (void)why;
    (void)sent;
    wire_msg_free(reply);
}

static void emu__beat(emu_node *n)
{
    emu *e = n->e;
    char name[CONFIG_NAME_MAX + 8];
    emu__name(e, n, name, sizeof name);
    Jazari__HeartbeatRequest hb = JAZARI__HEARTBEAT_REQUEST__INIT;
    hb.name = name;
    hb.digest = n->digest;
    hb.wait_ms = (uint32_t)emu__beat_wait(e);
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_HEARTBEAT_REQUEST;
    env.heartbeat_request = &hb;
    n->beating = true;
    n->sent_ms = uv_now(&e->loop);
    uplink_request(&emu__link_of(e, n)->up, &env, emu__on_beat, n);
}

static void emu__on_tick(uv_timer_t *t)
{
    emu *e = t->data;
    uint64_t now = uv_now(&e->loop);
    for (size_t i = 0; i < e->n_nodes && !e->stopping; i++) {
        emu_node *n = &e->nodes[i];
        if (emu__silent(e, n))
            continue;
        if (!n->beating && now >= n->next_ms)
            emu__beat(n);
        if (n->n_jobs)
            emu__jobs_tick(n, now);
    }
}

/* --- start and stop ----------------------------------------------------------------------- */

static void emu__on_closed(uv_handle_t *h)
{
    (void)h;
}

static void emu__on_link_closed(uplink *l)
{
    (void)l;
}

static void emu__stop(emu *e)
{
    if (e->stopping)
        return;
    e->stopping = true;
    uv_close((uv_handle_t *)&e->tick, emu__on_closed);
    uv_close((uv_handle_t *)&e->sigterm, emu__on_closed);
    uv_close((uv_handle_t *)&e->sigint, emu__on_closed);
    uv_close((uv_handle_t *)&e->sigcut, emu__on_closed);
    uv_close((uv_handle_t *)&e->sigback, emu__on_closed);
    for (size_t i = 0; i < e->n_links; i++)
        uplink_close(&e->links[i].up, emu__on_link_closed);
}

static void emu__on_signal(uv_signal_t *h, int signum)
{
    emu *e = h->data;
    if (signum == SIGUSR1 && !e->cut) {
        e->cut = true;
        log_info("emu", "SIGUSR1: nodes %s-%05u to %s-%05zu are cut off (silent)", e->cfg->name, 1u,
                 e->cfg->name, e->n_cut);
    } else if (signum == SIGUSR2 && e->cut) {
        e->cut = false;
        uint64_t now = uv_now(&e->loop);
        for (size_t i = 0; i < e->n_cut; i++)
            e->nodes[i].next_ms = now + emu__rand(e) % (emu__interval(e) + 1);
        log_info("emu", "SIGUSR2: the %zu cut-off nodes come back", e->n_cut);
    } else if (signum == SIGTERM || signum == SIGINT) {
        log_info("emu", "%s received: stopping %zu emulated nodes", signum == SIGTERM ? "SIGTERM" : "SIGINT",
                 e->n_nodes);
        emu__stop(e);
    }
}

/* The emulator's own flags out of argv (the rest are jazarid's settings):
 * 0, or 2 with one line on stderr. */
static int emu__flags(int argc, char **argv, long *n, long *cut, int *rest_argc, char **rest)
{
    *n = -1;
    *cut = 30;
    *rest_argc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool nodes = strcmp(a, "--emulate-nodes") == 0, pct = strcmp(a, "--emulate-cut") == 0;
        if (!nodes && !pct) {
            rest[(*rest_argc)++] = argv[i];
            continue;
        }
        char *end = NULL;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        if (i + 1 >= argc || !end || end == argv[i + 1] || *end) {
            fprintf(stderr, "jazarid: %s needs a whole number (%s)\n", a,
                    nodes ? "the nodes to emulate, 1 to 100000" : "a percentage of the nodes, 0 to 100");
            return 2;
        }
        if (nodes && (v < 1 || v > EMU_NODES_MAX)) {
            fprintf(stderr, "jazarid: --emulate-nodes %s: emulate 1 to %d nodes in one process\n",
                    argv[i + 1], EMU_NODES_MAX);
            return 2;
        }
        if (pct && (v < 0 || v > 100)) {
            fprintf(stderr, "jazarid: --emulate-cut %s: a percentage of the nodes, 0 to 100\n", argv[i + 1]);
            return 2;
        }
        *(nodes ? n : cut) = v;
        i++;
    }
    return 0;
}

bool emu_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--emulate-nodes") == 0)
            return true;
    return false;
}

/* The checks of the settings an emulator needs: 0, or 2 with err. */
static int emu__check(const config *cfg, long n, jzd *d, char *err, size_t errlen)
{
    char longest[CONFIG_NAME_MAX * 2];
    snprintf(longest, sizeof longest, "%s-%05ld", cfg->name, n);
    if (!cfg->topology_xml) {
        snprintf(err, errlen,
                 "--emulate-nodes needs --topology-xml FILE (the hwloc XML every emulated node has)");
        return 2;
    }
    if (strlen(longest) > CONFIG_NAME_MAX || !config_valid_name(longest)) {
        snprintf(
            err, errlen,
            "--name %.80s: the emulated nodes' names (%.80s) must be node names of at most %d characters "
            "of [A-Za-z0-9._-]: choose a shorter --name",
            cfg->name, longest, CONFIG_NAME_MAX);
        return 2;
    }
    d->n_peers = config_controllers(cfg, d->peers, err, errlen);
    if (d->n_peers < 0)
        return 2;
    if (d->n_peers == 0 || !cfg->controllers || !*cfg->controllers) {
        snprintf(err, errlen, "--emulate-nodes needs --controllers (the real controllers the nodes join)");
        return 2;
    }
    for (int i = 0; i < d->n_peers; i++) {
        if (strcmp(d->peers[i].name, cfg->name) == 0) {
            snprintf(err, errlen, "--name %s is a controller's: an emulator is never a controller",
                     cfg->name);
            return 2;
        }
    }
    return 0;
}

/* mkdir -p state_dir, 0700, for the emulator's certificate (daemon.c does
 * the same for a daemon). 0, or -1 with err. */
static int emu__mkdirs(const char *path, char *err, size_t errlen)
{
    char tmp[CONFIG_PATH_MAX + 1];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "state_dir %s: cannot create %s: %s", path, tmp, strerror(errno));
            return -1;
        }
        *p = c;
        if (c == '\0')
            return 0;
    }
}

static int emu__run(emu *e)
{
    uv_loop_init(&e->loop);
    e->n_links = (e->n_nodes + EMU_NODES_PER_LINK - 1) / EMU_NODES_PER_LINK;
    e->links = xcalloc(e->n_links, sizeof *e->links);
    for (size_t i = 0; i < e->n_links; i++) {
        emu_link *l = &e->links[i];
        l->e = e;
        uplink_init(&l->up, &e->loop, e->cfg->name, &e->d->sec);
        l->target = (int)(i % (size_t)e->d->n_peers);
        uplink_retarget(&l->up, e->d->peers[l->target].address);
    }
    /* The registration storm: every node's first heartbeat somewhere in
     * the first interval. */
    e->nodes = xcalloc(e->n_nodes, sizeof *e->nodes);
    for (size_t i = 0; i < e->n_nodes; i++) {
        e->nodes[i].e = e;
        e->nodes[i].index = (uint32_t)(i + 1);
        e->nodes[i].next_ms = emu__rand(e) % (emu__interval(e) + 1);
    }
    uv_timer_init(&e->loop, &e->tick);
    e->tick.data = e;
    uv_timer_start(&e->tick, emu__on_tick, EMU_TICK_MS, EMU_TICK_MS);
    uv_signal_t *sigs[] = {&e->sigterm, &e->sigint, &e->sigcut, &e->sigback};
    int nums[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < 4; i++) {
        uv_signal_init(&e->loop, sigs[i]);
        sigs[i]->data = e;
        uv_signal_start(sigs[i], emu__on_signal, nums[i]);
    }
    log_info("emu",
             "emulating %zu nodes %s-%05u to %s-%05zu (%zu GPUs each, %s) over %zu connections; "
             "SIGUSR1 cuts off %zu of them, SIGUSR2 brings them back",
             e->n_nodes, e->cfg->name, 1u, e->cfg->name, e->n_nodes, e->t->n_gpus, e->cfg->topology_xml,
             e->n_links, e->n_cut);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&e->loop);
    log_info("emu", "stopped: %llu heartbeats answered, %llu registrations, %llu job ends reported",
             (unsigned long long)e->beats, (unsigned long long)e->registrations, (unsigned long long)e->ends);
    for (size_t i = 0; i < e->n_nodes; i++)
        free(e->nodes[i].jobs);
    free(e->nodes);
    free(e->links);
    if (rc != 0) {
        log_error("emu", "the loop did not close cleanly: %s", uv_strerror(rc));
        return 1;
    }
    return 0;
}

int emu_main(int argc, char **argv)
{
    long n, cut;
    int rest_argc;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int rc = emu__flags(argc, argv, &n, &cut, &rest_argc, rest);
    if (rc != 0) {
        free(rest);
        return rc;
    }
    config cfg;
    char err[512];
    if (config_load(&cfg, rest_argc, rest, err, sizeof err) != 0) {
        fprintf(stderr, "jazarid: %s\n", err);
        config_free(&cfg);
        free(rest);
        return 2;
    }
    free(rest);
    log_set_level((log_level)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    emu *e = xcalloc(1, sizeof *e);
    e->cfg = &cfg;
    e->d = xcalloc(1, sizeof *e->d);
    e->d->cfg = &cfg;
    e->n_nodes = (size_t)n;
    e->n_cut = (size_t)n * (size_t)cut / 100;
    rc = emu__check(&cfg, n, e->d, err, sizeof err);
    if (rc == 0) {
        /* Parsed once: every node has this topology. */
        topo_load_opts opts = {.xml_path = cfg.topology_xml, .name = cfg.name, .probe_gpus = false};
        if (topo_load(&opts, &e->t, err, sizeof err) != 0)
            rc = 2;
    }
    if (rc != 0) {
        fprintf(stderr, "jazarid: %s\n", err);
    } else if (emu__mkdirs(cfg.state_dir, err, sizeof err) != 0) {
        log_error("emu", "%s", err);
        rc = 1;
    } else if (trust_init(e->d, err, sizeof err) != 0) {
        log_error("trust", "%s", err);
        rc = 1;
    } else {
        e->topo_pb = topo_to_pb(e->t);
        pki_random(&e->rng, sizeof e->rng);
        e->rng |= 1;
        rc = emu__run(e);
        topo_pb_free(e->topo_pb);
    }
    trust_free(e->d);
    topo_free(e->t);
    free(e->d);
    free(e);
    config_free(&cfg);
    return rc;
}

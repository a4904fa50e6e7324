/* web.c - the dashboard: its files (embedded at build time from
 * daemon/http/web/), the JSON API it reads (/api/...), the WebRequest of
 * jz web (a token) and of a controller relaying a node's GPU history, and
 * the controller's ring of GPU use per site.
 *
 * Every /api page needs a token (webtok.c) in "Authorization: Bearer";
 * with it, the caller sees what jz shows them: the same daemon functions
 * make the same messages (nodes_list_make, jobs_page_make, ...) and
 * common/views.c shapes them into the same JSON keys as jz --json. Pages
 * are served by controllers; an agent's listener serves /metrics only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/json.h"
#include "../common/log.h"
#include "../common/views.h"
#include "../common/xmem.h"
#include "../lib/hw/topo.h"
#include "../lib/hw/topo_pb.h"
#include "http/web_assets.h"
#include "jzd.h"

#define WEB__JSON "application/json; charset=utf-8"
#define WEB__UTIL_EVERY_MS 15000u             /* a sample of GPU use per site */
#define WEB__UTIL_SAMPLES (24u * 3600u / 15u) /* a day of them */
#define WEB__SITES_MAX 64                     /* sites followed; more are summed as "(others)" */
#define WEB__QUEUE_MAX 5000                   /* jobs on /api/queue */
#define WEB__ENDED_MS 3600000ll               /* /api/queue: the jobs that ended in the last hour */

typedef struct web__site {
    char name[64];
    uint32_t *used, *total; /* WEB__UTIL_SAMPLES each, parallel to web.t_ms */
} web__site;

struct web {
    int64_t *t_ms; /* the ring's times */
    size_t head, n;
    uint64_t last_mono; /* when the last sample was taken (clock_mono_ms) */
    bool sampled;
    web__site sites[WEB__SITES_MAX];
    size_t n_sites;
};

/* --- answers -------------------------------------------------------------------------- */

static int web__error(http_response *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int web__error(http_response *rs, int status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json j;
    buf_reset(&rs->body);
    json_init(&j, &rs->body, false);
    json_obj_begin(&j);
    json_kv_str(&j, "error", msg);
    json_obj_end(&j);
    buf_puts(&rs->body, "\n");
    rs->content_type = WEB__JSON;
    return status;
}

/* The caller, from the request's token: true, or false with the answer
 * (401) in rs. */
static bool web__who(jzd *d, const http_request *rq, http_response *rs, authz_who *w)
{
    static const char bearer[] = "Bearer ";
    const char *a = rq->authorization;
    size_t len = rq->authorization_len;
    if (!a || len <= sizeof bearer - 1 || strncasecmp(a, bearer, sizeof bearer - 1) != 0) {
        web__error(rs, 401, "a dashboard token is needed (jz web prints the dashboard's address with one)");
        return false;
    }
    char why[200];
    int64_t now = clock_wall_ms();
    if (webtok_check(d, a + sizeof bearer - 1, len - (sizeof bearer - 1), now, w, why, sizeof why) != 0) {
        web__error(rs, 401, "%s", why);
        return false;
    }
    /* Made with a person's credentials: only while they stand. */
    const Jazari__CredRecord *cr = w->serial[0] ? tdb_cred(&d->ctl.state.trust, w->serial) : NULL;
    if (w->serial[0] && (!cr || cr->revoked || cr->expires_ms <= now)) {
        web__error(rs, 401, "the credentials this dashboard token was made with are %s: ask for new ones",
                   cr && cr->revoked ? "revoked" : "no longer valid");
        return false;
    }
    return true;
}

/* Who asks, on a controller that serves: 0, or the status of the answer
 * already in rs (401 without a valid token, 503 when not serving). */
static int web__enter(jzd *d, const http_request *rq, http_response *rs, authz_who *w)
{
    if (!web__who(d, rq, rs, w))
        return 401;
    if (!d->ctl_running)
        return web__error(rs, 503, "%s is not serving as a controller now", d->cfg->name);
    return 0;
}

static void web__json_begin(json *j, http_response *rs)
{
    json_init(j, &rs->body, false);
    rs->content_type = WEB__JSON;
}

static int web__json_end(json *j, http_response *rs)
{
    (void)j;
    buf_puts(&rs->body, "\n");
    return 200;
}

/* --- the files ------------------------------------------------------------------------ */

static int web__asset(void *arg, const http_request *rq, http_response *rs)
{
    const web_asset *a = arg;
    (void)rq;
    buf_append(&rs->body, a->data, a->len);
    rs->content_type = a->type;
    rs->page = strncmp(a->type, "text/html", 9) == 0;
    return 200;
}

/* --- /api pages ------------------------------------------------------------------------ */

static int web__status(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    nodes_status_t st;
    nodes_status_make(d, &st);
    json j;
    web__json_begin(&j, rs);
    /* jz status's keys, then who is looking and where. */
    json_obj_begin(&j);
    view_status_fields(&j, &st.r);
    json_kv_str(&j, "controller", d->cfg->name);
    json_kv_str(&j, "user", w.user);
    json_kv_str(&j, "role", authz_role_name(w.role));
    json_kv_bool(&j, "admin", authz_is_admin(&w) && !w.via_node);
    json_obj_end(&j);
    return web__json_end(&j, rs);
}

/* Calls fn on every job w sees (ended ones since ended_since_ms), page by
 * page, until fn returns nonzero. */
static void web__each_job(jzd *d, const authz_who *w, int64_t ended_since_ms,
                          int (*fn)(const Jazari__Job *job, void *a), void *a)
{
    uint64_t after = 0;
    for (;;) {
        jobs_page pg;
        jobs_page_make(d, w, ended_since_ms > 0, ended_since_ms, after, 0, &pg);
        bool stop = false;
        for (size_t i = 0; i < pg.r.n_jobs && !stop; i++)
            stop = fn(pg.r.jobs[i], a) != 0;
        bool more = !stop && pg.r.truncated && pg.r.next_after > after;
        after = pg.r.next_after;
        jobs_page_free(&pg);
        if (!more)
            return;
    }
}

typedef struct web__use {
    const nodes_list *l;
    view_node_hw *hw;
} web__use;

static int web__use_one(const Jazari__Job *job, void *a)
{
    web__use *u = a;
    view_node_use_job(u->l->r.nodes, u->l->r.n_nodes, u->hw, job);
    return 0;
}

static int web__nodes(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    nodes_list l;
    nodes_list_make(d, &l);
    view_node_hw *hw = xcalloc(l.r.n_nodes + 1, sizeof *hw);
    for (size_t i = 0; i < l.r.n_nodes; i++)
        view_node_hw_of(l.r.nodes[i], &hw[i]);
    web__use u = {&l, hw};
    web__each_job(d, &w, 0, web__use_one, &u);
    json j;
    web__json_begin(&j, rs);
    json_obj_begin(&j);
    json_key(&j, "nodes");
    json_arr_begin(&j);
    for (size_t i = 0; i < l.r.n_nodes; i++)
        view_nodes_entry(&j, l.r.nodes[i], &hw[i]);
    json_arr_end(&j);
    json_obj_end(&j);
    free(hw);
    nodes_list_free(&l);
    return web__json_end(&j, rs);
}

typedef struct web__jobs {
    json *j;
    size_t n;
    const char *node; /* only the jobs with a part on this node; NULL: all */
    bool truncated;
} web__jobs;

static int web__queue_one(const Jazari__Job *job, void *a)
{
    web__jobs *q = a;
    if (q->node) {
        bool here = false;
        for (size_t i = 0; i < job->n_allocs && !here; i++)
            here = strcmp(job->allocs[i]->node, q->node) == 0;
        if (!here)
            return 0;
    }
    if (q->n == WEB__QUEUE_MAX) {
        q->truncated = true;
        return 1;
    }
    view_job(q->j, job);
    q->n++;
    return 0;
}

static int web__queue(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    json j;
    web__json_begin(&j, rs);
    json_obj_begin(&j);
    json_key(&j, "jobs");
    json_arr_begin(&j);
    web__jobs q = {&j, 0, NULL, false};
    web__each_job(d, &w, clock_wall_ms() - WEB__ENDED_MS, web__queue_one, &q);
    json_arr_end(&j);
    json_kv_bool(&j, "truncated", q.truncated);
    json_obj_end(&j);
    return web__json_end(&j, rs);
}

static int web__events(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    if (!authz_is_admin(&w) || w.via_node)
        return web__error(rs, 403, "the events are for admins, not for %s", w.user);
    char v[32];
    Jazari__EventsRequest q = JAZARI__EVENTS_REQUEST__INIT;
    int has = http_query_get(rq, "since_seq", v, sizeof v);
    char *end = NULL;
    if (has < 0 || (has == 1 && (q.after_seq = strtoull(v, &end, 10), end == v || *end)))
        return web__error(rs, 400, "since_seq: a number is needed");
    has = http_query_get(rq, "max", v, sizeof v);
    if (has < 0 || (has == 1 && (q.max = (uint32_t)strtoul(v, &end, 10), end == v || *end)))
        return web__error(rs, 400, "max: a number is needed");
    if (has == 0)
        q.max = 100;
    Jazari__EventsReply r;
    drains_events_make(d, &q, &r);
    json j;
    web__json_begin(&j, rs);
    json_obj_begin(&j);
    json_key(&j, "events");
    json_arr_begin(&j);
    for (size_t i = 0; i < r.n_events; i++)
        view_event(&j, r.events[i]);
    json_arr_end(&j);
    json_kv_uint(&j, "last_seq", r.last_seq);
    json_obj_end(&j);
    drains_events_free(&r);
    return web__json_end(&j, rs);
}

/* --- a node's page and its GPUs' history ------------------------------------------------ */

/* key: [v[0], ...], for arrays of any unsigned width (uint32_t, uint64_t). */
#define WEB__UINTS(j, key, v, n)                                                                             \
    do {                                                                                                     \
        json_key(j, key);                                                                                    \
        json_arr_begin(j);                                                                                   \
        for (size_t k_ = 0; k_ < (n); k_++)                                                                  \
            json_uint(j, (v)[k_]);                                                                           \
        json_arr_end(j);                                                                                     \
    } while (0)

static void web__history_json(json *j, const Jazari__WebReply *r)
{
    json_obj_begin(j);
    json_kv_str(j, "node", r->node);
    json_kv_uint(j, "interval_s", r->interval_s);
    json_key(j, "gpus");
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_gpus; i++) {
        const Jazari__GpuHistory *h = r->gpus[i];
        json_obj_begin(j);
        json_kv_int(j, "gpu", h->gpu);
        json_key(j, "time_ms");
        json_arr_begin(j);
        for (size_t k = 0; k < h->n_time_ms; k++)
            json_int(j, h->time_ms[k]);
        json_arr_end(j);
        WEB__UINTS(j, "temp_c", h->temp_c, h->n_temp_c);
        WEB__UINTS(j, "util_gpu_pct", h->util_gpu_pct, h->n_util_gpu_pct);
        WEB__UINTS(j, "power_mw", h->power_mw, h->n_power_mw);
        WEB__UINTS(j, "mem_used", h->mem_used, h->n_mem_used);
        json_obj_end(j);
    }
    json_arr_end(j);
    char when[40];
    json_key(j, "conditions");
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_conditions; i++) {
        const Jazari__HealthCondition *c = r->conditions[i];
        json_obj_begin(j);
        json_kv_str(j, "name", c->name);
        json_key(j, "gpu");
        if (c->gpu >= 0)
            json_uint(j, (uint64_t)c->gpu);
        else
            json_null(j);
        json_kv_str(j, "text", c->text);
        json_kv_str(j, "since", view_utc_time(c->since_ms, when, sizeof when));
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

static void web__history_relayed(void *arg, wire_msg *reply, const char *why, bool sent)
{
    http_later *l = arg;
    (void)sent;
    http_response rs = {.body = BUF_INIT};
    const Jazari__Envelope *e = reply ? wire_msg_env(reply) : NULL;
    int status;
    if (e && e->body_case == JAZARI__ENVELOPE__BODY_WEB_REPLY) {
        json j;
        web__json_begin(&j, &rs);
        web__history_json(&j, e->web_reply);
        status = web__json_end(&j, &rs);
    } else {
        const char *msg = e && e->error && e->error->message && *e->error->message ? e->error->message
                          : why                                                    ? why
                                                                                   : "no answer";
        status = web__error(&rs, 502, "cannot reach the node's daemon: %s", msg);
    }
    http_answer(l, status, &rs);
    wire_msg_free(reply);
}

/* GET /api/node/NAME/history: this node's from memory; another's asked of
 * it through the link jz logs uses (logs_link: only to the daemon whose
 * certificate is that node's), the answer relayed when it comes. */
static int web__history(jzd *d, const authz_who *w, const char *name, const http_request *rq,
                        http_response *rs)
{
    if (strcmp(name, d->cfg->name) == 0) {
        Jazari__WebReply r = JAZARI__WEB_REPLY__INIT;
        ghealth_history(d, clock_wall_ms(), &r);
        json j;
        web__json_begin(&j, rs);
        web__history_json(&j, &r);
        ghealth_history_free(&r);
        return web__json_end(&j, rs);
    }
    const fsm_node *n = d->ctl_running ? fsm_node_get(&d->ctl.state, name) : NULL;
    if (!n || !n->address)
        return web__error(rs, 404, "no node is named %s", name);
    if (strcmp(n->state, "down") == 0)
        return web__error(rs, 503, "%s is down: its GPU history is on the node itself", name);
    Jazari__WebRequest q = JAZARI__WEB_REQUEST__INIT;
    q.what = "history";
    q.node = (char *)name;
    q.hops = 1;
    Jazari__Caller caller;
    logs_caller(d, w, &caller);
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_WEB_REQUEST;
    env.web_request = &q;
    env.caller = &caller;
    uplink_request(logs_link(d, n->address, name), &env, web__history_relayed, http_defer(rq));
    return HTTP_LATER;
}

static int web__node(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    char name[80];
    size_t len = rq->rest_len;
    bool history = len > 8 && memcmp(rq->rest + len - 8, "/history", 8) == 0;
    if (history)
        len -= 8;
    if (len == 0 || len >= sizeof name) {
        return web__error(rs, 404, "no such node");
    }
    memcpy(name, rq->rest, len);
    name[len] = '\0';
    if (!config_valid_name(name))
        return web__error(rs, 404, "no such node");
    if (history)
        return web__history(d, &w, name, rq, rs);
    nodes_one o;
    if (nodes_one_make(d, name, &o) != 0)
        return web__error(rs, 404, "node '%s' not found", name);
    char err[200];
    topo *t = topo_from_pb(o.ni.topology, err, sizeof err);
    json j;
    web__json_begin(&j, rs);
    json_obj_begin(&j);
    view_node_fields(&j, &o.ni);
    json_key(&j, "topology");
    if (t)
        topo_to_json(t, &j);
    else
        json_null(&j);
    json_key(&j, "jobs");
    json_arr_begin(&j);
    web__jobs q = {&j, 0, name, false};
    web__each_job(d, &w, clock_wall_ms() - WEB__ENDED_MS, web__queue_one, &q);
    json_arr_end(&j);
    json_obj_end(&j);
    topo_free(t);
    nodes_one_free(&o);
    return web__json_end(&j, rs);
}

/* Any other /api path: 401 without a token, as every /api page; else 404. */
static int web__unknown(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    return web__error(rs, 404, "no such page: %.*s", (int)(rq->path_len < 100 ? rq->path_len : 100),
                      rq->path);
}

/* --- GPU use per site over time ---------------------------------------------------------- */

static web__site *web__site_of(struct web *s, const char *name)
{
    for (size_t i = 0; i < s->n_sites; i++)
        if (strcmp(s->sites[i].name, name) == 0)
            return &s->sites[i];
    if (s->n_sites == WEB__SITES_MAX)
        return &s->sites[WEB__SITES_MAX - 1]; /* the last one takes the rest */
    web__site *p = &s->sites[s->n_sites++];
    snprintf(p->name, sizeof p->name, "%s", s->n_sites == WEB__SITES_MAX ? "(others)" : name);
    p->used = xcalloc(WEB__UTIL_SAMPLES, sizeof *p->used);
    p->total = xcalloc(WEB__UTIL_SAMPLES, sizeof *p->total);
    return p;
}

/* Every site's GPUs, used and in all, now: into used[] and total[] by
 * the sites' order in s->sites (WEB__SITES_MAX each). */
static void web__count(jzd *d, uint32_t *used, uint32_t *total)
{
    struct web *s = d->web;
    const fsm *f = &d->ctl.state;
    memset(used, 0, WEB__SITES_MAX * sizeof *used);
    memset(total, 0, WEB__SITES_MAX * sizeof *total);
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *n = &f->nodes[i];
        size_t k = (size_t)(web__site_of(s, n->site && *n->site ? n->site : "-") - s->sites);
        uint32_t all = (uint32_t)n->topo->n_gpus, busy = fsm_node_gpus_used(f, n->name);
        total[k] += all;
        used[k] += busy < all ? busy : all;
    }
}

/* Takes a sample into the ring. */
static void web__sample(jzd *d)
{
    struct web *s = d->web;
    uint32_t used[WEB__SITES_MAX], total[WEB__SITES_MAX];
    web__count(d, used, total);
    size_t row = (s->head + s->n) % WEB__UTIL_SAMPLES;
    if (s->n == WEB__UTIL_SAMPLES)
        s->head = (s->head + 1) % WEB__UTIL_SAMPLES;
    else
        s->n++;
    s->t_ms[row] = clock_wall_ms();
    for (size_t i = 0; i < s->n_sites; i++) {
        s->sites[i].used[row] = used[i];
        s->sites[i].total[row] = total[i];
    }
}

void web_tick(jzd *d)
{
    struct web *s = d->web;
    if (!s || !d->ctl_running)
        return;
    uint64_t now = (uint64_t)clock_mono_ms();
    if (s->sampled && now - s->last_mono < WEB__UTIL_EVERY_MS)
        return;
    s->sampled = true;
    s->last_mono = now;
    web__sample(d);
}

static int web__utilization(void *arg, const http_request *rq, http_response *rs)
{
    jzd *d = arg;
    authz_who w;
    int refused = web__enter(d, rq, rs, &w);
    if (refused)
        return refused;
    /* The ring's samples, then this moment's (not kept). */
    const struct web *s = d->web;
    uint32_t now_used[WEB__SITES_MAX], now_total[WEB__SITES_MAX];
    web__count(d, now_used, now_total);
    json j;
    web__json_begin(&j, rs);
    json_obj_begin(&j);
    json_kv_uint(&j, "interval_s", WEB__UTIL_EVERY_MS / 1000);
    json_key(&j, "time_ms");
    json_arr_begin(&j);
    for (size_t k = 0; k < s->n; k++)
        json_int(&j, s->t_ms[(s->head + k) % WEB__UTIL_SAMPLES]);
    json_int(&j, clock_wall_ms());
    json_arr_end(&j);
    json_key(&j, "sites");
    json_arr_begin(&j);
    for (size_t i = 0; i < s->n_sites; i++) {
        const web__site *p = &s->sites[i];
        json_obj_begin(&j);
        json_kv_str(&j, "site", p->name);
        json_key(&j, "gpus_used");
        json_arr_begin(&j);
        for (size_t k = 0; k < s->n; k++)
            json_uint(&j, p->used[(s->head + k) % WEB__UTIL_SAMPLES]);
        json_uint(&j, now_used[i]);
        json_arr_end(&j);
        json_key(&j, "gpus_total");
        json_arr_begin(&j);
        for (size_t k = 0; k < s->n; k++)
            json_uint(&j, p->total[(s->head + k) % WEB__UTIL_SAMPLES]);
        json_uint(&j, now_total[i]);
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    return web__json_end(&j, rs);
}

/* --- setting up ---------------------------------------------------------------------------- */

int web_routes(jzd *d, char *err, size_t errlen)
{
    if (!d->is_controller)
        return 0; /* an agent serves /metrics only */
    struct web *s = xcalloc(1, sizeof *s);
    s->t_ms = xcalloc(WEB__UTIL_SAMPLES, sizeof *s->t_ms);
    d->web = s;
    int rc = 0;
    for (size_t i = 0; i < web_n_assets && rc == 0; i++) {
        const web_asset *a = &web_assets[i];
        rc = http_route(d->http, strcmp(a->path, "/index.html") == 0 ? "/" : a->path, web__asset, (void *)a);
    }
    if (rc == 0)
        rc = http_route(d->http, "/api/", web__unknown, d);
    if (rc == 0)
        rc = http_route(d->http, "/api/status", web__status, d);
    if (rc == 0)
        rc = http_route(d->http, "/api/nodes", web__nodes, d);
    if (rc == 0)
        rc = http_route(d->http, "/api/node/", web__node, d);
    if (rc == 0)
        rc = http_route(d->http, "/api/queue", web__queue, d);
    if (rc == 0)
        rc = http_route(d->http, "/api/events", web__events, d);
    if (rc == 0)
        rc = http_route(d->http, "/api/utilization", web__utilization, d);
    if (rc != 0)
        snprintf(err, errlen, "http: cannot route the dashboard's pages (%zu files)", web_n_assets);
    return rc;
}

void web_free(jzd *d)
{
    struct web *s = d->web;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_sites; i++) {
        free(s->sites[i].used);
        free(s->sites[i].total);
    }
    free(s->t_ms);
    free(s);
    d->web = NULL;
}

/* --- WebRequest: jz web's token, a relayed GPU history --------------------------------------- */

/* The dashboard's address on this controller: its http_listen, with this
 * machine's name for an address that is every interface's. */
static void web__url(const jzd *d, const char *token, char *out, size_t len)
{
    const char *host = d->cfg->http_host;
    bool any = strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    char name[256];
    if (any && gethostname(name, sizeof name) == 0)
        host = name;
    else if (any)
        host = d->cfg->name;
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, len, "http://%s%s%s:%u/#token=%s", v6 ? "[" : "", host, v6 ? "]" : "", d->cfg->http_port,
             token);
}

static void web__token(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__WebRequest *q = e->web_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    if (!d->http || !d->web) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "the controller %s serves no dashboard: set http_listen in its configuration",
                  d->cfg->name);
        return;
    }
    if (q->ttl_s > WEBTOK_TTL_MAX_S) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "a dashboard token lasts at most %u hours, not %u s", WEBTOK_TTL_MAX_S / 3600, q->ttl_s);
        return;
    }
    int64_t expires = clock_wall_ms() + (int64_t)(q->ttl_s ? q->ttl_s : WEBTOK_TTL_DEFAULT_S) * 1000;
    const Jazari__CredRecord *cr = w.serial[0] ? tdb_cred(&d->ctl.state.trust, w.serial) : NULL;
    if (cr && cr->expires_ms > 0 && cr->expires_ms < expires)
        expires = cr->expires_ms; /* no longer than the credentials */
    char token[WEBTOK_MAX + 1], url[WEBTOK_MAX + 400];
    if (webtok_make(d, &w, expires, token, sizeof token) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "%s cannot sign dashboard tokens (it holds no CA key)", d->cfg->name);
        return;
    }
    web__url(d, token, url, sizeof url);
    Jazari__WebReply r = JAZARI__WEB_REPLY__INIT;
    r.token = token;
    r.url = url;
    r.expires_ms = expires;
    r.user = w.user;
    r.role = (char *)authz_role_name(w.role);
    log_info("web", "a dashboard token for %s (%s) from %s, until %lld", w.user, r.role, w.from,
             (long long)expires);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_WEB_REPLY, &r);
}

static void web__history_here(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__WebRequest *q = e->web_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    if (q->node && *q->node && strcmp(q->node, d->cfg->name) != 0) {
        Jazari__WebRequest fwd = *q;
        fwd.hops = q->hops + 1;
        Jazari__Envelope copy = *e;
        copy.web_request = &fwd;
        logs_relay(d, c, e, &copy, &w, "history", q->node, q->hops);
        return;
    }
    Jazari__WebReply r = JAZARI__WEB_REPLY__INIT;
    ghealth_history(d, clock_wall_ms(), &r);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_WEB_REPLY, &r);
    ghealth_history_free(&r);
}

void web_request(jzd *d, net_conn *c, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    const char *what = e->web_request->what ? e->web_request->what : "";
    if (strcmp(what, "token") == 0) {
        /* Only a controller signs: an agent sends its local client's on. */
        if (!d->ctl_running && !e->caller) {
            fwd_request(d, c, m);
            return;
        }
        if (!d->ctl_running)
            req_not_leader(d, c, e->request_id);
        else
            web__token(d, c, e);
    } else if (strcmp(what, "history") == 0) {
        web__history_here(d, c, e);
    } else {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "a web request is for a token or a history, not '%.32s'", what);
    }
    wire_msg_free(m);
}

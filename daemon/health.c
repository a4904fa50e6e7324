/* health.c - this node's health, agent-local: the GPUs' NVML samples every
 * gpu_health_interval (taken in libuv's thread pool: a slow driver never
 * stalls the loop), their XIDs as they come (lib/hw/health.c's thread
 * wakes the loop through a uv_async_t), the site's health_program, and
 * the active conditions they make. The leader's closed loop reads the
 * conditions (ghealth_conditions, ghealth_digest) from the heartbeat; the
 * policy (pol_health_rule) says what each does there. This file decides
 * nothing: it observes, logs and reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/xmem.h"
#include "../lib/hw/health.h"
#include "../lib/hw/health_print.h"
#include "jzd.h"
#include "prog.h"

#define GHEALTH__SUBSYS "health"
#define GHEALTH__OUT_MAX 4096 /* bytes of the program's output kept */
#define GHEALTH__FIRST_MS 200 /* the first sample and the first run, after start */

struct ghealth {
    jzd *d;
    /* NVML */
    health *nv; /* NULL: no sampling */
    size_t n_gpus;
    uv_timer_t sample_timer;
    uv_async_t wake;  /* from the sampler and XID threads */
    uint64_t work_us; /* how long the last sample took */
    health_sample last[HEALTH_MAX_GPUS];
    int64_t sampled_ms;
    /* Every utilisation sample since sampling began, summed per GPU (a
     * part's mean is the difference between its end and its start). */
    uint64_t util_sum[HEALTH_MAX_GPUS], util_n[HEALTH_MAX_GPUS];
    health_cfg cfg;
    health_state st;
    /* the health program */
    uv_timer_t prog_timer;
    bool prog_on;
    prog *run; /* the run in progress, NULL between runs */
    bool prog_failing;
    health_cond prog_cond;
    uint64_t prog_runs;
    /* the history of the last hour (the dashboard's charts): hist_cap
     * samples of each GPU, a ring of rows (hist[row * n_gpus + gpu]) */
    struct ghealth__point *hist;
    int64_t *hist_ms;
    size_t hist_cap, hist_head, hist_n;
    /* the merged view the leader reads */
    health_cond all[HEALTH_MAX_CONDS + 1];
    size_t n_all;
    uint64_t changes, digest;
    unsigned work_slow;
    bool have_last, wake_on, closing;
};

/* One GPU at one sample, for the history. */
typedef struct ghealth__point {
    uint32_t temp_c, util_pct, power_mw;
    uint64_t mem_used;
} ghealth__point;

#define GHEALTH__HIST_S 3600    /* the history's span */
#define GHEALTH__HIST_MAX 3600u /* its samples at most (per GPU) */

/* Keeps the latest sample in the history ring (allocated at the first). */
static void ghealth__remember(struct ghealth *g, int64_t now_ms)
{
    if (!g->hist) {
        uint64_t every = g->d->cfg->gpu_health_interval_ms ? g->d->cfg->gpu_health_interval_ms : 1000;
        uint64_t cap = GHEALTH__HIST_S * 1000ull / every + 1;
        g->hist_cap = cap < 2 ? 2 : cap > GHEALTH__HIST_MAX ? GHEALTH__HIST_MAX : (size_t)cap;
        g->hist = calloc(g->hist_cap * (g->n_gpus ? g->n_gpus : 1), sizeof *g->hist);
        g->hist_ms = calloc(g->hist_cap, sizeof *g->hist_ms);
        if (!g->hist || !g->hist_ms)
            abort();
    }
    size_t row = (g->hist_head + g->hist_n) % g->hist_cap;
    if (g->hist_n == g->hist_cap)
        g->hist_head = (g->hist_head + 1) % g->hist_cap;
    else
        g->hist_n++;
    g->hist_ms[row] = now_ms;
    for (size_t i = 0; i < g->n_gpus; i++) {
        const health_sample *s = &g->last[i];
        ghealth__point *p = &g->hist[row * g->n_gpus + i];
        p->temp_c = s->temp_c;
        p->util_pct = s->util_gpu_pct;
        p->power_mw = s->power_mw;
        p->mem_used = s->mem_used;
    }
}

static int64_t ghealth__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ghealth__on_closed(uv_handle_t *h)
{
    (void)h;
}

/* --- the merged set -------------------------------------------------------- */

/* FNV-1a over the conditions' names, GPUs and texts. */
static uint64_t ghealth__hash(const health_cond *c, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        char gpu[16];
        snprintf(gpu, sizeof gpu, "|%d|", c[i].gpu);
        const char *parts[3] = {c[i].name, gpu, c[i].text};
        for (int k = 0; k < 3; k++)
            for (const char *p = parts[k]; *p; p++) {
                h ^= (unsigned char)*p;
                h *= 1099511628211ull;
            }
        h ^= '\n';
        h *= 1099511628211ull;
    }
    return n ? h : 0;
}

/* Rebuilds the view from the GPUs' set and the program's condition; logs
 * what appeared and what cleared. */
static void ghealth__merge(struct ghealth *g)
{
    health_cond *now = calloc(HEALTH_MAX_CONDS + 1, sizeof *now);
    if (!now)
        abort();
    size_t n = 0;
    if (g->prog_failing)
        now[n++] = g->prog_cond;
    for (size_t i = 0; i < g->st.n_conds && n < HEALTH_MAX_CONDS + 1; i++)
        now[n++] = g->st.conds[i];
    for (size_t i = 0; i < n; i++) {
        bool was = false;
        for (size_t k = 0; k < g->n_all && !was; k++)
            was = g->all[k].gpu == now[i].gpu && strcmp(g->all[k].name, now[i].name) == 0;
        if (was)
            continue;
        if (now[i].gpu < 0)
            log_warn(GHEALTH__SUBSYS, "node condition %s: %s", now[i].name, now[i].text);
        else
            log_warn(GHEALTH__SUBSYS, "GPU %d: condition %s: %s", now[i].gpu, now[i].name, now[i].text);
    }
    for (size_t k = 0; k < g->n_all; k++) {
        bool stays = false;
        for (size_t i = 0; i < n && !stays; i++)
            stays = g->all[k].gpu == now[i].gpu && strcmp(g->all[k].name, now[i].name) == 0;
        if (stays)
            continue;
        if (g->all[k].gpu < 0)
            log_info(GHEALTH__SUBSYS, "node condition %s cleared", g->all[k].name);
        else
            log_info(GHEALTH__SUBSYS, "GPU %d: condition %s cleared", g->all[k].gpu, g->all[k].name);
    }
    uint64_t digest = ghealth__hash(now, n);
    if (digest != g->digest || n != g->n_all)
        g->changes++;
    g->digest = digest;
    memcpy(g->all, now, n * sizeof *now);
    g->n_all = n;
    free(now);
}

/* --- NVML samples and XIDs ------------------------------------------------- */

/* The conditions again, with the XIDs that came (the loop's thread). */
static void ghealth__derive(struct ghealth *g)
{
    health_xid xids[64];
    bool derived = false;
    for (;;) {
        uint64_t dropped = 0;
        size_t nx = health_xids_take(g->nv, xids, sizeof xids / sizeof *xids, &dropped);
        if (dropped)
            log_warn(GHEALTH__SUBSYS, "%llu XID events were dropped (more than %d came at once)",
                     (unsigned long long)dropped, HEALTH_XID_QUEUE);
        if (nx == 0)
            break;
        for (size_t i = 0; i < nx; i++)
            log_info(GHEALTH__SUBSYS, "GPU %u: XID %llu", xids[i].gpu, (unsigned long long)xids[i].xid);
        /* Before the first sample, the XIDs are noted: they show with it. */
        health_derive(&g->st, &g->cfg, g->last, g->have_last ? g->n_gpus : 0, xids, nx, ghealth__wall_ms());
        derived = true;
    }
    if (!derived && g->have_last)
        health_derive(&g->st, &g->cfg, g->last, g->n_gpus, NULL, 0, ghealth__wall_ms());
    ghealth__merge(g);
}

/* A sample was taken, or XIDs came. */
static void ghealth__on_wake(uv_async_t *a)
{
    struct ghealth *g = a->data;
    if (g->closing)
        return;
    if (health_sampler_take(g->nv, g->last, g->n_gpus, &g->work_us, &g->work_slow)) {
        g->have_last = true;
        g->sampled_ms = ghealth__wall_ms();
        ghealth__remember(g, g->sampled_ms);
        for (size_t i = 0; i < g->n_gpus && i < HEALTH_MAX_GPUS; i++)
            if (!g->last[i].lost && (g->last[i].known & HEALTH_K_UTIL)) {
                g->util_sum[i] += g->last[i].util_gpu_pct;
                g->util_n[i]++;
            }
        log_debug(GHEALTH__SUBSYS, "sampled %zu GPUs in %llu us", g->n_gpus, (unsigned long long)g->work_us);
    }
    ghealth__derive(g);
}

/* From the sampler and XID threads (uv_async_send is the one libuv call
 * that may come from another thread). */
static void ghealth__wake(void *arg)
{
    uv_async_send(arg);
}

static void ghealth__on_sample_timer(uv_timer_t *t)
{
    struct ghealth *g = t->data;
    if (!g->closing && !health_sampler_request(g->nv))
        log_debug(GHEALTH__SUBSYS, "the last GPU sample is still at the driver: none taken this time");
}

static void ghealth__nvml_start(struct ghealth *g)
{
    const config *cfg = g->d->cfg;
    char err[300];
    if (cfg->gpu_health_interval_ms == 0) {
        log_info(GHEALTH__SUBSYS, "GPU health sampling is off (gpu_health_interval = 0)");
        return;
    }
    health_opts o = {NULL, 0, 250}; /* the XID thread looks for stop 4 times a second */
    g->nv = health_open(&o, err, sizeof err);
    if (!g->nv) {
        log_debug(GHEALTH__SUBSYS, "no GPU health sampling: %s", err);
        return;
    }
    g->n_gpus = health_gpu_count(g->nv);
    g->cfg.temp_limit_c = (uint32_t)cfg->gpu_temp_limit;
    g->cfg.xid_hold_ms = (int64_t)cfg->gpu_xid_hold_ms;
    uv_async_init(&g->d->loop, &g->wake, ghealth__on_wake);
    g->wake.data = g;
    g->wake_on = true;
    if (health_sampler_start(g->nv, ghealth__wake, &g->wake, err, sizeof err) != 0) {
        log_warn(GHEALTH__SUBSYS, "no GPU health sampling: %s", err);
        health_close(g->nv);
        g->nv = NULL;
        return;
    }
    if (health_xids_start(g->nv, ghealth__wake, &g->wake, err, sizeof err) != 0)
        log_warn(GHEALTH__SUBSYS, "%s", err);
    uv_timer_init(&g->d->loop, &g->sample_timer);
    g->sample_timer.data = g;
    uv_timer_start(&g->sample_timer, ghealth__on_sample_timer, GHEALTH__FIRST_MS,
                   cfg->gpu_health_interval_ms);
    log_info(GHEALTH__SUBSYS, "sampling the health of %zu GPUs every %llu ms", g->n_gpus,
             (unsigned long long)cfg->gpu_health_interval_ms);
}

/* --- the health program ---------------------------------------------------- */

static void ghealth__on_prog_timer(uv_timer_t *t);

static void ghealth__prog_schedule(struct ghealth *g, uint64_t ms)
{
    uv_timer_start(&g->prog_timer, ghealth__on_prog_timer, ms, 0);
}

/* The run is over (prog.c): its verdict. */
static void ghealth__prog_done(void *arg, const prog_result *r)
{
    struct ghealth *g = arg;
    const config *cfg = g->d->cfg;
    g->run = NULL;
    g->prog_runs++;
    if (r->timed_out)
        log_warn(GHEALTH__SUBSYS, "health program %s runs past health_timeout (%llu ms): killed it",
                 cfg->health_program, (unsigned long long)cfg->health_timeout_ms);
    if (!prog_passed(r)) {
        health_cond c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "health_program");
        c.gpu = -1;
        prog_summary(r, "health program", cfg->health_program, cfg->health_timeout_ms, c.text, sizeof c.text);
        c.since_ms = g->prog_failing ? g->prog_cond.since_ms : ghealth__wall_ms();
        if (g->prog_failing && strcmp(c.text, g->prog_cond.text) != 0)
            log_warn(GHEALTH__SUBSYS, "node condition health_program: %s", c.text);
        g->prog_cond = c;
        g->prog_failing = true;
    } else {
        g->prog_failing = false;
        log_debug(GHEALTH__SUBSYS, "health program passed");
    }
    ghealth__merge(g);
    if (!g->closing)
        ghealth__prog_schedule(g, cfg->health_interval_ms);
}

static void ghealth__on_prog_timer(uv_timer_t *t)
{
    struct ghealth *g = t->data;
    const config *cfg = g->d->cfg;
    char node[CONFIG_NAME_MAX + 16];
    snprintf(node, sizeof node, "JAZARI_NODE=%s", cfg->name);
    char *args[] = {cfg->health_program, NULL};
    char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", node, NULL};
    g->run = prog_start(&g->d->loop, cfg->health_program, args, env, cfg->health_timeout_ms, GHEALTH__OUT_MAX,
                        ghealth__prog_done, g);
    log_debug(GHEALTH__SUBSYS, "health program %s started (pid %d)", cfg->health_program, prog_pid(g->run));
}

/* --- the module ------------------------------------------------------------ */

void ghealth_init(jzd *d)
{
    struct ghealth *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->d = d;
    d->health = g;
    ghealth__nvml_start(g);
    const char *program = d->cfg->health_program;
    if (program && *program) {
        uv_timer_init(&d->loop, &g->prog_timer);
        g->prog_timer.data = g;
        g->prog_on = true;
        ghealth__prog_schedule(g, GHEALTH__FIRST_MS);
        log_info(GHEALTH__SUBSYS, "health program %s every %llu ms (timeout %llu ms)", program,
                 (unsigned long long)d->cfg->health_interval_ms,
                 (unsigned long long)d->cfg->health_timeout_ms);
    }
}

void ghealth_close(jzd *d)
{
    struct ghealth *g = d->health;
    if (!g || g->closing)
        return;
    g->closing = true;
    if (g->nv) {
        /* Before the async handle goes: the threads send to it. */
        health_xids_stop(g->nv);
        health_sampler_stop(g->nv);
        uv_close((uv_handle_t *)&g->sample_timer, ghealth__on_closed);
    }
    if (g->wake_on)
        uv_close((uv_handle_t *)&g->wake, ghealth__on_closed);
    if (g->prog_on) {
        prog_cancel(g->run); /* its process group is killed */
        g->run = NULL;
        uv_close((uv_handle_t *)&g->prog_timer, ghealth__on_closed);
    }
}

void ghealth_free(jzd *d)
{
    struct ghealth *g = d->health;
    if (!g)
        return;
    health_close(g->nv);
    free(g->hist);
    free(g->hist_ms);
    free(g);
    d->health = NULL;
}

size_t ghealth_conditions(const jzd *d, const health_cond **out)
{
    const struct ghealth *g = d->health;
    *out = g ? g->all : NULL;
    return g ? g->n_all : 0;
}

uint64_t ghealth_digest(const jzd *d)
{
    return d->health ? d->health->digest : 0;
}

uint64_t ghealth_changes(const jzd *d)
{
    return d->health ? d->health->changes : 0;
}

Jazari__HealthCondition **ghealth_pb(const jzd *d, size_t *n)
{
    const struct ghealth *g = d->health;
    *n = g ? g->n_all : 0;
    if (*n == 0)
        return NULL;
    /* One block: the pointers, then the messages they point at. */
    Jazari__HealthCondition **p =
        malloc(*n * (sizeof(Jazari__HealthCondition *) + sizeof(Jazari__HealthCondition)));
    if (!p)
        abort();
    Jazari__HealthCondition *cs = (Jazari__HealthCondition *)(void *)(p + *n);
    for (size_t i = 0; i < *n; i++) {
        jazari__health_condition__init(&cs[i]);
        cs[i].name = (char *)g->all[i].name;
        cs[i].gpu = g->all[i].gpu;
        cs[i].text = (char *)g->all[i].text;
        cs[i].since_ms = g->all[i].since_ms;
        p[i] = &cs[i];
    }
    return p;
}

void ghealth_pb_free(Jazari__HealthCondition **p)
{
    free(p);
}

/* --- Prometheus ------------------------------------------------------------ */

/* A label value: backslash, quote and newline escaped. */
static void ghealth__label(buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_putc(out, '\\');
        if (*s == '\n') {
            buf_puts(out, "\\n");
            continue;
        }
        buf_putc(out, *s);
    }
}

static void ghealth__labels(buf *out, const jzd *d, const health_sample *s)
{
    buf_puts(out, "{node=\"");
    ghealth__label(out, d->cfg->name);
    buf_printf(out, "\",gpu=\"%u\",uuid=\"", s->index);
    ghealth__label(out, s->uuid);
    buf_puts(out, "\",model=\"");
    ghealth__label(out, s->model);
    buf_putc(out, '"');
}

typedef enum { GHEALTH__GAUGE, GHEALTH__COUNTER } ghealth__kind;

static void ghealth__family(buf *out, const char *name, ghealth__kind k, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
               k == GHEALTH__GAUGE ? "gauge" : "counter");
}

/* One line: name{labels[,extra]} value. */
static void ghealth__line(buf *out, const jzd *d, const health_sample *s, const char *name, const char *extra,
                          const char *value)
{
    buf_puts(out, name);
    ghealth__labels(out, d, s);
    if (extra)
        buf_printf(out, ",%s", extra);
    buf_printf(out, "} %s\n", value);
}

void ghealth_metrics(const jzd *d, buf *out)
{
    const struct ghealth *g = d->health;
    if (!g || !g->nv || !g->have_last)
        return;
    static const struct {
        const char *name;
        ghealth__kind kind;
        const char *help;
    } fam[] = {
        {"jazari_gpu_lost", GHEALTH__GAUGE, "1 when NVML says the GPU has fallen off the bus"},
        {"jazari_gpu_temperature_celsius", GHEALTH__GAUGE, "GPU temperature"},
        {"jazari_gpu_power_watts", GHEALTH__GAUGE, "GPU power draw"},
        {"jazari_gpu_utilization_ratio", GHEALTH__GAUGE, "fraction of time the GPU was busy (0-1)"},
        {"jazari_gpu_memory_used_bytes", GHEALTH__GAUGE, "GPU memory in use"},
        {"jazari_gpu_ecc_errors_total", GHEALTH__COUNTER,
         "ECC errors; type volatile (since the last reset) or aggregate (the GPU's life), bits single or "
         "double"},
        {"jazari_gpu_retired_pages_pending", GHEALTH__GAUGE, "1 when retired pages wait for a GPU reset"},
        {"jazari_gpu_remapped_rows_total", GHEALTH__COUNTER, "memory rows remapped, by kind of error"},
        {"jazari_gpu_throttle", GHEALTH__GAUGE, "1 while the clocks are held down for that reason"},
        {"jazari_gpu_xid_events_total", GHEALTH__COUNTER, "XID events seen since the daemon started"},
    };
    static const struct {
        uint64_t bit;
        const char *reason;
    } thr[] = {
        {HEALTH_THROTTLE_GPU_IDLE, "gpu_idle"},         {HEALTH_THROTTLE_APP_CLOCKS, "applications_clocks"},
        {HEALTH_THROTTLE_SW_POWER_CAP, "sw_power_cap"}, {HEALTH_THROTTLE_HW_SLOWDOWN, "hw_slowdown"},
        {HEALTH_THROTTLE_SYNC_BOOST, "sync_boost"},     {HEALTH_THROTTLE_SW_THERMAL, "sw_thermal"},
        {HEALTH_THROTTLE_HW_THERMAL, "hw_thermal"},     {HEALTH_THROTTLE_HW_POWER_BRAKE, "hw_power_brake"},
    };
    char v[64], extra[64];
    for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
        ghealth__family(out, fam[f].name, fam[f].kind, fam[f].help);
        for (size_t i = 0; i < g->n_gpus; i++) {
            const health_sample *s = &g->last[i];
            uint32_t k = s->known;
            switch (f) {
            case 0:
                ghealth__line(out, d, s, fam[f].name, NULL, s->lost ? "1" : "0");
                break;
            case 1:
                if (k & HEALTH_K_TEMP) {
                    snprintf(v, sizeof v, "%u", s->temp_c);
                    ghealth__line(out, d, s, fam[f].name, NULL, v);
                }
                break;
            case 2:
                if (k & HEALTH_K_POWER) {
                    snprintf(v, sizeof v, "%.3f", (double)s->power_mw / 1000.0);
                    ghealth__line(out, d, s, fam[f].name, NULL, v);
                }
                break;
            case 3:
                if (k & HEALTH_K_UTIL) {
                    snprintf(v, sizeof v, "%.2f", (double)s->util_gpu_pct / 100.0);
                    ghealth__line(out, d, s, fam[f].name, NULL, v);
                }
                break;
            case 4:
                if (k & HEALTH_K_MEMORY) {
                    snprintf(v, sizeof v, "%llu", (unsigned long long)s->mem_used);
                    ghealth__line(out, d, s, fam[f].name, NULL, v);
                }
                break;
            case 5:
                for (int t = 0; t < 2; t++) {
                    if (!(k & (t ? HEALTH_K_ECC_AGGREGATE : HEALTH_K_ECC_VOLATILE)))
                        continue;
                    for (int b = 0; b < 2; b++) {
                        snprintf(extra, sizeof extra, "type=\"%s\",bits=\"%s\"", t ? "aggregate" : "volatile",
                                 b ? "double" : "single");
                        snprintf(v, sizeof v, "%llu",
                                 (unsigned long long)(t ? s->ecc_aggregate[b] : s->ecc_volatile[b]));
                        ghealth__line(out, d, s, fam[f].name, extra, v);
                    }
                }
                break;
            case 6:
                if (k & HEALTH_K_RETIRED)
                    ghealth__line(out, d, s, fam[f].name, NULL, s->retired_pending ? "1" : "0");
                break;
            case 7:
                if (k & HEALTH_K_REMAP) {
                    snprintf(v, sizeof v, "%u", s->remap_corrected);
                    ghealth__line(out, d, s, fam[f].name, "kind=\"corrected\"", v);
                    snprintf(v, sizeof v, "%u", s->remap_uncorrected);
                    ghealth__line(out, d, s, fam[f].name, "kind=\"uncorrected\"", v);
                }
                break;
            case 8:
                for (size_t t = 0; (k & HEALTH_K_THROTTLE) && t < sizeof thr / sizeof *thr; t++) {
                    snprintf(extra, sizeof extra, "reason=\"%s\"", thr[t].reason);
                    ghealth__line(out, d, s, fam[f].name, extra, (s->throttle & thr[t].bit) ? "1" : "0");
                }
                break;
            default:
                snprintf(v, sizeof v, "%llu", (unsigned long long)health_xid_total(&g->st, s->index));
                ghealth__line(out, d, s, fam[f].name, NULL, v);
                break;
            }
        }
    }
}

/* --- jz's local request ---------------------------------------------------- */

void ghealth_request(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const struct ghealth *g = d->health;
    Jazari__HealthReply r = JAZARI__HEALTH_REPLY__INIT;
    r.node = d->cfg->name;
    size_t ng = g && g->nv && g->have_last ? g->n_gpus : 0;
    size_t nc = 0;
    Jazari__GpuSample *gs = ng ? calloc(ng, sizeof *gs) : NULL;
    Jazari__GpuSample **gp = ng ? calloc(ng, sizeof(Jazari__GpuSample *)) : NULL;
    char *(*known)[HEALTH_K_COUNT] = ng ? calloc(ng, sizeof *known) : NULL;
    Jazari__HealthCondition **cp = ghealth_pb(d, &nc);
    if (ng && (!gs || !gp || !known))
        abort();
    for (size_t i = 0; i < ng; i++) {
        const health_sample *s = &g->last[i];
        Jazari__GpuSample *o = &gs[i];
        jazari__gpu_sample__init(o);
        o->gpu = (int32_t)s->index;
        o->uuid = (char *)s->uuid;
        o->model = (char *)s->model;
        o->lost = s->lost;
        for (size_t k = 0; k < HEALTH_K_COUNT; k++)
            if (s->known & (1u << k))
                known[i][o->n_known++] = (char *)health_known_name((unsigned)k);
        o->known = known[i];
        o->temp_c = s->temp_c;
        o->temp_slowdown_c = s->temp_slowdown_c;
        o->temp_shutdown_c = s->temp_shutdown_c;
        o->power_mw = s->power_mw;
        o->power_limit_mw = s->power_limit_mw;
        o->util_gpu_pct = s->util_gpu_pct;
        o->util_mem_pct = s->util_mem_pct;
        o->mem_used = s->mem_used;
        o->mem_total = s->mem_total;
        o->ecc_sbe_volatile = s->ecc_volatile[0];
        o->ecc_dbe_volatile = s->ecc_volatile[1];
        o->ecc_sbe_aggregate = s->ecc_aggregate[0];
        o->ecc_dbe_aggregate = s->ecc_aggregate[1];
        o->retired_pages_pending = s->retired_pending;
        o->remapped_rows_corrected = s->remap_corrected;
        o->remapped_rows_uncorrected = s->remap_uncorrected;
        o->remap_pending = s->remap_pending;
        o->remap_failed = s->remap_failed;
        o->throttle_reasons = s->throttle;
        o->xid_events = health_xid_total(&g->st, s->index);
        o->sampled_ms = g->sampled_ms;
        gp[i] = o;
    }
    r.sampling = g && g->nv;
    r.n_gpus = ng;
    r.gpus = gp;
    r.n_conditions = nc;
    r.conditions = cp;
    r.changes = g ? g->changes : 0;
    r.program_running = g && g->run != NULL;
    r.program_runs = g ? g->prog_runs : 0;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_HEALTH_REPLY, &r);
    free(gs);
    free(gp);
    free(known);
    ghealth_pb_free(cp);
}

int32_t ghealth_topo_gpu(const jzd *d, int nvml_index)
{
    const struct ghealth *g = d->health;
    const topo *t = d->topo;
    if (nvml_index < 0)
        return -1;
    /* By UUID when both know it: NVML's order and the topology's may
     * differ (a GPU hidden from one of them). */
    const char *uuid = g && g->have_last && (size_t)nvml_index < g->n_gpus ? g->last[nvml_index].uuid : "";
    for (size_t i = 0; uuid[0] && t && i < t->n_gpus; i++)
        if (t->gpus[i].uuid && strcmp(t->gpus[i].uuid, uuid) == 0)
            return (int32_t)i;
    /* Else both go by PCI bus id order. */
    return t && (size_t)nvml_index < t->n_gpus ? (int32_t)nvml_index : -1;
}

bool ghealth_counters(const jzd *d, uint32_t gpu, ghealth_count *out)
{
    const struct ghealth *g = d->health;
    memset(out, 0, sizeof *out);
    if (!g || !g->nv)
        return false;
    for (size_t i = 0; i < g->n_gpus && i < HEALTH_MAX_GPUS; i++) {
        if (ghealth_topo_gpu(d, (int)i) != (int32_t)gpu)
            continue;
        /* Before the first sample: no energy reading, and no utilisation
         * sample yet (the sums are 0, which a part's start may count from). */
        const health_sample *s = &g->last[i];
        out->has_energy = g->have_last && !s->lost && (s->known & HEALTH_K_ENERGY);
        out->energy_mj = out->has_energy ? s->energy_mj : 0;
        /* The counter now, rather than at the sample: on at the sample's
         * power for the time since (at most two intervals: a stalled
         * sampler's old power is not extrapolated further). With the
         * default interval of 10 s, a part's energy is then right to its
         * power's changes, not to 10 s of power at each end. */
        int64_t since = ghealth__wall_ms() - g->sampled_ms;
        int64_t most = 2 * (int64_t)g->d->cfg->gpu_health_interval_ms;
        if (out->has_energy && (s->known & HEALTH_K_POWER) && since > 0 && since <= most)
            out->energy_mj += (uint64_t)s->power_mw * (uint64_t)since / 1000;
        out->util_sum = g->util_sum[i];
        out->util_n = g->util_n[i];
        return true;
    }
    return false;
}

void ghealth_history(const jzd *d, int64_t now_ms, Jazari__WebReply *r)
{
    const struct ghealth *g = d->health;
    r->node = d->cfg->name;
    r->interval_s = (uint32_t)(d->cfg->gpu_health_interval_ms / 1000);
    size_t nc = g ? g->n_all : 0;
    r->conditions = nc ? xcalloc(nc, sizeof(Jazari__HealthCondition *)) : NULL;
    for (size_t i = 0; i < nc; i++) {
        Jazari__HealthCondition *c = xcalloc(1, sizeof *c);
        jazari__health_condition__init(c);
        c->name = (char *)g->all[i].name;
        c->gpu = g->all[i].gpu;
        c->text = (char *)g->all[i].text;
        c->since_ms = g->all[i].since_ms;
        r->conditions[i] = c;
    }
    r->n_conditions = nc;
    size_t ng = g && g->hist ? g->n_gpus : 0;
    if (!ng)
        return;
    /* The samples of the last hour: the oldest that count first. */
    size_t skip = 0;
    while (skip < g->hist_n &&
           g->hist_ms[(g->hist_head + skip) % g->hist_cap] < now_ms - (int64_t)GHEALTH__HIST_S * 1000)
        skip++;
    size_t n = g->hist_n - skip;
    r->gpus = xcalloc(ng, sizeof(Jazari__GpuHistory *));
    r->n_gpus = ng;
    for (size_t i = 0; i < ng; i++) {
        Jazari__GpuHistory *h = xcalloc(1, sizeof *h);
        jazari__gpu_history__init(h);
        h->gpu = (int32_t)g->last[i].index;
        h->time_ms = xcalloc(n + 1, sizeof *h->time_ms);
        h->temp_c = xcalloc(n + 1, sizeof *h->temp_c);
        h->util_gpu_pct = xcalloc(n + 1, sizeof *h->util_gpu_pct);
        h->power_mw = xcalloc(n + 1, sizeof *h->power_mw);
        h->mem_used = xcalloc(n + 1, sizeof *h->mem_used);
        for (size_t k = 0; k < n; k++) {
            size_t row = (g->hist_head + skip + k) % g->hist_cap;
            const ghealth__point *p = &g->hist[row * g->n_gpus + i];
            h->time_ms[k] = g->hist_ms[row];
            h->temp_c[k] = p->temp_c;
            h->util_gpu_pct[k] = p->util_pct;
            h->power_mw[k] = p->power_mw;
            h->mem_used[k] = p->mem_used;
        }
        h->n_time_ms = h->n_temp_c = h->n_util_gpu_pct = h->n_power_mw = h->n_mem_used = n;
        r->gpus[i] = h;
    }
}

void ghealth_history_free(Jazari__WebReply *r)
{
    for (size_t i = 0; i < r->n_gpus; i++) {
        Jazari__GpuHistory *h = r->gpus[i];
        free(h->time_ms);
        free(h->temp_c);
        free(h->util_gpu_pct);
        free(h->power_mw);
        free(h->mem_used);
        free(h);
    }
    free(r->gpus);
    r->gpus = NULL;
    r->n_gpus = 0;
    for (size_t i = 0; i < r->n_conditions; i++)
        free(r->conditions[i]);
    free(r->conditions);
    r->conditions = NULL;
    r->n_conditions = 0;
}

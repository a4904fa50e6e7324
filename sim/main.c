/* main.c - jazari-sim: replays a trace on a virtual cluster in simulated
 * time with the scheduler's own core (daemon/sched/plan.c), and prints
 * what users would feel: waits, bounded slowdowns, utilization.
 *
 * Time moves one event at a time (an arrival, or a job's end; at equal
 * times the arrival first), and after each event the scheduler makes a
 * pass: the event model of the RLScheduler protocol that published
 * figures use (../shared/traces/README.md), so ours sit beside theirs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../daemon/sched/plan.h"
#include "swf.h"

/* The windows of RLScheduler's protocol: 1,024 jobs from each index. */
static const size_t sim_rl_starts[] = {1981, 2756, 4299, 8850, 3316, 2714, 5228, 7762, 4022, 7085};
#define SIM_RL_WINDOW 1024

typedef struct sim_metrics {
    size_t jobs;
    double utilization, mean_wait, mean_bsld, p95_bsld, makespan, mean_jct;
} sim_metrics;

typedef struct sim_job {
    plan_job pj;
    const swf_job *t;
    uint64_t seq; /* start order: ends at the same time go in it */
} sim_job;

/* Running jobs by actual end, then start order: a binary heap. */
typedef struct sim_heap {
    sim_job **a;
    size_t n;
} sim_heap;

static bool sim__before(const sim_job *x, const sim_job *y)
{
    int64_t ex = x->pj.start + x->t->run, ey = y->pj.start + y->t->run;
    return ex != ey ? ex < ey : x->seq < y->seq;
}

static void sim__heap_push(sim_heap *h, sim_job *j)
{
    size_t i = h->n++;
    h->a[i] = j;
    while (i > 0 && sim__before(h->a[i], h->a[(i - 1) / 2])) {
        sim_job *t = h->a[i];
        h->a[i] = h->a[(i - 1) / 2];
        h->a[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static sim_job *sim__heap_pop(sim_heap *h)
{
    sim_job *top = h->a[0];
    h->a[0] = h->a[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && sim__before(h->a[l], h->a[m]))
            m = l;
        if (r < h->n && sim__before(h->a[r], h->a[m]))
            m = r;
        if (m == i)
            break;
        sim_job *t = h->a[i];
        h->a[i] = h->a[m];
        h->a[m] = t;
        i = m;
    }
    return top;
}

typedef struct sim_run {
    sim_heap heap;
    uint64_t seq;
} sim_run;

static void sim__started(void *arg, plan_job *pj)
{
    sim_run *r = arg;
    sim_job *j = pj->user;
    j->seq = r->seq++;
    sim__heap_push(&r->heap, j);
}

static int sim__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Replays jobs [first, first + n) of t on nodes x per_node processors,
 * from an empty cluster at the first one's submit time. */
static void sim_replay(const swf *t, size_t first, size_t n, const plan_policy *policy, uint32_t nodes,
                       uint32_t per_node, sim_metrics *m)
{
    plan p;
    plan_init(&p, policy, nodes, per_node);
    sim_job *jobs = calloc(n, sizeof *jobs);
    sim_run run = {.heap = {.a = calloc(n, sizeof(sim_job *)), .n = 0}, .seq = 0};
    if (!jobs || !run.heap.a)
        abort();
    for (size_t i = 0; i < n; i++) {
        const swf_job *s = &t->jobs[first + i];
        sim_job *j = &jobs[i];
        j->t = s;
        j->pj.id = s->id;
        j->pj.submit = s->submit;
        j->pj.limit = s->request;
        /* Whole nodes: ceil(procs / per node), never more than there are. */
        uint32_t need = (s->procs + per_node - 1) / per_node;
        j->pj.nodes = need > nodes ? nodes : need;
        j->pj.per_node = per_node;
        j->pj.user = j;
    }
    int64_t now = jobs[0].pj.submit;
    size_t next = 0, started = 0;
    plan_submit(&p, &jobs[next++].pj);
    while (started < n) {
        started += plan_pass(&p, now, sim__started, &run);
        if (started == n)
            break;
        int64_t arrival = next < n ? jobs[next].pj.submit : INT64_MAX;
        int64_t end = run.heap.n ? run.heap.a[0]->pj.start + run.heap.a[0]->t->run : INT64_MAX;
        if (arrival == INT64_MAX && end == INT64_MAX)
            break; /* nothing can ever start what is left (cannot happen: jobs fit) */
        if (arrival <= end) {
            now = arrival > now ? arrival : now;
            plan_submit(&p, &jobs[next++].pj);
        } else {
            now = end > now ? end : now;
            plan_end(&p, &sim__heap_pop(&run.heap)->pj);
        }
    }
    /* The figures. */
    double *bsld = calloc(n, sizeof *bsld);
    if (!bsld)
        abort();
    double wait = 0, jct = 0, area = 0;
    int64_t t0 = jobs[0].pj.submit, t1 = t0;
    for (size_t i = 0; i < n; i++) {
        const sim_job *j = &jobs[i];
        double w = (double)(j->pj.start - j->pj.submit), r = (double)j->t->run;
        wait += w;
        jct += w + r;
        bsld[i] = fmax(1.0, (w + r) / fmax(r, 10.0));
        area += r * j->pj.nodes * per_node;
        if (j->pj.start + j->t->run > t1)
            t1 = j->pj.start + j->t->run;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += bsld[i];
    qsort(bsld, n, sizeof *bsld, sim__cmp_double);
    m->jobs = n;
    m->mean_wait = wait / (double)n;
    m->mean_jct = jct / (double)n;
    m->mean_bsld = sum / (double)n;
    m->p95_bsld = bsld[(size_t)ceil(0.95 * (double)n) - 1];
    m->makespan = (double)(t1 - t0);
    m->utilization = t1 > t0 ? area / ((double)(t1 - t0) * nodes * per_node) : 0;
    free(bsld);
    free(run.heap.a);
    plan_free(&p);
    free(jobs);
}

static void sim__metrics_json(json *j, const sim_metrics *m)
{
    json_kv_uint(j, "jobs", m->jobs);
    json_key(j, "utilization");
    json_double(j, m->utilization);
    json_key(j, "mean_wait");
    json_double(j, m->mean_wait);
    json_key(j, "mean_bounded_slowdown");
    json_double(j, m->mean_bsld);
    json_key(j, "p95_bounded_slowdown");
    json_double(j, m->p95_bsld);
    json_key(j, "makespan");
    json_double(j, m->makespan);
    json_key(j, "mean_jct");
    json_double(j, m->mean_jct);
    /* GPU placement figures: a processor trace has no GPUs. */
    json_key(j, "best_connected_share");
    json_null(j);
    json_key(j, "fragmentation");
    json_null(j);
}

static void sim__usage(FILE *f)
{
    fprintf(f, "usage: jazari-sim --trace FILE.swf [--policy NAME] [--windows rlscheduler] [--json]\n"
               "                  [--nodes N --procs-per-node P]\n"
               "Replays a trace with the scheduler's own core, in simulated time.\n"
               "  --policy     jazari (ours, the default: aged smallest area first, EASY), fcfs,\n"
               "               fcfs-easy, sjf, sjf-easy\n"
               "  --windows    rlscheduler: the 10 windows of 1,024 jobs of RLScheduler's protocol\n"
               "  --nodes, --procs-per-node   the cluster (default: the trace's MaxNodes and\n"
               "               MaxProcs/MaxNodes)\n");
}

static int sim__count(const char *flag, const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v == 0 || v > max) {
        fprintf(stderr, "jazari-sim: bad %s '%.40s': a whole number from 1 to %u\n", flag, s, max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *trace = NULL, *windows = NULL, *policy_name = "jazari";
    bool as_json = false;
    uint32_t nodes = 0, ppn = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sim__usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (strcmp(a, "--trace") == 0 && has) {
            trace = argv[++i];
        } else if (strcmp(a, "--policy") == 0 && has) {
            policy_name = argv[++i];
        } else if (strcmp(a, "--windows") == 0 && has) {
            windows = argv[++i];
        } else if (strcmp(a, "--nodes") == 0 && has) {
            if (sim__count(a, argv[++i], 1u << 20, &nodes) != 0)
                return 2;
        } else if (strcmp(a, "--procs-per-node") == 0 && has) {
            if (sim__count(a, argv[++i], 1u << 16, &ppn) != 0)
                return 2;
        } else {
            fprintf(stderr, "jazari-sim: unknown or incomplete argument '%.60s' (try --help)\n", a);
            return 2;
        }
    }
    plan_policy policy;
    if (!trace) {
        fprintf(stderr, "jazari-sim: which trace? --trace FILE.swf (try --help)\n");
        return 2;
    }
    if (plan_policy_parse(policy_name, &policy) != 0) {
        fprintf(stderr, "jazari-sim: unknown --policy '%.40s': jazari, fcfs, fcfs-easy, sjf or sjf-easy\n",
                policy_name);
        return 2;
    }
    if (windows && strcmp(windows, "rlscheduler") != 0) {
        fprintf(stderr, "jazari-sim: unknown --windows '%.40s': rlscheduler\n", windows);
        return 2;
    }
    swf t;
    char err[512];
    if (swf_load(trace, &t, err, sizeof err) != 0) {
        fprintf(stderr, "jazari-sim: %s\n", err);
        return 2;
    }
    if (!nodes)
        nodes = t.max_nodes ? t.max_nodes : t.max_procs;
    if (!ppn)
        ppn = t.max_nodes && t.max_procs >= t.max_nodes ? t.max_procs / t.max_nodes : 1;
    if (!nodes) {
        fprintf(stderr, "jazari-sim: %s does not say its size (MaxNodes): give --nodes\n", trace);
        swf_free(&t);
        return 2;
    }
    size_t nwin = windows ? sizeof sim_rl_starts / sizeof sim_rl_starts[0] : 1;
    sim_metrics per[sizeof sim_rl_starts / sizeof sim_rl_starts[0]], avg;
    memset(&avg, 0, sizeof avg);
    for (size_t w = 0; w < nwin; w++) {
        size_t first = windows ? sim_rl_starts[w] : 0, n = windows ? SIM_RL_WINDOW : t.n;
        if (first + n > t.n) {
            fprintf(stderr, "jazari-sim: %s has %zu jobs: window %zu needs jobs %zu to %zu\n", trace, t.n, w,
                    first, first + n - 1);
            swf_free(&t);
            return 2;
        }
        sim_replay(&t, first, n, &policy, nodes, ppn, &per[w]);
        avg.jobs += per[w].jobs;
        avg.utilization += per[w].utilization / (double)nwin;
        avg.mean_wait += per[w].mean_wait / (double)nwin;
        avg.mean_bsld += per[w].mean_bsld / (double)nwin;
        avg.p95_bsld += per[w].p95_bsld / (double)nwin;
        avg.makespan += per[w].makespan / (double)nwin;
        avg.mean_jct += per[w].mean_jct / (double)nwin;
    }
    buf out = BUF_INIT;
    if (as_json) {
        json j;
        json_init(&j, &out, true);
        json_obj_begin(&j);
        json_kv_str(&j, "trace", trace);
        json_kv_str(&j, "policy", plan_policy_name(&policy));
        json_kv_uint(&j, "nodes", nodes);
        json_kv_uint(&j, "procs_per_node", ppn);
        sim__metrics_json(&j, &avg);
        if (windows) {
            json_key(&j, "windows");
            json_arr_begin(&j);
            for (size_t w = 0; w < nwin; w++) {
                json_obj_begin(&j);
                json_kv_uint(&j, "first", sim_rl_starts[w]);
                sim__metrics_json(&j, &per[w]);
                json_obj_end(&j);
            }
            json_arr_end(&j);
        }
        json_obj_end(&j);
        buf_putc(&out, '\n');
    } else {
        buf_printf(&out, "trace %s: %zu jobs%s, %u nodes x %u, policy %s\n", trace, avg.jobs,
                   windows ? " (10 windows of 1,024, RLScheduler's protocol: means over windows)" : "", nodes,
                   ppn, plan_policy_name(&policy));
        buf_printf(
            &out,
            "mean bounded slowdown  %.2f\np95 bounded slowdown   %.2f\nmean wait              %.0f s\n"
            "mean job completion    %.0f s\nmakespan               %.0f s\nutilization            %.1f%%\n",
            avg.mean_bsld, avg.p95_bsld, avg.mean_wait, avg.mean_jct, avg.makespan, 100 * avg.utilization);
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    swf_free(&t);
    return fflush(stdout) == 0 ? 0 : 1;
}

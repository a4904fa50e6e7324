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
#include "../daemon/node/topo.h"
#include "../daemon/sched/gpuset.h"
#include "../daemon/sched/plan.h"
#include "philly.h"
#include "swf.h"

/* The windows of RLScheduler's protocol: 1,024 jobs from each index. */
static const size_t sim_rl_starts[] = {1981, 2756, 4299, 8850, 3316, 2714, 5228, 7762, 4022, 7085};
#define SIM_RL_WINDOW 1024

typedef struct sim_metrics {
    size_t jobs;
    double utilization, mean_wait, mean_bsld, p95_bsld, makespan, mean_jct;
    double best_connected_share; /* < 0: not measured */
    double fragmentation;        /* < 0: not measured */
} sim_metrics;

/* The virtual cluster. */
typedef struct sim_cluster {
    uint32_t nodes, per_node; /* processors or GPUs per node */
    bool whole_nodes;         /* SWF: a job takes whole nodes; GPU traces share them */
    const topo *node_topo;    /* each node's GPUs and links, or NULL */
} sim_cluster;

typedef struct sim_job {
    plan_job pj;
    const swf_job *t;
    uint64_t seq;   /* start order: ends at the same time go in it */
    uint32_t *gpus; /* with a node topology: its GPU indexes, per_node per node */
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
    const sim_cluster *c;
    bool *taken;             /* nodes x per_node GPU flags, with a topology */
    unsigned best[65];       /* the weakest link of the best set of k GPUs on an empty node */
    size_t multi, connected; /* multi-GPU single-node jobs, and those on a best set */
} sim_run;

static void sim__started(void *arg, plan_job *pj)
{
    sim_run *r = arg;
    sim_job *j = pj->user;
    j->seq = r->seq++;
    sim__heap_push(&r->heap, j);
    if (!r->c->node_topo)
        return;
    /* Which GPUs of each node, as the leader picks them (gpuset.c). */
    uint32_t per = r->c->per_node;
    j->gpus = calloc((size_t)pj->nodes * pj->per_node + 1, sizeof *j->gpus);
    if (!j->gpus)
        abort();
    for (uint32_t k = 0; k < pj->nodes; k++) {
        bool *row = &r->taken[(size_t)pj->where[k] * per];
        uint32_t *set = &j->gpus[(size_t)k * pj->per_node];
        if (gpuset_pick(r->c->node_topo, row, pj->per_node, set) != 0)
            abort(); /* the core counted them free */
        for (uint32_t g = 0; g < pj->per_node; g++)
            row[set[g]] = true;
    }
    if (pj->nodes == 1 && pj->per_node >= 2 && pj->per_node <= 64) {
        r->multi++;
        r->connected += gpuset_weakest(r->c->node_topo, j->gpus, pj->per_node) >= r->best[pj->per_node];
    }
}

static void sim__ended(sim_run *r, plan *p, sim_job *j)
{
    if (j->gpus) {
        for (uint32_t k = 0; k < j->pj.nodes; k++)
            for (uint32_t g = 0; g < j->pj.per_node; g++)
                r->taken[(size_t)j->pj.where[k] * r->c->per_node + j->gpus[(size_t)k * j->pj.per_node + g]] =
                    false;
        free(j->gpus);
        j->gpus = NULL;
    }
    plan_end(p, &j->pj);
}

/* The share of the free slots that sit on partly used nodes (a job that
 * needs a whole node cannot use them). */
static double sim__fragmentation(const plan *p)
{
    uint64_t free_all = 0, scattered = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        free_all += p->nodes[i].free;
        if (p->nodes[i].free < p->nodes[i].slots)
            scattered += p->nodes[i].free;
    }
    return free_all ? (double)scattered / (double)free_all : 0;
}

static int sim__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Replays jobs [first, first + n) of t on the cluster c, from an empty
 * cluster at the first one's submit time. */
static void sim_replay(const swf *t, size_t first, size_t n, const plan_policy *policy, const sim_cluster *c,
                       sim_metrics *m)
{
    uint32_t nodes = c->nodes, per_node = c->per_node;
    if (n == 0 || nodes == 0 || per_node == 0)
        abort(); /* main checks them */
    plan p;
    plan_init(&p, policy, nodes, per_node);
    sim_job *jobs = calloc(n, sizeof *jobs);
    sim_run run = {.heap = {.a = calloc(n, sizeof(sim_job *)), .n = 0}, .seq = 0, .c = c};
    if (!jobs || !run.heap.a)
        abort();
    if (c->node_topo) {
        run.taken = calloc((size_t)nodes * per_node, sizeof *run.taken);
        bool *none = calloc(per_node, sizeof *none);
        uint32_t set[64];
        if (!run.taken || !none)
            abort();
        for (uint32_t k = 2; k <= per_node && k <= 64; k++)
            run.best[k] =
                gpuset_pick(c->node_topo, none, k, set) == 0 ? gpuset_weakest(c->node_topo, set, k) : 0;
        free(none);
    }
    for (size_t i = 0; i < n; i++) {
        const swf_job *s = &t->jobs[first + i];
        sim_job *j = &jobs[i];
        j->t = s;
        j->pj.id = s->id;
        j->pj.submit = s->submit;
        j->pj.limit = s->request;
        /* ceil(procs / per node) nodes, never more than there are: whole
         * ones (SWF), or that many GPUs of shared ones (GPU traces). */
        uint32_t need = (s->procs + per_node - 1) / per_node;
        j->pj.nodes = need > nodes ? nodes : need ? need : 1;
        j->pj.per_node = c->whole_nodes ? per_node : (s->procs + j->pj.nodes - 1) / j->pj.nodes;
        if (j->pj.per_node > per_node)
            j->pj.per_node = per_node;
        j->pj.user = j;
    }
    int64_t now = jobs[0].pj.submit;
    size_t next = 0, started = 0;
    double frag_area = 0, frag_time = 0, frag = 0;
    plan_submit(&p, &jobs[next++].pj);
    while (started < n) {
        started += plan_pass(&p, now, sim__started, &run);
        if (started == n)
            break;
        if (!c->whole_nodes)
            frag = sim__fragmentation(&p);
        int64_t arrival = next < n ? jobs[next].pj.submit : INT64_MAX;
        int64_t end = run.heap.n ? run.heap.a[0]->pj.start + run.heap.a[0]->t->run : INT64_MAX;
        if (arrival == INT64_MAX && end == INT64_MAX)
            break; /* nothing can ever start what is left (cannot happen: jobs fit) */
        int64_t then = arrival <= end ? arrival : end;
        if (then > now) { /* time-weighted, while something waits or runs */
            frag_area += frag * (double)(then - now);
            frag_time += (double)(then - now);
        }
        if (arrival <= end) {
            now = arrival > now ? arrival : now;
            plan_submit(&p, &jobs[next++].pj);
        } else {
            now = end > now ? end : now;
            sim__ended(&run, &p, sim__heap_pop(&run.heap));
        }
    }
    while (run.heap.n) /* what still runs, for the GPU bookkeeping */
        sim__ended(&run, &p, sim__heap_pop(&run.heap));
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
        area += r * j->pj.nodes * j->pj.per_node;
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
    m->best_connected_share = c->node_topo && run.multi ? (double)run.connected / (double)run.multi : -1;
    m->fragmentation = c->whole_nodes ? -1 : (frag_time > 0 ? frag_area / frag_time : 0);
    free(run.taken);
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
    /* GPU placement figures: null where they do not apply (a processor
     * trace; no node topology given). */
    json_key(j, "best_connected_share");
    if (m->best_connected_share >= 0)
        json_double(j, m->best_connected_share);
    else
        json_null(j);
    json_key(j, "fragmentation");
    if (m->fragmentation >= 0)
        json_double(j, m->fragmentation);
    else
        json_null(j);
}

static void sim__usage(FILE *f)
{
    fprintf(f,
            "usage: jazari-sim --trace FILE.swf|FILE.csv [--policy NAME] [--windows rlscheduler] [--json]\n"
            "                  [--nodes N] [--procs-per-node P] [--vc NAME] [--gpus-per-node G]\n"
            "                  [--node-xml FILE]\n"
            "Replays a trace with the scheduler's own core, in simulated time.\n"
            "  --policy     jazari (ours, the default: aged smallest area first, EASY), fcfs,\n"
            "               fcfs-easy, sjf, sjf-easy\n"
            "  --windows    rlscheduler: the 10 windows of 1,024 jobs of RLScheduler's protocol\n"
            "  --nodes, --procs-per-node   the cluster (default: the trace's MaxNodes and\n"
            "               MaxProcs/MaxNodes)\n"
            "  A .csv is the Philly GPU trace: --vc picks its virtual cluster (default: the\n"
            "  busiest), --gpus-per-node G (8), --nodes (default: an 80%% offered load), and\n"
            "  --node-xml FILE (an hwloc XML) gives each node its GPU links, to measure\n"
            "  the share of multi-GPU jobs on their best-connected set.\n");
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
    const char *trace = NULL, *windows = NULL, *policy_name = "jazari", *vc = NULL, *node_xml = NULL;
    bool as_json = false;
    uint32_t nodes = 0, ppn = 0, gpn = 0;
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
        } else if (strcmp(a, "--gpus-per-node") == 0 && has) {
            if (sim__count(a, argv[++i], 64, &gpn) != 0)
                return 2;
        } else if (strcmp(a, "--vc") == 0 && has) {
            vc = argv[++i];
        } else if (strcmp(a, "--node-xml") == 0 && has) {
            node_xml = argv[++i];
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
    char err[512], vc_name[64] = "";
    size_t tlen = strlen(trace);
    bool gpu_trace = tlen > 4 && strcmp(trace + tlen - 4, ".csv") == 0;
    if (gpu_trace ? philly_load(trace, vc, &t, vc_name, sizeof vc_name, err, sizeof err) != 0
                  : swf_load(trace, &t, err, sizeof err) != 0) {
        fprintf(stderr, "jazari-sim: %s\n", err);
        return 2;
    }
    sim_cluster cluster = {.whole_nodes = !gpu_trace};
    topo *node_topo = NULL;
    if (node_xml) {
        topo_load_opts o = {.xml_path = node_xml, .name = NULL, .probe_gpus = false};
        if (topo_load(&o, &node_topo, err, sizeof err) != 0 || node_topo->n_gpus == 0 ||
            node_topo->n_gpus > 64) {
            fprintf(stderr, "jazari-sim: --node-xml: %s\n",
                    node_topo ? "a node of 1 to 64 GPUs is needed" : err);
            topo_free(node_topo);
            swf_free(&t);
            return 2;
        }
        if (!gpn)
            gpn = (uint32_t)node_topo->n_gpus;
        if (gpn != node_topo->n_gpus) {
            fprintf(stderr, "jazari-sim: --gpus-per-node %u but %s has %zu GPUs\n", gpn, node_xml,
                    node_topo->n_gpus);
            topo_free(node_topo);
            swf_free(&t);
            return 2;
        }
        cluster.node_topo = node_topo;
    }
    if (gpu_trace) {
        ppn = gpn ? gpn : 8;
        if (!nodes) {
            /* As many nodes as an 80% offered load needs: the GPU time of the
             * trace over its span. */
            double gpu_s = 0;
            for (size_t i = 0; i < t.n; i++)
                gpu_s += (double)t.jobs[i].run * t.jobs[i].procs;
            double span = (double)(t.jobs[t.n - 1].submit - t.jobs[0].submit) + 1;
            nodes = (uint32_t)(gpu_s / (span * ppn * 0.8)) + 1;
            uint32_t most = 0;
            for (size_t i = 0; i < t.n; i++)
                most = t.jobs[i].procs > most ? t.jobs[i].procs : most;
            if (nodes < (most + ppn - 1) / ppn)
                nodes = (most + ppn - 1) / ppn;
        }
    } else {
        if (!nodes)
            nodes = t.max_nodes ? t.max_nodes : t.max_procs;
        if (!ppn)
            ppn = t.max_nodes && t.max_procs >= t.max_nodes ? t.max_procs / t.max_nodes : 1;
    }
    if (!nodes) {
        fprintf(stderr, "jazari-sim: %s does not say its size (MaxNodes): give --nodes\n", trace);
        topo_free(node_topo);
        swf_free(&t);
        return 2;
    }
    if (node_topo && ppn != node_topo->n_gpus) {
        fprintf(stderr, "jazari-sim: --node-xml is for GPU traces (.csv)\n");
        topo_free(node_topo);
        swf_free(&t);
        return 2;
    }
    cluster.nodes = nodes;
    cluster.per_node = ppn;
    size_t nwin = windows ? sizeof sim_rl_starts / sizeof sim_rl_starts[0] : 1;
    sim_metrics per[sizeof sim_rl_starts / sizeof sim_rl_starts[0]], avg;
    memset(&avg, 0, sizeof avg);
    for (size_t w = 0; w < nwin; w++) {
        size_t first = windows ? sim_rl_starts[w] : 0, n = windows ? SIM_RL_WINDOW : t.n;
        if (first + n > t.n) {
            fprintf(stderr, "jazari-sim: %s has %zu jobs: window %zu needs jobs %zu to %zu\n", trace, t.n, w,
                    first, first + n - 1);
            topo_free(node_topo);
            swf_free(&t);
            return 2;
        }
        sim_replay(&t, first, n, &policy, &cluster, &per[w]);
        avg.jobs += per[w].jobs;
        avg.utilization += per[w].utilization / (double)nwin;
        avg.mean_wait += per[w].mean_wait / (double)nwin;
        avg.mean_bsld += per[w].mean_bsld / (double)nwin;
        avg.p95_bsld += per[w].p95_bsld / (double)nwin;
        avg.makespan += per[w].makespan / (double)nwin;
        avg.mean_jct += per[w].mean_jct / (double)nwin;
        avg.best_connected_share = per[w].best_connected_share; /* GPU traces: one run */
        avg.fragmentation = per[w].fragmentation;
    }
    buf out = BUF_INIT;
    if (as_json) {
        json j;
        json_init(&j, &out, true);
        json_obj_begin(&j);
        json_kv_str(&j, "trace", trace);
        json_kv_str(&j, "policy", plan_policy_name(&policy));
        json_kv_uint(&j, "nodes", nodes);
        json_kv_uint(&j, gpu_trace ? "gpus_per_node" : "procs_per_node", ppn);
        if (gpu_trace)
            json_kv_str(&j, "virtual_cluster", vc_name);
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
        if (gpu_trace)
            buf_printf(&out,
                       "virtual cluster        %s\nfragmentation          %.1f%% of free GPUs on partly used "
                       "nodes\n",
                       vc_name, 100 * avg.fragmentation);
        if (avg.best_connected_share >= 0)
            buf_printf(&out, "best-connected share   %.1f%% of multi-GPU jobs on their best-connected set\n",
                       100 * avg.best_connected_share);
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    topo_free(node_topo);
    swf_free(&t);
    return fflush(stdout) == 0 ? 0 : 1;
}

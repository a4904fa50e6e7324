/* metrics.c - GET /metrics: the daemon's state in the Prometheus text
 * format (common/prom.h writes it). Every daemon says it is up, its
 * release, its process' CPU and memory and the job parts running on its
 * node; a running controller adds the network as its replicated state
 * holds it (nodes, GPUs and jobs by state), its Raft indexes, and the
 * scheduler's pass times and counts of what it applied.
 *
 * A scrape reads memory only (one walk of the nodes and of the jobs), on
 * the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../common/prom.h"
#include "../common/xmem.h"
#include "http/http.h"
#include "jzd.h"

/* The scheduler pass's buckets, in seconds: a pass of a small queue takes
 * well under a millisecond, a national network's tens to hundreds. */
static const double metrics__pass_bounds[METRICS_PASS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

void metrics_pass_observe(jzd_metrics *m, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < METRICS_PASS_BUCKETS && s > metrics__pass_bounds[i])
        i++;
    m->pass_counts[i]++;
    m->pass_sum += s;
}

void metrics_applied(jzd_metrics *m, const fsm_result *res)
{
    /* res->started counts the steps an entry launched too: a step's
     * command says so in res->steps. */
    uint32_t steps = 0;
    for (uint32_t i = 0; i < res->n_cmds && i < CODEC_ENTRY_MAX_CMDS; i++)
        steps += res->steps[i] != 0;
    m->submitted += res->submitted;
    m->started += res->started > steps ? res->started - steps : 0;
}

/* The node states every scrape lists per site, with 0 where none is. */
static const char *const metrics__node_states[] = {"up", "draining", "drained", "down"};
#define METRICS__N_STATES (sizeof metrics__node_states / sizeof metrics__node_states[0])

/* The one place that says which state a node is in. */
static const char *metrics__node_state(const fsm *f, const fsm_node *n)
{
    return fsm_node_state(f, n);
}

/* Which of the states (and beyond them, which other state) a name is:
 * an index into the states, with others appended to extra (at most
 * METRICS__EXTRA; past that, "other"). */
#define METRICS__EXTRA 8
typedef struct metrics__states {
    const char *name[METRICS__N_STATES + METRICS__EXTRA + 1];
    size_t n;
} metrics__states;

static size_t metrics__state_index(metrics__states *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->name[i], name) == 0)
            return i;
    if (st->n == METRICS__N_STATES + METRICS__EXTRA) {
        name = "other";
        for (size_t i = METRICS__N_STATES; i < st->n; i++)
            if (strcmp(st->name[i], name) == 0)
                return i;
    }
    st->name[st->n] = name;
    return st->n++;
}

/* jazari_nodes{state,site}: every site, every state (0 included). */
static void metrics__nodes(const fsm *f, buf *out)
{
    metrics__states st = {.n = METRICS__N_STATES};
    for (size_t i = 0; i < METRICS__N_STATES; i++)
        st.name[i] = metrics__node_states[i];
    /* Sites in the order first seen, each with its counts per state. */
    strmap sites;
    strmap_init(&sites);
    const char **site_names = xcalloc(f->n_nodes + 1, sizeof *site_names);
    uint64_t(*counts)[METRICS__N_STATES + METRICS__EXTRA + 1] = xcalloc(f->n_nodes + 1, sizeof *counts);
    size_t n_sites = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *n = &f->nodes[i];
        const char *site = n->site ? n->site : "";
        size_t k;
        if (!strmap_get(&sites, site, &k)) {
            k = n_sites++;
            site_names[k] = site;
            strmap_put(&sites, site, k);
        }
        counts[k][metrics__state_index(&st, metrics__node_state(f, n))]++;
    }
    prom_family(out, "jazari_nodes", "gauge", "Nodes of the network by state and site.");
    for (size_t k = 0; k < n_sites; k++)
        for (size_t s = 0; s < st.n; s++) {
            const char *labels[] = {"state", st.name[s], "site", site_names[k], NULL};
            prom_u64(out, "jazari_nodes", labels, counts[k][s]);
        }
    strmap_free(&sites);
    free(site_names);
    free(counts);
}

/* jazari_gpus{state}: used (held by running jobs), free (the rest of the
 * GPUs of nodes up), unavailable (the rest, on nodes not up). */
static void metrics__gpus_by_state(const fsm *f, buf *out)
{
    uint64_t *used = xcalloc(f->n_nodes + 1, sizeof *used);
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            const fsm_node *n = j->allocs[a].node ? fsm_node_get(f, j->allocs[a].node) : NULL;
            if (n)
                used[n - f->nodes] += j->allocs[a].n_gpus;
        }
    }
    uint64_t n_used = 0, n_free = 0, n_off = 0, n_drained = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *n = &f->nodes[i];
        uint64_t total = n->topo ? n->topo->n_gpus : 0, u = used[i] < total ? used[i] : total;
        n_used += u;
        if (strcmp(n->state, "up") != 0) {
            n_off += total - u;
        } else if (fsm_drain_get(n, -1)) {
            n_drained += total - u;
        } else {
            uint64_t dr = 0; /* drained GPUs no job holds */
            for (uint32_t k = 0; k < n->n_drains; k++)
                dr += n->drains[k].gpu >= 0 && !fsm_node_busy(f, n->name, n->drains[k].gpu);
            dr = dr < total - u ? dr : total - u;
            n_drained += dr;
            n_free += total - u - dr;
        }
    }
    free(used);
    prom_family(
        out, "jazari_gpus", "gauge",
        "GPUs of the network: used by running jobs, drained (out of service, idle), free on nodes up, "
        "unavailable on nodes down.");
    const char *l_used[] = {"state", "used", NULL}, *l_free[] = {"state", "free", NULL},
               *l_off[] = {"state", "unavailable", NULL}, *l_drained[] = {"state", "drained", NULL};
    prom_u64(out, "jazari_gpus", l_free, n_free);
    prom_u64(out, "jazari_gpus", l_used, n_used);
    prom_u64(out, "jazari_gpus", l_drained, n_drained);
    prom_u64(out, "jazari_gpus", l_off, n_off);
}

/* jazari_jobs{state}: every state, lower case (pending, running, ...). */
static void metrics__jobs(const fsm *f, buf *out)
{
    enum { N = JAZARI__JOB_STATE__JOB_PREEMPTED + 1 };
    uint64_t counts[N] = {0};
    for (uint64_t k = 0; k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (j && (unsigned)j->state < N)
            counts[j->state]++;
    }
    prom_family(out, "jazari_jobs", "gauge", "Jobs the replicated state holds, by state.");
    for (int s = 0; s < N; s++) {
        char name[32];
        snprintf(name, sizeof name, "%s", fsm_state_name((Jazari__JobState)s));
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        const char *labels[] = {"state", name, NULL};
        prom_u64(out, "jazari_jobs", labels, counts[s]);
    }
}

static void metrics__controller(jzd *d, buf *out)
{
    const fsm *f = &d->ctl.state;
    struct raft *r = &d->ctl.raft;
    metrics__nodes(f, out);
    metrics__gpus_by_state(f, out);
    metrics__jobs(f, out);
    prom_family(out, "jazari_raft_term", "gauge", "The Raft term this controller is in.");
    prom_u64(out, "jazari_raft_term", NULL, r->current_term);
    prom_family(out, "jazari_raft_commit_index", "gauge",
                "The last log index this controller knows committed.");
    prom_u64(out, "jazari_raft_commit_index", NULL, r->commit_index);
    prom_family(out, "jazari_raft_applied_index", "gauge",
                "The last log index applied to this controller's state.");
    prom_u64(out, "jazari_raft_applied_index", NULL, raft_last_applied(r));
    prom_family(out, "jazari_raft_leader", "gauge", "1 if this controller leads the network, else 0.");
    prom_u64(out, "jazari_raft_leader", NULL, ctl_is_leader(&d->ctl) ? 1 : 0);
    const jzd_metrics *m = &d->metrics;
    prom_family(out, "jazari_scheduler_pass_seconds", "histogram",
                "How long the leader's scheduling passes took (on this controller, while it led).");
    prom_histogram(out, "jazari_scheduler_pass_seconds", metrics__pass_bounds, m->pass_counts,
                   METRICS_PASS_BUCKETS, m->pass_sum);
    prom_family(
        out, "jazari_jobs_submitted_total", "counter",
        "Jobs submitted, in the entries this controller applied since it started (its log replay included).");
    prom_u64(out, "jazari_jobs_submitted_total", NULL, m->submitted);
    prom_family(
        out, "jazari_jobs_started_total", "counter",
        "Job runs started (requeued ones again), in the entries this controller applied since it started.");
    prom_u64(out, "jazari_jobs_started_total", NULL, m->started);
}

/* process_*: from getrusage and /proc/self/statm. */
static void metrics__process(jzd *d, buf *out)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        /* Summed in microseconds, so that the text is the time's own digits. */
        uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
                      (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
        double cpu = (double)us / 1e6;
        prom_family(out, "process_cpu_seconds_total", "counter",
                    "User and system CPU time spent in seconds.");
        prom_f64(out, "process_cpu_seconds_total", NULL, cpu);
    }
    /* statm: size, then resident, in pages. */
    FILE *f = fopen("/proc/self/statm", "r");
    char line[128];
    if (f && fgets(line, sizeof line, f)) {
        char *end;
        (void)strtoull(line, &end, 10);
        unsigned long long resident = strtoull(end, NULL, 10);
        long page = sysconf(_SC_PAGESIZE);
        prom_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        prom_u64(out, "process_resident_memory_bytes", NULL,
                 resident * (unsigned long long)(page > 0 ? page : 4096));
    }
    if (f)
        fclose(f);
    prom_family(out, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.");
    prom_u64(out, "process_start_time_seconds", NULL, d->metrics.start_s);
}

void metrics_render(jzd *d, buf *out)
{
    prom_family(out, "jazari_up", "gauge", "1: this daemon serves.");
    prom_u64(out, "jazari_up", NULL, 1);
    const char *build[] = {"version", JZ_VERSION, "revision", JZ_GIT_REV, NULL};
    prom_family(out, "jazari_build_info", "gauge", "The release of this daemon (always 1).");
    prom_u64(out, "jazari_build_info", build, 1);
    metrics__process(d, out);

    uint64_t parts = 0;
    for (const exec_part *p = d->ex.parts; p; p = p->next)
        parts += p->running;
    const char *node[] = {"node", d->cfg->name, NULL};
    prom_family(out, "jazari_job_parts_running", "gauge",
                "Parts of jobs (and their steps) running on this node.");
    prom_u64(out, "jazari_job_parts_running", node, parts);

    if (d->http) {
        http_stats hs;
        http_get_stats(d->http, &hs);
        prom_family(out, "jazari_http_requests_total", "counter", "HTTP requests answered by a page.");
        prom_u64(out, "jazari_http_requests_total", NULL, hs.requests);
        prom_family(out, "jazari_http_rejected_total", "counter",
                    "HTTP requests refused: unknown path, method or a head too large.");
        prom_u64(out, "jazari_http_rejected_total", NULL, hs.rejected);
        prom_family(out, "jazari_http_connections_refused_total", "counter",
                    "HTTP connections closed for too many open: the oldest, to make room.");
        prom_u64(out, "jazari_http_connections_refused_total", NULL, hs.refused);
    }
    if (d->ctl_running)
        metrics__controller(d, out);
    ghealth_metrics(d, out); /* this node's GPUs (jazari_gpu_*) */
}

int metrics_page(void *arg, const http_request *rq, http_response *rs)
{
    (void)rq;
    metrics_render(arg, &rs->body);
    rs->content_type = PROM_CONTENT_TYPE;
    return 200;
}

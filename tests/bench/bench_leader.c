/* bench_leader.c - the leader's whole pass as it runs in jazarid: from the
 * replicated state (fsm) of 10,000 nodes of 8 GPUs (with their CPUs),
 * most of them busy, and 100,000 pending jobs of 40 users in 8 projects,
 * the oldest a gang of 2,000 nodes that cannot start (so the whole queue
 * is walked for backfilling), to its decisions: multifactor
 * priorities (the fair-share tree of the usage and of every job's user),
 * the order, placement, GPU sets, EASY backfilling, preemption. Its time
 * is given against the time to merely sort those jobs by a key in the
 * same run, as bench_sched does for the core alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/xmem.h"
#include "../../daemon/jzd.h"
#include "../../daemon/raft/fsm.h"
#include "../../daemon/sched/sched.h"
#include "../../lib/hw/topo_pb.h"

#define NODES 10000
#define JOBS 100000
#define BATCH 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void apply(fsm *f, int64_t t, Jazari__Command **cs, size_t n)
{
    buf b = BUF_INIT;
    codec_entry_encode(CODEC_FORMAT, t, cs, n, &b);
    char err[200];
    if (fsm_apply(f, b.data, b.len, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "bench-leader: %s\n", err);
        exit(1);
    }
    buf_free(&b);
}

static void nodes_up(fsm *f)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    tp.n_gpus = 8;
    /* Two packages of 32 CPUs, as real nodes report: the leader counts CPUs. */
    topo_package pk[2] = {{.os_index = 0, .cores = 32, .pus = 32, .cpuset = "0-31"},
                          {.os_index = 1, .cores = 32, .pus = 32, .cpuset = "32-63"}};
    tp.packages = pk;
    tp.n_packages = 2;
    tp.cores = tp.pus = 64;
    tp.gpus = calloc(8, sizeof *tp.gpus);
    tp.links = calloc(64, sizeof *tp.links);
    for (unsigned i = 0; i < 8; i++) {
        tp.gpus[i].index = i;
        tp.gpus[i].numa = -1;
        tp.gpus[i].model = "H100";
    }
    for (unsigned a = 0; a < 8; a++)
        for (unsigned b = 0; b < 8; b++)
            tp.links[a * 8 + b].kind = a == b ? TOPO_LINK_X : TOPO_LINK_NV;
    Jazari__Topology *pb = topo_to_pb(&tp);
    for (int i = 0; i < NODES; i++) {
        char name[32], group[16];
        snprintf(name, sizeof name, "n%05d", i);
        snprintf(group, sizeof group, "sw%d", i / 32);
        Jazari__NodeRecord r = JAZARI__NODE_RECORD__INIT;
        r.name = name;
        r.site = i < NODES / 2 ? "rabat" : "benguerir";
        r.group = group;
        r.address = "10.0.0.1:7070";
        r.topology = pb;
        Jazari__NodeUpCmd u = JAZARI__NODE_UP_CMD__INIT;
        u.node = &r;
        Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
        c.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
        c.node_up = &u;
        apply(f, 1000, &cp, 1);
    }
    topo_pb_free(pb);
    free(tp.gpus);
    free(tp.links);
}

static uint32_t gpus_of(unsigned r)
{
    static const uint32_t sizes[] = {1, 1, 1, 1, 2, 2, 4, 8};
    return sizes[r % 8];
}

/* n jobs submitted at t, their specs varied like a real queue's. */
static void submit(fsm *f, int64_t t, size_t n)
{
    static char users[40][16], accounts[8][32];
    for (int i = 0; i < 40; i++)
        snprintf(users[i], sizeof users[i], "user%02d", i);
    for (int i = 0; i < 8; i++)
        snprintf(accounts[i], sizeof accounts[i], "inst%d/proj%d", i % 3, i);
    char *argv[] = {"python3", "train.py", "--config", "configs/run.yaml"};
    Jazari__JobSpec *specs = calloc(BATCH, sizeof *specs);
    Jazari__Job *jobs = calloc(BATCH, sizeof *jobs);
    Jazari__Job **ptrs = calloc(BATCH, sizeof *ptrs);
    for (size_t done = 0; done < n; done += BATCH) {
        size_t k = n - done < BATCH ? n - done : BATCH;
        for (size_t i = 0; i < k; i++) {
            unsigned r = (unsigned)rand();
            jazari__job_spec__init(&specs[i]);
            specs[i].argv = argv;
            specs[i].n_argv = 4;
            specs[i].gpus_per_node = gpus_of(r);
            specs[i].nodes = r % 50 == 0 ? 2 : 1;
            specs[i].time_limit_s = 600 + (unsigned)rand() % (24 * 3600);
            specs[i].account = accounts[r % 8];
            specs[i].workdir = "/home/user/project";
            jazari__job__init(&jobs[i]);
            jobs[i].spec = &specs[i];
            jobs[i].user = users[(r >> 8) % 40];
            jobs[i].uid = 1000 + (r >> 8) % 40;
            ptrs[i] = &jobs[i];
        }
        Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
        sc.jobs = ptrs;
        sc.n_jobs = k;
        Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
        c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
        c.submit = &sc;
        apply(f, t, &cp, 1);
    }
    free(specs);
    free(jobs);
    free(ptrs);
}

static void submit_wide(fsm *f, int64_t t, uint32_t nodes)
{
    char *argv[] = {"python3", "pretrain.py"};
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 2;
    spec.nodes = nodes;
    spec.gpus_per_node = 8;
    spec.time_limit_s = 7 * 86400;
    Jazari__Job job = JAZARI__JOB__INIT, *ptr = &job;
    job.spec = &spec;
    job.user = "user00";
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = &ptr;
    sc.n_jobs = 1;
    Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    apply(f, t, &cp, 1);
}

/* Fills the nodes towards 95% with running single-node jobs, in submit
 * order, as StartCmds (a job that does not fit the node's rest moves on to
 * the next node). Returns how many; their GPUs into *busy. */
static size_t fill(fsm *f, uint32_t *busy)
{
    size_t started = 0;
    uint32_t total = NODES * 8, used = 0;
    uint64_t id = f->next_job_id;
    submit(f, 2000, (size_t)total); /* more than enough; the rest stay pending */
    for (int n = 0; n < NODES && used < total * 95 / 100; n++) {
        uint32_t next = 0;
        while (used < total * 95 / 100) {
            const fsm_job *j = fsm_job_get(f, id);
            if (!j || j->nodes != 1 || next + j->gpus_per_node > 8)
                break;
            uint32_t gpus[8];
            for (uint32_t g = 0; g < j->gpus_per_node; g++)
                gpus[g] = next + g;
            char name[32];
            snprintf(name, sizeof name, "n%05d", n);
            Jazari__JobAlloc a = JAZARI__JOB_ALLOC__INIT, *ap = &a;
            a.node = name;
            a.gpus = gpus;
            a.n_gpus = j->gpus_per_node;
            Jazari__StartCmd sc = JAZARI__START_CMD__INIT;
            sc.id = id;
            sc.allocs = &ap;
            sc.n_allocs = 1;
            Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
            c.cmd_case = JAZARI__COMMAND__CMD_START;
            c.start = &sc;
            apply(f, 3000 + (int64_t)(id % 3600) * 1000, &cp, 1);
            next += j->gpus_per_node;
            used += j->gpus_per_node;
            started++;
            id++;
        }
        while (fsm_job_get(f, id) && fsm_job_get(f, id)->nodes != 1)
            id++; /* a gang: it waits with the others */
    }
    *busy = used;
    return started;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int main(void)
{
    xmem_keep_heap(); /* as jazarid runs */
    srand(7);
    fsm f;
    fsm_init(&f);
    nodes_up(&f);
    /* The oldest (and largest) pending job, a gang of 2,000 whole nodes:
     * it cannot start, so the pass backfills the whole queue behind it. */
    submit_wide(&f, 1500, 2000);
    uint32_t busy;
    size_t running = fill(&f, &busy);
    uint64_t pending_before = f.n_ready;
    if (f.n_ready < JOBS)
        submit(&f, 4000000, JOBS - (size_t)f.n_ready);
    /* A week of usage for every user, as the FSM keeps it. */
    pol p;
    pol_init(&p);
    int64_t now = 5000000;
    const char *names[] = {"multifactor", "fcfs-easy"};
    for (int k = 0; k < 2; k++) {
        sched_state st;
        memset(&st, 0, sizeof st);
        plan_policy_parse(names[k], &st.policy);
        st.pol = &p;
        double best = 1e9;
        size_t starts = 0, preempts = 0;
        for (int rep = 0; rep < 3; rep++) {
            sched_plan d;
            double t = now_s();
            sched_pass(&f, &st, now, 256, &d);
            t = now_s() - t;
            best = t < best ? t : best;
            starts = d.n_starts;
            preempts = d.n_preempts;
            sched_plan_free(&d);
        }
        /* The reference: sort as many keys as there are pending jobs. */
        uint32_t *keys = malloc(f.n_ready * sizeof *keys);
        for (uint64_t i = 0; i < f.n_ready; i++)
            keys[i] = (uint32_t)rand();
        double s = now_s();
        qsort(keys, f.n_ready, sizeof *keys, cmp_u32);
        s = now_s() - s;
        free(keys);
        printf("leader pass (%s, from the replicated state): %llu pending, %zu running on %d nodes x 8 GPUs "
               "(%.0f%% busy): %.1f ms (%zu starts, %zu preemptions) = %.1fx sorting them (%.1f ms)\n",
               names[k], (unsigned long long)f.n_ready, running, NODES, 100.0 * busy / (NODES * 8),
               best * 1e3, starts, preempts, best / s, s * 1e3);
    }
    /* GET /metrics on a controller of that network: the page as the
     * listener serves it, from the same state (read only: a shallow copy),
     * against sorting as many keys as there are jobs. */
    {
        jzd *d = calloc(1, sizeof *d);
        config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.name = "bench";
        d->cfg = &cfg;
        d->ctl.state = f;
        d->ctl_running = true;
        double best = 1e9;
        size_t bytes = 0;
        for (int rep = 0; rep < 5; rep++) {
            buf out = BUF_INIT;
            double t = now_s();
            metrics_render(d, &out);
            t = now_s() - t;
            best = t < best ? t : best;
            bytes = out.len;
            buf_free(&out);
        }
        /* The same nodes as jz nodes --json asks for them: the reply the
         * controller builds and encodes (the client's JSON on top is the
         * client's time, not the controller's). */
        double nbest = 1e9;
        size_t nbytes = 0;
        for (int rep = 0; rep < 5; rep++) {
            buf out = BUF_INIT;
            double t = now_s();
            nbytes = nodes_encode(d, &out);
            t = now_s() - t;
            nbest = t < nbest ? t : nbest;
            buf_free(&out);
        }
        uint64_t n = f.n_jobs;
        uint32_t *keys = malloc(n * sizeof *keys);
        for (uint64_t i = 0; i < n; i++)
            keys[i] = (uint32_t)rand();
        double s = now_s();
        qsort(keys, n, sizeof *keys, cmp_u32);
        s = now_s() - s;
        free(keys);
        printf("metrics scrape (GET /metrics on the controller): %d nodes, %llu jobs: %.2f ms for %zu bytes "
               "= %.1fx sorting the jobs (%.1f ms)\n",
               NODES, (unsigned long long)n, best * 1e3, bytes, best / s, s * 1e3);
        printf("metrics scrape against jz nodes --json's reply on the controller (%d nodes, %zu bytes): %.2f ms "
               "vs %.2f ms = %.2fx\n",
               NODES, nbytes, best * 1e3, nbest * 1e3, best / nbest);
        free(d);
    }
    (void)pending_before;
    pol_free(&p);
    fsm_free(&f);
    return 0;
}

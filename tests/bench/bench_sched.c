/* bench_sched.c - one full scheduling pass (order, placement, EASY
 * backfilling) of the scheduler's core over 100,000 pending jobs on
 * 10,000 nodes of 8 GPUs, most of them busy, against the time to merely
 * sort those jobs by the same key (qsort) in the same run. Also the memory
 * the core needs per job and per node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/sched/plan.h"

#define NODES 10000
#define JOBS 100000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t gpus_of(unsigned r)
{
    static const uint32_t sizes[] = {1, 1, 1, 1, 2, 2, 4, 8};
    return sizes[r % 8];
}

static int cmp_submit(const void *a, const void *b)
{
    const plan_job *x = *(plan_job *const *)a, *y = *(plan_job *const *)b;
    if (x->submit != y->submit)
        return x->submit < y->submit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static double one(const char *policy_name, double *sort_s, size_t *started, size_t *backfilled)
{
    plan_policy policy = {0};
    plan_policy_parse(policy_name, &policy);
    plan p;
    plan_init(&p, &policy, NODES, 8);
    srand(42);
    /* Busy nodes: single-node jobs until 95% of the GPUs are taken. */
    size_t cap = NODES * 8, used = 0, nr = 0;
    plan_job *running = calloc(cap, sizeof *running);
    for (size_t n = 0; n < NODES && used < cap * 95 / 100; n++) {
        uint32_t left = 8;
        while (left > 0 && used < cap * 95 / 100) {
            uint32_t g = gpus_of((unsigned)rand());
            if (g > left)
                g = left;
            plan_job *j = &running[nr++];
            j->id = nr;
            j->limit = 3600 + rand() % (47 * 3600);
            j->start = 86400 - rand() % j->limit; /* still within its limit at the pass */
            j->submit = j->start;
            j->nodes = 1;
            j->per_node = g;
            j->where = calloc(1, sizeof(uint32_t));
            j->where[0] = (uint32_t)n;
            plan_add_running(&p, j);
            left -= g;
            used += g;
        }
    }
    plan_job *jobs = calloc(JOBS, sizeof *jobs);
    plan_job **ptrs = calloc(JOBS, sizeof *ptrs);
    for (size_t i = 0; i < JOBS; i++) {
        plan_job *j = &jobs[i];
        j->id = nr + 1 + i;
        j->submit = rand() % 86400;
        j->limit = 60 + rand() % (48 * 3600);
        bool multi = rand() % 10 == 0;
        j->nodes = multi ? 2 + (uint32_t)(rand() % 15) : 1;
        j->per_node = multi ? 8 : gpus_of((unsigned)rand());
        plan_submit(&p, j);
        ptrs[i] = j;
    }
    double t = now_s();
    qsort(ptrs, JOBS, sizeof *ptrs, cmp_submit);
    *sort_s = now_s() - t;
    t = now_s();
    *started = plan_pass(&p, 86400, NULL, NULL);
    double pass = now_s() - t;
    *backfilled = p.backfilled;
    if (getenv("BENCH_DEBUG")) {
        size_t free_gpus = 0;
        for (size_t i = 0; i < NODES; i++)
            free_gpus += p.nodes[i].free;
        fprintf(stderr, "free GPUs after the pass %zu, head %s needs %u x %u, shadow in %lld s\n", free_gpus,
                p.head ? "yes" : "no", p.head ? p.head->nodes : 0, p.head ? p.head->per_node : 0,
                (long long)(p.shadow - 86400));
    }
    plan_free(&p);
    free(jobs);
    free(ptrs);
    free(running);
    return pass;
}

int main(void)
{
    const char *policies[] = {"fcfs-easy", "jazari"};
    for (size_t i = 0; i < 2; i++) {
        double sort_s, best = 1e9, best_sort = 1e9;
        size_t started = 0, backfilled = 0;
        for (int r = 0; r < 3; r++) {
            double pass = one(policies[i], &sort_s, &started, &backfilled);
            best = pass < best ? pass : best;
            best_sort = sort_s < best_sort ? sort_s : best_sort;
        }
        printf("scheduler pass (%s), %d pending jobs on %d nodes x 8 GPUs (95%% busy): %.1f ms, %zu started "
               "(%zu backfilled); %.1fx the time to sort the jobs (%.1f ms)\n",
               policies[i], JOBS, NODES, best * 1e3, started, backfilled, best / best_sort, best_sort * 1e3);
    }
    printf(
        "scheduler memory: %zu bytes per job, %zu bytes per node (core structures, plus 4 bytes per node a "
        "running job spans)\n",
        sizeof(plan_job) + sizeof(plan_job *), sizeof(plan_node));
    return 0;
}

/* test_plan.c - the scheduler's core: order, the sticky head, EASY's
 * guarantee, best fit. */
#include <stdlib.h>

#include "../../daemon/sched/plan.h"
#include "test.h"

static plan_job job(uint64_t id, int64_t submit, int64_t limit, uint32_t nodes, uint32_t per_node)
{
    plan_job j;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.submit = submit;
    j.limit = limit;
    j.nodes = nodes;
    j.per_node = per_node;
    j.start = -1;
    return j;
}

static void count_started(void *arg, plan_job *j)
{
    (void)j;
    (*(int *)arg)++;
}

TEST(plan_fcfs_head_blocks_and_easy_backfills_only_before_its_reservation)
{
    plan_policy fcfs = {PLAN_FCFS, false, false}, easy = {PLAN_FCFS, true, false};
    for (int pass = 0; pass < 2; pass++) {
        plan p;
        plan_init(&p, pass ? &easy : &fcfs, 4, 1);
        plan_job a = job(1, 0, 100, 3, 1), b = job(2, 1, 50, 4, 1), c = job(3, 2, 99, 1, 1),
                 d = job(4, 3, 101, 1, 1);
        plan_submit(&p, &a);
        int n = 0;
        CHECK(plan_pass(&p, 0, count_started, &n) == 1 && a.start == 0);
        plan_submit(&p, &b);
        plan_submit(&p, &c);
        plan_submit(&p, &d);
        /* b waits for a's end (100). Even with EASY, c (3 + 99 = 102) and
         * d (104) would end after that: nothing starts. */
        CHECK(plan_pass(&p, 3, count_started, &n) == 0);
        CHECK(p.head == &b && p.shadow == 100);
        CHECK(c.start == -1 && d.start == -1 && n == 1);
        plan_end(&p, &a);
        CHECK(plan_pass(&p, 100, count_started, &n) == 1 && b.start == 100);
        plan_end(&p, &b);
        CHECK(plan_pass(&p, 150, count_started, &n) == 2);
        plan_end(&p, &c);
        plan_end(&p, &d);
        plan_free(&p);
    }
}

TEST(plan_easy_starts_short_jobs_in_the_hole)
{
    plan_policy easy = {PLAN_FCFS, true, false};
    plan p;
    plan_init(&p, &easy, 4, 1);
    plan_job a = job(1, 0, 100, 3, 1), b = job(2, 1, 50, 4, 1), c = job(3, 2, 90, 1, 1),
             e = job(5, 2, 10, 1, 1);
    plan_submit(&p, &a);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1);
    plan_submit(&p, &b);
    plan_submit(&p, &c);
    plan_submit(&p, &e);
    CHECK(plan_pass(&p, 5, NULL, NULL) == 1); /* c: 5 + 90 < 100, takes the free node */
    CHECK(c.start == 5 && e.start == -1 && b.start == -1);
    CHECK(p.backfilled == 1);
    plan_end(&p, &a);
    plan_end(&p, &c);
    CHECK(plan_pass(&p, 100, NULL, NULL) == 1 && b.start == 100); /* the head, on time */
    plan_end(&p, &b);
    CHECK(plan_pass(&p, 150, NULL, NULL) == 1 && e.start == 150);
    plan_end(&p, &e);
    plan_free(&p);
}

TEST(plan_the_reserved_head_stays_the_head)
{
    /* SJF: once the long head waits with a reservation, a shorter arrival
     * does not push it back (it would starve otherwise). */
    plan_policy sjf = {PLAN_SJF, false, false};
    plan p;
    plan_init(&p, &sjf, 2, 1);
    plan_job a = job(1, 0, 100, 2, 1), big = job(2, 1, 500, 2, 1), small = job(3, 2, 5, 1, 1);
    plan_submit(&p, &a);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1);
    plan_submit(&p, &big);
    CHECK(plan_pass(&p, 1, NULL, NULL) == 0 && p.head == &big);
    plan_submit(&p, &small);
    CHECK(plan_pass(&p, 2, NULL, NULL) == 0 && p.head == &big);
    plan_end(&p, &a);
    CHECK(plan_pass(&p, 100, NULL, NULL) == 1 && big.start == 100 && small.start == -1);
    plan_end(&p, &big);
    CHECK(plan_pass(&p, 600, NULL, NULL) == 1 && small.start == 600);
    plan_end(&p, &small);
    plan_free(&p);
}

TEST(plan_best_fit_keeps_empty_nodes_whole)
{
    plan_policy fcfs = {PLAN_FCFS, false, false};
    plan p;
    plan_init(&p, &fcfs, 3, 8); /* three 8-GPU nodes */
    plan_job six = job(1, 0, 10, 1, 6), one = job(2, 1, 10, 1, 1), eight = job(3, 2, 10, 1, 8);
    plan_submit(&p, &six);
    plan_submit(&p, &one);
    plan_submit(&p, &eight);
    CHECK(plan_pass(&p, 2, NULL, NULL) == 3);
    CHECK(one.where[0] == six.where[0]); /* onto the busy node, not an empty one */
    CHECK(eight.where[0] != six.where[0]);
    CHECK(!plan_feasible(&p, &(plan_job){.nodes = 4, .per_node = 1}));
    plan_end(&p, &six);
    plan_end(&p, &one);
    plan_end(&p, &eight);
    plan_free(&p);
}

/* EASY's promise on random workloads with exact estimates: a head starts
 * no later than the reservation it got when it first had to wait. */
TEST(plan_easy_never_delays_the_head)
{
    plan_policy easy = {PLAN_FCFS, true, false};
    srand(7);
    for (int round = 0; round < 20; round++) {
        enum { N = 200 };
        plan_job jobs[N];
        int64_t promised[N];
        for (int i = 0; i < N; i++) {
            jobs[i] =
                job((uint64_t)i + 1, i * (rand() % 20), 1 + rand() % 300, 1 + (uint32_t)(rand() % 16), 1);
            promised[i] = -1;
        }
        for (int i = 1; i < N; i++) /* submit times in order */
            if (jobs[i].submit < jobs[i - 1].submit)
                jobs[i].submit = jobs[i - 1].submit;
        plan p;
        plan_init(&p, &easy, 16, 1);
        int64_t now = 0;
        int next = 0, started = 0;
        plan_job *run[N];
        int nrun = 0;
        while (started < N) {
            started += (int)plan_pass(&p, now, NULL, NULL);
            if (p.head && promised[p.head->id - 1] < 0)
                promised[p.head->id - 1] = p.shadow;
            nrun = 0;
            for (size_t i = 0; i < p.n_running; i++)
                run[nrun++] = p.running[i];
            int64_t end = INT64_MAX;
            int who = -1;
            for (int i = 0; i < nrun; i++)
                if (run[i]->start + run[i]->limit < end)
                    end = run[i]->start + run[i]->limit, who = i;
            int64_t arrival = next < N ? jobs[next].submit : INT64_MAX;
            if (started == N)
                break;
            if (arrival <= end) {
                now = arrival > now ? arrival : now;
                plan_submit(&p, &jobs[next++]);
            } else {
                now = end > now ? end : now;
                plan_end(&p, run[who]);
            }
        }
        for (int i = 0; i < N; i++)
            if (promised[i] >= 0 && jobs[i].start > promised[i])
                test_fail(__FILE__, __LINE__, "round %d: job %d promised %lld, started %lld", round, i + 1,
                          (long long)promised[i], (long long)jobs[i].start);
        plan_free(&p);
    }
}

/* A big job among an endless stream of small ones: once it ranks first
 * and cannot start, its reservation holds, so it starts as soon as its
 * two nodes drain, however many small ones keep coming. */
TEST(plan_jazari_big_jobs_do_not_starve_behind_small_ones)
{
    plan_policy jz;
    REQUIRE(plan_policy_parse("jazari", &jz) == 0);
    CHECK(jz.by_rank && jz.backfill && strcmp(plan_policy_name(&jz), "jazari") == 0);
    plan p;
    plan_init(&p, &jz, 2, 1);
    enum { SMALL = 200 };
    plan_job big = job(1, 0, 20, 2, 1), small[SMALL];
    plan_job *running[SMALL + 1];
    for (int i = 0; i < SMALL; i++)
        small[i] = job((uint64_t)i + 2, 5 * i, 10, 1, 1);
    plan_submit(&p, &small[0]);
    plan_submit(&p, &big);
    int next = 1;
    for (int64_t now = 0; now < 5 * SMALL && big.start < 0; now++) {
        /* ends at their limit, arrivals every 5 s */
        size_t nr = 0;
        for (size_t i = 0; i < p.n_running; i++)
            running[nr++] = p.running[i];
        for (size_t i = 0; i < nr; i++)
            if (running[i]->start + running[i]->limit == now)
                plan_end(&p, running[i]);
        while (next < SMALL && small[next].submit == now)
            plan_submit(&p, &small[next++]);
        plan_pass(&p, now, NULL, NULL);
    }
    CHECK(big.start == 10); /* when small 0 ends; small 2 (at 10) waits for it */
    plan_free(&p);
}

/* Aging: of two waiting jobs, the one with the smaller area goes first,
 * unless the other has waited long against its own limit. */
TEST(plan_jazari_ranks_by_area_aged_by_wait)
{
    plan_policy jz;
    REQUIRE(plan_policy_parse("jazari", &jz) == 0);
    for (int old = 0; old < 2; old++) {
        plan p;
        plan_init(&p, &jz, 2, 1);
        plan_job a = job(1, 0, 100, 2, 1), h = job(2, 1, 50, 2, 1);
        plan_job big = job(3, old ? 1 : 90, 20, 2, 1), small = job(4, 99, 10, 1, 1);
        plan_submit(&p, &a);
        CHECK(plan_pass(&p, 0, NULL, NULL) == 1 && a.start == 0);
        plan_submit(&p, &h);
        CHECK(plan_pass(&p, 1, NULL, NULL) == 0 && p.head == &h);
        plan_submit(&p, &big);
        plan_submit(&p, &small);
        plan_end(&p, &a);
        CHECK(plan_pass(&p, 100, NULL, NULL) == 1 && h.start == 100);
        plan_end(&p, &h);
        plan_pass(&p, 150, NULL, NULL);
        if (old) {
            /* waited 149 s, 7.5 of its limits: 40 / 8.45 = 4.7 < 10 / 6.1 */
            if (!(big.start == 150 && small.start == -1))
                test_fail(__FILE__, __LINE__, "big %lld small %lld", (long long)big.start,
                          (long long)small.start);
            plan_end(&p, &big);
            CHECK(plan_pass(&p, 170, NULL, NULL) == 1 && small.start == 170);
            plan_end(&p, &small);
        } else {
            /* waited 60 s, 3 of its limits: 40 / 4 = 10 > 10 / 6.1 */
            CHECK(small.start == 150 && big.start == -1);
            plan_end(&p, &small);
            CHECK(plan_pass(&p, 160, NULL, NULL) == 1 && big.start == 160);
            plan_end(&p, &big);
        }
        plan_free(&p);
    }
}

/* test_plan.c - the scheduler's core: order, the sticky head, EASY's
 * guarantee, best fit. */
#include <stdlib.h>

#include "../../lib/sched/plan.h"
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
    plan_policy fcfs = {.order = PLAN_FCFS}, easy = {.order = PLAN_FCFS, .backfill = true};
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
    plan_policy easy = {.order = PLAN_FCFS, .backfill = true};
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
    plan_policy sjf = {.order = PLAN_SJF};
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
    plan_policy fcfs = {.order = PLAN_FCFS};
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
    plan_policy easy = {.order = PLAN_FCFS, .backfill = true};
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
    plan_policy jz = {0};
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
    plan_policy jz = {0};
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

/* Placement: first fit takes the lowest-index node with room, best fit
 * the fullest. */
TEST(plan_first_fit_takes_the_lowest_index_node)
{
    for (int ff = 0; ff < 2; ff++) {
        plan_policy pol = {.order = PLAN_FCFS};
        pol.first_fit = ff;
        plan p;
        plan_init(&p, &pol, 3, 8);
        plan_job four = job(1, 0, 10, 1, 4), six = job(2, 0, 10, 1, 6), two = job(3, 1, 10, 1, 2);
        plan_submit(&p, &four);
        plan_submit(&p, &six);
        CHECK(plan_pass(&p, 0, NULL, NULL) == 2 && four.where[0] == 0 && six.where[0] == 1);
        plan_submit(&p, &two);
        CHECK(plan_pass(&p, 1, NULL, NULL) == 1);
        CHECK(two.where[0] == (ff ? 0u : 1u)); /* node 0 has 4 free, node 1 (the fullest) 2 */
        plan_end(&p, &four);
        plan_end(&p, &six);
        plan_end(&p, &two);
        plan_free(&p);
    }
}

/* A caller's node_rank: node 0 never fits (say, its GPUs are split too
 * finely), node 2 before node 1; the free-slot index is off. */
static uint64_t rank_two_first(void *arg, const plan_node *n, const plan_job *j)
{
    (void)j;
    (*(int *)arg)++;
    return n->index == 0 ? PLAN_NO_FIT : n->index == 2 ? 1 : 2;
}

TEST(plan_node_rank_decides_where_a_job_fits_and_goes)
{
    plan_policy fcfs = {.order = PLAN_FCFS};
    plan p;
    plan_init(&p, &fcfs, 3, 4);
    int asked = 0;
    p.node_rank = rank_two_first;
    p.rank_arg = &asked;
    plan_job a = job(1, 0, 10, 1, 1), b = job(2, 0, 10, 1, 4), c = job(3, 0, 10, 2, 1);
    plan_submit(&p, &a);
    plan_submit(&p, &b);
    plan_submit(&p, &c);
    /* a on node 2 (ranked first); b (4 slots) on node 1, since node 2 has
     * 3 left; c needs two nodes that fit, and node 0 never does: it
     * waits as the head until both others are free again. */
    CHECK(plan_pass(&p, 0, NULL, NULL) == 2 && a.where[0] == 2 && b.where[0] == 1);
    CHECK(!p.indexed && asked > 0);
    CHECK(c.start == -1 && p.head == &c);
    plan_end(&p, &a);
    CHECK(plan_pass(&p, 10, NULL, NULL) == 0 && c.start == -1);
    plan_end(&p, &b);
    CHECK(plan_pass(&p, 10, NULL, NULL) == 1 && c.start == 10);
    CHECK(c.where[0] == 2 && c.where[1] == 1);
    plan_end(&p, &c);
    plan_free(&p);
}

TEST(plan_no_backfilling_variants_are_named)
{
    plan_policy p = {0};
    REQUIRE(plan_policy_parse("jazari-noback", &p) == 0);
    CHECK(p.order == PLAN_JAZARI && !p.backfill && strcmp(plan_policy_name(&p), "jazari-noback") == 0);
    REQUIRE(plan_policy_parse("jazari-ect", &p) == 0);
    CHECK(p.order == PLAN_SOONEST && !p.backfill && strcmp(plan_policy_name(&p), "jazari-ect") == 0);
}

/* PLAN_SOONEST: the job expected to end first goes first. A 2-node job
 * (limit 10) waits for a running one (until 100): it would end at 110;
 * a 1-node job (limit 50) fits now and ends at 51. FCFS and SJF would
 * both make the 2-node job the head and leave a node idle. */
TEST(plan_ect_starts_the_job_expected_to_end_first)
{
    plan_policy ect = {0};
    REQUIRE(plan_policy_parse("jazari-ect", &ect) == 0);
    plan p;
    plan_init(&p, &ect, 2, 1);
    plan_job a = job(1, 0, 100, 1, 1), wide = job(2, 1, 10, 2, 1), narrow = job(3, 1, 50, 1, 1);
    plan_submit(&p, &a);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1);
    plan_submit(&p, &wide);
    plan_submit(&p, &narrow);
    CHECK(plan_pass(&p, 1, NULL, NULL) == 1 && narrow.start == 1);
    CHECK(p.head == &wide && p.shadow == 100);
    plan_end(&p, &narrow);
    plan_end(&p, &a);
    CHECK(plan_pass(&p, 100, NULL, NULL) == 1 && wide.start == 100);
    plan_end(&p, &wide);
    plan_free(&p);
}

/* ... and a job that never ends first still starts: its key falls with
 * its wait, below that of any job submitted long enough after it. */
TEST(plan_ect_does_not_starve_a_wide_job)
{
    plan_policy ect = {0};
    REQUIRE(plan_policy_parse("jazari-ect", &ect) == 0);
    plan p;
    plan_init(&p, &ect, 2, 1);
    enum { MAX = 40000 };
    plan_job wide = job(1, 0, 100, 2, 1), *narrow = calloc(MAX, sizeof *narrow), *ending[2];
    REQUIRE(narrow != NULL);
    size_t n = 0;
    plan_submit(&p, &wide);
    /* Three 1-node jobs (limit 10) always waiting: one of them is always
     * expected to end before the wide job could. */
    for (int64_t now = 0; now < 200000 && wide.start < 0 && n < MAX; now++) {
        size_t e = 0;
        for (size_t i = 0; i < p.n_running; i++)
            if (p.running[i]->start + p.running[i]->limit == now)
                ending[e++] = p.running[i];
        for (size_t i = 0; i < e; i++)
            plan_end(&p, ending[i]);
        size_t waiting = 0;
        for (size_t i = n > 3 ? n - 3 : 0; i < n; i++)
            waiting += narrow[i].start < 0;
        for (; waiting < 3; waiting++) {
            narrow[n] = job(n + 2, now, 10, 1, 1);
            plan_submit(&p, &narrow[n++]);
        }
        plan_pass(&p, now, NULL, NULL);
    }
    /* Its key, 3 x (at most 10) + 100 - 0.001 x wait, falls below a new
     * job's 10 after 90,000 to 120,000 s. */
    CHECK(wide.start > 90000 && wide.start <= 120010);
    while (p.n_running)
        plan_end(&p, p.running[0]);
    plan_free(&p);
    free(narrow);
}

/* Sites: a gang stays in one site when one can hold it, waits for one
 * when none can (its shadow counting one site's nodes, not all), and, when
 * it may span, takes the fewest sites, the largest share first. */
TEST(plan_gangs_stay_in_one_site_unless_they_may_span)
{
    plan_policy fcfs = {.order = PLAN_FCFS};
    plan p;
    plan_init(&p, &fcfs, 7, 8); /* site 1: nodes 0-2; site 2: nodes 3-4; site 3: nodes 5-6 */
    static const uint32_t site[7] = {1, 1, 1, 2, 2, 3, 3};
    for (size_t i = 0; i < 7; i++)
        p.nodes[i].tag = p.nodes[i].group = site[i];
    /* One node busy at site 1 until 100: a 3-node gang fits nowhere now,
     * though 6 nodes are free; a spanning one starts now. */
    plan_job busy = job(1, 0, 100, 1, 8);
    plan_submit(&p, &busy);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1 && site[busy.where[0]] == 1);
    plan_job bound = job(2, 1, 50, 3, 8);
    plan_submit(&p, &bound);
    CHECK(plan_pass(&p, 1, NULL, NULL) == 0 && bound.start == -1);
    CHECK(p.head == &bound && p.shadow == 100); /* when site 1 is whole again */
    plan_job wide = job(3, 2, 10, 3, 8);
    wide.span = true;
    plan_free(&p); /* the same cluster again, with the spanning gang */
    plan_init(&p, &fcfs, 7, 8);
    for (size_t i = 0; i < 7; i++)
        p.nodes[i].tag = p.nodes[i].group = site[i];
    busy = job(1, 0, 100, 1, 8);
    plan_submit(&p, &busy);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1);
    plan_submit(&p, &wide);
    CHECK(plan_pass(&p, 2, NULL, NULL) == 1);
    /* Two sites: two nodes of one, one of another (never three sites). */
    uint32_t per[4] = {0};
    for (uint32_t k = 0; k < 3; k++)
        per[site[wide.where[k]]]++;
    CHECK((per[1] == 2 || per[2] == 2 || per[3] == 2) && (per[1] + per[2] + per[3] == 3));
    CHECK(wide.where[0] != wide.where[1] && wide.where[1] != wide.where[2] && wide.where[0] != wide.where[2]);
    /* A 2-node gang goes within one site (one that can hold it). */
    plan_job pair = job(4, 3, 10, 2, 8);
    plan_submit(&p, &pair);
    plan_end(&p, &wide);
    CHECK(plan_pass(&p, 3, NULL, NULL) == 1 && site[pair.where[0]] == site[pair.where[1]]);
    plan_end(&p, &pair);
    plan_end(&p, &busy);
    plan_free(&p);
}

/* Round trips between the four sites of the test below (tags 1-4), in ms;
 * 0 off the diagonal: no figure (PLAN_RTT_UNKNOWN). */
static uint32_t rtt_table[5][5];

static uint32_t rtt_of(const void *arg, uint32_t a, uint32_t b)
{
    (void)arg;
    return rtt_table[a][b] ? rtt_table[a][b] : PLAN_RTT_UNKNOWN;
}

static void rtt_set(const uint32_t ab, const uint32_t ac, const uint32_t ad, const uint32_t bc,
                    const uint32_t bd, const uint32_t cd)
{
    memset(rtt_table, 0, sizeof rtt_table);
    rtt_table[1][2] = rtt_table[2][1] = ab;
    rtt_table[1][3] = rtt_table[3][1] = ac;
    rtt_table[1][4] = rtt_table[4][1] = ad;
    rtt_table[2][3] = rtt_table[3][2] = bc;
    rtt_table[2][4] = rtt_table[4][2] = bd;
    rtt_table[3][4] = rtt_table[4][3] = cd;
}

/* A spanning gang's nodes per site (tags 1-4) on the cluster of the test
 * below: site 1 has nodes 0-3, site 2 nodes 4-6, site 3 nodes 7-8, site 4
 * nodes 9-10; with the round trips of rtt_table unless rtt is false. */
static void spread(uint32_t nodes, bool rtt, uint32_t per[5], uint32_t *first_site)
{
    static const uint32_t site[11] = {1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4};
    plan_policy fcfs = {.order = PLAN_FCFS};
    plan p;
    plan_init(&p, &fcfs, 11, 8);
    for (size_t i = 0; i < 11; i++)
        p.nodes[i].tag = p.nodes[i].group = site[i];
    if (rtt)
        p.site_rtt = rtt_of;
    plan_job gang = job(1, 0, 10, nodes, 8);
    gang.span = true;
    plan_submit(&p, &gang);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1);
    memset(per, 0, 5 * sizeof *per);
    for (uint32_t k = 0; k < nodes; k++)
        per[site[gang.where[k]]]++;
    *first_site = site[gang.where[0]];
    plan_end(&p, &gang);
    plan_free(&p);
}

/* A gang no site can hold, allowed to span: of the sets of the fewest
 * sites that hold it, the one whose worst round trip is the smallest, the
 * larger sites taking their parts first; an unknown pair is worse than
 * any known one; without round trips (or on a tie) the largest sites
 * first, as before. */
TEST(plan_spanning_gangs_take_the_best_connected_sites)
{
    uint32_t per[5], first;
    /* Without round trips: 5 nodes on the largest two sites, 4 + 1. */
    spread(5, false, per, &first);
    CHECK(per[1] == 4 && per[2] == 1 && per[3] == 0 && per[4] == 0 && first == 1);
    /* Site 1, the largest, is far from the others; 2 and 3 are 5ms apart:
     * the pair 2 + 3 (3 + 2 nodes), though 1 is larger. */
    rtt_set(80, 90, 90, 5, 20, 10);
    spread(5, true, per, &first);
    CHECK(per[1] == 0 && per[2] == 3 && per[3] == 2 && per[4] == 0 && first == 2);
    /* 8 nodes need three sites: 1 + 3 + 4 (worst pair 10ms) rather than
     * 1 + 2 + 3 (60ms), the largest taking its part first. */
    rtt_set(50, 10, 10, 60, 60, 5);
    spread(8, true, per, &first);
    CHECK(per[1] == 4 && per[2] == 0 && per[3] == 2 && per[4] == 2 && first == 1);
    /* Without round trips, the largest three: 4 + 3 + 1. */
    spread(8, false, per, &first);
    CHECK(per[1] == 4 && per[2] == 3 && per[3] == 1 && per[4] == 0);
    /* Every pair equal: a tie, the largest first as without figures. */
    rtt_set(10, 10, 10, 10, 10, 10);
    spread(5, true, per, &first);
    CHECK(per[1] == 4 && per[2] == 1 && per[3] == 0 && per[4] == 0);
    /* A table with no figure at all: the same. */
    rtt_set(0, 0, 0, 0, 0, 0);
    spread(5, true, per, &first);
    CHECK(per[1] == 4 && per[2] == 1 && per[3] == 0 && per[4] == 0);
    /* One known pair (3 and 4, 40ms) beats every unknown one, but 3 + 4
     * cannot hold 5: a set of two that can (any, all unknown): the largest. */
    rtt_set(0, 0, 0, 0, 0, 40);
    spread(5, true, per, &first);
    CHECK(per[1] == 4 && per[2] == 1);
    /* One known pair that can: 2 and 4 (3 + 2). */
    rtt_set(0, 0, 0, 0, 40, 0);
    spread(5, true, per, &first);
    CHECK(per[1] == 0 && per[2] == 3 && per[3] == 0 && per[4] == 2);
    /* Equal worst pairs among sets: the largest sites first (2 + 3 and
     * 2 + 4 at 5ms: 3, the lower tag of two sites of 2 nodes). */
    rtt_set(80, 90, 90, 5, 5, 10);
    spread(5, true, per, &first);
    CHECK(per[2] == 3 && per[3] == 2 && per[4] == 0);
}

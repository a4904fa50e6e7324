/* test_plan_policy.c - the core's side of the site policy: priority order,
 * reservation windows (kept slots, members, scavengers), preemption's
 * victims. */
#include <stdlib.h>

#include "../../lib/sched/plan.h"
#include "test.h"

static plan_job pjob(uint64_t id, int64_t submit, int64_t limit, uint32_t per_node)
{
    plan_job j;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.submit = submit;
    j.limit = limit;
    j.nodes = 1;
    j.per_node = per_node;
    j.start = -1;
    return j;
}

static void none(void *arg, plan_job *j)
{
    (void)arg;
    (void)j;
}

TEST(plan_multifactor_goes_by_priority_then_submit_time)
{
    plan_policy pol = {0};
    REQUIRE(plan_policy_parse("multifactor", &pol) == 0);
    CHECK_EQ_STR(plan_policy_name(&pol), "multifactor");
    plan p;
    plan_init(&p, &pol, 1, 8);
    plan_job run = pjob(1, 0, 100, 8);
    plan_submit(&p, &run);
    CHECK(plan_pass(&p, 0, none, NULL) == 1);
    plan_job a = pjob(2, 1, 10, 8), b = pjob(3, 2, 10, 8), c = pjob(4, 3, 10, 8);
    a.priority = 10;
    b.priority = 30;
    c.priority = 30;
    plan_submit(&p, &a);
    plan_submit(&p, &b);
    plan_submit(&p, &c);
    CHECK(plan_pass(&p, 5, none, NULL) == 0);
    CHECK(p.head == &b); /* the highest; of equals, the earlier */
    plan_end(&p, &run);
    CHECK(plan_pass(&p, 100, none, NULL) == 1 && b.start == 100);
    plan_end(&p, &b);
    CHECK(plan_pass(&p, 110, none, NULL) == 1 && c.start == 110 && a.start == -1);
    plan_end(&p, &c);
    plan_free(&p);
}

/* One node of 8 slots, 4 of them kept for reservation 1 from t=100 to 200. */
static void resv_node(plan *p, plan_window *w, const plan_policy *pol)
{
    plan_init(p, pol, 1, 8);
    memset(w, 0, sizeof *w);
    w->from = 100;
    w->until = 200;
    w->slots = 4;
    w->owner = 1;
    p->nodes[0].windows = w;
    p->nodes[0].n_windows = 1;
}

TEST(plan_a_reservation_keeps_its_slots_from_jobs_that_would_overlap_it)
{
    plan_policy easy = {.order = PLAN_FCFS, .backfill = true};
    plan p;
    plan_window w;
    resv_node(&p, &w, &easy);
    /* Before the window: a job ending by 100 may take all 8... */
    plan_job early = pjob(1, 0, 90, 8);
    plan_submit(&p, &early);
    CHECK(plan_pass(&p, 0, none, NULL) == 1 && early.start == 0);
    plan_end(&p, &early);
    /* ...one that would run into it only the 4 nobody keeps. */
    plan_job wide = pjob(2, 10, 200, 8), half = pjob(3, 11, 200, 4), more = pjob(4, 12, 200, 1);
    plan_submit(&p, &wide);
    plan_submit(&p, &half);
    plan_submit(&p, &more);
    plan_pass(&p, 10, none, NULL);
    CHECK(wide.start == -1 && half.start == 10 && more.start == -1);
    CHECK(plan_feasible(&p, &wide)); /* it waits: capacity is there, the window keeps it */
    /* The window's job: not before its window, then in its 4 slots only. */
    plan_job mine = pjob(5, 20, 50, 4), extra = pjob(6, 21, 50, 1);
    mine.resv = extra.resv = 1;
    plan_submit(&p, &mine);
    plan_submit(&p, &extra);
    plan_pass(&p, 50, none, NULL);
    CHECK(mine.start == -1 && extra.start == -1);
    plan_pass(&p, 100, none, NULL);
    CHECK(mine.start == 100 && extra.start == -1 && w.used == 4);
    plan_end(&p, &mine);
    CHECK(w.used == 0);
    plan_pass(&p, 150, none, NULL);
    CHECK(extra.start == 150);
    plan_end(&p, &extra);
    plan_end(&p, &half);
    /* After the window: everyone's again (the expired window no longer
     * overlaps anything). */
    plan_pass(&p, 200, none, NULL);
    CHECK(wide.start == 200);
    plan_end(&p, &wide);
    plan_free(&p);
}

TEST(plan_scavengers_use_idle_reserved_slots_and_others_do_not_count_them_twice)
{
    plan_policy fcfs = {.order = PLAN_FCFS};
    plan p;
    plan_window w;
    resv_node(&p, &w, &fcfs);
    plan_job scav = pjob(1, 0, 1000, 4), other = pjob(2, 1, 1000, 4), third = pjob(3, 2, 1000, 1);
    scav.scavenger = true;
    plan_submit(&p, &scav);
    plan_submit(&p, &other);
    plan_submit(&p, &third);
    plan_pass(&p, 120, none, NULL);
    /* The scavenger holds the 4 kept slots nobody uses; the other 4 are
     * still free for others: 8 - 4 (scavenger) - (4 kept - 4 scavenged). */
    CHECK(scav.start == 120 && other.start == 120 && third.start == -1);
    CHECK_EQ_INT(p.nodes[0].scav_used, 4);
    /* The owner's job needs them: the scavenger is the victim. */
    plan_job mine = pjob(4, 130, 10, 4);
    mine.resv = 1;
    plan_submit(&p, &mine);
    plan_pass(&p, 130, none, NULL);
    CHECK(mine.start == -1);
    plan_job *cand[1] = {&scav}, *out[1];
    size_t n = plan_victims(&p, &mine, 130, cand, 1, out);
    CHECK(n == 1 && out[0] == &scav);
    CHECK(scav.start == 120 && p.nodes[0].free == 0 && p.nodes[0].scav_used == 4); /* nothing changed */
    plan_end(&p, &scav);
    plan_pass(&p, 131, none, NULL);
    CHECK(mine.start == 131 && third.start == -1);
    plan_end(&p, &mine);
    plan_end(&p, &other);
    plan_free(&p);
}

TEST(plan_victims_are_the_fewest_that_make_room)
{
    plan_policy fcfs = {.order = PLAN_FCFS};
    plan p;
    plan_init(&p, &fcfs, 2, 8);
    plan_job a = pjob(1, 0, 100, 2), b = pjob(2, 0, 100, 6), c = pjob(3, 0, 100, 8);
    plan_submit(&p, &a);
    plan_submit(&p, &b);
    plan_submit(&p, &c);
    CHECK(plan_pass(&p, 0, none, NULL) == 3);
    plan_job big = pjob(4, 1, 10, 6);
    plan_submit(&p, &big);
    plan_pass(&p, 1, none, NULL);
    CHECK(big.start == -1);
    plan_job *cand[3] = {&a, &c, &b}, *out[3];
    /* a alone frees 2 (not enough), then c frees a whole node: a is not needed. */
    size_t n = plan_victims(&p, &big, 1, cand, 3, out);
    CHECK(n == 1 && out[0] == &c);
    /* Nothing among the candidates makes room: none. */
    plan_job *only_a[1] = {&a};
    CHECK(plan_victims(&p, &big, 1, only_a, 1, out) == 0);
    CHECK(p.nodes[0].free + p.nodes[1].free == 0);
    plan_end(&p, &a);
    plan_end(&p, &b);
    plan_end(&p, &c);
    plan_free(&p);
}

/* EASY by time alone would not start a long job; checked exactly, one
 * that takes slots the head cannot use does not delay it, and starts. */
TEST(plan_exact_easy_backfills_long_jobs_the_head_cannot_be_delayed_by)
{
    for (int exact = 0; exact < 2; exact++) {
        plan_policy pol = {.order = PLAN_FCFS, .backfill = true, .exact = exact};
        plan p;
        plan_init(&p, &pol, 2, 8);
        plan_job run = pjob(1, 0, 100, 8), head = pjob(2, 1, 50, 8), other = pjob(3, 2, 1000, 8),
                 wide = pjob(4, 3, 1000, 8);
        static const bool only0[2] = {true, false};
        run.allowed = head.allowed = only0; /* both want node 0 */
        plan_submit(&p, &run);
        CHECK(plan_pass(&p, 0, none, NULL) == 1);
        plan_submit(&p, &head);
        plan_submit(&p, &other);
        plan_pass(&p, 5, none, NULL);
        CHECK(p.head == &head && p.shadow == 100);
        /* other (1000 s) would end long after 100, but on node 1, which
         * the head cannot use. */
        CHECK(other.start == (exact ? 5 : -1));
        /* One that would take the head's node (both free now, but the head
         * waits for node 0) is never started early. */
        plan_submit(&p, &wide);
        plan_pass(&p, 6, none, NULL);
        CHECK(wide.start == -1);
        plan_end(&p, &run);
        if (exact)
            plan_end(&p, &other);
        plan_free(&p);
    }
}

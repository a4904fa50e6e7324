/* test_acct_adversary.c - accounting in the state machine under hostile
 * input (issue 14's adversary): grants topped up past their bound, prices
 * at the policy's bound, an agent's end report sent twice. */
#include <stdlib.h>
#include <string.h>

#include "daemon/raft/facct.h"
#include "daemon/raft/fsm.h"
#include "fsm_steps.h"
#include "test.h"

#define T0 1767225600000ll /* 2026-01-01T00:00:00Z */

static void grant(fsm *f, int64_t t, const char *account, int64_t from, int64_t until, int64_t gpu_ms)
{
    Jazari__Grant g = JAZARI__GRANT__INIT;
    g.account = (char *)account;
    g.from_ms = from;
    g.until_ms = until;
    g.gpu_ms = gpu_ms;
    g.by = "root";
    Jazari__GrantCmd gc = JAZARI__GRANT_CMD__INIT;
    gc.grant = &g;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_GRANT;
    c.grant = &gc;
    fsm_step_apply(f, t, &c);
}

/* Top-ups of the same period add up: the sum, not only each top-up, stays
 * within a billion GPU-hours (past it, int64 overflowed: undefined, and
 * an abort under UBSan on every controller applying the entry). */
TEST(acct_adv_top_ups_stay_within_a_billion_gpu_hours)
{
    fsm f;
    fsm_init(&f);
    grant(&f, T0, "lab", T0, T0 + 86400000, FACCT_GRANT_MS_MAX);
    CHECK(f.acct.n_grants == 1 && f.acct.grants[0].gpu_ms == FACCT_GRANT_MS_MAX);
    Jazari__Grant g = JAZARI__GRANT__INIT;
    g.account = "lab";
    g.from_ms = T0;
    g.until_ms = T0 + 86400000;
    g.gpu_ms = 1;
    char err[300] = "";
    CHECK(facct_grant_check(&f.acct, &g, err, sizeof err) != 0 && strstr(err, "billion"));
    g.gpu_ms = FACCT_GRANT_MS_MAX;
    CHECK(facct_grant_check(&f.acct, &g, err, sizeof err) != 0);
    /* Applied anyway (an entry proposed before another top-up landed):
     * nothing changes, three times over. */
    for (int i = 0; i < 3; i++)
        grant(&f, T0, "lab", T0, T0 + 86400000, FACCT_GRANT_MS_MAX);
    CHECK(f.acct.grants[0].gpu_ms == FACCT_GRANT_MS_MAX);
    /* Taking back what was given is still fine. */
    grant(&f, T0, "lab", T0, T0 + 86400000, -FACCT_GRANT_MS_MAX + 1000);
    CHECK(f.acct.grants[0].gpu_ms == 1000);
    /* A period starting where no end can be added to it. */
    g.from_ms = INT64_MAX - 10;
    g.until_ms = INT64_MAX;
    g.gpu_ms = 1000;
    CHECK(facct_grant_check(&f.acct, &g, err, sizeof err) != 0);
    fsm_free(&f);
}

/* A price at the policy's bound (10^9 an hour) over a long run: the cost
 * saturates instead of wrapping to a small number. */
TEST(acct_adv_cost_at_the_price_bound_saturates)
{
    CHECK(facct_cost_micro(UINT64_MAX, FACCT_PRICE_MICRO_MAX) == UINT64_MAX);
    /* 8 GPUs for a year at the bound: 7e19 micro, beyond 64 bits. */
    CHECK(facct_cost_micro(8ull * 366 * 86400000, FACCT_PRICE_MICRO_MAX) == UINT64_MAX);
    CHECK(facct_cost_micro(3600000, FACCT_PRICE_MICRO_MAX) == FACCT_PRICE_MICRO_MAX);
    CHECK(facct_minor(UINT64_MAX, 2) == UINT64_MAX / 10000); /* ...1615: rounds down */
    CHECK(facct_minor(UINT64_MAX - 1615 + 5000 - 10000, 2) == UINT64_MAX / 10000);
}

static void end_with_usage(fsm *f, int64_t t, uint64_t id, const char *node, uint64_t cpu_ms)
{
    Jazari__PartUsage u = JAZARI__PART_USAGE__INIT;
    u.cpu_ms = cpu_ms;
    u.energy_mj = 7;
    Jazari__EndCmd e = JAZARI__END_CMD__INIT;
    e.id = id;
    e.node = (char *)node;
    e.state = JAZARI__JOB_STATE__JOB_COMPLETED;
    e.usage = &u;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_END;
    c.end = &e;
    fsm_step_apply(f, t, &c);
}

/* An agent sends its part's end again when the acknowledgement was lost
 * (a failover): the part's usage counts once. */
TEST(acct_adv_a_parts_end_sent_twice_counts_once)
{
    fsm f;
    fsm_init(&f);
    fsm_step_node_up(&f, T0, "g1", 2);
    fsm_step_node_up(&f, T0, "g2", 2);
    Jazari__JobSpec s = JAZARI__JOB_SPEC__INIT;
    s.nodes = 2;
    s.gpus_per_node = 1;
    uint64_t id = f.next_job_id;
    fsm_step_submit(&f, T0, &s);
    uint32_t gpu = 0;
    Jazari__JobAlloc a1 = JAZARI__JOB_ALLOC__INIT, a2 = JAZARI__JOB_ALLOC__INIT, *ap[2] = {&a1, &a2};
    a1.node = "g1";
    a2.node = "g2";
    a1.gpus = a2.gpus = &gpu;
    a1.n_gpus = a2.n_gpus = 1;
    Jazari__StartCmd sc = JAZARI__START_CMD__INIT;
    sc.id = id;
    sc.allocs = ap;
    sc.n_allocs = 2;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_START;
    c.start = &sc;
    fsm_step_apply(&f, T0, &c);
    const fsm_job *j = fsm_job_get(&f, id);
    CHECK(j && j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    end_with_usage(&f, T0 + 1000, id, "g1", 1000);
    end_with_usage(&f, T0 + 1500, id, "g1", 1000); /* the same report again */
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    end_with_usage(&f, T0 + 2000, id, "g2", 500);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK(j->usage && j->usage->cpu_ms == 1500 && j->usage->energy_mj == 14);
    fsm_free(&f);
}

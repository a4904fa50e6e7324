/* test_fsm_acct.c - accounting in the state machine (format 9): rates and
 * prices, what each run is charged and costs (exactly), the charge rules for
 * preempted and lost runs, grants charged by time share and what they have
 * left, reservations charged for their window, ended jobs forgotten after
 * jobs_keep, snapshots; and the policy file's accounting lines. */
#include <stdlib.h>
#include <string.h>

#include "daemon/raft/facct.h"
#include "daemon/raft/fsm.h"
#include "fsm_steps.h"
#include "lib/hw/topo_pb.h"
#include "lib/sched/policy.h"
#include "test.h"

#define T0 1767225600000ll /* 2026-01-01T00:00:00Z */

static void node_up(fsm *f, int64_t t, const char *name, unsigned gpus, const char *model)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    tp.n_gpus = gpus;
    tp.gpus = calloc(gpus, sizeof *tp.gpus);
    tp.links = calloc(gpus * gpus, sizeof *tp.links);
    for (unsigned i = 0; i < gpus; i++) {
        tp.gpus[i].index = i;
        tp.gpus[i].numa = -1;
        tp.gpus[i].model = (char *)model;
    }
    Jazari__NodeRecord r = JAZARI__NODE_RECORD__INIT;
    r.name = (char *)name;
    r.site = "rabat";
    r.address = "127.0.0.1:7070";
    r.topology = topo_to_pb(&tp);
    Jazari__NodeUpCmd u = JAZARI__NODE_UP_CMD__INIT;
    u.node = &r;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    c.node_up = &u;
    fsm_step_apply(f, t, &c);
    topo_pb_free(r.topology);
    free(tp.gpus);
    free(tp.links);
}

/* H100: rate 2, 36.00 an hour (10 micro a ms); any other GPU: rate 1, 3.60
 * (1 micro a ms); a CPU: rate 0.5, 0.36 an hour (0.1 micro a ms). */
static void policy(fsm *f, int64_t t, bool free_preempted, bool charge_lost)
{
    Jazari__AcctRate r[3] = {JAZARI__ACCT_RATE__INIT, JAZARI__ACCT_RATE__INIT, JAZARI__ACCT_RATE__INIT};
    Jazari__AcctRate *rp[3] = {&r[0], &r[1], &r[2]};
    r[0].model = "H100";
    r[0].charge_milli = 2000;
    r[0].price_micro = 36000000;
    r[1].model = "*";
    r[1].charge_milli = 1000;
    r[1].price_micro = 3600000;
    r[2].model = "cpu";
    r[2].charge_milli = 500;
    r[2].price_micro = 360000;
    Jazari__AcctPolicy ap = JAZARI__ACCT_POLICY__INIT;
    ap.currency = "MAD";
    ap.minor_digits = 2;
    ap.rates = rp;
    ap.n_rates = 3;
    ap.free_preempted = free_preempted;
    ap.charge_lost = charge_lost;
    ap.jobs_keep_ms = 60000;
    Jazari__PolicyCmd pc = JAZARI__POLICY_CMD__INIT;
    pc.half_life_ms = 7ll * 86400000;
    pc.acct = &ap;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_POLICY;
    c.policy = &pc;
    fsm_step_apply(f, t, &c);
}

static uint64_t submit(fsm *f, int64_t t, const char *account, uint32_t gpus, uint32_t cpus, uint64_t limit_s)
{
    Jazari__JobSpec s = JAZARI__JOB_SPEC__INIT;
    s.gpus_per_node = gpus;
    s.cpus_per_task = cpus;
    s.account = (char *)account;
    s.time_limit_s = limit_s;
    uint64_t id = f->next_job_id;
    fsm_step_submit(f, t, &s);
    return id;
}

static void start(fsm *f, int64_t t, uint64_t id, const char *node, uint32_t first_gpu, uint32_t n)
{
    uint32_t gpus[8];
    for (uint32_t i = 0; i < n; i++)
        gpus[i] = first_gpu + i;
    Jazari__JobAlloc a = JAZARI__JOB_ALLOC__INIT, *ap = &a;
    a.node = (char *)node;
    a.gpus = gpus;
    a.n_gpus = n;
    Jazari__StartCmd sc = JAZARI__START_CMD__INIT;
    sc.id = id;
    sc.allocs = &ap;
    sc.n_allocs = 1;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_START;
    c.start = &sc;
    fsm_step_apply(f, t, &c);
}

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

TEST(facct_rates_prices_and_rounding)
{
    fsm f;
    fsm_init(&f);
    policy(&f, T0, false, false);
    const facct *a = &f.acct;
    CHECK_EQ_INT(facct_charge_milli(a, "NVIDIA H100 80GB HBM3"), 2000);
    CHECK_EQ_INT(facct_charge_milli(a, "Tesla V100-SXM2-32GB"), 1000); /* "*" */
    CHECK_EQ_INT(facct_charge_milli(a, NULL), 500);                    /* a CPU */
    CHECK(facct_price_micro(a, "nvidia h100 pcie") == 36000000);
    CHECK_EQ_INT(facct_worst_milli(a, ""), 2000);     /* anywhere: the dearest */
    CHECK_EQ_INT(facct_worst_milli(a, "v100"), 1000); /* no line names it: "*" */
    CHECK_EQ_INT(facct_worst_milli(a, "H100"), 2000);
    CHECK_EQ_STR(facct_currency(a), "MAD");
    /* 1 ms at 1 micro an hour is 1/3600000 micro: rounds to 0; half up. */
    CHECK(facct_cost_micro(1, 1) == 0);
    CHECK(facct_cost_micro(1800000, 1) == 1);
    CHECK(facct_cost_micro(3600000, 36000000) == 36000000);
    CHECK(facct_minor(1234500, 2) == 123);
    CHECK(facct_minor(1235000, 2) == 124);
    CHECK(facct_minor(999999, 0) == 1);
    /* Bad policies change nothing. */
    Jazari__AcctPolicy bad = JAZARI__ACCT_POLICY__INIT;
    bad.minor_digits = 9;
    char err[200];
    CHECK(facct_policy_check(&bad, err, sizeof err) != 0);
    facct_policy_set(&f.acct, &bad);
    CHECK_EQ_STR(facct_currency(a), "MAD");
    fsm_free(&f);
}

TEST(fsm_a_run_is_charged_and_priced_exactly_when_it_ends)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, T0, "g1", 8, "NVIDIA H100 80GB HBM3");
    policy(&f, T0, false, false);
    uint64_t id = submit(&f, T0, "lab/a", 2, 3, 3600);
    start(&f, T0 + 1000, id, "g1", 0, 2);
    fsm_step_end(&f, T0 + 1000 + 10001, id, 0, "g1", JAZARI__JOB_STATE__JOB_COMPLETED, 0, NULL);
    const fsm_job *j = fsm_job_get(&f, id);
    CHECK(j && j->usage && j->n_runs == 1);
    const Jazari__JobUsage *u = j->usage;
    CHECK(u->gpu_ms == 20002);
    CHECK(u->cpu_alloc_ms == 30003);
    /* 2 GPUs x 10001 ms x 2 + 3 CPUs x 10001 ms x 0.5 */
    CHECK(u->charge_ms == 40004 + 15001);
    /* 20002 ms x 10 micro + 30003 ms x 0.1 micro (3000.3: 3000) */
    CHECK(u->gpu_cost_micro == 200020);
    CHECK(u->cost_micro == 200020 + 3000);
    CHECK_EQ_STR(u->gpu_model, "NVIDIA H100 80GB HBM3");
    CHECK_EQ_STR(u->nodes, "g1");
    CHECK_EQ_STR(j->runs[0]->how, "ended");
    /* The history is handed the job and its run. */
    CHECK(f.n_out_jobs == 1 && f.out_jobs[0] == id);
    CHECK(f.n_out_runs == 1 && f.out_runs[0].id == id && f.out_runs[0].attempt == 0);
    fsm_free(&f);
}

TEST(fsm_preempted_and_lost_runs_are_charged_as_the_policy_says)
{
    for (int free_preempted = 0; free_preempted <= 1; free_preempted++) {
        fsm f;
        fsm_init(&f);
        node_up(&f, T0, "g1", 8, "H100");
        policy(&f, T0, free_preempted, false);
        uint64_t id = submit(&f, T0, "lab", 1, 1, 3600);
        start(&f, T0, id, "g1", 0, 1);
        Jazari__PreemptCmd pc = JAZARI__PREEMPT_CMD__INIT;
        pc.id = id;
        pc.grace_s = 1;
        Jazari__Command c = JAZARI__COMMAND__INIT;
        c.cmd_case = JAZARI__COMMAND__CMD_PREEMPT;
        c.preempt = &pc;
        fsm_step_apply(&f, T0 + 5000, &c);
        fsm_step_end(&f, T0 + 6000, id, 0, "g1", JAZARI__JOB_STATE__JOB_CANCELLED, 143, NULL);
        const fsm_job *j = fsm_job_get(&f, id);
        CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->n_runs == 1);
        CHECK_EQ_STR(j->runs[0]->how, "preempted");
        CHECK(j->runs[0]->gpu_ms == 6000);
        CHECK(j->runs[0]->charge_ms == (free_preempted ? 0 : 12000 + 3000));
        CHECK(f.n_out_jobs == 0); /* not ended: back in the queue */
        /* The second run is lost with its node: not charged by default. */
        start(&f, T0 + 7000, id, "g1", 0, 1);
        fsm_step_end(&f, T0 + 9000, id, 1, "g1", JAZARI__JOB_STATE__JOB_NODE_FAIL, 0, "lost");
        CHECK(j->n_runs == 2);
        CHECK_EQ_STR(j->runs[1]->how, "lost");
        CHECK(j->runs[1]->gpu_ms == 2000 && j->runs[1]->charge_ms == 0 && j->runs[1]->cost_micro == 0);
        CHECK(j->usage->gpu_ms == 8000 && j->usage->runs == 2);
        fsm_free(&f);
    }
}

TEST(fsm_grants_are_charged_by_time_share_and_gate_starts)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, T0, "g1", 8, "H100");
    policy(&f, T0, false, false);
    int64_t mid = T0 + 100000;
    /* Two grants back to back; a run across the boundary is split. */
    grant(&f, T0, "lab", T0, mid, 1000000);
    grant(&f, T0, "lab", mid, mid + 1000000, 1000000);
    CHECK(f.acct.n_grants == 2);
    /* An overlapping one is refused; the same period tops up. */
    Jazari__Grant g = JAZARI__GRANT__INIT;
    g.account = "lab";
    g.from_ms = T0 + 5;
    g.until_ms = mid + 5;
    g.gpu_ms = 10;
    char err[300];
    CHECK(facct_grant_check(&f.acct, &g, err, sizeof err) != 0 && strstr(err, "already has grant"));
    grant(&f, T0, "lab", T0, mid, 500000);
    CHECK(f.acct.grants[0].gpu_ms == 1500000);
    uint64_t id = submit(&f, T0, "lab/x", 1, 0, 3600); /* a project of lab: charged to lab's grants */
    CHECK_EQ_STR(fsm_job_grant_holder(&f, fsm_job_get(&f, id)), "lab");
    start(&f, mid - 10000, id, "g1", 0, 1);
    fsm_step_end(&f, mid + 30000, id, 0, "g1", JAZARI__JOB_STATE__JOB_COMPLETED, 0, NULL);
    /* 40000 ms x rate 2 + 1 CPU x 40000 x 0.5 = 100000: 1/4 before mid, 3/4 after. */
    CHECK(f.acct.grants[0].used_ms == 25000);
    CHECK(f.acct.grants[1].used_ms == 75000);
    /* What is left now, and a job whose worst case does not fit. */
    uint64_t held = 0, running = 0;
    const facct_grant *in = NULL;
    int64_t left = fsm_grant_left(&f, "lab", mid + 40000, &running, &held, &in);
    CHECK(in == &f.acct.grants[1] && left == 1000000 - 75000 && running == 0 && held == 0);
    fsm_ask ask = {.account = "lab",
                   .nodes = 1,
                   .gpus_per_node = 4,
                   .cpus_per_node = 1,
                   .gpu_model = "",
                   .time_limit_s = 3600};
    char why[300];
    /* 4 GPUs x 3600 s x 2: more than any grant gives: never. */
    CHECK(fsm_allocation_check(&f, &ask, mid + 40000, why, sizeof why) == -1 && strstr(why, "worst case"));
    ask.time_limit_s = 100; /* 4 x 100 s x 2 + 0.5 x 100 s = 850,000: fits 925,000 */
    CHECK(fsm_allocation_check(&f, &ask, mid + 40000, why, sizeof why) == 0);
    /* Running jobs hold their worst case. */
    uint64_t big = submit(&f, mid + 40000, "lab", 4, 1, 100);
    start(&f, mid + 40000, big, "g1", 0, 4);
    CHECK(fsm_allocation_check(&f, &ask, mid + 40000, why, sizeof why) == 1);
    CHECK_EQ_STR(why, "AllocationExhausted");
    /* An account without grants is not limited. */
    ask.account = "other";
    CHECK(fsm_allocation_check(&f, &ask, mid + 40000, why, sizeof why) == 0);
    fsm_free(&f);
}

TEST(fsm_ended_jobs_are_forgotten_after_jobs_keep_and_snapshots_keep_the_rest)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, T0, "g1", 8, "H100");
    policy(&f, T0, false, false); /* jobs_keep 1 minute */
    grant(&f, T0, "lab", T0, T0 + 86400000, 3600000);
    uint64_t a = submit(&f, T0, "lab", 1, 1, 3600);
    uint64_t b = submit(&f, T0, "lab", 1, 1, 3600);
    start(&f, T0, a, "g1", 0, 1);
    fsm_step_end(&f, T0 + 1000, a, 0, "g1", JAZARI__JOB_STATE__JOB_COMPLETED, 0, NULL);
    start(&f, T0 + 30000, b, "g1", 1, 1);
    fsm_step_end(&f, T0 + 40000, b, 0, "g1", JAZARI__JOB_STATE__JOB_FAILED, 1, NULL);
    /* Snapshot and restore: usage, runs, grants; the history gets all again. */
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    CHECK(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    CHECK(g.n_out_jobs == 2 && g.n_out_runs == 2);
    CHECK(fsm_job_get(&g, a)->usage->gpu_ms == 1000 && fsm_job_get(&g, b)->runs[0]->gpu_ms == 10000);
    CHECK(g.acct.n_grants == 1 && g.acct.grants[0].used_ms == f.acct.grants[0].used_ms);
    CHECK(facct_policy_same(&g.acct, f.acct.pol));
    buf snap2 = BUF_INIT;
    fsm_snapshot(&g, &snap2);
    CHECK(snap2.len == snap.len && memcmp(snap2.data, snap.data, snap.len) == 0);
    /* A minute after its end, a is forgotten (b, ended later, is not yet). */
    node_up(&f, T0 + 61000, "g2", 1, "H100");
    CHECK(fsm_job_get(&f, a) == NULL && fsm_job_get(&f, b) != NULL);
    node_up(&f, T0 + 100000, "g3", 1, "H100");
    CHECK(fsm_job_get(&f, b) == NULL && f.n_jobs == 0);
    /* ... and in the restored state alike. */
    node_up(&g, T0 + 100000, "g3", 1, "H100");
    CHECK(g.n_jobs == 0);
    buf_free(&snap);
    buf_free(&snap2);
    fsm_free(&g);
    fsm_free(&f);
}

TEST(fsm_a_reservation_is_charged_for_its_window)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, T0, "g1", 8, "H100");
    policy(&f, T0, false, false);
    Jazari__ReservationPart part = JAZARI__RESERVATION_PART__INIT, *pp = &part;
    part.node = "g1";
    part.gpus = 4;
    Jazari__Reservation r = JAZARI__RESERVATION__INIT;
    r.name = "train";
    r.account = "startup";
    r.start_ms = T0 + 1000;
    r.end_ms = T0 + 1000 + 3600000;
    r.parts = &pp;
    r.n_parts = 1;
    r.gpus = 4;
    Jazari__ReserveCmd rc = JAZARI__RESERVE_CMD__INIT;
    rc.reservation = &r;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_RESERVE;
    c.reserve = &rc;
    fsm_step_apply(&f, T0, &c);
    CHECK_EQ_INT(f.n_resv, 1);
    CHECK_EQ_INT(f.acct.n_resv, 0);
    /* Unused, its window ends: 4 GPU-hours of H100 at 36.00. */
    node_up(&f, T0 + 2 * 3600000, "g2", 1, "H100");
    CHECK_EQ_INT(f.n_resv, 0);
    CHECK_EQ_INT(f.acct.n_resv, 1);
    CHECK_EQ_INT(f.out_resv, 1);
    const Jazari__ResvCharge *ch = f.acct.resv[0];
    CHECK_EQ_STR(ch->name, "train");
    CHECK_EQ_STR(ch->account, "startup");
    CHECK(ch->gpu_ms == 4ull * 3600000 && ch->cost_micro == 144000000 && ch->end_ms == T0 + 1000 + 3600000);
    fsm_free(&f);
}

TEST(policy_accounting_lines)
{
    pol p;
    pol_init(&p);
    const char *text = "currency MAD\n"
                       "rate H100 2\n"
                       "rate cpu 0.063\n"
                       "price H100 45.50\n"
                       "price * 12\n"
                       "charge preempted=no lost=yes\n"
                       "jobs_keep 2h\n"
                       "history_retention 1830d\n";
    char err[300];
    CHECK(pol_parse(&p, "p", text, strlen(text), err, sizeof err) == 0);
    CHECK_EQ_STR(p.currency, "MAD");
    CHECK_EQ_INT(p.minor_digits, 2);
    CHECK_EQ_INT(p.n_rates, 3);
    CHECK(p.rates[0].charge_milli == 2000 && p.rates[0].price_micro == 45500000 && p.rates[0].has_price);
    CHECK(p.rates[1].charge_milli == 63 && p.rates[1].has_rate && !p.rates[1].has_price);
    CHECK(p.free_preempted && p.charge_lost);
    CHECK(p.jobs_keep_ms == 7200000 && p.history_retention_ms == 1830ll * 86400000);
    pol_free(&p);
    static const char *const bad[] = {
        "currency M$D\n",
        "currency MAD 9\n",
        "rate H100 two\n",
        "rate H100 1.2345\n",
        "price H100 -3\n",
        "price H100 1.1234567\n",
        "rate H100 2\nrate h100 3\n",
        "charge preempted=maybe\n",
        "jobs_keep 10s\n",
        "history_retention 2h\n",
        "rate a/b 1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pol_init(&p);
        if (pol_parse(&p, "p", bad[i], strlen(bad[i]), err, sizeof err) == 0)
            test_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
        CHECK(strstr(err, "p:") == err);
        pol_free(&p);
    }
}

/* test_fsm_policy.c - the replicated side of the site policy: fair-share
 * usage and its decay, preemption (PREEMPTED, then PENDING), reservations
 * and where they go; the leader's pass deciding preemptions. */
#include <math.h>
#include <stdlib.h>

#include "daemon/raft/fsm.h"
#include "daemon/sched/resv.h"
#include "daemon/sched/sched.h"
#include "fsm_steps.h"
#include "lib/hw/topo_pb.h"
#include "test.h"

static const char *up_site = "rabat"; /* where up_in's nodes are */

static void up_in(fsm *f, int64_t t, const char *name, unsigned gpus, const char *group, const char *labels)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    tp.n_gpus = gpus;
    tp.gpus = calloc(gpus, sizeof *tp.gpus);
    tp.links = calloc(gpus * gpus, sizeof *tp.links);
    for (unsigned i = 0; i < gpus; i++) {
        tp.gpus[i].index = i;
        tp.gpus[i].numa = -1;
        tp.gpus[i].model = "H100";
        tp.gpus[i].memory_bytes = 80ull << 30;
    }
    Jazari__NodeRecord r = JAZARI__NODE_RECORD__INIT;
    r.name = (char *)name;
    r.site = (char *)up_site;
    r.address = "127.0.0.1:7070";
    r.group = (char *)group;
    r.labels = (char *)labels;
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

static void up(fsm *f, int64_t t, const char *name, unsigned gpus)
{
    up_in(f, t, name, gpus, "", "");
}

static void submit(fsm *f, int64_t t, const char *account, const char *qos, uint32_t gpus, const char *resv)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    char *argv[] = {"true"};
    spec.argv = argv;
    spec.n_argv = 1;
    spec.gpus_per_node = gpus;
    spec.account = (char *)account;
    spec.qos = (char *)qos;
    spec.reservation = (char *)resv;
    if (*resv)
        spec.time_limit_s = 60; /* a reservation's job must end by its end */
    fsm_step_submit(f, t, &spec);
}

static void pass(fsm *f, sched_state *st, int64_t t, size_t *starts, size_t *preempts)
{
    fsm_step_pass(f, st, t, starts, preempts, NULL);
}

static void end(fsm *f, int64_t t, uint64_t id, uint32_t attempt, const char *node, Jazari__JobState st)
{
    fsm_step_end(f, t, id, attempt, node, st, 0, NULL);
}

static void reserve(fsm *f, int64_t t, const char *name, const char *account, int64_t from, int64_t to,
                    const resv_part *parts, int n)
{
    Jazari__ReservationPart rp[8], *ptrs[8];
    for (int i = 0; i < n; i++) {
        jazari__reservation_part__init(&rp[i]);
        rp[i].node = f->nodes[parts[i].node].name;
        rp[i].gpus = parts[i].gpus;
        ptrs[i] = &rp[i];
    }
    Jazari__Reservation r = JAZARI__RESERVATION__INIT;
    r.name = (char *)name;
    r.account = (char *)account;
    r.start_ms = from;
    r.end_ms = to;
    r.parts = ptrs;
    r.n_parts = (size_t)n;
    Jazari__ReserveCmd rc = JAZARI__RESERVE_CMD__INIT;
    rc.reservation = &r;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_RESERVE;
    c.reserve = &rc;
    fsm_step_apply(f, t, &c);
}

TEST(fsm_charges_gpu_seconds_decayed_by_the_half_life)
{
    fsm f;
    fsm_init(&f);
    f.half_life_ms = 100000;
    up(&f, 1, "a", 8);
    submit(&f, 2, "um6p/nlp", "", 2, "");
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t s, pr;
    pass(&f, &st, 1000, &s, &pr);
    REQUIRE(s == 1);
    end(&f, 11000, 1, 0, "a", JAZARI__JOB_STATE__JOB_COMPLETED);
    REQUIRE(f.n_usage == 1);
    CHECK_EQ_STR(f.usage[0].path, "um6p/nlp/amina");
    CHECK_EQ_INT(fsm_usage_at(&f, &f.usage[0], 11000), 20000); /* 2 GPUs x 10 s, in GPU-ms */
    CHECK_EQ_INT(fsm_usage_at(&f, &f.usage[0], 111000), 10000);
    /* A second run decays the first to its end, then adds. */
    submit(&f, 111000, "um6p/nlp", "", 1, "");
    pass(&f, &st, 111000, &s, &pr);
    end(&f, 121000, 2, 0, "a", JAZARI__JOB_STATE__JOB_COMPLETED);
    /* Integers: within 2e-5 of 20 s x 2^-1.1 + 10 s. */
    CHECK(fabs((double)fsm_usage_at(&f, &f.usage[0], 121000) - (20000.0 * exp2(-1.1) + 10000.0)) < 0.5);
    /* Kept by snapshots, with reservations. */
    resv_part part = {0, 4};
    reserve(&f, 122000, "r1", "startup", 200000, 300000, &part, 1);
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    g.half_life_ms = 100000;
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    REQUIRE(g.n_usage == 1 && g.n_resv == 1);
    CHECK_EQ_INT(fsm_usage_at(&g, &g.usage[0], 121000), fsm_usage_at(&f, &f.usage[0], 121000));
    CHECK(fsm_resv_get(&g, "r1") && fsm_resv_get(&g, "r1")->parts[0].gpus == 4);
    CHECK(fsm_resv_member(fsm_resv_get(&g, "r1"), "startup/train", "x"));
    CHECK(!fsm_resv_member(fsm_resv_get(&g, "r1"), "startupx", "x"));
    /* A reservation past its end goes at the next entry. */
    submit(&f, 300000, "uir", "", 0, "");
    CHECK(fsm_resv_get(&f, "r1") == NULL);
    buf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

TEST(sched_preempts_the_lower_qos_then_the_victim_comes_back)
{
    pol p;
    pol_init(&p);
    const char *text = "qos scavenger preemptible\nqos high priority=100 preempt=normal grace=30s\n";
    char err[200];
    REQUIRE(pol_parse(&p, "t", text, strlen(text), err, sizeof err) == 0);
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 4);
    sched_state st = {.policy = {.order = PLAN_PRIORITY, .backfill = true, .by_rank = true}, .pol = &p};
    size_t s, pr;
    submit(&f, 2, "", "", 4, "");
    pass(&f, &st, 1000, &s, &pr);
    REQUIRE(s == 1);
    submit(&f, 2000, "", "high", 4, "");
    pass(&f, &st, 2000, &s, &pr);
    CHECK(s == 0 && pr == 1);
    const fsm_job *victim = fsm_job_get(&f, 1);
    CHECK(victim->state == JAZARI__JOB_STATE__JOB_RUNNING && victim->preempt_ms == 2000 &&
          victim->preempt_grace_s == 30);
    CHECK(strstr(victim->reason, "Preempted by job 2 (high)") != NULL);
    CHECK(st.head == 2 && st.preemptor == 2);
    /* While it stops, nothing more is preempted or started. */
    pass(&f, &st, 3000, &s, &pr);
    CHECK(s == 0 && pr == 0);
    end(&f, 4000, 1, 0, "a", JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK(victim->state == JAZARI__JOB_STATE__JOB_PENDING && victim->attempt == 1 &&
          victim->preemptions == 1);
    CHECK(victim->preempt_ms == 0 && victim->n_allocs == 0);
    pass(&f, &st, 4000, &s, &pr);
    CHECK(s == 1 && fsm_job_get(&f, 2)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    /* The same QoS does not preempt its own kind. */
    submit(&f, 5000, "", "high", 4, "");
    pass(&f, &st, 5000, &s, &pr);
    CHECK(s == 0 && pr == 0);
    fsm_free(&f);
    pol_free(&p);
}

TEST(sched_a_reservations_job_preempts_scavengers_on_its_gpus)
{
    pol p;
    pol_init(&p);
    const char *text = "qos scavenger preemptible\n";
    char err[200];
    REQUIRE(pol_parse(&p, "t", text, strlen(text), err, sizeof err) == 0);
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    resv_part part = {0, 4};
    reserve(&f, 2, "r1", "startup", 1000, 1000000, &part, 1);
    sched_state st = {.policy = {.order = PLAN_PRIORITY, .backfill = true, .by_rank = true}, .pol = &p};
    size_t s, pr;
    submit(&f, 3, "uir", "scavenger", 8, ""); /* 1: all 8, 4 of them reserved and idle */
    pass(&f, &st, 2000, &s, &pr);
    CHECK(s == 1);
    submit(&f, 3000, "uir", "", 1, "");             /* 2: no scavenger: waits (no limit: overlaps r1) */
    submit(&f, 3000, "startup/train", "", 4, "r1"); /* 3 */
    pass(&f, &st, 3000, &s, &pr);
    CHECK(s == 0 && pr == 1 && fsm_job_get(&f, 1)->preempt_ms == 3000);
    CHECK(strstr(fsm_job_get(&f, 1)->reason, "its reservation") != NULL);
    end(&f, 4000, 1, 0, "a", JAZARI__JOB_STATE__JOB_CANCELLED);
    pass(&f, &st, 4000, &s, &pr);
    CHECK(fsm_job_get(&f, 3)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK(fsm_job_get(&f, 2)->state == JAZARI__JOB_STATE__JOB_RUNNING); /* the 4 unreserved */
    fsm_free(&f);
    pol_free(&p);
}

TEST(resv_pick_fills_idle_roomy_nodes_and_counts_other_reservations)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    up(&f, 2, "b", 8);
    resv_part out[2];
    char err[200];
    resv_ask ask = {.gpus = 4, .start_ms = 1000, .end_ms = 5000};
    REQUIRE(resv_pick(&f, &ask, out, err, sizeof err) == 1);
    CHECK(out[0].node == 0 && out[0].gpus == 4);
    reserve(&f, 3, "one", "x", 1000, 5000, out, 1);
    /* 12 more: b whole, then the 4 left on a. */
    ask.gpus = 12;
    REQUIRE(resv_pick(&f, &ask, out, err, sizeof err) == 2);
    CHECK(out[0].node == 1 && out[0].gpus == 8 && out[1].node == 0 && out[1].gpus == 4);
    /* Too many, or whole nodes where something is kept: refused, saying
     * how much there is. */
    ask.gpus = 13;
    CHECK(resv_pick(&f, &ask, out, err, sizeof err) == -1 && strstr(err, "12 free") != NULL);
    resv_ask whole = {.nodes = 2, .start_ms = 2000, .end_ms = 3000};
    CHECK(resv_pick(&f, &whole, out, err, sizeof err) == -1 && strstr(err, "2 whole nodes") != NULL);
    /* After the window, all is free again; a model no node has, nothing. */
    whole.start_ms = 5000;
    whole.end_ms = 6000;
    CHECK(resv_pick(&f, &whole, out, err, sizeof err) == 2);
    resv_ask v100 = {.gpus = 1, .gpu_model = "V100", .start_ms = 1000, .end_ms = 2000};
    CHECK(resv_pick(&f, &v100, out, err, sizeof err) == -1);
    fsm_free(&f);
}

static void submit_gang(fsm *f, int64_t t, uint32_t nodes, const char *constraint)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    char *argv[] = {"true"};
    spec.argv = argv;
    spec.n_argv = 1;
    spec.nodes = nodes;
    spec.gpus_per_node = 8;
    spec.constraint = (char *)constraint;
    char err[200];
    if (fsm_validate_spec(f, &spec, err, sizeof err) != 0)
        test_fail(__FILE__, __LINE__, "%s", err);
    fsm_step_submit(f, t, &spec);
}

static const char *node_of(const fsm *f, uint64_t id, uint32_t part)
{
    const fsm_job *j = fsm_job_get(f, id);
    return j && part < j->n_allocs ? j->allocs[part].node : "";
}

TEST(sched_gangs_stay_in_one_group_and_constraints_pick_labelled_nodes)
{
    fsm f;
    fsm_init(&f);
    up_in(&f, 1, "a", 8, "sw1", "ib");
    up_in(&f, 2, "b", 8, "sw2", "");
    up_in(&f, 3, "c", 8, "sw1", "ib,nvme");
    up_in(&f, 4, "d", 8, "sw2", "nvme");
    up_in(&f, 5, "e", 8, "sw3", "");
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t s, pr;
    /* Labels: only nodes that have them all. */
    submit_gang(&f, 10, 1, "ib,nvme");
    pass(&f, &st, 1000, &s, &pr);
    CHECK(s == 1 && strcmp(node_of(&f, 1, 0), "c") == 0);
    /* A 2-node gang: both parts behind one switch (sw2: sw1 has one node left). */
    submit_gang(&f, 11, 2, "");
    pass(&f, &st, 1001, &s, &pr);
    REQUIRE(s == 1);
    const fsm_node *x = fsm_node_get(&f, node_of(&f, 2, 0)), *y = fsm_node_get(&f, node_of(&f, 2, 1));
    REQUIRE(x && y);
    CHECK(x->group && y->group && strcmp(x->group, "sw2") == 0 && strcmp(y->group, "sw2") == 0);
    /* No group holds 3 free nodes: it spreads rather than waits. */
    for (uint64_t id = 1; id <= 2; id++)
        for (uint32_t p = 0; p < fsm_job_get(&f, id)->n_allocs; p++)
            end(&f, 2000, id, 0, node_of(&f, id, p), JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK_EQ_INT(f.n_running, 0);
    submit_gang(&f, 2001, 3, "");
    pass(&f, &st, 2001, &s, &pr);
    CHECK(s == 1 && fsm_job_get(&f, 3)->n_allocs == 3);
    /* A label no node has is refused at submit. */
    Jazari__JobSpec bad = JAZARI__JOB_SPEC__INIT;
    char *argv[] = {"true"};
    bad.argv = argv;
    bad.n_argv = 1;
    bad.constraint = "ib,gpu-direct";
    char err[200];
    CHECK(fsm_validate_spec(&f, &bad, err, sizeof err) == -1);
    CHECK(strstr(err, "--constraint ib,gpu-direct: no node has all these labels") != NULL);
    fsm_free(&f);
}

static void preempt(fsm *f, int64_t t, uint64_t id, uint32_t attempt)
{
    Jazari__PreemptCmd pc = JAZARI__PREEMPT_CMD__INIT;
    pc.id = id;
    pc.attempt = attempt;
    pc.grace_s = 5;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_PREEMPT;
    c.preempt = &pc;
    fsm_step_apply(f, t, &c);
}

/* A gang whose part on a completed before the preemption: only b must
 * report; then the whole job goes back to the queue. */
TEST(fsm_preempted_gang_requeues_once_its_running_parts_end)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    up(&f, 2, "b", 8);
    submit_gang(&f, 3, 2, "");
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t s, pr;
    pass(&f, &st, 1000, &s, &pr);
    REQUIRE(s == 1);
    end(&f, 2000, 1, 0, node_of(&f, 1, 0), JAZARI__JOB_STATE__JOB_COMPLETED);
    preempt(&f, 3000, 1, 0);
    CHECK(fsm_job_get(&f, 1)->state == JAZARI__JOB_STATE__JOB_RUNNING && fsm_job_get(&f, 1)->preempt_ms);
    end(&f, 4000, 1, 0, node_of(&f, 1, 1), JAZARI__JOB_STATE__JOB_CANCELLED);
    const fsm_job *j = fsm_job_get(&f, 1);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->attempt == 1 && j->preemptions == 1);
    CHECK(f.n_running == 0 && f.n_ready == 1 && f.n_active == 1);
    /* A preemption of another run is ignored. */
    preempt(&f, 5000, 1, 0);
    CHECK(fsm_job_get(&f, 1)->preempt_ms == 0);
    fsm_free(&f);
}

TEST(fsm_half_life_is_replicated_and_reservations_cannot_double_book)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    Jazari__PolicyCmd pc = JAZARI__POLICY_CMD__INIT;
    pc.half_life_ms = 3600000;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_POLICY;
    c.policy = &pc;
    fsm_step_apply(&f, 2, &c);
    CHECK_EQ_INT(f.half_life_ms, 3600000);
    pc.half_life_ms = 5; /* out of bounds: ignored the same way everywhere */
    fsm_step_apply(&f, 3, &c);
    CHECK_EQ_INT(f.half_life_ms, 3600000);
    /* Two reservations decided on the same view: the second does not fit. */
    resv_part six = {0, 6};
    reserve(&f, 4, "first", "x", 10000, 20000, &six, 1);
    reserve(&f, 5, "second", "y", 15000, 30000, &six, 1);
    CHECK(fsm_resv_get(&f, "first") && !fsm_resv_get(&f, "second"));
    reserve(&f, 6, "after", "y", 20000, 30000, &six, 1); /* no overlap: fine */
    CHECK(fsm_resv_get(&f, "after") != NULL);
    /* Its waiting jobs end with it. */
    submit(&f, 7, "x", "", 1, "first");
    CHECK(f.n_ready == 1);
    submit(&f, 20000, "x", "", 0, ""); /* an entry after its end */
    CHECK(!fsm_resv_get(&f, "first") && fsm_job_get(&f, 1)->state == JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK_EQ_STR(fsm_job_get(&f, 1)->reason, "reservation first ended");
    CHECK(f.n_ready == 1 && f.n_active == 1);
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    CHECK_EQ_INT(g.half_life_ms, 3600000);
    buf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

/* A job requeued after its reservation ended, or submitted in one deleted
 * meanwhile, can never run: it ends. A released cancelled job changes
 * nothing. */
TEST(fsm_jobs_of_a_gone_reservation_end_and_releases_touch_only_pending_jobs)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    resv_part four = {0, 4};
    reserve(&f, 2, "r", "x", 1000, 100000, &four, 1);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t s, pr;
    submit(&f, 3, "x", "", 4, "r");
    pass(&f, &st, 2000, &s, &pr);
    REQUIRE(s == 1);
    Jazari__UnreserveCmd uc = JAZARI__UNRESERVE_CMD__INIT;
    uc.name = "r";
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_UNRESERVE;
    c.unreserve = &uc;
    fsm_step_apply(&f, 3000, &c);
    CHECK(fsm_job_get(&f, 1)->state == JAZARI__JOB_STATE__JOB_RUNNING);   /* runs on */
    end(&f, 4000, 1, 0, "a", JAZARI__JOB_STATE__JOB_NODE_FAIL);           /* lost: requeued... */
    CHECK(fsm_job_get(&f, 1)->state == JAZARI__JOB_STATE__JOB_CANCELLED); /* ...into nothing */
    CHECK_EQ_STR(fsm_job_get(&f, 1)->reason, "reservation r ended");
    submit(&f, 5000, "x", "", 1, "r"); /* checked by the leader before the unreserve */
    CHECK(fsm_job_get(&f, 2)->state == JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK(f.n_ready == 0 && f.n_active == 0 && f.n_running == 0);
    Jazari__CancelCmd rel = JAZARI__CANCEL_CMD__INIT;
    uint64_t id = 2;
    rel.ids = &id;
    rel.n_ids = 1;
    rel.admin = true;
    c.cmd_case = JAZARI__COMMAND__CMD_RELEASE;
    c.release = &rel;
    fsm_step_apply(&f, 6000, &c);
    CHECK(f.n_ready == 0);
    fsm_free(&f);
}

/* A held job of user's asking each GPU for mem bytes (a kind of its own). */
static void submit_kind(fsm *f, int64_t t, const char *user, uint64_t mem)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.account = "x";
    spec.hold = true;
    spec.min_gpu_mem = mem;
    fsm_step_submit_as(f, t, &spec, user);
}

static void cancel_one(fsm *f, int64_t t, uint64_t id)
{
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    cc.ids = &id;
    cc.n_ids = 1;
    cc.admin = true;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_CANCEL;
    c.cancel = &cc;
    fsm_step_apply(f, t, &c);
}

TEST(sched_why_is_one_pass_per_state_and_second)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    for (uint64_t i = 0; i < 50; i++)
        submit_kind(&f, 2, "amina", (i + 1) << 20);
    plan_policy policy = {.order = PLAN_FCFS, .backfill = true};
    uint64_t before = sched_why_passes();
    /* Many requests in one second of one state: one pass. */
    const sched_why *w = sched_why_get(&f, NULL, &policy, 5000);
    for (int i = 0; i < 100; i++)
        CHECK(sched_why_get(&f, NULL, &policy, 5000 + i) == w);
    CHECK_EQ_INT(sched_why_passes() - before, 1);
    CHECK_EQ_STR(sched_why_job(w, 7, NULL), "Held");
    /* The next second: another (a reservation may begin, usage decays). */
    sched_why_get(&f, NULL, &policy, 6000);
    CHECK_EQ_INT(sched_why_passes() - before, 2);
    /* A change of the state: another, which says what changed. */
    cancel_one(&f, 6100, 7);
    CHECK(f.memo == NULL); /* dropped before the change */
    w = sched_why_get(&f, NULL, &policy, 6200);
    CHECK_EQ_INT(sched_why_passes() - before, 3);
    CHECK(sched_why_job(w, 7, NULL) == NULL); /* not pending any more */
    CHECK_EQ_STR(sched_why_job(w, 8, NULL), "Held");
    fsm_free(&f); /* frees the memo (ASan says so) */
}

TEST(fsm_counts_the_kinds_of_each_users_waiting_and_running_jobs)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    for (uint64_t i = 0; i < 5; i++)
        submit_kind(&f, 2, "amina", (i + 1) << 20);
    submit_kind(&f, 2, "amina", 1 << 20); /* a kind she has */
    submit_kind(&f, 2, "bilal", 1 << 20); /* hers too, his own count */
    CHECK_EQ_INT(fsm_user_get(&f, "amina")->classes, 5);
    CHECK_EQ_INT(fsm_user_get(&f, "bilal")->classes, 1);
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.account = "x";
    spec.min_gpu_mem = 1 << 20;
    CHECK_EQ_INT(fsm_user_classes_with(&f, "amina", &spec), 5);
    CHECK_EQ_INT(fsm_user_classes_with(&f, "chen", &spec), 1);
    spec.min_gpu_mem = 9 << 20;
    CHECK_EQ_INT(fsm_user_classes_with(&f, "amina", &spec), 6);
    spec.min_gpu_mem = 2 << 20;
    spec.account = "y"; /* another account: another kind */
    CHECK_EQ_INT(fsm_user_classes_with(&f, "amina", &spec), 6);
    /* A kind is hers while one of its jobs waits or runs. */
    cancel_one(&f, 3, 1);
    CHECK_EQ_INT(fsm_user_get(&f, "amina")->classes, 5); /* job 6 is of it */
    cancel_one(&f, 3, 6);
    CHECK_EQ_INT(fsm_user_get(&f, "amina")->classes, 4);
    CHECK_EQ_INT(fsm_user_get(&f, "bilal")->classes, 1);
    /* A snapshot restored counts the same. */
    buf b = BUF_INIT;
    fsm_snapshot(&f, &b);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, b.data, b.len, err, sizeof err) == 0);
    CHECK_EQ_INT(fsm_user_get(&g, "amina")->classes, 4);
    CHECK_EQ_INT(fsm_user_get(&g, "bilal")->classes, 1);
    buf_free(&b);
    fsm_free(&g);
    fsm_free(&f);
}

static bool sees_none(void *arg, const fsm_job *j)
{
    (void)arg;
    return strcmp(j->user, "amina") != 0;
}

TEST(fsm_a_dependency_on_a_job_not_seen_reads_as_one_never_issued)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8);
    submit_kind(&f, 2, "amina", 0); /* job 1 */
    char *argv[] = {"true"};
    uint64_t dep = 1, never = 2;
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.after_ok = &never;
    spec.n_after_ok = 1;
    char err[256], nothing[256];
    REQUIRE(fsm_validate_spec_for(&f, &spec, sees_none, NULL, nothing, sizeof nothing) == -1);
    CHECK_EQ_STR(nothing, "--after-ok 2: no such job");
    spec.after_ok = &dep;
    CHECK(fsm_validate_spec(&f, &spec, err, sizeof err) == 0); /* for the state alone, it exists */
    REQUIRE(fsm_validate_spec_for(&f, &spec, sees_none, NULL, err, sizeof err) == -1);
    CHECK_EQ_STR(err, "--after-ok 1: no such job");
    spec.after_ok = NULL;
    spec.n_after_ok = 0;
    spec.after_any = &dep;
    spec.n_after_any = 1;
    REQUIRE(fsm_validate_spec_for(&f, &spec, sees_none, NULL, err, sizeof err) == -1);
    CHECK_EQ_STR(err, "--after-any 1: no such job");
    fsm_free(&f);
}

TEST(sched_thousands_of_kinds_each_get_their_nodes)
{
    /* Kinds are found by key (a list made a pass quadratic in them): each
     * still gets the nodes it fits. */
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 8); /* 80 GB GPUs */
    for (uint64_t i = 0; i < 3000; i++)
        submit_kind(&f, 2, "amina", (i + 1) << 20);
    submit_kind(&f, 2, "amina", 81ull << 30); /* more than any GPU here has */
    sched_view sv;
    sched_view_build(&f, NULL, 3000, &sv);
    REQUIRE(sv.v.n_jobs == 3001);
    CHECK_EQ_INT(sv.masks.n, 3001);
    for (size_t i = 0; i < 3000; i++)
        CHECK(sv.v.jobs[i].allowed && sv.v.jobs[i].allowed[0]);
    CHECK(sv.v.jobs[3000].allowed && !sv.v.jobs[3000].allowed[0]);
    sched_view_free(&sv, &f);
    fsm_free(&f);
}

/* The policy's latency lines reach the leader's plan: a gang no site can
 * hold, allowed to span (span_sites yes), takes the best-connected sites
 * (casa and rabat, 8ms apart) rather than the largest (dakhla, far from
 * both); without the lines, the largest first as before. */
TEST(sched_a_spanning_gang_takes_the_best_connected_sites)
{
    static const char *const sites = "site dakhla\nsite casa\nsite rabat\nspan_sites yes\n";
    static const char *const lat =
        "latency casa rabat 8ms\nlatency dakhla casa 40ms\nlatency dakhla rabat 45ms\n";
    for (int with = 0; with < 2; with++) {
        char text[512], err[256] = "";
        snprintf(text, sizeof text, "%s%s", sites, with ? lat : "");
        pol p;
        pol_init(&p);
        REQUIRE(pol_parse(&p, "t", text, strlen(text), err, sizeof err) == 0);
        fsm f;
        fsm_init(&f);
        static const char *const name[] = {"d1", "d2", "d3", "c1", "c2", "r1", "r2"};
        static const char *const at[] = {"dakhla", "dakhla", "dakhla", "casa", "casa", "rabat", "rabat"};
        for (int i = 0; i < 7; i++) {
            up_site = at[i];
            up(&f, 1 + i, name[i], 8);
        }
        up_site = "rabat";
        sched_view sv;
        sched_view_build(&f, &p, 50, &sv);
        CHECK((sv.v.site_rtt != NULL) == with);
        sched_view_free(&sv, &f);
        sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}, .pol = &p};
        submit_gang(&f, 100, 4, "");
        size_t s, pr;
        pass(&f, &st, 1000, &s, &pr);
        REQUIRE(s == 1 && fsm_job_get(&f, 1)->n_allocs == 4);
        int far = 0;
        for (uint32_t k = 0; k < 4; k++)
            far += node_of(&f, 1, k)[0] == 'd';
        CHECK_EQ_INT(far, with ? 0 : 3);
        fsm_free(&f);
        pol_free(&p);
    }
}

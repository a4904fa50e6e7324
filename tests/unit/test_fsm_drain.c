/* test_fsm_drain.c - drains and events in the replicated state (log
 * format 8): who may resume what, what a drain keeps from starting, --now,
 * the events each change leaves, their retention and bound, snapshots. */
#include <stdlib.h>

#include "daemon/raft/codec.h"
#include "daemon/raft/fsm.h"
#include "daemon/sched/sched.h"
#include "fsm_steps.h"
#include "test.h"

static void drain(fsm *f, int64_t t, const char *node, int32_t gpu, bool resume, const char *source, bool now,
                  const char *reason)
{
    Jazari__DrainCmd dc = JAZARI__DRAIN_CMD__INIT;
    dc.node = (char *)node;
    dc.gpu = gpu;
    dc.resume = resume;
    dc.source = (char *)source;
    dc.by = (char *)source;
    dc.now = now;
    dc.reason = (char *)reason;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_DRAIN;
    c.drain = &dc;
    fsm_step_apply(f, t, &c);
}

static void submit_gpus(fsm *f, int64_t t, uint32_t gpus)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.gpus_per_node = gpus;
    fsm_step_submit(f, t, &spec);
}

/* The kinds of the events kept, joined by spaces, into out. */
static const char *kinds(const fsm *f, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < f->events.ring.n && at < len; i++) {
        Jazari__Event *e = edb_get(&f->events, i);
        at += (size_t)snprintf(out + at, len - at, "%s%s", at ? " " : "", e->kind);
        jazari__event__free_unpacked(e, NULL);
    }
    return out;
}

TEST(drain_keeps_new_work_off_and_resume_brings_it_back)
{
    fsm f;
    fsm_init(&f);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    fsm_step_node_up(&f, 1000, "n1", 4);
    const fsm_node *n = fsm_node_get(&f, "n1");
    CHECK_EQ_STR(fsm_node_state(&f, n), "up");
    submit_gpus(&f, 2000, 2);
    size_t starts = 0;
    fsm_step_pass(&f, &st, 3000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 1);
    drain(&f, 4000, "n1", -1, false, "admin", false, "fan");
    n = fsm_node_get(&f, "n1");
    CHECK_EQ_STR(fsm_node_state(&f, n), "draining"); /* its job runs on */
    CHECK(!fsm_node_usable(n));
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    submit_gpus(&f, 5000, 1);
    fsm_step_pass(&f, &st, 6000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 0);
    fsm_step_end(&f, 7000, 1, 0, "n1", JAZARI__JOB_STATE__JOB_COMPLETED, 0, NULL);
    CHECK_EQ_STR(fsm_node_state(&f, n), "drained");
    fsm_step_pass(&f, &st, 8000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 0);
    /* A health check's resume does not undo an admin's drain. */
    drain(&f, 9000, "n1", -1, true, "health", false, "");
    CHECK_EQ_STR(fsm_node_state(&f, n), "drained");
    drain(&f, 9500, "n1", -1, true, "admin", false, "");
    CHECK_EQ_STR(fsm_node_state(&f, n), "up");
    fsm_step_pass(&f, &st, 10000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 1);
    char k[400];
    CHECK_EQ_STR(kinds(&f, k, sizeof k), "node_up node_drain node_resume");
    fsm_free(&f);
}

TEST(a_drained_gpu_takes_no_new_job_and_now_requeues_its_own)
{
    fsm f;
    fsm_init(&f);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    fsm_step_node_up(&f, 1000, "n1", 2);
    submit_gpus(&f, 2000, 1);
    submit_gpus(&f, 2000, 1);
    size_t starts = 0;
    fsm_step_pass(&f, &st, 3000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 2);
    uint32_t g1 = fsm_job_get(&f, 1)->allocs[0].gpus[0];
    /* GPU of job 1 drained now by the health checks: job 1 is requeued
     * (stopping), job 2 runs on; the node stays up. */
    drain(&f, 4000, "n1", (int32_t)g1, false, "health", true, "XID 79");
    const fsm_node *n = fsm_node_get(&f, "n1");
    CHECK_EQ_STR(fsm_node_state(&f, n), "up");
    CHECK(fsm_job_get(&f, 1)->preempt_ms > 0);
    CHECK(fsm_job_get(&f, 2)->preempt_ms == 0);
    fsm_step_end(&f, 5000, 1, 0, "n1", JAZARI__JOB_STATE__JOB_CANCELLED, 143, NULL);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->attempt, 1);
    CHECK_EQ_STR(fsm_drain_state(&f, n, fsm_drain_get(n, (int32_t)g1)), "drained");
    /* Nothing for it: the other GPU is job 2's, the drained one is out. */
    fsm_step_pass(&f, &st, 6000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 0);
    /* An admin's drain of the same GPU takes it over: the health checks'
     * resume then leaves it. */
    drain(&f, 7000, "n1", (int32_t)g1, false, "admin", false, "RMA");
    drain(&f, 8000, "n1", (int32_t)g1, true, "health", false, "");
    CHECK(fsm_drain_get(n, (int32_t)g1) != NULL);
    CHECK_EQ_STR(fsm_drain_get(n, (int32_t)g1)->reason, "RMA");
    /* An automatic drain never replaces an admin's. */
    drain(&f, 8500, "n1", (int32_t)g1, false, "health", false, "temp");
    CHECK_EQ_STR(fsm_drain_get(n, (int32_t)g1)->reason, "RMA");
    drain(&f, 9000, "n1", -1, true, "admin", false, ""); /* the node's resume: its GPUs too */
    CHECK_EQ_INT(n->n_drains, 0);
    fsm_step_pass(&f, &st, 10000, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 1);
    /* Out of range: nothing. */
    drain(&f, 11000, "n1", 2, false, "admin", false, "no such GPU");
    drain(&f, 11000, "nosuch", -1, false, "admin", false, "no such node");
    CHECK_EQ_INT(n->n_drains, 0);
    fsm_free(&f);
}

TEST(drains_and_events_survive_a_snapshot_and_events_expire)
{
    fsm f;
    fsm_init(&f);
    fsm_step_node_up(&f, 1000, "n1", 2);
    drain(&f, 2000, "n1", 1, false, "health", false, "ecc");
    drain(&f, 3000, "n1", -1, false, "admin", false, "maintenance");
    Jazari__EventCmd ec = JAZARI__EVENT_CMD__INIT;
    Jazari__Event ev = JAZARI__EVENT__INIT;
    ev.kind = "leader";
    ev.text = "ctl leads (term 2)";
    ev.gpu = -1;
    ec.event = &ev;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_EVENT;
    c.event = &ec;
    fsm_step_apply(&f, 4000, &c);
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    const fsm_node *n = fsm_node_get(&g, "n1");
    REQUIRE(n != NULL);
    CHECK_EQ_INT(n->n_drains, 2);
    CHECK_EQ_STR(fsm_drain_get(n, 1)->source, "health");
    CHECK_EQ_STR(fsm_drain_get(n, -1)->reason, "maintenance");
    CHECK_EQ_INT(fsm_drain_get(n, -1)->since_ms, 3000);
    char a[400], b[400];
    CHECK_EQ_STR(kinds(&g, b, sizeof b), kinds(&f, a, sizeof a));
    CHECK_EQ_STR(a, "node_up gpu_drain node_drain leader");
    /* Numbering goes on where it was. */
    drain(&g, 5000, "n1", -1, true, "admin", false, "");
    Jazari__Event *last = edb_get(&g.events, g.events.ring.n - 1);
    CHECK_EQ_INT(last->seq, 6); /* two resumes: the node's and its GPU's */
    jazari__event__free_unpacked(last, NULL);
    /* Retention: a policy of one minute; an entry two minutes later. */
    Jazari__PolicyCmd pc = JAZARI__POLICY_CMD__INIT;
    pc.half_life_ms = g.half_life_ms;
    pc.events_retention_ms = 60000;
    Jazari__Command p = JAZARI__COMMAND__INIT;
    p.cmd_case = JAZARI__COMMAND__CMD_POLICY;
    p.policy = &pc;
    CHECK_EQ_INT(codec_command_format(&p), 8);
    fsm_step_apply(&g, 6000, &p);
    CHECK_EQ_INT(g.events.retention_ms, 60000);
    fsm_step_node_up(&g, 125000, "n2", 0);
    CHECK_EQ_STR(kinds(&g, b, sizeof b), "node_up");
    buf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

TEST(events_are_bounded_and_their_texts_cut)
{
    edb e;
    edb_init(&e);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < EDB_MAX + 10; i++)
        edb_note(&e, 1000 + i, "health", "warning", "n1", 0, 0, "", i == EDB_MAX + 9 ? big : "hot");
    CHECK_EQ_INT(e.ring.n, EDB_MAX);
    Jazari__Event *first = edb_get(&e, 0), *last = edb_get(&e, e.ring.n - 1);
    CHECK_EQ_INT(first->seq, 11);
    CHECK_EQ_INT(last->seq, EDB_MAX + 10);
    CHECK_EQ_INT(strlen(last->text), EDB_TEXT_MAX);
    jazari__event__free_unpacked(first, NULL);
    jazari__event__free_unpacked(last, NULL);
    edb_free(&e);
}

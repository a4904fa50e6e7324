/* test_fsm_jobops.c - changing jobs in place in the replicated state (log
 * format 7): hold, requeue of running and ended jobs (held or not), update
 * of a pending job's request and of a running job's time limit, cancel of
 * one step; and the estimated start of a job waiting for room. */
#include <stdlib.h>

#include "daemon/raft/codec.h"
#include "daemon/raft/fsm.h"
#include "daemon/raft/fstep.h"
#include "daemon/sched/sched.h"
#include "fsm_steps.h"
#include "lib/hw/topo_pb.h"
#include "test.h"

static void up(fsm *f, int64_t t, const char *name, unsigned cpus)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    tp.pus = cpus;
    tp.cores = cpus;
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
}

/* A job of `cpus` CPUs on one node, with a time limit of limit_s. */
static void submit(fsm *f, int64_t t, uint32_t cpus, uint64_t limit_s)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.cpus_per_task = cpus;
    spec.time_limit_s = limit_s;
    spec.name = "train";
    fsm_step_submit(f, t, &spec);
}

static void ids_cmd(fsm *f, int64_t t, Jazari__Command__CmdCase kind, uint64_t id, bool hold)
{
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    Jazari__RequeueCmd rc = JAZARI__REQUEUE_CMD__INIT;
    cc.ids = rc.ids = &id;
    cc.n_ids = rc.n_ids = 1;
    cc.admin = true;
    rc.hold = hold;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = kind;
    if (kind == JAZARI__COMMAND__CMD_HOLD)
        c.hold = &cc;
    else if (kind == JAZARI__COMMAND__CMD_RELEASE)
        c.release = &cc;
    else
        c.requeue = &rc;
    fsm_step_apply(f, t, &c);
}

static void end_job(fsm *f, int64_t t, uint64_t id, uint32_t attempt, Jazari__JobState st)
{
    fsm_step_end(f, t, id, attempt, "a", st, 0, NULL);
}

TEST(codec_job_operations_need_format_7)
{
    CHECK_EQ_INT(CODEC_FORMAT, 10);
    CHECK_EQ_INT(codec_cmd_format(JAZARI__COMMAND__CMD_HOLD), 7);
    CHECK_EQ_INT(codec_cmd_format(JAZARI__COMMAND__CMD_REQUEUE), 7);
    CHECK_EQ_INT(codec_cmd_format(JAZARI__COMMAND__CMD_UPDATE), 7);
    CHECK_EQ_INT(codec_cmd_format(JAZARI__COMMAND__CMD_STEP_CANCEL), 7);
    /* An entry of format 6 cannot hold one: refused whole. */
    uint64_t id = 1;
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    cc.ids = &id;
    cc.n_ids = 1;
    Jazari__Command c = JAZARI__COMMAND__INIT, *cs[] = {&c};
    c.cmd_case = JAZARI__COMMAND__CMD_HOLD;
    c.hold = &cc;
    buf b = BUF_INIT;
    codec_entry_encode(6, 10, cs, 1, &b);
    char err[300];
    Jazari__Entry *e = codec_entry_decode(b.data, b.len, err, sizeof err);
    CHECK(e == NULL && strstr(err, "later format") != NULL);
    buf_free(&b);
}

TEST(fsm_hold_keeps_pending_jobs_only_and_release_undoes_it)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 4);
    submit(&f, 2, 4, 100);
    submit(&f, 3, 4, 100);
    CHECK_EQ_INT(f.n_ready, 2);
    ids_cmd(&f, 4, JAZARI__COMMAND__CMD_HOLD, 2, false);
    const fsm_job *j = fsm_job_get(&f, 2);
    CHECK(j->held && j->state == JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_STR(j->reason, "Held");
    CHECK_EQ_INT(f.n_ready, 1);
    ids_cmd(&f, 5, JAZARI__COMMAND__CMD_HOLD, 2, false); /* twice: once */
    CHECK_EQ_INT(f.n_ready, 1);
    /* The pass starts the other one only. */
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t starts = 0;
    fsm_step_pass(&f, &st, 6, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 1);
    CHECK(fsm_job_get(&f, 1)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    /* A running job is not held. */
    ids_cmd(&f, 7, JAZARI__COMMAND__CMD_HOLD, 1, false);
    CHECK(!fsm_job_get(&f, 1)->held);
    ids_cmd(&f, 8, JAZARI__COMMAND__CMD_RELEASE, 2, false);
    CHECK(!j->held);
    CHECK_EQ_INT(f.n_ready, 1);
    fsm_free(&f);
}

TEST(fsm_requeue_runs_a_running_or_ended_job_again_as_its_next_attempt)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 4);
    submit(&f, 2, 4, 100);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t starts = 0;
    fsm_step_pass(&f, &st, 10, &starts, NULL, NULL);
    const fsm_job *j = fsm_job_get(&f, 1);
    REQUIRE(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    /* A step of it, forgotten by the requeue. */
    char *argv[] = {"hostname"};
    Jazari__StepRequestSpec s = JAZARI__STEP_REQUEST_SPEC__INIT;
    s.argv = argv;
    s.n_argv = 1;
    s.nodes = 1;
    s.ntasks = 1;
    Jazari__StepCmd sc = JAZARI__STEP_CMD__INIT;
    sc.id = 1;
    sc.spec = &s;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_STEP;
    c.step = &sc;
    fsm_step_apply(&f, 11, &c);
    CHECK_EQ_INT(j->n_steps, 1);

    /* Stopped as a preempted run is: pending once its part has ended. */
    ids_cmd(&f, 20, JAZARI__COMMAND__CMD_REQUEUE, 1, false);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->preempt_ms == 20 && j->attempt == 0);
    CHECK_EQ_STR(j->reason, "Requeued by request");
    CHECK_EQ_INT(f.n_running, 1);
    end_job(&f, 21, 1, 0, JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->attempt == 1 && !j->held);
    CHECK(j->n_allocs == 0 && j->n_steps == 0 && j->steps_started == 0 && j->start_ms == 0);
    CHECK_EQ_INT(f.n_running, 0);
    CHECK_EQ_INT(f.n_ready, 1);
    CHECK_EQ_INT(f.n_active, 1);
    CHECK_EQ_STR(j->reason, "Requeued by request");
    /* The old run's end again changes nothing. */
    end_job(&f, 22, 1, 0, JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->attempt == 1);
    /* A pending job is not requeued. */
    ids_cmd(&f, 22, JAZARI__COMMAND__CMD_REQUEUE, 1, false);
    CHECK_EQ_INT(j->attempt, 1);

    /* Runs again; requeued held while it runs: held through a snapshot,
     * and once pending. */
    fsm_step_pass(&f, &st, 30, &starts, NULL, NULL);
    REQUIRE(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    ids_cmd(&f, 31, JAZARI__COMMAND__CMD_REQUEUE, 1, true);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->held);
    {
        buf snap = BUF_INIT;
        fsm_snapshot(&f, &snap);
        fsm g;
        fsm_init(&g);
        char err[200];
        REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
        CHECK(fsm_job_get(&g, 1)->held && fsm_job_get(&g, 1)->preempt_ms == 31);
        buf_free(&snap);
        fsm_free(&g);
    }
    end_job(&f, 32, 1, 1, JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->attempt == 2 && j->held);
    CHECK_EQ_INT(f.n_ready, 0);
    ids_cmd(&f, 33, JAZARI__COMMAND__CMD_RELEASE, 1, false);
    CHECK_EQ_INT(f.n_ready, 1);

    /* Runs again, completes, and is requeued held. */
    fsm_step_pass(&f, &st, 34, &starts, NULL, NULL);
    REQUIRE(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    end_job(&f, 40, 1, 2, JAZARI__JOB_STATE__JOB_COMPLETED);
    REQUIRE(j->state == JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK_EQ_INT(f.n_active, 0);
    ids_cmd(&f, 50, JAZARI__COMMAND__CMD_REQUEUE, 1, true);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->attempt == 3 && j->held);
    CHECK(j->end_ms == 0 && j->exit_code == 0);
    CHECK_EQ_INT(f.n_active, 1);
    CHECK_EQ_INT(f.n_ready, 0);
    CHECK_EQ_INT(fsm_user_get(&f, "amina")->active, 1);
    /* Requeues asked for are not losses. */
    CHECK_EQ_INT(j->preemptions, 3);
    ids_cmd(&f, 51, JAZARI__COMMAND__CMD_RELEASE, 1, false);
    CHECK_EQ_INT(f.n_ready, 1);

    /* Kept across a snapshot. */
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    CHECK(fsm_job_get(&g, 1)->attempt == 3 && g.n_ready == 1 && g.n_active == 1);
    buf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

static void update(fsm *f, int64_t t, uint64_t id, const Jazari__JobSpec *spec, uint64_t limit,
                   uint32_t attempt)
{
    Jazari__UpdateCmd uc = JAZARI__UPDATE_CMD__INIT;
    uc.id = id;
    uc.spec = (Jazari__JobSpec *)spec;
    uc.time_limit_s = limit;
    uc.attempt = attempt;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_UPDATE;
    c.update = &uc;
    fsm_step_apply(f, t, &c);
}

TEST(fsm_update_replaces_a_pending_request_and_a_running_time_limit)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 4);
    submit(&f, 2, 4, 100);
    submit(&f, 3, 8, 100); /* more CPUs than the node has: never starts as it is */
    const fsm_job *j = fsm_job_get(&f, 2);
    uint32_t before = fsm_user_get(&f, "amina")->classes;
    /* Pending: the new request whole, in another class. */
    char *argv[] = {"true"};
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.cpus_per_task = 2;
    spec.time_limit_s = 50;
    spec.qos = "high";
    update(&f, 4, 2, &spec, 0, 0);
    CHECK(j->cpus_per_node == 2 && j->time_limit_s == 50);
    CHECK_EQ_STR(j->cls->qos, "high");
    CHECK_EQ_INT(fsm_user_get(&f, "amina")->classes, before + 1);
    CHECK_EQ_INT(f.n_active, 2);
    Jazari__JobSpec *back = jazari__job_spec__unpack(NULL, j->spec_len, j->spec);
    REQUIRE(back != NULL);
    CHECK(back->cpus_per_task == 2 && back->time_limit_s == 50);
    jazari__job_spec__free_unpacked(back, NULL);
    /* It fits now, and starts. */
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t starts = 0;
    fsm_step_pass(&f, &st, 10, &starts, NULL, NULL);
    REQUIRE(fsm_job_get(&f, 1)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    /* Running: a new request changes nothing; a time limit does, for its run. */
    const fsm_job *r = fsm_job_get(&f, 1);
    update(&f, 11, 1, &spec, 0, 0);
    CHECK(r->cpus_per_node == 4);
    update(&f, 12, 1, NULL, 30, 7); /* another run's */
    CHECK_EQ_INT(r->time_limit_s, 100);
    update(&f, 13, 1, NULL, 30, 0);
    CHECK_EQ_INT(r->time_limit_s, 30);
    back = jazari__job_spec__unpack(NULL, r->spec_len, r->spec);
    REQUIRE(back != NULL);
    CHECK(back->time_limit_s == 30 && back->cpus_per_task == 4 && strcmp(back->name, "train") == 0);
    jazari__job_spec__free_unpacked(back, NULL);
    /* Ended: nothing. */
    end_job(&f, 20, 1, 0, JAZARI__JOB_STATE__JOB_COMPLETED);
    update(&f, 21, 1, NULL, 10, 0);
    CHECK_EQ_INT(r->time_limit_s, 30);
    fsm_free(&f);
}

TEST(fsm_step_cancel_ends_one_step_and_the_job_goes_on)
{
    fsm f;
    fsm_init(&f);
    up(&f, 1, "a", 4);
    submit(&f, 2, 4, 100);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t starts = 0;
    fsm_step_pass(&f, &st, 10, &starts, NULL, NULL);
    const fsm_job *j = fsm_job_get(&f, 1);
    REQUIRE(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    char *argv[] = {"sleep", "100"};
    Jazari__StepRequestSpec s = JAZARI__STEP_REQUEST_SPEC__INIT;
    s.argv = argv;
    s.n_argv = 2;
    s.nodes = 1;
    s.ntasks = 1;
    Jazari__StepCmd sc = JAZARI__STEP_CMD__INIT;
    sc.id = 1;
    sc.spec = &s;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_STEP;
    c.step = &sc;
    fsm_step_apply(&f, 11, &c);
    fsm_step_apply(&f, 12, &c);
    REQUIRE(j->n_steps == 2);

    Jazari__StepCancelCmd cc = JAZARI__STEP_CANCEL_CMD__INIT;
    cc.id = 1;
    cc.attempt = 0;
    cc.step = 0;
    cc.reason = "cancelled by amina";
    Jazari__Command k = JAZARI__COMMAND__INIT;
    k.cmd_case = JAZARI__COMMAND__CMD_STEP_CANCEL;
    k.step_cancel = &cc;
    fsm_step_apply(&f, 20, &k);
    const Jazari__JobStep *s0 = fstep_find(j, 0);
    CHECK(s0->state == JAZARI__JOB_STATE__JOB_CANCELLED && s0->end_time_ms == 20);
    CHECK_EQ_STR(s0->reason, "cancelled by amina");
    CHECK(s0->spec->n_env == 0);
    CHECK(fstep_find(j, 1)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    /* Its part's report afterwards changes nothing. */
    Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
    ec.id = 1;
    ec.node = "a";
    ec.state = JAZARI__JOB_STATE__JOB_FAILED;
    ec.exit_code = 143;
    ec.step = 1;
    Jazari__Command e = JAZARI__COMMAND__INIT;
    e.cmd_case = JAZARI__COMMAND__CMD_END;
    e.end = &ec;
    fsm_step_apply(&f, 21, &e);
    CHECK(fstep_find(j, 0)->state == JAZARI__JOB_STATE__JOB_CANCELLED);
    /* Another run's cancel, or one of an ended step: nothing. */
    cc.attempt = 3;
    cc.step = 1;
    fsm_step_apply(&f, 22, &k);
    CHECK(fstep_find(j, 1)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    fsm_free(&f);
}

static void up_gpus(fsm *f, int64_t t, const char *name, unsigned gpus)
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

static void submit_gpus(fsm *f, int64_t t, uint32_t gpus, uint64_t limit_s)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.gpus_per_node = gpus;
    spec.time_limit_s = limit_s;
    fsm_step_submit(f, t, &spec);
}

TEST(sched_estimates_when_a_job_waiting_for_room_starts)
{
    fsm f;
    fsm_init(&f);
    up_gpus(&f, 1000, "g", 2);
    submit_gpus(&f, 2000, 2, 100); /* runs from 10 s for 100 s */
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    size_t starts = 0;
    fsm_step_pass(&f, &st, 10000, &starts, NULL, NULL);
    REQUIRE(starts == 1);
    submit_gpus(&f, 11000, 2, 50); /* waits for it: from 110 s */
    submit_gpus(&f, 12000, 2, 50); /* and behind that one */
    submit_gpus(&f, 13000, 2, 50); /* held: not known */
    ids_cmd(&f, 13500, JAZARI__COMMAND__CMD_HOLD, 4, false);
    plan_policy policy = {.order = PLAN_FCFS, .backfill = true};
    sched_why w;
    sched_why_init(&w, &f, NULL, &policy, 20000);
    CHECK_EQ_STR(sched_why_job(&w, 2, NULL), "Resources");
    CHECK_EQ_INT(sched_why_start(&w, 2), 110000);
    CHECK(sched_why_start(&w, 3) >= 110000);
    CHECK_EQ_INT(sched_why_start(&w, 4), 0);
    CHECK_EQ_INT(sched_why_start(&w, 1), 0); /* running */
    sched_why_free(&w);
    fsm_free(&f);
}

TEST(codec_a_submit_of_an_allocation_needs_format_7)
{
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    Jazari__Job job = JAZARI__JOB__INIT;
    job.spec = &spec;
    Jazari__Job *jobs[] = {&job};
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = jobs;
    sc.n_jobs = 1;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    CHECK_EQ_INT(codec_command_format(&c), 1);
    spec.batch = true;
    CHECK_EQ_INT(codec_command_format(&c), 6); /* ends with its first part */
    spec.alloc = true;
    CHECK_EQ_INT(codec_command_format(&c), 7);
    c.cmd_case = JAZARI__COMMAND__CMD_HOLD;
    c.hold = NULL;
    CHECK_EQ_INT(codec_command_format(&c), 7);
}

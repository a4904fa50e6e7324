/* test_fstep.c - job steps in the replicated state: the block
 * distribution, what a step may ask of its job, how its parts' ends make
 * its own, the batch job ending with its first node, and steps kept across
 * a snapshot and forgotten by a requeue. */
#include <stdlib.h>

#include "common/jobspec.h"
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

/* A batch job on two nodes of two tasks each, started. */
static const fsm_job *running_batch(fsm *f, sched_state *st)
{
    up(f, 1, "a", 4);
    up(f, 2, "b", 4);
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.script = "#!/bin/sh\nsrun hostname\n";
    spec.batch = true;
    spec.nodes = 2;
    spec.tasks_per_node = 2;
    fsm_step_submit(f, 10, &spec);
    size_t starts = 0;
    fsm_step_pass(f, st, 20, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 1);
    const fsm_job *j = fsm_job_get(f, 1);
    return j && j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->n_allocs == 2 && j->batch ? j : NULL;
}

static void launch(fsm *f, int64_t t, uint32_t nodes, uint32_t ntasks, const char *cmd)
{
    char *argv[] = {(char *)cmd};
    Jazari__StepRequestSpec s = JAZARI__STEP_REQUEST_SPEC__INIT;
    s.argv = argv;
    s.n_argv = 1;
    s.nodes = nodes;
    s.ntasks = ntasks;
    s.cpus_per_task = 1;
    Jazari__StepCmd sc = JAZARI__STEP_CMD__INIT;
    sc.id = 1;
    sc.spec = &s;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_STEP;
    c.step = &sc;
    fsm_step_apply(f, t, &c);
}

static void part_end(fsm *f, int64_t t, uint32_t step, const char *node, Jazari__JobState st, int code)
{
    Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
    ec.id = 1;
    ec.node = (char *)node;
    ec.state = st;
    ec.exit_code = code;
    ec.step = step;
    ec.reason = code ? "task 0 exited with status 3" : "";
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_END;
    c.end = &ec;
    fsm_step_apply(f, t, &c);
}

TEST(jobspec_block_distribution)
{
    uint32_t count, first;
    jobspec_tasks(5, 2, 0, &count, &first);
    CHECK(count == 3 && first == 0);
    jobspec_tasks(5, 2, 1, &count, &first);
    CHECK(count == 2 && first == 3);
    jobspec_tasks(4, 4, 3, &count, &first);
    CHECK(count == 1 && first == 3);
    jobspec_tasks(4, 0, 0, &count, &first);
    CHECK(count == 0 && first == 0);
}

TEST(fstep_steps_fit_the_allocation_and_end_with_their_last_part)
{
    fsm f;
    fsm_init(&f);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    const fsm_job *j = running_batch(&f, &st);
    REQUIRE(j != NULL);
    char err[300];
    char *argv[] = {"hostname"};
    Jazari__StepRequestSpec s = JAZARI__STEP_REQUEST_SPEC__INIT;
    s.argv = argv;
    s.n_argv = 1;
    s.nodes = 2;
    s.ntasks = 4;
    s.cpus_per_task = 1;
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), 0);
    s.ntasks = 6; /* 3 a node: the job holds 2 CPUs on each */
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);
    CHECK(strstr(err, "3 CPUs") != NULL);
    s.ntasks = 1; /* fewer tasks than nodes */
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);
    s.ntasks = 2;
    s.relative = 1; /* two nodes from the second of two */
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);
    s.relative = 0;
    s.gpus_per_node = 1; /* the job has none */
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);
    s.n_argv = 0;
    s.gpus_per_node = 0;
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);

    launch(&f, 30, 2, 4, "hostname");
    launch(&f, 31, 1, 1, "false");
    j = fsm_job_get(&f, 1);
    REQUIRE(j->n_steps == 2 && j->steps_started == 2);
    CHECK(j->steps[0]->id == 0 && j->steps[1]->id == 1);
    CHECK(j->steps[0]->state == JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK(j->steps[1]->n_ranks == 1 && j->steps[1]->ranks[0] == 0);
    /* Step 0 ends with its last part; step 1 failed. */
    part_end(&f, 40, 1, "a", JAZARI__JOB_STATE__JOB_COMPLETED, 0);
    CHECK(fstep_find(j, 0)->state == JAZARI__JOB_STATE__JOB_RUNNING);
    part_end(&f, 41, 1, "a", JAZARI__JOB_STATE__JOB_FAILED, 9); /* twice: once only */
    part_end(&f, 42, 1, "b", JAZARI__JOB_STATE__JOB_COMPLETED, 0);
    CHECK(fstep_find(j, 0)->state == JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK_EQ_INT(fstep_find(j, 0)->exit_code, 0);
    CHECK(fstep_find(j, 0)->end_time_ms == 42);
    part_end(&f, 43, 2, "a", JAZARI__JOB_STATE__JOB_FAILED, 3);
    CHECK(fstep_find(j, 1)->state == JAZARI__JOB_STATE__JOB_FAILED);
    CHECK_EQ_INT(fstep_find(j, 1)->exit_code, 3);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING); /* a step's end is not the job's */

    /* Kept across a snapshot, with the next step's id. */
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    const fsm_job *k = fsm_job_get(&g, 1);
    REQUIRE(k && k->n_steps == 2 && k->steps_started == 2);
    CHECK(fstep_find(k, 1)->state == JAZARI__JOB_STATE__JOB_FAILED);
    buf_free(&snap);
    fsm_free(&g);

    /* The job's other node ending changes nothing; its first node's end
     * (the batch script's) ends the job and its running steps. */
    launch(&f, 50, 2, 2, "sleep");
    part_end(&f, 51, 0, "b", JAZARI__JOB_STATE__JOB_CANCELLED, 0);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    part_end(&f, 52, 0, "a", JAZARI__JOB_STATE__JOB_COMPLETED, 0);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK(fstep_find(j, 2)->state == JAZARI__JOB_STATE__JOB_CANCELLED);
    /* No step in a job that no longer runs. */
    launch(&f, 53, 1, 1, "late");
    CHECK(j->steps_started == 3);
    fsm_free(&f);
}

TEST(fstep_a_requeue_forgets_the_steps_and_the_oldest_ended_go_first)
{
    fsm f;
    fsm_init(&f);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    const fsm_job *j = running_batch(&f, &st);
    REQUIRE(j != NULL);
    for (uint32_t i = 0; i < FSTEP_MAX + 3; i++) {
        launch(&f, 30 + i, 1, 1, "true");
        part_end(&f, 30 + i, i + 1, "a", JAZARI__JOB_STATE__JOB_COMPLETED, 0);
    }
    CHECK_EQ_INT(j->n_steps, FSTEP_MAX);
    CHECK_EQ_INT(j->steps_started, FSTEP_MAX + 3);
    CHECK(fstep_find(j, 0) == NULL && fstep_find(j, FSTEP_MAX + 2) != NULL);
    /* Its second node lost: requeued, the steps forgotten. */
    part_end(&f, 200, 0, "b", JAZARI__JOB_STATE__JOB_NODE_FAIL, 0);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_PENDING && j->attempt == 1);
    CHECK(j->n_steps == 0 && j->steps_started == 0);
    fsm_free(&f);
}

TEST(fstep_an_allocation_holds_its_nodes_until_completed)
{
    fsm f;
    fsm_init(&f);
    sched_state st = {.policy = {.order = PLAN_FCFS, .backfill = true}};
    up(&f, 1, "a", 4);
    up(&f, 2, "b", 4);
    char err[300];
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.alloc = true;
    spec.nodes = 2;
    CHECK_EQ_INT(fsm_validate_spec(&f, &spec, err, sizeof err), 0); /* no command: an allocation */
    char *argv[] = {"true"};
    spec.argv = argv;
    spec.n_argv = 1;
    CHECK_EQ_INT(fsm_validate_spec(&f, &spec, err, sizeof err), -1);
    CHECK(strstr(err, "allocation") != NULL);
    spec.argv = NULL;
    spec.n_argv = 0;
    spec.script = "#!/bin/sh\n";
    CHECK_EQ_INT(fsm_validate_spec(&f, &spec, err, sizeof err), -1);
    spec.script = "";
    Jazari__JobSpec plain = JAZARI__JOB_SPEC__INIT; /* nothing to run and no allocation */
    CHECK_EQ_INT(fsm_validate_spec(&f, &plain, err, sizeof err), -1);
    fsm_step_submit(&f, 10, &spec);
    size_t starts = 0;
    fsm_step_pass(&f, &st, 20, &starts, NULL, NULL);
    CHECK_EQ_INT(starts, 1);
    const fsm_job *j = fsm_job_get(&f, 1);
    REQUIRE(j && j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->n_allocs == 2 && j->batch);
    /* A step of a pty: one task only. */
    Jazari__StepRequestSpec s = JAZARI__STEP_REQUEST_SPEC__INIT;
    char *sh[] = {"sh"};
    s.argv = sh;
    s.n_argv = 1;
    s.nodes = 1;
    s.ntasks = 1;
    s.pty = true;
    s.pty_rows = 50;
    s.pty_cols = 200;
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), 0);
    s.nodes = 2;
    s.ntasks = 2;
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);
    CHECK(strstr(err, "--pty") != NULL);
    s.nodes = s.ntasks = 1;
    s.pty_cols = FSTEP_PTY_SIDE_MAX + 1;
    CHECK_EQ_INT(fstep_validate(j, &s, err, sizeof err), -1);
    /* The second node's hold part ending changes nothing; the client's
     * completion is the first node's part ending COMPLETED. */
    part_end(&f, 30, 0, "b", JAZARI__JOB_STATE__JOB_CANCELLED, 0);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_RUNNING);
    part_end(&f, 31, 0, "a", JAZARI__JOB_STATE__JOB_COMPLETED, 0);
    CHECK(j->state == JAZARI__JOB_STATE__JOB_COMPLETED && j->exit_code == 0);
    fsm_free(&f);
}

/* test_fsm.c - the replicated state machine: entries, validation,
 * determinism, snapshots. */
#include <stdlib.h>

#include "daemon/raft/fsm.h"
#include "daemon/sched/sched.h"
#include "fsm_steps.h"
#include "lib/hw/topo_pb.h"
#include "test.h"

/* Builds an entry holding one SubmitCmd of n jobs by uid, and applies it. */
static int submit(fsm *f, int64_t t, uint32_t uid, int n, uint32_t gpus, fsm_result *res)
{
    Jazari__Job *jobs = calloc((size_t)n, sizeof *jobs);
    Jazari__Job **ptrs = calloc((size_t)n, sizeof *ptrs);
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    char *argv[] = {"python3", "train.py", "--epochs", "3"};
    spec.argv = argv;
    spec.n_argv = 4;
    spec.gpus_per_node = gpus;
    spec.name = "train";
    for (int i = 0; i < n; i++) {
        jazari__job__init(&jobs[i]);
        jobs[i].spec = &spec;
        jobs[i].uid = uid;
        jobs[i].user = uid ? "amina" : "root";
        jobs[i].id = 999; /* ignored: the state machine assigns ids */
        ptrs[i] = &jobs[i];
    }
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = ptrs;
    sc.n_jobs = (size_t)n;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    Jazari__Command *cs[] = {&c};
    buf b = BUF_INIT;
    codec_entry_encode(CODEC_FORMAT, t, cs, 1, &b);
    char err[200];
    int rc = fsm_apply(f, b.data, b.len, res, err, sizeof err);
    buf_free(&b);
    free(jobs);
    free(ptrs);
    return rc;
}

static int node_up(fsm *f, int64_t t, const char *name, unsigned gpus)
{
    fsm_step_node_up(f, t, name, gpus);
    return 0;
}

static int cancel(fsm *f, int64_t t, uint64_t id, uint32_t uid, bool admin, fsm_result *res)
{
    Jazari__CancelCmd cc = JAZARI__CANCEL_CMD__INIT;
    cc.ids = &id;
    cc.n_ids = 1;
    cc.uid = uid;
    cc.admin = admin;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_CANCEL;
    c.cancel = &cc;
    Jazari__Command *cs[] = {&c};
    buf b = BUF_INIT;
    codec_entry_encode(CODEC_FORMAT, t, cs, 1, &b);
    char err[200];
    int rc = fsm_apply(f, b.data, b.len, res, err, sizeof err);
    buf_free(&b);
    return rc;
}

TEST(fsm_submit_assigns_consecutive_ids)
{
    fsm f;
    fsm_init(&f);
    fsm_result res;
    REQUIRE(submit(&f, 1000, 1000, 3, 0, &res) == 0);
    CHECK_EQ_INT(res.first_id, 1);
    CHECK_EQ_INT(res.submitted, 3);
    REQUIRE(submit(&f, 2000, 1000, 2, 0, &res) == 0);
    CHECK_EQ_INT(res.first_id, 4);
    const fsm_job *j = fsm_job_get(&f, 5);
    REQUIRE(j != NULL);
    CHECK_EQ_INT(j->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_INT(j->submit_ms, 2000);
    CHECK_EQ_STR(j->user, "amina");
    CHECK_EQ_STR(j->reason, "Resources");
    CHECK(fsm_job_get(&f, 6) == NULL && fsm_job_get(&f, 0) == NULL);
    CHECK_EQ_INT(f.n_active, 5);
    /* The spec is kept intact. */
    Jazari__Job m;
    Jazari__JobAlloc a;
    Jazari__JobAlloc *ap;
    Jazari__JobSpec *spec = fsm_job_to_pb(j, &m, &a, &ap);
    REQUIRE(spec != NULL);
    CHECK_EQ_INT(spec->n_argv, 4);
    CHECK_EQ_STR(spec->argv[1], "train.py");
    jazari__job_spec__free_unpacked(spec, NULL);
    fsm_free(&f);
}

TEST(fsm_cancel_owner_or_admin_only)
{
    fsm f;
    fsm_init(&f);
    fsm_result res;
    submit(&f, 1000, 1000, 2, 0, &res);
    REQUIRE(cancel(&f, 1500, 1, 2000, false, &res) == 0);
    CHECK_EQ_INT(res.cancelled, 0); /* not yours */
    REQUIRE(cancel(&f, 1600, 1, 1000, false, &res) == 0);
    CHECK_EQ_INT(res.cancelled, 1);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->end_ms, 1600);
    REQUIRE(cancel(&f, 1700, 1, 1000, false, &res) == 0);
    CHECK_EQ_INT(res.cancelled, 0); /* already ended */
    REQUIRE(cancel(&f, 1800, 2, 0, true, &res) == 0);
    CHECK_EQ_INT(res.cancelled, 1); /* an admin may */
    CHECK_EQ_INT(f.n_active, 0);
    fsm_free(&f);
}

TEST(fsm_validation_against_the_nodes)
{
    fsm f;
    fsm_init(&f);
    REQUIRE(node_up(&f, 10, "gpu-01", 8) == 0);
    REQUIRE(node_up(&f, 11, "gpu-02", 4) == 0);
    Jazari__JobSpec s = JAZARI__JOB_SPEC__INIT;
    char *argv[] = {"true"};
    char err[256];
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) != 0);
    CHECK(strstr(err, "no command") != NULL);
    s.argv = argv;
    s.n_argv = 1;
    s.gpus_per_node = 8;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) == 0);
    s.gpus_per_node = 9;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) != 0);
    CHECK(strstr(err, "no node has more than 8 GPUs") != NULL);
    s.gpus_per_node = 8;
    s.nodes = 2;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) != 0);
    CHECK(strstr(err, "only 1 node could ever run it") != NULL);
    s.gpus_per_node = 4;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) == 0);
    s.time_limit_s = 400ull * 24 * 3600;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) != 0);
    s.time_limit_s = 3600;
    char *env[] = {"NOEQUALS"};
    s.env = env;
    s.n_env = 1;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) != 0);
    CHECK(strstr(err, "KEY=VALUE") != NULL);
    s.n_env = 0;
    char longname[FSM_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    s.name = longname;
    CHECK(fsm_validate_spec(&f, &s, err, sizeof err) != 0);
    fsm_free(&f);
}

TEST(fsm_nodes_up_and_down)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, 10, "gpu-01", 2);
    CHECK_EQ_STR(fsm_node_get(&f, "gpu-01")->state, "up");
    CHECK_EQ_INT(fsm_node_get(&f, "gpu-01")->topo->n_gpus, 2);
    Jazari__NodeDownCmd d = JAZARI__NODE_DOWN_CMD__INIT;
    d.name = "gpu-01";
    d.reason = "silent for 5s";
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    c.node_down = &d;
    Jazari__Command *cs[] = {&c};
    buf b = BUF_INIT;
    codec_entry_encode(CODEC_FORMAT, 20, cs, 1, &b);
    char err[200];
    fsm_result res;
    REQUIRE(fsm_apply(&f, b.data, b.len, &res, err, sizeof err) == 0);
    CHECK_EQ_INT(res.nodes_changed, 1);
    CHECK_EQ_STR(fsm_node_get(&f, "gpu-01")->state, "down");
    CHECK_EQ_INT(fsm_node_get(&f, "gpu-01")->since_ms, 20);
    node_up(&f, 30, "gpu-01", 2);
    CHECK_EQ_STR(fsm_node_get(&f, "gpu-01")->state, "up");
    CHECK_EQ_INT(f.n_nodes, 1);
    buf_free(&b);
    fsm_free(&f);
}

TEST(fsm_refuses_unreadable_entries)
{
    fsm f;
    fsm_init(&f);
    char err[200];
    CHECK(fsm_apply(&f, "\xff\xff\xff", 3, NULL, err, sizeof err) != 0);
    CHECK(strstr(err, "does not decode") != NULL);
    Jazari__Entry e = JAZARI__ENTRY__INIT;
    e.format = CODEC_FORMAT + 1;
    uint8_t tmp[16];
    size_t n = jazari__entry__pack(&e, tmp);
    CHECK(fsm_apply(&f, tmp, n, NULL, err, sizeof err) != 0);
    CHECK(strstr(err, "upgrade") != NULL);
    CHECK_EQ_INT(f.applied, 0);
    fsm_free(&f);
}

/* An entry this release cannot wholly apply is refused whole: before, a
 * command of an unknown kind was skipped while the rest applied, and a
 * controller of an older release diverged from the newer ones. */
TEST(fsm_refuses_an_entry_with_a_command_it_does_not_know)
{
    fsm f;
    fsm_init(&f);
    char err[300];
    Jazari__NodeDownCmd down = JAZARI__NODE_DOWN_CMD__INIT;
    down.name = "n1";
    down.reason = "test";
    Jazari__Command known = JAZARI__COMMAND__INIT;
    known.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    known.node_down = &down;
    buf b = BUF_INIT, one = BUF_INIT;
    codec_entry_begin(&b, CODEC_FORMAT, 1000);
    jazari__command__pack(&known, buf_extend(&one, jazari__command__get_packed_size(&known)));
    codec_entry_add(&b, one.data, one.len);
    static const uint8_t future[] = {0x90, 0x03, 0x01}; /* field 50: a command of a later release */
    codec_entry_add(&b, future, sizeof future);
    CHECK(fsm_apply(&f, b.data, b.len, NULL, err, sizeof err) != 0);
    CHECK(strstr(err, "does not know") != NULL && strstr(err, "upgrade") != NULL);
    CHECK_EQ_INT(f.applied, 0);
    CHECK_EQ_INT(f.time_ms, 0); /* nothing of it applied */
    /* A reservation in format 2, which has none: refused too. */
    Jazari__ReserveCmd rc = JAZARI__RESERVE_CMD__INIT;
    Jazari__Command resv = JAZARI__COMMAND__INIT;
    resv.cmd_case = JAZARI__COMMAND__CMD_RESERVE;
    resv.reserve = &rc;
    Jazari__Command *cs[] = {&resv};
    buf_reset(&b);
    codec_entry_encode(2, 1000, cs, 1, &b);
    CHECK(fsm_apply(&f, b.data, b.len, NULL, err, sizeof err) != 0);
    CHECK(strstr(err, "later format") != NULL);
    CHECK_EQ_INT(f.applied, 0);
    buf_free(&b);
    buf_free(&one);
    fsm_free(&f);
}

/* The same entries give the same state, byte for byte; a snapshot restores
 * it exactly; time never runs backwards. */
TEST(fsm_deterministic_and_snapshots_round_trip)
{
    fsm a, b;
    fsm_init(&a);
    fsm_init(&b);
    fsm *both[] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        fsm_result res;
        node_up(both[k], 100, "gpu-01", 8);
        node_up(both[k], 110, "gpu-02", 8);
        submit(both[k], 120, 1000, 50, 2, &res);
        cancel(both[k], 130, 7, 1000, false, &res);
        submit(both[k], 90, 0, 5, 1, &res); /* a leader whose clock is behind */
    }
    CHECK_EQ_INT(fsm_job_get(&a, 52)->submit_ms, 130);
    buf sa = BUF_INIT, sb = BUF_INIT, sc = BUF_INIT;
    fsm_snapshot(&a, &sa);
    fsm_snapshot(&b, &sb);
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);

    fsm c;
    fsm_init(&c);
    char err[200];
    REQUIRE(fsm_restore(&c, sa.data, sa.len, err, sizeof err) == 0);
    fsm_snapshot(&c, &sc);
    CHECK(sa.len == sc.len && memcmp(sa.data, sc.data, sa.len) == 0);
    CHECK_EQ_INT(c.next_job_id, 56);
    CHECK_EQ_INT(c.n_active, 54);
    CHECK_EQ_INT(fsm_job_get(&c, 7)->state, JAZARI__JOB_STATE__JOB_CANCELLED);
    CHECK_EQ_INT(fsm_node_get(&c, "gpu-02")->topo->n_gpus, 8);
    /* And it goes on from there like the original. */
    fsm_result r1, r2;
    submit(&a, 200, 1000, 1, 0, &r1);
    submit(&c, 200, 1000, 1, 0, &r2);
    CHECK_EQ_INT(r1.first_id, r2.first_id);
    CHECK(fsm_restore(&c, "\x08\x63", 2, err, sizeof err) != 0); /* format 99 */
    CHECK_EQ_INT(c.next_job_id, 57);                             /* unchanged */
    buf_free(&sa);
    buf_free(&sb);
    buf_free(&sc);
    fsm_free(&a);
    fsm_free(&b);
    fsm_free(&c);
}

/* Applies one command of start or end. */
/* Commits what a scheduling pass decided, as the leader would (FCFS +
 * EASY, the leader's default). */
static size_t schedule(fsm *f, int64_t t, uint64_t *blocked)
{
    static sched_state st;
    st.policy.order = PLAN_FCFS;
    st.policy.backfill = true;
    size_t n;
    fsm_step_pass(f, &st, t, &n, NULL, blocked);
    return n;
}

static void end_job(fsm *f, int64_t t, uint64_t id, int code)
{
    fsm_step_end(f, t, id, 0, NULL, code ? JAZARI__JOB_STATE__JOB_FAILED : JAZARI__JOB_STATE__JOB_COMPLETED,
                 code, NULL);
}

TEST(sched_first_come_first_served_first_fit)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, 10, "small", 4);
    node_up(&f, 11, "big", 8);
    fsm_result r;
    submit(&f, 20, 1000, 1, 2, &r); /* 1: 2 GPUs -> small 0,1 */
    submit(&f, 21, 1000, 1, 8, &r); /* 2: 8 GPUs -> big */
    submit(&f, 22, 1000, 1, 4, &r); /* 3: 4 GPUs: nowhere free; waits for big */
    submit(&f, 23, 1000, 1, 1, &r); /* 4: fits small; 3 will never use small */
    uint64_t blocked;
    /* 4 backfills: it leaves 3's reservation (big, once 2 ends) where it is. */
    CHECK_EQ_INT(schedule(&f, 30, &blocked), 3);
    CHECK_EQ_INT(blocked, 3);
    const fsm_job *j1 = fsm_job_get(&f, 1), *j2 = fsm_job_get(&f, 2);
    CHECK_EQ_INT(j1->state, JAZARI__JOB_STATE__JOB_RUNNING);
    REQUIRE(j1->n_allocs == 1 && j2->n_allocs == 1);
    CHECK_EQ_STR(j1->allocs[0].node, "small");
    CHECK_EQ_INT(j1->allocs[0].gpus[0], 0);
    CHECK_EQ_INT(j1->allocs[0].gpus[1], 1);
    CHECK_EQ_STR(j2->allocs[0].node, "big");
    CHECK_EQ_INT(j1->start_ms, 30);
    CHECK_EQ_INT(fsm_node_gpus_used(&f, "small"), 3);
    CHECK_EQ_INT(fsm_job_get(&f, 4)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    /* The big job ends: 3 starts there; 4 has small's free GPU 2. */
    end_job(&f, 40, 2, 0);
    CHECK_EQ_INT(fsm_job_get(&f, 2)->state, JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK_EQ_INT(schedule(&f, 41, &blocked), 1);
    CHECK_EQ_INT(blocked, 0);
    CHECK_EQ_STR(fsm_job_get(&f, 3)->allocs[0].node, "big");
    CHECK_EQ_STR(fsm_job_get(&f, 4)->allocs[0].node, "small");
    CHECK_EQ_INT(fsm_job_get(&f, 4)->allocs[0].gpus[0], 2);
    /* An end for a job that is not running changes nothing. */
    end_job(&f, 50, 2, 9);
    CHECK_EQ_INT(fsm_job_get(&f, 2)->exit_code, 0);
    end_job(&f, 51, 4, 3);
    CHECK_EQ_INT(fsm_job_get(&f, 4)->state, JAZARI__JOB_STATE__JOB_FAILED);
    CHECK_EQ_INT(fsm_job_get(&f, 4)->exit_code, 3);
    CHECK_EQ_INT(f.n_active, 2);
    /* Down nodes take nothing. */
    Jazari__NodeDownCmd dn = JAZARI__NODE_DOWN_CMD__INIT;
    dn.name = "small";
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    c.node_down = &dn;
    fsm_step_apply(&f, 60, &c);
    /* Job 1 ran there: it is requeued as its next attempt... */
    const fsm_job *j1b = fsm_job_get(&f, 1);
    CHECK_EQ_INT(j1b->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_INT(j1b->attempt, 1);
    CHECK(j1b->reason && strstr(j1b->reason, "NODE_FAIL") && strstr(j1b->reason, "small"));
    CHECK_EQ_INT(j1b->n_allocs, 0);
    submit(&f, 61, 1000, 1, 5, &r); /* 5: small is down, big has 4 free */
    /* ... and runs again elsewhere, ahead of the newer job, which waits. */
    CHECK_EQ_INT(schedule(&f, 62, &blocked), 1);
    CHECK_EQ_STR(fsm_job_get(&f, 1)->allocs[0].node, "big");
    CHECK_EQ_INT(blocked, 5);
    /* The end of its first attempt, arriving late, changes nothing. */
    end_job(&f, 63, 1, 0);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    fsm_free(&f);
}

/* A NodeDown in that format: keeping the node's jobs (KEEP), losing
 * those it kept (LOSE_KEPT), or plain (0). */
enum { KEEP = 1, LOSE_KEPT = 2 };
static void node_down_in(fsm *f, uint32_t format, int64_t t, const char *name, int how, fsm_result *res)
{
    Jazari__NodeDownCmd d = JAZARI__NODE_DOWN_CMD__INIT;
    d.name = (char *)name;
    d.reason = how == KEEP ? "unreachable" : "lost";
    d.keep_jobs = how == KEEP;
    d.lose_kept = how == LOSE_KEPT;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    c.node_down = &d;
    fsm_step_apply_in(f, format, t, &c, res);
}

/* Format 10: an unreachable node keeps its jobs RUNNING (nothing of theirs
 * starts elsewhere) until it is back, or a later NodeDown without
 * keep_jobs loses them; format 9 loses them at once, and a second NodeDown
 * there changes nothing, as before. */
TEST(fsm_unreachable_node_keeps_its_jobs_until_lost)
{
    CHECK_EQ_INT(codec_cmd_format(JAZARI__COMMAND__CMD_NODE_DOWN), 1);
    Jazari__NodeDownCmd kd = JAZARI__NODE_DOWN_CMD__INIT;
    Jazari__Command kc = JAZARI__COMMAND__INIT;
    kc.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    kc.node_down = &kd;
    CHECK_EQ_INT(codec_command_format(&kc), 1);
    kd.keep_jobs = true; /* an older release would lose the jobs at once */
    CHECK_EQ_INT(codec_command_format(&kc), 10);
    kd.keep_jobs = false;
    kd.lose_kept = true;
    CHECK_EQ_INT(codec_command_format(&kc), 10);
    fsm f;
    fsm_init(&f);
    fsm_result res;
    node_up(&f, 1, "a", 2);
    node_up(&f, 2, "b", 2);
    Jazari__JobSpec one = JAZARI__JOB_SPEC__INIT;
    one.gpus_per_node = 2;
    fsm_step_submit(&f, 3, &one); /* 1 */
    fsm_step_submit(&f, 4, &one); /* 2 */
    fsm_step_submit(&f, 5, &one); /* 3: waits */
    uint64_t blocked;
    CHECK_EQ_INT(schedule(&f, 6, &blocked), 2);
    const char *on_a = fsm_job_get(&f, 1)->allocs[0].node;
    uint64_t ja = strcmp(on_a, "a") == 0 ? 1 : 2;
    node_down_in(&f, 10, 20, "a", KEEP, &res);
    CHECK_EQ_STR(fsm_node_get(&f, "a")->state, "down");
    CHECK_EQ_INT(fsm_node_get(&f, "a")->since_ms, 20);
    CHECK_EQ_INT(fsm_job_get(&f, ja)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK_EQ_INT(fsm_job_get(&f, ja)->attempt, 0);
    CHECK_EQ_INT(f.n_running, 2);
    /* Kept again: nothing changes, not even since. */
    node_down_in(&f, 10, 25, "a", KEEP, &res);
    CHECK_EQ_INT(fsm_node_get(&f, "a")->since_ms, 20);
    CHECK_EQ_INT(res.nodes_changed + res.ended, 0);
    CHECK_EQ_INT(schedule(&f, 26, &blocked), 0); /* a is down: 3 still waits */
    /* Back: the job goes on there. */
    node_up(&f, 30, "a", 2);
    CHECK_EQ_INT(fsm_job_get(&f, ja)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    /* A late lose_kept for a node up again leaves it and its job alone. */
    node_down_in(&f, 10, 35, "a", LOSE_KEPT, &res);
    CHECK_EQ_STR(fsm_node_get(&f, "a")->state, "up");
    CHECK_EQ_INT(fsm_job_get(&f, ja)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    /* Unreachable again, then lost: requeued. */
    node_down_in(&f, 10, 40, "a", KEEP, &res);
    node_down_in(&f, 10, 50, "a", LOSE_KEPT, &res);
    CHECK_EQ_INT(res.ended, 1);
    CHECK_EQ_INT(fsm_job_get(&f, ja)->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_INT(fsm_job_get(&f, ja)->attempt, 1);
    CHECK(strstr(fsm_job_get(&f, ja)->reason, "NODE_FAIL") != NULL);
    CHECK_EQ_INT(fsm_node_get(&f, "a")->since_ms, 40); /* still down since it went */
    /* Format 9: at once, and a second NodeDown (as a 0.5 leader sends none)
     * finds the node down and leaves the rest. */
    uint64_t jb = ja == 1 ? 2 : 1;
    node_down_in(&f, 9, 60, "b", KEEP, &res); /* keep_jobs means nothing in 9 */
    CHECK_EQ_INT(fsm_job_get(&f, jb)->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_INT(f.n_running, 0);
    /* The snapshot keeps a down node's kept jobs. */
    node_up(&f, 70, "a", 2);
    node_up(&f, 71, "b", 2);
    CHECK_EQ_INT(schedule(&f, 72, &blocked), 2);
    node_down_in(&f, 10, 80, "a", KEEP, &res);
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    CHECK_EQ_INT(g.n_running, 2);
    CHECK_EQ_STR(fsm_node_get(&g, "a")->state, "down");
    buf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

static void end_part(fsm *f, int64_t t, uint64_t id, uint32_t attempt, const char *node, Jazari__JobState st)
{
    fsm_step_end(f, t, id, attempt, node, st, 0, "x");
}

TEST(fsm_gang_completes_with_its_last_part_and_lost_parts_requeue)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, 1, "a", 2);
    node_up(&f, 2, "b", 2);
    Jazari__JobSpec gang = JAZARI__JOB_SPEC__INIT, once = JAZARI__JOB_SPEC__INIT;
    gang.nodes = 2;
    gang.gpus_per_node = 1;
    once.gpus_per_node = 1;
    once.no_requeue = true;
    fsm_step_submit(&f, 3, &gang); /* 1 */
    fsm_step_submit(&f, 4, &once); /* 2 */
    uint64_t blocked;
    CHECK_EQ_INT(schedule(&f, 5, &blocked), 2);
    /* One part completed: the job still runs until the other does. */
    end_part(&f, 6, 1, 0, "a", JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK(fsm_job_get(&f, 1)->allocs[0].done && !fsm_job_get(&f, 1)->allocs[1].done);
    end_part(&f, 7, 1, 0, "b", JAZARI__JOB_STATE__JOB_COMPLETED);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_COMPLETED);
    /* A part lost by its node: NODE_FAIL, and --no-requeue keeps it so. */
    end_part(&f, 8, 2, 0, "a", JAZARI__JOB_STATE__JOB_NODE_FAIL);
    CHECK_EQ_INT(fsm_job_get(&f, 2)->state, JAZARI__JOB_STATE__JOB_NODE_FAIL);
    CHECK_EQ_INT(f.n_active, 0);
    CHECK_EQ_INT(f.n_running, 0);
    /* A gang that loses one part is requeued whole. */
    fsm_step_submit(&f, 9, &gang); /* 3 */
    CHECK_EQ_INT(schedule(&f, 10, &blocked), 1);
    end_part(&f, 11, 3, 0, "b", JAZARI__JOB_STATE__JOB_NODE_FAIL);
    CHECK_EQ_INT(fsm_job_get(&f, 3)->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK_EQ_INT(f.n_ready, 1);
    CHECK_EQ_INT(schedule(&f, 12, &blocked), 1);
    CHECK_EQ_INT(fsm_job_get(&f, 3)->attempt, 1);
    /* The snapshot keeps attempts and finished parts. */
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    CHECK_EQ_INT(fsm_job_get(&g, 3)->attempt, 1);
    CHECK(fsm_job_get(&g, 1)->allocs[1].done);
    buf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

TEST(sched_counts_cpus_and_takes_them_near_the_gpu)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    topo_package pk[2] = {{.os_index = 0, .cores = 4, .pus = 4, .cpuset = "0-3"},
                          {.os_index = 1, .cores = 4, .pus = 4, .cpuset = "4-7"}};
    topo_gpu gpu = {.index = 0, .numa = 1, .cpuset = "4-7"};
    topo_link self = {TOPO_LINK_X, 0};
    tp.packages = pk;
    tp.n_packages = 2;
    tp.pus = tp.cores = 8;
    tp.gpus = &gpu;
    tp.n_gpus = 1;
    tp.links = &self;
    Jazari__NodeRecord rec = JAZARI__NODE_RECORD__INIT;
    rec.name = "n";
    rec.address = "10.0.0.1:7070";
    rec.topology = topo_to_pb(&tp);
    Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
    up.node = &rec;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    c.node_up = &up;
    fsm f;
    fsm_init(&f);
    fsm_step_apply(&f, 1, &c);
    topo_pb_free(rec.topology);
    Jazari__JobSpec a = JAZARI__JOB_SPEC__INIT, b = JAZARI__JOB_SPEC__INIT;
    a.gpus_per_node = 1;
    a.tasks_per_node = 2;
    a.cpus_per_task = 2;
    b.cpus_per_task = 5;
    fsm_step_submit(&f, 2, &a); /* 1: 4 CPUs, near its GPU: 4-7 */
    fsm_step_submit(&f, 3, &b); /* 2: 5 CPUs: only 4 left */
    char err[200], *argv[] = {"true"};
    b.argv = argv;
    b.n_argv = 1;
    CHECK(fsm_validate_spec(&f, &b, err, sizeof err) == 0);
    b.cpus_per_task = 9;
    CHECK(fsm_validate_spec(&f, &b, err, sizeof err) == -1 && strstr(err, "no node has more than 8"));
    uint64_t blocked;
    CHECK_EQ_INT(schedule(&f, 4, &blocked), 1);
    CHECK_EQ_STR(fsm_job_get(&f, 1)->allocs[0].cpus, "4-7");
    CHECK_EQ_STR(fsm_job_get(&f, 1)->allocs[0].address, "10.0.0.1:7070");
    CHECK_EQ_INT(blocked, 2);
    end_job(&f, 5, 1, 0);
    CHECK_EQ_INT(schedule(&f, 6, &blocked), 1);
    CHECK_EQ_STR(fsm_job_get(&f, 2)->allocs[0].cpus, "0-4");
    fsm_free(&f);
}

TEST(fsm_entries_of_format_1_apply_as_they_did)
{
    /* A log written before execution (format 1): a node going down left
     * its jobs as they were; the same log must give the same state. */
    fsm f;
    fsm_init(&f);
    node_up(&f, 1, "a", 2);
    fsm_result r;
    submit(&f, 2, 1000, 1, 1, &r);
    uint64_t blocked;
    CHECK_EQ_INT(schedule(&f, 3, &blocked), 1);
    Jazari__NodeDownCmd dn = JAZARI__NODE_DOWN_CMD__INIT;
    dn.name = "a";
    Jazari__Command c = JAZARI__COMMAND__INIT, *cs[] = {&c};
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_DOWN;
    c.node_down = &dn;
    Jazari__Entry e = JAZARI__ENTRY__INIT;
    e.format = 1;
    e.time_ms = 4;
    e.commands = cs;
    e.n_commands = 1;
    uint8_t data[256];
    size_t len = jazari__entry__pack(&e, data);
    char err[200];
    REQUIRE(fsm_apply(&f, data, len, NULL, err, sizeof err) == 0);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->attempt, 0);
    /* Already down: up to format 9 nothing changes... */
    fsm_result res;
    node_down_in(&f, 9, 5, "a", 0, &res);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_RUNNING);
    /* ... from 10, a NodeDown that keeps nothing loses what it still holds. */
    node_down_in(&f, 10, 6, "a", 0, &res);
    CHECK_EQ_INT(fsm_job_get(&f, 1)->state, JAZARI__JOB_STATE__JOB_PENDING);
    fsm_free(&f);
}

TEST(fsm_array_specs)
{
    uint32_t idx[16];
    size_t n;
    uint32_t thr;
    char err[200];
    CHECK(fsm_array_parse("0-3%2", idx, 16, &n, &thr, err, sizeof err) == 0 && n == 4 && thr == 2);
    CHECK(idx[0] == 0 && idx[3] == 3);
    CHECK(fsm_array_parse("1,3,5-11:3", idx, 16, &n, &thr, err, sizeof err) == 0 && n == 5 && thr == 0);
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 5 && idx[3] == 8 && idx[4] == 11);
    CHECK(fsm_array_parse("0-99", idx, 16, &n, &thr, err, sizeof err) == -1 && strstr(err, "more than 16"));
    const char *bad[] = {"", "5-1", "a", "1,,2", "0-3%0", "0-3%", "1:0", "0-2000000", "1-3:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fsm_array_parse(bad[i], idx, 16, &n, &thr, err, sizeof err) != -1)
            test_fail(__FILE__, __LINE__, "'%s' accepted", bad[i]);
}

/* A submission's min_id (format 4) keeps ids from being issued twice when
 * a damaged log lost the entries that issued them; format 3 ignores it
 * (every replica alike), and a jump is bounded. */
static uint64_t submit_min(fsm *f, uint32_t format, uint64_t min_id)
{
    buf b = BUF_INIT;
    fsm_step_held_entry(&b, format, 1000, 1, min_id);
    char err[200];
    fsm_result res;
    int rc = fsm_apply(f, b.data, b.len, &res, err, sizeof err);
    buf_free(&b);
    return rc == 0 ? res.first_id : 0;
}

TEST(fsm_min_id_never_reissues_an_id)
{
    fsm f;
    fsm_init(&f);
    CHECK_EQ_INT(submit_min(&f, 4, 0), 1);
    CHECK_EQ_INT(submit_min(&f, 4, 41), 41);
    CHECK_EQ_INT(submit_min(&f, 4, 10), 42);                       /* below: no effect */
    CHECK_EQ_INT(submit_min(&f, 3, 100), 43);                      /* format 3 has no min_id */
    CHECK_EQ_INT(submit_min(&f, 4, 44 + FSM_ID_JUMP_MAX + 1), 44); /* an absurd jump is not taken */
    CHECK(fsm_job_get(&f, 41) != NULL && fsm_job_get(&f, 2) == NULL);
    fsm_free(&f);
}

/* A part that could not start for want of the user's account on its node:
 * the job goes back to the queue and is placed elsewhere; that node is
 * avoided for that user (not for others) until the memory of it expires,
 * and the memory survives a snapshot. */
TEST(fsm_no_account_requeues_and_the_node_is_avoided_for_that_user)
{
    fsm f;
    fsm_init(&f);
    node_up(&f, 10, "a", 8);
    node_up(&f, 11, "b", 8);
    fsm_result r;
    submit(&f, 20, 1000, 1, 8, &r); /* 1 -> a, the first that fits */
    uint64_t blocked;
    CHECK_EQ_INT(schedule(&f, 30, &blocked), 1);
    const fsm_job *j = fsm_job_get(&f, 1);
    REQUIRE(j->n_allocs == 1);
    char *first = strdup(j->allocs[0].node);
    Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
    ec.id = 1;
    ec.attempt = 0;
    ec.node = first;
    ec.state = JAZARI__JOB_STATE__JOB_NODE_FAIL;
    ec.reason = "user amina has no account on this node";
    ec.no_account = true;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_END;
    c.end = &ec;
    fsm_step_apply(&f, 40, &c);
    CHECK_EQ_INT(j->state, JAZARI__JOB_STATE__JOB_PENDING);
    CHECK(fsm_node_lacks(&f, first, j->user, 41));
    CHECK(!fsm_node_lacks(&f, first, "someone-else", 41));
    CHECK(!fsm_node_lacks(&f, first, j->user, 40 + FSM_LACK_MS));
    /* Through a snapshot. */
    buf snap = BUF_INIT;
    fsm_snapshot(&f, &snap);
    fsm g;
    fsm_init(&g);
    char err[200];
    REQUIRE(fsm_restore(&g, snap.data, snap.len, err, sizeof err) == 0);
    CHECK(fsm_node_lacks(&g, first, j->user, 41));
    /* Placed on the other node, though the first is free. */
    CHECK_EQ_INT(schedule(&g, 50, &blocked), 1);
    const fsm_job *k = fsm_job_get(&g, 1);
    REQUIRE(k->n_allocs == 1);
    CHECK(strcmp(k->allocs[0].node, first) != 0);
    CHECK_EQ_INT(k->attempt, 1);
    buf_free(&snap);
    free(first);
    fsm_free(&g);
    fsm_free(&f);
}

/* test_cluster.c - the replicated state machine in a simulated cluster:
 * canonical raft's raft_fixture (in-memory I/O, a fake clock) drives three
 * replicas of fsm.c through the one codec; elections, a dead leader and a
 * returning one, in milliseconds, with no sockets. The replicas must agree
 * byte for byte, and the leader's liveness (seen.c) must not find live
 * nodes silent when leadership moves back and forth. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/raft/codec.h"
#include "../../daemon/raft/fsm.h"
#include "../../daemon/seen.h"
#include "fsm_steps.h"
#include "test.h"

#define N 3

typedef struct replica {
    fsm state;
    char err[300];
    int errors;
} replica;

static const seen_limit cl_limit = {.timeout_ms = 1000, .rtts = 10};

static void cl_down(void *arg, const char *name, uint64_t silent_ms)
{
    (void)name;
    (void)silent_ms;
    (*(int *)arg)++;
}

static int cl_apply(struct raft_fsm *ops, const struct raft_buffer *b, void **result)
{
    replica *r = ops->data;
    const uint8_t *p;
    size_t len;
    if (codec_unframe(b, &p, &len, r->err, sizeof r->err) != 0 ||
        fsm_apply(&r->state, p, len, NULL, r->err, sizeof r->err) != 0)
        r->errors++;
    *result = NULL;
    return 0;
}

static int cl_snapshot(struct raft_fsm *ops, struct raft_buffer *bufs[], unsigned *n)
{
    replica *r = ops->data;
    buf b = BUF_INIT;
    fsm_snapshot(&r->state, &b);
    struct raft_buffer *rb = raft_malloc(sizeof *rb);
    rb->base = raft_malloc(b.len ? b.len : 1);
    memcpy(rb->base, b.data, b.len);
    rb->len = b.len;
    buf_free(&b);
    *bufs = rb;
    *n = 1;
    return 0;
}

static int cl_restore(struct raft_fsm *ops, struct raft_buffer *b)
{
    replica *r = ops->data;
    int rc = fsm_restore(&r->state, b->base, b->len, r->err, sizeof r->err);
    raft_free(b->base);
    return rc == 0 ? 0 : RAFT_MALFORMED;
}

/* An entry of one submission of `jobs` held jobs, framed for the log. */
static struct raft_buffer cl_entry(int64_t t, uint32_t jobs)
{
    buf e = BUF_INIT;
    fsm_step_held_entry(&e, CODEC_FORMAT, t, jobs, 0);
    struct raft_buffer rb;
    if (codec_frame(&e, &rb) != 0)
        abort();
    buf_free(&e);
    return rb;
}

static void cl_applied_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    *(int *)req->data = status == 0 ? 1 : -1;
}

/* Proposes an entry at the leader and runs the cluster until every live
 * server applied it. */
static bool cl_propose(struct raft_fixture *f, int64_t t, uint32_t jobs)
{
    unsigned l = raft_fixture_leader_index(f);
    if (l == N)
        return false;
    struct raft *r = raft_fixture_get(f, l);
    struct raft_apply *req = calloc(1, sizeof *req);
    int done = 0;
    req->data = &done;
    struct raft_buffer b = cl_entry(t, jobs);
    if (raft_apply(r, req, &b, 1, cl_applied_cb) != 0) {
        raft_free(b.base);
        free(req);
        return false;
    }
    raft_index want = raft_last_index(r);
    bool ok = true;
    for (unsigned i = 0; i < N && ok; i++)
        if (raft_fixture_alive(f, i))
            ok = raft_fixture_step_until_applied(f, i, want, 5000);
    for (int k = 0; k < 100000 && done == 0; k++) /* its callback, before req goes */
        raft_fixture_step(f);
    if (done != 0)
        free(req); /* else raft still holds it: leaked rather than freed under it */
    return ok && done == 1;
}

/* Two replicas hold the same state: their snapshots are equal bytes. */
static bool cl_same(replica *a, replica *b)
{
    buf x = BUF_INIT, y = BUF_INIT;
    fsm_snapshot(&a->state, &x);
    fsm_snapshot(&b->state, &y);
    bool same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    buf_free(&x);
    buf_free(&y);
    return same;
}

TEST(cluster_replicas_agree_through_elections_on_a_fake_clock)
{
    struct raft_fixture f;
    replica reps[N];
    struct raft_fsm fsms[N];
    memset(&f, 0, sizeof f); /* libraft 0.15 leaves parts of a server uninitialised */
    REQUIRE(raft_fixture_initialize(&f) == 0);
    for (unsigned i = 0; i < N; i++) {
        memset(&reps[i], 0, sizeof reps[i]);
        fsm_init(&reps[i].state);
        memset(&fsms[i], 0, sizeof fsms[i]);
        fsms[i].version = 1;
        fsms[i].data = &reps[i];
        fsms[i].apply = cl_apply;
        fsms[i].snapshot = cl_snapshot;
        fsms[i].restore = cl_restore;
        REQUIRE(raft_fixture_grow(&f, &fsms[i]) == 0);
    }
    struct raft_configuration conf;
    REQUIRE(raft_fixture_configuration(&f, N, &conf) == 0);
    REQUIRE(raft_fixture_bootstrap(&f, &conf) == 0);
    raft_configuration_close(&conf);
    REQUIRE(raft_fixture_start(&f) == 0);

    /* The leader's liveness, as each server would run it at its ticks: the
     * agent n1 heartbeats to whoever leads. */
    seen s[N];
    memset(s, 0, sizeof s);
    static const char *const up[] = {"n1"};
    int downs = 0;

    REQUIRE(raft_fixture_step_until_has_leader(&f, 10000));
    unsigned first = raft_fixture_leader_index(&f);
    CHECK(cl_propose(&f, 1000, 3));
    for (unsigned i = 0; i < N; i++) {
        struct raft *r = raft_fixture_get(&f, i);
        uint64_t term = raft_state(r) == RAFT_LEADER ? r->current_term : 0;
        if (term)
            seen_heard(&s[i], "n1", raft_fixture_time(&f), 0, 0);
        seen_check(&s[i], term, raft_fixture_time(&f), &cl_limit, up, 1, cl_down, &downs);
    }

    /* The leader dies: another is elected on the fake clock; it goes on. */
    raft_fixture_kill(&f, first);
    REQUIRE(raft_fixture_step_until_has_no_leader(&f, 10000));
    REQUIRE(raft_fixture_step_until_has_leader(&f, 10000));
    unsigned second = raft_fixture_leader_index(&f);
    CHECK(second != first);
    CHECK(cl_propose(&f, 2000, 5));
    /* The first comes back, follows for a long while (far past the node
     * timeout), then leads again. */
    raft_fixture_revive(&f, first);
    raft_fixture_step_until_elapsed(&f, 20000);
    CHECK(cl_propose(&f, 3000, 2));
    for (unsigned i = 0; i < N; i++) {
        if (i == first)
            continue;
        struct raft *r = raft_fixture_get(&f, i);
        uint64_t term = raft_state(r) == RAFT_LEADER ? r->current_term : 0;
        seen_check(&s[i], term, raft_fixture_time(&f), &cl_limit, up, 1, cl_down, &downs);
    }
    seen_check(&s[first], 0, raft_fixture_time(&f), &cl_limit, up, 1, cl_down, &downs);
    raft_fixture_depose(&f);
    raft_fixture_elect(&f, first);
    REQUIRE(raft_fixture_leader_index(&f) == first);
    {
        struct raft *r = raft_fixture_get(&f, first);
        /* Re-elected: its clocks restart; n1 heartbeats from now on. */
        uint64_t now = raft_fixture_time(&f);
        seen_check(&s[first], r->current_term, now, &cl_limit, up, 1, cl_down, &downs);
        seen_heard(&s[first], "n1", now + 500, 0, 0);
        seen_check(&s[first], r->current_term, now + 900, &cl_limit, up, 1, cl_down, &downs);
    }
    CHECK(cl_propose(&f, 4000, 1));
    CHECK_EQ_INT(downs, 0); /* n1 never stopped: nobody marks it down */

    /* Every replica applied the same entries into the same bytes, without
     * an error, and ids were never issued twice. */
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ_INT(reps[i].errors, 0);
        CHECK_EQ_INT(reps[i].state.next_job_id, 12);
    }
    CHECK(cl_same(&reps[0], &reps[1]) && cl_same(&reps[1], &reps[2]));
    raft_fixture_close(&f);
    for (unsigned i = 0; i < N; i++) {
        fsm_free(&reps[i].state);
        seen_free(&s[i]);
    }
}

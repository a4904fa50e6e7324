/* bench_state.c - what finished jobs cost the replicated state (issue 14):
 * one million jobs submitted, run and ended through the state machine over
 * 100 simulated days (10,000 a day, every one charged and priced, runs
 * kept for the history), with the policy's jobs_keep of one day. Reports
 * the jobs the state still holds and its snapshot's size at 10%, 50% and
 * 100% of the run (bounded: the same after 10 days as after 100), and the
 * heap an ended job costs while it is still in the state, against a pending
 * job's measured the same way in the same run. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"
#include "../../daemon/raft/fsm.h"
#include "../../lib/hw/topo_pb.h"

#define JOBS 1000000
#define PER_DAY 10000
#define DAY_MS (86400ll * 1000)
#define BATCH 500
#define T0 1767225600000ll

static void apply(fsm *f, int64_t t, Jazari__Command **cs, size_t n)
{
    buf b = BUF_INIT;
    codec_entry_encode(CODEC_FORMAT, t, cs, n, &b);
    char err[200];
    if (fsm_apply(f, b.data, b.len, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "bench-state: %s\n", err);
        exit(1);
    }
    buf_free(&b);
}

static void setup(fsm *f)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    tp.n_gpus = 8;
    tp.gpus = xcalloc(8, sizeof *tp.gpus);
    tp.links = xcalloc(64, sizeof *tp.links);
    for (unsigned i = 0; i < 8; i++) {
        tp.gpus[i].index = i;
        tp.gpus[i].numa = -1;
        tp.gpus[i].model = "NVIDIA H100 80GB HBM3";
    }
    Jazari__NodeRecord r = JAZARI__NODE_RECORD__INIT;
    r.name = "g1";
    r.site = "rabat";
    r.address = "127.0.0.1:7070";
    r.topology = topo_to_pb(&tp);
    Jazari__NodeUpCmd u = JAZARI__NODE_UP_CMD__INIT;
    u.node = &r;
    Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    c.node_up = &u;
    apply(f, T0, &cp, 1);
    topo_pb_free(r.topology);
    free(tp.gpus);
    free(tp.links);
    Jazari__AcctRate rate = JAZARI__ACCT_RATE__INIT, *rp = &rate;
    rate.model = "H100";
    rate.charge_milli = 2000;
    rate.price_micro = 36000000;
    Jazari__AcctPolicy ap = JAZARI__ACCT_POLICY__INIT;
    ap.currency = "MAD";
    ap.minor_digits = 2;
    ap.rates = &rp;
    ap.n_rates = 1;
    ap.jobs_keep_ms = DAY_MS;
    Jazari__PolicyCmd pc = JAZARI__POLICY_CMD__INIT;
    pc.half_life_ms = 7 * DAY_MS;
    pc.acct = &ap;
    c.cmd_case = JAZARI__COMMAND__CMD_POLICY;
    c.policy = &pc;
    apply(f, T0, &cp, 1);
}

static char *argv_true[] = {"true"};

/* Submits n jobs at t (accounts lab/p0..p7, users u0..u39); the first id. */
static uint64_t submit(fsm *f, int64_t t, size_t n)
{
    Jazari__JobSpec spec[BATCH];
    Jazari__Job job[BATCH], *jp[BATCH];
    static char accounts[8][16], users[40][8];
    for (int i = 0; i < 8; i++)
        snprintf(accounts[i], sizeof accounts[i], "lab/p%d", i);
    for (int i = 0; i < 40; i++)
        snprintf(users[i], sizeof users[i], "u%d", i);
    uint64_t first = f->next_job_id;
    for (size_t i = 0; i < n; i++) {
        jazari__job_spec__init(&spec[i]);
        spec[i].argv = argv_true;
        spec[i].n_argv = 1;
        spec[i].gpus_per_node = 1;
        spec[i].time_limit_s = 3600;
        spec[i].name = "train";
        spec[i].account = accounts[(first + i) % 8];
        jazari__job__init(&job[i]);
        job[i].spec = &spec[i];
        job[i].user = users[(first + i) % 40];
        jp[i] = &job[i];
    }
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = jp;
    sc.n_jobs = n;
    Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    apply(f, t, &cp, 1);
    return first;
}

/* Starts (at t) or ends (at t, COMPLETED) jobs first..first+n-1. */
static void start_or_end(fsm *f, int64_t t, uint64_t first, size_t n, bool end)
{
    Jazari__Command cmd[BATCH], *cp[BATCH];
    Jazari__StartCmd sc[BATCH];
    Jazari__EndCmd ec[BATCH];
    Jazari__JobAlloc al = JAZARI__JOB_ALLOC__INIT, *alp = &al;
    uint32_t gpu = 0;
    al.node = "g1";
    al.gpus = &gpu;
    al.n_gpus = 1;
    for (size_t i = 0; i < n; i++) {
        jazari__command__init(&cmd[i]);
        if (end) {
            jazari__end_cmd__init(&ec[i]);
            ec[i].id = first + i;
            ec[i].state = JAZARI__JOB_STATE__JOB_COMPLETED;
            ec[i].node = "g1";
            cmd[i].cmd_case = JAZARI__COMMAND__CMD_END;
            cmd[i].end = &ec[i];
        } else {
            jazari__start_cmd__init(&sc[i]);
            sc[i].id = first + i;
            sc[i].allocs = &alp;
            sc[i].n_allocs = 1;
            cmd[i].cmd_case = JAZARI__COMMAND__CMD_START;
            cmd[i].start = &sc[i];
        }
        cp[i] = &cmd[i];
    }
    apply(f, t, cp, n);
}

static size_t heap(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks;
}

static size_t snapshot_bytes(const fsm *f)
{
    buf b = BUF_INIT;
    fsm_snapshot(f, &b);
    size_t n = b.len;
    buf_free(&b);
    return n;
}

int main(void)
{
    fsm f;
    fsm_init(&f);
    setup(&f);
    /* A pending job's heap, for reference: 10,000 submitted, held. */
    size_t h0 = heap();
    uint64_t ref_first = 0;
    for (size_t k = 0; k < 10000; k += BATCH) {
        uint64_t id = submit(&f, T0, BATCH);
        ref_first = ref_first ? ref_first : id;
    }
    double pending_bytes = (double)(heap() - h0) / 10000.0;
    /* Those end too (they are part of the million). */
    for (size_t k = 0; k < 10000; k += BATCH) {
        start_or_end(&f, T0 + 1000, ref_first + k, BATCH, false);
        start_or_end(&f, T0 + 61000, ref_first + k, BATCH, true);
    }
    /* The rest: each batch runs a minute, spread over the days. */
    size_t marks[3] = {JOBS / 10, JOBS / 2, JOBS}, mark = 0;
    size_t snap[3] = {0, 0, 0};
    uint64_t in_state[3] = {0, 0, 0};
    double ended_bytes = 0;
    for (size_t done = 10000; done < JOBS; done += BATCH) {
        int64_t t = T0 + (int64_t)(done / PER_DAY) * DAY_MS + (int64_t)(done % PER_DAY) * (DAY_MS / PER_DAY);
        uint64_t first = submit(&f, t, BATCH);
        start_or_end(&f, t + 1, first, BATCH, false);
        start_or_end(&f, t + 60001, first, BATCH, true);
        if (mark < 3 && done + BATCH >= marks[mark]) {
            snap[mark] = snapshot_bytes(&f);
            in_state[mark] = f.n_jobs;
            mark++;
        }
    }
    /* An ended job's heap while in the state: forget them all (a day
     * later), against the heap holding them. */
    size_t full = heap();
    uint64_t held = f.n_jobs;
    Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
    Jazari__EventCmd ev = JAZARI__EVENT_CMD__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_EVENT;
    c.event = &ev;
    apply(&f, f.time_ms + 2 * DAY_MS, &cp, 1);
    if (f.n_jobs != 0) {
        fprintf(stderr, "bench-state: %llu jobs still in the state after jobs_keep\n",
                (unsigned long long)f.n_jobs);
        return 1;
    }
    ended_bytes = (double)(full - heap()) / (double)held;
    printf(
        "finished jobs in the replicated state (jobs_keep 1 day, 10,000 jobs a day, %d jobs over %d days): "
        "%llu, %llu, %llu jobs held and snapshots of %.1f, %.1f, %.1f MB after 10%%, 50%%, 100%% = %.2fx "
        "from 10%% to 100%% (bounded); an ended job costs %.0f heap bytes while held = %.2fx a pending "
        "job's (%.0f); after all are forgotten the job index holds %.1f MB (its capacity: forgotten ids "
        "leave it)\n",
        JOBS, JOBS / PER_DAY, (unsigned long long)in_state[0], (unsigned long long)in_state[1],
        (unsigned long long)in_state[2], (double)snap[0] / 1e6, (double)snap[1] / 1e6, (double)snap[2] / 1e6,
        (double)snap[2] / (double)snap[0], ended_bytes, ended_bytes / pending_bytes, pending_bytes,
        (double)f.jobs_cap * sizeof(fsm_job *) / 1e6);
    fsm_free(&f);
    return 0;
}

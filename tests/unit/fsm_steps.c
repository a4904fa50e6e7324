/* fsm_steps.c - the leader's steps on the state, for tests. */
#include "fsm_steps.h"

#include <stdlib.h>
#include <string.h>

#include "lib/hw/topo_pb.h"

#include <stdio.h>

#include "test.h"

void fsm_step_apply_in(fsm *f, uint32_t format, int64_t t, Jazari__Command *c, fsm_result *res)
{
    Jazari__Command *cs[] = {c};
    buf b = BUF_INIT;
    codec_entry_encode(format, t, cs, 1, &b);
    char err[200];
    if (fsm_apply(f, b.data, b.len, res, err, sizeof err) != 0)
        test_fail(__FILE__, __LINE__, "%s", err);
    buf_free(&b);
}

void fsm_step_apply(fsm *f, int64_t t, Jazari__Command *c)
{
    fsm_step_apply_in(f, CODEC_FORMAT, t, c, NULL);
}

void fsm_step_node_up(fsm *f, int64_t t, const char *name, unsigned gpus)
{
    topo tp;
    memset(&tp, 0, sizeof tp);
    tp.n_gpus = gpus;
    tp.gpus = calloc(gpus ? gpus : 1, sizeof *tp.gpus);
    tp.links = calloc(gpus ? gpus * gpus : 1, sizeof *tp.links);
    for (unsigned i = 0; i < gpus; i++) {
        tp.gpus[i].index = i;
        tp.gpus[i].numa = -1;
    }
    Jazari__NodeRecord r = JAZARI__NODE_RECORD__INIT;
    r.name = (char *)name;
    r.site = "rabat";
    r.address = "127.0.0.1:7070";
    r.topology = topo_to_pb(&tp);
    Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
    up.node = &r;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_NODE_UP;
    c.node_up = &up;
    fsm_step_apply(f, t, &c);
    topo_pb_free(r.topology);
    free(tp.gpus);
    free(tp.links);
}

void fsm_step_held_entry(buf *out, uint32_t format, int64_t t, uint32_t n, uint64_t min_id)
{
    static char *argv[] = {"true"};
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.hold = true;
    Jazari__Job job[8], *ptrs[8];
    n = n < 8 ? n : 8;
    for (uint32_t i = 0; i < n; i++) {
        jazari__job__init(&job[i]);
        job[i].spec = &spec;
        job[i].user = "amina";
        ptrs[i] = &job[i];
    }
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = ptrs;
    sc.n_jobs = n;
    sc.min_id = min_id;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    Jazari__Command *cs[] = {&c};
    codec_entry_encode(format, t, cs, 1, out);
}

void fsm_step_submit(fsm *f, int64_t t, Jazari__JobSpec *spec)
{
    fsm_step_submit_as(f, t, spec, "amina");
}

void fsm_step_submit_as(fsm *f, int64_t t, Jazari__JobSpec *spec, const char *user)
{
    char *argv[] = {"true"};
    bool bare = spec->n_argv == 0;
    if (bare) {
        spec->argv = argv;
        spec->n_argv = 1;
    }
    Jazari__Job job = JAZARI__JOB__INIT, *ptr = &job;
    job.spec = spec;
    job.uid = 1000;
    job.user = (char *)user;
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = &ptr;
    sc.n_jobs = 1;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    fsm_step_apply(f, t, &c);
    if (bare) {
        spec->argv = NULL;
        spec->n_argv = 0;
    }
}

void fsm_step_pass(fsm *f, sched_state *st, int64_t t, size_t *starts, size_t *preempts, uint64_t *blocked)
{
    sched_plan d;
    sched_pass(f, st, t, 100, &d);
    for (size_t i = 0; i < d.n_starts; i++) {
        const sched_start *s = &d.starts[i];
        Jazari__JobAlloc a[8], *ap[8];
        for (size_t p = 0; p < s->n_parts && p < 8; p++) {
            jazari__job_alloc__init(&a[p]);
            a[p].node = f->nodes[s->parts[p].node].name;
            a[p].gpus = s->parts[p].gpus;
            a[p].n_gpus = s->parts[p].n_gpus;
            a[p].cpus = s->parts[p].cpus;
            a[p].address = f->nodes[s->parts[p].node].address;
            ap[p] = &a[p];
        }
        Jazari__StartCmd sc = JAZARI__START_CMD__INIT;
        sc.id = s->id;
        sc.allocs = ap;
        sc.n_allocs = s->n_parts < 8 ? s->n_parts : 8;
        Jazari__Command c = JAZARI__COMMAND__INIT;
        c.cmd_case = JAZARI__COMMAND__CMD_START;
        c.start = &sc;
        fsm_step_apply(f, t, &c);
    }
    for (size_t i = 0; i < d.n_preempts; i++) {
        Jazari__PreemptCmd pc = JAZARI__PREEMPT_CMD__INIT;
        pc.id = d.preempts[i].id;
        pc.attempt = d.preempts[i].attempt;
        pc.grace_s = d.preempts[i].grace_s;
        pc.reason = d.preempts[i].reason;
        Jazari__Command c = JAZARI__COMMAND__INIT;
        c.cmd_case = JAZARI__COMMAND__CMD_PREEMPT;
        c.preempt = &pc;
        fsm_step_apply(f, t, &c);
    }
    if (starts)
        *starts = d.n_starts;
    if (preempts)
        *preempts = d.n_preempts;
    if (blocked)
        *blocked = d.blocked;
    sched_plan_free(&d);
}

void fsm_step_end(fsm *f, int64_t t, uint64_t id, uint32_t attempt, const char *node, Jazari__JobState st,
                  int exit_code, const char *reason)
{
    Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
    ec.id = id;
    ec.attempt = attempt;
    ec.node = (char *)node;
    ec.state = st;
    ec.exit_code = exit_code;
    ec.reason = (char *)reason;
    Jazari__Command c = JAZARI__COMMAND__INIT;
    c.cmd_case = JAZARI__COMMAND__CMD_END;
    c.end = &ec;
    fsm_step_apply(f, t, &c);
}

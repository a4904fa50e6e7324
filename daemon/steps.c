/* steps.c - srun / jz run inside a job: a step launched over the job's
 * allocation (raft/fstep.h says what a step is). The leader fills in what
 * the request left to the job (nodes, tasks, CPUs per task), checks that it
 * fits, and logs it; the nodes of the step start its parts when their run
 * list shows it (run.c). Only the job's owner launches steps: a step runs
 * as them. */
#include <stdio.h>
#include <string.h>

#include "../common/xmem.h"
#include "jzd.h"
#include "raft/fstep.h"

/* The job's own numbers, for what a step leaves to it. */
static void steps__defaults(const fsm_job *j, Jazari__StepRequestSpec *s)
{
    Jazari__JobSpec *js = j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
    uint32_t tpn = js && js->tasks_per_node ? js->tasks_per_node : 1;
    uint32_t cpt = js && js->cpus_per_task ? js->cpus_per_task : 1;
    if (s->relative < j->n_allocs && s->nodes == 0) {
        s->nodes = j->n_allocs - s->relative;
        if (s->ntasks && s->ntasks < s->nodes) /* srun -n 1: one node */
            s->nodes = s->ntasks;
    }
    if (s->ntasks == 0) {
        bool whole = s->relative == 0 && s->nodes == j->n_allocs;
        s->ntasks = whole && js && js->ntasks ? js->ntasks : s->nodes * tpn;
    }
    if (s->cpus_per_task == 0)
        s->cpus_per_task = cpt;
    jazari__job_spec__free_unpacked(js, NULL);
}

static void steps__on_committed(void *arg, const ctl_outcome *o)
{
    jzd_wait *w = arg;
    jzd *d = w->d;
    net_conn *c = req_unwait(w);
    bool ok = o->code == JAZARI__ERROR_CODE__OK;
    uint32_t launched = ok ? o->res->steps[o->index] : 0;
    if (c && !ok) {
        req_error(c, w->request_id, o->code, false, "%s", o->message);
    } else if (c && !launched) {
        req_error(c, w->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "the step was not launched: the job ended or was requeued meanwhile");
    } else if (c) {
        Jazari__StepReply r = JAZARI__STEP_REPLY__INIT;
        r.step_id = launched - 1;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_STEP_REPLY, &r, o->log_index);
    }
    free(w);
    if (launched)
        run_sync_local(d);
}

void steps_launch(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    const Jazari__StepRequest *r = e->step_request;
    const fsm_job *j = fsm_job_get(&d->ctl.state, r->id);
    authz_level level = j ? authz_job(d->cfg->pol, &w, j->user, j->cls->account) : AUTHZ_NONE;
    if (!j || level == AUTHZ_NONE) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "job %llu not found",
                  (unsigned long long)r->id);
        return;
    }
    if (!authz_owns(&w, j->user)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "job %llu belongs to %s: only its owner launches steps in it (they run as %s)",
                  (unsigned long long)j->id, j->user, j->user);
        return;
    }
    if (!r->spec) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "a step request needs a spec");
        return;
    }
    /* A copy to fill in: the request is the connection's. */
    Jazari__StepRequestSpec s = *r->spec;
    steps__defaults(j, &s);
    char err[400];
    if (fstep_validate(j, &s, err, sizeof err) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "%s", err);
        return;
    }
    Jazari__StepCmd sc = JAZARI__STEP_CMD__INIT;
    sc.id = j->id;
    sc.attempt = j->attempt;
    sc.spec = &s;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_STEP;
    cmd.step = &sc;
    Jazari__AuditRecord audit;
    char what[200];
    req_audit(&audit, what, sizeof what, &w, "step in job %llu: %.60s (%u task%s on %u node%s)",
              (unsigned long long)j->id, s.argv[0], s.ntasks, s.ntasks == 1 ? "" : "s", s.nodes,
              s.nodes == 1 ? "" : "s");
    cmd.audit = &audit;
    ctl_propose(&d->ctl, &cmd, steps__on_committed, req_wait(d, c, e));
}

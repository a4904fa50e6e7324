/* run.c - jobs from queue to process: the leader places pending jobs
 * (sched/) and commits StartCmds; every node starts the parts placed on it
 * (exec/exec.c) and reports how they ended; the leader commits EndCmds. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/cpulist.h"
#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"
#include "sched/sched.h"

#define RUN_MAX_STARTS_PER_PASS 256

static bool run__is_leader(jzd *d)
{
    return d->ctl_running && ctl_is_leader(&d->ctl);
}

/* --- the leader: placing ---------------------------------------------------------- */

static void run__on_started(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    d->starts_in_flight--;
    if (o->code != JAZARI__ERROR_CODE__OK)
        log_warn("run", "a start was not committed: %s", o->message);
    if (d->starts_in_flight == 0) {
        run_sync_local(d);
        if (d->schedule_again)
            run_schedule(d);
    }
}

static void run__on_policy(void *arg, const ctl_outcome *o)
{
    jzd *d = arg;
    d->policy_in_flight = false;
    if (o->code != JAZARI__ERROR_CODE__OK)
        log_warn("run", "the policy's half-life was not committed: %s", o->message);
}

/* Whether a running job, or a start decided earlier in this pass, whose first node
 * is `node` uses port. */
static bool run__port_taken(const fsm *f, const sched_plan *decided, size_t upto, const char *node,
                            uint32_t port)
{
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (j && j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->n_allocs && j->allocs[0].node &&
            j->master_port == port && strcmp(j->allocs[0].node, node) == 0)
            return true;
    }
    for (size_t i = 0; i < upto; i++)
        if (decided->starts[i].master_port == port && decided->starts[i].n_parts &&
            strcmp(f->nodes[decided->starts[i].parts[0].node].name, node) == 0)
            return true;
    return false;
}

/* MASTER_PORT for the i-th start: master_port + id mod 1000, or the next
 * one not used by another job whose first node is the same. */
static uint32_t run__master_port(jzd *d, sched_plan *decided, size_t i)
{
    const fsm *f = &d->ctl.state;
    sched_start *s = &decided->starts[i];
    uint32_t base = (uint32_t)d->cfg->master_port;
    const char *node = f->nodes[s->parts[0].node].name;
    for (uint32_t k = 0; k < 1000; k++) {
        uint32_t port = base + (uint32_t)((s->id + k) % 1000);
        if (!run__port_taken(f, decided, i, node, port))
            return s->master_port = port;
    }
    return s->master_port = base + (uint32_t)(s->id % 1000);
}

/* A pass may take at most 1 / (1 + RUN_PASS_GAP) of the leader's time:
 * after a pass of t ms, the next waits RUN_PASS_GAP * t ms, and what asks
 * for one meanwhile (a submission, an end) is served by that one. A deep
 * queue then does not slow the front door: submissions are acknowledged
 * while the pass waits, and it sees them all at once. */
#define RUN_PASS_GAP 4

static void run__on_pass_timer(uv_timer_t *t)
{
    run_schedule(t->data);
}

void run_role_changed(jzd *d)
{
    d->sched.head = d->sched.preemptor = 0;
    d->sched.shadow = 0;
    d->pass_at = d->pass_ms = 0;
    d->schedule_again = false;
    if (uv_is_active((uv_handle_t *)&d->pass_timer))
        uv_timer_stop(&d->pass_timer);
}

void run_init(jzd *d)
{
    uv_timer_init(&d->loop, &d->pass_timer);
    d->pass_timer.data = d;
}

void run_close(jzd *d)
{
    uv_close((uv_handle_t *)&d->pass_timer, NULL);
}

void run_schedule(jzd *d)
{
    if (d->stopping || !run__is_leader(d))
        return;
    if (d->starts_in_flight > 0) {
        d->schedule_again = true; /* after the starts in flight are applied */
        return;
    }
    uint64_t now = uv_now(&d->loop), due = d->pass_at + RUN_PASS_GAP * d->pass_ms;
    if (d->pass_at && now < due) {
        if (!uv_is_active((uv_handle_t *)&d->pass_timer))
            uv_timer_start(&d->pass_timer, run__on_pass_timer, due - now, 0);
        return;
    }
    uv_timer_stop(&d->pass_timer);
    d->schedule_again = false;
    uint64_t t0 = uv_hrtime();
    const fsm *f = &d->ctl.state;
    bool retention =
        f->events.retention_ms != d->cfg->pol->events_retention_ms && ctl_log_format(&d->ctl) >= 8;
    Jazari__AcctPolicy ap;
    Jazari__AcctRate rates[POL_RATES_MAX], *rate_ptrs[POL_RATES_MAX];
    facct_policy_of(d->cfg->pol, &ap, rates, rate_ptrs);
    char aerr[200];
    bool acct = ctl_log_format(&d->ctl) >= 9 && !facct_policy_same(&f->acct, &ap);
    if (acct && facct_policy_check(&ap, aerr, sizeof aerr) != 0) {
        acct = false; /* pol_parse bounds what facct checks: not expected */
        log_warn("policy", "accounting rules not committed: %s", aerr);
    }
    if ((f->half_life_ms != d->cfg->pol->half_life_ms || retention || acct) && !d->policy_in_flight) {
        /* This leader's policy file says another half-life: committed, so
         * that every controller charges usage alike (and keeps events as
         * long). */
        Jazari__PolicyCmd pc = JAZARI__POLICY_CMD__INIT;
        pc.half_life_ms = d->cfg->pol->half_life_ms;
        pc.events_retention_ms = retention ? d->cfg->pol->events_retention_ms : 0;
        pc.acct = acct ? &ap : NULL;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_POLICY;
        cmd.policy = &pc;
        authz_who file = {.role = AUTHZ_ADMIN, .user = "policy-file"};
        snprintf(file.from, sizeof file.from, "%s (its policy file)", d->cfg->name);
        Jazari__AuditRecord audit;
        char what[100];
        req_audit(
            &audit, what, sizeof what, &file, "policy: usage half-life %lld s, events kept %lld s",
            (long long)(pc.half_life_ms / 1000),
            (long long)((pc.events_retention_ms ? pc.events_retention_ms : f->events.retention_ms) / 1000));
        cmd.audit = &audit;
        d->policy_in_flight = true;
        ctl_propose(&d->ctl, &cmd, run__on_policy, d);
    }
    sched_plan decided;
    sched_pass(f, &d->sched, ctl_now_ms(&d->ctl), RUN_MAX_STARTS_PER_PASS, &decided);
    for (size_t i = 0; i < decided.n_starts; i++) {
        const sched_start *s = &decided.starts[i];
        Jazari__JobAlloc *allocs = xcalloc(s->n_parts, sizeof *allocs);
        Jazari__JobAlloc **ptrs = xcalloc(s->n_parts, sizeof(Jazari__JobAlloc *));
        for (size_t p = 0; p < s->n_parts; p++) {
            jazari__job_alloc__init(&allocs[p]);
            allocs[p].node = f->nodes[s->parts[p].node].name;
            allocs[p].gpus = s->parts[p].gpus;
            allocs[p].n_gpus = s->parts[p].n_gpus;
            allocs[p].cpus = s->parts[p].cpus;
            allocs[p].address = f->nodes[s->parts[p].node].address ? f->nodes[s->parts[p].node].address : "";
            ptrs[p] = &allocs[p];
        }
        Jazari__StartCmd sc = JAZARI__START_CMD__INIT;
        sc.id = s->id;
        sc.master_port = run__master_port(d, &decided, i);
        sc.partition = (char *)(s->partition ? s->partition : ""); /* SLURM_JOB_PARTITION */
        sc.allocs = ptrs;
        sc.n_allocs = s->n_parts;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_START;
        cmd.start = &sc;
        d->starts_in_flight++;
        ctl_propose(&d->ctl, &cmd, run__on_started, d);
        free(allocs);
        free(ptrs);
    }
    for (size_t i = 0; i < decided.n_preempts; i++) {
        const sched_preempt *x = &decided.preempts[i];
        Jazari__PreemptCmd pc = JAZARI__PREEMPT_CMD__INIT;
        pc.id = x->id;
        pc.attempt = x->attempt;
        pc.grace_s = x->grace_s;
        pc.reason = (char *)x->reason;
        Jazari__Command cmd = JAZARI__COMMAND__INIT;
        cmd.cmd_case = JAZARI__COMMAND__CMD_PREEMPT;
        cmd.preempt = &pc;
        log_info("run", "job %llu attempt %u: %s; grace %u s", (unsigned long long)x->id, x->attempt,
                 x->reason, x->grace_s);
        d->starts_in_flight++; /* the next pass waits for it, so it is not decided twice */
        ctl_propose(&d->ctl, &cmd, run__on_started, d);
    }
    /* A full pass may have left ready jobs: go on once these are applied. */
    if (decided.n_starts == RUN_MAX_STARTS_PER_PASS)
        d->schedule_again = true;
    sched_plan_free(&decided);
    uv_update_time(&d->loop);
    d->pass_at = uv_now(&d->loop);
    uint64_t took = uv_hrtime() - t0;
    d->pass_ms = took / 1000000;
    metrics_pass_observe(&d->metrics, took);
}

/* --- every node: running the parts placed here -------------------------------------- */

/* How long an ended part's record is kept after its end is committed and
 * its job no longer lists it: longer than any state view can lag, so that
 * a stale heartbeat reply never starts the same run again. */
#define RUN_RETAIN_MS (120ull * 1000)

static void run__report(jzd *d, exec_part *p);

void run_part_ended(void *arg, exec_part *p)
{
    jzd *d = arg;
    if (p->fenced && !p->end.failed_to_start) {
        /* Lost, not failed: a leader that has not requeued it yet does so
         * (the verdict NODE_FAIL); one that has acknowledges it. */
        p->end.lost = true;
        p->end.cancelled = p->end.timed_out = false;
        snprintf(p->end.reason, sizeof p->end.reason,
                 "stopped on its node: no leader heard for the policy's lost_after");
    }
    if (!d->stopping)
        run__report(d, p);
}

/* The host part of "host:port" into out; "" when there is none. */
static void run__host_of(const char *address, char *out, size_t len)
{
    uint16_t port;
    out[0] = '\0';
    if (address && *address && config_parse_hostport(address, out, len, &port) != 0)
        out[0] = '\0';
}

/* The part's CPUs on this host. A node that emulates a topology (an XML)
 * maps the allocation's CPUs onto the ones this process may use, in turn. */
static void run__host_cpus(jzd *d, const char *cpus, buf *host, buf *mems)
{
    if (!cpus || !*cpus)
        return;
    bool *want = xcalloc(CPULIST_MAX + 1, sizeof *want);
    if (cpulist_parse(cpus, want, CPULIST_MAX + 1) <= 0) {
        free(want);
        return;
    }
    bool *out = xcalloc(CPULIST_MAX + 1, sizeof *out);
    if (d->cfg->topology_xml) {
        cpu_set_t mine;
        int have[CPU_SETSIZE], n = 0, k = 0;
        if (sched_getaffinity(0, sizeof mine, &mine) == 0)
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &mine))
                    have[n++] = c;
        for (int c = 0; n > 0 && c <= CPULIST_MAX; c++)
            if (want[c])
                out[have[k++ % n]] = true;
    } else {
        memcpy(out, want, (CPULIST_MAX + 1) * sizeof *out);
        /* The NUMA nodes of those CPUs, for the cpuset's memory. */
        bool *numa = xcalloc(CPULIST_MAX + 1, sizeof *numa), *one = xcalloc(CPULIST_MAX + 1, sizeof *one);
        for (size_t i = 0; i < d->topo->n_numa; i++) {
            if (cpulist_parse(d->topo->numa[i].cpuset, one, CPULIST_MAX + 1) <= 0 ||
                d->topo->numa[i].os_index > CPULIST_MAX)
                continue;
            for (int c = 0; c <= CPULIST_MAX && !numa[d->topo->numa[i].os_index]; c++)
                numa[d->topo->numa[i].os_index] = one[c] && want[c];
        }
        cpulist_format(numa, CPULIST_MAX + 1, mems);
        free(numa);
        free(one);
    }
    cpulist_format(out, CPULIST_MAX + 1, host);
    free(want);
    free(out);
}

/* The /dev/nvidiaN number of this host's GPU at index i: the driver's (a
 * live probe), else i (an emulated node's GPUs are numbered in order). */
static uint32_t run__gpu_minor(const jzd *d, uint32_t i)
{
    const topo_gpu *g = i < d->topo->n_gpus ? &d->topo->gpus[i] : NULL;
    return g && g->has_minor ? g->minor : i;
}

/* Starts this node's part of job (step 0), or of its step `step` (id + 1). */
static void run__start_part(jzd *d, const Jazari__Job *job, uint32_t step, uint64_t index)
{
    const Jazari__JobAlloc *mine = NULL;
    uint32_t rank = 0;
    for (size_t i = 0; i < job->n_allocs && !mine; i++) {
        if (strcmp(job->allocs[i]->node, d->cfg->name) == 0) {
            mine = job->allocs[i];
            rank = (uint32_t)i;
        }
    }
    if (!mine || !job->spec || mine->done)
        return;
    /* The job runs as its user's account here, found by name. */
    Jazari__Job local = *job;
    uid_t uid;
    gid_t gid;
    char why[300];
    int rc = req_account(job->user, job->uid, &uid, &gid, why, sizeof why);
    if (rc == -2) {
        /* The lookup failed (EMFILE, a directory service down): nothing is
         * known of the account. The part is lost like any failure of the
         * node, and requeued; the node is not remembered as lacking it. */
        log_warn("run", "job %llu: %s: the part is lost and requeued", (unsigned long long)job->id, why);
        if (step) /* a step's part: it fails, the job goes on */
            return;
        exec_part *p = exec_no_account(&d->ex, job->id, job->attempt, why);
        p->end.no_account = false;
        p->start_index = index;
        return;
    }
    if (rc != 0) {
        char reason[400];
        snprintf(reason, sizeof reason,
                 "%s: its jobs go to other nodes (ask this site's admins for an account)", why);
        log_warn("run", "job %llu: %s", (unsigned long long)job->id, why);
        if (!step)
            exec_no_account(&d->ex, job->id, job->attempt, reason)->start_index = index;
        return;
    }
    local.uid = (uint32_t)uid;
    local.gid = (uint32_t)gid;
    char master[256];
    run__host_of(job->allocs[0]->address, master, sizeof master);
    if (!master[0] || strcmp(master, "0.0.0.0") == 0 || strcmp(master, "::") == 0)
        snprintf(master, sizeof master, "%s", job->allocs[0]->node);
    buf cpus = BUF_INIT, mems = BUF_INIT;
    run__host_cpus(d, mine->cpus, &cpus, &mems);
    Jazari__StepSpec sp = JAZARI__STEP_SPEC__INIT;
    sp.job = &local;
    sp.node_rank = rank;
    sp.node_name = (char *)d->cfg->name;
    sp.host_cpus = (char *)buf_str(&cpus);
    sp.host_mems = (char *)buf_str(&mems);
    sp.kill_grace_s = (uint32_t)((d->cfg->kill_grace_ms + 999) / 1000);
    sp.master_addr = master;
    sp.master_port = job->master_port ? job->master_port : (uint32_t)(d->cfg->master_port + job->id % 1000);
    sp.cgroup_version = (uint32_t)d->cfg->cgroup_version;
    sp.step = step;
    sp.tmp_base = d->cfg->tmp_dir;
    sp.socket = d->cfg->socket;
    sp.bin_dir = d->bin_dir;
    sp.cluster = d->cfg->cluster_name;
    sp.gpu_fence = d->cfg->gpu_isolation != 0 && d->topo->n_gpus > 0; /* nothing to fence without GPUs */
    uint32_t *minors = xcalloc(mine->n_gpus + 1, sizeof *minors);
    for (size_t i = 0; i < mine->n_gpus; i++)
        minors[i] = run__gpu_minor(d, mine->gpus[i]);
    sp.gpu_minors = minors;
    sp.n_gpu_minors = mine->n_gpus;
    exec_part *p = exec_start(&d->ex, &sp);
    free(minors);
    p->start_index = index;
    if (!step) /* the job's own part holds its GPUs here for all its life */
        usage_part_start(d, p, mine->gpus, mine->n_gpus);
    buf_free(&cpus);
    buf_free(&mems);
}

static bool run__listed(const exec_part *p, Jazari__Job *const *jobs, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (jobs[j]->id != p->id || jobs[j]->attempt != p->attempt)
            continue;
        if (p->step == 0)
            return true;
        for (size_t s = 0; s < jobs[j]->n_steps; s++)
            if (jobs[j]->steps[s]->id + 1 == p->step)
                return jobs[j]->steps[s]->state == JAZARI__JOB_STATE__JOB_RUNNING;
    }
    return false;
}

/* The job's running steps that have a part on this node and none here
 * yet: started once the job's own part runs (it makes the job's group and
 * directory), unless the job is being preempted. */
static void run__start_steps(jzd *d, const Jazari__Job *job, const exec_part *own, uint64_t index)
{
    if (!own || !own->running || job->preempt_time_ms)
        return;
    uint32_t rank = UINT32_MAX;
    for (size_t i = 0; i < job->n_allocs && rank == UINT32_MAX; i++)
        if (strcmp(job->allocs[i]->node, d->cfg->name) == 0)
            rank = (uint32_t)i;
    for (size_t s = 0; s < job->n_steps; s++) {
        const Jazari__JobStep *st = job->steps[s];
        bool here = false;
        for (size_t r = 0; r < st->n_ranks && !here; r++)
            here = st->ranks[r] == rank && !(r < st->n_ended && st->ended[r]);
        if (!here || st->state != JAZARI__JOB_STATE__JOB_RUNNING || st->id >= UINT32_MAX - 1)
            continue;
        if (!exec_find(&d->ex, job->id, job->attempt, st->id + 1))
            run__start_part(d, job, st->id + 1, index);
    }
}

/* The job's time limit changed (jz update --time): its supervisors here,
 * the job's own and its steps', learn it. */
static void run__limits(jzd *d, const Jazari__Job *job, exec_part *own)
{
    uint64_t limit = job->spec ? job->spec->time_limit_s : 0;
    if (!limit)
        return;
    if (own && own->running && !own->stop_sent && own->limit_s != limit)
        exec_set_limit(&d->ex, own, limit);
    for (size_t s = 0; s < job->n_steps; s++) {
        exec_part *p = job->steps[s]->id < UINT32_MAX - 1
                           ? exec_find(&d->ex, job->id, job->attempt, job->steps[s]->id + 1)
                           : NULL;
        if (p && p->running && !p->stop_sent && p->limit_s != limit)
            exec_set_limit(&d->ex, p, limit);
    }
}

/* A job the state says runs here, that this node neither runs nor
 * remembers, and that was started before this node could have been told
 * (by RUN_STALE_MS): it is reported lost (NODE_FAIL, requeued as any lost
 * part), never started a second time. That is the first view of
 *   - a daemon that starts (its parts' supervisors, which outlive it, are
 *     adopted first): a job started RUN_STALE_MS before it started;
 *   - a network restored from a backup (backup.c): the log jumped by
 *     BACKUP_EPOCH (so that the view is not taken for an older one), or
 *     this controller was started with --restore. The state is the
 *     backup's, older than what this node saw: a job started RUN_STALE_MS
 *     before now was started by the lost network, not by the restored
 *     leader; and one this node ended and reported is reported again.
 * Returns the time before which a job counts as stale, or 0 for an
 * ordinary view. */
#define RUN_STALE_MS (60 * 1000)

static int64_t run__stale_before(jzd *d, uint64_t index)
{
    bool jumped = d->synced_index && index > d->synced_index && index - d->synced_index >= BACKUP_EPOCH / 2;
    if (jumped || (!d->synced_index && d->restored))
        return clock_wall_ms() - RUN_STALE_MS;
    if (!d->synced_index)
        return (int64_t)d->metrics.start_s * 1000 - RUN_STALE_MS;
    return 0;
}

/* In such a view: 1 when job (p its part here, or NULL) was dealt with as
 * the comment above says, else 0. */
static int run__reconcile(jzd *d, const Jazari__Job *job, exec_part *p, int64_t stale_before)
{
    if (p && !p->running && p->reported) {
        log_warn("run", "job %llu: the restored network thinks it runs here; its end is reported again",
                 (unsigned long long)job->id);
        p->reported = false; /* run_tick reports it */
        return 1;
    }
    if (p || !job->start_time_ms || job->start_time_ms >= stale_before)
        return 0;
    log_warn("run",
             "job %llu: the state says it runs here, but it does not (it started before this node "
             "could know): reported lost",
             (unsigned long long)job->id);
    exec_part *s = exec_skip(&d->ex, job->id, job->attempt,
                             "not running on this node (restarted, or the network restored from a backup)");
    s->end.cancelled = false;
    s->end.lost = true;
    return 1;
}

void run_sync(jzd *d, Jazari__Job *const *jobs, size_t n, uint64_t index)
{
    if (d->stopping)
        return;
    int64_t stale_before = run__stale_before(d, index);
    if (index < d->synced_index)
        return; /* an older view than one already acted on */
    if (stale_before && d->synced_index)
        log_warn("run",
                 "the network was restored from a backup (log index %llu, this node last saw %llu): "
                 "its jobs here are reconciled with the restored state",
                 (unsigned long long)index, (unsigned long long)d->synced_index);
    d->synced_index = index;
    d->restored = false;
    for (size_t i = 0; i < n; i++) {
        exec_part *p = exec_find(&d->ex, jobs[i]->id, jobs[i]->attempt, 0);
        if (stale_before && run__reconcile(d, jobs[i], p, stale_before))
            continue;
        run__limits(d, jobs[i], p);
        if (!p && !jobs[i]->preempt_time_ms) {
            /* The job's own part first: a step the same view lists (srun
             * right after the allocation came) starts with it, not at the
             * next view. */
            run__start_part(d, jobs[i], 0, index);
            run__start_steps(d, jobs[i], exec_find(&d->ex, jobs[i]->id, jobs[i]->attempt, 0), index);
        } else if (!p) {
            exec_skip(&d->ex, jobs[i]->id, jobs[i]->attempt, "preempted before it started");
        } else if (!jobs[i]->preempt_time_ms || !p->running || p->stop_sent) {
            run__start_steps(d, jobs[i], p, index);
        } else {
            /* Preempted: its warning signal (or TERM), KILL after the grace. */
            const Jazari__JobSpec *s = jobs[i]->spec;
            p->stop_sent = true;
            exec_preempt(&d->ex, p, s && s->warn_signal ? (int)s->warn_signal : SIGTERM,
                         jobs[i]->preempt_grace_s);
        }
    }
    uint64_t now = uv_now(&d->loop);
    exec_part *next;
    for (exec_part *p = d->ex.parts; p; p = next) {
        next = p->next;
        if (run__listed(p, jobs, n))
            continue;
        if (p->running && !p->stop_sent && index >= p->start_index) {
            /* Cancelled, ended elsewhere, requeued: it must not hold the
             * node's GPUs. */
            p->stop_sent = true;
            exec_stop(&d->ex, p, false);
        } else if (!p->running && p->reported && now - p->ended_ms > RUN_RETAIN_MS) {
            exec_forget(&d->ex, p);
        }
    }
}

/* The running jobs of every node, from one scan of the job table, kept
 * until the state changes: the leader answers every held heartbeat after
 * an entry that starts or ends jobs, and a scan per heartbeat made that
 * O(nodes x jobs) (at 10,000 nodes a fill of the queue crawled). */
static void run__index(jzd *d)
{
    const fsm *f = &d->ctl.state;
    if (d->runidx.changes == f->changes + 1)
        return;
    free(d->runidx.first);
    free(d->runidx.slots);
    size_t nn = f->n_nodes, total = 0;
    uint32_t *first = xcalloc(nn + 2, sizeof *first);
    uint64_t *mark = xcalloc(nn + 1, sizeof *mark); /* the last job counted there, + 1 */
    for (int round = 0; round < 2; round++) {
        for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
            const fsm_job *j = f->jobs[k];
            if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
                continue;
            for (uint32_t a = 0; a < j->n_allocs; a++) {
                size_t i;
                if (!j->allocs[a].node || !strmap_get(&f->node_index, j->allocs[a].node, &i) || i >= nn ||
                    mark[i] == k + 1)
                    continue;
                mark[i] = k + 1;
                if (round == 0)
                    first[i + 2]++; /* counts, shifted: prefix sums give the starts */
                else
                    d->runidx.slots[first[i + 1]++] = k;
            }
        }
        if (round == 0) {
            for (size_t i = 0; i < nn; i++)
                first[i + 2] += first[i + 1];
            total = first[nn + 1];
            d->runidx.slots = xcalloc(total + 1, sizeof *d->runidx.slots);
            memset(mark, 0, (nn + 1) * sizeof *mark);
        }
    }
    /* After the fill, first[i + 1] is where node i's parts end, which
     * is where node i + 1's begin: first[0..nn] are the starts. */
    free(mark);
    d->runidx.first = first;
    d->runidx.n_nodes = nn;
    d->runidx.changes = f->changes + 1;
}

/* The running jobs on node (their slots in the job table), or 0 of them. */
static size_t run__on(jzd *d, const char *node, const uint64_t **slots)
{
    const fsm *f = &d->ctl.state;
    size_t at;
    *slots = NULL;
    if (!f->n_running || !strmap_get(&f->node_index, node, &at))
        return 0;
    run__index(d);
    if (at >= d->runidx.n_nodes)
        return 0;
    *slots = d->runidx.slots + d->runidx.first[at];
    return d->runidx.first[at + 1] - d->runidx.first[at];
}

uint64_t run_digest_on(jzd *d, const char *node)
{
    const fsm *f = &d->ctl.state;
    const uint64_t *slots;
    size_t n = run__on(d, node, &slots);
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        const fsm_job *j = f->jobs[slots[i]];
        uint64_t v = j->id ^ ((uint64_t)j->attempt << 48);
        for (int k = 0; k < 64; k += 8)
            h = (h ^ ((v >> k) & 0xff)) * 1099511628211ull;
        /* and the steps it runs (the list holds the running ones) */
        for (uint32_t s = 0; s < j->n_steps; s++)
            if (j->steps[s]->state == JAZARI__JOB_STATE__JOB_RUNNING)
                for (int k = 0; k < 32; k += 8)
                    h = (h ^ ((j->steps[s]->id >> k) & 0xff)) * 1099511628211ull;
    }
    return h;
}

Jazari__Job **run_jobs_on(jzd *d, const char *node, size_t *n)
{
    const fsm *f = &d->ctl.state;
    size_t cap = 0;
    Jazari__Job **out = NULL;
    const uint64_t *slots;
    size_t on = run__on(d, node, &slots);
    *n = 0;
    for (size_t s = 0; s < on; s++) {
        const fsm_job *j = f->jobs[slots[s]];
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            Jazari__Job **p = realloc(out, cap * sizeof(Jazari__Job *));
            if (!p)
                abort();
            out = p;
        }
        /* Each job with its own copies of the allocation messages. */
        Jazari__Job *m = xcalloc(1, sizeof *m);
        Jazari__JobAlloc *allocs = xcalloc(j->n_allocs, sizeof *allocs);
        Jazari__JobAlloc **ptrs = xcalloc(j->n_allocs, sizeof(Jazari__JobAlloc *));
        fsm_job_to_pb(j, m, allocs, ptrs);
        m->usage = NULL; /* the controllers' business, not the node's */
        m->stop_how = 0;
        /* Only the running steps: what the node has to start or keep. */
        Jazari__JobStep **steps = xcalloc(m->n_steps + 1, sizeof(Jazari__JobStep *));
        size_t ns = 0;
        for (size_t s2 = 0; s2 < m->n_steps; s2++)
            if (m->steps[s2]->state == JAZARI__JOB_STATE__JOB_RUNNING)
                steps[ns++] = m->steps[s2];
        m->steps = steps;
        m->n_steps = ns;
        out[(*n)++] = m;
    }
    return out;
}

void run_jobs_free(Jazari__Job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jazari__job_spec__free_unpacked(jobs[i]->spec, NULL);
        free(jobs[i]->n_allocs ? jobs[i]->allocs[0] : NULL);
        free(jobs[i]->allocs);
        free(jobs[i]->steps); /* the array: the steps are the state's */
        free(jobs[i]);
    }
    free(jobs);
}

void run_sync_local(jzd *d)
{
    if (!run__is_leader(d))
        return;
    size_t n;
    Jazari__Job **jobs = run_jobs_on(d, d->cfg->name, &n);
    run_sync(d, jobs, n, raft_last_applied(&d->ctl.raft));
    run_jobs_free(jobs, n);
}

void run_fence(jzd *d, uint64_t silent_ms)
{
    unsigned n = 0;
    for (exec_part *p = d->ex.parts; p; p = p->next) {
        if (!p->running || p->fenced)
            continue;
        p->fenced = p->stop_sent = true;
        exec_stop(&d->ex, p, true);
        n += p->step == 0;
    }
    if (n)
        log_warn("run",
                 "no leader heard for %.0f s (the policy's lost_after is %.0f s): %u job%s stopped here, "
                 "to be requeued elsewhere; their ends are reported when a leader is heard again",
                 (double)silent_ms / 1000.0, (double)d->lost_after_ms / 1000.0, n, n == 1 ? "" : "s");
}

/* --- ends: reported by the node, committed by the leader --------------------------------- */

static Jazari__JobState run__verdict(const step_end *e)
{
    if (e->lost)
        return JAZARI__JOB_STATE__JOB_NODE_FAIL;
    if (e->failed_to_start)
        return JAZARI__JOB_STATE__JOB_FAILED;
    if (e->timed_out)
        return JAZARI__JOB_STATE__JOB_TIMEOUT;
    if (e->cancelled)
        return JAZARI__JOB_STATE__JOB_CANCELLED;
    return e->exit_code == 0 ? JAZARI__JOB_STATE__JOB_COMPLETED : JAZARI__JOB_STATE__JOB_FAILED;
}

/* Which part an end is about, for the callbacks: a part is found again by
 * its run (it may have been forgotten meanwhile). */
typedef struct run__end_wait {
    jzd *d;
    uint64_t id;
    uint32_t attempt, step;
    jzd_wait *w; /* an agent's request, or NULL for this node's own part */
} run__end_wait;

static void run__acknowledged(jzd *d, uint64_t id, uint32_t attempt, uint32_t step, bool ok)
{
    exec_part *p = exec_find(&d->ex, id, attempt, step);
    if (p) {
        p->in_flight = false;
        p->reported = ok;
    }
}

static void run__on_end_committed(void *arg, const ctl_outcome *o)
{
    run__end_wait *ew = arg;
    jzd *d = ew->d;
    if (ew->w) {
        net_conn *c = req_unwait(ew->w);
        if (c && o->code != JAZARI__ERROR_CODE__OK) {
            req_error(c, ew->w->request_id, o->code, false, "%s", o->message);
        } else if (c) {
            wire_reply r;
            Jazari__JobEndReply jr = JAZARI__JOB_END_REPLY__INIT;
            wire_reply_init(&r, ew->w->request_id, JAZARI__ERROR_CODE__OK, NULL);
            r.env.body_case = JAZARI__ENVELOPE__BODY_JOB_END_REPLY;
            r.env.job_end_reply = &jr;
            net_conn_send(c, &r.env);
        }
        free(ew->w);
    } else {
        run__acknowledged(d, ew->id, ew->attempt, ew->step, o->code == JAZARI__ERROR_CODE__OK);
    }
    free(ew);
    if (o->code == JAZARI__ERROR_CODE__OK)
        run_schedule(d);
}

static void run__propose_end(jzd *d, Jazari__EndCmd *ec, jzd_wait *w)
{
    const Jazari__PartUsage *u = ec->usage;
    if (u) {
        char step[32] = "";
        if (ec->step)
            snprintf(step, sizeof step, " step %u", ec->step - 1);
        log_info("run",
                 "job %llu attempt %u%s on %s used %llu ms of CPU, %llu bytes at most, %llu mJ, GPUs %s%u%%",
                 (unsigned long long)ec->id, ec->attempt, step, ec->node ? ec->node : "?",
                 (unsigned long long)u->cpu_ms, (unsigned long long)u->max_rss_bytes,
                 (unsigned long long)u->energy_mj, u->has_gpu_util ? "" : "unmeasured ", u->gpu_util_pct);
    }
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_END;
    cmd.end = ec;
    run__end_wait *ew = xcalloc(1, sizeof *ew);
    ew->d = d;
    ew->id = ec->id;
    ew->attempt = ec->attempt;
    ew->step = ec->step;
    ew->w = w;
    ctl_propose(&d->ctl, &cmd, run__on_end_committed, ew);
}

static void run__end_ack(net_conn *c, uint64_t request_id)
{
    wire_reply out;
    Jazari__JobEndReply jr = JAZARI__JOB_END_REPLY__INIT;
    wire_reply_init(&out, request_id, JAZARI__ERROR_CODE__OK, NULL);
    out.env.body_case = JAZARI__ENVELOPE__BODY_JOB_END_REPLY;
    out.env.job_end_reply = &jr;
    net_conn_send(c, &out.env);
}

/* An end of a run the leader had given up on (its node was unreachable
 * past lost_after, then came back): the record says where that run went,
 * at most one such event a second (the node's word, bounded). */
static void run__stale_end(jzd *d, const fsm_job *j, const Jazari__JobEndRequest *r)
{
    uint64_t now = uv_now(&d->loop);
    char text[400];
    snprintf(text, sizeof text,
             "job %llu attempt %u ended on %s after it was lost there (now attempt %u): %s%s",
             (unsigned long long)r->id, r->attempt, r->node, j->attempt, r->lost ? "" : "exit ",
             r->lost ? (r->reason && *r->reason ? r->reason : "lost") : "");
    if (!r->lost)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%d", r->exit_code);
    log_warn("run", "%s", text);
    if (now - d->stale_event_ms < 1000 || ctl_log_format(&d->ctl) < 8)
        return;
    d->stale_event_ms = now;
    events_note(d, "job_stale_end", "warning", r->node, -1, text);
}

void run_job_end(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__JobEndRequest *r = e->job_end_request;
    if (!req_peer_is_node(d, c, r->node)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "a job's end on %s comes from that node's daemon only", r->node ? r->node : "?");
        return;
    }
    const fsm_job *j = fsm_job_get(&d->ctl.state, r->id);
    if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING || j->attempt != r->attempt) {
        run__end_ack(c, e->request_id); /* that run is over already: nothing to commit */
        if (j && r->attempt < j->attempt && r->step == 0)
            run__stale_end(d, j, r);
        return;
    }
    bool part = false;
    for (uint32_t a = 0; a < j->n_allocs && !part; a++)
        part = j->allocs[a].node && r->node && strcmp(j->allocs[a].node, r->node) == 0;
    if (!part) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "node %.64s has no part of job %llu", r->node ? r->node : "(none)",
                  (unsigned long long)r->id);
        return;
    }
    step_end end;
    memset(&end, 0, sizeof end);
    end.exit_code = r->exit_code;
    end.failed_to_start = r->failed_to_start;
    end.lost = r->lost;
    end.timed_out = r->timed_out;
    end.cancelled = r->cancelled;
    char reason[600];
    snprintf(reason, sizeof reason, "%s%s%s", r->node && *r->node ? r->node : "",
             r->reason && *r->reason ? ": " : "", r->reason ? r->reason : "");
    if (!r->reason || !*r->reason)
        reason[0] = '\0';
    log_info("run", "job %llu attempt %u ended on %s with %d%s%s", (unsigned long long)r->id, r->attempt,
             r->node, r->exit_code, reason[0] ? ": " : "", reason);
    Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
    ec.id = r->id;
    ec.attempt = r->attempt;
    ec.node = r->node;
    ec.exit_code = r->exit_code;
    ec.state = run__verdict(&end);
    ec.reason = reason;
    ec.no_account = r->no_account && r->step == 0;
    ec.step = r->step;
    /* What the part used, as its agent measured it; an older agent's end
     * has none (the job is then charged its allocation only). */
    char why[160];
    if (r->usage && usage_valid(r->usage, why, sizeof why))
        ec.usage = r->usage;
    else if (r->usage)
        log_warn("run", "job %llu on %s: the usage reported is not believed (%s): none recorded",
                 (unsigned long long)r->id, r->node, why);
    run__propose_end(d, &ec, req_wait(d, c, e));
}

/* Agents' reports are idempotent (the leader ends a run once): an
 * unacknowledged one is simply sent again on the next tick. */
static void run__on_report_reply(void *arg, wire_msg *reply, const char *why, bool sent)
{
    run__end_wait *a = arg;
    const Jazari__Envelope *r = reply ? wire_msg_env(reply) : NULL;
    run__acknowledged(a->d, a->id, a->attempt, a->step,
                      r && r->body_case == JAZARI__ENVELOPE__BODY_JOB_END_REPLY);
    if (!r)
        log_debug("run", "report of job %llu failed: %s", (unsigned long long)a->id, why);
    (void)sent;
    free(a);
    wire_msg_free(reply);
}

static void run__report(jzd *d, exec_part *p)
{
    if (p->running || p->reported || p->in_flight)
        return;
    p->in_flight = true;
    usage_part_end(d, p); /* once: a report sent again says the same */
    Jazari__PartUsage usage;
    usage_pb(&p->end, &usage);
    if (run__is_leader(d)) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s%s%s", p->end.reason[0] ? d->cfg->name : "",
                 p->end.reason[0] ? ": " : "", p->end.reason);
        Jazari__EndCmd ec = JAZARI__END_CMD__INIT;
        ec.id = p->id;
        ec.attempt = p->attempt;
        ec.node = (char *)d->cfg->name;
        ec.exit_code = p->end.exit_code;
        ec.state = run__verdict(&p->end);
        ec.reason = reason;
        ec.no_account = p->end.no_account;
        ec.step = p->step;
        ec.usage = &usage;
        run__propose_end(d, &ec, NULL);
        return;
    }
    Jazari__JobEndRequest r = JAZARI__JOB_END_REQUEST__INIT;
    r.id = p->id;
    r.attempt = p->attempt;
    r.node = (char *)d->cfg->name;
    r.exit_code = p->end.exit_code;
    r.failed_to_start = p->end.failed_to_start;
    r.lost = p->end.lost;
    r.timed_out = p->end.timed_out;
    r.cancelled = p->end.cancelled;
    r.no_account = p->end.no_account;
    r.reason = p->end.reason;
    r.step = p->step;
    r.usage = &usage;
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.body_case = JAZARI__ENVELOPE__BODY_JOB_END_REQUEST;
    env.job_end_request = &r;
    run__end_wait *a = xcalloc(1, sizeof *a);
    a->d = d;
    a->id = p->id;
    a->attempt = p->attempt;
    a->step = p->step;
    uplink_request(&d->up, &env, run__on_report_reply, a);
}

void run_tick(jzd *d)
{
    exec_poll(&d->ex);
    for (exec_part *p = d->ex.parts; p; p = p->next)
        run__report(d, p);
    if (run__is_leader(d)) {
        run_sync_local(d);
        run_schedule(d);
    }
}

void run_free(jzd *d)
{
    free(d->runidx.first);
    free(d->runidx.slots);
    memset(&d->runidx, 0, sizeof d->runidx);
}

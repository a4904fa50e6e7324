/* fstep.c - job steps in the replicated state (fstep.h). */
#include "fstep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cpulist.h"
#include "../../common/jobspec.h"
#include "../../common/xmem.h"

/* CPUs the job holds on its node at index a. */
static uint32_t fstep__cpus_on(const fsm_job *j, uint32_t a)
{
    const char *list = j->allocs[a].cpus;
    if (list && *list) {
        static bool set[CPULIST_MAX + 1]; /* applied on one thread */
        int n = cpulist_parse(list, set, CPULIST_MAX + 1);
        if (n > 0)
            return (uint32_t)n;
    }
    return j->cpus_per_node ? j->cpus_per_node : 1;
}

static uint32_t fstep__running(const fsm_job *j)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < j->n_steps; i++)
        n += j->steps[i]->state == JAZARI__JOB_STATE__JOB_RUNNING;
    return n;
}

int fstep_validate(const fsm_job *j, const Jazari__StepRequestSpec *s, char *err, size_t errlen)
{
    if (j->state != JAZARI__JOB_STATE__JOB_RUNNING || j->preempt_ms) {
        snprintf(err, errlen, "job %llu is not running: a step runs only inside a running job",
                 (unsigned long long)j->id);
        return -1;
    }
    if (!s || s->n_argv == 0 || s->n_argv > FSTEP_ARGV_MAX || !s->argv[0] || !*s->argv[0]) {
        snprintf(err, errlen, "a step needs a command (at most %u words)", FSTEP_ARGV_MAX);
        return -1;
    }
    if (jazari__step_request_spec__get_packed_size(s) > FSTEP_SPEC_MAX) {
        snprintf(err, errlen, "the step's command and environment exceed %u KiB", FSTEP_SPEC_MAX >> 10);
        return -1;
    }
    if (s->relative >= j->n_allocs || s->nodes == 0 || s->nodes > j->n_allocs - s->relative) {
        snprintf(err, errlen, "the step asks for %u node%s from node %u; job %llu has %u", s->nodes,
                 s->nodes == 1 ? "" : "s", s->relative, (unsigned long long)j->id, j->n_allocs);
        return -1;
    }
    if (s->ntasks < s->nodes || s->ntasks > FSTEP_TASKS_MAX) {
        snprintf(err, errlen, "a step of %u task%s cannot run on %u nodes (at least one task a node)",
                 s->ntasks, s->ntasks == 1 ? "" : "s", s->nodes);
        return -1;
    }
    if (s->pty && s->ntasks != 1) {
        snprintf(err, errlen, "--pty runs one task: %u asked (drop -n, or give -n 1)", s->ntasks);
        return -1;
    }
    if (s->pty_rows > FSTEP_PTY_SIDE_MAX || s->pty_cols > FSTEP_PTY_SIDE_MAX) {
        snprintf(err, errlen, "--pty: a window of %u x %u characters; at most %u each way", s->pty_rows,
                 s->pty_cols, FSTEP_PTY_SIDE_MAX);
        return -1;
    }
    uint32_t cpt = s->cpus_per_task ? s->cpus_per_task : 1;
    for (uint32_t i = 0; i < s->nodes; i++) {
        uint32_t a = s->relative + i, count, first;
        jobspec_tasks(s->ntasks, s->nodes, i, &count, &first);
        uint64_t want = (uint64_t)count * cpt, have = fstep__cpus_on(j, a);
        if (want > have) {
            snprintf(
                err, errlen,
                "the step needs %llu CPUs on %s (%u task%s x %u); the job holds %llu there (ask for fewer "
                "tasks or CPUs per task)",
                (unsigned long long)want, j->allocs[a].node, count, count == 1 ? "" : "s", cpt,
                (unsigned long long)have);
            return -1;
        }
        if (!s->gpus_none && s->gpus_per_node > j->allocs[a].n_gpus) {
            snprintf(err, errlen, "the step asks for %u GPUs on %s; the job holds %u there", s->gpus_per_node,
                     j->allocs[a].node, j->allocs[a].n_gpus);
            return -1;
        }
    }
    if (fstep__running(j) >= FSTEP_MAX) {
        snprintf(err, errlen, "job %llu already runs %u steps: wait for one to end",
                 (unsigned long long)j->id, FSTEP_MAX);
        return -1;
    }
    if (j->steps_started >= UINT32_MAX - 2) {
        snprintf(err, errlen, "job %llu has launched all the steps it may", (unsigned long long)j->id);
        return -1;
    }
    return 0;
}

/* A copy of m, allocated the way protobuf-c frees it. */
static Jazari__JobStep *fstep__copy(const Jazari__JobStep *m)
{
    size_t n = jazari__job_step__get_packed_size(m);
    uint8_t *tmp = xcalloc(n ? n : 1, 1);
    jazari__job_step__pack(m, tmp);
    Jazari__JobStep *c = jazari__job_step__unpack(NULL, n, tmp);
    free(tmp);
    if (!c)
        abort(); /* out of memory: what was just packed always unpacks */
    return c;
}

/* Makes room for one more step: the oldest ended one goes. */
static bool fstep__room(fsm_job *j)
{
    if (j->n_steps < FSTEP_MAX)
        return true;
    for (uint32_t i = 0; i < j->n_steps; i++) {
        if (j->steps[i]->state != JAZARI__JOB_STATE__JOB_RUNNING) {
            jazari__job_step__free_unpacked(j->steps[i], NULL);
            memmove(&j->steps[i], &j->steps[i + 1], (j->n_steps - i - 1) * sizeof(Jazari__JobStep *));
            j->n_steps--;
            return true;
        }
    }
    return false;
}

const Jazari__JobStep *fstep_launch(fsm_job *j, int64_t now, const Jazari__StepRequestSpec *s)
{
    char err[256];
    if (fstep_validate(j, s, err, sizeof err) != 0 || !fstep__room(j))
        return NULL;
    uint32_t *ranks = xcalloc(s->nodes, sizeof *ranks);
    protobuf_c_boolean *ended = xcalloc(s->nodes, sizeof *ended);
    for (uint32_t i = 0; i < s->nodes; i++)
        ranks[i] = s->relative + i;
    Jazari__JobStep m = JAZARI__JOB_STEP__INIT;
    m.id = j->steps_started;
    m.spec = (Jazari__StepRequestSpec *)s;
    m.state = JAZARI__JOB_STATE__JOB_RUNNING;
    m.ranks = ranks;
    m.n_ranks = s->nodes;
    m.ended = ended;
    m.n_ended = s->nodes;
    m.start_time_ms = now;
    Jazari__JobStep **p = realloc(j->steps, (j->n_steps + 1) * sizeof(Jazari__JobStep *));
    if (!p)
        abort();
    j->steps = p;
    j->steps[j->n_steps++] = fstep__copy(&m);
    j->steps_started++;
    free(ranks);
    free(ended);
    return j->steps[j->n_steps - 1];
}

const Jazari__JobStep *fstep_find(const fsm_job *j, uint32_t id)
{
    for (uint32_t i = 0; i < j->n_steps; i++)
        if (j->steps[i]->id == id)
            return j->steps[i];
    return NULL;
}

/* An ended step keeps what `jz show` prints, not its environment. */
static void fstep__forget_env(Jazari__JobStep *st)
{
    Jazari__StepRequestSpec *s = st->spec;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_env; i++)
        free(s->env[i]);
    free(s->env);
    s->env = NULL;
    s->n_env = 0;
}

static void fstep__set_reason(Jazari__JobStep *st, const char *reason)
{
    if (st->reason != protobuf_c_empty_string)
        free(st->reason);
    st->reason = xstrdup(reason ? reason : "");
}

bool fstep_part_end(fsm_job *j, int64_t now, uint32_t id, const char *node, Jazari__JobState state,
                    int32_t exit_code, const char *reason)
{
    Jazari__JobStep *st = (Jazari__JobStep *)fstep_find(j, id);
    if (!st || st->state != JAZARI__JOB_STATE__JOB_RUNNING || !node)
        return false;
    size_t r = 0;
    while (r < st->n_ranks && !(st->ranks[r] < j->n_allocs && j->allocs[st->ranks[r]].node &&
                                strcmp(j->allocs[st->ranks[r]].node, node) == 0))
        r++;
    if (r == st->n_ranks || r >= st->n_ended || st->ended[r])
        return false;
    st->ended[r] = 1;
    /* The first part that did not complete says how the step ends. */
    if (state != JAZARI__JOB_STATE__JOB_COMPLETED && st->verdict == JAZARI__JOB_STATE__JOB_PENDING) {
        char line[512]; /* a node's report names the node already */
        snprintf(line, sizeof line, "%s", reason && *reason ? reason : node);
        fstep__set_reason(st, line);
        st->verdict = state;
        st->exit_code = exit_code;
    } else if (!st->exit_code && exit_code) {
        st->exit_code = exit_code;
    }
    for (size_t k = 0; k < st->n_ended; k++)
        if (!st->ended[k])
            return true;
    st->state =
        st->verdict == JAZARI__JOB_STATE__JOB_PENDING ? JAZARI__JOB_STATE__JOB_COMPLETED : st->verdict;
    st->end_time_ms = now;
    fstep__forget_env(st);
    return true;
}

bool fstep_cancel(fsm_job *j, int64_t now, uint32_t id, const char *reason)
{
    Jazari__JobStep *st = (Jazari__JobStep *)fstep_find(j, id);
    if (!st || st->state != JAZARI__JOB_STATE__JOB_RUNNING)
        return false;
    st->state = JAZARI__JOB_STATE__JOB_CANCELLED;
    st->verdict = JAZARI__JOB_STATE__JOB_CANCELLED;
    st->end_time_ms = now;
    fstep__set_reason(st, reason && *reason ? reason : "cancelled");
    fstep__forget_env(st);
    return true;
}

void fstep_run_ended(fsm_job *j, int64_t now)
{
    for (uint32_t i = 0; i < j->n_steps; i++) {
        Jazari__JobStep *st = j->steps[i];
        if (st->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        st->state = JAZARI__JOB_STATE__JOB_CANCELLED;
        st->end_time_ms = now;
        if (!st->reason || !*st->reason)
            fstep__set_reason(st, "the job ended");
        fstep__forget_env(st);
    }
}

void fstep_clear(fsm_job *j)
{
    for (uint32_t i = 0; i < j->n_steps; i++)
        jazari__job_step__free_unpacked(j->steps[i], NULL);
    free(j->steps);
    j->steps = NULL;
    j->n_steps = 0;
    j->steps_started = 0;
}

void fstep_copy_in(fsm_job *j, Jazari__JobStep *const *steps, size_t n, uint32_t started)
{
    fstep_clear(j);
    if (n > FSTEP_MAX)
        n = FSTEP_MAX;
    j->steps = n ? xcalloc(n, sizeof(Jazari__JobStep *)) : NULL;
    for (size_t i = 0; i < n; i++)
        j->steps[j->n_steps++] = fstep__copy(steps[i]);
    j->steps_started = started;
}

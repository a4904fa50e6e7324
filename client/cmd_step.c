/* cmd_step.c - jz run (srun): launches a step over the allocation of the
 * job we run in (or, outside a job, of one of its own: cmd_alloc.c)
 * through the daemons, relays its output (kept by each node in the job's
 * private directory, read through the local daemon) to our standard output
 * and error, and exits with the step's exit code. jz attach (sattach)
 * follows a running step's output the same way; --pty's terminal is in
 * cmd_pty.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/jobspec.h"
#include "cli.h"

extern char **environ;

#define STEP_CHUNK ((uint32_t)256 * 1024)
#define STEP_POLL_MIN_MS 50
#define STEP_POLL_MAX_MS 500

/* One task's standard output or error, on its node. */
typedef struct step_src {
    uint32_t task; /* its rank in the step */
    char *node;
    bool err;
    uint64_t offset;
    buf partial; /* a line not finished yet */
} step_src;

static int step__count(cli *c, const char *opt, const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v > 65536) {
        cli_error(c, "bad --%s '%.40s': a number", opt, s ? s : "");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* The job the caller runs in: --jobid, else $SLURM_JOB_ID / $JAZARI_JOB_ID. */
static const char *step__job_env(void)
{
    const char *v = getenv("JAZARI_JOB_ID");
    if (!v || !*v)
        v = getenv("SLURM_JOB_ID");
    return v && *v ? v : NULL;
}

/* Reads what is new in src; returns bytes read, -1 on a refusal. */
static long step__pull(cli *c, cli_conn *k, uint64_t job, uint32_t attempt, uint32_t step, step_src *src)
{
    Jazari__LogsRequest lr = JAZARI__LOGS_REQUEST__INIT;
    lr.node = (char *)src->node;
    lr.path = "/";
    lr.offset = src->offset;
    lr.max_bytes = STEP_CHUNK;
    lr.step_job = job;
    lr.step_attempt = attempt;
    lr.step = step + 1;
    lr.step_rank = src->task;
    lr.step_err = src->err;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_LOGS_REQUEST;
    req.logs_request = &lr;
    wire_msg *m = cli_call(k, &req);
    if (!m)
        return -1;
    const Jazari__Envelope *e = wire_msg_env(m);
    long got = 0;
    if (e->error && e->error->code != JAZARI__ERROR_CODE__OK) {
        got = 0; /* not there yet (or already gone): nothing to relay */
    } else if (e->body_case == JAZARI__ENVELOPE__BODY_LOGS_REPLY && !e->logs_reply->missing) {
        const ProtobufCBinaryData *d = &e->logs_reply->data;
        buf_append(&src->partial, d->data, d->len);
        src->offset += d->len;
        got = (long)d->len;
    }
    (void)c;
    wire_msg_free(m);
    return got;
}

/* Writes src's complete lines (all it has, with flush), each whole, so
 * that tasks' lines never mix; with label, after the task's rank. */
static void step__lines(step_src *src, bool label, bool flush, bool raw)
{
    FILE *f = src->err ? stderr : stdout;
    if (raw) { /* a terminal's bytes: as they come */
        if (src->partial.len == 0)
            return;
        fwrite(src->partial.data, 1, src->partial.len, f);
        src->partial.len = 0;
        fflush(f);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i <= src->partial.len; i++) {
        bool end = i < src->partial.len ? src->partial.data[i] == '\n' : flush && i > start;
        if (!end)
            continue;
        if (label)
            fprintf(f, "%u: ", src->task);
        fwrite(src->partial.data + start, 1, i - start, f);
        fputc('\n', f);
        start = i + 1;
    }
    size_t rest = start < src->partial.len ? src->partial.len - start : 0;
    if (start) {
        memmove(src->partial.data, src->partial.data + src->partial.len - rest, rest);
        src->partial.len = rest;
    }
    fflush(f);
}

/* jz run inside a job: SIGINT or SIGTERM cancels its step, whose output
 * is relayed until the step has ended (srun's way). */
static volatile sig_atomic_t step__signalled;

static void step__on_signal(int sig)
{
    step__signalled = sig;
}

static void step__catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = step__on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void step__sleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int step_follow(cli *c, uint64_t id, uint32_t step, const step_follow_opts *o)
{
    cli_conn *k = cli_connect(c);
    if (!k)
        return CLI_REFUSED;
    step_src *src = NULL;
    size_t nsrc = 0;
    uint32_t attempt = 0;
    int wait_ms = STEP_POLL_MIN_MS, rc = CLI_REFUSED;
    int asked = 0; /* the signal for which the step's cancel was asked */
    if (o->cancel_on_signal)
        step__catch();
    for (;;) {
        if (o->stop_on_signal && alloc_interrupted()) {
            rc = STEP_STOPPED;
            break;
        }
        Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
        sr.id = id;
        Jazari__Envelope q = JAZARI__ENVELOPE__INIT;
        q.body_case = JAZARI__ENVELOPE__BODY_SHOW_REQUEST;
        q.show_request = &sr;
        wire_msg *sm = cli_call(k, &q);
        if (!sm || cli_refused(c, sm)) {
            wire_msg_free(sm);
            break;
        }
        const Jazari__Job *job = wire_msg_env(sm)->show_reply->job;
        const Jazari__JobStep *st = NULL;
        for (size_t i = 0; job && i < job->n_steps && !st; i++)
            if (job->steps[i]->id == step)
                st = job->steps[i];
        if (!st) {
            cli_error(c, "step %llu.%u is gone: the job ended or was requeued", (unsigned long long)id, step);
            wire_msg_free(sm);
            break;
        }
        if (!src) {
            /* Each task's files, on its node (the block distribution). */
            attempt = job->attempt;
            uint32_t st_tasks = st->spec ? st->spec->ntasks : 0;
            nsrc = (size_t)st_tasks * 2;
            src = calloc(nsrc ? nsrc : 1, sizeof *src);
            if (!src)
                abort();
            for (uint32_t i = 0; i < st->n_ranks; i++) {
                uint32_t count, first;
                jobspec_tasks(st_tasks, (uint32_t)st->n_ranks, i, &count, &first);
                const char *node = st->ranks[i] < job->n_allocs ? job->allocs[st->ranks[i]]->node : "";
                for (uint32_t t = first; t < first + count && (size_t)t * 2 + 1 < nsrc; t++) {
                    for (int e = 0; e < 2; e++) {
                        step_src *x = &src[(size_t)t * 2 + (size_t)e];
                        x->task = t;
                        x->node = strdup(node);
                        x->err = e == 1;
                        if (!x->node)
                            abort();
                    }
                }
            }
        }
        bool over = st->state != JAZARI__JOB_STATE__JOB_RUNNING;
        if (o->cancel_on_signal && step__signalled && !asked && !over) {
            asked = step__signalled;
            fprintf(stderr, "jz %s: %s: cancelling step %llu.%u\n", c->command,
                    asked == SIGINT ? "interrupted" : "terminated", (unsigned long long)id, step);
            cli_cancel_step(c, id, step, true); /* it may have ended meanwhile: its end says */
        }
        Jazari__JobState state = st->state;
        int code = st->exit_code;
        char reason[512];
        snprintf(reason, sizeof reason, "%s", st->reason ? st->reason : "");
        wire_msg_free(sm);
        long got = 0;
        for (size_t i = 0; i < nsrc; i++) {
            long n;
            if (!src[i].node)
                continue;
            while ((n = step__pull(c, k, id, attempt, step, &src[i])) >= (long)STEP_CHUNK)
                got += n;
            got += n > 0 ? n : 0;
            step__lines(&src[i], o->label, over, o->raw);
        }
        if (over) {
            if (state == JAZARI__JOB_STATE__JOB_COMPLETED) {
                rc = 0;
            } else if (state == JAZARI__JOB_STATE__JOB_CANCELLED) {
                /* What is left of its output (its tasks were stopping). */
                for (int round = 0; round < 3; round++) {
                    step__sleep(STEP_POLL_MIN_MS * 2);
                    for (size_t i = 0; i < nsrc; i++)
                        if (src[i].node) {
                            while (step__pull(c, k, id, attempt, step, &src[i]) >= (long)STEP_CHUNK)
                                ;
                            step__lines(&src[i], o->label, true, o->raw);
                        }
                }
                fprintf(stderr, "jz %s: step %llu.%u cancelled%s%s\n", c->command, (unsigned long long)id, step,
                        reason[0] ? ": " : "", reason);
                /* As a shell reports a command the signal stopped: 128 + it. */
                rc = 128 + (asked ? asked : SIGTERM);
            } else {
                if (reason[0])
                    fprintf(stderr, "jz %s: step %llu.%u: %s\n", c->command, (unsigned long long)id, step, reason);
                rc = code > 0 && code < 256 ? code : 1;
            }
            break;
        }
        wait_ms = got ? STEP_POLL_MIN_MS : wait_ms * 2 > STEP_POLL_MAX_MS ? STEP_POLL_MAX_MS : wait_ms * 2;
        int w = o->wait ? o->wait(o->arg, wait_ms) : (step__sleep(wait_ms), 0);
        if (w < 0) {
            rc = STEP_STOPPED;
            break;
        }
        if (w > 0)
            wait_ms = STEP_POLL_MIN_MS;
    }
    for (size_t i = 0; i < nsrc; i++) {
        free(src[i].node);
        buf_free(&src[i].partial);
    }
    free(src);
    cli_close(k);
    return rc;
}

/* srun's options that size an allocation of its own (outside a job), as
 * sbatch words for alloc_create. */
typedef struct step_alloc_opt {
    const char *name; /* srun's and sbatch's long name */
    const char **value;
} step_alloc_opt;

int cmd_run(cli *c, int argc, char **argv)
{
    const char *nodes = NULL, *ntasks = NULL, *cpus = NULL, *gpus = NULL, *jobid = NULL, *output = NULL;
    const char *error = NULL, *name = NULL, *relative = NULL, *exportv = NULL, *tpn = NULL;
    const char *time_limit = NULL, *partition = NULL, *account = NULL, *gpus_total = NULL, *qos = NULL;
    const char *mem = NULL, *constraint = NULL, *gpus_per_task = NULL;
    bool overlap = false, unbuffered = false, label = false, pty = false, exclusive = false;
    cli_opt table[] = {
        {"nodes", CLI_STRING, &nodes},
        {"ntasks", CLI_STRING, &ntasks},
        {"ntasks-per-node", CLI_STRING, &tpn},
        {"cpus-per-task", CLI_STRING, &cpus},
        {"gpus-per-node", CLI_STRING, &gpus},
        {"jobid", CLI_STRING, &jobid},
        {"output", CLI_STRING, &output},
        {"error", CLI_STRING, &error},
        {"job-name", CLI_STRING, &name},
        {"relative", CLI_STRING, &relative},
        {"export", CLI_STRING, &exportv},
        {"overlap", CLI_FLAG, &overlap},
        {"unbuffered", CLI_FLAG, &unbuffered},
        {"label", CLI_FLAG, &label},
        {"pty", CLI_FLAG, &pty},
        /* Outside a job only: the allocation's. */
        {"time", CLI_STRING, &time_limit},
        {"partition", CLI_STRING, &partition},
        {"account", CLI_STRING, &account},
        {"gpus", CLI_STRING, &gpus_total},
        {"gpus-per-task", CLI_STRING, &gpus_per_task},
        {"qos", CLI_STRING, &qos},
        {"mem", CLI_STRING, &mem},
        {"constraint", CLI_STRING, &constraint},
        {"exclusive", CLI_FLAG, &exclusive},
        {NULL, CLI_FLAG, NULL},
    };
    static const char *pos[4096];
    int npos = cli_parse(c, argc, argv, table, pos, 4096);
    if (npos < 0)
        return CLI_USAGE;
    if (npos == 0) {
        cli_error(c, "nothing to run: jz run [OPTIONS] CMD [ARGS...]");
        return CLI_USAGE;
    }
    if (!jobid)
        jobid = step__job_env();
    uint64_t id = 0;
    if (jobid && cli_job_id(c, jobid, &id) != 0)
        return CLI_USAGE;
    Jazari__StepRequestSpec s = JAZARI__STEP_REQUEST_SPEC__INIT;
    uint32_t per_node = 0;
    if ((nodes && step__count(c, "nodes", nodes, &s.nodes)) || (ntasks && step__count(c, "ntasks", ntasks, &s.ntasks)) ||
        (cpus && step__count(c, "cpus-per-task", cpus, &s.cpus_per_task)) ||
        (gpus && step__count(c, "gpus-per-node", gpus, &s.gpus_per_node)) ||
        (relative && step__count(c, "relative", relative, &s.relative)) ||
        (tpn && step__count(c, "ntasks-per-node", tpn, &per_node)))
        return CLI_USAGE;
    s.gpus_none = gpus && s.gpus_per_node == 0;
    if (per_node && !s.ntasks)
        s.ntasks = per_node * (s.nodes ? s.nodes : 1);
    if (s.ntasks && s.nodes > s.ntasks) {
        fprintf(stderr, "jz run: warning: %u tasks cannot run on %u nodes: on %u\n", s.ntasks, s.nodes, s.ntasks);
        s.nodes = s.ntasks;
    }
    if (pty && ((s.ntasks && s.ntasks != 1) || s.nodes > 1)) {
        cli_error(c, "--pty runs one task: drop -n/-N (or give -n 1)");
        return CLI_USAGE;
    }
    if (pty) {
        s.ntasks = 1;
        s.nodes = 1;
        s.pty = true;
        struct winsize ws;
        if (isatty(0) && ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
            s.pty_rows = ws.ws_row;
            s.pty_cols = ws.ws_col;
        }
    }
    s.argv = (char **)pos;
    s.n_argv = (size_t)npos;
    char cwd[4096];
    s.workdir = getcwd(cwd, sizeof cwd) ? cwd : "";
    s.output = (char *)(output ? output : "");
    s.error = (char *)(error ? error : "");
    s.name = (char *)(name ? name : pos[0]);
    /* --export: ALL (the default) passes our environment on, NONE nothing. */
    size_t nenv = 0;
    if (!exportv || strcmp(exportv, "ALL") == 0)
        while (environ[nenv])
            nenv++;
    else if (strcmp(exportv, "NONE") != 0) {
        cli_error(c, "--export takes ALL or NONE here");
        return CLI_USAGE;
    }
    s.env = environ;
    s.n_env = nenv;
    /* Outside a job: an allocation of our own, for this one step. */
    bool own = id == 0;
    if (own) {
        const step_alloc_opt map[] = {
            {"nodes", &nodes},         {"ntasks", &ntasks},
            {"ntasks-per-node", &tpn}, {"cpus-per-task", &cpus},
            {"gpus-per-node", &gpus},  {"gpus", &gpus_total},
            {"gpus-per-task", &gpus_per_task}, {"job-name", &name},
            {"time", &time_limit},     {"partition", &partition},
            {"account", &account},     {"qos", &qos},
            {"mem", &mem},             {"constraint", &constraint},
        };
        char words[sizeof map / sizeof *map + 2][320];
        char *wargv[sizeof map / sizeof *map + 2];
        int wn = 0;
        for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
            if (!*map[i].value)
                continue;
            snprintf(words[wn], sizeof words[wn], "--%s=%s", map[i].name, *map[i].value);
            wargv[wn] = words[wn];
            wn++;
        }
        if (!name) {
            snprintf(words[wn], sizeof words[wn], "--job-name=%s", pty ? "interactive" : pos[0]);
            wargv[wn] = words[wn];
            wn++;
        }
        if (exclusive) {
            snprintf(words[wn], sizeof words[wn], "--exclusive");
            wargv[wn] = words[wn];
            wn++;
        }
        int status;
        if (!(id = alloc_create(c, "srun", wn, wargv, &status)))
            return status;
    } else if (time_limit || partition || account || gpus_total || gpus_per_task || qos || mem || constraint ||
               exclusive) {
        fprintf(stderr, "jz %s: warning: inside job %llu, --time --partition --account --gpus --qos --mem "
                        "--constraint --exclusive are the job's: ignored for this step\n",
                c->command, (unsigned long long)id);
    }
    Jazari__StepRequest r = JAZARI__STEP_REQUEST__INIT;
    r.id = id;
    r.spec = &s;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_STEP_REQUEST;
    req.step_request = &r;
    int status = CLI_REFUSED;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_STEP_REPLY, &status);
    if (!m) {
        if (own)
            alloc_cancel(c, id);
        return status;
    }
    uint32_t step = wire_msg_env(m)->step_reply->step_id;
    wire_msg_free(m);
    int rc;
    if (pty)
        rc = step_pty(c, id, step, own);
    else
        rc = step_follow(c, id, step,
                         &(step_follow_opts){.label = label, .stop_on_signal = own, .cancel_on_signal = !own});
    if (own) {
        if (rc == STEP_STOPPED) {
            fprintf(stderr, "srun: interrupted: cancelling job %llu\n", (unsigned long long)id);
            alloc_cancel(c, id);
        } else if (alloc_complete(c, id) != CLI_OK) {
            fprintf(stderr, "jz %s: allocation %llu was not released: it ends at its time limit\n", c->command,
                    (unsigned long long)id);
        }
    }
    (void)overlap;
    (void)unbuffered;
    return rc == STEP_STOPPED ? 130 : rc;
}

/* JOB[.STEP]: the job, and the step (without one: the newest running). */
int cmd_attach(cli *c, int argc, char **argv)
{
    bool label = false;
    cli_opt table[] = {{"label", CLI_FLAG, &label}, {NULL, CLI_FLAG, NULL}};
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-l") == 0)
            argv[i] = "--label";
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, table, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, "which step? usage: jz attach JOB[.STEP] [--label]");
        return CLI_USAGE;
    }
    char jobpart[64];
    const char *dot = strchr(pos[0], '.');
    size_t jl = dot ? (size_t)(dot - pos[0]) : strlen(pos[0]);
    if (jl == 0 || jl >= sizeof jobpart) {
        cli_error(c, "bad step '%.60s': JOB or JOB.STEP (jz show JOB lists its steps)", pos[0]);
        return CLI_USAGE;
    }
    memcpy(jobpart, pos[0], jl);
    jobpart[jl] = '\0';
    uint64_t id;
    uint32_t step = UINT32_MAX;
    if (cli_job_id(c, jobpart, &id) != 0 || (dot && step__count(c, "step", dot + 1, &step) != 0))
        return CLI_USAGE;
    int status;
    wire_msg *m = cli_fetch_job(c, id, &status);
    if (!m)
        return status;
    const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
    bool found = false;
    for (size_t i = 0; i < job->n_steps; i++) {
        const Jazari__JobStep *st = job->steps[i];
        if (dot ? st->id == step : st->state == JAZARI__JOB_STATE__JOB_RUNNING && (!found || st->id > step)) {
            step = st->id;
            found = true;
        }
    }
    bool running = job->state == JAZARI__JOB_STATE__JOB_RUNNING;
    wire_msg_free(m);
    if (!found) {
        if (dot)
            cli_error(c, "job %llu has no step %u%s (jz show %llu lists its steps)", (unsigned long long)id, step,
                      running ? "" : " in its last run", (unsigned long long)id);
        else
            cli_error(c, "job %llu has no running step%s: name one, JOB.STEP (jz show %llu lists them)",
                      (unsigned long long)id, running ? "" : " (it is not running)", (unsigned long long)id);
        return CLI_REFUSED;
    }
    int rc = step_follow(c, id, step, &(step_follow_opts){.label = label});
    return rc == STEP_STOPPED ? 130 : rc;
}

/* cmd_job.c - jz queue, show, cancel, wait, release: the jobs (jz submit: cmd_submit.c). */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* --- parsing what users type -------------------------------------------------------- */

int cli_parse_time_limit(const char *s, uint64_t *seconds)
{
    unsigned long long f[4] = {0};
    int nf = 0;
    unsigned long long days = 0;
    bool have_days = false;
    const char *p = s;
    const char *dash = strchr(s, '-');
    if (dash) {
        char *end;
        if (!isdigit((unsigned char)*s))
            return -1;
        days = strtoull(s, &end, 10);
        if (end != dash)
            return -1;
        have_days = true;
        p = dash + 1;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p) || nf == 3)
            return -1;
        char *end;
        f[nf++] = strtoull(p, &end, 10);
        if (*end == ':')
            end++;
        else if (*end)
            return -1;
        if (end[-1] == ':' && !*end)
            return -1;
        p = end;
    }
    if (nf == 0)
        return -1;
    /* As Slurm: the fields after the first are minutes and seconds (of an
     * hour, of a minute), hours after days are of a day. 1:99:99 is a typo,
     * not 2 hours 40 minutes 39 seconds. */
    for (int i = 1; i < nf; i++)
        if (f[i] > 59)
            return -1;
    if (have_days && f[0] > 23)
        return -1;
    unsigned long long t;
    if (have_days) {
        /* D-H, D-H:M, D-H:M:S */
        t = days * 86400 + f[0] * 3600 + (nf > 1 ? f[1] * 60 : 0) + (nf > 2 ? f[2] : 0);
    } else if (nf == 1) {
        t = f[0] * 60; /* minutes */
    } else if (nf == 2) {
        t = f[0] * 60 + f[1]; /* M:S */
    } else {
        t = f[0] * 3600 + f[1] * 60 + f[2];
    }
    if (t == 0 || t > 365ull * 86400 || days > 365)
        return -1;
    *seconds = t;
    return 0;
}

/* --- showing jobs ----------------------------------------------------------------------------- */

/* ISO 8601 in UTC, or NULL when the time is not set. */
static const char *job__time_str(int64_t ms, char *s, size_t len)
{
    if (ms <= 0)
        return NULL;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return s;
}

static void job__time(json *j, const char *key, int64_t ms)
{
    char s[32];
    json_kv_str(j, key, job__time_str(ms, s, sizeof s));
}

static const char *job__state(Jazari__JobState s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&jazari__job_state__descriptor, (int)s);
    return v ? v->name + 4 : "UNKNOWN"; /* "JOB_PENDING" -> "PENDING" */
}

static bool job__ended(const Jazari__Job *job)
{
    /* A preempted job comes back: it has not ended. */
    return job->state != JAZARI__JOB_STATE__JOB_PENDING && job->state != JAZARI__JOB_STATE__JOB_RUNNING &&
           job->state != JAZARI__JOB_STATE__JOB_PREEMPTED;
}

static void job__json(json *j, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    json_obj_begin(j);
    json_kv_uint(j, "id", job->id);
    json_kv_str(j, "name", s && s->name && *s->name ? s->name : NULL);
    json_kv_str(j, "user", job->user);
    json_kv_str(j, "state", job__state(job->state));
    json_kv_str(j, "reason", job->reason && *job->reason ? job->reason : NULL);
    json_key(j, "nodes");
    json_arr_begin(j);
    for (size_t i = 0; i < job->n_allocs; i++) {
        const Jazari__JobAlloc *a = job->allocs[i];
        json_obj_begin(j);
        json_kv_str(j, "name", a->node);
        json_key(j, "gpus");
        json_arr_begin(j);
        for (size_t g = 0; g < a->n_gpus; g++)
            json_uint(j, a->gpus[g]);
        json_arr_end(j);
        json_kv_str(j, "cpus", a->cpus);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "exit_code");
    if (job__ended(job) && job->state != JAZARI__JOB_STATE__JOB_CANCELLED)
        json_int(j, job->exit_code);
    else
        json_null(j);
    job__time(j, "submit_time", job->submit_time_ms);
    job__time(j, "start_time", job->start_time_ms);
    job__time(j, "end_time", job->end_time_ms);
    json_kv_uint(j, "attempt", job->attempt);
    json_key(j, "array_job_id");
    if (job->array_job_id)
        json_uint(j, job->array_job_id);
    else
        json_null(j);
    json_key(j, "array_task_id");
    if (job->array_job_id && s)
        json_uint(j, s->array_index);
    else
        json_null(j);
    json_key(j, "priority"); /* the leader's, under multifactor */
    if (job->state == JAZARI__JOB_STATE__JOB_PENDING && job->priority)
        json_uint(j, job->priority);
    else
        json_null(j);
    json_kv_uint(j, "preemptions", job->preemptions);
    json_key(j, "master_port");
    if ((job->state == JAZARI__JOB_STATE__JOB_RUNNING || job->state == JAZARI__JOB_STATE__JOB_PREEMPTED) &&
        job->master_port)
        json_uint(j, job->master_port);
    else
        json_null(j);
    if (s) {
        json_kv_uint(j, "nodes_requested", s->nodes ? s->nodes : 1);
        json_kv_uint(j, "gpus_per_node", s->gpus_per_node);
        json_kv_uint(j, "tasks_per_node", s->tasks_per_node ? s->tasks_per_node : 1);
        json_kv_uint(j, "cpus_per_task", s->cpus_per_task ? s->cpus_per_task : 1);
        json_key(j, "mem");
        if (s->mem_bytes)
            json_uint(j, s->mem_bytes);
        else
            json_null(j);
        json_kv_bool(j, "requeue", !s->no_requeue);
        json_kv_str(j, "account", s->account && *s->account ? s->account : NULL);
        json_kv_str(j, "qos", s->qos && *s->qos ? s->qos : "normal");
        json_kv_str(j, "reservation", s->reservation && *s->reservation ? s->reservation : NULL);
        json_kv_str(j, "constraint", s->constraint && *s->constraint ? s->constraint : NULL);
        json_key(j, "gpu_mem");
        if (s->min_gpu_mem)
            json_uint(j, s->min_gpu_mem);
        else
            json_null(j);
        json_key(j, "after_ok");
        json_arr_begin(j);
        for (size_t i = 0; i < s->n_after_ok; i++)
            json_uint(j, s->after_ok[i]);
        json_arr_end(j);
        json_key(j, "after_any");
        json_arr_begin(j);
        for (size_t i = 0; i < s->n_after_any; i++)
            json_uint(j, s->after_any[i]);
        json_arr_end(j);
        json_key(j, "time_limit");
        if (s->time_limit_s)
            json_uint(j, s->time_limit_s);
        else
            json_null(j);
        json_key(j, "command");
        json_arr_begin(j);
        for (size_t i = 0; i < s->n_argv; i++)
            json_str(j, s->argv[i]);
        json_arr_end(j);
        json_kv_str(j, "workdir", s->workdir && *s->workdir ? s->workdir : NULL);
    }
    json_obj_end(j);
}

static void job__limit(buf *b, uint64_t s)
{
    if (!s)
        buf_puts(b, "-");
    else if (s >= 86400)
        buf_printf(b, "%llu-%02llu:%02llu:%02llu", (unsigned long long)(s / 86400),
                   (unsigned long long)(s % 86400 / 3600), (unsigned long long)(s % 3600 / 60),
                   (unsigned long long)(s % 60));
    else
        buf_printf(b, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                   (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
}

/* One line of jz queue. */
static void job__row(buf *b, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    buf_printf(b, "%8llu  %-20.20s %-10.10s %-10s %5u %5u ", (unsigned long long)job->id,
               s && s->name ? s->name : "", job->user, job__state(job->state), s && s->nodes ? s->nodes : 1,
               s ? s->gpus_per_node : 0);
    size_t at = b->len;
    job__limit(b, s ? s->time_limit_s : 0);
    buf_printf(b, "%*s ", (int)(12 - (b->len - at) > 0 ? 12 - (b->len - at) : 0), "");
    if (job->n_allocs)
        for (size_t k = 0; k < job->n_allocs; k++)
            buf_printf(b, "%s%s", k ? "," : "", job->allocs[k]->node);
    else if (job->reason && *job->reason)
        buf_printf(b, "(%s)", job->reason);
    buf_putc(b, '\n');
}

int cmd_queue(cli *c, int argc, char **argv)
{
    bool all = false;
    const cli_opt opts[] = {{"all", CLI_FLAG, &all}, {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0)
        return CLI_USAGE;
    /* Page after page, so that the newest jobs of a deep queue are shown
     * too; each page is printed as it comes. */
    buf b = BUF_INIT;
    json j;
    if (c->json) {
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "jobs");
        json_arr_begin(&j);
    } else {
        buf_printf(&b, "%8s  %-20s %-10s %-10s %5s %5s %-12s %s\n", "ID", "NAME", "USER", "STATE", "NODES",
                   "GPUS", "TIME_LIMIT", "REASON/NODES");
    }
    uint64_t after = 0;
    for (;;) {
        Jazari__QueueRequest qr = JAZARI__QUEUE_REQUEST__INIT;
        qr.all = all;
        qr.after_id = after;
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_QUEUE_REQUEST;
        req.queue_request = &qr;
        int status;
        wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_QUEUE_REPLY, &status);
        if (!m) {
            buf_free(&b);
            return status;
        }
        const Jazari__QueueReply *r = wire_msg_env(m)->queue_reply;
        for (size_t i = 0; i < r->n_jobs; i++) {
            if (c->json)
                job__json(&j, r->jobs[i]);
            else
                job__row(&b, r->jobs[i]);
        }
        bool more = r->truncated && r->next_after > after;
        after = r->next_after;
        wire_msg_free(m);
        if (!more)
            break;
        if (!c->json && cli_write(&b) != 0) { /* a table streams; a JSON document is one */
            buf_free(&b);
            return CLI_REFUSED;
        }
    }
    if (c->json) {
        json_arr_end(&j);
        json_kv_bool(&j, "truncated", false);
        json_obj_end(&j);
    }
    return cli_flush(&b);
}

int cli_job_id(cli *c, const char *s, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || errno || v == 0) {
        cli_error(c, "bad job id '%.40s': a number such as 42", s);
        return -1;
    }
    *id = v;
    return 0;
}

/* One job from the daemon: the reply (free it), or NULL after saying why. */
wire_msg *cli_fetch_job(cli *c, uint64_t id, int *status)
{
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    sr.id = id;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_SHOW_REQUEST;
    req.show_request = &sr;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_SHOW_REPLY, status);
    if (m && !wire_msg_env(m)->show_reply->job) {
        cli_error(c, "the daemon sent no job");
        wire_msg_free(m);
        *status = CLI_REFUSED;
        return NULL;
    }
    return m;
}

int cmd_show(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    if (npos != 1) {
        cli_error(c, "which job? usage: jz show JOB");
        return CLI_USAGE;
    }
    if (cli_job_id(c, pos[0], &sr.id) != 0)
        return CLI_USAGE;
    int status;
    wire_msg *m = cli_fetch_job(c, sr.id, &status);
    if (!m)
        return status;
    const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        job__json(&j, job);
    } else {
        const Jazari__JobSpec *s = job->spec;
        char t[32];
        buf_printf(&b, "id:          %llu\n", (unsigned long long)job->id);
        buf_printf(&b, "name:        %s\n", s && s->name ? s->name : "");
        buf_printf(&b, "user:        %s (uid %u)\n", job->user, job->uid);
        buf_printf(&b, "state:       %s\n", job__state(job->state));
        if (job->reason && *job->reason)
            buf_printf(&b, "reason:      %s\n", job->reason);
        if (s) {
            buf_printf(&b, "request:     %u node(s) x %u GPU(s), %u task(s) per node, time limit ",
                       s->nodes ? s->nodes : 1, s->gpus_per_node, s->tasks_per_node ? s->tasks_per_node : 1);
            job__limit(&b, s->time_limit_s);
            buf_puts(&b, "\ncommand:    ");
            for (size_t i = 0; i < s->n_argv; i++)
                buf_printf(&b, " %s", s->argv[i]);
            if (s->script && *s->script)
                buf_puts(&b, " (script)");
            buf_putc(&b, '\n');
            if (s->workdir && *s->workdir)
                buf_printf(&b, "workdir:     %s\n", s->workdir);
            buf_printf(&b, "account:     %s  qos %s", s->account && *s->account ? s->account : "-",
                       s->qos && *s->qos ? s->qos : "normal");
            if (s->reservation && *s->reservation)
                buf_printf(&b, "  reservation %s", s->reservation);
            if (job->state == JAZARI__JOB_STATE__JOB_PENDING && job->priority)
                buf_printf(&b, "  priority %u", job->priority);
            buf_putc(&b, '\n');
        }
        for (size_t i = 0; i < job->n_allocs; i++) {
            buf_printf(&b, "node:        %s cpus %s gpus ", job->allocs[i]->node,
                       *job->allocs[i]->cpus ? job->allocs[i]->cpus : "-");
            for (size_t g = 0; g < job->allocs[i]->n_gpus; g++)
                buf_printf(&b, "%s%u", g ? "," : "", job->allocs[i]->gpus[g]);
            buf_puts(&b, job->allocs[i]->n_gpus ? "\n" : "-\n");
        }
        if (job->attempt)
            buf_printf(&b, "attempt:     %u (requeued %u time%s, %u for preemption)\n", job->attempt,
                       job->attempt, job->attempt == 1 ? "" : "s", job->preemptions);
        const int64_t times[] = {job->submit_time_ms, job->start_time_ms, job->end_time_ms};
        const char *names[] = {"submitted:", "started:", "ended:"};
        for (size_t k = 0; k < 3; k++)
            if (job__time_str(times[k], t, sizeof t))
                buf_printf(&b, "%-12s %s\n", names[k], t);
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

static int cmd__cancel_or_release(cli *c, int argc, char **argv, bool release)
{
    static const char *pos[1024];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1024);
    if (npos < 0)
        return CLI_USAGE;
    if (npos == 0) {
        cli_error(c, "which jobs? usage: jz %s JOB...", release ? "release" : "cancel");
        return CLI_USAGE;
    }
    uint64_t ids[1024];
    for (int i = 0; i < npos; i++)
        if (cli_job_id(c, pos[i], &ids[i]) != 0)
            return CLI_USAGE;
    Jazari__CancelRequest cr = JAZARI__CANCEL_REQUEST__INIT;
    Jazari__ReleaseRequest rr = JAZARI__RELEASE_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    if (release) {
        rr.ids = ids;
        rr.n_ids = (size_t)npos;
        req.body_case = JAZARI__ENVELOPE__BODY_RELEASE_REQUEST;
        req.release_request = &rr;
    } else {
        cr.ids = ids;
        cr.n_ids = (size_t)npos;
        req.body_case = JAZARI__ENVELOPE__BODY_CANCEL_REQUEST;
        req.cancel_request = &cr;
    }
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &status);
    if (!m)
        return status;
    uint32_t n = wire_msg_env(m)->cancel_reply->cancelled;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_uint(&j, release ? "released" : "cancelled", n);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "%s %u job%s\n", release ? "released" : "cancelled", n, n == 1 ? "" : "s");
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

int cmd_cancel(cli *c, int argc, char **argv)
{
    return cmd__cancel_or_release(c, argc, argv, false);
}

int cmd_release(cli *c, int argc, char **argv)
{
    return cmd__cancel_or_release(c, argc, argv, true);
}

/* jz wait JOB [--timeout SECONDS]: polls until the job ends; exits with its
 * exit code, or 1 if it did not complete (cancelled, timed out, lost, or
 * the wait itself ran out). */
int cmd_wait(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, "which job? usage: jz wait JOB [--timeout SECONDS]");
        return CLI_USAGE;
    }
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    if (cli_job_id(c, pos[0], &sr.id) != 0)
        return CLI_USAGE;
    double limit = c->timeout_s;
    c->timeout_s = 0; /* each request keeps the default answer time */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long delay_ms = 20;
    for (;;) {
        int status;
        wire_msg *m = cli_fetch_job(c, sr.id, &status);
        if (!m)
            return status;
        const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
        if (job__ended(job)) {
            int code =
                job->state == JAZARI__JOB_STATE__JOB_COMPLETED ? 0
                : job->state == JAZARI__JOB_STATE__JOB_FAILED && job->exit_code > 0 && job->exit_code < 256
                    ? job->exit_code
                    : 1;
            buf b = BUF_INIT;
            if (c->json) {
                json j;
                cli_json_begin(&j, &b);
                job__json(&j, job);
            } else if (code != 0) {
                fprintf(stderr, "jz wait: job %llu %s%s%s\n", (unsigned long long)job->id,
                        job__state(job->state), job->reason && *job->reason ? ": " : "",
                        job->reason ? job->reason : "");
            }
            wire_msg_free(m);
            int rc = cli_flush(&b);
            return rc != CLI_OK ? rc : code;
        }
        wire_msg_free(m);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (limit > 0 && waited >= limit) {
            cli_error(c, "job %llu has not ended after %.0f s", (unsigned long long)sr.id, limit);
            return CLI_REFUSED;
        }
        struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        if (delay_ms < 500)
            delay_ms *= 2;
    }
}

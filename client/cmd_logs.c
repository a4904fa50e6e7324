/* cmd_logs.c - jz logs JOB [-f]: a job's output files, read on the nodes
 * that wrote them (no shared file system assumed), through the local
 * daemon, which relays to each node's daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../common/outpath.h"
#include "cli.h"

#define LOGS_CHUNK ((size_t)256 * 1024)
#define LOGS_MAX_SOURCES 4096
#define LOGS_POLL_MS 200
#define LOGS_MAX_RUNS 16

/* One output file on one node. */
typedef struct logs_src {
    const char *node, *address;
    char *path;
    char label[96];
    uint64_t offset;
    buf partial; /* a line not finished yet (with labels) */
} logs_src;

typedef struct logs {
    cli *c;
    cli_conn *k;
    uint64_t id;
    logs_src *src;
    size_t n;
    bool labels; /* several files: each line says where it comes from */
    json *j;     /* --json */
} logs;

static bool logs__host_eq(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strcspn(a, ":"), lb = strcspn(b, ":");
    return la == lb && strncmp(a, b, la) == 0;
}

static void logs__add(logs *l, const char *node, const char *address, const char *path, const char *label)
{
    /* Two nodes on one host that name the same path share the file. */
    for (size_t i = 0; i < l->n; i++)
        if (l->src[i].path && strcmp(l->src[i].path, path) == 0 && logs__host_eq(l->src[i].address, address))
            return;
    if (l->n == LOGS_MAX_SOURCES)
        return;
    logs_src *s = &l->src[l->n++];
    memset(s, 0, sizeof *s);
    s->node = node;
    s->address = address;
    s->path = strdup(path);
    if (!s->path)
        abort();
    snprintf(s->label, sizeof s->label, "%s", label);
}

typedef struct logs_node {
    logs *l;
    const Jazari__JobAlloc *a;
} logs_node;

static void logs__file(void *arg, uint32_t task, bool per_task, bool err, const char *path)
{
    logs_node *n = arg;
    char label[96];
    if (per_task)
        snprintf(label, sizeof label, "%s:%u%s", n->a->node, task, err ? " err" : "");
    else
        snprintf(label, sizeof label, "%s%s", n->a->node, err ? " err" : "");
    logs__add(n->l, n->a->node, n->a->address, path, label);
}

/* Every file the job writes, node by node (outpath_each). */
static void logs__sources(logs *l, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    outpath_files f = {s->output, s->error, s->workdir, s->tasks_per_node,
                       {job->id, job->array_job_id, s->array_index, s->name, job->user}};
    for (size_t i = 0; i < job->n_allocs; i++) {
        logs_node n = {l, job->allocs[i]};
        outpath_each(&f, (uint32_t)i, job->allocs[i]->node, logs__file, &n);
    }
    l->labels = l->n > 1;
}

/* Prints data from s: as it is, or line by line with the source's label. */
static void logs__print(logs *l, logs_src *s, const uint8_t *data, size_t len, bool flush)
{
    if (l->j) {
        json_obj_begin(l->j);
        json_kv_str(l->j, "node", s->node);
        json_kv_str(l->j, "path", s->path);
        json_key(l->j, "data");
        json_strn(l->j, (const char *)data, len);
        json_obj_end(l->j);
        return;
    }
    if (!l->labels) {
        fwrite(data, 1, len, stdout);
        return;
    }
    buf_append(&s->partial, data, len);
    size_t start = 0;
    for (size_t i = 0; i < s->partial.len; i++) {
        if (s->partial.data[i] != '\n')
            continue;
        printf("[%s] %.*s\n", s->label, (int)(i - start), s->partial.data + start);
        start = i + 1;
    }
    if (flush && start < s->partial.len) {
        printf("[%s] %.*s\n", s->label, (int)(s->partial.len - start), s->partial.data + start);
        start = s->partial.len;
    }
    buf_consume(&s->partial, start);
}

/* Reads what is new in s. Returns the bytes read, or -1 after saying why. */
static long logs__read(logs *l, logs_src *s, bool flush)
{
    long total = 0;
    for (;;) {
        Jazari__LogsRequest r = JAZARI__LOGS_REQUEST__INIT;
        r.id = l->id;
        r.node = (char *)s->node;
        r.address = (char *)s->address;
        r.path = s->path;
        r.offset = s->offset;
        r.max_bytes = LOGS_CHUNK;
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_LOGS_REQUEST;
        req.logs_request = &r;
        wire_msg *m = cli_call(l->k, &req);
        if (!m)
            return -1;
        const Jazari__Envelope *e = wire_msg_env(m);
        if (e->error && e->error->code != JAZARI__ERROR_CODE__OK) {
            cli_error(l->c, "%s: %s", s->node, e->error->message);
            wire_msg_free(m);
            return -1;
        }
        if (e->body_case != JAZARI__ENVELOPE__BODY_LOGS_REPLY) {
            cli_error(l->c, "the daemon sent %s to a logs request", wire_body_name(e));
            wire_msg_free(m);
            return -1;
        }
        const Jazari__LogsReply *rep = e->logs_reply;
        size_t n = rep->data.len;
        if (rep->size < s->offset)
            s->offset = 0; /* truncated: from the start again */
        if (n > 0)
            logs__print(l, s, rep->data.data, n, false);
        s->offset += n;
        total += (long)n;
        wire_msg_free(m);
        if (n < LOGS_CHUNK)
            break;
    }
    if (flush && l->labels && !l->j)
        logs__print(l, s, (const uint8_t *)"", 0, true);
    return total;
}

static bool logs__ended(Jazari__JobState s)
{
    return s != JAZARI__JOB_STATE__JOB_PENDING && s != JAZARI__JOB_STATE__JOB_RUNNING &&
           s != JAZARI__JOB_STATE__JOB_PREEMPTED;
}

int cmd_logs(cli *c, int argc, char **argv)
{
    bool follow = false;
    cli_opt opts[] = {{"follow", CLI_FLAG, &follow}, {"f", CLI_FLAG, &follow}, {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, opts, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    logs l;
    memset(&l, 0, sizeof l);
    l.c = c;
    if (npos != 1) {
        cli_error(c, "which job? usage: jz logs JOB [-f]");
        return CLI_USAGE;
    }
    if (cli_job_id(c, pos[0], &l.id) != 0)
        return CLI_USAGE;
    int status;
    wire_msg *jm = cli_fetch_job(c, l.id, &status);
    /* Following a pending job: wait for it to start. */
    while (jm && follow && wire_msg_env(jm)->show_reply->job->state == JAZARI__JOB_STATE__JOB_PENDING) {
        wire_msg_free(jm);
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 500 * 1000000L}, NULL);
        jm = cli_fetch_job(c, l.id, &status);
    }
    if (!jm)
        return status;
    const Jazari__Job *job = wire_msg_env(jm)->show_reply->job;
    if (job->n_allocs == 0 || !job->spec) {
        cli_error(c, "job %llu has not run%s", (unsigned long long)l.id,
                  job->state == JAZARI__JOB_STATE__JOB_PENDING ? " yet: nothing to show (-f waits for it)"
                                                               : "");
        wire_msg_free(jm);
        return CLI_REFUSED;
    }
    if (!*job->spec->workdir) { /* seen briefly: a teammate's, whose files are theirs */
        cli_error(c, "job %llu belongs to %s: its output is theirs to read (and their account's coordinators')",
                  (unsigned long long)l.id, job->user);
        wire_msg_free(jm);
        return CLI_REFUSED;
    }
    l.src = calloc(LOGS_MAX_SOURCES, sizeof *l.src);
    if (!l.src)
        abort();
    logs__sources(&l, job);
    bool ended = logs__ended(job->state);
    wire_msg *runs[LOGS_MAX_RUNS]; /* the job as of each later attempt followed */
    size_t n_runs = 0;
    l.k = cli_connect(c);
    buf out = BUF_INIT;
    json j;
    if (c->json && l.k) {
        cli_json_begin(&j, &out);
        json_obj_begin(&j);
        json_kv_uint(&j, "id", l.id);
        json_key(&j, "chunks");
        json_arr_begin(&j);
        l.j = &j;
        follow = false;
    }
    status = l.k ? 0 : CLI_REFUSED;
    while (l.k && status == 0) {
        long got = 0;
        for (size_t i = 0; i < l.n && status == 0; i++) {
            long n = logs__read(&l, &l.src[i], ended || !follow);
            if (n < 0)
                status = CLI_REFUSED;
            got += n > 0 ? n : 0;
        }
        fflush(stdout);
        if (!follow || status != 0 || (ended && got == 0))
            break;
        if (got == 0) {
            nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = LOGS_POLL_MS * 1000000L}, NULL);
            /* Once it ended, one more pass takes what came last. */
            wire_msg *m = cli_fetch_job(c, l.id, &status);
            if (!m)
                break;
            const Jazari__Job *now = wire_msg_env(m)->show_reply->job;
            ended = logs__ended(now->state);
            if (!ended && now->attempt != job->attempt && now->n_allocs > 0 && now->spec &&
                n_runs < LOGS_MAX_RUNS) {
                /* Requeued and running again, elsewhere perhaps: follow its
                 * new run's files too (the sources point into m: kept). */
                runs[n_runs++] = m;
                job = now;
                logs__sources(&l, job);
                continue;
            }
            wire_msg_free(m);
        }
    }
    for (size_t i = 0; i < n_runs; i++)
        wire_msg_free(runs[i]);
    if (l.j) {
        json_arr_end(&j);
        json_obj_end(&j);
        if (status == 0)
            status = cli_flush(&out);
    }
    buf_free(&out);
    if (l.k)
        cli_close(l.k);
    for (size_t i = 0; i < l.n; i++) {
        free(l.src[i].path);
        buf_free(&l.src[i].partial);
    }
    free(l.src);
    wire_msg_free(jm);
    return status;
}

/* alibaba.c - reading the Alibaba GPU trace of FGD (pod list, node list). */
#include "alibaba.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIBABA_POD_HEADER                                                                                   \
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,"        \
    "scheduled_time"
#define ALIBABA_NODE_HEADER "sn,cpu_milli,memory_mib,gpu,model"
#define ALIBABA_TIME_MAX 1000000000000LL /* s: 30,000 years, so sums of times cannot overflow */

enum {
    POD_NAME,
    POD_CPU,
    POD_MEM,
    POD_GPUS,
    POD_MILLI,
    POD_SPEC,
    POD_QOS,
    POD_PHASE,
    POD_CREATED,
    POD_DELETED,
    POD_SCHEDULED,
    POD_FIELDS
};
enum { NODE_NAME, NODE_CPU, NODE_MEM, NODE_GPUS, NODE_MODEL, NODE_FIELDS };

/* One open CSV file, read line by line with its line number. */
typedef struct alibaba__csv {
    const char *path;
    FILE *f;
    size_t lineno;
    char line[SWF_LINE_MAX + 2];
} alibaba__csv;

/* The next line into c->line, without its end. Returns 1, 0 at the end,
 * -1 (err set) for a line that is too long or a read error. */
static int alibaba__next(alibaba__csv *c, char *err, size_t errlen)
{
    if (!fgets(c->line, sizeof c->line, c->f)) {
        if (ferror(c->f)) {
            snprintf(err, errlen, "%s: read error after line %zu", c->path, c->lineno);
            return -1;
        }
        return 0;
    }
    c->lineno++;
    size_t len = strcspn(c->line, "\r\n");
    if (c->line[len] == '\0' && !feof(c->f)) {
        snprintf(err, errlen, "%s:%zu: longer than %d bytes", c->path, c->lineno, SWF_LINE_MAX);
        return -1;
    }
    c->line[len] = '\0';
    return 1;
}

/* Opens path and checks that its first line is `header`. Returns 0, or -1
 * with err set (nothing left open). */
static int alibaba__open(alibaba__csv *c, const char *path, const char *header, const char *what, char *err,
                         size_t errlen)
{
    c->path = path;
    c->lineno = 0;
    c->f = fopen(path, "r");
    if (!c->f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    int rc = alibaba__next(c, err, errlen);
    if (rc == 1 && strcmp(c->line, header) == 0)
        return 0;
    if (rc == 0 || (rc == 1 && strcmp(c->line, header) != 0))
        snprintf(err, errlen, "%s:1: not the %s of the Alibaba trace: the header must be '%s'", path, what,
                 header);
    fclose(c->f);
    c->f = NULL;
    return -1;
}

/* Splits line at its commas into f (room for max). Returns how many
 * fields there are (more than max: max + 1). */
static int alibaba__split(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line;;) {
        if (n == max)
            return max + 1;
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            return n;
        *c = '\0';
        p = c + 1;
    }
}

/* A whole number from 0 to max, all of s. */
static int alibaba__num(const char *s, long long max, long long *v)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    long long x = strtoll(s, &end, 10);
    if (*end || errno || x > max)
        return -1;
    *v = x;
    return 0;
}

/* A name of letters, digits, '-', '_' and '.' (and '|' between names
 * where bars is set), shorter than max. */
static bool alibaba__name(const char *s, size_t max, bool bars)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '-' || *p == '_' || *p == '.' || (bars && *p == '|' && p != s && p[1]);
        if (!ok)
            return false;
    }
    return true;
}

bool alibaba_spec_has(const char *spec, const char *model)
{
    size_t m = strlen(model);
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, "|");
        if (n == m && strncmp(p, model, n) == 0)
            return true;
        p += n + (p[n] == '|');
    }
    return false;
}

bool alibaba_is_pod_list(const char *path)
{
    alibaba__csv c;
    char err[8];
    if (alibaba__open(&c, path, ALIBABA_POD_HEADER, "pod list", err, sizeof err) != 0)
        return false;
    fclose(c.f);
    return true;
}

/* The index + 1 of spec in a's list, added if new; 0 for an empty spec,
 * -1 when the list is full. */
static long alibaba__spec(alibaba *a, const char *spec)
{
    if (!*spec)
        return 0;
    for (size_t i = 0; i < a->n_specs; i++)
        if (strcmp(a->specs[i], spec) == 0)
            return (long)i + 1;
    if (a->n_specs == ALIBABA_SPECS_MAX)
        return -1;
    if (!a->specs) {
        a->specs = calloc(ALIBABA_SPECS_MAX, sizeof *a->specs);
        if (!a->specs)
            abort();
    }
    snprintf(a->specs[a->n_specs], sizeof a->specs[a->n_specs], "%s", spec);
    return (long)++a->n_specs;
}

/* Says what is wrong into why; returns -1. */
__attribute__((format(printf, 3, 4))) static int alibaba__bad(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Field `name` (text s): a whole number from 0 to max into *v, or, where
 * empty_ok, nothing (*v is then -1). Returns 0, or -1 with why set. */
static int alibaba__field(const char *s, const char *name, long long max, bool empty_ok, long long *v,
                          char *why, size_t whylen)
{
    *v = -1;
    if ((empty_ok && !*s) || alibaba__num(s, max, v) == 0)
        return 0;
    return alibaba__bad(why, whylen, "bad %s '%.20s': a whole number from 0 to %lld%s", name, s, max,
                        empty_ok ? ", or nothing" : "");
}

/* One pod line (split into f) into a: a job, or a count of those dropped.
 * Returns 0, or -1 with what is wrong in why. */
static int alibaba__pod(alibaba *a, char **f, size_t lineno, size_t *cap, char *why, size_t whylen)
{
    long long cpu, mem, gpus, milli, created, deleted, scheduled;
    if (!alibaba__name(f[POD_NAME], 128, false))
        return alibaba__bad(why, whylen, "bad name '%.40s'", f[POD_NAME]);
    if (alibaba__field(f[POD_CPU], "cpu_milli", 10000000, false, &cpu, why, whylen) != 0 ||
        alibaba__field(f[POD_MEM], "memory_mib", 1LL << 40, false, &mem, why, whylen) != 0 ||
        alibaba__field(f[POD_GPUS], "num_gpu", ALIBABA_GPUS_MAX, false, &gpus, why, whylen) != 0 ||
        alibaba__field(f[POD_MILLI], "gpu_milli", 1000, false, &milli, why, whylen) != 0 ||
        alibaba__field(f[POD_CREATED], "creation_time", ALIBABA_TIME_MAX, false, &created, why, whylen) !=
            0 ||
        alibaba__field(f[POD_DELETED], "deletion_time", ALIBABA_TIME_MAX, true, &deleted, why, whylen) != 0 ||
        alibaba__field(f[POD_SCHEDULED], "scheduled_time", ALIBABA_TIME_MAX, true, &scheduled, why, whylen) !=
            0)
        return -1;
    if ((gpus == 0) != (milli == 0) || (gpus > 1 && milli != 1000))
        return alibaba__bad(
            why, whylen,
            "gpu_milli %lld with num_gpu %lld: a fraction of one GPU is 1 to 1000 thousandths, "
            "several GPUs are whole (1000), no GPU is 0",
            milli, gpus);
    if (*f[POD_SPEC] && !alibaba__name(f[POD_SPEC], ALIBABA_SPEC_MAX, true))
        return alibaba__bad(why, whylen, "bad gpu_spec '%.40s': GPU models separated by '|'", f[POD_SPEC]);
    if (scheduled >= 0 && scheduled < created)
        return alibaba__bad(why, whylen, "scheduled_time %lld before creation_time %lld", scheduled, created);
    if (gpus == 0) {
        a->no_gpu++;
        return 0;
    }
    if (scheduled < 0 || deleted <= scheduled) {
        a->no_run_time++;
        return 0;
    }
    long models = alibaba__spec(a, f[POD_SPEC]);
    if (models < 0)
        return alibaba__bad(why, whylen, "more than %d different gpu_spec values", ALIBABA_SPECS_MAX);
    if (a->pods.n == SWF_MAX_JOBS)
        return alibaba__bad(why, whylen, "more than %d pods", SWF_MAX_JOBS);
    swf_job *j = swf_add(&a->pods, cap);
    j->id = lineno;
    j->submit = created;
    j->run = deleted - scheduled;
    j->request = j->run; /* no limits in the trace: exact ones */
    j->procs = (uint32_t)gpus;
    j->milli = milli < 1000 ? (uint32_t)milli : 0;
    j->cpu_milli = (uint32_t)cpu;
    j->models = (uint32_t)models;
    return 0;
}

/* One node line (split into f) into a. Returns 0, or -1 with why. */
static int alibaba__node(alibaba *a, char **f, size_t lineno, size_t *cap, char *why, size_t whylen)
{
    (void)lineno;
    long long cpu, mem, gpus;
    const char *bad = !alibaba__name(f[NODE_NAME], 128, false) ? "bad sn (the node's name)"
                      : alibaba__num(f[NODE_CPU], 10000000, &cpu) != 0 || cpu == 0
                          ? "bad cpu_milli: thousandths of a CPU, more than 0"
                      : alibaba__num(f[NODE_MEM], 1LL << 40, &mem) != 0          ? "bad memory_mib"
                      : alibaba__num(f[NODE_GPUS], ALIBABA_GPUS_MAX, &gpus) != 0 ? "bad gpu: 0 to 64 GPUs"
                      : !alibaba__name(f[NODE_MODEL], ALIBABA_MODEL_MAX, false)
                          ? "bad model: a GPU model's name, up to 31 characters"
                      : a->n_nodes == ALIBABA_NODES_MAX ? "too many nodes"
                                                        : NULL;
    if (bad)
        return alibaba__bad(why, whylen, "%s", bad);
    if (a->n_nodes == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        alibaba_node *grown = realloc(a->nodes, *cap * sizeof *grown);
        if (!grown)
            abort();
        a->nodes = grown;
    }
    alibaba_node *x = &a->nodes[a->n_nodes++];
    x->gpus = (uint32_t)gpus;
    x->cpu_milli = (uint32_t)cpu;
    snprintf(x->model, sizeof x->model, "%s", f[NODE_MODEL]);
    return 0;
}

#define ALIBABA__FIELDS_MAX 16 /* of either file */

typedef int (*alibaba__row_fn)(alibaba *a, char **f, size_t lineno, size_t *cap, char *why, size_t whylen);

/* Reads every row of a CSV with that header (what: for messages), each
 * split into `fields` fields and given to row. 0, or -1 with err naming
 * FILE:LINE. */
static int alibaba__rows(alibaba *a, const char *path, const char *header, const char *what, int fields,
                         alibaba__row_fn row, char *err, size_t errlen)
{
    alibaba__csv c;
    if (fields > ALIBABA__FIELDS_MAX || alibaba__open(&c, path, header, what, err, errlen) != 0)
        return -1;
    size_t cap = 0;
    int rc;
    while ((rc = alibaba__next(&c, err, errlen)) == 1) {
        if (!c.line[0])
            continue;
        char *f[ALIBABA__FIELDS_MAX], why[256];
        int n = alibaba__split(c.line, f, fields);
        if (n != fields) {
            snprintf(err, errlen, "%s:%zu: expected %d fields (%s), got %s%d", path, c.lineno, fields, header,
                     n > fields ? "more than " : "", n > fields ? fields : n);
            rc = -1;
            break;
        }
        if (row(a, f, c.lineno, &cap, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%zu: %s", path, c.lineno, why);
            rc = -1;
            break;
        }
    }
    fclose(c.f);
    return rc;
}

static int alibaba__pods(alibaba *a, const char *path, char *err, size_t errlen)
{
    int rc = alibaba__rows(a, path, ALIBABA_POD_HEADER, "pod list", POD_FIELDS, alibaba__pod, err, errlen);
    if (rc == 0 && a->pods.n == 0) {
        snprintf(err, errlen, "%s: no pod with GPUs and a run time", path);
        rc = -1;
    }
    return rc;
}

static int alibaba__nodes(alibaba *a, const char *path, char *err, size_t errlen)
{
    int rc =
        alibaba__rows(a, path, ALIBABA_NODE_HEADER, "node list", NODE_FIELDS, alibaba__node, err, errlen);
    if (rc == 0 && a->n_nodes == 0) {
        snprintf(err, errlen, "%s: no node", path);
        rc = -1;
    }
    return rc;
}

static int alibaba__cmp(const void *x, const void *y)
{
    const swf_job *a = x, *b = y;
    if (a->submit != b->submit)
        return a->submit < b->submit ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

int alibaba_load(const char *pods, const char *nodes, alibaba *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (alibaba__pods(out, pods, err, errlen) != 0 || alibaba__nodes(out, nodes, err, errlen) != 0) {
        alibaba_free(out);
        return -1;
    }
    qsort(out->pods.jobs, out->pods.n, sizeof *out->pods.jobs, alibaba__cmp);
    int64_t t0 = out->pods.jobs[0].submit;
    for (size_t i = 0; i < out->pods.n; i++)
        out->pods.jobs[i].submit -= t0;
    out->pods.skipped = out->no_gpu + out->no_run_time;
    return 0;
}

void alibaba_free(alibaba *a)
{
    swf_free(&a->pods);
    free(a->nodes);
    free(a->specs);
    memset(a, 0, sizeof *a);
}

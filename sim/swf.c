/* swf.c - reading Standard Workload Format traces. */
#include "swf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int swf__cmp_id(const void *a, const void *b)
{
    const swf_job *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* "; MaxNodes: 256" -> 256 into *v when the key matches. */
static void swf__header(const char *line, const char *key, uint32_t *v)
{
    const char *p = strstr(line, key);
    if (!p)
        return;
    p += strlen(key);
    while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
    char *end;
    unsigned long n = strtoul(p, &end, 10);
    if (end != p && n > 0 && n < (1ul << 30))
        *v = (uint32_t)n;
}

int swf_load(const char *path, swf *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "trace %s: %s", path, strerror(errno));
        return -1;
    }
    char line[SWF_LINE_MAX + 2];
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > SWF_LINE_MAX) {
            snprintf(err, errlen, "trace %s line %zu: longer than %d bytes", path, lineno, SWF_LINE_MAX);
            rc = -1;
            break;
        }
        const char *p = line + strspn(line, " \t\r\n");
        if (*p == ';') {
            swf__header(p, "MaxNodes", &out->max_nodes);
            swf__header(p, "MaxProcs", &out->max_procs);
            continue;
        }
        if (!*p)
            continue;
        double v[18];
        int n = 0;
        char *end;
        while (n < 18) {
            v[n] = strtod(p, &end);
            if (end == p)
                break;
            n++;
            p = end;
        }
        p += strspn(p, " \t\r\n");
        if (n != 18 || *p) {
            snprintf(err, errlen, "trace %s line %zu: expected 18 numbers (the SWF fields), got %d%s", path,
                     lineno, n, *p ? " and text" : "");
            rc = -1;
            break;
        }
        int64_t run = (int64_t)v[3];
        int64_t procs = (int64_t)(v[4] > v[7] ? v[4] : v[7]);
        if (run <= 0 || procs <= 0 || v[0] < 0 || v[1] < 0) {
            out->skipped++;
            continue;
        }
        if (out->n == SWF_MAX_JOBS) {
            snprintf(err, errlen, "trace %s: more than %d jobs", path, SWF_MAX_JOBS);
            rc = -1;
            break;
        }
        swf_job *j = swf_add(out, &cap);
        j->id = (uint64_t)v[0];
        j->submit = (int64_t)v[1];
        j->run = run;
        j->request = v[8] > 0 ? (int64_t)v[8] : run;
        j->procs = procs > UINT32_MAX ? UINT32_MAX : (uint32_t)procs;
        /* Fields 12 and 13: who ran it, in which group (fair share). */
        j->user = v[11] >= 0 && v[11] < 1e9 ? (uint32_t)v[11] + 1 : 0;
        j->group = v[12] >= 0 && v[12] < 1e9 ? (uint32_t)v[12] + 1 : 0;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "trace %s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc != 0) {
        swf_free(out);
        return -1;
    }
    if (out->n == 0) {
        snprintf(err, errlen, "trace %s: no job with a run time (is it SWF?)", path);
        swf_free(out);
        return -1;
    }
    qsort(out->jobs, out->n, sizeof *out->jobs, swf__cmp_id);
    return 0;
}

swf_job *swf_add(swf *t, size_t *cap)
{
    if (t->n == *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        swf_job *j = realloc(t->jobs, *cap * sizeof *j);
        if (!j)
            abort();
        t->jobs = j;
    }
    memset(&t->jobs[t->n], 0, sizeof t->jobs[t->n]); /* fields a format lacks stay 0 */
    return &t->jobs[t->n++];
}

void swf_free(swf *t)
{
    free(t->jobs);
    memset(t, 0, sizeof *t);
}

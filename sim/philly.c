/* philly.c - reading the Philly trace (CSV). */
#include "philly.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PHILLY_VC_MAX 64
#define PHILLY_VCS_MAX 256

typedef struct philly_vc {
    char name[PHILLY_VC_MAX];
    size_t jobs;
} philly_vc;

/* n digits at s into *v; the next character must be sep (or anything
 * when sep is 0). Returns the position after sep, or NULL. */
static const char *philly__digits(const char *s, int n, char sep, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return NULL;
        *v = *v * 10 + (s[i] - '0');
    }
    if (sep && s[n] != sep)
        return NULL;
    return s + n + (sep ? 1 : 0);
}

/* "2017-10-09 07:01:55" -> seconds since the epoch (UTC); -1 if malformed. */
static long long philly__time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s;
    if (!(p = philly__digits(p, 4, '-', &tm.tm_year)) || !(p = philly__digits(p, 2, '-', &tm.tm_mon)) ||
        !(p = philly__digits(p, 2, ' ', &tm.tm_mday)) || !(p = philly__digits(p, 2, ':', &tm.tm_hour)) ||
        !(p = philly__digits(p, 2, ':', &tm.tm_min)) || !(p = philly__digits(p, 2, 0, &tm.tm_sec)) || *p ||
        tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

static int philly__cmp(const void *a, const void *b)
{
    const swf_job *x = a, *y = b;
    if (x->submit != y->submit)
        return x->submit < y->submit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Splits a CSV line of simple fields (no quotes) into at most max fields. */
static int philly__fields(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

int philly_load(const char *path, const char *vc, swf *out, char *vc_out, size_t vc_len, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    philly_vc vcs[PHILLY_VCS_MAX];
    memset(vcs, 0, sizeof vcs);
    size_t nvcs = 0;
    for (int pass = vc ? 1 : 0; pass < 2; pass++) {
        FILE *f = fopen(path, "r");
        if (!f) {
            snprintf(err, errlen, "trace %s: %s", path, strerror(errno));
            swf_free(out);
            return -1;
        }
        char line[SWF_LINE_MAX + 2];
        size_t lineno = 0, cap = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            size_t len = strcspn(line, "\r\n");
            if (line[len] == '\0' && !feof(f)) {
                snprintf(err, errlen, "trace %s line %zu: longer than %d bytes", path, lineno, SWF_LINE_MAX);
                fclose(f);
                swf_free(out);
                return -1;
            }
            line[len] = '\0';
            if (lineno == 1 || len == 0)
                continue; /* the header, or an empty line */
            char *fld[6];
            if (philly__fields(line, fld, 6) != 5) {
                snprintf(err, errlen,
                         "trace %s line %zu: expected 5 fields (timestamp,duration,num_gpus,"
                         "gpu_time,cluster)",
                         path, lineno);
                fclose(f);
                swf_free(out);
                return -1;
            }
            const char *cluster = fld[4];
            if (pass == 0) { /* counting the virtual clusters */
                size_t i = 0;
                while (i < nvcs && strcmp(vcs[i].name, cluster) != 0)
                    i++;
                if (i == nvcs && nvcs < PHILLY_VCS_MAX && strlen(cluster) < PHILLY_VC_MAX) {
                    snprintf(vcs[nvcs].name, sizeof vcs[nvcs].name, "%s", cluster);
                    vcs[nvcs++].jobs = 0;
                }
                if (i < nvcs)
                    vcs[i].jobs++;
                continue;
            }
            if (strcmp(cluster, vc) != 0)
                continue;
            char *end;
            long long t = philly__time(fld[0]);
            double dur = strtod(fld[1], &end);
            if (t < 0 || *end || dur < 0 || dur > 1e9) {
                snprintf(err, errlen, "trace %s line %zu: bad timestamp '%.30s' or duration '%.30s'", path,
                         lineno, fld[0], fld[1]);
                fclose(f);
                swf_free(out);
                return -1;
            }
            long gpus = strtol(fld[2], &end, 10);
            if (*end || gpus < 0 || gpus > 4096) {
                snprintf(err, errlen, "trace %s line %zu: bad num_gpus '%.30s'", path, lineno, fld[2]);
                fclose(f);
                swf_free(out);
                return -1;
            }
            if (dur < 1 || gpus == 0) {
                out->skipped++;
                continue;
            }
            if (out->n == SWF_MAX_JOBS) {
                snprintf(err, errlen, "trace %s: more than %d jobs", path, SWF_MAX_JOBS);
                fclose(f);
                swf_free(out);
                return -1;
            }
            swf_job *j = swf_add(out, &cap);
            j->id = lineno;
            j->submit = t;
            j->run = (int64_t)dur;
            j->request = j->run; /* the trace has no estimates: exact ones */
            j->procs = (uint32_t)gpus;
        }
        fclose(f);
        if (pass == 0) {
            size_t best = 0;
            for (size_t i = 1; i < nvcs; i++)
                if (vcs[i].jobs > vcs[best].jobs)
                    best = i;
            if (nvcs == 0) {
                snprintf(err, errlen, "trace %s: no jobs", path);
                return -1;
            }
            snprintf(vc_out, vc_len, "%s", vcs[best].name);
            vc = vc_out;
        }
    }
    if (vc != vc_out)
        snprintf(vc_out, vc_len, "%s", vc);
    if (out->n == 0) {
        snprintf(err, errlen, "trace %s: no job of virtual cluster '%.60s'", path, vc);
        swf_free(out);
        return -1;
    }
    qsort(out->jobs, out->n, sizeof *out->jobs, philly__cmp);
    int64_t t0 = out->jobs[0].submit;
    for (size_t i = 0; i < out->n; i++)
        out->jobs[i].submit -= t0;
    return 0;
}

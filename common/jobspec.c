/* jobspec.c - the array syntax shared by jz submit and the leader. */
#include "jobspec.h"

#include <stdio.h>

static const char *jobspec__number(const char *p, unsigned long max, unsigned long *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    unsigned long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long)(*p++ - '0');
        if (v > max)
            return NULL;
    }
    *out = v;
    return p;
}

int jobspec_array_parse(const char *s, uint32_t *idx, size_t max, size_t *n, uint32_t *throttle, char *err,
                        size_t errlen)
{
    const char *p = s;
    *n = 0;
    *throttle = 0;
    while (*p && *p != '%') {
        unsigned long a, b, step = 1;
        if (!(p = jobspec__number(p, JOB_ARRAY_INDEX_MAX, &a)))
            goto bad;
        b = a;
        if (*p == '-' && !(p = jobspec__number(p + 1, JOB_ARRAY_INDEX_MAX, &b)))
            goto bad;
        if (*p == ':' && (!(p = jobspec__number(p + 1, JOB_ARRAY_INDEX_MAX, &step)) || step == 0))
            goto bad;
        if (b < a)
            goto bad;
        for (unsigned long v = a; v <= b; v += step) {
            if (*n == max) {
                snprintf(err, errlen, "--array %.60s: more than %zu tasks", s, max);
                return -1;
            }
            if (idx)
                idx[*n] = (uint32_t)v;
            (*n)++;
        }
        if (*p == ',')
            p++;
        else if (*p && *p != '%')
            goto bad;
    }
    if (*p == '%') {
        unsigned long t;
        if (!(p = jobspec__number(p + 1, JOB_ARRAY_MAX, &t)) || *p || t == 0)
            goto bad;
        *throttle = (uint32_t)t;
    }
    if (*n == 0)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "--array '%.60s': indexes such as 0-99, 1,3,5-11:2, with %%N for at most N at once",
             s);
    return -1;
}

void jobspec_tasks(uint32_t ntasks, uint32_t nnodes, uint32_t i, uint32_t *count, uint32_t *first)
{
    if (nnodes == 0 || i >= nnodes) {
        *count = *first = 0;
        return;
    }
    uint32_t base = ntasks / nnodes, extra = ntasks % nnodes;
    *count = base + (i < extra ? 1 : 0);
    *first = i * base + (i < extra ? i : extra);
}

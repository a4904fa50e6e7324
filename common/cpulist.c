/* cpulist.c - CPU lists ("0-3,8"). */
#include "cpulist.h"

#include <stdlib.h>
#include <string.h>

/* One number of a list: digits only, at most CPULIST_MAX. */
static const char *cpulist__number(const char *p, long *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > CPULIST_MAX)
            return NULL;
    }
    *out = v;
    return p;
}

/* Walks s, marking set (when not NULL), counting the indexes and the
 * largest. Returns 0, or -1 if malformed. */
static int cpulist__walk(const char *s, bool *set, size_t n, int *count, long *last)
{
    const char *p = s;
    *count = 0;
    *last = -1;
    while (p && *p) {
        long lo, hi;
        if (!(p = cpulist__number(p, &lo)))
            return -1;
        hi = lo;
        if (*p == '-' && !(p = cpulist__number(p + 1, &hi)))
            return -1;
        if (hi < lo || (set && (size_t)hi >= n))
            return -1;
        for (long i = lo; i <= hi; i++) {
            if (set && !set[i]) {
                set[i] = true;
                (*count)++;
            } else if (!set) {
                (*count)++;
            }
        }
        if (hi > *last)
            *last = hi;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return 0;
}

int cpulist_parse(const char *s, bool *set, size_t n)
{
    memset(set, 0, n * sizeof *set);
    int count;
    long last;
    if (!s)
        return 0;
    if (cpulist__walk(s, set, n, &count, &last) != 0)
        return -1;
    return count;
}

int cpulist_last(const char *s)
{
    int count;
    long last;
    if (!s || cpulist__walk(s, NULL, 0, &count, &last) != 0)
        return -1;
    return (int)last;
}

void cpulist_format(const bool *set, size_t n, buf *out)
{
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!set[i])
            continue;
        size_t j = i;
        while (j + 1 < n && set[j + 1])
            j++;
        if (j == i)
            buf_printf(out, "%s%zu", first ? "" : ",", i);
        else
            buf_printf(out, "%s%zu-%zu", first ? "" : ",", i, j);
        first = false;
        i = j;
    }
}

/* xmem.c - allocation that cannot fail. */
#include "xmem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

void *xrealloc_array(void *p, size_t n, size_t size)
{
    n = n ? n : 1;
    void *q = n <= SIZE_MAX / size ? realloc(p, n * size) : NULL;
    if (!q) {
        fprintf(stderr, "out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return q;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "out of memory (a string of %zu bytes)\n", strlen(s));
        abort();
    }
    return d;
}

char *xstrdup_known(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

void xmem_keep_heap(void)
{
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

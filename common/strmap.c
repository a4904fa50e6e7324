/* strmap.c - strings to indexes by open addressing. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "xmem.h"

void strmap_init(strmap *m)
{
    memset(m, 0, sizeof *m);
}

void strmap_free(strmap *m)
{
    free(m->keys);
    free(m->vals);
    strmap_init(m);
}

unsigned long long strmap_hash(const char *s, size_t len)
{
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t strmap__slot(const strmap *m, const char *key)
{
    size_t i = (size_t)strmap_hash(key, strlen(key)) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void strmap__grow(strmap *m)
{
    strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = xcalloc(m->cap, sizeof *m->keys);
    m->vals = xcalloc(m->cap, sizeof *m->vals);
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i]) {
            size_t s = strmap__slot(m, old.keys[i]);
            m->keys[s] = old.keys[i];
            m->vals[s] = old.vals[i];
        }
    }
    free(old.keys);
    free(old.vals);
}

void strmap_put(strmap *m, const char *key, size_t val)
{
    if ((m->n + 1) * 2 > m->cap)
        strmap__grow(m);
    size_t s = strmap__slot(m, key);
    if (!m->keys[s]) {
        m->keys[s] = key;
        m->n++;
    }
    m->vals[s] = val;
}

bool strmap_get(const strmap *m, const char *key, size_t *val)
{
    if (!m->cap || !key)
        return false;
    size_t s = strmap__slot(m, key);
    if (!m->keys[s])
        return false;
    *val = m->vals[s];
    return true;
}

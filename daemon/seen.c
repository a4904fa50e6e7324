/* seen.c - when each node was last heard of, on the leader. */
#include "seen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int seen__cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const seen_node *)elem)->name);
}

/* name's record, added with its clock at now when new. */
static seen_node *seen__get(seen *s, const char *name, uint64_t now)
{
    seen_node *e = s->n ? bsearch(name, s->v, s->n, sizeof *s->v, seen__cmp) : NULL;
    if (e)
        return e;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        seen_node *p = realloc(s->v, s->cap * sizeof *p);
        if (!p)
            abort();
        s->v = p;
    }
    size_t lo = 0, hi = s->n; /* where name goes */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(s->v[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&s->v[lo + 1], &s->v[lo], (s->n - lo) * sizeof *s->v);
    s->n++;
    e = &s->v[lo];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->last_ms = now;
    return e;
}

void seen_free(seen *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

void seen_heard(seen *s, const char *name, uint64_t now, uint32_t rtt_ms, uint32_t hold_ms)
{
    seen_node *e = seen__get(s, name, now);
    e->last_ms = now;
    e->rtt_ms = rtt_ms;
    e->hold_ms = hold_ms;
    e->down_proposed = false;
}

uint64_t seen_limit_of(const seen_limit *l, uint32_t rtt_ms, uint32_t hold_ms)
{
    uint64_t by_rtt = l->rtts && rtt_ms ? hold_ms + l->rtts * (uint64_t)rtt_ms : 0;
    return by_rtt > l->timeout_ms ? by_rtt : l->timeout_ms;
}

void seen_check(seen *s, uint64_t leading_term, uint64_t now, const seen_limit *limit, const char *const *up,
                size_t n_up, seen_down_cb down, void *arg)
{
    if (leading_term != s->term) {
        for (size_t i = 0; i < s->n; i++) {
            s->v[i].last_ms = now;
            s->v[i].down_proposed = false;
        }
        s->term = leading_term;
    }
    if (!leading_term)
        return;
    for (size_t i = 0; i < n_up; i++) {
        seen_node *e = seen__get(s, up[i], now);
        if (e->down_proposed || now < e->last_ms ||
            now - e->last_ms <= seen_limit_of(limit, e->rtt_ms, e->hold_ms))
            continue;
        e->down_proposed = true;
        down(arg, e->name, now - e->last_ms);
    }
}

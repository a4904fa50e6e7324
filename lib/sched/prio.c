/* prio.c - the fair-share tree and the priority sum. */
#include "prio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/strmap.h"
#include "../../common/xmem.h"

typedef struct prio__node {
    char *path;
    size_t parent; /* SIZE_MAX: a child of the root */
    uint32_t shares;
    double usage;    /* its own, then its subtree's after finish */
    double siblings; /* shares of it and its siblings, after finish */
    prio_row row;
} prio__node;

struct prio_tree {
    const pol *p;
    prio__node *nodes; /* parents before children */
    size_t n, cap;
    strmap index; /* path -> its node */
    prio_row *rows;
    double total;
};

static size_t prio__find(const prio_tree *t, const char *path)
{
    size_t k;
    return strmap_get(&t->index, path, &k) ? k : SIZE_MAX;
}

/* The node of path ("a", "a/b", "a/b/u"), made (with its parents) if new. */
static size_t prio__get(prio_tree *t, const char *path)
{
    size_t k = prio__find(t, path);
    if (k != SIZE_MAX)
        return k;
    size_t parent = SIZE_MAX;
    const char *slash = strrchr(path, '/');
    if (slash) {
        char up[POL_PATH_MAX * 2 + 2];
        snprintf(up, sizeof up, "%.*s", (int)(slash - path), path);
        parent = prio__get(t, up);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        prio__node *a = realloc(t->nodes, t->cap * sizeof *a);
        if (!a)
            abort();
        t->nodes = a;
    }
    prio__node *n = &t->nodes[t->n++];
    memset(n, 0, sizeof *n);
    n->path = xstrdup(path);
    n->parent = parent;
    n->shares = pol_shares(t->p, n->path);
    if (!n->shares)
        n->shares = 1;
    strmap_put(&t->index, n->path, t->n - 1);
    return t->n - 1;
}

prio_tree *prio_tree_new(const pol *p)
{
    prio_tree *t = xcalloc(1, sizeof *t);
    t->p = p;
    for (size_t i = 0; i < p->n_accounts; i++)
        prio__get(t, p->accounts[i].path);
    return t;
}

void prio_tree_free(prio_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->nodes[i].path);
    free(t->nodes);
    strmap_free(&t->index);
    free(t->rows);
    free(t);
}

/* "account/user" into path (a pass makes one per job: no printf). */
static void prio__path(const prio_tree *t, const char *account, const char *user, char *path, size_t max)
{
    const char *a = account && *account ? account : t->p->default_account;
    const char *u = user && *user ? user : "?";
    size_t la = strnlen(a, max / 2 - 1), lu = strnlen(u, max / 2 - 1);
    memcpy(path, a, la);
    path[la] = '/';
    memcpy(path + la + 1, u, lu);
    path[la + 1 + lu] = '\0';
}

static size_t prio__user(prio_tree *t, const char *account, const char *user)
{
    char path[POL_PATH_MAX * 2 + 2];
    prio__path(t, account, user, path, sizeof path);
    return prio__get(t, path);
}

void prio_tree_use(prio_tree *t, const char *account, const char *user, double gpu_seconds)
{
    size_t k = prio__user(t, account, user);
    if (gpu_seconds > 0)
        t->nodes[k].usage += gpu_seconds;
}

void prio_tree_finish(prio_tree *t)
{
    double *subtree = xcalloc(t->n ? t->n : 1, sizeof *subtree);
    double root_shares = 0;
    for (size_t k = 0; k < t->n; k++)
        subtree[k] = t->nodes[k].usage;
    for (size_t k = t->n; k-- > 0;) /* children come after parents */
        if (t->nodes[k].parent != SIZE_MAX)
            subtree[t->nodes[k].parent] += subtree[k];
    double *kids = xcalloc(t->n ? t->n : 1, sizeof *kids); /* shares of each node's children */
    t->total = 0;
    for (size_t k = 0; k < t->n; k++) {
        const prio__node *n = &t->nodes[k];
        if (n->parent == SIZE_MAX) {
            root_shares += n->shares;
            t->total += subtree[k];
        } else {
            kids[n->parent] += n->shares;
        }
    }
    for (size_t k = 0; k < t->n; k++) {
        prio__node *n = &t->nodes[k];
        const prio_row *up = n->parent == SIZE_MAX ? NULL : &t->nodes[n->parent].row;
        n->siblings = up ? kids[n->parent] : root_shares;
        double within = (double)n->shares / n->siblings;
        prio_row *r = &n->row;
        r->path = n->path;
        r->shares = n->shares;
        r->usage = subtree[k];
        r->norm_shares = (up ? up->norm_shares : 1.0) * within;
        r->norm_usage = t->total > 0 ? subtree[k] / t->total : 0;
        /* Slurm's classic effective usage: pulled towards the parent's by
         * this node's share among its siblings. */
        r->effective_usage =
            up ? r->norm_usage + (up->effective_usage - r->norm_usage) * within : r->norm_usage;
        r->fairshare = r->norm_shares > 0 ? exp2(-r->effective_usage / r->norm_shares) : 0;
    }
    free(subtree);
    free(kids);
}

double prio_fairshare(prio_tree *t, const char *account, const char *user)
{
    char path[POL_PATH_MAX * 2 + 2];
    prio__path(t, account, user, path, sizeof path);
    size_t k = prio__find(t, path);
    return k == SIZE_MAX ? 1.0 : t->nodes[k].row.fairshare;
}

/* Depth first, parents first; siblings in the order they joined. */
static void prio__walk(prio_tree *t, size_t parent, size_t *n)
{
    for (size_t k = 0; k < t->n; k++) {
        if (t->nodes[k].parent == parent) {
            t->rows[(*n)++] = t->nodes[k].row;
            prio__walk(t, k, n);
        }
    }
}

const prio_row *prio_tree_rows(prio_tree *t, size_t *n)
{
    free(t->rows);
    t->rows = xcalloc(t->n ? t->n : 1, sizeof *t->rows);
    *n = 0;
    prio__walk(t, SIZE_MAX, n);
    return t->rows;
}

prio_factors prio_factors_of(const pol *p, int64_t wait_ms, int qos, uint32_t gpus, uint32_t net_gpus,
                             uint32_t nodes, uint32_t net_nodes, double fairshare)
{
    prio_factors f;
    f.age = wait_ms <= 0 ? 0 : wait_ms >= p->max_age_ms ? 1.0 : (double)wait_ms / (double)p->max_age_ms;
    f.fairshare = fairshare < 0 ? 0 : fairshare > 1 ? 1 : fairshare;
    uint32_t top = 0;
    for (size_t i = 0; i < p->n_qos; i++)
        top = p->qos[i].priority > top ? p->qos[i].priority : top;
    f.qos = top && qos >= 0 && (size_t)qos < p->n_qos ? (double)p->qos[qos].priority / top : 0;
    if (gpus && net_gpus)
        f.size = gpus >= net_gpus ? 1.0 : (double)gpus / net_gpus;
    else
        f.size = net_nodes ? (nodes >= net_nodes ? 1.0 : (double)nodes / net_nodes) : 0;
    return f;
}

uint32_t prio_value(const pol *p, const prio_factors *f)
{
    double v = p->w_age * f->age + p->w_fairshare * f->fairshare + p->w_qos * f->qos + p->w_size * f->size;
    return v >= 4e9 ? 4000000000u : (uint32_t)llround(v);
}

/* plan.c - priority order, a sticky head reservation, EASY backfilling,
 * best-fit node choice. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

int plan_policy_parse(const char *name, plan_policy *p)
{
    static const struct {
        const char *name;
        plan_order order;
        bool backfill;
    } known[] = {{"fcfs", PLAN_FCFS, false},
                 {"fcfs-easy", PLAN_FCFS, true},
                 {"sjf", PLAN_SJF, false},
                 {"sjf-easy", PLAN_SJF, true},
                 {"jazari", PLAN_JAZARI, true},
                 {"multifactor", PLAN_PRIORITY, true},
                 {"jazari-noback", PLAN_JAZARI, false},
                 {"jazari-ect", PLAN_SOONEST, false}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) == 0) {
            p->order = known[i].order;
            p->backfill = known[i].backfill;
            p->by_rank = known[i].order == PLAN_JAZARI || known[i].order == PLAN_PRIORITY;
            return 0;
        }
    }
    return -1;
}

const char *plan_policy_name(const plan_policy *p)
{
    if (p->order == PLAN_JAZARI)
        return p->backfill ? "jazari" : "jazari-noback";
    if (p->order == PLAN_SOONEST)
        return "jazari-ect";
    if (p->order == PLAN_PRIORITY)
        return "multifactor";
    if (p->order == PLAN_SJF)
        return p->backfill ? "sjf-easy" : "sjf";
    return p->backfill ? "fcfs-easy" : "fcfs";
}

void plan_init(plan *p, const plan_policy *policy, size_t n_nodes, uint32_t slots)
{
    memset(p, 0, sizeof *p);
    p->policy = *policy;
    p->n_nodes = n_nodes;
    p->nodes = xcalloc(n_nodes, sizeof *p->nodes);
    for (size_t i = 0; i < n_nodes; i++) {
        p->nodes[i].slots = p->nodes[i].free = slots;
        p->nodes[i].cpus = p->nodes[i].cpus_free = PLAN_UNCOUNTED;
        p->nodes[i].index = (uint32_t)i;
        p->nodes[i].up = true;
    }
}

void plan_free(plan *p)
{
    for (size_t i = 0; i < p->n_running; i++) {
        free(p->running[i]->where);
        p->running[i]->where = NULL;
    }
    free(p->nodes);
    free(p->queue);
    free(p->running);
    free(p->by_free);
    free(p->by_end);
    memset(p, 0, sizeof *p);
}

static void plan__push(plan_job ***arr, size_t *n, size_t *cap, plan_job *j)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        plan_job **a = realloc(*arr, *cap * sizeof(plan_job *));
        if (!a)
            abort();
        *arr = a;
    }
    (*arr)[(*n)++] = j;
}

void plan_submit(plan *p, plan_job *j)
{
    j->start = -1;
    plan__push(&p->queue, &p->n_queue, &p->queue_cap, j);
}

static bool plan__node_ok(const plan_node *n, const plan_job *j)
{
    return (!j->tag || n->tag == j->tag) && (!j->allowed || j->allowed[n->index]) &&
           n->slots >= j->per_node && (n->cpus == PLAN_UNCOUNTED || n->cpus >= j->cpus_per_node);
}

/* The slots of n that j may take at now: a reservation's job only its
 * reservation's (while it is on), a scavenger all that are free, any other
 * job those free that no reservation overlapping its run keeps (the
 * scavengers' slots count as reserved ones first). */
static uint32_t plan__avail(const plan_node *n, const plan_job *j, int64_t now)
{
    if (j->resv) {
        for (uint32_t w = 0; w < n->n_windows; w++) {
            const plan_window *x = &n->windows[w];
            /* Within its window, and done by its end: the GPUs are kept for
             * another tenant after it. */
            if (x->owner == j->resv && x->from <= now && now + j->limit <= x->until) {
                uint32_t left = x->slots > x->used ? x->slots - x->used : 0;
                return n->free < left ? n->free : left;
            }
        }
        return 0;
    }
    if (!n->n_windows || j->scavenger)
        return n->free;
    uint64_t held = 0;
    for (uint32_t w = 0; w < n->n_windows; w++) {
        const plan_window *x = &n->windows[w];
        if (x->from < now + j->limit && x->until > now && x->slots > x->used)
            held += x->slots - x->used;
    }
    held = held > n->scav_used ? held - n->scav_used : 0;
    return n->free > held ? (uint32_t)(n->free - held) : 0;
}

static bool plan__node_free(const plan *p, const plan_node *n, const plan_job *j)
{
    if (j->exclusive
            ? n->jobs > 0 || n->free < n->slots || (n->cpus != PLAN_UNCOUNTED && n->cpus_free < n->cpus)
            : n->whole > 0)
        return false;
    /* Among sites, a gang takes no node of none (tag 0). */
    if (p->sited && n->tag == 0 && j->nodes > 1 && !j->tag)
        return false;
    return n->up && (!p->only_group || n->group == p->only_group) &&
           (!p->only_tag || n->tag == p->only_tag) && plan__node_ok(n, j) &&
           plan__avail(n, j, p->now) >= j->per_node &&
           (n->cpus == PLAN_UNCOUNTED || n->cpus_free >= j->cpus_per_node) &&
           (!p->node_rank || p->node_rank(p->rank_arg, n, j) != PLAN_NO_FIT);
}

static void plan__node_take(plan *p, plan_node *n, const plan_job *j, int sign)
{
    /* An exclusive job takes (and gives back) the whole node. */
    uint32_t slots = j->exclusive ? n->slots : j->per_node;
    uint32_t cpus = j->exclusive ? n->cpus : j->cpus_per_node;
    if (p->counted && n->up && n->free <= p->max_slots)
        p->by_free[n->free]--;
    n->free = (uint32_t)((int64_t)n->free - sign * (int64_t)slots);
    if (p->counted && n->up && n->free <= p->max_slots)
        p->by_free[n->free]++;
    if (n->cpus != PLAN_UNCOUNTED)
        n->cpus_free = (uint32_t)((int64_t)n->cpus_free - sign * (int64_t)cpus);
    n->jobs = (uint32_t)((int64_t)n->jobs + sign);
    if (j->exclusive) {
        n->whole = (uint32_t)((int64_t)n->whole + sign);
        p->indexed = false; /* slots alone no longer say what fits */
    }
    if (j->scavenger)
        n->scav_used = (uint32_t)((int64_t)n->scav_used + sign * (int64_t)j->per_node);
    for (uint32_t w = 0; j->resv && w < n->n_windows; w++)
        if (n->windows[w].owner == j->resv)
            n->windows[w].used = (uint32_t)((int64_t)n->windows[w].used + sign * (int64_t)j->per_node);
}

bool plan_feasible(const plan *p, const plan_job *j)
{
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        n += plan__node_ok(&p->nodes[i], j);
    return n >= j->nodes;
}

static int plan__cmp_expected_end(const void *x, const void *y);

/* The order of the running jobs by expected end is kept as they start and
 * end (a binary search and a move, not a sort at every shadow). by_end
 * has room for every running job (the running array's capacity). */
static void plan__by_end_add(plan *p, plan_job *j)
{
    if (!p->by_end_ok)
        return;
    plan_job **a = realloc(p->by_end, p->running_cap * sizeof(plan_job *));
    if (!a)
        abort();
    p->by_end = a;
    size_t lo = 0, hi = p->n_running - 1; /* j is counted in n_running already */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (plan__cmp_expected_end(&a[mid], &j) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&a[lo + 1], &a[lo], (p->n_running - 1 - lo) * sizeof(plan_job *));
    a[lo] = j;
}

static void plan__by_end_remove(plan *p, const plan_job *j)
{
    if (!p->by_end_ok)
        return;
    for (size_t i = 0; i <= p->n_running; i++) { /* j is gone from n_running already */
        if (p->by_end[i] == j) {
            memmove(&p->by_end[i], &p->by_end[i + 1], (p->n_running - i) * sizeof(plan_job *));
            return;
        }
    }
    p->by_end_ok = false; /* cannot be: sort again next time */
}

void plan_add_running(plan *p, plan_job *j)
{
    for (uint32_t k = 0; k < j->nodes; k++)
        plan__node_take(p, &p->nodes[j->where[k]], j, 1);
    plan__push(&p->running, &p->n_running, &p->running_cap, j);
    plan__by_end_add(p, j);
}

/* --- order ------------------------------------------------------------------------ */

/* Ties go to the earlier job: the order is total, so a pass is the same
 * wherever it runs. */
static int plan__cmp_fcfs(const plan_job *a, const plan_job *b)
{
    if (a->submit != b->submit)
        return a->submit < b->submit ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int plan__cmp_sjf(const plan_job *a, const plan_job *b)
{
    if (a->limit != b->limit)
        return a->limit < b->limit ? -1 : 1;
    return plan__cmp_fcfs(a, b);
}

/* Aged smallest area first: a job's area (limit x nodes) is divided by
 * 1 + its wait counted in its own limits, so short small jobs go first and
 * a big one ranks first after a bounded wait (its limit x (its area / the
 * smallest area - 1)); once first, its reservation holds. */
static int64_t plan__now; /* for the aging key: set by plan__sort */

static double plan__aged_area(const plan_job *j)
{
    double wait = (double)(plan__now > j->submit ? plan__now - j->submit : 0);
    return (double)j->limit * j->nodes / (1.0 + wait / (double)j->limit);
}

static int plan__cmp_jazari(const plan_job *a, const plan_job *b)
{
    double x = plan__aged_area(a), y = plan__aged_area(b);
    if (x != y)
        return x < y ? -1 : 1;
    return plan__cmp_fcfs(a, b);
}

static int plan__cmp_priority(const plan_job *a, const plan_job *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    return plan__cmp_fcfs(a, b);
}

static int plan__qsort_priority(const void *x, const void *y)
{
    return plan__cmp_priority(*(plan_job *const *)x, *(plan_job *const *)y);
}

static int plan__qsort_jazari(const void *x, const void *y)
{
    return plan__cmp_jazari(*(plan_job *const *)x, *(plan_job *const *)y);
}

static int plan__qsort_fcfs(const void *x, const void *y)
{
    return plan__cmp_fcfs(*(plan_job *const *)x, *(plan_job *const *)y);
}

static int plan__qsort_sjf(const void *x, const void *y)
{
    return plan__cmp_sjf(*(plan_job *const *)x, *(plan_job *const *)y);
}

static void plan__sort(plan *p, plan_order order, int64_t now)
{
    plan__now = now;
    if (p->n_queue < 2)
        return; /* qsort wants a base even for none */
    qsort(p->queue, p->n_queue, sizeof(plan_job *),
          order == PLAN_SJF        ? plan__qsort_sjf
          : order == PLAN_JAZARI   ? plan__qsort_jazari
          : order == PLAN_PRIORITY ? plan__qsort_priority
                                   : plan__qsort_fcfs);
}

/* --- placement ------------------------------------------------------------------- */

/* Whether j fits on the free slots now. The index first: too few nodes
 * with enough free slots is a no at O(slots), whatever else j asks (CPUs,
 * a site, reserved slots only lower what is free); without anything else
 * to check, enough is a yes. Else a scan of the nodes. */
/* Whether j is a gang bound to one site (it asks none, may not span, and
 * the nodes are at several). */
static bool plan__one_site(const plan *p, const plan_job *j)
{
    return j->nodes > 1 && p->sited && !j->span && !j->tag;
}

static uint32_t plan__gang_site(const plan *p, const plan_job *j);

static bool plan__fits(const plan *p, const plan_job *j)
{
    if (p->counted) {
        uint64_t n = 0;
        for (uint32_t l = j->per_node; l <= p->max_slots && n < j->nodes; l++)
            n += p->by_free[l];
        if (n < j->nodes)
            return false;
        if (p->indexed && !j->tag && !j->allowed && !j->resv && !j->exclusive && !(p->sited && j->nodes > 1))
            return true;
    }
    if (plan__one_site(p, j))
        return plan__gang_site(p, j) != 0;
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_nodes && n < j->nodes; i++)
        n += plan__node_free(p, &p->nodes[i], j);
    return n >= j->nodes;
}

/* How much plan__take wants n for j, the lowest first: the lowest index
 * (first fit), or the caller's rank, or the fullest node (fewest free
 * slots, then fewest free CPUs: best fit). */
static uint64_t plan__rank(const plan *p, const plan_node *n, const plan_job *j)
{
    uint64_t r = p->policy.first_fit ? n->index
                 : p->node_rank      ? p->node_rank(p->rank_arg, n, j)
                                     : (uint64_t)n->free << 32 | n->cpus_free;
    /* A node it prefers comes before every other (the rank's top bit). */
    if (j->prefer)
        r = j->prefer[n->index] ? r >> 1 : r >> 1 | 1ull << 63;
    return r;
}

/* Takes the nodes for j: those of the lowest rank that fit first (then
 * the lowest index). */
static void plan__take(plan *p, plan_job *j, int64_t now)
{
    j->where = xcalloc(j->nodes, sizeof *j->where);
    for (uint32_t k = 0; k < j->nodes; k++) {
        size_t best = p->n_nodes;
        uint64_t best_rank = 0;
        /* With the index: the fullest level that fits, its first node. */
        for (uint32_t l = j->per_node;
             p->indexed && !p->policy.first_fit && !j->tag && !j->allowed && !j->prefer && !j->resv &&
             !j->exclusive && l <= p->max_slots && best == p->n_nodes;
             l++) {
            if (!p->by_free[l])
                continue;
            for (size_t i = 0; i < p->n_nodes && best == p->n_nodes; i++) {
                bool chosen = false;
                for (uint32_t c = 0; c < k && !chosen; c++)
                    chosen = j->where[c] == i;
                if (!chosen && p->nodes[i].up && p->nodes[i].free == l)
                    best = i;
            }
        }
        if (best != p->n_nodes) {
            j->where[k] = (uint32_t)best;
            plan__node_take(p, &p->nodes[best], j, 1);
            continue;
        }
        for (size_t i = 0; i < p->n_nodes; i++) {
            const plan_node *n = &p->nodes[i];
            bool chosen = false; /* a part per node */
            for (uint32_t c = 0; c < k && !chosen; c++)
                chosen = j->where[c] == i;
            if (chosen || !plan__node_free(p, n, j))
                continue;
            uint64_t rank = plan__rank(p, n, j);
            if (best == p->n_nodes || rank < best_rank) {
                best = i;
                best_rank = rank;
            }
        }
        j->where[k] = (uint32_t)best;
        plan__node_take(p, &p->nodes[best], j, 1);
    }
    j->start = now;
}

static void plan__index(plan *p);

/* A gang's group, when one group can hold it: of those, the one with the
 * fewest nodes that fit (best fit again, keeping big groups for big
 * gangs); 0 when none can (it spreads) or nodes are not grouped. */
static uint32_t plan__gang_group(const plan *p, const plan_job *j)
{
    if (j->nodes < 2 || !p->grouped)
        return 0;
    /* count[g]: its nodes that fit; liked[g]: of them, those j prefers. */
    uint32_t *count = xcalloc(2 * (p->n_nodes + 1), sizeof *count), *liked = count + p->n_nodes + 1;
    for (size_t i = 0; i < p->n_nodes; i++) {
        if (p->nodes[i].group <= p->n_nodes && plan__node_free(p, &p->nodes[i], j)) {
            count[p->nodes[i].group]++;
            liked[p->nodes[i].group] += j->prefer && j->prefer[i];
        }
    }
    uint32_t best = 0;
    bool best_liked = false;
    for (uint32_t g = 1; g <= p->n_nodes; g++) {
        if (count[g] < j->nodes)
            continue;
        bool l = liked[g] >= j->nodes; /* it can be held by preferred nodes alone */
        if (!best || (l && !best_liked) || (l == best_liked && count[g] < count[best])) {
            best = g;
            best_liked = l;
        }
    }
    free(count);
    return best;
}

/* A gang's site when one site can hold it: the one whose preferred nodes
 * alone can (its data's), else the one with the fewest nodes that fit
 * (best fit); 0 when none can. Sites are the tags 1..n_nodes (nodes of tag
 * 0 are at none, and take no gang bound to one). */
static uint32_t plan__gang_site(const plan *p, const plan_job *j)
{
    uint32_t *count = xcalloc(2 * (p->n_nodes + 1), sizeof *count), *liked = count + p->n_nodes + 1;
    for (size_t i = 0; i < p->n_nodes; i++) {
        uint32_t t = p->nodes[i].tag;
        if (t && t <= p->n_nodes && plan__node_free(p, &p->nodes[i], j)) {
            count[t]++;
            liked[t] += j->prefer && j->prefer[i];
        }
    }
    uint32_t best = 0;
    bool best_liked = false;
    for (uint32_t t = 1; t <= p->n_nodes; t++) {
        if (count[t] < j->nodes)
            continue;
        bool l = liked[t] >= j->nodes;
        if (!best || (l && !best_liked) || (l == best_liked && count[t] < count[best])) {
            best = t;
            best_liked = l;
        }
    }
    free(count);
    return best;
}

/* Takes j's nodes while only nodes of `only` (a group, or a site) may be
 * taken: by a scan, the index rebuilt after. */
static void plan__take_only(plan *p, plan_job *j, int64_t now, uint32_t *only, uint32_t value)
{
    bool counted = p->counted;
    p->indexed = p->counted = false;
    *only = value;
    plan__take(p, j, now);
    *only = 0;
    if (counted)
        plan__index(p);
}

/* Whether need more nodes can come from r more sites, of those in order
 * (m of them, largest first) not yet chosen. */
static bool plan__can_finish(const uint32_t *order, size_t m, const uint32_t *count, const bool *chosen,
                             uint64_t need, uint32_t r)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < m && r && sum < need; i++)
        if (!chosen[order[i]]) {
            sum += count[order[i]];
            r--;
        }
    return sum >= need;
}

/* The sites a spanning gang of want nodes takes, count[t] nodes fitting
 * at site t: as few as can hold it, and of those sets the one whose worst
 * round trip is the smallest. Tried from each site as a start (largest
 * first), adding at each step the site whose worst round trip to those
 * chosen is the smallest (then the largest) among those after which the
 * fewest sites can still hold it; the start whose set's worst pair is the
 * smallest wins (then the earliest). Without round trips, or with every
 * pair unknown, that is the largest sites first, as before. Writes the
 * sites into set, largest first (the order they take their parts), and
 * returns how many. */
static uint32_t plan__spread_sites(const plan *p, const uint32_t *count, uint32_t want, uint32_t *set)
{
    size_t n = p->n_nodes;
    /* The sites with room, largest first, then by tag: an insertion sort
     * (sites are tens). */
    uint32_t *order = xcalloc(n + 1, sizeof *order);
    size_t m = 0;
    for (uint32_t t = 1; t <= n; t++) {
        if (!count[t])
            continue;
        size_t i = m++;
        for (; i > 0 && count[order[i - 1]] < count[t]; i--)
            order[i] = order[i - 1];
        order[i] = t;
    }
    uint32_t k = 0;
    for (uint64_t sum = 0; k < m && sum < want; k++)
        sum += count[order[k]];
    uint64_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += count[order[i]];
    memcpy(set, order, k * sizeof *set);
    /* (Too few in all cannot be: plan__fits said it fits. Then they take
     * what they can, as before.) */
    if (!p->site_rtt || k < 2 || total < want) {
        free(order);
        return k;
    }
    bool *chosen = xcalloc(n + 1, sizeof *chosen);
    uint32_t *cost = xcalloc(n + 1, sizeof *cost); /* a site's worst round trip to those chosen */
    uint32_t *pick = xcalloc(k, sizeof *pick);
    uint32_t best_worst = 0;
    bool found = false;
    for (size_t s = 0; s < m; s++) {
        memset(chosen, 0, (n + 1) * sizeof *chosen);
        for (size_t i = 0; i < m; i++)
            cost[order[i]] = 0;
        uint32_t at = order[s], worst = 0, got = 0;
        uint64_t need = want;
        for (;;) {
            chosen[at] = true;
            pick[got++] = at;
            need = count[at] >= need ? 0 : need - count[at];
            if (got == k)
                break;
            for (size_t i = 0; i < m; i++) {
                uint32_t c = order[i];
                if (!chosen[c]) {
                    uint32_t r = p->site_rtt(p->rtt_arg, c, at);
                    cost[c] = r > cost[c] ? r : cost[c];
                }
            }
            /* The best of those after which k - got - 1 more sites can
             * still hold the rest (the largest one always can). */
            uint32_t next = 0;
            for (size_t i = 0; i < m; i++) {
                uint32_t c = order[i];
                if (chosen[c] || (next && cost[c] >= cost[next]))
                    continue;
                uint64_t left = count[c] >= need ? 0 : need - count[c];
                chosen[c] = true;
                bool ok = plan__can_finish(order, m, count, chosen, left, k - got - 1);
                chosen[c] = false;
                if (ok)
                    next = c;
            }
            if (!next)
                break; /* the start cannot be part of a set of k */
            worst = cost[next] > worst ? cost[next] : worst;
            at = next;
        }
        if (got == k && need == 0 && (!found || worst < best_worst)) {
            found = true;
            best_worst = worst;
            /* Largest first, as they take their parts. */
            for (size_t i = 0, w = 0; i < m; i++)
                for (uint32_t c = 0; c < k; c++)
                    if (pick[c] == order[i])
                        set[w++] = order[i];
        }
    }
    free(pick);
    free(cost);
    free(chosen);
    free(order);
    return k;
}

/* A gang that no site can hold, allowed to span: the sites
 * plan__spread_sites chooses, each taking what it can, largest first. */
static void plan__take_spread(plan *p, plan_job *j, int64_t now)
{
    uint32_t *count = xcalloc(2 * (p->n_nodes + 1), sizeof *count), *sites = count + p->n_nodes + 1;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].tag <= p->n_nodes && plan__node_free(p, &p->nodes[i], j))
            count[p->nodes[i].tag]++;
    uint32_t n_sites = plan__spread_sites(p, count, j->nodes, sites);
    uint32_t want = j->nodes, taken = 0;
    uint32_t *where = xcalloc(want, sizeof *where);
    bool counted = p->counted;
    p->indexed = p->counted = false;
    for (uint32_t s = 0; s < n_sites && taken < want; s++) {
        uint32_t have = count[sites[s]];
        uint32_t part = have < want - taken ? have : want - taken;
        /* Its next part nodes there, as plan__take picks them (the nodes
         * already taken are full for it: a part per node). */
        j->nodes = part;
        p->only_tag = sites[s];
        plan__take(p, j, now);
        memcpy(where + taken, j->where, part * sizeof *where);
        free(j->where);
        taken += part;
    }
    p->only_tag = 0;
    j->nodes = want;
    j->where = where;
    if (counted)
        plan__index(p);
    free(count);
}

/* Takes j's nodes: a gang within one group when one can hold it, else
 * within one site when one can (and must, unless it may span). */
static void plan__place(plan *p, plan_job *j, int64_t now)
{
    uint32_t g = plan__gang_group(p, j);
    if (g) {
        plan__take_only(p, j, now, &p->only_group, g);
        return;
    }
    bool gang = j->nodes > 1 && p->sited && !j->tag;
    uint32_t s = gang ? plan__gang_site(p, j) : 0;
    if (s)
        plan__take_only(p, j, now, &p->only_tag, s);
    else if (gang)
        plan__take_spread(p, j, now); /* it may span (else it would not fit) */
    else
        plan__take(p, j, now);
}

/* Starts queued j (it leaves the queue at the end of the pass). */
static void plan__start(plan *p, plan_job *j, int64_t now, void (*started)(void *, plan_job *), void *arg)
{
    plan__place(p, j, now);
    plan__push(&p->running, &p->n_running, &p->running_cap, j);
    plan__by_end_add(p, j);
    if (j == p->head)
        p->head = NULL;
    if (started)
        started(arg, j);
}

void plan_end(plan *p, plan_job *j)
{
    for (uint32_t k = 0; j->where && k < j->nodes; k++)
        plan__node_take(p, &p->nodes[j->where[k]], j, -1);
    free(j->where);
    j->where = NULL;
    for (size_t i = 0; i < p->n_running; i++) {
        if (p->running[i] == j) {
            p->running[i] = p->running[--p->n_running];
            plan__by_end_remove(p, j);
            break;
        }
    }
}

/* --- the reservation ----------------------------------------------------------- */

static int plan__cmp_expected_end(const void *x, const void *y)
{
    const plan_job *a = *(plan_job *const *)x, *b = *(plan_job *const *)y;
    int64_t ea = a->start + a->limit, eb = b->start + b->limit;
    if (ea != eb)
        return ea < eb ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* A copy of what releasing jobs changes (the nodes, the windows' use, the
 * index), to try things and put them back. */
typedef struct plan__saved {
    plan_node *nodes;
    uint32_t *used; /* every window's, node by node */
    uint32_t *by_free;
} plan__saved;

static void plan__save(const plan *p, plan__saved *s)
{
    s->nodes = xcalloc(p->n_nodes ? p->n_nodes : 1, sizeof *s->nodes);
    memcpy(s->nodes, p->nodes, p->n_nodes * sizeof *s->nodes);
    size_t n_win = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        n_win += p->nodes[i].n_windows;
    s->used = xcalloc(n_win ? n_win : 1, sizeof *s->used);
    for (size_t i = 0, k = 0; i < p->n_nodes; i++)
        for (uint32_t w = 0; w < p->nodes[i].n_windows; w++)
            s->used[k++] = p->nodes[i].windows[w].used;
    s->by_free = NULL;
    if (p->counted) {
        s->by_free = xcalloc(p->max_slots + 1, sizeof *s->by_free);
        memcpy(s->by_free, p->by_free, (p->max_slots + 1) * sizeof *s->by_free);
    }
}

static void plan__restore(plan *p, plan__saved *s)
{
    memcpy(p->nodes, s->nodes, p->n_nodes * sizeof *s->nodes);
    for (size_t i = 0, k = 0; i < p->n_nodes; i++)
        for (uint32_t w = 0; w < p->nodes[i].n_windows; w++)
            p->nodes[i].windows[w].used = s->used[k++];
    if (s->by_free)
        memcpy(p->by_free, s->by_free, (p->max_slots + 1) * sizeof *s->by_free);
    free(s->nodes);
    free(s->used);
    free(s->by_free);
}

/* The earliest time j fits, counting each running job as gone at its
 * start + limit: a copy of the free slots, the running jobs released in
 * that order until j fits. */
/* The running jobs by expected end, kept between shadows until the
 * running set changes. */
static plan_job *const *plan__by_end(plan *p)
{
    if (!p->by_end_ok) {
        free(p->by_end);
        p->by_end = xcalloc(p->n_running ? p->n_running : 1, sizeof(plan_job *));
        if (p->n_running) /* none: a job kept out by a reservation alone */
            memcpy(p->by_end, p->running, p->n_running * sizeof(plan_job *));
        if (p->n_running > 1)
            qsort(p->by_end, p->n_running, sizeof(plan_job *), plan__cmp_expected_end);
        p->by_end_ok = true;
    }
    return p->by_end;
}

static void plan__release(plan *p, const plan_job *x)
{
    for (uint32_t k = 0; k < x->nodes; k++)
        plan__node_take(p, &p->nodes[x->where[k]], x, -1);
}

/* One more node j fits on: *fit counts them, or, for a gang bound to one
 * site (site_fit not NULL: per site), the most at one site. */
static void plan__fit_more(const plan_node *n, uint32_t *site_fit, uint64_t *fit)
{
    if (!site_fit)
        (*fit)++;
    else if (++site_fit[n->tag] > *fit)
        *fit = site_fit[n->tag];
}

/* Releases x, keeping *fit (how many nodes j fits on) up to date from the
 * nodes x frees alone: a shadow costs the nodes once plus its releases,
 * not the nodes at every release. */
static void plan__release_counting(plan *p, const plan_job *x, const plan_job *j, uint32_t *site_fit,
                                   uint64_t *fit)
{
    for (uint32_t k = 0; k < x->nodes; k++) {
        plan_node *n = &p->nodes[x->where[k]];
        bool was = plan__node_free(p, n, j);
        plan__node_take(p, n, x, -1);
        if (!was && plan__node_free(p, n, j) && n->tag <= p->n_nodes)
            plan__fit_more(n, site_fit, fit);
    }
}

/* The earliest time j fits, counting each running job (and extra, placed
 * in thought but not running: may be NULL) as gone at its start + limit:
 * a copy of the free slots, the jobs released in that order until j fits. */
static int64_t plan__shadow_with(plan *p, const plan_job *j, int64_t now, const plan_job *extra)
{
    plan_job *const *order = plan__by_end(p);
    plan__saved saved;
    plan__save(p, &saved);
    int64_t t = INT64_MAX;
    /* Where the index alone answers, it does; else the nodes j fits on are
     * counted once and kept up to date release by release. */
    bool per_site = plan__one_site(p, j);
    bool counting = per_site || !(p->indexed && !j->tag && !j->allowed && !j->resv && !j->exclusive);
    uint64_t fit = 0;
    uint32_t *site_fit = per_site ? xcalloc(p->n_nodes + 1, sizeof *site_fit) : NULL;
    for (size_t i = 0; counting && i < p->n_nodes; i++)
        if (plan__node_free(p, &p->nodes[i], j) && p->nodes[i].tag <= p->n_nodes)
            plan__fit_more(&p->nodes[i], site_fit, &fit);
    for (size_t r = 0; r <= p->n_running && t == INT64_MAX; r++) {
        const plan_job *x = r < p->n_running ? order[r] : NULL;
        if (extra && (!x || plan__cmp_expected_end(&extra, &x) < 0)) {
            if (counting)
                plan__release_counting(p, extra, j, site_fit, &fit);
            else
                plan__release(p, extra);
            if (counting ? fit >= j->nodes : plan__fits(p, j))
                t = extra->start + extra->limit;
            extra = NULL;
        }
        if (!x || t != INT64_MAX)
            continue;
        if (counting)
            plan__release_counting(p, x, j, site_fit, &fit);
        else
            plan__release(p, x);
        if (counting ? fit >= j->nodes : plan__fits(p, j))
            t = x->start + x->limit;
    }
    plan__restore(p, &saved);
    free(site_fit);
    return t < now ? now : t;
}

static int64_t plan__shadow(plan *p, const plan_job *j, int64_t now)
{
    return plan__shadow_with(p, j, now, NULL);
}

/* Whether j, started now and running its whole limit, leaves the head's
 * reservation where it is: placed in thought, the shadow computed again,
 * then taken back. */
static bool plan__spares_head(plan *p, plan_job *j, int64_t now)
{
    plan__place(p, j, now);
    int64_t shadow = plan__shadow_with(p, p->head, now, j);
    plan__release(p, j);
    free(j->where);
    j->where = NULL;
    j->start = -1;
    return shadow <= p->shadow;
}

/* --- a pass --------------------------------------------------------------------- */

/* Takes the queue back to the jobs still waiting, in their order. */
static void plan__compact(plan *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_queue; i++)
        if (p->queue[i]->start < 0)
            p->queue[k++] = p->queue[i];
    p->n_queue = k;
}

/* One pass: the queue is sorted once (the keys do not change within a
 * pass), walked in order, and compacted at the end: a pass costs a sort
 * and a walk, not a sort per start. */
/* (Re)builds the index from the nodes as the caller left them. */
static void plan__index(plan *p)
{
    uint32_t most = 0;
    bool cpus = false;
    for (size_t i = 0; i < p->n_nodes; i++) {
        most = p->nodes[i].slots > most ? p->nodes[i].slots : most;
        /* Reservations make a node's free slots depend on the job. */
        cpus = cpus || p->nodes[i].cpus != PLAN_UNCOUNTED || p->nodes[i].n_windows || p->nodes[i].whole;
    }
    p->indexed = p->counted = false;
    p->grouped = p->sited = false;
    for (size_t i = 1; i < p->n_nodes && !p->grouped; i++)
        p->grouped = p->nodes[i].group != p->nodes[0].group;
    for (size_t i = 1; i < p->n_nodes && !p->sited; i++)
        p->sited = p->nodes[i].tag != p->nodes[0].tag;
    if (p->node_rank) /* the caller's fit is not in slots */
        return;
    if (most > p->max_slots || !p->by_free) {
        free(p->by_free);
        p->by_free = xcalloc((size_t)most + 1, sizeof *p->by_free);
        p->max_slots = most;
    }
    memset(p->by_free, 0, ((size_t)p->max_slots + 1) * sizeof *p->by_free);
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].up && p->nodes[i].free <= p->max_slots)
            p->by_free[p->nodes[i].free]++;
    p->counted = true;
    p->indexed = !cpus; /* CPUs or reservations: slots are a bound, not the answer */
}

/* PLAN_SOONEST. Without backfilling a head that must wait for room holds
 * the nodes it waits for, and everyone behind it waits too; so the next
 * job is the one expected to end first, its wait for room counted three
 * times: the key is 3 x (its earliest start - now) + its limit - 0.001 x
 * its wait, the earliest start being now if it fits, else when the running
 * jobs' limits free enough room. A new job's key is at least 1 (its limit),
 * so only jobs submitted less than 1,000 x (a job's key) after it can ever
 * go before it: no job starves. (3 and 0.001: the best of 1-5 and
 * 0-0.01 on 18 Lublin-1 windows other than RLScheduler's 10.) Starts such
 * jobs while they fit; the first that does not is the head (sticky, as in
 * any order). A shadow per queued job per start: for a simulator's queue,
 * not a national one. Returns how many started. */
static size_t plan__soonest(plan *p, int64_t now, size_t n, void (*started)(void *, plan_job *), void *arg)
{
    size_t k = 0;
    while (!p->max_starts || n + k < p->max_starts) {
        plan_job *best = NULL;
        double best_key = 0;
        int64_t best_at = now;
        bool best_fits = false;
        for (size_t i = 0; i < p->n_queue; i++) {
            plan_job *j = p->queue[i];
            if (j->start >= 0)
                continue;
            /* (A running job past its limit, not yet ended, makes a
             * shadow of now for a job that does not fit.) */
            bool fits = plan__fits(p, j);
            int64_t at = fits ? now : plan__shadow(p, j, now);
            double key =
                3.0 * ((double)at - (double)now) + (double)j->limit - 0.001 * (double)(now - j->submit);
            if (!best || key < best_key || (key == best_key && plan__cmp_fcfs(j, best) < 0)) {
                best = j;
                best_key = key;
                best_at = at;
                best_fits = fits;
            }
        }
        if (!best)
            break;
        if (!best_fits) {
            p->head = best;
            p->shadow = best_at;
            break;
        }
        plan__start(p, best, now, started, arg);
        k++;
    }
    return k;
}

size_t plan_pass(plan *p, int64_t now, void (*started)(void *arg, plan_job *j), void *arg)
{
    size_t n = 0;
    p->passes++;
    p->now = now;
    plan__index(p);
    if (p->head) {
        size_t hi = 0;
        while (hi < p->n_queue && p->queue[hi] != p->head)
            hi++;
        if (hi == p->n_queue)
            p->head = NULL; /* gone (cancelled): choose again */
    }
    /* The reserved head first: it starts as soon as it fits. */
    if (p->head && plan__fits(p, p->head)) {
        plan__start(p, p->head, now, started, arg);
        n++;
    }
    if (!p->head && p->policy.order == PLAN_SOONEST)
        n += plan__soonest(p, now, n, started, arg);
    /* Then in rank order, until one does not fit: the new head. */
    bool ranked = false;
    if (!p->head) {
        plan__sort(p, p->policy.order, now);
        ranked = true;
        for (size_t i = 0; i < p->n_queue && (!p->max_starts || n < p->max_starts); i++) {
            plan_job *j = p->queue[i];
            if (j->start >= 0)
                continue;
            if (plan__fits(p, j)) {
                plan__start(p, j, now, started, arg);
                n++;
                continue;
            }
            if (j->resv || j->scavenger)
                continue; /* a reservation's job, or a scavenger: never the head */
            p->head = j;
            p->shadow = plan__shadow(p, j, now);
            break;
        }
    }
    /* A reservation's jobs are a lane of their own: what they take is kept
     * from the others (the head included) anyway. */
    for (size_t i = 0; p->head && i < p->n_queue && (!p->max_starts || n < p->max_starts); i++) {
        plan_job *j = p->queue[i];
        if (j->resv && j->start < 0 && plan__fits(p, j)) {
            plan__start(p, j, now, started, arg);
            n++;
        }
    }
    /* EASY: whatever fits now and is done before the head's reservation,
     * in submit order (or in rank order). */
    if (p->head && p->policy.backfill && (!p->max_starts || n < p->max_starts)) {
        if (!p->policy.by_rank)
            plan__sort(p, PLAN_FCFS, now);
        else if (!ranked)
            plan__sort(p, p->policy.order, now);
        size_t checks = 0;
        for (size_t i = 0; i < p->n_queue && (!p->max_starts || n < p->max_starts); i++) {
            plan_job *j = p->queue[i];
            if (j->start >= 0 || j == p->head || !plan__fits(p, j))
                continue;
            bool ok = now + j->limit < p->shadow;
            if (!ok && p->policy.exact && checks < PLAN_EXACT_CHECKS) {
                checks++;
                ok = plan__spares_head(p, j, now);
            }
            if (ok) {
                plan__start(p, j, now, started, arg);
                p->backfilled++;
                n++;
            }
        }
    }
    plan__compact(p);
    return n;
}

int64_t plan_earliest(plan *p, const plan_job *j, int64_t now)
{
    p->now = now;
    plan__index(p);
    if (plan__fits(p, j))
        return now;
    return plan__shadow(p, j, now);
}

bool plan_fits_now(plan *p, const plan_job *j, int64_t now)
{
    p->now = now;
    plan__index(p);
    return plan__fits(p, j);
}

size_t plan_victims(plan *p, const plan_job *j, int64_t now, plan_job *const *cand, size_t n, plan_job **out)
{
    p->now = now;
    plan__index(p);
    plan__saved saved;
    plan__save(p, &saved);
    size_t k = 0;
    bool fits = plan__fits(p, j);
    for (size_t i = 0; i < n && !fits; i++) {
        for (uint32_t c = 0; c < cand[i]->nodes; c++)
            plan__node_take(p, &p->nodes[cand[i]->where[c]], cand[i], -1);
        out[k++] = cand[i];
        fits = plan__fits(p, j);
    }
    if (!fits) {
        k = 0;
    } else {
        /* Keep back those it fits without, the last released first. */
        for (size_t i = k; i-- > 0;) {
            plan_job *v = out[i];
            for (uint32_t c = 0; c < v->nodes; c++)
                plan__node_take(p, &p->nodes[v->where[c]], v, 1);
            if (plan__fits(p, j)) {
                memmove(&out[i], &out[i + 1], (k - i - 1) * sizeof(plan_job *));
                k--;
            } else {
                for (uint32_t c = 0; c < v->nodes; c++)
                    plan__node_take(p, &p->nodes[v->where[c]], v, -1);
            }
        }
    }
    plan__restore(p, &saved);
    return k;
}

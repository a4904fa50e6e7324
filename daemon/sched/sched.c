/* sched.c - the leader's scheduling pass: the replicated state as the
 * pass's neutral view (pass.h), and its decisions as GPU indexes and CPUs
 * on the chosen nodes. */
#include "sched.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cpulist.h"
#include "../../common/xmem.h"
#include "../../lib/sched/gpuset.h"
#include "../../lib/sched/plan.h"

static long sched__node_index(const fsm *f, const char *name)
{
    const fsm_node *n = name ? fsm_node_get(f, name) : NULL;
    return n ? (long)(n - f->nodes) : -1;
}

static void sched__cpus_init(const topo *t, sched__cpus *c)
{
    int last = -1;
    for (size_t p = 0; p < t->n_packages; p++) {
        int l = cpulist_last(t->packages[p].cpuset);
        if (l > last)
            last = l;
    }
    c->free = UINT32_MAX;
    if (last < 0 || t->pus == 0)
        return;
    c->n = (size_t)last + 1;
    c->exists = xcalloc(c->n, sizeof *c->exists);
    c->taken = xcalloc(c->n, sizeof *c->taken);
    bool *one = xcalloc(c->n, sizeof *one);
    c->free = 0;
    for (size_t p = 0; p < t->n_packages; p++) {
        if (cpulist_parse(t->packages[p].cpuset, one, c->n) < 0)
            continue;
        for (size_t i = 0; i < c->n; i++) {
            if (one[i] && !c->exists[i]) {
                c->exists[i] = true;
                c->free++;
            }
        }
    }
    free(one);
}

/* Marks the CPUs of a running job's part as taken. */
static void sched__cpus_take_list(sched__cpus *c, const char *list)
{
    if (!c->n || !list || !*list)
        return;
    bool *one = xcalloc(c->n, sizeof *one);
    if (cpulist_parse(list, one, c->n) >= 0) {
        for (size_t i = 0; i < c->n; i++) {
            if (one[i] && c->exists[i] && !c->taken[i]) {
                c->taken[i] = true;
                c->free--;
            }
        }
    }
    free(one);
}

/* Takes want free CPUs, those in `near` (a GPU's locality) first; their
 * list into out. */
static void sched__cpus_take(sched__cpus *c, uint32_t want, const bool *near, buf *out)
{
    if (!c->n)
        return;
    bool *got = xcalloc(c->n, sizeof *got);
    for (int pass = near ? 0 : 1; pass < 2 && want; pass++) {
        for (size_t i = 0; i < c->n && want; i++) {
            if (c->exists[i] && !c->taken[i] && (pass == 1 || near[i])) {
                c->taken[i] = got[i] = true;
                c->free--;
                want--;
            }
        }
    }
    cpulist_format(got, c->n, out);
    free(got);
}

static void sched__usage_build(const fsm *f, sched__usage *u)
{
    size_t total = 0;
    u->offset = xcalloc(f->n_nodes, sizeof *u->offset);
    u->free = xcalloc(f->n_nodes, sizeof *u->free);
    for (size_t i = 0; i < f->n_nodes; i++) {
        u->offset[i] = total;
        total += f->nodes[i].topo->n_gpus;
        u->free[i] = (uint32_t)f->nodes[i].topo->n_gpus;
    }
    u->taken = xcalloc(total, sizeof *u->taken);
    u->cpus = xcalloc(f->n_nodes, sizeof *u->cpus);
    for (size_t i = 0; i < f->n_nodes; i++)
        sched__cpus_init(f->nodes[i].topo, &u->cpus[i]);
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            long n = sched__node_index(f, j->allocs[a].node);
            if (n < 0)
                continue;
            sched__cpus_take_list(&u->cpus[n], j->allocs[a].cpus);
            for (uint32_t g = 0; g < j->allocs[a].n_gpus; g++) {
                uint32_t gi = j->allocs[a].gpus[g];
                if (gi < f->nodes[n].topo->n_gpus && !u->taken[u->offset[n] + gi]) {
                    u->taken[u->offset[n] + gi] = true;
                    u->free[n]--;
                }
            }
        }
    }
    /* A drained GPU is never free: nothing new is placed on it. */
    for (size_t i = 0; i < f->n_nodes; i++) {
        for (uint32_t k = 0; k < f->nodes[i].n_drains; k++) {
            int32_t gi = f->nodes[i].drains[k].gpu;
            if (gi >= 0 && (size_t)gi < f->nodes[i].topo->n_gpus && !u->taken[u->offset[i] + (size_t)gi]) {
                u->taken[u->offset[i] + (size_t)gi] = true;
                u->free[i]--;
            }
        }
    }
}

static void sched__usage_free(sched__usage *u, size_t n_nodes)
{
    for (size_t i = 0; i < n_nodes; i++) {
        free(u->cpus[i].exists);
        free(u->cpus[i].taken);
    }
    free(u->cpus);
    free(u->taken);
    free(u->offset);
    free(u->free);
}

/* The partition a job asks for ("": the default, if any) holding node i:
 * any of its comma list. */
static bool sched__in_partitions(const fsm *f, const pol *po, const char *parts, size_t i)
{
    const fsm_node *n = &f->nodes[i];
    if (!*parts) {
        int def = pol_partition_default(po);
        return def < 0 || pol_partition_has_node(&po->partitions[def], n->name, n->site, n->labels);
    }
    for (const char *p = parts; *p;) {
        size_t l = strcspn(p, ",");
        char name[POL_NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(l < POL_NAME_MAX ? l : POL_NAME_MAX), p);
        int k = pol_partition_find(po, name);
        /* A partition gone from the policy since: none of its nodes. */
        if (k >= 0 && pol_partition_has_node(&po->partitions[k], n->name, n->site, n->labels))
            return true;
        p += l + (p[l] == ',');
    }
    return false;
}

/* Whether the partitions play a part for a job asking for parts. */
static bool sched__partitioned(const pol *po, const char *parts)
{
    return *parts || pol_partition_default(po) >= 0;
}

/* The nodes with GPUs of that model ("": any) and at least mem bytes
 * each (0: any), and all these labels ("": any), and an account for user
 * ("": anyone's), in these partitions (sched__in_partitions), made once per
 * such kind in a pass; their count into *count (may be NULL). */
/* The mask cached under the key in s->scratch, or NULL (its count into
 * *count, which may be NULL). */
static const bool *sched__mask_cached(sched__masks *s, size_t *count)
{
    size_t at;
    if (!strmap_get(&s->index, buf_str(&s->scratch), &at))
        return NULL;
    if (count)
        *count = s->m[at].count;
    return s->m[at].allowed;
}

/* Keeps allowed (n of them true) under the key in s->scratch. */
static const bool *sched__mask_keep(sched__masks *s, bool *allowed, size_t n)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        void *p = realloc(s->m, s->cap * sizeof *s->m);
        if (!p)
            abort();
        s->m = p;
    }
    s->m[s->n].key = xstrdup(buf_str(&s->scratch));
    s->m[s->n].allowed = allowed;
    s->m[s->n].count = n;
    strmap_put(&s->index, s->m[s->n].key, s->n); /* the map borrows the entry's key */
    return s->m[s->n++].allowed;
}

/* The nodes at the sites of a comma list (the sites that hold a job's
 * data), made once per list in a pass; NULL when none is there. */
static const bool *sched__site_mask(const fsm *f, sched__masks *s, const char *sites, size_t *n)
{
    buf_reset(&s->scratch);
    buf_printf(&s->scratch, "\x1esites\x1f%s", sites);
    size_t count = 0;
    const bool *m = sched__mask_cached(s, &count);
    if (!m) {
        bool *at = xcalloc(f->n_nodes ? f->n_nodes : 1, sizeof *at);
        for (size_t i = 0; i < f->n_nodes; i++)
            count += at[i] = polsite_in(sites, f->nodes[i].site);
        m = sched__mask_keep(s, at, count);
    }
    if (n)
        *n = count;
    return count ? m : NULL;
}

static const bool *sched__model_mask(const fsm *f, const pol *po, sched__masks *s, const char *model,
                                     uint64_t mem, const char *labels, const char *user, const char *parts,
                                     const char *resident, int64_t now_ms, size_t *count)
{
    buf_reset(&s->scratch);
    buf_printf(&s->scratch, "%s\x1f%llu\x1f%s\x1f%s\x1f%s\x1f%s", model, (unsigned long long)mem, labels,
               user, parts, resident ? resident : "\x1e");
    const bool *cached = sched__mask_cached(s, count);
    if (cached)
        return cached;
    bool *allowed = xcalloc(f->n_nodes ? f->n_nodes : 1, sizeof *allowed);
    bool partitioned = sched__partitioned(po, parts);
    size_t n = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        allowed[i] = fsm_node_has_model(&f->nodes[i], model) && fsm_node_gpu_mem_ok(&f->nodes[i], mem) &&
                     fsm_node_has_labels(&f->nodes[i], labels) &&
                     !(*user && fsm_node_lacks(f, f->nodes[i].name, user, now_ms)) &&
                     (!partitioned || sched__in_partitions(f, po, parts, i)) &&
                     polsite_in(resident, f->nodes[i].site); /* NULL: no residency binds it */
        n += allowed[i];
    }
    if (count)
        *count = n;
    return sched__mask_keep(s, allowed, n);
}

static void sched__tags_init(sched__tags *t, const fsm *f, plan *p)
{
    strmap_init(&t->sites);
    strmap_init(&t->groups);
    t->pairs = (buf)BUF_INIT;
    size_t *at = xcalloc(f->n_nodes ? f->n_nodes : 1, sizeof *at);
    for (size_t i = 0; i < f->n_nodes; i++) {
        at[i] = t->pairs.len;
        buf_printf(&t->pairs, "%s\x1f%s", f->nodes[i].site ? f->nodes[i].site : "",
                   f->nodes[i].group ? f->nodes[i].group : "");
        buf_putc(&t->pairs, '\0');
    }
    for (size_t i = 0; i < f->n_nodes; i++) {
        size_t first;
        const char *site = f->nodes[i].site ? f->nodes[i].site : "";
        if (!strmap_get(&t->sites, site, &first))
            strmap_put(&t->sites, site, first = i);
        p->nodes[i].tag = (uint32_t)first + 1;
        const char *pair = t->pairs.data + at[i];
        if (!strmap_get(&t->groups, pair, &first))
            strmap_put(&t->groups, pair, first = i);
        p->nodes[i].group = (uint32_t)first + 1;
    }
    free(at);
}

/* plan.site_rtt: the policy's latency lines, by tag. */
static uint32_t sched__site_rtt(const void *arg, uint32_t a, uint32_t b)
{
    const struct sched__rtt *r = arg;
    return polsite_rtt(r->sites, r->index[a], r->index[b]);
}

/* The sites' indexes among the policy's, per tag (the first node of each
 * site names it), when the policy gives round trips. */
static void sched__rtt_init(sched_view *sv, const fsm *f, const pol *po)
{
    if (!po->sites.rtt)
        return;
    sv->rtt = xcalloc(1, sizeof *sv->rtt);
    sv->rtt->sites = &po->sites;
    sv->rtt->index = xcalloc(f->n_nodes + 1, sizeof *sv->rtt->index);
    sv->rtt->index[0] = -1;
    for (size_t i = 0; i < f->n_nodes; i++)
        sv->rtt->index[i + 1] =
            sv->v.nodes[i].tag == i + 1 ? polsite_index(&po->sites, f->nodes[i].site) : -1;
    sv->v.site_rtt = sched__site_rtt;
    sv->v.rtt_arg = sv->rtt;
}

static void sched__tags_free(sched__tags *t)
{
    strmap_free(&t->sites);
    strmap_free(&t->groups);
    buf_free(&t->pairs);
}

/* The most nodes one site has of those allowed (NULL: all) with at least
 * per_node slots: whether a gang bound to one site could ever start. */
static uint32_t sched__site_most(const sched_view *sv, const bool *allowed, uint32_t per_node)
{
    size_t n = sv->v.n_nodes;
    uint32_t *count = xcalloc(n + 1, sizeof *count), most = 0;
    for (size_t i = 0; i < n; i++) {
        const plan_node *x = &sv->v.nodes[i];
        if (x->tag <= n && x->slots >= per_node && (!allowed || allowed[i]) && ++count[x->tag] > most)
            most = count[x->tag];
    }
    free(count);
    return most;
}

/* Whether the nodes are at more than one site. */
static bool sched__sited(const sched_view *sv)
{
    for (size_t i = 1; i < sv->v.n_nodes; i++)
        if (sv->v.nodes[i].tag != sv->v.nodes[0].tag)
            return true;
    return false;
}

/* A job's site as a plan tag: 0 any; UINT32_MAX for a site no node has. */
static uint32_t sched__site_tag(const sched__tags *t, const char *site)
{
    size_t first;
    if (!site || !*site)
        return 0;
    return strmap_get(&t->sites, site, &first) ? (uint32_t)first + 1 : UINT32_MAX;
}

/* Reservation r's tag in the plan: 1 + its index. */
static uint32_t sched__resv_tag(const fsm *f, const char *reservation)
{
    for (size_t i = 0; *reservation && i < f->n_resv; i++)
        if (strcmp(f->resv[i].name, reservation) == 0)
            return (uint32_t)i + 1;
    return 0;
}

/* The reservations' windows on the plan's nodes (one array, each node
 * pointing at its part). */
static plan_window *sched__windows(const fsm *f, plan *p)
{
    size_t total = 0;
    for (size_t r = 0; r < f->n_resv; r++)
        total += f->resv[r].n_parts;
    if (!total)
        return NULL;
    plan_window *w = xcalloc(total, sizeof *w);
    size_t k = 0;
    for (size_t i = 0; i < f->n_nodes; i++) {
        p->nodes[i].windows = &w[k];
        for (size_t r = 0; r < f->n_resv; r++) {
            const fsm_resv *v = &f->resv[r];
            for (size_t x = 0; x < v->n_parts; x++) {
                if (strcmp(v->parts[x].node, f->nodes[i].name) != 0)
                    continue;
                w[k].from = v->start_ms / 1000;
                w[k].until = (v->end_ms + 999) / 1000;
                w[k].slots = v->parts[x].gpus;
                w[k].owner = (uint32_t)r + 1;
                k++;
                p->nodes[i].n_windows++;
            }
        }
        if (!p->nodes[i].n_windows)
            p->nodes[i].windows = NULL;
    }
    return w;
}

/* What the pass knows of each job beyond the plan's fields. */
/* The GPU indexes and CPUs of a started job's part on node n. */
static void sched__part(const fsm *f, sched__usage *u, const fsm_job *j, size_t n, sched_part *part)
{
    /* An exclusive job holds every GPU and CPU of its nodes (the core gave
     * it nodes with nothing else on them). */
    bool whole = j->cls->exclusive;
    uint32_t want = whole ? (uint32_t)f->nodes[n].topo->n_gpus : j->gpus_per_node;
    part->node = n;
    part->n_gpus = want;
    part->gpus = xcalloc(want ? want : 1, sizeof(uint32_t));
    /* The best-connected free GPUs of the node (the core made sure there
     * are enough). */
    if (gpuset_pick(f->nodes[n].topo, &u->taken[u->offset[n]], want, part->gpus) != 0)
        part->n_gpus = 0;
    for (uint32_t g = 0; g < part->n_gpus; g++)
        u->taken[u->offset[n] + part->gpus[g]] = true;
    u->free[n] -= part->n_gpus;
    /* CPUs near the first of its GPUs, when that is known. */
    sched__cpus *c = &u->cpus[n];
    bool *near = NULL;
    const topo *t = f->nodes[n].topo;
    if (c->n && part->n_gpus && part->gpus[0] < t->n_gpus && t->gpus[part->gpus[0]].cpuset) {
        near = xcalloc(c->n, sizeof *near);
        if (cpulist_parse(t->gpus[part->gpus[0]].cpuset, near, c->n) < 0) {
            free(near);
            near = NULL;
        }
    }
    buf cl = BUF_INIT;
    sched__cpus_take(c, whole ? c->free : j->cpus_per_node ? j->cpus_per_node : 1, near, &cl);
    part->cpus = xstrdup(buf_str(&cl));
    buf_free(&cl);
    free(near);
}

/* --- the view ------------------------------------------------------------------------ */

int sched_qos_of(const pol *p, const char *qos)
{
    int q = pol_qos_find(p ? p : pol_default(), qos);
    return q < 0 ? 0 : q;
}

const char *sched_resv_wait(const fsm *f, const char *reservation, int64_t now_ms)
{
    if (!reservation || !*reservation)
        return NULL;
    const fsm_resv *r = fsm_resv_get(f, reservation);
    if (!r)
        return "ReservationGone";
    return now_ms < r->start_ms ? "Reservation" : NULL;
}

/* Why a pending job cannot start at all, by the state's records. */
static pass_gate sched__gate(const fsm *f, const fsm_job *j, int64_t now_ms, size_t partition_nodes)
{
    if (j->held)
        return PASS_HELD;
    if (partition_nodes < (j->nodes ? j->nodes : 1))
        return PASS_PARTITION_NODES;
    const char *resv = sched_resv_wait(f, j->cls->reservation, now_ms);
    if (resv)
        return strcmp(resv, "Reservation") == 0 ? PASS_RESV_NOT_BEGUN : PASS_RESV_GONE;
    if (j->has_deps) { /* the one case that needs the spec itself */
        Jazari__JobSpec *spec = jazari__job_spec__unpack(NULL, j->spec_len, j->spec);
        int deps = spec ? fsm_job_deps_ready(f, j, spec) : -1;
        jazari__job_spec__free_unpacked(spec, NULL);
        if (deps <= 0)
            return deps < 0 ? PASS_DEPENDENCY_NEVER : PASS_DEPENDENCY;
    }
    return PASS_READY;
}

/* The grant a job is charged to, as the pass began (NULL: none, unlimited). */
static struct sched__grant *sched__grant_of(const fsm *f, sched_view *sv, const fsm_job *j, int64_t now_ms)
{
    const char *holder = f->acct.n_grants ? fsm_job_grant_holder(f, j) : NULL;
    if (!holder)
        return NULL;
    for (size_t i = 0; i < sv->n_grants; i++)
        if (sv->grants[i].holder == holder)
            return &sv->grants[i];
    sv->grants = xrealloc_array(sv->grants, sv->n_grants + 1, sizeof *sv->grants);
    struct sched__grant *g = &sv->grants[sv->n_grants++];
    g->holder = holder;
    g->left = fsm_grant_left(f, holder, now_ms, NULL, &g->held, &g->grant);
    return g;
}

/* Whether a pending job's worst case fits what its grant has left. */
static bool sched__fits(const fsm *f, sched_view *sv, const fsm_job *j, int64_t now_ms, bool take)
{
    struct sched__grant *g = sched__grant_of(f, sv, j, now_ms);
    if (!g)
        return true;
    fsm_ask ask;
    fsm_job_ask(j, &ask);
    uint64_t worst = fsm_ask_worst(f, &ask, now_ms, g->grant);
    if (!g->grant || g->left < 0 || worst + g->held > (uint64_t)g->left)
        return false;
    if (take)
        g->held += worst;
    return true;
}

int sched_view_build(const fsm *f, const pol *po, int64_t now_ms, sched_view *sv)
{
    memset(sv, 0, sizeof *sv);
    po = po ? po : pol_default();
    pass_view *v = &sv->v;
    v->pol = po;
    v->now_s = now_ms / 1000;
    v->n_nodes = f->n_nodes;
    sched__usage_build(f, &sv->u);
    plan p; /* for the tags' and windows' helpers: its nodes become the view's */
    plan_policy none = {.order = PLAN_FCFS};
    plan_init(&p, &none, f->n_nodes, 0);
    for (size_t i = 0; i < f->n_nodes; i++) {
        plan_node *pn = &p.nodes[i];
        pn->slots = (uint32_t)f->nodes[i].topo->n_gpus;
        pn->free = sv->u.free[i];
        if (sv->u.cpus[i].free != UINT32_MAX) {
            uint32_t exists = 0;
            for (size_t c = 0; c < sv->u.cpus[i].n; c++)
                exists += sv->u.cpus[i].exists[c];
            pn->cpus = exists;
            pn->cpus_free = sv->u.cpus[i].free;
        }
        /* A drained GPU stays in slots (its job's end frees it in the
         * plan's future, where it is harmless); it is never free now. */
        pn->up = fsm_node_usable(&f->nodes[i]);
    }
    sched__tags_init(&sv->tags, f, &p);
    sv->windows = sched__windows(f, &p);
    v->nodes = p.nodes; /* taken from the plan */
    p.nodes = NULL;
    plan_free(&p);
    sched__rtt_init(sv, f, po);
    /* Reservations' ends, for preemption by their jobs. */
    sv->resv_end = xcalloc(f->n_resv ? f->n_resv : 1, sizeof *sv->resv_end);
    for (size_t r = 0; r < f->n_resv; r++)
        sv->resv_end[r] = f->resv[r].end_ms / 1000;
    v->resv_end_s = sv->resv_end;
    v->n_resv = f->n_resv;
    /* Usage: "account/user" records. */
    sv->usage = xcalloc(f->n_usage ? f->n_usage : 1, sizeof *sv->usage);
    sv->paths = xcalloc(f->n_usage ? f->n_usage : 1, sizeof *sv->paths);
    for (size_t i = 0; i < f->n_usage; i++) {
        char *path = xstrdup(f->usage[i].path);
        char *slash = strrchr(path, '/');
        sv->paths[i] = path;
        if (!slash)
            continue;
        *slash = '\0';
        pass_usage *u = &sv->usage[v->n_usage++];
        u->account = path;
        u->user = slash + 1;
        u->gpu_s = (double)fsm_usage_at(f, &f->usage[i], now_ms) / 1000.0;
    }
    v->usage = sv->usage;
    bool sited = sched__sited(sv);
    /* Every running job, and every pending one in id (submit) order. */
    size_t cap = f->n_active + 1; /* running and pending */
    sv->jobs = xcalloc(cap, sizeof *sv->jobs);
    sv->of = xcalloc(cap, sizeof(const fsm_job *));
    sv->where = xcalloc(cap, sizeof *sv->where);
    strmap lacking; /* users some node has no account for, lately */
    strmap_init(&lacking);
    for (size_t i = 0; i < f->n_lacks; i++)
        if (now_ms - f->lacks[i].at_ms < FSM_LACK_MS)
            strmap_put(&lacking, f->lacks[i].user, 1);
    for (uint64_t k = 0; k < f->jobs_cap && v->n_jobs < cap; k++) {
        const fsm_job *j = f->jobs[k];
        bool running = j && j->state == JAZARI__JOB_STATE__JOB_RUNNING;
        bool pending = j && j->state == JAZARI__JOB_STATE__JOB_PENDING;
        if (!running && !pending)
            continue;
        size_t n = v->n_jobs;
        pass_job *pj = &sv->jobs[n];
        const fsm_class *cls = j->cls;
        pj->id = j->id;
        pj->user = j->user;
        pj->account = cls->account;
        pj->qos = sched_qos_of(po, cls->qos);
        pj->submit_s = j->submit_ms / 1000;
        pj->limit_s = j->time_limit_s ? (int64_t)j->time_limit_s : (int64_t)FSM_TIME_MAX_S;
        pj->nodes = running ? j->n_allocs : (j->nodes ? j->nodes : 1);
        pj->per_node = j->gpus_per_node;
        pj->cpus_per_node = j->cpus_per_node ? j->cpus_per_node : 1;
        pj->resv = sched__resv_tag(f, cls->reservation);
        pj->exclusive = cls->exclusive;
        pj->array_id = j->array_job_id;
        pj->array_max = cls->array_max;
        pj->attempt = j->attempt;
        if (running) {
            uint32_t *where = xcalloc(pj->nodes ? pj->nodes : 1, sizeof(uint32_t));
            bool known = pj->nodes > 0;
            for (uint32_t a = 0; a < j->n_allocs && known; a++) {
                long ni = sched__node_index(f, j->allocs[a].node);
                known = ni >= 0;
                where[a] = known ? (uint32_t)ni : 0;
            }
            if (!known) {
                free(where);
                continue;
            }
            sv->where[n] = where;
            pj->where = where;
            pj->running = true;
            pj->start_s = j->start_ms / 1000;
            pj->preempting = j->preempt_ms != 0;
            pj->stop_by_s = j->preempt_ms / 1000 + j->preempt_grace_s;
        } else {
            pj->tag = sched__site_tag(&sv->tags, cls->site);
            /* A user some node has no account for: not there. */
            size_t one;
            const char *lacked = f->n_lacks && strmap_get(&lacking, j->user, &one) ? j->user : "";
            bool partitioned = sched__partitioned(po, cls->partition);
            /* Its account's data stays at these sites (NULL: anywhere). */
            const char *resident =
                polsite_residency(&po->sites, *cls->account ? cls->account : po->default_account);
            bool narrowed =
                *cls->gpu_model || cls->min_gpu_mem || *cls->constraint || *lacked || partitioned || resident;
            pj->allowed =
                narrowed ? sched__model_mask(f, po, &sv->masks, cls->gpu_model, cls->min_gpu_mem,
                                             cls->constraint, lacked, cls->partition, resident, now_ms, NULL)
                         : NULL;
            /* The sites that hold its data first (a dataset gone from the policy: none). */
            const char *held = *cls->data ? polsite_dataset(&po->sites, cls->data) : NULL;
            pj->prefer = held ? sched__site_mask(f, &sv->masks, held, NULL) : NULL;
            /* The nodes where its data may go (Residency when too few). */
            size_t resident_nodes = SIZE_MAX;
            if (resident)
                sched__site_mask(f, &sv->masks, resident, &resident_nodes);
            /* The partitions' nodes alone (PartitionNodeLimit). */
            size_t in_partition = SIZE_MAX;
            if (partitioned)
                sched__model_mask(f, po, &sv->masks, "", 0, "", "", cls->partition, NULL, now_ms,
                                  &in_partition);
            pj->gate = sched__gate(f, j, now_ms, in_partition);
            if (pj->gate == PASS_READY && resident_nodes < (j->nodes ? j->nodes : 1))
                pj->gate = PASS_RESIDENCY;
            /* A gang stays in one site unless it (or the policy) lets it span. */
            pj->span = cls->span_sites || po->span_sites;
            if (pj->gate == PASS_READY && j->nodes > 1 && !pj->span && !pj->tag && sited &&
                sched__site_most(sv, pj->allowed, pj->per_node) < j->nodes)
                pj->gate = PASS_SITE_NODES;
            if (pj->gate == PASS_READY && !sched__fits(f, sv, j, now_ms, false))
                pj->gate = PASS_ALLOCATION;
            if (j->reason &&
                (strncmp(j->reason, "Requeued", 8) == 0 || strncmp(j->reason, "Preempted", 9) == 0))
                pj->note = j->reason;
        }
        sv->of[n] = j;
        v->n_jobs++;
    }
    strmap_free(&lacking);
    v->jobs = sv->jobs;
    return 0;
}

void sched_view_free(sched_view *sv, const fsm *f)
{
    for (size_t i = 0; i < sv->v.n_jobs; i++)
        free(sv->where[i]);
    free(sv->where);
    free(sv->jobs);
    free(sv->of);
    for (size_t i = 0; i < f->n_usage; i++)
        free(sv->paths[i]);
    free(sv->paths);
    free(sv->usage);
    free(sv->resv_end);
    free(sv->windows);
    free(sv->grants);
    free(sv->v.nodes);
    sched__tags_free(&sv->tags);
    if (sv->rtt)
        free(sv->rtt->index);
    free(sv->rtt);
    strmap_free(&sv->masks.index);
    buf_free(&sv->masks.scratch);
    for (size_t i = 0; i < sv->masks.n; i++) {
        free(sv->masks.m[i].key);
        free(sv->masks.m[i].allowed);
    }
    free(sv->masks.m);
    sched__usage_free(&sv->u, f->n_nodes);
    memset(sv, 0, sizeof *sv);
}

/* --- the leader's pass ---------------------------------------------------------------- */

/* The partition a job placed on where (n nodes) runs in: the first of
 * those it asked for (none: the default) that holds all its nodes, else
 * the first that holds its first node; NULL when partitions play no part. */
static const char *sched__chosen_partition(const fsm *f, const pol *po, const char *parts,
                                           const uint32_t *where, size_t n)
{
    const char *first_node = NULL;
    int def = pol_partition_default(po);
    if (!*parts && def >= 0)
        parts = po->partitions[def].name;
    for (const char *p = parts; *p;) {
        size_t l = strcspn(p, ",");
        char name[POL_NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(l < POL_NAME_MAX ? l : POL_NAME_MAX), p);
        p += l + (p[l] == ',');
        int k = pol_partition_find(po, name);
        if (k < 0)
            continue;
        const pol_partition *pt = &po->partitions[k];
        size_t in = 0;
        for (size_t i = 0; i < n; i++) {
            const fsm_node *x = &f->nodes[where[i]];
            in += pol_partition_has_node(pt, x->name, x->site, x->labels);
        }
        if (in == n)
            return pt->name;
        if (!first_node && n) {
            const fsm_node *x = &f->nodes[where[0]];
            if (pol_partition_has_node(pt, x->name, x->site, x->labels))
                first_node = pt->name;
        }
    }
    return first_node;
}

int sched_pass(const fsm *f, sched_state *st, int64_t now_ms, size_t max, sched_plan *out)
{
    memset(out, 0, sizeof *out);
    if (f->n_ready == 0 || f->n_nodes == 0)
        return 0;
    sched_view sv;
    sched_view_build(f, st->pol, now_ms, &sv);
    plan_policy policy = st->policy;
    policy.exact = true; /* the leader checks the head's guarantee itself, not only by time */
    pass_state ps = {.policy = policy, .head = st->head, .shadow = st->shadow, .preemptor = st->preemptor};
    pass_out po;
    pass_run(&sv.v, &ps, &policy, max, &po);
    st->head = ps.head;
    st->shadow = ps.shadow;
    st->preemptor = ps.preemptor;
    out->blocked = po.blocked;
    out->starts = xcalloc(po.n_starts ? po.n_starts : 1, sizeof *out->starts);
    for (size_t i = 0; i < po.n_starts; i++) {
        const pass_start *ps1 = &po.starts[i];
        const fsm_job *j = sv.of[ps1->job];
        /* Each fit its grant alone; together they may not: in the pass's
         * order, what the earlier ones take is no longer left. */
        if (!sched__fits(f, &sv, j, now_ms, true))
            continue;
        sched_start *s = &out->starts[out->n_starts++];
        s->id = j->id;
        s->n_parts = sv.jobs[ps1->job].nodes;
        s->parts = xcalloc(s->n_parts ? s->n_parts : 1, sizeof *s->parts);
        for (uint32_t k = 0; k < s->n_parts; k++)
            sched__part(f, &sv.u, j, ps1->where[k], &s->parts[k]);
        s->partition = sched__chosen_partition(f, sv.v.pol, j->cls->partition, ps1->where, s->n_parts);
    }
    out->preempts = xcalloc(po.n_preempts ? po.n_preempts : 1, sizeof *out->preempts);
    for (size_t i = 0; i < po.n_preempts; i++) {
        const pass_preempt *pp = &po.preempts[i];
        sched_preempt *x = &out->preempts[out->n_preempts++];
        x->id = sv.jobs[pp->job].id;
        x->attempt = sv.jobs[pp->job].attempt;
        x->grace_s = pp->grace_s;
        snprintf(x->reason, sizeof x->reason, "%s", pp->reason);
    }
    pass_out_free(&po, sv.v.n_jobs);
    sched_view_free(&sv, f);
    return 0;
}

/* --- why jobs wait, on any controller ----------------------------------------------- */

int sched_why_init(sched_why *w, const fsm *f, const pol *p, const plan_policy *policy, int64_t now_ms)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    sched_view_build(f, p, now_ms, &w->view);
    w->view.v.estimate = true;
    plan_policy pp = *policy;
    pp.exact = true;
    /* A fresh state: what the pass says of the queue from the state
     * alone, so every controller says the same. */
    pass_run(&w->view.v, NULL, &pp, 0, &w->out);
    return 0;
}

static size_t sched__why_index(const sched_why *w, uint64_t id)
{
    size_t lo = 0, hi = w->view.v.n_jobs; /* the view's jobs are in id order */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->view.jobs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->view.v.n_jobs && w->view.jobs[lo].id == id ? lo : SIZE_MAX;
}

int64_t sched_why_start(const sched_why *w, uint64_t id)
{
    size_t k = sched__why_index(w, id);
    if (k == SIZE_MAX || !w->out.est_start_s || !w->out.est_start_s[k])
        return 0;
    return w->out.est_start_s[k] * 1000;
}

const char *sched_why_job(const sched_why *w, uint64_t id, uint32_t *priority)
{
    size_t lo = 0, hi = w->view.v.n_jobs; /* the view's jobs are in id order */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->view.jobs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == w->view.v.n_jobs || w->view.jobs[lo].id != id)
        return NULL;
    if (priority)
        *priority = w->out.priority[lo];
    for (size_t i = 0; i < w->out.n_starts; i++)
        if (w->out.starts[i].job == lo)
            return "None"; /* the next pass starts it */
    return w->out.reasons[lo];
}

void sched_why_free(sched_why *w)
{
    pass_out_free(&w->out, w->view.v.n_jobs);
    sched_view_free(&w->view, w->f);
}

/* The answer kept with the state, and what it was made for. */
typedef struct sched__why_memo {
    sched_why why;
    const pol *pol;
    const plan_policy *policy;
    int64_t second;
} sched__why_memo;

static uint64_t sched__why_passes;

static void sched__why_memo_free(void *data)
{
    sched__why_memo *m = data;
    sched_why_free(&m->why);
    free(m);
}

const sched_why *sched_why_get(fsm *f, const pol *p, const plan_policy *policy, int64_t now_ms)
{
    int64_t second = now_ms / 1000;
    sched__why_memo *m = fsm_memo_get(f, sched__why_memo_free);
    if (m && m->second == second && m->pol == p && m->policy == policy)
        return &m->why;
    m = xcalloc(1, sizeof *m);
    m->pol = p;
    m->policy = policy;
    m->second = second;
    /* At the second's start: the answer is the state's and the second's
     * alone, whichever request asked first. */
    sched_why_init(&m->why, f, p, policy, second * 1000);
    sched__why_passes++;
    fsm_memo_set(f, m, sched__why_memo_free);
    return &m->why;
}

uint64_t sched_why_passes(void)
{
    return sched__why_passes;
}

void sched_plan_free(sched_plan *decided)
{
    for (size_t i = 0; i < decided->n_starts; i++) {
        for (size_t p = 0; p < decided->starts[i].n_parts; p++) {
            free(decided->starts[i].parts[p].gpus);
            free(decided->starts[i].parts[p].cpus);
        }
        free(decided->starts[i].parts);
    }
    free(decided->starts);
    free(decided->preempts);
    memset(decided, 0, sizeof *decided);
}

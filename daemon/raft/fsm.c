/* fsm.c - the replicated state machine. */
#include "fsm.h"
#include "fstep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/decay.h"
#include "../../common/hostlist.h"
#include "../../common/jobspec.h"
#include "../../common/utf8.h"
#include "../../common/xmem.h"
#include "../../lib/hw/topo_pb.h"

static topo *fsm__empty_topo(void)
{
    return xcalloc(1, sizeof(topo));
}

#define FSM__HALF_LIFE_MS (7ll * 24 * 3600 * 1000)

void fsm_init(fsm *f)
{
    memset(f, 0, sizeof *f);
    f->next_job_id = 1;
    f->half_life_ms = FSM__HALF_LIFE_MS;
    adb_init(&f->audit);
    edb_init(&f->events);
    facct_init(&f->acct);
}

static void fsm__resv_clear(fsm_resv *r)
{
    free(r->name);
    free(r->account);
    for (size_t i = 0; i < r->n_users; i++)
        free(r->users[i]);
    free(r->users);
    for (size_t i = 0; i < r->n_parts; i++)
        free(r->parts[i].node);
    free(r->parts);
    free(r->msg);
    memset(r, 0, sizeof *r);
}

static void fsm__allocs_clear(fsm_job *j)
{
    for (uint32_t i = 0; i < j->n_allocs; i++) {
        free(j->allocs[i].node);
        free(j->allocs[i].gpus);
        free(j->allocs[i].cpus);
        free(j->allocs[i].address);
    }
    free(j->allocs);
    j->allocs = NULL;
    j->n_allocs = 0;
}

/* A spec's class key: its fields, NUL-separated, into key; returned, the
 * lookup's text (the NULs made visible), to free. */
static char *fsm__class_key(const Jazari__JobSpec *s, buf *key)
{
    const char *parts[8] = {s ? s->account : NULL,   s ? s->qos : NULL,        s ? s->site : NULL,
                            s ? s->gpu_model : NULL, s ? s->constraint : NULL, s ? s->reservation : NULL,
                            s ? s->partition : NULL, s ? s->data : NULL};
    for (size_t i = 0; i < 8; i++) {
        buf_puts(key, parts[i] ? parts[i] : "");
        buf_putc(key, '\0');
    }
    buf_printf(key, "%llu:%u%s%s", (unsigned long long)(s ? s->min_gpu_mem : 0),
               s && s->array_task ? s->array_max : 0, s && s->exclusive ? ":x" : "",
               s && s->span_sites ? ":s" : "");
    char *flat = xcalloc(key->len + 1, 1);
    memcpy(flat, key->data, key->len);
    for (size_t i = 0; i < key->len; i++)
        if (!flat[i])
            flat[i] = '\x1f';
    return flat;
}

/* The class of a spec, shared (a reference taken). */
static const fsm_class *fsm__class_get(fsm *f, const Jazari__JobSpec *s)
{
    buf key = BUF_INIT;
    char *flat = fsm__class_key(s, &key);
    size_t v;
    if (strmap_get(&f->classes, flat, &v)) {
        fsm_class *c = f->class_pool[v];
        c->refs++;
        free(flat);
        buf_free(&key);
        return c;
    }
    fsm_class *c = xcalloc(1, sizeof *c);
    c->key = flat;
    /* The fields point into a copy of the NUL-separated key. */
    char *fields = xcalloc(key.len + 1, 1);
    memcpy(fields, key.data, key.len);
    const char **dst[8] = {&c->account,    &c->qos,         &c->site,      &c->gpu_model,
                           &c->constraint, &c->reservation, &c->partition, &c->data};
    const char *at = fields;
    for (size_t i = 0; i < 8; i++) {
        *dst[i] = at;
        at += strlen(at) + 1;
    }
    c->min_gpu_mem = s ? s->min_gpu_mem : 0;
    c->exclusive = s && s->exclusive;
    c->span_sites = s && s->span_sites;
    c->array_max = s && s->array_task ? s->array_max : 0;
    c->refs = 1;
    size_t slot = f->n_class_pool;
    if (f->classes.n < f->n_class_pool) /* a slot was freed (rare): found by a scan */
        for (slot = 0; f->class_pool[slot]; slot++)
            ;
    if (slot == f->n_class_pool) {
        fsm_class **pool = realloc(f->class_pool, (f->n_class_pool + 1) * sizeof(fsm_class *));
        if (!pool)
            abort();
        f->class_pool = pool;
        f->n_class_pool++;
    }
    f->class_pool[slot] = c;
    c->slot = slot;
    strmap_put(&f->classes, c->key, slot);
    buf_free(&key);
    return c;
}

static void fsm__class_free(fsm_class *c)
{
    free((char *)c->account); /* the fields' copy */
    free(c->key);
    free(c->holders);
    free(c);
}

/* Drops a reference; the last one frees it. The map keeps no dangling key:
 * a class is removed by rebuilding the map without it (rare: a kind of job
 * nobody has any more). */
static void fsm__class_put(fsm *f, const fsm_class *cc)
{
    fsm_class *c = (fsm_class *)cc;
    if (!c || --c->refs > 0)
        return;
    strmap old = f->classes;
    strmap_init(&f->classes);
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i] && old.vals[i] != c->slot)
            strmap_put(&f->classes, old.keys[i], old.vals[i]);
    strmap_free(&old);
    f->class_pool[c->slot] = NULL;
    fsm__class_free(c);
}

/* User u's job of class cc enters (sign 1) or leaves (-1) the active part
 * of the queue: the class's holders, and u's count of classes, follow. */
static void fsm__class_hold(fsm *f, const fsm_class *cc, size_t u, int sign)
{
    fsm_class *c = (fsm_class *)cc;
    size_t i = 0;
    while (i < c->n_holders && c->holders[i].user != u)
        i++; /* the users with jobs of one class: people, not jobs */
    if (sign > 0) {
        if (i == c->n_holders) {
            struct fsm_class_holder *h = realloc(c->holders, (c->n_holders + 1) * sizeof *h);
            if (!h)
                abort();
            c->holders = h;
            c->holders[c->n_holders++] = (struct fsm_class_holder){.user = u, .jobs = 0};
            f->users[u].classes++;
        }
        c->holders[i].jobs++;
    } else if (i < c->n_holders && --c->holders[i].jobs == 0) {
        c->holders[i] = c->holders[--c->n_holders];
        f->users[u].classes--;
    }
}

/* A job's own memory (its class is the caller's business). */
static void fsm__job_release(fsm_job *j)
{
    fstep_clear(j);
    fsm__allocs_clear(j);
    free(j->user);
    free(j->reason);
    free(j->partition);
    free(j->spec);
    if (j->usage)
        jazari__job_usage__free_unpacked(j->usage, NULL);
    for (uint32_t i = 0; i < j->n_runs; i++)
        jazari__run_charge__free_unpacked(j->runs[i], NULL);
    free(j->runs);
    free(j);
}

static void fsm__job_free(fsm *f, fsm_job *j)
{
    if (!j)
        return;
    fsm__class_put(f, j->cls);
    fsm__job_release(j);
}

/* --- per-user counts ---------------------------------------------------------------- */

const fsm_user *fsm_user_get(const fsm *f, const char *name)
{
    size_t i;
    return name && strmap_get(&f->user_index, name, &i) ? &f->users[i] : NULL;
}

static fsm_user *fsm__user(fsm *f, const char *name)
{
    size_t i;
    if (strmap_get(&f->user_index, name, &i))
        return &f->users[i];
    if (f->n_users == f->users_cap) {
        f->users_cap = f->users_cap ? 2 * f->users_cap : 16;
        fsm_user *grown = realloc(f->users, f->users_cap * sizeof *grown);
        if (!grown)
            abort();
        f->users = grown;
    }
    fsm_user *u = &f->users[f->n_users];
    memset(u, 0, sizeof *u);
    u->name = xstrdup_known(name);
    strmap_put(&f->user_index, u->name, f->n_users++);
    return u;
}

uint32_t fsm_user_classes_with(const fsm *f, const char *user, const Jazari__JobSpec *spec)
{
    const fsm_user *u = fsm_user_get(f, user);
    uint32_t n = u ? u->classes : 0;
    if (!u)
        return n + 1;
    buf key = BUF_INIT;
    char *flat = fsm__class_key(spec, &key);
    size_t v;
    const fsm_class *c = strmap_get(&f->classes, flat, &v) ? f->class_pool[v] : NULL;
    bool held = false;
    for (size_t i = 0; c && i < c->n_holders && !held; i++)
        held = c->holders[i].user == (size_t)(u - f->users);
    free(flat);
    buf_free(&key);
    return held ? n : n + 1;
}

/* A job enters (sign 1) or leaves (-1) the active part of the queue. */
static void fsm__count(fsm *f, const fsm_job *j, int sign)
{
    fsm_user *u = fsm__user(f, j->user ? j->user : "");
    fsm__class_hold(f, j->cls, (size_t)(u - f->users), sign);
    if (sign > 0) {
        f->n_active++;
        u->active++;
        u->spec_bytes += j->spec_len;
    } else {
        f->n_active--;
        u->active--;
        u->spec_bytes -= j->spec_len;
    }
}

static void fsm__node_clear(fsm_node *n)
{
    free(n->name);
    free(n->site);
    free(n->group);
    free(n->labels);
    free(n->address);
    free(n->state);
    free(n->reason);
    topo_free(n->topo);
    for (uint32_t i = 0; i < n->n_drains; i++) {
        free(n->drains[i].reason);
        free(n->drains[i].by);
        free(n->drains[i].source);
    }
    free(n->drains);
    memset(n, 0, sizeof *n);
}

/* --- a reader's memo ------------------------------------------------------------- */

static void fsm__memo_drop(fsm *f)
{
    if (f->memo_free)
        f->memo_free(f->memo);
    f->memo = NULL;
    f->memo_free = NULL;
}

void fsm_memo_set(fsm *f, void *data, void (*data_free)(void *data))
{
    fsm__memo_drop(f);
    f->memo = data;
    f->memo_free = data_free;
}

void *fsm_memo_get(const fsm *f, void (*data_free)(void *data))
{
    return f->memo_free == data_free ? f->memo : NULL;
}

void fsm_free(fsm *f)
{
    fsm__memo_drop(f);
    /* The jobs, then every class at once (a class put job by job would
     * rebuild the map per class: seconds for thousands). */
    for (uint64_t i = 0; i < f->jobs_cap; i++)
        if (f->jobs[i])
            fsm__job_release(f->jobs[i]);
    free(f->jobs);
    for (size_t i = 0; i < f->n_class_pool; i++)
        if (f->class_pool[i])
            fsm__class_free(f->class_pool[i]);
    for (size_t i = 0; i < f->n_nodes; i++)
        fsm__node_clear(&f->nodes[i]);
    free(f->nodes);
    strmap_free(&f->node_index);
    strmap_free(&f->classes);
    free(f->class_pool);
    for (size_t i = 0; i < f->n_usage; i++)
        free(f->usage[i].path);
    free(f->usage);
    for (size_t i = 0; i < f->n_resv; i++)
        fsm__resv_clear(&f->resv[i]);
    free(f->resv);
    tdb_free(&f->trust);
    adb_free(&f->audit);
    edb_free(&f->events);
    for (size_t i = 0; i < f->n_lacks; i++) {
        free(f->lacks[i].node);
        free(f->lacks[i].user);
    }
    free(f->lacks);
    for (size_t i = 0; i < f->n_users; i++)
        free(f->users[i].name);
    free(f->users);
    strmap_free(&f->user_index);
    facct_free(&f->acct);
    free(f->ended);
    free(f->out_jobs);
    free(f->out_runs);
    fsm_init(f);
}

/* --- fair-share usage ------------------------------------------------------------ */

uint64_t fsm_usage_at(const fsm *f, const fsm_usage *u, int64_t now_ms)
{
    if (now_ms <= u->as_of_ms || f->half_life_ms <= 0)
        return u->gpu_ms;
    return decay_halflife(u->gpu_ms, (uint64_t)(now_ms - u->as_of_ms), (uint64_t)f->half_life_ms);
}

uint64_t fsm_job_gpu_ms(const fsm_job *j, int64_t from_ms, int64_t to_ms)
{
    if (to_ms <= from_ms)
        return 0;
    uint64_t ms = (uint64_t)(to_ms - from_ms);
    if (j->gpus_per_node)
        return (uint64_t)j->nodes * j->gpus_per_node * ms;
    return (uint64_t)j->nodes * j->cpus_per_node * ms / FSM_CPUS_PER_GPU;
}

static void fsm__usage_add(fsm *f, const char *path, int64_t now, uint64_t amount, int64_t as_of)
{
    fsm_usage *u = NULL;
    for (size_t i = 0; i < f->n_usage && !u; i++)
        if (strcmp(f->usage[i].path, path) == 0)
            u = &f->usage[i];
    if (!u) {
        if (f->n_usage == f->usage_cap) {
            f->usage_cap = f->usage_cap ? f->usage_cap * 2 : 16;
            fsm_usage *a = realloc(f->usage, f->usage_cap * sizeof *a);
            if (!a)
                abort();
            f->usage = a;
        }
        u = &f->usage[f->n_usage++];
        u->path = xstrdup_known(path);
        u->gpu_ms = 0;
        u->as_of_ms = as_of;
    }
    u->gpu_ms = fsm_usage_at(f, u, now) + amount;
    u->as_of_ms = now > u->as_of_ms ? now : u->as_of_ms;
}

/* A run ends (or goes back to the queue): its account's user is charged
 * its GPU-seconds. */
static void fsm__charge(fsm *f, int64_t now, const fsm_job *j)
{
    if (j->state != JAZARI__JOB_STATE__JOB_RUNNING || !j->start_ms || now <= j->start_ms)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", *j->cls->account ? j->cls->account : "default",
             j->user ? j->user : "?");
    fsm__usage_add(f, path, now, fsm_job_gpu_ms(j, j->start_ms, now), now);
}

/* --- accounting (format 9) ------------------------------------------------------ */

/* An owned copy of a message built on the stack (its strings pointing
 * anywhere): what the state keeps, freed with its free_unpacked. */
static void *fsm__pb_own(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *tmp = xcalloc(n ? n : 1, 1);
    protobuf_c_message_pack(m, tmp);
    void *copy = protobuf_c_message_unpack(m->descriptor, NULL, n, tmp);
    free(tmp);
    if (!copy)
        abort();
    return copy;
}

/* The model of the GPUs a part holds: its node's first GPU's, "GPU" when
 * the topology does not name it; NULL for a part without GPUs. */
static const char *fsm__part_model(const fsm *f, const fsm_alloc *al)
{
    if (al->n_gpus == 0)
        return NULL;
    const fsm_node *n = al->node ? fsm_node_get(f, al->node) : NULL;
    if (!n || n->topo->n_gpus == 0)
        return "GPU";
    uint32_t g = al->gpus[0] < n->topo->n_gpus ? al->gpus[0] : 0;
    const char *m = n->topo->gpus[g].model;
    return m && *m ? m : "GPU";
}

static const char *fsm__account(const fsm_job *j)
{
    return *j->cls->account ? j->cls->account : "default";
}

const char *fsm_job_grant_holder(const fsm *f, const fsm_job *j)
{
    return facct_grant_holder(&f->acct, fsm__account(j));
}

uint64_t fsm_job_charge_rate(const fsm *f, const fsm_job *j)
{
    const facct *a = &f->acct;
    uint64_t cpu = facct_charge_milli(a, NULL), rate = 0;
    if (j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->n_allocs > 0) {
        for (uint32_t i = 0; i < j->n_allocs; i++) {
            const fsm_alloc *al = &j->allocs[i];
            if (al->n_gpus)
                rate += (uint64_t)al->n_gpus * facct_charge_milli(a, fsm__part_model(f, al));
            rate += (uint64_t)j->cpus_per_node * cpu;
        }
        return rate;
    }
    return (uint64_t)j->nodes * ((uint64_t)j->gpus_per_node * facct_worst_milli(a, j->cls->gpu_model) +
                                 (uint64_t)j->cpus_per_node * cpu);
}

static uint64_t fsm__limit_ms(const fsm_job *j)
{
    return (j->time_limit_s && j->time_limit_s <= FSM_TIME_MAX_S ? j->time_limit_s : FSM_TIME_MAX_S) * 1000;
}

/* rate (thousandths a ms) x ms, in charge units. */
static uint64_t fsm__charge_of(uint64_t rate, int64_t ms)
{
    if (ms <= 0)
        return 0;
    unsigned __int128 c = (unsigned __int128)rate * (uint64_t)ms / 1000;
    return c > UINT64_MAX ? UINT64_MAX : (uint64_t)c;
}

int64_t fsm_grant_left(const fsm *f, const char *holder, int64_t now_ms, uint64_t *running, uint64_t *held,
                       const facct_grant **grant)
{
    const facct_grant *g = facct_grant_at(&f->acct, holder, now_ms);
    uint64_t run = 0, hold = 0;
    for (uint64_t k = 0, seen = 0; g && seen < f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        seen++;
        const char *h = fsm_job_grant_holder(f, j);
        if (!h || strcmp(h, holder) != 0)
            continue;
        uint64_t rate = fsm_job_charge_rate(f, j);
        int64_t from = j->start_ms > g->from_ms ? j->start_ms : g->from_ms;
        int64_t end = j->start_ms + (int64_t)fsm__limit_ms(j);
        if (end > g->until_ms)
            end = g->until_ms;
        run += fsm__charge_of(rate, now_ms - from);
        hold += fsm__charge_of(rate, end - now_ms);
    }
    if (running)
        *running = run;
    if (held)
        *held = hold;
    if (grant)
        *grant = g;
    if (!g)
        return INT64_MAX;
    return g->gpu_ms - (int64_t)g->used_ms - (int64_t)run;
}

static void fsm__ms_text(int64_t ms, char *out, size_t n)
{
    snprintf(out, n, "%lld.%03lld GPU-hours", (long long)(ms / 3600000), (long long)(ms % 3600000 / 3600));
}

uint64_t fsm_ask_worst(const fsm *f, const fsm_ask *ask, int64_t now_ms, const facct_grant *g)
{
    uint64_t rate =
        (uint64_t)ask->nodes * ((uint64_t)ask->gpus_per_node * facct_worst_milli(&f->acct, ask->gpu_model) +
                                (uint64_t)ask->cpus_per_node * facct_charge_milli(&f->acct, NULL));
    int64_t limit = (int64_t)((ask->time_limit_s && ask->time_limit_s <= FSM_TIME_MAX_S ? ask->time_limit_s
                                                                                        : FSM_TIME_MAX_S) *
                              1000);
    int64_t span = g && g->until_ms - now_ms < limit ? g->until_ms - now_ms : limit;
    return fsm__charge_of(rate, span);
}

void fsm_job_ask(const fsm_job *j, fsm_ask *ask)
{
    ask->account = fsm__account(j);
    ask->nodes = j->nodes;
    ask->gpus_per_node = j->gpus_per_node;
    ask->cpus_per_node = j->cpus_per_node;
    ask->gpu_model = j->cls->gpu_model;
    ask->time_limit_s = j->time_limit_s;
}

int fsm_allocation_check(const fsm *f, const fsm_ask *ask, int64_t now_ms, char *why, size_t whylen)
{
    const char *holder = facct_grant_holder(&f->acct, ask->account);
    if (!holder)
        return 0;
    uint64_t held = 0;
    const facct_grant *g = NULL;
    int64_t left = fsm_grant_left(f, holder, now_ms, NULL, &held, &g);
    const facct_grant *next = facct_grant_next(&f->acct, holder, now_ms);
    if (!g && !next) {
        snprintf(why, whylen,
                 "account %s has no allocation in force or to come: ask an admin for a grant (jz grant)",
                 holder);
        return -1;
    }
    uint64_t worst = fsm_ask_worst(f, ask, now_ms, g);
    int64_t most = g ? g->gpu_ms : 0;
    if (next && next->gpu_ms > most)
        most = next->gpu_ms;
    if (worst > (uint64_t)(most > 0 ? most : 0)) {
        char need[64], has[64];
        fsm__ms_text((int64_t)worst, need, sizeof need);
        fsm__ms_text(most, has, sizeof has);
        snprintf(
            why, whylen,
            "its worst case (GPUs x time limit x rate) is %s, more than account %s's whole allocation of "
            "%s: ask for fewer GPUs or a shorter time limit",
            need, holder, has);
        return -1;
    }
    if (!g || left < 0 || worst + held > (uint64_t)left) {
        snprintf(why, whylen, "AllocationExhausted");
        return 1;
    }
    return 0;
}

/* A job's usage as plain numbers, to edit. */
typedef struct fsm__use {
    uint64_t cpu_ms, max_rss, energy_mj, gpu_ms, cpu_alloc_ms, gpu_util_ms, util_gpu_ms, charge_ms,
        cost_micro, gpu_cost_micro;
    uint32_t runs;
    int64_t first_start_ms;
} fsm__use;

static void fsm__use_get(const fsm_job *j, fsm__use *u)
{
    memset(u, 0, sizeof *u);
    const Jazari__JobUsage *m = j->usage;
    if (!m)
        return;
    *u = (fsm__use){m->cpu_ms,       m->max_rss_bytes,  m->energy_mj,   m->gpu_ms,
                    m->cpu_alloc_ms, m->gpu_util_ms,    m->util_gpu_ms, m->charge_ms,
                    m->cost_micro,   m->gpu_cost_micro, m->runs,        m->first_start_ms};
}

/* Replaces j's usage with u (and the model and nodes, when given). */
static void fsm__use_put(fsm_job *j, const fsm__use *u, const char *model, const char *nodes)
{
    Jazari__JobUsage m = JAZARI__JOB_USAGE__INIT;
    m.cpu_ms = u->cpu_ms;
    m.max_rss_bytes = u->max_rss;
    m.energy_mj = u->energy_mj;
    m.gpu_ms = u->gpu_ms;
    m.cpu_alloc_ms = u->cpu_alloc_ms;
    m.gpu_util_ms = u->gpu_util_ms;
    m.util_gpu_ms = u->util_gpu_ms;
    m.charge_ms = u->charge_ms;
    m.cost_micro = u->cost_micro;
    m.gpu_cost_micro = u->gpu_cost_micro;
    m.runs = u->runs;
    m.first_start_ms = u->first_start_ms;
    m.gpu_model = (char *)(model ? model : j->usage && j->usage->gpu_model ? j->usage->gpu_model : "");
    m.nodes = (char *)(nodes ? nodes : j->usage && j->usage->nodes ? j->usage->nodes : "");
    Jazari__JobUsage *own = fsm__pb_own(&m.base);
    if (j->usage)
        jazari__job_usage__free_unpacked(j->usage, NULL);
    j->usage = own;
}

#define FSM__USE_MAX 1000000000000000ull /* a measured figure above this is not believed */

/* a + b, or UINT64_MAX past it: a price at the policy's bound over long
 * runs goes beyond 64 bits, and a sum that wrapped would bill little. */
static uint64_t fsm__sum(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* What one part measured (EndCmd.usage), added to the job's usage. */
static void fsm__part_usage(fsm *f, int64_t now, fsm_job *j, const char *node, const Jazari__PartUsage *pu)
{
    if (!pu || f->format < 9 || !j->start_ms)
        return;
    /* A part that ended already: its agent sent the end again (its
     * acknowledgement was lost); what it used counts once. */
    for (uint32_t a = 0; a < j->n_allocs; a++)
        if (j->allocs[a].done && j->allocs[a].node && node && strcmp(j->allocs[a].node, node) == 0)
            return;
    fsm__use u;
    fsm__use_get(j, &u);
    u.cpu_ms += pu->cpu_ms < FSM__USE_MAX ? pu->cpu_ms : 0;
    if (pu->max_rss_bytes < FSM__USE_MAX && pu->max_rss_bytes > u.max_rss)
        u.max_rss = pu->max_rss_bytes;
    u.energy_mj += pu->energy_mj < FSM__USE_MAX ? pu->energy_mj : 0;
    uint64_t part_gpu_ms = 0;
    for (uint32_t a = 0; a < j->n_allocs; a++)
        if (j->allocs[a].node && node && strcmp(j->allocs[a].node, node) == 0 && now > j->start_ms)
            part_gpu_ms = (uint64_t)j->allocs[a].n_gpus * (uint64_t)(now - j->start_ms);
    if (pu->has_gpu_util && pu->gpu_util_pct <= 100 && part_gpu_ms) {
        u.gpu_util_ms += (part_gpu_ms * pu->gpu_util_pct + 50) / 100;
        u.util_gpu_ms += part_gpu_ms;
    }
    fsm__use_put(j, &u, NULL, NULL);
}

static void fsm__out_job(fsm *f, uint64_t id)
{
    if (f->n_out_jobs == f->out_jobs_cap) {
        f->out_jobs_cap = f->out_jobs_cap ? 2 * f->out_jobs_cap : 64;
        f->out_jobs = xrealloc_array(f->out_jobs, f->out_jobs_cap, sizeof *f->out_jobs);
    }
    f->out_jobs[f->n_out_jobs++] = id;
}

static void fsm__out_run(fsm *f, uint64_t id, uint32_t attempt)
{
    if (f->n_out_runs == f->out_runs_cap) {
        f->out_runs_cap = f->out_runs_cap ? 2 * f->out_runs_cap : 64;
        f->out_runs = xrealloc_array(f->out_runs, f->out_runs_cap, sizeof *f->out_runs);
    }
    f->out_runs[f->n_out_runs++] = (struct fsm_out_run){id, attempt};
}

const Jazari__RunCharge *fsm_job_run(const fsm_job *j, uint32_t attempt)
{
    for (uint32_t i = 0; i < j->n_runs; i++)
        if (j->runs[i]->attempt == attempt)
            return j->runs[i];
    return NULL;
}

/* A run ends as how ("ended", "cancelled", "preempted", "lost",
 * "requeued"): fair share is charged as before; from format 9 its
 * allocation charge and its price are fixed here, by the policy in force
 * now, and kept (the job's usage, its run charge for the history). */
static void fsm__run_end(fsm *f, int64_t now, fsm_job *j, const char *how)
{
    fsm__charge(f, now, j);
    if (f->format < 9 || j->state != JAZARI__JOB_STATE__JOB_RUNNING || !j->start_ms)
        return;
    const facct *a = &f->acct;
    int64_t ms = now > j->start_ms ? now - j->start_ms : 0;
    bool charged = !((strcmp(how, "preempted") == 0 && !facct_charges_preempted(a)) ||
                     (strcmp(how, "lost") == 0 && !facct_charges_lost(a)));
    /* A run inside a reservation: its GPUs are paid with the reservation. */
    bool in_resv = *j->cls->reservation != '\0';
    uint64_t gpu_ms = 0, cpu_ms = 0, gpu_cost = 0, charge = 0;
    const char *model = NULL;
    const char **names = xcalloc(j->n_allocs ? j->n_allocs : 1, sizeof(char *));
    for (uint32_t i = 0; i < j->n_allocs; i++) {
        const fsm_alloc *al = &j->allocs[i];
        names[i] = al->node ? al->node : "?";
        const char *m = fsm__part_model(f, al);
        uint64_t g = (uint64_t)al->n_gpus * (uint64_t)ms;
        gpu_ms += g;
        cpu_ms += (uint64_t)j->cpus_per_node * (uint64_t)ms;
        if (!m)
            continue;
        model = model ? model : m;
        charge += fsm__charge_of((uint64_t)al->n_gpus * facct_charge_milli(a, m), ms);
        if (!in_resv)
            gpu_cost = fsm__sum(gpu_cost, facct_cost_micro(g, facct_price_micro(a, m)));
    }
    charge += fsm__charge_of(facct_charge_milli(a, NULL), (int64_t)cpu_ms);
    uint64_t cost = fsm__sum(gpu_cost, facct_cost_micro(cpu_ms, facct_price_micro(a, NULL)));
    if (!charged)
        charge = cost = gpu_cost = 0;
    const char *holder = fsm_job_grant_holder(f, j);
    if (holder)
        facct_grant_charge(&f->acct, holder, j->start_ms, now, charge);

    buf hosts = BUF_INIT;
    hostlist_compress(names, j->n_allocs, false, &hosts);
    free(names);
    const fsm_node *first = j->n_allocs && j->allocs[0].node ? fsm_node_get(f, j->allocs[0].node) : NULL;
    Jazari__RunCharge rc = JAZARI__RUN_CHARGE__INIT;
    rc.id = j->id;
    rc.attempt = j->attempt;
    rc.user = j->user ? j->user : "";
    rc.account = (char *)fsm__account(j);
    rc.site = first && first->site ? first->site : "";
    rc.gpu_model = (char *)(model ? model : "");
    rc.start_ms = j->start_ms;
    rc.end_ms = now;
    rc.gpu_ms = gpu_ms;
    rc.cpu_alloc_ms = cpu_ms;
    rc.charge_ms = charge;
    rc.cost_micro = cost;
    rc.gpu_cost_micro = gpu_cost;
    rc.how = (char *)how;
    rc.reservation = (char *)j->cls->reservation;
    rc.grant_account = (char *)(holder ? holder : "");
    if (j->n_runs == FSM_RUNS_KEPT) {
        jazari__run_charge__free_unpacked(j->runs[0], NULL);
        memmove(j->runs, j->runs + 1, (FSM_RUNS_KEPT - 1) * sizeof(Jazari__RunCharge *));
        j->n_runs--;
    }
    j->runs = xrealloc_array(j->runs, j->n_runs + 1, sizeof(Jazari__RunCharge *));
    j->runs[j->n_runs++] = fsm__pb_own(&rc.base);

    fsm__use u;
    fsm__use_get(j, &u);
    u.gpu_ms += gpu_ms;
    u.cpu_alloc_ms += cpu_ms;
    u.charge_ms += charge;
    u.cost_micro = fsm__sum(u.cost_micro, cost);
    u.gpu_cost_micro = fsm__sum(u.gpu_cost_micro, gpu_cost);
    u.runs++;
    if (!u.first_start_ms)
        u.first_start_ms = j->start_ms;
    buf_putc(&hosts, '\0');
    fsm__use_put(j, &u, model ? model : "", (const char *)hosts.data);
    buf_free(&hosts);
    fsm__out_run(f, j->id, j->attempt);
}

/* A job reached an end state: the history records it, and format 9
 * forgets it once the policy's jobs_keep has passed. */
static void fsm__ended(fsm *f, const fsm_job *j)
{
    fsm__out_job(f, j->id);
    if (f->format < 9)
        return;
    if (f->ended_head > 0 && f->ended_head >= f->n_ended / 2) {
        memmove(f->ended, f->ended + f->ended_head, (f->n_ended - f->ended_head) * sizeof *f->ended);
        f->n_ended -= f->ended_head;
        f->ended_head = 0;
    }
    if (f->n_ended == f->ended_cap) {
        f->ended_cap = f->ended_cap ? 2 * f->ended_cap : 256;
        f->ended = xrealloc_array(f->ended, f->ended_cap, sizeof *f->ended);
    }
    f->ended[f->n_ended++] = (struct fsm_ended){j->id, j->end_ms};
}

/* Forgets the jobs that ended jobs_keep ago (a requeued one came back:
 * its old place is skipped). */
static void fsm__purge(fsm *f, int64_t now)
{
    int64_t keep = facct_jobs_keep_ms(&f->acct);
    while (f->ended_head < f->n_ended) {
        const struct fsm_ended *e = &f->ended[f->ended_head];
        fsm_job *j = (fsm_job *)fsm_job_get(f, e->id);
        if (j && !fsm_job_active(j) && j->end_ms == e->end_ms) {
            if (e->end_ms + keep > now)
                break;
            fsm__job_free(f, j);
            f->jobs[e->id - 1 - f->jobs_base] = NULL;
            f->n_jobs--;
        }
        f->ended_head++;
    }
    /* The index drops its leading forgotten ids once they are half of it:
     * 8 bytes per id ever issued would grow without bound. */
    uint64_t k = f->jobs_lead; /* (an id is never issued again: empty stays empty) */
    while (k < f->jobs_cap && !f->jobs[k] && f->jobs_base + k + 1 < f->next_job_id)
        k++;
    f->jobs_lead = k;
    if (k >= 4096 && k >= f->jobs_cap / 2) {
        memmove(f->jobs, f->jobs + k, (f->jobs_cap - k) * sizeof(fsm_job *));
        memset(f->jobs + (f->jobs_cap - k), 0, k * sizeof(fsm_job *));
        f->jobs_base += k;
        f->jobs_lead = 0;
    }
}

static int fsm__ended_cmp(const void *x, const void *y)
{
    const struct fsm_ended *a = x, *b = y;
    if (a->end_ms != b->end_ms)
        return a->end_ms < b->end_ms ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* A reservation ends (its window is over, or it is deleted): format 9
 * charges its owner for the window booked, up to now, used or not. */
static void fsm__resv_charge(fsm *f, int64_t now, const fsm_resv *r)
{
    int64_t end = r->end_ms < now ? r->end_ms : now;
    if (f->format < 9 || end <= r->start_ms)
        return;
    const facct *a = &f->acct;
    uint64_t gpu_ms = 0, cost = 0;
    uint32_t gpus = 0;
    const char *model = NULL;
    for (size_t i = 0; i < r->n_parts; i++) {
        const fsm_node *n = fsm_node_get(f, r->parts[i].node);
        const char *m = n && n->topo->n_gpus && n->topo->gpus[0].model ? n->topo->gpus[0].model : "GPU";
        model = model ? model : m;
        uint64_t g = (uint64_t)r->parts[i].gpus * (uint64_t)(end - r->start_ms);
        gpus += r->parts[i].gpus;
        gpu_ms += g;
        cost = fsm__sum(cost, facct_cost_micro(g, facct_price_micro(a, m)));
    }
    buf users = BUF_INIT;
    for (size_t i = 0; i < r->n_users; i++)
        buf_printf(&users, "%s%s", i ? "," : "", r->users[i]);
    buf_putc(&users, '\0');
    Jazari__ResvCharge c = JAZARI__RESV_CHARGE__INIT;
    c.name = r->name;
    c.account = r->account ? r->account : "";
    c.start_ms = r->start_ms;
    c.end_ms = end;
    c.gpus = gpus;
    c.gpu_model = (char *)(model ? model : "");
    c.gpu_ms = gpu_ms;
    c.cost_micro = cost;
    c.users = (char *)users.data;
    facct_resv_add(&f->acct, fsm__pb_own(&c.base));
    buf_free(&users);
    f->out_resv++;
}

/* A snapshot's usage record in GPU-milliseconds: format 4 on holds them as
 * integers; format 3 held GPU-seconds as a double, converted once here. */
static uint64_t fsm__usage_ms(const Jazari__Usage *u)
{
    if (u->gpu_ms || !(u->gpu_seconds > 0) || u->gpu_seconds > 1e15)
        return u->gpu_ms;
    return (uint64_t)(u->gpu_seconds * 1000.0);
}

/* --- reservations ------------------------------------------------------------- */

const fsm_resv *fsm_resv_get(const fsm *f, const char *name)
{
    for (size_t i = 0; name && i < f->n_resv; i++)
        if (strcmp(f->resv[i].name, name) == 0)
            return &f->resv[i];
    return NULL;
}

bool fsm_resv_member(const fsm_resv *r, const char *account, const char *user)
{
    for (size_t i = 0; user && i < r->n_users; i++)
        if (strcmp(r->users[i], user) == 0)
            return true;
    if (!r->account || !*r->account || !account)
        return false;
    /* "startup" owns "startup/train"; "startup/train" only itself. */
    size_t n = strlen(r->account);
    return strncmp(account, r->account, n) == 0 && (account[n] == '\0' || account[n] == '/');
}

static void fsm__set_reason(fsm_job *j, const char *reason);

/* A pending job that can never run ends, CANCELLED with the reason. */
static void fsm__end_pending(fsm *f, int64_t now, fsm_job *j, const char *reason)
{
    if (!j->held)
        f->n_ready--;
    fsm__count(f, j, -1);
    j->held = false;
    j->state = JAZARI__JOB_STATE__JOB_CANCELLED;
    j->end_ms = now;
    fsm__set_reason(j, reason);
    fsm__ended(f, j);
}

/* A job that is (again) pending in a reservation that is gone can never
 * run: it ends (a requeue after the reservation ended, a submission the
 * leader checked against a view before an unreserve). */
static void fsm__resv_check(fsm *f, int64_t now, fsm_job *j)
{
    if (j->state != JAZARI__JOB_STATE__JOB_PENDING || !*j->cls->reservation || f->format < 3 ||
        fsm_resv_get(f, j->cls->reservation))
        return;
    char reason[200];
    snprintf(reason, sizeof reason, "reservation %s ended", j->cls->reservation);
    fsm__end_pending(f, now, j, reason);
}

/* A reservation goes: its jobs still waiting can never run, and end
 * (the running ones go on). */
static void fsm__resv_drop_jobs(fsm *f, int64_t now, const char *name, const char *why)
{
    char reason[200];
    snprintf(reason, sizeof reason, "reservation %s %s", name, why);
    for (uint64_t k = 0; f->n_active && k < f->jobs_cap; k++) {
        fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_PENDING || strcmp(j->cls->reservation, name) != 0)
            continue;
        fsm__end_pending(f, now, j, reason);
    }
}

/* Reservations past their end go (every controller at the same entry). */
static void fsm__resv_expire(fsm *f, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n_resv; i++) {
        if (f->resv[i].end_ms <= now) {
            fsm__resv_charge(f, now, &f->resv[i]);
            fsm__resv_drop_jobs(f, now, f->resv[i].name, "ended");
            fsm__resv_clear(&f->resv[i]);
        } else {
            f->resv[k++] = f->resv[i];
        }
    }
    f->n_resv = k;
}

/* Whether the GPUs a reservation asks for are free of the others kept in
 * an overlapping window (checked again here: two made at once by the
 * leader's view must not both get the same GPUs). */
static bool fsm__resv_fits(const fsm *f, const Jazari__Reservation *m)
{
    for (size_t p = 0; p < m->n_parts; p++) {
        const fsm_node *n = m->parts[p]->node ? fsm_node_get(f, m->parts[p]->node) : NULL;
        if (!n)
            return false;
        uint64_t kept = m->parts[p]->gpus;
        for (size_t r = 0; r < f->n_resv; r++) {
            const fsm_resv *v = &f->resv[r];
            if (v->start_ms >= m->end_ms || v->end_ms <= m->start_ms)
                continue;
            for (size_t x = 0; x < v->n_parts; x++)
                if (strcmp(v->parts[x].node, n->name) == 0)
                    kept += v->parts[x].gpus;
        }
        if (kept > n->topo->n_gpus)
            return false;
    }
    return true;
}

static void fsm__resv_add(fsm *f, const Jazari__Reservation *m)
{
    if (!m || !m->name || !*m->name || fsm_resv_get(f, m->name) || f->n_resv >= FSM_RESV_MAX ||
        m->end_ms <= m->start_ms || m->n_parts == 0 || m->n_parts > FSM_NODES_MAX)
        return;
    fsm_resv *a = realloc(f->resv, (f->n_resv + 1) * sizeof *a);
    if (!a)
        abort();
    f->resv = a;
    fsm_resv *r = &f->resv[f->n_resv++];
    memset(r, 0, sizeof *r);
    r->name = xstrdup_known(m->name);
    r->account = xstrdup_known(m->account);
    r->users = xcalloc(m->n_users ? m->n_users : 1, sizeof(char *));
    for (size_t i = 0; i < m->n_users; i++)
        r->users[r->n_users++] = xstrdup_known(m->users[i]);
    r->start_ms = m->start_ms;
    r->end_ms = m->end_ms;
    r->parts = xcalloc(m->n_parts, sizeof *r->parts);
    for (size_t i = 0; i < m->n_parts; i++) {
        r->parts[i].node = xstrdup_known(m->parts[i]->node);
        r->parts[i].gpus = m->parts[i]->gpus;
    }
    r->n_parts = m->n_parts;
    r->msg_len = jazari__reservation__get_packed_size(m);
    r->msg = xcalloc(r->msg_len ? r->msg_len : 1, 1);
    jazari__reservation__pack(m, r->msg);
}

static void fsm__apply_reserve(fsm *f, const Jazari__ReserveCmd *c, fsm_result *res)
{
    size_t before = f->n_resv;
    if (c->reservation && fsm__resv_fits(f, c->reservation))
        fsm__resv_add(f, c->reservation);
    res->nodes_changed += f->n_resv != before;
}

static void fsm__apply_unreserve(fsm *f, int64_t now, const Jazari__UnreserveCmd *c, fsm_result *res)
{
    for (size_t i = 0; c->name && i < f->n_resv; i++) {
        if (strcmp(f->resv[i].name, c->name) == 0) {
            fsm__resv_charge(f, now, &f->resv[i]);
            fsm__resv_drop_jobs(f, now, f->resv[i].name, "was deleted");
            fsm__resv_clear(&f->resv[i]);
            f->resv[i] = f->resv[--f->n_resv];
            res->nodes_changed++;
            return;
        }
    }
}

bool fsm_job_active(const fsm_job *j)
{
    return j->state == JAZARI__JOB_STATE__JOB_PENDING || j->state == JAZARI__JOB_STATE__JOB_RUNNING;
}

const char *fsm_state_name(Jazari__JobState s)
{
    static const char *const names[] = {"PENDING",   "RUNNING", "COMPLETED", "FAILED",
                                        "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "UNKNOWN";
}

const fsm_job *fsm_job_get(const fsm *f, uint64_t id)
{
    if (id <= f->jobs_base || id - f->jobs_base > f->jobs_cap)
        return NULL;
    return f->jobs[id - 1 - f->jobs_base];
}

uint32_t fsm_node_gpus_used(const fsm *f, const char *node)
{
    uint32_t used = 0;
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++)
            if (j->allocs[a].node && strcmp(j->allocs[a].node, node) == 0)
                used += j->allocs[a].n_gpus;
    }
    return used;
}

void fsm_gpus_used(const fsm *f, uint32_t *used)
{
    memset(used, 0, f->n_nodes * sizeof *used);
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            size_t i;
            if (j->allocs[a].node && strmap_get(&f->node_index, j->allocs[a].node, &i) && i < f->n_nodes)
                used[i] += j->allocs[a].n_gpus;
        }
    }
}

const fsm_node *fsm_node_get(const fsm *f, const char *name)
{
    size_t i;
    return strmap_get(&f->node_index, name, &i) && i < f->n_nodes ? &f->nodes[i] : NULL;
}

bool fsm_node_busy(const fsm *f, const char *node, int32_t gpu)
{
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        const fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            const fsm_alloc *al = &j->allocs[a];
            if (al->done || !al->node || strcmp(al->node, node) != 0)
                continue;
            if (gpu < 0)
                return true;
            for (uint32_t g = 0; g < al->n_gpus; g++)
                if (al->gpus[g] == (uint32_t)gpu)
                    return true;
        }
    }
    return false;
}

const fsm_drain *fsm_drain_get(const fsm_node *n, int32_t gpu)
{
    for (uint32_t i = 0; i < n->n_drains; i++)
        if (n->drains[i].gpu == gpu)
            return &n->drains[i];
    return NULL;
}

const char *fsm_drain_state(const fsm *f, const fsm_node *n, const fsm_drain *d)
{
    return fsm_node_busy(f, n->name, d->gpu) ? "draining" : "drained";
}

bool fsm_node_usable(const fsm_node *n)
{
    return strcmp(n->state, "up") == 0 && !fsm_drain_get(n, -1);
}

const char *fsm_node_state(const fsm *f, const fsm_node *n)
{
    if (strcmp(n->state, "up") != 0)
        return n->state;
    const fsm_drain *d = fsm_drain_get(n, -1);
    return d ? fsm_drain_state(f, n, d) : "up";
}

/* --- validation ---------------------------------------------------------- */

/* At most max bytes of UTF-8 without control characters (C1 either:
 * what others' terminals would act on). */
bool fsm_printable(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    uint32_t cp;
    if (len > max)
        return false;
    for (size_t i = 0, n; i < len; i += n)
        if ((n = utf8_seq(p + i, len - i, &cp)) == 0 || utf8_is_control(cp, false))
            return false;
    return true;
}

bool fsm_node_has_model(const fsm_node *n, const char *model)
{
    if (!model || !*model)
        return true;
    size_t len = strlen(model);
    for (size_t g = 0; g < n->topo->n_gpus; g++) {
        const char *m = n->topo->gpus[g].model;
        for (; m && *m; m++)
            if (strncasecmp(m, model, len) == 0)
                return true;
    }
    return false;
}

/* Remembers that node has no account for user (again: its time moves). */
static void fsm__lack_add(fsm *f, int64_t now, const char *node, const char *user)
{
    size_t i = 0;
    while (i < f->n_lacks && (strcmp(f->lacks[i].node, node) != 0 || strcmp(f->lacks[i].user, user) != 0))
        i++;
    fsm_lack k = {NULL, NULL, now};
    if (i < f->n_lacks) {
        k = f->lacks[i];
    } else if (f->n_lacks == FSM_LACKS_MAX) {
        free(f->lacks[0].node);
        free(f->lacks[0].user);
        i = 0;
    } else {
        fsm_lack *p = realloc(f->lacks, (f->n_lacks + 1) * sizeof *p);
        if (!p)
            abort();
        f->lacks = p;
        f->n_lacks++;
    }
    if (!k.node) {
        k.node = xstrdup(node);
        k.user = xstrdup(user);
    }
    k.at_ms = now;
    /* Oldest first: the entry moves to the end. */
    memmove(&f->lacks[i], &f->lacks[i + 1], (f->n_lacks - i - 1) * sizeof *f->lacks);
    f->lacks[f->n_lacks - 1] = k;
}

bool fsm_node_lacks(const fsm *f, const char *node, const char *user, int64_t now_ms)
{
    for (size_t i = f->n_lacks; i-- > 0 && now_ms - f->lacks[i].at_ms < FSM_LACK_MS;)
        if (strcmp(f->lacks[i].user, user) == 0 && strcmp(f->lacks[i].node, node) == 0)
            return true;
    return false;
}

bool fsm_node_has_labels(const fsm_node *n, const char *constraint)
{
    for (const char *p = constraint; p && *p;) {
        size_t len = strcspn(p, ",");
        bool found = false;
        for (const char *q = n->labels; q && *q && !found;) {
            size_t ql = strcspn(q, ",");
            found = ql == len && strncmp(p, q, len) == 0;
            q += ql + (q[ql] == ',');
        }
        if (len && !found)
            return false;
        p += len + (p[len] == ',');
    }
    return true;
}

bool fsm_node_gpu_mem_ok(const fsm_node *n, uint64_t min_bytes)
{
    if (!min_bytes)
        return true;
    for (size_t g = 0; g < n->topo->n_gpus; g++)
        if (n->topo->gpus[g].memory_bytes < min_bytes)
            return false;
    return n->topo->n_gpus > 0;
}

int fsm_validate_spec(const fsm *f, const Jazari__JobSpec *s, char *err, size_t errlen)
{
    return fsm_validate_spec_for(f, s, NULL, NULL, err, errlen);
}

int fsm_validate_spec_for(const fsm *f, const Jazari__JobSpec *s, fsm_job_sees sees, void *arg, char *err,
                          size_t errlen)
{
    uint32_t nodes = s->nodes ? s->nodes : 1;
    if (s->name && !fsm_printable(s->name, FSM_NAME_MAX)) {
        snprintf(err, errlen, "job name: at most %d bytes of printable UTF-8 (no control characters)",
                 FSM_NAME_MAX);
        return -1;
    }
    if (nodes > FSM_NODES_MAX) {
        snprintf(err, errlen, "--nodes %u: at most %d", nodes, FSM_NODES_MAX);
        return -1;
    }
    if (s->tasks_per_node > FSM_TASKS_MAX || s->cpus_per_task > 4096) {
        snprintf(err, errlen, "--tasks-per-node %u / --cpus-per-task %u: at most %d and 4096",
                 s->tasks_per_node, s->cpus_per_task, FSM_TASKS_MAX);
        return -1;
    }
    if (s->warn_signal > 64 || (s->warn_signal && s->warn_secs > FSM_TIME_MAX_S)) {
        snprintf(err, errlen, "--signal %u@%u: a signal from 1 to 64, at most 365 days ahead", s->warn_signal,
                 s->warn_secs);
        return -1;
    }
    if (s->array && strlen(s->array) > 256) {
        snprintf(err, errlen, "--array: at most 256 characters");
        return -1;
    }
    const uint64_t *dep_ids[4] = {s->after_ok, s->after_any, s->after_notok, s->after};
    const size_t n_deps[4] = {s->n_after_ok, s->n_after_any, s->n_after_notok, s->n_after};
    static const char *const dep_kinds[4] = {"--after-ok", "--after-any", "--after-notok", "--after"};
    if (n_deps[0] + n_deps[1] + n_deps[2] + n_deps[3] > FSM_DEPS_MAX) {
        snprintf(err, errlen, "%zu dependencies: at most %d", n_deps[0] + n_deps[1] + n_deps[2] + n_deps[3],
                 FSM_DEPS_MAX);
        return -1;
    }
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < n_deps[k]; i++) {
            uint64_t id = dep_ids[k][i];
            const fsm_job *dep = sees ? fsm_job_get(f, id) : NULL;
            if (id == 0 || id >= f->next_job_id || (dep && !sees(arg, dep))) {
                snprintf(err, errlen, "%s %llu: no such job", dep_kinds[k], (unsigned long long)id);
                return -1;
            }
        }
    }
    if (s->nodes_max && s->nodes_max < nodes) {
        snprintf(err, errlen, "--nodes %u-%u: the most is below the least", nodes, s->nodes_max);
        return -1;
    }
    if (s->time_limit_s > FSM_TIME_MAX_S) {
        snprintf(err, errlen, "--time %llu s: at most 365 days", (unsigned long long)s->time_limit_s);
        return -1;
    }
    if (s->alloc && (s->n_argv || (s->script && *s->script) || s->batch || (s->array && *s->array))) {
        snprintf(err, errlen,
                 "an allocation (jz alloc) runs no command, script or array: its client runs "
                 "steps in it");
        return -1;
    }
    if (!s->alloc && s->n_argv == 0 && (!s->script || !*s->script)) {
        snprintf(err, errlen, "no command: give one after --, or a script");
        return -1;
    }
    if (s->n_argv > FSM_ARGV_MAX) {
        snprintf(err, errlen, "command has %zu arguments: at most %d", s->n_argv, FSM_ARGV_MAX);
        return -1;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < s->n_argv; i++) {
        bytes += strlen(s->argv[i]) + 1;
        if (!utf8_valid(s->argv[i], strlen(s->argv[i]))) {
            snprintf(err, errlen, "the command's argument %zu is not UTF-8 text", i + 1);
            return -1;
        }
    }
    if (bytes > FSM_CMD_BYTES_MAX) {
        snprintf(err, errlen, "command is %zu bytes long: at most %d", bytes, FSM_CMD_BYTES_MAX);
        return -1;
    }
    if (s->script && strlen(s->script) > FSM_SCRIPT_MAX) {
        snprintf(err, errlen, "script is over %u bytes", FSM_SCRIPT_MAX);
        return -1;
    }
    if (s->n_env > FSM_ENV_MAX) {
        snprintf(err, errlen, "%zu --env settings: at most %d", s->n_env, FSM_ENV_MAX);
        return -1;
    }
    for (size_t i = 0; i < s->n_env; i++) {
        const char *eq = strchr(s->env[i], '=');
        if (strlen(s->env[i]) > FSM_CMD_BYTES_MAX) {
            snprintf(err, errlen, "--env '%.40s...': one setting is at most %d bytes", s->env[i],
                     FSM_CMD_BYTES_MAX);
            return -1;
        }
        if (!eq || eq == s->env[i]) {
            snprintf(err, errlen, "--env '%.60s': expected KEY=VALUE", s->env[i]);
            return -1;
        }
        if (!utf8_valid(s->env[i], strlen(s->env[i]))) {
            snprintf(err, errlen, "--env setting %zu is not UTF-8 text", i + 1);
            return -1;
        }
    }
    if (s->constraint && !fsm_printable(s->constraint, 1024)) {
        snprintf(err, errlen, "--constraint: at most 1024 printable characters");
        return -1;
    }
    const char *names[] = {s->account, s->qos, s->reservation, s->site, s->gpu_model, s->data};
    static const char *const flags[] = {"account", "qos", "reservation", "site", "gpu-model", "data"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (names[i] && !fsm_printable(names[i], FSM_NAME_MAX)) {
            snprintf(err, errlen, "--%s: at most %d printable characters of UTF-8", flags[i], FSM_NAME_MAX);
            return -1;
        }
    }
    const char *paths[] = {s->output, s->error, s->workdir};
    for (size_t i = 0; i < 3; i++) {
        if (paths[i] && !fsm_printable(paths[i], FSM_PATH_MAX)) {
            snprintf(err, errlen,
                     "path %zu (--output, --error, --workdir): at most %d bytes of printable UTF-8", i + 1,
                     FSM_PATH_MAX);
            return -1;
        }
    }
    /* Against the nodes the network has. */
    uint32_t fit = 0, most_gpus = 0, most_cpus = 0;
    uint32_t cpus = (s->tasks_per_node ? s->tasks_per_node : 1) * (s->cpus_per_task ? s->cpus_per_task : 1);
    bool model_seen = false, labels_seen = false;
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *n = &f->nodes[i];
        if (s->site && *s->site && (!n->site || strcmp(n->site, s->site) != 0))
            continue;
        if (!fsm_node_has_model(n, s->gpu_model) || !fsm_node_gpu_mem_ok(n, s->min_gpu_mem))
            continue;
        model_seen = true;
        if (!fsm_node_has_labels(n, s->constraint))
            continue;
        labels_seen = true;
        uint32_t g = (uint32_t)n->topo->n_gpus, c = n->topo->pus;
        if (g > most_gpus)
            most_gpus = g;
        if (c > most_cpus)
            most_cpus = c;
        if (g >= s->gpus_per_node && (c == 0 || c >= cpus))
            fit++;
    }
    if (f->n_nodes > 0 && model_seen && s->constraint && *s->constraint && !labels_seen) {
        snprintf(err, errlen, "--constraint %.100s: no node%s%s has all these labels (jz nodes lists them)",
                 s->constraint, s->site && *s->site ? " at site " : "", s->site && *s->site ? s->site : "");
        return -1;
    }
    if (f->n_nodes > 0 && s->min_gpu_mem && !model_seen) {
        snprintf(err, errlen, "--gpu-mem %llu MiB%s%s: no node%s%s has GPUs with that much memory (jz nodes)",
                 (unsigned long long)(s->min_gpu_mem >> 20),
                 s->gpu_model && *s->gpu_model ? " of model " : "", s->gpu_model ? s->gpu_model : "",
                 s->site && *s->site ? " at site " : "", s->site && *s->site ? s->site : "");
        return -1;
    }
    if (f->n_nodes > 0 && s->gpu_model && *s->gpu_model && !model_seen) {
        snprintf(err, errlen, "--gpu-model %.60s: no node%s%s has such GPUs (jz nodes lists them)",
                 s->gpu_model, s->site && *s->site ? " at site " : "", s->site && *s->site ? s->site : "");
        return -1;
    }
    if (f->n_nodes > 0 && most_cpus > 0 && cpus > most_cpus) {
        snprintf(err, errlen,
                 "%u CPUs per node (--tasks-per-node x --cpus-per-task): no node has more than %u", cpus,
                 most_cpus);
        return -1;
    }
    if (f->n_nodes > 0 && s->gpus_per_node > most_gpus) {
        snprintf(err, errlen, "--gpus-per-node %u: no node%s%s has more than %u GPUs", s->gpus_per_node,
                 s->site && *s->site ? " at site " : "", s->site && *s->site ? s->site : "", most_gpus);
        return -1;
    }
    if (f->n_nodes > 0 && nodes > fit) {
        snprintf(err, errlen, "--nodes %u: only %u node%s could ever run it", nodes, fit,
                 fit == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

int fsm_array_parse(const char *s, uint32_t *idx, size_t max, size_t *n, uint32_t *throttle, char *err,
                    size_t errlen)
{
    _Static_assert(FSM_ARRAY_MAX == JOB_ARRAY_MAX && FSM_ARRAY_INDEX_MAX == JOB_ARRAY_INDEX_MAX,
                   "the leader and jz submit agree on arrays");
    return jobspec_array_parse(s, idx, max, n, throttle, err, errlen);
}

/* How the jobs a dependency names stand: id, or every task of the array
 * whose first task id is. A purged job ended long ago (how is not known
 * any more): it counts as ended, neither way. */
typedef struct fsm__dep_state {
    uint32_t pending, running, completed, failed;
} fsm__dep_state;

static void fsm__dep_count(const fsm_job *d, fsm__dep_state *st)
{
    if (d->state == JAZARI__JOB_STATE__JOB_PENDING)
        st->pending++;
    else if (d->state == JAZARI__JOB_STATE__JOB_RUNNING)
        st->running++;
    else if (d->state == JAZARI__JOB_STATE__JOB_COMPLETED)
        st->completed++;
    else
        st->failed++;
}

static fsm__dep_state fsm__dep(const fsm *f, uint64_t id)
{
    fsm__dep_state st = {0, 0, 0, 0};
    const fsm_job *d = fsm_job_get(f, id);
    if (!d)
        return st;
    fsm__dep_count(d, &st);
    if (d->array_job_id != id)
        return st;
    /* An array's tasks have consecutive ids from its first. */
    for (uint64_t t = id + 1; t < id + FSM_ARRAY_MAX && t < f->next_job_id; t++) {
        const fsm_job *x = fsm_job_get(f, t);
        if (x && x->array_job_id != id)
            break;
        if (x)
            fsm__dep_count(x, &st);
    }
    return st;
}

int fsm_deps_ready(const fsm *f, const Jazari__JobSpec *spec)
{
    if (!spec)
        return 1;
    int ready = 1;
    for (size_t i = 0; i < spec->n_after_ok; i++) {
        fsm__dep_state d = fsm__dep(f, spec->after_ok[i]);
        if (d.failed)
            return -1;
        if (d.pending || d.running)
            ready = 0;
    }
    for (size_t i = 0; i < spec->n_after_any; i++) {
        fsm__dep_state d = fsm__dep(f, spec->after_any[i]);
        if (d.pending || d.running)
            ready = 0;
    }
    /* afternotok: once all have ended, at least one not COMPLETED (Slurm:
     * an array all of whose tasks completed never satisfies it). */
    for (size_t i = 0; i < spec->n_after_notok; i++) {
        fsm__dep_state d = fsm__dep(f, spec->after_notok[i]);
        if (d.pending || d.running)
            ready = 0;
        else if (d.completed && !d.failed)
            return -1;
    }
    for (size_t i = 0; i < spec->n_after; i++) /* after: each started (or ended) */
        if (fsm__dep(f, spec->after[i]).pending)
            ready = 0;
    return ready;
}

int fsm_job_deps_ready(const fsm *f, const fsm_job *j, const Jazari__JobSpec *spec)
{
    int ready = fsm_deps_ready(f, spec);
    if (ready <= 0 || !spec || !spec->singleton)
        return ready;
    const char *name = spec->name ? spec->name : "";
    for (uint64_t k = 0; k < f->jobs_cap; k++) {
        const fsm_job *o = f->jobs[k];
        if (!o || o == j || !fsm_job_active(o) || !o->user || !j->user || strcmp(o->user, j->user) != 0)
            continue;
        if (o->state == JAZARI__JOB_STATE__JOB_PENDING && o->id > j->id)
            continue;
        Jazari__JobSpec *os = jazari__job_spec__unpack(NULL, o->spec_len, o->spec);
        bool same = os && strcmp(os->name ? os->name : "", name) == 0;
        jazari__job_spec__free_unpacked(os, NULL);
        if (same)
            return 0;
    }
    return 1;
}

/* --- applying entries ------------------------------------------------------ */

/* Room in the index for job id. */
static void fsm__grow_jobs(fsm *f, uint64_t id)
{
    uint64_t need = id - f->jobs_base;
    if (need <= f->jobs_cap)
        return;
    uint64_t cap = f->jobs_cap ? f->jobs_cap : 1024;
    while (cap < need)
        cap *= 2;
    fsm_job **p = realloc(f->jobs, cap * sizeof(fsm_job *));
    if (!p)
        abort();
    memset(p + f->jobs_cap, 0, (cap - f->jobs_cap) * sizeof(fsm_job *));
    f->jobs = p;
    f->jobs_cap = cap;
}

static void fsm__set_reason(fsm_job *j, const char *reason)
{
    free(j->reason);
    j->reason = xstrdup_known(reason);
}

static void fsm__allocs_set(fsm_job *j, Jazari__JobAlloc *const *allocs, size_t n)
{
    fsm__allocs_clear(j);
    j->n_allocs = (uint32_t)n;
    j->allocs = n ? xcalloc(n, sizeof *j->allocs) : NULL;
    for (size_t i = 0; i < n; i++) {
        const Jazari__JobAlloc *a = allocs[i];
        j->allocs[i].node = xstrdup_known(a->node);
        j->allocs[i].cpus = xstrdup_known(a->cpus);
        j->allocs[i].address = xstrdup_known(a->address);
        j->allocs[i].done = a->done;
        j->allocs[i].n_gpus = (uint32_t)a->n_gpus;
        if (a->n_gpus) {
            j->allocs[i].gpus = xcalloc(a->n_gpus, sizeof(uint32_t));
            memcpy(j->allocs[i].gpus, a->gpus, a->n_gpus * sizeof(uint32_t));
        }
    }
}

/* Takes a job message (from an entry or a snapshot) into the table. */
static fsm_job *fsm__job_from_pb(fsm *f, const Jazari__Job *m)
{
    fsm_job *j = xcalloc(1, sizeof *j);
    j->cls = fsm__class_get(f, m->spec);
    j->has_deps =
        m->spec &&
        (m->spec->n_after_ok + m->spec->n_after_any + m->spec->n_after_notok + m->spec->n_after > 0 ||
         m->spec->singleton);
    j->partition = m->partition && *m->partition ? xstrdup(m->partition) : NULL;
    j->id = m->id;
    j->submit_ms = m->submit_time_ms;
    j->start_ms = m->start_time_ms;
    j->end_ms = m->end_time_ms;
    j->uid = m->uid;
    j->gid = m->gid;
    j->exit_code = m->exit_code;
    j->state = m->state;
    /* Pending, or a running job requeued held (held once it is pending). */
    j->held = m->held && (m->state == JAZARI__JOB_STATE__JOB_PENDING ||
                          (m->state == JAZARI__JOB_STATE__JOB_RUNNING && m->preempt_time_ms));
    j->attempt = m->attempt;
    j->master_port = m->master_port;
    j->array_job_id = m->array_job_id;
    j->preempt_ms = m->state == JAZARI__JOB_STATE__JOB_RUNNING ? m->preempt_time_ms : 0;
    j->preempt_grace_s = m->preempt_grace_s;
    j->preemptions = m->preemptions;
    j->user = xstrdup_known(m->user);
    j->reason = xstrdup_known(m->reason);
    if (m->spec) {
        j->nodes = m->spec->nodes ? m->spec->nodes : 1;
        j->gpus_per_node = m->spec->gpus_per_node;
        j->time_limit_s = m->spec->time_limit_s;
        j->no_requeue = m->spec->no_requeue;
        j->batch = m->spec->batch || m->spec->alloc; /* an allocation ends as a batch job does */
        j->cpus_per_node = (m->spec->tasks_per_node ? m->spec->tasks_per_node : 1) *
                           (m->spec->cpus_per_task ? m->spec->cpus_per_task : 1);
        size_t n = jazari__job_spec__get_packed_size(m->spec);
        j->spec = xcalloc(n, 1);
        j->spec_len = (uint32_t)jazari__job_spec__pack(m->spec, j->spec);
    } else {
        j->nodes = 1;
        j->cpus_per_node = 1;
    }
    fsm__allocs_set(j, m->allocs, m->n_allocs);
    fstep_copy_in(j, m->steps, m->n_steps, m->steps_started);
    j->stop_how = m->stop_how <= FSM_STOP_DRAINED ? (uint8_t)m->stop_how : FSM_STOP_PREEMPTED;
    if (m->usage)
        j->usage = fsm__pb_own(&m->usage->base);
    for (size_t i = m->n_runs > FSM_RUNS_KEPT ? m->n_runs - FSM_RUNS_KEPT : 0; i < m->n_runs; i++) {
        j->runs = xrealloc_array(j->runs, j->n_runs + 1, sizeof(Jazari__RunCharge *));
        j->runs[j->n_runs++] = fsm__pb_own(&m->runs[i]->base);
    }
    return j;
}

static void fsm__insert(fsm *f, fsm_job *j)
{
    fsm__grow_jobs(f, j->id);
    fsm_job **slot = &f->jobs[j->id - 1 - f->jobs_base];
    fsm__job_free(f, *slot);
    if (!*slot)
        f->n_jobs++;
    *slot = j;
    if (fsm_job_active(j))
        fsm__count(f, j, 1);
    if (j->state == JAZARI__JOB_STATE__JOB_PENDING && !j->held)
        f->n_ready++;
    if (j->state == JAZARI__JOB_STATE__JOB_RUNNING)
        f->n_running++;
}

static void fsm__apply_submit(fsm *f, int64_t now, const Jazari__SubmitCmd *c, fsm_result *res)
{
    uint64_t array_first = 0;
    for (size_t i = 0; i < c->n_jobs; i++) {
        Jazari__Job *m = c->jobs[i];
        /* The id and the state are the state machine's to assign. */
        uint64_t saved_id = m->id;
        Jazari__JobState saved_state = m->state;
        protobuf_c_boolean saved_held = m->held;
        m->id = f->next_job_id++;
        m->state = JAZARI__JOB_STATE__JOB_PENDING;
        m->held = m->spec && m->spec->hold;
        uint64_t saved_array = m->array_job_id;
        if (m->spec && m->spec->array_task) {
            if (!array_first)
                array_first = m->id; /* the tasks of a command are one array */
            m->array_job_id = array_first;
        }
        if (!m->submit_time_ms)
            m->submit_time_ms = now;
        fsm_job *j = fsm__job_from_pb(f, m);
        m->id = saved_id;
        m->state = saved_state;
        m->held = saved_held;
        m->array_job_id = saved_array;
        if (!j->reason)
            fsm__set_reason(j, j->held ? "Held" : "Resources");
        fsm__insert(f, j);
        fsm__resv_check(f, now, j);
        if (res->submitted++ == 0)
            res->first_id = j->id;
    }
}

static void fsm__apply_cancel(fsm *f, int64_t now, const Jazari__CancelCmd *c, fsm_result *res)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        fsm_job *j = (fsm_job *)fsm_job_get(f, c->ids[i]);
        if (!j || !fsm_job_active(j) || (!c->admin && j->uid != c->uid))
            continue;
        if (j->state == JAZARI__JOB_STATE__JOB_PENDING && !j->held)
            f->n_ready--;
        if (j->state == JAZARI__JOB_STATE__JOB_RUNNING) {
            f->n_running--;
            fstep_run_ended(j, now);
        }
        fsm__run_end(f, now, j, "cancelled");
        j->held = false; /* a release of it must change nothing */
        j->state = JAZARI__JOB_STATE__JOB_CANCELLED;
        j->end_ms = now;
        fsm__set_reason(j, NULL);
        fsm__count(f, j, -1);
        fsm__ended(f, j);
        res->cancelled++;
    }
}

static void fsm__apply_start(fsm *f, int64_t now, const Jazari__StartCmd *c, fsm_result *res)
{
    fsm_job *j = (fsm_job *)fsm_job_get(f, c->id);
    if (!j || j->state != JAZARI__JOB_STATE__JOB_PENDING || j->held || c->n_allocs == 0 ||
        c->n_allocs > FSM_NODES_MAX)
        return;
    /* Planned while a node was up, applied after it went down: not started
     * (it stays pending for the next pass). */
    for (size_t i = 0; i < c->n_allocs && f->format >= 2; i++) {
        const fsm_node *n = fsm_node_get(f, c->allocs[i]->node);
        if (!n || !fsm_node_usable(n))
            return;
        /* Nor on a GPU drained meanwhile. */
        for (size_t g = 0; g < c->allocs[i]->n_gpus && n->n_drains; g++)
            if (c->allocs[i]->gpus[g] <= INT32_MAX && fsm_drain_get(n, (int32_t)c->allocs[i]->gpus[g]))
                return;
    }
    f->n_ready--;
    f->n_running++;
    j->state = JAZARI__JOB_STATE__JOB_RUNNING;
    j->start_ms = now;
    fsm__set_reason(j, NULL);
    fsm__allocs_set(j, c->allocs, c->n_allocs);
    j->master_port = c->master_port;
    free(j->partition);
    j->partition = c->partition && *c->partition ? xstrdup(c->partition) : NULL;
    res->started++;
}

/* A running job whose node was lost goes back to the queue as its next
 * attempt (the nodes kill what is left of the old one), unless it asked
 * to fail instead. */
/* The job's first node, for an event about it. */
static const char *fsm__job_node(const fsm_job *j)
{
    return j->n_allocs > 0 && j->allocs[0].node ? j->allocs[0].node : "";
}

static void fsm__lose(fsm *f, int64_t now, fsm_job *j, const char *why)
{
    char reason[512];
    f->n_running--;
    fsm__run_end(f, now, j, "lost");
    j->preempt_ms = 0;
    j->stop_how = FSM_STOP_PREEMPTED;
    if (j->no_requeue || j->attempt - j->preemptions + 1 >= FSM_MAX_ATTEMPTS) {
        snprintf(reason, sizeof reason, "NODE_FAIL: %s%s", why,
                 j->no_requeue ? "" : " (lost too many times: not requeued again)");
        j->state = JAZARI__JOB_STATE__JOB_NODE_FAIL;
        j->end_ms = now;
        j->exit_code = 0;
        fstep_run_ended(j, now);
        fsm__set_reason(j, reason);
        edb_note(&f->events, now, "job_failed", "warning", fsm__job_node(j), -1, j->id, "", reason);
        fsm__count(f, j, -1);
        fsm__ended(f, j);
        return;
    }
    snprintf(reason, sizeof reason, "Requeued after NODE_FAIL: %s", why);
    edb_note(&f->events, now, "job_requeued", "warning", fsm__job_node(j), -1, j->id, "", reason);
    j->state = JAZARI__JOB_STATE__JOB_PENDING;
    j->attempt++;
    j->start_ms = 0;
    fsm__allocs_clear(j);
    fstep_clear(j);
    fsm__set_reason(j, reason);
    if (!j->held)
        f->n_ready++;
    fsm__resv_check(f, now, j);
}

/* A part of a preempted run ended: once every part has, the job goes back
 * to the queue as its next attempt. */
static void fsm__preempted_part_end(fsm *f, int64_t now, fsm_job *j, const char *node)
{
    uint32_t left = 0;
    for (uint32_t a = 0; a < j->n_allocs; a++) {
        if (!node || !*node || (j->allocs[a].node && strcmp(j->allocs[a].node, node) == 0))
            j->allocs[a].done = true;
        left += !j->allocs[a].done;
    }
    if (left > 0)
        return;
    fsm__run_end(f, now, j,
                 j->stop_how == FSM_STOP_REQUEUED  ? "requeued"
                 : j->stop_how == FSM_STOP_DRAINED ? "lost"
                                                   : "preempted");
    j->stop_how = FSM_STOP_PREEMPTED;
    f->n_running--;
    j->state = JAZARI__JOB_STATE__JOB_PENDING;
    j->attempt++;
    j->preemptions++;
    j->preempt_ms = 0;
    j->start_ms = 0;
    fsm__allocs_clear(j);
    fstep_clear(j);
    if (!j->held)
        f->n_ready++;
    fsm__resv_check(f, now, j);
}

static void fsm__apply_preempt(fsm *f, int64_t now, const Jazari__PreemptCmd *c, fsm_result *res)
{
    fsm_job *j = (fsm_job *)fsm_job_get(f, c->id);
    if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING || c->attempt != j->attempt || j->preempt_ms)
        return;
    j->preempt_ms = now;
    j->preempt_grace_s = c->grace_s;
    /* The parts still running stop and report; one that completed already
     * reported (and will not again). */
    fsm__set_reason(j, c->reason && *c->reason ? c->reason : "Preempted");
    edb_note(&f->events, now, "job_preempted", "info", fsm__job_node(j), -1, j->id, "", j->reason);
    res->ended++;
}

static void fsm__apply_end(fsm *f, int64_t now, const Jazari__EndCmd *c, fsm_result *res)
{
    fsm_job *j = (fsm_job *)fsm_job_get(f, c->id);
    if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING || c->attempt != j->attempt ||
        c->state == JAZARI__JOB_STATE__JOB_PENDING || c->state == JAZARI__JOB_STATE__JOB_RUNNING ||
        (unsigned)c->state > JAZARI__JOB_STATE__JOB_PREEMPTED)
        return;
    if (c->step > 0) { /* a step's part: the job goes on */
        if (!j->preempt_ms && fstep_part_end(j, now, c->step - 1, c->node, c->state, c->exit_code, c->reason))
            res->ended++;
        return;
    }
    res->ended++;
    fsm__part_usage(f, now, j, c->node, c->usage);
    if (j->preempt_ms) {
        fsm__preempted_part_end(f, now, j, c->node);
        return;
    }
    if (c->no_account && c->node && *c->node && j->user && *j->user)
        fsm__lack_add(f, now, c->node, j->user);
    if (c->state == JAZARI__JOB_STATE__JOB_NODE_FAIL && f->format >= 2) {
        fsm__lose(f, now, j, c->reason && *c->reason ? c->reason : "a node lost its part");
        return;
    }
    /* A batch job ends with its script, on its first node; the other
     * nodes' parts only hold the allocation for its steps. */
    if (j->batch && c->node && j->n_allocs > 0 && j->allocs[0].node &&
        strcmp(c->node, j->allocs[0].node) != 0) {
        for (uint32_t a = 0; a < j->n_allocs; a++)
            if (j->allocs[a].node && strcmp(j->allocs[a].node, c->node) == 0)
                j->allocs[a].done = true;
        return;
    }
    /* A part that completed: the job completes with its last part. */
    if (!j->batch && c->state == JAZARI__JOB_STATE__JOB_COMPLETED && c->node && *c->node && f->format >= 2) {
        uint32_t left = 0;
        for (uint32_t a = 0; a < j->n_allocs; a++) {
            if (j->allocs[a].node && strcmp(j->allocs[a].node, c->node) == 0)
                j->allocs[a].done = true;
            left += !j->allocs[a].done;
        }
        if (left > 0)
            return;
    }
    fsm__run_end(f, now, j, "ended");
    fstep_run_ended(j, now);
    j->state = c->state;
    j->end_ms = now;
    j->exit_code = c->exit_code;
    fsm__set_reason(j, c->reason);
    fsm__count(f, j, -1);
    f->n_running--;
    fsm__ended(f, j);
}

static void fsm__apply_release(fsm *f, const Jazari__CancelCmd *c, fsm_result *res)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        fsm_job *j = (fsm_job *)fsm_job_get(f, c->ids[i]);
        if (!j || !j->held || j->state != JAZARI__JOB_STATE__JOB_PENDING || (!c->admin && j->uid != c->uid))
            continue;
        j->held = false;
        fsm__set_reason(j, "Resources");
        f->n_ready++;
        res->cancelled++; /* counted like a cancel: the jobs it touched */
    }
}

/* Format 7: jz hold: pending jobs wait until released (same shape as a
 * release; the leader authorized each job). */
static void fsm__apply_hold(fsm *f, const Jazari__CancelCmd *c, fsm_result *res)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        fsm_job *j = (fsm_job *)fsm_job_get(f, c->ids[i]);
        if (!j || j->held || j->state != JAZARI__JOB_STATE__JOB_PENDING || (!c->admin && j->uid != c->uid))
            continue;
        j->held = true;
        fsm__set_reason(j, "Held");
        f->n_ready--;
        res->cancelled++; /* counted like a cancel: the jobs it touched */
    }
}

/* A running job stopped as a preempted one is, to come back as its next
 * attempt once its parts have ended (fsm__preempted_part_end). */
static void fsm__requeue_running(fsm *f, int64_t now, fsm_job *j, uint32_t grace_s, const char *reason,
                                 const char *by, uint8_t how)
{
    if (!j->preempt_ms) {
        j->preempt_ms = now;
        j->preempt_grace_s = grace_s;
        j->stop_how = how;
    }
    fsm__set_reason(j, reason);
    edb_note(&f->events, now, "job_requeued", "info", fsm__job_node(j), -1, j->id, by, reason);
}

/* Format 7: jz requeue. A running job is stopped as a preempted one is
 * (fsm__preempted_part_end brings it back once its parts have ended: its
 * GPUs are free before its next attempt may take them), held then if
 * asked; an ended job comes back at once. Either way it is pending again as
 * its next attempt, its steps forgotten. A requeue asked for is not a loss:
 * it counts with the preemptions, not towards FSM_MAX_ATTEMPTS. */
static void fsm__apply_requeue(fsm *f, int64_t now, const Jazari__RequeueCmd *c, fsm_result *res)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        fsm_job *j = (fsm_job *)fsm_job_get(f, c->ids[i]);
        if (!j || j->state == JAZARI__JOB_STATE__JOB_PENDING)
            continue;
        if (j->state == JAZARI__JOB_STATE__JOB_RUNNING) {
            j->held = j->held || c->hold; /* kept until it is pending again */
            fsm__requeue_running(f, now, j, c->grace_s, j->held ? "Held (requeued)" : "Requeued by request",
                                 "", FSM_STOP_REQUEUED);
            res->cancelled++;
            continue;
        }
        fsm__count(f, j, 1); /* back in the active part of the queue */
        j->end_ms = 0;
        j->exit_code = 0;
        j->state = JAZARI__JOB_STATE__JOB_PENDING;
        j->attempt++;
        j->preemptions++;
        j->preempt_ms = 0;
        j->start_ms = 0;
        fsm__allocs_clear(j);
        fstep_clear(j);
        free(j->partition);
        j->partition = NULL;
        j->held = c->hold;
        fsm__set_reason(j, c->hold ? "Held (requeued)" : "Requeued by request");
        if (!j->held)
            f->n_ready++;
        res->cancelled++;
        fsm__resv_check(f, now, j);
    }
}

/* A job's spec is replaced (its class, counts and numbers follow). */
static void fsm__spec_set(fsm *f, fsm_job *j, const Jazari__JobSpec *spec)
{
    fsm__count(f, j, -1);
    fsm__class_put(f, j->cls);
    j->cls = fsm__class_get(f, spec);
    j->has_deps =
        spec->n_after_ok + spec->n_after_any + spec->n_after_notok + spec->n_after > 0 || spec->singleton;
    j->nodes = spec->nodes ? spec->nodes : 1;
    j->gpus_per_node = spec->gpus_per_node;
    j->time_limit_s = spec->time_limit_s;
    j->no_requeue = spec->no_requeue;
    j->batch = spec->batch;
    j->cpus_per_node =
        (spec->tasks_per_node ? spec->tasks_per_node : 1) * (spec->cpus_per_task ? spec->cpus_per_task : 1);
    size_t n = jazari__job_spec__get_packed_size(spec);
    free(j->spec);
    j->spec = xcalloc(n ? n : 1, 1);
    j->spec_len = (uint32_t)jazari__job_spec__pack(spec, j->spec);
    fsm__count(f, j, 1);
}

/* Format 7: jz update. A pending job takes the new spec whole (the leader
 * checked it as a submission); a running one only a new time limit, for
 * the run it was asked for. */
static void fsm__apply_update(fsm *f, int64_t now, const Jazari__UpdateCmd *c, fsm_result *res)
{
    fsm_job *j = (fsm_job *)fsm_job_get(f, c->id);
    if (!j)
        return;
    if (j->state == JAZARI__JOB_STATE__JOB_PENDING && c->spec) {
        fsm__spec_set(f, j, c->spec);
        res->cancelled++;
        fsm__resv_check(f, now, j);
        return;
    }
    if (j->state != JAZARI__JOB_STATE__JOB_RUNNING || c->spec || c->attempt != j->attempt ||
        !c->time_limit_s || c->time_limit_s > FSM_TIME_MAX_S || !j->spec)
        return;
    Jazari__JobSpec *spec = jazari__job_spec__unpack(NULL, j->spec_len, j->spec);
    if (!spec)
        return;
    spec->time_limit_s = c->time_limit_s;
    j->time_limit_s = c->time_limit_s;
    size_t n = jazari__job_spec__get_packed_size(spec);
    uint8_t *packed = xcalloc(n ? n : 1, 1);
    uint32_t len = (uint32_t)jazari__job_spec__pack(spec, packed);
    jazari__job_spec__free_unpacked(spec, NULL);
    /* The user's bytes in the queue follow the spec's size. */
    fsm_user *u = fsm__user(f, j->user ? j->user : "");
    u->spec_bytes = u->spec_bytes - j->spec_len + len;
    free(j->spec);
    j->spec = packed;
    j->spec_len = len;
    res->cancelled++;
}

static fsm_node *fsm__node_find(fsm *f, const char *name)
{
    return (fsm_node *)fsm_node_get(f, name);
}

/* Returns 1 when the node joined, 2 when it came back up, else 0. */
static int fsm__apply_node_up(fsm *f, int64_t now, const Jazari__NodeUpCmd *c, fsm_result *res)
{
    const Jazari__NodeRecord *r = c->node;
    if (!r || !r->name || !*r->name)
        return 0;
    char err[200];
    topo *t = r->topology ? topo_from_pb(r->topology, err, sizeof err) : NULL;
    if (!t)
        t = fsm__empty_topo();
    fsm_node *n = fsm__node_find(f, r->name);
    int came = !n ? 1 : strcmp(n->state, "up") != 0 ? 2 : 0;
    if (!n) {
        fsm_node *p = realloc(f->nodes, (f->n_nodes + 1) * sizeof *p);
        if (!p)
            abort();
        f->nodes = p;
        n = &f->nodes[f->n_nodes++];
        memset(n, 0, sizeof *n);
        n->name = xstrdup_known(r->name);
        strmap_put(&f->node_index, n->name, f->n_nodes - 1);
    }
    free(n->site);
    free(n->group);
    free(n->labels);
    free(n->address);
    free(n->state);
    free(n->reason);
    topo_free(n->topo);
    n->site = xstrdup_known(r->site);
    n->group = r->group && *r->group ? xstrdup_known(r->group) : NULL;
    n->labels = r->labels && *r->labels ? xstrdup_known(r->labels) : NULL;
    n->address = xstrdup_known(r->address);
    n->state = xstrdup_known(r->state && *r->state ? r->state : "up");
    n->reason = xstrdup_known(r->reason);
    n->since_ms = r->since_ms ? r->since_ms : now;
    n->topo = t;
    res->nodes_changed++;
    return strcmp(n->state, "up") == 0 ? came : 0;
}

/* A node is down: its jobs are lost, unless (format 10) it is only
 * unreachable and the command keeps them: they stay RUNNING, nothing of
 * theirs starts elsewhere, until the node comes back (its agent goes on
 * with them) or a later NodeDown loses what it still holds: lose_kept
 * (lost_after passed; nothing if the node is up again by then), or a
 * plain one (revoked, say). */
static void fsm__apply_node_down(fsm *f, int64_t now, const Jazari__NodeDownCmd *c, fsm_result *res)
{
    fsm_node *n = c->name ? fsm__node_find(f, c->name) : NULL;
    if (!n)
        return;
    bool keep = f->format >= 10 && c->keep_jobs && !c->lose_kept;
    if (strcmp(n->state, "down") == 0) {
        if (f->format < 10 || keep)
            return;
    } else if (f->format >= 10 && c->lose_kept) {
        return; /* back up before its jobs were given up: they go on */
    } else {
        free(n->state);
        free(n->reason);
        n->state = xstrdup_known("down");
        n->reason = xstrdup_known(c->reason);
        n->since_ms = now;
        res->nodes_changed++;
        edb_note(&f->events, now, "node_down", keep ? "warning" : "error", n->name, -1, 0, "",
                 c->reason && *c->reason ? c->reason : "down");
        if (keep)
            return;
    }
    char why[300];
    snprintf(why, sizeof why, "node %s was lost (%s)", n->name, c->reason && *c->reason ? c->reason : "down");
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING)
            continue;
        for (uint32_t a = 0; a < j->n_allocs && f->format >= 2; a++) {
            /* A part that already completed there is not lost. */
            if (!j->allocs[a].done && j->allocs[a].node && strcmp(j->allocs[a].node, n->name) == 0) {
                fsm__lose(f, now, j, why);
                res->ended++;
                break;
            }
        }
    }
}

/* Format 8: what a drain --now does to the jobs on what it drains: each
 * goes back to the queue (stopped as a requeue stops it), or, if it asked
 * never to be requeued, fails as on a lost node. */
static void fsm__drain_jobs(fsm *f, int64_t now, const fsm_node *n, const Jazari__DrainCmd *c,
                            const char *why)
{
    for (uint64_t k = 0; f->n_running && k < f->jobs_cap; k++) {
        fsm_job *j = f->jobs[k];
        if (!j || j->state != JAZARI__JOB_STATE__JOB_RUNNING || j->preempt_ms)
            continue;
        bool hit = false;
        for (uint32_t a = 0; a < j->n_allocs && !hit; a++) {
            const fsm_alloc *al = &j->allocs[a];
            if (al->done || !al->node || strcmp(al->node, n->name) != 0)
                continue;
            for (uint32_t g = 0; g < al->n_gpus && c->gpu >= 0 && !hit; g++)
                hit = al->gpus[g] == (uint32_t)c->gpu;
            hit = hit || c->gpu < 0;
        }
        if (!hit)
            continue;
        if (j->no_requeue)
            fsm__lose(f, now, j, why);
        else
            fsm__requeue_running(f, now, j, c->grace_s, why, c->by ? c->by : "", FSM_STOP_DRAINED);
    }
}

/* Format 8: a drain or a resume, of a node or one GPU. A drain by an admin
 * takes over any other; an automatic one (health, burn-in) leaves an
 * admin's in place. An admin's resume of a node resumes its GPUs too;
 * another source resumes only what it drained itself. */
static void fsm__apply_drain(fsm *f, int64_t now, const Jazari__DrainCmd *c, fsm_result *res)
{
    fsm_node *n = c->node ? fsm__node_find(f, c->node) : NULL;
    if (!n || c->gpu < -1 || (c->gpu >= 0 && (size_t)c->gpu >= n->topo->n_gpus))
        return;
    char t[3][FSM_DRAIN_TEXT_MAX + 1];
    const char *source =
        mring_text(c->source && *c->source ? c->source : "admin", FSM_DRAIN_SOURCE_MAX, t[0]);
    const char *reason = mring_text(c->reason, FSM_DRAIN_TEXT_MAX, t[1]);
    const char *by = mring_text(c->by, FSM_DRAIN_TEXT_MAX, t[2]);
    bool admin = strcmp(source, "admin") == 0;
    if (c->resume) {
        uint32_t kept = 0;
        for (uint32_t i = 0; i < n->n_drains; i++) {
            fsm_drain *d = &n->drains[i];
            bool hit = (c->gpu < 0 ? admin || d->gpu < 0 : d->gpu == c->gpu) &&
                       (admin || strcmp(d->source, source) == 0);
            if (!hit) {
                n->drains[kept++] = *d;
                continue;
            }
            edb_note(&f->events, now, d->gpu < 0 ? "node_resume" : "gpu_resume", "info", n->name, d->gpu, 0,
                     by, *reason ? reason : "back in service");
            free(d->reason);
            free(d->by);
            free(d->source);
            res->nodes_changed++;
        }
        n->n_drains = kept;
        return;
    }
    fsm_drain *d = (fsm_drain *)fsm_drain_get(n, c->gpu);
    if (!d || admin || strcmp(d->source, "admin") != 0) {
        if (!d) {
            n->drains = xrealloc_array(n->drains, n->n_drains + 1, sizeof *n->drains);
            d = &n->drains[n->n_drains++];
            memset(d, 0, sizeof *d);
            d->gpu = c->gpu;
            d->since_ms = now;
        }
        free(d->reason);
        free(d->by);
        free(d->source);
        d->reason = xstrdup(reason);
        d->by = xstrdup(by);
        d->source = xstrdup(source);
        res->nodes_changed++;
    }
    edb_note(&f->events, now, c->gpu < 0 ? "node_drain" : "gpu_drain", "warning", n->name, c->gpu, 0, by,
             reason);
    if (c->now) {
        char why[FSM_DRAIN_TEXT_MAX + 200];
        if (c->gpu < 0)
            snprintf(why, sizeof why, "node %s drained: %s", n->name, reason);
        else
            snprintf(why, sizeof why, "GPU %d of node %s drained: %s", c->gpu, n->name, reason);
        fsm__drain_jobs(f, now, n, c, why);
    }
}

/* A person's command joins the audit trail, with what came of it. */
static void fsm__audit(fsm *f, int64_t now, const Jazari__Command *c, uint64_t first_id, uint32_t count)
{
    char result[64];
    if (c->cmd_case == JAZARI__COMMAND__CMD_SUBMIT && count > 1)
        snprintf(result, sizeof result, "jobs %llu-%llu", (unsigned long long)first_id,
                 (unsigned long long)(first_id + count - 1));
    else if (c->cmd_case == JAZARI__COMMAND__CMD_SUBMIT && count == 1)
        snprintf(result, sizeof result, "job %llu", (unsigned long long)first_id);
    else if (c->cmd_case == JAZARI__COMMAND__CMD_TRUST || c->cmd_case == JAZARI__COMMAND__CMD_POLICY)
        snprintf(result, sizeof result, "done");
    else if (count)
        snprintf(result, sizeof result, "%u changed", count);
    else
        snprintf(result, sizeof result, "nothing changed");
    adb_add(&f->audit, c->audit, now, result);
}

int fsm_apply(fsm *f, const void *data, size_t len, fsm_result *res, char *err, size_t errlen)
{
    fsm__memo_drop(f); /* before anything it points into changes */
    fsm_result scratch;
    if (!res)
        res = &scratch;
    res->first_id = 0;
    res->submitted = res->cancelled = res->nodes_changed = res->n_cmds = 0;
    res->started = res->ended = res->trust_changed = 0;
    Jazari__Entry *e = codec_entry_decode(data, len, err, errlen);
    if (!e)
        return -1; /* checked whole before any command is applied */
    f->format = e->format;
    f->n_out_jobs = f->n_out_runs = f->out_resv = 0;
    /* Format 4: no id below the leader's high-water mark, for the whole
     * entry at once (its ids stay consecutive); a jump is bounded (the
     * jobs are indexed by id). */
    for (size_t i = 0; e->format >= 4 && i < e->n_commands; i++) {
        uint64_t min =
            e->commands[i]->cmd_case == JAZARI__COMMAND__CMD_SUBMIT ? e->commands[i]->submit->min_id : 0;
        if (min > f->next_job_id && min - f->next_job_id <= FSM_ID_JUMP_MAX)
            f->next_job_id = min;
    }
    /* Time never goes back, even if a new leader's clock is behind. */
    int64_t now = e->time_ms > f->time_ms ? e->time_ms : f->time_ms;
    f->time_ms = now;
    /* Reservation charges are kept (for the history, after a restore) as
     * long as ended jobs; dropped before this entry may add any, so that
     * the history is always handed the new ones. */
    if (e->format >= 9)
        facct_resv_expire(&f->acct, now - facct_jobs_keep_ms(&f->acct));
    for (size_t i = 0; i < e->n_commands; i++) {
        const Jazari__Command *c = e->commands[i];
        uint32_t before = res->submitted + res->cancelled + res->nodes_changed + res->started + res->ended;
        uint64_t first_id = f->next_job_id;
        res->steps[i] = 0;
        switch (c->cmd_case) {
        case JAZARI__COMMAND__CMD_SUBMIT:
            fsm__apply_submit(f, now, c->submit, res);
            break;
        case JAZARI__COMMAND__CMD_CANCEL:
            fsm__apply_cancel(f, now, c->cancel, res);
            break;
        case JAZARI__COMMAND__CMD_NODE_UP: {
            int came = fsm__apply_node_up(f, now, c->node_up, res);
            if (came)
                edb_note(&f->events, now, "node_up", "info", c->node_up->node->name, -1, 0, "",
                         came == 1 ? "joined the network" : "back up");
            break;
        }
        case JAZARI__COMMAND__CMD_DRAIN:
            fsm__apply_drain(f, now, c->drain, res);
            break;
        case JAZARI__COMMAND__CMD_EVENT:
            if (c->event->event)
                edb_add(&f->events, c->event->event, now);
            break;
        case JAZARI__COMMAND__CMD_NODE_DOWN:
            fsm__apply_node_down(f, now, c->node_down, res);
            break;
        case JAZARI__COMMAND__CMD_START:
            fsm__apply_start(f, now, c->start, res);
            break;
        case JAZARI__COMMAND__CMD_END:
            fsm__apply_end(f, now, c->end, res);
            break;
        case JAZARI__COMMAND__CMD_RELEASE:
            fsm__apply_release(f, c->release, res);
            break;
        case JAZARI__COMMAND__CMD_PREEMPT:
            fsm__apply_preempt(f, now, c->preempt, res);
            break;
        case JAZARI__COMMAND__CMD_RESERVE:
            fsm__apply_reserve(f, c->reserve, res);
            break;
        case JAZARI__COMMAND__CMD_POLICY:
            if (c->policy->half_life_ms >= FSM_HALF_LIFE_MIN_MS &&
                c->policy->half_life_ms <= FSM_HALF_LIFE_MAX_MS)
                f->half_life_ms = c->policy->half_life_ms;
            if (c->policy->events_retention_ms >= EDB_RETENTION_MIN_MS &&
                c->policy->events_retention_ms <= EDB_RETENTION_MAX_MS)
                f->events.retention_ms = c->policy->events_retention_ms;
            if (c->policy->acct && e->format >= 9)
                facct_policy_set(&f->acct, c->policy->acct);
            break;
        case JAZARI__COMMAND__CMD_GRANT:
            if (c->grant->grant && facct_grant_apply(&f->acct, c->grant->grant, now))
                res->nodes_changed++;
            break;
        case JAZARI__COMMAND__CMD_UNRESERVE:
            fsm__apply_unreserve(f, now, c->unreserve, res);
            break;
        case JAZARI__COMMAND__CMD_STEP: {
            fsm_job *j = (fsm_job *)fsm_job_get(f, c->step->id);
            const Jazari__JobStep *st =
                j && j->attempt == c->step->attempt ? fstep_launch(j, now, c->step->spec) : NULL;
            res->steps[i] = st ? st->id + 1 : 0;
            res->started += st != NULL;
            break;
        }
        case JAZARI__COMMAND__CMD_HOLD:
            fsm__apply_hold(f, c->hold, res);
            break;
        case JAZARI__COMMAND__CMD_REQUEUE:
            fsm__apply_requeue(f, now, c->requeue, res);
            break;
        case JAZARI__COMMAND__CMD_UPDATE:
            fsm__apply_update(f, now, c->update, res);
            break;
        case JAZARI__COMMAND__CMD_STEP_CANCEL: {
            fsm_job *j = (fsm_job *)fsm_job_get(f, c->step_cancel->id);
            if (j && j->state == JAZARI__JOB_STATE__JOB_RUNNING && j->attempt == c->step_cancel->attempt &&
                fstep_cancel(j, now, c->step_cancel->step, c->step_cancel->reason))
                res->cancelled++;
            break;
        }
        case JAZARI__COMMAND__CMD_TRUST: {
            const char *revoked = tdb_apply(&f->trust, c->trust, now);
            res->trust_changed++;
            if (revoked) {
                char why[200];
                Jazari__NodeDownCmd down = JAZARI__NODE_DOWN_CMD__INIT;
                snprintf(why, sizeof why, "revoked by %s",
                         c->trust->by && *c->trust->by ? c->trust->by : "an admin");
                down.name = (char *)revoked;
                down.reason = why;
                fsm__apply_node_down(f, now, &down, res);
            }
            break;
        }
        default: /* refused by codec_entry_decode */
            break;
        }
        res->counts[i] =
            res->submitted + res->cancelled + res->nodes_changed + res->started + res->ended - before;
        if (c->audit)
            fsm__audit(f, now, c, first_id, res->counts[i]);
    }
    res->n_cmds = (uint32_t)e->n_commands;
    fsm__resv_expire(f, now);
    edb_expire(&f->events, now);
    if (e->format >= 9)
        fsm__purge(f, now);
    f->applied++;
    f->changes++;
    jazari__entry__free_unpacked(e, NULL);
    return 0;
}

/* --- jobs as messages ---------------------------------------------------------- */

Jazari__JobSpec *fsm_job_to_pb(const fsm_job *j, Jazari__Job *out, Jazari__JobAlloc *allocs,
                               Jazari__JobAlloc **alloc_ptrs)
{
    jazari__job__init(out);
    out->id = j->id;
    out->user = j->user ? j->user : "";
    out->uid = j->uid;
    out->gid = j->gid;
    out->state = j->state;
    out->held = j->held;
    out->attempt = j->attempt;
    out->master_port = j->master_port;
    out->array_job_id = j->array_job_id;
    out->preempt_time_ms = j->preempt_ms;
    out->preempt_grace_s = j->preempt_grace_s;
    out->preemptions = j->preemptions;
    out->reason = j->reason ? j->reason : "";
    out->partition = j->partition ? j->partition : "";
    out->exit_code = j->exit_code;
    out->submit_time_ms = j->submit_ms;
    out->start_time_ms = j->start_ms;
    out->end_time_ms = j->end_ms;
    out->n_allocs = j->n_allocs;
    out->allocs = alloc_ptrs;
    out->steps = j->steps; /* borrowed: j owns them */
    out->n_steps = j->n_steps;
    out->steps_started = j->steps_started;
    out->usage = j->usage; /* borrowed */
    out->stop_how = j->stop_how;
    for (uint32_t i = 0; i < j->n_allocs; i++) {
        jazari__job_alloc__init(&allocs[i]);
        allocs[i].node = j->allocs[i].node ? j->allocs[i].node : "";
        allocs[i].cpus = j->allocs[i].cpus ? j->allocs[i].cpus : "";
        allocs[i].address = j->allocs[i].address ? j->allocs[i].address : "";
        allocs[i].done = j->allocs[i].done;
        allocs[i].n_gpus = j->allocs[i].n_gpus;
        allocs[i].gpus = j->allocs[i].gpus;
        alloc_ptrs[i] = &allocs[i];
    }
    Jazari__JobSpec *spec = j->spec ? jazari__job_spec__unpack(NULL, j->spec_len, j->spec) : NULL;
    out->spec = spec;
    return spec;
}

/* --- snapshots -------------------------------------------------------------------- */

/* A snapshot is written field by field: each job is packed on its own (its
 * stored spec bytes spliced in as field 2), so no copy of the whole state
 * is ever built in memory as messages. */
void fsm_snapshot(const fsm *f, buf *out)
{
    Jazari__Snapshot head = JAZARI__SNAPSHOT__INIT;
    /* Labelled with the format of the entry last applied, not this
     * release's newest: until every controller reads a newer one, what a
     * controller of this release writes is read by the older (a lagging
     * follower sent the snapshot, a controller taken back to it). Snapshots
     * are laid out alike from format 4 on, and written for a format-3
     * reader too (usage in GPU-seconds as well). */
    head.format = f->format ? f->format : CODEC_FORMAT;
    head.next_job_id = f->next_job_id;
    head.time_ms = f->time_ms;
    head.usage_half_life_ms = f->half_life_ms;
    head.events_retention_ms = f->events.retention_ms;
    head.acct = f->acct.pol;
    head.next_grant_id = f->acct.next_grant_id;
    codec_snapshot_begin(out, &head);

    buf one = BUF_INIT;
    for (uint64_t i = 0; i < f->jobs_cap; i++) {
        const fsm_job *j = f->jobs[i];
        if (!j)
            continue;
        Jazari__Job m;
        Jazari__JobAlloc *allocs = xcalloc(j->n_allocs, sizeof *allocs);
        Jazari__JobAlloc **ptrs = xcalloc(j->n_allocs, sizeof(Jazari__JobAlloc *));
        jazari__job__init(&m);
        fsm_job_to_pb(j, &m, allocs, ptrs);
        m.runs = j->runs; /* borrowed */
        m.n_runs = j->n_runs;
        Jazari__JobSpec *spec = m.spec;
        m.spec = NULL;
        buf_reset(&one);
        jazari__job__pack(&m, buf_extend(&one, jazari__job__get_packed_size(&m)));
        if (j->spec)
            codec_put_field(&one, 2, j->spec, j->spec_len);
        jazari__job_spec__free_unpacked(spec, NULL);
        free(allocs);
        free(ptrs);
        codec_put_field(out, 4, one.data, one.len);
    }
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *nd = &f->nodes[i];
        Jazari__NodeRecord r = JAZARI__NODE_RECORD__INIT;
        r.name = nd->name;
        r.site = nd->site ? nd->site : "";
        r.group = nd->group ? nd->group : "";
        r.labels = nd->labels ? nd->labels : "";
        r.address = nd->address ? nd->address : "";
        r.state = nd->state;
        r.reason = nd->reason ? nd->reason : "";
        r.since_ms = nd->since_ms;
        r.topology = topo_to_pb(nd->topo);
        buf_reset(&one);
        jazari__node_record__pack(&r, buf_extend(&one, jazari__node_record__get_packed_size(&r)));
        topo_pb_free(r.topology);
        codec_put_field(out, 5, one.data, one.len);
    }
    for (size_t i = 0; i < f->n_usage; i++) {
        Jazari__Usage u = JAZARI__USAGE__INIT;
        u.path = f->usage[i].path;
        u.gpu_ms = f->usage[i].gpu_ms;
        u.gpu_seconds = (double)f->usage[i].gpu_ms / 1000.0; /* for a format-3 reader */
        u.as_of_ms = f->usage[i].as_of_ms;
        buf_reset(&one);
        jazari__usage__pack(&u, buf_extend(&one, jazari__usage__get_packed_size(&u)));
        codec_put_field(out, 6, one.data, one.len);
    }
    for (size_t i = 0; i < f->n_resv; i++)
        codec_put_field(out, 7, f->resv[i].msg, f->resv[i].msg_len);
    tdb_snapshot(&f->trust, out);
    adb_snapshot(&f->audit, out);
    for (size_t i = 0; i < f->n_lacks; i++) {
        Jazari__Lack k = JAZARI__LACK__INIT;
        k.node = f->lacks[i].node;
        k.user = f->lacks[i].user;
        k.at_ms = f->lacks[i].at_ms;
        buf_reset(&one);
        jazari__lack__pack(&k, buf_extend(&one, jazari__lack__get_packed_size(&k)));
        codec_put_field(out, 13, one.data, one.len);
    }
    edb_snapshot(&f->events, out);
    facct_snapshot(&f->acct, out);
    for (size_t i = 0; i < f->n_nodes; i++) {
        const fsm_node *nd = &f->nodes[i];
        if (!nd->n_drains)
            continue;
        Jazari__NodeDrains nds = JAZARI__NODE_DRAINS__INIT;
        Jazari__GpuDrain *gd = xcalloc(nd->n_drains, sizeof *gd);
        Jazari__GpuDrain **gp = xcalloc(nd->n_drains, sizeof(Jazari__GpuDrain *));
        for (uint32_t k = 0; k < nd->n_drains; k++) {
            jazari__gpu_drain__init(&gd[k]);
            gd[k].gpu = nd->drains[k].gpu;
            gd[k].reason = nd->drains[k].reason;
            gd[k].by = nd->drains[k].by;
            gd[k].source = nd->drains[k].source;
            gd[k].since_ms = nd->drains[k].since_ms;
            gp[k] = &gd[k];
        }
        nds.node = nd->name;
        nds.drains = gp;
        nds.n_drains = nd->n_drains;
        buf_reset(&one);
        jazari__node_drains__pack(&nds, buf_extend(&one, jazari__node_drains__get_packed_size(&nds)));
        codec_put_field(out, 15, one.data, one.len);
        free(gd);
        free(gp);
    }
    buf_free(&one);
}

int fsm_restore(fsm *f, const void *data, size_t len, char *err, size_t errlen)
{
    Jazari__Snapshot *s = codec_snapshot_decode(data, len, err, errlen);
    if (!s)
        return -1;
    for (size_t i = 0; i < s->n_jobs; i++) {
        if (s->jobs[i]->id == 0 || s->jobs[i]->id >= s->next_job_id) {
            snprintf(err, errlen, "snapshot job id %llu outside 1..%llu", (unsigned long long)s->jobs[i]->id,
                     (unsigned long long)s->next_job_id);
            jazari__snapshot__free_unpacked(s, NULL);
            return -1;
        }
    }
    uint64_t changes = f->changes;
    fsm_free(f);
    f->changes = changes + 1;
    f->format = s->format; /* until an entry is applied: what a snapshot of it is labelled */
    f->next_job_id = s->next_job_id;
    f->time_ms = s->time_ms;
    if (s->usage_half_life_ms >= FSM_HALF_LIFE_MIN_MS && s->usage_half_life_ms <= FSM_HALF_LIFE_MAX_MS)
        f->half_life_ms = s->usage_half_life_ms;
    /* The index starts at the oldest job the snapshot holds. */
    uint64_t lowest = s->next_job_id;
    for (size_t i = 0; i < s->n_jobs; i++)
        lowest = s->jobs[i]->id < lowest ? s->jobs[i]->id : lowest;
    f->jobs_base = lowest > 0 ? lowest - 1 : 0;
    for (size_t i = 0; i < s->n_jobs; i++)
        fsm__insert(f, fsm__job_from_pb(f, s->jobs[i]));
    fsm_result res;
    memset(&res, 0, sizeof res);
    for (size_t i = 0; i < s->n_nodes; i++) {
        Jazari__NodeUpCmd up = JAZARI__NODE_UP_CMD__INIT;
        up.node = s->nodes[i];
        fsm__apply_node_up(f, s->time_ms, &up, &res);
    }
    for (size_t i = 0; i < s->n_usage; i++)
        if (s->usage[i]->path && *s->usage[i]->path)
            fsm__usage_add(f, s->usage[i]->path, s->usage[i]->as_of_ms, fsm__usage_ms(s->usage[i]),
                           s->usage[i]->as_of_ms);
    for (size_t i = 0; i < s->n_reservations; i++)
        fsm__resv_add(f, s->reservations[i]);
    tdb_restore(&f->trust, s);
    adb_restore(&f->audit, s);
    edb_restore(&f->events, s);
    for (size_t i = 0; i < s->n_drains; i++) {
        fsm_node *n = fsm__node_find(f, s->drains[i]->node ? s->drains[i]->node : "");
        for (size_t k = 0; n && k < s->drains[i]->n_drains; k++) {
            const Jazari__GpuDrain *g = s->drains[i]->drains[k];
            if (g->gpu < -1 || fsm_drain_get(n, g->gpu))
                continue;
            n->drains = xrealloc_array(n->drains, n->n_drains + 1, sizeof *n->drains);
            fsm_drain *d = &n->drains[n->n_drains++];
            d->gpu = g->gpu;
            d->reason = xstrdup(g->reason ? g->reason : "");
            d->by = xstrdup(g->by ? g->by : "");
            d->source = xstrdup(g->source && *g->source ? g->source : "admin");
            d->since_ms = g->since_ms;
        }
    }
    for (size_t i = 0; i < s->n_lacks; i++)
        if (s->lacks[i]->node && *s->lacks[i]->node && s->lacks[i]->user && *s->lacks[i]->user)
            fsm__lack_add(f, s->lacks[i]->at_ms, s->lacks[i]->node, s->lacks[i]->user);
    facct_restore(&f->acct, s);
    jazari__snapshot__free_unpacked(s, NULL);
    /* The ended jobs, by end time (format 9 forgets them in that order),
     * and everything the history may lack given to it again. */
    for (uint64_t i = 0; i < f->jobs_cap; i++) {
        const fsm_job *j = f->jobs[i];
        if (!j || fsm_job_active(j))
            continue;
        fsm__out_job(f, j->id);
        if (f->n_ended == f->ended_cap) {
            f->ended_cap = f->ended_cap ? 2 * f->ended_cap : 256;
            f->ended = xrealloc_array(f->ended, f->ended_cap, sizeof *f->ended);
        }
        f->ended[f->n_ended++] = (struct fsm_ended){j->id, j->end_ms};
    }
    for (uint64_t i = 0; i < f->jobs_cap; i++)
        for (uint32_t r = 0; f->jobs[i] && r < f->jobs[i]->n_runs; r++)
            fsm__out_run(f, f->jobs[i]->id, f->jobs[i]->runs[r]->attempt);
    f->out_resv = f->acct.n_resv;
    if (f->n_ended > 1)
        qsort(f->ended, f->n_ended, sizeof *f->ended, fsm__ended_cmp);
    return 0;
}

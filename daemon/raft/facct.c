/* facct.c - accounting in the state machine: see facct.h. */
#include "facct.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/xmem.h"
#include "../../lib/sched/policy.h"
#include "codec.h"

void facct_init(facct *a)
{
    memset(a, 0, sizeof *a);
    a->next_grant_id = 1;
}

static void facct__grant_clear(facct_grant *g)
{
    free(g->account);
    free(g->by);
}

void facct_free(facct *a)
{
    if (a->pol)
        jazari__acct_policy__free_unpacked(a->pol, NULL);
    free(a->pol_bytes);
    for (size_t i = 0; i < a->n_grants; i++)
        facct__grant_clear(&a->grants[i]);
    free(a->grants);
    for (size_t i = 0; i < a->n_resv; i++)
        jazari__resv_charge__free_unpacked(a->resv[i], NULL);
    free(a->resv);
    facct_init(a);
}

/* --- the policy ----------------------------------------------------------------- */

static bool facct__word_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c >= 0x80)
            return false;
    }
    return true;
}

int facct_policy_check(const Jazari__AcctPolicy *p, char *err, size_t errlen)
{
    if (p->currency && *p->currency && !facct__word_ok(p->currency, 8)) {
        snprintf(err, errlen, "currency: at most 8 printable ASCII characters");
        return -1;
    }
    if (p->minor_digits > 6) {
        snprintf(err, errlen, "currency: at most 6 digits after the point");
        return -1;
    }
    if (p->n_rates > FACCT_RATES_MAX) {
        snprintf(err, errlen, "at most %d rate and price models", FACCT_RATES_MAX);
        return -1;
    }
    for (size_t i = 0; i < p->n_rates; i++) {
        const Jazari__AcctRate *r = p->rates[i];
        if (!facct__word_ok(r->model, 63) || r->charge_milli > FACCT_CHARGE_MILLI_MAX ||
            r->price_micro > FACCT_PRICE_MICRO_MAX) {
            snprintf(err, errlen,
                     "rate %zu: a model name of 1-63 printable characters, a rate of at most 1000 "
                     "and a price of at most 10^9 an hour",
                     i + 1);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(p->rates[k]->model, r->model) == 0) {
                snprintf(err, errlen, "rate %zu: model %s named twice", i + 1, r->model);
                return -1;
            }
    }
    if (p->jobs_keep_ms &&
        (p->jobs_keep_ms < FACCT_JOBS_KEEP_MIN_MS || p->jobs_keep_ms > FACCT_JOBS_KEEP_MAX_MS)) {
        snprintf(err, errlen, "jobs_keep: between 1 minute and 366 days");
        return -1;
    }
    if (p->history_retention_ms && (p->history_retention_ms < FACCT_RETENTION_MIN_MS ||
                                    p->history_retention_ms > FACCT_RETENTION_MAX_MS)) {
        snprintf(err, errlen, "history_retention: between 1 day and 100 years");
        return -1;
    }
    return 0;
}

void facct_policy_set(facct *a, const Jazari__AcctPolicy *p)
{
    char err[200];
    if (!p || facct_policy_check(p, err, sizeof err) != 0)
        return;
    size_t n = jazari__acct_policy__get_packed_size(p);
    uint8_t *bytes = xcalloc(n ? n : 1, 1);
    jazari__acct_policy__pack(p, bytes);
    Jazari__AcctPolicy *copy = jazari__acct_policy__unpack(NULL, n, bytes);
    if (!copy) {
        free(bytes);
        return;
    }
    if (a->pol)
        jazari__acct_policy__free_unpacked(a->pol, NULL);
    free(a->pol_bytes);
    a->pol = copy;
    a->pol_bytes = bytes;
    a->pol_len = n;
}

void facct_policy_of(const pol *p, Jazari__AcctPolicy *out, Jazari__AcctRate *rates, Jazari__AcctRate **ptrs)
{
    jazari__acct_policy__init(out);
    out->currency = (char *)p->currency;
    out->minor_digits = *p->currency ? p->minor_digits : 0;
    out->free_preempted = p->free_preempted;
    out->charge_lost = p->charge_lost;
    out->jobs_keep_ms = p->jobs_keep_ms;
    out->history_retention_ms = p->history_retention_ms;
    for (size_t i = 0; i < p->n_rates; i++) {
        jazari__acct_rate__init(&rates[i]);
        rates[i].model = (char *)p->rates[i].model;
        /* A model with a price and no rate counts as a GPU does (1), or a
         * CPU as nothing. */
        bool cpu = strcmp(p->rates[i].model, "cpu") == 0;
        rates[i].charge_milli = p->rates[i].has_rate ? p->rates[i].charge_milli : cpu ? 0 : 1000;
        rates[i].price_micro = p->rates[i].price_micro;
        ptrs[i] = &rates[i];
    }
    out->rates = ptrs;
    out->n_rates = p->n_rates;
}

bool facct_policy_same(const facct *a, const Jazari__AcctPolicy *p)
{
    size_t n = jazari__acct_policy__get_packed_size(p);
    if (!a->pol)
        return n == 0;
    if (n != a->pol_len)
        return false;
    uint8_t *bytes = xcalloc(n ? n : 1, 1);
    jazari__acct_policy__pack(p, bytes);
    bool same = memcmp(bytes, a->pol_bytes, n) == 0;
    free(bytes);
    return same;
}

const char *facct_currency(const facct *a)
{
    return a->pol && a->pol->currency ? a->pol->currency : "";
}

uint32_t facct_minor_digits(const facct *a)
{
    return a->pol && a->pol->currency && *a->pol->currency ? a->pol->minor_digits : 2;
}

int64_t facct_jobs_keep_ms(const facct *a)
{
    return a->pol && a->pol->jobs_keep_ms ? a->pol->jobs_keep_ms : FACCT_JOBS_KEEP_MS;
}

int64_t facct_retention_ms(const facct *a)
{
    return a->pol && a->pol->history_retention_ms ? a->pol->history_retention_ms : FACCT_RETENTION_MS;
}

bool facct_charges_preempted(const facct *a)
{
    return !(a->pol && a->pol->free_preempted);
}

bool facct_charges_lost(const facct *a)
{
    return a->pol && a->pol->charge_lost;
}

/* Whether the words of pattern appear in name, in any case. */
static bool facct__in(const char *name, const char *pattern)
{
    size_t len = strlen(pattern);
    for (const char *m = name; *m; m++)
        if (strncasecmp(m, pattern, len) == 0)
            return true;
    return false;
}

const Jazari__AcctRate *facct_rate(const facct *a, const char *model)
{
    if (!a->pol)
        return NULL;
    const Jazari__AcctRate *star = NULL;
    for (size_t i = 0; i < a->pol->n_rates; i++) {
        const Jazari__AcctRate *r = a->pol->rates[i];
        bool is_cpu = strcasecmp(r->model, "cpu") == 0, is_star = strcmp(r->model, "*") == 0;
        if (!model) {
            if (is_cpu)
                return r;
            continue;
        }
        if (is_star)
            star = r;
        else if (!is_cpu && facct__in(model, r->model))
            return r;
    }
    return star;
}

uint32_t facct_charge_milli(const facct *a, const char *model)
{
    const Jazari__AcctRate *r = facct_rate(a, model);
    return r ? r->charge_milli : model ? 1000 : 0;
}

uint64_t facct_price_micro(const facct *a, const char *model)
{
    const Jazari__AcctRate *r = facct_rate(a, model);
    return r ? r->price_micro : 0;
}

uint32_t facct_worst_milli(const facct *a, const char *asked)
{
    uint32_t worst = 0, other = 1000;
    bool matched = false;
    for (size_t i = 0; a->pol && i < a->pol->n_rates; i++) {
        const Jazari__AcctRate *r = a->pol->rates[i];
        if (strcasecmp(r->model, "cpu") == 0)
            continue;
        if (strcmp(r->model, "*") == 0) {
            other = r->charge_milli;
            continue;
        }
        if (!asked || !*asked || facct__in(asked, r->model) || facct__in(r->model, asked)) {
            matched = matched || (asked && *asked);
            worst = r->charge_milli > worst ? r->charge_milli : worst;
        }
    }
    if (!matched && other > worst)
        worst = other; /* a model no line names counts as "*" does */
    return worst;
}

/* --- grants ------------------------------------------------------------------- */

static bool facct__overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
    return a0 < b1 && b0 < a1;
}

static facct_grant *facct__same_period(const facct *a, const Jazari__Grant *g)
{
    for (size_t i = 0; i < a->n_grants; i++) {
        facct_grant *x = &a->grants[i];
        if (strcmp(x->account, g->account) == 0 && x->from_ms == g->from_ms && x->until_ms == g->until_ms)
            return x;
    }
    return NULL;
}

int facct_grant_check(const facct *a, const Jazari__Grant *g, char *err, size_t errlen)
{
    if (!g->account || !pol_account_valid(g->account)) {
        snprintf(err, errlen, "grant: an account such as inst or inst/project");
        return -1;
    }
    if (g->from_ms <= 0 || g->until_ms <= g->from_ms || g->until_ms > FACCT_TIME_MAX_MS ||
        g->until_ms - g->from_ms > 10ll * 366 * 86400 * 1000) {
        snprintf(err, errlen,
                 "grant: the period must end after it begins, last at most 10 years, and lie between 1970 "
                 "and 9999");
        return -1;
    }
    if (g->gpu_ms > FACCT_GRANT_MS_MAX || g->gpu_ms < -FACCT_GRANT_MS_MAX || g->gpu_ms == 0) {
        snprintf(err, errlen, "grant: between 0.001 and a billion GPU-hours");
        return -1;
    }
    const facct_grant *same = facct__same_period(a, g);
    if (same) {
        /* Both within a billion: their sum cannot overflow. */
        if (same->gpu_ms + g->gpu_ms > FACCT_GRANT_MS_MAX) {
            snprintf(err, errlen,
                     "grant %llu of %s: a top-up to more than a billion GPU-hours in all (it has %.3f)",
                     (unsigned long long)same->id, same->account, (double)same->gpu_ms / 3.6e6);
            return -1;
        }
        if (same->gpu_ms + g->gpu_ms < 0 || (uint64_t)(same->gpu_ms + g->gpu_ms) < same->used_ms) {
            snprintf(err, errlen,
                     "grant %llu of %s has %.3f GPU-hours used: it cannot be reduced below that (it would be "
                     "%.3f)",
                     (unsigned long long)same->id, same->account, (double)same->used_ms / 3.6e6,
                     (double)(same->gpu_ms + g->gpu_ms) / 3.6e6);
            return -1;
        }
        return 0;
    }
    if (g->gpu_ms < 0) {
        snprintf(err, errlen, "grant: %s has no grant for exactly that period to reduce", g->account);
        return -1;
    }
    for (size_t i = 0; i < a->n_grants; i++) {
        const facct_grant *x = &a->grants[i];
        if (strcmp(x->account, g->account) == 0 &&
            facct__overlap(x->from_ms, x->until_ms, g->from_ms, g->until_ms)) {
            snprintf(err, errlen,
                     "grant: %s already has grant %llu over part of that period; top it up by granting for "
                     "exactly its period, or grant a period after it",
                     g->account, (unsigned long long)x->id);
            return -1;
        }
    }
    if (a->n_grants >= FACCT_GRANTS_MAX) {
        snprintf(err, errlen, "grant: the network holds %d grants already", FACCT_GRANTS_MAX);
        return -1;
    }
    return 0;
}

static facct_grant *facct__grant_insert(facct *a, const Jazari__Grant *g, int64_t now_ms)
{
    a->grants = xrealloc_array(a->grants, a->n_grants + 1, sizeof *a->grants);
    facct_grant *x = &a->grants[a->n_grants++];
    x->id = g->id && g->id >= a->next_grant_id ? g->id : a->next_grant_id;
    a->next_grant_id = x->id + 1;
    x->account = xstrdup(g->account);
    x->from_ms = g->from_ms;
    x->until_ms = g->until_ms;
    x->gpu_ms = g->gpu_ms;
    x->used_ms = g->used_ms;
    x->by = xstrdup(g->by ? g->by : "");
    x->at_ms = g->at_ms ? g->at_ms : now_ms;
    return x;
}

const facct_grant *facct_grant_apply(facct *a, const Jazari__Grant *g, int64_t now_ms)
{
    char err[300];
    if (facct_grant_check(a, g, err, sizeof err) != 0)
        return NULL;
    facct_grant *same = facct__same_period(a, g);
    if (same) {
        same->gpu_ms += g->gpu_ms;
        return same;
    }
    Jazari__Grant fresh = *g;
    fresh.id = 0;
    fresh.used_ms = 0;
    fresh.at_ms = now_ms;
    return facct__grant_insert(a, &fresh, now_ms);
}

const char *facct_grant_holder(const facct *a, const char *account)
{
    if (!account || !*account || a->n_grants == 0)
        return NULL;
    const char *slash = strchr(account, '/');
    size_t inst = slash ? (size_t)(slash - account) : 0;
    const char *parent = NULL;
    for (size_t i = 0; i < a->n_grants; i++) {
        const char *g = a->grants[i].account;
        if (strcmp(g, account) == 0)
            return g;
        if (inst && !parent && strlen(g) == inst && strncmp(g, account, inst) == 0)
            parent = g;
    }
    return parent;
}

const facct_grant *facct_grant_at(const facct *a, const char *holder, int64_t at_ms)
{
    for (size_t i = 0; holder && i < a->n_grants; i++) {
        const facct_grant *g = &a->grants[i];
        if (strcmp(g->account, holder) == 0 && g->from_ms <= at_ms && at_ms < g->until_ms)
            return g;
    }
    return NULL;
}

const facct_grant *facct_grant_next(const facct *a, const char *holder, int64_t at_ms)
{
    const facct_grant *best = NULL;
    for (size_t i = 0; holder && i < a->n_grants; i++) {
        const facct_grant *g = &a->grants[i];
        if (strcmp(g->account, holder) == 0 && g->from_ms > at_ms && (!best || g->from_ms < best->from_ms))
            best = g;
    }
    return best;
}

void facct_grant_charge(facct *a, const char *holder, int64_t from_ms, int64_t to_ms, uint64_t charge_ms)
{
    if (!holder || to_ms <= from_ms || charge_ms == 0)
        return;
    unsigned __int128 span = (unsigned __int128)(to_ms - from_ms);
    for (size_t i = 0; i < a->n_grants; i++) {
        facct_grant *g = &a->grants[i];
        if (strcmp(g->account, holder) != 0 || !facct__overlap(g->from_ms, g->until_ms, from_ms, to_ms))
            continue;
        int64_t lo = g->from_ms > from_ms ? g->from_ms : from_ms;
        int64_t hi = g->until_ms < to_ms ? g->until_ms : to_ms;
        g->used_ms += (uint64_t)((unsigned __int128)charge_ms * (uint64_t)(hi - lo) / span);
    }
}

void facct_grant_pb(const facct_grant *g, Jazari__Grant *out)
{
    jazari__grant__init(out);
    out->id = g->id;
    out->account = g->account;
    out->from_ms = g->from_ms;
    out->until_ms = g->until_ms;
    out->gpu_ms = g->gpu_ms;
    out->used_ms = g->used_ms;
    out->by = g->by;
    out->at_ms = g->at_ms;
}

/* --- money -------------------------------------------------------------------- */

uint64_t facct_cost_micro(uint64_t ms, uint64_t price_micro_per_hour)
{
    unsigned __int128 n =
        ((unsigned __int128)ms * price_micro_per_hour + FACCT_MS_PER_HOUR / 2) / FACCT_MS_PER_HOUR;
    /* At the policy's bound (10^9 an hour), a year of 8 GPUs is beyond 64
     * bits: the most there is, not what wraps. */
    return n > UINT64_MAX ? UINT64_MAX : (uint64_t)n;
}

uint64_t facct_minor(uint64_t micro, uint32_t minor_digits)
{
    uint64_t div = 1;
    for (uint32_t i = minor_digits; i < 6; i++)
        div *= 10;
    /* Half up without overflow near UINT64_MAX. */
    return micro / div + (micro % div >= div - micro % div ? 1 : 0);
}

/* --- reservations ------------------------------------------------------------- */

void facct_resv_add(facct *a, Jazari__ResvCharge *c)
{
    if (a->n_resv >= FACCT_RESV_KEPT_MAX) {
        jazari__resv_charge__free_unpacked(a->resv[0], NULL);
        memmove(a->resv, a->resv + 1, (a->n_resv - 1) * sizeof(Jazari__ResvCharge *));
        a->n_resv--;
    }
    a->resv = xrealloc_array(a->resv, a->n_resv + 1, sizeof(Jazari__ResvCharge *));
    a->resv[a->n_resv++] = c;
}

void facct_resv_expire(facct *a, int64_t before_ms)
{
    size_t k = 0;
    while (k < a->n_resv && a->resv[k]->end_ms < before_ms)
        jazari__resv_charge__free_unpacked(a->resv[k++], NULL);
    if (k) {
        memmove(a->resv, a->resv + k, (a->n_resv - k) * sizeof(Jazari__ResvCharge *));
        a->n_resv -= k;
    }
}

/* --- snapshots ------------------------------------------------------------------ */

void facct_snapshot(const facct *a, buf *out)
{
    buf one = BUF_INIT;
    for (size_t i = 0; i < a->n_grants; i++) {
        Jazari__Grant g;
        facct_grant_pb(&a->grants[i], &g);
        buf_reset(&one);
        jazari__grant__pack(&g, buf_extend(&one, jazari__grant__get_packed_size(&g)));
        codec_put_field(out, 17, one.data, one.len);
    }
    for (size_t i = 0; i < a->n_resv; i++) {
        buf_reset(&one);
        jazari__resv_charge__pack(a->resv[i],
                                  buf_extend(&one, jazari__resv_charge__get_packed_size(a->resv[i])));
        codec_put_field(out, 20, one.data, one.len);
    }
    buf_free(&one);
}

void facct_restore(facct *a, const Jazari__Snapshot *s)
{
    facct_free(a);
    if (s->acct)
        facct_policy_set(a, s->acct);
    for (size_t i = 0; i < s->n_grants && a->n_grants < FACCT_GRANTS_MAX; i++) {
        const Jazari__Grant *g = s->grants[i];
        if (g->account && pol_account_valid(g->account) && g->id && g->until_ms > g->from_ms)
            facct__grant_insert(a, g, g->at_ms);
    }
    if (s->next_grant_id > a->next_grant_id)
        a->next_grant_id = s->next_grant_id;
    for (size_t i = 0; i < s->n_resv_charges && i < FACCT_RESV_KEPT_MAX; i++) {
        size_t n = jazari__resv_charge__get_packed_size(s->resv_charges[i]);
        uint8_t *tmp = xcalloc(n ? n : 1, 1);
        jazari__resv_charge__pack(s->resv_charges[i], tmp);
        Jazari__ResvCharge *c = jazari__resv_charge__unpack(NULL, n, tmp);
        free(tmp);
        if (c)
            facct_resv_add(a, c);
    }
}

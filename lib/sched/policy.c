/* policy.c - the policy file: accounts, shares, QoS, priority weights. */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/hostlist.h"
#include "../../common/xmem.h"
#include "../hw/health.h"
#include "dur.h"

void pol_init(pol *p)
{
    memset(p, 0, sizeof *p);
    p->w_age = 1000;
    p->w_fairshare = 10000;
    p->w_qos = 2000;
    p->w_size = 500;
    p->max_age_ms = 7ll * 24 * 3600 * 1000;
    p->half_life_ms = 7ll * 24 * 3600 * 1000;
    p->events_retention_ms = POL_EVENTS_RETENTION_MS;
    p->lost_after_ms = POL_LOST_AFTER_MS;
    snprintf(p->default_account, sizeof p->default_account, "default");
    snprintf(p->qos[0].name, sizeof p->qos[0].name, "normal");
    p->n_qos = 1;
}

/* What pol_init sets, as a constant (no state kept between calls). */
static const pol pol__defaults = {
    .w_age = 1000,
    .w_fairshare = 10000,
    .w_qos = 2000,
    .w_size = 500,
    .max_age_ms = 7ll * 24 * 3600 * 1000,
    .half_life_ms = 7ll * 24 * 3600 * 1000,
    .events_retention_ms = POL_EVENTS_RETENTION_MS,
    .lost_after_ms = POL_LOST_AFTER_MS,
    .default_account = "default",
    .qos = {{.name = "normal"}},
    .n_qos = 1,
};

const pol *pol_default(void)
{
    return &pol__defaults;
}

void pol_free(pol *p)
{
    for (size_t i = 0; i < p->n_accounts; i++) {
        free(p->accounts[i].users);
        free(p->accounts[i].coordinators);
    }
    for (size_t i = 0; i < p->n_tenants; i++) {
        free(p->tenants[i].accounts);
        free(p->tenants[i].admins);
    }
    free(p->tenants);
    p->tenants = NULL;
    p->n_tenants = 0;
    for (size_t i = 0; i < p->n_qos; i++) {
        free(p->qos[i].accounts);
        p->qos[i].accounts = NULL;
    }
    free(p->accounts);
    p->accounts = NULL;
    p->n_accounts = 0;
    for (size_t i = 0; i < p->n_partitions; i++) {
        pol_partition *pt = &p->partitions[i];
        for (size_t k = 0; k < pt->n_names; k++)
            free(pt->names[k]);
        for (size_t k = 0; k < pt->n_globs; k++)
            free(pt->globs[k]);
        free(pt->names);
        free(pt->globs);
        free(pt->sites);
        free(pt->labels);
        free(pt->accounts);
        free(pt->qos);
    }
    free(p->partitions);
    p->partitions = NULL;
    p->n_partitions = 0;
    polsite_free(&p->sites);
}

static bool pol__name_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* 1..levels names joined by '/'. */
static bool pol__path_valid(const char *path, int levels)
{
    size_t len = strlen(path);
    if (len == 0 || len > POL_PATH_MAX)
        return false;
    int n = 1;
    size_t run = 0;
    for (const char *c = path; *c; c++) {
        if (*c == '/') {
            if (run == 0)
                return false;
            n++;
            run = 0;
        } else if (!pol__name_char(*c) || ++run > POL_NAME_MAX || (run == 1 && !isalnum((unsigned char)*c))) {
            return false; /* each name starts with a letter or digit: no "..", no ".hidden" */
        }
    }
    return run > 0 && n <= levels;
}

bool pol_account_valid(const char *path)
{
    return path && pol__path_valid(path, 2);
}

int pol_qos_find(const pol *p, const char *name)
{
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < p->n_qos; i++)
        if (strcmp(p->qos[i].name, name) == 0)
            return (int)i;
    return -1;
}

uint32_t pol_shares(const pol *p, const char *path)
{
    for (size_t i = 0; i < p->n_accounts; i++)
        if (strcmp(p->accounts[i].path, path) == 0)
            return p->accounts[i].shares;
    return 0;
}

static bool pol__listed(const char *list, const char *name, size_t len);

/* The rules of pol_account_allows, for one account's row. */
static int pol__allows_row(const pol *p, const char *path, const char *user)
{
    const pol_account *a = NULL;
    for (size_t i = 0; i < p->n_accounts && !a; i++)
        if (strcmp(p->accounts[i].path, path) == 0)
            a = &p->accounts[i];
    if (!a)
        return -1; /* not configured: says nothing */
    size_t len = strlen(path), ulen = strlen(user);
    /* A row path/user under a project grants (it gives shares; it closes
     * nothing to others). */
    for (size_t i = 0; i < p->n_accounts && strchr(path, '/'); i++) {
        const char *q = p->accounts[i].path;
        if (strncmp(q, path, len) == 0 && q[len] == '/' && strcmp(q + len + 1, user) == 0)
            return 1;
    }
    if (a->users)
        return pol__listed(a->users, user, ulen) ? 1 : 0;
    return -1;
}

bool pol_account_allows(const pol *p, const char *account, const char *user, bool root)
{
    if (root || p->n_accounts == 0)
        return true;
    if (!user)
        return false;
    int own = pol__allows_row(p, account, user);
    if (own == 1)
        return true;
    const char *slash = strchr(account, '/');
    if (!slash)
        return own != 0; /* an institute that does not say who: open */
    char inst[POL_PATH_MAX + 1];
    snprintf(inst, sizeof inst, "%.*s", (int)(slash - account), account);
    int parent = pol__allows_row(p, inst, user);
    /* The institute's users= covers its projects; a project's own users=
     * adds to it; with neither, the project is open. */
    return parent == 1 || (own == -1 && parent == -1);
}

bool pol_account_member(const pol *p, const char *account, const char *user)
{
    if (!user || !account || pol__allows_row(p, account, user) == 1)
        return user && account;
    const char *slash = strchr(account, '/');
    if (!slash)
        return false;
    char inst[POL_PATH_MAX + 1];
    snprintf(inst, sizeof inst, "%.*s", (int)(slash - account), account);
    return pol__allows_row(p, inst, user) == 1;
}

/* Whether the comma list of accounts covers account: it, or its institute. */
static bool pol__covers(const char *list, const char *account)
{
    for (const char *s = list; s && *s;) {
        size_t l = strcspn(s, ",");
        if (strncmp(account, s, l) == 0 && (account[l] == '\0' || account[l] == '/'))
            return true;
        s += l + (s[l] == ',');
    }
    return false;
}

bool pol_account_coordinator(const pol *p, const char *account, const char *user)
{
    if (!user || !account)
        return false;
    size_t ulen = strlen(user);
    for (size_t i = 0; i < p->n_accounts; i++)
        if (p->accounts[i].coordinators && pol__covers(p->accounts[i].path, account) &&
            pol__listed(p->accounts[i].coordinators, user, ulen))
            return true;
    return false;
}

bool pol_tenant_admin(const pol *p, const char *account, const char *user)
{
    if (!user || !account)
        return false;
    size_t ulen = strlen(user);
    for (size_t i = 0; i < p->n_tenants; i++)
        if (pol__listed(p->tenants[i].admins, user, ulen) && pol__covers(p->tenants[i].accounts, account))
            return true;
    return false;
}

bool pol_is_tenant_admin(const pol *p, const char *user)
{
    for (size_t i = 0; user && i < p->n_tenants; i++)
        if (pol__listed(p->tenants[i].admins, user, strlen(user)))
            return true;
    return false;
}

bool pol_qos_allows(const pol *p, int q, const char *account, bool root)
{
    if (root || q < 0 || (size_t)q >= p->n_qos || !p->qos[q].accounts)
        return true;
    return pol__covers(p->qos[q].accounts, account);
}

bool pol_account_known(const pol *p, const char *path)
{
    if (!pol_account_valid(path))
        return false;
    if (strcmp(path, p->default_account) == 0)
        return true;
    /* With accounts configured, only those; else any name. */
    return p->n_accounts == 0 || pol_shares(p, path) > 0;
}

static int pol__number(const char *s, unsigned long max, uint32_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Splits a line into at most max words (in place). */
static size_t pol__words(char *line, char **w, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t && n < max; t = strtok_r(NULL, " \t\r", &save))
        w[n++] = t;
    return n;
}

static int pol__weight(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    static const char *names[] = {"age", "fairshare", "qos", "size"};
    uint32_t *fields[] = {&p->w_age, &p->w_fairshare, &p->w_qos, &p->w_size};
    for (size_t i = 0; n == 3 && i < 4; i++) {
        if (strcmp(w[1], names[i]) != 0)
            continue;
        if (pol__number(w[2], POL_WEIGHT_MAX, fields[i]) == 0)
            return 0;
        snprintf(why, whylen, "weight '%s': a number from 0 to %d", w[2], POL_WEIGHT_MAX);
        return -1;
    }
    snprintf(why, whylen, "write 'weight age|fairshare|qos|size N'");
    return -1;
}

/* A comma list of 1..max paths of `levels` levels, into a copy. */
static char *pol__list(const char *s, int levels)
{
    if (!*s || strlen(s) > 4096)
        return NULL;
    char *copy = xstrdup(s), *save = NULL;
    char *check = xstrdup(s);
    bool ok = check[strlen(check) - 1] != ',';
    for (char *t = strtok_r(check, ",", &save); t && ok; t = strtok_r(NULL, ",", &save))
        ok = pol__path_valid(t, levels);
    free(check);
    if (!ok || strstr(s, ",,") || s[0] == ',') {
        free(copy);
        return NULL;
    }
    return copy;
}

/* Whether the comma list holds name. */
static bool pol__listed(const char *list, const char *name, size_t len)
{
    for (const char *q = list; q && *q;) {
        size_t l = strcspn(q, ",");
        if (l == len && strncmp(q, name, len) == 0)
            return true;
        q += l + (q[l] == ',');
    }
    return false;
}

/* users= and coordinators= of an account line (institutes and projects). */
static int pol__account_lists(char **w, size_t n, char **users, char **coords)
{
    bool user_row = strchr(w[1], '/') != strrchr(w[1], '/');
    for (size_t i = 3; i < n; i++) {
        char **to = strncmp(w[i], "users=", 6) == 0           ? users
                    : strncmp(w[i], "coordinators=", 13) == 0 ? coords
                                                              : NULL;
        if (!to || *to || user_row)
            return -1;
        *to = pol__list(strchr(w[i], '=') + 1, 1);
        if (!*to)
            return -1;
    }
    return 0;
}

static int pol__account(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    uint32_t shares;
    char *users = NULL, *coords = NULL;
    int bad = n < 3 || n > 5 || !pol__path_valid(w[1], 3) ||
              pol__number(w[2], POL_SHARES_MAX, &shares) != 0 || !shares ||
              pol__account_lists(w, n, &users, &coords) != 0;
    if (bad) {
        snprintf(
            why, whylen,
            "write 'account INSTITUTE[/PROJECT[/USER]] SHARES [users=NAME,...] [coordinators=NAME,...]', "
            "names of [A-Za-z0-9._-], shares 1 to %d (users= and coordinators= on institutes and projects, "
            "once each)",
            POL_SHARES_MAX);
    } else if (pol_shares(p, w[1])) {
        snprintf(why, whylen, "account '%s' is listed twice", w[1]);
        bad = 1;
    } else if (strchr(w[1], '/')) {
        char parent[POL_PATH_MAX + 1];
        snprintf(parent, sizeof parent, "%s", w[1]);
        *strrchr(parent, '/') = '\0';
        if (!pol_shares(p, parent)) {
            snprintf(why, whylen, "account '%s' comes before its parent '%s': list the parent first", w[1],
                     parent);
            bad = 1;
        }
    }
    if (!bad && p->n_accounts >= POL_ACCOUNTS_MAX) {
        snprintf(why, whylen, "more than %d accounts", POL_ACCOUNTS_MAX);
        bad = 1;
    }
    if (bad) {
        free(users);
        free(coords);
        return -1;
    }
    if ((p->n_accounts & (p->n_accounts - 1)) == 0) {
        size_t cap = p->n_accounts ? p->n_accounts * 2 : 16;
        pol_account *a = realloc(p->accounts, cap * sizeof *a);
        if (!a)
            abort();
        p->accounts = a;
    }
    pol_account *a = &p->accounts[p->n_accounts++];
    snprintf(a->path, sizeof a->path, "%s", w[1]);
    a->shares = shares;
    a->users = users;
    a->coordinators = coords;
    return 0;
}

static bool pol__all_known(const pol *p, const char *list);

/* tenant NAME accounts=A,B admins=U,V: a startup's accounts, listed above
 * (when the file lists accounts), and who administers them. */
static int pol__tenant(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    char *accounts = NULL, *admins = NULL;
    bool bad = n != 4 || !pol__path_valid(w[1], 1);
    for (size_t i = 2; i < n && !bad; i++) {
        if (strncmp(w[i], "accounts=", 9) == 0 && !accounts)
            bad = !(accounts = pol__list(w[i] + 9, 2)) || !pol__all_known(p, accounts);
        else if (strncmp(w[i], "admins=", 7) == 0 && !admins)
            bad = !(admins = pol__list(w[i] + 7, 1));
        else
            bad = true;
    }
    for (size_t i = 0; i < p->n_tenants && !bad; i++)
        if (strcmp(p->tenants[i].name, w[1]) == 0) {
            snprintf(why, whylen, "tenant %s is defined twice", w[1]);
            free(accounts);
            free(admins);
            return -1;
        }
    if (bad || !accounts || !admins || p->n_tenants >= POL_TENANTS_MAX) {
        free(accounts);
        free(admins);
        snprintf(
            why, whylen,
            "write 'tenant NAME accounts=ACCOUNT,... admins=USER,...' (accounts listed above; at most %d "
            "tenants)",
            POL_TENANTS_MAX);
        return -1;
    }
    if ((p->n_tenants & (p->n_tenants - 1)) == 0) {
        size_t cap = p->n_tenants ? p->n_tenants * 2 : 4;
        pol_tenant *t = realloc(p->tenants, cap * sizeof *t);
        if (!t)
            abort();
        p->tenants = t;
    }
    pol_tenant *t = &p->tenants[p->n_tenants++];
    snprintf(t->name, sizeof t->name, "%s", w[1]);
    t->accounts = accounts;
    t->admins = admins;
    return 0;
}

/* preempt=a,b: QoS listed before this one. */
static int pol__preempts(const pol *p, char *list, uint64_t *out, char *why, size_t whylen)
{
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int q = pol_qos_find(p, t);
        if (q < 0) {
            snprintf(why, whylen, "preempt=%s: no such QoS above this line", t);
            return -1;
        }
        *out |= 1ull << q;
    }
    return 0;
}

/* Whether QoS `from` can reach itself through preempt= lists. Only
 * "normal" (defined before any other) can make one: the others name
 * QoS above them. */
static bool pol__preempt_cycle(const pol *p, size_t from)
{
    uint64_t seen = 0, frontier = p->qos[from].preempts;
    while (frontier & ~seen) {
        uint64_t next = 0;
        for (size_t i = 0; i < POL_QOS_MAX; i++)
            if ((frontier >> i & 1) && !(seen >> i & 1))
                next |= p->qos[i].preempts;
        seen |= frontier;
        frontier = next;
        if (seen >> from & 1)
            return true;
    }
    return (seen >> from & 1) != 0;
}

/* Whether every account of a comma list is listed above (any, when none
 * is listed: the file may not list accounts at all). */
static bool pol__all_known(const pol *p, const char *list)
{
    for (const char *s = list; *s && p->n_accounts;) {
        size_t l = strcspn(s, ",");
        char one[POL_PATH_MAX + 1];
        snprintf(one, sizeof one, "%.*s", (int)(l < POL_PATH_MAX ? l : POL_PATH_MAX), s);
        if (!pol_shares(p, one))
            return false;
        s += l + (s[l] == ',');
    }
    return true;
}

static int pol__qos(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    if (n < 2 || !pol__path_valid(w[1], 1)) {
        snprintf(why, whylen,
                 "write 'qos NAME [priority=N] [preempt=Q,...] [grace=DUR] "
                 "[max_gpus_per_user=N] [preemptible]'");
        return -1;
    }
    int found = pol_qos_find(p, w[1]);
    if (found > 0 || (found == 0 && p->normal_set)) {
        snprintf(why, whylen, "qos %s is defined twice", w[1]);
        return -1;
    }
    if (found < 0 && p->n_qos >= POL_QOS_MAX) {
        snprintf(why, whylen, "more than %d QoS", POL_QOS_MAX);
        return -1;
    }
    pol_qos q;
    memset(&q, 0, sizeof q);
    snprintf(q.name, sizeof q.name, "%s", w[1]);
    q.grace_s = 60;
    for (size_t i = 2; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (eq)
            *eq++ = '\0';
        int64_t ms = 0;
        int bad = 0;
        if (strcmp(w[i], "preemptible") == 0 && !eq)
            q.preemptible = true;
        else if (strcmp(w[i], "priority") == 0 && eq)
            bad = pol__number(eq, POL_WEIGHT_MAX, &q.priority);
        else if (strcmp(w[i], "max_gpus_per_user") == 0 && eq)
            bad = pol__number(eq, 1000000, &q.max_gpus_user);
        else if (strcmp(w[i], "grace") == 0 && eq) {
            bad = dur_ms(eq, &ms) != 0 || ms > 86400000ll;
            q.grace_s = (uint32_t)(ms / 1000);
        } else if (strcmp(w[i], "preempt") == 0 && eq) {
            if (pol__preempts(p, eq, &q.preempts, why, whylen) != 0) {
                free(q.accounts);
                return -1;
            }
        } else if (strcmp(w[i], "accounts") == 0 && eq) {
            if (q.accounts) {
                free(q.accounts);
                snprintf(why, whylen, "qos %s: accounts= given twice", w[1]);
                return -1;
            }
            q.accounts = pol__list(eq, 2);
            bad = !q.accounts || !pol__all_known(p, q.accounts);
        } else {
            free(q.accounts);
            snprintf(why, whylen, "qos %s: unknown attribute '%s'", w[1], w[i]);
            return -1;
        }
        if (bad) {
            free(q.accounts);
            snprintf(why, whylen, "qos %s: %s=%s is not valid", w[1], w[i], eq);
            return -1;
        }
    }
    if (found >= 0 && (q.preempts >> found & 1)) {
        free(q.accounts);
        snprintf(why, whylen, "qos %s may not preempt itself", w[1]);
        return -1;
    }
    size_t at = found >= 0 ? (size_t)found : p->n_qos;
    pol_qos before = p->qos[at];
    p->qos[at] = q;
    if (pol__preempt_cycle(p, at)) {
        free(q.accounts);
        p->qos[at] = before;
        snprintf(why, whylen, "qos %s: its preempt= list makes a cycle (QoS preempting each other)", w[1]);
        return -1;
    }
    if (found < 0)
        p->n_qos++;
    else
        p->normal_set = true;
    return 0;
}

/* --- partitions ------------------------------------------------------------------ */

int pol_time_parse(const char *s, uint64_t *out_s)
{
    if (strcmp(s, "UNLIMITED") == 0 || strcmp(s, "INFINITE") == 0 || strcmp(s, "unlimited") == 0) {
        *out_s = 0;
        return 0;
    }
    size_t len = strlen(s);
    if (len && strchr("smhd", s[len - 1]) && !strchr(s, ':') && !strchr(s, '-')) {
        int64_t ms; /* whole seconds: "500ms" would be 0, unlimited */
        if (dur_ms(s, &ms) != 0 || (len > 2 && strcmp(s + len - 2, "ms") == 0))
            return -1;
        *out_s = (uint64_t)ms / 1000;
        return 0;
    }
    /* Slurm: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
    unsigned long v[4] = {0, 0, 0, 0};
    size_t n = 0;
    bool days = false;
    const char *p = s;
    for (;;) {
        if (!isdigit((unsigned char)*p) || n == 4)
            return -1;
        char *end;
        errno = 0;
        v[n++] = strtoul(p, &end, 10);
        if (errno || v[n - 1] > 3650ul * 24 * 60)
            return -1;
        p = end;
        if (*p == '-' && n == 1 && !days) {
            days = true;
        } else if (*p != ':') {
            break;
        }
        p++;
    }
    if (*p)
        return -1;
    uint64_t t;
    if (days) { /* D-HH[:MM[:SS]] */
        if (n < 2)
            return -1;
        t = v[0] * 86400ull + v[1] * 3600ull + (n > 2 ? v[2] * 60ull : 0) + (n > 3 ? v[3] : 0);
    } else if (n == 1) {
        t = v[0] * 60ull;
    } else if (n == 2) {
        t = v[0] * 60ull + v[1];
    } else if (n == 3) {
        t = v[0] * 3600ull + v[1] * 60ull + v[2];
    } else {
        return -1;
    }
    if (t > 3650ull * 86400)
        return -1;
    *out_s = t;
    return 0;
}

int pol_partition_find(const pol *p, const char *name)
{
    for (size_t i = 0; name && i < p->n_partitions; i++)
        if (strcmp(p->partitions[i].name, name) == 0)
            return (int)i;
    return -1;
}

int pol_partition_default(const pol *p)
{
    for (size_t i = 0; i < p->n_partitions; i++)
        if (p->partitions[i].is_default)
            return (int)i;
    return -1;
}

static int pol__strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the comma lists a and b share a name. */
static bool pol__lists_meet(const char *a, const char *b)
{
    for (const char *s = a; s && *s && b;) {
        size_t l = strcspn(s, ",");
        if (l && pol__listed(b, s, l))
            return true;
        s += l + (s[l] == ',');
    }
    return false;
}

bool pol_partition_has_node(const pol_partition *pt, const char *node, const char *site, const char *labels)
{
    if (!pt->n_names && !pt->n_globs && !pt->sites && !pt->labels)
        return true;
    if (node && pt->n_names && bsearch(&node, pt->names, pt->n_names, sizeof(char *), pol__strcmp_p))
        return true;
    for (size_t i = 0; node && i < pt->n_globs; i++)
        if (hostlist_glob(pt->globs[i], node))
            return true;
    if (pt->sites && site && *site && pol__listed(pt->sites, site, strlen(site)))
        return true;
    return pt->labels && labels && pol__lists_meet(labels, pt->labels);
}

bool pol_partition_allows_account(const pol_partition *pt, const char *account, bool root)
{
    return root || !pt->accounts || (account && pol__covers(pt->accounts, account));
}

bool pol_partition_allows_qos(const pol_partition *pt, const char *qos)
{
    const char *q = qos && *qos ? qos : "normal";
    return !pt->qos || pol__listed(pt->qos, q, strlen(q));
}

/* nodes=HOSTLIST: its names (sorted) and its patterns. */
static int pol__partition_nodes(pol_partition *pt, const char *list, char *why, size_t whylen)
{
    hostlist hl;
    char err[200];
    if (pt->n_names || pt->n_globs) {
        snprintf(why, whylen, "partition %s: nodes= given twice", pt->name);
        return -1;
    }
    int rc = hostlist_expand(list, 0, &hl, err, sizeof err);
    if (rc != 0 || hl.n == 0) {
        snprintf(why, whylen, "partition %s: nodes=%.60s: %s", pt->name, list, rc ? err : "no names");
        hostlist_free(&hl);
        return -1;
    }
    pt->names = xcalloc(hl.n, sizeof(char *));
    pt->globs = xcalloc(hl.n, sizeof(char *));
    for (size_t i = 0; i < hl.n; i++) {
        if (strpbrk(hl.names[i], "*?"))
            pt->globs[pt->n_globs++] = hl.names[i];
        else
            pt->names[pt->n_names++] = hl.names[i];
    }
    free(hl.names); /* the names are the partition's now */
    qsort(pt->names, pt->n_names, sizeof(char *), pol__strcmp_p);
    return 0;
}

/* A comma list of names of [A-Za-z0-9._-] (sites, labels, QoS). */
static char *pol__names(const char *s)
{
    return pol__list(s, 1);
}

static void pol__partition_free(pol_partition *pt)
{
    pol tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.partitions = xcalloc(1, sizeof *pt);
    tmp.partitions[0] = *pt;
    tmp.n_partitions = 1;
    pol_free(&tmp);
}

/* partition NAME [nodes=HOSTLIST] [site=A,B] [label=A,B] [default_time=T]
 * [max_time=T] [accounts=A,B] [qos=A,B] [default=yes|no] */
static int pol__partition(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    if (n < 2 || !pol__path_valid(w[1], 1)) {
        snprintf(
            why, whylen,
            "write 'partition NAME [nodes=HOSTLIST] [site=SITE,...] [label=LABEL,...] [default_time=TIME] "
            "[max_time=TIME] [accounts=ACCOUNT,...] [qos=QOS,...] [default=yes]'");
        return -1;
    }
    if (pol_partition_find(p, w[1]) >= 0) {
        snprintf(why, whylen, "partition %s is defined twice", w[1]);
        return -1;
    }
    if (p->n_partitions >= POL_PARTITIONS_MAX) {
        snprintf(why, whylen, "more than %d partitions", POL_PARTITIONS_MAX);
        return -1;
    }
    pol_partition pt;
    memset(&pt, 0, sizeof pt);
    snprintf(pt.name, sizeof pt.name, "%s", w[1]);
    for (size_t i = 2; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (!eq || eq[1] == '\0') {
            snprintf(why, whylen, "partition %s: '%s': expected NAME=VALUE", pt.name, w[i]);
            goto bad;
        }
        *eq++ = '\0';
        char **list = strcmp(w[i], "site") == 0       ? &pt.sites
                      : strcmp(w[i], "label") == 0    ? &pt.labels
                      : strcmp(w[i], "accounts") == 0 ? &pt.accounts
                      : strcmp(w[i], "qos") == 0      ? &pt.qos
                                                      : NULL;
        if (list) {
            if (*list) {
                snprintf(why, whylen, "partition %s: %s= given twice", pt.name, w[i]);
                goto bad;
            }
            *list = list == &pt.accounts ? pol__list(eq, 2) : pol__names(eq);
            if (!*list) {
                snprintf(why, whylen, "partition %s: %s=%.60s: a comma list of names", pt.name, w[i], eq);
                goto bad;
            }
            if (list == &pt.accounts && !pol__all_known(p, pt.accounts)) {
                snprintf(why, whylen, "partition %s: accounts=%.60s: list the accounts above it", pt.name,
                         eq);
                goto bad;
            }
            for (const char *q = pt.qos; list == &pt.qos && *q;) {
                size_t l = strcspn(q, ",");
                char one[POL_NAME_MAX + 1];
                snprintf(one, sizeof one, "%.*s", (int)(l < POL_NAME_MAX ? l : POL_NAME_MAX), q);
                if (pol_qos_find(p, one) < 0) {
                    snprintf(why, whylen, "partition %s: qos=%s: no such QoS above this line", pt.name, one);
                    goto bad;
                }
                q += l + (q[l] == ',');
            }
        } else if (strcmp(w[i], "nodes") == 0) {
            if (pol__partition_nodes(&pt, eq, why, whylen) != 0)
                goto bad;
        } else if (strcmp(w[i], "default_time") == 0 || strcmp(w[i], "max_time") == 0) {
            uint64_t t;
            bool is_max = w[i][0] == 'm';
            if (pol_time_parse(eq, &t) != 0 || (!is_max && t == 0)) {
                snprintf(why, whylen,
                         "partition %s: %s=%.40s: a time such as 90 (minutes), 1:30:00, 2-00:00:00, 12h%s",
                         pt.name, w[i], eq, is_max ? " or UNLIMITED" : "");
                goto bad;
            }
            *(is_max ? &pt.max_time_s : &pt.default_time_s) = t;
        } else if (strcmp(w[i], "default") == 0 && (strcmp(eq, "yes") == 0 || strcmp(eq, "no") == 0)) {
            pt.is_default = strcmp(eq, "yes") == 0;
        } else {
            snprintf(why, whylen, "partition %s: unknown attribute '%s=%.40s'", pt.name, w[i], eq);
            goto bad;
        }
    }
    if (pt.max_time_s && pt.default_time_s > pt.max_time_s) {
        snprintf(why, whylen, "partition %s: default_time is longer than max_time", pt.name);
        goto bad;
    }
    if (pt.is_default && pol_partition_default(p) >= 0) {
        snprintf(why, whylen, "partition %s: partition %s is the default already (one default=yes)", pt.name,
                 p->partitions[pol_partition_default(p)].name);
        goto bad;
    }
    if ((p->n_partitions & (p->n_partitions - 1)) == 0) {
        pol_partition *a = realloc(p->partitions, (p->n_partitions ? p->n_partitions * 2 : 4) * sizeof *a);
        if (!a)
            abort();
        p->partitions = a;
    }
    p->partitions[p->n_partitions++] = pt;
    return 0;
bad:
    pol__partition_free(&pt);
    return -1;
}

/* --- health ------------------------------------------------------------------------ */

static const char *const pol__actions[] = {"none", "warn", "drain-gpu", "drain-node"};

const char *pol_health_action_name(pol_health_action a)
{
    return (unsigned)a < 4 ? pol__actions[a] : "?";
}

/* NVIDIA's XID guidance (policy.h says why each): condition, action,
 * jobs=requeue, resume=auto. */
static const pol_hrule pol__health_defaults[] = {
    {"xid_48", POL_HEALTH_DRAIN_GPU, true, false, false},
    {"xid_64", POL_HEALTH_DRAIN_GPU, true, false, false},
    {"xid_95", POL_HEALTH_DRAIN_GPU, true, false, false},
    {"xid_74", POL_HEALTH_DRAIN_GPU, true, false, false},
    {"ecc_dbe", POL_HEALTH_DRAIN_GPU, true, false, false},
    {"row_remap_failed", POL_HEALTH_DRAIN_GPU, true, false, false},
    {"xid_79", POL_HEALTH_DRAIN_NODE, true, true, false},
    {"gpu_lost", POL_HEALTH_DRAIN_NODE, true, true, false},
    {"row_remap_pending", POL_HEALTH_DRAIN_GPU, false, false, false},
    {"retired_pages_pending", POL_HEALTH_DRAIN_GPU, false, false, false},
    {"temp_slowdown", POL_HEALTH_DRAIN_GPU, false, true, false},
    {"temp_high", POL_HEALTH_DRAIN_GPU, false, true, false},
    {"health_program", POL_HEALTH_DRAIN_NODE, false, true, false},
    {"xid_63", POL_HEALTH_WARN, false, false, false},
    {"xid_92", POL_HEALTH_WARN, false, false, false},
    {"power_brake", POL_HEALTH_WARN, false, false, false},
    {"xid_13", POL_HEALTH_NONE, false, false, false},
    {"xid_31", POL_HEALTH_NONE, false, false, false},
    {"xid_43", POL_HEALTH_NONE, false, false, false},
    {"xid_45", POL_HEALTH_NONE, false, false, false},
    {"xid_68", POL_HEALTH_NONE, false, false, false},
    {"xid_*", POL_HEALTH_WARN, false, false, false},
};

static const pol_hrule *pol__hfind(const pol_hrule *r, size_t n, const char *condition)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].condition, condition) == 0)
            return &r[i];
    return NULL;
}

pol_hrule pol_health_rule(const pol *p, const char *condition)
{
    size_t nd = sizeof pol__health_defaults / sizeof *pol__health_defaults;
    const char *c = condition ? condition : "";
    const pol_hrule *r = pol__hfind(p->health, p->n_health, c);
    if (!r)
        r = pol__hfind(pol__health_defaults, nd, c);
    if (!r && strncmp(c, "xid_", 4) == 0)
        r = pol__hfind(p->health, p->n_health, "xid_*");
    pol_hrule out = {.condition = "", .action = POL_HEALTH_WARN}; /* as the default xid_* */
    if (r)
        out = *r;
    snprintf(out.condition, sizeof out.condition, "%.*s", POL_HEALTH_NAME_MAX, c);
    return out;
}

/* health CONDITION ACTION [jobs=requeue|finish] [resume=auto|manual] */
static int pol__health(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    static const char usage[] =
        "write 'health CONDITION none|warn|drain-gpu|drain-node [jobs=requeue|finish] "
        "[resume=auto|manual]'";
    if (n < 3 || n > 5) {
        snprintf(why, whylen, "%s", usage);
        return -1;
    }
    if (strcmp(w[1], "xid_*") != 0 && !health_cond_name_valid(w[1])) {
        snprintf(why, whylen,
                 "health '%.40s': not a condition; one of ecc_dbe, row_remap_failed, row_remap_pending, "
                 "retired_pages_pending, temp_slowdown, temp_high, gpu_lost, power_brake, health_program, "
                 "xid_N (N from 1 to 65535) or xid_*",
                 w[1]);
        return -1;
    }
    if (pol__hfind(p->health, p->n_health, w[1])) {
        snprintf(why, whylen, "health %s is given twice: keep one line", w[1]);
        return -1;
    }
    if (p->n_health >= POL_HEALTH_MAX) {
        snprintf(why, whylen, "more than %d health lines", POL_HEALTH_MAX);
        return -1;
    }
    pol_hrule r = {.from_file = true};
    snprintf(r.condition, sizeof r.condition, "%s", w[1]);
    int a = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(w[2], pol__actions[i]) == 0)
            a = i;
    if (a < 0) {
        snprintf(why, whylen, "health %s: action '%.40s': one of none, warn, drain-gpu, drain-node", w[1],
                 w[2]);
        return -1;
    }
    r.action = (pol_health_action)a;
    bool jobs = false, resume = false;
    for (size_t i = 3; i < n; i++) {
        if (strncmp(w[i], "jobs=", 5) == 0 && !jobs &&
            (strcmp(w[i] + 5, "requeue") == 0 || strcmp(w[i] + 5, "finish") == 0)) {
            jobs = true;
            r.requeue = strcmp(w[i] + 5, "requeue") == 0;
        } else if (strncmp(w[i], "resume=", 7) == 0 && !resume &&
                   (strcmp(w[i] + 7, "auto") == 0 || strcmp(w[i] + 7, "manual") == 0)) {
            resume = true;
            r.resume_auto = strcmp(w[i] + 7, "auto") == 0;
        } else {
            snprintf(why, whylen,
                     "health %s: '%.40s': expected jobs=requeue|finish or resume=auto|manual (once each)",
                     w[1], w[i]);
            return -1;
        }
    }
    if ((jobs || resume) && r.action < POL_HEALTH_DRAIN_GPU) {
        snprintf(why, whylen, "health %s %s: jobs= and resume= go with drain-gpu or drain-node only", w[1],
                 w[2]);
        return -1;
    }
    if (r.action == POL_HEALTH_DRAIN_GPU && strcmp(w[1], "health_program") == 0) {
        snprintf(why, whylen,
                 "health health_program: the site's program speaks for the whole node: write "
                 "none, warn or drain-node");
        return -1;
    }
    p->health[p->n_health++] = r;
    return 0;
}

int pol_decimal(const char *s, unsigned places, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    unsigned frac = 0;
    bool point = false, digits = false;
    for (const char *c = s; *c; c++) {
        if (*c == '.' && !point) {
            point = true;
            continue;
        }
        if (*c < '0' || *c > '9' || (point && ++frac > places) || v > UINT64_MAX / 10 - 9)
            return -1;
        v = v * 10 + (uint64_t)(*c - '0');
        digits = true;
    }
    if (!digits || (point && frac == 0))
        return -1;
    for (; frac < places; frac++) {
        if (v > UINT64_MAX / 10)
            return -1;
        v *= 10;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static pol_rate *pol__rate(pol *p, const char *model, char *why, size_t whylen)
{
    bool ok = *model && strlen(model) <= POL_MODEL_MAX;
    for (const char *c = model; ok && *c; c++)
        ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
             *c == '_' || *c == '.' || (*c == '*' && model[1] == '\0');
    if (!ok) {
        snprintf(why, whylen,
                 "'%.80s': a GPU model word such as H100 or A100-SXM4, '*' (any other model) or cpu", model);
        return NULL;
    }
    for (size_t i = 0; i < p->n_rates; i++)
        if (strcasecmp(p->rates[i].model, model) == 0)
            return &p->rates[i];
    if (p->n_rates == POL_RATES_MAX) {
        snprintf(why, whylen, "at most %d models with a rate or a price", POL_RATES_MAX);
        return NULL;
    }
    pol_rate *r = &p->rates[p->n_rates++];
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", model);
    return r;
}

/* currency, rate, price, charge, jobs_keep, history_retention: 1 when
 * the line is not one of them. */
static int pol__acct_line(pol *p, char **w, size_t n, char *why, size_t whylen)
{
    if (strcmp(w[0], "currency") == 0) {
        bool ok = n >= 2 && n <= 3 && strlen(w[1]) >= 1 && strlen(w[1]) <= 8;
        for (const char *c = ok ? w[1] : ""; *c && ok; c++)
            ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z');
        uint64_t digits = 2;
        if (!ok || (n == 3 && pol_decimal(w[2], 0, 6, &digits) != 0)) {
            snprintf(why, whylen,
                     "currency: a code of 1-8 letters (MAD, EUR), then its digits after the point "
                     "(0-6; 2 when not said)");
            return -1;
        }
        snprintf(p->currency, sizeof p->currency, "%s", w[1]);
        p->minor_digits = (uint32_t)digits;
        return 0;
    }
    if (strcmp(w[0], "rate") == 0 || strcmp(w[0], "price") == 0) {
        bool rate = w[0][0] == 'r';
        if (n != 3) {
            snprintf(why, whylen, "%s: %s MODEL %s", w[0], w[0],
                     rate ? "FACTOR (2, 0.5)" : "AMOUNT_AN_HOUR (45.00)");
            return -1;
        }
        pol_rate *r = pol__rate(p, w[1], why, whylen);
        if (!r)
            return -1;
        uint64_t v;
        if (rate ? pol_decimal(w[2], 3, 1000000, &v) != 0
                 : pol_decimal(w[2], 6, 1000000000000000ull, &v) != 0) {
            snprintf(why, whylen, "%s %s '%.40s': %s", w[0], w[1], w[2],
                     rate ? "a factor from 0 to 1000 with at most 3 decimals"
                          : "an amount an hour with at most 6 decimals, at most 10^9");
            return -1;
        }
        if (rate ? r->has_rate : r->has_price) {
            snprintf(why, whylen, "%s %s: said twice", w[0], w[1]);
            return -1;
        }
        if (rate) {
            r->charge_milli = (uint32_t)v;
            r->has_rate = true;
        } else {
            r->price_micro = v;
            r->has_price = true;
        }
        return 0;
    }
    if (strcmp(w[0], "charge") == 0) {
        for (size_t i = 1; i < n; i++) {
            bool yes = strcmp(w[i], "preempted=yes") == 0 || strcmp(w[i], "lost=yes") == 0;
            bool no = strcmp(w[i], "preempted=no") == 0 || strcmp(w[i], "lost=no") == 0;
            if (!yes && !no) {
                snprintf(why, whylen, "charge '%.40s': preempted=yes|no or lost=yes|no", w[i]);
                return -1;
            }
            if (w[i][0] == 'p')
                p->free_preempted = no;
            else
                p->charge_lost = yes;
        }
        return n > 1 ? 0 : (snprintf(why, whylen, "charge: preempted=yes|no lost=yes|no"), -1);
    }
    bool keep = strcmp(w[0], "jobs_keep") == 0;
    if (keep || strcmp(w[0], "history_retention") == 0) {
        int64_t ms, lo = keep ? 60000 : 86400000, hi = (keep ? 366ll : 36600ll) * 86400000;
        if (n != 2 || dur_ms(w[1], &ms) != 0 || ms < lo || ms > hi) {
            snprintf(why, whylen, "%s: a duration from %s, such as %s", w[0],
                     keep ? "1m to 366d" : "1d to 36600d", keep ? "1d" : "1830d");
            return -1;
        }
        *(keep ? &p->jobs_keep_ms : &p->history_retention_ms) = ms;
        return 0;
    }
    return 1;
}

static int pol__line(pol *p, char *line, char *why, size_t whylen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *w[16];
    size_t n = pol__words(line, w, 16);
    if (n == 0)
        return 0;
    if (n == 16) {
        snprintf(why, whylen, "too many words");
        return -1;
    }
    if (strcmp(w[0], "weight") == 0)
        return pol__weight(p, w, n, why, whylen);
    if (strcmp(w[0], "account") == 0)
        return pol__account(p, w, n, why, whylen);
    if (strcmp(w[0], "qos") == 0)
        return pol__qos(p, w, n, why, whylen);
    if (strcmp(w[0], "tenant") == 0)
        return pol__tenant(p, w, n, why, whylen);
    if (strcmp(w[0], "partition") == 0)
        return pol__partition(p, w, n, why, whylen);
    if (strcmp(w[0], "health") == 0)
        return pol__health(p, w, n, why, whylen);
    if (strcmp(w[0], "residency") == 0 && n == 3 && !pol_account_known(p, w[1])) {
        snprintf(why, whylen, "residency %s: no account is named so by an account line above", w[1]);
        return -1;
    }
    int site = polsite_line(&p->sites, w, n, why, whylen);
    if (site <= 0)
        return site;
    int acct = pol__acct_line(p, w, n, why, whylen);
    if (acct <= 0)
        return acct;
    if (strcmp(w[0], "burnin") == 0) {
        if (n != 2 || (strcmp(w[1], "on-join") != 0 && strcmp(w[1], "manual") != 0)) {
            snprintf(why, whylen,
                     "burnin: on-join (a GPU node that joins is drained until it passes the "
                     "burn-in) or manual (only jz node check runs it)");
            return -1;
        }
        p->burnin_on_join = strcmp(w[1], "on-join") == 0;
        return 0;
    }
    if (strcmp(w[0], "span_sites") == 0) {
        if (n != 2 || (strcmp(w[1], "yes") != 0 && strcmp(w[1], "no") != 0)) {
            snprintf(why, whylen,
                     "span_sites: yes (a gang no one site can hold may span sites) or no (the default: it "
                     "waits for one site, unless it asks --span-sites)");
            return -1;
        }
        p->span_sites = strcmp(w[1], "yes") == 0;
        return 0;
    }
    if (strcmp(w[0], "lost_after") == 0) {
        int64_t ms;
        if (n != 2 || dur_ms(w[1], &ms) != 0 || ms > POL_LOST_AFTER_MAX_MS) {
            snprintf(why, whylen,
                     "lost_after: how long an unreachable node keeps its jobs before they are requeued, "
                     "from 0 (at once) to 30d, such as 5m");
            return -1;
        }
        p->lost_after_ms = ms;
        return 0;
    }
    if (strcmp(w[0], "privacy") == 0 && n == 2 &&
        (strcmp(w[1], "open") == 0 || strcmp(w[1], "private") == 0)) {
        p->open = strcmp(w[1], "open") == 0;
        return 0;
    }
    if ((strcmp(w[0], "max_age") == 0 || strcmp(w[0], "half_life") == 0) && n == 2) {
        int64_t ms;
        if (dur_ms(w[1], &ms) != 0 || ms < 1000) {
            snprintf(why, whylen, "%s '%s': a duration such as 7d, 12h, 90m (at least 1s)", w[0], w[1]);
            return -1;
        }
        *(w[0][0] == 'm' ? &p->max_age_ms : &p->half_life_ms) = ms;
        return 0;
    }
    if (strcmp(w[0], "events_retention") == 0 && n == 2) {
        int64_t ms;
        if (dur_ms(w[1], &ms) != 0 || ms < 60000 || ms > 3650ll * 24 * 3600 * 1000) {
            snprintf(why, whylen, "events_retention '%s': a duration from 1m to 3650d, such as 30d", w[1]);
            return -1;
        }
        p->events_retention_ms = ms;
        return 0;
    }
    if (strcmp(w[0], "default_account") == 0 && n == 2 && pol_account_valid(w[1])) {
        snprintf(p->default_account, sizeof p->default_account, "%s", w[1]);
        return 0;
    }
    snprintf(why, whylen,
             "'%s': expected weight, max_age, half_life, events_retention, default_account, account, qos, "
             "tenant, partition, health, burnin, privacy (open|private), currency, rate, price, charge, "
             "jobs_keep, history_retention, site, residency, dataset, latency, span_sites or lost_after "
             "lines",
             w[0]);
    return -1;
}

int pol_parse(pol *p, const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    if (len > POL_FILE_MAX) {
        snprintf(err, errlen, "%s: larger than %u bytes", name, POL_FILE_MAX);
        return -1;
    }
    size_t lineno = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        lineno++;
        char line[1024], why[256];
        if (n >= sizeof line) {
            snprintf(err, errlen, "%s:%zu: line longer than %zu bytes", name, lineno, sizeof line - 1);
            return -1;
        }
        memcpy(line, text + at, n);
        line[n] = '\0';
        if (memchr(line, '\0', n)) {
            snprintf(err, errlen, "%s:%zu: a NUL byte: not a text file", name, lineno);
            return -1;
        }
        if (pol__line(p, line, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%zu: %s", name, lineno, why);
            return -1;
        }
        at += n + 1;
    }
    return 0;
}

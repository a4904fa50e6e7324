/* polsite.c - the policy's sites, residency and datasets (polsite.h). */
#include "polsite.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"
#include "dur.h"

void polsite_free(polsite *s)
{
    for (size_t i = 0; i < s->n_sites; i++)
        free(s->sites[i]);
    free(s->sites);
    for (size_t i = 0; i < s->n_residency; i++) {
        free(s->residency[i].name);
        free(s->residency[i].sites);
    }
    free(s->residency);
    for (size_t i = 0; i < s->n_datasets; i++) {
        free(s->datasets[i].name);
        free(s->datasets[i].sites);
    }
    free(s->datasets);
    free(s->rtt);
    memset(s, 0, sizeof *s);
}

/* A site's or a dataset's name: 1-63 of [A-Za-z0-9._-], starting with a
 * letter or digit (as a node's `site` setting). */
static bool polsite__name(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* An account path: 1-3 names joined by '/'. */
static bool polsite__account(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 191)
        return false;
    int levels = 0;
    for (const char *p = s; *p;) {
        size_t l = strcspn(p, "/");
        if (!polsite__name(p, l) || ++levels > 3)
            return false;
        p += l;
        if (*p == '/' && !*++p)
            return false;
    }
    return true;
}

bool polsite_in(const char *list, const char *site)
{
    if (!list)
        return true;
    if (!site || !*site)
        return false;
    size_t len = strlen(site);
    for (const char *q = list; *q;) {
        size_t l = strcspn(q, ",");
        if (l == len && strncmp(q, site, len) == 0)
            return true;
        q += l + (q[l] == ',');
    }
    return false;
}

int polsite_index(const polsite *s, const char *site)
{
    for (size_t i = 0; site && i < s->n_sites; i++)
        if (strcmp(s->sites[i], site) == 0)
            return (int)i;
    return -1;
}

bool polsite_declared(const polsite *s, const char *site)
{
    return polsite_index(s, site) >= 0;
}

uint32_t polsite_rtt(const polsite *s, int a, int b)
{
    if (a < 0 || b < 0 || (size_t)a >= s->n_sites || (size_t)b >= s->n_sites)
        return POLSITE_RTT_UNKNOWN;
    if (a == b)
        return 0;
    if ((size_t)a >= s->n_rtt || (size_t)b >= s->n_rtt)
        return POLSITE_RTT_UNKNOWN;
    return s->rtt[(size_t)a * s->n_rtt + (size_t)b];
}

/* The declared sites, ", "-joined, for a message. */
static void polsite__declared_list(const polsite *s, char *out, size_t outlen)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_sites && at < outlen; i++) {
        int k = snprintf(out + at, outlen - at, "%s%s", i ? ", " : "", s->sites[i]);
        at += k > 0 ? (size_t)k : 0;
    }
}

/* A comma list of declared sites without repeats (what = the line's
 * keyword and first argument, for the message). */
static int polsite__sites(const polsite *s, const char *list, const char *what, char *why, size_t whylen)
{
    if (!*list || list[strlen(list) - 1] == ',' || strlen(list) > 4096) {
        snprintf(why, whylen, "%s: expected a comma list of sites, such as casa,rabat", what);
        return -1;
    }
    for (const char *q = list; *q;) {
        size_t l = strcspn(q, ",");
        char site[64];
        if (!polsite__name(q, l)) {
            snprintf(why, whylen, "%s: '%.*s' is not a site's name (1-63 of A-Z a-z 0-9 . _ -)", what,
                     (int)(l < 64 ? l : 64), q);
            return -1;
        }
        snprintf(site, sizeof site, "%.*s", (int)l, q);
        if (!polsite_declared(s, site)) {
            char known[512];
            polsite__declared_list(s, known, sizeof known);
            snprintf(why, whylen, "%s: site '%s' is not declared by a `site` line above (%s%s)", what, site,
                     s->n_sites ? "declared: " : "none is", known);
            return -1;
        }
        for (const char *r = list; r < q;) {
            size_t m = strcspn(r, ",");
            if (m == l && strncmp(r, q, l) == 0) {
                snprintf(why, whylen, "%s: site '%s' is named twice", what, site);
                return -1;
            }
            r += m + 1;
        }
        q += l + (q[l] == ',');
    }
    return 0;
}

/* Whether every site of list a is in list b. */
static bool polsite__within(const char *a, const char *b)
{
    for (const char *q = a; *q;) {
        size_t l = strcspn(q, ",");
        char site[64];
        snprintf(site, sizeof site, "%.*s", (int)(l < 63 ? l : 63), q);
        if (!polsite_in(b, site))
            return false;
        q += l + (q[l] == ',');
    }
    return true;
}

/* Whether account path a is b or one of b's ancestors. */
static bool polsite__covers(const char *a, const char *b)
{
    size_t l = strlen(a);
    return strncmp(a, b, l) == 0 && (b[l] == '\0' || b[l] == '/');
}

static void polsite__add(polsite_rule **rules, size_t *n, const char *name, const char *sites)
{
    if ((*n & (*n - 1)) == 0) /* 0, 1, 2, 4...: grow to the next power of two */
        *rules = xrealloc_array(*rules, *n ? *n * 2 : 1, sizeof(polsite_rule));
    (*rules)[*n].name = xstrdup(name);
    (*rules)[*n].sites = xstrdup(sites);
    (*n)++;
}

static int polsite__site(polsite *s, char **w, size_t n, char *why, size_t whylen)
{
    if (n != 2 || !polsite__name(w[1], strlen(w[1]))) {
        snprintf(why, whylen, "write 'site NAME' (1-63 of A-Z a-z 0-9 . _ -), one site a line");
        return -1;
    }
    if (polsite_declared(s, w[1])) {
        snprintf(why, whylen, "site %s is declared twice", w[1]);
        return -1;
    }
    if (s->n_sites >= POLSITE_SITES_MAX) {
        snprintf(why, whylen, "more than %d sites", POLSITE_SITES_MAX);
        return -1;
    }
    if ((s->n_sites & (s->n_sites - 1)) == 0)
        s->sites = xrealloc_array(s->sites, s->n_sites ? s->n_sites * 2 : 1, sizeof(char *));
    s->sites[s->n_sites++] = xstrdup(w[1]);
    return 0;
}

static int polsite__residency(polsite *s, char **w, size_t n, char *why, size_t whylen)
{
    if (n != 3 || !polsite__account(w[1])) {
        snprintf(why, whylen,
                 "write 'residency ACCOUNT SITE,...': the account's jobs run and its output is "
                 "relayed at those sites only");
        return -1;
    }
    char what[256];
    snprintf(what, sizeof what, "residency %s", w[1]);
    if (polsite__sites(s, w[2], what, why, whylen) != 0)
        return -1;
    for (size_t i = 0; i < s->n_residency; i++) {
        const polsite_rule *r = &s->residency[i];
        if (strcmp(r->name, w[1]) == 0) {
            snprintf(why, whylen, "%s: the account has a residency rule already", what);
            return -1;
        }
        /* A project narrows its institute's rule, never widens it. */
        if (polsite__covers(r->name, w[1]) && !polsite__within(w[2], r->sites)) {
            snprintf(why, whylen, "%s: %s binds %s to %s; a rule below it may only narrow that", what,
                     r->name, w[1], r->sites);
            return -1;
        }
        if (polsite__covers(w[1], r->name) && !polsite__within(r->sites, w[2])) {
            snprintf(why, whylen, "%s: %s (above) is bound to %s, outside %s", what, r->name, r->sites, w[2]);
            return -1;
        }
    }
    if (s->n_residency >= POLSITE_RULES_MAX) {
        snprintf(why, whylen, "more than %d residency rules", POLSITE_RULES_MAX);
        return -1;
    }
    polsite__add(&s->residency, &s->n_residency, w[1], w[2]);
    return 0;
}

static int polsite__dataset(polsite *s, char **w, size_t n, char *why, size_t whylen)
{
    if (n != 3 || !polsite__name(w[1], strlen(w[1]))) {
        snprintf(why, whylen,
                 "write 'dataset NAME SITE,...' (the sites that hold it; NAME 1-63 of A-Z a-z "
                 "0-9 . _ -)");
        return -1;
    }
    char what[128];
    snprintf(what, sizeof what, "dataset %s", w[1]);
    if (polsite__sites(s, w[2], what, why, whylen) != 0)
        return -1;
    if (polsite_dataset(s, w[1])) {
        snprintf(why, whylen, "%s is declared twice", what);
        return -1;
    }
    if (s->n_datasets >= POLSITE_DATASETS_MAX) {
        snprintf(why, whylen, "more than %d datasets", POLSITE_DATASETS_MAX);
        return -1;
    }
    polsite__add(&s->datasets, &s->n_datasets, w[1], w[2]);
    return 0;
}

/* The matrix grown to the sites declared so far, the known pairs kept. */
static void polsite__rtt_grow(polsite *s)
{
    size_t n = s->n_sites;
    uint32_t *m = xcalloc(n * n, sizeof *m);
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++)
            m[a * n + b] = a < s->n_rtt && b < s->n_rtt ? s->rtt[a * s->n_rtt + b]
                           : a == b                     ? 0
                                                        : POLSITE_RTT_UNKNOWN;
    free(s->rtt);
    s->rtt = m;
    s->n_rtt = n;
}

static int polsite__latency(polsite *s, char **w, size_t n, char *why, size_t whylen)
{
    int64_t ms = 0;
    if (n != 4 || strchr(w[1], ',') || strchr(w[2], ',') || dur_ms(w[3], &ms) != 0 ||
        ms > POLSITE_RTT_MAX_MS) {
        snprintf(why, whylen,
                 "write 'latency SITE SITE DURATION': the round trip between two declared sites, "
                 "from 0 to 60s, such as 'latency casa rabat 30ms'");
        return -1;
    }
    char what[160];
    snprintf(what, sizeof what, "latency %.63s %.63s", w[1], w[2]);
    if (polsite__sites(s, w[1], what, why, whylen) != 0 || polsite__sites(s, w[2], what, why, whylen) != 0)
        return -1;
    int a = polsite_index(s, w[1]), b = polsite_index(s, w[2]);
    if (a == b) {
        snprintf(why, whylen, "%s: a site with itself; name two different sites", what);
        return -1;
    }
    if (polsite_rtt(s, a, b) != POLSITE_RTT_UNKNOWN) {
        snprintf(why, whylen, "%s: the pair has a latency line already (%ums); keep one", what,
                 polsite_rtt(s, a, b));
        return -1;
    }
    if (s->n_rtt < s->n_sites)
        polsite__rtt_grow(s);
    s->rtt[(size_t)a * s->n_rtt + (size_t)b] = s->rtt[(size_t)b * s->n_rtt + (size_t)a] = (uint32_t)ms;
    return 0;
}

int polsite_line(polsite *s, char **w, size_t n, char *why, size_t whylen)
{
    if (strcmp(w[0], "site") == 0)
        return polsite__site(s, w, n, why, whylen);
    if (strcmp(w[0], "residency") == 0)
        return polsite__residency(s, w, n, why, whylen);
    if (strcmp(w[0], "dataset") == 0)
        return polsite__dataset(s, w, n, why, whylen);
    if (strcmp(w[0], "latency") == 0)
        return polsite__latency(s, w, n, why, whylen);
    return 1;
}

const char *polsite_residency(const polsite *s, const char *account)
{
    const polsite_rule *best = NULL;
    for (size_t i = 0; account && i < s->n_residency; i++) {
        const polsite_rule *r = &s->residency[i];
        if (polsite__covers(r->name, account) && (!best || strlen(r->name) > strlen(best->name)))
            best = r;
    }
    return best ? best->sites : NULL;
}

const char *polsite_dataset(const polsite *s, const char *name)
{
    for (size_t i = 0; name && i < s->n_datasets; i++)
        if (strcmp(s->datasets[i].name, name) == 0)
            return s->datasets[i].sites;
    return NULL;
}

void polsite_dataset_names(const polsite *s, char *out, size_t outlen)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_datasets && at < outlen; i++) {
        int k = snprintf(out + at, outlen - at, "%s%s", i ? ", " : "", s->datasets[i].name);
        at += k > 0 ? (size_t)k : 0;
    }
}

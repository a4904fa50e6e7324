/* hostlist.c - Slurm host lists: expansion and compression. */
#include "hostlist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

/* --- expansion ------------------------------------------------------------------ */

/* One A-B of a bracket. */
typedef struct hostlist__range {
    unsigned long long lo, hi;
    int width; /* digits to print, zero-padded; 0: as they come */
} hostlist__range;

/* A bracket's ranges; brackets of one name, at most this many. */
#define HOSTLIST__BRACKETS_MAX 8
#define HOSTLIST__RANGES_MAX 4096

typedef struct hostlist__expander {
    hostlist *out;
    size_t max;
    char *err;
    size_t errlen;
} hostlist__expander;

static bool hostlist__digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number of at most HOSTLIST_DIGITS_MAX digits at *p; its digits in *len. */
static int hostlist__number(const char **p, const char *end, unsigned long long *v, size_t *len)
{
    const char *s = *p;
    *v = 0;
    while (s < end && hostlist__digit(*s) && s - *p < HOSTLIST_DIGITS_MAX)
        *v = *v * 10 + (unsigned long long)(*s++ - '0');
    *len = (size_t)(s - *p);
    if (*len == 0 || (s < end && hostlist__digit(*s)))
        return -1;
    *p = s;
    return 0;
}

/* The ranges of the bracket from open + 1 to close, into r (room for
 * max); their count in *n, how many numbers they name in *count. */
static int hostlist__bracket(const char *open, const char *close, hostlist__range *r, size_t max, size_t *n,
                             unsigned long long *count, char *why, size_t whylen)
{
    const char *p = open + 1;
    *n = 0;
    *count = 0;
    while (p < close) {
        unsigned long long lo, hi;
        size_t lo_len, hi_len;
        const char *at = p;
        if (hostlist__number(&p, close, &lo, &lo_len) != 0) {
            snprintf(why, whylen, "'%.*s': expected a number of at most %d digits", (int)(close - at), at,
                     HOSTLIST_DIGITS_MAX);
            return -1;
        }
        hi = lo;
        if (p < close && *p == '-') {
            p++;
            if (hostlist__number(&p, close, &hi, &hi_len) != 0) {
                snprintf(why, whylen, "'%.*s': expected a number after '-'", (int)(close - at), at);
                return -1;
            }
            if (hi < lo) {
                snprintf(why, whylen, "range %llu-%llu goes down", lo, hi);
                return -1;
            }
        }
        if (p < close && *p != ',') {
            snprintf(why, whylen, "'%c' in a range list (digits, '-' and ',' only)", *p);
            return -1;
        }
        if (p < close)
            p++;
        if (p == close && close[-1] == ',') {
            snprintf(why, whylen, "a range list ends with ','");
            return -1;
        }
        if (*n == max) {
            snprintf(why, whylen, "more than %zu ranges in one bracket", max);
            return -1;
        }
        r[*n].lo = lo;
        r[*n].hi = hi;
        r[*n].width = lo_len > 1 && *at == '0' ? (int)lo_len : 0;
        (*n)++;
        unsigned long long add = hi - lo + 1;
        *count = *count + add < *count ? UINT64_MAX : *count + add;
    }
    if (*n == 0) {
        snprintf(why, whylen, "an empty bracket []");
        return -1;
    }
    return 0;
}

/* Emits prefix (len bytes, which hold what came before) and every name of
 * t..end, bracket by bracket. */
static int hostlist__emit(hostlist__expander *x, char *name, size_t len, const char *t, const char *end,
                          const hostlist__range *const *ranges, const size_t *n_ranges, size_t depth)
{
    const char *open = memchr(t, '[', (size_t)(end - t));
    size_t plain = (size_t)((open ? open : end) - t);
    if (len + plain > HOSTLIST_NAME_MAX)
        goto too_long;
    memcpy(name + len, t, plain);
    len += plain;
    if (!open) {
        name[len] = '\0';
        if (x->out->n >= x->max) {
            snprintf(x->err, x->errlen, "more than %zu names", x->max);
            return -1;
        }
        if ((x->out->n & (x->out->n - 1)) == 0) {
            char **p = realloc(x->out->names, (x->out->n ? x->out->n * 2 : 8) * sizeof(char *));
            if (!p)
                abort();
            x->out->names = p;
        }
        x->out->names[x->out->n++] = xstrdup(name);
        return 0;
    }
    const char *close = memchr(open, ']', (size_t)(end - open));
    for (size_t i = 0; i < n_ranges[depth]; i++) {
        const hostlist__range *r = &ranges[depth][i];
        for (unsigned long long v = r->lo;; v++) {
            char num[32];
            int k = snprintf(num, sizeof num, "%0*llu", r->width, v);
            if (len + (size_t)k > HOSTLIST_NAME_MAX)
                goto too_long;
            memcpy(name + len, num, (size_t)k);
            if (hostlist__emit(x, name, len + (size_t)k, close + 1, end, ranges, n_ranges, depth + 1) != 0)
                return -1;
            if (v == r->hi)
                break;
        }
    }
    return 0;
too_long:
    snprintf(x->err, x->errlen, "a name longer than %d bytes", HOSTLIST_NAME_MAX);
    return -1;
}

/* One name of the list, t..end: checked whole, then expanded. */
static int hostlist__token(hostlist__expander *x, const char *t, const char *end)
{
    static hostlist__range ranges[HOSTLIST__BRACKETS_MAX][HOSTLIST__RANGES_MAX];
    const hostlist__range *rp[HOSTLIST__BRACKETS_MAX];
    size_t n_ranges[HOSTLIST__BRACKETS_MAX] = {0};
    size_t depth = 0;
    unsigned long long total = 1;
    char why[160];
    for (const char *p = t; p < end; p++) {
        if (*p == ']') {
            snprintf(why, sizeof why, "']' without '['");
            goto bad;
        }
        if (*p != '[')
            continue;
        const char *close = p + 1;
        while (close < end && *close != ']' && *close != '[')
            close++;
        if (close == end || *close == '[') {
            snprintf(why, sizeof why, "'[' without its ']'");
            goto bad;
        }
        if (depth == HOSTLIST__BRACKETS_MAX) {
            snprintf(why, sizeof why, "more than %d brackets in one name", HOSTLIST__BRACKETS_MAX);
            goto bad;
        }
        unsigned long long count;
        if (hostlist__bracket(p, close, ranges[depth], HOSTLIST__RANGES_MAX, &n_ranges[depth], &count, why,
                              sizeof why) != 0)
            goto bad;
        rp[depth] = ranges[depth];
        depth++;
        total = count && total > UINT64_MAX / count ? UINT64_MAX : total * count;
        p = close;
    }
    if (total > x->max - x->out->n) {
        snprintf(x->err, x->errlen, "'%.*s%s' names more than %zu hosts", (int)(end - t > 60 ? 60 : end - t), t,
                 end - t > 60 ? "..." : "", x->max);
        return -1;
    }
    char name[HOSTLIST_NAME_MAX + 1];
    return hostlist__emit(x, name, 0, t, end, rp, n_ranges, 0);
bad:
    snprintf(x->err, x->errlen, "'%.*s%s': %s", (int)(end - t > 60 ? 60 : end - t), t, end - t > 60 ? "..." : "",
             why);
    return -1;
}

static bool hostlist__sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n';
}

int hostlist_expand(const char *s, size_t max, hostlist *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    hostlist__expander x = {out, max && max <= HOSTLIST_NAMES_MAX ? max : HOSTLIST_NAMES_MAX, err, errlen};
    size_t len = strnlen(s, HOSTLIST_INPUT_MAX + 1);
    if (len > HOSTLIST_INPUT_MAX) {
        snprintf(err, errlen, "a host list longer than %d bytes", HOSTLIST_INPUT_MAX);
        return -1;
    }
    const char *p = s, *end = s + len;
    while (p < end) {
        if (hostlist__sep(*p)) {
            if (*p == ',' && (p == s || p[-1] == ',' || p + 1 == end)) {
                snprintf(err, errlen, "an empty name at byte %zu (',' at the start, the end, or twice)",
                         (size_t)(p - s) + 1);
                goto fail;
            }
            p++;
            continue;
        }
        const char *t = p;
        int depth = 0;
        while (p < end && (depth || !hostlist__sep(*p))) {
            depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
            p++;
        }
        if ((unsigned char)*t < 0x21) {
            snprintf(err, errlen, "a control character at byte %zu", (size_t)(t - s) + 1);
            goto fail;
        }
        for (const char *c = t; c < p; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                snprintf(err, errlen, "a control character at byte %zu", (size_t)(c - s) + 1);
                goto fail;
            }
        }
        if (hostlist__token(&x, t, p) != 0)
            goto fail;
    }
    return 0;
fail:
    hostlist_free(out);
    return -1;
}

void hostlist_free(hostlist *hl)
{
    for (size_t i = 0; i < hl->n; i++)
        free(hl->names[i]);
    free(hl->names);
    memset(hl, 0, sizeof *hl);
}

/* --- compression ----------------------------------------------------------------- */

/* A name as a prefix and its number (when it ends in 1 to
 * HOSTLIST_DIGITS_MAX digits). */
typedef struct hostlist__name {
    const char *name;
    size_t prefix; /* its length */
    bool numbered;
    unsigned long long num;
    int digits;
    bool padded; /* a leading zero: only numbers of its width go with it */
} hostlist__name;

static void hostlist__split(const char *s, hostlist__name *h)
{
    size_t len = strlen(s), d = 0;
    while (d < len && hostlist__digit(s[len - 1 - d]))
        d++;
    h->name = s;
    h->numbered = d > 0 && d <= HOSTLIST_DIGITS_MAX;
    h->prefix = h->numbered ? len - d : len;
    h->digits = (int)d;
    h->num = 0;
    for (size_t i = h->prefix; h->numbered && i < len; i++)
        h->num = h->num * 10 + (unsigned long long)(s[i] - '0');
    h->padded = h->numbered && d > 1 && s[h->prefix] == '0';
}

static int hostlist__cmp(const void *a, const void *b)
{
    const hostlist__name *x = a, *y = b;
    size_t l = x->prefix < y->prefix ? x->prefix : y->prefix;
    int c = memcmp(x->name, y->name, l);
    if (c)
        return c;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    if (x->numbered != y->numbered)
        return x->numbered ? 1 : -1;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return x->digits < y->digits ? -1 : x->digits > y->digits;
}

/* A run of consecutive numbers under one prefix. */
typedef struct hostlist__run {
    const hostlist__name *first;
    unsigned long long lo, hi;
    int width; /* 0: numbers as they are; else zero-padded to it */
    int lo_digits, hi_digits;
} hostlist__run;

static int hostlist__ndigits(unsigned long long v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Whether h continues run r: the same prefix, the next number, and widths
 * that agree (Slurm's _width_equiv). */
static bool hostlist__continues(hostlist__run *r, const hostlist__name *h)
{
    const hostlist__name *f = r->first;
    if (!f->numbered || !h->numbered || f->prefix != h->prefix || memcmp(f->name, h->name, f->prefix) != 0 ||
        h->num != r->hi + 1)
        return false;
    if (r->width) /* padded: numbers of that width only */
        return h->digits == r->width;
    if (!h->padded)
        return true;
    /* A padded number joins an unpadded run whose numbers all have its width. */
    if (r->lo_digits == h->digits && r->hi_digits == h->digits) {
        r->width = h->digits;
        return true;
    }
    return false;
}

static void hostlist__put_run(const hostlist__run *r, buf *out)
{
    if (r->lo == r->hi)
        buf_printf(out, "%0*llu", r->width, r->lo);
    else
        buf_printf(out, "%0*llu-%0*llu", r->width, r->lo, r->width, r->hi);
}

static bool hostlist__same_prefix(const hostlist__run *a, const hostlist__run *b)
{
    return a->first->numbered && b->first->numbered && a->first->prefix == b->first->prefix &&
           memcmp(a->first->name, b->first->name, a->first->prefix) == 0;
}

void hostlist_compress(const char *const *names, size_t n, bool sort, buf *out)
{
    if (n == 0)
        return;
    hostlist__name *h = xcalloc(n, sizeof *h);
    for (size_t i = 0; i < n; i++)
        hostlist__split(names[i], &h[i]);
    if (sort) {
        qsort(h, n, sizeof *h, hostlist__cmp);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (k == 0 || strcmp(h[k - 1].name, h[i].name) != 0)
                h[k++] = h[i];
        n = k;
    }
    hostlist__run *runs = xcalloc(n, sizeof *runs);
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        if (nr && hostlist__continues(&runs[nr - 1], &h[i])) {
            runs[nr - 1].hi = h[i].num;
            runs[nr - 1].hi_digits = hostlist__ndigits(h[i].num);
            continue;
        }
        hostlist__run *r = &runs[nr++];
        r->first = &h[i];
        r->lo = r->hi = h[i].num;
        r->width = h[i].padded ? h[i].digits : 0;
        r->lo_digits = r->hi_digits = hostlist__ndigits(h[i].num);
    }
    /* Runs of one prefix next to each other share a bracket. */
    for (size_t i = 0; i < nr;) {
        const hostlist__run *r = &runs[i];
        if (i)
            buf_putc(out, ',');
        if (!r->first->numbered) {
            buf_puts(out, r->first->name);
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < nr && hostlist__same_prefix(r, &runs[j]))
            j++;
        buf_append(out, r->first->name, r->first->prefix);
        bool bracket = j - i > 1 || r->lo != r->hi;
        if (bracket)
            buf_putc(out, '[');
        for (size_t k = i; k < j; k++) {
            if (k > i)
                buf_putc(out, ',');
            hostlist__put_run(&runs[k], out);
        }
        if (bracket)
            buf_putc(out, ']');
        i = j;
    }
    free(runs);
    free(h);
}

bool hostlist_glob(const char *pattern, const char *name)
{
    const char *star = NULL, *resume = NULL;
    while (*name) {
        if (*pattern == '*') {
            star = pattern++;
            resume = name;
        } else if (*pattern == '?' || *pattern == *name) {
            pattern++;
            name++;
        } else if (star) {
            pattern = star + 1;
            name = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

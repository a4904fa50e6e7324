/* prom.c - the Prometheus text exposition format (prom.h). */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Escapes backslash, newline and, in label values (quote), the double
 * quote; a byte that is not UTF-8 becomes U+FFFD. */
static void prom__escape(buf *b, const char *s, int quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left) {
        uint32_t cp;
        size_t n = utf8_seq(p, left, &cp);
        if (n == 0) {
            buf_puts(b, "\xef\xbf\xbd");
            n = 1;
        } else if (*p == '\\') {
            buf_puts(b, "\\\\");
        } else if (*p == '\n') {
            buf_puts(b, "\\n");
        } else if (*p == '"' && quote) {
            buf_puts(b, "\\\"");
        } else {
            buf_append(b, p, n);
        }
        p += n;
        left -= n;
    }
}

void prom_escape_value(buf *b, const char *s)
{
    prom__escape(b, s, 1);
}

void prom_family(buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s ", name);
    prom__escape(b, help, 0);
    buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void prom__labels(buf *b, const char *name, const char *const *labels)
{
    buf_puts(b, name);
    if (!labels || !labels[0])
        return;
    buf_putc(b, '{');
    for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
        buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
        prom_escape_value(b, labels[i + 1]);
        buf_putc(b, '"');
    }
    buf_putc(b, '}');
}

void prom_u64(buf *b, const char *name, const char *const *labels, uint64_t v)
{
    prom__labels(b, name, labels);
    buf_printf(b, " %" PRIu64 "\n", v);
}

/* As Go's ParseFloat reads them: the shortest of %.15g to %.17g that
 * reads back as v (0.005, not 0.0050000000000000001). */
static void prom__double(buf *b, double v)
{
    if (isnan(v)) {
        buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char s[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    buf_puts(b, s);
}

void prom_f64(buf *b, const char *name, const char *const *labels, double v)
{
    prom__labels(b, name, labels);
    buf_putc(b, ' ');
    prom__double(b, v);
    buf_putc(b, '\n');
}

void prom_histogram(buf *b, const char *name, const double *bounds, const uint64_t *counts, size_t n,
                    double sum)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= n; i++) {
        cum += counts[i];
        buf_printf(b, "%s_bucket{le=\"", name);
        if (i < n)
            prom__double(b, bounds[i]);
        else
            buf_puts(b, "+Inf");
        buf_printf(b, "\"} %" PRIu64 "\n", cum);
    }
    buf_printf(b, "%s_sum ", name);
    prom__double(b, sum);
    buf_printf(b, "\n%s_count %" PRIu64 "\n", name, cum);
}

/* prom.h - the Prometheus text exposition format (version 0.0.4): a
 * family's HELP and TYPE lines, samples with labels, histograms. Pure text
 * into a buf: the daemon's metrics.c says what, this says how.
 *
 * Names (of metrics and labels) are ours, fixed in the code: they must
 * match [a-zA-Z_:][a-zA-Z0-9_:]* and are not checked here. Label values
 * and help texts may hold anything: they are escaped (backslash, double
 * quote, newline), and bytes that are not UTF-8 become U+FFFD, so that a
 * scrape never fails on a stranger's name. */
#ifndef JZ_PROM_H
#define JZ_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n"; type: counter, gauge,
 * histogram, untyped. A counter's name ends in _total. */
void prom_family(buf *b, const char *name, const char *type, const char *help);
/* One sample line: name{l1="v1",l2="v2"} value. labels: names and values
 * in turn, NULL-terminated (NULL itself: none). */
void prom_u64(buf *b, const char *name, const char *const *labels, uint64_t v);
void prom_f64(buf *b, const char *name, const char *const *labels, double v);
/* A label value, escaped as the format wants, without the quotes. */
void prom_escape_value(buf *b, const char *s);
/* A histogram's samples (its family line is the caller's): n bounds in
 * increasing order, counts[i] the observations in (bounds[i-1], bounds[i]]
 * and counts[n] those above the last; written cumulative, with +Inf, _sum
 * and _count. */
void prom_histogram(buf *b, const char *name, const double *bounds, const uint64_t *counts, size_t n,
                    double sum);

#endif

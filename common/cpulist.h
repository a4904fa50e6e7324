/* cpulist.h - sets of CPU (or NUMA node) indexes in the kernel's list
 * format, "0-3,8,10-11", as cgroups, hwloc and taskset write them. */
#ifndef JZ_CPULIST_H
#define JZ_CPULIST_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* The largest index a list may name. */
#define CPULIST_MAX 65535

/* Sets set[i] for every index i in s (set has n entries, all cleared
 * first). Returns how many indexes s names, or -1 when s is malformed or
 * names an index >= n. "" is the empty set. */
int cpulist_parse(const char *s, bool *set, size_t n);
/* The largest index s names, or -1 for an empty or malformed list. */
int cpulist_last(const char *s);
/* Appends set (n entries) to out in list format. */
void cpulist_format(const bool *set, size_t n, buf *out);

#endif

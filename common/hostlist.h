/* hostlist.h - Slurm's host lists: "gpu[01-03,07],cpu5,node[1-2]-ib" names
 * gpu01 gpu02 gpu03 gpu07 cpu5 node1-ib node2-ib. Expansion for what users
 * write (--nodelist, partitions' nodes=, scontrol show hostnames) and
 * compression for what jobs are told (SLURM_JOB_NODELIST), with the
 * grouping rules of Slurm's hostlist_ranged_string. */
#ifndef JZ_HOSTLIST_H
#define JZ_HOSTLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define HOSTLIST_NAMES_MAX 65536  /* names one expression may expand to */
#define HOSTLIST_INPUT_MAX 65536  /* bytes of one expression */
#define HOSTLIST_NAME_MAX 255     /* bytes of one name */
#define HOSTLIST_DIGITS_MAX 18    /* a range's numbers: at most this many digits */

/* Names, each its own allocation; free them with hostlist_free. */
typedef struct hostlist {
    char **names;
    size_t n;
} hostlist;

/* Expands s into out (names in the order written, repeats kept): commas
 * (or blanks) separate names; [A-B,C] in a name is a range list, as many
 * brackets as wanted (their product); a range keeps the width of its
 * lower bound when that has leading zeros ([08-10]: 08 09 10). max: at
 * most that many names (0 or more than HOSTLIST_NAMES_MAX: that). Returns
 * 0, or -1 with one line in err saying what is wrong and where (out is
 * then empty). out is the caller's: hostlist_free it either way. */
int hostlist_expand(const char *s, size_t max, hostlist *out, char *err, size_t errlen);
void hostlist_free(hostlist *hl);

/* Appends names (n of them) to out in Slurm's compressed form: a name
 * ending in digits joins the range before it when the prefix is the same,
 * the number is the next one and the widths agree (zero-padded numbers
 * only with numbers of their width); ranges of one prefix next to each
 * other share a bracket ("gpu[01-03,07],cpu5"). With sort, the names are
 * first sorted (by prefix, then number) and repeats dropped, as Slurm's
 * hostlist_uniq does; without, their order is kept. */
void hostlist_compress(const char *const *names, size_t n, bool sort, buf *out);

/* Whether name matches pattern: '*' any run of characters, '?' one; else
 * the same text. */
bool hostlist_glob(const char *pattern, const char *name);

#endif

/* polsite.h - the policy's sites, where an account's data may go, and
 * where datasets are (the `site`, `residency` and `dataset` lines of the
 * policy file; lib/sched/policy.c reads the file and hands these here).
 *
 *   site casa                  # the network's sites, one a line (the
 *   site rabat                 # `site` setting of each node names one)
 *   site fes
 *   residency um6p/health casa,rabat   # its jobs run there only, and their
 *                              # output is relayed by daemons there only
 *   dataset mimic-iv casa      # data a job may name (jz submit --data):
 *   dataset common-crawl casa,fes      # its sites are preferred
 *   latency casa rabat 30ms    # the round trip between two sites: a gang
 *                              # that spans sites takes the best-connected
 *
 * A residency binds the account and its projects. A project's own rule
 * must stay within its institute's (a rule can narrow, never widen), and
 * the most specific rule is the one in force. Sites named by residency
 * and dataset lines must have been declared by a site line above them:
 * a site nobody declared is a typo that would otherwise bind data to
 * nowhere, or worse, to a site that appears later by that name.
 *
 * A latency line is symmetric (casa rabat is rabat casa), a duration in ms
 * or s up to 60s; a pair given twice is refused (two figures for one link
 * is a mistake to fix, not to guess at). A pair without a line is
 * unknown, which a gang's placement counts worse than any known one. */
#ifndef JZ_POLSITE_H
#define JZ_POLSITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLSITE_SITES_MAX 256
#define POLSITE_RULES_MAX 10000
#define POLSITE_DATASETS_MAX 10000
#define POLSITE_RTT_MAX_MS 60000
#define POLSITE_RTT_UNKNOWN UINT32_MAX /* a pair no latency line names */

typedef struct polsite_rule {
    char *name;  /* an account path, or a dataset's name */
    char *sites; /* comma list of declared sites, no repeats */
} polsite_rule;

typedef struct polsite {
    char **sites; /* declared, in the file's order */
    size_t n_sites;
    polsite_rule *residency;
    size_t n_residency;
    polsite_rule *datasets;
    size_t n_datasets;
    /* The latency lines: n_rtt x n_rtt round trips (ms) by the sites'
     * indexes, POLSITE_RTT_UNKNOWN for a pair no line names; NULL while
     * none is given. Grown to the sites declared when a line comes: at
     * most the declared sites squared. */
    uint32_t *rtt;
    size_t n_rtt;
} polsite;

void polsite_free(polsite *s);

/* One line of the file, split into n words w (w[0] is its keyword): 1
 * when the keyword is not one of site, residency, dataset or latency; 0 when it is
 * taken; -1 with a line in why when it is wrong. An account named by a
 * residency line must be known to the caller (checked before). */
int polsite_line(polsite *s, char **w, size_t n, char *why, size_t whylen);

bool polsite_declared(const polsite *s, const char *site);

/* A declared site's index (its place among the site lines), or -1. */
int polsite_index(const polsite *s, const char *site);

/* The round trip (ms) between the sites of indexes a and b: 0 for a site
 * with itself, POLSITE_RTT_UNKNOWN when no latency line names the pair
 * (or either index is not a site's). */
uint32_t polsite_rtt(const polsite *s, int a, int b);

/* The sites account's data must stay in (its most specific rule, its own
 * or an ancestor's, "institute/project/user" included), as a comma list;
 * NULL when no rule binds it. */
const char *polsite_residency(const polsite *s, const char *account);

/* Whether site is in the comma list (a NULL list allows every site, and
 * a NULL or empty site is in no list). */
bool polsite_in(const char *list, const char *site);

/* The sites holding a dataset (a comma list), or NULL when none is
 * declared by that name. */
const char *polsite_dataset(const polsite *s, const char *name);

/* The declared datasets' names, ", "-joined into out (at most outlen). */
void polsite_dataset_names(const polsite *s, char *out, size_t outlen);

#endif

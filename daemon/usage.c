/* usage.c - what a job's part used on this node, for the end its agent
 * reports (PartUsage): its supervisor's CPU time and peak memory
 * (step_end, from the part's cgroup or getrusage), and its GPUs' energy
 * and mean utilisation from the health sampler's counters, the difference
 * between the part's start and its end. The samples come every
 * gpu_health_interval: the energy counter at either end is the latest
 * sample's, carried on at its power to that moment (ghealth_counters), so
 * it is right but for the power's changes since; the utilisation is the
 * mean of the samples taken while the part ran, and a part shorter than an
 * interval may see none (then none is claimed).
 *
 * The energy counters at the start are also kept in the part's directory
 * (USAGE_START), for a daemon restarted while the part runs: it adopts the
 * part, and at its end counts the energy from them and the utilisation
 * from its own samples (all taken while the part ran). A part that ended
 * while the daemon was away gets no GPU figures: the counters have moved
 * on since. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "jzd.h"

#define USAGE_START "usage_start" /* in the part's directory: "gpu TOPO ENERGY_MJ HAS_ENERGY" lines */
#define USAGE_TOPO_MAX 4096u      /* a topology index believed from that file */

/* Keeps the energy counters of the start in the part's directory. */
static void usage__save(const exec_part *p)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", p->dir, USAGE_START);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", p->dir, USAGE_START);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        log_debug("usage", "cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    for (uint32_t i = 0; i < p->n_gpu_base; i++)
        fprintf(f, "gpu %u %llu %d\n", p->gpu_base[i].gpu, (unsigned long long)p->gpu_base[i].energy_mj,
                p->gpu_base[i].has_energy);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        log_debug("usage", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

/* An adopted part's start counters from its directory: the energy as
 * saved, the utilisation from this daemon's first sample (0). */
static void usage__load(exec_part *p)
{
    char path[PATH_MAX + 32], line[128];
    snprintf(path, sizeof path, "%s/%s", p->dir, USAGE_START);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (p->n_gpu_base < EXEC_MAX_GPUS && fgets(line, sizeof line, f)) {
        uint64_t v[3];
        const char *at = strncmp(line, "gpu ", 4) == 0 ? line + 4 : NULL;
        for (int k = 0; k < 3 && at; k++) {
            char *end;
            errno = 0;
            v[k] = strtoull(at, &end, 10);
            bool last = k == 2;
            if (errno || end == at || *at < '0' || *at > '9' || *end != (last ? '\n' : ' '))
                at = NULL;
            else
                at = end + 1;
        }
        if (!at || v[0] >= USAGE_TOPO_MAX || v[2] > 1)
            continue;
        exec_gpu_base *b = &p->gpu_base[p->n_gpu_base++];
        memset(b, 0, sizeof *b);
        b->gpu = (uint32_t)v[0];
        b->energy_mj = v[1];
        b->has_energy = v[2] == 1;
    }
    fclose(f);
}

void usage_part_start(jzd *d, exec_part *p, const uint32_t *gpus, size_t n)
{
    p->n_gpu_base = 0;
    for (size_t i = 0; i < n && p->n_gpu_base < EXEC_MAX_GPUS; i++) {
        ghealth_count c;
        if (!ghealth_counters(d, gpus[i], &c))
            continue; /* not sampled: no figure for it, rather than a wrong one */
        exec_gpu_base *b = &p->gpu_base[p->n_gpu_base++];
        b->gpu = gpus[i];
        b->has_energy = c.has_energy;
        b->energy_mj = c.energy_mj;
        b->util_sum = c.util_sum;
        b->util_n = c.util_n;
    }
    if (p->n_gpu_base)
        usage__save(p);
}

void usage_part_end(jzd *d, exec_part *p)
{
    step_end *e = &p->end;
    if (e->gpu_measured)
        return;
    e->gpu_measured = true;
    /* Adopted while it ran (a supervisor this daemon did not start, alive
     * when found): its start counters are in its directory. */
    if (p->n_gpu_base == 0 && !p->child && p->pid > 0 && p->step == 0)
        usage__load(p);
    uint64_t energy = 0, sum = 0, n = 0;
    for (uint32_t i = 0; i < p->n_gpu_base && i < EXEC_MAX_GPUS; i++) {
        const exec_gpu_base *b = &p->gpu_base[i];
        ghealth_count c;
        if (!ghealth_counters(d, b->gpu, &c))
            continue;
        /* A counter that went back (a driver reloaded, a GPU reset) says
         * nothing of this part. */
        if (b->has_energy && c.has_energy && c.energy_mj >= b->energy_mj)
            energy += c.energy_mj - b->energy_mj;
        if (c.util_n >= b->util_n && c.util_sum >= b->util_sum) {
            sum += c.util_sum - b->util_sum;
            n += c.util_n - b->util_n;
        }
    }
    e->energy_mj = energy;
    e->has_gpu_util = n > 0;
    /* Each sample is at most 100 (health.c clamps it): so is the mean. */
    e->gpu_util_pct = n ? (uint32_t)((sum + n / 2) / n) : 0;
    if (p->n_gpu_base)
        log_debug("usage", "job %llu attempt %u: %u GPUs used %llu mJ, %s%u%% busy over %llu samples",
                  (unsigned long long)p->id, p->attempt, p->n_gpu_base, (unsigned long long)energy,
                  n ? "" : "unknown ", e->gpu_util_pct, (unsigned long long)n);
}

void usage_pb(const step_end *e, Jazari__PartUsage *out)
{
    jazari__part_usage__init(out);
    out->cpu_ms = e->cpu_ms;
    out->max_rss_bytes = e->max_rss_bytes;
    out->energy_mj = e->energy_mj;
    out->gpu_util_pct = e->has_gpu_util ? e->gpu_util_pct : 0;
    out->has_gpu_util = e->has_gpu_util;
}

/* Bounds of what an agent may claim for one part: a year of 4096 CPUs'
 * time, 64 TiB, 64 GPUs at 10 kW for a year. Beyond: not believed. */
#define USAGE_CPU_MS_MAX (4096ull * 366 * 86400 * 1000)
#define USAGE_RSS_MAX (64ull << 40)
#define USAGE_ENERGY_MJ_MAX (64ull * 10000 * 366 * 86400 * 1000)

bool usage_valid(const Jazari__PartUsage *u, char *why, size_t len)
{
    if (u->cpu_ms > USAGE_CPU_MS_MAX)
        snprintf(why, len, "cpu_ms %llu is beyond any part's", (unsigned long long)u->cpu_ms);
    else if (u->max_rss_bytes > USAGE_RSS_MAX)
        snprintf(why, len, "max_rss_bytes %llu is beyond any node's", (unsigned long long)u->max_rss_bytes);
    else if (u->energy_mj > USAGE_ENERGY_MJ_MAX)
        snprintf(why, len, "energy_mj %llu is beyond any part's", (unsigned long long)u->energy_mj);
    else if (u->gpu_util_pct > 100 || (!u->has_gpu_util && u->gpu_util_pct))
        snprintf(why, len, "gpu_util_pct %u is not a measured percentage", u->gpu_util_pct);
    else
        return true;
    return false;
}

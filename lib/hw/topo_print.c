/* topo_print.c - a topo for machines (the JSON of `jazarid topology --json`)
 * and for people (a tree like lstopo's and a matrix like `nvidia-smi topo -m`).
 *
 * Both take any topo, also one received from a peer (topo_from_pb): indexes
 * that point nowhere are shown as unknown, never followed. */
#include <stdio.h>
#include <string.h>

#include "topo.h"

/* --- JSON ------------------------------------------------------------------------- */

/* 0 means unknown for memory sizes. */
static void topo__json_bytes(json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    if (v)
        json_uint(j, v);
    else
        json_null(j);
}

static void topo__json_index(json *j, const char *key, int v)
{
    json_key(j, key);
    if (v >= 0)
        json_int(j, v);
    else
        json_null(j);
}

/* Writes t as one JSON object (INTERFACE.md, `jazarid topology --json`)
 * into j's buffer, which the caller owns; unknown values are null. */
void topo_to_json(const topo *t, json *j)
{
    char s[16];
    if (!t) {
        json_null(j);
        return;
    }
    json_obj_begin(j);
    json_kv_str(j, "name", t->name);
    json_kv_str(j, "source", t->source);
    json_kv_uint(j, "packages", t->n_packages);
    json_key(j, "numa_nodes");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n_numa; i++) {
        const topo_numa *n = &t->numa[i];
        json_obj_begin(j);
        json_kv_uint(j, "os_index", n->os_index);
        topo__json_bytes(j, "memory_bytes", n->memory_bytes);
        json_kv_str(j, "cpuset", n->cpuset);
        topo__json_index(j, "package",
                         n->package >= 0 && (size_t)n->package < t->n_packages ? n->package : -1);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_kv_uint(j, "cores", t->cores);
    json_kv_uint(j, "pus", t->pus);
    json_key(j, "gpus");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n_gpus; i++) {
        const topo_gpu *g = &t->gpus[i];
        json_obj_begin(j);
        json_kv_uint(j, "index", i);
        json_kv_str(j, "uuid", g->uuid);
        json_kv_str(j, "model", g->model);
        topo__json_bytes(j, "memory_bytes", g->memory_bytes);
        json_kv_str(j, "pci_bus_id", g->pci_bus_id);
        topo__json_index(j, "numa", g->numa);
        json_kv_str(j, "cpuset", g->cpuset);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "gpu_links");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n_gpus; i++) {
        json_arr_begin(j);
        for (size_t k = 0; k < t->n_gpus; k++)
            json_str(j, topo_link_str(topo_link_get(t, i, k), s, sizeof s));
        json_arr_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

/* --- the tree ---------------------------------------------------------------------- */

static void topo__print_bytes(buf *out, uint64_t v)
{
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (v == 0)
        buf_puts(out, "memory unknown");
    else if ((double)v >= gib)
        buf_printf(out, "%.1f GiB", (double)v / gib);
    else
        buf_printf(out, "%.1f MiB", (double)v / (1024.0 * 1024.0));
}

/* "1 core", "2 cores", then sep. */
static void topo__print_count(buf *out, size_t n, const char *what, const char *sep)
{
    buf_printf(out, "%zu %s%s%s", n, what, n == 1 ? "" : "s", sep);
}

/* The position in t->numa of the NUMA node a GPU is attached to, or -1. */
static long topo__gpu_numa_pos(const topo *t, const topo_gpu *g)
{
    if (g->numa < 0)
        return -1;
    for (size_t i = 0; i < t->n_numa; i++)
        if (t->numa[i].os_index == (unsigned)g->numa)
            return (long)i;
    return -1;
}

static int topo__numa_package(const topo *t, const topo_numa *n)
{
    return n->package >= 0 && (size_t)n->package < t->n_packages ? n->package : -1;
}

static void topo__print_gpu(buf *out, const topo_gpu *g, size_t i, int indent)
{
    buf_printf(out, "%*sGPU%zu %s %s, ", indent, "", i, g->pci_bus_id ? g->pci_bus_id : "(bus id unknown)",
               g->model ? g->model : "(model unknown)");
    topo__print_bytes(out, g->memory_bytes);
    if (g->uuid)
        buf_printf(out, ", %s", g->uuid);
    buf_putc(out, '\n');
}

static void topo__print_numa(buf *out, const topo *t, size_t pos, int indent)
{
    const topo_numa *n = &t->numa[pos];
    buf_printf(out, "%*sNUMANode P#%u: ", indent, "", n->os_index);
    topo__print_bytes(out, n->memory_bytes);
    buf_printf(out, ", cpuset %s\n", n->cpuset ? n->cpuset : "unknown");
    for (size_t i = 0; i < t->n_gpus; i++)
        if (topo__gpu_numa_pos(t, &t->gpus[i]) == (long)pos)
            topo__print_gpu(out, &t->gpus[i], i, indent + 2);
}

static void topo__print_tree(const topo *t, buf *out)
{
    buf_printf(out, "Machine %s (%s): ", t->name ? t->name : "(unnamed)",
               t->source ? t->source : "source unknown");
    topo__print_count(out, t->n_packages, "package", ", ");
    topo__print_count(out, t->n_numa, "NUMA node", ", ");
    topo__print_count(out, t->cores, "core", ", ");
    topo__print_count(out, t->pus, "PU", ", ");
    topo__print_count(out, t->n_gpus, "GPU", "\n");
    for (size_t p = 0; p < t->n_packages; p++) {
        const topo_package *pk = &t->packages[p];
        buf_printf(out, "  Package P#%u: ", pk->os_index);
        topo__print_count(out, pk->cores, "core", ", ");
        topo__print_count(out, pk->pus, "PU", ", ");
        buf_printf(out, "cpuset %s\n", pk->cpuset ? pk->cpuset : "unknown");
        for (size_t i = 0; i < t->n_numa; i++)
            if (topo__numa_package(t, &t->numa[i]) == (int)p)
                topo__print_numa(out, t, i, 4);
    }
    /* NUMA nodes outside any one package (e.g. spanning several). */
    for (size_t i = 0; i < t->n_numa; i++)
        if (topo__numa_package(t, &t->numa[i]) < 0)
            topo__print_numa(out, t, i, 2);
    for (size_t i = 0; i < t->n_gpus; i++) {
        if (topo__gpu_numa_pos(t, &t->gpus[i]) >= 0)
            continue;
        topo__print_gpu(out, &t->gpus[i], i, 2);
        buf_puts(out, "    (NUMA node unknown)\n");
    }
}

/* --- the matrix -------------------------------------------------------------------- */

static void topo__print_matrix(const topo *t, buf *out)
{
    char s[32];
    size_t n = t->n_gpus;
    int w = 5;
    snprintf(s, sizeof s, "GPU%zu", n ? n - 1 : 0);
    if ((int)strlen(s) + 2 > w)
        w = (int)strlen(s) + 2;
    for (size_t i = 0; i < n * n; i++) {
        int l = (int)strlen(topo_link_str(t->links[i], s, sizeof s));
        if (l + 2 > w)
            w = l + 2;
    }
    int aw = (int)strlen("CPU Affinity") + 2;
    for (size_t i = 0; i < n; i++) {
        const char *c = t->gpus[i].cpuset;
        if (c && (int)strlen(c) + 2 > aw)
            aw = (int)strlen(c) + 2;
    }
    buf_printf(out, "%-*s", w, "");
    for (size_t k = 0; k < n; k++) {
        snprintf(s, sizeof s, "GPU%zu", k);
        buf_printf(out, "%-*s", w, s);
    }
    buf_printf(out, "%-*sNUMA Affinity\n", aw, "CPU Affinity");
    for (size_t i = 0; i < n; i++) {
        const topo_gpu *g = &t->gpus[i];
        snprintf(s, sizeof s, "GPU%zu", i);
        buf_printf(out, "%-*s", w, s);
        for (size_t k = 0; k < n; k++)
            buf_printf(out, "%-*s", w, topo_link_str(topo_link_get(t, i, k), s, sizeof s));
        buf_printf(out, "%-*s", aw, g->cpuset ? g->cpuset : "N/A");
        if (g->numa >= 0)
            buf_printf(out, "%d\n", g->numa);
        else
            buf_puts(out, "N/A\n");
    }
    buf_puts(out, "Legend: X = self, NV# = # NVLinks (direct or through NVSwitches), PIX = at most one "
                  "PCIe switch, PXB = several PCIe switches, PHB = a PCIe host bridge, NODE = between "
                  "host bridges of one NUMA node, SYS = across NUMA nodes\n");
}

/* Appends the view for people to out (the caller's buffer, freed by the
 * caller with buf_free). */
void topo_print(const topo *t, buf *out)
{
    if (!t) {
        buf_puts(out, "no topology\n");
        return;
    }
    topo__print_tree(t, out);
    buf_putc(out, '\n');
    if (t->n_gpus == 0 || !t->links) {
        buf_puts(out, "No GPUs.\n");
        return;
    }
    topo__print_matrix(t, out);
}

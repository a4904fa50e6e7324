/* slurm_sinfo.c - sinfo: the policy's partitions and their nodes (a
 * network without partitions: one, "all", that is nobody's default). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm.h"

/* One row: a partition's nodes in one state (or one node, with -N). */
typedef struct sinfo_row {
    const char *partition;
    bool is_default;
    uint64_t max_time_s;
    const char *state_long, *state_short;
    const char **nodes;
    size_t n;
    uint64_t cpus, cpus_alloc, gpus;
    size_t n_alloc, n_idle, n_other; /* for %F */
} sinfo_row;

static int sinfo__field(buf *b, char type, const void *arg, void *ctx)
{
    static const struct {
        char type;
        const char *header;
    } headers[] = {{'P', "PARTITION"}, {'R', "PARTITION"}, {'a', "AVAIL"},         {'l', "TIMELIMIT"},
                   {'D', "NODES"},     {'t', "STATE"},     {'T', "STATE"},         {'N', "NODELIST"},
                   {'n', "HOSTNAMES"}, {'c', "CPUS"},      {'C', "CPUS(A/I/O/T)"}, {'F', "NODES(A/I/O/T)"},
                   {'G', "GRES"}};
    const sinfo_row *r = arg;
    (void)ctx;
    if (!r) {
        for (size_t i = 0; i < sizeof headers / sizeof *headers; i++)
            if (headers[i].type == type) {
                buf_puts(b, headers[i].header);
                return 0;
            }
        return -1;
    }
    switch (type) {
    case 'P':
    case 'R':
        buf_printf(b, "%s%s", r->partition, type == 'P' && r->is_default ? "*" : "");
        break;
    case 'a':
        buf_puts(b, "up");
        break;
    case 'l':
        if (r->max_time_s)
            slurm_duration(b, r->max_time_s, true);
        else
            buf_puts(b, "infinite");
        break;
    case 'D':
        buf_printf(b, "%zu", r->n);
        break;
    case 't':
        buf_puts(b, r->state_short);
        break;
    case 'T':
        buf_puts(b, r->state_long);
        break;
    case 'N':
    case 'n':
        slurm_hostlist(b, r->nodes, r->n);
        break;
    case 'c':
        buf_printf(b, "%llu", (unsigned long long)(r->n ? r->cpus / r->n : 0));
        break;
    case 'C':
        buf_printf(b, "%llu/%llu/0/%llu", (unsigned long long)r->cpus_alloc,
                   (unsigned long long)(r->cpus - r->cpus_alloc), (unsigned long long)r->cpus);
        break;
    case 'F':
        buf_printf(b, "%zu/%zu/%zu/%zu", r->n_alloc, r->n_idle, r->n_other, r->n);
        break;
    case 'G':
        if (r->gpus && r->n)
            buf_printf(b, "gpu:%llu", (unsigned long long)(r->gpus / r->n));
        else
            buf_puts(b, "(null)");
        break;
    default:
        return -1;
    }
    return 0;
}

/* A node's state, long and short, as sinfo names them. */
static void sinfo__state(const Jazari__NodeInfo *n, const cli_node_hw *h, const char **lng, const char **shrt)
{
    if (n->state && strcmp(n->state, "up") != 0) {
        bool drained = strcmp(n->state, "drained") == 0, draining = strcmp(n->state, "draining") == 0;
        *lng = drained ? "drained" : draining ? "draining" : "down";
        *shrt = drained ? "drain" : draining ? "drng" : "down";
        return;
    }
    const char *a = view_node_alloc_state(n, h);
    *lng = a;
    *shrt = strcmp(a, "allocated") == 0 ? "alloc" : strcmp(a, "mixed") == 0 ? "mix" : "idle";
}

static bool sinfo__has(const Jazari__NodeInfo *n, const char *part, bool none)
{
    if (none)
        return true;
    for (size_t i = 0; i < n->n_partitions; i++)
        if (strcmp(n->partitions[i], part) == 0)
            return true;
    return false;
}

static bool sinfo__in(const char *list, const char *v)
{
    if (!list)
        return true;
    size_t vl = strlen(v);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == vl && strncmp(p, v, l) == 0)
            return true;
        p += l + (p[l] == ',');
    }
    return false;
}

int slurm_sinfo(cli *c, int argc, char **argv)
{
    static const struct option longs[] = {
        {"Node", no_argument, NULL, 'N'},
        {"noheader", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'o'},
        {"partition", required_argument, NULL, 'p'},
        {"summarize", no_argument, NULL, 's'},
        {"long", no_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    bool by_node = false, noheader = false, summarize = false, lng = false;
    const char *format = NULL, *parts = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "Nho:p:sl", longs, NULL)) != -1) {
        switch (opt) {
        case 'N':
            by_node = true;
            break;
        case 'h':
            noheader = true;
            break;
        case 'o':
            format = optarg;
            break;
        case 'p':
            parts = optarg;
            break;
        case 's':
            summarize = true;
            break;
        case 'l':
            lng = true;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(c, "unexpected argument '%.60s'", argv[optind]);
        return CLI_USAGE;
    }
    if (!format)
        format = by_node     ? (lng ? "%N %.6D %9P %.11T %.4c %G" : "%N %.6D %9P %.6t")
                 : summarize ? "%9P %.5a %.10l %.16F %N"
                 : lng       ? "%9P %.5a %.10l %.6D %.11T %N"
                             : "%9P %.5a %.10l %.6D %.6t %N";
    buf b = BUF_INIT;
    if (cli_format(&b, format, sinfo__field, NULL, NULL) != 0) {
        cli_error(c, "bad --format '%.60s': fields %%[.][WIDTH]TYPE, TYPE one of P R a l D t T N n c C F G",
                  format);
        buf_free(&b);
        return CLI_USAGE;
    }
    if (noheader)
        b.len = 0;
    int status;
    cli_node_hw *hw;
    wire_msg *m = cli_fetch_nodes(c, &hw, &status);
    if (!m) {
        buf_free(&b);
        return status;
    }
    const Jazari__NodesReply *r = wire_msg_env(m)->nodes_reply;
    bool none = r->n_partitions == 0;
    size_t np = none ? 1 : r->n_partitions;
    const char **names = calloc(r->n_nodes + 1, sizeof *names);
    bool *used = calloc(r->n_nodes + 1, sizeof *used);
    if (!names || !used)
        abort();
    for (size_t k = 0; k < np; k++) {
        const Jazari__PartitionInfo *pi = none ? NULL : r->partitions[k];
        const char *pname = pi ? pi->name : "all";
        if (!sinfo__in(parts, pname))
            continue;
        memset(used, 0, r->n_nodes * sizeof *used);
        for (size_t i = 0; i < r->n_nodes; i++) {
            if (used[i] || !sinfo__has(r->nodes[i], pname, none))
                continue;
            sinfo_row row = {.partition = pname,
                             .is_default = pi && pi->is_default,
                             .max_time_s = pi ? pi->max_time_s : 0,
                             .nodes = names};
            const char *sl, *ss;
            sinfo__state(r->nodes[i], &hw[i], &sl, &ss);
            row.state_long = sl;
            row.state_short = ss;
            /* With -s, every state in one row; with -N, one node a row. */
            for (size_t j = i; j < r->n_nodes; j++) {
                if (used[j] || !sinfo__has(r->nodes[j], pname, none))
                    continue;
                const char *jl, *js;
                sinfo__state(r->nodes[j], &hw[j], &jl, &js);
                if (!summarize && strcmp(jl, sl) != 0)
                    continue;
                if (by_node && j != i)
                    continue;
                used[j] = true;
                names[row.n++] = r->nodes[j]->name;
                row.cpus += hw[j].cpus;
                row.cpus_alloc += hw[j].cpus_used < hw[j].cpus ? hw[j].cpus_used : hw[j].cpus;
                row.gpus += r->nodes[j]->gpus_total;
                if (strcmp(jl, "idle") == 0)
                    row.n_idle++;
                else if (strcmp(jl, "mixed") == 0 || strcmp(jl, "allocated") == 0)
                    row.n_alloc++;
                else
                    row.n_other++;
            }
            cli_format(&b, format, sinfo__field, &row, NULL);
        }
    }
    free(names);
    free(used);
    free(hw);
    wire_msg_free(m);
    return cli_flush(&b);
}

/* cmd_node.c - jz nodes, jz node NAME: the nodes and their hardware. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/hw/topo.h"
#include "../lib/hw/topo_pb.h"
#include "cli.h"

/* Asks for one node (name NULL: the daemon's own). Returns the reply, or
 * NULL after printing why; *status holds the exit status then. */
static wire_msg *cmd__node_request(cli *c, const char *name, int *status)
{
    cli_conn *k = cli_connect(c);
    *status = CLI_REFUSED;
    if (!k)
        return NULL;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    Jazari__NodeRequest nr = JAZARI__NODE_REQUEST__INIT;
    nr.name = (char *)(name ? name : "");
    req.body_case = JAZARI__ENVELOPE__BODY_NODE_REQUEST;
    req.node_request = &nr;
    wire_msg *m = cli_call(k, &req);
    cli_close(k);
    if (!m)
        return NULL;
    if (cli_refused(c, m) || wire_msg_env(m)->body_case != JAZARI__ENVELOPE__BODY_NODE_REPLY ||
        !wire_msg_env(m)->node_reply->node) {
        wire_msg_free(m);
        return NULL;
    }
    *status = CLI_OK;
    return m;
}

/* What jz nodes adds from a node's brief topology (daemons from 0.4 on
 * send one with each node): its GPU models, CPUs and memory. */
typedef cli_node_hw node__hw;

typedef struct node__use {
    const Jazari__NodesReply *r;
    node__hw *hw;
} node__use;

static int node__use_one(const Jazari__Job *job, void *arg)
{
    node__use *u = arg;
    view_node_use_job(u->r->nodes, u->r->n_nodes, u->hw, job);
    return 0;
}

static void node__mem_str(uint64_t bytes, char *s, size_t len)
{
    if (!bytes)
        snprintf(s, len, "-");
    else if (bytes >= (1ull << 30))
        snprintf(s, len, "%.0fG", (double)bytes / (double)(1ull << 30));
    else
        snprintf(s, len, "%lluM", (unsigned long long)(bytes >> 20));
}

wire_msg *cli_fetch_nodes(cli *c, cli_node_hw **hw_out, int *status)
{
    Jazari__NodesRequest nr = JAZARI__NODES_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_NODES_REQUEST;
    req.nodes_request = &nr;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_NODES_REPLY, status);
    if (!m)
        return NULL;
    const Jazari__NodesReply *r = wire_msg_env(m)->nodes_reply;
    node__hw *hw = calloc(r->n_nodes + 1, sizeof *hw);
    if (!hw)
        abort();
    for (size_t i = 0; i < r->n_nodes; i++)
        view_node_hw_of(r->nodes[i], &hw[i]);
    node__use use = {r, hw};
    *status = cli_each_job(c, false, 0, node__use_one, &use);
    if (*status != CLI_OK) {
        free(hw);
        wire_msg_free(m);
        return NULL;
    }
    *hw_out = hw;
    return m;
}

/* Why a node is as it is, for a person: its reason (and who), and its
 * drained GPUs'. */
static void node__reason(const Jazari__NodeInfo *n, char *s, size_t len)
{
    size_t at = 0;
    s[0] = '\0';
    if (n->reason && *n->reason)
        at += (size_t)snprintf(s, len, "%s%s%s%s", n->reason, n->by && *n->by ? " (" : "", n->by ? n->by : "",
                               n->by && *n->by ? ")" : "");
    for (size_t i = 0; i < n->n_gpu_drains && at < len; i++) {
        const Jazari__GpuDrain *g = n->gpu_drains[i];
        if (g->gpu >= 0)
            at += (size_t)snprintf(s + at, len - at, "%sgpu%d %s: %s", at ? "; " : "", g->gpu, g->state,
                                   g->reason);
    }
    if (!s[0])
        snprintf(s, len, "-");
}

int cmd_nodes(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    int status;
    node__hw *hw;
    wire_msg *m = cli_fetch_nodes(c, &hw, &status);
    if (!m)
        return status;
    const Jazari__NodesReply *r = wire_msg_env(m)->nodes_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "nodes");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_nodes; i++)
            view_nodes_entry(&j, r->nodes[i], &hw[i]);
        json_arr_end(&j);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "%-20s %-12s %-8s %-10s %-6s %-20s %5s %7s  %s\n", "NAME", "SITE", "STATE", "ALLOC",
                   "GPUS", "GPU_MODEL", "CPUS", "MEMORY", "REASON");
        for (size_t i = 0; i < r->n_nodes; i++) {
            const Jazari__NodeInfo *n = r->nodes[i];
            char gpus[32], cpus[16], mem[32];
            snprintf(gpus, sizeof gpus, "%u/%u", n->gpus_free, n->gpus_total);
            if (hw[i].cpus)
                snprintf(cpus, sizeof cpus, "%u", hw[i].cpus);
            else
                snprintf(cpus, sizeof cpus, "-");
            node__mem_str(hw[i].mem, mem, sizeof mem);
            char why[600];
            node__reason(n, why, sizeof why);
            buf_printf(&b, "%-20s %-12s %-8s %-10s %-6s %-20s %5s %7s  %s\n", n->name, n->site, n->state,
                       view_node_alloc_state(n, &hw[i]), gpus, hw[i].model[0] ? hw[i].model : "-", cpus, mem,
                       why);
        }
    }
    free(hw);
    wire_msg_free(m);
    return cli_flush(&b);
}

/* One BurnInRequest; the reply's message, or NULL after printing why. */
static wire_msg *node__burnin_call(cli *c, const char *name, bool start, uint64_t run, int *status)
{
    Jazari__BurnInRequest q = JAZARI__BURN_IN_REQUEST__INIT;
    q.node = (char *)name;
    q.start = start;
    q.run = run;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_BURN_IN_REQUEST;
    req.burn_in_request = &q;
    return cli_request(c, &req, JAZARI__ENVELOPE__BODY_BURN_IN_REPLY, status);
}

/* jz node check NAME: runs the node's burn-in (its daemon runs
 * burnin_program), waits for it with a progress line on standard error,
 * and prints the verdict: 0 passed, 1 failed (or refused). */
static int node__check(cli *c, const char *name)
{
    int status;
    wire_msg *m = node__burnin_call(c, name, true, 0, &status);
    if (!m)
        return status;
    const Jazari__BurnInReply *r = wire_msg_env(m)->burn_in_reply;
    uint64_t run = r->run, timeout_ms = r->timeout_ms;
    bool tty = isatty(2);
    if (!c->json)
        fprintf(stderr, "jz node check: burn-in %llu of %s running (at most %llu s)%s",
                (unsigned long long)run, name, (unsigned long long)(timeout_ms / 1000), tty ? "" : "\n");
    /* The node's timeout, then a while for its verdict to reach the leader. */
    int64_t deadline = cli_now_ms() + (int64_t)timeout_ms + 120000;
    while (!wire_msg_env(m)->burn_in_reply->done) {
        if (cli_now_ms() > deadline) {
            if (tty && !c->json)
                fputc('\n', stderr);
            cli_error(c, "burn-in %llu of %s gave no verdict in time", (unsigned long long)run, name);
            wire_msg_free(m);
            return CLI_REFUSED;
        }
        struct timespec ts = {0, 500000000L};
        nanosleep(&ts, NULL);
        wire_msg_free(m);
        m = node__burnin_call(c, name, false, run, &status);
        if (!m) {
            if (tty && !c->json)
                fputc('\n', stderr);
            return status;
        }
        r = wire_msg_env(m)->burn_in_reply;
        if (tty && !c->json)
            fprintf(stderr, "\rjz node check: burn-in %llu of %s: %s %llu s ", (unsigned long long)run, name,
                    r->running ? "running" : "ended, telling the leader,",
                    (unsigned long long)(r->elapsed_ms / 1000));
    }
    if (tty && !c->json)
        fputc('\n', stderr);
    r = wire_msg_env(m)->burn_in_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, "node", r->node);
        json_kv_uint(&j, "run", r->run);
        json_kv_bool(&j, "passed", r->passed);
        json_kv_str(&j, "reason", r->reason);
        json_kv_uint(&j, "elapsed_ms", r->elapsed_ms);
        json_kv_str(&j, "leader", r->leader_note);
        json_kv_str(&j, "output", r->output);
        json_obj_end(&j);
    } else {
        buf_puts(&b, r->output ? r->output : "");
        if (b.len && b.data[b.len - 1] != '\n')
            buf_putc(&b, '\n');
        buf_printf(&b, "node %s %s the burn-in in %.1f s: %s", r->node, r->passed ? "passed" : "FAILED",
                   (double)r->elapsed_ms / 1000.0, r->reason);
        if (r->leader_note && *r->leader_note)
            buf_printf(&b, "\n  leader: %s", r->leader_note);
    }
    bool passed = r->passed;
    wire_msg_free(m);
    int out = cli_flush(&b);
    return out != CLI_OK ? out : passed ? CLI_OK : CLI_REFUSED;
}

int cmd_node(cli *c, int argc, char **argv)
{
    if (c->describe)
        printf("subcommands:\n  check\n  revoke\n");
    const char *pos[2];
    int npos = cli_parse(c, argc, argv, NULL, pos, 2);
    if (npos < 0)
        return CLI_USAGE;
    if (npos == 2 && strcmp(pos[0], "revoke") == 0)
        return cmd_node_revoke(c, pos[1]);
    if (npos == 2 && strcmp(pos[0], "check") == 0)
        return node__check(c, pos[1]);
    if (npos == 2) {
        cli_error(c, "usage: jz node NAME | jz node check NAME | jz node revoke NAME");
        return CLI_USAGE;
    }
    if (npos == 0) {
        cli_error(c, "which node? usage: jz node NAME (jz nodes lists them)");
        return CLI_USAGE;
    }
    int status;
    wire_msg *m = cmd__node_request(c, pos[0], &status);
    if (!m)
        return status;
    const Jazari__NodeInfo *n = wire_msg_env(m)->node_reply->node;
    char err[200];
    topo *t = n->topology ? topo_from_pb(n->topology, err, sizeof err) : NULL;
    if (!t) {
        cli_error(c, "node %s: %s", n->name, n->topology ? err : "the daemon sent no topology");
        wire_msg_free(m);
        return CLI_REFUSED;
    }
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        view_node_fields(&j, n);
        json_key(&j, "topology");
        topo_to_json(t, &j);
        json_obj_end(&j);
    } else {
        char why[600];
        node__reason(n, why, sizeof why);
        buf_printf(&b, "node %s  site %s  state %s  GPUs %u free of %u%s%s\n", n->name, n->site, n->state,
                   n->gpus_free, n->gpus_total, why[0] != '-' ? "\n  why: " : "", why[0] != '-' ? why : "");
        if (n->since_ms > 0 && strcmp(n->state, "up") != 0) {
            char when[40];
            buf_printf(&b, "  since: %s\n", cli_local_time(n->since_ms, when, sizeof when));
        }
        buf_puts(&b, "\n");
        topo_print(t, &b);
    }
    topo_free(t);
    wire_msg_free(m);
    return cli_flush(&b);
}

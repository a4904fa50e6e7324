/* cmd_node.c - jz nodes, jz node NAME: the nodes and their hardware. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void cmd__node_json_fields(json *j, const Jazari__NodeInfo *n)
{
    json_kv_str(j, "name", n->name);
    json_kv_str(j, "site", n->site);
    json_kv_str(j, "state", n->state);
    json_kv_uint(j, "gpus_total", n->gpus_total);
    json_kv_uint(j, "gpus_free", n->gpus_free);
    json_kv_str(j, "group", n->group && *n->group ? n->group : NULL);
    json_key(j, "labels");
    json_arr_begin(j);
    for (const char *p = n->labels; p && *p;) {
        size_t len = strcspn(p, ",");
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
        json_str(j, one);
        p += len + (p[len] == ',');
    }
    json_arr_end(j);
}

int cmd_nodes(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__NodesRequest nr = JAZARI__NODES_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_NODES_REQUEST;
    req.nodes_request = &nr;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_NODES_REPLY, &status);
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
        for (size_t i = 0; i < r->n_nodes; i++) {
            json_obj_begin(&j);
            cmd__node_json_fields(&j, r->nodes[i]);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "%-20s %-12s %-8s %s\n", "NAME", "SITE", "STATE", "GPUS(free/total)");
        for (size_t i = 0; i < r->n_nodes; i++) {
            const Jazari__NodeInfo *n = r->nodes[i];
            buf_printf(&b, "%-20s %-12s %-8s %u/%u\n", n->name, n->site, n->state, n->gpus_free,
                       n->gpus_total);
        }
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

int cmd_node(cli *c, int argc, char **argv)
{
    const char *pos[2];
    int npos = cli_parse(c, argc, argv, NULL, pos, 2);
    if (npos < 0)
        return CLI_USAGE;
    if (npos == 2 && strcmp(pos[0], "revoke") == 0)
        return cmd_node_revoke(c, pos[1]);
    if (npos == 2) {
        cli_error(c, "usage: jz node NAME | jz node revoke NAME");
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
        cmd__node_json_fields(&j, n);
        json_key(&j, "topology");
        topo_to_json(t, &j);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "node %s  site %s  state %s  GPUs %u free of %u\n\n", n->name, n->site, n->state,
                   n->gpus_free, n->gpus_total);
        topo_print(t, &b);
    }
    topo_free(t);
    wire_msg_free(m);
    return cli_flush(&b);
}

/* nodes.c - the requests about nodes and the network: jz node, jz nodes,
 * jz status, and this node's own topology. */
#include <stdlib.h>
#include <string.h>

#include "../lib/hw/topo_pb.h"
#include "jzd.h"

static void nodes__info(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni)
{
    jazari__node_info__init(ni);
    ni->name = n->name;
    ni->site = n->site ? n->site : "";
    ni->group = n->group ? n->group : "";
    ni->labels = n->labels ? n->labels : "";
    ni->state = n->state;
    ni->gpus_total = (uint32_t)n->topo->n_gpus;
    uint32_t used = fsm_node_gpus_used(f, n->name);
    ni->gpus_free = used < ni->gpus_total ? ni->gpus_total - used : 0;
}

static void nodes__local_info(jzd *d, Jazari__NodeInfo *ni)
{
    jazari__node_info__init(ni);
    ni->name = d->cfg->name;
    ni->site = d->cfg->site;
    ni->state = "up";
    ni->gpus_total = (uint32_t)d->topo->n_gpus;
    ni->gpus_free = (uint32_t)d->topo->n_gpus;
}

void nodes_node(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *want = e->node_request->name;
    const fsm_node *n = d->ctl_running && want && *want ? fsm_node_get(&d->ctl.state, want) : NULL;
    Jazari__NodeInfo ni;
    const topo *t;
    if (n) {
        nodes__info(&d->ctl.state, n, &ni);
        t = n->topo;
    } else if (!want || !*want || strcmp(want, d->cfg->name) == 0) {
        nodes__local_info(d, &ni);
        t = d->topo;
    } else {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "node '%.64s' not found (jz nodes lists them)", want);
        return;
    }
    ni.topology = topo_to_pb(t);
    Jazari__NodeReply r = JAZARI__NODE_REPLY__INIT;
    r.node = &ni;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODE_REPLY, &r);
    topo_pb_free(ni.topology);
}

/* What jz nodes shows of a node's hardware (CPUs, memory, GPU models):
 * its topology without the GPU link matrix and the packages, which only
 * jz node NAME shows. */
static Jazari__Topology *nodes__brief_topology(const topo *t)
{
    if (!t)
        return NULL;
    Jazari__Topology *m = topo_to_pb(t);
    m->n_links = 0; /* topo_pb_free frees the arrays whatever the counts */
    m->n_packages = 0;
    for (size_t g = 0; g < m->n_gpus; g++) {
        m->gpus[g]->cpuset = "";
        m->gpus[g]->pci_bus_id = "";
        m->gpus[g]->uuid = "";
    }
    for (size_t k = 0; k < m->n_numa_nodes; k++)
        m->numa_nodes[k]->cpuset = "";
    return m;
}

void nodes_nodes(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    size_t n = d->ctl_running ? d->ctl.state.n_nodes : 0;
    Jazari__NodeInfo *infos = calloc(n + 1, sizeof *infos);
    Jazari__NodeInfo **ptrs = calloc(n + 1, sizeof(Jazari__NodeInfo *));
    if (!infos || !ptrs)
        abort();
    for (size_t i = 0; i < n; i++) {
        nodes__info(&d->ctl.state, &d->ctl.state.nodes[i], &infos[i]);
        infos[i].topology = nodes__brief_topology(d->ctl.state.nodes[i].topo);
        ptrs[i] = &infos[i];
    }
    /* An agent (or a controller before its node is registered) knows itself. */
    if (n == 0) {
        nodes__local_info(d, &infos[0]);
        infos[0].topology = nodes__brief_topology(d->topo);
        ptrs[0] = &infos[0];
        n = 1;
    }
    Jazari__NodesReply r = JAZARI__NODES_REPLY__INIT;
    r.nodes = ptrs;
    r.n_nodes = n;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODES_REPLY, &r);
    for (size_t i = 0; i < n; i++)
        topo_pb_free(infos[i].topology);
    free(infos);
    free(ptrs);
}

void nodes_status(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    ctl *k = &d->ctl;
    Jazari__StatusReply r = JAZARI__STATUS_REPLY__INIT;
    Jazari__ControllerInfo infos[CTL_MAX_PEERS], *ptrs[CTL_MAX_PEERS];
    const ctl_peer *leader = ctl_leader(k);
    r.leader = leader ? (char *)leader->name : "";
    r.term = k->raft.current_term;
    r.commit_index = k->raft.commit_index;
    for (unsigned i = 0; i < k->n_peers; i++) {
        jazari__controller_info__init(&infos[i]);
        infos[i].name = k->peers[i].name;
        infos[i].address = k->peers[i].address;
        const fsm_node *n = fsm_node_get(&k->state, k->peers[i].name);
        if (k->peers[i].id == k->id)
            infos[i].role = (char *)ctl_role_name(k);
        else if (leader && leader->id == k->peers[i].id)
            infos[i].role = "leader";
        else if (n && strcmp(n->state, "down") == 0)
            infos[i].role = "unreachable"; /* its node missed its heartbeats */
        else
            infos[i].role = "follower";
        ptrs[i] = &infos[i];
    }
    r.controllers = ptrs;
    r.n_controllers = k->n_peers;
    for (size_t i = 0; i < k->state.n_nodes; i++)
        r.nodes_up += strcmp(k->state.nodes[i].state, "up") == 0;
    r.nodes_total = (uint32_t)k->state.n_nodes;
    r.jobs_active = k->state.n_active;
    r.problem = k->broken ? k->broken_why : k->disk_full ? k->disk_why : k->ids_lost ? k->ids_why : "";
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_STATUS_REPLY, &r);
}

void nodes_topology(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    Jazari__TopologyReply r = JAZARI__TOPOLOGY_REPLY__INIT;
    r.topology = topo_to_pb(d->topo);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_TOPOLOGY_REPLY, &r);
    topo_pb_free(r.topology);
}

/* nodes.c - the requests about nodes and the network: jz node, jz nodes,
 * jz status, and this node's own topology. */
#include <stdlib.h>
#include <string.h>

#include "../common/xmem.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"

/* The policy's partitions that hold n, into names (room for every
 * partition; they point into the policy): how many. */
static size_t nodes__partitions(const pol *po, const fsm_node *n, char **names)
{
    size_t k = 0;
    for (size_t i = 0; po && i < po->n_partitions; i++)
        if (pol_partition_has_node(&po->partitions[i], n->name, n->site, n->labels))
            names[k++] = (char *)po->partitions[i].name;
    return k;
}

/* A drain's reason, who and since; the drains of its GPUs. */
static void nodes__drains(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni)
{
    ni->state = (char *)fsm_node_state(f, n);
    const fsm_drain *whole = fsm_drain_get(n, -1);
    if (strcmp(n->state, "up") != 0 || !whole) {
        ni->reason = n->reason ? n->reason : "";
        ni->by = "";
        ni->since_ms = n->since_ms;
    } else {
        ni->reason = whole->reason;
        ni->by = whole->by;
        ni->since_ms = whole->since_ms;
    }
    if (!n->n_drains)
        return;
    Jazari__GpuDrain *gd = xcalloc(n->n_drains, sizeof *gd);
    ni->gpu_drains = xcalloc(n->n_drains, sizeof(Jazari__GpuDrain *));
    for (uint32_t k = 0; k < n->n_drains; k++) {
        const fsm_drain *d = &n->drains[k];
        jazari__gpu_drain__init(&gd[k]);
        gd[k].gpu = d->gpu;
        gd[k].state = (char *)fsm_drain_state(f, n, d);
        gd[k].reason = d->reason;
        gd[k].by = d->by;
        gd[k].source = d->source;
        gd[k].since_ms = d->since_ms;
        ni->gpu_drains[ni->n_gpu_drains++] = &gd[k];
        if (d->gpu >= 0) {
            ni->gpus_drained++;
            /* Drained and idle: not free either. */
            if (ni->gpus_free > 0 && !fsm_node_busy(f, n->name, d->gpu))
                ni->gpus_free--;
        }
    }
}

void nodes_info_free(Jazari__NodeInfo *ni)
{
    if (ni->n_gpu_drains)
        free(ni->gpu_drains[0]); /* the block of them all */
    free(ni->gpu_drains);
    ni->gpu_drains = NULL;
    ni->n_gpu_drains = 0;
}

void nodes_fill_info(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni)
{
    nodes_fill_info_used(f, n, ni, fsm_node_gpus_used(f, n->name));
}

void nodes_fill_info_used(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni, uint32_t used)
{
    jazari__node_info__init(ni);
    ni->name = n->name;
    ni->site = n->site ? n->site : "";
    ni->group = n->group ? n->group : "";
    ni->labels = n->labels ? n->labels : "";
    ni->gpus_total = (uint32_t)n->topo->n_gpus;
    ni->gpus_free = used < ni->gpus_total ? ni->gpus_total - used : 0;
    nodes__drains(f, n, ni);
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

int nodes_one_make(jzd *d, const char *want, nodes_one *o)
{
    const fsm_node *n = d->ctl_running && want && *want ? fsm_node_get(&d->ctl.state, want) : NULL;
    const topo *t;
    const pol *po = d->cfg->pol;
    o->parts = calloc((po ? po->n_partitions : 0) + 1, sizeof *o->parts);
    if (!o->parts)
        abort();
    if (n) {
        nodes_fill_info(&d->ctl.state, n, &o->ni);
        o->ni.partitions = o->parts;
        o->ni.n_partitions = nodes__partitions(po, n, o->parts);
        t = n->topo;
    } else if (!want || !*want || strcmp(want, d->cfg->name) == 0) {
        nodes__local_info(d, &o->ni);
        t = d->topo;
    } else {
        free(o->parts);
        o->parts = NULL;
        return -1;
    }
    o->ni.topology = topo_to_pb(t);
    return 0;
}

void nodes_one_free(nodes_one *o)
{
    topo_pb_free(o->ni.topology);
    nodes_info_free(&o->ni);
    free(o->parts);
}

void nodes_node(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *want = e->node_request->name;
    nodes_one o;
    if (nodes_one_make(d, want, &o) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "node '%.64s' not found (jz nodes lists them)", want);
        return;
    }
    Jazari__NodeReply r = JAZARI__NODE_REPLY__INIT;
    r.node = &o.ni;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODE_REPLY, &r);
    nodes_one_free(&o);
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

void nodes_list_make(jzd *d, nodes_list *l)
{
    size_t n = d->ctl_running ? d->ctl.state.n_nodes : 0;
    const pol *po = d->cfg->pol;
    size_t np = po ? po->n_partitions : 0;
    Jazari__NodeInfo *infos = xcalloc(n + 1, sizeof *infos);
    Jazari__NodeInfo **ptrs = xcalloc(n + 1, sizeof(Jazari__NodeInfo *));
    /* Each node's partitions, and each partition's nodes (names point
     * into the state and the policy). */
    char **node_parts = xcalloc(n * np + 1, sizeof *node_parts);
    char **part_nodes = xcalloc(n * np + 1, sizeof *part_nodes);
    Jazari__PartitionInfo *pinfo = xcalloc(np + 1, sizeof *pinfo);
    Jazari__PartitionInfo **pptrs = xcalloc(np + 1, sizeof(Jazari__PartitionInfo *));
    for (size_t k = 0; k < np; k++) {
        const pol_partition *pt = &po->partitions[k];
        jazari__partition_info__init(&pinfo[k]);
        pinfo[k].name = (char *)pt->name;
        pinfo[k].default_time_s = pt->default_time_s;
        pinfo[k].max_time_s = pt->max_time_s;
        pinfo[k].is_default = pt->is_default;
        pinfo[k].state = "up";
        pinfo[k].nodes = part_nodes + k * n;
        pptrs[k] = &pinfo[k];
    }
    uint32_t *used = xcalloc(n + 1, sizeof *used);
    if (n)
        fsm_gpus_used(&d->ctl.state, used);
    for (size_t i = 0; i < n; i++) {
        const fsm_node *fn = &d->ctl.state.nodes[i];
        nodes_fill_info_used(&d->ctl.state, fn, &infos[i], used[i]);
        infos[i].topology = nodes__brief_topology(fn->topo);
        infos[i].partitions = node_parts + i * np;
        infos[i].n_partitions = nodes__partitions(po, fn, infos[i].partitions);
        for (size_t k = 0; k < np; k++)
            if (pol_partition_has_node(&po->partitions[k], fn->name, fn->site, fn->labels))
                pinfo[k].nodes[pinfo[k].n_nodes++] = fn->name;
        ptrs[i] = &infos[i];
    }
    free(used);
    /* An agent (or a controller before its node is registered) knows itself. */
    if (n == 0) {
        nodes__local_info(d, &infos[0]);
        infos[0].topology = nodes__brief_topology(d->topo);
        ptrs[0] = &infos[0];
        n = 1;
    }
    jazari__nodes_reply__init(&l->r);
    l->r.nodes = ptrs;
    l->r.n_nodes = n;
    l->r.partitions = pptrs;
    l->r.n_partitions = np;
    l->infos = infos;
    l->node_parts = node_parts;
    l->part_nodes = part_nodes;
    l->pinfo = pinfo;
}

void nodes_list_free(nodes_list *l)
{
    for (size_t i = 0; i < l->r.n_nodes; i++) {
        topo_pb_free(l->infos[i].topology);
        nodes_info_free(&l->infos[i]);
    }
    free(l->infos);
    free(l->r.nodes);
    free(l->node_parts);
    free(l->part_nodes);
    free(l->pinfo);
    free(l->r.partitions);
}

void nodes_nodes(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    nodes_list l;
    nodes_list_make(d, &l);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_NODES_REPLY, &l.r);
    nodes_list_free(&l);
}

size_t nodes_encode(jzd *d, buf *out)
{
    nodes_list l;
    nodes_list_make(d, &l);
    size_t n = jazari__nodes_reply__get_packed_size(&l.r);
    jazari__nodes_reply__pack(&l.r, buf_extend(out, n));
    nodes_list_free(&l);
    return n;
}

void nodes_status_make(jzd *d, nodes_status_t *st)
{
    ctl *k = &d->ctl;
    Jazari__StatusReply *rp = &st->r;
    jazari__status_reply__init(rp);
    Jazari__ControllerInfo *infos = st->infos, **ptrs = st->ptrs;
    const ctl_peer *leader = ctl_leader(k);
    rp->leader = leader ? (char *)leader->name : "";
    rp->term = k->raft.current_term;
    rp->commit_index = k->raft.commit_index;
    rp->election_timeout_ms = k->election_ms;
    rp->peer_rtt_ms = k->rtt_ms;
    /* The leader writes the newest format every voter announced; a follower
     * hears from the leader but not always from the other followers, so it
     * says the format of the last entry it applied (the leader's choice). */
    if (k->started && (ctl_is_leader(k) || !k->state.format))
        rp->log_format = ctl_log_format(k);
    else
        rp->log_format = k->state.format;
    rp->log_format_newest = ctl_log_format_newest();
    for (unsigned i = 0; i < k->n_peers; i++) {
        jazari__controller_info__init(&infos[i]);
        infos[i].name = k->peers[i].name;
        infos[i].address = k->peers[i].address;
        infos[i].software_version = (char *)ctl_peer_version(k, i);
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
    rp->controllers = ptrs;
    rp->n_controllers = k->n_peers;
    for (size_t i = 0; i < k->state.n_nodes; i++)
        rp->nodes_up += strcmp(k->state.nodes[i].state, "up") == 0;
    rp->nodes_total = (uint32_t)k->state.n_nodes;
    rp->jobs_active = k->state.n_active;
    rp->problem = k->broken ? k->broken_why : k->disk_full ? k->disk_why : k->ids_lost ? k->ids_why : "";
}

void nodes_status(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    nodes_status_t st;
    nodes_status_make(d, &st);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_STATUS_REPLY, &st.r);
}

void nodes_topology(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    Jazari__TopologyReply r = JAZARI__TOPOLOGY_REPLY__INIT;
    r.topology = topo_to_pb(d->topo);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_TOPOLOGY_REPLY, &r);
    topo_pb_free(r.topology);
}

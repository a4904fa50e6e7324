/* topo_pb.c - a topo to and from its protobuf message. */
#include "topo_pb.h"

#include "../../common/xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* protobuf-c treats NULL strings in proto3 as empty; keep them empty. */
static char *topo_pb__s(const char *s)
{
    return (char *)(s ? s : "");
}

/* The message and the arrays behind it, freed together. */
typedef struct topo_pb__holder {
    Jazari__Topology msg; /* first: the pointer handed out */
    Jazari__Package *pk;
    Jazari__NumaNode *nn;
    Jazari__Gpu *g;
    Jazari__GpuLink *l;
} topo_pb__holder;

Jazari__Topology *topo_to_pb(const topo *t)
{
    topo_pb__holder *h = xcalloc(1, sizeof *h);
    Jazari__Topology *m = &h->msg;
    jazari__topology__init(m);
    m->name = topo_pb__s(t->name);
    m->source = topo_pb__s(t->source);
    m->cores = t->cores;
    m->pus = t->pus;

    h->pk = xcalloc(t->n_packages, sizeof(Jazari__Package));
    m->packages = xcalloc(t->n_packages, sizeof(Jazari__Package *));
    m->n_packages = t->n_packages;
    for (size_t i = 0; i < t->n_packages; i++) {
        Jazari__Package *pk = &h->pk[i];
        jazari__package__init(pk);
        pk->os_index = t->packages[i].os_index;
        pk->cores = t->packages[i].cores;
        pk->pus = t->packages[i].pus;
        pk->cpuset = topo_pb__s(t->packages[i].cpuset);
        m->packages[i] = pk;
    }

    h->nn = xcalloc(t->n_numa, sizeof(Jazari__NumaNode));
    m->numa_nodes = xcalloc(t->n_numa, sizeof(Jazari__NumaNode *));
    m->n_numa_nodes = t->n_numa;
    for (size_t i = 0; i < t->n_numa; i++) {
        Jazari__NumaNode *nn = &h->nn[i];
        jazari__numa_node__init(nn);
        nn->os_index = t->numa[i].os_index;
        nn->package = t->numa[i].package;
        nn->memory_bytes = t->numa[i].memory_bytes;
        nn->cpuset = topo_pb__s(t->numa[i].cpuset);
        m->numa_nodes[i] = nn;
    }

    h->g = xcalloc(t->n_gpus, sizeof(Jazari__Gpu));
    m->gpus = xcalloc(t->n_gpus, sizeof(Jazari__Gpu *));
    m->n_gpus = t->n_gpus;
    for (size_t i = 0; i < t->n_gpus; i++) {
        const topo_gpu *s = &t->gpus[i];
        Jazari__Gpu *g = &h->g[i];
        jazari__gpu__init(g);
        g->index = s->index;
        g->uuid = topo_pb__s(s->uuid);
        g->model = topo_pb__s(s->model);
        g->memory_bytes = s->memory_bytes;
        g->pci_bus_id = topo_pb__s(s->pci_bus_id);
        g->numa = s->numa;
        g->cpuset = topo_pb__s(s->cpuset);
        m->gpus[i] = g;
    }

    size_t nl = t->n_gpus * t->n_gpus;
    h->l = xcalloc(nl, sizeof(Jazari__GpuLink));
    m->links = xcalloc(nl, sizeof(Jazari__GpuLink *));
    m->n_links = nl;
    for (size_t i = 0; i < nl; i++) {
        Jazari__GpuLink *l = &h->l[i];
        jazari__gpu_link__init(l);
        l->kind = (Jazari__LinkKind)t->links[i].kind;
        l->nvlinks = t->links[i].nvlinks;
        m->links[i] = l;
    }
    return m;
}

void topo_pb_free(Jazari__Topology *m)
{
    if (!m)
        return;
    topo_pb__holder *h = (topo_pb__holder *)m;
    free(h->pk);
    free(m->packages);
    free(h->nn);
    free(m->numa_nodes);
    free(h->g);
    free(m->gpus);
    free(h->l);
    free(m->links);
    free(h);
}

topo *topo_from_pb(const Jazari__Topology *m, char *err, size_t errlen)
{
    if (m->n_gpus > TOPO_PB_MAX_GPUS || m->n_numa_nodes > TOPO_PB_MAX_NUMA ||
        m->n_packages > TOPO_PB_MAX_NUMA) {
        snprintf(err, errlen, "topology too large: %zu GPUs, %zu NUMA nodes, %zu packages", m->n_gpus,
                 m->n_numa_nodes, m->n_packages);
        return NULL;
    }
    if (m->n_links != m->n_gpus * m->n_gpus) {
        snprintf(err, errlen, "topology link matrix has %zu entries for %zu GPUs", m->n_links, m->n_gpus);
        return NULL;
    }
    for (size_t i = 0; i < m->n_links; i++) {
        if ((unsigned)m->links[i]->kind > (unsigned)JAZARI__LINK_KIND__LINK_SYS) {
            snprintf(err, errlen, "topology link %zu has unknown kind %d", i, (int)m->links[i]->kind);
            return NULL;
        }
    }
    topo *t = xcalloc(1, sizeof *t);
    t->name = xstrdup_known(m->name);
    t->source = xstrdup_known(m->source);
    t->cores = m->cores;
    t->pus = m->pus;
    t->n_packages = m->n_packages;
    t->packages = xcalloc(m->n_packages, sizeof(topo_package));
    for (size_t i = 0; i < m->n_packages; i++) {
        t->packages[i].os_index = m->packages[i]->os_index;
        t->packages[i].cores = m->packages[i]->cores;
        t->packages[i].pus = m->packages[i]->pus;
        t->packages[i].cpuset = xstrdup_known(m->packages[i]->cpuset);
    }
    t->n_numa = m->n_numa_nodes;
    t->numa = xcalloc(m->n_numa_nodes, sizeof(topo_numa));
    for (size_t i = 0; i < m->n_numa_nodes; i++) {
        const Jazari__NumaNode *n = m->numa_nodes[i];
        t->numa[i].os_index = n->os_index;
        t->numa[i].package = n->package >= 0 && (size_t)n->package < m->n_packages ? n->package : -1;
        t->numa[i].memory_bytes = n->memory_bytes;
        t->numa[i].cpuset = xstrdup_known(n->cpuset);
    }
    t->n_gpus = m->n_gpus;
    t->gpus = xcalloc(m->n_gpus, sizeof(topo_gpu));
    for (size_t i = 0; i < m->n_gpus; i++) {
        const Jazari__Gpu *g = m->gpus[i];
        t->gpus[i].index = (unsigned)i;
        t->gpus[i].uuid = xstrdup_known(g->uuid);
        t->gpus[i].model = xstrdup_known(g->model);
        t->gpus[i].memory_bytes = g->memory_bytes;
        t->gpus[i].pci_bus_id = xstrdup_known(g->pci_bus_id);
        t->gpus[i].numa = g->numa < 0 ? -1 : g->numa;
        t->gpus[i].cpuset = xstrdup_known(g->cpuset);
    }
    t->links = xcalloc(m->n_links, sizeof(topo_link));
    for (size_t i = 0; i < m->n_links; i++) {
        t->links[i].kind = (topo_link_kind)m->links[i]->kind;
        t->links[i].nvlinks = t->links[i].kind == TOPO_LINK_NV ? m->links[i]->nvlinks : 0;
    }
    return t;
}

/* test_topo_pb.c - a topology survives the wire, and a bad one is refused. */
#include <stdlib.h>

#include "../../lib/hw/topo.h"
#include "../../lib/hw/topo_pb.h"
#include "test.h"

static char *dup_s(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Two packages, two GPUs joined by NVLink, one GPU of unknown locality. */
static topo *sample(void)
{
    topo *t = calloc(1, sizeof *t);
    t->name = dup_s("n1");
    t->source = dup_s("sample.xml");
    t->cores = 16;
    t->pus = 32;
    t->n_packages = 2;
    t->packages = calloc(2, sizeof *t->packages);
    for (unsigned i = 0; i < 2; i++) {
        t->packages[i] = (topo_package){.os_index = i, .cores = 8, .pus = 16};
        t->packages[i].cpuset = dup_s(i ? "16-31" : "0-15");
    }
    t->n_numa = 2;
    t->numa = calloc(2, sizeof *t->numa);
    for (unsigned i = 0; i < 2; i++) {
        t->numa[i] = (topo_numa){.os_index = i, .package = (int)i, .memory_bytes = 1ull << 36};
        t->numa[i].cpuset = dup_s(t->packages[i].cpuset);
    }
    t->n_gpus = 3;
    t->gpus = calloc(3, sizeof *t->gpus);
    for (unsigned i = 0; i < 3; i++) {
        topo_gpu *g = &t->gpus[i];
        g->index = i;
        g->numa = i == 2 ? -1 : 0;
        g->uuid = i == 2 ? NULL : dup_s(i ? "GPU-2222" : "GPU-1111");
        g->model = dup_s("NVIDIA H100 80GB HBM3");
        g->memory_bytes = i == 2 ? 0 : 85899345920ull;
        g->pci_bus_id = dup_s(i == 0 ? "0000:18:00.0" : i == 1 ? "0000:2a:00.0" : "0000:9a:00.0");
        g->cpuset = i == 2 ? NULL : dup_s("0-15");
    }
    t->links = calloc(9, sizeof *t->links);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
            t->links[i * 3 + j] = i == j             ? (topo_link){TOPO_LINK_X, 0}
                                  : (i < 2 && j < 2) ? (topo_link){TOPO_LINK_NV, 18}
                                                     : (topo_link){TOPO_LINK_SYS, 0};
    return t;
}

TEST(topo_pb_round_trip)
{
    topo *t = sample();
    Jazari__Topology *m = topo_to_pb(t);
    /* Through real bytes, as on the wire. */
    size_t n = jazari__topology__get_packed_size(m);
    uint8_t *bytes = malloc(n);
    jazari__topology__pack(m, bytes);
    topo_pb_free(m);
    Jazari__Topology *back = jazari__topology__unpack(NULL, n, bytes);
    free(bytes);
    REQUIRE(back != NULL);
    char err[200];
    topo *u = topo_from_pb(back, err, sizeof err);
    jazari__topology__free_unpacked(back, NULL);
    REQUIRE(u != NULL);
    CHECK_EQ_STR(u->name, "n1");
    CHECK_EQ_INT(u->n_packages, 2);
    CHECK_EQ_STR(u->packages[1].cpuset, "16-31");
    CHECK_EQ_INT(u->n_numa, 2);
    CHECK_EQ_INT(u->numa[1].package, 1);
    CHECK_EQ_INT(u->numa[0].memory_bytes, 1ull << 36);
    CHECK_EQ_INT(u->n_gpus, 3);
    CHECK_EQ_STR(u->gpus[1].uuid, "GPU-2222");
    CHECK(u->gpus[2].uuid == NULL); /* unknown stays unknown */
    CHECK(u->gpus[2].cpuset == NULL);
    CHECK_EQ_INT(u->gpus[2].numa, -1);
    CHECK_EQ_INT(u->gpus[0].memory_bytes, 85899345920ull);
    CHECK_EQ_INT(topo_link_get(u, 0, 1).kind, TOPO_LINK_NV);
    CHECK_EQ_INT(topo_link_get(u, 0, 1).nvlinks, 18);
    CHECK_EQ_INT(topo_link_get(u, 1, 2).kind, TOPO_LINK_SYS);
    CHECK_EQ_INT(topo_link_get(u, 2, 2).kind, TOPO_LINK_X);
    topo_free(u);
    topo_free(t);
}

TEST(topo_pb_refuses_inconsistent)
{
    topo *t = sample();
    Jazari__Topology *m = topo_to_pb(t);
    char err[200];
    m->n_links = 8; /* not 3 x 3 */
    CHECK(topo_from_pb(m, err, sizeof err) == NULL);
    CHECK(strstr(err, "8 entries for 3 GPUs") != NULL);
    m->n_links = 9;
    m->links[4]->kind = (Jazari__LinkKind)42;
    CHECK(topo_from_pb(m, err, sizeof err) == NULL);
    CHECK(strstr(err, "unknown kind 42") != NULL);
    m->links[4]->kind = JAZARI__LINK_KIND__LINK_X;
    m->numa_nodes[0]->package = 99; /* out of range: no package */
    topo *u = topo_from_pb(m, err, sizeof err);
    REQUIRE(u != NULL);
    CHECK_EQ_INT(u->numa[0].package, -1);
    topo_free(u);
    topo_pb_free(m);
    topo_free(t);
}

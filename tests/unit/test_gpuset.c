/* test_gpuset.c - the best-connected free GPUs, on real machines. */
#include <stdlib.h>

#include "../../lib/sched/gpuset.h"
#include "test.h"

static topo *load(const char *dir, const char *name)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    topo *t = NULL;
    topo_load_opts o = {.xml_path = path, .name = NULL, .probe_gpus = false};
    if (topo_load(&o, &t, err, sizeof err) != 0) {
        test_fail(__FILE__, __LINE__, "%s", err);
        return NULL;
    }
    return t;
}

/* Picks want GPUs with the GPUs listed in busy taken; the result as
 * "a,b,c" into out. */
static const char *pick(const topo *t, const char *busy, uint32_t want, char *out, size_t len)
{
    bool taken[64] = {false};
    for (const char *p = busy; p && *p;) {
        char *end;
        taken[strtoul(p, &end, 10)] = true;
        p = *end ? end + 1 : end;
    }
    uint32_t set[64];
    if (gpuset_pick(t, taken, want, set) != 0)
        return "none";
    size_t o = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < want; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%u", i ? "," : "", set[i]);
    return out;
}

TEST(gpuset_dgx2_keeps_a_job_on_one_baseboard)
{
    topo *t = load(test_hwloc_dir(), "nvidiaDGX2.xml");
    REQUIRE(t && t->n_gpus == 16);
    char b[128];
    CHECK_EQ_STR(pick(t, "", 8, b, sizeof b), "0,1,2,3,4,5,6,7");
    /* One GPU of the first board taken: eight more fit only on the other. */
    CHECK_EQ_STR(pick(t, "3", 8, b, sizeof b), "8,9,10,11,12,13,14,15");
    CHECK_EQ_STR(pick(t, "0,1,2,3,8", 4, b, sizeof b), "4,5,6,7");
    CHECK_EQ_STR(pick(t, "0,1,2,3,4,5,6,7,8", 8, b, sizeof b), "none");
    uint32_t across[2] = {0, 8};
    CHECK(gpuset_weakest(t, across, 2) == 100); /* SYS */
    topo_free(t);
}

/* A small job goes where GPUs are busy already: a whole free board (or
 * pair) stays whole for a job that needs it. */
TEST(gpuset_small_jobs_keep_free_domains_whole)
{
    topo *t = load(test_hwloc_dir(), "nvidiaDGX2.xml");
    REQUIRE(t && t->n_gpus == 16);
    char b[128];
    CHECK_EQ_STR(pick(t, "8", 1, b, sizeof b), "9");
    CHECK_EQ_STR(pick(t, "8", 2, b, sizeof b), "9,10");
    CHECK_EQ_STR(pick(t, "0,1,2,3,4,5,6", 1, b, sizeof b), "7");
    topo_free(t);
    t = load(test_fixtures_dir(), "topologies/a100-pcie-nvbridge-4gpu.xml");
    REQUIRE(t && t->n_gpus == 4);
    CHECK_EQ_STR(pick(t, "2", 1, b, sizeof b), "3"); /* 0,1 stay a pair */
    topo_free(t);
}

TEST(gpuset_nvlink_pairs_stay_pairs)
{
    topo *t = load(test_hwloc_dir(), "power8gpudistances.xml");
    REQUIRE(t && t->n_gpus == 4);
    char b[128];
    CHECK_EQ_STR(pick(t, "", 2, b, sizeof b), "0,1");
    CHECK_EQ_STR(pick(t, "0", 2, b, sizeof b), "2,3"); /* not 1 and 2 across sockets */
    topo_free(t);
    t = load(test_fixtures_dir(), "topologies/a100-pcie-nvbridge-4gpu.xml");
    REQUIRE(t && t->n_gpus == 4);
    CHECK_EQ_STR(pick(t, "1", 2, b, sizeof b), "2,3");
    CHECK_EQ_STR(pick(t, "1,3", 2, b, sizeof b), "0,2");
    topo_free(t);
}

TEST(gpuset_pcie_tree_prefers_one_switch)
{
    topo *t = load(test_fixtures_dir(), "topologies/pcie-8gpu-2socket.xml");
    REQUIRE(t && t->n_gpus == 8);
    char b[128];
    uint32_t set[8];
    bool none[8] = {false};
    REQUIRE(gpuset_pick(t, none, 2, set) == 0);
    CHECK(gpuset_weakest(t, set, 2) == 500); /* two GPUs behind one switch: PIX */
    /* Four GPUs: one socket's tree, never across sockets. */
    REQUIRE(gpuset_pick(t, none, 4, set) == 0);
    CHECK(gpuset_weakest(t, set, 4) > 100);
    (void)b;
    topo_free(t);
}

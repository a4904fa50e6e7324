/* test_usage.c - what an agent reports of an ended part (daemon/usage.c):
 * the PartUsage made from its end, and the bounds the leader holds an
 * agent's report to before it commits it. */
#include <stdint.h>
#include <string.h>

#include "../../daemon/jzd.h"
#include "test.h"

TEST(usage_pb_from_an_end)
{
    step_end e;
    memset(&e, 0, sizeof e);
    e.cpu_ms = 1534;
    e.max_rss_bytes = 104857600;
    e.energy_mj = 481600;
    e.gpu_util_pct = 60;
    e.has_gpu_util = true;
    Jazari__PartUsage u;
    usage_pb(&e, &u);
    CHECK_EQ_INT(u.cpu_ms, 1534);
    CHECK_EQ_INT(u.max_rss_bytes, 104857600);
    CHECK_EQ_INT(u.energy_mj, 481600);
    CHECK_EQ_INT(u.gpu_util_pct, 60);
    CHECK(u.has_gpu_util);
    /* Not measured: no percentage, whatever the field held. */
    e.has_gpu_util = false;
    usage_pb(&e, &u);
    CHECK(!u.has_gpu_util);
    CHECK_EQ_INT(u.gpu_util_pct, 0);
}

TEST(usage_valid_bounds_an_agents_report)
{
    char why[160] = "";
    Jazari__PartUsage u = JAZARI__PART_USAGE__INIT;
    CHECK(usage_valid(&u, why, sizeof why)); /* nothing used: fine */
    u.cpu_ms = 3600ull * 1000 * 64;
    u.max_rss_bytes = 512ull << 30;
    u.energy_mj = 8ull * 700 * 3600 * 1000;
    u.gpu_util_pct = 100;
    u.has_gpu_util = true;
    CHECK(usage_valid(&u, why, sizeof why)); /* an hour of 64 CPUs and 8 busy GPUs */

    Jazari__PartUsage bad = u;
    bad.gpu_util_pct = 101;
    CHECK(!usage_valid(&bad, why, sizeof why));
    CHECK(strstr(why, "gpu_util_pct 101") != NULL);
    bad = u;
    bad.has_gpu_util = false; /* a percentage that was not measured */
    CHECK(!usage_valid(&bad, why, sizeof why));
    bad = u;
    bad.cpu_ms = UINT64_MAX;
    CHECK(!usage_valid(&bad, why, sizeof why));
    CHECK(strstr(why, "cpu_ms") != NULL);
    bad = u;
    bad.max_rss_bytes = 1ull << 62;
    CHECK(!usage_valid(&bad, why, sizeof why));
    CHECK(strstr(why, "max_rss_bytes") != NULL);
    bad = u;
    bad.energy_mj = UINT64_MAX / 2;
    CHECK(!usage_valid(&bad, why, sizeof why));
    CHECK(strstr(why, "energy_mj") != NULL);
}

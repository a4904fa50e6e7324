/* test_clock.c - the leader's guarded wall clock. */
#include "../../common/clock.h"
#include "test.h"

TEST(clock_guard_follows_slewing_and_ignores_a_short_jump)
{
    clock_guard g = {0};
    bool jumped, believed;
    const int64_t day = 86400000;
    int64_t w = 1700000000000, m = 5000;
    CHECK_EQ_INT(clock_guard_now(&g, w, m, &jumped, &believed), w);
    /* NTP slews: followed. */
    CHECK_EQ_INT(clock_guard_now(&g, w + 1005, m + 1000, &jumped, &believed), w + 1005);
    CHECK(!jumped);
    /* The wall clock jumps a day ahead for ten seconds: the guard goes on
     * with the monotonic clock, and says so once. */
    CHECK_EQ_INT(clock_guard_now(&g, w + day + 2000, m + 2000, &jumped, &believed), w + 2005);
    CHECK(jumped && !believed);
    CHECK_EQ_INT(clock_guard_now(&g, w + day + 12000, m + 12000, &jumped, &believed), w + 12005);
    CHECK(!jumped && !believed);
    /* It comes back: in step again, no time ran backwards or stayed ahead. */
    CHECK_EQ_INT(clock_guard_now(&g, w + 13000, m + 13000, &jumped, &believed), w + 13000);
    CHECK(!jumped);
}

TEST(clock_guard_believes_a_jump_that_lasts)
{
    clock_guard g = {0};
    bool jumped, believed;
    int64_t w = 1700000000000, m = 0;
    clock_guard_now(&g, w, m, &jumped, &believed);
    /* An admin set the clock back an hour: believed after a minute. */
    CHECK_EQ_INT(clock_guard_now(&g, w - 3600000 + 1000, m + 1000, &jumped, &believed), w + 1000);
    CHECK(jumped);
    CHECK_EQ_INT(clock_guard_now(&g, w - 3600000 + 30000, m + 30000, &jumped, &believed), w + 30000);
    int64_t t = clock_guard_now(&g, w - 3600000 + 61001, m + 61001, &jumped, &believed);
    CHECK(believed);
    CHECK_EQ_INT(t, w - 3600000 + 61001);
}

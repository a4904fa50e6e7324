/* test_cpulist.c - CPU lists. */
#include "../../common/cpulist.h"
#include "test.h"

TEST(cpulist_round_trip)
{
    bool set[64];
    CHECK(cpulist_parse("0-3,8,10-11", set, 64) == 7);
    CHECK(set[0] && set[3] && !set[4] && set[8] && !set[9] && set[11]);
    buf b = BUF_INIT;
    cpulist_format(set, 64, &b);
    CHECK(strcmp(buf_str(&b), "0-3,8,10-11") == 0);
    buf_free(&b);
    CHECK(cpulist_parse("", set, 64) == 0);
    CHECK(cpulist_parse("5,5,4-5", set, 64) == 2); /* repeats count once */
    CHECK(cpulist_last("0-3,40") == 40);
    CHECK(cpulist_last("") == -1);
}

TEST(cpulist_rejects_malformed)
{
    bool set[8];
    CHECK(cpulist_parse("0-", set, 8) == -1);
    CHECK(cpulist_parse("3-1", set, 8) == -1);
    CHECK(cpulist_parse("a", set, 8) == -1);
    CHECK(cpulist_parse("1,,2", set, 8) == -1);
    CHECK(cpulist_parse("8", set, 8) == -1); /* beyond the set */
    CHECK(cpulist_parse("99999999", set, 8) == -1);
    CHECK(cpulist_last("1 2") == -1);
}

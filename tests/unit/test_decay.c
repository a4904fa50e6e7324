/* test_decay.c - the integer half-life decay that replicas compute alike. */
#include <math.h>
#include <stdint.h>

#include "../../common/decay.h"
#include "test.h"

TEST(decay_follows_exp2_closely)
{
    const uint64_t hl = 7 * 86400 * 1000ull; /* a week, in ms */
    const uint64_t vals[] = {1000000, 123456789, 1ull << 40, 9000000000000000ull};
    double worst = 0;
    for (size_t v = 0; v < sizeof vals / sizeof *vals; v++)
        for (uint64_t t = 0; t < 20 * hl; t += hl / 37 + 12345) {
            double want = (double)vals[v] * exp2(-(double)t / (double)hl);
            double got = (double)decay_halflife(vals[v], t, hl);
            /* Within 2e-5, or one unit (integers round down). */
            double off = fabs(got - want) / (want * 2e-5 > 1 ? want * 2e-5 : 1);
            worst = off > worst ? off : worst;
        }
    CHECK(worst <= 1.0);
}

TEST(decay_is_exact_at_whole_half_lives_and_monotonic)
{
    CHECK_EQ_INT(decay_halflife(1 << 20, 0, 1000), 1 << 20);
    CHECK_EQ_INT(decay_halflife(1 << 20, 1000, 1000), 1 << 19);
    CHECK_EQ_INT(decay_halflife(1 << 20, 3000, 1000), 1 << 17);
    CHECK_EQ_INT(decay_halflife(12345, 64000, 1000), 0);
    CHECK_EQ_INT(decay_halflife(12345, UINT64_MAX, 1), 0);
    CHECK_EQ_INT(decay_halflife(12345, 5000, 0), 12345); /* no half-life: no decay */
    uint64_t last = UINT64_MAX;
    for (uint64_t t = 0; t < 5000; t += 7) {
        uint64_t v = decay_halflife(UINT64_MAX / 3, t, 1000);
        CHECK(v <= last);
        last = v;
    }
}

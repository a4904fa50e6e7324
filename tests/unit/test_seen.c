/* test_seen.c - the leader's liveness on a made-up clock. */
#include <string.h>

#include "../../daemon/seen.h"
#include "test.h"

typedef struct downs {
    char names[8][CONFIG_NAME_MAX + 1];
    int n;
} downs;

static void on_down(void *arg, const char *name, uint64_t silent_ms)
{
    downs *d = arg;
    (void)silent_ms;
    if (d->n < 8)
        snprintf(d->names[d->n++], sizeof d->names[0], "%s", name);
}

static const char *const up[] = {"n1", "n2"};
static const seen_limit second = {.timeout_ms = 1000, .rtts = 10};

/* Every 100 ms from `from` to `to`: n1 and n2 heartbeat (while `beat`),
 * and the tick checks them in `term` (0: following). */
static void run(seen *s, uint64_t term, uint64_t from, uint64_t to, bool beat, downs *d)
{
    for (uint64_t t = from; t < to; t += 100) {
        if (beat && term) /* a follower answers heartbeats NOT_LEADER: it hears nothing */
            for (int i = 0; i < 2; i++)
                seen_heard(s, up[i], t, 1, 100);
        seen_check(s, term, t, &second, up, 2, on_down, d);
    }
}

TEST(seen_a_silent_node_is_reported_once)
{
    seen s = {0};
    downs d = {0};
    run(&s, 1, 0, 3000, true, &d);
    CHECK_EQ_INT(d.n, 0);
    seen_heard(&s, "n1", 3000, 1, 100);
    for (uint64_t t = 3000; t < 6000; t += 100) {
        seen_heard(&s, "n1", t, 1, 100);
        seen_check(&s, 1, t, &second, up, 2, on_down, &d);
    }
    REQUIRE(d.n == 1);
    CHECK_EQ_STR(d.names[0], "n2");
    seen_free(&s);
}

/* The bug a re-elected leader had: it led, followed for longer than the
 * timeout, led again, and found every live node silent since it last led. */
TEST(seen_a_reelected_leader_does_not_find_live_nodes_silent)
{
    seen s = {0};
    downs d = {0};
    run(&s, 1, 0, 2000, true, &d);       /* leads term 1 */
    run(&s, 0, 2000, 22000, true, &d);   /* follows for 20 s: hears nothing */
    run(&s, 5, 22000, 22500, false, &d); /* leads again, in term 5: the agents find it */
    run(&s, 5, 22500, 30000, true, &d);  /* ... and heartbeat to it */
    CHECK_EQ_INT(d.n, 0);
    /* Lost and won again between two ticks (no tick saw it follow). */
    run(&s, 7, 40000, 40500, false, &d);
    run(&s, 7, 40500, 41000, true, &d);
    CHECK_EQ_INT(d.n, 0);
    /* Still, a node that stops is found. */
    run(&s, 7, 41000, 43000, false, &d);
    CHECK_EQ_INT(d.n, 2);
    seen_free(&s);
}

/* A far node on a slow link: heartbeats a hold plus a round trip apart.
 * With node_timeout 1 s alone it would be found silent between two; its
 * limit follows its round trip (hold + 10 round trips), and it is still
 * found once it stops. */
TEST(seen_the_limit_follows_a_slow_links_round_trips)
{
    CHECK_EQ_INT(seen_limit_of(&second, 0, 1000), 1000);   /* no measure: node_timeout */
    CHECK_EQ_INT(seen_limit_of(&second, 5, 100), 1000);    /* a LAN: node_timeout */
    CHECK_EQ_INT(seen_limit_of(&second, 400, 1000), 5000); /* 400 ms round trips */
    seen_limit fixed = {.timeout_ms = 1000, .rtts = 0};
    CHECK_EQ_INT(seen_limit_of(&fixed, 400, 1000), 1000);
    seen s = {0};
    downs d = {0};
    static const char *const far[] = {"far"};
    /* A heartbeat every 1.8 s (held 1 s, 800 ms round trips). */
    for (uint64_t t = 0; t < 20000; t += 100) {
        if (t % 1800 == 0)
            seen_heard(&s, "far", t, 800, 1000);
        seen_check(&s, 1, t, &second, far, 1, on_down, &d);
    }
    CHECK_EQ_INT(d.n, 0);
    for (uint64_t t = 0; t < 20000; t += 100) /* the same with the limit fixed at 1 s */
        seen_check(&s, 2, t + 20000, &fixed, far, 1, on_down, &d);
    CHECK_EQ_INT(d.n, 1);
    /* Silent for good: found after its limit, 9 s. */
    seen t2 = {0};
    downs d2 = {0};
    seen_heard(&t2, "far", 0, 800, 1000);
    for (uint64_t t = 0; t <= 8900; t += 100)
        seen_check(&t2, 1, t, &second, far, 1, on_down, &d2);
    CHECK_EQ_INT(d2.n, 0);
    seen_check(&t2, 1, 9100, &second, far, 1, on_down, &d2);
    CHECK_EQ_INT(d2.n, 1);
    seen_free(&t2);
    seen_free(&s);
}

/* test_prio.c - the policy file and the multifactor priority arithmetic. */
#include <math.h>
#include <stdlib.h>

#include "../../lib/sched/policy.h"
#include "../../lib/sched/prio.h"
#include "test.h"

static int parse(pol *p, const char *text, char *err, size_t len)
{
    pol_init(p);
    return pol_parse(p, "policy.conf", text, strlen(text), err, len);
}

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

TEST(policy_file_reads_accounts_qos_and_weights)
{
    pol p;
    char err[256] = "";
    int rc = parse(&p,
                   "# comment\n"
                   "weight age 5\nweight fairshare 7\nweight qos 11\nweight size 13\n"
                   "max_age 2d\nhalf_life 12h\ndefault_account um6p/misc\n"
                   "account um6p 40\naccount um6p/nlp 3   # trailing comment\naccount um6p/nlp/alice 2\n"
                   "qos low priority=1\n"
                   "qos high priority=100 preempt=normal,low grace=90s max_gpus_per_user=32\n"
                   "qos scavenger preemptible\n",
                   err, sizeof err);
    CHECK_EQ_STR(err, "");
    REQUIRE(rc == 0);
    CHECK(p.w_age == 5 && p.w_fairshare == 7 && p.w_qos == 11 && p.w_size == 13);
    CHECK_EQ_INT(p.max_age_ms, 2 * 86400000ll);
    CHECK_EQ_INT(p.half_life_ms, 12 * 3600000ll);
    CHECK_EQ_STR(p.default_account, "um6p/misc");
    CHECK_EQ_INT(pol_shares(&p, "um6p/nlp"), 3);
    CHECK_EQ_INT(pol_shares(&p, "um6p/cv"), 0);
    CHECK(pol_account_known(&p, "um6p/nlp") && pol_account_known(&p, "um6p/misc"));
    CHECK(!pol_account_known(&p, "uir") && !pol_account_known(&p, "a/b/c"));
    int high = pol_qos_find(&p, "high"), low = pol_qos_find(&p, "low");
    REQUIRE(high > 0 && low > 0);
    CHECK_EQ_INT(pol_qos_find(&p, ""), 0); /* normal */
    CHECK_EQ_INT(pol_qos_find(&p, "nope"), -1);
    CHECK(p.qos[high].preempts == ((1ull << 0) | (1ull << low)));
    CHECK(p.qos[high].grace_s == 90 && p.qos[high].max_gpus_user == 32 && p.qos[high].priority == 100);
    CHECK(p.qos[pol_qos_find(&p, "scavenger")].preemptible);
    pol_free(&p);
}

TEST(policy_accounts_and_qos_say_who_may_use_them)
{
    pol p;
    char err[256] = "";
    REQUIRE(parse(&p,
                  "account open 1\naccount open/p 1\n"
                  "account um6p 4 users=amina\naccount um6p/nlp 1\naccount um6p/cv 1 users=omar\n"
                  "account uir 1\naccount uir/x 1\naccount uir/x/salma 1\n"
                  "qos vip priority=9 accounts=um6p/nlp,uir\n",
                  err, sizeof err) == 0);
    CHECK_EQ_STR(err, "");
    CHECK(pol_account_allows(&p, "open", "anyone", false) &&
          pol_account_allows(&p, "open/p", "anyone", false));
    CHECK(pol_account_allows(&p, "um6p", "amina", false) && !pol_account_allows(&p, "um6p", "omar", false));
    CHECK(pol_account_allows(&p, "um6p/nlp", "amina", false)); /* the institute's list */
    CHECK(!pol_account_allows(&p, "um6p/nlp", "omar", false));
    /* A project's users= adds to its institute's; a user row gives shares
     * and grants, closing nothing to others. */
    CHECK(pol_account_allows(&p, "um6p/cv", "omar", false) &&
          pol_account_allows(&p, "um6p/cv", "amina", false));
    CHECK(!pol_account_allows(&p, "um6p/cv", "youssef", false));
    CHECK(pol_account_allows(&p, "uir/x", "salma", false) && pol_account_allows(&p, "uir/x", "omar", false));
    CHECK(pol_account_allows(&p, "um6p/cv", "root", true));
    int vip = pol_qos_find(&p, "vip");
    CHECK(pol_qos_allows(&p, vip, "um6p/nlp", false) && pol_qos_allows(&p, vip, "uir/x", false));
    CHECK(!pol_qos_allows(&p, vip, "um6p/cv", false) && !pol_qos_allows(&p, vip, "uirx", false));
    CHECK(pol_qos_allows(&p, 0, "um6p/cv", false));
    pol_free(&p);
}

TEST(policy_file_errors_name_the_line)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"account a 1\naccount a/b/c 1\n", "policy.conf:2: account 'a/b/c' comes before its parent 'a/b'"},
        {"account a 1\naccount a 2\n", "policy.conf:2: account 'a' is listed twice"},
        {"\n\nqos q preempt=zzz\n", "policy.conf:3: preempt=zzz: no such QoS above this line"},
        {"qos q flying=yes\n", "policy.conf:1: qos q: unknown attribute 'flying'"},
        {"qos q grace=2x\n", "policy.conf:1: qos q: grace=2x is not valid"},
        {"qos normal preempt=normal\n", "policy.conf:1: qos normal may not preempt itself"},
        {"weight speed 3\n", "policy.conf:1: write 'weight age|fairshare|qos|size N'"},
        {"half_life soon\n",
         "policy.conf:1: half_life 'soon': a duration such as 7d, 12h, 90m (at least 1s)"},
        {"account a/../b 1\n", "policy.conf:1: write 'account INSTITUTE"},
        {"account bad!name 1\n", "policy.conf:1: write 'account INSTITUTE"},
        {"nonsense\n", "policy.conf:1: 'nonsense': expected"},
        {"qos a\nqos a priority=3\n", "policy.conf:2: qos a is defined twice"},
        {"qos high preempt=normal\nqos normal preempt=high\n",
         "policy.conf:2: qos normal: its preempt= list makes a cycle"},
        {"qos normal\nqos normal\n", "policy.conf:2: qos normal is defined twice"},
        {"account a 1 users=x,\n", "policy.conf:1: write 'account INSTITUTE"},
        {"account a 1\naccount a/b/c 1 users=x\n", "policy.conf:2: write 'account INSTITUTE"},
        {"qos q accounts=a,,b\n", "policy.conf:1: qos q: accounts=a,,b is not valid"},
        {"account a 1\nqos q accounts=b\n", "policy.conf:2: qos q: accounts=b is not valid"},
        {"qos q accounts=a accounts=b\n", "policy.conf:1: qos q: accounts= given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pol p;
        char err[256] = "";
        CHECK_EQ_INT(parse(&p, bad[i].text, err, sizeof err), -1);
        if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: got \"%s\", want \"%s...\"", i, err, bad[i].want);
        pol_free(&p);
    }
    /* A line of 2000 bytes, and a NUL. */
    char big[2100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pol p;
    char err[256];
    CHECK_EQ_INT(parse(&p, big, err, sizeof err), -1);
    CHECK(strstr(err, "line longer than") != NULL);
    pol_free(&p);
    pol_init(&p);
    CHECK_EQ_INT(pol_parse(&p, "f", "qos a\0b\n", 8, err, sizeof err), -1);
    CHECK(strstr(err, "NUL") != NULL);
    pol_free(&p);
}

/* Slurm's classic fair share by hand: institutes A (3 shares) and B (1),
 * usage split evenly. S_A = 0.75, U_A = 0.5: F = 2^(-0.5/0.75). */
TEST(fairshare_follows_shares_and_usage)
{
    pol p;
    char err[256];
    REQUIRE(parse(&p, "account A 3\naccount B 1\n", err, sizeof err) == 0);
    prio_tree *t = prio_tree_new(&p);
    prio_tree_use(t, "A", "alice", 100);
    prio_tree_use(t, "B", "bob", 100);
    prio_tree_finish(t);
    CHECK(NEAR(prio_fairshare(t, "A", "alice"), exp2(-0.5 / 0.75)));
    CHECK(NEAR(prio_fairshare(t, "B", "bob"), exp2(-0.5 / 0.25)));
    /* Nothing used yet: everyone at 1. */
    prio_tree *fresh = prio_tree_new(&p);
    prio_tree_use(fresh, "A", "alice", 0);
    prio_tree_finish(fresh);
    CHECK(NEAR(prio_fairshare(fresh, "A", "alice"), 1.0));
    prio_tree_free(fresh);
    /* The rows, parents first. */
    size_t n;
    const prio_row *rows = prio_tree_rows(t, &n);
    REQUIRE(n == 4);
    CHECK_EQ_STR(rows[0].path, "A");
    CHECK_EQ_STR(rows[1].path, "A/alice");
    CHECK_EQ_STR(rows[2].path, "B");
    CHECK(NEAR(rows[0].norm_shares, 0.75) && NEAR(rows[1].norm_shares, 0.75) &&
          NEAR(rows[0].norm_usage, 0.5));
    prio_tree_free(t);
    pol_free(&p);
}

/* A user in a project that used much pays for it too: effective usage is
 * pulled towards the parent's by the user's share among its siblings. */
TEST(fairshare_effective_usage_follows_the_project)
{
    pol p;
    char err[256];
    REQUIRE(parse(&p, "account I 1\naccount I/heavy 1\naccount I/light 1\naccount J 1\n", err, sizeof err) ==
            0);
    prio_tree *t = prio_tree_new(&p);
    prio_tree_use(t, "I/heavy", "u1", 900);
    prio_tree_use(t, "I/heavy", "u2", 0);
    prio_tree_use(t, "I/light", "u3", 100);
    prio_tree_use(t, "J", "u4", 0);
    prio_tree_finish(t);
    double u2 = prio_fairshare(t, "I/heavy", "u2"), u3 = prio_fairshare(t, "I/light", "u3");
    double u4 = prio_fairshare(t, "J", "u4");
    /* By hand: I: S .5 U 1 -> UE 1. heavy: S .25, U .9, UE = .9 + (1-.9)/2 = .95.
     * u2: S .125, U 0, UE = 0 + (.95 - 0)/2 = .475: F = 2^(-3.8). */
    CHECK(NEAR(u2, exp2(-0.475 / 0.125)));
    /* light: U .1, UE = .1 + (1 - .1)/2 = .55; u3 alone: UE = .55 + 0 = .55, S .25. */
    CHECK(NEAR(u3, exp2(-0.55 / 0.25)));
    CHECK(NEAR(u4, 1.0));
    CHECK(u4 > u3 && u3 > u2);
    prio_tree_free(t);
    pol_free(&p);
}

TEST(priority_is_the_weighted_sum_of_its_factors)
{
    pol p;
    char err[256];
    REQUIRE(parse(&p,
                  "weight age 1000\nweight fairshare 10000\nweight qos 2000\nweight size 500\nmax_age 10d\n"
                  "qos high priority=50\nqos top priority=100\n",
                  err, sizeof err) == 0);
    int high = pol_qos_find(&p, "high");
    /* Waited 5 of 10 days, fair share .5, QoS 50 of 100, 16 of 64 GPUs. */
    prio_factors f = prio_factors_of(&p, 5 * 86400000ll, high, 16, 64, 2, 8, 0.5);
    CHECK(NEAR(f.age, 0.5) && NEAR(f.fairshare, 0.5) && NEAR(f.qos, 0.5) && NEAR(f.size, 0.25));
    CHECK_EQ_INT(prio_value(&p, &f), 500 + 5000 + 1000 + 125);
    /* Age stops at max_age; a CPU job's size counts nodes. */
    f = prio_factors_of(&p, 30 * 86400000ll, 0, 0, 64, 2, 8, 1.0);
    CHECK(NEAR(f.age, 1.0) && NEAR(f.qos, 0) && NEAR(f.size, 0.25));
    CHECK_EQ_INT(prio_value(&p, &f), 1000 + 10000 + 125);
    pol_free(&p);
}

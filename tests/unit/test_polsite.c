/* test_polsite.c - the policy's sites, residency and datasets
 * (lib/sched/polsite.c through pol_parse), and placement that prefers
 * the sites holding a job's data (lib/sched/plan.c). */
#include <stdlib.h>
#include <string.h>

#include "../../lib/sched/plan.h"
#include "../../lib/sched/policy.h"
#include "test.h"

static const char *const SITES = "site casa\nsite rabat\nsite fes\n"
                                 "account um6p 4\naccount um6p/health 1\naccount um6p/nlp 1\naccount uir 1\n";

/* Parses SITES then more; 0 or -1 with err. */
static int parse(pol *p, const char *more, char *err, size_t errlen)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s", SITES, more);
    pol_init(p);
    return pol_parse(p, "policy.conf", text, strlen(text), err, errlen);
}

TEST(polsite_residency_binds_an_account_and_its_projects)
{
    pol p;
    char err[512] = "";
    REQUIRE(parse(&p,
                  "residency um6p casa,rabat\nresidency um6p/health casa\n"
                  "dataset mimic casa\ndataset crawl rabat,fes\n",
                  err, sizeof err) == 0);
    CHECK(p.sites.n_sites == 3 && polsite_declared(&p.sites, "fes") && !polsite_declared(&p.sites, "agadir"));
    CHECK_EQ_STR(polsite_residency(&p.sites, "um6p/health"), "casa");       /* its own rule */
    CHECK_EQ_STR(polsite_residency(&p.sites, "um6p/health/alice"), "casa"); /* a user in it */
    CHECK_EQ_STR(polsite_residency(&p.sites, "um6p/nlp"), "casa,rabat");    /* its institute's */
    CHECK(polsite_residency(&p.sites, "uir") == NULL);                      /* none */
    CHECK(polsite_residency(&p.sites, "um6px") == NULL);                    /* a prefix is not a parent */
    CHECK(polsite_in("casa,rabat", "rabat") && !polsite_in("casa,rabat", "fes"));
    CHECK(!polsite_in("casa", "cas") && !polsite_in("casa", "") && !polsite_in("casa", NULL));
    CHECK(polsite_in(NULL, "anywhere"));
    CHECK_EQ_STR(polsite_dataset(&p.sites, "crawl"), "rabat,fes");
    CHECK(polsite_dataset(&p.sites, "nope") == NULL);
    char names[64];
    polsite_dataset_names(&p.sites, names, sizeof names);
    CHECK_EQ_STR(names, "mimic, crawl");
    pol_free(&p);
}

/* A policy line, and what the refusal must say. */
typedef struct bad_line {
    const char *line, *says;
} bad_line;

/* Each refused, naming the file and line and saying what it must. */
static void bad_lines(const bad_line *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pol p;
        char err[512] = "";
        CHECK(parse(&p, bad[i].line, err, sizeof err) == -1);
        if (!strstr(err, bad[i].says) || !strstr(err, "policy.conf:"))
            printf("    line %zu said: %s\n", i, err);
        CHECK(strstr(err, bad[i].says) != NULL);
        pol_free(&p);
    }
}

TEST(polsite_bad_lines_say_what_is_wrong)
{
    static const bad_line bad[] = {
        {"residency um6p marrakech\n",
         "site 'marrakech' is not declared by a `site` line above (declared: casa, "
         "rabat, fes)"},
        {"residency nobody casa\n", "residency nobody: no account is named so"},
        {"residency um6p casa,casa\n", "site 'casa' is named twice"},
        {"residency um6p casa,\n", "expected a comma list of sites"},
        {"residency um6p\n", "write 'residency ACCOUNT SITE,...'"},
        {"residency um6p casa\nresidency um6p rabat\n", "has a residency rule already"},
        /* A project may narrow its institute's rule, never widen it, in
         * either order. */
        {"residency um6p casa\nresidency um6p/health casa,rabat\n", "may only narrow"},
        {"residency um6p/health casa,rabat\nresidency um6p casa\n", "outside casa"},
        {"site casa\n", "site casa is declared twice"},
        {"site bad/name\n", "write 'site NAME'"},
        {"dataset d atlantis\n", "site 'atlantis' is not declared"},
        {"dataset d casa\ndataset d rabat\n", "dataset d is declared twice"},
        {"dataset ../x casa\n", "write 'dataset NAME SITE,...'"},
    };
    bad_lines(bad, sizeof bad / sizeof *bad);
    /* Sites must be declared before use, even with no site line at all. */
    pol p;
    pol_init(&p);
    char err[512] = "";
    const char *alone = "account a 1\nresidency a casa\n";
    CHECK(pol_parse(&p, "policy.conf", alone, strlen(alone), err, sizeof err) == -1);
    CHECK(strstr(err,
                 "policy.conf:2: residency a: site 'casa' is not declared by a `site` line above (none is") !=
          NULL);
    pol_free(&p);
}

static plan_job job(uint64_t id, uint32_t nodes, uint32_t per_node)
{
    plan_job j;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.limit = 100;
    j.nodes = nodes;
    j.per_node = per_node;
    j.start = -1;
    return j;
}

TEST(plan_prefers_the_nodes_of_a_jobs_data_among_those_that_fit)
{
    plan_policy fcfs = {.order = PLAN_FCFS};
    plan p;
    plan_init(&p, &fcfs, 4, 8); /* nodes 0, 1 at one site (group 1); 2, 3 at another (group 2) */
    for (size_t i = 0; i < 4; i++)
        p.nodes[i].group = i < 2 ? 1 : 2;
    bool at_second[4] = {false, false, true, true};
    /* A busy node at the first site: best fit would put a 1-GPU job there. */
    plan_job busy = job(1, 1, 6), plain = job(2, 1, 1), data = job(3, 1, 1);
    data.prefer = at_second;
    plan_submit(&p, &busy);
    CHECK(plan_pass(&p, 0, NULL, NULL) == 1);
    plan_submit(&p, &plain);
    plan_submit(&p, &data);
    CHECK(plan_pass(&p, 1, NULL, NULL) == 2);
    CHECK(plain.where[0] == busy.where[0]); /* best fit, as before */
    CHECK(at_second[data.where[0]]);        /* its data's site, though emptier */
    plan_end(&p, &busy);
    plan_end(&p, &plain);
    plan_end(&p, &data);
    /* A gang goes to the group its data is in when both could hold it
     * (without data: the first, as before). */
    plan_job gang = job(4, 2, 8), other = job(5, 2, 8);
    gang.prefer = at_second;
    plan_submit(&p, &gang);
    CHECK(plan_pass(&p, 2, NULL, NULL) == 1);
    CHECK(at_second[gang.where[0]] && at_second[gang.where[1]]);
    plan_end(&p, &gang);
    plan_submit(&p, &other);
    CHECK(plan_pass(&p, 3, NULL, NULL) == 1);
    CHECK(!at_second[other.where[0]] && !at_second[other.where[1]]);
    /* Where its data's nodes are full, it runs elsewhere rather than wait. */
    plan_job more = job(6, 1, 2), fill = job(7, 2, 8);
    more.prefer = at_second;
    plan_submit(&p, &fill);
    fill.prefer = at_second;
    CHECK(plan_pass(&p, 4, NULL, NULL) == 1 && at_second[fill.where[0]]);
    plan_end(&p, &other);
    plan_submit(&p, &more);
    CHECK(plan_pass(&p, 5, NULL, NULL) == 1 && !at_second[more.where[0]]);
    plan_end(&p, &fill);
    plan_end(&p, &more);
    plan_free(&p);
}

/* lost_after: 5m unless the file says; 0 (at once) to 30d; anything else
 * one line naming the rule. */
TEST(policy_lost_after_line)
{
    pol p;
    char err[512];
    pol_init(&p);
    CHECK_EQ_INT(p.lost_after_ms, 300000);
    CHECK_EQ_INT(pol_default()->lost_after_ms, 300000);
    REQUIRE(pol_parse(&p, "policy p.conf", "lost_after 10m\n", 15, err, sizeof err) == 0);
    CHECK_EQ_INT(p.lost_after_ms, 600000);
    REQUIRE(pol_parse(&p, "policy p.conf", "lost_after 0\n", 13, err, sizeof err) == 0);
    CHECK_EQ_INT(p.lost_after_ms, 0);
    pol_free(&p);
    static const char *const bad[] = {"lost_after\n", "lost_after 31d\n", "lost_after soon\n",
                                      "lost_after 5m 6m\n", "lost_after -1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pol_init(&p);
        err[0] = '\0';
        int rc = pol_parse(&p, "policy p.conf", bad[i], strlen(bad[i]), err, sizeof err);
        if (rc == 0 ||
            !strstr(err, "policy p.conf:1: lost_after: how long an unreachable node keeps its jobs"))
            test_fail(__FILE__, __LINE__, "%s: rc %d, \"%s\"", bad[i], rc, err);
        pol_free(&p);
    }
}

/* latency: the round trip between two declared sites, symmetric, a pair
 * once; sites declared after a latency line may have lines of their own
 * (the matrix grows). */
TEST(polsite_latency_lines)
{
    pol p;
    char err[512] = "";
    REQUIRE(parse(&p, "latency casa rabat 30ms\nlatency fes rabat 1s\nsite agadir\nlatency agadir casa 45\n",
                  err, sizeof err) == 0);
    int casa = polsite_index(&p.sites, "casa"), rabat = polsite_index(&p.sites, "rabat"),
        fes = polsite_index(&p.sites, "fes"), agadir = polsite_index(&p.sites, "agadir");
    CHECK(casa == 0 && rabat == 1 && fes == 2 && agadir == 3 && polsite_index(&p.sites, "oujda") == -1);
    CHECK_EQ_INT(polsite_rtt(&p.sites, casa, rabat), 30);
    CHECK_EQ_INT(polsite_rtt(&p.sites, rabat, casa), 30); /* symmetric */
    CHECK_EQ_INT(polsite_rtt(&p.sites, rabat, fes), 1000);
    CHECK_EQ_INT(polsite_rtt(&p.sites, casa, agadir), 45000); /* no unit: seconds, as every duration */
    CHECK_EQ_INT(polsite_rtt(&p.sites, casa, casa), 0);
    CHECK(polsite_rtt(&p.sites, casa, fes) == POLSITE_RTT_UNKNOWN); /* no line */
    CHECK(polsite_rtt(&p.sites, casa, -1) == POLSITE_RTT_UNKNOWN);
    CHECK(polsite_rtt(&p.sites, casa, 9) == POLSITE_RTT_UNKNOWN);
    CHECK(p.sites.n_rtt == 4);
    pol_free(&p);
    /* Without a latency line: no matrix, every pair unknown. */
    REQUIRE(parse(&p, "", err, sizeof err) == 0);
    CHECK(p.sites.rtt == NULL && polsite_rtt(&p.sites, 0, 1) == POLSITE_RTT_UNKNOWN);
    pol_free(&p);
    /* "ms" is a duration's unit everywhere now, but a job's time limit
     * stays in whole seconds (500ms is not 0, unlimited). */
    uint64_t s = 0;
    CHECK(pol_time_parse("500ms", &s) == -1);
    CHECK(pol_time_parse("90s", &s) == 0 && s == 90);
    CHECK(pol_time_parse("2m", &s) == 0 && s == 120);
}

TEST(polsite_bad_latency_lines)
{
    static const bad_line bad[] = {
        {"latency casa marrakech 10ms\n",
         "policy.conf:8: latency casa marrakech: site 'marrakech' is not declared by a `site` line above "
         "(declared: casa, rabat, fes)"},
        {"latency casa rabat 10ms\nsite oujda\nlatency oujda tanger 5ms\n", "site 'tanger' is not declared"},
        {"latency casa casa 1ms\n", "latency casa casa: a site with itself"},
        {"latency casa rabat 10ms\nlatency rabat casa 12ms\n",
         "policy.conf:9: latency rabat casa: the pair has a latency line already (10ms); keep one"},
        {"latency casa rabat\n", "write 'latency SITE SITE DURATION'"},
        {"latency casa rabat 10us\n", "write 'latency SITE SITE DURATION'"},
        {"latency casa rabat 61s\n", "from 0 to 60s"},
        {"latency casa rabat -1ms\n", "from 0 to 60s"},
        {"latency casa,fes rabat 1ms\n", "write 'latency SITE SITE DURATION'"},
        {"latency casa rabat 1ms 2ms\n", "write 'latency SITE SITE DURATION'"},
        {"latency ../x rabat 1ms\n", "'../x' is not a site's name"},
    };
    bad_lines(bad, sizeof bad / sizeof *bad);
}

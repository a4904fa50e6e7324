/* test_health.c - GPU health: samples and XIDs through the fake NVML
 * (fake_nvidia-ml.c, driven by the $FAKE_NVML_STATE file these tests
 * write), the conditions derived from them (hysteresis, clearing, resets,
 * hold times), and the policy's health lines. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "lib/hw/health.h"
#include "lib/sched/policy.h"
#include "test.h"

static const char *fake_nvml(char *path, size_t len)
{
    const char *b = getenv("JAZARI_BUILD");
    snprintf(path, len, "%s/tests/fake/libnvidia-ml.so.1", b && *b ? b : "build");
    return path;
}

/* The state file of this test run, and its writer: a new file renamed
 * into place (a new inode), as a test driving a real daemon would. */
static char state_path[64];

static void state_write(const char *text)
{
    if (!state_path[0]) {
        snprintf(state_path, sizeof state_path, "/tmp/jazari-health-%d.state", (int)getpid());
        setenv("FAKE_NVML_STATE", state_path, 1);
    }
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.tmp", state_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    rename(tmp, state_path);
}

static void state_done(void)
{
    if (state_path[0])
        unlink(state_path);
    unsetenv("FAKE_NVML_STATE");
    state_path[0] = '\0';
}

static health *open_fake(void)
{
    char lib[512], err[256];
    fake_nvml(lib, sizeof lib);
    if (access(lib, R_OK) != 0) {
        test_fail(__FILE__, __LINE__, "%s missing: build it (make %s)", lib, lib);
        return NULL;
    }
    health_opts o = {lib, 0, 50};
    health *h = health_open(&o, err, sizeof err);
    if (!h)
        test_fail(__FILE__, __LINE__, "health_open: %s", err);
    return h;
}

static const health_cond *find(const health_state *st, const char *name, int gpu)
{
    for (size_t i = 0; i < st->n_conds; i++)
        if (st->conds[i].gpu == gpu && strcmp(st->conds[i].name, name) == 0)
            return &st->conds[i];
    return NULL;
}

TEST(health_samples_from_the_fake)
{
    state_write("gpu 1 temp=71 power=250500 power_limit=300000 util=93 mem_util=40 mem_used=4096 "
                "sbe_volatile=5 dbe_volatile=1 sbe_aggregate=50 dbe_aggregate=3 remap_corr=2 remap_unc=1 "
                "remap_pending=1 retired_pending=1 throttle=0xc0\n"
                "gpu 2 unsupported=ecc,remap,throttle,retired,energy\n");
    health *h = open_fake();
    REQUIRE(h);
    REQUIRE(health_gpu_count(h) == 4);
    health_sample s[4];
    CHECK_EQ_INT(health_sample_all(h, s, 4), 0);
    CHECK_EQ_STR(s[0].uuid, "GPU-7a1c0e52-0000-4000-8000-000000000000");
    CHECK_EQ_STR(s[0].model, "NVIDIA A100-SXM4-80GB");
    CHECK(!s[0].lost);
    CHECK_EQ_INT(s[0].temp_c, 40);
    CHECK_EQ_INT(s[0].temp_slowdown_c, 87);
    CHECK_EQ_INT(s[0].temp_shutdown_c, 92);
    CHECK_EQ_INT(s[1].index, 1);
    CHECK_EQ_INT(s[1].temp_c, 71);
    CHECK_EQ_INT(s[1].power_mw, 250500);
    CHECK_EQ_INT(s[1].power_limit_mw, 300000);
    CHECK_EQ_INT(s[1].util_gpu_pct, 93);
    CHECK_EQ_INT(s[1].util_mem_pct, 40);
    CHECK_EQ_INT(s[1].mem_used, 4096);
    CHECK_EQ_INT(s[1].mem_total, 85899345920ULL);
    CHECK_EQ_INT(s[1].ecc_volatile[0], 5);
    CHECK_EQ_INT(s[1].ecc_volatile[1], 1);
    CHECK_EQ_INT(s[1].ecc_aggregate[0], 50);
    CHECK_EQ_INT(s[1].ecc_aggregate[1], 3);
    CHECK_EQ_INT(s[1].remap_corrected, 2);
    CHECK_EQ_INT(s[1].remap_uncorrected, 1);
    CHECK(s[1].remap_pending && !s[1].remap_failed && s[1].retired_pending);
    CHECK_EQ_INT(s[1].throttle, HEALTH_THROTTLE_HW_THERMAL | HEALTH_THROTTLE_HW_POWER_BRAKE);
    uint32_t all = HEALTH_K_TEMP | HEALTH_K_TEMP_SLOWDOWN | HEALTH_K_TEMP_SHUTDOWN | HEALTH_K_POWER |
                   HEALTH_K_POWER_LIMIT | HEALTH_K_UTIL | HEALTH_K_MEMORY | HEALTH_K_ECC_VOLATILE |
                   HEALTH_K_ECC_AGGREGATE | HEALTH_K_RETIRED | HEALTH_K_REMAP | HEALTH_K_THROTTLE |
                   HEALTH_K_ENERGY;
    CHECK_EQ_INT(s[1].known, all);
    /* The energy counter grows at the GPU's power: 250.5 W for 100 ms or
     * more is 25 J or more; GPU 2 cannot tell (before Volta). */
    uint64_t e0 = s[1].energy_mj;
    struct timespec nap = {0, 100 * 1000000L};
    nanosleep(&nap, NULL);
    health_sample_all(h, s, 4);
    CHECK(s[1].energy_mj >= e0 + 25050 && s[1].energy_mj < e0 + 250500);
    CHECK(!(s[2].known & HEALTH_K_ENERGY) && s[2].energy_mj == 0);
    /* NOT_SUPPORTED: unknown, not an error; the rest is there. */
    CHECK_EQ_INT(s[2].known & (HEALTH_K_ECC_VOLATILE | HEALTH_K_ECC_AGGREGATE | HEALTH_K_REMAP |
                               HEALTH_K_THROTTLE | HEALTH_K_RETIRED | HEALTH_K_ENERGY),
                 0);
    CHECK(s[2].known & HEALTH_K_TEMP);
    /* GPU3: NVML cannot tell its memory. */
    CHECK(!(s[3].known & HEALTH_K_MEMORY));

    /* Rewritten: the next sample sees it; a lost GPU knows nothing else. */
    state_write("gpu 1 temp=72 lost=1\n");
    health_sample_all(h, s, 4);
    CHECK(s[1].lost);
    CHECK_EQ_INT(s[1].known, 0);
    CHECK(!s[0].lost);
    state_write("gpu 1 temp=73\n");
    health_sample_all(h, s, 4);
    CHECK(!s[1].lost);
    CHECK_EQ_INT(s[1].temp_c, 73);
    health_close(h);
    state_done();
}

/* The XID thread's wake: counts, and lets the test wait on it. */
static atomic_int wakes;
static void on_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static size_t take_within(health *h, health_xid *out, size_t max, int ms)
{
    size_t n = 0;
    for (int waited = 0; waited < ms && n == 0; waited += 10) {
        n = health_xids_take(h, out, max, NULL);
        if (n == 0) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return n;
}

TEST(health_xids_through_the_thread)
{
    state_write("# nothing yet\n");
    health *h = open_fake();
    REQUIRE(h);
    char err[256];
    atomic_store(&wakes, 0);
    REQUIRE(health_xids_start(h, on_wake, NULL, err, sizeof err) == 0);
    health_xid x[8];
    state_write("xid 2 48 1001\n");
    size_t n = take_within(h, x, 8, 5000);
    REQUIRE(n == 1);
    CHECK_EQ_INT(x[0].gpu, 2);
    CHECK_EQ_INT(x[0].xid, 48);
    CHECK(x[0].at_ms > 0);
    CHECK(atomic_load(&wakes) >= 1);
    /* Each delivered once: the same lines again bring nothing new; a new
     * SEQ does (and the older lines stay delivered). */
    state_write("xid 2 48 1001\n# again\n");
    CHECK_EQ_INT(take_within(h, x, 8, 300), 0);
    state_write("xid 2 48 1001\nxid 0 79 1002\nxid 3 13 1003\n");
    n = take_within(h, x, 8, 5000);
    for (int i = 0; i < 50 && n < 2; i++)
        n += take_within(h, x + n, 8 - n, 100);
    REQUIRE(n == 2);
    CHECK_EQ_INT(x[0].gpu, 0);
    CHECK_EQ_INT(x[0].xid, 79);
    CHECK_EQ_INT(x[1].gpu, 3);
    CHECK_EQ_INT(x[1].xid, 13);
    /* It stops within its wait. */
    health_xids_stop(h);
    health_close(h);
    state_done();
}

TEST(health_sampler_thread)
{
    state_write("gpu 1 temp=66 delay_ms=300\n");
    health *h = open_fake();
    REQUIRE(h);
    char err[256];
    atomic_store(&wakes, 0);
    REQUIRE(health_sampler_start(h, on_wake, NULL, err, sizeof err) == 0);
    health_sample s[4];
    CHECK(!health_sampler_take(h, s, 4, NULL, NULL)); /* none asked yet */
    CHECK(health_sampler_request(h));
    CHECK(!health_sampler_request(h)); /* one under way (300 ms): never two */
    for (int i = 0; i < 500 && atomic_load(&wakes) == 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(atomic_load(&wakes), 1);
    uint64_t us = 0;
    REQUIRE(health_sampler_take(h, s, 4, &us, NULL));
    CHECK_EQ_INT(s[1].temp_c, 66);
    CHECK(us >= 300000);
    CHECK(!health_sampler_take(h, s, 4, NULL, NULL)); /* once per sample */
    CHECK(health_sampler_request(h));
    health_close(h); /* stops it, mid-sample */
    state_done();
}

TEST(health_events_unsupported)
{
    state_write("gpu 0 unsupported=events\ngpu 1 unsupported=events\ngpu 2 unsupported=events\n"
                "gpu 3 unsupported=events\n");
    health *h = open_fake();
    REQUIRE(h);
    char err[256];
    CHECK(health_xids_start(h, on_wake, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "XID") != NULL);
    health_close(h);
    state_done();
}

/* A healthy sample of GPU i. */
static health_sample ok_sample(unsigned i)
{
    health_sample s;
    memset(&s, 0, sizeof s);
    s.index = i;
    s.known = HEALTH_K_TEMP | HEALTH_K_TEMP_SLOWDOWN | HEALTH_K_ECC_VOLATILE | HEALTH_K_ECC_AGGREGATE |
              HEALTH_K_REMAP | HEALTH_K_RETIRED | HEALTH_K_THROTTLE;
    s.temp_c = 40;
    s.temp_slowdown_c = 87;
    return s;
}

TEST(health_temperature_hysteresis)
{
    health_state *st = calloc(1, sizeof *st);
    REQUIRE(st);
    health_cfg cfg = {.temp_limit_c = 80, .hysteresis_c = 5};
    health_sample s = ok_sample(1);
    health_derive(st, &cfg, &s, 1, NULL, 0, 1000);
    CHECK_EQ_INT(st->n_conds, 0);
    uint64_t ch = st->changes;
    s.temp_c = 81; /* above the site's limit */
    health_derive(st, &cfg, &s, 1, NULL, 0, 2000);
    CHECK(find(st, "temp_high", 1) != NULL);
    CHECK(find(st, "temp_slowdown", 1) == NULL);
    CHECK(st->changes == ch + 1);
    s.temp_c = 87; /* at NVIDIA's slowdown threshold */
    health_derive(st, &cfg, &s, 1, NULL, 0, 3000);
    const health_cond *c = find(st, "temp_slowdown", 1);
    REQUIRE(c);
    CHECK_EQ_INT(c->since_ms, 3000);
    CHECK(strstr(c->text, "87 C") != NULL);
    c = find(st, "temp_high", 1);
    REQUIRE(c);
    CHECK_EQ_INT(c->since_ms, 2000); /* kept its onset */
    /* Under the threshold but within the hysteresis: both stay, and the
     * set does not change (the text keeps its onset). */
    ch = st->changes;
    s.temp_c = 83;
    health_derive(st, &cfg, &s, 1, NULL, 0, 4000);
    CHECK(find(st, "temp_slowdown", 1) && find(st, "temp_high", 1));
    CHECK(st->changes == ch);
    s.temp_c = 82; /* 5 under 87: slowdown clears; still above 75 */
    health_derive(st, &cfg, &s, 1, NULL, 0, 5000);
    CHECK(find(st, "temp_slowdown", 1) == NULL);
    CHECK(find(st, "temp_high", 1) != NULL);
    s.temp_c = 76;
    health_derive(st, &cfg, &s, 1, NULL, 0, 6000);
    CHECK(find(st, "temp_high", 1) != NULL);
    s.temp_c = 75;
    health_derive(st, &cfg, &s, 1, NULL, 0, 7000);
    CHECK_EQ_INT(st->n_conds, 0);
    /* The hardware's own thermal throttle counts whatever the reading. */
    s.throttle = HEALTH_THROTTLE_HW_THERMAL;
    health_derive(st, &cfg, &s, 1, NULL, 0, 8000);
    CHECK(find(st, "temp_slowdown", 1) != NULL);
    s.throttle = HEALTH_THROTTLE_HW_POWER_BRAKE;
    health_derive(st, &cfg, &s, 1, NULL, 0, 9000);
    CHECK(find(st, "temp_slowdown", 1) == NULL);
    CHECK(find(st, "power_brake", 1) != NULL);
    /* Unknown temperature: no temperature condition. */
    s.throttle = 0;
    s.known &= ~(uint32_t)HEALTH_K_TEMP;
    s.temp_c = 99;
    health_derive(st, &cfg, &s, 1, NULL, 0, 10000);
    CHECK_EQ_INT(st->n_conds, 0);
    free(st);
}

TEST(health_memory_conditions_and_reset)
{
    health_state *st = calloc(1, sizeof *st);
    REQUIRE(st);
    health_cfg cfg = {0, 0, 0};
    health_sample s[2] = {ok_sample(0), ok_sample(1)};
    s[1].ecc_aggregate[1] = 7; /* an old double-bit count: not new */
    health_derive(st, &cfg, s, 2, NULL, 0, 1000);
    CHECK_EQ_INT(st->n_conds, 0);
    s[1].ecc_aggregate[1] = 8; /* grew */
    health_derive(st, &cfg, s, 2, NULL, 0, 2000);
    CHECK(find(st, "ecc_dbe", 1) != NULL);
    CHECK(find(st, "ecc_dbe", 0) == NULL);
    s[0].ecc_volatile[1] = 1; /* a volatile double-bit count */
    s[0].remap_failed = true;
    s[0].remap_pending = true;
    s[0].retired_pending = true;
    health_derive(st, &cfg, s, 2, NULL, 0, 3000);
    CHECK(find(st, "ecc_dbe", 0) && find(st, "row_remap_failed", 0) && find(st, "row_remap_pending", 0) &&
          find(st, "retired_pages_pending", 0));
    CHECK(find(st, "ecc_dbe", 1) != NULL); /* held until a reset */
    /* A reset: the volatile counts go back to 0; pending remaps applied. */
    s[0].ecc_volatile[1] = 0;
    s[0].remap_pending = s[0].retired_pending = false;
    health_derive(st, &cfg, s, 2, NULL, 0, 4000);
    CHECK(find(st, "ecc_dbe", 0) == NULL);
    CHECK(find(st, "row_remap_pending", 0) == NULL && find(st, "retired_pages_pending", 0) == NULL);
    CHECK(find(st, "row_remap_failed", 0) != NULL); /* for good: replace the GPU */
    /* GPU1 falls off the bus and comes back (a reset): gpu_lost and
     * xid_79 while it is lost; then its held ecc_dbe clears too. */
    s[1].lost = true;
    s[1].known = 0;
    health_derive(st, &cfg, s, 2, NULL, 0, 5000);
    CHECK(find(st, "gpu_lost", 1) && find(st, "xid_79", 1));
    CHECK(find(st, "ecc_dbe", 1) == NULL); /* nothing is known of a lost GPU */
    s[1] = ok_sample(1);
    s[1].ecc_aggregate[1] = 8;
    health_derive(st, &cfg, s, 2, NULL, 0, 6000);
    CHECK(find(st, "gpu_lost", 1) == NULL && find(st, "xid_79", 1) == NULL && find(st, "ecc_dbe", 1) == NULL);
    free(st);
}

TEST(health_xid_conditions_hold_and_reset)
{
    health_state *st = calloc(1, sizeof *st);
    REQUIRE(st);
    health_cfg cfg = {.xid_hold_ms = 10000};
    health_sample s[3] = {ok_sample(0), ok_sample(1), ok_sample(2)};
    health_xid x[3] = {{2, 48, 1000}, {2, 13, 1000}, {0, 63, 1500}};
    health_derive(st, &cfg, s, 3, x, 3, 2000);
    const health_cond *c = find(st, "xid_48", 2);
    REQUIRE(c);
    CHECK_EQ_INT(c->since_ms, 2000);
    CHECK(strstr(c->text, "double-bit ECC") != NULL);
    CHECK(find(st, "xid_13", 2) && find(st, "xid_63", 0));
    CHECK_EQ_INT(health_xid_total(st, 2), 2);
    /* Another 48 later keeps it (hold counts from the last event). */
    health_xid again = {2, 48, 9000};
    health_derive(st, &cfg, s, 3, &again, 1, 9000);
    CHECK_EQ_INT(health_xid_total(st, 2), 3);
    health_derive(st, &cfg, s, 3, NULL, 0, 11000);
    CHECK(find(st, "xid_13", 2) == NULL); /* 10 s after its event */
    CHECK(find(st, "xid_63", 0) != NULL); /* 9.5 s after its */
    health_derive(st, &cfg, s, 3, NULL, 0, 11500);
    CHECK(find(st, "xid_63", 0) == NULL);
    c = find(st, "xid_48", 2);
    REQUIRE(c);
    CHECK_EQ_INT(c->since_ms, 2000);
    health_derive(st, &cfg, s, 3, NULL, 0, 19000);
    CHECK(find(st, "xid_48", 2) == NULL);
    /* Hold 0: until a reset (the volatile counts going down). */
    cfg.xid_hold_ms = 0;
    s[1].ecc_volatile[1] = 2;
    health_xid x95 = {1, 95, 20000};
    health_derive(st, &cfg, s, 3, &x95, 1, 20000);
    health_derive(st, &cfg, s, 3, NULL, 0, 90000000);
    CHECK(find(st, "xid_95", 1) != NULL);
    s[1].ecc_volatile[1] = 0;
    health_derive(st, &cfg, s, 3, NULL, 0, 90001000);
    CHECK(find(st, "xid_95", 1) == NULL);
    CHECK_EQ_INT(st->n_conds, 0);
    free(st);
}

TEST(health_condition_names)
{
    CHECK(health_cond_name_valid("ecc_dbe"));
    CHECK(health_cond_name_valid("health_program"));
    CHECK(health_cond_name_valid("xid_79"));
    CHECK(health_cond_name_valid("xid_65535"));
    CHECK(!health_cond_name_valid("xid_65536"));
    CHECK(!health_cond_name_valid("xid_0"));
    CHECK(!health_cond_name_valid("xid_079"));
    CHECK(!health_cond_name_valid("xid_"));
    CHECK(!health_cond_name_valid("xid_7a"));
    CHECK(!health_cond_name_valid("xid_*")); /* a policy pattern, not a condition */
    CHECK(!health_cond_name_valid("ECC_DBE"));
    CHECK(!health_cond_name_valid(NULL));
}

TEST(health_policy_defaults)
{
    const pol *p = pol_default();
    pol_hrule r = pol_health_rule(p, "xid_48");
    CHECK(r.action == POL_HEALTH_DRAIN_GPU && r.requeue && !r.resume_auto && !r.from_file);
    CHECK_EQ_STR(r.condition, "xid_48");
    r = pol_health_rule(p, "xid_79");
    CHECK(r.action == POL_HEALTH_DRAIN_NODE && r.requeue && r.resume_auto);
    r = pol_health_rule(p, "gpu_lost");
    CHECK(r.action == POL_HEALTH_DRAIN_NODE);
    r = pol_health_rule(p, "row_remap_failed");
    CHECK(r.action == POL_HEALTH_DRAIN_GPU && r.requeue && !r.resume_auto);
    r = pol_health_rule(p, "retired_pages_pending");
    CHECK(r.action == POL_HEALTH_DRAIN_GPU && !r.requeue && !r.resume_auto);
    r = pol_health_rule(p, "temp_slowdown");
    CHECK(r.action == POL_HEALTH_DRAIN_GPU && !r.requeue && r.resume_auto);
    r = pol_health_rule(p, "health_program");
    CHECK(r.action == POL_HEALTH_DRAIN_NODE && !r.requeue && r.resume_auto);
    CHECK(pol_health_rule(p, "xid_63").action == POL_HEALTH_WARN);
    CHECK(pol_health_rule(p, "xid_92").action == POL_HEALTH_WARN);
    CHECK(pol_health_rule(p, "xid_13").action == POL_HEALTH_NONE);
    CHECK(pol_health_rule(p, "xid_43").action == POL_HEALTH_NONE);
    CHECK(pol_health_rule(p, "xid_68").action == POL_HEALTH_NONE);
    CHECK(pol_health_rule(p, "xid_120").action == POL_HEALTH_WARN);
    CHECK(pol_health_rule(p, "no_such").action == POL_HEALTH_WARN);
    CHECK_EQ_STR(pol_health_action_name(POL_HEALTH_DRAIN_NODE), "drain-node");
}

TEST(health_policy_lines)
{
    const char *text = "# health\n"
                       "health xid_63 drain-gpu jobs=finish resume=manual\n"
                       "health temp_high warn   # the site's own limit\n"
                       "health xid_* none\n"
                       "health ecc_dbe drain-node resume=auto jobs=requeue\n"
                       "health health_program drain-node\n";
    pol p;
    char err[512];
    pol_init(&p);
    REQUIRE(pol_parse(&p, "policy p.conf", text, strlen(text), err, sizeof err) == 0);
    CHECK_EQ_INT(p.n_health, 5);
    pol_hrule r = pol_health_rule(&p, "xid_63");
    CHECK(r.action == POL_HEALTH_DRAIN_GPU && !r.requeue && !r.resume_auto && r.from_file);
    CHECK(pol_health_rule(&p, "temp_high").action == POL_HEALTH_WARN);
    r = pol_health_rule(&p, "ecc_dbe");
    CHECK(r.action == POL_HEALTH_DRAIN_NODE && r.requeue && r.resume_auto);
    r = pol_health_rule(&p, "health_program");
    CHECK(r.action == POL_HEALTH_DRAIN_NODE && !r.requeue && !r.resume_auto); /* the file's defaults */
    /* xid_*: the XIDs neither a line nor a default names. */
    CHECK(pol_health_rule(&p, "xid_120").action == POL_HEALTH_NONE);
    CHECK(pol_health_rule(&p, "xid_48").action == POL_HEALTH_DRAIN_GPU);
    CHECK(pol_health_rule(&p, "xid_92").action == POL_HEALTH_WARN);
    pol_free(&p);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"health\n", "policy p.conf:1: write 'health CONDITION"},
        {"\nhealth ecc_dbe\n", "policy p.conf:2: write 'health CONDITION"},
        {"health ecc_dbx drain-gpu\n", "policy p.conf:1: health 'ecc_dbx': not a condition"},
        {"health xid_0 warn\n", "policy p.conf:1: health 'xid_0': not a condition"},
        {"health xid_48 drain\n",
         "policy p.conf:1: health xid_48: action 'drain': one of none, warn, drain-gpu"},
        {"health xid_48 warn jobs=requeue\n", "jobs= and resume= go with drain-gpu or drain-node only"},
        {"health xid_48 drain-gpu jobs=later\n", "expected jobs=requeue|finish or resume=auto|manual"},
        {"health xid_48 drain-gpu jobs=finish jobs=requeue\n", "(once each)"},
        {"health xid_48 drain-gpu\nhealth xid_48 warn\n", "policy p.conf:2: health xid_48 is given twice"},
        {"health health_program drain-gpu\n", "write none, warn or drain-node"},
        {"health xid_48 drain-gpu jobs=finish resume=auto extra\n", "write 'health CONDITION"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pol_init(&p);
        err[0] = '\0';
        int rc = pol_parse(&p, "policy p.conf", bad[i].text, strlen(bad[i].text), err, sizeof err);
        if (rc == 0 || !strstr(err, bad[i].want))
            test_fail(__FILE__, __LINE__, "%s: rc %d, \"%s\" lacks \"%s\"", bad[i].text, rc, err,
                      bad[i].want);
        pol_free(&p);
    }
}

/* The burnin line: on-join or manual (the default), once the file says. */
TEST(burnin_policy_line)
{
    pol p;
    char err[512];
    pol_init(&p);
    CHECK(!p.burnin_on_join);
    const char *on = "burnin on-join  # new GPU nodes prove themselves\n";
    REQUIRE(pol_parse(&p, "policy p.conf", on, strlen(on), err, sizeof err) == 0);
    CHECK(p.burnin_on_join);
    pol_free(&p);
    pol_init(&p);
    REQUIRE(pol_parse(&p, "policy p.conf", "burnin manual\n", 14, err, sizeof err) == 0);
    CHECK(!p.burnin_on_join);
    pol_free(&p);
    static const char *const bad[] = {"burnin\n", "burnin always\n", "burnin on-join now\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pol_init(&p);
        err[0] = '\0';
        int rc = pol_parse(&p, "policy p.conf", bad[i], strlen(bad[i]), err, sizeof err);
        if (rc == 0 || !strstr(err, "policy p.conf:1: burnin: on-join"))
            test_fail(__FILE__, __LINE__, "%s: rc %d, \"%s\"", bad[i], rc, err);
        pol_free(&p);
    }
}

/* What one sample of 8 GPUs costs through the fake (its own cost is part
 * of it: a stat of the state file per GPU, a mutex per call). */
TEST(health_sample_cost_8_gpus)
{
    state_write("gpu 5 temp=60\n");
    setenv("FAKE_NVML_GPUS", "8", 1);
    health *h = open_fake();
    unsetenv("FAKE_NVML_GPUS");
    REQUIRE(h);
    REQUIRE(health_gpu_count(h) == 8);
    health_sample s[8];
    health_state *st = calloc(1, sizeof *st);
    REQUIRE(st);
    health_cfg cfg = {0, 0, 0};
    enum { N = 2000 };
    struct timespec a, b, c;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++)
        health_sample_all(h, s, 8);
    clock_gettime(CLOCK_MONOTONIC, &b);
    for (int i = 0; i < N; i++)
        health_derive(st, &cfg, s, 8, NULL, 0, 1000 + i);
    clock_gettime(CLOCK_MONOTONIC, &c);
    double us_sample = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / N;
    double us_derive = ((double)(c.tv_sec - b.tv_sec) * 1e6 + (double)(c.tv_nsec - b.tv_nsec) / 1e3) / N;
    printf("    one sample of 8 GPUs (fake NVML): %.1f us; deriving their conditions: %.1f us\n", us_sample,
           us_derive);
    CHECK_EQ_INT(s[5].temp_c, 60);
    CHECK(us_sample < 2000); /* 0.2 ms per GPU at the very most, even under ASan */
    CHECK(us_derive < 2000);
    free(st);
    health_close(h);
    state_done();
}

/* --- the daemon's side (daemon/health.c) on a real loop -------------------- */

#include "daemon/jzd.h"

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void loop_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, stop_loop, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

TEST(health_daemon_side_conditions_and_metrics)
{
    char lib[512], err[512];
    fake_nvml(lib, sizeof lib);
    state_write(
        "gpu 2 temp=91 power=301250 util=50 mem_used=1024 dbe_volatile=1 dbe_aggregate=4 throttle=0x40\n"
        "gpu 3 lost=1\nxid 1 74 5001\n");
    setenv("JAZARI_NVML_LIB", lib, 1);
    config cfg;
    char *argv[] = {"--name", "gpu-node\"1", "--gpu-health-interval",
                    "50ms",   "--state-dir", "/nonexistent/x"};
    memset(&cfg, 0, sizeof cfg);
    int rc = config_load(&cfg, 6, argv, err, sizeof err);
    if (rc != 0) {
        /* a name with a quote is refused: the label escaping is then tested with a plain one */
        config_free(&cfg);
        memset(&cfg, 0, sizeof cfg);
        argv[1] = "gpu-node1";
        rc = config_load(&cfg, 6, argv, err, sizeof err);
    }
    REQUIRE(rc == 0);
    jzd *d = calloc(1, sizeof *d);
    REQUIRE(d);
    d->cfg = &cfg;
    REQUIRE(uv_loop_init(&d->loop) == 0);
    ghealth_init(d);
    const health_cond *c = NULL;
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        loop_for(&d->loop, 50);
        n = ghealth_conditions(d, &c);
        bool xid = false;
        for (size_t k = 0; k < n; k++)
            xid |= strcmp(c[k].name, "xid_74") == 0;
        if (xid && n >= 4)
            break;
    }
    /* GPU 1: xid_74; GPU 2: ecc_dbe, temp_slowdown; GPU 3: xid_79, gpu_lost. */
    CHECK_EQ_INT(n, 5);
    CHECK(ghealth_digest(d) != 0 && ghealth_changes(d) >= 1);
    uint64_t digest = ghealth_digest(d), changes = ghealth_changes(d);
    loop_for(&d->loop, 150); /* samples again: nothing new */
    CHECK(ghealth_digest(d) == digest && ghealth_changes(d) == changes);

    buf out = BUF_INIT;
    ghealth_metrics(d, &out);
    const char *m = buf_str(&out);
    CHECK(strstr(m, "# TYPE jazari_gpu_temperature_celsius gauge\n") != NULL);
    CHECK(strstr(m,
                 "jazari_gpu_temperature_celsius{node=\"gpu-node1\",gpu=\"2\",uuid=\"GPU-7a1c0e52-0000-4000-"
                 "8000-000000000002\",model=\"NVIDIA A100-SXM4-80GB\"} 91\n") != NULL);
    CHECK(strstr(m, "jazari_gpu_power_watts{node=\"gpu-node1\",gpu=\"2\"") != NULL);
    CHECK(strstr(m, "} 301.250\n") != NULL);
    CHECK(strstr(m, "jazari_gpu_utilization_ratio{node=\"gpu-node1\",gpu=\"2\"") != NULL);
    CHECK(strstr(m, ",type=\"volatile\",bits=\"double\"} 1\n") != NULL);
    CHECK(strstr(m, ",type=\"aggregate\",bits=\"double\"} 4\n") != NULL);
    CHECK(strstr(m, ",reason=\"hw_thermal\"} 1\n") != NULL);
    CHECK(strstr(m, "# TYPE jazari_gpu_xid_events_total counter\n") != NULL);
    CHECK(strstr(m, "jazari_gpu_lost{node=\"gpu-node1\",gpu=\"3\",uuid=\"\",model=\"\"} 1\n") != NULL ||
          strstr(m, "jazari_gpu_lost{node=\"gpu-node1\",gpu=\"3\",uuid=\"GPU-7a1c0e52-0000-4000-8000-"
                    "000000000003\"") != NULL);
    CHECK(strstr(m, "jazari_gpu_remapped_rows_total{") != NULL);
    /* Prometheus' own checker, where it is installed. */
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char path[64], cmd[160];
        snprintf(path, sizeof path, "/tmp/jazari-health-%d.prom", (int)getpid());
        FILE *f = fopen(path, "w");
        REQUIRE(f);
        fputs(m, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s > /dev/null 2>&1", path);
        CHECK_EQ_INT(system(cmd), 0);
        unlink(path);
    }
    buf_free(&out);

    /* Recovery: all clear. */
    state_write("xid 1 74 5001\n");
    for (int i = 0; i < 100 && n > 1; i++) {
        loop_for(&d->loop, 50);
        n = ghealth_conditions(d, &c);
    }
    CHECK_EQ_INT(n, 1); /* the XID: until its hold time (1h) or a reset */
    CHECK_EQ_STR(c[0].name, "xid_74");
    CHECK_EQ_INT(c[0].gpu, 1);
    CHECK(ghealth_changes(d) > changes);
    /* GPU 3, lost at start, came back: its XIDs are seen now. */
    state_write("xid 1 74 5001\nxid 3 48 5002\n");
    for (int i = 0; i < 100 && n < 2; i++) {
        loop_for(&d->loop, 50);
        n = ghealth_conditions(d, &c);
    }
    REQUIRE(n == 2);
    CHECK_EQ_STR(c[1].name, "xid_48");
    CHECK_EQ_INT(c[1].gpu, 3);

    ghealth_close(d);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&d->loop), 0);
    ghealth_free(d);
    free(d);
    config_free(&cfg);
    unsetenv("JAZARI_NVML_LIB");
    state_done();
}

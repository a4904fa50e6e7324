/* test_prom.c - the Prometheus text format: HELP and TYPE lines, labels
 * escaped, histograms cumulative with +Inf, numbers Go reads back. */
#include <math.h>

#include "../../common/prom.h"
#include "test.h"

TEST(prom_family_and_samples)
{
    buf b = BUF_INIT;
    prom_family(&b, "jazari_jobs", "gauge", "Jobs by state.\nSecond line with a \\ backslash.");
    const char *l[] = {"state", "running", "site", "rabat", NULL};
    prom_u64(&b, "jazari_jobs", l, 3);
    prom_u64(&b, "jazari_up", NULL, 1);
    prom_f64(&b, "process_cpu_seconds_total", NULL, 0.25);
    prom_f64(&b, "x", NULL, NAN);
    prom_f64(&b, "x", NULL, -INFINITY);
    prom_f64(&b, "x", NULL, 0.1);
    CHECK_EQ_STR(buf_str(&b), "# HELP jazari_jobs Jobs by state.\\nSecond line with a \\\\ backslash.\n"
                              "# TYPE jazari_jobs gauge\n"
                              "jazari_jobs{state=\"running\",site=\"rabat\"} 3\n"
                              "jazari_up 1\n"
                              "process_cpu_seconds_total 0.25\n"
                              "x NaN\n"
                              "x -Inf\n"
                              "x 0.1\n");
    buf_free(&b);
}

/* A label value may hold anything a stranger named: quotes, backslashes,
 * newlines are escaped; bytes that are not UTF-8 become U+FFFD. A help
 * text keeps its quotes (the format escapes them only in values). */
TEST(prom_escapes_label_values)
{
    buf b = BUF_INIT;
    const char *l[] = {"node",
                       "a\"b\\c\nd\xff"
                       "e \xe2\x9c\x93",
                       NULL};
    prom_u64(&b, "m", l, 0);
    CHECK_EQ_STR(buf_str(&b), "m{node=\"a\\\"b\\\\c\\nd\xef\xbf\xbd"
                              "e \xe2\x9c\x93\"} 0\n");
    buf_reset(&b);
    prom_family(&b, "m", "counter", "say \"hi\"");
    CHECK_EQ_STR(buf_str(&b), "# HELP m say \"hi\"\n# TYPE m counter\n");
    buf_free(&b);
}

TEST(prom_histogram_is_cumulative)
{
    buf b = BUF_INIT;
    const double bounds[] = {0.005, 0.1, 1};
    const uint64_t counts[] = {2, 0, 1, 4}; /* the last: above 1 s */
    prom_histogram(&b, "h_seconds", bounds, counts, 3, 12.5);
    CHECK_EQ_STR(buf_str(&b), "h_seconds_bucket{le=\"0.005\"} 2\n"
                              "h_seconds_bucket{le=\"0.1\"} 2\n"
                              "h_seconds_bucket{le=\"1\"} 3\n"
                              "h_seconds_bucket{le=\"+Inf\"} 7\n"
                              "h_seconds_sum 12.5\n"
                              "h_seconds_count 7\n");
    buf_free(&b);
}

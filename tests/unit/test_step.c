/* test_step.c - the supervisor's files and the output path patterns. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/outpath.h"
#include "../../daemon/exec/step.h"
#include "test.h"

TEST(outpath_patterns)
{
    buf b = BUF_INIT;
    outpath_job j42 = {42, 0, 0, NULL, NULL}, j7 = {7, 0, 0, "train", "amina"}, j3 = {3, 0, 0, NULL, NULL},
                task = {12, 10, 2, NULL, NULL};
    outpath_expand(NULL, "/home/amina/run", &j42, 1, "gpu-01", 5, &b);
    CHECK(strcmp(buf_str(&b), "/home/amina/run/jazari-42.out") == 0);
    buf_reset(&b);
    outpath_expand("logs/%j-%n-%N-%t.%x.%u%%%y", "/w/", &j7, 2, "n3", 9, &b);
    CHECK(strcmp(buf_str(&b), "/w/logs/7-2-n3-9.train.amina%%y") == 0);
    buf_reset(&b);
    outpath_expand("%x-%u.out", "/w", &j42, 0, "n", 0, &b); /* no name, no user: empty */
    CHECK(strcmp(buf_str(&b), "/w/-.out") == 0);
    buf_reset(&b);
    outpath_expand("/abs/out.%j", "/ignored", &j3, 0, "n", 0, &b);
    CHECK(strcmp(buf_str(&b), "/abs/out.3") == 0);
    buf_reset(&b);
    outpath_expand("trailing%", "", &j3, 0, "n", 0, &b);
    CHECK(strcmp(buf_str(&b), "/trailing%") == 0);
    buf_reset(&b);
    outpath_expand("out-%A_%a.txt", "/w", &task, 0, "n", 0, &b);
    CHECK(strcmp(buf_str(&b), "/w/out-10_2.txt") == 0);
    buf_free(&b);
    CHECK(outpath_per_task("out-%t.txt"));
    CHECK(!outpath_per_task("out-%%t.txt"));
    CHECK(!outpath_per_task(NULL));
}

TEST(step_end_round_trip_and_liveness)
{
    char dir[] = "/tmp/jazari-step-XXXXXX";
    REQUIRE(mkdtemp(dir));
    step_end e, r;
    memset(&e, 0, sizeof e);
    CHECK(step_end_read(dir, &r) == -1); /* none yet */
    e.exit_code = 137;
    e.timed_out = true;
    snprintf(e.reason, sizeof e.reason, "time limit\nreached"); /* a newline cannot split the file */
    REQUIRE(step_end_write(dir, &e) == 0);
    REQUIRE(step_end_read(dir, &r) == 0);
    CHECK(r.exit_code == 137 && r.timed_out && !r.cancelled && !r.failed_to_start);
    CHECK(strcmp(r.reason, "time limit reached") == 0);
    CHECK(r.cpu_ms == 0 && r.max_rss_bytes == 0);

    /* The usage the supervisor measured travels in the record (a daemon
     * restarted meanwhile still gets it); what the daemon adds does not. */
    e.cpu_ms = 1534;
    e.max_rss_bytes = 104857600;
    e.energy_mj = 99;
    e.has_gpu_util = e.gpu_measured = true;
    REQUIRE(step_end_write(dir, &e) == 0);
    REQUIRE(step_end_read(dir, &r) == 0);
    CHECK(r.cpu_ms == 1534 && r.max_rss_bytes == 104857600 && r.exit_code == 137);
    CHECK(r.energy_mj == 0 && !r.has_gpu_util && !r.gpu_measured);
    /* Counts that do not parse or are out of bounds are not believed. */
    char endp[256];
    snprintf(endp, sizeof endp, "%s/%s", dir, STEP_END);
    FILE *bad = fopen(endp, "w");
    REQUIRE(bad);
    fputs("exit_code 0\ncpu_ms -12\nmax_rss_bytes 18446744073709551615\nreason\n", bad);
    fclose(bad);
    REQUIRE(step_end_read(dir, &r) == 0);
    CHECK(r.exit_code == 0 && r.cpu_ms == 0 && r.max_rss_bytes == 0);
    bad = fopen(endp, "w");
    REQUIRE(bad);
    fputs("exit_code 3\ncpu_ms 250x\nmax_rss_bytes 4096\n", bad);
    fclose(bad);
    REQUIRE(step_end_read(dir, &r) == 0);
    CHECK(r.exit_code == 3 && r.cpu_ms == 0 && r.max_rss_bytes == 4096);

    /* A pid file naming this process (with its start time) is alive; the
     * same pid with another start time is a reused pid, not ours. */
    char path[256], line[160];
    snprintf(path, sizeof path, "%s/%s", dir, STEP_PID);
    unsigned long long start = step_proc_start(getpid());
    CHECK(start > 0);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    step_pid_line(getpid(), line, sizeof line);
    fputs(line, f);
    fclose(f);
    CHECK(step_alive(dir) == getpid());
    f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "%d %llu %s", (int)getpid(), start + 1, strchr(strchr(line, ' ') + 1, ' ') + 1);
    fclose(f);
    CHECK(step_alive(dir) == 0);
    f = fopen(path, "w"); /* another boot's record */
    REQUIRE(f);
    fprintf(f, "%d %llu 00000000-0000-0000-0000-000000000000\n", (int)getpid(), start);
    fclose(f);
    CHECK(step_alive(dir) == 0);
    CHECK(step_kill_tasks(dir) == 0); /* no tasks file: nothing to kill */
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, STEP_END);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

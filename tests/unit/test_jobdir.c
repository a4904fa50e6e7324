/* test_jobdir.c - a job's private directory (common/jobdir.c): made with
 * tmp/ and io/, taken again when it is the user's, refused when something
 * else is there; a step's part waits for it and gives up after its bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/jobdir.h"
#include "test.h"

TEST(jobdir_made_waited_for_and_removed)
{
    char base[] = "/tmp/jazari-jobdir-XXXXXX";
    REQUIRE(mkdtemp(base));
    buf path = BUF_INIT, io = BUF_INIT;
    jobdir_path(&path, base, "n1", 42, 3);
    CHECK(strstr(buf_str(&path), "/jazari.n1.42.3") != NULL);
    jobdir_step_io(&io, base, "n1", 42, 3, 1, 7, true);
    CHECK(strstr(buf_str(&io), "/jazari.n1.42.3/io/1.7.err") != NULL);
    char err[512] = "";
    uid_t me = geteuid();
    /* Nothing there: a step's wait ends after its bound, saying why. */
    CHECK(jobdir_wait(buf_str(&path), me, 30, err, sizeof err) == -1);
    CHECK(strstr(err, "is not there") != NULL);
    /* Half made (the top, not yet io/): still not ready. */
    REQUIRE(mkdir(buf_str(&path), 0700) == 0);
    CHECK(jobdir_wait(buf_str(&path), me, 0, err, sizeof err) == -1);
    REQUIRE(rmdir(buf_str(&path)) == 0);
    REQUIRE(jobdir_make(buf_str(&path), me, getegid(), err, sizeof err) == 0);
    CHECK(jobdir_wait(buf_str(&path), me, 0, err, sizeof err) == 0);
    /* A restarted part takes its own directory again. */
    CHECK(jobdir_make(buf_str(&path), me, getegid(), err, sizeof err) == 0);
    CHECK(jobdir_remove(buf_str(&path), me, getegid(), 5000) == 0);
    struct stat st;
    CHECK(lstat(buf_str(&path), &st) != 0);
    /* A file in its place is refused, naming what to do. */
    FILE *f = fopen(buf_str(&path), "w");
    REQUIRE(f);
    fclose(f);
    CHECK(jobdir_make(buf_str(&path), me, getegid(), err, sizeof err) == -1);
    CHECK(strstr(err, "remove it") != NULL);
    CHECK(jobdir_wait(buf_str(&path), me, 0, err, sizeof err) == -1);
    unlink(buf_str(&path));
    rmdir(base);
    buf_free(&path);
    buf_free(&io);
}

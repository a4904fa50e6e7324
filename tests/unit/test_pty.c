/* test_pty.c - srun --pty on the node (daemon/exec/pty.h): keys written
 * as frames into the part's FIFO reach the terminal, a window size too,
 * what the terminal writes reaches the output file, a malformed frame is
 * dropped, and a task that reads nothing fills a bounded buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "daemon/exec/pty.h"
#include "daemon/exec/step.h"
#include "test.h"

static size_t read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return n;
}

TEST(spty_keys_sizes_and_output_travel_and_stay_bounded)
{
    char dir[] = "/tmp/jz-pty-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char out_path[300], fifo[300];
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(fifo, sizeof fifo, "%s/%s", dir, STEP_INPUT);
    char err[300];
    uid_t owner = 12345;
    /* No terminal yet: ENOENT, so that the daemon says "later". */
    CHECK_EQ_INT(spty_input_open(dir, &owner, err, sizeof err), -1);
    CHECK_EQ_INT(errno, ENOENT);
    spty p;
    int slave = -1;
    REQUIRE(spty_open(&p, dir, out_path, getuid(), getgid(), 30, 100, &slave, err, sizeof err) == 0);
    struct winsize ws;
    REQUIRE(ioctl(slave, TIOCGWINSZ, &ws) == 0);
    CHECK(ws.ws_row == 30 && ws.ws_col == 100);
    struct termios t;
    REQUIRE(tcgetattr(slave, &t) == 0);
    cfmakeraw(&t); /* the test reads exactly what was typed */
    tcsetattr(slave, TCSANOW, &t);
    int fd = spty_input_open(dir, &owner, err, sizeof err);
    REQUIRE(fd >= 0);
    CHECK_EQ_INT((int)owner, (int)getuid());
    CHECK_EQ_INT(spty_input_write(fd, (const uint8_t *)"ls\r", 3, 40, 120), 3);
    spty_pump(&p);
    char got[64] = "";
    ssize_t n = read(slave, got, sizeof got - 1);
    CHECK(n == 3 && memcmp(got, "ls\r", 3) == 0);
    REQUIRE(ioctl(slave, TIOCGWINSZ, &ws) == 0);
    CHECK(ws.ws_row == 40 && ws.ws_col == 120);
    /* Too long for one request. */
    uint8_t big[SPTY_DATA_MAX + 1];
    memset(big, 'x', sizeof big);
    CHECK_EQ_INT(spty_input_write(fd, big, sizeof big, 0, 0), -1);
    /* A malformed frame (length over the most) is dropped, with what follows it in that read. */
    uint8_t bad[3] = {'d', 0xff, 0xff};
    CHECK_EQ_INT((int)write(fd, bad, sizeof bad), 3);
    spty_pump(&p);
    CHECK_EQ_INT(spty_input_write(fd, (const uint8_t *)"ok", 2, 0, 0), 2);
    spty_pump(&p);
    n = read(slave, got, sizeof got - 1);
    CHECK(n == 2 && memcmp(got, "ok", 2) == 0);
    /* What the task writes reaches the output file. */
    CHECK_EQ_INT((int)write(slave, "hello\n", 6), 6);
    spty_pump(&p);
    char text[256];
    read_file(out_path, text, sizeof text);
    CHECK(strstr(text, "hello") != NULL);
    /* A task that reads nothing: the keys pile up to a bound, then the
     * daemon hears "busy" (0 taken), never blocks. */
    uint8_t chunk[SPTY_DATA_MAX];
    memset(chunk, 'k', sizeof chunk);
    long taken = 0, last = 1;
    for (int i = 0; i < 4096 && last > 0; i++) {
        last = spty_input_write(fd, chunk, sizeof chunk, 0, 0);
        taken += last > 0 ? last : 0;
        spty_pump(&p);
    }
    CHECK_EQ_INT(last, 0);
    CHECK(taken < 4096L * (long)SPTY_DATA_MAX);
    close(fd);
    close(slave);
    spty_close(&p, dir);
    struct stat st;
    CHECK(stat(fifo, &st) != 0); /* the FIFO goes with the terminal */
    unlink(out_path);
    rmdir(dir);
}

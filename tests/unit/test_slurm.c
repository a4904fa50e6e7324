/* test_slurm.c - the Slurm front ends' pure pieces: the % format walker,
 * durations, host lists. */
#include <string.h>

#include "client/slurm.h"
#include "test.h"

static int ts_field(buf *b, char type, const void *arg, void *ctx)
{
    (void)ctx;
    if (type != 'x' && type != 'y')
        return -1;
    buf_puts(b, arg ? (type == 'x' ? "value" : "v") : (type == 'x' ? "HEAD" : "H"));
    return 0;
}

TEST(cli_format_widths_and_alignment)
{
    buf b = BUF_INIT;
    CHECK_EQ_INT(cli_format(&b, "%.8x|%-3y|%2x|%%", ts_field, NULL, NULL), 0);
    CHECK_EQ_STR(buf_str(&b), "    HEAD|H  |HE|%\n");
    buf_reset(&b);
    CHECK_EQ_INT(cli_format(&b, "%x %y", ts_field, "job", NULL), 0);
    CHECK_EQ_STR(buf_str(&b), "value v\n");
    buf_reset(&b);
    CHECK_EQ_INT(cli_format(&b, "%x %z", ts_field, "job", NULL), -1);
    buf_reset(&b);
    CHECK_EQ_INT(cli_format(&b, "%5", ts_field, "job", NULL), -1);
    buf_free(&b);
}

TEST(slurm_durations_and_hostlists)
{
    buf b = BUF_INIT;
    slurm_duration(&b, 0, true);
    CHECK_EQ_STR(buf_str(&b), "UNLIMITED");
    buf_reset(&b);
    slurm_duration(&b, 3661, false);
    CHECK_EQ_STR(buf_str(&b), "01:01:01");
    buf_reset(&b);
    slurm_duration(&b, 2 * 86400 + 59, true);
    CHECK_EQ_STR(buf_str(&b), "2-00:00:59");
    buf_reset(&b);
    const char *names[] = {"node2", "node1", "gpu07", "node3"};
    slurm_hostlist(&b, names, 4);
    CHECK_EQ_STR(buf_str(&b), "gpu07,node[1-3]");
    buf_free(&b);
}

/* cmd_pty.c - srun --pty: the step's one task on a pseudo-terminal on its
 * node; our terminal in raw mode, its keys sent through the daemons, its
 * output relayed back, the window size kept in step. */
#include "cli.h"

int step_pty(cli *c, uint64_t id, uint32_t step, bool own)
{
    return step_follow(c, id, step, false, own, step_plain_wait, NULL);
}

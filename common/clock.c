/* clock.c - wall and monotonic clocks, and the guard against jumps. */
#include "clock.h"

#include <time.h>

static int64_t clock__read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
    return clock__read(CLOCK_REALTIME);
}

int64_t clock_mono_ms(void)
{
    return clock__read(CLOCK_MONOTONIC);
}

int64_t clock_guard_now(clock_guard *g, int64_t wall_ms, int64_t mono_ms, bool *jumped, bool *believed)
{
    *jumped = *believed = false;
    if (!g->anchored) {
        g->anchored = true;
        g->anchor_wall = wall_ms;
        g->anchor_mono = mono_ms;
    }
    int64_t derived = g->anchor_wall + (mono_ms - g->anchor_mono);
    int64_t off = wall_ms - derived;
    if (off > -CLOCK_STEP_MS && off < CLOCK_STEP_MS) {
        g->jump_since = 0; /* in step: follow the wall clock's slewing */
        g->anchor_wall = wall_ms;
        g->anchor_mono = mono_ms;
        return wall_ms;
    }
    if (!g->jump_since) {
        g->jump_since = mono_ms ? mono_ms : 1;
        g->jump_ms = off;
        *jumped = true;
    }
    if (mono_ms - g->jump_since < CLOCK_BELIEVE_MS)
        return derived; /* a glitch, until it lasts */
    *believed = true;
    g->jump_since = 0;
    g->anchor_wall = wall_ms;
    g->anchor_mono = mono_ms;
    return wall_ms;
}

/* clock.h - the times of the network: the wall clock for the times people
 * read, the monotonic clock for durations, and a guard that keeps the
 * leader's timestamps sane when the wall clock jumps. */
#ifndef JZ_CLOCK_H
#define JZ_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);
/* Milliseconds of a clock that never jumps (CLOCK_MONOTONIC). */
int64_t clock_mono_ms(void);

/* How far the wall clock may move against the monotonic one before the
 * guard stops following it, and how long a move must last before it is
 * believed (an admin who set the clock, not a glitch). */
#define CLOCK_STEP_MS 2000
#define CLOCK_BELIEVE_MS 60000

/* A wall clock that advances with the monotonic clock: small moves of the
 * wall clock (NTP slewing) are followed at once; a jump is ignored until
 * it has lasted CLOCK_BELIEVE_MS. Zeroed memory is a valid guard. */
typedef struct clock_guard {
    int64_t anchor_wall, anchor_mono; /* the wall time at a monotonic time */
    int64_t jump_since;               /* monotonic time a jump was first seen; 0: none */
    int64_t jump_ms;                  /* its size, for the log */
    bool anchored;
} clock_guard;

/* The guarded wall time, from one reading of each clock. Sets *jumped
 * when this reading first saw a jump (to log it), and *believed when a
 * jump was finally followed. Pure: the tests drive it with made-up
 * readings. */
int64_t clock_guard_now(clock_guard *g, int64_t wall_ms, int64_t mono_ms, bool *jumped, bool *believed);

#endif

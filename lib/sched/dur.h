/* dur.h - a duration as the policy file writes it (and the simulator's
 * --cluster file): digits, then ms, s, m, h or d (none: seconds), at most
 * 3650 days. One parser for every such setting, so that "30ms" means the
 * same wherever a duration is read. Pure. */
#ifndef JZ_DUR_H
#define JZ_DUR_H

#include <stdint.h>

/* s into *out (milliseconds): 0, or -1 when it is not such a duration. */
int dur_ms(const char *s, int64_t *out);

#endif

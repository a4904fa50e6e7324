/* dur.c - durations with a unit (dur.h). */
#include "dur.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dur_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    int64_t mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (!*end || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    if (errno || v > 3650ull * 86400000 / (unsigned long long)mult)
        return -1;
    *out = (int64_t)v * mult;
    return 0;
}

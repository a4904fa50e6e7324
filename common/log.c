/* log.c - leveled logging to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

log_level log__level = LOG_INFO;
static const char *log_program;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level level)
{
    log__level = level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, log_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(log_level level)
{
    return (unsigned)level < 4 ? log_names[level] : "?";
}

void log_set_program(const char *name)
{
    log_program = name;
}

void log_write(log_level level, const char *subsys, const char *fmt, ...)
{
    char line[1024];
    size_t n;
    if (log_program) {
        n = (size_t)snprintf(line, sizeof line, "%s: ", log_program);
    } else {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ %-5s %-5s ", (int)(tv.tv_usec / 1000),
                              log_names[level], subsys);
    }
    if (n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
    }
    /* One write per line, so lines from several processes do not mix. */
    fprintf(stderr, "%s\n", line);
}

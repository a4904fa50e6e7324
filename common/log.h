/* log.h - leveled logging to stderr, with the subsystem named on each line.
 *
 * The level is checked before any formatting (like redis' serverLog), so a
 * debug line costs one comparison when debug is off. */
#ifndef JZ_LOG_H
#define JZ_LOG_H

typedef enum {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
} log_level;

extern log_level log__level;

void log_set_level(log_level level);
/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);
const char *log_level_name(log_level level);
/* Prefix every line with the program's name instead of a timestamp (for
 * one-shot commands such as `jazarid topology`). */
void log_set_program(const char *name);

void log_write(log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(lvl, subsys, ...)                                                                             \
    do {                                                                                                     \
        if ((lvl) <= log__level)                                                                             \
            log_write((lvl), (subsys), __VA_ARGS__);                                                         \
    } while (0)

#define log_error(subsys, ...) LOG_AT(LOG_ERROR, subsys, __VA_ARGS__)
#define log_warn(subsys, ...) LOG_AT(LOG_WARN, subsys, __VA_ARGS__)
#define log_info(subsys, ...) LOG_AT(LOG_INFO, subsys, __VA_ARGS__)
#define log_debug(subsys, ...) LOG_AT(LOG_DEBUG, subsys, __VA_ARGS__)

#endif

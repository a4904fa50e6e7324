/* prog.h - one run of a program the site names (health_program,
 * burnin_program): started without a shell, in a session of its own, with
 * a clean environment; its standard output kept up to a bound (the rest
 * read and dropped); its whole process group killed at a timeout. Shared
 * by daemon/health.c and daemon/burnin.c. Internal to daemon/. */
#ifndef JZ_PROG_H
#define JZ_PROG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct prog prog;

/* How a run ended. out is NUL-terminated, valid during the callback only. */
typedef struct prog_result {
    bool spawn_failed; /* it never started: spawn_err says why */
    char spawn_err[200];
    bool timed_out; /* killed at the timeout (counted as failing) */
    int64_t exit_status;
    int term_signal;
    const char *out;
    size_t out_len;
    uint64_t elapsed_ms;
} prog_result;

/* Called exactly once per run that prog_start returned, from the loop
 * (never from prog_start itself), unless prog_cancel came first. */
typedef void (*prog_cb)(void *arg, const prog_result *r);

/* Starts path (args[0] is path; env: NAME=VALUE strings; both NULL-
 * terminated, copied by libuv at once) with its stdin and stderr on
 * /dev/null, keeping out_max bytes of its stdout, killed with its process
 * group after timeout_ms. A program that cannot start is reported through
 * cb as spawn_failed. The run frees itself after cb. */
prog *prog_start(uv_loop_t *loop, const char *path, char *const *args, char *const *env, uint64_t timeout_ms,
                 size_t out_max, prog_cb cb, void *arg);
/* At shutdown: kills the run's process group; cb is never called; the run
 * frees itself once its handles are closed (the loop must run on). */
void prog_cancel(prog *p);
int prog_pid(const prog *p);

/* Whether the run passed: it started, exited 0, and was not killed. */
bool prog_passed(const prog_result *r);
/* The first line of its output, printable and trimmed; when there is none,
 * how the run ended ("WHAT timed out after N s", "WHAT exited with status
 * 3, without output", "WHAT PATH cannot start: ..."). what: "health
 * program", "burn-in program". */
void prog_summary(const prog_result *r, const char *what, const char *path, uint64_t timeout_ms, char *text,
                  size_t len);

#endif

/* prog.c - one run of a site's program (prog.h): spawn, bounded capture,
 * timeout, the verdict; shared by the health program and the burn-in. */
#include "prog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"

#define PROG__DRAIN_MS 1000 /* after the program exits, its output may still come this long */

typedef enum prog__phase {
    PROG__RUNNING,      /* the timer is the timeout */
    PROG__DRAIN,        /* exited; its output may still come */
    PROG__SPAWN_FAILED, /* the timer reports it from the loop */
    PROG__DONE,
} prog__phase;

struct prog {
    uv_loop_t *loop;
    prog__phase phase;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    int open; /* handles not closed yet */
    bool out_reading, exited, eof, cancelled;
    prog_result r;
    uint64_t started, timeout_ms;
    prog_cb cb;
    void *arg;
    size_t out_max;
    char read_buf[1024];
    char *out_buf; /* out_max + 1 */
};

static void prog__on_closed(uv_handle_t *h)
{
    prog *p = h->data;
    if (--p->open == 0) {
        free(p->out_buf);
        free(p);
    }
}

static void prog__close(prog *p)
{
    uv_handle_t *hs[3] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->out, (uv_handle_t *)&p->timer};
    for (int i = 0; i < 3; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], prog__on_closed);
}

/* The run is over (exited and read, given up on, or never started). */
static void prog__finish(prog *p)
{
    p->phase = PROG__DONE;
    uv_timer_stop(&p->timer);
    p->out_buf[p->r.out_len] = '\0';
    p->r.out = p->out_buf;
    p->r.elapsed_ms = uv_now(p->loop) - p->started;
    if (!p->cancelled)
        p->cb(p->arg, &p->r);
    prog__close(p);
}

static void prog__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    prog *p = h->data;
    (void)suggested;
    *b = uv_buf_init(p->read_buf, sizeof p->read_buf);
}

static void prog__read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    prog *p = s->data;
    if (n > 0) {
        size_t room = p->out_max - p->r.out_len, take = (size_t)n < room ? (size_t)n : room;
        memcpy(p->out_buf + p->r.out_len, b->base, take); /* the rest is read and dropped */
        p->r.out_len += take;
        return;
    }
    if (n == 0)
        return;
    p->eof = true;
    uv_read_stop(s);
    if (p->phase == PROG__DRAIN)
        prog__finish(p);
}

static void prog__on_timer(uv_timer_t *t);

static void prog__exit(uv_process_t *h, int64_t status, int sig)
{
    prog *p = h->data;
    p->exited = true;
    p->r.exit_status = status;
    p->r.term_signal = sig;
    if (p->phase != PROG__RUNNING)
        return;
    uv_timer_stop(&p->timer);
    if (p->eof || !p->out_reading) {
        prog__finish(p);
        return;
    }
    /* Its output may still be in the pipe; a child it left holding the
     * pipe open is not waited for long. */
    p->phase = PROG__DRAIN;
    uv_timer_start(&p->timer, prog__on_timer, PROG__DRAIN_MS, 0);
}

static void prog__on_timer(uv_timer_t *t)
{
    prog *p = t->data;
    switch (p->phase) {
    case PROG__RUNNING:
        /* Past the timeout: its whole process group goes; the exit
         * callback ends the run, counted as failing. */
        p->r.timed_out = true;
        if (p->proc.pid > 0 && kill(-p->proc.pid, SIGKILL) != 0)
            (void)uv_process_kill(&p->proc, SIGKILL);
        break;
    case PROG__DRAIN:
    case PROG__SPAWN_FAILED:
        prog__finish(p);
        break;
    case PROG__DONE:
        break;
    }
}

prog *prog_start(uv_loop_t *loop, const char *path, char *const *args, char *const *env, uint64_t timeout_ms,
                 size_t out_max, prog_cb cb, void *arg)
{
    prog *p = calloc(1, sizeof *p);
    char *out_buf = malloc(out_max + 1);
    if (!p || !out_buf)
        abort();
    p->loop = loop;
    p->out_buf = out_buf;
    p->out_max = out_max;
    p->cb = cb;
    p->arg = arg;
    p->timeout_ms = timeout_ms;
    p->started = uv_now(loop);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_pipe_init(loop, &p->out, 0);
    p->out.data = p;
    p->proc.data = p;
    p->open = 3; /* uv_spawn inits the process handle even when it fails: it is closed too */
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_IGNORE;
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = path;
    o.args = (char **)args;
    o.env = (char **)env;
    o.cwd = "/";
    /* Its own session, so its process group is its own to kill. */
    o.flags = UV_PROCESS_DETACHED;
    o.stdio_count = 3;
    o.stdio = stdio;
    o.exit_cb = prog__exit;
    int rc = uv_spawn(loop, &p->proc, &o);
    if (rc != 0) {
        p->r.spawn_failed = true;
        snprintf(p->r.spawn_err, sizeof p->r.spawn_err, "%s", uv_strerror(rc));
        p->phase = PROG__SPAWN_FAILED;
        uv_timer_start(&p->timer, prog__on_timer, 0, 0);
        return p;
    }
    p->phase = PROG__RUNNING;
    p->out_reading = uv_read_start((uv_stream_t *)&p->out, prog__alloc, prog__read) == 0;
    uv_timer_start(&p->timer, prog__on_timer, timeout_ms, 0);
    return p;
}

void prog_cancel(prog *p)
{
    if (!p || p->cancelled)
        return;
    p->cancelled = true;
    if (p->phase == PROG__DONE)
        return; /* closing already */
    /* Running, or exited with a child of its session still holding the
     * pipe (the group lives on while it does: its id is not reused). */
    if ((p->phase == PROG__RUNNING || p->phase == PROG__DRAIN) && p->proc.pid > 0)
        (void)kill(-p->proc.pid, SIGKILL);
    p->phase = PROG__DONE;
    prog__close(p);
}

int prog_pid(const prog *p)
{
    return p ? p->proc.pid : 0;
}

bool prog_passed(const prog_result *r)
{
    return !r->spawn_failed && !r->timed_out && r->exit_status == 0 && r->term_signal == 0;
}

void prog_summary(const prog_result *r, const char *what, const char *path, uint64_t timeout_ms, char *text,
                  size_t len)
{
    if (r->timed_out) {
        snprintf(text, len, "%s timed out after %llu s", what,
                 (unsigned long long)((timeout_ms + 999) / 1000));
        return;
    }
    if (r->spawn_failed) {
        snprintf(text, len, "%s %s cannot start: %s", what, path, r->spawn_err);
        return;
    }
    size_t n = 0;
    const char *s = r->out ? r->out : "";
    while (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
        s++;
    /* The text becomes a drain's reason, which the state takes only as
     * printable UTF-8 (fsm_printable), and a line of the log: a control
     * character (C0, DEL, C1) becomes a space, a byte that is not UTF-8 a
     * '?', and a character that does not fit whole is left out. */
    const char *end = s + strcspn(s, "\n");
    while (s < end) {
        uint32_t cp;
        size_t k = utf8_seq((const unsigned char *)s, (size_t)(end - s), &cp);
        const char *put = k == 0 ? "?" : utf8_is_control(cp, false) ? " " : s;
        size_t plen = k > 1 && put == s ? k : 1;
        if (n + plen >= len)
            break;
        memcpy(text + n, put, plen);
        n += plen;
        s += k ? k : 1;
    }
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\r'))
        n--;
    text[n] = '\0';
    if (n)
        return;
    if (r->term_signal)
        snprintf(text, len, "%s killed by signal %d, without output", what, r->term_signal);
    else
        snprintf(text, len, "%s exited with status %lld, without output", what, (long long)r->exit_status);
}

/* cmd_pty.c - srun --pty: the step's one task on a pseudo-terminal on its
 * node (daemon/exec/pty.h). Our terminal goes raw: every key, Ctrl-C
 * included, is sent as it is typed (PtyInputRequest, through the local
 * daemon to the node's), and the terminal there does what a terminal does
 * with it; what it writes comes back through the step's output relay
 * (step_follow, raw), polled soon after each key. A new window size
 * (SIGWINCH) follows the keys. Our terminal is restored on every way out. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define PTY_DATA_MAX 1024 /* keys in one request: the node takes at most this */
#define PTY_WAIT_MAX_MS 100

typedef struct pty_ctx {
    cli *c;
    cli_conn *k;
    uint64_t job;
    uint32_t attempt, step;
    char node[256];
    uint8_t keys[PTY_DATA_MAX]; /* typed, not yet taken by the node */
    size_t n_keys;
    bool eof;  /* our input ended */
    bool gone; /* the node refused: its terminal is gone */
} pty_ctx;

static struct termios pty__saved;
static bool pty__raw;
static volatile sig_atomic_t pty__winch, pty__stop;

static void pty__restore(void)
{
    if (pty__raw) {
        tcsetattr(0, TCSADRAIN, &pty__saved);
        pty__raw = false;
    }
}

static void pty__on_winch(int sig)
{
    (void)sig;
    pty__winch = 1;
}

static void pty__on_stop(int sig)
{
    pty__stop = sig;
}

static void pty__signals(bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on ? pty__on_winch : SIG_DFL;
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on ? pty__on_stop : SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL); /* not from a raw terminal: from kill */
    sigaction(SIGQUIT, &sa, NULL);
}

/* Sends keys (n of them) and, with rows and cols, a window size. Returns
 * the keys taken, or -1 when the node refused (said why). */
static long pty__send(pty_ctx *p, const uint8_t *keys, size_t n, uint32_t rows, uint32_t cols)
{
    Jazari__PtyInputRequest r = JAZARI__PTY_INPUT_REQUEST__INIT;
    r.job = p->job;
    r.attempt = p->attempt;
    r.step = p->step + 1;
    r.node = p->node;
    r.data.data = (uint8_t *)keys;
    r.data.len = n;
    r.rows = rows;
    r.cols = cols;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_PTY_INPUT_REQUEST;
    req.pty_input_request = &r;
    wire_msg *m = cli_call(p->k, &req);
    if (!m)
        return -1;
    long taken = -1;
    const Jazari__Envelope *e = wire_msg_env(m);
    if (e->error && e->error->code != JAZARI__ERROR_CODE__OK) {
        pty__restore();
        cli_refused(p->c, m);
    } else if (e->body_case == JAZARI__ENVELOPE__BODY_PTY_INPUT_REPLY) {
        taken = e->pty_input_reply->accepted <= n ? (long)e->pty_input_reply->accepted : (long)n;
    }
    wire_msg_free(m);
    return taken;
}

/* step_follow's wait: our keys and window size to the node, for up to ms. */
static int pty__wait(void *arg, int ms)
{
    pty_ctx *p = arg;
    if (pty__stop)
        return -1;
    int activity = 0;
    if (pty__winch && !p->gone) {
        pty__winch = 0;
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
            if (pty__send(p, NULL, 0, ws.ws_row, ws.ws_col) < 0)
                p->gone = true;
            activity = 1;
        }
    }
    if (ms > PTY_WAIT_MAX_MS)
        ms = PTY_WAIT_MAX_MS;
    /* Keys the node did not take yet come first; read more only when there is room. */
    bool room = !p->eof && !p->gone && p->n_keys < sizeof p->keys;
    struct pollfd pf = {.fd = 0, .events = POLLIN};
    int r = poll(&pf, room ? 1 : 0, p->n_keys ? 0 : ms);
    if (r < 0 && errno == EINTR)
        return pty__stop ? -1 : activity;
    if (room && r > 0) {
        ssize_t n = read(0, p->keys + p->n_keys, sizeof p->keys - p->n_keys);
        if (n > 0)
            p->n_keys += (size_t)n;
        else if (n == 0 || (errno != EINTR && errno != EAGAIN))
            p->eof = true; /* the task goes on; its end ends us */
    }
    if (p->n_keys && !p->gone) {
        long taken = pty__send(p, p->keys, p->n_keys, 0, 0);
        if (taken < 0) {
            p->gone = true;
            p->n_keys = 0;
        } else if (taken > 0) {
            memmove(p->keys, p->keys + taken, p->n_keys - (size_t)taken);
            p->n_keys -= (size_t)taken;
            activity = 1;
        } else {
            struct timespec ts = {0, 20L * 1000000}; /* busy: the task reads slowly */
            nanosleep(&ts, NULL);
        }
    } else if (p->eof || p->gone) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return activity;
}

int step_pty(cli *c, uint64_t id, uint32_t step, bool own)
{
    int status;
    wire_msg *m = cli_fetch_job(c, id, &status);
    if (!m)
        return status;
    const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
    pty_ctx p = {.c = c, .job = id, .step = step, .attempt = job->attempt};
    for (size_t i = 0; i < job->n_steps; i++) {
        const Jazari__JobStep *st = job->steps[i];
        if (st->id == step && st->n_ranks > 0 && st->ranks[0] < job->n_allocs)
            snprintf(p.node, sizeof p.node, "%s", job->allocs[st->ranks[0]]->node);
    }
    wire_msg_free(m);
    if (!p.node[0]) {
        cli_error(c, "step %llu.%u is gone: the job ended or was requeued", (unsigned long long)id, step);
        return CLI_REFUSED;
    }
    if (!(p.k = cli_connect(c)))
        return CLI_REFUSED;
    if (isatty(0) && tcgetattr(0, &pty__saved) == 0) {
        struct termios raw = pty__saved;
        cfmakeraw(&raw);
        atexit(pty__restore);
        if (tcsetattr(0, TCSADRAIN, &raw) == 0)
            pty__raw = true;
    }
    pty__signals(true);
    int rc = step_follow(
        c, id, step, &(step_follow_opts){.raw = true, .stop_on_signal = own, .wait = pty__wait, .arg = &p});
    pty__restore();
    pty__signals(false);
    cli_close(p.k);
    if (rc == STEP_STOPPED && !own)
        fprintf(stderr,
                "jz %s: stopped by signal %d: step %llu.%u goes on (jz attach %llu.%u; jz cancel %llu)\n",
                c->command, (int)pty__stop, (unsigned long long)id, step, (unsigned long long)id, step,
                (unsigned long long)id);
    return rc;
}

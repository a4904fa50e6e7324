/* exec.c - the parts of jobs on this node and their supervisors. */
#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/xmem.h"

static exec_part *exec__add(exec *x, uint64_t id, uint32_t attempt, uint32_t step)
{
    exec_part *p = xcalloc(1, sizeof *p);
    p->x = x;
    p->id = id;
    p->attempt = attempt;
    p->step = step;
    if (step)
        snprintf(p->dir, sizeof p->dir, "%s/%" PRIu64 ".%u.%u", x->spool, id, attempt, step);
    else
        snprintf(p->dir, sizeof p->dir, "%s/%" PRIu64 ".%u", x->spool, id, attempt);
    p->next = x->parts;
    if (x->parts)
        x->parts->prev = p;
    x->parts = p;
    x->n_parts++;
    return p;
}

static void exec__unlink(exec *x, exec_part *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        x->parts = p->next;
    if (p->next)
        p->next->prev = p->prev;
    x->n_parts--;
}

/* After exec_close, once no handle is open. */
static void exec__free_all(exec *x)
{
    exec_part *next;
    for (exec_part *p = x->parts; p; p = next) {
        next = p->next;
        free(p);
    }
    x->parts = NULL;
    x->n_parts = 0;
    if (x->close_cb)
        x->close_cb(x);
}

/* Removes a part's directory and what is in it (plain files only). */
static void exec__remove_dir(const char *dir)
{
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *de;
        char path[PATH_MAX + 256];
        while ((de = readdir(dh))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
        closedir(dh);
    }
    if (rmdir(dir) != 0 && errno != ENOENT)
        log_warn("exec", "cannot remove %s: %s", dir, strerror(errno));
}

/* The part ended: its end from the supervisor's file, or lost. */
static void exec__ended(exec_part *p, const char *lost_why)
{
    p->running = false;
    p->ended_ms = uv_now(p->x->loop);
    if (p->end_set) {
        log_warn("exec", "job %" PRIu64 " attempt %u cannot start: %s", p->id, p->attempt, p->end.reason);
    } else if (step_end_read(p->dir, &p->end) != 0) {
        int killed = step_kill_tasks(p->dir);
        memset(&p->end, 0, sizeof p->end);
        p->end.lost = true;
        p->end.exit_code = 128 + SIGKILL;
        snprintf(p->end.reason, sizeof p->end.reason, "%s", lost_why);
        log_warn("exec", "job %" PRIu64 " attempt %u lost: %s%s", p->id, p->attempt, lost_why,
                 killed ? " (its tasks were killed)" : "");
    } else {
        log_info("exec", "job %" PRIu64 " attempt %u ended: exit code %d%s%s", p->id, p->attempt,
                 p->end.exit_code, p->end.reason[0] ? ", " : "", p->end.reason);
    }
    if (!p->x->closing && p->x->cb)
        p->x->cb(p->x->arg, p);
}

static void exec__closed(uv_handle_t *h)
{
    exec_part *p = h->data;
    exec *x = p->x;
    x->open--;
    if (x->closing) {
        if (x->open == 0)
            exec__free_all(x);
        return;
    }
    exec__ended(p, "the job's supervisor ended without saying how the job ended");
}

static void exec__on_exit(uv_process_t *proc, int64_t status, int signo)
{
    exec_part *p = proc->data;
    if (status != 0 || signo)
        log_warn("exec", "job %" PRIu64 ": its supervisor exited with %s %d (see %s/%s)", p->id,
                 signo ? "signal" : "status", signo ? signo : (int)status, p->dir, STEP_LOG);
    uv_close((uv_handle_t *)proc, exec__closed);
}

static void exec__start_failed(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, exec__closed);
}

/* A part that never runs: its end (set) is reported from the loop. */
static void exec__end_soon(exec *x, exec_part *p)
{
    p->end_set = true;
    uv_timer_init(x->loop, &p->later);
    p->later.data = p;
    x->open++;
    uv_timer_start(&p->later, exec__start_failed, 0, 0);
}

int exec_init(exec *x, uv_loop_t *loop, const char *spool, exec_end_cb cb, void *arg, char *err,
              size_t errlen)
{
    memset(x, 0, sizeof *x);
    x->loop = loop;
    x->cb = cb;
    x->arg = arg;
    snprintf(x->spool, sizeof x->spool, "%s", spool);
    size_t n = sizeof x->exe;
    int rc = uv_exepath(x->exe, &n);
    if (rc != 0) {
        snprintf(err, errlen, "cannot find this program's path: %s", uv_strerror(rc));
        return -1;
    }
    DIR *dh = opendir(spool);
    if (!dh) {
        snprintf(err, errlen, "cannot read the job spool %s: %s", spool, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(dh))) {
        /* <id>.<attempt>, or <id>.<attempt>.<step> for a step's part; nothing else */
        char *end;
        const char *name = de->d_name;
        if (name[0] < '1' || name[0] > '9')
            continue;
        uint64_t id = strtoull(name, &end, 10);
        if (*end != '.' || end[1] < '0' || end[1] > '9')
            continue;
        unsigned long attempt = strtoul(end + 1, &end, 10), step = 0;
        if (*end == '.' && end[1] >= '1' && end[1] <= '9')
            step = strtoul(end + 1, &end, 10);
        if (*end || attempt > UINT32_MAX || step > UINT32_MAX)
            continue;
        exec_part *p = exec__add(x, id, (uint32_t)attempt, (uint32_t)step);
        p->pid = step_alive(p->dir);
        if (p->pid) {
            p->running = true;
            log_info("exec", "job %" PRIu64 " attempt %u still runs (supervisor %d): adopted", id,
                     (unsigned)attempt, (int)p->pid);
            continue;
        }
        /* Ended while this daemon was away, or lost: reported at the next tick. */
        p->running = false;
        p->ended_ms = uv_now(loop);
        if (step_end_read(p->dir, &p->end) != 0) {
            int killed = step_kill_tasks(p->dir);
            p->end.lost = true;
            p->end.exit_code = 128 + SIGKILL;
            snprintf(p->end.reason, sizeof p->end.reason,
                     "the job's supervisor on this node vanished while the daemon was down");
            log_warn("exec", "job %" PRIu64 " attempt %u lost%s", id, (unsigned)attempt,
                     killed ? ", tasks killed" : "");
        }
    }
    closedir(dh);
    return 0;
}

exec_part *exec_find(exec *x, uint64_t id, uint32_t attempt, uint32_t step)
{
    for (exec_part *p = x->parts; p; p = p->next)
        if (p->id == id && p->attempt == attempt && p->step == step)
            return p;
    return NULL;
}

static int exec__write_spec(const exec_part *p, const Jazari__StepSpec *spec, char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", p->dir, STEP_SPEC);
    size_t n = jazari__step_spec__get_packed_size(spec);
    uint8_t *data = xcalloc(n, 1);
    jazari__step_spec__pack(spec, data);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd >= 0 && write(fd, data, n) == (ssize_t)n ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(data);
    return rc;
}

exec_part *exec_start(exec *x, const Jazari__StepSpec *spec)
{
    const Jazari__Job *job = spec->job;
    exec_part *p = exec__add(x, job->id, job->attempt, spec->step);
    p->running = true;
    p->limit_s = job->spec ? job->spec->time_limit_s : 0;
    p->limit_known = true;
    char why[512] = "";
    int logfd = -1;
    /* The directory must be new: a run is started once. A leftover of a
     * run this daemon never adopted (a crash between mkdir and spawn) is
     * cleared first. */
    exec__remove_dir(p->dir);
    if (mkdir(p->dir, 0711) != 0 || chmod(p->dir, 0711) != 0) { /* whatever the umask */
        snprintf(why, sizeof why, "cannot create %s: %s", p->dir, strerror(errno));
        goto fail;
    }
    if (exec__write_spec(p, spec, why, sizeof why) != 0)
        goto fail;
    char logpath[PATH_MAX + 16];
    snprintf(logpath, sizeof logpath, "%s/%s", p->dir, STEP_LOG);
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        snprintf(why, sizeof why, "cannot write %s: %s", logpath, strerror(errno));
        goto fail;
    }
    char *args[] = {x->exe, "step", p->dir, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = logfd},
        {.flags = UV_INHERIT_FD, .data.fd = logfd},
    };
    uv_process_options_t o = {
        .exit_cb = exec__on_exit,
        .file = x->exe,
        .args = args,
        .flags = UV_PROCESS_DETACHED, /* a session of its own: it outlives us */
        .stdio_count = 3,
        .stdio = stdio,
    };
    p->proc.data = p;
    int rc = uv_spawn(x->loop, &p->proc, &o);
    close(logfd);
    x->open++;
    if (rc != 0) {
        snprintf(why, sizeof why, "cannot start the job's supervisor %s: %s", x->exe, uv_strerror(rc));
        p->end.lost = true;
        p->end.exit_code = 127;
        snprintf(p->end.reason, sizeof p->end.reason, "%s", why);
        p->end_set = true;
        uv_close((uv_handle_t *)&p->proc, exec__closed); /* closed: ended, through the callback */
        return p;
    }
    p->child = true;
    p->pid = p->proc.pid;
    /* The supervisor writes it too; written here as well so that a crash
     * of this daemon right now cannot hide a part that runs. */
    char pidline[160];
    step_pid_line(p->pid, pidline, sizeof pidline);
    snprintf(logpath, sizeof logpath, "%s/%s", p->dir, STEP_PID);
    FILE *f = fopen(logpath, "wx");
    if (f) {
        fputs(pidline, f);
        fclose(f);
    }
    log_info("exec", "job %" PRIu64 " attempt %u: supervisor %d started", p->id, p->attempt, (int)p->pid);
    return p;
fail:
    /* Not the job's fault: the node cannot run it (NODE_FAIL, requeued). */
    p->end.lost = true;
    p->end.exit_code = 127;
    snprintf(p->end.reason, sizeof p->end.reason, "%s", why);
    exec__end_soon(x, p);
    return p;
}

exec_part *exec_no_account(exec *x, uint64_t id, uint32_t attempt, const char *why)
{
    exec_part *p = exec__add(x, id, attempt, 0);
    p->running = true;
    p->end.lost = true; /* not the job's fault: placed elsewhere */
    p->end.no_account = true;
    p->end.exit_code = 127;
    snprintf(p->end.reason, sizeof p->end.reason, "%s", why);
    exec__end_soon(x, p);
    return p;
}

exec_part *exec_skip(exec *x, uint64_t id, uint32_t attempt, const char *why)
{
    exec_part *p = exec__add(x, id, attempt, 0);
    p->running = true;
    p->end.cancelled = true;
    snprintf(p->end.reason, sizeof p->end.reason, "%s", why);
    exec__end_soon(x, p);
    return p;
}

/* Leaves DIR/stop (with what it says) and signals the supervisor. */
static void exec__stop(exec_part *p, const char *what, int sig)
{
    if (!p->running || p->pid <= 1 || (!p->child && step_alive(p->dir) != p->pid))
        return; /* an adopted supervisor that is gone: its pid may be another's now */
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/%s", p->dir, STEP_STOP);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, what, strlen(what)) != (ssize_t)strlen(what))
            log_warn("exec", "cannot write %s: %s", path, strerror(errno));
        close(fd);
    }
    if (kill(p->pid, sig) != 0 && errno != ESRCH)
        log_warn("exec", "cannot signal supervisor %d: %s", (int)p->pid, strerror(errno));
}

void exec_preempt(exec *x, exec_part *p, int sig, uint32_t grace_s)
{
    (void)x;
    char what[64];
    snprintf(what, sizeof what, "preempt %d %u\n", sig, grace_s);
    log_info("exec", "job %" PRIu64 " attempt %u: preempted: signal %d, KILL in %u s", p->id, p->attempt, sig,
             grace_s);
    exec__stop(p, what, SIGTERM);
}

void exec_stop(exec *x, exec_part *p, bool now)
{
    (void)x;
    log_info("exec", "job %" PRIu64 " attempt %u: stopping%s", p->id, p->attempt, now ? " now" : "");
    exec__stop(p, "", now ? SIGUSR1 : SIGTERM);
}

void exec_set_limit(exec *x, exec_part *p, uint64_t limit_s)
{
    (void)x;
    bool first = p->limit_s == 0; /* an adopted part's first view of its job */
    p->limit_s = limit_s;
    if (!p->limit_known && first)
        return;
    if (!p->limit_known) {
        log_warn("exec", "job %" PRIu64 " attempt %u: its time limit is now %llu s, but its supervisor was "
                 "started before this daemon: it keeps the limit it had",
                 p->id, p->attempt, (unsigned long long)limit_s);
        return;
    }
    if (!p->running || p->pid <= 1 || (!p->child && step_alive(p->dir) != p->pid))
        return;
    char path[PATH_MAX + 8], text[32];
    snprintf(path, sizeof path, "%s/%s.new", p->dir, STEP_LIMIT);
    snprintf(text, sizeof text, "%llu\n", (unsigned long long)limit_s);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    if (fd >= 0)
        close(fd);
    char final[PATH_MAX + 8];
    snprintf(final, sizeof final, "%s/%s", p->dir, STEP_LIMIT);
    if (!ok || rename(path, final) != 0) {
        log_warn("exec", "job %" PRIu64 ": cannot write %s: %s", p->id, final, strerror(errno));
        return;
    }
    log_info("exec", "job %" PRIu64 " attempt %u: time limit now %llu s", p->id, p->attempt,
             (unsigned long long)limit_s);
    if (kill(p->pid, SIGUSR2) != 0 && errno != ESRCH)
        log_warn("exec", "cannot signal supervisor %d: %s", (int)p->pid, strerror(errno));
}

void exec_forget(exec *x, exec_part *p)
{
    if (p->running)
        return;
    exec__remove_dir(p->dir);
    exec__unlink(x, p);
    free(p);
}

void exec_poll(exec *x)
{
    for (exec_part *p = x->parts; p; p = p->next) {
        if (p->running && !p->child && !step_alive(p->dir)) {
            exec__ended(p, "the job's supervisor on this node vanished");
        }
    }
}

void exec_close(exec *x, void (*cb)(exec *x))
{
    x->closing = true;
    x->close_cb = cb;
    for (exec_part *p = x->parts; p; p = p->next)
        if (p->child && p->running && !uv_is_closing((uv_handle_t *)&p->proc))
            uv_close((uv_handle_t *)&p->proc, exec__closed);
    if (x->open == 0)
        exec__free_all(x);
}

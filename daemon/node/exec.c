/* exec.c - running a job's part on this node. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/log.h"
#include "../../common/xmem.h"

struct exec_job {
    exec *x;
    uint64_t id;
    char record[4096]; /* <spool>/<id>.pid while the part runs */
    uv_process_t proc;
    uv_timer_t later; /* reports a failure to start from the loop */
    exec_done_cb cb;
    void *arg;
    int exit_code;
    bool failed;
    char reason[512];
    exec_job *prev, *next;
};

void exec_init(exec *x, uv_loop_t *loop)
{
    memset(x, 0, sizeof *x);
    x->loop = loop;
}

bool exec_has(const exec *x, uint64_t id)
{
    for (const exec_job *j = x->jobs; j; j = j->next)
        if (j->id == id)
            return true;
    return false;
}

static void exec__unlink_free(exec_job *j)
{
    exec *x = j->x;
    if (j->prev)
        j->prev->next = j->next;
    else
        x->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    x->running--;
    free(j);
    if (x->closing && x->running == 0 && x->close_cb)
        x->close_cb(x);
}

static void exec__on_closed(uv_handle_t *h)
{
    exec_job *j = h->data;
    if (j->record[0])
        unlink(j->record);
    j->cb(j->arg, j->id, j->exit_code, j->failed, j->failed || j->reason[0] ? j->reason : NULL);
    exec__unlink_free(j);
}

static void exec__on_exit(uv_process_t *p, int64_t status, int signo)
{
    exec_job *j = p->data;
    j->exit_code = signo ? 128 + signo : (int)status;
    if (signo)
        snprintf(j->reason, sizeof j->reason, "killed by signal %d", signo);
    log_info("exec", "job %llu ended: %s %d", (unsigned long long)j->id, signo ? "signal" : "exit status",
             signo ? signo : (int)status);
    uv_close((uv_handle_t *)p, exec__on_closed);
}

static void exec__fail_later(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, exec__on_closed);
}

/* Opens an output file as the job's user would: created with mode 0644,
 * appended to. Returns the fd or -1 with reason. */
static int exec__open_output(const exec_spec *s, const char *path, char *reason, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(reason, len, "cannot write the output %s: %s", path, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && fchown(fd, s->uid, s->gid) != 0)
        log_warn("exec", "job %llu: cannot give %s to uid %u: %s", (unsigned long long)s->id, path,
                 (unsigned)s->uid, strerror(errno));
    return fd;
}

static void exec__env(const exec_spec *s, buf *b, char ***out)
{
    /* One buffer holds every string; pointers are set after it stops growing. */
    size_t n = 0;
    const char *keep[] = {"PATH", "LANG", "TZ"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const char *v = getenv(keep[i]);
        if (v) {
            buf_printf(b, "%s=%s", keep[i], v);
            buf_putc(b, '\0');
            n++;
        }
    }
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    if (getpwuid_r(s->uid, &pw, pwbuf, sizeof pwbuf, &res) == 0 && res) {
        buf_printf(b, "HOME=%s", pw.pw_dir);
        buf_putc(b, '\0');
        buf_printf(b, "USER=%s", pw.pw_name);
        buf_putc(b, '\0');
        n += 2;
    }
    buf_printf(b, "JAZARI_JOB_ID=%llu", (unsigned long long)s->id);
    buf_putc(b, '\0');
    buf_printf(b, "JAZARI_JOB_NAME=%s", s->name ? s->name : "");
    buf_putc(b, '\0');
    buf_printf(b, "JAZARI_NODELIST=%s", s->nodelist ? s->nodelist : "");
    buf_putc(b, '\0');
    buf_printf(b, "JAZARI_NNODES=%u", s->nnodes);
    buf_putc(b, '\0');
    buf_printf(b, "JAZARI_NODE_RANK=%u", s->node_rank);
    buf_putc(b, '\0');
    buf_puts(b, "CUDA_DEVICE_ORDER=PCI_BUS_ID");
    buf_putc(b, '\0');
    buf_puts(b, "CUDA_VISIBLE_DEVICES=");
    for (uint32_t g = 0; g < s->n_gpus; g++)
        buf_printf(b, "%s%u", g ? "," : "", s->gpus[g]);
    buf_putc(b, '\0');
    n += 7;
    for (size_t i = 0; i < s->n_env; i++) {
        buf_puts(b, s->env[i]);
        buf_putc(b, '\0');
        n++;
    }
    char **env = xcalloc(n + 1, sizeof *env);
    char *p = b->data;
    for (size_t i = 0; i < n; i++) {
        env[i] = p;
        p += strlen(p) + 1;
    }
    *out = env;
}

void exec_start(exec *x, const exec_spec *s, exec_done_cb cb, void *arg)
{
    exec_job *j = xcalloc(1, sizeof *j);
    j->x = x;
    j->id = s->id;
    j->cb = cb;
    j->arg = arg;
    j->next = x->jobs;
    if (x->jobs)
        x->jobs->prev = j;
    x->jobs = j;
    x->running++;

    char path[4096], script[4096];
    int out = -1, err = -1;
    char **env = NULL, **argv_copy = NULL;
    buf envbuf = BUF_INIT;
    struct stat st;
    const char *workdir = s->workdir && *s->workdir ? s->workdir : "/";
    if (stat(workdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(j->reason, sizeof j->reason, "the working directory %s does not exist", workdir);
        goto fail;
    }
    if (geteuid() == 0 && s->uid != 0 && st.st_uid != s->uid && !(st.st_mode & S_IWOTH)) {
        snprintf(j->reason, sizeof j->reason, "the working directory %s is not the user's (uid %u)", workdir,
                 (unsigned)s->uid);
        goto fail;
    }
    if (s->output && *s->output)
        snprintf(path, sizeof path, "%s%s%s", s->output[0] == '/' ? "" : workdir,
                 s->output[0] == '/' ? "" : "/", s->output);
    else
        snprintf(path, sizeof path, "%s/jazari-%llu.out", workdir, (unsigned long long)s->id);
    if ((out = exec__open_output(s, path, j->reason, sizeof j->reason)) < 0)
        goto fail;
    if (s->error && *s->error) {
        snprintf(path, sizeof path, "%s%s%s", s->error[0] == '/' ? "" : workdir,
                 s->error[0] == '/' ? "" : "/", s->error);
        if ((err = exec__open_output(s, path, j->reason, sizeof j->reason)) < 0)
            goto fail;
    }
    char *sh_argv[] = {"/bin/sh", script, NULL};
    /* The command's words come as a counted array: execvp wants a NULL. */
    argv_copy = xcalloc(s->argc + 1, sizeof(char *));
    for (size_t i = 0; i < s->argc; i++)
        argv_copy[i] = s->argv[i];
    char *const *argv = argv_copy;
    if ((!s->script || !*s->script) && s->argc == 0) {
        snprintf(j->reason, sizeof j->reason, "no command to run");
        goto fail;
    }
    if (s->script && *s->script) {
        snprintf(script, sizeof script, "%s/%llu.sh", s->spool, (unsigned long long)s->id);
        int fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        size_t len = strlen(s->script);
        if (fd < 0 || write(fd, s->script, len) != (ssize_t)len) {
            snprintf(j->reason, sizeof j->reason, "cannot write the script to %s: %s", script,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        if (geteuid() == 0 && fchown(fd, s->uid, s->gid) != 0)
            log_warn("exec", "cannot give %s to uid %u", script, (unsigned)s->uid);
        close(fd);
        argv = sh_argv;
    }
    exec__env(s, &envbuf, &env);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = out},
        {.flags = UV_INHERIT_FD, .data.fd = err >= 0 ? err : out},
    };
    uv_process_options_t o = {
        .exit_cb = exec__on_exit,
        .file = argv[0],
        .args = (char **)argv,
        .env = env,
        .cwd = workdir,
        .flags = UV_PROCESS_DETACHED, /* its own process group, to kill the whole tree */
        .stdio_count = 3,
        .stdio = stdio,
    };
    if (geteuid() == 0 && s->uid != 0) {
        o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        o.uid = s->uid;
        o.gid = s->gid;
    }
    j->proc.data = j;
    int rc = uv_spawn(x->loop, &j->proc, &o);
    close(out);
    if (err >= 0)
        close(err);
    free(env);
    buf_free(&envbuf);
    if (rc < 0) {
        snprintf(j->reason, sizeof j->reason, "cannot run '%.200s': %s", argv[0], uv_strerror(rc));
        free(argv_copy);
        /* uv_spawn leaves a handle to close even when it fails. */
        j->failed = true;
        j->exit_code = 127;
        uv_close((uv_handle_t *)&j->proc, exec__on_closed);
        return;
    }
    free(argv_copy);
    /* A record that outlives this daemon: a restarted one must not run the
     * part twice (exec_lost). */
    snprintf(j->record, sizeof j->record, "%s/%llu.pid", s->spool, (unsigned long long)s->id);
    FILE *rf = fopen(j->record, "w");
    if (rf) {
        fprintf(rf, "%d\n", j->proc.pid);
        fclose(rf);
    }
    log_info("exec", "job %llu started: pid %d, GPUs %u", (unsigned long long)s->id, j->proc.pid, s->n_gpus);
    return;
fail:
    free(argv_copy);
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    free(env);
    buf_free(&envbuf);
    j->failed = true;
    j->exit_code = 127;
    log_warn("exec", "job %llu cannot start: %s", (unsigned long long)s->id, j->reason);
    uv_timer_init(x->loop, &j->later);
    j->later.data = j;
    uv_timer_start(&j->later, exec__fail_later, 0, 0);
}

bool exec_lost(const char *spool, uint64_t id)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%llu.pid", spool, (unsigned long long)id);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[32] = "";
    char *end = NULL;
    long pid = fgets(line, sizeof line, f) ? strtol(line, &end, 10) : 0;
    if (end != line && pid > 1 && pid < INT_MAX && kill(-(pid_t)pid, 0) == 0) {
        log_warn("exec", "job %llu: killing what an earlier run of this daemon left (pid %ld)",
                 (unsigned long long)id, pid);
        kill(-(pid_t)pid, SIGKILL);
    }
    fclose(f);
    unlink(path);
    return true;
}

void exec_kill(exec *x, uint64_t id, const char *why)
{
    for (exec_job *j = x->jobs; j; j = j->next) {
        if (j->id != id || j->failed || !uv_is_active((uv_handle_t *)&j->proc))
            continue;
        log_info("exec", "job %llu: killing its processes (%s)", (unsigned long long)id, why);
        kill(-j->proc.pid, SIGKILL);
    }
}

size_t exec_ids(const exec *x, uint64_t *ids, size_t max)
{
    size_t n = 0;
    for (const exec_job *j = x->jobs; j && n < max; j = j->next)
        ids[n++] = j->id;
    return n;
}

void exec_close(exec *x, void (*cb)(exec *x))
{
    x->closing = true;
    x->close_cb = cb;
    for (exec_job *j = x->jobs; j; j = j->next)
        if (!j->failed && uv_is_active((uv_handle_t *)&j->proc))
            kill(-j->proc.pid, SIGKILL);
    if (x->running == 0 && cb)
        cb(x);
}

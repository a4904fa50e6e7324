/* step.c - the supervisor of a job's part on one node. A plain process: no
 * event loop, one thread, signals taken synchronously with sigtimedwait. */
#include "step.h"
#include "pty.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/cpulist.h"
#include "../../common/hostlist.h"
#include "../../common/jobdir.h"
#include "../../common/jobspec.h"
#include "../../common/log.h"
#include "../../common/outpath.h"
#include "../../common/xmem.h"
#include "../raft/fstep.h"
#include "cgroup.h"
#include "jazari.pb-c.h"

/* --- the files of a part ------------------------------------------------------- */

static int step__write_file(const char *dir, const char *name, const char *text)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    /* No fsync: after a crash of the machine, the boot id tells these
     * records are void anyway. A rename is atomic against a daemon crash. */
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -1;
    close(fd);
    if (rc == 0)
        rc = rename(tmp, path);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int step_end_write(const char *dir, const step_end *e)
{
    char text[1024];
    /* The reason is the last line: it may hold anything but a newline. */
    char reason[sizeof e->reason];
    snprintf(reason, sizeof reason, "%s", e->reason);
    for (char *p = reason; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    snprintf(text, sizeof text,
             "exit_code %d\nfailed_to_start %d\ntimed_out %d\ncancelled %d\nlost %d\ncpu_ms %llu\n"
             "max_rss_bytes %llu\nreason %s\n",
             e->exit_code, e->failed_to_start, e->timed_out, e->cancelled, e->lost,
             (unsigned long long)e->cpu_ms, (unsigned long long)e->max_rss_bytes, reason);
    return step__write_file(dir, STEP_END, text);
}

int step_end_read(const char *dir, step_end *e)
{
    char path[PATH_MAX], line[700];
    snprintf(path, sizeof path, "%s/%s", dir, STEP_END);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    memset(e, 0, sizeof *e);
    int seen = 0;
    long v;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "reason ", 7) == 0) {
            snprintf(e->reason, sizeof e->reason, "%s", line + 7);
            continue;
        }
        char *sp = strchr(line, ' '), *end;
        if (!sp)
            continue;
        *sp = '\0';
        /* The usage: counts, bounded as the kernel's files are (a record
         * that does not parse says nothing of them). */
        uint64_t *u = strcmp(line, "cpu_ms") == 0          ? &e->cpu_ms
                      : strcmp(line, "max_rss_bytes") == 0 ? &e->max_rss_bytes
                                                           : NULL;
        if (u) {
            if (cg_parse_value(sp + 1, u) != 0)
                *u = 0;
            continue;
        }
        v = strtol(sp + 1, &end, 10);
        if (end == sp + 1 || *end || v < INT_MIN || v > INT_MAX)
            continue;
        if (strcmp(line, "exit_code") == 0)
            e->exit_code = (int)v, seen++;
        else if (strcmp(line, "failed_to_start") == 0)
            e->failed_to_start = v != 0;
        else if (strcmp(line, "timed_out") == 0)
            e->timed_out = v != 0;
        else if (strcmp(line, "cancelled") == 0)
            e->cancelled = v != 0;
        else if (strcmp(line, "lost") == 0)
            e->lost = v != 0;
    }
    fclose(f);
    return seen ? 0 : -1;
}

unsigned long long step_proc_start(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    /* After the command name in parentheses (which may hold spaces), the
     * start time is field 22: the 20th after the closing parenthesis. */
    char *p = strrchr(text, ')');
    if (!p)
        return 0;
    char state = p[2];
    if (state == 'Z' || state == 'X')
        return 0;
    for (int field = 3; p && field <= 22; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* This boot's id: pids and process groups of another boot mean nothing. */
static void step__boot_id(char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
}

void step_pid_line(pid_t pid, char *out, size_t len)
{
    char boot[64];
    step__boot_id(boot, sizeof boot);
    snprintf(out, len, "%d %llu %s\n", (int)pid, step_proc_start(pid), boot);
}

/* DIR/pid of this boot: the supervisor's pid and start time, else 0. */
static long step__pid_record(const char *dir, unsigned long long *start)
{
    char path[PATH_MAX], line[160] = "", boot[64], *end;
    snprintf(path, sizeof path, "%s/%s", dir, STEP_PID);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    long pid = got ? strtol(line, &end, 10) : 0;
    *start = got && *end == ' ' ? strtoull(end + 1, &end, 10) : 0;
    step__boot_id(boot, sizeof boot);
    if (pid <= 1 || pid > INT_MAX || *start == 0 || *end != ' ' || strcmp(end + 1, boot) != 0)
        return 0;
    return pid;
}

pid_t step_alive(const char *dir)
{
    unsigned long long start;
    long pid = step__pid_record(dir, &start);
    if (!pid)
        return 0;
    return step_proc_start((pid_t)pid) == start ? (pid_t)pid : 0;
}

int step_kill_tasks(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, STEP_TASKS);
    unsigned long long start;
    /* Process groups recorded in another boot are other processes now. */
    FILE *f = step__pid_record(dir, &start) ? fopen(path, "re") : NULL;
    char line[32];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        long pgid = strtol(line, NULL, 10);
        if (pgid > 1 && pgid <= INT_MAX && kill(-(pid_t)pgid, SIGKILL) == 0)
            n++;
    }
    if (f)
        fclose(f);
    /* The cgroup: found again by its name (cg_create reuses a group). */
    char name[128] = "", err[512];
    int version = 0;
    snprintf(path, sizeof path, "%s/%s", dir, STEP_CGROUP);
    f = geteuid() == 0 ? fopen(path, "re") : NULL;
    if (f) {
        if (fgets(name, sizeof name, f)) {
            name[strcspn(name, "\n")] = '\0';
            char *sp = strchr(name, ' '); /* "NAME VERSION"; before 0.5 the name alone */
            if (sp) {
                *sp = '\0';
                version = sp[1] == '1' ? 1 : sp[1] == '2' ? 2 : 0;
            }
        }
        fclose(f);
    }
    cg_job *g = NULL;
    cg_opts o = {.root = getenv("JAZARI_CGROUP_ROOT"), .version = version, .parent = NULL};
    if (name[0] && cg_create(&o, name, 0, NULL, NULL, &g, err, sizeof err) == 0) {
        n += cg_signal_all(g, SIGKILL);
        if (cg_destroy(g, err, sizeof err) != 0)
            log_warn("step", "%s", err);
    }
    return n;
}

/* --- the supervisor -------------------------------------------------------------- */

typedef struct step_task {
    pid_t pid; /* also its process group */
    bool done;
    int status; /* exit status, or 128 + signal */
} step_task;

typedef struct step {
    const char *dir;
    Jazari__StepSpec *spec;
    const Jazari__Job *job;
    const Jazari__JobSpec *js;
    const Jazari__JobStep *jstep; /* a step's part: the step; NULL for the job's own */
    bool batch;                   /* the job's own part runs the batch script (first node) */
    bool hold;                    /* the job's own part without tasks: it holds the node for steps */
    uint32_t ntasks, cpus_per_task;
    uint32_t first_rank, world;  /* the global rank of task 0 here; tasks in all */
    uint32_t node_index, nnodes; /* this node among the step's (the job's for its own part) */
    buf gpus;                    /* CUDA_VISIBLE_DEVICES */
    buf jobdir;                  /* the job's private directory here (jobdir.h) */
    bool cg_shared;              /* a step's part in the job's group: never signal the group */
    char **argv;                 /* NULL-terminated */
    buf envbuf;                  /* the environment shared by every task, NUL-separated */
    size_t n_env;
    bool *cpus;     /* the host CPUs of the part, CPULIST_MAX + 1 flags */
    int *cpu_order; /* their indexes, in order */
    int n_cpus;
    cg_job *cg;
    step_task *tasks;
    uint32_t started, live;
    step_end end;
    bool has_pty; /* srun --pty: its one task on a terminal (pty.h) */
    spty pty;
    int pty_slave; /* until the task has started */
} step;

#define STEP_PTY_POLL_MS 10 /* a terminal's keys and output wait at most this */
#define STEP_GROUP_WAIT_MS 10000 /* a step waits this long for its job's group (as for its directory) */

static int64_t step__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds KEY=VALUE to the environment unless KEY is already there: what is
 * added first wins, so the job's own settings come before the defaults. */
static void step__setenv(step *s, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) + 1 : strlen(kv);
    for (size_t off = 0, i = 0; i < s->n_env; i++) {
        const char *e = s->envbuf.data + off;
        if (strlen(e) >= klen && memcmp(e, kv, klen) == 0)
            return;
        off += strlen(e) + 1;
    }
    buf_puts(&s->envbuf, kv);
    buf_putc(&s->envbuf, '\0');
    s->n_env++;
}

static void step__setenvf(step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step__setenvf(step *s, const char *fmt, ...)
{
    buf kv = BUF_INIT; /* as long as it needs: a big gang's node list */
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&kv, fmt, ap);
    va_end(ap);
    step__setenv(s, buf_str(&kv));
    buf_free(&kv);
}

/* Slurm's compressed form of nodes first..first+n-1 of the job. */
static void step__nodelist(buf *out, const Jazari__Job *j, uint32_t first, uint32_t n)
{
    const char **names = xcalloc(n + 1, sizeof *names);
    size_t k = 0;
    for (uint32_t i = 0; i < n && first + i < j->n_allocs; i++)
        names[k++] = j->allocs[first + i]->node;
    hostlist_compress(names, k, false, out);
    free(names);
}

/* Slurm's "2(x3),1" form of tasks per node. */
static void step__tasks_per_node(buf *out, uint32_t ntasks, uint32_t nnodes)
{
    uint32_t prev = 0, run = 0;
    for (uint32_t i = 0; i <= nnodes; i++) {
        uint32_t count = 0, first;
        if (i < nnodes)
            jobspec_tasks(ntasks, nnodes, i, &count, &first);
        if (i < nnodes && run && count == prev) {
            run++;
            continue;
        }
        if (run)
            buf_printf(out, "%s%u%s", out->len ? "," : "", prev, "");
        if (run > 1)
            buf_printf(out, "(x%u)", run);
        prev = count;
        run = 1;
    }
}

/* Whether KEY=VALUE names a variable only we set: Slurm's and ours, and
 * the ranks, from the shell srun or sbatch was called in (a batch script's
 * own, another job's) must not leak into the tasks. */
static bool step__ours(const char *kv)
{
    static const char *const per_task[] = {
        "RANK=",       "LOCAL_RANK=",  "WORLD_SIZE=",  "LOCAL_WORLD_SIZE=",     "NODE_RANK=",
        "GROUP_RANK=", "MASTER_ADDR=", "MASTER_PORT=", "CUDA_VISIBLE_DEVICES=", "TMPDIR="};
    if (strncmp(kv, "SLURM_", 6) == 0 || strncmp(kv, "SLURMD_", 7) == 0 || strncmp(kv, "JAZARI_", 7) == 0)
        return true;
    for (size_t i = 0; i < sizeof per_task / sizeof *per_task; i++)
        if (strncmp(kv, per_task[i], strlen(per_task[i])) == 0)
            return true;
    return false;
}

/* KEY's value in env (KEY=VALUE strings), or NULL. */
static const char *step__env_get(char *const *env, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (env[i] && strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
            return env[i] + kl + 1;
    return NULL;
}

/* The environment every task shares: ours (which the job cannot change,
 * as the ranks depend on them), the job's --env (the submitting shell's,
 * with --export=ALL), then the user's basics. Slurm's variables as sbatch
 * and srun set them: a job's in its batch step, a step's in its tasks. */
static void step__env(step *s, const struct passwd *pw)
{
    const Jazari__Job *j = s->job;
    const Jazari__JobSpec *js = s->js;
    const Jazari__StepSpec *sp = s->spec;
    const Jazari__StepRequestSpec *ss = s->jstep ? s->jstep->spec : NULL;
    uint32_t job_tasks =
        js->ntasks ? js->ntasks : (uint32_t)j->n_allocs * (js->tasks_per_node ? js->tasks_per_node : 1);
    buf v = BUF_INIT;
    step__setenvf(s, "JAZARI_JOB_ID=%llu", (unsigned long long)j->id);
    step__setenvf(s, "JAZARI_JOB_NAME=%s", js->name ? js->name : "");
    for (size_t i = 0; i < j->n_allocs; i++)
        buf_printf(&v, "%s%s", i ? "," : "", j->allocs[i]->node);
    step__setenvf(s, "JAZARI_NODELIST=%s", buf_str(&v));
    step__setenvf(s, "JAZARI_NNODES=%zu", j->n_allocs);
    step__setenvf(s, "JAZARI_NODE_RANK=%u", sp->node_rank);
    step__setenvf(s, "JAZARI_NODENAME=%s", sp->node_name);
    step__setenvf(s, "JAZARI_RESTART_COUNT=%u", j->attempt);
    if (sp->socket && *sp->socket)
        step__setenvf(s, "JAZARI_SOCKET=%s", sp->socket);
    if (j->array_job_id) {
        step__setenvf(s, "JAZARI_ARRAY_JOB_ID=%llu", (unsigned long long)j->array_job_id);
        step__setenvf(s, "JAZARI_ARRAY_TASK_ID=%u", js->array_index);
    }
    step__setenvf(s, "JAZARI_TASKS_PER_NODE=%u", s->ntasks);
    if (sp->host_cpus && *sp->host_cpus)
        step__setenvf(s, "JAZARI_CPUS=%s", sp->host_cpus);
    /* Slurm's: the job's */
    step__setenvf(s, "SLURM_JOB_ID=%llu", (unsigned long long)j->id);
    step__setenvf(s, "SLURM_JOBID=%llu", (unsigned long long)j->id);
    step__setenvf(s, "SLURM_JOB_NAME=%s", js->name ? js->name : "");
    buf_reset(&v);
    step__nodelist(&v, j, 0, (uint32_t)j->n_allocs);
    step__setenvf(s, "SLURM_JOB_NODELIST=%s", buf_str(&v));
    step__setenvf(s, "SLURM_JOB_NUM_NODES=%zu", j->n_allocs);
    step__setenvf(s, "SLURM_JOB_USER=%s", j->user ? j->user : "");
    step__setenvf(s, "SLURM_JOB_UID=%u", j->uid);
    step__setenvf(s, "SLURM_JOB_GID=%u", j->gid);
    step__setenvf(s, "SLURM_CPUS_ON_NODE=%d", s->n_cpus ? s->n_cpus : 1);
    step__setenvf(s, "SLURM_JOB_CPUS_PER_NODE=%d", s->n_cpus ? s->n_cpus : 1);
    const Jazari__JobAlloc *mine = sp->node_rank < j->n_allocs ? j->allocs[sp->node_rank] : NULL;
    step__setenvf(s, "SLURM_GPUS_ON_NODE=%zu", mine ? mine->n_gpus : 0);
    if (js->gpus_per_node)
        step__setenvf(s, "SLURM_GPUS_PER_NODE=%u", js->gpus_per_node);
    if (js->gpus_per_task)
        step__setenvf(s, "SLURM_GPUS_PER_TASK=%u", js->gpus_per_task);
    if (js->cpus_per_gpu)
        step__setenvf(s, "SLURM_CPUS_PER_GPU=%u", js->cpus_per_gpu);
    if (js->mem_bytes)
        step__setenvf(s, "SLURM_MEM_PER_NODE=%llu", (unsigned long long)(js->mem_bytes >> 20));
    const char *submit_dir = js->submit_dir && *js->submit_dir ? js->submit_dir : js->workdir;
    if (submit_dir && *submit_dir)
        step__setenvf(s, "SLURM_SUBMIT_DIR=%s", submit_dir);
    if (js->submit_host && *js->submit_host)
        step__setenvf(s, "SLURM_SUBMIT_HOST=%s", js->submit_host);
    if (js->account && *js->account)
        step__setenvf(s, "SLURM_JOB_ACCOUNT=%s", js->account);
    step__setenvf(s, "SLURM_JOB_QOS=%s", js->qos && *js->qos ? js->qos : "normal");
    if (j->partition && *j->partition)
        step__setenvf(s, "SLURM_JOB_PARTITION=%s", j->partition);
    if (j->array_job_id) {
        step__setenvf(s, "SLURM_ARRAY_JOB_ID=%llu", (unsigned long long)j->array_job_id);
        step__setenvf(s, "SLURM_ARRAY_TASK_ID=%u", js->array_index);
        if (js->array_count) {
            step__setenvf(s, "SLURM_ARRAY_TASK_COUNT=%u", js->array_count);
            step__setenvf(s, "SLURM_ARRAY_TASK_MIN=%u", js->array_min);
            step__setenvf(s, "SLURM_ARRAY_TASK_MAX=%u", js->array_max_index);
        }
    }
    step__setenvf(s, "SLURMD_NODENAME=%s", sp->node_name);
    step__setenvf(s, "SLURM_TOPOLOGY_ADDR=%s", sp->node_name);
    step__setenvf(s, "SLURM_CLUSTER_NAME=%s", sp->cluster && *sp->cluster ? sp->cluster : "jazari");
    step__setenvf(s, "SLURM_RESTART_COUNT=%u", j->attempt);
    if (s->jstep || js->cpus_per_task) /* as asked: the batch script may use all the node's */
        step__setenvf(s, "SLURM_CPUS_PER_TASK=%u", s->jstep ? s->cpus_per_task : js->cpus_per_task);
    /* ... and what depends on the step: the batch script sees the job's */
    uint32_t ntasks = ss ? s->world : job_tasks;
    buf_reset(&v);
    if (ss)
        step__nodelist(&v, j, s->jstep->n_ranks ? s->jstep->ranks[0] : 0, s->nnodes);
    else
        step__nodelist(&v, j, 0, (uint32_t)j->n_allocs);
    step__setenvf(s, "SLURM_NODELIST=%s", buf_str(&v));
    step__setenvf(s, "SLURM_NNODES=%u", ss ? s->nnodes : (uint32_t)j->n_allocs);
    step__setenvf(s, "SLURM_NTASKS=%u", ntasks);
    step__setenvf(s, "SLURM_NPROCS=%u", ntasks);
    buf tpn = BUF_INIT;
    step__tasks_per_node(&tpn, ntasks, ss ? s->nnodes : (uint32_t)j->n_allocs);
    step__setenvf(s, "SLURM_TASKS_PER_NODE=%s", buf_str(&tpn));
    if (!strchr(buf_str(&tpn), ',') && !strchr(buf_str(&tpn), '('))
        step__setenvf(s, "SLURM_NTASKS_PER_NODE=%s", buf_str(&tpn));
    else if (js->tasks_per_node && !ss)
        step__setenvf(s, "SLURM_NTASKS_PER_NODE=%u", js->tasks_per_node);
    step__setenvf(s, "SLURM_NODEID=%u", s->node_index);
    if (ss) {
        step__setenvf(s, "SLURM_STEP_ID=%u", s->jstep->id);
        step__setenvf(s, "SLURM_STEPID=%u", s->jstep->id);
        step__setenvf(s, "SLURM_STEP_NODELIST=%s", buf_str(&v));
        step__setenvf(s, "SLURM_STEP_NUM_NODES=%u", s->nnodes);
        step__setenvf(s, "SLURM_STEP_NUM_TASKS=%u", s->world);
        step__setenvf(s, "SLURM_STEP_TASKS_PER_NODE=%s", buf_str(&tpn));
        buf_reset(&v);
        for (uint32_t t = 0; t < s->ntasks; t++)
            buf_printf(&v, "%s%u", t ? "," : "", s->first_rank + t);
        step__setenvf(s, "SLURM_GTIDS=%s", buf_str(&v));
    }
    buf_free(&tpn);
    buf_free(&v);
    if (s->jobdir.len) {
        step__setenvf(s, "TMPDIR=%s/tmp", buf_str(&s->jobdir));
        step__setenvf(s, "JAZARI_TMPDIR=%s/tmp", buf_str(&s->jobdir));
    }
    step__setenvf(s, "CUDA_VISIBLE_DEVICES=%s", buf_str(&s->gpus));
    step__setenv(s, "CUDA_DEVICE_ORDER=PCI_BUS_ID");
    /* A step keeps a rendezvous its script chose (as under Slurm, which
     * sets none): MASTER_ADDR and MASTER_PORT from srun's environment. */
    const char *addr = ss ? step__env_get(ss->env, ss->n_env, "MASTER_ADDR") : NULL;
    const char *port = ss ? step__env_get(ss->env, ss->n_env, "MASTER_PORT") : NULL;
    if (addr && *addr)
        step__setenvf(s, "MASTER_ADDR=%s", addr);
    else
        step__setenvf(s, "MASTER_ADDR=%s", sp->master_addr);
    if (port && *port)
        step__setenvf(s, "MASTER_PORT=%s", port);
    else
        step__setenvf(s, "MASTER_PORT=%u", sp->master_port);
    step__setenvf(s, "NODE_RANK=%u", s->node_index);
    step__setenvf(s, "GROUP_RANK=%u", s->node_index);
    if (!s->batch) { /* the batch script is not one of the ranks */
        step__setenvf(s, "WORLD_SIZE=%u", s->world);
        step__setenvf(s, "LOCAL_WORLD_SIZE=%u", s->ntasks);
    }
    /* jz and the Slurm commands first on the PATH, before the caller's own */
    const char *path = NULL;
    size_t plen = strlen("PATH=");
    for (size_t i = 0; ss && i < ss->n_env; i++)
        if (strncmp(ss->env[i], "PATH=", plen) == 0)
            path = ss->env[i] + plen;
    for (size_t i = 0; !path && i < js->n_env; i++)
        if (strncmp(js->env[i], "PATH=", plen) == 0)
            path = js->env[i] + plen;
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    if (sp->bin_dir && *sp->bin_dir)
        step__setenvf(s, "PATH=%s:%s", sp->bin_dir, path);
    /* A step runs in the environment srun was called in; a job's part in
     * its submitter's. */
    for (size_t i = 0; ss && i < ss->n_env; i++)
        if (!step__ours(ss->env[i]))
            step__setenv(s, ss->env[i]);
    for (size_t i = 0; !ss && i < js->n_env; i++)
        if (!step__ours(js->env[i]))
            step__setenv(s, js->env[i]);
    if (pw) {
        step__setenvf(s, "HOME=%s", pw->pw_dir);
        step__setenvf(s, "USER=%s", pw->pw_name);
        step__setenvf(s, "LOGNAME=%s", pw->pw_name);
        step__setenvf(s, "SHELL=%s", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
    }
    const char *keep[] = {"PATH", "LANG", "TZ"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (getenv(keep[i]))
            step__setenvf(s, "%s=%s", keep[i], getenv(keep[i]));
    step__setenv(s, "PATH=/usr/local/bin:/usr/bin:/bin");
}

/* The command: the job's words, or its script (run directly when it names
 * its interpreter with #!, else with /bin/sh). */
static int step__command(step *s, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    const Jazari__JobSpec *js = s->js;
    if (s->hold)
        return 0;
    if (s->jstep) { /* a step: the words srun was given */
        const Jazari__StepRequestSpec *ss = s->jstep->spec;
        s->argv = xcalloc(ss->n_argv + 1, sizeof(char *));
        for (size_t i = 0; i < ss->n_argv; i++)
            s->argv[i] = xstrdup(ss->argv[i]);
        return 0;
    }
    if (js->script && *js->script) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->dir, STEP_SCRIPT);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0500);
        size_t len = strlen(js->script);
        if (fd < 0 || write(fd, js->script, len) != (ssize_t)len ||
            (geteuid() == 0 && fchown(fd, uid, gid) != 0)) {
            snprintf(err, errlen, "cannot write the script to %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        /* A batch script's own arguments follow it (sbatch SCRIPT ARGS). */
        bool shebang = strncmp(js->script, "#!", 2) == 0;
        size_t nargs = s->batch ? js->n_argv : 0, k = 0;
        s->argv = xcalloc(nargs + 3, sizeof(char *));
        if (!shebang)
            s->argv[k++] = xstrdup("/bin/sh");
        s->argv[k++] = xstrdup(path);
        for (size_t i = 0; i < nargs; i++)
            s->argv[k++] = xstrdup(js->argv[i]);
        return 0;
    }
    if (js->n_argv == 0) {
        snprintf(err, errlen, "no command to run");
        return -1;
    }
    s->argv = xcalloc(js->n_argv + 1, sizeof(char *));
    for (size_t i = 0; i < js->n_argv; i++)
        s->argv[i] = xstrdup(js->argv[i]);
    return 0;
}

/* Writes a child's failure to the parent and ends the child. */
static void step__child_fail(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void step__child_fail(int fd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0 && write(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
        _exit(126);
    _exit(127);
}

/* The child of task t: /dev/null for its input; its output and error to
 * the files asked for, or to those the job's directory keeps for srun. */
static void step__child_io(step *s, uint32_t t, int efd, const char *workdir)
{
    const Jazari__Job *j = s->job;
    const Jazari__StepSpec *sp = s->spec;
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0)
        step__child_fail(efd, "cannot open /dev/null: %s", strerror(errno));
    uint32_t rank = s->first_rank + t;
    buf path = BUF_INIT;
    outpath_job oj = {j->id, j->array_job_id, s->js->array_index, s->js->name, j->user};
    const char *opat = s->js->output, *epat = s->js->error;
    const Jazari__StepRequestSpec *ss = s->jstep ? s->jstep->spec : NULL;
    if (ss) {
        opat = ss->output;
        epat = ss->error;
    }
    int out, err;
    /* --open-mode=truncate: a run's outputs start empty (the batch script's
     * own, opened as the user) */
    int trunc = s->batch && s->js->output_truncate ? O_TRUNC : 0;
    if (ss && (!opat || !*opat)) {
        /* Relayed to srun: the job's directory keeps it until srun read it. */
        jobdir_step_io(&path, sp->tmp_base, sp->node_name, j->id, j->attempt, s->jstep->id, rank, false);
        out = open(buf_str(&path), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
    } else {
        outpath_expand(opat, workdir, &oj, sp->node_rank, sp->node_name, rank, &path);
        out = open(buf_str(&path), O_WRONLY | O_CREAT | O_APPEND | trunc, 0644);
    }
    if (out < 0)
        step__child_fail(efd, "cannot write the output %s: %s", buf_str(&path), strerror(errno));
    err = out;
    if (ss && (!opat || !*opat) && (!epat || !*epat)) {
        jobdir_step_io(&path, sp->tmp_base, sp->node_name, j->id, j->attempt, s->jstep->id, rank, true);
        err = open(buf_str(&path), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
    } else if (epat && *epat) {
        buf_reset(&path);
        outpath_expand(epat, workdir, &oj, sp->node_rank, sp->node_name, rank, &path);
        err = open(buf_str(&path), O_WRONLY | O_CREAT | O_APPEND | trunc, 0644);
    }
    if (err < 0)
        step__child_fail(efd, "cannot write the error output %s: %s", buf_str(&path), strerror(errno));
    if (dup2(out, 1) < 0 || dup2(err, 2) < 0)
        step__child_fail(efd, "cannot set up the output: %s", strerror(errno));
    if (in > 2)
        close(in);
    if (err > 2 && err != out)
        close(err);
    if (out > 2)
        close(out);
}

/* The child of task t: from the supervisor (root) to the user's command. */
static void step__child(step *s, uint32_t t, const struct passwd *pw, int efd)
{
    const Jazari__Job *j = s->job;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    setsid(); /* its own process group: its whole tree is signalled at once */
    if (s->cg && cg_attach(s->cg, 0) != 0)
        step__child_fail(efd, "cannot join the job's cgroup %s: %s", cg_path(s->cg), strerror(errno));
    if (s->n_cpus > 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (uint32_t c = 0; c < s->cpus_per_task; c++) {
            int cpu = s->cpu_order[(t * s->cpus_per_task + c) % (uint32_t)s->n_cpus];
            if (cpu < CPU_SETSIZE)
                CPU_SET(cpu, &set);
        }
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            log_warn("step", "task %u: cannot bind to its CPUs: %s", t, strerror(errno));
    }
    uid_t uid = (uid_t)j->uid;
    gid_t gid = (gid_t)j->gid;
    if (geteuid() == 0 && uid != 0) {
        if ((pw ? initgroups(pw->pw_name, gid) : setgroups(1, &gid)) != 0 || setgid(gid) != 0 ||
            setuid(uid) != 0)
            step__child_fail(efd, "cannot become uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
                             strerror(errno));
    }
    const char *workdir = s->js->workdir && *s->js->workdir ? s->js->workdir : "/";
    if (s->jstep && s->jstep->spec->workdir && *s->jstep->spec->workdir)
        workdir = s->jstep->spec->workdir;
    struct stat st;
    if (stat(workdir, &st) != 0 && errno != ENOENT && errno != ENOTDIR)
        step__child_fail(efd, "cannot enter the working directory %s: %s", workdir, strerror(errno));
    if (stat(workdir, &st) != 0 || !S_ISDIR(st.st_mode))
        step__child_fail(efd, "the working directory %s does not exist", workdir);
    if (chdir(workdir) != 0)
        step__child_fail(efd, "cannot enter the working directory %s: %s", workdir, strerror(errno));
    uint32_t rank = s->first_rank + t;
    if (s->has_pty) {
        if (spty_child(s->pty_slave) != 0)
            step__child_fail(efd, "cannot take the pseudo-terminal: %s", strerror(errno));
    } else {
        step__child_io(s, t, efd, workdir);
    }
    /* The per-task variables, then the shared ones. */
    char **env = xcalloc(s->n_env + 8, sizeof(char *));
    char vars[6][64];
    size_t k = 0;
    if (!s->batch) { /* the batch script is no task of the job's ranks */
        snprintf(vars[0], sizeof vars[0], "RANK=%u", rank);
        snprintf(vars[1], sizeof vars[1], "LOCAL_RANK=%u", t);
        snprintf(vars[2], sizeof vars[2], "JAZARI_PROCID=%u", rank);
        snprintf(vars[3], sizeof vars[3], "SLURM_PROCID=%u", rank);
        snprintf(vars[4], sizeof vars[4], "SLURM_LOCALID=%u", t);
        for (; k < 5; k++)
            env[k] = vars[k];
    } else {
        snprintf(vars[0], sizeof vars[0], "SLURM_PROCID=0");
        snprintf(vars[1], sizeof vars[1], "SLURM_LOCALID=0");
        for (; k < 2; k++)
            env[k] = vars[k];
    }
    char *p = s->envbuf.data;
    for (size_t i = 0; i < s->n_env; i++) {
        env[k + i] = p;
        p += strlen(p) + 1;
    }
    /* execvp searches the job's PATH (execvpe would search ours). */
    environ = env;
    execvp(s->argv[0], s->argv);
    step__child_fail(efd, "cannot run '%.200s': %s", s->argv[0], strerror(errno));
}

/* Starts task t. Returns 0, or -1 with the reason in s->end. */
static int step__start_task(step *s, uint32_t t, const struct passwd *pw)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(s->end.reason, sizeof s->end.reason, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(s->end.reason, sizeof s->end.reason, "cannot fork task %u: %s", t, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        step__child(s, t, pw, fds[1]);
    }
    close(fds[1]);
    s->tasks[t].pid = pid;
    s->started++;
    s->live++;
    /* The pipe closes on exec (success) or carries why the task failed. */
    char msg[512];
    ssize_t n, got = 0;
    while ((n = read(fds[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            got += n;
    close(fds[0]);
    if (got > 0) {
        msg[got] = '\0';
        snprintf(s->end.reason, sizeof s->end.reason, "%s", msg);
        return -1;
    }
    return 0;
}

/* Each process of the part once: through the cgroup (which also holds
 * what left the process groups), else to each task's process group. */
static void step__signal_all(step *s, int sig)
{
    if (s->cg && !s->cg_shared && cg_signal_all(s->cg, sig) > 0)
        return;
    for (uint32_t t = 0; t < s->started; t++)
        if (s->tasks[t].pid > 0)
            kill(-s->tasks[t].pid, sig);
}

static void step__reap(step *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (uint32_t t = 0; t < s->started; t++) {
            step_task *k = &s->tasks[t];
            if (k->pid != pid || k->done)
                continue;
            k->done = true;
            k->status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
            s->live--;
            log_info("step", "task %u (pid %d) ended: %s %d", t, (int)pid,
                     WIFSIGNALED(status) ? "signal" : "exit status",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
}

static void step__record_tasks(step *s)
{
    buf b = BUF_INIT;
    for (uint32_t t = 0; t < s->started; t++)
        buf_printf(&b, "%d\n", (int)s->tasks[t].pid);
    if (step__write_file(s->dir, STEP_TASKS, buf_str(&b)) != 0)
        log_warn("step", "cannot record the tasks in %s: %s", s->dir, strerror(errno));
    buf_free(&b);
}

/* DIR/stop: absent (the system's TERM), empty (a cancel), or "preempt SIG
 * GRACE" (that signal, KILL GRACE seconds later). 0 absent, 1 cancel, 2
 * preempt. */
static int step__stop_requested(const char *dir, int *sig, uint32_t *grace_s)
{
    char path[PATH_MAX], text[64];
    snprintf(path, sizeof path, "%s/%s", dir, STEP_STOP);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    if (strncmp(text, "preempt ", 8) != 0)
        return 1;
    char *end;
    long s = strtol(text + 8, &end, 10);
    long g = *end == ' ' ? strtol(end + 1, &end, 10) : -1;
    if (s <= 0 || s >= NSIG || g < 0 || g > 86400)
        return 1;
    *sig = (int)s;
    *grace_s = (uint32_t)g;
    return 2;
}

/* The signals the supervisor takes with sigtimedwait (blocked otherwise). */
static void step__signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

/* DIR/limit: the job's time limit as changed since it started (jz update
 * --time). 0 with it in *secs, or -1 when there is none (or it is bad). */
static int step__limit_read(const char *dir, uint64_t *secs)
{
    char path[PATH_MAX], text[32];
    snprintf(path, sizeof path, "%s/%s", dir, STEP_LIMIT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (n <= 0 || errno || end == text || (*end && *end != '\n') || v == 0 || v > 366ull * 86400)
        return -1;
    *secs = v;
    return 0;
}

/* Waits for the tasks, enforcing the time limit and taking stop requests. */
static void step__supervise(step *s)
{
    const Jazari__JobSpec *js = s->js;
    sigset_t set;
    step__signal_set(&set);
    const int64_t never = INT64_MAX;
    int64_t t0 = step__now_ms();
    if (s->jstep && s->job->start_time_ms) { /* a step counts from the job's start */
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        int64_t since = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 - s->job->start_time_ms;
        if (since > 0)
            t0 -= since;
    }
    uint64_t changed;
    if (step__limit_read(s->dir, &changed) == 0) /* changed before this supervisor listened */
        ((Jazari__JobSpec *)js)->time_limit_s = changed;
    int64_t limit_at = js->time_limit_s ? t0 + (int64_t)js->time_limit_s * 1000 : never;
    int64_t warn_at = never, kill_at = never;
    /* --signal: a batch job's steps get it, or its script alone with B: */
    bool warned = s->batch ? js->signal_batch_only : s->jstep ? !js->signal_batch_only : true;
    bool warn_sent = false;
    if (js->warn_signal && limit_at != never && warned && !s->hold)
        warn_at = limit_at - (int64_t)js->warn_secs * 1000;
    uint32_t grace_s = s->spec->kill_grace_s;
    bool stopping = false;
    while (s->live > 0 || (s->hold && !stopping)) {
        int64_t now = step__now_ms();
        if (warn_at != never && now >= warn_at) {
            log_info("step", "time limit in %u s: sending signal %u", js->warn_secs, js->warn_signal);
            step__signal_all(s, (int)js->warn_signal);
            warn_at = never;
            warn_sent = true;
        }
        if (!stopping && now >= limit_at) {
            log_info("step", "time limit of %llu s reached: TERM, KILL in %u s",
                     (unsigned long long)js->time_limit_s, grace_s);
            s->end.timed_out = stopping = true;
            step__signal_all(s, SIGTERM);
            kill_at = now + (int64_t)grace_s * 1000;
        }
        if (now >= kill_at) {
            step__signal_all(s, SIGKILL);
            kill_at = now + 1000; /* again, for what a dying task forks */
        }
        int64_t next = warn_at < kill_at ? warn_at : kill_at;
        if (!stopping && limit_at < next)
            next = limit_at;
        siginfo_t info;
        int sig;
        if (s->has_pty) { /* its keys and output move between signals */
            spty_pump(&s->pty);
            if (next == never || next - now > STEP_PTY_POLL_MS)
                next = now + STEP_PTY_POLL_MS;
        }
        if (next == never) {
            sig = sigwaitinfo(&set, &info);
        } else {
            int64_t wait = next > now ? next - now : 0;
            struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
            sig = sigtimedwait(&set, &info, &ts);
        }
        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            /* The daemon leaves DIR/stop before it asks; a TERM from anyone
             * else (the node shutting down) loses the part: requeued. */
            int warn = SIGTERM;
            int why = step__stop_requested(s->dir, &warn, &grace_s);
            s->end.cancelled = why > 0;
            s->end.preempted = why == 2;
            s->end.lost = !s->end.cancelled;
            log_info("step", "%s: signal %d, KILL in %u s",
                     why == 2 ? "preempted"
                     : why    ? "asked to stop"
                              : "terminated by the system",
                     warn, grace_s);
            stopping = true;
            step__signal_all(s, warn);
            if (warn != SIGTERM && grace_s == 0)
                step__signal_all(s, SIGTERM);
            kill_at = step__now_ms() + (int64_t)grace_s * 1000;
        } else if (sig == SIGUSR2 && step__limit_read(s->dir, &changed) == 0) {
            /* The limit changed (jz update --time): from the same start. */
            log_info("step", "time limit now %llu s (was %llu s)", (unsigned long long)changed,
                     (unsigned long long)js->time_limit_s);
            ((Jazari__JobSpec *)js)->time_limit_s = changed;
            if (!stopping) {
                limit_at = t0 + (int64_t)changed * 1000;
                if (js->warn_signal && warned && !s->hold && !warn_sent)
                    warn_at = limit_at - (int64_t)js->warn_secs * 1000;
            }
        } else if (sig == SIGUSR1) {
            log_info("step", "asked to stop now: KILL");
            s->end.cancelled = stopping = true;
            s->end.lost = false;
            step__signal_all(s, SIGKILL);
            kill_at = step__now_ms() + 1000;
        }
        step__reap(s);
    }
}

static uint64_t step__tv_ms(struct timeval tv)
{
    return tv.tv_sec < 0 ? 0 : (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* What the part used, once its tasks are reaped and before its group is
 * removed: the group's counts where it has one of its own (they hold
 * what the tasks left behind, and the job's steps), else the reaped
 * tasks' (getrusage knows only waited-for children). */
static void step__usage(step *s)
{
    step_end *e = &s->end;
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        e->cpu_ms = step__tv_ms(ru.ru_utime) + step__tv_ms(ru.ru_stime);
        e->max_rss_bytes = ru.ru_maxrss > 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0; /* KiB */
    }
    if (!s->cg || s->cg_shared)
        return;
    cg_usage u;
    cg_usage_read(s->cg, &u);
    if (u.has_cpu)
        e->cpu_ms = u.cpu_ms;
    if (u.has_mem)
        e->max_rss_bytes = u.max_rss_bytes;
    log_info("step", "used %llu ms of CPU (%s), %llu bytes at most (%s)", (unsigned long long)e->cpu_ms,
             u.has_cpu ? "cgroup" : "rusage", (unsigned long long)e->max_rss_bytes,
             u.has_mem ? "cgroup" : "rusage");
}

/* The verdict, once every task is gone. */
static void step__verdict(step *s)
{
    step_end *e = &s->end;
    uint64_t ooms = s->cg ? cg_oom_kills(s->cg) : 0;
    for (uint32_t t = 0; t < s->started && !e->exit_code; t++) {
        const step_task *k = &s->tasks[t];
        if (k->status == 0)
            continue;
        e->exit_code = k->status;
        uint32_t rank = s->first_rank + t;
        if (k->status > 128)
            snprintf(e->reason, sizeof e->reason, "task %u killed by signal %d", rank, k->status - 128);
        else
            snprintf(e->reason, sizeof e->reason, "task %u exited with status %d", rank, k->status);
    }
    if (e->lost)
        snprintf(e->reason, sizeof e->reason,
                 "the node's system terminated the job (SIGTERM): it is shutting down");
    else if (e->timed_out)
        snprintf(e->reason, sizeof e->reason, "time limit of %llu s reached",
                 (unsigned long long)s->js->time_limit_s);
    else if (e->preempted)
        snprintf(e->reason, sizeof e->reason, "preempted");
    else if (e->cancelled)
        snprintf(e->reason, sizeof e->reason, "cancelled");
    else if (ooms)
        snprintf(e->reason, sizeof e->reason, "out of memory: the --mem limit of %llu MiB was reached",
                 (unsigned long long)(s->js->mem_bytes >> 20));
}

static Jazari__StepSpec *step__read_spec(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, STEP_SPEC);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > STEP_SPEC_MAX) {
        snprintf(err, errlen, "cannot read %s: %s", path, fd < 0 ? strerror(errno) : "bad size");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    uint8_t *data = xcalloc((size_t)st.st_size, 1);
    ssize_t n = read(fd, data, (size_t)st.st_size);
    close(fd);
    Jazari__StepSpec *sp = n == st.st_size ? jazari__step_spec__unpack(NULL, (size_t)n, data) : NULL;
    free(data);
    if (!sp || !sp->job || !sp->job->spec || !sp->node_name || !*sp->node_name) {
        snprintf(err, errlen, "%s does not hold a part's description", path);
        jazari__step_spec__free_unpacked(sp, NULL);
        return NULL;
    }
    return sp;
}

/* The part's host CPUs, in order (for binding each task to its share). */
static void step__cpus(step *s)
{
    s->cpus = xcalloc(CPULIST_MAX + 1, sizeof *s->cpus);
    s->cpu_order = xcalloc(CPULIST_MAX + 1, sizeof *s->cpu_order);
    if (cpulist_parse(s->spec->host_cpus, s->cpus, CPULIST_MAX + 1) <= 0)
        return;
    for (int i = 0; i <= CPULIST_MAX; i++)
        if (s->cpus[i])
            s->cpu_order[s->n_cpus++] = i;
}

/* The job's group: its memory limit, its CPUs, and its GPUs fenced. A
 * daemon that is not root runs jobs unconfined; otherwise a job to be
 * fenced (a node with GPUs, gpu_isolation on) whose group or fence cannot
 * be made does not start (-1, why in s->end.reason): a job must never see
 * another job's GPUs because a rule did not take — whatever it asked for
 * (an unenforceable --mem fails the group). Other jobs run unconfined, with
 * a warning when they asked for a limit. */
static int step__cgroup(step *s)
{
    if (geteuid() != 0)
        return 0;
    char name[96], err[512];
    if (s->jstep) {
        /* A step's tasks join the job's group (its limits and GPU fence),
         * which the job's own part on this node made and will remove. */
        char path[PATH_MAX + 16], line[128] = "";
        /* "NAME VERSION", as step__cgroup of the job's own part wrote it */
        snprintf(path, sizeof path, "%s", s->dir);
        char *dot = strrchr(path, '.');
        if (dot)
            *dot = '\0';
        size_t len = strlen(path);
        snprintf(path + len, sizeof path - len, "/%s", STEP_CGROUP);
        /* The job's own part writes it once its group is made, which may
         * be a moment after the private directory the step waited for: a
         * step that must be fenced waits for it as long (bounded). */
        FILE *f = fopen(path, "r");
        for (int waited = 0; !f && s->spec->gpu_fence && waited < STEP_GROUP_WAIT_MS; waited += 20) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
            nanosleep(&ts, NULL);
            f = fopen(path, "r");
        }
        unsigned long version = 0;
        name[0] = '\0';
        if (f) {
            char *sp = fgets(line, sizeof line, f) ? strchr(line, ' ') : NULL;
            char *end;
            if (sp && sp - line < (ptrdiff_t)sizeof name) {
                version = strtoul(sp + 1, &end, 10);
                if (version <= 2 && (*end == '\n' || *end == '\0'))
                    snprintf(name, sizeof name, "%.*s", (int)(sp - line), line);
            }
            fclose(f);
        }
        if (!f || !name[0]) {
            if (s->spec->gpu_fence) {
                snprintf(s->end.reason, sizeof s->end.reason,
                         "the job's group on %s is not there (%s): the step cannot be fenced to its GPUs",
                         s->spec->node_name, path);
                return -1;
            }
            return 0;
        }
        cg_opts o = {.root = getenv("JAZARI_CGROUP_ROOT"), .version = (int)version, .parent = NULL};
        if (cg_create(&o, name, s->js->mem_bytes, s->spec->host_cpus, s->spec->host_mems, &s->cg, err,
                      sizeof err) != 0) {
            snprintf(s->end.reason, sizeof s->end.reason, "cannot join the job's group %s: %s", name, err);
            return -1;
        }
        s->cg_shared = true;
        return 0;
    }
    /* The supervisor's pid makes it unique on this host: two daemons here
     * (tests, two networks) may have a node of the same name and a job of
     * the same id, and each group's end kills all that is in it. */
    snprintf(name, sizeof name, "job_%llu.%u.%s.%d", (unsigned long long)s->job->id, s->job->attempt,
             s->spec->node_name, (int)getpid());
    if (strlen(name) > 64)
        snprintf(name, sizeof name, "job_%llu.%u.%d", (unsigned long long)s->job->id, s->job->attempt,
                 (int)getpid());
    cg_opts o = {
        .root = getenv("JAZARI_CGROUP_ROOT"), .version = (int)s->spec->cgroup_version, .parent = NULL};
    int rc = cg_create(&o, name, s->js->mem_bytes, s->spec->host_cpus, s->spec->host_mems, &s->cg, err,
                       sizeof err);
    if (rc == 0) {
        log_info("step", "cgroup %s", cg_path(s->cg));
        char line[128];
        snprintf(line, sizeof line, "%s %u", name, s->spec->cgroup_version); /* the version asked */
        if (step__write_file(s->dir, STEP_CGROUP, line) != 0)
            log_warn("step", "cannot record the cgroup in %s: %s", s->dir, strerror(errno));
    } else if (s->js->mem_bytes && !s->spec->gpu_fence) {
        log_warn("step", "the --mem limit is not enforced: %s", err);
    } else {
        log_info("step", "no cgroup: %s", err);
    }
    if (!s->spec->gpu_fence)
        return 0;
    if (rc != 0 || cg_fence_gpus(s->cg, s->spec->gpu_minors, s->spec->n_gpu_minors, err, sizeof err) != 0) {
        snprintf(s->end.reason, sizeof s->end.reason,
                 "GPU isolation cannot be set on %s, so the job was not started: %s (an admin may run this "
                 "node with gpu_isolation = off)",
                 s->spec->node_name, err);
        return -1;
    }
    return 0;
}

/* srun --pty: the terminal of the step's one task, before it starts. 0,
 * or -1 with the reason in s->end. */
static int step__pty(step *s)
{
    s->pty_slave = -1;
    const Jazari__StepRequestSpec *ss = s->jstep ? s->jstep->spec : NULL;
    if (!ss || !ss->pty || s->ntasks != 1 || (ss->output && *ss->output))
        return 0;
    buf path = BUF_INIT;
    const Jazari__StepSpec *sp = s->spec;
    jobdir_step_io(&path, sp->tmp_base, sp->node_name, s->job->id, s->job->attempt, s->jstep->id,
                   s->first_rank, false);
    int rc = spty_open(&s->pty, s->dir, buf_str(&path), (uid_t)s->job->uid, (gid_t)s->job->gid, ss->pty_rows,
                       ss->pty_cols, &s->pty_slave, s->end.reason, sizeof s->end.reason);
    buf_free(&path);
    s->has_pty = rc == 0;
    return rc;
}

/* What this part runs: the job's tasks, its batch script (first node) or
 * nothing (the batch job's other nodes, an allocation's), or a step's tasks here; and with
 * which GPUs. 0, or -1 with the reason in s->end. */
static int step__layout(step *s)
{
    const Jazari__Job *j = s->job;
    const Jazari__JobSpec *js = s->js;
    const Jazari__StepSpec *sp = s->spec;
    const Jazari__JobAlloc *mine = sp->node_rank < j->n_allocs ? j->allocs[sp->node_rank] : NULL;
    uint32_t ngpus = mine ? (uint32_t)mine->n_gpus : 0;
    s->cpus_per_task = js->cpus_per_task ? js->cpus_per_task : 1;
    if (sp->step) {
        for (size_t i = 0; i < j->n_steps && !s->jstep; i++)
            if (j->steps[i]->id + 1 == sp->step)
                s->jstep = j->steps[i];
        const Jazari__JobStep *st = s->jstep;
        if (!st || !st->spec || st->n_ranks == 0) {
            snprintf(s->end.reason, sizeof s->end.reason, "step %u is not in the part's description",
                     sp->step - 1);
            return -1;
        }
        s->nnodes = (uint32_t)st->n_ranks;
        s->node_index = UINT32_MAX;
        for (uint32_t i = 0; i < s->nnodes && s->node_index == UINT32_MAX; i++)
            if (st->ranks[i] == sp->node_rank)
                s->node_index = i;
        if (s->node_index == UINT32_MAX) {
            snprintf(s->end.reason, sizeof s->end.reason, "step %u has no part on %s", st->id, sp->node_name);
            return -1;
        }
        s->world = st->spec->ntasks;
        jobspec_tasks(s->world, s->nnodes, s->node_index, &s->ntasks, &s->first_rank);
        if (st->spec->cpus_per_task)
            s->cpus_per_task = st->spec->cpus_per_task;
        if (st->spec->gpus_none)
            ngpus = 0;
        else if (st->spec->gpus_per_node && st->spec->gpus_per_node < ngpus)
            ngpus = st->spec->gpus_per_node;
    } else if (js->alloc) { /* an allocation: every node only holds it */
        s->hold = true;
        s->node_index = sp->node_rank;
        s->nnodes = (uint32_t)j->n_allocs;
    } else if (js->batch) {
        s->batch = sp->node_rank == 0;
        s->hold = !s->batch;
        s->ntasks = s->batch ? 1 : 0;
        s->world = s->ntasks;
        s->node_index = sp->node_rank;
        s->nnodes = (uint32_t)j->n_allocs;
        /* The script may use every CPU of the job here. */
        s->cpus_per_task = s->n_cpus ? (uint32_t)s->n_cpus : 1;
    } else {
        uint32_t tpn = js->tasks_per_node ? js->tasks_per_node : 1;
        s->ntasks = tpn;
        s->first_rank = sp->node_rank * tpn;
        s->world = (uint32_t)j->n_allocs * tpn;
        s->node_index = sp->node_rank;
        s->nnodes = (uint32_t)j->n_allocs;
    }
    for (uint32_t i = 0; mine && i < ngpus; i++)
        buf_printf(&s->gpus, "%s%u", i ? "," : "", mine->gpus[i]);
    jobdir_path(&s->jobdir, sp->tmp_base, sp->node_name, j->id, j->attempt);
    return 0;
}

int step_main(const char *dir)
{
    log_set_program("jazarid step");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigset_t set;
    step__signal_set(&set);
    sigprocmask(SIG_BLOCK, &set, NULL);

    step s;
    memset(&s, 0, sizeof s);
    s.dir = dir;
    char err[512];
    char pidline[160];
    step_pid_line(getpid(), pidline, sizeof pidline);
    if (step__write_file(dir, STEP_PID, pidline) != 0) {
        log_error("step", "cannot write %s/%s: %s", dir, STEP_PID, strerror(errno));
        return 1;
    }
    if (!(s.spec = step__read_spec(dir, err, sizeof err))) {
        log_error("step", "%s", err);
        s.end.failed_to_start = true;
        s.end.exit_code = 127;
        snprintf(s.end.reason, sizeof s.end.reason, "%s", err);
        return step_end_write(dir, &s.end) == 0 ? 0 : 1;
    }
    s.job = s.spec->job;
    s.js = s.job->spec;
    struct passwd pwbuf, *pw = NULL;
    char pwtext[4096];
    if (getpwuid_r((uid_t)s.job->uid, &pwbuf, pwtext, sizeof pwtext, &pw) != 0)
        pw = NULL;
    step__cpus(&s);
    int laid = step__layout(&s);
    s.tasks = xcalloc(s.ntasks + 1, sizeof *s.tasks);
    /* The job's own part makes its private directory; a step's waits for it
     * (both may start at once on a node) and uses it. */
    if (laid == 0 && !s.jstep &&
        jobdir_make(buf_str(&s.jobdir), (uid_t)s.job->uid, (gid_t)s.job->gid, s.end.reason,
                    sizeof s.end.reason) != 0)
        laid = -1;
    if (laid == 0 && s.jstep &&
        jobdir_wait(buf_str(&s.jobdir), (uid_t)s.job->uid, 10000, s.end.reason, sizeof s.end.reason) != 0)
        laid = -1;
    step__env(&s, pw);
    if (laid == 0)
        log_info("step", "job %llu attempt %u%s%.0u on %s: %u task%s, CPUs %s", (unsigned long long)s.job->id,
                 s.job->attempt, s.jstep ? " step " : "", s.jstep ? s.jstep->id : 0, s.spec->node_name,
                 s.ntasks, s.ntasks == 1 ? "" : "s", s.n_cpus ? s.spec->host_cpus : "unbound");
    if (laid == 0 &&
        step__command(&s, (uid_t)s.job->uid, (gid_t)s.job->gid, s.end.reason, sizeof s.end.reason) == 0 &&
        step__cgroup(&s) == 0 && step__pty(&s) == 0) {
        for (uint32_t t = 0; t < s.ntasks; t++) {
            if (step__start_task(&s, t, pw) != 0) {
                s.end.failed_to_start = true;
                break;
            }
        }
        if (s.has_pty) { /* the task's side only now: its end reads as EIO */
            close(s.pty_slave);
            s.pty_slave = -1;
        }
    } else {
        s.end.failed_to_start = true;
    }
    step__record_tasks(&s);
    if (s.end.failed_to_start) {
        /* All or nothing: the tasks already started go too. */
        log_warn("step", "cannot start: %s", s.end.reason);
        s.end.exit_code = 127;
        step__signal_all(&s, SIGKILL);
        while (s.live > 0) {
            siginfo_t info;
            struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
            sigtimedwait(&set, &info, &ts);
            step__reap(&s);
        }
    } else {
        step__supervise(&s);
        step__verdict(&s);
    }
    if (s.has_pty)
        spty_close(&s.pty, dir);
    /* What the tasks left behind goes with them. */
    for (uint32_t t = 0; t < s.started; t++)
        if (s.tasks[t].pid > 0) /* never kill(0): this supervisor's own group */
            kill(-s.tasks[t].pid, SIGKILL);
    step__usage(&s);
    if (s.cg && s.cg_shared)
        cg_release(s.cg);
    else if (s.cg && cg_destroy(s.cg, err, sizeof err) != 0)
        log_warn("step", "%s", err);
    int rc = step_end_write(dir, &s.end);
    /* The job's private directory goes with its own part, after its end
     * is known (a big TMPDIR must not hold the end back). */
    if (!s.jstep && s.jobdir.len &&
        jobdir_remove(buf_str(&s.jobdir), (uid_t)s.job->uid, (gid_t)s.job->gid, 10000) != 0)
        log_warn("step", "cannot remove %s (left for the system's /tmp cleaning)", buf_str(&s.jobdir));
    if (rc != 0)
        log_error("step", "cannot write %s/%s: %s", dir, STEP_END, strerror(errno));
    log_info("step", "ended: exit code %d%s%s", s.end.exit_code, s.end.reason[0] ? ", " : "", s.end.reason);
    for (size_t i = 0; s.argv && s.argv[i]; i++)
        free(s.argv[i]);
    free(s.argv);
    free(s.tasks);
    free(s.cpus);
    free(s.cpu_order);
    buf_free(&s.envbuf);
    buf_free(&s.gpus);
    buf_free(&s.jobdir);
    jazari__step_spec__free_unpacked(s.spec, NULL);
    return rc == 0 ? 0 : 1;
}

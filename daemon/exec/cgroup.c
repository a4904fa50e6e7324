/* cgroup.c - a control group per job, in cgroup v2 or v1 (see cgroup.h).
 *
 * Every path is built once, in cg_create, so that cg_attach can run between
 * fork and exec. Files are written with one write(2) each, as the kernel
 * takes a value per write. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/xmem.h"

#define CG__PATH 512     /* every path; longer ones are refused */
#define CG__TEXT 4096    /* the most read from a value file (cpuset lists, memory.events) */
#define CG__NAME_MAX 64  /* a group name's length */
#define CG__WAIT_MS 2000 /* how long cg_destroy waits for the group to empty */
#define CG__POLL_MS 10

#define CG__DIRS 4 /* v1: memory, cpuset, devices, cpuacct */

struct cg_job {
    int version; /* 1 or 2 */
    bool fake;   /* not a cgroup file system: plain files, no signals */
    bool mem;    /* the memory controller is in the group */
    int ndirs;   /* v2: 1; v1: memory, cpuset, devices, those sharing a mount once */
    int cs;      /* v1: the index of the cpuset directory */
    int dev;     /* v1: the index of the devices directory; -1 without that hierarchy */
    char dir[CG__DIRS][CG__PATH];
    char procs[CG__DIRS][CG__PATH];
};

__attribute__((format(printf, 3, 4))) static int cg__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "cgroups: ");
    if (n > 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* out = a/b, or -1 (ENAMETOOLONG) when it does not fit. */
static int cg__join(char out[CG__PATH], const char *a, const char *b)
{
    int n = snprintf(out, CG__PATH, "%s/%s", a, b);
    if (n < 0 || n >= CG__PATH) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static bool cg__denied(int e)
{
    return e == EACCES || e == EPERM || e == EROFS;
}

static bool cg__name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CG__NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Whether word is one of the items of s, separated by spaces, commas or lines. */
static bool cg__has_word(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = s; (p = strstr(p, word)) != NULL; p += n)
        if ((p == s || strchr(" ,\n", p[-1])) && (p[n] == '\0' || strchr(" ,\n", p[n])))
            return true;
    return false;
}

/* Reads dir/file into text (CG__TEXT bytes), trailing white space removed. */
static int cg__read(const char *dir, const char *file, char *text)
{
    char path[CG__PATH];
    if (cg__join(path, dir, file) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n = 0;
    while (len < CG__TEXT - 1 && (n = read(fd, text + len, CG__TEXT - 1 - len)) > 0)
        len += (size_t)n;
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    while (len > 0 && strchr(" \n\t", text[len - 1]))
        len--;
    text[len] = '\0';
    return 0;
}

/* Writes value to dir/file in one write. When optional, a missing file is
 * no error. A fake group's files are created. */
static int cg__set(const cg_job *g, const char *dir, const char *file, const char *value, bool optional,
                   char *err, size_t errlen)
{
    char path[CG__PATH];
    if (cg__join(path, dir, file) != 0)
        return cg__fail(err, errlen, "path too long: %s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC | (g->fake ? O_CREAT | O_TRUNC : 0), 0644);
    if (fd < 0 && optional && errno == ENOENT)
        return 0;
    ssize_t w = fd < 0 ? -1 : write(fd, value, strlen(value));
    int e = w == (ssize_t)strlen(value) ? 0 : w < 0 ? errno : EIO;
    if (fd >= 0)
        close(fd);
    if (e == 0)
        return 0;
    cg__fail(err, errlen, "cannot write \"%s\" to %s: %s", value, path, strerror(e));
    errno = e;
    return -1;
}

/* mkdir, an existing directory being fine (not a file such as
 * cgroup.procs); without the right to, cgroups are "not available" (1). */
static int cg__mkdir(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0755) == 0)
        return 0;
    int e = errno;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    cg__fail(err, errlen, "cannot create %s: %s", path, strerror(e));
    return cg__denied(e) ? 1 : -1;
}

static void cg__add_pid(buf *b, long pid)
{
    const pid_t *have = (const pid_t *)(const void *)b->data;
    size_t n = b->len / sizeof(pid_t);
    for (size_t k = 0; k < n; k++)
        if (have[k] == (pid_t)pid)
            return;
    pid_t p = (pid_t)pid;
    buf_append(b, &p, sizeof p);
}

/* The group's processes (of every cgroup.procs), once each, as a pid_t array in b. */
static void cg__pids(const cg_job *g, buf *b)
{
    char chunk[4096];
    for (int d = 0; d < g->ndirs; d++) {
        int fd = open(g->procs[d], O_RDONLY | O_CLOEXEC);
        long pid = 0;
        ssize_t n;
        while (fd >= 0 && (n = read(fd, chunk, sizeof chunk)) > 0)
            for (ssize_t i = 0; i < n; i++) {
                if (chunk[i] >= '0' && chunk[i] <= '9') {
                    pid = pid * 10 + (chunk[i] - '0');
                } else if (pid > 0) {
                    cg__add_pid(b, pid);
                    pid = 0;
                }
            }
        if (pid > 0)
            cg__add_pid(b, pid);
        if (fd >= 0)
            close(fd);
    }
}

/* --- finding the hierarchies ----------------------------------------------------- */

/* The mounts of /proc/self/mountinfo: the first cgroup2 one, the first whose
 * cgroup.controllers has memory, and the v1 memory, cpuset, devices and
 * cpuacct ones. */
static void cg__mounts(char v2any[CG__PATH], char v2mem[CG__PATH], char v1[CG__DIRS][CG__PATH])
{
    static const char *const want[CG__DIRS] = {"memory", "cpuset", "devices", "cpuacct"};
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096], mnt[CG__PATH], type[64], opts[1024], ctl[CG__TEXT];
    while (f && fgets(line, sizeof line, f)) {
        /* id parent maj:min root mount-point options [tags] - type source super-options */
        const char *sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
            sscanf(sep + 3, "%63s %*s %1023s", type, opts) != 2)
            continue;
        if (strcmp(type, "cgroup2") == 0) {
            if (!v2any[0])
                snprintf(v2any, CG__PATH, "%s", mnt);
            if (!v2mem[0] && cg__read(mnt, "cgroup.controllers", ctl) == 0 && cg__has_word(ctl, "memory"))
                snprintf(v2mem, CG__PATH, "%s", mnt);
        } else if (strcmp(type, "cgroup") == 0) {
            for (int i = 0; i < CG__DIRS; i++)
                if (!v1[i][0] && cg__has_word(opts, want[i]))
                    snprintf(v1[i], CG__PATH, "%s", mnt);
        }
    }
    if (f)
        fclose(f);
}

/* v1: the hierarchies' roots in v1 (memory, cpuset, devices, cpuacct;
 * the last two may be "") into base, each mount once; sets ndirs, cs and
 * dev. The job's CPU time is read from cpuacct (cg_usage_read). */
static void cg__v1_bases(cg_job *g, char v1[CG__DIRS][CG__PATH], char base[CG__DIRS][CG__PATH])
{
    int at[CG__DIRS];
    g->ndirs = 0;
    for (int i = 0; i < CG__DIRS; i++) {
        at[i] = -1;
        for (int k = 0; v1[i][0] && k < g->ndirs && at[i] < 0; k++)
            if (strcmp(base[k], v1[i]) == 0)
                at[i] = k;
        if (v1[i][0] && at[i] < 0) {
            snprintf(base[g->ndirs], CG__PATH, "%s", v1[i]);
            at[i] = g->ndirs++;
        }
    }
    g->cs = at[1];
    g->dev = at[2];
}

/* Sets g->version, ndirs (cs, dev) and fake, and the hierarchies' roots in base. */
static int cg__find(const cg_opts *o, cg_job *g, char base[CG__DIRS][CG__PATH], char *err, size_t errlen)
{
    int version = o ? o->version : 0;
    char path[CG__PATH], v1[CG__DIRS][CG__PATH] = {"", "", "", ""};
    struct stat st;
    if (version < 0 || version > 2)
        return cg__fail(err, errlen, "unknown cgroup version %d", version);
    g->dev = -1;
    if (o && o->root) {
        if (version == 0)
            version = cg__join(path, o->root, "cgroup.controllers") == 0 && access(path, F_OK) == 0 ? 2 : 1;
        if ((version == 2 && snprintf(base[0], CG__PATH, "%s", o->root) >= CG__PATH) ||
            (version == 1 && (cg__join(v1[0], o->root, "memory") || cg__join(v1[1], o->root, "cpuset") ||
                              cg__join(v1[2], o->root, "devices") || cg__join(v1[3], o->root, "cpuacct"))))
            return cg__fail(err, errlen, "root path too long: %s", o->root);
        for (int i = 2; version == 1 && i < CG__DIRS; i++)
            if (stat(v1[i], &st) != 0 || !S_ISDIR(st.st_mode))
                v1[i][0] = '\0'; /* a fake root without devices/ or cpuacct/ */
    } else {
        char v2any[CG__PATH] = "", v2mem[CG__PATH] = "";
        cg__mounts(v2any, v2mem, v1);
        if ((version == 0 && v2mem[0]) || (version == 2 && (v2mem[0] || v2any[0]))) {
            version = 2;
            snprintf(base[0], CG__PATH, "%s", v2mem[0] ? v2mem : v2any);
        } else if (version != 2 && v1[0][0] && v1[1][0]) {
            version = 1;
        } else {
            cg__fail(err, errlen, "no cgroup v%s mount in /proc/self/mountinfo",
                     version == 2   ? "2"
                     : version == 1 ? "1 memory and cpuset"
                                    : "2 memory nor v1 memory and cpuset");
            return 1;
        }
    }
    g->version = version;
    g->ndirs = 1;
    if (version == 1)
        cg__v1_bases(g, v1, base);
    if (g->ndirs < 1 || (version == 1 && g->cs < 0))
        return cg__fail(err, errlen, "no cgroup v1 memory and cpuset hierarchies");
    struct statfs sf;
    for (int i = 0; i < g->ndirs; i++)
        if (statfs(base[i], &sf) != 0) {
            int e = errno;
            cg__fail(err, errlen, "cannot use %s: %s", base[i], strerror(e));
            return e == ENOENT || e == EACCES ? 1 : -1;
        }
    g->fake = sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC;
    return 0;
}

/* --- creating ---------------------------------------------------------------------- */

/* A v1 cpuset list: dir/file = value, or when value is empty from/file's
 * (unless keep and dir/file is set already). */
static int cg__cpuset_v1(const cg_job *g, const char *from, const char *dir, const char *file,
                         const char *value, bool keep, char *err, size_t errlen)
{
    char cur[CG__TEXT];
    if (value && *value)
        return cg__set(g, dir, file, value, false, err, errlen);
    if (keep && cg__read(dir, file, cur) == 0 && cur[0])
        return 0;
    if (cg__read(from, file, cur) != 0)
        return cg__fail(err, errlen, "cannot read %s/%s: %s", from, file, strerror(errno));
    return cg__set(g, dir, file, cur[0] ? cur : "\n", false, err, errlen);
}

static int cg__create_v1(cg_job *g, char base[CG__DIRS][CG__PATH], const char *parent, const char *name,
                         uint64_t mem_bytes, const char *cpus, const char *mems, char *err, size_t errlen)
{
    char pdir[CG__DIRS][CG__PATH], limit[32];
    int rc, cs = g->cs;
    for (int i = 0; i < g->ndirs; i++) {
        if (cg__join(pdir[i], base[i], parent) || cg__join(g->dir[i], pdir[i], name) ||
            cg__join(g->procs[i], g->dir[i], "cgroup.procs"))
            return cg__fail(err, errlen, "path too long: %s/%s/%s", base[i], parent, name);
        if ((rc = cg__mkdir(pdir[i], err, errlen)) != 0)
            return rc;
    }
    if (cg__cpuset_v1(g, base[cs], pdir[cs], "cpuset.cpus", NULL, true, err, errlen) ||
        cg__cpuset_v1(g, base[cs], pdir[cs], "cpuset.mems", NULL, true, err, errlen))
        return -1;
    for (int i = 0; i < g->ndirs; i++)
        if ((rc = cg__mkdir(g->dir[i], err, errlen)) != 0)
            return rc;
    g->mem = true;
    snprintf(limit, sizeof limit, "%" PRIu64, mem_bytes);
    if (mem_bytes == 0)
        strcpy(limit, "-1");
    /* memsw >= limit at every step: lift it, set the limit, then no swap. */
    if (cg__set(g, g->dir[0], "memory.memsw.limit_in_bytes", "-1", true, err, errlen) ||
        cg__set(g, g->dir[0], "memory.limit_in_bytes", limit, false, err, errlen) ||
        cg__set(g, g->dir[0], "memory.memsw.limit_in_bytes", limit, true, err, errlen))
        return -1;
    if (cg__cpuset_v1(g, pdir[cs], g->dir[cs], "cpuset.cpus", cpus, false, err, errlen) ||
        cg__cpuset_v1(g, pdir[cs], g->dir[cs], "cpuset.mems", mems, false, err, errlen))
        return -1;
    return 0;
}

/* Enables memory and cpuset, those of ctl (the root's cgroup.controllers),
 * in dir's cgroup.subtree_control where they are not already. */
static int cg__enable(const cg_job *g, const char *dir, const char *ctl, char *err, size_t errlen)
{
    char cur[CG__TEXT], want[32];
    if (cg__read(dir, "cgroup.subtree_control", cur) != 0)
        cur[0] = '\0';
    bool m = cg__has_word(ctl, "memory") && !cg__has_word(cur, "memory");
    bool c = cg__has_word(ctl, "cpuset") && !cg__has_word(cur, "cpuset");
    snprintf(want, sizeof want, "%s%s%s", m ? "+memory" : "", m && c ? " " : "", c ? "+cpuset" : "");
    return want[0] ? cg__set(g, dir, "cgroup.subtree_control", want, false, err, errlen) : 0;
}

static int cg__create_v2(cg_job *g, const char *base, const char *parent, const char *name,
                         uint64_t mem_bytes, const char *cpus, const char *mems, char *err, size_t errlen)
{
    char pdir[CG__PATH], ctl[CG__TEXT], limit[32];
    if (cg__join(pdir, base, parent) || cg__join(g->dir[0], pdir, name) ||
        cg__join(g->procs[0], g->dir[0], "cgroup.procs"))
        return cg__fail(err, errlen, "path too long: %s/%s/%s", base, parent, name);
    if (cg__read(base, "cgroup.controllers", ctl) != 0)
        return cg__fail(err, errlen, "cannot read %s/cgroup.controllers: %s", base, strerror(errno));
    g->mem = cg__has_word(ctl, "memory");
    if (mem_bytes && !g->mem)
        return cg__fail(err, errlen, "no memory controller in %s/cgroup.controllers", base);
    if (cg__enable(g, base, ctl, err, errlen) != 0)
        return cg__denied(errno) ? 1 : -1;
    int rc = cg__mkdir(pdir, err, errlen);
    if (rc != 0)
        return rc;
    if (cg__enable(g, pdir, ctl, err, errlen) != 0)
        return -1;
    if ((rc = cg__mkdir(g->dir[0], err, errlen)) != 0)
        return rc;
    snprintf(limit, sizeof limit, "%" PRIu64, mem_bytes);
    if (mem_bytes == 0)
        strcpy(limit, "max");
    if (g->mem && (cg__set(g, g->dir[0], "memory.max", limit, false, err, errlen) ||
                   cg__set(g, g->dir[0], "memory.swap.max", "0", true, err, errlen)))
        return -1;
    /* Without the cpuset controller the tasks are still pinned (sched_setaffinity, by the step). */
    bool cs = cg__has_word(ctl, "cpuset");
    if (cs && ((cpus && *cpus && cg__set(g, g->dir[0], "cpuset.cpus", cpus, false, err, errlen)) ||
               (mems && *mems && cg__set(g, g->dir[0], "cpuset.mems", mems, false, err, errlen))))
        return -1;
    return 0;
}

/* Removes the job's directories, killing what is in them until wait_ms has
 * passed (a fake group's files are removed instead). */
static int cg__remove(const cg_job *g, int wait_ms, char *err, size_t errlen)
{
    int rc = 0;
    struct timespec t0, now, nap = {0, CG__POLL_MS * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < g->ndirs; i++) {
        for (;;) {
            if (g->fake) {
                DIR *d = opendir(g->dir[i]);
                char path[CG__PATH];
                for (struct dirent *e; d && (e = readdir(d)) != NULL;)
                    if (e->d_type == DT_REG && cg__join(path, g->dir[i], e->d_name) == 0)
                        unlink(path);
                if (d)
                    closedir(d);
            } else {
                cg_signal_all(g, SIGKILL);
            }
            if (rmdir(g->dir[i]) == 0 || errno == ENOENT)
                break;
            int e = errno;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
            if (e != EBUSY || g->fake || ms >= wait_ms) {
                if (rc == 0)
                    rc = cg__fail(err, errlen, "cannot remove %s: %s%s", g->dir[i], strerror(e),
                                  e == EBUSY ? " (processes left)" : "");
                break;
            }
            nanosleep(&nap, NULL);
        }
    }
    return rc;
}

/* --- the interface ------------------------------------------------------------------- */

int cg_create(const cg_opts *o, const char *name, uint64_t mem_bytes, const char *cpus, const char *mems,
              cg_job **out, char *err, size_t errlen)
{
    const char *parent = o && o->parent ? o->parent : "jazari";
    char base[CG__DIRS][CG__PATH] = {"", "", "", ""}, scratch[8];
    *out = NULL;
    if (!cg__name_ok(name) || !cg__name_ok(parent))
        return cg__fail(err, errlen, "invalid group name \"%.80s\" (1 to %d of A-Z a-z 0-9 _ . -)",
                        cg__name_ok(parent) ? name ? name : "(null)" : parent, CG__NAME_MAX);
    cg_job *g = xcalloc(1, sizeof *g);
    int rc = cg__find(o, g, base, err, errlen);
    if (rc == 0 && g->version == 1)
        rc = cg__create_v1(g, base, parent, name, mem_bytes, cpus, mems, err, errlen);
    else if (rc == 0)
        rc = cg__create_v2(g, base[0], parent, name, mem_bytes, cpus, mems, err, errlen);
    if (rc < 0 && g->dir[0][0])
        cg__remove(g, 0, scratch, sizeof scratch); /* err keeps the first reason */
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void cg_release(cg_job *g)
{
    free(g);
}

int cg_attach(const cg_job *g, pid_t pid)
{
    char num[24];
    size_t len = sizeof num;
    unsigned long v = (unsigned long)(pid > 0 ? pid : getpid());
    if (pid < 0) {
        errno = EINVAL;
        return -1;
    }
    num[--len] = '\n';
    do
        num[--len] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (int i = 0; i < g->ndirs; i++) {
        int fd = open(g->procs[i], O_WRONLY | O_CLOEXEC | (g->fake ? O_CREAT | O_APPEND : 0), 0644);
        if (fd < 0)
            return -1;
        ssize_t w = write(fd, num + len, sizeof num - len);
        int e = w < 0 ? errno : EIO;
        close(fd);
        if (w != (ssize_t)(sizeof num - len)) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

int cg_signal_all(const cg_job *g, int sig)
{
    buf pids = BUF_INIT;
    int count = 0;
    if (g->fake)
        return 0;
    cg__pids(g, &pids);
    for (size_t k = 0; k < pids.len / sizeof(pid_t); k++) {
        pid_t pid;
        memcpy(&pid, pids.data + k * sizeof pid, sizeof pid);
        count += kill(pid, sig) == 0;
    }
    buf_free(&pids);
    if (g->version == 2 && sig == SIGKILL) {
        char scratch[8];
        cg__set(g, g->dir[0], "cgroup.kill", "1", true, scratch, sizeof scratch);
    }
    return count;
}

bool cg_empty(const cg_job *g)
{
    buf pids = BUF_INIT;
    cg__pids(g, &pids);
    bool empty = pids.len == 0;
    buf_free(&pids);
    return empty;
}

uint64_t cg_oom_kills(const cg_job *g)
{
    char text[CG__TEXT];
    if (!g->mem || cg__read(g->dir[0], g->version == 2 ? "memory.events" : "memory.oom_control", text) != 0)
        return 0;
    bool under = false;
    for (const char *p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "oom_kill ", 9) == 0)
            return strtoull(p + 9, NULL, 10);
        if (strncmp(p, "under_oom ", 10) == 0)
            under = strtoull(p + 10, NULL, 10) != 0;
    }
    return under ? 1 : 0; /* v1 before Linux 4.13: no counter */
}

/* text[0..len) as a decimal number, at most CG_USAGE_MAX. */
static int cg__number(const char *text, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(text[i] - '0');
        if (v > CG_USAGE_MAX)
            return -1;
    }
    *out = v;
    return 0;
}

int cg_parse_value(const char *text, uint64_t *out)
{
    size_t len = strlen(text);
    while (len > 0 && strchr(" \n\t", text[len - 1]))
        len--;
    return cg__number(text, len, out);
}

int cg_parse_keyed(const char *text, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        size_t line = strcspn(p, "\n");
        if (line > klen && strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return cg__number(p + klen + 1, line - klen - 1, out);
    }
    return -1;
}

void cg_usage_read(const cg_job *g, cg_usage *out)
{
    memset(out, 0, sizeof *out);
    char text[CG__TEXT];
    uint64_t v;
    if (g->version == 2) {
        /* cpu.stat is there in every v2 group, with or without +cpu. */
        if (cg__read(g->dir[0], "cpu.stat", text) == 0 && cg_parse_keyed(text, "usage_usec", &v) == 0) {
            out->cpu_ms = v / 1000;
            out->has_cpu = true;
        }
        if (g->mem && cg__read(g->dir[0], "memory.peak", text) == 0 && cg_parse_value(text, &v) == 0) {
            out->max_rss_bytes = v;
            out->has_mem = true;
        }
        return;
    }
    for (int i = 0; i < g->ndirs && !out->has_cpu; i++)
        if (cg__read(g->dir[i], "cpuacct.usage", text) == 0 && cg_parse_value(text, &v) == 0) {
            out->cpu_ms = v / 1000000;
            out->has_cpu = true;
        }
    if (g->mem && cg__read(g->dir[0], "memory.max_usage_in_bytes", text) == 0 &&
        cg_parse_value(text, &v) == 0) {
        out->max_rss_bytes = v;
        out->has_mem = true;
    }
}

const char *cg_path(const cg_job *g)
{
    return g->dir[0];
}

int cg_destroy(cg_job *g, char *err, size_t errlen)
{
    if (!g)
        return 0;
    int rc = cg__remove(g, CG__WAIT_MS, err, errlen);
    free(g);
    return rc;
}

/* --- GPU fences ------------------------------------------------------------------------ */

/* One instruction (linux/bpf.h's encoding; the kernel's BPF_* macros that
 * build them live in a header that is not exported). */
static struct bpf_insn cg__insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    struct bpf_insn i;
    memset(&i, 0, sizeof i);
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

size_t cg_gpu_prog(const uint32_t *minors, size_t n, struct bpf_insn *out, size_t cap)
{
    size_t m = 0; /* the minors to let through, each once, only GPUs' */
    uint32_t keep[CG_GPU_MINOR_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        bool seen = minors[i] > CG_GPU_MINOR_MAX;
        for (size_t k = 0; k < m && !seen; k++)
            seen = keep[k] == minors[i];
        if (!seen)
            keep[m++] = minors[i];
    }
    size_t len = 11 + m;
    if (!out || cap < len)
        return len;
        /* allow: the last two instructions; each jump counts from the next one. */
#define CG__TO_ALLOW(at) ((int16_t)(len - 2 - (size_t)(at)-1))
    size_t k = 0;
    /* r2 = ctx->access_type & 0xffff (the device type) */
    out[k++] = cg__insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
    out[k++] = cg__insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
    out[k] = cg__insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, CG__TO_ALLOW(k), BPF_DEVCG_DEV_CHAR);
    k++;
    out[k++] = cg__insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 4, 0); /* major */
    out[k] = cg__insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_3, 0, CG__TO_ALLOW(k), CG_NVIDIA_MAJOR);
    k++;
    out[k++] = cg__insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 8, 0); /* minor */
    /* nvidiactl (255) and nvidia-modeset (254): every job's */
    out[k] = cg__insn(BPF_JMP | BPF_JGT | BPF_K, BPF_REG_4, 0, CG__TO_ALLOW(k), CG_GPU_MINOR_MAX);
    k++;
    for (size_t i = 0; i < m; i++, k++)
        out[k] = cg__insn(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_4, 0, CG__TO_ALLOW(k), (int32_t)keep[i]);
    out[k++] = cg__insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0); /* another GPU: refused */
    out[k++] = cg__insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    out[k++] = cg__insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1); /* allow */
    out[k++] = cg__insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
#undef CG__TO_ALLOW
    return k;
}

static bool cg__listed(const uint32_t *minors, size_t n, uint32_t m)
{
    for (size_t i = 0; i < n; i++)
        if (minors[i] == m)
            return true;
    return false;
}

/* v1: a deny rule per GPU minor not the job's, one write each (the kernel
 * takes one rule per write). A fake group gets them as lines of one file. */
static int cg__fence_v1(const cg_job *g, const uint32_t *minors, size_t n, char *err, size_t errlen)
{
    char path[CG__PATH], rule[40];
    if (g->dev < 0)
        return cg__fail(err, errlen, "no v1 devices hierarchy is mounted (mount -t cgroup -o devices)");
    if (cg__join(path, g->dir[g->dev], "devices.deny") != 0)
        return cg__fail(err, errlen, "path too long: %s/devices.deny", g->dir[g->dev]);
    int fd = g->fake ? open(path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0644) : -1;
    if (g->fake && fd < 0)
        return cg__fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
    for (uint32_t m = 0; m <= CG_GPU_MINOR_MAX; m++) {
        if (cg__listed(minors, n, m))
            continue;
        snprintf(rule, sizeof rule, "c %u:%u rwm%s", CG_NVIDIA_MAJOR, m, g->fake ? "\n" : "");
        if (g->fake) {
            if (write(fd, rule, strlen(rule)) != (ssize_t)strlen(rule)) {
                int e = errno;
                close(fd);
                return cg__fail(err, errlen, "cannot write %s: %s", path, strerror(e));
            }
        } else if (cg__set(g, g->dir[g->dev], "devices.deny", rule, false, err, errlen) != 0) {
            return -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

/* v2: a device program attached to the group, beside any the parents have
 * (BPF_F_ALLOW_MULTI: every one must allow). The group holds it; it goes
 * with the group. A fake group gets the minors let through, in a file. */
static int cg__fence_v2(const cg_job *g, const uint32_t *minors, size_t n, char *err, size_t errlen)
{
    if (g->fake) {
        buf b = BUF_INIT;
        for (size_t i = 0; i < n; i++)
            buf_printf(&b, "%s%u", i ? "," : "", minors[i]);
        int rc = cg__set(g, g->dir[0], "jazari.gpu_minors", b.len ? buf_str(&b) : "none", false, err, errlen);
        buf_free(&b);
        return rc;
    }
    struct bpf_insn prog[CG_GPU_MINOR_MAX + 1 + 11];
    size_t len = cg_gpu_prog(minors, n, prog, sizeof prog / sizeof prog[0]);
    static char log[65536]; /* the verifier's words, asked for only when it refuses */
    int pfd = -1, e = 0;
    union bpf_attr a;
    for (int verbose = 0; verbose < 2 && pfd < 0; verbose++) {
        memset(&a, 0, sizeof a);
        a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        a.insns = (uint64_t)(uintptr_t)prog;
        a.insn_cnt = (uint32_t)len;
        a.license = (uint64_t)(uintptr_t) "GPL";
        if (verbose) {
            log[0] = '\0';
            a.log_buf = (uint64_t)(uintptr_t)log;
            a.log_size = sizeof log;
            a.log_level = 1;
        }
        snprintf(a.prog_name, sizeof a.prog_name, "jazari_gpus");
        pfd = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a);
        e = pfd < 0 && !e ? errno : e;
    }
    if (pfd < 0) {
        /* The verifier's verdict: its log's last line but its statistics ("processed N insns"). */
        const char *last = log;
        for (int pass = 0; pass < 2; pass++) {
            size_t end = strlen(log);
            while (end > 0 && log[end - 1] == '\n')
                log[--end] = '\0';
            char *nl = strrchr(log, '\n');
            last = nl ? nl + 1 : log;
            if (pass == 0 && nl && strncmp(last, "processed ", 10) == 0)
                *nl = '\0';
            else
                break;
        }
        return cg__fail(err, errlen, "cannot load the device program: %s%s%.200s", strerror(e),
                        *last ? ": " : "", last);
    }
    int cfd = open(g->dir[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (cfd < 0) {
        rc = cg__fail(err, errlen, "cannot open %s: %s", g->dir[0], strerror(errno));
    } else {
        memset(&a, 0, sizeof a);
        a.target_fd = (uint32_t)cfd;
        a.attach_bpf_fd = (uint32_t)pfd;
        a.attach_type = BPF_CGROUP_DEVICE;
        a.attach_flags = BPF_F_ALLOW_MULTI;
        if (syscall(__NR_bpf, BPF_PROG_ATTACH, &a, sizeof a) != 0)
            rc = cg__fail(err, errlen, "cannot attach the device program to %s: %s", g->dir[0],
                          strerror(errno));
        close(cfd);
    }
    close(pfd); /* the group holds the program now */
    return rc;
}

int cg_fence_gpus(const cg_job *g, const uint32_t *minors, size_t n, char *err, size_t errlen)
{
    return g->version == 1 ? cg__fence_v1(g, minors, n, err, errlen)
                           : cg__fence_v2(g, minors, n, err, errlen);
}

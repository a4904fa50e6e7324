/* jobdir.c - a job's private directory on a node (jobdir.h). */
#define _XOPEN_SOURCE 700
#include "jobdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void jobdir_path(buf *out, const char *base, const char *node, uint64_t id, uint32_t attempt)
{
    buf_reset(out);
    buf_printf(out, "%s/jazari.%s.%" PRIu64 ".%u", base && *base ? base : "/tmp", node, id, attempt);
}

void jobdir_step_io(buf *out, const char *base, const char *node, uint64_t id, uint32_t attempt, uint32_t step,
                    uint32_t task, bool err)
{
    jobdir_path(out, base, node, id, attempt);
    buf_printf(out, "/io/%u.%u.%s", step, task, err ? "err" : "out");
}

/* A directory of uid's at path (not a link), made now or found. */
static int jobdir__dir(const char *path, uid_t uid, bool made, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        snprintf(err, errlen, "cannot make the job's directory %s: %s", path, strerror(errno));
        return -1;
    }
    uid_t want = made ? geteuid() : uid;
    if (!S_ISDIR(st.st_mode) || st.st_uid != want) {
        snprintf(err, errlen, "%s exists and is not the job's directory (not a directory of uid %u): remove it",
                 path, (unsigned)want);
        return -1;
    }
    return 0;
}

int jobdir_make(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    bool root = geteuid() == 0;
    if (mkdir(path, 0700) != 0) {
        if (errno != EEXIST) {
            snprintf(err, errlen, "cannot make the job's directory %s: %s", path, strerror(errno));
            return -1;
        }
        return jobdir__dir(path, root ? uid : geteuid(), false, err, errlen);
    }
    if (jobdir__dir(path, uid, true, err, errlen) != 0)
        return -1;
    const char *subs[] = {"tmp", "io"};
    char sub[4096];
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
        if (mkdir(sub, 0700) != 0 || (root && lchown(sub, uid, gid) != 0)) {
            snprintf(err, errlen, "cannot make %s: %s", sub, strerror(errno));
            return -1;
        }
    }
    if (root && lchown(path, uid, gid) != 0) {
        snprintf(err, errlen, "cannot give %s to uid %u: %s", path, (unsigned)uid, strerror(errno));
        return -1;
    }
    return 0;
}

int jobdir_wait(const char *path, uid_t uid, int wait_ms, char *err, size_t errlen)
{
    char io[4096];
    snprintf(io, sizeof io, "%s/io", path);
    uid_t want = geteuid() == 0 ? uid : geteuid();
    for (int waited = 0;; waited += 10) {
        struct stat st, sti;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == want && lstat(io, &sti) == 0 &&
            S_ISDIR(sti.st_mode))
            return 0;
        if (waited >= wait_ms) {
            snprintf(err, errlen, "the job's directory %s is not there (the job's own part did not make it "
                     "within %d ms: has the job ended?)", path, wait_ms);
            return -1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000L};
        nanosleep(&ts, NULL);
    }
}

static int jobdir__rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

int jobdir_remove(const char *path, uid_t uid, gid_t gid, int wait_ms)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (geteuid() == 0 && uid != 0 && (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0))
            _exit(1);
        /* The user may have left directories they cannot enter: let them. */
        nftw(path, jobdir__rm, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        _exit(lstat(path, &st) == 0 ? 1 : 0);
    }
    for (int waited = 0;; waited += 10) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (waited >= wait_ms)
            return -1; /* it goes on alone */
        struct timespec ts = {0, 10L * 1000000};
        nanosleep(&ts, NULL);
    }
}

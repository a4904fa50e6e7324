/* test_cgroup.c - per-job control groups: the files written in fake v1 and
 * v2 roots (temporary directories), the names refused, and, as root with a
 * writable memory and cpuset hierarchy, real groups: a job's processes
 * confined, listed, killed and an OOM kill counted. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>

#include "../../daemon/exec/cgroup.h"
#include "test.h"

#define MIB ((uint64_t)1024 * 1024)

/* --- helpers ------------------------------------------------------------------ */

static void put(const char *dir, const char *file, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

/* The text of dir/file without its trailing newline (static), or NULL. */
static const char *get(const char *dir, const char *file)
{
    static char text[4096];
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    while (n > 0 && text[n - 1] == '\n')
        n--;
    text[n] = '\0';
    return text;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether the number n is a line of text. */
static bool has_line(const char *text, long n)
{
    char want[32];
    int len = snprintf(want, sizeof want, "%ld", n);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, want, (size_t)len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            return true;
    return false;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *fake_root(char dir[64])
{
    snprintf(dir, 64, "/tmp/jazari-test-cg-XXXXXX");
    return mkdtemp(dir);
}

/* A fake v1 root's memory and cpuset hierarchies: CPUs 0-7, mems. */
static void fake_v1(const char *root, const char *mems)
{
    char d[1024];
    snprintf(d, sizeof d, "%s/memory", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cpuset", root);
    mkdir(d, 0755);
    put(d, "cpuset.cpus", "0-7\n");
    put(d, "cpuset.mems", mems);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits (at most 2 s) until the group holds n processes (signal 0 counts). */
static bool wait_count(const cg_job *g, int n)
{
    struct timespec t0, nap = {0, 5 * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (cg_signal_all(g, 0) != n) {
        if (ms_since(&t0) > 2000)
            return false;
        nanosleep(&nap, NULL);
    }
    return true;
}

/* --- fake roots ------------------------------------------------------------------ */

TEST(cgroup_fake_v1)
{
    char root[64], d[1024], err[256] = "";
    REQUIRE(fake_root(root));
    fake_v1(root, "0-1\n");

    cg_opts o = {.root = root, .version = 1, .parent = "jz"};
    cg_job *g = NULL;
    int rc = cg_create(&o, "job_12_0", 64 * MIB, "2-3", NULL, &g, err, sizeof err);
    CHECK_EQ_STR(err, "");
    REQUIRE(rc == 0 && g != NULL);

    char mem[1024], cs[1024];
    snprintf(mem, sizeof mem, "%s/memory/jz/job_12_0", root);
    snprintf(cs, sizeof cs, "%s/cpuset/jz/job_12_0", root);
    CHECK_EQ_STR(cg_path(g), mem);
    CHECK_EQ_STR(get(mem, "memory.limit_in_bytes"), "67108864");
    CHECK_EQ_STR(get(mem, "memory.memsw.limit_in_bytes"), "67108864");
    snprintf(d, sizeof d, "%s/cpuset/jz", root); /* the parent gets the root's */
    CHECK_EQ_STR(get(d, "cpuset.cpus"), "0-7");
    CHECK_EQ_STR(get(d, "cpuset.mems"), "0-1");
    CHECK_EQ_STR(get(cs, "cpuset.cpus"), "2-3");
    CHECK_EQ_STR(get(cs, "cpuset.mems"), "0-1"); /* inherited */

    CHECK_EQ_INT(cg_attach(g, 0), 0);
    CHECK_EQ_INT(cg_attach(g, 4242), 0);
    CHECK(has_line(get(mem, "cgroup.procs"), getpid()));
    CHECK(has_line(get(cs, "cgroup.procs"), 4242));
    CHECK(!cg_empty(g));
    CHECK_EQ_INT(cg_attach(g, -5), -1);
    CHECK_EQ_INT(cg_signal_all(g, SIGKILL), 0); /* never in a fake root */

    CHECK_EQ_INT(cg_oom_kills(g), 0); /* no file */
    put(mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
    CHECK_EQ_INT(cg_oom_kills(g), 3);
    put(mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 1\n"); /* before Linux 4.13 */
    CHECK_EQ_INT(cg_oom_kills(g), 1);

    /* A group left behind is reused, with the new limits. */
    cg_job *again = NULL;
    CHECK_EQ_INT(cg_create(&o, "job_12_0", 0, "", "1", &again, err, sizeof err), 0);
    CHECK_EQ_STR(get(mem, "memory.limit_in_bytes"), "-1");
    CHECK_EQ_STR(get(cs, "cpuset.cpus"), "0-7");
    CHECK_EQ_STR(get(cs, "cpuset.mems"), "1");

    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    CHECK(!exists(mem));
    CHECK(!exists(cs));
    CHECK(exists(d));                                    /* the parent stays */
    CHECK_EQ_INT(cg_destroy(again, err, sizeof err), 0); /* already gone: fine */
    CHECK_EQ_INT(cg_destroy(NULL, err, sizeof err), 0);
    rm_tree(root);
}

TEST(cgroup_fake_v2)
{
    char root[64], d[1024], err[256] = "";
    REQUIRE(fake_root(root));
    put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
    put(root, "cgroup.subtree_control", "cpu\n");

    cg_opts o = {.root = root, .version = 0, .parent = NULL}; /* found: v2, "jazari" */
    cg_job *g = NULL;
    int rc = cg_create(&o, "job_7", 1024 * MIB, "0-3", "0", &g, err, sizeof err);
    CHECK_EQ_STR(err, "");
    REQUIRE(rc == 0 && g != NULL);
    snprintf(d, sizeof d, "%s/jazari/job_7", root);
    CHECK_EQ_STR(cg_path(g), d);
    CHECK_EQ_STR(get(root, "cgroup.subtree_control"), "+memory +cpuset");
    snprintf(d, sizeof d, "%s/jazari", root);
    CHECK_EQ_STR(get(d, "cgroup.subtree_control"), "+memory +cpuset");
    CHECK_EQ_STR(get(cg_path(g), "memory.max"), "1073741824");
    CHECK_EQ_STR(get(cg_path(g), "memory.swap.max"), "0");
    CHECK_EQ_STR(get(cg_path(g), "cpuset.cpus"), "0-3");
    CHECK_EQ_STR(get(cg_path(g), "cpuset.mems"), "0");

    CHECK_EQ_INT(cg_attach(g, 1234), 0);
    CHECK_EQ_STR(get(cg_path(g), "cgroup.procs"), "1234");
    put(cg_path(g), "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n");
    CHECK_EQ_INT(cg_oom_kills(g), 2);

    /* Controllers already enabled are not written again; no cpus: inherited. */
    put(root, "cgroup.subtree_control", "cpuset cpu memory\n");
    cg_job *h = NULL;
    CHECK_EQ_INT(cg_create(&o, "job_8", 0, NULL, NULL, &h, err, sizeof err), 0);
    CHECK_EQ_STR(get(root, "cgroup.subtree_control"), "cpuset cpu memory");
    REQUIRE(h != NULL);
    CHECK_EQ_STR(get(cg_path(h), "memory.max"), "max");
    CHECK(get(cg_path(h), "cpuset.cpus") == NULL);
    CHECK(cg_empty(h));

    /* A name that is one of the parent's files. */
    cg_job *f = NULL;
    CHECK_EQ_INT(cg_create(&o, "cgroup.subtree_control", 0, NULL, NULL, &f, err, sizeof err), -1);
    CHECK(f == NULL && strstr(err, "jazari/cgroup.subtree_control: File exists"));

    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    CHECK_EQ_INT(cg_destroy(h, err, sizeof err), 0);
    snprintf(d, sizeof d, "%s/jazari/job_7", root);
    CHECK(!exists(d));
    snprintf(d, sizeof d, "%s/jazari/job_8", root);
    CHECK(!exists(d));

    /* A memory limit without the memory controller is refused. */
    put(root, "cgroup.controllers", "cpu io\n");
    CHECK_EQ_INT(cg_create(&o, "job_9", MIB, NULL, NULL, &h, err, sizeof err), -1);
    CHECK(h == NULL);
    CHECK(strstr(err, "no memory controller") && strstr(err, root));
    rm_tree(root);
}

TEST(cgroup_refusals)
{
    char root[64], err[256], big[700];
    REQUIRE(fake_root(root));
    put(root, "cgroup.controllers", "cpuset memory\n");
    cg_opts o = {.root = root, .version = 2, .parent = "jz"};
    const char *bad[] = {
        "",      ".",     "..",          "a/b",
        "job 1", "job\n", "caf\xc3\xa9", "0123456789012345678901234567890123456789012345678901234567890123x"};
    cg_job *g = (cg_job *)&o; /* must be reset to NULL */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ_INT(cg_create(&o, bad[i], 0, NULL, NULL, &g, err, sizeof err), -1);
        CHECK(g == NULL);
        CHECK(strstr(err, "cgroups: invalid group name") != NULL);
    }
    CHECK_EQ_INT(cg_create(&o, NULL, 0, NULL, NULL, &g, err, sizeof err), -1);
    cg_opts bad_parent = {.root = root, .version = 2, .parent = "../etc"};
    CHECK_EQ_INT(cg_create(&bad_parent, "job", 0, NULL, NULL, &g, err, sizeof err), -1);
    CHECK(strstr(err, "../etc") != NULL);

    /* 64 characters are fine. */
    const char *longest = "0123456789012345678901234567890123456789012345678901234567890123";
    CHECK_EQ_INT(cg_create(&o, longest, 0, NULL, NULL, &g, err, sizeof err), 0);
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);

    /* Paths that do not fit, versions that do not exist, roots that are not there. */
    memset(big, 'x', sizeof big - 1);
    big[0] = '/';
    big[sizeof big - 1] = '\0';
    cg_opts too_long = {.root = big, .version = 2, .parent = "jz"};
    CHECK_EQ_INT(cg_create(&too_long, "job", 0, NULL, NULL, &g, err, sizeof err), -1);
    CHECK(strstr(err, "too long") != NULL);
    cg_opts v3 = {.root = root, .version = 3};
    CHECK_EQ_INT(cg_create(&v3, "job", 0, NULL, NULL, &g, err, sizeof err), -1);
    CHECK(strstr(err, "version 3") != NULL);
    cg_opts missing = {.root = "/nonexistent/jazari-cg", .version = 1};
    CHECK_EQ_INT(cg_create(&missing, "job", 0, NULL, NULL, &g, err, sizeof err), 1);
    CHECK(g == NULL);
    CHECK(strstr(err, "/nonexistent/jazari-cg/memory") && strstr(err, "No such file"));

    /* v1 without the root's cpuset lists to copy. */
    char d[1024];
    cg_opts v1 = {.root = root, .version = 1, .parent = "jz"};
    snprintf(d, sizeof d, "%s/memory", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cpuset", root);
    mkdir(d, 0755);
    CHECK_EQ_INT(cg_create(&v1, "job", 0, NULL, NULL, &g, err, sizeof err), -1);
    CHECK(strstr(err, "cpuset/cpuset.cpus") && strstr(err, "No such file"));

    /* A write that fails (here a directory in the way): the job's directories go. */
    put(d, "cpuset.cpus", "0-3\n");
    put(d, "cpuset.mems", "0\n");
    snprintf(d, sizeof d, "%s/cpuset/jz", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cpuset/jz/job", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cpuset/jz/job/cpuset.cpus", root);
    mkdir(d, 0755);
    CHECK_EQ_INT(cg_create(&v1, "job", 0, NULL, NULL, &g, err, sizeof err), -1);
    CHECK(strstr(err, d) && strstr(err, "Is a directory"));
    snprintf(d, sizeof d, "%s/memory/jz/job", root);
    CHECK(!exists(d));
    rm_tree(root);
}

/* --- the real hierarchy (as root) ----------------------------------------------- */

/* A real group, or NULL (and a note) where cgroups cannot be used here. */
static cg_job *real_group(int version, const char *name, uint64_t mem, const char *cpus)
{
    char err[512] = "";
    cg_opts o = {.root = NULL, .version = version, .parent = "jazari-test"};
    cg_job *g = NULL;
    if (geteuid() != 0) {
        printf("     skip %s: not root\n", name);
        return NULL;
    }
    int rc = cg_create(&o, name, mem, cpus, NULL, &g, err, sizeof err);
    if (rc == 1)
        printf("     skip %s: %s\n", name, err);
    else if (rc != 0)
        test_fail(__FILE__, __LINE__, "cg_create: %s", err);
    return g;
}

/* Removes <parent> (jazari-test) in every hierarchy, after the last group. */
static void remove_parent(const char *job_path)
{
    char p[1024], *slash;
    snprintf(p, sizeof p, "%s", job_path);
    if ((slash = strrchr(p, '/')) == NULL)
        return;
    *slash = '\0';
    rmdir(p);
    char *m = strstr(p, "/memory/");
    if (m) { /* v1: .../memory/jazari-test -> .../cpuset/, .../devices/ */
        char q[1100];
        snprintf(q, sizeof q, "%.*s/cpuset/%s", (int)(m - p), p, m + 8);
        rmdir(q);
        snprintf(q, sizeof q, "%.*s/devices/%s", (int)(m - p), p, m + 8);
        rmdir(q);
    }
}

/* A job's processes in a real group (version 0: the one found), listed,
 * confined when mem and cpus are set, killed, the group removed. */
static void real_kill(int version, uint64_t mem, const char *cpus)
{
    char name[64], path[1024], err[512] = "";
    snprintf(name, sizeof name, "test_v%d_%ld", version, (long)getpid());
    cg_job *g = real_group(version, name, mem, cpus);
    if (!g)
        return;
    snprintf(path, sizeof path, "%s", cg_path(g));
    if (mem) {
        const char *limit = get(path, "memory.limit_in_bytes");
        CHECK_EQ_STR(limit ? limit : get(path, "memory.max"), "67108864");
    }

    /* A child in the group, and a grandchild that leaves its process group. */
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (cg_attach(g, 0) != 0)
            _exit(3);
        if (fork() == 0) {
            setsid();
            for (;;)
                pause();
        }
        for (;;)
            pause();
    }
    CHECK(wait_count(g, 2));
    CHECK(has_line(get(path, "cgroup.procs"), child));
    if (cpus) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%ld", (long)child);
        const char *st = get(proc, "status");
        CHECK(st && strstr(st, "Cpus_allowed_list:\t0\n"));
    }
    CHECK(!cg_empty(g));

    CHECK_EQ_INT(cg_signal_all(g, SIGKILL), 2);
    int ws = 0;
    CHECK_EQ_INT(waitpid(child, &ws, 0), child);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    CHECK(wait_count(g, 0)); /* the grandchild too */
    CHECK(cg_empty(g));
    CHECK_EQ_INT(cg_oom_kills(g), 0);

    /* cg_destroy kills what is still there. */
    pid_t again = fork();
    REQUIRE(again >= 0);
    if (again == 0) {
        if (cg_attach(g, 0) != 0)
            _exit(3);
        for (;;)
            pause();
    }
    CHECK(wait_count(g, 1));
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(waitpid(again, &ws, 0), again);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    CHECK(!exists(path));
    remove_parent(path);
}

TEST(cgroup_real_kill)
{
    real_kill(0, 64 * MIB, "0");
}

/* Any cgroup2 mount, even one without controllers (a v1 host's "unified"):
 * the group still finds and kills every process. */
TEST(cgroup_real_v2_kill)
{
    real_kill(2, 0, NULL);
}

/* Not root: "not available" (1), not an error. */
TEST(cgroup_real_not_root)
{
    if (geteuid() != 0) {
        char err[512] = "";
        cg_job *g = NULL;
        cg_opts o = {.parent = "jazari-test"};
        int rc = cg_create(&o, "test_user", 0, NULL, NULL, &g, err, sizeof err);
        CHECK(rc == 1 || (rc == 0 && cg_destroy(g, err, sizeof err) == 0)); /* or delegated to us */
        return;
    }
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char err[512] = "";
        cg_job *g = NULL;
        cg_opts o = {.parent = "jazari-test"};
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        int rc = cg_create(&o, "test_nobody", 64 * MIB, NULL, NULL, &g, err, sizeof err);
        if (rc == 1 && g == NULL && strstr(err, "cgroups: "))
            _exit(0);
        printf("    as nobody: %d, %s\n", rc, err);
        fflush(stdout);
        _exit(1);
    }
    int ws = 0;
    CHECK_EQ_INT(waitpid(child, &ws, 0), child);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

TEST(cgroup_real_oom)
{
    char name[64], path[1024], err[512] = "";
    snprintf(name, sizeof name, "test_oom_%ld", (long)getpid());
    cg_job *g = real_group(0, name, 64 * MIB, NULL);
    if (!g)
        return;
    snprintf(path, sizeof path, "%s", cg_path(g));
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (cg_attach(g, 0) != 0)
            _exit(3);
        size_t len = (size_t)(256 * MIB);
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            _exit(4);
        for (size_t i = 0; i < len; i += 4096)
            p[i] = 1;
        _exit(0);
    }
    int ws = 0;
    CHECK_EQ_INT(waitpid(child, &ws, 0), child);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    const char *events = get(path, "memory.oom_control");
    if (!events)
        events = get(path, "memory.events");
    if (events && strstr(events, "oom_kill "))
        CHECK(cg_oom_kills(g) >= 1);
    else
        printf("     note: this kernel counts no OOM kills; the child died by SIGKILL\n");
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    CHECK(!exists(path));
    remove_parent(path);
}

/* --- GPU fences ------------------------------------------------------------------ */

/* How many lines of text there are, and whether line is one of them. */
static int count_lines(const char *text, const char *line, bool *has)
{
    int n = 0;
    size_t len = strlen(line);
    *has = false;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        n++;
        if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            *has = true;
    }
    return n;
}

TEST(cgroup_fake_gpu_fence)
{
    char root[64], d[1024], err[256] = "";
    bool has;
    const uint32_t mine[] = {1, 3};
    REQUIRE(fake_root(root));
    fake_v1(root, "0\n");

    /* v1 without a devices hierarchy: the fence cannot be set, and says so. */
    cg_opts o = {.root = root, .version = 1, .parent = "jz"};
    cg_job *g = NULL;
    REQUIRE(cg_create(&o, "job_1", 0, NULL, NULL, &g, err, sizeof err) == 0);
    CHECK_EQ_INT(cg_fence_gpus(g, mine, 2, err, sizeof err), -1);
    CHECK(strstr(err, "no v1 devices hierarchy") != NULL);
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);

    /* With one: every other GPU minor denied, one rule each; the job joins it too. */
    snprintf(d, sizeof d, "%s/devices", root);
    mkdir(d, 0755);
    REQUIRE(cg_create(&o, "job_2", 0, NULL, NULL, &g, err, sizeof err) == 0);
    CHECK_EQ_INT(cg_fence_gpus(g, mine, 2, err, sizeof err), 0);
    snprintf(d, sizeof d, "%s/devices/jz/job_2", root);
    const char *deny = get(d, "devices.deny");
    REQUIRE(deny != NULL);
    CHECK_EQ_INT(count_lines(deny, "c 195:0 rwm", &has), CG_GPU_MINOR_MAX + 1 - 2);
    CHECK(has);
    count_lines(deny, "c 195:253 rwm", &has);
    CHECK(has);
    count_lines(deny, "c 195:1 rwm", &has);
    CHECK(!has);
    count_lines(deny, "c 195:255 rwm", &has); /* nvidiactl: every job's */
    CHECK(!has);
    CHECK_EQ_INT(cg_attach(g, 4321), 0);
    CHECK_EQ_STR(get(d, "cgroup.procs"), "4321");
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    CHECK(!exists(d));
    rm_tree(root);

    /* v2: the minors let through, for the program. */
    REQUIRE(fake_root(root));
    put(root, "cgroup.controllers", "cpuset memory\n");
    cg_opts o2 = {.root = root, .version = 0, .parent = NULL};
    REQUIRE(cg_create(&o2, "job_3", 0, NULL, NULL, &g, err, sizeof err) == 0);
    CHECK_EQ_INT(cg_fence_gpus(g, mine, 2, err, sizeof err), 0);
    CHECK_EQ_STR(get(cg_path(g), "jazari.gpu_minors"), "1,3");
    CHECK_EQ_INT(cg_fence_gpus(g, NULL, 0, err, sizeof err), 0);
    CHECK_EQ_STR(get(cg_path(g), "jazari.gpu_minors"), "none");
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    rm_tree(root);
}

/* The device program: its checks in order, each jump landing on "allow". */
TEST(cgroup_gpu_prog)
{
    struct bpf_insn p[300];
    const uint32_t minors[] = {5, 2, 5, 254, 7};  /* 5 twice; 254 is everyone's anyway */
    size_t len = cg_gpu_prog(minors, 5, NULL, 0); /* its length alone */
    CHECK_EQ_INT(len, 11 + 3);
    CHECK_EQ_INT(cg_gpu_prog(minors, 5, p, 4), len); /* too small: nothing written */
    REQUIRE(cg_gpu_prog(minors, 5, p, 300) == len);
    size_t allow = len - 2;
    CHECK_EQ_INT(p[allow].code, BPF_ALU64 | BPF_MOV | BPF_K);
    CHECK_EQ_INT(p[allow].imm, 1);
    CHECK_EQ_INT(p[allow + 1].code, BPF_JMP | BPF_EXIT);
    CHECK_EQ_INT(p[allow - 2].imm, 0); /* the fall-through: refused */
    CHECK_EQ_INT(p[2].imm, BPF_DEVCG_DEV_CHAR);
    CHECK_EQ_INT(p[4].imm, CG_NVIDIA_MAJOR);
    CHECK_EQ_INT(p[6].code, BPF_JMP | BPF_JGT | BPF_K);
    CHECK_EQ_INT(p[6].imm, CG_GPU_MINOR_MAX);
    const int32_t want[] = {5, 2, 7};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(p[7 + i].code, BPF_JMP | BPF_JEQ | BPF_K);
        CHECK_EQ_INT(p[7 + i].imm, want[i]);
    }
    for (size_t i = 0; i < len; i++)
        if (BPF_CLASS(p[i].code) == BPF_JMP && BPF_OP(p[i].code) != BPF_EXIT)
            CHECK_EQ_INT((long)i + 1 + p[i].off, (long)allow);
    CHECK_EQ_INT(cg_gpu_prog(NULL, 0, p, 300), 11); /* no GPU: every GPU minor refused */
}

/* A real group fenced to GPU 1 (version 0: the one found): 195:0 refused
 * (EPERM), 195:1 and nvidiactl let through to the driver, which is not
 * here (ENXIO); outside the group 195:0 reaches the driver too. */
static void real_fence(int version)
{
    char name[64], dir[64], path[3][1100], err[512] = "";
    static const unsigned minors[3] = {0, 1, 255};
    static const int want[3] = {EPERM, ENXIO, ENXIO};
    snprintf(dir, sizeof dir, "/tmp/jazari-test-dev-XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/nvidia%u", dir, minors[i]);
        if (mknod(path[i], S_IFCHR | 0666, makedev(CG_NVIDIA_MAJOR, minors[i])) != 0) {
            printf("     skip the GPU fence (v%d): cannot make device nodes: %s\n", version, strerror(errno));
            rm_tree(dir);
            return;
        }
    }
    snprintf(name, sizeof name, "test_fence_v%d_%ld", version, (long)getpid());
    cg_job *g = real_group(version, name, 0, NULL);
    if (!g) {
        rm_tree(dir);
        return;
    }
    uint32_t mine[65] = {1}; /* and 100..163: a long program, as on a big node */
    for (uint32_t i = 1; i < 65; i++)
        mine[i] = 99 + i;
    if (cg_fence_gpus(g, mine, 65, err, sizeof err) != 0) {
        printf("     skip the GPU fence (v%d): %s\n", version, err);
    } else {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            int got[3] = {0, 0, 0};
            if (cg_attach(g, 0) != 0)
                _exit(3);
            for (int i = 0; i < 3; i++) {
                int fd = open(path[i], O_RDWR);
                got[i] = fd < 0 ? errno : 0;
            }
            _exit(write(fds[1], got, sizeof got) == sizeof got ? 0 : 4);
        }
        int got[3] = {-1, -1, -1}, ws = 0;
        close(fds[1]);
        CHECK_EQ_INT(read(fds[0], got, sizeof got), (long)sizeof got);
        close(fds[0]);
        CHECK_EQ_INT(waitpid(child, &ws, 0), child);
        CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        for (int i = 0; i < 3; i++)
            CHECK_EQ_INT(got[i], want[i]);
        CHECK(open(path[0], O_RDWR) < 0 && errno == ENXIO); /* outside: no fence */
    }
    char path0[1024];
    snprintf(path0, sizeof path0, "%s", cg_path(g));
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    remove_parent(path0);
    rm_tree(dir);
}

TEST(cgroup_real_gpu_fence)
{
    real_fence(0);
}

/* The device program, in a cgroup2 group (on a v1 host, the "unified" mount). */
TEST(cgroup_real_gpu_fence_v2)
{
    real_fence(2);
}

/* --- usage: what a group used ---------------------------------------------------- */

TEST(cgroup_usage_parse)
{
    uint64_t v = 7;
    const char *stat = "usage_usec 1534000\nuser_usec 1500000\nsystem_usec 34000\nnr_periods 0\n";
    CHECK_EQ_INT(cg_parse_keyed(stat, "usage_usec", &v), 0);
    CHECK_EQ_INT(v, 1534000);
    CHECK_EQ_INT(cg_parse_keyed(stat, "system_usec", &v), 0);
    CHECK_EQ_INT(v, 34000);
    CHECK_EQ_INT(cg_parse_keyed(stat, "usage", &v), -1);        /* a prefix of a key is not the key */
    CHECK_EQ_INT(cg_parse_keyed(stat, "nr_throttled", &v), -1); /* missing */
    CHECK_EQ_INT(cg_parse_keyed("", "usage_usec", &v), -1);
    CHECK_EQ_INT(cg_parse_keyed("usage_usec \n", "usage_usec", &v), -1);   /* no number */
    CHECK_EQ_INT(cg_parse_keyed("usage_usec -5\n", "usage_usec", &v), -1); /* not a count */
    CHECK_EQ_INT(cg_parse_keyed("usage_usec 12x\n", "usage_usec", &v), -1);
    CHECK_EQ_INT(cg_parse_keyed("usage_usec 99999999999999999999999\n", "usage_usec", &v), -1); /* too long */
    CHECK_EQ_INT(cg_parse_keyed("usage_usec 9007199254740993\n", "usage_usec", &v), -1);        /* > 2^53 */
    CHECK_EQ_INT(cg_parse_keyed("usage_usec 9007199254740992", "usage_usec", &v), 0);           /* 2^53 */
    CHECK_EQ_INT(v, CG_USAGE_MAX);
    CHECK_EQ_INT(cg_parse_value("104857600\n", &v), 0);
    CHECK_EQ_INT(v, 104857600);
    CHECK_EQ_INT(cg_parse_value("0", &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(cg_parse_value("max\n", &v), -1);
    CHECK_EQ_INT(cg_parse_value("", &v), -1);
    CHECK_EQ_INT(cg_parse_value("12 34", &v), -1);
    CHECK_EQ_INT(cg_parse_value("18446744073709551615", &v), -1); /* 2^64-1: garbage, not usage */
}

TEST(cgroup_usage_fake_v2)
{
    char root[64], err[256] = "";
    REQUIRE(fake_root(root));
    put(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
    cg_opts o = {.root = root, .version = 2, .parent = NULL};
    cg_job *g = NULL;
    REQUIRE(cg_create(&o, "job_9", 0, NULL, NULL, &g, err, sizeof err) == 0 && g);
    cg_usage u;
    cg_usage_read(g, &u); /* no file yet: unknown */
    CHECK(!u.has_cpu && !u.has_mem);
    CHECK_EQ_INT(u.cpu_ms, 0);
    put(cg_path(g), "cpu.stat", "usage_usec 1534999\nuser_usec 1500000\nsystem_usec 34999\n");
    put(cg_path(g), "memory.peak", "104861696\n");
    cg_usage_read(g, &u);
    CHECK(u.has_cpu && u.has_mem);
    CHECK_EQ_INT(u.cpu_ms, 1534);
    CHECK_EQ_INT(u.max_rss_bytes, 104861696);
    /* Before Linux 5.19 there is no memory.peak; garbage is not believed. */
    char peak[1024];
    snprintf(peak, sizeof peak, "%s/memory.peak", cg_path(g));
    CHECK_EQ_INT(unlink(peak), 0);
    put(cg_path(g), "cpu.stat", "usage_usec garbage\n");
    cg_usage_read(g, &u);
    CHECK(!u.has_cpu && !u.has_mem);
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    rm_tree(root);
}

TEST(cgroup_usage_fake_v1)
{
    char root[64], err[256] = "", d[1024];
    REQUIRE(fake_root(root));
    fake_v1(root, "0\n");
    cg_opts o = {.root = root, .version = 1, .parent = "jz"};
    cg_job *g = NULL;
    REQUIRE(cg_create(&o, "job_10", 0, NULL, NULL, &g, err, sizeof err) == 0 && g);
    put(cg_path(g), "memory.max_usage_in_bytes", "209715200\n");
    cg_usage u;
    cg_usage_read(g, &u); /* no cpuacct hierarchy here: the CPU time is unknown */
    CHECK(!u.has_cpu && u.has_mem);
    CHECK_EQ_INT(u.max_rss_bytes, 209715200);
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);

    /* With a cpuacct hierarchy, the group has a directory there too. */
    snprintf(d, sizeof d, "%s/cpuacct", root);
    REQUIRE(mkdir(d, 0755) == 0);
    REQUIRE(cg_create(&o, "job_10", 0, NULL, NULL, &g, err, sizeof err) == 0 && g);
    snprintf(d, sizeof d, "%s/cpuacct/jz/job_10", root);
    CHECK(exists(d));
    CHECK_EQ_INT(cg_attach(g, 4243), 0);
    CHECK(has_line(get(d, "cgroup.procs"), 4243));
    put(cg_path(g), "memory.max_usage_in_bytes", "209715200\n");
    put(d, "cpuacct.usage", "2500999999\n");
    cg_usage_read(g, &u);
    CHECK(u.has_cpu && u.has_mem);
    CHECK_EQ_INT(u.cpu_ms, 2500);
    put(cg_path(g), "memory.max_usage_in_bytes", "-1\n");
    cg_usage_read(g, &u);
    CHECK(u.has_cpu && !u.has_mem);
    CHECK_EQ_INT(cg_destroy(g, err, sizeof err), 0);
    CHECK(!exists(d));
    rm_tree(root);
}

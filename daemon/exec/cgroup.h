/* cgroup.h - a control group per job: a memory limit and a cpuset for its
 * tasks, every process of the job found and killed (also those that left its
 * process group), its OOM kills counted, the group removed at the end.
 *
 * Both hierarchies are handled, found in /proc/self/mountinfo:
 *   v2: one unified mount (cgroup.controllers lists memory): the group is
 *       <mount>/<parent>/<name>; +memory +cpuset are enabled in the
 *       cgroup.subtree_control of the root and of <parent> (which must then
 *       hold no process of its own).
 *   v1: a mount per controller: <memory mount>/<parent>/<name> and
 *       <cpuset mount>/<parent>/<name> (one directory if they share a mount),
 *       and in the devices and cpuacct hierarchies where they are mounted.
 * <parent> is relative to the root of the hierarchy, one path component.
 * v2 is preferred when its mount has the memory controller. Asking for
 * version 2 takes any cgroup2 mount, even one without controllers (a v1
 * host's "unified"): processes are still grouped and killed, but a memory
 * limit is refused and cpus/mems are not written (the tasks are pinned to
 * their CPUs by the step all the same).
 *
 * Used by the job supervisor, a plain process: every call blocks (cg_destroy
 * for at most about 2 s) and none is thread-safe on the same group.
 *
 * For tests, a root directory that is not a cgroup file system (a "fake
 * root") is laid out as a mount: files are then created when written,
 * processes are never signalled, and cg_destroy removes the files before the
 * directories. */
#ifndef JZ_CGROUP_H
#define JZ_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct cg_job cg_job; /* one job's group; freed by cg_destroy */

typedef struct cg_opts {
    /* NULL: the system's cgroup mounts. Else a directory used as the mount:
     * the unified one (v2), or the parent of memory/ and cpuset/ (v1). */
    const char *root;
    int version;        /* 0: found (with root: v2 if root/cgroup.controllers exists), 1 or 2 */
    const char *parent; /* NULL: "jazari" */
} cg_opts;

/* Creates <parent>/<name> (and <parent> when missing) and puts the limits in
 * it. A group of that name left by a crashed run is reused. name: 1 to 64 of
 * [A-Za-z0-9_.-], not "." or "..". mem_bytes: 0 for no limit; swap is never
 * allowed (memory.swap.max 0, memory.memsw.limit_in_bytes where it exists).
 * cpus, mems: list format ("0-3,8"); NULL or "" for the parent's (v1 copies
 * them, as a v1 cpuset must have both before a task may join).
 *
 * Returns 0 and the group in *out (the caller owns it: cg_destroy).
 * Returns 1 when cgroups are not available here (no memory hierarchy, or not
 * allowed to create the directories, e.g. not root): *out is NULL and err
 * says why, and the caller may go on without confinement.
 * Returns -1 on any other failure, with *out NULL and a line in err naming the
 * path and the system's reason; a job directory made by this call is removed. */
int cg_create(const cg_opts *o, const char *name, uint64_t mem_bytes, const char *cpus, const char *mems,
              cg_job **out, char *err, size_t errlen);

/* Moves pid (0: the caller) into the group, in every hierarchy. Async-signal-
 * safe (open, write, close on paths built by cg_create), for a forked child
 * before exec. Returns 0, or -1 with errno set. */
int cg_attach(const cg_job *g, pid_t pid);

/* Sends sig to every process of the group; returns how many were signalled
 * (0: none left; sig 0 only counts them). In v2, SIGKILL also writes cgroup.kill where it exists, which
 * catches processes forked meanwhile. */
int cg_signal_all(const cg_job *g, int sig);

/* Whether no process is left in the group (in any hierarchy). */
bool cg_empty(const cg_job *g);

/* How many processes the kernel's OOM killer killed in the group: v2
 * memory.events "oom_kill"; v1 memory.oom_control "oom_kill" (Linux 4.13+),
 * on older kernels 1 while "under_oom" is set, else 0 (memory.failcnt is not
 * used: it grows whenever reclaim hits the limit, with no kill). Read it
 * before cg_destroy. */
uint64_t cg_oom_kills(const cg_job *g);

/* What a group's processes used, read before cg_destroy. */
typedef struct cg_usage {
    uint64_t cpu_ms;        /* CPU time, user + system */
    uint64_t max_rss_bytes; /* the group's peak memory (page cache included, as the kernel counts it) */
    bool has_cpu, has_mem;  /* which of the two the kernel told */
} cg_usage;

/* The largest value believed from a kernel file: 2^53 (CPU microseconds:
 * 285 years; bytes: 8 PiB). Anything above is garbage, not usage. */
#define CG_USAGE_MAX (1ull << 53)

/* Reads g's usage into out: v2 cpu.stat "usage_usec" and memory.peak
 * (Linux 5.19 on); v1 cpuacct.usage (nanoseconds, where the cpuacct
 * hierarchy is mounted) and memory.max_usage_in_bytes. What is missing or does not parse stays
 * unknown (has_cpu, has_mem false): the caller falls back on getrusage. */
void cg_usage_read(const cg_job *g, cg_usage *out);
/* The parsers, for the tests: the value of the line "key N" of text (a
 * flat-keyed file such as cpu.stat), or text as one number (a single-value
 * file; "max" is not a number). Return 0 and *out, or -1 when it is
 * missing, not a decimal number or above CG_USAGE_MAX. */
int cg_parse_keyed(const char *text, const char *key, uint64_t *out);
int cg_parse_value(const char *text, uint64_t *out);

/* GPU fences: a job opens only its own GPUs. NVIDIA's GPUs are character
 * devices 195:N (/dev/nvidiaN, N up to 253); 254 (nvidia-modeset) and 255
 * (nvidiactl) every job needs, as it needs nvidia-uvm (another major).
 * cg_fence_gpus lets the group's processes open 195:N only for N in minors
 * (n may be 0: no GPU), refusing the others with EPERM; call it before the
 * first process joins. v1: "c 195:N rwm" written to devices.deny for every
 * other N (needs the devices hierarchy); v2: a BPF_PROG_TYPE_CGROUP_DEVICE
 * program (cg_gpu_prog) attached beside any its parents have. A fake group
 * gets the rules in files (v1 devices.deny, one per line; v2
 * jazari.gpu_minors). Returns 0, or -1 with a line in err. */
#define CG_NVIDIA_MAJOR 195u
#define CG_GPU_MINOR_MAX 253u
int cg_fence_gpus(const cg_job *g, const uint32_t *minors, size_t n, char *err, size_t errlen);

/* The device program: char 195:N refused unless N is in minors or above
 * CG_GPU_MINOR_MAX, everything else allowed. Writes it to out when it fits
 * in cap instructions; returns its length either way. */
struct bpf_insn;
size_t cg_gpu_prog(const uint32_t *minors, size_t n, struct bpf_insn *out, size_t cap);

/* The group's directory (v1: the memory one), e.g. for logs. */
const char *cg_path(const cg_job *g);

/* Kills what is left (SIGKILL, again until the group is empty, for at most
 * about 2 s), removes the job's directories (never <parent>) and frees g,
 * even on failure. Returns 0, or -1 with a line in err. NULL g: 0. */
int cg_destroy(cg_job *g, char *err, size_t errlen);
/* Frees g and leaves the group as it is (a step's part joined its job's,
 * which the job's own part removes). NULL g: nothing. */
void cg_release(cg_job *g);

#endif

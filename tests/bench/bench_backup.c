/* bench_backup.c - what `jz admin backup` costs the leader: a state of
 * 100,000 jobs (half pending, half ended, with a realistic command and
 * environment each). The leader forks an encoder (backup.c): its loop
 * stands still for the fork alone; the encoder's fsm_snapshot +
 * bkfile_encode is how long jz waits for its first chunk. Then the file is
 * checked (bkfile_decode: jz admin backup --verify and --restore) and
 * loaded (fsm_restore: --restore and every controller's start). Each
 * against the reference measured in the same run: the plain snapshot
 * libraft takes of the same state every snapshot_threshold entries, on
 * the leader's loop. Median of 5 runs, with the spread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/bkfile.h"
#include "../../common/clock.h"
#include "../../daemon/raft/fsm.h"

#define JOBS 100000
#define BATCH 500
#define RUNS 5
#define T0 1767225600000ll

static void apply(fsm *f, int64_t t, Jazari__Command **cs, size_t n)
{
    buf b = BUF_INIT;
    codec_entry_encode(CODEC_FORMAT, t, cs, n, &b);
    char err[200];
    if (fsm_apply(f, b.data, b.len, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "bench-backup: %s\n", err);
        exit(1);
    }
    buf_free(&b);
}

static char *argv_job[] = {"python3",      "train.py", "--epochs", "90",
                           "--batch-size", "256",      "--data",   "/datasets/imagenet"};
static char *env_job[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/u", "OMP_NUM_THREADS=8",
                          "WANDB_PROJECT=vision"};

static void submit(fsm *f, size_t n)
{
    Jazari__JobSpec spec[BATCH];
    Jazari__Job job[BATCH], *jp[BATCH];
    static char users[40][8];
    for (int i = 0; i < 40; i++)
        snprintf(users[i], sizeof users[i], "u%d", i);
    for (size_t i = 0; i < n; i++) {
        jazari__job_spec__init(&spec[i]);
        spec[i].argv = argv_job;
        spec[i].n_argv = sizeof argv_job / sizeof *argv_job;
        spec[i].env = env_job;
        spec[i].n_env = sizeof env_job / sizeof *env_job;
        spec[i].workdir = "/home/u/projects/vision";
        spec[i].gpus_per_node = 1;
        spec[i].time_limit_s = 3600;
        spec[i].name = "train-resnet";
        jazari__job__init(&job[i]);
        job[i].spec = &spec[i];
        job[i].user = users[i % 40];
        jp[i] = &job[i];
    }
    Jazari__SubmitCmd sc = JAZARI__SUBMIT_CMD__INIT;
    sc.jobs = jp;
    sc.n_jobs = n;
    Jazari__Command c = JAZARI__COMMAND__INIT, *cp = &c;
    c.cmd_case = JAZARI__COMMAND__CMD_SUBMIT;
    c.submit = &sc;
    apply(f, T0, &cp, 1);
}

/* Ends (CANCELLED, never started) jobs first..first+n-1. */
static void cancel(fsm *f, uint64_t first, size_t n)
{
    Jazari__Command cmd[BATCH], *cp[BATCH];
    Jazari__EndCmd ec[BATCH];
    for (size_t i = 0; i < n; i++) {
        jazari__command__init(&cmd[i]);
        jazari__end_cmd__init(&ec[i]);
        ec[i].id = first + i;
        ec[i].state = JAZARI__JOB_STATE__JOB_CANCELLED;
        cmd[i].cmd_case = JAZARI__COMMAND__CMD_END;
        cmd[i].end = &ec[i];
        cp[i] = &cmd[i];
    }
    apply(f, T0 + 1000, cp, n);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of RUNS times, and the spread (max - min) into *spread. */
static double median(double *t, double *spread)
{
    qsort(t, RUNS, sizeof *t, cmp);
    *spread = t[RUNS - 1] - t[0];
    return t[RUNS / 2];
}

int main(void)
{
    fsm f;
    fsm_init(&f);
    for (size_t k = 0; k < JOBS; k += BATCH) {
        uint64_t first = f.next_job_id;
        submit(&f, BATCH);
        if ((k / BATCH) % 2)
            cancel(&f, first, BATCH);
    }
    double snap_ms[RUNS], enc_ms[RUNS], dec_ms[RUNS], res_ms[RUNS], fork_ms[RUNS];
    size_t bytes = 0;
    for (int r = 0; r < RUNS; r++) {
        int64_t t0 = clock_mono_ms();
        buf s = BUF_INIT;
        fsm_snapshot(&f, &s);
        int64_t t1 = clock_mono_ms();
        buf_free(&s);
        buf file = BUF_INIT, snap = BUF_INIT;
        int64_t t2 = clock_mono_ms();
        fsm_snapshot(&f, &snap);
        Jazari__BackupHead h = JAZARI__BACKUP_HEAD__INIT;
        h.snapshot_format = CODEC_FORMAT;
        h.jobs = f.n_jobs;
        bkfile_encode(&h, snap.data, snap.len, &file);
        int64_t t3 = clock_mono_ms();
        buf_free(&snap);
        bkfile_view v;
        char err[300];
        if (bkfile_decode(file.data, file.len, CODEC_FORMAT, &v, err, sizeof err) != 0) {
            fprintf(stderr, "bench-backup: %s\n", err);
            return 1;
        }
        int64_t t4 = clock_mono_ms();
        fsm g;
        fsm_init(&g);
        if (fsm_restore(&g, v.snap, v.snap_len, err, sizeof err) != 0 || g.n_jobs != f.n_jobs) {
            fprintf(stderr, "bench-backup: the state does not come back: %s\n", err);
            return 1;
        }
        int64_t t5 = clock_mono_ms();
        fsm_free(&g);
        bkfile_view_free(&v);
        bytes = file.len;
        buf_free(&file);
        /* The leader's stall: a fork of this process, which holds the state. */
        int64_t t6 = clock_mono_ms();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        int64_t t7 = clock_mono_ms();
        int st;
        if (pid > 0)
            waitpid(pid, &st, 0);
        fork_ms[r] = (double)(t7 - t6);
        snap_ms[r] = (double)(t1 - t0);
        enc_ms[r] = (double)(t3 - t2);
        dec_ms[r] = (double)(t4 - t3);
        res_ms[r] = (double)(t5 - t4);
    }
    double ss, es, ds, rs, fs;
    double sm = median(snap_ms, &ss), em = median(enc_ms, &es), dm = median(dec_ms, &ds),
           rm = median(res_ms, &rs), fm = median(fork_ms, &fs);
    double ref = sm > 0 ? sm : 1;
    printf("backup of %llu jobs (%.1f MB): the leader's loop stalls %.0f ms (spread %.0f, the fork of its "
           "encoder) = %.3fx its own snapshot of the same state (%.0f ms, spread %.0f); the encoder takes %.0f "
           "ms (spread %.0f) = %.2fx; checked (--verify) in %.0f ms = %.2fx, loaded (--restore) in %.0f ms = "
           "%.2fx\n",
           (unsigned long long)f.n_jobs, (double)bytes / 1e6, fm, fs, fm / ref, sm, ss, em, es, em / ref, dm,
           dm / ref, rm, rm / ref);
    fsm_free(&f);
    return 0;
}

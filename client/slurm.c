/* slurm.c - the Slurm front ends' dispatch (on argv[0]) and the small
 * ones: srun (jz run), sbatch (jz submit), scancel (jz cancel). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hostlist.h"
#include "slurm.h"

/* --- shared ------------------------------------------------------------------------------------ */

void slurm_hostlist(buf *b, const char *const *names, size_t n)
{
    hostlist_compress(names, n, true, b);
}

void slurm_job_nodes(buf *b, const Jazari__Job *job, const char *none)
{
    if (!job->n_allocs) {
        buf_puts(b, none);
        return;
    }
    const char **names = calloc(job->n_allocs, sizeof *names);
    if (!names)
        abort();
    for (size_t k = 0; k < job->n_allocs; k++)
        names[k] = job->allocs[k]->node;
    slurm_hostlist(b, names, job->n_allocs);
    free(names);
}

void slurm_duration(buf *b, uint64_t s, bool unlimited_zero)
{
    if (!s && unlimited_zero) {
        buf_puts(b, "UNLIMITED");
        return;
    }
    unsigned long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, x = s % 60;
    if (d)
        buf_printf(b, "%llu-%02llu:%02llu:%02llu", d, h, m, x);
    else
        buf_printf(b, "%02llu:%02llu:%02llu", h, m, x);
}

void slurm_time(buf *b, int64_t ms, const char *none)
{
    if (ms <= 0) {
        buf_puts(b, none);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char s[32];
    localtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_puts(b, s);
}

uint64_t slurm_job_cpus(const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    uint32_t cpt = s && s->cpus_per_task ? s->cpus_per_task : 1;
    uint32_t nodes = job->n_allocs ? (uint32_t)job->n_allocs : s && s->nodes ? s->nodes : 1;
    uint32_t tasks = s && s->ntasks ? s->ntasks : nodes * (s && s->tasks_per_node ? s->tasks_per_node : 1);
    return (uint64_t)tasks * cpt;
}

/* --- srun ------------------------------------------------------------------------------------------ */

/* srun's options onto jz run's: the command and its own options follow. */
static int slurm_srun(cli *c, int argc, char **argv)
{
    enum {
        O_NTPN = 256,
        O_GPN,
        O_GPT,
        O_MEM,
        O_JOBID,
        O_EXPORT,
        O_OVERLAP,
        O_PTY,
        O_EXCL,
        O_IGNORE,
        O_IGNORE_ARG
    };
    static const struct option longs[] = {
        {"nodes", required_argument, NULL, 'N'},
        {"ntasks", required_argument, NULL, 'n'},
        {"cpus-per-task", required_argument, NULL, 'c'},
        {"job-name", required_argument, NULL, 'J'},
        {"output", required_argument, NULL, 'o'},
        {"error", required_argument, NULL, 'e'},
        {"relative", required_argument, NULL, 'r'},
        {"label", no_argument, NULL, 'l'},
        {"unbuffered", no_argument, NULL, 'u'},
        {"ntasks-per-node", required_argument, NULL, O_NTPN},
        {"gpus-per-node", required_argument, NULL, O_GPN},
        {"jobid", required_argument, NULL, O_JOBID},
        {"export", required_argument, NULL, O_EXPORT},
        {"overlap", no_argument, NULL, O_OVERLAP},
        {"pty", no_argument, NULL, O_PTY},
        /* outside a job: the allocation's */
        {"time", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"account", required_argument, NULL, 'A'},
        {"gpus", required_argument, NULL, 'G'},
        {"gpus-per-task", required_argument, NULL, O_GPT},
        {"qos", required_argument, NULL, 'q'},
        {"mem", required_argument, NULL, O_MEM},
        {"constraint", required_argument, NULL, 'C'},
        {"exclusive", no_argument, NULL, O_EXCL},
        /* placement hints that change nothing here */
        {"cpu-bind", required_argument, NULL, O_IGNORE_ARG},
        {"mpi", required_argument, NULL, O_IGNORE_ARG},
        {"exact", no_argument, NULL, O_IGNORE},
        {"kill-on-bad-exit", optional_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    static char *args[4200];
    static char words[64][300];
    int n = 0, nw = 0;
    int opt;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "+N:n:c:J:o:e:r:luK::t:p:A:G:q:C:", longs, NULL)) != -1) {
        const char *name = NULL;
        switch (opt) {
        case 'N':
            name = "nodes";
            break;
        case 'n':
            name = "ntasks";
            break;
        case 'c':
            name = "cpus-per-task";
            break;
        case 'J':
            name = "job-name";
            break;
        case 'o':
            name = "output";
            break;
        case 'e':
            name = "error";
            break;
        case 'r':
            name = "relative";
            break;
        case O_NTPN:
            name = "ntasks-per-node";
            break;
        case O_GPN:
            name = "gpus-per-node";
            break;
        case O_JOBID:
            name = "jobid";
            break;
        case O_EXPORT:
            name = "export";
            break;
        case 't':
            name = "time";
            break;
        case 'p':
            name = "partition";
            break;
        case 'A':
            name = "account";
            break;
        case 'G':
            name = "gpus";
            break;
        case O_GPT:
            name = "gpus-per-task";
            break;
        case 'q':
            name = "qos";
            break;
        case O_MEM:
            name = "mem";
            break;
        case 'C':
            name = "constraint";
            break;
        case O_PTY:
            args[n++] = "--pty";
            continue;
        case O_EXCL:
            args[n++] = "--exclusive";
            continue;
        case 'l':
            args[n++] = "--label";
            continue;
        case 'u':
            args[n++] = "--unbuffered";
            continue;
        case O_OVERLAP:
            args[n++] = "--overlap";
            continue;
        case O_IGNORE:
        case O_IGNORE_ARG:
        case 'K':
            continue;
        default:
            return CLI_USAGE; /* getopt said what */
        }
        if (nw == 64 || n > 200) {
            cli_error(c, "too many options");
            return CLI_USAGE;
        }
        snprintf(words[nw], sizeof words[nw], "--%s=%s", name, optarg);
        args[n++] = words[nw++];
    }
    if (optind < argc && strcmp(argv[optind], "--") == 0)
        optind++;
    args[n++] = "--";
    for (int i = optind; i < argc && n < 4199; i++)
        args[n++] = argv[i];
    return cmd_run(c, n, args);
}

/* --- scancel ---------------------------------------------------------------------------------------- */

static int slurm_scancel(cli *c, int argc, char **argv)
{
    enum { O_ME = 256 };
    static const struct option longs[] = {
        {"user", required_argument, NULL, 'u'},    {"state", required_argument, NULL, 't'},
        {"name", required_argument, NULL, 'n'},    {"jobname", required_argument, NULL, 'n'},
        {"account", required_argument, NULL, 'A'}, {"partition", required_argument, NULL, 'p'},
        {"signal", required_argument, NULL, 's'},  {"quiet", no_argument, NULL, 'q'},
        {"me", no_argument, NULL, O_ME},           {NULL, 0, NULL, 0},
    };
    static char *args[1100];
    static char words[64][300];
    int n = 0, nw = 0, opt;
    while ((opt = getopt_long(argc, argv, "u:t:n:A:p:s:q", longs, NULL)) != -1) {
        const char *name = NULL;
        switch (opt) {
        case 'u':
            name = "user";
            break;
        case 't':
            name = "state";
            break;
        case 'n':
            name = "name";
            break;
        case 'A':
            name = "account";
            break;
        case 'p':
            name = "partition";
            break;
        case 'q':
            continue; /* we say nothing on success anyway */
        case O_ME:
            args[n++] = "--me";
            continue;
        case 's':
            cli_error(
                c,
                "--signal=%.20s: sending a signal to a job is not supported here; scancel without -s ends "
                "it (its processes get TERM, then KILL)",
                optarg);
            return CLI_REFUSED;
        default:
            return CLI_USAGE;
        }
        if (nw == 64) {
            cli_error(c, "too many options");
            return CLI_USAGE;
        }
        snprintf(words[nw], sizeof words[nw], "--%s=%s", name, optarg);
        args[n++] = words[nw++];
    }
    for (int i = optind; i < argc && n < 1090; i++)
        args[n++] = argv[i];
    if (n == 0) {
        cli_error(c, "No job identification provided");
        return CLI_USAGE;
    }
    return cmd_cancel(c, n, args);
}

/* --- the table ---------------------------------------------------------------------------------------- */

static int slurm_sbatch(cli *c, int argc, char **argv)
{
    return cmd_submit(c, argc - 1, argv + 1); /* c->slurm: sbatch's output */
}

static int slurm_salloc(cli *c, int argc, char **argv)
{
    return cmd_alloc(c, argc - 1, argv + 1); /* the command's own status */
}

static int slurm_sattach(cli *c, int argc, char **argv)
{
    return cmd_attach(c, argc - 1, argv + 1);
}

static const struct {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    bool own_status;   /* exits with what it ran, not 0 or 1 */
    const char *usage; /* for --help */
} slurm_cmds[] = {
    {"srun", slurm_srun, true,
     "[OPTIONS] CMD [ARGS...]: a step of the job we are in, else an allocation of its own "
     "(jz run)"},
    {"salloc", slurm_salloc, true, "[OPTIONS] [CMD [ARGS...]]: an allocation, CMD run here in it (jz alloc)"},
    {"sattach", slurm_sattach, true, "JOB.STEP: a running step's output (jz attach)"},
    {"sbatch", slurm_sbatch, false, "[OPTIONS] [SCRIPT [ARGS...]] | --wrap CMD: a batch job (jz submit)"},
    {"squeue", slurm_squeue, false,
     "[-h] [-o FORMAT] [-u USER] [--me] [-j JOBS] [-t STATES] [-p PART] [--start] "
     "(jz queue)"},
    {"scancel", slurm_scancel, false, "[JOB[.STEP]...] [-u USER] [-t STATE] [-n NAME] [--me] (jz cancel)"},
    {"sacct", slurm_sacct, false,
     "[-j JOBS] [-u USER] [-S START] [-E END] [-s STATES] [-X] [-P] [-n] "
     "[-o FIELDS]: jobs the queue still holds"},
    {"sinfo", slurm_sinfo, false,
     "[-N] [-h] [-o FORMAT] [-p PART] [-s] [-l]: partitions and nodes (jz nodes)"},
    {"scontrol", slurm_scontrol, false,
     "show job|node|partition|hostnames|hostlist, hold, release, requeue, "
     "requeuehold, update JobId=N KEY=VALUE..."},
};

int slurm_main(const char *base, int argc, char **argv, bool *handled)
{
    *handled = false;
    for (size_t i = 0; i < sizeof slurm_cmds / sizeof *slurm_cmds; i++) {
        if (strcmp(base, slurm_cmds[i].name) != 0)
            continue;
        *handled = true;
        if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "--usage") == 0)) {
            printf("Usage: %s %s\nJazari's %s, with Slurm's options and output formats; what each supports: "
                   "docs/researcher.md (Coming from Slurm).\n",
                   slurm_cmds[i].name, slurm_cmds[i].usage, slurm_cmds[i].name);
            return 0;
        }
        cli c = {0};
        c.command = slurm_cmds[i].name;
        c.slurm = true;
        c.before_dashdash = -1;
        argv[0] = (char *)slurm_cmds[i].name; /* getopt's messages: "squeue: ..." */
        int rc = slurm_cmds[i].run(&c, argc, argv);
        if (slurm_cmds[i].own_status)
            return rc; /* the step's, the command's */
        return rc == CLI_OK ? 0 : 1;
    }
    return 0;
}

/* main.c - jz, the Jazari client: finds the command and runs it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "slurm.h"

static const cli_command commands[] = {
    {"submit", cmd_submit, "[OPTIONS] -- CMD [ARGS...] | SCRIPT", "queue a job; prints its id"},
    {"run", cmd_run, "[-N NODES] [-n TASKS] [-c CPUS] [-t TIME] [--pty] CMD [ARGS...]",
     "(srun) CMD as a step of the job we are in (else of an allocation of its own); --pty: a terminal"},
    {"alloc", cmd_alloc, "[sbatch options] [CMD [ARGS...]]",
     "(salloc) an allocation; runs CMD (else $SHELL) here in it, srun inside runs steps on it"},
    {"attach", cmd_attach, "JOB[.STEP] [--label]",
     "(sattach) a running step's output, all tasks, from the start until it ends"},
    {"queue", cmd_queue,
     "[--all] [--me] [-u USER] [--state S] [--name N] [--account A] [-j JOBS] [-p PART] [--format F] "
     "[--start]",
     "pending and running jobs (--all: finished ones too), filtered; --format as squeue -o; --start: when "
     "pending jobs are expected to start"},
    {"show", cmd_show, "JOB", "one job in full (JOB: an id, or ARRAYID_INDEX), with why it waits"},
    {"cancel", cmd_cancel, "[JOB...|JOB.STEP] [--me] [-u USER] [--state S] [--name N]",
     "cancel jobs (an array's id: all its tasks; a running job's processes are killed), or one step"},
    {"release", cmd_release, "JOB...", "let held jobs start (submitted with --hold, or jz hold)"},
    {"hold", cmd_hold, "JOB...", "keep pending jobs from starting until jz release"},
    {"requeue", cmd_requeue, "JOB... [--hold]",
     "run a running or ended job again as a new attempt (a running one is stopped first); --hold: held"},
    {"update", cmd_update, "JOB [--time T] [--qos Q] [--partition P] [--nodes N] ...",
     "change a pending job's request (checked as a submit), or shorten a running job's --time"},
    {"logs", cmd_logs, "JOB [-f|--follow]", "a job's output, from every node and task (-f: as it grows)"},
    {"wait", cmd_wait, "JOB [--timeout S]",
     "wait until the job ends; exit with its exit code (1 if it did not complete)"},
    {"status", cmd_status, "", "the network: controllers, leader, term, nodes up"},
    {"history", cmd_history, "[--user U] [--account A] [--since T] [--until T] [--state S] [--csv]",
     "finished jobs, kept after the queue forgets them: times, exit, GPUs, CPU and memory used, cost"},
    {"eff", cmd_eff, "JOB",
     "(seff) a finished job's CPU and memory efficiency, GPU utilisation, energy, cost"},
    {"usage", cmd_usage, "[--account A] [--by user|account|model|site|day] [--since T] [--until T] [--csv]",
     "jobs, GPU- and CPU-hours and cost, summed by user, account, GPU model, site or day"},
    {"grant", cmd_grant, "ACCOUNT --gpu-hours N [--from T] [--until T]",
     "(admin) give an account GPU-hours for a period (-N: take some back)"},
    {"balance", cmd_balance, "[ACCOUNT]", "GPU-hours granted, used, held by running jobs and remaining"},
    {"invoice", cmd_invoice, "ACCOUNT --month YYYY-MM [--csv|--html]",
     "a month's bill: GPU-hours by model, CPU-hours, reservations, total (the same every time)"},
    {"shares", cmd_shares, "", "fair share: each institute, project and user's shares, usage, factor"},
    {"reserve", cmd_reserve, "NAME --gpus N|--nodes N ...",
     "(admin) book GPUs or nodes for a time window for an account or users"},
    {"reservations", cmd_reservations, "", "advance reservations: whose, when, which nodes"},
    {"unreserve", cmd_unreserve, "NAME", "(admin) delete a reservation"},
    {"nodes", cmd_nodes, "",
     "list the nodes: state, idle/mixed/allocated, GPUs free/total, GPU model, CPUs, memory"},
    {"node", cmd_node, "NAME | check NAME | revoke NAME",
     "one node in full, with its topology; (admin) check: run its GPU burn-in; revoke: remove it for good"},
    {"drain", cmd_drain, "NODE [--gpu N] --reason TEXT [--now]",
     "(admin) take a node (or one GPU) out of service: its jobs finish (--now: requeued), nothing new "
     "starts"},
    {"resume", cmd_resume, "NODE [--gpu N]",
     "(admin) return a drained node (and its GPUs), or one GPU, to service"},
    {"events", cmd_events, "[-f] [--since WHEN] [--node NAME] [--max N]",
     "(admin) what happened: nodes down and up, drains, GPU health, requeues, preemptions, leader changes"},
    {"token", cmd_token, "create|list|revoke ...",
     "(admin) join tokens (--join) and people's credentials (--user NAME --role ROLE)"},
    {"admin", cmd_admin, "backup FILE [--force] | backup --verify FILE",
     "(admin) a backup of the network's state from the leader, written atomically; --verify: check one"},
    {"audit", cmd_audit, "[--since WHEN] [--user NAME]",
     "(admin) who changed what, from where and when: submits, cancels, reservations, credentials"},
    {"web", cmd_web, "[--ttl 12h]",
     "the dashboard's address, with a session token for you (print it, open it)"},
    {"ping", cmd_ping, "", "check that the local jazarid answers, and which one it is"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: jz COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char left[40];
        snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].args);
        fprintf(f, "  %-44s %s\n", left, commands[i].summary);
    }
    fprintf(
        f, "\noptions every command takes:\n"
           "  --json               one JSON document on stdout\n"
           "  --socket PATH        the daemon's socket (else $JAZARI_SOCKET, else the default)\n"
           "  --credentials FILE   from another machine: a credentials file from an admin\n"
           "                       (jz token create --user); else $JAZARI_CREDENTIALS\n"
           "  --server HOST:PORT   the controller to reach with them (else $JAZARI_SERVER, else the file's)\n"
           "  --timeout SECONDS    how long to wait for the daemon [30]\n"
           "  --help               this help\n"
           "\nsubmit options (also as #JZ or #SBATCH lines in a script):\n"
           "  --name NAME  --nodes N  --tasks-per-node T  --gpus-per-node G  --cpus-per-task C\n"
           "  --mem SIZE  --time LIMIT (90, 1:30:00, 2-00:00:00)  --gpu-model MODEL  --site SITE\n"
           "  --data NAME (a dataset of the policy: the sites that hold it are preferred)  --span-sites\n"
           "  --output PATH  --error PATH (%%j job, %%n node rank, %%N node, %%t task)  --workdir DIR\n"
           "  --env KEY=VALUE (repeatable)  --hold  --signal [SIG][@SECS]  --no-requeue\n"
           "  --after-ok JOB[:JOB]  --after-any JOB[:JOB]  --dependency afterok:JOB,afterany:JOB\n"
           "  --array 0-99%%8 (a job per index, at most 8 at once; %%A %%a in --output)\n"
           "  --account INSTITUTE/PROJECT  --qos NAME  --reservation NAME  --gpu-mem SIZE (per GPU)\n"
           "  --constraint LABEL[,LABEL] (nodes with all these labels)\n"
           "\nreserve options: --gpus N | --nodes N  --start now|+DURATION|YYYY-MM-DDTHH:MM  --duration\n"
           "  LIMIT  --account A | --users U,V  --gpu-model MODEL  --site SITE\n"
           "\nexit status: 0 done, 1 refused (the reason on stderr), 2 bad usage\n");
}

/* Whether a is a global option, and whether it takes a value. */
static bool global_opt(const char *a, bool *takes_value)
{
    static const char *const with[] = {"--socket", "--server", "--credentials", "--timeout"};
    *takes_value = false;
    if (strcmp(a, "--json") == 0)
        return true;
    for (size_t i = 0; i < sizeof with / sizeof *with; i++) {
        size_t n = strlen(with[i]);
        if (strncmp(a, with[i], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
            *takes_value = a[n] == '\0';
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    cli c = {0};
    /* The Slurm commands are this program under their names (build/slurm). */
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    bool handled;
    int rc = slurm_main(base, argc, argv, &handled);
    if (handled)
        return rc;
    /* Global options may stand before the command: jz --socket S queue. They
     * move after it, where every command takes them. */
    int first = 1;
    bool takes;
    while (first < argc && global_opt(argv[first], &takes))
        first += takes && first + 1 < argc ? 2 : 1;
    if (first > 1 && first < argc) {
        char *cmd = argv[first];
        memmove(&argv[2], &argv[1], (size_t)(first - 1) * sizeof *argv);
        argv[1] = cmd;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("jz %s (%s), protocol %d\n", JZ_VERSION, JZ_GIT_REV, WIRE_PROTOCOL_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(name, commands[i].name) != 0)
            continue;
        c.command = commands[i].name;
        for (int a = 2; a < argc && strcmp(argv[a], "--") != 0; a++) {
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                printf("usage: jz %s [--json] [--socket PATH] %s\n%s\n\n", commands[i].name, commands[i].args,
                       commands[i].summary);
                fflush(stdout);
                /* The command lists its own options (cli_parse in describe
                 * mode: nothing parsed, nothing sent), with the words
                 * before --help, so that jz token create --help lists
                 * create's. */
                memmove(&argv[a], &argv[a + 1], (size_t)(argc - a - 1) * sizeof *argv);
                c.describe = true;
                (void)commands[i].run(&c, a - 2, argv + 2);
                return CLI_OK;
            }
        }
        return commands[i].run(&c, argc - 2, argv + 2);
    }
    fprintf(stderr, "jz: unknown command '%.60s' (jz --help lists them)\n", name);
    return CLI_USAGE;
}

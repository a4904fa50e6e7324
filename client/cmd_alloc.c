/* cmd_alloc.c - jz alloc (salloc): an allocation (a job whose nodes only
 * hold it, JobSpec.alloc), granted, then a command run here, on the submit
 * host, with the job's SLURM_* environment, so that srun and jz run in it
 * launch steps on the allocation. When the command exits, the allocation
 * is completed (CancelRequest.complete) and we exit with its status. Also
 * srun from outside a job (cmd_step.c) allocates through here, and the
 * Slurm front ends salloc and sattach are hooked here on argv[0]. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/hostlist.h"
#include "cli.h"
#include "slurmopt.h"

extern char **environ;

#define ALLOC_POLL_MIN_MS 50
#define ALLOC_POLL_MAX_MS 1000

static volatile sig_atomic_t alloc__interrupted;

static void alloc__on_signal(int sig)
{
    alloc__interrupted = sig;
}

/* SIGINT, SIGTERM, SIGHUP set alloc__interrupted (calls in progress go on). */
static void alloc__catch(bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? alloc__on_signal : SIG_DFL;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

bool alloc_interrupted(void)
{
    return alloc__interrupted != 0;
}

static void alloc__sleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL); /* a signal cuts it short: the caller looks */
}

static int alloc__cancel(cli *c, uint64_t id, bool complete)
{
    Jazari__CancelRequest cr = JAZARI__CANCEL_REQUEST__INIT;
    cr.ids = &id;
    cr.n_ids = 1;
    cr.complete = complete;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_CANCEL_REQUEST;
    req.cancel_request = &cr;
    int status = CLI_REFUSED;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &status);
    if (!m)
        return status;
    wire_msg_free(m);
    return CLI_OK;
}

int alloc_complete(cli *c, uint64_t id)
{
    return alloc__cancel(c, id, true);
}

int alloc_cancel(cli *c, uint64_t id)
{
    return alloc__cancel(c, id, false);
}

/* Submits spec (an allocation) and waits until it runs, saying so on
 * stderr as prog ("salloc", "srun") does in Slurm. Its id in *id and the
 * running job (free it with wire_msg_free) returned; NULL after saying why
 * (*status), having cancelled it if it was queued. */
static wire_msg *alloc__get(cli *c, const char *prog, Jazari__JobSpec *spec, uint64_t *id, int *status)
{
    Jazari__SubmitRequest sr = JAZARI__SUBMIT_REQUEST__INIT;
    sr.spec = spec;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST;
    req.submit_request = &sr;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_SUBMIT_REPLY, status);
    if (!m)
        return NULL;
    *id = wire_msg_env(m)->submit_reply->id;
    wire_msg_free(m);
    bool srun = strcmp(prog, "srun") == 0;
    if (!srun)
        fprintf(stderr, "%s: Pending job allocation %llu\n", prog, (unsigned long long)*id);
    int wait_ms = ALLOC_POLL_MIN_MS;
    bool said = !srun;
    for (;;) {
        if (alloc__interrupted) {
            alloc_cancel(c, *id);
            fprintf(stderr, "%s: Job allocation %llu has been revoked.\n", prog, (unsigned long long)*id);
            *status = CLI_REFUSED;
            return NULL;
        }
        m = cli_fetch_job(c, *id, status);
        if (!m) {
            alloc_cancel(c, *id);
            return NULL;
        }
        const Jazari__Job *j = wire_msg_env(m)->show_reply->job;
        if (j->state == JAZARI__JOB_STATE__JOB_RUNNING) {
            if (said)
                fprintf(stderr,
                        srun ? "%s: job %llu has been allocated resources\n"
                             : "%s: Granted job allocation %llu\n",
                        prog, (unsigned long long)*id);
            return m;
        }
        if (j->state != JAZARI__JOB_STATE__JOB_PENDING) {
            fprintf(stderr, "%s: Job allocation %llu has been revoked%s%s\n", prog, (unsigned long long)*id,
                    j->reason && *j->reason ? ": " : ".", j->reason ? j->reason : "");
            wire_msg_free(m);
            *status = CLI_REFUSED;
            return NULL;
        }
        if (!said && wait_ms >= 400) { /* srun says so only when it has to wait */
            fprintf(stderr, "%s: job %llu queued and waiting for resources\n", prog, (unsigned long long)*id);
            said = true;
        }
        wire_msg_free(m);
        alloc__sleep(wait_ms);
        wait_ms = wait_ms * 2 > ALLOC_POLL_MAX_MS ? ALLOC_POLL_MAX_MS : wait_ms * 2;
    }
}

/* sbatch's options in argv (no script: positionals are the command) onto
 * an allocation's spec in o, as jz submit reads them. 0, or the exit
 * status after saying why. */
static int alloc__spec(cli *c, slurmopt *o, int argc, char **argv, const char *default_name)
{
    static const slurmopt_extra extra[] = {{"json", false},       {"socket", true},  {"server", true},
                                           {"credentials", true}, {"timeout", true}, {NULL, false}};
    if (c->describe) { /* jz alloc --help: sbatch's options, less a batch job's own */
        static const char *const batch_only[] = {"wrap", "array", NULL};
        cli_describe_sbatch(batch_only);
        return CLI_USAGE;
    }
    if (slurmopt_parse_args(o, argc, argv, extra) != 0) {
        cli_error(c, "%s", o->err);
        return CLI_USAGE;
    }
    const char *pos[1];
    if (cli_parse(c, o->npassed, o->passed, NULL, pos, 0) < 0)
        return CLI_USAGE;
    if (slurmopt_given(o, "wrap") || slurmopt_given(o, "array")) {
        cli_error(c, "--wrap and --array are sbatch's: an allocation runs a command here (jz alloc [OPTIONS] "
                     "[CMD [ARGS...]])");
        return CLI_USAGE;
    }
    static char cwd[4096], host[256]; /* the spec points here: kept past this call */
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    const char *name =
        o->npos > 0 ? strrchr(o->pos[0], '/') ? strrchr(o->pos[0], '/') + 1 : o->pos[0] : default_name;
    slurmopt_ctx ctx = {cwd, host, environ, name, NULL, NULL};
    if (slurmopt_build(o, &ctx) != 0) {
        cli_error(c, "%s", o->err);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < o->nwarnings && !o->quiet; i++)
        fprintf(stderr, "jz %s: %s\n", c->command, o->warnings[i]);
    o->spec.alloc = true;
    o->spec.batch = false;
    o->spec.script = "";
    o->spec.argv = NULL;
    o->spec.n_argv = 0;
    return CLI_OK;
}

uint64_t alloc_create(cli *c, const char *prog, int argc, char **argv, int *status)
{
    slurmopt o;
    slurmopt_init(&o);
    uint64_t id = 0;
    *status = alloc__spec(c, &o, argc, argv, "interactive");
    if (*status == CLI_OK) {
        alloc__catch(true);
        wire_msg *m = alloc__get(c, prog, &o.spec, &id, status);
        if (!m)
            id = 0;
        wire_msg_free(m);
    }
    slurmopt_free(&o);
    return id;
}

static void alloc__setenv(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void alloc__setenv(const char *k, const char *fmt, ...)
{
    char v[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    setenv(k, v, 1);
}

/* The job's variables, as salloc sets them for its command. */
static void alloc__env(const Jazari__Job *j)
{
    const Jazari__JobSpec *js = j->spec;
    const char **names = calloc(j->n_allocs ? j->n_allocs : 1, sizeof *names);
    if (!names)
        abort();
    for (size_t i = 0; i < j->n_allocs; i++)
        names[i] = j->allocs[i]->node;
    buf nl = BUF_INIT;
    hostlist_compress(names, j->n_allocs, false, &nl);
    free(names);
    uint32_t tpn = js && js->tasks_per_node ? js->tasks_per_node : 1;
    uint32_t ntasks = js && js->ntasks ? js->ntasks : (uint32_t)j->n_allocs * tpn;
    alloc__setenv("SLURM_JOB_ID", "%llu", (unsigned long long)j->id);
    alloc__setenv("SLURM_JOBID", "%llu", (unsigned long long)j->id);
    alloc__setenv("JAZARI_JOB_ID", "%llu", (unsigned long long)j->id);
    alloc__setenv("SLURM_JOB_NAME", "%s", js && js->name ? js->name : "");
    alloc__setenv("SLURM_JOB_NODELIST", "%s", buf_str(&nl));
    alloc__setenv("SLURM_NODELIST", "%s", buf_str(&nl));
    alloc__setenv("SLURM_JOB_NUM_NODES", "%zu", j->n_allocs);
    alloc__setenv("SLURM_NNODES", "%zu", j->n_allocs);
    alloc__setenv("SLURM_NTASKS", "%u", ntasks);
    alloc__setenv("SLURM_NPROCS", "%u", ntasks);
    if (js && js->tasks_per_node)
        alloc__setenv("SLURM_NTASKS_PER_NODE", "%u", js->tasks_per_node);
    if (js && js->cpus_per_task)
        alloc__setenv("SLURM_CPUS_PER_TASK", "%u", js->cpus_per_task);
    if (js && js->gpus_per_node)
        alloc__setenv("SLURM_GPUS_PER_NODE", "%u", js->gpus_per_node);
    if (js && js->mem_bytes)
        alloc__setenv("SLURM_MEM_PER_NODE", "%llu", (unsigned long long)(js->mem_bytes >> 20));
    if (js && js->account && *js->account)
        alloc__setenv("SLURM_JOB_ACCOUNT", "%s", js->account);
    if (j->partition && *j->partition)
        alloc__setenv("SLURM_JOB_PARTITION", "%s", j->partition);
    if (js && js->submit_dir && *js->submit_dir)
        alloc__setenv("SLURM_SUBMIT_DIR", "%s", js->submit_dir);
    if (js && js->submit_host && *js->submit_host)
        alloc__setenv("SLURM_SUBMIT_HOST", "%s", js->submit_host);
    alloc__setenv("SLURM_CLUSTER_NAME", "%s", js && js->cluster && *js->cluster ? js->cluster : "jazari");
    alloc__setenv("SLURM_JOB_USER", "%s", j->user ? j->user : "");
    alloc__setenv("SLURM_JOB_UID", "%u", j->uid);
    buf_free(&nl);
}

/* Runs argv (NULL: $SHELL, else /bin/sh) here and waits: its exit status
 * (128 + a signal's number). While it runs, the terminal's signals are the
 * command's: we ignore SIGINT and SIGQUIT as salloc does. */
static int alloc__run(cli *c, char **argv)
{
    const char *shell = getenv("SHELL");
    char *dflt[] = {(char *)(shell && *shell ? shell : "/bin/sh"), NULL};
    if (!argv)
        argv = dflt;
    struct sigaction ign, oint, oquit;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &oint);
    sigaction(SIGQUIT, &ign, &oquit);
    /* TERM and HUP cut the wait short, to be passed on to the command. */
    struct sigaction fwd;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = alloc__on_signal;
    sigemptyset(&fwd.sa_mask);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error(c, "cannot start %s: %s", argv[0], strerror(errno));
        return CLI_REFUSED;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "jz %s: cannot run %s: %s\n", c->command, argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        if (alloc__interrupted == SIGTERM || alloc__interrupted == SIGHUP)
            kill(pid, alloc__interrupted); /* our end: the command's too */
        alloc__interrupted = 0;
    }
    sigaction(SIGINT, &oint, NULL);
    sigaction(SIGQUIT, &oquit, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
}

int cmd_alloc(cli *c, int argc, char **argv)
{
    const char *prog = strcmp(c->command, "salloc") == 0 ? "salloc" : "jz alloc";
    slurmopt o;
    slurmopt_init(&o);
    int status = alloc__spec(c, &o, argc, argv, "interactive");
    if (status != CLI_OK) {
        slurmopt_free(&o);
        return status;
    }
    uint64_t id = 0;
    alloc__catch(true);
    wire_msg *m = alloc__get(c, prog, &o.spec, &id, &status);
    if (!m) {
        slurmopt_free(&o);
        alloc__catch(false);
        return status;
    }
    alloc__env(wire_msg_env(m)->show_reply->job);
    /* srun in the command reaches the daemon we did. */
    if (c->socket)
        setenv("JAZARI_SOCKET", c->socket, 1);
    if (c->server)
        setenv("JAZARI_SERVER", c->server, 1);
    if (c->credentials)
        setenv("JAZARI_CREDENTIALS", c->credentials, 1);
    wire_msg_free(m);
    int rc = alloc__run(c, o.npos > 0 ? o.pos : NULL);
    slurmopt_free(&o);
    fprintf(stderr, "%s: Relinquishing job allocation %llu\n", prog, (unsigned long long)id);
    if (alloc_complete(c, id) != CLI_OK)
        fprintf(stderr, "%s: allocation %llu was not released: it ends at its time limit (jz cancel %llu)\n",
                prog, (unsigned long long)id, (unsigned long long)id);
    alloc__catch(false);
    return rc;
}

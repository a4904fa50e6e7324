/* cmd_jobops.c - jz hold, jz requeue, jz update, and jz cancel JOB.STEP:
 * changing jobs in place (Slurm's scontrol hold, requeue, requeuehold,
 * update JobId=..., and scancel JOB.STEP). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slurmopt.h"

int cmd_hold(cli *c, int argc, char **argv)
{
    return cli_jobs_op(c, argc, argv, CLI_JOBS_HOLD);
}

int cmd_requeue(cli *c, int argc, char **argv)
{
    return cli_jobs_op(c, argc, argv, CLI_JOBS_REQUEUE);
}

/* --- jz update ------------------------------------------------------------------------- */

/* What jz update may change: the option as written (long, short), and
 * the field's name for the daemon (the long one). */
static const struct {
    const char *lng, *shrt;
} jobops__updatable[] = {
    {"--time", "-t"},       {"--job-name", "-J"},    {"--name", NULL},           {"--qos", "-q"},
    {"--account", "-A"},    {"--partition", "-p"},   {"--nodes", "-N"},          {"--gpus-per-node", NULL},
    {"--cpus-per-task", "-c"}, {"--mem", NULL},      {"--dependency", "-d"},     {"--constraint", "-C"},
};

static const char *jobops__field_of(const char *written)
{
    for (size_t i = 0; i < sizeof jobops__updatable / sizeof *jobops__updatable; i++) {
        if (strcmp(written, jobops__updatable[i].lng) == 0 ||
            (jobops__updatable[i].shrt && strcmp(written, jobops__updatable[i].shrt) == 0))
            return strcmp(jobops__updatable[i].lng, "--name") == 0 ? "job-name" : jobops__updatable[i].lng + 2;
    }
    return NULL;
}

int cmd_update(cli *c, int argc, char **argv)
{
    static const slurmopt_extra extra[] = {{"json", false},       {"socket", true},  {"server", true},
                                           {"credentials", true}, {"timeout", true}, {NULL, false}};
    if (c->describe) { /* jz update --help: what it may change, in cli_describe_opts's form */
        printf("options:\n");
        for (size_t i = 0; i < sizeof jobops__updatable / sizeof *jobops__updatable; i++) {
            printf("  %s VALUE\n", jobops__updatable[i].lng);
            if (jobops__updatable[i].shrt)
                printf("  %s VALUE\n", jobops__updatable[i].shrt);
        }
        cli_describe_shared();
        return CLI_USAGE;
    }
    /* JOB: the first word that is neither an option nor an option's value
     * (every option jz update takes has a value, --json aside). */
    int at = -1;
    for (int i = 0; i < argc && at < 0; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (argv[i][0] != '-')
            at = i;
        else if (!strchr(argv[i], '=') && strcmp(argv[i], "--json") != 0)
            i++; /* its value */
    }
    if (at < 0) {
        cli_error(c, "which job? usage: jz update JOB [--time T] [--job-name N] [--qos Q] [--account A] "
                     "[--partition P] [--nodes N] [--gpus-per-node G] [--cpus-per-task C] [--mem SIZE] "
                     "[--dependency D] [--constraint C]");
        return CLI_USAGE;
    }
    const char *job_ref = argv[at];
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        abort();
    int nrest = 0;
    for (int i = 0; i < argc; i++)
        if (i != at)
            rest[nrest++] = argv[i];
    for (int i = 0; i < nrest; i++) {
        if (strncmp(rest[i], "--nice", 6) == 0 && (rest[i][6] == '\0' || rest[i][6] == '=')) {
            cli_error(c, "--nice: Jazari has no nice value (jobs are ordered by the policy's priority: "
                         "--qos changes it)");
            free(rest);
            return CLI_USAGE;
        }
    }
    slurmopt o;
    slurmopt_init(&o);
    int status = CLI_USAGE;
    const char *fields[32];
    size_t nf = 0;
    if (slurmopt_parse_args(&o, nrest, rest, extra) != 0) {
        cli_error(c, "%s", o.err);
        goto out;
    }
    const char *pos[1];
    if (cli_parse(c, o.npassed, o.passed, NULL, pos, 0) < 0)
        goto out;
    if (o.npos > 0 || o.dashdash) {
        cli_error(c, "update: '%.40s' is not an option: jz update JOB --OPTION VALUE...",
                  o.npos ? o.pos[0] : "--");
        goto out;
    }
    for (size_t i = 0; i < o.nocc; i++) {
        const char *f = jobops__field_of(o.occ[i].name);
        if (!f) {
            cli_error(c,
                      "update: %s cannot be changed: --time, --job-name, --qos, --account, --partition, --nodes, "
                      "--gpus-per-node, --cpus-per-task, --mem, --dependency, --constraint can",
                      o.occ[i].name);
            goto out;
        }
        bool seen = false;
        for (size_t k = 0; k < nf && !seen; k++)
            seen = strcmp(fields[k], f) == 0;
        if (!seen && nf < 32)
            fields[nf++] = f;
    }
    if (nf == 0) {
        cli_error(c, "update: nothing to change (give --time, --qos, ...)");
        goto out;
    }
    slurmopt_ctx ctx = {.cwd = "/", .host = "", .environ = NULL, .default_name = NULL};
    if (slurmopt_build(&o, &ctx) != 0) {
        cli_error(c, "%s", o.err);
        goto out;
    }
    Jazari__UpdateRequest ur = JAZARI__UPDATE_REQUEST__INIT;
    if (cli_job_ref(c, job_ref, &ur.id, &status) != 0)
        goto out;
    ur.spec = &o.spec;
    ur.fields = (char **)fields;
    ur.n_fields = nf;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_UPDATE_REQUEST;
    req.update_request = &ur;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_UPDATE_REPLY, &status);
    if (!m)
        goto out;
    const Jazari__UpdateReply *r = wire_msg_env(m)->update_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_uint(&j, "id", ur.id);
        json_key(&j, "changed");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_changed; i++)
            json_str(&j, r->changed[i]);
        json_arr_end(&j);
        json_obj_end(&j);
    } else if (r->n_changed == 0) {
        buf_printf(&b, "job %llu: nothing changed\n", (unsigned long long)ur.id);
    } else {
        for (size_t i = 0; i < r->n_changed; i++)
            buf_printf(&b, "job %llu: %s\n", (unsigned long long)ur.id, r->changed[i]);
    }
    wire_msg_free(m);
    status = cli_flush(&b);
out:
    slurmopt_free(&o);
    free(rest);
    return status;
}

/* --- jz cancel JOB.STEP --------------------------------------------------------------------- */

int cli_cancel_step(cli *c, uint64_t id, uint32_t step, bool quiet)
{
    Jazari__CancelRequest cr = JAZARI__CANCEL_REQUEST__INIT;
    cr.ids = &id;
    cr.n_ids = 1;
    cr.has_step = true;
    cr.step = step;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_CANCEL_REQUEST;
    req.cancel_request = &cr;
    int status;
    wire_msg *m = quiet ? cli_request_raw(c, &req, &status)
                        : cli_request(c, &req, JAZARI__ENVELOPE__BODY_CANCEL_REPLY, &status);
    if (!m)
        return status;
    const Jazari__Envelope *e = wire_msg_env(m);
    status = e->error && e->error->code != JAZARI__ERROR_CODE__OK ? CLI_REFUSED : CLI_OK;
    wire_msg_free(m);
    return status;
}

int cli_cancel_steps(cli *c, int argc, char **argv)
{
    static const char *pos[64];
    int npos = cli_parse(c, argc, argv, NULL, pos, 64);
    if (npos < 0)
        return CLI_USAGE;
    uint32_t n = 0;
    int status = CLI_OK;
    for (int i = 0; i < npos; i++) {
        const char *dot = strchr(pos[i], '.');
        char job[32];
        char *end;
        errno = 0;
        unsigned long long step = dot ? strtoull(dot + 1, &end, 10) : 0;
        if (!dot || (size_t)(dot - pos[i]) >= sizeof job || !isdigit((unsigned char)dot[1]) || *end || errno ||
            step >= UINT32_MAX - 1) {
            cli_error(c, "bad step '%.40s': JOB.STEP, as 12.0 (jz show JOB lists the steps); whole jobs and steps "
                         "are cancelled by separate commands",
                      pos[i]);
            return CLI_USAGE;
        }
        snprintf(job, sizeof job, "%.*s", (int)(dot - pos[i]), pos[i]);
        uint64_t id;
        if (cli_job_ref(c, job, &id, &status) != 0)
            return status;
        status = cli_cancel_step(c, id, (uint32_t)step, false);
        if (status != CLI_OK)
            break;
        n++;
    }
    if (status != CLI_OK && n == 0)
        return status;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_uint(&j, "cancelled_steps", n);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "cancelled %u step%s\n", n, n == 1 ? "" : "s");
    }
    int rc = cli_flush(&b);
    return status != CLI_OK ? status : rc;
}

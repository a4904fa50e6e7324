/* cmd_submit.c - jz submit: a batch script (from a file, standard input or
 * --wrap) or a command, with sbatch's options (slurmopt) and jz's own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/jobspec.h"
#include "cli.h"
#include "slurmopt.h"

extern char **environ;

/* The whole of f, NUL-terminated (free it), or NULL after saying why. */
static char *submit__read(cli *c, FILE *f, const char *what)
{
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    if (!text)
        abort();
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            text = realloc(text, cap);
            if (!text)
                abort();
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (len > JOB_SCRIPT_MAX) {
            cli_error(c, "script %s: over %u bytes", what, JOB_SCRIPT_MAX);
            free(text);
            return NULL;
        }
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        cli_error(c, "script %s: %s", what, strerror(errno));
        free(text);
        return NULL;
    }
    text[len] = '\0';
    if (memchr(text, '\0', len)) {
        cli_error(c, "script %s: contains NUL bytes (not a text script)", what);
        free(text);
        return NULL;
    }
    return text;
}

static char *submit__read_script(cli *c, const char *path)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (!f) {
        cli_error(c, "script %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)JOB_SCRIPT_MAX) {
        cli_error(c, "script %s: not a regular file of at most %u bytes", path, JOB_SCRIPT_MAX);
        fclose(f);
        return NULL;
    }
    char *text = submit__read(c, f, path);
    fclose(f);
    return text;
}

/* -d afterok:ID_IDX: task IDX of the array whose first job is ID. The
 * tasks have consecutive ids from the array's, in index order: a search
 * over ids, one show request each, on one connection. */
typedef struct submit_resolver {
    cli *c;
    cli_conn *k;
} submit_resolver;

/* Job id's array and index: 1 found, 0 no such job (or not that array's), -1 transport. */
static int submit__task(submit_resolver *r, uint64_t id, uint64_t array_id, uint32_t *index, uint32_t *count)
{
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    sr.id = id;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_SHOW_REQUEST;
    req.show_request = &sr;
    wire_msg *m = cli_call(r->k, &req);
    if (!m)
        return -1;
    const Jazari__Envelope *e = wire_msg_env(m);
    int rc = 0;
    if ((!e->error || e->error->code == JAZARI__ERROR_CODE__OK) &&
        e->body_case == JAZARI__ENVELOPE__BODY_SHOW_REPLY && e->show_reply->job) {
        const Jazari__Job *j = e->show_reply->job;
        if ((j->array_job_id == array_id || (j->id == array_id && j->spec && j->spec->array_task)) &&
            j->spec) {
            *index = j->spec->array_index;
            *count = j->spec->array_count;
            rc = 1;
        }
    }
    wire_msg_free(m);
    return rc;
}

static int submit__resolve(void *arg, uint64_t array_id, uint32_t index, uint64_t *id, char *err,
                           size_t errlen)
{
    submit_resolver *r = arg;
    if (!r->k && !(r->k = cli_connect(r->c))) {
        snprintf(err, errlen, "cannot reach the daemon to find the array's task");
        return -1;
    }
    uint32_t idx, count;
    int rc = submit__task(r, array_id, array_id, &idx, &count);
    if (rc < 0)
        goto transport;
    if (rc == 0) {
        snprintf(err, errlen, "job %llu is not the first task of an array (no such array)",
                 (unsigned long long)array_id);
        return -1;
    }
    if (idx == index) {
        *id = array_id;
        return 0;
    }
    /* lo: a task whose index is below; hi: past the target (or the end). */
    uint64_t lo = array_id, hi;
    if (count) {
        hi = array_id + count;
    } else {
        uint64_t step = 1;
        for (;;) {
            uint32_t i2, c2;
            uint64_t probe = array_id + step;
            rc = submit__task(r, probe, array_id, &i2, &c2);
            if (rc < 0)
                goto transport;
            if (rc == 0 || i2 >= index) {
                hi = rc == 0 ? probe : probe + 1;
                if (rc == 1 && i2 == index) {
                    *id = probe;
                    return 0;
                }
                break;
            }
            lo = probe;
            step *= 2;
            if (step > JOB_ARRAY_MAX * 2ull) {
                hi = probe;
                break;
            }
        }
    }
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint32_t i2, c2;
        rc = submit__task(r, mid, array_id, &i2, &c2);
        if (rc < 0)
            goto transport;
        if (rc == 1 && i2 == index) {
            *id = mid;
            return 0;
        }
        if (rc == 1 && i2 < index)
            lo = mid;
        else
            hi = mid;
    }
    snprintf(err, errlen, "array %llu has no task %u", (unsigned long long)array_id, index);
    return -1;
transport:
    snprintf(err, errlen, "the daemon did not answer while finding the array's task");
    return -1;
}

static const char *submit__base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

void cli_describe_sbatch(const char *const *except)
{
    printf("options:\n");
    slurmopt_info in;
    for (size_t i = 0; slurmopt_option(i, &in); i++) {
        bool skip = !in.effective;
        for (size_t k = 0; except && except[k] && !skip; k++)
            skip = strcmp(in.name, except[k]) == 0;
        if (skip)
            continue;
        printf("  --%s%s\n", in.name, in.has_value ? " VALUE" : "");
        if (in.shrt)
            printf("  -%c%s\n", in.shrt, in.has_value ? " VALUE" : "");
    }
    cli_describe_shared();
}

int cmd_submit(cli *c, int argc, char **argv)
{
    static const slurmopt_extra extra[] = {{"json", false},       {"socket", true},  {"server", true},
                                           {"credentials", true}, {"timeout", true}, {NULL, false}};
    slurmopt o;
    slurmopt_init(&o);
    submit_resolver res = {c, NULL};
    char *text = NULL;
    int status = CLI_USAGE;
    if (c->describe) { /* jz submit --help */
        cli_describe_sbatch(NULL);
        goto out;
    }
    if (slurmopt_parse_args(&o, argc, argv, extra) != 0) {
        cli_error(c, "%s", o.err);
        goto out;
    }
    const char *pos[1];
    if (cli_parse(c, o.npassed, o.passed, NULL, pos, 0) < 0)
        goto out;
    const char *default_name = NULL, *script_path = NULL;
    bool wrap = slurmopt_given(&o, "wrap");
    if (o.dashdash) {
        if (o.npos == 0) {
            cli_error(c, "nothing to run after --: jz submit [OPTIONS] -- CMD [ARGS...]");
            goto out;
        }
        default_name = submit__base(o.pos[0]);
    } else if (o.npos > 0 && strcmp(o.pos[0], "-") != 0) {
        script_path = o.pos[0];
        struct stat st;
        for (int i = 1; i < o.npos && stat(script_path, &st) != 0; i++)
            if (strcmp(o.pos[i], "--") == 0) {
                cli_error(c, "'%.60s' before --: put the command after --", script_path);
                goto out;
            }
        if (!(text = submit__read_script(c, script_path)))
            goto out;
        default_name = submit__base(script_path);
    } else if (!wrap) {
        if (isatty(0)) {
            cli_error(c, "nothing to run: jz submit [OPTIONS] SCRIPT [ARGS...], jz submit [OPTIONS] -- CMD "
                         "[ARGS...], --wrap=CMD, or a script on standard input");
            goto out;
        }
        script_path = "standard input";
        if (!(text = submit__read(c, stdin, script_path)))
            goto out;
        if (!*text) {
            cli_error(c, "nothing to run: the script on standard input is empty");
            goto out;
        }
        default_name = "sbatch";
    }
    if (text && slurmopt_parse_script(&o, script_path, text) != 0) {
        cli_error(c, "%s", o.err);
        goto out;
    }
    char cwd[4096], host[256];
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    slurmopt_ctx ctx = {cwd, host, environ, default_name, submit__resolve, &res};
    int built = slurmopt_build(&o, &ctx);
    if (res.k)
        cli_close(res.k);
    if (built != 0) {
        cli_error(c, "%s", o.err);
        goto out;
    }
    for (size_t i = 0; i < o.nwarnings && !o.quiet; i++)
        fprintf(stderr, "%s%s: %s\n", c->slurm ? "" : "jz ", c->command, o.warnings[i]);
    Jazari__JobSpec *spec = &o.spec;
    if (o.dashdash) {
        spec->argv = o.pos;
        spec->n_argv = (size_t)o.npos;
    } else if (text) {
        spec->script = text;
        spec->batch = true;
        spec->argv = o.npos > 1 ? o.pos + 1 : NULL;
        spec->n_argv = o.npos > 1 ? (size_t)o.npos - 1 : 0;
    }
    /* sbatch's own default, where tools look for a job's output. */
    if (c->slurm && spec->batch && (!spec->output || !*spec->output))
        spec->output = spec->array && *spec->array ? "slurm-%A_%a.out" : "slurm-%j.out";
    Jazari__SubmitRequest sr = JAZARI__SUBMIT_REQUEST__INIT;
    sr.spec = spec;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST;
    req.submit_request = &sr;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_SUBMIT_REPLY, &status);
    if (!m)
        goto out;
    buf b = BUF_INIT;
    uint64_t id = wire_msg_env(m)->submit_reply->id;
    uint32_t count = wire_msg_env(m)->submit_reply->count;
    bool array = *spec->array;
    wire_msg_free(m);
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_uint(&j, "id", id);
        if (array)
            json_kv_uint(&j, "count", count);
        json_obj_end(&j);
    } else if (o.parsable) {
        buf_printf(&b, "%llu%s%s\n", (unsigned long long)id, o.cluster ? ";" : "", o.cluster ? o.cluster : "");
    } else if (o.quiet) {
        /* -Q: nothing but errors */
    } else if (c->slurm) {
        buf_printf(&b, "Submitted batch job %llu\n", (unsigned long long)id);
    } else if (array) {
        buf_printf(&b, "%llu (array of %u: jobs %llu to %llu)\n", (unsigned long long)id, count,
                   (unsigned long long)id, (unsigned long long)(id + count - 1));
    } else {
        buf_printf(&b, "%llu\n", (unsigned long long)id);
    }
    status = b.len || c->json ? cli_flush(&b) : CLI_OK;
    buf_free(&b);
    if (status == CLI_OK && o.wait) {
        /* -W: as jz wait (the job's exit code), for the job or the array's first task. */
        char idstr[32];
        snprintf(idstr, sizeof idstr, "%llu", (unsigned long long)id);
        char *wargv[] = {idstr, NULL};
        bool was_json = c->json;
        c->json = false;
        status = cmd_wait(c, 1, wargv);
        c->json = was_json;
    }
out:
    free(text);
    slurmopt_free(&o);
    return status;
}

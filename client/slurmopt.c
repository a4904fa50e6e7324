/* slurmopt.c - sbatch's options: one table, a getopt-like reader for the
 * command line and #SBATCH lines, and their mapping onto a JobSpec. */
#include "slurmopt.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/buf.h"
#include "../common/jobspec.h"
#include "../common/utf8.h"
#include "cli.h"

/* --- the table ---------------------------------------------------------------------------------- */

enum {
    SO_JOB_NAME,
    SO_OUTPUT,
    SO_ERROR,
    SO_OPEN_MODE,
    SO_CHDIR,
    SO_NODES,
    SO_NTASKS,
    SO_NTASKS_PER_NODE,
    SO_CPUS_PER_TASK,
    SO_GRES,
    SO_GPUS,
    SO_GPUS_PER_NODE,
    SO_GPUS_PER_TASK,
    SO_CPUS_PER_GPU,
    SO_MEM,
    SO_MEM_PER_CPU,
    SO_MEM_PER_GPU,
    SO_EXCLUSIVE,
    SO_TIME,
    SO_ACCOUNT,
    SO_QOS,
    SO_PARTITION,
    SO_RESERVATION,
    SO_CONSTRAINT,
    SO_HOLD,
    SO_REQUEUE,
    SO_NO_REQUEUE,
    SO_SIGNAL,
    SO_ARRAY,
    SO_DEPENDENCY,
    SO_WRAP,
    SO_PARSABLE,
    SO_CLUSTERS,
    SO_WAIT,
    SO_EXPORT,
    SO_QUIET,
    SO_VERBOSE,
    /* jz's own (INTERFACE.md) */
    SO_GPU_MODEL,
    SO_SITE,
    SO_DATA,
    SO_SPAN_SITES,
    SO_ENV,
    SO_AFTER_OK,
    SO_AFTER_ANY,
    SO_GPU_MEM,
    /* many options each */
    SO_NOEFFECT,    /* understood, no effect here: one warning */
    SO_UNSUPPORTED, /* would change resources, limits or placement: refused */
    SO_EXTRA,       /* the caller's own (slurmopt_extra) */
    SO__N
};

enum { ARG_NONE, ARG_REQ, ARG_OPT };

typedef struct so_def {
    const char *name; /* long, without "--" */
    char shrt;        /* short letter, or 0 */
    unsigned char arg;
    int id;
} so_def;

static const so_def so_table[] = {
    /* mapped onto the spec */
    {"job-name", 'J', ARG_REQ, SO_JOB_NAME},
    {"name", 0, ARG_REQ, SO_JOB_NAME},
    {"output", 'o', ARG_REQ, SO_OUTPUT},
    {"error", 'e', ARG_REQ, SO_ERROR},
    {"open-mode", 0, ARG_REQ, SO_OPEN_MODE},
    {"chdir", 'D', ARG_REQ, SO_CHDIR},
    {"workdir", 0, ARG_REQ, SO_CHDIR},
    {"nodes", 'N', ARG_REQ, SO_NODES},
    {"ntasks", 'n', ARG_REQ, SO_NTASKS},
    {"ntasks-per-node", 0, ARG_REQ, SO_NTASKS_PER_NODE},
    {"tasks-per-node", 0, ARG_REQ, SO_NTASKS_PER_NODE},
    {"cpus-per-task", 'c', ARG_REQ, SO_CPUS_PER_TASK},
    {"gres", 0, ARG_REQ, SO_GRES},
    {"gpus", 'G', ARG_REQ, SO_GPUS},
    {"gpus-per-node", 0, ARG_REQ, SO_GPUS_PER_NODE},
    {"gpus-per-task", 0, ARG_REQ, SO_GPUS_PER_TASK},
    {"cpus-per-gpu", 0, ARG_REQ, SO_CPUS_PER_GPU},
    {"mem", 0, ARG_REQ, SO_MEM},
    {"mem-per-cpu", 0, ARG_REQ, SO_MEM_PER_CPU},
    {"mem-per-gpu", 0, ARG_REQ, SO_MEM_PER_GPU},
    {"exclusive", 0, ARG_OPT, SO_EXCLUSIVE},
    {"time", 't', ARG_REQ, SO_TIME},
    {"account", 'A', ARG_REQ, SO_ACCOUNT},
    {"qos", 'q', ARG_REQ, SO_QOS},
    {"partition", 'p', ARG_REQ, SO_PARTITION},
    {"reservation", 0, ARG_REQ, SO_RESERVATION},
    {"constraint", 'C', ARG_REQ, SO_CONSTRAINT},
    {"hold", 'H', ARG_NONE, SO_HOLD},
    {"requeue", 0, ARG_NONE, SO_REQUEUE},
    {"no-requeue", 0, ARG_NONE, SO_NO_REQUEUE},
    {"signal", 0, ARG_REQ, SO_SIGNAL},
    {"array", 'a', ARG_REQ, SO_ARRAY},
    {"dependency", 'd', ARG_REQ, SO_DEPENDENCY},
    {"wrap", 0, ARG_REQ, SO_WRAP},
    {"parsable", 0, ARG_OPT, SO_PARSABLE},
    {"wait", 'W', ARG_NONE, SO_WAIT},
    {"export", 0, ARG_REQ, SO_EXPORT},
    {"quiet", 'Q', ARG_NONE, SO_QUIET},
    {"verbose", 'v', ARG_NONE, SO_VERBOSE},
    {"gpu-model", 0, ARG_REQ, SO_GPU_MODEL},
    {"site", 0, ARG_REQ, SO_SITE},
    {"data", 0, ARG_REQ, SO_DATA},
    {"span-sites", 0, ARG_NONE, SO_SPAN_SITES},
    {"env", 0, ARG_REQ, SO_ENV},
    {"after-ok", 0, ARG_REQ, SO_AFTER_OK},
    {"after-any", 0, ARG_REQ, SO_AFTER_ANY},
    {"gpu-mem", 0, ARG_REQ, SO_GPU_MEM},
    /* understood, without effect here */
    {"mail-type", 0, ARG_REQ, SO_NOEFFECT},
    {"mail-user", 0, ARG_REQ, SO_NOEFFECT},
    {"comment", 0, ARG_REQ, SO_NOEFFECT},
    {"nice", 0, ARG_OPT, SO_NOEFFECT},
    {"cpu-bind", 0, ARG_REQ, SO_NOEFFECT},
    {"mem-bind", 0, ARG_REQ, SO_NOEFFECT},
    {"hint", 0, ARG_REQ, SO_NOEFFECT},
    {"distribution", 'm', ARG_REQ, SO_NOEFFECT},
    {"get-user-env", 0, ARG_OPT, SO_NOEFFECT},
    {"propagate", 0, ARG_OPT, SO_NOEFFECT},
    {"profile", 0, ARG_REQ, SO_NOEFFECT},
    {"acctg-freq", 0, ARG_REQ, SO_NOEFFECT},
    {"gpu-bind", 0, ARG_REQ, SO_NOEFFECT},
    {"gpu-freq", 0, ARG_REQ, SO_NOEFFECT},
    {"cpu-freq", 0, ARG_REQ, SO_NOEFFECT},
    {"time-min", 0, ARG_REQ, SO_NOEFFECT},
    {"kill-on-invalid-dep", 0, ARG_REQ, SO_NOEFFECT},
    {"no-kill", 'k', ARG_OPT, SO_NOEFFECT},
    {"spread-job", 0, ARG_NONE, SO_NOEFFECT},
    {"use-min-nodes", 0, ARG_NONE, SO_NOEFFECT},
    {"oversubscribe", 's', ARG_NONE, SO_NOEFFECT},
    {"overcommit", 'O', ARG_NONE, SO_NOEFFECT},
    {"threads-per-core", 0, ARG_REQ, SO_NOEFFECT},
    {"sockets-per-node", 0, ARG_REQ, SO_NOEFFECT},
    {"cores-per-socket", 0, ARG_REQ, SO_NOEFFECT},
    {"ntasks-per-socket", 0, ARG_REQ, SO_NOEFFECT},
    {"ntasks-per-core", 0, ARG_REQ, SO_NOEFFECT},
    {"wckey", 0, ARG_REQ, SO_NOEFFECT},
    {"switches", 0, ARG_REQ, SO_NOEFFECT},
    {"mcs-label", 0, ARG_REQ, SO_NOEFFECT},
    {"gres-flags", 0, ARG_REQ, SO_NOEFFECT},
    {"wait-all-nodes", 0, ARG_REQ, SO_NOEFFECT},
    {"ignore-pbs", 0, ARG_NONE, SO_NOEFFECT},
    {"prefer", 0, ARG_REQ, SO_NOEFFECT},
    {"power", 0, ARG_REQ, SO_NOEFFECT},
    {"reboot", 0, ARG_NONE, SO_NOEFFECT},
    {"delay-boot", 0, ARG_REQ, SO_NOEFFECT},
    /* would change resources, limits or placement: refused */
    {"licenses", 'L', ARG_REQ, SO_UNSUPPORTED},
    {"tmp", 0, ARG_REQ, SO_UNSUPPORTED},
    {"nodelist", 'w', ARG_REQ, SO_UNSUPPORTED},
    {"exclude", 'x', ARG_REQ, SO_UNSUPPORTED},
    {"nodefile", 'F', ARG_REQ, SO_UNSUPPORTED},
    {"begin", 'b', ARG_REQ, SO_UNSUPPORTED},
    {"deadline", 0, ARG_REQ, SO_UNSUPPORTED},
    {"mincpus", 0, ARG_REQ, SO_UNSUPPORTED},
    {"container", 0, ARG_REQ, SO_UNSUPPORTED},
    {"container-id", 0, ARG_REQ, SO_UNSUPPORTED},
    {"uid", 0, ARG_REQ, SO_UNSUPPORTED},
    {"gid", 0, ARG_REQ, SO_UNSUPPORTED},
    {"test-only", 0, ARG_NONE, SO_UNSUPPORTED},
    {"clusters", 'M', ARG_REQ, SO_CLUSTERS},
    {"cluster-constraint", 0, ARG_REQ, SO_UNSUPPORTED},
    {"batch", 0, ARG_REQ, SO_UNSUPPORTED},
    {"network", 0, ARG_REQ, SO_UNSUPPORTED},
    {"priority", 0, ARG_REQ, SO_UNSUPPORTED},
    {"bb", 0, ARG_REQ, SO_UNSUPPORTED},
    {"bbf", 0, ARG_REQ, SO_UNSUPPORTED},
    {"burst-buffer", 0, ARG_REQ, SO_UNSUPPORTED},
    {"input", 'i', ARG_REQ, SO_UNSUPPORTED},
    {"extra-node-info", 'B', ARG_REQ, SO_UNSUPPORTED},
    {"extra", 0, ARG_REQ, SO_UNSUPPORTED},
    {"core-spec", 'S', ARG_REQ, SO_UNSUPPORTED},
    {"thread-spec", 0, ARG_REQ, SO_UNSUPPORTED},
    {"ntasks-per-gpu", 0, ARG_REQ, SO_UNSUPPORTED},
    {"gpus-per-socket", 0, ARG_REQ, SO_UNSUPPORTED},
    {"tres-per-task", 0, ARG_REQ, SO_UNSUPPORTED},
    {"resv-ports", 0, ARG_OPT, SO_UNSUPPORTED},
    {"export-file", 0, ARG_REQ, SO_UNSUPPORTED},
    {"x11", 0, ARG_OPT, SO_UNSUPPORTED},
    {"segment", 0, ARG_REQ, SO_UNSUPPORTED},
    {"array-throttle", 0, ARG_REQ, SO_UNSUPPORTED},
};
#define SO_TABLE_N (sizeof so_table / sizeof so_table[0])

/* --- memory and messages ------------------------------------------------------------------------ */

void slurmopt_init(slurmopt *o)
{
    memset(o, 0, sizeof *o);
    Jazari__JobSpec init = JAZARI__JOB_SPEC__INIT;
    o->spec = init;
}

/* Keeps p (malloc'd) until slurmopt_free; returns it. */
static void *so__own(slurmopt *o, void *p)
{
    if (o->nowned == o->capowned) {
        o->capowned = o->capowned ? 2 * o->capowned : 32;
        o->owned = realloc(o->owned, o->capowned * sizeof *o->owned);
        if (!o->owned)
            abort();
    }
    o->owned[o->nowned++] = p;
    return p;
}

static char *so__strdup(slurmopt *o, const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return so__own(o, d);
}

static void *so__calloc(slurmopt *o, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return so__own(o, p);
}

void slurmopt_free(slurmopt *o)
{
    for (size_t i = 0; i < o->nowned; i++)
        free(o->owned[i]);
    free(o->owned);
    free(o->occ);
    slurmopt_init(o);
}

/* Where an option came from, for messages: "job.sh line 4: " or "". */
static void so__where(const slurmopt *o, int line, char *s, size_t len)
{
    if (line > 0)
        snprintf(s, len, "%s line %d: ", o->script_path ? o->script_path : "script", line);
    else
        s[0] = '\0';
}

static int so__fail(slurmopt *o, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int so__fail(slurmopt *o, int line, const char *fmt, ...)
{
    char where[300];
    so__where(o, line, where, sizeof where);
    char msg[SLURMOPT_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(o->err, sizeof o->err, "%s%s", where, msg);
    return -1;
}

static void so__warn(slurmopt *o, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void so__warn(slurmopt *o, int line, const char *fmt, ...)
{
    char where[300];
    so__where(o, line, where, sizeof where);
    buf b = BUF_INIT;
    buf_puts(&b, where);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *w = so__strdup(o, buf_str(&b));
    buf_free(&b);
    for (size_t i = 0; i < o->nwarnings; i++)
        if (strcmp(o->warnings[i], w) == 0)
            return;
    char **ws = so__calloc(o, o->nwarnings + 1, sizeof *ws);
    if (o->nwarnings)
        memcpy(ws, o->warnings, o->nwarnings * sizeof *ws);
    ws[o->nwarnings++] = w;
    o->warnings = ws;
}

static void so__add(slurmopt *o, int id, const char *name, const char *value, int line)
{
    if (o->nocc == o->capocc) {
        o->capocc = o->capocc ? 2 * o->capocc : 32;
        o->occ = realloc(o->occ, o->capocc * sizeof *o->occ);
        if (!o->occ)
            abort();
    }
    slurmopt_occ oc = {id, so__strdup(o, name), value ? so__strdup(o, value) : NULL, line};
    o->occ[o->nocc++] = oc;
}

/* --- reading words ------------------------------------------------------------------------------ */

/* The option named name (len bytes) in the table: exact, else a unique
 * prefix (as getopt_long). NULL with the error in o->err. */
static const so_def *so__long(slurmopt *o, const char *name, size_t len, const slurmopt_extra *extra,
                              const slurmopt_extra **ex, int line)
{
    *ex = NULL;
    for (size_t i = 0; i < SO_TABLE_N; i++)
        if (strlen(so_table[i].name) == len && strncmp(so_table[i].name, name, len) == 0)
            return &so_table[i];
    for (const slurmopt_extra *e = extra; e && e->name; e++)
        if (strlen(e->name) == len && strncmp(e->name, name, len) == 0) {
            *ex = e;
            return NULL;
        }
    const so_def *found = NULL;
    const slurmopt_extra *found_ex = NULL;
    int n = 0;
    buf cands = BUF_INIT;
    for (size_t i = 0; i < SO_TABLE_N && len > 0; i++)
        if (strncmp(so_table[i].name, name, len) == 0) {
            if (!found || found->id != so_table[i].id || found->id >= SO_NOEFFECT)
                n++, buf_printf(&cands, " '--%s'", so_table[i].name);
            found = &so_table[i];
        }
    for (const slurmopt_extra *e = extra; e && e->name && len > 0; e++)
        if (strncmp(e->name, name, len) == 0)
            n++, found_ex = e, buf_printf(&cands, " '--%s'", e->name);
    if (n == 1) {
        buf_free(&cands);
        *ex = found_ex;
        return found_ex ? NULL : found;
    }
    if (n > 1)
        so__fail(o, line, "option '--%.*s' is ambiguous; possibilities:%s", (int)(len > 60 ? 60 : len), name,
                 buf_str(&cands));
    else
        so__fail(o, line, "unrecognized option '--%.*s' (see jz submit --help; sbatch's options are taken)",
                 (int)(len > 60 ? 60 : len), name);
    buf_free(&cands);
    return NULL;
}

static const so_def *so__short(char c)
{
    for (size_t i = 0; i < SO_TABLE_N; i++)
        if (so_table[i].shrt == c)
            return &so_table[i];
    return NULL;
}

/* One option found: recorded, warned about or refused. */
static int so__take(slurmopt *o, const so_def *d, const char *written, const char *value, int line)
{
    if (d->id == SO_UNSUPPORTED)
        return so__fail(o, line,
                        "%s is not supported here (it would change the job's resources, limits or "
                        "placement, which jz cannot honour): remove it",
                        written);
    if (d->id == SO_NOEFFECT) {
        so__warn(o, line, "warning: %s has no effect here (ignored)", written);
        return 0;
    }
    if (d->id == SO_WRAP && line > 0)
        return so__fail(o, line, "--wrap is for the command line, not a script: remove it");
    so__add(o, d->id, written, value, line);
    return 0;
}

/* Options in words[0..n): until the first positional (*stop: its index)
 * or `--` (*stop: the index after it, *dashdash). In a script (line > 0)
 * a positional is an error. */
static int so__options(slurmopt *o, int n, char *const *words, const slurmopt_extra *extra, int line,
                       int *stop, bool *dashdash)
{
    *dashdash = false;
    int i = 0;
    for (; i < n; i++) {
        const char *a = words[i];
        if (strcmp(a, "--") == 0) {
            *dashdash = true;
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (line > 0)
                return so__fail(o, line,
                                "unexpected argument '%.60s' in an option line: options only (quote "
                                "a value with spaces)",
                                a);
            break;
        }
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const slurmopt_extra *ex;
            const so_def *d = so__long(o, name, len, extra, &ex, line);
            if (ex) {
                const char *v = eq ? eq + 1 : NULL;
                if (ex->has_value && !v) {
                    if (i + 1 >= n)
                        return so__fail(o, line, "option '--%s' requires an argument", ex->name);
                    v = words[++i];
                }
                if (!ex->has_value && v)
                    return so__fail(o, line, "option '--%s' doesn't allow an argument", ex->name);
                buf w = BUF_INIT;
                buf_printf(&w, "--%s%s%s", ex->name, v ? "=" : "", v ? v : "");
                char **p = so__calloc(o, (size_t)o->npassed + 1, sizeof *p);
                if (o->npassed)
                    memcpy(p, o->passed, (size_t)o->npassed * sizeof *p);
                p[o->npassed++] = so__strdup(o, buf_str(&w));
                o->passed = p;
                buf_free(&w);
                continue;
            }
            if (!d)
                return -1;
            char written[80];
            snprintf(written, sizeof written, "--%s", d->name);
            const char *v = NULL;
            if (d->arg == ARG_NONE && eq)
                return so__fail(o, line, "option '--%s' doesn't allow an argument", d->name);
            if (eq)
                v = eq + 1;
            else if (d->arg == ARG_REQ) {
                if (i + 1 >= n)
                    return so__fail(o, line, "option '--%s' requires an argument", d->name);
                v = words[++i];
            }
            if (so__take(o, d, written, v, line) != 0)
                return -1;
            continue;
        }
        /* Short options, bundled: -Hv, -N2, -N 2. */
        for (const char *p = a + 1; *p; p++) {
            const so_def *d = so__short(*p);
            if (!d)
                return so__fail(o, line, "invalid option -- '%c' (see jz submit --help)", *p);
            char written[8];
            snprintf(written, sizeof written, "-%c", *p);
            const char *v = NULL;
            if (d->arg != ARG_NONE && p[1]) {
                v = p + 1;
            } else if (d->arg == ARG_REQ) {
                if (i + 1 >= n)
                    return so__fail(o, line, "option requires an argument -- '%c'", *p);
                v = words[++i];
            }
            if (so__take(o, d, written, v, line) != 0)
                return -1;
            if (v)
                break;
        }
    }
    *stop = i;
    return 0;
}

int slurmopt_parse_args(slurmopt *o, int argc, char *const *argv, const slurmopt_extra *extra)
{
    int stop = argc;
    bool dashdash;
    if (so__options(o, argc, argv, extra, 0, &stop, &dashdash) != 0)
        return -1;
    o->dashdash = dashdash;
    o->npos = argc - stop;
    o->pos = so__calloc(o, (size_t)o->npos + 1, sizeof *o->pos);
    for (int i = 0; i < o->npos; i++)
        o->pos[i] = so__strdup(o, argv[stop + i]);
    return 0;
}

/* The words of one option line, as sh splits them: blanks separate, '...'
 * is literal, "..." keeps its text but \" \\ \$ \`, a backslash outside
 * quotes keeps the next character, and a # that starts a word ends the
 * line. Returns the count (words in *out), or -1. */
static int so__split(slurmopt *o, const char *s, int line, char ***out)
{
    char **words = NULL;
    int n = 0;
    buf w = BUF_INIT;
    bool in_word = false;
    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\r' || (c == '#' && !in_word)) {
            if (in_word) {
                words = so__calloc(o, (size_t)n + 2, sizeof *words);
                if (n)
                    memcpy(words, *out, (size_t)n * sizeof *words);
                words[n++] = so__strdup(o, buf_str(&w));
                *out = words;
                buf_reset(&w);
                in_word = false;
            }
            if (c == '\0' || c == '#')
                break;
            continue;
        }
        in_word = true;
        if (c == '\\') {
            if (p[1])
                buf_putc(&w, *++p);
        } else if (c == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) {
                buf_free(&w);
                return so__fail(o, line, "unterminated ' quote: close it on the same line");
            }
            for (p++; p < end; p++)
                buf_putc(&w, *p);
        } else if (c == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                    p++;
                buf_putc(&w, *p);
            }
            if (!*p) {
                buf_free(&w);
                return so__fail(o, line, "unterminated \" quote: close it on the same line");
            }
        } else {
            buf_putc(&w, c);
        }
    }
    buf_free(&w);
    return n;
}

int slurmopt_parse_script(slurmopt *o, const char *path, const char *text)
{
    o->script_path = so__strdup(o, path ? path : "script");
    int lineno = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = malloc(len + 1);
        if (!line)
            abort();
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        lineno++;
        size_t skip = 0;
        if (strncmp(line, "#SBATCH", 7) == 0 && (line[7] == '\0' || isspace((unsigned char)line[7])))
            skip = 7;
        else if (strncmp(line, "#JZ", 3) == 0 && (line[3] == '\0' || isspace((unsigned char)line[3])))
            skip = 3;
        if (!skip) {
            bool blank = line[strspn(line, " \t\r\f\v")] == '\0';
            bool stop = !blank && line[0] != '#';
            free(line);
            if (stop)
                break; /* the first command ends the options */
            continue;
        }
        char **words = NULL;
        int n = so__split(o, line + skip, lineno, &words);
        free(line);
        if (n < 0)
            return -1;
        if (n == 0 || !words)
            continue;
        int stop;
        bool dashdash;
        if (so__options(o, n, words, NULL, lineno, &stop, &dashdash) != 0)
            return -1;
        if (dashdash)
            return so__fail(o, lineno, "'--' in an option line: options only");
    }
    return 0;
}

/* --- values ------------------------------------------------------------------------------------- */

int slurmopt_parse_time(const char *s, uint64_t *seconds)
{
    if (strcasecmp(s, "UNLIMITED") == 0 || strcasecmp(s, "INFINITE") == 0) {
        *seconds = JOB_TIME_UNLIMITED;
        return 0;
    }
    return cli_parse_time_limit(s, seconds);
}

int slurmopt_parse_size(const char *s, uint64_t *bytes)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mult = 1ull << 20;
    if (errno)
        return -1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mult = 1ull << 10;
            break;
        case 'M':
            mult = 1ull << 20;
            break;
        case 'G':
            mult = 1ull << 30;
            break;
        case 'T':
            mult = 1ull << 40;
            break;
        default:
            return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -1;
    }
    if (v > (1ull << 50) / mult)
        return -1;
    *bytes = v * mult;
    return 0;
}

static int so__uint(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The option's value that counts: the command line's last, else the
 * script's last. NULL if not given. */
static const slurmopt_occ *so__get(const slurmopt *o, int id)
{
    const slurmopt_occ *cmd = NULL, *script = NULL;
    for (size_t i = 0; i < o->nocc; i++)
        if (o->occ[i].id == id) {
            if (o->occ[i].line == 0)
                cmd = &o->occ[i];
            else
                script = &o->occ[i];
        }
    return cmd ? cmd : script;
}

/* Of two opposite flags, the one that counts (NULL: neither given). */
static const slurmopt_occ *so__get2(const slurmopt *o, int a, int b)
{
    const slurmopt_occ *x = so__get(o, a), *y = so__get(o, b);
    if (!x || !y)
        return x ? x : y;
    if ((x->line == 0) != (y->line == 0))
        return x->line == 0 ? x : y;
    return x > y ? x : y;
}

/* "[TYPE:]N" of --gpus and its kin. */
static int so__gpu_count(slurmopt *o, const slurmopt_occ *oc, uint32_t *n, const char **type)
{
    const char *colon = strrchr(oc->value, ':');
    *type = NULL;
    if (so__uint(colon ? colon + 1 : oc->value, 1, 1024, n) != 0 || (colon && colon == oc->value))
        return so__fail(o, oc->line, "bad %s '%.60s': [TYPE:]COUNT such as 4 or a100:4 (1 to 1024)", oc->name,
                        oc->value);
    if (colon) {
        char *t = so__strdup(o, oc->value);
        t[colon - oc->value] = '\0';
        *type = t;
    }
    return 0;
}

/* --gres=gpu[:TYPE][:N][,...]: GPUs are the only generic resource here. */
static int so__gres(slurmopt *o, const slurmopt_occ *oc, uint32_t *n, const char **type)
{
    char *copy = so__strdup(o, oc->value);
    bool seen = false;
    *n = 0;
    *type = NULL;
    for (char *save = NULL, *g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
        char *f[3];
        int nf = 0;
        for (char *s2 = NULL, *x = strtok_r(g, ":", &s2); x; x = strtok_r(NULL, ":", &s2))
            if (nf < 3)
                f[nf++] = x;
            else
                return so__fail(o, oc->line, "bad %s '%.60s': gpu[:TYPE]:COUNT", oc->name, oc->value);
        if (nf == 0)
            continue;
        if (strcmp(f[0], "gpu") != 0)
            return so__fail(o, oc->line,
                            "%s '%.60s': the generic resource '%.30s' is not supported here (only gpu, as "
                            "gpu[:TYPE]:COUNT)",
                            oc->name, oc->value, f[0]);
        if (seen)
            return so__fail(o, oc->line, "%s '%.60s': gpu given twice: once, as gpu[:TYPE]:COUNT", oc->name,
                            oc->value);
        seen = true;
        *n = 1;
        if (nf == 1)
            continue;
        bool counted = so__uint(f[nf - 1], 0, 1024, n) == 0;
        if (nf == 3 && !counted)
            return so__fail(o, oc->line, "bad %s '%.60s': gpu[:TYPE]:COUNT (1 to 1024)", oc->name, oc->value);
        if (!counted)
            *n = 1;
        if (nf == 3 || !counted)
            *type = f[1];
    }
    return 0;
}

/* --signal=[B:]SIG[@SECS]: USR1, SIGUSR1 or a number; 60 s ahead unless said. */
static int so__signal(const char *s, uint32_t *sig, uint32_t *secs, bool *batch_only)
{
    static const struct {
        const char *name;
        int num;
    } names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
                 {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"URG", SIGURG},
                 {"ALRM", SIGALRM}, {"KILL", SIGKILL}};
    *batch_only = false;
    if (strncmp(s, "B:", 2) == 0) {
        *batch_only = true;
        s += 2;
    }
    char word[16];
    const char *at = strchr(s, '@');
    size_t len = at ? (size_t)(at - s) : strlen(s);
    if (len >= sizeof word)
        return -1;
    memcpy(word, s, len);
    word[len] = '\0';
    const char *w = strncasecmp(word, "SIG", 3) == 0 ? word + 3 : word;
    *sig = len ? 0 : SIGUSR1;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && len; i++)
        if (strcasecmp(w, names[i].name) == 0)
            *sig = (uint32_t)names[i].num;
    if (len && !*sig && so__uint(word, 1, 64, sig) != 0)
        return -1;
    *secs = 60;
    if (at && so__uint(at + 1, 0, 365u * 86400, secs) != 0)
        return -1;
    return *sig >= 1 && *sig <= 64 ? 0 : -1;
}

/* Dependencies, into the spec's lists. */
typedef struct so_deps {
    uint64_t *ids[4]; /* after_ok, after_any, after_notok, after */
    size_t n[4];
    size_t total;
} so_deps;

static int so__dep_ids(slurmopt *o, const slurmopt_occ *oc, const char *ids, int kind, so_deps *d,
                       const slurmopt_ctx *ctx)
{
    char *copy = so__strdup(o, ids);
    if (!*copy)
        return so__fail(o, oc->line, "%s '%.60s': job ids missing, as afterok:12:13", oc->name, oc->value);
    for (char *save = NULL, *id = strtok_r(copy, ":", &save); id; id = strtok_r(NULL, ":", &save)) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(id, &end, 10);
        if (!isdigit((unsigned char)*id) || errno || v == 0)
            goto bad;
        uint64_t job = v;
        if (*end == '+')
            return so__fail(o, oc->line,
                            "%s '%.60s': a delay after a dependency (+MINUTES) is not supported here",
                            oc->name, oc->value);
        if (*end == '_') {
            uint32_t index;
            if (so__uint(end + 1, 0, JOB_ARRAY_INDEX_MAX, &index) != 0)
                goto bad;
            char err[256];
            if (!ctx->resolve)
                return so__fail(o, oc->line, "%s '%.60s': array tasks (ID_INDEX) cannot be resolved here",
                                oc->name, oc->value);
            if (ctx->resolve(ctx->resolve_arg, v, index, &job, err, sizeof err) != 0)
                return so__fail(o, oc->line, "%s %s: %s", oc->name, id, err);
        } else if (*end) {
            goto bad;
        }
        if (d->total == SLURMOPT_DEPS_MAX)
            return so__fail(o, oc->line, "more than %d dependencies", SLURMOPT_DEPS_MAX);
        d->ids[kind][d->n[kind]++] = job;
        d->total++;
    }
    return 0;
bad:
    return so__fail(o, oc->line,
                    "bad dependency %s '%.60s': job ids such as 12, 12:13, or 12_3 for task 3 of array 12",
                    oc->name, oc->value);
}

static int so__dependency(slurmopt *o, const slurmopt_occ *oc, so_deps *d, bool *singleton,
                          const slurmopt_ctx *ctx)
{
    if (strchr(oc->value, '?'))
        return so__fail(o, oc->line,
                        "%s '%.60s': '?' (any one of) is not supported here: ',' (all must hold) only",
                        oc->name, oc->value);
    static const char *kinds[] = {"afterok", "afterany", "afternotok", "after"};
    char *copy = so__strdup(o, oc->value);
    for (char *save = NULL, *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        if (strcmp(part, "singleton") == 0) {
            *singleton = true;
            continue;
        }
        char *colon = strchr(part, ':');
        int kind = -1;
        for (int k = 0; k < 4 && colon; k++)
            if (strlen(kinds[k]) == (size_t)(colon - part) &&
                strncmp(part, kinds[k], (size_t)(colon - part)) == 0)
                kind = k;
        if (kind < 0)
            return so__fail(o, oc->line,
                            "%s '%.60s': '%.30s' is not supported here: afterok, afterany, afternotok, after "
                            "(TYPE:ID[:ID...]) or singleton, joined by ','",
                            oc->name, oc->value, part);
        if (so__dep_ids(o, oc, colon + 1, kind, d, ctx) != 0)
            return -1;
    }
    return 0;
}

/* Adds KEY=VALUE unless KEY is there already (the first one wins). */
static int so__env_add(slurmopt *o, char **env, size_t *n, size_t *bytes, const char *kv, int line)
{
    const char *eq = strchr(kv, '=');
    size_t klen = (size_t)(eq - kv) + 1;
    for (size_t i = 0; i < *n; i++)
        if (strncmp(env[i], kv, klen) == 0)
            return 0;
    if (*n == SLURMOPT_ENV_MAX)
        return so__fail(o, line,
                        "more than %d environment variables to export: --export=NONE, or "
                        "--export=VAR,VAR=VALUE for the ones the job needs",
                        SLURMOPT_ENV_MAX);
    *bytes += strlen(kv) + 1;
    if (*bytes > SLURMOPT_ENV_BYTES_MAX)
        return so__fail(o, line,
                        "the environment to export is over %u KiB: --export=NONE, or "
                        "--export=VAR,VAR=VALUE for the ones the job needs",
                        SLURMOPT_ENV_BYTES_MAX >> 10);
    env[(*n)++] = (char *)kv;
    return 0;
}

static int so__export(slurmopt *o, const slurmopt_ctx *ctx)
{
    const slurmopt_occ *ex = so__get(o, SO_EXPORT);
    const char *v = ex ? ex->value : "ALL";
    int line = ex ? ex->line : 0;
    char **env = so__calloc(o, SLURMOPT_ENV_MAX + 1, sizeof *env);
    size_t n = 0, bytes = 0;
    /* jz's --env first (script's, then the command line's). */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < o->nocc; i++) {
            const slurmopt_occ *oc = &o->occ[i];
            if (oc->id != SO_ENV || (oc->line == 0) != (pass == 1))
                continue;
            const char *eq = strchr(oc->value, '=');
            if (!eq || eq == oc->value)
                return so__fail(o, oc->line, "bad --env '%.60s': KEY=VALUE", oc->value);
            if (!utf8_valid(oc->value, strlen(oc->value)))
                return so__fail(o, oc->line, "bad --env '%.60s': not UTF-8 text", oc->value);
            if (so__env_add(o, env, &n, &bytes, oc->value, oc->line) != 0)
                return -1;
        }
    bool all = false;
    char *copy = so__strdup(o, v);
    for (char *save = NULL, *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "ALL") == 0) {
            all = true;
            continue;
        }
        if (strcmp(w, "NONE") == 0 || strcmp(w, "NIL") == 0)
            continue;
        const char *eq = strchr(w, '=');
        size_t klen = eq ? (size_t)(eq - w) : strlen(w);
        bool name_ok = klen > 0 && (isalpha((unsigned char)w[0]) || w[0] == '_');
        for (size_t k = 0; k < klen; k++)
            name_ok = name_ok && (isalnum((unsigned char)w[k]) || w[k] == '_');
        if (!name_ok)
            return so__fail(o, line, "bad --export '%.60s': ALL, NONE, or VAR and VAR=VALUE separated by ','",
                            v);
        if (eq) {
            if (!utf8_valid(w, strlen(w)))
                return so__fail(o, line, "bad --export %.60s: not UTF-8 text", w);
            if (so__env_add(o, env, &n, &bytes, w, line) != 0)
                return -1;
            continue;
        }
        for (char *const *e = ctx->environ; e && *e; e++)
            if (strncmp(*e, w, klen) == 0 && (*e)[klen] == '=') {
                if (!utf8_valid(*e, strlen(*e)))
                    return so__fail(o, line, "--export %.60s: its value is not UTF-8 text", w);
                if (so__env_add(o, env, &n, &bytes, *e, line) != 0)
                    return -1;
            }
    }
    for (char *const *e = all ? ctx->environ : NULL; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e)
            continue;
        if (!utf8_valid(*e, strlen(*e))) {
            so__warn(o, line, "warning: the variable %.*s is not UTF-8 text: not exported", (int)(eq - *e),
                     *e);
            continue;
        }
        if (so__env_add(o, env, &n, &bytes, *e, line) != 0)
            return -1;
    }
    o->spec.env = env;
    o->spec.n_env = n;
    return 0;
}

bool slurmopt_option(size_t i, slurmopt_info *out)
{
    if (i >= sizeof so_table / sizeof *so_table)
        return false;
    const so_def *d = &so_table[i];
    out->name = d->name;
    out->shrt = d->shrt;
    out->has_value = d->arg == ARG_REQ;
    out->effective = d->id != SO_NOEFFECT && d->id != SO_UNSUPPORTED && d->id != SO_EXTRA;
    return true;
}

bool slurmopt_given(const slurmopt *o, const char *long_name)
{
    for (size_t i = 0; i < SO_TABLE_N; i++)
        if (strcmp(so_table[i].name, long_name) == 0)
            return so_table[i].id < SO_NOEFFECT && so__get(o, so_table[i].id) != NULL;
    return false;
}

static const char *so__str(const slurmopt *o, int id)
{
    const slurmopt_occ *oc = so__get(o, id);
    return oc ? oc->value : "";
}

/* --- mapping ------------------------------------------------------------------------------------ */

int slurmopt_build(slurmopt *o, const slurmopt_ctx *ctx)
{
    Jazari__JobSpec *s = &o->spec;
    const slurmopt_occ *oc;
    o->err[0] = '\0';
    o->parsable = so__get(o, SO_PARSABLE) != NULL;
    o->wait = so__get(o, SO_WAIT) != NULL;
    o->quiet = so__get(o, SO_QUIET) != NULL;
    oc = so__get(o, SO_CLUSTERS);
    o->cluster = NULL;
    if (oc) {
        /* One cluster: this network (its name is the leader's, unknown here). */
        size_t len = strlen(oc->value);
        if (len == 0 || len > 64 || strpbrk(oc->value, ", \t") || strcmp(oc->value, "all") == 0)
            return so__fail(o, oc->line, "%s '%.64s': one cluster name only (this network is one cluster)",
                            oc->name, oc->value);
        o->cluster = oc->value;
    }

    /* Names and places. */
    oc = so__get(o, SO_JOB_NAME);
    s->name = (char *)(oc ? oc->value : ctx->default_name ? ctx->default_name : "");
    s->output = (char *)so__str(o, SO_OUTPUT);
    s->error = (char *)so__str(o, SO_ERROR);
    if ((oc = so__get(o, SO_OPEN_MODE))) {
        if (strcmp(oc->value, "truncate") == 0 || strcmp(oc->value, "t") == 0)
            s->output_truncate = true;
        else if (strcmp(oc->value, "append") != 0 && strcmp(oc->value, "a") != 0)
            return so__fail(o, oc->line, "bad %s '%.40s': append or truncate", oc->name, oc->value);
    }
    s->submit_dir = (char *)(ctx->cwd ? ctx->cwd : "");
    s->submit_host = (char *)(ctx->host ? ctx->host : "");
    oc = so__get(o, SO_CHDIR);
    s->workdir = (char *)(oc ? oc->value : s->submit_dir);
    s->site = (char *)so__str(o, SO_SITE);
    s->data = (char *)so__str(o, SO_DATA);
    s->span_sites = so__get(o, SO_SPAN_SITES) != NULL;
    s->account = (char *)so__str(o, SO_ACCOUNT);
    s->qos = (char *)so__str(o, SO_QOS);
    s->reservation = (char *)so__str(o, SO_RESERVATION);
    s->partition = (char *)so__str(o, SO_PARTITION);
    oc = so__get(o, SO_PARTITION);
    if (*s->partition && (s->partition[0] == ',' || strstr(s->partition, ",,") ||
                          s->partition[strlen(s->partition) - 1] == ','))
        return so__fail(o, oc ? oc->line : 0, "bad --partition '%.60s': NAME[,NAME...]", s->partition);
    if ((oc = so__get(o, SO_CONSTRAINT))) {
        if (strpbrk(oc->value, "|[]*"))
            return so__fail(o, oc->line,
                            "%s '%.60s': only labels that must all hold are supported here (a&b or a,b), not "
                            "'|', brackets or counts",
                            oc->name, oc->value);
        char *c = so__strdup(o, oc->value);
        for (char *p = c; *p; p++)
            if (*p == '&')
                *p = ',';
        s->constraint = c;
    } else {
        s->constraint = "";
    }

    /* Nodes and tasks. */
    uint32_t nodes = 0, nodes_max = 0, ntasks = 0, tpn = 0;
    if ((oc = so__get(o, SO_NODES))) {
        char *copy = so__strdup(o, oc->value), *dash = strchr(copy, '-');
        if (dash)
            *dash = '\0';
        if (so__uint(copy, 1, 4096, &nodes) != 0 || (dash && so__uint(dash + 1, 1, 4096, &nodes_max) != 0) ||
            (dash && nodes_max < nodes))
            return so__fail(o, oc->line,
                            "bad %s '%.40s': a node count N or MIN-MAX, at least one node, at most 4096",
                            oc->name, oc->value);
        if (nodes_max == nodes)
            nodes_max = 0;
    }
    const slurmopt_occ *ontasks = so__get(o, SO_NTASKS), *otpn = so__get(o, SO_NTASKS_PER_NODE);
    if (ontasks && so__uint(ontasks->value, 1, 1u << 20, &ntasks) != 0)
        return so__fail(o, ontasks->line, "bad %s '%.40s': a task count, at least 1", ontasks->name,
                        ontasks->value);
    if (otpn && so__uint(otpn->value, 1, 1024, &tpn) != 0)
        return so__fail(o, otpn->line, "bad %s '%.40s': tasks on each node, 1 to 1024", otpn->name,
                        otpn->value);
    if (ntasks) {
        if (nodes && tpn) {
            if ((uint64_t)nodes * tpn < ntasks)
                return so__fail(
                    o, ontasks->line,
                    "--ntasks %u is more than --nodes %u x --ntasks-per-node %u: raise one of them", ntasks,
                    nodes, tpn);
        } else if (nodes) {
            if (ntasks < nodes)
                return so__fail(o, ontasks->line,
                                "--ntasks %u is fewer than --nodes %u: a task on each node at "
                                "least",
                                ntasks, nodes);
            tpn = (ntasks + nodes - 1) / nodes;
        } else if (tpn) {
            nodes = (ntasks + tpn - 1) / tpn;
        } else {
            nodes = 1;
            tpn = ntasks;
        }
        if (tpn > 1024)
            return so__fail(o, ontasks->line, "--ntasks %u: %u tasks on a node, at most 1024: add --nodes",
                            ntasks, tpn);
        if (nodes > 4096)
            return so__fail(o, ontasks->line, "--ntasks %u: more than 4096 nodes", ntasks);
    }
    s->nodes = nodes;
    s->nodes_max = nodes_max;
    s->ntasks = ntasks;
    s->tasks_per_node = tpn;
    uint32_t tasks_here = tpn ? tpn : 1;

    /* GPUs. */
    const slurmopt_occ *g[4] = {so__get(o, SO_GRES), so__get(o, SO_GPUS), so__get(o, SO_GPUS_PER_NODE),
                                so__get(o, SO_GPUS_PER_TASK)};
    const slurmopt_occ *gpu_opt = NULL;
    for (int i = 0; i < 4; i++)
        if (g[i]) {
            if (gpu_opt)
                return so__fail(o, g[i]->line,
                                "%s and %s both ask for GPUs: give one of --gres, --gpus, --gpus-per-node, "
                                "--gpus-per-task",
                                gpu_opt->name, g[i]->name);
            gpu_opt = g[i];
        }
    const char *type = NULL;
    uint32_t count = 0;
    if (g[0] && so__gres(o, g[0], &count, &type) != 0)
        return -1;
    if (g[0])
        s->gpus_per_node = count;
    if (g[1]) {
        if (so__gpu_count(o, g[1], &count, &type) != 0)
            return -1;
        if (!s->nodes)
            s->nodes = 1;
        if (count % s->nodes != 0)
            return so__fail(o, g[1]->line,
                            "%s %u is not a multiple of --nodes %u: each node gets the same number of GPUs; "
                            "use --gpus-per-node",
                            g[1]->name, count, s->nodes);
        s->gpus_per_node = count / s->nodes;
    }
    if (g[2]) {
        if (so__gpu_count(o, g[2], &count, &type) != 0)
            return -1;
        s->gpus_per_node = count;
    }
    if (g[3]) {
        if (so__gpu_count(o, g[3], &count, &type) != 0)
            return -1;
        s->gpus_per_task = count;
        if ((uint64_t)count * tasks_here > 1024)
            return so__fail(o, g[3]->line, "%s %u x %u tasks on a node: more than 1024 GPUs", g[3]->name,
                            count, tasks_here);
        s->gpus_per_node = count * tasks_here;
    }
    const slurmopt_occ *model = so__get(o, SO_GPU_MODEL);
    s->gpu_model = (char *)(model ? model->value : type ? type : "");
    if (model && type && strcasecmp(model->value, type) != 0)
        return so__fail(o, model->line, "--gpu-model %.40s and %s %.40s differ: give the model once",
                        model->value, gpu_opt->name, type);

    /* CPUs. */
    const slurmopt_occ *ocpt = so__get(o, SO_CPUS_PER_TASK), *ocpg = so__get(o, SO_CPUS_PER_GPU);
    if (ocpt && ocpg)
        return so__fail(o, ocpg->line, "--cpus-per-gpu and --cpus-per-task are mutually exclusive: give one");
    if (ocpt && so__uint(ocpt->value, 1, 4096, &s->cpus_per_task) != 0)
        return so__fail(o, ocpt->line, "bad %s '%.40s': 1 to 4096", ocpt->name, ocpt->value);
    if (ocpg) {
        if (so__uint(ocpg->value, 1, 4096, &s->cpus_per_gpu) != 0)
            return so__fail(o, ocpg->line, "bad %s '%.40s': 1 to 4096", ocpg->name, ocpg->value);
        if (!s->gpus_per_node)
            return so__fail(o, ocpg->line, "%s needs GPUs: add --gpus, --gpus-per-node or --gres=gpu:N",
                            ocpg->name);
        uint64_t c = ((uint64_t)s->cpus_per_gpu * s->gpus_per_node + tasks_here - 1) / tasks_here;
        if (c > 4096)
            return so__fail(o, ocpg->line, "%s %u: %llu CPUs for each task, more than 4096", ocpg->name,
                            s->cpus_per_gpu, (unsigned long long)c);
        s->cpus_per_task = (uint32_t)c;
    }

    /* Memory. */
    const slurmopt_occ *m[3] = {so__get(o, SO_MEM), so__get(o, SO_MEM_PER_CPU), so__get(o, SO_MEM_PER_GPU)};
    const slurmopt_occ *mem_opt = NULL;
    for (int i = 0; i < 3; i++)
        if (m[i]) {
            if (mem_opt)
                return so__fail(o, m[i]->line, "%s and %s are mutually exclusive: give one", mem_opt->name,
                                m[i]->name);
            mem_opt = m[i];
        }
    if (mem_opt) {
        uint64_t size;
        if (slurmopt_parse_size(mem_opt->value, &size) != 0)
            return so__fail(o, mem_opt->line,
                            "bad %s '%.40s': a size such as 16G or 512M (a bare number is MiB)",
                            mem_opt->name, mem_opt->value);
        if (mem_opt == m[0]) {
            s->mem_bytes = size;
            s->mem_all = size == 0;
        } else if (size == 0) {
            return so__fail(o, mem_opt->line, "%s 0: a size above 0 (--mem=0 is all of each node's memory)",
                            mem_opt->name);
        } else if (mem_opt == m[1]) {
            s->mem_bytes = size * (s->cpus_per_task ? s->cpus_per_task : 1) * tasks_here;
        } else {
            if (!s->gpus_per_node)
                return so__fail(o, mem_opt->line,
                                "%s needs GPUs: add --gpus, --gpus-per-node or --gres=gpu:N", mem_opt->name);
            s->mem_bytes = size * s->gpus_per_node;
        }
    }
    if ((oc = so__get(o, SO_GPU_MEM)) &&
        (slurmopt_parse_size(oc->value, &s->min_gpu_mem) != 0 || !s->min_gpu_mem))
        return so__fail(o, oc->line,
                        "bad --gpu-mem '%.40s': a size such as 40G (each GPU's memory, at least)", oc->value);
    if ((oc = so__get(o, SO_EXCLUSIVE))) {
        if (oc->value && strcmp(oc->value, "exclusive") != 0)
            return so__fail(o, oc->line, "%s=%.20s is not supported here: --exclusive (whole nodes) only",
                            oc->name, oc->value);
        s->exclusive = true;
    }

    /* Limits and lifecycle. */
    if ((oc = so__get(o, SO_TIME)) && slurmopt_parse_time(oc->value, &s->time_limit_s) != 0)
        return so__fail(
            o, oc->line,
            "bad %s '%.40s': minutes (90), M:S, H:M:S (1:30:00), D-H, D-H:M, D-H:M:S (2-00:00:00) up "
            "to 365 days, or UNLIMITED",
            oc->name, oc->value);
    s->hold = so__get(o, SO_HOLD) != NULL;
    oc = so__get2(o, SO_REQUEUE, SO_NO_REQUEUE);
    s->no_requeue = oc && oc->id == SO_NO_REQUEUE;
    if ((oc = so__get(o, SO_SIGNAL))) {
        if (strncmp(oc->value, "R:", 2) == 0 || strncmp(oc->value, "BR:", 3) == 0 ||
            strncmp(oc->value, "RB:", 3) == 0)
            return so__fail(o, oc->line, "%s '%.40s': R: (reservations' end) is not supported here", oc->name,
                            oc->value);
        bool batch_only;
        int rc = so__signal(oc->value, &s->warn_signal, &s->warn_secs, &batch_only);
        s->signal_batch_only = batch_only;
        if (rc != 0)
            return so__fail(
                o, oc->line,
                "bad %s '%.40s': [B:][SIG][@SECONDS], e.g. USR1@120 (the signal that many seconds "
                "before the time limit; 60 by default)",
                oc->name, oc->value);
        if (!s->time_limit_s)
            return so__fail(o, oc->line, "%s needs a --time limit to be ahead of", oc->name);
    }
    if ((oc = so__get(o, SO_ARRAY))) {
        size_t n;
        uint32_t throttle;
        char err[256];
        if (strlen(oc->value) > 256)
            return so__fail(o, oc->line, "%s: at most 256 characters", oc->name);
        if (jobspec_array_parse(oc->value, NULL, JOB_ARRAY_MAX, &n, &throttle, err, sizeof err) != 0)
            return so__fail(o, oc->line, "%s", err);
        s->array = (char *)oc->value;
    } else {
        s->array = "";
    }

    /* Dependencies: -d (the command line's, else the script's), and jz's
     * --after-ok / --after-any (all of them). */
    so_deps d;
    memset(&d, 0, sizeof d);
    for (int k = 0; k < 4; k++)
        d.ids[k] = so__calloc(o, SLURMOPT_DEPS_MAX, sizeof(uint64_t));
    bool cmd_dep = false, singleton = false;
    for (size_t i = 0; i < o->nocc; i++)
        cmd_dep = cmd_dep || (o->occ[i].id == SO_DEPENDENCY && o->occ[i].line == 0);
    for (size_t i = 0; i < o->nocc; i++) {
        const slurmopt_occ *x = &o->occ[i];
        int rc = 0;
        if (x->id == SO_DEPENDENCY && (x->line == 0 || !cmd_dep))
            rc = so__dependency(o, x, &d, &singleton, ctx);
        else if (x->id == SO_AFTER_OK || x->id == SO_AFTER_ANY)
            rc = so__dep_ids(o, x, x->value, x->id == SO_AFTER_OK ? 0 : 1, &d, ctx);
        if (rc != 0)
            return -1;
    }
    s->singleton = singleton;
    s->after_ok = d.ids[0], s->n_after_ok = d.n[0];
    s->after_any = d.ids[1], s->n_after_any = d.n[1];
    s->after_notok = d.ids[2], s->n_after_notok = d.n[2];
    s->after = d.ids[3], s->n_after = d.n[3];

    /* What runs. */
    if ((oc = so__get(o, SO_WRAP))) {
        if (o->npos > 0)
            return so__fail(o, 0, "--wrap and '%.60s': give either a command to wrap or a script", o->pos[0]);
        buf b = BUF_INIT;
        buf_printf(&b, "#!/bin/sh\n%s\n", oc->value);
        s->script = so__strdup(o, buf_str(&b));
        buf_free(&b);
        s->batch = true;
        o->wrap = true;
        if (!so__get(o, SO_JOB_NAME))
            s->name = "wrap";
    }
    return so__export(o, ctx);
}

/* slurm_sacct.c - sacct: jobs and their steps from the queue (pending,
 * running, and the ended ones it still holds, with their steps), and the
 * jobs it has forgotten from the controllers' history (jz history), so
 * that sacct -S over last month shows last month. */
#include <ctype.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "slurm.h"

enum {
    SA_JOBID,
    SA_JOBIDRAW,
    SA_JOBNAME,
    SA_USER,
    SA_ACCOUNT,
    SA_PARTITION,
    SA_STATE,
    SA_EXITCODE,
    SA_ELAPSED,
    SA_START,
    SA_END,
    SA_SUBMIT,
    SA_NNODES,
    SA_NODELIST,
    SA_ALLOCCPUS,
    SA_ALLOCTRES,
    SA_TIMELIMIT
};

static const struct {
    const char *name;
    int width;
} sacct__fields[] = {
    [SA_JOBID] = {"JobID", 12},
    [SA_JOBIDRAW] = {"JobIDRaw", 12},
    [SA_JOBNAME] = {"JobName", 10},
    [SA_USER] = {"User", 9},
    [SA_ACCOUNT] = {"Account", 10},
    [SA_PARTITION] = {"Partition", 10},
    [SA_STATE] = {"State", 10},
    [SA_EXITCODE] = {"ExitCode", 8},
    [SA_ELAPSED] = {"Elapsed", 10},
    [SA_START] = {"Start", 19},
    [SA_END] = {"End", 19},
    [SA_SUBMIT] = {"Submit", 19},
    [SA_NNODES] = {"NNodes", 8},
    [SA_NODELIST] = {"NodeList", 15},
    [SA_ALLOCCPUS] = {"AllocCPUS", 10},
    [SA_ALLOCTRES] = {"AllocTRES", 10},
    [SA_TIMELIMIT] = {"Timelimit", 10},
};
#define SACCT_NFIELDS (sizeof sacct__fields / sizeof *sacct__fields)
#define SACCT_COLS_MAX 64

typedef struct sacct {
    cli *c;
    int cols[SACCT_COLS_MAX], widths[SACCT_COLS_MAX];
    size_t ncols;
    bool allocations, parsable, parsable2, noheader;
    const char *jobs, *users, *states, *names;
    int64_t start_ms, end_ms; /* the window; 0: open */
    int64_t now_ms;
    buf *b;
    /* The history's jobs that pass the filters, by id (copies: freed at the
     * end); those up to `next` have been printed or met in the queue. */
    Jazari__HistJob **hist;
    size_t nhist, caphist, next;
} sacct;

/* Whether v is one of the comma list's words (NULL list: yes). */
static bool sacct__in(const char *list, const char *v, bool nocase)
{
    if (!list)
        return true;
    size_t vl = strlen(v);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == vl && (nocase ? strncasecmp(p, v, l) : strncmp(p, v, l)) == 0)
            return true;
        p += l + (p[l] == ',');
    }
    return false;
}

/* A row: the job itself (step NULL, batch false), its batch step, or a step. */
typedef struct sacct_row {
    const Jazari__Job *job;
    bool batch;
    const Jazari__JobStep *step;
} sacct_row;

static void sacct__exit(buf *b, Jazari__JobState st, int code)
{
    if (st == JAZARI__JOB_STATE__JOB_PENDING || st == JAZARI__JOB_STATE__JOB_RUNNING)
        buf_puts(b, "0:0");
    else if (code < 0)
        buf_printf(b, "0:%d", -code);
    else if (code > 128 && code < 160)
        buf_printf(b, "0:%d", code - 128); /* killed by a signal */
    else
        buf_printf(b, "%d:0", code);
}

static void sacct__field(sacct *a, buf *b, int f, const sacct_row *r)
{
    const Jazari__Job *job = r->job;
    const Jazari__JobSpec *s = job->spec;
    const Jazari__JobStep *st = r->step;
    char id[48];
    Jazari__JobState state = st ? st->state : job->state;
    int64_t t0 = st ? st->start_time_ms : job->start_time_ms;
    int64_t t1 = st ? st->end_time_ms : job->end_time_ms;
    bool ended = st ? st->state != JAZARI__JOB_STATE__JOB_RUNNING : cli_job_ended(job);
    switch (f) {
    case SA_JOBID:
    case SA_JOBIDRAW:
        if (f == SA_JOBID)
            buf_puts(b, cli_job_id_str(job, id, sizeof id));
        else
            buf_printf(b, "%llu", (unsigned long long)job->id);
        if (r->batch)
            buf_puts(b, ".batch");
        else if (st)
            buf_printf(b, ".%u", st->id);
        break;
    case SA_JOBNAME:
        if (r->batch)
            buf_puts(b, "batch");
        else if (st)
            buf_puts(b, st->spec && st->spec->name && *st->spec->name ? st->spec->name
                        : st->spec && st->spec->n_argv                ? st->spec->argv[0]
                                                                      : "");
        else
            buf_puts(b, s && s->name ? s->name : "");
        break;
    case SA_USER:
        if (!st && !r->batch)
            buf_puts(b, job->user ? job->user : "");
        break;
    case SA_ACCOUNT:
        buf_puts(b, s && s->account ? s->account : "");
        break;
    case SA_PARTITION:
        if (!st && !r->batch)
            buf_puts(b, job->partition && *job->partition ? job->partition
                        : s && s->partition               ? s->partition
                                                          : "");
        break;
    case SA_STATE:
        buf_puts(b, cli_job_state(state));
        break;
    case SA_EXITCODE:
        sacct__exit(b, state, st ? st->exit_code : job->exit_code);
        break;
    case SA_ELAPSED: {
        int64_t e = t0 > 0 ? ((ended && t1 > 0 ? t1 : a->now_ms) - t0) / 1000 : 0;
        slurm_duration(b, e > 0 ? (uint64_t)e : 0, false);
        break;
    }
    case SA_START:
        slurm_time(b, t0, "Unknown");
        break;
    case SA_END:
        slurm_time(b, ended ? t1 : 0, "Unknown");
        break;
    case SA_SUBMIT:
        slurm_time(b, st ? st->start_time_ms : job->submit_time_ms, "Unknown");
        break;
    case SA_NNODES:
        buf_printf(b, "%zu",
                   st              ? st->n_ranks
                   : r->batch      ? 1
                   : job->n_allocs ? job->n_allocs
                                   : (size_t)(s && s->nodes ? s->nodes : 1));
        break;
    case SA_NODELIST:
        if (r->batch)
            buf_puts(b, job->n_allocs ? job->allocs[0]->node : "None assigned");
        else if (st) {
            const char **names = calloc(st->n_ranks + 1, sizeof *names);
            if (!names)
                abort();
            size_t k = 0;
            for (size_t i = 0; i < st->n_ranks; i++)
                if (st->ranks[i] < job->n_allocs)
                    names[k++] = job->allocs[st->ranks[i]]->node;
            slurm_hostlist(b, names, k);
            free(names);
        } else
            slurm_job_nodes(b, job, "None assigned");
        break;
    case SA_ALLOCCPUS:
        buf_printf(b, "%llu", (unsigned long long)(job->start_time_ms > 0 ? slurm_job_cpus(job) : 0));
        break;
    case SA_ALLOCTRES:
        if (job->start_time_ms > 0) {
            buf_printf(b, "cpu=%llu,node=%zu", (unsigned long long)slurm_job_cpus(job), job->n_allocs);
            if (s && s->gpus_per_node)
                buf_printf(b, ",gres/gpu=%llu", (unsigned long long)s->gpus_per_node * job->n_allocs);
        }
        break;
    case SA_TIMELIMIT:
        if (!st && !r->batch)
            slurm_duration(b, s ? s->time_limit_s : 0, true);
        break;
    default:
        break;
    }
}

static void sacct__cell(sacct *a, size_t i, const buf *v)
{
    const char *t = v->data ? v->data : "";
    if (a->parsable || a->parsable2) {
        buf_printf(a->b, "%s%s", i ? "|" : "", t);
    } else {
        int w = a->widths[i];
        if ((int)v->len > w) /* as sacct: cut, with a '+' */
            buf_printf(a->b, "%s%.*s+", i ? " " : "", w - 1, t);
        else if (a->cols[i] == SA_JOBID || a->cols[i] == SA_JOBIDRAW)
            buf_printf(a->b, "%s%-*s", i ? " " : "", w, t);
        else
            buf_printf(a->b, "%s%*s", i ? " " : "", w, t);
    }
}

static void sacct__row(sacct *a, const sacct_row *r)
{
    for (size_t i = 0; i < a->ncols; i++) {
        buf v = BUF_INIT;
        sacct__field(a, &v, a->cols[i], r);
        sacct__cell(a, i, &v);
        buf_free(&v);
    }
    buf_puts(a->b, a->parsable ? "|\n" : "\n");
}

/* --- the jobs the queue has forgotten: from the history ------------------------------------------ */

static void sacct__hist_field(sacct *a, buf *b, int f, const Jazari__HistJob *h)
{
    switch (f) {
    case SA_JOBID:
        if (h->array_job_id)
            buf_printf(b, "%llu_%u", (unsigned long long)h->array_job_id, h->array_index);
        else
            buf_printf(b, "%llu", (unsigned long long)h->id);
        break;
    case SA_JOBIDRAW:
        buf_printf(b, "%llu", (unsigned long long)h->id);
        break;
    case SA_JOBNAME:
        buf_puts(b, h->name ? h->name : "");
        break;
    case SA_USER:
        buf_puts(b, h->user ? h->user : "");
        break;
    case SA_ACCOUNT:
        buf_puts(b, h->account ? h->account : "");
        break;
    case SA_PARTITION:
        buf_puts(b, h->partition ? h->partition : "");
        break;
    case SA_STATE:
        buf_puts(b, cli_job_state(h->state));
        break;
    case SA_EXITCODE:
        if (h->signal)
            buf_printf(b, "0:%u", h->signal);
        else
            sacct__exit(b, h->state, h->exit_code);
        break;
    case SA_ELAPSED:
        slurm_duration(b, h->elapsed_ms / 1000, false);
        break;
    case SA_START:
        slurm_time(b, h->start_ms, "Unknown");
        break;
    case SA_END:
        slurm_time(b, h->end_ms, "Unknown");
        break;
    case SA_SUBMIT:
        slurm_time(b, h->submit_ms, "Unknown");
        break;
    case SA_NNODES:
        buf_printf(b, "%u", h->nodes);
        break;
    case SA_NODELIST:
        buf_puts(b, h->node_list && *h->node_list ? h->node_list : "None assigned");
        break;
    case SA_ALLOCCPUS:
        buf_printf(b, "%u", h->start_ms > 0 ? h->cpus : 0);
        break;
    case SA_ALLOCTRES:
        if (h->start_ms > 0) {
            buf_printf(b, "cpu=%u,node=%u", h->cpus, h->nodes);
            if (h->gpus)
                buf_printf(b, ",gres/gpu=%u", h->gpus);
        }
        break;
    case SA_TIMELIMIT:
        slurm_duration(b, h->time_limit_s, true);
        break;
    default:
        break;
    }
    (void)a;
}

static void sacct__hist_row(sacct *a, const Jazari__HistJob *h)
{
    for (size_t i = 0; i < a->ncols; i++) {
        buf v = BUF_INIT;
        sacct__hist_field(a, &v, a->cols[i], h);
        sacct__cell(a, i, &v);
        buf_free(&v);
    }
    buf_puts(a->b, a->parsable ? "|\n" : "\n");
}

/* Whether a job passes -j, -u, --name, -s (by its ids, user, name, state). */
static bool sacct__wanted(const sacct *a, uint64_t id, uint64_t array_id, const char *id_str,
                          const char *user, const char *name, Jazari__JobState state)
{
    char raw[32], arr[32];
    if (a->jobs) {
        snprintf(raw, sizeof raw, "%llu", (unsigned long long)id);
        snprintf(arr, sizeof arr, "%llu", (unsigned long long)array_id);
        if (!sacct__in(a->jobs, raw, false) && !(array_id && sacct__in(a->jobs, arr, false)) &&
            !sacct__in(a->jobs, id_str, false))
            return false;
    }
    if (!sacct__in(a->users, user ? user : "", false) || !sacct__in(a->names, name ? name : "", false))
        return false;
    if (a->states) {
        static const char *const shorts[] = {"PD", "R", "CD", "F", "CA", "TO", "NF", "PR"};
        const char *sh = (unsigned)state < 8 ? shorts[state] : "";
        if (!sacct__in(a->states, cli_job_state(state), true) && !sacct__in(a->states, sh, true))
            return false;
    }
    return true;
}

static int sacct__hist_keep(const Jazari__HistJob *h, void *arg)
{
    sacct *a = arg;
    char id[48];
    if (h->array_job_id)
        snprintf(id, sizeof id, "%llu_%u", (unsigned long long)h->array_job_id, h->array_index);
    else
        snprintf(id, sizeof id, "%llu", (unsigned long long)h->id);
    if (!sacct__wanted(a, h->id, h->array_job_id, id, h->user, h->name, h->state))
        return 0;
    /* The window: jobs that were there within it (the history gave those
     * that ended after its start). */
    if (a->end_ms && h->submit_ms > a->end_ms)
        return 0;
    if (a->nhist == a->caphist) {
        a->caphist = a->caphist ? 2 * a->caphist : 64;
        a->hist = realloc(a->hist, a->caphist * sizeof(Jazari__HistJob *));
        if (!a->hist)
            abort();
    }
    /* The page is freed after this: a copy of the job. */
    size_t len = jazari__hist_job__get_packed_size(h);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        abort();
    jazari__hist_job__pack(h, bytes);
    Jazari__HistJob *copy = jazari__hist_job__unpack(NULL, len, bytes);
    free(bytes);
    if (!copy)
        abort();
    a->hist[a->nhist++] = copy;
    return 0;
}

static int sacct__hist_cmp(const void *x, const void *y)
{
    const Jazari__HistJob *p = *(Jazari__HistJob *const *)x, *q = *(Jazari__HistJob *const *)y;
    return p->id < q->id ? -1 : p->id > q->id;
}

/* The history's jobs below `below` (not in the queue) are printed; one of
 * id `below` is the queue's (which has its steps): skipped. */
static void sacct__hist_upto(sacct *a, uint64_t below)
{
    while (a->next < a->nhist && a->hist[a->next]->id < below)
        sacct__hist_row(a, a->hist[a->next++]);
    while (a->next < a->nhist && a->hist[a->next]->id == below)
        a->next++;
}

/* The history, as narrowed by the daemon as far as one request can:
 * the rest of sacct's filters apply here. CLI_OK or the exit status. */
static int sacct__history(sacct *a)
{
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    q.user = q.account = q.state = "";
    char one_user[256] = "";
    if (a->users && !strchr(a->users, ',') && strlen(a->users) < sizeof one_user) {
        snprintf(one_user, sizeof one_user, "%s", a->users);
        q.user = one_user;
    }
    char *end;
    unsigned long long id = a->jobs && *a->jobs >= '1' && *a->jobs <= '9' ? strtoull(a->jobs, &end, 10) : 0;
    if (id && !*end)
        q.job_id = id; /* one job (or an array: its tasks) */
    q.since_ms = a->start_ms > 0 ? a->start_ms : 0;
    cli_hist_info info = {0};
    info.allow_unsupported = true;
    int status = cli_each_hist(a->c, &q, sacct__hist_keep, a, &info);
    if (status == CLI_OK && a->nhist)
        qsort(a->hist, a->nhist, sizeof(Jazari__HistJob *), sacct__hist_cmp);
    return status;
}

static void sacct__hist_free(sacct *a)
{
    for (size_t i = 0; i < a->nhist; i++)
        jazari__hist_job__free_unpacked(a->hist[i], NULL);
    free(a->hist);
    a->hist = NULL;
    a->nhist = a->caphist = a->next = 0;
}

static int sacct__job(const Jazari__Job *job, void *arg)
{
    sacct *a = arg;
    const Jazari__JobSpec *s = job->spec;
    char id[48];
    /* The forgotten jobs before this one, in id order; this one's own
     * record in the history gives way to the queue's (it has its steps). */
    sacct__hist_upto(a, job->id);
    if (!sacct__wanted(a, job->id, job->array_job_id, cli_job_id_str(job, id, sizeof id), job->user,
                       s && s->name ? s->name : "", job->state))
        return 0;
    /* The window: jobs that were there (submitted, not ended) within it. */
    if (a->end_ms && job->submit_time_ms > a->end_ms)
        return 0;
    if (a->start_ms && cli_job_ended(job) && job->end_time_ms > 0 && job->end_time_ms < a->start_ms)
        return 0;
    sacct_row r = {job, false, NULL};
    sacct__row(a, &r);
    if (a->allocations)
        return 0;
    if (s && s->batch && job->start_time_ms > 0) {
        r.batch = true;
        sacct__row(a, &r);
        r.batch = false;
    }
    /* The steps in id order (the job lists the running first). */
    for (uint32_t want = 0, left = (uint32_t)job->n_steps; left; want++) {
        bool found = false;
        for (size_t i = 0; i < job->n_steps; i++)
            if (job->steps[i]->id == want) {
                r.step = job->steps[i];
                sacct__row(a, &r);
                left--;
                found = true;
            }
        if (!found && want > job->steps_started + 1)
            break;
    }
    return 0;
}

/* sacct's times: now[{+|-}N[seconds|minutes|hours|days|weeks]], midnight,
 * today, YYYY-MM-DD[THH:MM[:SS]], or jz's (cli_parse_when). Unix ms. */
static int sacct__when(const char *s, int64_t now_ms, int64_t *out)
{
    if (strncasecmp(s, "now", 3) == 0 && (s[3] == '+' || s[3] == '-')) {
        char *end;
        long long n = strtoll(s + 4, &end, 10);
        if (end == s + 4 || n < 0 || n > 100000)
            return -1;
        static const struct {
            const char *unit;
            long long secs;
        } units[] = {{"", 1},        {"s", 1},         {"sec", 1},       {"secs", 1},    {"second", 1},
                     {"seconds", 1}, {"min", 60},      {"mins", 60},     {"minute", 60}, {"minutes", 60},
                     {"h", 3600},    {"hour", 3600},   {"hours", 3600},  {"day", 86400}, {"days", 86400},
                     {"d", 86400},   {"week", 604800}, {"weeks", 604800}};
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (strcasecmp(end, units[i].unit) == 0) {
                int64_t d = (int64_t)(n * units[i].secs * 1000);
                *out = s[3] == '+' ? now_ms + d : now_ms - d;
                return 0;
            }
        return -1;
    }
    if (strcasecmp(s, "midnight") == 0 || strcasecmp(s, "today") == 0) {
        time_t t = (time_t)(now_ms / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *out = (int64_t)mktime(&tm) * 1000;
        return 0;
    }
    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        char full[32];
        snprintf(full, sizeof full, "%sT00:00", s);
        return cli_parse_when(full, out);
    }
    if (cli_parse_when(s, out) != 0)
        return -1;
    if (*out == 0)
        *out = now_ms;
    return 0;
}

static int sacct__format(sacct *a, const char *spec)
{
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ", ");
        if (!len) {
            p++;
            continue;
        }
        size_t nlen = strcspn(p, "%, ");
        if (nlen > len)
            nlen = len;
        int f = -1;
        for (size_t i = 0; i < SACCT_NFIELDS; i++)
            if (strlen(sacct__fields[i].name) == nlen && strncasecmp(p, sacct__fields[i].name, nlen) == 0)
                f = (int)i;
        if (f < 0) {
            cli_error(a->c,
                      "Invalid field requested: \"%.*s\" (these are known: JobID JobIDRaw JobName User "
                      "Account Partition State ExitCode Elapsed Start End Submit NNodes NodeList AllocCPUS "
                      "AllocTRES Timelimit)",
                      (int)(nlen > 40 ? 40 : nlen), p);
            return -1;
        }
        if (a->ncols == SACCT_COLS_MAX) {
            cli_error(a->c, "--format: at most %d fields", SACCT_COLS_MAX);
            return -1;
        }
        int w = sacct__fields[f].width;
        if (nlen < len && p[nlen] == '%')
            w = (int)strtol(p + nlen + 1, NULL, 10);
        if (w < 1 || w > 1000)
            w = sacct__fields[f].width;
        a->cols[a->ncols] = f;
        a->widths[a->ncols++] = w;
        p += len;
    }
    return 0;
}

int slurm_sacct(cli *c, int argc, char **argv)
{
    static const struct option longs[] = {
        {"jobs", required_argument, NULL, 'j'},
        {"user", required_argument, NULL, 'u'},
        {"starttime", required_argument, NULL, 'S'},
        {"endtime", required_argument, NULL, 'E'},
        {"state", required_argument, NULL, 's'},
        {"allocations", no_argument, NULL, 'X'},
        {"parsable2", no_argument, NULL, 'P'},
        {"parsable", no_argument, NULL, 'p'},
        {"noheader", no_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, 'N' + 256},
        {"allusers", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    sacct a;
    memset(&a, 0, sizeof a);
    a.c = c;
    a.now_ms = cli_now_ms();
    const char *start = NULL, *end = NULL;
    bool allusers = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "j:u:S:E:s:XPpno:a", longs, NULL)) != -1) {
        switch (opt) {
        case 'j':
            a.jobs = optarg;
            break;
        case 'u':
            a.users = optarg;
            break;
        case 'S':
            start = optarg;
            break;
        case 'E':
            end = optarg;
            break;
        case 's':
            a.states = optarg;
            break;
        case 'X':
            a.allocations = true;
            break;
        case 'P':
            a.parsable2 = true;
            break;
        case 'p':
            a.parsable = true;
            break;
        case 'n':
            a.noheader = true;
            break;
        case 'a':
            allusers = true;
            break;
        case 'N' + 256:
            a.names = optarg;
            break;
        case 'o':
            if (sacct__format(&a, optarg) != 0)
                return CLI_USAGE;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(c, "unexpected argument '%.60s' (job ids go with -j)", argv[optind]);
        return CLI_USAGE;
    }
    if (!a.ncols && sacct__format(&a, "JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode") != 0)
        return CLI_USAGE;
    if ((start && sacct__when(start, a.now_ms, &a.start_ms) != 0) ||
        (end && sacct__when(end, a.now_ms, &a.end_ms) != 0)) {
        cli_error(c, "invalid time '%.40s': now[-Ndays|hours|minutes], midnight, YYYY-MM-DD[THH:MM[:SS]]",
                  start && sacct__when(start, a.now_ms, &a.start_ms) != 0 ? start : end);
        return CLI_USAGE;
    }
    /* As sacct: without -j or -S, since midnight; without -u or -a, the caller's. */
    if (!a.jobs && !start)
        sacct__when("midnight", a.now_ms, &a.start_ms);
    char me[256] = "";
    if (!a.jobs && !a.users && !allusers && getuid() != 0) {
        struct passwd *pw = getpwuid(getuid());
        if (pw) {
            snprintf(me, sizeof me, "%s", pw->pw_name);
            a.users = me;
        }
    }
    buf b = BUF_INIT;
    a.b = &b;
    if (!a.noheader) {
        for (size_t i = 0; i < a.ncols; i++) {
            const char *h = sacct__fields[a.cols[i]].name;
            if (a.parsable || a.parsable2)
                buf_printf(&b, "%s%s", i ? "|" : "", h);
            else if (a.cols[i] == SA_JOBID || a.cols[i] == SA_JOBIDRAW)
                buf_printf(&b, "%s%-*.*s", i ? " " : "", a.widths[i], a.widths[i], h);
            else
                buf_printf(&b, "%s%*.*s", i ? " " : "", a.widths[i], a.widths[i], h);
        }
        buf_puts(&b, a.parsable ? "|\n" : "\n");
        if (!a.parsable && !a.parsable2) {
            for (size_t i = 0; i < a.ncols; i++) {
                buf_puts(&b, i ? " " : "");
                for (int k = 0; k < a.widths[i]; k++)
                    buf_putc(&b, '-');
            }
            buf_putc(&b, '\n');
        }
    }
    int status = sacct__history(&a);
    if (status == CLI_OK)
        status = cli_each_job(c, true, 0, sacct__job, &a);
    if (status != CLI_OK) {
        sacct__hist_free(&a);
        buf_free(&b);
        return status;
    }
    while (a.next < a.nhist) /* those after the queue's last */
        sacct__hist_row(&a, a.hist[a.next++]);
    sacct__hist_free(&a);
    return cli_flush(&b);
}

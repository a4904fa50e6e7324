/* cmd_job.c - jz queue, show, cancel, wait, release: the jobs (jz submit: cmd_submit.c). */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/hostlist.h"
#include "cli.h"

/* --- parsing what users type -------------------------------------------------------- */

int cli_parse_time_limit(const char *s, uint64_t *seconds)
{
    unsigned long long f[4] = {0};
    int nf = 0;
    unsigned long long days = 0;
    bool have_days = false;
    const char *p = s;
    const char *dash = strchr(s, '-');
    if (dash) {
        char *end;
        if (!isdigit((unsigned char)*s))
            return -1;
        days = strtoull(s, &end, 10);
        if (end != dash)
            return -1;
        have_days = true;
        p = dash + 1;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p) || nf == 3)
            return -1;
        char *end;
        f[nf++] = strtoull(p, &end, 10);
        if (*end == ':')
            end++;
        else if (*end)
            return -1;
        if (end[-1] == ':' && !*end)
            return -1;
        p = end;
    }
    if (nf == 0)
        return -1;
    /* As Slurm: the fields after the first are minutes and seconds (of an
     * hour, of a minute), hours after days are of a day. 1:99:99 is a typo,
     * not 2 hours 40 minutes 39 seconds. */
    for (int i = 1; i < nf; i++)
        if (f[i] > 59)
            return -1;
    if (have_days && f[0] > 23)
        return -1;
    unsigned long long t;
    if (have_days) {
        /* D-H, D-H:M, D-H:M:S */
        t = days * 86400 + f[0] * 3600 + (nf > 1 ? f[1] * 60 : 0) + (nf > 2 ? f[2] : 0);
    } else if (nf == 1) {
        t = f[0] * 60; /* minutes */
    } else if (nf == 2) {
        t = f[0] * 60 + f[1]; /* M:S */
    } else {
        t = f[0] * 3600 + f[1] * 60 + f[2];
    }
    if (t == 0 || t > 365ull * 86400 || days > 365)
        return -1;
    *seconds = t;
    return 0;
}

/* --- showing jobs ----------------------------------------------------------------------------- */

/* As squeue prints times: local, to the second; "N/A" when not set. */
static const char *job__local_time(int64_t ms, char *s, size_t len)
{
    if (ms <= 0) {
        snprintf(s, len, "N/A");
        return s;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(s, len, "%Y-%m-%dT%H:%M:%S", &tm);
    return s;
}

static void job__limit(buf *b, uint64_t s)
{
    if (!s)
        buf_puts(b, "-");
    else if (s >= 86400)
        buf_printf(b, "%llu-%02llu:%02llu:%02llu", (unsigned long long)(s / 86400),
                   (unsigned long long)(s % 86400 / 3600), (unsigned long long)(s % 3600 / 60),
                   (unsigned long long)(s % 60));
    else
        buf_printf(b, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                   (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
}

/* Slurm's short state codes, in JobState's order. */
static const char *const job__short_states[] = {"PD", "R", "CD", "F", "CA", "TO", "NF", "PR"};

static const char *job__short_state(Jazari__JobState s)
{
    return (unsigned)s < sizeof job__short_states / sizeof *job__short_states ? job__short_states[s] : "?";
}

/* Seconds as squeue shows them: M:SS, H:MM:SS, D-HH:MM:SS. */
static void job__secs(buf *b, uint64_t s)
{
    unsigned long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, x = s % 60;
    if (d)
        buf_printf(b, "%llu-%02llu:%02llu:%02llu", d, h, m, x);
    else if (h)
        buf_printf(b, "%llu:%02llu:%02llu", h, m, x);
    else
        buf_printf(b, "%llu:%02llu", m, x);
}

const char *cli_job_state(Jazari__JobState s)
{
    return view_job_state(s);
}

const char *cli_job_id_str(const Jazari__Job *job, char *s, size_t len)
{
    return view_job_id_str(job, s, len);
}

bool cli_job_ended(const Jazari__Job *job)
{
    return view_job_ended(job);
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A moment as Slurm's commands show it: local time, 2026-12-05T15:04:05;
 * "N/A" when not set. */
static void job__slurm_time(buf *b, int64_t ms)
{
    if (ms <= 0) {
        buf_puts(b, "N/A");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char s[32];
    localtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_puts(b, s);
}

/* --- choosing jobs: jz queue's and jz cancel's filters ------------------------------------------ */

typedef struct job_filter {
    bool me;
    const char *me_name; /* the caller's user name, when --me */
    cli_list users, states, names, accounts, jobs, partitions;
    unsigned state_mask; /* bit per JobState; 0: any */
} job_filter;

static bool job__filtering(const job_filter *f)
{
    return f->me || f->users.n || f->states.n || f->names.n || f->accounts.n || f->jobs.n || f->partitions.n;
}

/* Whether v is one of the comma lists' words (an empty list: yes). */
static bool job__in_lists(const cli_list *l, const char *v)
{
    if (l->n == 0)
        return true;
    size_t vlen = strlen(v ? v : "");
    for (size_t i = 0; i < l->n; i++)
        for (const char *p = l->items[i]; *p;) {
            size_t len = strcspn(p, ",");
            if (len == vlen && strncmp(p, v ? v : "", len) == 0)
                return true;
            p += len + (p[len] == ',');
        }
    return false;
}

/* The filters' words checked: 0, or -1 after saying what is wrong. */
static int job__filter_ready(cli *c, job_filter *f)
{
    f->state_mask = 0;
    for (size_t i = 0; i < f->states.n; i++)
        for (const char *p = f->states.items[i]; *p;) {
            size_t len = strcspn(p, ",");
            int found = -1;
            for (int s = 0; s < (int)(sizeof job__short_states / sizeof *job__short_states); s++) {
                const char *name = view_job_state((Jazari__JobState)s);
                if ((strlen(name) == len && strncasecmp(p, name, len) == 0) ||
                    (strlen(job__short_states[s]) == len && strncasecmp(p, job__short_states[s], len) == 0))
                    found = s;
            }
            if (len == 3 && strncasecmp(p, "all", 3) == 0)
                f->state_mask |= 0xffu, found = 0;
            if (found < 0) {
                cli_error(c,
                          "bad --state '%.*s': PENDING (PD), RUNNING (R), COMPLETED (CD), FAILED (F), "
                          "CANCELLED (CA), TIMEOUT (TO), NODE_FAIL (NF), PREEMPTED (PR) or all",
                          (int)(len > 40 ? 40 : len), p);
                return -1;
            }
            f->state_mask |= 1u << found;
            p += len + (p[len] == ',');
        }
    if (f->me) {
        struct passwd *pw = getpwuid(getuid());
        if (!pw) {
            cli_error(c, "--me: uid %u has no user name here (use --user)", (unsigned)getuid());
            return -1;
        }
        f->me_name = strdup(pw->pw_name);
        if (!f->me_name)
            abort();
    }
    return 0;
}

/* Whether the filters ask for jobs that have ended (they must be listed). */
static bool job__filter_wants_ended(const job_filter *f)
{
    return (f->state_mask &
            ~((1u << JAZARI__JOB_STATE__JOB_PENDING) | (1u << JAZARI__JOB_STATE__JOB_RUNNING) |
              (1u << JAZARI__JOB_STATE__JOB_PREEMPTED))) != 0;
}

static bool job__match(const job_filter *f, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    if (f->state_mask && !(f->state_mask & (1u << (unsigned)job->state)))
        return false;
    if (f->me || f->users.n) {
        bool mine = f->me && f->me_name && job->user && strcmp(job->user, f->me_name) == 0;
        if (!mine && !(f->users.n && job__in_lists(&f->users, job->user)))
            return false;
    }
    if (!job__in_lists(&f->names, s ? s->name : ""))
        return false;
    if (!job__in_lists(&f->accounts, s ? s->account : ""))
        return false;
    if (f->jobs.n) {
        /* An id, an array's id (all its tasks) or ARRAYID_INDEX. */
        char id[48], arr[32];
        snprintf(arr, sizeof arr, "%llu", (unsigned long long)job->array_job_id);
        snprintf(id, sizeof id, "%llu", (unsigned long long)job->id);
        if (!job__in_lists(&f->jobs, id) && !(job->array_job_id && job__in_lists(&f->jobs, arr)) &&
            !(job->array_job_id && job__in_lists(&f->jobs, view_job_id_str(job, id, sizeof id))))
            return false;
    }
    if (f->partitions.n) {
        /* The partition it runs in, else any of those it asked for. */
        const char *part = job->partition && *job->partition ? job->partition : s ? s->partition : "";
        bool any = false;
        for (const char *p = part ? part : ""; *p && !any;) {
            size_t len = strcspn(p, ",");
            char one[128];
            snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
            any = job__in_lists(&f->partitions, one);
            p += len + (p[len] == ',');
        }
        if (!any)
            return false;
    }
    return true;
}

/* Calls fn on every job the daemon lists (all: ended ones too) from the
 * id after `after` on, page by page, until fn returns nonzero. 0, or the
 * exit status after saying why. */
typedef int (*job__each_fn)(const Jazari__Job *job, void *arg);

int cli_each_job(cli *c, bool all, uint64_t after, int (*fn)(const Jazari__Job *job, void *arg), void *arg)
{
    for (;;) {
        Jazari__QueueRequest qr = JAZARI__QUEUE_REQUEST__INIT;
        qr.all = all;
        qr.after_id = after;
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_QUEUE_REQUEST;
        req.queue_request = &qr;
        int status;
        wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_QUEUE_REPLY, &status);
        if (!m)
            return status;
        const Jazari__QueueReply *r = wire_msg_env(m)->queue_reply;
        bool stop = false;
        for (size_t i = 0; i < r->n_jobs && !stop; i++)
            stop = fn(r->jobs[i], arg) != 0;
        bool more = !stop && r->truncated && r->next_after > after;
        after = r->next_after;
        wire_msg_free(m);
        if (!more)
            return CLI_OK;
    }
}

/* --- jz queue ------------------------------------------------------------------------------------ */

/* One field of a --format: its header, and its value (job NULL: none). */
static int job__field(buf *b, char type, const Jazari__Job *job, int64_t now_ms)
{
    static const struct {
        char type;
        const char *header;
    } headers[] = {{'i', "JOBID"},        {'j', "NAME"},
                   {'u', "USER"},         {'t', "ST"},
                   {'T', "STATE"},        {'M', "TIME"},
                   {'l', "TIME_LIMIT"},   {'D', "NODES"},
                   {'N', "NODELIST"},     {'R', "NODELIST(REASON)"},
                   {'a', "ACCOUNT"},      {'P', "PARTITION"},
                   {'C', "CPUS"},         {'b', "TRES_PER_NODE"},
                   {'q', "QOS"},          {'S', "START_TIME"},
                   {'V', "SUBMIT_TIME"},  {'e', "END_TIME"},
                   {'r', "REASON"},       {'Z', "WORK_DIR"},
                   {'o', "COMMAND"},      {'A', "JOBID"},
                   {'F', "ARRAY_JOB_ID"}, {'K', "ARRAY_TASK_ID"},
                   {'L', "TIME_LEFT"},    {'Q', "PRIORITY"},
                   {'p', "PRIORITY"},     {'v', "RESERVATION"},
                   {'f', "FEATURES"},     {'m', "MIN_MEMORY"},
                   {'E', "DEPENDENCY"}};
    if (!job) {
        for (size_t i = 0; i < sizeof headers / sizeof *headers; i++)
            if (headers[i].type == type) {
                buf_puts(b, headers[i].header);
                return 0;
            }
        return -1;
    }
    const Jazari__JobSpec *s = job->spec;
    char id[48];
    switch (type) {
    case 'i':
        buf_puts(b, view_job_id_str(job, id, sizeof id));
        break;
    case 'j':
        buf_puts(b, s && s->name ? s->name : "");
        break;
    case 'u':
        buf_puts(b, job->user ? job->user : "");
        break;
    case 't':
        buf_puts(b, job__short_state(job->state));
        break;
    case 'T':
        buf_puts(b, view_job_state(job->state));
        break;
    case 'M': {
        int64_t used = 0;
        if (job->start_time_ms > 0) {
            int64_t end = view_job_ended(job) && job->end_time_ms > 0 ? job->end_time_ms : now_ms;
            used = end > job->start_time_ms ? (end - job->start_time_ms) / 1000 : 0;
        }
        job__secs(b, (uint64_t)used);
        break;
    }
    case 'l':
        if (s && s->time_limit_s)
            job__secs(b, s->time_limit_s);
        else
            buf_puts(b, "-");
        break;
    case 'D':
        buf_printf(b, "%u", job->n_allocs ? (unsigned)job->n_allocs : s && s->nodes ? s->nodes : 1);
        break;
    case 'N':
    case 'R':
        if (job->n_allocs) { /* as Slurm: node[1-2] */
            const char **names = calloc(job->n_allocs, sizeof *names);
            if (!names)
                abort();
            for (size_t k = 0; k < job->n_allocs; k++)
                names[k] = job->allocs[k]->node;
            hostlist_compress(names, job->n_allocs, true, b);
            free(names);
        } else if (type == 'R') {
            buf_printf(b, "(%s)", job->reason && *job->reason ? job->reason : "None");
        }
        break;
    case 'r':
        buf_puts(b, job->reason && *job->reason ? job->reason : "None");
        break;
    case 'q':
        buf_puts(b, s && s->qos && *s->qos ? s->qos : "normal");
        break;
    case 'S': /* pending: the plan's estimate (N/A: none); else when it started */
        job__slurm_time(b, job->state == JAZARI__JOB_STATE__JOB_PENDING ? job->est_start_time_ms
                                                                        : job->start_time_ms);
        break;
    case 'V':
        job__slurm_time(b, job->submit_time_ms);
        break;
    case 'e':
        job__slurm_time(b, view_job_ended(job) ? job->end_time_ms : 0);
        break;
    case 'Z':
        buf_puts(b, s && s->workdir && *s->workdir ? s->workdir : "N/A");
        break;
    case 'o':
        if (s && s->batch && s->script && *s->script)
            buf_puts(b, s->name && *s->name ? s->name : "(script)");
        for (size_t k = 0; s && k < s->n_argv; k++)
            buf_printf(b, "%s%s", k || (s->batch && s->script && *s->script) ? " " : "", s->argv[k]);
        break;
    case 'A':
        buf_printf(b, "%llu", (unsigned long long)job->id);
        break;
    case 'F':
        buf_printf(b, "%llu", (unsigned long long)(job->array_job_id ? job->array_job_id : job->id));
        break;
    case 'K':
        if (job->array_job_id && s)
            buf_printf(b, "%u", s->array_index);
        else
            buf_puts(b, "N/A");
        break;
    case 'L': {
        if (!s || !s->time_limit_s) {
            buf_puts(b, "UNLIMITED");
            break;
        }
        int64_t left = (int64_t)s->time_limit_s;
        if (job->start_time_ms > 0 && !view_job_ended(job))
            left -= (now_ms - job->start_time_ms) / 1000;
        else if (view_job_ended(job))
            left = 0;
        job__secs(b, left > 0 ? (uint64_t)left : 0);
        break;
    }
    case 'Q':
    case 'p':
        buf_printf(b, "%u", job->priority);
        break;
    case 'v':
        buf_puts(b, s && s->reservation && *s->reservation ? s->reservation : "(null)");
        break;
    case 'f':
        buf_puts(b, s && s->constraint && *s->constraint ? s->constraint : "(null)");
        break;
    case 'm':
        if (s && s->mem_bytes)
            buf_printf(b, "%lluM", (unsigned long long)(s->mem_bytes >> 20));
        else
            buf_puts(b, "0");
        break;
    case 'E': {
        size_t at = b->len;
        for (size_t k = 0; s && k < s->n_after_ok; k++)
            buf_printf(b, "%safterok:%llu", b->len > at ? "," : "", (unsigned long long)s->after_ok[k]);
        for (size_t k = 0; s && k < s->n_after_any; k++)
            buf_printf(b, "%safterany:%llu", b->len > at ? "," : "", (unsigned long long)s->after_any[k]);
        if (b->len == at)
            buf_puts(b, "(null)");
        break;
    }
    case 'a':
        buf_puts(b, s && s->account && *s->account ? s->account : "-");
        break;
    case 'P':
        buf_puts(b, job->partition && *job->partition    ? job->partition
                    : s && s->partition && *s->partition ? s->partition
                                                         : "-");
        break;
    case 'C': {
        uint32_t cpt = s && s->cpus_per_task ? s->cpus_per_task : 1;
        uint32_t nodes = job->n_allocs ? (uint32_t)job->n_allocs : s && s->nodes ? s->nodes : 1;
        uint32_t tasks =
            s && s->ntasks ? s->ntasks : nodes * (s && s->tasks_per_node ? s->tasks_per_node : 1);
        buf_printf(b, "%llu", (unsigned long long)tasks * cpt);
        break;
    }
    case 'b':
        if (s && s->gpus_per_node && s->gpu_model && *s->gpu_model)
            buf_printf(b, "gpu:%s:%u", s->gpu_model, s->gpus_per_node);
        else if (s && s->gpus_per_node)
            buf_printf(b, "gpu:%u", s->gpus_per_node);
        else
            buf_puts(b, "N/A");
        break;
    default:
        return -1;
    }
    return 0;
}

/* One line of a --format (squeue -o): "%[.|-][WIDTH]TYPE" fields, "%%",
 * other characters as they are. job NULL: the header. -1 on a bad field
 * (nothing useful written). */
/* job__field as cli_format calls a field (ctx: the time, in ms). */
static int job__format_field(buf *b, char type, const void *arg, void *ctx)
{
    return job__field(b, type, arg, *(const int64_t *)ctx);
}

int cli_job_format(buf *b, const char *fmt, const Jazari__Job *job, int64_t now_ms)
{
    return cli_format(b, fmt, job__format_field, job, &now_ms);
}

/* One line of jz queue. */
static void job__row(buf *b, const Jazari__Job *job)
{
    const Jazari__JobSpec *s = job->spec;
    char id[48];
    buf_printf(b, "%8s  %-20.20s %-10.10s %-10s %5u %5u ", view_job_id_str(job, id, sizeof id),
               s && s->name ? s->name : "", job->user, view_job_state(job->state),
               s && s->nodes ? s->nodes : 1, s ? s->gpus_per_node : 0);
    size_t at = b->len;
    job__limit(b, s ? s->time_limit_s : 0);
    buf_printf(b, "%*s ", (int)(12 - (b->len - at) > 0 ? 12 - (b->len - at) : 0), "");
    if (job->n_allocs)
        for (size_t k = 0; k < job->n_allocs; k++)
            buf_printf(b, "%s%s", k ? "," : "", job->allocs[k]->node);
    else if (job->reason && *job->reason)
        buf_printf(b, "(%s)", job->reason);
    buf_putc(b, '\n');
}

/* The filter options of jz queue and jz cancel, into opts (at n). */
static size_t job__filter_opts(job_filter *f, cli_opt *opts, size_t n)
{
    const cli_opt more[] = {
        {"me", CLI_FLAG, &f->me},        {"user", CLI_LIST, &f->users},
        {"u", CLI_LIST, &f->users},      {"state", CLI_LIST, &f->states},
        {"t", CLI_LIST, &f->states},     {"name", CLI_LIST, &f->names},
        {"n", CLI_LIST, &f->names},      {"account", CLI_LIST, &f->accounts},
        {"A", CLI_LIST, &f->accounts},   {"jobs", CLI_LIST, &f->jobs},
        {"j", CLI_LIST, &f->jobs},       {"partition", CLI_LIST, &f->partitions},
        {"p", CLI_LIST, &f->partitions},
    };
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
        opts[n++] = more[i];
    return n;
}

typedef struct queue__out {
    cli *c;
    const job_filter *f;
    const char *format;
    json *j;
    buf *b;
    int64_t now_ms;
    int status;
    bool pending_only; /* --start */
} queue__out;

static int queue__one(const Jazari__Job *job, void *arg)
{
    queue__out *q = arg;
    if (!job__match(q->f, job) || (q->pending_only && job->state != JAZARI__JOB_STATE__JOB_PENDING))
        return 0;
    if (q->c->json)
        view_job(q->j, job);
    else if (q->format)
        cli_job_format(q->b, q->format, job, q->now_ms);
    else
        job__row(q->b, job);
    /* A table streams; a JSON document is one. */
    if (!q->c->json && q->b->len > (1u << 16) && cli_write(q->b) != 0) {
        q->status = CLI_REFUSED;
        return 1;
    }
    return 0;
}

int cmd_queue(cli *c, int argc, char **argv)
{
    bool all = false, noheader = false, start = false;
    const char *format = NULL;
    job_filter f;
    memset(&f, 0, sizeof f);
    cli_opt opts[24] = {{"all", CLI_FLAG, &all},
                        {"format", CLI_STRING, &format},
                        {"o", CLI_STRING, &format},
                        {"noheader", CLI_FLAG, &noheader},
                        {"start", CLI_FLAG, &start}};
    size_t n = job__filter_opts(&f, opts, 5);
    opts[n] = (cli_opt){NULL, CLI_FLAG, NULL};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0 || job__filter_ready(c, &f) != 0) {
        free((char *)f.me_name);
        return CLI_USAGE;
    }
    /* squeue --start: the pending jobs, with when each is expected to start. */
    if (start && !format)
        format = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %R";
    buf b = BUF_INIT;
    if (format && cli_job_format(&b, format, NULL, 0) != 0) {
        cli_error(c,
                  "bad --format '%.60s': fields %%[.][WIDTH]TYPE, TYPE one of i j u t T M l D N R a P C b q "
                  "S V e r Z o A F K L Q p v f m E "
                  "(see docs/researcher.md)",
                  format);
        buf_free(&b);
        free((char *)f.me_name);
        return CLI_USAGE;
    }
    if (format && noheader)
        b.len = 0;
    json j;
    if (c->json) {
        b.len = 0;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "jobs");
        json_arr_begin(&j);
    } else if (!format && !noheader) {
        buf_printf(&b, "%8s  %-20s %-10s %-10s %5s %5s %-12s %s\n", "ID", "NAME", "USER", "STATE", "NODES",
                   "GPUS", "TIME_LIMIT", "REASON/NODES");
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    queue__out q = {c, &f, format, &j, &b, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, CLI_OK, start};
    int status = cli_each_job(c, all || job__filter_wants_ended(&f), 0, queue__one, &q);
    free((char *)f.me_name);
    if (status == CLI_OK)
        status = q.status;
    if (status != CLI_OK) {
        buf_free(&b);
        return status;
    }
    if (c->json) {
        json_arr_end(&j);
        json_kv_bool(&j, "truncated", false);
        json_obj_end(&j);
    }
    return cli_flush(&b);
}

/* --- one job, by id ------------------------------------------------------------------------------ */

int cli_job_id(cli *c, const char *s, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || errno || v == 0) {
        cli_error(c, "bad job id '%.40s': a number such as 42", s);
        return -1;
    }
    *id = v;
    return 0;
}

/* "ID" or "ARRAYID_INDEX": the array's id and the index (has_index) or the id. */
static int job__parse_ref(cli *c, const char *s, uint64_t *id, bool *has_index, uint32_t *index)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    *has_index = false;
    if (isdigit((unsigned char)*s) && !errno && v && *end == '_' && isdigit((unsigned char)end[1])) {
        char *end2;
        unsigned long x = strtoul(end + 1, &end2, 10);
        if (!*end2 && !errno && x <= UINT32_MAX) {
            *id = v;
            *has_index = true;
            *index = (uint32_t)x;
            return 0;
        }
    }
    if (!isdigit((unsigned char)*s) || *end || errno || v == 0) {
        cli_error(c, "bad job id '%.40s': a number such as 42, or an array's task such as 42_3", s);
        return -1;
    }
    *id = v;
    return 0;
}

typedef struct job__task_find {
    uint64_t array;
    uint32_t index;
    uint64_t found;
    bool active_only;
    uint64_t *ids; /* every task (when collecting) */
    size_t n, max;
} job__task_find;

/* The tasks of an array are consecutive ids from the array's id. */
static int job__task_one(const Jazari__Job *job, void *arg)
{
    job__task_find *t = arg;
    if (job->id < t->array)
        return 0;
    if (job->array_job_id != t->array)
        return job->id > t->array; /* past the array */
    if (t->ids) {
        if (t->n == t->max)
            return 1;
        t->ids[t->n++] = job->id;
        return 0;
    }
    if (job->spec && job->spec->array_index == t->index) {
        t->found = job->id;
        return 1;
    }
    return 0;
}

/* "ID" or "ARRAYID_INDEX" into a job id: 0, or -1 after saying why (*status). */
static int job__resolve(cli *c, const char *s, uint64_t *id, int *status)
{
    bool has_index;
    uint32_t index = 0;
    *status = CLI_USAGE;
    if (job__parse_ref(c, s, id, &has_index, &index) != 0)
        return -1;
    if (!has_index)
        return 0;
    job__task_find t = {.array = *id, .index = index};
    *status = cli_each_job(c, true, *id - 1, job__task_one, &t);
    if (*status != CLI_OK)
        return -1;
    if (!t.found) {
        cli_error(c, "job %llu_%u not found", (unsigned long long)*id, index);
        *status = CLI_REFUSED;
        return -1;
    }
    *id = t.found;
    return 0;
}

int cli_job_ref(cli *c, const char *s, uint64_t *id, int *status)
{
    return job__resolve(c, s, id, status);
}

/* One job from the daemon: the reply (free it), or NULL after saying why. */
wire_msg *cli_fetch_job(cli *c, uint64_t id, int *status)
{
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    sr.id = id;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_SHOW_REQUEST;
    req.show_request = &sr;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_SHOW_REPLY, status);
    if (m && !wire_msg_env(m)->show_reply->job) {
        cli_error(c, "the daemon sent no job");
        wire_msg_free(m);
        *status = CLI_REFUSED;
        return NULL;
    }
    return m;
}

int cmd_show(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    if (npos != 1) {
        cli_error(c, "which job? usage: jz show JOB (an id, or ARRAYID_INDEX for an array's task)");
        return CLI_USAGE;
    }
    int status;
    if (job__resolve(c, pos[0], &sr.id, &status) != 0)
        return status;
    wire_msg *m = cli_fetch_job(c, sr.id, &status);
    if (!m)
        return status;
    const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        view_job(&j, job);
    } else {
        const Jazari__JobSpec *s = job->spec;
        char t[32];
        buf_printf(&b, "id:          %llu\n", (unsigned long long)job->id);
        if (job->array_job_id) {
            char id[48];
            buf_printf(&b, "array task:  %s\n", view_job_id_str(job, id, sizeof id));
        }
        buf_printf(&b, "name:        %s\n", s && s->name ? s->name : "");
        buf_printf(&b, "user:        %s (uid %u)\n", job->user, job->uid);
        buf_printf(&b, "state:       %s\n", view_job_state(job->state));
        if (job->reason && *job->reason)
            buf_printf(&b, "reason:      %s\n", job->reason);
        if (job->state == JAZARI__JOB_STATE__JOB_PENDING) {
            char when[40];
            buf_printf(&b, "est. start:  %s\n", job__local_time(job->est_start_time_ms, when, sizeof when));
        }
        /* Always there: '-' until the job has ended with a code. */
        if (view_job_ended(job) && job->state != JAZARI__JOB_STATE__JOB_CANCELLED)
            buf_printf(&b, "exit code:   %d\n", job->exit_code);
        else
            buf_puts(&b, "exit code:   -\n");
        if (s) {
            buf_printf(&b, "request:     %u node(s) x %u GPU(s), %u task(s) per node, time limit ",
                       s->nodes ? s->nodes : 1, s->gpus_per_node, s->tasks_per_node ? s->tasks_per_node : 1);
            job__limit(&b, s->time_limit_s);
            buf_puts(&b, "\ncommand:    ");
            for (size_t i = 0; i < s->n_argv; i++)
                buf_printf(&b, " %s", s->argv[i]);
            if (s->script && *s->script)
                buf_puts(&b, " (script)");
            buf_putc(&b, '\n');
            if (s->workdir && *s->workdir)
                buf_printf(&b, "workdir:     %s\n", s->workdir);
            buf_printf(&b, "account:     %s  qos %s", s->account && *s->account ? s->account : "-",
                       s->qos && *s->qos ? s->qos : "normal");
            if (s->reservation && *s->reservation)
                buf_printf(&b, "  reservation %s", s->reservation);
            if (job->state == JAZARI__JOB_STATE__JOB_PENDING && job->priority)
                buf_printf(&b, "  priority %u", job->priority);
            buf_putc(&b, '\n');
        }
        for (size_t i = 0; i < job->n_allocs; i++) {
            buf_printf(&b, "node:        %s cpus %s gpus ", job->allocs[i]->node,
                       *job->allocs[i]->cpus ? job->allocs[i]->cpus : "-");
            for (size_t g = 0; g < job->allocs[i]->n_gpus; g++)
                buf_printf(&b, "%s%u", g ? "," : "", job->allocs[i]->gpus[g]);
            buf_puts(&b, job->allocs[i]->n_gpus ? "\n" : "-\n");
        }
        for (size_t i = 0; i < job->n_steps; i++) {
            const Jazari__JobStep *st = job->steps[i];
            buf_printf(&b, "step:        %llu.%u %s %s", (unsigned long long)job->id, st->id,
                       view_job_state(st->state), st->spec && st->spec->n_argv ? st->spec->argv[0] : "");
            if (st->state != JAZARI__JOB_STATE__JOB_RUNNING)
                buf_printf(&b, " exit code %d", st->exit_code);
            buf_printf(&b, " (%u task%s on %zu node%s)\n", st->spec ? st->spec->ntasks : 0,
                       st->spec && st->spec->ntasks == 1 ? "" : "s", st->n_ranks,
                       st->n_ranks == 1 ? "" : "s");
        }
        if (job->attempt)
            buf_printf(&b, "attempt:     %u (requeued %u time%s, %u for preemption)\n", job->attempt,
                       job->attempt, job->attempt == 1 ? "" : "s", job->preemptions);
        const int64_t times[] = {job->submit_time_ms, job->start_time_ms, job->end_time_ms};
        const char *names[] = {"submitted:", "started:", "ended:"};
        for (size_t k = 0; k < 3; k++)
            if (view_utc_time(times[k], t, sizeof t))
                buf_printf(&b, "%-12s %s\n", names[k], t);
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

/* --- jz cancel, jz release ------------------------------------------------------------------------ */

#define JOB_CANCEL_MAX 10000 /* ids in one request, as the daemon takes */

typedef struct cancel__set {
    uint64_t *ids;
    size_t n, cap;
    const job_filter *f;
    const uint64_t *only; /* with ids given and filters: only these (sorted) */
    size_t n_only;
} cancel__set;

static void cancel__add(cancel__set *s, uint64_t id)
{
    for (size_t i = s->n; i > 0 && i + 64 > s->n; i--) /* a repeat is usually a near one */
        if (s->ids[i - 1] == id)
            return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        uint64_t *p = realloc(s->ids, s->cap * sizeof *p);
        if (!p)
            abort();
        s->ids = p;
    }
    s->ids[s->n++] = id;
}

static int cancel__cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cancel__matching(const Jazari__Job *job, void *arg)
{
    cancel__set *s = arg;
    if (!job__match(s->f, job))
        return 0;
    if (s->only) {
        uint64_t key = job->id, key2 = job->array_job_id;
        if (!bsearch(&key, s->only, s->n_only, sizeof key, cancel__cmp) &&
            !(key2 && bsearch(&key2, s->only, s->n_only, sizeof key2, cancel__cmp)))
            return 0;
    }
    cancel__add(s, job->id);
    return 0;
}

/* Sends one cancel (or release) of ids; the count into *done. On a refusal
 * of the whole request for one job's sake (permission), each job alone,
 * saying which were refused. The exit status. */
static int cancel__send(cli *c, const uint64_t *ids, size_t n, int op, bool one_by_one, uint32_t *done)
{
    Jazari__CancelRequest cr = JAZARI__CANCEL_REQUEST__INIT;
    Jazari__ReleaseRequest rr = JAZARI__RELEASE_REQUEST__INIT;
    Jazari__RequeueRequest qr = JAZARI__REQUEUE_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    cr.ids = rr.ids = qr.ids = (uint64_t *)ids;
    cr.n_ids = rr.n_ids = qr.n_ids = n;
    switch (op) {
    case CLI_JOBS_RELEASE:
        req.body_case = JAZARI__ENVELOPE__BODY_RELEASE_REQUEST;
        req.release_request = &rr;
        break;
    case CLI_JOBS_HOLD:
        req.body_case = JAZARI__ENVELOPE__BODY_HOLD_REQUEST;
        req.hold_request = &rr;
        break;
    case CLI_JOBS_REQUEUE:
    case CLI_JOBS_REQUEUE_HOLD:
        qr.hold = op == CLI_JOBS_REQUEUE_HOLD;
        req.body_case = JAZARI__ENVELOPE__BODY_REQUEUE_REQUEST;
        req.requeue_request = &qr;
        break;
    default:
        req.body_case = JAZARI__ENVELOPE__BODY_CANCEL_REQUEST;
        req.cancel_request = &cr;
        break;
    }
    int status;
    wire_msg *m = cli_request_raw(c, &req, &status);
    if (!m)
        return status;
    const Jazari__Envelope *e = wire_msg_env(m);
    if (one_by_one && n > 1 && e->error &&
        (e->error->code == JAZARI__ERROR_CODE__PERMISSION_DENIED ||
         e->error->code == JAZARI__ERROR_CODE__NOT_FOUND ||
         (op != CLI_JOBS_CANCEL && e->error->code == JAZARI__ERROR_CODE__BAD_REQUEST))) {
        /* Matched by a filter: another's job the caller sees but may not
         * cancel, one that ended meanwhile, or (hold, requeue) one not in
         * the state for it, does not stop the others. */
        wire_msg_free(m);
        int worst = CLI_OK;
        for (size_t i = 0; i < n; i++) {
            int rc = cancel__send(c, ids + i, 1, op, false, done);
            if (rc != CLI_OK)
                worst = rc;
        }
        return worst;
    }
    if (cli_refused(c, m)) {
        wire_msg_free(m);
        return CLI_REFUSED;
    }
    if (e->body_case != JAZARI__ENVELOPE__BODY_CANCEL_REPLY) {
        cli_error(c, "the daemon answered with %s", wire_body_name(e));
        wire_msg_free(m);
        return CLI_REFUSED;
    }
    *done += e->cancel_reply->cancelled;
    wire_msg_free(m);
    return CLI_OK;
}

/* The names of cli_jobs_op's operations: the command, what it did. */
static const char *const job__op_verb[] = {"cancel", "release", "hold", "requeue", "requeue"};
static const char *const job__op_done[] = {"cancelled", "released", "held", "requeued", "requeued (held)"};
static const char *const job__op_key[] = {"cancelled", "released", "held", "requeued", "requeued"};

int cli_jobs_op(cli *c, int argc, char **argv, int op)
{
    static const char *pos[1024];
    job_filter f;
    memset(&f, 0, sizeof f);
    bool hold = false;
    cli_opt opts[17];
    size_t no = job__filter_opts(&f, opts, 0);
    if (op == CLI_JOBS_REQUEUE)
        opts[no++] = (cli_opt){"hold", CLI_FLAG, &hold};
    opts[no] = (cli_opt){NULL, CLI_FLAG, NULL};
    bool release = op == CLI_JOBS_RELEASE;
    int npos = cli_parse(c, argc, argv, opts, pos, 1024);
    if (npos < 0 || job__filter_ready(c, &f) != 0) {
        free((char *)f.me_name);
        return CLI_USAGE;
    }
    if (hold)
        op = CLI_JOBS_REQUEUE_HOLD;
    (void)release;
    bool filtering = job__filtering(&f);
    if (npos == 0 && !filtering) {
        cli_error(c,
                  "which jobs? usage: jz %s JOB... (ids, ARRAYID_INDEX) and/or --me, --user U, --state S, "
                  "--name N, --account A",
                  job__op_verb[op]);
        return CLI_USAGE;
    }
    cancel__set set = {.f = &f};
    int status = CLI_OK;
    /* The ids given: an array's id stands for every task of it (the daemon
     * acts on the one job, so its tasks are looked up here). */
    uint64_t *given = calloc((size_t)npos + 1, sizeof *given);
    if (!given)
        abort();
    for (int i = 0; i < npos && status == CLI_OK; i++) {
        bool has_index;
        uint32_t index;
        if (job__parse_ref(c, pos[i], &given[i], &has_index, &index) != 0)
            status = CLI_USAGE;
    }
    for (int i = 0; i < npos && status == CLI_OK; i++) {
        uint64_t id;
        if (job__resolve(c, pos[i], &id, &status) != 0)
            break;
        if (strchr(pos[i], '_') || filtering) {
            cancel__add(&set, id);
            continue;
        }
        wire_msg *m = cli_fetch_job(c, id, &status);
        if (!m)
            break;
        const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
        bool array = job->array_job_id == id;
        wire_msg_free(m);
        if (!array) {
            cancel__add(&set, id);
            continue;
        }
        job__task_find t = {.array = id, .ids = NULL};
        size_t before = set.n;
        uint64_t *tasks = calloc(65536, sizeof *tasks);
        if (!tasks)
            abort();
        t.ids = tasks;
        t.max = 65536;
        /* A requeue takes ended tasks too. */
        status = cli_each_job(c, op >= CLI_JOBS_REQUEUE, id - 1, job__task_one, &t);
        for (size_t k = 0; k < t.n; k++)
            cancel__add(&set, tasks[k]);
        free(tasks);
        if (set.n == before)
            cancel__add(&set, id); /* all ended: the daemon says so */
    }
    if (status == CLI_OK && filtering) {
        /* Every job the caller sees that the filters match (of the ids given, if any). */
        if (npos) {
            memcpy(given, set.ids, set.n * sizeof *given);
            qsort(given, set.n, sizeof *given, cancel__cmp);
            set.only = given;
            set.n_only = set.n;
            set.n = 0;
        }
        status = cli_each_job(c, false, 0, cancel__matching, &set);
    }
    uint32_t n = 0;
    for (size_t at = 0; status == CLI_OK && at < set.n; at += JOB_CANCEL_MAX) {
        size_t k = set.n - at < JOB_CANCEL_MAX ? set.n - at : JOB_CANCEL_MAX;
        status = cancel__send(c, set.ids + at, k, op, filtering, &n);
    }
    free(set.ids);
    free(given);
    free((char *)f.me_name);
    if (status != CLI_OK && n == 0)
        return status;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_uint(&j, job__op_key[op], n);
        json_obj_end(&j);
    } else {
        if (!c->slurm) /* scancel, scontrol release/hold/requeue say nothing */
            buf_printf(&b, "%s %u job%s\n", job__op_done[op], n, n == 1 ? "" : "s");
    }
    int rc = cli_flush(&b);
    return status != CLI_OK ? status : rc;
}

int cmd_cancel(cli *c, int argc, char **argv)
{
    /* JOB.STEP: one step of a running job (cmd_jobops.c). */
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (argv[i][0] != '-' && isdigit((unsigned char)argv[i][0]) && strchr(argv[i], '.'))
            return cli_cancel_steps(c, argc, argv);
    return cli_jobs_op(c, argc, argv, CLI_JOBS_CANCEL);
}

int cmd_release(cli *c, int argc, char **argv)
{
    return cli_jobs_op(c, argc, argv, CLI_JOBS_RELEASE);
}

/* jz wait JOB [--timeout SECONDS]: polls until the job ends; exits with its
 * exit code, or 1 if it did not complete (cancelled, timed out, lost, or
 * the wait itself ran out). */
int cmd_wait(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, "which job? usage: jz wait JOB [--timeout SECONDS]");
        return CLI_USAGE;
    }
    Jazari__ShowRequest sr = JAZARI__SHOW_REQUEST__INIT;
    int rstatus;
    if (job__resolve(c, pos[0], &sr.id, &rstatus) != 0)
        return rstatus;
    double limit = c->timeout_s;
    c->timeout_s = 0; /* each request keeps the default answer time */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long delay_ms = 20;
    for (;;) {
        int status;
        wire_msg *m = cli_fetch_job(c, sr.id, &status);
        if (!m)
            return status;
        const Jazari__Job *job = wire_msg_env(m)->show_reply->job;
        if (view_job_ended(job)) {
            int code =
                job->state == JAZARI__JOB_STATE__JOB_COMPLETED ? 0
                : job->state == JAZARI__JOB_STATE__JOB_FAILED && job->exit_code > 0 && job->exit_code < 256
                    ? job->exit_code
                    : 1;
            buf b = BUF_INIT;
            if (c->json) {
                json j;
                cli_json_begin(&j, &b);
                view_job(&j, job);
            } else if (code != 0) {
                fprintf(stderr, "jz wait: job %llu %s%s%s\n", (unsigned long long)job->id,
                        view_job_state(job->state), job->reason && *job->reason ? ": " : "",
                        job->reason ? job->reason : "");
            }
            wire_msg_free(m);
            int rc = cli_flush(&b);
            return rc != CLI_OK ? rc : code;
        }
        wire_msg_free(m);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (limit > 0 && waited >= limit) {
            cli_error(c, "job %llu has not ended after %.0f s", (unsigned long long)sr.id, limit);
            return CLI_REFUSED;
        }
        struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        if (delay_ms < 500)
            delay_ms *= 2;
    }
}

/* cmd_acct.c - accounting (issue 14), the client's half: jz history (the
 * finished jobs the controllers keep), jz eff (one job's efficiency, as
 * seff), jz usage (sums by user, account, model, site or day), jz grant
 * (GPU-hours for an account), jz balance and jz invoice. Any controller
 * answers from its history; what is printed is made from the reply's
 * integers (common/money.h), never through a double, so that a figure is
 * the same to the second and to the smallest currency unit everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/money.h"
#include "cli.h"

#define ACCT_NAME_MAX 256     /* a user's or an account's name, as asked */
#define ACCT_PAGES_MAX 100000 /* of the history: a guard against a daemon that never says "no more" */

/* --- what every accounting command checks before it sends anything ------------------------------ */

typedef enum { ACCT_TEXT, ACCT_JSON, ACCT_CSV, ACCT_HTML } acct_form;

static int acct__form(const cli *c, bool csv, bool html, acct_form *f)
{
    if ((int)c->json + (int)csv + (int)html > 1) {
        cli_error(c, "--json, --csv%s do not go together: choose one output", html ? " and --html" : "");
        return -1;
    }
    *f = c->json ? ACCT_JSON : csv ? ACCT_CSV : html ? ACCT_HTML : ACCT_TEXT;
    return 0;
}

/* A user's or an account's name: 1 to ACCT_NAME_MAX printable bytes. */
static int acct__name(const cli *c, const char *what, const char *v)
{
    size_t n = v ? strlen(v) : 0;
    bool ok = n > 0 && n <= ACCT_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)v[i] > ' ' && v[i] != 0x7f;
    if (!ok)
        cli_error(c, "bad %s '%.40s': a name of 1 to %d characters, without spaces", what, v ? v : "",
                  ACCT_NAME_MAX);
    return ok ? 0 : -1;
}

/* --since and --until: when they are given, a moment after 1970 each, the
 * first before the second (0: not given). */
static int acct__window(const cli *c, const char *since, const char *until, int64_t *s, int64_t *u)
{
    *s = *u = 0;
    if (since && cli_opt_when(c, "since", since, s) != 0)
        return -1;
    if (until && cli_opt_when(c, "until", until, u) != 0)
        return -1;
    if ((since && *s <= 0) || (until && *u <= 0)) {
        cli_error(c, "bad --%s '%.40s': a moment after 1970", since && *s <= 0 ? "since" : "until",
                  since && *s <= 0 ? since : until);
        return -1;
    }
    if (since && until && *s >= *u) {
        cli_error(c, "--since '%.40s' is not before --until '%.40s': swap them", since, until);
        return -1;
    }
    return 0;
}

/* The states a finished job can have, as --state takes them. */
static const char *const acct__states[] = {"COMPLETED", "FAILED",    "CANCELLED",
                                           "TIMEOUT",   "NODE_FAIL", "PREEMPTED"};

static const char *acct__state(const cli *c, const char *s)
{
    for (size_t i = 0; i < sizeof acct__states / sizeof *acct__states; i++)
        if (strcasecmp(s, acct__states[i]) == 0)
            return acct__states[i];
    cli_error(c,
              "bad --state '%.40s': one of COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, PREEMPTED "
              "(the history holds finished jobs; jz queue shows the others)",
              s);
    return NULL;
}

/* --- small pieces of output ---------------------------------------------------------------------- */

/* A job's id as Slurm shows it: "ARRAYID_INDEX" for an array's task. */
static const char *acct__id(const Jazari__HistJob *h, char *s, size_t len)
{
    if (h->array_job_id)
        snprintf(s, len, "%llu_%u", (unsigned long long)h->array_job_id, h->array_index);
    else
        snprintf(s, len, "%llu", (unsigned long long)h->id);
    return s;
}

/* Seconds as [D-]HH:MM:SS. */
static void acct__duration(buf *b, uint64_t s)
{
    uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
    if (d)
        buf_printf(b, "%llu-", (unsigned long long)d);
    buf_printf(b, "%02llu:%02llu:%02llu", (unsigned long long)h, (unsigned long long)m,
               (unsigned long long)(s % 60));
}

/* The job's GPU model: the history's, else what its last run had. */
static const char *acct__model(const Jazari__HistJob *h)
{
    if (h->gpu_model && *h->gpu_model)
        return h->gpu_model;
    return h->usage && h->usage->gpu_model ? h->usage->gpu_model : "";
}

static const Jazari__JobUsage acct__no_usage = JAZARI__JOB_USAGE__INIT;

static const Jazari__JobUsage *acct__usage(const Jazari__HistJob *h)
{
    return h->usage ? h->usage : &acct__no_usage;
}

/* A UTC time as the other jz JSON shows it, or null. */
static void acct__json_time(json *j, const char *key, int64_t ms)
{
    char s[40];
    json_kv_str(j, key, cli_utc_time(ms, s, sizeof s));
}

/* An exact decimal as a JSON number: the text written by put into a
 * scratch buffer. */
static void acct__json_milli(json *j, const char *key, uint64_t milli)
{
    buf t = BUF_INIT;
    money_put_milli(&t, milli);
    json_kv_number(j, key, buf_str(&t));
    buf_free(&t);
}

static void acct__json_money(json *j, const char *key, uint64_t micro, unsigned d)
{
    buf t = BUF_INIT;
    money_put_micro(&t, micro, d);
    json_kv_number(j, key, buf_str(&t));
    buf_free(&t);
}

static void acct__json_minor(json *j, const char *key, uint64_t minor, unsigned d)
{
    buf t = BUF_INIT;
    money_put_minor(&t, minor, d);
    json_kv_number(j, key, buf_str(&t));
    buf_free(&t);
}

/* Hours to the thousandth, as --gpu-hours takes them (key NULL: the value
 * alone, its key written). */
static void acct__json_hours(json *j, const char *key, int64_t ms)
{
    buf t = BUF_INIT;
    money_put_hours(&t, ms, 3);
    if (key)
        json_key(j, key);
    json_number(j, buf_str(&t));
    buf_free(&t);
}

/* --- the history, page after page ---------------------------------------------------------------- */

int cli_each_hist(cli *c, Jazari__HistoryRequest *q, cli_hist_fn fn, void *arg, cli_hist_info *info)
{
    q->after_end_ms = 0;
    q->after_id = 0;
    for (unsigned page = 0;; page++) {
        if (page == ACCT_PAGES_MAX) {
            cli_error(c, "the history did not end after %d pages: narrow it with --since and --until",
                      ACCT_PAGES_MAX);
            return CLI_REFUSED;
        }
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_HISTORY_REQUEST;
        req.history_request = q;
        int status;
        wire_msg *m = cli_request_raw(c, &req, &status);
        if (!m)
            return status;
        const Jazari__Envelope *e = wire_msg_env(m);
        if (info && info->allow_unsupported && page == 0 && e->error &&
            e->error->code == JAZARI__ERROR_CODE__UNSUPPORTED) {
            info->unsupported = true; /* a daemon from before the history */
            wire_msg_free(m);
            return CLI_OK;
        }
        if (cli_refused(c, m) || e->body_case != JAZARI__ENVELOPE__BODY_HISTORY_REPLY) {
            if (!e->error || e->error->code == JAZARI__ERROR_CODE__OK)
                cli_error(c, "the daemon answered with %s", wire_body_name(e));
            wire_msg_free(m);
            return CLI_REFUSED;
        }
        const Jazari__HistoryReply *r = e->history_reply;
        if (info) {
            snprintf(info->currency, sizeof info->currency, "%s", r->currency ? r->currency : "");
            info->minor_digits = r->minor_digits > MONEY_DIGITS_MAX ? MONEY_DIGITS_MAX : r->minor_digits;
        }
        bool stop = false;
        for (size_t i = 0; i < r->n_jobs && !stop; i++)
            stop = fn(r->jobs[i], arg) != 0;
        bool more = !stop && r->more && r->n_jobs > 0;
        if (more) {
            /* On after the last row; a daemon that would send the same
             * page again is not followed around in circles. */
            const Jazari__HistJob *last = r->jobs[r->n_jobs - 1];
            more =
                last->end_ms > q->after_end_ms || (last->end_ms == q->after_end_ms && last->id > q->after_id);
            q->after_end_ms = last->end_ms;
            q->after_id = last->id;
        }
        wire_msg_free(m);
        if (!more)
            return CLI_OK;
    }
}

/* --- jz history ---------------------------------------------------------------------------------- */

/* The keys of jz history --json's jobs, and of its CSV's header (INTERFACE.md).
 * CSV lines end in LF, not RFC 4180's CRLF: what jz prints passes through
 * utf8_term (cli_write), which shows a CR as an escape; every CSV reader
 * takes LF. */
static const char *const hist__keys[] = {
    "id",          "name",       "user",        "account",       "state",       "exit_code",
    "submit_time", "start_time", "end_time",    "elapsed_s",     "nodes",       "gpus",
    "gpu_model",   "cpus",       "cpu_seconds", "max_rss_bytes", "gpu_seconds", "cost"};
#define HIST_NKEYS (sizeof hist__keys / sizeof *hist__keys)

typedef struct hist_out {
    acct_form form;
    buf *b;
    json *j;
    cli_hist_info info;
    size_t rows;
} hist_out;

static void hist__json(json *j, const Jazari__HistJob *h, unsigned d)
{
    const Jazari__JobUsage *u = acct__usage(h);
    json_obj_begin(j);
    json_kv_uint(j, "id", h->id);
    json_kv_str(j, "name", h->name);
    json_kv_str(j, "user", h->user);
    json_kv_str(j, "account", h->account);
    json_kv_str(j, "state", view_job_state(h->state));
    json_kv_int(j, "exit_code", h->exit_code);
    acct__json_time(j, "submit_time", h->submit_ms);
    acct__json_time(j, "start_time", h->start_ms);
    acct__json_time(j, "end_time", h->end_ms);
    acct__json_milli(j, "elapsed_s", h->elapsed_ms);
    json_kv_uint(j, "nodes", h->nodes);
    json_kv_uint(j, "gpus", h->gpus);
    const char *model = acct__model(h);
    json_kv_str(j, "gpu_model", *model ? model : NULL);
    json_kv_uint(j, "cpus", h->cpus);
    acct__json_milli(j, "cpu_seconds", u->cpu_ms);
    json_kv_uint(j, "max_rss_bytes", u->max_rss_bytes);
    acct__json_milli(j, "gpu_seconds", u->gpu_ms);
    acct__json_money(j, "cost", u->cost_micro, d);
    json_obj_end(j);
}

static void hist__csv(buf *b, const Jazari__HistJob *h, unsigned d)
{
    const Jazari__JobUsage *u = acct__usage(h);
    char t[40];
    buf_printf(b, "%llu,", (unsigned long long)h->id);
    money_csv_cell(b, h->name);
    buf_putc(b, ',');
    money_csv_cell(b, h->user);
    buf_putc(b, ',');
    money_csv_cell(b, h->account);
    buf_printf(b, ",%s,%d,", view_job_state(h->state), h->exit_code);
    const char *when = cli_utc_time(h->submit_ms, t, sizeof t);
    buf_printf(b, "%s,", when ? when : "");
    when = cli_utc_time(h->start_ms, t, sizeof t);
    buf_printf(b, "%s,", when ? when : "");
    when = cli_utc_time(h->end_ms, t, sizeof t);
    buf_printf(b, "%s,", when ? when : "");
    money_put_milli(b, h->elapsed_ms);
    buf_printf(b, ",%u,%u,", h->nodes, h->gpus);
    money_csv_cell(b, acct__model(h));
    buf_printf(b, ",%u,", h->cpus);
    money_put_milli(b, u->cpu_ms);
    buf_printf(b, ",%llu,", (unsigned long long)u->max_rss_bytes);
    money_put_milli(b, u->gpu_ms);
    buf_putc(b, ',');
    money_put_micro(b, u->cost_micro, d);
    buf_puts(b, "\n");
}

#define HIST_ROW "%-12.12s %-16.16s %-10.10s %-14.14s %-10.10s %6s %-19s %11s %5s %4s %-10.10s %10s\n"

static void hist__line(buf *b, const Jazari__HistJob *h, unsigned d)
{
    const Jazari__JobUsage *u = acct__usage(h);
    char id[48], end[40], exit[24];
    buf el = BUF_INIT, cost = BUF_INIT, gpus = BUF_INIT, nodes = BUF_INIT;
    acct__duration(&el, h->elapsed_ms / 1000);
    money_put_micro(&cost, u->cost_micro, d);
    buf_printf(&gpus, "%u", h->gpus);
    buf_printf(&nodes, "%u", h->nodes);
    if (h->signal)
        snprintf(exit, sizeof exit, "%d:%u", h->exit_code, h->signal);
    else
        snprintf(exit, sizeof exit, "%d", h->exit_code);
    const char *model = acct__model(h);
    buf_printf(b, HIST_ROW, acct__id(h, id, sizeof id), h->name, h->user, h->account,
               view_job_state(h->state), exit, cli_local_time(h->end_ms, end, sizeof end), buf_str(&el),
               buf_str(&nodes), buf_str(&gpus), *model ? model : "-", buf_str(&cost));
    buf_free(&el);
    buf_free(&cost);
    buf_free(&gpus);
    buf_free(&nodes);
}

static int hist__one(const Jazari__HistJob *h, void *arg)
{
    hist_out *o = arg;
    unsigned d = o->info.minor_digits;
    if (o->form == ACCT_JSON)
        hist__json(o->j, h, d);
    else if (o->form == ACCT_CSV)
        hist__csv(o->b, h, d);
    else
        hist__line(o->b, h, d);
    o->rows++;
    return 0;
}

int cmd_history(cli *c, int argc, char **argv)
{
    const char *user = NULL, *account = NULL, *since = NULL, *until = NULL, *state = NULL;
    bool csv = false;
    cli_opt opts[] = {{"user", CLI_STRING, &user},       {"u", CLI_STRING, &user},
                      {"account", CLI_STRING, &account}, {"since", CLI_STRING, &since},
                      {"until", CLI_STRING, &until},     {"state", CLI_STRING, &state},
                      {"csv", CLI_FLAG, &csv},           {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    hist_out o = {0};
    if (acct__form(c, csv, false, &o.form) != 0 || (user && acct__name(c, "--user", user) != 0) ||
        (account && acct__name(c, "--account", account) != 0) ||
        acct__window(c, since, until, &q.since_ms, &q.until_ms) != 0)
        return CLI_USAGE;
    if (state && !(state = acct__state(c, state)))
        return CLI_USAGE;
    q.user = (char *)(user ? user : "");
    q.account = (char *)(account ? account : "");
    q.state = (char *)(state ? state : "");
    buf b = BUF_INIT;
    json j;
    o.b = &b;
    o.j = &j;
    if (o.form == ACCT_JSON) {
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "jobs");
        json_arr_begin(&j);
    } else if (o.form == ACCT_CSV) {
        for (size_t i = 0; i < HIST_NKEYS; i++)
            buf_printf(&b, "%s%s", i ? "," : "", hist__keys[i]);
        buf_puts(&b, "\n");
    }
    int status = cli_each_hist(c, &q, hist__one, &o, &o.info);
    if (status != CLI_OK) {
        buf_free(&b);
        return status;
    }
    if (o.form == ACCT_JSON) {
        json_arr_end(&j);
        json_obj_end(&j);
    } else if (o.form == ACCT_TEXT) {
        /* The header last known: the cost's currency comes with the reply. */
        buf all = BUF_INIT;
        char cost[32];
        snprintf(cost, sizeof cost, "COST%s%s", o.info.currency[0] ? " " : "", o.info.currency);
        buf_printf(&all, HIST_ROW, "ID", "NAME", "USER", "ACCOUNT", "STATE", "EXIT", "END", "ELAPSED",
                   "NODES", "GPUS", "MODEL", cost);
        buf_append(&all, b.data ? b.data : "", b.len);
        buf_free(&b);
        if (!o.rows)
            buf_puts(&all, "(no finished job matches)\n");
        return cli_flush(&all);
    }
    return cli_flush(&b);
}

/* --- jz eff -------------------------------------------------------------------------------------- */

typedef struct eff_find {
    uint64_t id;       /* the job asked for */
    uint64_t array_id; /* or, by ARRAYID_INDEX, this array's task */
    uint32_t index;
    bool by_index;
    Jazari__HistJob *job; /* the one found: a copy of its own (free it) */
} eff_find;

static int eff__match(const Jazari__HistJob *h, void *arg)
{
    eff_find *f = arg;
    bool hit = f->by_index ? h->array_job_id == f->array_id && h->array_index == f->index : h->id == f->id;
    if (!hit)
        return 0;
    /* The reply is freed after this page: keep a copy of the job. */
    size_t len = jazari__hist_job__get_packed_size(h);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        abort();
    jazari__hist_job__pack(h, bytes);
    f->job = jazari__hist_job__unpack(NULL, len, bytes);
    free(bytes);
    if (!f->job)
        abort(); /* our own encoding, unreadable: out of memory */
    return 1;
}

/* Bytes as people read them: "512 MiB", "1.50 GiB", exactly. */
static void eff__bytes(buf *b, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned u = 0;
    uint64_t scale = 1;
    while (u + 1 < sizeof units / sizeof *units && v / scale >= 1024) {
        scale *= 1024;
        u++;
    }
    if (u == 0) {
        buf_printf(b, "%llu B", (unsigned long long)v);
        return;
    }
    unsigned __int128 h = ((unsigned __int128)v * 100 + scale / 2) / scale;
    buf_printf(b, "%llu.%02llu %s", (unsigned long long)(h / 100), (unsigned long long)(h % 100), units[u]);
}

static void eff__json(json *j, const Jazari__HistJob *h, const cli_hist_info *info)
{
    const Jazari__JobUsage *u = acct__usage(h);
    buf t = BUF_INIT;
    json_obj_begin(j);
    json_kv_uint(j, "id", h->id);
    json_key(j, "array_job_id");
    if (h->array_job_id)
        json_uint(j, h->array_job_id);
    else
        json_null(j);
    json_key(j, "array_task_id");
    if (h->array_job_id)
        json_uint(j, h->array_index);
    else
        json_null(j);
    json_kv_str(j, "name", h->name);
    json_kv_str(j, "user", h->user);
    json_kv_str(j, "account", h->account);
    json_kv_str(j, "state", view_job_state(h->state));
    json_kv_int(j, "exit_code", h->exit_code);
    json_kv_uint(j, "signal", h->signal);
    json_kv_uint(j, "nodes", h->nodes);
    json_kv_str(j, "node_list", h->node_list);
    json_kv_uint(j, "cpus", h->cpus);
    acct__json_milli(j, "cpu_seconds", u->cpu_ms);
    acct__json_milli(j, "cpu_alloc_seconds", u->cpu_alloc_ms);
    json_key(j, "cpu_efficiency");
    if (money_put_pct(&t, u->cpu_ms, u->cpu_alloc_ms) == 0)
        json_number(j, buf_str(&t));
    else
        json_null(j);
    buf_reset(&t);
    acct__json_milli(j, "elapsed_s", h->elapsed_ms);
    json_key(j, "time_limit_s");
    if (h->time_limit_s)
        json_uint(j, h->time_limit_s);
    else
        json_null(j);
    json_kv_uint(j, "max_rss_bytes", u->max_rss_bytes);
    uint64_t limit = h->mem_bytes && h->nodes ? h->mem_bytes * h->nodes : 0;
    json_key(j, "mem_limit_bytes");
    if (limit)
        json_uint(j, limit);
    else
        json_null(j);
    json_key(j, "mem_efficiency");
    if (limit && money_put_pct(&t, u->max_rss_bytes, limit) == 0)
        json_number(j, buf_str(&t));
    else
        json_null(j);
    buf_reset(&t);
    json_kv_uint(j, "gpus", h->gpus);
    const char *model = acct__model(h);
    json_kv_str(j, "gpu_model", *model ? model : NULL);
    acct__json_milli(j, "gpu_seconds", u->gpu_ms);
    json_key(j, "gpu_utilization");
    if (u->util_gpu_ms && money_put_pct(&t, u->gpu_util_ms, u->util_gpu_ms) == 0)
        json_number(j, buf_str(&t));
    else
        json_null(j);
    buf_free(&t);
    acct__json_milli(j, "energy_j", u->energy_mj);
    json_kv_uint(j, "requeues", h->requeues);
    json_kv_str(j, "currency", info->currency);
    acct__json_money(j, "cost", u->cost_micro, info->minor_digits);
    json_obj_end(j);
}

static void eff__text(buf *b, const Jazari__HistJob *h, const cli_hist_info *info)
{
    const Jazari__JobUsage *u = acct__usage(h);
    char id[48];
    buf_printf(b, "Job ID: %llu\n", (unsigned long long)h->id);
    if (h->array_job_id)
        buf_printf(b, "Array Job ID: %s\n", acct__id(h, id, sizeof id));
    if (h->name && *h->name)
        buf_printf(b, "Job Name: %s\n", h->name);
    buf_printf(b, "User/Account: %s/%s\n", h->user, h->account);
    if (h->signal)
        buf_printf(b, "State: %s (exit code %d, signal %u)\n", view_job_state(h->state), h->exit_code,
                   h->signal);
    else
        buf_printf(b, "State: %s (exit code %d)\n", view_job_state(h->state), h->exit_code);
    if (h->requeues)
        buf_printf(b, "Requeued: %u times (figures sum its runs)\n", h->requeues);
    buf_printf(b, "Nodes: %u%s%s\n", h->nodes, h->node_list && *h->node_list ? " " : "",
               h->node_list ? h->node_list : "");
    buf_printf(b, "Cores: %u\n", h->cpus);
    buf_puts(b, "CPU Utilized: ");
    acct__duration(b, u->cpu_ms / 1000);
    buf_puts(b, "\nCPU Efficiency: ");
    if (money_put_pct(b, u->cpu_ms, u->cpu_alloc_ms) == 0) {
        buf_puts(b, "% of ");
        acct__duration(b, u->cpu_alloc_ms / 1000);
        buf_puts(b, " core-walltime\n");
    } else {
        buf_puts(b, "not known (no CPU time held)\n");
    }
    buf_puts(b, "Job Wall-clock time: ");
    acct__duration(b, h->elapsed_ms / 1000);
    buf_puts(b, "\nTime limit: ");
    if (h->time_limit_s)
        acct__duration(b, h->time_limit_s);
    else
        buf_puts(b, "none");
    buf_puts(b, "\nMemory Utilized: ");
    if (u->max_rss_bytes)
        eff__bytes(b, u->max_rss_bytes);
    else
        buf_puts(b, "not measured");
    buf_puts(b, "\nMemory Efficiency: ");
    uint64_t limit = h->mem_bytes && h->nodes ? h->mem_bytes * h->nodes : 0;
    if (limit) {
        money_put_pct(b, u->max_rss_bytes, limit);
        buf_puts(b, "% of ");
        eff__bytes(b, limit);
        buf_printf(b, "%s\n", h->nodes > 1 ? " (the limit per node x its nodes)" : "");
    } else {
        buf_puts(b, "no limit asked (--mem)\n");
    }
    const char *model = acct__model(h);
    buf_printf(b, "GPUs: %u%s%s\n", h->gpus, *model ? " x " : "", model);
    if (h->gpus) {
        buf_puts(b, "GPU time: ");
        money_put_hours(b, (int64_t)(u->gpu_ms > INT64_MAX ? INT64_MAX : u->gpu_ms), 2);
        buf_puts(b, " GPU-hours\nGPU Utilization: ");
        if (u->util_gpu_ms && money_put_pct(b, u->gpu_util_ms, u->util_gpu_ms) == 0)
            buf_puts(b, "%\n");
        else
            buf_puts(b, "not measured\n");
        buf_puts(b, "GPU Energy: ");
        if (u->energy_mj) {
            money_put_milli(b, u->energy_mj);
            buf_puts(b, " J\n");
        } else {
            buf_puts(b, "not measured\n");
        }
    }
    buf_puts(b, "Cost: ");
    money_put_micro(b, u->cost_micro, info->minor_digits);
    buf_printf(b, "%s%s\n", info->currency[0] ? " " : "", info->currency);
}

/* "ID" or "ARRAYID_INDEX". 0, or -1 after saying what it takes. */
static int eff__ref(const cli *c, const char *s, eff_find *f)
{
    char *end;
    bool ok = s[0] >= '1' && s[0] <= '9';
    unsigned long long id = ok ? strtoull(s, &end, 10) : 0;
    ok = ok && id > 0 && id < (1ull << 53);
    if (ok && *end == '_') {
        const char *x = end + 1;
        unsigned long idx = *x >= '0' && *x <= '9' ? strtoul(x, &end, 10) : 0;
        ok = *x >= '0' && *x <= '9' && !*end && idx <= 1000000;
        f->by_index = true;
        f->array_id = id;
        f->index = (uint32_t)idx;
    } else {
        ok = ok && !*end;
    }
    if (!ok) {
        cli_error(c, "bad job '%.40s': a job id such as 42, or ARRAYID_INDEX such as 40_3", s);
        return -1;
    }
    f->id = id;
    return 0;
}

int cmd_eff(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, "which job? usage: jz eff JOB (an id, or ARRAYID_INDEX for an array's task)");
        return CLI_USAGE;
    }
    eff_find f = {0};
    if (eff__ref(c, pos[0], &f) != 0)
        return CLI_USAGE;
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    q.user = q.account = q.state = "";
    q.job_id = f.id;
    cli_hist_info info = {0};
    int status = cli_each_hist(c, &q, eff__match, &f, &info);
    if (status != CLI_OK)
        return status;
    if (!f.job) {
        cli_error(c, "job %s is not in the history: it has not finished yet (jz show %s), or it is unknown",
                  pos[0], pos[0]);
        return CLI_REFUSED;
    }
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        eff__json(&j, f.job, &info);
    } else {
        eff__text(&b, f.job, &info);
    }
    jazari__hist_job__free_unpacked(f.job, NULL);
    return cli_flush(&b);
}

/* --- jz usage ------------------------------------------------------------------------------------ */

static const char *const usage__bys[] = {"user", "account", "model", "site", "day"};

int cmd_usage(cli *c, int argc, char **argv)
{
    const char *account = NULL, *by = NULL, *since = NULL, *until = NULL;
    bool csv = false;
    cli_opt opts[] = {{"account", CLI_STRING, &account}, {"by", CLI_STRING, &by},
                      {"since", CLI_STRING, &since},     {"until", CLI_STRING, &until},
                      {"csv", CLI_FLAG, &csv},           {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__UsageRequest q = JAZARI__USAGE_REQUEST__INIT;
    acct_form form;
    if (acct__form(c, csv, false, &form) != 0 || (account && acct__name(c, "--account", account) != 0) ||
        acct__window(c, since, until, &q.since_ms, &q.until_ms) != 0)
        return CLI_USAGE;
    const char *by_ok = by ? NULL : "account";
    for (size_t i = 0; by && i < sizeof usage__bys / sizeof *usage__bys; i++)
        if (strcmp(by, usage__bys[i]) == 0)
            by_ok = usage__bys[i];
    if (!by_ok) {
        cli_error(c, "bad --by '%.40s': one of user, account, model, site, day", by);
        return CLI_USAGE;
    }
    q.account = (char *)(account ? account : "");
    q.by = (char *)by_ok;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_USAGE_REQUEST;
    req.usage_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_USAGE_REPLY, &status);
    if (!m)
        return status;
    const Jazari__UsageReply *r = wire_msg_env(m)->usage_reply;
    unsigned d = r->minor_digits > MONEY_DIGITS_MAX ? MONEY_DIGITS_MAX : r->minor_digits;
    buf b = BUF_INIT;
    if (form == ACCT_JSON) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, "currency", r->currency);
        json_key(&j, "rows");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_rows; i++) {
            const Jazari__UsageRow *w = r->rows[i];
            json_obj_begin(&j);
            json_kv_str(&j, "key", w->key);
            json_kv_uint(&j, "jobs", w->jobs);
            acct__json_milli(&j, "gpu_seconds", w->gpu_ms);
            acct__json_milli(&j, "cpu_seconds", w->cpu_ms);
            acct__json_money(&j, "cost", w->cost_micro, d);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
    } else if (form == ACCT_CSV) {
        buf_puts(&b, "key,jobs,gpu_seconds,cpu_seconds,cost\n");
        for (size_t i = 0; i < r->n_rows; i++) {
            const Jazari__UsageRow *w = r->rows[i];
            money_csv_cell(&b, w->key);
            buf_printf(&b, ",%llu,", (unsigned long long)w->jobs);
            money_put_milli(&b, w->gpu_ms);
            buf_putc(&b, ',');
            money_put_milli(&b, w->cpu_ms);
            buf_putc(&b, ',');
            money_put_micro(&b, w->cost_micro, d);
            buf_puts(&b, "\n");
        }
    } else {
        char key[16], cost[32];
        snprintf(key, sizeof key, "%s", by_ok);
        for (char *p = key; *p; p++)
            *p = (char)(*p - 'a' + 'A');
        snprintf(cost, sizeof cost, "COST%s%s", r->currency && *r->currency ? " " : "",
                 r->currency ? r->currency : "");
        buf_printf(&b, "%-24s %8s %12s %12s %14s\n", key, "JOBS", "GPU-HOURS", "CPU-HOURS", cost);
        uint64_t jobs = 0, gpu = 0, cpu = 0, money = 0;
        for (size_t i = 0; i < r->n_rows; i++) {
            const Jazari__UsageRow *w = r->rows[i];
            buf g = BUF_INIT, p = BUF_INIT, k = BUF_INIT;
            money_put_hours(&g, (int64_t)(w->gpu_ms > INT64_MAX ? INT64_MAX : w->gpu_ms), 2);
            money_put_hours(&p, (int64_t)(w->cpu_ms > INT64_MAX ? INT64_MAX : w->cpu_ms), 2);
            money_put_micro(&k, w->cost_micro, d);
            buf_printf(&b, "%-24s %8llu %12s %12s %14s\n", w->key, (unsigned long long)w->jobs, buf_str(&g),
                       buf_str(&p), buf_str(&k));
            buf_free(&g);
            buf_free(&p);
            buf_free(&k);
            jobs += w->jobs;
            gpu += w->gpu_ms;
            cpu += w->cpu_ms;
            money += money_minor(w->cost_micro, d); /* the total of what the rows show */
        }
        if (r->n_rows > 1) {
            buf g = BUF_INIT, p = BUF_INIT, k = BUF_INIT;
            money_put_hours(&g, (int64_t)(gpu > INT64_MAX ? INT64_MAX : gpu), 2);
            money_put_hours(&p, (int64_t)(cpu > INT64_MAX ? INT64_MAX : cpu), 2);
            money_put_minor(&k, money, d);
            buf_printf(&b, "%-24s %8llu %12s %12s %14s\n", "(total)", (unsigned long long)jobs, buf_str(&g),
                       buf_str(&p), buf_str(&k));
            buf_free(&g);
            buf_free(&p);
            buf_free(&k);
        } else if (!r->n_rows) {
            buf_puts(&b, "(no usage in that window)\n");
        }
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

/* --- grants and balances ------------------------------------------------------------------------- */

/* A period as "FROM .. UNTIL" in UTC. */
static void acct__period(buf *b, int64_t from, int64_t until)
{
    char f[40], u[40];
    const char *fs = cli_utc_time(from, f, sizeof f), *us = cli_utc_time(until, u, sizeof u);
    buf_printf(b, "%s .. %s", fs ? fs : "-", us ? us : "-");
}

static void acct__grant_json(json *j, const Jazari__Grant *g)
{
    json_obj_begin(j);
    json_kv_uint(j, "id", g->id);
    json_kv_str(j, "account", g->account);
    acct__json_time(j, "from", g->from_ms);
    acct__json_time(j, "until", g->until_ms);
    acct__json_hours(j, "gpu_hours", g->gpu_ms);
    acct__json_hours(j, "used_hours", (int64_t)(g->used_ms > INT64_MAX ? INT64_MAX : g->used_ms));
    json_kv_int(j, "gpu_ms", g->gpu_ms);
    json_kv_uint(j, "used_ms", g->used_ms);
    json_kv_str(j, "by", g->by && *g->by ? g->by : NULL);
    acct__json_time(j, "at", g->at_ms);
    json_obj_end(j);
}

int cmd_grant(cli *c, int argc, char **argv)
{
    const char *hours = NULL, *from = NULL, *until = NULL;
    cli_opt opts[] = {{"gpu-hours", CLI_STRING, &hours},
                      {"from", CLI_STRING, &from},
                      {"until", CLI_STRING, &until},
                      {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, opts, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, "which account? usage: jz grant ACCOUNT --gpu-hours N [--from WHEN] [--until WHEN]");
        return CLI_USAGE;
    }
    if (acct__name(c, "account", pos[0]) != 0)
        return CLI_USAGE;
    Jazari__GrantRequest q = JAZARI__GRANT_REQUEST__INIT;
    if (!hours) {
        cli_error(c, "how many? jz grant %.60s --gpu-hours N (a reduction: -N)", pos[0]);
        return CLI_USAGE;
    }
    if (money_parse_milli(hours, true, MONEY_GPU_HOURS_MAX * 1000, &q.gpu_milli_hours) != 0) {
        cli_error(c,
                  "bad --gpu-hours '%.40s': GPU-hours, up to 3 decimals (1000, 12.5), at most %lld; "
                  "-N takes N from the grant of that period",
                  hours, (long long)MONEY_GPU_HOURS_MAX);
        return CLI_USAGE;
    }
    if (from && cli_opt_when(c, "from", from, &q.from_ms) != 0)
        return CLI_USAGE;
    if (until && cli_opt_when(c, "until", until, &q.until_ms) != 0)
        return CLI_USAGE;
    if ((from && q.from_ms <= 0) || (until && q.until_ms <= 0)) {
        cli_error(c, "bad --%s: a moment after 1970", from && q.from_ms <= 0 ? "from" : "until");
        return CLI_USAGE;
    }
    int64_t start = from ? q.from_ms : cli_now_ms();
    if (until && q.until_ms <= start) {
        cli_error(c, "--until '%.40s' is not after the period's start (%s): a later --until", until,
                  from ? from : "now");
        return CLI_USAGE;
    }
    q.account = (char *)pos[0];
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_GRANT_REQUEST;
    req.grant_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_GRANT_REPLY, &status);
    if (!m)
        return status;
    const Jazari__Grant *g = wire_msg_env(m)->grant_reply->grant;
    if (!g) {
        cli_error(c, "the daemon sent no grant");
        wire_msg_free(m);
        return CLI_REFUSED;
    }
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        acct__grant_json(&j, g);
    } else {
        buf_printf(&b, "grant %llu: %s, ", (unsigned long long)g->id, g->account);
        acct__period(&b, g->from_ms, g->until_ms);
        buf_puts(&b, " (UTC): ");
        money_put_hours(&b, g->gpu_ms, 2);
        buf_puts(&b, " GPU-hours granted, ");
        money_put_hours(&b, (int64_t)(g->used_ms > INT64_MAX ? INT64_MAX : g->used_ms), 2);
        buf_puts(&b, " used\n");
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

int cmd_balance(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos == 1 && acct__name(c, "account", pos[0]) != 0)
        return CLI_USAGE;
    Jazari__BalanceRequest q = JAZARI__BALANCE_REQUEST__INIT;
    q.account = (char *)(npos == 1 ? pos[0] : "");
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_BALANCE_REQUEST;
    req.balance_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_BALANCE_REPLY, &status);
    if (!m)
        return status;
    const Jazari__BalanceReply *r = wire_msg_env(m)->balance_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "balances");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_balances; i++) {
            const Jazari__Balance *a = r->balances[i];
            const Jazari__Grant *g = a->grant;
            json_obj_begin(&j);
            json_kv_str(&j, "account", a->account);
            json_kv_bool(&j, "unlimited", g == NULL);
            json_key(&j, "grant");
            if (g)
                acct__grant_json(&j, g);
            else
                json_null(&j);
            json_key(&j, "granted_hours");
            if (g)
                acct__json_hours(&j, NULL, g->gpu_ms);
            else
                json_null(&j);
            json_key(&j, "used_hours");
            if (g)
                acct__json_hours(&j, NULL, (int64_t)(g->used_ms > INT64_MAX ? INT64_MAX : g->used_ms));
            else
                json_null(&j);
            acct__json_hours(&j, "running_hours",
                             (int64_t)(a->running_ms > INT64_MAX ? INT64_MAX : a->running_ms));
            json_key(&j, "remaining_hours");
            if (g)
                acct__json_hours(&j, NULL, a->remaining_ms);
            else
                json_null(&j);
            json_kv_uint(&j, "running_ms", a->running_ms);
            json_key(&j, "remaining_ms");
            if (g)
                json_int(&j, a->remaining_ms);
            else
                json_null(&j);
            json_kv_uint(&j, "held_ms", a->held_ms);
            json_key(&j, "grants");
            json_arr_begin(&j);
            for (size_t k = 0; k < a->n_grants; k++)
                acct__grant_json(&j, a->grants[k]);
            json_arr_end(&j);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        acct__json_time(&j, "now", r->now_ms);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "%-20s %-44s %11s %11s %11s %11s\n", "ACCOUNT", "PERIOD (UTC)", "GRANTED", "USED",
                   "RUNNING", "REMAINING");
        for (size_t i = 0; i < r->n_balances; i++) {
            const Jazari__Balance *a = r->balances[i];
            const Jazari__Grant *g = a->grant;
            if (!g) {
                buf_printf(&b, "%-20s no allocation (unlimited)\n", a->account);
                continue;
            }
            buf per = BUF_INIT, gr = BUF_INIT, us = BUF_INIT, ru = BUF_INIT, re = BUF_INIT;
            acct__period(&per, g->from_ms, g->until_ms);
            money_put_hours(&gr, g->gpu_ms, 2);
            money_put_hours(&us, (int64_t)(g->used_ms > INT64_MAX ? INT64_MAX : g->used_ms), 2);
            money_put_hours(&ru, (int64_t)(a->running_ms > INT64_MAX ? INT64_MAX : a->running_ms), 2);
            money_put_hours(&re, a->remaining_ms, 2);
            buf_printf(&b, "%-20s %-44s %11s %11s %11s %11s\n", a->account, buf_str(&per), buf_str(&gr),
                       buf_str(&us), buf_str(&ru), buf_str(&re));
            buf_free(&per);
            buf_free(&gr);
            buf_free(&us);
            buf_free(&ru);
            buf_free(&re);
        }
        if (!r->n_balances)
            buf_puts(&b, "(no account: you belong to none, or none has jobs or grants)\n");
        else
            buf_puts(&b, "(GPU-hours, each model's hour weighted by its rate)\n");
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

/* --- jz invoice ---------------------------------------------------------------------------------- */

static void inv__json(buf *b, const Jazari__InvoiceReply *r, unsigned d)
{
    json j;
    cli_json_begin(&j, b);
    json_obj_begin(&j);
    json_kv_str(&j, "account", r->account);
    json_kv_str(&j, "tenant", r->tenant && *r->tenant ? r->tenant : NULL);
    json_kv_str(&j, "month", r->month);
    json_kv_str(&j, "currency", r->currency);
    json_key(&j, "lines");
    json_arr_begin(&j);
    for (size_t i = 0; i < r->n_lines; i++) {
        const Jazari__InvoiceLine *l = r->lines[i];
        json_obj_begin(&j);
        json_kv_str(&j, "item", l->item);
        acct__json_hours(&j, "hours", (int64_t)(l->quantity_ms > INT64_MAX ? INT64_MAX : l->quantity_ms));
        json_kv_uint(&j, "quantity_ms", l->quantity_ms);
        json_kv_uint(&j, "jobs", l->jobs);
        acct__json_minor(&j, "amount", l->amount_minor, d);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    acct__json_minor(&j, "total", r->total_minor, d);
    json_key(&j, "jobs");
    json_arr_begin(&j);
    for (size_t i = 0; i < r->n_jobs; i++)
        hist__json(&j, r->jobs[i], d);
    json_arr_end(&j);
    json_key(&j, "reservations");
    json_arr_begin(&j);
    for (size_t i = 0; i < r->n_reservations; i++) {
        const Jazari__ResvCharge *v = r->reservations[i];
        json_obj_begin(&j);
        json_kv_str(&j, "name", v->name);
        json_kv_str(&j, "account", v->account);
        acct__json_time(&j, "start_time", v->start_ms);
        acct__json_time(&j, "end_time", v->end_ms);
        json_kv_uint(&j, "gpus", v->gpus);
        json_kv_str(&j, "gpu_model", v->gpu_model && *v->gpu_model ? v->gpu_model : NULL);
        acct__json_milli(&j, "gpu_seconds", v->gpu_ms);
        acct__json_money(&j, "cost", v->cost_micro, d);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
}

static void inv__csv(buf *b, const Jazari__InvoiceReply *r, unsigned d)
{
    buf_puts(b, "item,hours,quantity_ms,jobs,amount\n");
    for (size_t i = 0; i < r->n_lines; i++) {
        const Jazari__InvoiceLine *l = r->lines[i];
        money_csv_cell(b, l->item);
        buf_putc(b, ',');
        money_put_hours(b, (int64_t)(l->quantity_ms > INT64_MAX ? INT64_MAX : l->quantity_ms), 2);
        buf_printf(b, ",%llu,%llu,", (unsigned long long)l->quantity_ms, (unsigned long long)l->jobs);
        money_put_minor(b, l->amount_minor, d);
        buf_puts(b, "\n");
    }
    buf_puts(b, "total,,,,");
    money_put_minor(b, r->total_minor, d);
    buf_puts(b, "\n");
}

static void inv__text(buf *b, const Jazari__InvoiceReply *r, unsigned d)
{
    buf_printf(b, "Invoice: account %s%s%s%s, %s (UTC)\n", r->account,
               r->tenant && *r->tenant ? " (tenant " : "", r->tenant ? r->tenant : "",
               r->tenant && *r->tenant ? ")" : "", r->month);
    buf_printf(b, "Currency: %s\n\n", r->currency && *r->currency ? r->currency : "(none named)");
    buf_printf(b, "%-36s %12s %8s %14s\n", "ITEM", "HOURS", "JOBS", "AMOUNT");
    for (size_t i = 0; i < r->n_lines; i++) {
        const Jazari__InvoiceLine *l = r->lines[i];
        buf h = BUF_INIT, a = BUF_INIT;
        money_put_hours(&h, (int64_t)(l->quantity_ms > INT64_MAX ? INT64_MAX : l->quantity_ms), 2);
        money_put_minor(&a, l->amount_minor, d);
        buf_printf(b, "%-36s %12s %8llu %14s\n", l->item, buf_str(&h), (unsigned long long)l->jobs,
                   buf_str(&a));
        buf_free(&h);
        buf_free(&a);
    }
    if (!r->n_lines)
        buf_puts(b, "(nothing billed this month)\n");
    buf t = BUF_INIT;
    money_put_minor(&t, r->total_minor, d);
    buf_printf(b, "%-36s %12s %8s %14s %s\n", "TOTAL", "", "", buf_str(&t), r->currency ? r->currency : "");
    buf_free(&t);
    if (r->n_jobs)
        buf_printf(b, "\n%zu jobs billed (jz invoice %s --month %s --json lists them)\n", r->n_jobs,
                   r->account, r->month);
}

static const char inv__css[] = "body{font-family:sans-serif;margin:2em auto;max-width:60em;color:#222}"
                               "h1{font-size:1.4em}table{border-collapse:collapse;width:100%;margin:1em 0}"
                               "th,td{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left}"
                               "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
                               "tr.total td{font-weight:bold;border-top:2px solid #222}"
                               ".small{font-size:.85em;color:#555}";

/* A page that stands alone: no script, no link out, nothing that depends
 * on when it was made (the same reply gives the same bytes). */
static void inv__html(buf *b, const Jazari__InvoiceReply *r, unsigned d)
{
    buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Invoice ");
    money_html(b, r->account);
    buf_puts(b, " ");
    money_html(b, r->month);
    buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Invoice: ", inv__css);
    money_html(b, r->account);
    buf_puts(b, ", ");
    money_html(b, r->month);
    buf_puts(b, " (UTC)</h1>\n<p>Account: ");
    money_html(b, r->account);
    if (r->tenant && *r->tenant) {
        buf_puts(b, "<br>Tenant: ");
        money_html(b, r->tenant);
    }
    buf_puts(b, "<br>Currency: ");
    money_html(b, r->currency && *r->currency ? r->currency : "(none named)");
    buf_puts(b, "</p>\n<table>\n<tr><th>Item</th><th class=\"n\">Hours</th><th class=\"n\">Jobs</th>"
                "<th class=\"n\">Amount</th></tr>\n");
    for (size_t i = 0; i < r->n_lines; i++) {
        const Jazari__InvoiceLine *l = r->lines[i];
        buf_puts(b, "<tr><td>");
        money_html(b, l->item);
        buf_puts(b, "</td><td class=\"n\">");
        money_put_hours(b, (int64_t)(l->quantity_ms > INT64_MAX ? INT64_MAX : l->quantity_ms), 2);
        buf_printf(b, "</td><td class=\"n\">%llu</td><td class=\"n\">", (unsigned long long)l->jobs);
        money_put_minor(b, l->amount_minor, d);
        buf_puts(b, "</td></tr>\n");
    }
    buf_puts(b, "<tr class=\"total\"><td>Total</td><td></td><td></td><td class=\"n\">");
    money_put_minor(b, r->total_minor, d);
    buf_puts(b, " ");
    money_html(b, r->currency);
    buf_puts(b, "</td></tr>\n</table>\n");
    if (r->n_jobs) {
        buf_puts(
            b,
            "<h2>Jobs</h2>\n<table class=\"small\">\n<tr><th>Job</th><th>Name</th><th>User</th><th>State</th>"
            "<th>End (UTC)</th><th class=\"n\">GPUs</th><th>Model</th><th class=\"n\">GPU-hours</th>"
            "<th class=\"n\">Cost</th></tr>\n");
        for (size_t i = 0; i < r->n_jobs; i++) {
            const Jazari__HistJob *h = r->jobs[i];
            const Jazari__JobUsage *u = acct__usage(h);
            char id[48], end[40];
            const char *e = cli_utc_time(h->end_ms, end, sizeof end);
            buf_printf(b, "<tr><td>%s</td><td>", acct__id(h, id, sizeof id));
            money_html(b, h->name);
            buf_puts(b, "</td><td>");
            money_html(b, h->user);
            buf_printf(b, "</td><td>%s</td><td>%s</td><td class=\"n\">%u</td><td>", view_job_state(h->state),
                       e ? e : "", h->gpus);
            money_html(b, acct__model(h));
            buf_puts(b, "</td><td class=\"n\">");
            money_put_hours(b, (int64_t)(u->gpu_ms > INT64_MAX ? INT64_MAX : u->gpu_ms), 2);
            buf_puts(b, "</td><td class=\"n\">");
            money_put_micro(b, u->cost_micro, d);
            buf_puts(b, "</td></tr>\n");
        }
        buf_puts(b, "</table>\n");
    }
    if (r->n_reservations) {
        buf_puts(b,
                 "<h2>Reservations</h2>\n<table class=\"small\">\n<tr><th>Name</th><th>From (UTC)</th>"
                 "<th>Until (UTC)</th><th class=\"n\">GPUs</th><th>Model</th><th class=\"n\">GPU-hours</th>"
                 "<th class=\"n\">Cost</th></tr>\n");
        for (size_t i = 0; i < r->n_reservations; i++) {
            const Jazari__ResvCharge *v = r->reservations[i];
            char s0[40], s1[40];
            const char *t0 = cli_utc_time(v->start_ms, s0, sizeof s0),
                       *t1 = cli_utc_time(v->end_ms, s1, sizeof s1);
            buf_puts(b, "<tr><td>");
            money_html(b, v->name);
            buf_printf(b, "</td><td>%s</td><td>%s</td><td class=\"n\">%u</td><td>", t0 ? t0 : "",
                       t1 ? t1 : "", v->gpus);
            money_html(b, v->gpu_model);
            buf_puts(b, "</td><td class=\"n\">");
            money_put_hours(b, (int64_t)(v->gpu_ms > INT64_MAX ? INT64_MAX : v->gpu_ms), 2);
            buf_puts(b, "</td><td class=\"n\">");
            money_put_micro(b, v->cost_micro, d);
            buf_puts(b, "</td></tr>\n");
        }
        buf_puts(b, "</table>\n");
    }
    buf_puts(b, "</body>\n</html>\n");
}

int cmd_invoice(cli *c, int argc, char **argv)
{
    const char *month = NULL;
    bool csv = false, html = false;
    cli_opt opts[] = {{"month", CLI_STRING, &month},
                      {"csv", CLI_FLAG, &csv},
                      {"html", CLI_FLAG, &html},
                      {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, opts, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    acct_form form;
    if (acct__form(c, csv, html, &form) != 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, "which account? usage: jz invoice ACCOUNT --month YYYY-MM [--json|--csv|--html]");
        return CLI_USAGE;
    }
    if (acct__name(c, "account", pos[0]) != 0)
        return CLI_USAGE;
    int year, mon;
    if (!month) {
        cli_error(c, "which month? jz invoice %.60s --month YYYY-MM (UTC)", pos[0]);
        return CLI_USAGE;
    }
    if (money_parse_month(month, &year, &mon) != 0) {
        cli_error(c, "bad --month '%.40s': YYYY-MM, such as 2026-11 (a month of UTC)", month);
        return CLI_USAGE;
    }
    Jazari__InvoiceRequest q = JAZARI__INVOICE_REQUEST__INIT;
    q.account = (char *)pos[0];
    q.month = (char *)month;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_INVOICE_REQUEST;
    req.invoice_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_INVOICE_REPLY, &status);
    if (!m)
        return status;
    const Jazari__InvoiceReply *r = wire_msg_env(m)->invoice_reply;
    unsigned d = r->minor_digits > MONEY_DIGITS_MAX ? MONEY_DIGITS_MAX : r->minor_digits;
    buf b = BUF_INIT;
    if (form == ACCT_JSON)
        inv__json(&b, r, d);
    else if (form == ACCT_CSV)
        inv__csv(&b, r, d);
    else if (form == ACCT_HTML)
        inv__html(&b, r, d);
    else
        inv__text(&b, r, d);
    wire_msg_free(m);
    return cli_flush(&b);
}

/* hist.h - the controllers' job history (issue 14): every finished job and
 * every reservation's charge, kept in an SQLite database long after the
 * replicated queue forgot them, and the queries jz history, jz usage and
 * jz invoice answer from it. Pure storage: no libuv, no clock; the caller
 * derives the records from the committed log (the same on every
 * controller), so any controller can answer and none can disagree.
 *
 * One writer handle (the controller's apply path) batches puts into one
 * transaction until hist_flush; read-only handles (for queries, in another
 * thread if the caller likes) see only committed batches (WAL). A handle
 * is used by one thread at a time.
 *
 * Every function that can fail returns 0 on success, -1 with a message in
 * err (one line saying what failed, with the value) otherwise; nothing is
 * changed by a call that fails before touching the database. */
#ifndef JZ_HIST_H
#define JZ_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jazari.pb-c.h"

#define HIST_SCHEMA 1                /* this code's schema version */
#define HIST_PAGE_MAX 10000u         /* jobs in one history page, by default and at most */
#define HIST_KEY_MAX 256             /* bytes of a user, account, model, site, name asked or stored */
#define HIST_TEXT_MAX 4096           /* bytes of another string field of a record */
#define HIST_RECORD_MAX (256u << 10) /* bytes of one encoded record */
#define HIST_SCOPE_MAX 256           /* accounts in one scope */
#define HIST_USAGE_ROWS_MAX 100000   /* groups in one usage reply */
#define HIST_INVOICE_JOBS_MAX 20000u /* jobs listed in one invoice, by default (its lines count them all) */
#define HIST_INVOICE_LINES_MAX 4096  /* lines of one invoice */
#define HIST_TIME_MAX 253402300799999ll /* 9999-12-31T23:59:59.999Z: the latest time stored */

typedef struct hist hist;

/* Opens the database at path. Writable: created if absent (WAL,
 * synchronous=NORMAL, incremental auto-vacuum, the schema and its version
 * in a table `meta`). read_only: for queries; the database must exist. A
 * file of a newer schema, or one that is not a Jazari history, is refused
 * with a line saying so. *out belongs to the caller: hist_close. */
int hist_open(hist **out, const char *path, bool read_only, char *err, size_t errlen);
/* Commits the open batch (its error is lost: flush first to see it) and
 * closes. NULL is fine. */
void hist_close(hist *h);

/* Records a finished job (by its id) or a reservation's charge (by its
 * name and start_ms), replacing the record of the same key, inside the open
 * batch (a transaction begun by the first put). The same record twice
 * changes nothing. Refused (nothing stored): id 0 or above INT64_MAX, an
 * end_ms outside [0, HIST_TIME_MAX], a string that is not UTF-8 or too
 * long, a record over HIST_RECORD_MAX. j and c stay the caller's. */
int hist_put_job(hist *h, const Jazari__HistJob *j, char *err, size_t errlen);
int hist_put_resv(hist *h, const Jazari__ResvCharge *c, char *err, size_t errlen);
/* Records one run of a job (by id and attempt), as hist_put_job does:
 * usage and invoices sum the runs, the jobs' records are what jz history
 * lists. */
int hist_put_run(hist *h, const Jazari__RunCharge *r, char *err, size_t errlen);
/* Remembers, in the open batch, how far the caller derived records (its
 * log index, say), so that after a crash it knows where to start again:
 * the mark and the puts before it are committed together or not at all. */
int hist_set_mark(hist *h, uint64_t mark, char *err, size_t errlen);
/* The last committed mark (0: none). */
int hist_mark(hist *h, uint64_t *mark, char *err, size_t errlen);
/* Commits the batch (nothing to do without one). On failure the batch is
 * rolled back: its puts are lost, hist_pending is 0. */
int hist_flush(hist *h, char *err, size_t errlen);
/* Puts (and marks) not yet committed. */
size_t hist_pending(const hist *h);
/* Drops the jobs, runs and reservation charges that ended before before_ms, at
 * most max of each (0: all; the oldest first), commits (with the open
 * batch), and gives the freed pages back to the file system. *deleted
 * (may be NULL): how many records went. */
int hist_expire(hist *h, int64_t before_ms, uint64_t max, uint64_t *deleted, char *err, size_t errlen);
/* Checkpoints the WAL into the database and truncates it (what a
 * controller does when idle; the WAL also checkpoints itself). */
int hist_checkpoint(hist *h, char *err, size_t errlen);
/* How many jobs and reservation charges are stored (either may be NULL). */
int hist_count(hist *h, uint64_t *jobs, uint64_t *resv, char *err, size_t errlen);

/* Who may see what: everything (all), or the jobs of user, or of these
 * accounts and their projects ("a" covers "a" and "a/x", not "ab" nor
 * "a-b"): a job is visible when any of them says so. All false and empty:
 * nothing. The strings stay the caller's. */
typedef struct hist_scope {
    bool all;
    const char *user; /* NULL or "": none */
    const char *const *accounts;
    size_t n_accounts;
} hist_scope;

/* The jobs q asks for that s lets the caller see (q->user exactly,
 * q->account with its projects, q->state one or a comma list of JOB_STATE
 * names without "JOB_", q->since_ms <= end < q->until_ms (0: no bound),
 * q->job_id: that job or its array's tasks), by (end_ms, id), after
 * (q->after_end_ms, q->after_id) when either is set, at most q->max (0
 * or more: page_max; page_max 0: HIST_PAGE_MAX). out->more: another page
 * follows. out is the caller's, initialised (JAZARI__HISTORY_REPLY__INIT);
 * its jobs are filled (exactly the records stored) and freed with
 * hist_reply_free; currency and minor_digits are left to the caller. */
/* The states of q->state ("COMPLETED,failed": names without "JOB_", any
 * case, blanks and empty items ignored) as a mask of 1 << state, 0 for
 * none: the request's own check, before a query. */
int hist_state_mask(const char *text, int64_t *mask, char *err, size_t errlen);
int hist_query(hist *h, const Jazari__HistoryRequest *q, const hist_scope *s, uint32_t page_max,
               Jazari__HistoryReply *out, char *err, size_t errlen);
void hist_reply_free(Jazari__HistoryReply *out);

/* The runs' usage (jobs: how many jobs they are of), summed by q->by: "user", "account" (the default for
 * ""), "model", "site" or "day" (the UTC date of the end, YYYY-MM-DD),
 * for q->account (with its projects; "": every account s lets the caller
 * see) and q->since_ms <= end < q->until_ms (0: no bound); rows by key.
 * Reservations are not in it (hist_invoice has them). out is the
 * caller's, initialised; its rows are freed with hist_usage_free. */
int hist_usage(hist *h, const Jazari__UsageRequest *q, const hist_scope *s, Jazari__UsageReply *out,
               char *err, size_t errlen);
void hist_usage_free(Jazari__UsageReply *out);

/* A micro-unit amount in minor units of a currency of digits (0-6)
 * decimals, rounded half up: 1,234,500 micro at 2 digits is 123, 1,235,000
 * is 124. */
uint64_t hist_minor(uint64_t micro, uint32_t digits);

/* The invoice of account (and its projects) for the jobs and reservation
 * charges that ended in [month_start_ms, month_end_ms), the lines from its
 * runs that ended then (a job's runs bill in the months they ended): one line per GPU
 * model ("GPU-hours H100": the Σ of gpu_ms, the Σ of gpu_cost_micro
 * rounded), one "CPU-hours" (Σ cpu_alloc_ms, Σ of cost_micro -
 * gpu_cost_micro rounded), one per reservation ("reservation NAME");
 * total_minor their sum. Lines: GPU models by name, CPU-hours, then
 * reservations; jobs and reservations listed by (end_ms, id) and
 * (end_ms, name, start_ms), at most jobs_max jobs (0: HIST_INVOICE_JOBS_MAX;
 * the lines count every job). Nothing depends on when it is made: the same
 * records give the same bytes. Sets minor_digits, lines, total_minor, jobs
 * and reservations (freed with hist_invoice_free); account, month,
 * currency and tenant are left to the caller. */
int hist_invoice(hist *h, const char *account, int64_t month_start_ms, int64_t month_end_ms,
                 uint32_t minor_digits, uint32_t jobs_max, Jazari__InvoiceReply *out, char *err,
                 size_t errlen);
void hist_invoice_free(Jazari__InvoiceReply *out);

#endif

/* hist.c - the job history over SQLite: a table per kind of record, a
 * column for each field a query filters or sums on, and the record itself
 * as it was encoded (so a reply is exactly what was stored).
 *
 * Every statement's text is made of fixed fragments; what a user typed
 * only ever reaches SQLite as a bound parameter. */
#include "hist.h"

#include <ctype.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/buf.h"
#include "../../common/utf8.h"
#include "../../common/xmem.h"

/* PRAGMA application_id of our files ("JZHI"): another program's SQLite
 * database is never taken for a history, nor written to. */
#define HIST_APP_ID 0x4a5a4849
#define HIST_BUSY_MS 5000
/* The writer runs on the controller's loop: another program holding the
 * file (a site's report) must not stall it; a write that finds it busy
 * fails and is retried. */
#define HIST_WRITER_BUSY_MS 100
#define HIST_CACHE_KIB_WRITER 65536
#define HIST_CACHE_KIB_READER 16384
#define HIST_STATE_TEXT_MAX 200
/* Projects of one statement made into index ranges of their own: with
 * the scope's terms, the OR stays below SQLite's expression depth (1000). */
#define HIST_PROJECTS_MAX 200

/* Version 1. A later version adds its changes as a step from the one
 * before, run by hist__schema on an older file. */
static const char hist_schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    /* id is the rowid: the job's own number, no second key. The sums'
     * columns are the record's numbers (clamped to INT64_MAX). */
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, end_ms INTEGER NOT NULL, user TEXT NOT NULL,"
    " account TEXT NOT NULL, state INTEGER NOT NULL, gpu_model TEXT NOT NULL, site TEXT NOT NULL,"
    " array_job_id INTEGER NOT NULL, gpu_ms INTEGER NOT NULL, cpu_alloc_ms INTEGER NOT NULL,"
    " cost_micro INTEGER NOT NULL, gpu_cost_micro INTEGER NOT NULL, charge_ms INTEGER NOT NULL,"
    " rec BLOB NOT NULL);"
    /* (end_ms, rowid): the order of every listing, and of expiry. */
    "CREATE INDEX jobs_end ON jobs(end_ms);"
    "CREATE INDEX jobs_account ON jobs(account, end_ms);"
    "CREATE INDEX jobs_user ON jobs(user, end_ms);"
    /* Only array tasks: most jobs are not one. */
    "CREATE INDEX jobs_array ON jobs(array_job_id) WHERE array_job_id <> 0;"
    "CREATE TABLE resv(name TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,"
    " account TEXT NOT NULL, gpu_ms INTEGER NOT NULL, cost_micro INTEGER NOT NULL, rec BLOB NOT NULL,"
    " PRIMARY KEY(name, start_ms));"
    "CREATE INDEX resv_end ON resv(end_ms);"
    "CREATE INDEX resv_account ON resv(account, end_ms);"
    /* Every run of a job (a requeued job has several), fixed when it
     * ended: usage and invoices sum these, so a month's figures never
     * change once its runs have ended (a job requeued after its end moves
     * its own record, not its old runs). */
    "CREATE TABLE runs(id INTEGER NOT NULL, attempt INTEGER NOT NULL, end_ms INTEGER NOT NULL,"
    " user TEXT NOT NULL, account TEXT NOT NULL, gpu_model TEXT NOT NULL, site TEXT NOT NULL,"
    " gpu_ms INTEGER NOT NULL, cpu_alloc_ms INTEGER NOT NULL, cost_micro INTEGER NOT NULL,"
    " gpu_cost_micro INTEGER NOT NULL, charge_ms INTEGER NOT NULL, rec BLOB NOT NULL,"
    " PRIMARY KEY(id, attempt)) WITHOUT ROWID;"
    "CREATE INDEX runs_end ON runs(end_ms);"
    "CREATE INDEX runs_account ON runs(account, end_ms);"
    "CREATE INDEX runs_user ON runs(user, end_ms);";

struct hist {
    sqlite3 *db;
    char *path;
    bool read_only;
    bool in_batch;
    size_t pending;
    /* The writer's statements, prepared once. */
    sqlite3_stmt *begin, *commit, *rollback, *put_job, *put_resv, *put_run, *set_mark;
    /* Every handle's: the seeks for an account's projects, in jobs and in
     * runs. */
    sqlite3_stmt *project_first, *project_next, *run_project_first, *run_project_next;
};

__attribute__((format(printf, 3, 4))) static int hist__err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "history PATH: WHAT: SQLite's message". */
static int hist__db_err(const hist *h, const char *what, char *err, size_t errlen)
{
    return hist__err(err, errlen, "history %s: %s: %s", h->path, what, sqlite3_errmsg(h->db));
}

static int hist__exec(hist *h, const char *sql, const char *what, char *err, size_t errlen)
{
    if (sqlite3_exec(h->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return hist__db_err(h, what, err, errlen);
    return 0;
}

/* Runs a statement that returns no row (or whose rows are not wanted)
 * and resets it. */
static int hist__run(hist *h, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    int ret = rc == SQLITE_DONE ? 0 : hist__db_err(h, what, err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* One integer from a query without parameters; -1 on failure. */
static int hist__int(hist *h, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
        return hist__db_err(h, sql, err, errlen);
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : hist__db_err(h, sql, err, errlen);
    sqlite3_finalize(st);
    return ret;
}

/* --- opening ---------------------------------------------------------------- */

/* Checks (and on a new writable file, creates) the schema. */
static int hist__schema(hist *h, char *err, size_t errlen)
{
    int64_t app = 0, tables = 0, version = 0;
    if (!h->read_only && hist__exec(h, "BEGIN IMMEDIATE", "begin", err, errlen) != 0)
        return -1;
    int ret = -1;
    if (hist__int(h, "PRAGMA application_id", &app, err, errlen) != 0 ||
        hist__int(h, "SELECT count(*) FROM sqlite_schema", &tables, err, errlen) != 0)
        goto out;
    if (app == 0 && tables == 0) {
        if (h->read_only) {
            hist__err(err, errlen, "history %s: empty (no controller has written it yet)", h->path);
            goto out;
        }
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; INSERT INTO meta VALUES('schema', %d);",
                 HIST_APP_ID, HIST_SCHEMA);
        if (hist__exec(h, hist_schema_v1, "create the schema", err, errlen) != 0 ||
            hist__exec(h, sql, "create the schema", err, errlen) != 0)
            goto out;
    } else if (app != HIST_APP_ID) {
        hist__err(err, errlen, "history %s: not a Jazari job history (SQLite application_id %#" PRIx64 ")",
                  h->path, (uint64_t)app);
        goto out;
    }
    if (hist__int(h, "SELECT value FROM meta WHERE key = 'schema'", &version, err, errlen) != 0)
        goto out;
    if (version > HIST_SCHEMA) {
        hist__err(err, errlen,
                  "history %s: schema version %" PRId64
                  " is newer than this jazarid's (%d): run a newer jazarid, "
                  "or move the file away to start a new history",
                  h->path, version, HIST_SCHEMA);
        goto out;
    }
    if (version < 1) {
        hist__err(err, errlen, "history %s: no schema version in its meta table (damaged?)", h->path);
        goto out;
    }
    ret = 0;
out:
    if (!h->read_only) {
        if (ret == 0 && hist__exec(h, "COMMIT", "commit the schema", err, errlen) != 0)
            ret = -1;
        if (ret != 0)
            sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return ret;
}

static int hist__prepare(hist *h, sqlite3_stmt **st, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return hist__db_err(h, "prepare", err, errlen);
    return 0;
}

static int hist__prepare_writer(hist *h, char *err, size_t errlen)
{
    /* An identical record is not written again (the WHERE of the upsert):
     * a re-put after a restart costs a read, not a page. */
    static const char put_job[] =
        "INSERT INTO jobs(id, end_ms, user, account, state, gpu_model, site, array_job_id, gpu_ms, "
        "cpu_alloc_ms,"
        " cost_micro, gpu_cost_micro, charge_ms, rec) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
        "?12, ?13, ?14)"
        " ON CONFLICT(id) DO UPDATE SET end_ms = excluded.end_ms, user = excluded.user, account = "
        "excluded.account,"
        " state = excluded.state, gpu_model = excluded.gpu_model, site = excluded.site,"
        " array_job_id = excluded.array_job_id, gpu_ms = excluded.gpu_ms, cpu_alloc_ms = "
        "excluded.cpu_alloc_ms,"
        " cost_micro = excluded.cost_micro, gpu_cost_micro = excluded.gpu_cost_micro,"
        " charge_ms = excluded.charge_ms, rec = excluded.rec WHERE rec IS NOT excluded.rec";
    static const char put_resv[] =
        "INSERT INTO resv(name, start_ms, end_ms, account, gpu_ms, cost_micro, rec) VALUES(?1, ?2, ?3, ?4, "
        "?5, ?6, ?7)"
        " ON CONFLICT(name, start_ms) DO UPDATE SET end_ms = excluded.end_ms, account = excluded.account,"
        " gpu_ms = excluded.gpu_ms, cost_micro = excluded.cost_micro, rec = excluded.rec"
        " WHERE rec IS NOT excluded.rec";
    static const char put_run[] =
        "INSERT INTO runs(id, attempt, end_ms, user, account, gpu_model, site, gpu_ms, cpu_alloc_ms, "
        "cost_micro,"
        " gpu_cost_micro, charge_ms, rec) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        " ON CONFLICT(id, attempt) DO UPDATE SET end_ms = excluded.end_ms, user = excluded.user,"
        " account = excluded.account, gpu_model = excluded.gpu_model, site = excluded.site,"
        " gpu_ms = excluded.gpu_ms, cpu_alloc_ms = excluded.cpu_alloc_ms, cost_micro = excluded.cost_micro,"
        " gpu_cost_micro = excluded.gpu_cost_micro, charge_ms = excluded.charge_ms, rec = excluded.rec"
        " WHERE rec IS NOT excluded.rec";
    static const char set_mark[] = "INSERT INTO meta(key, value) VALUES('mark', ?1)"
                                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value";
    return hist__prepare(h, &h->begin, "BEGIN IMMEDIATE", err, errlen) ||
                   hist__prepare(h, &h->commit, "COMMIT", err, errlen) ||
                   hist__prepare(h, &h->rollback, "ROLLBACK", err, errlen) ||
                   hist__prepare(h, &h->put_job, put_job, err, errlen) ||
                   hist__prepare(h, &h->put_resv, put_resv, err, errlen) ||
                   hist__prepare(h, &h->put_run, put_run, err, errlen) ||
                   hist__prepare(h, &h->set_mark, set_mark, err, errlen)
               ? -1
               : 0;
}

static void hist__free(hist *h)
{
    sqlite3_stmt *sts[] = {
        h->begin,    h->commit,        h->rollback,     h->put_job,           h->put_resv,        h->put_run,
        h->set_mark, h->project_first, h->project_next, h->run_project_first, h->run_project_next};
    for (size_t i = 0; i < sizeof sts / sizeof(sqlite3_stmt *); i++)
        sqlite3_finalize(sts[i]);
    sqlite3_close_v2(h->db);
    free(h->path);
    free(h);
}

int hist_open(hist **out, const char *path, bool read_only, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path)
        return hist__err(err, errlen, "history: no database path");
    hist *h = xcalloc(1, sizeof *h);
    h->path = xstrdup(path);
    h->read_only = read_only;
    int flags =
        (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &h->db, flags, NULL) != SQLITE_OK) {
        if (!h->db) {
            hist__err(err, errlen, "history %s: cannot open: out of memory", path);
            goto err;
        }
        hist__db_err(h, read_only ? "cannot open for reading" : "cannot open", err, errlen);
        goto err;
    }
    sqlite3_extended_result_codes(h->db, 1);
    sqlite3_busy_timeout(h->db, read_only ? HIST_BUSY_MS : HIST_WRITER_BUSY_MS);
    /* A file made by someone else runs none of its own SQL in ours
     * (triggers, views with functions) and cannot corrupt itself through
     * us. */
    sqlite3_db_config(h->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(h->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    /* The writer inserts into three indexes at keys all over them (user,
     * account): with SQLite's default 2 MiB of cache, every batch read
     * their pages again (64 MiB: 1.4x the insert rate at a million jobs,
     * bench-hist). Taken as used, not at once. */
    char cache[64];
    snprintf(cache, sizeof cache, "PRAGMA cache_size = -%d",
             read_only ? HIST_CACHE_KIB_READER : HIST_CACHE_KIB_WRITER);
    if (hist__exec(h, cache, "set the cache size", err, errlen) != 0)
        goto err;
    if (!read_only) {
        /* auto_vacuum only takes on a file without tables: set before the
         * schema, so that expiry gives space back (hist_expire). */
        if (hist__exec(h, "PRAGMA auto_vacuum = INCREMENTAL", "set auto_vacuum", err, errlen) != 0)
            goto err;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
            hist__db_err(h, "set WAL", err, errlen);
            goto err;
        }
        int rc = sqlite3_step(st);
        bool wal = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            hist__err(err, errlen,
                      "history %s: cannot use a write-ahead log here (file system without shared memory?)",
                      path);
            goto err;
        }
        /* In WAL mode, NORMAL loses at most the last commits on a power
         * cut, never the file: the records are derived from the log
         * again from the last committed mark. */
        if (hist__exec(h, "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 67108864",
                       "set synchronous", err, errlen) != 0)
            goto err;
    }
    if (hist__schema(h, err, errlen) != 0)
        goto err;
    if (!read_only && hist__prepare_writer(h, err, errlen) != 0)
        goto err;
    static const char *const seek[] = {
        "SELECT account FROM jobs WHERE account >= ?1 AND account < ?2 ORDER BY account LIMIT 1",
        "SELECT account FROM jobs WHERE account > ?1 AND account < ?2 ORDER BY account LIMIT 1",
        "SELECT account FROM runs WHERE account >= ?1 AND account < ?2 ORDER BY account LIMIT 1",
        "SELECT account FROM runs WHERE account > ?1 AND account < ?2 ORDER BY account LIMIT 1",
    };
    if (hist__prepare(h, &h->project_first, seek[0], err, errlen) != 0 ||
        hist__prepare(h, &h->project_next, seek[1], err, errlen) != 0 ||
        hist__prepare(h, &h->run_project_first, seek[2], err, errlen) != 0 ||
        hist__prepare(h, &h->run_project_next, seek[3], err, errlen) != 0)
        goto err;
    *out = h;
    return 0;
err:
    hist__free(h);
    return -1;
}

void hist_close(hist *h)
{
    if (!h)
        return;
    char err[256];
    hist_flush(h, err, sizeof err);
    hist__free(h);
}

/* --- writing ---------------------------------------------------------------- */

/* A string field of a record: UTF-8 and at most max bytes (NULL is ""). */
static int hist__text(const char *s, size_t max, const char *what, char *err, size_t errlen)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return hist__err(err, errlen, "history: %s longer than %zu bytes", what, max);
    if (!utf8_valid(s, n))
        return hist__err(err, errlen, "history: %s is not UTF-8", what);
    return 0;
}

static const char *hist__s(const char *s)
{
    return s ? s : "";
}

static int64_t hist__col(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int hist__writer(hist *h, char *err, size_t errlen)
{
    if (h->read_only)
        return hist__err(err, errlen, "history %s: opened read-only", h->path);
    return 0;
}

/* Begins the batch on its first put. */
static int hist__batch(hist *h, char *err, size_t errlen)
{
    if (h->in_batch)
        return 0;
    if (hist__run(h, h->begin, "begin a batch", err, errlen) != 0)
        return -1;
    h->in_batch = true;
    h->pending = 0;
    return 0;
}

static int hist__check_job(const Jazari__HistJob *j, char *err, size_t errlen)
{
    if (j->id == 0 || j->id > (uint64_t)INT64_MAX)
        return hist__err(err, errlen, "history: job id %" PRIu64 " out of range", j->id);
    if (j->array_job_id > (uint64_t)INT64_MAX)
        return hist__err(err, errlen, "history: job %" PRIu64 ": array id %" PRIu64 " out of range", j->id,
                         j->array_job_id);
    if (j->end_ms < 0 || j->end_ms > HIST_TIME_MAX)
        return hist__err(err, errlen, "history: job %" PRIu64 ": end time %" PRId64 " ms out of range", j->id,
                         j->end_ms);
    const struct {
        const char *s;
        size_t max;
        const char *what;
    } f[] = {
        {j->name, HIST_KEY_MAX, "name"},
        {j->user, HIST_KEY_MAX, "user"},
        {j->account, HIST_KEY_MAX, "account"},
        {j->qos, HIST_KEY_MAX, "qos"},
        {j->partition, HIST_KEY_MAX, "partition"},
        {j->site, HIST_KEY_MAX, "site"},
        {j->gpu_model, HIST_KEY_MAX, "gpu model"},
        {j->node_list, HIST_RECORD_MAX, "node list"},
        {j->usage ? j->usage->gpu_model : NULL, HIST_KEY_MAX, "usage's gpu model"},
        {j->usage ? j->usage->nodes : NULL, HIST_RECORD_MAX, "usage's nodes"},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        if (hist__text(f[i].s, f[i].max, f[i].what, err, errlen) != 0) {
            size_t n = err && errlen ? strlen(err) : 0;
            if (n + 1 < errlen)
                snprintf(err + n, errlen - n, " (job %" PRIu64 ")", j->id);
            return -1;
        }
    }
    return 0;
}

int hist_put_job(hist *h, const Jazari__HistJob *j, char *err, size_t errlen)
{
    if (hist__writer(h, err, errlen) != 0 || hist__check_job(j, err, errlen) != 0)
        return -1;
    size_t len = jazari__hist_job__get_packed_size(j);
    if (len > HIST_RECORD_MAX)
        return hist__err(err, errlen, "history: job %" PRIu64 ": record of %zu bytes (at most %u)", j->id,
                         len, HIST_RECORD_MAX);
    if (hist__batch(h, err, errlen) != 0)
        return -1;
    uint8_t *rec = xcalloc(len ? len : 1, 1);
    jazari__hist_job__pack(j, rec);
    const Jazari__JobUsage *u = j->usage;
    /* The model billed: the one it ran on (usage), else the one asked. */
    const char *model = u && u->gpu_model && *u->gpu_model ? u->gpu_model : hist__s(j->gpu_model);
    sqlite3_stmt *st = h->put_job;
    sqlite3_bind_int64(st, 1, (int64_t)j->id);
    sqlite3_bind_int64(st, 2, j->end_ms);
    sqlite3_bind_text(st, 3, hist__s(j->user), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hist__s(j->account), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, (int)j->state);
    sqlite3_bind_text(st, 6, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, hist__s(j->site), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (int64_t)j->array_job_id);
    sqlite3_bind_int64(st, 9, hist__col(u ? u->gpu_ms : 0));
    sqlite3_bind_int64(st, 10, hist__col(u ? u->cpu_alloc_ms : 0));
    sqlite3_bind_int64(st, 11, hist__col(u ? u->cost_micro : 0));
    sqlite3_bind_int64(st, 12, hist__col(u ? u->gpu_cost_micro : 0));
    sqlite3_bind_int64(st, 13, hist__col(u ? u->charge_ms : 0));
    sqlite3_bind_blob(st, 14, rec, (int)len, SQLITE_STATIC);
    int ret = hist__run(h, st, "store a job", err, errlen);
    free(rec);
    if (ret == 0)
        h->pending++;
    return ret;
}

int hist_put_run(hist *h, const Jazari__RunCharge *r, char *err, size_t errlen)
{
    if (hist__writer(h, err, errlen) != 0)
        return -1;
    if (r->id == 0 || r->id > INT64_MAX)
        return hist__err(err, errlen, "history: a run of job %" PRIu64 ": not a job id", r->id);
    if (hist__text(r->user, HIST_KEY_MAX, "run user", err, errlen) != 0 ||
        hist__text(r->account, HIST_KEY_MAX, "run account", err, errlen) != 0 ||
        hist__text(r->gpu_model, HIST_KEY_MAX, "run gpu model", err, errlen) != 0 ||
        hist__text(r->site, HIST_KEY_MAX, "run site", err, errlen) != 0 ||
        hist__text(r->how, HIST_KEY_MAX, "run end", err, errlen) != 0 ||
        hist__text(r->reservation, HIST_KEY_MAX, "run reservation", err, errlen) != 0 ||
        hist__text(r->grant_account, HIST_KEY_MAX, "run grant account", err, errlen) != 0)
        return -1;
    if (r->end_ms < 0 || r->end_ms > HIST_TIME_MAX)
        return hist__err(err, errlen, "history: job %" PRIu64 " run %u: end %" PRId64 " ms out of range",
                         r->id, r->attempt, r->end_ms);
    size_t len = jazari__run_charge__get_packed_size(r);
    if (len > HIST_RECORD_MAX)
        return hist__err(err, errlen, "history: job %" PRIu64 " run %u: record of %zu bytes", r->id,
                         r->attempt, len);
    if (hist__batch(h, err, errlen) != 0)
        return -1;
    uint8_t *rec = xcalloc(len ? len : 1, 1);
    jazari__run_charge__pack(r, rec);
    sqlite3_stmt *st = h->put_run;
    sqlite3_bind_int64(st, 1, (int64_t)r->id);
    sqlite3_bind_int64(st, 2, r->attempt);
    sqlite3_bind_int64(st, 3, r->end_ms);
    sqlite3_bind_text(st, 4, hist__s(r->user), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, hist__s(r->account), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, hist__s(r->gpu_model), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, hist__s(r->site), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, hist__col(r->gpu_ms));
    sqlite3_bind_int64(st, 9, hist__col(r->cpu_alloc_ms));
    sqlite3_bind_int64(st, 10, hist__col(r->cost_micro));
    sqlite3_bind_int64(st, 11, hist__col(r->gpu_cost_micro));
    sqlite3_bind_int64(st, 12, hist__col(r->charge_ms));
    sqlite3_bind_blob(st, 13, rec, (int)len, SQLITE_STATIC);
    int ret = hist__run(h, st, "store a run", err, errlen);
    free(rec);
    if (ret == 0)
        h->pending++;
    return ret;
}

int hist_put_resv(hist *h, const Jazari__ResvCharge *c, char *err, size_t errlen)
{
    if (hist__writer(h, err, errlen) != 0)
        return -1;
    if (!c->name || !*c->name)
        return hist__err(err, errlen, "history: a reservation charge without a name");
    if (hist__text(c->name, HIST_KEY_MAX, "reservation name", err, errlen) != 0 ||
        hist__text(c->account, HIST_KEY_MAX, "reservation account", err, errlen) != 0 ||
        hist__text(c->gpu_model, HIST_KEY_MAX, "reservation gpu model", err, errlen) != 0 ||
        hist__text(c->users, HIST_TEXT_MAX, "reservation users", err, errlen) != 0)
        return -1;
    if (c->end_ms < 0 || c->end_ms > HIST_TIME_MAX || c->start_ms < 0 || c->start_ms > HIST_TIME_MAX)
        return hist__err(err, errlen,
                         "history: reservation %s: times %" PRId64 "-%" PRId64 " ms out of range", c->name,
                         c->start_ms, c->end_ms);
    size_t len = jazari__resv_charge__get_packed_size(c);
    if (len > HIST_RECORD_MAX)
        return hist__err(err, errlen, "history: reservation %s: record of %zu bytes (at most %u)", c->name,
                         len, HIST_RECORD_MAX);
    if (hist__batch(h, err, errlen) != 0)
        return -1;
    uint8_t *rec = xcalloc(len ? len : 1, 1);
    jazari__resv_charge__pack(c, rec);
    sqlite3_stmt *st = h->put_resv;
    sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->start_ms);
    sqlite3_bind_int64(st, 3, c->end_ms);
    sqlite3_bind_text(st, 4, hist__s(c->account), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, hist__col(c->gpu_ms));
    sqlite3_bind_int64(st, 6, hist__col(c->cost_micro));
    sqlite3_bind_blob(st, 7, rec, (int)len, SQLITE_STATIC);
    int ret = hist__run(h, st, "store a reservation charge", err, errlen);
    free(rec);
    if (ret == 0)
        h->pending++;
    return ret;
}

int hist_set_mark(hist *h, uint64_t mark, char *err, size_t errlen)
{
    if (hist__writer(h, err, errlen) != 0)
        return -1;
    if (mark > (uint64_t)INT64_MAX)
        return hist__err(err, errlen, "history: mark %" PRIu64 " out of range", mark);
    if (hist__batch(h, err, errlen) != 0)
        return -1;
    sqlite3_bind_int64(h->set_mark, 1, (int64_t)mark);
    if (hist__run(h, h->set_mark, "store the mark", err, errlen) != 0)
        return -1;
    h->pending++;
    return 0;
}

int hist_mark(hist *h, uint64_t *mark, char *err, size_t errlen)
{
    int64_t v = 0;
    if (hist__int(h, "SELECT value FROM meta WHERE key = 'mark'", &v, err, errlen) != 0)
        return -1;
    *mark = v > 0 ? (uint64_t)v : 0;
    return 0;
}

int hist_flush(hist *h, char *err, size_t errlen)
{
    if (!h->in_batch)
        return 0;
    h->in_batch = false;
    h->pending = 0;
    if (hist__run(h, h->commit, "commit", err, errlen) == 0)
        return 0;
    /* A failed COMMIT may leave the transaction open: end it, so that the
     * next put begins a new one. */
    if (!sqlite3_get_autocommit(h->db)) {
        char e2[64];
        hist__run(h, h->rollback, "roll back", e2, sizeof e2);
    }
    return -1;
}

size_t hist_pending(const hist *h)
{
    return h->in_batch ? h->pending : 0;
}

int hist_expire(hist *h, int64_t before_ms, uint64_t max, uint64_t *deleted, char *err, size_t errlen)
{
    if (deleted)
        *deleted = 0;
    if (hist__writer(h, err, errlen) != 0 || hist__batch(h, err, errlen) != 0)
        return -1;
    static const char *const sql[] = {
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE end_ms < ?1 ORDER BY end_ms LIMIT ?2)",
        "DELETE FROM resv WHERE rowid IN (SELECT rowid FROM resv WHERE end_ms < ?1 ORDER BY end_ms LIMIT ?2)",
        "DELETE FROM runs WHERE (id, attempt) IN (SELECT id, attempt FROM runs WHERE end_ms < ?1 ORDER BY "
        "end_ms LIMIT ?2)",
    };
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h->db, sql[i], -1, &st, NULL) != SQLITE_OK) {
            hist__db_err(h, "expire", err, errlen);
            goto fail;
        }
        sqlite3_bind_int64(st, 1, before_ms);
        sqlite3_bind_int64(st, 2, max == 0 || max > (uint64_t)INT64_MAX ? -1 : (int64_t)max);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            hist__db_err(h, "expire", err, errlen);
            goto fail;
        }
        n += (uint64_t)sqlite3_changes64(h->db);
    }
    h->pending++;
    if (hist_flush(h, err, errlen) != 0)
        return -1;
    if (deleted)
        *deleted = n;
    /* The freed pages go back to the file system (the file shrinks at the
     * next checkpoint). */
    if (n > 0 && hist__exec(h, "PRAGMA incremental_vacuum", "give freed pages back", err, errlen) != 0)
        return -1;
    return 0;
fail:
    /* The batch's earlier puts stay: only this expiry failed. */
    return -1;
}

int hist_checkpoint(hist *h, char *err, size_t errlen)
{
    if (hist_flush(h, err, errlen) != 0)
        return -1;
    if (sqlite3_wal_checkpoint_v2(h->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
        return hist__db_err(h, "checkpoint", err, errlen);
    return 0;
}

int hist_count(hist *h, uint64_t *jobs, uint64_t *resv, char *err, size_t errlen)
{
    int64_t j = 0, r = 0;
    if (hist__int(h, "SELECT count(*) FROM jobs", &j, err, errlen) != 0 ||
        hist__int(h, "SELECT count(*) FROM resv", &r, err, errlen) != 0)
        return -1;
    if (jobs)
        *jobs = (uint64_t)j;
    if (resv)
        *resv = (uint64_t)r;
    return 0;
}

/* --- building queries ----------------------------------------------------------- */

/* A statement's text from fixed fragments, and the values bound to its
 * numbered parameters. Strings are the caller's, but for the projects
 * found in the table (owned here). The first failure is kept in err and
 * reported by hsql_prepare. */
typedef struct hsql {
    hist *h;
    buf text;
    int n, cap;
    struct {
        const char *s; /* NULL: an integer */
        int64_t i;
    } * v;
    char **owned;
    size_t n_owned;
    size_t expanded; /* projects made into branches so far */
    bool failed;
    char *err;
    size_t errlen;
} hsql;

static void hsql_init(hsql *q, hist *h, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    q->h = h;
    q->err = err;
    q->errlen = errlen;
}

/* Empties it for the next statement. */
static void hsql_reset(hsql *q)
{
    for (size_t i = 0; i < q->n_owned; i++)
        free(q->owned[i]);
    free(q->owned);
    q->owned = NULL;
    q->n_owned = 0;
    q->n = 0;
    q->expanded = 0;
    buf_reset(&q->text);
}

static void hsql_free(hsql *q)
{
    hsql_reset(q);
    free(q->v);
    buf_free(&q->text);
}

static void hsql_add(hsql *q, const char *frag)
{
    buf_puts(&q->text, frag);
}

/* A new parameter: its number. The scopes, the projects (HIST_PROJECTS_MAX)
 * and SQLite's own limit (32766 since 3.32) bound how many. */
static int hsql_param(hsql *q)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 32;
        q->v = xrealloc_array(q->v, (size_t)q->cap, sizeof *q->v);
    }
    return q->n++;
}

static int hsql_int(hsql *q, int64_t v)
{
    int i = hsql_param(q);
    q->v[i].s = NULL;
    q->v[i].i = v;
    return i + 1;
}

static int hsql_text(hsql *q, const char *s)
{
    int i = hsql_param(q);
    q->v[i].s = s;
    return i + 1;
}

/* Adds "?N", N a parameter. */
static void hsql_p(hsql *q, int n)
{
    buf_printf(&q->text, "?%d", n);
}

/* "(col = ?p AND end_ms >= ?lo AND end_ms < ?hi)": one range of an index
 * on (col, end_ms), exactly what is asked. */
static void hsql_branch(hsql *q, const char *col, int p, int lo, int hi)
{
    buf_printf(&q->text, "(%s = ?%d AND end_ms >= ?%d AND end_ms < ?%d)", col, p, lo, hi);
}

/* The next project of an account in jobs after (or from) *from, below
 * hi ("a0"): 1 and its name in *found (owned by q), 0 when none. */
static int hsql_next_project(hsql *q, bool runs, const char *from, bool inclusive, const char *hi,
                             char **found)
{
    hist *h = q->h;
    sqlite3_stmt *st = runs ? (inclusive ? h->run_project_first : h->run_project_next)
                            : (inclusive ? h->project_first : h->project_next);
    sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        *found = xstrdup(t ? (const char *)t : "");
        q->owned = xrealloc_array(q->owned, q->n_owned + 1, sizeof *q->owned);
        q->owned[q->n_owned++] = *found;
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        hist__db_err(h, "find an account's projects", q->err, q->errlen);
        q->failed = true;
        ret = -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* Account a (not "") or one of its projects ("a" or "a/...").
 *
 * As a filter (lo 0): "a/" <= account < "a0" ('0' follows '/'), with no
 * LIKE and so no wildcard to escape.
 *
 * As what drives the search (lo, hi: the time range's parameters): one
 * branch per account (a, and each of its projects in jobs, found by a few
 * seeks of the account index), each an exact range of that index, time
 * included. A range over the projects would read every project job of
 * all time; and SQLite takes an OR whose branches all bound end_ms for a
 * walk of the end-time index. Past HIST_PROJECTS_MAX projects, the range
 * (its time checked in the index, +end_ms). */
static void hsql_account(hsql *q, const char *table, const char *a, int lo, int hi)
{
    int pa = hsql_text(q, a);
    if (!lo) {
        buf_printf(&q->text, "(account = ?%d OR (account >= ?%d || '/' AND account < ?%d || '0'))", pa, pa,
                   pa);
        return;
    }
    hsql_branch(q, "account", pa, lo, hi);
    size_t n = strlen(a);
    /* "a/" and "a0" */
    char *from = xcalloc(n + 2, 1), *to = xcalloc(n + 2, 1);
    snprintf(from, n + 2, "%s/", a);
    snprintf(to, n + 2, "%s0", a);
    q->owned = xrealloc_array(q->owned, q->n_owned + 2, sizeof *q->owned);
    q->owned[q->n_owned++] = from;
    q->owned[q->n_owned++] = to;
    bool runs = strcmp(table, "runs") == 0;
    bool ranged = !runs && strcmp(table, "jobs") != 0;
    const char *cur = from;
    for (bool first = true; !ranged; first = false) {
        char *p = NULL;
        int r = hsql_next_project(q, runs, cur, first, to, &p);
        if (r <= 0)
            break;
        if (q->expanded == HIST_PROJECTS_MAX) {
            ranged = true;
            break;
        }
        q->expanded++;
        hsql_add(q, " OR ");
        hsql_branch(q, "account", hsql_text(q, p), lo, hi);
        cur = p;
    }
    if (ranged)
        buf_printf(&q->text, " OR (account >= ?%d AND account < ?%d AND +end_ms >= ?%d AND +end_ms < ?%d)",
                   hsql_text(q, from), hsql_text(q, to), lo, hi);
}

static int hsql_prepare(hsql *q, sqlite3_stmt **st)
{
    if (q->failed)
        return -1;
    if (sqlite3_prepare_v2(q->h->db, buf_str(&q->text), -1, st, NULL) != SQLITE_OK)
        return hist__db_err(q->h, "prepare a query", q->err, q->errlen);
    for (int i = 0; i < q->n; i++) {
        if (q->v[i].s)
            sqlite3_bind_text(*st, i + 1, q->v[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(*st, i + 1, q->v[i].i);
    }
    return 0;
}

static int hist__check_key(const char *s, const char *what, char *err, size_t errlen)
{
    return hist__text(s, HIST_KEY_MAX, what, err, errlen);
}

static int hist__check_scope(const hist_scope *s, char *err, size_t errlen)
{
    if (s->all)
        return 0;
    if (s->n_accounts > HIST_SCOPE_MAX)
        return hist__err(err, errlen, "history: a scope of %zu accounts (at most %d)", s->n_accounts,
                         HIST_SCOPE_MAX);
    if (hist__check_key(s->user, "scope's user", err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < s->n_accounts; i++)
        if (hist__check_key(s->accounts[i], "scope's account", err, errlen) != 0)
            return -1;
    return 0;
}

static bool hist__scope_empty(const hist_scope *s)
{
    if (s->all || (s->user && *s->user))
        return false;
    for (size_t i = 0; i < s->n_accounts; i++)
        if (s->accounts[i])
            return false;
    return true;
}

/* The scope as an OR: as a filter (lo 0), or driving the search, each of
 * its terms an index range with the time in it (hsql_account). */
static void hsql_scope(hsql *q, const char *table, const hist_scope *s, int lo, int hi)
{
    const char *sep = "";
    hsql_add(q, "(");
    if (s->user && *s->user) {
        int u = hsql_text(q, s->user);
        if (lo)
            hsql_branch(q, "user", u, lo, hi);
        else
            buf_printf(&q->text, "user = ?%d", u);
        sep = " OR ";
    }
    for (size_t i = 0; i < s->n_accounts; i++) {
        if (!s->accounts[i])
            continue;
        hsql_add(q, sep);
        if (!*s->accounts[i]) {
            /* "" is the jobs without an account, no prefix of any other. */
            int a = hsql_text(q, "");
            if (lo)
                hsql_branch(q, "account", a, lo, hi);
            else
                buf_printf(&q->text, "account = ?%d", a);
        } else {
            hsql_account(q, table, s->accounts[i], lo, hi);
        }
        sep = " OR ";
    }
    hsql_add(q, ")");
}

/* JOB_STATE names, without "JOB_", by value. */
static const char *const hist_states[] = {"PENDING",   "RUNNING", "COMPLETED", "FAILED",
                                          "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED"};

/* "COMPLETED,failed" -> a mask of 1 << state; 0 for "". */
int hist_state_mask(const char *text, int64_t *mask, char *err, size_t errlen)
{
    *mask = 0;
    if (!text || !*text)
        return 0;
    if (strlen(text) > HIST_STATE_TEXT_MAX)
        return hist__err(err, errlen, "history: states longer than %d bytes", HIST_STATE_TEXT_MAX);
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, ',');
        const char *next = e ? e + 1 : p + strlen(p);
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && isspace((unsigned char)*p))
            p++, n--;
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        if (n == 0) { /* "a,,b", "a, " */
            p = next;
            continue;
        }
        size_t k = 0;
        for (; k < sizeof hist_states / sizeof *hist_states; k++)
            if (strlen(hist_states[k]) == n && strncasecmp(hist_states[k], p, n) == 0)
                break;
        if (k == sizeof hist_states / sizeof *hist_states)
            return hist__err(
                err, errlen,
                "history: unknown state \"%.*s\" (COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, "
                "PREEMPTED)",
                (int)(n > 40 ? 40 : n), p);
        *mask |= (int64_t)1 << k;
        p = next;
    }
    return 0;
}

/* The time range [since, until) as bounds the index can use. */
static void hist__range(int64_t since, int64_t until, int64_t *lo, int64_t *hi)
{
    *lo = since > 0 ? since : 0;
    *hi = until > 0 && until <= HIST_TIME_MAX ? until : HIST_TIME_MAX + 1;
}

/* --- history ----------------------------------------------------------------------- */

int hist_query(hist *h, const Jazari__HistoryRequest *q, const hist_scope *s, uint32_t page_max,
               Jazari__HistoryReply *out, char *err, size_t errlen)
{
    out->n_jobs = 0;
    out->jobs = NULL;
    out->more = false;
    int64_t states;
    if (hist__check_key(q->user, "user", err, errlen) != 0 ||
        hist__check_key(q->account, "account", err, errlen) || hist__check_scope(s, err, errlen) != 0 ||
        hist_state_mask(q->state, &states, err, errlen) != 0)
        return -1;
    if (q->job_id > (uint64_t)INT64_MAX || q->after_id > (uint64_t)INT64_MAX)
        return hist__err(err, errlen, "history: job id out of range");
    if (hist__scope_empty(s))
        return 0;
    uint32_t page = page_max ? page_max : HIST_PAGE_MAX;
    if (q->max && q->max < page)
        page = q->max;
    int64_t lo, hi;
    hist__range(q->since_ms, q->until_ms, &lo, &hi);
    /* Paging: after (after_end_ms, after_id); the rows of an equal end
     * come by id. The lower bound helps the index; the rest filters. */
    if (q->after_end_ms > lo)
        lo = q->after_end_ms;
    if (lo >= hi)
        return 0;

    hsql sq;
    hsql_init(&sq, h, err, errlen);
    int plo = hsql_int(&sq, lo), phi = hsql_int(&sq, hi);
    hsql_add(&sq, "SELECT rec FROM jobs WHERE ");
    /* What drives the search: the most selective filter there is, as an
     * index range with the time in it; the others only filter. Without
     * one, the end-time index gives the order itself (no sort), and the
     * LIMIT stops it early. Else "+end_ms" keeps the planner from walking
     * the end-time index for the order's sake. */
    bool by_end = false;
    bool by_user = false, by_account = false;
    if (q->job_id) {
        int pj = hsql_int(&sq, (int64_t)q->job_id);
        buf_printf(&sq.text, "(id = ?%d OR (array_job_id = ?%d AND array_job_id <> 0))", pj, pj);
    } else if (q->user && *q->user) {
        by_user = true;
        hsql_branch(&sq, "user", hsql_text(&sq, q->user), plo, phi);
    } else if (q->account && *q->account) {
        by_account = true;
        hsql_add(&sq, "(");
        hsql_account(&sq, "jobs", q->account, plo, phi);
        hsql_add(&sq, ")");
    } else if (!s->all) {
        hsql_scope(&sq, "jobs", s, plo, phi);
        s = NULL; /* done */
    } else {
        by_end = true;
        buf_printf(&sq.text, "end_ms >= ?%d AND end_ms < ?%d", plo, phi);
    }
    const char *e = by_end ? "end_ms" : "+end_ms";
    buf_printf(&sq.text, " AND %s >= ?%d AND %s < ?%d", e, plo, e, phi);
    if (!by_user && q->user && *q->user)
        buf_printf(&sq.text, " AND user = ?%d", hsql_text(&sq, q->user));
    if (!by_account && q->account && *q->account) {
        hsql_add(&sq, " AND ");
        hsql_account(&sq, "jobs", q->account, 0, 0);
    }
    if (states)
        buf_printf(&sq.text, " AND ((?%d >> state) & 1) = 1", hsql_int(&sq, states));
    if (s && !s->all) {
        hsql_add(&sq, " AND ");
        hsql_scope(&sq, "jobs", s, 0, 0);
    }
    int pae = hsql_int(&sq, q->after_end_ms), pai = hsql_int(&sq, (int64_t)q->after_id);
    buf_printf(&sq.text, " AND (%s > ?%d OR id > ?%d) ORDER BY %s, id LIMIT ?%d", e, pae, pai, e,
               hsql_int(&sq, (int64_t)page + 1));

    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (hsql_prepare(&sq, &st) != 0)
        goto out;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_jobs == page) {
            out->more = true;
            break;
        }
        const void *rec = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        Jazari__HistJob *j = jazari__hist_job__unpack(NULL, (size_t)len, rec);
        if (!j) {
            hist__err(err, errlen, "history %s: a job's record does not decode (damaged?)", h->path);
            goto out;
        }
        if (out->n_jobs == cap) {
            cap = cap ? 2 * cap : 64;
            out->jobs = xrealloc_array(out->jobs, cap, sizeof(Jazari__HistJob *));
        }
        out->jobs[out->n_jobs++] = j;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        hist__db_err(h, "query the jobs", err, errlen);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    hsql_free(&sq);
    if (ret != 0)
        hist_reply_free(out);
    return ret;
}

void hist_reply_free(Jazari__HistoryReply *out)
{
    for (size_t i = 0; i < out->n_jobs; i++)
        jazari__hist_job__free_unpacked(out->jobs[i], NULL);
    free(out->jobs);
    out->jobs = NULL;
    out->n_jobs = 0;
    out->more = false;
}

/* --- usage -------------------------------------------------------------------------- */

int hist_usage(hist *h, const Jazari__UsageRequest *q, const hist_scope *s, Jazari__UsageReply *out,
               char *err, size_t errlen)
{
    out->n_rows = 0;
    out->rows = NULL;
    static const struct {
        const char *by, *expr;
    } keys[] = {
        {"account", "account"},
        {"user", "user"},
        {"model", "gpu_model"},
        {"site", "site"},
        {"day", "strftime('%Y-%m-%d', end_ms / 1000, 'unixepoch')"},
    };
    const char *expr = NULL;
    const char *by = q->by && *q->by ? q->by : "account";
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(by, keys[i].by) == 0)
            expr = keys[i].expr;
    if (!expr)
        return hist__err(err, errlen,
                         "history: cannot sum usage by \"%.40s\" (user, account, model, site, day)", by);
    if (hist__check_key(q->account, "account", err, errlen) != 0 || hist__check_scope(s, err, errlen) != 0)
        return -1;
    if (hist__scope_empty(s))
        return 0;
    int64_t lo, hi;
    hist__range(q->since_ms, q->until_ms, &lo, &hi);
    if (lo >= hi)
        return 0;
    hsql sq;
    hsql_init(&sq, h, err, errlen);
    int plo = hsql_int(&sq, lo), phi = hsql_int(&sq, hi);
    buf_printf(&sq.text,
               "SELECT %s AS k, count(DISTINCT id), sum(gpu_ms), sum(cpu_alloc_ms), sum(cost_micro),"
               " sum(charge_ms) FROM runs WHERE ",
               expr);
    if (q->account && *q->account) {
        hsql_add(&sq, "(");
        hsql_account(&sq, "runs", q->account, plo, phi);
        hsql_add(&sq, ")");
        if (!s->all) {
            hsql_add(&sq, " AND ");
            hsql_scope(&sq, "runs", s, 0, 0);
        }
    } else if (!s->all) {
        hsql_scope(&sq, "runs", s, plo, phi);
    } else {
        buf_printf(&sq.text, "end_ms >= ?%d AND end_ms < ?%d", plo, phi);
    }
    buf_printf(&sq.text, " AND +end_ms >= ?%d AND +end_ms < ?%d GROUP BY k ORDER BY k LIMIT %d", plo, phi,
               HIST_USAGE_ROWS_MAX + 1);
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (hsql_prepare(&sq, &st) != 0)
        goto out;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_rows == HIST_USAGE_ROWS_MAX) {
            hist__err(err, errlen, "history: more than %d %ss: ask for a shorter time or one account",
                      HIST_USAGE_ROWS_MAX, by);
            goto out;
        }
        Jazari__UsageRow *r = xcalloc(1, sizeof *r);
        jazari__usage_row__init(r);
        const unsigned char *k = sqlite3_column_text(st, 0);
        r->key = xstrdup(k ? (const char *)k : "");
        r->jobs = (uint64_t)sqlite3_column_int64(st, 1);
        r->gpu_ms = (uint64_t)sqlite3_column_int64(st, 2);
        r->cpu_ms = (uint64_t)sqlite3_column_int64(st, 3);
        r->cost_micro = (uint64_t)sqlite3_column_int64(st, 4);
        r->charge_ms = (uint64_t)sqlite3_column_int64(st, 5);
        if (out->n_rows == cap) {
            cap = cap ? 2 * cap : 16;
            out->rows = xrealloc_array(out->rows, cap, sizeof(Jazari__UsageRow *));
        }
        out->rows[out->n_rows++] = r;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        hist__db_err(h, "sum the usage", err, errlen);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    hsql_free(&sq);
    if (ret != 0)
        hist_usage_free(out);
    return ret;
}

void hist_usage_free(Jazari__UsageReply *out)
{
    for (size_t i = 0; i < out->n_rows; i++) {
        free(out->rows[i]->key);
        free(out->rows[i]);
    }
    free(out->rows);
    out->rows = NULL;
    out->n_rows = 0;
}

/* --- invoices ------------------------------------------------------------------------- */

uint64_t hist_minor(uint64_t micro, uint32_t digits)
{
    if (digits >= 6)
        return micro;
    uint64_t div = 1;
    for (uint32_t i = digits; i < 6; i++)
        div *= 10;
    /* Half up without overflow: (micro + div/2) / div. */
    uint64_t q = micro / div, r = micro % div;
    return q + (r >= div - r ? 1 : 0);
}

static bool hist__add(uint64_t *sum, uint64_t v)
{
    if (*sum > UINT64_MAX - v)
        return false;
    *sum += v;
    return true;
}

static Jazari__InvoiceLine *hist__line(Jazari__InvoiceReply *out, size_t *cap, const char *item,
                                       const char *name)
{
    Jazari__InvoiceLine *l = xcalloc(1, sizeof *l);
    jazari__invoice_line__init(l);
    size_t n = strlen(item) + (name && *name ? 1 + strlen(name) : 0) + 1;
    l->item = xcalloc(n, 1);
    snprintf(l->item, n, name && *name ? "%s %s" : "%s", item, name);
    if (out->n_lines == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        out->lines = xrealloc_array(out->lines, *cap, sizeof(Jazari__InvoiceLine *));
    }
    out->lines[out->n_lines++] = l;
    return l;
}

/* The account's rows (and its projects') ending in [lo, hi) of table. */
static void hsql_invoice(hsql *q, const char *table, const char *select, const char *account, int64_t lo,
                         int64_t hi, const char *rest)
{
    hsql_reset(q);
    int plo = hsql_int(q, lo), phi = hsql_int(q, hi);
    hsql_add(q, select);
    hsql_add(q, " WHERE (");
    hsql_account(q, table, account, plo, phi);
    buf_printf(&q->text, ") AND +end_ms >= ?%d AND +end_ms < ?%d ", plo, phi);
    hsql_add(q, rest);
}

int hist_invoice(hist *h, const char *account, int64_t month_start_ms, int64_t month_end_ms,
                 uint32_t minor_digits, uint32_t jobs_max, Jazari__InvoiceReply *out, char *err,
                 size_t errlen)
{
    out->n_lines = 0;
    out->lines = NULL;
    out->n_jobs = 0;
    out->jobs = NULL;
    out->n_reservations = 0;
    out->reservations = NULL;
    out->total_minor = 0;
    if (!account || !*account)
        return hist__err(err, errlen, "history: an invoice needs an account");
    if (hist__check_key(account, "account", err, errlen) != 0)
        return -1;
    if (minor_digits > 6)
        return hist__err(err, errlen, "history: %u minor digits (at most 6)", minor_digits);
    if (month_start_ms < 0 || month_end_ms <= month_start_ms)
        return hist__err(err, errlen, "history: invoice period %" PRId64 "-%" PRId64 " ms is empty",
                         month_start_ms, month_end_ms);
    out->minor_digits = minor_digits;
    if (!jobs_max)
        jobs_max = HIST_INVOICE_JOBS_MAX;
    size_t lines_cap = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc, ret = -1;
    hsql sq;
    hsql_init(&sq, h, err, errlen);
    bool overflow = false;

    /* The lines, one per model; what is not the GPUs' is the CPUs'. */
    hsql_invoice(
        &sq, "runs",
        "SELECT gpu_model, count(DISTINCT id), count(DISTINCT CASE WHEN gpu_ms > 0 OR gpu_cost_micro > 0"
        " THEN id END), sum(gpu_ms), sum(gpu_cost_micro), sum(cpu_alloc_ms),"
        " sum(max(cost_micro - gpu_cost_micro, 0)) FROM runs",
        account, month_start_ms, month_end_ms, "GROUP BY gpu_model ORDER BY gpu_model");
    if (hsql_prepare(&sq, &st) != 0)
        goto out;
    uint64_t cpu_jobs = 0, cpu_ms = 0, cpu_micro = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_lines >= HIST_INVOICE_LINES_MAX) {
            hist__err(err, errlen, "history: invoice of %s: more than %d lines", account,
                      HIST_INVOICE_LINES_MAX);
            goto out;
        }
        const unsigned char *model = sqlite3_column_text(st, 0);
        uint64_t gpu_jobs = (uint64_t)sqlite3_column_int64(st, 2);
        if (gpu_jobs) {
            Jazari__InvoiceLine *l =
                hist__line(out, &lines_cap, "GPU-hours", model ? (const char *)model : "");
            l->jobs = gpu_jobs;
            l->quantity_ms = (uint64_t)sqlite3_column_int64(st, 3);
            l->amount_minor = hist_minor((uint64_t)sqlite3_column_int64(st, 4), minor_digits);
        }
        overflow |= !hist__add(&cpu_jobs, (uint64_t)sqlite3_column_int64(st, 1));
        overflow |= !hist__add(&cpu_ms, (uint64_t)sqlite3_column_int64(st, 5));
        overflow |= !hist__add(&cpu_micro, (uint64_t)sqlite3_column_int64(st, 6));
    }
    if (rc != SQLITE_DONE) {
        hist__db_err(h, "sum the invoice", err, errlen);
        goto out;
    }
    if (cpu_jobs) {
        Jazari__InvoiceLine *l = hist__line(out, &lines_cap, "CPU-hours", NULL);
        l->jobs = cpu_jobs;
        l->quantity_ms = cpu_ms;
        l->amount_minor = hist_minor(cpu_micro, minor_digits);
    }
    sqlite3_finalize(st);
    st = NULL;

    /* The reservations: a line each, and their records. */
    hsql_invoice(&sq, "resv", "SELECT name, gpu_ms, cost_micro, rec FROM resv", account, month_start_ms,
                 month_end_ms, "ORDER BY +end_ms, name, start_ms");
    if (hsql_prepare(&sq, &st) != 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_lines >= HIST_INVOICE_LINES_MAX) {
            hist__err(err, errlen, "history: invoice of %s: more than %d lines", account,
                      HIST_INVOICE_LINES_MAX);
            goto out;
        }
        Jazari__ResvCharge *c = jazari__resv_charge__unpack(NULL, (size_t)sqlite3_column_bytes(st, 3),
                                                            sqlite3_column_blob(st, 3));
        if (!c) {
            hist__err(err, errlen, "history %s: a reservation's record does not decode (damaged?)", h->path);
            goto out;
        }
        out->reservations =
            xrealloc_array(out->reservations, out->n_reservations + 1, sizeof(Jazari__ResvCharge *));
        out->reservations[out->n_reservations++] = c;
        Jazari__InvoiceLine *l =
            hist__line(out, &lines_cap, "reservation", (const char *)sqlite3_column_text(st, 0));
        l->quantity_ms = (uint64_t)sqlite3_column_int64(st, 1);
        l->amount_minor = hist_minor((uint64_t)sqlite3_column_int64(st, 2), minor_digits);
    }
    if (rc != SQLITE_DONE) {
        hist__db_err(h, "list the reservations", err, errlen);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;

    for (size_t i = 0; i < out->n_lines; i++)
        overflow |= !hist__add(&out->total_minor, out->lines[i]->amount_minor);
    if (overflow) {
        hist__err(err, errlen, "history: invoice of %s: sums beyond 64 bits", account);
        goto out;
    }

    /* The jobs billed, as stored. */
    hsql_invoice(&sq, "jobs", "SELECT rec FROM jobs", account, month_start_ms, month_end_ms,
                 "ORDER BY +end_ms, id LIMIT ");
    hsql_p(&sq, hsql_int(&sq, jobs_max));
    if (hsql_prepare(&sq, &st) != 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Jazari__HistJob *j =
            jazari__hist_job__unpack(NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
        if (!j) {
            hist__err(err, errlen, "history %s: a job's record does not decode (damaged?)", h->path);
            goto out;
        }
        if (out->n_jobs == cap) {
            cap = cap ? 2 * cap : 64;
            out->jobs = xrealloc_array(out->jobs, cap, sizeof(Jazari__HistJob *));
        }
        out->jobs[out->n_jobs++] = j;
    }
    if (rc != SQLITE_DONE) {
        hist__db_err(h, "list the jobs", err, errlen);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    hsql_free(&sq);
    if (ret != 0)
        hist_invoice_free(out);
    return ret;
}

void hist_invoice_free(Jazari__InvoiceReply *out)
{
    for (size_t i = 0; i < out->n_lines; i++) {
        free(out->lines[i]->item);
        free(out->lines[i]);
    }
    free(out->lines);
    for (size_t i = 0; i < out->n_jobs; i++)
        jazari__hist_job__free_unpacked(out->jobs[i], NULL);
    free(out->jobs);
    for (size_t i = 0; i < out->n_reservations; i++)
        jazari__resv_charge__free_unpacked(out->reservations[i], NULL);
    free(out->reservations);
    out->lines = NULL;
    out->n_lines = 0;
    out->jobs = NULL;
    out->n_jobs = 0;
    out->reservations = NULL;
    out->n_reservations = 0;
    out->total_minor = 0;
}

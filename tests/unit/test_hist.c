/* test_hist.c - the job history (daemon/raft/hist.c) on real SQLite files
 * in a temporary directory: batches and reopening, idempotent puts,
 * paging, who sees what, usage sums, invoices to the smallest unit, and
 * expiry. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemon/raft/hist.h"
#include "test.h"

/* 2026-01-01T00:00:00Z and 2026-02-01T00:00:00Z. */
#define JAN 1767225600000ll
#define FEB 1769904000000ll
#define DAY 86400000ll

typedef struct tdir {
    char dir[64];
    char path[96];
} tdir;

static bool tdir_make(tdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/jz-hist-XXXXXX");
    if (!mkdtemp(t->dir))
        return false;
    snprintf(t->path, sizeof t->path, "%s/history.db", t->dir);
    return true;
}

static void tdir_rm(tdir *t)
{
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

/* A finished job: the fields the queries look at, the rest plausible. */
typedef struct tjob {
    Jazari__HistJob j;
    Jazari__JobUsage u;
} tjob;

static void tjob_set(tjob *t, uint64_t id, const char *user, const char *account, int64_t end_ms,
                     const char *model, uint64_t gpu_ms, uint64_t cpu_alloc_ms, uint64_t cost_micro,
                     uint64_t gpu_cost_micro)
{
    jazari__hist_job__init(&t->j);
    jazari__job_usage__init(&t->u);
    t->j.id = id;
    t->j.name = "train";
    t->j.user = (char *)user;
    t->j.account = (char *)account;
    t->j.site = "rabat";
    t->j.gpu_model = (char *)model;
    t->j.gpus = *model ? 8 : 0;
    t->j.cpus = 32;
    t->j.nodes = 1;
    t->j.node_list = "n001";
    t->j.submit_ms = end_ms - 3600000;
    t->j.start_ms = end_ms - 1800000;
    t->j.end_ms = end_ms;
    t->j.elapsed_ms = 1800000;
    t->j.state = JAZARI__JOB_STATE__JOB_COMPLETED;
    t->u.gpu_ms = gpu_ms;
    t->u.cpu_alloc_ms = cpu_alloc_ms;
    t->u.cost_micro = cost_micro;
    t->u.gpu_cost_micro = gpu_cost_micro;
    t->u.charge_ms = gpu_ms * 2;
    t->u.gpu_model = (char *)model;
    t->u.runs = 1;
    t->j.usage = &t->u;
}

static bool put(hist *h, tjob *t)
{
    char err[256];
    if (hist_put_job(h, &t->j, err, sizeof err) != 0) {
        printf("    put: %s\n", err);
        return false;
    }
    return true;
}

static bool same_job(const Jazari__HistJob *a, const Jazari__HistJob *b)
{
    size_t la = jazari__hist_job__get_packed_size(a), lb = jazari__hist_job__get_packed_size(b);
    if (la != lb)
        return false;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    jazari__hist_job__pack(a, pa);
    jazari__hist_job__pack(b, pb);
    bool same = memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return same;
}

static const hist_scope all = {.all = true};

static size_t query_n(hist *h, const Jazari__HistoryRequest *q, const hist_scope *s)
{
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    char err[256];
    if (hist_query(h, q, s, 0, &r, err, sizeof err) != 0) {
        printf("    query: %s\n", err);
        return (size_t)-1;
    }
    size_t n = r.n_jobs;
    hist_reply_free(&r);
    return n;
}

TEST(hist_put_flush_reopen)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h, *ro;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    REQUIRE(hist_open(&ro, t.path, true, err, sizeof err) == 0);
    tjob a, b, c;
    tjob_set(&a, 10, "ali", "um6p", JAN + 1000, "H100", 3600000, 7200000, 5000000, 4000000);
    tjob_set(&b, 11, "sara", "um6p/nlp", JAN + 2000, "A100", 1000, 2000, 300, 200);
    tjob_set(&c, 12, "omar", "acme", JAN + 1500, "", 0, 5000, 70, 0);
    c.j.state = JAZARI__JOB_STATE__JOB_FAILED;
    c.j.exit_code = -9;
    REQUIRE(put(h, &a) && put(h, &b) && put(h, &c));
    Jazari__ResvCharge rc = JAZARI__RESV_CHARGE__INIT;
    rc.name = "r1";
    rc.account = "acme";
    rc.start_ms = JAN;
    rc.end_ms = JAN + DAY;
    rc.gpu_ms = DAY * 8;
    rc.cost_micro = 123;
    CHECK(hist_put_resv(h, &rc, err, sizeof err) == 0);
    CHECK(hist_set_mark(h, 4242, err, sizeof err) == 0);
    CHECK_EQ_INT(hist_pending(h), 5);
    /* Not committed: another handle sees none of it. */
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    CHECK_EQ_INT(query_n(ro, &q, &all), 0);
    uint64_t mark = 1;
    CHECK(hist_mark(ro, &mark, err, sizeof err) == 0 && mark == 0);
    REQUIRE(hist_flush(h, err, sizeof err) == 0);
    CHECK_EQ_INT(hist_pending(h), 0);
    CHECK_EQ_INT(query_n(ro, &q, &all), 3);
    hist_close(ro);
    hist_close(h);

    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    uint64_t nj = 0, nr = 0;
    CHECK(hist_count(h, &nj, &nr, err, sizeof err) == 0);
    CHECK_EQ_INT(nj, 3);
    CHECK_EQ_INT(nr, 1);
    CHECK(hist_mark(h, &mark, err, sizeof err) == 0 && mark == 4242);
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    REQUIRE(hist_query(h, &q, &all, 0, &r, err, sizeof err) == 0);
    REQUIRE(r.n_jobs == 3);
    /* By end time: a (1000), c (1500), b (2000), exactly as stored. */
    CHECK(same_job(r.jobs[0], &a.j));
    CHECK(same_job(r.jobs[1], &c.j));
    CHECK(same_job(r.jobs[2], &b.j));
    CHECK_EQ_INT(r.jobs[1]->exit_code, -9);
    CHECK(!r.more);
    hist_reply_free(&r);
    /* One job, and since/until. */
    q.job_id = 11;
    CHECK_EQ_INT(query_n(h, &q, &all), 1);
    q.job_id = 0;
    q.since_ms = JAN + 1500;
    q.until_ms = JAN + 2000;
    CHECK_EQ_INT(query_n(h, &q, &all), 1);
    /* A close with puts pending commits them. */
    tjob d;
    tjob_set(&d, 13, "ali", "um6p", JAN + 3000, "H100", 1, 1, 1, 1);
    CHECK(put(h, &d));
    hist_close(h);
    REQUIRE(hist_open(&h, t.path, true, err, sizeof err) == 0);
    CHECK(hist_count(h, &nj, NULL, err, sizeof err) == 0 && nj == 4);
    /* A read-only handle writes nothing. */
    CHECK(hist_put_job(h, &d.j, err, sizeof err) != 0);
    CHECK(strstr(err, "read-only") != NULL);
    hist_close(h);
    tdir_rm(&t);
}

TEST(hist_idempotent)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    tjob a;
    tjob_set(&a, 7, "ali", "um6p", JAN + 10, "H100", 100, 200, 300, 250);
    CHECK(put(h, &a));
    CHECK(hist_flush(h, err, sizeof err) == 0);
    /* The same record again, in another batch: no row changes. */
    sqlite3 *db;
    REQUIRE(sqlite3_open(t.path, &db) == SQLITE_OK);
    CHECK(put(h, &a) && put(h, &a));
    CHECK(hist_flush(h, err, sizeof err) == 0);
    uint64_t n = 0;
    CHECK(hist_count(h, &n, NULL, err, sizeof err) == 0 && n == 1);
    /* What changed must be the record's: a later version replaces it. */
    a.j.state = JAZARI__JOB_STATE__JOB_TIMEOUT;
    a.u.gpu_ms = 999;
    CHECK(put(h, &a));
    CHECK(hist_flush(h, err, sizeof err) == 0);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT state, gpu_ms, count(*) FROM jobs", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), JAZARI__JOB_STATE__JOB_TIMEOUT);
    CHECK_EQ_INT(sqlite3_column_int(st, 1), 999);
    CHECK_EQ_INT(sqlite3_column_int(st, 2), 1);
    sqlite3_finalize(st);
    /* An identical re-put writes no page: the write-ahead log does not
     * grow (a changed record adds at least a page to it). */
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", t.path);
    struct stat before, after;
    REQUIRE(stat(wal, &before) == 0);
    CHECK(put(h, &a));
    CHECK(hist_flush(h, err, sizeof err) == 0);
    REQUIRE(stat(wal, &after) == 0);
    CHECK_EQ_INT(after.st_size, before.st_size);
    a.u.gpu_ms = 1000;
    CHECK(put(h, &a));
    CHECK(hist_flush(h, err, sizeof err) == 0);
    REQUIRE(stat(wal, &after) == 0);
    CHECK(after.st_size > before.st_size);
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    CHECK(hist_query(h, &q, &all, 0, &r, err, sizeof err) == 0);
    CHECK(r.n_jobs == 1 && same_job(r.jobs[0], &a.j));
    hist_reply_free(&r);
    sqlite3_close(db);
    hist_close(h);
    tdir_rm(&t);
}

TEST(hist_paging_equal_ends)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    /* 50 jobs, five to an end time, put out of order; half are acme's. */
    enum { N = 50 };
    tjob js[N];
    for (int i = 0; i < N; i++) {
        int k = (i * 17) % N; /* a permutation */
        tjob_set(&js[i], (uint64_t)(100 + k), k % 2 ? "ali" : "sara", k % 2 ? "acme" : "acme/ml",
                 JAN + (N - k) / 5 * 1000, "H100", 1, 1, 1, 1);
        CHECK(put(h, &js[i]));
    }
    CHECK(hist_flush(h, err, sizeof err) == 0);
    const char *accounts[] = {NULL, "acme"};
    for (size_t a = 0; a < 2; a++) {
        Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
        q.account = accounts[a] ? (char *)accounts[a] : "";
        int64_t last_end = -1;
        uint64_t last_id = 0;
        size_t seen = 0, pages = 0;
        for (;;) {
            Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
            REQUIRE(hist_query(h, &q, &all, 7, &r, err, sizeof err) == 0);
            pages++;
            for (size_t i = 0; i < r.n_jobs; i++) {
                const Jazari__HistJob *j = r.jobs[i];
                CHECK(j->end_ms > last_end || (j->end_ms == last_end && j->id > last_id));
                last_end = j->end_ms;
                last_id = j->id;
            }
            seen += r.n_jobs;
            bool more = r.more;
            CHECK(r.n_jobs == 7 || !more);
            if (r.n_jobs) {
                q.after_end_ms = r.jobs[r.n_jobs - 1]->end_ms;
                q.after_id = r.jobs[r.n_jobs - 1]->id;
            }
            hist_reply_free(&r);
            if (!more || pages > 20)
                break;
        }
        CHECK_EQ_INT(seen, N);
        CHECK_EQ_INT(pages, (N + 6) / 7);
    }
    /* max, smaller than the page, and larger (the page wins). */
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    q.max = 3;
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    CHECK(hist_query(h, &q, &all, 7, &r, err, sizeof err) == 0);
    CHECK(r.n_jobs == 3 && r.more);
    hist_reply_free(&r);
    q.max = 100;
    CHECK(hist_query(h, &q, &all, 7, &r, err, sizeof err) == 0);
    CHECK(r.n_jobs == 7 && r.more);
    hist_reply_free(&r);
    q.max = N;
    CHECK(hist_query(h, &q, &all, 0, &r, err, sizeof err) == 0);
    CHECK(r.n_jobs == N && !r.more);
    hist_reply_free(&r);
    hist_close(h);
    tdir_rm(&t);
}

TEST(hist_scopes)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    /* Accounts next to "a" in byte order, and one named like a LIKE
     * pattern. */
    const char *acct[] = {"a", "a/x", "ab", "a-b", "a_b%", "a_bc", "a_b%/p", "a/x/y", "b", ""};
    enum { N = sizeof acct / sizeof *acct };
    tjob js[N];
    char users[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(users[i], sizeof users[i], "u%d", i);
        tjob_set(&js[i], (uint64_t)(i + 1), users[i], acct[i], JAN + i, "H100", 1, 1, 1, 1);
        if (i % 3 == 0)
            js[i].j.state = JAZARI__JOB_STATE__JOB_FAILED;
        CHECK(put(h, &js[i]));
    }
    CHECK(hist_flush(h, err, sizeof err) == 0);
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    CHECK_EQ_INT(query_n(h, &q, &all), N);
    hist_scope none = {0};
    CHECK_EQ_INT(query_n(h, &q, &none), 0);
    hist_scope u = {.user = "u2"};
    CHECK_EQ_INT(query_n(h, &q, &u), 1);
    const char *a[] = {"a"};
    hist_scope sa = {.accounts = a, .n_accounts = 1};
    CHECK_EQ_INT(query_n(h, &q, &sa), 3); /* a, a/x, a/x/y */
    const char *pat[] = {"a_b%"};
    hist_scope sp = {.accounts = pat, .n_accounts = 1};
    CHECK_EQ_INT(query_n(h, &q, &sp), 2); /* a_b%, a_b%/p */
    const char *ax[] = {"a/x"};
    hist_scope sx = {.accounts = ax, .n_accounts = 1};
    CHECK_EQ_INT(query_n(h, &q, &sx), 2);
    /* Union: the user's own jobs and the accounts'. */
    const char *two[] = {"a", "b"};
    hist_scope su = {.user = "u2", .accounts = two, .n_accounts = 2};
    CHECK_EQ_INT(query_n(h, &q, &su), 5);
    /* "" is only the jobs without an account. */
    const char *empty[] = {""};
    hist_scope se = {.accounts = empty, .n_accounts = 1};
    CHECK_EQ_INT(query_n(h, &q, &se), 1);
    /* The request narrows within the scope. */
    q.account = "a";
    CHECK_EQ_INT(query_n(h, &q, &all), 3);
    CHECK_EQ_INT(query_n(h, &q, &u), 0);
    CHECK_EQ_INT(query_n(h, &q, &sp), 0);
    hist_scope u1 = {.user = "u1"};
    CHECK_EQ_INT(query_n(h, &q, &u1), 1);
    q.account = "a_b%";
    CHECK_EQ_INT(query_n(h, &q, &all), 2);
    q.account = "a_";
    CHECK_EQ_INT(query_n(h, &q, &all), 0);
    q.account = "";
    q.user = "u4";
    CHECK_EQ_INT(query_n(h, &q, &all), 1);
    CHECK_EQ_INT(query_n(h, &q, &u), 0);
    CHECK_EQ_INT(query_n(h, &q, &sp), 1);
    q.user = "";
    /* States: 0, 3, 6, 9 failed. */
    q.state = "failed";
    CHECK_EQ_INT(query_n(h, &q, &all), 4);
    q.state = "COMPLETED, Failed";
    CHECK_EQ_INT(query_n(h, &q, &all), N);
    q.state = "timeout";
    CHECK_EQ_INT(query_n(h, &q, &all), 0);
    q.state = "done";
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    CHECK(hist_query(h, &q, &all, 0, &r, err, sizeof err) != 0);
    CHECK(strstr(err, "unknown state \"done\"") != NULL);
    q.state = "";
    hist_close(h);
    tdir_rm(&t);
}

static const Jazari__UsageRow *row(const Jazari__UsageReply *r, const char *key)
{
    for (size_t i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i]->key, key) == 0)
            return r->rows[i];
    return NULL;
}

TEST(hist_usage_sums)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    tjob js[5];
    /* The last millisecond of Jan 1 and the first of Jan 2 (UTC). */
    tjob_set(&js[0], 1, "ali", "um6p", JAN + DAY - 1, "H100", 1000, 10, 100, 90);
    tjob_set(&js[1], 2, "ali", "um6p/nlp", JAN + DAY, "A100", 2000, 20, 200, 180);
    tjob_set(&js[2], 3, "sara", "um6p", JAN + 2 * DAY, "H100", 4000, 40, 400, 360);
    tjob_set(&js[3], 4, "omar", "acme", JAN + 2 * DAY + 5, "", 0, 80, 800, 0);
    tjob_set(&js[4], 5, "omar", "acme", FEB, "H100", 16000, 160, 1600, 1440);
    js[3].j.site = "benguerir";
    for (int i = 0; i < 5; i++)
        CHECK(put(h, &js[i]));
    CHECK(hist_flush(h, err, sizeof err) == 0);
    Jazari__UsageRequest q = JAZARI__USAGE_REQUEST__INIT;
    q.until_ms = FEB;
    Jazari__UsageReply r = JAZARI__USAGE_REPLY__INIT;
    /* Default: by account (projects on their own rows), by key. */
    REQUIRE(hist_usage(h, &q, &all, &r, err, sizeof err) == 0);
    REQUIRE(r.n_rows == 3);
    CHECK_EQ_STR(r.rows[0]->key, "acme");
    CHECK_EQ_STR(r.rows[1]->key, "um6p");
    CHECK_EQ_STR(r.rows[2]->key, "um6p/nlp");
    CHECK_EQ_INT(r.rows[1]->jobs, 2);
    CHECK_EQ_INT(r.rows[1]->gpu_ms, 5000);
    CHECK_EQ_INT(r.rows[1]->cpu_ms, 50);
    CHECK_EQ_INT(r.rows[1]->cost_micro, 500);
    CHECK_EQ_INT(r.rows[1]->charge_ms, 10000);
    CHECK_EQ_INT(r.rows[0]->cost_micro, 800);
    hist_usage_free(&r);
    q.by = "user";
    REQUIRE(hist_usage(h, &q, &all, &r, err, sizeof err) == 0);
    CHECK_EQ_INT(r.n_rows, 3);
    CHECK(row(&r, "ali") && row(&r, "ali")->gpu_ms == 3000 && row(&r, "ali")->jobs == 2);
    CHECK(row(&r, "omar") && row(&r, "omar")->jobs == 1);
    hist_usage_free(&r);
    q.by = "model";
    REQUIRE(hist_usage(h, &q, &all, &r, err, sizeof err) == 0);
    CHECK_EQ_INT(r.n_rows, 3);
    CHECK(row(&r, "H100") && row(&r, "H100")->gpu_ms == 5000 && row(&r, "H100")->cost_micro == 500);
    CHECK(row(&r, "") && row(&r, "")->cpu_ms == 80);
    hist_usage_free(&r);
    q.by = "site";
    REQUIRE(hist_usage(h, &q, &all, &r, err, sizeof err) == 0);
    CHECK(r.n_rows == 2 && row(&r, "benguerir") && row(&r, "rabat") && row(&r, "rabat")->jobs == 3);
    hist_usage_free(&r);
    q.by = "day";
    q.until_ms = 0; /* no bound: February's too */
    REQUIRE(hist_usage(h, &q, &all, &r, err, sizeof err) == 0);
    REQUIRE(r.n_rows == 4);
    CHECK_EQ_STR(r.rows[0]->key, "2026-01-01");
    CHECK_EQ_STR(r.rows[1]->key, "2026-01-02");
    CHECK_EQ_STR(r.rows[2]->key, "2026-01-03");
    CHECK_EQ_STR(r.rows[3]->key, "2026-02-01");
    CHECK_EQ_INT(r.rows[2]->jobs, 2);
    CHECK_EQ_INT(r.rows[2]->cost_micro, 1200);
    hist_usage_free(&r);
    /* One account with its projects, and a scope. */
    q.by = "";
    q.account = "um6p";
    REQUIRE(hist_usage(h, &q, &all, &r, err, sizeof err) == 0);
    CHECK(r.n_rows == 2 && r.rows[0]->gpu_ms == 5000 && r.rows[1]->gpu_ms == 2000);
    hist_usage_free(&r);
    hist_scope sara = {.user = "sara"};
    REQUIRE(hist_usage(h, &q, &sara, &r, err, sizeof err) == 0);
    CHECK(r.n_rows == 1 && r.rows[0]->jobs == 1 && r.rows[0]->gpu_ms == 4000);
    hist_usage_free(&r);
    q.account = "";
    const char *acme[] = {"acme"};
    hist_scope sa = {.accounts = acme, .n_accounts = 1};
    q.since_ms = JAN + 2 * DAY;
    q.until_ms = FEB;
    REQUIRE(hist_usage(h, &q, &sa, &r, err, sizeof err) == 0);
    CHECK(r.n_rows == 1 && r.rows[0]->jobs == 1 && r.rows[0]->cost_micro == 800);
    hist_usage_free(&r);
    q.by = "month";
    CHECK(hist_usage(h, &q, &all, &r, err, sizeof err) != 0);
    CHECK(strstr(err, "by \"month\"") != NULL);
    hist_close(h);
    tdir_rm(&t);
}

TEST(hist_minor_half_up)
{
    CHECK_EQ_INT(hist_minor(1234500, 2), 123); /* 1.2345 -> 1.23 */
    CHECK_EQ_INT(hist_minor(1234999, 2), 123); /* 1.234999 -> 1.23 */
    CHECK_EQ_INT(hist_minor(1235000, 2), 124); /* 1.235 -> 1.24 */
    CHECK_EQ_INT(hist_minor(4999, 2), 0);      /* 0.004999 -> 0.00 */
    CHECK_EQ_INT(hist_minor(5000, 2), 1);      /* 0.005 -> 0.01 */
    CHECK_EQ_INT(hist_minor(0, 2), 0);
    CHECK_EQ_INT(hist_minor(1500000, 0), 2); /* 1.5 -> 2 */
    CHECK_EQ_INT(hist_minor(1499999, 0), 1);
    CHECK_EQ_INT(hist_minor(1234567, 6), 1234567);
    CHECK_EQ_INT(hist_minor(1234567, 3), 1235);
    /* No overflow near the top: ...1615 rounds down, ...5000 up. */
    CHECK(hist_minor(UINT64_MAX, 2) == UINT64_MAX / 10000);
    CHECK(hist_minor(UINT64_MAX - 6615, 2) == UINT64_MAX / 10000);
    CHECK(hist_minor(UINT64_MAX - 6616, 2) == UINT64_MAX / 10000 - 1);
}

static size_t packed(const Jazari__InvoiceReply *r, uint8_t **out)
{
    size_t n = jazari__invoice_reply__get_packed_size(r);
    *out = malloc(n + 1);
    jazari__invoice_reply__pack(r, *out);
    return n;
}

TEST(hist_invoice_lines)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    tjob js[8];
    /* acme's January: two H100 jobs (GPU 1,000,000 + 234,500 micro), an
     * A100 one of its project, a CPU-only one; CPU parts 1,000,000 +
     * 200,000 + 35,000 micro in all. */
    tjob_set(&js[0], 21, "omar", "acme", JAN, "H100", 3600000, 100000, 2000000, 1000000);
    tjob_set(&js[1], 22, "omar", "acme", JAN + 5 * DAY, "H100", 7200000, 200000, 434500, 234500);
    tjob_set(&js[2], 23, "lina", "acme/ml", JAN + 5 * DAY, "A100", 1800000, 300000, 15000, 10000);
    tjob_set(&js[3], 24, "lina", "acme", FEB - 1, "", 0, 400000, 30000, 0);
    /* Not January's, or not acme's. */
    tjob_set(&js[4], 25, "omar", "acme", JAN - 1, "H100", 1, 1, 999999, 1);
    tjob_set(&js[5], 26, "omar", "acme", FEB, "H100", 1, 1, 999999, 1);
    tjob_set(&js[6], 27, "omar", "acmeco", JAN + DAY, "H100", 1, 1, 999999, 1);
    tjob_set(&js[7], 28, "omar", "acme-b", JAN + DAY, "H100", 1, 1, 999999, 1);
    for (int i = 7; i >= 0; i--)
        CHECK(put(h, &js[i]));
    Jazari__ResvCharge rs[3];
    const char *names[] = {"big", "small", "other"};
    const int64_t ends[] = {JAN + 10 * DAY, JAN + 3 * DAY, JAN + 3 * DAY};
    const uint64_t costs[] = {12345678, 5000, 4000};
    for (int i = 0; i < 3; i++) {
        jazari__resv_charge__init(&rs[i]);
        rs[i].name = (char *)names[i];
        rs[i].account = i == 2 ? "zeta" : "acme";
        rs[i].start_ms = ends[i] - DAY;
        rs[i].end_ms = ends[i];
        rs[i].gpus = 8;
        rs[i].gpu_ms = (uint64_t)DAY * 8;
        rs[i].cost_micro = costs[i];
        CHECK(hist_put_resv(h, &rs[i], err, sizeof err) == 0);
    }
    CHECK(hist_flush(h, err, sizeof err) == 0);

    Jazari__InvoiceReply r = JAZARI__INVOICE_REPLY__INIT;
    REQUIRE(hist_invoice(h, "acme", JAN, FEB, 2, 0, &r, err, sizeof err) == 0);
    REQUIRE(r.n_lines == 5);
    CHECK_EQ_STR(r.lines[0]->item, "GPU-hours A100");
    CHECK_EQ_INT(r.lines[0]->quantity_ms, 1800000);
    CHECK_EQ_INT(r.lines[0]->amount_minor, 1); /* 0.01 */
    CHECK_EQ_INT(r.lines[0]->jobs, 1);
    CHECK_EQ_STR(r.lines[1]->item, "GPU-hours H100");
    CHECK_EQ_INT(r.lines[1]->quantity_ms, 10800000);
    CHECK_EQ_INT(r.lines[1]->amount_minor, 123); /* 1,234,500 micro: 1.2345 -> 1.23 */
    CHECK_EQ_INT(r.lines[1]->jobs, 2);
    CHECK_EQ_STR(r.lines[2]->item, "CPU-hours");
    CHECK_EQ_INT(r.lines[2]->quantity_ms, 1000000);
    CHECK_EQ_INT(r.lines[2]->amount_minor, 124); /* 1,235,000 micro: 1.235 -> 1.24 */
    CHECK_EQ_INT(r.lines[2]->jobs, 4);
    CHECK_EQ_STR(r.lines[3]->item, "reservation small"); /* ended first */
    CHECK_EQ_INT(r.lines[3]->amount_minor, 1);           /* 0.005 -> 0.01 */
    CHECK_EQ_INT(r.lines[3]->quantity_ms, DAY * 8);
    CHECK_EQ_STR(r.lines[4]->item, "reservation big");
    CHECK_EQ_INT(r.lines[4]->amount_minor, 1235); /* 12.345678 -> 12.35 */
    CHECK_EQ_INT(r.total_minor, 1 + 123 + 124 + 1 + 1235);
    CHECK_EQ_INT(r.minor_digits, 2);
    REQUIRE(r.n_jobs == 4);
    CHECK_EQ_INT(r.jobs[0]->id, 21);
    CHECK_EQ_INT(r.jobs[1]->id, 22); /* equal ends: by id */
    CHECK_EQ_INT(r.jobs[2]->id, 23);
    CHECK_EQ_INT(r.jobs[3]->id, 24);
    REQUIRE(r.n_reservations == 2);
    CHECK_EQ_STR(r.reservations[0]->name, "small");
    r.account = "acme";
    r.month = "2026-01";
    r.currency = "MAD";
    uint8_t *one, *two;
    size_t n1 = packed(&r, &one);
    r.account = r.month = r.currency = (char *)protobuf_c_empty_string;
    hist_invoice_free(&r);
    hist_close(h);

    /* Again, from another handle on the reopened file: the same bytes. */
    REQUIRE(hist_open(&h, t.path, true, err, sizeof err) == 0);
    Jazari__InvoiceReply r2 = JAZARI__INVOICE_REPLY__INIT;
    REQUIRE(hist_invoice(h, "acme", JAN, FEB, 2, 0, &r2, err, sizeof err) == 0);
    r2.account = "acme";
    r2.month = "2026-01";
    r2.currency = "MAD";
    size_t n2 = packed(&r2, &two);
    CHECK(n1 == n2 && memcmp(one, two, n1) == 0);
    free(one);
    free(two);
    r2.account = r2.month = r2.currency = (char *)protobuf_c_empty_string;
    hist_invoice_free(&r2);
    /* At most 2 jobs listed; the lines still count all four. */
    REQUIRE(hist_invoice(h, "acme", JAN, FEB, 2, 2, &r2, err, sizeof err) == 0);
    CHECK(r2.n_jobs == 2 && r2.n_lines == 5 && r2.lines[2]->jobs == 4);
    hist_invoice_free(&r2);
    /* Another currency's digits. */
    REQUIRE(hist_invoice(h, "acme", JAN, FEB, 0, 0, &r2, err, sizeof err) == 0);
    CHECK(r2.n_lines == 5 && r2.lines[1]->amount_minor == 1 && r2.lines[4]->amount_minor == 12);
    hist_invoice_free(&r2);
    /* A month of nothing: no lines, zero. */
    REQUIRE(hist_invoice(h, "acme", FEB + 31 * DAY, FEB + 59 * DAY, 2, 0, &r2, err, sizeof err) == 0);
    CHECK(r2.n_lines == 0 && r2.total_minor == 0 && r2.n_jobs == 0);
    hist_invoice_free(&r2);
    /* Bad input: one line, nothing made. */
    CHECK(hist_invoice(h, "", JAN, FEB, 2, 0, &r2, err, sizeof err) != 0);
    CHECK(hist_invoice(h, "acme", JAN, FEB, 7, 0, &r2, err, sizeof err) != 0);
    CHECK(strstr(err, "minor digits") != NULL);
    CHECK(hist_invoice(h, "acme", FEB, JAN, 2, 0, &r2, err, sizeof err) != 0);
    CHECK(r2.n_lines == 0 && r2.lines == NULL);
    hist_close(h);
    tdir_rm(&t);
}

TEST(hist_expire_oldest)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    tjob js[6];
    for (int i = 0; i < 6; i++) {
        tjob_set(&js[i], (uint64_t)(i + 1), "ali", "um6p", JAN + i * DAY, "H100", 1, 1, 1, 1);
        CHECK(put(h, &js[i]));
    }
    Jazari__ResvCharge rc = JAZARI__RESV_CHARGE__INIT;
    rc.name = "r";
    rc.account = "um6p";
    rc.end_ms = JAN;
    CHECK(hist_put_resv(h, &rc, err, sizeof err) == 0);
    /* Expiry commits the batch with it. */
    uint64_t deleted = 0, n = 0, nr = 0;
    CHECK(hist_expire(h, JAN + 3 * DAY, 2, &deleted, err, sizeof err) == 0);
    CHECK_EQ_INT(deleted, 3); /* the two oldest jobs and the charge */
    CHECK_EQ_INT(hist_pending(h), 0);
    CHECK(hist_count(h, &n, &nr, err, sizeof err) == 0 && n == 4 && nr == 0);
    CHECK(hist_expire(h, JAN + 3 * DAY, 0, &deleted, err, sizeof err) == 0);
    CHECK_EQ_INT(deleted, 1);
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    REQUIRE(hist_query(h, &q, &all, 0, &r, err, sizeof err) == 0);
    CHECK(r.n_jobs == 3 && r.jobs[0]->id == 4);
    hist_reply_free(&r);
    CHECK(hist_expire(h, JAN, 0, &deleted, err, sizeof err) == 0 && deleted == 0);
    CHECK(hist_checkpoint(h, err, sizeof err) == 0);
    hist_close(h);
    tdir_rm(&t);
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) == SQLITE_OK)
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
}

TEST(hist_refuses_other_files)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h = NULL;
    /* Read-only: the file must exist, with a schema. */
    CHECK(hist_open(&h, t.path, true, err, sizeof err) != 0 && h == NULL);
    CHECK(strstr(err, t.path) != NULL);
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    hist_close(h);
    /* A newer schema: a clear line, the file untouched. */
    exec_sql(t.path, "UPDATE meta SET value = 99 WHERE key = 'schema'");
    CHECK(hist_open(&h, t.path, false, err, sizeof err) != 0);
    CHECK(strstr(err, "schema version 99 is newer") != NULL);
    CHECK(hist_open(&h, t.path, true, err, sizeof err) != 0);
    tdir_rm(&t);
    /* Another program's database. */
    REQUIRE(tdir_make(&t));
    exec_sql(t.path, "CREATE TABLE accounts(x); PRAGMA application_id = 7");
    CHECK(hist_open(&h, t.path, false, err, sizeof err) != 0);
    CHECK(strstr(err, "not a Jazari job history") != NULL);
    tdir_rm(&t);
    REQUIRE(tdir_make(&t));
    exec_sql(t.path, "CREATE TABLE accounts(x)");
    CHECK(hist_open(&h, t.path, false, err, sizeof err) != 0);
    tdir_rm(&t);
    CHECK(hist_open(&h, "", false, err, sizeof err) != 0);
    CHECK(hist_open(&h, "/nonexistent-dir/h.db", false, err, sizeof err) != 0);
    CHECK(strstr(err, "/nonexistent-dir/h.db") != NULL);
}

TEST(hist_bad_input)
{
    tdir t;
    REQUIRE(tdir_make(&t));
    char err[256];
    hist *h;
    REQUIRE(hist_open(&h, t.path, false, err, sizeof err) == 0);
    tjob a;
    tjob_set(&a, 0, "ali", "um6p", JAN, "H100", 1, 1, 1, 1);
    CHECK(hist_put_job(h, &a.j, err, sizeof err) != 0 && strstr(err, "job id 0") != NULL);
    a.j.id = (uint64_t)INT64_MAX + 1;
    CHECK(hist_put_job(h, &a.j, err, sizeof err) != 0);
    a.j.id = 5;
    a.j.account = "um6p\xff";
    CHECK(hist_put_job(h, &a.j, err, sizeof err) != 0 && strstr(err, "account is not UTF-8 (job 5)") != NULL);
    char long_user[HIST_KEY_MAX + 2];
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[sizeof long_user - 1] = 0;
    a.j.account = "um6p";
    a.j.user = long_user;
    CHECK(hist_put_job(h, &a.j, err, sizeof err) != 0 && strstr(err, "user longer") != NULL);
    a.j.user = "ali";
    a.j.end_ms = -1;
    CHECK(hist_put_job(h, &a.j, err, sizeof err) != 0 && strstr(err, "end time") != NULL);
    Jazari__ResvCharge rc = JAZARI__RESV_CHARGE__INIT;
    CHECK(hist_put_resv(h, &rc, err, sizeof err) != 0);
    CHECK(hist_set_mark(h, UINT64_MAX, err, sizeof err) != 0);
    CHECK_EQ_INT(hist_pending(h), 0);
    CHECK(hist_flush(h, err, sizeof err) == 0);
    uint64_t n = 1;
    CHECK(hist_count(h, &n, NULL, err, sizeof err) == 0 && n == 0);
    /* Queries: what is asked is bounded before any SQL. */
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
    q.account = long_user;
    CHECK(hist_query(h, &q, &all, 0, &r, err, sizeof err) != 0);
    q.account = "x'); DROP TABLE jobs; --";
    CHECK(hist_query(h, &q, &all, 0, &r, err, sizeof err) == 0 && r.n_jobs == 0);
    q.account = "";
    const char *many[HIST_SCOPE_MAX + 1];
    for (size_t i = 0; i <= HIST_SCOPE_MAX; i++)
        many[i] = "a";
    hist_scope big = {.accounts = many, .n_accounts = HIST_SCOPE_MAX + 1};
    CHECK(hist_query(h, &q, &big, 0, &r, err, sizeof err) != 0);
    /* The largest scope allowed works. */
    big.n_accounts = HIST_SCOPE_MAX;
    big.user = "ali";
    CHECK(hist_query(h, &q, &big, 0, &r, err, sizeof err) == 0);
    q.account = "a";
    q.state = "completed";
    CHECK(hist_query(h, &q, &big, 0, &r, err, sizeof err) == 0);
    Jazari__UsageRequest uq = JAZARI__USAGE_REQUEST__INIT;
    Jazari__UsageReply ur = JAZARI__USAGE_REPLY__INIT;
    CHECK(hist_usage(h, &uq, &big, &ur, err, sizeof err) == 0);
    hist_close(h);
    tdir_rm(&t);
}

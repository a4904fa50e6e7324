/* bench_hist.c - the job history (daemon/raft/hist.c) over one million
 * finished jobs of a year: 2,000 users in 200 accounts (some with
 * projects), both skewed as real sites are (a few heavy accounts, a long
 * tail), GPU models and sites mixed. Prints, as ratios against references
 * measured in the same run:
 *   - the insert rate (each job with its one run, in batches of 1,000, as
 *     the controller commits them) against appending the same encoded
 *     records to a flat file with a flush to disk per batch (the floor of
 *     any durable store);
 *   - jz history's query for a month of one account (every page, through
 *     hist_query) against a plain scan of the same records (every record
 *     read from the table and decoded, filtered in C), for the heaviest
 *     account and for a middling one, median and spread over rounds;
 *   - the bytes on disk per finished job (database and WAL after a
 *     checkpoint) against the encoded record's own size.
 * JAZARI_BENCH_HIST_JOBS changes the number of jobs; JAZARI_BENCH_DIR
 * the directory (default /var/tmp). */
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/raft/hist.h"

#define USERS 2000
#define ACCOUNTS 200
#define BATCH 1000
#define YEAR_START 1735689600000ll /* 2025-01-01T00:00:00Z */
#define YEAR_MS (365ll * 86400 * 1000)
#define JUNE_START 1748736000000ll /* 2025-06-01 */
#define JULY_START 1751328000000ll /* 2025-07-01 */
#define QUERY_ROUNDS 7
#define SCAN_ROUNDS 3
#define FLAT_ROUNDS 3

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Zipf (s = 1) over n ranks: a few heavy, a long tail. */
typedef struct zipf {
    double cum[USERS];
    int n;
} zipf;

static void zipf_init(zipf *z, int n)
{
    z->n = n;
    double s = 0;
    for (int i = 0; i < n; i++)
        z->cum[i] = (s += 1.0 / (i + 1));
    for (int i = 0; i < n; i++)
        z->cum[i] /= s;
}

static int zipf_pick(const zipf *z, uint64_t r)
{
    double u = (double)(r >> 11) / 9007199254740992.0;
    int lo = 0, hi = z->n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->cum[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static zipf zu, za;
static char user_name[USERS][16];
static int user_account[USERS];
static char account_name[ACCOUNTS][16];
static char project_name[ACCOUNTS][4][24];
static const char *models[] = {"H100", "H100", "H100", "H100", "A100", "A100", "A100", "V100", "L40S", ""};
static const char *sites[] = {"rabat", "benguerir", "casablanca", "marrakech", "fes"};
static const uint64_t price_hour[] = {40000000, 40000000, 40000000, 40000000, 25000000,
                                      25000000, 25000000, 10000000, 15000000, 0};

static void world_init(void)
{
    zipf_init(&zu, USERS);
    zipf_init(&za, ACCOUNTS);
    for (int a = 0; a < ACCOUNTS; a++) {
        snprintf(account_name[a], sizeof account_name[a], "inst%03d", a);
        for (int p = 0; p < 4; p++)
            snprintf(project_name[a][p], sizeof project_name[a][p], "inst%03d/p%d", a, p);
    }
    for (int u = 0; u < USERS; u++) {
        snprintf(user_name[u], sizeof user_name[u], "user%04d", u);
        /* Heavy users mostly in heavy accounts. */
        user_account[u] = zipf_pick(&za, mix((uint64_t)u * 7919));
    }
}

typedef struct gjob {
    Jazari__HistJob j;
    Jazari__JobUsage u;
    Jazari__RunCharge r; /* its one run */
    char name[32], nodes[32];
} gjob;

/* Job i of n, the same every time it is asked for. */
static void gen(gjob *g, uint64_t i, uint64_t n)
{
    uint64_t r = mix(i), r2 = mix(i ^ 0x5bd1e995), r3 = mix(i * 31 + 17);
    int u = zipf_pick(&zu, r);
    int a = user_account[u];
    int m = (int)(r2 % 10);
    jazari__hist_job__init(&g->j);
    jazari__job_usage__init(&g->u);
    g->j.id = i + 1;
    snprintf(g->name, sizeof g->name, "train-%" PRIu64, r3 % 5000);
    g->j.name = g->name;
    g->j.user = user_name[u];
    /* A third of the accounts' jobs go to one of their projects. */
    g->j.account = a % 3 == 0 && r3 % 2 ? project_name[a][r3 % 4] : account_name[a];
    g->j.qos = r2 % 7 ? "normal" : "high";
    g->j.partition = "gpu";
    g->j.site = (char *)sites[(r2 >> 8) % 5];
    uint32_t nodes = 1 + (uint32_t)((r3 >> 16) % 8 == 0 ? (r3 >> 20) % 16 : 0);
    snprintf(g->nodes, sizeof g->nodes, nodes > 1 ? "gpu[%03u-%03u]" : "gpu%03u", (unsigned)(r % 900),
             (unsigned)(r % 900) + nodes - 1);
    g->j.node_list = g->nodes;
    g->j.nodes = nodes;
    uint32_t gpus = *models[m] ? nodes * (uint32_t)(1u << ((r2 >> 12) % 4)) : 0;
    g->j.gpus = gpus;
    g->j.gpu_model = (char *)models[m];
    g->j.cpus = nodes * 16;
    g->j.mem_bytes = 64ull << 30;
    uint64_t elapsed = 60000 + (r >> 20) % (48ull * 3600 * 1000);
    int64_t end = YEAR_START + (int64_t)(i * (uint64_t)YEAR_MS / n) + (int64_t)((r3 >> 24) % 7200000);
    g->j.end_ms = end;
    g->j.start_ms = end - (int64_t)elapsed;
    g->j.submit_ms = g->j.start_ms - (int64_t)((r2 >> 24) % 3600000);
    g->j.elapsed_ms = elapsed;
    g->j.time_limit_s = 48 * 3600;
    int st = (int)((r2 >> 32) % 20);
    g->j.state = st < 15   ? JAZARI__JOB_STATE__JOB_COMPLETED
                 : st < 17 ? JAZARI__JOB_STATE__JOB_FAILED
                 : st < 19 ? JAZARI__JOB_STATE__JOB_CANCELLED
                           : JAZARI__JOB_STATE__JOB_TIMEOUT;
    g->j.exit_code = st < 15 ? 0 : 1;
    g->u.cpu_ms = elapsed * 8;
    g->u.max_rss_bytes = (r >> 8) % (32ull << 30);
    g->u.gpu_ms = elapsed * gpus;
    g->u.cpu_alloc_ms = elapsed * g->j.cpus;
    g->u.gpu_util_ms = g->u.gpu_ms * (r3 % 100) / 100;
    g->u.util_gpu_ms = g->u.gpu_ms;
    g->u.charge_ms = g->u.gpu_ms;
    g->u.gpu_cost_micro = g->u.gpu_ms * price_hour[m] / 3600000;
    g->u.cost_micro = g->u.gpu_cost_micro + g->u.cpu_alloc_ms * 50000 / 3600000;
    g->u.gpu_model = g->j.gpu_model;
    g->u.nodes = g->nodes;
    g->u.runs = 1;
    g->u.first_start_ms = g->j.start_ms;
    g->j.usage = &g->u;
    jazari__run_charge__init(&g->r);
    g->r.id = g->j.id;
    g->r.attempt = 1;
    g->r.user = g->j.user;
    g->r.account = g->j.account;
    g->r.site = g->j.site;
    g->r.gpu_model = g->j.gpu_model;
    g->r.start_ms = g->j.start_ms;
    g->r.end_ms = g->j.end_ms;
    g->r.gpu_ms = g->u.gpu_ms;
    g->r.cpu_alloc_ms = g->u.cpu_alloc_ms;
    g->r.charge_ms = g->u.charge_ms;
    g->r.cost_micro = g->u.cost_micro;
    g->r.gpu_cost_micro = g->u.gpu_cost_micro;
    g->r.how = "ended";
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench-hist: %s: %s\n", what, err);
    exit(1);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The month of account (with its projects) through hist_query, every
 * page; how many jobs. */
static size_t query_month(hist *h, const char *account)
{
    static const hist_scope all = {.all = true};
    Jazari__HistoryRequest q = JAZARI__HISTORY_REQUEST__INIT;
    q.account = (char *)account;
    q.since_ms = JUNE_START;
    q.until_ms = JULY_START;
    size_t n = 0;
    char err[256];
    for (;;) {
        Jazari__HistoryReply r = JAZARI__HISTORY_REPLY__INIT;
        if (hist_query(h, &q, &all, 0, &r, err, sizeof err) != 0)
            die("query", err);
        n += r.n_jobs;
        bool more = r.more;
        if (r.n_jobs) {
            q.after_end_ms = r.jobs[r.n_jobs - 1]->end_ms;
            q.after_id = r.jobs[r.n_jobs - 1]->id;
        }
        hist_reply_free(&r);
        if (!more)
            return n;
    }
}

/* The same without the history's indexes: every record read and decoded,
 * the account and the month checked in C. */
static size_t scan_month(sqlite3 *db, const char *account)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT rec FROM jobs", -1, &st, NULL) != SQLITE_OK)
        die("scan", sqlite3_errmsg(db));
    size_t n = 0, alen = strlen(account);
    while (sqlite3_step(st) == SQLITE_ROW) {
        Jazari__HistJob *j =
            jazari__hist_job__unpack(NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
        if (!j)
            die("scan", "a record does not decode");
        if (j->end_ms >= JUNE_START && j->end_ms < JULY_START && strncmp(j->account, account, alen) == 0 &&
            (j->account[alen] == 0 || j->account[alen] == '/'))
            n++;
        jazari__hist_job__free_unpacked(j, NULL);
    }
    sqlite3_finalize(st);
    return n;
}

static void compare(hist *h, sqlite3 *db, const char *account, const char *what)
{
    double q[QUERY_ROUNDS], s[SCAN_ROUNDS];
    size_t nq = 0, ns = 0;
    for (int i = 0; i < QUERY_ROUNDS; i++) {
        double t = now_s();
        nq = query_month(h, account);
        q[i] = now_s() - t;
    }
    for (int i = 0; i < SCAN_ROUNDS; i++) {
        double t = now_s();
        ns = scan_month(db, account);
        s[i] = now_s() - t;
    }
    if (nq != ns) {
        fprintf(stderr, "bench-hist: %s: the query found %zu jobs, the scan %zu\n", account, nq, ns);
        exit(1);
    }
    double mq = median(q, QUERY_ROUNDS), ms = median(s, SCAN_ROUNDS);
    printf(
        "job history, a month of %s (%s, %zu jobs, all pages of 10,000): %.2f ms (%.2f-%.2f) vs a plain scan "
        "of the records %.0f ms (%.0f-%.0f) = %.4fx (medians of %d and %d rounds)\n",
        what, account, nq, mq * 1e3, q[0] * 1e3, q[QUERY_ROUNDS - 1] * 1e3, ms * 1e3, s[0] * 1e3,
        s[SCAN_ROUNDS - 1] * 1e3, mq / ms, QUERY_ROUNDS, SCAN_ROUNDS);
}

int main(void)
{
    const char *env = getenv("JAZARI_BENCH_HIST_JOBS");
    uint64_t n = env && *env ? strtoull(env, NULL, 10) : 1000000;
    if (n < BATCH)
        n = BATCH;
    const char *base = getenv("JAZARI_BENCH_DIR");
    char dir[256], path[300], wal[310], flat[300];
    snprintf(dir, sizeof dir, "%s/jazari-hist-XXXXXX", base && *base ? base : "/var/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    snprintf(path, sizeof path, "%s/history.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(flat, sizeof flat, "%s/flat", dir);
    world_init();
    char err[256];

    /* The reference: the encoded records appended to a file, flushed to
     * disk once per batch (the median of a few rounds: the disk's flushes
     * vary). */
    uint64_t rec_bytes = 0;
    double flat_t[FLAT_ROUNDS];
    for (int round = 0; round < FLAT_ROUNDS; round++) {
        double t = now_s();
        rec_bytes = 0;
        int fd = open(flat, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            die("open", flat);
        uint8_t *b = malloc(BATCH * 8192);
        for (uint64_t i = 0; i < n; i += BATCH) {
            size_t len = 0;
            for (uint64_t k = i; k < i + BATCH && k < n; k++) {
                gjob g;
                gen(&g, k, n);
                size_t l = jazari__hist_job__get_packed_size(&g.j);
                uint32_t l32 = (uint32_t)l;
                memcpy(b + len, &l32, 4);
                jazari__hist_job__pack(&g.j, b + len + 4);
                len += 4 + l;
                rec_bytes += l;
                l = jazari__run_charge__get_packed_size(&g.r);
                l32 = (uint32_t)l;
                memcpy(b + len, &l32, 4);
                jazari__run_charge__pack(&g.r, b + len + 4);
                len += 4 + l;
                rec_bytes += l;
            }
            if (write(fd, b, len) != (ssize_t)len || fdatasync(fd) != 0)
                die("write", flat);
        }
        free(b);
        close(fd);
        unlink(flat);
        flat_t[round] = now_s() - t;
    }
    double flat_s = median(flat_t, FLAT_ROUNDS);

    hist *h;
    if (hist_open(&h, path, false, err, sizeof err) != 0)
        die("open", err);
    double t = now_s();
    for (uint64_t i = 0; i < n; i++) {
        gjob g;
        gen(&g, i, n);
        if (hist_put_job(h, &g.j, err, sizeof err) != 0 || hist_put_run(h, &g.r, err, sizeof err) != 0)
            die("put", err);
        if (hist_pending(h) == 2 * BATCH && hist_flush(h, err, sizeof err) != 0)
            die("flush", err);
    }
    if (hist_flush(h, err, sizeof err) != 0)
        die("flush", err);
    double ins_s = now_s() - t;
    printf("job history, inserting %" PRIu64
           " finished jobs in batches of %d: %.0f jobs/s vs appending the same "
           "records to a file with a flush per batch %.0f jobs/s (%.0f-%.0f, median of %d rounds) = %.2fx "
           "the time\n",
           n, BATCH, (double)n / ins_s, (double)n / flat_s, (double)n / flat_t[FLAT_ROUNDS - 1],
           (double)n / flat_t[0], FLAT_ROUNDS, ins_s / flat_s);

    if (hist_checkpoint(h, err, sizeof err) != 0)
        die("checkpoint", err);
    off_t disk = file_size(path) + file_size(wal);
    printf("job history on disk: %.0f bytes per finished job of one run (%.1f MiB for %" PRIu64
           ", WAL checkpointed) = %.2fx its encoded records, job and run (%.0f bytes)\n",
           (double)disk / (double)n, (double)disk / 1048576.0, n, (double)disk / (double)rec_bytes,
           (double)rec_bytes / (double)n);

    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("open for the scan", sqlite3_errmsg(db));
    /* The heaviest account (with its projects), and one of the middle. */
    compare(h, db, account_name[0], "the heaviest account");
    compare(h, db, account_name[ACCOUNTS / 10], "a middling account");

    /* The invoice of the heaviest account's month. */
    double iv[QUERY_ROUNDS];
    size_t lines = 0;
    for (int i = 0; i < QUERY_ROUNDS; i++) {
        Jazari__InvoiceReply r = JAZARI__INVOICE_REPLY__INIT;
        double t0 = now_s();
        if (hist_invoice(h, account_name[0], JUNE_START, JULY_START, 2, 0, &r, err, sizeof err) != 0)
            die("invoice", err);
        iv[i] = now_s() - t0;
        lines = r.n_lines;
        hist_invoice_free(&r);
    }
    double mi = median(iv, QUERY_ROUNDS);
    printf("job history, the invoice of that month of %s (%zu lines, its jobs listed): %.2f ms (%.2f-%.2f), "
           "median "
           "of %d rounds\n",
           account_name[0], lines, mi * 1e3, iv[0] * 1e3, iv[QUERY_ROUNDS - 1] * 1e3, QUERY_ROUNDS);
    sqlite3_close(db);
    hist_close(h);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

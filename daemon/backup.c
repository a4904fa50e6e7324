/* backup.c - backups of the replicated state: `jz admin backup FILE` (the
 * leader encodes the state it has applied into a backup file and hands it
 * out in chunks) and `jazarid --restore FILE` (a fresh controller's log is
 * seeded with the file's state, then the daemon starts as usual).
 *
 * A backup is taken whole when asked (backup_id 0) and held here, so that
 * its chunks are one consistent state however long the client takes to
 * read them; it is dropped BACKUP_IDLE_MS after its last read, and at most
 * BACKUP_HELD are held (a new one pushes out the oldest that is done).
 *
 * The state is encoded by a forked child (as Redis' BGSAVE): the child
 * sees the state as it was at the fork, copy-on-write, encodes it and
 * writes the file down a pipe, while the leader's loop goes on (a large
 * state takes seconds to encode: longer than an election timeout). The
 * leader reads the pipe on its loop and answers the first chunk once the
 * child is done. The file's layout is common/bkfile.h. Above req.c and the
 * raft glue, below routes.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/bkfile.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/pki.h"
#include "jzd.h"
#include "raft/codec.h"
#include "raft/seed.h"

/* A reply's chunk: well under the smallest reader on its way (a follower
 * relays it through its uplink, which reads frames of up to 16 MiB). */
#define BACKUP_CHUNK (4u << 20)
#define BACKUP_HELD 2
#define BACKUP_IDLE_MS (120 * 1000)

typedef struct backup_held {
    jzd *d;
    uint64_t id;
    buf file;
    Jazari__BackupHead *head; /* unpacked from file, for the first reply */
    int64_t used_ms;          /* the last read (monotonic) */
    /* While its child encodes it (taking): */
    bool taking;
    pid_t child;
    uv_pipe_t pipe;
    bool pipe_open;   /* until its close callback */
    jzd_wait *waiter; /* the request that asked for it */
    int64_t started_ms;
} backup_held;

struct jzd_backups {
    backup_held held[BACKUP_HELD];
    uint64_t next_id;
};

/* Frees what h holds (not a pipe still open: see backup__end). */
static void backup__drop(backup_held *h)
{
    buf_free(&h->file);
    if (h->head)
        jazari__backup_head__free_unpacked(h->head, NULL);
    h->head = NULL;
    h->id = 0;
    h->used_ms = 0;
}

static void backup__pipe_closed(uv_handle_t *hd)
{
    backup_held *h = hd->data;
    h->pipe_open = false;
}

/* Ends the child's part: the pipe closed, the child reaped (killed first
 * when kill is set: the daemon stops, or the backup failed). */
static void backup__end(backup_held *h, bool kill_it)
{
    if (h->pipe_open && !uv_is_closing((uv_handle_t *)&h->pipe))
        uv_close((uv_handle_t *)&h->pipe, backup__pipe_closed);
    if (h->child > 0) {
        if (kill_it)
            kill(h->child, SIGKILL);
        int st;
        while (waitpid(h->child, &st, 0) < 0 && errno == EINTR)
            ;
        h->child = 0;
    }
    h->taking = false;
}

void backup_close(jzd *d)
{
    for (int i = 0; d->backups && i < BACKUP_HELD; i++) {
        backup_held *h = &d->backups->held[i];
        if (!h->taking)
            continue;
        net_conn *c = req_unwait(h->waiter);
        if (c)
            req_error(c, h->waiter->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                      "jz admin backup: the controller is stopping");
        free(h->waiter);
        h->waiter = NULL;
        backup__end(h, true);
        backup__drop(h);
    }
}

void backup_free(jzd *d)
{
    if (!d->backups)
        return;
    for (int i = 0; i < BACKUP_HELD; i++)
        backup__drop(&d->backups->held[i]);
    free(d->backups);
    d->backups = NULL;
}

void backup_tick(jzd *d)
{
    if (!d->backups)
        return;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < BACKUP_HELD; i++) {
        backup_held *h = &d->backups->held[i];
        if (h->id && !h->taking && now - h->used_ms > BACKUP_IDLE_MS)
            backup__drop(h);
    }
}

/* Answers request id on c with the chunk of h at offset. */
static void backup__reply(backup_held *h, net_conn *c, uint64_t id, uint64_t offset)
{
    if (offset > h->file.len) {
        req_error(c, id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz admin backup: offset %llu is past the backup's %zu bytes", (unsigned long long)offset,
                  h->file.len);
        return;
    }
    h->used_ms = clock_mono_ms();
    size_t left = h->file.len - (size_t)offset;
    Jazari__BackupReply rep = JAZARI__BACKUP_REPLY__INIT;
    rep.backup_id = h->id;
    rep.size = h->file.len;
    rep.offset = offset;
    rep.chunk.data = (uint8_t *)h->file.data + offset;
    rep.chunk.len = left < BACKUP_CHUNK ? left : BACKUP_CHUNK;
    rep.head = offset == 0 ? h->head : NULL;
    req_reply(c, id, JAZARI__ENVELOPE__BODY_BACKUP_REPLY, &rep);
}

/* The child is done (or failed: why): the first chunk, or the reason, to
 * the request that asked. */
static void backup__taken(backup_held *h, const char *why)
{
    char msg[300] = "";
    int64_t took = clock_mono_ms() - h->started_ms;
    int st = 0;
    if (!why && h->child > 0) {
        while (waitpid(h->child, &st, 0) < 0 && errno == EINTR)
            ;
        h->child = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            why = "its encoder did not finish (out of memory?)";
    }
    if (!why && !(h->head = bkfile_head(h->file.data, h->file.len)))
        why = "what its encoder wrote is not a backup";
    backup__end(h, why != NULL);
    if (why)
        snprintf(msg, sizeof msg, "%s", why);
    net_conn *c = req_unwait(h->waiter);
    uint64_t rid = h->waiter->request_id;
    free(h->waiter);
    h->waiter = NULL;
    if (msg[0]) {
        log_error("backup", "backup %llu failed: %s", (unsigned long long)h->id, msg);
        if (c)
            req_error(c, rid, JAZARI__ERROR_CODE__INTERNAL, false,
                      "jz admin backup: %s (see the leader's log)", msg);
        backup__drop(h);
        return;
    }
    log_info("backup", "backup %llu: log index %llu, %llu jobs, %llu nodes, %zu bytes, encoded in %lld ms",
             (unsigned long long)h->id, (unsigned long long)h->head->index, (unsigned long long)h->head->jobs,
             (unsigned long long)h->head->nodes, h->file.len, (long long)took);
    if (c)
        backup__reply(h, c, rid, 0);
}

static void backup__alloc(uv_handle_t *hd, size_t want, uv_buf_t *b)
{
    backup_held *h = hd->data;
    (void)want;
    b->base = buf_extend(&h->file, 64u << 10);
    b->len = 64u << 10;
    h->file.len -= b->len; /* claimed by the read below, if any */
}

static void backup__read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    backup_held *h = s->data;
    (void)b;
    if (n > 0) {
        h->file.len += (size_t)n;
        if (h->file.len > BKFILE_MAX + BKFILE_HEAD_MAX + 64)
            backup__taken(h, "the state is larger than any backup");
        return;
    }
    if (n == UV_EOF)
        backup__taken(h, NULL);
    else if (n < 0)
        backup__taken(h, uv_strerror((int)n));
}

/* In the child: encodes the state as it was at the fork into fd, and
 * exits. Nothing of the daemon's loop, locks or files is touched. */
__attribute__((noreturn)) static void backup__child(const fsm *f, Jazari__BackupHead *head, int fd)
{
    signal(SIGTERM, SIG_DFL); /* the daemon's handlers write to its loop's pipe */
    signal(SIGINT, SIG_DFL);
    buf snap = BUF_INIT, file = BUF_INIT;
    fsm_snapshot(f, &snap);
    bkfile_encode(head, snap.data, snap.len, &file);
    buf_free(&snap);
    size_t off = 0;
    while (off < file.len) {
        ssize_t w = write(fd, file.data + off, file.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1);
        off += (size_t)w;
    }
    _exit(0); /* no atexit handlers: they are the daemon's */
}

/* Starts a backup of the state as applied now into a free slot: NULL with
 * why when none is free or the child cannot be made. */
static backup_held *backup__take(jzd *d, char *why, size_t whylen)
{
    if (!d->backups) {
        d->backups = calloc(1, sizeof *d->backups);
        if (!d->backups)
            abort();
    }
    backup_held *h = NULL;
    for (int i = 0; i < BACKUP_HELD; i++) {
        backup_held *o = &d->backups->held[i];
        if (o->taking) {
            snprintf(why, whylen, "backup %llu is being taken: wait for it, then ask again",
                     (unsigned long long)o->id);
            return NULL;
        }
        if (!o->pipe_open && (!h || !o->id || (h->id && o->used_ms < h->used_ms)))
            h = o;
    }
    if (!h) {
        snprintf(why, whylen, "the last backups are still being closed: ask again");
        return NULL;
    }
    backup__drop(h);
    const fsm *f = &d->ctl.state;
    Jazari__BackupHead head = JAZARI__BACKUP_HEAD__INIT;
    head.snapshot_format = CODEC_FORMAT;
    head.index = ctl_applied(&d->ctl);
    head.term = d->ctl.raft.current_term;
    head.time_ms = ctl_now_ms(&d->ctl);
    head.cluster_name = d->cfg->cluster_name;
    head.ca_hash = d->trust.ca_hash;
    head.taken_by = (char *)d->cfg->name;
    head.version = JZ_VERSION " (" JZ_GIT_REV ")"; /* as jzd_software_version (daemon.c calls us) */
    head.jobs = f->n_jobs;
    head.nodes = f->n_nodes;
    head.creds = f->trust.n_creds;
    head.tokens = f->trust.n_tokens;
    head.grants = f->acct.n_grants;
    head.next_job_id = f->next_job_id;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "cannot make a pipe: %s", strerror(errno));
        return NULL;
    }
    int64_t t0 = clock_mono_ms();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        backup__child(f, &head, fds[1]);
    }
    int64_t forked = clock_mono_ms() - t0;
    close(fds[1]);
    if (pid < 0) {
        snprintf(why, whylen, "cannot fork its encoder: %s", strerror(errno));
        close(fds[0]);
        return NULL;
    }
    h->d = d;
    h->child = pid;
    h->taking = true;
    h->started_ms = t0;
    h->id = ++d->backups->next_id;
    h->used_ms = clock_mono_ms();
    uv_pipe_init(&d->loop, &h->pipe, 0);
    h->pipe.data = h;
    h->pipe_open = true;
    int rc = uv_pipe_open(&h->pipe, fds[0]);
    if (rc != 0)
        close(fds[0]); /* the handle did not take it */
    else
        rc = uv_read_start((uv_stream_t *)&h->pipe, backup__alloc, backup__read);
    if (rc != 0) {
        snprintf(why, whylen, "cannot read its encoder: %s", uv_strerror(rc));
        backup__end(h, true);
        backup__drop(h);
        return NULL;
    }
    /* The loop stood still for the fork alone (the page tables' copy). */
    log_info("backup", "backup %llu: encoder %d forked in %lld ms", (unsigned long long)h->id, (int)pid,
             (long long)forked);
    return h;
}

void backup_request(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__BackupRequest *r = e->backup_request;
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    if (!authz_backup(&w)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "jz admin backup is for the network's admins (root on a controller, or admin credentials), "
                  "not for %s",
                  w.user);
        return;
    }
    if (r->backup_id == 0) {
        if (!d->ctl_running || !ctl_is_leader(&d->ctl)) {
            req_not_leader(d, c, e->request_id);
            return;
        }
        char why[300];
        backup_held *h = backup__take(d, why, sizeof why);
        if (!h) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false, "jz admin backup: %s", why);
            return;
        }
        h->waiter = req_wait(d, c, e);
        log_info("backup", "backup %llu for %s (%s)", (unsigned long long)h->id, w.user, w.from);
        return;
    }
    backup_held *h = NULL;
    for (int i = 0; d->backups && i < BACKUP_HELD; i++)
        if (d->backups->held[i].id == r->backup_id && !d->backups->held[i].taking)
            h = &d->backups->held[i];
    if (!h) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "jz admin backup: backup %llu is no longer held here (the leader changed, or it waited "
                  "over %d s): run jz admin backup again",
                  (unsigned long long)r->backup_id, BACKUP_IDLE_MS / 1000);
        return;
    }
    backup__reply(h, c, e->request_id, r->offset);
}

/* --- jazarid --restore FILE ------------------------------------------------------------ */

/* Whether dir holds anything (an absent dir holds nothing): 1, 0, or -1
 * with err. */
static int backup__dir_used(const char *dir, char *err, size_t errlen)
{
    DIR *dh = opendir(dir);
    if (!dh) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    int used = 0;
    struct dirent *de;
    while (!used && (de = readdir(dh)))
        used = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(dh);
    return used;
}

/* Reads a whole file of at most max bytes into b: 0, or -1 with err. */
static int backup__read_file(const char *path, uint64_t max, buf *b, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        snprintf(err, errlen, "%s: %s", path, S_ISREG(st.st_mode) ? "larger than any backup" : "not a file");
        close(fd);
        return -1;
    }
    size_t want = (size_t)st.st_size, got = 0;
    uint8_t *p = buf_extend(b, want ? want : 1);
    while (got < want) {
        ssize_t n = read(fd, p + got, want - got);
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "shorter than it was");
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    b->len = want;
    close(fd);
    return 0;
}

/* Makes every missing directory of path (0700). 0, or -1 with err. */
static int backup__mkdirs(const char *path, char *err, size_t errlen)
{
    char p[CONFIG_PATH_MAX + 1];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s)
            continue;
        char was = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            return -1;
        }
        if (!was)
            return 0;
        *s = was;
    }
}

/* The CA a network token (join_token = jzn1...) makes, as trust.c makes
 * it: its hash into out, true; false for no such token. */
static bool backup__token_ca(const config *cfg, char out[PKI_HASH_HEX + 1])
{
    pki_token tok;
    char why[200];
    if (!cfg->join_token || !*cfg->join_token ||
        pki_token_parse(cfg->join_token, &tok, why, sizeof why) != 0 || tok.kind != PKI_TOKEN_NETWORK)
        return false;
    EVP_PKEY *key = pki_key_from_network(&tok);
    X509 *ca = key ? pki_ca_make(key) : NULL;
    bool ok = ca && pki_cert_hash(ca, out) == 0;
    X509_free(ca);
    EVP_PKEY_free(key);
    return ok;
}

int backup_restore(const config *cfg, const char *path, char *err, size_t errlen)
{
    config_peer peers[CONFIG_MAX_CONTROLLERS];
    int n = config_controllers(cfg, peers, err, errlen);
    if (n < 0)
        return -1;
    unsigned long long id = config_controller_id(cfg, peers, n);
    if (id == 0) {
        snprintf(err, errlen, "--restore: %s is not in controllers: only a controller restores a network",
                 cfg->name);
        return -1;
    }
    char raft_dir[CONFIG_PATH_MAX + 8];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", cfg->state_dir);
    int used = backup__dir_used(raft_dir, err, errlen);
    if (used < 0)
        return -1;
    if (used) {
        snprintf(err, errlen,
                 "--restore: %s already holds a Raft log: a backup is restored only into a fresh state_dir "
                 "(move %s aside first)",
                 raft_dir, raft_dir);
        return -1;
    }
    buf file = BUF_INIT;
    bkfile_view v = {0};
    char why[300];
    int rc = -1;
    if (backup__read_file(path, BKFILE_MAX + BKFILE_HEAD_MAX + 64, &file, why, sizeof why) != 0) {
        snprintf(err, errlen, "--restore: %s", why);
        goto done;
    }
    if (bkfile_decode(file.data, file.len, CODEC_FORMAT, &v, why, sizeof why) != 0) {
        snprintf(err, errlen, "--restore: %s: %s", path, why);
        goto done;
    }
    /* The state must load before it is written where the daemon will
     * trust it. */
    fsm f;
    fsm_init(&f);
    int ok = fsm_restore(&f, v.snap, v.snap_len, why, sizeof why);
    uint64_t jobs = f.n_jobs, next = f.next_job_id;
    fsm_free(&f);
    if (ok != 0) {
        snprintf(err, errlen, "--restore: %s: its state does not load: %s", path, why);
        goto done;
    }
    /* Another network's backup with this network's CA: its nodes'
     * certificates would not be believed. A missing CA is made anew (or
     * from the join token) when the daemon starts: said below. */
    char ca_path[CONFIG_PATH_MAX + 16], have[PKI_HASH_HEX + 1] = "";
    snprintf(ca_path, sizeof ca_path, "%s/tls/ca.crt", cfg->state_dir);
    buf pem = BUF_INIT;
    if (v.head->ca_hash && *v.head->ca_hash &&
        pki_read_file(ca_path, 64u << 10, &pem, why, sizeof why) == 0) {
        X509 *ca = pki_cert_from_pem(pem.data, pem.len, why, sizeof why);
        if (ca)
            pki_cert_hash(ca, have);
        X509_free(ca);
    }
    buf_free(&pem);
    const char *from = ca_path;
    if (!have[0] && v.head->ca_hash && *v.head->ca_hash && backup__token_ca(cfg, have))
        from = "the join token";
    if (have[0] && !pki_equal(have, v.head->ca_hash)) {
        snprintf(err, errlen,
                 "--restore: %s is a backup of the network with CA %.12s, but %s gives CA %.12s: restore it "
                 "with that network's CA (its tls/ca.crt and ca.key, or its network token)",
                 path, v.head->ca_hash, from, have);
        goto done;
    }
    if (!have[0] && v.head->ca_hash && *v.head->ca_hash)
        log_warn("backup",
                 "%s holds no CA and there is no network token: this controller makes a new CA, and the "
                 "nodes of the backup's network (CA %.12s) must join it anew; to keep them, copy the old "
                 "tls/ca.crt and ca.key there first",
                 ca_path, v.head->ca_hash);
    if (backup__mkdirs(cfg->state_dir, err, errlen) != 0)
        goto done;
    uint64_t at = v.head->index + BACKUP_EPOCH;
    if (seed_log(raft_dir, id, peers, (unsigned)n, at, v.head->term ? v.head->term : 1, v.snap, v.snap_len,
                 why, sizeof why) != 0) {
        snprintf(err, errlen, "--restore: %s", why);
        goto done;
    }
    log_info(
        "backup",
        "restored %s into %s: log index %llu of the backup (the restored log goes on from %llu), term "
        "%llu, %llu jobs, next job id %llu, taken by %s; %d controller%s in this network's configuration",
        path, raft_dir, (unsigned long long)v.head->index, (unsigned long long)at,
        (unsigned long long)v.head->term, (unsigned long long)jobs, (unsigned long long)next,
        v.head->taken_by, n, n == 1 ? "" : "s");
    rc = 0;
done:
    bkfile_view_free(&v);
    buf_free(&file);
    return rc;
}

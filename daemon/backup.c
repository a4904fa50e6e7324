/* backup.c - backups of the replicated state: `jz admin backup FILE` (the
 * leader encodes the state it has applied into a backup file and hands it
 * out in chunks) and `jazarid --restore FILE` (a fresh controller's log is
 * seeded with the file's state, then the daemon starts as usual).
 *
 * A backup is taken whole when asked (backup_id 0) and held here, so that
 * its chunks are one consistent state however long the client takes to
 * read them; it is dropped BACKUP_IDLE_MS after its last read, and at most
 * BACKUP_HELD are held (a new one pushes out the oldest). The file's
 * layout is common/bkfile.h. Above req.c and the raft glue, below routes.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    uint64_t id;
    buf file;
    Jazari__BackupHead *head; /* unpacked from file, for the first reply */
    int64_t used_ms;          /* the last read (monotonic) */
} backup_held;

struct jzd_backups {
    backup_held held[BACKUP_HELD];
    uint64_t next_id;
};

static void backup__drop(backup_held *h)
{
    buf_free(&h->file);
    if (h->head)
        jazari__backup_head__free_unpacked(h->head, NULL);
    memset(h, 0, sizeof *h);
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
    for (int i = 0; i < BACKUP_HELD; i++)
        if (d->backups->held[i].id && now - d->backups->held[i].used_ms > BACKUP_IDLE_MS)
            backup__drop(&d->backups->held[i]);
}

/* Takes a backup of the state as applied now into a free slot (or the
 * oldest one's). NULL only if it could not be read back (a bug). */
static backup_held *backup__take(jzd *d)
{
    if (!d->backups) {
        d->backups = calloc(1, sizeof *d->backups);
        if (!d->backups)
            abort();
    }
    backup_held *h = &d->backups->held[0];
    for (int i = 1; i < BACKUP_HELD && h->id; i++)
        if (!d->backups->held[i].id || d->backups->held[i].used_ms < h->used_ms)
            h = &d->backups->held[i];
    backup__drop(h);
    const fsm *f = &d->ctl.state;
    int64_t t0 = clock_mono_ms();
    buf snap = BUF_INIT;
    fsm_snapshot(f, &snap);
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
    bkfile_encode(&head, snap.data, snap.len, &h->file);
    buf_free(&snap);
    int64_t took = clock_mono_ms() - t0;
    bkfile_view v;
    char err[300];
    if (bkfile_decode(h->file.data, h->file.len, CODEC_FORMAT, &v, err, sizeof err) != 0) {
        log_error("backup", "a backup just made does not read back: %s", err);
        backup__drop(h);
        return NULL;
    }
    h->head = v.head;
    h->id = ++d->backups->next_id;
    h->used_ms = clock_mono_ms();
    /* The loop stood still for `took`: said, so that an admin sees what a
     * backup of a big state costs the leader. */
    log_info("backup", "backup %llu: log index %llu, %llu jobs, %zu nodes, %zu bytes, encoded in %lld ms",
             (unsigned long long)h->id, (unsigned long long)head.index, (unsigned long long)head.jobs,
             (size_t)head.nodes, h->file.len, (long long)took);
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
    backup_held *h = NULL;
    if (r->backup_id == 0) {
        if (!d->ctl_running || !ctl_is_leader(&d->ctl)) {
            req_not_leader(d, c, e->request_id);
            return;
        }
        h = backup__take(d);
        if (!h) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__INTERNAL, false,
                      "jz admin backup: the backup did not read back (see the leader's log)");
            return;
        }
        log_info("backup", "backup %llu for %s (%s)", (unsigned long long)h->id, w.user, w.from);
    } else {
        for (int i = 0; d->backups && i < BACKUP_HELD; i++)
            if (d->backups->held[i].id == r->backup_id)
                h = &d->backups->held[i];
        if (!h) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                      "jz admin backup: backup %llu is no longer held here (the leader changed, or it waited "
                      "over %d s): run jz admin backup again",
                      (unsigned long long)r->backup_id, BACKUP_IDLE_MS / 1000);
            return;
        }
    }
    if (r->offset > h->file.len) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz admin backup: offset %llu is past the backup's %zu bytes",
                  (unsigned long long)r->offset, h->file.len);
        return;
    }
    h->used_ms = clock_mono_ms();
    size_t left = h->file.len - (size_t)r->offset;
    Jazari__BackupReply rep = JAZARI__BACKUP_REPLY__INIT;
    rep.backup_id = h->id;
    rep.size = h->file.len;
    rep.offset = r->offset;
    rep.chunk.data = (uint8_t *)h->file.data + r->offset;
    rep.chunk.len = left < BACKUP_CHUNK ? left : BACKUP_CHUNK;
    rep.head = r->offset == 0 ? h->head : NULL;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_BACKUP_REPLY, &rep);
    if (rep.chunk.len == left)
        log_debug("backup", "backup %llu read to its end", (unsigned long long)h->id);
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
static int backup__read(const char *path, uint64_t max, buf *b, char *err, size_t errlen)
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
    if (backup__read(path, BKFILE_MAX + BKFILE_HEAD_MAX + 64, &file, why, sizeof why) != 0) {
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

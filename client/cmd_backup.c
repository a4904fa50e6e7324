/* cmd_backup.c - jz admin: backup FILE (the network's state, from the
 * leader, written atomically) and backup --verify FILE (a backup checked
 * offline: what it holds, or one line on what is wrong with it). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/bkfile.h"
#include "../daemon/raft/codec.h"
#include "cli.h"

/* What a backup holds, counted from its state (not from its head). */
typedef struct backup__counts {
    size_t jobs, pending, running, ended, nodes, creds, tokens, grants, reservations;
    uint64_t next_job_id;
} backup__counts;

static int backup__count(const bkfile_view *v, backup__counts *n, char *err, size_t errlen)
{
    Jazari__Snapshot *s = jazari__snapshot__unpack(NULL, v->snap_len, v->snap);
    if (!s) {
        snprintf(err, errlen, "damaged: its state does not decode (although its checksum matches)");
        return -1;
    }
    memset(n, 0, sizeof *n);
    n->jobs = s->n_jobs;
    for (size_t i = 0; i < s->n_jobs; i++) {
        if (s->jobs[i]->state == JAZARI__JOB_STATE__JOB_PENDING)
            n->pending++;
        else if (s->jobs[i]->state == JAZARI__JOB_STATE__JOB_RUNNING)
            n->running++;
        else
            n->ended++;
    }
    n->nodes = s->n_nodes;
    n->creds = s->n_creds;
    n->tokens = s->n_tokens;
    n->grants = s->n_grants;
    n->reservations = s->n_reservations;
    n->next_job_id = s->next_job_id;
    jazari__snapshot__free_unpacked(s, NULL);
    return 0;
}

/* Says what the backup in v (size bytes, from path) holds. */
static int backup__describe(cli *c, const char *path, const bkfile_view *v, size_t size, const char *verb)
{
    backup__counts n;
    char err[200], when[40];
    if (backup__count(v, &n, err, sizeof err) != 0) {
        cli_error(c, "%s: %s", path, err);
        return CLI_REFUSED;
    }
    const Jazari__BackupHead *h = v->head;
    cli_utc_time(h->time_ms, when, sizeof when);
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, "file", path);
        json_kv_uint(&j, "bytes", size);
        json_kv_str(&j, "cluster_name", h->cluster_name);
        json_kv_str(&j, "ca_hash", h->ca_hash && *h->ca_hash ? h->ca_hash : NULL);
        json_kv_str(&j, "taken_by", h->taken_by);
        json_kv_str(&j, "version", h->version);
        json_kv_str(&j, "time", when);
        json_kv_uint(&j, "index", h->index);
        json_kv_uint(&j, "term", h->term);
        json_kv_uint(&j, "format", h->snapshot_format);
        json_kv_uint(&j, "jobs", n.jobs);
        json_kv_uint(&j, "jobs_pending", n.pending);
        json_kv_uint(&j, "jobs_running", n.running);
        json_kv_uint(&j, "jobs_ended", n.ended);
        json_kv_uint(&j, "next_job_id", n.next_job_id);
        json_kv_uint(&j, "nodes", n.nodes);
        json_kv_uint(&j, "credentials", n.creds);
        json_kv_uint(&j, "join_tokens", n.tokens);
        json_kv_uint(&j, "grants", n.grants);
        json_kv_uint(&j, "reservations", n.reservations);
        json_obj_end(&j);
    } else {
        buf_printf(&b,
                   "%s: %s backup of %s (CA %.12s) taken by %s (%s) at %s: log index %llu, term %llu, "
                   "format %u; %zu jobs (%zu pending, %zu running, %zu ended), next job id %llu; %zu nodes; "
                   "%zu credentials, %zu join tokens; %zu grants, %zu reservations; %zu bytes",
                   path, verb, h->cluster_name, h->ca_hash && *h->ca_hash ? h->ca_hash : "none", h->taken_by,
                   h->version, when, (unsigned long long)h->index, (unsigned long long)h->term,
                   h->snapshot_format, n.jobs, n.pending, n.running, n.ended,
                   (unsigned long long)n.next_job_id, n.nodes, n.creds, n.tokens, n.grants, n.reservations,
                   size);
    }
    return cli_flush(&b);
}

static int backup__verify(cli *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > BKFILE_MAX + BKFILE_HEAD_MAX + 64) {
        cli_error(c, "%s: %s", path, fd < 0 || errno ? strerror(errno) : "not a file of a backup's size");
        if (fd >= 0)
            close(fd);
        return CLI_REFUSED;
    }
    buf b = BUF_INIT;
    size_t want = (size_t)st.st_size, got = 0;
    uint8_t *p = buf_extend(&b, want ? want : 1);
    while (got < want) {
        ssize_t r = read(fd, p + got, want - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    bkfile_view v;
    char err[300];
    int rc = CLI_REFUSED;
    if (got != want)
        cli_error(c, "%s: cannot read it whole", path);
    else if (bkfile_decode(b.data, got, CODEC_FORMAT, &v, err, sizeof err) != 0)
        cli_error(c, "%s: %s", path, err);
    else {
        rc = backup__describe(c, path, &v, got, "a good");
        bkfile_view_free(&v);
    }
    buf_free(&b);
    return rc;
}

/* Writes data to path atomically: a temporary file beside it (0600),
 * fsynced, then linked in (force: renamed over what is there), and the
 * directory fsynced. 0, or -1 after saying why. */
static int backup__write(cli *c, const char *path, const buf *data, bool force)
{
    char tmp[4096], dircopy[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        cli_error(c, "%.100s...: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error(c, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < data->len) {
        ssize_t w = write(fd, data->data + off, data->len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int err = off == data->len && fsync(fd) == 0 ? 0 : errno ? errno : EIO;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && (force ? rename(tmp, path) : link(tmp, path)) != 0)
        err = errno;
    if (!force || err)
        unlink(tmp);
    if (err == EEXIST) {
        cli_error(c, "%s appeared meanwhile: not replaced (--force replaces it)", path);
        return -1;
    }
    if (err) {
        cli_error(c, "cannot write %s: %s", path, strerror(err));
        return -1;
    }
    snprintf(dircopy, sizeof dircopy, "%s", path);
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int backup__take(cli *c, const char *path, bool force)
{
    struct stat st;
    if (!force && lstat(path, &st) == 0) {
        cli_error(c, "%s exists: name another file, or add --force to replace it", path);
        return CLI_REFUSED;
    }
    buf file = BUF_INIT;
    uint64_t id = 0, size = 0;
    int rc = CLI_REFUSED;
    for (;;) {
        Jazari__BackupRequest q = JAZARI__BACKUP_REQUEST__INIT;
        q.backup_id = id;
        q.offset = file.len;
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_BACKUP_REQUEST;
        req.backup_request = &q;
        int status;
        wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_BACKUP_REPLY, &status);
        if (!m) {
            rc = status;
            goto done;
        }
        const Jazari__BackupReply *r = wire_msg_env(m)->backup_reply;
        bool bad = (id && (r->backup_id != id || r->size != size)) || r->offset != file.len ||
                   r->size > BKFILE_MAX + BKFILE_HEAD_MAX + 64 || r->chunk.len > r->size - file.len ||
                   (r->chunk.len == 0 && file.len < r->size);
        if (bad) {
            cli_error(c,
                      "the daemon sent a chunk that does not fit the backup (offset %llu of %llu): try again",
                      (unsigned long long)r->offset, (unsigned long long)r->size);
            wire_msg_free(m);
            goto done;
        }
        id = r->backup_id;
        size = r->size;
        buf_append(&file, r->chunk.data, r->chunk.len);
        wire_msg_free(m);
        if (file.len == size)
            break;
    }
    /* What is written is checked as --restore will check it. */
    bkfile_view v;
    char err[300];
    if (bkfile_decode(file.data, file.len, CODEC_FORMAT, &v, err, sizeof err) != 0) {
        cli_error(c, "the backup received is not whole (%s): try again", err);
        goto done;
    }
    if (backup__write(c, path, &file, force) == 0)
        rc = backup__describe(c, path, &v, file.len, "wrote a");
    bkfile_view_free(&v);
done:
    buf_free(&file);
    return rc;
}

int cmd_admin(cli *c, int argc, char **argv)
{
    bool force = false, verify = false;
    const char *pos[2];
    if (c->describe && (argc < 1 || strcmp(argv[0], "backup") != 0)) {
        printf("subcommands:\n  backup\n");
        return CLI_OK;
    }
    const cli_opt opts[] = {{"force", CLI_FLAG, &force}, {"verify", CLI_FLAG, &verify}, {NULL, 0, NULL}};
    int n = cli_parse(c, argc, argv, opts, pos, 2);
    if (n < 0)
        return CLI_USAGE;
    if (n != 2 || strcmp(pos[0], "backup") != 0) {
        cli_error(c, "usage: jz admin backup FILE [--force] | jz admin backup --verify FILE");
        return CLI_USAGE;
    }
    if (verify && force) {
        cli_error(c, "--verify reads FILE, --force replaces it: one or the other");
        return CLI_USAGE;
    }
    return verify ? backup__verify(c, pos[1]) : backup__take(c, pos[1], force);
}

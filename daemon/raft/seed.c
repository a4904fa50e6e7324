/* seed.c - seeds an empty Raft log with a state (seed.h), through libraft's
 * own disk I/O (raft_uv) so that the files are exactly those it writes
 * when a follower installs a leader's snapshot. */
#include "seed.h"

#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct seed__op {
    bool done;
    int status;
} seed__op;

static void seed__put_cb(struct raft_io_snapshot_put *req, int status)
{
    seed__op *op = req->data;
    op->done = true;
    op->status = status;
}

static void seed__closed(struct raft_io *io)
{
    seed__op *op = io->data;
    op->done = true;
}

/* Runs the loop until op is done. */
static void seed__wait(uv_loop_t *loop, seed__op *op)
{
    while (!op->done && uv_run(loop, UV_RUN_ONCE))
        ;
}

int seed_log(const char *raft_dir, unsigned long long self, const config_peer *peers, unsigned n,
             uint64_t index, uint64_t term, const void *snap, size_t len, char *err, size_t errlen)
{
    if (mkdir(raft_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", raft_dir, strerror(errno));
        return -1;
    }
    uv_loop_t loop;
    struct raft_uv_transport t;
    struct raft_io io;
    int rc = -1;
    uv_loop_init(&loop);
    memset(&t, 0, sizeof t);
    memset(&io, 0, sizeof io);
    if (raft_uv_tcp_init(&t, &loop) != 0) {
        snprintf(err, errlen, "raft: cannot set up its transport");
        uv_loop_close(&loop);
        return -1;
    }
    const char *address = "";
    for (unsigned i = 0; i < n; i++)
        if (peers[i].id == self)
            address = peers[i].address;
    int r = raft_uv_init(&io, &loop, raft_dir, &t);
    if (r == 0)
        r = io.init(&io, self, address);
    if (r != 0) {
        snprintf(err, errlen, "raft log in %s: %s", raft_dir, io.errmsg[0] ? io.errmsg : raft_strerror(r));
        if (r != 0 && io.impl)
            goto close;
        raft_uv_tcp_close(&t);
        uv_loop_close(&loop);
        return -1;
    }
    raft_term have_term = 0;
    raft_id vote = 0;
    struct raft_snapshot *have_snap = NULL;
    raft_index start = 0;
    struct raft_entry *entries = NULL;
    size_t n_entries = 0;
    r = io.load(&io, &have_term, &vote, &have_snap, &start, &entries, &n_entries);
    if (r != 0 || have_term || have_snap || n_entries) {
        snprintf(err, errlen, "%s: %s", raft_dir,
                 r ? (io.errmsg[0] ? io.errmsg : raft_strerror(r)) : "it already holds a Raft log");
        if (have_snap) {
            for (unsigned i = 0; i < have_snap->n_bufs; i++)
                raft_free(have_snap->bufs[i].base);
            raft_free(have_snap->bufs);
            raft_configuration_close(&have_snap->configuration);
            raft_free(have_snap);
        }
        for (size_t i = 0; i < n_entries; i++)
            if (i == 0 || entries[i].batch != entries[i - 1].batch)
                raft_free(entries[i].batch);
        raft_free(entries);
        goto close;
    }
    /* The term first: the log of a term no election has reached yet is
     * then the newest any of the voters has, as it must be. */
    r = io.set_term(&io, term);
    if (r != 0) {
        snprintf(err, errlen, "raft log in %s: cannot set the term: %s", raft_dir, raft_strerror(r));
        goto close;
    }
    struct raft_snapshot s;
    memset(&s, 0, sizeof s);
    s.index = index;
    s.term = term;
    raft_configuration_init(&s.configuration);
    for (unsigned i = 0; i < n; i++)
        raft_configuration_add(&s.configuration, peers[i].id, peers[i].address, RAFT_VOTER);
    s.configuration_index = index;
    struct raft_buffer b = {.base = (void *)snap, .len = len};
    s.bufs = &b;
    s.n_bufs = 1;
    seed__op put = {0};
    struct raft_io_snapshot_put req = {.data = &put};
    r = io.snapshot_put(&io, 0, &req, &s, seed__put_cb);
    if (r == 0)
        seed__wait(&loop, &put);
    raft_configuration_close(&s.configuration);
    if (r != 0 || !put.done || put.status != 0) {
        snprintf(err, errlen, "raft log in %s: cannot write the snapshot: %s", raft_dir,
                 raft_strerror(r            ? r
                               : put.status ? put.status
                                            : RAFT_IOERR));
        goto close;
    }
    rc = 0;
close : {
    seed__op closing = {0};
    io.data = &closing;
    io.close(&io, seed__closed);
    seed__wait(&loop, &closing);
    raft_uv_close(&io);
    raft_uv_tcp_close(&t);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        snprintf(err, errlen, "raft log in %s: its loop did not close", raft_dir);
}
    return rc;
}

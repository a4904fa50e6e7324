/* ctl.c - the controller: libraft, the state machine, batching. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "../../common/log.h"
#include "codec.h"
#include "transport.h"

struct ctl_pending {
    uint8_t *cmd; /* the encoded Command */
    size_t len;
    uint32_t jobs; /* jobs it submits */
    ctl_done_cb cb;
    void *arg;
    ctl_pending *next;
};

struct ctl_batch {
    struct raft_apply req;
    ctl *c;
    ctl_pending *items;
    unsigned n;
};

static void ctl__ids_note(ctl *c);
static void ctl__ids_load(ctl *c);

/* --- the state machine, as libraft sees it ------------------------------------ */

static int ctl__fsm_apply(struct raft_fsm *ops, const struct raft_buffer *b, void **result)
{
    ctl *c = ops->data;
    char err[300];
    const uint8_t *p;
    size_t len;
    c->result.n_cmds = 0;
    /* libraft counts the entry applied once this returns: the callbacks
     * below must already see it applied (ctl_applied). */
    c->applying = raft_last_applied(&c->raft) + 1;
    if (c->broken) {
        /* Stopping: nothing after an entry it could not apply. */
    } else if (codec_unframe(b, &p, &len, err, sizeof err) != 0 ||
               fsm_apply(&c->state, p, len, &c->result, err, sizeof err) != 0) {
        /* Skipping it would leave this controller's state apart from the
         * others' (an older release among newer ones): it stops instead,
         * and takes no snapshot of a state it knows is wrong. */
        c->broken = true;
        snprintf(c->broken_why, sizeof c->broken_why, "log entry %llu cannot be applied: %s",
                 (unsigned long long)raft_last_applied(&c->raft) + 1, err);
        log_error("raft", "%s; this controller stops rather than diverge from the others", c->broken_why);
        if (c->on_broken)
            c->on_broken(c->applied_arg, c->broken_why);
    }
    if (c->result.submitted)
        ctl__ids_note(c);
    /* libraft calls the apply callback right after this returns, so one
     * result slot serves every entry. */
    *result = &c->result;
    /* (An entry of no command may still end a reservation.) */
    if (c->on_applied && (c->result.n_cmds || c->state.out_resv))
        c->on_applied(c->applied_arg, &c->result);
    return 0;
}

static int ctl__fsm_snapshot(struct raft_fsm *ops, struct raft_buffer *bufs[], unsigned *n)
{
    ctl *c = ops->data;
    if (c->broken)
        return RAFT_CANCELED;
    buf b = BUF_INIT;
    fsm_snapshot(&c->state, &b);
    struct raft_buffer *rb = raft_malloc(sizeof *rb);
    void *data = raft_malloc(b.len ? b.len : 1);
    if (!rb || !data) {
        raft_free(rb);
        raft_free(data);
        buf_free(&b);
        return RAFT_NOMEM;
    }
    memcpy(data, b.data, b.len);
    rb->base = data;
    rb->len = b.len;
    buf_free(&b);
    *bufs = rb;
    *n = 1;
    log_info("raft", "snapshot: %llu jobs, %zu nodes, %zu bytes", (unsigned long long)c->state.n_jobs,
             c->state.n_nodes, rb->len);
    return 0;
}

static int ctl__fsm_restore(struct raft_fsm *ops, struct raft_buffer *b)
{
    ctl *c = ops->data;
    char err[256];
    int rc = fsm_restore(&c->state, b->base, b->len, err, sizeof err);
    if (rc == 0)
        ctl__ids_note(c);
    if (rc != 0)
        log_error("raft", "cannot restore snapshot: %s", err);
    else
        log_info("raft", "restored snapshot: %llu jobs, %zu nodes", (unsigned long long)c->state.n_jobs,
                 c->state.n_nodes);
    if (rc == 0 && c->on_applied) { /* what the state holds, to the history again */
        memset(&c->result, 0, sizeof c->result);
        c->on_applied(c->applied_arg, &c->result);
    }
    raft_free(b->base);
    return rc == 0 ? 0 : RAFT_MALFORMED;
}

/* --- batching ------------------------------------------------------------------- */

int64_t ctl_now_ms(ctl *c)
{
    bool jumped, believed;
    int64_t now = clock_guard_now(&c->clock, clock_wall_ms(), clock_mono_ms(), &jumped, &believed);
    if (jumped)
        log_warn("raft",
                 "the wall clock jumped %+.1f s: entries keep the monotonic clock's time until it "
                 "lasts %d s (check NTP)",
                 (double)c->clock.jump_ms / 1000.0, CLOCK_BELIEVE_MS / 1000);
    if (believed)
        log_warn("raft", "the wall clock's jump lasted: following it (times in the state never go back)");
    return now;
}

static void ctl__finish(ctl_pending *p, const ctl_outcome *o)
{
    p->cb(p->arg, o);
    free(p->cmd);
    free(p);
}

static void ctl__fail_all(ctl_pending *list, Jazari__ErrorCode code, const char *msg)
{
    ctl_outcome o = {.code = code, .message = msg};
    while (list) {
        ctl_pending *next = list->next;
        ctl__finish(list, &o);
        list = next;
    }
}

static void ctl__flush(ctl *c);

/* Whether this controller leads and may append. libraft fails the
 * requests in flight while it steps down, when its state still says
 * leader but its replication state is gone: an append from one of those
 * callbacks would crash it. A failure marks the term as lost. */
static bool ctl__leads(ctl *c)
{
    return raft_state(&c->raft) == RAFT_LEADER && !(c->lost && c->lost_term == c->raft.current_term);
}

static void ctl__on_applied(struct raft_apply *req, int status, void *result)
{
    ctl_batch *b = req->data;
    ctl *c = b->c;
    c->in_flight--;
    if (status != 0 && status != RAFT_SHUTDOWN) {
        c->lost = true;
        c->lost_term = c->raft.current_term;
    }
    if (status != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "not committed: %s; the request may be retried",
                 status == RAFT_LEADERSHIPLOST ? "this controller lost the leadership"
                                               : raft_strerror(status));
        ctl__fail_all(
            b->items,
            status == RAFT_SHUTDOWN ? JAZARI__ERROR_CODE__UNAVAILABLE : JAZARI__ERROR_CODE__NOT_LEADER, msg);
    } else {
        const fsm_result *res = result;
        uint64_t next_id = res->first_id;
        uint32_t i = 0;
        for (ctl_pending *p = b->items; p;) {
            ctl_pending *next = p->next;
            ctl_outcome o = {.code = JAZARI__ERROR_CODE__OK, .res = res, .index = i, .log_index = req->index};
            if (p->jobs) {
                o.first_id = next_id;
                next_id += p->jobs;
            }
            if (i >= res->n_cmds) {
                o.code = JAZARI__ERROR_CODE__INTERNAL;
                o.message = "the log entry could not be applied (see the controller's log)";
            }
            ctl__finish(p, &o);
            p = next;
            i++;
        }
    }
    free(b);
    if (!c->closing)
        ctl__flush(c);
}

/* Puts every queued command (up to the entry's limit) into one entry. */
static void ctl__flush(ctl *c)
{
    while (c->queue && c->in_flight < CTL_MAX_IN_FLIGHT) {
        if (!ctl__leads(c)) {
            ctl_pending *list = c->queue;
            c->queue = c->queue_tail = NULL;
            c->queued = 0;
            ctl__fail_all(list, JAZARI__ERROR_CODE__NOT_LEADER, "this controller is not the leader");
            return;
        }
        ctl_batch *b = calloc(1, sizeof *b);
        if (!b)
            abort();
        b->c = c;
        buf e = BUF_INIT;
        codec_entry_begin(&e, ctl_log_format(c), ctl_now_ms(c));
        ctl_pending **tail = &b->items;
        while (c->queue && b->n < CODEC_ENTRY_MAX_CMDS) {
            ctl_pending *p = c->queue;
            c->queue = p->next;
            c->queued--;
            p->next = NULL;
            *tail = p;
            tail = &p->next;
            b->n++;
            codec_entry_add(&e, p->cmd, p->len);
        }
        if (!c->queue)
            c->queue_tail = NULL;
        struct raft_buffer rb;
        if (codec_frame(&e, &rb) != 0)
            abort();
        buf_free(&e);
        b->req.data = b;
        int rc = raft_apply(&c->raft, &b->req, &rb, 1, ctl__on_applied);
        if (rc != 0) {
            raft_free(rb.base);
            char msg[200];
            snprintf(msg, sizeof msg, "cannot append to the log: %s", raft_errmsg(&c->raft));
            ctl__fail_all(
                b->items,
                rc == RAFT_NOTLEADER ? JAZARI__ERROR_CODE__NOT_LEADER : JAZARI__ERROR_CODE__UNAVAILABLE, msg);
            free(b);
            continue;
        }
        c->in_flight++;
        c->entries_proposed++;
        c->commands_proposed += b->n;
    }
}

void ctl_propose(ctl *c, const Jazari__Command *cmd, ctl_done_cb cb, void *arg)
{
    if (c->closing || c->broken || !c->started || !ctl__leads(c)) {
        bool down = c->closing || c->broken;
        ctl_outcome o = {.code = down ? JAZARI__ERROR_CODE__UNAVAILABLE : JAZARI__ERROR_CODE__NOT_LEADER,
                         .message =
                             down ? "the controller is stopping" : "this controller is not the leader"};
        cb(arg, &o);
        return;
    }
    if (c->disk_full) {
        ctl_outcome o = {.code = JAZARI__ERROR_CODE__UNAVAILABLE, .message = c->disk_why};
        cb(arg, &o);
        return;
    }
    uint32_t need = codec_command_format(cmd), have = ctl_log_format(c);
    if (need > have) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "not every controller reads log format %u yet (the controllers agree on %u): upgrade "
                 "every controller (jz status shows them), then retry",
                 need, have);
        ctl_outcome o = {.code = JAZARI__ERROR_CODE__UNAVAILABLE, .message = msg};
        cb(arg, &o);
        return;
    }
    ctl_pending *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->len = jazari__command__get_packed_size(cmd);
    p->cmd = malloc(p->len ? p->len : 1);
    if (!p->cmd)
        abort();
    jazari__command__pack(cmd, p->cmd);
    p->jobs = cmd->cmd_case == JAZARI__COMMAND__CMD_SUBMIT ? (uint32_t)cmd->submit->n_jobs : 0;
    p->cb = cb;
    p->arg = arg;
    if (c->queue_tail)
        c->queue_tail->next = p;
    else
        c->queue = p;
    c->queue_tail = p;
    c->queued++;
    ctl__flush(c);
}

/* --- life ------------------------------------------------------------------------- */

static int ctl__parse_peers(ctl *c, const config *cfg, char *err, size_t errlen)
{
    int n = config_controllers(cfg, c->peers, err, errlen);
    if (n < 0)
        return -1;
    c->n_peers = (unsigned)n;
    c->id = config_controller_id(cfg, c->peers, n);
    if (c->id == 0) {
        snprintf(err, errlen, "node %s is not in controllers: it is an agent", cfg->name);
        return -1;
    }
    const ctl_peer *self = &c->peers[c->id - 1];
    if (strcmp(self->address, cfg->listen) != 0) {
        snprintf(err, errlen, "controllers lists %s at %s but this daemon listens on %s", self->name,
                 self->address, cfg->listen);
        return -1;
    }
    return 0;
}

static void ctl__on_raft_closed(struct raft *r);

int ctl_start(ctl *c, uv_loop_t *loop, const config *cfg, const sec_ctx *sec, ctl_applied_cb on_applied,
              void *arg, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->on_applied = on_applied;
    c->applied_arg = arg;
    c->loop = loop;
    c->cfg = cfg;
    fsm_init(&c->state);
    if (ctl__parse_peers(c, cfg, err, errlen) != 0)
        return -1;
    snprintf(c->raft_dir, sizeof c->raft_dir, "%s/raft", cfg->state_dir);
    if (mkdir(c->raft_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state_dir: cannot create %s: %s", c->raft_dir, strerror(errno));
        return -1;
    }
    if (cfg->log_format > CODEC_FORMAT) {
        snprintf(err, errlen, "log_format %llu: this jazarid writes formats 1 to %d",
                 (unsigned long long)cfg->log_format, CODEC_FORMAT);
        return -1;
    }
    c->format = cfg->log_format ? (uint32_t)cfg->log_format : CODEC_FORMAT;
    c->agreed = c->format;
    c->ids_fd = -1;
    int rc = rtx_init(&c->transport, loop, cfg->name, c->format, sec);
    if (rc == 0)
        rc = raft_uv_init(&c->io, loop, c->raft_dir, &c->transport);
    if (rc != 0) {
        snprintf(err, errlen, "raft log in %s: %s", c->raft_dir,
                 c->io.errmsg[0] ? c->io.errmsg : raft_strerror(rc));
        rtx_free(&c->transport);
        return -1;
    }
    c->fsm_ops.version = 1;
    c->fsm_ops.data = c;
    c->fsm_ops.apply = ctl__fsm_apply;
    c->fsm_ops.snapshot = ctl__fsm_snapshot;
    c->fsm_ops.restore = ctl__fsm_restore;
    rc = raft_init(&c->raft, &c->io, &c->fsm_ops, c->id, c->peers[c->id - 1].address);
    if (rc != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        raft_uv_close(&c->io);
        rtx_free(&c->transport);
        return -1;
    }
    c->raft.data = c;
    ctl__ids_load(c); /* before the log is replayed: each applied entry notes its ids */
    unsigned election = (unsigned)cfg->election_timeout_ms;
    raft_set_election_timeout(&c->raft, election);
    raft_set_heartbeat_timeout(&c->raft, election / 10 ? election / 10 : 1);
    c->election_ms = election;
    raft_set_install_snapshot_timeout(&c->raft, 2000);
    raft_set_snapshot_threshold(&c->raft, (unsigned)cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, (unsigned)cfg->snapshot_threshold / 2);
    raft_set_pre_vote(&c->raft, true);

    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned i = 0; i < c->n_peers; i++)
        raft_configuration_add(&conf, c->peers[i].id, c->peers[i].address, RAFT_VOTER);
    rc = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    bool fresh = rc == 0;
    if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
        snprintf(err, errlen, "raft bootstrap: %s", raft_errmsg(&c->raft));
        goto fail;
    }
    rc = raft_start(&c->raft);
    if (rc != 0) {
        snprintf(err, errlen,
                 "the Raft log or snapshot in %s cannot be read: %s. If it is damaged and other controllers "
                 "hold the log, move %s aside and start this controller again: it copies the log from them",
                 c->raft_dir, raft_errmsg(&c->raft), c->raft_dir);
        goto fail;
    }
    c->started = true;
    ctl_check_disk(c); /* a controller that starts on a full disk says so at once */
    log_info("raft", "controller %llu of %u (%s), log in %s", (unsigned long long)c->id, c->n_peers,
             fresh ? "bootstrapped" : "recovered from disk", c->raft_dir);
    return 0;
fail:
    /* raft_close is the one way back once raft_init succeeded; the caller
     * runs the loop so that it completes. */
    c->closing = true;
    raft_close(&c->raft, ctl__on_raft_closed);
    return -1;
}

static void ctl__on_raft_closed(struct raft *r)
{
    ctl *c = r->data;
    if (c->ids_fd >= 0)
        close(c->ids_fd);
    c->ids_fd = -1;
    raft_uv_close(&c->io);
    rtx_free(&c->transport);
    fsm_free(&c->state);
    if (c->close_cb)
        c->close_cb(c);
}

/* How long a closing leader waits for its entries in flight. */
#define CTL_CLOSE_WAIT_MS 10
#define CTL_CLOSE_WAITS 300

static void ctl__close_timer_closed(uv_handle_t *h)
{
    ctl *c = h->data;
    raft_close(&c->raft, ctl__on_raft_closed);
}

static void ctl__close_wait(uv_timer_t *t)
{
    ctl *c = t->data;
    if (c->in_flight > 0 && ++c->close_waits < CTL_CLOSE_WAITS)
        return;
    if (c->in_flight > 0)
        log_warn("raft", "stopping with %u entries still in flight", c->in_flight);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, ctl__close_timer_closed);
}

void ctl_close(ctl *c, void (*cb)(ctl *c))
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    ctl_pending *list = c->queue;
    c->queue = c->queue_tail = NULL;
    ctl__fail_all(list, JAZARI__ERROR_CODE__UNAVAILABLE, "the controller is stopping");
    /* A leader lets the entries it is appending finish first (at most
     * CTL_CLOSE_WAITS x CTL_CLOSE_WAIT_MS): closing libraft's leader
     * state under an append in flight crashes libraft 0.15 (a leader
     * stopped just after its election, with its first entries in flight). */
    if (c->in_flight > 0 && raft_state(&c->raft) == RAFT_LEADER) {
        uv_timer_init(c->loop, &c->close_timer);
        c->close_timer.data = c;
        c->close_waits = 0;
        uv_timer_start(&c->close_timer, ctl__close_wait, CTL_CLOSE_WAIT_MS, CTL_CLOSE_WAIT_MS);
        return;
    }
    raft_close(&c->raft, ctl__on_raft_closed);
}

/* No timeout from round trips beyond this: a link that slow is broken. */
#define CTL_ELECTION_MAX_MS 60000u

void ctl_tune_timeouts(ctl *c)
{
    if (!c->started || c->closing)
        return;
    uint64_t floor = c->cfg->election_timeout_ms, k = c->cfg->election_timeout_rtts;
    c->rtt_ms = rtx_rtt_bound_ms(&c->transport);
    uint64_t want = floor;
    /* libraft's advice (after Ongaro, ch. 9): a timeout of 10-20 one-way
     * latencies. The bound (srtt + 4 rttvar) is a pessimistic round trip,
     * delayed ACKs and jitter included: 5 of them (the default) are at
     * least 10 one-way latencies. Pre-vote covers the rest: a follower
     * whose heartbeats stall behind one lost segment (TCP's 200 ms minimum
     * retransmission timeout) asks before it disrupts a working leader. */
    if (k && c->rtt_ms && k * c->rtt_ms > want)
        want = k * c->rtt_ms;
    if (want > CTL_ELECTION_MAX_MS)
        want = floor > CTL_ELECTION_MAX_MS ? floor : CTL_ELECTION_MAX_MS;
    /* Up at once (a slower path is here now); down only by a fifth or more,
     * so the timers do not follow every wobble of the measure. */
    if (want == c->election_ms || (want < c->election_ms && want * 5 > (uint64_t)c->election_ms * 4))
        return;
    unsigned election = (unsigned)want;
    raft_set_heartbeat_timeout(&c->raft, election / 10 ? election / 10 : 1);
    raft_set_election_timeout(&c->raft, election);
    log_info("raft",
             "election timeout %u ms, heartbeats every %u ms (round trip to the farthest controller %u ms; "
             "election_timeout %llu ms, election_timeout_rtts %llu)",
             election, election / 10 ? election / 10 : 1, c->rtt_ms, (unsigned long long)floor,
             (unsigned long long)k);
    c->election_ms = election;
}

void ctl_check_disk(ctl *c)
{
    struct statvfs sv;
    if (!c->started || statvfs(c->raft_dir, &sv) != 0)
        return;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, need = c->cfg->min_free_disk;
    if (!c->disk_full && avail < need) {
        c->disk_full = true;
        snprintf(c->disk_why, sizeof c->disk_why,
                 "the disk holding %s is full: %llu MiB free, min_free_disk is %llu MiB; writes are refused "
                 "until %llu MiB are free",
                 c->raft_dir, (unsigned long long)(avail >> 20), (unsigned long long)(need >> 20),
                 (unsigned long long)(2 * need >> 20));
        log_error("raft", "%s", c->disk_why);
    } else if (c->disk_full && avail >= 2 * need) {
        c->disk_full = false;
        c->disk_why[0] = '\0';
        log_info("raft", "the disk holding %s has %llu MiB free again: serving writes", c->raft_dir,
                 (unsigned long long)(avail >> 20));
    }
}

/* --- job ids never issued twice ---------------------------------------------------- */

static void ctl__ids_load(ctl *c)
{
    char path[CONFIG_PATH_MAX + 16], text[32] = "";
    snprintf(path, sizeof path, "%s/job-ids", c->cfg->state_dir);
    c->ids_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->ids_fd < 0) {
        log_warn("raft", "%s: %s: job ids are then only as safe as the log", path, strerror(errno));
        return;
    }
    ssize_t n = pread(c->ids_fd, text, sizeof text - 1, 0);
    char *end;
    unsigned long long v = n > 0 ? strtoull(text, &end, 10) : 0;
    if (n > 0 && (end == text || (*end && *end != '\n'))) {
        log_warn("raft", "%s does not hold a number: ignored", path);
        v = 0;
    }
    c->ids_hwm = v;
}

/* The state reached next_job_id: remembered outside the log (a write, not
 * an fsync: it survives a crash of the process and a damaged log). */
static void ctl__ids_note(ctl *c)
{
    if (c->state.next_job_id <= c->ids_hwm)
        return;
    c->ids_hwm = c->state.next_job_id;
    if (c->ids_fd < 0)
        return;
    char text[32];
    int len = snprintf(text, sizeof text, "%020llu\n", (unsigned long long)c->ids_hwm);
    if (pwrite(c->ids_fd, text, (size_t)len, 0) != len)
        log_warn("raft", "cannot write %s/job-ids: %s", c->cfg->state_dir, strerror(errno));
}

void ctl_check_ids(ctl *c)
{
    bool whole = ctl__leads(c) && ctl_applied(c) >= raft_last_index(&c->raft);
    if (whole && !c->ids_lost && c->state.next_job_id < c->ids_hwm) {
        c->ids_lost = true;
        snprintf(c->ids_why, sizeof c->ids_why,
                 "this controller issued job ids up to %llu, but its log now holds ids up to %llu only: "
                 "log entries were lost (a damaged log?); new jobs get ids from %llu on",
                 (unsigned long long)c->ids_hwm - 1, (unsigned long long)c->state.next_job_id - 1,
                 (unsigned long long)c->ids_hwm);
        log_error("raft", "%s", c->ids_why);
    }
}

uint64_t ctl_min_job_id(ctl *c)
{
    ctl_check_ids(c);
    return c->ids_hwm;
}

uint64_t ctl_applied(ctl *c)
{
    uint64_t r = raft_last_applied(&c->raft);
    return c->applying > r ? c->applying : r;
}

uint32_t ctl_log_format(ctl *c)
{
    uint32_t f = c->format;
    for (unsigned i = 0; i < c->n_peers; i++) {
        if (c->peers[i].id == c->id)
            continue;
        uint32_t p = rtx_peer_format(&c->transport, c->peers[i].id);
        p = p ? p : CODEC_FORMAT_ASSUMED;
        f = p < f ? p : f;
    }
    if (f != c->agreed) {
        log_info("raft", "the controllers agree on log format %u (was %u)", f, c->agreed);
        c->agreed = f;
    }
    return f;
}

uint32_t ctl_log_format_newest(void)
{
    return CODEC_FORMAT;
}

const char *ctl_peer_version(ctl *c, unsigned i)
{
    if (i >= c->n_peers)
        return "";
    if (c->peers[i].id == c->id)
        return JZ_VERSION;
    return rtx_peer_version(&c->transport, c->peers[i].id);
}

bool ctl_is_leader(ctl *c)
{
    return c->started && !c->closing && ctl__leads(c);
}

const ctl_peer *ctl_leader(ctl *c)
{
    raft_id id;
    const char *address;
    if (!c->started || c->closing)
        return NULL;
    raft_leader(&c->raft, &id, &address);
    return id >= 1 && id <= c->n_peers ? &c->peers[id - 1] : NULL;
}

const char *ctl_role_name(ctl *c)
{
    if (!c->started || c->closing)
        return "stopped";
    switch (raft_state(&c->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_FOLLOWER:
        return "follower";
    default:
        return "unavailable";
    }
}

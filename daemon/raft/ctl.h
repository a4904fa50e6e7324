/* ctl.h - the controller: a libraft voter whose state machine is fsm.h,
 * and the leader's batching of commands into log entries.
 *
 * Many requests ride one entry: while an entry is being appended, new
 * commands wait and go out together in the next one, so acknowledged
 * submissions per second are not bounded by fsyncs per second. */
#ifndef JZ_CTL_H
#define JZ_CTL_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>

#include "../../common/clock.h"
#include "../config.h"
#include "../net/sec.h"
#include "fsm.h"

#define CTL_MAX_PEERS CONFIG_MAX_CONTROLLERS
/* Entries appended but not yet committed, at most. */
#define CTL_MAX_IN_FLIGHT 2

typedef config_peer ctl_peer;

typedef struct ctl_pending ctl_pending;
typedef struct ctl_batch ctl_batch;

/* The outcome of one proposed command: code OK, or why it was not
 * committed. res is the whole entry's result and index this command's
 * place in it (counts[index]; a submission's first id is
 * res->first_id + first_offset). */
typedef struct ctl_outcome {
    Jazari__ErrorCode code;
    const char *message;
    const fsm_result *res;
    uint32_t index;
    uint64_t first_id;  /* submissions: the first id this command got */
    uint64_t log_index; /* the entry's index in the log (when committed) */
} ctl_outcome;

typedef void (*ctl_done_cb)(void *arg, const ctl_outcome *o);
/* After each entry is applied (on every controller), with what it did. */
typedef void (*ctl_applied_cb)(void *arg, const fsm_result *res);

typedef struct ctl {
    uv_loop_t *loop;
    const config *cfg;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm_ops;
    fsm state;
    fsm_result result; /* the last entry applied (filled by the fsm callback) */
    ctl_peer peers[CTL_MAX_PEERS];
    unsigned n_peers;
    raft_id id;
    char raft_dir[CONFIG_PATH_MAX + 1];
    ctl_pending *queue, *queue_tail; /* commands not yet in an entry */
    unsigned queued;
    unsigned in_flight;
    bool started, closing;
    /* Closing: the entries in flight are waited for (libraft 0.15 can
     * crash when a leader is closed with one still being appended). */
    uv_timer_t close_timer;
    unsigned close_waits;
    void (*close_cb)(struct ctl *c);
    uint64_t entries_proposed, commands_proposed;
    ctl_applied_cb on_applied;
    void *applied_arg;
    bool lost; /* an append of lost_term failed: not the leader of that term */
    raft_term lost_term;
    clock_guard clock; /* the wall clock entries are stamped with */
    uint32_t format;   /* the newest log format this controller announces */
    uint32_t agreed;   /* the last ctl_log_format, to log changes */
    uint64_t applying; /* the index of the entry being (or last) applied */
    /* An entry could not be applied: the controller stops, not diverges. */
    bool broken;
    char broken_why[400];
    void (*on_broken)(void *arg, const char *why); /* with applied_arg */
    /* The disk of the log (ctl_check_disk): full, refusing writes. */
    bool disk_full;
    char disk_why[300];
    /* The next job id this controller ever saw the state reach, kept in
     * state_dir/job-ids (outside the log): no id is issued twice, even
     * when a damaged log loses the entries that issued it. */
    uint64_t ids_hwm;
    int ids_fd;
    bool ids_lost; /* said once: the log holds fewer ids than were issued */
    char ids_why[300];
    /* Timers derived from measured round trips (ctl_tune_timeouts). */
    unsigned election_ms; /* the election timeout in use */
    unsigned rtt_ms;      /* the last round-trip bound to the farthest controller; 0: none */
} ctl;

/* Opens the Raft log under state_dir/raft, bootstraps the configuration
 * on first start (the `controllers` setting, or this node alone) and starts
 * the voter. Returns 0, or -1 with one line in err. */
int ctl_start(ctl *c, uv_loop_t *loop, const config *cfg, const sec_ctx *sec, ctl_applied_cb on_applied,
              void *arg, char *err, size_t errlen);
/* Stops; cb runs once every handle is closed. Pending commands get
 * UNAVAILABLE. */
void ctl_close(ctl *c, void (*cb)(ctl *c));

bool ctl_is_leader(ctl *c);
/* The log format the leader writes: the newest every voter has announced
 * (a voter that has not said is taken to read CODEC_FORMAT_ASSUMED). A
 * command that needs a newer one is refused, not written. */
uint32_t ctl_log_format(ctl *c);
/* The newest log format this release writes (codec.h's CODEC_FORMAT): what
 * ctl_log_format rises to once every voter runs this release. */
uint32_t ctl_log_format_newest(void);
/* The release the controller of peer index i (0..n_peers-1) runs: this
 * one's own for itself, else what its last hello said ("" if none yet). */
const char *ctl_peer_version(ctl *c, unsigned i);
/* Checks the free space under the log (statvfs): below min_free_disk the
 * controller is disk_full (logged, said in disk_why) and refuses every
 * proposal; with twice that much again, it serves again. Once a tick. */
void ctl_check_disk(ctl *c);
/* Sets the election timeout (heartbeats a tenth of it) to the larger of
 * election_timeout and election_timeout_rtts (5) x the worst round-trip bound
 * TCP measured to the other controllers: a LAN keeps the setting, a WAN
 * raises it. Raised at once; lowered only when it would fall by a fifth.
 * Once a tick. */
void ctl_tune_timeouts(ctl *c);
/* On the leader, with its whole log applied: says loudly (once, and in
 * ids_why) if the state's ids fall short of those this controller saw
 * issued: entries were lost. Once a tick, and before each submission. */
void ctl_check_ids(ctl *c);
/* The lowest id the next submission may get (SubmitCmd.min_id). */
uint64_t ctl_min_job_id(ctl *c);
/* The index of the last entry applied to the state (already counting the
 * one being applied, for the callbacks it makes). */
uint64_t ctl_applied(ctl *c);
/* This controller's wall time: the clock entries are stamped with, which
 * ignores a jump of the wall clock until it lasts (common/clock.h). */
int64_t ctl_now_ms(ctl *c);
/* The leader's peer entry, or NULL if none is known. */
const ctl_peer *ctl_leader(ctl *c);
const char *ctl_role_name(ctl *c);

/* Proposes cmd (copied) for the log. cb runs exactly once: after the
 * entry holding it is applied, or with an error (not the leader, leadership
 * lost, shutting down). Only on the leader. */
void ctl_propose(ctl *c, const Jazari__Command *cmd, ctl_done_cb cb, void *arg);

#endif

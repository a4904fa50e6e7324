/* jzd.h - the daemon's own state and its modules, lowest first:
 *   req.c     the request layer: callers, replies, waits (calls no module)
 *   beat.c run.c logs.c admin.c jobs.c nodes.c fwd.c live.c agent.c metrics.c
 *             one concern each, above req.c, never calling back up
 *   routes.c  the route table and the tick, above them all
 *   daemon.c  the process: loop, listeners, hello, shutdown
 * Internal to daemon/. */
#ifndef JZ_JZD_H
#define JZ_JZD_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "../lib/hw/health.h"
#include "../lib/hw/topo.h"
#include "authz.h"
#include "config.h"
#include "exec/exec.h"
#include "http/http.h"
#include "net/net.h"
#include "net/uplink.h"
#include "raft/ctl.h"
#include "sched/sched.h"
#include "seen.h"

typedef struct jzd_wait jzd_wait;
typedef struct jzd_session jzd_session;

/* This daemon's certificates (trust.c). */
typedef struct trust {
    X509 *ca;
    EVP_PKEY *ca_key; /* controllers only */
    X509 *cert;
    EVP_PKEY *key;
    pki_id me;           /* what our certificate says */
    bool renewing;       /* an agent's RenewRequest is in flight */
    EVP_PKEY *renew_key; /* its new key */
    char ca_hash[PKI_HASH_HEX + 1];
} trust;

/* What metrics.c counts as the daemon goes (the rest it reads from the
 * state when scraped). */
#define METRICS_PASS_BUCKETS 15
typedef struct jzd_metrics {
    uint64_t pass_counts[METRICS_PASS_BUCKETS + 1]; /* scheduler passes per bucket, the last above them all */
    double pass_sum;                                /* their seconds */
    uint64_t submitted, started;                    /* jobs, in the entries this controller applied */
    uint64_t start_s;                               /* when this process started (Unix time) */
} jzd_metrics;

typedef struct jzd {
    uv_loop_t loop;
    trust trust;
    sec_ctx sec; /* the TLS contexts of every connection (both NULL: plaintext, benchmarks only) */
    const config *cfg;
    topo *topo;
    bool is_controller;
    ctl ctl; /* when is_controller */
    bool ctl_running;
    net_server server;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;  /* heartbeat_interval: registration, liveness */
    bool registering; /* a NodeUp of this node is in the log's queue */
    /* As an agent (every daemon but the leader): the link to the leader. */
    uplink up;
    config_peer peers[CONFIG_MAX_CONTROLLERS];
    int n_peers;
    int target;                         /* the controller the uplink points at */
    bool beating;                       /* a heartbeat or registration is in flight */
    uint64_t beat_digest, beat_sent_ms; /* the long poll (beat.c) */
    /* The fence (agent.c): when the last heartbeat a leader answered was
     * sent, the lost_after that leader said, and whether this node's jobs
     * were stopped for hearing none since. */
    uint64_t leader_heard_ms, lost_after_ms;
    bool fenced;
    uint64_t lost_after_rule_ms; /* leader: the lost_after live.c applies now, which heartbeats tell agents */
    uint64_t lose_checked_ms; /* leader: when live.c last looked for unreachable nodes' jobs due to be lost */
    uint64_t stale_event_ms; /* leader: the last event of an end reported after its run was lost */
    /* As the leader: heartbeats held until their node's run list changes. */
    struct jzd_held *held;
    size_t n_held, held_cap;
    uv_timer_t beat_timer;
    /* The parts of jobs on this node, running or ended (exec/exec.h). */
    exec ex;
    char bin_dir[PATH_MAX];    /* first on jobs' PATH: jz and the Slurm commands (build/slurm) */
    uint64_t synced_index;     /* the state's index of the last run_sync */
    /* The running jobs by node (run.c), rebuilt when the state changed:
     * each node's parts at slots[first[i]..first[i+1]) (job table slots). */
    struct {
        uint64_t changes; /* fsm.changes it was built at; 0: never */
        size_t n_nodes;
        uint32_t *first;
        uint64_t *slots;
    } runidx;
    bool restored;             /* started with --restore: the first run_sync reconciles (run.c) */
    unsigned starts_in_flight; /* leader: StartCmds proposed, not applied */
    sched_state sched;         /* leader: the policy and the reserved head */
    bool schedule_again;
    uv_timer_t pass_timer;     /* leader: the next pass, when the last was long */
    uint64_t pass_at, pass_ms; /* leader: when the last pass ended (uv_now), how long it took */
    uint64_t led_term;         /* the term this controller leads, 0 when it does not (routes.c's hook) */
    bool policy_in_flight;     /* leader: a PolicyCmd proposed, not applied */
    /* As the leader: when each node was last heard of (soft state). */
    seen seen;
    /* Forwarded writes' answers waiting for this controller to apply them
     * (fwd.c), so that its client reads its own write here next. */
    struct fwd__req *parked;
    /* This node's GPU health and health program (health.c). */
    struct ghealth *health;
    uint64_t health_acked;    /* ghealth_changes the leader acknowledged (+1; 0: none) */
    uint64_t health_sent_ms;  /* when the conditions were last sent whole */
    uint64_t health_inflight; /* what the heartbeat in flight carries (+1; 0: none) */
    uint64_t health_term;     /* leader: the term of its own node's last report */
    uint64_t health_own;      /* leader: ghealth_changes of that report (+1) */
    struct hloop *hloop;      /* leader: what each node last reported (hloop.c) */
    struct burnin *burnin;    /* this node's burn-in runs; leader: the pending nodes asked (burnin.c) */
    /* Links to other nodes' daemons, for jz logs (logs.c). */
    struct jzd_relay *relays;
    size_t n_relays;
    /* The HTTP listener (http_listen; NULL: none) and what it shows. */
    http_server *http;
    struct web *web; /* a controller's dashboard (web.c); NULL: none */
    jzd_metrics metrics;
    struct jzd_acct *acct;       /* a controller's history (acct.c); NULL: none */
    struct jzd_backups *backups; /* backups being read (backup.c); NULL: none */
    bool stopping;
    int status; /* exit status */
} jzd;

/* --- daemon/webtok.c: the dashboard's session tokens -------------------------------------- */

#define WEBTOK_MAX 400                   /* characters of a token */
#define WEBTOK_PAYLOAD_MAX 200           /* bytes of what it says */
#define WEBTOK_TTL_DEFAULT_S (12 * 3600) /* jz web's, unless --ttl */
#define WEBTOK_TTL_MAX_S WIRE_WEB_TTL_MAX_S

/* A token for w until expires_ms into out (outlen >= WEBTOK_MAX + 1): 0,
 * or -1 when this daemon holds no CA key (an agent) or w does not fit. */
int webtok_make(const jzd *d, const authz_who *w, int64_t expires_ms, char *out, size_t outlen);
/* Who tok (len bytes) is for, into *w: 0, or -1 with why (not a token,
 * not signed by this network, expired, or this daemon cannot check it). */
int webtok_check(const jzd *d, const char *tok, size_t len, int64_t now_ms, authz_who *w, char *why,
                 size_t whylen);

/* --- daemon/web.c: the dashboard and its /api ------------------------------------------------- */

/* On a controller, routes the dashboard's files and /api pages on d->http
 * (an agent's serves /metrics only): 0, or -1 with err. */
int web_routes(jzd *d, char *err, size_t errlen);
/* A controller's sample of GPU use per site, every 15 s (from routes_tick). */
void web_tick(jzd *d);
void web_free(jzd *d);
/* WebRequest (takes m): jz web's token (controllers sign; an agent
 * forwards), or this node's GPU history (relayed to another node's). */
void web_request(jzd *d, net_conn *c, wire_msg *m);

/* --- daemon/acct.c: accounting: the history, grants, balances, invoices --------------- */

/* Opens the controller's history (STATE_DIR/history.db): 0, or -1 with err. */
int acct_open(jzd *d, char *err, size_t errlen);
/* Leader, every tick: an entry when time has made something due
 * (a reservation's end, ended jobs to forget). */
void acct_tick(jzd *d);
/* After each entry applied (and a snapshot restored): what ended, to the history. */
void acct_applied(jzd *d);
/* Writes what is pending and closes its handles (on the loop), then frees. */
void acct_close(jzd *d);
void acct_free(jzd *d);
void acct_history(jzd *d, net_conn *c, const Jazari__Envelope *e);
void acct_usage(jzd *d, net_conn *c, const Jazari__Envelope *e);
void acct_invoice(jzd *d, net_conn *c, const Jazari__Envelope *e);
void acct_grant(jzd *d, net_conn *c, const Jazari__Envelope *e);
void acct_balance(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* --- daemon/drains.c: drain, resume, events ---------------------------------------- */

/* jz drain / jz resume (admins; the leader's). */
void drains_request(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* jz events (admins; any controller's state). */
void drains_events(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* The events q asks for into r (a controller's; drains_events_free frees). */
void drains_events_make(jzd *d, const Jazari__EventsRequest *q, Jazari__EventsReply *r);
void drains_events_free(Jazari__EventsReply *r);
/* The leader's own drain or resume, for a health check (source "health",
 * "burnin"): logged, nobody waits. gpu -1: the node. */
void drains_propose(jzd *d, const char *node, int32_t gpu, bool resume, bool now, const char *source,
                    const char *reason);
/* The same, calling cb (ctl_propose's) once the entry is committed, or
 * failed. */
void drains_propose_then(jzd *d, const char *node, int32_t gpu, bool resume, bool now, const char *source,
                         const char *reason, ctl_done_cb cb, void *arg);

/* --- daemon/events.c: the leader's own events ------------------------------------- */

/* An event of this leader's (a leader change, a GPU health warning, a
 * burn-in's verdict, the late end of a lost run) into the log. */
void events_note(jzd *d, const char *kind, const char *severity, const char *node, int32_t gpu,
                 const char *text);

/* --- daemon/hloop.c: the leader's closed loop of health ----------------------------- */

#define HLOOP_CONDS_MAX 256
/* node's active health conditions, whole (its heartbeat's, or the
 * leader's own node's): drains, resumes and events as the policy says. */
void hloop_report(jzd *d, const char *node, Jazari__HealthCondition *const *conds, size_t n);
void hloop_free(jzd *d);

/* --- daemon/req.c: the request layer ---------------------------------------------- */

/* Who asks: the Unix socket's peer credentials, a person's certificate, or
 * the identity a daemon of the network forwarded (never a person's word
 * about another). false after refusing (the reply is sent). What they may
 * do is authz.h's to say. */
bool req_who(jzd *d, net_conn *c, const Jazari__Envelope *e, authz_who *w);
/* That, and an admin of the network (root on a controller, or admin
 * credentials); else false after refusing (what: the request). */
bool req_admin(jzd *d, net_conn *c, const Jazari__Envelope *e, authz_who *w, const char *what);
/* false after refusing, when w is root forwarded by a node: what runs or
 * reads as root elsewhere needs an admin of the network. */
bool req_runs_as(net_conn *c, const Jazari__Envelope *e, const authz_who *w, const char *what);
/* The uid of a person with no account on the controller (never a file's
 * owner: each node finds their account by name). */
#define REQ_UID_NONE ((uid_t)-2)
/* The account a person's name has on this node (institutes do not share
 * uid spaces): 0 with it; -1 with why when there is none (or it is root and
 * not decided so); -2 with why when it could not be looked up (EMFILE, a
 * directory service down: nothing is known of the account). decided_uid is
 * the uid the controllers decided (0: root, or an admin): a name that is
 * root here is refused unless they did. */
int req_account(const char *user, uint32_t decided_uid, uid_t *uid, gid_t *gid, char *why, size_t len);
/* The audit record of a change w asks for (what: a buffer of len for the
 * formatted text), to set as the command's audit; also logged. */
void req_audit(Jazari__AuditRecord *a, char *what, size_t len, const authz_who *w, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The identity of a local caller, from the Unix socket's peer credentials. */
void req_local_caller(jzd *d, const net_conn *c, Jazari__Caller *out, char *user, size_t len);
/* A daemon of the network (its certificate says so) speaking as an agent. */
bool req_agent_peer(jzd *d, const net_conn *c);
/* That, and the daemon of node itself (its certificate's name). */
bool req_peer_is_node(jzd *d, const net_conn *c, const char *node);
bool req_is_leader(jzd *d);
/* Sends a reply: body is the message of that body case. */
void req_reply(net_conn *c, uint64_t id, Jazari__Envelope__BodyCase body, void *msg);
/* The reply to a committed write: applied_index is where it can be read
 * (req_applied when its entry was applied). */
void req_reply_at(net_conn *c, uint64_t id, Jazari__Envelope__BodyCase body, void *msg,
                  uint64_t applied_index);
/* The index of the last entry this controller applied; 0 on an agent. */
uint64_t req_applied(jzd *d);
/* Answers NOT_LEADER, naming the leader when one is known. */
void req_not_leader(jzd *d, net_conn *c, uint64_t id);
/* Answers an error; closes the connection after it when close is set. */
void req_error(net_conn *c, uint64_t id, Jazari__ErrorCode code, bool close, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A request waiting for its entry (or for the leader's answer). */
jzd_wait *req_wait(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Takes w off its session; returns its connection, or NULL if it closed. */
net_conn *req_unwait(jzd_wait *w);
/* The connection of these waits closed. */
void req_session_closed(jzd_session *s);

/* daemon/daemon.c: this release, "0.3.0 (abc1234)". */
const char *jzd_software_version(void);

/* --- daemon/trust.c: certificates and who a peer is --------------------------------------- */

/* At start, before the loop: loads this daemon's certificate, or makes it
 * (a new network's token; the first controller makes the CA). 0, or -1
 * with one line in err saying what to do. */
int trust_init(jzd *d, char *err, size_t errlen);
void trust_free(jzd *d);
/* Whether the network runs TLS (always, but for JAZARI_TEST_PLAINTEXT). */
bool trust_on(const jzd *d);
/* Every tick: renews our certificate at two thirds of its life. */
void trust_tick(jzd *d);
/* net's on_secure: whom this daemon takes connections from. */
bool trust_on_secure(net_conn *c, void *data);
bool trust_is_daemon(const pki_id *p);
bool trust_is_controller(const pki_id *p);

/* A certificate signed with the CA key this controller holds. NULL with err. */
X509 *trust_issue(jzd *d, EVP_PKEY *pub, const char *name, const char *kind, uint64_t gen, int64_t ttl_s,
                  char *err, size_t errlen);
/* After an entry that revoked something: drops the connections of revoked
 * nodes and credentials. */
void trust_drop_revoked(jzd *d);
/* Whether a person's certificate is one the state knows, unrevoked. */
bool trust_cred_valid(jzd *d, const pki_id *p);

/* --- daemon/tokens.c: join tokens, credentials, revocation, joining ------------------------ */

void tokens_create(jzd *d, net_conn *c, const Jazari__Envelope *e);
void tokens_list(jzd *d, net_conn *c, const Jazari__Envelope *e);
void tokens_revoke(jzd *d, net_conn *c, const Jazari__Envelope *e);
void tokens_node_revoke(jzd *d, net_conn *c, const Jazari__Envelope *e);
void tokens_renew(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* The one request of an anonymous TLS peer: a daemon joining. Answers and closes. */
void tokens_join(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* --- daemon/audit.c: jz audit ---------------------------------------------------------- */

void audit_request(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* --- daemon/routes.c: the route table ------------------------------------------------- */

/* Answers a request that came after the hello; frees m (now or when a
 * forwarded request completes). */
void routes_dispatch(jzd *d, net_conn *c, wire_msg *m);
/* Once a heartbeat interval: run.c's reports, liveness, this node's
 * registration and heartbeat. */
void routes_tick(jzd *d);

/* --- daemon/jobs.c ---------------------------------------------------------------------- */

void jobs_submit(jzd *d, net_conn *c, const Jazari__Envelope *e);
void jobs_cancel(jzd *d, net_conn *c, const Jazari__Envelope *e); /* and release, hold, requeue */
/* A submission's checks on spec, for w (partitions, which complete its
 * partition and time limit, into partitions; bounds; the policy's
 * account, QoS and reservation): 0, or -1 with c answered. */
int jobs_check_spec(jzd *d, net_conn *c, const Jazari__Envelope *e, Jazari__JobSpec *spec, const authz_who *w,
                    buf *partitions);
void jobs_queue(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* A page of the jobs w may see (all: ended ones too, those that ended
 * since ended_since_ms when it is not 0), from the id after after_id, at
 * most limit (0: the most a page holds), as jz queue gets them: pg->r.
 * jobs_page_free frees. */
typedef struct jobs_page {
    Jazari__QueueReply r;
    void *priv;
} jobs_page;
void jobs_page_make(jzd *d, const authz_who *w, bool all, int64_t ended_since_ms, uint64_t after_id,
                    size_t limit, jobs_page *pg);
void jobs_page_free(jobs_page *pg);
void jobs_show(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* ctl_propose's callback for a request's entry (arg: its jzd_wait):
 * answers it, then starts what may start. */
void jobs_on_committed(void *arg, const ctl_outcome *o);

/* --- daemon/steps.c: srun inside a job ------------------------------------------------------ */

void steps_launch(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* --- daemon/jobops.c: jz update, and jz cancel JOB.STEP ------------------------------------ */

void jobops_update(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* jz cancel: one step (JOB.STEP) here, whole jobs by jobs_cancel. */
void jobops_cancel(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* --- daemon/nodes.c --------------------------------------------------------------------- */

void nodes_node(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* One node with its topology, as jz node NAME gets it (NULL or "": this
 * daemon's own): 0, or -1 when there is no such node. nodes_one_free frees. */
typedef struct nodes_one {
    Jazari__NodeInfo ni;
    char **parts;
} nodes_one;
int nodes_one_make(jzd *d, const char *want, nodes_one *o);
void nodes_one_free(nodes_one *o);
/* Every node as jz nodes gets them (l->r); nodes_list_free frees. */
typedef struct nodes_list {
    Jazari__NodesReply r;
    Jazari__NodeInfo *infos;
    char **node_parts, **part_nodes;
    Jazari__PartitionInfo *pinfo;
} nodes_list;
void nodes_list_make(jzd *d, nodes_list *l);
void nodes_list_free(nodes_list *l);
/* The controllers and counts, as jz status gets them (pointing into the
 * state: used at once). */
typedef struct nodes_status_t {
    Jazari__StatusReply r;
    Jazari__ControllerInfo infos[CTL_MAX_PEERS], *ptrs[CTL_MAX_PEERS];
} nodes_status_t;
void nodes_status_make(jzd *d, nodes_status_t *st);
/* What jz nodes says of n, pointing into the state (and arrays of its own:
 * nodes_info_free). */
void nodes_fill_info(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni);
/* The same, the GPUs its running jobs hold known (fsm_gpus_used). */
void nodes_fill_info_used(const fsm *f, const fsm_node *n, Jazari__NodeInfo *ni, uint32_t used);
void nodes_info_free(Jazari__NodeInfo *ni);
void nodes_nodes(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* jz nodes' reply (NodesReply) as nodes_nodes sends it, appended to out
 * encoded: its size (benchmarks). */
size_t nodes_encode(jzd *d, buf *out);
void nodes_status(jzd *d, net_conn *c, const Jazari__Envelope *e);
void nodes_topology(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* --- daemon/fwd.c: to the leader ---------------------------------------------------------- */

/* Sends a local client's request on to the leader and relays the answer
 * (takes m). */
void fwd_request(jzd *d, net_conn *c, wire_msg *m);
/* Points the uplink at hint, else at the leader, else the next controller. */
void fwd_retarget(jzd *d, const char *hint);
/* After a failed attempt: the next controller (agents), or the leader. */
void fwd_rotate(jzd *d);
/* After an entry is applied, and every tick: answers the held replies of
 * writes now applied here, or held too long; all of them when all. */
void fwd_applied(jzd *d, bool all);

/* --- daemon/live.c: the leader's liveness ------------------------------------------------- */

void live_heartbeat(jzd *d, net_conn *c, const Jazari__Envelope *e);
void live_register(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Every tick, in any role: silent nodes are committed down (leader). */
void live_check(jzd *d);

/* --- daemon/agent.c: this node in the state ----------------------------------------------- */

void agent_tick(jzd *d);

/* daemon/beat.c: heartbeats as long polls. Answers (or holds) a heartbeat;
 * answers the held ones whose list changed (after an entry is applied);
 * answers all (at shutdown). */
/* The longest the leader holds a heartbeat: well under the uplink's request
 * timeout. */
#define BEAT_WAIT_MAX_MS 2000
void beat_answer(jzd *d, net_conn *c, const Jazari__Envelope *e);
void beat_wake(jzd *d);
void beat_close(jzd *d);

/* daemon/logs.c: jz logs. Serves a LogsRequest (takes m): reads the file
 * here, or relays the request to the node's daemon. */
void logs_request(jzd *d, net_conn *c, wire_msg *m);
/* Closes the relays (at shutdown). */
void logs_close(jzd *d);
/* Relays e to node to_node's daemon as w (copy: e with its body's hops
 * raised, the caller's to fill in): a controller to the node itself, at
 * the address the state records for it, only to a daemon whose
 * certificate is that node's; an agent through its controller. hops: the
 * request's so far (at most 2). The node's reply goes back to c. what
 * names the request in errors. */
/* The link (kept, shared) to the daemon at address, which must prove to be
 * node (NULL: a controller). */
uplink *logs_link(jzd *d, const char *address, const char *node);
/* w as a relayed request's caller (pointing into w and d). */
void logs_caller(const jzd *d, const authz_who *w, Jazari__Caller *out);
void logs_relay(jzd *d, net_conn *c, const Jazari__Envelope *e, Jazari__Envelope *copy, const authz_who *w,
                const char *what, const char *to_node, uint32_t hops);
/* The kept link to the daemon at address, which must prove to be node
 * (NULL: a controller): for a request of this daemon's own. */
uplink *logs_link(jzd *d, const char *address, const char *node);

/* daemon/burnin.c: the burn-in of a new or repaired node (jz node check,
 * the policy's burnin on-join). Above req.c, logs.c, drains.c, run.c and
 * fwd.c; live.c and agent.c call it when a node registers. */
/* BurnInRequest: starts this node's burn-in, or says how it goes; another
 * node's is relayed (a controller decides who may: admins). */
void burnin_request(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Leader: a node's BurnInResult: drains it on a failure, resumes the
 * burn-in's own drain on a pass. */
void burnin_result(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Leader, before proposing the NodeUp of rec: whether the policy wants
 * this node burned in (on-join, a node with GPUs new to the network or
 * with other GPUs than the state records); if so, burnin_joined after
 * the NodeUp is proposed drains it until its burn-in passes. */
bool burnin_wants(jzd *d, const Jazari__NodeRecord *rec);
void burnin_joined(jzd *d, const char *node);
/* Every tick: the node's verdict to the leader until it is taken; the
 * leader asks the pending nodes. */
void burnin_tick(jzd *d);
/* At shutdown (a run in progress is killed), and after the loop. */
void burnin_close(jzd *d);
void burnin_free(jzd *d);

/* daemon/health.c: this node's health, agent-local (calls no other
 * module but req.c). GPU samples through NVML every gpu_health_interval,
 * XIDs as they come, the site's health_program; the active conditions
 * they make (health_cond of lib/hw/health.h: name, gpu (-1: the node),
 * text, since_ms). Init after the loop, close at shutdown, free after
 * the loop ended. */
void ghealth_init(jzd *d);
void ghealth_close(jzd *d);
void ghealth_free(jzd *d);
/* The active conditions now, GPU ones and health_program ("health_program",
 * gpu -1), in a stable order; *out stays valid until the loop runs again
 * (copy what is kept). Returns their number. */
size_t ghealth_conditions(const jzd *d, const health_cond **out);
/* A hash of the conditions' names, GPUs and texts (0: none): send them in
 * a heartbeat when it differs from the one last sent. */
uint64_t ghealth_digest(const jzd *d);
/* Bumped whenever the set changes. */
uint64_t ghealth_changes(const jzd *d);
/* The same conditions as messages, for a heartbeat's repeated
 * HealthCondition: an array of *n pointers (NULL when none) to free with
 * ghealth_pb_free; its strings are the module's (valid until the loop
 * runs again: send, then free). */
Jazari__HealthCondition **ghealth_pb(const jzd *d, size_t *n);
void ghealth_pb_free(Jazari__HealthCondition **p);
/* The per-GPU Prometheus gauges and counters (jazari_gpu_*), with their
 * HELP and TYPE lines, appended to out; nothing without NVML sampling. */
void ghealth_metrics(const jzd *d, buf *out);
/* The scheduler's index (the topology's) of the GPU NVML numbers
 * nvml_index; -1 when the topology has none such. */
int32_t ghealth_topo_gpu(const jzd *d, int nvml_index);
/* A GPU's counters, for what a part used (usage.c): its energy counter
 * (NVML's, millijoules: at the latest sample, and on since at that
 * sample's power; has_energy false where NVML cannot tell) and the sum
 * and number of its utilisation samples since sampling began. gpu: the
 * topology's index. false (all 0) when NVML
 * samples no such GPU (no NVML, sampling off); before the first sample,
 * true with no energy and no utilisation sample. */
typedef struct ghealth_count {
    uint64_t energy_mj;
    bool has_energy;
    uint64_t util_sum, util_n;
} ghealth_count;
bool ghealth_counters(const jzd *d, uint32_t gpu, ghealth_count *out);
/* HealthRequest: this node's samples and conditions (jz health). */
void ghealth_request(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* This node's GPU samples of the last hour (soft state: kept in memory,
 * at most GHEALTH__HIST_MAX per GPU), into r's node, interval_s and gpus,
 * and its active conditions (pointing into d's: used at once);
 * ghealth_history_free frees what it added. */
void ghealth_history(const jzd *d, int64_t now_ms, Jazari__WebReply *r);
void ghealth_history_free(Jazari__WebReply *r);

/* daemon/metrics.c: GET /metrics (the Prometheus text format). */
/* Appends the metrics of this daemon, and of the network when it is a
 * running controller, to out. */
void metrics_render(jzd *d, buf *out);
/* The page's http_handler (arg: the jzd). */
int metrics_page(void *arg, const http_request *rq, http_response *rs);
/* A scheduling pass took ns nanoseconds. */
void metrics_pass_observe(jzd_metrics *m, uint64_t ns);
/* An entry was applied on this controller (what it did: res). */
void metrics_applied(jzd_metrics *m, const fsm_result *res);

/* daemon/ptyin.c: srun --pty's keys and window sizes, for the terminal of
 * a step's task on this node (exec/pty.h), or relayed to its node. */
void ptyin_request(jzd *d, net_conn *c, const Jazari__Envelope *e);

/* daemon/backup.c: jz admin backup (the leader takes a backup of the
 * state it has applied and hands it out in chunks) and jazarid --restore. */
void backup_request(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Drops the backups nobody has read for a while. Once a tick. */
void backup_tick(jzd *d);
/* Stopping: a backup being taken is abandoned (its encoder killed). */
void backup_close(jzd *d);
void backup_free(jzd *d);
/* jazarid --restore FILE: checks the backup in path, that this daemon is a
 * controller and that its state_dir holds no Raft log, and seeds the log
 * with the backup's state (the daemon then starts as usual and loads it).
 * 0, or -1 with one line in err. Before daemon_run. */
int backup_restore(const config *cfg, const char *path, char *err, size_t errlen);
/* A restored log starts this far past the backup's index: a new epoch, so
 * that the nodes of the lost network, which saw later entries of its log,
 * take the restored leader's views as newer (run.c), and a copied
 * history.db's mark is behind it. */
#define BACKUP_EPOCH (1ull << 40)

/* daemon/admin.c: advance reservations (jz reserve, reservations,
 * unreserve) and the fair-share tree (jz shares). */
void admin_reserve(jzd *d, net_conn *c, const Jazari__Envelope *e);
void admin_unreserve(jzd *d, net_conn *c, const Jazari__Envelope *e);
void admin_reservations(jzd *d, net_conn *c, const Jazari__Envelope *e);
void admin_shares(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Whether w may know of reservation r (the one rule; jobs.c's submit
 * --reservation answers of another's as of none). */
bool admin_resv_sees(jzd *d, const authz_who *w, const fsm_resv *r);

/* Per connection. */
struct jzd_session {
    bool greeted;
    Jazari__PeerKind kind;
    jzd_wait *waits; /* requests waiting on the log */
};

/* A request waiting for its entry to commit. If its connection closes
 * first, conn becomes NULL and the reply is dropped. */
struct jzd_wait {
    jzd *d;
    net_conn *conn;
    uint64_t request_id;
    Jazari__Envelope__BodyCase kind;
    jzd_wait *prev, *next;
};

/* daemon/run.c: placing jobs (leader) and running their parts (every node). */
void run_schedule(jzd *d);
/* The running jobs with a part here, as of the state's index: starts the
 * parts not started yet, stops the ones no longer listed, and forgets
 * ended parts whose end is committed. */
void run_sync(jzd *d, Jazari__Job *const *jobs, size_t n, uint64_t index);
/* exec's callback: a part here ended; reports it at once. */
void run_part_ended(void *arg, exec_part *p);

/* daemon/usage.c: what a part used, for its end (PartUsage). CPU time and
 * peak memory come from its supervisor (step_end); its GPUs' energy and
 * mean utilisation from the health sampler's counters (ghealth_counters),
 * taken when the job's own part starts here (usage_part_start: its GPUs,
 * the topology's indices) and again once when it ends (usage_part_end,
 * which marks p->end.gpu_measured). A step's part measures no GPU (its
 * job's part counts them); a part this daemon adopted after a restart has
 * no start counters, hence no GPU figures. */
void usage_part_start(jzd *d, exec_part *p, const uint32_t *gpus, size_t n);
void usage_part_end(jzd *d, exec_part *p);
/* The PartUsage of an ended part (the caller's message; no allocation). */
void usage_pb(const step_end *e, Jazari__PartUsage *out);
/* Whether an agent's PartUsage is within what one part can use (the
 * leader commits it only then); else false and why. */
bool usage_valid(const Jazari__PartUsage *u, char *why, size_t len);
/* Leader: this node's own parts, straight from the state. */
void run_sync_local(jzd *d);
/* Agent: no leader heard for silent_ms, past the policy's lost_after:
 * every running part is killed, its end reported as lost (when a leader
 * is heard again), so that none still runs when the leader requeues it. */
void run_fence(jzd *d, uint64_t silent_ms);
/* Leader: the running jobs with a part on node, for its heartbeat reply.
 * Returns a list to free with run_jobs_free. */
Jazari__Job **run_jobs_on(jzd *d, const char *node, size_t *n);
void run_jobs_free(Jazari__Job **jobs, size_t n);
/* A digest of node's run list (its jobs' runs and running steps, in
 * order), from the state without building the list: a held heartbeat
 * whose agent has it already costs no list. */
uint64_t run_digest_on(jzd *d, const char *node);
/* Leader: an agent's JobEndRequest. */
void run_job_end(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* Every tick: report ended parts the leader has not acknowledged. */
void run_tick(jzd *d);
void run_free(jzd *d);
/* This controller started or stopped leading: the reserved head, the
 * pass's pacing, anything decided in another term, are forgotten. */
void run_role_changed(jzd *d);
/* The pass's timer: made at start, closed at shutdown. */
void run_init(jzd *d);
void run_close(jzd *d);

#endif

/* daemon.c - jazarid's process: the loop, the listeners, the dispatch. */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/wire.h"
#include "../lib/hw/topo.h"
#include "../lib/hw/topo_pb.h"
#include "jzd.h"
#include "net/net.h"
#include "raft/transport.h"

const char *jzd_software_version(void)
{
    return JZ_VERSION " (" JZ_GIT_REV ")";
}

/* A Raft hello from who: a controller's certificate, for the Raft id and
 * address the controllers setting gives that controller's name. */
static bool jzd__is_peer_controller(const jzd *d, const pki_id *who, const Jazari__Hello *h)
{
    if (!trust_is_controller(who))
        return false;
    for (int i = 0; i < d->n_peers; i++)
        if (d->peers[i].id == h->raft_id)
            return strcmp(d->peers[i].name, who->name) == 0 && h->raft_address &&
                   strcmp(d->peers[i].address, h->raft_address) == 0;
    return false;
}

static void jzd__on_hello(jzd *d, net_conn *c, jzd_session *s, const Jazari__Envelope *e)
{
    char msg[300];
    if (e->body_case != JAZARI__ENVELOPE__BODY_HELLO) {
        snprintf(msg, sizeof msg, "the first frame of a connection must be hello, not %s", wire_body_name(e));
        log_warn("net", "%s: %s", c->peer, msg);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, true, "%s", msg);
        return;
    }
    const Jazari__Hello *h = e->hello;
    if (h->protocol_version != WIRE_PROTOCOL_VERSION) {
        snprintf(msg, sizeof msg,
                 "protocol version %u is not supported: jazarid %s speaks version %u; run the same "
                 "release on both sides",
                 h->protocol_version, jzd_software_version(), WIRE_PROTOCOL_VERSION);
        log_warn("net", "%s (%.60s): %s", c->peer, h->software_version, msg);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNSUPPORTED_VERSION, true, "%s", msg);
        return;
    }
    /* Over TLS, the certificate says who the peer is; the hello must agree. */
    const pki_id *who = net_conn_peer_id(c);
    if (c->kind == NET_TCP && trust_on(d)) {
        const char *bad = NULL;
        if (!who)
            bad = "no certificate";
        else if (h->kind == JAZARI__PEER_KIND__PEER_CONTROLLER && !jzd__is_peer_controller(d, who, h))
            bad = "a Raft hello whose certificate is not that controller's";
        else if (h->kind == JAZARI__PEER_KIND__PEER_AGENT &&
                 (!trust_is_daemon(who) || !h->name || strcmp(h->name, who->name) != 0))
            bad = "an agent's hello whose name is not its certificate's";
        else if (h->kind == JAZARI__PEER_KIND__PEER_CLIENT && trust_is_daemon(who))
            bad = "a daemon's certificate speaking as a client";
        else if (h->kind != JAZARI__PEER_KIND__PEER_CONTROLLER && h->kind != JAZARI__PEER_KIND__PEER_AGENT &&
                 h->kind != JAZARI__PEER_KIND__PEER_CLIENT)
            bad = "an unknown kind of peer";
        if (bad) {
            /* Nothing for a stranger, not even an error to learn from. */
            net_conn_close(c, "refused: %s", bad);
            return;
        }
    }
    if (h->kind == JAZARI__PEER_KIND__PEER_CONTROLLER) {
        if (d->ctl_running)
            rtx_accept(&d->ctl.transport, c, e);
        else
            req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, true,
                      "%s is not a controller: check the controllers setting", d->cfg->name);
        return;
    }
    s->greeted = true;
    s->kind = h->kind;
    wire_reply r;
    wire_reply_init(&r, e->request_id, JAZARI__ERROR_CODE__OK, NULL);
    Jazari__HelloReply hr = JAZARI__HELLO_REPLY__INIT;
    hr.protocol_version = WIRE_PROTOCOL_VERSION;
    hr.software_version = (char *)jzd_software_version();
    hr.name = d->cfg->name;
    hr.site = d->cfg->site;
    hr.role = (char *)(d->is_controller ? "controller" : "agent");
    r.env.body_case = JAZARI__ENVELOPE__BODY_HELLO_REPLY;
    r.env.hello_reply = &hr;
    net_conn_send(c, &r.env);
}

static void jzd__on_message(net_conn *c, wire_msg *m, void *data)
{
    jzd *d = data;
    const Jazari__Envelope *e = wire_msg_env(m);
    jzd_session *s = c->user;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            abort();
        c->user = s;
    }
    if (c->kind == NET_TCP && trust_on(d) && !net_conn_peer_id(c)) {
        /* Anonymous: a daemon joining may ask to join, once; anything
         * else ends the connection with nothing said. */
        if (!s->greeted && e->body_case == JAZARI__ENVELOPE__BODY_JOIN_REQUEST && d->ctl_running) {
            s->greeted = true;
            tokens_join(d, c, e);
        } else {
            net_conn_close(c, "no certificate, and not a join: refused");
        }
        wire_msg_free(m);
        return;
    }
    if (!s->greeted) {
        jzd__on_hello(d, c, s, e);
        wire_msg_free(m);
        return;
    }
    routes_dispatch(d, c, m);
}

/* A person's idle connection may go, unless a request of theirs still
 * waits for its answer (jz wait, jz logs -f). */
static bool jzd__may_idle_close(net_conn *c, void *data)
{
    const jzd_session *s = c->user;
    (void)data;
    return !s || !s->waits;
}

static void jzd__on_conn_close(net_conn *c, void *data)
{
    if (c->user)
        req_session_closed(c->user);
    free(c->user);
    c->user = NULL;
}

/* An entry that starts, ends or moves jobs: the agents held in a long
 * poll hear of it now. */
/* Where jobs find jz and the Slurm commands: <this program's directory>/slurm
 * when it holds srun (the build's build/slurm, the package's), else this
 * program's directory (where jz is installed beside it). */
static void jzd__bin_dir(jzd *d)
{
    char dir[PATH_MAX], probe[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", d->ex.exe);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    snprintf(probe, sizeof probe, "%s/slurm/srun", dir);
    if (access(probe, X_OK) == 0)
        snprintf(d->bin_dir, sizeof d->bin_dir, "%s/slurm", dir);
    else
        snprintf(d->bin_dir, sizeof d->bin_dir, "%s", dir);
    snprintf(probe, sizeof probe, "%s/srun", d->bin_dir);
    if (access(probe, X_OK) != 0)
        log_warn("daemon",
                 "no srun in %s/slurm: jobs' srun will be whatever their PATH finds (build "
                 "build/slurm, or install jazari's slurm commands there)",
                 dir);
}

static void jzd__on_applied(void *arg, const fsm_result *res)
{
    jzd *d = arg;
    metrics_applied(&d->metrics, res);
    fwd_applied(d, false);
    if (res->started || res->ended || res->cancelled || res->nodes_changed)
        beat_wake(d);
    if (res->trust_changed)
        trust_drop_revoked(d);
    acct_applied(d);
}

static void jzd__on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void jzd__on_ctl_closed(ctl *c)
{
    (void)c;
}

static void jzd__on_uplink_closed(uplink *l)
{
    (void)l;
}

static void jzd__on_exec_closed(exec *x)
{
    (void)x;
}

static void jzd__stop(jzd *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    uv_close((uv_handle_t *)&d->sigterm, jzd__on_handle_closed);
    uv_close((uv_handle_t *)&d->sigint, jzd__on_handle_closed);
    uv_close((uv_handle_t *)&d->tick, jzd__on_handle_closed);
    beat_close(d);
    uv_close((uv_handle_t *)&d->beat_timer, jzd__on_handle_closed);
    if (d->ctl_running) {
        d->ctl_running = false;
        ctl_close(&d->ctl, jzd__on_ctl_closed);
    }
    acct_close(d);
    backup_close(d);
    fwd_applied(d, true);
    uplink_close(&d->up, jzd__on_uplink_closed);
    logs_close(d);
    run_close(d);
    ghealth_close(d);
    burnin_close(d);
    /* The jobs' supervisors go on: a restarted daemon adopts them. */
    exec_close(&d->ex, jzd__on_exec_closed);
    net_server_close(&d->server, NULL);
    http_close(d->http);
}

static void jzd__on_signal(uv_signal_t *h, int signum)
{
    jzd *d = h->data;
    log_info("daemon", "%s received: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    jzd__stop(d);
}

static void jzd__on_tick(uv_timer_t *t)
{
    jzd *d = t->data;
    if (d->ctl_running && d->ctl.broken && !d->stopping) {
        /* An entry this release cannot apply: stop rather than diverge. */
        log_error("daemon",
                  "stopping: %s. Start a release that reads it (the same as the other "
                  "controllers); the log is kept and replayed",
                  d->ctl.broken_why);
        d->status = 1;
        jzd__stop(d);
        return;
    }
    routes_tick(d);
    acct_tick(d);
}

/* mkdir -p with mode 0700 for the directories we create. */
static int jzd__mkdirs(const char *path, char *err, size_t errlen)
{
    char tmp[CONFIG_PATH_MAX + 1];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "state_dir %s: cannot create %s: %s", path, tmp, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

static void jzd__parent_dir(const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
    else
        snprintf(out, len, "%s", slash ? "/" : ".");
}

static bool jzd__is_controller(const config *cfg)
{
    if (!cfg->controllers || !*cfg->controllers)
        return true;
    size_t n = strlen(cfg->name);
    for (const char *p = cfg->controllers; (p = strstr(p, cfg->name)) != NULL; p += n) {
        bool starts = p == cfg->controllers || p[-1] == ',';
        if (starts && p[n] == '@')
            return true;
    }
    return false;
}

/* The HTTP listener (http_listen) and its pages. 0, or a libuv error
 * with err. */
static int jzd__http_start(jzd *d, char *err, size_t errlen)
{
    d->http = http_new(&d->loop, NULL);
    if (http_route(d->http, "/metrics", metrics_page, d) != 0) {
        snprintf(err, errlen, "http: cannot route /metrics");
        return UV_EINVAL;
    }
    if (web_routes(d, err, errlen) != 0)
        return UV_EINVAL;
    return http_listen(d->http, d->cfg->http_host, d->cfg->http_port, err, errlen);
}

int daemon_run(const config *cfg, bool restored)
{
    jzd d;
    char err[512];
    memset(&d, 0, sizeof d);
    d.cfg = cfg;
    d.restored = restored;
    d.status = 1;
    d.is_controller = jzd__is_controller(cfg);
    d.metrics.start_s = (uint64_t)time(NULL);
    signal(SIGPIPE, SIG_IGN);

    topo_load_opts opts = {.xml_path = cfg->topology_xml, .name = cfg->name, .probe_gpus = true};
    if (topo_load(&opts, &d.topo, err, sizeof err) != 0) {
        log_error("topo", "%s", err);
        return 2;
    }
    log_info("daemon", "jazarid %s: node %s (site %s, %s), %zu GPUs, %zu NUMA nodes, %u cores%s%s",
             jzd_software_version(), cfg->name, cfg->site, d.is_controller ? "controller" : "agent",
             d.topo->n_gpus, d.topo->n_numa, d.topo->cores, cfg->topology_xml ? ", emulating " : "",
             cfg->topology_xml ? cfg->topology_xml : "");

    char sockdir[CONFIG_PATH_MAX + 1];
    jzd__parent_dir(cfg->socket, sockdir, sizeof sockdir);
    if (jzd__mkdirs(cfg->state_dir, err, sizeof err) != 0 || jzd__mkdirs(sockdir, err, sizeof err) != 0) {
        log_error("daemon", "%s", err);
        topo_free(d.topo);
        return 1;
    }

    d.sched.pol = cfg->pol;
    if (plan_policy_parse(cfg->scheduler, &d.sched.policy) != 0) {
        log_error("daemon", "scheduler '%s': one of fcfs, fcfs-easy, sjf, sjf-easy, jazari, multifactor",
                  cfg->scheduler);
        topo_free(d.topo);
        return 2;
    }
    d.n_peers = config_controllers(cfg, d.peers, err, sizeof err);
    if (d.n_peers < 0) {
        log_error("daemon", "%s", err);
        topo_free(d.topo);
        return 2;
    }

    char spool[CONFIG_PATH_MAX + 8];
    snprintf(spool, sizeof spool, "%s/jobs", cfg->state_dir);
    if (jzd__mkdirs(spool, err, sizeof err) != 0) {
        log_error("daemon", "%s", err);
        topo_free(d.topo);
        return 1;
    }

    /* The job's user reaches its script in <spool>/<id>.<attempt>/ by
     * search permission alone (nothing here can be listed). */
    if (geteuid() == 0 && (chmod(cfg->state_dir, 0711) != 0 || chmod(spool, 0711) != 0))
        log_warn("daemon", "cannot open %s to job scripts: %s", spool, strerror(errno));
    if (trust_init(&d, err, sizeof err) != 0) {
        log_error("trust", "%s", err);
        trust_free(&d);
        topo_free(d.topo);
        return 1;
    }
    uv_loop_init(&d.loop);
    if (exec_init(&d.ex, &d.loop, spool, run_part_ended, &d, err, sizeof err) != 0) {
        log_error("daemon", "%s", err);
        topo_free(d.topo);
        trust_free(&d);
        uv_loop_close(&d.loop);
        return 1;
    }
    jzd__bin_dir(&d);
    uplink_init(&d.up, &d.loop, cfg->name, &d.sec);
    run_init(&d);
    ghealth_init(&d);
    net_handlers h = {.on_message = jzd__on_message,
                      .on_secure = trust_on_secure,
                      .may_idle_close = jzd__may_idle_close,
                      .on_close = jzd__on_conn_close,
                      .data = &d};
    net_server_init(&d.server, &d.loop, &h, &d.sec, cfg->max_frame);
    net_limits lim = {.max_tcp = (unsigned)cfg->max_connections,
                      .idle_ms = cfg->idle_timeout_ms,
                      .frame_ms = cfg->frame_timeout_ms,
                      .buffered_max = cfg->max_buffered};
    net_server_limits(&d.server, &lim);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    uv_timer_init(&d.loop, &d.tick);
    uv_timer_init(&d.loop, &d.beat_timer);
    d.beat_timer.data = &d;
    d.sigterm.data = d.sigint.data = d.tick.data = &d;
    uv_signal_start(&d.sigterm, jzd__on_signal, SIGTERM);
    uv_signal_start(&d.sigint, jzd__on_signal, SIGINT);

    int lrc = net_server_listen_tcp(&d.server, cfg->listen_host, cfg->listen_port, err, sizeof err);
    if (lrc == 0)
        lrc = net_server_listen_unix(&d.server, cfg->socket, err, sizeof err);
    if (lrc == 0 && cfg->http_host)
        lrc = jzd__http_start(&d, err, sizeof err);
    if (lrc != 0) {
        /* An address this machine does not have is a bad setting (2);
         * one that is taken is a failure of the moment (1). */
        log_error("net", "%s%s", err,
                  lrc == UV_EADDRNOTAVAIL ? ": not an address of this machine (check the listen and "
                                            "http_listen settings)"
                                          : "");
        d.status = lrc == UV_EADDRNOTAVAIL || lrc == UV_EINVAL ? 2 : 1;
        jzd__stop(&d);
    } else if (d.is_controller && acct_open(&d, err, sizeof err) != 0) {
        log_error("acct",
                  "%s: the controller keeps its job history there; fix its permissions or disk, or move the "
                  "file aside (a copy of another controller's history.db restores the older records)",
                  err);
        d.status = 1;
        jzd__stop(&d);
    } else if (d.is_controller &&
               ctl_start(&d.ctl, &d.loop, cfg, &d.sec, jzd__on_applied, &d, err, sizeof err) != 0) {
        log_error("raft", "%s", err);
        d.status = 2;
        jzd__stop(&d);
    } else {
        d.ctl_running = d.is_controller;
        uv_timer_start(&d.tick, jzd__on_tick, 50, cfg->heartbeat_interval_ms);
        log_info("daemon", "ready");
        d.status = 0;
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    http_free(d.http); /* closes h2o's own handles, on the loop */
    d.http = NULL;
    web_free(&d);
    int rc = uv_loop_close(&d.loop);
    if (rc != 0) {
        log_error("daemon", "the loop did not close cleanly: %s", uv_strerror(rc));
        d.status = 1;
    }
    topo_free(d.topo);
    acct_free(&d);
    trust_free(&d);
    seen_free(&d.seen);
    run_free(&d);
    ghealth_free(&d);
    burnin_free(&d);
    backup_free(&d);
    hloop_free(&d);
    free(d.relays);
    if (d.status == 0)
        log_info("daemon", "stopped");
    return d.status;
}

/* server.c - the listeners: one TCP address and one Unix socket. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../common/log.h"
#include "net.h"

void net__conn_start(net_conn *c);

#define NET_BACKLOG 511
#define NET_READ_BUF (64u << 10)

void net_server_init(net_server *s, uv_loop_t *loop, const net_handlers *h, const sec_ctx *sec,
                     size_t max_frame)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->sec = sec;
    s->handlers = *h;
    s->max_frame = max_frame;
    s->read_buf = malloc(NET_READ_BUF);
    if (!s->read_buf)
        abort();
}

void net_server_limits(net_server *s, const net_limits *l)
{
    s->limits = *l;
    struct rlimit rl;
    rlim_t n = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        /* Take what the system allows: the soft limit up to the hard one. */
        if (!s->limits.max_tcp && rl.rlim_cur < rl.rlim_max && rl.rlim_max != RLIM_INFINITY) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        n = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
    }
    if (!s->limits.max_tcp)
        s->limits.max_tcp =
            n > 2 * (rlim_t)NET_FD_RESERVE ? (unsigned)(n - NET_FD_RESERVE) : (unsigned)(n / 2);
    /* Connections of both kinds together never take the daemon's own
     * descriptors: its files, Raft and account lookups must not fail with
     * EMFILE however many peers and users connect. */
    s->max_conns = n > 2 * (rlim_t)NET_FD_OWN ? (size_t)(n - NET_FD_OWN) : (size_t)(n / 2);
    /* The local socket has what TCP leaves (with the defaults, the reserve
     * less the daemon's own); a local user, a share of it. */
    if (!s->limits.max_local)
        s->limits.max_local =
            s->max_conns > (size_t)s->limits.max_tcp + 16 ? (unsigned)(s->max_conns - s->limits.max_tcp) : 16;
    if (!s->limits.max_local_per_uid)
        s->limits.max_local_per_uid = NET_LOCAL_PER_UID;
    if (!s->limits.max_unproven)
        s->limits.max_unproven = s->limits.max_tcp / 4 > 256 ? 256 : s->limits.max_tcp / 4 + 1;
    if (!s->limits.handshake_ms)
        s->limits.handshake_ms = 10000;
    if (!s->limits.idle_ms)
        s->limits.idle_ms = 600000;
    if (!s->limits.frame_ms)
        s->limits.frame_ms = 60000;
    if (!s->limits.buffered_max)
        s->limits.buffered_max =
            4 * (uint64_t)s->max_frame > (256u << 20) ? 4 * (uint64_t)s->max_frame : (256u << 20);
}

/* Whether c has shown a certificate (or is local, or the network runs
 * plaintext). */
static bool net__proven(const net_conn *c)
{
    return c->kind == NET_UNIX || !c->tls || (tls_ready(c->tls) && tls_peer(c->tls));
}

/* A uid's local connections, and the one refused connection of it that
 * waits for its first request to answer it with the reason (NULL if none). */
struct net_uid_count {
    uid_t uid;
    size_t n;
    net_conn *refused;
};

/* A local connection's uid, for its count: one that did not show its
 * credentials is counted as nobody's (and is never root). */
static uid_t net__uid_key(const net_conn *c)
{
    return c->have_creds ? c->uid : (uid_t)-1;
}

static bool net__is_root(const net_conn *c)
{
    return c->have_creds && c->uid == 0;
}

/* The entry of uid (made if create), NULL if none. The table holds the uids
 * with connections: few, as each is held to a share of max_local. */
static struct net_uid_count *net__uid(net_server *s, uid_t uid, bool create)
{
    for (size_t i = 0; i < s->n_uids; i++)
        if (s->uids[i].uid == uid)
            return &s->uids[i];
    if (!create)
        return NULL;
    if (s->n_uids == s->cap_uids) {
        size_t cap = s->cap_uids ? 2 * s->cap_uids : 16;
        struct net_uid_count *u = realloc(s->uids, cap * sizeof *u);
        if (!u)
            abort();
        s->uids = u;
        s->cap_uids = cap;
    }
    s->uids[s->n_uids] = (struct net_uid_count){uid, 0, NULL};
    return &s->uids[s->n_uids++];
}

/* Drops u from the table once it holds nothing. */
static void net__uid_tidy(net_server *s, struct net_uid_count *u)
{
    if (u->n == 0 && !u->refused)
        *u = s->uids[--s->n_uids];
}

/* The request a refused local peer sent first, when it is here already (the
 * refusal answers it); else 1, the number of jz's hello. */
static uint64_t net__first_request(net_conn *c)
{
    uv_os_fd_t fd;
    char head[4096];
    uint64_t id = 1;
    if (uv_fileno(&c->h->handle, &fd) != 0)
        return id;
    ssize_t n = recv(fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0)
        return id;
    wire_reader r;
    const uint8_t *payload;
    size_t len;
    wire_reader_init(&r, sizeof head);
    wire_reader_feed(&r, head, (size_t)n);
    if (wire_reader_next(&r, &payload, &len) == WIRE_FRAME) {
        char err[160];
        wire_msg *m = wire_unpack(payload, len, err, sizeof err);
        if (m)
            id = wire_msg_env(m)->request_id;
        wire_msg_free(m);
    }
    wire_reader_free(&r);
    return id;
}

/* Writes the reason for a refusal on c, if it fits now (the frame is small
 * and the socket's buffer empty): nothing waits for it. */
static void net__write_refusal(net_conn *c, const char *why)
{
    wire_reply r;
    wire_reply_init(&r, net__first_request(c), JAZARI__ERROR_CODE__UNAVAILABLE, "%s", why);
    buf b = BUF_INIT;
    wire_pack(&r.env, &b);
    uv_buf_t ub = uv_buf_init(b.data, (unsigned)b.len);
    uv_try_write(&c->h->stream, &ub, 1);
    buf_free(&b);
}

/* A refused connection that asked nothing in time, or that a newer one of
 * its uid replaces: the reason written if it fits, then closed. */
static void net__refusal_end(net_conn *c)
{
    net__write_refusal(c, c->refusal);
    net_conn_close(c, NULL);
}

/* Once a second: connections past a deadline are closed. */
static void net__on_sweep(uv_timer_t *t)
{
    net_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    const net_limits *l = &s->limits;
    for (net_conn *c = s->conns; c; c = c->next) {
        if (c->closing)
            continue;
        const pki_id *p = net_conn_peer_id(c);
        bool daemon = p && (strcmp(p->kind, "controller") == 0 || strcmp(p->kind, "agent") == 0);
        bool tcp = c->kind == NET_TCP;
        if (c->refusal) {
            if (now - c->since_ms > NET_REFUSAL_MS)
                net__refusal_end(c);
        } else if (tcp && c->tls && !tls_ready(c->tls) && now - c->since_ms > l->handshake_ms)
            net_conn_close(c, "no TLS handshake within %llu ms", (unsigned long long)l->handshake_ms);
        else if (tcp && !net__proven(c) && now - c->since_ms > l->handshake_ms)
            net_conn_close(c, "no certificate, and nothing asked within %llu ms",
                           (unsigned long long)l->handshake_ms);
        else if (!tcp && !c->frames && !c->frame_from_ms && now - c->since_ms > l->frame_ms)
            net_conn_close(c, "nothing asked within %llu ms (frame_timeout)",
                           (unsigned long long)l->frame_ms);
        else if (c->frame_from_ms && now - c->frame_from_ms > l->frame_ms)
            net_conn_close(c, "a frame still incomplete after %llu ms (%zu bytes of it)",
                           (unsigned long long)l->frame_ms, c->buffered);
        else if (!daemon && !c->pending_write && now - c->last_frame_ms > l->idle_ms &&
                 (!s->handlers.may_idle_close || s->handlers.may_idle_close(c, s->handlers.data)))
            net_conn_close(c, "idle for %llu ms", (unsigned long long)l->idle_ms);
    }
}

static void net__sweep_start(net_server *s)
{
    if (s->sweep_on)
        return;
    uv_timer_init(s->loop, &s->sweep);
    s->sweep.data = s;
    s->sweep_on = true;
    s->open_handles++;
    uv_timer_start(&s->sweep, net__on_sweep, 1000, 1000);
}

/* Closes the oldest connection without a certificate (the list is newest
 * first); whether there was one. */
static bool net__evict_unproven(net_server *s)
{
    net_conn *old = NULL;
    for (net_conn *c = s->conns; c; c = c->next)
        if (c->kind == NET_TCP && c->unproven && !c->closing)
            old = c;
    if (!old)
        return false;
    if (s->evicted++ % 100 == 0)
        log_warn("net", "%zu connections without a certificate: the oldest ones make room (%llu so far)",
                 s->n_unproven, (unsigned long long)s->evicted);
    net_conn_close(old, NULL);
    return true;
}

/* Closes the oldest local connection that has asked nothing yet, else the
 * oldest idle one (no reply pending, no request waiting, no frame in
 * progress); root's are kept. Whether there was one. */
static bool net__evict_local(net_server *s)
{
    net_conn *silent = NULL, *idle = NULL;
    for (net_conn *c = s->conns; c; c = c->next) {
        if (c->kind != NET_UNIX || c->closing || c->refusal || net__is_root(c))
            continue;
        if (!c->frames)
            silent = c;
        else if (!c->pending_write && !c->frame_from_ms &&
                 (!s->handlers.may_idle_close || s->handlers.may_idle_close(c, s->handlers.data)))
            idle = c;
    }
    net_conn *old = silent ? silent : idle;
    if (!old)
        return false;
    if (s->evicted_local++ % 100 == 0)
        log_warn("net",
                 "%zu local connections, the most the socket takes: the oldest idle ones make room "
                 "(%llu so far)",
                 s->n_local, (unsigned long long)s->evicted_local);
    net_conn_close(old, NULL);
    return true;
}

static void net__maybe_closed(net_server *s)
{
    if (s->closing && s->open_handles == 0) {
        free(s->read_buf);
        s->read_buf = NULL;
        free(s->uids);
        s->uids = NULL;
        s->n_uids = s->cap_uids = 0;
        if (s->close_cb)
            s->close_cb(s);
    }
}

static void net__link(net_server *s, net_conn *c)
{
    if (c->kind == NET_TCP) {
        s->n_tcp++;
    } else if (!c->refusal) {
        s->n_local++;
        net__uid(s, net__uid_key(c), true)->n++;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    s->open_handles++;
}

/* Removes c from its server and frees it; its handle is not touched. */
/* A connection is over: unlinked, then freed. */
static void net__conn_unlink(net_conn *c)
{
    net_server *s = c->server;
    if (s->handlers.on_close)
        s->handlers.on_close(c, s->handlers.data);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->kind == NET_TCP) {
        s->n_tcp--;
    } else {
        struct net_uid_count *u = net__uid(s, net__uid_key(c), false);
        if (c->refusal) {
            if (u && u->refused == c)
                u->refused = NULL;
        } else {
            s->n_local--;
            if (u)
                u->n--;
        }
        if (u)
            net__uid_tidy(s, u);
    }
    free(c->refusal);
    if (c->unproven)
        s->n_unproven--;
    s->buffered -= c->buffered;
    s->n_conns--;
    s->open_handles--;
    wire_reader_free(&c->reader);
    free(c);
    net__maybe_closed(s);
}

/* Closes a handle that was initialised but never became a connection. */
static void net__free_handle(uv_handle_t *h)
{
    net_conn *c = h->data;
    net_server *s = c->server;
    free(h);
    free(c);
    s->open_handles--;
    net__maybe_closed(s);
}

static void net__peer_tcp(net_conn *c)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h->tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&sa;
            uv_ip4_name(in, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
            uv_ip6_name(in6, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
}

static void net__peer_unix(net_conn *c)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno(&c->h->handle, &fd) == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->uid = cred.uid;
        c->pid = cred.pid;
        c->have_creds = true;
        snprintf(c->peer, sizeof c->peer, "unix:uid=%u,pid=%d", (unsigned)cred.uid, (int)cred.pid);
    } else {
        snprintf(c->peer, sizeof c->peer, "unix:unknown");
    }
}

const pki_id *net_conn_peer_id(const net_conn *c)
{
    return c->kind == NET_TCP && c->tls ? tls_peer(c->tls) : NULL;
}

/* Refuses a local connection: it is kept, not counted, until its first
 * request, which is answered with why (jz prints it), or for at most
 * NET_REFUSAL_MS; one such per uid (a newer one replaces it), and none once
 * the descriptors are short: then the reason is written if it fits and the
 * connection closed at once. Returns whether c is kept. */
static bool net__refuse_local(net_server *s, net_conn *c, const char *why)
{
    if (s->refused_local++ % 100 == 0)
        log_warn("net", "refusing %s: %s (%llu local connections refused so far)", c->peer, why,
                 (unsigned long long)s->refused_local);
    if (s->n_conns >= s->max_conns) {
        net__write_refusal(c, why);
        s->open_handles++;
        uv_close(&c->h->handle, net__free_handle);
        return false;
    }
    struct net_uid_count *u = net__uid(s, net__uid_key(c), true);
    if (u->refused) {
        net_conn *old = u->refused;
        u->refused = NULL;
        net__refusal_end(old);
    }
    c->refusal = strdup(why);
    if (!c->refusal)
        abort();
    u->refused = c;
    return true;
}

/* Why a new local connection cannot be taken ("" if it can), after making
 * room when that is possible. A uid past its share is refused: its own
 * connections are its business, and the others' are not its to close.
 * Past the socket's limit, or the descriptors', a connection that has asked
 * nothing, else an idle one, makes room (unproven TCP peers first for the
 * descriptors); root's are never closed for room, and root is held only to
 * the descriptors, so that an admin can always look. */
static void net__local_full(net_server *s, const net_conn *c, char *why, size_t len)
{
    bool root = net__is_root(c);
    const net_limits *l = &s->limits;
    why[0] = '\0';
    const struct net_uid_count *u = net__uid(s, net__uid_key(c), false);
    if (!root && u && u->n >= l->max_local_per_uid)
        snprintf(why, len, "too many connections from uid %u (at most %u at once): close some",
                 (unsigned)net__uid_key(c), l->max_local_per_uid);
    else if (s->n_conns >= s->max_conns && !net__evict_unproven(s) && !net__evict_local(s))
        snprintf(why, len, "jazarid is at its limit of %zu connections, all busy: retry in a moment",
                 s->max_conns);
    else if (!root && s->n_local >= l->max_local && !net__evict_local(s))
        snprintf(why, len, "jazarid's socket is at its limit of %u connections, all busy: retry in a moment",
                 l->max_local);
}

void net_tcp_tune(uv_tcp_t *tcp)
{
    uv_os_fd_t fd;
    uv_tcp_nodelay(tcp, 1);
    uv_tcp_keepalive(tcp, 1, 1);
    if (uv_fileno((uv_handle_t *)tcp, &fd) != 0)
        return;
    int one = 1, probes = NET_TCP_DEAD_MS / 1000;
    unsigned dead = NET_TCP_DEAD_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &dead, sizeof dead);
}

unsigned net_tcp_rtt_bound_us(const uv_handle_t *tcp)
{
    uv_os_fd_t fd;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (!tcp || tcp->type != UV_TCP || uv_fileno(tcp, &fd) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < sizeof ti || ti.tcpi_rtt == 0)
        return 0;
    return ti.tcpi_rtt + 4 * ti.tcpi_rttvar;
}

unsigned net_conn_rtt_bound_us(net_conn *c)
{
    if (c->kind != NET_TCP || !c->h || c->closing)
        return 0;
    uint64_t now = uv_now(c->server->loop);
    if (!c->rtt_at_ms || now - c->rtt_at_ms >= 1000) {
        c->rtt_us = net_tcp_rtt_bound_us(&c->h->handle);
        c->rtt_at_ms = now ? now : 1;
    }
    return c->rtt_us;
}

static void net__on_connection(uv_stream_t *listener, int status)
{
    net_server *s = listener->data;
    if (status < 0) {
        log_warn("net", "accept failed: %s", uv_strerror(status));
        return;
    }
    if (s->closing)
        return;
    net_conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->server = s;
    c->gone = net__conn_unlink;
    c->h = calloc(1, sizeof *c->h);
    if (!c->h)
        abort();
    c->h->handle.data = c;
    c->kind = (uv_handle_t *)listener == (uv_handle_t *)&s->tcp ? NET_TCP : NET_UNIX;
    if (c->kind == NET_TCP)
        uv_tcp_init(s->loop, &c->h->tcp);
    else
        uv_pipe_init(s->loop, &c->h->pipe, 0);
    int rc = uv_accept(listener, &c->h->stream);
    if (rc < 0) {
        log_warn("net", "accept failed: %s", uv_strerror(rc));
        s->open_handles++;
        uv_close(&c->h->handle, net__free_handle);
        return;
    }
    if (c->kind == NET_TCP) {
        net_tcp_tune(&c->h->tcp);
        net__peer_tcp(c);
        /* Past a limit, the connection is closed at once: the descriptors
         * kept back serve the local socket and the network's own peers. */
        const char *full = s->n_tcp >= s->limits.max_tcp             ? "TCP connections"
                           : s->n_conns >= s->max_conns              ? "connections (descriptors)"
                           : s->n_unproven >= s->limits.max_unproven ? "connections without a certificate yet"
                                                                     : NULL;
        /* Connections without a certificate are many at most for a while: the
         * oldest makes room for the newest, so strangers holding every slot
         * cannot keep a person or a peer from completing a handshake. */
        if (full && s->n_tcp < s->limits.max_tcp && net__evict_unproven(s))
            full = NULL;
        if (full) {
            if (s->refused++ % 100 == 0)
                log_warn("net", "refusing %s: at the limit of %s (%llu refused so far)", c->peer, full,
                         (unsigned long long)s->refused);
            s->open_handles++;
            uv_close(&c->h->handle, net__free_handle);
            return;
        }
        c->unproven = s->sec && s->sec->server;
        s->n_unproven += c->unproven;
    } else {
        /* Each local user has a share of the socket, and the socket a share
         * of the descriptors: past them, the newcomer hears why at once. */
        char why[200];
        net__peer_unix(c);
        net__local_full(s, c, why, sizeof why);
        if (why[0] && !net__refuse_local(s, c, why))
            return;
    }
    c->since_ms = c->last_frame_ms = uv_now(s->loop);
    net__link(s, c);
    log_debug("net", "connection from %s", c->peer);
    net__conn_start(c);
}

int net_server_listen_tcp(net_server *s, const char *host, uint16_t port, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
    if (rc < 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
    if (rc < 0) {
        snprintf(err, errlen, "listen %s:%u: not a numeric IPv4 or IPv6 address", host, port);
        return rc;
    }
    uv_tcp_init(s->loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_open = true;
    s->open_handles++;
    rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tcp, NET_BACKLOG, net__on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "listen %s:%u: %s", host, port, uv_strerror(rc));
        return rc;
    }
    if (!s->max_conns)
        net_server_limits(s, &s->limits);
    net__sweep_start(s);
    log_info("net", "listening on %s:%u", host, port);
    return 0;
}

/* Whether a daemon answers on the Unix socket at path. */
static bool net__socket_live(const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool live = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    close(fd);
    return live;
}

int net_server_listen_unix(net_server *s, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "socket %s: exists and is not a socket; remove it or set --socket", path);
            return UV_EEXIST;
        }
        if (net__socket_live(path)) {
            snprintf(err, errlen, "socket %s: another jazarid is serving it; stop it or set --socket", path);
            return UV_EADDRINUSE;
        }
        unlink(path);
    }
    uv_pipe_init(s->loop, &s->pipe, 0);
    s->pipe.data = s;
    s->pipe_open = true;
    s->open_handles++;
    int rc = uv_pipe_bind(&s->pipe, path);
    if (rc == 0) {
        s->unix_path = strdup(path);
        chmod(path, 0666);
        rc = uv_listen((uv_stream_t *)&s->pipe, NET_BACKLOG, net__on_connection);
    }
    if (rc < 0) {
        snprintf(err, errlen, "socket %s: %s", path, uv_strerror(rc));
        return rc;
    }
    if (!s->max_conns)
        net_server_limits(s, &s->limits);
    net__sweep_start(s);
    log_info("net", "serving jz on %s", path);
    return 0;
}

static void net__listener_closed(uv_handle_t *h)
{
    net_server *s = h->data;
    s->open_handles--;
    net__maybe_closed(s);
}

void net_server_close(net_server *s, void (*cb)(net_server *s))
{
    s->closing = true;
    s->close_cb = cb;
    if (s->tcp_open) {
        s->tcp_open = false;
        uv_close((uv_handle_t *)&s->tcp, net__listener_closed);
    }
    if (s->pipe_open) {
        s->pipe_open = false;
        uv_close((uv_handle_t *)&s->pipe, net__listener_closed);
    }
    if (s->sweep_on) {
        s->sweep_on = false;
        uv_close((uv_handle_t *)&s->sweep, net__listener_closed);
    }
    if (s->unix_path) {
        unlink(s->unix_path);
        free(s->unix_path);
        s->unix_path = NULL;
    }
    for (net_conn *c = s->conns; c; c = c->next)
        net_conn_close(c, NULL);
    /* Nothing was open: still report closure, asynchronously-safe here
     * because the caller expects the callback after return. */
    if (s->open_handles == 0)
        net__maybe_closed(s);
}

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

void net_server_init(net_server *s, uv_loop_t *loop, const net_handlers *h, const sec_ctx *sec, size_t max_frame)
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
    if (!s->limits.max_tcp) {
        struct rlimit rl;
        rlim_t n = 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            /* Take what the system allows: the soft limit up to the hard one. */
            if (rl.rlim_cur < rl.rlim_max && rl.rlim_max != RLIM_INFINITY) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
            }
            n = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
        }
        s->limits.max_tcp = n > 2 * (rlim_t)NET_FD_RESERVE ? (unsigned)(n - NET_FD_RESERVE) : (unsigned)(n / 2);
    }
    if (!s->limits.max_unproven)
        s->limits.max_unproven = s->limits.max_tcp / 4 > 256 ? 256 : s->limits.max_tcp / 4 + 1;
    if (!s->limits.handshake_ms)
        s->limits.handshake_ms = 10000;
    if (!s->limits.idle_ms)
        s->limits.idle_ms = 600000;
    if (!s->limits.frame_ms)
        s->limits.frame_ms = 60000;
    if (!s->limits.buffered_max)
        s->limits.buffered_max = 4 * (uint64_t)s->max_frame > (256u << 20) ? 4 * (uint64_t)s->max_frame : (256u << 20);
}

/* Whether c has shown a certificate (or is local, or the network runs
 * plaintext). */
static bool net__proven(const net_conn *c)
{
    return c->kind == NET_UNIX || !c->tls || (tls_ready(c->tls) && tls_peer(c->tls));
}

/* Once a second: connections past a deadline are closed. */
static void net__on_sweep(uv_timer_t *t)
{
    net_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    const net_limits *l = &s->limits;
    for (net_conn *c = s->conns; c; c = c->next) {
        if (c->closing || c->kind != NET_TCP)
            continue;
        const pki_id *p = net_conn_peer_id(c);
        bool daemon = p && (strcmp(p->kind, "controller") == 0 || strcmp(p->kind, "agent") == 0);
        if (c->tls && !tls_ready(c->tls) && now - c->since_ms > l->handshake_ms)
            net_conn_close(c, "no TLS handshake within %llu ms", (unsigned long long)l->handshake_ms);
        else if (!net__proven(c) && now - c->since_ms > l->handshake_ms)
            net_conn_close(c, "no certificate, and nothing asked within %llu ms", (unsigned long long)l->handshake_ms);
        else if (c->frame_from_ms && now - c->frame_from_ms > l->frame_ms)
            net_conn_close(c, "a frame still incomplete after %llu ms (%zu bytes of it)",
                           (unsigned long long)l->frame_ms, c->buffered);
        else if (!daemon && !c->pending_write && now - c->last_frame_ms > l->idle_ms &&
                 (!s->handlers.may_idle_close || s->handlers.may_idle_close(c, s->handlers.data)))
            net_conn_close(c, "idle for %llu ms", (unsigned long long)l->idle_ms);
    }
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

static void net__maybe_closed(net_server *s)
{
    if (s->closing && s->open_handles == 0) {
        free(s->read_buf);
        s->read_buf = NULL;
        if (s->close_cb)
            s->close_cb(s);
    }
}

static void net__link(net_server *s, net_conn *c)
{
    if (c->kind == NET_TCP)
        s->n_tcp++;
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
    if (c->kind == NET_TCP)
        s->n_tcp--;
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
        const char *full = s->n_tcp >= s->limits.max_tcp          ? "TCP connections"
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
        net__peer_unix(c);
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
    if (!s->limits.max_tcp)
        net_server_limits(s, &s->limits);
    uv_timer_init(s->loop, &s->sweep);
    s->sweep.data = s;
    s->sweep_on = true;
    s->open_handles++;
    uv_timer_start(&s->sweep, net__on_sweep, 1000, 1000);
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

/* http.c - h2o's HTTP/1.1 server on the daemon's loop, with our listener,
 * connection cap, limits and route table (http.h).
 *
 * h2o 2.2 (Debian's libh2o, built for libuv) makes a uv_async_t and
 * several uv_timer_t of its own in h2o_context_init; the async one is
 * always active. They are unref'd here so that they never keep the loop
 * alive, and closed by h2o_context_dispose once the loop has run dry. An
 * open connection is ended by shutting its socket down: h2o then reads the
 * end of the stream (or fails its write) and closes the connection its own
 * way, so no h2o object is left half freed. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <h2o.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../common/log.h"
#include "../../common/xmem.h"

typedef struct http__route {
    char path[HTTP_PATH_MAX];
    size_t len;
    bool prefix; /* ends in '/': serves what follows too */
    http_handler fn;
    void *arg;
} http__route;

/* A request answered later: the request while its client is there. h2o
 * frees a request's pool when its connection ends; a small block in that
 * pool (http__later_slot) tells l so through its dispose callback. */
typedef struct http__later_slot {
    struct http_later *l;
} http__later_slot;

/* What http_request.priv points to while a handler runs. */
typedef struct http__ctx {
    http_server *s;
    h2o_req_t *req;
} http__ctx;

struct http_later {
    h2o_req_t *req; /* NULL: gone */
    http_server *s;
    http__later_slot *slot;
};

/* One accepted connection: the uv_tcp_t h2o reads and writes (first, so
 * that h2o's close callback, given the handle, finds the rest). h2o owns
 * tcp.data. */
typedef struct http__conn {
    uv_tcp_t tcp;
    http_server *s;
    bool counted; /* served (in s->conns), not refused */
    bool evicted; /* shut down to make room: closing */
    struct http__conn *prev, *next;
} http__conn;

/* h2o's handler for every path: ours dispatches by the route table. */
typedef struct http__handler {
    h2o_handler_t super;
    http_server *s;
} http__handler;

struct http_server {
    uv_loop_t *loop;
    http_limits lim;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    uv_tcp_t listener;
    bool listener_open, closing;
    http__route routes[HTTP_ROUTES_MAX];
    size_t n_routes;
    http__conn *conns; /* the ones h2o serves, newest first */
    unsigned evicting; /* of them, shut down to make room and not closed yet */
    http_stats stats;
};

static void http__unref_timeout(h2o_timeout_t *t)
{
    uv_unref((uv_handle_t *)&t->_backend.timer);
}

static int http__on_req(h2o_handler_t *self, h2o_req_t *req);
static void http__send(http_server *s, h2o_req_t *req, int status, http_response *rs);

http_server *http_new(uv_loop_t *loop, const http_limits *lim)
{
    http_server *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    if (lim)
        s->lim = *lim;
    if (!s->lim.max_conns)
        s->lim.max_conns = HTTP_DEFAULT_CONNS;
    if (!s->lim.idle_ms)
        s->lim.idle_ms = HTTP_DEFAULT_IDLE_MS;
    if (!s->lim.max_head)
        s->lim.max_head = HTTP_DEFAULT_HEAD;
    if (!s->lim.max_body)
        s->lim.max_body = HTTP_DEFAULT_BODY;

    h2o_config_init(&s->conf);
    s->conf.server_name = h2o_iovec_init(H2O_STRLIT("jazarid"));
    s->conf.max_request_entity_size = s->lim.max_body;
    /* h2o's request timeout is the time to read a request's head, and the
     * time a kept-alive connection may wait for its next one. */
    s->conf.http1.req_timeout = s->lim.idle_ms;
    s->conf.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host = h2o_config_register_host(&s->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    http__handler *h = (http__handler *)h2o_create_handler(path, sizeof *h);
    h->super.on_req = http__on_req;
    h->s = s;

    h2o_context_init(&s->ctx, loop, &s->conf);
    /* The queue's first member is its uv_async_t in h2o's libuv build. */
    uv_unref((uv_handle_t *)s->ctx.queue);
    http__unref_timeout(&s->ctx.zero_timeout);
    http__unref_timeout(&s->ctx.one_sec_timeout);
    http__unref_timeout(&s->ctx.hundred_ms_timeout);
    http__unref_timeout(&s->ctx.handshake_timeout);
    http__unref_timeout(&s->ctx.http1.req_timeout);
    http__unref_timeout(&s->ctx.http2.idle_timeout);
    http__unref_timeout(&s->ctx.http2.graceful_shutdown_timeout);
    http__unref_timeout(&s->ctx.proxy.io_timeout);

    s->accept.ctx = &s->ctx;
    s->accept.hosts = s->conf.hosts;
    return s;
}

int http_route(http_server *s, const char *path, http_handler fn, void *arg)
{
    if (s->n_routes == HTTP_ROUTES_MAX || path[0] != '/' || strlen(path) >= HTTP_PATH_MAX)
        return -1;
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            return -1;
    http__route *r = &s->routes[s->n_routes++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->len = strlen(path);
    r->prefix = r->len > 1 && path[r->len - 1] == '/';
    r->fn = fn;
    r->arg = arg;
    return 0;
}

/* --- requests ------------------------------------------------------------------------ */

/* flags: H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION (a head too large is not
 * worth reading the next one after), H2O_SEND_ERROR_KEEP_HEADERS. */
static void http__error(http_server *s, h2o_req_t *req, int status, const char *reason, const char *body,
                        int flags)
{
    s->stats.rejected++;
    h2o_send_error_generic(req, status, reason, body, flags);
}

/* The bytes of the request's head as received, near enough: h2o accepts a
 * head of up to H2O_MAX_REQLEN (about 400 KiB); ours is smaller. */
static size_t http__head_size(const h2o_req_t *req)
{
    size_t n = req->input.method.len + req->input.path.len + 12;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

static int http__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_server *s = ((http__handler *)self)->s;
    if (http__head_size(req) > s->lim.max_head) {
        http__error(s, req, 431, "Request Header Fields Too Large", "request header fields too large\n",
                    H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
        return 0;
    }
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (!head && !h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("GET"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
        http__error(s, req, 405, "Method Not Allowed", "only GET and HEAD are served here\n",
                    H2O_SEND_ERROR_KEEP_HEADERS);
        return 0;
    }
    /* The path without its query ("/metrics?x" is /metrics), normalized
     * by h2o ("/a/../metrics" too): an exact route, else the longest
     * prefix. */
    const h2o_iovec_t p = req->path_normalized;
    const http__route *r = NULL;
    for (size_t i = 0; i < s->n_routes; i++) {
        const http__route *t = &s->routes[i];
        bool exact = !t->prefix && t->len == p.len && memcmp(t->path, p.base, p.len) == 0;
        bool under = t->prefix && p.len > t->len && memcmp(t->path, p.base, t->len) == 0;
        if (exact) {
            r = t;
            break;
        }
        if (under && (!r || t->len > r->len))
            r = t;
    }
    if (!r) {
        http__error(s, req, 404, "Not Found", "no such page\n", 0);
        return 0;
    }
    http__ctx cx = {s, req};
    http_request rq = {.path = p.base, .path_len = p.len, .priv = &cx};
    rq.rest = r->prefix ? p.base + r->len : "";
    rq.rest_len = r->prefix ? p.len - r->len : 0;
    if (req->query_at != SIZE_MAX && req->query_at < req->path.len) {
        rq.query = req->path.base + req->query_at + 1;
        rq.query_len = req->path.len - req->query_at - 1;
    }
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (at >= 0) {
        rq.authorization = req->headers.entries[at].value.base;
        rq.authorization_len = req->headers.entries[at].value.len;
    }
    http_response rs = {.body = BUF_INIT};
    int status = r->fn(r->arg, &rq, &rs);
    s->stats.requests++;
    if (status != HTTP_LATER)
        http__send(s, req, status, &rs);
    return 0;
}

static const char *http__reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* The answer, with the headers every one carries; frees rs's body. */
static void http__send(http_server *s, h2o_req_t *req, int status, http_response *rs)
{
    (void)s;
    const char *type = rs->content_type ? rs->content_type : "text/plain; charset=utf-8";
    req->res.status = status;
    req->res.reason = http__reason(status);
    req->res.content_length = rs->body.len;
    h2o_mem_pool_t *pool = &req->pool;
    h2o_add_header(pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    if (rs->cache)
        h2o_add_header(pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("private, max-age=3600"));
    else
        h2o_add_header(pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header_by_str(pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("no-referrer"));
    if (rs->page) {
        /* The page's own script and style files only: nothing inline,
         * nothing from elsewhere, never in another site's frame. */
        h2o_add_header_by_str(pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                              H2O_STRLIT("default-src 'none'; script-src 'self'; style-src 'self'; "
                                         "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                                         "form-action 'none'; frame-ancestors 'none'"));
        h2o_add_header_by_str(pool, &req->res.headers, H2O_STRLIT("x-frame-options"), 0, NULL,
                              H2O_STRLIT("DENY"));
    }
    /* h2o copies the body into the request's pool (and sends none for HEAD). */
    h2o_send_inline(req, rs->body.data ? rs->body.data : "", rs->body.len);
    buf_free(&rs->body);
}

static void http__later_gone(void *p)
{
    http__later_slot *slot = p;
    if (slot->l)
        slot->l->req = NULL;
}

http_later *http_defer(const http_request *rq)
{
    const http__ctx *cx = rq->priv;
    h2o_req_t *req = cx->req;
    http_later *l = xcalloc(1, sizeof *l);
    l->req = req;
    l->s = cx->s;
    http__later_slot *slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, http__later_gone);
    slot->l = l;
    l->slot = slot;
    return l;
}

void http_answer(http_later *l, int status, http_response *rs)
{
    if (l->req) {
        l->slot->l = NULL; /* the pool's block outlives l */
        http__send(l->s, l->req, status, rs);
    } else {
        buf_free(&rs->body);
    }
    free(l);
}

static int http__hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int http_query_get(const http_request *rq, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *q = rq->query, *end = rq->query ? rq->query + rq->query_len : NULL;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - q) == nlen && memcmp(q, name, nlen) == 0) {
            size_t n = 0;
            for (const char *v = eq ? eq + 1 : stop; v < stop; v++) {
                int ch = (unsigned char)*v;
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%') {
                    int hi = v + 2 < stop ? http__hex(v[1]) : -1, lo = v + 2 < stop ? http__hex(v[2]) : -1;
                    if (hi < 0 || lo < 0 || hi * 16 + lo == 0)
                        return -1;
                    ch = hi * 16 + lo;
                    v += 2;
                }
                if (n + 1 >= outlen)
                    return -1;
                out[n++] = (char)ch;
            }
            out[n] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* --- connections --------------------------------------------------------------------- */

static void http__conn_closed(uv_handle_t *h)
{
    http__conn *c = (http__conn *)h;
    http_server *s = c->s;
    if (c->counted) {
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        s->stats.open--;
        if (c->evicted)
            s->evicting--;
    }
    free(c);
}

static void http__on_connection(uv_stream_t *server, int status)
{
    http_server *s = server->data;
    if (status < 0) {
        log_warn("http", "accept: %s", uv_strerror(status));
        return;
    }
    http__conn *c = xcalloc(1, sizeof *c);
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, http__conn_closed);
        return;
    }
    if (s->stats.open - s->evicting >= s->lim.max_conns && s->evicting < s->lim.max_conns && !s->closing) {
        /* At the cap, the oldest makes room, as on the daemon's own port:
         * else whoever holds every slot (idle, or sending a head a byte at
         * a time until the idle timeout) keeps Prometheus and everyone else
         * out for as long as they like. h2o closes it as it sees its socket
         * shut down; those closing count apart, up to a cap of their own. */
        http__conn *old = s->conns;
        while (old && old->next)
            old = old->next;
        while (old && old->evicted)
            old = old->prev;
        uv_os_fd_t fd;
        if (old && uv_fileno((uv_handle_t *)&old->tcp, &fd) == 0) {
            shutdown(fd, SHUT_RDWR);
            old->evicted = true;
            s->evicting++;
            s->stats.refused++;
        }
    }
    if (s->closing || s->stats.open - s->evicting >= s->lim.max_conns) {
        /* Over the cap (with as many closing): closed unread, at no cost
         * beyond the accept. */
        s->stats.refused++;
        uv_close((uv_handle_t *)&c->tcp, http__conn_closed);
        return;
    }
    c->counted = true;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->stats.open++;
    s->stats.accepted++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, http__conn_closed);
    h2o_accept(&s->accept, sock);
}

int http_listen(http_server *s, const char *host, uint16_t port, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
    if (rc == 0) {
        uv_tcp_init(s->loop, &s->listener);
        s->listener.data = s;
        s->listener_open = true;
        rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&s->listener, 128, http__on_connection);
    }
    if (rc != 0) {
        snprintf(err, errlen, "http_listen %s%s%s:%u: %s", strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", port, uv_strerror(rc));
        return rc;
    }
    log_info("http", "listening on http://%s%s%s:%u/ (%zu pages)", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port, s->n_routes);
    return 0;
}

void http_close(http_server *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    /* No more keep-alive: a response in flight ends its connection. */
    s->ctx.shutdown_requested = 1;
    if (s->listener_open)
        uv_close((uv_handle_t *)&s->listener, NULL);
    /* The others end as h2o sees their sockets shut down. */
    for (http__conn *c = s->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
}

void http_free(http_server *s)
{
    if (!s)
        return;
    if (s->conns)
        log_error("http", "%u connections still open at exit", s->stats.open);
    h2o_context_dispose(&s->ctx);
    h2o_config_dispose(&s->conf);
    free(s);
}

void http_get_stats(const http_server *s, http_stats *out)
{
    *out = s->stats;
}

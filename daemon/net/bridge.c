/* bridge.c - TLS to a socketpair, for libraft's streams. */
#include "bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/log.h"
#include "net.h"
#include "sec.h"

#define BRIDGE_READ_BUF (64u << 10)

struct bridge {
    bridge_set *set;
    uv_stream_t *tcp; /* the network side, through t */
    tls *t;
    uv_pipe_t *ours;        /* our end of the socketpair */
    size_t to_tcp, to_ours; /* bytes queued on each side */
    bool tcp_paused, ours_paused;
    bool closing;
    int open; /* handles not yet closed */
    char rbuf[BRIDGE_READ_BUF];
    bridge *prev, *next;
};

void bridge_set_init(bridge_set *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
}

unsigned bridge_rtt_bound_us(const bridge_set *s)
{
    unsigned worst = 0;
    for (const bridge *b = s->head; b; b = b->next) {
        unsigned bound = b->closing ? 0 : net_tcp_rtt_bound_us((const uv_handle_t *)b->tcp);
        if (bound > worst)
            worst = bound;
    }
    return worst;
}

static void bridge__maybe_empty(bridge_set *s)
{
    if (s->closing && !s->head && s->on_empty) {
        void (*cb)(bridge_set *) = s->on_empty;
        s->on_empty = NULL;
        cb(s);
    }
}

static void bridge__on_closed(uv_handle_t *h)
{
    bridge *b = h->data;
    free(h);
    if (--b->open > 0)
        return;
    bridge_set *s = b->set;
    if (b->prev)
        b->prev->next = b->next;
    else
        s->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    tls_free(b->t);
    free(b);
    bridge__maybe_empty(s);
}

static void bridge__close(bridge *b, const char *why)
{
    if (b->closing)
        return;
    b->closing = true;
    if (why)
        log_debug("raft", "Raft stream closed: %s", why);
    uv_close((uv_handle_t *)b->tcp, bridge__on_closed);
    uv_close((uv_handle_t *)b->ours, bridge__on_closed);
}

static void bridge__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    bridge *b = h->data;
    (void)suggested;
    out->base = b->rbuf;
    out->len = sizeof b->rbuf;
}

static void bridge__on_tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *ub);
static void bridge__on_ours_read(uv_stream_t *st, ssize_t n, const uv_buf_t *ub);

/* Bytes written to the network: libraft's side may go on when drained. */
static void bridge__on_tcp_written(void *arg, size_t len, int status)
{
    bridge *b = arg;
    b->to_tcp -= len;
    if (b->closing)
        return;
    if (status < 0) {
        bridge__close(b, uv_strerror(status));
        return;
    }
    if (b->ours_paused && b->to_tcp < BRIDGE_MAX_QUEUED / 2) {
        b->ours_paused = false;
        uv_read_start((uv_stream_t *)b->ours, bridge__alloc, bridge__on_ours_read);
    }
}

static void bridge__on_ours_written(void *arg, size_t len, int status)
{
    bridge *b = arg;
    b->to_ours -= len;
    if (b->closing)
        return;
    if (status < 0) {
        bridge__close(b, uv_strerror(status));
        return;
    }
    if (b->tcp_paused && b->to_ours < BRIDGE_MAX_QUEUED / 2) {
        b->tcp_paused = false;
        uv_read_start(b->tcp, bridge__alloc, bridge__on_tcp_read);
    }
}

static void bridge__to_ours(bridge *b, const void *p, size_t n)
{
    long rc = sec_send((uv_stream_t *)b->ours, NULL, p, n, bridge__on_ours_written, b);
    if (rc < 0) {
        bridge__close(b, uv_strerror((int)rc));
        return;
    }
    b->to_ours += (size_t)rc;
    if (b->to_ours >= BRIDGE_MAX_QUEUED && !b->tcp_paused) {
        b->tcp_paused = true;
        uv_read_stop(b->tcp);
    }
}

static void bridge__on_tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *ub)
{
    bridge *b = st->data;
    if (n < 0) {
        bridge__close(b, n == UV_EOF ? "the peer closed" : uv_strerror((int)n));
        return;
    }
    buf plain = BUF_INIT;
    int rc = sec_recv(st, b->t, ub->base, (size_t)n, &plain, bridge__on_tcp_written, b);
    if (plain.len > 0)
        bridge__to_ours(b, plain.data, plain.len);
    buf_free(&plain);
    if (rc != 0)
        bridge__close(b, rc > 0 ? "the peer ended its TLS session" : tls_error(b->t));
}

static void bridge__on_ours_read(uv_stream_t *st, ssize_t n, const uv_buf_t *ub)
{
    bridge *b = st->data;
    if (n < 0) {
        bridge__close(b, n == UV_EOF ? "libraft closed" : uv_strerror((int)n));
        return;
    }
    long rc = sec_send(b->tcp, b->t, ub->base, (size_t)n, bridge__on_tcp_written, b);
    if (rc < 0) {
        bridge__close(b, b->t ? tls_error(b->t) : uv_strerror((int)rc));
        return;
    }
    b->to_tcp += (size_t)rc;
    if (b->to_tcp >= BRIDGE_MAX_QUEUED && !b->ours_paused) {
        b->ours_paused = true;
        uv_read_stop((uv_stream_t *)b->ours);
    }
}

static void bridge__free_early(uv_handle_t *h)
{
    free(h);
}

uv_stream_t *bridge_start(bridge_set *s, uv_stream_t *tcp, tls *t, const void *rest, size_t n, char *err,
                          size_t errlen)
{
    int fds[2];
    uv_pipe_t *theirs = NULL;
    if (s->closing || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        snprintf(err, errlen, "cannot bridge a Raft stream: %s", s->closing ? "stopping" : strerror(errno));
        tcp->data = NULL;
        uv_close((uv_handle_t *)tcp, bridge__free_early);
        tls_free(t);
        return NULL;
    }
    bridge *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->ours = malloc(sizeof *b->ours);
    theirs = malloc(sizeof *theirs);
    if (!b->ours || !theirs)
        abort();
    b->set = s;
    b->tcp = tcp;
    b->t = t;
    b->open = 2;
    uv_pipe_init(s->loop, b->ours, 0);
    uv_pipe_init(s->loop, theirs, 0);
    uv_pipe_open(b->ours, fds[0]);
    uv_pipe_open(theirs, fds[1]);
    tcp->data = b;
    b->ours->data = b;
    theirs->data = NULL;
    b->next = s->head;
    if (s->head)
        s->head->prev = b;
    s->head = b;
    if (n > 0)
        bridge__to_ours(b, rest, n);
    /* Plaintext the engine already decrypted with the hello. */
    if (t && !b->closing) {
        buf plain = BUF_INIT;
        int rc = tls_step(t, &plain);
        if (plain.len > 0)
            bridge__to_ours(b, plain.data, plain.len);
        buf_free(&plain);
        if (rc != 0)
            bridge__close(b, rc > 0 ? "the peer ended its TLS session" : tls_error(t));
    }
    if (!b->closing) {
        uv_read_start(tcp, bridge__alloc, bridge__on_tcp_read);
        uv_read_start((uv_stream_t *)b->ours, bridge__alloc, bridge__on_ours_read);
    }
    return (uv_stream_t *)theirs;
}

void bridge_close_all(bridge_set *s, void (*on_empty)(bridge_set *s))
{
    s->closing = true;
    s->on_empty = on_empty;
    for (bridge *b = s->head; b; b = b->next)
        bridge__close(b, NULL);
    bridge__maybe_empty(s);
}

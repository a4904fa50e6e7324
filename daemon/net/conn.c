/* conn.c - framed envelopes on one libuv stream. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "net.h"

#define NET_READ_BUF (64u << 10)

static void net__on_closed(uv_handle_t *h)
{
    net_conn *c = h->data;
    free(h);
    tls_free(c->tls);
    c->tls = NULL;
    c->gone(c);
}

void net_conn_close(net_conn *c, const char *fmt, ...)
{
    if (c->closing)
        return;
    c->closing = true;
    if (fmt) {
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        log_warn("net", "closing connection from %s: %s", c->peer, why);
    }
    uv_read_stop(&c->h->stream);
    uv_close(&c->h->handle, net__on_closed);
}

/* Gives the stream away: the connection ends here without closing it. */
static void net__detach(net_conn *c)
{
    uv_stream_t *stream = &c->h->stream;
    net_detach_cb cb = c->detach_cb;
    void *arg = c->detach_arg;
    tls *t = c->tls;
    buf rest = BUF_INIT;
    buf_append(&rest, c->reader.in.data + c->reader.pos, wire_reader_pending(&c->reader));
    c->tls = NULL;
    stream->data = NULL;
    c->gone(c);
    cb(stream, t, &rest, arg);
    buf_free(&rest);
}

static void net__on_write(void *arg, size_t len, int status)
{
    net_conn *c = arg;
    c->pending_write -= len;
    if (status < 0 && status != UV_ECANCELED)
        net_conn_close(c, "write failed: %s", uv_strerror(status));
    else if (c->close_after_write && c->pending_write == 0)
        net_conn_close(c, NULL);
    else if (c->detach_cb && c->pending_write == 0 && !c->closing)
        net__detach(c);
}

int net_conn_send(net_conn *c, const Jazari__Envelope *env)
{
    if (c->closing)
        return -1;
    buf b = BUF_INIT;
    wire_pack(env, &b);
    if (c->pending_write + b.len > NET_MAX_PENDING_WRITE) {
        buf_free(&b);
        net_conn_close(c, "peer does not read its replies (%zu bytes pending)", c->pending_write);
        return -1;
    }
    long rc = sec_send(&c->h->stream, c->tls, b.data, b.len, net__on_write, c);
    buf_free(&b);
    if (rc < 0) {
        net_conn_close(c, "write failed: %s", c->tls ? tls_error(c->tls) : uv_strerror((int)rc));
        return -1;
    }
    c->pending_write += (size_t)rc;
    return 0;
}

void net_conn_send_and_close(net_conn *c, const Jazari__Envelope *env)
{
    if (net_conn_send(c, env) == 0) {
        c->close_after_write = true;
        uv_read_stop(&c->h->stream);
    }
}

void net_conn_send_and_detach(net_conn *c, const Jazari__Envelope *env, net_detach_cb cb, void *arg)
{
    uv_read_stop(&c->h->stream);
    c->detach_cb = cb;
    c->detach_arg = arg;
    net_conn_send(c, env);
}

/* The connection's incomplete frame, in the server's budget and clock. */
static void net__account(net_conn *c)
{
    net_server *s = c->server;
    size_t pending = c->closing ? 0 : wire_reader_pending(&c->reader);
    s->buffered = s->buffered - c->buffered + pending;
    c->buffered = pending;
    if (pending == 0)
        c->frame_from_ms = 0;
    else if (!c->frame_from_ms)
        c->frame_from_ms = uv_now(s->loop);
}

/* Handshake bytes: not counted against the peer's replies. */
static void net__on_write_quiet(void *arg, size_t len, int status)
{
    net_conn *c = arg;
    (void)len;
    if (status < 0 && status != UV_ECANCELED)
        net_conn_close(c, "write failed: %s", uv_strerror(status));
}

static void net__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    net_conn *c = h->data;
    (void)suggested;
    /* Reads are handled one at a time on the loop thread, and each is copied
     * into the connection's reader: one buffer serves every connection. */
    out->base = c->server->read_buf;
    out->len = NET_READ_BUF;
}

static void net__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    net_conn *c = st->data;
    if (nread == UV_EOF) {
        size_t pending = wire_reader_pending(&c->reader);
        if (pending > 0)
            net_conn_close(c, "truncated frame: the stream ended after %zu bytes of a frame of %zu", pending,
                           wire_reader_expected(&c->reader) + WIRE_HEADER_SIZE);
        else
            net_conn_close(c, NULL);
        return;
    }
    if (nread < 0) {
        net_conn_close(c, "read failed: %s", uv_strerror((int)nread));
        return;
    }
    buf plain = BUF_INIT;
    bool was_ready = !c->tls || tls_ready(c->tls);
    int rc = sec_recv(st, c->tls, b->base, (size_t)nread, &plain, net__on_write_quiet, c);
    if (rc != 0) {
        buf_free(&plain);
        if (rc > 0)
            net_conn_close(c, NULL);
        else
            net_conn_close(c, "%s", tls_error(c->tls));
        return;
    }
    net_server *s = c->server;
    if (!was_ready && tls_ready(c->tls)) {
        if (c->unproven && tls_peer(c->tls)) {
            c->unproven = false;
            s->n_unproven--;
        }
        if (s->handlers.on_secure && !s->handlers.on_secure(c, s->handlers.data)) {
            buf_free(&plain);
            return;
        }
    }
    wire_reader_feed(&c->reader, plain.data, plain.len);
    buf_free(&plain);
    /* The bytes of incomplete frames count against one budget. */
    size_t pending = wire_reader_pending(&c->reader);
    if (pending > c->buffered && s->limits.buffered_max &&
        s->buffered + (pending - c->buffered) > s->limits.buffered_max) {
        net_conn_close(c, "the daemon's budget for incomplete frames (%llu bytes) is spent",
                       (unsigned long long)s->limits.buffered_max);
        return;
    }
    while (!c->closing && !c->close_after_write && !c->detach_cb) {
        const uint8_t *payload;
        size_t len;
        wire_status ws = wire_reader_next(&c->reader, &payload, &len);
        if (ws == WIRE_NEED_MORE)
            break;
        if (ws == WIRE_TOO_LARGE) {
            net_conn_close(c, "frame of %zu bytes is over the maximum of %zu (setting max_frame)", len,
                           c->reader.max_frame);
            return;
        }
        char err[160];
        wire_msg *m = wire_unpack(payload, len, err, sizeof err);
        if (!m) {
            net_conn_close(c, "frame %llu: %s", (unsigned long long)c->frames + 1, err);
            return;
        }
        c->frames++;
        c->last_frame_ms = uv_now(s->loop);
        if (c->refusal) {
            /* Refused for a limit (server.c): the request hears why. */
            wire_reply r;
            wire_reply_init(&r, wire_msg_env(m)->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, "%s",
                            c->refusal);
            wire_msg_free(m);
            net_conn_send_and_close(c, &r.env);
            break;
        }
        s->handlers.on_message(c, m, s->handlers.data);
    }
    net__account(c);
}

/* Starts serving a connection accepted on server s (h already accepted). */
void net__conn_start(net_conn *c);
void net__conn_start(net_conn *c)
{
    wire_reader_init(&c->reader, c->server->max_frame);
    if (c->kind == NET_TCP)
        c->tls = sec_engine(c->server->sec, true);
    c->h->handle.data = c;
    int rc = uv_read_start(&c->h->stream, net__alloc, net__on_read);
    if (rc < 0)
        net_conn_close(c, "cannot read: %s", uv_strerror(rc));
}

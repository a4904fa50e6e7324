/* sec.c - bytes on a libuv stream, through TLS or as they are. */
#include "sec.h"

#include <stdlib.h>
#include <string.h>

typedef struct sec__wreq {
    uv_write_t req;
    sec_written_cb cb;
    void *arg;
    size_t len;
    char data[];
} sec__wreq;

tls *sec_engine(const sec_ctx *x, bool server)
{
    tls_ctx *c = x ? (server ? x->server : x->client) : NULL;
    return c ? tls_new(c) : NULL;
}

static void sec__on_write(uv_write_t *req, int status)
{
    sec__wreq *w = (sec__wreq *)req;
    if (w->cb)
        w->cb(w->arg, w->len, status);
    free(w);
}

static long sec__write(uv_stream_t *s, const void *p, size_t n, sec_written_cb cb, void *arg)
{
    if (n == 0)
        return 0;
    sec__wreq *w = malloc(sizeof *w + n);
    if (!w)
        abort();
    memcpy(w->data, p, n);
    w->cb = cb;
    w->arg = arg;
    w->len = n;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int rc = uv_write(&w->req, s, &b, 1, sec__on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    return (long)n;
}

/* Writes what the engine holds for the peer. */
static long sec__flush(uv_stream_t *s, tls *t, sec_written_cb cb, void *arg)
{
    if (tls_pending(t) == 0)
        return 0;
    buf b = BUF_INIT;
    tls_take(t, &b);
    long rc = sec__write(s, b.data, b.len, cb, arg);
    buf_free(&b);
    return rc;
}

long sec_send(uv_stream_t *s, tls *t, const void *p, size_t n, sec_written_cb cb, void *arg)
{
    if (!t)
        return sec__write(s, p, n, cb, arg);
    if (tls_write(t, p, n) != 0)
        return UV_EPROTO;
    return sec__flush(s, t, cb, arg);
}

int sec_recv(uv_stream_t *s, tls *t, const void *p, size_t n, buf *plain, sec_written_cb cb, void *arg)
{
    if (!t) {
        buf_append(plain, p, n);
        return 0;
    }
    tls_feed(t, p, n);
    int rc = tls_step(t, plain);
    /* Handshake messages, and an alert when it failed, go out either way. */
    long w = sec__flush(s, t, cb, arg);
    if (w < 0 && rc == 0)
        return -1;
    return rc;
}

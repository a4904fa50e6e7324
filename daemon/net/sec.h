/* sec.h - bytes on a libuv stream through TLS (common/tls.h), or as they
 * are when the network runs without TLS (the benchmark's comparison only).
 * One place for the two directions, used by the daemon's connections
 * (conn.c), the uplink, Raft's dials and the Raft bridge. */
#ifndef JZ_SEC_H
#define JZ_SEC_H

#include <stddef.h>
#include <uv.h>

#include "../../common/buf.h"
#include "../../common/tls.h"

/* The contexts every connection of this daemon uses, swapped when the
 * certificate is renewed (connections made before keep theirs). Both NULL:
 * plaintext (JAZARI_TEST_PLAINTEXT, for the benchmark's comparison). */
typedef struct sec_ctx {
    tls_ctx *server; /* for connections we accept */
    tls_ctx *client; /* for connections we dial */
} sec_ctx;

/* Called once the bytes of one sec_send (len of them on the socket) are
 * written or failed (status < 0). */
typedef void (*sec_written_cb)(void *arg, size_t len, int status);

/* A new engine for a connection (NULL when plaintext). */
tls *sec_engine(const sec_ctx *x, bool server);

/* Sends n bytes of plaintext on s, through t when set. Returns the bytes
 * queued on the socket (cb is then called once), 0 if nothing had to be
 * written yet, or a libuv error (< 0; cb is not called). */
long sec_send(uv_stream_t *s, tls *t, const void *p, size_t n, sec_written_cb cb, void *arg);
/* n bytes arrived on s: appends the plaintext to plain and writes what the
 * handshake needs (as sec_send, with cb). 0: fine; 1: the peer closed its
 * TLS session; -1: failed (tls_error(t) says why). */
int sec_recv(uv_stream_t *s, tls *t, const void *p, size_t n, buf *plain, sec_written_cb cb, void *arg);

#endif

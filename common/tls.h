/* tls.h - TLS 1.3 on memory buffers (OpenSSL memory BIOs): the caller moves
 * ciphertext between the socket and the engine, so one engine serves the
 * daemon's libuv streams and the client's blocking socket alike.
 *
 * Trust: a context holds the network's CA. A server context asks every peer
 * for a certificate and refuses one that the CA did not sign (or that is
 * expired or not yet valid); a peer with none may finish the handshake and
 * is then anonymous (tls_peer returns NULL): the daemon lets such a peer
 * only ask to join. A client context checks the server against the CA, or,
 * with no CA yet (a daemon joining), against the CA hash its token pins. */
#ifndef JZ_TLS_H
#define JZ_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "pki.h"

typedef struct tls_ctx tls_ctx;
typedef struct tls tls;

/* A context. ca: the network's CA (NULL for a joiner, which pins pin_hash
 * instead). cert and key: ours (NULL for an anonymous client). The context
 * takes its own references. NULL with err. Free with tls_ctx_free (live
 * engines made from it keep what they need). */
tls_ctx *tls_ctx_new(bool server, X509 *ca, X509 *cert, EVP_PKEY *key, const char *pin_hash, char *err,
                     size_t errlen);
void tls_ctx_free(tls_ctx *c);

/* An engine for one connection. */
tls *tls_new(tls_ctx *c);
void tls_free(tls *t);

/* Ciphertext from the peer. */
void tls_feed(tls *t, const void *p, size_t n);
/* Moves the handshake on and appends any plaintext to plain. 0: fine (more
 * may come); 1: the peer closed the TLS session; -1: failed (tls_error says
 * why; send tls_take's alert if any, then close). */
int tls_step(tls *t, buf *plain);
/* Plaintext to the peer (held until the handshake is done). 0, or -1 if the
 * engine failed. */
int tls_write(tls *t, const void *p, size_t n);
/* Appends the ciphertext waiting to be sent to out; returns how much. */
size_t tls_take(tls *t, buf *out);
/* Bytes of ciphertext waiting in the engine (for back-pressure). */
size_t tls_pending(const tls *t);

bool tls_ready(const tls *t);
/* Who the peer is, once ready; NULL for an anonymous peer. */
const pki_id *tls_peer(const tls *t);
/* A joiner's engine: the CA the server proved (pinned by hash), once ready.
 * The caller takes a reference (X509_free). */
X509 *tls_pinned_ca(const tls *t);
const char *tls_error(const tls *t);

#endif

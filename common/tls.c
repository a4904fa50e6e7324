/* tls.c - TLS 1.3 on memory BIOs. */
#include "tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_ctx {
    SSL_CTX *ssl;
    bool server;
    char pin[PKI_HASH_HEX + 1]; /* "" unless a joiner */
};

struct tls {
    SSL *ssl;
    BIO *in, *out; /* owned by ssl */
    bool server, ready, failed;
    char pin[PKI_HASH_HEX + 1];
    bool have_peer;
    pki_id peer;
    X509 *pinned; /* the CA a joiner found */
    buf early;    /* plaintext written before the handshake ended */
    char err[256];
};

/* Verification as OpenSSL does it, except for a joiner, which has no CA yet
 * and checks the chain itself once the handshake is done. */
static int tls__verify_pinned(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

tls_ctx *tls_ctx_new(bool server, X509 *ca, X509 *cert, EVP_PKEY *key, const char *pin_hash, char *err,
                     size_t errlen)
{
    char e[200];
    tls_ctx *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->server = server;
    c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c->ssl)
        goto fail;
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_3_VERSION);
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    /* Connections are long-lived, and clients do not keep sessions. */
    SSL_CTX_set_num_tickets(c->ssl, 0);
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
    if (cert && key) {
        if (SSL_CTX_use_certificate(c->ssl, cert) != 1 || SSL_CTX_use_PrivateKey(c->ssl, key) != 1 ||
            SSL_CTX_check_private_key(c->ssl) != 1) {
            snprintf(err, errlen, "our certificate and key do not go together: %s", pki_ssl_error(e, sizeof e));
            goto fail_quiet;
        }
        /* The CA goes with our certificate: a joiner checks it against its pin. */
        if (ca && SSL_CTX_add1_chain_cert(c->ssl, ca) != 1)
            goto fail;
    }
    if (ca) {
        X509_STORE *st = SSL_CTX_get_cert_store(c->ssl);
        if (X509_STORE_add_cert(st, ca) != 1)
            goto fail;
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(c->ssl, 2);
    } else if (!server && pin_hash && strlen(pin_hash) == PKI_HASH_HEX) {
        snprintf(c->pin, sizeof c->pin, "%s", pin_hash);
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, tls__verify_pinned);
    } else {
        snprintf(err, errlen, "a TLS context needs the network's CA (or, to join, its hash)");
        goto fail_quiet;
    }
    return c;
fail:
    snprintf(err, errlen, "cannot set up TLS: %s", pki_ssl_error(e, sizeof e));
fail_quiet:
    tls_ctx_free(c);
    return NULL;
}

void tls_ctx_free(tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    free(c);
}

tls *tls_new(tls_ctx *c)
{
    tls *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->ssl = SSL_new(c->ssl);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out)
        abort();
    BIO_set_mem_eof_return(t->in, -1); /* empty means "more to come", not EOF */
    SSL_set_bio(t->ssl, t->in, t->out);
    t->server = c->server;
    snprintf(t->pin, sizeof t->pin, "%s", c->pin);
    if (c->server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return t;
}

void tls_free(tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    X509_free(t->pinned);
    buf_free(&t->early);
    free(t);
}

void tls_feed(tls *t, const void *p, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = BIO_write(t->in, p, chunk);
        if (w <= 0)
            abort();
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

static int tls__fail(tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tls__fail(tls *t, const char *fmt, ...)
{
    va_list ap;
    t->failed = true;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Why verification failed, in words an admin can act on. */
static const char *tls__verify_words(long v)
{
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return "its certificate is not from this network's CA (another network, or forged)";
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "its certificate has expired (renew it: rejoin with a token), or the clocks differ (check NTP)";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "its certificate is not valid yet: the clocks differ (check NTP)";
    default:
        return X509_verify_cert_error_string(v);
    }
}

/* The joiner's check: the server's chain holds a CA whose hash is the pin,
 * and the server's certificate was signed by it and is valid now. */
static int tls__check_pin(tls *t)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
    X509 *leaf = SSL_get0_peer_certificate(t->ssl);
    if (!leaf || !chain)
        return tls__fail(t, "%s", "the server sent no certificate");
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        char h[PKI_HASH_HEX + 1];
        if (pki_cert_hash(c, h) != 0 || !pki_equal(h, t->pin) || !pki_signed_by(c, c))
            continue;
        if (!pki_signed_by(leaf, c))
            break;
        time_t now = time(NULL);
        if (X509_cmp_time(X509_get0_notBefore(leaf), &now) > 0 || X509_cmp_time(X509_get0_notAfter(leaf), &now) < 0)
            return tls__fail(t, "%s", "the server's certificate is not valid now: the clocks differ (check NTP)");
        X509_up_ref(c);
        t->pinned = c;
        return 0;
    }
    return tls__fail(t, "%s",
                     "the server's CA is not the one the token names: this is not the network the token is for "
                     "(or someone is in the middle)");
}

static int tls__handshake_done(tls *t)
{
    if (t->pin[0] && tls__check_pin(t) != 0)
        return -1;
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (peer) {
        char e[200];
        if (pki_cert_id(peer, &t->peer, e, sizeof e) != 0)
            return tls__fail(t, "%s", e);
        t->have_peer = true;
    } else if (!t->server) {
        return tls__fail(t, "%s", "the server sent no certificate");
    }
    t->ready = true;
    if (t->early.len) {
        int w = SSL_write(t->ssl, t->early.data, (int)t->early.len);
        buf_free(&t->early);
        if (w <= 0)
            return tls__fail(t, "%s", "cannot write to the TLS session");
    }
    return 0;
}

int tls_step(tls *t, buf *plain)
{
    if (t->failed)
        return -1;
    if (!t->ready) {
        ERR_clear_error();
        int rc = SSL_do_handshake(t->ssl);
        if (rc != 1) {
            int e = SSL_get_error(t->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            long v = SSL_get_verify_result(t->ssl);
            if (v != X509_V_OK)
                return tls__fail(t, "TLS handshake refused: %s", tls__verify_words(v));
            char es[200];
            pki_ssl_error(es, sizeof es);
            if (strstr(es, "peer did not return a certificate") || strstr(es, "certificate required"))
                return tls__fail(t, "%s", "TLS handshake refused: a certificate of this network is needed");
            if (strstr(es, "alert") && strstr(es, "certificate"))
                return tls__fail(t, "TLS handshake refused by the peer (%s): our certificate is not of its network, "
                                    "expired or revoked",
                                 es);
            if (!*es || strstr(es, "wrong version number") || strstr(es, "http request") ||
                strstr(es, "packet length too long") || strstr(es, "unexpected message"))
                return tls__fail(t, "TLS handshake failed: not TLS (a plaintext peer? this port speaks TLS only)%s%s",
                                 *es ? ": " : "", es);
            return tls__fail(t, "TLS handshake failed: %s", es);
        }
        if (tls__handshake_done(t) != 0)
            return -1;
    }
    for (;;) {
        char tmp[16384];
        ERR_clear_error();
        int n = SSL_read(t->ssl, tmp, sizeof tmp);
        if (n > 0) {
            buf_append(plain, tmp, (size_t)n);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN)
            return 1;
        char es[200];
        return tls__fail(t, "TLS session failed: %s", pki_ssl_error(es, sizeof es));
    }
}

int tls_write(tls *t, const void *p, size_t n)
{
    if (t->failed)
        return -1;
    if (!t->ready) {
        buf_append(&t->early, p, n);
        /* A client speaks first: its hello goes with the first write. */
        if (!t->server) {
            ERR_clear_error();
            SSL_do_handshake(t->ssl);
            ERR_clear_error();
        }
        return 0;
    }
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = SSL_write(t->ssl, p, chunk);
        if (w <= 0) {
            t->failed = true;
            snprintf(t->err, sizeof t->err, "cannot write to the TLS session");
            return -1;
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

size_t tls_take(tls *t, buf *out)
{
    size_t total = 0;
    for (;;) {
        size_t n = BIO_ctrl_pending(t->out);
        if (n == 0)
            return total;
        void *dst = buf_extend(out, n);
        int r = BIO_read(t->out, dst, (int)n);
        if (r <= 0) {
            out->len -= n;
            return total;
        }
        out->len -= n - (size_t)r;
        total += (size_t)r;
    }
}

size_t tls_pending(const tls *t)
{
    return BIO_ctrl_pending(t->out);
}

bool tls_ready(const tls *t)
{
    return t->ready;
}

const pki_id *tls_peer(const tls *t)
{
    return t->ready && t->have_peer ? &t->peer : NULL;
}

X509 *tls_pinned_ca(const tls *t)
{
    if (!t->pinned)
        return NULL;
    X509_up_ref(t->pinned);
    return t->pinned;
}

const char *tls_error(const tls *t)
{
    return t->err[0] ? t->err : "TLS failed";
}

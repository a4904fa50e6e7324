/* webtok.c - the dashboard's session tokens: who a browser is, since an
 * HTTP request carries no certificate.
 *
 * jz web asks a controller (over the socket or TLS, so that the daemon
 * decides who the caller is, as for any request); the controller signs
 * "user:uid:gid:role:via:expires_ms" with HMAC-SHA256 and a key that every
 * controller derives alike from the network CA's private key, which agents
 * never hold (with ":serial" when a person's credentials asked: a token
 * then lives no longer than they do, revoked or expired): any controller verifies any controller's token, an
 * agent none. A token is "jzw1.PAYLOAD.MAC" (base64url, no padding): it lasts at most WEBTOK_TTL_MAX_S and
 * cannot be revoked before then (a new CA key would void them all). Pure but for OpenSSL: no I/O. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jzd.h"

#define WEBTOK__PREFIX "jzw1."
#define WEBTOK__MAC 32

static const char webtok__alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t webtok__b64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? (uint32_t)in[i + 2] : 0);
        out[o++] = webtok__alpha[v >> 18 & 63];
        out[o++] = webtok__alpha[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = webtok__alpha[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = webtok__alpha[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* Decodes len characters into out (room for outmax); the length, or -1. */
static long webtok__unb64(const char *in, size_t len, unsigned char *out, size_t outmax)
{
    size_t o = 0;
    uint32_t v = 0;
    int bits = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const char *p = in[i] ? strchr(webtok__alpha, in[i]) : NULL;
        if (!p)
            return -1;
        v = v << 6 | (uint32_t)(p - webtok__alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outmax)
                return -1;
            out[o++] = (unsigned char)(v >> bits & 0xff);
        }
    }
    return (long)o;
}

/* The signing key: HMAC-SHA256 of a fixed label under the CA key's DER.
 * 0, or -1 when this daemon holds no CA key (an agent). */
static int webtok__key(const jzd *d, unsigned char key[WEBTOK__MAC])
{
    EVP_PKEY *ca = d->trust.ca_key;
    if (!ca)
        return -1;
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(ca, &der);
    if (n <= 0)
        return -1;
    static const char label[] = "jazari dashboard session token v1";
    unsigned int len = 0;
    unsigned char *ok = HMAC(EVP_sha256(), der, n, (const unsigned char *)label, sizeof label - 1, key, &len);
    OPENSSL_clear_free(der, (size_t)n);
    return ok && len == WEBTOK__MAC ? 0 : -1;
}

static int webtok__mac(const jzd *d, const char *payload, size_t len, unsigned char mac[WEBTOK__MAC])
{
    unsigned char key[WEBTOK__MAC];
    if (webtok__key(d, key) != 0)
        return -1;
    unsigned int n = 0;
    unsigned char *ok = HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)payload, len, mac, &n);
    OPENSSL_cleanse(key, sizeof key);
    return ok && n == WEBTOK__MAC ? 0 : -1;
}

int webtok_make(const jzd *d, const authz_who *w, int64_t expires_ms, char *out, size_t outlen)
{
    char payload[WEBTOK_PAYLOAD_MAX];
    int n = snprintf(payload, sizeof payload, "%s:%u:%u:%s:%d:%lld:%s", w->user, (unsigned)w->uid,
                     (unsigned)w->gid, authz_role_name(w->role), w->via_node ? 1 : 0, (long long)expires_ms,
                     w->serial[0] ? w->serial : "-");
    unsigned char mac[WEBTOK__MAC];
    if (n < 0 || (size_t)n >= sizeof payload || webtok__mac(d, payload, (size_t)n, mac) != 0)
        return -1;
    size_t need = sizeof WEBTOK__PREFIX + ((size_t)n + 2) / 3 * 4 + 1 + (size_t)(WEBTOK__MAC + 2) / 3 * 4 + 1;
    if (need > outlen)
        return -1;
    size_t at = (size_t)snprintf(out, outlen, "%s", WEBTOK__PREFIX);
    at += webtok__b64((const unsigned char *)payload, (size_t)n, out + at);
    out[at++] = '.';
    webtok__b64(mac, sizeof mac, out + at);
    return 0;
}

int webtok_check(const jzd *d, const char *tok, size_t len, int64_t now_ms, authz_who *w, char *why,
                 size_t whylen)
{
    memset(w, 0, sizeof *w);
    size_t pre = sizeof WEBTOK__PREFIX - 1;
    const char *dot = len > pre ? memchr(tok + pre, '.', len - pre) : NULL;
    if (len > WEBTOK_MAX || len <= pre || memcmp(tok, WEBTOK__PREFIX, pre) != 0 || !dot) {
        snprintf(why, whylen, "not a dashboard token (jz web makes one)");
        return -1;
    }
    char payload[WEBTOK_PAYLOAD_MAX];
    unsigned char mac[WEBTOK__MAC + 3], want[WEBTOK__MAC];
    long pn = webtok__unb64(tok + pre, (size_t)(dot - tok - (long)pre), (unsigned char *)payload,
                            sizeof payload - 1);
    long mn = webtok__unb64(dot + 1, len - (size_t)(dot + 1 - tok), mac, sizeof mac);
    if (pn <= 0 || mn != WEBTOK__MAC) {
        snprintf(why, whylen, "a dashboard token that does not decode");
        return -1;
    }
    if (webtok__mac(d, payload, (size_t)pn, want) != 0) {
        snprintf(why, whylen, "this daemon cannot check dashboard tokens (only controllers can)");
        return -1;
    }
    if (CRYPTO_memcmp(mac, want, WEBTOK__MAC) != 0) {
        snprintf(why, whylen, "a dashboard token this network did not sign");
        return -1;
    }
    payload[pn] = '\0';
    /* user:uid:gid:role:via:expires_ms:serial, each field checked whole. */
    char *field[7];
    size_t nf = 0;
    for (char *p = payload; nf < 7; p++) {
        field[nf++] = p;
        p = strchr(p, ':');
        if (!p)
            break;
        *p = '\0';
    }
    unsigned long long num[4] = {0}; /* uid, gid, via, expires */
    static const int num_field[4] = {1, 2, 4, 5};
    bool ok =
        nf == 7 && config_valid_name(field[0]) && authz_role_parse(field[3]) >= 0 &&
        (strcmp(field[6], "-") == 0 || (strlen(field[6]) < sizeof w->serial &&
                                        strspn(field[6], "0123456789abcdefABCDEF") == strlen(field[6])));
    for (int k = 0; k < 4 && ok; k++) {
        char *end = NULL;
        const char *f = field[num_field[k]];
        num[k] = strtoull(f, &end, 10);
        ok = *f >= '0' && *f <= '9' && end && *end == '\0' && num[k] <= (k == 3 ? INT64_MAX : UINT32_MAX);
    }
    if (!ok || num[2] > 1) {
        snprintf(why, whylen, "a dashboard token that does not parse");
        return -1;
    }
    const char *user = field[0], *role = field[3];
    unsigned uid = (unsigned)num[0], gid = (unsigned)num[1];
    int via = (int)num[2];
    long long exp = (long long)num[3];
    if (exp <= now_ms) {
        snprintf(why, whylen, "this dashboard token has expired: run jz web for a new one");
        return -1;
    }
    snprintf(w->user, sizeof w->user, "%s", user);
    w->uid = (uid_t)uid;
    w->gid = (gid_t)gid;
    w->role = (authz_role)authz_role_parse(role);
    w->via_node = via != 0;
    snprintf(w->from, sizeof w->from, "the dashboard (token of %s)", user);
    if (strcmp(field[6], "-") != 0)
        snprintf(w->serial, sizeof w->serial, "%s", field[6]);
    return 0;
}

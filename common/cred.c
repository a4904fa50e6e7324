/* cred.c - credentials files. */
#include "cred.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

void cred_free(cred *c)
{
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    X509_free(c->ca);
    memset(c, 0, sizeof *c);
}

void cred_format(const char *servers, const char *user, const char *role, int64_t expires, X509 *cert,
                 EVP_PKEY *key, X509 *ca, buf *out)
{
    char when[64] = "?";
    time_t t = (time_t)expires;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_printf(out,
               "# Jazari credentials of %s (%s), valid until %s.\n"
               "# Use: jz --credentials FILE COMMAND (or JAZARI_CREDENTIALS=FILE).\n"
               "# Keep it private (chmod 600): whoever holds it acts as %s.\n"
               "server = %s\nuser = %s\nrole = %s\nexpires = %lld\n",
               user, role, when, user, servers, user, role, (long long)expires);
    pki_cert_pem(cert, out);
    pki_key_pem(key, out);
    pki_cert_pem(ca, out);
}

static int cred__servers(cred *c, const char *v, char *err, size_t errlen)
{
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof c->servers[0] || c->n_servers == CRED_SERVERS_MAX) {
            snprintf(err, errlen, "server: a comma list of at most %d host:port", CRED_SERVERS_MAX);
            return -1;
        }
        memcpy(c->servers[c->n_servers], p, n);
        c->servers[c->n_servers++][n] = '\0';
        p += n + (comma ? 1 : 0);
    }
    return 0;
}

int cred_parse(const char *text, size_t len, cred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > CRED_FILE_MAX || memchr(text, '\0', len)) {
        snprintf(err, errlen, "not a credentials file (over %u bytes, or binary)", CRED_FILE_MAX);
        return -1;
    }
    const char *p = text, *end = text + len;
    int lineno = 0;
    while (p < end && !(end - p >= 10 && memcmp(p, "-----BEGIN", 10) == 0)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[600];
        lineno++;
        if (n >= sizeof line) {
            snprintf(err, errlen, "line %d is too long", lineno);
            return -1;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        p += n + (nl ? 1 : 0);
        char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "line %d: expected key = value", lineno);
            return -1;
        }
        char *k = s, *v = eq + 1;
        *eq = '\0';
        for (char *t = eq - 1; t >= k && (*t == ' ' || *t == '\t'); t--)
            *t = '\0';
        while (*v == ' ' || *v == '\t')
            v++;
        for (char *t = v + strlen(v); t > v && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'); t--)
            t[-1] = '\0';
        if (strcmp(k, "server") == 0) {
            if (cred__servers(out, v, err, errlen) != 0)
                return -1;
        } else if (strcmp(k, "user") == 0 && strlen(v) < sizeof out->user) {
            snprintf(out->user, sizeof out->user, "%s", v);
        } else if (strcmp(k, "role") == 0 && strlen(v) < sizeof out->role) {
            snprintf(out->role, sizeof out->role, "%s", v);
        } else if (strcmp(k, "expires") == 0) {
            char *e;
            long long x = strtoll(v, &e, 10);
            if (*e || x <= 0) {
                snprintf(err, errlen, "line %d: expires is not a time in seconds", lineno);
                return -1;
            }
            out->expires = x;
        } else {
            snprintf(err, errlen, "line %d: unknown key '%.40s' (or its value is too long)", lineno, k);
            return -1;
        }
    }
    if (out->n_servers == 0 || !out->user[0]) {
        snprintf(err, errlen, "no server or user line: not a credentials file of jz token create");
        return -1;
    }
    /* The PEM part: the user's certificate, its key, the CA, in that order. */
    size_t rest = (size_t)(end - p);
    BIO *b = BIO_new_mem_buf(p, (int)rest);
    if (!b)
        abort();
    out->cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    out->ca = out->cert ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    char e[200];
    /* The text is not NUL-terminated: bounded searches only. */
    const char *k = memmem(p, rest, "-----BEGIN PRIVATE KEY-----", 27);
    const char *kend = k ? memmem(k, (size_t)(end - k), "-----END PRIVATE KEY-----", 25) : NULL;
    if (kend)
        kend += strlen("-----END PRIVATE KEY-----");
    out->key = k && kend ? pki_key_from_pem(k, (size_t)(kend - k), e, sizeof e) : NULL;
    if (!out->cert || !out->ca || !out->key) {
        pki_ssl_error(e, sizeof e);
        snprintf(err, errlen, "the certificate, key and CA (PEM, in that order) are not all there");
        return -1;
    }
    if (!pki_signed_by(out->cert, out->ca)) {
        snprintf(err, errlen, "the certificate was not issued by the CA in the file");
        return -1;
    }
    return 0;
}

/* pki.c - the network's certificate authority, certificates and tokens. */
#include "pki.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#define PKI_CA_NAME "Jazari network CA"
#define PKI_ORG "jazari"

/* --- small helpers -------------------------------------------------------------------------- */

void pki_random(void *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1)
        abort();
}

void pki_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* n bytes from 2n hex digits; -1 on anything else. */
int pki_unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < 2 * n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

bool pki_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

const char *pki_ssl_error(char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(out, len, "%s", "");
    else
        ERR_error_string_n(e, out, len);
    ERR_clear_error();
    return out;
}

/* --- keys ------------------------------------------------------------------------------------- */

EVP_PKEY *pki_key_new(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

EVP_PKEY *pki_key_from_network(const pki_token *t)
{
    static const char label[] = "jazari network CA key v1";
    uint8_t in[sizeof label - 1 + sizeof t->secret], seed[SHA256_DIGEST_LENGTH];
    memcpy(in, label, sizeof label - 1);
    memcpy(in + sizeof label - 1, t->secret, sizeof t->secret);
    SHA256(in, sizeof in, seed);
    OPENSSL_cleanse(in, sizeof in);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    OPENSSL_cleanse(seed, sizeof seed);
    return k;
}

/* --- certificates -------------------------------------------------------------------------- */

static int pki__name(X509_NAME *n, const char *cn, const char *ou)
{
    if (!X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)PKI_ORG, -1, -1, 0))
        return -1;
    if (ou && !X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const unsigned char *)ou, -1, -1, 0))
        return -1;
    if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
        return -1;
    return 0;
}

static int pki__ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -1;
    int ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

/* serial = gen << 64 | low */
static int pki__serial(X509 *cert, uint64_t gen, uint64_t low)
{
    uint8_t be[16];
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)(gen >> (56 - 8 * i));
        be[8 + i] = (uint8_t)(low >> (56 - 8 * i));
    }
    BIGNUM *bn = BN_bin2bn(be, sizeof be, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int rc = ai && X509_set_serialNumber(cert, ai) ? 0 : -1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc;
}

X509 *pki_ca_make(EVP_PKEY *ca_key)
{
    X509 *ca = X509_new();
    if (!ca)
        return NULL;
    /* Fixed fields: every holder of the key makes the same certificate. */
    const int64_t from = 1577836800;          /* 2020-01-01 */
    const int64_t until = from + 3155760000LL; /* + 100 years */
    if (!X509_set_version(ca, 2) || pki__serial(ca, 0, 1) != 0 || !ASN1_TIME_set(X509_getm_notBefore(ca), from) ||
        !ASN1_TIME_set(X509_getm_notAfter(ca), until) || pki__name(X509_get_subject_name(ca), PKI_CA_NAME, NULL) ||
        !X509_set_issuer_name(ca, X509_get_subject_name(ca)) || !X509_set_pubkey(ca, ca_key) ||
        pki__ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") ||
        pki__ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        pki__ext(ca, ca, NID_subject_key_identifier, "hash") || X509_sign(ca, ca_key, NULL) <= 0) {
        X509_free(ca);
        return NULL;
    }
    return ca;
}

X509 *pki_issue(EVP_PKEY *ca_key, X509 *ca, EVP_PKEY *pub, const char *name, const char *kind, uint64_t gen,
                int64_t now_s, int64_t ttl_s, char *err, size_t errlen)
{
    if (!name || !*name || strlen(name) > PKI_NAME_MAX || !kind || !*kind || strlen(kind) >= sizeof((pki_id *)0)->kind) {
        snprintf(err, errlen, "a certificate needs a name of 1-%d bytes and a kind", PKI_NAME_MAX);
        return NULL;
    }
    X509 *cert = X509_new();
    uint64_t low;
    pki_random(&low, sizeof low);
    if (!cert || !X509_set_version(cert, 2) || pki__serial(cert, gen, low) != 0 ||
        !ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)(now_s - PKI_BACKDATE_S)) ||
        !ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(now_s + ttl_s)) ||
        pki__name(X509_get_subject_name(cert), name, kind) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca)) || !X509_set_pubkey(cert, pub) ||
        pki__ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        pki__ext(cert, ca, NID_key_usage, "critical,digitalSignature") ||
        pki__ext(cert, ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
        X509_sign(cert, ca_key, NULL) <= 0) {
        char e[200];
        snprintf(err, errlen, "cannot issue a certificate for %s: %s", name, pki_ssl_error(e, sizeof e));
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int pki_cert_hash(X509 *cert, char out[PKI_HASH_HEX + 1])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (n <= 0)
        return -1;
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)n, md);
    OPENSSL_free(der);
    pki_hex(md, sizeof md, out);
    return 0;
}

/* The one entry nid of name, as UTF-8 of at most len-1 bytes. -1 if absent,
 * repeated, too long or with a control character. */
static int pki__field(X509_NAME *name, int nid, char *out, size_t len)
{
    int at = X509_NAME_get_index_by_NID(name, nid, -1);
    if (at < 0 || X509_NAME_get_index_by_NID(name, nid, at) >= 0)
        return -1;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n <= 0 || (size_t)n >= len) {
        OPENSSL_free(utf8);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (utf8[i] < 0x20 || utf8[i] == 0x7f) {
            OPENSSL_free(utf8);
            return -1;
        }
    memcpy(out, utf8, (size_t)n);
    out[n] = '\0';
    OPENSSL_free(utf8);
    return 0;
}

static int pki__time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int pki_cert_id(X509 *cert, pki_id *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    X509_NAME *n = X509_get_subject_name(cert);
    if (!n || pki__field(n, NID_commonName, out->name, sizeof out->name) != 0 ||
        pki__field(n, NID_organizationalUnitName, out->kind, sizeof out->kind) != 0) {
        snprintf(err, errlen, "the certificate has no single name (CN) and kind (OU) of this network");
        return -1;
    }
    const ASN1_INTEGER *ai = X509_get0_serialNumber(cert);
    BIGNUM *bn = ai ? ASN1_INTEGER_to_BN(ai, NULL) : NULL;
    uint8_t be[16] = {0};
    if (!bn || BN_is_negative(bn) || BN_num_bytes(bn) > 16 || BN_bn2binpad(bn, be, sizeof be) != 16) {
        BN_free(bn);
        snprintf(err, errlen, "the certificate's serial number is not one of this network");
        return -1;
    }
    BN_free(bn);
    for (int i = 0; i < 8; i++)
        out->gen = out->gen << 8 | be[i];
    pki_hex(be, sizeof be, out->serial);
    if (pki__time(X509_get0_notBefore(cert), &out->not_before) != 0 ||
        pki__time(X509_get0_notAfter(cert), &out->not_after) != 0) {
        snprintf(err, errlen, "the certificate's validity times do not parse");
        return -1;
    }
    return 0;
}

bool pki_signed_by(X509 *cert, X509 *ca)
{
    EVP_PKEY *k = X509_get0_pubkey(ca);
    bool ok = k && X509_verify(cert, k) == 1;
    ERR_clear_error();
    return ok;
}

/* --- PEM ------------------------------------------------------------------------------------- */

static void pki__bio_to_buf(BIO *b, buf *out)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    if (n > 0)
        buf_append(out, p, (size_t)n);
}

void pki_cert_pem(X509 *cert, buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || !PEM_write_bio_X509(b, cert))
        abort();
    pki__bio_to_buf(b, out);
    BIO_free(b);
}

void pki_key_pem(EVP_PKEY *key, buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
        abort();
    pki__bio_to_buf(b, out);
    BIO_free(b);
}

static BIO *pki__bio_in(const char *pem, size_t len, const char *what, char *err, size_t errlen)
{
    if (len > PKI_PEM_MAX) {
        snprintf(err, errlen, "%s of %zu bytes is over the limit of %u", what, len, PKI_PEM_MAX);
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        abort();
    return b;
}

X509 *pki_cert_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *b = pki__bio_in(pem, len, "a certificate", err, errlen);
    if (!b)
        return NULL;
    X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!c) {
        char e[200];
        snprintf(err, errlen, "not a PEM certificate (%s)", pki_ssl_error(e, sizeof e));
    }
    return c;
}

EVP_PKEY *pki_key_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *b = pki__bio_in(pem, len, "a private key", err, errlen);
    if (!b)
        return NULL;
    /* No passphrase callback: an encrypted key fails instead of prompting. */
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    if (!k) {
        char e[200];
        snprintf(err, errlen, "not a PEM private key (%s)", pki_ssl_error(e, sizeof e));
    } else if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        snprintf(err, errlen, "the private key is not an Ed25519 key of this network");
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

int pki_write_file(const char *path, const buf *text, int mode, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fchmod(fd, (mode_t)mode);
    size_t off = 0;
    while (off < text->len) {
        ssize_t w = write(fd, text->data + off, text->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int pki_read_file(const char *path, size_t max, buf *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
        close(fd);
        return -1;
    }
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        if (out->len + (size_t)r > max) {
            snprintf(err, errlen, "%s: over %zu bytes", path, max);
            close(fd);
            return -1;
        }
        buf_append(out, tmp, (size_t)r);
    }
    close(fd);
    return 0;
}

/* --- tokens --------------------------------------------------------------------------------- */

void pki_token_new_network(pki_token *t)
{
    memset(t, 0, sizeof *t);
    t->kind = PKI_TOKEN_NETWORK;
    pki_random(t->secret, 32);
}

void pki_token_new_join(pki_token *t, const char *ca_hash)
{
    memset(t, 0, sizeof *t);
    t->kind = PKI_TOKEN_JOIN;
    pki_random(t->secret, 16);
    uint8_t id[8];
    pki_random(id, sizeof id);
    pki_hex(id, sizeof id, t->id);
    snprintf(t->ca_hash, sizeof t->ca_hash, "%s", ca_hash);
}

void pki_token_format(const pki_token *t, char *out, size_t len)
{
    char hex[65];
    if (t->kind == PKI_TOKEN_NETWORK) {
        pki_hex(t->secret, 32, hex);
        snprintf(out, len, "jzn1.%s", hex);
    } else {
        pki_hex(t->secret, 16, hex);
        snprintf(out, len, "jzj1.%s.%s.%s", t->ca_hash, t->id, hex);
    }
}

int pki_token_parse(const char *s, pki_token *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    size_t n = strnlen(s, PKI_TOKEN_MAX + 1);
    if (n > PKI_TOKEN_MAX) {
        snprintf(err, errlen, "the token is too long to be a Jazari token");
        return -1;
    }
    if (n == 69 && strncmp(s, "jzn1.", 5) == 0) {
        if (pki_unhex(s + 5, 32, t->secret) != 0)
            goto bad_hex;
        t->kind = PKI_TOKEN_NETWORK;
        return 0;
    }
    /* jzj1. + 64 + . + 16 + . + 32 */
    if (n == 5 + 64 + 1 + 16 + 1 + 32 && strncmp(s, "jzj1.", 5) == 0 && s[69] == '.' && s[86] == '.') {
        uint8_t tmp[32];
        if (pki_unhex(s + 5, 32, tmp) != 0 || pki_unhex(s + 70, 8, tmp) != 0 ||
            pki_unhex(s + 87, 16, t->secret) != 0)
            goto bad_hex;
        memcpy(t->ca_hash, s + 5, 64);
        memcpy(t->id, s + 70, 16);
        t->kind = PKI_TOKEN_JOIN;
        return 0;
    }
    snprintf(err, errlen,
             "not a Jazari token: expected jzn1.<64 hex> (jazarid token generate) or "
             "jzj1.<hash>.<id>.<secret> (jz token create --join); check that it was copied whole");
    return -1;
bad_hex:
    memset(t, 0, sizeof *t);
    snprintf(err, errlen, "the token has a character that is not a lower-case hex digit; check that it was copied whole");
    return -1;
}

void pki_token_secret_hash(const pki_token *t, char out[PKI_HASH_HEX + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(t->secret, 16, md);
    pki_hex(md, sizeof md, out);
}

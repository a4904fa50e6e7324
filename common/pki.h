/* pki.h - the network's own certificate authority: Ed25519 keys, the CA,
 * the certificates it issues, and the tokens that carry trust to a new
 * daemon. Pure (no sockets, no clock of its own: times are passed in).
 *
 * A certificate says who its holder is in three fields we read and no
 * others: the subject's CN (a node or user name), its OU (the holder's
 * kind: "controller", "agent", or a person's role), and the serial number,
 * whose high 64 bits are the holder's generation (a node revoked by name
 * has its generation raised: every older certificate of it is refused).
 *
 * Tokens (printable, one line):
 *   jzn1.<64 hex>                     a new network's token (jazarid token
 *                                     generate): its secret derives the CA key,
 *                                     so every daemon started with it holds the
 *                                     same CA from the first byte. Treat it as
 *                                     the CA's private key.
 *   jzj1.<64 hex>.<16 hex>.<32 hex>   a join token (jz token create --join):
 *                                     the CA's hash (SHA-256 of its public key
 *                                     info), the token's id and its secret. The
 *                                     joiner checks the controller's CA against
 *                                     the hash before it sends the secret. */
#ifndef JZ_PKI_H
#define JZ_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"

#define PKI_NAME_MAX 63
#define PKI_HASH_HEX 64
#define PKI_TOKEN_MAX 160
#define PKI_PEM_MAX (16u << 10) /* one PEM object; bounded before parsing */

/* What a certificate says about its holder (the fields we read). */
/* Certificates are valid from this long before they are made: clocks a
 * little behind the issuer's still take them. */
#define PKI_BACKDATE_S 3600

typedef struct pki_id {
    char name[PKI_NAME_MAX + 1]; /* CN */
    char kind[32];               /* OU: "controller", "agent", or a role */
    uint64_t gen;                /* serial >> 64 */
    char serial[33];             /* the serial, hex */
    int64_t not_before;          /* Unix seconds */
    int64_t not_after;
} pki_id;

typedef enum { PKI_TOKEN_NETWORK = 1, PKI_TOKEN_JOIN = 2 } pki_token_kind;

typedef struct pki_token {
    pki_token_kind kind;
    uint8_t secret[32];       /* NETWORK: 32 bytes; JOIN: the first 16 */
    char ca_hash[PKI_HASH_HEX + 1]; /* JOIN only */
    char id[17];                    /* JOIN only: 16 hex */
} pki_token;

/* --- keys ------------------------------------------------------------------------------ */

/* A fresh Ed25519 key; NULL only if OpenSSL fails. The caller frees it (EVP_PKEY_free). */
EVP_PKEY *pki_key_new(void);
/* The CA key of a network token: derived from its secret, the same on every daemon. */
EVP_PKEY *pki_key_from_network(const pki_token *t);

/* --- certificates ------------------------------------------------------------------------ */

/* The CA's self-signed certificate for key (deterministic: the same key gives
 * the same certificate, valid from 2020 to 2120). */
X509 *pki_ca_make(EVP_PKEY *ca_key);
/* A certificate for pub, signed by the CA: CN=name, OU=kind, generation gen,
 * valid from now - 1 h (clock skew) for ttl_s seconds. NULL with err. */
X509 *pki_issue(EVP_PKEY *ca_key, X509 *ca, EVP_PKEY *pub, const char *name, const char *kind, uint64_t gen,
                int64_t now_s, int64_t ttl_s, char *err, size_t errlen);
/* The SHA-256 of the certificate's public key info, 64 hex digits. 0 or -1. */
int pki_cert_hash(X509 *cert, char out[PKI_HASH_HEX + 1]);
/* What cert says about its holder. 0, or -1 with err (a field missing or malformed). */
int pki_cert_id(X509 *cert, pki_id *out, char *err, size_t errlen);
/* Whether cert was signed by ca's key. */
bool pki_signed_by(X509 *cert, X509 *ca);

/* --- PEM ------------------------------------------------------------------------------------ */

void pki_cert_pem(X509 *cert, buf *out);
void pki_key_pem(EVP_PKEY *key, buf *out);
/* One object from PEM text (at most PKI_PEM_MAX bytes of it). NULL with err. */
X509 *pki_cert_from_pem(const char *pem, size_t len, char *err, size_t errlen);
EVP_PKEY *pki_key_from_pem(const char *pem, size_t len, char *err, size_t errlen);
/* Files: written with mode (0600 for keys) through a temporary and rename. */
int pki_write_file(const char *path, const buf *text, int mode, char *err, size_t errlen);
/* Reads a file of at most max bytes into out. 0, -1 with err (ENOENT: 1). */
int pki_read_file(const char *path, size_t max, buf *out, char *err, size_t errlen);

/* --- tokens --------------------------------------------------------------------------------- */

/* A new network token (fresh randomness). */
void pki_token_new_network(pki_token *t);
/* A new join token for the CA whose hash is ca_hash. */
void pki_token_new_join(pki_token *t, const char *ca_hash);
void pki_token_format(const pki_token *t, char *out, size_t len);
/* Parses a token. 0, or -1 with one line in err saying what is wrong with it. */
/* n bytes from 2n lowercase hex digits into out; -1 on anything else. */
int pki_unhex(const char *s, size_t n, uint8_t *out);

int pki_token_parse(const char *s, pki_token *t, char *err, size_t errlen);
/* SHA-256 of a join token's secret, hex: what the controllers keep. */
void pki_token_secret_hash(const pki_token *t, char out[PKI_HASH_HEX + 1]);

/* --- small helpers ------------------------------------------------------------------------ */

/* Fills p with n random bytes (aborts if the system has none). */
void pki_random(void *p, size_t n);
void pki_hex(const uint8_t *p, size_t n, char *out);
/* Constant-time comparison of two strings of the same length. */
bool pki_equal(const char *a, const char *b);
/* The last OpenSSL error as text ("" if none); clears the queue. */
const char *pki_ssl_error(char *out, size_t len);

#endif

/* cred.h - a person's credentials file (jz token create --user): where the
 * network is, and what proves the user to it.
 *
 *   # comments
 *   server = HOST:PORT[,HOST:PORT...]
 *   user = NAME
 *   role = researcher|coordinator|tenant-admin|admin
 *   expires = UNIX-SECONDS
 *   -----BEGIN CERTIFICATE-----     the user's certificate
 *   -----BEGIN PRIVATE KEY-----     its key
 *   -----BEGIN CERTIFICATE-----     the network's CA
 *
 * Parsing is bounded (CRED_FILE_MAX) and says what is wrong in one line. */
#ifndef JZ_CRED_H
#define JZ_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pki.h"

#define CRED_FILE_MAX (32u << 10)
#define CRED_SERVERS_MAX 9

typedef struct cred {
    char servers[CRED_SERVERS_MAX][256];
    int n_servers;
    char user[PKI_NAME_MAX + 1];
    char role[32];
    int64_t expires;
    X509 *cert;
    EVP_PKEY *key;
    X509 *ca;
} cred;

/* Parses text (len bytes). 0, or -1 with err; out is to be freed either way. */
int cred_parse(const char *text, size_t len, cred *out, char *err, size_t errlen);
void cred_free(cred *c);
/* Appends a credentials file to out. */
void cred_format(const char *servers, const char *user, const char *role, int64_t expires, X509 *cert,
                 EVP_PKEY *key, X509 *ca, buf *out);

#endif

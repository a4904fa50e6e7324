/* fuzz_cert.c - bytes as a peer's certificate, PEM or DER: the fields we
 * read of it (pki_cert_id: name, kind, generation, serial, validity) are
 * bounded text or a refusal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(X509 *c)
{
    pki_id id;
    char err[300];
    if (!c)
        return;
    if (pki_cert_id(c, &id, err, sizeof err) == 0) {
        if (strlen(id.name) > PKI_NAME_MAX || strlen(id.serial) != 32 || memchr(id.name, '\n', strlen(id.name)))
            abort();
    }
    char h[PKI_HASH_HEX + 1];
    pki_cert_hash(c, h);
    X509_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300];
    check(pki_cert_from_pem((const char *)data, size, err, sizeof err));
    const unsigned char *p = data;
    check(d2i_X509(NULL, &p, (long)size));
    ERR_clear_error();
    return 0;
}

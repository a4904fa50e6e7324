/* fuzz_token.c - bytes as a join or network token (--join-token, a config
 * file): parsed or refused with a message; what parses formats back to the
 * same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[PKI_TOKEN_MAX + 2];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    pki_token t;
    char err[300], back[PKI_TOKEN_MAX + 1];
    if (pki_token_parse(s, &t, err, sizeof err) != 0) {
        if (!err[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    pki_token_format(&t, back, sizeof back);
    if (strcmp(back, s) != 0)
        abort();
    return 0;
}

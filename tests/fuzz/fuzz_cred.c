/* fuzz_cred.c - bytes as a credentials file (jz --credentials): parsed, or
 * refused with one line; never a crash, a leak or an unbounded read. */
#include <stdint.h>
#include <stdlib.h>

#include "common/cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cred c;
    char err[300];
    err[0] = '\0';
    int rc = cred_parse((const char *)data, size, &c, err, sizeof err);
    if (rc != 0 && !err[0])
        abort();
    if (rc == 0 && (!c.cert || !c.key || !c.ca || c.n_servers < 1))
        abort();
    cred_free(&c);
    return 0;
}

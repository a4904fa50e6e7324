/* fuzz_policy.c - bytes as a policy file: parsed or refused with
 * "NAME:LINE: what"; what parses answers the questions authorization asks
 * of it (members, coordinators, tenants) without reading past its tables. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sched/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol p;
    char err[300] = "";
    pol_init(&p);
    if (pol_parse(&p, "f", (const char *)data, size, err, sizeof err) != 0) {
        if (strncmp(err, "f:", 2) != 0 && strncmp(err, "f: ", 3) != 0)
            abort(); /* a refusal names the file (and line) */
        pol_free(&p);
        return 0;
    }
    static const char *const users[] = {"a", "u", "x", "root", ""};
    for (size_t i = 0; i < p.n_accounts; i++)
        for (size_t k = 0; k < sizeof users / sizeof *users; k++) {
            (void)pol_account_member(&p, p.accounts[i].path, users[k]);
            (void)pol_account_coordinator(&p, p.accounts[i].path, users[k]);
            (void)pol_tenant_admin(&p, p.accounts[i].path, users[k]);
            (void)pol_account_allows(&p, p.accounts[i].path, users[k], false);
        }
    for (size_t k = 0; k < sizeof users / sizeof *users; k++)
        (void)pol_is_tenant_admin(&p, users[k]);
    pol_free(&p);
    return 0;
}

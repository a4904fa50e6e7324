/* authz.c - who may see and do what: roles capped by credentials, and
 * the policy's accounts, coordinators and tenants. */
#include "authz.h"

#include <string.h>

static const char *const authz__names[] = {"researcher", "coordinator", "tenant-admin", "admin"};

int authz_role_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, authz__names[i]) == 0)
            return i;
    return -1;
}

const char *authz_role_name(authz_role r)
{
    return (unsigned)r < 4 ? authz__names[r] : "researcher";
}

bool authz_is_admin(const authz_who *w)
{
    return w->role == AUTHZ_ADMIN;
}

bool authz_backup(const authz_who *w)
{
    /* The whole state: every tenant's jobs and every credential's record. */
    return authz_is_admin(w) && !w->via_node;
}

bool authz_time_extend(const authz_who *w)
{
    return authz_is_admin(w) && !w->via_node;
}

/* Whether w manages the jobs of account: a coordinator of it, or an admin
 * of its tenant, when their role lets them be. */
static bool authz__manages(const pol *p, const authz_who *w, const char *account)
{
    if (!account || !*account)
        return false;
    return (w->role >= AUTHZ_COORDINATOR && pol_account_coordinator(p, account, w->user)) ||
           (w->role >= AUTHZ_TENANT_ADMIN && pol_tenant_admin(p, account, w->user));
}

/* Root on a node, relayed by that node's daemon: not the network's root,
 * nor anyone else of the policy — a name nobody owns. */
static bool authz__nameless(const authz_who *w)
{
    return w->via_node && (w->uid == 0 || strcmp(w->user, "root") == 0);
}

bool authz_owns(const authz_who *w, const char *owner)
{
    return owner && strcmp(owner, w->user) == 0 && !authz__nameless(w);
}

bool authz_pty_input(const authz_who *w, uid_t owner)
{
    return w->uid == owner && !authz__nameless(w);
}

authz_level authz_job(const pol *p, const authz_who *w, const char *owner, const char *account)
{
    if (authz_owns(w, owner))
        return AUTHZ_FULL;
    return authz_others_job(p, w, account);
}

authz_level authz_others_job(const pol *p, const authz_who *w, const char *account)
{
    if (authz__nameless(w))
        return p->open ? AUTHZ_BRIEF : AUTHZ_NONE;
    if (authz_is_admin(w) || authz__manages(p, w, account))
        return AUTHZ_FULL;
    if (p->open || (account && pol_account_member(p, account, w->user)))
        return AUTHZ_BRIEF;
    return AUTHZ_NONE;
}

bool authz_account_sees(const pol *p, const authz_who *w, const char *account)
{
    if (authz__nameless(w))
        return p->open;
    return authz_is_admin(w) || p->open || (account && pol_account_member(p, account, w->user)) ||
           authz__manages(p, w, account);
}

bool authz_person_admin(const pol *p, const authz_who *w, const char *user, const char *role)
{
    if (w->via_node || !user)
        return false;
    if (authz_is_admin(w))
        return true;
    if (w->role < AUTHZ_TENANT_ADMIN || authz_role_parse(role) != AUTHZ_RESEARCHER)
        return false;
    for (size_t i = 0; i < p->n_accounts; i++)
        if (!strchr(strchr(p->accounts[i].path, '/') ? strchr(p->accounts[i].path, '/') + 1 : "", '/') &&
            pol_tenant_admin(p, p->accounts[i].path, w->user) &&
            pol_account_member(p, p->accounts[i].path, user))
            return true;
    return false;
}

bool authz_account_manages(const pol *p, const authz_who *w, const char *account)
{
    return !authz__nameless(w) && authz__manages(p, w, account);
}

bool authz_account_billing(const pol *p, const authz_who *w, const char *account)
{
    return authz_is_admin(w) || authz_account_manages(p, w, account);
}

bool authz_account_balance(const pol *p, const authz_who *w, const char *account)
{
    if (authz_account_billing(p, w, account))
        return true;
    /* A member (named by the account or its institute): an open account
     * makes nobody one, so its balance is for its managers alone. */
    return !authz__nameless(w) && account && pol_account_member(p, account, w->user);
}

bool authz_account_admin(const pol *p, const authz_who *w, const char *account)
{
    return authz_is_admin(w) ||
           (account && w->role >= AUTHZ_TENANT_ADMIN && pol_tenant_admin(p, account, w->user));
}

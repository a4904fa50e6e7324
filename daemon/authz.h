/* authz.h - the one place that decides who may see and do what.
 *
 * A caller is a person (a user name) with a role, the most they may be:
 *   researcher    their own jobs
 *   coordinator   and the jobs of the accounts the policy says they
 *                 coordinate (account ... coordinators=NAME,...)
 *   tenant-admin  and everything of their startup's accounts (tenant ...
 *                 accounts=... admins=NAME,...): jobs, reservations, usage
 *   admin         everything (root on a controller, or admin credentials)
 * A remote person's role is the one in their credentials; a person on a
 * node's socket may be up to tenant-admin, as the policy says.
 *
 * Privacy by default (Slurm's PrivateData): a job is seen in full by whoever
 * may act on it, briefly (no command, environment, working directory or
 * output paths) by the members of its account, and not at all by anyone
 * else: for them it does not exist. `privacy open` in the policy lets
 * everyone see every job briefly. Pure: no I/O. */
#ifndef JZ_AUTHZ_H
#define JZ_AUTHZ_H

#include <stdbool.h>
#include <sys/types.h>

#include "../lib/sched/policy.h"

typedef enum authz_role {
    AUTHZ_RESEARCHER,
    AUTHZ_COORDINATOR,
    AUTHZ_TENANT_ADMIN,
    AUTHZ_ADMIN,
} authz_role;

typedef struct authz_who {
    char user[64];
    uid_t uid; /* the account the controller knows the person by */
    gid_t gid;
    authz_role role;
    bool via_node;   /* forwarded by a node's daemon (not a controller): never an admin */
    char from[160];  /* where the request came from, for the audit trail */
    char serial[33]; /* the credentials' serial when a person's certificate says who; else "" */
} authz_who;

typedef enum authz_level {
    AUTHZ_NONE,  /* not even whether it exists */
    AUTHZ_BRIEF, /* its state and resources, not its contents */
    AUTHZ_FULL,  /* everything, and may act on it */
} authz_level;

/* "researcher", "coordinator", "tenant-admin", "admin"; -1 for another. */
int authz_role_parse(const char *s);
const char *authz_role_name(authz_role r);

/* What w may see of a job of owner's in account (FULL: and act on it). */
authz_level authz_job(const pol *p, const authz_who *w, const char *owner, const char *account);
/* Whether w is owner (root relayed by a node owns nothing). */
bool authz_owns(const authz_who *w, const char *owner);
/* Whether w may type into the terminal of a job step (srun --pty) whose
 * owner is the account uid: its owner alone, never anyone on their behalf
 * (keys in someone's shell act as them); root relayed by a node is no one. */
bool authz_pty_input(const authz_who *w, uid_t owner);
/* The same for a job that is not w's own: it depends on the account only
 * (for callers that look at many jobs of few accounts). */
authz_level authz_others_job(const pol *p, const authz_who *w, const char *account);
/* Whether w may see an account's figures (shares, usage, reservations):
 * admins, its members, coordinators and tenant admins; anyone when open. */
bool authz_account_sees(const pol *p, const authz_who *w, const char *account);
/* Whether w administers account: reservations for it (admins, its tenant's
 * admins). */
bool authz_account_admin(const pol *p, const authz_who *w, const char *account);
/* Whether w manages account: a coordinator of it, or an admin of the
 * tenant holding it (what they see of the history: its jobs, its usage). */
bool authz_account_manages(const pol *p, const authz_who *w, const char *account);
/* Whether w may read account's invoices: an admin, a coordinator of it,
 * an admin of its tenant. */
bool authz_account_billing(const pol *p, const authz_who *w, const char *account);
/* Whether w may see account's allocation (jz balance): those, and anyone
 * who may charge jobs to it. */
bool authz_account_balance(const pol *p, const authz_who *w, const char *account);
bool authz_is_admin(const authz_who *w);
/* Whether w may take a backup of the whole state (jz admin backup): the
 * network's admins, never a tenant's, never through a node. */
bool authz_backup(const authz_who *w);
/* Whether w may lengthen a running job's time limit (jz update --time):
 * admins only; anyone who may act on the job may shorten it. */
bool authz_time_extend(const authz_who *w);
/* Whether w may make, list and revoke credentials of role for person user:
 * admins any; a tenant admin a researcher's, for the members of their
 * startup's accounts (the policy's users=). Never through a node. */
bool authz_person_admin(const pol *p, const authz_who *w, const char *user, const char *role);

#endif

/* facct.h - accounting, part of the state machine: the accounting policy
 * as committed (rates, prices, what is charged), the GPU-hours granted to
 * accounts and what their runs have used of them, and the charges of
 * recent reservations. The state machine (fsm.c) asks it what a run costs
 * and charges it here; the history (hist.c) and the replies read it.
 *
 * Units, integers only so that every replica agrees to the last digit:
 * GPU time in GPU-milliseconds; a grant's and a charge's in GPU-ms
 * weighted by the model's rate (an H100 hour at rate 2 is 2 GPU-hours of
 * an allocation); money in millionths of the currency's unit ("micro").
 * Pure: no I/O, no clock. */
#ifndef JZ_FACCT_H
#define JZ_FACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../lib/sched/policy.h"
#include "jazari.pb-c.h"

#define FACCT_GRANTS_MAX 10000 /* in the state, past ones included */
#define FACCT_RATES_MAX 64
#define FACCT_RESV_KEPT_MAX 10000
#define FACCT_CHARGE_MILLI_MAX 1000000u                 /* a rate of at most 1000 */
#define FACCT_PRICE_MICRO_MAX 1000000000000000ull       /* 10^9 units an hour */
#define FACCT_GRANT_MS_MAX (1000000000ll * 3600 * 1000) /* a billion GPU-hours, top-ups included */
#define FACCT_TIME_MAX_MS 253402300799999ll             /* 9999-12-31T23:59:59.999Z: a grant's latest end */
#define FACCT_JOBS_KEEP_MS (24ll * 3600 * 1000)
#define FACCT_JOBS_KEEP_MIN_MS (60ll * 1000)
#define FACCT_JOBS_KEEP_MAX_MS (366ll * 24 * 3600 * 1000)
#define FACCT_RETENTION_MS (5ll * 366 * 24 * 3600 * 1000)
#define FACCT_RETENTION_MIN_MS (24ll * 3600 * 1000)
#define FACCT_RETENTION_MAX_MS (100ll * 366 * 24 * 3600 * 1000)
#define FACCT_MS_PER_HOUR 3600000ull

typedef struct facct_grant {
    uint64_t id;
    char *account;
    int64_t from_ms, until_ms;
    int64_t gpu_ms;   /* granted (charge units) */
    uint64_t used_ms; /* charged by runs that ended */
    char *by;
    int64_t at_ms;
} facct_grant;

typedef struct facct {
    Jazari__AcctPolicy *pol; /* as committed; NULL: the defaults */
    uint8_t *pol_bytes;      /* its encoding, to compare with a leader's */
    size_t pol_len;
    facct_grant *grants; /* by id */
    size_t n_grants;
    uint64_t next_grant_id;
    Jazari__ResvCharge **resv; /* recent reservation charges, oldest first */
    size_t n_resv;
} facct;

void facct_init(facct *a);
void facct_free(facct *a);

/* --- the policy --- */
/* Checks an accounting policy (bounds, names): 0, or -1 with err. */
int facct_policy_check(const Jazari__AcctPolicy *p, char *err, size_t errlen);
/* Takes p as the policy (a copy); one that fails the check changes nothing. */
void facct_policy_set(facct *a, const Jazari__AcctPolicy *p);
/* The accounting rules of policy file p, as the leader commits them
 * (rates: POL_RATES_MAX slots, the caller's; strings point into p). */
void facct_policy_of(const pol *p, Jazari__AcctPolicy *out, Jazari__AcctRate *rates, Jazari__AcctRate **ptrs);
/* Whether p is what is in force (same encoding). */
bool facct_policy_same(const facct *a, const Jazari__AcctPolicy *p);
const char *facct_currency(const facct *a); /* "" when the policy names none */
uint32_t facct_minor_digits(const facct *a);
int64_t facct_jobs_keep_ms(const facct *a);
int64_t facct_retention_ms(const facct *a);
bool facct_charges_preempted(const facct *a);
bool facct_charges_lost(const facct *a);
/* The rate line for a GPU of that model (its full name, as the topology
 * says: the first line whose words appear in it, else "*"), or for a CPU
 * (model NULL: the "cpu" line); NULL: none, the defaults apply (a GPU
 * counts 1, costs 0; a CPU counts 0, costs 0). */
const Jazari__AcctRate *facct_rate(const facct *a, const char *model);
uint32_t facct_charge_milli(const facct *a, const char *model);
uint64_t facct_price_micro(const facct *a, const char *model);
/* The largest rate a job asking for model (its --gpu-model words; ""
 * any) could be charged at: its worst case before it is placed. */
uint32_t facct_worst_milli(const facct *a, const char *asked);

/* --- grants --- */
/* Checks a grant or top-up (g->id ignored) against the grants held:
 * bounds, a period, no overlap with another period of the same account
 * (the same period is a top-up), what remains not below zero. */
int facct_grant_check(const facct *a, const Jazari__Grant *g, char *err, size_t errlen);
/* Applies one that passes the check (else NULL): the grant as it stands. */
const facct_grant *facct_grant_apply(facct *a, const Jazari__Grant *g, int64_t now_ms);
/* The account whose grants charge account's jobs: itself, else its
 * institute ("a" of "a/b"), when it has any grant; NULL: unlimited. */
const char *facct_grant_holder(const facct *a, const char *account);
/* holder's grant in force at at_ms, or NULL. */
const facct_grant *facct_grant_at(const facct *a, const char *holder, int64_t at_ms);
/* The next grant of holder starting after at_ms, or NULL. */
const facct_grant *facct_grant_next(const facct *a, const char *holder, int64_t at_ms);
/* Charges a run's charge_ms, spread over from_ms..to_ms, to holder's
 * grants: each the share of the time it was in force (the rest, when no
 * grant was, is charged to none). */
void facct_grant_charge(facct *a, const char *holder, int64_t from_ms, int64_t to_ms, uint64_t charge_ms);
/* A grant as a message (fields point into g). */
void facct_grant_pb(const facct_grant *g, Jazari__Grant *out);

/* --- money --- */
/* units (GPU- or CPU-ms) x price an hour, in micro, rounded half up. */
uint64_t facct_cost_micro(uint64_t ms, uint64_t price_micro_per_hour);
/* micro rounded half up to the currency's smallest unit. */
uint64_t facct_minor(uint64_t micro, uint32_t minor_digits);

/* --- reservations --- */
/* Keeps a reservation's charge (taken: from malloc, freed by the state). */
void facct_resv_add(facct *a, Jazari__ResvCharge *c);
/* Drops the kept charges that ended before before_ms. */
void facct_resv_expire(facct *a, int64_t before_ms);

/* --- snapshots (fields 17-20) --- */
void facct_snapshot(const facct *a, buf *out);
void facct_restore(facct *a, const Jazari__Snapshot *s);

#endif

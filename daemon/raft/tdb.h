/* tdb.h - the replicated trust records, part of the state machine: the
 * join tokens the controllers accept, people's credentials (by their
 * certificate's serial), and the nodes revoked by name. Pure: applied from
 * the log (TrustCmd) at the entry's time, saved in snapshots, bounded
 * (expired records are dropped as time passes). */
#ifndef JZ_TDB_H
#define JZ_TDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "jazari.pb-c.h"

/* At most this many live join tokens and credentials: a request for more is
 * refused (revoke or let some expire). */
#define TDB_MAX_TOKENS 1024
#define TDB_MAX_CREDS 65536
#define TDB_MAX_NODE_GENS 65536
/* Live (unrevoked) credentials one person may hold: a tenant admin making
 * them for a member cannot fill the table. */
#define TDB_MAX_CREDS_PER_USER 32
/* Credentials are handed out once their record is committed; a controller
 * may not have applied it yet for a while. For this long after they are
 * made, credentials unknown to a controller are believed (trust.c), so a
 * revoked record is kept at least this long after its credentials were
 * made, and dropped then (unknown and older: refused anyway). */
#define TDB_CRED_LAG_MS (600LL * 1000)

typedef struct tdb {
    Jazari__TokenRecord **tokens;
    size_t n_tokens;
    Jazari__CredRecord **creds;
    size_t n_creds;
    Jazari__NodeGen **gens;
    size_t n_gens;
} tdb;

void tdb_init(tdb *t);
void tdb_free(tdb *t);

/* Applies one command at now_ms. Returns the name of a node it revoked (the
 * state machine marks it down), else NULL. */
const char *tdb_apply(tdb *t, const Jazari__TrustCmd *c, int64_t now_ms);
/* Drops the records expired at now_ms. */
void tdb_expire(tdb *t, int64_t now_ms);

/* Lookups. */
const Jazari__TokenRecord *tdb_token(const tdb *t, const char *id);
const Jazari__CredRecord *tdb_cred(const tdb *t, const char *serial);
/* How many live, unrevoked credentials user holds. */
size_t tdb_user_creds(const tdb *t, const char *user);
/* The lowest certificate generation of node name still accepted (0: never revoked). */
uint64_t tdb_min_gen(const tdb *t, const char *name);

/* Snapshots: each record as its Snapshot field (9 tokens, 10 creds, 11 gens). */
void tdb_snapshot(const tdb *t, buf *out);
/* Takes the records of a decoded snapshot (copies them). */
void tdb_restore(tdb *t, const Jazari__Snapshot *s);

#endif

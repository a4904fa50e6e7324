/* adb.h - the audit trail, part of the state machine: who asked for each
 * change, from where, when, and what came of it. Records arrive in the
 * commands the leader logs (Command.audit), are numbered and timed when
 * applied (the same on every controller), saved in snapshots, and bounded:
 * the oldest roll off past ADB_MAX records (every record also goes to the
 * controllers' logs, and `jz audit --json` exports them). Pure. */
#ifndef JZ_ADB_H
#define JZ_ADB_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "jazari.pb-c.h"
#include "mring.h"

#define ADB_MAX 50000
#define ADB_WHAT_MAX 300 /* bytes of each text field kept */

typedef struct adb {
    mring ring; /* of encoded AuditRecords; ring.n of them */
    uint64_t next_seq;
} adb;

void adb_init(adb *a);
void adb_free(adb *a);
/* Appends the record r (its texts cut to ADB_WHAT_MAX, seq and at_ms set
 * here), with result. */
void adb_add(adb *a, const Jazari__AuditRecord *r, int64_t at_ms, const char *result);
/* The i-th record from the oldest (i < n), decoded; free with
 * jazari__audit_record__free_unpacked. */
Jazari__AuditRecord *adb_get(const adb *a, size_t i);
/* Snapshots: each record as Snapshot field 12, oldest first. */
void adb_snapshot(const adb *a, buf *out);
void adb_restore(adb *a, const Jazari__Snapshot *s);

#endif

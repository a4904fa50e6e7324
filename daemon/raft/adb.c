/* adb.c - the audit trail: a ring of encoded records. */
#include "adb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

void adb_init(adb *a)
{
    mring_init(&a->ring, ADB_MAX);
    a->next_seq = 1;
}

void adb_free(adb *a)
{
    mring_free(&a->ring);
    adb_init(a);
}

void adb_add(adb *a, const Jazari__AuditRecord *r, int64_t at_ms, const char *result)
{
    char t[5][ADB_WHAT_MAX + 1];
    Jazari__AuditRecord k = JAZARI__AUDIT_RECORD__INIT;
    k.seq = a->next_seq++;
    k.at_ms = at_ms;
    k.user = mring_text(r->user, ADB_WHAT_MAX, t[0]);
    k.role = mring_text(r->role, ADB_WHAT_MAX, t[1]);
    k.from = mring_text(r->from, ADB_WHAT_MAX, t[2]);
    k.what = mring_text(r->what, ADB_WHAT_MAX, t[3]);
    k.result = mring_text(result, ADB_WHAT_MAX, t[4]);
    size_t len = jazari__audit_record__get_packed_size(&k);
    uint8_t *msg = xcalloc(len ? len : 1, 1);
    jazari__audit_record__pack(&k, msg);
    mring_push(&a->ring, msg, (uint32_t)len);
}

Jazari__AuditRecord *adb_get(const adb *a, size_t i)
{
    uint32_t len;
    const uint8_t *m = mring_at(&a->ring, i, &len);
    return m ? jazari__audit_record__unpack(NULL, len, m) : NULL;
}

void adb_snapshot(const adb *a, buf *out)
{
    mring_snapshot(&a->ring, 12, out);
}

void adb_restore(adb *a, const Jazari__Snapshot *s)
{
    adb_free(a);
    size_t from = s->n_audit > ADB_MAX ? s->n_audit - ADB_MAX : 0;
    for (size_t i = from; i < s->n_audit; i++) {
        const Jazari__AuditRecord *r = s->audit[i];
        a->next_seq = r->seq;
        adb_add(a, r, r->at_ms, r->result);
    }
}

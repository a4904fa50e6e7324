/* adb.c - the audit trail: a ring of encoded records. */
#include "adb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"
#include "codec.h"

void adb_init(adb *a)
{
    memset(a, 0, sizeof *a);
    a->next_seq = 1;
}

void adb_free(adb *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->msg[(a->head + i) % ADB_MAX]);
    free(a->msg);
    free(a->len);
    adb_init(a);
}

/* A text field as kept: at most ADB_WHAT_MAX bytes, cut on a character. */
static char *adb__text(const char *s, char *tmp)
{
    size_t n = s ? strlen(s) : 0;
    if (n > ADB_WHAT_MAX) {
        n = ADB_WHAT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* not in the middle of a character */
    }
    memcpy(tmp, s ? s : "", n);
    tmp[n] = '\0';
    return tmp;
}

static void adb__push(adb *a, uint8_t *msg, uint32_t len)
{
    if (!a->msg) {
        a->msg = xcalloc(ADB_MAX, sizeof *a->msg);
        a->len = xcalloc(ADB_MAX, sizeof *a->len);
    }
    size_t at = (a->head + a->n) % ADB_MAX;
    if (a->n == ADB_MAX) { /* the oldest rolls off */
        free(a->msg[a->head]);
        a->head = (a->head + 1) % ADB_MAX;
        at = (a->head + a->n - 1) % ADB_MAX;
    } else {
        a->n++;
    }
    a->msg[at] = msg;
    a->len[at] = len;
}

void adb_add(adb *a, const Jazari__AuditRecord *r, int64_t at_ms, const char *result)
{
    char t[5][ADB_WHAT_MAX + 1];
    Jazari__AuditRecord k = JAZARI__AUDIT_RECORD__INIT;
    k.seq = a->next_seq++;
    k.at_ms = at_ms;
    k.user = adb__text(r->user, t[0]);
    k.role = adb__text(r->role, t[1]);
    k.from = adb__text(r->from, t[2]);
    k.what = adb__text(r->what, t[3]);
    k.result = adb__text(result, t[4]);
    size_t len = jazari__audit_record__get_packed_size(&k);
    uint8_t *msg = xcalloc(len ? len : 1, 1);
    jazari__audit_record__pack(&k, msg);
    adb__push(a, msg, (uint32_t)len);
}

Jazari__AuditRecord *adb_get(const adb *a, size_t i)
{
    if (i >= a->n)
        return NULL;
    size_t at = (a->head + i) % ADB_MAX;
    return jazari__audit_record__unpack(NULL, a->len[at], a->msg[at]);
}

void adb_snapshot(const adb *a, buf *out)
{
    for (size_t i = 0; i < a->n; i++) {
        size_t at = (a->head + i) % ADB_MAX;
        codec_put_field(out, 12, a->msg[at], a->len[at]);
    }
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

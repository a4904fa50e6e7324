/* audit.c - jz audit: the trail of changes the state keeps (raft/adb.h),
 * for admins, oldest first, a page at a time. */
#include <stdlib.h>
#include <string.h>

#include "../common/xmem.h"
#include "jzd.h"

#define AUDIT_PAGE_MAX 10000
#define AUDIT_REPLY_BUDGET ((size_t)4 << 20)

void audit_request(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__AuditRequest *q = e->audit_request;
    authz_who w;
    if (!req_admin(d, c, e, &w, "jz audit"))
        return;
    const adb *a = &d->ctl.state.audit;
    size_t want = q->limit && q->limit < AUDIT_PAGE_MAX ? q->limit : AUDIT_PAGE_MAX;
    Jazari__AuditReply r = JAZARI__AUDIT_REPLY__INIT;
    r.records = xcalloc(want, sizeof(Jazari__AuditRecord *));
    Jazari__AuditRecord *first = adb_get(a, 0);
    r.oldest_seq = first ? first->seq : 0;
    /* Records are numbered without gaps: skip to the one after after_seq. */
    size_t i = first && q->after_seq >= first->seq ? (size_t)(q->after_seq - first->seq + 1) : 0;
    if (first)
        jazari__audit_record__free_unpacked(first, NULL);
    size_t bytes = 0;
    for (; i < a->ring.n; i++) {
        Jazari__AuditRecord *k = adb_get(a, i);
        if (!k)
            continue;
        bool match = k->at_ms >= q->since_ms && (!q->user || !*q->user || strcmp(q->user, k->user) == 0);
        if (!match) {
            jazari__audit_record__free_unpacked(k, NULL);
            continue;
        }
        bytes += jazari__audit_record__get_packed_size(k) + 8;
        if (r.n_records == want || bytes > AUDIT_REPLY_BUDGET) {
            jazari__audit_record__free_unpacked(k, NULL);
            r.truncated = true;
            break;
        }
        r.records[r.n_records++] = k;
    }
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_AUDIT_REPLY, &r);
    for (size_t k = 0; k < r.n_records; k++)
        jazari__audit_record__free_unpacked(r.records[k], NULL);
    free(r.records);
}

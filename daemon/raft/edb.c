/* edb.c - the events: a ring of encoded Events. */
#include "edb.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"

void edb_init(edb *e)
{
    mring_init(&e->ring, EDB_MAX);
    e->next_seq = 1;
    e->retention_ms = EDB_RETENTION_MS;
}

void edb_free(edb *e)
{
    mring_free(&e->ring);
    edb_init(e);
}

void edb_add(edb *e, const Jazari__Event *ev, int64_t at_ms)
{
    char t[5][EDB_TEXT_MAX + 1];
    Jazari__Event k = JAZARI__EVENT__INIT;
    k.seq = e->next_seq++;
    k.time_ms = at_ms;
    k.kind = mring_text(ev->kind, 40, t[0]);
    k.severity = mring_text(ev->severity && *ev->severity ? ev->severity : "info", 20, t[1]);
    k.node = mring_text(ev->node, 128, t[2]);
    k.gpu = ev->gpu < -1 ? -1 : ev->gpu;
    k.job = ev->job;
    k.text = mring_text(ev->text, EDB_TEXT_MAX, t[3]);
    k.by = mring_text(ev->by, 200, t[4]);
    size_t len = jazari__event__get_packed_size(&k);
    uint8_t *msg = xcalloc(len ? len : 1, 1);
    jazari__event__pack(&k, msg);
    mring_push(&e->ring, msg, (uint32_t)len);
}

void edb_note(edb *e, int64_t at_ms, const char *kind, const char *severity, const char *node, int gpu,
              uint64_t job, const char *by, const char *text)
{
    Jazari__Event ev = JAZARI__EVENT__INIT;
    ev.kind = (char *)kind;
    ev.severity = (char *)severity;
    ev.node = (char *)node;
    ev.gpu = gpu;
    ev.job = job;
    ev.by = (char *)by;
    ev.text = (char *)text;
    edb_add(e, &ev, at_ms);
}

Jazari__Event *edb_get(const edb *e, size_t i)
{
    uint32_t len;
    const uint8_t *m = mring_at(&e->ring, i, &len);
    return m ? jazari__event__unpack(NULL, len, m) : NULL;
}

void edb_expire(edb *e, int64_t now_ms)
{
    while (e->ring.n > 0) {
        Jazari__Event *oldest = edb_get(e, 0);
        bool old = !oldest || oldest->time_ms < now_ms - e->retention_ms;
        if (oldest)
            jazari__event__free_unpacked(oldest, NULL);
        if (!old)
            return;
        mring_drop(&e->ring, 1);
    }
}

void edb_snapshot(const edb *e, buf *out)
{
    mring_snapshot(&e->ring, 14, out);
}

void edb_restore(edb *e, const Jazari__Snapshot *s)
{
    edb_free(e);
    if (s->events_retention_ms >= EDB_RETENTION_MIN_MS && s->events_retention_ms <= EDB_RETENTION_MAX_MS)
        e->retention_ms = s->events_retention_ms;
    size_t from = s->n_events > EDB_MAX ? s->n_events - EDB_MAX : 0;
    for (size_t i = from; i < s->n_events; i++) {
        e->next_seq = s->events[i]->seq;
        edb_add(e, s->events[i], s->events[i]->time_ms);
    }
}

/* edb.h - the events, part of the state machine: what an admin watches
 * (jz events): nodes going down and up, drains and resumes, GPU health,
 * jobs requeued or preempted, leader changes. Most are made by applying
 * the entries that cause them (the same on every controller); the rest
 * arrive in an EventCmd. Numbered and timed when applied, saved in
 * snapshots, bounded by count (EDB_MAX) and by age (the policy's
 * events_retention). Pure. */
#ifndef JZ_EDB_H
#define JZ_EDB_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "jazari.pb-c.h"
#include "mring.h"

#define EDB_MAX 100000
#define EDB_TEXT_MAX 400 /* bytes of each text field kept */
#define EDB_RETENTION_MS (30ll * 24 * 3600 * 1000)
#define EDB_RETENTION_MIN_MS (60ll * 1000)
#define EDB_RETENTION_MAX_MS (3650ll * 24 * 3600 * 1000)

typedef struct edb {
    mring ring; /* of encoded Events */
    uint64_t next_seq;
    int64_t retention_ms;
} edb;

void edb_init(edb *e);
void edb_free(edb *e);
/* Appends an event: ev's fields (texts cut to EDB_TEXT_MAX), numbered and
 * timed at_ms here. */
void edb_add(edb *e, const Jazari__Event *ev, int64_t at_ms);
/* The same, from its parts: gpu -1 and job 0 for none. */
void edb_note(edb *e, int64_t at_ms, const char *kind, const char *severity, const char *node, int gpu,
              uint64_t job, const char *by, const char *text);
/* The i-th event from the oldest (i < ring.n), decoded; free with
 * jazari__event__free_unpacked. */
Jazari__Event *edb_get(const edb *e, size_t i);
/* Drops the events older than the retention at now_ms. */
void edb_expire(edb *e, int64_t now_ms);
/* Snapshots: each event as Snapshot field 14, oldest first. */
void edb_snapshot(const edb *e, buf *out);
void edb_restore(edb *e, const Jazari__Snapshot *s);

#endif

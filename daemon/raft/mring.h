/* mring.h - a bounded ring of encoded messages, oldest first: what the
 * state keeps of a stream that only grows (the audit trail, the events).
 * A message is kept packed (a few dozen bytes each) and decoded when read.
 * Pure. */
#ifndef JZ_MRING_H
#define JZ_MRING_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"

typedef struct mring {
    uint8_t **msg;
    uint32_t *len;
    size_t cap;     /* fixed at init */
    size_t head, n; /* the oldest at head */
} mring;

void mring_init(mring *r, size_t cap);
void mring_free(mring *r); /* empty again, same cap */
/* Takes msg (from malloc); past cap the oldest rolls off. */
void mring_push(mring *r, uint8_t *msg, uint32_t len);
/* The i-th message from the oldest (i < n). */
const uint8_t *mring_at(const mring *r, size_t i, uint32_t *len);
/* Drops the k oldest. */
void mring_drop(mring *r, size_t k);
/* Each message as the length-delimited field `field` of a snapshot. */
void mring_snapshot(const mring *r, uint32_t field, buf *out);
/* A text field as kept: at most max bytes, cut on a character boundary,
 * into tmp (max + 1 bytes). */
char *mring_text(const char *s, size_t max, char *tmp);

#endif

/* seen.h - the leader's record of when each node was last heard of, and
 * which nodes have been silent too long. Soft state, never replicated; no
 * I/O and no clock of its own (the caller gives the time), so elections and
 * liveness are unit-tested on a made-up clock. */
#ifndef JZ_SEEN_H
#define JZ_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct seen_node {
    char name[CONFIG_NAME_MAX + 1];
    uint64_t last_ms;
    uint32_t rtt_ms;    /* its connection's round-trip bound when last heard (0: unknown) */
    uint32_t hold_ms;   /* how long its last heartbeat may be held before it is answered */
    bool down_proposed; /* the leader proposed NodeDown: not again */
} seen_node;

typedef struct seen {
    seen_node *v; /* by name */
    size_t n, cap;
    uint64_t term; /* the term led at the last seen_check; 0: following */
} seen;

/* Zeroed memory is an empty table; seen_free releases it. */
void seen_free(seen *s);
/* A heartbeat or registration of name at now, over a connection whose
 * round trip is bounded by rtt_ms (0: unknown, or the leader itself),
 * that may be held hold_ms before its answer (a long poll; 0: none).
 * Only names of nodes in the state are given, so a stranger's names do
 * not grow the table. */
void seen_heard(seen *s, const char *name, uint64_t now, uint32_t rtt_ms, uint32_t hold_ms);

/* How long a node may be silent: timeout_ms (node_timeout), or more where
 * its round trips are long: its heartbeat's hold plus rtts of its round
 * trips, as measured when it was last heard (rtts 0: timeout_ms alone).
 * Heartbeats arrive a hold plus a round trip apart, and a lost one is
 * resent after about one round-trip bound: a constant that suits a LAN
 * would find a far node on a slow link silent. */
typedef struct seen_limit {
    uint64_t timeout_ms, rtts;
} seen_limit;
uint64_t seen_limit_of(const seen_limit *l, uint32_t rtt_ms, uint32_t hold_ms);
/* Called for each node silent past the timeout, with how long. */
typedef void (*seen_down_cb)(void *arg, const char *name, uint64_t silent_ms);
/* Once a tick, with the term this controller leads now (0: it follows)
 * and the names of the nodes the state has up. Whenever that changes,
 * every clock restarts now: what was heard before, or while following,
 * says nothing of the nodes now (a re-elected leader must not find them
 * all silent, even when it lost and won again between two ticks). A node
 * not yet in the table starts its clock now. Calls down once per
 * silence. */
void seen_check(seen *s, uint64_t leading_term, uint64_t now, const seen_limit *limit, const char *const *up,
                size_t n_up, seen_down_cb down, void *arg);

#endif

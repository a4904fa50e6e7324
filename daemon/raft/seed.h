/* seed.h - seeds an empty Raft log with a state (jazarid --restore): the
 * log then starts as if it had taken a snapshot of that state at index,
 * with the voters given, and libraft loads it as any snapshot. */
#ifndef JZ_SEED_H
#define JZ_SEED_H

#include <stddef.h>
#include <stdint.h>

#include "../config.h"

/* Writes into raft_dir (created if absent, which must hold nothing) a
 * snapshot of snap (len bytes, a Snapshot in the codec's format) at log
 * index and term, whose configuration is the voters peers[0..n), and
 * the term. Runs a loop of its own: call it before the daemon's. 0, or -1
 * with one line in err. */
int seed_log(const char *raft_dir, unsigned long long self, const config_peer *peers, unsigned n,
             uint64_t index, uint64_t term, const void *snap, size_t len, char *err, size_t errlen);

#endif

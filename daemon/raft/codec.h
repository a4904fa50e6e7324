/* codec.h - the one codec of the replicated log: how an entry and a
 * snapshot are laid out in bytes, which formats exist and what each
 * command needs. ctl.c, fsm.c and the tests write and read through it;
 * nothing else lays out protobuf fields by hand.
 *
 * An entry on disk is [length: 4 bytes little-endian][Entry message]
 * [zeros to a multiple of 8] (libraft's segments want 8-byte multiples).
 * The Entry message is its head (format, time) followed by each command
 * as a length-delimited field 3, so that commands packed once when
 * proposed are not packed again when batched. A snapshot is a Snapshot
 * message built the same way from its parts. */
#ifndef JZ_CODEC_H
#define JZ_CODEC_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "jazari.pb-c.h"

/* The newest format of entries and snapshots this code writes; it reads
 * every format from 1 up to this one. */
#define CODEC_FORMAT 10
/* What a controller that never said (releases before 0.4) is taken to
 * read. */
#define CODEC_FORMAT_ASSUMED 3
/* Commands in one entry, at most. */
#define CODEC_ENTRY_MAX_CMDS 1024

/* The oldest format that holds cmd_case; 0 for a command this release
 * does not know. A leader writes a command only in a format every voter
 * reads. */
uint32_t codec_cmd_format(Jazari__Command__CmdCase cmd_case);
/* The oldest format that holds cmd whole: its kind's, or later where a
 * submit asks for what older releases would apply differently. */
uint32_t codec_command_format(const Jazari__Command *cmd);

/* Starts an entry in out: its head. */
void codec_entry_begin(buf *out, uint32_t format, int64_t time_ms);
/* Adds one command, already packed (jazari__command__pack). */
void codec_entry_add(buf *out, const void *cmd, size_t len);
/* The whole entry of n commands, at once (tests, benchmarks). */
void codec_entry_encode(uint32_t format, int64_t time_ms, Jazari__Command **cmds, size_t n, buf *out);
/* Decodes and checks an entry: its format is one this release reads, it
 * holds at most CODEC_ENTRY_MAX_CMDS commands, each of a kind this release
 * knows and allowed in that format. Returns the message (free with
 * jazari__entry__free_unpacked) or NULL with err naming what is wrong. */
Jazari__Entry *codec_entry_decode(const void *data, size_t len, char *err, size_t errlen);

/* The bytes libraft stores for an entry: framed and padded, in a buffer
 * from raft_malloc (owned by the caller, then by raft_apply). 0, or -1
 * when out of memory. */
int codec_frame(const buf *entry, struct raft_buffer *out);
/* The entry inside a stored buffer; -1 with err if the frame is bad. */
int codec_unframe(const struct raft_buffer *b, const uint8_t **data, size_t *len, char *err, size_t errlen);

/* A snapshot: its head, then each part as the length-delimited field
 * `field` of Snapshot (4 jobs, 5 nodes, 6 usage, 7 reservations). */
void codec_snapshot_begin(buf *out, const Jazari__Snapshot *head);
void codec_put_field(buf *out, uint32_t field, const void *data, size_t len);
/* Decodes and checks a snapshot's format; NULL with err. */
Jazari__Snapshot *codec_snapshot_decode(const void *data, size_t len, char *err, size_t errlen);

#endif

/* bkfile.h - the layout of a backup file (jz admin backup FILE, jazarid
 * --restore FILE): pure, no I/O, so that jz, jazarid and the tests read and
 * write it with one code.
 *
 *   offset  bytes  what
 *   0       8      "JZBACKUP"
 *   8       4      the file's version, big-endian (BKFILE_VERSION)
 *   12      4      H, the head's length, big-endian (at most BKFILE_HEAD_MAX)
 *   16      H      the head: a BackupHead message (index, term, time, network,
 *                  the snapshot's codec format and length, counts)
 *   16+H    S      the snapshot: a Snapshot message in the codec's format
 *   16+H+S  32     SHA-256 of every byte before it
 *
 * The length of the file is exact: a file cut short, or one with bytes
 * after its end, is refused before its checksum is even looked at. */
#ifndef JZ_BKFILE_H
#define JZ_BKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jazari.pb-c.h"

#define BKFILE_MAGIC "JZBACKUP"
#define BKFILE_VERSION 1
#define BKFILE_HEAD_MAX (64u << 10)
#define BKFILE_SUM_LEN 32
/* The largest backup this release writes or reads (jz and --restore read
 * a file whole). */
#define BKFILE_MAX ((uint64_t)4 << 30)

/* A decoded file: head (free with bkfile_view_free) and the snapshot's
 * bytes, which point into the data given to bkfile_decode. */
typedef struct bkfile_view {
    Jazari__BackupHead *head;
    const uint8_t *snap;
    size_t snap_len;
} bkfile_view;

/* Appends the whole file for snapshot snap (len bytes) to out; sets
 * head->snapshot_len to len. */
void bkfile_encode(Jazari__BackupHead *head, const void *snap, size_t len, buf *out);
/* Checks data (len bytes) is a whole, undamaged backup whose snapshot is in
 * a codec format from 1 to max_format, and fills v. 0, or -1 with one line
 * in err saying what is wrong (v then holds nothing to free). */
int bkfile_decode(const void *data, size_t len, uint32_t max_format, bkfile_view *v, char *err,
                  size_t errlen);
void bkfile_view_free(bkfile_view *v);
/* The head alone of a file (its length and checksum unchecked: for one
 * this process just made, where checking would cost a second pass over a
 * large state). Free with jazari__backup_head__free_unpacked; NULL if data
 * does not start as a backup. */
Jazari__BackupHead *bkfile_head(const void *data, size_t len);

#endif

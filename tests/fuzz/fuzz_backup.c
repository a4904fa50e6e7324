/* fuzz_backup.c - bytes as a backup file (jz admin backup --verify,
 * jazarid --restore). The first byte picks what the rest is: even, a whole
 * file, read as --verify reads it; odd, a state wrapped into a file with a
 * good checksum (random bytes never pass SHA-256), so that what lies behind
 * the checksum, the snapshot's decoding and its loading into a state
 * machine as --restore does, is reached too. Either is read or refused;
 * nothing leaks or crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bkfile.h"
#include "daemon/raft/codec.h"
#include "daemon/raft/fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void restore(const uint8_t *file, size_t len)
{
    bkfile_view v;
    char err[300];
    if (bkfile_decode(file, len, CODEC_FORMAT, &v, err, sizeof err) != 0) {
        if (!err[0])
            abort(); /* a refusal says why */
        return;
    }
    if (v.snap_len != v.head->snapshot_len || v.snap < file || v.snap + v.snap_len > file + len)
        abort();
    Jazari__Snapshot *s = jazari__snapshot__unpack(NULL, v.snap_len, v.snap);
    if (s)
        jazari__snapshot__free_unpacked(s, NULL);
    fsm f;
    fsm_init(&f);
    (void)fsm_restore(&f, v.snap, v.snap_len, err, sizeof err);
    fsm_free(&f);
    bkfile_view_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0) {
        restore(data + 1, size - 1);
        return 0;
    }
    Jazari__BackupHead h = JAZARI__BACKUP_HEAD__INIT;
    h.snapshot_format = 1 + data[0] / 2 % CODEC_FORMAT;
    h.index = 7;
    h.term = 1;
    buf file = BUF_INIT;
    bkfile_encode(&h, data + 1, size - 1, &file);
    restore((const uint8_t *)file.data, file.len);
    buf_free(&file);
    return 0;
}

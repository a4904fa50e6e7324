/* fuzz_frame.c - the frame reader and envelope decoder on arbitrary bytes,
 * fed in pieces whose sizes come from the input itself (split and coalesced
 * reads), as a connection would see them. */
#include <stdint.h>
#include <stdlib.h>

#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the read size: 1..256 bytes a read. */
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;
    wire_reader r;
    wire_reader_init(&r, 1 << 16);
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        wire_reader_feed(&r, data + off, n);
        off += n;
        for (;;) {
            const uint8_t *payload;
            size_t len;
            wire_status ws = wire_reader_next(&r, &payload, &len);
            if (ws != WIRE_FRAME) {
                if (ws == WIRE_TOO_LARGE)
                    off = size; /* the connection would be closed */
                break;
            }
            char err[160];
            wire_msg *m = wire_unpack(payload, len, err, sizeof err);
            if (m) {
                /* A decoded envelope must pack again without trouble. */
                buf b = BUF_INIT;
                wire_pack(wire_msg_env(m), &b);
                (void)wire_body_name(wire_msg_env(m));
                buf_free(&b);
                wire_msg_free(m);
            }
        }
    }
    (void)wire_reader_pending(&r);
    wire_reader_free(&r);
    return 0;
}

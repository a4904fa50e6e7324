/* fuzz_entry.c - bytes as log entries, as libraft hands them to a
 * controller: unframed by the codec and applied to a state machine that
 * already holds nodes and jobs; then snapshotted and restored, which must
 * give the same bytes. An entry that does not decode must leave the state
 * as it was. The first input byte picks how many times the rest is applied
 * (a log replays the same kinds of entries many times). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/raft/codec.h"
#include "daemon/raft/fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned times = 1 + data[0] % 4;
    struct raft_buffer b = {.base = (void *)(data + 1), .len = size - 1};
    fsm f;
    fsm_init(&f);
    char err[300];
    for (unsigned i = 0; i < times; i++) {
        const uint8_t *p;
        size_t len;
        if (codec_unframe(&b, &p, &len, err, sizeof err) != 0)
            break;
        buf before = BUF_INIT, after = BUF_INIT;
        fsm_snapshot(&f, &before);
        if (fsm_apply(&f, p, len, NULL, err, sizeof err) != 0) {
            fsm_snapshot(&f, &after);
            if (before.len != after.len || memcmp(before.data, after.data, before.len) != 0)
                abort(); /* a refused entry changed the state */
        }
        buf_free(&before);
        buf_free(&after);
    }
    buf s1 = BUF_INIT, s2 = BUF_INIT;
    fsm_snapshot(&f, &s1);
    fsm g;
    fsm_init(&g);
    if (fsm_restore(&g, s1.data, s1.len, err, sizeof err) != 0)
        abort(); /* our own snapshot must restore */
    fsm_snapshot(&g, &s2);
    if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len) != 0)
        abort();
    buf_free(&s1);
    buf_free(&s2);
    fsm_free(&f);
    fsm_free(&g);
    return 0;
}

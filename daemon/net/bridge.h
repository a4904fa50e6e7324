/* bridge.h - a TLS connection made into a plain stream for libraft.
 *
 * libraft reads and writes the libuv stream it is given itself, so it
 * cannot speak TLS. A bridge gives it one end of a socketpair and pumps
 * bytes between the other end and the TLS connection: plaintext one way,
 * ciphertext the other, with back-pressure both ways (a side that does not
 * drain stops the other side's reads). When either side ends, both close:
 * libraft sees the end of its stream and closes its end itself. */
#ifndef JZ_BRIDGE_H
#define JZ_BRIDGE_H

#include <stdbool.h>
#include <uv.h>

#include "../../common/tls.h"

/* Bytes one side may have queued before the other side's reads stop. */
#define BRIDGE_MAX_QUEUED (8u << 20)

typedef struct bridge bridge;

typedef struct bridge_set {
    uv_loop_t *loop;
    bridge *head;
    bool closing;
    void (*on_empty)(struct bridge_set *s); /* once closing and the last bridge closed */
} bridge_set;

void bridge_set_init(bridge_set *s, uv_loop_t *loop);
/* Bridges the TCP stream tcp (a malloc'd handle; the bridge takes it and the
 * engine t) to a new stream that it returns for libraft (malloc'd, as
 * libraft frees it). rest: plaintext already read from tcp, given to
 * libraft first. NULL with err if the socketpair cannot be made (tcp and t
 * are then closed and freed). */
uv_stream_t *bridge_start(bridge_set *s, uv_stream_t *tcp, tls *t, const void *rest, size_t n, char *err,
                          size_t errlen);
/* The worst smoothed round-trip bound (srtt + 4 x rttvar, as the kernel
 * measures it: TCP_INFO) over the bridged TCP connections, in
 * microseconds; 0 when there are none or none has a measure yet. */
unsigned bridge_rtt_bound_us(const bridge_set *s);
/* Closes every bridge; on_empty runs once all are closed (now, if none). */
void bridge_close_all(bridge_set *s, void (*on_empty)(bridge_set *s));

#endif

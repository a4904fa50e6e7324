/* transport.h - libraft's connections on the daemon's one port.
 *
 * A struct raft_uv_transport (raft/uv.h) whose streams are ordinary daemon
 * connections: the dialer opens a TCP connection to the peer's `listen`
 * address and sends a hello of kind PEER_CONTROLLER with its Raft id and
 * address; the peer's daemon answers with a hello reply and hands the
 * stream to libraft (net_conn_send_and_detach). Over TLS, each side gives
 * libraft a bridge to the TLS connection instead (net/bridge.h): both
 * sides' certificates must be controllers'. The dialer passes its end
 * to libraft only after it has read that reply, so no Raft byte can be in
 * either side's buffers at the handover. Each Raft connection is one-way, as
 * libraft expects. */
#ifndef JZ_TRANSPORT_H
#define JZ_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

#include "../config.h"
#include "../net/net.h"

/* A connection attempt that has not completed its hello in this time fails
 * (a partitioned peer drops packets: TCP alone would wait minutes). */
#define RTX_CONNECT_TIMEOUT_MS 2000

/* Initialises t. node_name is copied; log_format is the newest log format
 * this controller announces to the others. Returns 0 or a RAFT_* code. */
int rtx_init(struct raft_uv_transport *t, uv_loop_t *loop, const char *node_name, uint32_t log_format,
             const sec_ctx *sec);
/* The log format controller id announced in its last hello or hello
 * reply; 0 if it has said nothing yet (or runs a release that does not). */
uint32_t rtx_peer_format(struct raft_uv_transport *t, raft_id id);
/* The release controller id said it runs in that hello ("" if none yet);
 * printable ASCII only, owned by t. */
const char *rtx_peer_version(struct raft_uv_transport *t, raft_id id);
/* The worst round-trip bound to the other controllers, in ms rounded up
 * (bridge_rtt_bound_us over libraft's connections); 0: not measured (no
 * connection yet, or plaintext). */
unsigned rtx_rtt_bound_ms(struct raft_uv_transport *t);
/* Frees what rtx_init allocated, after libraft has closed t. */
void rtx_free(struct raft_uv_transport *t);

/* The daemon received a hello of kind PEER_CONTROLLER on c: answers it and
 * gives the stream to libraft (or refuses, if raft is not listening). */
void rtx_accept(struct raft_uv_transport *t, net_conn *c, const Jazari__Envelope *hello);

#endif

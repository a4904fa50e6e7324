/* upuplink.h - an outgoing framed connection to another daemon: this node's
 * uplink to the leader. It says hello as an agent, matches replies to
 * requests by id, and reconnects on the next request after a failure.
 * One target address at a time; uplink_retarget moves it. */
#ifndef JZ_UPLINK_H
#define JZ_UPLINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../../common/wire.h"
#include "sec.h"

/* A connection or a request that makes no progress in this time fails;
 * on a connection with long round trips, four of them more (a held
 * heartbeat is answered after its hold plus a round trip, or two when a
 * segment was lost). */
#define UPLINK_TIMEOUT_MS 5000

/* reply is the callee's (free with wire_msg_free); NULL with why when the
 * request failed (no connection, closed, timed out). `sent` says whether
 * the request had been written: if so, the peer may have acted on it, and
 * a retry of a non-idempotent request could act twice. Called exactly once. */
typedef void (*uplink_cb)(void *arg, wire_msg *reply, const char *why, bool sent);

typedef struct uplink_req uplink_req;

typedef enum { UPLINK_IDLE, UPLINK_CONNECTING, UPLINK_HELLO, UPLINK_READY } uplink_state;

typedef struct uplink {
    uv_loop_t *loop;
    char name[64];    /* ours, for the hello */
    char target[256]; /* host:port of the peer */
    uplink_state state;
    uv_tcp_t *tcp; /* the current connection, malloc'd */
    const sec_ctx *sec;
    tls *tls;           /* the current connection's TLS (NULL: plaintext) */
    char expect_node[64]; /* "": the peer must be a controller; else this node */
    uv_connect_t connect;
    uv_timer_t timer; /* connect and request deadline */
    wire_reader reader;
    char rbuf[65536];
    uint64_t next_id;
    /* Written, awaiting their replies, oldest first: the leader answers
     * mostly in order, so a reply finds its request at the head (newest
     * first, each reply walked every request in flight). */
    uplink_req *sent;
    uplink_req **sent_tail;
    uplink_req *queued; /* waiting for the connection */
    uplink_req **queued_tail;
    bool closing;
    int open; /* handles not yet closed */
    void (*close_cb)(struct uplink *l);
} uplink;

void uplink_init(uplink *l, uv_loop_t *loop, const char *name, const sec_ctx *sec);
/* The peer must be this node (its certificate's name); NULL: a controller. */
void uplink_expect(uplink *l, const char *node);
/* Points the uplink at host:port; an open connection elsewhere is dropped
 * (its requests fail). */
void uplink_retarget(uplink *l, const char *target);
/* Sends env (its request_id is replaced) and calls cb with the reply.
 * env is encoded at once: the caller may free it when this returns. */
void uplink_request(uplink *l, Jazari__Envelope *env, uplink_cb cb, void *arg);
bool uplink_ready(const uplink *l);
/* Fails every request and closes; cb runs when the handles are closed. */
void uplink_close(uplink *l, void (*cb)(uplink *l));

#endif

/* net.h - the daemon's connections: listeners on TCP and a Unix socket, and
 * framed protobuf envelopes on libuv streams (common/wire.h).
 *
 * A connection that sends a frame over the maximum, a truncated frame or
 * one that does not decode is closed with the reason logged; nothing else
 * is affected. Callback rule (libuv's): when a function that takes a
 * callback fails, the callback is never called. */
#ifndef JZ_NET_H
#define JZ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "../../common/tls.h"
#include "../../common/wire.h"
#include "sec.h"

typedef struct net_server net_server;
typedef struct net_conn net_conn;

typedef struct net_handlers {
    /* A decoded envelope arrived on c. The callee owns msg and frees it with
     * wire_msg_free. */
    void (*on_message)(net_conn *c, wire_msg *msg, void *data);
    /* A TCP connection finished its TLS handshake (tls_peer(c->tls) says
     * who it is, NULL if anonymous): false after closing it (optional). */
    bool (*on_secure)(net_conn *c, void *data);
    /* Whether c, idle past the limit, may be closed (optional: it may be
     * waiting for a long answer). */
    bool (*may_idle_close)(net_conn *c, void *data);
    /* c is about to be freed (optional). */
    void (*on_close)(net_conn *c, void *data);
    void *data;
} net_handlers;

/* A connection that has not drained this many bytes of replies is closed:
 * a peer that does not read must not hold the daemon's memory. */
#define NET_MAX_PENDING_WRITE (64u << 20)

/* A TCP peer that leaves our data unacknowledged, or stops answering
 * keepalive probes, for this long is dropped: a partition then ends the
 * connection in seconds (TCP alone retries for many minutes), and Raft
 * and the uplink reconnect once the network is back. */
#define NET_TCP_DEAD_MS 5000

/* What a stranger at the port, or a user of the machine at the socket, can
 * make the daemon spend (net_limits): descriptors kept back for the local
 * socket and the network's own peers, a cap on connections that have not
 * proved who they are, a cap on each local user's connections, deadlines
 * for a handshake, a first request, an idle connection and a frame that
 * trickles in, and one budget for the bytes of incomplete frames across all
 * connections. */
typedef struct net_limits {
    unsigned max_tcp;           /* TCP connections at once (0: from RLIMIT_NOFILE) */
    unsigned max_unproven;      /* TCP connections without a certificate yet */
    unsigned max_local;         /* Unix-socket connections at once (0: the descriptors TCP leaves) */
    unsigned max_local_per_uid; /* of them, one uid's (0: NET_LOCAL_PER_UID); root is not held to it */
    uint64_t handshake_ms;      /* TLS handshake done within this */
    uint64_t idle_ms;           /* a person's connection with no frame for this long */
    uint64_t frame_ms;          /* a frame's bytes all arrived within this of its first; a local
                                 * connection's first frame within this of its connecting */
    uint64_t buffered_max;      /* bytes of incomplete frames, all connections together */
} net_limits;

#define NET_FD_RESERVE 256 /* descriptors never given to TCP peers */
/* Of those, never given to any connection: the daemon's own files (its
 * state and Raft log, Raft's links, job supervisors, account lookups). */
#define NET_FD_OWN 64
#define NET_LOCAL_PER_UID 64 /* a local user's connections at once, by default */
/* A local connection refused for a limit waits this long at most for its
 * first request, to answer it with the reason. */
#define NET_REFUSAL_MS 2000

typedef enum { NET_TCP, NET_UNIX } net_kind;

/* The libuv handle of a connection, allocated on its own (malloc) so that
 * it can outlive the connection: net_conn_send_and_detach hands it to
 * another owner (libraft takes Raft streams and frees them itself). */
typedef union net_handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} net_handle;

/* The stream handed over, with its TLS engine (NULL: plaintext), which the
 * callee now owns, and the plaintext already read past the last frame. */
typedef void (*net_detach_cb)(uv_stream_t *stream, tls *t, buf *rest, void *arg);

struct net_conn {
    net_handle *h;
    net_server *server;
    net_kind kind;
    wire_reader reader;
    tls *tls; /* TCP: the TLS engine (NULL only when the network runs plaintext) */
    char peer[80]; /* "127.0.0.1:5555" or "unix:uid=1000,pid=42" */
    uid_t uid;     /* peer credentials, Unix socket only */
    pid_t pid;
    bool have_creds;
    size_t pending_write; /* bytes handed to uv_write, not yet written */
    bool closing;
    bool close_after_write;  /* close once pending writes are done */
    net_detach_cb detach_cb; /* hand the stream over once writes are done */
    void *detach_arg;
    uint64_t frames; /* frames received */
    unsigned rtt_us;    /* net_conn_rtt_bound_us's last measure */
    uint64_t rtt_at_ms; /* when it was taken (uv_now; 0: never) */
    uint64_t since_ms;       /* accepted (uv_now) */
    uint64_t last_frame_ms;  /* the last whole frame, or since_ms */
    uint64_t frame_from_ms;  /* the first byte of the frame in progress, 0 if none */
    size_t buffered;         /* bytes of the incomplete frame, counted in the server's budget */
    bool unproven;           /* counted in the server's n_unproven */
    char *refusal;           /* refused (a local limit): its first request is answered with this */
    void *user;      /* the daemon's per-connection state */
    /* The server's: the connection is over (its handle closed or given
     * away); the server unlinks and frees it. A pointer, so that conn.c
     * never calls back into server.c. */
    void (*gone)(net_conn *c);
    net_conn *prev, *next;
};

struct net_server {
    uv_loop_t *loop;
    net_handlers handlers;
    const sec_ctx *sec; /* TLS for accepted TCP connections */
    size_t max_frame;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    bool tcp_open, pipe_open;
    char *unix_path; /* unlinked at close */
    net_conn *conns; /* all open connections */
    size_t n_conns;
    size_t n_tcp;      /* of them, TCP */
    size_t n_local;    /* of them, on the Unix socket */
    size_t max_conns;  /* connections of both kinds at once: the descriptors less NET_FD_OWN */
    struct net_uid_count *uids; /* local connections per peer uid (those with some) */
    size_t n_uids, cap_uids;
    net_limits limits;
    size_t buffered;   /* bytes of incomplete frames, all connections */
    uv_timer_t sweep;  /* once a second: the deadlines */
    bool sweep_on;
    size_t n_unproven; /* TCP connections that have shown no certificate yet */
    uint64_t refused;  /* TCP connections refused for a limit (logged now and then) */
    uint64_t evicted;  /* connections without a certificate closed to make room */
    uint64_t refused_local; /* local connections refused for a limit */
    uint64_t evicted_local; /* idle local connections closed to make room */
    int open_handles; /* listeners and connections not yet closed */
    bool closing;
    void (*close_cb)(net_server *s);
    char *read_buf; /* one read buffer for the whole loop */
};

/* Nodelay, keepalive probes every second, and NET_TCP_DEAD_MS as the limit
 * for unacknowledged data, on a connected TCP handle. */
void net_tcp_tune(uv_tcp_t *tcp);
/* The connection's round-trip bound as the kernel measures it (TCP_INFO:
 * smoothed, plus four deviations: its retransmission timeout), in
 * microseconds; 0 when it has no measure yet or is not TCP. */
unsigned net_tcp_rtt_bound_us(const uv_handle_t *tcp);
/* The same for a connection of the server (0 for a local one), measured
 * at most once a second: a heartbeat each second from 10,000 nodes over
 * shared connections asks for it far more often than it changes. */
unsigned net_conn_rtt_bound_us(net_conn *c);

/* sec: the TLS contexts (the server keeps the pointer; its contents may change). */
void net_server_init(net_server *s, uv_loop_t *loop, const net_handlers *h, const sec_ctx *sec, size_t max_frame);
/* The peer's certificate identity, NULL for a local or anonymous peer. */
const pki_id *net_conn_peer_id(const net_conn *c);
/* Listens on host:port. Returns 0, or a libuv error with one line in err. */
int net_server_listen_tcp(net_server *s, const char *host, uint16_t port, char *err, size_t errlen);
/* Listens on a Unix socket at path (mode 0666: the daemon identifies each
 * caller by its peer credentials). A stale socket file is replaced; a live
 * one (another daemon answers) is an error. Each uid but root may have
 * max_local_per_uid connections, all of them together max_local: past
 * that a connection is refused, its first request answered with why. */
int net_server_listen_unix(net_server *s, const char *path, char *err, size_t errlen);
/* Sets the limits (zeros: the defaults); call before listening. */
void net_server_limits(net_server *s, const net_limits *l);
/* Closes the listeners and every connection; cb runs once all handles are
 * closed (the server's memory may then be released). */
void net_server_close(net_server *s, void (*cb)(net_server *s));

/* Queues env on c. Returns 0, or -1 if c is closing (nothing sent). */
int net_conn_send(net_conn *c, const Jazari__Envelope *env);
/* Sends env, then closes c once it is written. */
void net_conn_send_and_close(net_conn *c, const Jazari__Envelope *env);
/* Sends env, stops reading, and once env is written removes c from the
 * server, frees it and passes its stream and TLS engine to cb, which then
 * owns them (it must uv_close the stream and free its memory with free(),
 * and tls_free the engine). If c closes first (a write error), cb is never
 * called. */
void net_conn_send_and_detach(net_conn *c, const Jazari__Envelope *env, net_detach_cb cb, void *arg);
/* Closes c, logging why (a printf format) at warn level; NULL: quietly. */
void net_conn_close(net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* jzd.h - the daemon's own state, shared by daemon.c (life, hello) and
 * api.c (the requests). Internal to daemon/. */
#ifndef JZ_JZD_H
#define JZ_JZD_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "net/net.h"
#include "node/topo.h"
#include "raft/ctl.h"

typedef struct jzd_wait jzd_wait;

typedef struct jzd {
    uv_loop_t loop;
    const config *cfg;
    topo *topo;
    bool is_controller;
    ctl ctl;                 /* when is_controller */
    bool ctl_running;
    net_server server;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;         /* heartbeat_interval: registration, liveness */
    bool registering;        /* a NodeUp of this node is in the log's queue */
    bool stopping;
    int status;              /* exit status */
} jzd;

/* Per connection. */
typedef struct jzd_session {
    bool greeted;
    Jazari__PeerKind kind;
    jzd_wait *waits;         /* requests waiting on the log */
} jzd_session;

/* A request waiting for its entry to commit. If its connection closes
 * first, conn becomes NULL and the reply is dropped. */
struct jzd_wait {
    jzd *d;
    net_conn *conn;
    uint64_t request_id;
    Jazari__Envelope__BodyCase kind;
    jzd_wait *prev, *next;
};

/* Answers a request that came after the hello. */
void api_dispatch(jzd *d, net_conn *c, const Jazari__Envelope *e);
/* The connection of these waits closed. */
void api_session_closed(jzd_session *s);
/* Once a heartbeat interval: keeps this node registered in the state. */
void api_tick(jzd *d);

void jzd_reply_error(net_conn *c, uint64_t id, Jazari__ErrorCode code, bool close, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
const char *jzd_software_version(void);

#endif

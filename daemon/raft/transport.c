/* transport.c - libraft's connections on the daemon's one port. */
#include "transport.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../config.h"
#include "../net/bridge.h"

typedef struct rtx_dial rtx_dial;

typedef struct rtx {
    uv_loop_t *loop;
    raft_id id;
    char address[256];
    char name[CONFIG_NAME_MAX + 1];
    raft_uv_accept_cb accept_cb;
    bool closing;
    raft_uv_transport_close_cb close_cb;
    struct raft_uv_transport *t;
    rtx_dial *dials; /* connection attempts in progress */
    uint32_t format; /* the log format we announce */
    struct {
        raft_id id;
        uint32_t format;
        char version[40];            /* its Hello's software_version, cut short */
    } heard[CONFIG_MAX_CONTROLLERS]; /* what the other controllers announced */
    uv_timer_t closer;               /* fires the close callback asynchronously */
    const sec_ctx *sec;              /* TLS for our dials */
    bridge_set bridges;              /* TLS streams made plain for libraft */
    bool bridges_closed;
} rtx;

struct rtx_dial {
    rtx *x;
    raft_id id;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    char address[256];
    uv_tcp_t *tcp; /* malloc'd: handed to libraft (or its bridge) on success */
    tls *tls;      /* NULL: plaintext */
    uv_connect_t connect;
    uv_timer_t timer;
    wire_reader reader;
    char rbuf[4096];
    int status; /* 0 while going on, else the RAFT_* result */
    int open;   /* handles of ours not yet closed */
    rtx_dial *prev, *next;
};

/* --- what the others read --------------------------------------------------- */

/* Controller id announced format (ids are 1..CONFIG_MAX_CONTROLLERS). */
/* version is what the peer says it runs: shown in jz status only, so it is
 * cut short and any byte that is not printable ASCII becomes '?'. */
static void rtx__heard(rtx *x, raft_id id, uint32_t format, const char *version)
{
    if (id == 0 || id > CONFIG_MAX_CONTROLLERS)
        return;
    if (x->heard[id - 1].format != format || x->heard[id - 1].id != id)
        log_info("raft", "controller %llu reads log formats up to %u", (unsigned long long)id, format);
    x->heard[id - 1].id = id;
    x->heard[id - 1].format = format;
    char *v = x->heard[id - 1].version;
    size_t n = 0;
    for (; version && version[n] && n + 1 < sizeof x->heard[0].version; n++)
        v[n] = version[n] >= 0x20 && version[n] < 0x7f ? version[n] : '?';
    v[n] = 0;
}

uint32_t rtx_peer_format(struct raft_uv_transport *t, raft_id id)
{
    rtx *x = t->impl;
    if (!x || id == 0 || id > CONFIG_MAX_CONTROLLERS || x->heard[id - 1].id != id)
        return 0;
    return x->heard[id - 1].format;
}

const char *rtx_peer_version(struct raft_uv_transport *t, raft_id id)
{
    rtx *x = t->impl;
    if (!x || id == 0 || id > CONFIG_MAX_CONTROLLERS || x->heard[id - 1].id != id)
        return "";
    return x->heard[id - 1].version;
}

unsigned rtx_rtt_bound_ms(struct raft_uv_transport *t)
{
    rtx *x = t->impl;
    if (!x || x->bridges_closed)
        return 0;
    unsigned us = bridge_rtt_bound_us(&x->bridges);
    return (us + 999) / 1000;
}

/* --- connecting -------------------------------------------------------------- */

static void rtx__unlink(rtx *x, rtx_dial *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        x->dials = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

static void rtx__maybe_closed(rtx *x);

/* Every handle of the attempt is closed: report the failure, free it. */
static void rtx__dial_done(rtx_dial *d)
{
    rtx *x = d->x;
    rtx__unlink(x, d);
    if (d->status != 0 && d->cb)
        d->cb(d->req, NULL, d->status);
    wire_reader_free(&d->reader);
    tls_free(d->tls);
    free(d);
    rtx__maybe_closed(x);
}

static void rtx__on_tcp_closed(uv_handle_t *h)
{
    rtx_dial *d = h->data;
    free(h);
    if (--d->open == 0)
        rtx__dial_done(d);
}

static void rtx__on_timer_closed(uv_handle_t *h)
{
    rtx_dial *d = h->data;
    if (--d->open == 0)
        rtx__dial_done(d);
}

static void rtx__dial_fail(rtx_dial *d, int status, const char *why)
{
    if (d->status != 0)
        return;
    d->status = status;
    if (why)
        log_debug("raft", "connect to %s: %s", d->address, why);
    uv_close((uv_handle_t *)d->tcp, rtx__on_tcp_closed);
    uv_close((uv_handle_t *)&d->timer, rtx__on_timer_closed);
}

static void rtx__dial_succeed(rtx_dial *d)
{
    uv_read_stop((uv_stream_t *)d->tcp);
    uv_stream_t *stream = (uv_stream_t *)d->tcp;
    stream->data = NULL;
    d->tcp = NULL;
    d->open--; /* the stream is libraft's now, or its bridge's */
    if (d->tls) {
        char err[200];
        tls *t = d->tls;
        d->tls = NULL;
        stream = bridge_start(&d->x->bridges, stream, t, d->reader.in.data + d->reader.pos,
                              wire_reader_pending(&d->reader), err, sizeof err);
        if (!stream) {
            log_warn("raft", "connect to %s: %s", d->address, err);
            d->cb(d->req, NULL, RAFT_NOCONNECTION);
            d->status = -1;
            d->cb = NULL;
            uv_close((uv_handle_t *)&d->timer, rtx__on_timer_closed);
            return;
        }
    }
    d->cb(d->req, stream, 0);
    d->status = -1; /* reported: nothing more to say when done */
    d->cb = NULL;
    uv_close((uv_handle_t *)&d->timer, rtx__on_timer_closed);
}

static void rtx__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    rtx_dial *d = h->data;
    (void)suggested;
    b->base = d->rbuf;
    b->len = sizeof d->rbuf;
}

static void rtx__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    rtx_dial *d = s->data;
    if (n < 0) {
        rtx__dial_fail(d, RAFT_NOCONNECTION,
                       n == UV_EOF ? "closed before the hello reply" : uv_strerror((int)n));
        return;
    }
    buf plain = BUF_INIT;
    int rc = sec_recv(s, d->tls, b->base, (size_t)n, &plain, NULL, NULL);
    wire_reader_feed(&d->reader, plain.data, plain.len);
    buf_free(&plain);
    if (rc != 0) {
        if (rc < 0)
            log_warn("raft", "controller at %s: %s", d->address, tls_error(d->tls));
        rtx__dial_fail(d, RAFT_NOCONNECTION, rc > 0 ? "closed before the hello reply" : tls_error(d->tls));
        return;
    }
    const pki_id *who = d->tls && tls_ready(d->tls) ? tls_peer(d->tls) : NULL;
    if (d->tls && tls_ready(d->tls) && (!who || strcmp(who->kind, "controller") != 0)) {
        log_warn("raft", "%s is not a controller of this network (its certificate says %s %s)", d->address,
                 who ? who->kind : "nothing", who ? who->name : "");
        rtx__dial_fail(d, RAFT_NOCONNECTION, "not a controller");
        return;
    }
    const uint8_t *p;
    size_t len;
    wire_status ws = wire_reader_next(&d->reader, &p, &len);
    if (ws == WIRE_NEED_MORE)
        return;
    char err[160];
    wire_msg *m = ws == WIRE_FRAME ? wire_unpack(p, len, err, sizeof err) : NULL;
    const Jazari__Envelope *e = m ? wire_msg_env(m) : NULL;
    if (!e || e->body_case != JAZARI__ENVELOPE__BODY_HELLO_REPLY) {
        if (e && e->error && e->error->code != JAZARI__ERROR_CODE__OK)
            log_warn("raft", "controller at %s refused us: %s", d->address, e->error->message);
        rtx__dial_fail(d, RAFT_NOCONNECTION, "no valid hello reply");
    } else {
        rtx__heard(d->x, d->id, e->hello_reply->log_format, e->hello_reply->software_version);
        rtx__dial_succeed(d);
    }
    wire_msg_free(m);
}

static void rtx__on_connect(uv_connect_t *c, int status)
{
    rtx_dial *d = c->data;
    if (d->status != 0)
        return;
    if (status < 0) {
        rtx__dial_fail(d, RAFT_NOCONNECTION, uv_strerror(status));
        return;
    }
    net_tcp_tune(d->tcp);
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    Jazari__Hello h = JAZARI__HELLO__INIT;
    env.request_id = 1;
    env.version = WIRE_PROTOCOL_VERSION;
    env.body_case = JAZARI__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    h.protocol_version = WIRE_PROTOCOL_VERSION;
    h.software_version = JZ_VERSION;
    h.kind = JAZARI__PEER_KIND__PEER_CONTROLLER;
    h.name = d->x->name;
    h.raft_id = d->x->id;
    h.raft_address = d->x->address;
    h.log_format = d->x->format;
    buf out = BUF_INIT;
    wire_pack(&env, &out);
    d->tls = sec_engine(d->x->sec, false);
    long rc = sec_send((uv_stream_t *)d->tcp, d->tls, out.data, out.len, NULL, NULL);
    buf_free(&out);
    if (rc >= 0)
        rc = uv_read_start((uv_stream_t *)d->tcp, rtx__alloc, rtx__on_read);
    if (rc < 0)
        rtx__dial_fail(d, RAFT_NOCONNECTION, d->tls ? tls_error(d->tls) : uv_strerror((int)rc));
}

static void rtx__on_timeout(uv_timer_t *t)
{
    rtx_dial *d = t->data;
    rtx__dial_fail(d, RAFT_NOCONNECTION, "timed out");
}

static int rtx__connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                        const char *address, raft_uv_connect_cb cb)
{
    rtx *x = t->impl;
    char host[256];
    uint16_t port;
    struct sockaddr_storage sa;
    if (config_parse_hostport(address, host, sizeof host, &port) != 0 ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)) {
        snprintf(t->errmsg, sizeof t->errmsg, "controller %llu address '%s' is not ip:port",
                 (unsigned long long)id, address);
        return RAFT_NOCONNECTION;
    }
    rtx_dial *d = calloc(1, sizeof *d);
    if (!d)
        return RAFT_NOMEM;
    d->x = x;
    d->id = id;
    d->req = req;
    d->cb = cb;
    snprintf(d->address, sizeof d->address, "%s", address);
    wire_reader_init(&d->reader, 1 << 16);
    d->tcp = malloc(sizeof *d->tcp);
    if (!d->tcp) {
        free(d);
        return RAFT_NOMEM;
    }
    uv_tcp_init(x->loop, d->tcp);
    uv_timer_init(x->loop, &d->timer);
    d->tcp->data = d;
    d->timer.data = d;
    d->connect.data = d;
    d->open = 2;
    d->next = x->dials;
    if (x->dials)
        x->dials->prev = d;
    x->dials = d;
    uv_timer_start(&d->timer, rtx__on_timeout, RTX_CONNECT_TIMEOUT_MS, 0);
    int rc = uv_tcp_connect(&d->connect, d->tcp, (struct sockaddr *)&sa, rtx__on_connect);
    if (rc < 0) {
        /* The callback rule: a failed call never calls cb. */
        d->cb = NULL;
        d->status = -1;
        uv_close((uv_handle_t *)d->tcp, rtx__on_tcp_closed);
        uv_close((uv_handle_t *)&d->timer, rtx__on_timer_closed);
        snprintf(t->errmsg, sizeof t->errmsg, "connect to %s: %s", address, uv_strerror(rc));
        return RAFT_NOCONNECTION;
    }
    return 0;
}

/* --- accepting ------------------------------------------------------------------- */

typedef struct rtx_accepted {
    rtx *x;
    raft_id id;
    char address[256];
} rtx_accepted;

static void rtx__free_stream(uv_handle_t *h)
{
    free(h);
}

static void rtx__on_detached(uv_stream_t *stream, tls *t, buf *rest, void *arg)
{
    rtx_accepted *a = arg;
    rtx *x = a->x;
    if (x->closing || !x->accept_cb) {
        uv_close((uv_handle_t *)stream, rtx__free_stream);
        tls_free(t);
    } else {
        char err[200];
        if (t)
            stream = bridge_start(&x->bridges, stream, t, rest->data, rest->len, err, sizeof err);
        if (stream)
            x->accept_cb(x->t, a->id, a->address, stream);
        else
            log_warn("raft", "Raft stream from controller %llu: %s", (unsigned long long)a->id, err);
    }
    free(a);
}

void rtx_accept(struct raft_uv_transport *t, net_conn *c, const Jazari__Envelope *e)
{
    rtx *x = t->impl;
    const Jazari__Hello *h = e->hello;
    wire_reply r;
    if (c->kind != NET_TCP || x->closing || !x->accept_cb || h->raft_id == 0 || !h->raft_address ||
        strlen(h->raft_address) >= sizeof((rtx_accepted *)0)->address) {
        wire_reply_init(&r, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE,
                        "this daemon does not take Raft connections (not a controller, or stopping)");
        net_conn_send_and_close(c, &r.env);
        return;
    }
    rtx_accepted *a = calloc(1, sizeof *a);
    if (!a)
        abort();
    a->x = x;
    a->id = h->raft_id;
    snprintf(a->address, sizeof a->address, "%s", h->raft_address);
    wire_reply_init(&r, e->request_id, JAZARI__ERROR_CODE__OK, NULL);
    Jazari__HelloReply hr = JAZARI__HELLO_REPLY__INIT;
    hr.protocol_version = WIRE_PROTOCOL_VERSION;
    hr.software_version = JZ_VERSION;
    hr.name = x->name;
    hr.role = "controller";
    hr.log_format = x->format;
    rtx__heard(x, h->raft_id, h->log_format, h->software_version);
    r.env.body_case = JAZARI__ENVELOPE__BODY_HELLO_REPLY;
    r.env.hello_reply = &hr;
    log_debug("raft", "Raft stream from controller %llu (%s)", (unsigned long long)a->id, a->address);
    net_conn_send_and_detach(c, &r.env, rtx__on_detached, a);
}

/* --- the transport's life ----------------------------------------------------------- */

static int rtx__init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    rtx *x = t->impl;
    x->id = id;
    snprintf(x->address, sizeof x->address, "%s", address);
    return 0;
}

static int rtx__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    rtx *x = t->impl;
    x->accept_cb = cb;
    return 0;
}

static void rtx__on_closer_closed(uv_handle_t *h)
{
    rtx *x = h->data;
    if (x->close_cb)
        x->close_cb(x->t);
}

static void rtx__maybe_closed(rtx *x)
{
    if (x->closing && !x->dials && x->bridges_closed && !uv_is_closing((uv_handle_t *)&x->closer))
        uv_close((uv_handle_t *)&x->closer, rtx__on_closer_closed);
}

static void rtx__on_bridges_closed(bridge_set *s)
{
    rtx *x = (rtx *)((char *)s - offsetof(rtx, bridges));
    x->bridges_closed = true;
    rtx__maybe_closed(x);
}

static void rtx__close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    rtx *x = t->impl;
    x->closing = true;
    x->accept_cb = NULL;
    x->close_cb = cb;
    /* Made only now, so a transport libraft never used has no handle. */
    uv_timer_init(x->loop, &x->closer);
    x->closer.data = x;
    for (rtx_dial *d = x->dials; d; d = d->next)
        if (d->status == 0)
            rtx__dial_fail(d, RAFT_CANCELED, NULL);
    bridge_close_all(&x->bridges, rtx__on_bridges_closed);
    /* The callback comes from the loop, after this returns. */
    rtx__maybe_closed(x);
}

int rtx_init(struct raft_uv_transport *t, uv_loop_t *loop, const char *node_name, uint32_t log_format,
             const sec_ctx *sec)
{
    rtx *x = calloc(1, sizeof *x);
    if (!x)
        return RAFT_NOMEM;
    memset(t, 0, sizeof *t);
    x->loop = loop;
    x->t = t;
    snprintf(x->name, sizeof x->name, "%s", node_name);
    x->format = log_format;
    x->sec = sec;
    bridge_set_init(&x->bridges, loop);
    t->impl = x;
    t->init = rtx__init;
    t->listen = rtx__listen;
    t->connect = rtx__connect;
    t->close = rtx__close;
    return 0;
}

void rtx_free(struct raft_uv_transport *t)
{
    free(t->impl);
    t->impl = NULL;
}

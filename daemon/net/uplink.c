/* upuplink.c - an outgoing framed connection to another daemon. */
#include "uplink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../config.h"
#include "net.h"

struct uplink_req {
    uint64_t id;
    uplink_cb cb;
    void *arg;
    buf frame;
    uplink_req *next;
};

static void uplink__fail_list(uplink_req *r, const char *why, bool sent)
{
    while (r) {
        uplink_req *next = r->next;
        r->cb(r->arg, NULL, why, sent);
        buf_free(&r->frame);
        free(r);
        r = next;
    }
}

static void uplink__on_tcp_closed(uv_handle_t *h)
{
    uplink *l = h->data;
    free(h);
    if (--l->open == 0 && l->closing && l->close_cb)
        l->close_cb(l);
}

/* Drops the connection and fails what was sent on it (and, with
 * all, what was queued). */
static void uplink__drop(uplink *l, const char *why, bool all)
{
    if (l->tcp) {
        uv_close((uv_handle_t *)l->tcp, uplink__on_tcp_closed);
        l->tcp = NULL;
    }
    tls_free(l->tls);
    l->tls = NULL;
    uv_timer_stop(&l->timer);
    l->state = UPLINK_IDLE;
    wire_reader_free(&l->reader);
    uplink_req *sent = l->sent;
    l->sent = NULL;
    l->sent_tail = &l->sent;
    uplink__fail_list(sent, why, true);
    if (all) {
        uplink_req *q = l->queued;
        l->queued = NULL;
        l->queued_tail = &l->queued;
        uplink__fail_list(q, why, false);
    }
}

/* A failed write shows up as a failed read. */
static void uplink__write(uplink *l, const buf *b)
{
    sec_send((uv_stream_t *)l->tcp, l->tls, b->data, b->len, NULL, NULL);
}

/* Whether the peer's certificate is what we dialled: a controller (the
 * leader), or the node named expect_node (a relay). */
static bool uplink__peer_ok(uplink *l, char *why, size_t len)
{
    if (!l->tls)
        return true;
    const pki_id *p = tls_peer(l->tls);
    bool daemon = p && (strcmp(p->kind, "controller") == 0 || strcmp(p->kind, "agent") == 0);
    if (daemon &&
        (l->expect_node[0] ? strcmp(p->name, l->expect_node) == 0 : strcmp(p->kind, "controller") == 0))
        return true;
    snprintf(why, len, "%s is not %s%s (its certificate says %s %s)", l->target,
             l->expect_node[0] ? "node " : "a controller of this network", l->expect_node,
             p ? p->kind : "nothing", p ? p->name : "");
    return false;
}

static uint64_t uplink__timeout_ms(const uplink *l)
{
    unsigned rtt_us =
        l->tcp && l->state == UPLINK_READY ? net_tcp_rtt_bound_us((const uv_handle_t *)l->tcp) : 0;
    return UPLINK_TIMEOUT_MS + 4 * (uint64_t)((rtt_us + 999) / 1000);
}

static void uplink__flush(uplink *l)
{
    while (l->queued && l->state == UPLINK_READY) {
        uplink_req *r = l->queued;
        l->queued = r->next;
        if (!l->queued)
            l->queued_tail = &l->queued;
        uplink__write(l, &r->frame);
        r->next = NULL;
        *l->sent_tail = r;
        l->sent_tail = &r->next;
    }
    if (l->sent) {
        uv_timer_set_repeat(&l->timer, uplink__timeout_ms(l));
        uv_timer_again(&l->timer);
    }
}

static void uplink__on_timeout(uv_timer_t *t)
{
    uplink *l = t->data;
    char why[300];
    snprintf(why, sizeof why, "%s did not answer within %llu ms", l->target,
             (unsigned long long)uv_timer_get_repeat(t));
    uplink__drop(l, why, true);
}

static void uplink__on_message(uplink *l, wire_msg *m)
{
    const Jazari__Envelope *e = wire_msg_env(m);
    if (l->state == UPLINK_HELLO) {
        if (e->body_case != JAZARI__ENVELOPE__BODY_HELLO_REPLY) {
            char why[400];
            snprintf(why, sizeof why, "%s refused our hello: %s", l->target,
                     e->error && e->error->message ? e->error->message : wire_body_name(e));
            wire_msg_free(m);
            uplink__drop(l, why, true);
            return;
        }
        wire_msg_free(m);
        l->state = UPLINK_READY;
        uv_timer_stop(&l->timer);
        uplink__flush(l);
        return;
    }
    for (uplink_req **pp = &l->sent; *pp; pp = &(*pp)->next) {
        uplink_req *r = *pp;
        if (r->id != e->request_id)
            continue;
        *pp = r->next;
        if (l->sent_tail == &r->next)
            l->sent_tail = pp;
        if (!l->sent)
            uv_timer_stop(&l->timer);
        r->cb(r->arg, m, NULL, true);
        buf_free(&r->frame);
        free(r);
        return;
    }
    log_warn("uplink", "%s answered request %llu, which is not waiting", l->target,
             (unsigned long long)e->request_id);
    wire_msg_free(m);
}

static void uplink__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    uplink *l = h->data;
    (void)suggested;
    b->base = l->rbuf;
    b->len = sizeof l->rbuf;
}

static void uplink__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    uplink *l = s->data;
    if (n < 0) {
        char why[300];
        if (l->tls && tls_ready(l->tls) && l->state == UPLINK_HELLO) {
            snprintf(why, sizeof why,
                     "%s closed the connection after the TLS handshake: it refuses this node's certificate "
                     "(revoked? then remove <state_dir>/tls and join again with a new token)",
                     l->target);
            log_warn("uplink", "%s", why);
        } else {
            snprintf(why, sizeof why, "connection to %s lost: %s", l->target, uv_strerror((int)n));
        }
        uplink__drop(l, why, false);
        return;
    }
    buf plain = BUF_INIT;
    bool was_ready = !l->tls || tls_ready(l->tls);
    int rc = sec_recv(s, l->tls, b->base, (size_t)n, &plain, NULL, NULL);
    wire_reader_feed(&l->reader, plain.data, plain.len);
    buf_free(&plain);
    char why[400];
    if (rc != 0 || (!was_ready && tls_ready(l->tls) && !uplink__peer_ok(l, why, sizeof why))) {
        if (rc != 0)
            snprintf(why, sizeof why, "connection to %s: %s", l->target,
                     rc > 0 ? "closed by the peer" : tls_error(l->tls));
        log_warn("uplink", "%s", why);
        uplink__drop(l, why, true);
        return;
    }
    for (;;) {
        const uint8_t *p;
        size_t len;
        wire_status ws = wire_reader_next(&l->reader, &p, &len);
        if (ws == WIRE_NEED_MORE)
            return;
        char err[200];
        wire_msg *m = ws == WIRE_FRAME ? wire_unpack(p, len, err, sizeof err) : NULL;
        if (!m) {
            snprintf(why, sizeof why, "%s sent a bad frame", l->target);
            uplink__drop(l, why, true);
            return;
        }
        uv_tcp_t *before = l->tcp;
        uplink__on_message(l, m);
        if (l->tcp != before || !l->tcp)
            return; /* dropped while handling it */
    }
}

static void uplink__on_connect(uv_connect_t *c, int status)
{
    uplink *l = c->data;
    if ((uv_tcp_t *)c->handle != l->tcp)
        return; /* an attempt that was dropped */
    if (status < 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot connect to %s: %s", l->target, uv_strerror(status));
        uplink__drop(l, why, true);
        return;
    }
    net_tcp_tune(l->tcp);
    l->state = UPLINK_HELLO;
    l->tls = sec_engine(l->sec, false);
    wire_reader_init(&l->reader, WIRE_MAX_FRAME_DEFAULT);
    Jazari__Hello h = JAZARI__HELLO__INIT;
    h.protocol_version = WIRE_PROTOCOL_VERSION;
    h.software_version = JZ_VERSION;
    h.kind = JAZARI__PEER_KIND__PEER_AGENT;
    h.name = l->name;
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.version = WIRE_PROTOCOL_VERSION;
    env.body_case = JAZARI__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    buf b = BUF_INIT;
    wire_pack(&env, &b);
    uplink__write(l, &b);
    buf_free(&b);
    uv_read_start((uv_stream_t *)l->tcp, uplink__alloc, uplink__on_read);
}

static void uplink__connect(uplink *l)
{
    char host[256];
    uint16_t port;
    struct sockaddr_storage sa;
    if (config_parse_hostport(l->target, host, sizeof host, &port) != 0 ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)) {
        char why[300];
        snprintf(why, sizeof why, "'%s' is not an ip:port address", l->target);
        uplink__drop(l, why, true);
        return;
    }
    l->tcp = malloc(sizeof *l->tcp);
    if (!l->tcp)
        abort();
    uv_tcp_init(l->loop, l->tcp);
    l->tcp->data = l;
    l->open++;
    l->connect.data = l;
    l->state = UPLINK_CONNECTING;
    uv_timer_start(&l->timer, uplink__on_timeout, UPLINK_TIMEOUT_MS, UPLINK_TIMEOUT_MS);
    int rc = uv_tcp_connect(&l->connect, l->tcp, (struct sockaddr *)&sa, uplink__on_connect);
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot connect to %s: %s", l->target, uv_strerror(rc));
        uplink__drop(l, why, true);
    }
}

void uplink_init(uplink *l, uv_loop_t *loop, const char *name, const sec_ctx *sec)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->sec = sec;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->queued_tail = &l->queued;
    l->sent_tail = &l->sent;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->open = 1;
}

void uplink_retarget(uplink *l, const char *target)
{
    if (strcmp(l->target, target) == 0)
        return;
    if (l->state != UPLINK_IDLE) {
        char why[300];
        snprintf(why, sizeof why, "moved from %s to %s", l->target, target);
        uplink__drop(l, why, false);
    }
    snprintf(l->target, sizeof l->target, "%s", target);
}

void uplink_expect(uplink *l, const char *node)
{
    snprintf(l->expect_node, sizeof l->expect_node, "%s", node ? node : "");
}

void uplink_request(uplink *l, Jazari__Envelope *env, uplink_cb cb, void *arg)
{
    if (l->closing || !l->target[0]) {
        cb(arg, NULL, l->closing ? "stopping" : "no leader known yet", false);
        return;
    }
    uplink_req *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->id = ++l->next_id;
    r->cb = cb;
    r->arg = arg;
    env->request_id = r->id;
    env->version = WIRE_PROTOCOL_VERSION;
    wire_pack(env, &r->frame);
    *l->queued_tail = r;
    l->queued_tail = &r->next;
    if (l->state == UPLINK_IDLE)
        uplink__connect(l);
    else
        uplink__flush(l);
}

bool uplink_ready(const uplink *l)
{
    return l->state == UPLINK_READY;
}

static void uplink__on_timer_closed(uv_handle_t *h)
{
    uplink *l = h->data;
    if (--l->open == 0 && l->close_cb)
        l->close_cb(l);
}

void uplink_close(uplink *l, void (*cb)(uplink *l))
{
    if (l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    uplink__drop(l, "stopping", true);
    uv_close((uv_handle_t *)&l->timer, uplink__on_timer_closed);
}

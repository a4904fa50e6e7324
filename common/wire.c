/* wire.c - frames and envelopes. */
#include "wire.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wire_reader_init(wire_reader *r, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame;
}

void wire_reader_free(wire_reader *r)
{
    buf_free(&r->in);
    r->pos = 0;
}

void wire_reader_feed(wire_reader *r, const void *data, size_t len)
{
    /* Compact before growing, so a long-lived connection's buffer stays the
     * size of its largest frame, not of everything it ever received. */
    if (r->pos > 0 && (r->pos == r->in.len || r->pos >= r->in.cap / 2)) {
        buf_consume(&r->in, r->pos);
        r->pos = 0;
    }
    buf_append(&r->in, data, len);
}

static uint32_t wire__be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t wire_reader_pending(const wire_reader *r)
{
    return r->in.len - r->pos;
}

size_t wire_reader_expected(const wire_reader *r)
{
    if (wire_reader_pending(r) < WIRE_HEADER_SIZE)
        return 0;
    return wire__be32((const uint8_t *)r->in.data + r->pos);
}

wire_status wire_reader_next(wire_reader *r, const uint8_t **payload, size_t *len)
{
    size_t avail = wire_reader_pending(r);
    if (avail < WIRE_HEADER_SIZE)
        return WIRE_NEED_MORE;
    const uint8_t *p = (const uint8_t *)r->in.data + r->pos;
    size_t n = wire__be32(p);
    if (n > r->max_frame) {
        *len = n;
        return WIRE_TOO_LARGE;
    }
    if (avail - WIRE_HEADER_SIZE < n)
        return WIRE_NEED_MORE;
    *payload = p + WIRE_HEADER_SIZE;
    *len = n;
    r->pos += WIRE_HEADER_SIZE + n;
    return WIRE_FRAME;
}

void wire_pack(const Jazari__Envelope *env, buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(&env->base);
    uint8_t *p = buf_extend(out, WIRE_HEADER_SIZE + n);
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    protobuf_c_message_pack(&env->base, p + WIRE_HEADER_SIZE);
}

/* An allocator that refuses to hand out more than a budget, so a small
 * frame cannot make the decoder allocate without bound (each empty nested
 * message costs two bytes on the wire but a whole struct in memory). */
typedef struct wire__budget {
    size_t left;
} wire__budget;

typedef struct wire__block {
    size_t size;
    max_align_t align[];
} wire__block;

static void *wire__alloc(void *data, size_t size)
{
    wire__budget *b = data;
    if (size > b->left)
        return NULL;
    wire__block *blk = malloc(sizeof *blk + size);
    if (!blk)
        return NULL;
    b->left -= size;
    blk->size = size;
    return blk->align;
}

static void wire__dealloc(void *data, void *ptr)
{
    wire__budget *b = data;
    if (!ptr)
        return;
    wire__block *blk = (wire__block *)((char *)ptr - offsetof(wire__block, align));
    b->left += blk->size;
    free(blk);
}

/* The envelope and the allocator that must free it travel together. */
struct wire_msg {
    ProtobufCAllocator alloc;
    wire__budget budget;
    Jazari__Envelope *env;
};

#define WIRE_BUDGET_FACTOR 64
#define WIRE_BUDGET_BASE (1u << 20)

wire_msg *wire_unpack(const uint8_t *payload, size_t len, char *err, size_t errlen)
{
    wire_msg *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory decoding a %zu-byte frame", len);
        return NULL;
    }
    m->budget.left = WIRE_BUDGET_BASE + len * WIRE_BUDGET_FACTOR;
    m->alloc.alloc = wire__alloc;
    m->alloc.free = wire__dealloc;
    m->alloc.allocator_data = &m->budget;
    m->env = jazari__envelope__unpack(&m->alloc, len, payload);
    if (!m->env) {
        snprintf(err, errlen, "a %zu-byte frame does not decode as an envelope", len);
        free(m);
        return NULL;
    }
    /* Every request has a body; a reply may be an error alone. */
    bool is_error = m->env->error && m->env->error->code != JAZARI__ERROR_CODE__OK;
    if (m->env->body_case == JAZARI__ENVELOPE__BODY__NOT_SET && !is_error) {
        snprintf(err, errlen, "a %zu-byte envelope has no body (an unknown or missing request)", len);
        wire_msg_free(m);
        return NULL;
    }
    return m;
}

const Jazari__Envelope *wire_msg_env(const wire_msg *m)
{
    return m->env;
}

void wire_msg_free(wire_msg *m)
{
    if (!m)
        return;
    if (m->env)
        jazari__envelope__free_unpacked(m->env, &m->alloc);
    free(m);
}

const char *wire_body_name(const Jazari__Envelope *env)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&jazari__envelope__descriptor, (unsigned)env->body_case);
    return f ? f->name : "none";
}

void wire_reply_init(wire_reply *r, uint64_t request_id, Jazari__ErrorCode code, const char *fmt, ...)
{
    jazari__envelope__init(&r->env);
    jazari__error__init(&r->error);
    r->env.request_id = request_id;
    r->env.version = WIRE_PROTOCOL_VERSION;
    r->env.error = &r->error;
    r->error.code = code;
    r->message[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->message, sizeof r->message, fmt, ap);
        va_end(ap);
    }
    r->error.message = r->message;
}

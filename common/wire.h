/* wire.h - frames and envelopes: a 4-byte big-endian length, then one
 * protobuf-encoded jazari.Envelope (proto/jazari.proto).
 *
 * Pure code, no I/O: the daemon's libuv connections (daemon/net/conn.c), the
 * client's blocking socket (client/conn.c) and the fuzzers share it. */
#ifndef JZ_WIRE_H
#define JZ_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jazari.pb-c.h"

/* Bumped only when an older peer would misread a newer one. */
#define WIRE_PROTOCOL_VERSION 1
#define WIRE_HEADER_SIZE 4
/* The longest a dashboard token (jz web, WebRequest) may last. */
#define WIRE_WEB_TTL_MAX_S 604800u /* 7 days */
/* The default maximum frame (setting `max_frame`), and the bounds a setting
 * may take. */
#define WIRE_MAX_FRAME_DEFAULT (16u << 20)
#define WIRE_MAX_FRAME_MIN 1024u
#define WIRE_MAX_FRAME_MAX (1u << 30)

/* Splits a byte stream into frames. */
typedef struct wire_reader {
    buf in;           /* received bytes not yet returned as frames */
    size_t pos;       /* start of the next frame in `in` */
    size_t max_frame; /* the largest payload accepted */
} wire_reader;

void wire_reader_init(wire_reader *r, size_t max_frame);
void wire_reader_free(wire_reader *r);
/* Appends received bytes (copied). */
void wire_reader_feed(wire_reader *r, const void *data, size_t len);

typedef enum {
    WIRE_NEED_MORE = 0, /* no complete frame buffered */
    WIRE_FRAME = 1,     /* payload and len hold one frame */
    WIRE_TOO_LARGE = -1 /* the announced length is over max_frame */
} wire_status;

/* The next complete frame. The payload points into the reader and stays
 * valid until the next feed or next call. On WIRE_TOO_LARGE, *len is the
 * announced length and the stream cannot be resynchronised. */
wire_status wire_reader_next(wire_reader *r, const uint8_t **payload, size_t *len);
/* Bytes received but not yet returned: non-zero at end of stream means the
 * peer sent a truncated frame. */
size_t wire_reader_pending(const wire_reader *r);
/* The length announced by a partially received frame, or 0 if its header is
 * not complete. */
size_t wire_reader_expected(const wire_reader *r);

/* Appends one frame holding env to out. */
void wire_pack(const Jazari__Envelope *env, buf *out);

/* A decoded envelope with the allocator that holds its memory. */
typedef struct wire_msg wire_msg;

/* Decodes one frame's payload, with memory bounded by a multiple of the
 * payload size. Returns a new message (free it with wire_msg_free), or NULL
 * and a one-line reason in err when it does not decode or has no body. */
wire_msg *wire_unpack(const uint8_t *payload, size_t len, char *err, size_t errlen);
/* The envelope; owned by the message. */
const Jazari__Envelope *wire_msg_env(const wire_msg *m);
void wire_msg_free(wire_msg *m);

/* The name of an envelope's body ("hello", "topology_request", ...). */
const char *wire_body_name(const Jazari__Envelope *env);

/* A reply envelope with request_id/version filled and error set to code and
 * message; the message is copied into storage the caller provides. */
typedef struct wire_reply {
    Jazari__Envelope env;
    Jazari__Error error;
    char message[512];
} wire_reply;
void wire_reply_init(wire_reply *r, uint64_t request_id, Jazari__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

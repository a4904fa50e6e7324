/* test_wire.c - framing (split, coalesced, oversized, truncated reads) and
 * envelope round trips. */
#include <stdlib.h>

#include "common/wire.h"
#include "test.h"

static void hello_env(Jazari__Envelope *e, Jazari__Hello *h, uint64_t id, const char *name)
{
    jazari__envelope__init(e);
    jazari__hello__init(h);
    h->protocol_version = WIRE_PROTOCOL_VERSION;
    h->software_version = "test";
    h->kind = JAZARI__PEER_KIND__PEER_AGENT;
    h->name = (char *)name;
    e->request_id = id;
    e->version = WIRE_PROTOCOL_VERSION;
    e->body_case = JAZARI__ENVELOPE__BODY_HELLO;
    e->hello = h;
}

/* Feeds `stream` to a reader `chunk` bytes at a time and counts the hellos
 * that come out, checking their ids run 1, 2, 3... */
static int feed_in_chunks(const buf *stream, size_t chunk)
{
    wire_reader r;
    wire_reader_init(&r, 1 << 20);
    int got = 0;
    for (size_t off = 0; off < stream->len;) {
        size_t n = stream->len - off < chunk ? stream->len - off : chunk;
        wire_reader_feed(&r, stream->data + off, n);
        off += n;
        const uint8_t *p;
        size_t len;
        while (wire_reader_next(&r, &p, &len) == WIRE_FRAME) {
            char err[128];
            wire_msg *m = wire_unpack(p, len, err, sizeof err);
            if (!m) {
                test_fail(__FILE__, __LINE__, "frame %d: %s", got + 1, err);
                break;
            }
            got++;
            CHECK_EQ_INT(wire_msg_env(m)->request_id, got);
            CHECK_EQ_STR(wire_msg_env(m)->hello->name, "node-a");
            wire_msg_free(m);
        }
    }
    CHECK_EQ_INT(wire_reader_pending(&r), 0);
    wire_reader_free(&r);
    return got;
}

TEST(wire_split_and_coalesced_reads)
{
    buf stream = BUF_INIT;
    for (uint64_t id = 1; id <= 50; id++) {
        Jazari__Envelope e;
        Jazari__Hello h;
        hello_env(&e, &h, id, "node-a");
        wire_pack(&e, &stream);
    }
    /* One byte at a time, odd sizes that cut headers, and all at once. */
    const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64, 1000, stream.len};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        CHECK_EQ_INT(feed_in_chunks(&stream, chunks[i]), 50);
    buf_free(&stream);
}

TEST(wire_frame_too_large)
{
    wire_reader r;
    wire_reader_init(&r, 1024);
    const uint8_t hdr[4] = {0, 0, 4, 1}; /* 1025 bytes announced */
    wire_reader_feed(&r, hdr, sizeof hdr);
    const uint8_t *p;
    size_t len = 0;
    CHECK_EQ_INT(wire_reader_next(&r, &p, &len), WIRE_TOO_LARGE);
    CHECK_EQ_INT(len, 1025);
    wire_reader_free(&r);

    /* Exactly the maximum is accepted. */
    wire_reader_init(&r, 1024);
    uint8_t frame[4 + 1024] = {0, 0, 4, 0};
    wire_reader_feed(&r, frame, 4);
    CHECK_EQ_INT(wire_reader_next(&r, &p, &len), WIRE_NEED_MORE);
    wire_reader_feed(&r, frame + 4, 1024);
    CHECK_EQ_INT(wire_reader_next(&r, &p, &len), WIRE_FRAME);
    CHECK_EQ_INT(len, 1024);
    wire_reader_free(&r);
}

TEST(wire_truncated_frame_is_pending)
{
    Jazari__Envelope e;
    Jazari__Hello h;
    hello_env(&e, &h, 7, "node-a");
    buf b = BUF_INIT;
    wire_pack(&e, &b);
    wire_reader r;
    wire_reader_init(&r, 1 << 20);
    wire_reader_feed(&r, b.data, b.len - 3);
    const uint8_t *p;
    size_t len;
    CHECK_EQ_INT(wire_reader_next(&r, &p, &len), WIRE_NEED_MORE);
    CHECK_EQ_INT(wire_reader_pending(&r), b.len - 3);
    CHECK_EQ_INT(wire_reader_expected(&r), b.len - WIRE_HEADER_SIZE);
    wire_reader_free(&r);
    buf_free(&b);
}

TEST(wire_garbage_does_not_decode)
{
    char err[160];
    const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    CHECK(wire_unpack(garbage, sizeof garbage, err, sizeof err) == NULL);
    CHECK(strstr(err, "does not decode") != NULL);
    /* An empty envelope decodes but carries no request. */
    CHECK(wire_unpack((const uint8_t *)"", 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "no body") != NULL);
}

TEST(wire_many_empty_messages_decode_within_budget)
{
    /* A topology reply made of 400,000 empty GpuLink messages: 2 bytes each
     * on the wire, about 24 times that in memory, within the decoder's
     * budget of 64 times the frame (plus 1 MiB). */
    size_t n = 400000;
    Jazari__GpuLink empty = JAZARI__GPU_LINK__INIT;
    Jazari__GpuLink **links = malloc(n * sizeof *links);
    for (size_t i = 0; i < n; i++)
        links[i] = &empty;
    Jazari__Topology t = JAZARI__TOPOLOGY__INIT;
    t.n_links = n;
    t.links = links;
    Jazari__TopologyReply tr = JAZARI__TOPOLOGY_REPLY__INIT;
    tr.topology = &t;
    Jazari__Envelope e = JAZARI__ENVELOPE__INIT;
    e.body_case = JAZARI__ENVELOPE__BODY_TOPOLOGY_REPLY;
    e.topology_reply = &tr;
    buf b = BUF_INIT;
    wire_pack(&e, &b);
    free(links);
    CHECK(b.len < 2 * n + 64);
    char err[160];
    wire_msg *m = wire_unpack((const uint8_t *)b.data + 4, b.len - 4, err, sizeof err);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(wire_msg_env(m)->topology_reply->topology->n_links, n);
    wire_msg_free(m);
    buf_free(&b);
}

TEST(wire_error_reply_round_trip)
{
    wire_reply r;
    wire_reply_init(&r, 42, JAZARI__ERROR_CODE__NOT_FOUND, "node '%s' not found", "x");
    buf b = BUF_INIT;
    wire_pack(&r.env, &b);
    char err[160];
    /* An error alone is a valid reply. */
    wire_msg *m = wire_unpack((const uint8_t *)b.data + 4, b.len - 4, err, sizeof err);
    REQUIRE(m != NULL);
    const Jazari__Envelope *e = wire_msg_env(m);
    CHECK_EQ_INT(e->request_id, 42);
    CHECK_EQ_INT(e->version, WIRE_PROTOCOL_VERSION);
    REQUIRE(e->error != NULL);
    CHECK_EQ_INT(e->error->code, JAZARI__ERROR_CODE__NOT_FOUND);
    CHECK_EQ_STR(e->error->message, "node 'x' not found");
    CHECK_EQ_STR(wire_body_name(e), "none");
    wire_msg_free(m);

    /* With a body, the body's name is reported. */
    Jazari__NodeRequest nr = JAZARI__NODE_REQUEST__INIT;
    r.env.body_case = JAZARI__ENVELOPE__BODY_NODE_REQUEST;
    r.env.node_request = &nr;
    buf_reset(&b);
    wire_pack(&r.env, &b);
    m = wire_unpack((const uint8_t *)b.data + 4, b.len - 4, err, sizeof err);
    REQUIRE(m != NULL);
    CHECK_EQ_STR(wire_body_name(wire_msg_env(m)), "node_request");
    wire_msg_free(m);
    buf_free(&b);
}

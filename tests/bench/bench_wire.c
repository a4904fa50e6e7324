/* bench_wire.c - the cost of our framing and bounded decoding, as a ratio
 * against bare protobuf-c unpacking of the same bytes in the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/wire.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A node reply with a 16-GPU topology, the largest message of this release. */
static void sample(buf *out)
{
    enum { N = 16 };
    Jazari__Gpu g[N], *gp[N];
    Jazari__GpuLink l[N * N], *lp[N * N];
    for (int i = 0; i < N; i++) {
        jazari__gpu__init(&g[i]);
        g[i].index = (uint32_t)i;
        g[i].uuid = "GPU-d3977428-7a30-086b-2e20-5c1eeed647c6";
        g[i].model = "Tesla V100-SXM3-32GB-H";
        g[i].memory_bytes = 34359738368ull;
        g[i].pci_bus_id = "0000:34:00.0";
        g[i].cpuset = "0-23,48-71";
        gp[i] = &g[i];
    }
    for (int i = 0; i < N * N; i++) {
        jazari__gpu_link__init(&l[i]);
        l[i].kind = JAZARI__LINK_KIND__LINK_NV;
        l[i].nvlinks = 6;
        lp[i] = &l[i];
    }
    Jazari__Topology t = JAZARI__TOPOLOGY__INIT;
    t.name = "dgx2";
    t.n_gpus = N;
    t.gpus = gp;
    t.n_links = N * N;
    t.links = lp;
    Jazari__NodeInfo ni = JAZARI__NODE_INFO__INIT;
    ni.name = "dgx2";
    ni.topology = &t;
    Jazari__NodeReply nr = JAZARI__NODE_REPLY__INIT;
    nr.node = &ni;
    Jazari__Envelope e = JAZARI__ENVELOPE__INIT;
    e.body_case = JAZARI__ENVELOPE__BODY_NODE_REPLY;
    e.node_reply = &nr;
    wire_pack(&e, out);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    buf one = BUF_INIT, stream = BUF_INIT;
    sample(&one);
    for (int i = 0; i < 64; i++)
        buf_append(&stream, one.data, one.len);
    const uint8_t *payload = (const uint8_t *)one.data + WIRE_HEADER_SIZE;
    size_t plen = one.len - WIRE_HEADER_SIZE;

    /* Reference: protobuf-c's own unpack with its default allocator. */
    double t0 = now();
    for (int i = 0; i < rounds; i++) {
        Jazari__Envelope *e = jazari__envelope__unpack(NULL, plen, payload);
        jazari__envelope__free_unpacked(e, NULL);
    }
    double bare = now() - t0;

    /* Ours: the stream split into frames, each decoded with the budget. */
    t0 = now();
    wire_reader r;
    wire_reader_init(&r, WIRE_MAX_FRAME_DEFAULT);
    int decoded = 0;
    for (int i = 0; i < rounds / 64; i++) {
        wire_reader_feed(&r, stream.data, stream.len);
        const uint8_t *p;
        size_t len;
        char err[128];
        while (wire_reader_next(&r, &p, &len) == WIRE_FRAME) {
            wire_msg *m = wire_unpack(p, len, err, sizeof err);
            decoded += m != NULL;
            wire_msg_free(m);
        }
    }
    double ours = now() - t0;
    wire_reader_free(&r);
    double per_bare = bare / rounds, per_ours = ours / decoded;
    printf("frame decode: %.0f frames/s of %zu bytes; %.2fx the time of bare protobuf-c unpack (%.0f/s)\n",
           1 / per_ours, one.len, per_ours / per_bare, 1 / per_bare);
    buf_free(&one);
    buf_free(&stream);
    return decoded == (rounds / 64) * 64 ? 0 : 1;
}

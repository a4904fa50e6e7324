/* fuzz_envelope.c - one envelope payload, decoded, and any topology in it
 * validated and rendered as a client would (topo_from_pb, JSON, text). */
#include <stdint.h>
#include <stdlib.h>

#include "lib/hw/topo.h"
#include "lib/hw/topo_pb.h"
#include "common/json.h"
#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render(const Jazari__Topology *pb)
{
    char err[200];
    topo *t = topo_from_pb(pb, err, sizeof err);
    if (!t)
        return;
    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, false);
    topo_to_json(t, &j);
    topo_print(t, &b);
    /* And back: the message we would send describes the same machine. */
    Jazari__Topology *again = topo_to_pb(t);
    topo_pb_free(again);
    buf_free(&b);
    topo_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    wire_msg *m = wire_unpack(data, size, err, sizeof err);
    if (!m)
        return 0;
    const Jazari__Envelope *e = wire_msg_env(m);
    if (e->body_case == JAZARI__ENVELOPE__BODY_TOPOLOGY_REPLY && e->topology_reply->topology)
        render(e->topology_reply->topology);
    if (e->body_case == JAZARI__ENVELOPE__BODY_NODE_REPLY && e->node_reply->node &&
        e->node_reply->node->topology)
        render(e->node_reply->node->topology);
    wire_msg_free(m);
    return 0;
}

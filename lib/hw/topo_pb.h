/* topo_pb.h - a topo to and from its protobuf message (jazari.Topology). */
#ifndef JZ_TOPO_PB_H
#define JZ_TOPO_PB_H

#include "jazari.pb-c.h"
#include "topo.h"

/* The largest topology accepted from the wire. */
#define TOPO_PB_MAX_GPUS 1024
#define TOPO_PB_MAX_NUMA 4096

/* A new message describing t. Its strings point into t, which must outlive
 * it; free it with topo_pb_free (which frees only what this allocated). */
Jazari__Topology *topo_to_pb(const topo *t);
void topo_pb_free(Jazari__Topology *m);

/* A new topo from a message received from a peer, validated (sizes, link
 * matrix shape, link kinds). Returns NULL with one line in err when the
 * message is inconsistent. Free the result with topo_free. */
topo *topo_from_pb(const Jazari__Topology *m, char *err, size_t errlen);

#endif

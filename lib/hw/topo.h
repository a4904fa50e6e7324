/* topo.h - the node's hardware picture: packages, NUMA nodes, cores, PUs,
 * GPUs and the GPU x GPU link matrix, from hwloc (live or an XML file) plus
 * the GPU facts of the CUDA driver and NVML (gpu.h).
 *
 * A topo is plain data: once loaded it needs no hwloc handle, so the daemon,
 * the wire protocol (topo_pb.c) and the scheduler can copy and compare it. */
#ifndef JZ_TOPO_H
#define JZ_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/json.h"

/* The vocabulary of `nvidia-smi topo -m`, best connected first. */
typedef enum {
    TOPO_LINK_X = 0, /* the GPU itself */
    TOPO_LINK_NV,    /* NVLink: direct, or through shared NVSwitches */
    TOPO_LINK_PIX,   /* at most one PCIe switch between them */
    TOPO_LINK_PXB,   /* several PCIe switches, no host bridge */
    TOPO_LINK_PHB,   /* through a PCIe host bridge */
    TOPO_LINK_NODE,  /* between host bridges within one NUMA node */
    TOPO_LINK_SYS,   /* across NUMA nodes (the SMP interconnect) */
} topo_link_kind;

typedef struct topo_link {
    topo_link_kind kind;
    unsigned nvlinks; /* for TOPO_LINK_NV: the number of links, else 0 */
} topo_link;

typedef struct topo_package {
    unsigned os_index;
    unsigned cores;
    unsigned pus;
    char *cpuset; /* hwloc list format, e.g. "0-7,16-23"; owned */
} topo_package;

typedef struct topo_numa {
    unsigned os_index;
    int package;           /* index into topo.packages, -1 if none */
    uint64_t memory_bytes; /* 0 when unknown */
    char *cpuset;          /* list format; owned */
} topo_numa;

typedef struct topo_gpu {
    unsigned index;        /* position in PCI bus id order, from 0 */
    char *uuid;            /* "GPU-xxxxxxxx-..."; NULL when unknown */
    char *model;           /* "Tesla V100-SXM3-32GB"; NULL when unknown */
    uint64_t memory_bytes; /* 0 when unknown */
    char *pci_bus_id;      /* "0000:34:00.0" (lower case); NULL when unknown */
    int numa;              /* os_index of the nearest NUMA node, -1 unknown */
    char *cpuset;          /* cpuset of that locality; NULL when unknown */
    bool has_minor;        /* the driver said which /dev/nvidiaN it is (live probe) */
    unsigned minor;        /* that N */
} topo_gpu;

typedef struct topo {
    char *name;   /* host name of the machine described; owned */
    char *source; /* "hwloc" for a live probe, else the XML's path; owned */
    topo_package *packages;
    size_t n_packages;
    topo_numa *numa;
    size_t n_numa;
    unsigned cores;
    unsigned pus;
    topo_gpu *gpus;
    size_t n_gpus;
    topo_link *links; /* n_gpus * n_gpus, row-major: links[i * n_gpus + j] */
} topo;

/* Where the picture comes from. */
typedef struct topo_load_opts {
    const char *xml_path; /* emulate this hwloc XML; NULL probes this host */
    const char *name;     /* overrides the host name; NULL keeps it */
    bool probe_gpus;      /* on a live probe, ask CUDA and NVML (gpu.h) */
} topo_load_opts;

/* Loads the topology. On success returns 0 and *out owns a new topo (free
 * it with topo_free). On failure returns -1, *out is untouched and err holds
 * one line naming the input and the problem, e.g.
 * "topology XML /x.xml: cannot read: No such file or directory". */
int topo_load(const topo_load_opts *opts, topo **out, char *err, size_t errlen);
void topo_free(topo *t);

/* The link between GPUs i and j. */
topo_link topo_link_get(const topo *t, size_t i, size_t j);
/* "X", "NV12", "PIX", ... into buf (at least 8 bytes); returns buf. */
const char *topo_link_str(topo_link l, char *buf, size_t len);
/* Parses the vocabulary back ("NV4" -> NV with 4 links); 0 on success. */
int topo_link_parse(const char *s, topo_link *out);

/* The object `jazarid topology --json` prints (INTERFACE.md). */
void topo_to_json(const topo *t, json *j);
/* The view for people: a tree like lstopo's and the matrix like
 * `nvidia-smi topo -m`. */
void topo_print(const topo *t, buf *out);

#endif

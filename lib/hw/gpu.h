/* gpu.h - the live GPU probe: what the NVIDIA driver (CUDA and NVML, both
 * opened with dlopen) says about this host's GPUs.
 *
 * The probe never fails: a host without the driver libraries has zero GPUs
 * (logged once, at info level). Every call into the driver is timed; a call
 * slower than the threshold is logged as a warning. */
#ifndef JZ_GPU_H
#define JZ_GPU_H

#include <stddef.h>
#include <stdint.h>

#define GPU_MAX_NVLINKS 18 /* links NVML is asked about per GPU (NVLink 4) */
#define GPU_BUS_ID_LEN 32  /* "0000:34:00.0" and its NUL, with room to spare */
#define GPU_MAX_GPUS 4096  /* more than this is refused as implausible */

typedef struct gpu_info {
    char *uuid;            /* "GPU-xxxxxxxx-..."; NULL when unknown; owned */
    char *model;           /* "NVIDIA H100 80GB HBM3"; NULL when unknown; owned */
    uint64_t memory_bytes; /* 0 when unknown */
    char *pci_bus_id;      /* "0000:34:00.0" (lower case); NULL when unknown; owned */
    int minor;             /* N of its /dev/nvidiaN (NVML, else /proc/driver/nvidia); -1 unknown */
    /* The PCI bus id at the far end of each active NVLink (another GPU, or
     * an NVSwitch when it is none of the GPUs), in link order. */
    unsigned n_nvlinks;
    char nvlink_remote[GPU_MAX_NVLINKS][GPU_BUS_ID_LEN];
} gpu_info;

typedef struct gpu_list {
    gpu_info *gpus; /* owned; NULL when n == 0 */
    size_t n;
    unsigned slow_calls; /* driver calls slower than the threshold */
    const char *source;  /* "nvml", "cuda", "nvml+cuda" or "none"; static */
} gpu_list;

typedef struct gpu_probe_opts {
    const char *nvml_lib; /* NULL: $JAZARI_NVML_LIB, else "libnvidia-ml.so.1" */
    const char *cuda_lib; /* NULL: $JAZARI_CUDA_LIB, else "libcuda.so.1" */
    unsigned slow_ms;     /* warn about a call slower than this; 0: 1000 */
} gpu_probe_opts;

/* Asks NVML (the GPU list, UUIDs, names, memory, PCI bus ids, NVLinks) and
 * the CUDA driver (the same facts, for what NVML lacks or when NVML is
 * absent). opts may be NULL. Always returns 0 and fills *out, which the
 * caller frees with gpu_list_free; the GPUs are in the driver's order. */
int gpu_probe(const gpu_probe_opts *opts, gpu_list *out);
/* Frees what gpu_probe allocated; *l is empty afterwards. */
void gpu_list_free(gpu_list *l);

/* Normalises a PCI bus id ("00000000:3B:00.0", "3b:00.0") into
 * "0000:3b:00.0" in out (GPU_BUS_ID_LEN bytes). Returns 0, or -1 when s is
 * not a bus id. */
int gpu_bus_id_normalize(const char *s, char out[GPU_BUS_ID_LEN]);
/* The same bus id as numbers: f = {domain, bus, device, function}.
 * Returns 0, or -1 when s is not a bus id. */
int gpu_bus_id_parse(const char *s, unsigned f[4]);

#endif

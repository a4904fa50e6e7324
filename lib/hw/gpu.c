/* gpu.c - the live GPU probe through NVML and the CUDA driver API, both
 * opened with dlopen so that the daemon starts on hosts without them.
 *
 * No nvml.h is installed and cuda.h is not relied on: the few types and
 * functions used are declared here, with the ABI of the _v2/_v3 symbols. */
#include "gpu.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"

#define GPU__SUBSYS "gpu"
#define GPU__NVML_DEFAULT "libnvidia-ml.so.1"
#define GPU__CUDA_DEFAULT "libcuda.so.1"
#define GPU__TEXT_LEN 256

/* --- NVML, as declared by nvml.h (the stable ABI) ------------------------ */

typedef int gpu__nvml_ret; /* nvmlReturn_t */
#define GPU__NVML_SUCCESS 0
#define GPU__NVML_ERROR_INVALID_ARGUMENT 2
#define GPU__NVML_ERROR_NOT_SUPPORTED 3

typedef struct gpu__nvml_device_st *gpu__nvml_device; /* nvmlDevice_t */

typedef struct gpu__nvml_pci { /* nvmlPciInfo_t */
    char bus_id_legacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pci_device_id;
    unsigned int pci_subsystem_id;
    char bus_id[32];
} gpu__nvml_pci;

typedef struct gpu__nvml_memory { /* nvmlMemory_t */
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} gpu__nvml_memory;

typedef int gpu__nvml_enable_state; /* nvmlEnableState_t: 1 enabled */
typedef int gpu__nvml_link_type;    /* nvmlIntNvLinkDeviceType_t */
#define GPU__NVML_LINK_IBMNPU 1     /* the far end is a CPU (POWER), not a GPU or NVSwitch */

typedef struct gpu__nvml {
    void *lib;
    gpu__nvml_ret (*init)(void);
    gpu__nvml_ret (*shutdown)(void);
    const char *(*error_string)(gpu__nvml_ret);
    gpu__nvml_ret (*get_count)(unsigned int *);
    gpu__nvml_ret (*get_handle)(unsigned int, gpu__nvml_device *);
    gpu__nvml_ret (*get_uuid)(gpu__nvml_device, char *, unsigned int);
    gpu__nvml_ret (*get_name)(gpu__nvml_device, char *, unsigned int);
    gpu__nvml_ret (*get_pci)(gpu__nvml_device, gpu__nvml_pci *);
    gpu__nvml_ret (*get_memory)(gpu__nvml_device, gpu__nvml_memory *);
    gpu__nvml_ret (*get_minor)(gpu__nvml_device, unsigned int *);
    gpu__nvml_ret (*link_state)(gpu__nvml_device, unsigned int, gpu__nvml_enable_state *);
    gpu__nvml_ret (*link_remote_pci)(gpu__nvml_device, unsigned int, gpu__nvml_pci *);
    gpu__nvml_ret (*link_remote_type)(gpu__nvml_device, unsigned int, gpu__nvml_link_type *); /* optional */
} gpu__nvml;

/* --- the CUDA driver API, as declared by cuda.h ------------------------- */

typedef int gpu__cu_ret; /* CUresult */
#define GPU__CUDA_SUCCESS 0
#define GPU__CUDA_ERROR_NO_DEVICE 100

typedef int gpu__cu_device;   /* CUdevice */
typedef struct gpu__cu_uuid { /* CUuuid */
    unsigned char bytes[16];
} gpu__cu_uuid;

typedef struct gpu__cuda {
    void *lib;
    gpu__cu_ret (*init)(unsigned int);
    gpu__cu_ret (*error_string)(gpu__cu_ret, const char **);
    gpu__cu_ret (*get_count)(int *);
    gpu__cu_ret (*get)(gpu__cu_device *, int);
    gpu__cu_ret (*get_name)(char *, int, gpu__cu_device);
    gpu__cu_ret (*total_mem)(size_t *, gpu__cu_device);
    gpu__cu_ret (*get_bus_id)(char *, int, gpu__cu_device);
    gpu__cu_ret (*get_uuid)(gpu__cu_uuid *, gpu__cu_device);
} gpu__cuda;

/* --- timing of driver calls -------------------------------------------- */

typedef struct gpu__ctx {
    unsigned slow_ms;
    unsigned slow_calls;
} gpu__ctx;

static double gpu__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Logs a driver call that took longer than the threshold. */
static void gpu__check_slow(gpu__ctx *c, const char *what, double t0)
{
    double ms = gpu__now_ms() - t0;
    if (ms > (double)c->slow_ms) {
        c->slow_calls++;
        log_warn(GPU__SUBSYS, "%s took %.0f ms (more than %u ms): the GPU driver is slow to answer", what, ms,
                 c->slow_ms);
    }
}

/* res = call, timed under the name what. */
#define GPU__TIMED(ctx, what, res, call)                                                                     \
    do {                                                                                                     \
        double gpu__t0 = gpu__now_ms();                                                                      \
        (res) = (call);                                                                                      \
        gpu__check_slow((ctx), (what), gpu__t0);                                                             \
    } while (0)

/* --- small helpers -------------------------------------------------------- */

static char *gpu__strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* A copy of a driver string, or NULL when it is empty. */
static char *gpu__text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n == cap)
        return NULL;
    return gpu__strdup(s);
}

static const char *gpu__lib_path(const char *given, const char *env, const char *def)
{
    if (given && *given)
        return given;
    const char *e = getenv(env);
    return e && *e ? e : def;
}

/* Parses a hex number of at most max_digits digits ending at one of stop. */
static int gpu__hex(const char **p, unsigned max_digits, unsigned long *out)
{
    unsigned long v = 0;
    unsigned n = 0;
    const char *s = *p;
    for (;; s++, n++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            break;
        if (n == max_digits)
            return -1;
        v = v * 16 + (unsigned long)d;
    }
    if (n == 0)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

/* Parses "[domain:]bus:dev.fn" (hex) into f, the caller's; allocates nothing. */
int gpu_bus_id_parse(const char *s, unsigned f[4])
{
    unsigned long v[4];
    int nv = 0;
    const char *p = s;
    if (!s)
        return -1;
    /* Up to four fields: [domain:]bus:dev.fn */
    for (;;) {
        if (nv == 4 || gpu__hex(&p, 8, &v[nv]) != 0)
            return -1;
        nv++;
        if (*p == ':' && nv < 3) {
            p++;
            continue;
        }
        if (*p == '.' && nv >= 2) {
            p++;
            if (gpu__hex(&p, 1, &v[nv]) != 0 || *p != '\0')
                return -1;
            nv++;
            break;
        }
        return -1;
    }
    unsigned long dom = nv == 4 ? v[0] : 0;
    unsigned long bus = v[nv - 3], dev = v[nv - 2], fn = v[nv - 1];
    if (dom > 0xffffffffUL || bus > 0xff || dev > 0x1f || fn > 7)
        return -1;
    f[0] = (unsigned)dom;
    f[1] = (unsigned)bus;
    f[2] = (unsigned)dev;
    f[3] = (unsigned)fn;
    return 0;
}

/* Writes the canonical spelling into out, the caller's; allocates nothing. */
int gpu_bus_id_normalize(const char *s, char out[GPU_BUS_ID_LEN])
{
    unsigned f[4];
    if (gpu_bus_id_parse(s, f) != 0)
        return -1;
    snprintf(out, GPU_BUS_ID_LEN, "%04x:%02x:%02x.%x", f[0], f[1], f[2], f[3]);
    return 0;
}

/* Looks up a function in lib into *fp (a function pointer of size bytes);
 * returns whether it is there. */
static bool gpu__sym(void *lib, const char *name, void *fp, size_t size)
{
    void *p = dlsym(lib, name);
    if (p && size == sizeof p)
        memcpy(fp, &p, sizeof p);
    return p != NULL && size == sizeof p;
}

/* --- NVML ----------------------------------------------------------------- */

static const char *gpu__nvml_err(const gpu__nvml *n, gpu__nvml_ret r)
{
    const char *s = n->error_string ? n->error_string(r) : NULL;
    return s ? s : "unknown NVML error";
}

/* Opens NVML; on failure writes why into why and returns -1. */
static int gpu__nvml_open(gpu__nvml *n, const char *path, char *why, size_t whylen)
{
    memset(n, 0, sizeof *n);
    n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        const char *e = dlerror();
        snprintf(why, whylen, "%s", e ? e : path);
        return -1;
    }
#define GPU__SYM(field, name) gpu__sym(n->lib, name, &n->field, sizeof n->field)
    GPU__SYM(init, "nvmlInit_v2");
    GPU__SYM(shutdown, "nvmlShutdown");
    GPU__SYM(error_string, "nvmlErrorString");
    GPU__SYM(get_count, "nvmlDeviceGetCount_v2");
    GPU__SYM(get_handle, "nvmlDeviceGetHandleByIndex_v2");
    GPU__SYM(get_uuid, "nvmlDeviceGetUUID");
    GPU__SYM(get_name, "nvmlDeviceGetName");
    if (!GPU__SYM(get_pci, "nvmlDeviceGetPciInfo_v3"))
        GPU__SYM(get_pci, "nvmlDeviceGetPciInfo_v2");
    GPU__SYM(get_memory, "nvmlDeviceGetMemoryInfo");
    GPU__SYM(get_minor, "nvmlDeviceGetMinorNumber");
    GPU__SYM(link_state, "nvmlDeviceGetNvLinkState");
    GPU__SYM(link_remote_pci, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
    GPU__SYM(link_remote_type, "nvmlDeviceGetNvLinkRemoteDeviceType");
#undef GPU__SYM
    if (!n->init || !n->shutdown || !n->get_count || !n->get_handle) {
        snprintf(why, whylen,
                 "%s lacks nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2 or "
                 "nvmlDeviceGetHandleByIndex_v2",
                 path);
        dlclose(n->lib);
        n->lib = NULL;
        return -1;
    }
    return 0;
}

/* The PCI bus id in an NVML PCI info, normalised; -1 when there is none. */
static int gpu__nvml_bus_id(const gpu__nvml_pci *pci, char out[GPU_BUS_ID_LEN])
{
    char tmp[sizeof pci->bus_id + 1];
    memcpy(tmp, pci->bus_id, sizeof pci->bus_id);
    tmp[sizeof pci->bus_id] = '\0';
    if (gpu_bus_id_normalize(tmp, out) == 0)
        return 0;
    memcpy(tmp, pci->bus_id_legacy, sizeof pci->bus_id_legacy);
    tmp[sizeof pci->bus_id_legacy] = '\0';
    return gpu_bus_id_normalize(tmp, out);
}

/* The active NVLinks of one GPU and what is at their far ends. */
static void gpu__nvml_links(gpu__ctx *c, gpu__nvml *n, gpu__nvml_device dev, unsigned idx, gpu_info *g)
{
    if (!n->link_state || !n->link_remote_pci)
        return;
    for (unsigned l = 0; l < GPU_MAX_NVLINKS; l++) {
        gpu__nvml_enable_state active = 0;
        gpu__nvml_ret r;
        GPU__TIMED(c, "nvmlDeviceGetNvLinkState", r, n->link_state(dev, l, &active));
        if (r == GPU__NVML_ERROR_NOT_SUPPORTED || r == GPU__NVML_ERROR_INVALID_ARGUMENT)
            break; /* no such link: this GPU has fewer */
        if (r != GPU__NVML_SUCCESS || active != 1)
            continue;
        if (n->link_remote_type) {
            gpu__nvml_link_type type = -1;
            GPU__TIMED(c, "nvmlDeviceGetNvLinkRemoteDeviceType", r, n->link_remote_type(dev, l, &type));
            if (r == GPU__NVML_SUCCESS && type == GPU__NVML_LINK_IBMNPU)
                continue; /* a link to the CPU joins no GPUs */
        }
        gpu__nvml_pci pci;
        memset(&pci, 0, sizeof pci);
        GPU__TIMED(c, "nvmlDeviceGetNvLinkRemotePciInfo_v2", r, n->link_remote_pci(dev, l, &pci));
        if (r != GPU__NVML_SUCCESS) {
            log_debug(GPU__SUBSYS, "GPU %u NVLink %u: no remote PCI info: %s", idx, l, gpu__nvml_err(n, r));
            continue;
        }
        char id[GPU_BUS_ID_LEN];
        if (gpu__nvml_bus_id(&pci, id) != 0)
            continue;
        memcpy(g->nvlink_remote[g->n_nvlinks++], id, GPU_BUS_ID_LEN);
    }
}

/* One GPU's facts from NVML; what NVML cannot tell stays unknown. */
static void gpu__nvml_one(gpu__ctx *c, gpu__nvml *n, gpu__nvml_device dev, unsigned idx, gpu_info *g)
{
    char text[GPU__TEXT_LEN];
    gpu__nvml_ret r;
    if (n->get_uuid) {
        memset(text, 0, sizeof text);
        GPU__TIMED(c, "nvmlDeviceGetUUID", r, n->get_uuid(dev, text, (unsigned)sizeof text));
        if (r == GPU__NVML_SUCCESS)
            g->uuid = gpu__text(text, sizeof text);
    }
    if (n->get_name) {
        memset(text, 0, sizeof text);
        GPU__TIMED(c, "nvmlDeviceGetName", r, n->get_name(dev, text, (unsigned)sizeof text));
        if (r == GPU__NVML_SUCCESS)
            g->model = gpu__text(text, sizeof text);
    }
    if (n->get_pci) {
        gpu__nvml_pci pci;
        char id[GPU_BUS_ID_LEN];
        memset(&pci, 0, sizeof pci);
        GPU__TIMED(c, "nvmlDeviceGetPciInfo", r, n->get_pci(dev, &pci));
        if (r == GPU__NVML_SUCCESS && gpu__nvml_bus_id(&pci, id) == 0)
            g->pci_bus_id = gpu__strdup(id);
    }
    if (n->get_memory) {
        gpu__nvml_memory mem;
        memset(&mem, 0, sizeof mem);
        GPU__TIMED(c, "nvmlDeviceGetMemoryInfo", r, n->get_memory(dev, &mem));
        if (r == GPU__NVML_SUCCESS)
            g->memory_bytes = mem.total;
    }
    if (n->get_minor) {
        unsigned minor = 0;
        GPU__TIMED(c, "nvmlDeviceGetMinorNumber", r, n->get_minor(dev, &minor));
        if (r == GPU__NVML_SUCCESS && minor <= INT_MAX)
            g->minor = (int)minor;
    }
    gpu__nvml_links(c, n, dev, idx, g);
}

static void gpu__info_free(gpu_info *g)
{
    free(g->uuid);
    free(g->model);
    free(g->pci_bus_id);
    memset(g, 0, sizeof *g);
}

static void gpu__infos_free(gpu_info *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gpu__info_free(&g[i]);
    free(g);
}

/* Clamps a driver's GPU count to what we accept. */
static size_t gpu__clamp_count(const char *api, unsigned long n)
{
    if (n > GPU_MAX_GPUS) {
        log_warn(GPU__SUBSYS, "%s reports %lu GPUs; using the first %d", api, n, GPU_MAX_GPUS);
        return GPU_MAX_GPUS;
    }
    return (size_t)n;
}

/* The GPUs NVML sees. Returns 0 with *out and *nout set (possibly none), or -1
 * with why set when NVML is unusable. */
static int gpu__nvml_probe(gpu__ctx *c, const char *path, gpu_info **out, size_t *nout, char *why,
                           size_t whylen)
{
    gpu__nvml n;
    gpu_info *g = NULL;
    size_t count = 0;
    unsigned int raw = 0;
    gpu__nvml_ret r;
    int rc = -1;
    if (gpu__nvml_open(&n, path, why, whylen) != 0)
        return -1;
    GPU__TIMED(c, "nvmlInit_v2", r, n.init());
    if (r != GPU__NVML_SUCCESS) {
        snprintf(why, whylen, "nvmlInit_v2: %s", gpu__nvml_err(&n, r));
        goto close;
    }
    GPU__TIMED(c, "nvmlDeviceGetCount_v2", r, n.get_count(&raw));
    if (r != GPU__NVML_SUCCESS) {
        snprintf(why, whylen, "nvmlDeviceGetCount_v2: %s", gpu__nvml_err(&n, r));
        goto shutdown;
    }
    count = gpu__clamp_count("NVML", raw);
    g = count ? calloc(count, sizeof *g) : NULL;
    if (count && !g)
        abort();
    for (size_t i = 0; i < count; i++)
        g[i].minor = -1;
    for (size_t i = 0; i < count; i++) {
        gpu__nvml_device dev = NULL;
        GPU__TIMED(c, "nvmlDeviceGetHandleByIndex_v2", r, n.get_handle((unsigned)i, &dev));
        if (r != GPU__NVML_SUCCESS) {
            /* Keep the GPU (it exists) with its facts unknown. */
            log_warn(GPU__SUBSYS, "NVML GPU %zu: nvmlDeviceGetHandleByIndex_v2: %s", i, gpu__nvml_err(&n, r));
            continue;
        }
        gpu__nvml_one(c, &n, dev, (unsigned)i, &g[i]);
    }
    *out = g;
    *nout = count;
    rc = 0;
shutdown:
    GPU__TIMED(c, "nvmlShutdown", r, n.shutdown());
close:
    dlclose(n.lib);
    return rc;
}

/* --- CUDA ----------------------------------------------------------------- */

static const char *gpu__cu_err(const gpu__cuda *cu, gpu__cu_ret r)
{
    const char *s = NULL;
    if (cu->error_string && cu->error_string(r, &s) != GPU__CUDA_SUCCESS)
        s = NULL;
    return s ? s : "unknown CUDA error";
}

/* Opens the CUDA driver. It is never closed: once cuInit has run, the driver
 * may have threads running its code. */
static int gpu__cuda_open(gpu__cuda *cu, const char *path, char *why, size_t whylen)
{
    memset(cu, 0, sizeof *cu);
    cu->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!cu->lib) {
        const char *e = dlerror();
        snprintf(why, whylen, "%s", e ? e : path);
        return -1;
    }
#define GPU__SYM(field, name) gpu__sym(cu->lib, name, &cu->field, sizeof cu->field)
    GPU__SYM(init, "cuInit");
    GPU__SYM(error_string, "cuGetErrorString");
    GPU__SYM(get_count, "cuDeviceGetCount");
    GPU__SYM(get, "cuDeviceGet");
    GPU__SYM(get_name, "cuDeviceGetName");
    GPU__SYM(total_mem, "cuDeviceTotalMem_v2");
    GPU__SYM(get_bus_id, "cuDeviceGetPCIBusId");
    if (!GPU__SYM(get_uuid, "cuDeviceGetUuid_v2"))
        GPU__SYM(get_uuid, "cuDeviceGetUuid");
#undef GPU__SYM
    if (!cu->init || !cu->get_count || !cu->get) {
        snprintf(why, whylen, "%s lacks cuInit, cuDeviceGetCount or cuDeviceGet", path);
        return -1;
    }
    return 0;
}

static char *gpu__uuid_str(const gpu__cu_uuid *u)
{
    char s[48];
    const unsigned char *b = u->bytes;
    snprintf(s, sizeof s, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return gpu__strdup(s);
}

static void gpu__cuda_one(gpu__ctx *c, gpu__cuda *cu, gpu__cu_device dev, gpu_info *g)
{
    char text[GPU__TEXT_LEN];
    gpu__cu_ret r;
    if (cu->get_uuid) {
        gpu__cu_uuid u;
        memset(&u, 0, sizeof u);
        GPU__TIMED(c, "cuDeviceGetUuid", r, cu->get_uuid(&u, dev));
        if (r == GPU__CUDA_SUCCESS)
            g->uuid = gpu__uuid_str(&u);
    }
    if (cu->get_name) {
        memset(text, 0, sizeof text);
        GPU__TIMED(c, "cuDeviceGetName", r, cu->get_name(text, (int)sizeof text, dev));
        if (r == GPU__CUDA_SUCCESS)
            g->model = gpu__text(text, sizeof text);
    }
    if (cu->total_mem) {
        size_t bytes = 0;
        GPU__TIMED(c, "cuDeviceTotalMem_v2", r, cu->total_mem(&bytes, dev));
        if (r == GPU__CUDA_SUCCESS)
            g->memory_bytes = bytes;
    }
    if (cu->get_bus_id) {
        char id[GPU_BUS_ID_LEN];
        memset(text, 0, sizeof text);
        GPU__TIMED(c, "cuDeviceGetPCIBusId", r, cu->get_bus_id(text, (int)sizeof text, dev));
        text[sizeof text - 1] = '\0';
        if (r == GPU__CUDA_SUCCESS && gpu_bus_id_normalize(text, id) == 0)
            g->pci_bus_id = gpu__strdup(id);
    }
}

/* The GPUs the CUDA driver sees; as gpu__nvml_probe. */
static int gpu__cuda_probe(gpu__ctx *c, const char *path, gpu_info **out, size_t *nout, char *why,
                           size_t whylen)
{
    gpu__cuda cu;
    gpu__cu_ret r;
    int raw = 0;
    if (gpu__cuda_open(&cu, path, why, whylen) != 0)
        return -1;
    GPU__TIMED(c, "cuInit", r, cu.init(0));
    if (r == GPU__CUDA_ERROR_NO_DEVICE) {
        *out = NULL;
        *nout = 0;
        return 0;
    }
    if (r != GPU__CUDA_SUCCESS) {
        snprintf(why, whylen, "cuInit: %s", gpu__cu_err(&cu, r));
        return -1;
    }
    GPU__TIMED(c, "cuDeviceGetCount", r, cu.get_count(&raw));
    if (r != GPU__CUDA_SUCCESS || raw < 0) {
        snprintf(why, whylen, "cuDeviceGetCount: %s", gpu__cu_err(&cu, r));
        return -1;
    }
    size_t count = gpu__clamp_count("CUDA", (unsigned long)raw);
    gpu_info *g = count ? calloc(count, sizeof *g) : NULL;
    if (count && !g)
        abort();
    for (size_t i = 0; i < count; i++)
        g[i].minor = -1;
    for (size_t i = 0; i < count; i++) {
        gpu__cu_device dev = 0;
        GPU__TIMED(c, "cuDeviceGet", r, cu.get(&dev, (int)i));
        if (r != GPU__CUDA_SUCCESS) {
            log_warn(GPU__SUBSYS, "CUDA GPU %zu: cuDeviceGet: %s", i, gpu__cu_err(&cu, r));
            continue;
        }
        gpu__cuda_one(c, &cu, dev, &g[i]);
    }
    *out = g;
    *nout = count;
    return 0;
}

/* --- the probe ------------------------------------------------------------- */

/* Fills what NVML did not tell about a GPU from CUDA's view of the same GPU
 * (matched by PCI bus id). */
static void gpu__merge(gpu_info *nv, size_t n_nv, const gpu_info *cu, size_t n_cu)
{
    for (size_t i = 0; i < n_nv; i++) {
        gpu_info *g = &nv[i];
        if (!g->pci_bus_id)
            continue;
        for (size_t k = 0; k < n_cu; k++) {
            const gpu_info *o = &cu[k];
            if (!o->pci_bus_id || strcmp(o->pci_bus_id, g->pci_bus_id) != 0)
                continue;
            if (!g->uuid && o->uuid)
                g->uuid = gpu__strdup(o->uuid);
            if (!g->model && o->model)
                g->model = gpu__strdup(o->model);
            if (!g->memory_bytes)
                g->memory_bytes = o->memory_bytes;
            break;
        }
    }
}

/* The driver's minor number of the GPU at this bus id, from
 * /proc/driver/nvidia/gpus/<bus id>/information ("Device Minor: N"); -1 when
 * that does not say. */
static int gpu__proc_minor(const char *bus_id)
{
    char path[128], line[256];
    int minor = -1;
    snprintf(path, sizeof path, "/proc/driver/nvidia/gpus/%s/information", bus_id);
    FILE *f = fopen(path, "re");
    while (f && minor < 0 && fgets(line, sizeof line, f)) {
        unsigned v;
        if (sscanf(line, "Device Minor: %u", &v) == 1 && v <= INT_MAX) /* NOLINT(cert-err34-c): checked */
            minor = (int)v;
    }
    if (f)
        fclose(f);
    return minor;
}

/* The absence of the driver is normal (a CPU node): say it once. */
static atomic_flag gpu__absent_logged = ATOMIC_FLAG_INIT;

/* Fills *out (the caller's struct) with GPUs whose strings and array it owns
 * from now on: free them with gpu_list_free. Never fails. */
int gpu_probe(const gpu_probe_opts *opts, gpu_list *out)
{
    gpu__ctx c = {.slow_ms = opts && opts->slow_ms ? opts->slow_ms : 1000, .slow_calls = 0};
    const char *nvml_path = gpu__lib_path(opts ? opts->nvml_lib : NULL, "JAZARI_NVML_LIB", GPU__NVML_DEFAULT);
    const char *cuda_path = gpu__lib_path(opts ? opts->cuda_lib : NULL, "JAZARI_CUDA_LIB", GPU__CUDA_DEFAULT);
    gpu_info *nv = NULL, *cu = NULL;
    size_t n_nv = 0, n_cu = 0;
    char why_nv[512] = "", why_cu[512] = "";

    memset(out, 0, sizeof *out);
    int rc_nv = gpu__nvml_probe(&c, nvml_path, &nv, &n_nv, why_nv, sizeof why_nv);
    int rc_cu = gpu__cuda_probe(&c, cuda_path, &cu, &n_cu, why_cu, sizeof why_cu);

    if (rc_nv == 0 && n_nv > 0) {
        gpu__merge(nv, n_nv, cu, n_cu);
        out->gpus = nv;
        out->n = n_nv;
        out->source = n_cu > 0 ? "nvml+cuda" : "nvml";
        nv = NULL;
        n_nv = 0;
    } else if (rc_cu == 0 && n_cu > 0) {
        out->gpus = cu;
        out->n = n_cu;
        out->source = "cuda";
        cu = NULL;
        n_cu = 0;
    } else {
        out->source = "none";
    }
    if (rc_nv != 0 && rc_cu != 0) {
        if (!atomic_flag_test_and_set(&gpu__absent_logged))
            log_info(GPU__SUBSYS, "no NVIDIA driver (NVML: %s; CUDA: %s): this node has 0 GPUs", why_nv,
                     why_cu);
    } else if (rc_nv != 0 && out->n > 0) {
        log_info(GPU__SUBSYS, "NVML unusable (%s): GPUs from CUDA only, without NVLinks", why_nv);
    } else if (rc_cu != 0 && out->n > 0) {
        log_debug(GPU__SUBSYS, "CUDA unusable (%s): GPUs from NVML only", why_cu);
    }
    for (size_t i = 0; i < out->n; i++)
        if (out->gpus[i].minor < 0 && out->gpus[i].pci_bus_id)
            out->gpus[i].minor = gpu__proc_minor(out->gpus[i].pci_bus_id);
    gpu__infos_free(nv, n_nv);
    gpu__infos_free(cu, n_cu);
    out->slow_calls = c.slow_calls;
    return 0;
}

/* Frees what *l owns (not l itself). */
void gpu_list_free(gpu_list *l)
{
    if (!l)
        return;
    gpu__infos_free(l->gpus, l->n);
    memset(l, 0, sizeof *l);
}

/* fake_nvidia-ml.c - a stand-in libnvidia-ml.so.1 for the unit tests: four
 * A100s in PCI domain 0x42 (which no real host has, so hwloc never finds
 * them), with NVLinks:
 *
 *   GPU0 00000042:07:00.0 -- 4 links -- GPU1 00000042:0F:00.0
 *   GPU0, GPU1, GPU2 (00000042:47:00.0): 1 link each to NVSwitch 42:c1:00.0
 *                                        and 1 link each to NVSwitch 42:c2:00.0
 *   GPU0 and GPU2: 1 link each to the CPU (an "IBM NPU" at 42:e0:00.0)
 *   GPU3 00000042:4E:00.0: no NVLink; NVML cannot tell its memory
 *
 * so nvidia-smi would show GPU0-GPU1 NV6, GPU0/1-GPU2 NV2, GPU3 PCIe only.
 * Their minor numbers (/dev/nvidiaN) are 3, 1, 2, 0.
 * Environment: FAKE_NVML_DELAY_MS makes nvmlDeviceGetCount_v2 that slow;
 * FAKE_NVML_INIT_ERROR=1 makes nvmlInit_v2 fail (driver not loaded);
 * FAKE_NVML_GPUS=N (4..16) adds GPUs 4..N-1 (no NVLink, bus 0x80+i), for
 * measuring a bigger node.
 *
 * Health (fake_health_*, below): each GPU's temperature, power, ECC, ...
 * come from the file named by $FAKE_NVML_STATE, which a test writes and
 * rewrites; it is reread when its inode, size or mtime changes (checked
 * when a GPU's temperature is asked, the first call of every sample, and
 * while waiting for events). Lines (# comments):
 *   gpu N key=value ...   keys: temp slowdown shutdown power power_limit
 *       util mem_util mem_used sbe_volatile dbe_volatile sbe_aggregate
 *       dbe_aggregate remap_corr remap_unc remap_pending remap_failed
 *       retired_pending throttle (a number, 0x.. allowed) lost (0/1)
 *       delay_ms (its temperature takes that long: a slow driver)
 *       unsupported (a comma list of: temp threshold power util memory ecc
 *       retired remap throttle events energy: NOT_SUPPORTED for those calls)
 *   xid GPU N SEQ         XID N on GPU, delivered once to the event set
 *       when SEQ is larger than every SEQ delivered before.
 * A GPU the file does not mention: 40 C (slowdown 87, shutdown 92), 60 W
 * of 400, idle, nothing wrong.
 * Energy (nvmlDeviceGetTotalEnergyConsumption): each GPU's counter grows
 * at its power of the moment (power x the time since the last reading),
 * so a test knows what a job's GPUs used from the power it sets. Like the
 * driver's, it does not start again with each process: the first reading
 * is the power x the time since boot (CLOCK_MONOTONIC), so that a
 * restarted daemon reads on from where the last one did. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_TIMEOUT 10
#define NVML_ERROR_GPU_IS_LOST 15

typedef struct fake_device *nvmlDevice_t;
typedef struct nvmlPciInfo_st {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;
typedef struct nvmlMemory_st {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;
typedef int nvmlEnableState_t;

#define FAKE_GPUS 4      /* the default */
#define FAKE_GPUS_MAX 16 /* with FAKE_NVML_GPUS */
#define FAKE_LINKS 12    /* links per GPU, as on an A100 */

struct fake_device {
    unsigned bus;
    const char *uuid;
    int has_memory;
    int nvlink;                     /* 0: NVLink not supported */
    const char *remote[FAKE_LINKS]; /* bus id at the far end of active links */
};

#define G0 "00000042:07:00.0"
#define G1 "00000042:0F:00.0"
#define SW1 "00000042:C1:00.0"
#define SW2 "00000042:C2:00.0"
#define NPU "00000042:E0:00.0"

static struct fake_device fake_devs[FAKE_GPUS_MAX] = {
    {0x07, "GPU-7a1c0e52-0000-4000-8000-000000000000", 1, 1, {G1, G1, G1, G1, NULL, SW1, SW2, NPU}},
    {0x0f, "GPU-7a1c0e52-0000-4000-8000-000000000001", 1, 1, {G0, G0, G0, G0, NULL, SW1, SW2}},
    {0x47, "GPU-7a1c0e52-0000-4000-8000-000000000002", 1, 1, {NULL, NULL, NULL, NULL, NULL, SW1, SW2, NPU}},
    {0x4e, "GPU-7a1c0e52-0000-4000-8000-000000000003", 0, 0, {NULL}},
    {0x84, "GPU-7a1c0e52-0000-4000-8000-000000000004", 1, 0, {NULL}},
    {0x85, "GPU-7a1c0e52-0000-4000-8000-000000000005", 1, 0, {NULL}},
    {0x86, "GPU-7a1c0e52-0000-4000-8000-000000000006", 1, 0, {NULL}},
    {0x87, "GPU-7a1c0e52-0000-4000-8000-000000000007", 1, 0, {NULL}},
    {0x88, "GPU-7a1c0e52-0000-4000-8000-000000000008", 1, 0, {NULL}},
    {0x89, "GPU-7a1c0e52-0000-4000-8000-000000000009", 1, 0, {NULL}},
    {0x8a, "GPU-7a1c0e52-0000-4000-8000-00000000000a", 1, 0, {NULL}},
    {0x8b, "GPU-7a1c0e52-0000-4000-8000-00000000000b", 1, 0, {NULL}},
    {0x8c, "GPU-7a1c0e52-0000-4000-8000-00000000000c", 1, 0, {NULL}},
    {0x8d, "GPU-7a1c0e52-0000-4000-8000-00000000000d", 1, 0, {NULL}},
    {0x8e, "GPU-7a1c0e52-0000-4000-8000-00000000000e", 1, 0, {NULL}},
    {0x8f, "GPU-7a1c0e52-0000-4000-8000-00000000000f", 1, 0, {NULL}},
};

/* The GPUs this process sees: 4, or FAKE_NVML_GPUS as nvmlInit_v2 found it. */
static unsigned fake_n = FAKE_GPUS;
static unsigned fake_count(void)
{
    return fake_n;
}

static void fake_count_init(void)
{
    const char *e = getenv("FAKE_NVML_GPUS");
    long n = e && *e ? atol(e) : FAKE_GPUS;
    fake_n = n < FAKE_GPUS ? FAKE_GPUS : n > FAKE_GPUS_MAX ? FAKE_GPUS_MAX : (unsigned)n;
}

static int fake_initialized;

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t r);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int len);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int len);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *mem);
nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t dev, unsigned int *minor);
nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t dev, unsigned int link, nvmlEnableState_t *active);
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t dev, unsigned int link, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t dev, unsigned int link, int *type);

static unsigned long long fake_mem_used(nvmlDevice_t dev);

static int fake_valid(nvmlDevice_t dev)
{
    return fake_initialized && dev >= fake_devs && dev < fake_devs + fake_count();
}

static nvmlReturn_t fake_copy(char *dst, unsigned int len, const char *src)
{
    if (strlen(src) + 1 > len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

static void fake_pci(nvmlPciInfo_t *pci, const char *bus_id)
{
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    memset(pci, 0, sizeof *pci);
    sscanf(bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn);
    snprintf(pci->busId, sizeof pci->busId, "%s", bus_id);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X", dom, bus, dev, fn);
    pci->domain = dom;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = 0x20b210de;
}

nvmlReturn_t nvmlInit_v2(void)
{
    const char *e = getenv("FAKE_NVML_INIT_ERROR");
    if (e && *e == '1')
        return NVML_ERROR_DRIVER_NOT_LOADED;
    if (!fake_initialized)
        fake_count_init();
    fake_initialized++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (!fake_initialized)
        return NVML_ERROR_UNINITIALIZED;
    fake_initialized--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_TIMEOUT:
        return "Timeout";
    case NVML_ERROR_GPU_IS_LOST:
        return "GPU is lost";
    default:
        return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    const char *d = getenv("FAKE_NVML_DELAY_MS");
    if (!fake_initialized)
        return NVML_ERROR_UNINITIALIZED;
    if (d && *d) {
        long ms = atol(d);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    *count = fake_count();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev)
{
    if (!fake_initialized)
        return NVML_ERROR_UNINITIALIZED;
    if (index >= fake_count())
        return NVML_ERROR_INVALID_ARGUMENT;
    *dev = &fake_devs[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int len)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    return fake_copy(uuid, len, dev->uuid);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int len)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    return fake_copy(name, len, "NVIDIA A100-SXM4-80GB");
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, nvmlPciInfo_t *pci)
{
    char id[32];
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(id, sizeof id, "00000042:%02X:00.0", dev->bus);
    fake_pci(pci, id);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *mem)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!dev->has_memory)
        return NVML_ERROR_NOT_SUPPORTED;
    mem->total = 85899345920ULL; /* 80 GiB */
    mem->used = fake_mem_used(dev);
    mem->free = mem->total - mem->used;
    return NVML_SUCCESS;
}

/* The driver numbers its devices in its own probe order, not the bus's:
 * the fake's are 3, 1, 2 and 0 (GPU3 as /dev/nvidia0). */
nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t dev, unsigned int *minor)
{
    static const unsigned minors[FAKE_GPUS] = {3, 1, 2, 0};
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    long i = dev - fake_devs;
    *minor = i < FAKE_GPUS ? minors[i] : (unsigned)i;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t dev, unsigned int link, nvmlEnableState_t *active)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!dev->nvlink)
        return NVML_ERROR_NOT_SUPPORTED;
    if (link >= FAKE_LINKS)
        return NVML_ERROR_INVALID_ARGUMENT;
    *active = dev->remote[link] != NULL;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t dev, unsigned int link, nvmlPciInfo_t *pci)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!dev->nvlink)
        return NVML_ERROR_NOT_SUPPORTED;
    if (link >= FAKE_LINKS || !dev->remote[link])
        return NVML_ERROR_INVALID_ARGUMENT;
    fake_pci(pci, dev->remote[link]);
    return NVML_SUCCESS;
}

/* 0 GPU, 1 IBM NPU (a CPU), 2 NVSwitch. */
nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t dev, unsigned int link, int *type)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!dev->nvlink)
        return NVML_ERROR_NOT_SUPPORTED;
    if (link >= FAKE_LINKS || !dev->remote[link])
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strcmp(dev->remote[link], NPU) == 0)
        *type = 1;
    else if (strcmp(dev->remote[link], SW1) == 0 || strcmp(dev->remote[link], SW2) == 0)
        *type = 2;
    else
        *type = 0;
    return NVML_SUCCESS;
}

/* --- health ----------------------------------------------------------------- */

typedef struct nvmlUtilization_st {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct fake_event_set *nvmlEventSet_t;
typedef struct nvmlEventData_st {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;
#define FAKE_EVENT_XID 0x8ull

enum {
    U_TEMP = 1,
    U_THRESH = 2,
    U_POWER = 4,
    U_UTIL = 8,
    U_MEMORY = 16,
    U_ECC = 32,
    U_RETIRED = 64,
    U_REMAP = 128,
    U_THROTTLE = 256,
    U_EVENTS = 512,
    U_ENERGY = 1024
};

typedef struct fake_health {
    unsigned temp, slowdown, shutdown, power, power_limit, util, mem_util;
    unsigned long long mem_used, ecc[2][2]; /* [volatile, aggregate][sbe, dbe] */
    unsigned remap_corr, remap_unc, remap_pending, remap_failed, retired_pending, lost, unsupported;
    unsigned long long throttle;
    unsigned delay_ms; /* nvmlDeviceGetTemperature takes this long (a slow driver) */
} fake_health;

#define FAKE_XIDS_MAX 256
typedef struct fake_xid {
    unsigned gpu;
    unsigned long long xid, seq;
} fake_xid;

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static fake_health fake_h[FAKE_GPUS_MAX];
static fake_xid fake_xids[FAKE_XIDS_MAX];
static size_t fake_n_xids;
static unsigned long long fake_seq_done; /* the largest SEQ delivered */
static struct stat fake_st;              /* of the file last read */
static int fake_read_once;
static unsigned long long fake_energy_uj[FAKE_GPUS_MAX]; /* the energy counters, microjoules */
static struct timespec fake_energy_at[FAKE_GPUS_MAX];    /* their last reading (0: none) */

struct fake_event_set {
    unsigned registered; /* bit i: GPU i */
};

static void fake_defaults(void)
{
    for (unsigned i = 0; i < FAKE_GPUS_MAX; i++) {
        fake_health *h = &fake_h[i];
        memset(h, 0, sizeof *h);
        h->temp = 40;
        h->slowdown = 87;
        h->shutdown = 92;
        h->power = 60000;
        h->power_limit = 400000;
        h->mem_used = 1ULL << 20;
    }
    fake_n_xids = 0;
}

static unsigned fake_unsupported(const char *list)
{
    static const char *names[] = {"temp",    "threshold", "power",    "util",   "memory", "ecc",
                                  "retired", "remap",     "throttle", "events", "energy"};
    unsigned bits = 0;
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        size_t l = strlen(names[i]);
        for (const char *p = list; (p = strstr(p, names[i])) != NULL; p += l)
            if ((p == list || p[-1] == ',') && (p[l] == ',' || p[l] == '\0'))
                bits |= 1u << i;
    }
    return bits;
}

static void fake_set(fake_health *h, const char *key, const char *val)
{
    unsigned long long v = strtoull(val, NULL, 0);
    struct {
        const char *k;
        unsigned *u;
        unsigned long long *ull;
    } map[] = {
        {"temp", &h->temp, NULL},
        {"slowdown", &h->slowdown, NULL},
        {"shutdown", &h->shutdown, NULL},
        {"power", &h->power, NULL},
        {"power_limit", &h->power_limit, NULL},
        {"util", &h->util, NULL},
        {"mem_util", &h->mem_util, NULL},
        {"mem_used", NULL, &h->mem_used},
        {"sbe_volatile", NULL, &h->ecc[0][0]},
        {"dbe_volatile", NULL, &h->ecc[0][1]},
        {"sbe_aggregate", NULL, &h->ecc[1][0]},
        {"dbe_aggregate", NULL, &h->ecc[1][1]},
        {"remap_corr", &h->remap_corr, NULL},
        {"remap_unc", &h->remap_unc, NULL},
        {"remap_pending", &h->remap_pending, NULL},
        {"remap_failed", &h->remap_failed, NULL},
        {"retired_pending", &h->retired_pending, NULL},
        {"throttle", NULL, &h->throttle},
        {"lost", &h->lost, NULL},
        {"delay_ms", &h->delay_ms, NULL},
    };
    if (strcmp(key, "unsupported") == 0) {
        h->unsupported = fake_unsupported(val);
        return;
    }
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].k, key) == 0) {
            if (map[i].u)
                *map[i].u = (unsigned)v;
            else
                *map[i].ull = v;
        }
}

/* Rereads $FAKE_NVML_STATE when it changed; under fake_mu. */
static void fake_reload(void)
{
    const char *path = getenv("FAKE_NVML_STATE");
    struct stat st;
    if (!path || !*path || stat(path, &st) != 0) {
        if (!fake_read_once)
            fake_defaults();
        fake_read_once = 1;
        return;
    }
    if (fake_read_once && st.st_ino == fake_st.st_ino && st.st_size == fake_st.st_size &&
        st.st_mtim.tv_sec == fake_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == fake_st.st_mtim.tv_nsec)
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    fake_st = st;
    fake_read_once = 1;
    fake_defaults();
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL, *w = strtok_r(line, " \t\r\n", &save);
        if (!w)
            continue;
        if (strcmp(w, "xid") == 0) {
            char *g = strtok_r(NULL, " \t\r\n", &save), *x = strtok_r(NULL, " \t\r\n", &save),
                 *q = strtok_r(NULL, " \t\r\n", &save);
            if (g && x && q && fake_n_xids < FAKE_XIDS_MAX) {
                fake_xid *e = &fake_xids[fake_n_xids++];
                e->gpu = (unsigned)atoi(g);
                e->xid = strtoull(x, NULL, 10);
                e->seq = strtoull(q, NULL, 10);
            }
            continue;
        }
        if (strcmp(w, "gpu") != 0)
            continue;
        char *g = strtok_r(NULL, " \t\r\n", &save);
        int i = g ? atoi(g) : -1;
        if (i < 0 || i >= FAKE_GPUS_MAX)
            continue;
        for (char *kv = strtok_r(NULL, " \t\r\n", &save); kv; kv = strtok_r(NULL, " \t\r\n", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            fake_set(&fake_h[i], kv, eq + 1);
        }
    }
    fclose(f);
}

/* The state of dev (a copy), or an error for an invalid, lost or
 * unsupported one. reload: reread the file first. */
static nvmlReturn_t fake_get(nvmlDevice_t dev, unsigned unsupported_bit, int reload, fake_health *out)
{
    if (!fake_valid(dev))
        return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fake_mu);
    if (reload || !fake_read_once)
        fake_reload();
    *out = fake_h[dev - fake_devs];
    pthread_mutex_unlock(&fake_mu);
    if (out->lost)
        return NVML_ERROR_GPU_IS_LOST;
    if (out->unsupported & unsupported_bit)
        return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}

static unsigned long long fake_mem_used(nvmlDevice_t dev)
{
    fake_health h;
    if (fake_get(dev, 0, 0, &h) != NVML_SUCCESS)
        return 1ULL << 20;
    return h.mem_used;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp);
nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t dev, int which, unsigned int *temp);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw);
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *mw);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u);
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t dev, int type, int counter, unsigned long long *count);
nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t dev, nvmlEnableState_t *pending);
nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t dev, unsigned int *corr, unsigned int *unc,
                                       unsigned int *pending, unsigned int *failed);
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev, unsigned long long *reasons);
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t dev, unsigned long long types, nvmlEventSet_t set);
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms);

/* The first call of every sample: the file is checked here. */
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_TEMP, 1, &h);
    if (h.delay_ms) {
        struct timespec ts = {h.delay_ms / 1000, (long)(h.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (r == NVML_SUCCESS && sensor != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *temp = h.temp;
    return r;
}

/* 0 shutdown, 1 slowdown. */
nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t dev, int which, unsigned int *temp)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_THRESH, 0, &h);
    if (r == NVML_SUCCESS && (which < 0 || which > 1))
        return NVML_ERROR_NOT_SUPPORTED;
    if (r == NVML_SUCCESS)
        *temp = which == 0 ? h.shutdown : h.slowdown;
    return r;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_POWER, 0, &h);
    if (r == NVML_SUCCESS)
        *mw = h.power;
    return r;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *mw)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_POWER, 0, &h);
    if (r == NVML_SUCCESS)
        *mw = h.power_limit;
    return r;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_UTIL, 0, &h);
    if (r == NVML_SUCCESS) {
        u->gpu = h.util;
        u->memory = h.mem_util;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *mj);
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *mj)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_ENERGY, 0, &h);
    if (r != NVML_SUCCESS)
        return r;
    size_t i = (size_t)(dev - fake_devs);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&fake_mu);
    struct timespec *at = &fake_energy_at[i];
    struct timespec zero = {0, 0};
    const struct timespec *from = at->tv_sec || at->tv_nsec ? at : &zero; /* the first: since boot */
    long long us = (now.tv_sec - from->tv_sec) * 1000000LL + (now.tv_nsec - from->tv_nsec) / 1000;
    if (us > 0) /* mW x us = nJ */
        fake_energy_uj[i] += (unsigned long long)h.power * (unsigned long long)us / 1000;
    *at = now;
    *mj = fake_energy_uj[i] / 1000;
    pthread_mutex_unlock(&fake_mu);
    return NVML_SUCCESS;
}

/* type 0 corrected (single bit), 1 uncorrected; counter 0 volatile, 1 aggregate. */
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t dev, int type, int counter, unsigned long long *count)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_ECC, 0, &h);
    if (r == NVML_SUCCESS && (type < 0 || type > 1 || counter < 0 || counter > 1))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *count = h.ecc[counter][type];
    return r;
}

nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t dev, nvmlEnableState_t *pending)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_RETIRED, 0, &h);
    if (r == NVML_SUCCESS)
        *pending = h.retired_pending != 0;
    return r;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t dev, unsigned int *corr, unsigned int *unc,
                                       unsigned int *pending, unsigned int *failed)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_REMAP, 0, &h);
    if (r == NVML_SUCCESS) {
        *corr = h.remap_corr;
        *unc = h.remap_unc;
        *pending = h.remap_pending;
        *failed = h.remap_failed;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev, unsigned long long *reasons)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_THROTTLE, 0, &h);
    if (r == NVML_SUCCESS)
        *reasons = h.throttle;
    return r;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    if (!fake_initialized)
        return NVML_ERROR_UNINITIALIZED;
    *set = calloc(1, sizeof **set);
    return *set ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    free(set);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t dev, unsigned long long types, nvmlEventSet_t set)
{
    fake_health h;
    nvmlReturn_t r = fake_get(dev, U_EVENTS, 1, &h);
    if (r != NVML_SUCCESS)
        return r;
    if (!set || types != FAKE_EVENT_XID)
        return NVML_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&fake_mu);
    set->registered |= 1u << (dev - fake_devs);
    pthread_mutex_unlock(&fake_mu);
    return NVML_SUCCESS;
}

/* The pending XID of the smallest new SEQ on a registered GPU, if any
 * (under fake_mu). */
static int fake_next_xid(nvmlEventSet_t set, nvmlEventData_t *data)
{
    const fake_xid *best = NULL;
    for (size_t i = 0; i < fake_n_xids; i++) {
        const fake_xid *x = &fake_xids[i];
        if (x->seq > fake_seq_done && x->gpu < FAKE_GPUS_MAX && (set->registered >> x->gpu & 1) &&
            (!best || x->seq < best->seq))
            best = x;
    }
    if (!best)
        return 0;
    fake_seq_done = best->seq;
    memset(data, 0, sizeof *data);
    data->device = &fake_devs[best->gpu];
    data->eventType = FAKE_EVENT_XID;
    data->eventData = best->xid;
    return 1;
}

/* Polls the file every 10 ms until an XID is due or the time is up. */
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{
    if (!fake_initialized || !set)
        return NVML_ERROR_UNINITIALIZED;
    /* The driver blocks in the kernel; this looks for new XIDs every
     * FAKE_NVML_POLL_MS (10: the tests see them at once; a benchmark sets
     * more, so that the fake's polling is not what it measures). */
    const char *poll = getenv("FAKE_NVML_POLL_MS");
    unsigned step = poll && atoi(poll) > 0 ? (unsigned)atoi(poll) : 10;
    for (unsigned waited = 0;; waited += step) {
        pthread_mutex_lock(&fake_mu);
        fake_reload();
        int got = fake_next_xid(set, data);
        pthread_mutex_unlock(&fake_mu);
        if (got)
            return NVML_SUCCESS;
        if (waited >= timeoutms)
            return NVML_ERROR_TIMEOUT;
        unsigned ms = step < timeoutms - waited ? step : timeoutms - waited;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

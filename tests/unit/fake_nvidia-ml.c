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
 * FAKE_NVML_INIT_ERROR=1 makes nvmlInit_v2 fail (driver not loaded). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9

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

#define FAKE_GPUS 4
#define FAKE_LINKS 12 /* links per GPU, as on an A100 */

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

static struct fake_device fake_devs[FAKE_GPUS] = {
    {0x07, "GPU-7a1c0e52-0000-4000-8000-000000000000", 1, 1, {G1, G1, G1, G1, NULL, SW1, SW2, NPU}},
    {0x0f, "GPU-7a1c0e52-0000-4000-8000-000000000001", 1, 1, {G0, G0, G0, G0, NULL, SW1, SW2}},
    {0x47, "GPU-7a1c0e52-0000-4000-8000-000000000002", 1, 1, {NULL, NULL, NULL, NULL, NULL, SW1, SW2, NPU}},
    {0x4e, "GPU-7a1c0e52-0000-4000-8000-000000000003", 0, 0, {NULL}},
};

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

static int fake_valid(nvmlDevice_t dev)
{
    return fake_initialized && dev >= fake_devs && dev < fake_devs + FAKE_GPUS;
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
    *count = FAKE_GPUS;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev)
{
    if (!fake_initialized)
        return NVML_ERROR_UNINITIALIZED;
    if (index >= FAKE_GPUS)
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
    mem->used = 1ULL << 20;
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
    *minor = minors[dev - fake_devs];
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

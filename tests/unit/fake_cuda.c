/* fake_cuda.c - a stand-in libcuda.so.1 for the unit tests: the same four
 * A100s as fake_nvidia-ml.c, in CUDA's own order (fastest first: NVML's
 * GPUs 2, 0, 3, 1), with CUDA's spelling of bus ids ("0042:0F:00.0") and
 * its view of memory (a little less than NVML's total).
 * Environment: FAKE_CUDA_NO_DEVICE=1 makes cuInit report no device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUuuid_st {
    char bytes[16];
} CUuuid;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_NO_DEVICE 100
#define CUDA_ERROR_INVALID_DEVICE 101

#define FAKE_GPUS 4
#define FAKE_MEMORY 85097971712ULL

static const int fake_order[FAKE_GPUS] = {2, 0, 3, 1}; /* CUDA ordinal -> NVML index */
static const unsigned fake_bus[FAKE_GPUS] = {0x07, 0x0f, 0x47, 0x4e};
static int fake_initialized;

CUresult cuInit(unsigned int flags);
CUresult cuGetErrorString(CUresult r, const char **s);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGet(CUdevice *dev, int ordinal);
CUresult cuDeviceGetName(char *name, int len, CUdevice dev);
CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev);
CUresult cuDeviceGetPCIBusId(char *bus_id, int len, CUdevice dev);
CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev);

CUresult cuInit(unsigned int flags)
{
    const char *e = getenv("FAKE_CUDA_NO_DEVICE");
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (e && *e == '1')
        return CUDA_ERROR_NO_DEVICE;
    fake_initialized = 1;
    return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult r, const char **s)
{
    switch (r) {
    case CUDA_SUCCESS:
        *s = "no error";
        return CUDA_SUCCESS;
    case CUDA_ERROR_NO_DEVICE:
        *s = "no CUDA-capable device is detected";
        return CUDA_SUCCESS;
    case CUDA_ERROR_INVALID_DEVICE:
        *s = "invalid device ordinal";
        return CUDA_SUCCESS;
    default:
        *s = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult cuDeviceGetCount(int *count)
{
    if (!fake_initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    *count = FAKE_GPUS;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
    if (!fake_initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (ordinal < 0 || ordinal >= FAKE_GPUS)
        return CUDA_ERROR_INVALID_DEVICE;
    *dev = fake_order[ordinal];
    return CUDA_SUCCESS;
}

static int fake_valid(CUdevice dev)
{
    return fake_initialized && dev >= 0 && dev < FAKE_GPUS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    if (!fake_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)len, "%s", "NVIDIA A100-SXM4-80GB");
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    if (!fake_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    *bytes = (size_t)FAKE_MEMORY;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetPCIBusId(char *bus_id, int len, CUdevice dev)
{
    if (!fake_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    snprintf(bus_id, (size_t)len, "0042:%02X:00.0", fake_bus[dev]);
    return CUDA_SUCCESS;
}

/* The UUID NVML prints as GPU-7a1c0e52-0000-4000-8000-00000000000<dev>. */
CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    static const unsigned char base[16] = {0x7a, 0x1c, 0x0e, 0x52, 0x00, 0x00, 0x40, 0x00,
                                           0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    if (!fake_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    memcpy(uuid->bytes, base, sizeof base);
    uuid->bytes[15] = (char)dev;
    return CUDA_SUCCESS;
}

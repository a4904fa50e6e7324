/* test_gpu.c - the live GPU probe through the dlopen paths, against the
 * stand-in driver libraries fake_nvidia-ml.c and fake_cuda.c (built as
 * $JAZARI_BUILD/tests/fake/lib*.so.1), and the probe without any driver. */
#include <stdlib.h>
#include <unistd.h>

#include "lib/hw/gpu.h"
#include "lib/hw/topo.h"
#include "common/log.h"
#include "test.h"

#define NO_LIB "/nonexistent/jazari-test/libnone.so.1"

static const char *fake_lib(const char *name, char *path, size_t len)
{
    const char *b = getenv("JAZARI_BUILD");
    snprintf(path, len, "%s/tests/fake/%s", b && *b ? b : "build", name);
    return path;
}

/* Fills both paths; fails the test (returns 0) when the fakes are not built. */
static int fakes(char *nvml, char *cuda, size_t len)
{
    fake_lib("libnvidia-ml.so.1", nvml, len);
    fake_lib("libcuda.so.1", cuda, len);
    if (access(nvml, R_OK) != 0 || access(cuda, R_OK) != 0) {
        test_fail(__FILE__, __LINE__, "%s or %s missing: build them (make %s %s)", nvml, cuda, nvml, cuda);
        return 0;
    }
    return 1;
}

static const char *const uuids[4] = {
    "GPU-7a1c0e52-0000-4000-8000-000000000000", "GPU-7a1c0e52-0000-4000-8000-000000000001",
    "GPU-7a1c0e52-0000-4000-8000-000000000002", "GPU-7a1c0e52-0000-4000-8000-000000000003"};
static const char *const buses[4] = {"0042:07:00.0", "0042:0f:00.0", "0042:47:00.0", "0042:4e:00.0"};

TEST(gpu_bus_id_normalize)
{
    char out[GPU_BUS_ID_LEN];
    CHECK_EQ_INT(gpu_bus_id_normalize("00000000:3B:00.0", out), 0);
    CHECK_EQ_STR(out, "0000:3b:00.0");
    CHECK_EQ_INT(gpu_bus_id_normalize("0000:34:00.0", out), 0);
    CHECK_EQ_STR(out, "0000:34:00.0");
    CHECK_EQ_INT(gpu_bus_id_normalize("3b:1f.7", out), 0);
    CHECK_EQ_STR(out, "0000:3b:1f.7");
    CHECK_EQ_INT(gpu_bus_id_normalize("0001C0DE:01:00.1", out), 0);
    CHECK_EQ_STR(out, "1c0de:01:00.1");
    CHECK_EQ_INT(gpu_bus_id_normalize(NULL, out), -1);
    CHECK_EQ_INT(gpu_bus_id_normalize("", out), -1);
    CHECK_EQ_INT(gpu_bus_id_normalize("0000:34:00", out), -1);
    CHECK_EQ_INT(gpu_bus_id_normalize("0000:34:00.8", out), -1);  /* function > 7 */
    CHECK_EQ_INT(gpu_bus_id_normalize("0000:100:00.0", out), -1); /* bus > ff */
    CHECK_EQ_INT(gpu_bus_id_normalize("0000:34:20.0", out), -1);  /* device > 1f */
    CHECK_EQ_INT(gpu_bus_id_normalize("0000:34:00.0 ", out), -1);
    CHECK_EQ_INT(gpu_bus_id_normalize("1:2:3:4.0", out), -1);
    CHECK_EQ_INT(gpu_bus_id_normalize("123456789:00:00.0", out), -1);
    CHECK_EQ_INT(gpu_bus_id_normalize("GPU-1234", out), -1);
}

/* Runs fn with stderr in a file; returns how many lines contained needle. */
static int count_stderr_lines(void (*fn)(void), const char *needle)
{
    char path[] = "/tmp/jazari-test-gpu-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    int n = 0;
    char line[2048];
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        unlink(path);
        return -1;
    }
    rewind(f);
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    unlink(path);
    return n;
}

static int absent_rc[2];
static size_t absent_n[2];

static void probe_absent_twice(void)
{
    gpu_probe_opts o = {.nvml_lib = NO_LIB, .cuda_lib = NO_LIB, .slow_ms = 0};
    for (int i = 0; i < 2; i++) {
        gpu_list l;
        absent_rc[i] = gpu_probe(&o, &l);
        absent_n[i] = l.n;
        gpu_list_free(&l);
    }
}

TEST(gpu_probe_without_driver_is_zero_gpus_logged_once)
{
    log_level saved = log__level;
    log_set_level(LOG_INFO);
    int lines = count_stderr_lines(probe_absent_twice, "no NVIDIA driver");
    log_set_level(saved);
    CHECK_EQ_INT(absent_rc[0], 0);
    CHECK_EQ_INT(absent_rc[1], 0);
    CHECK_EQ_INT(absent_n[0], 0);
    CHECK_EQ_INT(absent_n[1], 0);
    /* Once per process: an earlier test may already have said it. */
    CHECK(lines == 0 || lines == 1);
}

TEST(gpu_probe_nvml_and_cuda)
{
    char nvml[512], cuda[512];
    if (!fakes(nvml, cuda, sizeof nvml))
        return;
    gpu_probe_opts o = {.nvml_lib = nvml, .cuda_lib = cuda, .slow_ms = 0};
    gpu_list l;
    CHECK_EQ_INT(gpu_probe(&o, &l), 0);
    REQUIRE(l.n == 4);
    CHECK_EQ_STR(l.source, "nvml+cuda");
    CHECK_EQ_INT(l.slow_calls, 0);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_STR(l.gpus[i].uuid, uuids[i]);
        CHECK_EQ_STR(l.gpus[i].pci_bus_id, buses[i]);
        CHECK_EQ_STR(l.gpus[i].model, "NVIDIA A100-SXM4-80GB");
    }
    /* The driver's minor numbers, not the bus order (GPU3 is /dev/nvidia0). */
    CHECK_EQ_INT(l.gpus[0].minor, 3);
    CHECK_EQ_INT(l.gpus[1].minor, 1);
    CHECK_EQ_INT(l.gpus[3].minor, 0);
    /* NVML's total; for GPU3 NVML cannot tell, so CUDA's (same bus id). */
    CHECK_EQ_INT(l.gpus[0].memory_bytes, 85899345920LL);
    CHECK_EQ_INT(l.gpus[3].memory_bytes, 85097971712LL);
    CHECK_EQ_INT(l.gpus[0].n_nvlinks, 6);
    CHECK_EQ_INT(l.gpus[1].n_nvlinks, 6);
    CHECK_EQ_INT(l.gpus[2].n_nvlinks, 2);
    CHECK_EQ_INT(l.gpus[3].n_nvlinks, 0);
    CHECK_EQ_STR(l.gpus[0].nvlink_remote[0], "0042:0f:00.0");
    CHECK_EQ_STR(l.gpus[0].nvlink_remote[4], "0042:c1:00.0");
    CHECK_EQ_STR(l.gpus[2].nvlink_remote[1], "0042:c2:00.0");
    gpu_list_free(&l);
    CHECK(l.gpus == NULL && l.n == 0);
}

TEST(gpu_probe_cuda_only)
{
    char nvml[512], cuda[512];
    if (!fakes(nvml, cuda, sizeof nvml))
        return;
    gpu_probe_opts o = {.nvml_lib = NO_LIB, .cuda_lib = cuda, .slow_ms = 0};
    gpu_list l;
    log_level saved = log__level;
    log_set_level(LOG_WARN); /* "NVML unusable" is expected here */
    CHECK_EQ_INT(gpu_probe(&o, &l), 0);
    log_set_level(saved);
    REQUIRE(l.n == 4);
    CHECK_EQ_STR(l.source, "cuda");
    /* CUDA's order (fastest first), UUIDs from its 16 bytes. */
    static const int order[4] = {2, 0, 3, 1};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_STR(l.gpus[i].uuid, uuids[order[i]]);
        CHECK_EQ_STR(l.gpus[i].pci_bus_id, buses[order[i]]);
        CHECK_EQ_INT(l.gpus[i].memory_bytes, 85097971712LL);
        CHECK_EQ_INT(l.gpus[i].n_nvlinks, 0);
        CHECK_EQ_INT(l.gpus[i].minor, -1); /* CUDA cannot tell, nor /proc/driver/nvidia here */
    }
    gpu_list_free(&l);
}

TEST(gpu_probe_nvml_init_failure_falls_back_to_cuda)
{
    char nvml[512], cuda[512];
    if (!fakes(nvml, cuda, sizeof nvml))
        return;
    setenv("FAKE_NVML_INIT_ERROR", "1", 1);
    gpu_probe_opts o = {.nvml_lib = nvml, .cuda_lib = cuda, .slow_ms = 0};
    gpu_list l;
    log_level saved = log__level;
    log_set_level(LOG_WARN); /* "NVML unusable" is expected here */
    CHECK_EQ_INT(gpu_probe(&o, &l), 0);
    log_set_level(saved);
    unsetenv("FAKE_NVML_INIT_ERROR");
    CHECK_EQ_INT(l.n, 4);
    CHECK_EQ_STR(l.source, "cuda");
    gpu_list_free(&l);

    /* And with CUDA saying "no device" too: zero GPUs, no failure. */
    setenv("FAKE_NVML_INIT_ERROR", "1", 1);
    setenv("FAKE_CUDA_NO_DEVICE", "1", 1);
    CHECK_EQ_INT(gpu_probe(&o, &l), 0);
    unsetenv("FAKE_NVML_INIT_ERROR");
    unsetenv("FAKE_CUDA_NO_DEVICE");
    CHECK_EQ_INT(l.n, 0);
    CHECK_EQ_STR(l.source, "none");
    gpu_list_free(&l);
}

TEST(gpu_probe_counts_slow_calls)
{
    char nvml[512], cuda[512];
    if (!fakes(nvml, cuda, sizeof nvml))
        return;
    setenv("FAKE_NVML_DELAY_MS", "30", 1);
    gpu_probe_opts o = {.nvml_lib = nvml, .cuda_lib = cuda, .slow_ms = 10};
    gpu_list l;
    log_level saved = log__level;
    log_set_level(LOG_ERROR); /* the warning itself is not the point here */
    CHECK_EQ_INT(gpu_probe(&o, &l), 0);
    log_set_level(saved);
    unsetenv("FAKE_NVML_DELAY_MS");
    CHECK(l.slow_calls >= 1);
    CHECK_EQ_INT(l.n, 4);
    gpu_list_free(&l);
}

/* The environment names the libraries when opts do not. */
TEST(gpu_probe_env_paths_and_live_topology)
{
    char nvml[512], cuda[512], err[256] = "";
    if (!fakes(nvml, cuda, sizeof nvml))
        return;
    setenv("JAZARI_NVML_LIB", nvml, 1);
    setenv("JAZARI_CUDA_LIB", cuda, 1);
    gpu_list l;
    CHECK_EQ_INT(gpu_probe(NULL, &l), 0);
    CHECK_EQ_INT(l.n, 4);
    gpu_list_free(&l);

    /* This host's hwloc, the fake driver's GPUs: sorted by bus id, NVLink
     * counts from NVML, and for GPU3 (no NVLink, and not in this host's
     * PCI tree) SYS. */
    topo *t = NULL;
    topo_load_opts opts = {.xml_path = NULL, .name = "live", .probe_gpus = true};
    int rc = topo_load(&opts, &t, err, sizeof err);
    unsetenv("JAZARI_NVML_LIB");
    unsetenv("JAZARI_CUDA_LIB");
    REQUIRE(rc == 0);
    CHECK_EQ_STR(t->name, "live");
    CHECK_EQ_STR(t->source, "hwloc");
    CHECK(t->pus >= 1);
    CHECK(t->n_numa >= 1);
    REQUIRE(t->n_gpus == 4);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_INT(t->gpus[i].index, i);
        CHECK_EQ_STR(t->gpus[i].uuid, uuids[i]);
        CHECK_EQ_STR(t->gpus[i].pci_bus_id, buses[i]);
        CHECK_EQ_INT(t->gpus[i].numa, -1);
        CHECK(t->gpus[i].cpuset == NULL);
        CHECK(t->gpus[i].has_minor);
    }
    CHECK_EQ_INT(t->gpus[0].minor, 3);
    CHECK_EQ_INT(t->gpus[3].minor, 0);
    static const char *const want[4][4] = {{"X", "NV6", "NV2", "SYS"},
                                           {"NV6", "X", "NV2", "SYS"},
                                           {"NV2", "NV2", "X", "SYS"},
                                           {"SYS", "SYS", "SYS", "X"}};
    char s[16];
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++)
            CHECK_EQ_STR(topo_link_str(topo_link_get(t, i, j), s, sizeof s), want[i][j]);
    topo_free(t);

    /* probe_gpus false: the driver is not asked. */
    setenv("JAZARI_NVML_LIB", nvml, 1);
    opts.probe_gpus = false;
    t = NULL;
    rc = topo_load(&opts, &t, err, sizeof err);
    unsetenv("JAZARI_NVML_LIB");
    REQUIRE(rc == 0);
    CHECK_EQ_INT(t->n_gpus, 0);
    topo_free(t);
}

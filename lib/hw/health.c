/* health.c - GPU health through NVML: samples, XID events on a thread of
 * their own, and the conditions derived from them.
 *
 * No nvml.h is installed: the few types and functions used are declared
 * here with the ABI of nvml.h. Every optional call may be absent (an older
 * driver) or answer NOT_SUPPORTED (a consumer GPU has no ECC): the field
 * stays unknown. */
#include "health.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"

#define HEALTH__SUBSYS "health"
#define HEALTH__NVML_DEFAULT "libnvidia-ml.so.1"

/* --- NVML, as declared by nvml.h ----------------------------------------- */

typedef int health__ret; /* nvmlReturn_t */
#define HEALTH__OK 0
#define HEALTH__E_NOT_SUPPORTED 3
#define HEALTH__E_TIMEOUT 10
#define HEALTH__E_GPU_IS_LOST 15

typedef struct health__dev_st *health__dev; /* nvmlDevice_t */
typedef struct health__set_st *health__set; /* nvmlEventSet_t */

typedef struct health__util { /* nvmlUtilization_t */
    unsigned int gpu;
    unsigned int memory;
} health__util;

typedef struct health__memory { /* nvmlMemory_t */
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} health__memory;

typedef struct health__event { /* nvmlEventData_t */
    health__dev device;
    unsigned long long type;
    unsigned long long data;
    unsigned int gpu_instance;
    unsigned int compute_instance;
} health__event;

#define HEALTH__EVENT_XID 0x8ull  /* nvmlEventTypeXidCriticalError */
#define HEALTH__TEMP_GPU 0        /* NVML_TEMPERATURE_GPU */
#define HEALTH__THRESH_SHUTDOWN 0 /* NVML_TEMPERATURE_THRESHOLD_SHUTDOWN */
#define HEALTH__THRESH_SLOWDOWN 1 /* NVML_TEMPERATURE_THRESHOLD_SLOWDOWN */
#define HEALTH__ECC_CORRECTED 0   /* NVML_MEMORY_ERROR_TYPE_CORRECTED: single bit */
#define HEALTH__ECC_UNCORRECTED 1 /* double bit */
#define HEALTH__ECC_VOLATILE 0
#define HEALTH__ECC_AGGREGATE 1

typedef struct health__nvml {
    void *lib;
    health__ret (*init)(void);
    health__ret (*shutdown)(void);
    const char *(*error_string)(health__ret);
    health__ret (*get_count)(unsigned int *);
    health__ret (*get_handle)(unsigned int, health__dev *);
    health__ret (*get_uuid)(health__dev, char *, unsigned int);
    health__ret (*get_name)(health__dev, char *, unsigned int);
    health__ret (*temp)(health__dev, int, unsigned int *);
    health__ret (*temp_threshold)(health__dev, int, unsigned int *);
    health__ret (*power)(health__dev, unsigned int *);
    health__ret (*power_limit)(health__dev, unsigned int *);
    health__ret (*util)(health__dev, health__util *);
    health__ret (*energy)(health__dev, unsigned long long *);
    health__ret (*memory)(health__dev, health__memory *);
    health__ret (*ecc)(health__dev, int, int, unsigned long long *);
    health__ret (*retired_pending)(health__dev, int *);
    health__ret (*remapped)(health__dev, unsigned int *, unsigned int *, unsigned int *, unsigned int *);
    health__ret (*throttle)(health__dev, unsigned long long *);
    health__ret (*set_create)(health__set *);
    health__ret (*set_free)(health__set);
    health__ret (*register_events)(health__dev, unsigned long long, health__set);
    health__ret (*set_wait)(health__set, health__event *, unsigned int);
} health__nvml;

struct health {
    health__nvml n;
    unsigned slow_ms, wait_ms;
    size_t n_gpus;
    health__dev dev[HEALTH_MAX_GPUS];
    bool dev_ok[HEALTH_MAX_GPUS]; /* a handle we trust (false: look it up again) */
    char uuid[HEALTH_MAX_GPUS][96];
    char model[HEALTH_MAX_GPUS][96];
    /* The XID thread and its queue. */
    pthread_t thread;
    bool thread_on;
    atomic_bool stop;
    health__set set;
    void (*wake)(void *);
    void *wake_arg;
    pthread_mutex_t mu;
    /* The sampler thread: one sample at a time, on request. */
    pthread_t sampler;
    bool sampler_on, sampler_stop, want_sample, sampling, sample_ready;
    pthread_cond_t cv;
    void (*s_wake)(void *);
    void *s_arg;
    health_sample res[HEALTH_MAX_GPUS]; /* the last sample, under mu */
    uint64_t res_us;
    unsigned res_slow;
    health_sample work[HEALTH_MAX_GPUS]; /* the sampler's own */
    bool abandoned;                      /* a thread did not stop (stuck in the driver): h is never freed */
    health_xid queue[HEALTH_XID_QUEUE];
    size_t q_head, q_len;
    uint64_t dropped;
};

static double health__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t health__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* res = call, with a warning when NVML took longer than slow_ms. */
#define HEALTH__TIMED(h, slow, what, res, call)                                                              \
    do {                                                                                                     \
        double health__t0 = health__now_ms();                                                                \
        (res) = (call);                                                                                      \
        double health__ms = health__now_ms() - health__t0;                                                   \
        if (health__ms > (double)(h)->slow_ms) {                                                             \
            (slow)++;                                                                                        \
            log_warn(HEALTH__SUBSYS, "%s took %.0f ms (more than %u ms): the GPU driver is slow to answer",  \
                     (what), health__ms, (h)->slow_ms);                                                      \
        }                                                                                                    \
    } while (0)

static bool health__sym(void *lib, const char *name, void *fp, size_t size)
{
    void *p = dlsym(lib, name);
    if (p && size == sizeof p)
        memcpy(fp, &p, sizeof p);
    return p != NULL && size == sizeof p;
}

static const char *health__err(const health *h, health__ret r)
{
    const char *s = h->n.error_string ? h->n.error_string(r) : NULL;
    return s ? s : "unknown NVML error";
}

static int health__load(health__nvml *n, const char *path, char *err, size_t errlen)
{
    n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        const char *e = dlerror();
        snprintf(err, errlen, "%s", e ? e : path);
        return -1;
    }
#define HEALTH__SYM(field, name) health__sym(n->lib, name, &n->field, sizeof n->field)
    HEALTH__SYM(init, "nvmlInit_v2");
    HEALTH__SYM(shutdown, "nvmlShutdown");
    HEALTH__SYM(error_string, "nvmlErrorString");
    HEALTH__SYM(get_count, "nvmlDeviceGetCount_v2");
    HEALTH__SYM(get_handle, "nvmlDeviceGetHandleByIndex_v2");
    HEALTH__SYM(get_uuid, "nvmlDeviceGetUUID");
    HEALTH__SYM(get_name, "nvmlDeviceGetName");
    HEALTH__SYM(temp, "nvmlDeviceGetTemperature");
    HEALTH__SYM(temp_threshold, "nvmlDeviceGetTemperatureThreshold");
    HEALTH__SYM(power, "nvmlDeviceGetPowerUsage");
    if (!HEALTH__SYM(power_limit, "nvmlDeviceGetEnforcedPowerLimit"))
        HEALTH__SYM(power_limit, "nvmlDeviceGetPowerManagementLimit");
    HEALTH__SYM(util, "nvmlDeviceGetUtilizationRates");
    HEALTH__SYM(energy, "nvmlDeviceGetTotalEnergyConsumption");
    HEALTH__SYM(memory, "nvmlDeviceGetMemoryInfo");
    HEALTH__SYM(ecc, "nvmlDeviceGetTotalEccErrors");
    HEALTH__SYM(retired_pending, "nvmlDeviceGetRetiredPagesPendingStatus");
    HEALTH__SYM(remapped, "nvmlDeviceGetRemappedRows");
    /* Renamed "clocks event reasons" in CUDA 12.2's NVML; same ABI. */
    if (!HEALTH__SYM(throttle, "nvmlDeviceGetCurrentClocksThrottleReasons"))
        HEALTH__SYM(throttle, "nvmlDeviceGetCurrentClocksEventReasons");
    HEALTH__SYM(set_create, "nvmlEventSetCreate");
    HEALTH__SYM(set_free, "nvmlEventSetFree");
    HEALTH__SYM(register_events, "nvmlDeviceRegisterEvents");
    if (!HEALTH__SYM(set_wait, "nvmlEventSetWait_v2"))
        HEALTH__SYM(set_wait, "nvmlEventSetWait");
#undef HEALTH__SYM
    if (!n->init || !n->shutdown || !n->get_count || !n->get_handle) {
        snprintf(err, errlen,
                 "%s lacks nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2 or "
                 "nvmlDeviceGetHandleByIndex_v2",
                 path);
        dlclose(n->lib);
        n->lib = NULL;
        return -1;
    }
    return 0;
}

/* The handle of GPU i, looked up again after it was lost (a reset gives
 * it a new one). false when NVML has none now. */
static bool health__handle(health *h, size_t i, unsigned *slow)
{
    if (h->dev_ok[i])
        return true;
    health__ret r;
    health__dev dev = NULL;
    HEALTH__TIMED(h, *slow, "nvmlDeviceGetHandleByIndex_v2", r, h->n.get_handle((unsigned)i, &dev));
    /* The XID thread maps events to GPUs by these handles. */
    pthread_mutex_lock(&h->mu);
    h->dev[i] = dev;
    h->dev_ok[i] = r == HEALTH__OK;
    bool reregister = h->dev_ok[i] && h->set && h->thread_on;
    pthread_mutex_unlock(&h->mu);
    if (reregister) {
        /* Back after a reset: its XIDs again (a new handle is a new registration). */
        r = h->n.register_events(dev, HEALTH__EVENT_XID, h->set);
        if (r != HEALTH__OK)
            log_info(HEALTH__SUBSYS, "GPU %zu: no XID events (nvmlDeviceRegisterEvents: %s)", i,
                     health__err(h, r));
    }
    if (h->dev_ok[i] && !h->uuid[i][0] && h->n.get_uuid)
        (void)h->n.get_uuid(h->dev[i], h->uuid[i], (unsigned)sizeof h->uuid[i]);
    if (h->dev_ok[i] && !h->model[i][0] && h->n.get_name)
        (void)h->n.get_name(h->dev[i], h->model[i], (unsigned)sizeof h->model[i]);
    h->uuid[i][sizeof h->uuid[i] - 1] = h->model[i][sizeof h->model[i] - 1] = '\0';
    return h->dev_ok[i];
}

health *health_open(const health_opts *opts, char *err, size_t errlen)
{
    const char *path = opts && opts->nvml_lib && *opts->nvml_lib ? opts->nvml_lib : getenv("JAZARI_NVML_LIB");
    if (!path || !*path)
        path = HEALTH__NVML_DEFAULT;
    health *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->slow_ms = opts && opts->slow_ms ? opts->slow_ms : 1000;
    h->wait_ms = opts && opts->wait_ms ? opts->wait_ms : 500;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    atomic_init(&h->stop, false);
    if (health__load(&h->n, path, err, errlen) != 0)
        goto fail;
    health__ret r = h->n.init();
    if (r != HEALTH__OK) {
        snprintf(err, errlen, "nvmlInit_v2: %s", health__err(h, r));
        dlclose(h->n.lib);
        h->n.lib = NULL;
        goto fail;
    }
    unsigned count = 0;
    r = h->n.get_count(&count);
    if (r != HEALTH__OK || count == 0) {
        snprintf(err, errlen, "%s", r != HEALTH__OK ? health__err(h, r) : "NVML sees no GPU");
        health_close(h);
        return NULL;
    }
    if (count > HEALTH_MAX_GPUS) {
        log_warn(HEALTH__SUBSYS, "NVML reports %u GPUs: sampling the first %d", count, HEALTH_MAX_GPUS);
        count = HEALTH_MAX_GPUS;
    }
    h->n_gpus = count;
    unsigned slow = 0;
    for (size_t i = 0; i < count; i++)
        (void)health__handle(h, i, &slow);
    return h;
fail:
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return NULL;
}

size_t health_gpu_count(const health *h)
{
    return h ? h->n_gpus : 0;
}

/* Whether a call's answer is usable; a lost GPU is noted in s. */
static bool health__got(health_sample *s, health__ret r)
{
    if (r == HEALTH__E_GPU_IS_LOST)
        s->lost = true;
    return r == HEALTH__OK;
}

/* One GPU's sample; stops at the first sign that it is lost. */
static void health__sample_one(health *h, size_t i, health_sample *s, unsigned *slow)
{
    memset(s, 0, sizeof *s);
    s->index = (unsigned)i;
    if (!health__handle(h, i, slow)) {
        s->lost = true;
        return;
    }
    memcpy(s->uuid, h->uuid[i], sizeof s->uuid);
    memcpy(s->model, h->model[i], sizeof s->model);
    health__dev dev = h->dev[i];
    health__ret r;
#define HEALTH__ASK(fn, what, bit, ...)                                                                      \
    do {                                                                                                     \
        if (!s->lost && h->n.fn) {                                                                           \
            HEALTH__TIMED(h, *slow, what, r, h->n.fn(dev, __VA_ARGS__));                                     \
            if (health__got(s, r))                                                                           \
                s->known |= (bit);                                                                           \
        }                                                                                                    \
    } while (0)
    HEALTH__ASK(temp, "nvmlDeviceGetTemperature", HEALTH_K_TEMP, HEALTH__TEMP_GPU, &s->temp_c);
    HEALTH__ASK(temp_threshold, "nvmlDeviceGetTemperatureThreshold", HEALTH_K_TEMP_SLOWDOWN,
                HEALTH__THRESH_SLOWDOWN, &s->temp_slowdown_c);
    HEALTH__ASK(temp_threshold, "nvmlDeviceGetTemperatureThreshold", HEALTH_K_TEMP_SHUTDOWN,
                HEALTH__THRESH_SHUTDOWN, &s->temp_shutdown_c);
    HEALTH__ASK(power, "nvmlDeviceGetPowerUsage", HEALTH_K_POWER, &s->power_mw);
    HEALTH__ASK(power_limit, "nvmlDeviceGetEnforcedPowerLimit", HEALTH_K_POWER_LIMIT, &s->power_limit_mw);
    health__util u = {0, 0};
    HEALTH__ASK(util, "nvmlDeviceGetUtilizationRates", HEALTH_K_UTIL, &u);
    s->util_gpu_pct = u.gpu > 100 ? 100 : u.gpu; /* a percentage, whatever a driver says */
    s->util_mem_pct = u.memory > 100 ? 100 : u.memory;
    unsigned long long mj = 0;
    HEALTH__ASK(energy, "nvmlDeviceGetTotalEnergyConsumption", HEALTH_K_ENERGY, &mj);
    s->energy_mj = mj;
    health__memory m = {0, 0, 0};
    HEALTH__ASK(memory, "nvmlDeviceGetMemoryInfo", HEALTH_K_MEMORY, &m);
    s->mem_used = m.used;
    s->mem_total = m.total;
    /* Volatile (since the last reset) and aggregate (the GPU's life)
     * counts: both bits known only when all four answers came. */
    unsigned long long c[2][2] = {{0, 0}, {0, 0}};
    uint32_t before = s->known;
    HEALTH__ASK(ecc, "nvmlDeviceGetTotalEccErrors", HEALTH_K_ECC_VOLATILE, HEALTH__ECC_CORRECTED,
                HEALTH__ECC_VOLATILE, &c[0][0]);
    uint32_t got = s->known & HEALTH_K_ECC_VOLATILE;
    s->known = before;
    HEALTH__ASK(ecc, "nvmlDeviceGetTotalEccErrors", HEALTH_K_ECC_VOLATILE, HEALTH__ECC_UNCORRECTED,
                HEALTH__ECC_VOLATILE, &c[0][1]);
    if (!got)
        s->known &= ~(uint32_t)HEALTH_K_ECC_VOLATILE;
    before = s->known;
    HEALTH__ASK(ecc, "nvmlDeviceGetTotalEccErrors", HEALTH_K_ECC_AGGREGATE, HEALTH__ECC_CORRECTED,
                HEALTH__ECC_AGGREGATE, &c[1][0]);
    got = s->known & HEALTH_K_ECC_AGGREGATE;
    s->known = before;
    HEALTH__ASK(ecc, "nvmlDeviceGetTotalEccErrors", HEALTH_K_ECC_AGGREGATE, HEALTH__ECC_UNCORRECTED,
                HEALTH__ECC_AGGREGATE, &c[1][1]);
    if (!got)
        s->known &= ~(uint32_t)HEALTH_K_ECC_AGGREGATE;
    for (int b = 0; b < 2; b++) {
        s->ecc_volatile[b] = c[0][b];
        s->ecc_aggregate[b] = c[1][b];
    }
    int pending = 0;
    HEALTH__ASK(retired_pending, "nvmlDeviceGetRetiredPagesPendingStatus", HEALTH_K_RETIRED, &pending);
    s->retired_pending = pending == 1;
    unsigned corr = 0, unc = 0, rp = 0, rf = 0;
    HEALTH__ASK(remapped, "nvmlDeviceGetRemappedRows", HEALTH_K_REMAP, &corr, &unc, &rp, &rf);
    s->remap_corrected = corr;
    s->remap_uncorrected = unc;
    s->remap_pending = rp != 0;
    s->remap_failed = rf != 0;
    unsigned long long reasons = 0;
    HEALTH__ASK(throttle, "nvmlDeviceGetCurrentClocksThrottleReasons", HEALTH_K_THROTTLE, &reasons);
    s->throttle = reasons;
#undef HEALTH__ASK
    if (s->lost) {
        /* Nothing of it is to be trusted; its handle is looked up again
         * next time (the GPU may come back after a reset). */
        s->known = 0;
        h->dev_ok[i] = false;
    }
}

unsigned health_sample_all(health *h, health_sample *out, size_t n)
{
    unsigned slow = 0;
    for (size_t i = 0; h && i < n && i < h->n_gpus; i++)
        health__sample_one(h, i, &out[i], &slow);
    return slow;
}

/* --- XIDs ---------------------------------------------------------------- */

static void health__queue(health *h, unsigned gpu, uint64_t xid)
{
    pthread_mutex_lock(&h->mu);
    if (h->q_len == HEALTH_XID_QUEUE) {
        h->q_head = (h->q_head + 1) % HEALTH_XID_QUEUE; /* the oldest goes */
        h->q_len--;
        h->dropped++;
    }
    health_xid *x = &h->queue[(h->q_head + h->q_len) % HEALTH_XID_QUEUE];
    x->gpu = gpu;
    x->xid = xid;
    x->at_ms = health__wall_ms();
    h->q_len++;
    pthread_mutex_unlock(&h->mu);
}

/* The XID thread: waits on the event set, wait_ms at a time so that it
 * sees stop, and never touches the caller's loop (only wake). */
static void *health__xid_main(void *arg)
{
    health *h = arg;
    unsigned errors = 0;
    while (!atomic_load(&h->stop)) {
        health__event ev;
        memset(&ev, 0, sizeof ev);
        health__ret r = h->n.set_wait(h->set, &ev, h->wait_ms);
        if (r == HEALTH__E_TIMEOUT)
            continue;
        if (r != HEALTH__OK) {
            /* A lost GPU can make the wait fail: the samples tell that;
             * do not spin meanwhile. */
            if (errors++ < 3)
                log_warn(HEALTH__SUBSYS, "nvmlEventSetWait: %s", health__err(h, r));
            struct timespec ts = {0, (long)h->wait_ms * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        errors = 0;
        if (!(ev.type & HEALTH__EVENT_XID))
            continue;
        unsigned gpu = (unsigned)h->n_gpus;
        pthread_mutex_lock(&h->mu);
        for (size_t i = 0; i < h->n_gpus; i++)
            if (h->dev[i] == ev.device)
                gpu = (unsigned)i;
        pthread_mutex_unlock(&h->mu);
        if (gpu == h->n_gpus) {
            log_warn(HEALTH__SUBSYS, "XID %llu on a GPU NVML did not list: ignored", ev.data);
            continue;
        }
        health__queue(h, gpu, ev.data);
        h->wake(h->wake_arg);
    }
    return NULL;
}

int health_xids_start(health *h, void (*wake)(void *arg), void *arg, char *err, size_t errlen)
{
    if (!h->n.set_create || !h->n.set_free || !h->n.register_events || !h->n.set_wait) {
        snprintf(err, errlen, "this NVML has no event sets: XIDs will not be seen");
        return -1;
    }
    health__ret r = h->n.set_create(&h->set);
    if (r != HEALTH__OK) {
        snprintf(err, errlen, "nvmlEventSetCreate: %s", health__err(h, r));
        return -1;
    }
    size_t registered = 0;
    for (size_t i = 0; i < h->n_gpus; i++) {
        if (!h->dev_ok[i])
            continue;
        r = h->n.register_events(h->dev[i], HEALTH__EVENT_XID, h->set);
        if (r == HEALTH__OK)
            registered++;
        else
            log_info(HEALTH__SUBSYS, "GPU %zu: no XID events (nvmlDeviceRegisterEvents: %s)", i,
                     health__err(h, r));
    }
    if (registered == 0) {
        snprintf(err, errlen, "no GPU takes XID event registrations");
        goto fail;
    }
    h->wake = wake;
    h->wake_arg = arg;
    int e = pthread_create(&h->thread, NULL, health__xid_main, h);
    if (e != 0) {
        snprintf(err, errlen, "cannot start the XID thread: %s", strerror(e));
        goto fail;
    }
    pthread_mutex_lock(&h->mu);
    h->thread_on = true;
    pthread_mutex_unlock(&h->mu);
    return 0;
fail:
    h->n.set_free(h->set);
    h->set = NULL;
    return -1;
}

size_t health_xids_take(health *h, health_xid *out, size_t max, uint64_t *dropped)
{
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    while (n < max && h->q_len) {
        out[n++] = h->queue[h->q_head];
        h->q_head = (h->q_head + 1) % HEALTH_XID_QUEUE;
        h->q_len--;
    }
    if (dropped)
        *dropped = h->dropped;
    h->dropped = 0;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Joins t within ms; false (and t detached) when it does not end: it is
 * stuck in the driver, and what it uses must never be freed. */
static bool health__join(pthread_t t, unsigned ms, const char *what)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(ms / 1000);
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(t, NULL, &dl) == 0)
        return true;
    log_warn(HEALTH__SUBSYS, "the %s thread is stuck in the GPU driver: left behind", what);
    pthread_detach(t);
    return false;
}

/* How long a thread may take to stop: its wait, and a slow driver call. */
static unsigned health__stop_ms(const health *h)
{
    return h->wait_ms + h->slow_ms + 1000;
}

void health_xids_stop(health *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    bool on = h->thread_on;
    pthread_mutex_unlock(&h->mu);
    if (!on)
        return;
    atomic_store(&h->stop, true);
    if (!health__join(h->thread, health__stop_ms(h), "XID"))
        h->abandoned = true;
    pthread_mutex_lock(&h->mu);
    h->thread_on = false;
    pthread_mutex_unlock(&h->mu);
}

/* The sampler thread: a sample whenever asked, then wake. */
static void *health__sampler_main(void *arg)
{
    health *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->want_sample && !h->sampler_stop)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->sampler_stop)
            break;
        h->want_sample = false;
        h->sampling = true;
        pthread_mutex_unlock(&h->mu);
        double t0 = health__now_ms();
        unsigned slow = health_sample_all(h, h->work, h->n_gpus);
        double us = (health__now_ms() - t0) * 1000.0;
        pthread_mutex_lock(&h->mu);
        memcpy(h->res, h->work, h->n_gpus * sizeof *h->res);
        h->res_us = (uint64_t)us;
        h->res_slow = slow;
        h->sample_ready = true;
        h->sampling = false;
        pthread_mutex_unlock(&h->mu);
        h->s_wake(h->s_arg);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int health_sampler_start(health *h, void (*wake)(void *arg), void *arg, char *err, size_t errlen)
{
    h->s_wake = wake;
    h->s_arg = arg;
    int e = pthread_create(&h->sampler, NULL, health__sampler_main, h);
    if (e != 0) {
        snprintf(err, errlen, "cannot start the GPU sampler thread: %s", strerror(e));
        return -1;
    }
    h->sampler_on = true;
    return 0;
}

bool health_sampler_request(health *h)
{
    pthread_mutex_lock(&h->mu);
    bool busy = h->sampling || h->want_sample;
    if (!busy) {
        h->want_sample = true;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return !busy;
}

bool health_sampler_take(health *h, health_sample *out, size_t n, uint64_t *took_us, unsigned *slow)
{
    pthread_mutex_lock(&h->mu);
    bool ready = h->sample_ready;
    if (ready) {
        memcpy(out, h->res, (n < h->n_gpus ? n : h->n_gpus) * sizeof *out);
        if (took_us)
            *took_us = h->res_us;
        if (slow)
            *slow = h->res_slow;
        h->sample_ready = false;
    }
    pthread_mutex_unlock(&h->mu);
    return ready;
}

void health_sampler_stop(health *h)
{
    if (!h || !h->sampler_on)
        return;
    pthread_mutex_lock(&h->mu);
    h->sampler_stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (!health__join(h->sampler, health__stop_ms(h), "GPU sampler"))
        h->abandoned = true;
    h->sampler_on = false;
}

void health_close(health *h)
{
    if (!h)
        return;
    health_xids_stop(h);
    health_sampler_stop(h);
    if (h->abandoned)
        return; /* a thread still inside NVML may use all of it: the process ends soon */
    if (h->set)
        h->n.set_free(h->set);
    if (h->n.lib) {
        h->n.shutdown();
        dlclose(h->n.lib);
    }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* --- conditions (pure) ----------------------------------------------------- */

const char *const health_cond_names[] = {
    "ecc_dbe",   "row_remap_failed", "row_remap_pending", "retired_pages_pending", "temp_slowdown",
    "temp_high", "gpu_lost",         "power_brake",       "health_program",        NULL};

bool health_cond_name_valid(const char *name)
{
    if (!name)
        return false;
    for (size_t i = 0; health_cond_names[i]; i++)
        if (strcmp(name, health_cond_names[i]) == 0)
            return true;
    if (strncmp(name, "xid_", 4) != 0)
        return false;
    const char *d = name + 4;
    size_t len = strlen(d);
    if (len == 0 || len > 5 || d[0] == '0')
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(d[i] - '0');
    }
    return v <= 65535;
}

/* What NVIDIA's XID catalogue says of the common ones, for the text. */
static const char *health__xid_what(uint64_t xid)
{
    switch (xid) {
    case 13:
        return "graphics engine exception (usually the application)";
    case 31:
        return "GPU memory page fault (usually the application)";
    case 43:
        return "GPU stopped processing (usually the application)";
    case 45:
        return "preemptive cleanup after an earlier error";
    case 48:
        return "double-bit ECC error";
    case 63:
        return "ECC page retirement or row remapping recorded";
    case 64:
        return "ECC page retirement or row remapping failed";
    case 68:
        return "video processor exception";
    case 74:
        return "NVLink error";
    case 79:
        return "GPU has fallen off the bus";
    case 92:
        return "high single-bit ECC error rate";
    case 94:
        return "contained ECC error";
    case 95:
        return "uncontained ECC error";
    default:
        return "see NVIDIA's XID catalogue";
    }
}

static void health__add(health_state *st, health_cond *out, size_t *n, const char *name, int gpu,
                        int64_t now_ms, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Appends a condition to out, keeping since_ms of the same one in st. */
static void health__add(health_state *st, health_cond *out, size_t *n, const char *name, int gpu,
                        int64_t now_ms, const char *fmt, ...)
{
    if (*n == HEALTH_MAX_CONDS)
        return;
    health_cond *c = &out[(*n)++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->gpu = gpu;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->text, sizeof c->text, fmt, ap);
    va_end(ap);
    c->since_ms = now_ms;
    /* One that stays keeps its onset: its time and its text (so that a
     * temperature moving by a degree changes nothing to report). */
    for (size_t i = 0; i < st->n_conds; i++)
        if (st->conds[i].gpu == gpu && strcmp(st->conds[i].name, name) == 0) {
            c->since_ms = st->conds[i].since_ms;
            memcpy(c->text, st->conds[i].text, sizeof c->text);
        }
}

/* A GPU reset shows as the volatile ECC counts going back down, or as a
 * lost GPU answering again. */
static bool health__was_reset(const health_gpu_memo *m, const health_sample *s)
{
    if (!m->seen || s->lost)
        return false;
    if (m->was_lost)
        return true;
    return (s->known & HEALTH_K_ECC_VOLATILE) && s->ecc_volatile[1] < m->ecc_volatile_dbe;
}

static void health__note_xid(health_gpu_memo *m, uint64_t xid, int64_t at_ms)
{
    m->xid_total++;
    for (unsigned k = 0; k < m->n_xids; k++)
        if (m->xids[k].xid == xid) {
            m->xids[k].last_ms = at_ms;
            return;
        }
    if (m->n_xids == HEALTH_XIDS_PER_GPU) { /* the oldest makes room */
        unsigned old = 0;
        for (unsigned k = 1; k < m->n_xids; k++)
            if (m->xids[k].last_ms < m->xids[old].last_ms)
                old = k;
        m->xids[old] = m->xids[--m->n_xids];
    }
    m->xids[m->n_xids].xid = xid;
    m->xids[m->n_xids].last_ms = at_ms;
    m->n_xids++;
}

/* The conditions of one GPU, into out; updates its memo. */
static void health__gpu(health_state *st, const health_cfg *cfg, const health_sample *s, health_gpu_memo *m,
                        int64_t now_ms, health_cond *out, size_t *n)
{
    int g = (int)s->index;
    uint32_t hyst = cfg->hysteresis_c ? cfg->hysteresis_c : 5;
    if (health__was_reset(m, s)) {
        m->n_xids = 0; /* a reset clears what the XIDs said */
        m->dbe_grew = false;
        m->hot = m->over = false;
    }
    /* XIDs: held until a reset, or hold time after their last event. */
    for (unsigned k = 0; k < m->n_xids;) {
        if (cfg->xid_hold_ms > 0 && now_ms - m->xids[k].last_ms >= cfg->xid_hold_ms) {
            m->xids[k] = m->xids[--m->n_xids];
            continue;
        }
        k++;
    }
    bool lost79 = s->lost;
    for (unsigned k = 0; k < m->n_xids; k++) {
        char name[HEALTH_NAME_LEN];
        snprintf(name, sizeof name, "xid_%" PRIu64, m->xids[k].xid);
        if (m->xids[k].xid == 79)
            lost79 = false; /* already there */
        health__add(st, out, n, name, g, now_ms, "XID %" PRIu64 ": %s", m->xids[k].xid,
                    health__xid_what(m->xids[k].xid));
    }
    if (s->lost) {
        if (lost79)
            health__add(st, out, n, "xid_79", g, now_ms, "XID 79: %s", health__xid_what(79));
        health__add(st, out, n, "gpu_lost", g, now_ms, "GPU %d has fallen off the bus (NVML: GPU is lost)",
                    g);
        m->was_lost = true;
        m->seen = true;
        return; /* nothing else of it is known */
    }
    m->was_lost = false;
    if (s->known & HEALTH_K_ECC_AGGREGATE) {
        if (m->seen && s->ecc_aggregate[1] > m->ecc_aggregate_dbe)
            m->dbe_grew = true;
        m->ecc_aggregate_dbe = s->ecc_aggregate[1];
    }
    uint64_t vdbe = (s->known & HEALTH_K_ECC_VOLATILE) ? s->ecc_volatile[1] : 0;
    if (s->known & HEALTH_K_ECC_VOLATILE)
        m->ecc_volatile_dbe = vdbe;
    if (vdbe > 0 || m->dbe_grew)
        health__add(st, out, n, "ecc_dbe", g, now_ms,
                    "double-bit ECC errors: %" PRIu64 " since the last reset, %" PRIu64 " in the GPU's life",
                    vdbe, m->ecc_aggregate_dbe);
    if ((s->known & HEALTH_K_REMAP) && s->remap_failed)
        health__add(st, out, n, "row_remap_failed", g, now_ms,
                    "row remapping failed (%u rows remapped for uncorrectable errors): replace the GPU",
                    s->remap_uncorrected);
    if ((s->known & HEALTH_K_REMAP) && s->remap_pending)
        health__add(st, out, n, "row_remap_pending", g, now_ms,
                    "a row remapping is pending: it takes effect at the next GPU reset");
    if ((s->known & HEALTH_K_RETIRED) && s->retired_pending)
        health__add(st, out, n, "retired_pages_pending", g, now_ms,
                    "memory pages are pending retirement: they take effect at the next GPU reset");
    /* Temperatures, with hysteresis: on at the threshold, off under it
     * less hyst degrees. */
    bool temp = s->known & HEALTH_K_TEMP;
    bool hw_thermal = (s->known & HEALTH_K_THROTTLE) && (s->throttle & HEALTH_THROTTLE_HW_THERMAL);
    if (temp && (s->known & HEALTH_K_TEMP_SLOWDOWN) && s->temp_slowdown_c > 0) {
        if (s->temp_c >= s->temp_slowdown_c)
            m->hot = true;
        else if (s->temp_c + hyst <= s->temp_slowdown_c)
            m->hot = false;
    } else if (!hw_thermal) {
        m->hot = false;
    }
    if (m->hot || hw_thermal) {
        if (m->hot)
            health__add(st, out, n, "temp_slowdown", g, now_ms,
                        "%u C, at or above its slowdown threshold (%u C)%s", s->temp_c, s->temp_slowdown_c,
                        hw_thermal ? "; clocks throttled by the hardware for heat" : "");
        else
            health__add(st, out, n, "temp_slowdown", g, now_ms, "clocks throttled by the hardware for heat");
    }
    if (temp && cfg->temp_limit_c) {
        if (s->temp_c > cfg->temp_limit_c)
            m->over = true;
        else if (s->temp_c + hyst <= cfg->temp_limit_c)
            m->over = false;
    } else {
        m->over = false;
    }
    if (m->over)
        health__add(st, out, n, "temp_high", g, now_ms, "%u C, above the site's limit of %u C", s->temp_c,
                    cfg->temp_limit_c);
    if ((s->known & HEALTH_K_THROTTLE) && (s->throttle & HEALTH_THROTTLE_HW_POWER_BRAKE))
        health__add(st, out, n, "power_brake", g, now_ms,
                    "clocks held down by the hardware power brake (the system asked the GPU to slow)");
    m->seen = true;
}

void health_derive(health_state *st, const health_cfg *cfg, const health_sample *s, size_t n,
                   const health_xid *xids, size_t n_xids, int64_t now_ms)
{
    static const health_cfg none = {0, 0, 0};
    health_cond *out = st->scratch;
    size_t nout = 0;
    if (!cfg)
        cfg = &none;
    for (size_t i = 0; i < n_xids; i++)
        if (xids[i].gpu < HEALTH_MAX_GPUS)
            health__note_xid(&st->gpu[xids[i].gpu], xids[i].xid, xids[i].at_ms ? xids[i].at_ms : now_ms);
    for (size_t i = 0; i < n && i < HEALTH_MAX_GPUS; i++)
        if (s[i].index < HEALTH_MAX_GPUS)
            health__gpu(st, cfg, &s[i], &st->gpu[s[i].index], now_ms, out, &nout);
    bool changed = nout != st->n_conds;
    for (size_t i = 0; i < nout && !changed; i++)
        changed = out[i].gpu != st->conds[i].gpu || strcmp(out[i].name, st->conds[i].name) != 0 ||
                  strcmp(out[i].text, st->conds[i].text) != 0;
    memcpy(st->conds, out, nout * sizeof *out);
    st->n_conds = nout;
    if (changed)
        st->changes++;
}

uint64_t health_xid_total(const health_state *st, unsigned gpu)
{
    return gpu < HEALTH_MAX_GPUS ? st->gpu[gpu].xid_total : 0;
}

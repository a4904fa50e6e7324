/* health.h - GPU health through NVML (opened with dlopen, as gpu.c does):
 * per-GPU samples (temperature and its thresholds, power, utilisation,
 * memory, ECC counts, retired pages, row remapping, clock throttle
 * reasons), XID events on a thread of their own, and the pure derivation
 * of the active health conditions from the samples and the XIDs seen.
 *
 * Threads: health_sample_all may be called from one thread at a time;
 * the daemon has it called on a sampler thread of this module's
 * (health_sampler_*), so that a driver that stalls never holds its loop.
 * The XID thread only queues events under a mutex and calls the wake
 * callback it was given (the daemon's uv_async_send); health_xids_take
 * drains that queue from any thread. health_derive is pure: state in,
 * state out.
 *
 * What NVML cannot tell (NOT_SUPPORTED, a missing symbol, an older driver)
 * is unknown, not an error: its bit in health_sample.known stays clear.
 * NVML_ERROR_GPU_IS_LOST from any call marks the GPU lost ("fell off the
 * bus"): nothing else of that sample is known. */
#ifndef JZ_HEALTH_H
#define JZ_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEALTH_MAX_GPUS 64     /* GPUs of one node sampled (NVML's order) */
#define HEALTH_TEXT_LEN 160    /* a condition's one line of text */
#define HEALTH_NAME_LEN 32     /* a condition's name: "xid_79", "ecc_dbe" */
#define HEALTH_MAX_CONDS 256   /* conditions of one node at once */
#define HEALTH_XID_QUEUE 256   /* XIDs queued between two drains (more: the oldest are dropped) */
#define HEALTH_XIDS_PER_GPU 16 /* distinct XIDs held active per GPU */

/* Bits of health_sample.known: which fields NVML answered. */
enum {
    HEALTH_K_TEMP = 1u << 0,
    HEALTH_K_TEMP_SLOWDOWN = 1u << 1,
    HEALTH_K_TEMP_SHUTDOWN = 1u << 2,
    HEALTH_K_POWER = 1u << 3,
    HEALTH_K_POWER_LIMIT = 1u << 4,
    HEALTH_K_UTIL = 1u << 5,
    HEALTH_K_MEMORY = 1u << 6,
    HEALTH_K_ECC_VOLATILE = 1u << 7,
    HEALTH_K_ECC_AGGREGATE = 1u << 8,
    HEALTH_K_RETIRED = 1u << 9,
    HEALTH_K_REMAP = 1u << 10,
    HEALTH_K_THROTTLE = 1u << 11,
    HEALTH_K_ENERGY = 1u << 12,
};
#define HEALTH_K_COUNT 13 /* the bits above */

/* nvmlClocksThrottleReasons (the bits of health_sample.throttle). */
#define HEALTH_THROTTLE_GPU_IDLE 0x1ull
#define HEALTH_THROTTLE_APP_CLOCKS 0x2ull
#define HEALTH_THROTTLE_SW_POWER_CAP 0x4ull
#define HEALTH_THROTTLE_HW_SLOWDOWN 0x8ull
#define HEALTH_THROTTLE_SYNC_BOOST 0x10ull
#define HEALTH_THROTTLE_SW_THERMAL 0x20ull
#define HEALTH_THROTTLE_HW_THERMAL 0x40ull
#define HEALTH_THROTTLE_HW_POWER_BRAKE 0x80ull

/* One GPU at one moment. Counts are NVML's (cumulative); ECC: [0] single
 * bit (corrected), [1] double bit (uncorrected). */
typedef struct health_sample {
    unsigned index; /* NVML's index */
    char uuid[96];  /* "" when unknown */
    char model[96];
    bool lost;      /* NVML_ERROR_GPU_IS_LOST: off the bus */
    uint32_t known; /* HEALTH_K_* */
    uint32_t temp_c, temp_slowdown_c, temp_shutdown_c;
    uint32_t power_mw, power_limit_mw;
    uint32_t util_gpu_pct, util_mem_pct;
    uint64_t mem_used, mem_total; /* bytes */
    uint64_t ecc_volatile[2], ecc_aggregate[2];
    bool retired_pending;
    uint32_t remap_corrected, remap_uncorrected;
    bool remap_pending, remap_failed;
    uint64_t throttle;  /* HEALTH_THROTTLE_* */
    uint64_t energy_mj; /* the GPU's energy since its driver was loaded, millijoules (Volta on) */
} health_sample;

/* One XID event: NVML's eventData on its GPU (by NVML index). */
typedef struct health_xid {
    unsigned gpu;
    uint64_t xid;
    int64_t at_ms; /* when it was dequeued from NVML (wall clock, ms since the epoch) */
} health_xid;

typedef struct health health; /* the NVML session; opaque */

typedef struct health_opts {
    const char *nvml_lib; /* NULL: $JAZARI_NVML_LIB, else "libnvidia-ml.so.1" */
    unsigned slow_ms;     /* warn about an NVML call slower than this; 0: 1000 */
    unsigned wait_ms;     /* the XID thread's longest wait before it checks for stop; 0: 500 */
} health_opts;

/* Opens NVML and looks its GPUs up (at most HEALTH_MAX_GPUS). Returns the
 * session (the caller closes it with health_close), or NULL with why in
 * err: no NVML (a CPU node), nvmlInit failing, no GPU. */
health *health_open(const health_opts *opts, char *err, size_t errlen);
/* The GPUs it samples. */
size_t health_gpu_count(const health *h);
/* Samples every GPU into out (health_gpu_count entries, the caller's).
 * Returns the number of NVML calls slower than slow_ms. */
unsigned health_sample_all(health *h, health_sample *out, size_t n);

/* Starts the XID thread: registers every GPU for critical XID events and
 * waits on NVML's event set; each event is queued and wake(arg) called
 * (from that thread: it must be async-signal-like, e.g. uv_async_send).
 * Returns 0, or -1 with err (events not supported: then no XID is seen). */
int health_xids_start(health *h, void (*wake)(void *arg), void *arg, char *err, size_t errlen);
/* Moves up to max queued XIDs into out; returns how many; *dropped (may be
 * NULL) gets how many were dropped since the last call (queue full). */
size_t health_xids_take(health *h, health_xid *out, size_t max, uint64_t *dropped);
/* Stops the XID thread; wake is never called again. Nothing when it does
 * not run. A thread that does not end in time (stuck in the driver) is
 * left behind, logged, and h is then never freed. */
void health_xids_stop(health *h);

/* The sampler thread, so that a slow or wedged driver never holds the
 * caller's loop (nor its shutdown): health_sampler_request asks for one
 * sample (false, and nothing asked, while one is under way: never two at
 * once); when it is taken, wake(arg) is called from that thread and
 * health_sampler_take copies it out (true once per sample), with how long
 * it took and its slow calls (either may be NULL). */
int health_sampler_start(health *h, void (*wake)(void *arg), void *arg, char *err, size_t errlen);
bool health_sampler_request(health *h);
bool health_sampler_take(health *h, health_sample *out, size_t n, uint64_t *took_us, unsigned *slow);
/* Stops the sampler thread (as health_xids_stop). */
void health_sampler_stop(health *h);
/* Stops both threads, shuts NVML down and frees h. NULL is fine. */
void health_close(health *h);

/* --- conditions ------------------------------------------------------------ */

typedef struct health_cond {
    char name[HEALTH_NAME_LEN]; /* ecc_dbe, xid_79, ... (health_cond_names) */
    int gpu;                    /* NVML index; -1: the node */
    char text[HEALTH_TEXT_LEN];
    int64_t since_ms; /* when it became active (now_ms of health_derive: wall clock ms) */
} health_cond;

typedef struct health_cfg {
    uint32_t temp_limit_c; /* temp_high above this; 0: none */
    uint32_t hysteresis_c; /* a temperature condition clears this far under its threshold; 0: 5 */
    int64_t xid_hold_ms;   /* an XID stays active this long after its last event; 0: until a reset */
} health_cfg;

/* What health_derive remembers of each GPU between two calls. */
typedef struct health_gpu_memo {
    bool seen; /* a sample came before */
    bool was_lost;
    uint64_t ecc_volatile_dbe, ecc_aggregate_dbe;
    bool dbe_grew;  /* the aggregate count grew since the last reset */
    bool hot, over; /* temp_slowdown / temp_high held (hysteresis) */
    uint64_t xid_total;
    struct {
        uint64_t xid;
        int64_t last_ms;
    } xids[HEALTH_XIDS_PER_GPU];
    unsigned n_xids;
} health_gpu_memo;

typedef struct health_state {
    health_gpu_memo gpu[HEALTH_MAX_GPUS];
    health_cond conds[HEALTH_MAX_CONDS]; /* the active ones, by GPU then name */
    size_t n_conds;
    uint64_t changes;                      /* bumped whenever the set (names, GPUs or texts) changes */
    health_cond scratch[HEALTH_MAX_CONDS]; /* health_derive's, so that it allocates nothing */
} health_state;

/* The set of active conditions from the latest samples (n GPUs) and the
 * XIDs seen since the last call, at now_ms (wall clock, ms since the
 * epoch, as health_xid.at_ms); st holds the last call's.
 * A condition that stays keeps its since_ms. Pure: no I/O, no clock. */
void health_derive(health_state *st, const health_cfg *cfg, const health_sample *s, size_t n,
                   const health_xid *xids, size_t n_xids, int64_t now_ms);
/* The number of XID events seen on a GPU since start (for the metrics). */
uint64_t health_xid_total(const health_state *st, unsigned gpu);

/* Whether name is a condition this module (or the daemon's health program)
 * can raise: the fixed names and xid_N (1 <= N <= 65535). */
bool health_cond_name_valid(const char *name);
/* The fixed names, NULL-terminated (xid_N are not in it). */
extern const char *const health_cond_names[];

#endif

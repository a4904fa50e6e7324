/* health_print.c - GPU health samples and conditions as text for people
 * (`jazarid health`) and as JSON for programs. Unknown fields are left
 * out ("-" in the text). */
#include <stdio.h>

#include "health_print.h"

static const char *const health__known_names[] = {
    "temp",         "temp_slowdown", "temp_shutdown", "power", "power_limit", "util",  "memory",
    "ecc_volatile", "ecc_aggregate", "retired",       "remap", "throttle",    "energy"};

const char *health_known_name(unsigned bit)
{
    return bit < sizeof health__known_names / sizeof *health__known_names ? health__known_names[bit] : NULL;
}

/* A whole number and its unit, or "-" when NVML did not tell. */
static void health__cell(buf *out, bool known, const char *unit, double v, int width)
{
    char cell[32];
    if (known)
        snprintf(cell, sizeof cell, "%.0f%s", v, unit);
    else
        snprintf(cell, sizeof cell, "-");
    buf_printf(out, "%*s", width, cell);
}

void health_print(const health_sample *s, size_t n, const health_cond *c, size_t nc, buf *out)
{
    buf_printf(out, "%-3s %5s %9s %7s %5s %9s %11s %11s %7s %s\n", "GPU", "TEMP", "POWER", "UTIL", "MEM",
               "ECC-DBE", "REMAP", "RETIRED", "THROT", "MODEL / UUID");
    for (size_t i = 0; i < n; i++) {
        const health_sample *g = &s[i];
        buf_printf(out, "%-3u ", g->index);
        if (g->lost) {
            buf_printf(out, "lost: fell off the bus\n");
            continue;
        }
        uint32_t k = g->known;
        health__cell(out, k & HEALTH_K_TEMP, "C", (double)g->temp_c, 5);
        health__cell(out, k & HEALTH_K_POWER, "W", (double)g->power_mw / 1000.0, 10);
        health__cell(out, k & HEALTH_K_UTIL, "%", (double)g->util_gpu_pct, 8);
        health__cell(out, k & HEALTH_K_MEMORY, "%",
                     g->mem_total ? 100.0 * (double)g->mem_used / (double)g->mem_total : 0.0, 6);
        health__cell(out, k & HEALTH_K_ECC_VOLATILE, "", (double)g->ecc_volatile[1], 10);
        char remap[32] = "-";
        if (k & HEALTH_K_REMAP)
            snprintf(remap, sizeof remap, "%u/%u%s%s", g->remap_corrected, g->remap_uncorrected,
                     g->remap_pending ? " P" : "", g->remap_failed ? " F" : "");
        buf_printf(out, " %11s", remap);
        buf_printf(out, " %11s", (k & HEALTH_K_RETIRED) ? (g->retired_pending ? "pending" : "no") : "-");
        char thr[24] = "-";
        if (k & HEALTH_K_THROTTLE)
            snprintf(thr, sizeof thr, "0x%llx", (unsigned long long)g->throttle);
        buf_printf(out, " %7s %s %s\n", thr, g->model[0] ? g->model : "?", g->uuid);
    }
    if (nc == 0) {
        buf_puts(out, "no health condition\n");
        return;
    }
    for (size_t i = 0; i < nc; i++) {
        if (c[i].gpu < 0)
            buf_printf(out, "node:  %s: %s\n", c[i].name, c[i].text);
        else
            buf_printf(out, "GPU %d: %s: %s\n", c[i].gpu, c[i].name, c[i].text);
    }
}

void health_to_json(const health_sample *s, size_t n, const health_cond *c, size_t nc, json *j)
{
    json_obj_begin(j);
    json_key(j, "gpus");
    json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        const health_sample *g = &s[i];
        uint32_t k = g->known;
        json_obj_begin(j);
        json_kv_uint(j, "gpu", g->index);
        json_kv_str(j, "uuid", g->uuid);
        json_kv_str(j, "model", g->model);
        json_kv_bool(j, "lost", g->lost);
        if (k & HEALTH_K_TEMP)
            json_kv_uint(j, "temp_c", g->temp_c);
        if (k & HEALTH_K_TEMP_SLOWDOWN)
            json_kv_uint(j, "temp_slowdown_c", g->temp_slowdown_c);
        if (k & HEALTH_K_TEMP_SHUTDOWN)
            json_kv_uint(j, "temp_shutdown_c", g->temp_shutdown_c);
        if (k & HEALTH_K_POWER)
            json_kv_uint(j, "power_mw", g->power_mw);
        if (k & HEALTH_K_POWER_LIMIT)
            json_kv_uint(j, "power_limit_mw", g->power_limit_mw);
        if (k & HEALTH_K_UTIL) {
            json_kv_uint(j, "util_gpu_pct", g->util_gpu_pct);
            json_kv_uint(j, "util_mem_pct", g->util_mem_pct);
        }
        if (k & HEALTH_K_MEMORY) {
            json_kv_uint(j, "mem_used", g->mem_used);
            json_kv_uint(j, "mem_total", g->mem_total);
        }
        if (k & HEALTH_K_ECC_VOLATILE) {
            json_kv_uint(j, "ecc_sbe_volatile", g->ecc_volatile[0]);
            json_kv_uint(j, "ecc_dbe_volatile", g->ecc_volatile[1]);
        }
        if (k & HEALTH_K_ECC_AGGREGATE) {
            json_kv_uint(j, "ecc_sbe_aggregate", g->ecc_aggregate[0]);
            json_kv_uint(j, "ecc_dbe_aggregate", g->ecc_aggregate[1]);
        }
        if (k & HEALTH_K_RETIRED)
            json_kv_bool(j, "retired_pages_pending", g->retired_pending);
        if (k & HEALTH_K_REMAP) {
            json_kv_uint(j, "remapped_rows_corrected", g->remap_corrected);
            json_kv_uint(j, "remapped_rows_uncorrected", g->remap_uncorrected);
            json_kv_bool(j, "remap_pending", g->remap_pending);
            json_kv_bool(j, "remap_failed", g->remap_failed);
        }
        if (k & HEALTH_K_THROTTLE)
            json_kv_uint(j, "throttle_reasons", g->throttle);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "conditions");
    json_arr_begin(j);
    for (size_t i = 0; i < nc; i++) {
        json_obj_begin(j);
        json_kv_str(j, "name", c[i].name);
        json_kv_int(j, "gpu", c[i].gpu);
        json_kv_str(j, "text", c[i].text);
        json_kv_int(j, "since_ms", c[i].since_ms);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

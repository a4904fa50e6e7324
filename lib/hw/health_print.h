/* health_print.h - GPU health (health.h) as text and as JSON. */
#ifndef JZ_HEALTH_PRINT_H
#define JZ_HEALTH_PRINT_H

#include "../../common/buf.h"
#include "../../common/json.h"
#include "health.h"

/* A table of the n samples, then the nc conditions, appended to out. */
void health_print(const health_sample *s, size_t n, const health_cond *c, size_t nc, buf *out);
/* {"gpus": [...], "conditions": [...]}: a sample's unknown fields left out. */
void health_to_json(const health_sample *s, size_t n, const health_cond *c, size_t nc, json *j);
/* The name of bit `bit` of health_sample.known (HEALTH_K_*: 1 << bit):
 * "temp", "ecc_volatile", ...; NULL past the last. */
const char *health_known_name(unsigned bit);

#endif

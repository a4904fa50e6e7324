/* json.h - a streaming JSON writer into a buf (no parsing; output only). */
#ifndef JZ_JSON_H
#define JZ_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define JSON_MAX_DEPTH 32

typedef struct json {
    buf *out;
    int depth;
    bool pretty;                /* newlines and two-space indents */
    bool first[JSON_MAX_DEPTH]; /* no element written yet at this depth */
    bool after_key;             /* a key was written, its value is next */
} json;

void json_init(json *j, buf *out, bool pretty);
void json_obj_begin(json *j);
void json_obj_end(json *j);
void json_arr_begin(json *j);
void json_arr_end(json *j);
/* The key of the next value inside an object. */
void json_key(json *j, const char *key);
/* A string, escaped; NULL writes null. */
void json_str(json *j, const char *s);
/* A string of len bytes (which may hold NULs). */
void json_strn(json *j, const char *s, size_t len);
void json_int(json *j, int64_t v);
void json_uint(json *j, uint64_t v);
void json_double(json *j, double v);
/* A number written as decimal text ("12.30", "-0.5"), as it is: exact
 * figures made from integers (money, seconds) keep their digits. Text
 * that is not such a number writes null. */
void json_number(json *j, const char *text);
/* v / 10^decimals, written exactly ("12.340" for 12340, 3): money and
 * times from integers, never through a double. */
void json_fixed(json *j, uint64_t v, unsigned decimals);
void json_bool(json *j, bool v);
void json_null(json *j);

/* Shorthands: key and value at once. */
void json_kv_str(json *j, const char *key, const char *s);
void json_kv_int(json *j, const char *key, int64_t v);
void json_kv_uint(json *j, const char *key, uint64_t v);
void json_kv_bool(json *j, const char *key, bool v);
void json_kv_double(json *j, const char *key, double v);
void json_kv_number(json *j, const char *key, const char *text);
void json_kv_fixed(json *j, const char *key, uint64_t v, unsigned decimals);

#endif

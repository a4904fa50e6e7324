/* strmap.h - a map from strings to indexes, by open addressing: the keys
 * are borrowed (they must outlive the map, unchanged). For lookups by name
 * where a scan would cost nodes x jobs (a national network's nodes). */
#ifndef JZ_STRMAP_H
#define JZ_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strmap {
    const char **keys; /* NULL: empty slot */
    size_t *vals;
    size_t cap, n; /* cap: a power of two, or 0 */
} strmap;

/* All zero is an empty map too. */
void strmap_init(strmap *m);
void strmap_free(strmap *m);
/* Sets key's value (adds it, or replaces its value). */
void strmap_put(strmap *m, const char *key, size_t val);
/* key's value into *val: true, or false if absent. */
bool strmap_get(const strmap *m, const char *key, size_t *val);
/* FNV-1a of len bytes. */
unsigned long long strmap_hash(const char *s, size_t len);

#endif

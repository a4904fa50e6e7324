/* xmem.h - allocation that cannot fail (the process aborts instead, like
 * redis' zmalloc: a daemon that cannot allocate a few bytes cannot go on). */
#ifndef JZ_XMEM_H
#define JZ_XMEM_H

#include <stddef.h>

/* calloc of n elements, at least one, so that the result is never NULL. */
void *xcalloc(size_t n, size_t size);
/* realloc to n elements (at least one); never NULL. */
void *xrealloc_array(void *p, size_t n, size_t size);
/* A copy of s; NULL for NULL. */
char *xstrdup(const char *s);
/* A copy of s; NULL for NULL or "" (protobuf's empty string means unknown). */
char *xstrdup_known(const char *s);
/* For a long-running process that allocates and frees tens of megabytes a
 * second (the leader's scheduling pass): large blocks come from the heap
 * and freed memory stays mapped, so each pass does not pay the kernel's
 * page faults again. */
void xmem_keep_heap(void);

#endif

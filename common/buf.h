/* buf.h - a growable byte buffer, always NUL-terminated for text use. */
#ifndef JZ_BUF_H
#define JZ_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT                                                                                             \
    {                                                                                                        \
        NULL, 0, 0                                                                                           \
    }

/* Each append aborts the process on allocation failure (like redis' zmalloc):
 * a daemon that cannot allocate a few bytes cannot go on meaningfully. */
void buf_append(buf *b, const void *data, size_t len);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf *b, const char *fmt, va_list ap);
/* Grows the buffer by n bytes and returns them, uninitialised, to be
 * filled by the caller before the next append. */
void *buf_extend(buf *b, size_t n);
/* Drops the first n bytes. */
void buf_consume(buf *b, size_t n);
void buf_reset(buf *b);
/* Frees the memory; b is empty (and reusable) afterwards. */
void buf_free(buf *b);
/* The text ("" when empty); valid until the next append. */
const char *buf_str(const buf *b);

#endif

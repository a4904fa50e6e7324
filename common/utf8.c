/* utf8.c - checking and escaping text that came from someone else. */
#include "utf8.h"

#include <stdio.h>

size_t utf8_seq(const unsigned char *p, size_t left, uint32_t *cp)
{
    if (left == 0)
        return 0;
    unsigned char c = p[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

bool utf8_is_control(uint32_t cp, bool keep_lines)
{
    if (keep_lines && (cp == '\n' || cp == '\t'))
        return false;
    /* C0, DEL, C1; and the bidirectional embeddings, overrides and
     * isolates, which make text display in another order than it reads
     * (a reason or a job name that spoofs what an admin sees). */
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

void utf8_term(buf *out, const char *s, size_t len, bool keep_lines)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    char esc[8];
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", p[i]);
            buf_puts(out, esc);
            i++;
        } else if (utf8_is_control(cp, keep_lines)) {
            snprintf(esc, sizeof esc, cp < 0x80 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
            buf_puts(out, esc);
            i += n;
        } else {
            buf_append(out, s + i, n);
            i += n;
        }
    }
}

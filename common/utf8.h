/* utf8.h - text from strangers: whether it is UTF-8, and how to show it
 * on someone else's terminal or in JSON without letting it act (escape
 * sequences, invalid bytes). */
#ifndef JZ_UTF8_H
#define JZ_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The length (1 to 4) of the well-formed UTF-8 sequence at p (at most
 * left bytes), with its code point in *cp; 0 if the bytes there are not
 * one (bad lead or continuation byte, overlong, surrogate, above U+10FFFF,
 * cut short). */
size_t utf8_seq(const unsigned char *p, size_t left, uint32_t *cp);
/* Whether s[0..len) is well-formed UTF-8. */
bool utf8_valid(const char *s, size_t len);
/* Whether cp is a control character: C0 (but tab and newline when
 * keep_lines), DEL, C1, or a bidirectional embedding, override or
 * isolate (U+202A-202E, U+2066-2069). */
bool utf8_is_control(uint32_t cp, bool keep_lines);
/* Appends s[0..len) to out as a terminal may show it: control characters
 * and bytes that are not UTF-8 become visible escapes (\x1b, \u009b);
 * newlines and tabs stay when keep_lines is set. */
void utf8_term(buf *out, const char *s, size_t len, bool keep_lines);

#endif

/* json.c - a streaming JSON writer. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

void json_init(json *j, buf *out, bool pretty)
{
    j->out = out;
    j->depth = 0;
    j->pretty = pretty;
    j->first[0] = true;
    j->after_key = false;
}

static void json__indent(json *j)
{
    if (!j->pretty)
        return;
    buf_putc(j->out, '\n');
    for (int i = 0; i < j->depth; i++)
        buf_puts(j->out, "  ");
}

/* Separates this value from the previous one, unless it follows its key. */
static void json__value(json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth])
        buf_putc(j->out, ',');
    j->first[j->depth] = false;
    if (j->depth > 0)
        json__indent(j);
}

static void json__open(json *j, char c)
{
    json__value(j);
    buf_putc(j->out, c);
    if (j->depth + 1 < JSON_MAX_DEPTH)
        j->depth++;
    j->first[j->depth] = true;
}

static void json__close(json *j, char c)
{
    bool empty = j->first[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (!empty)
        json__indent(j);
    buf_putc(j->out, c);
}

void json_obj_begin(json *j)
{
    json__open(j, '{');
}
void json_obj_end(json *j)
{
    json__close(j, '}');
}
void json_arr_begin(json *j)
{
    json__open(j, '[');
}
void json_arr_end(json *j)
{
    json__close(j, ']');
}

/* A JSON string: quotes, backslashes and control characters (C1 too)
 * escaped; bytes that are not UTF-8 become U+FFFD, so the document stays
 * valid whatever a stranger put in a job's name. */
static void json__string(buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    char e[8];
    buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            buf_puts(b, "\\ufffd");
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)cp);
        } else if (cp == '\n') {
            buf_puts(b, "\\n");
        } else if (cp == '\r') {
            buf_puts(b, "\\r");
        } else if (cp == '\t') {
            buf_puts(b, "\\t");
        } else if (utf8_is_control(cp, false)) { /* NUL too: a counted string may hold one */
            snprintf(e, sizeof e, "\\u%04x", (unsigned)cp);
            buf_puts(b, e);
        } else {
            buf_append(b, s + i, n);
        }
        i += n;
    }
    buf_putc(b, '"');
}

void json_key(json *j, const char *key)
{
    json__value(j);
    json__string(j->out, key, strlen(key));
    buf_puts(j->out, j->pretty ? ": " : ":");
    j->after_key = true;
}

void json_str(json *j, const char *s)
{
    if (!s) {
        json_null(j);
        return;
    }
    json__value(j);
    json__string(j->out, s, strlen(s));
}

void json_strn(json *j, const char *s, size_t len)
{
    json__value(j);
    json__string(j->out, s, len);
}

void json_int(json *j, int64_t v)
{
    json__value(j);
    buf_printf(j->out, "%lld", (long long)v);
}

void json_uint(json *j, uint64_t v)
{
    json__value(j);
    buf_printf(j->out, "%llu", (unsigned long long)v);
}

void json_double(json *j, double v)
{
    if (!isfinite(v)) {
        json_null(j);
        return;
    }
    json__value(j);
    buf_printf(j->out, "%.12g", v);
}

/* Whether s is a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)? (no exponent:
 * ours are decimals written from integers). */
static bool json__is_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

void json_number(json *j, const char *text)
{
    if (!text || !json__is_number(text)) {
        json_null(j);
        return;
    }
    json__value(j);
    buf_puts(j->out, text);
}

void json_fixed(json *j, uint64_t v, unsigned decimals)
{
    uint64_t div = 1;
    for (unsigned i = 0; i < decimals && i < 18; i++)
        div *= 10;
    json__value(j);
    if (div == 1)
        buf_printf(j->out, "%llu", (unsigned long long)v);
    else
        buf_printf(j->out, "%llu.%0*llu", (unsigned long long)(v / div), (int)decimals,
                   (unsigned long long)(v % div));
}

void json_kv_fixed(json *j, const char *key, uint64_t v, unsigned decimals)
{
    json_key(j, key);
    json_fixed(j, v, decimals);
}

void json_bool(json *j, bool v)
{
    json__value(j);
    buf_puts(j->out, v ? "true" : "false");
}

void json_null(json *j)
{
    json__value(j);
    buf_puts(j->out, "null");
}

void json_kv_str(json *j, const char *key, const char *s)
{
    json_key(j, key);
    json_str(j, s);
}
void json_kv_int(json *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_int(j, v);
}
void json_kv_uint(json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_uint(j, v);
}
void json_kv_bool(json *j, const char *key, bool v)
{
    json_key(j, key);
    json_bool(j, v);
}

void json_kv_number(json *j, const char *key, const char *text)
{
    json_key(j, key);
    json_number(j, text);
}

void json_kv_double(json *j, const char *key, double v)
{
    json_key(j, key);
    json_double(j, v);
}

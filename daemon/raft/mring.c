/* mring.c - a bounded ring of encoded messages. */
#include "mring.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/xmem.h"
#include "codec.h"

void mring_init(mring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap ? cap : 1;
}

void mring_free(mring *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->msg[(r->head + i) % r->cap]);
    free(r->msg);
    free(r->len);
    mring_init(r, r->cap);
}

void mring_push(mring *r, uint8_t *msg, uint32_t len)
{
    if (!r->msg) {
        r->msg = xcalloc(r->cap, sizeof *r->msg);
        r->len = xcalloc(r->cap, sizeof *r->len);
    }
    if (r->n == r->cap)
        mring_drop(r, 1);
    size_t at = (r->head + r->n) % r->cap;
    r->n++;
    r->msg[at] = msg;
    r->len[at] = len;
}

const uint8_t *mring_at(const mring *r, size_t i, uint32_t *len)
{
    if (i >= r->n)
        return NULL;
    size_t at = (r->head + i) % r->cap;
    *len = r->len[at];
    return r->msg[at];
}

void mring_drop(mring *r, size_t k)
{
    for (; k > 0 && r->n > 0; k--) {
        free(r->msg[r->head]);
        r->msg[r->head] = NULL;
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
}

void mring_snapshot(const mring *r, uint32_t field, buf *out)
{
    for (size_t i = 0; i < r->n; i++) {
        size_t at = (r->head + i) % r->cap;
        codec_put_field(out, field, r->msg[at], r->len[at]);
    }
}

char *mring_text(const char *s, size_t max, char *tmp)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* not in the middle of a character */
    }
    memcpy(tmp, s ? s : "", n);
    tmp[n] = '\0';
    return tmp;
}

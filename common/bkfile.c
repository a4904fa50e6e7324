/* bkfile.c - the layout of a backup file (bkfile.h). */
#include "bkfile.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define BKFILE__PRE 16 /* magic, version, head length */

static void bkfile__be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t bkfile__get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void bkfile_encode(Jazari__BackupHead *head, const void *snap, size_t len, buf *out)
{
    size_t start = out->len;
    head->snapshot_len = len;
    size_t hlen = jazari__backup_head__get_packed_size(head);
    uint8_t *pre = buf_extend(out, BKFILE__PRE);
    memcpy(pre, BKFILE_MAGIC, 8);
    bkfile__be32(pre + 8, BKFILE_VERSION);
    bkfile__be32(pre + 12, (uint32_t)hlen);
    jazari__backup_head__pack(head, buf_extend(out, hlen));
    if (len)
        buf_append(out, snap, len);
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)out->data + start, out->len - start, md);
    buf_append(out, md, sizeof md);
}

int bkfile_decode(const void *data, size_t len, uint32_t max_format, bkfile_view *v, char *err, size_t errlen)
{
    const uint8_t *p = data;
    memset(v, 0, sizeof *v);
    if (len < 8 || memcmp(p, BKFILE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a Jazari backup (it does not start with %s)", BKFILE_MAGIC);
        return -1;
    }
    if (len < BKFILE__PRE) {
        snprintf(err, errlen, "truncated: %zu bytes, shorter than a backup's first %d", len, BKFILE__PRE);
        return -1;
    }
    uint32_t version = bkfile__get32(p + 8), hlen = bkfile__get32(p + 12);
    if (version != BKFILE_VERSION) {
        snprintf(err, errlen, "backup file version %u: this release reads version %d (a newer jz wrote it?)",
                 version, BKFILE_VERSION);
        return -1;
    }
    if (hlen > BKFILE_HEAD_MAX) {
        snprintf(err, errlen, "damaged: its head announces %u bytes (at most %u)", hlen, BKFILE_HEAD_MAX);
        return -1;
    }
    if (len < BKFILE__PRE + (size_t)hlen + BKFILE_SUM_LEN) {
        snprintf(err, errlen, "truncated: %zu bytes, its head alone needs %zu", len,
                 BKFILE__PRE + (size_t)hlen + BKFILE_SUM_LEN);
        return -1;
    }
    Jazari__BackupHead *h = jazari__backup_head__unpack(NULL, hlen, p + BKFILE__PRE);
    if (!h) {
        snprintf(err, errlen, "damaged: its head does not decode");
        return -1;
    }
    uint64_t want = (uint64_t)BKFILE__PRE + hlen + BKFILE_SUM_LEN + h->snapshot_len;
    if (h->snapshot_len > BKFILE_MAX || want != len) {
        snprintf(err, errlen, "%s: %zu bytes where its head announces %llu",
                 want > len ? "truncated" : "damaged (bytes after its end)", len, (unsigned long long)want);
        goto fail;
    }
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(p, len - BKFILE_SUM_LEN, md);
    if (memcmp(md, p + len - BKFILE_SUM_LEN, sizeof md) != 0) {
        snprintf(err, errlen, "damaged: its SHA-256 checksum does not match its contents");
        goto fail;
    }
    if (h->snapshot_format == 0 || h->snapshot_format > max_format) {
        snprintf(err, errlen,
                 "its state is in log format %u: this release reads formats 1 to %u (upgrade it)",
                 h->snapshot_format, max_format);
        goto fail;
    }
    v->head = h;
    v->snap = p + BKFILE__PRE + hlen;
    v->snap_len = (size_t)h->snapshot_len;
    return 0;
fail:
    jazari__backup_head__free_unpacked(h, NULL);
    return -1;
}

Jazari__BackupHead *bkfile_head(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len < BKFILE__PRE || memcmp(p, BKFILE_MAGIC, 8) != 0 || bkfile__get32(p + 8) != BKFILE_VERSION)
        return NULL;
    uint32_t hlen = bkfile__get32(p + 12);
    if (hlen > BKFILE_HEAD_MAX || hlen > len - BKFILE__PRE)
        return NULL;
    return jazari__backup_head__unpack(NULL, hlen, p + BKFILE__PRE);
}

void bkfile_view_free(bkfile_view *v)
{
    if (v->head)
        jazari__backup_head__free_unpacked(v->head, NULL);
    memset(v, 0, sizeof *v);
}

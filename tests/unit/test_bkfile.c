/* test_bkfile.c - the backup file's layout (common/bkfile.c): a file made
 * is read back whole; a file cut short, damaged, foreign, of another
 * version or of a newer log format is refused with a line that says so. */
#include <stdint.h>
#include <stdlib.h>

#include "../../common/bkfile.h"
#include "test.h"

/* A backup of a small state (a real Snapshot with two jobs) into out. */
static void bk__make(buf *out, uint32_t format)
{
    Jazari__Job j1 = JAZARI__JOB__INIT, j2 = JAZARI__JOB__INIT;
    j1.id = 1;
    j2.id = 2;
    Jazari__Job *jobs[] = {&j1, &j2};
    Jazari__Snapshot s = JAZARI__SNAPSHOT__INIT;
    s.format = format;
    s.next_job_id = 3;
    s.n_jobs = 2;
    s.jobs = jobs;
    size_t n = jazari__snapshot__get_packed_size(&s);
    uint8_t *snap = malloc(n);
    jazari__snapshot__pack(&s, snap);
    Jazari__BackupHead h = JAZARI__BACKUP_HEAD__INIT;
    h.snapshot_format = format;
    h.index = 42;
    h.term = 7;
    h.time_ms = 1700000000000;
    h.cluster_name = "jazari";
    h.jobs = 2;
    bkfile_encode(&h, snap, n, out);
    free(snap);
}

/* Decodes len bytes of b and returns the refusal (NULL if it was read). */
static const char *bk__refusal(const buf *b, size_t len, char *err, size_t errlen)
{
    bkfile_view v;
    if (bkfile_decode(b->data, len, 9, &v, err, errlen) != 0)
        return err;
    bkfile_view_free(&v);
    return NULL;
}

TEST(bkfile_reads_back_what_it_wrote)
{
    buf b = BUF_INIT;
    bk__make(&b, 9);
    bkfile_view v;
    char err[200] = "";
    REQUIRE(bkfile_decode(b.data, b.len, 9, &v, err, sizeof err) == 0);
    CHECK_EQ_INT(v.head->index, 42);
    CHECK_EQ_INT(v.head->term, 7);
    CHECK_EQ_INT(v.head->jobs, 2);
    CHECK_EQ_STR(v.head->cluster_name, "jazari");
    CHECK_EQ_INT(v.head->snapshot_len, v.snap_len);
    Jazari__BackupHead *h = bkfile_head(b.data, b.len);
    REQUIRE(h != NULL);
    CHECK_EQ_INT(h->index, 42);
    jazari__backup_head__free_unpacked(h, NULL);
    CHECK(bkfile_head(b.data, 15) == NULL);
    CHECK(bkfile_head("JZBACKUP\0\0\0\1\0\1\0\0", 16) == NULL);
    Jazari__Snapshot *s = jazari__snapshot__unpack(NULL, v.snap_len, v.snap);
    REQUIRE(s != NULL);
    CHECK_EQ_INT(s->n_jobs, 2);
    CHECK_EQ_INT(s->next_job_id, 3);
    jazari__snapshot__free_unpacked(s, NULL);
    bkfile_view_free(&v);
    buf_free(&b);
}

TEST(bkfile_refuses_every_cut)
{
    buf b = BUF_INIT;
    bk__make(&b, 9);
    char err[200];
    /* Every length short of the whole is refused, none crashes. */
    for (size_t n = 0; n < b.len; n++) {
        const char *why = bk__refusal(&b, n, err, sizeof err);
        if (!why) {
            test_fail(__FILE__, __LINE__, "a file cut to %zu of %zu bytes was read", n, b.len);
            break;
        }
    }
    CHECK(strstr(bk__refusal(&b, b.len - 1, err, sizeof err), "truncated") != NULL);
    CHECK(strstr(bk__refusal(&b, 20, err, sizeof err), "truncated") != NULL);
    CHECK(strstr(bk__refusal(&b, 3, err, sizeof err), "not a Jazari backup") != NULL);
    /* Bytes after the end. */
    buf_append(&b, "x", 1);
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "after its end") != NULL);
    buf_free(&b);
}

TEST(bkfile_refuses_damage_magic_version_and_format)
{
    buf b = BUF_INIT;
    char err[200];
    bk__make(&b, 9);
    /* One bit flipped anywhere in the snapshot or the sum: the checksum. */
    b.data[b.len - 40] ^= 1;
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "checksum") != NULL);
    b.data[b.len - 40] ^= 1;
    b.data[b.len - 1] ^= 0x80;
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "checksum") != NULL);
    b.data[b.len - 1] ^= 0x80;
    CHECK(bk__refusal(&b, b.len, err, sizeof err) == NULL);
    /* Another file altogether. */
    b.data[0] = 'X';
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "not a Jazari backup") != NULL);
    b.data[0] = 'J';
    /* A version this release does not read. */
    b.data[11] = 2;
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "version 2") != NULL);
    b.data[11] = 1;
    /* A head that announces more than any head may hold. */
    b.data[12] = 0x7f;
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "head announces") != NULL);
    b.data[12] = 0;
    CHECK(bk__refusal(&b, b.len, err, sizeof err) == NULL);
    /* A state in a log format newer than this release reads. */
    buf_reset(&b);
    bk__make(&b, 10);
    CHECK(strstr(bk__refusal(&b, b.len, err, sizeof err), "log format 10") != NULL);
    buf_free(&b);
}

/* test_hostlist.c - Slurm host lists: expansion, compression, round trips. */
#include <stdlib.h>

#include "../../common/hostlist.h"
#include "test.h"

/* The names of s joined by spaces ("" and the error on failure). */
static const char *hl__expand(const char *s, size_t max, char *err, size_t errlen)
{
    static char joined[4096];
    hostlist hl;
    joined[0] = '\0';
    if (hostlist_expand(s, max, &hl, err, errlen) != 0)
        return "";
    size_t at = 0;
    for (size_t i = 0; i < hl.n && at < sizeof joined - 1; i++)
        at += (size_t)snprintf(joined + at, sizeof joined - at, "%s%s", i ? " " : "", hl.names[i]);
    hostlist_free(&hl);
    return joined;
}

static int hl__check_expand(const char *s, const char *want)
{
    char err[200] = "";
    const char *got = hl__expand(s, 0, err, sizeof err);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "    expand %s: got '%s' (%s), want '%s'\n", s, got, err, want);
        return 0;
    }
    return 1;
}

static int hl__check_compress(const char *names, bool sort, const char *want)
{
    char err[200];
    hostlist hl;
    if (hostlist_expand(names, 0, &hl, err, sizeof err) != 0)
        return 0;
    buf b = BUF_INIT;
    hostlist_compress((const char *const *)hl.names, hl.n, sort, &b);
    int ok = strcmp(buf_str(&b), want) == 0;
    if (!ok)
        fprintf(stderr, "    compress %s: got '%s', want '%s'\n", names, buf_str(&b), want);
    /* And back: the same names (sorted and unique, when sorted). */
    hostlist back;
    ok = ok && hostlist_expand(buf_str(&b), 0, &back, err, sizeof err) == 0;
    if (ok && !sort) {
        ok = back.n == hl.n;
        for (size_t i = 0; ok && i < hl.n; i++)
            ok = strcmp(back.names[i], hl.names[i]) == 0;
    }
    if (ok)
        hostlist_free(&back);
    buf_free(&b);
    hostlist_free(&hl);
    return ok;
}

TEST(hostlist_expands)
{
    CHECK(hl__check_expand("gpu[01-03,07],cpu5,node[1-2]-ib",
                           "gpu01 gpu02 gpu03 gpu07 cpu5 node1-ib node2-ib"));
    CHECK(hl__check_expand("n[8-11]", "n8 n9 n10 n11"));
    CHECK(hl__check_expand("n[08-10]", "n08 n09 n10"));
    CHECK(hl__check_expand("n[001-2]", "n001 n002"));
    CHECK(hl__check_expand("r[1-2]n[1-2]", "r1n1 r1n2 r2n1 r2n2"));
    CHECK(hl__check_expand("a b\tc", "a b c"));
    CHECK(hl__check_expand("x[5]", "x5"));
    CHECK(hl__check_expand("", ""));
    CHECK(hl__check_expand("[1-3]", "1 2 3"));
}

TEST(hostlist_rejects_malformed)
{
    char err[200];
    static const char *bad[] = {"n[1-", "n1-2]", "n[]", "n[a-b]", "n[3-1]", "n[1,]", "n[,1]", "a,,b", ",a",
                                "a,", "n[1-2", "n[[1]]", "n[1--2]", "n[1234567890123456789]", "a\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        hostlist hl;
        int rc = hostlist_expand(bad[i], 0, &hl, err, sizeof err);
        if (rc == 0)
            fprintf(stderr, "    accepted '%s'\n", bad[i]);
        CHECK(rc == -1);
        CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
        CHECK(hl.n == 0 && hl.names == NULL);
    }
    /* The message says what is wrong. */
    hl__expand("n[3-1]", 0, err, sizeof err);
    CHECK(strstr(err, "3-1") != NULL);
}

TEST(hostlist_bounded)
{
    char err[200];
    hostlist hl;
    CHECK(hostlist_expand("n[1-100]", 50, &hl, err, sizeof err) == -1);
    CHECK(strstr(err, "more than 50") != NULL);
    CHECK(hostlist_expand("n[1-40],m[1-40]", 50, &hl, err, sizeof err) == -1);
    /* A product too big is refused before any name is made. */
    CHECK(hostlist_expand("a[0-999999]b[0-999999]c[0-999999]", 0, &hl, err, sizeof err) == -1);
    CHECK(hostlist_expand("n[1-65536]", 0, &hl, err, sizeof err) == 0);
    CHECK(hl.n == HOSTLIST_NAMES_MAX);
    hostlist_free(&hl);
    CHECK(hostlist_expand("n[1-65537]", 0, &hl, err, sizeof err) == -1);
    char *big = calloc(HOSTLIST_INPUT_MAX + 2, 1);
    memset(big, 'a', HOSTLIST_INPUT_MAX + 1);
    CHECK(hostlist_expand(big, 0, &hl, err, sizeof err) == -1);
    CHECK(strstr(err, "longer") != NULL);
    memset(big, 'a', 300);
    big[300] = '\0';
    CHECK(hostlist_expand(big, 0, &hl, err, sizeof err) == -1); /* one name too long */
    free(big);
}

TEST(hostlist_compresses)
{
    CHECK(hl__check_compress("gpu01,gpu02,gpu03,gpu07,cpu5", false, "gpu[01-03,07],cpu5"));
    CHECK(hl__check_compress("gpu07,cpu5,gpu01,gpu02,gpu03", true, "cpu5,gpu[01-03,07]"));
    CHECK(hl__check_compress("n1", false, "n1"));
    CHECK(hl__check_compress("n9,n10,n11", false, "n[9-11]"));
    CHECK(hl__check_compress("n09,n10", false, "n[09-10]"));
    CHECK(hl__check_compress("n9,n010", false, "n[9,010]")); /* widths differ */
    CHECK(hl__check_compress("n01,n1", false, "n[01,1]"));
    CHECK(hl__check_compress("login,n1,n2", false, "login,n[1-2]"));
    CHECK(hl__check_compress("n1,m1,n2", false, "n1,m1,n2")); /* order kept: not adjacent */
    CHECK(hl__check_compress("n2,n1,n2,n3", true, "n[1-3]"));
    CHECK(hl__check_compress("node1-ib,node2-ib", false, "node1-ib,node2-ib")); /* no trailing number */
    CHECK(hl__check_compress("a1b2,a1b3", false, "a1b[2-3]"));
    CHECK(hl__check_compress("n0,n1", false, "n[0-1]"));
    buf b = BUF_INIT;
    hostlist_compress(NULL, 0, false, &b);
    CHECK(b.len == 0);
    buf_free(&b);
}

TEST(hostlist_round_trips)
{
    static const char *lists[] = {"gpu[01-03,07],cpu5", "n[1-1000]", "a[001-099],b[1-3,5,7-9],c",
                                  "x[98-102]", "r[1-2]n[01-03]"};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        char err[200];
        hostlist hl;
        CHECK(hostlist_expand(lists[i], 0, &hl, err, sizeof err) == 0);
        buf b = BUF_INIT;
        hostlist_compress((const char *const *)hl.names, hl.n, false, &b);
        hostlist again;
        CHECK(hostlist_expand(buf_str(&b), 0, &again, err, sizeof err) == 0);
        CHECK(again.n == hl.n);
        for (size_t k = 0; k < hl.n && k < again.n; k++)
            CHECK(strcmp(again.names[k], hl.names[k]) == 0);
        buf_free(&b);
        hostlist_free(&hl);
        hostlist_free(&again);
    }
}

TEST(hostlist_globs)
{
    CHECK(hostlist_glob("dgx*", "dgx01"));
    CHECK(hostlist_glob("dgx*", "dgx"));
    CHECK(!hostlist_glob("dgx*", "gpu1"));
    CHECK(hostlist_glob("*-ib", "n1-ib"));
    CHECK(hostlist_glob("n?", "n1"));
    CHECK(!hostlist_glob("n?", "n10"));
    CHECK(hostlist_glob("a*b*c", "axxbyyc"));
}

#include "../../lib/sched/policy.h"

TEST(policy_partitions_parse)
{
    pol p;
    pol_init(&p);
    const char *text = "account inst 1\naccount inst/a 1\nqos high priority=1\n"
                       "partition gpu nodes=gpu[01-03],dgx* default_time=1:00:00 max_time=2-00:00:00 "
                       "accounts=inst/a qos=normal,high default=yes\n"
                       "partition cpu site=casa label=cpu max_time=UNLIMITED\n";
    char err[300];
    CHECK(pol_parse(&p, "t", text, strlen(text), err, sizeof err) == 0);
    CHECK(p.n_partitions == 2 && pol_partition_default(&p) == 0 && pol_partition_find(&p, "cpu") == 1);
    const pol_partition *g = &p.partitions[0];
    CHECK(g->default_time_s == 3600 && g->max_time_s == 2 * 86400);
    CHECK(pol_partition_has_node(g, "gpu02", NULL, NULL) && pol_partition_has_node(g, "dgx7", NULL, NULL));
    CHECK(!pol_partition_has_node(g, "gpu04", NULL, NULL));
    CHECK(pol_partition_allows_account(g, "inst/a", false) && !pol_partition_allows_account(g, "inst", false));
    CHECK(pol_partition_allows_qos(g, "") && pol_partition_allows_qos(g, "high"));
    const pol_partition *c = &p.partitions[1];
    CHECK(c->max_time_s == 0 && pol_partition_has_node(c, "x", "casa", NULL));
    CHECK(pol_partition_has_node(c, "y", "rabat", "a,cpu") && !pol_partition_has_node(c, "y", "rabat", "a"));
    pol_free(&p);
    static const char *bad[] = {"partition a nodes=n[1-\n", "partition a default_time=x\n",
                                "partition a qos=nope\n", "partition a default=yes\npartition b default=yes\n",
                                "partition a\npartition a\n", "partition a max_time=1 default_time=2\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pol_init(&p);
        CHECK(pol_parse(&p, "t", bad[i], strlen(bad[i]), err, sizeof err) == -1);
        CHECK(strstr(err, "t:") == err);
        pol_free(&p);
    }
    uint64_t t;
    CHECK(pol_time_parse("90", &t) == 0 && t == 5400);
    CHECK(pol_time_parse("1:30", &t) == 0 && t == 90);
    CHECK(pol_time_parse("1-12", &t) == 0 && t == 86400 + 12 * 3600);
    CHECK(pol_time_parse("12h", &t) == 0 && t == 43200);
    CHECK(pol_time_parse("1:2:3:4", &t) == -1 && pol_time_parse("", &t) == -1);
}

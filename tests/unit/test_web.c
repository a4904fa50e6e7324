/* test_web.c - the dashboard's session tokens (webtok.c): signed by the
 * CA key, checked by any holder of the same key, refused when forged,
 * expired, or by a daemon without the key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/jzd.h"
#include "test.h"

TEST(webtok_round_trips_and_refuses_forgeries)
{
    jzd a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.trust.ca_key = pki_key_new();
    b.trust.ca_key = pki_key_new();
    REQUIRE(a.trust.ca_key && b.trust.ca_key);
    authz_who w, got;
    memset(&w, 0, sizeof w);
    snprintf(w.user, sizeof w.user, "alice");
    w.uid = 1001;
    w.gid = 100;
    w.role = AUTHZ_RESEARCHER;
    char tok[WEBTOK_MAX + 1], why[200];
    int64_t now = 1765000000000;
    REQUIRE(webtok_make(&a, &w, now + 3600000, tok, sizeof tok) == 0);
    CHECK(strncmp(tok, "jzw1.", 5) == 0 &&
          strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == strlen(tok));
    REQUIRE(webtok_check(&a, tok, strlen(tok), now, &got, why, sizeof why) == 0);
    CHECK(strcmp(got.user, "alice") == 0 && got.uid == 1001 && got.gid == 100 &&
          got.role == AUTHZ_RESEARCHER);
    CHECK(!got.via_node);
    /* Another network's key, an expired one, a changed byte, a truncation. */
    CHECK(webtok_check(&b, tok, strlen(tok), now, &got, why, sizeof why) != 0 && strstr(why, "did not sign"));
    CHECK(webtok_check(&a, tok, strlen(tok), now + 3600000, &got, why, sizeof why) != 0 &&
          strstr(why, "expired"));
    char bad[sizeof tok];
    memcpy(bad, tok, sizeof tok);
    bad[7] = bad[7] == 'A' ? 'B' : 'A';
    CHECK(webtok_check(&a, bad, strlen(bad), now, &got, why, sizeof why) != 0);
    CHECK(webtok_check(&a, tok, strlen(tok) - 3, now, &got, why, sizeof why) != 0);
    CHECK(webtok_check(&a, "jzw1.", 5, now, &got, why, sizeof why) != 0);
    CHECK(webtok_check(&a, "", 0, now, &got, why, sizeof why) != 0);
    /* A daemon without the CA key (an agent) makes none and checks none. */
    jzd agent;
    memset(&agent, 0, sizeof agent);
    CHECK(webtok_make(&agent, &w, now + 1000, tok, sizeof tok) != 0);
    REQUIRE(webtok_make(&a, &w, now + 1000, tok, sizeof tok) == 0);
    CHECK(webtok_check(&agent, tok, strlen(tok), now, &got, why, sizeof why) != 0 &&
          strstr(why, "only controllers"));
    /* Root relayed by a node stays so. */
    w.via_node = true;
    w.uid = 0;
    w.role = AUTHZ_TENANT_ADMIN;
    snprintf(w.user, sizeof w.user, "root");
    REQUIRE(webtok_make(&a, &w, now + 1000, tok, sizeof tok) == 0);
    REQUIRE(webtok_check(&a, tok, strlen(tok), now, &got, why, sizeof why) == 0);
    CHECK(got.via_node && got.uid == 0 && got.role == AUTHZ_TENANT_ADMIN);
    EVP_PKEY_free(a.trust.ca_key);
    EVP_PKEY_free(b.trust.ca_key);
}

TEST(http_query_get_decodes_and_bounds_parameters)
{
    const char *q = "since_seq=42&max=&name=a%20b+c&bad=%zz&nul=%00&flag";
    http_request rq;
    memset(&rq, 0, sizeof rq);
    rq.query = q;
    rq.query_len = strlen(q);
    char v[8];
    CHECK(http_query_get(&rq, "since_seq", v, sizeof v) == 1 && strcmp(v, "42") == 0);
    CHECK(http_query_get(&rq, "max", v, sizeof v) == 1 && strcmp(v, "") == 0);
    CHECK(http_query_get(&rq, "name", v, sizeof v) == 1 && strcmp(v, "a b c") == 0);
    CHECK(http_query_get(&rq, "flag", v, sizeof v) == 1 && strcmp(v, "") == 0);
    CHECK(http_query_get(&rq, "bad", v, sizeof v) == -1);
    CHECK(http_query_get(&rq, "nul", v, sizeof v) == -1);
    CHECK(http_query_get(&rq, "since", v, sizeof v) == 0);
    CHECK(http_query_get(&rq, "name", v, 4) == -1); /* too long for out */
    rq.query = NULL;
    rq.query_len = 0;
    CHECK(http_query_get(&rq, "since_seq", v, sizeof v) == 0);
}

/* test_trust.c - the network's PKI (pki.c), TLS on memory buffers (tls.c),
 * credentials files (cred.c) and the replicated trust records (tdb.c). */
#include <string.h>
#include <time.h>

#include "../../common/cred.h"
#include "../../common/pki.h"
#include "../../common/tls.h"
#include "../../daemon/raft/codec.h"
#include "../../daemon/raft/tdb.h"
#include "test.h"

/* A CA with its key, and a certificate of kind for name from it. */
typedef struct fixture_ca {
    EVP_PKEY *ca_key;
    X509 *ca;
} fixture_ca;

static void ca_new(fixture_ca *f)
{
    f->ca_key = pki_key_new();
    f->ca = pki_ca_make(f->ca_key);
}

static void ca_free(fixture_ca *f)
{
    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
}

static X509 *issue(fixture_ca *f, EVP_PKEY *key, const char *name, const char *kind, int64_t ttl)
{
    char err[200];
    return pki_issue(f->ca_key, f->ca, key, name, kind, 7, (int64_t)time(NULL), ttl, err, sizeof err);
}

TEST(pki_network_token_gives_the_same_ca_everywhere)
{
    pki_token t, u;
    char s[PKI_TOKEN_MAX + 1], err[200];
    pki_token_new_network(&t);
    pki_token_format(&t, s, sizeof s);
    REQUIRE(pki_token_parse(s, &u, err, sizeof err) == 0);
    CHECK(u.kind == PKI_TOKEN_NETWORK && memcmp(t.secret, u.secret, 32) == 0);
    EVP_PKEY *k1 = pki_key_from_network(&t), *k2 = pki_key_from_network(&u);
    X509 *c1 = pki_ca_make(k1), *c2 = pki_ca_make(k2);
    char h1[65], h2[65];
    REQUIRE(c1 && c2 && pki_cert_hash(c1, h1) == 0 && pki_cert_hash(c2, h2) == 0);
    CHECK_EQ_STR(h1, h2);
    /* Another token, another CA. */
    pki_token v;
    pki_token_new_network(&v);
    EVP_PKEY *k3 = pki_key_from_network(&v);
    X509 *c3 = pki_ca_make(k3);
    char h3[65];
    pki_cert_hash(c3, h3);
    CHECK(strcmp(h1, h3) != 0);
    X509_free(c1);
    X509_free(c2);
    X509_free(c3);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

TEST(pki_tokens_parse_or_say_what_is_wrong)
{
    pki_token t, u;
    char s[PKI_TOKEN_MAX + 1], err[300];
    pki_token_new_join(&t, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    pki_token_format(&t, s, sizeof s);
    REQUIRE(pki_token_parse(s, &u, err, sizeof err) == 0);
    CHECK(u.kind == PKI_TOKEN_JOIN && strcmp(u.id, t.id) == 0 && strcmp(u.ca_hash, t.ca_hash) == 0);
    CHECK(memcmp(u.secret, t.secret, 16) == 0);
    char h1[65], h2[65];
    pki_token_secret_hash(&t, h1);
    pki_token_secret_hash(&u, h2);
    CHECK_EQ_STR(h1, h2);
    CHECK(pki_token_parse("", &u, err, sizeof err) != 0 && strstr(err, "not a Jazari token"));
    s[strlen(s) - 1] = 'G';
    CHECK(pki_token_parse(s, &u, err, sizeof err) != 0 && strstr(err, "hex digit"));
    s[strlen(s) - 1] = '\0';
    CHECK(pki_token_parse(s, &u, err, sizeof err) != 0 && strstr(err, "copied whole"));
    char longer[400];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK(pki_token_parse(longer, &u, err, sizeof err) != 0);
}

TEST(pki_certificates_say_who_and_until_when)
{
    fixture_ca f;
    ca_new(&f);
    EVP_PKEY *k = pki_key_new();
    X509 *c = issue(&f, k, "gpu-node-17", "agent", 3600);
    REQUIRE(c);
    pki_id id;
    char err[200];
    REQUIRE(pki_cert_id(c, &id, err, sizeof err) == 0);
    CHECK_EQ_STR(id.name, "gpu-node-17");
    CHECK_EQ_STR(id.kind, "agent");
    CHECK(id.gen == 7 && strlen(id.serial) == 32 && strncmp(id.serial, "0000000000000007", 16) == 0);
    int64_t now = (int64_t)time(NULL);
    CHECK(id.not_after >= now + 3590 && id.not_after <= now + 3610 && id.not_before <= now - 3500);
    CHECK(pki_signed_by(c, f.ca) && pki_signed_by(f.ca, f.ca));
    fixture_ca g;
    ca_new(&g);
    CHECK(!pki_signed_by(c, g.ca));
    /* PEM there and back. */
    buf b = BUF_INIT;
    pki_cert_pem(c, &b);
    X509 *back = pki_cert_from_pem(b.data, b.len, err, sizeof err);
    REQUIRE(back);
    CHECK(X509_cmp(back, c) == 0);
    buf_reset(&b);
    pki_key_pem(k, &b);
    EVP_PKEY *kb = pki_key_from_pem(b.data, b.len, err, sizeof err);
    CHECK(kb && EVP_PKEY_eq(kb, k) == 1);
    CHECK(!pki_cert_from_pem("garbage", 7, err, sizeof err) && strstr(err, "not a PEM certificate"));
    CHECK(pki_issue(f.ca_key, f.ca, k, "", "agent", 0, now, 10, err, sizeof err) == NULL);
    buf_free(&b);
    EVP_PKEY_free(kb);
    X509_free(back);
    X509_free(c);
    EVP_PKEY_free(k);
    ca_free(&f);
    ca_free(&g);
}

/* Runs two engines against each other in memory until neither has more
 * to say; returns the server's and the client's results. */
static void handshake(tls *srv, tls *cli, int *rs, int *rc)
{
    buf a = BUF_INIT, p = BUF_INIT;
    *rs = *rc = 0;
    tls_write(cli, "ping", 4); /* the client speaks first; held until ready */
    for (int i = 0; i < 20; i++) {
        buf_reset(&a);
        tls_take(cli, &a);
        if (a.len)
            tls_feed(srv, a.data, a.len);
        if (*rs == 0)
            *rs = tls_step(srv, &p);
        buf_reset(&a);
        tls_take(srv, &a);
        if (a.len)
            tls_feed(cli, a.data, a.len);
        if (*rc == 0)
            *rc = tls_step(cli, &p);
    }
    buf_free(&a);
    buf_free(&p);
}

TEST(tls_peers_of_one_network_meet_and_know_each_other)
{
    fixture_ca f, g;
    ca_new(&f);
    ca_new(&g);
    EVP_PKEY *ks = pki_key_new(), *kc = pki_key_new(), *kx = pki_key_new();
    X509 *cs = issue(&f, ks, "ctl-1", "controller", 3600), *cc = issue(&f, kc, "alice", "researcher", 3600);
    X509 *cx = issue(&g, kx, "mallory", "admin", 3600);
    char err[300];
    tls_ctx *server = tls_ctx_new(true, f.ca, cs, ks, NULL, err, sizeof err);
    tls_ctx *client = tls_ctx_new(false, f.ca, cc, kc, NULL, err, sizeof err);
    tls_ctx *stranger = tls_ctx_new(false, f.ca, cx, kx, NULL, err, sizeof err);
    tls_ctx *anon = tls_ctx_new(false, f.ca, NULL, NULL, NULL, err, sizeof err);
    char pin[65], wrong[65];
    pki_cert_hash(f.ca, pin);
    pki_cert_hash(g.ca, wrong);
    tls_ctx *joiner = tls_ctx_new(false, NULL, NULL, NULL, pin, err, sizeof err);
    tls_ctx *misled = tls_ctx_new(false, NULL, NULL, NULL, wrong, err, sizeof err);
    REQUIRE(server && client && stranger && anon && joiner && misled);

    tls *s = tls_new(server), *c = tls_new(client);
    int rs, rc;
    handshake(s, c, &rs, &rc);
    CHECK(rs == 0 && rc == 0 && tls_ready(s) && tls_ready(c));
    CHECK(tls_peer(s) && strcmp(tls_peer(s)->name, "alice") == 0 && strcmp(tls_peer(s)->kind, "researcher") == 0);
    CHECK(tls_peer(c) && strcmp(tls_peer(c)->kind, "controller") == 0);
    tls_free(s);
    tls_free(c);

    /* Another network's certificate: the server refuses, and says why. */
    s = tls_new(server);
    c = tls_new(stranger);
    handshake(s, c, &rs, &rc);
    CHECK(rs < 0 && strstr(tls_error(s), "not from this network's CA"));
    tls_free(s);
    tls_free(c);

    /* No certificate: the handshake ends, the peer is anonymous. */
    s = tls_new(server);
    c = tls_new(anon);
    handshake(s, c, &rs, &rc);
    CHECK(rs == 0 && tls_ready(s) && tls_peer(s) == NULL);
    tls_free(s);
    tls_free(c);

    /* A joiner pinning the right CA hash gets the CA; a wrong pin fails. */
    s = tls_new(server);
    c = tls_new(joiner);
    handshake(s, c, &rs, &rc);
    X509 *got = tls_pinned_ca(c);
    CHECK(rc == 0 && got && X509_cmp(got, f.ca) == 0);
    X509_free(got);
    tls_free(s);
    tls_free(c);
    s = tls_new(server);
    c = tls_new(misled);
    handshake(s, c, &rs, &rc);
    CHECK(rc < 0 && strstr(tls_error(c), "not the one the token names"));
    tls_free(s);
    tls_free(c);

    /* A certificate that does not go with the key. */
    CHECK(tls_ctx_new(true, f.ca, cs, kc, NULL, err, sizeof err) == NULL && strstr(err, "do not go together"));

    tls_ctx_free(server);
    tls_ctx_free(client);
    tls_ctx_free(stranger);
    tls_ctx_free(anon);
    tls_ctx_free(joiner);
    tls_ctx_free(misled);
    X509_free(cs);
    X509_free(cc);
    X509_free(cx);
    EVP_PKEY_free(ks);
    EVP_PKEY_free(kc);
    EVP_PKEY_free(kx);
    ca_free(&f);
    ca_free(&g);
}

TEST(tls_plaintext_is_not_a_handshake)
{
    fixture_ca f;
    ca_new(&f);
    EVP_PKEY *k = pki_key_new();
    X509 *c = issue(&f, k, "ctl-1", "controller", 3600);
    char err[200];
    tls_ctx *server = tls_ctx_new(true, f.ca, c, k, NULL, err, sizeof err);
    tls *s = tls_new(server);
    static const char frame[] = "\x00\x00\x00\x06\x08\x01\x10\x01\x52\x00";
    buf p = BUF_INIT;
    tls_feed(s, frame, sizeof frame - 1);
    CHECK(tls_step(s, &p) < 0 && p.len == 0);
    buf_free(&p);
    tls_free(s);
    tls_ctx_free(server);
    X509_free(c);
    EVP_PKEY_free(k);
    ca_free(&f);
}

TEST(cred_files_round_trip_and_bad_ones_say_why)
{
    fixture_ca f;
    ca_new(&f);
    EVP_PKEY *k = pki_key_new();
    X509 *c = issue(&f, k, "alice", "researcher", 3600);
    buf b = BUF_INIT;
    cred_format("10.0.0.1:7070,10.0.0.2:7070", "alice", "researcher", 1900000000, c, k, f.ca, &b);
    cred r;
    char err[300];
    REQUIRE(cred_parse(b.data, b.len, &r, err, sizeof err) == 0);
    CHECK(r.n_servers == 2 && strcmp(r.servers[1], "10.0.0.2:7070") == 0);
    CHECK_EQ_STR(r.user, "alice");
    CHECK_EQ_STR(r.role, "researcher");
    CHECK(r.expires == 1900000000 && X509_cmp(r.cert, c) == 0 && X509_cmp(r.ca, f.ca) == 0);
    CHECK(EVP_PKEY_eq(r.key, k) == 1);
    cred_free(&r);
    /* Truncated: the PEM part is incomplete. */
    CHECK(cred_parse(b.data, b.len / 2, &r, err, sizeof err) != 0 && strstr(err, "not all there"));
    cred_free(&r);
    CHECK(cred_parse("user = x\n", 9, &r, err, sizeof err) != 0 && strstr(err, "no server"));
    cred_free(&r);
    CHECK(cred_parse("color = red\n", 12, &r, err, sizeof err) != 0 && strstr(err, "unknown key"));
    cred_free(&r);
    CHECK(cred_parse("a\0b", 3, &r, err, sizeof err) != 0);
    cred_free(&r);
    buf_free(&b);
    X509_free(c);
    EVP_PKEY_free(k);
    ca_free(&f);
}

TEST(tdb_records_apply_expire_and_survive_a_snapshot)
{
    tdb t;
    tdb_init(&t);
    Jazari__TokenRecord tok = JAZARI__TOKEN_RECORD__INIT;
    tok.id = "0123456789abcdef";
    tok.secret_hash = "h";
    tok.kind = "agent";
    tok.expires_ms = 5000;
    Jazari__TrustCmd c = JAZARI__TRUST_CMD__INIT;
    c.op_case = JAZARI__TRUST_CMD__OP_ADD_TOKEN;
    c.add_token = &tok;
    CHECK(tdb_apply(&t, &c, 1000) == NULL && tdb_token(&t, tok.id));
    Jazari__CredRecord cr = JAZARI__CRED_RECORD__INIT;
    cr.serial = "00000000000000000000000000000001";
    cr.user = "alice";
    cr.role = "researcher";
    cr.expires_ms = 90000;
    c.op_case = JAZARI__TRUST_CMD__OP_ADD_CRED;
    c.add_cred = &cr;
    tdb_apply(&t, &c, 1000);
    c.op_case = JAZARI__TRUST_CMD__OP_REVOKE_NODE;
    c.revoke_node = "gpu-1";
    CHECK(tdb_apply(&t, &c, 2000) != NULL && tdb_min_gen(&t, "gpu-1") == 1);
    CHECK(tdb_apply(&t, &c, 2000) != NULL && tdb_min_gen(&t, "gpu-1") == 2 && tdb_min_gen(&t, "gpu-2") == 0);
    /* A snapshot holds them all. */
    buf b = BUF_INIT;
    Jazari__Snapshot head = JAZARI__SNAPSHOT__INIT;
    codec_snapshot_begin(&b, &head);
    tdb_snapshot(&t, &b);
    Jazari__Snapshot *s = jazari__snapshot__unpack(NULL, b.len, (const uint8_t *)b.data);
    REQUIRE(s);
    tdb u;
    tdb_init(&u);
    tdb_restore(&u, s);
    CHECK(tdb_token(&u, tok.id) && tdb_cred(&u, cr.serial) && tdb_min_gen(&u, "gpu-1") == 2);
    jazari__snapshot__free_unpacked(s, NULL);
    /* Revoking a user's credentials; the token's expiry drops it. */
    c.op_case = JAZARI__TRUST_CMD__OP_REVOKE_CRED;
    c.revoke_cred = "user:alice";
    tdb_apply(&t, &c, 6000);
    CHECK(tdb_cred(&t, cr.serial)->revoked && tdb_token(&t, tok.id) == NULL);
    tdb_expire(&t, 100000);
    CHECK(tdb_cred(&t, cr.serial) == NULL);
    buf_free(&b);
    tdb_free(&t);
    tdb_free(&u);
}

/* One person holds at most TDB_MAX_CREDS_PER_USER live credentials (past it
 * the record is not added, whoever proposed it); revoked ones stop counting
 * and are dropped once they are older than the lag during which a
 * controller believes credentials it does not know yet. */
TEST(tdb_credentials_are_bounded_per_person)
{
    tdb t;
    tdb_init(&t);
    Jazari__TrustCmd c = JAZARI__TRUST_CMD__INIT;
    Jazari__CredRecord cr = JAZARI__CRED_RECORD__INIT;
    char serial[40];
    c.op_case = JAZARI__TRUST_CMD__OP_ADD_CRED;
    c.add_cred = &cr;
    cr.serial = serial;
    cr.user = "games";
    cr.role = "researcher";
    cr.expires_ms = INT64_C(1) << 50;
    cr.created_ms = 1000;
    for (int i = 0; i < TDB_MAX_CREDS_PER_USER + 5; i++) {
        snprintf(serial, sizeof serial, "%032x", i + 1);
        tdb_apply(&t, &c, 1000);
    }
    CHECK_EQ_INT(tdb_user_creds(&t, "games"), TDB_MAX_CREDS_PER_USER);
    CHECK_EQ_INT(t.n_creds, TDB_MAX_CREDS_PER_USER);
    snprintf(serial, sizeof serial, "%032x", 1000);
    cr.user = "man"; /* someone else is not held back */
    tdb_apply(&t, &c, 1000);
    CHECK(tdb_cred(&t, serial) != NULL);
    c.op_case = JAZARI__TRUST_CMD__OP_REVOKE_CRED;
    c.revoke_cred = "user:games";
    tdb_apply(&t, &c, 2000);
    CHECK_EQ_INT(tdb_user_creds(&t, "games"), 0);
    CHECK_EQ_INT(t.n_creds, TDB_MAX_CREDS_PER_USER + 1); /* still known: revoked */
    tdb_expire(&t, 1000 + TDB_CRED_LAG_MS - 1);
    CHECK_EQ_INT(t.n_creds, TDB_MAX_CREDS_PER_USER + 1);
    tdb_expire(&t, 1000 + TDB_CRED_LAG_MS);
    CHECK_EQ_INT(t.n_creds, 1); /* man's */
    tdb_free(&t);
}

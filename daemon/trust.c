/* trust.c - this daemon's place in the network's PKI: its certificate and
 * the CA's, made, joined for or loaded at start (<state_dir>/tls), the TLS
 * contexts every connection uses, and the checks on who a peer is.
 *
 *   ca.crt     the network's CA                      every daemon
 *   ca.key     the CA's key (0600)                   controllers only
 *   node.crt   this daemon's certificate             every daemon
 *   node.key   its key (0600)
 *
 * Above req.c (it answers requests), below routes.c and daemon.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "../common/log.h"
#include "../common/tlsio.h"
#include "jzd.h"

#define TRUST_FILE_MAX (64u << 10)

static int trust__path(const jzd *d, const char *file, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/tls/%s", d->cfg->state_dir, file);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Loads one PEM object of <state_dir>/tls/file: 0 loaded, 1 absent, -1 err. */
static int trust__load(jzd *d, const char *file, X509 **cert, EVP_PKEY **key, char *err, size_t errlen)
{
    char path[CONFIG_PATH_MAX + 32], e[300];
    buf b = BUF_INIT;
    trust__path(d, file, path, sizeof path);
    int rc = pki_read_file(path, TRUST_FILE_MAX, &b, e, sizeof e);
    if (rc == 0) {
        if (cert)
            *cert = pki_cert_from_pem(b.data, b.len, e, sizeof e);
        else
            *key = pki_key_from_pem(b.data, b.len, e, sizeof e);
        if ((cert && !*cert) || (key && !*key))
            rc = -1;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s: %s (remove <state_dir>/tls to join the network anew)", path, e);
    buf_free(&b);
    return rc;
}

static int trust__save(jzd *d, const char *file, X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
    char path[CONFIG_PATH_MAX + 32];
    buf b = BUF_INIT;
    trust__path(d, file, path, sizeof path);
    if (cert)
        pki_cert_pem(cert, &b);
    else
        pki_key_pem(key, &b);
    int rc = pki_write_file(path, &b, cert ? 0644 : 0600, err, errlen);
    OPENSSL_cleanse(b.data, b.len);
    buf_free(&b);
    return rc;
}

static const char *trust__kind(const jzd *d)
{
    return d->is_controller ? "controller" : "agent";
}

/* A certificate for this daemon, from the CA key it holds. */
static int trust__issue_own(jzd *d, EVP_PKEY *ca_key, char *err, size_t errlen)
{
    trust *t = &d->trust;
    EVP_PKEY *key = pki_key_new();
    int64_t ttl = (int64_t)(d->cfg->cert_ttl_ms / 1000);
    uint64_t gen = t->me.gen;
    X509 *cert = key ? pki_issue(ca_key, t->ca, key, d->cfg->name, trust__kind(d), gen, (int64_t)time(NULL),
                                 ttl, err, errlen)
                     : NULL;
    if (!cert || trust__save(d, "node.key", NULL, key, err, errlen) != 0 ||
        trust__save(d, "node.crt", cert, NULL, err, errlen) != 0) {
        X509_free(cert);
        EVP_PKEY_free(key);
        return -1;
    }
    X509_free(t->cert);
    EVP_PKEY_free(t->key);
    t->cert = cert;
    t->key = key;
    return 0;
}

/* The TLS contexts from the certificates now held (the old ones go; the
 * connections made with them keep what they need). */
static int trust__contexts(jzd *d, char *err, size_t errlen)
{
    trust *t = &d->trust;
    tls_ctx *server = tls_ctx_new(true, t->ca, t->cert, t->key, NULL, err, errlen);
    tls_ctx *client = server ? tls_ctx_new(false, t->ca, t->cert, t->key, NULL, err, errlen) : NULL;
    if (!client) {
        tls_ctx_free(server);
        return -1;
    }
    tls_ctx_free(d->sec.server);
    tls_ctx_free(d->sec.client);
    d->sec.server = server;
    d->sec.client = client;
    char e[200];
    if (pki_cert_id(t->cert, &t->me, e, sizeof e) != 0) {
        snprintf(err, errlen, "our own certificate: %s", e);
        return -1;
    }
    return 0;
}

/* --- joining -------------------------------------------------------------------------------- */

/* One blocking exchange with a controller: TLS pinned to the token's CA
 * hash, a JoinRequest, its reply. 0 with *reply, -1 with err. */
static int trust__join_at(jzd *d, const pki_token *tok, const char *address, EVP_PKEY *key, wire_msg **reply,
                          char *err, size_t errlen)
{
    tls_ctx *ctx = tls_ctx_new(false, NULL, NULL, NULL, tok->ca_hash, err, errlen);
    if (!ctx)
        return -1;
    tls *t = tls_new(ctx);
    tls_ctx_free(ctx);
    int fd = tlsio_dial(address, 3000, err, errlen), rc = -1;
    buf pub = BUF_INIT, frame = BUF_INIT, plain = BUF_INIT;
    wire_reader r;
    wire_reader_init(&r, 1u << 20);
    if (fd < 0)
        goto done;
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    if (!bio || !PEM_write_bio_PUBKEY(bio, key))
        abort();
    long n = BIO_get_mem_data(bio, &p);
    buf_append(&pub, p, (size_t)n);
    BIO_free(bio);
    char secret[33];
    pki_hex(tok->secret, 16, secret);
    Jazari__JoinRequest jr = JAZARI__JOIN_REQUEST__INIT;
    jr.token_id = (char *)tok->id;
    jr.secret = secret;
    jr.name = d->cfg->name;
    jr.kind = (char *)trust__kind(d);
    jr.public_key = (char *)buf_str(&pub);
    Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
    env.request_id = 1;
    env.version = WIRE_PROTOCOL_VERSION;
    env.body_case = JAZARI__ENVELOPE__BODY_JOIN_REQUEST;
    env.join_request = &jr;
    wire_pack(&env, &frame);
    OPENSSL_cleanse(secret, sizeof secret);
    if (tlsio_send(fd, t, frame.data, frame.len, err, errlen) != 0)
        goto done;
    for (int waited = 0; waited < 10000; waited += 200) {
        const uint8_t *payload;
        size_t len;
        wire_status ws = wire_reader_next(&r, &payload, &len);
        if (ws == WIRE_FRAME) {
            char e[160];
            *reply = wire_unpack(payload, len, e, sizeof e);
            if (!*reply)
                snprintf(err, errlen, "%s sent a bad reply: %s", address, e);
            rc = *reply ? 0 : -1;
            goto done;
        }
        int got = tlsio_recv(fd, t, &plain, 200, err, errlen);
        if (got != 0) {
            if (got > 0)
                snprintf(err, errlen, "%s closed the connection without an answer", address);
            goto done;
        }
        wire_reader_feed(&r, plain.data, plain.len);
        buf_reset(&plain);
    }
    snprintf(err, errlen, "%s did not answer the join within 10 s", address);
done:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(frame.data, frame.len);
    tls_free(t);
    wire_reader_free(&r);
    buf_free(&pub);
    buf_free(&frame);
    buf_free(&plain);
    return rc;
}

/* What a controller's JoinReply holds, checked: 0 with the certificates
 * taken into the trust state, -1 with err. */
static int trust__take_join(jzd *d, const pki_token *tok, const Jazari__JoinReply *jr, EVP_PKEY *key,
                            char *err, size_t errlen)
{
    trust *t = &d->trust;
    char e[300], hash[PKI_HASH_HEX + 1] = "";
    X509 *cert =
        jr->certificate ? pki_cert_from_pem(jr->certificate, strlen(jr->certificate), e, sizeof e) : NULL;
    X509 *ca = jr->ca ? pki_cert_from_pem(jr->ca, strlen(jr->ca), e, sizeof e) : NULL;
    EVP_PKEY *ca_key =
        jr->ca_key && *jr->ca_key ? pki_key_from_pem(jr->ca_key, strlen(jr->ca_key), e, sizeof e) : NULL;
    bool ok = cert && ca && pki_cert_hash(ca, hash) == 0 && pki_equal(hash, tok->ca_hash) &&
              pki_signed_by(cert, ca) && X509_check_private_key(cert, key) == 1 &&
              (!d->is_controller || ca_key);
    if (ok && ca_key) {
        /* The CA key must be the CA's. */
        X509 *again = pki_ca_make(ca_key);
        char h2[PKI_HASH_HEX + 1] = "";
        ok = again && pki_cert_hash(again, h2) == 0 && pki_equal(h2, hash);
        X509_free(again);
    }
    if (!ok) {
        snprintf(err, errlen, "the join's answer does not hold a certificate of this network%s",
                 d->is_controller && !ca_key ? " for a controller" : "");
        X509_free(cert);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        return -1;
    }
    t->ca = ca;
    t->cert = cert;
    EVP_PKEY_up_ref(key);
    t->key = key;
    t->ca_key = ca_key;
    if (trust__save(d, "ca.crt", ca, NULL, err, errlen) ||
        trust__save(d, "node.key", NULL, key, err, errlen) ||
        trust__save(d, "node.crt", cert, NULL, err, errlen) ||
        (ca_key && trust__save(d, "ca.key", NULL, ca_key, err, errlen)))
        return -1;
    return 0;
}

/* Joins with a join token: asks the controllers in turn (for up to a
 * minute, while they start) for a certificate. A refusal is final. */
static int trust__join(jzd *d, const pki_token *tok, char *err, size_t errlen)
{
    if (d->n_peers == 0) {
        snprintf(err, errlen, "join_token: no controller to join through (set controllers)");
        return -1;
    }
    EVP_PKEY *key = pki_key_new();
    int64_t deadline = (int64_t)time(NULL) + 60;
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        const config_peer *p = &d->peers[attempt % d->n_peers];
        char e[400] = "";
        wire_msg *m = NULL;
        if (strcmp(p->name, d->cfg->name) != 0 &&
            trust__join_at(d, tok, p->address, key, &m, e, sizeof e) == 0) {
            const Jazari__Envelope *env = wire_msg_env(m);
            if (env->error && env->error->code != JAZARI__ERROR_CODE__OK)
                snprintf(err, errlen, "joining through %s: %s", p->name, env->error->message);
            else if (env->body_case != JAZARI__ENVELOPE__BODY_JOIN_REPLY)
                snprintf(err, errlen, "joining through %s: it answered %s", p->name, wire_body_name(env));
            else if (trust__take_join(d, tok, env->join_reply, key, err, errlen) == 0) {
                log_info("trust", "joined the network through %s: certificate for %s %s", p->name,
                         trust__kind(d), d->cfg->name);
                rc = 0;
            }
            wire_msg_free(m);
            break;
        }
        if ((int64_t)time(NULL) > deadline) {
            snprintf(err, errlen, "cannot join: %s", e[0] ? e : "no controller reachable");
            break;
        }
        if (e[0])
            log_info("trust", "join through %s: %s; retrying", p->name, e);
        if (attempt % d->n_peers == d->n_peers - 1)
            sleep(1);
    }
    EVP_PKEY_free(key);
    return rc;
}

/* --- start -------------------------------------------------------------------------------- */

int trust_init(jzd *d, char *err, size_t errlen)
{
    trust *t = &d->trust;
    const config *cfg = d->cfg;
    const char *plain = getenv("JAZARI_TEST_PLAINTEXT");
    if (plain && strcmp(plain, "1") == 0) {
        log_warn("trust", "JAZARI_TEST_PLAINTEXT=1: TLS is OFF and any peer is believed (benchmarks only)");
        return 0;
    }
    char dir[CONFIG_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/tls", cfg->state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    pki_token tok;
    bool have_tok = cfg->join_token && *cfg->join_token;
    if (have_tok && pki_token_parse(cfg->join_token, &tok, err, errlen) != 0)
        return -1;
    EVP_PKEY *derived = have_tok && tok.kind == PKI_TOKEN_NETWORK ? pki_key_from_network(&tok) : NULL;
    X509 *derived_ca = derived ? pki_ca_make(derived) : NULL;
    char want_hash[PKI_HASH_HEX + 1] = "";
    if (derived_ca)
        pki_cert_hash(derived_ca, want_hash);
    else if (have_tok)
        snprintf(want_hash, sizeof want_hash, "%s", tok.ca_hash);

    int rc_ca = trust__load(d, "ca.crt", &t->ca, NULL, err, errlen);
    int rc_cert = rc_ca < 0 ? -1 : trust__load(d, "node.crt", &t->cert, NULL, err, errlen);
    int rc_key = rc_cert < 0 ? -1 : trust__load(d, "node.key", NULL, &t->key, err, errlen);
    int rc_cak = rc_key < 0 ? -1 : trust__load(d, "ca.key", NULL, &t->ca_key, err, errlen);
    int rc = -1;
    if (rc_ca < 0 || rc_cert < 0 || rc_key < 0 || rc_cak < 0)
        goto done;
    if (rc_ca == 0 && rc_cert == 0 && rc_key == 0) {
        char have[PKI_HASH_HEX + 1];
        pki_cert_hash(t->ca, have);
        if (want_hash[0] && !pki_equal(have, want_hash)) {
            snprintf(
                err, errlen,
                "%s holds the certificate of another network than the join token's (CA %.12s, the token's "
                "%.12s): remove that directory to join anew",
                dir, have, want_hash);
            goto done;
        }
        if (!pki_signed_by(t->cert, t->ca)) {
            snprintf(err, errlen, "%s/node.crt was not issued by %s/ca.crt: remove %s to join anew", dir, dir,
                     dir);
            goto done;
        }
        if (d->is_controller && !t->ca_key && derived) {
            t->ca_key = derived;
            derived = NULL;
            if (trust__save(d, "ca.key", NULL, t->ca_key, err, errlen) != 0)
                goto done;
        }
    } else if (derived) {
        /* A new network's token: the CA is the token's, this daemon's
         * certificate its own. Agents keep no copy of the CA's key. */
        t->ca = derived_ca;
        derived_ca = NULL;
        if (trust__save(d, "ca.crt", t->ca, NULL, err, errlen) != 0 ||
            trust__issue_own(d, derived, err, errlen) != 0)
            goto done;
        if (d->is_controller) {
            t->ca_key = derived;
            derived = NULL;
            if (trust__save(d, "ca.key", NULL, t->ca_key, err, errlen) != 0)
                goto done;
        }
        log_info("trust", "certificate for %s %s from the new network's token (CA %.12s)", trust__kind(d),
                 cfg->name, want_hash);
    } else if (have_tok) {
        if (trust__join(d, &tok, err, errlen) != 0)
            goto done;
    } else if (d->is_controller && (d->n_peers <= 1 || strcmp(d->peers[0].name, cfg->name) == 0)) {
        /* The first controller, with no token: it makes the network's CA. */
        t->ca_key = pki_key_new();
        t->ca = t->ca_key ? pki_ca_make(t->ca_key) : NULL;
        if (!t->ca || trust__save(d, "ca.key", NULL, t->ca_key, err, errlen) != 0 ||
            trust__save(d, "ca.crt", t->ca, NULL, err, errlen) != 0 ||
            trust__issue_own(d, t->ca_key, err, errlen) != 0)
            goto done;
        char h[PKI_HASH_HEX + 1];
        pki_cert_hash(t->ca, h);
        log_info("trust",
                 "made the network's CA (%.12s) in %s; other daemons join with a token from "
                 "`jz token create --join`",
                 h, dir);
    } else {
        snprintf(
            err, errlen,
            "%s %s has no certificate yet: start it with --join-token TOKEN (from `jz token create --join` "
            "on a controller), or start every daemon of a new network with the same token from "
            "`jazarid token generate`",
            trust__kind(d), cfg->name);
        goto done;
    }
    if (trust__contexts(d, err, errlen) != 0)
        goto done;
    pki_cert_hash(t->ca, t->ca_hash);
    if (strcmp(t->me.name, cfg->name) != 0 || strcmp(t->me.kind, trust__kind(d)) != 0) {
        if (!t->ca_key) {
            snprintf(
                err, errlen,
                "our certificate is for %s %s, but this daemon is %s %s: remove %s and join with a token",
                t->me.kind, t->me.name, trust__kind(d), cfg->name, dir);
            goto done;
        }
        /* A controller renamed or promoted: it holds the CA, it reissues. */
        if (trust__issue_own(d, t->ca_key, err, errlen) != 0 || trust__contexts(d, err, errlen) != 0)
            goto done;
    }
    rc = 0;
done:
    EVP_PKEY_free(derived);
    X509_free(derived_ca);
    return rc;
}

void trust_free(jzd *d)
{
    trust *t = &d->trust;
    tls_ctx_free(d->sec.server);
    tls_ctx_free(d->sec.client);
    d->sec.server = d->sec.client = NULL;
    X509_free(t->ca);
    X509_free(t->cert);
    EVP_PKEY_free(t->key);
    EVP_PKEY_free(t->ca_key);
    EVP_PKEY_free(t->renew_key);
    memset(t, 0, sizeof *t);
}

bool trust_on(const jzd *d)
{
    return d->sec.server != NULL;
}

/* --- issuing ------------------------------------------------------------------------------ */

X509 *trust_issue(jzd *d, EVP_PKEY *pub, const char *name, const char *kind, uint64_t gen, int64_t ttl_s,
                  char *err, size_t errlen)
{
    trust *t = &d->trust;
    if (!t->ca_key) {
        snprintf(err, errlen, "%s does not hold the network's CA key (a controller does)", d->cfg->name);
        return NULL;
    }
    return pki_issue(t->ca_key, t->ca, pub, name, kind, gen, (int64_t)time(NULL), ttl_s, err, errlen);
}

/* --- renewal ------------------------------------------------------------------------------- */

/* The leader's answer to our RenewRequest: the new certificate replaces
 * ours (on disk, then for new connections). */
static void trust__on_renewed(void *arg, wire_msg *reply, const char *why, bool sent)
{
    jzd *d = arg;
    trust *t = &d->trust;
    (void)sent;
    t->renewing = false;
    EVP_PKEY *key = t->renew_key;
    t->renew_key = NULL;
    const Jazari__Envelope *e = reply ? wire_msg_env(reply) : NULL;
    char err[300] = "";
    X509 *cert = NULL;
    if (!e)
        snprintf(err, sizeof err, "%s", why ? why : "no answer");
    else if (e->error && e->error->code != JAZARI__ERROR_CODE__OK)
        snprintf(err, sizeof err, "%s", e->error->message);
    else if (e->body_case != JAZARI__ENVELOPE__BODY_RENEW_REPLY || !e->renew_reply->certificate)
        snprintf(err, sizeof err, "the leader answered %s", wire_body_name(e));
    else if (!(cert = pki_cert_from_pem(e->renew_reply->certificate, strlen(e->renew_reply->certificate), err,
                                        sizeof err)) ||
             !pki_signed_by(cert, t->ca) || X509_check_private_key(cert, key) != 1)
        snprintf(err, sizeof err, "%s",
                 err[0] ? err : "the new certificate is not ours or not of this network");
    if (!err[0] && trust__save(d, "node.key", NULL, key, err, sizeof err) == 0)
        trust__save(d, "node.crt", cert, NULL, err, sizeof err);
    if (err[0]) {
        if (!d->stopping)
            log_warn("trust", "cannot renew our certificate yet: %s", err);
        X509_free(cert);
        EVP_PKEY_free(key);
    } else {
        X509_free(t->cert);
        EVP_PKEY_free(t->key);
        t->cert = cert;
        t->key = key;
        if (trust__contexts(d, err, sizeof err) != 0)
            log_error("trust", "renewed certificate: %s", err);
        else
            log_info("trust", "renewed our certificate through the leader: valid until %lld",
                     (long long)t->me.not_after);
    }
    wire_msg_free(reply);
}

void trust_tick(jzd *d)
{
    trust *t = &d->trust;
    if (!trust_on(d) || t->renewing)
        return;
    int64_t now = (int64_t)time(NULL);
    int64_t life = t->me.not_after - (t->me.not_before + 3600);
    if (life <= 0 || now < t->me.not_before + 3600 + life * 2 / 3)
        return;
    char err[300];
    if (!t->ca_key) {
        /* An agent asks the leader, over its own (still valid) certificate. */
        buf pub = BUF_INIT;
        t->renew_key = pki_key_new();
        BIO *bio = BIO_new(BIO_s_mem());
        char *p;
        if (!t->renew_key || !bio || !PEM_write_bio_PUBKEY(bio, t->renew_key))
            abort();
        long n = BIO_get_mem_data(bio, &p);
        buf_append(&pub, p, (size_t)n);
        BIO_free(bio);
        Jazari__RenewRequest q = JAZARI__RENEW_REQUEST__INIT;
        q.public_key = (char *)buf_str(&pub);
        Jazari__Envelope env = JAZARI__ENVELOPE__INIT;
        env.body_case = JAZARI__ENVELOPE__BODY_RENEW_REQUEST;
        env.renew_request = &q;
        t->renewing = true;
        uplink_request(&d->up, &env, trust__on_renewed, d);
        buf_free(&pub);
        return;
    }
    if (trust__issue_own(d, t->ca_key, err, sizeof err) != 0 || trust__contexts(d, err, sizeof err) != 0) {
        log_error("trust", "cannot renew our certificate: %s", err);
        return;
    }
    log_info("trust", "renewed our certificate: valid until %lld", (long long)t->me.not_after);
}

/* --- who a peer is ------------------------------------------------------------------------- */

bool trust_is_daemon(const pki_id *p)
{
    return p && (strcmp(p->kind, "controller") == 0 || strcmp(p->kind, "agent") == 0);
}

bool trust_is_controller(const pki_id *p)
{
    return p && strcmp(p->kind, "controller") == 0;
}

/* A node's certificates older than its revocation are refused. */
bool trust_cred_valid(jzd *d, const pki_id *p)
{
    if (!d->ctl_running)
        return false;
    const Jazari__CredRecord *r = tdb_cred(&d->ctl.state.trust, p->serial);
    return r && !r->revoked && strcmp(r->user, p->name) == 0 && strcmp(r->role, p->kind) == 0;
}

/* A node's certificates older than its revocation, and people's
 * credentials the state holds as revoked or for someone else, are refused.
 * Credentials the state does not hold are refused too, unless they were made
 * in the last TDB_CRED_LAG_MS: they are handed out only once their record is
 * committed, so a controller that does not know them yet is catching up (a
 * follower, a leader just elected), and it applies a revocation only after
 * the record anyway. Only controllers hold the state: agents take
 * controllers alone. */
static bool trust__revoked(jzd *d, const pki_id *p)
{
    if (!d->ctl_running)
        return false;
    if (trust_is_daemon(p))
        return p->gen < tdb_min_gen(&d->ctl.state.trust, p->name);
    if (tdb_cred(&d->ctl.state.trust, p->serial))
        return !trust_cred_valid(d, p);
    int64_t made = p->not_before + PKI_BACKDATE_S, now = (int64_t)time(NULL);
    return !(made <= now + 60 && (now - made) * 1000 < TDB_CRED_LAG_MS);
}

bool trust_on_secure(net_conn *c, void *data)
{
    jzd *d = data;
    const pki_id *p = net_conn_peer_id(c);
    if (!p) {
        /* Anonymous: a daemon joining, on a controller. Nothing else. */
        if (d->ctl_running)
            return true;
        net_conn_close(c, "no certificate: this node takes connections from the network's controllers only");
        return false;
    }
    if (!d->ctl_running && !trust_is_controller(p)) {
        net_conn_close(c, "%s %s: this node takes connections from the network's controllers only", p->kind,
                       p->name);
        return false;
    }
    if (!trust_is_daemon(p) && authz_role_parse(p->kind) < 0) {
        net_conn_close(c, "a certificate of kind '%s' is not one this release knows", p->kind);
        return false;
    }
    if (trust__revoked(d, p)) {
        net_conn_close(c, "%s %s presents a revoked or unknown certificate (serial %s)", p->kind, p->name,
                       p->serial);
        return false;
    }
    snprintf(c->peer + strlen(c->peer), sizeof c->peer - strlen(c->peer), "(%s)", p->name);
    return true;
}

void trust_drop_revoked(jzd *d)
{
    for (net_conn *c = d->server.conns; c; c = c->next) {
        const pki_id *p = net_conn_peer_id(c);
        if (p && !c->closing && trust__revoked(d, p))
            net_conn_close(c, "%s %s was revoked", p->kind, p->name);
    }
}

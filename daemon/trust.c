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

#include "../common/log.h"
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
    X509 *cert = key ? pki_issue(ca_key, t->ca, key, d->cfg->name, trust__kind(d), gen, (int64_t)time(NULL), ttl,
                                 err, errlen)
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
            snprintf(err, errlen,
                     "%s holds the certificate of another network than the join token's (CA %.12s, the token's "
                     "%.12s): remove that directory to join anew",
                     dir, have, want_hash);
            goto done;
        }
        if (!pki_signed_by(t->cert, t->ca)) {
            snprintf(err, errlen, "%s/node.crt was not issued by %s/ca.crt: remove %s to join anew", dir, dir, dir);
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
        snprintf(err, errlen,
                 "join tokens (jzj1...) are not served by this release yet: start every daemon of the network "
                 "with the same token from `jazarid token generate`");
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
        log_info("trust", "made the network's CA (%.12s) in %s; other daemons join with a token from "
                          "`jz token create --join`",
                 h, dir);
    } else {
        snprintf(err, errlen,
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
            snprintf(err, errlen,
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
    memset(t, 0, sizeof *t);
}

bool trust_on(const jzd *d)
{
    return d->sec.server != NULL;
}

/* --- renewal ------------------------------------------------------------------------------- */

void trust_tick(jzd *d)
{
    trust *t = &d->trust;
    if (!trust_on(d) || !t->ca_key)
        return;
    int64_t now = (int64_t)time(NULL);
    int64_t life = t->me.not_after - (t->me.not_before + 3600);
    if (life <= 0 || now < t->me.not_before + 3600 + life * 2 / 3)
        return;
    char err[300];
    if (trust__issue_own(d, t->ca_key, err, sizeof err) != 0 || trust__contexts(d, err, sizeof err) != 0) {
        log_error("trust", "cannot renew our certificate: %s", err);
        return;
    }
    log_info("trust", "renewed our certificate: valid until %lld", (long long)t->me.not_after);
}

/* --- who a peer is ------------------------------------------------------------------------- */

bool trust_role_valid(const char *role)
{
    static const char *const roles[] = {"researcher", "coordinator", "tenant-admin", "admin"};
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (strcmp(role, roles[i]) == 0)
            return true;
    return false;
}

bool trust_is_daemon(const pki_id *p)
{
    return p && (strcmp(p->kind, "controller") == 0 || strcmp(p->kind, "agent") == 0);
}

bool trust_is_controller(const pki_id *p)
{
    return p && strcmp(p->kind, "controller") == 0;
}

/* A node's certificates older than its revocation are refused. */
static bool trust__revoked(const jzd *d, const pki_id *p)
{
    (void)d;
    (void)p;
    return false; /* revocation by name: the next change (jz node revoke) */
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
    if (trust__revoked(d, p)) {
        net_conn_close(c, "%s %s presents a revoked certificate", p->kind, p->name);
        return false;
    }
    if (!trust_is_daemon(p) && !trust_role_valid(p->kind)) {
        net_conn_close(c, "a certificate of kind '%s' is not one this release knows", p->kind);
        return false;
    }
    snprintf(c->peer + strlen(c->peer), sizeof c->peer - strlen(c->peer), "(%s)", p->name);
    return true;
}


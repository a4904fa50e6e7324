/* tokens.c - trust as requests: join tokens and people's credentials (jz
 * token create / list / revoke), revoking a node (jz node revoke), a new
 * daemon's join, and a daemon's certificate renewal. Every change goes
 * through the log (TrustCmd), so every controller knows the same tokens,
 * credentials and revoked nodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "../common/cred.h"
#include "../common/log.h"
#include "../common/xmem.h"
#include "jzd.h"

#define TOKENS_JOIN_TTL_S 3600            /* a join token: an hour */
#define TOKENS_CRED_TTL_S (30LL * 86400)  /* credentials: 30 days */
#define TOKENS_TTL_MAX_S (3650LL * 86400) /* ten years at most */
#define TOKENS_PUBKEY_MAX 1024

/* A request waiting for its TrustCmd, with the reply to give once it is
 * committed. */
typedef struct tokens__wait {
    jzd_wait *w;
    char *text; /* the token or credentials file, NULL for a revocation */
    char id[40];
    int64_t expires_ms;
} tokens__wait;

/* Whether the state holds the token (16 hex) or credentials (32) of id. */
static bool tokens__held(jzd *d, const char *id)
{
    const tdb *t = &d->ctl.state.trust;
    return strlen(id) == 32 ? tdb_cred(t, id) != NULL : tdb_token(t, id) != NULL;
}

static void tokens__on_committed(void *arg, const ctl_outcome *o)
{
    tokens__wait *t = arg;
    jzd_wait *w = t->w;
    jzd *d = w->d;
    net_conn *c = req_unwait(w);
    if (c && o->code != JAZARI__ERROR_CODE__OK) {
        req_error(c, w->request_id, o->code, false, "%s", o->message);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_TOKEN_CREATE_REQUEST && !tokens__held(d, t->id)) {
        /* Committed but not applied: a limit was reached meanwhile. What
         * was made is never handed out. */
        req_error(c, w->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "not made: the network holds as many join tokens (%d) or credentials (%d, %d a person) as it "
                  "may; revoke some first",
                  TDB_MAX_TOKENS, TDB_MAX_CREDS, TDB_MAX_CREDS_PER_USER);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_TOKEN_CREATE_REQUEST) {
        Jazari__TokenCreateReply r = JAZARI__TOKEN_CREATE_REPLY__INIT;
        r.text = t->text;
        r.id = t->id;
        r.expires_ms = t->expires_ms;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_TOKEN_CREATE_REPLY, &r, o->log_index);
    } else if (c && w->kind == JAZARI__ENVELOPE__BODY_TOKEN_REVOKE_REQUEST) {
        Jazari__TokenRevokeReply r = JAZARI__TOKEN_REVOKE_REPLY__INIT;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_TOKEN_REVOKE_REPLY, &r, o->log_index);
    } else if (c) {
        Jazari__NodeRevokeReply r = JAZARI__NODE_REVOKE_REPLY__INIT;
        req_reply_at(c, w->request_id, JAZARI__ENVELOPE__BODY_NODE_REVOKE_REPLY, &r, o->log_index);
    }
    if (t->text)
        OPENSSL_cleanse(t->text, strlen(t->text));
    free(t->text);
    free(w);
    free(t);
    (void)d;
}

static void tokens__propose(jzd *d, net_conn *c, const Jazari__Envelope *e, const authz_who *w,
                            Jazari__TrustCmd *tc, char *text, const char *id, int64_t expires_ms)
{
    tokens__wait *t = xcalloc(1, sizeof *t);
    t->w = req_wait(d, c, e);
    t->text = text;
    snprintf(t->id, sizeof t->id, "%s", id ? id : "");
    t->expires_ms = expires_ms;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_TRUST;
    cmd.trust = tc;
    Jazari__AuditRecord audit;
    char what[200];
    static const char *const ops[] = {[JAZARI__TRUST_CMD__OP_ADD_TOKEN] = "join token create",
                                      [JAZARI__TRUST_CMD__OP_ADD_CRED] = "credentials create",
                                      [JAZARI__TRUST_CMD__OP_REVOKE_CRED] = "credentials revoke",
                                      [JAZARI__TRUST_CMD__OP_REVOKE_NODE] = "node revoke",
                                      [JAZARI__TRUST_CMD__OP_REVOKE_TOKEN] = "join token revoke"};
    const char *op =
        (size_t)tc->op_case < sizeof ops / sizeof *ops && ops[tc->op_case] ? ops[tc->op_case] : "trust";
    const char *user =
        tc->op_case == JAZARI__TRUST_CMD__OP_ADD_CRED && tc->add_cred->user ? tc->add_cred->user : "";
    req_audit(&audit, what, sizeof what, w, "%s %s%s%s", op, id ? id : "", *user ? " for " : "", user);
    cmd.audit = &audit;
    ctl_propose(&d->ctl, &cmd, tokens__on_committed, t);
}

/* Where a person's client reaches the network: the controllers. */
static void tokens__servers(jzd *d, buf *out)
{
    if (d->n_peers == 0)
        buf_puts(out, d->cfg->listen);
    for (int i = 0; i < d->n_peers; i++)
        buf_printf(out, "%s%s", i ? "," : "", d->peers[i].address);
}

static bool tokens__ttl(const Jazari__TokenCreateRequest *q, int64_t deflt, int64_t *ttl)
{
    *ttl = q->ttl_s ? (int64_t)q->ttl_s : deflt;
    return q->ttl_s <= (uint64_t)TOKENS_TTL_MAX_S;
}

void tokens_create(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__TokenCreateRequest *q = e->token_create_request;
    authz_who who;
    char err[300];
    const char *role = q->role && *q->role ? q->role : "researcher";
    if (q->join && !req_admin(d, c, e, &who, "jz token create --join"))
        return;
    if (!q->join && !req_who(d, c, e, &who))
        return;
    if (!q->join && !authz_person_admin(d->cfg->pol, &who, q->user, role)) {
        req_error(
            c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
            "jz token create --user is for admins, and for tenant admins making researchers' credentials "
            "for the members of their startup's accounts; not for %s",
            who.user);
        return;
    }
    if (!trust_on(d) || !d->trust.ca_key) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "this controller runs without TLS or without the CA's key: no token can be made here");
        return;
    }
    int64_t now_ms = ctl_now_ms(&d->ctl), ttl;
    Jazari__TrustCmd tc = JAZARI__TRUST_CMD__INIT;
    tc.by = who.user;
    if (q->join) {
        const char *kind = q->join_kind && *q->join_kind ? q->join_kind : "agent";
        if (strcmp(kind, "agent") != 0 && strcmp(kind, "controller") != 0) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "a join token is for an agent or a controller, not '%.40s'", kind);
            return;
        }
        if (!tokens__ttl(q, TOKENS_JOIN_TTL_S, &ttl) || d->ctl.state.trust.n_tokens >= TDB_MAX_TOKENS) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "--ttl: at most ten years; and at most %d live join tokens (jz token revoke some)",
                      TDB_MAX_TOKENS);
            return;
        }
        pki_token tok;
        char text[PKI_TOKEN_MAX + 1], hash[PKI_HASH_HEX + 1];
        pki_token_new_join(&tok, d->trust.ca_hash);
        pki_token_format(&tok, text, sizeof text);
        pki_token_secret_hash(&tok, hash);
        Jazari__TokenRecord rec = JAZARI__TOKEN_RECORD__INIT;
        rec.id = tok.id;
        rec.secret_hash = hash;
        rec.kind = (char *)kind;
        rec.expires_ms = now_ms + ttl * 1000;
        rec.by = who.user;
        rec.created_ms = now_ms;
        tc.op_case = JAZARI__TRUST_CMD__OP_ADD_TOKEN;
        tc.add_token = &rec;
        log_info("trust", "%s makes join token %s for a %s, valid %lld s", who.user, tok.id, kind,
                 (long long)ttl);
        tokens__propose(d, c, e, &who, &tc, xstrdup(text), tok.id, rec.expires_ms);
        OPENSSL_cleanse(&tok, sizeof tok);
        OPENSSL_cleanse(text, sizeof text);
        return;
    }
    if (!q->user || !config_valid_name(q->user) || authz_role_parse(role) < 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "credentials need --user NAME (of [A-Za-z0-9._-]) and a --role: researcher, coordinator, "
                  "tenant-admin or admin");
        return;
    }
    if (!tokens__ttl(q, TOKENS_CRED_TTL_S, &ttl) || d->ctl.state.trust.n_creds >= TDB_MAX_CREDS) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "--ttl: at most ten years; and at most %d live credentials", TDB_MAX_CREDS);
        return;
    }
    if (tdb_user_creds(&d->ctl.state.trust, q->user) >= TDB_MAX_CREDS_PER_USER) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "%s holds %d live credentials already, the most one person may: revoke some first (jz token "
                  "list, jz token revoke ID)",
                  q->user, TDB_MAX_CREDS_PER_USER);
        return;
    }
    if (strcmp(q->user, "root") == 0 && strcmp(role, "admin") != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "root's credentials are an admin's: give --role admin");
        return;
    }
    EVP_PKEY *key = pki_key_new();
    X509 *cert = key ? trust_issue(d, key, q->user, role, 0, ttl, err, sizeof err) : NULL;
    pki_id id;
    if (!cert || pki_cert_id(cert, &id, err, sizeof err) != 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__INTERNAL, false, "%s", err);
        X509_free(cert);
        EVP_PKEY_free(key);
        return;
    }
    buf servers = BUF_INIT, text = BUF_INIT;
    tokens__servers(d, &servers);
    cred_format(buf_str(&servers), q->user, role, id.not_after, cert, key, d->trust.ca, &text);
    Jazari__CredRecord rec = JAZARI__CRED_RECORD__INIT;
    rec.serial = id.serial;
    rec.user = q->user;
    rec.role = (char *)role;
    rec.expires_ms = id.not_after * 1000;
    rec.by = who.user;
    rec.created_ms = now_ms;
    tc.op_case = JAZARI__TRUST_CMD__OP_ADD_CRED;
    tc.add_cred = &rec;
    log_info("trust", "%s makes credentials %s for %s (%s), valid %lld s", who.user, id.serial, q->user, role,
             (long long)ttl);
    tokens__propose(d, c, e, &who, &tc, xstrdup(buf_str(&text)), id.serial, rec.expires_ms);
    OPENSSL_cleanse(text.data, text.len);
    buf_free(&text);
    buf_free(&servers);
    X509_free(cert);
    EVP_PKEY_free(key);
}

void tokens_list(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    authz_who who;
    if (!req_who(d, c, e, &who))
        return;
    bool admin = authz_is_admin(&who) && !who.via_node;
    if (!admin &&
        (who.role < AUTHZ_TENANT_ADMIN || who.via_node || !pol_is_tenant_admin(d->cfg->pol, who.user))) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "jz token list is for admins (and tenant admins, for their members), not for %s", who.user);
        return;
    }
    const tdb *t = &d->ctl.state.trust;
    Jazari__TokenListReply r = JAZARI__TOKEN_LIST_REPLY__INIT;
    /* The records as they are, but never a secret's hash. */
    Jazari__TokenRecord *toks = xcalloc(t->n_tokens + 1, sizeof *toks);
    Jazari__TokenRecord **tp = xcalloc(t->n_tokens + 1, sizeof(Jazari__TokenRecord *));
    for (size_t i = 0; i < t->n_tokens; i++) {
        toks[i] = *t->tokens[i];
        toks[i].secret_hash = "";
        tp[i] = &toks[i];
    }
    /* A tenant admin: their members' credentials only. */
    Jazari__CredRecord **cp = xcalloc(t->n_creds + 1, sizeof(Jazari__CredRecord *));
    for (size_t i = 0; i < t->n_creds; i++)
        if (admin || authz_person_admin(d->cfg->pol, &who, t->creds[i]->user, t->creds[i]->role))
            cp[r.n_creds++] = t->creds[i];
    r.n_tokens = admin ? t->n_tokens : 0;
    r.tokens = tp;
    r.creds = cp;
    r.n_node_gens = admin ? t->n_gens : 0;
    r.node_gens = t->gens;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_TOKEN_LIST_REPLY, &r);
    free(toks);
    free(tp);
    free(cp);
}

static bool tokens__hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void tokens_revoke(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *id = e->token_revoke_request->id;
    authz_who who;
    if (!req_who(d, c, e, &who))
        return;
    const tdb *t = &d->ctl.state.trust;
    /* Admins revoke anything; a tenant admin their members' researcher
     * credentials (user:NAME for a member of theirs). */
    const Jazari__CredRecord *one = tokens__hex(id, 32) ? tdb_cred(t, id) : NULL;
    bool user_form = id && strncmp(id, "user:", 5) == 0;
    for (size_t i = 0; user_form && i < t->n_creds; i++) /* all of a user's: only if all are theirs */
        if (strcmp(t->creds[i]->user, id + 5) == 0 && !t->creds[i]->revoked &&
            !authz_person_admin(d->cfg->pol, &who, t->creds[i]->user, t->creds[i]->role))
            user_form = authz_is_admin(&who) && !who.via_node;
    bool allowed = (authz_is_admin(&who) && !who.via_node) ||
                   (one && authz_person_admin(d->cfg->pol, &who, one->user, one->role)) ||
                   (user_form && authz_person_admin(d->cfg->pol, &who, id + 5, "researcher"));
    if (!allowed) {
        req_error(
            c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
            "jz token revoke is for admins (and tenant admins, for their members' credentials), not for "
            "%s",
            who.user);
        return;
    }
    Jazari__TrustCmd tc = JAZARI__TRUST_CMD__INIT;
    tc.by = who.user;
    if (tokens__hex(id, 16) && tdb_token(t, id)) {
        tc.op_case = JAZARI__TRUST_CMD__OP_REVOKE_TOKEN;
        tc.revoke_token = (char *)id;
    } else if ((tokens__hex(id, 32) && tdb_cred(t, id)) ||
               (id && strncmp(id, "user:", 5) == 0 && config_valid_name(id + 5))) {
        tc.op_case = JAZARI__TRUST_CMD__OP_REVOKE_CRED;
        tc.revoke_cred = (char *)id;
    } else {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "no live join token or credentials is '%.80s' (jz token list; user:NAME revokes all of a "
                  "user's)",
                  id ? id : "");
        return;
    }
    log_info("trust", "%s revokes %s", who.user, id);
    tokens__propose(d, c, e, &who, &tc, NULL, id, 0);
}

void tokens_node_revoke(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const char *name = e->node_revoke_request->name;
    authz_who who;
    if (!req_admin(d, c, e, &who, "jz node revoke"))
        return;
    if (!name || !config_valid_name(name)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                  "jz node revoke NAME: a node's name");
        return;
    }
    for (int i = 0; i < d->n_peers; i++)
        if (strcmp(d->peers[i].name, name) == 0) {
            req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
                      "%s is a controller: take it out of the controllers setting instead", name);
            return;
        }
    Jazari__TrustCmd tc = JAZARI__TRUST_CMD__INIT;
    tc.by = who.user;
    tc.op_case = JAZARI__TRUST_CMD__OP_REVOKE_NODE;
    tc.revoke_node = (char *)name;
    log_info("trust", "%s revokes node %s", who.user, name);
    tokens__propose(d, c, e, &who, &tc, NULL, name, 0);
}

/* A public key in PEM, bounded, Ed25519. */
static EVP_PKEY *tokens__pubkey(const char *pem)
{
    if (!pem || strlen(pem) > TOKENS_PUBKEY_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
    EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (k && EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

void tokens_join(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__JoinRequest *q = e->join_request;
    const tdb *t = &d->ctl.state.trust;
    const Jazari__TokenRecord *rec = tokens__hex(q->token_id, 16) ? tdb_token(t, q->token_id) : NULL;
    char err[300];
    const char *bad = NULL;
    int64_t now_ms = ctl_now_ms(&d->ctl);
    if (!rec || rec->expires_ms <= now_ms || !tokens__hex(q->secret, 32)) {
        bad = "the join token is unknown or expired: ask an admin for a new one (jz token create --join)";
    } else {
        pki_token tok;
        memset(&tok, 0, sizeof tok);
        (void)pki_unhex(q->secret, 16, tok.secret); /* its digits checked above */
        char hash[PKI_HASH_HEX + 1];
        pki_token_secret_hash(&tok, hash);
        OPENSSL_cleanse(&tok, sizeof tok);
        if (!pki_equal(hash, rec->secret_hash))
            bad = "the join token is unknown or expired: ask an admin for a new one (jz token create --join)";
        else if (!q->name || !config_valid_name(q->name))
            bad = "a joining node's name: 1-63 of [A-Za-z0-9._-]";
        else if (!q->kind || strcmp(q->kind, rec->kind) != 0)
            bad = strcmp(rec->kind, "agent") == 0 ? "this token joins agents, not controllers"
                                                  : "this token joins controllers, not agents";
    }
    bool is_ctl = false;
    for (int i = 0; !bad && i < d->n_peers; i++)
        is_ctl |= strcmp(d->peers[i].name, q->name) == 0;
    if (!bad && is_ctl != (strcmp(q->kind, "controller") == 0))
        bad = is_ctl ? "that name is a controller's: join it with a controller's token"
                     : "that name is not in the controllers setting: a controller must be listed there first";
    EVP_PKEY *pub = bad ? NULL : tokens__pubkey(q->public_key);
    if (!bad && !pub)
        bad = "the joining daemon's public key is not an Ed25519 key in PEM";
    X509 *cert = bad ? NULL
                     : trust_issue(d, pub, q->name, q->kind, tdb_min_gen(t, q->name),
                                   (int64_t)(d->cfg->cert_ttl_ms / 1000), err, sizeof err);
    if (!bad && !cert)
        bad = err;
    EVP_PKEY_free(pub);
    if (bad) {
        log_warn("trust", "join of %.63s from %s refused: %s", q->name ? q->name : "?", c->peer, bad);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, true, "%s", bad);
        return;
    }
    buf crt = BUF_INIT, ca = BUF_INIT, cak = BUF_INIT;
    pki_cert_pem(cert, &crt);
    pki_cert_pem(d->trust.ca, &ca);
    if (strcmp(q->kind, "controller") == 0)
        pki_key_pem(d->trust.ca_key, &cak);
    Jazari__JoinReply r = JAZARI__JOIN_REPLY__INIT;
    r.certificate = (char *)buf_str(&crt);
    r.ca = (char *)buf_str(&ca);
    r.ca_key = (char *)buf_str(&cak);
    wire_reply out;
    wire_reply_init(&out, e->request_id, JAZARI__ERROR_CODE__OK, NULL);
    out.env.body_case = JAZARI__ENVELOPE__BODY_JOIN_REPLY;
    out.env.join_reply = &r;
    net_conn_send_and_close(c, &out.env);
    log_info("trust", "%s %s joined from %s with token %s", q->kind, q->name, c->peer, q->token_id);
    OPENSSL_cleanse(cak.data, cak.len);
    buf_free(&crt);
    buf_free(&ca);
    buf_free(&cak);
    X509_free(cert);
}

void tokens_renew(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const pki_id *p = net_conn_peer_id(c);
    char err[300];
    if (!trust_is_daemon(p)) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "a certificate is renewed by the daemon that holds it");
        return;
    }
    EVP_PKEY *pub = tokens__pubkey(e->renew_request->public_key);
    X509 *cert = pub ? trust_issue(d, pub, p->name, p->kind, p->gen, (int64_t)(d->cfg->cert_ttl_ms / 1000),
                                   err, sizeof err)
                     : NULL;
    EVP_PKEY_free(pub);
    if (!cert) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false, "renew: %s",
                  pub ? err : "not an Ed25519 public key in PEM");
        return;
    }
    buf crt = BUF_INIT;
    pki_cert_pem(cert, &crt);
    Jazari__RenewReply r = JAZARI__RENEW_REPLY__INIT;
    r.certificate = (char *)buf_str(&crt);
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_RENEW_REPLY, &r);
    log_info("trust", "renewed the certificate of %s %s", p->kind, p->name);
    buf_free(&crt);
    X509_free(cert);
}

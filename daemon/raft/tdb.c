/* tdb.c - join tokens, credentials and revoked nodes, as replicated. */
#include "tdb.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"

void tdb_init(tdb *t)
{
    memset(t, 0, sizeof *t);
}

void tdb_free(tdb *t)
{
    for (size_t i = 0; i < t->n_tokens; i++)
        jazari__token_record__free_unpacked(t->tokens[i], NULL);
    for (size_t i = 0; i < t->n_creds; i++)
        jazari__cred_record__free_unpacked(t->creds[i], NULL);
    for (size_t i = 0; i < t->n_gens; i++)
        jazari__node_gen__free_unpacked(t->gens[i], NULL);
    free(t->tokens);
    free(t->creds);
    free(t->gens);
    tdb_init(t);
}

/* A deep copy of a message, through its encoding: the records own their
 * memory whatever the entry they came in does with its own. */
static void *tdb__copy(const void *msg)
{
    const ProtobufCMessage *m = msg;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        abort();
    protobuf_c_message_pack(m, b);
    void *c = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
    free(b);
    if (!c)
        abort();
    return c;
}

static void tdb__push(void ***arr, size_t *n, void *item)
{
    void **grown = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!grown)
        abort();
    *arr = grown;
    (*arr)[(*n)++] = item;
}

const Jazari__TokenRecord *tdb_token(const tdb *t, const char *id)
{
    for (size_t i = 0; id && i < t->n_tokens; i++)
        if (strcmp(t->tokens[i]->id, id) == 0)
            return t->tokens[i];
    return NULL;
}

const Jazari__CredRecord *tdb_cred(const tdb *t, const char *serial)
{
    for (size_t i = 0; serial && i < t->n_creds; i++)
        if (strcmp(t->creds[i]->serial, serial) == 0)
            return t->creds[i];
    return NULL;
}

uint64_t tdb_min_gen(const tdb *t, const char *name)
{
    for (size_t i = 0; name && i < t->n_gens; i++)
        if (strcmp(t->gens[i]->name, name) == 0)
            return t->gens[i]->min_gen;
    return 0;
}

static bool tdb__text(const char *s, size_t max)
{
    return s && *s && strlen(s) <= max;
}

const char *tdb_apply(tdb *t, const Jazari__TrustCmd *c, int64_t now_ms)
{
    switch (c->op_case) {
    case JAZARI__TRUST_CMD__OP_ADD_TOKEN:
        if (tdb__text(c->add_token->id, 16) && !tdb_token(t, c->add_token->id) &&
            t->n_tokens < TDB_MAX_TOKENS)
            tdb__push((void ***)&t->tokens, &t->n_tokens, tdb__copy(c->add_token));
        break;
    case JAZARI__TRUST_CMD__OP_ADD_CRED:
        /* Past a limit the record is not added: the leader then refuses
         * (tokens.c), and the credentials it made are never handed out. */
        if (tdb__text(c->add_cred->serial, 32) && !tdb_cred(t, c->add_cred->serial) &&
            t->n_creds < TDB_MAX_CREDS && c->add_cred->user &&
            tdb_user_creds(t, c->add_cred->user) < TDB_MAX_CREDS_PER_USER)
            tdb__push((void ***)&t->creds, &t->n_creds, tdb__copy(c->add_cred));
        break;
    case JAZARI__TRUST_CMD__OP_REVOKE_CRED: {
        const char *id = c->revoke_cred;
        bool by_user = id && strncmp(id, "user:", 5) == 0;
        for (size_t i = 0; id && i < t->n_creds; i++)
            if (by_user ? strcmp(t->creds[i]->user, id + 5) == 0 : strcmp(t->creds[i]->serial, id) == 0)
                t->creds[i]->revoked = true;
        break;
    }
    case JAZARI__TRUST_CMD__OP_REVOKE_TOKEN:
        for (size_t i = 0; c->revoke_token && i < t->n_tokens; i++)
            if (strcmp(t->tokens[i]->id, c->revoke_token) == 0)
                t->tokens[i]->expires_ms = now_ms; /* gone at the next expiry */
        break;
    case JAZARI__TRUST_CMD__OP_REVOKE_NODE: {
        if (!tdb__text(c->revoke_node, 63))
            break;
        for (size_t i = 0; i < t->n_gens; i++)
            if (strcmp(t->gens[i]->name, c->revoke_node) == 0) {
                t->gens[i]->min_gen++;
                return c->revoke_node;
            }
        if (t->n_gens >= TDB_MAX_NODE_GENS)
            break;
        Jazari__NodeGen g = JAZARI__NODE_GEN__INIT;
        g.name = c->revoke_node;
        g.min_gen = 1;
        tdb__push((void ***)&t->gens, &t->n_gens, tdb__copy(&g));
        return c->revoke_node;
    }
    default:
        break;
    }
    tdb_expire(t, now_ms);
    return NULL;
}

size_t tdb_user_creds(const tdb *t, const char *user)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_creds; i++)
        n += !t->creds[i]->revoked && strcmp(t->creds[i]->user, user) == 0;
    return n;
}

void tdb_expire(tdb *t, int64_t now_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n_tokens; i++) {
        if (t->tokens[i]->expires_ms <= now_ms)
            jazari__token_record__free_unpacked(t->tokens[i], NULL);
        else
            t->tokens[k++] = t->tokens[i];
    }
    t->n_tokens = k;
    k = 0;
    for (size_t i = 0; i < t->n_creds; i++) {
        const Jazari__CredRecord *r = t->creds[i];
        if (r->expires_ms <= now_ms || (r->revoked && r->created_ms + TDB_CRED_LAG_MS <= now_ms))
            jazari__cred_record__free_unpacked(t->creds[i], NULL);
        else
            t->creds[k++] = t->creds[i];
    }
    t->n_creds = k;
}

void tdb_snapshot(const tdb *t, buf *out)
{
    buf one = BUF_INIT;
    for (size_t i = 0; i < t->n_tokens; i++) {
        buf_reset(&one);
        jazari__token_record__pack(t->tokens[i],
                                   buf_extend(&one, jazari__token_record__get_packed_size(t->tokens[i])));
        codec_put_field(out, 9, one.data, one.len);
    }
    for (size_t i = 0; i < t->n_creds; i++) {
        buf_reset(&one);
        jazari__cred_record__pack(t->creds[i],
                                  buf_extend(&one, jazari__cred_record__get_packed_size(t->creds[i])));
        codec_put_field(out, 10, one.data, one.len);
    }
    for (size_t i = 0; i < t->n_gens; i++) {
        buf_reset(&one);
        jazari__node_gen__pack(t->gens[i], buf_extend(&one, jazari__node_gen__get_packed_size(t->gens[i])));
        codec_put_field(out, 11, one.data, one.len);
    }
    buf_free(&one);
}

void tdb_restore(tdb *t, const Jazari__Snapshot *s)
{
    tdb_free(t);
    for (size_t i = 0; i < s->n_tokens && t->n_tokens < TDB_MAX_TOKENS; i++)
        if (tdb__text(s->tokens[i]->id, 16) && !tdb_token(t, s->tokens[i]->id))
            tdb__push((void ***)&t->tokens, &t->n_tokens, tdb__copy(s->tokens[i]));
    for (size_t i = 0; i < s->n_creds && t->n_creds < TDB_MAX_CREDS; i++)
        if (tdb__text(s->creds[i]->serial, 32) && !tdb_cred(t, s->creds[i]->serial))
            tdb__push((void ***)&t->creds, &t->n_creds, tdb__copy(s->creds[i]));
    for (size_t i = 0; i < s->n_node_gens && t->n_gens < TDB_MAX_NODE_GENS; i++)
        if (tdb__text(s->node_gens[i]->name, 63) && !tdb_min_gen(t, s->node_gens[i]->name))
            tdb__push((void ***)&t->gens, &t->n_gens, tdb__copy(s->node_gens[i]));
}

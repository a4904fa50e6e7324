/* cmd_trust.c - jz token create | list | revoke, and jz node revoke: join
 * tokens, people's credentials, and taking a node out of the network. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* "90s", "30m", "1h", "30d", or plain seconds: into seconds. 0 or -1. */
int cli_parse_ttl(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mult = 1;
    if (errno || v == 0)
        return -1;
    if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else if (strcmp(end, "d") == 0)
        mult = 86400;
    else if (*end && strcmp(end, "s") != 0)
        return -1;
    if (v > 3650ull * 86400 / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static void trust__when(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, len, "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(out, len, "?");
}

static int trust__create(cli *c, int argc, char **argv)
{
    bool join = false, controller = false;
    const char *user = NULL, *role = NULL, *ttl = NULL;
    const cli_opt opts[] = {
        {"join", CLI_FLAG, &join},   {"controller", CLI_FLAG, &controller},
        {"user", CLI_STRING, &user}, {"role", CLI_STRING, &role},
        {"ttl", CLI_STRING, &ttl},   {NULL, CLI_FLAG, NULL},
    };
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, opts, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 0 || join == (user != NULL) || (controller && !join) || (role && !user)) {
        cli_error(c, "usage: jz token create --join [--controller] [--ttl 1h] | --user NAME [--role ROLE] "
                     "[--ttl 30d]");
        return CLI_USAGE;
    }
    Jazari__TokenCreateRequest q = JAZARI__TOKEN_CREATE_REQUEST__INIT;
    if (ttl && cli_parse_ttl(ttl, &q.ttl_s) != 0) {
        cli_error(c, "bad --ttl '%.40s': a duration like 90s, 30m, 12h or 30d (at most ten years)", ttl);
        return CLI_USAGE;
    }
    q.join = join;
    q.join_kind = controller ? "controller" : "agent";
    q.user = (char *)user;
    q.role = (char *)role;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_TOKEN_CREATE_REQUEST;
    req.token_create_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_TOKEN_CREATE_REPLY, &status);
    if (!m)
        return status;
    const Jazari__TokenCreateReply *r = wire_msg_env(m)->token_create_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, join ? "token" : "credentials", r->text);
        json_kv_str(&j, "id", r->id);
        json_kv_int(&j, "expires_ms", r->expires_ms);
        json_obj_end(&j);
    } else {
        buf_puts(&b, r->text);
        if (b.len && b.data[b.len - 1] == '\n')
            b.len--;
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

static int trust__list(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__TokenListRequest q = JAZARI__TOKEN_LIST_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_TOKEN_LIST_REQUEST;
    req.token_list_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_TOKEN_LIST_REPLY, &status);
    if (!m)
        return status;
    const Jazari__TokenListReply *r = wire_msg_env(m)->token_list_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "tokens");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_tokens; i++) {
            json_obj_begin(&j);
            json_kv_str(&j, "id", r->tokens[i]->id);
            json_kv_str(&j, "kind", r->tokens[i]->kind);
            json_kv_int(&j, "expires_ms", r->tokens[i]->expires_ms);
            json_kv_str(&j, "by", r->tokens[i]->by);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_key(&j, "credentials");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_creds; i++) {
            json_obj_begin(&j);
            json_kv_str(&j, "id", r->creds[i]->serial);
            json_kv_str(&j, "user", r->creds[i]->user);
            json_kv_str(&j, "role", r->creds[i]->role);
            json_kv_int(&j, "expires_ms", r->creds[i]->expires_ms);
            json_kv_bool(&j, "revoked", r->creds[i]->revoked);
            json_kv_str(&j, "by", r->creds[i]->by);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_key(&j, "revoked_nodes");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_node_gens; i++)
            json_str(&j, r->node_gens[i]->name);
        json_arr_end(&j);
        json_obj_end(&j);
    } else {
        char when[40];
        buf_printf(&b, "%-34s %-12s %-16s %-12s %-17s %s\n", "ID", "KIND", "USER", "ROLE", "EXPIRES", "BY");
        for (size_t i = 0; i < r->n_tokens; i++) {
            trust__when(r->tokens[i]->expires_ms, when, sizeof when);
            buf_printf(&b, "%-34s %-12s %-16s %-12s %-17s %s\n", r->tokens[i]->id, "join", "-",
                       r->tokens[i]->kind, when, r->tokens[i]->by);
        }
        for (size_t i = 0; i < r->n_creds; i++) {
            trust__when(r->creds[i]->expires_ms, when, sizeof when);
            buf_printf(&b, "%-34s %-12s %-16s %-12s %-17s %s\n", r->creds[i]->serial,
                       r->creds[i]->revoked ? "revoked" : "credentials", r->creds[i]->user, r->creds[i]->role,
                       when, r->creds[i]->by);
        }
        for (size_t i = 0; i < r->n_node_gens; i++)
            buf_printf(&b, "%-34s %-12s %-16s\n", r->node_gens[i]->name, "node", "(revoked)");
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

static int trust__revoke(cli *c, int argc, char **argv)
{
    const char *pos[2];
    int npos = cli_parse(c, argc, argv, NULL, pos, 1);
    if (npos != 1) {
        if (npos >= 0)
            cli_error(c, "usage: jz token revoke ID|user:NAME (jz token list gives the ids)");
        return CLI_USAGE;
    }
    Jazari__TokenRevokeRequest q = JAZARI__TOKEN_REVOKE_REQUEST__INIT;
    q.id = (char *)pos[0];
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_TOKEN_REVOKE_REQUEST;
    req.token_revoke_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_TOKEN_REVOKE_REPLY, &status);
    if (!m)
        return status;
    wire_msg_free(m);
    if (!c->json)
        printf("revoked %s\n", pos[0]);
    else
        printf("{\"revoked\": true}\n");
    return CLI_OK;
}

int cmd_token(cli *c, int argc, char **argv)
{
    /* The subcommand is the first word that is not a shared option (jz
     * token --socket S create ...); it is taken out of argv. */
    const char *sub = "";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--socket") == 0 || strcmp(a, "--server") == 0 || strcmp(a, "--credentials") == 0 ||
            strcmp(a, "--timeout") == 0) {
            i++;
            continue;
        }
        if (a[0] == '-')
            continue;
        sub = a;
        memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof *argv);
        argc--;
        break;
    }

    if (strcmp(sub, "create") == 0)
        return trust__create(c, argc, argv);
    if (strcmp(sub, "list") == 0)
        return trust__list(c, argc, argv);
    if (strcmp(sub, "revoke") == 0)
        return trust__revoke(c, argc, argv);
    if (c->describe) {
        printf("subcommands:\n  create\n  list\n  revoke\n");
        return CLI_OK;
    }
    cli_error(c, "usage: jz token create --join [--controller] [--ttl 1h] | create --user NAME [--role ROLE] "
                 "[--ttl 30d] | list | revoke ID");
    return CLI_USAGE;
}

int cmd_node_revoke(cli *c, const char *name)
{
    Jazari__NodeRevokeRequest q = JAZARI__NODE_REVOKE_REQUEST__INIT;
    q.name = (char *)name;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_NODE_REVOKE_REQUEST;
    req.node_revoke_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_NODE_REVOKE_REPLY, &status);
    if (!m)
        return status;
    wire_msg_free(m);
    if (c->json)
        printf("{\"revoked\": true}\n");
    else
        printf("node %s revoked: its connections are dropped and its certificates refused\n", name);
    return CLI_OK;
}

/* jz audit [--since WHEN] [--user NAME] [--limit N]: the trail of changes,
 * oldest first, page after page. */
int cmd_audit(cli *c, int argc, char **argv)
{
    const char *since = NULL, *user = NULL, *limit = NULL;
    const cli_opt opts[] = {{"since", CLI_STRING, &since},
                            {"user", CLI_STRING, &user},
                            {"limit", CLI_STRING, &limit},
                            {NULL, 0, NULL}};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__AuditRequest q = JAZARI__AUDIT_REQUEST__INIT;
    unsigned long most = 0;
    if ((since && cli_opt_since(c, since, &q.since_ms) != 0) ||
        (limit && cli_opt_count(c, "limit", limit, "records", 1000000, &most) != 0))
        return CLI_USAGE;
    q.user = (char *)(user ? user : "");
    buf b = BUF_INIT;
    json j;
    if (c->json) {
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "records");
        json_arr_begin(&j);
    } else {
        buf_printf(&b, "%-19s %-16s %-12s %-28s %s => %s\n", "TIME", "USER", "ROLE", "FROM", "WHAT",
                   "RESULT");
    }
    unsigned long shown = 0;
    for (bool more = true; more && (!most || shown < most);) {
        q.limit = most ? (uint32_t)(most - shown < 10000 ? most - shown : 10000) : 0;
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_AUDIT_REQUEST;
        req.audit_request = &q;
        int status;
        wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_AUDIT_REPLY, &status);
        if (!m) {
            buf_free(&b);
            return status;
        }
        const Jazari__AuditReply *r = wire_msg_env(m)->audit_reply;
        for (size_t i = 0; i < r->n_records; i++) {
            const Jazari__AuditRecord *k = r->records[i];
            if (c->json) {
                json_obj_begin(&j);
                json_kv_int(&j, "seq", (int64_t)k->seq);
                json_kv_int(&j, "at_ms", k->at_ms);
                json_kv_str(&j, "user", k->user);
                json_kv_str(&j, "role", k->role);
                json_kv_str(&j, "from", k->from);
                json_kv_str(&j, "what", k->what);
                json_kv_str(&j, "result", k->result);
                json_obj_end(&j);
            } else {
                char when[40];
                time_t t = (time_t)(k->at_ms / 1000);
                struct tm tm;
                if (!localtime_r(&t, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                    snprintf(when, sizeof when, "?");
                /* cli_flush escapes what could act on the terminal. */
                buf_printf(&b, "%-19s %-16s %-12s %-28s %s => %s\n", when, k->user, k->role, k->from, k->what,
                           k->result);
            }
        }
        shown += r->n_records;
        more = r->truncated && r->n_records > 0;
        if (more)
            q.after_seq = r->records[r->n_records - 1]->seq;
        wire_msg_free(m);
    }
    if (c->json) {
        json_arr_end(&j);
        json_obj_end(&j);
    }
    return cli_flush(&b);
}

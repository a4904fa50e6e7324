/* cmd_web.c - jz web: the dashboard's address with a session token. The
 * daemon decides who the caller is (the socket's account, or the
 * credentials), as for any request; a controller signs the token. */
#include <stdio.h>

#include "cli.h"

int cmd_web(cli *c, int argc, char **argv)
{
    const char *ttl = NULL;
    const cli_opt opts[] = {{"ttl", CLI_STRING, &ttl}, {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__WebRequest q = JAZARI__WEB_REQUEST__INIT;
    q.what = "token";
    uint64_t s = 0;
    if (ttl && (cli_parse_ttl(ttl, &s) != 0 || s > WIRE_WEB_TTL_MAX_S)) {
        cli_error(c, "bad --ttl '%.40s': a duration like 30m, 12h or 7d (at most 7 days)", ttl);
        return CLI_USAGE;
    }
    q.ttl_s = (uint32_t)s;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_WEB_REQUEST;
    req.web_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_WEB_REPLY, &status);
    if (!m)
        return status;
    const Jazari__WebReply *r = wire_msg_env(m)->web_reply;
    buf b = BUF_INIT;
    char when[40];
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, "url", r->url);
        json_kv_str(&j, "token", r->token);
        json_kv_str(&j, "user", r->user);
        json_kv_str(&j, "role", r->role);
        json_kv_str(&j, "expires", cli_utc_time(r->expires_ms, when, sizeof when));
        json_kv_int(&j, "expires_ms", r->expires_ms);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "%s\n", r->url);
        fprintf(stderr, "jz web: for %s (%s), until %s; whoever has this address sees what you see\n",
                r->user, r->role, cli_local_time(r->expires_ms, when, sizeof when));
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

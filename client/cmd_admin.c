/* cmd_admin.c - jz reserve, unreserve, reservations (advance reservations)
 * and jz shares (the fair-share tree). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define ADMIN_USERS_MAX 256

static int admin__count(cli *c, const char *opt, const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (s && (!isdigit((unsigned char)*s) || *end || errno || v == 0 || v > 1000000)) {
        cli_error(c, "bad --%s '%.40s': a whole number from 1 to 1000000", opt, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static void admin__time(buf *b, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char text[32];
    localtime_r(&t, &tm);
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_puts(b, text);
}

static void admin__resv_json(json *j, const Jazari__Reservation *r)
{
    json_obj_begin(j);
    json_kv_str(j, "name", r->name);
    json_kv_str(j, "account", r->account && *r->account ? r->account : NULL);
    json_key(j, "users");
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_users; i++)
        json_str(j, r->users[i]);
    json_arr_end(j);
    json_kv_int(j, "start_time", r->start_ms / 1000);
    json_kv_int(j, "end_time", r->end_ms / 1000);
    json_kv_uint(j, "gpus", r->gpus);
    json_key(j, "nodes_requested");
    if (r->nodes)
        json_uint(j, r->nodes);
    else
        json_null(j);
    json_kv_str(j, "gpu_model", r->gpu_model && *r->gpu_model ? r->gpu_model : NULL);
    json_kv_str(j, "site", r->site && *r->site ? r->site : NULL);
    json_key(j, "nodes");
    json_arr_begin(j);
    for (size_t i = 0; i < r->n_parts; i++) {
        json_obj_begin(j);
        json_kv_str(j, "name", r->parts[i]->node);
        json_kv_uint(j, "gpus", r->parts[i]->gpus);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

static void admin__resv_line(buf *b, const Jazari__Reservation *r)
{
    buf_printf(b, "%-16.16s %-20.20s ", r->name, r->account && *r->account ? r->account : "-");
    admin__time(b, r->start_ms);
    buf_putc(b, ' ');
    admin__time(b, r->end_ms);
    buf_printf(b, " %5u ", r->gpus);
    for (size_t i = 0; i < r->n_parts; i++)
        buf_printf(b, "%s%s:%u", i ? "," : "", r->parts[i]->node, r->parts[i]->gpus);
    if (r->n_users) {
        buf_puts(b, " users=");
        for (size_t i = 0; i < r->n_users; i++)
            buf_printf(b, "%s%s", i ? "," : "", r->users[i]);
    }
    buf_putc(b, '\n');
}

#define ADMIN_RESV_HEADER                                                                                    \
    "NAME             ACCOUNT              START               END                  GPUS NODES\n"

int cmd_reserve(cli *c, int argc, char **argv)
{
    const char *gpus = NULL, *nodes = NULL, *start = NULL, *duration = NULL, *account = NULL, *users = NULL,
               *model = NULL, *site = NULL;
    const cli_opt opts[] = {
        {"gpus", CLI_STRING, &gpus},         {"nodes", CLI_STRING, &nodes},     {"start", CLI_STRING, &start},
        {"duration", CLI_STRING, &duration}, {"account", CLI_STRING, &account}, {"users", CLI_STRING, &users},
        {"gpu-model", CLI_STRING, &model},   {"site", CLI_STRING, &site},       {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    int n = cli_parse(c, argc, argv, opts, pos, 1);
    if (n < 0)
        return CLI_USAGE;
    Jazari__ReserveRequest q = JAZARI__RESERVE_REQUEST__INIT;
    if (n != 1 || !duration || (!gpus == !nodes)) {
        cli_error(c, "usage: jz reserve NAME (--gpus N | --nodes N) --duration LIMIT [--start WHEN] "
                     "(--account A | --users U,...) [--gpu-model M] [--site S]");
        return CLI_USAGE;
    }
    uint64_t secs;
    if (cli_parse_time_limit(duration, &secs) != 0 || secs == 0) {
        cli_error(c, "bad --duration '%.40s': minutes (90), H:M:S (1:30:00) or D-H:M:S (7-00:00:00)",
                  duration);
        return CLI_USAGE;
    }
    if (start && cli_parse_when(start, &q.start_ms) != 0) {
        cli_error(c, "bad --start '%.40s': now, +DURATION (+2:00:00), YYYY-MM-DDTHH:MM[:SS] or @UNIX_SECONDS",
                  start);
        return CLI_USAGE;
    }
    if (admin__count(c, "gpus", gpus, &q.gpus) != 0 || admin__count(c, "nodes", nodes, &q.nodes) != 0)
        return CLI_USAGE;
    char *list[ADMIN_USERS_MAX];
    char *copy = users ? strdup(users) : NULL, *save = NULL;
    for (char *u = copy ? strtok_r(copy, ",", &save) : NULL; u; u = strtok_r(NULL, ",", &save)) {
        if (q.n_users == ADMIN_USERS_MAX) {
            cli_error(c, "bad --users: at most %d users (give the reservation to their account instead)",
                      ADMIN_USERS_MAX);
            free(copy);
            return CLI_USAGE;
        }
        list[q.n_users++] = u;
    }
    q.name = (char *)pos[0];
    q.duration_s = secs;
    q.account = (char *)(account ? account : "");
    q.users = list;
    q.gpu_model = (char *)(model ? model : "");
    q.site = (char *)(site ? site : "");
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_RESERVE_REQUEST;
    req.reserve_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_RESERVE_REPLY, &status);
    free(copy);
    if (!m)
        return status;
    const Jazari__Reservation *r = wire_msg_env(m)->reserve_reply->reservation;
    buf b = BUF_INIT;
    if (c->json && r) {
        json j;
        cli_json_begin(&j, &b);
        admin__resv_json(&j, r);
    } else if (r) {
        buf_puts(&b, ADMIN_RESV_HEADER);
        admin__resv_line(&b, r);
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

int cmd_unreserve(cli *c, int argc, char **argv)
{
    const char *pos[1];
    int n = cli_parse(c, argc, argv, NULL, pos, 1);
    if (n < 0)
        return CLI_USAGE;
    if (n != 1) {
        cli_error(c, "usage: jz unreserve NAME");
        return CLI_USAGE;
    }
    Jazari__UnreserveRequest q = JAZARI__UNRESERVE_REQUEST__INIT;
    q.name = (char *)pos[0];
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_UNRESERVE_REQUEST;
    req.unreserve_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_UNRESERVE_REPLY, &status);
    if (!m)
        return status;
    wire_msg_free(m);
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, "deleted", pos[0]);
        json_obj_end(&j);
    }
    return cli_flush(&b);
}

int cmd_reservations(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__ReservationsRequest q = JAZARI__RESERVATIONS_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_RESERVATIONS_REQUEST;
    req.reservations_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_RESERVATIONS_REPLY, &status);
    if (!m)
        return status;
    const Jazari__ReservationsReply *r = wire_msg_env(m)->reservations_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "reservations");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_reservations; i++)
            admin__resv_json(&j, r->reservations[i]);
        json_arr_end(&j);
        json_obj_end(&j);
    } else {
        buf_puts(&b, ADMIN_RESV_HEADER);
        for (size_t i = 0; i < r->n_reservations; i++)
            admin__resv_line(&b, r->reservations[i]);
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

int cmd_shares(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__SharesRequest q = JAZARI__SHARES_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_SHARES_REQUEST;
    req.shares_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_SHARES_REPLY, &status);
    if (!m)
        return status;
    const Jazari__SharesReply *r = wire_msg_env(m)->shares_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "accounts");
        json_arr_begin(&j);
        for (size_t i = 0; i < r->n_rows; i++) {
            const Jazari__ShareRow *x = r->rows[i];
            json_obj_begin(&j);
            json_kv_str(&j, "path", x->path);
            json_kv_uint(&j, "shares", x->shares);
            json_kv_double(&j, "norm_shares", x->norm_shares);
            json_kv_double(&j, "gpu_seconds", x->gpu_seconds);
            json_kv_double(&j, "norm_usage", x->norm_usage);
            json_kv_double(&j, "effective_usage", x->effective_usage);
            json_kv_double(&j, "fairshare", x->fairshare);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "%-36s %7s %9s %12s %9s %9s %9s\n", "ACCOUNT/USER", "SHARES", "NORM_SHR", "GPU_HOURS",
                   "NORM_USE", "EFF_USE", "FAIRSHARE");
        for (size_t i = 0; i < r->n_rows; i++) {
            const Jazari__ShareRow *x = r->rows[i];
            int depth = 0;
            for (const char *p = x->path; *p; p++)
                depth += *p == '/';
            const char *leaf = strrchr(x->path, '/') ? strrchr(x->path, '/') + 1 : x->path;
            buf_printf(&b, "%*s%-*.*s %7u %9.4f %12.1f %9.4f %9.4f %9.4f\n", 2 * depth, "", 36 - 2 * depth,
                       36 - 2 * depth, leaf, x->shares, x->norm_shares, x->gpu_seconds / 3600.0,
                       x->norm_usage, x->effective_usage, x->fairshare);
        }
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

/* cmd_info.c - jz ping: is the local daemon there, and who is it. */
#include <stdio.h>

#include "cli.h"

int cmd_ping(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    cli_conn *k = cli_connect(c);
    if (!k)
        return CLI_REFUSED;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_kv_str(&j, "name", cli_daemon_name(k));
        json_kv_str(&j, "site", cli_daemon_site(k));
        json_kv_str(&j, "role", cli_daemon_role(k));
        json_kv_str(&j, "version", cli_daemon_version(k));
        json_kv_int(&j, "protocol", WIRE_PROTOCOL_VERSION);
        json_obj_end(&j);
    } else {
        buf_printf(&b, "jazarid %s on %s (site %s, %s), protocol %d\n", cli_daemon_version(k),
                   cli_daemon_name(k), cli_daemon_site(k), cli_daemon_role(k), WIRE_PROTOCOL_VERSION);
    }
    cli_close(k);
    return cli_flush(&b);
}

int cmd_status(cli *c, int argc, char **argv)
{
    const char *pos[1];
    if (cli_parse(c, argc, argv, NULL, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__StatusRequest sr = JAZARI__STATUS_REQUEST__INIT;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_STATUS_REQUEST;
    req.status_request = &sr;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_STATUS_REPLY, &status);
    if (!m)
        return status;
    const Jazari__StatusReply *r = wire_msg_env(m)->status_reply;
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        view_status(&j, r);
    } else {
        buf_printf(&b, "leader:       %s\nterm:         %llu\ncommit index: %llu\n",
                   r->leader && *r->leader ? r->leader : "(none elected)", (unsigned long long)r->term,
                   (unsigned long long)r->commit_index);
        if (r->election_timeout_ms)
            buf_printf(&b, "election:     %u ms timeout (round trip to the farthest controller: %u ms)\n",
                       r->election_timeout_ms, r->peer_rtt_ms);
        /* 0: a controller of a release before 0.6 answered. */
        if (r->log_format && r->log_format >= r->log_format_newest)
            buf_printf(&b, "log format:   %u (the newest this release writes)\n", r->log_format);
        else if (r->log_format)
            buf_printf(&b,
                       "log format:   %u (this release writes up to %u: waiting for every controller to "
                       "announce it, or held back by the log_format setting)\n",
                       r->log_format, r->log_format_newest);
        buf_printf(&b, "nodes:        %u up of %u\njobs:         %llu pending or running\ncontrollers:\n",
                   r->nodes_up, r->nodes_total, (unsigned long long)r->jobs_active);
        for (size_t i = 0; i < r->n_controllers; i++) {
            const Jazari__ControllerInfo *ci = r->controllers[i];
            if (ci->software_version && *ci->software_version)
                buf_printf(&b, "  %-20s %-22s %-11s %s\n", ci->name, ci->address, ci->role,
                           ci->software_version);
            else
                buf_printf(&b, "  %-20s %-22s %s\n", ci->name, ci->address, ci->role);
        }
        if (r->problem && *r->problem)
            buf_printf(&b, "problem:      %s\n", r->problem);
    }
    wire_msg_free(m);
    return cli_flush(&b);
}

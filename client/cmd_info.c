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
        buf_printf(&b, "jazarid %s on %s (site %s, %s), protocol %d\n", cli_daemon_version(k), cli_daemon_name(k),
                   cli_daemon_site(k), cli_daemon_role(k), WIRE_PROTOCOL_VERSION);
    }
    cli_close(k);
    return cli_flush(&b);
}

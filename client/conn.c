/* conn.c - jz's blocking connection to the local daemon's Unix socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/paths.h"
#include "cli.h"

/* Replies bigger than this are refused: the client trusts its daemon, but
 * not without bound. */
#define CLI_MAX_FRAME (256u << 20)
#define CLI_DEFAULT_TIMEOUT_S 30.0

struct cli_conn {
    const cli *cli;
    int fd;
    char *path;
    uint64_t next_id;
    wire_reader reader;
    wire_msg *hello;
};

static double cli__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cli__write_all(cli_conn *k, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(k->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            cli_error(k->cli, "cannot send to jazarid at %s: %s", k->path, strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until a whole frame is buffered; returns its decoded message. */
static wire_msg *cli__read_msg(cli_conn *k)
{
    double timeout = k->cli->timeout_s > 0 ? k->cli->timeout_s : CLI_DEFAULT_TIMEOUT_S;
    double deadline = cli__now() + timeout;
    for (;;) {
        const uint8_t *payload;
        size_t len;
        wire_status ws = wire_reader_next(&k->reader, &payload, &len);
        if (ws == WIRE_FRAME) {
            char err[160];
            wire_msg *m = wire_unpack(payload, len, err, sizeof err);
            if (!m)
                cli_error(k->cli, "jazarid at %s sent a bad reply: %s", k->path, err);
            return m;
        }
        if (ws == WIRE_TOO_LARGE) {
            cli_error(k->cli, "jazarid at %s sent a reply of %zu bytes, over the limit of %u", k->path, len,
                      CLI_MAX_FRAME);
            return NULL;
        }
        double left = deadline - cli__now();
        if (left <= 0) {
            cli_error(k->cli, "jazarid at %s did not answer within %.0f s (--timeout)", k->path, timeout);
            return NULL;
        }
        struct pollfd pfd = {.fd = k->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        char tmp[65536];
        ssize_t r = recv(k->fd, tmp, sizeof tmp, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            cli_error(k->cli, "jazarid at %s closed the connection%s%s", k->path, r < 0 ? ": " : "",
                      r < 0 ? strerror(errno) : " (see its log)");
            return NULL;
        }
        wire_reader_feed(&k->reader, tmp, (size_t)r);
    }
}

wire_msg *cli_call(cli_conn *k, Jazari__Envelope *req)
{
    req->request_id = ++k->next_id;
    req->version = WIRE_PROTOCOL_VERSION;
    buf b = BUF_INIT;
    wire_pack(req, &b);
    int rc = cli__write_all(k, b.data, b.len);
    buf_free(&b);
    if (rc != 0)
        return NULL;
    wire_msg *m = cli__read_msg(k);
    if (m && wire_msg_env(m)->request_id != req->request_id) {
        cli_error(k->cli, "jazarid at %s answered request %llu instead of %llu", k->path,
                  (unsigned long long)wire_msg_env(m)->request_id, (unsigned long long)req->request_id);
        wire_msg_free(m);
        return NULL;
    }
    return m;
}

bool cli_refused(const cli *c, const wire_msg *reply)
{
    const Jazari__Envelope *e = wire_msg_env(reply);
    if (!e->error || e->error->code == JAZARI__ERROR_CODE__OK)
        return false;
    if (e->error->message && *e->error->message) {
        cli_error(c, "%s", e->error->message);
    } else {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&jazari__error_code__descriptor, (int)e->error->code);
        cli_error(c, "refused (%s)", v ? v->name : "unknown error");
    }
    return true;
}

cli_conn *cli_connect(const cli *c)
{
    cli_conn *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->cli = c;
    k->fd = -1;
    wire_reader_init(&k->reader, CLI_MAX_FRAME);
    const char *env = getenv("JAZARI_SOCKET");
    if (c->socket)
        k->path = strdup(c->socket);
    else if (env && *env)
        k->path = strdup(env);
    else
        k->path = paths_default_socket();

    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(k->path) >= sizeof sun.sun_path) {
        cli_error(c, "socket path '%.60s...' is too long (at most %zu bytes)", k->path,
                  sizeof sun.sun_path - 1);
        goto fail;
    }
    memcpy(sun.sun_path, k->path, strlen(k->path) + 1);
    k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        cli_error(c, "cannot reach jazarid at %s: %s (is jazarid running? set --socket or JAZARI_SOCKET)",
                  k->path, strerror(errno));
        goto fail;
    }
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    Jazari__Hello h = JAZARI__HELLO__INIT;
    h.protocol_version = WIRE_PROTOCOL_VERSION;
    h.software_version = JZ_VERSION " (" JZ_GIT_REV ")";
    h.kind = JAZARI__PEER_KIND__PEER_CLIENT;
    req.body_case = JAZARI__ENVELOPE__BODY_HELLO;
    req.hello = &h;
    k->hello = cli_call(k, &req);
    if (!k->hello)
        goto fail;
    if (cli_refused(c, k->hello))
        goto fail;
    if (wire_msg_env(k->hello)->body_case != JAZARI__ENVELOPE__BODY_HELLO_REPLY) {
        cli_error(c, "jazarid at %s answered hello with %s", k->path, wire_body_name(wire_msg_env(k->hello)));
        goto fail;
    }
    return k;
fail:
    cli_close(k);
    return NULL;
}

void cli_close(cli_conn *k)
{
    if (!k)
        return;
    if (k->fd >= 0)
        close(k->fd);
    wire_msg_free(k->hello);
    wire_reader_free(&k->reader);
    free(k->path);
    free(k);
}

static const Jazari__HelloReply *cli__hello(const cli_conn *k)
{
    return wire_msg_env(k->hello)->hello_reply;
}

const char *cli_daemon_name(const cli_conn *k)
{
    return cli__hello(k)->name;
}
const char *cli_daemon_version(const cli_conn *k)
{
    return cli__hello(k)->software_version;
}
const char *cli_daemon_role(const cli_conn *k)
{
    return cli__hello(k)->role;
}
const char *cli_daemon_site(const cli_conn *k)
{
    return cli__hello(k)->site;
}

wire_msg *cli_request(cli *c, Jazari__Envelope *req, Jazari__Envelope__BodyCase want, int *status)
{
    *status = CLI_REFUSED;
    cli_conn *k = cli_connect(c);
    if (!k)
        return NULL;
    wire_msg *m = cli_call(k, req);
    cli_close(k);
    if (!m)
        return NULL;
    if (cli_refused(c, m)) {
        wire_msg_free(m);
        return NULL;
    }
    if (wire_msg_env(m)->body_case != want) {
        cli_error(c, "the daemon answered with %s", wire_body_name(wire_msg_env(m)));
        wire_msg_free(m);
        return NULL;
    }
    *status = CLI_OK;
    return m;
}

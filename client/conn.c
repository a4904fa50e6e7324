/* conn.c - jz's blocking connection to the local daemon's Unix socket, or
 * over TLS to a controller with a person's credentials. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../common/cred.h"
#include "../common/paths.h"
#include "../common/tlsio.h"
#include "cli.h"

/* Replies bigger than this are refused: the client trusts its daemon, but
 * not without bound. */
#define CLI_MAX_FRAME (256u << 20)
#define CLI_DEFAULT_TIMEOUT_S 30.0

struct cli_conn {
    const cli *cli;
    int fd;
    char *path; /* the socket, or the server's host:port */
    tls *tls;   /* remote: the TLS session */
    cred cred;  /* remote: the credentials */
    uint64_t next_id;
    wire_reader reader;
    wire_msg *hello;
    bool quiet; /* trying a server of several: its failure is not the last word */
};

/* cli_error, unless another server is still to be tried. */
#define cli__err(k, ...)                                                                                     \
    do {                                                                                                     \
        if (!(k)->quiet)                                                                                     \
            cli_error((k)->cli, __VA_ARGS__);                                                                \
    } while (0)

static double cli__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cli__write_all(cli_conn *k, const char *p, size_t n)
{
    char err[300];
    if (tlsio_send(k->fd, k->tls, p, n, err, sizeof err) != 0) {
        cli__err(k, "cannot send to jazarid at %s: %s", k->path, err);
        return -1;
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
                cli__err(k, "jazarid at %s sent a bad reply: %s", k->path, err);
            return m;
        }
        if (ws == WIRE_TOO_LARGE) {
            cli__err(k, "jazarid at %s sent a reply of %zu bytes, over the limit of %u", k->path, len,
                     CLI_MAX_FRAME);
            return NULL;
        }
        double left = deadline - cli__now();
        if (left <= 0) {
            cli__err(k, "jazarid at %s did not answer within %.0f s (--timeout)", k->path, timeout);
            return NULL;
        }
        buf plain = BUF_INIT;
        char err[300];
        int rc = tlsio_recv(k->fd, k->tls, &plain, (int)(left * 1000) + 1, err, sizeof err);
        wire_reader_feed(&k->reader, plain.data, plain.len);
        buf_free(&plain);
        if (rc > 0 && k->tls && !k->hello) {
            cli__err(k,
                     "jazarid at %s closed the connection before answering: it refused the credentials "
                     "(revoked, expired, or not of its network; ask an admin for new ones)",
                     k->path);
            return NULL;
        }
        if (rc != 0) {
            cli__err(k, "jazarid at %s closed the connection%s%s", k->path, rc < 0 ? ": " : "",
                     rc < 0 ? err : " (see its log)");
            return NULL;
        }
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
        cli__err(k, "jazarid at %s answered request %llu instead of %llu", k->path,
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
        /* A daemon's message may name the command itself ("jz invoice:
         * ..."): cli_error says it already, once. */
        const char *m = e->error->message;
        size_t n = c->command ? strlen(c->command) : 0;
        if (n && strncmp(m, "jz ", 3) == 0 && strncmp(m + 3, c->command, n) == 0 &&
            strncmp(m + 3 + n, ": ", 2) == 0)
            m += 3 + n + 2;
        cli_error(c, "%s", m);
    } else {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&jazari__error_code__descriptor, (int)e->error->code);
        cli_error(c, "refused (%s)", v ? v->name : "unknown error");
    }
    return true;
}

/* Exchanges hellos. 0, or -1 after printing why. */
static int cli__greet(cli_conn *k)
{
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    Jazari__Hello h = JAZARI__HELLO__INIT;
    h.protocol_version = WIRE_PROTOCOL_VERSION;
    h.software_version = JZ_VERSION " (" JZ_GIT_REV ")";
    h.kind = JAZARI__PEER_KIND__PEER_CLIENT;
    req.body_case = JAZARI__ENVELOPE__BODY_HELLO;
    req.hello = &h;
    k->hello = cli_call(k, &req);
    if (!k->hello)
        return -1;
    const Jazari__Error *err = wire_msg_env(k->hello)->error;
    if (err && err->code != JAZARI__ERROR_CODE__OK)
        return k->quiet ? -1 : (cli_refused(k->cli, k->hello), -1);
    if (wire_msg_env(k->hello)->body_case != JAZARI__ENVELOPE__BODY_HELLO_REPLY) {
        cli__err(k, "jazarid at %s answered hello with %s", k->path, wire_body_name(wire_msg_env(k->hello)));
        return -1;
    }
    return 0;
}

/* Drops the connection (to dial another daemon with the same credentials). */
static void cli__reset(cli_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    tls_free(k->tls);
    k->tls = NULL;
    wire_msg_free(k->hello);
    k->hello = NULL;
    wire_reader_free(&k->reader);
    wire_reader_init(&k->reader, CLI_MAX_FRAME);
}

/* The credentials file named by --credentials or $JAZARI_CREDENTIALS, if any. */
static const char *cli__cred_path(const cli *c)
{
    const char *env = getenv("JAZARI_CREDENTIALS");
    return c->credentials ? c->credentials : env && *env ? env : NULL;
}

/* A TLS connection to server (a controller's host:port), as the person of
 * the credentials file. 0, or -1 after printing why. */
static int cli__dial(cli_conn *k, const char *server)
{
    char err[400];
    free(k->path);
    k->path = strdup(server);
    k->fd = tlsio_dial(server, 5000, err, sizeof err);
    if (k->fd < 0) {
        cli__err(k, "%s (is the server right? --server or JAZARI_SERVER)", err);
        return -1;
    }
    tls_ctx *ctx = tls_ctx_new(false, k->cred.ca, k->cred.cert, k->cred.key, NULL, err, sizeof err);
    if (!ctx) {
        cli__err(k, "credentials: %s", err);
        return -1;
    }
    k->tls = tls_new(ctx);
    tls_ctx_free(ctx);
    return 0;
}

/* Remote: the credentials file, then the server (--server, $JAZARI_SERVER,
 * else the file's first). 0, or -1 after printing why. */
static int cli__remote(cli_conn *k, const char *path)
{
    const cli *c = k->cli;
    char err[300];
    buf text = BUF_INIT;
    int rc = pki_read_file(path, CRED_FILE_MAX, &text, err, sizeof err);
    if (rc != 0) {
        cli_error(c, "credentials %s: %s", path, rc > 0 ? "no such file" : err);
        buf_free(&text);
        return -1;
    }
    rc = cred_parse(text.data ? text.data : "", text.len, &k->cred, err, sizeof err);
    OPENSSL_cleanse(text.data, text.len);
    buf_free(&text);
    if (rc != 0) {
        cli_error(c, "credentials %s: %s (make them again with jz token create --user)", path, err);
        return -1;
    }
    if (k->cred.expires && k->cred.expires < (int64_t)time(NULL)) {
        cli_error(c, "credentials %s expired: ask an admin for new ones (jz token create --user %s)", path,
                  k->cred.user);
        return -1;
    }
    const char *env = getenv("JAZARI_SERVER");
    const char *server = c->server ? c->server : env && *env ? env : NULL;
    if (server)
        return cli__dial(k, server) == 0 && cli__greet(k) == 0 ? 0 : -1;
    /* The file's controllers in turn: one may be down, or a follower that has
     * not yet applied credentials made a moment ago (it refuses them). Only
     * the last failure is said. */
    for (int i = 0; i < k->cred.n_servers; i++) {
        k->quiet = i + 1 < k->cred.n_servers;
        if (cli__dial(k, k->cred.servers[i]) == 0 && cli__greet(k) == 0) {
            k->quiet = false;
            return 0;
        }
        cli__reset(k);
    }
    k->quiet = false;
    return -1;
}

cli_conn *cli_connect(const cli *c)
{
    cli_conn *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->cli = c;
    k->fd = -1;
    wire_reader_init(&k->reader, CLI_MAX_FRAME);
    const char *credpath = cli__cred_path(c);
    if (credpath || c->server) {
        if (!credpath) {
            cli_error(c, "--server needs --credentials FILE (or JAZARI_CREDENTIALS): made by an admin with "
                         "jz token create --user NAME");
            goto fail;
        }
        if (cli__remote(k, credpath) != 0)
            goto fail;
        return k;
    }
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
    if (cli__greet(k) != 0)
        goto fail;
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
    tls_free(k->tls);
    cred_free(&k->cred);
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
    wire_msg *m = cli_request_raw(c, req, status);
    *status = CLI_REFUSED;
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

wire_msg *cli_request_raw(cli *c, Jazari__Envelope *req, int *status)
{
    *status = CLI_REFUSED;
    cli_conn *k = cli_connect(c);
    if (!k)
        return NULL;
    wire_msg *m = cli_call(k, req);
    /* Remote: a write goes to the leader; a follower names it. */
    for (int hop = 0; m && k->tls && hop < 3; hop++) {
        const Jazari__Envelope *e = wire_msg_env(m);
        if (!e->error || e->error->code != JAZARI__ERROR_CODE__NOT_LEADER || !e->error->leader ||
            !*e->error->leader)
            break;
        char leader[256];
        snprintf(leader, sizeof leader, "%s", e->error->leader);
        wire_msg_free(m);
        m = NULL;
        cli__reset(k);
        if (cli__dial(k, leader) == 0 && cli__greet(k) == 0)
            m = cli_call(k, req);
    }
    cli_close(k);
    if (m)
        *status = CLI_OK;
    return m;
}

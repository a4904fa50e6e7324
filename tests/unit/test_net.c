/* test_net.c - the listeners and framed connections on a real libuv loop:
 * frames in, replies out, a bad peer closed alone, and a loop that closes
 * with nothing left open. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/net/net.h"
#include "test.h"

typedef struct fixture {
    uv_loop_t loop;
    net_server server;
    int messages;
    int closed;
    bool server_closed;
} fixture;

/* Echoes each request's id back in a hello reply. */
static void on_message(net_conn *c, wire_msg *m, void *data)
{
    fixture *f = data;
    f->messages++;
    wire_reply r;
    wire_reply_init(&r, wire_msg_env(m)->request_id, JAZARI__ERROR_CODE__OK, NULL);
    Jazari__HelloReply hr = JAZARI__HELLO_REPLY__INIT;
    hr.name = "unit";
    r.env.body_case = JAZARI__ENVELOPE__BODY_HELLO_REPLY;
    r.env.hello_reply = &hr;
    net_conn_send(c, &r.env);
    wire_msg_free(m);
}

static void on_close(net_conn *c, void *data)
{
    ((fixture *)data)->closed++;
}

static void on_server_closed(net_server *s)
{
    fixture *f = (fixture *)((char *)s - offsetof(fixture, server));
    f->server_closed = true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Turns the loop until *flag reaches want, for at most 5 seconds. */
static bool run_until(fixture *f, const int *counter, int want)
{
    double deadline = now_s() + 5;
    while (*counter < want) {
        if (now_s() > deadline)
            return false;
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return true;
}

static int tcp_client(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void send_hello(int fd, uint64_t id)
{
    Jazari__Envelope e = JAZARI__ENVELOPE__INIT;
    Jazari__Hello h = JAZARI__HELLO__INIT;
    e.request_id = id;
    e.body_case = JAZARI__ENVELOPE__BODY_HELLO;
    e.hello = &h;
    buf b = BUF_INIT;
    wire_pack(&e, &b);
    ssize_t n = write(fd, b.data, b.len);
    CHECK_EQ_INT(n, (ssize_t)b.len);
    buf_free(&b);
}

TEST(net_serves_and_closes_bad_peers_alone)
{
    fixture f;
    memset(&f, 0, sizeof f);
    log_set_level(LOG_ERROR);
    REQUIRE(uv_loop_init(&f.loop) == 0);
    net_handlers h = {.on_message = on_message, .on_close = on_close, .data = &f};
    net_server_init(&f.server, &f.loop, &h, NULL, 4096);
    char err[256];
    REQUIRE(net_server_listen_tcp(&f.server, "127.0.0.1", 0, err, sizeof err) == 0);
    struct sockaddr_in sa;
    int len = sizeof sa;
    uv_tcp_getsockname(&f.server.tcp, (struct sockaddr *)&sa, &len);
    uint16_t port = ntohs(sa.sin_port);

    int good = tcp_client(port), bad = tcp_client(port);
    REQUIRE(good >= 0 && bad >= 0);
    send_hello(good, 1);
    send_hello(good, 2);
    CHECK(run_until(&f, &f.messages, 2));

    /* A frame over the maximum: that connection, and only it, is closed. */
    const uint8_t big[4] = {0, 0, 0x20, 0};
    CHECK_EQ_INT(write(bad, big, sizeof big), 4);
    CHECK(run_until(&f, &f.closed, 1));
    CHECK_EQ_INT(f.server.n_conns, 1);
    char tmp[16];
    double deadline = now_s() + 5;
    ssize_t r;
    while ((r = read(bad, tmp, sizeof tmp)) < 0 && errno == EAGAIN && now_s() < deadline)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(r, 0); /* EOF: the daemon hung up */

    /* The good one still gets answers: both replies, in order. */
    send_hello(good, 3);
    CHECK(run_until(&f, &f.messages, 3));
    wire_reader rd;
    wire_reader_init(&rd, 1 << 20);
    int replies = 0;
    deadline = now_s() + 5;
    while (replies < 3 && now_s() < deadline) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        char b[4096];
        ssize_t n = read(good, b, sizeof b);
        if (n > 0)
            wire_reader_feed(&rd, b, (size_t)n);
        const uint8_t *p;
        size_t plen;
        while (wire_reader_next(&rd, &p, &plen) == WIRE_FRAME) {
            wire_msg *m = wire_unpack(p, plen, err, sizeof err);
            REQUIRE(m != NULL);
            CHECK_EQ_INT(wire_msg_env(m)->request_id, ++replies);
            wire_msg_free(m);
        }
    }
    CHECK_EQ_INT(replies, 3);
    wire_reader_free(&rd);

    net_server_close(&f.server, on_server_closed);
    deadline = now_s() + 5;
    while (!f.server_closed && now_s() < deadline)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK(f.server_closed);
    CHECK_EQ_INT(f.closed, 2);
    CHECK_EQ_INT(uv_loop_close(&f.loop), 0);
    close(good);
    close(bad);
    log_set_level(LOG_INFO);
}

TEST(net_unix_socket_refuses_a_live_one)
{
    fixture f, g;
    memset(&f, 0, sizeof f);
    memset(&g, 0, sizeof g);
    log_set_level(LOG_ERROR);
    char dir[] = "/tmp/jz-net-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    uv_loop_init(&f.loop);
    uv_loop_init(&g.loop);
    net_handlers h = {.on_message = on_message, .on_close = on_close, .data = &f};
    net_server_init(&f.server, &f.loop, &h, NULL, 4096);
    net_server_init(&g.server, &g.loop, &h, NULL, 4096);
    char err[256];
    REQUIRE(net_server_listen_unix(&f.server, path, err, sizeof err) == 0);
    CHECK(net_server_listen_unix(&g.server, path, err, sizeof err) != 0);
    CHECK(strstr(err, "another jazarid is serving it") != NULL);
    net_server_close(&f.server, on_server_closed);
    net_server_close(&g.server, on_server_closed);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    CHECK(f.server_closed && g.server_closed);
    CHECK(access(path, F_OK) != 0); /* the socket file is gone */
    CHECK_EQ_INT(uv_loop_close(&f.loop), 0);
    /* A stale socket file (nobody serving) is replaced. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
    close(fd);
    memset(&f, 0, sizeof f);
    uv_loop_init(&f.loop);
    net_server_init(&f.server, &f.loop, &h, NULL, 4096);
    CHECK(net_server_listen_unix(&f.server, path, err, sizeof err) == 0);
    net_server_close(&f.server, on_server_closed);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&f.loop), 0);
    CHECK_EQ_INT(uv_loop_close(&g.loop), 0);
    rmdir(dir);
    log_set_level(LOG_INFO);
}

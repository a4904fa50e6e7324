/* bench_submit.c - acknowledged submissions per second against a running
 * controller, from many concurrent connections each keeping a window of
 * requests in flight; and the fsync rate of the same disk, measured in the
 * same run, to print jobs per fsync.
 *
 *   bench-submit SOCKET STATE_DIR [CONNECTIONS] [JOBS] [WINDOW] [GPUS]
 *
 * Jobs are held (queued, never run: the queue is measured), or, with GPUS
 * above 0, ready jobs asking that many GPUs for an hour (the network may
 * have none free: a queue the scheduler walks). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/wire.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct client {
    int fd;
    wire_reader rd;
    long sent, acked;
} client;

static void send_env(int fd, Jazari__Envelope *e)
{
    buf b = BUF_INIT;
    wire_pack(e, &b);
    for (size_t off = 0; off < b.len;) {
        ssize_t n = write(fd, b.data + off, b.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("write");
            exit(1);
        }
        off += (size_t)n;
    }
    buf_free(&b);
}

static unsigned bench_gpus; /* 0: held jobs */

static void send_submit(client *c, uint64_t id)
{
    static char *argv[] = {"true"};
    Jazari__JobSpec spec = JAZARI__JOB_SPEC__INIT;
    spec.name = "bench";
    spec.argv = argv;
    spec.n_argv = 1;
    spec.workdir = "/tmp";
    spec.hold = bench_gpus == 0; /* queued, never run: the benchmark measures the queue */
    spec.gpus_per_node = bench_gpus;
    spec.time_limit_s = bench_gpus ? 3600 : 0;
    Jazari__SubmitRequest sr = JAZARI__SUBMIT_REQUEST__INIT;
    sr.spec = &spec;
    Jazari__Envelope e = JAZARI__ENVELOPE__INIT;
    e.request_id = id;
    e.version = WIRE_PROTOCOL_VERSION;
    e.body_case = JAZARI__ENVELOPE__BODY_SUBMIT_REQUEST;
    e.submit_request = &sr;
    send_env(c->fd, &e);
    c->sent++;
}

/* fsyncs per second of 4 KiB appends in dir, over about a second. */
static double fsync_rate(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return 0;
    }
    char block[4096];
    memset(block, 'x', sizeof block);
    double t0 = now();
    long n = 0;
    while (now() - t0 < 1.0) {
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fdatasync(fd) != 0)
            break;
        n++;
    }
    double rate = (double)n / (now() - t0);
    close(fd);
    unlink(path);
    return rate;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-submit SOCKET STATE_DIR [CONNECTIONS] [JOBS] [WINDOW]\n");
        return 2;
    }
    int nconn = argc > 3 ? atoi(argv[3]) : 32;
    long total = argc > 4 ? atol(argv[4]) : 50000;
    int window = argc > 5 ? atoi(argv[5]) : 64;
    bench_gpus = argc > 6 ? (unsigned)atoi(argv[6]) : 0;
    client *cs = calloc((size_t)nconn, sizeof *cs);
    struct pollfd *pfd = calloc((size_t)nconn, sizeof *pfd);
    long per = total / nconn;
    for (int i = 0; i < nconn; i++) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", argv[1]);
        cs[i].fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(cs[i].fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
            perror(argv[1]);
            return 1;
        }
        wire_reader_init(&cs[i].rd, 1 << 20);
        Jazari__Hello h = JAZARI__HELLO__INIT;
        h.protocol_version = WIRE_PROTOCOL_VERSION;
        h.kind = JAZARI__PEER_KIND__PEER_CLIENT;
        Jazari__Envelope e = JAZARI__ENVELOPE__INIT;
        e.request_id = 0;
        e.body_case = JAZARI__ENVELOPE__BODY_HELLO;
        e.hello = &h;
        send_env(cs[i].fd, &e);
        cs[i].acked = -1; /* the hello reply */
        pfd[i].fd = cs[i].fd;
        pfd[i].events = POLLIN;
    }
    double t0 = now();
    long acked = 0, refused = 0;
    for (int i = 0; i < nconn; i++)
        while (cs[i].sent < per && cs[i].sent < window)
            send_submit(&cs[i], (uint64_t)cs[i].sent + 1);
    while (acked + refused < per * nconn) {
        if (poll(pfd, (nfds_t)nconn, 30000) <= 0) {
            fprintf(stderr, "bench-submit: no progress for 30 s (%ld acknowledged)\n", acked);
            return 1;
        }
        for (int i = 0; i < nconn; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP)))
                continue;
            char tmp[65536];
            ssize_t n = read(cs[i].fd, tmp, sizeof tmp);
            if (n <= 0) {
                fprintf(stderr, "bench-submit: the daemon closed a connection\n");
                return 1;
            }
            wire_reader_feed(&cs[i].rd, tmp, (size_t)n);
            const uint8_t *p;
            size_t len;
            while (wire_reader_next(&cs[i].rd, &p, &len) == WIRE_FRAME) {
                char err[160];
                wire_msg *m = wire_unpack(p, len, err, sizeof err);
                if (m && wire_msg_env(m)->body_case == JAZARI__ENVELOPE__BODY_SUBMIT_REPLY)
                    acked++;
                else if (cs[i].acked >= 0 || !m ||
                         wire_msg_env(m)->body_case != JAZARI__ENVELOPE__BODY_HELLO_REPLY)
                    refused++;
                cs[i].acked++;
                wire_msg_free(m);
                if (cs[i].sent < per)
                    send_submit(&cs[i], (uint64_t)cs[i].sent + 1);
            }
        }
    }
    double secs = now() - t0;
    double rate = (double)acked / secs;
    double fs = fsync_rate(argv[2]);
    printf("durable submissions: %.0f jobs/s acknowledged (%ld in %.2f s, %d connections, %ld refused); "
           "%.1f jobs per fsync (fsync rate %.0f/s)\n",
           rate, acked, secs, nconn, refused, fs > 0 ? rate / fs : 0, fs);
    for (int i = 0; i < nconn; i++) {
        close(cs[i].fd);
        wire_reader_free(&cs[i].rd);
    }
    free(cs);
    free(pfd);
    return refused ? 1 : 0;
}

/* tlsio.c - blocking I/O through a TLS engine. */
#include "tlsio.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int tlsio_dial(const char *hostport, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(hostport, ':');
    const char *h = hostport;
    size_t hn = colon ? (size_t)(colon - hostport) : 0;
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    if (!colon || hn == 0 || hn >= sizeof host || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port) {
        snprintf(err, errlen, "'%.100s' is not HOST:PORT", hostport);
        return -1;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "cannot reach %s", hostport);
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            snprintf(err, errlen, "cannot reach %s: %s", hostport, strerror(errno));
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
            snprintf(err, errlen, "cannot reach %s: %s", hostport, soerr ? strerror(soerr) : "timed out");
            close(fd);
            fd = -1;
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        break;
    }
    freeaddrinfo(ai);
    return fd;
}

static int tlsio__write_all(int fd, const char *p, size_t n, char *err, size_t errlen)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(err, errlen, "cannot send: %s", strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int tlsio__flush(int fd, tls *t, char *err, size_t errlen)
{
    buf out = BUF_INIT;
    tls_take(t, &out);
    int rc = tlsio__write_all(fd, out.data, out.len, err, errlen);
    buf_free(&out);
    return rc;
}

int tlsio_send(int fd, tls *t, const void *p, size_t n, char *err, size_t errlen)
{
    if (!t)
        return tlsio__write_all(fd, p, n, err, errlen);
    if (tls_write(t, p, n) != 0) {
        snprintf(err, errlen, "%s", tls_error(t));
        return -1;
    }
    return tlsio__flush(fd, t, err, errlen);
}

int tlsio_recv(int fd, tls *t, buf *plain, int timeout_ms, char *err, size_t errlen)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, timeout_ms);
    if (pr < 0 && errno != EINTR) {
        snprintf(err, errlen, "poll: %s", strerror(errno));
        return -1;
    }
    if (pr <= 0)
        return 0;
    char tmp[65536];
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r < 0 && errno == EINTR)
        return 0;
    if (r < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    if (r == 0) {
        if (t && !tls_ready(t)) {
            snprintf(err, errlen, "the connection closed during the TLS handshake: it refused our certificate "
                                  "(revoked, expired, or of another network), or it is not a Jazari daemon");
            return -1;
        }
        return 1;
    }
    if (!t) {
        buf_append(plain, tmp, (size_t)r);
        return 0;
    }
    tls_feed(t, tmp, (size_t)r);
    int rc = tls_step(t, plain);
    if (tlsio__flush(fd, t, err, errlen) != 0)
        return -1;
    if (rc < 0) {
        snprintf(err, errlen, "%s", tls_error(t));
        return -1;
    }
    return rc;
}

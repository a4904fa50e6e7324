/* http.h - the daemon's HTTP listener (GET /metrics and what the admins'
 * pages will add): h2o's HTTP/1.1 server on the daemon's own libuv loop.
 *
 * h2o parses and answers; this module owns the TCP listener and the
 * connections, a route table (exact path -> handler), and the limits that
 * keep a stranger's requests cheap: a cap on connections at once (the ones
 * beyond it are closed as they are accepted), on a request's head (431)
 * and body (413), GET and HEAD only (405), and an idle timeout. It knows
 * nothing of the scheduler: the daemon registers the handlers.
 *
 * Handlers run on the loop and answer at once from memory: they must not
 * block (no disk, no network). */
#ifndef JZ_HTTP_H
#define JZ_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../../common/buf.h"

#define HTTP_ROUTES_MAX 32
#define HTTP_PATH_MAX 256

typedef struct http_server http_server;

typedef struct http_limits {
    unsigned max_conns; /* connections at once (0: HTTP_DEFAULT_CONNS) */
    uint64_t idle_ms;   /* a connection with no whole request for this long is closed (0: the default) */
    size_t max_head;    /* request line and headers together (0: the default); beyond: 431 */
    size_t max_body;    /* a request's body (GET and HEAD need none); beyond: 413 */
} http_limits;

#define HTTP_DEFAULT_CONNS 64
#define HTTP_DEFAULT_IDLE_MS 10000
#define HTTP_DEFAULT_HEAD (16u << 10)
#define HTTP_DEFAULT_BODY 1024

/* A page: fills body (empty on entry) and *content_type (a static string;
 * left NULL: text/plain) and returns the HTTP status (200; or 503 when the
 * page cannot be made now, with a line of text saying why). */
typedef int (*http_handler)(void *arg, buf *body, const char **content_type);

/* A server on loop with these limits (NULL: the defaults); not listening
 * yet. Never NULL. The caller frees it with http_free. */
http_server *http_new(uv_loop_t *loop, const http_limits *lim);
/* Serves path (exact; "/metrics") with fn(arg) for GET and HEAD. 0, or -1
 * (the table is full, the path is too long or not absolute, or listed). */
int http_route(http_server *s, const char *path, http_handler fn, void *arg);
/* Listens on host (numeric IPv4 or IPv6) and port. 0, or a libuv error
 * code with one line in err naming the address. */
int http_listen(http_server *s, const char *host, uint16_t port, char *err, size_t errlen);
/* Stops on the loop: no more connections, and every open one ends (what is
 * being sent is cut short); their handles are closed by the loop. */
void http_close(http_server *s);
/* After the loop has run dry (uv_run returned, http_close called): frees
 * h2o's context, whose handles it closes on the loop (the loop is run once
 * more without waiting), and s. NULL: nothing. */
void http_free(http_server *s);

/* What the server has done, for its own metrics. */
typedef struct http_stats {
    uint64_t accepted; /* connections served */
    uint64_t refused;  /* connections closed at once: over the cap */
    uint64_t requests; /* requests answered by a route */
    uint64_t rejected; /* requests answered 4xx by this module (404, 405, 431) */
    unsigned open;     /* connections now */
} http_stats;
void http_get_stats(const http_server *s, http_stats *out);

#endif

/* http.h - the daemon's HTTP listener (GET /metrics, the dashboard and its
 * /api): h2o's HTTP/1.1 server on the daemon's own libuv loop.
 *
 * h2o parses and answers; this module owns the TCP listener and the
 * connections, a route table (exact path or prefix -> handler), and the limits that
 * keep a stranger's requests cheap: a cap on connections at once (the ones
 * beyond it are closed as they are accepted), on a request's head (431)
 * and body (413), GET and HEAD only (405), and an idle timeout. It knows
 * nothing of the scheduler: the daemon registers the handlers.
 *
 * Handlers run on the loop and must not block (no disk, no network): they
 * answer at once from memory, or say HTTP_LATER and answer when what they
 * asked for comes (http_defer, http_answer). Every answer carries
 * X-Content-Type-Options: nosniff, Cache-Control: no-store and
 * Referrer-Policy: no-referrer; a page's (http_response.page) also a
 * Content-Security-Policy that allows nothing but this origin's own files
 * (no inline script or style, no framing). */
#ifndef JZ_HTTP_H
#define JZ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../../common/buf.h"

#define HTTP_ROUTES_MAX 32
#define HTTP_PATH_MAX 256

typedef struct http_server http_server;

typedef struct http_limits {
    unsigned max_conns; /* connections at once (0: HTTP_DEFAULT_CONNS); at the cap, the oldest is closed */
    uint64_t idle_ms;   /* a connection with no whole request for this long is closed (0: the default) */
    size_t max_head;    /* request line and headers together (0: the default); beyond: 431 */
    size_t max_body;    /* a request's body (GET and HEAD need none); beyond: 413 */
} http_limits;

#define HTTP_DEFAULT_CONNS 64
#define HTTP_DEFAULT_IDLE_MS 10000
#define HTTP_DEFAULT_HEAD (16u << 10)
#define HTTP_DEFAULT_BODY 1024

/* What a handler reads of a request. The strings are not NUL-terminated
 * and last as long as the handler runs. */
typedef struct http_request {
    const char *path; /* normalized by h2o ("/a/../b" is /b), without the query */
    size_t path_len;
    const char *rest; /* a prefix route's: what follows the prefix ("" for an exact one) */
    size_t rest_len;
    const char *query; /* after '?', as sent (not decoded); NULL: none */
    size_t query_len;
    const char *authorization; /* the Authorization header; NULL: none */
    size_t authorization_len;
    void *priv; /* http.c's */
} http_request;

/* What a handler answers: body (empty on entry) and content_type (a
 * static string; NULL: text/plain). */
typedef struct http_response {
    buf body;
    const char *content_type;
    bool page;  /* an HTML page: it gets the Content-Security-Policy */
    bool cache; /* a static file: may be cached (private, an hour), not no-store */
} http_response;

/* The HTTP status (200, 401, 404, 503 ...), or HTTP_LATER after calling
 * http_defer: the handler answers later. */
typedef int (*http_handler)(void *arg, const http_request *rq, http_response *rs);
#define HTTP_LATER 0

/* A request a handler answers later. */
typedef struct http_later http_later;
/* Keeps rq's request for a later answer (the handler then returns
 * HTTP_LATER). Never NULL; the caller passes it to http_answer once. */
http_later *http_defer(const http_request *rq);
/* Answers the deferred request with status and rs (whose body is freed)
 * when its client is still there (else drops it), and frees l. */
void http_answer(http_later *l, int status, http_response *rs);

/* The value of query parameter name (percent-decoded) into out, NUL-
 * terminated. 1 when present and it fits, 0 when absent, -1 when too long
 * or badly encoded. */
int http_query_get(const http_request *rq, const char *name, char *out, size_t outlen);

/* A server on loop with these limits (NULL: the defaults); not listening
 * yet. Never NULL. The caller frees it with http_free. */
http_server *http_new(uv_loop_t *loop, const http_limits *lim);
/* Serves path (exact; "/metrics") with fn(arg) for GET and HEAD; a path
 * that ends in '/' (other than "/" itself) is a prefix ("/api/node/" serves
 * /api/node/NAME, the longest prefix first). 0, or -1 (the table is full,
 * the path is too long or not absolute, or listed). */
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
    uint64_t refused;  /* connections closed for too many open: the oldest at the cap, a new one past it */
    uint64_t requests; /* requests answered by a route */
    uint64_t rejected; /* requests answered 4xx by this module (404, 405, 431) */
    unsigned open;     /* connections now */
} http_stats;
void http_get_stats(const http_server *s, http_stats *out);

#endif

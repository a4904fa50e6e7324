/* tlsio.h - blocking I/O through a TLS engine (tls.h) on a socket: for jz
 * from another machine and for a daemon that joins (before its loop runs).
 * With t NULL, bytes go as they are (jz on the local Unix socket). */
#ifndef JZ_TLSIO_H
#define JZ_TLSIO_H

#include <stddef.h>

#include "buf.h"
#include "tls.h"

/* A TCP connection to "host:port" (numeric or a name), within timeout_ms.
 * Returns the socket, or -1 with err. */
int tlsio_dial(const char *hostport, int timeout_ms, char *err, size_t errlen);
/* Sends n bytes of plaintext (and whatever the engine must send). 0 or -1 with err. */
int tlsio_send(int fd, tls *t, const void *p, size_t n, char *err, size_t errlen);
/* Waits up to timeout_ms for bytes, then appends the plaintext they hold to
 * plain. 0: fine (maybe nothing yet), 1: the peer closed, -1: failed (err). */
int tlsio_recv(int fd, tls *t, buf *plain, int timeout_ms, char *err, size_t errlen);

#endif

/*
 * svd_net.h - the TLS listener and its connection threads.
 *
 * The main thread accepts. A peer outside clients.allow is closed before
 * any TLS byte is read; past connections.max, connections.max_handshakes
 * (connections not yet authenticated) or max_handshakes_per_address the
 * newest is closed. Each accepted connection gets its own thread (small
 * stack) doing non-blocking TLS I/O against absolute deadlines:
 * handshake_timeout for the whole handshake, idle_timeout while waiting for
 * a request, io_timeout for the whole of one request and for its answer. A
 * connection carries any number of requests, one answer each, in order.
 */
#ifndef SVD_NET_H
#define SVD_NET_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "svd_app.h"

#define SVD_SERVER_MAGIC 0x5e7e7a11u

struct svd_server;

/* Bind (before privileges are dropped); svd_server_run() listens. */
int svd_net_listen(const struct svd_conf *conf, int *fd, char *err, size_t errlen);

struct svd_server *svd_server_new(struct svd_app *app, SSL_CTX *ctx, int lfd);

/* Listen, then accept until stop_fd becomes readable. */
void svd_server_run(struct svd_server *srv, int stop_fd);

/* Close every connection and wait for their threads (at most wait_ms). */
void svd_server_shutdown(struct svd_server *srv, unsigned wait_ms);
void svd_server_free(struct svd_server *srv);

/* Connections still open. */
unsigned svd_server_nconn(struct svd_server *srv);

#endif /* SVD_NET_H */

/*
 * svd_net.c - listener, allow-list, connection cap and connection threads.
 *
 * Ownership: the server owns the listening socket and the list of live
 * connections; each struct conn is owned by its thread, which unlinks and
 * frees it on exit. Shutdown only calls shutdown(2) on live sockets (under
 * the server mutex) to wake blocked threads, then waits for the count to
 * reach zero.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_log.h"
#include "svd_net.h"
#include "svd_req.h"
#include "svd_secret.h"
#include "svd_tls.h"
#include "sv_secret.h"

#define CONN_MAGIC 0xc0cc0cc0u
#define CONN_STACK (256 * 1024)

struct conn {
    unsigned magic;
    struct conn *next, *prev;
    struct svd_server *srv;
    int fd;
    SSL *ssl;
    struct svd_peer peer;
};

struct svd_server {
    unsigned magic;
    struct svd_app *app;
    SSL_CTX *ctx;
    int lfd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn *conns;
    unsigned nconn;
    int stopping;
};

int
svd_net_listen(const struct svd_conf *conf, int *fd, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    char port[8];
    int s = -1, one = 1, rv, r = -1;

    *fd = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", conf->listen_port);
    if ((rv = getaddrinfo(conf->listen_address, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "listen.address %s: %s", conf->listen_address, gai_strerror(rv));
        goto out;
    }
    if ((s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "listen %s port %u: %s", conf->listen_address, conf->listen_port,
                 strerror(errno));
        goto out;
    }
    *fd = s;
    s = -1;
    r = 0;
out:
    if (s >= 0)
        close(s);
    if (ai != NULL)
        freeaddrinfo(ai);
    return r;
}

struct svd_server *
svd_server_new(struct svd_app *app, SSL_CTX *ctx, int lfd)
{
    struct svd_server *srv;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    if ((srv = calloc(1, sizeof(*srv))) == NULL)
        return NULL;
    srv->magic = SVD_SERVER_MAGIC;
    srv->app = app;
    srv->ctx = ctx;
    srv->lfd = lfd;
    AZ(pthread_mutex_init(&srv->mu, NULL));
    AZ(pthread_cond_init(&srv->cv, NULL));
    return srv;
}

void
svd_server_free(struct svd_server *srv)
{
    if (srv == NULL)
        return;
    CHECK_OBJ(srv, SVD_SERVER_MAGIC);
    SVD_ASSERT(srv->nconn == 0);
    AZ(pthread_mutex_destroy(&srv->mu));
    AZ(pthread_cond_destroy(&srv->cv));
    srv->magic = 0;
    free(srv);
}

static void
set_timeout(int fd, uint32_t ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Read exactly n bytes. 1: done; 0: clean end of stream before any byte;
 * -1: error, timeout or end of stream in the middle. */
static int
read_full(struct conn *c, uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        size_t k = 0;
        int rv = SSL_read_ex(c->ssl, buf + got, n - got, &k);
        if (rv <= 0) {
            int e = SSL_get_error(c->ssl, rv);
            ERR_clear_error();
            if (got == 0 && e == SSL_ERROR_ZERO_RETURN)
                return 0;
            return -1;
        }
        got += k;
    }
    return 1;
}

static int
write_full(struct conn *c, const uint8_t *buf, size_t n)
{
    size_t k = 0;

    if (n == 0)
        return 0;
    if (SSL_write_ex(c->ssl, buf, n, &k) != 1 || k != n) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

#define OUT_KEEP (16 * 1024)

/* Serve requests on an established connection until it closes. out is the
 * caller's, released (cleansed) by it. */
static void
serve(struct conn *c, sv_buf *out)
{
    struct svd_app *app = c->srv->app;
    const struct svd_conf *conf = app->conf;

    /* reads and writes inside a request: io_timeout; waiting for the next
     * request: poll(2) with idle_timeout (unless TLS has bytes buffered) */
    set_timeout(c->fd, conf->io_timeout_ms);
    /* the answer buffer (secret) is kept across requests, cleansed after
     * each; one grown past OUT_KEEP by a large answer is released */
    sv_buf_init(out, 1, 0);
    for (;;) {
        uint8_t hb[SV_WIRE_HDR_LEN];
        sv_wire_hdr h;
        uint8_t *body = NULL;
        sv_status st;
        int rv, close_after = 0, answered;

        if (!SSL_has_pending(c->ssl)) {
            struct pollfd pfd = { c->fd, POLLIN, 0 };
            rv = poll(&pfd, 1, (int)conf->idle_timeout_ms);
            if (rv <= 0) {
                svd_debug("%s: connection idle for %u ms; closing", c->peer.addr,
                          conf->idle_timeout_ms);
                return;
            }
        }
        rv = read_full(c, hb, 1);
        if (rv == 0)
            return; /* the client closed */
        if (rv < 0) {
            svd_debug("%s: connection idle, closed or failed", c->peer.addr);
            return;
        }
        if (read_full(c, hb + 1, sizeof(hb) - 1) != 1) {
            svd_warn("%s: truncated frame header; closing", c->peer.addr);
            return;
        }
        st = sv_wire_hdr_decode(hb, &h);
        if (st == SV_OK && svd_req_max_body(h.type) == 0) {
            svd_warn("%s: message type 0x%02x is not a request; closing", c->peer.addr, h.type);
            st = SV_ERR_WIRE_TYPE;
        } else if (st == SV_OK && h.body_len > svd_req_max_body(h.type)) {
            svd_warn("%s: %s body of %u bytes is over its limit; closing", c->peer.addr,
                     sv_wire_type_name(h.type), h.body_len);
            st = SV_ERR_WIRE_TOO_LARGE;
        }
        if (st != SV_OK) {
            uint32_t reqid = ((uint32_t)hb[4] << 24) | ((uint32_t)hb[5] << 16) |
                             ((uint32_t)hb[6] << 8) | hb[7];
            if (st != SV_ERR_WIRE_TYPE && st != SV_ERR_WIRE_TOO_LARGE)
                svd_warn("%s: bad frame header: %s; closing", c->peer.addr, sv_strerror(st));
            SVD_COUNT(app, n_refusals);
            (void)svd_audit_event(app->audit, 0, "event=refusal why=bad-frame peer=%s cert=%.16s",
                                  c->peer.ip, c->peer.fp);
            if (svd_req_error(out, reqid, (st == SV_ERR_WIRE_VERSION || st == SV_ERR_WIRE_TYPE)
                              ? SV_WERR_UNSUPPORTED : SV_WERR_BAD_REQUEST, 0) == 0)
                (void)write_full(c, out->data, out->len);
            return;
        }
        /* every request body may carry key shares: secret memory */
        if ((body = svd_secret_alloc(h.body_len)) == NULL)
            return;
        if (h.body_len > 0 && read_full(c, body, h.body_len) != 1) {
            svd_warn("%s: truncated %s body; closing", c->peer.addr, sv_wire_type_name(h.type));
            svd_secret_free(body, h.body_len);
            return;
        }
        rv = svd_req_handle(app, &c->peer, &h, body, out, &close_after);
        svd_secret_free(body, h.body_len);
        answered = rv == 0 && sv_buf_status(out) == SV_OK && write_full(c, out->data, out->len) == 0;
        sv_buf_reset(out); /* secret: cleansed now, not only at the next request */
        if (out->cap > OUT_KEEP)
            sv_buf_free(out);
        if (!answered || close_after)
            return;
    }
}

static void
conn_unlink(struct conn *c)
{
    struct svd_server *srv = c->srv;

    AZ(pthread_mutex_lock(&srv->mu));
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    SVD_ASSERT(srv->nconn > 0);
    srv->nconn--;
    AZ(pthread_cond_broadcast(&srv->cv));
    AZ(pthread_mutex_unlock(&srv->mu));
}

static const char *
verify_reason(SSL *ssl)
{
    long v = SSL_get_verify_result(ssl);

    if (v == X509_V_OK)
        return SSL_get0_peer_certificate(ssl) == NULL ? "no-client-certificate" : "handshake";
    if (v == X509_V_ERR_APPLICATION_VERIFICATION)
        return "certificate-not-pinned";
    return "certificate-not-trusted";
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    struct svd_app *app;
    int rv;

    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    app = c->srv->app;
    set_timeout(c->fd, app->conf->handshake_timeout_ms);
    {
        /* a peer that closes (or stays silent) before its ClientHello, such
         * as a port probe, is only logged at debug level */
        uint8_t b;
        ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
        if (n <= 0) {
            svd_debug("%s: closed or silent before the TLS handshake", c->peer.addr);
            goto out;
        }
    }
    if ((c->ssl = SSL_new(c->srv->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        svd_log_openssl(SV_LOG_ERR, "SSL_new");
        goto out;
    }
    rv = SSL_accept(c->ssl);
    if (rv != 1) {
        const char *why = verify_reason(c->ssl);
        unsigned long e = ERR_peek_error();
        char detail[160];

        ERR_error_string_n(e, detail, sizeof(detail));
        if (e == 0)
            snprintf(detail, sizeof(detail), "%s", errno == EAGAIN || errno == EWOULDBLOCK
                     ? "timeout" : "connection closed");
        ERR_clear_error();
        svd_warn("%s: TLS handshake refused: %s (%s)", c->peer.addr, why, detail);
        SVD_COUNT(app, n_refusals);
        (void)svd_audit_event(app->audit, 0, "event=refusal why=tls-%s peer=%s", why, c->peer.ip);
        goto out;
    }
    svd_tls_peer_fp(c->ssl, c->peer.fp);
    svd_debug("%s: TLS %s %s, client certificate %.16s", c->peer.addr,
              SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), c->peer.fp);
    svd_secret_cache_begin();
    {
        sv_buf out;
        serve(c, &out);
        sv_buf_free(&out); /* secret: cleansed */
    }
    svd_secret_cache_end();
    (void)SSL_shutdown(c->ssl);
out:
    ERR_clear_error();
    conn_unlink(c);
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    close(c->fd);
    c->magic = 0;
    free(c);
#if OPENSSL_VERSION_NUMBER >= 0x10100000L
    OPENSSL_thread_stop();
#endif
    return NULL;
}

static void
peer_names(const struct sockaddr_storage *ss, struct svd_peer *p)
{
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

    (void)getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, sizeof(host), port,
                      sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(p->ip, sizeof(p->ip), "%s", host);
    snprintf(p->addr, sizeof(p->addr), "%s%s%s:%s", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port);
    snprintf(p->fp, sizeof(p->fp), "-");
}

/* Check the allow-list and the cap; start a thread for an accepted fd. */
static void
admit(struct svd_server *srv, int fd, const struct sockaddr_storage *ss)
{
    const struct svd_conf *conf = srv->app->conf;
    struct conn *c = NULL;
    struct svd_peer peer;
    pthread_attr_t attr;
    pthread_t t;
    int allowed = 0, one = 1, rv;

    peer_names(ss, &peer);
    for (unsigned i = 0; i < conf->nallow && !allowed; i++)
        allowed = svd_cidr_match(&conf->allow[i], (const struct sockaddr *)ss);
    if (!allowed) {
        svd_warn("%s: address not in clients.allow; closed before TLS", peer.addr);
        SVD_COUNT(srv->app, n_refusals);
        (void)svd_audit_event(srv->app->audit, 0, "event=refusal why=address-not-allowed peer=%s",
                              peer.ip);
        close(fd);
        return;
    }
    AZ(pthread_mutex_lock(&srv->mu));
    if (srv->nconn >= conf->max_connections || srv->stopping) {
        AZ(pthread_mutex_unlock(&srv->mu));
        svd_warn("%s: connections.max (%u) reached; closed", peer.addr, conf->max_connections);
        SVD_COUNT(srv->app, n_refusals);
        close(fd);
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        AZ(pthread_mutex_unlock(&srv->mu));
        close(fd);
        return;
    }
    c->magic = CONN_MAGIC;
    c->srv = srv;
    c->fd = fd;
    c->peer = peer;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconn++;
    AZ(pthread_mutex_unlock(&srv->mu));

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    AZ(pthread_attr_init(&attr));
    AZ(pthread_attr_setstacksize(&attr, CONN_STACK));
    AZ(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
    rv = pthread_create(&t, &attr, conn_main, c);
    AZ(pthread_attr_destroy(&attr));
    if (rv != 0) {
        svd_err("%s: cannot start a connection thread: %s", peer.addr, strerror(rv));
        conn_unlink(c);
        close(fd);
        c->magic = 0;
        free(c);
    }
}

void
svd_server_run(struct svd_server *srv, int stop_fd)
{
    CHECK_OBJ_NOTNULL(srv, SVD_SERVER_MAGIC);
    /* bound as root at start-up; connections are taken only now that the
     * store, the audit log and every thread are ready */
    if (listen(srv->lfd, (int)srv->app->conf->backlog) != 0) {
        svd_err("listen: %s", strerror(errno));
        return;
    }
    svd_info("accepting connections");
    for (;;) {
        struct pollfd pfd[2] = { { srv->lfd, POLLIN, 0 }, { stop_fd, POLLIN, 0 } };
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            svd_err("poll: %s", strerror(errno));
            return;
        }
        if (pfd[1].revents != 0)
            return;
        if (!(pfd[0].revents & POLLIN))
            continue;
        fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                svd_warn("accept: %s", strerror(errno));
            if (errno == EMFILE || errno == ENFILE) {
                struct timespec ts = { 0, 100000000L };
                nanosleep(&ts, NULL);
            }
            continue;
        }
        admit(srv, fd, &ss);
    }
}

void
svd_server_shutdown(struct svd_server *srv, unsigned wait_ms)
{
    uint64_t deadline = svd_now_ms() + wait_ms;

    CHECK_OBJ_NOTNULL(srv, SVD_SERVER_MAGIC);
    AZ(pthread_mutex_lock(&srv->mu));
    srv->stopping = 1;
    for (struct conn *c = srv->conns; c != NULL; c = c->next)
        (void)shutdown(c->fd, SHUT_RDWR);
    while (srv->nconn > 0 && svd_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
        for (struct conn *c = srv->conns; c != NULL; c = c->next)
            (void)shutdown(c->fd, SHUT_RDWR);
    }
    if (srv->nconn > 0)
        svd_warn("%u connection threads still busy at shutdown", srv->nconn);
    AZ(pthread_mutex_unlock(&srv->mu));
}

unsigned
svd_server_nconn(struct svd_server *srv)
{
    unsigned n;

    CHECK_OBJ_NOTNULL(srv, SVD_SERVER_MAGIC);
    AZ(pthread_mutex_lock(&srv->mu));
    n = srv->nconn;
    AZ(pthread_mutex_unlock(&srv->mu));
    return n;
}

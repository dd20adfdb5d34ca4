/*
 * svd_net.c - listener, allow-list, connection caps and connection threads.
 *
 * Ownership: the server owns the listening socket and the list of live
 * connections; each struct conn is owned by its thread, which unlinks and
 * frees it on exit. Shutdown only calls shutdown(2) on live sockets (under
 * the server mutex) to wake blocked threads, then waits for the count to
 * reach zero.
 *
 * Sockets are non-blocking; every TLS read and write waits in poll(2) for
 * what is left of an absolute deadline, never for a fresh timeout per
 * read: the handshake gets connections.handshake_timeout in all, a request
 * (its header and body, from its first byte) connections.io_timeout in all,
 * and so does writing an answer. A peer that dribbles a byte at a time
 * cannot stretch either.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
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
#include "svd_refusal.h"
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
    int handshaking;            /* counted in srv->nhandshake (under srv->mu) */
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
    unsigned nhandshake;        /* connections not yet authenticated */
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

/* Wait until fd is ready for events or the deadline (monotonic ms) has
 * passed. 1: ready; 0: deadline reached; -1: poll failed. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd pfd = { fd, events, 0 };
        uint64_t now = svd_now_ms();
        int rv;

        if (now >= deadline)
            return 0;
        rv = poll(&pfd, 1, deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
        if (rv > 0)
            return 1;
        if (rv < 0 && errno != EINTR)
            return -1;
    }
}

/* After an SSL call returned rv <= 0: wait for what it needs, within the
 * deadline. 1: try again; 0: clean end of stream (close_notify); -1: error
 * or deadline. */
static int
ssl_wait(struct conn *c, int rv, uint64_t deadline)
{
    int e = SSL_get_error(c->ssl, rv);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(c->fd, POLLIN, deadline) == 1 ? 1 : -1;
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(c->fd, POLLOUT, deadline) == 1 ? 1 : -1;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return 0;
    default:
        ERR_clear_error();
        return -1;
    }
}

/* Read exactly n bytes before the deadline. 1: done; 0: clean end of
 * stream before any byte; -1: error, deadline or end of stream in the
 * middle. */
static int
read_full(struct conn *c, uint8_t *buf, size_t n, uint64_t deadline)
{
    size_t got = 0;

    while (got < n) {
        size_t k = 0;
        int rv = SSL_read_ex(c->ssl, buf + got, n - got, &k), w;
        if (rv > 0) {
            got += k;
            continue;
        }
        if ((w = ssl_wait(c, rv, deadline)) == 1)
            continue;
        return w == 0 && got == 0 ? 0 : -1;
    }
    return 1;
}

/* Write all n bytes before the deadline. 0 or -1. */
static int
write_full(struct conn *c, const uint8_t *buf, size_t n, uint64_t deadline)
{
    for (;;) {
        size_t k = 0;
        int rv;

        if (n == 0)
            return 0;
        /* a refused write is repeated with the same arguments, as OpenSSL
         * requires; without partial writes it reports all of n at once */
        rv = SSL_write_ex(c->ssl, buf, n, &k);
        if (rv > 0)
            return k == n ? 0 : -1;
        if (ssl_wait(c, rv, deadline) != 1)
            return -1;
    }
}

#define OUT_KEEP (16 * 1024)

/* Serve requests on an established connection until it closes. out is the
 * caller's, released (cleansed) by it. */
static void
serve(struct conn *c, sv_buf *out)
{
    struct svd_app *app = c->srv->app;
    const struct svd_conf *conf = app->conf;

    /* waiting for the next request: poll(2) with idle_timeout (unless TLS
     * has bytes buffered); from a request's first byte to its last, and
     * writing its answer: io_timeout each, in all */
    /* the answer buffer (secret) is kept across requests, cleansed after
     * each; one grown past OUT_KEEP by a large answer is released */
    sv_buf_init(out, 1, 0);
    for (;;) {
        uint8_t hb[SV_WIRE_HDR_LEN];
        sv_wire_hdr h;
        uint8_t *body = NULL;
        uint64_t deadline;
        sv_status st;
        int rv, close_after = 0, answered;

        if (!SSL_has_pending(c->ssl) &&
            wait_fd(c->fd, POLLIN, svd_now_ms() + conf->idle_timeout_ms) != 1) {
            svd_debug("%s: connection idle for %u ms; closing", c->peer.addr,
                      conf->idle_timeout_ms);
            return;
        }
        deadline = svd_now_ms() + conf->io_timeout_ms; /* the whole request */
        rv = read_full(c, hb, 1, deadline);
        if (rv == 0)
            return; /* the client closed */
        if (rv < 0) {
            svd_debug("%s: connection idle, closed or failed", c->peer.addr);
            return;
        }
        if (read_full(c, hb + 1, sizeof(hb) - 1, deadline) != 1) {
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
            char extra[32];

            if (st != SV_ERR_WIRE_TYPE && st != SV_ERR_WIRE_TOO_LARGE)
                svd_warn("%s: bad frame header: %s; closing", c->peer.addr, sv_strerror(st));
            SVD_COUNT(app, n_refusals);
            snprintf(extra, sizeof(extra), " cert=%.16s", c->peer.fp);
            (void)svd_refusal(app->refusals, "bad-frame", c->peer.ip, extra);
            if (svd_req_error(out, reqid, (st == SV_ERR_WIRE_VERSION || st == SV_ERR_WIRE_TYPE)
                              ? SV_WERR_UNSUPPORTED : SV_WERR_BAD_REQUEST, 0) == 0)
                (void)write_full(c, out->data, out->len, svd_now_ms() + conf->io_timeout_ms);
            return;
        }
        /* the client's role allows this type, or it is refused before its
         * body is read (and the connection closed: the body is not) */
        if (!svd_req_allowed(c->peer.roles, h.type)) {
            char extra[96];

            SVD_COUNT(app, n_refusals);
            snprintf(extra, sizeof(extra), " type=%s role=%s cert=%.16s",
                     sv_wire_type_name(h.type), svd_role_name(c->peer.roles), c->peer.fp);
            if (svd_refusal(app->refusals, "not-allowed", c->peer.ip, extra))
                svd_warn("%s: %s refused: not allowed for a %s client (certificate %.16s); "
                         "closing (more are summarised)", c->peer.addr,
                         sv_wire_type_name(h.type), svd_role_name(c->peer.roles), c->peer.fp);
            if (svd_req_error(out, h.reqid, SV_WERR_NOT_ALLOWED, 0) == 0)
                (void)write_full(c, out->data, out->len, svd_now_ms() + conf->io_timeout_ms);
            return;
        }
        /* every request body may carry key shares: secret memory */
        if ((body = svd_secret_alloc(h.body_len)) == NULL)
            return;
        if (h.body_len > 0 && read_full(c, body, h.body_len, deadline) != 1) {
            svd_warn("%s: %s body not received in time (connections.io_timeout) or cut short; "
                     "closing", c->peer.addr, sv_wire_type_name(h.type));
            svd_secret_free(body, h.body_len);
            return;
        }
        rv = svd_req_handle(app, &c->peer, &h, body, out, &close_after);
        svd_secret_free(body, h.body_len);
        answered = rv == 0 && sv_buf_status(out) == SV_OK &&
                   write_full(c, out->data, out->len, svd_now_ms() + conf->io_timeout_ms) == 0;
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
    if (c->handshaking) {
        c->handshaking = 0;
        SVD_ASSERT(srv->nhandshake > 0);
        srv->nhandshake--;
    }
    AZ(pthread_cond_broadcast(&srv->cv));
    AZ(pthread_mutex_unlock(&srv->mu));
}

static const char *
verify_reason(SSL *ssl)
{
    long v;

    if (ssl == NULL)
        return "handshake";
    v = SSL_get_verify_result(ssl);
    if (v == X509_V_OK)
        return SSL_get0_peer_certificate(ssl) == NULL ? "no-client-certificate" : "handshake";
    if (v == X509_V_ERR_APPLICATION_VERIFICATION)
        return "certificate-not-listed";
    return "certificate-not-trusted";
}

/* The handshake is over (either way): the connection no longer counts
 * against connections.max_handshakes. */
static void
handshake_done(struct conn *c)
{
    struct svd_server *srv = c->srv;

    AZ(pthread_mutex_lock(&srv->mu));
    if (c->handshaking) {
        c->handshaking = 0;
        SVD_ASSERT(srv->nhandshake > 0);
        srv->nhandshake--;
    }
    AZ(pthread_mutex_unlock(&srv->mu));
}

/*
 * The TLS handshake, all of it before one deadline. 1: the client is
 * authenticated; 0: it closed or stayed silent before its ClientHello (a
 * port probe: debug log only); -1: refused (logged and audited).
 */
static int
handshake(struct conn *c)
{
    struct svd_app *app = c->srv->app;
    uint64_t deadline = svd_now_ms() + app->conf->handshake_timeout_ms;
    const char *why, *detail = NULL;
    char ebuf[160], token[40];
    unsigned long e;
    uint8_t b;
    int rv, w = -1;

    if (wait_fd(c->fd, POLLIN, deadline) != 1 || recv(c->fd, &b, 1, MSG_PEEK) <= 0) {
        svd_debug("%s: closed or silent before the TLS handshake", c->peer.addr);
        return 0;
    }
    if ((c->ssl = SSL_new(c->srv->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        svd_log_openssl(SV_LOG_ERR, "SSL_new");
        return -1;
    }
    for (;;) {
        if ((rv = SSL_accept(c->ssl)) == 1)
            return 1;
        switch (SSL_get_error(c->ssl, rv)) {
        case SSL_ERROR_WANT_READ:
            w = wait_fd(c->fd, POLLIN, deadline);
            break;
        case SSL_ERROR_WANT_WRITE:
            w = wait_fd(c->fd, POLLOUT, deadline);
            break;
        default:
            w = -2;
            break;
        }
        if (w != 1)
            break;
    }
    why = verify_reason(c->ssl);
    if (w == 0) {
        why = "handshake-timeout";
        detail = "not finished within connections.handshake_timeout";
    } else if ((e = ERR_peek_error()) != 0) {
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
        detail = ebuf;
    } else {
        detail = "connection closed";
    }
    ERR_clear_error();
    SVD_COUNT(app, n_refusals);
    snprintf(token, sizeof(token), "tls-%s", why);
    if (svd_refusal(app->refusals, token, c->peer.ip, ""))
        svd_warn("%s: TLS handshake refused: %s (%s)", c->peer.addr, why, detail);
    return -1;
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    int ok;

    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    ok = handshake(c);
    handshake_done(c);
    if (ok != 1)
        goto out;
    c->peer.roles = svd_tls_peer(c->ssl, c->srv->app->conf, c->peer.fp);
    svd_debug("%s: TLS %s %s, client certificate %.16s (%s)", c->peer.addr,
              SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), c->peer.fp,
              svd_role_name(c->peer.roles));
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

/*
 * Which cap a new connection from peer would break, or NULL (srv->mu held):
 * connections.max; connections.max_handshakes, which keeps the rest of the
 * slots for clients that have proved themselves; and
 * connections.max_handshakes_per_address, so one source cannot take every
 * handshake slot from another.
 */
static const char *
over_cap(struct svd_server *srv, const struct svd_peer *peer)
{
    const struct svd_conf *conf = srv->app->conf;
    unsigned same = 0;

    if (srv->nconn >= conf->max_connections)
        return "connections.max";
    if (srv->nhandshake >= conf->max_handshakes)
        return "connections.max_handshakes";
    for (struct conn *c = srv->conns; c != NULL; c = c->next)
        if (c->handshaking && strcmp(c->peer.ip, peer->ip) == 0)
            same++;
    if (same >= conf->max_handshakes_per_addr)
        return "connections.max_handshakes_per_address";
    return NULL;
}

/* The audit reason for a cap: its key as a token. */
static const char *
cap_token(const char *cap)
{
    if (strcmp(cap, "connections.max") == 0)
        return "connection-cap";
    if (strcmp(cap, "connections.max_handshakes") == 0)
        return "handshake-cap";
    return "handshake-cap-address";
}

/* Check the allow-list and the caps; start a thread for an accepted fd. */
static void
admit(struct svd_server *srv, int fd, const struct sockaddr_storage *ss)
{
    const struct svd_conf *conf = srv->app->conf;
    struct conn *c = NULL;
    struct svd_peer peer;
    pthread_attr_t attr;
    pthread_t t;
    const char *cap = NULL;
    int allowed = 0, one = 1, rv;

    peer_names(ss, &peer);
    for (unsigned i = 0; i < conf->nallow && !allowed; i++)
        allowed = svd_cidr_match(&conf->allow[i], (const struct sockaddr *)ss);
    if (!allowed) {
        SVD_COUNT(srv->app, n_refusals);
        if (svd_refusal(srv->app->refusals, "address-not-allowed", peer.ip, ""))
            svd_warn("%s: address not in clients.allow; closed before TLS (more from it are "
                     "summarised)", peer.addr);
        close(fd);
        return;
    }
    AZ(pthread_mutex_lock(&srv->mu));
    if (srv->stopping || (cap = over_cap(srv, &peer)) != NULL) {
        AZ(pthread_mutex_unlock(&srv->mu));
        if (cap != NULL) {
            SVD_COUNT(srv->app, n_refusals);
            if (svd_refusal(srv->app->refusals, cap_token(cap), peer.ip, ""))
                svd_warn("%s: %s reached; closed before TLS (more are summarised)", peer.addr,
                         cap);
        }
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
    c->handshaking = 1;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconn++;
    srv->nhandshake++;
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
        fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
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

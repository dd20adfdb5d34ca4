/*
 * sv_tlsclient.c - the mutual-TLS client of splitvaultd. See sv_tlsclient.h.
 *
 * Connecting has one deadline for everything (TCP to each resolved address
 * in turn, then the whole handshake): the socket is non-blocking until the
 * handshake is done and every wait is a poll(2) bounded by what is left;
 * each address gets a share of what is left, so one that does not answer
 * does not use up the time of those after it. The socket stays
 * non-blocking: each exchange (or read_all / write_all call) has one
 * deadline, timeout_ms from its start, and every wait for the socket is a
 * poll(2) bounded by what is left of it, so a peer that sends a byte now
 * and then cannot stretch it. A caller with its own framing (the module:
 * its answers go to the request pool's secret memory) shares one deadline
 * among its reads and writes with sv_tls_write_until / sv_tls_read_until.
 *
 * A connection on which any read, write or the handshake failed is marked
 * broken: OpenSSL must not be asked to send anything more on it
 * (SSL_shutdown after SSL_ERROR_SYSCALL or SSL_ERROR_SSL), so it is closed
 * without a close_notify.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sv_secret.h"
#include "sv_tlsclient.h"

struct sv_tls_conn {
    int fd;
    SSL *ssl;
    int timeout_ms; /* for each exchange, read_all or write_all call */
    int broken;     /* a read, write or the handshake failed: quiet close */
    uint64_t nread; /* application bytes read so far */
    char err[SV_TLS_ERRLEN];
};

/* OpenSSL's first queued reason as text (library reasons only, never
 * data), and the queue cleared. */
static const char *
ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();

    ERR_clear_error();
    if (e == 0)
        snprintf(buf, n, "no TLS library error");
    else
        ERR_error_string_n(e, buf, n);
    return buf;
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

sv_status
sv_tls_client_ctx(const sv_tls_client_conf *conf, SSL_CTX **out, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    char why[256];
    sv_status st = SV_ERR_TLS_SETUP;

    set_err(err, errlen, "no error");
    if (out == NULL)
        return SV_ERR_INVAL;
    *out = NULL;
    if (conf == NULL || conf->ca == NULL || conf->cert == NULL || conf->key == NULL) {
        set_err(err, errlen, "TLS client set-up: CA, certificate and key are all required");
        return SV_ERR_INVAL;
    }
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        set_err(err, errlen, "cannot create a TLS context: %s", ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        set_err(err, errlen, "TLS 1.3 is not available in this OpenSSL");
        goto out;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    /* record buffers carry key shares and plaintexts: cleanse, not just free */
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_load_verify_locations(ctx, conf->ca, NULL) != 1) {
        set_err(err, errlen, "%s %s: %s", conf->ca_what ? conf->ca_what : "CA file", conf->ca,
                ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert) != 1) {
        set_err(err, errlen, "%s %s: %s", conf->cert_what ? conf->cert_what : "certificate",
                conf->cert, ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->key, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "%s %s: %s", conf->key_what ? conf->key_what : "key", conf->key,
                ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        set_err(err, errlen, "%s %s does not match %s %s",
                conf->key_what ? conf->key_what : "key", conf->key,
                conf->cert_what ? conf->cert_what : "certificate", conf->cert);
        goto out;
    }
    *out = ctx;
    ctx = NULL;
    st = SV_OK;
out:
    SSL_CTX_free(ctx);
    return st;
}

sv_status
sv_tls_client_set_peer(SSL *ssl, const char *name)
{
    struct in6_addr a;

    if (ssl == NULL || name == NULL || *name == '\0')
        return SV_ERR_INVAL;
    if (inet_pton(AF_INET, name, &a) == 1 || inet_pton(AF_INET6, name, &a) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? SV_OK
                                                                             : SV_ERR_TLS_SETUP;
    /* "*.example.org" only: no "w*.example.org" */
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, name) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1)
        return SV_ERR_TLS_SETUP;
    return SV_OK;
}

/* Milliseconds on the monotonic clock. */
static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events, or the deadline. 1 ready, 0 not. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd;
    int64_t left;
    int rc;

    for (;;) {
        if ((left = deadline - now_ms()) <= 0)
            return 0;
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0)
            return 1;
        if (rc == 0 || errno != EINTR)
            return 0;
    }
}

/* The least time an address is given when several share the deadline. */
#define ADDR_MIN_MS 1000

/* TCP to each address of host:port in turn, before deadline: the connected,
 * non-blocking fd, or -1 and *st, err set. Each address gets what is left
 * divided by the addresses left (at least ADDR_MIN_MS, at most what is
 * left). */
static int
tcp_connect(const char *host, const char *port, int64_t deadline, sv_status *st, char *err,
            size_t errlen)
{
    struct addrinfo hints, *ai = NULL, *a;
    int fd = -1, one = 1, gai, last_errno = ECONNREFUSED, timed_out = 0, naddr = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((gai = getaddrinfo(host, port, &hints, &ai)) != 0 || ai == NULL) {
        *st = SV_ERR_NET_RESOLVE;
        set_err(err, errlen, "cannot resolve the daemon's address %s port %s: %s", host, port,
                gai ? gai_strerror(gai) : "no address");
        if (ai)
            freeaddrinfo(ai);
        return -1;
    }
    for (a = ai; a; a = a->ai_next)
        naddr++;
    for (a = ai; a; a = a->ai_next, naddr--) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        int64_t now = now_ms(), share = (deadline - now) / (naddr > 0 ? naddr : 1);
        int64_t until;

        if (share < ADDR_MIN_MS)
            share = ADDR_MIN_MS;
        until = now + share < deadline ? now + share : deadline;
        timed_out = 0;

        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                last_errno = errno;
                goto next;
            }
            if (!wait_fd(fd, POLLOUT, until)) {
                timed_out = 1;
                goto next;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
                last_errno = errno;
                goto next;
            }
            if (soerr != 0) {
                last_errno = soerr;
                goto next;
            }
        }
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            last_errno = errno;
            goto next;
        }
        break;
next:
        close(fd);
        fd = -1;
        if (now_ms() >= deadline) {
            timed_out = 1;
            break;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        *st = timed_out ? SV_ERR_NET_TIMEOUT : SV_ERR_NET_CONNECT;
        set_err(err, errlen, "cannot connect to the daemon at %s port %s: %s", host, port,
                timed_out ? "timed out" : strerror(last_errno));
    }
    return fd;
}

/* The daemon closed the connection (EOF or reset, not a TLS alert) during
 * the handshake. */
static int
closed_in_handshake(SSL *ssl, int e)
{
    unsigned long q = ERR_peek_error();

    if (SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;
    return (e == SSL_ERROR_SYSCALL && (q == 0 || ERR_GET_LIB(q) == ERR_LIB_SYS))
           || (e == SSL_ERROR_SSL && ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

/* ... and before a single byte of its answer to our ClientHello came back:
 * it refuses connections past its caps that way, before TLS. */
static int
closed_before_tls(SSL *ssl, int e)
{
    return closed_in_handshake(ssl, e) && BIO_number_read(SSL_get_rbio(ssl)) == 0;
}

void
sv_tls_close(sv_tls_conn *c)
{
    if (c == NULL)
        return;
    if (c->ssl) {
        struct pollfd pfd = { c->fd, POLLOUT, 0 };

        /* best effort, and never on a broken connection (OpenSSL forbids
         * it after SSL_ERROR_SYSCALL / SSL_ERROR_SSL, and the peer may be
         * gone: the write would raise SIGPIPE), nor on a socket already
         * reset or hung up. The socket is non-blocking: one attempt, no
         * wait. */
        if (SSL_is_init_finished(c->ssl) && !c->broken
            && !(poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))))
            SSL_shutdown(c->ssl);
        else
            SSL_set_quiet_shutdown(c->ssl, 1);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    ERR_clear_error();
    free(c);
}

sv_status
sv_tls_connect(SSL_CTX *ctx, const char *host, const char *port, const char *name,
               int timeout_ms, sv_tls_conn **out, char *err, size_t errlen)
{
    return sv_tls_connect_ex(ctx, host, port, name, timeout_ms, out, NULL, err, errlen);
}

sv_status
sv_tls_connect_ex(SSL_CTX *ctx, const char *host, const char *port, const char *name,
                  int timeout_ms, sv_tls_conn **out, sv_tls_step *step, char *err,
                  size_t errlen)
{
    sv_tls_conn *c = NULL;
    int64_t deadline;
    char why[256];
    sv_status st = SV_ERR_INTERNAL;
    sv_tls_step dummy;

    if (step == NULL)
        step = &dummy;
    *step = SV_TLS_STEP_START;
    set_err(err, errlen, "no error");
    if (out == NULL)
        return SV_ERR_INVAL;
    *out = NULL;
    if (ctx == NULL || host == NULL || port == NULL || name == NULL || timeout_ms <= 0) {
        set_err(err, errlen, "TLS connect: invalid argument");
        return SV_ERR_INVAL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        set_err(err, errlen, "out of memory");
        return SV_ERR_NOMEM;
    }
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    snprintf(c->err, sizeof(c->err), "no error");
    deadline = now_ms() + timeout_ms;
    *step = SV_TLS_STEP_TCP;
    if ((c->fd = tcp_connect(host, port, deadline, &st, err, errlen)) < 0)
        goto fail;
    *step = SV_TLS_STEP_SETUP;
    if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1
        || sv_tls_client_set_peer(c->ssl, name) != SV_OK) {
        st = SV_ERR_TLS_SETUP;
        set_err(err, errlen, "TLS set-up for the daemon at %s port %s failed: %s", host, port,
                ssl_reason(why, sizeof(why)));
        goto fail;
    }
    *step = SV_TLS_STEP_HANDSHAKE;
    for (;;) {
        int rc = SSL_connect(c->ssl), e;
        long vr;

        if (rc == 1)
            break;
        e = SSL_get_error(c->ssl, rc);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            && wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
            continue;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            st = SV_ERR_NET_TIMEOUT;
            set_err(err, errlen, "TLS handshake with the daemon failed (%s port %s): timed out", host, port);
            goto fail;
        }
        if (closed_before_tls(c->ssl, e)) {
            st = SV_ERR_TLS_CLOSED;
            set_err(err, errlen, "the daemon at %s port %s closed the connection before TLS "
                    "(its connection caps, or clients.allow)", host, port);
            goto fail;
        }
        if (closed_in_handshake(c->ssl, e)) {
            ERR_clear_error();
            st = SV_ERR_TLS_HANDSHAKE;
            set_err(err, errlen, "TLS handshake with the daemon failed (%s port %s): the daemon "
                    "closed the connection during the handshake", host, port);
            goto fail;
        }
        vr = SSL_get_verify_result(c->ssl);
        st = SV_ERR_TLS_HANDSHAKE;
        if (vr != X509_V_OK)
            *step = SV_TLS_STEP_VERIFY;
        set_err(err, errlen, "TLS handshake with the daemon failed (%s port %s): %s%s%s", host, port,
                ssl_reason(why, sizeof(why)), vr != X509_V_OK ? "; certificate: " : "",
                vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
        goto fail;
    }
    *step = SV_TLS_STEP_DONE;
    *out = c;
    return SV_OK;
fail:
    c->broken = 1;
    sv_tls_close(c);
    return st;
}

SSL *
sv_tls_conn_ssl(const sv_tls_conn *c)
{
    return c ? c->ssl : NULL;
}

const char *
sv_tls_conn_error(const sv_tls_conn *c)
{
    return c ? c->err : "no connection";
}

/* The connection failed: no more I/O on it (and no close_notify). */
static sv_status
io_fail(sv_tls_conn *c, sv_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static sv_status
io_fail(sv_tls_conn *c, sv_status st, const char *fmt, ...)
{
    va_list ap;

    c->broken = 1;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return st;
}

/* Write (writing) or read exactly n bytes before deadline. Every wait is a
 * poll bounded by what is left; EINTR is retried (wait_fd), never fatal.
 * SV_OK, SV_ERR_NET_TIMEOUT, SV_ERR_NET_IO or SV_ERR_TLS_HANDSHAKE (see
 * sv_tls_read_until). */
static sv_status
tls_io(sv_tls_conn *c, int writing, uint8_t *p, size_t n, int64_t deadline)
{
    const char *what = writing ? "sending to" : "reading from";
    char why[256];
    size_t k;

    if (c->broken)
        return SV_ERR_NET_IO;
    while (n) {
        int rc, e;

        ERR_clear_error();
        rc = writing ? SSL_write_ex(c->ssl, p, n, &k) : SSL_read_ex(c->ssl, p, n, &k);
        if (rc == 1 && k > 0) {
            p += k;
            n -= k;
            if (!writing)
                c->nread += k;
            continue;
        }
        e = SSL_get_error(c->ssl, rc);
        switch (e) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
                continue;
            return io_fail(c, SV_ERR_NET_TIMEOUT, "%s the daemon: timed out", what);
        case SSL_ERROR_ZERO_RETURN:
            return io_fail(c, SV_ERR_NET_IO, "%s the daemon: it closed the connection", what);
        case SSL_ERROR_SSL: {
            unsigned long q = ERR_peek_error();

            /* In TLS 1.3 the daemon checks our certificate after our side of
             * the handshake is done: its refusal (an alert) arrives on the
             * first read. An alert before any answer is a handshake
             * failure, with OpenSSL's reason. */
            if (ERR_GET_LIB(q) == ERR_LIB_SSL && ERR_GET_REASON(q) >= SSL_AD_REASON_OFFSET
                && c->nread == 0)
                return io_fail(c, SV_ERR_TLS_HANDSHAKE, "TLS alert from the daemon: %s",
                               ssl_reason(why, sizeof(why)));
            return io_fail(c, SV_ERR_NET_IO, "%s the daemon: %s", what,
                           ssl_reason(why, sizeof(why)));
        }
        case SSL_ERROR_SYSCALL:
            return io_fail(c, SV_ERR_NET_IO, "%s the daemon: %s", what,
                           errno ? strerror(errno) : "connection closed");
        default:
            return io_fail(c, SV_ERR_NET_IO, "%s the daemon: TLS error %d", what, e);
        }
    }
    return SV_OK;
}

/* tls_io for the calls whose timeout is SV_ERR_NET_IO, as documented
 * (read_all, write_all, exchange): sv_tls_conn_error() says "timed out". */
static sv_status
tls_io_all(sv_tls_conn *c, int writing, uint8_t *p, size_t n, int64_t deadline)
{
    sv_status st = tls_io(c, writing, p, n, deadline);

    return st == SV_ERR_NET_TIMEOUT ? SV_ERR_NET_IO : st;
}

sv_status
sv_tls_write_all(sv_tls_conn *c, const uint8_t *p, size_t n)
{
    if (c == NULL || c->ssl == NULL || (p == NULL && n))
        return SV_ERR_INVAL;
    return tls_io_all(c, 1, (uint8_t *)(uintptr_t)p, n, now_ms() + c->timeout_ms);
}

sv_status
sv_tls_read_all(sv_tls_conn *c, uint8_t *p, size_t n)
{
    if (c == NULL || c->ssl == NULL || (p == NULL && n))
        return SV_ERR_INVAL;
    return tls_io_all(c, 0, p, n, now_ms() + c->timeout_ms);
}

int64_t
sv_tls_deadline(int timeout_ms)
{
    return now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}

sv_status
sv_tls_write_until(sv_tls_conn *c, const uint8_t *p, size_t n, int64_t deadline)
{
    if (c == NULL || c->ssl == NULL || (p == NULL && n))
        return SV_ERR_INVAL;
    return tls_io(c, 1, (uint8_t *)(uintptr_t)p, n, deadline);
}

sv_status
sv_tls_read_until(sv_tls_conn *c, uint8_t *p, size_t n, int64_t deadline)
{
    if (c == NULL || c->ssl == NULL || (p == NULL && n))
        return SV_ERR_INVAL;
    return tls_io(c, 0, p, n, deadline);
}

int
sv_tls_conn_alive(sv_tls_conn *c)
{
    struct pollfd pfd = { -1, POLLIN, 0 };
    unsigned char b;
    int rc, e;

    if (c == NULL || c->ssl == NULL || c->broken)
        return 0;
    pfd.fd = c->fd;
    if ((rc = poll(&pfd, 1, 0)) == 0)
        return 1;
    if (rc > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
        io_fail(c, SV_ERR_NET_IO, "idle connection: the daemon reset or closed it");
        return 0;
    }
    /* the socket is non-blocking: this does not wait; it reads what is
     * waiting (a close, or post-handshake messages such as session
     * tickets, which OpenSSL takes in) */
    ERR_clear_error();
    rc = SSL_peek(c->ssl, &b, 1);
    e = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
    ERR_clear_error();
    if (rc <= 0 && e == SSL_ERROR_WANT_READ)
        return 1;
    /* closed, failed, or data nobody asked for: the stream is out of step */
    io_fail(c, SV_ERR_NET_IO, "idle connection: %s",
            rc > 0 ? "the daemon sent data nobody asked for" : "the daemon closed it");
    return 0;
}

sv_status
sv_tls_exchange(sv_tls_conn *c, const uint8_t *frame, size_t len, sv_wire_hdr *h,
                uint8_t **body)
{
    uint8_t hb[SV_WIRE_HDR_LEN];
    sv_wire_hdr req;
    sv_status st;
    int64_t deadline;

    if (body == NULL)
        return SV_ERR_INVAL;
    *body = NULL;
    if (c == NULL || c->ssl == NULL || frame == NULL || h == NULL || len < SV_WIRE_HDR_LEN)
        return SV_ERR_INVAL;
    if ((st = sv_wire_hdr_decode(frame, &req)) != SV_OK)
        return SV_ERR_INVAL;
    /* one deadline for the whole exchange */
    deadline = now_ms() + c->timeout_ms;
    if ((st = tls_io_all(c, 1, (uint8_t *)(uintptr_t)frame, len, deadline)) != SV_OK
        || (st = tls_io_all(c, 0, hb, sizeof(hb), deadline)) != SV_OK)
        return st;
    if ((st = sv_wire_hdr_decode(hb, h)) != SV_OK) {
        c->broken = 1;
        snprintf(c->err, sizeof(c->err), "malformed answer header from the daemon");
        return st;
    }
    /* the same request id, and the request's answer type or ERROR
     * (docs/protocol.md) */
    if (h->reqid != req.reqid || (h->type != (req.type | 0x80) && h->type != SV_MSG_ERROR)) {
        c->broken = 1;
        snprintf(c->err, sizeof(c->err), "the daemon's answer does not fit the request "
                 "(request id or type)");
        return SV_ERR_WIRE_MALFORMED;
    }
    /* answers may carry plaintexts: the secret heap when the host has one */
    if ((*body = sv_secret_alloc(h->body_len ? h->body_len : 1)) == NULL) {
        c->broken = 1; /* the body is still on the wire: out of step */
        return SV_ERR_NOMEM;
    }
    if (h->body_len && (st = tls_io_all(c, 0, *body, h->body_len, deadline)) != SV_OK) {
        sv_tls_body_free(*body, h->body_len);
        *body = NULL;
        return st == SV_ERR_TLS_HANDSHAKE ? st : SV_ERR_WIRE_TRUNCATED;
    }
    return SV_OK;
}

void
sv_tls_body_free(uint8_t *body, size_t len)
{
    if (body == NULL)
        return;
    sv_secret_free(body, len);
}

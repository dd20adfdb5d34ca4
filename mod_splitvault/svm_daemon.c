/*
 * svm_daemon.c - the client side of the module <-> splitvaultd protocol.
 *
 * Each child keeps, per server and per daemon of SplitVaultDaemon, a pool
 * (apr_reslist) of persistent mutual-TLS connections: TLS 1.3 only, the
 * daemon's certificate checked against SplitVaultDaemonCA and
 * SplitVaultDaemonName (or the endpoint's host), our client certificate
 * presented. A request asks svm_dbal.c which daemon (the least busy one
 * that is up), borrows a connection to it, writes one frame, reads one
 * answer frame and gives the connection back; any failure destroys that
 * connection, and the next request opens a fresh one (reconnect). Before a
 * pooled connection is reused it is checked for a close from the daemon's
 * side, so a daemon restart costs no failed request. A connect that fails
 * marks that daemon failed (svm_dbal.c) and the request moves on to another
 * within SplitVaultDaemonTimeout. A frame is never sent twice, to the same
 * daemon or another: once writing began, a failure is reported to the
 * caller (the daemon may have acted; orphan shares are reconcile's
 * business), and, when no byte of an answer came, to svm_dbal.c as well.
 * A daemon whose connections this child's requests all hold is passed
 * over; when every one's are, the request waits for one to come back
 * within its time. A failed daemon is tried over a new connection only.
 *
 * The reslist holds the pool's slots, not live connections: its constructor
 * only allocates an unconnected slot (it runs under the reslist's lock, which
 * every thread of the child needs to borrow or return a connection), and the
 * borrowing request connects it itself, outside that lock.
 *
 * The connections themselves are the core library's TLS client
 * (lib/sv_tlsclient), the one every client of the daemon uses: the context
 * (sv_tls_client_ctx: TLS 1.3, no session cache, record buffers cleansed
 * when released, SSL_OP_CLEANSE_PLAINTEXT, as they carry key shares and
 * plaintexts), the connect (sv_tls_connect_ex: TCP to each resolved address
 * in turn and the whole handshake within one deadline, what is left of
 * SplitVaultDaemonTimeout; it tells a daemon that closes before TLS apart),
 * the check of an idle connection (sv_tls_conn_alive) and the reads and
 * writes (sv_tls_write_until, sv_tls_read_until). The socket stays
 * non-blocking: each exchange (write the frame, read the whole answer) has
 * one deadline, SplitVaultDaemonTimeout (or the caller's timeout) from the
 * send, and every wait is a poll bounded by what is left of it, so a daemon
 * that sends a byte now and then cannot hold a request past it. What stays
 * here: the pool, the retries when the daemon closes before TLS, the
 * framing of an exchange (the answer's body goes to the request pool's
 * secret memory) and the log lines.
 *
 * Part of the API for the rest of the module: svm_daemon_call() for any
 * message; svm_daemon_store(), svm_daemon_status() and svm_daemon_confirm()
 * on top of it.
 */
#include "svm.h"
#include "svm_daemon.h"
#include "svm_config.h"
#include "svm_form.h"
#include "svm_dbal.h"
#include "apr_strings.h"
#include "apr_atomic.h"
#include "apr_reslist.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"

#include <limits.h>

#include <openssl/rand.h>

#include "sv_secret.h"
#include "sv_tlsclient.h"

/* One reslist per endpoint of SplitVaultDaemon, and how many of its
 * connections this process's requests hold (at most SplitVaultDaemonPool:
 * a request that would have to wait for one goes to another daemon; when
 * every pool is full it waits, within its time, for a connection of any
 * to come back: freed signals waiters). */
struct svm_dpool {
    apr_reslist_t **list;
    apr_uint32_t *inuse;
    apr_thread_mutex_t *mtx;
    apr_thread_cond_t *freed;
    apr_uint32_t waiters;
    server_rec *s;
    svm_srv_conf *sc;
};

typedef struct {
    sv_tls_conn *conn; /* NULL: a slot not connected yet */
    unsigned uses;     /* exchanges completed on this connection */
} svm_dconn;

static apr_uint32_t svm_reqid_counter;

uint32_t svm_daemon_reqid(void)
{
    return apr_atomic_inc32(&svm_reqid_counter) + 1;
}

static apr_status_t svm_ctx_cleanup(void *data)
{
    SSL_CTX_free(data);
    return APR_SUCCESS;
}

/* The client context for sc (lib/sv_tlsclient: the settings every client
 * of the daemon shares), freed with p; NULL and *err on failure. */
SSL_CTX *svm_daemon_ssl_ctx(apr_pool_t *p, server_rec *s, const svm_srv_conf *sc,
                            const char **err)
{
    sv_tls_client_conf tc = { sc->daemon_ca, sc->client_cert, sc->client_key,
                              "SplitVaultDaemonCA", "SplitVaultDaemonCertificate",
                              "SplitVaultDaemonKey" };
    char ebuf[SV_TLS_ERRLEN];
    SSL_CTX *ctx = NULL;

    (void)s;
    if (sv_tls_client_ctx(&tc, &ctx, ebuf, sizeof(ebuf)) != SV_OK) {
        *err = apr_pstrdup(p, ebuf);
        return NULL;
    }
    apr_pool_cleanup_register(p, ctx, svm_ctx_cleanup, apr_pool_cleanup_null);
    return ctx;
}

/* Close c's connection (a close_notify unless it failed) and leave the
 * slot unconnected. */
static void svm_dconn_close(svm_dconn *c)
{
    sv_tls_close(c->conn);
    c->conn = NULL;
}

/* t in milliseconds, rounded up, at least 1 and at most INT_MAX (0 or
 * less: 0). */
static int svm_ms(apr_interval_time_t t)
{
    apr_interval_time_t ms;

    if (t <= 0)
        return 0;
    ms = (t + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* apr_reslist constructor, run under the reslist's lock: an unconnected
 * slot only (the borrower connects it, svm_dconn_open). */
static apr_status_t svm_dconn_make(void **res, void *params, apr_pool_t *pool)
{
    svm_dconn *c = calloc(1, sizeof(*c));

    if (!c)
        return APR_ENOMEM;
    *res = c;
    return APR_SUCCESS;
}

/* One attempt (lib/sv_tlsclient: TCP to each address in turn, then the TLS
 * handshake) to endpoint i before deadline. APR_SUCCESS, APR_EAGAIN (the
 * daemon closed the connection before answering our ClientHello, as it
 * does past its caps, connections.max_handshakes and
 * max_handshakes_per_address, connections.max: worth another attempt; not
 * logged) or an error (logged; *cls and why say what failed, for
 * svm_dbal_failed). */
static apr_status_t svm_dconn_try(request_rec *r, const svm_srv_conf *sc, int i, svm_dconn *c,
                                  apr_time_t deadline, int last, svm_derr *cls, char *why)
{
    const svm_daemon_ep *ep = &APR_ARRAY_IDX(sc->daemons, i, svm_daemon_ep);
    char port[8];
    sv_tls_step step = SV_TLS_STEP_START;
    int ms = svm_ms(deadline - apr_time_now()), lvl;
    sv_status st;

    apr_snprintf(port, sizeof(port), "%u", (unsigned)ep->port);
    /* no time left: the shortest wait, and the library's "timed out" */
    st = sv_tls_connect_ex(sc->ssl_ctx, ep->host, port,
                           sc->daemon_name ? sc->daemon_name : ep->host, ms ? ms : 1,
                           &c->conn, &step, why, SV_TLS_ERRLEN);
    if (st == SV_OK)
        return APR_SUCCESS;
    c->conn = NULL;
    *cls = st == SV_ERR_NET_TIMEOUT ? SVM_DERR_TIMEOUT : SVM_DERR_TLS;
    switch (step) {
    case SV_TLS_STEP_TCP:
        if (st != SV_ERR_NET_TIMEOUT)
            *cls = SVM_DERR_CONNECT;
        /* an endpoint that is failed already: once per back-off window */
        lvl = svm_dbal_loud(r, sc, i) ? APLOG_ERR : APLOG_DEBUG;
        ap_log_rerror(APLOG_MARK, lvl, 0, r, "SV01701: cannot reach splitvaultd: %s", why);
        return APR_ECONNREFUSED;
    case SV_TLS_STEP_HANDSHAKE:
    case SV_TLS_STEP_VERIFY:
        if (st == SV_ERR_TLS_CLOSED && !last)
            return APR_EAGAIN;
        if (st == SV_ERR_TLS_CLOSED)
            *cls = SVM_DERR_CLOSED;
        else if (step == SV_TLS_STEP_VERIFY)
            *cls = SVM_DERR_CERT;
        /* why names the daemon's address: "TLS handshake with the daemon
         * failed (...): timed out", OpenSSL's reason with the certificate
         * verification result, or a close before TLS */
        lvl = svm_dbal_loud(r, sc, i) ? APLOG_ERR : APLOG_DEBUG;
        ap_log_rerror(APLOG_MARK, lvl, 0, r, "SV01702: %s%s", why,
                      st == SV_ERR_TLS_CLOSED ? ", at every attempt" : "");
        return APR_ECONNREFUSED;
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01703: cannot set up TLS for "
                      "splitvaultd: %s", why);
        return APR_EGENERAL;
    }
}

#define SVM_CONNECT_TRIES 4

/*
 * Connect a borrowed slot to endpoint i before deadline; the socket stays
 * non-blocking (svm_daemon_call bounds each exchange by its own deadline).
 * APR_SUCCESS or an error (logged; *cls and why for svm_dbal_failed). When
 * the daemon closes a connection before TLS (a burst of new connections
 * from this host met its handshake caps, as after a restart under load),
 * up to SVM_CONNECT_TRIES attempts are made, a random 10-40 ms apart,
 * doubling; nothing was sent yet, so trying again is safe.
 */
static apr_status_t svm_dconn_open(request_rec *r, const svm_srv_conf *sc, int i, svm_dconn *c,
                                   apr_time_t deadline, svm_derr *cls, char *why)
{
    const svm_daemon_ep *ep = &APR_ARRAY_IDX(sc->daemons, i, svm_daemon_ep);
    apr_interval_time_t pause = apr_time_from_msec(10);
    apr_status_t rv;

    for (int t = 1;; t++) {
        unsigned char rnd;
        apr_interval_time_t p;

        rv = svm_dconn_try(r, sc, i, c, deadline, t == SVM_CONNECT_TRIES, cls, why);
        if (rv != APR_EAGAIN)
            break;
        if (RAND_bytes(&rnd, 1) != 1)
            rnd = 128; /* the middle of the range: the pause only spreads retries */
        p = pause + pause * (apr_interval_time_t)rnd * 3 / 255;
        if (apr_time_now() + p >= deadline) {
            ap_log_rerror(APLOG_MARK, svm_dbal_loud(r, sc, i) ? APLOG_ERR : APLOG_DEBUG, 0, r,
                          "SV01718: splitvaultd at %s closed the connection before TLS and "
                          "the connect timeout is spent", ep->addr);
            *cls = SVM_DERR_CLOSED;
            apr_cpystrn(why, "closed the connection before TLS", SV_TLS_ERRLEN);
            return APR_ECONNREFUSED;
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "SV01719: splitvaultd at %s closed a "
                      "new connection before TLS at attempt %d of %d: trying again", ep->addr,
                      t, SVM_CONNECT_TRIES);
        apr_sleep(p);
        pause *= 2;
    }
    return rv;
}

static apr_status_t svm_dconn_destroy(void *res, void *params, apr_pool_t *pool)
{
    svm_dconn *c = res;

    svm_dconn_close(c);
    free(c);
    return APR_SUCCESS;
}

void svm_daemon_child_init(apr_pool_t *p, server_rec *s)
{
    svm_srv_conf *sc = svm_conf(s);
    svm_dpool *dp;
    apr_status_t rv;
    int i;

    if (!sc->ssl_ctx || sc->dpool)
        return;
    if (!svm_reqid_counter) {
        uint32_t seed = 0;
        /* request ids only pair an answer with its request: a failed
         * generator leaves them starting at 1 */
        if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
            seed = 0;
        apr_atomic_set32(&svm_reqid_counter, seed & 0x7fffffffu);
    }
    dp = apr_pcalloc(p, sizeof(*dp));
    dp->s = s;
    dp->sc = sc;
    dp->list = apr_pcalloc(p, sc->daemons->nelts * sizeof(*dp->list));
    dp->inuse = apr_pcalloc(p, sc->daemons->nelts * sizeof(*dp->inuse));
    if ((rv = apr_thread_mutex_create(&dp->mtx, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&dp->freed, p)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "SV01738: cannot create the daemon "
                     "connection pool's lock");
        return;
    }
    for (i = 0; i < sc->daemons->nelts; i++) {
        rv = apr_reslist_create(&dp->list[i], 0, sc->pool_max, sc->pool_max,
                                apr_time_from_sec(sc->pool_idle), svm_dconn_make,
                                svm_dconn_destroy, dp, p);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "SV01704: cannot create the daemon connection pool");
            /* none of them then: the requests of this server fail (SV01705) */
            while (--i >= 0)
                apr_reslist_destroy(dp->list[i]);
            return;
        }
        /* never waited on: a request holds one only after counting itself
         * in inuse, which stays within the list's size */
        apr_reslist_timeout_set(dp->list[i], sc->daemon_timeout);
    }
    sc->dpool = dp;
}

/* Give back the connection c of endpoint i, to the pool for reuse when
 * keep, else closed; the request's place in that pool is free again. */
static void svm_dconn_put(svm_dpool *dp, int i, svm_dconn *c, int keep)
{
    if (keep)
        apr_reslist_release(dp->list[i], c);
    else
        apr_reslist_invalidate(dp->list[i], c);
    apr_atomic_dec32(&dp->inuse[i]);
    /* after the count went down: a waiter that counted itself before
     * sees the count or is woken (svm_dconn_wait) */
    if (apr_atomic_read32(&dp->waiters) && apr_thread_mutex_lock(dp->mtx) == APR_SUCCESS) {
        apr_thread_cond_broadcast(dp->freed);
        apr_thread_mutex_unlock(dp->mtx);
    }
}

/* 1 when this process's requests hold every connection of endpoint i. */
static int svm_dconn_full(const svm_srv_conf *sc, int i)
{
    return apr_atomic_read32(&sc->dpool->inuse[i]) >= (apr_uint32_t)sc->pool_max;
}

/* Every endpoint not in tried is full in this process: wait until a
 * connection of the pool comes back or until (APR_SUCCESS: it came back,
 * or the wait cannot be made; APR_TIMEUP: the time is spent). */
static apr_status_t svm_dconn_wait(const svm_srv_conf *sc, apr_uint32_t tried, apr_time_t until)
{
    svm_dpool *dp = sc->dpool;
    apr_status_t rv = APR_SUCCESS;
    apr_time_t left = until - apr_time_now();
    int i, full = 1;

    if (left <= 0)
        return APR_TIMEUP;
    if (apr_thread_mutex_lock(dp->mtx) != APR_SUCCESS)
        return APR_TIMEUP;
    apr_atomic_inc32(&dp->waiters);
    for (i = 0; i < sc->daemons->nelts && full; i++)
        if (!(tried & (1u << i)) && !svm_dconn_full(sc, i))
            full = 0;
    if (full)
        rv = apr_thread_cond_timedwait(dp->freed, dp->mtx, left);
    apr_atomic_dec32(&dp->waiters);
    apr_thread_mutex_unlock(dp->mtx);
    return rv == APR_TIMEUP ? APR_TIMEUP : APR_SUCCESS;
}

/*
 * A connection to endpoint i, before deadline: an idle pooled one that is
 * still alive (unless fresh: then always a new connect), or a slot
 * connected now (*made set). APR_SUCCESS with *out; APR_EBUSY when every
 * connection of the endpoint is in use in this process (never waited
 * for: *cls SVM_DERR_NONE, the request moves on); otherwise *cls says
 * whether the endpoint is to blame and why what failed.
 */
static apr_status_t svm_dconn_get(request_rec *r, const svm_srv_conf *sc, int i,
                                  apr_time_t deadline, int fresh, svm_dconn **out, int *made,
                                  svm_derr *cls, char *why)
{
    svm_dpool *dp = sc->dpool;
    apr_reslist_t *list = dp->list[i];
    apr_status_t rv;
    int tries;

    *cls = SVM_DERR_NONE;
    *made = 0;
    if (apr_atomic_inc32(&dp->inuse[i]) >= (apr_uint32_t)sc->pool_max) {
        apr_atomic_dec32(&dp->inuse[i]);
        return APR_EBUSY;
    }
    /* A pooled connection the daemon has closed is dropped before use;
     * a whole pool of them after a daemon restart or death. */
    for (tries = 0; tries <= sc->pool_max + 1; tries++) {
        svm_dconn *c;
        void *res = NULL;

        rv = apr_reslist_acquire(list, &res);
        if (rv != APR_SUCCESS) {
            apr_atomic_dec32(&dp->inuse[i]);
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV01706: no connection to "
                          "splitvaultd");
            return rv;
        }
        c = res;
        if (c->conn && fresh)
            svm_dconn_close(c);
        if (!c->conn) {
            /* a fresh slot: connect it here, outside the reslist's lock */
            if ((rv = svm_dconn_open(r, sc, i, c, deadline, cls, why)) != APR_SUCCESS) {
                svm_dconn_put(dp, i, c, 0);
                return rv;
            }
            *made = 1;
            *out = c;
            return APR_SUCCESS;
        }
        if (sv_tls_conn_alive(c->conn)) {
            *out = c;
            return APR_SUCCESS;
        }
        apr_reslist_invalidate(list, c);
    }
    apr_atomic_dec32(&dp->inuse[i]);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01707: splitvaultd keeps closing "
                  "connections");
    *cls = SVM_DERR_CLOSED;
    apr_cpystrn(why, "it keeps closing connections", SV_TLS_ERRLEN);
    return APR_ECONNRESET;
}

/* The APR status for a failed read or write of an exchange. */
static apr_status_t svm_io_status(sv_status st)
{
    return st == SV_ERR_NET_TIMEOUT ? APR_TIMEUP : APR_EOF;
}

/* 1 when an endpoint of n is not in tried. */
static int svm_untried(apr_uint32_t tried, int n)
{
    for (int i = 0; i < n; i++)
        if (!(tried & (1u << i)))
            return 1;
    return 0;
}

apr_status_t svm_daemon_call(request_rec *r, const svm_srv_conf *sc, const sv_buf *frame,
                             uint32_t reqid, apr_interval_time_t timeout, svm_dreply *rep)
{
    svm_dpool *dp = sc->dpool;
    svm_dconn *c = NULL;
    uint8_t hdr[SV_WIRE_HDR_LEN];
    sv_wire_hdr h;
    uint8_t *body;
    apr_status_t rv = APR_ECONNREFUSED;
    apr_time_t until;
    apr_uint32_t tried = 0, full = 0;
    svm_dbal_how how = SVM_PICK_UP;
    svm_dbal_answer answer = SVM_DBAL_NO_ANSWER;
    int64_t deadline;
    sv_status st;
    int i, n, made = 0;

    memset(rep, 0, sizeof(*rep));
    if (!dp) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01705: no daemon connection pool in "
                      "this process");
        return APR_EINIT;
    }
    if (sv_buf_status(frame) != SV_OK)
        return APR_EINVAL;
    /* A connection, to one daemon after another (svm_dbal.c picks), all
     * within one SplitVaultDaemonTimeout: nothing is sent before one is
     * made, so a daemon that cannot be reached costs a retry elsewhere,
     * never a request. While another daemon is left to try, one attempt
     * takes at most half of what is left. A daemon whose connections are
     * all in use by this process's requests is passed over, never waited
     * for. */
    n = sc->daemons->nelts;
    until = apr_time_now() + sc->daemon_timeout;
    for (;;) {
        char why[SV_TLS_ERRLEN];
        svm_derr cls = SVM_DERR_NONE;
        apr_time_t now = apr_time_now(), d = until;

        full = 0;
        for (i = 0; i < n; i++)
            if (svm_dconn_full(sc, i))
                full |= 1u << i;
        if ((i = svm_dbal_pick(r, sc, tried, full, &how)) < 0) {
            int lvl;
            /* the pools of the daemons left are full: wait for one */
            if ((full & ~tried) && svm_dconn_wait(sc, tried, until) == APR_SUCCESS)
                continue;
            lvl = svm_dbal_loud_all() ? APLOG_ERR : APLOG_DEBUG;
            if (full & ~tried)
                ap_log_rerror(APLOG_MARK, lvl, 0, r, "SV01735: every connection of "
                              "SplitVaultDaemonPool to %s stayed in use in this process "
                              "for SplitVaultDaemonTimeout", tried ? "the daemons left to try"
                              : "every daemon");
            else if (n > 1)
                ap_log_rerror(APLOG_MARK, lvl, 0, r, "SV01723: none of the %d daemons "
                              "could be reached within SplitVaultDaemonTimeout", n);
            return rv;
        }
        if (svm_untried(tried | full | (1u << i), n) && now < until)
            d = now + (until - now) / 2;
        why[0] = '\0';
        /* a failed daemon is judged on a connection made now */
        rv = svm_dconn_get(r, sc, i, d, how != SVM_PICK_UP, &c, &made, &cls, why);
        if (rv == APR_SUCCESS)
            break;
        svm_dbal_done(r, sc, i, how, SVM_DBAL_NO_ANSWER);
        if (rv == APR_EBUSY)
            continue; /* full again: the loop's top counts it */
        tried |= 1u << i;
        /* no slot came free: not the daemon's fault */
        if (cls != SVM_DERR_NONE)
            svm_dbal_failed(r, sc, i, cls, why);
        if (apr_time_now() >= until) {
            if (n > 1 && svm_untried(tried, n))
                ap_log_rerror(APLOG_MARK, svm_dbal_loud_all() ? APLOG_ERR : APLOG_DEBUG, 0, r,
                              "SV01724: SplitVaultDaemonTimeout spent before another daemon "
                              "could be tried");
            return rv;
        }
    }
    /* from here on, never another daemon: the frame may reach this one */
    /* one deadline for the whole exchange, not one per read or write */
    rep->sent = apr_time_now();
    deadline = sv_tls_deadline(svm_ms(timeout > 0 ? timeout : sc->daemon_timeout));
    if ((st = sv_tls_write_until(c->conn, frame->data, frame->len, deadline)) != SV_OK) {
        rv = svm_io_status(st);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV01708: sending %s to splitvaultd "
                      "failed", sv_wire_type_name(sv_wire_frame_type(frame->data, frame->len)));
        svm_dbal_xfailed(r, sc, i, st == SV_ERR_NET_TIMEOUT ? "the frame could not be sent "
                         "in time" : "the connection closed while the frame was sent");
        goto fail;
    }
    if ((st = sv_tls_read_until(c->conn, hdr, sizeof(hdr), deadline)) != SV_OK) {
        rv = svm_io_status(st);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV01709: no answer from splitvaultd "
                      "(%s)", st == SV_ERR_NET_TIMEOUT ? "timed out" : "connection closed");
        svm_dbal_xfailed(r, sc, i, st == SV_ERR_NET_TIMEOUT ? "no answer in time"
                         : "the connection closed before an answer");
        goto fail;
    }
    if (sv_wire_hdr_decode(hdr, &h) != SV_OK || h.reqid != reqid
        || !((h.type & 0x80) || h.type == SV_MSG_ERROR)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01710: malformed answer header from "
                      "splitvaultd");
        svm_dbal_xfailed(r, sc, i, "a malformed answer header");
        rv = APR_EGENERAL;
        goto fail;
    }
    /* an answer: the daemon works (up again if it was failed and this
     * connection was made by this request; svm_dbal_done says so) */
    answer = made ? SVM_DBAL_ANSWER_FRESH : SVM_DBAL_ANSWER;
    /* straight into the request pool's secret memory: it may be plaintexts */
    body = svm_secret_palloc(r->pool, h.body_len);
    if (h.body_len && (st = sv_tls_read_until(c->conn, body, h.body_len, deadline)) != SV_OK) {
        rv = svm_io_status(st);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV01711: truncated answer from "
                      "splitvaultd");
        goto fail;
    }
    rep->type = h.type;
    rep->body = body;
    rep->body_len = h.body_len;
    if (h.type == SV_MSG_ERROR && sv_error_decode(body, h.body_len, &rep->err) != SV_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01712: malformed error answer from "
                      "splitvaultd");
        rv = APR_EGENERAL;
        goto fail;
    }
    c->uses++;
    svm_dconn_put(dp, i, c, 1);
    svm_dbal_done(r, sc, i, how, answer);
    rep->answered = 1;
    return APR_SUCCESS;

fail:
    svm_dconn_put(dp, i, c, 0);
    svm_dbal_done(r, sc, i, how, answer);
    return rv == APR_SUCCESS ? APR_EGENERAL : rv;
}

/* One request answered by ok_type or ERROR: send the frame b (encoded
 * with reqid, or not when enc is not SV_OK: APR_EINVAL, logged) and free
 * it, read the answer into rep (timeout 0: the configured one). An ERROR
 * answer gives APR_EGENERAL with its code in *werr when werr is given
 * (SV_WERR_INTERNAL for a code of 0); another type than ok_type gives
 * APR_EGENERAL. Both are logged here unless quiet is set: then the caller
 * says what they mean. APR_SUCCESS leaves an answer of ok_type in rep for
 * the caller to decode. */
static apr_status_t svm_daemon_exchange(request_rec *r, const svm_srv_conf *sc, sv_buf *b,
                                        sv_status enc, uint32_t reqid, const char *what,
                                        uint8_t ok_type, apr_interval_time_t timeout,
                                        int quiet, svm_dreply *rep, int *werr)
{
    apr_status_t rv;

    memset(rep, 0, sizeof(*rep));
    if (enc != SV_OK) {
        sv_buf_free(b);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01713: cannot encode %s: %s", what,
                      sv_strerror(enc));
        return APR_EINVAL;
    }
    rv = svm_daemon_call(r, sc, b, reqid, timeout, rep);
    sv_buf_free(b);
    if (rv != APR_SUCCESS)
        return rv;
    if (rep->type == SV_MSG_ERROR) {
        if (werr)
            *werr = rep->err.code ? rep->err.code : SV_WERR_INTERNAL;
        if (!quiet)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01714: splitvaultd refused %s: %s "
                          "(%s)", what, sv_wire_error_name(rep->err.code), rep->err.msg);
        return APR_EGENERAL;
    }
    if (rep->type != ok_type) {
        if (!quiet)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01715: unexpected answer to %s",
                          what);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t svm_daemon_store(request_rec *r, const svm_srv_conf *sc, const sv_store_req *req,
                              sv_store_resp *resp, int *werr, apr_time_t *sent)
{
    sv_buf b;
    uint32_t reqid = svm_daemon_reqid();
    svm_dreply rep;
    apr_status_t rv;
    unsigned i;

    *werr = 0;
    sv_buf_init(&b, 1, 0); /* carries key2b: a secret buffer */
    rv = svm_daemon_exchange(r, sc, &b, sv_store_req_encode(&b, reqid, req), reqid, "STORE",
                             SV_MSG_STORE_OK, 0, 0, &rep, werr);
    *sent = rep.sent;
    if (rv != APR_SUCCESS)
        return rv;
    if (sv_store_resp_decode(rep.body, rep.body_len, resp) != SV_OK || resp->n != req->n) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01720: unexpected answer to STORE");
        return APR_EGENERAL;
    }
    for (i = 0; i < resp->n; i++)
        if (resp->share_id[i] == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01716: STORE answer holds share "
                          "id 0");
            return APR_EGENERAL;
        }
    return APR_SUCCESS;
}

apr_status_t svm_daemon_status(request_rec *r, const svm_srv_conf *sc, sv_status_resp *out)
{
    sv_buf b;
    uint32_t reqid = svm_daemon_reqid();
    svm_dreply rep;
    apr_status_t rv;

    sv_buf_init(&b, 0, 0);
    rv = svm_daemon_exchange(r, sc, &b, sv_status_req_encode(&b, reqid), reqid, "STATUS",
                             SV_MSG_STATUS_OK, 0, 0, &rep, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    if (sv_status_resp_decode(rep.body, rep.body_len, out) != SV_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01717: unexpected answer to STATUS");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t svm_daemon_confirm(request_rec *r, const svm_srv_conf *sc,
                                const uint8_t uuid[SV_UUID_LEN], const char *actor,
                                const char *field, apr_uint64_t share_id,
                                const uint8_t pub[SV_X25519_LEN], int *confirmed)
{
    sv_confirm_req *req = apr_pcalloc(r->pool, sizeof(*req));
    sv_confirm_resp resp;
    uint32_t reqid = svm_daemon_reqid();
    svm_dreply rep;
    apr_status_t rv;
    sv_buf b;

    *confirmed = 0;
    memcpy(req->uuid, uuid, SV_UUID_LEN);
    apr_cpystrn(req->actor, actor, sizeof(req->actor));
    req->n = 1;
    apr_cpystrn(req->f[0].name, field, sizeof(req->f[0].name));
    req->f[0].share_id = share_id;
    req->f[0].pub = pub;
    sv_buf_init(&b, 0, 0);
    rv = svm_daemon_exchange(r, sc, &b, sv_confirm_req_encode(&b, reqid, req), reqid,
                             "CONFIRM", SV_MSG_CONFIRM_OK, 0, 0, &rep, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    if (sv_confirm_resp_decode(rep.body, rep.body_len, &resp) != SV_OK || resp.n != 1) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01722: unexpected answer to CONFIRM");
        return APR_EGENERAL;
    }
    *confirmed = resp.ok[0] == 1;
    return APR_SUCCESS;
}

apr_status_t svm_daemon_decrypt(request_rec *r, const svm_srv_conf *sc, sv_decrypt_req *req,
                                sv_decrypt_resp *resp, svm_dreply *rep, int *werr,
                                apr_uint32_t *retry_ms)
{
    uint32_t reqid = svm_daemon_reqid();
    unsigned i, n = req->n;
    apr_status_t rv;
    sv_status enc;
    sv_buf b;

    *werr = 0;
    *retry_ms = 0;
    memset(resp, 0, sizeof(*resp));
    req->wait_ms = (uint32_t)sc->decrypt_wait * 1000u;
    sv_buf_init(&b, 1, 0); /* key2a and key2b': a secret buffer */
    enc = sv_decrypt_req_encode(&b, reqid, req);
    /* the shares now live only in the frame */
    for (i = 0; i < n && i < SV_WIRE_MAX_FIELDS; i++) {
        if (req->f[i].key2a)
            sv_cleanse((void *)req->f[i].key2a, SV_X25519_LEN);
        if (req->f[i].new_key2b)
            sv_cleanse((void *)req->f[i].new_key2b, SV_X25519_LEN);
    }
    sv_cleanse(req, sizeof(*req));
    /* it may wait in the daemon's queue for SplitVaultDecryptWait */
    rv = svm_daemon_exchange(r, sc, &b, enc, reqid, "DECRYPT", SV_MSG_DECRYPT_OK,
                             apr_time_from_sec(sc->decrypt_wait) + sc->daemon_timeout, 1,
                             rep, werr);
    if (rv != APR_SUCCESS && *werr) {
        *retry_ms = rep->err.retry_ms;
        return rv;
    }
    if (rv != APR_SUCCESS && !rep->answered)
        return rv;
    if (rv != APR_SUCCESS || sv_decrypt_resp_decode(rep->body, rep->body_len, resp) != SV_OK
        || resp->n != n) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02115: unexpected answer to DECRYPT");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t svm_daemon_release(request_rec *r, const svm_srv_conf *sc,
                                const sv_release_req *req, int *werr)
{
    uint32_t reqid = svm_daemon_reqid();
    svm_dreply rep;
    sv_buf b;

    *werr = 0;
    sv_buf_init(&b, 0, 0);
    return svm_daemon_exchange(r, sc, &b, sv_release_req_encode(&b, reqid, req), reqid,
                               "RELEASE", SV_MSG_RELEASE_OK, 0, 1, &rep, werr);
}

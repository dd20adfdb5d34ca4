/*
 * test_tlsclient.c - the daemon's TLS client (lib/sv_tlsclient.c) against a
 * small TLS 1.3 server in a thread on 127.0.0.1: context set-up and its
 * refusals, name checks (DNS and IP), a foreign CA, connection refused,
 * a peer that closes before TLS or during the handshake, a handshake
 * timeout, the framed exchange (request id and answer type, truncated
 * answers, one deadline per exchange, a refused client certificate, the
 * body on the secure heap), the deadline-bounded reads and writes of
 * callers with their own framing, the idle-connection check, the step a
 * connect failed at, and closing a connection the peer has gone from with
 * SIGPIPE at its default.
 *
 * The PKI (a CA, the server's and the client's certificates, a foreign
 * CA) is made at run time in a temporary directory: no key in the tree.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <check.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sv_secret.h"
#include "sv_tlsclient.h"
#include "sv_wire.h"

static char dir[] = "/tmp/sv-tlsclient.XXXXXX";
static char ca_pem[256], srv_pem[256], srv_key[256], cli_pem[256], cli_key[256], other_pem[256];

/* ---- run-time PKI ---------------------------------------------------------- */

static EVP_PKEY *
make_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    if (k == NULL)
        abort();
    return k;
}

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v;
    X509_EXTENSION *e;

    X509V3_set_ctx(&v, issuer, cert, NULL, NULL, 0);
    if ((e = X509V3_EXT_conf_nid(NULL, &v, nid, value)) == NULL || !X509_add_ext(cert, e, -1))
        abort();
    X509_EXTENSION_free(e);
}

/* A certificate for key, named cn, signed by ikey (issuer icert; NULL:
 * self-signed CA). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *icert, EVP_PKEY *ikey, int server)
{
    static long serial = 1;
    X509 *c = X509_new();
    X509_NAME *n;

    if (c == NULL || !X509_set_version(c, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(c),
                                                                  serial++))
        abort();
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_set_pubkey(c, key);
    n = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, icert ? X509_get_subject_name(icert) : n);
    if (icert == NULL) {
        add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, icert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, icert, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
        if (server)
            add_ext(c, icert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    if (!X509_sign(c, ikey ? ikey : key, EVP_sha256()))
        abort();
    return c;
}

static void
write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || (cert && !PEM_write_X509(f, cert))
        || (key && !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) || fclose(f) != 0)
        abort();
}

static void
make_pki(void)
{
    EVP_PKEY *cak, *sk, *ck, *ok;
    X509 *ca, *s, *c, *o;

    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
    snprintf(srv_pem, sizeof(srv_pem), "%s/server.pem", dir);
    snprintf(srv_key, sizeof(srv_key), "%s/server.key", dir);
    snprintf(cli_pem, sizeof(cli_pem), "%s/client.pem", dir);
    snprintf(cli_key, sizeof(cli_key), "%s/client.key", dir);
    snprintf(other_pem, sizeof(other_pem), "%s/other.pem", dir);
    cak = make_key();
    sk = make_key();
    ck = make_key();
    ok = make_key();
    ca = make_cert(cak, "test CA", NULL, NULL, 0);
    s = make_cert(sk, "localhost", ca, cak, 1);
    c = make_cert(ck, "test client", ca, cak, 0);
    o = make_cert(ok, "other CA", NULL, NULL, 0);
    write_pem(ca_pem, ca, NULL);
    write_pem(srv_pem, s, NULL);
    write_pem(srv_key, NULL, sk);
    write_pem(cli_pem, c, NULL);
    write_pem(cli_key, NULL, ck);
    write_pem(other_pem, o, NULL);
    X509_free(ca);
    X509_free(s);
    X509_free(c);
    X509_free(o);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(ok);
}

static void
remove_pki(void)
{
    const char *files[] = { ca_pem, srv_pem, srv_key, cli_pem, cli_key, other_pem };

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(dir);
}

/* ---- the server ------------------------------------------------------------ */

enum {
    S_ANSWER,
    S_WRONG_ID,
    S_TRUNCATED,
    S_CLOSE,
    S_SILENT,
    S_WRONG_TYPE,   /* answers STORE_OK to STATUS */
    S_ERROR_TYPE,   /* answers ERROR (always allowed) */
    S_DRIBBLE,      /* the answer one byte every 0.3 s */
    S_SLOW,         /* the answer after 0.5 s */
    S_IDLE_CLOSE,   /* closes right after the handshake */
    S_REJECT,       /* refuses the client's certificate (foreign CA) */
    S_HALF_HELLO    /* a few bytes of a ServerHello, then closes */
};

/* Drain fd (raw) until the peer closes or 3 s pass. */
static void
drain(int fd)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    char b[4096];

    while (poll(&pfd, 1, 3000) > 0 && recv(fd, b, sizeof(b), 0) > 0)
        ;
}

struct server {
    int lfd, mode;
    char port[16];
    pthread_t th;
};

static int
srv_read(SSL *ssl, uint8_t *p, size_t n)
{
    size_t k;

    while (n) {
        if (SSL_read_ex(ssl, p, n, &k) != 1)
            return -1;
        p += k;
        n -= k;
    }
    return 0;
}

/* Serve one connection as mode says. */
static void *
server_main(void *arg)
{
    struct server *sv = arg;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    uint8_t hdr[SV_WIRE_HDR_LEN], ans[SV_WIRE_HDR_LEN + 3], body[64];
    sv_wire_hdr h;
    int fd;

    if ((fd = accept(sv->lfd, NULL, NULL)) < 0)
        return NULL;
    if (sv->mode == S_CLOSE)
        goto out;
    if (sv->mode == S_HALF_HELLO) {
        static const uint8_t rec[] = { 0x16, 0x03, 0x03, 0x00, 0x7a };
        struct pollfd pfd = { fd, POLLIN, 0 };
        char b[4096];

        /* the whole ClientHello, then the start of a record, then close */
        while (poll(&pfd, 1, 200) > 0 && recv(fd, b, sizeof(b), 0) > 0)
            ;
        if (send(fd, rec, sizeof(rec), MSG_NOSIGNAL) != (ssize_t)sizeof(rec))
            goto out;
        usleep(100 * 1000);
        goto out;
    }
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL
        || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        || SSL_CTX_use_certificate_file(ctx, srv_pem, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, srv_key, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_load_verify_locations(ctx, sv->mode == S_REJECT ? other_pem : ca_pem, NULL)
           != 1)
        goto out;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
        goto out;
    if (SSL_accept(ssl) != 1) {
        /* the alert is sent; read what the client sends until it closes,
         * so our close is a FIN, not a reset that could beat the alert */
        if (sv->mode == S_REJECT)
            drain(fd);
        SSL_free(ssl);
        ssl = NULL;
        goto out;
    }
    if (sv->mode == S_IDLE_CLOSE)
        goto out;
    if (srv_read(ssl, hdr, sizeof(hdr)) != 0 || sv_wire_hdr_decode(hdr, &h) != SV_OK
        || h.body_len > sizeof(body) || srv_read(ssl, body, h.body_len) != 0)
        goto out;
    /* answer: STATUS_OK with the body "abc" (or a promise of 10 bytes) */
    ans[0] = SV_WIRE_MAGIC0;
    ans[1] = SV_WIRE_MAGIC1;
    ans[2] = SV_WIRE_VERSION;
    ans[3] = sv->mode == S_WRONG_TYPE ? SV_MSG_STORE_OK
             : sv->mode == S_ERROR_TYPE ? SV_MSG_ERROR : SV_MSG_STATUS_OK;
    if (sv->mode == S_WRONG_ID)
        h.reqid++;
    ans[4] = (uint8_t)(h.reqid >> 24);
    ans[5] = (uint8_t)(h.reqid >> 16);
    ans[6] = (uint8_t)(h.reqid >> 8);
    ans[7] = (uint8_t)h.reqid;
    ans[8] = ans[9] = ans[10] = 0;
    ans[11] = sv->mode == S_TRUNCATED ? 10 : 3;
    memcpy(ans + SV_WIRE_HDR_LEN, "abc", 3);
    if (sv->mode == S_DRIBBLE) {
        size_t k;

        for (size_t i = 0; i < sizeof(ans); i++) {
            usleep(300 * 1000);
            if (SSL_write_ex(ssl, ans + i, 1, &k) != 1)
                goto out;
        }
    }
    else if (sv->mode != S_SILENT) {
        size_t k;

        if (sv->mode == S_SLOW)
            usleep(500 * 1000);
        if (SSL_write_ex(ssl, ans, sizeof(ans), &k) != 1)
            goto out;
    }
    /* until the client closes */
    while (SSL_read_ex(ssl, body, sizeof(body), &(size_t){ 0 }) == 1)
        ;
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
    return NULL;
}

/* A listener on 127.0.0.1 and a free port; with serve, a thread that
 * serves one connection in mode. */
static void
server_start(struct server *sv, int mode, int serve)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    memset(sv, 0, sizeof(*sv));
    sv->mode = mode;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(sv->lfd, 0);
    ck_assert_int_eq(bind(sv->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(sv->lfd, 4), 0);
    ck_assert_int_eq(getsockname(sv->lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(sv->port, sizeof(sv->port), "%u", (unsigned)ntohs(sa.sin_port));
    if (serve)
        ck_assert_int_eq(pthread_create(&sv->th, NULL, server_main, sv), 0);
}

static void
server_stop(struct server *sv, int serve)
{
    if (serve)
        pthread_join(sv->th, NULL);
    close(sv->lfd);
}

static SSL_CTX *
client_ctx(const char *ca)
{
    sv_tls_client_conf tc = { ca, cli_pem, cli_key, "--ca", "--cert", "--key" };
    char err[SV_TLS_ERRLEN];
    SSL_CTX *ctx = NULL;

    ck_assert_msg(sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)) == SV_OK, "%s", err);
    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/* A STATUS request frame with request id 7 and no body. */
static const uint8_t status_frame[SV_WIRE_HDR_LEN] = {
    SV_WIRE_MAGIC0, SV_WIRE_MAGIC1, SV_WIRE_VERSION, SV_MSG_STATUS, 0, 0, 0, 7, 0, 0, 0, 0
};

/* ---- tests ------------------------------------------------------------------ */

/* Set-up refuses missing arguments, unreadable files and a key that does
 * not match the certificate, naming the file by the caller's label. */
START_TEST(test_ctx_refusals)
{
    sv_tls_client_conf tc = { ca_pem, cli_pem, cli_key, "--ca", "--cert", "--key" };
    char err[SV_TLS_ERRLEN];
    SSL_CTX *ctx = (SSL_CTX *)&tc;

    ck_assert_int_eq(sv_tls_client_ctx(NULL, &ctx, err, sizeof(err)), SV_ERR_INVAL);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(sv_tls_client_ctx(&tc, NULL, err, sizeof(err)), SV_ERR_INVAL);
    tc.ca = "/nonexistent/ca.pem";
    ck_assert_int_eq(sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)), SV_ERR_TLS_SETUP);
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(err, "--ca /nonexistent/ca.pem: ") == err, "%s", err);
    tc.ca = ca_pem;
    tc.cert = "/nonexistent/c.pem";
    ck_assert_int_eq(sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)), SV_ERR_TLS_SETUP);
    ck_assert_msg(strstr(err, "--cert /nonexistent/c.pem: ") == err, "%s", err);
    tc.cert = cli_pem;
    tc.key = srv_key;
    ck_assert_int_eq(sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)), SV_ERR_TLS_SETUP);
    /* OpenSSL refuses it while loading it (the check after is the backstop) */
    ck_assert_msg(strncmp(err, "--key ", 6) == 0
                  && (strstr(err, "mismatch") || strstr(err, "does not match --cert")), "%s", err);
    tc.key = cli_key;
    tc.ca_what = tc.cert_what = tc.key_what = NULL;
    tc.key = "/nonexistent/k.pem";
    ck_assert_int_eq(sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)), SV_ERR_TLS_SETUP);
    ck_assert_msg(strstr(err, "key /nonexistent/k.pem: ") == err, "%s", err);
    tc.key = cli_key;
    ck_assert_int_eq(sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)), SV_OK);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    ck_assert(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER);
    ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_free(ctx);
}
END_TEST

/* Start a server in mode and connect to it by name, within timeout_ms:
 * the connection (the test closes it). */
static sv_tls_conn *
connect_to(struct server *sv, SSL_CTX *ctx, int mode, int timeout_ms)
{
    sv_tls_conn *c = NULL;
    char err[SV_TLS_ERRLEN];

    server_start(sv, mode, 1);
    ck_assert_msg(sv_tls_connect(ctx, "127.0.0.1", sv->port, "localhost", timeout_ms, &c, err,
                                 sizeof(err)) == SV_OK, "%s", err);
    return c;
}

/* A server in mode (serving or not) that the handshake cannot complete
 * with: want, and an error text that says needle. */
static void
connect_fails(int mode, int serve, int timeout_ms, sv_status want, const char *needle)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = (sv_tls_conn *)&sv;
    char err[SV_TLS_ERRLEN];

    server_start(&sv, mode, serve);
    ck_assert_int_eq(sv_tls_connect(ctx, "127.0.0.1", sv.port, "localhost", timeout_ms, &c, err,
                                    sizeof(err)), want);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, needle) != NULL, "%s", err);
    server_stop(&sv, serve);
    SSL_CTX_free(ctx);
}

/* A good handshake by DNS name and by IP address; one exchange. */
static void
connect_and_exchange(const char *name)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    char err[SV_TLS_ERRLEN];
    sv_wire_hdr h;
    uint8_t *body = NULL;

    server_start(&sv, S_ANSWER, 1);
    ck_assert_msg(sv_tls_connect(ctx, "127.0.0.1", sv.port, name, 5000, &c, err, sizeof(err))
                  == SV_OK, "%s", err);
    ck_assert_ptr_nonnull(sv_tls_conn_ssl(c));
    ck_assert_int_eq(SSL_version(sv_tls_conn_ssl(c)), TLS1_3_VERSION);
    ck_assert_int_eq(sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body), SV_OK);
    ck_assert_int_eq(h.type, SV_MSG_STATUS_OK);
    ck_assert_uint_eq(h.reqid, 7);
    ck_assert_uint_eq(h.body_len, 3);
    ck_assert_mem_eq(body, "abc", 3);
    sv_tls_body_free(body, h.body_len);
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}

START_TEST(test_connect_dns_name)
{
    connect_and_exchange("localhost");
}
END_TEST

START_TEST(test_connect_ip_name)
{
    connect_and_exchange("127.0.0.1");
}
END_TEST

/* The wrong name, or a CA that did not sign the daemon's certificate: the
 * handshake fails and the text says why. */
static void
refused(const char *ca, const char *name, const char *want)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca);
    sv_tls_conn *c = (sv_tls_conn *)&sv;
    char err[SV_TLS_ERRLEN];

    server_start(&sv, S_ANSWER, 1);
    ck_assert_int_eq(sv_tls_connect(ctx, "127.0.0.1", sv.port, name, 5000, &c, err, sizeof(err)),
                     SV_ERR_TLS_HANDSHAKE);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "TLS handshake with the daemon failed") == err, "%s", err);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}

START_TEST(test_wrong_name)
{
    refused(ca_pem, "daemon.example", "certificate: ");
    refused(ca_pem, "127.0.0.2", "certificate: ");
}
END_TEST

START_TEST(test_foreign_ca)
{
    refused(other_pem, "localhost", "certificate: ");
}
END_TEST

/* Nobody listening: SV_ERR_NET_CONNECT. */
START_TEST(test_connection_refused)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    char err[SV_TLS_ERRLEN];

    server_start(&sv, S_ANSWER, 0);
    server_stop(&sv, 0); /* the port is free again */
    ck_assert_int_eq(sv_tls_connect(ctx, "127.0.0.1", sv.port, "localhost", 5000, &c, err,
                                    sizeof(err)), SV_ERR_NET_CONNECT);
    ck_assert_msg(strstr(err, "cannot connect to the daemon") == err, "%s", err);
    ck_assert_int_eq(sv_tls_connect(ctx, "127.0.0.1", "not-a-port", "localhost", 5000, &c, err,
                                    sizeof(err)), SV_ERR_NET_RESOLVE);
    ck_assert_int_eq(sv_tls_connect(ctx, "127.0.0.1", sv.port, "localhost", 0, &c, err,
                                    sizeof(err)), SV_ERR_INVAL);
    SSL_CTX_free(ctx);
}
END_TEST

/* Accepted, then closed before TLS: SV_ERR_TLS_CLOSED (safe to retry). */
START_TEST(test_closed_before_tls)
{
    connect_fails(S_CLOSE, 1, 5000, SV_ERR_TLS_CLOSED, "closed the connection before TLS");
}
END_TEST

/* TCP accepted by the kernel, no ServerHello ever: the deadline ends it. */
START_TEST(test_handshake_timeout)
{
    connect_fails(S_ANSWER, 0, 300, SV_ERR_NET_TIMEOUT, "timed out");
}
END_TEST

/* Answers that do not fit the request: a foreign request id, a body cut
 * short, no answer within the timeout. */
static void
bad_answer(int mode, sv_status want)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    sv_wire_hdr h;
    uint8_t *body = (uint8_t *)&sv;

    c = connect_to(&sv, ctx, mode, 1000);
    ck_assert_int_eq(sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body), want);
    ck_assert_ptr_null(body);
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}

START_TEST(test_wrong_request_id)
{
    bad_answer(S_WRONG_ID, SV_ERR_WIRE_MALFORMED);
}
END_TEST

START_TEST(test_truncated_answer)
{
    bad_answer(S_TRUNCATED, SV_ERR_WIRE_TRUNCATED);
}
END_TEST

START_TEST(test_no_answer)
{
    bad_answer(S_SILENT, SV_ERR_NET_IO);
}
END_TEST

/* The answer must be of the request's answer type, or ERROR. */
START_TEST(test_wrong_answer_type)
{
    bad_answer(S_WRONG_TYPE, SV_ERR_WIRE_MALFORMED);
}
END_TEST

START_TEST(test_error_answer)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    sv_wire_hdr h;
    uint8_t *body = NULL;

    c = connect_to(&sv, ctx, S_ERROR_TYPE, 5000);
    ck_assert_int_eq(sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body), SV_OK);
    ck_assert_int_eq(h.type, SV_MSG_ERROR);
    sv_tls_body_free(body, h.body_len);
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A daemon that sends its answer a byte every 0.3 s cannot stretch a 1 s
 * timeout: the exchange has one deadline, not one per read. */
START_TEST(test_dribble_deadline)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    sv_wire_hdr h;
    uint8_t *body = NULL;
    int64_t t0, took;
    sv_status st;

    c = connect_to(&sv, ctx, S_DRIBBLE, 1000);
    t0 = mono_ms();
    st = sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body);
    took = mono_ms() - t0;
    ck_assert_int_eq(st, SV_ERR_NET_IO);
    ck_assert_ptr_null(body);
    ck_assert_msg(took >= 900 && took < 1600, "the exchange took %lld ms", (long long)took);
    ck_assert_msg(strstr(sv_tls_conn_error(c), "timed out") != NULL, "%s", sv_tls_conn_error(c));
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

/* A caller with its own framing shares one deadline among its writes and
 * reads (sv_tls_write_until, sv_tls_read_until): a dribbling daemon
 * cannot stretch it, and the timeout is told apart from a close. */
START_TEST(test_deadline_io)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    uint8_t hb[SV_WIRE_HDR_LEN];
    int64_t t0, took, deadline;
    sv_status st;

    c = connect_to(&sv, ctx, S_DRIBBLE, 5000);
    t0 = mono_ms();
    deadline = sv_tls_deadline(1000);
    ck_assert_int_eq(sv_tls_write_until(c, status_frame, sizeof(status_frame), deadline), SV_OK);
    st = sv_tls_read_until(c, hb, sizeof(hb), deadline);
    took = mono_ms() - t0;
    ck_assert_int_eq(st, SV_ERR_NET_TIMEOUT);
    ck_assert_msg(took >= 900 && took < 1600, "the reads took %lld ms", (long long)took);
    ck_assert_msg(strstr(sv_tls_conn_error(c), "timed out") != NULL, "%s", sv_tls_conn_error(c));
    ck_assert_int_eq(sv_tls_read_until(c, hb, sizeof(hb), sv_tls_deadline(1000)),
                     SV_ERR_NET_IO); /* broken */
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

/* A connection idle in a pool: usable after an exchange (the session
 * tickets taken in are housekeeping), not once the daemon closed it; and
 * a read from a closed one is SV_ERR_NET_IO, not a timeout. */
START_TEST(test_conn_alive)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    uint8_t hb[SV_WIRE_HDR_LEN], body[3];
    int64_t deadline;
    sv_wire_hdr h;

    ck_assert_int_eq(sv_tls_conn_alive(NULL), 0);
    c = connect_to(&sv, ctx, S_ANSWER, 5000);
    usleep(100 * 1000);
    ck_assert_int_eq(sv_tls_conn_alive(c), 1);
    deadline = sv_tls_deadline(2000);
    ck_assert_int_eq(sv_tls_write_until(c, status_frame, sizeof(status_frame), deadline), SV_OK);
    ck_assert_int_eq(sv_tls_read_until(c, hb, sizeof(hb), deadline), SV_OK);
    ck_assert_int_eq(sv_wire_hdr_decode(hb, &h), SV_OK);
    ck_assert_uint_eq(h.body_len, 3);
    ck_assert_int_eq(sv_tls_read_until(c, body, 3, deadline), SV_OK);
    ck_assert_mem_eq(body, "abc", 3);
    ck_assert_int_eq(sv_tls_conn_alive(c), 1);
    sv_tls_close(c);
    server_stop(&sv, 1);

    c = connect_to(&sv, ctx, S_IDLE_CLOSE, 5000);
    usleep(300 * 1000); /* the server has closed by now */
    ck_assert_int_eq(sv_tls_conn_alive(c), 0);
    ck_assert_msg(strstr(sv_tls_conn_error(c), "idle connection") != NULL, "%s",
                  sv_tls_conn_error(c));
    ck_assert_int_eq(sv_tls_conn_alive(c), 0);
    sv_tls_close(c);
    server_stop(&sv, 1);

    c = connect_to(&sv, ctx, S_IDLE_CLOSE, 5000);
    usleep(300 * 1000);
    ck_assert_int_eq(sv_tls_read_until(c, hb, sizeof(hb), sv_tls_deadline(2000)),
                     SV_ERR_NET_IO);
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

/* sv_tls_connect_ex says which step failed: a timeout in the handshake
 * is told apart from one in TCP. */
START_TEST(test_connect_steps)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    char err[SV_TLS_ERRLEN];
    sv_tls_step step = SV_TLS_STEP_DONE;

    ck_assert_int_eq(sv_tls_connect_ex(ctx, "127.0.0.1", "1", "localhost", 0, &c, &step, err,
                                       sizeof(err)), SV_ERR_INVAL);
    ck_assert_int_eq(step, SV_TLS_STEP_START);
    server_start(&sv, S_ANSWER, 0); /* accepted by the kernel, no TLS */
    ck_assert_int_eq(sv_tls_connect_ex(ctx, "127.0.0.1", sv.port, "localhost", 300, &c, &step,
                                       err, sizeof(err)), SV_ERR_NET_TIMEOUT);
    ck_assert_int_eq(step, SV_TLS_STEP_HANDSHAKE);
    server_stop(&sv, 0);
    ck_assert_int_eq(sv_tls_connect_ex(ctx, "127.0.0.1", sv.port, "localhost", 5000, &c, &step,
                                       err, sizeof(err)), SV_ERR_NET_CONNECT);
    ck_assert_int_eq(step, SV_TLS_STEP_TCP);
    ck_assert_int_eq(sv_tls_connect_ex(ctx, "127.0.0.1", "not-a-port", "localhost", 5000, &c,
                                       &step, err, sizeof(err)), SV_ERR_NET_RESOLVE);
    ck_assert_int_eq(step, SV_TLS_STEP_TCP);
    server_start(&sv, S_CLOSE, 1);
    ck_assert_int_eq(sv_tls_connect_ex(ctx, "127.0.0.1", sv.port, "localhost", 5000, &c, &step,
                                       err, sizeof(err)), SV_ERR_TLS_CLOSED);
    ck_assert_int_eq(step, SV_TLS_STEP_HANDSHAKE);
    server_stop(&sv, 1);
    server_start(&sv, S_ERROR_TYPE, 1);
    ck_assert_msg(sv_tls_connect_ex(ctx, "127.0.0.1", sv.port, "localhost", 5000, &c, &step,
                                    err, sizeof(err)) == SV_OK, "%s", err);
    ck_assert_int_eq(step, SV_TLS_STEP_DONE);
    sv_tls_close(c);
    server_stop(&sv, 1);
    /* a certificate that is not for the name: the verify step */
    server_start(&sv, S_ERROR_TYPE, 1);
    ck_assert_int_eq(sv_tls_connect_ex(ctx, "127.0.0.1", sv.port, "elsewhere.example", 5000,
                                       &c, &step, err, sizeof(err)), SV_ERR_TLS_HANDSHAKE);
    ck_assert_int_eq(step, SV_TLS_STEP_VERIFY);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

static void
on_alarm(int sig)
{
    (void)sig;
}

/* Signals while the client waits for an answer (no SA_RESTART: each one
 * interrupts the wait) do not end the exchange. */
START_TEST(test_signals_do_not_abort)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    char err[SV_TLS_ERRLEN];
    sv_wire_hdr h;
    uint8_t *body = NULL;
    struct sigaction sa;
    struct itimerval it = { { 0, 20000 }, { 0, 20000 } }, off = { { 0, 0 }, { 0, 0 } };
    sigset_t alrm;
    sv_status st;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    /* only this thread takes them: the server thread starts with them blocked */
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    server_start(&sv, S_SLOW, 1);
    pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
    ck_assert_msg(sv_tls_connect(ctx, "127.0.0.1", sv.port, "localhost", 5000, &c, err,
                                 sizeof(err)) == SV_OK, "%s", err);
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    st = sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body);
    setitimer(ITIMER_REAL, &off, NULL);
    ck_assert_msg(st == SV_OK, "status %d: %s", (int)st, sv_tls_conn_error(c));
    ck_assert_uint_eq(h.body_len, 3);
    sv_tls_body_free(body, h.body_len);
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

/* The daemon went away while the connection was idle: the exchange fails
 * and closing the connection must not write to the dead socket (SIGPIPE
 * at its default kills the process). Run in a child with SIGPIPE at its
 * default: the test program ignores it. */
START_TEST(test_close_after_failure_no_sigpipe)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    int status = 0;
    pid_t pid;

    server_start(&sv, S_IDLE_CLOSE, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        sv_tls_conn *c = NULL;
        char err[SV_TLS_ERRLEN];
        sv_wire_hdr h;
        uint8_t *body = NULL;

        signal(SIGPIPE, SIG_DFL);
        close(sv.lfd);
        if (sv_tls_connect(ctx, "127.0.0.1", sv.port, "localhost", 2000, &c, err, sizeof(err))
            != SV_OK)
            _exit(2);
        usleep(300 * 1000); /* the server has closed by now */
        if (sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body) == SV_OK)
            _exit(3);
        usleep(100 * 1000); /* its reset to our request is in */
        sv_tls_close(c);
        _exit(0);
    }
    ck_assert_int_eq(pthread_create(&sv.th, NULL, server_main, &sv), 0);
    server_stop(&sv, 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!WIFSIGNALED(status), "the client died of signal %d",
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    SSL_CTX_free(ctx);
}
END_TEST

/* TLS 1.3: the daemon checks our certificate after our handshake is done;
 * its refusal arrives on the first read and is reported as such, with
 * OpenSSL's reason. */
START_TEST(test_client_cert_refused)
{
    struct server sv;
    SSL_CTX *ctx = client_ctx(ca_pem);
    sv_tls_conn *c = NULL;
    sv_wire_hdr h;
    uint8_t *body = NULL;

    c = connect_to(&sv, ctx, S_REJECT, 2000);
    ck_assert_str_eq(sv_tls_conn_error(c), "no error");
    ck_assert_int_eq(sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body),
                     SV_ERR_TLS_HANDSHAKE);
    ck_assert_ptr_null(body);
    ck_assert_msg(strstr(sv_tls_conn_error(c), "TLS alert from the daemon: ") != NULL
                  && strstr(sv_tls_conn_error(c), "unknown ca") != NULL, "%s",
                  sv_tls_conn_error(c));
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

/* Closed after the server's first bytes: not "before TLS" (that would
 * blame the connection caps), but during the handshake. */
START_TEST(test_closed_during_handshake)
{
    connect_fails(S_HALF_HELLO, 1, 5000, SV_ERR_TLS_HANDSHAKE,
                  "closed the connection during the handshake");
}
END_TEST

/* With a secure heap set up, the answer's body lives on it. */
START_TEST(test_body_on_secure_heap)
{
    struct server sv;
    SSL_CTX *ctx;
    sv_tls_conn *c = NULL;
    sv_wire_hdr h;
    uint8_t *body = NULL;

    sv_secret_init(1 << 16);
    ck_assert(CRYPTO_secure_malloc_initialized());
    ctx = client_ctx(ca_pem);
    c = connect_to(&sv, ctx, S_ANSWER, 5000);
    ck_assert_int_eq(sv_tls_exchange(c, status_frame, sizeof(status_frame), &h, &body), SV_OK);
    ck_assert(CRYPTO_secure_allocated(body));
    sv_tls_body_free(body, h.body_len);
    sv_tls_close(c);
    server_stop(&sv, 1);
    SSL_CTX_free(ctx);
}
END_TEST

/* A DNS name check takes a wildcard only as a whole left-most label. */
START_TEST(test_no_partial_wildcards)
{
    SSL_CTX *ctx = client_ctx(ca_pem);
    SSL *ssl = SSL_new(ctx);

    ck_assert_ptr_nonnull(ssl);
    ck_assert_int_eq(sv_tls_client_set_peer(ssl, "localhost"), SV_OK);
    ck_assert(X509_VERIFY_PARAM_get_hostflags(SSL_get0_param(ssl))
              & X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}
END_TEST

/* Not a frame: refused before anything is sent. */
START_TEST(test_exchange_arguments)
{
    sv_wire_hdr h;
    uint8_t *body = (uint8_t *)&h, junk[SV_WIRE_HDR_LEN] = { 0 };

    ck_assert_int_eq(sv_tls_exchange(NULL, status_frame, sizeof(status_frame), &h, &body),
                     SV_ERR_INVAL);
    ck_assert_ptr_null(body);
    ck_assert_int_eq(sv_tls_exchange((sv_tls_conn *)&h, junk, sizeof(junk), &h, &body),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_tls_client_set_peer(NULL, "localhost"), SV_ERR_INVAL);
    sv_tls_close(NULL);
    sv_tls_body_free(NULL, 0);
}
END_TEST

static Suite *
tlsclient_suite(void)
{
    Suite *s = suite_create("tlsclient");
    TCase *tc = tcase_create("tlsclient");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ctx_refusals);
    tcase_add_test(tc, test_connect_dns_name);
    tcase_add_test(tc, test_connect_ip_name);
    tcase_add_test(tc, test_wrong_name);
    tcase_add_test(tc, test_foreign_ca);
    tcase_add_test(tc, test_connection_refused);
    tcase_add_test(tc, test_closed_before_tls);
    tcase_add_test(tc, test_handshake_timeout);
    tcase_add_test(tc, test_wrong_request_id);
    tcase_add_test(tc, test_truncated_answer);
    tcase_add_test(tc, test_no_answer);
    tcase_add_test(tc, test_exchange_arguments);
    tcase_add_test(tc, test_wrong_answer_type);
    tcase_add_test(tc, test_error_answer);
    tcase_add_test(tc, test_dribble_deadline);
    tcase_add_test(tc, test_signals_do_not_abort);
    tcase_add_test(tc, test_close_after_failure_no_sigpipe);
    tcase_add_test(tc, test_client_cert_refused);
    tcase_add_test(tc, test_closed_during_handshake);
    tcase_add_test(tc, test_body_on_secure_heap);
    tcase_add_test(tc, test_no_partial_wildcards);
    tcase_add_test(tc, test_deadline_io);
    tcase_add_test(tc, test_conn_alive);
    tcase_add_test(tc, test_connect_steps);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    make_pki();
    sr = srunner_create(tlsclient_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_pki();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

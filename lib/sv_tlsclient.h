/*
 * sv_tlsclient.h - the one mutual-TLS client of splitvaultd.
 *
 * Every program that talks to the daemon (splitvault-admin reconcile, the
 * benchmark's load generator, the module's pooled connections) gets the
 * same connect and I/O code and the same TLS: 1.3 only, the daemon's
 * certificate verified against the configured CA and checked for the
 * expected name (DNS name, or IP address when the name is a literal
 * address), our client certificate chain and key presented, the key
 * checked against the certificate, no session cache, and OpenSSL's record
 * buffers cleansed when released (SSL_OP_CLEANSE_PLAINTEXT: they carry key
 * shares and plaintexts).
 *
 * Plain C on OpenSSL and POSIX sockets; no APR. Error texts name the step,
 * the file or address and OpenSSL's reason; they never hold key material
 * or message contents. Each function returns an sv_status and, where it
 * takes one, writes a one-line text into err (always NUL-terminated).
 *
 * Ownership: the caller owns the SSL_CTX from sv_tls_client_ctx() (free it
 * with SSL_CTX_free() after every connection made from it is closed), and
 * each sv_tls_conn from sv_tls_connect() (sv_tls_close()). One connection
 * is used by one thread at a time; one context may serve many threads.
 *
 * SIGPIPE: this client writes with plain send(2) (OpenSSL's socket BIO), so
 * a write to a connection the daemon has reset raises SIGPIPE. Programs
 * that use it must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN) in main():
 * splitvault-admin and svbench do; httpd does for the module); a failed
 * write is then an error status like any other. The client itself never
 * writes again on a connection after a failure (no close_notify on a
 * broken connection).
 */
#ifndef SV_TLSCLIENT_H
#define SV_TLSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "sv_err.h"
#include "sv_wire.h"

/* Room for any error text of this file. */
#define SV_TLS_ERRLEN 512

/* What the client presents and what it trusts. The *_what labels name the
 * settings in error texts ("--ca", "SplitVaultDaemonCA", ...); NULL gives
 * "CA file", "certificate", "key". */
typedef struct {
    const char *ca;   /* PEM: the CA(s) that sign the daemon's certificate */
    const char *cert; /* PEM: our client certificate, then its chain */
    const char *key;  /* PEM: its private key (not encrypted) */
    const char *ca_what, *cert_what, *key_what;
} sv_tls_client_conf;

/* A client context for conf into *out (NULL on failure). SV_OK, or
 * SV_ERR_TLS_SETUP (a file cannot be loaded, the key does not match the
 * certificate, TLS 1.3 unavailable; err says which) or SV_ERR_INVAL. */
sv_status sv_tls_client_ctx(const sv_tls_client_conf *conf, SSL_CTX **out, char *err,
                            size_t errlen);

/* Make ssl verify that the daemon's certificate is for name: an IP address
 * check when name is a literal IPv4 or IPv6 address, else a DNS name check
 * (a wildcard only as a whole left-most label:
 * X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS) plus SNI. sv_tls_connect() does
 * this; for a caller that runs its own handshake. SV_OK or
 * SV_ERR_TLS_SETUP (SV_ERR_INVAL without ssl or name). */
sv_status sv_tls_client_set_peer(SSL *ssl, const char *name);

/* One connection to the daemon. */
typedef struct sv_tls_conn sv_tls_conn;

/*
 * Connect to host:port (every address getaddrinfo gives, in turn, each
 * given what is left of the timeout divided by the addresses left, at
 * least a second) and complete the TLS handshake, verifying the daemon's
 * certificate for name, all within timeout_ms. On success *out is the
 * connection; its socket stays non-blocking, and each later
 * sv_tls_exchange(), sv_tls_read_all() or sv_tls_write_all() call has one
 * deadline, timeout_ms from its start (not per system call: a daemon that
 * sends a byte now and then cannot stretch it). Failures:
 * SV_ERR_NET_RESOLVE, SV_ERR_NET_CONNECT, SV_ERR_NET_TIMEOUT,
 * SV_ERR_TLS_CLOSED (the daemon closed the connection before a byte of
 * TLS came back, as it does past its connection caps: nothing was sent,
 * another attempt is safe), SV_ERR_TLS_HANDSHAKE (err holds OpenSSL's
 * reason and the certificate verification result, or says the daemon
 * closed the connection during the handshake), SV_ERR_TLS_SETUP,
 * SV_ERR_NOMEM, SV_ERR_INVAL.
 */
sv_status sv_tls_connect(SSL_CTX *ctx, const char *host, const char *port, const char *name,
                         int timeout_ms, sv_tls_conn **out, char *err, size_t errlen);

/* The step a connect got to: for callers that report the steps apart
 * (SV_ERR_NET_TIMEOUT may come from TCP or from the handshake). */
typedef enum {
    SV_TLS_STEP_START = 0, /* arguments, memory */
    SV_TLS_STEP_TCP,       /* resolving host and connecting (SV_ERR_NET_*) */
    SV_TLS_STEP_SETUP,     /* TLS on the connected socket (SV_ERR_TLS_SETUP) */
    SV_TLS_STEP_HANDSHAKE, /* the handshake (SV_ERR_NET_TIMEOUT, SV_ERR_TLS_*) */
    SV_TLS_STEP_VERIFY,    /* the handshake failed on the daemon's certificate (its
                            * chain or its name: SV_ERR_TLS_HANDSHAKE) */
    SV_TLS_STEP_DONE       /* connected */
} sv_tls_step;

/* sv_tls_connect(), and *step (when not NULL) set to the step it got to:
 * the failed one, or SV_TLS_STEP_DONE. */
sv_status sv_tls_connect_ex(SSL_CTX *ctx, const char *host, const char *port, const char *name,
                            int timeout_ms, sv_tls_conn **out, sv_tls_step *step, char *err,
                            size_t errlen);

/* The connection's SSL (for SSL_get_peer_certificate() and the like). */
SSL *sv_tls_conn_ssl(const sv_tls_conn *c);

/* Shut TLS down (a close_notify, unless a read, write or the handshake
 * failed on c: then quietly), close the socket and free c. NULL is
 * allowed. */
void sv_tls_close(sv_tls_conn *c);

/* What the last failed read, write or exchange on c was about (one line,
 * OpenSSL's reason where there is one; never data); "no error" before. */
const char *sv_tls_conn_error(const sv_tls_conn *c);

/* Write or read exactly n bytes within the connection's timeout. SV_OK,
 * SV_ERR_NET_IO (closed, failed, or timed out), or SV_ERR_TLS_HANDSHAKE
 * (the daemon refused the connection with a TLS alert before any answer:
 * in TLS 1.3 that is how a refused client certificate shows, on the first
 * read). sv_tls_conn_error() says which. After a failure the connection
 * is broken: close it. */
sv_status sv_tls_write_all(sv_tls_conn *c, const uint8_t *p, size_t n);
sv_status sv_tls_read_all(sv_tls_conn *c, uint8_t *p, size_t n);

/* A deadline timeout_ms from now (the monotonic clock, in ms), for the
 * calls below. */
int64_t sv_tls_deadline(int timeout_ms);

/* Write or read exactly n bytes before deadline (from sv_tls_deadline():
 * a caller that does its own framing shares one deadline among the
 * writes and reads of an exchange, as sv_tls_exchange() does). As
 * sv_tls_write_all() and sv_tls_read_all(), but a timeout is told apart:
 * SV_OK, SV_ERR_NET_TIMEOUT (the deadline passed), SV_ERR_NET_IO (closed
 * or failed), SV_ERR_TLS_HANDSHAKE (a TLS alert before any answer).
 * After a failure the connection is broken: close it. */
sv_status sv_tls_write_until(sv_tls_conn *c, const uint8_t *p, size_t n, int64_t deadline);
sv_status sv_tls_read_until(sv_tls_conn *c, uint8_t *p, size_t n, int64_t deadline);

/* For a pool of idle connections: 1 when c still looks usable (nothing
 * but TLS housekeeping such as session tickets waiting on it, no close or
 * error from the daemon); never waits. 0 when the daemon closed it, reset
 * it, or sent data nobody asked for (out of step): c is then broken,
 * close it (quietly). */
int sv_tls_conn_alive(sv_tls_conn *c);

/*
 * One request and its answer, all within one deadline (the connection's
 * timeout from the call): write the whole frame (frame[0..len), a
 * complete wire frame), read the answer's header into *h and its body into
 * *body (sv_secret_alloc: the secure heap when the process set one up,
 * body_len bytes; at least one byte is allocated). The answer must echo
 * the request id of the frame and be of the request's answer type (its
 * type | 0x80) or SV_MSG_ERROR. Answers may carry secrets (plaintexts):
 * free the body with sv_tls_body_free(), which cleanses it.
 * SV_OK, SV_ERR_NET_IO (nothing or not all written, or no answer, or the
 * deadline passed), SV_ERR_TLS_HANDSHAKE (the daemon refused the
 * connection, e.g. our certificate: see sv_tls_read_all),
 * SV_ERR_WIRE_TRUNCATED (the answer's body ended early), a header decode
 * status (SV_ERR_WIRE_*; a foreign request id or answer type is
 * SV_ERR_WIRE_MALFORMED), SV_ERR_NOMEM. sv_tls_conn_error() says more. On
 * failure *body is NULL; the connection should be closed.
 */
sv_status sv_tls_exchange(sv_tls_conn *c, const uint8_t *frame, size_t len, sv_wire_hdr *h,
                          uint8_t **body);

/* Cleanse and free a body from sv_tls_exchange() (sv_secret_free). NULL is
 * allowed. */
void sv_tls_body_free(uint8_t *body, size_t len);

#endif /* SV_TLSCLIENT_H */

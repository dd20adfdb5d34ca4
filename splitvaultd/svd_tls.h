/*
 * svd_tls.h - the daemon's TLS server context.
 *
 * TLS 1.3 only; the server certificate and key from the configuration; a
 * client certificate is required and verified against tls.client_ca (with
 * the TLS client purpose), and its SHA-256 (of its DER) must be listed
 * under a role (clients.frontend, .reconcile, .monitor). No session
 * resumption: every connection verifies the client afresh.
 */
#ifndef SVD_TLS_H
#define SVD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "svd_conf.h"

/* Build the context (reads the key files: call before dropping root). */
SSL_CTX *svd_tls_ctx(const struct svd_conf *conf, char *err, size_t errlen);

/* Lowercase hex SHA-256 of the peer certificate into out (65 bytes; "-"
 * if none); returns its roles (SVD_ROLE_*, 0 if not listed). */
unsigned svd_tls_peer(SSL *ssl, const struct svd_conf *conf, char out[65]);

#endif /* SVD_TLS_H */

/*
 * svd_tls.c - TLS 1.3 server context; client certificates must be listed
 * (clients.frontend, .reconcile, .monitor) as well as verified.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "svd.h"
#include "svd_log.h"
#include "svd_tls.h"
#include "sv_hex.h"

static int
cert_sha256(X509 *cert, uint8_t out[SVD_PIN_LEN])
{
    unsigned int n = SVD_PIN_LEN;

    return X509_digest(cert, EVP_sha256(), out, &n) == 1 && n == SVD_PIN_LEN ? 0 : -1;
}

/*
 * Chain verification by OpenSSL first; then the leaf's fingerprint must be
 * listed under one of the client roles (a certificate the CA issued for
 * something else gets nothing). A refusal here makes the handshake fail
 * with an alert, so the client learns at once.
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    const struct svd_conf *c;
    uint8_t fp[SVD_PIN_LEN];
    X509 *cert;

    if (!ok || ssl == NULL)
        return ok;
    if (X509_STORE_CTX_get_error_depth(xs) != 0)
        return ok;
    c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    cert = X509_STORE_CTX_get_current_cert(xs);
    if (c != NULL && cert != NULL && cert_sha256(cert, fp) == 0 &&
        svd_conf_client_roles(c, fp) != 0)
        return 1;
    X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

SSL_CTX *
svd_tls_ctx(const struct svd_conf *conf, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    STACK_OF(X509_NAME) *names = NULL;
    int ok = 0;

    CHECK_OBJ_NOTNULL(conf, SVD_CONF_MAGIC);
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        snprintf(err, errlen, "cannot create a TLS context");
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        snprintf(err, errlen, "TLS 1.3 is not available in this OpenSSL");
        goto out;
    }
    /* CLEANSE_PLAINTEXT: OpenSSL cleanses its record buffers once the
     * application has the decrypted bytes (requests carry key2a and key2b)
     * and after encrypting what it sends (answers carry plaintext) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                        SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                        SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_read_ahead(ctx, 1); /* one recv(2) per record, not two */
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        snprintf(err, errlen, "cannot set the TLS key-exchange groups");
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert) != 1) {
        snprintf(err, errlen, "%s:%lu: tls.certificate: cannot load %s", conf->file,
                 conf->tls_cert_line, conf->tls_cert);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s:%lu: tls.key: cannot load %s", conf->file, conf->tls_key_line,
                 conf->tls_key);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s:%lu: tls.key: %s does not match tls.certificate %s",
                 conf->file, conf->tls_key_line, conf->tls_key, conf->tls_cert);
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, conf->tls_ca, NULL) != 1) {
        snprintf(err, errlen, "%s:%lu: tls.client_ca: cannot load %s", conf->file,
                 conf->tls_ca_line, conf->tls_ca);
        goto out;
    }
    if ((names = SSL_load_client_CA_file(conf->tls_ca)) == NULL) {
        snprintf(err, errlen, "%s:%lu: tls.client_ca: no CA certificate in %s", conf->file,
                 conf->tls_ca_line, conf->tls_ca);
        goto out;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    names = NULL;
    if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        snprintf(err, errlen, "cannot require the TLS client purpose");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_verify_depth(ctx, 4);
    SSL_CTX_set_app_data(ctx, (void *)(uintptr_t)conf);
    ok = 1;
out:
    if (!ok) {
        unsigned long e = ERR_peek_last_error();
        if (e != 0) {
            size_t l = strlen(err);
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            snprintf(err + l, errlen - l, " (%s)", buf);
        }
        ERR_clear_error();
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

unsigned
svd_tls_peer(SSL *ssl, const struct svd_conf *conf, char out[65])
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    uint8_t fp[SVD_PIN_LEN];

    if (cert == NULL || cert_sha256(cert, fp) != 0) {
        snprintf(out, 65, "-");
        return 0;
    }
    sv_hex_encode(fp, sizeof(fp), out);
    return svd_conf_client_roles(conf, fp);
}

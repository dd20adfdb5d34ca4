/*
 * svm_daemon.h - daemon client: per-child pool of mTLS connections, the exchanges.
 */
#ifndef SVM_DAEMON_H
#define SVM_DAEMON_H

#include "svm.h"
#include "svm_config.h"

#include "sv_buf.h"

/* An answer from the daemon: type is the message type; body points to
 * body_len bytes in cleansed request-pool memory. For SV_MSG_ERROR, err is
 * decoded. sent is set as soon as the frame is about to be written, also
 * when the exchange then fails: no share of it can be older. */
typedef struct {
    uint8_t type;
    const uint8_t *body;
    apr_size_t body_len;
    sv_error_msg err;
    apr_time_t sent;    /* when the frame began to go out (0: it never did) */
    int answered;       /* 1 when an answer (of any type) came back */
} svm_dreply;

SSL_CTX *svm_daemon_ssl_ctx(apr_pool_t *p, server_rec *s, const svm_srv_conf *sc,
                            const char **err);
void svm_daemon_child_init(apr_pool_t *p, server_rec *s);
/* Send one frame (built by an sv_*_encode with reqid) over a pooled
 * connection and read one answer frame. timeout 0: the configured one.
 * Returns APR_SUCCESS when an answer of any type came back (an ERROR
 * answer included); a transport or protocol failure otherwise (logged). */
apr_status_t svm_daemon_call(request_rec *r, const svm_srv_conf *sc, const sv_buf *frame,
                             uint32_t reqid, apr_interval_time_t timeout, svm_dreply *rep);
/* A request id for a new frame. */
uint32_t svm_daemon_reqid(void);
/* STORE: all fields of one submission, one round trip. On a daemon error
 * answer returns APR_EGENERAL with *werr set (0 for transport failures).
 * *sent: when the frame began to go out (0 when it never did). */
apr_status_t svm_daemon_store(request_rec *r, const svm_srv_conf *sc, const sv_store_req *req,
                              sv_store_resp *resp, int *werr, apr_time_t *sent);
/* DECRYPT: some fields of one record, each rotated or not as req says,
 * waiting up to SplitVaultDecryptWait in the daemon's queue (req->wait_ms
 * is set here). The key shares req points to (key2a, new_key2b) and req
 * itself are cleansed as soon as the frame is built: from then on they
 * live only in it. APR_SUCCESS: *resp decoded, one answer per field (the
 * caller matches them to its fields). An ERROR answer: APR_EGENERAL with
 * *werr (and *retry_ms, the daemon's hint) set, not logged: the caller's
 * page says it. APR_EINVAL: the frame could not be built. Other failures:
 * no answer or a bad one (rep->answered tells which); logged. rep holds the
 * answer, whose body (the plaintexts) the caller cleanses, and rep->sent
 * when the frame began to go out. */
apr_status_t svm_daemon_decrypt(request_rec *r, const svm_srv_conf *sc, sv_decrypt_req *req,
                                sv_decrypt_resp *resp, svm_dreply *rep, int *werr,
                                apr_uint32_t *retry_ms);
/* RELEASE: APR_SUCCESS when the daemon confirmed it. An ERROR answer
 * gives APR_EGENERAL with *werr set; an ERROR or unexpected answer is not
 * logged here (the caller knows what was being released), a transport
 * failure is. */
apr_status_t svm_daemon_release(request_rec *r, const svm_srv_conf *sc,
                                const sv_release_req *req, int *werr);
/* STATUS (for the admin pages). */
apr_status_t svm_daemon_status(request_rec *r, const svm_srv_conf *sc, sv_status_resp *st);
/* CONFIRM: does the daemon hold share_id for this record and field, in
 * use, with this key2 public key? *confirmed 1 or 0 on APR_SUCCESS; an
 * error answer or a transport failure otherwise (logged). actor: the staff
 * member, for the daemon's audit log. */
apr_status_t svm_daemon_confirm(request_rec *r, const svm_srv_conf *sc,
                                const uint8_t uuid[SV_UUID_LEN], const char *actor,
                                const char *field, apr_uint64_t share_id,
                                const uint8_t pub[SV_X25519_LEN], int *confirmed);

#endif /* SVM_DAEMON_H */

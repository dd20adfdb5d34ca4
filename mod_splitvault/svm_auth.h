/*
 * svm_auth.h - sign-in, sign-out, the sign-in throttle.
 */
#ifndef SVM_AUTH_H
#define SVM_AUTH_H

#include "svm.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_session.h"
#include "sv_pwpolicy.h"

/* the longest password sign-in reads: the password rule's own bound */
#define SVM_PASSWORD_MAX SV_PWPOLICY_MAX_BYTES

int svm_auth_init(apr_pool_t *p, server_rec *s);
/* The key that names are keyed with in login_throttle (HMAC-SHA256): read
 * from SplitVaultLoginKeyFile, or derived from SplitVaultDaemonKey when that
 * is not set. At check_config, after the daemon TLS context is built. NULL,
 * or an error message. */
const char *svm_auth_key_load(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                              svm_srv_conf *sc);
/* Check a staff member's password as sign-in does: a verification slot,
 * a place under sign-in's three throttle keys for name (NULL: not a valid
 * name), one Argon2id verification against pwhash (NULL: none, the dummy
 * hash is checked), and the outcome counted. pw is cleansed. *refused:
 * the throttle answered without a verification. */
enum { SVM_AUTH_OK, SVM_AUTH_FAILED, SVM_AUTH_BUSY, SVM_AUTH_UNAVAILABLE };
int svm_auth_check(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd, const char *name,
                   const char *pwhash, char *pw, apr_size_t len, int *refused);
/* An Argon2id hash of a new password (lib/sv_pwhash, the CLI's parameters)
 * into out, in one of the child's verification slots, as sign-in's
 * checks: SVM_AUTH_OK, SVM_AUTH_BUSY (every slot taken) or
 * SVM_AUTH_UNAVAILABLE (logged). */
int svm_auth_hash(request_rec *r, const svm_srv_conf *sc, const char *pw, apr_size_t len,
                  char *out, apr_size_t outlen);
/* The sign-in page with status, msg (or NULL) above the form, styled as an
 * error (is_error) or a note: a failed sign-in is answered 200 all the same. */
int svm_login_page(request_rec *r, const svm_srv_conf *sc, const char *msg, int is_error,
                   int status);
int svm_login_post(request_rec *r, const svm_srv_conf *sc);
int svm_logout_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st);

#endif /* SVM_AUTH_H */

/*
 * svm_session.h - staff sessions (cookie, token hash in the database).
 */
#ifndef SVM_SESSION_H
#define SVM_SESSION_H

#include "svm.h"
#include "svm_db.h"
#include "svm_config.h"

#define SVM_TOKEN_LEN 32          /* session token bytes (256 bits) */
#define SVM_TOKEN_B64_LEN 43      /* its unpadded base64url text */

typedef struct svm_staff {
    apr_int64_t id;
    const char *name;
    int can_update;
    int can_decrypt;
    int can_admin;
    int must_change;           /* the password must be changed first (schema 5) */
    unsigned char *token;      /* SVM_TOKEN_LEN bytes, cleansed memory */
    const char *csrf;          /* hex CSRF token for this session */
} svm_staff;

/* The signed-in staff member of this request, or NULL. Touches last_seen. */
svm_staff *svm_session_get(request_rec *r, const svm_srv_conf *sc);
/* Hex SHA-256 of st's session token (the form the database keeps), or NULL. */
const char *svm_session_hash(request_rec *r, const svm_staff *st);
/* Create a session for staff id; sets the cookie. APR_SUCCESS, or
 * APR_EGENERAL (logged). */
apr_status_t svm_session_create(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd,
                                apr_int64_t staff_id);
/* End the request's session server-side (if any); expire the cookie when
 * clear_cookie is set. */
void svm_session_end(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd, int clear_cookie);
const char *svm_cookie_name(const svm_srv_conf *sc, const char *which);
void svm_cookie_set(request_rec *r, const svm_srv_conf *sc, const char *which,
                    const char *value, int max_age);
/* Raw bytes of a base64url cookie of exactly SVM_TOKEN_LEN bytes, or NULL. */
unsigned char *svm_cookie_token(request_rec *r, const svm_srv_conf *sc, const char *which);
char *svm_token_b64(apr_pool_t *p, const unsigned char *tok);

#endif /* SVM_SESSION_H */

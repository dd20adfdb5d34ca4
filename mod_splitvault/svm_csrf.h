/*
 * svm_csrf.h - CSRF tokens derived from the session or the login cookie.
 */
#ifndef SVM_CSRF_H
#define SVM_CSRF_H

#include "svm.h"

#define SVM_CSRF_HEX_LEN 64

/* Hex HMAC-SHA256(key = token, label). */
const char *svm_csrf_derive(apr_pool_t *p, const unsigned char *token, const char *label);
/* 1 when the form's "csrf" value matches the expected token (constant time). */
int svm_csrf_ok(const apr_array_header_t *pairs, const char *expected);
#define SVM_CSRF_SESSION "splitvault/v1 csrf"
#define SVM_CSRF_LOGIN "splitvault/v1 login csrf"

#endif /* SVM_CSRF_H */

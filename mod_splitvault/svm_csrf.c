/*
 * svm_csrf.c - CSRF tokens.
 *
 * A staff form's token is HMAC-SHA256(key = the session token, "splitvault/v1
 * csrf"), so it needs no storage, differs per session and cannot be computed
 * without the HttpOnly cookie. The sign-in form uses the same construction
 * over a separate pre-session cookie (login CSRF). Every POST is checked with
 * CRYPTO_memcmp; a missing or wrong token gets 403 before anything changes.
 */
#include "svm.h"
#include "svm_csrf.h"
#include "svm_form.h"
#include "svm_parse.h"
#include "svm_session.h"
#include "apr_strings.h"

#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "sv_hex.h"
#include "sv_secret.h"

const char *svm_csrf_derive(apr_pool_t *p, const unsigned char *token, const char *label)
{
    unsigned char mac[32];
    unsigned int maclen = 0;
    char *hex;

    if (!HMAC(EVP_sha256(), token, SVM_TOKEN_LEN, (const unsigned char *)label,
              strlen(label), mac, &maclen) || maclen != sizeof(mac))
        return NULL;
    hex = apr_palloc(p, 2 * sizeof(mac) + 1);
    sv_hex_encode(mac, sizeof(mac), hex);
    sv_cleanse(mac, sizeof(mac));
    return hex;
}

int svm_csrf_ok(const apr_array_header_t *pairs, const char *expected)
{
    const svm_pair *got = svm_form_get(pairs, "csrf");

    /* fail closed: no expectation or no token is a mismatch */
    if (!expected || !got || got->len != SVM_CSRF_HEX_LEN
        || strlen(expected) != SVM_CSRF_HEX_LEN)
        return 0;
    return CRYPTO_memcmp(got->value, expected, SVM_CSRF_HEX_LEN) == 0;
}

/*
 * svm_auth.c - staff sign-in and sign-out.
 *
 * Sign-in does the same work and gives the same answer whatever went wrong:
 * an unknown name, a disabled account, a wrong password or a throttled name
 * or address all cost one Argon2id verification (against a dummy hash when
 * there is no real one) and show one message. Failures are counted per
 * submitted name (known or not, so counting reveals nothing) and per client
 * address in login_throttle; reaching SplitVaultLoginThrottle(Address)
 * pauses sign-in for that name or address. A successful sign-in always
 * makes a new session token (no fixation) and ends the session the request
 * came with.
 */
#include "svm.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sv_secret.h"

#define SVM_LOGIN_FAILED "Sign-in failed. Check your name and password. After repeated " \
                         "failures, sign-in is paused for a while."

/* A hash of a random password, verified when there is no real hash so that
 * every failed sign-in costs the same. Made once in the parent. */
static char svm_dummy_hash[SVM_PWHASH_MAX];

int svm_auth_init(apr_pool_t *p, server_rec *s)
{
    unsigned char pw[32];

    if (svm_dummy_hash[0])
        return OK;
    if (RAND_bytes(pw, sizeof(pw)) != 1
        || svm_pwhash_make((const char *)pw, sizeof(pw), svm_dummy_hash,
                           sizeof(svm_dummy_hash)) != 0) {
        sv_cleanse(pw, sizeof(pw));
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "SV01201: cannot make the Argon2id "
                     "comparison hash");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sv_cleanse(pw, sizeof(pw));
    return OK;
}

/* The login CSRF token, setting the pre-session cookie when missing. */
static const char *svm_login_csrf(request_rec *r, const svm_srv_conf *sc, int create)
{
    unsigned char *tok = svm_cookie_token(r, sc, "-login");

    if (!tok) {
        if (!create)
            return NULL;
        tok = svm_secret_palloc(r->pool, SVM_TOKEN_LEN);
        if (RAND_bytes(tok, SVM_TOKEN_LEN) != 1)
            return NULL;
        svm_cookie_set(r, sc, "-login", svm_token_b64(r->pool, tok), -1);
    }
    return svm_csrf_derive(r->pool, tok, SVM_CSRF_LOGIN);
}

int svm_login_page(request_rec *r, const svm_srv_conf *sc, const char *msg, int status)
{
    const char *csrf = svm_login_csrf(r, sc, 1);

    if (!csrf)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Sign-in unavailable",
                                "Sign-in is unavailable right now; please try again.", NULL);
    r->status = status;
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Staff sign-in", NULL);
    ap_rputs("<h1>Staff sign-in</h1>\n", r);
    if (msg)
        ap_rprintf(r, "<p class=\"%s\" role=\"alert\">%s</p>\n",
                   status == HTTP_OK ? "note" : "error", svm_esc(r->pool, msg));
    ap_rprintf(r, "<form method=\"post\" action=\"%s\">\n"
               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
               "<label for=\"name\">Name</label>\n"
               "<input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"username\" "
               "maxlength=\"64\" required autofocus>\n"
               "<label for=\"password\">Password</label>\n"
               "<input type=\"password\" id=\"password\" name=\"password\" "
               "autocomplete=\"current-password\" maxlength=\"%d\" required>\n"
               "<button type=\"submit\">Sign in</button>\n</form>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/login")), svm_esc(r->pool, csrf),
               SVM_PASSWORD_MAX);
    svm_page_end(r);
    return OK;
}

/* Count one failure for key; lock it when the threshold is reached. */
static void svm_throttle_fail(request_rec *r, ap_dbd_t *dbd, const char *key, int limit,
                              int secs)
{
    const char *s = apr_itoa(r->pool, secs);
    const void *args[] = { key, s, s };
    svm_rows res;
    apr_dbd_row_t *row;
    int failures = 0;

    if (svm_db_select(r, dbd, "svm_thr_fail", &res, args))
        return;
    if ((row = svm_db_row(r, dbd, &res))) {
        failures = atoi(svm_db_col(r, dbd, row, 0));
        while (svm_db_row(r, dbd, &res))
            ;
    }
    if (failures >= limit) {
        const void *lock[] = { s, key };
        svm_db_exec(r, dbd, "svm_thr_lock", NULL, lock);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "SV01202: sign-in paused for %d s after %d failures (%s)", secs,
                      failures, key[0] == 'a' ? "client address" : "staff name");
    }
}

int svm_login_post(request_rec *r, const svm_srv_conf *sc)
{
    apr_array_header_t *pairs;
    const char *why, *name, *addr_key, *name_key, *pwhash = NULL;
    const svm_pair *pn, *pp;
    ap_dbd_t *dbd;
    svm_rows res;
    apr_dbd_row_t *row;
    apr_int64_t staff_id = 0;
    int rc, throttled = 0, disabled = 0, ok;
    char *lname, *c;

    if ((rc = svm_form_read(r, 8192, &pairs, &why)) != OK)
        return svm_page_message(r, sc, rc, "Sign-in refused", why, NULL);
    if (!svm_csrf_ok(pairs, svm_login_csrf(r, sc, 0))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "SV01203: sign-in refused: missing or wrong CSRF token");
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Sign-in refused",
                                "This sign-in form has expired. Open the sign-in page "
                                "again and retry.", NULL);
    }
    pn = svm_form_get(pairs, "name");
    pp = svm_form_get(pairs, "password");
    if (!pn || !pp || pn->len == 0 || pp->len == 0 || pp->len > SVM_PASSWORD_MAX)
        return svm_login_page(r, sc, "Enter your name and password.", HTTP_BAD_REQUEST);
    if (!(dbd = svm_db(r)))
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Sign-in unavailable",
                                "Sign-in is unavailable right now; please try again in a "
                                "few minutes.", NULL);
    name = sv_actor_name_valid(pn->value, pn->len) ? apr_pstrdup(r->pool, pn->value) : NULL;
    lname = apr_pstrdup(r->pool, name ? name : "-invalid-");
    for (c = lname; *c; c++)
        *c = (char)apr_tolower(*c);
    addr_key = apr_pstrcat(r->pool, "a:", r->useragent_ip, NULL);
    /* the submitted name only as a hash: a password typed into the name
     * field must not be kept in the database */
    {
        unsigned char md[32];
        unsigned int mdlen = 0;
        if (!EVP_Digest(lname, strlen(lname), md, &mdlen, EVP_sha256(), NULL))
            memset(md, 0, sizeof(md));
        name_key = apr_pstrcat(r->pool, "n:", svm_hex(r->pool, md, 16), NULL);
    }

    {
        const void *args[] = { addr_key, name_key };
        if (svm_db_select(r, dbd, "svm_thr_locked", &res, args) == 0
            && (row = svm_db_row(r, dbd, &res))) {
            throttled = atoi(svm_db_col(r, dbd, row, 0)) > 0;
            while (svm_db_row(r, dbd, &res))
                ;
        }
    }
    if (name) {
        const void *args[] = { name };
        if (svm_db_select(r, dbd, "svm_staff_get", &res, args) == 0
            && (row = svm_db_row(r, dbd, &res))) {
            staff_id = apr_atoi64(svm_db_col(r, dbd, row, 0));
            pwhash = svm_db_col(r, dbd, row, 1);
            disabled = *svm_db_col(r, dbd, row, 2) == 't';
            while (svm_db_row(r, dbd, &res))
                ;
        }
    }
    /* The same Argon2id work on every path. */
    ok = svm_pwhash_verify(pwhash && !throttled && !disabled ? pwhash : svm_dummy_hash,
                           pp->value, pp->len);
    ok = ok && pwhash && !throttled && !disabled;
    sv_cleanse(pp->value, pp->len);

    if (!ok) {
        const char *outcome = throttled ? "throttled" : "failed";
        if (!throttled) {
            svm_throttle_fail(r, dbd, addr_key, sc->thr_addr_n, sc->thr_addr_s);
            svm_throttle_fail(r, dbd, name_key, sc->thr_acct_n, sc->thr_acct_s);
        }
        if (staff_id) {
            const void *args[] = { name_key, name };
            svm_db_exec(r, dbd, "svm_staff_fail", NULL, args);
        }
        /* only names of real accounts are recorded: an unknown "name" may be
         * a password typed into the wrong box */
        svm_audit(r, dbd, staff_id ? name : NULL, "sign-in", NULL, NULL, outcome,
                  !name ? "invalid name" : !pwhash ? "unknown name"
                  : disabled ? "account disabled" : NULL);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01204: sign-in %s for %s", outcome,
                      staff_id ? name : "an unknown name");
        return svm_login_page(r, sc, SVM_LOGIN_FAILED, HTTP_OK);
    }
    {
        const void *clear[] = { name_key };
        const void *args[] = { apr_psprintf(r->pool, "%" APR_INT64_T_FMT, staff_id) };
        svm_db_exec(r, dbd, "svm_thr_clear", NULL, clear);
        svm_db_exec(r, dbd, "svm_staff_ok", NULL, args);
    }
    /* end the session this browser came with (if any), then start afresh */
    svm_session_end(r, sc, dbd, 0);
    if (svm_session_create(r, sc, dbd, staff_id) != 0)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Sign-in unavailable",
                                "Sign-in is unavailable right now; please try again.", NULL);
    svm_cookie_set(r, sc, "-login", "", 0);
    svm_audit(r, dbd, name, "sign-in", NULL, NULL, "ok", NULL);
    return svm_redirect(r, svm_url(r, sc, "/staff/"));
}

int svm_logout_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    ap_dbd_t *dbd = svm_db(r);

    if (!dbd)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Sign-out failed",
                                "The database is unreachable; please try again.", st);
    svm_session_end(r, sc, dbd, 1);
    svm_audit(r, dbd, st->name, "sign-out", NULL, NULL, "ok", NULL);
    return svm_redirect(r, svm_url(r, sc, "/staff/login?signed-out=1"));
}

/*
 * svm_auth.c - staff sign-in and sign-out.
 *
 * Every attempt first reserves its place in login_throttle, in one atomic
 * statement (login_throttle_reserve, sql/main/003), under three keys at
 * once: the client network (an IPv6 address by its /64;
 * SplitVaultLoginThrottleAddress), the submitted name together with that
 * network (SplitVaultLoginThrottle), and the name from every network
 * (SplitVaultLoginThrottleName, a higher limit). Names are counted whether
 * they exist or not, keyed by HMAC-SHA256 under the installation's login
 * key (SplitVaultLoginKeyFile, else derived from SplitVaultDaemonKey;
 * never in the database), so that a dump of the table holds neither the
 * names typed nor a password typed into the name box. An attempt that any
 * key refuses is answered at once, with the same page as a wrong password,
 * costs no Argon2id and counts nowhere; since places are taken before the
 * password is checked, a burst of concurrent attempts gets no more
 * verifications than the limit. Failures from one address thus pause a
 * name for that address only; one address alone can never reach the
 * name-wide limit (checked at start-up), which several must share.
 *
 * An accepted attempt needs one of SplitVaultLoginConcurrency verification
 * slots of this child (503 when none is free: Argon2id takes 19 MiB and a
 * core's time), then costs exactly one Argon2id verification, against a
 * dummy hash when there is no real one (unknown name, disabled account).
 * A failure adds one failure to each key and does the same work whatever
 * the name: no per-name UPDATE, and a few expired throttle rows are
 * purged. A success gives back the places it took; it never takes back a
 * failure of the network or of the name (only the pair of this name and
 * network starts afresh), so sign-ins to one's own account do not buy
 * guesses at others. It always makes a new session token (no fixation)
 * and ends the session the request came with.
 *
 * An account whose password must be changed (staff.must_change, set when
 * someone else set it: schema version 5) signs in only where the staff
 * console is (SplitVaultStaffConsole On), and there only to the password
 * page (svm_route.c keeps it there); elsewhere sign-in says so, with the
 * console's address when SplitVaultStaffConsoleURL is set, and makes no
 * session. The console's own-password page checks the current password
 * through svm_auth_check, under the same throttle keys as sign-in.
 */
#include "svm.h"
#include "svm_auth.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_csrf.h"
#include "svm_db.h"
#include "svm_fault.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_parse.h"
#include "sv_pwhash.h"
#include "svm_session.h"
#include "svm_throttle.h"
#include "http_protocol.h"
#include "http_core.h"
#include "apr_atomic.h"
#include "apr_file_io.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "sv_hex.h"
#include "sv_secret.h"

#define SVM_LOGIN_FAILED "Sign-in failed. Check your name and password. After repeated " \
                         "failures, sign-in is paused for a while."
#define SVM_LOGIN_KEY_LABEL "splitvault/v1 login throttle key"

/* A hash of a random password, verified when there is no real hash so that
 * every failed sign-in costs the same. Made once in the parent. */
static char svm_dummy_hash[SV_PWHASH_MAX];

/* Argon2id verifications running in this child. */
static apr_uint32_t svm_verifying;

int svm_auth_init(apr_pool_t *p, server_rec *s)
{
    unsigned char pw[32];

    if (svm_dummy_hash[0])
        return OK;
    if (RAND_bytes(pw, sizeof(pw)) != 1
        || sv_pwhash_make((const char *)pw, sizeof(pw), svm_dummy_hash,
                           sizeof(svm_dummy_hash)) != 0) {
        sv_cleanse(pw, sizeof(pw));
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "SV01201: cannot make the Argon2id "
                     "comparison hash");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sv_cleanse(pw, sizeof(pw));
    return OK;
}

static apr_status_t svm_key_cleanup(void *data)
{
    sv_cleanse(data, SVM_LOGIN_KEY_LEN);
    return APR_SUCCESS;
}

/* The 32 bytes written as 64 hex digits in path (a trailing newline
 * allowed), from a file only its owner may read. */
static const char *svm_key_file_read(apr_pool_t *ptemp, const char *path, unsigned char *key)
{
    char text[80];
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n = 0;
    const char *err = NULL;

    if (apr_stat(&fi, path, APR_FINFO_PROT | APR_FINFO_TYPE, ptemp) != APR_SUCCESS
        || fi.filetype != APR_REG)
        return apr_psprintf(ptemp, "SplitVaultLoginKeyFile %s: cannot read it", path);
    if (fi.protection & (APR_GREAD | APR_GWRITE | APR_WREAD | APR_WWRITE))
        return apr_psprintf(ptemp, "SplitVaultLoginKeyFile %s: readable by others than its "
                            "owner (chmod 600)", path);
    if (apr_file_open(&f, path, APR_FOPEN_READ, 0, ptemp) != APR_SUCCESS)
        return apr_psprintf(ptemp, "SplitVaultLoginKeyFile %s: cannot read it", path);
    apr_file_read_full(f, text, sizeof(text) - 1, &n);
    apr_file_close(f);
    while (n > 0 && apr_isspace(text[n - 1]))
        n--;
    text[n] = '\0';
    if (n != 2 * SVM_LOGIN_KEY_LEN || svm_hex_decode(text, key, SVM_LOGIN_KEY_LEN) != 0)
        err = apr_psprintf(ptemp, "SplitVaultLoginKeyFile %s: not 64 hex digits (make one with "
                           "`splitvault-admin login-key FILE`)", path);
    sv_cleanse(text, sizeof(text));
    return err;
}

const char *svm_auth_key_load(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                              svm_srv_conf *sc)
{
    unsigned char *key = apr_pcalloc(pconf, SVM_LOGIN_KEY_LEN);
    const char *err = NULL;

    apr_pool_cleanup_register(pconf, key, svm_key_cleanup, apr_pool_cleanup_null);
    if (sc->login_key_file)
        err = svm_key_file_read(ptemp, sc->login_key_file, key);
    else {
        /* HMAC keyed with the daemon client key's DER: the same on every
         * front end that shares that key, and never in the database */
        EVP_PKEY *pk = SSL_CTX_get0_privatekey(sc->ssl_ctx);
        unsigned char *der = NULL;
        unsigned int len = 0;
        int n = pk ? i2d_PrivateKey(pk, &der) : -1;
        if (n <= 0 || !HMAC(EVP_sha256(), der, n, (const unsigned char *)SVM_LOGIN_KEY_LABEL,
                            strlen(SVM_LOGIN_KEY_LABEL), key, &len) || len != SVM_LOGIN_KEY_LEN)
            err = "cannot derive the sign-in throttle key from SplitVaultDaemonKey; set "
                  "SplitVaultLoginKeyFile";
        if (der)
            OPENSSL_clear_free(der, (size_t)n);
        if (!err && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "SV01205: SplitVaultLoginKeyFile is "
                         "not set: the sign-in throttle keys names with a key derived from "
                         "SplitVaultDaemonKey (front ends sharing a database must share that "
                         "key, or all set the same SplitVaultLoginKeyFile)");
    }
    if (err)
        return err;
    sc->login_key = key;
    return NULL;
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

int svm_login_page(request_rec *r, const svm_srv_conf *sc, const char *msg, int is_error,
                   int status)
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
                   is_error ? "error" : "note", svm_esc(r->pool, msg));
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

/* "n:" and the hex of HMAC-SHA256 of msg under the login key, or with
 * prefix "p:" for a (name, network) pair. NULL when there is no key. */
static const char *svm_keyed(request_rec *r, const svm_srv_conf *sc, const char *prefix,
                             const char *msg)
{
    unsigned char mac[32];
    unsigned int len = 0;
    char hex[2 * sizeof(mac) + 1];
    const char *key;

    if (!sc->login_key || !HMAC(EVP_sha256(), sc->login_key, SVM_LOGIN_KEY_LEN,
                                (const unsigned char *)msg, strlen(msg), mac, &len)
        || len != sizeof(mac))
        return NULL;
    sv_hex_encode(mac, sizeof(mac), hex);
    key = apr_pstrcat(r->pool, prefix, hex, NULL);
    sv_cleanse(mac, sizeof(mac));
    sv_cleanse(hex, sizeof(hex));
    return key;
}

/* The throttle keys of an attempt: [0] the client network, [1] the
 * (lower-cased) name from that network, [2] the name from anywhere. The
 * name and the network are joined by a newline, which neither holds.
 * 0, or -1 when there is no login key. */
static int svm_throttle_keys(request_rec *r, const svm_srv_conf *sc, const char *lname,
                             const char *keys[3])
{
    const char *net = svm_client_net(r);

    keys[0] = apr_pstrcat(r->pool, "a:", net, NULL);
    keys[1] = svm_keyed(r, sc, "p:", apr_pstrcat(r->pool, lname, "\n", net, NULL));
    keys[2] = svm_keyed(r, sc, "n:", lname);
    return keys[1] && keys[2] ? 0 : -1;
}

/* Take one of the child's verification slots; 0 when all are taken. */
static int svm_slot_enter(int max)
{
    for (;;) {
        apr_uint32_t v = apr_atomic_read32(&svm_verifying);
        if (v >= (apr_uint32_t)max)
            return 0;
        if (apr_atomic_cas32(&svm_verifying, v + 1, v) == v)
            return 1;
    }
}

static void svm_slot_leave(void)
{
    apr_atomic_dec32(&svm_verifying);
}

/* Reserve this attempt under its three keys (all or none). 0 (with
 * *refused set), or -1 when the database failed (logged). Each key this
 * attempt paused is logged, once per pause. */
static int svm_throttle_reserve(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd,
                                const char *const keys[3], int *refused)
{
    const void *args[] = { keys[0], keys[1], keys[2],
                           apr_itoa(r->pool, sc->thr_addr_s), apr_itoa(r->pool, sc->thr_acct_s),
                           apr_itoa(r->pool, sc->thr_name_s),
                           apr_itoa(r->pool, sc->thr_addr_n), apr_itoa(r->pool, sc->thr_acct_n),
                           apr_itoa(r->pool, sc->thr_name_n) };
    svm_rows res;
    apr_dbd_row_t *row;
    int got = 0;

    *refused = 0;
    if (svm_db_select(r, dbd, "svm_thr_reserve", &res, args))
        return -1;
    while ((row = svm_db_row(r, dbd, &res))) {
        int idx = atoi(svm_db_col(r, dbd, row, 0));
        if (*svm_db_col(r, dbd, row, 1) == 't')
            *refused = 1;
        got++;
        if (*svm_db_col(r, dbd, row, 2) != 't')
            continue;
        if (idx == 1)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01202: sign-in paused for %d s "
                          "after %d failures (client address)", sc->thr_addr_s, sc->thr_addr_n);
        else if (idx == 2)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01208: sign-in paused for %d s "
                          "after %d failures (one staff name from this client address)",
                          sc->thr_acct_s, sc->thr_acct_n);
        else
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01206: sign-in paused for %d s "
                          "after %d failures (one staff name, from every address)",
                          sc->thr_name_s, sc->thr_name_n);
    }
    return got == 3 ? 0 : -1;
}

/* The reserved attempt's outcome: a failure for every key, or its places
 * given back after a success (failures stay). Best effort: a lost update
 * leaves a place taken until the window ends (stricter, never laxer). */
static void svm_throttle_settle(request_rec *r, ap_dbd_t *dbd, const char *const keys[3],
                                int ok)
{
    const void *args[] = { keys[0], keys[1], keys[2] };

    svm_db_exec(r, dbd, ok ? "svm_thr_succeeded" : "svm_thr_failed", NULL, args);
}

/* Forget a few throttle rows whose window has passed. */
static void svm_throttle_purge(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd)
{
    int w = sc->thr_acct_s > sc->thr_addr_s ? sc->thr_acct_s : sc->thr_addr_s;
    const void *args[] = { apr_itoa(r->pool, w > sc->thr_name_s ? w : sc->thr_name_s) };

    svm_db_exec(r, dbd, "svm_thr_purge", NULL, args);
}

int svm_auth_check(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd, const char *name,
                   const char *pwhash, char *pw, apr_size_t len, int *refused)
{
    const char *keys[3];
    char *lname;
    int ok;

    *refused = 0;
    lname = apr_pstrdup(r->pool, name ? name : "-invalid-");
    ap_str_tolower(lname);
    if (svm_throttle_keys(r, sc, lname, keys) != 0) {
        sv_cleanse(pw, len);
        return SVM_AUTH_UNAVAILABLE;
    }
    /* a verification slot of this child, then this attempt's place */
    if (!svm_slot_enter(sc->login_concurrency)) {
        sv_cleanse(pw, len);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01207: sign-in refused: %d password "
                      "verifications already run in this process", sc->login_concurrency);
        return SVM_AUTH_BUSY;
    }
    if (svm_throttle_reserve(r, sc, dbd, keys, refused) != 0) {
        svm_slot_leave();
        sv_cleanse(pw, len);
        return SVM_AUTH_UNAVAILABLE;
    }
    if (*refused) {
        /* answered at once: no Argon2id for an attempt that cannot succeed */
        svm_slot_leave();
        ok = 0;
    }
    else {
#ifdef SV_TEST_HOOKS
        if (svm_test_fault(r) && strcmp(svm_test_fault(r), "login-slow") == 0)
            apr_sleep(apr_time_from_sec(2)); /* a verification that takes its time */
#endif
        /* the same Argon2id work whatever the name */
        ok = sv_pwhash_verify(pwhash ? pwhash : svm_dummy_hash, pw, len);
        svm_slot_leave();
        ok = ok && pwhash;
        svm_throttle_settle(r, dbd, keys, ok);
    }
    sv_cleanse(pw, len);
    if (!ok)
        svm_throttle_purge(r, sc, dbd);
    return ok ? SVM_AUTH_OK : SVM_AUTH_FAILED;
}

int svm_auth_hash(request_rec *r, const svm_srv_conf *sc, const char *pw, apr_size_t len,
                  char *out, apr_size_t outlen)
{
    sv_status rv;

    if (!svm_slot_enter(sc->login_concurrency)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01210: password not hashed: %d "
                      "Argon2id computations already run in this process",
                      sc->login_concurrency);
        return SVM_AUTH_BUSY;
    }
    rv = sv_pwhash_make(pw, len, out, outlen);
    svm_slot_leave();
    if (rv != SV_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01211: cannot hash a new password");
        return SVM_AUTH_UNAVAILABLE;
    }
    return SVM_AUTH_OK;
}

/* The sign-in page's words for an account that must change its password
 * on a server without the console. */
static const char *svm_must_change_text(request_rec *r, const svm_srv_conf *sc)
{
    return sc->staff_console_url
           ? apr_pstrcat(r->pool, "Your password must be changed at the staff console (",
                         sc->staff_console_url, ") before you can sign in here.", NULL)
           : "Your password must be changed at the staff console before you can sign in "
             "here.";
}

int svm_login_post(request_rec *r, const svm_srv_conf *sc)
{
    apr_array_header_t *pairs;
    const char *why, *name, *pwhash = NULL, *outcome;
    const svm_pair *pn, *pp;
    ap_dbd_t *dbd;
    svm_rows res;
    apr_dbd_row_t *row;
    apr_int64_t staff_id = 0;
    int rc, refused = 0, disabled = 0, must_change = 0, ok, v5;

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
        return svm_login_page(r, sc, "Enter your name and password.", 1,
                              HTTP_BAD_REQUEST);
    if (!(dbd = svm_db(r)))
        goto unavailable;
    name = sv_actor_name_valid(pn->value, pn->len) ? apr_pstrdup(r->pool, pn->value) : NULL;
    v5 = svm_db_version(r, dbd) >= 5;
    if (name) {
        const void *args[] = { name };
        if (svm_db_select(r, dbd, v5 ? "svm_staff_get5" : "svm_staff_get", &res, args) == 0
            && (row = svm_db_row(r, dbd, &res))) {
            staff_id = apr_atoi64(svm_db_col(r, dbd, row, 0));
            pwhash = svm_db_col(r, dbd, row, 1);
            disabled = *svm_db_col(r, dbd, row, 2) == 't';
            must_change = v5 && *svm_db_col(r, dbd, row, 3) == 't';
            while (svm_db_row(r, dbd, &res))
                ;
        }
    }

    rc = svm_auth_check(r, sc, dbd, name, pwhash && !disabled ? pwhash : NULL, pp->value,
                        pp->len, &refused);
    if (rc == SVM_AUTH_BUSY) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Sign-in busy",
                                "Sign-in is busy right now; please try again in a moment.",
                                NULL);
    }
    if (rc == SVM_AUTH_UNAVAILABLE)
        goto unavailable;
    ok = rc == SVM_AUTH_OK;

    if (!ok) {
        outcome = refused ? "throttled" : "failed";
        /* only names of real accounts are recorded: an unknown "name" may be
         * a password typed into the wrong box */
        svm_audit(r, dbd, staff_id ? name : NULL, "sign-in", NULL, NULL, outcome,
                  !name ? "invalid name" : !pwhash ? "unknown name"
                  : disabled ? "account disabled" : NULL);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01204: sign-in %s for %s", outcome,
                      staff_id ? name : "an unknown name");
        return svm_login_page(r, sc, SVM_LOGIN_FAILED, 1, HTTP_OK);
    }
    if (must_change && !sc->staff_console) {
        /* the password is right, but only the console may take it from here */
        svm_audit(r, dbd, name, "sign-in", NULL, NULL, "refused",
                  "password must be changed at the staff console");
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01209: sign-in refused for %s: the "
                      "password must be changed at the staff console", name);
        return svm_login_page(r, sc, svm_must_change_text(r, sc), 1, HTTP_FORBIDDEN);
    }
    {
        const void *args[] = { apr_psprintf(r->pool, "%" APR_INT64_T_FMT, staff_id) };
        svm_db_exec(r, dbd, "svm_staff_ok", NULL, args);
    }
    /* end the session this browser came with (if any), then start afresh */
    svm_session_end(r, sc, dbd, 0);
    if (svm_session_create(r, sc, dbd, staff_id) != APR_SUCCESS)
        goto unavailable;
    svm_cookie_set(r, sc, "-login", "", 0);
    svm_audit(r, dbd, name, "sign-in", NULL, NULL, "ok",
              must_change ? "password must be changed" : NULL);
    return svm_redirect(r, svm_url(r, sc, must_change ? "/staff/password" : "/staff/"));

unavailable:
    sv_cleanse(pp->value, pp->len);
    return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Sign-in unavailable",
                            "Sign-in is unavailable right now; please try again in a few "
                            "minutes.", NULL);
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

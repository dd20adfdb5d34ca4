/*
 * svm_session.c - staff sessions.
 *
 * The cookie carries a 256-bit token from the CSPRNG (base64url); the
 * database keeps only SHA-256 of it, with the staff id, the last time it was
 * seen and an absolute expiry. Sessions live in PostgreSQL, so every front
 * end sharing the database accepts them. A cookie that matches no live row
 * (planted, expired, signed out) is simply no session. Cookie: HttpOnly,
 * SameSite=Strict, Path=/, and Secure with the __Host- prefix unless
 * SplitVaultCookieSecure Off. Since schema version 5 a session also keeps
 * the client's address and User-Agent at sign-in (the console lists them),
 * and the account's must_change comes with every request's staff member,
 * and whether a staff console made it (sessions.console): a console
 * (SplitVaultStaffConsole On) makes and accepts only console sessions,
 * which only its database role may write, and every other server accepts
 * none of them. The web role's credentials thus make no session the
 * console takes, and a cookie carried from one kind of server to the
 * other is no session there.
 */
#include "svm.h"
#include "svm_session.h"
#include "svm_config.h"
#include "svm_csrf.h"
#include "svm_db.h"
#include "svm_form.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_cookies.h"
#include "apr_strings.h"
#include "apr_base64.h"
#include "apr_lib.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sv_hex.h"
#include "sv_secret.h"

const char *svm_cookie_name(const svm_srv_conf *sc, const char *which)
{
    return svm_cookie_secure(sc) ? (*which ? "__Host-splitvault-login" : "__Host-splitvault")
                                 : (*which ? "splitvault-login" : "splitvault");
}

void svm_cookie_set(request_rec *r, const svm_srv_conf *sc, const char *which,
                    const char *value, int max_age)
{
    const char *c = apr_psprintf(r->pool, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s",
                                 svm_cookie_name(sc, which), value,
                                 svm_cookie_secure(sc) ? "; Secure" : "",
                                 max_age >= 0 ? apr_psprintf(r->pool, "; Max-Age=%d", max_age)
                                              : "");
    apr_table_addn(r->err_headers_out, "Set-Cookie", c);
}

char *svm_token_b64(apr_pool_t *p, const unsigned char *tok)
{
    char *s = svm_secret_palloc(p, apr_base64_encode_len(SVM_TOKEN_LEN) + 1);
    char *c;
    int n = apr_base64_encode_binary(s, tok, SVM_TOKEN_LEN);

    (void)n;
    for (c = s; *c; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
        else if (*c == '=') {
            *c = '\0';
            break;
        }
    }
    return s;
}

unsigned char *svm_cookie_token(request_rec *r, const svm_srv_conf *sc, const char *which)
{
    const char *val = NULL;
    char *std;
    unsigned char *tok;
    apr_size_t i;

    if (ap_cookie_read(r, svm_cookie_name(sc, which), &val, 0) != APR_SUCCESS || !val
        || strlen(val) != SVM_TOKEN_B64_LEN)
        return NULL;
    std = svm_secret_palloc(r->pool, SVM_TOKEN_B64_LEN + 2);
    for (i = 0; i < SVM_TOKEN_B64_LEN; i++) {
        char c = val[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!apr_isalnum(c))
            return NULL;
        std[i] = c;
    }
    std[i++] = '=';
    std[i] = '\0';
    tok = svm_secret_palloc(r->pool, apr_base64_decode_len(std) + 1);
    if (apr_base64_decode_binary(tok, std) != SVM_TOKEN_LEN)
        return NULL;
    return tok;
}

/* Hex SHA-256 of the raw token: the only form the database sees. */
static const char *svm_token_hash(request_rec *r, const unsigned char *tok)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char *hex;

    if (!EVP_Digest(tok, SVM_TOKEN_LEN, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return NULL;
    hex = apr_palloc(r->pool, 2 * sizeof(md) + 1);
    sv_hex_encode(md, sizeof(md), hex);
    return hex;
}

const char *svm_session_hash(request_rec *r, const svm_staff *st)
{
    return svm_token_hash(r, st->token);
}

typedef struct {
    int looked;
    svm_staff *st;
} svm_req_state;

svm_staff *svm_session_get(request_rec *r, const svm_srv_conf *sc)
{
    svm_req_state *rs = ap_get_module_config(r->request_config, &splitvault_module);
    unsigned char *tok;
    const char *hash, *idle, *label;
    int v5;
    ap_dbd_t *dbd;
    svm_rows res;
    apr_dbd_row_t *row;
    svm_staff *st = NULL;

    if (rs && rs->looked)
        return rs->st;
    if (!rs) {
        rs = apr_pcalloc(r->pool, sizeof(*rs));
        ap_set_module_config(r->request_config, &splitvault_module, rs);
    }
    rs->looked = 1;
    if (!(tok = svm_cookie_token(r, sc, "")) || !(hash = svm_token_hash(r, tok)))
        return NULL;
    if (!(dbd = svm_db(r)))
        return NULL;
    idle = apr_itoa(r->pool, sc->session_idle);
    v5 = svm_db_version(r, dbd) >= 5;
    /* a staff console accepts only console sessions, which exist from
     * version 5; every other server only the others */
    if (!v5 && sc->staff_console)
        return NULL;
    label = v5 ? "svm_sess_touch5" : "svm_sess_touch";
    {
        const void *args[] = { hash, idle, sc->staff_console ? "t" : "f" };
        if (svm_db_select(r, dbd, label, &res, args))
            return NULL;
    }
    if ((row = svm_db_row(r, dbd, &res))) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        st->id = apr_atoi64(svm_db_col(r, dbd, row, 0));
        st->name = svm_db_col(r, dbd, row, 1);
        st->can_update = *svm_db_col(r, dbd, row, 2) == 't';
        st->can_decrypt = *svm_db_col(r, dbd, row, 3) == 't';
        st->can_admin = *svm_db_col(r, dbd, row, 4) == 't';
        st->must_change = v5 && *svm_db_col(r, dbd, row, 5) == 't';
        st->token = tok;
        st->csrf = svm_csrf_derive(r->pool, tok, SVM_CSRF_SESSION);
        while (svm_db_row(r, dbd, &res))
            ;
        r->user = apr_pstrdup(r->pool, st->name); /* for the access log */
    }
    rs->st = st;
    return st;
}

/* The User-Agent as the console shows it: printable ASCII only (others
 * become '?'), at most 200 characters; NULL when there is none. */
static const char *svm_session_ua(apr_pool_t *p, const char *ua)
{
    char *out, *c;

    if (!ua || !*ua)
        return NULL;
    out = apr_pstrndup(p, ua, 200);
    for (c = out; *c; c++)
        if (*c < ' ' || *c > '~')
            *c = '?';
    return out;
}

apr_status_t svm_session_create(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd,
                                apr_int64_t staff_id)
{
    unsigned char *tok = svm_secret_palloc(r->pool, SVM_TOKEN_LEN);
    const char *hash, *id = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, staff_id);
    svm_req_state *rs;

    if (RAND_bytes(tok, SVM_TOKEN_LEN) != 1 || !(hash = svm_token_hash(r, tok))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01301: no random bytes for a session");
        return APR_EGENERAL;
    }
    {
        const void *purge[] = { id, apr_itoa(r->pool, sc->session_idle) };
        svm_db_exec(r, dbd, "svm_sess_purge", NULL, purge);
    }
    if (svm_db_version(r, dbd) >= 5) {
        const char *ua = apr_table_get(r->headers_in, "User-Agent");
        const void *args[] = { hash, id, apr_itoa(r->pool, sc->session_max),
                               r->useragent_ip, svm_session_ua(r->pool, ua) };
        if (svm_db_exec(r, dbd, sc->staff_console ? "svm_con_sess_insert" : "svm_sess_insert5",
                        NULL, args) != APR_SUCCESS)
            return APR_EGENERAL;
    }
    else if (sc->staff_console) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01302: no sign-in at the staff console "
                      "before schema version 5 (its sessions need it): run "
                      "`splitvault-admin schema`");
        return APR_EGENERAL;
    }
    else {
        const void *args[] = { hash, id, apr_itoa(r->pool, sc->session_max) };
        if (svm_db_exec(r, dbd, "svm_sess_insert", NULL, args) != APR_SUCCESS)
            return APR_EGENERAL;
    }
    svm_cookie_set(r, sc, "", svm_token_b64(r->pool, tok), -1);
    /* whatever session this request came with is no longer its session */
    rs = ap_get_module_config(r->request_config, &splitvault_module);
    if (rs) {
        rs->looked = 0;
        rs->st = NULL;
    }
    return APR_SUCCESS;
}

void svm_session_end(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd, int clear_cookie)
{
    unsigned char *tok = svm_cookie_token(r, sc, "");
    const char *hash;

    if (tok && (hash = svm_token_hash(r, tok))) {
        const void *args[] = { hash };
        svm_db_exec(r, dbd, "svm_sess_delete", NULL, args);
    }
    if (clear_cookie)
        svm_cookie_set(r, sc, "", "", 0);
}

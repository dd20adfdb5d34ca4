/*
 * svm_route.c - both handlers: one table of routes, one place that guards
 * them.
 *
 * A route is a row: method, path, what it needs (nothing, a session, a
 * capability), whether its POST body carries the session's CSRF token,
 * the name the audit log gives a refusal, and the function that serves it.
 * Adding a page is adding a row. svm_route_run() does every check, in this
 * order, before any page function runs:
 *
 *   1. the handler is ours and the server has a SplitVault configuration;
 *   2. the path is a route of the area (else 404; the console's routes
 *      are no route where SplitVaultStaffConsole is Off);
 *   3. a session, when a route of the path needs one (else a GET goes to
 *      the sign-in page, anything else gets 403); a session whose password
 *      must be changed reaches only the password page and sign-out (a GET
 *      goes to the password page, anything else gets 403);
 *   4. the area's own capability, when it has one (the key location is for
 *      admins whatever the method);
 *   5. the method is one of the path's (else 405 with Allow);
 *   6. a POST body is read and its CSRF token checked (SVM_CSRF_FORM: the
 *      form, into pairs; SVM_CSRF_UPLOAD: the key location's secret upload
 *      body, wiped here when refused);
 *   7. the route's capability.
 *
 * Under SplitVaultBase (B), handler "splitvault":
 *   GET  B/                        public form          POST B/  intake
 *   GET  B/style.css               stylesheet
 *   GET  B/staff/login             sign-in form         POST     sign in
 *   POST B/staff/logout            sign out
 *   GET  B/staff/                  record list (paging, search by code or date)
 *   GET  B/staff/record/REF        record page (metadata, update forms)
 *   POST B/staff/record/REF/update   write-only update   (can_update)
 *   POST B/staff/record/REF/decrypt  decrypt             (can_decrypt)
 *   GET  B/staff/audit             audit log            (can_admin)
 *   GET  B/staff/console           staff accounts       (can_admin; console)
 *   POST B/staff/console/create    create an account    (can_admin; console)
 *   GET  B/staff/console/account   one account          (can_admin; console)
 *   POST B/staff/console/account   change it, its sessions (can_admin; console)
 *   GET  B/staff/password          own password form    (console)
 *   POST B/staff/password          change it            (console)
 * ("console": only with SplitVaultStaffConsole On, svm_console.c.)
 * Handler "splitvault-keys" (any path where it is set): the key location,
 * GET and POST, for admins (can_admin). No GET changes anything.
 */
#include "svm.h"
#include "svm_route.h"
#include "svm_audit.h"
#include "svm_auth.h"
#include "svm_config.h"
#include "svm_console.h"
#include "svm_csrf.h"
#include "svm_db.h"
#include "svm_decrypt.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_intake.h"
#include "svm_keys.h"
#include "svm_pages.h"
#include "svm_record.h"
#include "svm_session.h"
#include "svm_update.h"
#include "svm_upload.h"
#include "http_protocol.h"
#include "apr_strings.h"

/* What a route needs of the visitor. */
enum { SVM_NEED_NONE, SVM_NEED_SESSION, SVM_NEED_UPDATE, SVM_NEED_DECRYPT, SVM_NEED_ADMIN };

/* Its POST body: not read here (no token: the route needs none, or checks
 * its own, as sign-in does); or read here and its CSRF token checked, as a
 * form (the function gets the pairs) or as a secret upload (the function
 * gets the upload, and wipes it). */
enum { SVM_CSRF_NONE, SVM_CSRF_FORM, SVM_CSRF_UPLOAD };

#define SVM_ANY_METHOD (-1)

/* What the guard hands the function: the reference code of the path, and
 * the body it read. */
typedef struct {
    const char *ref;            /* "{ref}" of the path, or NULL */
    apr_array_header_t *pairs;  /* SVM_CSRF_FORM, SVM_CSRF_UPLOAD: the fields */
    svm_upload *upload;         /* SVM_CSRF_UPLOAD: the secret body */
} svm_route_req;

typedef int (*svm_route_fn)(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                            svm_route_req *q);

typedef struct {
    int method;           /* M_GET, M_POST, or SVM_ANY_METHOD (the function answers) */
    const char *path;     /* under the area's root; "{ref}" stands for a reference code */
    int need;             /* SVM_NEED_* */
    int csrf;             /* SVM_CSRF_* */
    const char *action;   /* its name in the audit log when refused */
    /* or, when the body says which action it is, its name from the body */
    const char *(*action_of)(const apr_array_header_t *pairs);
    svm_route_fn fn;
    int console;          /* exists only with SplitVaultStaffConsole On */
    int while_must_change; /* open to a session whose password must be changed */
} svm_route;

/* ---- the page functions, as routes --------------------------------------- */

static int rt_stylesheet(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                         svm_route_req *q)
{
    return svm_send_stylesheet(r);
}

static int rt_form(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_form_page(r, sc, NULL, HTTP_OK);
}

static int rt_intake(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_intake_post(r, sc);
}

/* Shown even to a signed-in browser: signing in again ends the session it
 * carries (whoever planted it). */
static int rt_login_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                         svm_route_req *q)
{
    return svm_login_page(r, sc, svm_query_arg(r, "signed-out") ? "You are signed out."
                          : svm_session_get(r, sc) ? "You are already signed in; signing "
                          "in again ends that session." : NULL, 0, HTTP_OK);
}

static int rt_login(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_login_post(r, sc);
}

static int rt_logout(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_logout_post(r, sc, st);
}

static int rt_list(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_list_page(r, sc, st);
}

static int rt_record(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_record_page(r, sc, st, q->ref);
}

static int rt_audit(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_audit_page(r, sc, st);
}

static int rt_keys_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                        svm_route_req *q)
{
    return svm_keys_page(r, sc, st);
}

static int rt_keys_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                        svm_route_req *q)
{
    return svm_keys_post(r, sc, st, q->upload);
}

static int rt_update(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_update_post(r, sc, st, q->ref, q->pairs);
}

static int rt_decrypt(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_route_req *q)
{
    return svm_decrypt_post(r, sc, st, q->ref, q->pairs);
}

static int rt_console(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                      svm_route_req *q)
{
    return svm_console_page(r, sc, st);
}

static int rt_console_create(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                             svm_route_req *q)
{
    return svm_console_create(r, sc, st, q->pairs);
}

static int rt_account_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                           svm_route_req *q)
{
    return svm_console_account_page(r, sc, st);
}

static int rt_account_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                           svm_route_req *q)
{
    return svm_console_account_post(r, sc, st, q->pairs);
}

static int rt_password_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                            svm_route_req *q)
{
    return svm_password_page(r, sc, st);
}

static int rt_password_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                            svm_route_req *q)
{
    return svm_password_post(r, sc, st, q->pairs);
}

/* ---- the table ------------------------------------------------------------ */

/* Handler "splitvault", paths under SplitVaultBase. */
static const svm_route svm_routes_main[] = {
    { SVM_ANY_METHOD, "/style.css", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL,
      rt_stylesheet, 0, 0 },
    { M_GET, "", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL, rt_form, 0, 0 },
    { M_POST, "", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL, rt_intake, 0, 0 },
    { M_GET, "/", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL, rt_form, 0, 0 },
    { M_POST, "/", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL, rt_intake, 0, 0 },
    /* the sign-in form carries its own login CSRF token (svm_auth.c) */
    { M_GET, "/staff/login", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL, rt_login_page, 0, 0 },
    { M_POST, "/staff/login", SVM_NEED_NONE, SVM_CSRF_NONE, NULL, NULL, rt_login, 0, 0 },
    { M_POST, "/staff/logout", SVM_NEED_SESSION, SVM_CSRF_FORM, "sign-out", NULL, rt_logout,
      0, 1 },
    { M_GET, "/staff", SVM_NEED_SESSION, SVM_CSRF_NONE, NULL, NULL, rt_list, 0, 0 },
    { M_GET, "/staff/", SVM_NEED_SESSION, SVM_CSRF_NONE, NULL, NULL, rt_list, 0, 0 },
    { M_GET, "/staff/record/{ref}", SVM_NEED_SESSION, SVM_CSRF_NONE, NULL, NULL,
      rt_record, 0, 0 },
    { M_POST, "/staff/record/{ref}/update", SVM_NEED_UPDATE, SVM_CSRF_FORM, "update", NULL,
      rt_update, 0, 0 },
    { M_POST, "/staff/record/{ref}/decrypt", SVM_NEED_DECRYPT, SVM_CSRF_FORM, "decrypt", NULL,
      rt_decrypt, 0, 0 },
    { M_GET, "/staff/audit", SVM_NEED_ADMIN, SVM_CSRF_NONE, "audit-view", NULL,
      rt_audit, 0, 0 },
    /* the staff console (svm_console.c) */
    { M_GET, "/staff/console", SVM_NEED_ADMIN, SVM_CSRF_NONE, "staff-console-view", NULL,
      rt_console, 1, 0 },
    { M_POST, "/staff/console/create", SVM_NEED_ADMIN, SVM_CSRF_FORM, "staff-create", NULL,
      rt_console_create, 1, 0 },
    { M_GET, "/staff/console/account", SVM_NEED_ADMIN, SVM_CSRF_NONE, "staff-console-view",
      NULL, rt_account_page, 1, 0 },
    { M_POST, "/staff/console/account", SVM_NEED_ADMIN, SVM_CSRF_FORM, "staff-console",
      svm_console_action, rt_account_post, 1, 0 },
    { M_GET, "/staff/password", SVM_NEED_SESSION, SVM_CSRF_NONE, NULL, NULL,
      rt_password_page, 1, 1 },
    { M_POST, "/staff/password", SVM_NEED_SESSION, SVM_CSRF_FORM, "password-change", NULL,
      rt_password_post, 1, 1 },
};

/* Handler "splitvault-keys": wherever it is set (path NULL: any). */
static const svm_route svm_routes_keys[] = {
    { M_GET, NULL, SVM_NEED_SESSION, SVM_CSRF_NONE, "keys-view", NULL, rt_keys_page, 0, 0 },
    /* "key1-post" names a POST whose body was not read (so its action is
     * unknown); once it is, svm_keys_audit_action names it */
    { M_POST, NULL, SVM_NEED_SESSION, SVM_CSRF_UPLOAD, "key1-post", svm_keys_audit_action,
      rt_keys_post, 0, 0 },
};

/* An area: a handler, its routes, and how it words a refusal. */
typedef struct {
    const char *handler;
    const svm_route *routes;
    int nroutes;
    int under_base;            /* paths are relative to SplitVaultBase */
    int need;                  /* what the whole area needs, whatever the method */
    const char *not_signed_in; /* the 403 text without a session (not a GET) */
} svm_area;

static const svm_area svm_area_main = {
    SVM_HANDLER, svm_routes_main, sizeof(svm_routes_main) / sizeof(svm_routes_main[0]), 1,
    SVM_NEED_NONE, "Your session has ended. Sign in again; nothing was changed."
};

static const svm_area svm_area_keys = {
    SVM_HANDLER_KEYS, svm_routes_keys, sizeof(svm_routes_keys) / sizeof(svm_routes_keys[0]), 0,
    SVM_NEED_ADMIN, "Sign in as an administrator first."
};

/* ---- the guard ------------------------------------------------------------- */

/* Does rel match the pattern? *ref gets the reference code "{ref}" stood for. */
static int svm_path_match(request_rec *r, const char *pat, const char *rel, const char **ref)
{
    const char *ph, *code;
    apr_size_t pre;

    if (!pat)
        return 1;
    if (!(ph = strstr(pat, "{ref}")))
        return strcmp(pat, rel) == 0;
    pre = (apr_size_t)(ph - pat);
    if (strncmp(pat, rel, pre) != 0 || strlen(rel + pre) < SVM_REF_LEN
        || strcmp(ph + 5, rel + pre + SVM_REF_LEN) != 0)
        return 0;
    code = apr_pstrmemdup(r->pool, rel + pre, SVM_REF_LEN);
    if (!svm_ref_valid(code))
        return 0;
    *ref = code;
    return 1;
}

static int svm_has(const svm_staff *st, int need)
{
    switch (need) {
    case SVM_NEED_UPDATE:
        return st->can_update;
    case SVM_NEED_DECRYPT:
        return st->can_decrypt;
    case SVM_NEED_ADMIN:
        return st->can_admin;
    default:
        return 1;
    }
}

static int svm_method_not_allowed(request_rec *r, const svm_srv_conf *sc, const char *allow,
                                  svm_staff *st)
{
    apr_table_setn(r->err_headers_out, "Allow", allow);
    return svm_page_message(r, sc, HTTP_METHOD_NOT_ALLOWED, "Not allowed",
                            "This address does not accept that kind of request.", st);
}

/* A refusal for a missing capability: audited, logged, 403. */
static int svm_denied(request_rec *r, const svm_srv_conf *sc, const svm_area *a,
                      svm_staff *st, const char *what, const char *ref)
{
    ap_dbd_t *dbd = svm_db(r);

    if (!what) /* a row that needs something names its action; in case one does not */
        what = "request";
    if (a == &svm_area_keys) {
        if (dbd)
            svm_audit(r, dbd, st->name, what, NULL, NULL, "denied", "not an admin");
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV02107: key location refused for %s: "
                      "not an admin", st->name);
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not permitted",
                                "Only administrators may open the key location.", st);
    }
    if (dbd)
        svm_audit(r, dbd, st->name, what, ref, NULL, "denied", "missing capability");
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01401: %s refused for %s: missing "
                  "capability", what, st->name);
    return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not permitted",
                            "Your account is not permitted to do this.", st);
}

static int svm_route_run(request_rec *r, const svm_area *a)
{
    const svm_route *rt = NULL, *first = NULL;
    const char *rel = r->uri, *ref = NULL, *why;
    const char *allow_get = NULL, *allow_post = NULL;
    svm_route_req q = { NULL, NULL, NULL };
    svm_upload upload;
    svm_srv_conf *sc;
    svm_staff *st = NULL;
    int i, need_session = a->need != SVM_NEED_NONE, rc;

    if (!r->handler || strcmp(r->handler, a->handler) != 0)
        return DECLINED;
    sc = svm_conf(r->server);
    svm_hsts(r, sc); /* first: every answer from here on carries it */
    if (sc->fields->nelts == 0) {
        if (a == &svm_area_keys)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02101: handler splitvault-keys is "
                          "set but this server has no SplitVault configuration");
        else
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01403: handler splitvault is set "
                          "but this server has no SplitVaultField");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (a->under_base) {
        apr_size_t bl = strlen(sc->base);
        if (strncmp(r->uri, sc->base, bl) != 0 || (r->uri[bl] && r->uri[bl] != '/')) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01404: %s is outside SplitVaultBase "
                          "%s: set the handler in <Location %s>", r->uri, sc->base, sc->base);
            return HTTP_NOT_FOUND;
        }
        rel = r->uri + bl;
    }

    /* the routes of this path, and the one for this method */
    for (i = 0; i < a->nroutes; i++) {
        const svm_route *x = &a->routes[i];
        if (x->console && !sc->staff_console)
            continue;
        if (!svm_path_match(r, x->path, rel, &ref))
            continue;
        if (!first)
            first = x;
        if (x->need != SVM_NEED_NONE)
            need_session = 1;
        if (x->method == M_GET)
            allow_get = "GET";
        else if (x->method == M_POST)
            allow_post = "POST";
        if (x->method == SVM_ANY_METHOD || x->method == r->method_number)
            rt = x;
    }
    if (!first)
        /* a page under a record's address still shows who is signed in */
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "Not found", "There is no such page.",
                                a->under_base && strncmp(rel, "/staff/record/", 14) == 0
                                ? svm_session_get(r, sc) : NULL);
    if (need_session && !(st = svm_session_get(r, sc))) {
        if (r->method_number == M_GET)
            return svm_redirect(r, svm_url(r, sc, "/staff/login"));
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not signed in", a->not_signed_in,
                                NULL);
    }
    if (st && st->must_change && !(rt && rt->while_must_change)) {
        /* only the password page until the password is changed */
        ap_dbd_t *dbd;
        if (r->method_number == M_GET && sc->staff_console && a->under_base)
            return svm_redirect(r, svm_url(r, sc, "/staff/password"));
        if (r->method_number == M_POST && (dbd = svm_db(r)))
            svm_audit(r, dbd, st->name, rt && rt->action ? rt->action : "request", ref, NULL,
                      "refused", "the password must be changed first");
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Change your password first",
                                "Your password must be changed before you go on. Nothing "
                                "was changed.", st);
    }
    if (!svm_has(st, a->need))
        return svm_denied(r, sc, a, st, r->method_number == M_POST && rt ? rt->action
                          : first->action, NULL);
    if (!rt)
        return svm_method_not_allowed(r, sc, allow_get && allow_post ? "GET, POST"
                                      : allow_get ? "GET" : "POST", st);
    q.ref = ref;
    if (rt->csrf == SVM_CSRF_FORM
        && (rc = svm_form_read(r, sc->max_body, &q.pairs, &why)) != OK)
        return svm_page_message(r, sc, rc, "Request refused", why, st);
    if (rt->csrf == SVM_CSRF_UPLOAD) {
        if ((rc = svm_upload_read(r, SVM_UPLOAD_MAX, &upload, &why)) != OK) {
            svm_upload_wipe(&upload);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV02105: key location form "
                          "refused: %s", why);
            return svm_page_message(r, sc, rc, "Request refused", why, st);
        }
        q.upload = &upload;
        q.pairs = upload.pairs;
    }
    if (rt->csrf != SVM_CSRF_NONE && !svm_csrf_ok(q.pairs, st->csrf)) {
        ap_dbd_t *dbd = svm_db(r);
        const char *what = rt->action_of ? rt->action_of(q.pairs) : rt->action;
        if (!what)
            what = "request";
        if (q.upload)
            svm_upload_wipe(q.upload);
        if (dbd)
            svm_audit(r, dbd, st->name, what, ref, NULL, "refused",
                      "missing or wrong CSRF token");
        if (q.upload)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02106: key location POST "
                          "without a valid CSRF token from %s", st->name);
        else
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01402: POST without a valid "
                          "CSRF token from %s", st->name);
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Request refused",
                                "This form has expired or did not come from this site. "
                                "Nothing was changed. Reload the page and try again.", st);
    }
    if (!svm_has(st, rt->need)) {
        const char *what = rt->action_of ? rt->action_of(q.pairs) : rt->action;
        if (q.upload)
            svm_upload_wipe(q.upload);
        return svm_denied(r, sc, a, st, what, ref);
    }
    return rt->fn(r, sc, st, &q);
}

int svm_handler(request_rec *r)
{
    return svm_route_run(r, &svm_area_main);
}

int svm_keys_handler(request_rec *r)
{
    return svm_route_run(r, &svm_area_keys);
}

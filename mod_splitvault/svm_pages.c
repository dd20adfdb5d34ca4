/*
 * svm_pages.c - handler "splitvault": URL routing and the staff pages.
 *
 * Under SplitVaultBase (B):
 *   GET  B/                        public form          POST B/  intake
 *   GET  B/style.css               stylesheet
 *   GET  B/staff/login             sign-in form         POST     sign in
 *   POST B/staff/logout            sign out
 *   GET  B/staff/                  record list (paging, search by code or date)
 *   GET  B/staff/record/REF        record page (metadata, update forms)
 *   POST B/staff/record/REF/update   write-only update   (can_update)
 *   POST B/staff/record/REF/decrypt  decrypt             (can_decrypt)
 *   GET  B/staff/audit             audit log            (can_admin)
 * No GET changes anything. Every staff POST is checked for a session and its
 * CSRF token before anything else; every capability is checked here, in
 * one place, before the action runs.
 */
#include "svm.h"
#include "svm_pages.h"
#include "svm_audit.h"
#include "svm_auth.h"
#include "svm_config.h"
#include "svm_csrf.h"
#include "svm_db.h"
#include "svm_decrypt.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_intake.h"
#include "svm_record.h"
#include "svm_session.h"
#include "svm_update.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"

static int svm_method_not_allowed(request_rec *r, const svm_srv_conf *sc, const char *allow,
                                  svm_staff *st)
{
    apr_table_setn(r->err_headers_out, "Allow", allow);
    return svm_page_message(r, sc, HTTP_METHOD_NOT_ALLOWED, "Not allowed",
                            "This address does not accept that kind of request.", st);
}

static int svm_not_signed_in(request_rec *r, const svm_srv_conf *sc)
{
    if (r->method_number == M_GET)
        return svm_redirect(r, svm_url(r, sc, "/staff/login"));
    return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not signed in",
                            "Your session has ended. Sign in again; nothing was changed.",
                            NULL);
}

static int svm_denied(request_rec *r, const svm_srv_conf *sc, svm_staff *st, const char *what,
                      const char *ref)
{
    ap_dbd_t *dbd = svm_db(r);

    if (dbd)
        svm_audit(r, dbd, st->name, what, ref, NULL, "denied", "missing capability");
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01401: %s refused for %s: missing "
                  "capability", what, st->name);
    return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not permitted",
                            "Your account is not permitted to do this.", st);
}

/* GET B/staff/: record list with search and paging (metadata only). */
static int svm_list_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    const char *q = svm_query_arg(r, "ref"), *from = svm_query_arg(r, "from"),
               *to = svm_query_arg(r, "to");
    const char *note = NULL, *qs;
    int page = svm_query_page(r, "page", 1000000), n = 0;
    ap_dbd_t *dbd;
    svm_rows res;
    apr_dbd_row_t *row;
    char *uq;

    /* a code is matched in upper case; anything else is shown back as typed
     * (escaped) and matches nothing */
    uq = apr_pstrdup(r->pool, q ? q : "");
    if (*uq) {
        char *up = apr_pstrdup(r->pool, uq), *c;
        for (c = up; *c; c++)
            *c = (char)apr_toupper(*c);
        if (svm_ref_valid(up))
            uq = up;
        else
            note = "A reference code looks like ABCDE-12345.";
    }
    if (from && *from && !(strlen(from) == 10 && from[4] == '-' && from[7] == '-'
                           && strspn(from, "0123456789-") == 10)) {
        note = "Dates look like 2025-01-31.";
        from = "";
    }
    if (to && *to && !(strlen(to) == 10 && to[4] == '-' && to[7] == '-'
                       && strspn(to, "0123456789-") == 10)) {
        note = "Dates look like 2025-01-31.";
        to = "";
    }
    if (!from)
        from = "";
    if (!to)
        to = "";
    if (!(dbd = svm_db(r)))
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Records unavailable",
                                "The database is unreachable; please try again.", st);
    {
        const void *args[] = { uq, uq, from, from, to, to, apr_itoa(r->pool, page * 50) };
        if (svm_db_select(r, dbd, "svm_rec_list", &res, args))
            return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Records unavailable",
                                    "The search could not be run (check the dates).", st);
    }
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Records", st);
    ap_rputs("<h1>Records</h1>\n", r);
    if (note)
        ap_rprintf(r, "<p class=\"error\" role=\"alert\">%s</p>\n", svm_esc(r->pool, note));
    ap_rprintf(r, "<form class=\"search\" method=\"get\" action=\"%s\" role=\"search\">"
               "<div><label for=\"ref\">Reference code</label><input type=\"search\" id=\"ref\" "
               "name=\"ref\" value=\"%s\" maxlength=\"11\" placeholder=\"ABCDE-12345\"></div>"
               "<div><label for=\"from\">From</label><input type=\"date\" id=\"from\" "
               "name=\"from\" value=\"%s\"></div>"
               "<div><label for=\"to\">To</label><input type=\"date\" id=\"to\" name=\"to\" "
               "value=\"%s\"></div><button type=\"submit\">Search</button></form>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/")), svm_esc(r->pool, uq),
               svm_esc(r->pool, from), svm_esc(r->pool, to));
    ap_rputs("<table>\n<caption class=\"hint\">Newest first. Dates and times in UTC."
             "</caption>\n<thead><tr><th scope=\"col\">Reference</th><th scope=\"col\">"
             "Received</th><th scope=\"col\">Last updated</th><th scope=\"col\">By</th>"
             "</tr></thead>\n<tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        const char *ref;
        if (++n > 50)
            continue;
        ref = svm_db_col(r, dbd, row, 0);
        ap_rprintf(r, "<tr><td><a class=\"mono\" href=\"%s\">%s</a></td><td>%s</td>"
                   "<td>%s</td><td>%s</td></tr>\n",
                   svm_esc(r->pool, svm_url(r, sc, apr_pstrcat(r->pool, "/staff/record/", ref,
                                                               NULL))),
                   svm_esc(r->pool, ref), svm_esc(r->pool, svm_db_col(r, dbd, row, 1)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 2)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 3)));
    }
    if (n == 0)
        ap_rputs("<tr><td colspan=\"4\">No records match.</td></tr>\n", r);
    ap_rputs("</tbody>\n</table>\n<p class=\"pager\">", r);
    qs = apr_psprintf(r->pool, "ref=%s&from=%s&to=%s", ap_escape_urlencoded(r->pool, uq),
                      ap_escape_urlencoded(r->pool, from), ap_escape_urlencoded(r->pool, to));
    if (page > 0)
        ap_rprintf(r, "<a href=\"%s\" rel=\"prev\">Newer records</a>",
                   svm_esc(r->pool, svm_url(r, sc, apr_psprintf(r->pool, "/staff/?%s&page=%d",
                                                                qs, page - 1))));
    if (n > 50)
        ap_rprintf(r, "<a href=\"%s\" rel=\"next\">Older records</a>",
                   svm_esc(r->pool, svm_url(r, sc, apr_psprintf(r->pool, "/staff/?%s&page=%d",
                                                                qs, page + 1))));
    ap_rputs("</p>\n", r);
    svm_page_end(r);
    return OK;
}

/* GET B/staff/record/REF: metadata and a write-only update form per field. */
static int svm_record_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                           const char *ref)
{
    ap_dbd_t *dbd = svm_db(r);
    svm_rows res;
    apr_dbd_row_t *row;
    const char *id = NULL, *created = NULL, *updated = NULL, *by = NULL, *updated_field;
    const char *action;
    apr_array_header_t *names, *vers, *times;
    const svm_field *cf = (const svm_field *)sc->fields->elts;
    int i, j, pass;

    if (!dbd)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Record unavailable",
                                "The database is unreachable; please try again.", st);
    {
        const void *args[] = { ref };
        if (svm_db_select(r, dbd, "svm_rec_get", &res, args))
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Record unavailable",
                                    "The database failed; please try again.", st);
        while ((row = svm_db_row(r, dbd, &res))) {
            id = svm_db_col(r, dbd, row, 0);
            created = svm_db_col(r, dbd, row, 3);
            updated = svm_db_col(r, dbd, row, 4);
            by = svm_db_col(r, dbd, row, 5);
        }
    }
    if (!id)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "No such record",
                                "There is no record with this reference code.", st);
    names = apr_array_make(r->pool, 8, sizeof(const char *));
    vers = apr_array_make(r->pool, 8, sizeof(const char *));
    times = apr_array_make(r->pool, 8, sizeof(const char *));
    {
        const void *args[] = { id };
        if (svm_db_select(r, dbd, "svm_rec_fields", &res, args))
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Record unavailable",
                                    "The database failed; please try again.", st);
        while ((row = svm_db_row(r, dbd, &res))) {
            *(const char **)apr_array_push(names) = svm_db_col(r, dbd, row, 0);
            *(const char **)apr_array_push(vers) = svm_db_col(r, dbd, row, 1);
            *(const char **)apr_array_push(times) = svm_db_col(r, dbd, row, 2);
        }
    }
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, apr_pstrcat(r->pool, "Record ", ref, NULL), st);
    ap_rprintf(r, "<h1>Record <span class=\"mono\">%s</span></h1>\n", svm_esc(r->pool, ref));
    updated_field = svm_query_arg(r, "updated");
    if (updated_field && *updated_field) {
        const svm_field *uf = svm_field_find(sc, updated_field);
        ap_rprintf(r, "<p class=\"note\" role=\"status\">%s was replaced.</p>\n",
                   svm_esc(r->pool, uf ? uf->label : updated_field));
    }
    ap_rprintf(r, "<table><tbody><tr><th scope=\"row\">Received (UTC)</th><td>%s</td></tr>"
               "<tr><th scope=\"row\">Last updated (UTC)</th><td>%s</td></tr>"
               "<tr><th scope=\"row\">Updated by</th><td>%s</td></tr></tbody></table>\n",
               svm_esc(r->pool, created), svm_esc(r->pool, *updated ? updated : "never"),
               svm_esc(r->pool, *by ? by : "-"));
    if (st->can_decrypt)
        svm_decrypt_status_note(r, sc);
    if (st->can_decrypt)
        ap_rprintf(r, "<form method=\"post\" action=\"%s\"><input type=\"hidden\" "
                   "name=\"csrf\" value=\"%s\"><button type=\"submit\" class=\"secondary\">"
                   "Decrypt this record</button> <span class=\"hint\">Shows every value once; "
                   "recorded in the audit log.</span></form>\n",
                   svm_esc(r->pool, svm_url(r, sc, apr_pstrcat(r->pool, "/staff/record/", ref,
                                                               "/decrypt", NULL))),
                   svm_esc(r->pool, st->csrf));
    ap_rputs("<h2>Fields</h2>\n", r);
    if (st->can_update)
        ap_rputs("<p class=\"hint\">Values are write-only: the current value is never shown. "
                 "What you enter replaces it.</p>\n", r);
    action = svm_url(r, sc, apr_pstrcat(r->pool, "/staff/record/", ref, "/update", NULL));
    /* the form's order first, then any field no longer in the form */
    for (pass = 0; pass < 2; pass++) {
        int count = pass == 0 ? sc->fields->nelts : names->nelts;
        for (i = 0; i < count; i++) {
            const svm_field *f = NULL;
            const char *nm;
            int maxlen;
            if (pass == 0) {
                for (j = 0; j < names->nelts; j++)
                    if (strcmp(APR_ARRAY_IDX(names, j, const char *), cf[i].name) == 0)
                        break;
                if (j == names->nelts)
                    continue; /* a field added to the form after this record */
                f = &cf[i];
            }
            else {
                j = i;
                if (svm_field_find(sc, APR_ARRAY_IDX(names, j, const char *)))
                    continue;
            }
            nm = APR_ARRAY_IDX(names, j, const char *);
            maxlen = f ? f->maxlen : SV_DATUM_MAX;
            ap_rprintf(r, "<section class=\"field\" aria-labelledby=\"h-%s\"><h3 id=\"h-%s\">"
                       "%s <span class=\"hint mono\">%s</span></h3><p class=\"hint\">Version "
                       "%s, last changed %s UTC</p>\n", svm_esc(r->pool, nm),
                       svm_esc(r->pool, nm), svm_esc(r->pool, f ? f->label : nm),
                       svm_esc(r->pool, nm), svm_esc(r->pool, APR_ARRAY_IDX(vers, j,
                                                                             const char *)),
                       svm_esc(r->pool, APR_ARRAY_IDX(times, j, const char *)));
            if (st->can_update) {
                ap_rprintf(r, "<form method=\"post\" action=\"%s\"><input type=\"hidden\" "
                           "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"field\" "
                           "value=\"%s\"><label for=\"v-%s\">New value</label>",
                           svm_esc(r->pool, action), svm_esc(r->pool, st->csrf),
                           svm_esc(r->pool, nm), svm_esc(r->pool, nm));
                if (f && !f->multiline)
                    ap_rprintf(r, "<input type=\"text\" id=\"v-%s\" name=\"value\" "
                               "maxlength=\"%d\" autocomplete=\"off\"%s>", svm_esc(r->pool, nm),
                               maxlen, f->required ? " required" : "");
                else
                    ap_rprintf(r, "<textarea id=\"v-%s\" name=\"value\" maxlength=\"%d\">"
                               "</textarea>", svm_esc(r->pool, nm), maxlen);
                ap_rputs("<button type=\"submit\">Replace value</button></form>\n", r);
            }
            ap_rputs("</section>\n", r);
        }
    }
    svm_page_end(r);
    return OK;
}

/* Staff area: everything under B/staff. */
static int svm_staff_route(request_rec *r, const svm_srv_conf *sc, const char *rel)
{
    int post = r->method_number == M_POST, get = r->method_number == M_GET;
    svm_staff *st;
    apr_array_header_t *pairs = NULL;
    const char *why, *ref = NULL, *action = NULL;
    int rc;

    if (strcmp(rel, "/login") == 0) {
        if (post)
            return svm_login_post(r, sc);
        if (!get)
            return svm_method_not_allowed(r, sc, "GET, POST", NULL);
        /* Shown even to a signed-in browser: signing in again ends the
         * session it carries (whoever planted it). */
        return svm_login_page(r, sc, svm_query_arg(r, "signed-out") ? "You are signed out."
                              : svm_session_get(r, sc) ? "You are already signed in; signing "
                              "in again ends that session." : NULL, HTTP_OK);
    }
    if (strncmp(rel, "/record/", 8) == 0) {
        const char *slash;
        ref = rel + 8;
        if ((slash = strchr(ref, '/'))) {
            action = slash + 1;
            ref = apr_pstrmemdup(r->pool, ref, (apr_size_t)(slash - ref));
        }
        if (!svm_ref_valid(ref) || (action && strcmp(action, "update") != 0
                                    && strcmp(action, "decrypt") != 0))
            ref = NULL;
        if (!ref)
            return svm_page_message(r, sc, HTTP_NOT_FOUND, "Not found",
                                    "There is no such page.", svm_session_get(r, sc));
    }
    else if (strcmp(rel, "") != 0 && strcmp(rel, "/") != 0 && strcmp(rel, "/logout") != 0
             && strcmp(rel, "/audit") != 0)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "Not found", "There is no such page.",
                                NULL);

    /* every other staff address needs a session */
    if (!(st = svm_session_get(r, sc)))
        return svm_not_signed_in(r, sc);

    if (post) {
        if (!action && strcmp(rel, "/logout") != 0)
            return svm_method_not_allowed(r, sc, "GET", st);
        if ((rc = svm_form_read(r, sc->max_body, &pairs, &why)) != OK)
            return svm_page_message(r, sc, rc, "Request refused", why, st);
        if (!svm_csrf_ok(pairs, st->csrf)) {
            ap_dbd_t *dbd = svm_db(r);
            if (dbd)
                svm_audit(r, dbd, st->name, action ? action : "sign-out", ref, NULL,
                          "refused", "missing or wrong CSRF token");
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01402: POST without a valid "
                          "CSRF token from %s", st->name);
            return svm_page_message(r, sc, HTTP_FORBIDDEN, "Request refused",
                                    "This form has expired or did not come from this site. "
                                    "Nothing was changed. Reload the page and try again.", st);
        }
        if (strcmp(rel, "/logout") == 0)
            return svm_logout_post(r, sc, st);
        if (strcmp(action, "update") == 0) {
            if (!st->can_update)
                return svm_denied(r, sc, st, "update", ref);
            return svm_update_post(r, sc, st, ref, pairs);
        }
        if (!st->can_decrypt)
            return svm_denied(r, sc, st, "decrypt", ref);
        return svm_decrypt_post(r, sc, st, ref, pairs);
    }
    if (!get)
        return svm_method_not_allowed(r, sc, action || strcmp(rel, "/logout") == 0 ? "POST"
                                      : "GET", st);
    if (action || strcmp(rel, "/logout") == 0)
        return svm_method_not_allowed(r, sc, "POST", st);
    if (ref)
        return svm_record_page(r, sc, st, ref);
    if (strcmp(rel, "/audit") == 0) {
        if (!st->can_admin)
            return svm_denied(r, sc, st, "audit-view", NULL);
        return svm_audit_page(r, sc, st);
    }
    return svm_list_page(r, sc, st);
}

int svm_handler(request_rec *r)
{
    svm_srv_conf *sc;
    const char *rel;
    apr_size_t bl;

    if (!r->handler || strcmp(r->handler, SVM_HANDLER) != 0)
        return DECLINED;
    sc = svm_conf(r->server);
    svm_hsts(r, sc); /* first: every answer from here on carries it */
    if (sc->fields->nelts == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01403: handler splitvault is set but "
                      "this server has no SplitVaultField");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    bl = strlen(sc->base);
    if (strncmp(r->uri, sc->base, bl) != 0 || (r->uri[bl] && r->uri[bl] != '/')) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01404: %s is outside SplitVaultBase %s: "
                      "set the handler in <Location %s>", r->uri, sc->base, sc->base);
        return HTTP_NOT_FOUND;
    }
    rel = r->uri + bl;
    if (strcmp(rel, "/style.css") == 0)
        return svm_send_stylesheet(r);
    if (strncmp(rel, "/staff", 6) == 0 && (rel[6] == '\0' || rel[6] == '/'))
        return svm_staff_route(r, sc, rel + 6);
    if (strcmp(rel, "") != 0 && strcmp(rel, "/") != 0)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "Not found", "There is no such page.",
                                NULL);
    if (r->method_number == M_POST)
        return svm_intake_post(r, sc);
    if (r->method_number != M_GET)
        return svm_method_not_allowed(r, sc, "GET, POST", NULL);
    return svm_form_page(r, sc, NULL, HTTP_OK);
}

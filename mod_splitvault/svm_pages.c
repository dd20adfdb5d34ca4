/*
 * svm_pages.c - the staff pages that show records: the list (paging,
 * search by code or date) and a record's page (metadata, the update forms,
 * the decrypt button). Metadata only: never a value. svm_route.c routes
 * here after every check (session; see its table).
 */
#include "svm.h"
#include "svm_pages.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_decrypt.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_record.h"
#include "svm_session.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"

/* GET B/staff/: record list with search and paging (metadata only). */
int svm_list_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
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
int svm_record_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
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

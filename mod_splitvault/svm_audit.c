/*
 * svm_audit.c - the main side's audit trail (table audit).
 *
 * Rows say who did what to which record and field, when, from where and
 * with what outcome; never a value. Staff updates write their row in the
 * same transaction as the change. Admins read the trail on /staff/audit.
 */
#include "svm.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_session.h"
#include "http_protocol.h"
#include "apr_strings.h"

apr_status_t svm_audit(request_rec *r, ap_dbd_t *dbd, const char *actor, const char *action,
                       const char *record_ref, const char *field, const char *outcome,
                       const char *detail)
{
    const void *args[] = { actor, action, record_ref, field, outcome, r->useragent_ip,
                           detail };

    if (svm_db_exec(r, dbd, "svm_audit_insert", NULL, args)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SV01801: audit row not written: %s %s by %s", action, outcome,
                      actor ? actor : "-");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

int svm_audit_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    ap_dbd_t *dbd = svm_db(r);
    const char *q = svm_query_arg(r, "ref");
    int page = svm_query_page(r, "page", 100000), n = 0, i;
    svm_rows res;
    apr_dbd_row_t *row;

    if (!dbd)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Audit log unavailable",
                                "The database is unreachable; please try again.", st);
    if (!q)
        q = "";
    {
        const void *args[] = { q, q, apr_itoa(r->pool, page * 100) };
        if (svm_db_select(r, dbd, "svm_audit_list", &res, args))
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Audit log unavailable",
                                    "The audit log could not be read; please try again.", st);
    }
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Audit log", st);
    ap_rprintf(r, "<h1>Audit log</h1>\n<form class=\"search\" method=\"get\" action=\"%s\">"
               "<div><label for=\"ref\">Reference code</label><input type=\"search\" "
               "id=\"ref\" name=\"ref\" value=\"%s\" maxlength=\"11\"></div>"
               "<button type=\"submit\">Filter</button></form>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/audit")), svm_esc(r->pool, q));
    ap_rputs("<table>\n<thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who"
             "</th><th scope=\"col\">Action</th><th scope=\"col\">Record</th>"
             "<th scope=\"col\">Field</th><th scope=\"col\">Outcome</th>"
             "<th scope=\"col\">Address</th><th scope=\"col\">Detail</th></tr></thead>\n"
             "<tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        if (++n > 100)
            continue;
        ap_rputs("<tr>", r);
        for (i = 0; i < 8; i++)
            ap_rprintf(r, "<td>%s</td>", svm_esc(r->pool, svm_db_col(r, dbd, row, i)));
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</tbody>\n</table>\n<p class=\"pager\">", r);
    if (page > 0)
        ap_rprintf(r, "<a href=\"%s?ref=%s&amp;page=%d\">Newer</a>",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/audit")),
                   svm_esc(r->pool, ap_escape_urlencoded(r->pool, q)), page - 1);
    if (n > 100)
        ap_rprintf(r, "<a href=\"%s?ref=%s&amp;page=%d\">Older</a>",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/audit")),
                   svm_esc(r->pool, ap_escape_urlencoded(r->pool, q)), page + 1);
    ap_rputs("</p>\n", r);
    svm_page_end(r);
    return OK;
}
